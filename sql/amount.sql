-- billing.amount: input, output, arithmetic, ordering, aggregates, functions.
-- Every bad input shows its SQLSTATE through billing_test_error().
\pset null '(null)'
-- Operators live in schema billing: it must be on the search_path (README).
SET search_path = public, billing;

\i test/regress_helpers.sql

-- Text input: both orders, signs, case, spaces; output has exactly the
-- currency's digits.
SELECT v, v::billing.amount AS amount
FROM (VALUES ('12.34 USD'), ('USD 12.34'), ('-12.34 usd'), ('usd -12.34'),
             ('-USD 12.34'), ('+5 EUR'), ('5 USD'), ('  7.1  gbp '), ('12.34USD'),
             ('1000 JPY'), ('1000.00 JPY'), ('1.5 KWD'), ('0.0001 CLF'),
             ('-0.00 USD'), ('-0 JPY'), ('1.2300 USD'), ('0 USD'),
             ('1000000000000.00 USD'), ('-1000000000000 USD'),
             ('1000000000000 JPY'), ('1000000000000.000 KWD'), ('-1000000000000.0000 CLF')) t(v);

-- Bad text input: each is an error with a SQLSTATE, never a rounding.
SELECT v, billing_test_error(format('SELECT %L::billing.amount', v)) AS error
FROM (VALUES (''), ('   '), ('12.34'), ('USD'), ('1.234 USD'), ('1.5 JPY'),
             ('1.0001 KWD'), ('12.34 ZZZ'), ('12.34 US'), ('12.34 USDX'),
             ('12.34 U$D'), ('1,234.00 USD'), ('12. USD'), ('.5 USD'), ('1e5 USD'),
             ('--5 USD'), ('5 USD EUR'), ('NaN USD'), ('USD nan'),
             ('-Infinity USD'), ('inf EUR'), ('1000000000000.01 USD'),
             ('-1000000000000.01 USD'), ('1000000000001 JPY'), ('1000000000000.0001 CLF'),
             ('92233720368547758.07 USD'), ('99999999999999999999999 USD'),
             ('12.34 €'), (E'12.34\tUSD\n')) t(v);

-- The message names the value and says what to do.
SELECT '1.234 USD'::billing.amount;
SELECT '12.34 ZZZ'::billing.amount;
SELECT '12.34'::billing.amount;

-- Binary send/receive round trip through COPY, and a damaged binary value.
CREATE TABLE amount_io (a billing.amount);
INSERT INTO amount_io VALUES ('12.34 USD'), ('-1000 JPY'), ('1.500 KWD'),
    ('1000000000000.00 USD'), ('-1000000000000.00 USD'), ('0.00 EUR');
SELECT billing.amount_send('12.34 USD'), billing.amount_send('-1 JPY');
COPY amount_io TO '/tmp/billing_regress_amount.bin' (FORMAT binary);
CREATE TABLE amount_io2 (a billing.amount);
COPY amount_io2 FROM '/tmp/billing_regress_amount.bin' (FORMAT binary);
SELECT count(*) AS same_rows FROM amount_io JOIN amount_io2 USING (a);
CREATE TABLE amount_raw (b bytea);
INSERT INTO amount_raw VALUES ('\x00000000000004d25a5a5a02');  -- currency ZZZ
COPY amount_raw TO '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
COPY amount_io2 FROM '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
TRUNCATE amount_raw;
INSERT INTO amount_raw VALUES ('\x8000000000000000555344' || '\x02'::bytea);  -- INT64_MIN units
COPY amount_raw TO '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
COPY amount_io2 FROM '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
TRUNCATE amount_raw;
INSERT INTO amount_raw VALUES ('\x0000000000000001555344');  -- too short
COPY amount_raw TO '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
COPY amount_io2 FROM '/tmp/billing_regress_amount_bad.bin' (FORMAT binary);
SELECT count(*) AS rows_after_bad_copies FROM amount_io2;
-- Binary input accepts only the currency's own scale, as text input makes
-- (12.3400 USD at scale 4 is refused; sql/bounds.sql has the rest of what
-- text refuses).  A value an earlier ICU stored at another scale still
-- prints with its digits, equals, hashes and adds exactly (the unit tests
-- of src/core, test/unit/test_amount.c).
TRUNCATE amount_raw;
INSERT INTO amount_raw VALUES ('\x000000000001e20855534404');  -- 123400 at scale 4
COPY amount_raw TO '/tmp/billing_regress_amount_scale.bin' (FORMAT binary);
CREATE TABLE amount_scaled (a billing.amount);
COPY amount_scaled FROM '/tmp/billing_regress_amount_scale.bin' (FORMAT binary);
SELECT count(*) AS stored_at_another_scale FROM amount_scaled;

