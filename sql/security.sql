--
-- Roles, privileges and row-level security: nothing for PUBLIC,
-- billing.grant_roles, SECURITY DEFINER functions with a pinned search_path
-- and an entity check each, entity bindings, row-level security.
--
-- A database of its own; the roles are the cluster's, so they carry the
-- regress_ prefix and are dropped at the end.
CREATE DATABASE security_regress;
\c security_regress
\i test/regress_own_database.sql
\i test/regress_digest.sql

-- The extension's functions, procedures and aggregates.
CREATE VIEW ext_functions AS
SELECT p.oid, p.oid::regprocedure AS function, p.proname, p.prokind, p.provolatile, p.prosecdef, p.proconfig,
       p.prosrc, p.proacl, l.lanname
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing';
CREATE VIEW ext_relations AS
SELECT c.oid::regclass AS rel, c.relkind, c.relrowsecurity, c.reloptions, c.relacl, c.relowner
FROM pg_class c
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing';
GRANT SELECT ON ext_functions, ext_relations TO PUBLIC;

-- 1. Nothing is granted to PUBLIC: not the schema, no function, no table.
SELECT count(*) AS public_schema_grants FROM pg_namespace n, aclexplode(n.nspacl) a
WHERE n.nspname = 'billing' AND a.grantee = 0;
SELECT count(*) AS public_function_grants FROM ext_functions f
WHERE f.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(f.proacl) a WHERE a.grantee = 0);
SELECT count(*) AS public_table_grants FROM ext_relations r, aclexplode(r.relacl) a WHERE a.grantee = 0;

-- 2. temp_schema_hijack_closed_by_catalog: every function and trigger
-- function in SQL or PL/pgSQL pins search_path with pg_temp explicitly
-- last; otherwise PostgreSQL searches the caller's temporary schema first
-- for types and relations, and a SECURITY DEFINER body would run the
-- caller's pg_temp.text domain (its CHECK, their function) as the owner.
-- The only routines without one are the procedures that COMMIT (a
-- procedure with a SET clause cannot); they are SECURITY INVOKER, so a
-- caller's temporary objects run with the caller's own rights, and they
-- name every object with its schema.  C functions resolve no names.
SELECT function, prokind, prosecdef FROM ext_functions
WHERE lanname <> 'c' AND prokind <> 'a'
  AND NOT coalesce(proconfig && ARRAY['search_path=billing, pg_catalog, pg_temp', 'search_path=pg_catalog, pg_temp'],
                   false)
ORDER BY 1::text;
-- and no C function is SECURITY DEFINER
SELECT function FROM ext_functions WHERE lanname = 'c' AND prosecdef;

-- 3. Every SECURITY DEFINER function checks the acting role first, except
-- price_amount (the catalog, shared) and _default_dunning_policy (it reads
-- the default policy, or creates the standard one through
-- create_dunning_policy, which checks).  The helpers of the checks and of
-- row-level security are C and need no SECURITY DEFINER (src/security.c).
SELECT function FROM ext_functions WHERE prosecdef AND prosrc !~ 'billing\._(authorize_\w+|may_use_account)\('
ORDER BY 1::text;
-- and every function of role_functions() but the procedures and the DBA's
-- is SECURITY DEFINER
SELECT f.kind, f.function FROM billing.role_functions() f JOIN ext_functions e ON e.oid = f.function
WHERE e.prosecdef <> (f.kind IN ('reader', 'writer', 'operator') AND e.prokind = 'f') ORDER BY 1, 2::text;

-- 4. Every function that can write (volatile) is classified in
-- role_functions(); those that are not are granted to every role, so a new
-- writing function without an entry fails here.
SELECT function FROM ext_functions
WHERE proname !~ '^_' AND provolatile = 'v' AND prokind <> 'a'
  AND oid NOT IN (SELECT f.function FROM billing.role_functions() f)
ORDER BY 1::text;

