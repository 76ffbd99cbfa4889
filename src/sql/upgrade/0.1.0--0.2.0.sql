-- billing 0.1.0 -> 0.2.0, the hand-written part of the upgrade script.
--
-- The Makefile builds billing--0.1.0--0.2.0.sql from, in this order:
--   1. this file;
--   2. every function and procedure of the install files listed in
--      UPGRADE_FUNCTIONS, as CREATE OR REPLACE (src/sql/upgrade/functions.awk):
--      list a file there when you change a function in it;
--   3. the install files that are wholly new since 0.1.0 (UPGRADE_NEW);
--   4. src/sql/upgrade/0.1.0--0.2.0.post.sql, if it exists: what needs the
--      objects of 3 (a policy on an old table that calls a new function);
--   5. src/sql/install/99_privileges.sql.
-- Here goes every other change to an object that 0.1.0 already had, in the
-- order the changes depend on each other:
--   * a new or changed column, constraint, index or trigger of an old table:
--     ALTER TABLE billing.t ADD COLUMN IF NOT EXISTS ..., CREATE INDEX IF NOT
--     EXISTS ... (idempotent DDL: under Citus a plain ALTER TABLE of a
--     distributed member table fails); a changed CHECK:
--     ALTER TABLE ... DROP CONSTRAINT IF EXISTS, then ADD CONSTRAINT with the
--     name PostgreSQL gives it in a fresh install;
--   * a function whose signature, parameter names or result type changed:
--     DROP FUNCTION of the old one (CREATE OR REPLACE in 2 cannot do that);
--   * a new table, view or type in an old file: its statements, comments
--     and pg_extension_config_dump calls;
--   * rows that an old file's install adds to a table (labels, settings).
-- test/scenarios/upgrade.sh proves the result: the extension's objects in
-- a database updated from 0.1.0 equal those of a fresh 0.2.0 install.

-- dunning (78_dunning.sql): a subscription can be suspended, an invoice can
-- be a late fee
ALTER TABLE billing.subscription DROP CONSTRAINT IF EXISTS subscription_status_check;
ALTER TABLE billing.subscription ADD CONSTRAINT subscription_status_check
    CHECK (status IN ('trialing', 'active', 'past_due', 'suspended', 'paused', 'canceled'));
ALTER TABLE billing.invoice DROP CONSTRAINT IF EXISTS invoice_billing_reason_check;
ALTER TABLE billing.invoice ADD CONSTRAINT invoice_billing_reason_check
    CHECK (billing_reason IN ('subscription_cycle', 'subscription_update', 'subscription_cancel', 'manual',
                              'late_fee'));

-- invoice lines and ledger entries keyed under their invoice and transaction
-- (the perf work): the keys lead with the parent, the indexes they replace go
ALTER TABLE billing.invoice_line DROP CONSTRAINT IF EXISTS invoice_line_pkey;
ALTER TABLE billing.invoice_line ADD CONSTRAINT invoice_line_pkey PRIMARY KEY (account_id, invoice_id, invoice_line_id);
DROP INDEX IF EXISTS billing.invoice_line_account_id_invoice_id_idx;
DROP INDEX IF EXISTS billing.ledger_transaction_account_id_posted_on_idx;
DROP INDEX IF EXISTS billing.ledger_transaction_account_id_invoice_id_idx;
ALTER TABLE billing.ledger_entry DROP CONSTRAINT IF EXISTS ledger_entry_account_id_txn_id_fkey;
ALTER TABLE billing.ledger_entry DROP CONSTRAINT IF EXISTS ledger_entry_pkey;
ALTER TABLE billing.ledger_entry ADD CONSTRAINT ledger_entry_pkey PRIMARY KEY (account_id, txn_id, entry_id);
DROP INDEX IF EXISTS billing.ledger_entry_account_id_txn_id_idx;
DROP INDEX IF EXISTS billing.ledger_entry_account_id_ledger_account_idx;

-- invoices and ledger transactions name their account without a foreign key
-- (a share lock on the account row per invoice and posting); accounts are
-- never deleted (the trigger is in 0.1.0--0.2.0.post.sql, after its function)
ALTER TABLE billing.invoice DROP CONSTRAINT IF EXISTS invoice_account_id_fkey;
ALTER TABLE billing.ledger_transaction DROP CONSTRAINT IF EXISTS ledger_transaction_account_id_fkey;

