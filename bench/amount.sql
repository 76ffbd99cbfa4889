-- bench/amount.sql - sum() over 10M rows of billing.amount against sum() of
-- the same values as bigint (minor units) and as numeric, side by side in
-- one session, best of 3 interleaved runs.  Also text input of 1M amounts
-- against numeric input of the same numbers.  Prints
--   BENCH <name>_seconds <s>
--   BENCH sum_amount_vs_bigint <r> x    (target: <= 1.25)
--   BENCH sum_amount_vs_numeric <r> x   (target: < 1)
-- One process, no parallel workers: per-row costs.
SET max_parallel_workers_per_gather = 0;
SET search_path = public, billing;
SET jit = off;

CREATE TABLE bench_sum AS
SELECT (i * 2654435761) % 10000000 - 5000000 AS b,
       ((i * 2654435761) % 10000000 - 5000000) / 100.0 AS n,
       billing.from_minor_units((i * 2654435761) % 10000000 - 5000000, 'USD') AS a
FROM generate_series(1::bigint, 10000000) i;
VACUUM ANALYZE bench_sum;
-- warm the cache so the first timed run is not a disk read
SELECT count(*) FROM bench_sum \g /dev/null

CREATE TEMP TABLE bench_texts AS
SELECT format('%s USD', ((i * 2654435761) % 10000000 - 5000000) / 100.0) AS t,
       (((i * 2654435761) % 10000000 - 5000000) / 100.0)::text AS nt
FROM generate_series(1::bigint, 1000000) i;

CREATE TEMP TABLE bench_times (name text, run int, seconds numeric);

CREATE FUNCTION pg_temp.time_it(name text, query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    r text;
BEGIN
    t0 := clock_timestamp();
    EXECUTE query INTO r;
    INSERT INTO bench_times VALUES (name, 0, extract(epoch FROM clock_timestamp() - t0));
    RETURN r;
END $$;

-- The three sums must agree, or the comparison means nothing.
DO $$
DECLARE s_b numeric; s_n numeric; s_a billing.amount;
BEGIN
    SELECT sum(b), sum(n), billing.sum(a) INTO s_b, s_n, s_a FROM bench_sum;
    IF s_a <> billing.from_minor_units(s_b::bigint, 'USD') OR s_n <> s_b / 100 THEN
        RAISE EXCEPTION 'sums disagree: % % %', s_b, s_n, s_a;
    END IF;
END $$;

SELECT pg_temp.time_it('sum_bigint', 'SELECT sum(b)::text FROM bench_sum'),
       pg_temp.time_it('sum_amount', 'SELECT billing.sum(a)::text FROM bench_sum'),
       pg_temp.time_it('sum_numeric', 'SELECT sum(n)::text FROM bench_sum'),
       pg_temp.time_it('numeric_in', 'SELECT count(nt::numeric)::text FROM bench_texts'),
       pg_temp.time_it('amount_in', 'SELECT count(t::billing.amount)::text FROM bench_texts')
FROM generate_series(1, 3) \g /dev/null

\pset format unaligned
\pset tuples_only on
WITH best AS (SELECT name, min(seconds) AS s FROM bench_times GROUP BY name)
SELECT line FROM (
    SELECT 1 AS o, name AS k, format('BENCH %s_seconds %s', name, round(s, 3)) AS line FROM best
    UNION ALL
    SELECT 2, '', format('BENCH sum_amount_vs_bigint %s x',
        round((SELECT s FROM best WHERE name = 'sum_amount') / (SELECT s FROM best WHERE name = 'sum_bigint'), 2))
    UNION ALL
    SELECT 3, '', format('BENCH sum_amount_vs_numeric %s x',
        round((SELECT s FROM best WHERE name = 'sum_amount') / (SELECT s FROM best WHERE name = 'sum_numeric'), 2))
    UNION ALL
    SELECT 4, '', format('BENCH amount_in_vs_numeric_in %s x',
        round((SELECT s FROM best WHERE name = 'amount_in') / (SELECT s FROM best WHERE name = 'numeric_in'), 2))
) l ORDER BY o, k;
