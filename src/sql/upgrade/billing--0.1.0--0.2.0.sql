-- billing 0.1.0 -> 0.2.0
--
-- What changed since 0.1.0, as a delta: ALTER EXTENSION billing UPDATE
-- runs it on a 0.1.0 install, and the result must equal a fresh 0.2.0
-- install (test/scenarios/upgrade.sh diffs the two catalogs and checks
-- that every row survived).  A change to src/sql/install/ is made here
-- too, by hand, until 0.2.0 is released (CONTRIBUTING.md, Upgrades):
--   1. tables, types, views and rows of objects that 0.1.0 has, changed
--      with idempotent DDL (ADD COLUMN IF NOT EXISTS, CREATE INDEX IF NOT
--      EXISTS, DROP CONSTRAINT IF EXISTS then ADD CONSTRAINT with the name a
--      fresh install gives it), so that it also runs on a distributed
--      install; DROP FUNCTION of functions whose signature, parameter names
--      or result type changed;
--   2. the functions of 0.1.0's topic files that are new or whose
--      definition changed, as CREATE OR REPLACE with their comments;
--   3. the topic files that are new since 0.1.0, whole;
--   4. what needs the objects of 2 and 3 (triggers and policies on old
--      tables, checks that call new functions), and the search_path of the
--      0.1.0 routines left as they were, which now ends with pg_temp;
--   5. the privileges of src/sql/install/99_privileges.sql.
\echo Use "ALTER EXTENSION billing UPDATE" to load this file. \quit

-- 1. objects of 0.1.0, changed
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
-- (the cycle writes them in that order): the keys lead with the parent, the indexes they replace go
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
-- usage events name their item without a foreign key (a query and a row
-- lock per event); 41_usage_batch.sql checks each statement's events at once
ALTER TABLE billing.usage_event DROP CONSTRAINT IF EXISTS usage_event_account_id_subscription_item_id_fkey;

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
DROP FUNCTION IF EXISTS billing._run_batch(bigint, date, timestamptz, integer, date, bigint, bigint);
ALTER INDEX IF EXISTS billing.subscription_due RENAME TO subscription_to_bill;
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

-- 2. new and changed functions of 0.1.0's topic files

-- 10_amount.sql

CREATE OR REPLACE FUNCTION billing.amount_sum_numeric_final(internal) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_sum_numeric_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION billing.amount_sum_numeric_final(internal) IS 'sum_numeric final: the exact total as numeric, never out of range';

CREATE OR REPLACE FUNCTION billing.round_money(value numeric, currency text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.round_money(numeric, text) IS
    'value rounded once by billing.rounding to the currency''s minor units, as numeric with exactly its digits '
    'and no bound (money that no single amount need hold, such as a currency''s MRR)';

CREATE OR REPLACE FUNCTION billing.round_money(value numeric, currency text, mode text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.round_money(numeric, text, text) IS
    'value rounded once by the named mode to the currency''s minor units, as numeric with its digits and no bound';

-- 20_periods.sql

CREATE OR REPLACE FUNCTION billing.prorate(price billing.amount, period daterange, part daterange,
                                convention text, mode text)
    RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'prorate' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION billing.prorate(billing.amount, daterange, daterange, text, text) IS
    'billing.prorate with R rounding by the named mode (half_up, half_even, half_down, up, down, ceiling, floor): '
    'what billing''s own functions call, with the entity''s mode';

-- 25_card_numbers.sql

CREATE OR REPLACE FUNCTION billing.looks_like_card_number(value text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'looks_like_card_number_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.looks_like_card_number(text) IS
    'true if the text holds 13 to 19 decimal digits of any script that pass the Luhn check, with any '
    'non-alphanumeric separators between them: such values are refused in every column billing stores';

CREATE OR REPLACE FUNCTION billing.looks_like_card_number(value jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'looks_like_card_number_jsonb' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.looks_like_card_number(jsonb) IS
    'true if any key, string or number of the jsonb value, at any depth, looks like a card number '
    '(billing.looks_like_card_number(text))';

CREATE OR REPLACE FUNCTION billing._no_card_number(value text, field text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'no_card_number_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing._no_card_number(text, text) IS
    'internal, for CHECK constraints: true, or raises 23514 when the text of field looks like a card number';

CREATE OR REPLACE FUNCTION billing._no_card_number(value jsonb, field text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'no_card_number_jsonb' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing._no_card_number(jsonb, text) IS
    'internal, for CHECK constraints: true, or raises 23514 when a key or value of the jsonb field looks like a '
    'card number';

-- 30_accounts_catalog.sql

CREATE OR REPLACE FUNCTION billing.check_time_zone(timezone text) RETURNS text
    AS 'MODULE_PATHNAME', 'billing_check_time_zone' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.check_time_zone(text) IS
    'the name itself when it is an IANA time zone name of the server''s database (as pg_timezone_names spells it, '
    'such as UTC, Europe/Berlin, Etc/GMT-14); raises 22023 for POSIX strings, abbreviations and unknown names';

CREATE OR REPLACE FUNCTION billing._check_date(value date, what text, today date) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_from date := (today - interval '10 years')::date;
    v_to date := (today + interval '10 years')::date;
BEGIN
    IF value IS NOT NULL AND (NOT isfinite(value) OR value < v_from OR value > v_to) THEN
        RAISE EXCEPTION '% % is outside the dates billing accepts, % to %', what, value, v_from, v_to
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('Billing accepts dates up to 10 years before or after today (%s).', today),
                  HINT = 'Check the year; leave the date out for today.';
    END IF;
    RETURN value;
END $$;

COMMENT ON FUNCTION billing._check_date(date, text, date) IS
    'internal: value when it is within 10 years before or after today; raises 22008 naming what and the window '
    'otherwise (NULL passes: the callers default it)';

CREATE OR REPLACE FUNCTION billing._account_never_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'billing.account rows are never deleted: % is not allowed', TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Cancel the account''s subscriptions; its invoices and ledger keep naming it.';
END $$;

COMMENT ON FUNCTION billing._account_never_deleted() IS
    'internal trigger: refuses DELETE and TRUNCATE on billing.account (55000)';

CREATE OR REPLACE FUNCTION billing._check_rounding(rounding text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF rounding IS NULL OR rounding NOT IN ('half_up', 'half_even', 'half_down', 'up', 'down', 'ceiling', 'floor') THEN
        RAISE EXCEPTION 'unknown rounding mode "%"', coalesce(rounding, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one of half_up, half_even, half_down, up, down, ceiling, floor.';
    END IF;
END $$;

COMMENT ON FUNCTION billing._check_rounding(text) IS 'internal: raises 22023 for an unknown rounding mode';

CREATE OR REPLACE FUNCTION billing.create_billing_entity(
    legal_name text, default_currency text, tax_id text DEFAULT NULL, address text DEFAULT NULL,
    invoice_prefix text DEFAULT 'INV', number_per_year boolean DEFAULT true,
    number_digits integer DEFAULT 6, metadata jsonb DEFAULT '{}', rounding text DEFAULT 'half_up')
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('create a billing entity');
    SELECT billing._check_rounding($9);
    INSERT INTO billing.billing_entity (legal_name, default_currency, tax_id, address, invoice_prefix,
                                        number_per_year, number_digits, metadata, rounding)
    VALUES ($1, upper($2), $3, $4, $5, $6, $7, coalesce($8, '{}'), $9)
    RETURNING entity_id
$$;

COMMENT ON FUNCTION billing.create_billing_entity(text, text, text, text, text, boolean, integer, jsonb, text) IS
    'creates a billing entity (the seller) and returns its id; invoice numbers are invoice_prefix[-YYYY]-NNNNNN; '
    'rounding is the mode of every amount it bills';

CREATE OR REPLACE FUNCTION billing.update_billing_entity(
    entity_id bigint, legal_name text DEFAULT NULL, tax_id text DEFAULT NULL, address text DEFAULT NULL,
    default_currency text DEFAULT NULL, metadata jsonb DEFAULT NULL, rounding text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_entity(update_billing_entity.entity_id);
    IF rounding IS NOT NULL THEN
        PERFORM billing._check_rounding(rounding);
    END IF;
    UPDATE billing.billing_entity e
    SET legal_name = coalesce(update_billing_entity.legal_name, e.legal_name),
        tax_id = coalesce(update_billing_entity.tax_id, e.tax_id),
        address = coalesce(update_billing_entity.address, e.address),
        default_currency = coalesce(upper(update_billing_entity.default_currency), e.default_currency),
        metadata = coalesce(update_billing_entity.metadata, e.metadata),
        rounding = coalesce(update_billing_entity.rounding, e.rounding)
    WHERE e.entity_id = update_billing_entity.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
END $$;

COMMENT ON FUNCTION billing.update_billing_entity(bigint, text, text, text, text, jsonb, text) IS
    'changes a billing entity''s legal name, tax id, address, default currency, metadata or rounding mode (NULL '
    'keeps a value); invoices already made keep their amounts';

CREATE OR REPLACE FUNCTION billing.create_tax_rate(name text, percentage numeric, inclusive boolean DEFAULT false,
                                        jurisdiction text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('create a tax rate');
    INSERT INTO billing.tax_rate (name, percentage, inclusive, jurisdiction)
    VALUES ($1, $2, coalesce($3, false), $4)
    RETURNING tax_rate_id
$$;

COMMENT ON FUNCTION billing.create_tax_rate(text, numeric, boolean, text) IS
    'creates a tax rate in percent, exclusive (added to the net) or inclusive (contained in prices)';

CREATE OR REPLACE FUNCTION billing._check_external_ref(entity_id bigint, account_id bigint, external_ref text)
RETURNS void LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_other bigint;
BEGIN
    IF external_ref IS NULL THEN
        RETURN;
    END IF;
    SELECT a.account_id INTO v_other FROM billing.account a
    WHERE a.entity_id = _check_external_ref.entity_id AND a.external_ref = _check_external_ref.external_ref
      AND a.account_id IS DISTINCT FROM _check_external_ref.account_id;
    IF FOUND THEN
        RAISE EXCEPTION 'external_ref "%" is already the reference of account % of billing entity %', external_ref,
            v_other, entity_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'An external_ref names one account per billing entity: update that account, or pass another reference.';
    END IF;
END $$;

COMMENT ON FUNCTION billing._check_external_ref(bigint, bigint, text) IS
    'internal: raises 23505 when another account of the entity already has the external_ref';

CREATE OR REPLACE FUNCTION billing.create_account(
    entity_id bigint, name text, currency text DEFAULT NULL, timezone text DEFAULT 'UTC',
    payment_terms_days integer DEFAULT 30, locale text DEFAULT 'en-US', email text DEFAULT NULL,
    external_ref text DEFAULT NULL, tax_rate_id bigint DEFAULT NULL, tax_exempt boolean DEFAULT false,
    metadata jsonb DEFAULT '{}', address text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_currency text;
    v_id bigint;
BEGIN
    PERFORM billing._authorize_entity(create_account.entity_id);
    SELECT coalesce(upper(create_account.currency), e.default_currency) INTO v_currency
    FROM billing.billing_entity e WHERE e.entity_id = create_account.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
    PERFORM billing._check_tax_rate(tax_rate_id);
    PERFORM billing._check_external_ref(create_account.entity_id, NULL, create_account.external_ref);
    INSERT INTO billing.account AS a (entity_id, name, currency, timezone, payment_terms_days, locale, email,
                                      external_ref, tax_rate_id, tax_exempt, metadata, address)
    VALUES (entity_id, name, v_currency, coalesce(timezone, 'UTC'), coalesce(payment_terms_days, 30),
            coalesce(locale, 'en-US'), email, external_ref, tax_rate_id, coalesce(tax_exempt, false),
            coalesce(metadata, '{}'), address)
    RETURNING a.account_id INTO v_id;
    -- the locale as stored, after the row's checks (a card number typed as
    -- a locale is refused by them, 23514, and never echoed): a tag ICU does
    -- not know would fail only when the first document is made
    PERFORM billing.locale_direction(a.locale) FROM billing.account a WHERE a.account_id = v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_account(bigint, text, text, text, integer, text, text, text, bigint, boolean, jsonb, text) IS
    'creates a customer account of a billing entity (currency defaults to the entity''s; address is printed on its '
    'invoices) and returns its id';

CREATE OR REPLACE FUNCTION billing.update_account(
    account_id bigint, name text DEFAULT NULL, timezone text DEFAULT NULL,
    payment_terms_days integer DEFAULT NULL, locale text DEFAULT NULL, email text DEFAULT NULL,
    external_ref text DEFAULT NULL, tax_rate_id bigint DEFAULT NULL, tax_exempt boolean DEFAULT NULL,
    metadata jsonb DEFAULT NULL, address text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(update_account.account_id);
    PERFORM billing._check_tax_rate(tax_rate_id);
    PERFORM billing._check_external_ref(a.entity_id, a.account_id, update_account.external_ref)
    FROM billing.account a WHERE a.account_id = update_account.account_id;
    UPDATE billing.account a
    SET name = coalesce(update_account.name, a.name),
        timezone = coalesce(update_account.timezone, a.timezone),
        payment_terms_days = coalesce(update_account.payment_terms_days, a.payment_terms_days),
        locale = coalesce(update_account.locale, a.locale),
        email = coalesce(update_account.email, a.email),
        external_ref = coalesce(update_account.external_ref, a.external_ref),
        tax_rate_id = coalesce(update_account.tax_rate_id, a.tax_rate_id),
        tax_exempt = coalesce(update_account.tax_exempt, a.tax_exempt),
        metadata = coalesce(update_account.metadata, a.metadata),
        address = coalesce(update_account.address, a.address)
    WHERE a.account_id = update_account.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    -- a new locale, checked as create_account checks it
    IF update_account.locale IS NOT NULL THEN
        PERFORM billing.locale_direction(update_account.locale);
    END IF;
END $$;
COMMENT ON FUNCTION billing.update_account(bigint, text, text, integer, text, text, text, bigint, boolean, jsonb, text) IS
    'changes an account''s settings (NULL keeps a value); the currency of an account never changes';

CREATE OR REPLACE FUNCTION billing.create_product(name text, description text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('create a product');
    INSERT INTO billing.product (name, description, metadata) VALUES ($1, $2, coalesce($3, '{}'))
    RETURNING product_id
$$;

COMMENT ON FUNCTION billing.create_product(text, text, jsonb) IS 'creates a product and returns its id';

CREATE OR REPLACE FUNCTION billing.update_product(product_id bigint, name text DEFAULT NULL, description text DEFAULT NULL,
                                       active boolean DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('change a product');
    UPDATE billing.product p
    SET name = coalesce(update_product.name, p.name),
        description = coalesce(update_product.description, p.description),
        active = coalesce(update_product.active, p.active),
        metadata = coalesce(update_product.metadata, p.metadata)
    WHERE p.product_id = update_product.product_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product % does not exist', coalesce(product_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_product.';
    END IF;
END $$;

COMMENT ON FUNCTION billing.update_product(bigint, text, text, boolean, jsonb) IS
    'changes a product''s name, description, active flag or metadata (NULL keeps a value)';

CREATE OR REPLACE FUNCTION billing.create_price(
    product_id bigint, currency text, unit_amount numeric DEFAULT NULL, scheme text DEFAULT 'flat',
    cadence interval DEFAULT '1 month', usage_type text DEFAULT 'licensed',
    usage_aggregation text DEFAULT NULL, package_size numeric DEFAULT NULL, tiers jsonb DEFAULT NULL,
    setup_fee numeric DEFAULT NULL, trial_days integer DEFAULT 0, tax_rate_id bigint DEFAULT NULL,
    nickname text DEFAULT NULL, metadata jsonb DEFAULT '{}', bill_trial_usage boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM billing._authorize_all('create a price');
    IF NOT EXISTS (SELECT FROM billing.product p WHERE p.product_id = create_price.product_id) THEN
        RAISE EXCEPTION 'product % does not exist', coalesce(product_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_product.';
    END IF;
    PERFORM billing._check_tax_rate(tax_rate_id);
    IF scheme NOT IN ('flat', 'per_unit', 'package', 'graduated', 'volume') OR scheme IS NULL THEN
        RAISE EXCEPTION 'unknown price scheme "%"', scheme
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use flat, per_unit, package, graduated or volume.';
    END IF;
    IF usage_type NOT IN ('licensed', 'metered') OR usage_type IS NULL THEN
        RAISE EXCEPTION 'unknown usage type "%"', usage_type
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use licensed or metered.';
    END IF;
    IF usage_type = 'metered' AND usage_aggregation IS NULL THEN
        usage_aggregation := 'sum';
    END IF;
    IF usage_aggregation IS NOT NULL AND usage_aggregation NOT IN ('sum', 'max', 'count', 'unique_count', 'last') THEN
        RAISE EXCEPTION 'unknown usage aggregation "%"', usage_aggregation
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use sum, max, count, unique_count or last.';
    END IF;
    IF usage_type = 'licensed' AND usage_aggregation IS NOT NULL THEN
        RAISE EXCEPTION 'a usage aggregation needs usage_type metered'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass usage_type => ''metered''.';
    END IF;
    IF scheme = 'flat' AND usage_type = 'metered' THEN
        RAISE EXCEPTION 'a metered price cannot be flat'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use per_unit, package, graduated or volume.';
    END IF;
    IF bill_trial_usage AND usage_type = 'licensed' THEN
        RAISE EXCEPTION 'bill_trial_usage is for metered prices: a licensed price bills no usage'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave bill_trial_usage out, or pass usage_type => ''metered''.';
    END IF;
    IF scheme IN ('graduated', 'volume') THEN
        IF tiers IS NULL OR jsonb_typeof(tiers) <> 'array' OR jsonb_array_length(tiers) = 0 THEN
            RAISE EXCEPTION 'a % price needs tiers', scheme
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass tiers => ''[{"up_to": 10, "unit_amount": 5}, {"up_to": null, "unit_amount": 4}]''.';
        END IF;
        IF unit_amount IS NOT NULL THEN
            RAISE EXCEPTION 'a % price takes its amounts from its tiers, not unit_amount', scheme
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave unit_amount out.';
        END IF;
    ELSIF tiers IS NOT NULL THEN
        RAISE EXCEPTION 'tiers are only for graduated and volume prices, not %', scheme
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass scheme => ''graduated'' or ''volume''.';
    ELSIF unit_amount IS NULL THEN
        RAISE EXCEPTION 'a % price needs unit_amount', scheme
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass unit_amount => 9.99 (in the currency''s units).';
    END IF;
    IF (scheme = 'package') <> (package_size IS NOT NULL) THEN
        RAISE EXCEPTION 'package_size goes with scheme package, and only with it'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass scheme => ''package'', package_size => 100.';
    END IF;
    IF unit_amount < 0 OR setup_fee < 0 OR package_size <= 0 THEN
        RAISE EXCEPTION 'a price''s amounts must not be negative (unit_amount %, setup_fee %, package_size %)',
            unit_amount, setup_fee, package_size
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give credits as coupons or credit lines.';
    END IF;
    -- validates the cadence the way the cycle will use it (22023 if bad)
    PERFORM billing.period_containing('2000-01-01', cadence, '2000-01-01');

    INSERT INTO billing.price AS p (product_id, currency, scheme, usage_type, usage_aggregation, unit_amount,
                                    package_size, cadence, setup_fee, trial_days, tax_rate_id, nickname, metadata,
                                    bill_trial_usage)
    VALUES (product_id, upper(currency), scheme, usage_type, usage_aggregation, unit_amount, package_size,
            cadence, setup_fee, coalesce(trial_days, 0), tax_rate_id, nickname, coalesce(metadata, '{}'),
            coalesce(bill_trial_usage, false))
    RETURNING p.price_id INTO v_id;

    IF tiers IS NOT NULL THEN
        IF EXISTS (SELECT FROM (SELECT up_to, ord, count(*) OVER () AS n,
                                       lag(up_to) OVER (ORDER BY ord) AS prev
                                FROM (SELECT (t->>'up_to')::numeric AS up_to, ord
                                      FROM jsonb_array_elements(tiers) WITH ORDINALITY x(t, ord)) y) z
                   WHERE (ord < n AND up_to IS NULL) OR (ord = n AND up_to IS NOT NULL) OR up_to <= prev) THEN
            RAISE EXCEPTION 'tiers must have increasing up_to and end with one unbounded tier (up_to null): %', tiers
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Example: [{"up_to": 10, "unit_amount": 5}, {"up_to": null, "unit_amount": 4}].';
        END IF;
        INSERT INTO billing.price_tier (price_id, up_to, unit_amount, flat_amount)
        SELECT v_id, (t->>'up_to')::numeric, coalesce((t->>'unit_amount')::numeric, 0),
               coalesce((t->>'flat_amount')::numeric, 0)
        FROM jsonb_array_elements(tiers) t;
    END IF;
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.create_price(bigint, text, numeric, text, interval, text, text, numeric, jsonb, numeric, integer, bigint, text, jsonb, boolean) IS
    'creates a price of a product: scheme flat, per_unit, package, graduated or volume (tiers jsonb), '
    'licensed or metered (usage_aggregation sum, max, count, unique_count, last), cadence, setup fee, trial days, tax rate; '
    'bill_trial_usage: whether a metered price bills the usage dated during a trial (default: free)';

CREATE OR REPLACE FUNCTION billing.update_price(price_id bigint, nickname text DEFAULT NULL, active boolean DEFAULT NULL,
                                     tax_rate_id bigint DEFAULT NULL, trial_days integer DEFAULT NULL,
                                     metadata jsonb DEFAULT NULL, bill_trial_usage boolean DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('change a price');
    PERFORM billing._check_tax_rate(tax_rate_id);
    IF bill_trial_usage AND EXISTS (SELECT FROM billing.price p
                                    WHERE p.price_id = update_price.price_id AND p.usage_type = 'licensed') THEN
        RAISE EXCEPTION 'bill_trial_usage is for metered prices: price % is licensed', price_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave bill_trial_usage out.';
    END IF;
    UPDATE billing.price p
    SET nickname = coalesce(update_price.nickname, p.nickname),
        active = coalesce(update_price.active, p.active),
        tax_rate_id = coalesce(update_price.tax_rate_id, p.tax_rate_id),
        trial_days = coalesce(update_price.trial_days, p.trial_days),
        metadata = coalesce(update_price.metadata, p.metadata),
        bill_trial_usage = coalesce(update_price.bill_trial_usage, p.bill_trial_usage)
    WHERE p.price_id = update_price.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_price.';
    END IF;
END $$;

COMMENT ON FUNCTION billing.update_price(bigint, text, boolean, bigint, integer, jsonb, boolean) IS
    'changes a price''s nickname, active flag, tax rate, trial days, whether trial usage is billed, or metadata; '
    'amounts never change '
    '(create a new price and move subscriptions to it)';

CREATE OR REPLACE FUNCTION billing.price_amount(price_id bigint, quantity numeric DEFAULT 1, rounding text DEFAULT 'half_up')
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p billing.price;
BEGIN
    SELECT * INTO p FROM billing.price x WHERE x.price_id = price_amount.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_price.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give credits as coupons or credit lines.';
    END IF;
    PERFORM billing._check_rounding(rounding);
    RETURN billing.round_amount(billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size, quantity),
                                p.currency, rounding);
END $$;

COMMENT ON FUNCTION billing.price_amount(bigint, numeric, text) IS
    'what quantity units of a price cost for one full period, rounded once by the mode rounding (billing passes '
    'the entity''s); never by the session setting billing.rounding';

CREATE OR REPLACE FUNCTION billing.create_coupon(code text, duration text, percent_off numeric DEFAULT NULL,
                                      amount_off billing.amount DEFAULT NULL, duration_periods integer DEFAULT NULL,
                                      name text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM billing._authorize_all('create a coupon');
    IF (percent_off IS NULL) = (amount_off IS NULL) THEN
        RAISE EXCEPTION 'a coupon takes exactly one of percent_off and amount_off'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass percent_off => 20 or amount_off => ''5.00 USD''.';
    END IF;
    IF percent_off <= 0 OR percent_off > 100 OR amount_off <= billing.from_minor_units(0, billing.currency(amount_off)) THEN
        RAISE EXCEPTION 'a coupon must take off something positive, up to 100%%, not %', coalesce(percent_off::text, amount_off::text)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'percent_off is in (0, 100]; amount_off is positive.';
    END IF;
    IF duration IS NULL OR duration NOT IN ('once', 'repeating', 'forever')
       OR (duration = 'repeating') <> (duration_periods IS NOT NULL) OR duration_periods <= 0 THEN
        RAISE EXCEPTION 'bad coupon duration "%" with duration_periods %', duration, coalesce(duration_periods::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use once, forever, or repeating with duration_periods > 0.';
    END IF;
    IF EXISTS (SELECT FROM billing.coupon x WHERE lower(x.code) = lower(create_coupon.code)) THEN
        RAISE EXCEPTION 'coupon code "%" is taken: codes are the same whatever their case', code
            USING ERRCODE = 'unique_violation', HINT = 'Choose another code.';
    END IF;
    INSERT INTO billing.coupon AS c (code, name, percent_off, amount_off, duration, duration_periods)
    VALUES (code, name, percent_off, amount_off, duration, duration_periods)
    RETURNING c.coupon_id INTO v_id;
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.create_coupon(text, text, numeric, billing.amount, integer, text) IS
    'creates a coupon: percent_off or amount_off, for once, repeating (duration_periods) or forever; returns its id';

CREATE OR REPLACE FUNCTION billing.create_coupon(code text, duration text, amount_off numeric, currency text,
                                      duration_periods integer DEFAULT NULL, name text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('create a coupon');
    IF currency IS NULL THEN
        RAISE EXCEPTION 'a coupon''s amount_off as a number needs its currency'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass currency => ''USD'', or amount_off => ''10.00 USD''.';
    END IF;
    RETURN billing.create_coupon(code, duration, NULL::numeric, billing.amount(amount_off, currency),
                                 duration_periods, name);
END $$;

COMMENT ON FUNCTION billing.create_coupon(text, text, numeric, text, integer, text) IS
    'create_coupon with amount_off as a number in the given currency (exact: 22023 for more decimals than it has)';

-- 40_subscriptions.sql

CREATE OR REPLACE FUNCTION billing._check_price(price_id bigint, account_currency text, cadence interval, quantity numeric)
RETURNS billing.price LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p billing.price;
BEGIN
    SELECT * INTO p FROM billing.price x WHERE x.price_id = _check_price.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_price.';
    END IF;
    IF NOT p.active THEN
        RAISE EXCEPTION 'price % is not active', price_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Subscribe to an active price.';
    END IF;
    IF p.currency <> account_currency THEN
        RAISE EXCEPTION 'price % is in %, the account in %', price_id, p.currency, account_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a price in the account''s currency.';
    END IF;
    IF cadence IS NOT NULL AND p.cadence <> cadence THEN
        RAISE EXCEPTION 'price % bills every %, the subscription every %', price_id, p.cadence, cadence
            USING ERRCODE = 'invalid_parameter_value', HINT = 'All items of a subscription share one cadence.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Cancel the subscription to stop billing it.';
    END IF;
    -- a period amount beyond the bound of an amount (10^12 major units)
    -- could never be billed: 22003 here, not an error in every cycle
    IF p.usage_type = 'licensed' THEN
        PERFORM billing.round_amount(billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size,
                                                          quantity), p.currency);
    END IF;
    RETURN p;
END $$;

COMMENT ON FUNCTION billing._check_price(bigint, text, interval, numeric) IS
    'internal: the price, checked against the account''s currency, the subscription''s cadence and the quantity';

CREATE OR REPLACE FUNCTION billing.subscribe(
    account_id bigint, price_id bigint DEFAULT NULL, quantity numeric DEFAULT 1,
    start_date date DEFAULT NULL, anchor date DEFAULT NULL, trial_days integer DEFAULT NULL,
    coupon text DEFAULT NULL, items jsonb DEFAULT NULL, invoice_now boolean DEFAULT true,
    metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_today date;
    v_start date;
    v_trial integer;
    v_trial_end date;
    v_billing_start date;
    v_cadence interval;
    v_sub bigint;
    it record;
    p billing.price;
    v_rounding text;
BEGIN
    PERFORM billing._authorize_account(subscribe.account_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = subscribe.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_account.';
    END IF;
    IF (items IS NULL) = (price_id IS NULL) THEN
        RAISE EXCEPTION 'subscribe takes price_id or items, one of them'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass price_id => 1, or items => ''[{"price_id": 1, "quantity": 2}]''.';
    END IF;
    IF items IS NULL THEN
        items := jsonb_build_array(jsonb_build_object('price_id', price_id, 'quantity', quantity));
    ELSIF jsonb_typeof(items) <> 'array' OR jsonb_array_length(items) = 0 THEN
        RAISE EXCEPTION 'items must be a non-empty jsonb array, not %', items
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: [{"price_id": 1, "quantity": 2}].';
    END IF;
    v_today := billing.today(a.timezone);
    IF start_date IS NOT NULL OR anchor IS NOT NULL THEN
        PERFORM billing._check_date(start_date, 'start_date', v_today), billing._check_date(anchor, 'anchor', v_today);
    END IF;
    v_start := coalesce(start_date, v_today);
    v_trial := 0;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    FOR it IN SELECT (e->>'price_id')::bigint AS price_id, coalesce((e->>'quantity')::numeric, 1) AS quantity
              FROM jsonb_array_elements(items) e LOOP
        p := billing._check_price(it.price_id, a.currency, v_cadence, it.quantity);
        v_cadence := p.cadence;
        v_trial := greatest(v_trial, p.trial_days);
    END LOOP;
    v_trial := coalesce(trial_days, v_trial);
    IF v_trial < 0 THEN
        RAISE EXCEPTION 'trial_days must be zero or more, not %', v_trial
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass trial_days => 0 for no trial.';
    END IF;
    -- (a trial of more than 20 years ends outside the window from any start
    -- in it, and could leave the date range)
    IF v_trial > 7305 THEN
        RAISE EXCEPTION 'trial_days % ends the trial outside the dates billing accepts', v_trial
            USING ERRCODE = 'datetime_field_overflow', HINT = 'A trial ends within 10 years of today.';
    END IF;
    IF v_trial > 0 THEN
        v_trial_end := billing._check_date(v_start + v_trial, 'the trial''s end', v_today);
    END IF;
    v_billing_start := coalesce(v_trial_end, v_start);

    INSERT INTO billing.subscription AS s (account_id, status, anchor, cadence, start_date, trial_end,
                                           next_bill_date, metadata)
    VALUES (a.account_id, CASE WHEN v_trial_end IS NULL THEN 'active' ELSE 'trialing' END,
            coalesce(anchor, v_billing_start), v_cadence, v_start, v_trial_end, v_billing_start,
            coalesce(metadata, '{}'))
    RETURNING s.subscription_id INTO v_sub;

    INSERT INTO billing.subscription_item (account_id, subscription_id, price_id, quantity, started_on)
    SELECT a.account_id, v_sub, (e->>'price_id')::bigint, coalesce((e->>'quantity')::numeric, 1), v_start
    FROM jsonb_array_elements(items) WITH ORDINALITY x(e, ord) ORDER BY ord;

    -- setup fees go on the first invoice
    INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                      description, quantity, unit_amount, amount, period_start)
    SELECT a.account_id, v_sub, i.subscription_item_id, pp.price_id, 'setup_fee',
           pr.name || ' setup fee', 1, pp.setup_fee, billing.round_amount(pp.setup_fee, pp.currency, v_rounding), v_start
    FROM billing.subscription_item i
    JOIN billing.price pp ON pp.price_id = i.price_id
    JOIN billing.product pr ON pr.product_id = pp.product_id
    WHERE i.account_id = a.account_id AND i.subscription_id = v_sub AND pp.setup_fee > 0
    ORDER BY i.subscription_item_id;

    IF coupon IS NOT NULL THEN
        PERFORM billing.apply_coupon(a.account_id, v_sub, coupon);
    END IF;
    PERFORM billing._event(a.account_id, 'subscription.created',
                           jsonb_build_object('subscription_id', v_sub, 'start_date', v_start,
                                              'trial_end', v_trial_end));
    IF invoice_now AND v_billing_start <= v_today THEN
        PERFORM billing._bill(ARRAY[a.account_id], ARRAY[v_sub], NULL, billing.now(), 'cycle');
    END IF;
    RETURN v_sub;
END $$;

COMMENT ON FUNCTION billing.subscribe(bigint, bigint, numeric, date, date, integer, text, jsonb, boolean, jsonb) IS
    'subscribes an account to a price (or items: [{"price_id", "quantity"}]) from start_date (default today in '
    'the account''s time zone), after trial_days (default the prices'' trial), periods anchored at anchor '
    '(default the first billed day); invoices the first period at once when its bill date has come and invoice_now; returns its id';

CREATE OR REPLACE FUNCTION billing.apply_coupon(account_id bigint, subscription_id bigint, code text,
                                     replace boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    c billing.coupon;
    v_currency text;
    v_until date;
    v_from date;
BEGIN
    PERFORM billing._authorize_account(apply_coupon.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO c FROM billing.coupon x WHERE lower(x.code) = lower(apply_coupon.code);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'coupon "%" does not exist', code
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_coupon.';
    END IF;
    IF NOT c.active THEN
        RAISE EXCEPTION 'coupon "%" is not active', code
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an active coupon.';
    END IF;
    IF s.next_bill_date IS NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Coupons apply to subscriptions still billed.';
    END IF;
    -- the coupon covers invoices from the next bill date, or from the
    -- subscription's oldest draft (77_drafts.sql): a draft is still being
    -- made, and its discount lines are computed again when it is finalized
    SELECT least(s.next_bill_date, min(i.bill_date)) INTO v_from
    FROM billing.invoice i
    WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id AND i.status = 'draft';
    v_from := coalesce(v_from, s.next_bill_date);
    -- a coupon still running is the customer's: replacing it is a decision
    -- the caller states, never a side effect
    IF s.coupon_id IS NOT NULL AND (s.coupon_until IS NULL OR s.coupon_until > v_from)
       AND NOT coalesce(apply_coupon.replace, false) THEN
        RAISE EXCEPTION 'subscription % has a coupon still running (coupon %, until %)', subscription_id, s.coupon_id,
            coalesce(s.coupon_until::text, 'forever')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Pass replace => true to replace it from the next invoice on.';
    END IF;
    SELECT a.currency INTO v_currency FROM billing.account a WHERE a.account_id = s.account_id;
    IF c.amount_off IS NOT NULL AND billing.currency(c.amount_off) <> v_currency THEN
        RAISE EXCEPTION 'coupon "%" takes off %, the account is in %', code, c.amount_off, v_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a coupon in the account''s currency or a percent coupon.';
    END IF;
    -- for its periods
    IF c.duration <> 'forever' THEN
        SELECT upper(p) INTO v_until
        FROM billing.periods_between(s.anchor, s.cadence,
                 daterange(v_from, (v_from + s.cadence * coalesce(c.duration_periods, 1))::date, '[]'))
             WITH ORDINALITY x(p, ord)
        WHERE ord = coalesce(c.duration_periods, 1);
    END IF;
    UPDATE billing.subscription x
    SET coupon_id = c.coupon_id, coupon_from = v_from, coupon_until = v_until, updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
END $$;

COMMENT ON FUNCTION billing.apply_coupon(bigint, bigint, text, boolean) IS
    'applies a coupon (its code in any case) to a subscription from its next invoice on (its oldest draft, if it '
    'has one), for the coupon''s duration; a coupon still running is replaced only with replace => true (else 55000)';

CREATE OR REPLACE FUNCTION billing.change_subscription(
    account_id bigint, subscription_id bigint, price_id bigint DEFAULT NULL, quantity numeric DEFAULT NULL,
    proration text DEFAULT 'prorate_next', effective_date date DEFAULT NULL,
    subscription_item_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    i billing.subscription_item;
    p_old billing.price;
    p_new billing.price;
    v_d date;
    v_new bigint;
    v_cycle daterange;
    v_items integer;
    v_new_cadence boolean;
    v_rounding text;
BEGIN
    PERFORM billing._authorize_account(change_subscription.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    IF s.status IN ('canceled', 'paused') OR s.cancel_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id,
            CASE WHEN s.cancel_on IS NOT NULL AND s.status NOT IN ('canceled', 'paused')
                 THEN 'canceled from ' || s.cancel_on ELSE s.status END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a subscription that is billed and not canceled can change.';
    END IF;
    IF proration IS NULL OR proration NOT IN ('prorate_now', 'prorate_next', 'none', 'at_period_end') THEN
        RAISE EXCEPTION 'unknown proration behavior "%"', proration
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use prorate_now, prorate_next, none or at_period_end.';
    END IF;
    IF price_id IS NULL AND quantity IS NULL THEN
        RAISE EXCEPTION 'nothing to change'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass price_id, quantity or both.';
    END IF;
    -- the item: the one given, or the subscription's only open item
    SELECT count(*) INTO v_items FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (change_subscription.subscription_item_id IS NULL
           OR x.subscription_item_id = change_subscription.subscription_item_id);
    IF v_items <> 1 THEN
        RAISE EXCEPTION '%', CASE WHEN change_subscription.subscription_item_id IS NULL
                                  THEN format('subscription %s has %s current items', subscription_id, v_items)
                                  ELSE format('item %s is no current item of subscription %s',
                                              change_subscription.subscription_item_id, subscription_id) END
            USING ERRCODE = CASE WHEN change_subscription.subscription_item_id IS NULL
                                 THEN 'invalid_parameter_value' ELSE 'no_data_found' END,
                  HINT = 'Name the item with subscription_item_id.';
    END IF;
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (change_subscription.subscription_item_id IS NULL
           OR x.subscription_item_id = change_subscription.subscription_item_id);
    SELECT * INTO p_old FROM billing.price x WHERE x.price_id = i.price_id;
    p_new := billing._check_price(coalesce(change_subscription.price_id, i.price_id), a.currency, NULL,
                                  coalesce(quantity, i.quantity));
    -- A change to a price of another cadence (yearly to monthly) starts the
    -- new cadence on the day of the change: the unused part of the billed
    -- period is credited (unless proration none) and the new period billed
    -- at once, on one invoice.  The subscription's items share one cadence,
    -- so only a subscription of one current item can change it, and only
    -- from a day of the billed period (at period end, say so with
    -- effective_date = next_bill_date).
    v_new_cadence := p_new.cadence <> s.cadence;
    IF v_new_cadence THEN
        IF proration = 'at_period_end' THEN
            RAISE EXCEPTION 'price % bills every %, the subscription every %: a change of cadence starts now',
                p_new.price_id, p_new.cadence, s.cadence
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass proration => ''prorate_now'' (or ''none''), with effective_date => next_bill_date for the end of the period.';
        END IF;
        IF EXISTS (SELECT FROM billing.subscription_item x
                   WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
                     AND x.subscription_item_id <> i.subscription_item_id) THEN
            RAISE EXCEPTION 'price % bills every %, the subscription''s other items every %', p_new.price_id,
                p_new.cadence, s.cadence
                USING ERRCODE = 'invalid_parameter_value', HINT = 'All items of a subscription share one cadence.';
        END IF;
    END IF;

    IF proration = 'at_period_end' THEN
        -- at the end of the billed period, or of a later one: a seller who
        -- changes a price dates it far enough ahead for its notice
        -- (set_price_change_notice_days) to reach the customer in time
        IF effective_date IS NOT NULL AND (effective_date < s.next_bill_date
               OR lower(billing.period_containing(s.anchor, s.cadence, effective_date)) <> effective_date
               OR effective_date > s.next_bill_date + interval '10 years') THEN
            RAISE EXCEPTION 'a change at period end takes effect where a period begins, on % or later (within ten '
                            'years), not on %', s.next_bill_date, effective_date
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave effective_date out for the end of the billed period, or pass a later period''s first day.';
        END IF;
        v_d := coalesce(effective_date, s.next_bill_date);
    ELSE
        v_d := coalesce(billing._check_date(effective_date, 'effective_date', billing.today(a.timezone)),
                        billing.today(a.timezone));
        IF v_d < coalesce(s.current_period_start, s.start_date) OR v_d < i.started_on THEN
            RAISE EXCEPTION 'change dated % falls in a closed period (the current one starts on %)',
                v_d, greatest(coalesce(s.current_period_start, s.start_date), i.started_on)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the change in the current period.';
        END IF;
        IF v_d > s.next_bill_date THEN
            RAISE EXCEPTION 'change dated % is after the current period, which ends on %', v_d, s.next_bill_date
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use proration => ''at_period_end''.';
        END IF;
    END IF;

    UPDATE billing.subscription_item x SET ended_on = v_d
    WHERE x.account_id = i.account_id AND x.subscription_item_id = i.subscription_item_id;
    INSERT INTO billing.subscription_item AS x (account_id, subscription_id, price_id, quantity, started_on)
    VALUES (s.account_id, s.subscription_id, p_new.price_id, coalesce(quantity, i.quantity), v_d)
    RETURNING x.subscription_item_id INTO v_new;

    -- prorations of a licensed item within the billed current period
    IF proration IN ('prorate_now', 'prorate_next') AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        v_cycle := billing.period_containing(s.anchor, s.cadence, v_d);
    END IF;
    -- A quantity change of a billed item on the same price prorates the
    -- difference, rounded once: 10 seats for 8 days and 20 for 22 of a
    -- 30-day month at 1.00 cost 17.33, as their own prorations do, where a
    -- credit of the 10 and a charge of the 20, each rounded, would ask 17.34.
    IF v_cycle IS NOT NULL AND p_new.price_id = i.price_id AND coalesce(quantity, i.quantity) = i.quantity THEN
        NULL;  -- the same price and quantity: nothing to prorate
    ELSIF v_cycle IS NOT NULL AND p_new.price_id = i.price_id AND p_new.usage_type = 'licensed'
          AND (i.started_on <= s.current_period_start OR EXISTS (
               SELECT FROM billing.pending_item q
               WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
                 AND q.kind = 'proration' AND q.period_end = s.current_period_end)) THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, v_new, p_new.price_id, 'proration',
               'Change from ' || trim_scale(i.quantity) || ' to ' || trim_scale(quantity) || ' x ' || pd.name
               || coalesce(' (' || p_new.nickname || ')', '') || ' from ' || v_d,
               quantity - i.quantity, p_new.unit_amount,
               billing.prorate(billing.price_amount(p_new.price_id, quantity, v_rounding)
                               - billing.price_amount(p_new.price_id, i.quantity, v_rounding),
                               v_cycle, daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.product pd WHERE pd.product_id = p_new.product_id;
    ELSIF v_cycle IS NOT NULL AND v_new_cadence THEN
        NULL;  -- the credit below, the new period billed from v_d
    ELSIF v_cycle IS NOT NULL THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, x.item, x.pid, 'proration', dd.descr, x.qty, pr.unit_amount,
               x.sign * billing.prorate(billing.price_amount(x.pid, x.qty, v_rounding), v_cycle,
                                        daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM (VALUES (i.subscription_item_id, i.price_id, i.quantity, -1, 'Unused time'),
                     (v_new, p_new.price_id, coalesce(quantity, i.quantity), 1, 'Remaining time')) x(item, pid, qty, sign, what)
        JOIN billing.price pr ON pr.price_id = x.pid AND pr.usage_type = 'licensed'
        JOIN billing.product pd ON pd.product_id = pr.product_id
        CROSS JOIN LATERAL (SELECT x.what || ' on ' || pd.name || coalesce(' (' || pr.nickname || ')', '')
                                   || ' x ' || trim_scale(x.qty) || ' from ' || v_d AS descr) dd
        -- the old item is credited only if it was billed for this period
        WHERE x.sign = 1 OR i.started_on <= s.current_period_start OR EXISTS (
            SELECT FROM billing.pending_item q
            WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
              AND q.kind = 'proration' AND q.period_end = s.current_period_end)
        ORDER BY x.sign;
    END IF;
    IF v_new_cadence THEN
        -- the unused part of the old item's billed period, if it was billed
        IF v_cycle IS NOT NULL AND p_old.usage_type = 'licensed'
           AND (i.started_on <= s.current_period_start OR EXISTS (
                SELECT FROM billing.pending_item q
                WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
                  AND q.kind = 'proration' AND q.period_end = s.current_period_end)) THEN
            INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                              description, quantity, unit_amount, amount, period_start, period_end)
            SELECT s.account_id, s.subscription_id, i.subscription_item_id, p_old.price_id, 'proration',
                   'Unused time on ' || pd.name || coalesce(' (' || p_old.nickname || ')', '') || ' x '
                   || trim_scale(i.quantity) || ' from ' || v_d,
                   i.quantity, p_old.unit_amount,
                   -billing.prorate(billing.price_amount(p_old.price_id, i.quantity, v_rounding), v_cycle,
                                    daterange(v_d, s.current_period_end), 'actual', v_rounding),
                   v_d, s.current_period_end
            FROM billing.product pd WHERE pd.product_id = p_old.product_id;
        END IF;
        UPDATE billing.subscription x
        SET anchor = v_d, cadence = p_new.cadence, next_bill_date = v_d, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_d,
                                              'old_item', i.subscription_item_id, 'new_item', v_new,
                                              'price_id', p_new.price_id, 'quantity', coalesce(quantity, i.quantity),
                                              'proration', proration));
    IF v_new_cadence THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'cycle');
    ELSIF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_new;
END $$;

COMMENT ON FUNCTION billing.change_subscription(bigint, bigint, bigint, numeric, text, date, bigint) IS
    'changes the price and/or quantity of a subscription''s item from effective_date (default today): the item '
    'ends and a new one starts (its id is returned); proration prorate_now (credit the unused part, charge the '
    'new one, invoice now), prorate_next (on the next invoice), none, or at_period_end';

CREATE OR REPLACE FUNCTION billing.cancel_subscription(account_id bigint, subscription_id bigint,
                                            at_period_end boolean DEFAULT true, prorate boolean DEFAULT false,
                                            cancel_date date DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_d date;
    v_rounding text;
BEGIN
    PERFORM billing._authorize_account(cancel_subscription.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    IF s.status = 'canceled' OR (at_period_end AND s.cancel_on IS NOT NULL) THEN
        RAISE EXCEPTION 'subscription % is already canceled (from %)', subscription_id, coalesce(s.canceled_on, s.cancel_on)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to do.';
    END IF;
    IF at_period_end IS NULL OR prorate IS NULL THEN
        RAISE EXCEPTION 'at_period_end and prorate must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass true or false.';
    END IF;
    IF at_period_end THEN
        IF s.status = 'paused' THEN
            RAISE EXCEPTION 'subscription % is paused: it has no period to end', subscription_id
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Cancel it now (at_period_end => false).';
        END IF;
        IF prorate OR cancel_date IS NOT NULL THEN
            RAISE EXCEPTION 'a cancellation at period end takes no proration and no date'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use at_period_end => false to cancel on a date.';
        END IF;
        UPDATE billing.subscription x SET cancel_on = s.next_bill_date, pause_on = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
        PERFORM billing._event(s.account_id, 'subscription.updated',
                               jsonb_build_object('subscription_id', s.subscription_id, 'cancel_on', s.next_bill_date));
        RETURN;
    END IF;

    v_d := coalesce(billing._check_date(cancel_date, 'cancel_date', billing.today(a.timezone)),
                    billing.today(a.timezone));
    IF v_d < coalesce(s.current_period_start, s.start_date) OR v_d < coalesce(s.paused_on, v_d) THEN
        RAISE EXCEPTION 'cancellation dated % falls in a closed period (the current one starts on %)',
            v_d, coalesce(s.paused_on, s.current_period_start, s.start_date)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the cancellation in the current period.';
    END IF;
    IF s.next_bill_date IS NOT NULL AND v_d > s.next_bill_date THEN
        RAISE EXCEPTION 'cancellation dated % is after the current period, which ends on %', v_d, s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use at_period_end => true.';
    END IF;
    -- credit the unused part of the billed period, item by item
    IF prorate AND s.current_period_end IS NOT NULL AND s.status <> 'paused'
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, i.subscription_item_id, i.price_id, 'proration',
               'Unused time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(i.quantity) || ' from ' || v_d,
               i.quantity, p.unit_amount,
               -billing.prorate(billing.price_amount(i.price_id, i.quantity, v_rounding),
                                billing.period_containing(s.anchor, s.cadence, v_d),
                                daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.subscription_item i
        JOIN billing.price p ON p.price_id = i.price_id AND p.usage_type = 'licensed'
        JOIN billing.product pd ON pd.product_id = p.product_id
        WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id
          AND i.started_on <= v_d AND (i.ended_on IS NULL OR i.ended_on > v_d)
          AND (i.started_on <= s.current_period_start OR EXISTS (
                SELECT FROM billing.pending_item q
                WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
                  AND q.kind = 'proration' AND q.period_end = s.current_period_end))
        ORDER BY i.subscription_item_id;
    END IF;
    -- an item scheduled to start later (a change at period end) never
    -- runs: it ends on its own first day, an empty life no period bills
    UPDATE billing.subscription_item x SET ended_on = greatest(x.started_on, v_d)
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id
      AND (x.ended_on IS NULL OR x.ended_on > v_d);
    UPDATE billing.subscription x
    SET status = 'canceled', canceled_on = v_d, cancel_on = v_d, pause_on = NULL, next_bill_date = NULL,
        updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    PERFORM billing._event(s.account_id, 'subscription.canceled',
                           jsonb_build_object('subscription_id', s.subscription_id, 'canceled_on', v_d));
    -- the final invoice: usage so far, pending items, the credit
    PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
END $$;

COMMENT ON FUNCTION billing.cancel_subscription(bigint, bigint, boolean, boolean, date) IS
    'cancels a subscription at the end of its current period (default), or now / on cancel_date with a final '
    'invoice of its usage and, with prorate, a credit for the unused part of the billed period';

CREATE OR REPLACE FUNCTION billing.pause_subscription(account_id bigint, subscription_id bigint)
RETURNS date LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
BEGIN
    PERFORM billing._authorize_account(pause_subscription.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    IF s.status IN ('canceled', 'paused') OR s.cancel_on IS NOT NULL OR s.pause_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id,
            CASE WHEN s.status IN ('canceled', 'paused') THEN s.status
                 WHEN s.cancel_on IS NOT NULL THEN 'canceled from ' || s.cancel_on
                 ELSE 'paused from ' || s.pause_on END
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only a billed subscription can pause.';
    END IF;
    UPDATE billing.subscription x SET pause_on = s.next_bill_date, updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'pause_on', s.next_bill_date));
    RETURN s.next_bill_date;
END $$;

COMMENT ON FUNCTION billing.pause_subscription(bigint, bigint) IS
    'pauses a subscription at the end of its current period (returned): no invoice after it until resumed';

CREATE OR REPLACE FUNCTION billing.resume_subscription(account_id bigint, subscription_id bigint,
                                            resume_date date DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_d date;
BEGIN
    PERFORM billing._authorize_account(resume_subscription.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    PERFORM billing._check_date(resume_date, 'resume_date', billing.today(a.timezone));
    IF s.status <> 'paused' AND s.pause_on IS NULL THEN
        RAISE EXCEPTION 'subscription % is % and not paused', subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only a paused subscription resumes.';
    END IF;
    IF s.status <> 'paused' THEN
        -- the pause has not begun: forget it
        UPDATE billing.subscription x SET pause_on = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    ELSE
        v_d := coalesce(resume_date, billing.today(a.timezone));
        IF v_d < s.paused_on THEN
            RAISE EXCEPTION 'resume date % is before the pause began on %', v_d, s.paused_on
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Resume on or after the pause date.';
        END IF;
        UPDATE billing.subscription x
        SET status = 'active', next_bill_date = v_d, paused_on = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.resumed',
                           jsonb_build_object('subscription_id', s.subscription_id, 'resume_date', v_d));
    IF v_d IS NOT NULL AND v_d <= billing.today(a.timezone) THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], NULL, billing.now(), 'cycle');
    END IF;
END $$;

COMMENT ON FUNCTION billing.resume_subscription(bigint, bigint, date) IS
    'resumes a paused subscription on resume_date (default today): the period it falls in is billed prorated '
    'from that day, at once when that day has come; a pause not yet begun is simply dropped';

CREATE OR REPLACE FUNCTION billing.record_usage(account_id bigint, subscription_item_id bigint, quantity numeric,
                                     idempotency_key text, occurred_at timestamptz DEFAULT NULL,
                                     value text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    i billing.subscription_item;
    v_tz text;
    v_usage_type text;
    v_at timestamptz := coalesce(occurred_at, billing.now());
    v_date date;
    v_id bigint;
    e billing.usage_event;
BEGIN
    PERFORM billing._authorize_account(record_usage.account_id);
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = record_usage.account_id AND x.subscription_item_id = record_usage.subscription_item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % does not exist', coalesce(subscription_item_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    END IF;
    SELECT p.usage_type INTO v_usage_type FROM billing.price p WHERE p.price_id = i.price_id;
    IF v_usage_type <> 'metered' THEN
        RAISE EXCEPTION 'subscription item % has a licensed price, not a metered one', subscription_item_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Change its quantity with billing.change_subscription.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'usage quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record corrections as credits.';
    END IF;
    IF idempotency_key IS NULL OR idempotency_key = '' THEN
        RAISE EXCEPTION 'usage needs an idempotency key'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the event in your system.';
    END IF;
    SELECT a.timezone INTO v_tz FROM billing.account a WHERE a.account_id = i.account_id;
    IF occurred_at IS NULL THEN
        v_date := billing.today(v_tz, v_at);
    ELSE
        v_date := billing._check_date(billing.today(v_tz, v_at), 'the day of occurred_at', billing.today(v_tz));
    END IF;
    IF v_date < i.started_on OR v_date >= i.ended_on THEN
        RAISE EXCEPTION 'usage on % is outside subscription item %''s time [%, %)', v_date, subscription_item_id,
            i.started_on, coalesce(i.ended_on::text, 'open')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record it on the item that was current then.';
    END IF;
    INSERT INTO billing.usage_event AS x (account_id, subscription_item_id, quantity, value, occurred_at, usage_date,
                                          idempotency_key)
    VALUES (i.account_id, i.subscription_item_id, quantity, value, v_at, v_date, idempotency_key)
    ON CONFLICT ON CONSTRAINT usage_event_account_id_idempotency_key_key DO NOTHING
    RETURNING x.usage_event_id INTO v_id;
    IF v_id IS NULL THEN
        SELECT * INTO e FROM billing.usage_event x
        WHERE x.account_id = i.account_id AND x.idempotency_key = record_usage.idempotency_key;
        IF e.subscription_item_id <> i.subscription_item_id OR e.quantity <> quantity
           OR e.value IS DISTINCT FROM record_usage.value
           OR (record_usage.occurred_at IS NOT NULL AND e.occurred_at <> record_usage.occurred_at) THEN
            RAISE EXCEPTION 'idempotency key "%" was already used for other usage (event %)', idempotency_key,
                e.usage_event_id
                USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
        END IF;
        v_id := e.usage_event_id;
    END IF;
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.record_usage(bigint, bigint, numeric, text, timestamptz, text) IS
    'records usage of a metered item once per idempotency key (the same key again returns the same event, with '
    'other content it is an error); a late event for a billed period goes on the next invoice';

-- 50_invoicing.sql

CREATE OR REPLACE FUNCTION billing._take_invoice_numbers(entity_ids bigint[], issue_dates date[], take boolean DEFAULT true)
RETURNS text[] LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH x AS MATERIALIZED (
        SELECT u.ord, u.entity_id, e.number_digits,
               e.invoice_prefix || CASE WHEN e.number_per_year THEN '-' || extract(year FROM u.issue_date) ELSE '' END
                   AS series
        FROM unnest(entity_ids, issue_dates) WITH ORDINALITY u(entity_id, issue_date, ord)
        JOIN billing.billing_entity e ON e.entity_id = u.entity_id
    ), n AS MATERIALIZED (
        SELECT x.*, row_number() OVER (PARTITION BY x.entity_id, x.series ORDER BY x.ord) AS rn,
               count(*) OVER (PARTITION BY x.entity_id, x.series) AS in_series
        FROM x
    ), counter AS (
        INSERT INTO billing.invoice_number_series AS c (entity_id, series, last_number)
        SELECT entity_id, series, CASE WHEN take THEN count(*) ELSE 0 END FROM n GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (entity_id, series) DO UPDATE SET last_number = c.last_number + excluded.last_number
        RETURNING c.entity_id, c.series, c.last_number
    )
    SELECT array_agg(n.series || '-' || lpad(q.seq, greatest(n.number_digits, length(q.seq)), '0') ORDER BY n.ord)
    FROM n
    JOIN counter c ON c.entity_id = n.entity_id AND c.series = n.series
    CROSS JOIN LATERAL (SELECT (c.last_number - n.in_series + n.rn)::text AS seq) q
    WHERE take
$$;

COMMENT ON FUNCTION billing._take_invoice_numbers(bigint[], date[], boolean) IS
    'internal: takes the next gapless invoice numbers of these entities'' series for invoices issued on these days '
    '(in array order) and returns them; take false only locks the series'' counters';

CREATE OR REPLACE FUNCTION billing._bill_dates(accounts bigint[], subscriptions bigint[], as_of date,
                                        at timestamptz, mode text, assign_ids boolean DEFAULT false)
RETURNS TABLE (account_id bigint, subscription_id bigint, bill_date date, seq bigint, n bigint,
               cycle_start date, cycle_end date, usage_from date, with_usage boolean, ends text,
               billing_reason text, as_of_date date, anchor date, cadence interval, currency text,
               tax_exempt boolean, account_tax_rate_id bigint, coupon_id bigint, invoice_id bigint,
               rounding text)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH s AS (
        SELECT s.account_id, s.subscription_id, s.anchor, s.cadence, s.next_bill_date, s.status,
               s.cancel_on, s.pause_on, least(s.cancel_on, s.pause_on) AS stop,
               s.coupon_id, s.coupon_from, s.coupon_until,
               a.currency, a.tax_exempt, a.tax_rate_id AS account_tax_rate_id, e.rounding,
               CASE WHEN _bill_dates.mode = 'preview' AND _bill_dates.as_of IS NULL
                    THEN greatest(s.next_bill_date, billing.today(a.timezone, _bill_dates.at))
                    ELSE coalesce(_bill_dates.as_of, billing.today(a.timezone, _bill_dates.at))
               END AS d
        FROM unnest(accounts, subscriptions) u(account_id, subscription_id)
        JOIN billing.subscription s ON s.account_id = u.account_id AND s.subscription_id = u.subscription_id
        JOIN billing.account a ON a.account_id = s.account_id
        -- every amount of the invoice is rounded by the entity's mode
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        -- a subscription dunning suspended is not billed, so not previewed
        -- either (invariant 7); it bills again from the day it is restored
        WHERE NOT (s.status = 'suspended' AND _bill_dates.mode IN ('cycle', 'preview'))
    ), b AS (
        -- recurring periods
        SELECT s.*, greatest(lower(p), s.next_bill_date) AS bill_date,
               lower(p) AS cycle_start, upper(p) AS cycle_end, NULL::text AS ends,
               true AS with_usage, 'subscription_cycle' AS billing_reason
        FROM s CROSS JOIN LATERAL billing.periods_between(s.anchor, s.cadence, daterange(s.next_bill_date, s.d, '[]')) p
        WHERE _bill_dates.mode IN ('cycle', 'preview') AND s.next_bill_date <= s.d
          AND greatest(lower(p), s.next_bill_date) <= s.d
          AND (s.stop IS NULL OR greatest(lower(p), s.next_bill_date) < s.stop)
        UNION ALL
        -- a scheduled cancellation or pause
        SELECT s.*, s.stop, NULL, NULL,
               CASE WHEN s.stop = s.cancel_on THEN 'canceled' ELSE 'paused' END,
               true, CASE WHEN s.stop = s.cancel_on THEN 'subscription_cancel' ELSE 'subscription_cycle' END
        FROM s
        WHERE _bill_dates.mode IN ('cycle', 'preview') AND s.next_bill_date <= s.d AND s.stop <= s.d
        UNION ALL
        -- an invoice now: usage only when the subscription has ended
        SELECT s.*, s.d, NULL, NULL, NULL,
               s.status = 'canceled',
               CASE WHEN s.status = 'canceled' THEN 'subscription_cancel' ELSE 'subscription_update' END
        FROM s
        WHERE _bill_dates.mode = 'now'
    )
    SELECT b.account_id, b.subscription_id, b.bill_date,
           row_number() OVER w, count(*) OVER (PARTITION BY b.account_id, b.subscription_id),
           b.cycle_start, b.cycle_end, lag(b.bill_date) OVER w, b.with_usage, b.ends, b.billing_reason, b.d,
           b.anchor, b.cadence, b.currency, b.tax_exempt, b.account_tax_rate_id,
           -- the coupon, if this invoice is in its time
           CASE WHEN b.bill_date >= b.coupon_from AND (b.coupon_until IS NULL OR b.bill_date < b.coupon_until)
                THEN b.coupon_id END,
           -- the invoice's id, when the cycle is going to insert it
           CASE WHEN assign_ids THEN nextval('billing.invoice_invoice_id_seq') END,
           b.rounding
    FROM b
    WINDOW w AS (PARTITION BY b.account_id, b.subscription_id ORDER BY b.bill_date, b.ends NULLS FIRST)
$$;

COMMENT ON FUNCTION billing._bill_dates(bigint[], bigint[], date, timestamptz, text, boolean) IS
    'internal: the invoices to bill for these subscriptions as of a date (NULL: each account''s today at at), '
    'one row per invoice with the rounding mode of its entity; mode cycle, preview or now; assign_ids takes an '
    'invoice id for each';

CREATE OR REPLACE FUNCTION billing._usage_line(account_id bigint, subscription_item_id bigint, price_id bigint,
                                    period daterange, up_to date, started_on date, ended_on date,
                                    free_until date, in_trial boolean, taking bigint[], currency text,
                                    rounding text, OUT quantity numeric, OUT amount billing.amount,
                                    OUT period_start date, OUT period_end date)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT q.total - coalesce(prev.quantity, 0),
           CASE WHEN _usage_line.in_trial THEN billing.from_minor_units(0, _usage_line.currency)
                ELSE billing.round_amount(billing._price_value(p.price_id, p.scheme, p.unit_amount,
                                                               p.package_size, q.total),
                                          _usage_line.currency, _usage_line.rounding)
                     - coalesce(prev.amount, billing.from_minor_units(0, _usage_line.currency)) END,
           CASE WHEN _usage_line.in_trial THEN greatest(lower(_usage_line.period), _usage_line.started_on)
                ELSE greatest(lower(_usage_line.period), _usage_line.started_on, _usage_line.free_until) END,
           least(upper(_usage_line.period), _usage_line.up_to, _usage_line.ended_on,
                 CASE WHEN _usage_line.in_trial THEN _usage_line.free_until END)
    FROM billing.price p
    CROSS JOIN LATERAL (
        SELECT CASE p.usage_aggregation
               WHEN 'sum' THEN coalesce(sum(e.quantity), 0)
               WHEN 'max' THEN coalesce(max(e.quantity), 0)
               WHEN 'count' THEN count(*)
               WHEN 'unique_count' THEN count(DISTINCT e.value)
               ELSE coalesce((array_agg(e.quantity ORDER BY e.occurred_at DESC, e.usage_event_id DESC))[1], 0)
               END AS total
        FROM billing.usage_event e
        WHERE e.account_id = _usage_line.account_id AND e.subscription_item_id = _usage_line.subscription_item_id
          AND e.usage_date >= lower(_usage_line.period)
          AND e.usage_date < least(upper(_usage_line.period), _usage_line.up_to)
          AND (e.invoice_id IS NOT NULL OR e.usage_event_id = ANY (_usage_line.taking))
          AND (_usage_line.free_until IS NULL OR (e.usage_date < _usage_line.free_until) = _usage_line.in_trial)
    ) q
    LEFT JOIN LATERAL (
        SELECT sum(l.quantity) AS quantity, billing.sum(l.amount) AS amount
        FROM billing.invoice_line l
        WHERE l.account_id = _usage_line.account_id AND l.subscription_item_id = _usage_line.subscription_item_id
          AND l.kind = 'usage' AND l.period_start >= lower(_usage_line.period)
          AND l.period_start < upper(_usage_line.period)
          AND (_usage_line.free_until IS NULL OR (l.period_start < _usage_line.free_until) = _usage_line.in_trial)
    ) prev ON true
    WHERE p.price_id = _usage_line.price_id
$$;

COMMENT ON FUNCTION billing._usage_line(bigint, bigint, bigint, daterange, date, date, date, date, boolean, bigint[],
                                        text, text) IS
    'internal: the quantity, amount and period of the usage line of an item and usage period up to a day (the one '
    'usage rule of the cycle, the preview and drafts)';

CREATE OR REPLACE FUNCTION billing._discount_and_tax(group_keys bigint[], invoice_keys bigint[], currencies text[],
                                          roundings text[], coupon_ids bigint[], tax_rate_ids bigint[],
                                          nets billing.amount[])
RETURNS TABLE (group_key bigint, kind text, description text, unit_amount numeric, amount billing.amount,
               tax_rate_id bigint, tax_inclusive boolean, source text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp ROWS 10000 AS $$
    WITH groups AS MATERIALIZED (
        SELECT * FROM unnest(group_keys, invoice_keys, currencies, roundings, coupon_ids, tax_rate_ids, nets)
                      g(group_key, invoice_key, currency, rounding, coupon_id, tax_rate_id, net)
    ), percent_or_none AS (
        SELECT g.*, cp.code, cp.percent_off, NULL::billing.amount AS amount_off,
               CASE WHEN cp.percent_off IS NOT NULL
                    THEN -billing.round_amount(to_numeric(g.net) * cp.percent_off / 100, g.currency, g.rounding)
               END AS discount
        FROM groups g
        LEFT JOIN billing.coupon cp ON cp.coupon_id = g.coupon_id
        WHERE cp.amount_off IS NULL
    ), fixed_amount AS (
        SELECT f.group_key, f.invoice_key, f.currency, f.rounding, f.coupon_id, f.tax_rate_id, f.net, f.code,
               NULL::numeric, f.amount_off,
               CASE WHEN f.invoice_net > 0
                    THEN -(billing.allocate(
                             billing.amount(least(to_numeric(f.amount_off), f.invoice_net), f.currency),
                             f.ratios))[f.group_no]
               END
        FROM (SELECT g.*, cp.code, cp.amount_off,
                     row_number() OVER inv AS group_no,
                     array_agg(greatest(to_numeric(g.net), 0)) OVER whole AS ratios,
                     sum(to_numeric(g.net)) OVER whole AS invoice_net
              FROM groups g
              JOIN billing.coupon cp ON cp.coupon_id = g.coupon_id AND cp.amount_off IS NOT NULL
              WINDOW inv AS (PARTITION BY g.invoice_key ORDER BY g.tax_rate_id NULLS FIRST),
                     whole AS (inv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) f
    ), discounts AS MATERIALIZED (
        SELECT * FROM percent_or_none UNION ALL SELECT * FROM fixed_amount
    )
    SELECT d.group_key, 'discount'::text,
           'Coupon ' || d.code || CASE WHEN d.percent_off IS NOT NULL
                                       THEN ' (' || trim_scale(d.percent_off) || '% off)'
                                       ELSE ' (' || d.amount_off::text || ' off)' END,
           d.percent_off, d.discount, d.tax_rate_id, false, 'coupon ' || d.code
    FROM discounts d
    WHERE d.discount IS NOT NULL
    UNION ALL
    SELECT d.group_key, 'tax',
           t.name || ' ' || trim_scale(t.percentage) || '%' || CASE WHEN t.inclusive THEN ' (included)' ELSE '' END,
           t.percentage,
           billing.round_amount(
               (to_numeric(d.net) + coalesce(to_numeric(d.discount), 0)) * t.percentage
               / CASE WHEN t.inclusive THEN 100 + t.percentage ELSE 100 END, d.currency, d.rounding),
           d.tax_rate_id, t.inclusive, 'tax_rate ' || t.tax_rate_id
    FROM discounts d
    JOIN billing.tax_rate t ON t.tax_rate_id = d.tax_rate_id
$$;

COMMENT ON FUNCTION billing._discount_and_tax(bigint[], bigint[], text[], text[], bigint[], bigint[], billing.amount[]) IS
    'internal: the discount and tax lines of tax groups of invoices (the one coupon and tax rule of the cycle, '
    'the preview and drafts), keyed by the caller''s group_key';

CREATE OR REPLACE FUNCTION billing._lines_to_bill(accounts bigint[], subscriptions bigint[], as_of date,
                                   at timestamptz, mode text, assign_ids boolean DEFAULT false)
RETURNS TABLE (account_id bigint, subscription_id bigint, bill_date date, billing_reason text,
               as_of_date date, invoice_id bigint, cycle_end date, ends text, line_no bigint, kind text, description text, subscription_item_id bigint,
               price_id bigint, quantity numeric, unit_amount numeric, amount billing.amount,
               period_start date, period_end date, tax_rate_id bigint, tax_inclusive boolean, source text,
               usage_event_ids bigint[], pending_item_id bigint)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH b AS MATERIALIZED (
        SELECT * FROM billing._bill_dates(accounts, subscriptions, as_of, at, mode, assign_ids)
    ), recurring AS (
        SELECT b.account_id, b.subscription_id, b.bill_date, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end AS bill_date_cycle_end, b.ends, b.currency, b.rounding, b.coupon_id, 1 AS sort,
               'subscription'::text AS kind,
               pr.name || coalesce(' (' || p.nickname || ')', '') AS description,
               i.subscription_item_id, i.price_id, i.quantity, p.unit_amount,
               CASE WHEN b.bill_date = b.cycle_start THEN full_amount
                    ELSE billing.prorate(full_amount, daterange(b.cycle_start, b.cycle_end),
                                         daterange(b.bill_date, b.cycle_end), 'actual', b.rounding)
               END AS amount,
               b.bill_date AS period_start, b.cycle_end AS period_end,
               CASE WHEN b.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, b.account_tax_rate_id) END AS tax_rate_id,
               'cycle'::text AS source, NULL::bigint[] AS usage_event_ids, NULL::bigint AS pending_item_id
        FROM b
        JOIN billing.subscription_item i
          ON i.account_id = b.account_id AND i.subscription_id = b.subscription_id
         AND i.started_on <= b.bill_date AND (i.ended_on IS NULL OR i.ended_on > b.bill_date)
        JOIN billing.price p ON p.price_id = i.price_id AND p.usage_type = 'licensed'
        JOIN billing.product pr ON pr.product_id = p.product_id
        CROSS JOIN LATERAL (SELECT billing.round_amount(
                                CASE p.scheme WHEN 'flat' THEN p.unit_amount
                                              WHEN 'per_unit' THEN p.unit_amount * i.quantity
                                              ELSE billing._price_value(p.price_id, p.scheme, p.unit_amount,
                                                                        p.package_size, i.quantity) END,
                                b.currency, b.rounding) AS full_amount) f
        WHERE b.cycle_start IS NOT NULL
    ), new_usage AS (
        -- the unbilled events each invoice takes, by item and usage period
        SELECT b.account_id, b.subscription_id, b.bill_date, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end AS bill_date_cycle_end, b.ends, b.currency, b.rounding,
               b.coupon_id, b.tax_exempt, b.account_tax_rate_id, e.subscription_item_id,
               billing.period_containing(b.anchor, b.cadence, e.usage_date) AS up,
               -- the trial's usage is free unless the price bills it: its
               -- events go on a line of their own, at no charge, so the
               -- customer sees them and they are not picked up again
               f.free_until, e.usage_date < f.free_until AS in_trial,
               array_agg(e.usage_event_id ORDER BY e.usage_event_id) AS ids
        FROM b
        JOIN billing.subscription_item i ON i.account_id = b.account_id AND i.subscription_id = b.subscription_id
        JOIN billing.usage_event e
          ON e.account_id = i.account_id AND e.subscription_item_id = i.subscription_item_id
         AND e.invoice_id IS NULL AND e.usage_date < b.bill_date
         AND (b.usage_from IS NULL OR e.usage_date >= b.usage_from)
        JOIN billing.price p ON p.price_id = i.price_id
        JOIN billing.subscription s ON s.account_id = b.account_id AND s.subscription_id = b.subscription_id
        CROSS JOIN LATERAL (SELECT CASE WHEN NOT p.bill_trial_usage THEN s.trial_end END AS free_until) f
        WHERE b.with_usage
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
    ), usage AS (
        SELECT u.account_id, u.subscription_id, u.bill_date, u.billing_reason, u.as_of_date, u.invoice_id,
               u.bill_date_cycle_end, u.ends, u.currency, u.rounding, u.coupon_id, 2 AS sort, 'usage'::text AS kind,
               pr.name || coalesce(' (' || p.nickname || ')', '') || ' usage'
                 || CASE WHEN u.in_trial THEN ' during the trial (not billed)' ELSE '' END AS description,
               u.subscription_item_id, p.price_id, x.quantity, p.unit_amount, x.amount,
               x.period_start, x.period_end,
               CASE WHEN u.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, u.account_tax_rate_id) END,
               'usage ' || p.usage_aggregation, u.ids, NULL::bigint
        FROM new_usage u
        JOIN billing.subscription_item i
          ON i.account_id = u.account_id AND i.subscription_item_id = u.subscription_item_id
        JOIN billing.price p ON p.price_id = i.price_id
        JOIN billing.product pr ON pr.product_id = p.product_id
        CROSS JOIN LATERAL billing._usage_line(u.account_id, u.subscription_item_id, p.price_id, u.up, u.bill_date,
                                               i.started_on, i.ended_on, u.free_until, u.in_trial, u.ids,
                                               u.currency, u.rounding) x
    ), pending AS (
        SELECT b.account_id, b.subscription_id, b.bill_date, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end, b.ends, b.currency, b.rounding, b.coupon_id, 3 AS sort, pi.kind, pi.description,
               pi.subscription_item_id, pi.price_id, pi.quantity, pi.unit_amount, pi.amount,
               pi.period_start, pi.period_end,
               CASE WHEN b.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, b.account_tax_rate_id) END,
               'pending_item ' || pi.pending_item_id, NULL::bigint[], pi.pending_item_id
        FROM b
        JOIN billing.pending_item pi
          ON pi.account_id = b.account_id AND pi.subscription_id = b.subscription_id AND pi.invoice_id IS NULL
        LEFT JOIN billing.price p ON p.price_id = pi.price_id
        -- (the EXISTS is one test per call: with no pending item at all the
        -- join's table, whose statistics then say one row, is not scanned
        -- once per bill date)
        WHERE b.seq = 1 AND EXISTS (SELECT FROM billing.pending_item x WHERE x.invoice_id IS NULL)
    ), charges AS MATERIALIZED (
        SELECT * FROM recurring UNION ALL SELECT * FROM usage UNION ALL SELECT * FROM pending
    ), groups AS MATERIALIZED (
        -- the net of each invoice per tax rate, and the coupon that applies
        SELECT c.account_id, c.subscription_id, c.bill_date, c.billing_reason, c.as_of_date, c.invoice_id,
               c.bill_date_cycle_end, c.ends, c.currency, c.rounding, c.coupon_id, c.tax_rate_id,
               billing.sum(c.amount) AS net,
               row_number() OVER () AS group_key,
               dense_rank() OVER (ORDER BY c.account_id, c.subscription_id, c.bill_date) AS invoice_key
        FROM charges c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
    ), adjustments AS (
        SELECT a.* FROM (SELECT array_agg(g.group_key) AS k, array_agg(g.invoice_key) AS i,
                                array_agg(g.currency) AS c, array_agg(g.rounding) AS r,
                                array_agg(g.coupon_id) AS cp, array_agg(g.tax_rate_id) AS t, array_agg(g.net) AS n
                         FROM groups g) x
        CROSS JOIN LATERAL billing._discount_and_tax(x.k, x.i, x.c, x.r, x.cp, x.t, x.n) a
    ), adjustment_lines AS (
        SELECT g.account_id, g.subscription_id, g.bill_date, g.billing_reason, g.as_of_date, g.invoice_id,
               g.bill_date_cycle_end, g.ends, g.currency, g.rounding, g.coupon_id,
               CASE a.kind WHEN 'discount' THEN 4 ELSE 5 END AS sort, a.kind, a.description,
               NULL::bigint, NULL::bigint, NULL::numeric, a.unit_amount, a.amount,
               NULL::date, NULL::date, g.tax_rate_id, a.source, NULL::bigint[],
               -- in place of pending_item_id: whether the tax is inclusive
               CASE WHEN a.kind = 'tax' THEN a.tax_inclusive::integer::bigint END
        FROM adjustments a
        JOIN groups g ON g.group_key = a.group_key
    ), markers AS (
        -- one row of kind 'header' per invoice key, lines or not: what
        -- the cycle advances the subscription by
        SELECT b.account_id, b.subscription_id, b.bill_date, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end, b.ends, b.currency, b.rounding, b.coupon_id, 9, 'header'::text, NULL::text,
               NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric, NULL::billing.amount,
               NULL::date, NULL::date, NULL::bigint, NULL::text, NULL::bigint[], NULL::bigint
        FROM b
    ), all_lines AS (
        SELECT * FROM charges UNION ALL SELECT * FROM adjustment_lines UNION ALL SELECT * FROM markers
    )
    SELECT l.account_id, l.subscription_id, l.bill_date, l.billing_reason, l.as_of_date, l.invoice_id,
           l.bill_date_cycle_end, l.ends,
           row_number() OVER (PARTITION BY l.account_id, l.subscription_id, l.bill_date
                              ORDER BY l.sort, l.tax_rate_id NULLS FIRST, l.subscription_item_id, l.period_start,
                                       l.pending_item_id),
           l.kind, l.description, l.subscription_item_id, l.price_id, l.quantity, l.unit_amount, l.amount,
           l.period_start, l.period_end, l.tax_rate_id,
           l.kind = 'tax' AND l.pending_item_id = 1,
           l.source, l.usage_event_ids, CASE WHEN l.kind <> 'tax' THEN l.pending_item_id END
    FROM all_lines l
$$;

COMMENT ON FUNCTION billing._lines_to_bill(bigint[], bigint[], date, timestamptz, text, boolean) IS
    'internal: every line of every invoice to bill for these subscriptions (see billing._bill_dates), '
    'and one header row per invoice; the cycle inserts them, billing.preview_invoice returns them';

CREATE OR REPLACE FUNCTION billing._bill_lines(accounts bigint[], subscriptions bigint[], as_of date, at timestamptz,
                                    mode text)
RETURNS SETOF billing._invoice_draft
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH due AS MATERIALIZED (
        SELECT * FROM billing._lines_to_bill(accounts, subscriptions, as_of, at, mode, true)
    ), ins_lines AS (
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id,
                                          subscription_item_id, price_id, quantity, unit_amount, amount,
                                          period_start, period_end, tax_rate_id, tax_inclusive, source)
        SELECT d.account_id, d.invoice_id, d.kind, d.description, d.subscription_id, d.subscription_item_id,
               d.price_id, d.quantity, d.unit_amount, d.amount, d.period_start, d.period_end, d.tax_rate_id,
               d.tax_inclusive, d.source
        FROM due d
        WHERE d.kind <> 'header'
        ORDER BY d.invoice_id, d.line_no
        RETURNING 1
    ), mark_usage AS (
        UPDATE billing.usage_event e SET invoice_id = x.invoice_id
        FROM (SELECT d.account_id, d.invoice_id, unnest(d.usage_event_ids) AS usage_event_id
              FROM due d
              WHERE d.usage_event_ids IS NOT NULL) x
        WHERE e.account_id = x.account_id AND e.usage_event_id = x.usage_event_id
        RETURNING 1
    ), mark_pending AS (
        UPDATE billing.pending_item p SET invoice_id = d.invoice_id
        FROM due d
        WHERE d.pending_item_id IS NOT NULL
          AND p.account_id = d.account_id AND p.pending_item_id = d.pending_item_id
        RETURNING 1
    ), advance AS (
        UPDATE billing.subscription s
        SET next_bill_date = CASE WHEN x.ends IS NULL THEN x.last_end END,
            current_period_start = coalesce(x.last_start, s.current_period_start),
            current_period_end = coalesce(x.last_end, s.current_period_end),
            status = CASE WHEN x.ends IS NOT NULL THEN x.ends
                          WHEN s.status = 'trialing' THEN 'active' ELSE s.status END,
            canceled_on = CASE WHEN x.ends = 'canceled' THEN x.stop ELSE s.canceled_on END,
            paused_on = CASE WHEN x.ends = 'paused' THEN x.stop ELSE s.paused_on END,
            pause_on = CASE WHEN x.ends = 'paused' THEN NULL ELSE s.pause_on END,
            updated_at = billing.now()
        FROM (SELECT d.account_id, d.subscription_id,
                     max(d.bill_date) FILTER (WHERE d.cycle_end IS NOT NULL) AS last_start,
                     max(d.cycle_end) AS last_end,
                     max(d.ends) AS ends, max(d.bill_date) FILTER (WHERE d.ends IS NOT NULL) AS stop
              FROM due d WHERE d.kind = 'header' GROUP BY 1, 2) x
        WHERE _bill_lines.mode = 'cycle' AND s.account_id = x.account_id AND s.subscription_id = x.subscription_id
        RETURNING s.account_id, s.subscription_id, x.ends
    ), force_all AS (
        SELECT (SELECT count(*) FROM ins_lines) + (SELECT count(*) FROM mark_usage)
               + (SELECT count(*) FROM mark_pending) AS n
    )
    SELECT d.account_id, d.invoice_id, min(d.subscription_id), min(d.bill_date), min(d.billing_reason),
           min(d.as_of_date),
           billing.sum(d.amount) FILTER (WHERE d.kind NOT IN ('discount', 'tax')),
           billing.sum(d.amount) FILTER (WHERE d.kind = 'discount'),
           billing.sum(d.amount) FILTER (WHERE d.kind = 'tax'),
           billing.sum(d.amount) FILTER (WHERE NOT d.tax_inclusive),
           -- the invoice's period: its recurring lines', or for an invoice
           -- of usage only (a metered subscription) its usage lines'
           coalesce(min(d.period_start) FILTER (WHERE d.kind = 'subscription'),
                    min(d.period_start) FILTER (WHERE d.kind = 'usage')),
           coalesce(max(d.period_end) FILTER (WHERE d.kind = 'subscription'),
                    max(d.period_end) FILTER (WHERE d.kind = 'usage')),
           count(*)::integer, NULL::text
    FROM due d, force_all
    WHERE d.kind <> 'header' AND force_all.n >= 0
    GROUP BY d.account_id, d.invoice_id
    UNION ALL
    SELECT a.account_id, NULL, a.subscription_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, a.ends
    FROM advance a
    WHERE a.ends IS NOT NULL
$$;

COMMENT ON FUNCTION billing._bill_lines(bigint[], bigint[], date, timestamptz, text) IS
    'internal: statement 1 of billing._bill: writes the lines to bill for these (locked) subscriptions, marks usage '
    'and pending items, advances the subscriptions (mode cycle); returns the invoices to insert and the '
    'subscriptions that ended';

CREATE OR REPLACE FUNCTION billing._bill_invoices(drafts billing._invoice_draft[], cycle_run_id bigint)
RETURNS TABLE (account_id bigint, invoice_id bigint, draft boolean)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH inv AS (
        -- an invoice of the cycle (run_cycle names its run) for an account
        -- with a grace period is inserted as a draft (77_drafts.sql):
        -- no number, not finalized, finalized draft_days after its issue date
        SELECT t.*, a.entity_id, a.currency, t.issue_date + a.payment_terms_days AS due_date,
               billing.from_minor_units(0, a.currency) AS zero,
               CASE WHEN _bill_invoices.cycle_run_id IS NOT NULL THEN coalesce(a.draft_days, e.draft_days) END
                   AS draft_days
        FROM unnest(drafts) t
        JOIN billing.account a ON a.account_id = t.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        WHERE t.invoice_id IS NOT NULL
    ), numbered AS MATERIALIZED (
        SELECT i.*, coalesce(i.draft_days > 0, false) AS is_draft,
               row_number() OVER (PARTITION BY coalesce(i.draft_days > 0, false)
                                  ORDER BY i.account_id, i.subscription_id, i.bill_date) AS ord
        FROM inv i
    ), numbers AS MATERIALIZED (
        -- takes the numbers: the row lock serializes concurrent finalization.
        -- As a jsonb array: its n-th element is found by its offset, where a
        -- text[] is walked from the start for each one (quadratic in the batch)
        SELECT to_jsonb(billing._take_invoice_numbers(array_agg(entity_id ORDER BY ord),
                                                      array_agg(issue_date ORDER BY ord))) AS number
        FROM numbered
        WHERE NOT is_draft
    ), ins_invoice AS (
        INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status,
                                     billing_reason, currency, subtotal, discount, tax, total, amount_paid,
                                     amount_due, issue_date, due_date, period_start, period_end, cycle_run_id,
                                     finalized_at, finalize_on, bill_date)
        SELECT n.account_id, n.invoice_id, n.entity_id, n.subscription_id,
               CASE WHEN NOT n.is_draft THEN m.number ->> (n.ord - 1)::integer END,
               CASE WHEN n.is_draft THEN 'draft' WHEN coalesce(n.total, n.zero) = n.zero THEN 'paid' ELSE 'open' END,
               n.billing_reason, n.currency, coalesce(n.subtotal, n.zero), coalesce(n.discount, n.zero),
               coalesce(n.tax, n.zero), coalesce(n.total, n.zero), n.zero,
               CASE WHEN coalesce(n.total, n.zero) = n.zero THEN n.zero ELSE n.total END,
               n.issue_date, n.due_date, n.period_start, n.period_end, _bill_invoices.cycle_run_id,
               CASE WHEN NOT n.is_draft THEN billing.now() END,
               CASE WHEN n.is_draft THEN n.issue_date + n.draft_days END,
               CASE WHEN n.is_draft THEN n.bill_date END
        FROM numbered n CROSS JOIN numbers m
        RETURNING account_id, invoice_id, number, subscription_id, total, due_date, status, finalize_on
    ), events AS MATERIALIZED (
        -- a draft's event; a finalized invoice's is the finalization step's
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT i.account_id, 'invoice.created',
               jsonb_build_object('invoice_id', i.invoice_id, 'subscription_id', i.subscription_id,
                                  'total', i.total::text, 'finalize_on', i.finalize_on)
        FROM ins_invoice i
        WHERE i.status = 'draft'
        UNION ALL
        SELECT d.account_id, 'subscription.' || d.ends, jsonb_build_object('subscription_id', d.subscription_id)
        FROM unnest(drafts) d WHERE d.ends IS NOT NULL
        RETURNING 1
    )
    SELECT i.account_id, i.invoice_id, i.status = 'draft'
    FROM ins_invoice i, (SELECT count(*) FROM events) AS force_events
$$;
COMMENT ON FUNCTION billing._bill_invoices(billing._invoice_draft[], bigint) IS
    'internal: statement 2 of billing._bill: takes the gapless numbers, inserts the invoices (status open, or '
    'paid when the total is zero; a draft, without a number, for an account with a grace period when run_cycle '
    'bills) and writes the drafts'' invoice.created events and those of ended subscriptions; returns the invoices, for the '
    'finalization step, and which of them are drafts';

CREATE OR REPLACE FUNCTION billing._bill(accounts bigint[], subscriptions bigint[], as_of date, at timestamptz,
                              mode text, cycle_run_id bigint DEFAULT NULL,
                              OUT invoices integer, OUT lines integer)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_drafts billing._invoice_draft[];
    v_accounts bigint[];
    v_invoices bigint[];
BEGIN
    SET CONSTRAINTS billing.invoice_line_account_id_invoice_id_fkey DEFERRED;
    SELECT array_agg(d ORDER BY d.invoice_id NULLS LAST, d.subscription_id), coalesce(sum(d.lines), 0)
    INTO v_drafts, lines
    FROM billing._bill_lines(accounts, subscriptions, as_of, at, mode) d;
    -- drafts are made, not issued: they are finalized when their grace
    -- period ends (billing._finalize_drafts, 77_drafts.sql)
    SELECT array_agg(b.account_id) FILTER (WHERE NOT b.draft), array_agg(b.invoice_id) FILTER (WHERE NOT b.draft),
           count(*)
    INTO v_accounts, v_invoices, invoices
    FROM billing._bill_invoices(coalesce(v_drafts, '{}'), cycle_run_id) b;
    PERFORM billing._finalize_invoices(v_accounts, v_invoices);
    -- checks the lines' foreign keys now, and restores the constraint
    SET CONSTRAINTS billing.invoice_line_account_id_invoice_id_fkey IMMEDIATE;
END $$;

COMMENT ON FUNCTION billing._bill(bigint[], bigint[], date, timestamptz, text, bigint) IS
    'internal: creates and finalizes the invoices to bill for these (locked) subscriptions (drafts, for an account '
    'with a grace period, when run_cycle bills), marks usage and pending items, advances the subscriptions (mode '
    'cycle) and writes the outbox, in two statements (the number series is locked by the second only)';

CREATE OR REPLACE FUNCTION billing._cycle_batch(cycle_run_id bigint, as_of date, at timestamptz, batch_size integer,
                                   INOUT after_date date, INOUT after_account bigint, INOUT after_subscription bigint,
                                   OUT subscriptions integer, OUT invoices integer, OUT lines integer,
                                   OUT errors jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_subs bigint[];
    v_dates date[];
    -- no account is ahead of UTC+14: an index bound for every time zone
    v_latest date := coalesce(as_of, billing.today('Etc/GMT-14', at));
    r record;
    v_state text;
    v_msg text;
BEGIN
    PERFORM billing._authorize_all('run the billing cycle');
    errors := '[]';
    invoices := 0;
    lines := 0;
    SELECT array_agg(x.account_id ORDER BY x.next_bill_date, x.account_id, x.subscription_id),
           array_agg(x.subscription_id ORDER BY x.next_bill_date, x.account_id, x.subscription_id),
           array_agg(x.next_bill_date ORDER BY x.next_bill_date, x.account_id, x.subscription_id)
    INTO v_accounts, v_subs, v_dates
    FROM (SELECT s.next_bill_date, s.account_id, s.subscription_id
          FROM billing.subscription s
          JOIN billing.account a ON a.account_id = s.account_id
          WHERE s.next_bill_date IS NOT NULL AND s.next_bill_date <= v_latest
            AND s.status <> 'suspended'  -- suspended by dunning (78_dunning.sql): not billed
            AND (s.next_bill_date, s.account_id, s.subscription_id)
                > (coalesce(after_date, '-infinity'), coalesce(after_account, 0), coalesce(after_subscription, 0))
            AND s.next_bill_date <= coalesce(as_of, billing.today(a.timezone, at))
          ORDER BY s.next_bill_date, s.account_id, s.subscription_id
          LIMIT batch_size
          FOR UPDATE OF s SKIP LOCKED) x;
    subscriptions := coalesce(cardinality(v_subs), 0);
    IF subscriptions = 0 THEN
        RETURN;
    END IF;
    after_date := v_dates[subscriptions];
    after_account := v_accounts[subscriptions];
    after_subscription := v_subs[subscriptions];
    BEGIN
        SELECT b.invoices, b.lines INTO invoices, lines
        FROM billing._bill(v_accounts, v_subs, as_of, at, 'cycle', cycle_run_id) b;
    EXCEPTION WHEN OTHERS THEN
        -- the slow path, only after an error: one subscription at a time
        FOR i IN 1 .. cardinality(v_subs) LOOP
            BEGIN
                SELECT * INTO r FROM billing._bill(ARRAY[v_accounts[i]], ARRAY[v_subs[i]], as_of, at, 'cycle',
                                                   cycle_run_id);
                invoices := invoices + r.invoices;
                lines := lines + r.lines;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                errors := errors || jsonb_build_object('account_id', v_accounts[i], 'subscription_id', v_subs[i],
                                                       'sqlstate', v_state, 'message', v_msg);
            END;
        END LOOP;
    END;
END $$;

COMMENT ON FUNCTION billing._cycle_batch(bigint, date, timestamptz, integer, date, bigint, bigint) IS
    'internal: one committed batch of billing.run_cycle, starting after the given queue key';

CREATE OR REPLACE FUNCTION billing._trial_notices(as_of date, at timestamptz, days_before integer DEFAULT 3)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_result integer;
BEGIN
    PERFORM billing._authorize_all('run the billing cycle');
    WITH n AS (
        UPDATE billing.subscription s SET trial_ending_notified = true
        FROM billing.account a
        WHERE a.account_id = s.account_id AND s.status = 'trialing' AND NOT s.trial_ending_notified
          AND s.trial_end <= coalesce(as_of, billing.today(a.timezone, at)) + days_before
        RETURNING s.account_id, s.subscription_id, s.trial_end
    ), e AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT account_id, 'trial.ending', jsonb_build_object('subscription_id', subscription_id, 'trial_end', trial_end)
        FROM n
        RETURNING 1
    )
    SELECT count(*)::integer FROM e
    INTO v_result;
    RETURN v_result;
END $$;

COMMENT ON FUNCTION billing._trial_notices(date, timestamptz, integer) IS
    'internal: writes one trial.ending event per trialing subscription whose trial ends within days_before days';

CREATE OR REPLACE PROCEDURE billing._run_in_batches(run regclass, run_id bigint, steps regprocedure[], as_of date,
                                         at timestamptz, batch_size integer, state jsonb DEFAULT '{}')
LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_key text;
    v_calls text[];
    v_state pg_catalog.jsonb := state;
    v_next pg_catalog.jsonb;
    v_set text;
    v_notify integer;
BEGIN
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
           pg_catalog.format('%I', c.relname OPERATOR(pg_catalog.||) '_id')
    INTO v_table, v_key
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE c.oid OPERATOR(pg_catalog.=) run AND n.nspname OPERATOR(pg_catalog.=) 'billing';
    SELECT pg_catalog.array_agg(pg_catalog.format('SELECT %I.%I($1, $2, $3, $4, $5)', n.nspname, p.proname)
                                ORDER BY s.ord)
    INTO v_calls
    FROM pg_catalog.unnest(steps) WITH ORDINALITY s(step, ord)
    JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) s.step
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE n.nspname OPERATOR(pg_catalog.=) 'billing'
      AND p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype
      -- exactly the step's signature: the call by name then finds this one
      AND ARRAY(SELECT pg_catalog.unnest(p.proargtypes::pg_catalog.oid[])) OPERATOR(pg_catalog.=)
          ARRAY['pg_catalog.int8', 'pg_catalog.date', 'pg_catalog.timestamptz', 'pg_catalog.int4',
                'pg_catalog.jsonb']::pg_catalog.regtype[]::pg_catalog.oid[];
    IF v_table IS NULL OR v_calls IS NULL
       OR pg_catalog.cardinality(v_calls) OPERATOR(pg_catalog.<>) pg_catalog.cardinality(steps) THEN
        RAISE EXCEPTION 'the batch runner takes a run table and steps (run_id, as_of, at, batch_size, state) returning jsonb of the billing schema, not % and %',
            run, steps
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    <<batches>>
    LOOP
        FOR i IN 1 .. pg_catalog.cardinality(v_calls) LOOP
            IF i OPERATOR(pg_catalog.>) 1 THEN
                COMMIT;
            END IF;
            EXECUTE v_calls[i] INTO v_next USING run_id, as_of, at, batch_size, v_state;
            EXIT batches WHEN v_next IS NULL;
            v_state := v_next;
        END LOOP;
        SELECT pg_catalog.string_agg(pg_catalog.format(
                   '%1$I = %1$I OPERATOR(pg_catalog.+) ($2 OPERATOR(pg_catalog.->>) %1$L)::pg_catalog.int4', k),
                   ', ')
        INTO v_set
        FROM pg_catalog.jsonb_object_keys(v_state OPERATOR(pg_catalog.->) 'counts') k;
        EXECUTE pg_catalog.format('UPDATE %s SET %s errors = errors OPERATOR(pg_catalog.||) $3 WHERE %s OPERATOR(pg_catalog.=) $1',
                                  v_table, COALESCE(v_set OPERATOR(pg_catalog.||) ',', ''), v_key)
        USING run_id, v_state OPERATOR(pg_catalog.->) 'counts', v_state OPERATOR(pg_catalog.->) 'errors';
        v_notify := (v_state OPERATOR(pg_catalog.->>) 'notify')::pg_catalog.int4;
        IF v_notify OPERATOR(pg_catalog.>) 0 THEN
            PERFORM pg_catalog.pg_notify('billing_events', v_notify::text);
        END IF;
        COMMIT;
    END LOOP;
END $$;

COMMENT ON PROCEDURE billing._run_in_batches(regclass, bigint, regprocedure[], date, timestamptz, integer, jsonb) IS
    'internal: runs the named batch steps until the first finds no more work, committing each step; adds each '
    'batch''s counts and errors to the run row and NOTIFYs billing_events';

CREATE OR REPLACE FUNCTION billing._cycle_bill_step(run_id bigint, as_of date, at timestamptz, batch_size integer, state jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('run the billing cycle');
    SELECT CASE WHEN r.subscriptions > 0 THEN jsonb_build_object(
               'cursor', jsonb_build_object('after_date', r.after_date, 'after_account', r.after_account,
                                            'after_subscription', r.after_subscription),
               'counts', jsonb_build_object('batches', 1, 'subscriptions', r.subscriptions, 'invoices', r.invoices,
                                            'lines', r.lines),
               'errors', r.errors, 'notify', r.invoices) END
    FROM billing._cycle_batch(run_id, as_of, at, batch_size, (state #>> '{cursor,after_date}')::date,
                              (state #>> '{cursor,after_account}')::bigint,
                              (state #>> '{cursor,after_subscription}')::bigint) r
$$;

COMMENT ON FUNCTION billing._cycle_bill_step(bigint, date, timestamptz, integer, jsonb) IS
    'internal: one billing batch of run_cycle (billing._cycle_batch) as a step of billing._run_in_batches';

CREATE OR REPLACE PROCEDURE billing.run_cycle(as_of date DEFAULT NULL, batch_size integer DEFAULT 1000,
                                   at timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := coalesce(at, billing.now());
    v_run bigint;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 1000.';
    END IF;
    -- a run bills every period up to as_of: both dates within the window
    -- around today in UTC (billing._check_date)
    PERFORM billing._check_date(billing.today('UTC', v_at), 'the day of at', billing.today('UTC')),
            billing._check_date(as_of, 'as_of', billing.today('UTC'));
    INSERT INTO billing.cycle_run (as_of, at, started_at) VALUES (as_of, v_at, pg_catalog.clock_timestamp())
    RETURNING cycle_run_id INTO v_run;
    PERFORM billing._trial_notices(as_of, v_at);
    COMMIT;
    -- the drafts whose grace period has passed (77_drafts.sql), before the
    -- new invoices: the late usage of a draft's period is the draft's
    CALL billing._run_in_batches(
        'billing.cycle_run', v_run,
        ARRAY['billing._cycle_drafts_step(pg_catalog.int8, pg_catalog.date, pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.jsonb)'::pg_catalog.regprocedure],
        as_of, v_at, batch_size);
    CALL billing._run_in_batches(
        'billing.cycle_run', v_run,
        ARRAY['billing._cycle_bill_step(pg_catalog.int8, pg_catalog.date, pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.jsonb)'::pg_catalog.regprocedure],
        as_of, v_at, batch_size);
    UPDATE billing.cycle_run
    SET finished_at = pg_catalog.clock_timestamp(),
        status = CASE WHEN errors OPERATOR(pg_catalog.=) '[]'::pg_catalog.jsonb THEN 'done' ELSE 'done_with_errors' END
    WHERE cycle_run_id OPERATOR(pg_catalog.=) v_run;
    COMMIT;
END $$;

COMMENT ON PROCEDURE billing.run_cycle(date, integer, timestamptz) IS
    'finalizes the drafts whose grace period has passed, then bills every subscription whose next period has '
    'been reached by as_of (NULL: each account''s today in its time zone at at, default billing.now()), in '
    'committed batches of batch_size, SKIP LOCKED so several sessions can share a run; logs the run in '
    'billing.cycle_run and NOTIFYs billing_events once per batch';

CREATE OR REPLACE FUNCTION billing.preview_invoice(account_id bigint, subscription_id bigint DEFAULT NULL,
                                        as_of date DEFAULT NULL)
RETURNS SETOF billing.preview_line
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_subs bigint[];
BEGIN
    PERFORM billing._authorize_account(preview_invoice.account_id);
    IF NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = preview_invoice.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(preview_invoice.account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    -- a preview computes every period up to as_of
    IF as_of IS NOT NULL THEN
        PERFORM billing._check_date(as_of, 'as_of', billing.today(a.timezone))
        FROM billing.account a WHERE a.account_id = preview_invoice.account_id;
    END IF;
    SELECT array_agg(s.account_id), array_agg(s.subscription_id) INTO v_accounts, v_subs
    FROM billing.subscription s
    WHERE s.account_id = preview_invoice.account_id
      AND (preview_invoice.subscription_id IS NULL OR s.subscription_id = preview_invoice.subscription_id);
    IF preview_invoice.subscription_id IS NOT NULL AND v_subs IS NULL THEN
        RAISE EXCEPTION 'subscription % of account % does not exist', preview_invoice.subscription_id,
            preview_invoice.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription lists the account''s subscriptions.';
    END IF;
    RETURN QUERY
    SELECT d.subscription_id, d.bill_date, d.line_no, d.kind, d.description, d.subscription_item_id, d.price_id,
           d.quantity, d.unit_amount, d.amount, d.period_start, d.period_end, d.tax_rate_id, d.tax_inclusive
    FROM billing._lines_to_bill(coalesce(v_accounts, '{}'), coalesce(v_subs, '{}'), as_of, billing.now(), 'preview') d
    WHERE d.kind <> 'header'
    ORDER BY d.subscription_id, d.bill_date, d.line_no;
END $$;

COMMENT ON FUNCTION billing.preview_invoice(bigint, bigint, date) IS
    'the lines the cycle will create for an account''s subscriptions (or one), writing nothing: as of as_of, '
    'or by default of each subscription''s next bill date (its today if that has passed); '
    'bill_date is the date each invoice is for';

CREATE OR REPLACE FUNCTION billing.mark_events_done(event_ids bigint[])
RETURNS integer LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH d AS (
        UPDATE billing.outbox o SET processed_at = billing.now()
        WHERE o.event_id = ANY (event_ids) AND o.processed_at IS NULL
          AND billing._may_use_account(o.account_id)
        RETURNING 1
    )
    SELECT count(*)::integer FROM d
$$;

COMMENT ON FUNCTION billing.mark_events_done(bigint[]) IS
    'marks outbox events as processed by a consumer; returns how many were still pending';

-- 60_ledger.sql

CREATE OR REPLACE FUNCTION billing._ledger_check_balance() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ledger_check_balance' LANGUAGE C;

COMMENT ON FUNCTION billing._ledger_check_balance() IS
    'internal trigger: the entries an INSERT adds sum to zero per transaction and currency (23514), and their '
    'transactions and those transactions'' accounts exist (23503)';

CREATE OR REPLACE FUNCTION billing._post_invoices_finalized(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH inv AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.number, i.issue_date, i.total, i.tax,
               nextval('billing.ledger_transaction_txn_id_seq') AS txn_id
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        CROSS JOIN LATERAL (SELECT * FROM billing.invoice i
                            WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id LIMIT 1) i
        WHERE i.status <> 'draft' AND (billing.to_numeric(i.total) <> 0 OR billing.to_numeric(i.tax) <> 0)
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, txn_id, kind, posted_on, invoice_id, description)
        SELECT account_id, txn_id, 'invoice_finalized', issue_date, invoice_id, 'invoice ' || number FROM inv
    )
    -- (txn runs to completion whether read or not; the balance trigger,
    -- at the end of the statement, finds its rows)
    INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
    SELECT i.account_id, i.txn_id, e.ledger_account, e.amount
    FROM inv i
    CROSS JOIN LATERAL (VALUES ('receivable', i.total), ('revenue', -(i.total - i.tax)),
                               ('tax_payable', -i.tax)) e(ledger_account, amount)
    WHERE billing.to_numeric(e.amount) <> 0
$$;

COMMENT ON FUNCTION billing._post_invoices_finalized(bigint[], bigint[]) IS
    'internal: posts one balanced transaction per finalized invoice (receivable, revenue, tax payable)';

-- 70_payments.sql

CREATE OR REPLACE FUNCTION billing.set_early_payment_discount(account_id bigint, percent numeric, within_days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
BEGIN
    PERFORM billing._authorize_account(set_early_payment_discount.account_id);
    a := billing._payment_account(account_id);
    IF percent IS NULL THEN
        DELETE FROM billing.early_payment_terms t WHERE t.account_id = a.account_id;
        RETURN;
    END IF;
    IF percent <= 0 OR percent >= 100 OR within_days IS NULL OR within_days < 0 OR within_days > 3650 THEN
        RAISE EXCEPTION 'an early-payment discount needs a percent in (0, 100) and 0 to 3650 days, not % and %',
            percent, coalesce(within_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: percent => 2, within_days => 10.';
    END IF;
    INSERT INTO billing.early_payment_terms AS t (account_id, percent, within_days)
    VALUES (a.account_id, percent, within_days)
    ON CONFLICT ON CONSTRAINT early_payment_terms_pkey
    DO UPDATE SET percent = excluded.percent, within_days = excluded.within_days;
END $$;

COMMENT ON FUNCTION billing.set_early_payment_discount(bigint, numeric, integer) IS
    'sets the account''s early-payment discount (percent of the total off when paid in full within within_days '
    'of the issue date); percent NULL removes it';

CREATE OR REPLACE FUNCTION billing._check_payment_method(method text)
RETURNS void LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF method IS NULL OR method NOT IN ('card', 'direct_debit', 'bank_transfer', 'cash', 'check', 'wallet', 'other') THEN
        RAISE EXCEPTION 'unknown payment method %', coalesce(method, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use card, direct_debit, bank_transfer, cash, check, wallet or other.';
    END IF;
END $$;

COMMENT ON FUNCTION billing._check_payment_method(text) IS
    'internal: 22023 unless method is one of the payment methods (card, direct_debit, bank_transfer, cash, check, '
    'wallet, other)';

CREATE OR REPLACE FUNCTION billing._check_payment(a billing.account, amount billing.amount, method text, reference text,
                                       idempotency_key text, invoice_ids bigint[])
RETURNS void LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0 THEN
        RAISE EXCEPTION 'a payment must be a positive amount in the account''s currency %, not %', a.currency,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Money going back to the customer is a refund.';
    END IF;
    PERFORM billing._check_payment_method(method);
    IF billing.looks_like_card_number(reference) OR billing.looks_like_card_number(idempotency_key) THEN
        RAISE EXCEPTION 'a payment reference must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Store the payment provider''s token, never the card or bank number.';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'an idempotency key must not be empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for a payment without one.';
    END IF;
    -- (nested: the condition holds a subquery, which PL/pgSQL runs as a
    -- query even when invoice_ids is NULL)
    IF invoice_ids IS NOT NULL THEN
        IF cardinality(invoice_ids) = 0 OR array_position(invoice_ids, NULL) IS NOT NULL
           OR cardinality(invoice_ids) <> (SELECT count(DISTINCT x) FROM unnest(invoice_ids) x) THEN
            RAISE EXCEPTION 'invoice_ids must name distinct invoices, not %', invoice_ids
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL to pay the oldest invoices first.';
        END IF;
    END IF;
END $$;

COMMENT ON FUNCTION billing._check_payment(billing.account, billing.amount, text, text, text, bigint[]) IS
    'internal: 22023 unless the payment''s amount, method, reference, idempotency key and invoice_ids are valid';

CREATE OR REPLACE FUNCTION billing._payment_replay(account_id bigint, amount billing.amount, method text, reference text,
                                        idempotency_key text, received_on date, invoice_ids bigint[])
RETURNS bigint LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p billing.payment;
BEGIN
    SELECT * INTO p FROM billing.payment x
    WHERE x.account_id = _payment_replay.account_id AND x.idempotency_key = _payment_replay.idempotency_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p.amount = amount AND p.method = method AND p.reference IS NOT DISTINCT FROM reference
       AND (received_on IS NULL OR p.received_on = received_on)
       AND p.target_invoice_ids IS NOT DISTINCT FROM invoice_ids THEN
        RETURN p.payment_id;
    END IF;
    RAISE EXCEPTION 'idempotency key % of account % was used for another payment (%)', idempotency_key,
        account_id, p.payment_id
        USING ERRCODE = 'unique_violation',
              DETAIL = format('Payment %s: %s by %s, reference %s, received %s, invoices %s.', p.payment_id,
                              p.amount, p.method, coalesce(p.reference, 'none'), p.received_on,
                              coalesce(p.target_invoice_ids::text, 'oldest first')),
              HINT = 'Use a new key for a new payment; a retry must repeat the same arguments.';
END $$;

COMMENT ON FUNCTION billing._payment_replay(bigint, billing.amount, text, text, text, date, bigint[]) IS
    'internal: the payment an idempotency key recorded with the same arguments, NULL for a new key, 23505 for a key '
    'used for another payment';

CREATE OR REPLACE FUNCTION billing._check_payment_invoices(account_id bigint, invoice_ids bigint[])
RETURNS void LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_bad bigint;
BEGIN
    SELECT x INTO v_bad FROM unnest(invoice_ids) x
    WHERE NOT EXISTS (SELECT FROM billing.invoice i
                      WHERE i.account_id = _check_payment_invoices.account_id AND i.invoice_id = x)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invoice % of account % does not exist', v_bad, account_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.invoice lists the account''s invoices.';
    END IF;
    SELECT x INTO v_bad FROM unnest(invoice_ids) x
    JOIN billing.invoice i ON i.account_id = _check_payment_invoices.account_id AND i.invoice_id = x
    WHERE i.status <> 'open' LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invoice % of account % is not open', v_bad, account_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only open invoices take payments.';
    END IF;
END $$;

COMMENT ON FUNCTION billing._check_payment_invoices(bigint, bigint[]) IS
    'internal: 23503 for an invoice_ids entry that is not an invoice of the account, 55000 for one not open';

-- Applies a recorded payment to the account's open invoices, set-based:
-- lock 2 and the applications in one statement, oldest due first or in the
-- order of invoice_ids.  An invoice the funds settle within its
-- early-payment window needs its due less the discount, and gets the
-- discount as an application of its own, posted to discounts.  Returns
-- what the payment paid of the invoices (the discounts not included).
CREATE OR REPLACE FUNCTION billing._pay_invoices(a billing.account, payment_id bigint, amount billing.amount,
                                      received_on date, invoice_ids bigint[])
RETURNS billing.amount LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_funds numeric := billing.to_numeric(amount);
    v_applied numeric;
    v_disc_invoices bigint[];
    v_disc_numbers text[];
    v_disc_amounts billing.amount[];
BEGIN
    WITH inv AS MATERIALIZED (
        -- due_date: the day the invoice is due by its schedule (that of its
        -- first installment not yet covered, for an invoice on a plan), so
        -- a payment goes first to what is due soonest, not to the later
        -- installments of an older invoice (billing._invoice_schedule, the
        -- rule dunning goes by)
        SELECT i.invoice_id, sch.due_on AS due_date, i.number, billing.to_numeric(i.amount_due) AS due,
               CASE WHEN t.account_id IS NOT NULL AND _pay_invoices.received_on <= i.issue_date + t.within_days
                         AND NOT EXISTS (SELECT FROM billing.payment_application x
                                         WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id
                                           AND x.source = 'discount')
                    -- (the entity's mode, read only for an invoice in its window)
                    THEN least(billing.to_numeric(billing.round_amount(billing.to_numeric(i.total) * t.percent / 100, a.currency,
                                                                       (SELECT e.rounding FROM billing.billing_entity e
                                                                        WHERE e.entity_id = a.entity_id))),
                               billing.to_numeric(i.amount_due))
                    ELSE 0 END AS disc
        FROM billing.invoice i
        -- every table filtered by the account itself, not only joined to
        -- it: under Citus the statement then goes to the account's shard
        -- alone (a row lock is refused in a query over several shards)
        JOIN billing._invoice_schedule sch ON sch.account_id = a.account_id AND sch.invoice_id = i.invoice_id
        LEFT JOIN billing.early_payment_terms t ON t.account_id = a.account_id
        WHERE i.account_id = a.account_id AND i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
          AND (_pay_invoices.invoice_ids IS NULL OR i.invoice_id = ANY (_pay_invoices.invoice_ids))
        -- (locked in the lock order; applied below in the schedule's)
        ORDER BY array_position(_pay_invoices.invoice_ids, i.invoice_id), i.due_date, i.invoice_id
        FOR UPDATE OF i
    ), run AS (
        SELECT invoice_id, number, due, disc, due - disc AS need,
               coalesce(sum(due - disc) OVER (ORDER BY array_position(_pay_invoices.invoice_ids, invoice_id), due_date, invoice_id
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM inv
    ), app AS MATERIALIZED (
        -- a partly paid invoice gets no discount, and needs its whole due
        SELECT invoice_id, number,
               billing.amount(least(need, v_funds - before), a.currency) AS amount,
               billing.amount(CASE WHEN v_funds - before >= need THEN disc ELSE 0 END, a.currency) AS discount
        FROM run WHERE v_funds > before
    ), ins AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, payment_id, amount)
        SELECT a.account_id, app.invoice_id, 'payment', _pay_invoices.payment_id, app.amount
        FROM app WHERE billing.to_numeric(app.amount) > 0
        UNION ALL
        SELECT a.account_id, app.invoice_id, 'discount', NULL, app.discount FROM app WHERE billing.to_numeric(app.discount) > 0
    ), upd AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid + ap.amount + ap.discount, amount_due = i.amount_due - ap.amount - ap.discount,
            status = CASE WHEN billing.to_numeric(i.amount_due - ap.amount - ap.discount) = 0 THEN 'paid' ELSE i.status END
        FROM app ap WHERE i.account_id = a.account_id AND i.invoice_id = ap.invoice_id
    )
    SELECT coalesce(sum(billing.to_numeric(app.amount)), 0),
           array_agg(app.invoice_id ORDER BY app.invoice_id) FILTER (WHERE billing.to_numeric(app.discount) > 0),
           array_agg(app.number ORDER BY app.invoice_id) FILTER (WHERE billing.to_numeric(app.discount) > 0),
           array_agg(app.discount ORDER BY app.invoice_id) FILTER (WHERE billing.to_numeric(app.discount) > 0)
    INTO v_applied, v_disc_invoices, v_disc_numbers, v_disc_amounts
    FROM app;
    -- the discounts' ledger transactions, in a statement of their own: an
    -- INSERT into ledger_entry runs the balance trigger even when it adds
    -- no row, and most payments have no discount
    IF v_disc_invoices IS NOT NULL THEN
        WITH d AS (
            SELECT * FROM unnest(v_disc_invoices, v_disc_numbers, v_disc_amounts) d(invoice_id, number, discount)
        ), txn AS (
            INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, payment_id, description)
            SELECT a.account_id, 'early_payment_discount', _pay_invoices.received_on, d.invoice_id,
                   _pay_invoices.payment_id, 'early-payment discount on invoice ' || d.number
            FROM d ORDER BY d.invoice_id
            RETURNING txn_id, invoice_id
        )
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT a.account_id, t.txn_id, e.ledger_account, e.amount
        FROM txn t JOIN d ON d.invoice_id = t.invoice_id
        CROSS JOIN LATERAL (VALUES ('discounts', d.discount), ('receivable', -d.discount)) e(ledger_account, amount);
    END IF;
    RETURN billing.amount(v_applied, a.currency);
END $$;
COMMENT ON FUNCTION billing._pay_invoices(billing.account, bigint, billing.amount, date, bigint[]) IS
    'internal: applies a recorded payment to the account''s open invoices (oldest due first, or invoice_ids in '
    'order) with early-payment discounts and their postings, set-based; returns the amount applied';

CREATE OR REPLACE FUNCTION billing.apply_payment(
    account_id bigint, amount billing.amount, method text, reference text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, received_on date DEFAULT NULL, invoice_ids bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_received date;
    v_id bigint;
    v_applied billing.amount;
    v_excess billing.amount;
BEGIN
    -- 1. validate
    PERFORM billing._authorize_account(apply_payment.account_id);
    a := billing._payment_account(account_id);
    PERFORM billing._check_payment(a, amount, method, reference, idempotency_key, invoice_ids);
    -- (a payment of today, the common case, costs no check)
    v_received := CASE WHEN received_on IS NULL THEN billing.today(a.timezone)
                       ELSE billing._check_date(received_on, 'received_on', billing.today(a.timezone)) END;
    -- 2. lock 1 (billing._lock_account_money when the row is missing: a
    -- row lock, not an upsert that writes a new row version each time),
    -- then a retry returns its payment
    PERFORM FROM billing.account_credit c WHERE c.account_id = a.account_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM billing._lock_account_money(a.account_id, a.currency);
    END IF;
    IF idempotency_key IS NOT NULL THEN
        v_id := billing._payment_replay(a.account_id, amount, method, reference, idempotency_key, received_on,
                                        invoice_ids);
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
    END IF;
    IF invoice_ids IS NOT NULL THEN
        PERFORM billing._check_payment_invoices(a.account_id, invoice_ids);
    END IF;
    -- 3. record the payment
    INSERT INTO billing.payment AS x (account_id, amount, method, reference, idempotency_key, received_on,
                                      target_invoice_ids, amount_refunded)
    VALUES (a.account_id, amount, method, reference, idempotency_key, v_received, invoice_ids,
            billing.from_minor_units(0, a.currency))
    RETURNING x.payment_id INTO v_id;
    -- 4. apply it to the invoices (lock 2)
    v_applied := billing._pay_invoices(a, v_id, amount, v_received, invoice_ids);
    -- 5. the rest becomes the account's unapplied credit
    v_excess := amount - v_applied;
    IF billing.to_numeric(v_excess) > 0 THEN
        UPDATE billing.account_credit c SET balance = c.balance + v_excess, updated_at = billing.now()
        WHERE c.account_id = a.account_id;
    END IF;
    -- 6. the posting and the outbox event
    PERFORM billing._post(a.account_id, 'payment', v_received, format('payment %s by %s', v_id, method),
                          ARRAY['cash', 'receivable', 'customer_credit'], ARRAY[amount, -v_applied, -v_excess],
                          payment_id => v_id);
    PERFORM billing._money_event(a.account_id, 'payment.received',
                                 jsonb_build_object('payment_id', v_id, 'amount', amount::text,
                                                    'applied', v_applied::text, 'credited', v_excess::text));
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.apply_payment(bigint, billing.amount, text, text, text, date, bigint[]) IS
    'records a payment and applies it to the account''s open invoices, oldest due first (or to invoice_ids, in '
    'that order); the rest becomes unapplied credit that later invoices consume; posts it to the ledger; the same '
    'idempotency_key with the same arguments returns the same payment, with other arguments raises 23505';

CREATE OR REPLACE FUNCTION billing._account_amount(account_id bigint, value numeric) RETURNS billing.amount
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_currency text;
BEGIN
    SELECT a.currency INTO v_currency FROM billing.account a WHERE a.account_id = _account_amount.account_id;
    -- no such account: the money function called with it says so
    IF v_currency IS NULL OR value IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN billing.amount(value, v_currency);
END $$;

COMMENT ON FUNCTION billing._account_amount(bigint, numeric) IS
    'internal: value as an exact amount in the account''s currency (22023 for more decimals than it has); '
    'NULL for an account that does not exist; the caller has authorized the account';

CREATE OR REPLACE FUNCTION billing.apply_payment(
    account_id bigint, amount numeric, method text, reference text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, received_on date DEFAULT NULL, invoice_ids bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing.apply_payment($1, billing._account_amount($1, $2), $3, $4, $5, $6, $7)
$$;

COMMENT ON FUNCTION billing.apply_payment(bigint, numeric, text, text, text, date, bigint[]) IS
    'apply_payment with the amount as a number in the account''s currency: apply_payment(1, 58.31, ''cash'')';

CREATE OR REPLACE FUNCTION billing._apply_credit(accounts bigint[], invoices bigint[], amounts billing.amount[])
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH app AS MATERIALIZED (
        SELECT u.account_id, u.invoice_id, u.amount, i.issue_date, i.number
        FROM unnest(accounts, invoices, amounts) u(account_id, invoice_id, amount)
        CROSS JOIN LATERAL (SELECT i.issue_date, i.number FROM billing.invoice i
                            WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id LIMIT 1) i
    ), ins_app AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, amount)
        SELECT account_id, invoice_id, 'credit', amount FROM app
        RETURNING 1
    ), upd_inv AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid + a.amount, amount_due = i.amount_due - a.amount,
            status = CASE WHEN billing.to_numeric(i.amount_due - a.amount) = 0 THEN 'paid' ELSE i.status END
        FROM app a WHERE i.account_id = a.account_id AND i.invoice_id = a.invoice_id
        RETURNING 1
    ), upd_credit AS (
        UPDATE billing.account_credit c SET balance = c.balance - s.amount, updated_at = billing.now()
        FROM (SELECT account_id, billing.sum(amount) AS amount FROM app GROUP BY 1) s
        WHERE c.account_id = s.account_id
        RETURNING 1
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, description)
        SELECT account_id, 'credit_applied', issue_date, invoice_id,
               CASE WHEN billing.to_numeric(amount) > 0 THEN 'credit applied to invoice ' ELSE 'credit from invoice ' END
               || number
        FROM app
        RETURNING account_id, txn_id, invoice_id
    ), ent AS (
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT t.account_id, t.txn_id, e.ledger_account, e.amount
        FROM txn t
        JOIN app a ON a.account_id = t.account_id AND a.invoice_id = t.invoice_id
        CROSS JOIN LATERAL (VALUES ('customer_credit', a.amount), ('receivable', -a.amount)) e(ledger_account, amount)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins_app) + (SELECT count(*) FROM upd_inv) + (SELECT count(*) FROM upd_credit)
           + (SELECT count(*) FROM ent)
$$;

COMMENT ON FUNCTION billing._apply_credit(bigint[], bigint[], billing.amount[]) IS
    'internal: moves amounts between the accounts'' unapplied credit and invoices (positive: the credit pays the '
    'invoice; negative: a credit invoice adds to the credit), with applications and ledger postings';

-- Lets the accounts' unapplied credit pay these invoices, oldest due first,
-- in one statement.  Locks the account_credit rows in account_id order.
CREATE OR REPLACE FUNCTION billing._consume_credit(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- Step 1 of the lock order, in a statement of its own: the next
    -- statement's snapshot then sees every balance as it is after the
    -- transactions we waited for (a row locked and updated in one statement
    -- would be updated from the version in the statement's snapshot).
    SELECT count(*) FROM (
        SELECT FROM billing.account_credit c
        WHERE c.account_id IN (SELECT DISTINCT unnest(accounts))
        ORDER BY c.account_id
        FOR UPDATE) locked;
    WITH cr AS MATERIALIZED (
        SELECT c.account_id, billing.to_numeric(c.balance) AS balance
        FROM billing.account_credit c
        WHERE c.account_id IN (SELECT DISTINCT unnest(accounts)) AND billing.to_numeric(c.balance) > 0
    ), inv AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.currency, cr.balance,
               billing.to_numeric(i.amount_due) AS due,
               -- what is due soonest by its schedule first, as a payment
               coalesce(sum(billing.to_numeric(i.amount_due)) OVER (
                   PARTITION BY i.account_id ORDER BY sch.due_on, i.invoice_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN cr ON cr.account_id = u.account_id
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        JOIN billing._invoice_schedule sch ON sch.account_id = u.account_id AND sch.invoice_id = u.invoice_id
        WHERE i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
    ), app AS MATERIALIZED (
        SELECT account_id, invoice_id, billing.amount(least(due, balance - before), currency) AS amount
        FROM inv WHERE balance > before
    )
    SELECT billing._apply_credit(array_agg(account_id), array_agg(invoice_id), array_agg(amount))
    FROM app
    HAVING count(*) > 0
$$;
COMMENT ON FUNCTION billing._consume_credit(bigint[], bigint[]) IS
    'internal: applies the accounts'' unapplied credit to these open invoices, due soonest first by their schedule '
    '(billing._invoice_schedule), with ledger postings';

-- The finalization step.  Everything that follows from invoices being
-- issued, in the order a reader of the books expects: each invoice's
-- invoice.finalized event, its posting to the ledger (the posting recipe,
-- billing._post_invoices_finalized),
-- the account's unapplied credit pays what it can of it (billing._consume_credit),
-- and what is left due is queued for automatic collection
-- (billing._queue_collection).  Every path that issues invoices calls it by
-- name right after issuing them (billing._bill for the cycle, plan changes
-- and cancellations; billing._finalize_drafts; the late-fee step of
-- dunning), in the same transaction;
-- no trigger does money work, so what a statement causes does not depend on
-- how the client wrapped it, and a restore (triggers off, README,
-- Operations: Backup and restore) loads the rows exactly as they were dumped.
CREATE OR REPLACE FUNCTION billing._finalize_invoices(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_invoices bigint[];
    v_amounts billing.amount[];
    -- the invoices the accounts' credit may pay: these, and every open
    -- invoice of an account a credit invoice just credited
    v_pay_accounts bigint[] := accounts;
    v_pay_invoices bigint[] := invoices;
BEGIN
    IF coalesce(cardinality(invoices), 0) = 0 THEN
        RETURN;
    END IF;
    -- every issued invoice tells the integrations once, whichever path issued
    -- it (the cycle, a draft's end, a late fee)
    INSERT INTO billing.outbox (account_id, event_type, payload)
    SELECT i.account_id, 'invoice.finalized',
           jsonb_build_object('invoice_id', i.invoice_id, 'number', i.number, 'subscription_id', i.subscription_id,
                              'total', i.total::text, 'due_date', i.due_date)
    FROM unnest(accounts, invoices) u(account_id, invoice_id)
    JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
    ORDER BY i.account_id, i.invoice_id;
    PERFORM billing._post_invoices_finalized(accounts, invoices);
    -- A credit invoice (total below zero) owes the customer: its amount
    -- becomes the account's credit (the invoice is then paid), and that
    -- credit settles what the account owes, oldest due first, below.
    SELECT array_agg(u.account_id ORDER BY u.account_id, u.invoice_id),
           array_agg(u.invoice_id ORDER BY u.account_id, u.invoice_id),
           array_agg(i.amount_due ORDER BY u.account_id, u.invoice_id)
    INTO v_accounts, v_invoices, v_amounts
    FROM unnest(accounts, invoices) u(account_id, invoice_id)
    CROSS JOIN LATERAL (SELECT i.amount_due FROM billing.invoice i
                        WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id
                          AND i.status = 'open' AND billing.to_numeric(i.amount_due) < 0 LIMIT 1) i;
    IF v_accounts IS NOT NULL THEN
        -- lock 1 of the lock order, in account order, created at zero
        INSERT INTO billing.account_credit AS c (account_id, balance)
        SELECT DISTINCT a.account_id, billing.from_minor_units(0, a.currency)
        FROM billing.account a WHERE a.account_id = ANY (v_accounts)
        ORDER BY a.account_id
        ON CONFLICT ON CONSTRAINT account_credit_pkey DO NOTHING;
        PERFORM FROM billing.account_credit c WHERE c.account_id = ANY (v_accounts) ORDER BY c.account_id FOR UPDATE;
        PERFORM billing._apply_credit(v_accounts, v_invoices, v_amounts);
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT u.account_id, 'invoice.credited', jsonb_build_object('invoice_id', u.invoice_id, 'credit', (-u.amount)::text)
        FROM unnest(v_accounts, v_invoices, v_amounts) u(account_id, invoice_id, amount);
        -- the accounts' other open invoices come first in line for the credit
        SELECT array_agg(x.account_id), array_agg(x.invoice_id) INTO v_pay_accounts, v_pay_invoices
        FROM (SELECT u.account_id, u.invoice_id FROM unnest(accounts, invoices) u(account_id, invoice_id)
              UNION
              SELECT i.account_id, i.invoice_id FROM billing.invoice i
              WHERE i.account_id = ANY (v_accounts) AND i.status = 'open' AND billing.to_numeric(i.amount_due) > 0) x;
    END IF;
    -- credit and collection only for the few accounts that have some.  The
    -- EXISTS guards skip a table with no rows at all: its statistics then
    -- say "one row", and the planner probes it once per new invoice.
    IF EXISTS (SELECT FROM billing.account_credit) THEN
        SELECT array_agg(u.account_id), array_agg(u.invoice_id) INTO v_accounts, v_invoices
        FROM unnest(v_pay_accounts, v_pay_invoices) u(account_id, invoice_id)
        CROSS JOIN LATERAL (SELECT FROM billing.account_credit c WHERE c.account_id = u.account_id LIMIT 1) c;
        IF v_accounts IS NOT NULL THEN
            PERFORM billing._consume_credit(v_accounts, v_invoices);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM billing.payment_method) THEN
        SELECT array_agg(u.account_id), array_agg(u.invoice_id) INTO v_accounts, v_invoices
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        CROSS JOIN LATERAL (SELECT FROM billing.payment_method m
                            WHERE m.account_id = u.account_id AND m.is_default AND m.active LIMIT 1) m;
        IF v_accounts IS NOT NULL THEN
            PERFORM billing._queue_collection(v_accounts, v_invoices);
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION billing._finalize_invoices(bigint[], bigint[]) IS
    'internal: the finalization step of just issued invoices: writes their invoice.finalized events, posts them to the ledger, applies the accounts'' '
    'unapplied credit to them and queues automatic collection of what is left due';

CREATE OR REPLACE FUNCTION billing._invoice_account_exists() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_bad record;
BEGIN
    SELECT n.account_id, n.invoice_id INTO v_bad
    FROM new_invoices n
    LEFT JOIN LATERAL (SELECT true AS found FROM billing.account a
                       WHERE a.account_id = n.account_id LIMIT 1) a ON true
    WHERE n.subscription_id IS NULL AND a.found IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'account % of invoice % does not exist', v_bad.account_id, v_bad.invoice_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_account.';
    END IF;
    RETURN NULL;
END $$;

COMMENT ON FUNCTION billing._invoice_account_exists() IS
    'internal trigger (a guard): the account of every inserted invoice without a subscription exists (23503)';

-- 72_refunds_credits.sql

CREATE OR REPLACE FUNCTION billing._take_back(account_id bigint, payment_id bigint, amount billing.amount, kind text,
                                   reason text, idempotency_key text)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    p billing.payment;
    r billing.refund;
    v_credit numeric;
    v_applied numeric;
    v_amount numeric;
    v_from_credit numeric;
    v_rest numeric;
    v_reopened numeric;
    v_reopened_ids bigint[];
    v_id bigint;
    v_today date;
BEGIN
    a := billing._payment_account(account_id);
    IF billing.looks_like_card_number(reason) OR billing.looks_like_card_number(idempotency_key) THEN
        RAISE EXCEPTION 'a % reason or key must not hold a card number', kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Never store card or bank numbers.';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'an idempotency key must not be empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Pass NULL for a %s without one.', kind);
    END IF;
    v_credit := billing.to_numeric(billing._lock_account_money(a.account_id, a.currency));
    IF idempotency_key IS NOT NULL THEN
        SELECT * INTO r FROM billing.refund x
        WHERE x.account_id = a.account_id AND x.idempotency_key = _take_back.idempotency_key;
        IF FOUND THEN
            IF r.payment_id = _take_back.payment_id AND r.kind = _take_back.kind
               AND (amount IS NULL OR r.amount = amount) AND r.reason IS NOT DISTINCT FROM reason THEN
                RETURN r.refund_id;
            END IF;
            RAISE EXCEPTION 'idempotency key % of account % was used for another refund (%)', idempotency_key,
                a.account_id, r.refund_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Use a new key for a new refund; a retry must repeat the same arguments.';
        END IF;
    END IF;
    -- step 2: the invoices this payment paid, then step 3: the payment
    PERFORM FROM billing.invoice i
    WHERE i.account_id = a.account_id
      AND i.invoice_id IN (SELECT x.invoice_id FROM billing.payment_application x
                           WHERE x.account_id = a.account_id AND x.payment_id = _take_back.payment_id)
    ORDER BY i.due_date, i.invoice_id FOR UPDATE;
    SELECT * INTO p FROM billing.payment x
    WHERE x.account_id = a.account_id AND x.payment_id = _take_back.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % of account % does not exist', coalesce(payment_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.payment lists the account''s payments.';
    END IF;
    IF p.status = 'charged_back' THEN
        RAISE EXCEPTION 'payment % was charged back', p.payment_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is left to give back.';
    END IF;
    v_amount := coalesce(billing.to_numeric(amount), billing.to_numeric(p.amount) - billing.to_numeric(p.amount_refunded));
    IF amount IS NOT NULL AND billing.currency(amount) <> a.currency OR v_amount <= 0
       OR v_amount > billing.to_numeric(p.amount) - billing.to_numeric(p.amount_refunded) THEN
        RAISE EXCEPTION 'a % of payment % must be positive, in %, and at most the % not yet given back, not %', kind,
            p.payment_id, a.currency, p.amount - p.amount_refunded, coalesce(amount::text, v_amount::text)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave amount out to give back all that is left.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(x.amount)), 0) INTO v_applied
    FROM billing.payment_application x WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id;
    -- first what the payment left unapplied (still in the credit balance),
    -- then what it paid, taken back from its newest invoices first
    v_from_credit := greatest(least(v_amount,
                                    billing.to_numeric(p.amount) - v_applied - billing.to_numeric(p.amount_refunded),
                                    v_credit), 0);
    v_rest := v_amount - v_from_credit;
    WITH by_payment AS (
        SELECT x.invoice_id, sum(billing.to_numeric(x.amount)) AS paid
        FROM billing.payment_application x
        JOIN billing.invoice i ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id
        WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id AND i.status IN ('open', 'paid')
        GROUP BY 1 HAVING sum(billing.to_numeric(x.amount)) > 0
    ), paid AS (
        -- no invoice pays out more cash than came in on it: what refund
        -- credit notes already paid back on it is not taken back again
        SELECT b.invoice_id, least(b.paid, cash.received - cash.refunded) AS paid
        FROM by_payment b
        CROSS JOIN LATERAL (
            SELECT (SELECT coalesce(sum(billing.to_numeric(y.amount)), 0) FROM billing.payment_application y
                    WHERE y.account_id = a.account_id AND y.invoice_id = b.invoice_id AND y.source = 'payment')
                       AS received,
                   (SELECT coalesce(sum(billing.to_numeric(c.amount)), 0) FROM billing.credit_note c
                    WHERE c.account_id = a.account_id AND c.invoice_id = b.invoice_id AND c.method = 'refund')
                       AS refunded) cash
        WHERE cash.received - cash.refunded > 0
    ), run AS (
        SELECT invoice_id, paid,
               coalesce(sum(paid) OVER (ORDER BY invoice_id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                   AS before
        FROM paid
    ), back AS MATERIALIZED (
        SELECT invoice_id, billing.amount(least(paid, v_rest - before), a.currency) AS back_amount
        FROM run WHERE v_rest > before
    ), ins AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, payment_id, amount)
        SELECT a.account_id, back.invoice_id, 'payment', p.payment_id, -back.back_amount FROM back
    ), upd AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid - b.back_amount, amount_due = i.amount_due + b.back_amount, status = 'open'
        FROM back b WHERE i.account_id = a.account_id AND i.invoice_id = b.invoice_id
    )
    SELECT coalesce(sum(billing.to_numeric(back.back_amount)), 0), array_agg(back.invoice_id)
    INTO v_reopened, v_reopened_ids FROM back;
    IF v_reopened <> v_rest THEN
        RAISE EXCEPTION 'payment % cannot give back % %: % is left unapplied and % on its open or paid invoices',
            p.payment_id, v_amount, a.currency, v_from_credit, v_reopened
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its credit was used by later invoices (issue a credit note with method refund on them '
                         'instead), or refund credit notes already paid its invoices back.';
    END IF;
    UPDATE billing.account_credit c SET balance = c.balance - billing.amount(v_from_credit, a.currency),
                                        updated_at = billing.now()
    WHERE c.account_id = a.account_id AND v_from_credit > 0;
    -- credit the account still has pays the reopened invoices again
    IF v_reopened_ids IS NOT NULL THEN
        PERFORM billing._consume_credit(array_fill(a.account_id, ARRAY[cardinality(v_reopened_ids)]), v_reopened_ids);
    END IF;
    UPDATE billing.payment x
    SET amount_refunded = x.amount_refunded + billing.amount(v_amount, a.currency),
        status = CASE WHEN kind = 'chargeback' THEN 'charged_back'
                      WHEN billing.to_numeric(x.amount_refunded) + v_amount = billing.to_numeric(x.amount) THEN 'refunded'
                      ELSE 'partially_refunded' END
    WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id;
    INSERT INTO billing.refund AS x (account_id, payment_id, kind, amount, from_credit, reason, idempotency_key)
    VALUES (a.account_id, p.payment_id, kind, billing.amount(v_amount, a.currency),
            billing.amount(v_from_credit, a.currency), reason, idempotency_key)
    RETURNING x.refund_id INTO v_id;
    v_today := billing.today(a.timezone);
    PERFORM billing._post(a.account_id, kind, v_today, format('%s %s of payment %s', kind, v_id, p.payment_id),
                          ARRAY['customer_credit', 'receivable', 'cash'],
                          ARRAY[billing.amount(v_from_credit, a.currency), billing.amount(v_rest, a.currency),
                                billing.amount(-v_amount, a.currency)],
                          payment_id => p.payment_id, source_id => v_id);
    PERFORM billing._money_event(a.account_id, 'payment.' || kind,
                           jsonb_build_object(kind || '_id', v_id, 'payment_id', p.payment_id,
                                              'amount', billing.amount(v_amount, a.currency)::text));
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing._take_back(bigint, bigint, billing.amount, text, text, text) IS
    'internal: a refund or chargeback of a payment: first from what it left unapplied, then reopening the '
    'invoices it paid, newest first; posts it to the ledger';

CREATE OR REPLACE FUNCTION billing.refund_payment(account_id bigint, payment_id bigint, amount billing.amount DEFAULT NULL,
                                       reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing._take_back($1, $2, $3, 'refund', $4, $5)
$$;

COMMENT ON FUNCTION billing.refund_payment(bigint, bigint, billing.amount, text, text) IS
    'refunds a payment in full (amount NULL) or in part: first what it left as unapplied credit, then what it '
    'paid on invoices, which reopen (newest first); returns the refund id; same idempotency key, same refund';

CREATE OR REPLACE FUNCTION billing.refund_payment(account_id bigint, payment_id bigint, amount numeric,
                                       reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing.refund_payment($1, $2, billing._account_amount($1, $3), $4, $5)
$$;

COMMENT ON FUNCTION billing.refund_payment(bigint, bigint, numeric, text, text) IS
    'refund_payment with the amount as a number in the account''s currency';

CREATE OR REPLACE FUNCTION billing.refund_credit(account_id bigint, amount billing.amount DEFAULT NULL,
                                      reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    r billing.refund;
    v_credit billing.amount;
    v_amount billing.amount;
    v_id bigint;
BEGIN
    PERFORM billing._authorize_account(refund_credit.account_id);
    a := billing._payment_account(account_id);
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'an idempotency key must not be empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for a refund without one.';
    END IF;
    v_credit := billing._lock_account_money(a.account_id, a.currency);
    IF idempotency_key IS NOT NULL THEN
        SELECT * INTO r FROM billing.refund x
        WHERE x.account_id = a.account_id AND x.idempotency_key = refund_credit.idempotency_key;
        IF FOUND THEN
            IF r.payment_id IS NULL AND (amount IS NULL OR r.amount = amount)
               AND r.reason IS NOT DISTINCT FROM refund_credit.reason THEN
                RETURN r.refund_id;
            END IF;
            RAISE EXCEPTION 'idempotency key % of account % was used for another refund (%)', idempotency_key,
                a.account_id, r.refund_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Use a new key for a new refund; a retry must repeat the same arguments.';
        END IF;
    END IF;
    v_amount := coalesce(amount, v_credit);
    IF amount IS NULL AND billing.to_numeric(v_credit) = 0 THEN
        RAISE EXCEPTION 'account % has no credit to refund', a.account_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'billing.account_balance shows the credit; refund a payment with billing.refund_payment.';
    END IF;
    IF billing.currency(v_amount) <> a.currency OR billing.to_numeric(v_amount) <= 0 THEN
        RAISE EXCEPTION 'a refund of account %''s credit must be positive and in %, not %', a.account_id, a.currency,
            v_amount
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave amount out to give back all the credit.';
    END IF;
    IF v_amount > v_credit THEN
        RAISE EXCEPTION 'account % has % of credit, less than the % asked back', a.account_id, v_credit, v_amount
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'billing.account_balance shows the credit; refund a payment with billing.refund_payment.';
    END IF;
    INSERT INTO billing.refund AS x (account_id, payment_id, kind, amount, from_credit, reason, idempotency_key)
    VALUES (a.account_id, NULL, 'refund', v_amount, v_amount, reason, idempotency_key)
    RETURNING x.refund_id INTO v_id;
    UPDATE billing.account_credit c SET balance = c.balance - v_amount, updated_at = billing.now()
    WHERE c.account_id = a.account_id;
    PERFORM billing._post(a.account_id, 'refund', billing.today(a.timezone), 'refund of account credit',
                          ARRAY['customer_credit', 'cash'], ARRAY[v_amount, -v_amount], source_id => v_id);
    PERFORM billing._money_event(a.account_id, 'credit.refunded',
                                 jsonb_build_object('refund_id', v_id, 'amount', v_amount::text));
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.refund_credit(bigint, billing.amount, text, text) IS
    'gives (some of) the account''s unapplied credit back as cash (default: all of it); idempotent per key; '
    'returns the refund''s id';

CREATE OR REPLACE FUNCTION billing.refund_credit(account_id bigint, amount numeric,
                                      reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing.refund_credit($1, billing._account_amount($1, $2), $3, $4)
$$;

COMMENT ON FUNCTION billing.refund_credit(bigint, numeric, text, text) IS
    'refund_credit with the amount as a number in the account''s currency';

CREATE OR REPLACE FUNCTION billing.record_chargeback(account_id bigint, payment_id bigint, amount billing.amount DEFAULT NULL,
                                          reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing._take_back($1, $2, $3, 'chargeback', $4, $5)
$$;

COMMENT ON FUNCTION billing.record_chargeback(bigint, bigint, billing.amount, text, text) IS
    'records a chargeback of a payment (the card network took the money back): like a refund, the invoices it '
    'paid reopen and feed dunning; the payment becomes charged_back; returns the refund id';

CREATE OR REPLACE FUNCTION billing.record_chargeback(account_id bigint, payment_id bigint, amount numeric,
                                          reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing.record_chargeback($1, $2, billing._account_amount($1, $3), $4, $5)
$$;

COMMENT ON FUNCTION billing.record_chargeback(bigint, bigint, numeric, text, text) IS
    'record_chargeback with the amount as a number in the account''s currency';

CREATE OR REPLACE FUNCTION billing.issue_credit_note(account_id bigint, invoice_id bigint, amount billing.amount,
                                          method text DEFAULT 'reduce_due', reason text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    i billing.invoice;
    v_credited numeric;
    v_received numeric;
    v_refunded numeric;
    v_parts billing.amount[];
    v_id bigint;
BEGIN
    PERFORM billing._authorize_account(issue_credit_note.account_id);
    a := billing._payment_account(account_id);
    IF method IS NULL OR method NOT IN ('reduce_due', 'credit_balance', 'refund') THEN
        RAISE EXCEPTION 'unknown credit note method %', coalesce(method, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use reduce_due, credit_balance or refund.';
    END IF;
    IF billing.looks_like_card_number(reason) THEN
        RAISE EXCEPTION 'a credit note reason must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Never store card or bank numbers.';
    END IF;
    i := billing._lock_invoice(a, invoice_id);
    IF i.status NOT IN ('open', 'paid') THEN
        RAISE EXCEPTION 'invoice % is %: only open or paid invoices take credit notes', i.invoice_id, i.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A void or written-off invoice is closed.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(c.amount)), 0) INTO v_credited
    FROM billing.credit_note c WHERE c.account_id = a.account_id AND c.invoice_id = i.invoice_id;
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0
       OR billing.to_numeric(amount) > billing.to_numeric(i.total) - v_credited THEN
        RAISE EXCEPTION 'a credit note on invoice % must be positive, in %, and at most % (total % less % credited), not %',
            i.invoice_id, a.currency, billing.to_numeric(i.total) - v_credited, i.total, v_credited,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A credit note corrects at most what was invoiced.';
    END IF;
    IF method = 'reduce_due' AND billing.to_numeric(amount) > billing.to_numeric(i.amount_due) THEN
        RAISE EXCEPTION 'invoice % has only % due, less than the credit note''s %', i.invoice_id, i.amount_due, amount
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Credit the rest to the balance (method credit_balance) or refund it.';
    END IF;
    -- a refund pays cash out: at most the cash that came in on this invoice
    -- (its payments, less what refunds of them took back) less what earlier
    -- refund credit notes paid out.  Credit applied to it is not cash: a
    -- credit note to the balance, consumed here, would otherwise turn into
    -- money.
    IF method = 'refund' THEN
        SELECT coalesce(sum(billing.to_numeric(x.amount)), 0) INTO v_received
        FROM billing.payment_application x
        WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id AND x.source = 'payment';
        SELECT coalesce(sum(billing.to_numeric(c.amount)), 0) INTO v_refunded
        FROM billing.credit_note c
        WHERE c.account_id = a.account_id AND c.invoice_id = i.invoice_id AND c.method = 'refund';
        IF billing.to_numeric(amount) > v_received - v_refunded THEN
            RAISE EXCEPTION 'invoice % received % in payments and refunded % of it: a refund of % is more than came in',
                i.invoice_id, billing.amount(v_received, a.currency), billing.amount(v_refunded, a.currency), amount
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'A refund pays back only money received on the invoice; correct the rest with method '
                             'reduce_due or credit_balance.';
        END IF;
    END IF;
    -- the credit note's tax is its share of the invoice's tax, exactly
    v_parts := billing.allocate(amount, ARRAY[billing.to_numeric(i.total - i.tax), billing.to_numeric(i.tax)]);
    INSERT INTO billing.credit_note AS c (account_id, invoice_id, amount, tax, method, reason)
    VALUES (a.account_id, i.invoice_id, amount, v_parts[2], method, reason)
    RETURNING c.credit_note_id INTO v_id;
    IF method = 'reduce_due' THEN
        INSERT INTO billing.payment_application (account_id, invoice_id, source, credit_note_id, amount)
        VALUES (a.account_id, i.invoice_id, 'credit_note', v_id, amount);
        UPDATE billing.invoice x
        SET amount_paid = x.amount_paid + amount, amount_due = x.amount_due - amount,
            status = CASE WHEN billing.to_numeric(x.amount_due - amount) = 0 THEN 'paid' ELSE x.status END
        WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    ELSIF method = 'credit_balance' THEN
        UPDATE billing.account_credit c SET balance = c.balance + amount, updated_at = billing.now()
        WHERE c.account_id = a.account_id;
    END IF;
    PERFORM billing._post(a.account_id, 'credit_note', billing.today(a.timezone),
                          format('credit note %s on invoice %s (%s)', v_id, i.number, method),
                          ARRAY['discounts', 'tax_payable',
                                CASE method WHEN 'reduce_due' THEN 'receivable'
                                            WHEN 'credit_balance' THEN 'customer_credit' ELSE 'cash' END],
                          ARRAY[v_parts[1], v_parts[2], -amount],
                          invoice_id => i.invoice_id, source_id => v_id);
    -- credit the customer is owed settles what the account owes, oldest due
    -- first, as a credit invoice's does (billing._consume_credit): nobody is
    -- reminded or charged a fee for money the account holds for them
    IF method = 'credit_balance' THEN
        PERFORM billing._consume_credit(array_agg(x.account_id), array_agg(x.invoice_id))
        FROM billing.invoice x
        WHERE x.account_id = a.account_id AND x.status = 'open' AND billing.to_numeric(x.amount_due) > 0;
    END IF;
    PERFORM billing._money_event(a.account_id, 'credit_note.issued',
                           jsonb_build_object('credit_note_id', v_id, 'invoice_id', i.invoice_id,
                                              'amount', amount::text, 'method', method));
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.issue_credit_note(bigint, bigint, billing.amount, text, text) IS
    'issues a credit note on a finalized invoice (at most its total less earlier credit notes): reduce_due lowers '
    'what is due, credit_balance adds to the account''s credit, which pays its open invoices at once, oldest due '
    'first, refund pays it back (at most what payments brought in on the invoice less earlier refund credit notes); '
    'returns its id';

CREATE OR REPLACE FUNCTION billing.issue_credit_note(account_id bigint, invoice_id bigint, amount numeric,
                                          method text DEFAULT 'reduce_due', reason text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_account($1);
    SELECT billing.issue_credit_note($1, $2, billing._account_amount($1, $3), $4, $5)
$$;

COMMENT ON FUNCTION billing.issue_credit_note(bigint, bigint, numeric, text, text) IS
    'issue_credit_note with the amount as a number in the account''s (and so the invoice''s) currency';

CREATE OR REPLACE FUNCTION billing.void_invoice(account_id bigint, invoice_id bigint, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    i billing.invoice;
    v_applied bigint;
    v_notes bigint;
BEGIN
    PERFORM billing._authorize_account(void_invoice.account_id);
    a := billing._payment_account(account_id);
    i := billing._lock_invoice(a, invoice_id);
    IF i.status <> 'open' OR billing.to_numeric(i.amount_paid) <> 0 THEN
        RAISE EXCEPTION 'invoice % is % with % paid: only an open invoice with nothing paid can be voided',
            i.invoice_id, i.status, i.amount_paid
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Correct a paid or partly paid invoice with a credit note.';
    END IF;
    -- Only an untouched invoice: a void reverses the invoice's posting only,
    -- so anything applied to it (a payment since refunded, a credit note,
    -- above all one that paid cash back) would stay on the books against an
    -- invoice that no longer asks for anything.
    SELECT count(*) INTO v_applied FROM billing.payment_application x
    WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    SELECT count(*) INTO v_notes FROM billing.credit_note c
    WHERE c.account_id = a.account_id AND c.invoice_id = i.invoice_id;
    IF v_applied > 0 OR v_notes > 0 THEN
        RAISE EXCEPTION 'invoice % has % payment applications and % credit notes: only an untouched invoice can be voided',
            i.invoice_id, v_applied, v_notes
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Correct it with a credit note (billing.issue_credit_note, method reduce_due) for what is '
                         'still due, or write it off (billing.write_off_invoice).';
    END IF;
    UPDATE billing.invoice x SET status = 'void', amount_due = billing.from_minor_units(0, a.currency),
                                 metadata = x.metadata || jsonb_build_object('void_reason', reason)
    WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    PERFORM billing._post(a.account_id, 'void', billing.today(a.timezone), format('void invoice %s', i.number),
                          ARRAY['revenue', 'tax_payable', 'receivable'],
                          ARRAY[i.total - i.tax, i.tax, -i.total], invoice_id => i.invoice_id);
    PERFORM billing._money_event(a.account_id, 'invoice.voided', jsonb_build_object('invoice_id', i.invoice_id));
END $$;

COMMENT ON FUNCTION billing.void_invoice(bigint, bigint, text) IS
    'voids an open invoice that nothing was applied to (no payment, credit or credit note, even one taken back): '
    'it is no longer due and its posting is reversed';

CREATE OR REPLACE FUNCTION billing._write_off_invoices(accounts bigint[], invoices bigint[], reasons text[], days date[])
RETURNS TABLE (account_id bigint, invoice_id bigint)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH w AS (
        UPDATE billing.invoice i
        SET status = 'uncollectible',
            metadata = i.metadata || jsonb_build_object('write_off_reason', u.reason)
        FROM unnest(accounts, invoices, reasons, days) u(account_id, invoice_id, reason, day)
        WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id AND i.status = 'open'
        RETURNING i.account_id, i.invoice_id, i.number, i.amount_due, u.reason, u.day
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, description)
        SELECT w.account_id, 'write_off', w.day, w.invoice_id, 'write off invoice ' || w.number
        FROM w ORDER BY w.account_id, w.invoice_id
        RETURNING account_id, txn_id, invoice_id
    ), ent AS (
        -- the invoice's amount due by its key (a write-off does not change
        -- it), not by joining the two CTEs
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT t.account_id, t.txn_id, e.ledger_account, e.amount
        FROM txn t
        JOIN billing.invoice i ON i.account_id = t.account_id AND i.invoice_id = t.invoice_id
        CROSS JOIN LATERAL (VALUES ('bad_debt', i.amount_due), ('receivable', -i.amount_due)) e(ledger_account, amount)
        WHERE billing.to_numeric(i.amount_due) <> 0
        RETURNING 1
    ), ev AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT w.account_id, 'invoice.uncollectible',
               jsonb_build_object('invoice_id', w.invoice_id, 'amount', w.amount_due::text, 'reason', w.reason,
                                  'on', w.day)
        FROM w ORDER BY w.account_id, w.invoice_id
        RETURNING 1
    )
    SELECT w.account_id, w.invoice_id FROM w, (SELECT count(*) FROM ent) e, (SELECT count(*) FROM ev) v
$$;

COMMENT ON FUNCTION billing._write_off_invoices(bigint[], bigint[], text[], date[]) IS
    'internal: writes open invoices off as uncollectible on the given days, posting what was due to bad debt, '
    'with an invoice.uncollectible event each; returns the invoices written off';

CREATE OR REPLACE FUNCTION billing.write_off_invoice(account_id bigint, invoice_id bigint, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    PERFORM billing._authorize_account(write_off_invoice.account_id);
    a := billing._payment_account(account_id);
    i := billing._lock_invoice(a, invoice_id);
    IF i.status <> 'open' THEN
        RAISE EXCEPTION 'invoice % is %: only an open invoice can be written off', i.invoice_id, i.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is due on it.';
    END IF;
    PERFORM billing._write_off_invoices(ARRAY[a.account_id], ARRAY[i.invoice_id], ARRAY[reason],
                                        ARRAY[billing.today(a.timezone)]);
END $$;

COMMENT ON FUNCTION billing.write_off_invoice(bigint, bigint, text) IS
    'writes an open invoice off as uncollectible: what was still due goes to bad debt';

-- 74_collection.sql

CREATE OR REPLACE FUNCTION billing.add_payment_method(account_id bigint, method text, token text, make_default boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_id bigint;
BEGIN
    PERFORM billing._authorize_account(add_payment_method.account_id);
    a := billing._payment_account(account_id);
    PERFORM billing._check_payment_method(method);
    IF token IS NULL OR token = '' OR billing.looks_like_card_number(token) THEN
        RAISE EXCEPTION 'a payment method needs the provider''s token, and never a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Tokenize the card with the payment provider first.';
    END IF;
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    IF coalesce(make_default, true) THEN
        UPDATE billing.payment_method m SET is_default = false
        WHERE m.account_id = a.account_id AND m.is_default;
    END IF;
    -- (INSERT ... SELECT, not VALUES with a subquery: Citus routes that)
    INSERT INTO billing.payment_method AS m (account_id, method, token, is_default)
    SELECT a.account_id, method, token,
           coalesce(make_default, true)
           OR NOT EXISTS (SELECT FROM billing.payment_method x WHERE x.account_id = a.account_id AND x.is_default AND x.active)
    RETURNING m.payment_method_id INTO v_id;
    RETURN v_id;
END $$;

COMMENT ON FUNCTION billing.add_payment_method(bigint, text, text, boolean) IS
    'puts a payment method on file (the provider''s token; card numbers are refused, 22023) and by default makes '
    'it the one automatic collection charges; returns its id';

CREATE OR REPLACE FUNCTION billing.remove_payment_method(account_id bigint, payment_method_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
BEGIN
    PERFORM billing._authorize_account(remove_payment_method.account_id);
    a := billing._payment_account(account_id);
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    UPDATE billing.payment_method m SET active = false, is_default = false
    WHERE m.account_id = a.account_id AND m.payment_method_id = remove_payment_method.payment_method_id AND m.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment method % of account % does not exist or was removed',
            coalesce(payment_method_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.payment_method lists the account''s methods.';
    END IF;
    UPDATE billing.collection_attempt c SET status = 'canceled', finished_at = billing.now()
    WHERE c.account_id = a.account_id AND c.payment_method_id = remove_payment_method.payment_method_id
      AND c.status = 'pending';
END $$;

COMMENT ON FUNCTION billing.remove_payment_method(bigint, bigint) IS
    'deactivates a payment method and cancels its pending collection attempts';

CREATE OR REPLACE FUNCTION billing.set_collection_retry_days(retry_days integer[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('change the collection retry days');
    IF retry_days IS NULL OR array_position(retry_days, NULL) IS NOT NULL OR NOT 0 < ALL (retry_days)
       OR cardinality(retry_days) > 50 THEN
        RAISE EXCEPTION 'retry_days must be up to 50 positive day counts, not %', coalesce(retry_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: ''{1,3,5,7}''; ''{}'' never retries.';
    END IF;
    INSERT INTO billing.collection_setting AS s (setting_id, retry_days) VALUES (1, set_collection_retry_days.retry_days)
    ON CONFLICT ON CONSTRAINT collection_setting_pkey DO UPDATE SET retry_days = excluded.retry_days;
END $$;

COMMENT ON FUNCTION billing.set_collection_retry_days(integer[]) IS
    'sets the retry schedule of automatic collection: the nth failed attempt is retried after retry_days[n] days';

CREATE OR REPLACE FUNCTION billing.claim_collection_attempts(worker text, max_attempts integer DEFAULT 10,
                                                  as_of timestamptz DEFAULT NULL)
RETURNS TABLE (account_id bigint, attempt_id bigint, invoice_id bigint, attempt_no integer, amount billing.amount,
               method text, token text, idempotency_key text)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('claim collection attempts');
    IF worker IS NULL OR worker = '' OR max_attempts IS NULL OR max_attempts < 1 OR max_attempts > 10000 THEN
        RAISE EXCEPTION 'claim_collection_attempts needs a worker name and 1 to 10000 attempts, not % and %',
            coalesce(worker, 'NULL'), coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: claim_collection_attempts(''worker-1'', 50).';
    END IF;
    IF as_of IS NOT NULL THEN
        PERFORM billing._check_date(billing.today('UTC', as_of), 'the day of as_of', billing.today('UTC'));
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT c.account_id, c.attempt_id
        FROM billing.collection_attempt c
        WHERE c.status = 'pending' AND c.scheduled_at <= coalesce(as_of, billing.now())
        ORDER BY c.scheduled_at, c.attempt_id
        LIMIT max_attempts
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        -- an invoice paid or closed meanwhile is not charged: its attempt is canceled
        UPDATE billing.collection_attempt c
        SET status = CASE WHEN i.status = 'open' AND billing.to_numeric(i.amount_due) > 0 THEN 'processing'
                          ELSE 'canceled' END,
            amount = i.amount_due, started_at = billing.now(), worker = claim_collection_attempts.worker,
            finished_at = CASE WHEN i.status = 'open' AND billing.to_numeric(i.amount_due) > 0 THEN NULL
                               ELSE billing.now() END
        FROM picked p, billing.invoice i
        WHERE c.account_id = p.account_id AND c.attempt_id = p.attempt_id
          AND i.account_id = c.account_id AND i.invoice_id = c.invoice_id
        RETURNING c.account_id, c.attempt_id, c.invoice_id, c.attempt_no, c.amount, c.status, c.payment_method_id
    )
    SELECT x.account_id, x.attempt_id, x.invoice_id, x.attempt_no, x.amount, m.method, m.token,
           'collection-' || x.attempt_id
    FROM claimed x
    JOIN billing.payment_method m ON m.account_id = x.account_id AND m.payment_method_id = x.payment_method_id
    WHERE x.status = 'processing'
    ORDER BY x.attempt_id;
END $$;

COMMENT ON FUNCTION billing.claim_collection_attempts(text, integer, timestamptz) IS
    'for a collection worker: claims up to max_attempts due attempts (FOR UPDATE SKIP LOCKED, so workers never '
    'share one) with the amount now due, the method and token to charge; attempts of invoices no longer open are canceled';

CREATE OR REPLACE FUNCTION billing.report_collection_result(account_id bigint, attempt_id bigint, succeeded boolean,
                                                 provider_reference text DEFAULT NULL, failure_code text DEFAULT NULL,
                                                 failure_message text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    c billing.collection_attempt;
    m billing.payment_method;
    v_payment bigint;
    v_days integer[];
    v_next bigint;
    v_open boolean;
BEGIN
    PERFORM billing._authorize_account(report_collection_result.account_id);
    a := billing._payment_account(account_id);
    IF succeeded IS NULL THEN
        RAISE EXCEPTION 'succeeded must be true or false'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Report what the payment provider answered.';
    END IF;
    IF billing.looks_like_card_number(provider_reference) OR billing.looks_like_card_number(failure_code)
       OR billing.looks_like_card_number(failure_message) THEN
        RAISE EXCEPTION 'a collection result must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Report the provider''s reference only.';
    END IF;
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    SELECT * INTO c FROM billing.collection_attempt x
    WHERE x.account_id = a.account_id AND x.attempt_id = report_collection_result.attempt_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection attempt % of account % does not exist', coalesce(attempt_id::text, 'NULL'),
            a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'Report the attempts claim_collection_attempts returned.';
    END IF;
    -- a repeated report of the same result is answered the same way
    IF c.status = 'succeeded' AND succeeded THEN
        RETURN c.payment_id;
    ELSIF c.status = 'failed' AND NOT succeeded THEN
        RETURN (SELECT x.attempt_id FROM billing.collection_attempt x
                WHERE x.account_id = c.account_id AND x.invoice_id = c.invoice_id AND x.attempt_no = c.attempt_no + 1);
    ELSIF c.status <> 'processing' THEN
        RAISE EXCEPTION 'collection attempt % is %, not processing', c.attempt_id, c.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Claim it with claim_collection_attempts first.';
    END IF;
    SELECT * INTO m FROM billing.payment_method x
    WHERE x.account_id = a.account_id AND x.payment_method_id = c.payment_method_id;
    IF succeeded THEN
        SELECT i.status = 'open' INTO v_open FROM billing.invoice i
        WHERE i.account_id = a.account_id AND i.invoice_id = c.invoice_id;
        v_payment := billing.apply_payment(a.account_id, c.amount, m.method, reference => provider_reference,
                                           idempotency_key => 'collection-' || c.attempt_id,
                                           invoice_ids => CASE WHEN v_open THEN ARRAY[c.invoice_id] END);
        UPDATE billing.collection_attempt x
        SET status = 'succeeded', finished_at = billing.now(), payment_id = v_payment,
            provider_reference = report_collection_result.provider_reference
        WHERE x.account_id = a.account_id AND x.attempt_id = c.attempt_id;
        RETURN v_payment;
    END IF;
    UPDATE billing.collection_attempt x
    SET status = 'failed', finished_at = billing.now(), provider_reference = report_collection_result.provider_reference,
        failure_code = report_collection_result.failure_code, failure_message = report_collection_result.failure_message
    WHERE x.account_id = a.account_id AND x.attempt_id = c.attempt_id;
    v_days := coalesce((SELECT s.retry_days FROM billing.collection_setting s), '{1,3,5,7}');
    IF c.attempt_no <= cardinality(v_days) AND m.active THEN
        INSERT INTO billing.collection_attempt AS x (account_id, invoice_id, payment_method_id, attempt_no, amount,
                                                     scheduled_at)
        VALUES (a.account_id, c.invoice_id, c.payment_method_id, c.attempt_no + 1, c.amount,
                billing.now() + make_interval(days => v_days[c.attempt_no]))
        RETURNING x.attempt_id INTO v_next;
    END IF;
    PERFORM billing._money_event(a.account_id, 'collection.failed',
                           jsonb_build_object('attempt_id', c.attempt_id, 'invoice_id', c.invoice_id,
                                              'attempt_no', c.attempt_no, 'failure_code', failure_code,
                                              'next_attempt_id', v_next,
                                              'next_attempt_at', billing.now() + make_interval(days => v_days[c.attempt_no])));
    RETURN v_next;
END $$;

COMMENT ON FUNCTION billing.report_collection_result(bigint, bigint, boolean, text, text, text) IS
    'for a collection worker: success records the payment (idempotent per attempt) and returns its id; failure '
    'schedules the next attempt after retry_days[n], writes a collection.failed event for dunning and returns the '
    'next attempt id (NULL when retries are exhausted)';

-- 75_ledger_reports.sql

CREATE OR REPLACE FUNCTION billing.check_ledger_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- invariant 4: every ledger transaction balances per currency
    SELECT 'ledger_transaction_balances',
           format('transaction %s (account %s, %s): %s entries sum to %s', t.txn_id, t.account_id, t.kind,
                  s.currency, s.total)
    FROM (SELECT e.account_id, e.txn_id, billing.currency(e.amount) AS currency, billing.sum(e.amount) AS total
          FROM billing.ledger_entry e GROUP BY 1, 2, 3
          HAVING billing.to_numeric(billing.sum(e.amount)) <> 0) s
    JOIN billing.ledger_transaction t ON t.account_id = s.account_id AND t.txn_id = s.txn_id
    UNION ALL
    SELECT 'ledger_transaction_has_entries',
           format('transaction %s (account %s, %s) has no entries', t.txn_id, t.account_id, t.kind)
    FROM billing.ledger_transaction t
    WHERE NOT EXISTS (SELECT FROM billing.ledger_entry e WHERE e.account_id = t.account_id AND e.txn_id = t.txn_id)
    UNION ALL
    -- every entry belongs to a transaction (no foreign key: the balance
    -- trigger checks it on every INSERT; a restore runs with triggers off)
    SELECT 'ledger_entry_has_transaction',
           format('entry %s (account %s) names transaction %s, which does not exist', e.entry_id, e.account_id,
                  e.txn_id)
    FROM billing.ledger_entry e
    WHERE NOT EXISTS (SELECT FROM billing.ledger_transaction t WHERE t.account_id = e.account_id AND t.txn_id = e.txn_id)
    UNION ALL
    -- invoices and ledger transactions name an account without a foreign
    -- key (checked when billing writes them; a restore runs with triggers off)
    SELECT 'account_exists', format('invoice %s names account %s, which does not exist', i.invoice_id, i.account_id)
    FROM billing.invoice i
    WHERE NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = i.account_id)
    UNION ALL
    SELECT 'account_exists',
           format('ledger transaction %s names account %s, which does not exist', t.txn_id, t.account_id)
    FROM billing.ledger_transaction t
    WHERE NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = t.account_id)
    UNION ALL
    -- invariant 3: every finalized invoice is posted
    SELECT 'invoice_finalization_posted',
           format('invoice %s (account %s, total %s) has no invoice_finalized transaction', i.invoice_id,
                  i.account_id, i.total)
    FROM billing.invoice i
    WHERE i.status <> 'draft' AND (billing.to_numeric(i.total) <> 0 OR billing.to_numeric(i.tax) <> 0)
      AND NOT EXISTS (SELECT FROM billing.ledger_transaction t
                      WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id
                        AND t.kind = 'invoice_finalized')
    UNION ALL
    -- a draft is not issued: no number (a CHECK), no posting, no payment or
    -- credit applied, no collection attempt (77_drafts.sql)
    -- (the counts as subqueries of the select list and the test as
    -- EXISTS, each correlated by the account: the form Citus pushes down)
    SELECT 'draft_posts_nothing',
           format('draft %s (account %s) has %s ledger transactions, %s applications, %s collection attempts',
                  i.invoice_id, i.account_id,
                  (SELECT count(*) FROM billing.ledger_transaction t
                   WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id),
                  (SELECT count(*) FROM billing.payment_application p
                   WHERE p.account_id = i.account_id AND p.invoice_id = i.invoice_id),
                  (SELECT count(*) FROM billing.collection_attempt c
                   WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id))
    FROM billing.invoice i
    WHERE i.status = 'draft'
      AND (EXISTS (SELECT FROM billing.ledger_transaction t
                   WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id)
           OR EXISTS (SELECT FROM billing.payment_application p
                      WHERE p.account_id = i.account_id AND p.invoice_id = i.invoice_id)
           OR EXISTS (SELECT FROM billing.collection_attempt c
                      WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id))
    UNION ALL
    -- invariant 5, in its parts and whole, per account
    -- (the three checks of an account as parallel arrays unnested in the
    -- select list, not a lateral VALUES: Citus pushes VALUES down only with
    -- immutable functions in it)
    SELECT x.invariant, x.detail
    FROM (
    SELECT unnest(ARRAY['receivable_equals_due_less_credit', 'ledger_receivable_equals_open_due',
                        'ledger_credit_equals_unapplied_credit']) AS invariant,
           unnest(ARRAY[b.receivable + b.customer_credit <> b.due - b.credit, b.receivable <> b.due,
                        -b.customer_credit <> b.credit]) AS broken,
           unnest(ARRAY[
               format('account %s: ledger receivable %s + customer credit %s <> amount due on open invoices %s - '
                      'unapplied credit %s', b.account_id, b.receivable, b.customer_credit, b.due, b.credit),
               format('account %s: ledger receivable %s, amount due on open invoices %s', b.account_id,
                      b.receivable, b.due),
               format('account %s: ledger customer credit %s, unapplied credit %s', b.account_id,
                      -b.customer_credit, b.credit)]) AS detail
    FROM (
        SELECT a.account_id,
               coalesce(l.receivable, 0) AS receivable, coalesce(l.customer_credit, 0) AS customer_credit,
               coalesce(d.due, 0) AS due, coalesce(billing.to_numeric(c.balance), 0) AS credit
        FROM billing.account a
        LEFT JOIN (SELECT e.account_id,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'receivable') AS receivable,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'customer_credit')
                              AS customer_credit
                   FROM billing.ledger_entry e GROUP BY 1) l ON l.account_id = a.account_id
        LEFT JOIN (SELECT i.account_id, sum(billing.to_numeric(i.amount_due)) AS due
                   FROM billing.invoice i WHERE i.status = 'open' GROUP BY 1) d ON d.account_id = a.account_id
        LEFT JOIN billing.account_credit c ON c.account_id = a.account_id
    ) b
    ) x
    WHERE x.broken
    UNION ALL
    -- a payment is never applied (and refunded) beyond its amount
    SELECT 'payment_not_over_applied',
           format('payment %s (account %s): amount %s, applied %s, refunded %s', p.payment_id, p.account_id,
                  p.amount, coalesce(ap.applied, 0), p.amount_refunded)
    FROM billing.payment p
    LEFT JOIN (SELECT account_id, payment_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application WHERE payment_id IS NOT NULL GROUP BY 1, 2) ap
           ON ap.account_id = p.account_id AND ap.payment_id = p.payment_id
    WHERE coalesce(ap.applied, 0) + billing.to_numeric(p.amount_refunded) > billing.to_numeric(p.amount)
       OR coalesce(ap.applied, 0) < 0
    UNION ALL
    -- an invoice's amount_paid is what was applied to it, never beyond its total
    SELECT 'invoice_paid_equals_applications',
           format('invoice %s (account %s): amount_paid %s, applications %s', i.invoice_id, i.account_id,
                  i.amount_paid, coalesce(ap.applied, 0))
    FROM billing.invoice i
    LEFT JOIN (SELECT account_id, invoice_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application GROUP BY 1, 2) ap
           ON ap.account_id = i.account_id AND ap.invoice_id = i.invoice_id
    WHERE billing.to_numeric(i.amount_paid) <> coalesce(ap.applied, 0)
    UNION ALL
    SELECT 'invoice_not_paid_beyond_total',
           format('invoice %s (account %s): total %s, paid %s', i.invoice_id, i.account_id, i.total, i.amount_paid)
    FROM billing.invoice i
    -- (a credit invoice, total below zero, is paid by handing its amount
    -- to the account's credit: its amount_paid is its negative total)
    WHERE billing.to_numeric(i.amount_paid) > greatest(billing.to_numeric(i.total), 0)
       OR billing.to_numeric(i.amount_paid) < least(billing.to_numeric(i.total), 0)
    UNION ALL
    -- invariant 2: one payment per idempotency key (the unique constraint
    -- holds it; this catches a dropped constraint)
    SELECT 'one_payment_per_idempotency_key',
           format('account %s: idempotency key %s names %s payments', account_id, idempotency_key, count(*))
    FROM billing.payment WHERE idempotency_key IS NOT NULL
    GROUP BY account_id, idempotency_key HAVING count(*) > 1
$$;

COMMENT ON FUNCTION billing.check_ledger_invariants() IS
    'the ledger and payment invariants (2 to 5), one named check each; no rows means all hold';

CREATE OR REPLACE FUNCTION billing.account_balance(account_id bigint, as_of date DEFAULT NULL)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v numeric;
BEGIN
    PERFORM billing._authorize_account(account_balance.account_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_balance.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(e.amount)), 0) INTO v
    FROM billing.ledger_entry e
    JOIN billing.ledger_transaction t ON t.account_id = e.account_id AND t.txn_id = e.txn_id
    WHERE e.account_id = a.account_id AND e.ledger_account IN ('receivable', 'customer_credit')
      AND (as_of IS NULL OR t.posted_on <= as_of);
    RETURN billing.amount(v, a.currency);
END $$;

COMMENT ON FUNCTION billing.account_balance(bigint, date) IS
    'what the account owes (positive) or has in credit (negative) by the ledger: receivable + customer credit '
    'posted up to as_of (NULL: everything)';

CREATE OR REPLACE FUNCTION billing.account_statement(account_id bigint, from_date date, to_date date)
RETURNS TABLE (line_no bigint, posted_on date, kind text, description text, invoice_id bigint, payment_id bigint,
               amount billing.amount, balance billing.amount)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_open billing.amount;
    v_close billing.amount;
BEGIN
    PERFORM billing._authorize_account(account_statement.account_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_statement.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date THEN
        RAISE EXCEPTION 'a statement needs from_date <= to_date, not % to %', coalesce(from_date::text, 'NULL'),
            coalesce(to_date::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Both dates are included.';
    END IF;
    v_open := billing.account_balance(a.account_id, from_date - 1);
    -- read before the query, not in it: under Citus the query runs on the
    -- account's shard, where a function cannot query the tables again
    v_close := billing.account_balance(a.account_id, to_date);
    RETURN QUERY
    WITH l AS (
        SELECT s.posted_on, s.txn_id, s.kind, s.description, s.invoice_id, s.payment_id, s.amount
        FROM billing.account_statement_lines s
        WHERE s.account_id = a.account_id AND s.posted_on BETWEEN from_date AND to_date
    ), numbered AS (
        SELECT row_number() OVER (ORDER BY l.posted_on, l.txn_id) AS n, l.*,
               billing.amount(billing.to_numeric(v_open)
                              + sum(billing.to_numeric(l.amount)) OVER (ORDER BY l.posted_on, l.txn_id), a.currency)
                   AS running
        FROM l
    )
    SELECT 0::bigint, from_date, 'opening_balance', 'opening balance', NULL::bigint, NULL::bigint, NULL::billing.amount,
           v_open
    UNION ALL
    SELECT n.n, n.posted_on, n.kind, n.description, n.invoice_id, n.payment_id, n.amount, n.running FROM numbered n
    UNION ALL
    SELECT (SELECT count(*) FROM l) + 1, to_date, 'closing_balance', 'closing balance', NULL, NULL, NULL, v_close
    ORDER BY 1;
END $$;

COMMENT ON FUNCTION billing.account_statement(bigint, date, date) IS
    'an account statement for [from_date, to_date]: the opening balance, each invoice, payment, credit, refund '
    'and write-off with the running balance, and the closing balance (positive: the customer owes)';

-- 76_installments.sql

CREATE OR REPLACE FUNCTION billing.create_installment_plan(account_id bigint, invoice_id bigint, installments integer,
                                                every interval DEFAULT '1 month', first_due date DEFAULT NULL)
RETURNS TABLE (installment_no integer, due_date date, amount billing.amount)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    PERFORM billing._authorize_account(create_installment_plan.account_id);
    a := billing._payment_account(account_id);
    IF installments IS NULL OR installments < 2 OR installments > 120 THEN
        RAISE EXCEPTION 'an installment plan has 2 to 120 installments, not %', coalesce(installments::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: installments => 3.';
    END IF;
    IF every IS NULL OR every <= interval '0' OR every > interval '1 year' THEN
        RAISE EXCEPTION 'installments must be a positive interval of up to a year apart, not %',
            coalesce(every::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: every => ''1 month''.';
    END IF;
    PERFORM billing._check_date(first_due, 'first_due', billing.today(a.timezone));
    i := billing._lock_invoice(a, invoice_id);
    PERFORM billing._check_date((coalesce(first_due, i.due_date) + every * (installments - 1))::date,
                                'the last installment''s due date', billing.today(a.timezone));
    IF i.status <> 'open' OR billing.to_numeric(i.amount_due) <= 0 THEN
        RAISE EXCEPTION 'invoice % is % with % due: only an open invoice with something due takes a plan',
            i.invoice_id, i.status, i.amount_due
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is left to spread.';
    END IF;
    IF EXISTS (SELECT FROM billing.installment x WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id) THEN
        RAISE EXCEPTION 'invoice % already has an installment plan', i.invoice_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'billing.installment_status shows it.';
    END IF;
    IF billing.minor_units(i.amount_due) < installments THEN
        RAISE EXCEPTION 'invoice % has only % due: too little for % installments', i.invoice_id, i.amount_due,
            installments
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Every installment must be at least one minor unit.';
    END IF;
    RETURN QUERY
    INSERT INTO billing.installment AS x (account_id, invoice_id, installment_no, due_date, amount)
    SELECT a.account_id, i.invoice_id, n::integer,
           (coalesce(first_due, i.due_date) + every * (n - 1))::date, part
    FROM unnest(billing.split(i.amount_due, installments)) WITH ORDINALITY s(part, n)
    RETURNING x.installment_no, x.due_date, x.amount;
    PERFORM billing._money_event(a.account_id, 'invoice.installment_plan',
                           jsonb_build_object('invoice_id', i.invoice_id, 'installments', installments));
END $$;

COMMENT ON FUNCTION billing.create_installment_plan(bigint, bigint, integer, interval, date) IS
    'splits what is due on an open invoice into 2 to 120 installments, every interval from first_due (default '
    'the invoice''s due date), that sum to it exactly; returns them';

-- 80_documents.sql

CREATE OR REPLACE FUNCTION billing.format_number(value numeric, locale text) RETURNS text
    AS 'MODULE_PATHNAME', 'billing_format_number' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.format_number(numeric, text) IS
    'the number formatted by ICU for a locale (BCP 47 tag): its digits, grouping and decimal sign, every fraction '
    'digit kept (none rounded)';

CREATE OR REPLACE FUNCTION billing._shipped_document_labels()
RETURNS TABLE (language text, key text, label text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT l.language, k.key, k.labels[l.n]
    FROM unnest(ARRAY['en', 'he', 'de', 'ru', 'ar', 'fr', 'es']) WITH ORDINALITY l(language, n)
    CROSS JOIN (VALUES
        ('invoice', ARRAY['Invoice', 'חשבונית', 'Rechnung', 'Счёт', 'فاتورة', 'Facture', 'Factura']),
        ('credit_invoice', ARRAY['Credit invoice', 'חשבונית זיכוי', 'Gutschrift', 'Кредитовый счёт', 'فاتورة دائنة',
                                 'Facture d''avoir', 'Factura de abono']),
        ('number', ARRAY['Invoice number', 'מספר חשבונית', 'Rechnungsnummer', 'Номер счёта', 'رقم الفاتورة',
                         'Numéro de facture', 'Número de factura']),
        ('issue_date', ARRAY['Issue date', 'תאריך הפקה', 'Rechnungsdatum', 'Дата выставления', 'تاريخ الإصدار',
                             'Date d''émission', 'Fecha de emisión']),
        ('due_date', ARRAY['Due date', 'לתשלום עד', 'Fällig am', 'Оплатить до', 'تاريخ الاستحقاق',
                           'Date d''échéance', 'Fecha de vencimiento']),
        ('period', ARRAY['Period', 'תקופה', 'Leistungszeitraum', 'Период', 'الفترة', 'Période', 'Periodo']),
        ('bill_to', ARRAY['Bill to', 'לכבוד', 'Rechnung an', 'Плательщик', 'فاتورة إلى', 'Facturé à', 'Facturar a']),
        ('from', ARRAY['From', 'מאת', 'Von', 'Поставщик', 'من', 'Émetteur', 'Emisor']),
        ('tax_id', ARRAY['Tax ID', 'מספר עוסק', 'USt-IdNr.', 'ИНН', 'الرقم الضريبي', 'N° de TVA', 'NIF']),
        ('description', ARRAY['Description', 'תיאור', 'Beschreibung', 'Описание', 'الوصف', 'Désignation',
                              'Descripción']),
        ('quantity', ARRAY['Qty', 'כמות', 'Menge', 'Кол-во', 'الكمية', 'Qté', 'Cant.']),
        ('unit_price', ARRAY['Unit price', 'מחיר ליחידה', 'Einzelpreis', 'Цена за ед.', 'سعر الوحدة',
                             'Prix unitaire', 'Precio unitario']),
        ('amount', ARRAY['Amount', 'סכום', 'Betrag', 'Сумма', 'المبلغ', 'Montant', 'Importe']),
        ('subtotal', ARRAY['Subtotal', 'סכום ביניים', 'Zwischensumme', 'Промежуточный итог', 'المجموع الفرعي',
                           'Sous-total', 'Subtotal']),
        ('discount', ARRAY['Discount', 'הנחה', 'Rabatt', 'Скидка', 'الخصم', 'Remise', 'Descuento']),
        ('tax', ARRAY['Tax', 'מע"מ', 'MwSt.', 'Налог', 'الضريبة', 'TVA', 'IVA']),
        ('total', ARRAY['Total', 'סה"כ', 'Gesamt', 'Итого', 'الإجمالي', 'Total', 'Total']),
        ('payments', ARRAY['Payments', 'תשלומים', 'Zahlungen', 'Платежи', 'المدفوعات', 'Paiements', 'Pagos']),
        ('payments_returned', ARRAY['Refunds and chargebacks', 'החזרים וביטולי חיוב', 'Erstattungen und Rückbuchungen',
                                    'Возвраты и отмены платежей', 'المبالغ المستردة والمدفوعات المعكوسة',
                                    'Remboursements et rétrofacturations', 'Reembolsos y contracargos']),
        ('early_payment_discount', ARRAY['Early-payment discount', 'הנחת תשלום מוקדם', 'Skonto',
                                         'Скидка за досрочную оплату', 'خصم السداد المبكر',
                                         'Escompte pour paiement anticipé', 'Descuento por pronto pago']),
        ('credit_notes', ARRAY['Credit notes', 'הודעות זיכוי', 'Gutschriften', 'Кредит-ноты', 'الإشعارات الدائنة',
                               'Avoirs', 'Notas de crédito']),
        ('credit_applied', ARRAY['Paid from your account credit', 'שולם מיתרת הזכות שלך', 'Mit Ihrem Guthaben verrechnet',
                                 'Оплачено с вашего баланса', 'مدفوع من رصيدك الدائن',
                                 'Réglé avec votre crédit', 'Pagado con su saldo a favor']),
        ('credit_added', ARRAY['Added to your account credit', 'נוסף ליתרת הזכות שלך', 'Ihrem Guthaben gutgeschrieben',
                               'Зачислено на ваш баланс', 'أضيف إلى رصيدك الدائن', 'Ajouté à votre crédit',
                               'Añadido a su saldo a favor']),
        ('voided', ARRAY['Voided', 'בוטל', 'Storniert', 'Аннулировано', 'أُلغي', 'Annulé', 'Anulado']),
        ('amount_due', ARRAY['Amount due', 'יתרה לתשלום', 'Offener Betrag', 'К оплате', 'المبلغ المستحق',
                             'Reste à payer', 'Importe pendiente']),
        ('credit_note', ARRAY['Credit note', 'הודעת זיכוי', 'Gutschrift', 'Кредит-нота', 'إشعار دائن', 'Avoir',
                              'Nota de crédito']),
        ('credit_note_to_balance', ARRAY['added to your account credit', 'נוספה ליתרת הזכות שלך',
                                         'Ihrem Guthaben gutgeschrieben', 'зачислена на ваш баланс',
                                         'أضيف إلى رصيدك الدائن', 'ajouté à votre crédit', 'añadida a su saldo a favor']),
        ('credit_note_refunded', ARRAY['refunded to you', 'הוחזרה לך', 'an Sie erstattet', 'возвращена вам',
                                       'رُدّ إليك', 'remboursé', 'reembolsada']),
        ('payment_instructions', ARRAY['How to pay', 'אופן התשלום', 'Zahlungshinweise', 'Как оплатить', 'طريقة الدفع',
                                       'Modalités de paiement', 'Forma de pago']),
        ('draft', ARRAY['DRAFT', 'טיוטה', 'ENTWURF', 'ЧЕРНОВИК', 'مسودة', 'BROUILLON', 'BORRADOR']),
        ('open', ARRAY['OPEN', 'פתוחה', 'OFFEN', 'ОЖИДАЕТ ОПЛАТЫ', 'مستحقة الدفع', 'À PAYER', 'PENDIENTE']),
        ('paid', ARRAY['PAID', 'שולמה', 'BEZAHLT', 'ОПЛАЧЕН', 'مدفوعة', 'PAYÉE', 'PAGADA']),
        ('void', ARRAY['VOID', 'מבוטלת', 'STORNIERT', 'АННУЛИРОВАН', 'ملغاة', 'ANNULÉE', 'ANULADA']),
        ('uncollectible', ARRAY['UNCOLLECTIBLE', 'אבודה', 'UNEINBRINGLICH', 'СПИСАН', 'غير قابلة للتحصيل',
                                'IRRÉCOUVRABLE', 'INCOBRABLE']),
        ('credited', ARRAY['CREDITED', 'זוכתה', 'GUTGESCHRIEBEN', 'ЗАЧИСЛЕН НА БАЛАНС', 'أضيفت إلى رصيدك',
                           'CRÉDITÉE', 'ABONADA'])
    ) k(key, labels)
$$;

COMMENT ON FUNCTION billing._shipped_document_labels() IS
    'internal: the document words the extension ships, every key in en, he, de, ru, ar, fr and es';

CREATE OR REPLACE FUNCTION billing._format_unit_price(unit_amount numeric, currency text, locale text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN unit_amount IS NULL THEN ''
        WHEN scale(trim_scale(unit_amount)) <= billing.scale(billing.from_minor_units(0, currency))
        THEN billing.format_amount(billing.amount(unit_amount, currency), locale)
        ELSE billing.format_number(trim_scale(unit_amount), locale) || ' ' || currency
    END
$$;

COMMENT ON FUNCTION billing._format_unit_price(numeric, text, text) IS
    'internal: a unit price for documents, never rounded';

CREATE OR REPLACE FUNCTION billing._invoice_facts(p_invoice_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    facts jsonb;
BEGIN
    SELECT jsonb_build_object(
        'invoice_id', i.invoice_id,
        'account_id', i.account_id,
        'number', i.number,
        'status', i.status,
        'credit_invoice', billing.to_numeric(i.total) < 0,
        'currency', i.currency,
        'issue_date', i.issue_date,
        'due_date', i.due_date,
        'period_start', i.period_start,
        'period_end', i.period_end,
        'locale', a.locale,
        'direction', billing.locale_direction(a.locale),
        'seller', jsonb_build_object('legal_name', e.legal_name, 'tax_id', e.tax_id,
                                     'address', e.address,
                                     'payment_instructions', e.metadata ->> 'payment_instructions'),
        'buyer', jsonb_build_object('name', a.name, 'email', a.email, 'address', a.address,
                                    'external_ref', a.external_ref),
        'subtotal', i.subtotal::text, 'discount', i.discount::text, 'tax', i.tax::text,
        'total', i.total::text, 'amount_paid', i.amount_paid::text, 'amount_due', i.amount_due::text,
        'settlement', coalesce((
            SELECT jsonb_agg(jsonb_build_object('kind', x.kind, 'amount', x.amount::text) ORDER BY x.n)
            FROM (SELECT s.n, s.kind, billing.amount(s.change, i.currency) AS amount
                  FROM (VALUES
                      (1, 'payments', -ap.payments),
                      (2, 'payments_returned', -ap.returned),
                      (3, 'early_payment_discount', -ap.discount),
                      (4, 'credit_notes', -ap.credit_notes),
                      (5, 'credit_applied', -ap.credit_applied),
                      (6, 'credit_added', -ap.credit_added),
                      (7, 'voided', CASE WHEN i.status = 'void' THEN -billing.to_numeric(i.total) ELSE 0 END)
                  ) s(n, kind, change)
                  WHERE s.change <> 0) x), '[]'),
        'credit_notes', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'credit_note_id', c.credit_note_id, 'amount', c.amount::text, 'tax', c.tax::text,
                       'method', c.method, 'reason', c.reason,
                       'issued_on', (c.created_at AT TIME ZONE a.timezone)::date)
                   ORDER BY c.credit_note_id)
            FROM billing.credit_note c
            WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id), '[]'),
        'lines', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'kind', l.kind, 'description', l.description,
                       'quantity', l.quantity, 'unit_amount', l.unit_amount,
                       'amount', l.amount::text,
                       'period_start', l.period_start, 'period_end', l.period_end)
                   ORDER BY l.invoice_line_id)
            FROM billing.invoice_line l
            WHERE l.account_id = i.account_id AND l.invoice_id = i.invoice_id), '[]'))
    INTO facts
    FROM billing.invoice i
    JOIN billing.account a ON a.account_id = i.account_id
    JOIN billing.billing_entity e ON e.entity_id = i.entity_id
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'payment' AND billing.to_numeric(y.amount) > 0), 0) AS payments,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'payment' AND billing.to_numeric(y.amount) < 0), 0) AS returned,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'discount'), 0) AS discount,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit_note'), 0) AS credit_notes,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit' AND billing.to_numeric(y.amount) > 0), 0) AS credit_applied,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit' AND billing.to_numeric(y.amount) < 0), 0) AS credit_added
        FROM billing.payment_application y
        WHERE y.account_id = i.account_id AND y.invoice_id = i.invoice_id) ap
    WHERE i.invoice_id = p_invoice_id;
    IF facts IS NULL THEN
        RAISE EXCEPTION 'invoice % does not exist', p_invoice_id
            USING ERRCODE = 'no_data_found', HINT = 'Pass the invoice_id of a row of billing.invoice.';
    END IF;
    RETURN facts;
END $$;

COMMENT ON FUNCTION billing._invoice_facts(bigint) IS
    'internal: what an invoice document shows, with what settled it by kind (amount_due = total + settlement)';

CREATE OR REPLACE FUNCTION billing._text_row(label text, figure text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN length(label) > 48 THEN label || E'\n' || repeat(' ', 48) ELSE rpad(label, 48) END
           || ' ' || lpad(figure, greatest(20, length(figure)))
$$;

COMMENT ON FUNCTION billing._text_row(text, text) IS 'internal: a label and a figure as one line of a text document';

CREATE OR REPLACE FUNCTION billing._document_period(period_start date, period_end date, locale text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN period_start IS NOT NULL AND period_end IS NOT NULL
                THEN billing.format_date(period_start, locale, 'medium') || ' – '
                     || billing.format_date(greatest(period_end - 1, period_start), locale, 'medium') END
$$;

COMMENT ON FUNCTION billing._document_period(date, date, text) IS
    'internal: a billing period [start, end) for documents, its last day included';

-- The plain-text document: one line per row, amounts aligned at the
-- right (_text_row), each line's period and quantity under it.
CREATE OR REPLACE FUNCTION billing._document_text(f jsonb, lb jsonb, loc text, title text, status text, period text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    cur text := f ->> 'currency';
    body text;
    line jsonb;
    row_ jsonb;
    v_detail text;
    notes text := '';
BEGIN
    body := concat_ws(E'\n',
        -- a draft's heading says so in place of its number, once
        upper(title) || ' ' || coalesce(f ->> 'number' || ' · ' || status, '(' || (lb ->> 'draft') || ')'),
        (lb ->> 'from') || ': ' || (f #>> '{seller,legal_name}')
            || coalesce(' (' || (lb ->> 'tax_id') || ' ' || (f #>> '{seller,tax_id}') || ')', ''),
        '  ' || replace(f #>> '{seller,address}', E'\n', E'\n  '),
        (lb ->> 'bill_to') || ': ' || (f #>> '{buyer,name}'),
        '  ' || replace(f #>> '{buyer,address}', E'\n', E'\n  '),
        '  ' || (f #>> '{buyer,email}'),
        (lb ->> 'issue_date') || ': ' || billing.format_date((f ->> 'issue_date')::date, loc),
        (lb ->> 'due_date') || ': ' || billing.format_date((f ->> 'due_date')::date, loc),
        (lb ->> 'period') || ': ' || period,
        '');
    FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
        body := body || E'\n' || billing._text_row(line ->> 'description',
                                                   billing.format_amount((line ->> 'amount')::billing.amount, loc));
        -- under it: its period, and how many at what price unless that
        -- is one at the amount (a tax line's unit_amount is its rate,
        -- already in its description)
        v_detail := concat_ws(' · ',
            billing._document_period((line ->> 'period_start')::date, (line ->> 'period_end')::date, loc),
            CASE WHEN line ->> 'kind' <> 'tax' AND line ->> 'quantity' IS NOT NULL
                      AND line ->> 'unit_amount' IS NOT NULL
                      AND NOT ((line ->> 'quantity')::numeric = 1 AND (line ->> 'unit_amount')::numeric
                               = billing.to_numeric((line ->> 'amount')::billing.amount))
                 THEN billing.format_number(trim_scale((line ->> 'quantity')::numeric), loc) || ' × '
                      || billing._format_unit_price((line ->> 'unit_amount')::numeric, cur, loc) END);
        IF v_detail <> '' THEN
            body := body || E'\n  ' || v_detail;
        END IF;
    END LOOP;
    body := body || E'\n\n' || concat_ws(E'\n',
        billing._text_row(lb ->> 'subtotal', billing.format_amount((f ->> 'subtotal')::billing.amount, loc)),
        CASE WHEN (f ->> 'discount')::billing.amount <> billing.from_minor_units(0, cur)
             THEN billing._text_row(lb ->> 'discount', billing.format_amount((f ->> 'discount')::billing.amount, loc)) END,
        billing._text_row(lb ->> 'tax', billing.format_amount((f ->> 'tax')::billing.amount, loc)),
        billing._text_row(lb ->> 'total', billing.format_amount((f ->> 'total')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'settlement') LOOP
        body := body || E'\n' || billing._text_row(lb ->> (row_ ->> 'kind'),
                                                   billing.format_amount((row_ ->> 'amount')::billing.amount, loc));
    END LOOP;
    body := body || E'\n' || billing._text_row(lb ->> 'amount_due',
                                               billing.format_amount((f ->> 'amount_due')::billing.amount, loc));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'credit_notes') WHERE value ->> 'method' <> 'reduce_due' LOOP
        notes := notes || E'\n' || (lb ->> 'credit_note') || ' ' || (row_ ->> 'credit_note_id') || ', '
            || billing.format_date((row_ ->> 'issued_on')::date, loc, 'medium') || ': '
            || billing.format_amount((row_ ->> 'amount')::billing.amount, loc) || ' '
            || (lb ->> CASE row_ ->> 'method' WHEN 'refund' THEN 'credit_note_refunded' ELSE 'credit_note_to_balance' END);
    END LOOP;
    IF notes <> '' THEN
        body := body || E'\n' || notes;
    END IF;
    IF f #>> '{seller,payment_instructions}' IS NOT NULL THEN
        body := body || E'\n\n' || (lb ->> 'payment_instructions') || E':\n'
            || (f #>> '{seller,payment_instructions}');
    END IF;
    RETURN body || E'\n';
END $$;
COMMENT ON FUNCTION billing._document_text(jsonb, jsonb, text, text, text, text) IS
    'invoice_document''s text format, from the invoice''s facts (_invoice_facts), the words of its locale and its '
    'title, status and period as invoice_document words them';

-- The HTML document: a print-ready page, right to left where the locale
-- is, every value from a table escaped.
CREATE OR REPLACE FUNCTION billing._document_html(f jsonb, lb jsonb, loc text, title text, status text, period text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    cur text := f ->> 'currency';
    h text;
    body text;
    line jsonb;
    row_ jsonb;
    money_rows text := '';
    notes text := '';
BEGIN
    -- html: every value from a table goes through html_escape; invoice.discount
    -- is already negative (the sum of the discount lines)
    body := '';
    FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
        body := body || format(
            '<tr><td>%s%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>' || E'\n',
            html_escape(line ->> 'description'),
            coalesce('<div class="period">' || html_escape(billing._document_period(
                        (line ->> 'period_start')::date, (line ->> 'period_end')::date, loc)) || '</div>', ''),
            -- a tax line's unit_amount is its rate, already in its description
            CASE WHEN line ->> 'kind' = 'tax' OR line ->> 'quantity' IS NULL THEN ''
                 ELSE html_escape(billing.format_number(trim_scale((line ->> 'quantity')::numeric), loc)) END,
            CASE WHEN line ->> 'kind' = 'tax' THEN ''
                 ELSE html_escape(billing._format_unit_price((line ->> 'unit_amount')::numeric, cur, loc)) END,
            html_escape(billing.format_amount((line ->> 'amount')::billing.amount, loc)));
    END LOOP;
    money_rows := format('<tr><th>%s</th><td class="num">%s</td></tr>',
                         html_escape(lb ->> 'subtotal'),
                         html_escape(billing.format_amount((f ->> 'subtotal')::billing.amount, loc)));
    IF ((f ->> 'discount')::billing.amount) <> billing.from_minor_units(0, cur) THEN
        money_rows := money_rows || format('<tr><th>%s</th><td class="num">%s</td></tr>',
                         html_escape(lb ->> 'discount'),
                         html_escape(billing.format_amount((f ->> 'discount')::billing.amount, loc)));
    END IF;
    money_rows := money_rows || format(
        '<tr><th>%s</th><td class="num">%s</td></tr><tr class="total"><th>%s</th><td class="num">%s</td></tr>',
        html_escape(lb ->> 'tax'), html_escape(billing.format_amount((f ->> 'tax')::billing.amount, loc)),
        html_escape(lb ->> 'total'), html_escape(billing.format_amount((f ->> 'total')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'settlement') LOOP
        money_rows := money_rows || format('<tr class="%s"><th>%s</th><td class="num">%s</td></tr>',
            row_ ->> 'kind', html_escape(lb ->> (row_ ->> 'kind')),
            html_escape(billing.format_amount((row_ ->> 'amount')::billing.amount, loc)));
    END LOOP;
    money_rows := money_rows || format('<tr class="due"><th>%s</th><td class="num">%s</td></tr>',
        html_escape(lb ->> 'amount_due'), html_escape(billing.format_amount((f ->> 'amount_due')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'credit_notes') WHERE value ->> 'method' <> 'reduce_due' LOOP
        notes := notes || format('<li>%s %s, %s: %s %s</li>', html_escape(lb ->> 'credit_note'),
            row_ ->> 'credit_note_id', html_escape(billing.format_date((row_ ->> 'issued_on')::date, loc, 'medium')),
            html_escape(billing.format_amount((row_ ->> 'amount')::billing.amount, loc)),
            html_escape(lb ->> CASE row_ ->> 'method' WHEN 'refund' THEN 'credit_note_refunded' ELSE 'credit_note_to_balance' END));
    END LOOP;

    h := format($html$<!DOCTYPE html>
<html lang="%s" dir="%s">
<head>
<meta charset="utf-8">
<title>%s %s</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2.5em; color: #222; }
h1 { font-size: 1.8em; margin: 0 0 0.2em 0; }
.status { display: inline-block; border: 2px solid #888; color: #888; padding: 0.1em 0.6em; font-weight: bold; }
.parties { display: flex; justify-content: space-between; margin: 1.5em 0; }
.parties div { width: 45%%; white-space: pre-line; }
.meta th { text-align: start; padding-inline-end: 1em; font-weight: normal; color: #555; }
table.lines { width: 100%%; border-collapse: collapse; margin-top: 1.5em; }
table.lines th { border-bottom: 2px solid #222; text-align: start; padding: 0.4em; }
table.lines td { border-bottom: 1px solid #ddd; padding: 0.4em; vertical-align: top; }
.num { text-align: end; white-space: nowrap; }
.period { color: #666; font-size: 0.85em; }
table.totals { margin-inline-start: auto; margin-top: 1em; border-collapse: collapse; }
table.totals th { text-align: start; padding-block: 0.3em; padding-inline-end: 1.5em; font-weight: normal; }
table.totals td { padding: 0.3em 0; }
tr.total th, tr.total td { font-weight: bold; border-top: 2px solid #222; }
tr.due th, tr.due td { font-weight: bold; font-size: 1.15em; border-top: 1px solid #222; }
.notes { margin-top: 1.5em; color: #555; }
.instructions { margin-top: 2em; white-space: pre-line; }
</style>
</head>
<body>
<h1>%s</h1>
<span class="status">%s</span>
<table class="meta">
<tr><th>%s</th><td>%s</td></tr>
<tr><th>%s</th><td>%s</td></tr>
<tr><th>%s</th><td>%s</td></tr>
%s</table>
<div class="parties">
<div><strong>%s</strong>
%s%s%s</div>
<div><strong>%s</strong>
%s%s%s</div>
</div>
<table class="lines">
<thead><tr><th>%s</th><th class="num">%s</th><th class="num">%s</th><th class="num">%s</th></tr></thead>
<tbody>
%s</tbody>
</table>
<table class="totals">%s</table>
%s%s</body>
</html>
$html$,
        html_escape(replace(loc, '_', '-')), f ->> 'direction',
        html_escape(title), html_escape(coalesce(f ->> 'number', '')),
        html_escape(title),
        html_escape(status),
        html_escape(lb ->> 'number'), html_escape(coalesce(f ->> 'number', '—')),
        html_escape(lb ->> 'issue_date'), html_escape(billing.format_date((f ->> 'issue_date')::date, loc)),
        html_escape(lb ->> 'due_date'), html_escape(billing.format_date((f ->> 'due_date')::date, loc)),
        coalesce('<tr><th>' || html_escape(lb ->> 'period') || '</th><td>' || html_escape(period) || '</td></tr>' || E'\n', ''),
        html_escape(lb ->> 'from'),
        html_escape(f #>> '{seller,legal_name}'),
        coalesce(E'\n' || html_escape(f #>> '{seller,address}'), ''),
        coalesce(E'\n' || html_escape((lb ->> 'tax_id') || ' ' || (f #>> '{seller,tax_id}')), ''),
        html_escape(lb ->> 'bill_to'),
        html_escape(f #>> '{buyer,name}'),
        coalesce(E'\n' || html_escape(f #>> '{buyer,address}'), ''),
        coalesce(E'\n' || html_escape(f #>> '{buyer,email}'), ''),
        html_escape(lb ->> 'description'), html_escape(lb ->> 'quantity'),
        html_escape(lb ->> 'unit_price'), html_escape(lb ->> 'amount'),
        body,
        money_rows,
        CASE WHEN notes <> '' THEN '<ul class="notes">' || notes || '</ul>' || E'\n' ELSE '' END,
        coalesce('<div class="instructions"><strong>' || html_escape(lb ->> 'payment_instructions')
                 || '</strong>' || E'\n' || html_escape(f #>> '{seller,payment_instructions}') || '</div>' || E'\n', ''));
    RETURN h;
END $$;
COMMENT ON FUNCTION billing._document_html(jsonb, jsonb, text, text, text, text) IS
    'invoice_document''s html format, from the invoice''s facts (_invoice_facts), the words of its locale and its '
    'title, status and period as invoice_document words them';

CREATE OR REPLACE FUNCTION billing.invoice_document(invoice_id bigint, format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    lb jsonb;
    loc text;
    v_title text;
    v_status text;
    v_period text;
BEGIN
    PERFORM billing._authorize_invoice(invoice_document.invoice_id);
    IF format IS NULL OR format NOT IN ('html', 'text', 'json') THEN
        RAISE EXCEPTION 'unknown invoice document format "%"', format
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, text or json.';
    END IF;
    IF invoice_id IS NULL THEN
        RAISE EXCEPTION 'invoice_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the account's locale, checked before anything is formatted, so that
    -- a tag ICU does not know is named with its account
    SELECT a.locale INTO loc FROM billing.invoice i JOIN billing.account a ON a.account_id = i.account_id
    WHERE i.invoice_id = invoice_document.invoice_id;
    IF FOUND THEN
        BEGIN
            PERFORM billing.locale_direction(loc);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'invoice %: the account''s locale "%" is not a language ICU knows', invoice_id, loc
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Set a BCP 47 tag such as en-US, de-DE, he-IL or ar-EG with billing.update_account(locale => ...).';
        END;
    END IF;
    f := billing._invoice_facts(invoice_id);
    IF format = 'json' THEN
        RETURN jsonb_pretty(f);
    END IF;
    lb := billing._document_labels(loc);
    -- a credit invoice (its total below zero) reads as one: its own title,
    -- and credited instead of paid (the engine pays it by handing its
    -- amount to the account's credit)
    v_title := lb ->> CASE WHEN (f ->> 'credit_invoice')::boolean THEN 'credit_invoice' ELSE 'invoice' END;
    v_status := lb ->> CASE WHEN (f ->> 'credit_invoice')::boolean AND f ->> 'status' = 'paid' THEN 'credited'
                            ELSE f ->> 'status' END;
    v_period := billing._document_period((f ->> 'period_start')::date, (f ->> 'period_end')::date, loc);

    IF format = 'text' THEN
        RETURN billing._document_text(f, lb, loc, v_title, v_status, v_period);
    END IF;
    RETURN billing._document_html(f, lb, loc, v_title, v_status, v_period);
END $$;
COMMENT ON FUNCTION billing.invoice_document(bigint, text) IS
    'the invoice as a print-ready html page, plain text, or json, in the account''s locale: its lines with their '
    'periods, totals, and what settled it by kind (payments, refunds, early-payment discount, credit notes, account '
    'credit), so that the amount due is the total less them';

-- 90_invariants.sql (renamed by 91_invariants_ledger.sql in 0.1.0)

CREATE OR REPLACE FUNCTION billing.check_invoicing_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- invoice totals are the sums of their lines
    SELECT 'invoice_totals_equal_lines',
           format('invoice %s (account %s): subtotal %s discount %s tax %s total %s, lines %s %s %s %s',
                  i.invoice_id, i.account_id, i.subtotal, i.discount, i.tax, i.total,
                  l.subtotal, l.discount, l.tax, l.total)
    FROM billing.invoice i
    LEFT JOIN LATERAL (
        SELECT coalesce(billing.sum(amount) FILTER (WHERE kind NOT IN ('discount', 'tax')), billing.from_minor_units(0, i.currency)) AS subtotal,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'discount'), billing.from_minor_units(0, i.currency)) AS discount,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'tax'), billing.from_minor_units(0, i.currency)) AS tax,
               coalesce(billing.sum(amount) FILTER (WHERE NOT tax_inclusive), billing.from_minor_units(0, i.currency)) AS total
        FROM billing.invoice_line x WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id
    ) l ON true
    WHERE NOT (i.subtotal = l.subtotal AND i.discount = l.discount AND i.tax = l.tax AND i.total = l.total)
    UNION ALL
    -- every amount of an invoice is in its currency
    SELECT 'invoice_one_currency', format('invoice %s line %s: %s on a %s invoice', l.invoice_id, l.invoice_line_id,
                                          l.amount, i.currency)
    FROM billing.invoice_line l
    JOIN billing.invoice i ON i.account_id = l.account_id AND i.invoice_id = l.invoice_id
    WHERE billing.currency(l.amount) <> i.currency
    UNION ALL
    -- invariant 1: one recurring line per subscription item and period
    SELECT 'one_line_per_item_and_period',
           format('item %s (account %s) billed %s times for the period from %s', subscription_item_id, account_id,
                  count(*), period_start)
    FROM billing.invoice_line
    WHERE kind = 'subscription'
    GROUP BY account_id, subscription_item_id, period_start
    HAVING count(*) > 1
    UNION ALL
    -- recurring periods of one item never overlap
    SELECT 'no_overlapping_periods',
           format('item %s (account %s): [%s, %s) overlaps [%s, %s)', a.subscription_item_id, a.account_id,
                  a.period_start, a.period_end, b.period_start, b.period_end)
    FROM billing.invoice_line a
    JOIN billing.invoice_line b
      ON b.account_id = a.account_id AND b.subscription_item_id = a.subscription_item_id
     AND b.kind = 'subscription' AND b.invoice_line_id > a.invoice_line_id
     AND daterange(a.period_start, a.period_end) && daterange(b.period_start, b.period_end)
    WHERE a.kind = 'subscription'
    UNION ALL
    -- invoice numbers: gapless from 1 in each series of each entity
    SELECT 'invoice_numbers_gapless',
           format('entity %s series %s: %s numbers, the last is %s, counter %s', s.entity_id, s.series,
                  n.numbers, n.last, s.last_number)
    -- (the numbers of every series counted in one pass over the invoices
    -- and joined to the series, not a lateral subquery per series: Citus
    -- cannot join a reference table laterally to a distributed one)
    FROM billing.invoice_number_series s
    LEFT JOIN (
        SELECT x.entity_id, x.series, count(*) AS numbers, count(DISTINCT i.number) AS distinct_numbers,
               max(substr(i.number, length(x.series) + 2)::bigint) AS last
        FROM billing.invoice i
        JOIN billing.invoice_number_series x
          ON x.entity_id = i.entity_id AND i.number LIKE x.series || '-%'
         AND substr(i.number, length(x.series) + 2) ~ '^[0-9]+$'
        GROUP BY x.entity_id, x.series
    ) n ON n.entity_id = s.entity_id AND n.series = s.series
    WHERE NOT (coalesce(n.numbers, 0) = s.last_number AND coalesce(n.distinct_numbers, 0) = coalesce(n.numbers, 0)
               AND coalesce(n.last, 0) = s.last_number)
    UNION ALL
    -- an amount due is the total less what was paid
    SELECT 'amount_due_is_total_less_paid',
           format('invoice %s: total %s, paid %s, due %s', invoice_id, total, amount_paid, amount_due)
    FROM billing.invoice
    WHERE status IN ('open', 'paid') AND amount_due <> total - amount_paid
          AND NOT (status = 'paid' AND total = amount_paid)
    UNION ALL
    -- a billed usage event belongs to an invoice of its account
    SELECT 'usage_billed_on_an_invoice',
           format('usage event %s (account %s) names invoice %s, which does not exist', e.usage_event_id,
                  e.account_id, e.invoice_id)
    FROM billing.usage_event e
    WHERE e.invoice_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM billing.invoice i WHERE i.account_id = e.account_id AND i.invoice_id = e.invoice_id)
$$;

-- 91_invariants_ledger.sql

CREATE OR REPLACE FUNCTION billing.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT * FROM billing.check_invoicing_invariants()
    UNION ALL
    SELECT * FROM billing.check_ledger_invariants()
    UNION ALL
    SELECT * FROM billing.check_dunning_invariants()
$$;

COMMENT ON FUNCTION billing.check_invariants() IS
    'every invariant of docs/design.md that can be checked on the tables (invoicing and ledger), one named check '
    'each; no rows means all hold';

-- unchanged but for their comment
COMMENT ON FUNCTION billing.amount_recv(internal) IS
    'binary input: int64 minor units, three code letters, one scale byte; accepts exactly what text input accepts '
    '(a known upper-case code, the currency''s own digits, at most 10^12 major units)';
COMMENT ON FUNCTION billing.prorate(billing.amount, daterange, daterange, text) IS
    'the share of price for part of period: R(price*(b-s)/(e-s)) - R(price*(a-s)/(e-s)) '
    'with R = the session setting billing.rounding, so the parts of any split sum exactly to price; '
    'convention ''actual'' (days) or ''30e/360''';

-- A usage event names its subscription item without a foreign key: a key
-- runs one query and takes one row lock on the item per event, which is
-- the largest part of writing a batch.  Instead the items of every
-- statement's new events are checked at once, from its transition table
-- (one anti-join, whatever wrote them: the two functions, COPY, a restore),
-- and an item, once it exists, goes on existing with the same key:
-- subscription items are never deleted (an item ends by its ended_on) and
-- their key never changes, so the check at insert is the whole guarantee.
CREATE OR REPLACE FUNCTION billing._usage_event_items_exist() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    SELECT n.account_id, n.subscription_item_id INTO r
    FROM new_events n
    WHERE NOT EXISTS (SELECT FROM billing.subscription_item i
                      WHERE i.account_id = n.account_id AND i.subscription_item_id = n.subscription_item_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'usage event names subscription item % of account %, which does not exist',
            r.subscription_item_id, r.account_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION billing._usage_event_items_exist() IS
    'internal trigger: raises 23503 unless the subscription item of every usage event a statement inserted exists';

CREATE OR REPLACE FUNCTION billing._key_never_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% on billing.% is not allowed: subscription items are never deleted, and items and usage '
                    'events keep their account and item', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'End a subscription item with billing.change_subscription or cancel_subscription; '
                     'usage events keep naming it.';
END $$;
COMMENT ON FUNCTION billing._key_never_changes() IS
    'internal trigger: refuses DELETE and TRUNCATE of subscription items and changes of the item key of items '
    'and usage events (55000)';


-- 3. the topic files new since 0.1.0

-- src/sql/install/41_usage_batch.sql
-- Usage in batches: a meter that reports thousands of events at a time
-- sends them in one call, as parallel arrays (element i of each array is
-- event i).  The rules are those of billing.record_usage (40_subscriptions.sql),
-- applied to the whole set by a few statements instead of once per event:
-- every account the acting role may use, every item an item of its account
-- with a metered price, every quantity zero or more, every event a key, its
-- day within the dates billing accepts and within the item's time.  One bad
-- event fails the call and nothing of it is written.  A key already stored
-- (or repeated within the batch) with the same content is a duplicate,
-- counted and not written again; with other content it is an error, as in
-- the single call.
CREATE FUNCTION billing.record_usage_batch(account_ids bigint[], subscription_item_ids bigint[], quantities numeric[],
                                           idempotency_keys text[], occurred_ats timestamptz[] DEFAULT NULL,
                                           usage_values text[] DEFAULT NULL,
                                           OUT inserted bigint, OUT duplicates bigint)
RETURNS record LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_n integer := coalesce(cardinality(account_ids), 0);
    v_now timestamptz := billing.now();
    v_null integer;
    v_ins_accounts bigint[];
    v_ins_keys text[];
    b record;
    r record;
BEGIN
    IF account_ids IS NULL OR subscription_item_ids IS NULL OR quantities IS NULL OR idempotency_keys IS NULL THEN
        RAISE EXCEPTION 'record_usage_batch needs account_ids, subscription_item_ids, quantities and idempotency_keys'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass empty arrays for a batch without events.';
    END IF;
    IF coalesce(array_ndims(account_ids), 1) > 1 OR coalesce(array_ndims(subscription_item_ids), 1) > 1
       OR coalesce(array_ndims(quantities), 1) > 1 OR coalesce(array_ndims(idempotency_keys), 1) > 1
       OR coalesce(array_ndims(occurred_ats), 1) > 1 OR coalesce(array_ndims(usage_values), 1) > 1
       OR cardinality(subscription_item_ids) <> v_n OR cardinality(quantities) <> v_n
       OR cardinality(idempotency_keys) <> v_n OR cardinality(occurred_ats) <> v_n
       OR cardinality(usage_values) <> v_n THEN
        RAISE EXCEPTION 'record_usage_batch needs one-dimensional arrays of one length: % account_ids, % subscription_item_ids, '
                        '% quantities, % idempotency_keys, % occurred_ats, % usage_values',
            v_n, cardinality(subscription_item_ids), cardinality(quantities), cardinality(idempotency_keys),
            coalesce(cardinality(occurred_ats)::text, 'no'), coalesce(cardinality(usage_values)::text, 'no')
            USING ERRCODE = 'array_subscript_error',
                  HINT = 'Element i of every array is event i; leave occurred_ats or usage_values out (NULL) for none.';
    END IF;
    PERFORM billing._authorize_accounts(account_ids);
    IF v_n = 0 THEN
        inserted := 0;
        duplicates := 0;
        RETURN;
    END IF;
    v_null := least(array_position(account_ids, NULL), array_position(subscription_item_ids, NULL));
    IF v_null IS NOT NULL THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % of account % does not exist', v_null,
            coalesce(subscription_item_ids[v_null]::text, 'NULL'), coalesce(account_ids[v_null]::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    END IF;

    -- Every event against its item, price and account (looked up once per
    -- item of the batch) and against the first event of the batch with its
    -- key, in one pass: the first bad event (by position), the day of each
    -- event, which events are the first of their key, and the first and
    -- last day of the events given a time, per time zone (the window of
    -- dates billing accepts is the account's today plus or minus ten years).
    WITH u AS MATERIALIZED (
        SELECT u.*,
               first_value(u.ord) OVER w AS first_ord,
               first_value(u.item_id) OVER w AS first_item, first_value(u.quantity) OVER w AS first_quantity,
               first_value(u.value) OVER w AS first_value, first_value(coalesce(u.at, v_now)) OVER w AS first_at
        FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats, usage_values)
             WITH ORDINALITY u(account_id, item_id, quantity, key, at, value, ord)
        WINDOW w AS (PARTITION BY u.account_id, u.key ORDER BY u.ord)
    ), items AS MATERIALIZED (
        SELECT k.account_id, k.item_id, i.subscription_item_id IS NOT NULL AS item_found, p.usage_type, a.timezone,
               i.started_on, i.ended_on
        FROM (SELECT DISTINCT u.account_id, u.item_id FROM u) k
        LEFT JOIN billing.subscription_item i ON i.account_id = k.account_id AND i.subscription_item_id = k.item_id
        LEFT JOIN billing.price p ON p.price_id = i.price_id
        LEFT JOIN billing.account a ON a.account_id = i.account_id
    ), checked AS MATERIALIZED (
        SELECT u.*, it.item_found, it.usage_type, it.timezone, it.started_on, it.ended_on, x.d,
               CASE WHEN NOT it.item_found THEN 'item'
                    WHEN it.usage_type <> 'metered' THEN 'licensed'
                    WHEN u.quantity IS NULL OR u.quantity < 0 THEN 'quantity'
                    WHEN u.key IS NULL OR u.key = '' THEN 'key'
                    WHEN x.d < it.started_on OR x.d >= it.ended_on THEN 'period'
                    -- the single call's rule for a key used before: the same
                    -- item, quantity and value, and the same time when one is given
                    WHEN u.ord <> u.first_ord
                         AND (u.first_item <> u.item_id OR u.first_quantity <> u.quantity
                              OR u.first_value IS DISTINCT FROM u.value
                              OR (u.at IS NOT NULL AND u.first_at <> u.at)) THEN 'repeated'
               END AS problem
        FROM u
        JOIN items it ON it.account_id = u.account_id AND it.item_id = u.item_id
        CROSS JOIN LATERAL (SELECT CASE WHEN it.timezone IS NOT NULL
                                        THEN billing.today(it.timezone, coalesce(u.at, v_now)) END AS d) x
    )
    SELECT bad.ord, bad.problem, bad.account_id, bad.item_id, bad.quantity, bad.key, bad.d, bad.started_on,
           bad.ended_on, bad.first_ord, agg.dates, agg.firsts, agg.n_firsts, z.zones, z.first_days, z.last_days
    INTO b
    FROM (SELECT array_agg(c.d ORDER BY c.ord) AS dates, array_agg(c.ord = c.first_ord ORDER BY c.ord) AS firsts,
                 count(*) FILTER (WHERE c.ord = c.first_ord) AS n_firsts
          FROM checked c) agg
    CROSS JOIN (SELECT array_agg(g.timezone) AS zones, array_agg(g.first_day) AS first_days,
                       array_agg(g.last_day) AS last_days
                FROM (SELECT c.timezone, min(c.d) AS first_day, max(c.d) AS last_day
                      FROM checked c WHERE c.at IS NOT NULL AND c.timezone IS NOT NULL GROUP BY c.timezone) g) z
    LEFT JOIN LATERAL (SELECT c.* FROM checked c WHERE c.problem IS NOT NULL ORDER BY c.ord LIMIT 1) bad ON true;

    FOR i IN 1 .. coalesce(cardinality(b.zones), 0) LOOP
        PERFORM billing._check_date(b.first_days[i], 'the day of occurred_at', billing.today(b.zones[i])),
                billing._check_date(b.last_days[i], 'the day of occurred_at', billing.today(b.zones[i]));
    END LOOP;
    IF b.problem = 'item' THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % of account % does not exist', b.ord,
            b.item_id, b.account_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    ELSIF b.problem = 'licensed' THEN
        RAISE EXCEPTION 'usage event % of the batch: subscription item % has a licensed price, not a metered one',
            b.ord, b.item_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Change its quantity with billing.change_subscription.';
    ELSIF b.problem = 'quantity' THEN
        RAISE EXCEPTION 'usage event % of the batch: usage quantity must be zero or more, not %', b.ord,
            coalesce(b.quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record corrections as credits.';
    ELSIF b.problem = 'key' THEN
        RAISE EXCEPTION 'usage event % of the batch needs an idempotency key', b.ord
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the event in your system.';
    ELSIF b.problem = 'period' THEN
        RAISE EXCEPTION 'usage event % of the batch: usage on % is outside subscription item %''s time [%, %)',
            b.ord, b.d, b.item_id, b.started_on, coalesce(b.ended_on::text, 'open')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record it on the item that was current then.';
    ELSIF b.problem = 'repeated' THEN
        RAISE EXCEPTION 'usage event % of the batch: idempotency key "%" is used by event % of the batch for other usage',
            b.ord, b.key, b.first_ord
            USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
    END IF;

    -- The first event of each key, in the order of the key they are unique
    -- on; a key stored before (or by another session meanwhile) is skipped
    -- by the unique index and compared below.
    WITH ins AS (
        INSERT INTO billing.usage_event AS x (account_id, subscription_item_id, quantity, value, occurred_at,
                                              usage_date, idempotency_key)
        SELECT u.account_id, u.item_id, u.quantity, u.value, coalesce(u.at, v_now), u.d, u.key
        FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats, usage_values,
                    b.dates, b.firsts) u(account_id, item_id, quantity, key, at, value, d, first)
        WHERE u.first
        ORDER BY u.account_id, u.key
        ON CONFLICT ON CONSTRAINT usage_event_account_id_idempotency_key_key DO NOTHING
        RETURNING x.account_id, x.idempotency_key
    )
    SELECT count(*), array_agg(ins.account_id), array_agg(ins.idempotency_key) INTO inserted, v_ins_accounts, v_ins_keys
    FROM ins;

    IF inserted < b.n_firsts THEN
        -- the keys stored before: the single call's rule for a key used
        -- before (the same item, quantity and value, and the same time when
        -- one is given), against what is stored
        WITH stored AS MATERIALIZED (
            SELECT u.* FROM unnest(account_ids, subscription_item_ids, quantities, idempotency_keys, occurred_ats,
                                   usage_values, b.firsts) WITH ORDINALITY u(account_id, item_id, quantity, key, at, value,
                                                                               first, ord)
            WHERE u.first
              AND NOT EXISTS (SELECT FROM unnest(v_ins_accounts, v_ins_keys) n(account_id, key)
                              WHERE n.account_id = u.account_id AND n.key = u.key)
        )
        SELECT u.ord, u.key, e.usage_event_id INTO r
        FROM stored u
        JOIN billing.usage_event e ON e.account_id = u.account_id AND e.idempotency_key = u.key
        WHERE e.subscription_item_id <> u.item_id OR e.quantity <> u.quantity OR e.value IS DISTINCT FROM u.value
              OR (u.at IS NOT NULL AND e.occurred_at <> u.at)
        ORDER BY u.ord LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'usage event % of the batch: idempotency key "%" was already used for other usage (event %)',
                r.ord, r.key, r.usage_event_id
                USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
        END IF;
    END IF;
    duplicates := v_n - inserted;
END $$;
COMMENT ON FUNCTION billing.record_usage_batch(bigint[], bigint[], numeric[], text[], timestamptz[], text[]) IS
    'records many usage events in one call (element i of each array is event i) with the rules of record_usage: '
    'one bad event fails the whole call; returns how many were inserted and how many were duplicates of a key '
    'already stored or repeated in the batch with the same content';

-- src/sql/install/45_entitlements.sql
-- Entitlements: what an account may use, derived from what it pays for.
--
-- A feature is a key the application asks about ("api_access",
-- "storage_gb", "support_tier").  A price grants features with values; a
-- subscription can override a value for itself (a deal, a trial of a higher
-- tier, a revocation).  What an account is entitled to is computed when
-- asked, from the subscriptions that give access today in its time zone and
-- their items of today, so it follows every change, pause, suspension and
-- cancellation without a second copy of the subscription state to keep in
-- step.  The application's check, billing.entitled, is one indexed
-- statement.
--
-- Kinds of feature and how grants of several items combine:
--   switch  on or off ('true'/'false'): on if any live grant is on;
--   limit   a number >= 0 or 'unlimited': the live grants add up (a plan's
--           100 plus an add-on's 50 is 150; per_unit grants count once per
--           unit of their item's quantity); unlimited wins;
--   text    one value (a tier name): the grant of the item that started
--           last (then the highest item id).
-- An override replaces what its subscription grants for the feature (for a
-- limit, the subscription's total); it needs no item granting the feature.

CREATE TABLE billing.feature (
    feature_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_.:-]{0,62}$'),
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 200),
    kind        text NOT NULL DEFAULT 'switch' CHECK (kind IN ('switch', 'limit', 'text')),
    description text CHECK (length(description) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT billing.now()
);
ALTER TABLE billing.feature ADD CONSTRAINT feature_no_card_number CHECK (
    billing._no_card_number(name, 'billing.feature.name')
    AND billing._no_card_number(description, 'billing.feature.description'));
COMMENT ON TABLE billing.feature IS
    'a feature the application checks: its key, name and kind (switch, limit or text)';

-- The value of a grant, in the form its feature's kind reads: 'true' or
-- 'false'; a number or 'unlimited'; any text.  billing._feature_value
-- checks and normalizes it, once, for grants and overrides alike.
CREATE TABLE billing.price_feature (
    price_id    bigint NOT NULL REFERENCES billing.price,
    feature_id  bigint NOT NULL REFERENCES billing.feature,
    value       text NOT NULL,
    per_unit    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (price_id, feature_id)
);
CREATE INDEX ON billing.price_feature (feature_id);
ALTER TABLE billing.price_feature ADD CONSTRAINT price_feature_no_card_number CHECK (
    billing._no_card_number(value, 'billing.price_feature.value'));
COMMENT ON TABLE billing.price_feature IS
    'a feature a price grants and its value; per_unit: a limit counted once per unit of the item''s quantity';

CREATE TABLE billing.subscription_feature (
    account_id      bigint NOT NULL,
    subscription_id bigint NOT NULL,
    feature_id      bigint NOT NULL REFERENCES billing.feature,
    value           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, subscription_id, feature_id),
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription
);
CREATE INDEX ON billing.subscription_feature (feature_id);
ALTER TABLE billing.subscription_feature ADD CONSTRAINT subscription_feature_no_card_number CHECK (
    billing._no_card_number(value, 'billing.subscription_feature.value'));
COMMENT ON TABLE billing.subscription_feature IS
    'a subscription''s own value for a feature, replacing what its prices grant';

-- The one rule for what a value may be, per kind; returns it normalized.
CREATE FUNCTION billing._feature_value(kind text, value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_n numeric;
BEGIN
    IF value IS NULL THEN
        IF kind = 'switch' THEN
            RETURN 'true';
        END IF;
        RAISE EXCEPTION 'a % feature needs a value', kind
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = CASE kind WHEN 'limit' THEN 'A number of at least 0, or ''unlimited''.'
                                   ELSE 'Any text of at most 200 characters.' END;
    END IF;
    CASE kind
    WHEN 'switch' THEN
        IF lower(value) IN ('true', 'on', 'yes') THEN
            RETURN 'true';
        ELSIF lower(value) IN ('false', 'off', 'no') THEN
            RETURN 'false';
        END IF;
        RAISE EXCEPTION 'a switch feature is on or off, not "%"', left(value, 40)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''true'' or ''false''.';
    WHEN 'limit' THEN
        IF lower(value) = 'unlimited' THEN
            RETURN 'unlimited';
        END IF;
        IF value !~ '^\s*[0-9]{1,15}(\.[0-9]{1,6})?\s*$' THEN
            RAISE EXCEPTION 'a limit is a number from 0 to 999999999999999 with at most 6 decimals, or unlimited, not "%"',
                            left(value, 40)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_n := value::numeric;
        RETURN trim_scale(v_n)::text;
    WHEN 'text' THEN
        IF value = '' OR length(value) > 200 THEN
            RAISE EXCEPTION 'a text feature''s value has 1 to 200 characters, not %', length(value)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN value;
    ELSE
        RAISE EXCEPTION 'unknown feature kind %', kind USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END $$;
COMMENT ON FUNCTION billing._feature_value(text, text) IS
    'internal: a grant''s or an override''s value checked against its feature''s kind, normalized (22023)';

CREATE FUNCTION billing._feature_by_key(key text) RETURNS billing.feature
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
BEGIN
    SELECT * INTO f FROM billing.feature x WHERE x.key = _feature_by_key.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feature "%" does not exist', coalesce(left(key, 64), 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_feature.';
    END IF;
    RETURN f;
END $$;
COMMENT ON FUNCTION billing._feature_by_key(text) IS 'internal: the feature of a key, or no_data_found';

CREATE FUNCTION billing.create_feature(key text, name text, kind text DEFAULT 'switch', description text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM billing._authorize_all('create a feature');
    IF key IS NULL OR key !~ '^[a-z][a-z0-9_.:-]{0,62}$' THEN
        RAISE EXCEPTION 'a feature key is 1 to 63 lower-case letters, digits and _ . : -, starting with a letter, not "%"',
                        coalesce(left(key, 70), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF kind IS NULL OR kind NOT IN ('switch', 'limit', 'text') THEN
        RAISE EXCEPTION 'a feature''s kind is switch, limit or text, not %', coalesce(kind, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO billing.feature (key, name, kind, description)
    VALUES (create_feature.key, create_feature.name, create_feature.kind, create_feature.description)
    RETURNING feature_id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_feature(text, text, text, text) IS
    'creates a feature (kind switch, limit or text) and returns its id; the key is what the application asks for';

CREATE FUNCTION billing.set_price_feature(price_id bigint, feature text, value text DEFAULT NULL,
                                          per_unit boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
    v_value text;
BEGIN
    PERFORM billing._authorize_all('change what a price grants');
    f := billing._feature_by_key(feature);
    v_value := billing._feature_value(f.kind, value);
    IF coalesce(per_unit, false) AND f.kind <> 'limit' THEN
        RAISE EXCEPTION 'only a limit can be granted per unit, and "%" is a % feature', f.key, f.kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM billing.price p WHERE p.price_id = set_price_feature.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_price.';
    END IF;
    INSERT INTO billing.price_feature AS x (price_id, feature_id, value, per_unit)
    VALUES (set_price_feature.price_id, f.feature_id, v_value, coalesce(set_price_feature.per_unit, false))
    ON CONFLICT ON CONSTRAINT price_feature_pkey
    DO UPDATE SET value = excluded.value, per_unit = excluded.per_unit;
END $$;
COMMENT ON FUNCTION billing.set_price_feature(bigint, text, text, boolean) IS
    'makes a price grant a feature with a value (a switch: on unless given false), or changes the value';

CREATE FUNCTION billing.remove_price_feature(price_id bigint, feature text)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
BEGIN
    PERFORM billing._authorize_all('change what a price grants');
    f := billing._feature_by_key(feature);
    DELETE FROM billing.price_feature x
    WHERE x.price_id = remove_price_feature.price_id AND x.feature_id = f.feature_id;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION billing.remove_price_feature(bigint, text) IS
    'stops a price granting a feature; returns whether it did';

CREATE FUNCTION billing.set_subscription_feature(account_id bigint, subscription_id bigint, feature text,
                                                 value text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
    v_value text;
BEGIN
    PERFORM billing._authorize_account(set_subscription_feature.account_id);
    f := billing._feature_by_key(feature);
    v_value := billing._feature_value(f.kind, value);
    PERFORM billing._lock_subscription(set_subscription_feature.account_id, set_subscription_feature.subscription_id);
    INSERT INTO billing.subscription_feature AS x (account_id, subscription_id, feature_id, value)
    VALUES (set_subscription_feature.account_id, set_subscription_feature.subscription_id, f.feature_id, v_value)
    ON CONFLICT ON CONSTRAINT subscription_feature_pkey DO UPDATE SET value = excluded.value;
END $$;
COMMENT ON FUNCTION billing.set_subscription_feature(bigint, bigint, text, text) IS
    'gives a subscription its own value for a feature, replacing what its prices grant (a switch: on unless false)';

CREATE FUNCTION billing.remove_subscription_feature(account_id bigint, subscription_id bigint, feature text)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
BEGIN
    PERFORM billing._authorize_account(remove_subscription_feature.account_id);
    f := billing._feature_by_key(feature);
    DELETE FROM billing.subscription_feature x
    WHERE x.account_id = remove_subscription_feature.account_id
      AND x.subscription_id = remove_subscription_feature.subscription_id AND x.feature_id = f.feature_id;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION billing.remove_subscription_feature(bigint, bigint, text) IS
    'drops a subscription''s own value for a feature, so its prices'' grants apply again; returns whether there was one';

-- Every feature an account is entitled to today, with its combined value:
-- the grants of the items of today of the subscriptions that give access
-- (trialing, active, past due: a suspended, paused or canceled subscription
-- gives none), each subscription's overrides in place of its grants.  The
-- one statement of the rule; billing.entitled and billing.entitlement read
-- one feature through it.
CREATE FUNCTION billing._entitlements(account_id bigint, only_feature bigint)
RETURNS TABLE (feature_id bigint, value text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    -- PL/pgSQL, not SQL: its plan is made once per session, where a SQL
    -- function with a SET clause is planned again at every call
    RETURN QUERY
    SELECT g.feature_id,
           CASE f.kind
           WHEN 'switch' THEN (bool_or(g.value = 'true'))::text
           WHEN 'limit' THEN
               CASE WHEN bool_or(g.value = 'unlimited') THEN 'unlimited'
                    -- (the cast only where the value is a number: the
                    -- aggregate reads the rows of every kind's group)
                    ELSE trim_scale(sum(CASE WHEN f.kind = 'limit' AND g.value <> 'unlimited'
                                             THEN g.value::numeric * CASE WHEN g.per_unit THEN g.quantity ELSE 1 END
                                        END))::text END
           ELSE (array_agg(g.value ORDER BY g.started_on DESC NULLS FIRST, g.subscription_item_id DESC NULLS FIRST,
                           s.subscription_id DESC))[1]
           END
    FROM billing.account a
    JOIN billing.subscription s ON s.account_id = a.account_id AND s.status IN ('trialing', 'active', 'past_due')
    CROSS JOIN LATERAL (
        -- what the subscription's items of today grant, less what its
        -- overrides replace
        SELECT pf.feature_id, pf.value, pf.per_unit, i.quantity, i.started_on, i.subscription_item_id
        FROM billing.subscription_item i
        JOIN billing.price_feature pf ON pf.price_id = i.price_id
             AND (_entitlements.only_feature IS NULL OR pf.feature_id = _entitlements.only_feature)
        WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id
          AND i.started_on <= billing.today(a.timezone)
          AND (i.ended_on IS NULL OR i.ended_on > billing.today(a.timezone))
          AND NOT EXISTS (SELECT FROM billing.subscription_feature o
                          WHERE o.account_id = s.account_id AND o.subscription_id = s.subscription_id
                            AND o.feature_id = pf.feature_id)
        UNION ALL
        SELECT o.feature_id, o.value, false, 1, NULL::date, NULL::bigint
        FROM billing.subscription_feature o
        WHERE o.account_id = s.account_id AND o.subscription_id = s.subscription_id
          AND (_entitlements.only_feature IS NULL OR o.feature_id = _entitlements.only_feature)
    ) g
    JOIN billing.feature f ON f.feature_id = g.feature_id
    WHERE a.account_id = _entitlements.account_id
    GROUP BY g.feature_id, f.kind;
END $$;
COMMENT ON FUNCTION billing._entitlements(bigint, bigint) IS
    'internal: the features an account is entitled to today (only_feature NULL: all) and their combined values';

CREATE FUNCTION billing.entitlement(account_id bigint, feature text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
    v text;
BEGIN
    PERFORM billing._authorize_existing_account(entitlement.account_id);
    f := billing._feature_by_key(feature);
    SELECT e.value INTO v FROM billing._entitlements(entitlement.account_id, f.feature_id) e;
    RETURN coalesce(v, CASE f.kind WHEN 'switch' THEN 'false' WHEN 'limit' THEN '0' END);
END $$;
COMMENT ON FUNCTION billing.entitlement(bigint, text) IS
    'an account''s value of a feature today: a switch ''true''/''false'', a limit''s total or ''unlimited'' '
    '(''0'' without a grant), a text''s value (NULL without a grant)';

CREATE FUNCTION billing.entitled(account_id bigint, feature text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f billing.feature;
    v text;
BEGIN
    PERFORM billing._authorize_existing_account(entitled.account_id);
    f := billing._feature_by_key(feature);
    SELECT e.value INTO v FROM billing._entitlements(entitled.account_id, f.feature_id) e;
    RETURN CASE f.kind
           WHEN 'switch' THEN v IS NOT DISTINCT FROM 'true'
           WHEN 'limit' THEN v = 'unlimited' OR v::numeric > 0
           ELSE v IS NOT NULL END;
END $$;
COMMENT ON FUNCTION billing.entitled(bigint, text) IS
    'whether an account may use a feature today: a switch on, a limit above 0, a text feature granted; '
    'the application''s check';

CREATE FUNCTION billing.entitlements(account_id bigint)
RETURNS TABLE (feature text, kind text, value text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_existing_account(entitlements.account_id);
    RETURN QUERY
    SELECT f.key, f.kind, e.value
    FROM billing._entitlements(entitlements.account_id, NULL) e
    JOIN billing.feature f ON f.feature_id = e.feature_id
    ORDER BY f.key;
END $$;
COMMENT ON FUNCTION billing.entitlements(bigint) IS
    'every feature an account is granted today, with its kind and combined value';

-- The features, the grants and the overrides are user data: pg_dump dumps
-- them (one call per statement: pg_extension_config_dump updates
-- pg_extension).
SELECT pg_catalog.pg_extension_config_dump('billing.feature', '');
SELECT pg_catalog.pg_extension_config_dump('billing.feature_feature_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.price_feature', '');
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_feature', '');

-- src/sql/install/47_subscription_changes.sql
-- Changes to a running subscription beyond billing.change_subscription:
-- add-ons (items added to and removed from the subscription), scheduled
-- changes in later periods, and the migration of every subscription on a
-- price to another one.
--
-- All of them are items of billing.subscription_item, valid on
-- [started_on, ended_on): the cycle bills the items valid on a bill date
-- (50_invoicing.sql), so an add-on is a line of the subscription's own
-- invoice, and a change dated in a later period is an item that starts on
-- that period's first day, billed by the ordinary cycle from then on with
-- no step of its own.  A change is made by billing.change_subscription
-- (proration at_period_end), so its notice is the price-change notice that
-- billing.run_dunning writes price_change_notice_days before it
-- (78_dunning.sql), and its billing is that of any other item.  What this
-- file adds is the record of which item replaced which
-- (billing.subscription_change), so that a change can be taken back before
-- its period is billed and an add-on is not taken for a price change.

CREATE TABLE billing.subscription_change (
    account_id           bigint NOT NULL,
    -- the new item: an add-on, or the item that starts on the first day of
    -- the period of effective_on
    subscription_item_id bigint NOT NULL,
    subscription_id      bigint NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('add_on', 'scheduled', 'migration')),
    -- the item a scheduled change or a migration ends (an add-on ends none)
    replaces_item_id     bigint,
    -- the day asked for (a scheduled change takes effect where its period begins)
    effective_on         date NOT NULL,
    canceled_on          date,
    created_at           timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, subscription_item_id),
    FOREIGN KEY (account_id, subscription_item_id) REFERENCES billing.subscription_item,
    FOREIGN KEY (account_id, replaces_item_id) REFERENCES billing.subscription_item,
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription,
    CHECK ((kind = 'add_on') = (replaces_item_id IS NULL)),
    CHECK (replaces_item_id <> subscription_item_id),
    CHECK (kind <> 'add_on' OR canceled_on IS NULL)
);
COMMENT ON TABLE billing.subscription_change IS
    'the items added to a running subscription: add-ons (billing.add_subscription_item) and changes dated in a '
    'later period (billing.schedule_change, billing.migrate_price) with the item each replaces; canceled_on when '
    'billing.cancel_scheduled_change took a change back';
-- the next phase of a chain, found when the one before it is canceled
CREATE INDEX subscription_change_replaces ON billing.subscription_change (account_id, replaces_item_id)
    WHERE replaces_item_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_change', '');

-- Whether item other is the item that item replaces, for the price-change
-- notices (78_dunning.sql), which pair a new item with the one that ends on
-- its first day: an item that never runs (a change taken back, an add-on
-- removed before it began) and an add-on replace none, a scheduled change
-- or a migration the item it names.
CREATE FUNCTION billing._replaces(acct bigint, item bigint, item_started_on date, item_ended_on date, other bigint)
RETURNS boolean LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT (item_ended_on IS NULL OR item_ended_on > item_started_on)
       AND NOT EXISTS (SELECT FROM billing.subscription_change c
                       WHERE c.account_id = acct AND c.subscription_item_id = item
                         AND c.replaces_item_id IS DISTINCT FROM other)
$$;
COMMENT ON FUNCTION billing._replaces(bigint, bigint, date, date, bigint) IS
    'internal: whether a new item (running from item_started_on to item_ended_on) replaces item other, for the '
    'price-change notices: not when it never runs or is an add-on; a scheduled change the item it names';

-- The day an item is added or removed, by the proration behaviors of
-- billing.change_subscription: at_period_end the end of the billed period
-- (or a later period's first day), otherwise effective_date (default today)
-- within the current period.
CREATE FUNCTION billing._item_change_date(s billing.subscription, proration text, effective_date date, today date)
RETURNS date LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_d date;
BEGIN
    IF proration IS NULL OR proration NOT IN ('prorate_now', 'prorate_next', 'none', 'at_period_end') THEN
        RAISE EXCEPTION 'unknown proration behavior "%"', proration
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use prorate_now, prorate_next, none or at_period_end.';
    END IF;
    IF proration = 'at_period_end' THEN
        IF effective_date IS NOT NULL AND (effective_date < s.next_bill_date
               OR lower(billing.period_containing(s.anchor, s.cadence, effective_date)) <> effective_date
               OR effective_date > s.next_bill_date + interval '10 years') THEN
            RAISE EXCEPTION 'a change at period end takes effect where a period begins, on % or later (within ten '
                            'years), not on %', s.next_bill_date, effective_date
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave effective_date out for the end of the billed period, or pass a later period''s first day.';
        END IF;
        RETURN coalesce(effective_date, s.next_bill_date);
    END IF;
    v_d := coalesce(billing._check_date(effective_date, 'effective_date', today), today);
    IF v_d < coalesce(s.current_period_start, s.start_date) THEN
        RAISE EXCEPTION 'change dated % falls in a closed period (the current one starts on %)',
            v_d, coalesce(s.current_period_start, s.start_date)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the change in the current period.';
    END IF;
    IF v_d > s.next_bill_date THEN
        RAISE EXCEPTION 'change dated % is after the current period, which ends on %', v_d, s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use proration => ''at_period_end''.';
    END IF;
    RETURN v_d;
END $$;
COMMENT ON FUNCTION billing._item_change_date(billing.subscription, text, date, date) IS
    'internal: the day an item is added or removed under a proration behavior (at_period_end: the next bill date '
    'or a later period''s first day; otherwise effective_date, default today, in the current period); 22023 otherwise';

-- Raises 55000 unless the subscription is billed and not canceled.
CREATE FUNCTION billing._check_changeable(s billing.subscription) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF s.status IN ('canceled', 'paused') OR s.cancel_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', s.subscription_id,
            CASE WHEN s.cancel_on IS NOT NULL AND s.status NOT IN ('canceled', 'paused')
                 THEN 'canceled from ' || s.cancel_on ELSE s.status END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a subscription that is billed and not canceled can change.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_changeable(billing.subscription) IS
    'internal: raises 55000 when the subscription is canceled, paused or canceled at period end';

-- An add-on: one more item on the subscription, on its invoices.  Its
-- price shares the subscription's currency and cadence (billing._check_price).
-- Prorated (prorate_now, prorate_next), the rest of the billed period is
-- charged as change_subscription charges a new item: billing.prorate of its
-- period amount over the cycle period.  A metered add-on bills its usage
-- from its first day, in arrears like every metered item.
CREATE FUNCTION billing.add_subscription_item(
    account_id bigint, subscription_id bigint, price_id bigint, quantity numeric DEFAULT 1,
    proration text DEFAULT 'prorate_next', effective_date date DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    p billing.price;
    v_rounding text;
    v_d date;
    v_new bigint;
    v_same bigint;
BEGIN
    PERFORM billing._authorize_account(add_subscription_item.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    PERFORM billing._check_changeable(s);
    p := billing._check_price(add_subscription_item.price_id, a.currency, s.cadence, quantity);
    -- one item per price: more of the same is a quantity change
    SELECT x.subscription_item_id INTO v_same FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.price_id = p.price_id
      AND x.ended_on IS NULL
    ORDER BY x.subscription_item_id LIMIT 1;
    IF v_same IS NOT NULL THEN
        RAISE EXCEPTION 'price % is already on subscription % (item %)', p.price_id, s.subscription_id, v_same
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Change its quantity with billing.change_subscription(subscription_item_id => ...).';
    END IF;
    v_d := billing._item_change_date(s, proration, effective_date, billing.today(a.timezone));
    INSERT INTO billing.subscription_item AS x (account_id, subscription_id, price_id, quantity, started_on)
    VALUES (s.account_id, s.subscription_id, p.price_id, quantity, v_d)
    RETURNING x.subscription_item_id INTO v_new;
    -- the rest of the billed period, when the add-on starts inside it
    IF proration IN ('prorate_now', 'prorate_next') AND p.usage_type = 'licensed' AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, v_new, p.price_id, 'proration',
               'Remaining time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(quantity) || ' from ' || v_d,
               quantity, p.unit_amount,
               billing.prorate(billing.price_amount(p.price_id, quantity, v_rounding),
                               billing.period_containing(s.anchor, s.cadence, v_d),
                               daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    -- its setup fee, as when the price is subscribed to
    IF p.setup_fee > 0 THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start)
        SELECT s.account_id, s.subscription_id, v_new, p.price_id, 'setup_fee', pd.name || ' setup fee', 1,
               p.setup_fee, billing.round_amount(p.setup_fee, p.currency, v_rounding), v_d
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind, effective_on)
    VALUES (s.account_id, v_new, s.subscription_id, 'add_on', v_d);
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_d,
                                              'added_item', v_new, 'price_id', p.price_id, 'quantity', quantity,
                                              'proration', proration));
    IF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_new;
END $$;
COMMENT ON FUNCTION billing.add_subscription_item(bigint, bigint, bigint, numeric, text, date) IS
    'adds an item (an add-on: a price in the subscription''s currency and cadence, not already on it) to a running '
    'subscription from effective_date (default today) and returns its id; proration as billing.change_subscription: '
    'prorate_now (charge the rest of the billed period and invoice now), prorate_next, none, or at_period_end';

-- Removes an add-on.  Prorated, the unused part of the billed period is
-- credited as billing.cancel_subscription credits it (only if the item was
-- billed for the period).  The subscription keeps at least one item: to
-- stop billing all of it is a cancellation.
CREATE FUNCTION billing.remove_subscription_item(
    account_id bigint, subscription_item_id bigint, proration text DEFAULT 'prorate_next',
    effective_date date DEFAULT NULL)
RETURNS date LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    i billing.subscription_item;
    p billing.price;
    v_rounding text;
    v_d date;
    v_end date;
BEGIN
    PERFORM billing._authorize_account(remove_subscription_item.account_id);
    SELECT x.subscription_id INTO i.subscription_id FROM billing.subscription_item x
    WHERE x.account_id = remove_subscription_item.account_id
      AND x.subscription_item_id = remove_subscription_item.subscription_item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % does not exist', coalesce(subscription_item_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription_item lists the items.';
    END IF;
    s := billing._lock_subscription(account_id, i.subscription_id);
    -- read again under the subscription's lock
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = remove_subscription_item.subscription_item_id;
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    SELECT e.rounding INTO v_rounding FROM billing.billing_entity e WHERE e.entity_id = a.entity_id;
    SELECT * INTO p FROM billing.price x WHERE x.price_id = i.price_id;
    PERFORM billing._check_changeable(s);
    IF i.ended_on IS NOT NULL THEN
        RAISE EXCEPTION 'subscription item % already ends on %', i.subscription_item_id, i.ended_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN EXISTS (SELECT FROM billing.subscription_change c
                                           WHERE c.account_id = i.account_id
                                             AND c.replaces_item_id = i.subscription_item_id
                                             AND c.canceled_on IS NULL)
                              THEN 'A scheduled change replaces it then; remove the item that replaces it.'
                              ELSE 'Nothing to do.' END;
    END IF;
    IF EXISTS (SELECT FROM billing.subscription_change c
               WHERE c.account_id = i.account_id AND c.subscription_item_id = i.subscription_item_id
                 AND c.kind <> 'add_on' AND c.canceled_on IS NULL AND i.started_on >= s.next_bill_date) THEN
        RAISE EXCEPTION 'subscription item % is a scheduled change that has not begun', i.subscription_item_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Take it back with billing.cancel_scheduled_change.';
    END IF;
    v_d := billing._item_change_date(s, proration, effective_date, billing.today(a.timezone));
    -- an add-on that has not begun never runs: it ends on its own first day
    v_end := greatest(v_d, i.started_on);
    IF NOT EXISTS (SELECT FROM billing.subscription_item x
                   WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id
                     AND x.subscription_item_id <> i.subscription_item_id
                     AND (x.ended_on IS NULL OR x.ended_on > v_end)) THEN
        RAISE EXCEPTION 'subscription item % is the last item of subscription %', i.subscription_item_id,
            s.subscription_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Cancel the subscription with billing.cancel_subscription.';
    END IF;
    -- the unused part of the billed period, if the item was billed for it
    IF proration IN ('prorate_now', 'prorate_next') AND p.usage_type = 'licensed' AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end
       AND (i.started_on <= s.current_period_start OR EXISTS (
            SELECT FROM billing.pending_item q
            WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
              AND q.kind = 'proration' AND q.period_end = s.current_period_end)) THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, i.subscription_item_id, p.price_id, 'proration',
               'Unused time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(i.quantity) || ' from ' || v_d,
               i.quantity, p.unit_amount,
               -billing.prorate(billing.price_amount(p.price_id, i.quantity, v_rounding),
                                billing.period_containing(s.anchor, s.cadence, v_d),
                                daterange(v_d, s.current_period_end), 'actual', v_rounding),
               v_d, s.current_period_end
        FROM billing.product pd WHERE pd.product_id = p.product_id;
    END IF;
    UPDATE billing.subscription_item x SET ended_on = v_end
    WHERE x.account_id = i.account_id AND x.subscription_item_id = i.subscription_item_id;
    -- an add-on that never runs owes no setup fee
    IF v_end = i.started_on THEN
        DELETE FROM billing.pending_item q
        WHERE q.account_id = i.account_id AND q.subscription_item_id = i.subscription_item_id
          AND q.kind = 'setup_fee' AND q.invoice_id IS NULL;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_end,
                                              'removed_item', i.subscription_item_id, 'proration', proration));
    IF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_end;
END $$;
COMMENT ON FUNCTION billing.remove_subscription_item(bigint, bigint, text, date) IS
    'removes an item from a running subscription from effective_date (default today; returns the day it ends); '
    'proration as billing.change_subscription (prorate_now and prorate_next credit the unused part of the billed '
    'period); the subscription''s last item is refused (55000: cancel the subscription instead)';

-- A change dated in a later period: the new item starts on the first day
-- of the period that contains effective_on, by billing.change_subscription
-- at period end, and the cycle bills it from that period on.  Phases go in
-- date order: each names the item of the phase before (the subscription's
-- open item), and a change on or before the start of the last one is
-- refused; take the later one back first.
CREATE FUNCTION billing.schedule_change(
    account_id bigint, subscription_id bigint, effective_on date, price_id bigint DEFAULT NULL,
    quantity numeric DEFAULT NULL, subscription_item_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_start date;
    v_items integer;
    v_item bigint;
    v_item_start date;
    v_new bigint;
BEGIN
    PERFORM billing._authorize_account(schedule_change.account_id);
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    PERFORM billing._check_changeable(s);
    IF effective_on IS NULL THEN
        RAISE EXCEPTION 'a scheduled change needs its effective_on date'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the day the change takes effect.';
    END IF;
    PERFORM billing._check_date(effective_on, 'effective_on', billing.today(a.timezone));
    v_start := lower(billing.period_containing(s.anchor, s.cadence, effective_on));
    IF v_start < s.next_bill_date THEN
        RAISE EXCEPTION 'effective_on % is in a period already billed (the next one starts on %)', effective_on,
            s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Change the current period with billing.change_subscription; schedule from the next bill date on.';
    END IF;
    SELECT count(*), max(x.subscription_item_id), max(x.started_on) INTO v_items, v_item, v_item_start
    FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (schedule_change.subscription_item_id IS NULL
           OR x.subscription_item_id = schedule_change.subscription_item_id);
    IF v_items = 1 AND v_item_start >= v_start THEN
        RAISE EXCEPTION 'item % starts on %: a change from % would come before it', v_item, v_item_start, v_start
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Phases go in date order: schedule after it, or take it back with billing.cancel_scheduled_change.';
    END IF;
    -- (change_subscription checks the item, the price and the quantity)
    v_new := billing.change_subscription(s.account_id, s.subscription_id, price_id, quantity, 'at_period_end',
                                         v_start, subscription_item_id);
    INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind, replaces_item_id,
                                             effective_on)
    VALUES (s.account_id, v_new, s.subscription_id, 'scheduled', v_item, effective_on);
    RETURN v_new;
END $$;
COMMENT ON FUNCTION billing.schedule_change(bigint, bigint, date, bigint, numeric, bigint) IS
    'schedules a change of price and/or quantity of a subscription''s item (the only open one, or subscription_item_id) '
    'for the period containing effective_on, a period not yet billed; returns the new item''s id; phases go in date '
    'order; its notice is run_dunning''s price-change notice';

-- Takes a scheduled change back until its period is billed: the item it
-- replaced runs on for the change's time, and the change's item ends on
-- its own first day (an empty life, never billed), as a canceled
-- subscription's later items do.
CREATE FUNCTION billing.cancel_scheduled_change(account_id bigint, subscription_item_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    c billing.subscription_change;
    s billing.subscription;
    n billing.subscription_item;
    v_today date;
BEGIN
    PERFORM billing._authorize_account(cancel_scheduled_change.account_id);
    SELECT x.subscription_id INTO c.subscription_id FROM billing.subscription_change x
    WHERE x.account_id = cancel_scheduled_change.account_id
      AND x.subscription_item_id = cancel_scheduled_change.subscription_item_id AND x.kind <> 'add_on';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % is no scheduled change',
            coalesce(subscription_item_id::text, 'NULL'), coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription_change lists the scheduled changes (kind scheduled or migration).';
    END IF;
    s := billing._lock_subscription(account_id, c.subscription_id);
    SELECT * INTO c FROM billing.subscription_change x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = cancel_scheduled_change.subscription_item_id;
    SELECT * INTO n FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_item_id = c.subscription_item_id;
    IF c.canceled_on IS NOT NULL THEN
        RAISE EXCEPTION 'the scheduled change of item % was canceled on %', c.subscription_item_id, c.canceled_on
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to do.';
    END IF;
    PERFORM billing._check_changeable(s);
    IF n.started_on < s.next_bill_date THEN
        RAISE EXCEPTION 'the change of item % took effect on % and its period is billed', n.subscription_item_id,
            n.started_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Change the subscription again with billing.change_subscription or billing.schedule_change.';
    END IF;
    SELECT billing.today(a.timezone) INTO v_today FROM billing.account a WHERE a.account_id = s.account_id;
    UPDATE billing.subscription_item x SET ended_on = n.ended_on
    WHERE x.account_id = s.account_id AND x.subscription_item_id = c.replaces_item_id;
    UPDATE billing.subscription_item x SET ended_on = x.started_on
    WHERE x.account_id = s.account_id AND x.subscription_item_id = n.subscription_item_id;
    -- the next phase, if any, now follows the item before this one
    UPDATE billing.subscription_change x SET replaces_item_id = c.replaces_item_id
    WHERE x.account_id = s.account_id AND x.replaces_item_id = n.subscription_item_id AND x.canceled_on IS NULL;
    UPDATE billing.subscription_change x SET canceled_on = v_today
    WHERE x.account_id = s.account_id AND x.subscription_item_id = n.subscription_item_id;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id,
                                              'scheduled_change_canceled', n.subscription_item_id,
                                              'effective_date', n.started_on,
                                              'item', c.replaces_item_id,
                                              'notified', EXISTS (SELECT FROM billing.price_change_notice x
                                                                  WHERE x.account_id = s.account_id
                                                                    AND x.subscription_item_id = n.subscription_item_id)));
END $$;
COMMENT ON FUNCTION billing.cancel_scheduled_change(bigint, bigint) IS
    'takes back a scheduled change (its new item''s id) whose period is not billed yet: the item it replaced runs '
    'on; its subscription.updated event says whether its notice was already sent';

-- Every subscription whose open item is on from_price moves to to_price at
-- its next renewal at least notice_days away: the first bill date on or
-- after today + notice_days (the next bill date, or a later period's first
-- day).  Subscriptions are migrated only when asked: a price that is
-- replaced or deactivated keeps billing the subscriptions on it.  One
-- statement for all of them; each move is a scheduled change (kind
-- migration), with run_dunning's price-change notice, and can be taken back
-- one by one with billing.cancel_scheduled_change.
CREATE FUNCTION billing.migrate_price(from_price_id bigint, to_price_id bigint, notice_days integer DEFAULT NULL,
                                      account_ids bigint[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p_from billing.price;
    v_days integer;
    v_moved integer;
BEGIN
    PERFORM billing._authorize_all('migrate a price');
    SELECT * INTO p_from FROM billing.price x WHERE x.price_id = migrate_price.from_price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(from_price_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.price lists the prices.';
    END IF;
    IF to_price_id = from_price_id THEN
        RAISE EXCEPTION 'price % would migrate to itself', from_price_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name another price.';
    END IF;
    -- the new price: active, the same currency and cadence (and the same
    -- bounds on the quantities of the items, checked below)
    PERFORM billing._check_price(to_price_id, p_from.currency, p_from.cadence, 0);
    IF (SELECT x.usage_type FROM billing.price x WHERE x.price_id = migrate_price.to_price_id) <> p_from.usage_type THEN
        RAISE EXCEPTION 'price % is %, price % is %', from_price_id, p_from.usage_type, to_price_id,
            (SELECT x.usage_type FROM billing.price x WHERE x.price_id = migrate_price.to_price_id)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Migrate to a price billed the same way.';
    END IF;
    v_days := coalesce(notice_days, (SELECT x.price_change_notice_days FROM billing.dunning_setting x), 30);
    IF v_days < 0 OR v_days > 365 THEN
        RAISE EXCEPTION 'notice_days must be 0 to 365, not %', v_days
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave it out for price_change_notice_days.';
    END IF;
    -- the subscriptions, locked in key order as the cycle takes them
    PERFORM FROM billing.subscription s
    WHERE (account_ids IS NULL OR s.account_id = ANY (account_ids))
      AND EXISTS (SELECT FROM billing.subscription_item i
                  WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id
                    AND i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL)
    ORDER BY s.account_id, s.subscription_id
    FOR UPDATE;
    -- every quantity within the bounds of an amount at the new price
    PERFORM billing._check_price(to_price_id, p_from.currency, p_from.cadence, q.quantity)
    FROM (SELECT DISTINCT i.quantity FROM billing.subscription_item i
          WHERE i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL
            AND (account_ids IS NULL OR i.account_id = ANY (account_ids))) q;
    WITH m AS MATERIALIZED (
        SELECT i.account_id, i.subscription_id, i.subscription_item_id AS old_item,
               nextval('billing.subscription_item_subscription_item_id_seq') AS new_item, i.quantity,
               d.eff AS effective_on
        FROM billing.subscription_item i
        JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        JOIN billing.account a ON a.account_id = s.account_id
        CROSS JOIN LATERAL (SELECT billing.today(a.timezone) + v_days AS earliest) e
        CROSS JOIN LATERAL (SELECT CASE WHEN e.earliest <= s.next_bill_date THEN s.next_bill_date
                                        WHEN lower(pc) = e.earliest THEN lower(pc)
                                        ELSE upper(pc) END AS eff
                            FROM billing.period_containing(s.anchor, s.cadence, e.earliest) pc) d
        WHERE i.price_id = migrate_price.from_price_id AND i.ended_on IS NULL
          AND (account_ids IS NULL OR i.account_id = ANY (account_ids))
          AND s.status NOT IN ('canceled', 'paused') AND s.cancel_on IS NULL
          -- a change to the old price that has not begun keeps it
          AND i.started_on < d.eff
        ORDER BY i.account_id, i.subscription_id, i.subscription_item_id
    ), ended AS (
        UPDATE billing.subscription_item x SET ended_on = m.effective_on
        FROM m
        WHERE x.account_id = m.account_id AND x.subscription_item_id = m.old_item
    ), started AS (
        INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id,
                                               quantity, started_on)
        SELECT m.account_id, m.new_item, m.subscription_id, to_price_id, m.quantity, m.effective_on
        FROM m ORDER BY m.account_id, m.new_item
    ), recorded AS (
        INSERT INTO billing.subscription_change (account_id, subscription_item_id, subscription_id, kind,
                                                 replaces_item_id, effective_on)
        SELECT m.account_id, m.new_item, m.subscription_id, 'migration', m.old_item, m.effective_on
        FROM m ORDER BY m.account_id, m.new_item
    )
    INSERT INTO billing.outbox (account_id, event_type, payload)
    SELECT m.account_id, 'subscription.updated',
           jsonb_build_object('subscription_id', m.subscription_id, 'effective_date', m.effective_on,
                              'old_item', m.old_item, 'new_item', m.new_item, 'price_id', to_price_id,
                              'quantity', m.quantity, 'migrated_from_price_id', from_price_id)
    FROM m
    ORDER BY m.account_id, m.new_item;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved > 0 THEN
        PERFORM pg_notify('billing_events', v_moved::text);
    END IF;
    RETURN v_moved;
END $$;
COMMENT ON FUNCTION billing.migrate_price(bigint, bigint, integer, bigint[]) IS
    'moves every running subscription whose open item is on from_price (of account_ids, default all) to to_price '
    '(active, same currency, cadence and usage type) at its first renewal at least notice_days (default '
    'price_change_notice_days) away, as scheduled changes with price-change notices; returns how many; '
    'subscriptions not migrated stay on their price';

-- src/sql/install/77_drafts.sql
-- Draft invoices with a grace period, and one-off charges.
--
-- An account (or its entity) with draft_days > 0 gets the invoices that
-- billing.run_cycle makes as drafts (billing._bill_invoices): status
-- 'draft', no number, nothing posted, not collected, not dunned, not
-- receivable.  For draft_days days a draft stays editable: one-off items
-- are added to it or removed from it (billing.add_invoice_item,
-- billing.remove_invoice_item), usage recorded late for its period and a
-- coupon applied to its subscription are taken in.  It is finalized by hand
-- (billing.finalize_invoice) or by the cycle on its finalize_on day, both
-- through billing._finalize_drafts: the draft's variable lines are computed
-- again (billing._refresh_drafts), it takes its gapless number
-- (billing._take_invoice_numbers) and its issue and due dates, and the one
-- finalization step (billing._finalize_invoices) posts it, applies credit
-- and queues collection.
--
-- What a draft's refresh recomputes, set-based over a batch of drafts, and
-- by the formulas of billing._lines_to_bill (50_invoicing.sql):
--   * usage: the unbilled events of the subscription's items dated before
--     the draft's bill date are marked with the draft (each with the draft
--     of the smallest bill date after it, when a batch holds several drafts
--     of one subscription), and the usage line of each item and usage
--     period they fall in is written again: the period's price with every
--     billed event minus what other invoices billed for it;
--   * discounts: the coupon of the subscription whose time the bill date is
--     in (billing.apply_coupon during the grace period covers the draft),
--     per tax group, percent or amount off allocated;
--   * taxes: per tax rate on the net after discounts, rounded once;
--   * the totals, from the lines.
-- The recurring lines, the pending items and the one-off items stay as
-- they are: what a period costs was decided when the draft was made.
--
-- Lock order: the draft's subscription row, then the draft, then (in the
-- finalization) the number series' counters and the accounts' credit rows.
-- The hand paths wait for each lock in that order; the cycle takes the
-- subscription and the draft with SKIP LOCKED, so it never waits for a
-- session that holds either (that draft is finalized by the next run).  No
-- other money path locks a draft: payments, credit, dunning, voids and
-- collection take open invoices only.


-- What billing.add_invoice_item made: the invoice line (on a draft, or on
-- the invoice made at once) or the pending item (for the next invoice).
CREATE TYPE billing.invoice_item AS (invoice_id bigint, invoice_line_id bigint, pending_item_id bigint);
COMMENT ON TYPE billing.invoice_item IS
    'what billing.add_invoice_item made: invoice_id and invoice_line_id (a draft or an invoice made at once), or '
    'pending_item_id (for the subscription''s next invoice)';

-- ---------------------------------------------------------------------------
-- The settings.

CREATE FUNCTION billing._check_draft_days(days integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF days < 0 OR days > 90 THEN
        RAISE EXCEPTION 'a grace period is 0 to 90 days, not %', days
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass 0 to finalize invoices when they are made.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_draft_days(integer) IS 'internal: 22023 unless 0 <= days <= 90';

CREATE FUNCTION billing.set_entity_draft_days(entity_id bigint, days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_entity(set_entity_draft_days.entity_id);
    IF days IS NULL THEN
        RAISE EXCEPTION 'an entity''s grace period must not be NULL'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass 0 to finalize invoices when they are made.';
    END IF;
    PERFORM billing._check_draft_days(days);
    UPDATE billing.billing_entity e SET draft_days = days WHERE e.entity_id = set_entity_draft_days.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.billing_entity lists the entities.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.set_entity_draft_days(bigint, integer) IS
    'sets the grace period of the entity''s accounts (0 to 90 days; 0: the cycle''s invoices are finalized when '
    'made): the cycle makes drafts that it finalizes that many days later; an account''s own setting wins';

CREATE FUNCTION billing.set_account_draft_days(account_id bigint, days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(set_account_draft_days.account_id);
    PERFORM billing._check_draft_days(days);
    UPDATE billing.account a SET draft_days = days WHERE a.account_id = set_account_draft_days.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.set_account_draft_days(bigint, integer) IS
    'sets the account''s grace period (0 to 90 days: the cycle''s invoices stay drafts that long; NULL: its '
    'entity''s)';

-- ---------------------------------------------------------------------------
-- The refresh of drafts: their usage, discount and tax lines and totals
-- computed again (see the head of this file).  The caller holds the
-- drafts' subscriptions and the drafts.

CREATE FUNCTION billing._refresh_drafts(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_acc bigint[];
    v_inv bigint[];
    v_item bigint[];
    v_date date[];
    v_from date[];
    v_until date[];
BEGIN
    -- 1. late usage: each unbilled event dated before a draft's bill date
    --    goes to the draft of its subscription with the smallest bill date
    --    after it
    WITH d AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.subscription_id, i.bill_date
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        WHERE i.status = 'draft' AND i.subscription_id IS NOT NULL AND i.bill_date IS NOT NULL
    ), ev AS (
        SELECT DISTINCT ON (e.account_id, e.usage_event_id) e.account_id, e.usage_event_id, d.invoice_id
        FROM d
        JOIN billing.subscription_item si ON si.account_id = d.account_id AND si.subscription_id = d.subscription_id
        JOIN billing.usage_event e
          ON e.account_id = si.account_id AND e.subscription_item_id = si.subscription_item_id
         AND e.invoice_id IS NULL AND e.usage_date < d.bill_date
        ORDER BY e.account_id, e.usage_event_id, d.bill_date, d.invoice_id
    ), marked AS (
        UPDATE billing.usage_event e SET invoice_id = ev.invoice_id
        FROM ev
        WHERE e.account_id = ev.account_id AND e.usage_event_id = ev.usage_event_id AND e.invoice_id IS NULL
        RETURNING e.account_id, e.invoice_id, e.subscription_item_id, e.usage_date
    )
    SELECT array_agg(account_id), array_agg(invoice_id), array_agg(subscription_item_id), array_agg(usage_date)
    INTO v_acc, v_inv, v_item, v_date
    FROM marked;

    IF v_acc IS NOT NULL THEN
        -- 2. the usage lines of the periods the events fall in (item and
        --    usage period), written again
        SELECT array_agg(g.account_id), array_agg(g.invoice_id), array_agg(g.subscription_item_id),
               array_agg(lower(g.up)), array_agg(upper(g.up))
        INTO v_acc, v_inv, v_item, v_from, v_until
        FROM (SELECT DISTINCT u.account_id, u.invoice_id, u.subscription_item_id,
                     billing.period_containing(s.anchor, s.cadence, u.usage_date) AS up
              FROM unnest(v_acc, v_inv, v_item, v_date) u(account_id, invoice_id, subscription_item_id, usage_date)
              JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
              JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id) g;
        DELETE FROM billing.invoice_line l
        USING unnest(v_acc, v_inv, v_item, v_from, v_until) g(account_id, invoice_id, subscription_item_id, lo, hi)
        WHERE l.account_id = g.account_id AND l.invoice_id = g.invoice_id AND l.kind = 'usage'
          AND l.subscription_item_id = g.subscription_item_id AND l.period_start >= g.lo AND l.period_start < g.hi;
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id,
                                          subscription_item_id, price_id, quantity, unit_amount, amount,
                                          period_start, period_end, tax_rate_id, tax_inclusive, source)
        SELECT g.account_id, g.invoice_id, 'usage', pr.name || coalesce(' (' || p.nickname || ')', '') || ' usage'
                 || CASE WHEN t.in_trial THEN ' during the trial (not billed)' ELSE '' END,
               i.subscription_id, g.subscription_item_id, p.price_id, x.quantity, p.unit_amount, x.amount,
               x.period_start, x.period_end,
               CASE WHEN a.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, a.tax_rate_id) END, false,
               'usage ' || p.usage_aggregation
        FROM unnest(v_acc, v_inv, v_item, v_from, v_until) g(account_id, invoice_id, subscription_item_id, lo, hi)
        JOIN billing.invoice i ON i.account_id = g.account_id AND i.invoice_id = g.invoice_id
        JOIN billing.account a ON a.account_id = i.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        JOIN billing.subscription_item si
          ON si.account_id = g.account_id AND si.subscription_item_id = g.subscription_item_id
        JOIN billing.price p ON p.price_id = si.price_id
        JOIN billing.product pr ON pr.product_id = p.product_id
        JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        -- the trial's usage is free unless the price bills it: each part of
        -- the period that has events of this draft gets its line, by the
        -- usage rule of the cycle (billing._usage_line) over every event
        -- already on an invoice, the ones just marked included; this
        -- draft's own line is gone, so what others billed is what counts
        CROSS JOIN LATERAL (SELECT CASE WHEN NOT p.bill_trial_usage THEN s.trial_end END AS free_until) f
        CROSS JOIN LATERAL (VALUES (false), (true)) t(in_trial)
        CROSS JOIN LATERAL billing._usage_line(g.account_id, g.subscription_item_id, p.price_id,
                                               daterange(g.lo, g.hi), i.bill_date, si.started_on, si.ended_on,
                                               f.free_until, t.in_trial, NULL, i.currency, e.rounding) x
        WHERE (f.free_until IS NULL AND NOT t.in_trial)
           OR (f.free_until IS NOT NULL
               AND EXISTS (SELECT FROM billing.usage_event y
                           WHERE y.account_id = g.account_id AND y.subscription_item_id = g.subscription_item_id
                             AND y.invoice_id = g.invoice_id
                             AND y.usage_date >= g.lo AND y.usage_date < least(g.hi, i.bill_date)
                             AND (y.usage_date < f.free_until) = t.in_trial))
        ORDER BY g.account_id, g.invoice_id, g.subscription_item_id, g.lo, t.in_trial DESC;
    END IF;

    -- 3. the discount and tax lines, computed again from the charges
    DELETE FROM billing.invoice_line l
    USING unnest(accounts, invoices) u(account_id, invoice_id)
    JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id AND i.status = 'draft'
    WHERE l.account_id = u.account_id AND l.invoice_id = u.invoice_id AND l.kind IN ('discount', 'tax');
    WITH d AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.currency, e.rounding,
               -- the coupon, if the draft's bill date is in its time (the
               -- rule of billing._bill_dates)
               CASE WHEN i.bill_date >= s.coupon_from AND (s.coupon_until IS NULL OR i.bill_date < s.coupon_until)
                    THEN s.coupon_id END AS coupon_id
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        JOIN billing.account a ON a.account_id = i.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
        LEFT JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
        WHERE i.status = 'draft'
    ), groups AS MATERIALIZED (
        SELECT d.account_id, d.invoice_id, d.currency, d.rounding, d.coupon_id, l.tax_rate_id,
               billing.sum(l.amount) AS net,
               row_number() OVER () AS group_key
        FROM d
        JOIN billing.invoice_line l
          ON l.account_id = d.account_id AND l.invoice_id = d.invoice_id AND l.kind NOT IN ('discount', 'tax')
        GROUP BY 1, 2, 3, 4, 5, 6
    ), new_lines AS (
        -- the discount and tax rule of the cycle (billing._discount_and_tax)
        SELECT g.account_id, g.invoice_id, CASE a.kind WHEN 'discount' THEN 4 ELSE 5 END AS sort, a.kind,
               a.description, a.unit_amount, a.amount, a.tax_rate_id, a.tax_inclusive, a.source
        FROM (SELECT array_agg(g.group_key) AS k, array_agg(g.invoice_id) AS i, array_agg(g.currency) AS c,
                     array_agg(g.rounding) AS r, array_agg(g.coupon_id) AS cp, array_agg(g.tax_rate_id) AS t,
                     array_agg(g.net) AS n
              FROM groups g) x
        CROSS JOIN LATERAL billing._discount_and_tax(x.k, x.i, x.c, x.r, x.cp, x.t, x.n) a
        JOIN groups g ON g.group_key = a.group_key
    )
    INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, unit_amount, amount, tax_rate_id,
                                      tax_inclusive, source)
    SELECT n.account_id, n.invoice_id, n.kind, n.description, n.unit_amount, n.amount, n.tax_rate_id,
           n.tax_inclusive, n.source
    FROM new_lines n
    ORDER BY n.account_id, n.invoice_id, n.sort, n.tax_rate_id NULLS FIRST;

    -- 4. the totals, from the lines (nothing is paid on a draft)
    UPDATE billing.invoice i
    SET subtotal = coalesce(l.subtotal, z.zero), discount = coalesce(l.discount, z.zero),
        tax = coalesce(l.tax, z.zero), total = coalesce(l.total, z.zero),
        amount_due = coalesce(l.total, z.zero) - i.amount_paid
    FROM unnest(accounts, invoices) u(account_id, invoice_id)
    CROSS JOIN LATERAL (SELECT billing.from_minor_units(0, x.currency) AS zero FROM billing.invoice x
                        WHERE x.account_id = u.account_id AND x.invoice_id = u.invoice_id) z
    LEFT JOIN LATERAL (
        SELECT billing.sum(x.amount) FILTER (WHERE x.kind NOT IN ('discount', 'tax')) AS subtotal,
               billing.sum(x.amount) FILTER (WHERE x.kind = 'discount') AS discount,
               billing.sum(x.amount) FILTER (WHERE x.kind = 'tax') AS tax,
               billing.sum(x.amount) FILTER (WHERE NOT x.tax_inclusive) AS total
        FROM billing.invoice_line x WHERE x.account_id = u.account_id AND x.invoice_id = u.invoice_id
    ) l ON true
    WHERE i.account_id = u.account_id AND i.invoice_id = u.invoice_id AND i.status = 'draft';
END $$;
COMMENT ON FUNCTION billing._refresh_drafts(bigint[], bigint[]) IS
    'internal: computes the usage (late events included), discount and tax lines and the totals of these drafts '
    'again, by the formulas of billing._lines_to_bill; the caller holds their subscriptions and the drafts';

-- ---------------------------------------------------------------------------
-- The finalization of drafts, written once: billing.finalize_invoice,
-- billing.add_invoice_item (invoice_now) and the cycle call it.  The
-- caller holds the drafts' subscriptions and the drafts, all of status
-- draft.  issue_dates: the day each is issued (its due date follows from
-- the account's payment terms).

CREATE FUNCTION billing._finalize_drafts(accounts bigint[], invoices bigint[], issue_dates date[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(cardinality(invoices), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM billing._refresh_drafts(accounts, invoices);
    -- the numbers (billing._take_invoice_numbers: the series' counter rows,
    -- before the credit rows of the finalization step), the status and the
    -- dates
    WITH x AS MATERIALIZED (
        SELECT u.account_id, u.invoice_id, u.issue_date, i.entity_id, a.payment_terms_days,
               row_number() OVER (ORDER BY u.account_id, u.invoice_id) AS ord
        FROM unnest(accounts, invoices, issue_dates) u(account_id, invoice_id, issue_date)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        JOIN billing.account a ON a.account_id = u.account_id
        WHERE i.status = 'draft'
    ), numbers AS MATERIALIZED (
        SELECT billing._take_invoice_numbers(array_agg(entity_id ORDER BY ord), array_agg(issue_date ORDER BY ord))
                   AS number
        FROM x
    )
    UPDATE billing.invoice i
    SET number = m.number[x.ord],
        status = CASE WHEN billing.to_numeric(i.total) = 0 THEN 'paid' ELSE 'open' END,
        issue_date = x.issue_date, due_date = x.issue_date + x.payment_terms_days,
        finalized_at = billing.now()
    FROM x CROSS JOIN numbers m
    WHERE i.account_id = x.account_id AND i.invoice_id = x.invoice_id;
    -- the one finalization step: event, ledger, credit, collection
    PERFORM billing._finalize_invoices(accounts, invoices);
END $$;
COMMENT ON FUNCTION billing._finalize_drafts(bigint[], bigint[], date[]) IS
    'internal: finalizes these (locked) drafts, issued on these days: computes their variable lines again, '
    'numbers them, sets status and dates, and calls the finalization step billing._finalize_invoices (which '
    'writes invoice.finalized)';

-- A draft of the account, with its subscription and then itself locked
-- (the lock order above); P0002 when there is none, 55000 when the invoice
-- is no longer a draft.
CREATE FUNCTION billing._lock_draft(account_id bigint, invoice_id bigint, action text)
RETURNS billing.invoice LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    i billing.invoice;
BEGIN
    SELECT * INTO i FROM billing.invoice x
    WHERE x.account_id = _lock_draft.account_id AND x.invoice_id = _lock_draft.invoice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % of account % does not exist', coalesce(invoice_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice lists the account''s invoices.';
    END IF;
    IF i.subscription_id IS NOT NULL THEN
        PERFORM billing._lock_subscription(i.account_id, i.subscription_id);
    END IF;
    SELECT * INTO i FROM billing.invoice x
    WHERE x.account_id = _lock_draft.account_id AND x.invoice_id = _lock_draft.invoice_id
    FOR UPDATE;
    IF i.status <> 'draft' THEN
        RAISE EXCEPTION 'invoice % is % (number %): only a draft can %', i.invoice_id, i.status, i.number, action
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A finalized invoice changes only by a credit note or a void; a one-off charge can go on '
                         'the next invoice.';
    END IF;
    RETURN i;
END $$;
COMMENT ON FUNCTION billing._lock_draft(bigint, bigint, text) IS
    'internal: locks a draft''s subscription and then the draft; P0002 if there is none, 55000 if it is no '
    'longer a draft';

CREATE FUNCTION billing.finalize_invoice(account_id bigint, invoice_id bigint)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    i billing.invoice;
    v_today date;
    v_number text;
BEGIN
    PERFORM billing._authorize_account(finalize_invoice.account_id);
    i := billing._lock_draft(account_id, invoice_id, 'be finalized');
    SELECT billing.today(a.timezone) INTO v_today FROM billing.account a WHERE a.account_id = i.account_id;
    -- issued today, never before the day it was drafted
    PERFORM billing._finalize_drafts(ARRAY[i.account_id], ARRAY[i.invoice_id], ARRAY[greatest(v_today, i.issue_date)]);
    SELECT x.number INTO v_number FROM billing.invoice x
    WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id;
    RETURN v_number;
END $$;
COMMENT ON FUNCTION billing.finalize_invoice(bigint, bigint) IS
    'finalizes a draft before its grace period ends: its usage, discounts and taxes computed again, its number, '
    'issue date today, due date by the payment terms, posted, paid from credit, queued for collection; returns '
    'the number; 55000 if it is not a draft';

-- ---------------------------------------------------------------------------
-- One-off charges.

CREATE FUNCTION billing.add_invoice_item(account_id bigint, amount billing.amount, description text,
                                         subscription_id bigint DEFAULT NULL, invoice_id bigint DEFAULT NULL,
                                         invoice_now boolean DEFAULT false)
RETURNS billing.invoice_item LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    d billing.invoice;
    s billing.subscription;
    r billing.invoice_item;
    v_today date;
    v_tax bigint;
    v_count bigint;
    v_sub bigint;
BEGIN
    PERFORM billing._authorize_account(add_invoice_item.account_id);
    a := billing._payment_account(account_id);
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0 THEN
        RAISE EXCEPTION 'a one-off charge is a positive amount in the account''s currency %, not %', a.currency,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Money owed to the customer is a credit note (billing.issue_credit_note).';
    END IF;
    IF description IS NULL OR btrim(description) = '' THEN
        RAISE EXCEPTION 'a one-off charge needs a description'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'It is the line the customer reads: "Installation".';
    END IF;
    IF invoice_id IS NOT NULL AND coalesce(invoice_now, false) THEN
        RAISE EXCEPTION 'a one-off charge goes on a draft (invoice_id) or on an invoice of its own (invoice_now), '
                        'not both'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass one of them, or neither for the next invoice.';
    END IF;
    v_tax := CASE WHEN a.tax_exempt THEN NULL ELSE a.tax_rate_id END;

    IF invoice_id IS NOT NULL THEN
        -- on a draft: the line, then the draft's discounts, taxes and totals
        d := billing._lock_draft(a.account_id, invoice_id, 'take items');
        IF subscription_id IS NOT NULL AND subscription_id IS DISTINCT FROM d.subscription_id THEN
            RAISE EXCEPTION 'draft % bills subscription %, not %', d.invoice_id,
                coalesce(d.subscription_id::text, 'none'), subscription_id
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave subscription_id out.';
        END IF;
        INSERT INTO billing.invoice_line AS l (account_id, invoice_id, kind, description, subscription_id, quantity,
                                               unit_amount, amount, tax_rate_id, source)
        VALUES (a.account_id, d.invoice_id, 'one_off', description, d.subscription_id, 1, billing.to_numeric(amount),
                amount, v_tax, 'one_off')
        RETURNING l.invoice_id, l.invoice_line_id INTO r.invoice_id, r.invoice_line_id;
        PERFORM billing._refresh_drafts(ARRAY[a.account_id], ARRAY[d.invoice_id]);
        RETURN r;
    END IF;

    IF subscription_id IS NOT NULL THEN
        s := billing._lock_subscription(a.account_id, subscription_id);
    END IF;

    IF coalesce(invoice_now, false) THEN
        -- an invoice of its own, billing_reason manual: made as a draft and
        -- finalized at once, by the one finalization of drafts (its tax
        -- computed by the same rule)
        v_today := billing.today(a.timezone);
        INSERT INTO billing.invoice AS i (account_id, entity_id, subscription_id, status, billing_reason, currency,
                                          subtotal, discount, tax, total, amount_paid, amount_due, issue_date,
                                          due_date, finalize_on)
        SELECT a.account_id, a.entity_id, s.subscription_id, 'draft', 'manual', a.currency, z, z, z, z, z, z,
               v_today, v_today + a.payment_terms_days, v_today
        FROM billing.from_minor_units(0, a.currency) z
        RETURNING i.invoice_id INTO r.invoice_id;
        INSERT INTO billing.invoice_line AS l (account_id, invoice_id, kind, description, subscription_id, quantity,
                                               unit_amount, amount, tax_rate_id, source)
        VALUES (a.account_id, r.invoice_id, 'one_off', description, s.subscription_id, 1, billing.to_numeric(amount),
                amount, v_tax, 'one_off')
        RETURNING l.invoice_line_id INTO r.invoice_line_id;
        PERFORM billing._finalize_drafts(ARRAY[a.account_id], ARRAY[r.invoice_id], ARRAY[v_today]);
        RETURN r;
    END IF;

    -- for the next invoice of the subscription (the account's only one
    -- still billed, when none is named)
    IF subscription_id IS NULL THEN
        SELECT count(*), min(x.subscription_id) INTO v_count, v_sub FROM billing.subscription x
        WHERE x.account_id = a.account_id AND x.next_bill_date IS NOT NULL;
        IF v_count <> 1 THEN
            RAISE EXCEPTION 'account % has % subscriptions still billed: name the one whose next invoice takes the '
                            'charge', a.account_id, v_count
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass subscription_id, or invoice_now => true for an invoice of its own.';
        END IF;
        s := billing._lock_subscription(a.account_id, v_sub);
    END IF;
    IF s.next_bill_date IS NULL THEN
        RAISE EXCEPTION 'subscription % is %: it has no next invoice', s.subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Pass invoice_now => true for an invoice of its own.';
    END IF;
    INSERT INTO billing.pending_item AS p (account_id, subscription_id, kind, description, quantity, unit_amount,
                                           amount)
    VALUES (a.account_id, s.subscription_id, 'one_off', description, 1, billing.to_numeric(amount), amount)
    RETURNING p.pending_item_id INTO r.pending_item_id;
    RETURN r;
END $$;
COMMENT ON FUNCTION billing.add_invoice_item(bigint, billing.amount, text, bigint, bigint, boolean) IS
    'a one-off charge (consulting, installation, a fee) of a positive amount in the account''s currency, taxed at '
    'the account''s rate: on a draft (invoice_id; its discounts, taxes and totals follow), on an invoice of its own '
    'finalized at once (invoice_now; billing_reason manual), or else for the next invoice of the subscription (the '
    'account''s only one still billed by default)';

-- The same with the amount as a number in the account's currency
-- (billing._account_amount: exact, or 22023).
CREATE FUNCTION billing.add_invoice_item(account_id bigint, amount numeric, description text,
                                         subscription_id bigint DEFAULT NULL, invoice_id bigint DEFAULT NULL,
                                         invoice_now boolean DEFAULT false)
RETURNS billing.invoice_item LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(add_invoice_item.account_id);
    RETURN billing.add_invoice_item(account_id, billing._account_amount(account_id, amount), description,
                                    subscription_id, invoice_id, invoice_now);
END $$;
COMMENT ON FUNCTION billing.add_invoice_item(bigint, numeric, text, bigint, bigint, boolean) IS
    'add_invoice_item with the amount as a number in the account''s currency: add_invoice_item(1, 150, ''Installation'')';

CREATE FUNCTION billing.remove_invoice_item(account_id bigint, invoice_id bigint, invoice_line_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    d billing.invoice;
    l billing.invoice_line;
BEGIN
    PERFORM billing._authorize_account(remove_invoice_item.account_id);
    d := billing._lock_draft(account_id, invoice_id, 'lose items');
    SELECT * INTO l FROM billing.invoice_line x
    WHERE x.account_id = d.account_id AND x.invoice_id = d.invoice_id
      AND x.invoice_line_id = remove_invoice_item.invoice_line_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % has no line %', d.invoice_id, coalesce(invoice_line_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice_line lists the draft''s lines.';
    END IF;
    IF l.kind <> 'one_off' THEN
        RAISE EXCEPTION 'line % of invoice % is a % line: only one-off items can be removed', l.invoice_line_id,
            d.invoice_id, l.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The subscription''s lines follow from the subscription: change it instead.';
    END IF;
    DELETE FROM billing.invoice_line x
    WHERE x.account_id = l.account_id AND x.invoice_id = l.invoice_id AND x.invoice_line_id = l.invoice_line_id;
    -- a one-off that waited for this invoice is withdrawn with its line
    DELETE FROM billing.pending_item p
    WHERE p.account_id = l.account_id AND p.invoice_id = l.invoice_id AND l.source = 'pending_item ' || p.pending_item_id;
    PERFORM billing._refresh_drafts(ARRAY[d.account_id], ARRAY[d.invoice_id]);
END $$;
COMMENT ON FUNCTION billing.remove_invoice_item(bigint, bigint, bigint) IS
    'removes a one-off item from a draft (its discounts, taxes and totals follow); 55000 if the invoice is not a '
    'draft, 22023 for a line of another kind';

-- ---------------------------------------------------------------------------
-- The cycle's part: one committed batch of the drafts whose grace period has
-- passed (finalize_on reached by as_of, or by the account's today at at),
-- after the key where the previous batch stopped.  The drafts and their
-- subscriptions are taken SKIP LOCKED.  If the batch fails, each draft is
-- finalized on its own; those that still fail are logged in errors and
-- stay drafts.
CREATE FUNCTION billing._finalize_drafts_past_grace(as_of date, at timestamptz, batch_size integer,
                                             INOUT after_account bigint, INOUT after_invoice bigint,
                                             OUT picked integer, OUT finalized integer, OUT errors jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_invoices bigint[];
    v_dates date[];
    v_state text;
    v_msg text;
BEGIN
    PERFORM billing._authorize_all('run the billing cycle');
    errors := '[]';
    finalized := 0;
    SELECT array_agg(x.account_id ORDER BY x.account_id, x.invoice_id),
           array_agg(x.invoice_id ORDER BY x.account_id, x.invoice_id),
           array_agg(x.d ORDER BY x.account_id, x.invoice_id)
    INTO v_accounts, v_invoices, v_dates
    FROM (SELECT i.account_id, i.invoice_id, greatest(t.d, i.issue_date) AS d
          FROM billing.invoice i
          JOIN billing.account a ON a.account_id = i.account_id
          JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
          CROSS JOIN LATERAL (SELECT coalesce(_finalize_drafts_past_grace.as_of, billing.today(a.timezone, _finalize_drafts_past_grace.at)) AS d) t
          WHERE i.status = 'draft'
            AND (i.account_id, i.invoice_id) > (coalesce(after_account, 0), coalesce(after_invoice, 0))
            AND i.finalize_on <= t.d
          ORDER BY i.account_id, i.invoice_id
          LIMIT batch_size
          FOR UPDATE OF s, i SKIP LOCKED) x;
    picked := coalesce(cardinality(v_invoices), 0);
    IF picked = 0 THEN
        RETURN;
    END IF;
    after_account := v_accounts[picked];
    after_invoice := v_invoices[picked];
    BEGIN
        PERFORM billing._finalize_drafts(v_accounts, v_invoices, v_dates);
        finalized := picked;
    EXCEPTION WHEN OTHERS THEN
        FOR k IN 1 .. picked LOOP
            BEGIN
                PERFORM billing._finalize_drafts(ARRAY[v_accounts[k]], ARRAY[v_invoices[k]], ARRAY[v_dates[k]]);
                finalized := finalized + 1;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                errors := errors || jsonb_build_object('account_id', v_accounts[k], 'invoice_id', v_invoices[k],
                                                       'sqlstate', v_state, 'message', v_msg);
            END;
        END LOOP;
    END;
END $$;
COMMENT ON FUNCTION billing._finalize_drafts_past_grace(date, timestamptz, integer, bigint, bigint) IS
    'internal: one committed batch of billing.run_cycle: finalizes the drafts whose grace period has passed '
    '(SKIP LOCKED, after the given key), issued on the run''s day; logs those that fail';

-- The cycle's batch of drafts past their grace period as a step of
-- billing._run_in_batches.
CREATE FUNCTION billing._cycle_drafts_step(run_id bigint, as_of date, at timestamptz, batch_size integer, state jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('run the billing cycle');
    SELECT CASE WHEN r.picked > 0 THEN jsonb_build_object(
               'cursor', jsonb_build_object('after_account', r.after_account, 'after_invoice', r.after_invoice),
               'counts', jsonb_build_object('drafts_finalized', r.finalized),
               'errors', r.errors, 'notify', r.finalized) END
    FROM billing._finalize_drafts_past_grace(as_of, at, batch_size, (state #>> '{cursor,after_account}')::bigint,
                                             (state #>> '{cursor,after_invoice}')::bigint) r
$$;
COMMENT ON FUNCTION billing._cycle_drafts_step(bigint, date, timestamptz, integer, jsonb) IS
    'internal: one batch of run_cycle''s drafts past their grace period (billing._finalize_drafts_past_grace) as a '
    'step of billing._run_in_batches';

-- src/sql/install/78_dunning.sql
-- Dunning: reminders, payment retries, late fees, suspension and
-- write-off of unpaid invoices, driven by policies that are data, and
-- advance notice of scheduled price changes.
--
-- A policy is an ordered list of steps relative to an invoice's due date
-- (day_offset -3 = three days before, +7 = a week after).  Every open
-- invoice with something due follows the policy of its account (an
-- override in billing.account_dunning_policy, else the default policy),
-- fixed when its dunning case opens.  billing.run_dunning takes each step
-- whose day has come exactly once per invoice: the primary key of
-- billing.dunning_action (account_id, invoice_id, step_id) is the claim, so
-- a run repeated, run in two sessions at once, or catching up after
-- downtime never takes a step twice.
--
-- Lock order (70_payments.sql): a batch takes the number series rows it may
-- need for late-fee invoices (in entity, series order, as the cycle does),
-- then the accounts' credit rows (in account order), then works on their
-- invoices; so it neither deadlocks with payments (credit row first) nor
-- with the cycle (series, then credit rows).  Subscription statuses are
-- changed in a transaction of their own after the batch commits: the cycle
-- holds subscription rows while it waits for series and credit rows.
--
-- A late fee is an invoice of its own (billing_reason 'late_fee', one line
-- of kind 'late_fee', no tax), finalized like every invoice: it takes the
-- next number of the account's series, posts receivable / revenue to the
-- ledger (invoice_finalized), consumes unapplied credit and is queued for
-- collection.  The overdue invoice itself never changes (invariant 3).  A
-- late-fee invoice is dunned like any invoice, except that it is never
-- charged a late fee itself.

CREATE TABLE billing.dunning_policy (
    policy_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    is_default  boolean NOT NULL DEFAULT false,
    description text,
    created_at  timestamptz NOT NULL DEFAULT billing.now()
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.dunning_policy ADD CONSTRAINT dunning_policy_no_card_number CHECK (
    billing._no_card_number(name, 'billing.dunning_policy.name')
    AND billing._no_card_number(description, 'billing.dunning_policy.description'));
COMMENT ON TABLE billing.dunning_policy IS
    'a dunning policy: its steps (billing.dunning_step) say what happens how many days before or after an invoice''s '
    'due date; one policy is the default, accounts may have their own (billing.account_dunning_policy)';
CREATE UNIQUE INDEX dunning_policy_one_default ON billing.dunning_policy (is_default) WHERE is_default;

-- Fee amounts are numeric in the invoice currency's units (like prices):
-- fee = min(fee_cap, fee_fixed + fee_percent% of the amount due), rounded
-- once by the entity's rounding mode.  The grace period of a fee is its day_offset.
CREATE TABLE billing.dunning_step (
    step_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    policy_id   bigint NOT NULL REFERENCES billing.dunning_policy,
    day_offset  integer NOT NULL CHECK (day_offset BETWEEN -365 AND 3650),
    action      text NOT NULL CHECK (action IN ('remind', 'retry_payment', 'late_fee', 'suspend', 'write_off')),
    name        text NOT NULL CHECK (name <> ''),
    fee_fixed   numeric CHECK (fee_fixed >= 0),
    fee_percent numeric CHECK (fee_percent > 0 AND fee_percent <= 100),
    fee_cap     numeric CHECK (fee_cap > 0),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT billing.now(),
    UNIQUE (policy_id, day_offset, action),
    CHECK ((action = 'late_fee') = (fee_fixed IS NOT NULL OR fee_percent IS NOT NULL)),
    CHECK (action = 'late_fee' OR fee_cap IS NULL)
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.dunning_step ADD CONSTRAINT dunning_step_no_card_number CHECK (
    billing._no_card_number(name, 'billing.dunning_step.name'));
COMMENT ON TABLE billing.dunning_step IS
    'a step of a dunning policy: on due date + day_offset, remind (outbox event for an email), retry_payment (queue '
    'a collection attempt), late_fee (a late-fee invoice: fee_fixed + fee_percent of the amount due, at most '
    'fee_cap, in the currency''s units), suspend (the account''s subscriptions) or write_off; name is the template '
    'key of a reminder; a step that was taken cannot be deleted, set active = false instead';
COMMENT ON COLUMN billing.dunning_step.day_offset IS
    'days relative to the invoice''s due date: negative before, positive after; for a late fee, its grace period';

-- Per-account overrides of the default policy.
CREATE TABLE billing.account_dunning_policy (
    account_id bigint PRIMARY KEY REFERENCES billing.account,
    policy_id  bigint NOT NULL REFERENCES billing.dunning_policy
);
COMMENT ON TABLE billing.account_dunning_policy IS 'accounts that follow another dunning policy than the default';

-- The dunning of one invoice.  status: active (steps are taken),
-- recovered (paid), written_off, closed (voided, or closed by hand with
-- billing.close_dunning).  suspended: a suspend step was taken; the
-- account's subscriptions stay suspended while such a case is active or
-- written off.
CREATE TABLE billing.dunning_case (
    account_id  bigint NOT NULL,
    invoice_id  bigint NOT NULL,
    policy_id   bigint NOT NULL REFERENCES billing.dunning_policy,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'recovered', 'written_off', 'closed')),
    suspended   boolean NOT NULL DEFAULT false,
    opened_on   date NOT NULL,
    closed_on   date,
    close_reason text,
    PRIMARY KEY (account_id, invoice_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice,
    CHECK ((status = 'active') = (closed_on IS NULL))
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.dunning_case ADD CONSTRAINT dunning_case_no_card_number CHECK (
    billing._no_card_number(close_reason, 'billing.dunning_case.close_reason'));
COMMENT ON TABLE billing.dunning_case IS
    'the dunning of one invoice: its policy (fixed when it opens), status active, recovered (paid), written_off or '
    'closed, and whether it suspended the account''s subscriptions';
CREATE INDEX dunning_case_active ON billing.dunning_case (account_id) WHERE status = 'active';

-- One row per step taken for an invoice: the primary key is the
-- exactly-once guarantee.
CREATE TABLE billing.dunning_action (
    account_id     bigint NOT NULL,
    invoice_id     bigint NOT NULL,
    step_id        bigint NOT NULL REFERENCES billing.dunning_step,
    day_offset     integer NOT NULL,
    action         text NOT NULL,
    due_on         date NOT NULL,
    taken_on       date NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT billing.now(),
    dunning_run_id bigint,
    amount_due     billing.amount NOT NULL,
    outcome        text NOT NULL
                   CHECK (outcome IN ('pending', 'sent', 'superseded', 'queued', 'already_queued',
                                      'no_payment_method', 'charged', 'no_fee', 'suspended', 'written_off')),
    fee_invoice_id bigint,
    PRIMARY KEY (account_id, invoice_id, step_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice
);
COMMENT ON TABLE billing.dunning_action IS
    'a dunning step taken for an invoice, once (the primary key): when it was due and taken, the amount due then, '
    'and its outcome (sent, superseded by a later reminder due the same run, queued, charged, suspended, ...)';
COMMENT ON COLUMN billing.dunning_action.outcome IS
    'remind: sent or superseded (a later reminder was due in the same run); retry_payment: queued, already_queued, '
    'no_payment_method or superseded; late_fee: charged (fee_invoice_id) or no_fee; suspend: suspended; '
    'write_off: written_off';
-- the steps a batch claimed and has not carried out yet (transient)
CREATE INDEX dunning_action_pending ON billing.dunning_action (dunning_run_id, action) WHERE outcome = 'pending';

-- One row per call of billing.run_dunning.
CREATE TABLE billing.dunning_run (
    dunning_run_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    as_of          date,
    at             timestamptz NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'done_with_errors')),
    batches        integer NOT NULL DEFAULT 0,
    accounts       integer NOT NULL DEFAULT 0,
    actions        integer NOT NULL DEFAULT 0,
    status_changes integer NOT NULL DEFAULT 0,
    notices        integer NOT NULL DEFAULT 0,
    errors         jsonb NOT NULL DEFAULT '[]',
    duration       interval GENERATED ALWAYS AS (finished_at - started_at) STORED
);
COMMENT ON TABLE billing.dunning_run IS
    'the log of billing.run_dunning: as_of (NULL: each account''s today), accounts looked at, steps taken, '
    'subscription status changes, price-change notices, errors; a run killed midway stays ''running''';

-- Advance notice of scheduled price changes: one row per new item notified.
CREATE TABLE billing.price_change_notice (
    account_id           bigint NOT NULL,
    subscription_item_id bigint NOT NULL,
    notified_on          date NOT NULL,
    PRIMARY KEY (account_id, subscription_item_id),
    FOREIGN KEY (account_id, subscription_item_id) REFERENCES billing.subscription_item
);
COMMENT ON TABLE billing.price_change_notice IS
    'the scheduled price changes (new subscription items starting later) whose notice event was written, once each';

-- Settings.  No row means the defaults (a row the extension inserted would
-- clash with the dumped one on restore).
CREATE TABLE billing.dunning_setting (
    setting_id               integer PRIMARY KEY DEFAULT 1 CHECK (setting_id = 1),
    price_change_notice_days integer NOT NULL DEFAULT 30 CHECK (price_change_notice_days BETWEEN 0 AND 365)
);
COMMENT ON TABLE billing.dunning_setting IS
    'dunning settings: price_change_notice_days, how long before a scheduled price change its notice is written '
    '(default 30)';

-- The dunning work queue, open invoices by account, is the partial index
-- invoice_open (account_id, due_date) WHERE status = 'open' of 82_reports.sql.

SELECT pg_catalog.pg_extension_config_dump('billing.dunning_policy', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_step', '');
SELECT pg_catalog.pg_extension_config_dump('billing.account_dunning_policy', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_case', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_action', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_run', '');
SELECT pg_catalog.pg_extension_config_dump('billing.price_change_notice', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_setting', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_policy_policy_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_step_step_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_run_dunning_run_id_seq', '');

-- ---------------------------------------------------------------------------
-- Policies.

-- The standard steps: remind, retry, late fee, suspend, write off.
CREATE FUNCTION billing.standard_dunning_steps() RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT '[{"day_offset": -3, "action": "remind", "name": "reminder_before_due"},
             {"day_offset": 1, "action": "remind", "name": "reminder_overdue"},
             {"day_offset": 3, "action": "retry_payment", "name": "retry_payment"},
             {"day_offset": 7, "action": "late_fee", "name": "late_fee", "fee_percent": 2},
             {"day_offset": 14, "action": "suspend", "name": "suspension"},
             {"day_offset": 30, "action": "write_off", "name": "write_off"}]'::jsonb
$$;
COMMENT ON FUNCTION billing.standard_dunning_steps() IS
    'the steps of the standard policy: -3 remind, +1 remind, +3 retry the payment, +7 late fee of 2% of the amount '
    'due, +14 suspend, +30 write off';

CREATE FUNCTION billing.create_dunning_policy(name text, steps jsonb DEFAULT NULL, is_default boolean DEFAULT false,
                                              description text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
    v_steps jsonb := coalesce(steps, billing.standard_dunning_steps());
BEGIN
    PERFORM billing._authorize_all('create a dunning policy');
    IF jsonb_typeof(v_steps) <> 'array' OR EXISTS (
        SELECT FROM jsonb_array_elements(v_steps) e
        WHERE jsonb_typeof(e) <> 'object' OR NOT e ? 'day_offset' OR NOT e ? 'action'
           OR e->>'action' NOT IN ('remind', 'retry_payment', 'late_fee', 'suspend', 'write_off')) THEN
        RAISE EXCEPTION 'dunning steps must be a jsonb array of {"day_offset", "action", ...}, not %', v_steps
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Actions: remind, retry_payment, late_fee (fee_fixed, fee_percent, fee_cap), suspend, write_off.';
    END IF;
    IF coalesce(is_default, false) THEN
        UPDATE billing.dunning_policy p SET is_default = false WHERE p.is_default;
    END IF;
    INSERT INTO billing.dunning_policy AS p (name, is_default, description)
    VALUES (name, coalesce(is_default, false), description)
    RETURNING p.policy_id INTO v_id;
    INSERT INTO billing.dunning_step (policy_id, day_offset, action, name, fee_fixed, fee_percent, fee_cap)
    SELECT v_id, (e->>'day_offset')::integer, e->>'action', coalesce(e->>'name', e->>'action'),
           (e->>'fee_fixed')::numeric, (e->>'fee_percent')::numeric, (e->>'fee_cap')::numeric
    FROM jsonb_array_elements(v_steps) WITH ORDINALITY x(e, ord)
    ORDER BY (e->>'day_offset')::integer, ord;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_dunning_policy(text, jsonb, boolean, text) IS
    'creates a dunning policy with steps (jsonb array of {"day_offset", "action", "name", "fee_fixed", "fee_percent", '
    '"fee_cap"}; NULL: the standard steps), optionally as the default; returns its id';

-- The default policy; the standard one is created the first time none is.
CREATE FUNCTION billing._default_dunning_policy() RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT p.policy_id INTO v_id FROM billing.dunning_policy p WHERE p.is_default;
    IF v_id IS NULL THEN
        BEGIN
            v_id := billing.create_dunning_policy(
                CASE WHEN EXISTS (SELECT FROM billing.dunning_policy p WHERE p.name = 'standard')
                     THEN 'standard ' || billing.now()::date ELSE 'standard' END,
                NULL, true, 'created by the first run_dunning: the standard steps');
        EXCEPTION WHEN unique_violation THEN
            -- another session created it at the same moment
            SELECT p.policy_id INTO v_id FROM billing.dunning_policy p WHERE p.is_default;
        END;
    END IF;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing._default_dunning_policy() IS
    'internal: the default dunning policy''s id; creates the standard policy as the default when there is none';

CREATE FUNCTION billing.set_dunning_policy(account_id bigint, policy text)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_policy bigint;
BEGIN
    PERFORM billing._authorize_account(set_dunning_policy.account_id);
    PERFORM billing._payment_account(account_id);
    IF policy IS NULL THEN
        DELETE FROM billing.account_dunning_policy x WHERE x.account_id = set_dunning_policy.account_id;
        RETURN;
    END IF;
    SELECT p.policy_id INTO v_policy FROM billing.dunning_policy p WHERE p.name = policy;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'dunning policy "%" does not exist', policy
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_dunning_policy.';
    END IF;
    INSERT INTO billing.account_dunning_policy AS x (account_id, policy_id) VALUES (account_id, v_policy)
    ON CONFLICT ON CONSTRAINT account_dunning_policy_pkey DO UPDATE SET policy_id = excluded.policy_id;
END $$;
COMMENT ON FUNCTION billing.set_dunning_policy(bigint, text) IS
    'makes an account follow the named dunning policy (NULL: the default again); invoices already in dunning keep '
    'the policy they started with';

CREATE FUNCTION billing.set_price_change_notice_days(days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('change the price change notice days');
    IF days IS NULL OR days < 0 OR days > 365 THEN
        RAISE EXCEPTION 'price change notice days must be 0 to 365, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 30.';
    END IF;
    INSERT INTO billing.dunning_setting AS s (setting_id, price_change_notice_days) VALUES (1, days)
    ON CONFLICT ON CONSTRAINT dunning_setting_pkey DO UPDATE SET price_change_notice_days = excluded.price_change_notice_days;
END $$;
COMMENT ON FUNCTION billing.set_price_change_notice_days(integer) IS
    'sets how many days before a scheduled price change run_dunning writes its subscription.price_change_notice event';

-- ---------------------------------------------------------------------------
-- Subscription statuses follow the account's dunning: suspended while a
-- case that suspended is active or written off, past_due while an active
-- case's invoice is past its due date, active otherwise.  Only active,
-- past_due and suspended subscriptions move; a restored subscription bills
-- again from the day it is restored (the periods of the suspension are not
-- billed).  Locks the subscriptions in key order first, in a statement of
-- its own.
CREATE FUNCTION billing._dunning_sync_status(accounts bigint[], as_of date, at timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_subs bigint[];
    v_old text[];
    v_new text[];
    v_days date[];
    n integer;
BEGIN
    PERFORM billing._authorize_accounts(_dunning_sync_status.accounts);
    WITH want AS (
        SELECT a.account_id, d.d,
               CASE WHEN EXISTS (SELECT FROM billing.dunning_case c
                                 WHERE c.account_id = a.account_id AND c.suspended
                                   AND c.status IN ('active', 'written_off')) THEN 'suspended'
                    WHEN EXISTS (SELECT FROM billing.dunning_case c
                                 JOIN billing._invoice_schedule i
                                   ON i.account_id = c.account_id AND i.invoice_id = c.invoice_id
                                 WHERE c.account_id = a.account_id AND c.status = 'active' AND i.due_on < d.d)
                    THEN 'past_due'
                    ELSE 'active' END AS status
        FROM unnest(accounts) u(account_id)
        JOIN billing.account a ON a.account_id = u.account_id
        CROSS JOIN LATERAL (SELECT coalesce(as_of, billing.today(a.timezone, at)) AS d) d
    ), locked AS (
        SELECT s.account_id, s.subscription_id, s.status AS old, w.status AS new, w.d
        FROM billing.subscription s
        JOIN want w ON w.account_id = s.account_id
        WHERE s.status IN ('active', 'past_due', 'suspended') AND s.status <> w.status
        ORDER BY s.account_id, s.subscription_id
        FOR UPDATE OF s
    )
    SELECT array_agg(account_id ORDER BY account_id, subscription_id),
           array_agg(subscription_id ORDER BY account_id, subscription_id),
           array_agg(old ORDER BY account_id, subscription_id), array_agg(new ORDER BY account_id, subscription_id),
           array_agg(d ORDER BY account_id, subscription_id)
    INTO v_accounts, v_subs, v_old, v_new, v_days
    FROM locked;
    IF v_subs IS NULL THEN
        RETURN 0;
    END IF;
    WITH u AS (
        UPDATE billing.subscription s
        SET status = x.new,
            next_bill_date = CASE WHEN x.old = 'suspended' THEN greatest(s.next_bill_date, x.d) ELSE s.next_bill_date END,
            updated_at = billing.now()
        FROM unnest(v_accounts, v_subs, v_old, v_new, v_days) x(account_id, subscription_id, old, new, d)
        -- a subscription changed meanwhile (paused, canceled) keeps its new status
        WHERE s.account_id = x.account_id AND s.subscription_id = x.subscription_id AND s.status = x.old
        RETURNING s.account_id, s.subscription_id, x.old, x.new, x.d, s.next_bill_date
    ), e AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT u.account_id,
               CASE WHEN u.new = 'suspended' THEN 'subscription.suspended'
                    WHEN u.old = 'suspended' THEN 'subscription.restored'
                    WHEN u.new = 'past_due' THEN 'subscription.past_due'
                    ELSE 'subscription.current' END,
               jsonb_build_object('subscription_id', u.subscription_id, 'status', u.new, 'previous_status', u.old,
                                  'on', u.d, 'next_bill_date', u.next_bill_date)
        FROM u ORDER BY u.account_id, u.subscription_id
        RETURNING 1
    )
    SELECT count(*)::integer INTO n FROM e;
    RETURN n;
END $$;
COMMENT ON FUNCTION billing._dunning_sync_status(bigint[], date, timestamptz) IS
    'internal: moves the subscriptions of these accounts to the status their dunning asks for (active, past_due, '
    'suspended), restoring suspended ones from the day, with an outbox event each; returns how many moved';

CREATE FUNCTION billing.close_dunning(account_id bigint, invoice_id bigint, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    a billing.account;
    v_policy bigint;
BEGIN
    PERFORM billing._authorize_account(close_dunning.account_id);
    a := billing._payment_account(account_id);
    IF NOT EXISTS (SELECT FROM billing.invoice i
                   WHERE i.account_id = a.account_id AND i.invoice_id = close_dunning.invoice_id) THEN
        RAISE EXCEPTION 'invoice % of account % does not exist', coalesce(invoice_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice lists the account''s invoices.';
    END IF;
    SELECT coalesce((SELECT o.policy_id FROM billing.account_dunning_policy o WHERE o.account_id = a.account_id),
                    billing._default_dunning_policy()) INTO v_policy;
    INSERT INTO billing.dunning_case AS c (account_id, invoice_id, policy_id, status, opened_on, closed_on, close_reason)
    VALUES (a.account_id, invoice_id, v_policy, 'closed', billing.today(a.timezone), billing.today(a.timezone),
            coalesce(reason, 'closed by hand'))
    ON CONFLICT ON CONSTRAINT dunning_case_pkey
    DO UPDATE SET status = 'closed', closed_on = excluded.closed_on, close_reason = excluded.close_reason;
    PERFORM billing._dunning_sync_status(ARRAY[a.account_id], NULL, billing.now());
END $$;
COMMENT ON FUNCTION billing.close_dunning(bigint, bigint, text) IS
    'stops the dunning of an invoice (a dispute, an agreement, a written-off customer who settled): no further '
    'steps, and its suspension no longer holds the account''s subscriptions, which are restored at once';

-- ---------------------------------------------------------------------------
-- The steps of a dunning batch, each one statement over the batch's
-- accounts, in the order billing._dunning_accounts calls them.

-- 1. the number series a late-fee invoice may take (before the credit
--    rows, in the cycle's order), when any policy of the batch has a fee;
-- 2. the accounts' credit rows, in account order (created at zero if
--    missing): the next statements' snapshots see what the payments we
--    waited for left
CREATE FUNCTION billing._dunning_lock_accounts(accounts bigint[], as_of date, at timestamptz, default_policy bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM billing.dunning_step s
               WHERE s.action = 'late_fee' AND s.active
                 AND s.policy_id IN (SELECT coalesce(o.policy_id, default_policy)
                                     FROM unnest(accounts) u(account_id)
                                     LEFT JOIN billing.account_dunning_policy o ON o.account_id = u.account_id
                                     UNION
                                     SELECT c.policy_id FROM unnest(accounts) u(account_id)
                                     JOIN billing.dunning_case c ON c.account_id = u.account_id AND c.status = 'active')) THEN
        PERFORM billing._take_invoice_numbers(array_agg(a.entity_id), array_agg(coalesce(as_of, billing.today(a.timezone, at))),
                                              take => false)
        FROM unnest(accounts) u(account_id)
        JOIN billing.account a ON a.account_id = u.account_id;
    END IF;
    INSERT INTO billing.account_credit AS c (account_id, balance)
    SELECT a.account_id, billing.from_minor_units(0, a.currency)
    FROM unnest(accounts) u(account_id)
    JOIN billing.account a ON a.account_id = u.account_id
    WHERE NOT EXISTS (SELECT FROM billing.account_credit x WHERE x.account_id = a.account_id)
    ORDER BY a.account_id
    ON CONFLICT ON CONSTRAINT account_credit_pkey DO NOTHING;
    PERFORM FROM billing.account_credit c
    WHERE c.account_id IN (SELECT unnest(accounts))
    ORDER BY c.account_id
    FOR UPDATE;
END $$;
COMMENT ON FUNCTION billing._dunning_lock_accounts(bigint[], date, timestamptz, bigint) IS
    'internal, dunning step 1-2: the number series a late fee may take, then the accounts'' credit rows, locked in account order';

-- 3. cases whose invoice was paid, voided or written off meanwhile close
CREATE FUNCTION billing._dunning_close_cases(accounts bigint[], as_of date, at timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    WITH r AS (
        UPDATE billing.dunning_case c
        SET status = CASE i.status WHEN 'paid' THEN 'recovered' WHEN 'uncollectible' THEN 'written_off' ELSE 'closed' END,
            closed_on = coalesce(as_of, billing.today(a.timezone, at)),
            close_reason = 'invoice ' || i.status
        FROM unnest(accounts) u(account_id), billing.invoice i, billing.account a
        WHERE c.account_id = u.account_id AND c.status = 'active'
          AND i.account_id = c.account_id AND i.invoice_id = c.invoice_id
          AND a.account_id = c.account_id
          AND NOT (i.status = 'open' AND billing.to_numeric(i.amount_due) > 0)
        RETURNING c.account_id, c.invoice_id, c.status, c.closed_on, i.number, i.total
    )
    INSERT INTO billing.outbox (account_id, event_type, payload)
    SELECT r.account_id, 'dunning.recovered',
           jsonb_build_object('invoice_id', r.invoice_id, 'number', r.number, 'total', r.total::text,
                              'on', r.closed_on)
    FROM r WHERE r.status = 'recovered'
    ORDER BY r.account_id, r.invoice_id;
END $$;
COMMENT ON FUNCTION billing._dunning_close_cases(bigint[], date, timestamptz) IS
    'internal, dunning step 3: closes the active cases whose invoice was paid, voided or written off; dunning.recovered events';

-- 4. cases open for open invoices that are overdue or have a step due;
--    a recovered case whose invoice reopened (refund, chargeback) is
--    active again, its steps taken stay taken
CREATE FUNCTION billing._dunning_open_cases(accounts bigint[], as_of date, at timestamptz, default_policy bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO billing.dunning_case AS c (account_id, invoice_id, policy_id, status, opened_on)
    SELECT i.account_id, i.invoice_id, x.policy_id, 'active', x.d
    FROM (SELECT a.account_id, coalesce(o.policy_id, default_policy) AS policy_id,
                 coalesce(as_of, billing.today(a.timezone, at)) AS d
          FROM unnest(accounts) u(account_id)
          JOIN billing.account a ON a.account_id = u.account_id
          LEFT JOIN billing.account_dunning_policy o ON o.account_id = a.account_id) x
    JOIN billing.invoice i ON i.account_id = x.account_id AND i.status = 'open'
                          AND billing.to_numeric(i.amount_due) > 0
    JOIN billing._invoice_schedule v ON v.account_id = i.account_id AND v.invoice_id = i.invoice_id
    WHERE (v.due_on < x.d
           OR EXISTS (SELECT FROM billing.dunning_step s
                      WHERE s.policy_id = x.policy_id AND s.active AND v.due_on + s.day_offset <= x.d))
      -- only new cases, and recovered ones whose invoice reopened
      AND NOT EXISTS (SELECT FROM billing.dunning_case c
                      WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id AND c.status <> 'recovered')
    ORDER BY 1, 2
    ON CONFLICT ON CONSTRAINT dunning_case_pkey
    DO UPDATE SET status = 'active', closed_on = NULL, close_reason = NULL WHERE c.status = 'recovered';
END $$;
COMMENT ON FUNCTION billing._dunning_open_cases(bigint[], date, timestamptz, bigint) IS
    'internal, dunning step 4: opens cases for overdue open invoices (or with a step due), reactivates recovered cases whose invoice reopened';

-- 5. the claim: every step of an active case whose day has come and
--    that was not taken.  Of several reminders (or retries) due at once
--    after downtime only the latest is carried out, the others are
--    recorded as superseded.  ON CONFLICT: another session took it.
CREATE FUNCTION billing._dunning_claim_steps(run_id bigint, accounts bigint[], as_of date, at timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_claimed integer;
BEGIN
    INSERT INTO billing.dunning_action (account_id, invoice_id, step_id, day_offset, action, due_on, taken_on,
                                        dunning_run_id, amount_due, outcome)
    SELECT y.account_id, y.invoice_id, y.step_id, y.day_offset, y.action, y.due_on, y.d, run_id, y.amount_due,
           CASE WHEN y.action IN ('remind', 'retry_payment') AND y.later > 1 THEN 'superseded' ELSE 'pending' END
    FROM (SELECT c.account_id, c.invoice_id, s.step_id, s.day_offset, s.action, v.due_on + s.day_offset AS due_on,
                 x.d,
                 -- what is asked: all that is due, but the installments
                 -- that fall due later (not those already past)
                 i.amount_due - coalesce((SELECT billing.sum(z.amount) FROM billing.installment z
                                          WHERE z.account_id = i.account_id AND z.invoice_id = i.invoice_id
                                            AND z.due_date > v.due_on AND z.due_date >= x.d),
                                         billing.from_minor_units(0, i.currency))
                     AS amount_due,
                 row_number() OVER (PARTITION BY c.account_id, c.invoice_id, s.action
                                    ORDER BY s.day_offset DESC, s.step_id DESC) AS later
          FROM (SELECT a.account_id, coalesce(as_of, billing.today(a.timezone, at)) AS d
                FROM unnest(accounts) u(account_id) JOIN billing.account a ON a.account_id = u.account_id) x
          JOIN billing.dunning_case c ON c.account_id = x.account_id AND c.status = 'active'
          JOIN billing.invoice i ON i.account_id = c.account_id AND i.invoice_id = c.invoice_id
                                AND i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
          JOIN billing._invoice_schedule v ON v.account_id = i.account_id AND v.invoice_id = i.invoice_id
          JOIN billing.dunning_step s ON s.policy_id = c.policy_id AND s.active AND v.due_on + s.day_offset <= x.d
                                     AND NOT (s.action = 'late_fee' AND i.billing_reason = 'late_fee')
          WHERE NOT EXISTS (SELECT FROM billing.dunning_action t
                            WHERE t.account_id = c.account_id AND t.invoice_id = c.invoice_id
                              AND t.step_id = s.step_id)) y
    ORDER BY y.account_id, y.invoice_id, y.day_offset, y.step_id
    ON CONFLICT ON CONSTRAINT dunning_action_pkey DO NOTHING;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    RETURN v_claimed;
END $$;
COMMENT ON FUNCTION billing._dunning_claim_steps(bigint, bigint[], date, timestamptz) IS
    'internal, dunning step 5: claims every due step not yet taken (exactly once; earlier reminders and retries superseded); returns how many';

-- 6. reminders: an outbox event with what an email template needs
CREATE FUNCTION billing._dunning_remind(run_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    WITH t AS (
        UPDATE billing.dunning_action x SET outcome = 'sent'
        WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'remind'
          AND x.outcome = 'pending'
        RETURNING x.*
    )
    INSERT INTO billing.outbox (account_id, event_type, payload)
    SELECT t.account_id, 'dunning.reminder',
           jsonb_build_object(
               'account_id', a.account_id, 'account_name', a.name, 'email', a.email, 'locale', a.locale,
               'external_ref', a.external_ref,
               'invoice_id', i.invoice_id, 'number', i.number, 'currency', i.currency, 'total', i.total::text,
               'amount_due', t.amount_due::text, 'invoice_amount_due', i.amount_due::text,
               'issue_date', i.issue_date, 'due_date', t.due_on - t.day_offset,
               'days_overdue', t.taken_on - (t.due_on - t.day_offset),
               'step', jsonb_build_object('step_id', s.step_id, 'name', s.name, 'day_offset', s.day_offset,
                                          'action', s.action),
               'policy', p.name)
    FROM t
    JOIN billing.account a ON a.account_id = t.account_id
    JOIN billing.invoice i ON i.account_id = t.account_id AND i.invoice_id = t.invoice_id
    JOIN billing.dunning_step s ON s.step_id = t.step_id
    JOIN billing.dunning_policy p ON p.policy_id = s.policy_id
    ORDER BY t.account_id, t.invoice_id, t.day_offset;
END $$;
COMMENT ON FUNCTION billing._dunning_remind(bigint) IS
    'internal, dunning step 6: the run''s pending reminders sent as dunning.reminder outbox events';

-- 7. payment retries: a collection attempt for the default method
CREATE FUNCTION billing._dunning_queue_retries(run_id bigint, at timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    WITH t AS (
        UPDATE billing.dunning_action x
        SET outcome = CASE WHEN NOT EXISTS (SELECT FROM billing.payment_method m
                                            WHERE m.account_id = x.account_id AND m.is_default AND m.active)
                           THEN 'no_payment_method'
                           WHEN EXISTS (SELECT FROM billing.collection_attempt c
                                        WHERE c.account_id = x.account_id AND c.invoice_id = x.invoice_id
                                          AND c.status IN ('pending', 'processing'))
                           THEN 'already_queued'
                           ELSE 'queued' END
        WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'retry_payment'
          AND x.outcome = 'pending'
        RETURNING x.account_id, x.invoice_id, x.outcome, x.amount_due
    )
    INSERT INTO billing.collection_attempt (account_id, invoice_id, payment_method_id, attempt_no, amount, scheduled_at)
    SELECT t.account_id, t.invoice_id, m.payment_method_id,
           coalesce((SELECT max(c.attempt_no) FROM billing.collection_attempt c
                     WHERE c.account_id = t.account_id AND c.invoice_id = t.invoice_id), 0) + 1,
           t.amount_due, at
    FROM t
    JOIN billing.payment_method m ON m.account_id = t.account_id AND m.is_default AND m.active
    WHERE t.outcome = 'queued'
    ORDER BY t.account_id, t.invoice_id;
END $$;
COMMENT ON FUNCTION billing._dunning_queue_retries(bigint, timestamptz) IS
    'internal, dunning step 7: the run''s pending payment retries queued as collection attempts for the default method';

-- 8. late fees: one finalized invoice per fee, numbered by the one
--    numbering rule (billing._take_invoice_numbers).
--    Each step carries its columns along: a join of two CTEs has no
--    index and no estimate (a nested loop over 10k x 10k rows).
CREATE FUNCTION billing._dunning_charge_late_fees(run_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_fee_accounts bigint[];
    v_fee_invoices bigint[];
BEGIN
    WITH f AS MATERIALIZED (
        SELECT y.*, CASE WHEN billing.to_numeric(y.fee) > 0 THEN nextval('billing.invoice_invoice_id_seq') END
                        AS fee_invoice_id
        FROM (SELECT x.account_id, x.invoice_id, x.step_id, x.taken_on, i.number AS overdue_number,
                     i.due_date AS overdue_due, i.currency, a.entity_id, a.payment_terms_days, s.name,
                     billing.round_amount(least(s.fee_cap, coalesce(s.fee_fixed, 0)
                                                + coalesce(s.fee_percent, 0) * billing.to_numeric(x.amount_due) / 100),
                                          i.currency, e.rounding) AS fee
              FROM billing.dunning_action x
              JOIN billing.invoice i ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id
              JOIN billing.account a ON a.account_id = x.account_id
              JOIN billing.billing_entity e ON e.entity_id = a.entity_id
              JOIN billing.dunning_step s ON s.step_id = x.step_id
              WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'late_fee'
              ORDER BY x.account_id, x.invoice_id, x.step_id) y
    ), marked AS (
        UPDATE billing.dunning_action x
        SET outcome = CASE WHEN f.fee_invoice_id IS NULL THEN 'no_fee' ELSE 'charged' END,
            fee_invoice_id = f.fee_invoice_id
        FROM f
        WHERE x.account_id = f.account_id AND x.invoice_id = f.invoice_id AND x.step_id = f.step_id
        RETURNING 1
    ), numbered AS MATERIALIZED (
        SELECT f.*, row_number() OVER (ORDER BY f.account_id, f.invoice_id, f.step_id) AS ord
        FROM f WHERE f.fee_invoice_id IS NOT NULL
    ), numbers AS MATERIALIZED (
        -- a jsonb array, whose n-th element is found by its offset (a
        -- text[] is walked from the start for each one)
        SELECT to_jsonb(billing._take_invoice_numbers(array_agg(entity_id ORDER BY ord),
                                                      array_agg(taken_on ORDER BY ord))) AS number
        FROM numbered
    ), fees AS MATERIALIZED (
        SELECT n.*, m.number ->> (n.ord - 1)::integer AS fee_number, n.taken_on + n.payment_terms_days AS fee_due
        FROM numbered n CROSS JOIN numbers m
    ), ins_invoice AS (
        INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status,
                                     billing_reason, currency, subtotal, discount, tax, total, amount_paid,
                                     amount_due, issue_date, due_date, finalized_at, metadata)
        SELECT n.account_id, n.fee_invoice_id, n.entity_id, NULL, n.fee_number,
               'open', 'late_fee', n.currency, n.fee, billing.from_minor_units(0, n.currency),
               billing.from_minor_units(0, n.currency), n.fee, billing.from_minor_units(0, n.currency), n.fee,
               n.taken_on, n.fee_due, billing.now(),
               jsonb_build_object('late_fee_for', n.invoice_id, 'late_fee_for_number', n.overdue_number,
                                  'dunning_step_id', n.step_id)
        FROM fees n
        ORDER BY n.fee_invoice_id
        RETURNING account_id, invoice_id
    ), fee_ids AS (
        SELECT array_agg(account_id ORDER BY invoice_id) AS accounts, array_agg(invoice_id ORDER BY invoice_id) AS invoices
        FROM ins_invoice
    ), ins_line AS (
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, quantity, unit_amount, amount,
                                          source)
        SELECT n.account_id, n.fee_invoice_id, 'late_fee',
               'Late fee on invoice ' || n.overdue_number || ', due ' || n.overdue_due,
               1, billing.to_numeric(n.fee), n.fee, 'dunning_step ' || n.step_id || ' invoice ' || n.invoice_id
        FROM fees n
        ORDER BY n.fee_invoice_id
        RETURNING 1
    ), ev AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT n.account_id, 'dunning.late_fee',
               jsonb_build_object('invoice_id', n.invoice_id, 'number', n.overdue_number,
                                  'fee_invoice_id', n.fee_invoice_id, 'fee_number', n.fee_number, 'fee', n.fee::text,
                                  'due_date', n.fee_due, 'step', n.name)
        FROM fees n
        ORDER BY n.fee_invoice_id
        RETURNING 1
    )
    -- (every data-modifying CTE above runs to completion, read or not)
    SELECT fee_ids.accounts, fee_ids.invoices INTO STRICT v_fee_accounts, v_fee_invoices
    FROM fee_ids;
    -- the fee invoices are issued like any other: posted, paid from credit,
    -- queued for collection
    PERFORM billing._finalize_invoices(v_fee_accounts, v_fee_invoices);
END $$;
COMMENT ON FUNCTION billing._dunning_charge_late_fees(bigint) IS
    'internal, dunning step 8: the run''s pending late fees, each a numbered invoice finalized by billing._finalize_invoices';

-- 9. suspensions: the case suspends the account's subscriptions (the
--    statuses move after this batch commits)
CREATE FUNCTION billing._dunning_suspend(run_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    UPDATE billing.dunning_case c SET suspended = true
    FROM (SELECT DISTINCT x.account_id, x.invoice_id FROM billing.dunning_action x
          WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'suspend') t
    WHERE c.account_id = t.account_id AND c.invoice_id = t.invoice_id;
    UPDATE billing.dunning_action x SET outcome = 'suspended'
    WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'suspend';
END $$;
COMMENT ON FUNCTION billing._dunning_suspend(bigint) IS
    'internal, dunning step 9: the run''s pending suspensions mark their cases suspended';

-- 10. write-offs: what is still due goes to bad debt (the one write-off
--     recipe, billing._write_off_invoices), and the cases close
CREATE FUNCTION billing._dunning_write_off(run_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    WITH t AS (
        UPDATE billing.dunning_action x SET outcome = 'written_off'
        WHERE x.dunning_run_id = run_id AND x.outcome = 'pending' AND x.action = 'write_off'
        RETURNING x.account_id, x.invoice_id, x.taken_on, x.step_id
    ), w AS (
        SELECT t.account_id, t.invoice_id, t.taken_on
        FROM (SELECT array_agg(t.account_id ORDER BY t.account_id, t.invoice_id) AS accounts,
                     array_agg(t.invoice_id ORDER BY t.account_id, t.invoice_id) AS invoices,
                     array_agg('dunning step ' || t.step_id ORDER BY t.account_id, t.invoice_id) AS reasons,
                     array_agg(t.taken_on ORDER BY t.account_id, t.invoice_id) AS days
              FROM t) a
        CROSS JOIN LATERAL billing._write_off_invoices(a.accounts, a.invoices, a.reasons, a.days) o
        JOIN t ON t.account_id = o.account_id AND t.invoice_id = o.invoice_id
        WHERE a.accounts IS NOT NULL
    )
    UPDATE billing.dunning_case c SET status = 'written_off', closed_on = w.taken_on, close_reason = 'written off'
    FROM w WHERE c.account_id = w.account_id AND c.invoice_id = w.invoice_id;
END $$;
COMMENT ON FUNCTION billing._dunning_write_off(bigint) IS
    'internal, dunning step 10: the run''s pending write-offs, by the write-off recipe billing._write_off_invoices; their cases close';

-- One batch of run_dunning, for these accounts, in one transaction: the
-- steps in their order, each one statement over the whole batch.
CREATE FUNCTION billing._dunning_accounts(run_id bigint, accounts bigint[], as_of date, at timestamptz,
                                          default_policy bigint)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_claimed integer;
BEGIN
    PERFORM billing._dunning_lock_accounts(accounts, as_of, at, default_policy);
    PERFORM billing._dunning_close_cases(accounts, as_of, at);
    PERFORM billing._dunning_open_cases(accounts, as_of, at, default_policy);
    v_claimed := billing._dunning_claim_steps(run_id, accounts, as_of, at);
    IF v_claimed = 0 THEN
        RETURN 0;
    END IF;
    PERFORM billing._dunning_remind(run_id);
    PERFORM billing._dunning_queue_retries(run_id, at);
    PERFORM billing._dunning_charge_late_fees(run_id);
    PERFORM billing._dunning_suspend(run_id);
    PERFORM billing._dunning_write_off(run_id);
    RETURN v_claimed;
END $$;
COMMENT ON FUNCTION billing._dunning_accounts(bigint, bigint[], date, timestamptz, bigint) IS
    'internal: the dunning of these accounts in one transaction, one statement per step kind: closes cases of paid '
    'invoices, opens cases, claims the due steps (exactly once), sends reminders, queues retries, charges late '
    'fees, suspends, writes off; returns the number of steps this run took for them';

-- The next batch of accounts with dunning work after after_account, in
-- account order: open invoices within reach of a step, active cases.
CREATE FUNCTION billing._dunning_batch(run_id bigint, as_of date, at timestamptz, batch_size integer,
                                       default_policy bigint, INOUT after_account bigint,
                                       OUT accounts bigint[], OUT actions integer, OUT errors jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    -- no account is ahead of UTC+14; steps start at most this many days before the due date
    v_reach date := coalesce(as_of, billing.today('Etc/GMT-14', at))
                    + greatest(0, -coalesce((SELECT min(s.day_offset) FROM billing.dunning_step s WHERE s.active), 0));
    v_state text;
    v_msg text;
BEGIN
    PERFORM billing._authorize_all('run dunning');
    errors := '[]';
    actions := 0;
    SELECT array_agg(x.account_id ORDER BY x.account_id) INTO accounts
    FROM (SELECT u.account_id FROM (
              (SELECT DISTINCT i.account_id FROM billing.invoice i
               WHERE i.status = 'open' AND i.account_id > coalesce(after_account, 0) AND i.due_date <= v_reach
               ORDER BY 1 LIMIT batch_size)
              UNION
              (SELECT DISTINCT c.account_id FROM billing.dunning_case c
               WHERE c.status = 'active' AND c.account_id > coalesce(after_account, 0)
               ORDER BY 1 LIMIT batch_size)) u
          ORDER BY 1 LIMIT batch_size) x;
    IF accounts IS NULL THEN
        RETURN;
    END IF;
    after_account := accounts[cardinality(accounts)];
    BEGIN
        actions := billing._dunning_accounts(run_id, accounts, as_of, at, default_policy);
    EXCEPTION WHEN OTHERS THEN
        -- the slow path, only after an error: one account at a time
        FOR i IN 1 .. cardinality(accounts) LOOP
            BEGIN
                actions := actions + billing._dunning_accounts(run_id, ARRAY[accounts[i]], as_of, at, default_policy);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                errors := errors || jsonb_build_object('account_id', accounts[i], 'sqlstate', v_state, 'message', v_msg);
            END;
        END LOOP;
    END;
END $$;
COMMENT ON FUNCTION billing._dunning_batch(bigint, date, timestamptz, integer, bigint, bigint) IS
    'internal: one batch of billing.run_dunning, the accounts after after_account; an account that fails is logged '
    'in errors and skipped';

-- subscription.price_change_notice events, once per new subscription item
-- that starts within price_change_notice_days with another price than the
-- item it replaces (billing.change_subscription at period end or on a
-- later date, billing.schedule_change, billing.migrate_price; which item that
-- is, is billing._replaces: never an add-on, never an item that does not run).
CREATE FUNCTION billing._price_change_notices(as_of date, at timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_result integer;
BEGIN
    PERFORM billing._authorize_all('run dunning');
    WITH st AS (
        SELECT coalesce((SELECT s.price_change_notice_days FROM billing.dunning_setting s), 30) AS days
    ), cand AS (
        SELECT n.account_id, n.subscription_id, n.subscription_item_id, n.started_on, n.quantity,
               n.price_id AS new_price_id, o.price_id AS old_price_id, o.quantity AS old_quantity, d.d, st.days
        FROM st
        JOIN billing.subscription_item n
          ON n.started_on > coalesce(as_of, billing.today('Etc/GMT+12', at))
         AND n.started_on <= coalesce(as_of, billing.today('Etc/GMT-14', at)) + st.days
        JOIN billing.account a ON a.account_id = n.account_id
        CROSS JOIN LATERAL (SELECT coalesce(as_of, billing.today(a.timezone, at)) AS d) d
        JOIN billing.subscription s ON s.account_id = n.account_id AND s.subscription_id = n.subscription_id
                                   AND s.status NOT IN ('canceled', 'paused')
        JOIN billing.subscription_item o
          ON o.account_id = n.account_id AND o.subscription_id = n.subscription_id AND o.ended_on = n.started_on
         AND o.subscription_item_id <> n.subscription_item_id AND o.price_id <> n.price_id
         AND billing._replaces(n.account_id, n.subscription_item_id, n.started_on, n.ended_on, o.subscription_item_id)
        WHERE n.started_on > d.d AND n.started_on <= d.d + st.days
    ), ins AS (
        INSERT INTO billing.price_change_notice (account_id, subscription_item_id, notified_on)
        SELECT DISTINCT account_id, subscription_item_id, d FROM cand
        ON CONFLICT ON CONSTRAINT price_change_notice_pkey DO NOTHING
        RETURNING account_id, subscription_item_id
    ), e AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT c.account_id, 'subscription.price_change_notice',
               jsonb_build_object('subscription_id', c.subscription_id, 'subscription_item_id', c.subscription_item_id,
                                  'effective_date', c.started_on, 'days_before', c.started_on - c.d,
                                  'old_price_id', c.old_price_id, 'new_price_id', c.new_price_id,
                                  'old_amount', billing.price_amount(c.old_price_id, c.old_quantity, c.rounding)::text,
                                  'new_amount', billing.price_amount(c.new_price_id, c.quantity, c.rounding)::text,
                                  'quantity', c.quantity)
        -- the notices inserted, with their items again by key (no join of two CTEs)
        FROM ins
        CROSS JOIN LATERAL (
            SELECT n.account_id, n.subscription_id, n.subscription_item_id, n.started_on, n.quantity,
                   n.price_id AS new_price_id, o.price_id AS old_price_id, o.quantity AS old_quantity,
                   coalesce(as_of, billing.today(a.timezone, at)) AS d, e.rounding
            FROM billing.subscription_item n
            JOIN billing.account a ON a.account_id = n.account_id
            JOIN billing.billing_entity e ON e.entity_id = a.entity_id
            JOIN billing.subscription_item o
              ON o.account_id = n.account_id AND o.subscription_id = n.subscription_id AND o.ended_on = n.started_on
             AND o.subscription_item_id <> n.subscription_item_id AND o.price_id <> n.price_id
             AND billing._replaces(n.account_id, n.subscription_item_id, n.started_on, n.ended_on, o.subscription_item_id)
            WHERE n.account_id = ins.account_id AND n.subscription_item_id = ins.subscription_item_id
            ORDER BY o.subscription_item_id
            LIMIT 1) c
        ORDER BY c.account_id, c.subscription_item_id
        RETURNING 1
    )
    SELECT count(*)::integer FROM e
    INTO v_result;
    RETURN v_result;
END $$;
COMMENT ON FUNCTION billing._price_change_notices(date, timestamptz) IS
    'internal: writes one subscription.price_change_notice event per scheduled price change that takes effect within '
    'price_change_notice_days (billing.dunning_setting), once each';

-- Dunning's batch in two steps of billing._run_in_batches, each committed:
-- the actions of a batch of accounts, then their subscription statuses in
-- a transaction of their own (see the lock order above).
CREATE FUNCTION billing._dunning_step(run_id bigint, as_of date, at timestamptz, batch_size integer, state jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('run dunning');
    SELECT CASE WHEN r.accounts IS NOT NULL THEN state || jsonb_build_object(
               'cursor', jsonb_build_object('after_account', r.after_account),
               'accounts', to_jsonb(r.accounts),
               'counts', jsonb_build_object('batches', 1, 'accounts', cardinality(r.accounts), 'actions', r.actions),
               'errors', r.errors, 'notify', r.actions) END
    FROM billing._dunning_batch(run_id, as_of, at, batch_size, (state ->> 'policy')::bigint,
                                (state #>> '{cursor,after_account}')::bigint) r
$$;
COMMENT ON FUNCTION billing._dunning_step(bigint, date, timestamptz, integer, jsonb) IS
    'internal: the actions of one batch of run_dunning (billing._dunning_batch) as a step of billing._run_in_batches';

CREATE FUNCTION billing._dunning_status_step(run_id bigint, as_of date, at timestamptz, batch_size integer,
                                             state jsonb)
RETURNS jsonb LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._authorize_all('run dunning');
    SELECT state || jsonb_build_object(
               'counts', (state -> 'counts') || jsonb_build_object('status_changes', c.changes),
               'notify', (state ->> 'notify')::integer + c.changes)
    FROM (SELECT billing._dunning_sync_status((SELECT array_agg(a.id::bigint ORDER BY a.ord)
                                               FROM jsonb_array_elements_text(state -> 'accounts') WITH ORDINALITY a(id, ord)),
                                              as_of, at) AS changes) c
$$;
COMMENT ON FUNCTION billing._dunning_status_step(bigint, date, timestamptz, integer, jsonb) IS
    'internal: the subscription statuses of one batch of run_dunning (billing._dunning_sync_status) as a step of '
    'billing._run_in_batches';

-- Dunning.  A PROCEDURE so that it commits after each batch; it has no SET
-- search_path (a procedure with one cannot commit), so its body names
-- everything with its schema and leaves the work to the functions above.
CREATE PROCEDURE billing.run_dunning(as_of date DEFAULT NULL, batch_size integer DEFAULT 1000,
                                     at timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := coalesce(at, billing.now());
    v_run bigint;
    v_policy bigint;
    v_notices integer;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 1000.';
    END IF;
    -- a run takes every step due by as_of: both dates within the window
    -- around today in UTC (billing._check_date)
    PERFORM billing._check_date(billing.today('UTC', v_at), 'the day of at', billing.today('UTC')),
            billing._check_date(as_of, 'as_of', billing.today('UTC'));
    v_policy := billing._default_dunning_policy();
    v_notices := billing._price_change_notices(as_of, v_at);
    INSERT INTO billing.dunning_run (as_of, at, started_at, notices)
    VALUES (as_of, v_at, pg_catalog.clock_timestamp(), v_notices)
    RETURNING dunning_run_id INTO v_run;
    COMMIT;
    CALL billing._run_in_batches(
        'billing.dunning_run', v_run,
        ARRAY['billing._dunning_step(pg_catalog.int8, pg_catalog.date, pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.jsonb)'::pg_catalog.regprocedure,
              'billing._dunning_status_step(pg_catalog.int8, pg_catalog.date, pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.jsonb)'::pg_catalog.regprocedure],
        as_of, v_at, batch_size, pg_catalog.jsonb_build_object('policy', v_policy));
    UPDATE billing.dunning_run
    SET finished_at = pg_catalog.clock_timestamp(),
        status = CASE WHEN errors OPERATOR(pg_catalog.=) '[]'::pg_catalog.jsonb THEN 'done' ELSE 'done_with_errors' END
    WHERE dunning_run_id OPERATOR(pg_catalog.=) v_run;
    COMMIT;
END $$;
COMMENT ON PROCEDURE billing.run_dunning(date, integer, timestamptz) IS
    'takes every dunning step whose day has come (as_of; NULL: each account''s today at at, default billing.now()) '
    'exactly once per invoice: reminders to the outbox, payment retries, late-fee invoices, suspension, write-off; '
    'moves subscription statuses (past_due, suspended, back when paid); writes price-change notices; in committed '
    'batches of batch_size accounts; logs in billing.dunning_run and NOTIFYs billing_events once per batch';

-- ---------------------------------------------------------------------------
-- Reporting: the dunning funnel.
-- entity_id NULL: every account the caller sees (the view); else only that
-- billing entity's (billing.dashboard_html).
CREATE FUNCTION billing._dunning_funnel(entity_id bigint DEFAULT NULL)
RETURNS TABLE (policy_id bigint, policy text, step_id bigint, day_offset integer, action text, step text,
               currency text, invoices bigint, amount_due numeric, recovered bigint, recovered_amount numeric,
               recovery_rate numeric, still_open bigint, written_off bigint)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
SELECT p.policy_id, p.name AS policy, s.step_id, s.day_offset, s.action, s.name AS step, i.currency,
       count(*) AS invoices,
       billing.sum_numeric(x.amount_due) AS amount_due,
       count(*) FILTER (WHERE i.status = 'paid') AS recovered,
       coalesce(billing.sum_numeric(x.amount_due) FILTER (WHERE i.status = 'paid'),
                billing.round_money(0, i.currency)) AS recovered_amount,
       round(count(*) FILTER (WHERE i.status = 'paid')::numeric / count(*), 4) AS recovery_rate,
       count(*) FILTER (WHERE i.status = 'open') AS still_open,
       count(*) FILTER (WHERE i.status = 'uncollectible') AS written_off
FROM billing.dunning_action x
JOIN billing.dunning_step s ON s.step_id = x.step_id
JOIN billing.dunning_policy p ON p.policy_id = s.policy_id
JOIN billing.invoice i ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id
WHERE _dunning_funnel.entity_id IS NULL OR i.entity_id = _dunning_funnel.entity_id
GROUP BY p.policy_id, p.name, s.step_id, s.day_offset, s.action, s.name, i.currency
$$;
COMMENT ON FUNCTION billing._dunning_funnel(bigint) IS
    'internal: the rows of the view billing.dunning_funnel (entity_id NULL), or of one billing entity''s invoices';

CREATE VIEW billing.dunning_funnel AS SELECT * FROM billing._dunning_funnel(NULL);
COMMENT ON VIEW billing.dunning_funnel IS
    'the dunning funnel: per policy step and currency, how many invoices reached the step, what they owed then, how '
    'many of them were paid since (recovered), are still open or were written off';
COMMENT ON COLUMN billing.dunning_funnel.policy_id IS 'the dunning policy';
COMMENT ON COLUMN billing.dunning_funnel.policy IS 'the policy''s name';
COMMENT ON COLUMN billing.dunning_funnel.step_id IS 'the step of the policy';
COMMENT ON COLUMN billing.dunning_funnel.day_offset IS 'the step''s day relative to the due date (-3: three days before)';
COMMENT ON COLUMN billing.dunning_funnel.action IS 'remind, retry_payment, late_fee, suspend or write_off';
COMMENT ON COLUMN billing.dunning_funnel.step IS 'the step''s name (a reminder''s template key)';
COMMENT ON COLUMN billing.dunning_funnel.currency IS
    'the invoices'' currency: amounts are summed per currency, as numeric (a sum has no bound)';
COMMENT ON COLUMN billing.dunning_funnel.invoices IS
    'invoices that reached the step: unpaid on its day, so the step was taken (or superseded by a later one)';
COMMENT ON COLUMN billing.dunning_funnel.amount_due IS 'what those invoices still owed when the step was taken';
COMMENT ON COLUMN billing.dunning_funnel.recovered IS 'of those invoices, how many are paid now (paid after reaching the step)';
COMMENT ON COLUMN billing.dunning_funnel.recovered_amount IS 'what the recovered invoices owed when the step was taken';
COMMENT ON COLUMN billing.dunning_funnel.recovery_rate IS 'recovered / invoices, 0 to 1, four decimals';
COMMENT ON COLUMN billing.dunning_funnel.still_open IS 'of those invoices, how many are still open';
COMMENT ON COLUMN billing.dunning_funnel.written_off IS 'of those invoices, how many are uncollectible (written off)';

-- ---------------------------------------------------------------------------
-- Dunning's invariants (billing.check_invariants includes them).
CREATE FUNCTION billing.check_dunning_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    -- a fee charged is one late-fee invoice of the fee's amount
    SELECT 'late_fee_is_one_invoice',
           format('dunning step %s of invoice %s (account %s): fee invoice %s is %s', x.step_id, x.invoice_id,
                  x.account_id, x.fee_invoice_id, coalesce(i.billing_reason || ' ' || i.status, 'missing'))
    FROM billing.dunning_action x
    LEFT JOIN billing.invoice i ON i.account_id = x.account_id AND i.invoice_id = x.fee_invoice_id
    WHERE (x.outcome = 'charged') <> (x.fee_invoice_id IS NOT NULL)
       OR (x.fee_invoice_id IS NOT NULL AND (i.invoice_id IS NULL OR i.billing_reason <> 'late_fee'))
    UNION ALL
    SELECT 'late_fee_invoice_has_its_step',
           format('late-fee invoice %s (account %s) belongs to no dunning step', i.invoice_id, i.account_id)
    FROM billing.invoice i
    WHERE i.billing_reason = 'late_fee' AND NOT EXISTS (
        SELECT FROM billing.dunning_action x WHERE x.account_id = i.account_id AND x.fee_invoice_id = i.invoice_id)
    UNION ALL
    -- a step is taken only once its day has come, and never left pending
    SELECT 'dunning_step_on_its_day',
           format('step %s of invoice %s (account %s) due %s, taken %s, outcome %s', x.step_id, x.invoice_id,
                  x.account_id, x.due_on, x.taken_on, x.outcome)
    FROM billing.dunning_action x
    WHERE x.taken_on < x.due_on OR x.outcome = 'pending'
    UNION ALL
    -- only dunning suspends: a suspended subscription's account has a case that suspended
    SELECT 'suspended_by_dunning',
           format('subscription %s (account %s) is suspended without a dunning case that suspended',
                  s.subscription_id, s.account_id)
    FROM billing.subscription s
    WHERE s.status = 'suspended' AND NOT EXISTS (
        SELECT FROM billing.dunning_case c
        WHERE c.account_id = s.account_id AND c.suspended AND c.status IN ('active', 'written_off'))
$$;
COMMENT ON FUNCTION billing.check_dunning_invariants() IS
    'the dunning invariants (a fee is one late-fee invoice, steps on their day, suspension only by dunning), one '
    'named check each; no rows means all hold';

-- src/sql/install/82_reports.sql
-- Reporting views: receivables aging, account balances and
-- statements, MRR and ARR with their movements, revenue by month, churn and
-- retention by cohort, days sales outstanding, upcoming invoices.
--
-- Rules every view here keeps:
--   * money is only ever summed within one currency (every view is grouped
--     by currency, or by account, whose currency is fixed), and every money
--     column that adds up rows is numeric in the row's currency, with
--     exactly its digits: billing.sum_numeric adds amounts, billing.round_money
--     rounds what is computed (a monthly value) once by billing.rounding.  A
--     single amount is bounded (10^12 major units), a sum of any number of
--     them is not: as amounts, enough of one tenant's largest payments
--     would put the report of every role that sees that tenant (the
--     owner's, a finance role's) out of range; as numeric, nothing a tenant
--     stores can make a report fail;
--   * "today" is each account's date in its time zone at billing.now(), so
--     the test clock (billing.clock) moves every view at once;
--   * no trigger and no summary table: the views read the tables as the
--     cycle and the payments leave them, through two indexes of their own
--     (invoice_open, partial, and a BRIN on issue_date), and each is one
--     set-based query (bench/reports.sh measures them, docs/performance.md);
--   * the views that aggregate everything are views over functions with
--     SET jit = off: JIT compilation of these plans costs more than running
--     them; the views that are read per
--     account (balances, statements) stay plain views, so that a filter on
--     account_id reaches the indexes.

-- ---------------------------------------------------------------------------
-- Receivables aging.

-- Open invoices only, through the partial index invoice_open (50_invoicing.sql).

-- A function under the view for its settings: the open invoices come out of
-- invoice_open in account order, so aggregating in that order beats a hash
-- table of one group per account (5 sums each), which the planner prefers;
-- and JIT compiling costs more than running it.
CREATE FUNCTION billing._ar_aging()
RETURNS TABLE (account_id bigint, account_name text, currency text, as_of date, current numeric,
               days_1_30 numeric, days_31_60 numeric, days_61_90 numeric,
               days_over_90 numeric, total_due numeric, open_invoices bigint, oldest_due_date date)
LANGUAGE sql STABLE SET jit = off SET enable_hashagg = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT a.account_id, a.name AS account_name, a.currency, a.today AS as_of,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE i.due_date >= a.today), a.zero) AS current,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 1 AND 30), a.zero) AS days_1_30,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 31 AND 60), a.zero) AS days_31_60,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date BETWEEN 61 AND 90), a.zero) AS days_61_90,
           coalesce(billing.sum_numeric(i.amount_due) FILTER (WHERE a.today - i.due_date > 90), a.zero) AS days_over_90,
           billing.sum_numeric(i.amount_due) AS total_due,
           count(*) AS open_invoices,
           min(i.due_date) AS oldest_due_date
    FROM billing.invoice i
    JOIN (SELECT x.account_id, x.name, x.currency, billing.today(x.timezone) AS today,
                 billing.round_money(0, x.currency) AS zero
          FROM billing.account x) a ON a.account_id = i.account_id
    WHERE i.status = 'open'
    GROUP BY a.account_id, a.name, a.currency, a.today, a.zero
$$;
COMMENT ON FUNCTION billing._ar_aging() IS 'internal: the rows of the view billing.ar_aging';

CREATE VIEW billing.ar_aging AS SELECT * FROM billing._ar_aging();
COMMENT ON VIEW billing.ar_aging IS
    'receivables aging: what open invoices still ask each account for, by days past due as of the account''s '
    'today (billing.now() in its time zone); one row per account with an open invoice';
COMMENT ON COLUMN billing.ar_aging.account_id IS 'the account';
COMMENT ON COLUMN billing.ar_aging.account_name IS 'the account''s name';
COMMENT ON COLUMN billing.ar_aging.currency IS
    'the account''s currency: every amount of the row is in it (numeric, with exactly its digits)';
COMMENT ON COLUMN billing.ar_aging.as_of IS 'the account''s today in its time zone at billing.now(): days past due count from it';
COMMENT ON COLUMN billing.ar_aging.current IS 'amount due on open invoices not yet past due (due date today or later)';
COMMENT ON COLUMN billing.ar_aging.days_1_30 IS 'amount due on open invoices 1 to 30 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_31_60 IS 'amount due on open invoices 31 to 60 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_61_90 IS 'amount due on open invoices 61 to 90 days past their due date';
COMMENT ON COLUMN billing.ar_aging.days_over_90 IS 'amount due on open invoices more than 90 days past their due date';
COMMENT ON COLUMN billing.ar_aging.total_due IS 'the sum of the five buckets: everything due on open invoices';
COMMENT ON COLUMN billing.ar_aging.open_invoices IS 'how many open invoices the account has';
COMMENT ON COLUMN billing.ar_aging.oldest_due_date IS 'the earliest due date among them';

-- ---------------------------------------------------------------------------
-- Account balances and statements.  The balance is invariant 5's right-hand
-- side, amount due on open invoices - unapplied credit, which equals the
-- ledger's receivable + customer_credit (billing.account_balance) and is
-- read from two small sources instead of the whole ledger.

CREATE VIEW billing.account_balances AS
SELECT a.account_id, a.name AS account_name, a.currency, a.today AS as_of,
       coalesce(o.open_due, z.zero) AS open_due,
       coalesce(o.overdue, z.zero) AS overdue,
       coalesce(billing.to_numeric(c.balance), z.zero) AS unapplied_credit,
       coalesce(o.open_due, z.zero) - coalesce(billing.to_numeric(c.balance), z.zero) AS balance,
       o.open_invoices,
       o.oldest_due_date
-- (the zero of the currency computed with the account's columns, not in
-- a subquery of its own: Citus pushes a query down to the shards only
-- when its subqueries without FROM call immutable functions alone)
FROM (SELECT x.account_id, x.name, x.currency, billing.today(x.timezone) AS today,
             billing.round_money(0, x.currency) AS zero
      FROM billing.account x) a
CROSS JOIN LATERAL (SELECT a.zero) z
LEFT JOIN billing.account_credit c ON c.account_id = a.account_id
-- the account's open invoices, through the invoice_open index
CROSS JOIN LATERAL (
    SELECT billing.sum_numeric(i.amount_due) AS open_due,
           billing.sum_numeric(i.amount_due) FILTER (WHERE i.due_date < a.today) AS overdue,
           count(*) AS open_invoices, min(i.due_date) AS oldest_due_date
    FROM billing.invoice i
    WHERE i.account_id = a.account_id AND i.status = 'open'
) o;
COMMENT ON VIEW billing.account_balances IS
    'what each account owes now: amount due on open invoices, the overdue part, unapplied credit, and the '
    'balance (= billing.account_balance, the ledger''s receivable + customer credit, by invariant 5)';
COMMENT ON COLUMN billing.account_balances.account_id IS 'the account';
COMMENT ON COLUMN billing.account_balances.account_name IS 'the account''s name';
COMMENT ON COLUMN billing.account_balances.currency IS
    'the account''s currency: every amount of the row is in it (numeric, with exactly its digits)';
COMMENT ON COLUMN billing.account_balances.as_of IS 'the account''s today in its time zone at billing.now()';
COMMENT ON COLUMN billing.account_balances.open_due IS 'amount due on the account''s open invoices';
COMMENT ON COLUMN billing.account_balances.overdue IS 'the part of open_due whose due date is before as_of';
COMMENT ON COLUMN billing.account_balances.unapplied_credit IS
    'money received or credited and not yet applied to an invoice (billing.account_credit)';
COMMENT ON COLUMN billing.account_balances.balance IS
    'open_due - unapplied_credit: positive, the customer owes; negative, we owe the customer';
COMMENT ON COLUMN billing.account_balances.open_invoices IS 'how many open invoices the account has';
COMMENT ON COLUMN billing.account_balances.oldest_due_date IS 'the earliest due date of an open invoice (NULL: none)';

-- Every movement of what an account owes, with the running balance.  The
-- window runs over the account's whole history, so a filter on posted_on
-- keeps the right balances; a filter on account_id is pushed below it.
CREATE VIEW billing.account_statements AS
SELECT s.account_id, s.posted_on, s.txn_id, s.kind, s.description, s.invoice_id, s.payment_id, s.amount,
       billing.sum_numeric(s.amount) OVER (PARTITION BY s.account_id ORDER BY s.posted_on, s.txn_id) AS balance
FROM billing.account_statement_lines s;
COMMENT ON VIEW billing.account_statements IS
    'every ledger movement of what each account owes (invoices, payments, credit notes, refunds, voids, '
    'write-offs) with the running balance; filter by account_id (billing.account_statement(account_id, from, to) '
    'adds opening and closing balances for a date range)';
COMMENT ON COLUMN billing.account_statements.account_id IS 'the account';
COMMENT ON COLUMN billing.account_statements.posted_on IS 'the date the ledger transaction was posted';
COMMENT ON COLUMN billing.account_statements.txn_id IS 'the ledger transaction (billing.ledger_transaction)';
COMMENT ON COLUMN billing.account_statements.kind IS
    'invoice_finalized, credit_invoice (an invoice whose total is below zero), payment, early_payment_discount, '
    'credit_note, refund, chargeback, void or write_off';
COMMENT ON COLUMN billing.account_statements.description IS 'the transaction''s description (invoice number, payment, ...)';
COMMENT ON COLUMN billing.account_statements.invoice_id IS 'the invoice it concerns, if any';
COMMENT ON COLUMN billing.account_statements.payment_id IS 'the payment it concerns, if any';
COMMENT ON COLUMN billing.account_statements.amount IS
    'the change of what the account owes: positive (invoice, refund) raises it, negative (payment, credit note) lowers it';
COMMENT ON COLUMN billing.account_statements.balance IS
    'what the account owes after this movement (all movements up to it, in posted_on, txn_id order), numeric in '
    'the account''s currency';

-- ---------------------------------------------------------------------------
-- MRR.  The MRR of a subscription on a day is the sum of the monthly values
-- of its licensed (recurring) items that are paid for on that day, less its
-- recurring coupon:
--   * an item's monthly value is its full period amount (the amount the
--     cycle bills for a whole period, billing.price_amount) x 365 /
--     (365 x months + 12 x days) of the cadence (1 month: x 1, 3 months:
--     / 3, 1 year: / 12, 1 week: x 365/84), rounded once by the rounding
--     mode of the account's billing entity, as the cycle rounds;
--   * an item is paid for from greatest(started_on, trial_end) until
--     ended_on, the cancellation (canceled_on, or a scheduled cancel_on) or
--     the pause (paused_on, or a scheduled pause_on);
--   * metered usage, setup fees, one-off charges and credits are not MRR;
--   * a percent coupon of duration forever or repeating takes
--     R(value x percent / 100) off each item over [coupon_from,
--     coupon_until); an amount_off coupon takes off its monthly value
--     (amount_off the same way as a price), at most the subscription's MRR
--     when the coupon starts; a coupon of duration once is not MRR.
-- An account's MRR at a month is its MRR on the last day of that month, in
-- the account's calendar; changes dated after the account's today are not
-- counted yet.  Everything is a sum of changes (+value at a start, -value
-- at an end), so a month's MRR is the previous month's plus its movements.

-- How many months one period of a cadence is worth: the factor that turns
-- a period amount into a monthly one.
CREATE FUNCTION billing.monthly_factor(cadence interval) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT 365::numeric / (365 * (12 * extract(year FROM cadence) + extract(month FROM cadence))
                           + 12 * extract(day FROM cadence))
$$;
COMMENT ON FUNCTION billing.monthly_factor(interval) IS
    'periods per month of a cadence: 365 / (365 x months + 12 x days); 1 for a month, 1/12 for a year, '
    '365/84 for a week';

-- The changes of MRR, one row per account, day and cause.  The monthly
-- value is computed once per price and quantity (a few rows), and the
-- account's today only for the changes dated within a day or two of now,
-- where time zones disagree: both functions cost more than the join.
CREATE VIEW billing._mrr_changes AS
WITH bounds AS MATERIALIZED (
    -- no time zone is behind UTC-12 or ahead of UTC+14
    SELECT billing.today('Etc/GMT+12') AS earliest, billing.today('Etc/GMT-14') AS latest
), value AS MATERIALIZED (
    -- the full period amount, as the cycle bills it, made monthly, in each
    -- rounding mode the entities use (most often one)
    SELECT q.price_id, q.quantity, m.rounding, p.currency,
           CASE WHEN f.factor = 1 THEN v.full_amount
                ELSE billing.round_money(v.full_amount * f.factor, p.currency, m.rounding) END AS value
    FROM (SELECT DISTINCT price_id, quantity FROM billing.subscription_item) q
    CROSS JOIN (SELECT DISTINCT rounding FROM billing.billing_entity) m
    JOIN billing.price p ON p.price_id = q.price_id AND p.usage_type = 'licensed'
    CROSS JOIN LATERAL (SELECT billing.monthly_factor(p.cadence) AS factor) f
    CROSS JOIN LATERAL (SELECT billing.round_money(
                            billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size, q.quantity),
                            p.currency, m.rounding) AS full_amount) v
 ), account_mode AS MATERIALIZED (
    -- each account's rounding mode, its entity's
    SELECT a.account_id, e.rounding, a.timezone
    FROM billing.account a JOIN billing.billing_entity e ON e.entity_id = a.entity_id
 ), item AS (
    SELECT i.account_id, v.currency, v.value,
           greatest(i.started_on, s.trial_end) AS from_date,
           least(i.ended_on, s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS until_date
    FROM billing.subscription_item i
    JOIN account_mode m ON m.account_id = i.account_id
    JOIN value v ON v.price_id = i.price_id AND v.quantity = i.quantity AND v.rounding = m.rounding
    JOIN billing.subscription s ON s.account_id = i.account_id AND s.subscription_id = i.subscription_id
), couponed AS (
    -- the few subscriptions with a recurring coupon, and their items
    SELECT s.account_id, s.subscription_id, v.currency, v.rounding, v.value,
           greatest(i.started_on, s.trial_end) AS from_date,
           least(i.ended_on, s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS until_date,
           s.trial_end, s.coupon_from, s.coupon_until, s.cadence, c.percent_off, c.amount_off,
           least(s.cancel_on, s.canceled_on, s.pause_on, s.paused_on) AS sub_end
    FROM billing.subscription s
    JOIN billing.coupon c ON c.coupon_id = s.coupon_id AND c.duration <> 'once'
    JOIN billing.subscription_item i ON i.account_id = s.account_id AND i.subscription_id = s.subscription_id
    JOIN account_mode m ON m.account_id = s.account_id
    JOIN value v ON v.price_id = i.price_id AND v.quantity = i.quantity AND v.rounding = m.rounding
    WHERE s.coupon_id IS NOT NULL
), piece AS (
    -- the item itself
    SELECT account_id, currency, from_date, until_date, value FROM item
    UNION ALL
    -- its percent discount while the coupon runs
    SELECT account_id, currency, greatest(from_date, coupon_from),
           CASE WHEN until_date IS NULL THEN coupon_until ELSE least(until_date, coupon_until) END,
           -billing.round_money(value * percent_off / 100, currency, rounding)
    FROM couponed WHERE percent_off IS NOT NULL
    UNION ALL
    -- an amount_off coupon, capped at the subscription's MRR when it starts
    SELECT account_id, currency, greatest(coupon_from, trial_end), least(coupon_until, sub_end),
           -least(billing.round_money(to_numeric(amount_off) * billing.monthly_factor(cadence), currency, rounding),
                  coalesce(sum(value) FILTER (WHERE from_date <= greatest(coupon_from, trial_end)
                                                AND (until_date IS NULL
                                                     OR until_date > greatest(coupon_from, trial_end))), 0))
    FROM couponed WHERE amount_off IS NOT NULL
    GROUP BY account_id, subscription_id, currency, rounding, coupon_from, coupon_until, trial_end, sub_end, amount_off,
             cadence
), suspended AS (
    -- the days dunning held the account's subscriptions suspended: from
    -- the suspend step until its case closed (recovered or closed), for
    -- good while it is active or written off; overlapping cases merged
    SELECT account_id, min(a) AS a, nullif(max(coalesce(b, 'infinity')), 'infinity') AS b
    FROM (SELECT account_id, a, b,
                 count(*) FILTER (WHERE starts) OVER (PARTITION BY account_id ORDER BY a, b NULLS LAST) AS island
          FROM (SELECT x.account_id, x.a, x.b,
                       x.a > coalesce(max(coalesce(x.b, 'infinity')) OVER (
                           PARTITION BY x.account_id ORDER BY x.a, x.b NULLS LAST
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), '-infinity') AS starts
                FROM (SELECT c.account_id, t.taken_on AS a,
                             CASE WHEN c.status IN ('recovered', 'closed') THEN c.closed_on END AS b
                      FROM billing.dunning_case c
                      JOIN billing.dunning_action t ON t.account_id = c.account_id AND t.invoice_id = c.invoice_id
                                                   AND t.action = 'suspend' AND t.outcome = 'suspended'
                      WHERE c.suspended) x) y) z
    GROUP BY account_id, island
), all_pieces AS (
    SELECT * FROM piece
    UNION ALL
    -- a suspended customer pays for nothing: every piece is taken back
    -- over the suspension
    SELECT p.account_id, p.currency, greatest(p.from_date, u.a),
           CASE WHEN p.until_date IS NULL THEN u.b WHEN u.b IS NULL THEN p.until_date ELSE least(p.until_date, u.b) END,
           -p.value
    FROM piece p
    JOIN suspended u ON u.account_id = p.account_id
                    AND (p.until_date IS NULL OR u.a < p.until_date) AND (u.b IS NULL OR p.from_date < u.b)
)
SELECT p.account_id, p.currency, v.day, v.change
FROM all_pieces p
CROSS JOIN LATERAL (VALUES (p.from_date, p.value), (p.until_date, -p.value)) v(day, change)
CROSS JOIN bounds b
-- the account's time zone from the materialized account_mode, not a
-- correlated subquery (Citus plans none beside a CTE); its today is still
-- computed only for the changes between the two bounds
JOIN account_mode m ON m.account_id = p.account_id
WHERE v.day IS NOT NULL AND (p.until_date IS NULL OR p.until_date > p.from_date) AND p.value <> 0
  AND (v.day <= b.earliest
       OR (v.day <= b.latest AND v.day <= billing.today(m.timezone)));
COMMENT ON VIEW billing._mrr_changes IS
    'internal: every change of an account''s MRR up to its today (numeric, in the account''s currency): '
    '+value where a recurring item or coupon starts, -value where it ends';

-- Per account and month whose MRR changed: the change, the MRR after it
-- (numeric) and the kind of movement.
CREATE VIEW billing._mrr_account_months AS
SELECT m.account_id, m.currency, m.month, m.change, m.after,
       CASE WHEN m.after - m.change = 0 AND m.earlier_months = 0 THEN 'new'
            WHEN m.after - m.change = 0 THEN 'reactivation'
            WHEN m.after = 0 THEN 'churn'
            WHEN m.change > 0 THEN 'expansion'
            ELSE 'contraction' END AS movement
FROM (SELECT c.account_id, c.currency, c.month, c.change,
             sum(c.change) OVER w AS after,
             count(*) OVER w - 1 AS earlier_months
      -- grouped by account and month first: sorted that way, one sort
      -- serves the grouping and the window (the account fixes the currency)
      FROM (SELECT account_id, date_trunc('month', day::timestamp)::date AS month, currency, sum(change) AS change
            FROM billing._mrr_changes
            GROUP BY 1, 2, 3
            HAVING sum(change) <> 0) c
      WINDOW w AS (PARTITION BY c.account_id ORDER BY c.month)) m;
COMMENT ON VIEW billing._mrr_account_months IS
    'internal: billing.mrr_movements in numeric (the change, the MRR after it, the movement)';

CREATE FUNCTION billing._mrr_movements()
RETURNS TABLE (account_id bigint, currency text, month date, mrr_before numeric, mrr_after numeric,
               change numeric, movement text)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    -- every term was rounded to the currency's digits: the sums are exact
    SELECT account_id, currency, month,
           after - change AS mrr_before,
           after AS mrr_after,
           change,
           movement
    FROM billing._mrr_account_months
$$;
COMMENT ON FUNCTION billing._mrr_movements() IS
    'internal: the rows of the view billing.mrr_movements (jit off: compiling it costs more than running it)';

CREATE VIEW billing.mrr_movements AS SELECT * FROM billing._mrr_movements();
COMMENT ON VIEW billing.mrr_movements IS
    'MRR movements per account and month (only months in which its MRR at the month''s end changed): '
    'new, expansion, contraction, churn, reactivation; see README Reporting for the definition of MRR';
COMMENT ON COLUMN billing.mrr_movements.account_id IS 'the account (the customer)';
COMMENT ON COLUMN billing.mrr_movements.currency IS 'the account''s currency';
COMMENT ON COLUMN billing.mrr_movements.month IS 'the first day of the month, in the account''s calendar';
COMMENT ON COLUMN billing.mrr_movements.mrr_before IS 'the account''s MRR at the end of the month before';
COMMENT ON COLUMN billing.mrr_movements.mrr_after IS 'the account''s MRR at the end of this month';
COMMENT ON COLUMN billing.mrr_movements.change IS 'mrr_after - mrr_before';
COMMENT ON COLUMN billing.mrr_movements.movement IS
    'new (first MRR ever), reactivation (MRR again after churn), expansion (up), contraction (down, not to zero), '
    'churn (down to zero)';

-- entity_id NULL: every account the caller sees (the view); else only the
-- accounts of that billing entity (billing.dashboard_html).
CREATE FUNCTION billing._mrr_by_month(entity_id bigint DEFAULT NULL)
RETURNS TABLE (month date, currency text, mrr numeric, arr numeric, new numeric, expansion numeric, contraction numeric, churn numeric, reactivation numeric, net_change numeric, customers numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH t AS (
        SELECT currency, month,
               sum(change) FILTER (WHERE movement = 'new') AS new,
               sum(change) FILTER (WHERE movement = 'expansion') AS expansion,
               sum(change) FILTER (WHERE movement = 'contraction') AS contraction,
               sum(change) FILTER (WHERE movement = 'churn') AS churn,
               sum(change) FILTER (WHERE movement = 'reactivation') AS reactivation,
               sum(change) AS net,
               count(*) FILTER (WHERE movement IN ('new', 'reactivation'))
                 - count(*) FILTER (WHERE movement = 'churn') AS customers_change
        FROM billing._mrr_account_months
        WHERE _mrr_by_month.entity_id IS NULL
           OR account_id IN (SELECT a.account_id FROM billing.account a WHERE a.entity_id = _mrr_by_month.entity_id)
        GROUP BY 1, 2
    ), months AS (
        SELECT r.currency, m::date AS month
        FROM (SELECT currency, min(month) AS first_month,
                     greatest(max(month), date_trunc('month', billing.today('UTC')::timestamp)::date) AS last_month
              FROM t GROUP BY 1) r
        CROSS JOIN LATERAL generate_series(r.first_month, r.last_month, interval '1 month') m
    ), g AS (
        SELECT ms.currency, ms.month, t.new, t.expansion, t.contraction, t.churn, t.reactivation,
               sum(coalesce(t.net, 0)) OVER w AS mrr,
               sum(coalesce(t.customers_change, 0)) OVER w AS customers
        FROM months ms
        LEFT JOIN t ON t.currency = ms.currency AND t.month = ms.month
        WINDOW w AS (PARTITION BY ms.currency ORDER BY ms.month)
    )
    SELECT g.month, g.currency,
           g.mrr + z.zero AS mrr,
           12 * g.mrr + z.zero AS arr,
           coalesce(g.new, z.zero) AS new,
           coalesce(g.expansion, z.zero) AS expansion,
           coalesce(g.contraction, z.zero) AS contraction,
           coalesce(g.churn, z.zero) AS churn,
           coalesce(g.reactivation, z.zero) AS reactivation,
           coalesce(g.new, 0) + coalesce(g.expansion, 0) + coalesce(g.contraction, 0)
               + coalesce(g.churn, 0) + coalesce(g.reactivation, 0) + z.zero AS net_change,
           g.customers
    FROM g
    -- a zero with the currency's digits, so that every figure shows them
    CROSS JOIN LATERAL (SELECT billing.round_money(0, g.currency) AS zero) z
$$;
COMMENT ON FUNCTION billing._mrr_by_month(bigint) IS
    'internal: the rows of the view billing.mrr_by_month (entity_id NULL), or of one billing entity''s accounts '
    '(jit off: compiling it costs more than running it)';

CREATE VIEW billing.mrr_by_month AS SELECT * FROM billing._mrr_by_month(NULL);
COMMENT ON VIEW billing.mrr_by_month IS
    'MRR and ARR per currency at the end of each month, from the first month with MRR to the current one, with '
    'the month''s movements (mrr = the month before''s mrr + net_change)';
COMMENT ON COLUMN billing.mrr_by_month.month IS 'the first day of the month (accounts'' calendars)';
COMMENT ON COLUMN billing.mrr_by_month.currency IS 'the currency: MRR is never added across currencies';
COMMENT ON COLUMN billing.mrr_by_month.mrr IS 'monthly recurring revenue at the end of the month';
COMMENT ON COLUMN billing.mrr_by_month.arr IS 'annual recurring revenue: 12 x mrr';
COMMENT ON COLUMN billing.mrr_by_month.new IS 'MRR of customers who had none before (positive)';
COMMENT ON COLUMN billing.mrr_by_month.expansion IS 'MRR added by existing customers (positive)';
COMMENT ON COLUMN billing.mrr_by_month.contraction IS 'MRR lost by customers who still have some (negative)';
COMMENT ON COLUMN billing.mrr_by_month.churn IS 'MRR of customers whose MRR went to zero (negative)';
COMMENT ON COLUMN billing.mrr_by_month.reactivation IS 'MRR of customers who had churned and came back (positive)';
COMMENT ON COLUMN billing.mrr_by_month.net_change IS
    'new + expansion + contraction + churn + reactivation: mrr minus the month before''s mrr';
COMMENT ON COLUMN billing.mrr_by_month.customers IS 'accounts with MRR at the end of the month';

-- ---------------------------------------------------------------------------
-- Churn and retention by monthly cohort: the cohort of an account is the
-- month of its first MRR (movement new).

CREATE FUNCTION billing._cohort_retention()
RETURNS TABLE (cohort_month date, currency text, month date, months_since integer, cohort_customers bigint, active_customers numeric, churned_customers bigint, reactivated_customers bigint, customer_retention numeric, cohort_mrr numeric, mrr numeric, mrr_retention numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH mv AS (
        SELECT m.*, min(m.month) FILTER (WHERE m.movement = 'new') OVER (PARTITION BY m.account_id) AS cohort_month
        FROM billing._mrr_account_months m
    ), ev AS (
        SELECT cohort_month, currency, month,
               count(*) FILTER (WHERE movement = 'new') AS joined,
               count(*) FILTER (WHERE movement = 'churn') AS churned,
               count(*) FILTER (WHERE movement = 'reactivation') AS reactivated,
               sum(change) AS mrr_change
        FROM mv
        GROUP BY 1, 2, 3
    ), grid AS (
        SELECT c.cohort_month, c.currency, m::date AS month
        FROM (SELECT cohort_month, currency, max(month) AS last_month FROM ev GROUP BY 1, 2) c
        CROSS JOIN LATERAL generate_series(c.cohort_month,
                                           greatest(c.last_month, date_trunc('month', billing.today('UTC')::timestamp)::date),
                                           interval '1 month') m
    ), g AS (
        SELECT grid.cohort_month, grid.currency, grid.month,
               coalesce(ev.churned, 0) AS churned, coalesce(ev.reactivated, 0) AS reactivated,
               first_value(ev.joined) OVER w AS cohort_customers,
               sum(coalesce(ev.joined, 0) + coalesce(ev.reactivated, 0) - coalesce(ev.churned, 0)) OVER w AS active,
               first_value(ev.mrr_change) OVER w AS cohort_mrr,
               sum(coalesce(ev.mrr_change, 0)) OVER w AS mrr
        FROM grid
        LEFT JOIN ev ON ev.cohort_month = grid.cohort_month AND ev.currency = grid.currency AND ev.month = grid.month
        WINDOW w AS (PARTITION BY grid.cohort_month, grid.currency ORDER BY grid.month)
    )
    SELECT cohort_month, currency, month,
           ((extract(year FROM month) - extract(year FROM cohort_month)) * 12
            + extract(month FROM month) - extract(month FROM cohort_month))::integer AS months_since,
           cohort_customers, active AS active_customers, churned AS churned_customers,
           reactivated AS reactivated_customers,
           round(active / cohort_customers::numeric, 4) AS customer_retention,
           cohort_mrr + billing.round_money(0, currency) AS cohort_mrr,
           mrr + billing.round_money(0, currency) AS mrr,
           CASE WHEN cohort_mrr <> 0 THEN round(mrr / cohort_mrr, 4) END AS mrr_retention
    FROM g
$$;
COMMENT ON FUNCTION billing._cohort_retention() IS 'internal: the rows of the view billing.cohort_retention (jit off: compiling it costs more than running it)';

CREATE VIEW billing.cohort_retention AS SELECT * FROM billing._cohort_retention();
COMMENT ON VIEW billing.cohort_retention IS
    'churn and retention of each monthly cohort (accounts whose first MRR fell in that month), per currency, '
    'for every month from the cohort''s to the current one';
COMMENT ON COLUMN billing.cohort_retention.cohort_month IS 'the month of the cohort''s first MRR (first day)';
COMMENT ON COLUMN billing.cohort_retention.currency IS 'the accounts'' currency (cohorts are per currency)';
COMMENT ON COLUMN billing.cohort_retention.month IS 'the month measured (first day), at its end';
COMMENT ON COLUMN billing.cohort_retention.months_since IS 'months from cohort_month to month (0 for the cohort''s own month)';
COMMENT ON COLUMN billing.cohort_retention.cohort_customers IS 'accounts in the cohort';
COMMENT ON COLUMN billing.cohort_retention.active_customers IS 'of them, accounts with MRR at the end of month';
COMMENT ON COLUMN billing.cohort_retention.churned_customers IS 'of them, accounts whose MRR went to zero in month';
COMMENT ON COLUMN billing.cohort_retention.reactivated_customers IS 'of them, accounts that came back in month';
COMMENT ON COLUMN billing.cohort_retention.customer_retention IS
    'active_customers / cohort_customers, rounded to 4 decimals (1 - customer churn since the cohort month)';
COMMENT ON COLUMN billing.cohort_retention.cohort_mrr IS 'the cohort''s MRR at the end of its own month';
COMMENT ON COLUMN billing.cohort_retention.mrr IS 'the cohort''s MRR at the end of month (expansion and contraction included)';
COMMENT ON COLUMN billing.cohort_retention.mrr_retention IS
    'mrr / cohort_mrr, rounded to 4 decimals: net revenue retention (above 1 when expansion beats churn)';

-- ---------------------------------------------------------------------------
-- Revenue by month and currency.  Each figure is dated by its own event, in
-- the account's calendar: invoices by issue date, payments by received date,
-- credit notes and refunds by the day they were made.

-- entity_id NULL: every account the caller sees (the view); else only that
-- billing entity's.
CREATE FUNCTION billing._revenue_by_month(entity_id bigint DEFAULT NULL)
RETURNS TABLE (month date, currency text, invoiced numeric, tax numeric, net_invoiced numeric, credited numeric, collected numeric, refunded numeric, outstanding numeric, written_off numeric, invoices numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH ev AS (
        SELECT i.currency, date_trunc('month', i.issue_date::timestamp)::date AS month,
               billing.sum_numeric(i.total) AS invoiced, billing.sum_numeric(i.tax) AS tax,
               billing.sum_numeric(i.amount_due) FILTER (WHERE i.status = 'open') AS outstanding,
               billing.sum_numeric(i.amount_due) FILTER (WHERE i.status = 'uncollectible') AS written_off,
               NULL::numeric AS collected, NULL::numeric AS credited, NULL::numeric AS refunded,
               count(*) AS invoices
        FROM billing.invoice i
        WHERE i.status IN ('open', 'paid', 'uncollectible')
          AND (_revenue_by_month.entity_id IS NULL OR i.entity_id = _revenue_by_month.entity_id)
        GROUP BY 1, 2
        UNION ALL
        SELECT billing.currency(p.amount), date_trunc('month', p.received_on::timestamp)::date,
               NULL, NULL, NULL, NULL, billing.sum_numeric(p.amount), NULL, NULL, 0
        FROM billing.payment p
        WHERE _revenue_by_month.entity_id IS NULL
           OR p.account_id IN (SELECT a.account_id FROM billing.account a WHERE a.entity_id = _revenue_by_month.entity_id)
        GROUP BY 1, 2
        UNION ALL
        -- a credit note lowers what was invoiced; one of method refund also
        -- pays that cash out, so it is refunded too (collected - refunded is
        -- the cash kept, as in the ledger's cash account)
        SELECT a.currency, date_trunc('month', billing.today(a.timezone, c.created_at)::timestamp)::date,
               NULL, NULL, NULL, NULL, NULL, billing.sum_numeric(c.amount),
               billing.sum_numeric(c.amount) FILTER (WHERE c.method = 'refund'), 0
        FROM billing.credit_note c JOIN billing.account a ON a.account_id = c.account_id
        WHERE _revenue_by_month.entity_id IS NULL OR a.entity_id = _revenue_by_month.entity_id
        GROUP BY 1, 2
        UNION ALL
        SELECT a.currency, date_trunc('month', billing.today(a.timezone, r.created_at)::timestamp)::date,
               NULL, NULL, NULL, NULL, NULL, NULL, billing.sum_numeric(r.amount), 0
        FROM billing.refund r JOIN billing.account a ON a.account_id = r.account_id
        WHERE _revenue_by_month.entity_id IS NULL OR a.entity_id = _revenue_by_month.entity_id
        GROUP BY 1, 2
    )
    SELECT ev.month, ev.currency,
           coalesce(sum(ev.invoiced), z.zero) AS invoiced,
           coalesce(sum(ev.tax), z.zero) AS tax,
           coalesce(sum(ev.invoiced), z.zero) - coalesce(sum(ev.tax), z.zero) AS net_invoiced,
           coalesce(sum(ev.credited), z.zero) AS credited,
           coalesce(sum(ev.collected), z.zero) AS collected,
           coalesce(sum(ev.refunded), z.zero) AS refunded,
           coalesce(sum(ev.outstanding), z.zero) AS outstanding,
           coalesce(sum(ev.written_off), z.zero) AS written_off,
           sum(ev.invoices) AS invoices
    FROM ev
    CROSS JOIN LATERAL (SELECT billing.round_money(0, ev.currency) AS zero) z
    GROUP BY ev.month, ev.currency, z.zero
$$;
COMMENT ON FUNCTION billing._revenue_by_month(bigint) IS
    'internal: the rows of the view billing.revenue_by_month (entity_id NULL), or of one billing entity''s accounts '
    '(jit off: compiling it costs more than running it)';

CREATE VIEW billing.revenue_by_month AS SELECT * FROM billing._revenue_by_month(NULL);
COMMENT ON VIEW billing.revenue_by_month IS
    'per month and currency: invoiced (by issue date; void invoices left out), collected (payments by received '
    'date), credited (credit notes), refunded, and what is still outstanding or was written off of that month''s '
    'invoices';
COMMENT ON COLUMN billing.revenue_by_month.month IS 'the first day of the month, in the accounts'' calendars';
COMMENT ON COLUMN billing.revenue_by_month.currency IS
    'the currency: amounts are never added across currencies; every figure of the row is numeric in it';
COMMENT ON COLUMN billing.revenue_by_month.invoiced IS
    'totals (tax included) of the invoices issued in the month that were not voided';
COMMENT ON COLUMN billing.revenue_by_month.tax IS 'the tax in them (exclusive and inclusive)';
COMMENT ON COLUMN billing.revenue_by_month.net_invoiced IS 'invoiced - tax: the revenue posted to the ledger';
COMMENT ON COLUMN billing.revenue_by_month.credited IS 'credit notes issued in the month (tax included)';
COMMENT ON COLUMN billing.revenue_by_month.collected IS 'payments received in the month (before refunds)';
COMMENT ON COLUMN billing.revenue_by_month.refunded IS
    'cash paid back in the month: refunds, chargebacks and credit notes of method refund';
COMMENT ON COLUMN billing.revenue_by_month.outstanding IS 'what the month''s invoices still ask for now (open invoices)';
COMMENT ON COLUMN billing.revenue_by_month.written_off IS 'what was still due on the month''s invoices written off';
COMMENT ON COLUMN billing.revenue_by_month.invoices IS 'how many invoices were issued in the month (not voided)';

-- ---------------------------------------------------------------------------
-- Days sales outstanding: receivables / what was invoiced over the last
-- days days x days, per currency, as of each account's today.

-- The recent invoices through the BRIN index on issue_date (50_invoicing.sql).

-- entity_id NULL: every account the caller sees; else only that billing
-- entity's (billing.dashboard_html).
CREATE FUNCTION billing._days_sales_outstanding(days integer, entity_id bigint)
RETURNS TABLE (currency text, as_of date, window_days integer, receivable numeric, invoiced numeric,
               dso_days numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    -- no time zone is behind UTC-12 or ahead of UTC+14: every account's
    -- today is between these two
    v_earliest date := billing.today('Etc/GMT+12');
    v_latest date := billing.today('Etc/GMT-14');
BEGIN
    IF days IS NULL OR days < 1 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 1 and 3660, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 90 days.';
    END IF;
    RETURN QUERY
    WITH open AS (
        SELECT billing.currency(i.amount_due) AS currency, billing.sum_numeric(i.amount_due) AS receivable
        FROM billing.invoice i
        WHERE i.status = 'open'
          AND (_days_sales_outstanding.entity_id IS NULL OR i.entity_id = _days_sales_outstanding.entity_id)
        GROUP BY 1
    ), win AS (
        -- issued in (today - days, today] of the account; the account's
        -- today is looked up only for the days where time zones disagree
        SELECT i.currency, billing.sum_numeric(i.total) AS invoiced
        FROM billing.invoice i
        WHERE i.status IN ('open', 'paid', 'uncollectible')
          AND (_days_sales_outstanding.entity_id IS NULL OR i.entity_id = _days_sales_outstanding.entity_id)
          AND i.issue_date > v_earliest - _days_sales_outstanding.days AND i.issue_date <= v_latest
          AND ((i.issue_date > v_latest - _days_sales_outstanding.days AND i.issue_date <= v_earliest)
               OR (SELECT i.issue_date > t.today - _days_sales_outstanding.days AND i.issue_date <= t.today
                   FROM (SELECT billing.today(a.timezone) AS today FROM billing.account a
                         WHERE a.account_id = i.account_id) t))
        GROUP BY 1
    )
    SELECT c.currency::text, billing.today('UTC'), _days_sales_outstanding.days,
           coalesce(o.receivable, billing.round_money(0, c.currency)),
           coalesce(w.invoiced, billing.round_money(0, c.currency)),
           CASE WHEN w.invoiced > 0
                THEN round(coalesce(o.receivable, 0) / w.invoiced
                           * _days_sales_outstanding.days, 1)
           END
    FROM (SELECT o.currency FROM open o UNION SELECT w.currency FROM win w) c
    LEFT JOIN open o ON o.currency = c.currency
    LEFT JOIN win w ON w.currency = c.currency
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION billing._days_sales_outstanding(integer, bigint) IS
    'internal: billing.days_sales_outstanding(days) (entity_id NULL), or of one billing entity''s invoices';

CREATE FUNCTION billing.days_sales_outstanding(days integer DEFAULT 90)
RETURNS TABLE (currency text, as_of date, window_days integer, receivable numeric, invoiced numeric,
               dso_days numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT * FROM billing._days_sales_outstanding(days, NULL)
$$;
COMMENT ON FUNCTION billing.days_sales_outstanding(integer) IS
    'days sales outstanding per currency: amount due on open invoices / totals invoiced in the last days days '
    '(up to each account''s today) x days; NULL when nothing was invoiced in that time';

CREATE VIEW billing.days_sales_outstanding AS
SELECT * FROM billing.days_sales_outstanding(90);
COMMENT ON VIEW billing.days_sales_outstanding IS
    'days sales outstanding per currency over the last 90 days (billing.days_sales_outstanding(days) for another window)';
COMMENT ON COLUMN billing.days_sales_outstanding.currency IS 'the currency';
COMMENT ON COLUMN billing.days_sales_outstanding.as_of IS 'today in UTC (each account''s window ends on its own today)';
COMMENT ON COLUMN billing.days_sales_outstanding.window_days IS 'the window: invoices issued in the last days days, today included';
COMMENT ON COLUMN billing.days_sales_outstanding.receivable IS 'amount due on all open invoices now';
COMMENT ON COLUMN billing.days_sales_outstanding.invoiced IS 'totals of the invoices issued in the window (void left out)';
COMMENT ON COLUMN billing.days_sales_outstanding.dso_days IS
    'receivable / invoiced x days, to 1 decimal: how many days of sales are waiting to be paid';

-- ---------------------------------------------------------------------------
-- Upcoming invoices: what the cycle will bill over the next days days,
-- computed by billing._lines_to_bill in preview mode, the computation the cycle
-- inserts and billing.preview_invoice returns (invariant 7), so an upcoming
-- invoice is the invoice the cycle makes if nothing changes before.

CREATE FUNCTION billing.upcoming_invoices(days integer DEFAULT 7)
RETURNS TABLE (account_id bigint, subscription_id bigint, bill_date date, currency text, subtotal numeric,
               discount numeric, tax numeric, total numeric, lines bigint)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_at timestamptz := billing.now();
BEGIN
    IF days IS NULL OR days < 0 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 0 and 3660, not %', coalesce(days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 7 days.';
    END IF;
    RETURN QUERY
    WITH s AS (
        -- the subscriptions due by the last day of the window in their
        -- account's time zone, grouped by that day: one preview per group
        SELECT billing.today(a.timezone, v_at) + upcoming_invoices.days AS until,
               array_agg(s.account_id) AS accounts, array_agg(s.subscription_id) AS subscriptions
        FROM billing.subscription s
        JOIN billing.account a ON a.account_id = s.account_id
        -- no account is ahead of UTC+14: an index bound for every time zone
        WHERE s.next_bill_date <= billing.today('Etc/GMT-14', v_at) + upcoming_invoices.days
          AND s.next_bill_date <= billing.today(a.timezone, v_at) + upcoming_invoices.days
        GROUP BY 1
    )
    SELECT d.account_id, d.subscription_id, d.bill_date, min(billing.currency(d.amount)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind NOT IN ('discount', 'tax')), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind = 'discount'), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE d.kind = 'tax'), min(z.zero)),
           coalesce(billing.sum_numeric(d.amount) FILTER (WHERE NOT d.tax_inclusive), min(z.zero)),
           count(*)
    FROM s
    CROSS JOIN LATERAL billing._lines_to_bill(s.accounts, s.subscriptions, s.until, v_at, 'preview') d
    CROSS JOIN LATERAL (SELECT billing.round_money(0, billing.currency(d.amount)) AS zero) z
    WHERE d.kind <> 'header'
    GROUP BY d.account_id, d.subscription_id, d.bill_date
    ORDER BY d.bill_date, d.account_id, d.subscription_id;
END $$;
COMMENT ON FUNCTION billing.upcoming_invoices(integer) IS
    'the invoices the cycle will make in the next days days (each account''s today + days included), one row '
    'per invoice with its totals, by the same computation as billing.preview_invoice; invoices already due and '
    'not yet billed are included';

-- The view covers a week: the preview prices every subscription due in the
-- window, the same work as the cycle (docs/performance.md).
CREATE VIEW billing.upcoming_invoices AS
SELECT * FROM billing.upcoming_invoices(7);
COMMENT ON VIEW billing.upcoming_invoices IS
    'the invoices the cycle will make in the next 7 days (billing.upcoming_invoices(days) for another window)';
COMMENT ON COLUMN billing.upcoming_invoices.account_id IS 'the account';
COMMENT ON COLUMN billing.upcoming_invoices.subscription_id IS 'the subscription the invoice bills';
COMMENT ON COLUMN billing.upcoming_invoices.bill_date IS
    'the date the invoice is for: the cycle makes it that day (its issue date when the cycle runs on time)';
COMMENT ON COLUMN billing.upcoming_invoices.currency IS 'the account''s currency: the totals are numeric in it';
COMMENT ON COLUMN billing.upcoming_invoices.subtotal IS 'charges and credits before discount and tax';
COMMENT ON COLUMN billing.upcoming_invoices.discount IS 'coupon discounts (negative or zero)';
COMMENT ON COLUMN billing.upcoming_invoices.tax IS 'tax, exclusive and inclusive';
COMMENT ON COLUMN billing.upcoming_invoices.total IS 'what the invoice will ask for: subtotal + discount + exclusive tax';
COMMENT ON COLUMN billing.upcoming_invoices.lines IS 'how many lines the invoice will have';

-- src/sql/install/83_exchange_rates.sql
-- Exchange rates and the reports in a reporting currency.
--
-- Billing never converts money it bills: an invoice, a payment and the
-- ledger stay in the account's currency.  Only reports convert, and each
-- figure is converted once, rounded once:
--   * a rate is an exact numeric (positive, below 10^9, at most 12
--     decimals), one unit of from_currency in to_currency, set for a day
--     and in force until the day of the next rate of the pair; a pair has
--     one direction only (the inverse of a rate is not exact, so EUR->USD
--     does not give USD->EUR: set both);
--   * a conversion multiplies by the rate in force on the report's date and
--     rounds once to the target currency's minor units by billing.rounding
--     (billing.round_money); the sums of converted figures are exact;
--   * a report without the rate it needs raises no_data_found (P0002),
--     naming the pair and the date: a figure left out or shown NULL would
--     make a total silently wrong;
--   * the dates: revenue at the invoice's issue date (a credit note's
--     reversal at its invoice's, so it takes back what was converted), MRR
--     at the last day of its month, aging at each account's today (the
--     as_of of billing.ar_aging).
-- Rates are shared by every billing entity, like the catalog: setting one
-- needs a role bound to every entity.

CREATE TABLE billing.exchange_rate (
    from_currency billing.currency_code NOT NULL,
    to_currency   billing.currency_code NOT NULL,
    effective_on  date NOT NULL,
    -- NaN fails the upper bound; scale bounds the lowest rate at 10^-12
    rate          numeric NOT NULL CHECK (rate > 0 AND rate < 1000000000 AND scale(rate) <= 12),
    set_at        timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (from_currency, to_currency, effective_on),
    CHECK (from_currency <> to_currency)
);
COMMENT ON TABLE billing.exchange_rate IS
    'exchange rates for reports: one unit of from_currency is rate units of to_currency from effective_on until '
    'the next rate of the pair; written by billing.set_exchange_rate';
COMMENT ON COLUMN billing.exchange_rate.rate IS 'exact: positive, below 10^9, at most 12 decimals';
COMMENT ON COLUMN billing.exchange_rate.effective_on IS 'the first day the rate is in force';
SELECT pg_catalog.pg_extension_config_dump('billing.exchange_rate', '');

-- Raises 22023 unless code is a currency billing.amount knows.
CREATE FUNCTION billing._check_currency(code text, what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF code IS NULL OR NOT EXISTS (SELECT FROM billing.currency_list() c WHERE c.code = _check_currency.code) THEN
        RAISE EXCEPTION '% must be an ISO 4217 currency code, not %', what, coalesce(quote_literal(code), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'billing.currencies lists them (upper case).';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_currency(text, text) IS
    'internal: raises 22023 unless code is a currency of billing.currencies';

CREATE FUNCTION billing.set_exchange_rate(from_currency text, to_currency text, rate numeric, on_date date)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('set an exchange rate');
    PERFORM billing._check_currency(from_currency, 'from_currency');
    PERFORM billing._check_currency(to_currency, 'to_currency');
    IF from_currency = to_currency THEN
        RAISE EXCEPTION 'an exchange rate converts between two currencies, not % to itself', from_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A currency converts to itself at 1 without a rate.';
    END IF;
    IF rate IS NULL OR rate = 'NaN' OR rate <= 0 OR rate >= 1000000000 OR scale(rate) > 12 THEN
        RAISE EXCEPTION 'an exchange rate must be positive, below 1000000000 and have at most 12 decimals, not %',
            coalesce(rate::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The rate is one unit of from_currency in to_currency, as an exact number.';
    END IF;
    IF on_date IS NULL THEN
        RAISE EXCEPTION 'an exchange rate needs the date it is in force from'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM billing._check_date(on_date, 'on_date', billing.today('UTC'));
    INSERT INTO billing.exchange_rate AS x (from_currency, to_currency, effective_on, rate)
    VALUES (from_currency, to_currency, on_date, rate)
    ON CONFLICT ON CONSTRAINT exchange_rate_pkey
    DO UPDATE SET rate = excluded.rate, set_at = billing.now();
END $$;
COMMENT ON FUNCTION billing.set_exchange_rate(text, text, numeric, date) IS
    'sets the rate of one unit of from_currency in to_currency from on_date until the pair''s next rate (again for '
    'the same day: replaces it, and the reports that used it change); exact, positive, below 10^9, at most 12 '
    'decimals; needs a role bound to every entity';

-- The rate in force on a day: the pair's latest rate set for that day or
-- before (through the primary key); 1 for a currency to itself.
CREATE FUNCTION billing.exchange_rate_on(from_currency text, to_currency text, on_date date)
RETURNS numeric LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_rate numeric;
BEGIN
    IF from_currency IS NULL OR to_currency IS NULL OR on_date IS NULL THEN
        RAISE EXCEPTION 'exchange_rate_on needs two currencies and a date'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_currency = to_currency THEN
        RETURN 1;
    END IF;
    SELECT x.rate INTO v_rate FROM billing.exchange_rate x
    WHERE x.from_currency = exchange_rate_on.from_currency AND x.to_currency = exchange_rate_on.to_currency
      AND x.effective_on <= on_date
    ORDER BY x.effective_on DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no exchange rate from % to % on or before %', from_currency, to_currency, on_date
            USING ERRCODE = 'no_data_found',
                  HINT = 'Set one with billing.set_exchange_rate(from_currency, to_currency, rate, on_date).';
    END IF;
    RETURN v_rate;
END $$;
COMMENT ON FUNCTION billing.exchange_rate_on(text, text, date) IS
    'the rate of one unit of from_currency in to_currency in force on on_date (1 for a currency to itself); '
    'P0002 when the pair has no rate on or before that day';

-- The one conversion of the reports: value x rate, rounded once to the
-- target currency by billing.rounding, numeric without a bound (a report's
-- sum need not fit an amount).
CREATE FUNCTION billing._convert_at(value numeric, rate numeric, to_currency text)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing.round_money(value * rate, to_currency)
$$;
COMMENT ON FUNCTION billing._convert_at(numeric, numeric, text) IS
    'internal: the conversion rule of the reports: value x rate rounded once to to_currency by billing.rounding';

CREATE FUNCTION billing._convert(value numeric, from_currency text, to_currency text, on_date date)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._convert_at(value, billing.exchange_rate_on(from_currency, to_currency, on_date), to_currency)
$$;
COMMENT ON FUNCTION billing._convert(numeric, text, text, date) IS
    'internal: value in from_currency converted at the rate in force on on_date, rounded once (billing._convert_at)';

CREATE FUNCTION billing.convert_amount(value billing.amount, to_currency text, on_date date)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(to_currency, 'to_currency');
    IF value IS NULL THEN
        RAISE EXCEPTION 'convert_amount needs an amount' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN billing.amount(billing._convert(billing.to_numeric(value), billing.currency(value), to_currency, on_date),
                          to_currency);
END $$;
COMMENT ON FUNCTION billing.convert_amount(billing.amount, text, date) IS
    'an amount in another currency at the rate in force on on_date, rounded once to its minor units by '
    'billing.rounding; P0002 without a rate, 22003 when the result is beyond an amount''s range';

-- Checks a reporting currency and a month; returns the month's first day.
CREATE FUNCTION billing._check_report_month(currency text, month date, what text) RETURNS date
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(currency, 'the reporting currency');
    IF month IS NULL THEN
        RAISE EXCEPTION '% must be a date, not NULL', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM billing._check_date(month, what, billing.today('UTC'));
    RETURN date_trunc('month', month::timestamp)::date;
END $$;
COMMENT ON FUNCTION billing._check_report_month(text, date, text) IS
    'internal: 22023 for an unknown currency or a NULL month, 22008 for a month outside billing''s dates; the '
    'month''s first day';

-- MRR in a reporting currency: each currency's MRR and movements at the
-- end of the month (billing.mrr_by_month) converted at the rate in force on
-- the month's last day.
CREATE FUNCTION billing.mrr_in(reporting_currency text, for_month date)
RETURNS TABLE (month date, currency text, rate_on date, mrr numeric, arr numeric, new numeric, expansion numeric,
               contraction numeric, churn numeric, reactivation numeric, customers numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_month date := billing._check_report_month(reporting_currency, for_month, 'for_month');
    v_on date := (v_month + interval '1 month' - interval '1 day')::date;
BEGIN
    RETURN QUERY
    SELECT v_month, reporting_currency, v_on,
           coalesce(sum(c.mrr), 0) + z.zero, 12 * coalesce(sum(c.mrr), 0) + z.zero,
           coalesce(sum(c.new), 0) + z.zero, coalesce(sum(c.expansion), 0) + z.zero,
           coalesce(sum(c.contraction), 0) + z.zero, coalesce(sum(c.churn), 0) + z.zero,
           coalesce(sum(c.reactivation), 0) + z.zero, coalesce(sum(m.customers), 0)
    FROM (SELECT billing.round_money(0, reporting_currency) AS zero) z
    LEFT JOIN billing._mrr_by_month() m ON m.month = v_month
    LEFT JOIN LATERAL (SELECT billing._convert(m.mrr, m.currency, reporting_currency, v_on) AS mrr,
                              billing._convert(m.new, m.currency, reporting_currency, v_on) AS new,
                              billing._convert(m.expansion, m.currency, reporting_currency, v_on) AS expansion,
                              billing._convert(m.contraction, m.currency, reporting_currency, v_on) AS contraction,
                              billing._convert(m.churn, m.currency, reporting_currency, v_on) AS churn,
                              billing._convert(m.reactivation, m.currency, reporting_currency, v_on) AS reactivation
                       WHERE m.currency IS NOT NULL) c ON true
    GROUP BY z.zero;
END $$;
COMMENT ON FUNCTION billing.mrr_in(text, date) IS
    'MRR, ARR and the MRR movements of a month (billing.mrr_by_month) in one reporting currency: each currency''s '
    'figure converted once at the rate in force on the month''s last day (rate_on) and rounded once, then added; '
    'arr = 12 x mrr; P0002 when a rate is missing';

-- Aging in a reporting currency: each account's row of billing.ar_aging,
-- each bucket converted at the rate in force on the row's as_of.
CREATE FUNCTION billing.aging_in(reporting_currency text)
RETURNS TABLE (account_id bigint, account_name text, account_currency text, currency text, as_of date,
               rate numeric, current numeric, days_1_30 numeric, days_31_60 numeric, days_61_90 numeric,
               days_over_90 numeric, total_due numeric, open_invoices bigint, oldest_due_date date)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(reporting_currency, 'the reporting currency');
    RETURN QUERY
    SELECT a.account_id, a.account_name, a.currency, reporting_currency, a.as_of, r.rate,
           c.current, c.d30, c.d60, c.d90, c.over, c.current + c.d30 + c.d60 + c.d90 + c.over,
           a.open_invoices, a.oldest_due_date
    FROM billing._ar_aging() a
    CROSS JOIN LATERAL (SELECT billing.exchange_rate_on(a.currency, reporting_currency, a.as_of) AS rate) r
    CROSS JOIN LATERAL (SELECT billing._convert_at(a.current, r.rate, reporting_currency) AS current,
                               billing._convert_at(a.days_1_30, r.rate, reporting_currency) AS d30,
                               billing._convert_at(a.days_31_60, r.rate, reporting_currency) AS d60,
                               billing._convert_at(a.days_61_90, r.rate, reporting_currency) AS d90,
                               billing._convert_at(a.days_over_90, r.rate, reporting_currency) AS over) c
    ORDER BY a.account_id;
END $$;
COMMENT ON FUNCTION billing.aging_in(text) IS
    'receivables aging (billing.ar_aging) in one reporting currency: each bucket of each account converted once at '
    'the rate in force on the row''s as_of (the account''s today) and rounded once; total_due is the sum of the '
    'converted buckets; P0002 when a rate is missing';

-- src/sql/install/84_revenue.sql
-- Revenue recognition: when the revenue an invoice posts to the ledger is
-- earned.  Computed when read, from the invoice lines, never posted: the
-- ledger's revenue account holds what was invoiced (total - tax, posted by
-- billing._post_invoices_finalized) and the discounts account the net part
-- of credit notes; the schedule below splits exactly those amounts over the
-- days they are earned, so for every entity and currency
--     recognized to date + deferred = net revenue invoiced - net credited
-- holds by construction (sql/revenue.sql checks it against the ledger).
-- Nothing is stored, so nothing can drift from the invoices, and a report
-- needs no scheduled step to be current.
--
-- The rules, each written once here:
--   * the revenue of a line: the invoices that are not drafts or void
--     (open, paid, uncollectible: a write-off is bad debt, not a reversal
--     of revenue) have charge lines (every kind but discount and tax).  A
--     line's revenue is its amount plus its share of its tax group's
--     discount lines, less its share of the group's tax-included lines (tax
--     is never revenue); the group is the invoice's lines of one tax rate,
--     as billing._discount_and_tax makes them.  The shares are
--     billing.allocate of the group's adjustment in proportion to the
--     group's positive line amounts (every line alike when none is
--     positive), so the lines of an invoice sum to its total - tax exactly;
--   * when it is earned: a line with a service period of at least one day
--     that is not usage (subscription, proration, credit for a period) is
--     earned per day of [period_start, period_end), billing.split of its
--     revenue over those days (equal parts, the extra minor units to the
--     first days: the parts sum to the line).  Usage is billed in arrears,
--     when its period is over, and lines without a period (one-off items,
--     setup and late fees) are earned at once: both on the invoice's issue
--     date.  Nothing is earned before the invoice exists: a day before the
--     issue date is counted on the issue date;
--   * credit notes reverse: the net part of a credit note (its amount less
--     its tax, the amount it posts to discounts) is allocated over the
--     invoice's lines in proportion to their positive revenue, and each
--     share is split over the line's days as the line is; days before the
--     credit note's date (the account's date when it was made) are
--     reversed on that date, later days on their day.  Refunds of payments
--     move cash, not revenue: they reverse nothing (a credit note of method
--     refund does, as a credit note);
--   * dates are the account's calendar; a month is its first day.

-- One row per charge line of every invoice that is not a draft or void:
-- its revenue (billing.amount, in the invoice's currency) and its days.
CREATE FUNCTION billing._revenue_lines()
RETURNS TABLE (entity_id bigint, account_id bigint, invoice_id bigint, invoice_line_id bigint, currency text,
               issue_date date, kind text, price_id bigint, period_start date, days integer,
               revenue billing.amount)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH l AS (
        SELECT i.entity_id, i.account_id, i.invoice_id, l.invoice_line_id, i.currency::text AS currency,
               i.issue_date, l.kind, l.price_id, l.tax_rate_id, l.amount, l.tax_inclusive,
               CASE WHEN l.kind NOT IN ('usage', 'discount', 'tax') AND l.period_end > l.period_start
                    THEN l.period_start END AS period_start,
               CASE WHEN l.kind NOT IN ('usage', 'discount', 'tax') AND l.period_end > l.period_start
                    THEN l.period_end - l.period_start ELSE 1 END AS days
        FROM billing.invoice i
        JOIN billing.invoice_line l ON l.account_id = i.account_id AND l.invoice_id = i.invoice_id
        WHERE i.status IN ('open', 'paid', 'uncollectible')
    ), g AS (
        -- per tax group: its charge lines in order, and what its discounts
        -- (negative) and included tax take from them; only the invoices
        -- with a discount or an included tax line, the others' groups take
        -- nothing (ordered aggregates per group of every invoice would cost
        -- more than the rest of the schedule)
        SELECT c.account_id, c.invoice_id, min(c.currency) AS currency,
               array_agg(c.invoice_line_id ORDER BY c.invoice_line_id)
                   FILTER (WHERE c.kind NOT IN ('discount', 'tax')) AS ids,
               array_agg(greatest(billing.to_numeric(c.amount), 0) ORDER BY c.invoice_line_id)
                   FILTER (WHERE c.kind NOT IN ('discount', 'tax')) AS ratios,
               coalesce(billing.sum_numeric(c.amount) FILTER (WHERE c.kind = 'discount'), 0)
                 - coalesce(billing.sum_numeric(c.amount) FILTER (WHERE c.tax_inclusive), 0) AS adjust
        FROM l c
        WHERE (c.account_id, c.invoice_id) IN (SELECT x.account_id, x.invoice_id FROM l x
                                               WHERE x.kind = 'discount' OR x.tax_inclusive)
        GROUP BY c.account_id, c.invoice_id, c.tax_rate_id
    ), share AS (
        SELECT g.account_id, g.invoice_id, s.invoice_line_id, s.part
        FROM g
        CROSS JOIN LATERAL unnest(g.ids,
                                  billing.allocate(billing.amount(g.adjust, g.currency),
                                                   CASE WHEN (SELECT sum(r) FROM unnest(g.ratios) r) > 0 THEN g.ratios
                                                        ELSE array_fill(1::numeric, ARRAY[cardinality(g.ratios)]) END))
                                  s(invoice_line_id, part)
        WHERE g.adjust <> 0 AND g.ids IS NOT NULL
    )
    SELECT l.entity_id, l.account_id, l.invoice_id, l.invoice_line_id, l.currency, l.issue_date, l.kind,
           l.price_id, l.period_start, l.days, coalesce(l.amount + s.part, l.amount)
    FROM l
    LEFT JOIN share s ON s.account_id = l.account_id AND s.invoice_id = l.invoice_id
                     AND s.invoice_line_id = l.invoice_line_id
    WHERE l.kind NOT IN ('discount', 'tax')
$$;
COMMENT ON FUNCTION billing._revenue_lines() IS
    'internal: the revenue of every charge line of the invoices that are not drafts or void (its amount, plus its '
    'share of its tax group''s discounts, less its share of included tax: billing.allocate), with its days';

-- The schedule: what each line (and each credit note's share of it) adds
-- to the revenue of each month, in numeric with the currency's digits.
-- booked_on is the day the ledger posted it (the invoice's issue date, the
-- credit note's date); a part is never recognized before it: recognized in
-- month m = the parts of the days in m, a day before booked_on counting on
-- booked_on.
CREATE FUNCTION billing._revenue_schedule()
RETURNS TABLE (entity_id bigint, account_id bigint, currency text, invoice_id bigint, invoice_line_id bigint,
               credit_note_id bigint, kind text, price_id bigint, issue_date date, booked_on date, month date,
               recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH r AS MATERIALIZED (
        SELECT * FROM billing._revenue_lines()
    ), inv AS (
        -- an invoice's lines in order, weighted by their positive revenue
        -- (every line alike when none is positive); only the invoices with
        -- a credit note
        SELECT r.account_id, r.invoice_id, array_agg(r.invoice_line_id ORDER BY r.invoice_line_id) AS ids,
               array_agg(greatest(billing.to_numeric(r.revenue), 0) ORDER BY r.invoice_line_id) AS ratios
        FROM r
        WHERE (r.account_id, r.invoice_id) IN (SELECT c.account_id, c.invoice_id FROM billing.credit_note c)
        GROUP BY 1, 2
    ), cn AS (
        -- each credit note's net part (what it posts to discounts: amount
        -- less its tax), over the invoice's lines
        SELECT c.account_id, c.invoice_id, c.credit_note_id, s.invoice_line_id, s.part,
               billing.today(a.timezone, c.created_at) AS credited_on
        FROM billing.credit_note c
        JOIN billing.account a ON a.account_id = c.account_id
        JOIN inv ON inv.account_id = c.account_id AND inv.invoice_id = c.invoice_id
        CROSS JOIN LATERAL unnest(inv.ids,
                                  billing.allocate(c.amount - c.tax,
                                                   CASE WHEN (SELECT sum(x) FROM unnest(inv.ratios) x) > 0 THEN inv.ratios
                                                        ELSE array_fill(1::numeric, ARRAY[cardinality(inv.ratios)]) END))
                                  s(invoice_line_id, part)
        WHERE billing.to_numeric(c.amount - c.tax) <> 0
    ), piece AS (
        SELECT r.*, NULL::bigint AS credit_note_id, r.issue_date AS booked_on, r.revenue AS amount FROM r
        UNION ALL
        SELECT r.*, cn.credit_note_id, greatest(cn.credited_on, r.issue_date), -cn.part
        FROM cn
        JOIN r ON r.account_id = cn.account_id AND r.invoice_id = cn.invoice_id AND r.invoice_line_id = cn.invoice_line_id
        WHERE billing.to_numeric(cn.part) <> 0
    )
    SELECT p.entity_id, p.account_id, p.currency, p.invoice_id, p.invoice_line_id, p.credit_note_id, p.kind,
           p.price_id, p.issue_date, p.booked_on, m.month,
           round((x.sign * (x.q * (m.last_day - m.first_day + 1)
                            + greatest(0, least(m.last_day, x.r) - m.first_day + 1)))::numeric
                 / 10::numeric ^ x.scale, x.scale) AS recognized
    FROM piece p
    -- One part per day, as billing.split makes them (they sum to the
    -- piece): every day |units| / days minor units, the |units| % days left
    -- over one each to the first days.  Day n is period_start + n - 1; it
    -- counts in its month, or in booked_on's for the days before booked_on,
    -- so the months run from greatest(period_start, booked_on)'s to the last
    -- day's, the first of them taking every day from day 1.  The sum of the
    -- parts of days a..b is computed rather than the parts themselves: a
    -- row per month instead of one per day.
    CROSS JOIN LATERAL (
        SELECT CASE WHEN billing.minor_units(p.amount) < 0 THEN -1 ELSE 1 END AS sign,
               abs(billing.minor_units(p.amount)) / p.days AS q, abs(billing.minor_units(p.amount)) % p.days AS r,
               billing.scale(p.amount) AS scale,
               date_trunc('month', greatest(p.period_start, p.booked_on)::timestamp) AS first_month,
               date_trunc('month', greatest(p.period_start + (p.days - 1), p.booked_on)::timestamp) AS last_month
    ) x
    CROSS JOIN LATERAL (
        SELECT g.month::date AS month,
               CASE WHEN g.month = x.first_month THEN 1 ELSE g.month::date - p.period_start + 1 END AS first_day,
               CASE WHEN g.month = x.last_month THEN p.days
                    ELSE (g.month + interval '1 month')::date - p.period_start END AS last_day
        FROM generate_series(x.first_month, x.last_month, interval '1 month') g(month)
    ) m
$$;
COMMENT ON FUNCTION billing._revenue_schedule() IS
    'internal: the rows of the view billing.revenue_schedule: per charge line, and per credit note''s share of it, '
    'the revenue recognized in each month';

CREATE VIEW billing.revenue_schedule AS SELECT * FROM billing._revenue_schedule();
COMMENT ON VIEW billing.revenue_schedule IS
    'revenue recognition: per invoice line (and per credit note''s reversal of it) and month, the revenue '
    'recognized in that month; a line with a service period (not usage) is earned per day of [period_start, '
    'period_end), others on the issue date; void invoices and drafts recognize nothing (README, Reporting)';
COMMENT ON COLUMN billing.revenue_schedule.entity_id IS 'the invoice''s billing entity';
COMMENT ON COLUMN billing.revenue_schedule.account_id IS 'the account';
COMMENT ON COLUMN billing.revenue_schedule.currency IS 'the invoice''s currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_schedule.invoice_id IS 'the invoice';
COMMENT ON COLUMN billing.revenue_schedule.invoice_line_id IS 'the charge line (every kind but discount and tax)';
COMMENT ON COLUMN billing.revenue_schedule.credit_note_id IS
    'the credit note whose share of the line this row reverses (NULL: the line''s own revenue)';
COMMENT ON COLUMN billing.revenue_schedule.kind IS 'the line''s kind (subscription, proration, usage, one_off, ...)';
COMMENT ON COLUMN billing.revenue_schedule.price_id IS 'the line''s price (NULL for one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_schedule.issue_date IS 'the invoice''s issue date';
COMMENT ON COLUMN billing.revenue_schedule.booked_on IS
    'the day the ledger posted it: the issue date, or the credit note''s date; nothing is recognized before it';
COMMENT ON COLUMN billing.revenue_schedule.month IS 'the month recognized (first day), in the account''s calendar';
COMMENT ON COLUMN billing.revenue_schedule.recognized IS
    'the revenue recognized in the month: the sum of the day parts (billing.split of the line''s revenue over its '
    'days) in it; negative for a credit note''s reversal';

-- Per currency and month, from the first month with revenue to the last
-- one scheduled (or the current one): booked, recognized, deferred.
CREATE FUNCTION billing._revenue_months()
RETURNS TABLE (month date, currency text, booked numeric, recognized numeric, from_invoices numeric,
               reversed numeric, deferred numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH s AS MATERIALIZED (
        SELECT * FROM billing._revenue_schedule()
    ), ev AS (
        SELECT s.currency, date_trunc('month', s.booked_on::timestamp)::date AS month,
               sum(s.recognized) AS booked, 0 AS recognized, 0 AS from_invoices, 0 AS reversed
        FROM s GROUP BY 1, 2
        UNION ALL
        SELECT s.currency, s.month, 0, sum(s.recognized),
               coalesce(sum(s.recognized) FILTER (WHERE s.credit_note_id IS NULL), 0),
               coalesce(sum(s.recognized) FILTER (WHERE s.credit_note_id IS NOT NULL), 0)
        FROM s GROUP BY 1, 2
    ), t AS (
        SELECT ev.currency, ev.month, sum(ev.booked) AS booked, sum(ev.recognized) AS recognized,
               sum(ev.from_invoices) AS from_invoices, sum(ev.reversed) AS reversed
        FROM ev GROUP BY 1, 2
    ), months AS (
        SELECT r.currency, m::date AS month
        FROM (SELECT t.currency, min(t.month) AS first_month,
                     greatest(max(t.month), date_trunc('month', billing.today('UTC')::timestamp)::date) AS last_month
              FROM t GROUP BY 1) r
        CROSS JOIN LATERAL generate_series(r.first_month, r.last_month, interval '1 month') m
    )
    SELECT ms.month, ms.currency::text,
           coalesce(t.booked, 0) + z.zero, coalesce(t.recognized, 0) + z.zero,
           coalesce(t.from_invoices, 0) + z.zero, coalesce(t.reversed, 0) + z.zero,
           sum(coalesce(t.booked, 0) - coalesce(t.recognized, 0))
               OVER (PARTITION BY ms.currency ORDER BY ms.month) + z.zero
    FROM months ms
    LEFT JOIN t ON t.currency = ms.currency AND t.month = ms.month
    CROSS JOIN LATERAL (SELECT billing.round_money(0, ms.currency) AS zero) z
$$;
COMMENT ON FUNCTION billing._revenue_months() IS
    'internal: the rows of the views billing.revenue_recognized_by_month and billing.deferred_revenue';

CREATE VIEW billing.revenue_recognized_by_month AS
SELECT month, currency, recognized, from_invoices, reversed FROM billing._revenue_months();
COMMENT ON VIEW billing.revenue_recognized_by_month IS
    'revenue recognized per month and currency (billing.revenue_schedule summed), from the first month with '
    'revenue to the last one scheduled or the current one; months after the current one are the schedule as it '
    'stands';
COMMENT ON COLUMN billing.revenue_recognized_by_month.month IS 'the first day of the month, in the accounts'' calendars';
COMMENT ON COLUMN billing.revenue_recognized_by_month.currency IS 'the currency: every figure of the row is numeric in it';
COMMENT ON COLUMN billing.revenue_recognized_by_month.recognized IS 'from_invoices + reversed: the revenue earned in the month';
COMMENT ON COLUMN billing.revenue_recognized_by_month.from_invoices IS 'the part of the invoice lines'' revenue earned in the month';
COMMENT ON COLUMN billing.revenue_recognized_by_month.reversed IS 'what credit notes took back in the month (negative or zero)';

CREATE VIEW billing.deferred_revenue AS
SELECT month, currency, booked, recognized, deferred FROM billing._revenue_months();
COMMENT ON VIEW billing.deferred_revenue IS
    'deferred revenue per currency at the end of each month: net revenue booked (invoices'' total - tax by issue '
    'date, less credit notes'' net part by their date) and not yet recognized; deferred = the month before''s '
    'deferred + booked - recognized';
COMMENT ON COLUMN billing.deferred_revenue.month IS 'the first day of the month; the balance is at its end';
COMMENT ON COLUMN billing.deferred_revenue.currency IS 'the currency: every figure of the row is numeric in it';
COMMENT ON COLUMN billing.deferred_revenue.booked IS
    'net revenue posted in the month: invoices issued (total - tax) less the net part of credit notes made';
COMMENT ON COLUMN billing.deferred_revenue.recognized IS 'revenue recognized in the month (billing.revenue_recognized_by_month)';
COMMENT ON COLUMN billing.deferred_revenue.deferred IS
    'the balance at the month''s end: everything booked up to it less everything recognized up to it';

CREATE FUNCTION billing._revenue_waterfall()
RETURNS TABLE (invoice_month date, currency text, month date, months_since integer, recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT s.invoice_month, s.currency, s.month,
           ((extract(year FROM s.month) - extract(year FROM s.invoice_month)) * 12
            + extract(month FROM s.month) - extract(month FROM s.invoice_month))::integer,
           sum(s.recognized) + billing.round_money(0, s.currency)
    FROM (SELECT date_trunc('month', x.issue_date::timestamp)::date AS invoice_month, x.currency, x.month, x.recognized
          FROM billing._revenue_schedule() x) s
    GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION billing._revenue_waterfall() IS 'internal: the rows of the view billing.revenue_waterfall';

CREATE VIEW billing.revenue_waterfall AS SELECT * FROM billing._revenue_waterfall();
COMMENT ON VIEW billing.revenue_waterfall IS
    'the revenue waterfall: per month of issue of the invoices (credit notes counted with their invoice) and '
    'currency, how much of it is recognized in each month';
COMMENT ON COLUMN billing.revenue_waterfall.invoice_month IS 'the month the invoices were issued (first day)';
COMMENT ON COLUMN billing.revenue_waterfall.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_waterfall.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_waterfall.months_since IS 'months from invoice_month to month (0: the month of issue)';
COMMENT ON COLUMN billing.revenue_waterfall.recognized IS
    'the revenue of those invoices recognized in month, less what their credit notes reversed in it';

CREATE FUNCTION billing._revenue_by_price()
RETURNS TABLE (month date, currency text, product_id bigint, product_name text, price_id bigint,
               price_nickname text, recognized numeric)
LANGUAGE sql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT s.month, s.currency, p.product_id, pr.name, s.price_id, p.nickname,
           sum(s.recognized) + billing.round_money(0, s.currency)
    FROM billing._revenue_schedule() s
    LEFT JOIN billing.price p ON p.price_id = s.price_id
    LEFT JOIN billing.product pr ON pr.product_id = p.product_id
    GROUP BY 1, 2, 3, 4, 5, 6
$$;
COMMENT ON FUNCTION billing._revenue_by_price() IS
    'internal: the rows of the views billing.revenue_by_price and billing.revenue_by_product';

CREATE VIEW billing.revenue_by_price AS SELECT * FROM billing._revenue_by_price();
COMMENT ON VIEW billing.revenue_by_price IS
    'revenue recognized per month, currency and price (price_id NULL: one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_by_price.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_by_price.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_by_price.product_id IS 'the price''s product';
COMMENT ON COLUMN billing.revenue_by_price.product_name IS 'the product''s name';
COMMENT ON COLUMN billing.revenue_by_price.price_id IS 'the price of the lines (NULL: lines without a price)';
COMMENT ON COLUMN billing.revenue_by_price.price_nickname IS 'the price''s nickname';
COMMENT ON COLUMN billing.revenue_by_price.recognized IS 'revenue of the price''s lines recognized in the month, less credit notes';

CREATE VIEW billing.revenue_by_product AS
SELECT month, currency, product_id, product_name, sum(recognized) AS recognized
FROM billing._revenue_by_price()
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW billing.revenue_by_product IS
    'revenue recognized per month, currency and product (product_id NULL: one-off items and late fees)';
COMMENT ON COLUMN billing.revenue_by_product.month IS 'the month recognized (first day)';
COMMENT ON COLUMN billing.revenue_by_product.currency IS 'the currency: recognized is numeric in it';
COMMENT ON COLUMN billing.revenue_by_product.product_id IS 'the product (NULL: lines without a price)';
COMMENT ON COLUMN billing.revenue_by_product.product_name IS 'the product''s name';
COMMENT ON COLUMN billing.revenue_by_product.recognized IS 'revenue of the product''s lines recognized in the month, less credit notes';

-- ---------------------------------------------------------------------------
-- Revenue in a reporting currency (83_exchange_rates.sql): every part of
-- the schedule at the rate in force on its invoice's issue date, so a
-- credit note takes back at the rate its invoice was converted at.  The
-- schedule is grouped by currency, issue date, month booked, month
-- recognized (and price) first, and each group converted and rounded once.

CREATE FUNCTION billing._check_report_months(currency text, from_month date, to_month date) RETURNS date[]
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_from date := billing._check_report_month(currency, from_month, 'from_month');
    v_to date := billing._check_report_month(currency, to_month, 'to_month');
BEGIN
    IF v_from > v_to THEN
        RAISE EXCEPTION 'from_month % is after to_month %', from_month, to_month
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY[v_from, v_to];
END $$;
COMMENT ON FUNCTION billing._check_report_months(text, date, date) IS
    'internal: checks a reporting currency and a range of months (22023, 22008); their first days';

CREATE FUNCTION billing.revenue_in(reporting_currency text, from_month date, to_month date)
RETURNS TABLE (month date, currency text, booked numeric, recognized numeric, deferred numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_months date[] := billing._check_report_months(reporting_currency, from_month, to_month);
BEGIN
    RETURN QUERY
    WITH g AS (
        SELECT date_trunc('month', s.booked_on::timestamp)::date AS booked_month, s.month,
               billing._convert(sum(s.recognized), s.currency, reporting_currency, s.issue_date) AS value
        FROM billing._revenue_schedule() s
        WHERE date_trunc('month', s.booked_on::timestamp)::date <= v_months[2]
        GROUP BY s.currency, s.issue_date, 1, 2
    ), t AS (
        SELECT m::date AS month,
               coalesce((SELECT sum(g.value) FROM g WHERE g.booked_month = m), 0) AS booked,
               coalesce((SELECT sum(g.value) FROM g WHERE g.month = m), 0) AS recognized,
               coalesce((SELECT sum(g.value) FROM g WHERE g.booked_month <= m AND g.month > m), 0) AS deferred
        FROM generate_series(v_months[1], v_months[2], interval '1 month') m
    )
    SELECT t.month, reporting_currency, t.booked + z.zero, t.recognized + z.zero, t.deferred + z.zero
    FROM t CROSS JOIN (SELECT billing.round_money(0, reporting_currency) AS zero) z
    ORDER BY t.month;
END $$;
COMMENT ON FUNCTION billing.revenue_in(text, date, date) IS
    'revenue per month from from_month to to_month in one reporting currency: booked (net revenue posted), '
    'recognized and deferred at the month''s end (billing.deferred_revenue), every part converted at the rate in '
    'force on its invoice''s issue date and rounded once per currency, issue date and month; P0002 when a rate is '
    'missing';

CREATE FUNCTION billing.revenue_by_price_in(reporting_currency text, from_month date, to_month date)
RETURNS TABLE (month date, currency text, product_id bigint, product_name text, price_id bigint,
               price_nickname text, recognized numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_months date[] := billing._check_report_months(reporting_currency, from_month, to_month);
BEGIN
    RETURN QUERY
    WITH g AS (
        SELECT s.month, s.price_id,
               billing._convert(sum(s.recognized), s.currency, reporting_currency, s.issue_date) AS value
        FROM billing._revenue_schedule() s
        WHERE s.month BETWEEN v_months[1] AND v_months[2]
        GROUP BY s.currency, s.issue_date, s.month, s.price_id
    )
    SELECT g.month, reporting_currency, p.product_id, pr.name, g.price_id, p.nickname,
           sum(g.value) + billing.round_money(0, reporting_currency)
    FROM g
    LEFT JOIN billing.price p ON p.price_id = g.price_id
    LEFT JOIN billing.product pr ON pr.product_id = p.product_id
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 3 NULLS LAST, 5 NULLS LAST;
END $$;
COMMENT ON FUNCTION billing.revenue_by_price_in(text, date, date) IS
    'revenue recognized per month and price (with its product: add up by product_id for revenue by product) from '
    'from_month to to_month in one reporting currency, converted at the rate in force on each invoice''s issue '
    'date and rounded once per currency, issue date, month and price; P0002 when a rate is missing';

-- src/sql/install/86_scheduling.sql
-- Scheduling with pg_cron.  pg_cron is optional: nothing here
-- refers to the cron schema when the extension is installed.  The functions
-- look pg_cron up when they are called and run its functions with EXECUTE.
--
-- pg_cron runs jobs from one database, cron.database_name.  When billing is
-- installed there, billing.schedule() creates or updates the jobs itself
-- (cron.schedule upserts by job name); in another database it raises with
-- the exact cron.schedule_in_database calls to run in the cron database
-- (billing.schedule_commands() returns them).  Job names are unique per
-- user in the whole cluster, so a job for another database carries its name.

-- Where pg_cron stands for this database: not_loaded (not in
-- shared_preload_libraries), no_extension (loaded, but CREATE EXTENSION
-- pg_cron was not run here, the cron database), other_database (pg_cron
-- runs jobs from cron_database), ready.
CREATE FUNCTION billing._cron_state(OUT state text, OUT cron_database text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    cron_database := nullif(current_setting('cron.database_name', true), '');
    state := CASE WHEN cron_database IS NULL THEN 'not_loaded'
                  WHEN cron_database <> current_database() THEN 'other_database'
                  WHEN NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN 'no_extension'
                  ELSE 'ready' END;
END $$;
COMMENT ON FUNCTION billing._cron_state() IS
    'internal: whether pg_cron can run billing''s jobs from this database: not_loaded, no_extension, '
    'other_database or ready, and the database pg_cron runs jobs from';

-- billing's jobs: name, schedule (NULL: none), command.
CREATE FUNCTION billing._cron_jobs(cycle text, dunning text)
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT j.name || CASE WHEN (billing._cron_state()).state = 'other_database' THEN ':' || current_database()
                          ELSE '' END,
           j.schedule, j.command
    FROM (VALUES ('billing-cycle', cycle, 'CALL billing.run_cycle()', 1),
                 ('billing-dunning', dunning, 'CALL billing.run_dunning()', 2)) j(name, schedule, command, ord)
    ORDER BY j.ord
$$;
COMMENT ON FUNCTION billing._cron_jobs(text, text) IS
    'internal: billing''s pg_cron jobs (billing-cycle, billing-dunning; with :database appended when pg_cron runs '
    'in another database), their schedules and commands';

CREATE FUNCTION billing._check_cron_schedule(schedule text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF schedule IS NOT NULL AND schedule !~ '^\s*(@(yearly|annually|monthly|weekly|daily|hourly|reboot)|(\S+\s+){4}\S+)\s*$' THEN
        RAISE EXCEPTION 'invalid cron schedule "%"', schedule
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use five fields (minute hour day-of-month month day-of-week) in GMT, such as ''0 2 * * *'', '
                         'or @daily; NULL removes the job.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_cron_schedule(text) IS 'internal: raises 22023 for what is no cron schedule';

-- The statements to run in the cron database, as a superuser: one
-- cron.schedule_in_database per job with a schedule, one cron.unschedule
-- per job without.
CREATE FUNCTION billing.schedule_commands(cycle text DEFAULT '0 2 * * *', dunning text DEFAULT '0 9 * * *')
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_cron_schedule(cycle);
    PERFORM billing._check_cron_schedule(dunning);
    RETURN QUERY
    SELECT CASE WHEN j.schedule IS NULL
                THEN format('SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %L AND database = %L;',
                            j.job_name, current_database())
                ELSE format('SELECT cron.schedule_in_database(%L, %L, %L, %L);', j.job_name, trim(j.schedule),
                            j.command, current_database())
           END
    FROM billing._cron_jobs(cycle, dunning) j;
END $$;
COMMENT ON FUNCTION billing.schedule_commands(text, text) IS
    'the pg_cron calls that schedule billing''s jobs for this database (cron.schedule_in_database), to run in the '
    'database pg_cron runs jobs from (cron.database_name); a NULL schedule gives the call that removes the job';

-- Raises the error that says what is missing for scheduling.
CREATE FUNCTION billing._cron_not_ready(state text, cron_database text, commands text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF state = 'not_loaded' THEN
        RAISE EXCEPTION 'pg_cron is not loaded: billing cannot schedule its jobs'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Everything else of billing works without pg_cron; run billing.run_cycle() and '
                           'billing.run_dunning() from another scheduler, or install pg_cron.',
                  HINT = format('Install pg_cron (Debian: apt-get install postgresql-%s-cron), add to postgresql.conf: '
                                'shared_preload_libraries = ''pg_cron'' and cron.database_name = ''%s'', restart '
                                'PostgreSQL, run CREATE EXTENSION pg_cron; in database %s, then call billing.schedule() again.',
                                current_setting('server_version_num')::int / 10000, current_database(), current_database());
    ELSIF state = 'no_extension' THEN
        RAISE EXCEPTION 'pg_cron is loaded but its extension is not created in database %', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION pg_cron; here (this is cron.database_name), then call billing.schedule() again.';
    ELSE
        RAISE EXCEPTION 'pg_cron runs jobs from database %, not from %: billing''s jobs are managed there', cron_database,
            current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format(E'Run in database %s as a superuser:\n%s', cron_database, commands),
                  HINT = 'billing.schedule_commands() returns these statements; or install billing in the cron database.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._cron_not_ready(text, text, text) IS
    'internal: raises 55000 saying how to install and preload pg_cron, or which calls to run in the cron database';

CREATE FUNCTION billing.schedule(cycle text DEFAULT '0 2 * * *', dunning text DEFAULT '0 9 * * *')
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint, action text)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
    j record;
    v_old record;
BEGIN
    PERFORM billing._check_cron_schedule(cycle);
    PERFORM billing._check_cron_schedule(dunning);
    st := billing._cron_state();
    IF st.state <> 'ready' THEN
        PERFORM billing._cron_not_ready(st.state, st.cron_database,
                                        (SELECT string_agg(c, E'\n') FROM billing.schedule_commands(cycle, dunning) c));
    END IF;
    FOR j IN SELECT * FROM billing._cron_jobs(cycle, dunning) LOOP
        EXECUTE 'SELECT jobid, schedule, command FROM cron.job WHERE jobname = $1 AND username = current_user'
            INTO v_old USING j.job_name;
        job_name := j.job_name;
        schedule := trim(j.schedule);
        command := j.command;
        jobid := v_old.jobid;
        IF j.schedule IS NULL THEN
            IF v_old.jobid IS NULL THEN
                CONTINUE;
            END IF;
            EXECUTE 'SELECT cron.unschedule($1::bigint)' USING v_old.jobid;
            action := 'removed';
        ELSE
            EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, trim(j.schedule), j.command;
            action := CASE WHEN v_old.jobid IS NULL THEN 'created'
                           WHEN v_old.schedule = trim(j.schedule) AND v_old.command = j.command THEN 'unchanged'
                           ELSE 'updated' END;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.schedule(text, text) IS
    'creates or updates the pg_cron jobs billing-cycle (CALL billing.run_cycle(), default daily at 02:00 GMT) and '
    'billing-dunning (CALL billing.run_dunning(), daily at 09:00 GMT); a NULL schedule removes the job; idempotent. '
    'Raises 55000 when pg_cron is not loaded or not created here, or runs jobs from another database (with the '
    'cron.schedule_in_database calls to run there)';

CREATE FUNCTION billing.unschedule()
RETURNS TABLE (job_name text, jobid bigint)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
    r record;
BEGIN
    st := billing._cron_state();
    IF st.state <> 'ready' THEN
        PERFORM billing._cron_not_ready(st.state, st.cron_database,
                                        (SELECT string_agg(c, E'\n') FROM billing.schedule_commands(NULL, NULL) c));
    END IF;
    FOR r IN EXECUTE 'SELECT jobid, jobname FROM cron.job WHERE jobname = ANY ($1) AND username = current_user ORDER BY jobid'
             USING ARRAY(SELECT j.job_name FROM billing._cron_jobs(NULL, NULL) j) LOOP
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING r.jobid;
        job_name := r.jobname;
        jobid := r.jobid;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.unschedule() IS
    'removes billing''s pg_cron jobs (billing-cycle, billing-dunning) and returns what it removed';

-- The jobs and their last runs.  pg_cron's side comes from cron.job and
-- cron.job_run_details (NULL when pg_cron runs jobs from another database:
-- a NOTICE gives the query to run there); billing's side from its own run
-- logs, billing.cycle_run and billing.dunning_run.
CREATE FUNCTION billing.schedule_status()
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text, active boolean,
               last_run_status text, last_run_start timestamptz, last_run_end timestamptz, last_run_message text,
               failed_runs_last_day bigint, last_billing_run_status text, last_billing_run_started_at timestamptz,
               last_billing_run_duration interval)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
BEGIN
    st := billing._cron_state();
    IF st.state = 'ready' THEN
        RETURN QUERY EXECUTE $q$
            SELECT j.job_name, c.jobid, c.schedule, c.command, c.active,
                   d.status, d.start_time, d.end_time, d.return_message,
                   (SELECT count(*) FROM cron.job_run_details f
                    WHERE f.jobid = c.jobid AND f.status = 'failed'
                      AND coalesce(f.start_time, f.end_time, now()) > now() - interval '1 day'),
                   b.status, b.started_at, b.duration
            FROM billing._cron_jobs(NULL, NULL) WITH ORDINALITY j(job_name, schedule, command, ord)
            LEFT JOIN cron.job c ON c.jobname = j.job_name AND c.username = current_user
            LEFT JOIN LATERAL (SELECT r.status, r.start_time, r.end_time, r.return_message
                               FROM cron.job_run_details r WHERE r.jobid = c.jobid
                               ORDER BY r.runid DESC LIMIT 1) d ON true
            LEFT JOIN LATERAL ((SELECT x.status, x.started_at, x.duration FROM billing.cycle_run x
                                WHERE j.ord = 1 ORDER BY x.cycle_run_id DESC LIMIT 1)
                               UNION ALL
                               (SELECT x.status, x.started_at, x.duration FROM billing.dunning_run x
                                WHERE j.ord = 2 ORDER BY x.dunning_run_id DESC LIMIT 1)) b ON true
            ORDER BY j.ord $q$;
        RETURN;
    END IF;
    IF st.state = 'other_database' THEN
        RAISE NOTICE 'pg_cron runs jobs from database %: its side of the status is there', st.cron_database
            USING HINT = format('In database %s: SELECT j.jobname, r.status, r.start_time, r.return_message '
                                'FROM cron.job j LEFT JOIN cron.job_run_details r USING (jobid) '
                                'WHERE j.database = %L ORDER BY r.runid DESC LIMIT 10;',
                                st.cron_database, current_database());
    ELSE
        RAISE NOTICE 'pg_cron is not available here (%): only billing''s own run logs are shown', st.state;
    END IF;
    RETURN QUERY
    SELECT j.job_name, NULL::bigint, NULL::text, j.command, NULL::boolean, NULL::text, NULL::timestamptz,
           NULL::timestamptz, NULL::text, NULL::bigint, b.status, b.started_at, b.duration
    FROM billing._cron_jobs(NULL, NULL) WITH ORDINALITY j(job_name, schedule, command, ord)
    LEFT JOIN LATERAL ((SELECT x.status, x.started_at, x.duration FROM billing.cycle_run x
                        WHERE j.ord = 1 ORDER BY x.cycle_run_id DESC LIMIT 1)
                       UNION ALL
                       (SELECT x.status, x.started_at, x.duration FROM billing.dunning_run x
                        WHERE j.ord = 2 ORDER BY x.dunning_run_id DESC LIMIT 1)) b ON true
    ORDER BY j.ord;
END $$;
COMMENT ON FUNCTION billing.schedule_status() IS
    'billing''s pg_cron jobs with their schedule, last run from cron.job_run_details (status, start, end, message), '
    'failed runs in the last day, and the last run in billing''s own logs (billing.cycle_run, billing.dunning_run)';

-- src/sql/install/88_delivery.sql
-- Delivery of the outbox: e-mails and webhooks sent by the delivery worker
-- shipped in worker/ (worker/README.md).  The database never calls out; it
-- keeps what was delivered, to whom, after how many tries, and why not.
--
-- One row per event and channel ('email', or 'webhook:<name>' for each
-- webhook of the worker's configuration).  A worker claims due rows with
-- billing.claim_deliveries (FOR UPDATE SKIP LOCKED: several workers never
-- take the same row) and holds a lease on each: the row stays 'claimed'
-- until due_at, then any worker may claim it again.  So a worker killed
-- mid-delivery loses nothing, at the price of a second send of what it
-- may already have sent; receivers deduplicate by the event id the worker
-- sends with every delivery.  A lease rather than a transaction held open
-- while sending: a transaction open for a slow SMTP server would hold back
-- vacuum and a connection per delivery, and its end would not say whether
-- the receiver got the message either.
--
-- Leases and retries run on the wall clock (clock_timestamp()), not on
-- billing.now(): they measure the worker's real work, and a billing clock
-- set for a simulation must not stop them.  When every row of an event is
-- delivered, skipped or dead, the event is marked processed as
-- billing.mark_events_done does.

CREATE TABLE billing.delivery (
    account_id  bigint NOT NULL,
    event_id    bigint NOT NULL,
    channel     text NOT NULL CHECK (channel ~ '^(email|webhook:[A-Za-z0-9_.-]{1,64})$'),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'claimed', 'delivered', 'skipped', 'dead')),
    tries       integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    -- pending: when the next try may start; claimed: when the lease ends
    due_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    worker      text,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at timestamptz,
    PRIMARY KEY (account_id, event_id, channel),
    FOREIGN KEY (account_id, event_id) REFERENCES billing.outbox ON DELETE CASCADE
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.delivery ADD CONSTRAINT delivery_no_card_number CHECK (
    billing._no_card_number(worker, 'billing.delivery.worker')
    AND billing._no_card_number(reason, 'billing.delivery.reason'));
COMMENT ON TABLE billing.delivery IS
    'the delivery of each outbox event on each channel (email, webhook:<name>): pending, claimed (leased by a worker '
    'until due_at), delivered, skipped (reason: why, e.g. no e-mail address) or dead (a dead letter: its tries ran out); '
    'written by billing.claim_deliveries and billing.finish_delivery';
CREATE INDEX delivery_due ON billing.delivery (due_at) WHERE status IN ('pending', 'claimed');

CREATE TABLE billing.delivery_attempt (
    account_id  bigint NOT NULL,
    attempt_id  bigint GENERATED BY DEFAULT AS IDENTITY,
    event_id    bigint NOT NULL,
    channel     text NOT NULL,
    try         integer NOT NULL CHECK (try >= 1),
    worker      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text CHECK (outcome IN ('delivered', 'failed', 'skipped', 'lease_expired')),
    detail      text,
    PRIMARY KEY (account_id, attempt_id),
    FOREIGN KEY (account_id, event_id, channel) REFERENCES billing.delivery ON DELETE CASCADE
);
ALTER TABLE billing.delivery_attempt ADD CONSTRAINT delivery_attempt_no_card_number CHECK (
    billing._no_card_number(worker, 'billing.delivery_attempt.worker')
    AND billing._no_card_number(detail, 'billing.delivery_attempt.detail'));
COMMENT ON TABLE billing.delivery_attempt IS
    'every try of a delivery: which worker, when, and what came of it (the receiver''s answer in detail); '
    'lease_expired: the worker never reported (killed, or slower than its lease)';

SELECT pg_catalog.pg_extension_config_dump('billing.delivery', '');
SELECT pg_catalog.pg_extension_config_dump('billing.delivery_attempt', '');
SELECT pg_catalog.pg_extension_config_dump('billing.delivery_attempt_attempt_id_seq', '');

-- The events that are e-mailed to the account; every event goes to every
-- webhook.
CREATE FUNCTION billing._delivery_emailed(event_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT event_type IN ('invoice.finalized', 'dunning.reminder', 'subscription.price_change_notice')
$$;
COMMENT ON FUNCTION billing._delivery_emailed(text) IS
    'internal: whether an outbox event type is e-mailed to its account (invoices, reminders, price-change notices)';

-- Marks processed the events of the arrays whose every delivery row is
-- done.  An event needs one row at least: all of an event's rows are
-- written by one statement, so seeing one of them means seeing all.
CREATE FUNCTION billing._delivery_close(accounts bigint[], events bigint[]) RETURNS void
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    UPDATE billing.outbox o SET processed_at = billing.now()
    FROM unnest(accounts, events) u(account_id, event_id)
    WHERE o.account_id = u.account_id AND o.event_id = u.event_id AND o.processed_at IS NULL
      AND EXISTS (SELECT FROM billing.delivery d WHERE d.account_id = o.account_id AND d.event_id = o.event_id)
      AND NOT EXISTS (SELECT FROM billing.delivery d WHERE d.account_id = o.account_id AND d.event_id = o.event_id
                                                    AND d.status IN ('pending', 'claimed'))
$$;
COMMENT ON FUNCTION billing._delivery_close(bigint[], bigint[]) IS
    'internal: marks processed the outbox events whose every delivery is delivered, skipped or dead';

CREATE FUNCTION billing.claim_deliveries(worker text, channels text[], max_deliveries integer DEFAULT 10,
                                         lease interval DEFAULT '5 minutes', max_tries integer DEFAULT 8)
RETURNS TABLE (account_id bigint, event_id bigint, channel text, try integer, event_type text, payload jsonb,
               event_created_at timestamptz)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_accounts bigint[];
    v_events bigint[];
    v_channels text[];
    v_tries integer[];
    v_statuses text[];
BEGIN
    PERFORM billing._authorize_all('claim deliveries');
    IF worker IS NULL OR worker = '' OR length(worker) > 200 OR billing.looks_like_card_number(worker) THEN
        RAISE EXCEPTION 'claim_deliveries needs a worker name of 1 to 200 characters, no card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: claim_deliveries(''host-1:4242'', ''{email}'').';
    END IF;
    IF channels IS NULL OR cardinality(channels) NOT BETWEEN 1 AND 100 OR array_position(channels, NULL) IS NOT NULL
       OR EXISTS (SELECT FROM unnest(channels) c WHERE c !~ '^(email|webhook:[A-Za-z0-9_.-]{1,64})$') THEN
        RAISE EXCEPTION 'claim_deliveries needs 1 to 100 channels, each email or webhook:<name>'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A webhook name has 1 to 64 letters, digits, dots, dashes or underscores.';
    END IF;
    IF max_deliveries IS NULL OR max_deliveries NOT BETWEEN 1 AND 10000
       OR lease IS NULL OR lease NOT BETWEEN interval '1 second' AND interval '1 day'
       OR max_tries IS NULL OR max_tries NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'claim_deliveries needs 1 to 10000 deliveries, a lease of 1 second to 1 day and 1 to 1000 tries, '
                        'not %, % and %', coalesce(max_deliveries::text, 'NULL'), coalesce(lease::text, 'NULL'),
                        coalesce(max_tries::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- 1. the rows of events not yet started, one statement for all their
    -- channels; an e-mail to an account without an address is skipped here,
    -- and an event no channel takes is done at once
    WITH pend AS (
        SELECT o.account_id, o.event_id, o.event_type, nullif(btrim(a.email), '') AS email
        FROM billing.outbox o
        JOIN billing.account a ON a.account_id = o.account_id
        WHERE o.processed_at IS NULL
          AND NOT EXISTS (SELECT FROM billing.delivery d WHERE d.account_id = o.account_id AND d.event_id = o.event_id)
    ), want AS (
        SELECT p.account_id, p.event_id, c.channel, (c.channel = 'email' AND p.email IS NULL) AS skip
        FROM pend p CROSS JOIN unnest(channels) c(channel)
        WHERE c.channel <> 'email' OR billing._delivery_emailed(p.event_type)
    ), ins AS (
        INSERT INTO billing.delivery (account_id, event_id, channel, status, reason, finished_at)
        SELECT w.account_id, w.event_id, w.channel, CASE WHEN w.skip THEN 'skipped' ELSE 'pending' END,
               CASE WHEN w.skip THEN 'the account has no e-mail address' END,
               CASE WHEN w.skip THEN pg_catalog.clock_timestamp() END
        FROM want w
        ON CONFLICT ON CONSTRAINT delivery_pkey DO NOTHING
    )
    UPDATE billing.outbox o SET processed_at = billing.now()
    FROM pend p
    WHERE o.account_id = p.account_id AND o.event_id = p.event_id AND o.processed_at IS NULL
      AND NOT EXISTS (SELECT FROM want w WHERE w.account_id = p.account_id AND w.event_id = p.event_id AND NOT w.skip);

    -- 2. the claim: due rows, and rows whose lease ran out (their worker is
    -- gone); one whose last try's lease ran out is a dead letter
    WITH picked AS (
        SELECT d.account_id, d.event_id, d.channel, d.tries, d.status
        FROM billing.delivery d
        WHERE d.status IN ('pending', 'claimed') AND d.due_at <= pg_catalog.clock_timestamp()
          AND d.channel = ANY (channels)
        ORDER BY d.due_at, d.event_id
        LIMIT max_deliveries
        FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE billing.delivery_attempt x SET finished_at = pg_catalog.clock_timestamp(), outcome = 'lease_expired'
        FROM picked p
        WHERE p.status = 'claimed' AND x.account_id = p.account_id AND x.event_id = p.event_id
          AND x.channel = p.channel AND x.try = p.tries AND x.finished_at IS NULL
    ), claimed AS (
        UPDATE billing.delivery d
        SET status = CASE WHEN p.tries >= claim_deliveries.max_tries THEN 'dead' ELSE 'claimed' END,
            tries = CASE WHEN p.tries >= claim_deliveries.max_tries THEN d.tries ELSE d.tries + 1 END,
            worker = claim_deliveries.worker,
            due_at = pg_catalog.clock_timestamp() + lease,
            reason = CASE WHEN p.tries >= claim_deliveries.max_tries THEN 'the lease of the last try ran out'
                          ELSE d.reason END,
            finished_at = CASE WHEN p.tries >= claim_deliveries.max_tries THEN pg_catalog.clock_timestamp() END
        FROM picked p
        WHERE d.account_id = p.account_id AND d.event_id = p.event_id AND d.channel = p.channel
        RETURNING d.account_id, d.event_id, d.channel, d.tries, d.status
    ), attempts AS (
        INSERT INTO billing.delivery_attempt (account_id, event_id, channel, try, worker, started_at)
        SELECT c.account_id, c.event_id, c.channel, c.tries, claim_deliveries.worker, pg_catalog.clock_timestamp()
        FROM claimed c WHERE c.status = 'claimed'
    )
    SELECT array_agg(c.account_id), array_agg(c.event_id), array_agg(c.channel), array_agg(c.tries),
           array_agg(c.status)
    INTO v_accounts, v_events, v_channels, v_tries, v_statuses
    FROM claimed c;
    IF v_accounts IS NULL THEN
        RETURN;
    END IF;
    PERFORM billing._delivery_close(v_accounts, v_events);

    RETURN QUERY
    SELECT u.account_id, u.event_id, u.channel, u.try, o.event_type, o.payload, o.created_at
    FROM unnest(v_accounts, v_events, v_channels, v_tries, v_statuses) u(account_id, event_id, channel, try, status)
    JOIN billing.outbox o ON o.account_id = u.account_id AND o.event_id = u.event_id
    WHERE u.status = 'claimed'
    ORDER BY u.event_id, u.channel;
END $$;
COMMENT ON FUNCTION billing.claim_deliveries(text, text[], integer, interval, integer) IS
    'for a delivery worker: writes the delivery rows of new outbox events for its channels (e-mails to accounts '
    'without an address skipped), then claims up to max_deliveries due ones under a lease (FOR UPDATE SKIP LOCKED); '
    'a row whose lease ran out is claimed again, or is a dead letter once it had max_tries tries';

CREATE FUNCTION billing.finish_delivery(account_id bigint, event_id bigint, channel text, worker text, outcome text,
                                        detail text DEFAULT NULL, max_tries integer DEFAULT 8,
                                        backoff interval DEFAULT '1 minute', max_backoff interval DEFAULT '6 hours')
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    d billing.delivery;
    v_status text;
BEGIN
    PERFORM billing._authorize_account(finish_delivery.account_id);
    IF outcome IS NULL OR outcome NOT IN ('delivered', 'failed', 'skipped') THEN
        RAISE EXCEPTION 'a delivery''s outcome is delivered, failed or skipped, not %', coalesce(outcome, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_tries IS NULL OR max_tries NOT BETWEEN 1 AND 1000
       OR backoff IS NULL OR max_backoff IS NULL OR backoff < interval '1 second' OR max_backoff < backoff
       OR max_backoff > interval '30 days' THEN
        RAISE EXCEPTION 'finish_delivery needs 1 to 1000 tries and a backoff of 1 second at least, up to a '
                        'max_backoff of 30 days at most'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO d FROM billing.delivery x
    WHERE x.account_id = finish_delivery.account_id AND x.event_id = finish_delivery.event_id
      AND x.channel = finish_delivery.channel
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'delivery of event % of account % on channel % does not exist', coalesce(event_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL'), coalesce(channel, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Finish the deliveries claim_deliveries returned.';
    END IF;
    -- a worker whose lease ran out has lost the delivery to another
    IF d.status <> 'claimed' OR d.worker IS DISTINCT FROM finish_delivery.worker THEN
        RAISE EXCEPTION 'delivery of event % on channel % is not claimed by worker %', d.event_id, d.channel,
            coalesce(worker, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('It is %s%s.', d.status, coalesce(', by ' || d.worker, '')),
                  HINT = 'A lease longer than the longest delivery keeps the claim.';
    END IF;
    -- the detail is a receiver's answer, which the worker cannot vouch for;
    -- one holding a card number is refused before anything is written, and
    -- the worker reports again without it
    IF billing.looks_like_card_number(worker) OR billing.looks_like_card_number(detail) THEN
        RAISE EXCEPTION 'a delivery''s report must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Report the outcome without the receiver''s answer.';
    END IF;
    detail := left(detail, 2000);
    v_status := CASE WHEN outcome = 'failed' AND d.tries >= max_tries THEN 'dead'
                     WHEN outcome = 'failed' THEN 'pending' ELSE outcome END;
    UPDATE billing.delivery x
    SET status = v_status,
        reason = CASE WHEN outcome = 'delivered' THEN NULL ELSE finish_delivery.detail END,
        -- the wait doubles with each failed try, up to max_backoff
        due_at = CASE WHEN v_status = 'pending'
                      THEN pg_catalog.clock_timestamp()
                           + least(backoff * power(2, least(d.tries - 1, 40))::double precision, max_backoff)
                      ELSE x.due_at END,
        finished_at = CASE WHEN v_status = 'pending' THEN NULL ELSE pg_catalog.clock_timestamp() END
    WHERE x.account_id = d.account_id AND x.event_id = d.event_id AND x.channel = d.channel;
    UPDATE billing.delivery_attempt x
    SET finished_at = pg_catalog.clock_timestamp(), outcome = finish_delivery.outcome, detail = finish_delivery.detail
    WHERE x.account_id = d.account_id AND x.event_id = d.event_id AND x.channel = d.channel AND x.try = d.tries
      AND x.finished_at IS NULL;
    IF v_status <> 'pending' THEN
        PERFORM billing._delivery_close(ARRAY[d.account_id], ARRAY[d.event_id]);
    END IF;
    RETURN v_status;
END $$;
COMMENT ON FUNCTION billing.finish_delivery(bigint, bigint, text, text, text, text, integer, interval, interval) IS
    'for a delivery worker: records a claimed delivery''s outcome (delivered, failed with the receiver''s answer, or '
    'skipped with a reason); a failure is tried again after backoff doubled per try (up to max_backoff), or is a '
    'dead letter after max_tries; returns the new status; an event whose deliveries are all done is marked processed';

-- The words of the e-mails that are not an invoice's, per language, English
-- under the rest; a row of billing.document_label with the same key and the
-- language overrides the shipped word.  {name} marks a value.
CREATE FUNCTION billing._delivery_words(locale text) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH w(key, labels) AS (VALUES
        ('mail_reminder_subject', ARRAY['Payment reminder: invoice {number}', 'תזכורת תשלום: חשבונית {number}',
            'Zahlungserinnerung: Rechnung {number}', 'Напоминание об оплате: счёт {number}',
            'تذكير بالدفع: فاتورة {number}', 'Rappel de paiement : facture {number}',
            'Recordatorio de pago: factura {number}']),
        ('mail_reminder_body', ARRAY[
            'Invoice {number} of {issue_date} was due on {due_date}. {amount_due} is still open. If you have already paid, thank you, and please ignore this message.',
            'חשבונית {number} מתאריך {issue_date} הייתה לתשלום עד {due_date}. נותרו לתשלום {amount_due}. אם כבר שילמת, תודה, ואפשר להתעלם מהודעה זו.',
            'Die Rechnung {number} vom {issue_date} war am {due_date} fällig. Offen sind noch {amount_due}. Falls Sie bereits bezahlt haben, danken wir Ihnen; bitte betrachten Sie diese Nachricht dann als gegenstandslos.',
            'Счёт {number} от {issue_date} нужно было оплатить до {due_date}. К оплате остаётся {amount_due}. Если вы уже оплатили, спасибо, просто не обращайте внимания на это письмо.',
            'كان موعد استحقاق الفاتورة {number} الصادرة في {issue_date} هو {due_date}. لا يزال المبلغ {amount_due} مستحقًا. إذا كنت قد سددت بالفعل، فشكرًا لك ويرجى تجاهل هذه الرسالة.',
            'La facture {number} du {issue_date} était due le {due_date}. Il reste {amount_due} à payer. Si vous avez déjà payé, merci, et veuillez ignorer ce message.',
            'La factura {number} del {issue_date} vencía el {due_date}. Quedan {amount_due} pendientes. Si ya la ha pagado, gracias, y por favor ignore este mensaje.']),
        ('mail_price_subject', ARRAY['Your price is changing', 'המחיר שלך משתנה', 'Ihr Preis ändert sich',
            'Ваша цена меняется', 'سعرك سيتغير', 'Votre prix change', 'Su precio cambia']),
        ('mail_price_body', ARRAY[
            'From {effective_date}, {product} costs {new_amount} instead of {old_amount}.',
            'החל מ-{effective_date}, המחיר של {product} יהיה {new_amount} במקום {old_amount}.',
            'Ab dem {effective_date} kostet {product} {new_amount} statt {old_amount}.',
            'С {effective_date} {product} стоит {new_amount} вместо {old_amount}.',
            'اعتبارًا من {effective_date}، سيكلف {product} {new_amount} بدلًا من {old_amount}.',
            'À partir du {effective_date}, {product} coûte {new_amount} au lieu de {old_amount}.',
            'A partir del {effective_date}, {product} cuesta {new_amount} en lugar de {old_amount}.'])
    ), lang AS (
        SELECT n, l FROM unnest(ARRAY['en', 'he', 'de', 'ru', 'ar', 'fr', 'es']) WITH ORDINALITY u(l, n)
    )
    SELECT (SELECT jsonb_object_agg(w.key, w.labels[1]) FROM w)
        || coalesce((SELECT jsonb_object_agg(w.key, w.labels[lang.n]) FROM w, lang
                     WHERE lang.l = lower(split_part(replace(locale, '_', '-'), '-', 1))), '{}')
        || coalesce((SELECT jsonb_object_agg(x.key, x.label) FROM billing.document_label x
                     WHERE x.key LIKE 'mail\_%' AND x.language = lower(split_part(replace(locale, '_', '-'), '-', 1))),
                    '{}')
$$;
COMMENT ON FUNCTION billing._delivery_words(text) IS
    'internal: the words of reminder and price-change e-mails for a locale (en, he, de, ru, ar, fr, es shipped; '
    'document_label rows with mail_ keys override)';

-- A text with its {name} marks filled from a jsonb object, each value
-- escaped for HTML when html is true.
CREATE FUNCTION billing._delivery_fill(template text, vals jsonb, html boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v text;
BEGIN
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each_text(vals) e LOOP
        template := replace(template, '{' || k || '}',
                            CASE WHEN html THEN billing.html_escape(coalesce(v, '')) ELSE coalesce(v, '') END);
    END LOOP;
    RETURN template;
END $$;
COMMENT ON FUNCTION billing._delivery_fill(text, jsonb, boolean) IS
    'internal: a template''s {name} marks replaced by the values of a jsonb object (HTML-escaped if html)';

-- The e-mail of an outbox event, in the account's locale: an invoice is its
-- document (billing.invoice_document, HTML and text; the worker attaches a
-- PDF of the HTML), a reminder and a price-change notice a short message
-- with the amounts and dates formatted for the locale.
CREATE FUNCTION billing.delivery_email(account_id bigint, event_id bigint)
RETURNS TABLE (recipient text, subject text, html text, text_body text, invoice_id bigint, locale text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    o billing.outbox;
    a billing.account;
    w jsonb;
    v jsonb;
    v_body text;
    v_dir text;
BEGIN
    PERFORM billing._authorize_account(delivery_email.account_id);
    SELECT * INTO o FROM billing.outbox x
    WHERE x.account_id = delivery_email.account_id AND x.event_id = delivery_email.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox event % of account % does not exist', coalesce(event_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT billing._delivery_emailed(o.event_type) THEN
        RAISE EXCEPTION 'outbox event % is a %, which is not e-mailed', o.event_id, o.event_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'invoice.finalized, dunning.reminder and subscription.price_change_notice are e-mailed.';
    END IF;
    SELECT * INTO a FROM billing.account x WHERE x.account_id = o.account_id;
    recipient := nullif(btrim(a.email), '');
    locale := a.locale;
    IF o.event_type = 'invoice.finalized' THEN
        invoice_id := (o.payload ->> 'invoice_id')::bigint;
        subject := (billing._document_labels(a.locale) ->> 'invoice') || ' ' || coalesce(o.payload ->> 'number', '');
        html := billing.invoice_document(invoice_id, 'html');
        text_body := billing.invoice_document(invoice_id, 'text');
        RETURN NEXT;
        RETURN;
    END IF;
    w := billing._delivery_words(a.locale);
    IF o.event_type = 'dunning.reminder' THEN
        v := jsonb_build_object(
            'number', o.payload ->> 'number',
            'issue_date', billing.format_date((o.payload ->> 'issue_date')::date, a.locale),
            'due_date', billing.format_date((o.payload ->> 'due_date')::date, a.locale),
            'amount_due', billing.format_amount((o.payload ->> 'amount_due')::billing.amount, a.locale));
        subject := billing._delivery_fill(w ->> 'mail_reminder_subject', v, false);
        v_body := w ->> 'mail_reminder_body';
    ELSE
        v := jsonb_build_object(
            'effective_date', billing.format_date((o.payload ->> 'effective_date')::date, a.locale),
            'product', (SELECT p.name FROM billing.price r JOIN billing.product p ON p.product_id = r.product_id
                        WHERE r.price_id = (o.payload ->> 'new_price_id')::bigint),
            'old_amount', billing.format_amount((o.payload ->> 'old_amount')::billing.amount, a.locale),
            'new_amount', billing.format_amount((o.payload ->> 'new_amount')::billing.amount, a.locale));
        subject := w ->> 'mail_price_subject';
        v_body := w ->> 'mail_price_body';
    END IF;
    v_dir := billing.locale_direction(a.locale);
    text_body := billing._delivery_fill(v_body, v, false) || E'\n';
    html := format('<!DOCTYPE html><html lang="%s" dir="%s"><head><meta charset="utf-8"><title>%s</title></head>'
                   '<body><p>%s</p></body></html>',
                   billing.html_escape(a.locale), v_dir, billing.html_escape(subject),
                   billing._delivery_fill(billing.html_escape(v_body), v, true));
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION billing.delivery_email(bigint, bigint) IS
    'for a delivery worker: the e-mail of an outbox event in the account''s locale (recipient NULL without an '
    'address): an invoice''s HTML and text documents and its invoice_id for the PDF, or a reminder''s or '
    'price-change notice''s message';

-- src/sql/install/89_dashboard.sql
-- The finance dashboard: one HTML page of one billing entity in one
-- currency, with inline SVG charts (MRR and its movements, revenue and
-- collected, receivables aging, days sales outstanding, the dunning
-- funnel), readable in a browser without scripts.
--
-- Its figures are the reporting views' (82_reports.sql, 78_dunning.sql):
-- ar_aging and mrr_movements per account, filtered by the entity's
-- accounts; the views that add up every account the caller sees are read
-- through the functions behind them with the entity as argument, so that
-- each report's rule stays written once.  The page runs with the owner's
-- rights (a reader function of role_functions) after
-- billing._authorize_entity, and reads only that entity's rows.
--
-- Bars are scaled in numeric (value x height / largest value, rounded to
-- hundredths of a pixel): no float on the way from an amount to the page.

-- One bar chart as SVG: a group per label, one bar per series (b NULL: one
-- series), heights proportional to the largest value.  A value below zero
-- (a month of refunds only, say) draws no bar; the tables beside the charts
-- show every figure.  dir rtl mirrors the chart: the first label on the
-- right, as the page reads.
CREATE FUNCTION billing._dashboard_bars(labels text[], a numeric[], b numeric[], locale text, dir text)
RETURNS text
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH d AS (
        SELECT i, labels[i] AS label, a[i] AS va, b[i] AS vb
        FROM generate_subscripts(labels, 1) i
    ), s AS (
        SELECT count(*) AS n,
               coalesce(nullif(greatest(max(greatest(va, 0)), coalesce(max(greatest(vb, 0)), 0)), 0), 1) AS top
        FROM d
    ), g AS (
        -- x of the group's left edge and its width, in a 700 wide plot
        -- starting at 10; bars are 160 high at most, their base at y 170
        SELECT d.*, round(700::numeric / s.n, 4) AS gw, s.top,
               10 + round(700::numeric / s.n, 4) * (d.i - 1) AS x0
        FROM d CROSS JOIN s
    ), bars AS (
        SELECT g.i, 1 AS k, g.label, g.va AS v, g.x0 + round(g.gw * CASE WHEN b IS NULL THEN 0.15 ELSE 0.1 END, 2) AS x,
               round(g.gw * CASE WHEN b IS NULL THEN 0.7 ELSE 0.4 END, 2) AS w, g.top
        FROM g
        UNION ALL
        SELECT g.i, 2, g.label, g.vb, g.x0 + round(g.gw * 0.5, 2), round(g.gw * 0.4, 2), g.top
        FROM g WHERE b IS NOT NULL
    )
    SELECT '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 200" width="720" height="200" role="img">'
        || '<line x1="10" y1="170" x2="710" y2="170" class="axis"/>'
        || coalesce((SELECT string_agg(format('<rect class="s%s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>',
                                              r.k, round(CASE WHEN dir = 'rtl' THEN 720 - r.x - r.w ELSE r.x END, 2),
                                              170 - r.h, r.w, r.h,
                                              billing.html_escape(r.label || ': ' || billing.format_number(r.v, locale))),
                                       '' ORDER BY r.i, r.k)
                     FROM (SELECT bars.*, round(greatest(coalesce(bars.v, 0), 0) * 160 / bars.top, 2) AS h FROM bars) r), '')
        || coalesce((SELECT string_agg(format('<text x="%s" y="188" class="label">%s</text>',
                                              round(CASE WHEN dir = 'rtl' THEN 720 - (g.x0 + g.gw / 2)
                                                         ELSE g.x0 + g.gw / 2 END, 2),
                                              billing.html_escape(g.label)),
                                       '' ORDER BY g.i)
                     FROM g), '')
        || '</svg>'
$$;
COMMENT ON FUNCTION billing._dashboard_bars(text[], numeric[], numeric[], text, text) IS
    'internal: a bar chart of billing.dashboard_html as inline SVG, one or two series, scaled in numeric';

-- A table of the page: a header row and a row per first index of cells
-- (NULL: no row), every cell escaped.
CREATE FUNCTION billing._dashboard_table(head text[], cells text[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT '<table><thead><tr>'
        || (SELECT string_agg('<th>' || billing.html_escape(coalesce(h, '')) || '</th>', '' ORDER BY o)
            FROM unnest(head) WITH ORDINALITY u(h, o))
        || '</tr></thead><tbody>'
        || coalesce((SELECT string_agg('<tr>' || (SELECT string_agg('<td>' || billing.html_escape(coalesce(cells[r][c], '')) || '</td>', ''
                                                                     ORDER BY c)
                                                   FROM generate_subscripts(cells, 2) c) || '</tr>', '' ORDER BY r)
                     FROM generate_subscripts(cells, 1) r), '')
        || '</tbody></table>'
$$;
COMMENT ON FUNCTION billing._dashboard_table(text[], text[]) IS 'internal: an HTML table of billing.dashboard_html, every cell escaped';

CREATE FUNCTION billing.dashboard_html(entity_id bigint, currency text DEFAULT NULL, months integer DEFAULT 12,
                                       locale text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_name text;
    v_currency text;
    v_locale text;
    v_dir text;
    v_accounts bigint[];
    v_last date := date_trunc('month', billing.today('UTC')::timestamp)::date;
    v_first date;
    v_labels text[];
    v_a numeric[];
    v_b numeric[];
    v_rows text[];
    v_mrr record;
    v_dso record;
    v_aging record;
    v_zero numeric;
    v_html text;
BEGIN
    PERFORM billing._authorize_entity(dashboard_html.entity_id);
    IF entity_id IS NULL THEN
        RAISE EXCEPTION 'entity_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.legal_name, coalesce(upper(dashboard_html.currency), e.default_currency) INTO v_name, v_currency
    FROM billing.billing_entity e WHERE e.entity_id = dashboard_html.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', entity_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
    PERFORM billing._check_currency(v_currency, 'currency');
    IF months IS NULL OR months < 1 OR months > 120 THEN
        RAISE EXCEPTION 'months must be between 1 and 120, not %', coalesce(months::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 12 months.';
    END IF;
    -- a zero with the currency's digits, for the months without figures
    v_zero := billing.round_money(0, v_currency);
    v_accounts := ARRAY(SELECT a.account_id FROM billing.account a WHERE a.entity_id = dashboard_html.entity_id
                        ORDER BY a.account_id);
    v_locale := coalesce(dashboard_html.locale,
                         (SELECT a.locale FROM billing.account a WHERE a.account_id = v_accounts[1]), 'en-US');
    BEGIN
        v_dir := billing.locale_direction(v_locale);
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'locale "%" is not a language ICU knows', v_locale
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a BCP 47 tag such as en-US, de-DE, he-IL or ar-EG.';
    END;
    v_first := (v_last - make_interval(months => months - 1))::date;

    v_html := format('<!DOCTYPE html><html lang="%s" dir="%s"><head><meta charset="utf-8"><title>%s</title>',
                     billing.html_escape(v_locale), v_dir, billing.html_escape(v_name || ' — ' || v_currency))
        || '<style>body{font-family:sans-serif;margin:2em;color:#222}h1{font-size:1.5em}h2{font-size:1.15em;'
        || 'margin-top:1.6em}section.kpi{display:flex;gap:1em;flex-wrap:wrap}section.kpi div{border:1px solid #ccc;'
        || 'padding:.6em 1em;border-radius:4px}section.kpi b{display:block;font-size:1.3em}table{border-collapse:'
        || 'collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:end}th{background:#f4f4f4}'
        || 'svg .s1{fill:#3b6fb6}svg .s2{fill:#e39a2d}svg .axis{stroke:#888}svg .label{font-size:10px;'
        || 'text-anchor:middle;fill:#444}.legend .s1{color:#3b6fb6}.legend .s2{color:#e39a2d}</style></head><body>'
        || format('<h1>%s</h1><p>%s · %s</p>', billing.html_escape(v_name), billing.html_escape(v_currency),
                  billing.html_escape(billing.format_date(billing.today('UTC'), v_locale, 'long')));

    -- MRR and its movements, month by month (mrr_by_month of the entity)
    SELECT array_agg(to_char(m, 'YYYY-MM') ORDER BY m),
           array_agg(coalesce(r.mrr, v_zero) ORDER BY m),
           array_agg(ARRAY[to_char(m, 'YYYY-MM'),
                           billing.format_number(coalesce(r.mrr, v_zero), v_locale),
                           billing.format_number(coalesce(r.new, v_zero), v_locale),
                           billing.format_number(coalesce(r.expansion, v_zero), v_locale),
                           billing.format_number(coalesce(r.contraction, v_zero), v_locale),
                           billing.format_number(coalesce(r.churn, v_zero), v_locale),
                           billing.format_number(coalesce(r.reactivation, v_zero), v_locale),
                           billing.format_number(coalesce(r.customers, 0), v_locale)] ORDER BY m)
    INTO v_labels, v_a, v_rows
    FROM generate_series(v_first, v_last, interval '1 month') m
    LEFT JOIN billing._mrr_by_month(dashboard_html.entity_id) r ON r.month = m::date AND r.currency = v_currency;
    SELECT r.mrr, r.arr, r.customers INTO v_mrr
    FROM billing._mrr_by_month(dashboard_html.entity_id) r
    WHERE r.currency = v_currency AND r.month <= v_last ORDER BY r.month DESC LIMIT 1;
    SELECT d.receivable, d.invoiced, d.dso_days INTO v_dso
    FROM billing._days_sales_outstanding(90, dashboard_html.entity_id) d WHERE d.currency = v_currency;
    v_html := v_html || '<section class="kpi">'
        || format('<div>MRR<b>%s</b></div><div>ARR<b>%s</b></div><div>Customers<b>%s</b></div>',
                  billing.html_escape(billing.format_number(coalesce(v_mrr.mrr, v_zero), v_locale)),
                  billing.html_escape(billing.format_number(coalesce(v_mrr.arr, v_zero), v_locale)),
                  billing.html_escape(billing.format_number(coalesce(v_mrr.customers, 0), v_locale)))
        || format('<div>Receivable<b>%s</b></div><div>DSO (90 days)<b>%s</b></div></section>',
                  billing.html_escape(billing.format_number(coalesce(v_dso.receivable, v_zero), v_locale)),
                  billing.html_escape(coalesce(billing.format_number(v_dso.dso_days, v_locale), '–')))
        || '<h2>MRR by month</h2>' || billing._dashboard_bars(v_labels, v_a, NULL, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Month', 'MRR', 'New', 'Expansion', 'Contraction', 'Churn', 'Reactivation',
                                          'Customers'],
                                    v_rows);

    -- invoiced and collected by month (revenue_by_month of the entity)
    SELECT array_agg(coalesce(r.invoiced, v_zero) ORDER BY m), array_agg(coalesce(r.collected, v_zero) ORDER BY m),
           array_agg(ARRAY[to_char(m, 'YYYY-MM'),
                           billing.format_number(coalesce(r.invoiced, v_zero), v_locale),
                           billing.format_number(coalesce(r.collected, v_zero), v_locale),
                           billing.format_number(coalesce(r.refunded, v_zero), v_locale),
                           billing.format_number(coalesce(r.outstanding, v_zero), v_locale)] ORDER BY m)
    INTO v_a, v_b, v_rows
    FROM generate_series(v_first, v_last, interval '1 month') m
    LEFT JOIN billing._revenue_by_month(dashboard_html.entity_id) r ON r.month = m::date AND r.currency = v_currency;
    v_html := v_html || '<h2>Invoiced and collected</h2>'
        || '<p class="legend"><span class="s1">■ invoiced</span> <span class="s2">■ collected</span></p>'
        || billing._dashboard_bars(v_labels, v_a, v_b, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Month', 'Invoiced', 'Collected', 'Refunded', 'Outstanding'],
                                    v_rows);

    -- receivables aging (ar_aging of the entity's accounts)
    SELECT coalesce(sum(g.current), v_zero) AS current, coalesce(sum(g.days_1_30), v_zero) AS d30,
           coalesce(sum(g.days_31_60), v_zero) AS d60, coalesce(sum(g.days_61_90), v_zero) AS d90,
           coalesce(sum(g.days_over_90), v_zero) AS over90,
           array_agg(ARRAY[g.account_name, billing.format_number(g.total_due, v_locale), billing.format_number(g.open_invoices, v_locale),
                           g.oldest_due_date::text] ORDER BY g.total_due DESC, g.account_id) AS rows
    INTO v_aging
    FROM billing._ar_aging() g
    WHERE g.account_id = ANY (v_accounts) AND g.currency = v_currency;
    v_html := v_html || '<h2>Receivables aging</h2>'
        || billing._dashboard_bars(ARRAY['current', '1–30', '31–60', '61–90', '> 90'],
                                   ARRAY[v_aging.current, v_aging.d30, v_aging.d60, v_aging.d90, v_aging.over90],
                                   NULL, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Current', '1–30 days', '31–60 days', '61–90 days', 'Over 90 days'],
                                    ARRAY[ARRAY[billing.format_number(v_aging.current, v_locale),
                                                billing.format_number(v_aging.d30, v_locale),
                                                billing.format_number(v_aging.d60, v_locale),
                                                billing.format_number(v_aging.d90, v_locale),
                                                billing.format_number(v_aging.over90, v_locale)]])
        || billing._dashboard_table(ARRAY['Account', 'Due', 'Open invoices', 'Oldest due date'],
                                    v_aging.rows);

    -- the dunning funnel (dunning_funnel of the entity's invoices)
    SELECT array_agg(f.step ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(f.invoices ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(f.recovered ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(ARRAY[f.policy, f.step, f.action, f.day_offset::text, billing.format_number(f.invoices, v_locale),
                           billing.format_number(f.amount_due, v_locale), billing.format_number(f.recovered, v_locale),
                           billing.format_number(f.recovered_amount, v_locale), billing.format_number(f.still_open, v_locale),
                           billing.format_number(f.written_off, v_locale)] ORDER BY f.policy_id, f.day_offset, f.step_id)
    INTO v_labels, v_a, v_b, v_rows
    FROM billing._dunning_funnel(dashboard_html.entity_id) f
    WHERE f.currency = v_currency;
    v_html := v_html || '<h2>Dunning funnel</h2>'
        || CASE WHEN v_labels IS NULL THEN '<p>No invoice reached a dunning step.</p>'
                ELSE '<p class="legend"><span class="s1">■ invoices</span> <span class="s2">■ recovered</span></p>'
                     || billing._dashboard_bars(v_labels, v_a, v_b, v_locale, v_dir) END
        || billing._dashboard_table(ARRAY['Policy', 'Step', 'Action', 'Day', 'Invoices', 'Amount due', 'Recovered',
                                          'Recovered amount', 'Still open', 'Written off'],
                                    v_rows);
    RETURN v_html || '</body></html>';
END $$;
COMMENT ON FUNCTION billing.dashboard_html(bigint, text, integer, text) IS
    'the finance dashboard of one billing entity as one HTML page with inline SVG charts and no script: MRR and its '
    'movements and invoiced and collected over the last months months, receivables aging, days sales outstanding '
    '(90 days), the dunning funnel; in one currency (default the entity''s), numbers in locale (default the '
    'entity''s first account''s, else en-US), right to left for Hebrew and Arabic';

-- src/sql/install/93_distribute.sql
-- Scaling out with Citus (README: Scaling out).  billing.distribute(), run
-- once on a Citus coordinator by the extension's owner, turns an installed
-- billing into a distributed one:
--   * every table with an account_id is distributed by account_id, all of
--     them co-located with billing.account, so that everything one account
--     owns (subscriptions, invoices, ledger, payments, dunning) lives in one
--     shard group and each money step of one account is a single-shard
--     transaction;
--   * every other table (the entities, the catalog, the number series, the
--     settings, the run logs) becomes a reference table, copied to every
--     node, so that joins from an account's rows to the catalog stay local;
--   * the row-level security policies are rewritten without subqueries
--     (Citus refuses those on distributed tables): the same rule, evaluated
--     by the functions row by row instead of once per query;
--   * the guarding triggers are kept (they run on the shards: Citus calls
--     triggers on distributed tables unsafe only because a trigger may reach
--     another shard; these read only the rows of their own account).
-- Without Citus it changes nothing and fails with 55000 and a hint.
-- Calling it again distributes only what is not yet distributed.

CREATE FUNCTION billing._citus_present() RETURNS boolean
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus')
$$;
COMMENT ON FUNCTION billing._citus_present() IS
    'internal: true when the citus extension is created in this database';

-- A change to the tables before they are distributed, made on this node and
-- on every worker: CREATE EXTENSION made the same tables there, and Citus
-- takes the workers' copies as they are for the tables it distributes.
CREATE FUNCTION billing._on_every_node(command text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    failed text;
BEGIN
    EXECUTE command;
    -- the names in the command are those of this function's search_path
    EXECUTE pg_catalog.concat('SELECT string_agg(w.nodename || '':'' || w.nodeport || '': '' || w.result, ''; '') ',
                              'FROM pg_catalog.', 'run_command_on_workers($1) w WHERE NOT w.success')
        INTO failed USING 'SET search_path = billing, pg_catalog, pg_temp; ' || command;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'billing.distribute(): % failed on %', command, failed
            USING ERRCODE = 'connection_failure';
    END IF;
END $$;
COMMENT ON FUNCTION billing._on_every_node(text) IS
    'internal: runs one statement here and on every Citus worker (billing.distribute()); raises when a worker fails';

-- The tables of the extension and what distribute() makes of them, in the
-- order it must make them: a table comes after every table it references.
CREATE FUNCTION billing.distribution_plan()
RETURNS TABLE (step integer, table_name regclass, kind text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    done oid[] := '{}'::oid[];
    n integer := 0;
    progress boolean := true;
    t record;
BEGIN
    WHILE progress LOOP
        progress := false;
        FOR t IN
            SELECT c.oid,
                   EXISTS (SELECT FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped) AS owned
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                                       AND d.deptype = 'e'
            JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
            WHERE c.relkind = 'r' AND c.oid <> ALL (done)
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f
                              WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid
                                AND f.confrelid <> ALL (done))
            ORDER BY c.relname
        LOOP
            n := n + 1;
            done := done || t.oid;
            progress := true;
            step := n;
            table_name := t.oid::regclass;
            kind := CASE WHEN t.owned THEN 'distributed' ELSE 'reference' END;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.distribution_plan() IS
    'what billing.distribute() makes of each table of the extension, in order: distributed (by account_id, '
    'co-located with billing.account) or reference; runs without Citus';

CREATE FUNCTION billing.distribute() RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p record;
    pol record;
    rel regclass;
    idx regclass;
    con name;
    def text;
    fks text[] := '{}'::text[];
    is_done boolean;
    missing text;
BEGIN
    IF NOT pg_catalog.pg_has_role(
            (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'billing'), 'USAGE') THEN
        RAISE EXCEPTION 'billing.distribute() is for the owner of the billing extension, not %', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT billing._citus_present() THEN
        RAISE EXCEPTION 'billing.distribute() needs Citus, and the citus extension is not created in database %',
            current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install Citus for this PostgreSQL, add citus to shared_preload_libraries, '
                         'CREATE EXTENSION citus on the coordinator and every worker, add the workers '
                         '(citus_add_node), then call billing.distribute() on the coordinator.';
    END IF;
    -- Citus's own functions and tables are named only in statements built
    -- at run time (EXECUTE of concat), so that this function is created and
    -- checked (plpgsql_check) where Citus is absent.
    EXECUTE pg_catalog.concat('SELECT NOT pg_catalog.', 'citus_is_coordinator()') INTO is_done;
    IF is_done THEN
        RAISE EXCEPTION 'billing.distribute() runs on the Citus coordinator, and this node is a worker'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the triggers only guard the rows of their own account
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- one transaction that creates shards and then alters the tables
    -- (policies, foreign keys) must use one connection per node
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- The policies: Citus refuses subqueries in them.  The rules stay those
    -- of 95_security.sql, written as function calls.
    FOR pol IN
        SELECT pl.polrelid::regclass AS rel, pl.polname,
               EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pl.polrelid AND a.attname = 'entity_id' AND NOT a.attisdropped) AS has_entity,
               EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pl.polrelid AND a.attname = 'account_id' AND NOT a.attisdropped) AS has_account,
               pl.polcmd
        FROM pg_catalog.pg_policy pl
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = pl.polrelid
                                   AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        WHERE pl.polname = 'entity_scope'
          AND pg_catalog.pg_get_expr(pl.polqual, pl.polrelid) ~* 'SELECT'
    LOOP
        PERFORM billing._on_every_node(format('DROP POLICY IF EXISTS %I ON %s', pol.polname, pol.rel));
        IF pol.polcmd = '*' THEN
            -- the run logs: only for roles that see every entity
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s USING (billing._acting_role_sees_all()) '
                           'WITH CHECK (billing._acting_role_sees_all())', pol.polname, pol.rel));
        ELSIF pol.has_entity THEN
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s FOR SELECT USING (billing._acting_role_sees_all() '
                           'OR entity_id = ANY (billing._acting_role_entities()))', pol.polname, pol.rel));
        ELSE
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s FOR SELECT USING (billing._acting_role_sees_all() '
                           'OR billing._may_use_account(account_id))', pol.polname, pol.rel));
        END IF;
        RETURN NEXT format('policy %s on %s: without subqueries', pol.polname, pol.rel);
    END LOOP;
    -- The foreign keys between the tables are dropped while they are
    -- distributed and made again after: a reference table that a table not
    -- yet distributed refers to would make Citus convert that one into a
    -- local table of its metadata, which recreates its identity sequence,
    -- an object of the extension.  The constraints come back as they were
    -- (the distributed ones hold the account_id, so they stay in one shard).
    FOR rel, con, def IN EXECUTE pg_catalog.concat(
        'SELECT f.conrelid::regclass AS rel, f.conname, pg_catalog.pg_get_constraintdef(f.oid) AS def '
        'FROM pg_catalog.pg_constraint f '
        'WHERE f.contype = ''f'' '
        '  AND f.conrelid IN (SELECT x.table_name FROM billing.distribution_plan() x) '
        '  AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = f.conrelid) '
        'ORDER BY f.conrelid::regclass::text, f.conname')
    LOOP
        PERFORM billing._on_every_node(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', rel, con));
        fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', rel, con, def);
    END LOOP;
    -- A unique key of an account's table that does not hold the account_id
    -- would have to be checked across shards, which Citus cannot do: such a
    -- key becomes a plain index of the same columns (README: Scaling out
    -- says which ones and what guards them instead).
    FOR idx, rel, con, def IN EXECUTE pg_catalog.concat(
        'SELECT i.indexrelid::regclass AS idx, i.indrelid::regclass AS rel, c.conname, '
        '       pg_catalog.pg_get_indexdef(i.indexrelid) AS def '
        'FROM pg_catalog.pg_index i '
        'JOIN billing.distribution_plan() x ON x.table_name = i.indrelid AND x.kind = ''distributed'' '
        'LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid '
        'WHERE i.indisunique '
        '  AND NOT (SELECT a.attnum FROM pg_catalog.pg_attribute a '
        '           WHERE a.attrelid = i.indrelid AND a.attname = ''account_id'') = ANY (i.indkey::int2[]) '
        '  AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = i.indrelid) '
        'ORDER BY 1::text')
    LOOP
        IF con IS NOT NULL THEN
            PERFORM billing._on_every_node(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', rel, con));
        ELSE
            PERFORM billing._on_every_node(format('DROP INDEX IF EXISTS %s', idx));
        END IF;
        PERFORM billing._on_every_node(pg_catalog.regexp_replace(def, '^CREATE UNIQUE INDEX', 'CREATE INDEX'));
        RETURN NEXT format('%s: unique across accounts, now a plain index', idx);
    END LOOP;
    -- The ledger's balance trigger probes billing.ledger_transaction and
    -- billing.account for the transactions and accounts of the entries; on
    -- a shard those rows are in the colocated shards, not there.  So the
    -- trigger checks the balance alone ('balance'), and foreign keys,
    -- which Citus keeps within an account's shard group, check the rest.
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = 'billing.ledger_entry'::regclass AND t.tgname = 'ledger_entry_balanced'
                 AND t.tgnargs = 0) THEN
        PERFORM billing._on_every_node('DROP TRIGGER ledger_entry_balanced ON billing.ledger_entry');
        PERFORM billing._on_every_node(
            'CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing.ledger_entry '
            'REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT '
            'EXECUTE FUNCTION billing._ledger_check_balance(''balance'')');
        fks := fks || 'ALTER TABLE billing.ledger_transaction ADD CONSTRAINT ledger_transaction_account_id_fkey '
                      'FOREIGN KEY (account_id) REFERENCES billing.account (account_id)'::text
                   || 'ALTER TABLE billing.ledger_entry ADD CONSTRAINT ledger_entry_account_id_txn_id_fkey '
                      'FOREIGN KEY (account_id, txn_id) REFERENCES billing.ledger_transaction (account_id, txn_id)'::text;
        RETURN NEXT 'trigger ledger_entry_balanced: the balance, and foreign keys for the transactions and accounts';
    END IF;
    -- The same for the guard that the account of an invoice without a
    -- subscription exists: on a shard it would query billing.account, not
    -- the colocated shard, so a foreign key takes its place.
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = 'billing.invoice'::regclass AND t.tgname = 'invoice_account_exists') THEN
        PERFORM billing._on_every_node('DROP TRIGGER invoice_account_exists ON billing.invoice');
        fks := fks || 'ALTER TABLE billing.invoice ADD CONSTRAINT invoice_account_id_fkey '
                      'FOREIGN KEY (account_id) REFERENCES billing.account (account_id)'::text;
        RETURN NEXT 'trigger invoice_account_exists: a foreign key';
    END IF;
    FOR p IN SELECT * FROM billing.distribution_plan() x ORDER BY x.step LOOP
        EXECUTE pg_catalog.concat('SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = $1)')
            INTO is_done USING p.table_name;
        CONTINUE WHEN is_done;
        IF p.kind = 'reference' THEN
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_reference_table($1)') USING p.table_name;
        ELSIF p.table_name = 'billing.account'::regclass THEN
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_distributed_table($1, ''account_id'')') USING p.table_name;
        ELSE
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_distributed_table($1, ''account_id'', colocate_with => ''billing.account'')')
                USING p.table_name;
        END IF;
        RETURN NEXT format('%s: %s', p.table_name, p.kind);
    END LOOP;
    FOR i IN 1 .. coalesce(pg_catalog.array_length(fks, 1), 0) LOOP
        EXECUTE fks[i];
    END LOOP;
    -- what is left undistributed would be a local table a distributed
    -- query cannot join
    EXECUTE pg_catalog.concat('SELECT string_agg(p.table_name::text, '', '') FROM billing.distribution_plan() p '
            'WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = p.table_name)')
        INTO missing;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'billing.distribute() left tables undistributed: %', missing
            USING ERRCODE = 'internal_error';
    END IF;
END $$;
COMMENT ON FUNCTION billing.distribute() IS
    'on a Citus coordinator: distributes the tables that hold an account_id by account_id, co-located with '
    'billing.account, makes the others reference tables, rewrites the row-level security policies without '
    'subqueries; returns what it did; again: only what is left; without Citus: 55000 and nothing changed';

-- src/sql/install/95_security.sql
-- Roles, entity bindings and row-level security.  README,
-- Operations: "Roles and row-level security".
--
-- The model:
--   * Nothing is granted to PUBLIC (00_schema.sql, 99_privileges.sql).  The
--     DBA calls billing.grant_roles(writer, operator, reporting), which
--     creates the three roles (NOLOGIN) if they are missing and grants them
--     what billing.role_functions() lists; the extension never creates a
--     role by itself.
--   * No role but the owner may INSERT, UPDATE or DELETE a billing table
--     (the operator may write billing.cycle_run, the log its procedure
--     keeps).  Every function that writes is SECURITY DEFINER, pins
--     search_path, and checks first that the role acting may use the
--     account, entity or invoice it names (billing._authorize_*).
--   * A role may use the billing entities bound to it, and to every role
--     whose privileges it has (membership with INHERIT), in
--     billing.role_binding; entity_id NULL there means every entity.
--     Superusers, roles with BYPASSRLS and the extension's owner may use
--     every entity.  An unbound role may use none: the default is closed.
--   * Direct reads (the reporting role, BI tools, the application's own
--     SELECTs) go through row-level security on every table that carries
--     account_id or entity_id, with the same rule; the views are
--     security_invoker so that their tables' policies apply to the reader.
--
-- Who acts: inside a SECURITY DEFINER function current_user is the owner,
-- so the functions ask for the role the session acts as instead: the role of
-- SET ROLE, or the session user when there is none.  SET ROLE is checked by
-- the server against the session user's memberships and cannot be run
-- inside a SECURITY DEFINER function, so a caller cannot name a role it may
-- not become; and a role it may become (a group role, say) gives it only
-- that role's bindings.  Row-level security uses the same rule, so a
-- function and a SELECT always agree on what a role may see.

CREATE TABLE billing.role_binding (
    role_name  name NOT NULL CHECK (role_name <> ''),
    entity_id  bigint REFERENCES billing.billing_entity,
    created_at timestamptz NOT NULL DEFAULT billing.now(),
    UNIQUE NULLS NOT DISTINCT (role_name, entity_id)
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.role_binding ADD CONSTRAINT role_binding_no_card_number CHECK (
    billing._no_card_number(role_name::text, 'billing.role_binding.role_name'));
COMMENT ON TABLE billing.role_binding IS
    'which billing entities a role (and every role that has its privileges) may use; entity_id NULL: every entity. '
    'Written by billing.bind_role_to_entity and billing.unbind_role_from_entity';
COMMENT ON COLUMN billing.role_binding.role_name IS
    'a role name, kept as text so that pg_dump and pg_upgrade keep it; unbind a role before dropping it';
SELECT pg_catalog.pg_extension_config_dump('billing.role_binding', '');

-- ---------------------------------------------------------------------------
-- Who acts, and what it may use.

CREATE FUNCTION billing.acting_role() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION billing.acting_role() IS
    'the role the session acts as: the role of SET ROLE, else the session user; billing''s entity checks and '
    'row-level security judge this role (inside a SECURITY DEFINER function current_user is the owner)';

-- The three helpers below are C (src/security.c): they run at the top of
-- every SECURITY DEFINER function and in every row-level security policy.
-- They read the role's attributes from the system caches and
-- billing.role_binding and billing.account directly (no SQL, no
-- search_path, no privilege needed), under the statement's snapshot;
-- nothing is cached between calls.
--
-- PARALLEL SAFE, so that a read under row-level security (every read of a
-- role that is not the owner) can have a parallel plan: the policies call
-- them, and one parallel-unsafe function in a query makes all of it serial.
-- They are safe: they write nothing, keep no state between calls, and use
-- nothing of the backend that a parallel worker does not share.  The
-- acting role is GetCurrentRoleId() (the role of SET ROLE), else
-- GetSessionUserId(); PostgreSQL 15 starts every parallel worker with the
-- leader's session user (SET SESSION AUTHORIZATION included), the leader's
-- SET ROLE and its current user and security context (ParallelWorkerMain,
-- from the leader's FixedParallelState), so a worker judges the same role as
-- its leader.  The rows they read (billing.role_binding, billing.account)
-- are read under the leader's snapshot, which every worker restores;
-- the catalogs (pg_authid, pg_extension) through the same syscaches.
-- sql/bounds.sql checks the plan and the answers in a worker.
CREATE FUNCTION billing._acting_role_sees_all() RETURNS boolean
    AS 'MODULE_PATHNAME', 'acting_role_sees_all' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_sees_all() IS
    'internal: true when the acting role may use every billing entity (superuser, BYPASSRLS, the extension''s '
    'owner, or bound to every entity directly or through a role whose privileges it has)';

CREATE FUNCTION billing._acting_role_entities() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'acting_role_entities' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_entities() IS
    'internal: the billing entities bound to the acting role or to a role whose privileges it has (never NULL; '
    'for a superuser every bound entity)';

CREATE FUNCTION billing._may_use_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'may_use_account' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._may_use_account(bigint) IS
    'internal: true when the acting role may use the account (false for an account that does not exist)';

-- The row-level security policies' form of _may_use_account: what the role
-- may use is read once per query and the accounts' entities are kept for
-- its rows (a few probes of account's key, or one scan of the role's
-- accounts when there are many), so that a statement about one account
-- costs a probe and a report over a whole table one scan of its accounts.
CREATE FUNCTION billing._acting_role_may_use_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'account_in_scope' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_may_use_account(bigint) IS
    'internal: true when the acting role may use the account (false for an account that does not exist); '
    'for row-level security policies: the answers are kept for the rest of the query';

-- The checks.  One call at the top of every SECURITY DEFINER function, once
-- per call (never per row).  A role that may not use an account gets 42501
-- whether the account exists or not, so ids of other entities cannot be
-- probed; a role that may use every entity gets the function's own error.
CREATE FUNCTION billing._authorize_account(account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF NOT billing._may_use_account(account_id) THEN
        RAISE EXCEPTION 'role % may not use account %', billing.acting_role(), coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The account does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_account(bigint) IS
    'internal: raises 42501 unless the acting role may use the account';

-- For reads that answer about an account (entitlements): the account must
-- also exist, so that a wrong id in the application is an error rather
-- than a customer without access.
CREATE FUNCTION billing._authorize_existing_account(account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(account_id);
    PERFORM FROM billing.account a WHERE a.account_id = _authorize_existing_account.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_existing_account(bigint) IS
    'internal: raises 42501 unless the acting role may use the account, no_data_found unless it exists';

-- For batches (dunning statuses): one query for the whole array.
CREATE FUNCTION billing._authorize_accounts(accounts bigint[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_bad bigint;
BEGIN
    IF billing._acting_role_sees_all() THEN
        RETURN;
    END IF;
    SELECT u.id INTO v_bad FROM unnest(accounts) u(id)
    WHERE NOT EXISTS (SELECT FROM billing.account a
                      WHERE a.account_id = u.id AND a.entity_id = ANY (billing._acting_role_entities()))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'role % may not use account %', billing.acting_role(), coalesce(v_bad::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The account does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_accounts(bigint[]) IS
    'internal: raises 42501 unless the acting role may use every account of the array';

CREATE FUNCTION billing._authorize_entity(entity_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    -- (coalesce: a NULL entity_id makes the test NULL, which must refuse,
    -- not let the call through)
    IF NOT coalesce(billing._acting_role_sees_all() OR entity_id = ANY (billing._acting_role_entities()), false) THEN
        RAISE EXCEPTION 'role % may not use billing entity %', billing.acting_role(), coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The role is not bound to that billing entity.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_entity(bigint) IS
    'internal: raises 42501 unless the acting role may use the billing entity';

CREATE FUNCTION billing._authorize_invoice(invoice_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF billing._acting_role_sees_all() THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM billing.invoice i
                   WHERE i.invoice_id = _authorize_invoice.invoice_id
                     AND i.entity_id = ANY (billing._acting_role_entities())) THEN
        RAISE EXCEPTION 'role % may not use invoice %', billing.acting_role(), coalesce(invoice_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The invoice does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_invoice(bigint) IS
    'internal: raises 42501 unless the acting role may use the invoice''s billing entity';

-- What is shared by every entity (the catalog, new entities, settings) and
-- what runs over every entity (the cycle, collection workers) needs a role
-- that may use every entity.
CREATE FUNCTION billing._authorize_all(action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF NOT billing._acting_role_sees_all() THEN
        RAISE EXCEPTION 'role % may not %: that needs a role bound to every billing entity', billing.acting_role(), action
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The catalog, new billing entities, settings and the cycle are shared by every entity.',
                  HINT = 'A DBA binds a role to every entity with billing.bind_role_to_entity(role, NULL).';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_all(text) IS
    'internal: raises 42501 unless the acting role may use every billing entity';

-- ---------------------------------------------------------------------------
-- Bindings.  Called by the DBA (no role is granted these).

CREATE FUNCTION billing.bind_role_to_entity(role_name name, entity_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = bind_role_to_entity.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', coalesce(role_name::text, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'Create it first, or call billing.grant_roles.';
    END IF;
    IF entity_id IS NOT NULL AND NOT EXISTS (SELECT FROM billing.billing_entity e
                                             WHERE e.entity_id = bind_role_to_entity.entity_id) THEN
        RAISE EXCEPTION 'billing entity % does not exist', entity_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Pass NULL to bind the role to every entity.';
    END IF;
    INSERT INTO billing.role_binding AS b (role_name, entity_id) VALUES (role_name, entity_id)
    ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION billing.bind_role_to_entity(name, bigint) IS
    'lets a role (and every role that has its privileges) use a billing entity: its accounts, invoices, payments '
    'and the rest; entity_id NULL: every entity.  For the DBA';

CREATE FUNCTION billing.unbind_role_from_entity(role_name name, entity_id bigint) RETURNS integer
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH d AS (
        DELETE FROM billing.role_binding b
        WHERE b.role_name = unbind_role_from_entity.role_name
          AND b.entity_id IS NOT DISTINCT FROM unbind_role_from_entity.entity_id
        RETURNING 1
    )
    SELECT count(*)::integer FROM d
$$;
COMMENT ON FUNCTION billing.unbind_role_from_entity(name, bigint) IS
    'removes a binding made by bind_role_to_entity (entity_id NULL: the every-entity binding); returns how many '
    'were removed.  For the DBA';

-- ---------------------------------------------------------------------------
-- Which role kind may execute which function.  The one list that
-- grant_roles grants from and that the install script below makes SECURITY
-- DEFINER.  Kinds:
--   reader    SECURITY DEFINER reads that check the account: every role
--   writer    SECURITY DEFINER writes of the application
--   operator  the cycle and the collection workers, over every entity
--   dba       bindings and grants: no role, only the owner/superuser
--   read_helper  internal functions that the views, the read functions and
--             the procedures running with the caller's rights call: granted
--             to every role; they read under row-level security like the
--             caller
-- Every other function whose name does not start with "_" (amounts, periods,
-- formatting, invariant checks) runs with the caller's rights, reads under
-- row-level security, and is granted to every role.  sql/security.sql fails
-- when a function that writes is missing here.
CREATE FUNCTION billing.role_functions()
RETURNS TABLE (kind text, function regprocedure)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT x.kind, x.function::regprocedure FROM (VALUES
        ('reader',   'billing.preview_invoice(bigint, bigint, date)'),
        ('reader',   'billing.entitled(bigint, text)'),
        ('reader',   'billing.entitlement(bigint, text)'),
        ('reader',   'billing.entitlements(bigint)'),
        ('reader',   'billing.account_balance(bigint, date)'),
        ('reader',   'billing.account_statement(bigint, date, date)'),
        ('reader',   'billing.invoice_document(bigint, text)'),
        ('reader',   'billing.dashboard_html(bigint, text, integer, text)'),
        ('reader',   'billing.price_amount(bigint, numeric, text)'),
        ('writer',   'billing.create_billing_entity(text, text, text, text, text, boolean, integer, jsonb, text)'),
        ('writer',   'billing.update_billing_entity(bigint, text, text, text, text, jsonb, text)'),
        ('writer',   'billing.create_tax_rate(text, numeric, boolean, text)'),
        ('writer',   'billing.create_account(bigint, text, text, text, integer, text, text, text, bigint, boolean, jsonb, text)'),
        ('writer',   'billing.update_account(bigint, text, text, integer, text, text, text, bigint, boolean, jsonb, text)'),
        ('writer',   'billing.create_product(text, text, jsonb)'),
        ('writer',   'billing.update_product(bigint, text, text, boolean, jsonb)'),
        ('writer',   'billing.create_price(bigint, text, numeric, text, interval, text, text, numeric, jsonb, numeric, integer, bigint, text, jsonb, boolean)'),
        ('writer',   'billing.update_price(bigint, text, boolean, bigint, integer, jsonb, boolean)'),
        ('writer',   'billing.create_coupon(text, text, numeric, billing.amount, integer, text)'),
        ('writer',   'billing.create_coupon(text, text, numeric, text, integer, text)'),
        ('writer',   'billing.subscribe(bigint, bigint, numeric, date, date, integer, text, jsonb, boolean, jsonb)'),
        ('writer',   'billing.apply_coupon(bigint, bigint, text, boolean)'),
        ('writer',   'billing.change_subscription(bigint, bigint, bigint, numeric, text, date, bigint)'),
        ('writer',   'billing.cancel_subscription(bigint, bigint, boolean, boolean, date)'),
        ('writer',   'billing.add_subscription_item(bigint, bigint, bigint, numeric, text, date)'),
        ('writer',   'billing.remove_subscription_item(bigint, bigint, text, date)'),
        ('writer',   'billing.schedule_change(bigint, bigint, date, bigint, numeric, bigint)'),
        ('writer',   'billing.cancel_scheduled_change(bigint, bigint)'),
        ('writer',   'billing.migrate_price(bigint, bigint, integer, bigint[])'),
        ('writer',   'billing.pause_subscription(bigint, bigint)'),
        ('writer',   'billing.resume_subscription(bigint, bigint, date)'),
        ('writer',   'billing.record_usage(bigint, bigint, numeric, text, timestamptz, text)'),
        ('writer',   'billing.record_usage_batch(bigint[], bigint[], numeric[], text[], timestamptz[], text[])'),
        ('writer',   'billing.mark_events_done(bigint[])'),
        ('writer',   'billing.set_early_payment_discount(bigint, numeric, integer)'),
        ('writer',   'billing.apply_payment(bigint, billing.amount, text, text, text, date, bigint[])'),
        ('writer',   'billing.apply_payment(bigint, numeric, text, text, text, date, bigint[])'),
        ('writer',   'billing.refund_payment(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.refund_payment(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.refund_credit(bigint, billing.amount, text, text)'),
        ('writer',   'billing.refund_credit(bigint, numeric, text, text)'),
        ('writer',   'billing.record_chargeback(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.record_chargeback(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.issue_credit_note(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.issue_credit_note(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.void_invoice(bigint, bigint, text)'),
        ('writer',   'billing.write_off_invoice(bigint, bigint, text)'),
        ('writer',   'billing.add_payment_method(bigint, text, text, boolean)'),
        ('writer',   'billing.remove_payment_method(bigint, bigint)'),
        ('writer',   'billing.set_collection_retry_days(integer[])'),
        ('writer',   'billing.create_installment_plan(bigint, bigint, integer, interval, date)'),
        ('writer',   'billing.create_dunning_policy(text, jsonb, boolean, text)'),
        ('writer',   'billing.set_dunning_policy(bigint, text)'),
        ('writer',   'billing.set_price_change_notice_days(integer)'),
        ('writer',   'billing.close_dunning(bigint, bigint, text)'),
        ('writer',   'billing.set_entity_draft_days(bigint, integer)'),
        ('writer',   'billing.set_account_draft_days(bigint, integer)'),
        ('writer',   'billing.finalize_invoice(bigint, bigint)'),
        ('writer',   'billing.add_invoice_item(bigint, billing.amount, text, bigint, bigint, boolean)'),
        ('writer',   'billing.add_invoice_item(bigint, numeric, text, bigint, bigint, boolean)'),
        ('writer',   'billing.remove_invoice_item(bigint, bigint, bigint)'),
        ('writer',   'billing.create_feature(text, text, text, text)'),
        ('writer',   'billing.set_price_feature(bigint, text, text, boolean)'),
        ('writer',   'billing.remove_price_feature(bigint, text)'),
        ('writer',   'billing.set_subscription_feature(bigint, bigint, text, text)'),
        ('writer',   'billing.remove_subscription_feature(bigint, bigint, text)'),
        ('operator', 'billing.run_cycle(date, integer, timestamptz)'),
        ('operator', 'billing.run_dunning(date, integer, timestamptz)'),
        ('operator', 'billing._default_dunning_policy()'),
        ('operator', 'billing._price_change_notices(date, timestamptz)'),
        ('operator', 'billing._dunning_batch(bigint, date, timestamptz, integer, bigint, bigint)'),
        ('operator', 'billing._dunning_sync_status(bigint[], date, timestamptz)'),
        ('operator', 'billing._cycle_batch(bigint, date, timestamptz, integer, date, bigint, bigint)'),
        ('operator', 'billing._trial_notices(date, timestamptz, integer)'),
        ('operator', 'billing._finalize_drafts_past_grace(date, timestamptz, integer, bigint, bigint)'),
        ('operator', 'billing._run_in_batches(regclass, bigint, regprocedure[], date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._cycle_drafts_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._cycle_bill_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._dunning_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._dunning_status_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing.claim_collection_attempts(text, integer, timestamptz)'),
        ('operator', 'billing.report_collection_result(bigint, bigint, boolean, text, text, text)'),
        ('operator', 'billing.claim_deliveries(text, text[], integer, interval, integer)'),
        ('operator', 'billing.finish_delivery(bigint, bigint, text, text, text, text, integer, interval, interval)'),
        ('operator', 'billing.delivery_email(bigint, bigint)'),
        ('dba',      'billing.grant_roles(name, name, name)'),
        ('dba',      'billing.bind_role_to_entity(name, bigint)'),
        ('dba',      'billing.unbind_role_from_entity(name, bigint)'),
        ('dba',      'billing.role_functions()'),
        ('dba',      'billing.schedule(text, text)'),
        ('dba',      'billing.unschedule()'),
        ('dba',      'billing.distribute()'),
        ('read_helper', 'billing._check_date(date, text, date)'),
        ('read_helper', 'billing._bill_dates(bigint[], bigint[], date, timestamptz, text, boolean)'),
        ('read_helper', 'billing._lines_to_bill(bigint[], bigint[], date, timestamptz, text, boolean)'),
        ('read_helper', 'billing._discount_and_tax(bigint[], bigint[], text[], text[], bigint[], bigint[], billing.amount[])'),
        ('read_helper', 'billing._usage_line(bigint, bigint, bigint, daterange, date, date, date, date, boolean, bigint[], text, text)'),
        ('read_helper', 'billing._price_value(bigint, text, numeric, numeric, numeric)'),
        ('read_helper', 'billing._tiered_value(bigint, text, numeric)'),
        ('read_helper', 'billing._ar_aging()'),
        ('read_helper', 'billing._mrr_movements()'),
        ('read_helper', 'billing._mrr_by_month(bigint)'),
        ('read_helper', 'billing._cohort_retention()'),
        ('writer',   'billing.set_exchange_rate(text, text, numeric, date)'),
        ('read_helper', 'billing._revenue_lines()'),
        ('read_helper', 'billing._revenue_schedule()'),
        ('read_helper', 'billing._revenue_months()'),
        ('read_helper', 'billing._revenue_waterfall()'),
        ('read_helper', 'billing._revenue_by_price()'),
        ('read_helper', 'billing._check_currency(text, text)'),
        ('read_helper', 'billing._convert_at(numeric, numeric, text)'),
        ('read_helper', 'billing._convert(numeric, text, text, date)'),
        ('read_helper', 'billing._check_report_month(text, date, text)'),
        ('read_helper', 'billing._check_report_months(text, date, date)'),
        ('read_helper', 'billing._revenue_by_month(bigint)'),
        ('read_helper', 'billing._days_sales_outstanding(integer, bigint)'),
        ('read_helper', 'billing._dunning_funnel(bigint)')
    ) x(kind, function)
$$;
COMMENT ON FUNCTION billing.role_functions() IS
    'which role kind may execute which function: reader (every role), writer, operator (SECURITY DEFINER, '
    'entity-checked), dba (nobody but the owner), read_helper (internal reads, every role); functions not '
    'listed are granted to every role unless internal';

-- Row-level security helpers need EXECUTE by every reader: they say what
-- the reader itself may use, nothing more.
CREATE FUNCTION billing._everyone_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT p.oid::regprocedure
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
    WHERE (p.proname !~ '^_' OR p.oid IN ('billing._acting_role_sees_all()'::regprocedure,
                                          'billing._acting_role_entities()'::regprocedure,
                                          'billing._acting_role_may_use_account(bigint)'::regprocedure))
      AND p.oid NOT IN (SELECT f.function FROM billing.role_functions() f)
$$;
COMMENT ON FUNCTION billing._everyone_functions() IS
    'internal: the functions granted to every role of grant_roles (not in role_functions, not internal)';

CREATE FUNCTION billing.grant_roles(writer name DEFAULT 'billing_writer', operator name DEFAULT 'billing_operator',
                                    reporting name DEFAULT 'billing_reporting')
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    r name;
    f regprocedure;
BEGIN
    IF writer IS NULL OR operator IS NULL OR reporting IS NULL OR '' IN (writer, operator, reporting) THEN
        RAISE EXCEPTION 'grant_roles needs three role names, not %, %, %', coalesce(writer::text, 'NULL'),
            coalesce(operator::text, 'NULL'), coalesce(reporting::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The defaults are billing_writer, billing_operator, billing_reporting.';
    END IF;
    FOREACH r IN ARRAY ARRAY[writer, operator, reporting] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles x WHERE x.rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        -- reading: the schema, every table and view (rows filtered by
        -- row-level security) except the bindings, the read functions
        EXECUTE format('GRANT USAGE ON SCHEMA billing TO %I', r);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA billing TO %I', r);
        EXECUTE format('REVOKE ALL ON billing.role_binding FROM %I', r);
        FOR f IN SELECT x FROM billing._everyone_functions() x
                 UNION SELECT x.function FROM billing.role_functions() x WHERE x.kind IN ('reader', 'read_helper') LOOP
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, r);
        END LOOP;
    END LOOP;
    FOR f IN SELECT x.function FROM billing.role_functions() x WHERE x.kind = 'writer' LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, writer);
    END LOOP;
    -- run_cycle is a procedure that commits, so it runs with the operator's
    -- rights: it writes its log itself and calls the SECURITY DEFINER batches
    FOR f IN SELECT x.function FROM billing.role_functions() x WHERE x.kind = 'operator' LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, operator);
    END LOOP;
    EXECUTE format('GRANT INSERT, UPDATE ON billing.cycle_run, billing.dunning_run TO %I', operator);
    EXECUTE format('GRANT USAGE ON SEQUENCE billing.cycle_run_cycle_run_id_seq, billing.dunning_run_dunning_run_id_seq TO %I',
                   operator);
    -- the operator works over every entity
    PERFORM billing.bind_role_to_entity(operator, NULL);
END $$;
COMMENT ON FUNCTION billing.grant_roles(name, name, name) IS
    'for the DBA: creates the application writer, operator and read-only reporting roles (NOLOGIN) if missing and '
    'grants them what billing.role_functions() lists; binds the operator to every entity; safe to call again';

-- ---------------------------------------------------------------------------
-- SECURITY DEFINER for the functions of role_functions() (procedures cannot
-- be: they commit).  Each one pins search_path (every function of billing
-- does) and calls billing._authorize_* first; sql/security.sql checks both.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT x.function FROM billing.role_functions() x
             JOIN pg_catalog.pg_proc p ON p.oid = x.function
             WHERE x.kind IN ('reader', 'writer', 'operator') AND p.prokind = 'f' LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------
-- Row-level security on every table that carries entity_id or account_id
-- (a table added later gets it too), and on the cycle log.  Policies only
-- for SELECT: no role but the owner writes these tables, and with row-level
-- security on, a write a policy does not allow is refused even to a role
-- that was granted it by mistake.  The functions of the policies run once
-- per query (scalar subqueries), not per row.  A table without entity_id
-- asks _acting_role_may_use_account about each row's account: one probe of account's
-- key for a statement about one account, one scan of the role's accounts
-- for a report over a whole table.  (A subquery over the role's accounts
-- was hashed whole before the first row even for one account; as a
-- correlated EXISTS the planner costs it as a probe per row and then
-- chooses nested loops of a million probes for the reports' joins.)
DO $$
DECLARE
    t regclass;
    has_entity boolean;
BEGIN
    FOR t, has_entity IN
        SELECT c.oid::regclass, bool_or(a.attname = 'entity_id')
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('account_id', 'entity_id') AND NOT a.attisdropped
        WHERE c.relkind = 'r' AND c.oid <> 'billing.role_binding'::regclass
        GROUP BY c.oid
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        IF has_entity THEN
            EXECUTE format('CREATE POLICY entity_scope ON %s FOR SELECT USING ('
                           '(SELECT billing._acting_role_sees_all()) '
                           'OR entity_id = ANY ((SELECT billing._acting_role_entities())::bigint[]))', t);
        ELSE
            EXECUTE format('CREATE POLICY entity_scope ON %s FOR SELECT USING ('
                           '(SELECT billing._acting_role_sees_all()) OR billing._acting_role_may_use_account(account_id))', t);
        END IF;
    END LOOP;
END $$;
-- The cycle and dunning logs name accounts of every entity: only for roles
-- that may use every entity (the operator writes them from run_cycle and
-- run_dunning).
ALTER TABLE billing.cycle_run ENABLE ROW LEVEL SECURITY;
CREATE POLICY entity_scope ON billing.cycle_run
    USING ((SELECT billing._acting_role_sees_all())) WITH CHECK ((SELECT billing._acting_role_sees_all()));
ALTER TABLE billing.dunning_run ENABLE ROW LEVEL SECURITY;
CREATE POLICY entity_scope ON billing.dunning_run
    USING ((SELECT billing._acting_role_sees_all())) WITH CHECK ((SELECT billing._acting_role_sees_all()));

-- Views read their tables with the reader's rights, so the policies above
-- apply to whoever reads them (a view owned by a superuser would see all).
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
             WHERE c.relkind = 'v' LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END $$;


-- 4. what needs the objects of 2 and 3

-- accounts are never deleted (30_accounts_catalog.sql)
CREATE OR REPLACE TRIGGER account_never_deleted BEFORE DELETE OR TRUNCATE ON billing.account
    FOR EACH STATEMENT EXECUTE FUNCTION billing._account_never_deleted();

-- a usage event's item checked per statement, in place of the foreign key
-- dropped in part 1; items never deleted, item keys never changed
-- (40_subscriptions.sql)
CREATE OR REPLACE TRIGGER usage_event_items_exist AFTER INSERT ON billing.usage_event
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION billing._usage_event_items_exist();
CREATE OR REPLACE TRIGGER subscription_item_never_deleted BEFORE DELETE OR TRUNCATE ON billing.subscription_item
    FOR EACH STATEMENT EXECUTE FUNCTION billing._key_never_changes();
CREATE OR REPLACE TRIGGER subscription_item_key_kept BEFORE UPDATE OF account_id, subscription_item_id ON billing.subscription_item
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id
                       OR OLD.subscription_item_id IS DISTINCT FROM NEW.subscription_item_id)
    EXECUTE FUNCTION billing._key_never_changes();
CREATE OR REPLACE TRIGGER usage_event_item_kept BEFORE UPDATE OF account_id, subscription_item_id ON billing.usage_event
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id
                       OR OLD.subscription_item_id IS DISTINCT FROM NEW.subscription_item_id)
    EXECUTE FUNCTION billing._key_never_changes();

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

-- 5. src/sql/install/99_privileges.sql
-- Last in the install script: nothing of billing is usable by PUBLIC.
-- Functions are created executable by PUBLIC by default; take that back for
-- every function the files above created.  The DBA grants what each role
-- needs (README, Operations: Roles and row-level security).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA billing FROM PUBLIC;
