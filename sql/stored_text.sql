--
-- What callers store and refund: no card number in any text or jsonb value
-- billing stores, however it is written; no cash refund of money that never
-- came in; external_ref unique per entity only; the entity's rounding mode,
-- never the session's, in what is billed.
--
CREATE DATABASE stored_text_regress;
\c stored_text_regress
\i test/regress_own_database.sql
-- errors show their message, detail and hint, not where in billing they rose
\set SHOW_CONTEXT never

-- The world: a seller, a customer with a card on file, a licensed and a
-- metered price, an invoice paid by a payment, an invoice left open, a
-- pending collection attempt, a dunning policy.
SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_tax_rate('VAT', 20) AS vat \gset
SELECT billing.create_account(:entity, 'Alice') AS a \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS price \gset
SELECT billing.create_price(:product, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered') AS metered \gset
SELECT billing.subscribe(:a, :price) AS paid_sub \gset
SELECT invoice_id AS paid_inv FROM billing.invoice WHERE account_id = :a \gset
SELECT billing.apply_payment(:a, '10.00 USD', 'card', reference => 'tok_1') AS p \gset
SELECT billing.add_payment_method(:a, 'card', 'pm_alice') AS pm \gset
SELECT billing.subscribe(:a, :metered) AS metered_sub \gset
SELECT billing.subscribe(:a, :price) AS open_sub \gset
SELECT invoice_id AS open_inv FROM billing.invoice WHERE account_id = :a AND subscription_id = :open_sub \gset
SELECT subscription_item_id AS item FROM billing.subscription_item WHERE subscription_id = :metered_sub \gset
SELECT billing.create_dunning_policy('standard', is_default => true) AS policy \gset
SELECT count(*) AS pending_attempts FROM billing.collection_attempt WHERE status = 'pending';

-- Every way a caller stores text or jsonb, one statement each; %L is the
-- text.  Functions where there is one, direct writes where the constraint
-- is all there is (they prove that no path forgets it).
CREATE TABLE field (name text PRIMARY KEY, stmt text NOT NULL);
INSERT INTO field VALUES
    ('billing_entity.legal_name', 'SELECT billing.create_billing_entity(%L, ''USD'')'),
    ('billing_entity.tax_id', 'SELECT billing.create_billing_entity(''X'', ''USD'', tax_id => %L)'),
    ('billing_entity.address', 'SELECT billing.update_billing_entity(1, address => %L)'),
    ('billing_entity.metadata', 'SELECT billing.create_billing_entity(''X'', ''USD'', metadata => jsonb_build_object(''iban'', %L))'),
    ('tax_rate.name', 'SELECT billing.create_tax_rate(%L, 20)'),
    ('tax_rate.jurisdiction', 'SELECT billing.create_tax_rate(''VAT'', 20, jurisdiction => %L)'),
    ('account.name', 'SELECT billing.create_account(1, %L)'),
    ('account.name (update)', 'SELECT billing.update_account(1, name => %L)'),
    ('account.email', 'SELECT billing.create_account(1, ''X'', email => %L)'),
    ('account.external_ref', 'SELECT billing.create_account(1, ''X'', external_ref => %L)'),
    -- (create_account also asks ICU whether it knows the locale: the column's
    -- own check is proven by a direct write)
    ('account.locale', 'UPDATE billing.account SET locale = %L WHERE account_id = 1'),
    ('account.address', 'SELECT billing.create_account(1, ''X'', address => %L)'),
    ('account.address (update)', 'SELECT billing.update_account(1, address => %L)'),
    ('account.metadata value', 'SELECT billing.create_account(1, ''X'', metadata => jsonb_build_object(''card'', %L))'),
    ('account.metadata key', 'SELECT billing.create_account(1, ''X'', metadata => jsonb_build_object(%L, 1))'),
    ('account.metadata nested', 'SELECT billing.update_account(1, metadata => jsonb_build_object(''a'', jsonb_build_array(1, jsonb_build_object(''b'', %L))))'),
    ('product.name', 'SELECT billing.create_product(%L)'),
    ('product.description', 'SELECT billing.update_product(1, description => %L)'),
    ('product.metadata', 'SELECT billing.create_product(''P'', metadata => jsonb_build_array(%L))'),
    ('price.nickname', 'SELECT billing.create_price(1, ''USD'', 1, nickname => %L)'),
    ('price.nickname (update)', 'SELECT billing.update_price(1, nickname => %L)'),
    ('price.metadata', 'SELECT billing.update_price(1, metadata => jsonb_build_object(''x'', %L))'),
    ('coupon.code', 'SELECT billing.create_coupon(%L, ''once'', 10)'),
    ('coupon.name', 'SELECT billing.create_coupon(''C'', ''once'', 10, name => %L)'),
    ('subscription.metadata', 'SELECT billing.subscribe(1, 1, metadata => jsonb_build_object(''po'', %L))'),
    ('usage_event.idempotency_key', 'SELECT billing.record_usage(1, ' || :item || ', 1, %L)'),
    ('usage_event.value', 'SELECT billing.record_usage(1, ' || :item || ', 1, ''u-1'', value => %L)'),
    ('payment.reference', 'SELECT billing.apply_payment(1, ''1.00 USD'', ''card'', reference => %L)'),
    ('payment.idempotency_key', 'SELECT billing.apply_payment(1, ''1.00 USD'', ''card'', idempotency_key => %L)'),
    ('refund.reason', 'SELECT billing.refund_payment(1, ' || :p || ', ''0.01 USD'', reason => %L)'),
    ('refund.idempotency_key', 'SELECT billing.refund_payment(1, ' || :p || ', ''0.01 USD'', idempotency_key => %L)'),
    ('credit_note.reason', 'SELECT billing.issue_credit_note(1, ' || :open_inv || ', ''0.01 USD'', ''credit_balance'', reason => %L)'),
    ('void reason (invoice.metadata)', 'SELECT billing.void_invoice(1, ' || :open_inv || ', %L)'),
    ('write-off reason (invoice.metadata)', 'SELECT billing.write_off_invoice(1, ' || :open_inv || ', %L)'),
    ('payment_method.token', 'SELECT billing.add_payment_method(1, ''card'', %L)'),
    ('collection_attempt.worker', 'SELECT billing.claim_collection_attempts(%L, 1)'),
    ('collection_attempt.provider_reference', 'UPDATE billing.collection_attempt SET provider_reference = %L'),
    ('collection_attempt.failure_code', 'UPDATE billing.collection_attempt SET failure_code = %L'),
    ('collection_attempt.failure_message', 'UPDATE billing.collection_attempt SET failure_message = %L'),
    ('dunning_policy.name', 'SELECT billing.create_dunning_policy(%L)'),
    ('dunning_policy.description', 'SELECT billing.create_dunning_policy(''p'', description => %L)'),
    ('dunning_step.name', 'SELECT billing.create_dunning_policy(''p'', jsonb_build_array(jsonb_build_object(''day_offset'', 1, ''action'', ''remind'', ''name'', %L)))'),
    ('dunning_case.close_reason', 'SELECT billing.close_dunning(1, ' || :open_inv || ', %L)'),
    ('ledger_account.name', 'INSERT INTO billing.ledger_account VALUES (''fees'', %L, ''revenue'', ''fees'')'),
    ('document_label.label', 'INSERT INTO billing.document_label VALUES (''it'', ''invoice'', %L)'),
    ('role_binding.role_name', 'INSERT INTO billing.role_binding (role_name) VALUES (%L)');

-- One statement, always rolled back: 'stored', 'card number refused'
-- (23514 from a constraint, 22023 from a function that checks first), or
-- another SQLSTATE.
CREATE FUNCTION attempt(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RAISE SQLSTATE 'ZX001';
EXCEPTION
    WHEN SQLSTATE 'ZX001' THEN RETURN 'stored';
    WHEN OTHERS THEN
        RETURN CASE WHEN SQLSTATE IN ('23514', '22023') AND SQLERRM ~ 'card number' THEN 'card number refused'
                    ELSE SQLSTATE || ' ' || SQLERRM END;
END $$;
CREATE FUNCTION everywhere(v text) RETURNS TABLE (fields bigint, outcome text, n bigint, which text)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM field), r.outcome, count(*),
           CASE WHEN count(*) < 4 THEN string_agg(r.name, ', ' ORDER BY r.name) END
    FROM (SELECT f.name, attempt(format(f.stmt, v)) AS outcome FROM field f) r
    GROUP BY r.outcome ORDER BY r.outcome
$$;

-- Nothing may be written by any refused attempt: the row counts of every
-- table before and after are compared at the end of this part.
CREATE TABLE counts_before AS
SELECT c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM billing.%I', c.relname),
                                                          false, true, '')))[1]::text::bigint AS n
FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE s.nspname = 'billing' AND c.relkind = 'r';

-- card_number_plain_refused_everywhere
SELECT * FROM everywhere('4111111111111111');
-- card_number_with_dots_refused
SELECT * FROM everywhere('4111.1111.1111.1111');
-- card_number_with_double_spaces_refused
SELECT * FROM everywhere('4111  1111  1111  1111');
-- card_number_with_tabs_refused
SELECT * FROM everywhere(E'4111\t1111\t1111\t1111');
-- card_number_with_no_break_spaces_refused
SELECT * FROM everywhere(U&'4111\00A01111\00A01111\00A01111');
-- card_number_with_slashes_and_newlines_refused (an Amex number)
SELECT * FROM everywhere(E'3782/822463\n10005');
-- card_number_in_full_width_digits_refused
SELECT * FROM everywhere(U&'\FF14\FF11\FF11\FF11 \FF11\FF11\FF11\FF11 \FF11\FF11\FF11\FF11 \FF11\FF11\FF11\FF11');
-- card_number_in_arabic_indic_digits_refused
SELECT * FROM everywhere(U&'\0664\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661\0661');
-- card_number_in_devanagari_and_mathematical_digits_refused (other Unicode decimal digits, mixed with ASCII)
SELECT * FROM everywhere(U&'\096A\0967\0967\0967 1111 \+01D7CF\+01D7CF\+01D7CF\+01D7CF 1111');
-- card_number_between_zero_width_spaces_and_combining_marks_refused
SELECT * FROM everywhere(U&'4\200B1\200B1\200B1 1\03321\03321\03321 1111 1111');
-- card_number_followed_by_its_expiry_date_refused
SELECT * FROM everywhere('card 4111 1111 1111 1111 12/25');