-- Arithmetic of one currency.
SELECT '10.00 USD'::billing.amount + '2.55 USD' AS plus,
       '10.00 USD'::billing.amount - '12.55 USD' AS minus,
       -'10.00 USD'::billing.amount AS negated,
       -'-0.01 USD'::billing.amount AS negated_negative,
       '2.50 USD'::billing.amount * 3 AS times_int,
       3 * '2.50 USD'::billing.amount AS int_times,
       '2.50 USD'::billing.amount * (-4)::bigint AS times_bigint,
       '2.50 USD'::billing.amount * 0 AS times_zero,
       '10.00 USD'::billing.amount / 4 AS div_int,
       '100 JPY'::billing.amount / '7 JPY'::billing.amount AS ratio,
       '1.00 USD'::billing.amount / '3.00 USD'::billing.amount AS ratio_repeating;

-- Multiplying or dividing by a numeric rounds once, by billing.rounding.
SHOW billing.rounding;
CREATE TABLE rounding_cases (a billing.amount, f numeric, d integer);
INSERT INTO rounding_cases VALUES
    ('1.00 USD', 0.125, 8), ('-1.00 USD', 0.125, 8), ('1.00 USD', 0.135, 3), ('-1.00 USD', 0.135, 3),
    ('1.00 USD', 0.1251, 6), ('1.00 USD', 0.1249, 6), ('10.00 USD', 0.0035, 400), ('1 JPY', 0.5, 2),
    ('3 JPY', 0.5, 2), ('-3 JPY', 0.5, 2), ('1.000 KWD', 0.0005, 2000), ('0.00 USD', 0.5, 2);
-- one mode at a time: the setting is read when the operator runs
CREATE FUNCTION rounding_table(mode text)
RETURNS TABLE (a billing.amount, f numeric, product billing.amount, d integer, quotient billing.amount)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('billing.rounding', mode, true);
    RETURN QUERY SELECT r.a, r.f, r.a * r.f, r.d, r.a / r.d FROM rounding_cases r;
END $$;
SELECT 'half_up' AS mode, * FROM rounding_table('half_up');
SELECT 'half_even' AS mode, * FROM rounding_table('half_even');
SELECT 'half_down' AS mode, * FROM rounding_table('half_down');
SELECT 'up' AS mode, * FROM rounding_table('up');
SELECT 'down' AS mode, * FROM rounding_table('down');
SELECT 'ceiling' AS mode, * FROM rounding_table('ceiling');
SELECT 'floor' AS mode, * FROM rounding_table('floor');
RESET billing.rounding;
SELECT '10.00 USD'::billing.amount / 3 AS third_half_up,
       '10.00 USD'::billing.amount / 3.0 AS third_numeric,
       '-10.00 USD'::billing.amount / 3 AS neg_third,
       '0.05 USD'::billing.amount / 2 AS half_cent_up,
       1.5 * '0.03 USD'::billing.amount AS numeric_times;
SET billing.rounding = half_even;
SELECT '0.05 USD'::billing.amount / 2 AS half_cent_even, '0.07 USD'::billing.amount / 2 AS half_cent_even_up;
SET billing.rounding = 'floor';
SELECT '-0.05 USD'::billing.amount / 2 AS floor_neg, '0.05 USD'::billing.amount / 2 AS floor_pos;
RESET billing.rounding;
SELECT billing_test_error($$SET billing.rounding = 'bankers'$$) AS bad_setting;

