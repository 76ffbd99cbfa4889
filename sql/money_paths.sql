--
-- The money paths as a business meets them: a credit invoice (a prorated
-- downgrade or cancellation) becomes account credit that settles what the
-- account owes, oldest due first, and what is left is consumed by later
-- invoices; nobody is dunned for money they do not owe.
--
-- A database of its own, so that ids do not depend on the tests before.
CREATE DATABASE money_paths_regress;
\c money_paths_regress
\i test/regress_own_database.sql
CREATE VIEW invoices AS
SELECT account_id, invoice_id, number, status, billing_reason, total, amount_paid, amount_due
FROM billing.invoice ORDER BY account_id, invoice_id;
CREATE VIEW credit AS
SELECT account_id, balance FROM billing.account_credit ORDER BY account_id;

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_account(:entity, 'Dora', payment_terms_days => 10) AS dora \gset
SELECT billing.create_account(:entity, 'Carl', payment_terms_days => 10) AS carl \gset
SELECT billing.create_product('Plan') AS product \gset
SELECT billing.create_price(:product, 'USD', 100.00) AS pro \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS basic \gset

-- Dora subscribes on Jan 1 and pays; the Feb 1 invoice stays unpaid.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.subscribe(:dora, :pro) AS dora_sub \gset
SELECT billing.apply_payment(:dora, '100.00 USD', 'bank_transfer', idempotency_key => 'd-1') IS NOT NULL AS paid;
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT * FROM invoices WHERE account_id = :dora;

-- credit_invoice_settles_open_invoice: on Feb 15 Dora downgrades at once.
-- The unused half of February's 100.00 (14 of 28 days) is credited, the
-- 10.00 plan charged for the same days: -50.00 + 5.00 = -45.00.  That
-- credit invoice is paid by handing 45.00 to the account's credit, which
-- pays the open February invoice at once: 55.00 is left due there, no
-- credit is left over, and nothing is negative or open with nothing due.
SET billing.clock = '2026-02-15 12:00+00';
SELECT billing.change_subscription(:dora, :dora_sub, price_id => :basic, proration => 'prorate_now') IS NOT NULL
    AS downgraded;
SELECT * FROM invoices WHERE account_id = :dora;
SELECT * FROM credit WHERE account_id = :dora;
SELECT source, amount FROM billing.payment_application WHERE account_id = :dora ORDER BY application_id;
SELECT t.kind, t.description, e.ledger_account, e.amount
FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id)
WHERE t.account_id = :dora AND t.posted_on >= '2026-02-15' ORDER BY t.txn_id, e.entry_id;
SELECT event_type, payload FROM billing.outbox WHERE account_id = :dora AND event_type = 'invoice.credited';
SELECT billing.account_balance(:dora) AS dora_owes;

-- credit_left_over_is_consumed_by_the_next_invoice: Carl pays for March in
-- advance, then cancels on Mar 11 with proration: 21 of 31 days unused,
-- 67.74 credited.  He owes nothing, so all of it is account credit; the
-- cycle's next invoice would be paid from it, but he has none.  He
-- resubscribes on Mar 20 to the basic plan: the 10.00 invoice is paid from
-- the credit, 57.74 is left.
SET billing.clock = '2026-03-01 12:00+00';
SELECT billing.subscribe(:carl, :pro) AS carl_sub \gset
SELECT billing.apply_payment(:carl, '100.00 USD', 'cash', idempotency_key => 'c-1') IS NOT NULL AS paid;
SET billing.clock = '2026-03-11 12:00+00';
SELECT billing.cancel_subscription(:carl, :carl_sub, at_period_end => false, prorate => true);
SELECT * FROM invoices WHERE account_id = :carl;
SELECT * FROM credit WHERE account_id = :carl;
SET billing.clock = '2026-03-20 12:00+00';
SELECT billing.subscribe(:carl, :basic) IS NOT NULL AS resubscribed;
SELECT * FROM invoices WHERE account_id = :carl;
SELECT * FROM credit WHERE account_id = :carl;

-- no_dunning_for_money_not_owed: dunning long after every due date reminds
-- Dora of the 55.00 she still owes on February's invoice, and nobody of
-- the credit invoices.
SELECT billing.create_dunning_policy('standard', is_default => true) IS NOT NULL AS policy;
SET billing.clock = '2026-03-25 12:00+00';
CALL billing.run_dunning();
SELECT a.account_id, i.number, i.total, i.amount_due, a.action
FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
ORDER BY a.account_id, i.invoice_id, a.action;
SELECT count(*) AS actions_on_credit_invoices
FROM billing.dunning_action a JOIN billing.invoice i USING (account_id, invoice_id)
WHERE billing.to_numeric(i.total) <= 0;

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE money_paths_regress;