-- valid_phone_number_stored_everywhere
SELECT * FROM everywhere('+1 (555) 123-4567');
-- valid_12_digit_invoice_reference_stored_everywhere
SELECT * FROM everywhere('INV 4111 1111 1111');
-- valid_isbn_stored_everywhere
SELECT * FROM everywhere('ISBN 978-3-16-148410-0');
-- valid_16_digit_number_failing_luhn_stored_everywhere
SELECT * FROM everywhere('4111 1111 1111 1112');
-- valid_long_identifier_stored_everywhere (one run of 20 digits is no card number)
SELECT * FROM everywhere('41111111111111111111');

-- card_number_as_a_jsonb_number_refused
SELECT attempt('SELECT billing.create_account(1, ''X'', metadata => ''{"pan": 4111111111111111}'')') AS jsonb_number,
       attempt('SELECT billing.create_account(1, ''X'', metadata => ''{"amount": 4111111111111112}'')') AS not_luhn;
-- card_number_in_invoice_prefix_refused (ASCII only there)
SELECT attempt('SELECT billing.create_billing_entity(''X'', ''USD'', invoice_prefix => ''4111.1111.1111.1111'')') AS dots,
       attempt('SELECT billing.create_billing_entity(''X'', ''USD'', invoice_prefix => ''INV-2026'')') AS valid;

-- refused_attempts_write_nothing
SELECT b.relname, b.n AS before, a.n AS after
FROM counts_before b
JOIN (SELECT c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM billing.%I', c.relname),
                                                               false, true, '')))[1]::text::bigint AS n
      FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE s.nspname = 'billing' AND c.relkind = 'r') a USING (relname)
WHERE a.n IS DISTINCT FROM b.n;

-- card_number_error_names_field_and_last_four_only: the message, detail and
-- hint a caller gets (never the number itself: it would reach the log)
SELECT billing.create_account(:entity, 'Alice', email => U&'alice+\FF14\FF11\FF11\FF11.1111.1111.1111@example.com');
SELECT billing.create_account(:entity, 'Alice', metadata => '{"cards": ["x", "5555 5555 5555 4444"]}');

-- card_number_guard_written_once: every constraint of billing that guards
-- text calls billing._no_card_number, and the one guard is the C function
SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
WHERE connamespace = 'billing'::regnamespace AND contype = 'c'
  AND pg_get_constraintdef(oid) ~ '_no_card_number'
