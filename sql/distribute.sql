-- billing.distribute() where Citus is absent (the suite's cluster has no
-- Citus; test/citus/run.sh tests it on a Citus cluster): it fails with
-- 55000 and a hint and changes nothing; billing.distribution_plan() says
-- what it would make of each table.  A database of its own.
CREATE DATABASE distribute_regress;
\c distribute_regress
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
RESET client_min_messages;
\i test/regress_helpers.sql

-- what would become what: the tables with an account_id distributed, the
-- others reference tables, each after the tables it refers to
SELECT kind, count(*) FROM billing.distribution_plan() GROUP BY kind ORDER BY kind;
SELECT table_name, kind FROM billing.distribution_plan() ORDER BY step;
SELECT count(*) AS out_of_order FROM billing.distribution_plan() p
JOIN pg_constraint f ON f.conrelid = p.table_name AND f.contype = 'f' AND f.confrelid <> f.conrelid
JOIN billing.distribution_plan() r ON r.table_name = f.confrelid
WHERE r.step >= p.step;
-- every table of the extension is in it once
SELECT count(*) = count(DISTINCT table_name) AS once,
       count(*) = (SELECT count(*) FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e' JOIN pg_extension e ON e.oid = d.refobjid
                   AND e.extname = 'billing' WHERE c.relkind = 'r') AS every_table
FROM billing.distribution_plan();
-- a reference table holds no account_id; a distributed one does
SELECT count(*) AS wrong_kind FROM billing.distribution_plan() p
WHERE (p.kind = 'distributed') <> EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = p.table_name
                                          AND a.attname = 'account_id' AND NOT a.attisdropped);

-- without Citus: 55000, and the policies, keys and indexes are as they were
CREATE TEMP TABLE before AS
SELECT 'policy ' || polrelid::regclass || ' ' || pg_get_expr(polqual, polrelid) AS what FROM pg_policy
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
          WHERE connamespace = 'billing'::regnamespace
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'billing';
SELECT billing_test_error('SELECT billing.distribute()');
-- the error with its hint
\set SHOW_CONTEXT never
SELECT * FROM billing.distribute();
\set SHOW_CONTEXT errors
CREATE TEMP TABLE after AS
SELECT 'policy ' || polrelid::regclass || ' ' || pg_get_expr(polqual, polrelid) AS what FROM pg_policy
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
          WHERE connamespace = 'billing'::regnamespace
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'billing';
SELECT (SELECT count(*) FROM (SELECT what FROM before EXCEPT ALL SELECT what FROM after) x) AS gone,
       (SELECT count(*) FROM (SELECT what FROM after EXCEPT ALL SELECT what FROM before) x) AS added,
       (SELECT count(*) > 100 FROM before) AS compared_something;
-- a database where a table called pg_dist_partition exists but Citus does
-- not: still 55000 (the check is the extension, not a table's name)
CREATE TABLE public.pg_dist_partition (logicalrelid regclass);
SELECT billing_test_error('SELECT billing.distribute()');
DROP TABLE public.pg_dist_partition;
-- who may: not a role that is not the extension's owner
CREATE ROLE regress_dist_user;
GRANT USAGE ON SCHEMA billing TO regress_dist_user;
GRANT EXECUTE ON FUNCTION billing.distribute() TO regress_dist_user;
SET ROLE regress_dist_user;
SELECT billing_test_error('SELECT billing.distribute()');
RESET ROLE;
DROP OWNED BY regress_dist_user;
DROP ROLE regress_dist_user;

\c contrib_regression
DROP DATABASE distribute_regress;