-- the cycle writes an invoice's lines before it takes the invoice's number
-- (billing._bill, two statements): the lines' key to it is checked at the end
ALTER TABLE billing.invoice_line ALTER CONSTRAINT invoice_line_account_id_invoice_id_fkey DEFERRABLE;
CREATE TYPE billing._invoice_draft AS (
    account_id bigint, invoice_id bigint, subscription_id bigint, bill_date date, billing_reason text,
    issue_date date, subtotal billing.amount, discount billing.amount, tax billing.amount, total billing.amount,
    period_start date, period_end date, lines integer, ends text);
COMMENT ON TYPE billing._invoice_draft IS
    'internal: an invoice billing._bill_lines computed and billing._bill_invoices inserts, or a subscription that ended';

-- the statement names a credit invoice (its total below zero) for what it
-- is (75_ledger_reports.sql)
CREATE OR REPLACE VIEW billing.account_statement_lines AS
SELECT t.account_id, t.posted_on, t.txn_id,
       CASE WHEN t.kind = 'invoice_finalized' AND billing.to_numeric(billing.sum(e.amount)) < 0
            THEN 'credit_invoice' ELSE t.kind END AS kind,
       CASE WHEN t.kind = 'invoice_finalized' AND billing.to_numeric(billing.sum(e.amount)) < 0
            THEN 'credit ' || t.description ELSE t.description END AS description,
       t.invoice_id, t.payment_id,
       billing.sum(e.amount) AS amount
FROM billing.ledger_transaction t
JOIN billing.ledger_entry e ON e.account_id = t.account_id AND e.txn_id = t.txn_id
WHERE e.ledger_account IN ('receivable', 'customer_credit')
GROUP BY t.account_id, t.posted_on, t.txn_id, t.kind, t.description, t.invoice_id, t.payment_id
HAVING billing.to_numeric(billing.sum(e.amount)) <> 0;
COMMENT ON VIEW billing.account_statement_lines IS
    'the movements of what each account owes: invoices (+), payments, early-payment discounts, credit notes, '
    'credit invoices, write-offs (-), refunds and chargebacks (+); one row per ledger transaction';

-- column comments on two 0.1.0 views (every reporting view documents its columns)
COMMENT ON COLUMN billing.account_statement_lines.account_id IS 'the account';
COMMENT ON COLUMN billing.account_statement_lines.posted_on IS 'the day the ledger transaction was posted';
COMMENT ON COLUMN billing.account_statement_lines.txn_id IS 'the ledger transaction';
COMMENT ON COLUMN billing.account_statement_lines.kind IS
    'what happened: the ledger transaction''s kind (invoice_finalized, payment, early_payment_discount, credit_note, '
    'refund, chargeback, void, write_off), credit_invoice for an invoice whose total is below zero';
COMMENT ON COLUMN billing.account_statement_lines.description IS 'the transaction''s description';
COMMENT ON COLUMN billing.account_statement_lines.invoice_id IS 'the invoice it concerns, if any';
COMMENT ON COLUMN billing.account_statement_lines.payment_id IS 'the payment it concerns, if any';
COMMENT ON COLUMN billing.account_statement_lines.amount IS 'the change of what the account owes: + more owed, - less owed';
COMMENT ON COLUMN billing.installment_status.account_id IS 'the account';
COMMENT ON COLUMN billing.installment_status.invoice_id IS 'the invoice split into installments';
COMMENT ON COLUMN billing.installment_status.invoice_status IS 'the invoice''s status';
COMMENT ON COLUMN billing.installment_status.installment_no IS 'the installment''s number, 1 first';
COMMENT ON COLUMN billing.installment_status.due_date IS 'the day the installment is due';
COMMENT ON COLUMN billing.installment_status.amount IS 'the installment''s amount (the installments sum exactly to the invoice)';
COMMENT ON COLUMN billing.installment_status.paid IS 'what payments since the plan have covered of it, installments in order';
COMMENT ON COLUMN billing.installment_status.remaining IS 'amount - paid';

-- invoices are finalized by an explicit step (billing._finalize_invoices,
-- 70_payments.sql) that every path issuing invoices calls; the triggers
-- that did that work go
DROP TRIGGER IF EXISTS invoice_finalized_insert ON billing.invoice;
DROP TRIGGER IF EXISTS invoice_finalized_update ON billing.invoice;
DROP FUNCTION IF EXISTS billing._invoice_finalized_trigger();
DROP FUNCTION IF EXISTS billing._invoice_finalized_row();

