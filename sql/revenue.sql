--
-- Revenue recognition over a data set worked out by hand in the comments:
-- the revenue of each line (discount and included tax shares), its days,
-- credit notes from their date on, void invoices, usage and one-off lines,
-- the monthly views, the waterfall, revenue by product and price, the
-- tie to the ledger, and tenants.
--
CREATE DATABASE revenue_regress;
\c revenue_regress
\i test/regress_own_database.sql

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_tax_rate('VAT', 20) AS vat \gset
SELECT billing.create_tax_rate('GST', 10, inclusive => true) AS gst \gset
SELECT billing.create_product('Basic') AS basic \gset
SELECT billing.create_product('Pro') AS pro \gset
SELECT billing.create_price(:pro, 'USD', 365.00, cadence => '1 year') AS yearly \gset
SELECT billing.create_price(:basic, 'USD', 10.00) AS monthly \gset
SELECT billing.create_price(:basic, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered') AS api \gset
SELECT billing.create_price(:basic, 'EUR', 20.00) AS basic_eur \gset
SELECT billing.create_price(:pro, 'USD', 50.00) AS pro_monthly \gset
SELECT billing.create_price(:basic, 'USD', 11.00) AS basic_gst \gset
SELECT billing.create_price(:basic, 'USD', 10.00, nickname => 'a') AS a \gset
SELECT billing.create_price(:basic, 'USD', 10.00, nickname => 'b') AS b \gset
SELECT billing.create_price(:basic, 'USD', 10.00, nickname => 'c') AS c \gset
SELECT billing.create_coupon('SAVE25', 'forever', percent_off => 25) IS NOT NULL AS coupon;
SELECT billing.create_coupon('ONE', 'once', amount_off => '1.00 USD') IS NOT NULL AS coupon;

-- 2026-01-01:
--   Alice: Pro yearly 365.00 over [2026-01-01, 2027-01-01), 365 days: 1.00 a
--     day, 31.00 in January, 28.00 in February, ... 31.00 in December.
--   Carla (EUR): Basic 20.00 with SAVE25 (-5.00) and VAT 20% (3.00): total
--     18.00 EUR, revenue 15.00 EUR (tax is never revenue), all in January.
--   Dan: Pro monthly 50.00, voided: recognizes nothing.
--   Fay: three items of 10.00 and the ONE coupon (-1.00 once): the lines'
--     revenue is 10.00 - allocate(1.00, [10, 10, 10]) = 9.66, 9.67, 9.67
--     (largest remainder, ties to the earlier part): 29.00, nothing lost.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.create_account(:entity, 'Alice') AS alice \gset
SELECT billing.create_account(:entity, 'Carla', currency => 'EUR', tax_rate_id => :vat) AS carla \gset
SELECT billing.create_account(:entity, 'Dan') AS dan \gset
SELECT billing.create_account(:entity, 'Fay') AS fay \gset
SELECT billing.subscribe(:alice, :yearly) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:carla, :basic_eur, coupon => 'SAVE25') IS NOT NULL AS subscribed;
SELECT billing.subscribe(:dan, :pro_monthly) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:fay, items => format('[{"price_id": %s}, {"price_id": %s}, {"price_id": %s}]', :a, :b, :c)::jsonb,
                         coupon => 'ONE') IS NOT NULL AS subscribed;
SELECT invoice_id AS dan_inv FROM billing.invoice WHERE account_id = :dan \gset
SELECT billing.void_invoice(:dan, :dan_inv, 'entered by mistake');

-- 2026-01-15: Bob: Basic 10.00 a month from the 15th with metered API
-- usage.  [01-15, 02-15) is 31 days: 1000 cents / 31 = 32 rest 8, so the
-- first 8 days are 0.33 and the other 23 are 0.32.  January has 17 of
-- them: 8 x 0.33 + 9 x 0.32 = 5.52; February 14 x 0.32 = 4.48.
SET billing.clock = '2026-01-15 12:00+00';
SELECT billing.create_account(:entity, 'Bob') AS bob \gset
SELECT billing.subscribe(:bob, items => format('[{"price_id": %s}, {"price_id": %s}]', :monthly, :api)::jsonb)
    AS bob_sub \gset
SELECT subscription_item_id AS bob_api FROM billing.subscription_item WHERE account_id = :bob AND price_id = :api \gset
SELECT invoice_id AS bob_inv FROM billing.invoice WHERE account_id = :bob \gset
SELECT billing.record_usage(:bob, :bob_api, 250, 'u1') IS NOT NULL AS recorded;

-- 2026-02-01: a credit note of 2.00 on Bob's invoice (no tax): its 31 day
-- parts are 200 / 31 = 6 rest 14: 0.07 for the first 14 days, 0.06 after.
-- The 17 January days (1.16) are reversed on its date, 02-01, and the 14
-- February days (0.84) on theirs: February recognizes 4.48 - 2.00 = 2.48.
-- A one-off item of 7.77 to Alice, invoiced now: earned on its issue date.
SET billing.clock = '2026-02-01 12:00+00';
SELECT billing.issue_credit_note(:bob, :bob_inv, 2.00, 'credit_balance', 'outage') IS NOT NULL AS credited;
SELECT billing.add_invoice_item(:alice, 7.77, 'Onboarding', invoice_now => true) IS NOT NULL AS added;

-- 2026-02-15: Bob's second period and his January usage (250 x 0.01 =
-- 2.50, billed in arrears, earned on the issue date).
SET billing.clock = '2026-02-15 12:00+00';
CALL billing.run_cycle();

