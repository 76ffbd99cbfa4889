--
-- Reporting views over a fixed data set whose figures are worked
-- out by hand in the comments: aging, balances and statements, MRR and its
-- movements, cohorts, revenue by month, DSO, upcoming invoices.
--
-- A database of its own, so that ids do not depend on the tests before.
CREATE DATABASE reports_regress;
\c reports_regress
\i test/regress_own_database.sql

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_product('Basic') AS basic \gset
SELECT billing.create_product('Pro') AS pro \gset
SELECT billing.create_price(:basic, 'USD', 10.00) AS basic_usd \gset
SELECT billing.create_price(:basic, 'EUR', 20.00) AS basic_eur \gset
SELECT billing.create_price(:pro, 'USD', 25.00) AS pro_usd \gset
SELECT billing.create_price(:pro, 'USD', 120.00, cadence => '1 year') AS pro_yearly \gset
SELECT billing.create_price(:basic, 'USD', 10.00, scheme => 'per_unit') AS seat \gset
SELECT billing.create_price(:basic, 'USD', 7.00, cadence => '1 week') AS weekly \gset
SELECT billing.create_price(:basic, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered') AS api \gset
SELECT billing.create_coupon('SAVE25', 'forever', percent_off => 25) IS NOT NULL AS coupon;

-- The monthly factor of a cadence: 365 / (365 x months + 12 x days).
SELECT c, billing.monthly_factor(c::interval) AS factor
FROM unnest(ARRAY['1 month', '3 months', '1 year', '1 week', '2 weeks', '1 day']) c;

-- 2025-10-01: Gus (UTC) subscribes to Basic (10.00/month) and cancels at
-- the end of the period (2025-11-01).  His invoice, due 2025-10-31, is
-- never paid.
SET billing.clock = '2025-10-01 12:00+00';
SELECT billing.create_account(:entity, 'Gus') AS gus \gset
SELECT billing.subscribe(:gus, :basic_usd) AS gus_sub \gset
SELECT billing.cancel_subscription(:gus, :gus_sub);

-- 2026-01-01: five more customers.
--   Alice (UTC, 30 days): Basic 10.00/month, plus a metered API price (usage
--     is not MRR).
--   Bob (America/New_York, 10 days): Pro yearly 120.00: MRR 120 / 12 = 10.00.
--   Carla (Europe/Berlin, EUR): Basic EUR 20.00 with SAVE25 forever:
--     MRR 20.00 - 5.00 = 15.00 EUR; her invoices are 15.00 EUR.
--   Dan (UTC): 3 seats at 10.00: 30.00/month.
--   Eve (UTC): 7.00 a week: MRR 7 x 365 / 84 = 30.41666.. -> 30.42.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.create_account(:entity, 'Alice') AS alice \gset
SELECT billing.create_account(:entity, 'Bob', timezone => 'America/New_York', payment_terms_days => 10) AS bob \gset
SELECT billing.create_account(:entity, 'Carla', currency => 'EUR', timezone => 'Europe/Berlin') AS carla \gset
SELECT billing.create_account(:entity, 'Dan') AS dan \gset
SELECT billing.create_account(:entity, 'Eve') AS eve \gset
SELECT billing.subscribe(:alice, items => format('[{"price_id": %s}, {"price_id": %s}]', :basic_usd, :api)::jsonb)
    AS alice_sub \gset
SELECT subscription_item_id AS alice_basic FROM billing.subscription_item
WHERE account_id = :alice AND price_id = :basic_usd \gset
SELECT billing.subscribe(:bob, :pro_yearly) AS bob_sub \gset
SELECT billing.subscribe(:carla, :basic_eur, coupon => 'SAVE25') AS carla_sub \gset
SELECT billing.subscribe(:dan, :seat, quantity => 3) AS dan_sub \gset
SELECT billing.subscribe(:eve, :weekly) AS eve_sub \gset

-- 2026-01-20: Fay (UTC) subscribes with a 14-day trial: paid from
-- 2026-02-03.  Alice moves to Pro (25.00) from her next period (02-01);
-- Dan cancels at the end of his period (02-01).  Payments: Alice 10.00,
-- Bob 120.00.
SET billing.clock = '2026-01-20 12:00+00';
SELECT billing.create_account(:entity, 'Fay') AS fay \gset
SELECT billing.subscribe(:fay, :basic_usd, trial_days => 14) AS fay_sub \gset
SELECT billing.change_subscription(:alice, :alice_sub, :pro_usd, proration => 'at_period_end',
                                   subscription_item_id => :alice_basic) IS NOT NULL AS changed;
SELECT billing.cancel_subscription(:dan, :dan_sub);
SELECT billing.apply_payment(:alice, '10.00 USD', 'card', idempotency_key => 'a1') IS NOT NULL AS paid;
SELECT billing.apply_payment(:bob, '120.00 USD', 'card', idempotency_key => 'b1', received_on => '2026-01-05') AS bob_payment \gset

-- 2026-02-01 and 2026-02-03: the cycle.  Alice 25.00 (Pro), Carla 15.00 EUR,
-- Eve four weeks (01-08, 01-15, 01-22, 01-29) at 7.00, Dan's and Gus's
-- cancellations take effect; on 02-03 Fay's first period, 10.00.
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SET billing.clock = '2026-02-03 12:00+00';
CALL billing.run_cycle();
-- Eve pays 35.00 (her five invoices); Carla 15.00 EUR (January).
SET billing.clock = '2026-02-10 12:00+00';
SELECT billing.apply_payment(:eve, '35.00 USD', 'bank_transfer', idempotency_key => 'e1') IS NOT NULL AS paid;
SELECT billing.apply_payment(:carla, '15.00 EUR', 'card', idempotency_key => 'c1') IS NOT NULL AS paid;

-- 2026-03-10: a credit note of 5.00 on Alice's February invoice (reduce
-- due: 20.00 left); 2026-03-12: 20.00 of Bob's payment refunded, which
-- reopens his invoice for 20.00.
SET billing.clock = '2026-03-10 12:00+00';
SELECT billing.issue_credit_note(:alice, invoice_id, '5.00 USD') IS NOT NULL AS credited
FROM billing.invoice WHERE account_id = :alice AND issue_date = '2026-02-01';
SET billing.clock = '2026-03-12 12:00+00';
SELECT billing.refund_payment(:bob, :bob_payment, '20.00 USD') IS NOT NULL AS refunded;

