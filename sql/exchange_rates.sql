--
-- Exchange rates and the reports in a reporting currency: rates in force
-- from their day until the next one, one rounding per conversion by
-- billing.rounding, the documented dates (revenue: issue date; MRR: the
-- month's last day; aging: the account's today), missing rates, bad
-- inputs and who may set a rate.
--
CREATE DATABASE exchange_rates_regress;
\c exchange_rates_regress
\i test/regress_own_database.sql

SELECT billing.create_billing_entity('Acme', 'USD') AS entity \gset
SELECT billing.create_product('Basic') AS basic \gset
SELECT billing.create_price(:basic, 'USD', 10.00) AS usd \gset
SELECT billing.create_price(:basic, 'EUR', 20.00) AS eur \gset
SELECT billing.create_price(:basic, 'JPY', 1500) AS jpy \gset

-- 2026-01-01: Alice pays 10.00 USD a month, Carla 20.00 EUR, Yuki 1500 JPY.
SELECT billing.create_account(:entity, 'Alice') AS alice \gset
SELECT billing.create_account(:entity, 'Carla', currency => 'EUR') AS carla \gset
SELECT billing.create_account(:entity, 'Yuki', currency => 'JPY', timezone => 'Asia/Tokyo') AS yuki \gset
SELECT billing.subscribe(:alice, :usd) IS NOT NULL AND billing.subscribe(:carla, :eur) IS NOT NULL
       AND billing.subscribe(:yuki, :jpy) IS NOT NULL AS subscribed;

-- Rates: EUR->USD 1.1 from 2026-01-01 and 1.2 from 2026-02-01; JPY->USD
-- 0.0066666 from 2025-12-01; USD->JPY 150.123 from 2026-01-01.
SELECT billing.set_exchange_rate('EUR', 'USD', 1.1, '2026-01-01');
SELECT billing.set_exchange_rate('EUR', 'USD', 1.2, '2026-02-01');
SELECT billing.set_exchange_rate('JPY', 'USD', 0.0066666, '2025-12-01');
SELECT billing.set_exchange_rate('USD', 'JPY', 150.123, '2026-01-01');
-- the same day again replaces the rate
SELECT billing.set_exchange_rate('USD', 'JPY', 150.5, '2026-01-01');
SELECT from_currency, to_currency, effective_on, rate FROM billing.exchange_rate ORDER BY 1, 2, 3;

-- In force from its day until the next one; a currency to itself is 1.
SELECT d, billing.exchange_rate_on('EUR', 'USD', d) AS rate
FROM unnest(ARRAY['2026-01-01', '2026-01-31', '2026-02-01', '2028-02-29']::date[]) d;
SELECT billing.exchange_rate_on('USD', 'USD', '2026-01-01') AS itself;

-- One rounding, by billing.rounding: 10.00 USD x 150.5 = 1505 JPY exactly;
-- 10.01 USD x 150.5 = 1506.505 -> 1507 half_up, 1506 down; 0.01 EUR x 1.1 =
-- 0.011 -> 0.01 USD; 1500 JPY x 0.0066666 = 9.9999 -> 10.00 USD.
SELECT billing.convert_amount('10.00 USD', 'JPY', '2026-01-15') AS a,
       billing.convert_amount('10.01 USD', 'JPY', '2026-01-15') AS b,
       billing.convert_amount('0.01 EUR', 'USD', '2026-01-15') AS c,
       billing.convert_amount('1500 JPY', 'USD', '2026-01-15') AS d,
       billing.convert_amount('7.00 USD', 'USD', '2026-01-15') AS same;
SET billing.rounding = 'down';
SELECT billing.convert_amount('10.01 USD', 'JPY', '2026-01-15') AS b_down,
       billing.convert_amount('1500 JPY', 'USD', '2026-01-15') AS d_down;
RESET billing.rounding;
SET billing.rounding = 'half_up';

-- Missing rates: P0002 naming the pair and the date (a rate set later
-- does not apply before its day; the inverse pair is not derived).
SELECT billing_test_error($$SELECT billing.exchange_rate_on('EUR', 'USD', '2025-12-31')$$);
SELECT billing_test_error($$SELECT billing.exchange_rate_on('USD', 'EUR', '2026-01-15')$$);
SELECT billing_test_error($$SELECT billing.convert_amount('1.00 GBP', 'USD', '2026-01-15')$$);
-- beyond an amount's range: 22003
SELECT billing.set_exchange_rate('USD', 'IDR', 999999999.999999999999, '2026-01-01');
SELECT billing_test_error($$SELECT billing.convert_amount('999999999999.00 USD', 'IDR', '2026-01-15')$$);

