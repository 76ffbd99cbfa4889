-- billing.clock in parallel workers: a worker restores the leader's settings
-- before its time zone abbreviations are loaded, and the clock's check hook
-- used to parse the value there and crash the worker (SIGSEGV in
-- DecodeTimezoneAbbrev, about every other query).  Each query below starts
-- workers that restore billing.clock, in both written forms.
CREATE TABLE parallel_clock AS
SELECT i % 1000 AS g, billing.from_minor_units(i % 997, 'USD') AS a FROM generate_series(1, 100000) i;
ANALYZE parallel_clock;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET billing.clock = '2024-01-01T12:00:00+00';
EXPLAIN (COSTS OFF) SELECT billing.sum(a) FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SET billing.clock = '2024-01-01 12:00 Europe/Berlin';
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT billing.sum(a)::text FROM parallel_clock;
SELECT count(DISTINCT g) AS groups, billing.now() AS clock FROM parallel_clock;
RESET billing.clock;
DROP TABLE parallel_clock;
