-- The demo: run by `sh test/run.sh demo` on a throwaway cluster with pg_cron
-- preloaded, in the database named by cron.database_name.  The files of
-- test/demo run in name order in one psql session (their psql variables
-- carry over) and tell one story on fixed dates of the test clock, so that
-- every run prints the same thing: a seller bills five customers from
-- January to March 2026, collects, dunns, and closes the quarter with the
-- finance reports.
-- Quiet psql (no SET/CALL tags) and no NOTICEs (what CREATE EXTENSION
-- skips or cascades): the output is the story.  Warnings and errors still
-- show, and ON_ERROR_STOP ends the demo at the first error.
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION billing CASCADE;
SET search_path = public, billing;
\echo '== billing: recurring billing inside PostgreSQL, installed with CREATE EXTENSION'
SELECT extname, extversion FROM pg_extension WHERE extname IN ('billing', 'pg_cron') ORDER BY 1;

-- The demo's own helper, not part of billing: move the test clock a day at
-- a time up to a date and run each day what pg_cron would run (the cycle,
-- then dunning), each in its own transactions.
CREATE SCHEMA demo;
CREATE PROCEDURE demo.days_until(last_day date)
LANGUAGE plpgsql AS $$
DECLARE
    d date := (billing.now() AT TIME ZONE 'UTC')::date + 1;
BEGIN
    WHILE d <= last_day LOOP
        PERFORM set_config('billing.clock', d || ' 09:00+00', false);
        COMMIT;
        CALL billing.run_cycle();
        CALL billing.run_dunning();
        d := d + 1;
    END LOOP;
    -- what the story does next happens later that day
    PERFORM set_config('billing.clock', last_day || ' 12:00+00', false);
END $$;
