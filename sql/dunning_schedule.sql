--
-- Scheduling with pg_cron.  The test cluster preloads pg_cron
-- with cron.database_name = contrib_regression, this database: billing
-- schedules its jobs here itself once CREATE EXTENSION pg_cron has run.
-- In another database billing.schedule() says which calls to run here.
-- pg_cron stays created here at the end: its launcher does not see the jobs
-- of a pg_cron dropped and created again (test/scenarios/dunning_pg_cron_run.sh
-- schedules real runs from this database later).
--
\i test/regress_helpers.sql
\set SHOW_CONTEXT never
SELECT current_setting('cron.database_name') = current_database() AS this_is_the_cron_database;

-- pg_cron is loaded but not created here: 55000, with what to do.
SELECT billing_test_error('SELECT * FROM billing.schedule()');
SELECT * FROM billing.schedule();

SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
RESET client_min_messages;
-- The defaults: the cycle daily at 02:00, dunning daily at 09:00 (GMT).
SELECT job_name, schedule, command, action FROM billing.schedule();
SELECT jobname, schedule, command, database, active FROM cron.job ORDER BY jobid;
-- Idempotent: the same call changes nothing; another time updates the job.
SELECT job_name, schedule, action FROM billing.schedule();
SELECT job_name, schedule, action FROM billing.schedule(dunning => '30 9 * * 1-5');
SELECT count(*) AS jobs FROM cron.job;
-- A NULL schedule removes that job.
SELECT job_name, schedule, action FROM billing.schedule(cycle => NULL);
SELECT jobname, schedule FROM cron.job ORDER BY jobid;
SELECT job_name, schedule, action FROM billing.schedule();
-- The status: schedules and last runs (none yet), failures of the last day.
SELECT job_name, schedule, command, active, last_run_status, failed_runs_last_day FROM billing.schedule_status();
-- Bad schedules: 22023, nothing changed.
SELECT billing_test_error($$SELECT * FROM billing.schedule('every day')$$);
SELECT billing_test_error($$SELECT * FROM billing.schedule(dunning => '0 9 * *')$$);
SELECT billing_test_error($$SELECT * FROM billing.schedule_commands('@sometimes')$$);
SELECT jobname, schedule FROM cron.job ORDER BY jobid;
-- unschedule() removes billing's jobs, and only those.
SELECT cron.schedule('someone-else', '0 0 * * *', 'SELECT 1') > 0 AS other_job;
SELECT job_name FROM billing.unschedule() ORDER BY 1;
SELECT jobname FROM cron.job ORDER BY jobid;
SELECT count(*) AS removed_nothing FROM billing.unschedule();
SELECT cron.unschedule('someone-else');

-- In another database: 55000, and the exact cron.schedule_in_database
-- calls to run in the cron database (schedule_commands() returns them).
CREATE DATABASE dunning_schedule_other;
\c dunning_schedule_other
\i test/regress_own_database.sql
\set SHOW_CONTEXT never
SELECT billing_test_error('SELECT * FROM billing.schedule()');
SELECT * FROM billing.schedule();
SELECT * FROM billing.schedule(cycle => '*/15 * * * *', dunning => NULL);
SELECT * FROM billing.schedule_commands();
SELECT billing_test_error('SELECT * FROM billing.unschedule()');
-- The status shows billing's side and says where pg_cron's side is.
SELECT job_name, jobid, command, last_run_status, last_billing_run_status FROM billing.schedule_status();
-- Everything but scheduling works here.
CALL billing.run_dunning();
SELECT status FROM billing.dunning_run;

\c contrib_regression
DROP DATABASE dunning_schedule_other;
