--
-- Every PL/pgSQL function, procedure and trigger function of the extension
-- passes plpgsql_check (Debian's postgresql-15-plpgsql-check): no error and
-- no warning, the extra warnings (unused variables and parameters, hidden
-- names) included.  It reads each body against the installed catalog, so a
-- misspelt column, a wrong type on assignment or a dead variable fails
-- here, not in a customer's cycle.  Trigger functions are checked against
-- the table of their trigger, with its transition tables.
--
SET client_min_messages = warning;
-- (the schedule functions read cron.job)
CREATE EXTENSION IF NOT EXISTS pg_cron;
CREATE EXTENSION plpgsql_check;
RESET client_min_messages;
CREATE TEMP VIEW checked AS
SELECT p.oid, p.oid::regprocedure AS fn, t.tgrelid, t.tgnewtable, t.tgoldtable
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
JOIN pg_language l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
LEFT JOIN LATERAL (SELECT x.tgrelid, x.tgnewtable, x.tgoldtable FROM pg_trigger x
                   WHERE x.tgfoid = p.oid ORDER BY x.tgrelid::regclass::text LIMIT 1) t
       ON p.prorettype = 'trigger'::regtype;
-- the check covers the extension's PL/pgSQL, triggers among it
SELECT count(*) > 50 AS routines, count(tgrelid) > 0 AS triggers, count(tgnewtable) > 0 AS transition_tables
FROM checked;
-- and finds nothing
SELECT c.fn, r.level, r.sqlstate, r.message, r.lineno, r.query
FROM checked c
CROSS JOIN LATERAL plpgsql_check_function_tb(c.oid, relid => coalesce(c.tgrelid, 0),
                                              newtable => c.tgnewtable, oldtable => c.tgoldtable,
                                              fatal_errors => false, extra_warnings => true) r
ORDER BY c.fn::text, r.lineno;
-- a function with a mistake in it is found: the check is not blind
CREATE FUNCTION pg_temp.mistaken() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    unused integer;
BEGIN
    RETURN (SELECT no_such_column FROM billing.invoice LIMIT 1);
END $$;
SELECT level, message FROM plpgsql_check_function_tb('pg_temp.mistaken()'::regprocedure, fatal_errors => false,
                                                     extra_warnings => true)
ORDER BY level, message;
DROP EXTENSION plpgsql_check;
