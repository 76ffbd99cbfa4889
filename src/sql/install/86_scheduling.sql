-- Scheduling with pg_cron.  pg_cron is optional: nothing here
-- refers to the cron schema when the extension is installed.  The functions
-- look pg_cron up when they are called and run its functions with EXECUTE.
--
-- pg_cron runs jobs from one database, cron.database_name.  When billing is
-- installed there, billing.schedule() creates or updates the jobs itself
-- (cron.schedule upserts by job name); in another database it raises with
-- the exact cron.schedule_in_database calls to run in the cron database
-- (billing.schedule_commands() returns them).  Job names are unique per
-- user in the whole cluster, so a job for another database carries its name.

-- Where pg_cron stands for this database: not_loaded (not in
-- shared_preload_libraries), no_extension (loaded, but CREATE EXTENSION
-- pg_cron was not run here, the cron database), other_database (pg_cron
-- runs jobs from cron_database), ready.
CREATE FUNCTION billing._cron_state(OUT state text, OUT cron_database text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    cron_database := nullif(current_setting('cron.database_name', true), '');
    state := CASE WHEN cron_database IS NULL THEN 'not_loaded'
                  WHEN cron_database <> current_database() THEN 'other_database'
                  WHEN NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN 'no_extension'
                  ELSE 'ready' END;
END $$;
COMMENT ON FUNCTION billing._cron_state() IS
    'internal: whether pg_cron can run billing''s jobs from this database: not_loaded, no_extension, '
    'other_database or ready, and the database pg_cron runs jobs from';

-- billing's jobs: name, schedule (NULL: none), command.
CREATE FUNCTION billing._cron_jobs(cycle text, dunning text)
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT j.name || CASE WHEN (billing._cron_state()).state = 'other_database' THEN ':' || current_database()
                          ELSE '' END,
           j.schedule, j.command
    FROM (VALUES ('billing-cycle', cycle, 'CALL billing.run_cycle()', 1),
                 ('billing-dunning', dunning, 'CALL billing.run_dunning()', 2)) j(name, schedule, command, ord)
    ORDER BY j.ord
$$;
COMMENT ON FUNCTION billing._cron_jobs(text, text) IS
    'internal: billing''s pg_cron jobs (billing-cycle, billing-dunning; with :database appended when pg_cron runs '
    'in another database), their schedules and commands';

CREATE FUNCTION billing._check_cron_schedule(schedule text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF schedule IS NOT NULL AND schedule !~ '^\s*(@(yearly|annually|monthly|weekly|daily|hourly|reboot)|(\S+\s+){4}\S+)\s*$' THEN
        RAISE EXCEPTION 'invalid cron schedule "%"', schedule
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use five fields (minute hour day-of-month month day-of-week) in GMT, such as ''0 2 * * *'', '
                         'or @daily; NULL removes the job.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_cron_schedule(text) IS 'internal: raises 22023 for what is no cron schedule';

-- The statements to run in the cron database, as a superuser: one
-- cron.schedule_in_database per job with a schedule, one cron.unschedule
-- per job without.
CREATE FUNCTION billing.schedule_commands(cycle text DEFAULT '0 2 * * *', dunning text DEFAULT '0 9 * * *')
RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_cron_schedule(cycle);
    PERFORM billing._check_cron_schedule(dunning);
    RETURN QUERY
    SELECT CASE WHEN j.schedule IS NULL
                THEN format('SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %L AND database = %L;',
                            j.job_name, current_database())
                ELSE format('SELECT cron.schedule_in_database(%L, %L, %L, %L);', j.job_name, trim(j.schedule),
                            j.command, current_database())
           END
    FROM billing._cron_jobs(cycle, dunning) j;
END $$;
COMMENT ON FUNCTION billing.schedule_commands(text, text) IS
    'the pg_cron calls that schedule billing''s jobs for this database (cron.schedule_in_database), to run in the '
    'database pg_cron runs jobs from (cron.database_name); a NULL schedule gives the call that removes the job';

-- Raises the error that says what is missing for scheduling.
CREATE FUNCTION billing._cron_not_ready(state text, cron_database text, commands text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF state = 'not_loaded' THEN
        RAISE EXCEPTION 'pg_cron is not loaded: billing cannot schedule its jobs'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Everything else of billing works without pg_cron; run billing.run_cycle() and '
                           'billing.run_dunning() from another scheduler, or install pg_cron.',
                  HINT = format('Install pg_cron (Debian: apt-get install postgresql-%s-cron), add to postgresql.conf: '
                                'shared_preload_libraries = ''pg_cron'' and cron.database_name = ''%s'', restart '
                                'PostgreSQL, run CREATE EXTENSION pg_cron; in database %s, then call billing.schedule() again.',
                                current_setting('server_version_num')::int / 10000, current_database(), current_database());
    ELSIF state = 'no_extension' THEN
        RAISE EXCEPTION 'pg_cron is loaded but its extension is not created in database %', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION pg_cron; here (this is cron.database_name), then call billing.schedule() again.';
    ELSE
        RAISE EXCEPTION 'pg_cron runs jobs from database %, not from %: billing''s jobs are managed there', cron_database,
            current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format(E'Run in database %s as a superuser:\n%s', cron_database, commands),
                  HINT = 'billing.schedule_commands() returns these statements; or install billing in the cron database.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._cron_not_ready(text, text, text) IS
    'internal: raises 55000 saying how to install and preload pg_cron, or which calls to run in the cron database';

CREATE FUNCTION billing.schedule(cycle text DEFAULT '0 2 * * *', dunning text DEFAULT '0 9 * * *')
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint, action text)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
    j record;
    v_old record;
BEGIN
    PERFORM billing._check_cron_schedule(cycle);
    PERFORM billing._check_cron_schedule(dunning);
    st := billing._cron_state();
    IF st.state <> 'ready' THEN
        PERFORM billing._cron_not_ready(st.state, st.cron_database,
                                        (SELECT string_agg(c, E'\n') FROM billing.schedule_commands(cycle, dunning) c));
    END IF;
    FOR j IN SELECT * FROM billing._cron_jobs(cycle, dunning) LOOP
        EXECUTE 'SELECT jobid, schedule, command FROM cron.job WHERE jobname = $1 AND username = current_user'
            INTO v_old USING j.job_name;
        job_name := j.job_name;
        schedule := trim(j.schedule);
        command := j.command;
        jobid := v_old.jobid;
        IF j.schedule IS NULL THEN
            IF v_old.jobid IS NULL THEN
                CONTINUE;
            END IF;
            EXECUTE 'SELECT cron.unschedule($1::bigint)' USING v_old.jobid;
            action := 'removed';
        ELSE
            EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, trim(j.schedule), j.command;
            action := CASE WHEN v_old.jobid IS NULL THEN 'created'
                           WHEN v_old.schedule = trim(j.schedule) AND v_old.command = j.command THEN 'unchanged'
                           ELSE 'updated' END;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.schedule(text, text) IS
    'creates or updates the pg_cron jobs billing-cycle (CALL billing.run_cycle(), default daily at 02:00 GMT) and '
    'billing-dunning (CALL billing.run_dunning(), daily at 09:00 GMT); a NULL schedule removes the job; idempotent. '
    'Raises 55000 when pg_cron is not loaded or not created here, or runs jobs from another database (with the '
    'cron.schedule_in_database calls to run there)';

CREATE FUNCTION billing.unschedule()
RETURNS TABLE (job_name text, jobid bigint)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
    r record;
BEGIN
    st := billing._cron_state();
    IF st.state <> 'ready' THEN
        PERFORM billing._cron_not_ready(st.state, st.cron_database,
                                        (SELECT string_agg(c, E'\n') FROM billing.schedule_commands(NULL, NULL) c));
    END IF;
    FOR r IN EXECUTE 'SELECT jobid, jobname FROM cron.job WHERE jobname = ANY ($1) AND username = current_user ORDER BY jobid'
             USING ARRAY(SELECT j.job_name FROM billing._cron_jobs(NULL, NULL) j) LOOP
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING r.jobid;
        job_name := r.jobname;
        jobid := r.jobid;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.unschedule() IS
    'removes billing''s pg_cron jobs (billing-cycle, billing-dunning) and returns what it removed';

-- The jobs and their last runs.  pg_cron's side comes from cron.job and
-- cron.job_run_details (NULL when pg_cron runs jobs from another database:
-- a NOTICE gives the query to run there); billing's side from its own run
-- logs, billing.cycle_run and billing.dunning_run.
CREATE FUNCTION billing.schedule_status()
RETURNS TABLE (job_name text, jobid bigint, schedule text, command text, active boolean,
               last_run_status text, last_run_start timestamptz, last_run_end timestamptz, last_run_message text,
               failed_runs_last_day bigint, last_billing_run_status text, last_billing_run_started_at timestamptz,
               last_billing_run_duration interval)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    st record;
BEGIN
    st := billing._cron_state();
    IF st.state = 'ready' THEN
        RETURN QUERY EXECUTE $q$
            SELECT j.job_name, c.jobid, c.schedule, c.command, c.active,
                   d.status, d.start_time, d.end_time, d.return_message,
                   (SELECT count(*) FROM cron.job_run_details f
                    WHERE f.jobid = c.jobid AND f.status = 'failed'
                      AND coalesce(f.start_time, f.end_time, now()) > now() - interval '1 day'),
                   b.status, b.started_at, b.duration
            FROM billing._cron_jobs(NULL, NULL) WITH ORDINALITY j(job_name, schedule, command, ord)
            LEFT JOIN cron.job c ON c.jobname = j.job_name AND c.username = current_user
            LEFT JOIN LATERAL (SELECT r.status, r.start_time, r.end_time, r.return_message
                               FROM cron.job_run_details r WHERE r.jobid = c.jobid
                               ORDER BY r.runid DESC LIMIT 1) d ON true
            LEFT JOIN LATERAL ((SELECT x.status, x.started_at, x.duration FROM billing.cycle_run x
                                WHERE j.ord = 1 ORDER BY x.cycle_run_id DESC LIMIT 1)
                               UNION ALL
                               (SELECT x.status, x.started_at, x.duration FROM billing.dunning_run x
                                WHERE j.ord = 2 ORDER BY x.dunning_run_id DESC LIMIT 1)) b ON true
            ORDER BY j.ord $q$;
        RETURN;
    END IF;
    IF st.state = 'other_database' THEN
        RAISE NOTICE 'pg_cron runs jobs from database %: its side of the status is there', st.cron_database
            USING HINT = format('In database %s: SELECT j.jobname, r.status, r.start_time, r.return_message '
                                'FROM cron.job j LEFT JOIN cron.job_run_details r USING (jobid) '
                                'WHERE j.database = %L ORDER BY r.runid DESC LIMIT 10;',
                                st.cron_database, current_database());
    ELSE
        RAISE NOTICE 'pg_cron is not available here (%): only billing''s own run logs are shown', st.state;
    END IF;
    RETURN QUERY
    SELECT j.job_name, NULL::bigint, NULL::text, j.command, NULL::boolean, NULL::text, NULL::timestamptz,
           NULL::timestamptz, NULL::text, NULL::bigint, b.status, b.started_at, b.duration
    FROM billing._cron_jobs(NULL, NULL) WITH ORDINALITY j(job_name, schedule, command, ord)
    LEFT JOIN LATERAL ((SELECT x.status, x.started_at, x.duration FROM billing.cycle_run x
                        WHERE j.ord = 1 ORDER BY x.cycle_run_id DESC LIMIT 1)
                       UNION ALL
                       (SELECT x.status, x.started_at, x.duration FROM billing.dunning_run x
                        WHERE j.ord = 2 ORDER BY x.dunning_run_id DESC LIMIT 1)) b ON true
    ORDER BY j.ord;
END $$;
COMMENT ON FUNCTION billing.schedule_status() IS
    'billing''s pg_cron jobs with their schedule, last run from cron.job_run_details (status, start, end, message), '
    'failed runs in the last day, and the last run in billing''s own logs (billing.cycle_run, billing.dunning_run)';
