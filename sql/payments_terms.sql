--
-- Early-payment discounts and installment plans.
--
CREATE DATABASE payments_terms_regress;
\c payments_terms_regress
\i test/regress_own_database.sql

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_account(:entity, 'Alice') AS a \gset
SELECT billing.create_account(:entity, 'Bob') AS b \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 100.01) AS price \gset

-- 2% within 10 days: 2% of 100.01 = 2.0002, rounded once to 2.00; paying
-- 98.01 on day 5 settles the invoice.
SELECT billing.set_early_payment_discount(:a, 2, 10);
SELECT billing.subscribe(:a, :price) IS NOT NULL AS subscribed;
SELECT billing.apply_payment(:a, '98.01 USD', 'bank_transfer', received_on => '2026-01-06') IS NOT NULL AS paid;
SELECT invoice_id, status, total, amount_paid, amount_due FROM billing.invoice WHERE account_id = :a;
SELECT source, amount FROM billing.payment_application ORDER BY application_id;
SELECT t.kind, e.ledger_account, e.amount FROM billing.ledger_entry e JOIN billing.ledger_transaction t USING (account_id, txn_id)
WHERE t.kind IN ('payment', 'early_payment_discount') ORDER BY e.entry_id;
-- Next month: a partial payment in the window gets no discount; paying the
-- rest after the window gets none either.
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT billing.apply_payment(:a, '50.00 USD', 'bank_transfer', received_on => '2026-02-03') IS NOT NULL AS paid;
SELECT billing.apply_payment(:a, '50.01 USD', 'bank_transfer', received_on => '2026-02-20') IS NOT NULL AS paid;
SELECT invoice_id, status, total, amount_paid, amount_due FROM billing.invoice WHERE account_id = :a ORDER BY 1;
SELECT count(*) AS discounts FROM billing.payment_application WHERE source = 'discount';
-- The last day of the window counts (issue date + 10); an overpayment in it
-- gets the discount and the rest becomes credit.
SET billing.clock = '2026-03-01 12:00+00';
CALL billing.run_cycle();
SELECT billing.apply_payment(:a, '100.01 USD', 'bank_transfer', received_on => '2026-03-11') IS NOT NULL AS paid;
SELECT invoice_id, status, amount_paid, amount_due FROM billing.invoice WHERE account_id = :a ORDER BY 1 DESC LIMIT 1;
SELECT balance FROM billing.account_credit WHERE account_id = :a;
-- Removing the terms.
SELECT billing.set_early_payment_discount(:a, NULL, NULL);
SELECT count(*) AS terms FROM billing.early_payment_terms;

-- An installment plan: 100.01 in 3 parts sums exactly: 33.34 + 33.34 + 33.33.
SELECT billing.subscribe(:b, :price) IS NOT NULL AS subscribed;
SELECT invoice_id AS binv FROM billing.invoice WHERE account_id = :b \gset
SELECT * FROM billing.create_installment_plan(:b, :binv, 3);
SELECT billing.sum(amount) FROM billing.installment WHERE invoice_id = :binv;
-- 40.00 covers the first installment and 6.66 of the second.
SELECT billing.apply_payment(:b, '40.00 USD', 'cash') IS NOT NULL AS paid;
SELECT installment_no, due_date, amount, paid, remaining FROM billing.installment_status WHERE invoice_id = :binv;
-- Weekly, from a given date; the smallest amount that splits.
SELECT billing.create_price(:product, 'USD', 0.03) AS tiny \gset
SELECT billing.create_account(:entity, 'Carl') AS c \gset
SELECT billing.subscribe(:c, :tiny) IS NOT NULL AS subscribed;
SELECT invoice_id AS cinv FROM billing.invoice WHERE account_id = :c \gset
SELECT * FROM billing.create_installment_plan(:c, :cinv, 3, every => '1 week', first_due => '2026-03-02');