-- Bad inputs: 22023 (22008 for a date outside billing's), nothing written.
SELECT q, billing_test_error(q) FROM unnest(ARRAY[
    $$SELECT billing.set_exchange_rate(NULL, 'USD', 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', NULL, 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('eur', 'USD', 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('XYZ', 'USD', 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR''; DROP TABLE billing.invoice; --', 'USD', 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'EUR', 1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', NULL, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 0, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', -1.1, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 'NaN', '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 1000000000, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 0.0000000000001, '2026-01-01')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 1.1, NULL)$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 1.1, 'infinity')$$,
    $$SELECT billing.set_exchange_rate('EUR', 'USD', 1.1, '2199-01-01')$$,
    $$SELECT billing.exchange_rate_on(NULL, 'USD', '2026-01-01')$$,
    $$SELECT billing.exchange_rate_on('EUR', 'USD', NULL)$$,
    $$SELECT billing.convert_amount(NULL, 'USD', '2026-01-01')$$,
    $$SELECT billing.convert_amount('1.00 EUR', 'usd', '2026-01-01')$$,
    $$SELECT * FROM billing.mrr_in(NULL, '2026-01-01')$$,
    $$SELECT * FROM billing.mrr_in('USD', NULL)$$,
    $$SELECT * FROM billing.mrr_in('USD', 'infinity')$$,
    $$SELECT * FROM billing.aging_in('XYZ')$$,
    $$SELECT * FROM billing.revenue_in('USD', '2026-02-01', '2026-01-01')$$,
    $$SELECT * FROM billing.revenue_in('USD', NULL, '2026-01-01')$$,
    $$SELECT * FROM billing.revenue_in('USD', '2026-01-01', '5874897-12-31')$$,
    $$SELECT * FROM billing.revenue_by_price_in('', '2026-01-01', '2026-02-01')$$
]) q;
SELECT count(*) AS rates FROM billing.exchange_rate;
-- the table refuses what the function refuses
SELECT billing_test_error($$INSERT INTO billing.exchange_rate VALUES ('EUR', 'USD', '2027-01-01', 'NaN')$$);
SELECT billing_test_error($$INSERT INTO billing.exchange_rate VALUES ('EUR', 'USD', '2027-01-01', 1.0000000000001)$$);

-- Revenue in USD at each invoice's issue date.  January: Alice 10.00,
-- Carla 20.00 EUR x 1.1 = 22.00, Yuki 1500 JPY x 0.0066666 = 10.00 (one
-- rounding of 9.9999): 42.00.  February (2026-02-01 invoices): Carla at
-- 1.2 = 24.00: 44.00.
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
SELECT * FROM billing.revenue_in('USD', '2026-01-01', '2026-02-01');
-- in JPY every USD and EUR figure needs a rate to JPY: EUR->JPY is missing
SELECT billing_test_error($$SELECT * FROM billing.revenue_in('JPY', '2026-01-01', '2026-02-01')$$);
SELECT billing.set_exchange_rate('EUR', 'JPY', 160, '2026-01-01');
SELECT * FROM billing.revenue_in('JPY', '2026-01-15', '2026-02-28');
SELECT * FROM billing.revenue_by_price_in('USD', '2026-01-01', '2026-02-01');

-- MRR in USD at the month's last day: January at 1.1 (Carla 22.00), February at 1.2 (24.00).
SELECT * FROM billing.mrr_in('USD', '2026-01-01');
SELECT * FROM billing.mrr_in('USD', '2026-02-14');
-- a month before any MRR: zeros
SELECT * FROM billing.mrr_in('USD', '2025-06-01');

-- Aging in USD at each account's today (2026-02-01, in Tokyo too): the
-- January invoices are due 01-31, 1 day past due; the February ones are
-- current.  Carla's 20.00 EUR at 1.2 = 24.00 in each bucket.
SELECT account_name, account_currency, currency, as_of, rate, current, days_1_30, total_due, open_invoices
FROM billing.aging_in('USD');

-- Anyone may read rates and convert; setting one needs a role bound to
-- every entity (42501).
SELECT billing.grant_roles('fx_writer', 'fx_operator', 'fx_reporting');
CREATE ROLE fx_tenant IN ROLE fx_writer;
SELECT billing.bind_role_to_entity('fx_tenant', :entity);
SET ROLE fx_tenant;
SELECT billing_test_error($$SELECT billing.set_exchange_rate('EUR', 'USD', 99, '2026-01-01')$$);
SELECT billing_test_error($$INSERT INTO billing.exchange_rate VALUES ('EUR', 'USD', '2026-01-02', 99)$$);
SELECT billing_test_error($$UPDATE billing.exchange_rate SET rate = 99$$);
SELECT billing.exchange_rate_on('EUR', 'USD', '2026-01-15') AS rate;
SET ROLE fx_reporting;
SELECT month, mrr FROM billing.mrr_in('USD', '2026-01-01');
RESET ROLE;

\c contrib_regression
DROP DATABASE exchange_rates_regress;
DROP ROLE fx_tenant, fx_writer, fx_operator, fx_reporting;
