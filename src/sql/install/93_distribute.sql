-- Scaling out with Citus (README: Scaling out).  billing.distribute(), run
-- once on a Citus coordinator by the extension's owner, turns an installed
-- billing into a distributed one:
--   * every table with an account_id is distributed by account_id, all of
--     them co-located with billing.account, so that everything one account
--     owns (subscriptions, invoices, ledger, payments, dunning) lives in one
--     shard group and each money step of one account is a single-shard
--     transaction;
--   * every other table (the entities, the catalog, the number series, the
--     settings, the run logs) becomes a reference table, copied to every
--     node, so that joins from an account's rows to the catalog stay local;
--   * the row-level security policies are rewritten without subqueries
--     (Citus refuses those on distributed tables): the same rule, evaluated
--     by the functions row by row instead of once per query;
--   * the guarding triggers are kept (they run on the shards: Citus calls
--     triggers on distributed tables unsafe only because a trigger may reach
--     another shard; these read only the rows of their own account).
-- Without Citus it changes nothing and fails with 55000 and a hint.
-- Calling it again distributes only what is not yet distributed.

CREATE FUNCTION billing._citus_present() RETURNS boolean
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'citus')
$$;
COMMENT ON FUNCTION billing._citus_present() IS
    'internal: true when the citus extension is created in this database';

-- A change to the tables before they are distributed, made on this node and
-- on every worker: CREATE EXTENSION made the same tables there, and Citus
-- takes the workers' copies as they are for the tables it distributes.
CREATE FUNCTION billing._on_every_node(command text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    failed text;
BEGIN
    EXECUTE command;
    -- the names in the command are those of this function's search_path
    EXECUTE pg_catalog.concat('SELECT string_agg(w.nodename || '':'' || w.nodeport || '': '' || w.result, ''; '') ',
                              'FROM pg_catalog.', 'run_command_on_workers($1) w WHERE NOT w.success')
        INTO failed USING 'SET search_path = billing, pg_catalog, pg_temp; ' || command;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'billing.distribute(): % failed on %', command, failed
            USING ERRCODE = 'connection_failure';
    END IF;
END $$;
COMMENT ON FUNCTION billing._on_every_node(text) IS
    'internal: runs one statement here and on every Citus worker (billing.distribute()); raises when a worker fails';

-- The tables of the extension and what distribute() makes of them, in the
-- order it must make them: a table comes after every table it references.
CREATE FUNCTION billing.distribution_plan()
RETURNS TABLE (step integer, table_name regclass, kind text)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    done oid[] := '{}'::oid[];
    n integer := 0;
    progress boolean := true;
    t record;
BEGIN
    WHILE progress LOOP
        progress := false;
        FOR t IN
            SELECT c.oid,
                   EXISTS (SELECT FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped) AS owned
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                                       AND d.deptype = 'e'
            JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
            WHERE c.relkind = 'r' AND c.oid <> ALL (done)
              AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint f
                              WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid
                                AND f.confrelid <> ALL (done))
            ORDER BY c.relname
        LOOP
            n := n + 1;
            done := done || t.oid;
            progress := true;
            step := n;
            table_name := t.oid::regclass;
            kind := CASE WHEN t.owned THEN 'distributed' ELSE 'reference' END;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION billing.distribution_plan() IS
    'what billing.distribute() makes of each table of the extension, in order: distributed (by account_id, '
    'co-located with billing.account) or reference; runs without Citus';

CREATE FUNCTION billing.distribute() RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    p record;
    pol record;
    rel regclass;
    idx regclass;
    con name;
    def text;
    fks text[] := '{}'::text[];
    is_done boolean;
    missing text;