-- A payment goes to what is due soonest by the schedule.  Ivan's January
-- invoice (100.01, issued 2026-01-05, due 02-04) is split into 33.34 on
-- 02-04, 33.34 on 04-04 and 33.33 on 06-04; he pays the first.  His
-- February invoice (100.01, issued 02-05) is due 03-07, before the
-- January invoice's next installment: 100.01 paid on 03-01 settles the
-- February invoice, and the January one still has 66.67 due from 04-04 on.
SET billing.clock = '2026-01-05 12:00+00';
SELECT billing.create_account(:entity, 'Ivan') AS ivan \gset
SELECT billing.subscribe(:ivan, :price) AS ivan_sub \gset
SELECT invoice_id AS ivan_jan FROM billing.invoice WHERE account_id = :ivan \gset
SELECT * FROM billing.create_installment_plan(:ivan, :ivan_jan, 3, every => '2 months');
SET billing.clock = '2026-02-01 12:00+00';
SELECT billing.apply_payment(:ivan, '33.34 USD', 'bank_transfer') IS NOT NULL AS paid;
SET billing.clock = '2026-02-05 12:00+00';
CALL billing.run_cycle();
SET billing.clock = '2026-03-01 12:00+00';
SELECT billing.apply_payment(:ivan, '100.01 USD', 'bank_transfer') IS NOT NULL AS paid;
SELECT issue_date, due_date, status, amount_due FROM billing.invoice WHERE account_id = :ivan ORDER BY invoice_id;
SELECT installment_no, due_date, paid, remaining FROM billing.installment_status WHERE invoice_id = :ivan_jan;
-- Named invoices are paid in the order named, whatever their schedule.
SET billing.clock = '2026-03-05 12:00+00';
CALL billing.run_cycle();
SELECT billing.apply_payment(:ivan, '10.00 USD', 'bank_transfer',
                             invoice_ids => ARRAY[:ivan_jan]) IS NOT NULL AS paid;
SELECT installment_no, paid, remaining FROM billing.installment_status WHERE invoice_id = :ivan_jan;
RESET billing.clock;

-- Bad inputs: SQLSTATE and message.
SELECT q, billing_test_error(q) AS error FROM (VALUES
    (format('SELECT billing.set_early_payment_discount(%s, 0, 10)', :a)),
    (format('SELECT billing.set_early_payment_discount(%s, 100, 10)', :a)),
    (format('SELECT billing.set_early_payment_discount(%s, -2, 10)', :a)),
    (format('SELECT billing.set_early_payment_discount(%s, 2, -1)', :a)),
    (format('SELECT billing.set_early_payment_discount(%s, 2, NULL)', :a)),
    ('SELECT billing.set_early_payment_discount(999999, 2, 10)'),
    (format('SELECT billing.create_installment_plan(%s, %s, 3)', :b, :binv)),
    (format('SELECT billing.create_installment_plan(%s, %s, 1)', :c, :cinv)),
    (format('SELECT billing.create_installment_plan(%s, %s, 121)', :c, :cinv)),
    (format('SELECT billing.create_installment_plan(%s, %s, NULL)', :c, :cinv)),
    (format('SELECT billing.create_installment_plan(%s, %s, 2, every => ''0 days'')', :c, :cinv)),
    (format('SELECT billing.create_installment_plan(%s, %s, 2, every => ''-1 month'')', :c, :cinv)),
    (format('SELECT billing.create_installment_plan(%s, 999999, 2)', :c)),
    (format('SELECT billing.create_installment_plan(%s, %s, 2)', :a, (SELECT min(invoice_id) FROM billing.invoice WHERE account_id = :a))),
    ('SELECT billing.create_installment_plan(999999, 1, 2)')
) t(q);
SELECT billing.create_account(:entity, 'Dora') AS d \gset
SELECT billing.subscribe(:d, :tiny) IS NOT NULL AS subscribed;
SELECT billing_test_error(format('SELECT billing.create_installment_plan(%s, %s, 4)', :d,
                                 (SELECT invoice_id FROM billing.invoice WHERE account_id = :d)));

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE payments_terms_regress;