-- Arithmetic errors: mixed currencies, overflow, division by zero, NaN.
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT '1.00 USD'::billing.amount + '1.00 EUR'$$),
    ($$SELECT '1.00 USD'::billing.amount - '1.00 EUR'$$),
    ($$SELECT '1.00 USD'::billing.amount / '1.00 EUR'::billing.amount$$),
    ($$SELECT '1000000000000.00 USD'::billing.amount + '0.01 USD'$$),
    ($$SELECT '-1000000000000.00 USD'::billing.amount - '0.01 USD'$$),
    ($$SELECT '1000000000000.00 USD'::billing.amount * 2$$),
    ($$SELECT '1000000000000.00 USD'::billing.amount * 1.0000001$$),
    ($$SELECT '1000000000000 JPY'::billing.amount / 0.5$$),
    ($$SELECT '1.00 USD'::billing.amount * 9223372036854775807$$),
    ($$SELECT '1.00 USD'::billing.amount / 0$$),
    ($$SELECT '1.00 USD'::billing.amount / 0.0$$),
    ($$SELECT '1.00 USD'::billing.amount / '0.00 USD'::billing.amount$$),
    ($$SELECT '1.00 USD'::billing.amount * 'NaN'::numeric$$),
    ($$SELECT '1.00 USD'::billing.amount / 'Infinity'::numeric$$),
    ($$SELECT '1.00 USD'::billing.amount * 1e-30 = '0.00 USD'$$)
) t(q);
SELECT '1000000000000.00 USD'::billing.amount * -1 AS most_negative,
       '1000000000000.00 USD'::billing.amount / 1.5 AS big_div;

-- Comparison: equality is false across currencies; ordering refuses them.
SELECT '1.00 USD'::billing.amount = '1.00 USD' AS eq,
       '1.00 USD'::billing.amount = '1.00 EUR' AS eq_other_currency,
       '1.00 USD'::billing.amount <> '1.00 EUR' AS ne_other_currency,
       '1.00 USD'::billing.amount < '1.01 USD' AS lt,
       '1.00 USD'::billing.amount <= '1.00 USD' AS le,
       '-1.00 USD'::billing.amount > '-1.01 USD' AS gt,
       '1.00 USD'::billing.amount >= '1.01 USD' AS ge,
       '1.2300 USD'::billing.amount = '1.23 USD' AS eq_trailing_zeros;
-- The sort order: currency code, then value; total, never an error.
SELECT '1.00 USD'::billing.amount ~<~ '2.00 EUR' AS usd_before_eur,
       '1.00 EUR'::billing.amount ~<~ '2.00 USD' AS eur_before_usd,
       '1.00 USD'::billing.amount ~<=~ '1.00 USD' AS le_self,
       '2.00 USD'::billing.amount ~>~ '1.00 USD' AS gt_value,
       '1.00 EUR'::billing.amount ~>=~ '9.99 EUR' AS ge_false,
       billing.amount_cmp('1 JPY', '1.00 EUR') AS cmp_jpy_eur,
       billing.amount_cmp('1.00 EUR', '1.00 EUR') AS cmp_equal,
       billing.amount_cmp('-1.00 EUR', '1.00 EUR') AS cmp_less;
SELECT billing_test_error($$SELECT '1.00 USD'::billing.amount < '2.00 EUR'$$) AS lt_mixed,
       billing_test_error($$SELECT '1.00 USD'::billing.amount >= '2.00 EUR'$$) AS ge_mixed;

-- btree and hash: an index scan returns exactly what a sequential scan does;
-- ORDER BY, DISTINCT, GROUP BY and hash joins work, mixed currencies too.
-- The btree order is currency code first, then value.
SELECT setseed(0.42);
CREATE TABLE amounts AS
SELECT i AS id,
       billing.from_minor_units((random() * 20000 - 10000)::bigint,
                                (ARRAY['USD','EUR','JPY'])[1 + i % 3]) AS a