-- 2026-03-15: the cycle (Alice 03-01 25.00, Carla 03-01 15.00 EUR, Fay 03-03
-- 10.00, Eve six weeks 02-05 .. 03-12 at 7.00); Dan comes back (30.00,
-- invoiced at once); Carla cancels now (no final invoice: nothing to bill).
SET billing.clock = '2026-03-15 12:00+00';
CALL billing.run_cycle();
SELECT billing.subscribe(:dan, :seat, quantity => 3) AS dan_sub2 \gset
SELECT billing.cancel_subscription(:carla, :carla_sub, at_period_end => false);

-- Every invoice so far.
SELECT a.name, i.issue_date, i.due_date, i.status, i.total, i.amount_due
FROM billing.invoice i JOIN billing.account a USING (account_id)
ORDER BY a.name, i.issue_date, i.invoice_id;

-- Aging as of 2026-03-15 (open invoices; days past due = 03-15 - due date;
-- the invoices issued on 03-15 are due on 04-14, current):
--   Alice: Feb 25.00 - 5.00 credit = 20.00, due 03-03 (12 days: 1-30);
--          Mar 25.00 (current)                               total 45.00
--   Bob:   Jan 120.00, 20.00 due again after the refund, due 01-11
--          (63 days: 61-90)                                  total 20.00
--   Carla: Feb 15.00 EUR due 03-03 (12: 1-30); Mar 15.00 EUR current 30.00
--   Dan:   Jan 30.00 due 01-31 (43: 31-60); Mar 30.00 current    60.00
--   Eve:   Mar six x 7.00 = 42.00 (current)                  total 42.00
--   Fay:   Feb 10.00 due 03-05 (10: 1-30); Mar 10.00 current    20.00
--   Gus:   Oct 10.00 due 2025-10-31 (135 days: over 90)      total 10.00
SELECT account_name, currency, as_of, current, days_1_30, days_31_60, days_61_90, days_over_90, total_due,
       open_invoices, oldest_due_date
