-- bench/periods.sql - billing.period_containing and billing.prorate over
-- 1M rows, each against a plain date / numeric expression over the same
-- rows, side by side in one session.  Prints
--   BENCH <name>_seconds <s>          best of 3 runs
--   BENCH <name>_vs_<baseline> <r> x  our time / the baseline's time
-- Each side is wrapped in count(expr), which evaluates expr for every row
-- and costs the same on both sides.  One process, no parallel workers, so
-- the numbers are per-row costs.
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE TEMP TABLE bench_rows AS
SELECT i,
       date '2019-01-01' + (i * 7919 % 730)::int AS anchor,
       date '2021-01-01' + (i * 104729 % 1500)::int AS on_date,
       billing.from_minor_units((i * 2654435761) % 10000000 - 5000000, 'USD') AS price,
       ((i * 2654435761) % 10000000 - 5000000) / 100.0 AS price_numeric
FROM generate_series(1::bigint, 1000000) i;
-- a period and a part of it for each row, made once, outside the timing
ALTER TABLE bench_rows ADD COLUMN period daterange, ADD COLUMN part daterange;
UPDATE bench_rows SET period = billing.period_containing(anchor, '1 month', on_date);
UPDATE bench_rows SET part = daterange(on_date, upper(period));
VACUUM ANALYZE bench_rows;

CREATE TEMP TABLE bench_times (name text, run int, seconds float8);

CREATE FUNCTION pg_temp.time_it(name text, query text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    n bigint;
BEGIN
    FOR run IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE query INTO n;
        IF n <> 1000000 THEN
            RAISE EXCEPTION '% evaluated % rows, not 1000000', name, n;
        END IF;
        INSERT INTO bench_times
        VALUES (name, run, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END $$;

-- Interleaved, so that a noisy moment hurts both sides alike.
SELECT pg_temp.time_it('date_arith',
    $$SELECT count(daterange(date_trunc('month', on_date)::date,
                             (date_trunc('month', on_date) + interval '1 month')::date))
      FROM bench_rows$$);
SELECT pg_temp.time_it('period_containing',
    $$SELECT count(billing.period_containing(anchor, '1 month', on_date)) FROM bench_rows$$);
-- the same anchored, clamped rule written with PostgreSQL's date + interval
SELECT pg_temp.time_it('anchored_date_arith',
    $$SELECT count(daterange((anchor + make_interval(months => k))::date,
                             (anchor + make_interval(months => k + 1))::date))
      FROM (SELECT anchor, on_date,
                   CASE WHEN (anchor + make_interval(months => m))::date > on_date THEN m - 1 ELSE m END AS k
            FROM (SELECT anchor, on_date,
                         ((extract(year FROM on_date) - extract(year FROM anchor)) * 12
                          + extract(month FROM on_date) - extract(month FROM anchor))::int AS m
                  FROM bench_rows) a) b$$);
SELECT pg_temp.time_it('numeric_arith',
    $$SELECT count(round(price_numeric * (upper(part) - lower(part)) / (upper(period) - lower(period)), 2))
      FROM bench_rows$$);
SELECT pg_temp.time_it('prorate',
    $$SELECT count(billing.prorate(price, period, part)) FROM bench_rows$$);

\pset format unaligned
\pset tuples_only on
WITH best AS (SELECT name, min(seconds) AS s FROM bench_times GROUP BY name)
SELECT line FROM (
    SELECT 1 AS o, format('BENCH %s_seconds %s', name, round(s::numeric, 3)) AS line FROM best
    UNION ALL
    SELECT 2, format('BENCH periods_containing_vs_date_arith %s x',
                     round((SELECT s FROM best WHERE name = 'period_containing')::numeric
                           / (SELECT s FROM best WHERE name = 'date_arith')::numeric, 2))
    UNION ALL
    SELECT 3, format('BENCH periods_containing_vs_anchored_date_arith %s x',
                     round((SELECT s FROM best WHERE name = 'period_containing')::numeric
                           / (SELECT s FROM best WHERE name = 'anchored_date_arith')::numeric, 2))
    UNION ALL
    SELECT 4, format('BENCH prorate_vs_numeric_arith %s x',
                     round((SELECT s FROM best WHERE name = 'prorate')::numeric
                           / (SELECT s FROM best WHERE name = 'numeric_arith')::numeric, 2))
) l ORDER BY o, line;