ORDER BY 1::text;
SELECT p.oid::regprocedure AS guard, l.lanname, p.provolatile, p.proisstrict
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'billing'::regnamespace AND p.proname IN ('looks_like_card_number', '_no_card_number')
ORDER BY 1::text;

-- ---------------------------------------------------------------------------
-- Cash that never came in.

SELECT billing.create_account(:entity, 'Mallory') AS m \gset
SELECT billing.subscribe(:m, :price) AS m_sub \gset
SELECT invoice_id AS m_inv FROM billing.invoice WHERE account_id = :m \gset
CREATE VIEW money AS
SELECT (SELECT count(*) FROM billing.invoice) AS invoices, (SELECT count(*) FROM billing.ledger_entry) AS entries,
       (SELECT count(*) FROM billing.credit_note) AS credit_notes, (SELECT count(*) FROM billing.refund) AS refunds,
       (SELECT count(*) FROM billing.payment) AS payments,
       (SELECT count(*) FROM billing.payment_application) AS applications;
CREATE TABLE money_before AS SELECT * FROM money;

-- cash_refund_of_unpaid_invoice_then_void_refused_nothing_written: the
-- attack, a cash refund by credit note on an invoice nobody paid and then
-- its void, in one statement; it fails at the refund (55000) and no row of
-- invoice, ledger_entry, credit_note, refund, payment or
-- payment_application is written
SELECT billing.issue_credit_note(:m, :m_inv, '10.00 USD', method => 'refund') AS credit_note,
       billing.void_invoice(:m, :m_inv) AS voided;
SELECT m.invoices - b.invoices AS invoices, m.entries - b.entries AS entries, m.credit_notes - b.credit_notes AS credit_notes,
       m.refunds - b.refunds AS refunds, m.payments - b.payments AS payments, m.applications - b.applications AS applications
FROM money m, money_before b;
SELECT status, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :m_inv;
-- refund_of_credit_balance_money_refused: credit a credit note gave is no
-- cash either, even once an invoice consumed it (here the invoice itself:
-- the credit pays what the account owes at once, 4.00 of its 10.00)
SELECT billing.issue_credit_note(:m, :m_inv, '4.00 USD', method => 'credit_balance') IS NOT NULL AS credited;
SELECT status, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :m_inv;
SELECT source, amount FROM billing.payment_application WHERE account_id = :m ORDER BY application_id;
SELECT billing.issue_credit_note(:m, :m_inv, '0.01 USD', method => 'refund');
-- void_of_invoice_with_credit_note_refused
SELECT billing.void_invoice(:m, :m_inv);
SELECT method, amount FROM billing.credit_note WHERE account_id = :m ORDER BY credit_note_id;
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();

-- partial_refunds_up_to_what_was_received_accepted_one_cent_over_refused:
-- 7.00 paid on a 10.00 invoice; 5.00 and 2.00 refunded by credit notes,
-- then not one cent more, and no refund of the payment either
SELECT billing.create_account(:entity, 'Nina') AS n \gset
SELECT billing.subscribe(:n, :price) AS n_sub \gset
SELECT invoice_id AS n_inv FROM billing.invoice WHERE account_id = :n \gset
SELECT billing.apply_payment(:n, '7.00 USD', 'bank_transfer') AS n_pay \gset
SELECT billing.issue_credit_note(:n, :n_inv, '5.00 USD', method => 'refund') IS NOT NULL AS refunded_5;
SELECT billing.issue_credit_note(:n, :n_inv, '2.01 USD', method => 'refund');
SELECT billing.issue_credit_note(:n, :n_inv, '2.00 USD', method => 'refund') IS NOT NULL AS refunded_2;
SELECT billing.issue_credit_note(:n, :n_inv, '0.01 USD', method => 'refund');
SELECT billing.refund_payment(:n, :n_pay, '0.01 USD');
SELECT status, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :n_inv;
SELECT billing.void_invoice(:n, :n_inv);
-- void_of_invoice_with_payment_refunded_refused: nothing is paid on it any
-- more, but a payment was applied
SELECT billing.create_account(:entity, 'Omar') AS o \gset
SELECT billing.subscribe(:o, :price) AS o_sub \gset
SELECT invoice_id AS o_inv FROM billing.invoice WHERE account_id = :o \gset
SELECT billing.apply_payment(:o, '3.00 USD', 'cash') AS o_pay \gset
SELECT billing.refund_payment(:o, :o_pay) IS NOT NULL AS refunded_in_full;
SELECT status, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :o_inv;
SELECT billing.void_invoice(:o, :o_inv);
-- refund_payment_after_refund_credit_note_refused: the same cash is not
-- paid back twice, in either order
SELECT billing.create_account(:entity, 'Pia') AS pia \gset
SELECT billing.subscribe(:pia, :price) AS pia_sub \gset
SELECT invoice_id AS pia_inv FROM billing.invoice WHERE account_id = :pia \gset
SELECT billing.apply_payment(:pia, '10.00 USD', 'card', reference => 'tok_pia') AS pia_pay \gset
SELECT billing.issue_credit_note(:pia, :pia_inv, '10.00 USD', method => 'refund') IS NOT NULL AS credit_note_refund;
SELECT billing.refund_payment(:pia, :pia_pay);
SELECT sum(billing.to_numeric(e.amount)) AS cash FROM billing.ledger_entry e
WHERE e.account_id = :pia AND e.ledger_account = 'cash';
-- void_of_untouched_open_invoice_still_works
SELECT billing.create_account(:entity, 'Quinn') AS q \gset
SELECT billing.subscribe(:q, :price) AS q_sub \gset
SELECT invoice_id AS q_inv FROM billing.invoice WHERE account_id = :q \gset
SELECT billing.void_invoice(:q, :q_inv, 'billed by mistake');
SELECT status, amount_due, metadata FROM billing.invoice WHERE invoice_id = :q_inv;

