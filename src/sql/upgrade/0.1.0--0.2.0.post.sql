-- billing 0.1.0 -> 0.2.0, step 4 of the upgrade script (see
-- 0.1.0--0.2.0.sql): what needs objects that steps 2 and 3 create.

-- accounts are never deleted (30_accounts_catalog.sql)
CREATE OR REPLACE TRIGGER account_never_deleted BEFORE DELETE OR TRUNCATE ON billing.account
    FOR EACH STATEMENT EXECUTE FUNCTION billing._account_never_deleted();

-- Every routine pins pg_temp last in its search_path (a SECURITY DEFINER
-- body would otherwise find the caller's temporary types and tables before
-- billing's).  The functions above are created that way; this catches the
-- 0.1.0 routines that no step recreates.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::regprocedure AS fn, p.prokind, c.cfg
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
             AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        CROSS JOIN LATERAL unnest(p.proconfig) c(cfg)
        WHERE c.cfg LIKE 'search\_path=%' AND c.cfg NOT LIKE '%pg\_temp'
    LOOP
        EXECUTE format('ALTER %s %s SET search_path = %s, pg_temp',
                       CASE r.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.fn,
                       substr(r.cfg, length('search_path=') + 1));
    END LOOP;
END $$;

-- the guard that replaces the finalization triggers (70_payments.sql)
CREATE OR REPLACE TRIGGER invoice_account_exists AFTER INSERT ON billing.invoice
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing._invoice_account_exists();

-- an account's zone is an IANA name (30_accounts_catalog.sql): the domain
-- checks it with billing.check_time_zone, which step 2 created.  An account
-- of 0.1.0 in another zone (a POSIX string such as '<+05>-05') stops the
-- update with its id, rather than failing every later change of the account.
DO $$
DECLARE
    r record;
BEGIN
    SELECT a.account_id, a.timezone INTO r FROM billing.account a
    WHERE a.timezone NOT IN (SELECT z.name FROM pg_catalog.pg_timezone_names z
                             WHERE z.name NOT IN ('localtime', 'posixrules'))
    ORDER BY a.account_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'account % has the time zone "%", which is not an IANA time zone name', r.account_id, r.timezone
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set the zone of every such account to a name of pg_timezone_names, then update again.';
    END IF;
END $$;
ALTER DOMAIN billing.time_zone DROP CONSTRAINT time_zone_check;
ALTER DOMAIN billing.time_zone ADD CONSTRAINT time_zone_check CHECK (billing.check_time_zone(VALUE) IS NOT NULL);
COMMENT ON DOMAIN billing.time_zone IS 'an IANA time zone name such as Europe/Berlin (billing.check_time_zone)';

-- document words (80_documents.sql): the shipped languages grow from en, he
-- and de to ru, ar, fr and es too, with the words of the settlement by
-- kind; a row a user added or changed stays (and 0.1.0's amount_paid, which
-- the documents no longer print, with them)
INSERT INTO billing.document_label (language, key, label) SELECT * FROM billing._shipped_document_labels()
ON CONFLICT (language, key) DO NOTHING;
SELECT pg_catalog.pg_extension_config_dump('billing.document_label',
    $$WHERE language NOT IN ('en', 'he', 'de', 'ru', 'ar', 'fr', 'es')$$);

-- The CHECKs the install files give the tables 0.1.0 had (each file holds
-- its tables' constraints; an update does not create those tables again).
-- After step 2: they call billing._no_card_number.  DROP IF EXISTS first,
-- so that the DDL stays idempotent.
ALTER TABLE billing.billing_entity DROP CONSTRAINT IF EXISTS billing_entity_no_card_number;
ALTER TABLE billing.billing_entity ADD CONSTRAINT billing_entity_no_card_number CHECK (
    billing._no_card_number(legal_name, 'billing.billing_entity.legal_name')
    AND billing._no_card_number(tax_id, 'billing.billing_entity.tax_id')
    AND billing._no_card_number(address, 'billing.billing_entity.address')
    AND billing._no_card_number(invoice_prefix, 'billing.billing_entity.invoice_prefix')
    AND billing._no_card_number(metadata, 'billing.billing_entity.metadata'));
ALTER TABLE billing.tax_rate DROP CONSTRAINT IF EXISTS tax_rate_no_card_number;
ALTER TABLE billing.tax_rate ADD CONSTRAINT tax_rate_no_card_number CHECK (
    billing._no_card_number(name, 'billing.tax_rate.name')
    AND billing._no_card_number(jurisdiction, 'billing.tax_rate.jurisdiction'));
ALTER TABLE billing.account DROP CONSTRAINT IF EXISTS account_no_card_number;
ALTER TABLE billing.account ADD CONSTRAINT account_no_card_number CHECK (
    billing._no_card_number(name, 'billing.account.name')
    AND billing._no_card_number(locale, 'billing.account.locale')
    AND billing._no_card_number(email, 'billing.account.email')
    AND billing._no_card_number(address, 'billing.account.address')
    AND billing._no_card_number(external_ref, 'billing.account.external_ref')
    AND billing._no_card_number(metadata, 'billing.account.metadata'));
ALTER TABLE billing.product DROP CONSTRAINT IF EXISTS product_no_card_number;
ALTER TABLE billing.product ADD CONSTRAINT product_no_card_number CHECK (
    billing._no_card_number(name, 'billing.product.name')
    AND billing._no_card_number(description, 'billing.product.description')
    AND billing._no_card_number(metadata, 'billing.product.metadata'));
ALTER TABLE billing.price DROP CONSTRAINT IF EXISTS price_no_card_number;
ALTER TABLE billing.price ADD CONSTRAINT price_no_card_number CHECK (
    billing._no_card_number(nickname, 'billing.price.nickname')
    AND billing._no_card_number(metadata, 'billing.price.metadata'));
ALTER TABLE billing.coupon DROP CONSTRAINT IF EXISTS coupon_no_card_number;
ALTER TABLE billing.coupon ADD CONSTRAINT coupon_no_card_number CHECK (
    billing._no_card_number(code, 'billing.coupon.code')
    AND billing._no_card_number(name, 'billing.coupon.name'));
ALTER TABLE billing.subscription DROP CONSTRAINT IF EXISTS subscription_no_card_number;
ALTER TABLE billing.subscription ADD CONSTRAINT subscription_no_card_number CHECK (
    billing._no_card_number(metadata, 'billing.subscription.metadata'));
ALTER TABLE billing.usage_event DROP CONSTRAINT IF EXISTS usage_event_no_card_number;
ALTER TABLE billing.usage_event ADD CONSTRAINT usage_event_no_card_number CHECK (
    billing._no_card_number(value, 'billing.usage_event.value')
    AND billing._no_card_number(idempotency_key, 'billing.usage_event.idempotency_key'));
ALTER TABLE billing.invoice DROP CONSTRAINT IF EXISTS invoice_no_card_number;
ALTER TABLE billing.invoice ADD CONSTRAINT invoice_no_card_number CHECK (
    billing._no_card_number(metadata - 'late_fee_for_number', 'billing.invoice.metadata'));
-- a one-off item's description is the caller's (billing.add_invoice_item);
-- the kind is tested first, so the cycle's lines cost no scan
ALTER TABLE billing.invoice_line DROP CONSTRAINT IF EXISTS invoice_line_no_card_number;
ALTER TABLE billing.invoice_line ADD CONSTRAINT invoice_line_no_card_number CHECK (
    kind <> 'one_off' OR billing._no_card_number(description, 'billing.invoice_line.description'));
ALTER TABLE billing.pending_item DROP CONSTRAINT IF EXISTS pending_item_no_card_number;
ALTER TABLE billing.pending_item ADD CONSTRAINT pending_item_no_card_number CHECK (
    kind <> 'one_off' OR billing._no_card_number(description, 'billing.pending_item.description'));
ALTER TABLE billing.ledger_account DROP CONSTRAINT IF EXISTS ledger_account_no_card_number;
ALTER TABLE billing.ledger_account ADD CONSTRAINT ledger_account_no_card_number CHECK (
    billing._no_card_number(code, 'billing.ledger_account.code')
    AND billing._no_card_number(name, 'billing.ledger_account.name')
    AND billing._no_card_number(description, 'billing.ledger_account.description'));
ALTER TABLE billing.payment DROP CONSTRAINT IF EXISTS payment_no_card_number;
ALTER TABLE billing.payment ADD CONSTRAINT payment_no_card_number CHECK (
    billing._no_card_number(reference, 'billing.payment.reference')
    AND billing._no_card_number(idempotency_key, 'billing.payment.idempotency_key'));
ALTER TABLE billing.refund DROP CONSTRAINT IF EXISTS refund_no_card_number;
ALTER TABLE billing.refund ADD CONSTRAINT refund_no_card_number CHECK (
    billing._no_card_number(reason, 'billing.refund.reason')
    AND billing._no_card_number(idempotency_key, 'billing.refund.idempotency_key'));
ALTER TABLE billing.credit_note DROP CONSTRAINT IF EXISTS credit_note_no_card_number;
ALTER TABLE billing.credit_note ADD CONSTRAINT credit_note_no_card_number CHECK (
    billing._no_card_number(reason, 'billing.credit_note.reason'));
ALTER TABLE billing.payment_method DROP CONSTRAINT IF EXISTS payment_method_no_card_number;
ALTER TABLE billing.payment_method ADD CONSTRAINT payment_method_no_card_number CHECK (
    billing._no_card_number(token, 'billing.payment_method.token'));
ALTER TABLE billing.collection_attempt DROP CONSTRAINT IF EXISTS collection_attempt_no_card_number;
ALTER TABLE billing.collection_attempt ADD CONSTRAINT collection_attempt_no_card_number CHECK (
    billing._no_card_number(worker, 'billing.collection_attempt.worker')
    AND billing._no_card_number(provider_reference, 'billing.collection_attempt.provider_reference')
    AND billing._no_card_number(failure_code, 'billing.collection_attempt.failure_code')
    AND billing._no_card_number(failure_message, 'billing.collection_attempt.failure_message'));
ALTER TABLE billing.document_label DROP CONSTRAINT IF EXISTS document_label_no_card_number;
ALTER TABLE billing.document_label ADD CONSTRAINT document_label_no_card_number CHECK (
    billing._no_card_number(key, 'billing.document_label.key')
    AND billing._no_card_number(label, 'billing.document_label.label'));

-- no NaN or infinite numbers and dates: NaN sorts above every number (a
-- CHECK "x >= 0" lets it in) and either would stop the cycle or a report
-- later, far from the call that stored it
ALTER TABLE billing.price ADD CONSTRAINT price_amounts_finite
    CHECK (unit_amount < 'Infinity' AND setup_fee < 'Infinity' AND package_size < 'Infinity');
ALTER TABLE billing.price_tier ADD CONSTRAINT price_tier_amounts_finite
    CHECK (up_to < 'Infinity' AND unit_amount < 'Infinity' AND flat_amount < 'Infinity');
ALTER TABLE billing.subscription ADD CONSTRAINT subscription_dates_finite
    CHECK (isfinite(start_date) AND isfinite(anchor));
ALTER TABLE billing.subscription_item ADD CONSTRAINT subscription_item_quantity_finite
    CHECK (quantity < 'Infinity');
ALTER TABLE billing.usage_event ADD CONSTRAINT usage_event_quantity_finite
    CHECK (quantity < 'Infinity');
ALTER TABLE billing.payment ADD CONSTRAINT payment_received_on_finite
    CHECK (isfinite(received_on));
ALTER TABLE billing.installment ADD CONSTRAINT installment_due_date_finite
    CHECK (isfinite(due_date));

-- the indexes of invoice for aging, dunning and the reports (50_invoicing.sql)
CREATE INDEX IF NOT EXISTS invoice_open ON billing.invoice (account_id, due_date) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS invoice_issue_date_brin ON billing.invoice USING brin (issue_date);

-- the drafts of the grace period (50_invoicing.sql)
CREATE INDEX IF NOT EXISTS invoice_drafts ON billing.invoice (account_id, invoice_id) WHERE status = 'draft';
-- the items that start on a day, for price-change notices (40_subscriptions.sql)
CREATE INDEX IF NOT EXISTS subscription_item_started_on ON billing.subscription_item (started_on);
