--
-- Refunds, chargebacks, credit notes, voids and write-offs, with
-- invariant 5 checked after each step.
--
CREATE DATABASE payments_adj_regress;
\c payments_adj_regress
\i test/regress_own_database.sql
-- the state that invariant 5 relates, and the broken invariants (none)
CREATE FUNCTION state(acct bigint) RETURNS TABLE (invoices text, credit text, balance text, broken bigint)
LANGUAGE sql AS $$
    SELECT (SELECT string_agg(format('%s:%s paid %s due %s', invoice_id, status, amount_paid, amount_due), ', '
                              ORDER BY invoice_id) FROM billing.invoice WHERE account_id = acct),
           (SELECT balance::text FROM billing.account_credit WHERE account_id = acct),
           billing.account_balance(acct)::text,
           (SELECT count(*) FROM billing.check_invariants())
$$;
CREATE VIEW ledger AS
SELECT t.txn_id, t.kind, e.ledger_account, e.amount
FROM billing.ledger_entry e JOIN billing.ledger_transaction t USING (account_id, txn_id)
ORDER BY t.txn_id, e.entry_id;

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_account(:entity, 'Alice') AS a \gset
SELECT billing.create_tax_rate('VAT', 20) AS vat \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 10.00, tax_rate_id => :vat) AS price \gset
SELECT billing.subscribe(:a, :price) IS NOT NULL AS subscribed;
SELECT invoice_id AS inv1 FROM billing.invoice WHERE account_id = :a \gset

-- 20.00 pays the 12.00 invoice, 8.00 becomes credit.
SELECT billing.apply_payment(:a, '20.00 USD', 'card', reference => 'tok_1') AS p1 \gset
SELECT * FROM state(:a);
-- A partial refund comes out of what the payment left unapplied.
SELECT billing.refund_payment(:a, :p1, '5.00 USD', reason => 'goodwill', idempotency_key => 'r1') AS r1 \gset
SELECT * FROM state(:a);
SELECT billing.refund_payment(:a, :p1, '5.00 USD', reason => 'goodwill', idempotency_key => 'r1') = :r1 AS same_refund;
SELECT billing_test_error(format('SELECT billing.refund_payment(%s, %s, ''4.00 USD'', reason => ''goodwill'', idempotency_key => ''r1'')', :a, :p1));
-- The rest (15.00): 3.00 of credit, then 12.00 reopens the invoice.
SELECT billing.refund_payment(:a, :p1) IS NOT NULL AS refunded;
SELECT * FROM state(:a);
SELECT payment_id, status, amount_refunded FROM billing.payment;
SELECT kind, amount, from_credit FROM billing.refund ORDER BY refund_id;
SELECT * FROM ledger WHERE kind = 'refund';
-- Nothing is left to refund.
SELECT billing_test_error(format('SELECT billing.refund_payment(%s, %s)', :a, :p1));

-- Credit notes on the reopened invoice (12.00 = 10.00 + 2.00 VAT):
-- 6.00 reduces what is due (5.00 net, 1.00 tax), 3.00 goes to the credit
-- balance, which pays 3.00 of what the invoice still owes at once (credit
-- settles what is owed, oldest due first); 3.00 cannot be refunded
-- (55000): the payment's 12.00 was refunded already, so no cash is left on
-- the invoice to pay back.
SELECT billing.issue_credit_note(:a, :inv1, '6.00 USD', reason => 'outage') IS NOT NULL AS credited;
SELECT * FROM state(:a);
SELECT billing.issue_credit_note(:a, :inv1, '3.00 USD', method => 'credit_balance') IS NOT NULL AS credited;
SELECT * FROM state(:a);
SELECT billing.issue_credit_note(:a, :inv1, '3.00 USD', method => 'refund') IS NOT NULL AS credited;
SELECT * FROM state(:a);
SELECT amount, tax, method FROM billing.credit_note ORDER BY credit_note_id;
SELECT * FROM ledger WHERE kind = 'credit_note';
SELECT billing_test_error(format('SELECT billing.issue_credit_note(%s, %s, ''0.01 USD'', method => ''refund'')', :a, :inv1));