-- ---------------------------------------------------------------------------
-- external_ref is unique per entity.

SELECT billing.create_billing_entity('Other GmbH', 'EUR') AS other \gset
-- same_external_ref_in_two_entities_accepted
SELECT billing.create_account(:entity, 'Crm A', external_ref => 'crm-42') IS NOT NULL AS first_entity,
       billing.create_account(:other, 'Crm B', external_ref => 'crm-42') IS NOT NULL AS second_entity;
-- duplicate_external_ref_within_entity_refused_23505
SELECT billing_test_error(format('SELECT billing.create_account(%s, %L, external_ref => %L)', :entity, 'Crm C', 'crm-42'));
SELECT billing_test_error(format('SELECT billing.update_account(%s, external_ref => %L)', :a, 'crm-42'));
SELECT billing_test_error(format('INSERT INTO billing.account (entity_id, name, currency, external_ref) VALUES (%s, %L, %L, %L)',
                                 :entity, 'Direct', 'USD', 'crm-42'));
SELECT count(*) AS accounts_with_crm_42, count(DISTINCT entity_id) AS entities FROM billing.account WHERE external_ref = 'crm-42';
-- an account may keep its own reference
SELECT billing.update_account(a.account_id, external_ref => 'crm-42', name => 'Crm A2')
FROM billing.account a WHERE a.entity_id = :entity AND a.external_ref = 'crm-42';

-- ---------------------------------------------------------------------------
-- Rounding is the entity's.

-- 0.125 a unit x 25 = 3.125: half_up 3.13, half_even 3.12 (floor 3.12,
-- ceiling 3.13); a 10% coupon and a 15% tax on what is left.
SELECT billing.create_billing_entity('Halfway', 'USD') AS he \gset
SELECT billing.create_billing_entity('Evenly', 'USD', rounding => 'half_even') AS ee \gset
SELECT billing.create_tax_rate('Sales', 15) AS st \gset
SELECT billing.create_product('Meter') AS mp \gset
SELECT billing.create_price(:mp, 'USD', 0.125, scheme => 'per_unit', tax_rate_id => :st) AS hp \gset
SELECT billing.create_coupon('TENPC', 'forever', percent_off => 10) AS cp \gset
CREATE FUNCTION bill_one(entity bigint, name text, price bigint) RETURNS TABLE (lines text, total billing.amount)
LANGUAGE plpgsql AS $$
DECLARE
    acc bigint;
BEGIN
    acc := billing.create_account(entity, name);
    PERFORM billing.subscribe(acc, price, quantity => 25, coupon => 'TENPC');
    RETURN QUERY
    SELECT string_agg(l.kind || ' ' || l.amount::text, ', ' ORDER BY l.invoice_line_id), i.total
    FROM billing.invoice i JOIN billing.invoice_line l USING (account_id, invoice_id)
    WHERE i.account_id = acc GROUP BY i.total;
