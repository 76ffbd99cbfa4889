\echo
\echo '== 7. The finance reports (views over the same tables: nothing is precomputed)'
\echo '   Receivables aging: what open invoices still ask for, by days past due. Anna''s March'
\echo '   invoice is due today (current); Eve owes her February invoice (28 days late) and two late fees:'
SELECT account_name AS customer, currency, current, days_1_30, days_31_60, days_61_90, days_over_90, total_due
FROM ar_aging ORDER BY account_id;
\echo '   MRR (monthly recurring revenue) and its movements by month. Yearly plans count 1/12 a month,'
\echo '   coupons are netted, usage is not recurring; a month counts its last day, so Anna''s upgrade in'
\echo '   her first month is new MRR at Pro. Dario''s coupon ends in March (expansion); USD: Eve churns'
\echo '   when suspended, Bob contracts (downgrade):'
SELECT currency, month, mrr, new, expansion, contraction, churn, reactivation, customers, arr
FROM mrr_by_month ORDER BY currency, month;
\echo '   The same movements per customer:'
SELECT m.currency, m.month, a.name AS customer, m.movement, m.mrr_before, m.mrr_after, m.change
FROM mrr_movements m JOIN account a USING (account_id) ORDER BY m.currency, m.month, a.name;
\echo '   Revenue by month: invoiced (tax included), the net revenue, what was collected, credited and'
\echo '   refunded in the month, what the month''s invoices still ask for, and what was written off:'
SELECT currency, month, invoices, invoiced, tax, net_invoiced, collected, credited, refunded, outstanding, written_off
FROM revenue_by_month ORDER BY currency, month;
\echo '   Days sales outstanding over the last 90 days: receivable / invoiced x 90 days (how many days'
\echo '   of sales are waiting to be paid):'
SELECT currency, window_days, receivable, invoiced, dso_days FROM days_sales_outstanding ORDER BY currency;
\echo '   The dunning funnel: how many invoices reached each step (were unpaid on its day), and how'
\echo '   many were paid after it (recovered). Only the steps some invoice reached are shown:'
SELECT currency, day_offset, step, invoices, amount_due, recovered, recovered_amount, recovery_rate, still_open, written_off
FROM dunning_funnel WHERE invoices > 0 ORDER BY currency, day_offset;
\echo '   The finance dashboard of the seller: one HTML page with SVG charts of these figures (MRR,'
\echo '   invoiced and collected, aging, DSO, the funnel), no script; its size and its charts:'
SELECT length(page) AS html_characters,
       (SELECT count(*) FROM regexp_matches(page, '<svg ', 'g')) AS charts,
       (regexp_match(page, 'MRR<b>([^<]*)</b>'))[1] AS mrr_shown
FROM (SELECT dashboard_html(:acme, 'EUR', 3) AS page) d;
SELECT dashboard_html(:acme, 'EUR', 3) \g (format=unaligned tuples_only) /tmp/billing-demo-dashboard.html
\echo '   (the page itself: /tmp/billing-demo-dashboard.html, for a browser)'
\echo '   What the cycle will bill in the next 7 days, computed as preview_invoice computes it (Anna''s'
\echo '   March calls are not reported yet; Eve, suspended, is not billed):'
SELECT a.name AS customer, u.bill_date, u.currency, u.subtotal, u.discount, u.tax, u.total
FROM upcoming_invoices u JOIN account a USING (account_id) ORDER BY u.bill_date, a.name;
