\echo
\echo '== 5. March: the downgrade takes effect, a write-off, the quarter ends'
CALL demo.days_until('2026-03-01');
\echo '   March 1: Bob is billed Starter now; Dario''s coupon has run out; Eve, suspended, is not billed:'
SELECT number, customer, issue_date, due_date, subtotal, discount, tax, total
FROM demo.invoices WHERE issue_date = '2026-03-01' ORDER BY number;
\echo '   Bob''s plan changed today, and what he may use with it:'
SELECT * FROM demo.access WHERE customer = 'Bob Jones';
CALL demo.days_until('2026-03-10');
SELECT apply_payment(:bob, '19.00 USD', 'card', reference => 'ch_1003') IS NOT NULL AS bob_paid \gset
CALL demo.days_until('2026-03-25');
SELECT apply_payment(:dario, (SELECT amount_due FROM invoice WHERE account_id = :dario AND status = 'open'),
                     'bank_transfer', reference => 'SEPA-IT-78') IS NOT NULL AS dario_paid \gset
CALL demo.days_until('2026-03-26');
SELECT apply_payment(:chie, '24000 JPY', 'bank_transfer', reference => 'furikomi-03') IS NOT NULL AS chie_paid \gset
CALL demo.days_until('2026-03-31');
\echo '   Everything dunning did this quarter, one row per step (each is taken once per invoice).'
\echo '   Eve''s January invoice was written off 30 days past due (March 2); Anna got a friendly'
\echo '   reminder 3 days before her March invoice is due. Chie, who paid each installment on'
\echo '   time, was never reminded:'
SELECT a.name AS customer, i.number, i.due_date, x.taken_on, s.name AS step, x.outcome, x.amount_due
FROM dunning_action x JOIN dunning_step s USING (step_id) JOIN invoice i USING (account_id, invoice_id)
JOIN account a USING (account_id) ORDER BY a.name, i.number, x.taken_on;
\echo '   All invoices of the quarter on March 31 (uncollectible: written off; amount_due: still owed):'
SELECT number, customer, reason, issue_date, total, status, amount_due FROM demo.invoices ORDER BY number;