-- coupons: codes compared without case (30_accounts_catalog.sql); a coupon
-- still running is replaced only when the caller says so (apply_coupon's
-- replace, a new parameter)
CREATE UNIQUE INDEX IF NOT EXISTS coupon_code_ci ON billing.coupon (lower(code));
DROP FUNCTION IF EXISTS billing.apply_coupon(bigint, bigint, text);

-- dunning goes by the installment schedule (76_installments.sql)
CREATE OR REPLACE VIEW billing._invoice_schedule AS
SELECT i.account_id, i.invoice_id, coalesce(p.due_on, i.due_date) AS due_on, p.due_on IS NOT NULL AS by_installments
FROM billing.invoice i
LEFT JOIN LATERAL (
    SELECT min(y.due_date) AS due_on
    FROM (SELECT z.due_date, sum(billing.to_numeric(z.amount)) OVER (ORDER BY z.installment_no) AS through,
                 sum(billing.to_numeric(z.amount)) OVER () AS planned
          FROM billing.installment z WHERE z.account_id = i.account_id AND z.invoice_id = i.invoice_id) y
    WHERE y.through > y.planned - billing.to_numeric(i.amount_due)
) p ON true;
COMMENT ON VIEW billing._invoice_schedule IS
    'internal: the day each invoice is due for dunning: its due date, or that of its first installment not yet '
    'covered by payments';

-- card numbers (25_card_numbers.sql): the column checks that called the
-- PL/pgSQL looks_like_card_number go; the table constraints
-- <table>_no_card_number (step 4, 0.1.0--0.2.0.post.sql) replace them, on
-- every text and jsonb column a caller fills
ALTER TABLE billing.payment DROP CONSTRAINT IF EXISTS payment_reference_check;
ALTER TABLE billing.payment DROP CONSTRAINT IF EXISTS payment_idempotency_key_check;
ALTER TABLE billing.payment ADD CONSTRAINT payment_idempotency_key_check CHECK (idempotency_key <> '');
ALTER TABLE billing.payment_method DROP CONSTRAINT IF EXISTS payment_method_token_check;
ALTER TABLE billing.payment_method ADD CONSTRAINT payment_method_token_check CHECK (token <> '');
ALTER TABLE billing.collection_attempt DROP CONSTRAINT IF EXISTS collection_attempt_provider_reference_check;

-- an account's external_ref is unique within its entity only
ALTER TABLE billing.account DROP CONSTRAINT IF EXISTS account_external_ref_key;
ALTER TABLE billing.account DROP CONSTRAINT IF EXISTS account_entity_id_external_ref_key;
ALTER TABLE billing.account ADD CONSTRAINT account_entity_id_external_ref_key UNIQUE (entity_id, external_ref);

-- the entity's rounding mode (30_accounts_catalog.sql).  0.1.0 rounded by
-- the session's billing.rounding: an entity keeps the mode this session has
-- (the database's or role's setting, if one was made), so its next invoices
-- round as its last ones did.
ALTER TABLE billing.billing_entity ADD COLUMN IF NOT EXISTS rounding text NOT NULL DEFAULT 'half_up'
    CHECK (rounding IN ('half_up', 'half_even', 'half_down', 'up', 'down', 'ceiling', 'floor'));
COMMENT ON TABLE billing.billing_entity IS
    'the seller: legal name, tax id, address, default currency, its invoice number series and rounding mode';
COMMENT ON COLUMN billing.billing_entity.rounding IS
    'the rounding mode of every amount the entity bills (half_up, half_even, half_down, up, down, ceiling, floor); '
    'the session setting billing.rounding has no say in it';
