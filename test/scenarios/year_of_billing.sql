-- A year of billing with the test clock, one run_cycle a day (drive()),
-- each day checking preview = run and check_invariants().  Every expected
-- amount is worked out by hand in the comments.
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Acme GmbH', 'EUR', tax_id => 'DE123456789') AS e \gset
SELECT create_tax_rate('VAT', 19) AS vat \gset
SELECT create_tax_rate('MwSt inkl.', 20, inclusive => true) AS incl \gset
SELECT create_product('Service') AS prod \gset
SELECT create_price(:prod, 'EUR', 31.00, nickname => 'monthly 31') AS p31 \gset
SELECT create_price(:prod, 'USD', 120.00, cadence => '1 year', nickname => 'yearly') AS pyear \gset
SELECT create_price(:prod, 'EUR', 20.00, trial_days => 14, nickname => 'trial') AS ptrial \gset
SELECT create_price(:prod, 'EUR', 30.00, nickname => 'basic') AS basic \gset
SELECT create_price(:prod, 'EUR', 60.00, nickname => 'pro') AS pro \gset
SELECT create_price(:prod, 'EUR', 10.00, nickname => 'ten') AS p10 \gset
SELECT create_price(:prod, 'EUR', 50.00, nickname => 'fifty') AS p50 \gset
SELECT create_price(:prod, 'EUR', 120.00, nickname => 'gross') AS p120 \gset
SELECT create_price(:prod, 'JPY', 1000, nickname => 'yen') AS pyen \gset
SELECT create_coupon('TWENTY', 'forever', percent_off => 20) AS c20 \gset
SELECT create_coupon('FIVE', 'once', amount_off => '5.00 EUR') AS c5 \gset
SELECT create_coupon('TENx2', 'repeating', percent_off => 10, duration_periods => 2) AS c10 \gset

SELECT create_account(:e, 'Anna (Berlin)', timezone => 'Europe/Berlin') AS berlin \gset
SELECT create_account(:e, 'Bob (New York)', currency => 'USD', timezone => 'America/New_York') AS ny \gset
SELECT create_account(:e, 'Chie (Tokyo)', currency => 'JPY', timezone => 'Asia/Tokyo') AS tokyo \gset
SELECT create_account(:e, 'Dora (VAT)', tax_rate_id => :vat) AS vatacct \gset
SELECT create_account(:e, 'Emil (inclusive)', tax_rate_id => :incl) AS inclacct \gset

-- A: monthly anchored on Jan 31: Jan 31, Feb 29, Mar 31, Apr 30, ... the
-- 31st comes back after each short month.
SELECT subscribe(:berlin, :p31, start_date => '2024-01-31', invoice_now => false) AS a_sub \gset
-- B: yearly anchored on Feb 29 (leap day): Feb 29 2024, then Feb 28 2025.
SELECT subscribe(:ny, :pyear, start_date => '2024-02-29', invoice_now => false) AS b_sub \gset
-- C: 14-day trial from Mar 1: trialing until Mar 15, first invoice then for
-- [Mar 15, Apr 15), anchored on the trial end; trial.ending 3 days before.
SELECT subscribe(:berlin, :ptrial, start_date => '2024-03-01', invoice_now => false) AS c_sub \gset
-- D: basic 30.00 from Apr 1, upgraded and downgraded mid-period (below).
SELECT subscribe(:berlin, :basic, start_date => '2024-04-01', invoice_now => false) AS d_sub \gset
-- E: 10.00 from Jan 15, canceled at period end on Mar 20 -> ends Apr 15.
SELECT subscribe(:berlin, :p10, start_date => '2024-01-15', invoice_now => false) AS e_sub \gset
-- F: basic 30.00 from Jan 1, paused (on Mar 20) from Apr 1, resumed Apr 16.
SELECT subscribe(:berlin, :basic, start_date => '2024-01-01', invoice_now => false) AS f_sub \gset
-- I: coupons on a VAT account: 50.00 - 20% = 40.00 net, VAT 19% = 7.60,
-- total 47.60, every month (forever).
SELECT subscribe(:vatacct, :p50, start_date => '2024-01-01', coupon => 'TWENTY', invoice_now => false) AS i_sub \gset
-- 10.00 less 5.00 once: 5.00 net + 0.95 VAT = 5.95 in January, then
-- 10.00 + 1.90 = 11.90.
SELECT subscribe(:vatacct, :p10, start_date => '2024-01-01', coupon => 'FIVE', invoice_now => false) AS i2_sub \gset
-- J: inclusive 20%: 120.00 gross contains R(120 x 20/120) = 20.00 tax; the
-- total stays 120.00.  With 10% off twice: 108.00 gross, tax
-- R(108 x 20/120) = 18.00, for Jan and Feb; then 120.00 again.
SELECT subscribe(:inclacct, :p120, start_date => '2024-01-01', coupon => 'TENx2', invoice_now => false) AS j_sub \gset
-- K: yen in Tokyo, 1000 JPY a month from Jan 10 (no minor unit).
SELECT subscribe(:tokyo, :pyen, start_date => '2024-01-10', invoice_now => false) AS k_sub \gset

