-- Included (\i) by the pg_regress files that run in a database of their own,
-- right after \c: the extension, the session settings their expected output
-- assumes, and the shared error helper.
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
RESET client_min_messages;
SET search_path = public, billing;
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';
SET billing.rounding = 'half_up';
SET billing.clock = '2026-01-01 12:00+00';
\pset null '(null)'
\i test/regress_helpers.sql