FROM billing.ar_aging ORDER BY account_name;
-- Per currency, the way a dashboard sums it:
--   USD current 25 + 30 + 42 + 10 = 107.00; 1-30 20 + 10 = 30.00; 31-60 30.00;
--   61-90 20.00; over 90 10.00; total 197.00.  EUR 15.00 + 15.00 = 30.00.
-- (the money columns are numeric in the row's currency: plain sum adds them)
SELECT currency, sum(current) AS current, sum(days_1_30) AS days_1_30,
       sum(days_31_60) AS days_31_60, sum(days_61_90) AS days_61_90,
       sum(days_over_90) AS days_over_90, sum(total_due) AS total_due
FROM billing.ar_aging GROUP BY currency ORDER BY currency;
-- Time zones: at 03:00 UTC it is still 03-14 in New York, so Bob's invoice
-- is 62 days past due there; everyone else is on 03-15.
SET billing.clock = '2026-03-15 03:00+00';
SELECT account_name, as_of, oldest_due_date, as_of - oldest_due_date AS days_past_due
FROM billing.ar_aging WHERE account_name IN ('Bob', 'Fay') ORDER BY account_name;
SET billing.clock = '2026-03-15 12:00+00';

-- Balances: open due - unapplied credit.  Nobody has credit: Eve paid
-- exactly, Bob's refund came out of what had paid his invoice.  overdue =
-- open due past its due date: Alice 20, Bob 20, Carla 15, Dan 30, Fay 10,
-- Gus 10.  The balance is the ledger's (billing.account_balance), for every
-- account.
SELECT account_name, currency, open_due, overdue, unapplied_credit, balance, open_invoices, oldest_due_date,
       balance = billing.to_numeric(billing.account_balance(account_id)) AS equals_ledger
FROM billing.account_balances ORDER BY account_name;

-- Alice's statement, every movement with the running balance:
--   01-01 invoice 10.00 -> 10.00; 01-20 payment -10.00 -> 0.00;
--   02-01 invoice 25.00 -> 25.00; 03-10 credit note -5.00 -> 20.00;
--   03-15 invoice 25.00 -> 45.00 (the March period, billed by the cycle of
--   03-15 and posted on its issue date).
SELECT posted_on, kind, description, amount, balance
FROM billing.account_statements WHERE account_id = :alice ORDER BY posted_on, txn_id;
-- A filter on dates keeps the balances of the whole history.
SELECT posted_on, kind, amount, balance
FROM billing.account_statements WHERE account_id = :alice AND posted_on >= '2026-03-01' ORDER BY posted_on, txn_id;
-- Its last balance is the account's balance.
SELECT (SELECT balance FROM billing.account_statements WHERE account_id = :bob ORDER BY posted_on DESC, txn_id DESC LIMIT 1)
       = billing.to_numeric(billing.account_balance(:bob)) AS bob_statement_ends_at_balance;

-- MRR movements (month of the change, in the account's calendar):
--   2025-10 Gus new 10.00; 2025-11 Gus churn -10.00 (canceled 11-01);
--   2026-01 Alice new 10.00, Bob new 10.00, Carla new 15.00 EUR, Dan new
--     30.00, Eve new 30.42;
--   2026-02 Alice expansion +15.00 (10.00 -> 25.00 on 02-01), Dan churn
--     -30.00 (02-01), Fay new 10.00 (02-03, after her trial);
--   2026-03 Dan reactivation +30.00 (03-15), Carla churn -15.00 EUR (03-15).
SELECT a.name, m.currency, m.month, m.mrr_before, m.mrr_after, m.change, m.movement
FROM billing.mrr_movements m JOIN billing.account a USING (account_id)
ORDER BY m.month, a.name;

-- MRR by month, USD: 2025-10 10.00 (1 customer); 2025-11 and 2025-12 0;
--   2026-01 new 10 + 10 + 30 + 30.42 = 80.42 (4); 2026-02 80.42 + 15 - 30 + 10
--   = 75.42 (4: Alice, Bob, Eve, Fay); 2026-03 + 30 = 105.42 (5).
-- EUR: 2026-01 15.00 (1), 2026-02 15.00, 2026-03 churn -15.00 -> 0 (0).
-- ARR = 12 x MRR: 965.04, 905.04, 1265.04 USD; 180.00 EUR.
SELECT * FROM billing.mrr_by_month ORDER BY currency, month;

-- Cohorts: the month of each account's first MRR.
--   USD 2025-10: Gus; churned in 2025-11: retention 0 from then on.
--   USD 2026-01: Alice, Bob, Dan, Eve (4), cohort MRR 80.42;
--     2026-02: Dan churned -> 3 active (0.7500), MRR 80.42 + 15 - 30 = 65.42
--     (65.42 / 80.42 = 0.8135); 2026-03: Dan back -> 4 (1.0000), MRR 95.42
--     (95.42 / 80.42 = 1.1865).
--   USD 2026-02: Fay (1), 10.00, still there in March.
--   EUR 2026-01: Carla, 15.00; churned in 2026-03: 0 active, MRR 0.
SELECT * FROM billing.cohort_retention ORDER BY currency, cohort_month, month;

-- Revenue by month (issue month; payments by received date; credit notes
-- and refunds by the day they were made):
--   2025-10 USD: invoiced 10.00 (Gus), outstanding 10.00.
--   2026-01 USD: invoiced Alice 10 + Bob 120 + Dan 30 + Eve 7 = 167.00;
--     collected Bob 120.00 (01-05) + Alice 10.00 (01-20) = 130.00;
--     outstanding Bob 20 + Dan 30 = 50.00.
--   2026-01 EUR: invoiced 15.00 (Carla), outstanding 0.
--   2026-02 USD: invoiced Alice 25 + Eve 4 x 7 + Fay 10 = 63.00; collected
--     Eve 35.00; outstanding Alice 20 + Fay 10 = 30.00.
--   2026-02 EUR: invoiced 15.00, collected 15.00, outstanding 15.00.
--   2026-03 USD: invoiced Alice 25 + Eve 6 x 7 + Fay 10 + Dan 30 = 107.00,
--     credited 5.00, refunded 20.00, outstanding 107.00.
--   2026-03 EUR: invoiced 15.00, outstanding 15.00.
-- No tax in this data set: net_invoiced = invoiced.
SELECT * FROM billing.revenue_by_month ORDER BY currency, month;
-- Outstanding per currency is the aging total: USD 197.00, EUR 30.00.
SELECT currency, sum(outstanding) AS outstanding FROM billing.revenue_by_month GROUP BY 1 ORDER BY 1;

-- DSO over 90 days as of 2026-03-15 (window 2025-12-16 .. 2026-03-15):
--   USD receivable 197.00; invoiced 167 + 63 + 107 = 337.00;
--       197 / 337 x 90 = 52.611.. -> 52.6 days.
--   EUR receivable 30.00; invoiced 45.00: 30 / 45 x 90 = 60.0 days.
-- Over 30 days (2026-02-14 .. 03-15): USD invoiced 107.00 (March):
--   197 / 107 x 30 = 55.23.. -> 55.2; EUR 15.00: 30 / 15 x 30 = 60.0.
SELECT * FROM billing.days_sales_outstanding;
SELECT * FROM billing.days_sales_outstanding(30);
SELECT billing_test_error('SELECT * FROM billing.days_sales_outstanding(0)') AS zero_days,
       billing_test_error('SELECT * FROM billing.days_sales_outstanding(NULL)') AS null_days;

-- Upcoming invoices over the next 30 days (to 2026-04-14): Alice 04-01
-- 25.00, Fay 04-03 10.00, Eve 03-19, 03-26, 04-02, 04-09 at 7.00.  Dan's
-- next is 04-15: one day too late, there with 31 days.  Bob's is in 2027.
SELECT a.name, u.bill_date, u.currency, u.subtotal, u.discount, u.tax, u.total, u.lines
FROM billing.upcoming_invoices(30) u JOIN billing.account a USING (account_id)
ORDER BY u.bill_date, a.name;
-- The view: the next 7 days (to 03-22), Eve's 03-19 invoice.
SELECT a.name, u.bill_date, u.total
FROM billing.upcoming_invoices u JOIN billing.account a USING (account_id);
SELECT a.name, u.bill_date, u.total
FROM billing.upcoming_invoices(31) u JOIN billing.account a USING (account_id)
WHERE u.bill_date > '2026-04-10' ORDER BY u.bill_date, a.name;
SELECT count(*) AS today_only FROM billing.upcoming_invoices(0);
-- The same computation as the preview: every upcoming invoice is what
-- billing.preview_invoice says for that subscription as of the same day.
SELECT count(*) AS upcoming,
       count(*) FILTER (WHERE u.total = (SELECT billing.sum_numeric(p.amount) FILTER (WHERE NOT p.tax_inclusive)
                                         FROM billing.preview_invoice(u.account_id, u.subscription_id,
                                                                      '2026-04-14') p
                                         WHERE p.bill_date = u.bill_date)) AS same_as_preview
FROM billing.upcoming_invoices(30) u;
SELECT billing_test_error('SELECT * FROM billing.upcoming_invoices(-1)') AS negative_days,
       billing_test_error('SELECT * FROM billing.upcoming_invoices(NULL)') AS null_days;

-- The views move with the clock.  Alice gets 10.00 off for two periods
-- from her next invoice (04-01 to 06-01).  On 2026-04-20 her March
-- invoice is 6 days past due, Gus's 171 days; her MRR went from 25.00 to
-- 15.00 in April: a contraction of -10.00, and USD MRR is 105.42 - 10.00 =
-- 95.42 (5 customers).
SELECT billing.create_coupon('TENOFF', 'repeating', amount_off => '10.00 USD', duration_periods => 2) IS NOT NULL
    AS coupon;
SELECT billing.apply_coupon(:alice, :alice_sub, 'TENOFF');
SELECT coupon_from, coupon_until FROM billing.subscription WHERE account_id = :alice;
SET billing.clock = '2026-04-20 12:00+00';
SELECT account_name, as_of, current, days_1_30, days_over_90 FROM billing.ar_aging
WHERE account_name IN ('Alice', 'Gus') ORDER BY account_name;
SELECT a.name, m.month, m.mrr_before, m.mrr_after, m.change, m.movement
FROM billing.mrr_movements m JOIN billing.account a USING (account_id)
WHERE m.month = '2026-04-01';
SELECT month, mrr, contraction, net_change, customers FROM billing.mrr_by_month
WHERE currency = 'USD' AND month >= '2026-03-01' ORDER BY month;
-- On 2026-06-10 the coupon has ended (06-01): expansion +10.00 in June.
SET billing.clock = '2026-06-10 12:00+00';
SELECT a.name, m.month, m.change, m.movement
FROM billing.mrr_movements m JOIN billing.account a USING (account_id)
WHERE m.month > '2026-04-01';
SET billing.clock = '2026-03-15 12:00+00';

-- Every view and every one of its columns is documented.
SELECT c.relname, count(*) AS columns,
       count(*) FILTER (WHERE col_description(c.oid, att.attnum) IS NULL) AS undocumented,
       obj_description(c.oid, 'pg_class') IS NOT NULL AS view_documented
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'billing'
JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0
WHERE c.relkind = 'v' AND c.relname IN ('ar_aging', 'account_balances', 'account_statements', 'mrr_movements',
                                        'mrr_by_month', 'cohort_retention', 'revenue_by_month',
                                        'days_sales_outstanding', 'upcoming_invoices')
GROUP BY c.oid, c.relname ORDER BY c.relname;

SELECT invariant, detail FROM billing.check_invariants();

-- A credit note that pays cash back (method refund) on one of Eve's paid
-- February invoices (7.00), made 2026-03-20: March USD is credited 5.00 +
-- 3.00 = 8.00 and refunded 20.00 + 3.00 = 23.00, so collected - refunded
-- is the cash the ledger still holds.
BEGIN;
SET LOCAL billing.clock = '2026-03-20 12:00+00';
SELECT billing.issue_credit_note(:eve, invoice_id, '3.00 USD', 'refund') IS NOT NULL AS refunded_by_credit_note
FROM billing.invoice WHERE account_id = :eve AND status = 'paid' AND issue_date >= '2026-02-01'
ORDER BY invoice_id LIMIT 1;
SELECT month, credited, refunded FROM billing.revenue_by_month WHERE currency = 'USD' AND month = '2026-03-01';
SELECT sum(collected) - sum(refunded) AS cash_kept,
       (SELECT billing.sum_numeric(e.amount) FROM billing.ledger_entry e
        JOIN billing.account a ON a.account_id = e.account_id
        WHERE e.ledger_account = 'cash' AND a.currency = 'USD') AS ledger_cash
FROM billing.revenue_by_month WHERE currency = 'USD';
ROLLBACK;

\c contrib_regression
DROP DATABASE reports_regress;