CALL drive('2024-01-01', '2024-03-20');
SELECT cancel_subscription(:berlin, :e_sub);                 -- at period end: Apr 15
-- F pauses at Apr 1 (paid through Mar 31)
SELECT pause_subscription(:berlin, :f_sub) AS f_pause \gset
SELECT expect('F pauses at the end of its period', :'f_pause'::date, '2024-04-01');
CALL drive('2024-03-21', '2024-04-10');

-- D: upgrade on Apr 11 with prorate_now.  Period [Apr 1, May 1) has 30
-- days, the rest [Apr 11, May 1) 20 days:
--   credit basic  -(R(30 x 30/30) - R(30 x 10/30)) = -(30.00 - 10.00) = -20.00
--   charge pro      R(60 x 30/30) - R(60 x 10/30)  =   60.00 - 20.00  =  40.00
-- invoiced at once: 20.00.
SET billing.clock = '2024-04-11 12:00+00';
SELECT change_subscription(:berlin, :d_sub, price_id => :pro, proration => 'prorate_now') AS d_pro_item \gset
SELECT expect('D upgrade invoiced now', lines_of(:d_sub, 2), '{"proration -20.00 EUR","proration 40.00 EUR"}');
SELECT expect('D upgrade invoice total', (invoices_of(:d_sub))[2], '2024-04-11 20.00 EUR');
CALL drive('2024-04-11', '2024-04-15');
-- F resumes on Apr 16: [Apr 16, May 1) is 15 of 30 days:
-- R(30 x 30/30) - R(30 x 15/30) = 30.00 - 15.00 = 15.00, billed at once.
SET billing.clock = '2024-04-16 12:00+00';
SELECT resume_subscription(:berlin, :f_sub);
CALL drive('2024-04-16', '2024-05-07');
-- D: downgrade on May 8 with prorate_next.  Period [May 1, Jun 1) has 31
-- days, [May 8, Jun 1) 24, [May 1, May 8) 7:
--   credit pro    -(60.00 - R(60 x 7/31 = 13.548..)) = -(60.00 - 13.55) = -46.45
--   charge basic    30.00 - R(30 x 7/31 = 6.774..)  =   30.00 - 6.77  =  23.23
-- on the Jun 1 invoice with basic's 30.00: 30.00 - 46.45 + 23.23 = 6.78.
SET billing.clock = '2024-05-08 12:00+00';
SELECT change_subscription(:berlin, :d_sub, price_id => :basic, proration => 'prorate_next');
CALL drive('2024-05-08', '2025-03-01');

-- A: 14 invoices of 31.00, Jan 31 2024 .. Feb 28 2025, on the anchor day.
SELECT expect('A Jan 31 anchor', invoices_of(:a_sub),
    '{"2024-01-31 31.00 EUR","2024-02-29 31.00 EUR","2024-03-31 31.00 EUR","2024-04-30 31.00 EUR",'
    '"2024-05-31 31.00 EUR","2024-06-30 31.00 EUR","2024-07-31 31.00 EUR","2024-08-31 31.00 EUR",'
    '"2024-09-30 31.00 EUR","2024-10-31 31.00 EUR","2024-11-30 31.00 EUR","2024-12-31 31.00 EUR",'
    '"2025-01-31 31.00 EUR","2025-02-28 31.00 EUR"}'::text[]);
SELECT expect('A periods end where the next begins',
    (SELECT array_agg(period_end ORDER BY invoice_id) FROM invoice WHERE subscription_id = :a_sub)
        [1:3], '{2024-02-29,2024-03-31,2024-04-30}'::date[]);
-- B: Feb 29 2024, Feb 28 2025 (clamped).
SELECT expect('B Feb 29 yearly', invoices_of(:b_sub), '{"2024-02-29 120.00 USD","2025-02-28 120.00 USD"}'::text[]);
SELECT expect('B next on Feb 28 2026',
    (SELECT next_bill_date FROM subscription WHERE subscription_id = :b_sub), '2026-02-28'::date);
-- C: the trial bills nothing; from Mar 15 every 15th.
SELECT expect('C trial then paid', (invoices_of(:c_sub))[1:3],
    '{"2024-03-15 20.00 EUR","2024-04-15 20.00 EUR","2024-05-15 20.00 EUR"}'::text[]);