FROM generate_series(1, 20000) i;
CREATE INDEX amounts_a ON amounts (a);
CREATE INDEX amounts_a_hash ON amounts USING hash (a);
ANALYZE amounts;
-- A range over a mixed column is an error on the rows of other currencies,
-- so a sequential scan filters by currency first.
SELECT billing_test_error($$SELECT count(*) FROM amounts WHERE a >= '10.00 USD'$$) AS mixed_range;
SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM amounts
WHERE billing.currency(a) = 'USD' AND a >= '10.00 USD' AND a < '50.00 USD';
CREATE TEMP TABLE seq_result AS SELECT id FROM amounts
WHERE billing.currency(a) = 'USD' AND a >= '10.00 USD' AND a < '50.00 USD';
RESET enable_indexscan; RESET enable_indexonlyscan;
SET enable_seqscan = off;
-- The index answers ranges through the total-order operators; two bounds
-- in one currency select only that currency.
EXPLAIN (COSTS OFF) SELECT id FROM amounts WHERE a ~>=~ '10.00 USD' AND a ~<~ '50.00 USD';
CREATE TEMP TABLE idx_result AS
SELECT id FROM amounts WHERE a ~>=~ '10.00 USD' AND a ~<~ '50.00 USD';
SELECT (SELECT count(*) FROM seq_result) AS seq_rows,
       (SELECT count(*) FROM idx_result) AS index_rows,
       (SELECT count(*) FROM (SELECT id FROM seq_result EXCEPT SELECT id FROM idx_result) d) +
       (SELECT count(*) FROM (SELECT id FROM idx_result EXCEPT SELECT id FROM seq_result) d) AS differing;
-- Every row is found through the btree index by equality.
SELECT count(*) AS rows_not_found_by_index
FROM amounts x WHERE NOT EXISTS (SELECT 1 FROM amounts y WHERE y.a = x.a AND y.id = x.id);
EXPLAIN (COSTS OFF) SELECT a FROM amounts ORDER BY a LIMIT 3;
SELECT a FROM amounts ORDER BY a LIMIT 3;
SELECT a FROM amounts ORDER BY a DESC LIMIT 3;
EXPLAIN (COSTS OFF) SELECT count(*) FROM amounts WHERE a = '12.34 EUR';
SELECT (SELECT count(*) FROM amounts WHERE a = '12.34 EUR') AS hash_index_count;
RESET enable_seqscan; RESET enable_bitmapscan;
SELECT count(*) AS seq_count FROM amounts WHERE a = '12.34 EUR';
-- ORDER BY over mixed currencies: by currency code, then value.
SELECT a FROM (VALUES ('2.00 USD'::billing.amount), ('-1 JPY'), ('1.00 EUR'),
    ('-3.00 USD'), ('10 JPY'), ('1.0 EUR')) v(a) ORDER BY a;
SELECT DISTINCT a FROM (VALUES ('1.00 USD'::billing.amount), ('1.00 EUR'), ('1.00 USD'),
    ('1.0000 USD')) v(a) ORDER BY a;
SET enable_hashagg = on; SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT a FROM amounts GROUP BY a;
SELECT count(*) AS groups FROM (SELECT a FROM amounts GROUP BY a) g;
RESET enable_sort; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT a FROM amounts GROUP BY a;
SELECT count(*) AS groups_sorted FROM (SELECT a FROM amounts GROUP BY a) g;
RESET enable_hashagg;
SET enable_mergejoin = off; SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM amounts x JOIN amounts y ON x.a = y.a;
SELECT count(*) AS hash_join_rows FROM amounts x JOIN amounts y ON x.a = y.a;
RESET enable_mergejoin; RESET enable_nestloop;
SET enable_hashjoin = off; SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM amounts x JOIN amounts y ON x.a = y.a;
SELECT count(*) AS merge_join_rows FROM amounts x JOIN amounts y ON x.a = y.a;
RESET enable_hashjoin; RESET enable_nestloop;

-- Aggregates.
SELECT billing.currency(a) AS currency, count(*), billing.sum(a), billing.min(a),
       billing.max(a), billing.avg(a)
