-- The demo: run by `sh test/run.sh demo` on a throwaway cluster with pg_cron
-- preloaded, in the database named by cron.database_name.  The files of
-- test/demo run in name order in one psql session.
\pset footer off
\echo '== CREATE EXTENSION billing CASCADE'
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION billing CASCADE;
SET search_path = public, billing;
SELECT extname, extversion FROM pg_extension WHERE extname IN ('billing', 'pg_cron') ORDER BY 1;