-- (missing_ok: before the module is loaded the setting exists only if the
-- database or role sets it)
UPDATE billing.billing_entity SET rounding = pg_catalog.current_setting('billing.rounding', true)
WHERE pg_catalog.current_setting('billing.rounding', true) IN ('half_even', 'half_down', 'up', 'down', 'ceiling', 'floor');
-- signatures that changed: the rounding mode as an argument or a result column
DROP FUNCTION IF EXISTS billing.create_billing_entity(text, text, text, text, text, boolean, integer, jsonb);
DROP FUNCTION IF EXISTS billing.update_billing_entity(bigint, text, text, text, text, jsonb);
DROP FUNCTION IF EXISTS billing.price_amount(bigint, numeric);
DROP FUNCTION IF EXISTS billing._due_boundaries(bigint[], bigint[], date, timestamptz, text, boolean);
-- what the cycle bills is named for what it is: the dates an invoice is for
-- (bill dates) and the lines to bill; dates end in _on
DROP FUNCTION IF EXISTS billing._due_lines(bigint[], bigint[], date, timestamptz, text, boolean);
ALTER TYPE billing.preview_line RENAME ATTRIBUTE invoice_date TO bill_date;
DO $rename$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'billing.subscription'::pg_catalog.regclass
               AND attname = 'cancel_at' AND NOT attisdropped) THEN
        ALTER TABLE billing.subscription RENAME COLUMN cancel_at TO cancel_on;
        ALTER TABLE billing.subscription RENAME COLUMN canceled_at TO canceled_on;
        ALTER TABLE billing.subscription RENAME COLUMN pause_at TO pause_on;
        ALTER TABLE billing.subscription RENAME COLUMN paused_at TO paused_on;
    END IF;
END
$rename$;

-- a refund of the account's credit has no payment (billing.refund_credit)
ALTER TABLE billing.refund ALTER COLUMN payment_id DROP NOT NULL;
ALTER TABLE billing.refund DROP CONSTRAINT IF EXISTS refund_check;
ALTER TABLE billing.refund ADD CONSTRAINT refund_check
    CHECK (payment_id IS NOT NULL OR (kind = 'refund' AND from_credit = amount));