FROM amounts GROUP BY 1 ORDER BY 1;
SELECT billing.sum(a), billing.avg(a), billing.min(a), billing.max(a)
FROM (VALUES ('1.00 USD'::billing.amount), (NULL), ('2.01 USD')) v(a);
SELECT billing.sum(a) AS empty_sum, billing.avg(a) AS empty_avg, billing.min(a) AS empty_min
FROM amounts WHERE false;
SELECT billing_test_error($$SELECT billing.sum(a) FROM amounts$$) AS mixed_sum,
       billing_test_error($$SELECT billing.max(a) FROM amounts$$) AS mixed_max;
-- The accumulator is 128 bits: intermediate totals beyond the bound are
-- fine, a final total beyond it is an error for sum and none for
-- sum_numeric, which ends in numeric.
SELECT billing.sum(a) AS back_in_range
FROM (VALUES ('1000000000000.00 USD'::billing.amount), ('1000000000000.00 USD'),
             ('-1000000000000.00 USD')) v(a);
SELECT billing_test_error($$SELECT billing.sum(a) FROM (VALUES
    ('1000000000000.00 USD'::billing.amount), ('0.01 USD')) v(a)$$) AS sum_overflow;
SELECT billing.sum_numeric(a) AS sum_numeric, pg_typeof(billing.sum_numeric(a)) AS type
FROM (VALUES ('1000000000000.00 USD'::billing.amount), ('0.01 USD')) v(a);
SELECT billing.sum_numeric(a) AS empty_sum_numeric FROM amounts WHERE false;
SELECT billing_test_error($$SELECT billing.sum_numeric(a) FROM amounts$$) AS mixed_sum_numeric;
SELECT billing.avg(a) AS avg_of_largest
FROM (VALUES ('1000000000000.00 USD'::billing.amount), ('1000000000000.00 USD')) v(a);
-- Parallel plans combine partial sums to exactly the serial result.
CREATE TABLE amounts_big AS
SELECT billing.from_minor_units(i * 7919 % 100003 - 50000, 'EUR') AS a
FROM generate_series(1, 200000) i;
ANALYZE amounts_big;
CREATE TEMP TABLE serial_agg AS
SELECT billing.sum(a) s, billing.avg(a) v, billing.min(a) mn, billing.max(a) mx, count(*) n FROM amounts_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT billing.sum(a), billing.avg(a), billing.min(a), billing.max(a) FROM amounts_big;
SELECT p.s = s.s AS sum_same, p.v = s.v AS avg_same, p.mn = s.mn AS min_same,
       p.mx = s.mx AS max_same, s.s AS serial_sum, s.v AS serial_avg
FROM (SELECT billing.sum(a) s, billing.avg(a) v, billing.min(a) mn, billing.max(a) mx FROM amounts_big) p,
     serial_agg s;
SELECT billing.sum(a) = billing.from_minor_units(sum(billing.minor_units(a))::bigint, 'EUR') AS matches_bigint_sum
FROM amounts_big;
RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- Constructors, accessors, cast.
SELECT billing.amount(12.34, 'USD') AS exact, billing.amount(12.3, 'usd') AS padded,
       billing.amount(-5, 'JPY') AS jpy, billing.amount(1.2300, 'USD') AS zeros,
       billing.amount(0, 'KWD') AS zero, billing.amount(1000000000000, 'USD') AS largest;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.amount(1.234, 'USD')$$),
    ($$SELECT billing.amount(0.5, 'JPY')$$),
    ($$SELECT billing.amount(1, 'ZZZ')$$),
    ($$SELECT billing.amount(1, 'US')$$),
    ($$SELECT billing.amount(1, '')$$),
    ($$SELECT billing.amount('NaN', 'USD')$$),
    ($$SELECT billing.amount('-Infinity', 'USD')$$),
    ($$SELECT billing.amount(1000000000000.01, 'USD')$$),
    ($$SELECT billing.round_amount(1, 'USD', 'nearest')$$),
    ($$SELECT billing.round_amount(1e30, 'USD', 'half_up')$$),
    ($$SELECT billing.from_minor_units(-9223372036854775808, 'USD')$$),
    ($$SELECT billing.from_minor_units(100000000000001, 'USD')$$),
    ($$SELECT billing.from_minor_units(1, 'XYZ')$$)
) t(q);
SELECT billing.amount(NULL, 'USD') AS null_value, billing.amount(1, NULL) AS null_currency;
SELECT v, m, billing.round_amount(v, 'USD', m) AS rounded
FROM unnest(ARRAY[2.345, -2.345, 2.355, 2.3449999, 0.005, -0.005, 2.34]) v,
     unnest(ARRAY['half_up','half_even','half_down','up','down','ceiling','floor']) m
