\echo
\echo '== 1. Money is exact and carries its currency'
\echo '   Each currency has its minor unit (JPY none, KWD three); a division rounds once, a split never loses a cent:'
SELECT '12.34 USD'::amount AS typed, 'EUR 1999.5'::amount AS code_first,
       '1000 JPY'::amount AS yen, '1.5 KWD'::amount AS dinar;
SELECT '19.99 USD'::amount * 3 AS three_seats,
       '100.00 USD'::amount / 3 AS a_third_rounded_half_up,
       split('100.00 USD', 3) AS split_without_losing_a_cent,
       allocate('1000.00 EUR', '{50,30,20}') AS allocated_50_30_20;
\echo '   One amount as customers in six locales read it on their invoices:'
SELECT l AS locale, format_amount('-1234567.89 EUR', l) AS formatted
FROM unnest(ARRAY['en-US', 'de-DE', 'ru-RU', 'he-IL', 'ar-EG', 'ja-JP']) l;
\echo '   A monthly cycle anchored on Jan 31 comes back to the 31st after February; first_10_days is'
\echo '   what 10 days of a 30.00 USD plan cost in that period (prorated by the period''s length):'
SELECT p AS period, upper(p) - lower(p) AS days,
       prorate('30.00 USD', p, daterange(lower(p), lower(p) + 10)) AS first_10_days
FROM periods_between('2024-01-31', '1 month', daterange('2024-01-31', '2024-05-01')) p;