-- Writing off what is still due (3.00).  Then a 3.00 payment with nothing
-- open is the account's credit.
SELECT billing.write_off_invoice(:a, :inv1, 'customer gone');
SELECT * FROM state(:a);
SELECT * FROM ledger WHERE kind = 'write_off';
SELECT billing.apply_payment(:a, '3.00 USD', 'cash', reference => 'advance') IS NOT NULL AS paid_ahead;
SELECT * FROM state(:a);

-- February: the new invoice takes the 3.00 credit; it cannot be voided.
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT invoice_id AS inv2 FROM billing.invoice WHERE account_id = :a ORDER BY invoice_id DESC LIMIT 1 \gset
SELECT * FROM state(:a);
SELECT billing_test_error(format('SELECT billing.void_invoice(%s, %s)', :a, :inv2));
-- 9.00 pays it; a chargeback of that payment reopens it.
SELECT billing.apply_payment(:a, '9.00 USD', 'card', reference => 'tok_2') AS p2 \gset
SELECT * FROM state(:a);
SELECT billing.record_chargeback(:a, :p2, reason => 'fraud claim') IS NOT NULL AS charged_back;
SELECT * FROM state(:a);
SELECT status, amount_refunded FROM billing.payment WHERE payment_id = :p2;
SELECT * FROM ledger WHERE kind = 'chargeback';
SELECT billing_test_error(format('SELECT billing.record_chargeback(%s, %s)', :a, :p2));
SELECT billing_test_error(format('SELECT billing.refund_payment(%s, %s)', :a, :p2));

-- March: an invoice with nothing paid is voided, its posting reversed.
SET billing.clock = '2026-03-01 12:00+00';
CALL billing.run_cycle();
SELECT invoice_id AS inv3 FROM billing.invoice WHERE account_id = :a ORDER BY invoice_id DESC LIMIT 1 \gset
SELECT billing.void_invoice(:a, :inv3, 'billed by mistake');
SELECT * FROM state(:a);
SELECT * FROM ledger WHERE kind = 'void';

-- Bad inputs and wrong states: SQLSTATE and message, nothing written.
SELECT count(*) AS transactions_before FROM billing.ledger_transaction;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    (format('SELECT billing.void_invoice(%s, %s)', :a, :inv3)),
    (format('SELECT billing.write_off_invoice(%s, %s)', :a, :inv3)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''1.00 USD'')', :a, :inv3)),
    (format('SELECT billing.write_off_invoice(%s, %s)', :a, :inv1)),
    (format('SELECT billing.void_invoice(%s, 999999)', :a)),
    (format('SELECT billing.write_off_invoice(%s, NULL)', :a)),
    ('SELECT billing.void_invoice(999999, 1)'),
    (format('SELECT billing.refund_payment(%s, 999999)', :a)),
    ('SELECT billing.refund_payment(999999, 1)'),
    (format('SELECT billing.issue_credit_note(%s, %s, ''1.00 USD'', method => ''cash'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''1.00 EUR'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''0.00 USD'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''-1.00 USD'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, NULL)', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''12.01 USD'', method => ''credit_balance'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''9.01 USD'')', :a, :inv2)),
    (format('SELECT billing.issue_credit_note(%s, %s, ''1.00 USD'', reason => ''card 4111111111111111'')', :a, :inv2))
) t(q);
SELECT count(*) AS transactions_after FROM billing.ledger_transaction;

-- Largest refund: the whole of the largest payment, back out of credit.
SELECT billing.create_account(:entity, 'Whale') AS whale \gset
SELECT billing.apply_payment(:whale, '1000000000000.00 USD', 'bank_transfer') AS pw \gset
SELECT billing_test_error(format('SELECT billing.refund_payment(%s, %s, ''1000000000000.00 EUR'')', :whale, :pw));
SELECT billing.refund_payment(:whale, :pw) IS NOT NULL AS refunded;
SELECT * FROM state(:whale);

SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE payments_adj_regress;