ORDER BY v, m;
SELECT billing.round_amount(0.0035 * 1000, 'USD') AS api_calls, billing.round_amount(2.5, 'JPY') AS yen,
       billing.round_amount(1.23456, 'KWD', 'half_even') AS dinar;
-- round_money: the same rounding, as numeric with the currency's digits and
-- no bound (reports)
SELECT billing.round_money(2.345, 'USD') AS usd, billing.round_money(2.5, 'JPY') AS yen,
       billing.round_money(0, 'KWD') AS zero, billing.round_money(1e30 + 0.005, 'USD') AS beyond_any_amount;
SET billing.rounding = 'half_even';
SELECT billing.round_money(2.345, 'USD') AS half_even;
RESET billing.rounding;
SELECT billing_test_error($$SELECT billing.round_money('NaN', 'USD')$$) AS nan,
       billing_test_error($$SELECT billing.round_money(1, 'ZZZ')$$) AS unknown;
SELECT billing.from_minor_units(1234, 'USD') AS usd, billing.from_minor_units(-5, 'jpy') AS jpy,
       billing.from_minor_units(1000000000000000, 'KWD') AS largest;
SELECT billing.minor_units('12.34 USD'), billing.minor_units('-1000 JPY'),
       billing.currency('1.500 KWD'), billing.scale('1.500 KWD'), billing.scale('1 JPY'),
       '12.34 USD'::billing.amount::numeric AS to_numeric,
       '-1000000000000.00 USD'::billing.amount::numeric AS smallest,
       '1000 JPY'::billing.amount::numeric AS jpy_numeric;

-- allocate and split: parts always sum exactly to the whole.
SELECT billing.split('10.00 USD', 3) AS thirds, billing.split('-10.00 USD', 3) AS neg_thirds,
       billing.split('0.01 USD', 3) AS one_cent, billing.split('100 JPY', 1) AS whole,
       billing.split('0.00 EUR', 2) AS zero;
SELECT billing.allocate('100.00 USD', '{1,1,1}') AS equal,
       billing.allocate('100.00 USD', '{0.5,0.3,0.2}') AS percents,
       billing.allocate('100 JPY', '{1,0,2}') AS zero_ratio,
       billing.allocate('-0.05 USD', '{1,1}') AS negative,
       billing.allocate('0.05 USD', '{0.333,0.333,0.334}') AS decimals,
       billing.allocate('1000000000000.00 USD', '{1,2}') AS largest;
-- a property check over many random splits: no part lost or invented
SELECT setseed(0.17);
SELECT count(*) AS violations FROM (
    SELECT t, r, billing.allocate(t, r) AS parts
    FROM (SELECT billing.from_minor_units((random() * 2e9 - 1e9)::bigint, 'USD') t,
                 ARRAY(SELECT (random() * 100)::int::numeric FROM generate_series(1, 1 + (random() * 9)::int)) || 1::numeric r
          FROM generate_series(1, 2000)) x
) y
WHERE (SELECT billing.sum(p) FROM unnest(parts) p) <> t
   OR cardinality(parts) <> cardinality(r);
