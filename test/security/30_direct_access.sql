-- Attack 3: the tables themselves, around the functions.
--
-- Writes: as every attack role, INSERT, UPDATE, DELETE and TRUNCATE on
-- every billing table (from the catalog) and setval on every sequence: each
-- refused with 42501, no row changed.  The operator's own log
-- (billing.cycle_run, billing.dunning_run: INSERT and UPDATE, and nextval
-- of their sequences) is granted to it by design and left out.
--
-- Reads: as the roles bound to tenant A (atk_writer, atk_reader), every
-- table with an account or entity (or row-level security) and every view,
-- filtered to tenant B's
-- rows (its entity, its accounts, or for the views that sum per currency
-- its currency): zero rows, where the owner sees some of B's rows in each
-- (a relation without B's rows would prove nothing, and fails).  The
-- bindings table is not readable at all.  The operator and atk_admin may
-- use every entity, and the tables without account or entity (the
-- catalog, settings) are shared by every entity: not read here.
\set ON_ERROR_STOP 1

-- B's rows of every scoped relation, as the owner counts them.
CREATE TABLE atk.b_rows AS
WITH rel AS (
    SELECT c.oid::regclass AS rel, c.relkind, c.relrowsecurity,
           array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                 AND NOT a.attisdropped) AS cols
    FROM pg_class c
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
    WHERE c.relkind IN ('r', 'v') AND c.oid <> 'billing.role_binding'::regclass
      -- the currencies ICU knows: shared
      AND c.oid <> 'billing.currencies'::regclass
)
SELECT rel::text AS rel,
       CASE WHEN rel IN ('billing.cycle_run'::regclass, 'billing.dunning_run'::regclass) THEN 'true'
            WHEN 'entity_id' = ANY (cols) THEN format('x.entity_id = %s', atk.id('B', 'entity'))
            WHEN 'account_id' = ANY (cols)
            THEN format('x.account_id IN (%s)', (SELECT string_agg(a.account_id::text, ', ') FROM billing.account a
                                                 WHERE a.entity_id = atk.id('B', 'entity')))
            WHEN 'currency' = ANY (cols) THEN format('x.currency::text = %L', (SELECT currency FROM atk.tenant WHERE tenant = 'B'))
       END AS filter
FROM rel
-- by the columns, not by whether row-level security is on: a table that
-- lost it must show here
WHERE relkind = 'v' OR relrowsecurity OR cols && ARRAY['account_id', 'entity_id'];
ALTER TABLE atk.b_rows ADD owner_rows bigint;
DO $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT * FROM atk.b_rows WHERE filter IS NOT NULL LOOP
        EXECUTE format('SELECT count(*) FROM %s x WHERE %s', r.rel, r.filter) INTO n;
        UPDATE atk.b_rows SET owner_rows = n WHERE rel = r.rel;
    END LOOP;
END $$;
GRANT SELECT ON atk.b_rows TO PUBLIC;

CREATE FUNCTION atk.direct_writes(operator_log_granted boolean DEFAULT false) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    stmts text[];
    logs constant regclass[] := ARRAY['billing.cycle_run'::regclass, 'billing.dunning_run'::regclass];
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel, c.relkind,
                    (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = 1) AS col
             FROM pg_class c
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
             WHERE c.relkind IN ('r', 'S') ORDER BY c.relkind, 1::text LOOP
        IF t.relkind = 'S' THEN
            stmts := ARRAY[format('SELECT pg_catalog.setval(%L, 1)', t.rel)];
            IF NOT (operator_log_granted AND t.rel IN ('billing.cycle_run_cycle_run_id_seq'::regclass,
                                                       'billing.dunning_run_dunning_run_id_seq'::regclass)) THEN
                stmts := stmts || format('SELECT pg_catalog.nextval(%L)', t.rel);
            END IF;
        ELSE
            stmts := ARRAY[format('DELETE FROM %s', t.rel), format('TRUNCATE %s', t.rel),
                           format('TRUNCATE %s CASCADE', t.rel)];
            IF NOT (operator_log_granted AND t.rel = ANY (logs)) THEN
                stmts := stmts || format('INSERT INTO %s DEFAULT VALUES', t.rel)
                               || format('INSERT INTO %s (%I) SELECT %I FROM %s', t.rel, t.col, t.col, t.rel)
                               || format('UPDATE %s SET %I = %I', t.rel, t.col, t.col);
            END IF;
        END IF;
        RETURN QUERY SELECT * FROM atk.expect_all(format('direct_write:%s:%s', session_user, t.rel), stmts, '{42501}');
    END LOOP;
END $$;

CREATE FUNCTION atk.other_tenant_rows() RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    n bigint;
BEGIN
    FOR r IN SELECT * FROM atk.b_rows ORDER BY rel LOOP
        IF r.filter IS NULL THEN
            RETURN QUERY SELECT * FROM atk.report(format('read_other_tenant:%s:%s', session_user, r.rel), false,
                r.rel || ' has no entity_id, account_id or currency: say in 30_direct_access.sql how its rows belong to a tenant');
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('SELECT pg_catalog.count(*) FROM %s x WHERE %s', r.rel, r.filter) INTO n;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT * FROM atk.report(format('read_other_tenant:%s:%s', session_user, r.rel), false,
                                                  SQLSTATE || ' ' || SQLERRM);
            CONTINUE;
        END;
        RETURN QUERY SELECT * FROM atk.report(format('read_other_tenant:%s:%s', session_user, r.rel),
            n = 0 AND r.owner_rows > 0,
            CASE WHEN r.owner_rows = 0 THEN format('tenant B has no rows in %s (%s): the setup must give it some', r.rel, r.filter)
                 ELSE format('%s of B''s %s rows visible (%s)', n, r.owner_rows, r.filter) END);
    END LOOP;
    RETURN QUERY SELECT * FROM atk.expect(format('read_other_tenant:%s:billing.role_binding', session_user),
                                          'SELECT * FROM billing.role_binding', '{42501}');
END $$;

\c - atk_writer
SELECT * FROM atk.direct_writes();
SELECT * FROM atk.other_tenant_rows();
\c - atk_reader
SELECT * FROM atk.direct_writes();
SELECT * FROM atk.other_tenant_rows();
\c - atk_admin
SELECT * FROM atk.direct_writes();
\c - atk_operator
SELECT * FROM atk.direct_writes(operator_log_granted => true);
