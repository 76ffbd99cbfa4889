-- Attack 8: each role against the functions of the other roles.
--
-- From billing.role_functions(): the reporting role may call none of the
-- writer's, operator's and DBA's functions; the writer none of the
-- operator's and DBA's (run_cycle, run_dunning, schedule, grant_roles,
-- bind_role_to_entity, ...); the operator none of the writer's and DBA's;
-- and no role any internal function (name starting with "_") that
-- role_functions does not list for it.  The expectation comes from the
-- list, not from the grants, so a wrong grant fails here.  Each call has
-- plausible arguments for the role's own tenant (a wrongly granted
-- function would go through), a value of each argument's type where there
-- are none (the internal functions; never NULL: the planner folds a STRICT
-- function of a NULL without calling it, so no privilege is checked); DBA
-- functions name the caller and tenant B (binding oneself to another
-- tenant).  Trigger functions run only as triggers.  Pass: 42501, no row
-- changed.
\set ON_ERROR_STOP 1

-- A value of a type, as SQL, for a call that only needs to reach the
-- privilege check.
CREATE FUNCTION atk.some_value(typ oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN y.typtype = 'c'
                -- a row of NULL fields is not NULL itself
                THEN pg_catalog.format('(SELECT x::%1$s FROM (SELECT (NULL::%1$s).*) x)', atk.qtype(typ))
                ELSE pg_catalog.format('%L::%s', CASE
        WHEN y.typcategory = 'A' THEN '{}'
        WHEN typ = 'billing.amount'::regtype THEN '1.00 USD'
        WHEN typ IN ('date'::regtype, 'timestamptz'::regtype) THEN '2026-01-01'
        WHEN typ = 'interval'::regtype THEN '1 mon'
        WHEN typ = 'boolean'::regtype THEN 'true'
        WHEN typ IN ('jsonb'::regtype, 'json'::regtype) THEN '{}'
        WHEN y.typcategory = 'N' THEN '1'
        WHEN y.typcategory = 'S' OR typ = 'billing.currency_code'::regtype THEN 'USD'
        ELSE 'x' END, atk.qtype(typ)) END
    FROM pg_catalog.pg_type y WHERE y.oid = typ
$$;

-- kinds: the kinds the role may call (besides what every role may).
CREATE FUNCTION atk.role_boundaries(kinds text[]) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    stmt text;
    internal text[] := '{}';
BEGIN
    FOR r IN SELECT x.fn, x.name, x.kind, x.prokind FROM atk.routine x JOIN pg_catalog.pg_proc p ON p.oid = x.fn
             WHERE x.prokind IN ('f', 'p')
               AND coalesce(x.kind, CASE WHEN x.name ~ '^_' THEN 'internal' END) <> ALL (kinds || '{read_helper,reader}'::text[])
               AND NOT (x.name IN ('_acting_role_sees_all', '_acting_role_entities', '_acting_role_may_use_account'))
               AND p.prorettype <> 'trigger'::regtype
               -- what SQL cannot call: pseudo-type arguments (I/O, support functions)
               AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proargtypes::oid[]) t(oid)
                               JOIN pg_catalog.pg_type y ON y.oid = t.oid WHERE y.typtype = 'p')
             ORDER BY x.kind NULLS LAST, x.fn::text LOOP
        stmt := atk.call_sql(r.fn, CASE WHEN r.kind = 'dba' THEN 'B' ELSE 'A' END);
        IF stmt IS NULL OR r.kind IS NULL THEN
            stmt := CASE WHEN r.prokind = 'p' THEN 'CALL ' ELSE 'SELECT * FROM ' END || r.fn::regproc::text || '('
                    || coalesce((SELECT pg_catalog.string_agg(atk.some_value(t.oid), ', ' ORDER BY t.o)
                                 FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proargtypes::oid[]) WITH ORDINALITY t(oid, o)
                                 WHERE p.oid = r.fn), '') || ')';
        END IF;
        IF r.kind IS NULL THEN
            internal := internal || stmt;
        ELSE
            RETURN QUERY SELECT * FROM atk.expect(pg_catalog.format('role_boundary:%s:%s:%s', session_user, r.kind, r.name),
                                                  stmt, '{42501}');
        END IF;
    END LOOP;
    RETURN QUERY SELECT * FROM atk.expect_all(pg_catalog.format('role_boundary:%s:internal_functions(%s)', session_user,
                                                                pg_catalog.cardinality(internal)),
                                              internal, '{42501}');
END $$;

\c - atk_reader
SELECT * FROM atk.role_boundaries('{}');
\c - atk_writer
SELECT * FROM atk.role_boundaries('{writer}');
\c - atk_admin
SELECT * FROM atk.role_boundaries('{writer}');
\c - atk_operator
SELECT * FROM atk.role_boundaries('{operator}');
