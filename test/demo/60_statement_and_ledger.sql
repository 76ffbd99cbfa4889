\echo
\echo '== 6. March 31: balances, a statement, the ledger'
\echo '   What each customer owes (positive) or has in credit (negative). overdue is the part past its'
\echo '   due date: Eve''s February invoice and her first late fee (her January invoice was written off):'
SELECT account_name AS customer, currency, open_due, overdue, unapplied_credit, balance
FROM account_balances ORDER BY account_id;
\echo '   Dario''s statement for the quarter: every movement of what he owes, with the running balance'
\echo '   (the late fee came and was paid; refunding it in cash later did not change what he owes):'
SELECT posted_on, kind, description, amount, balance
FROM account_statement(:dario, '2026-01-01', '2026-03-31') ORDER BY line_no;
\echo '   Every movement is posted to a double-entry ledger. Its trial balance per currency: the debits'
\echo '   and credits of each ledger account and its balance (debit positive); each currency sums to zero.'
\echo '   revenue is net of coupons and before tax; discounts holds the credit notes; bad_debt Eve''s write-off:'
SELECT e.currency, coalesce(e.ledger_account, 'total') AS ledger_account, la.type,
       coalesce(sum(e.n) FILTER (WHERE e.n > 0), 0) AS debit,
       coalesce(sum(-e.n) FILTER (WHERE e.n < 0), 0) AS credit, sum(e.n) AS balance
FROM (SELECT ledger_account, currency(amount) AS currency, to_numeric(amount) AS n FROM ledger_entry) e
JOIN ledger_account la ON la.code = e.ledger_account
GROUP BY GROUPING SETS ((e.currency, e.ledger_account, la.type), (e.currency))
ORDER BY e.currency, e.ledger_account NULLS LAST;
SELECT count(*) AS invariant_violations FROM check_invariants();