BEGIN
    IF NOT pg_catalog.pg_has_role(
            (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'billing'), 'USAGE') THEN
        RAISE EXCEPTION 'billing.distribute() is for the owner of the billing extension, not %', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT billing._citus_present() THEN
        RAISE EXCEPTION 'billing.distribute() needs Citus, and the citus extension is not created in database %',
            current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install Citus for this PostgreSQL, add citus to shared_preload_libraries, '
                         'CREATE EXTENSION citus on the coordinator and every worker, add the workers '
                         '(citus_add_node), then call billing.distribute() on the coordinator.';
    END IF;
    -- Citus's own functions and tables are named only in statements built
    -- at run time (EXECUTE of concat), so that this function is created and
    -- checked (plpgsql_check) where Citus is absent.
    EXECUTE pg_catalog.concat('SELECT NOT pg_catalog.', 'citus_is_coordinator()') INTO is_done;
    IF is_done THEN
        RAISE EXCEPTION 'billing.distribute() runs on the Citus coordinator, and this node is a worker'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- the triggers only guard the rows of their own account
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    -- one transaction that creates shards and then alters the tables
    -- (policies, foreign keys) must use one connection per node
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- The policies: Citus refuses subqueries in them.  The rules stay those
    -- of 95_security.sql, written as function calls.
    FOR pol IN
        SELECT pl.polrelid::regclass AS rel, pl.polname,
               EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pl.polrelid AND a.attname = 'entity_id' AND NOT a.attisdropped) AS has_entity,
               EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = pl.polrelid AND a.attname = 'account_id' AND NOT a.attisdropped) AS has_account,
               pl.polcmd
        FROM pg_catalog.pg_policy pl
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = pl.polrelid
                                   AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        WHERE pl.polname = 'entity_scope'
          AND pg_catalog.pg_get_expr(pl.polqual, pl.polrelid) ~* 'SELECT'
    LOOP
        PERFORM billing._on_every_node(format('DROP POLICY IF EXISTS %I ON %s', pol.polname, pol.rel));
        IF pol.polcmd = '*' THEN
            -- the run logs: only for roles that see every entity
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s USING (billing._acting_role_sees_all()) '
                           'WITH CHECK (billing._acting_role_sees_all())', pol.polname, pol.rel));
        ELSIF pol.has_entity THEN
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s FOR SELECT USING (billing._acting_role_sees_all() '
                           'OR entity_id = ANY (billing._acting_role_entities()))', pol.polname, pol.rel));
        ELSE
            PERFORM billing._on_every_node(format('CREATE POLICY %I ON %s FOR SELECT USING (billing._acting_role_sees_all() '
                           'OR billing._may_use_account(account_id))', pol.polname, pol.rel));
        END IF;
        RETURN NEXT format('policy %s on %s: without subqueries', pol.polname, pol.rel);
    END LOOP;
    -- The foreign keys between the tables are dropped while they are
    -- distributed and made again after: a reference table that a table not
    -- yet distributed refers to would make Citus convert that one into a
    -- local table of its metadata, which recreates its identity sequence,
    -- an object of the extension.  The constraints come back as they were
    -- (the distributed ones hold the account_id, so they stay in one shard).
    FOR rel, con, def IN EXECUTE pg_catalog.concat(
        'SELECT f.conrelid::regclass AS rel, f.conname, pg_catalog.pg_get_constraintdef(f.oid) AS def '
        'FROM pg_catalog.pg_constraint f '
        'WHERE f.contype = ''f'' '
        '  AND f.conrelid IN (SELECT x.table_name FROM billing.distribution_plan() x) '
        '  AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = f.conrelid) '
        'ORDER BY f.conrelid::regclass::text, f.conname')
    LOOP
        PERFORM billing._on_every_node(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', rel, con));
        fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', rel, con, def);
    END LOOP;
    -- A unique key of an account's table that does not hold the account_id
    -- would have to be checked across shards, which Citus cannot do: such a
    -- key becomes a plain index of the same columns (README: Scaling out
    -- says which ones and what guards them instead).
    FOR idx, rel, con, def IN EXECUTE pg_catalog.concat(
        'SELECT i.indexrelid::regclass AS idx, i.indrelid::regclass AS rel, c.conname, '
        '       pg_catalog.pg_get_indexdef(i.indexrelid) AS def '
        'FROM pg_catalog.pg_index i '
        'JOIN billing.distribution_plan() x ON x.table_name = i.indrelid AND x.kind = ''distributed'' '
        'LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid '
        'WHERE i.indisunique '
        '  AND NOT (SELECT a.attnum FROM pg_catalog.pg_attribute a '
        '           WHERE a.attrelid = i.indrelid AND a.attname = ''account_id'') = ANY (i.indkey::int2[]) '
        '  AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = i.indrelid) '
        'ORDER BY 1::text')
    LOOP
        IF con IS NOT NULL THEN
            PERFORM billing._on_every_node(format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', rel, con));
        ELSE
            PERFORM billing._on_every_node(format('DROP INDEX IF EXISTS %s', idx));
        END IF;
        PERFORM billing._on_every_node(pg_catalog.regexp_replace(def, '^CREATE UNIQUE INDEX', 'CREATE INDEX'));
        RETURN NEXT format('%s: unique across accounts, now a plain index', idx);
    END LOOP;
    -- The ledger's balance trigger probes billing.ledger_transaction and
    -- billing.account for the transactions and accounts of the entries; on
    -- a shard those rows are in the colocated shards, not there.  So the
    -- trigger checks the balance alone ('balance'), and foreign keys,
    -- which Citus keeps within an account's shard group, check the rest.
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = 'billing.ledger_entry'::regclass AND t.tgname = 'ledger_entry_balanced'
                 AND t.tgnargs = 0) THEN
        PERFORM billing._on_every_node('DROP TRIGGER ledger_entry_balanced ON billing.ledger_entry');
        PERFORM billing._on_every_node(
            'CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing.ledger_entry '
            'REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT '
            'EXECUTE FUNCTION billing._ledger_check_balance(''balance'')');
        fks := fks || 'ALTER TABLE billing.ledger_transaction ADD CONSTRAINT ledger_transaction_account_id_fkey '
                      'FOREIGN KEY (account_id) REFERENCES billing.account (account_id)'::text
                   || 'ALTER TABLE billing.ledger_entry ADD CONSTRAINT ledger_entry_account_id_txn_id_fkey '
                      'FOREIGN KEY (account_id, txn_id) REFERENCES billing.ledger_transaction (account_id, txn_id)'::text;
        RETURN NEXT 'trigger ledger_entry_balanced: the balance, and foreign keys for the transactions and accounts';
    END IF;
    -- The same for the guard that the account of an invoice without a
    -- subscription exists: on a shard it would query billing.account, not
    -- the colocated shard, so a foreign key takes its place.
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = 'billing.invoice'::regclass AND t.tgname = 'invoice_account_exists') THEN
        PERFORM billing._on_every_node('DROP TRIGGER invoice_account_exists ON billing.invoice');
        fks := fks || 'ALTER TABLE billing.invoice ADD CONSTRAINT invoice_account_id_fkey '
                      'FOREIGN KEY (account_id) REFERENCES billing.account (account_id)'::text;
        RETURN NEXT 'trigger invoice_account_exists: a foreign key';
    END IF;
    FOR p IN SELECT * FROM billing.distribution_plan() x ORDER BY x.step LOOP
        EXECUTE pg_catalog.concat('SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = $1)')
            INTO is_done USING p.table_name;
        CONTINUE WHEN is_done;
        IF p.kind = 'reference' THEN
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_reference_table($1)') USING p.table_name;
        ELSIF p.table_name = 'billing.account'::regclass THEN
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_distributed_table($1, ''account_id'')') USING p.table_name;
        ELSE
            EXECUTE pg_catalog.concat('SELECT pg_catalog.create_distributed_table($1, ''account_id'', colocate_with => ''billing.account'')')
                USING p.table_name;
        END IF;
        RETURN NEXT format('%s: %s', p.table_name, p.kind);
    END LOOP;
    FOR i IN 1 .. coalesce(pg_catalog.array_length(fks, 1), 0) LOOP
        EXECUTE fks[i];
    END LOOP;
    -- what is left undistributed would be a local table a distributed
    -- query cannot join
    EXECUTE pg_catalog.concat('SELECT string_agg(p.table_name::text, '', '') FROM billing.distribution_plan() p '
            'WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition x WHERE x.logicalrelid = p.table_name)')
        INTO missing;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'billing.distribute() left tables undistributed: %', missing
            USING ERRCODE = 'internal_error';
    END IF;
END $$;
COMMENT ON FUNCTION billing.distribute() IS
    'on a Citus coordinator: distributes the tables that hold an account_id by account_id, co-located with '
    'billing.account, makes the others reference tables, rewrites the row-level security policies without '
    'subqueries; returns what it did; again: only what is left; without Citus: 55000 and nothing changed';