-- 5. Row-level security on every table that carries account_id or
-- entity_id, and on the cycle log; every view reads with the reader's rights.
SELECT r.rel, r.relrowsecurity, (SELECT string_agg(p.polname || ':' || p.polcmd::text, ',') FROM pg_policy p WHERE p.polrelid = r.rel) AS policies
FROM ext_relations r
WHERE r.relkind = 'r' AND (r.relrowsecurity OR EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = r.rel
                                                          AND a.attname IN ('account_id', 'entity_id')))
ORDER BY 1::text;
SELECT rel FROM ext_relations WHERE relkind = 'v' AND NOT coalesce('security_invoker=true' = ANY (reloptions), false);

-- ---------------------------------------------------------------------------
-- 6. grant_roles creates the three roles (NOLOGIN) and can be called again.
SELECT billing.grant_roles('regress_billing_writer', 'regress_billing_operator', 'regress_billing_reporting');
SELECT billing.grant_roles('regress_billing_writer', 'regress_billing_operator', 'regress_billing_reporting');
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles
WHERE rolname LIKE 'regress_billing_%' ORDER BY 1;
SELECT role_name, entity_id FROM billing.role_binding ORDER BY 1;
SELECT billing_test_error('SELECT billing.grant_roles(NULL, ''x'', ''y'')');
SELECT billing_test_error('SELECT billing.grant_roles(''x'', '''', ''y'')');
-- no table privilege but SELECT (and the operator's log)
SELECT DISTINCT a.privilege_type, pg_get_userbyid(a.grantee) AS grantee
FROM ext_relations r, aclexplode(r.relacl) a
WHERE pg_get_userbyid(a.grantee) LIKE 'regress_%' AND a.privilege_type <> 'SELECT'
ORDER BY 1, 2;
SELECT count(*) AS reporting_reads_bindings FROM ext_relations r, aclexplode(r.relacl) a
WHERE r.rel = 'billing.role_binding'::regclass AND a.grantee <> r.relowner;
-- who may execute what beyond the functions every role gets
SELECT f.kind,
       has_function_privilege('regress_billing_reporting', f.function, 'EXECUTE') AS reporting,
       has_function_privilege('regress_billing_writer', f.function, 'EXECUTE') AS writer,
       has_function_privilege('regress_billing_operator', f.function, 'EXECUTE') AS operator,
       count(*)
FROM billing.role_functions() f GROUP BY 1, 2, 3, 4 ORDER BY 1;
SELECT count(*) AS internal_functions_granted FROM ext_functions f
WHERE f.proname ~ '^_' AND f.proname !~ '^_acting_role_'
  AND f.oid NOT IN (SELECT x.function FROM billing.role_functions() x)
  AND (has_function_privilege('regress_billing_reporting', f.oid, 'EXECUTE')
       OR has_function_privilege('regress_billing_writer', f.oid, 'EXECUTE'));

-- ---------------------------------------------------------------------------
-- Two sellers, each with a customer who has an invoice, a payment and a
-- method on file.
SELECT billing.create_billing_entity('Acme', 'USD') AS acme \gset
SELECT billing.create_billing_entity('Globex', 'EUR') AS globex \gset
SELECT billing.create_account(:acme, 'Alice') AS alice \gset
SELECT billing.create_account(:globex, 'Bruno') AS bruno \gset
SELECT billing.create_product('Pro') AS product \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS usd \gset
SELECT billing.create_price(:product, 'EUR', 20.00) AS eur \gset
SELECT billing.subscribe(:alice, :usd) AS alice_sub \gset
SELECT billing.subscribe(:bruno, :eur) AS bruno_sub \gset
SELECT billing.apply_payment(:alice, '4.00 USD', 'cash', idempotency_key => 'a-1') AS alice_pay \gset
SELECT billing.apply_payment(:bruno, '5.00 EUR', 'cash', idempotency_key => 'b-1') AS bruno_pay \gset
SELECT billing.add_payment_method(:bruno, 'card', 'pm_bruno') IS NOT NULL AS method;
SELECT invoice_id AS alice_inv FROM billing.invoice WHERE account_id = :alice \gset
SELECT invoice_id AS bruno_inv FROM billing.invoice WHERE account_id = :bruno \gset

-- Login roles of the application and of a BI tool, each for Acme only; a
-- finance role that sees both.
CREATE ROLE regress_app_acme LOGIN IN ROLE regress_billing_writer;
CREATE ROLE regress_bi_acme LOGIN IN ROLE regress_billing_reporting;
CREATE ROLE regress_finance LOGIN IN ROLE regress_billing_reporting;
SELECT billing.bind_role_to_entity('regress_app_acme', :acme);
SELECT billing.bind_role_to_entity('regress_bi_acme', :acme);
SELECT billing.bind_role_to_entity('regress_finance', NULL);
SELECT billing_test_error('SELECT billing.bind_role_to_entity(''regress_nobody'', 1)');
SELECT billing_test_error('SELECT billing.bind_role_to_entity(''regress_app_acme'', 999)');
SELECT billing_test_error('SELECT billing.bind_role_to_entity(NULL, 1)');

-- What each role sees of every table that row-level security scopes,
-- against what belongs to Acme (counted as the owner).
CREATE FUNCTION visible_rows() RETURNS TABLE (tbl text, visible bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT rel FROM ext_relations WHERE relkind IN ('r', 'v') ORDER BY rel::text LOOP
        IF t = 'billing.role_binding'::regclass THEN
            CONTINUE;
        END IF;
        RETURN QUERY EXECUTE format('SELECT %L::text, count(*) FROM %s', t::text, t);
    END LOOP;
END $$;
CREATE TEMP TABLE seen_by_owner AS SELECT * FROM visible_rows();
-- What belongs to an entity, counted as the owner: rows of its accounts;
-- for the views that sum per currency, rows of its currency (the two
-- sellers below bill in different currencies).
CREATE FUNCTION rows_of_entity(entity bigint) RETURNS TABLE (tbl text, visible bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    k char;
    cols text[];
BEGIN
    FOR t, k, cols IN SELECT r.rel, r.relkind, array(SELECT attname::text FROM pg_attribute WHERE attrelid = r.rel AND attnum > 0)
                      FROM ext_relations r WHERE r.relkind = 'v' OR r.relrowsecurity ORDER BY r.rel::text LOOP
        RETURN QUERY EXECUTE format('SELECT %L::text, count(*) FROM %s x WHERE %s', t::text, t,
            CASE WHEN t IN ('billing.cycle_run'::regclass, 'billing.dunning_run'::regclass) THEN 'false'
                 WHEN k = 'r' AND 'entity_id' = ANY (cols) THEN format('x.entity_id = %s', entity)
                 WHEN 'account_id' = ANY (cols)
                 THEN format('x.account_id IN (SELECT account_id FROM billing.account WHERE entity_id = %s)', entity)
                 WHEN 'currency' = ANY (cols)
                 THEN format('x.currency = (SELECT default_currency FROM billing.billing_entity WHERE entity_id = %s)', entity)
                 ELSE 'true' END);
    END LOOP;
END $$;
CREATE TEMP TABLE acme_rows AS SELECT * FROM rows_of_entity(:acme);
GRANT SELECT ON seen_by_owner, acme_rows TO PUBLIC;
-- currencies is ICU's list, not tenant data: its length follows the ICU
-- version, so it is compared with the whole list instead
SELECT tbl, visible FROM seen_by_owner WHERE tbl <> 'currencies' ORDER BY 1;
SELECT visible = (SELECT count(*) FROM billing.currencies) AS owner_sees_every_currency
FROM seen_by_owner WHERE tbl = 'currencies';

-- Every write to every table, as the role at hand.
CREATE FUNCTION try_writes() RETURNS TABLE (tbl text, verb text, result text)
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    col name;
BEGIN
    FOR t IN SELECT rel FROM ext_relations WHERE relkind = 'r' ORDER BY rel::text LOOP
        SELECT attname INTO col FROM pg_attribute WHERE attrelid = t AND attnum = 1;
        tbl := t::text;
        verb := 'insert'; result := billing_test_error(format('INSERT INTO %s DEFAULT VALUES', t)); RETURN NEXT;
        verb := 'update'; result := billing_test_error(format('UPDATE %s SET %I = %I', t, col, col)); RETURN NEXT;
        verb := 'delete'; result := billing_test_error(format('DELETE FROM %s', t)); RETURN NEXT;
        verb := 'truncate'; result := billing_test_error(format('TRUNCATE %s', t)); RETURN NEXT;
    END LOOP;
END $$;

-- 7. The BI role of Acme sees Acme's rows of every scoped table, and all of
-- the shared catalog.
SET ROLE regress_bi_acme;
SELECT billing.acting_role();
SELECT v.tbl, v.visible, coalesce(a.visible, o.visible) AS expected
FROM visible_rows() v JOIN seen_by_owner o USING (tbl) LEFT JOIN acme_rows a USING (tbl)
WHERE v.visible <> coalesce(a.visible, o.visible);
SELECT count(*) AS tables_checked FROM visible_rows();
SELECT account_id, name FROM billing.account;
SELECT invoice_id, account_id, total FROM billing.invoice;
SELECT account_id, kind, amount FROM billing.account_statement_lines ORDER BY txn_id;
-- its reads through functions: its account yes, the other seller's no
SELECT billing.account_balance(:alice);
SELECT billing_test_error(format('SELECT billing.account_balance(%s)', :bruno));
SELECT billing_test_error(format('SELECT * FROM billing.account_statement(%s, ''2026-01-01'', ''2026-12-31'')', :bruno));
SELECT billing_test_error(format('SELECT billing.invoice_document(%s)', :bruno_inv));
SELECT billing_test_error(format('SELECT * FROM billing.preview_invoice(%s)', :bruno));
SELECT length(billing.invoice_document(:alice_inv)) > 0 AS document;
SELECT count(*) AS preview_lines FROM billing.preview_invoice(:alice);
-- an account that does not exist looks the same as another seller's
SELECT billing_test_error('SELECT billing.account_balance(999999)');
SELECT * FROM billing.check_invariants();
SELECT '1.00 USD'::billing.amount + '2.00 USD' AS amounts_work;

RESET ROLE;
-- 8. The reporting role cannot write: no table, no write function.
CREATE TEMP TABLE before AS SELECT * FROM billing_digest();
GRANT SELECT ON before TO PUBLIC;
SET ROLE regress_bi_acme;
-- every write to every table: permission denied (42501), nothing else
SELECT verb, left(result, 5) AS sqlstate, count(*) FROM try_writes() GROUP BY 1, 2 ORDER BY 1, 2;
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, ''1.00 USD'', ''cash'')', :alice));
SELECT billing_test_error(format('SELECT billing.void_invoice(%s, %s)', :alice, :alice_inv));
SELECT billing_test_error('CALL billing.run_cycle()');
SELECT billing_test_error('SELECT billing.create_product(''x'')');
SELECT billing_test_error('SELECT billing.grant_roles()');
SELECT billing_test_error('SELECT * FROM billing.role_binding');
RESET ROLE;
SELECT * FROM before EXCEPT SELECT * FROM billing_digest();

SELECT subscription_item_id AS bruno_item FROM billing.subscription_item WHERE subscription_id = :bruno_sub \gset

-- 9. The application role of Acme cannot change a table but through the
-- functions, and the functions only for Acme.
SET ROLE regress_app_acme;
SELECT verb, left(result, 5) AS sqlstate, count(*) FROM try_writes() GROUP BY 1, 2 ORDER BY 1, 2;
SELECT billing_test_error(format('UPDATE billing.invoice SET status = ''void'' WHERE invoice_id = %s', :alice_inv));
SELECT billing_test_error(format('INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, description) VALUES (%s, ''payment'', ''2026-01-01'', ''x'')', :alice));
SELECT billing_test_error('DELETE FROM billing.ledger_entry');
-- Bruno is Globex's: every function refuses him, whatever it does
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, ''1.00 EUR'', ''cash'')', :bruno));
SELECT billing_test_error(format('SELECT billing.refund_payment(%s, %s)', :bruno, :bruno_pay));
SELECT billing_test_error(format('SELECT billing.record_chargeback(%s, %s)', :bruno, :bruno_pay));
SELECT billing_test_error(format('SELECT billing.void_invoice(%s, %s)', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT billing.write_off_invoice(%s, %s)', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT billing.finalize_invoice(%s, %s)', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT billing.add_invoice_item(%s, ''1.00 EUR'', ''x'', invoice_now => true)', :bruno));
SELECT billing_test_error(format('SELECT billing.remove_invoice_item(%s, %s, 1)', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT billing.set_account_draft_days(%s, 1)', :bruno));
SELECT billing_test_error(format('SELECT billing.set_entity_draft_days(%s, 1)', :globex));
SELECT billing_test_error(format('SELECT billing.issue_credit_note(%s, %s, ''1.00 EUR'')', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT * FROM billing.create_installment_plan(%s, %s, 2)', :bruno, :bruno_inv));
SELECT billing_test_error(format('SELECT billing.cancel_subscription(%s, %s)', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.pause_subscription(%s, %s)', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.resume_subscription(%s, %s)', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.change_subscription(%s, %s, quantity => 2)', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.apply_coupon(%s, %s, ''X'')', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.add_subscription_item(%s, %s, %s)', :bruno, :bruno_sub, :eur));
SELECT billing_test_error(format('SELECT billing.remove_subscription_item(%s, %s)', :bruno, :bruno_item));
SELECT billing_test_error(format('SELECT billing.schedule_change(%s, %s, ''2026-06-01'', quantity => 2)', :bruno, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.cancel_scheduled_change(%s, %s)', :bruno, :bruno_item));
-- Acme's own account with Globex's subscription or item: not found, nothing told
SELECT billing_test_error(format('SELECT billing.add_subscription_item(%s, %s, %s)', :alice, :bruno_sub, :usd));
SELECT billing_test_error(format('SELECT billing.remove_subscription_item(%s, %s)', :alice, :bruno_item));
SELECT billing_test_error(format('SELECT billing.schedule_change(%s, %s, ''2026-06-01'', quantity => 2)', :alice, :bruno_sub));
SELECT billing_test_error(format('SELECT billing.cancel_scheduled_change(%s, %s)', :alice, :bruno_item));
SELECT billing_test_error(format('SELECT billing.subscribe(%s, %s)', :bruno, :eur));
SELECT billing_test_error(format('SELECT billing.record_usage(%s, 1, 1, ''k'')', :bruno));
SELECT billing_test_error(format('SELECT billing.record_usage_batch(ARRAY[%s], ''{1}'', ''{1}'', ''{k}'')', :bruno));
SELECT billing_test_error(format('SELECT billing.update_account(%s, name => ''Mallory'')', :bruno));
SELECT billing_test_error(format('SELECT billing.set_early_payment_discount(%s, 2, 10)', :bruno));
SELECT billing_test_error(format('SELECT billing.add_payment_method(%s, ''card'', ''tok'')', :bruno));
SELECT billing_test_error(format('SELECT billing.remove_payment_method(%s, 1)', :bruno));
SELECT billing_test_error(format('SELECT billing.create_account(%s, ''Mallory'')', :globex));
SELECT billing_test_error(format('SELECT billing.update_billing_entity(%s, legal_name => ''Mallory'')', :globex));
-- a NULL entity is refused like another entity's, not let through
SELECT billing_test_error('SELECT billing.create_account(NULL, ''Mallory'')');
SELECT billing_test_error('SELECT billing.set_entity_draft_days(NULL, 5)');
SELECT billing_test_error('SELECT billing.dashboard_html(NULL)');
SELECT billing_test_error(format('SELECT billing.set_dunning_policy(%s, NULL)', :bruno));
SELECT billing_test_error(format('SELECT billing.close_dunning(%s, %s)', :bruno, :bruno_inv));
SELECT billing_test_error('SELECT billing.create_dunning_policy(''lenient'')');
SELECT billing_test_error('SELECT billing.set_price_change_notice_days(10)');
-- the shared catalog and settings need a role bound to every entity
SELECT billing_test_error('SELECT billing.create_billing_entity(''Mine'', ''USD'')');
SELECT billing_test_error('SELECT billing.create_product(''x'')');
SELECT billing_test_error(format('SELECT billing.update_product(%s, name => ''x'')', :product));
SELECT billing_test_error(format('SELECT billing.create_price(%s, ''USD'', 1)', :product));
SELECT billing_test_error(format('SELECT billing.update_price(%s, active => false)', :usd));
SELECT billing_test_error(format('SELECT billing.migrate_price(%s, %s)', :usd, :eur));
SELECT billing_test_error('SELECT billing.create_tax_rate(''VAT'', 20)');
SELECT billing_test_error('SELECT billing.create_coupon(''X'', ''once'', 10)');
SELECT billing_test_error('SELECT billing.set_collection_retry_days(''{1}'')');
-- and operators' work is not the application's
SELECT billing_test_error('CALL billing.run_cycle()');
SELECT billing_test_error('CALL billing.run_dunning()');
SELECT billing_test_error('SELECT * FROM billing.claim_collection_attempts(''w'')');
SELECT billing_test_error(format('SELECT billing.report_collection_result(%s, 1, true)', :bruno));
SELECT billing_test_error('SELECT * FROM billing.claim_deliveries(''w'', ''{email}'')');
SELECT billing_test_error(format('SELECT billing.finish_delivery(%s, 1, ''email'', ''w'', ''delivered'')', :bruno));
SELECT billing_test_error(format('SELECT * FROM billing.delivery_email(%s, 1)', :bruno));
RESET ROLE;
SELECT * FROM before EXCEPT SELECT * FROM billing_digest();

-- Acme's own work goes through.
SET ROLE regress_app_acme;
SELECT billing.create_account(:acme, 'Anna') AS anna \gset
SELECT billing.subscribe(:anna, :usd) IS NOT NULL AS subscribed;
SELECT billing.apply_payment(:anna, '10.00 USD', 'card', idempotency_key => 'anna-1') IS NOT NULL AS paid;
SELECT billing.issue_credit_note(:alice, :alice_inv, '1.00 USD', 'credit_balance') IS NOT NULL AS credited;
SELECT billing.update_billing_entity(:acme, address => 'Main St 1');
SELECT account_id, name FROM billing.account ORDER BY 1;
SELECT account_id, status, amount_due FROM billing.invoice ORDER BY invoice_id;
-- the outbox consumer marks only its own entity's events
SELECT count(*) AS acme_events FROM billing.outbox WHERE processed_at IS NULL;
SELECT billing.mark_events_done(ARRAY(SELECT event_id FROM billing.outbox)) AS marked;
RESET ROLE;
SELECT a.entity_id, count(*) FILTER (WHERE o.processed_at IS NULL) AS pending, count(*) AS events
FROM billing.outbox o JOIN billing.account a USING (account_id) GROUP BY 1 ORDER BY 1;
SELECT * FROM billing.check_invariants();

-- 10. The application's login session (session_user) may SET ROLE only to
-- roles it is a member of, and its group role, bound to nothing, narrows
-- what it may use to nothing.
SET SESSION AUTHORIZATION regress_app_acme;
SELECT session_user, billing.acting_role();
SELECT billing_test_error('SET ROLE regress_finance');
SET ROLE regress_billing_writer;
SELECT session_user, billing.acting_role(), current_user;
SELECT count(*) AS accounts FROM billing.account;
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, ''1.00 USD'', ''cash'')', :alice));
RESET ROLE;
SELECT count(*) AS accounts FROM billing.account;
RESET SESSION AUTHORIZATION;

-- 11. Bindings are privileges: a member inherits its group's (a finance
-- team role bound to every entity), and unbinding takes them back.
CREATE ROLE regress_analyst LOGIN IN ROLE regress_finance;
SET ROLE regress_analyst;
SELECT name FROM billing.account ORDER BY 1;
SELECT count(*) AS cycle_runs_visible FROM billing.cycle_run;
RESET ROLE;
SELECT billing.unbind_role_from_entity('regress_finance', NULL);
SELECT billing.unbind_role_from_entity('regress_finance', NULL);
SET ROLE regress_analyst;
SELECT count(*) AS accounts FROM billing.account;
RESET ROLE;
-- A role with NOINHERIT membership has none of its group's privileges,
-- bindings included, until it sets the role.
CREATE ROLE regress_noinherit LOGIN NOINHERIT IN ROLE regress_bi_acme;
SET ROLE regress_noinherit;
SELECT billing_test_error('SELECT count(*) FROM billing.account');
SET ROLE regress_bi_acme;
SELECT count(*) AS accounts FROM billing.account;
RESET ROLE;
-- A role with BYPASSRLS may use every entity, as a superuser may.
CREATE ROLE regress_bypass BYPASSRLS IN ROLE regress_billing_writer;
SET ROLE regress_bypass;
SELECT billing._acting_role_sees_all() AS bypass_sees_all, billing._acting_role_entities() AS bypass_entities;
SELECT billing.account_balance(:bruno) IS NOT NULL AS reads_globex;
RESET ROLE;
-- and a superuser's bound entities are every entity some role is bound to
SELECT billing._acting_role_entities() = (SELECT array_agg(DISTINCT b.entity_id ORDER BY b.entity_id)
                                          FROM billing.role_binding b JOIN pg_roles r ON r.rolname = b.role_name
                                          WHERE b.entity_id IS NOT NULL) AS superuser_entities;
-- A binding kept after its role was dropped binds nobody, and a role bound
-- to nothing may use no account, NULL or not.
CREATE ROLE regress_gone;
SELECT billing.bind_role_to_entity('regress_gone', :globex);
DROP ROLE regress_gone;
SELECT role_name, entity_id = :globex AS globex FROM billing.role_binding WHERE role_name = 'regress_gone';
SET ROLE regress_bi_acme;
SELECT billing._acting_role_sees_all() AS bi_sees_all, billing._acting_role_entities() = ARRAY[:acme]::bigint[] AS bi_acme_only;
RESET ROLE;
SET ROLE regress_app_acme;
SELECT billing_test_error('SELECT billing.apply_payment(NULL, ''1.00 USD'', ''cash'')');
RESET ROLE;
SET ROLE regress_billing_writer;
SELECT billing._acting_role_entities() AS writer_entities;
SELECT billing_test_error(format('SELECT billing.apply_payment(%s, ''1.00 USD'', ''cash'')', :alice));
RESET ROLE;
SELECT billing.unbind_role_from_entity('regress_gone', :globex) AS unbound;

-- 12. The operator runs the cycle (a procedure with its rights: it writes
-- its log and calls the SECURITY DEFINER batches) and the collection queue,
-- for every entity; it writes nothing else itself.
SET billing.clock = '2026-02-01 12:00+00';
SET ROLE regress_billing_operator;
CALL billing.run_cycle();
SELECT status, subscriptions, invoices FROM billing.cycle_run;
SELECT count(*) AS claimed FROM billing.claim_collection_attempts('worker-1');
CALL billing.run_dunning();
SELECT status FROM billing.dunning_run;
SELECT verb, left(result, 5) AS sqlstate, count(*) FROM try_writes()
WHERE tbl NOT IN ('billing.cycle_run'::regclass::text, 'billing.dunning_run'::regclass::text) GROUP BY 1, 2 ORDER BY 1, 2;
RESET ROLE;
SELECT account_id, count(*) AS invoices FROM billing.invoice GROUP BY 1 ORDER BY 1;
SELECT * FROM billing.check_invariants();

-- An operator whose binding to every entity was taken away cannot run it.
SELECT billing.unbind_role_from_entity('regress_billing_operator', NULL);
SET ROLE regress_billing_operator;
SELECT billing_test_error('CALL billing.run_cycle()');
RESET ROLE;

-- 13. temp_schema_hijack_runs_nothing_as_owner: the writer and the
-- reporting role create types in their temporary schema named like
-- pg_catalog's, whose CHECK runs their own function, and call the SECURITY
-- DEFINER functions whose bodies use those types.  With pg_temp last in
-- every routine's search_path, billing's bodies never resolve to them: the
-- function never runs, least of all as the owner.
SET billing.clock = '2026-02-02 12:00+00';
SELECT i.invoice_id AS anna_inv FROM billing.invoice i WHERE i.account_id = :anna ORDER BY 1 LIMIT 1 \gset
SET ROLE regress_app_acme;
CREATE TEMP TABLE hijack_log (who name, fn text);
CREATE FUNCTION pg_temp.hijack(fn text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.hijack_log VALUES (current_user, fn);
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.hijack('text'));
CREATE DOMAIN pg_temp.date AS pg_catalog.date CHECK (pg_temp.hijack('date'));
CREATE DOMAIN pg_temp.numeric AS pg_catalog.numeric CHECK (pg_temp.hijack('numeric'));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.hijack('jsonb'));
CREATE TEMP TABLE account (account_id bigint, entity_id bigint);
SELECT billing.apply_payment(:anna, '2.00 USD', 'cash', idempotency_key => 'hijack-1') IS NOT NULL AS paid;
SELECT billing.account_balance(:anna) IS NOT NULL AS balance;
SELECT length(billing.invoice_document(:anna_inv)) > 0 AS document;
SELECT count(*) > 0 AS statement_lines FROM billing.account_statement(:anna, '2026-01-01', '2026-03-01');
RESET ROLE;
SELECT who, fn FROM pg_temp.hijack_log;
SELECT rolsuper AS writer_became_superuser FROM pg_roles WHERE rolname = 'regress_app_acme';
DISCARD TEMP;

-- 14. copy_wrapped_call_posts_like_any_other: a call wrapped in COPY
-- (SELECT ...) TO STDOUT does what the plain call does; nothing in billing
-- decides by the statement's text.
SET ROLE regress_app_acme;
COPY (SELECT billing.subscribe(:anna, :usd) IS NOT NULL) TO STDOUT;
COPY (SELECT billing.apply_payment(:anna, '3.00 USD', 'cash', idempotency_key => 'copy-1') IS NOT NULL) TO STDOUT;
RESET ROLE;
SELECT i.status, (SELECT count(*) FROM billing.ledger_transaction t
                  WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id AND t.kind = 'invoice_finalized')
                 AS posted
FROM billing.invoice i WHERE i.account_id = :anna AND billing.to_numeric(i.total) > 0 ORDER BY i.invoice_id;
SELECT * FROM billing.check_invariants();

-- 15. many_accounts_one_query: a read that meets more accounts than the
-- policies probe one by one (they then read the role's accounts in one
-- scan) still sees exactly the bound entity's rows, in one statement and
-- for one account at a time.
SELECT count(billing.subscribe(billing.create_account(e.entity_id, 'many ' || e.entity_id || '-' || i), e.price))
FROM (VALUES (:acme::bigint, :usd::bigint), (:globex, :eur)) e(entity_id, price), generate_series(1, 150) i;
CREATE TEMP TABLE many AS
SELECT s.account_id, a.entity_id = :acme AS acme FROM billing.subscription s JOIN billing.account a USING (account_id);
GRANT SELECT ON many TO PUBLIC;
SET ROLE regress_bi_acme;
SELECT (SELECT count(*) FROM billing.subscription) AS seen,
       (SELECT count(*) FROM many WHERE acme) AS acme_subscriptions,
       (SELECT count(*) FROM billing.subscription s WHERE s.account_id IN (SELECT account_id FROM many WHERE NOT acme))
           AS other_seen,
       (SELECT count(*) FROM billing.subscription_item i JOIN billing.subscription s USING (account_id, subscription_id))
           AS items_joined;
SELECT count(*) FILTER (WHERE m.acme AND x.n = 1) AS acme_one_by_one, count(*) FILTER (WHERE NOT m.acme AND x.n = 0)
           AS others_hidden_one_by_one, count(*) AS accounts
FROM many m CROSS JOIN LATERAL (SELECT count(*) AS n FROM billing.subscription s WHERE s.account_id = m.account_id) x;
RESET ROLE;
DROP TABLE many;

-- The roles go; the database first (it holds their privileges).
\c contrib_regression
DROP DATABASE security_regress;
DROP ROLE regress_analyst, regress_noinherit, regress_bypass, regress_app_acme, regress_bi_acme, regress_finance,
          regress_billing_writer, regress_billing_operator, regress_billing_reporting;