SELECT expect('C trial.ending event once, on Mar 12',
    (SELECT array_agg(created_at::date) FROM outbox WHERE event_type = 'trial.ending'
     AND payload->>'subscription_id' = :'c_sub'), '{2024-03-12}'::date[]);
SELECT expect('C active after the trial', (SELECT status FROM subscription WHERE subscription_id = :c_sub), 'active');
-- D: Apr 1 30.00, Apr 11 +20.00, May 1 60.00, Jun 1 6.78, Jul 1 30.00.
SELECT expect('D upgrade and downgrade', (invoices_of(:d_sub))[1:5],
    '{"2024-04-01 30.00 EUR","2024-04-11 20.00 EUR","2024-05-01 60.00 EUR","2024-06-01 6.78 EUR","2024-07-01 30.00 EUR"}'::text[]);
SELECT expect('D June lines', lines_of(:d_sub, 4),
    '{"subscription 30.00 EUR","proration -46.45 EUR","proration 23.23 EUR"}'::text[]);
-- E: Jan 15, Feb 15, Mar 15, then canceled on Apr 15 without an invoice.
SELECT expect('E cancel at period end', invoices_of(:e_sub),
    '{"2024-01-15 10.00 EUR","2024-02-15 10.00 EUR","2024-03-15 10.00 EUR"}'::text[]);
SELECT expect('E canceled on Apr 15', (SELECT status || ' ' || canceled_on FROM subscription WHERE subscription_id = :e_sub),
    'canceled 2024-04-15');
-- F: Jan, Feb, Mar, (paused Apr 1), Apr 16 15.00, May 1 30.00.
SELECT expect('F pause and resume', (invoices_of(:f_sub))[1:5],
    '{"2024-01-01 30.00 EUR","2024-02-01 30.00 EUR","2024-03-01 30.00 EUR","2024-04-16 15.00 EUR","2024-05-01 30.00 EUR"}'::text[]);
SELECT expect('F resumed period', (SELECT period_start || ' ' || period_end FROM invoice WHERE subscription_id = :f_sub
                                   ORDER BY invoice_id OFFSET 3 LIMIT 1), '2024-04-16 2024-05-01');
-- I: 20% forever with VAT.
SELECT expect('I 20% off, VAT on the net', lines_of(:i_sub, 1),
    '{"subscription 50.00 EUR","discount -10.00 EUR","tax 7.60 EUR"}'::text[]);
SELECT expect('I every month', (SELECT count(*) FROM invoice WHERE subscription_id = :i_sub AND total = '47.60 EUR'), 15::bigint);
SELECT expect('I 5.00 once', (invoices_of(:i2_sub))[1:3],
    '{"2024-01-01 5.95 EUR","2024-02-01 11.90 EUR","2024-03-01 11.90 EUR"}'::text[]);
-- J: inclusive tax, 10% off twice.
SELECT expect('J inclusive with coupon', lines_of(:j_sub, 1),
    '{"subscription 120.00 EUR","discount -12.00 EUR","tax 18.00 EUR"}'::text[]);
SELECT expect('J totals', (invoices_of(:j_sub))[1:3],
    '{"2024-01-01 108.00 EUR","2024-02-01 108.00 EUR","2024-03-01 120.00 EUR"}'::text[]);
SELECT expect('J tax column', (SELECT array_agg(tax::text ORDER BY invoice_id) FROM invoice WHERE subscription_id = :j_sub)[1:3],
    '{"18.00 EUR","18.00 EUR","20.00 EUR"}'::text[]);
-- K: yen.
SELECT expect('K yen', (invoices_of(:k_sub))[1:2], '{"2024-01-10 1000 JPY","2024-02-10 1000 JPY"}'::text[]);

-- Numbers: gapless per year, in one series per year.
SELECT expect('numbers 2024 gapless',
    (SELECT count(*) = max(right(number, 6)::int) FROM invoice WHERE number LIKE 'INV-2024-%'), true);
SELECT expect('numbers 2025 restart at 1',
    (SELECT min(number) FROM invoice WHERE number LIKE 'INV-2025-%'), 'INV-2025-000001');
-- Due dates: issue date + 30 days (default payment terms).
SELECT expect('due dates', (SELECT bool_and(due_date = issue_date + 30) FROM invoice), true);
-- Running again for a day already billed creates nothing.
SELECT count(*) AS before FROM invoice \gset
CALL run_cycle(as_of => '2025-03-01');
SELECT expect('a second run creates nothing', (SELECT count(*) FROM invoice), :before::bigint);
SELECT expect('no invariant violated', (SELECT count(*) FROM check_invariants()), 0::bigint);