-- 2026-03-01: Eve: 11.00 with GST 10% included (1.00): revenue 10.00 over
-- March's 31 days.
SET billing.clock = '2026-03-01 12:00+00';
SELECT billing.create_account(:entity, 'Eve', tax_rate_id => :gst) AS eve \gset
SELECT billing.subscribe(:eve, :basic_gst) IS NOT NULL AS subscribed;
SET billing.clock = '2026-03-10 12:00+00';

-- Each line's revenue and days.
SELECT a.name, l.kind, l.issue_date, l.period_start, l.days, l.revenue
FROM billing._revenue_lines() l JOIN billing.account a USING (account_id)
ORDER BY l.account_id, l.invoice_id, l.invoice_line_id;

-- Every invoice's lines sum to its total - tax, exactly.
SELECT i.invoice_id, i.total - i.tax AS net, sum(l.revenue) AS lines
FROM billing.invoice i JOIN billing._revenue_lines() l USING (account_id, invoice_id)
GROUP BY 1, 2 HAVING sum(l.revenue) <> i.total - i.tax;

-- Bob's schedule: his first invoice and the credit note's reversal.
SELECT month, credit_note_id IS NOT NULL AS reversal, kind, booked_on, recognized
FROM billing.revenue_schedule WHERE account_id = :bob ORDER BY invoice_id, invoice_line_id, reversal, month;

-- The day parts of one line sum to the line: Alice's year, by month.
SELECT month, recognized FROM billing.revenue_schedule
WHERE account_id = :alice AND kind = 'subscription' ORDER BY month;

-- The monthly views.  January USD: Alice 31.00 + Bob 5.52 + Fay 29.00 =
-- 65.52; EUR: Carla 15.00.
SELECT * FROM billing.revenue_recognized_by_month WHERE month <= '2026-04-01' ORDER BY currency, month;
SELECT * FROM billing.deferred_revenue WHERE month <= '2026-04-01' ORDER BY currency, month;
-- deferred at the end = what is left of the schedule
SELECT currency, deferred FROM billing.deferred_revenue d
WHERE month = (SELECT max(month) FROM billing.deferred_revenue x WHERE x.currency = d.currency) ORDER BY 1;
SELECT * FROM billing.revenue_waterfall WHERE month <= '2026-03-01' ORDER BY currency, invoice_month, month;
SELECT * FROM billing.revenue_by_product WHERE month = '2026-02-01' ORDER BY currency, product_id NULLS LAST;
SELECT * FROM billing.revenue_by_price WHERE month = '2026-02-01' ORDER BY currency, price_id NULLS LAST;

-- Tied to the ledger: per currency, everything booked (recognized and
-- deferred) is what the ledger's revenue account holds (invoices, less
-- voids) less what credit notes and voids debited to discounts.
WITH ledger AS (
    SELECT billing.currency(e.amount) AS currency,
           -sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'revenue')
           - coalesce(sum(billing.to_numeric(e.amount)) FILTER (WHERE t.kind IN ('credit_note', 'void')
                                                                  AND e.ledger_account = 'discounts'), 0)
             AS net
    FROM billing.ledger_transaction t JOIN billing.ledger_entry e USING (account_id, txn_id)
    GROUP BY 1
), booked AS (
    SELECT currency, sum(booked) AS booked FROM billing.deferred_revenue GROUP BY 1
)
SELECT l.currency, l.net, b.booked, l.net = b.booked AS tied FROM ledger l JOIN booked b USING (currency) ORDER BY 1;
SELECT invariant, detail FROM billing.check_invariants();

-- A credit note on the full rest of Carla's invoice (18.00 EUR, 3.00 of it
-- tax): January's 15.00 EUR is reversed on its date in March.
SELECT min(invoice_id) AS carla_inv FROM billing.invoice WHERE account_id = :carla \gset
SELECT billing.issue_credit_note(:carla, :carla_inv, 18.00, 'credit_balance') IS NOT NULL AS credited;
SELECT month, recognized, reversed FROM billing.revenue_recognized_by_month WHERE currency = 'EUR' ORDER BY month;
SELECT month, deferred FROM billing.deferred_revenue WHERE currency = 'EUR' ORDER BY month;

-- Tenants: a role bound to another entity sees none of Acme's revenue; one
-- bound to Acme sees it all.
SELECT billing.create_billing_entity('Other', 'USD') AS other \gset
SELECT billing.grant_roles('rev_writer', 'rev_operator', 'rev_reporting');
CREATE ROLE rev_other IN ROLE rev_reporting;
CREATE ROLE rev_acme IN ROLE rev_reporting;
SELECT billing.bind_role_to_entity('rev_other', :other);
SELECT billing.bind_role_to_entity('rev_acme', :entity);
SET ROLE rev_other;
SELECT count(*) AS schedule, (SELECT count(*) FROM billing.revenue_recognized_by_month) AS months,
       (SELECT count(*) FROM billing.revenue_waterfall) AS waterfall,
       (SELECT count(*) FROM billing.revenue_by_product) AS products
FROM billing.revenue_schedule;
SET ROLE rev_acme;
SELECT currency, sum(recognized) FROM billing.revenue_recognized_by_month GROUP BY 1 ORDER BY 1;
RESET ROLE;
SELECT currency, sum(recognized) FROM billing.revenue_recognized_by_month GROUP BY 1 ORDER BY 1;

\c contrib_regression
DROP DATABASE revenue_regress;
DROP ROLE rev_other, rev_acme, rev_writer, rev_operator, rev_reporting;
