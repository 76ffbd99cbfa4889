\echo '== Money: exact amounts that carry their currency'
SELECT '12.34 USD'::amount AS typed, 'EUR 1999.5'::amount AS code_first,
       '1000 JPY'::amount AS yen, '1.5 KWD'::amount AS dinar;
SELECT '19.99 USD'::amount * 3 AS three_seats,
       '100.00 USD'::amount / 3 AS a_third_rounded_half_up,
       split('100.00 USD', 3) AS split_without_losing_a_cent,
       allocate('1000.00 EUR', '{50,30,20}') AS allocated;
SELECT l AS locale, format_amount('-1234567.89 EUR', l) AS formatted
FROM unnest(ARRAY['en-US', 'de-DE', 'ru-RU', 'he-IL', 'ar-EG', 'ja-JP']) l;
\echo '== Billing periods: anchored on Jan 31, the 31st comes back after February'
SELECT p AS period, prorate('30.00 USD', p, daterange(lower(p), lower(p) + 10)) AS first_10_days
FROM periods_between('2024-01-31', '1 month', daterange('2024-01-31', '2024-07-01')) p;
\echo '== The test clock moves "today" without touching the system clock'
SET billing.clock = '2028-02-29 23:30:00+00';
SELECT billing.today('UTC') AS today_utc, billing.today('Asia/Tokyo') AS today_tokyo,
       billing.today('America/Los_Angeles') AS today_los_angeles;
RESET billing.clock;