-- amounts (10_amount.sql): at most 10^12 major units each; the sum reports
-- use, exact as numeric, and the rounding they use; binary input accepts
-- what text input accepts
CREATE FUNCTION billing.amount_sum_numeric_final(internal) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_sum_numeric_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.amount_sum_numeric_final(internal) IS 'sum_numeric final: the exact total as numeric, never out of range';
CREATE AGGREGATE billing.sum_numeric(billing.amount) (
    SFUNC = billing.amount_sum_accum, STYPE = internal, SSPACE = 48,
    FINALFUNC = billing.amount_sum_numeric_final,
    COMBINEFUNC = billing.amount_sum_combine,
    SERIALFUNC = billing.amount_sum_serialize,
    DESERIALFUNC = billing.amount_sum_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE billing.sum_numeric(billing.amount) IS
    'exact sum as numeric with the currency''s digits, never out of range; error on mixed currencies';
CREATE FUNCTION billing.round_money(value numeric, currency text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_money(numeric, text) IS
    'value rounded once by billing.rounding to the currency''s minor units, as numeric with exactly its digits '
    'and no bound (money that no single amount need hold, such as a currency''s MRR)';
CREATE FUNCTION billing.round_money(value numeric, currency text, mode text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_money(numeric, text, text) IS
    'value rounded once by the named mode to the currency''s minor units, as numeric with its digits and no bound';
COMMENT ON FUNCTION billing.amount_recv(internal) IS
    'binary input: int64 minor units, three code letters, one scale byte; accepts exactly what text input accepts '
    '(a known upper-case code, the currency''s own digits, at most 10^12 major units)';
COMMENT ON TYPE billing.amount IS
    'Money: exact minor units with their ISO 4217 currency, such as ''12.34 USD''; at most 10^12 major units '
    '(1000000000000.00 USD) either side of zero, a bound every constructor and operator keeps (22003 beyond it)';
COMMENT ON AGGREGATE billing.sum(billing.amount) IS
    'exact sum as an amount; error on mixed currencies or a result beyond 10^12 major units';

-- usage during a trial is free unless the price bills it
-- (30_accounts_catalog.sql); create_price and update_price take the setting
ALTER TABLE billing.price ADD COLUMN IF NOT EXISTS bill_trial_usage boolean NOT NULL DEFAULT false;
COMMENT ON TABLE billing.price IS
    'how much a product costs per period: scheme, licensed or metered usage, cadence, setup fee, trial days, '
    'whether usage during a trial is billed, tax rate';
DROP FUNCTION IF EXISTS billing.create_price(bigint, text, numeric, text, interval, text, text, numeric, jsonb,
                                             numeric, integer, bigint, text, jsonb);
DROP FUNCTION IF EXISTS billing.update_price(bigint, text, boolean, bigint, integer, jsonb);
-- 0.1.0 billed the usage of a trial: the metered prices it made keep doing
-- so, new prices follow the new default
UPDATE billing.price SET bill_trial_usage = true WHERE usage_type = 'metered';

-- amounts are in the string category (10_amount.sql), so that '58.31 USD'
-- resolves to the amount form of a function that also takes a number;
-- ALTER TYPE cannot change a category, the superuser's update script can
UPDATE pg_catalog.pg_type SET typcategory = 'S' WHERE oid = 'billing.amount'::pg_catalog.regtype;

-- the buyer's postal address (30_accounts_catalog.sql), a column like the
-- seller's billing_entity.address; 0.1.0's documents read the metadata key
-- address, which is where an account's address was kept until now
ALTER TABLE billing.account ADD COLUMN IF NOT EXISTS address text;
COMMENT ON TABLE billing.account IS
    'a customer: currency, time zone, payment terms, locale, contact, postal address, CRM/ERP reference, tax settings';
UPDATE billing.account SET address = metadata ->> 'address'
WHERE address IS NULL AND jsonb_typeof(metadata -> 'address') = 'string';
DROP FUNCTION IF EXISTS billing.create_account(bigint, text, text, text, integer, text, text, text, bigint, boolean, jsonb);
DROP FUNCTION IF EXISTS billing.update_account(bigint, text, text, integer, text, text, text, bigint, boolean, jsonb);

-- draft invoices with a grace period, and one-off charges (77_drafts.sql):
-- the grace period of an entity and an account, a draft's day of
-- finalization and bill date, one-off lines and pending items, the drafts
-- a cycle run finalized
ALTER TABLE billing.billing_entity ADD COLUMN IF NOT EXISTS draft_days integer NOT NULL DEFAULT 0
    CHECK (draft_days BETWEEN 0 AND 90);
COMMENT ON COLUMN billing.billing_entity.draft_days IS
    'the days the invoices the cycle makes stay editable drafts before they are finalized (0: finalized at once); '
    'an account''s own draft_days wins';
ALTER TABLE billing.account ADD COLUMN IF NOT EXISTS draft_days integer CHECK (draft_days BETWEEN 0 AND 90);
COMMENT ON COLUMN billing.account.draft_days IS
    'the days the invoices the cycle makes for this account stay editable drafts (0: finalized at once); '
    'NULL: its entity''s draft_days';
ALTER TABLE billing.invoice ADD COLUMN IF NOT EXISTS finalize_on date;
ALTER TABLE billing.invoice ADD COLUMN IF NOT EXISTS bill_date date;
ALTER TABLE billing.invoice DROP CONSTRAINT IF EXISTS invoice_check3;
ALTER TABLE billing.invoice ADD CONSTRAINT invoice_check3 CHECK (status <> 'draft' OR finalize_on IS NOT NULL);
COMMENT ON COLUMN billing.invoice.finalize_on IS
    'a draft''s last day of grace: the cycle finalizes it on that day (issue date + draft_days when made)';
COMMENT ON COLUMN billing.invoice.bill_date IS
    'a draft''s bill date: its usage is the usage dated before it, its coupon the one whose time it is in';
ALTER TABLE billing.invoice_line DROP CONSTRAINT IF EXISTS invoice_line_kind_check;
ALTER TABLE billing.invoice_line ADD CONSTRAINT invoice_line_kind_check
    CHECK (kind IN ('subscription', 'proration', 'usage', 'setup_fee', 'discount', 'tax', 'late_fee', 'credit',
                    'one_off'));
ALTER TABLE billing.pending_item DROP CONSTRAINT IF EXISTS pending_item_kind_check;
ALTER TABLE billing.pending_item ADD CONSTRAINT pending_item_kind_check
    CHECK (kind IN ('proration', 'setup_fee', 'late_fee', 'credit', 'one_off'));
COMMENT ON TABLE billing.pending_item IS
    'a charge or credit waiting for the subscription''s next invoice (setup fee, proration, credit, one-off charge)';
ALTER TABLE billing.cycle_run ADD COLUMN IF NOT EXISTS drafts_finalized integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN billing.cycle_run.drafts_finalized IS
    'the drafts whose grace period had passed that the run finalized';
COMMENT ON TABLE billing.outbox IS
    'events for integrations (invoice.created (a draft), invoice.finalized, '
    'subscription.created/updated/canceled/paused/resumed, trial.ending); processed_at is set by '
    'billing.mark_events_done';