END $$;
-- session_rounding_does_not_change_the_invoice: the same invoice under
-- every session mode, rounded by the entity's half_up
SELECT * FROM bill_one(:he, 'h1', :hp);
SET billing.rounding = 'floor';
SELECT * FROM bill_one(:he, 'h2', :hp);
SET billing.rounding = 'ceiling';
SELECT * FROM bill_one(:he, 'h3', :hp);
SET billing.rounding = 'half_up';
-- entity_rounding_mode_rounds_its_invoices: half_even makes 3.12 of the
-- 3.125 that half_up makes 3.13, whatever the session says
SELECT * FROM bill_one(:ee, 'e1', :hp);
SET billing.rounding = 'up';
SELECT * FROM bill_one(:ee, 'e2', :hp);
SET billing.rounding = 'half_up';
-- the preview is the invoice: the same lines, under any session mode
SELECT account_id AS h1 FROM billing.account WHERE name = 'h1' \gset
SELECT account_id AS e1 FROM billing.account WHERE name = 'e1' \gset
SET billing.rounding = 'ceiling';
SELECT a.name, string_agg(p.kind || ' ' || p.amount::text, ', ' ORDER BY p.line_no) AS next_invoice
FROM billing.account a CROSS JOIN LATERAL billing.preview_invoice(a.account_id) p
WHERE a.account_id IN (:h1, :e1) GROUP BY a.name ORDER BY a.name;
-- session_rounding_does_not_change_prorations: a change in mid-period (to
-- 13 units of a price of the same amount from Feb 8: 1.625 is 1.63 half_up,
-- 1.62 half_even; another price, so the old item is credited and the new
-- one charged) under a session set to ceiling
SELECT billing.create_price(:mp, 'USD', 0.125, scheme => 'per_unit', tax_rate_id => :st) AS hp2 \gset
SELECT billing.change_subscription(s.account_id, s.subscription_id, price_id => :hp2, quantity => 13,
                                   effective_date => '2026-02-08', proration => 'prorate_next') IS NOT NULL AS changed
FROM billing.subscription s WHERE s.account_id IN (:h1, :e1) ORDER BY s.account_id;
SELECT a.name, p.description, p.amount FROM billing.pending_item p JOIN billing.account a USING (account_id)
WHERE a.account_id IN (:h1, :e1) AND p.kind = 'proration' ORDER BY a.name, p.pending_item_id;
-- the ad-hoc form still follows the session (ceiling); the explicit mode does not
SELECT billing.prorate('3.13 USD', '[2026-02-01,2026-03-01)', '[2026-02-08,2026-03-01)') AS adhoc_ceiling,
       billing.prorate('3.13 USD', '[2026-02-01,2026-03-01)', '[2026-02-08,2026-03-01)', 'actual', 'half_up') AS half_up;
SET billing.rounding = 'half_up';
-- session_rounding_does_not_change_late_fees: 2.5% of what is due, under a
-- session set to ceiling
SELECT billing.create_dunning_policy('fees', '[{"day_offset": 1, "action": "late_fee", "name": "fee", "fee_percent": 2.5}]')
    IS NOT NULL AS policy;
SELECT billing.set_dunning_policy(a.account_id, 'fees') FROM billing.account a WHERE a.account_id IN (:h1, :e1);
SET billing.clock = '2026-04-01 12:00+00';
SET billing.rounding = 'ceiling';
CALL billing.run_dunning();
SET billing.rounding = 'half_up';
SELECT a.name, o.amount_due AS overdue, f.total AS late_fee
FROM billing.dunning_action x
JOIN billing.account a USING (account_id)
JOIN billing.invoice o ON o.account_id = x.account_id AND o.invoice_id = x.invoice_id
JOIN billing.invoice f ON f.account_id = x.account_id AND f.invoice_id = x.fee_invoice_id
WHERE a.account_id IN (:h1, :e1) ORDER BY a.name, o.invoice_id;
-- an entity's mode can be changed; a bad one is refused
SELECT billing.update_billing_entity(:he, rounding => 'half_even');
SELECT rounding FROM billing.billing_entity WHERE entity_id = :he;
SELECT billing_test_error(format('SELECT billing.update_billing_entity(%s, rounding => %L)', :he, 'bankers'));
SELECT billing_test_error(format('SELECT billing.create_billing_entity(%L, %L, rounding => %L)', 'X', 'USD', 'HALF_UP'));

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE stored_text_regress;