-- any numeric ratios: 1/3 as a numeric (20 decimals), ratios too small or
-- too large for 64-bit weights, and 1/3 + 2/3 that do not sum to 1 exactly
SELECT billing.allocate('100.00 USD', ARRAY[1/3::numeric, 1/3::numeric, 1/3::numeric]) AS thirds,
       billing.allocate('1.00 USD', ARRAY[1/3::numeric, 2/3::numeric]) AS third_and_two,
       billing.allocate('1.00 USD', '{0.0000000000000000001,1}') AS tiny_ratio,
       billing.allocate('1.00 USD', '{10000000000000000000,1}') AS huge_ratio,
       billing.allocate('-1.00 USD', '{1e40,2e40,0}') AS negative_huge,
       billing.allocate('0.07 USD', ARRAY[0, 1e-30]) AS zero_and_tiny,
       billing.allocate('1000000000000.00 USD', ARRAY[1/7::numeric, 6/7::numeric]) AS largest_sevenths;
-- the numeric way and the 64-bit way agree: the same ratios scaled by 10^30
-- (beyond 64 bits) give the same parts as the plain ones
SELECT setseed(0.23);
SELECT count(*) AS disagreements FROM (
    SELECT t, r, billing.allocate(t, r) AS plain,
           billing.allocate(t, ARRAY(SELECT x * 1e30 FROM unnest(r) x)) AS scaled,
           billing.allocate(t, ARRAY(SELECT x / 1e30 FROM unnest(r) x)) AS shrunk
    FROM (SELECT billing.from_minor_units((random() * 2e9 - 1e9)::bigint, 'USD') t,
                 ARRAY(SELECT (random() * 100)::int::numeric FROM generate_series(1, 1 + (random() * 9)::int)) || 1::numeric r
          FROM generate_series(1, 500)) x
) y
WHERE plain <> scaled OR plain <> shrunk;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.allocate('1.00 USD', '{}')$$),
    ($$SELECT billing.allocate('1.00 USD', ARRAY[1e30, -1e-30])$$),
    ($$SELECT billing.allocate('1.00 USD', ARRAY[0e-30, 0])$$),
    ($$SELECT billing.allocate('1.00 USD', '{0,0}')$$),
    ($$SELECT billing.allocate('1.00 USD', '{1,-1}')$$),
    ($$SELECT billing.allocate('1.00 USD', '{1,NULL}')$$),
    ($$SELECT billing.allocate('1.00 USD', '{1,NaN}')$$),
    ($$SELECT billing.allocate('1.00 USD', '{{1,2},{3,4}}')$$),
    ($$SELECT billing.split('1.00 USD', 0)$$),
    ($$SELECT billing.split('1.00 USD', -2)$$),
    ($$SELECT billing.split('1.00 USD', 2000000)$$)
) t(q);

-- Locale formatting with ICU.
-- unaligned: psql versions differ in how wide they count the bidi marks
-- (U+200E, U+200F, U+061C) these hold, which would shift aligned columns
\pset format unaligned
SELECT l, billing.format_amount('-1234567.50 EUR', l) AS eur, billing.format_amount('1234 JPY', l) AS jpy
FROM unnest(ARRAY['en-US','de-DE','ru-RU','ja-JP','he-IL','ar-EG','fr_CH']) l;
SELECT billing.format_amount('1234.50 ILS', 'he-IL') AS shekel, billing.format_amount('1.500 KWD', 'ar-KW') AS dinar,
       billing.format_amount('1000000000000.00 USD', 'en-US') AS largest;
\pset format aligned
SELECT billing_test_error($$SELECT billing.format_amount('1.00 USD', 'xx-YY')$$) AS unknown_locale,
       billing_test_error($$SELECT billing.format_amount('1.00 USD', '')$$) AS empty_locale,
       billing_test_error($$SELECT billing.format_amount('1.00 USD', 'en US; DROP TABLE x')$$) AS junk_locale;

-- The currency list comes from ICU.
SELECT code, minor_digits, current FROM billing.currencies
WHERE code IN ('USD','EUR','JPY','KWD','BHD','CLF','ILS','DEM') ORDER BY code;
SELECT count(*) > 150 AS many_currencies, count(*) FILTER (WHERE current) > 140 AS many_current
FROM billing.currencies;
