-- Roles, entity bindings and row-level security.  README,
-- Operations: "Roles and row-level security".
--
-- The model:
--   * Nothing is granted to PUBLIC (00_schema.sql, 99_privileges.sql).  The
--     DBA calls billing.grant_roles(writer, operator, reporting), which
--     creates the three roles (NOLOGIN) if they are missing and grants them
--     what billing.role_functions() lists; the extension never creates a
--     role by itself.
--   * No role but the owner may INSERT, UPDATE or DELETE a billing table
--     (the operator may write billing.cycle_run, the log its procedure
--     keeps).  Every function that writes is SECURITY DEFINER, pins
--     search_path, and checks first that the role acting may use the
--     account, entity or invoice it names (billing._authorize_*).
--   * A role may use the billing entities bound to it, and to every role
--     whose privileges it has (membership with INHERIT), in
--     billing.role_binding; entity_id NULL there means every entity.
--     Superusers, roles with BYPASSRLS and the extension's owner may use
--     every entity.  An unbound role may use none: the default is closed.
--   * Direct reads (the reporting role, BI tools, the application's own
--     SELECTs) go through row-level security on every table that carries
--     account_id or entity_id, with the same rule; the views are
--     security_invoker so that their tables' policies apply to the reader.
--
-- Who acts: inside a SECURITY DEFINER function current_user is the owner,
-- so the functions ask for the role the session acts as instead: the role of
-- SET ROLE, or the session user when there is none.  SET ROLE is checked by
-- the server against the session user's memberships and cannot be run
-- inside a SECURITY DEFINER function, so a caller cannot name a role it may
-- not become; and a role it may become (a group role, say) gives it only
-- that role's bindings.  Row-level security uses the same rule, so a
-- function and a SELECT always agree on what a role may see.

CREATE TABLE billing.role_binding (
    role_name  name NOT NULL CHECK (role_name <> ''),
    entity_id  bigint REFERENCES billing.billing_entity,
    created_at timestamptz NOT NULL DEFAULT billing.now(),
    UNIQUE NULLS NOT DISTINCT (role_name, entity_id)
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.role_binding ADD CONSTRAINT role_binding_no_card_number CHECK (
    billing._no_card_number(role_name::text, 'billing.role_binding.role_name'));
COMMENT ON TABLE billing.role_binding IS
    'which billing entities a role (and every role that has its privileges) may use; entity_id NULL: every entity. '
    'Written by billing.bind_role_to_entity and billing.unbind_role_from_entity';
COMMENT ON COLUMN billing.role_binding.role_name IS
    'a role name, kept as text so that pg_dump and pg_upgrade keep it; unbind a role before dropping it';
SELECT pg_catalog.pg_extension_config_dump('billing.role_binding', '');

-- ---------------------------------------------------------------------------
-- Who acts, and what it may use.

CREATE FUNCTION billing.acting_role() RETURNS name
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION billing.acting_role() IS
    'the role the session acts as: the role of SET ROLE, else the session user; billing''s entity checks and '
    'row-level security judge this role (inside a SECURITY DEFINER function current_user is the owner)';

-- The three helpers below are C (src/security.c): they run at the top of
-- every SECURITY DEFINER function and in every row-level security policy.
-- They read the role's attributes from the system caches and
-- billing.role_binding and billing.account directly (no SQL, no
-- search_path, no privilege needed), under the statement's snapshot;
-- nothing is cached between calls.
--
-- PARALLEL SAFE, so that a read under row-level security (every read of a
-- role that is not the owner) can have a parallel plan: the policies call
-- them, and one parallel-unsafe function in a query makes all of it serial.
-- They are safe: they write nothing, keep no state between calls, and use
-- nothing of the backend that a parallel worker does not share.  The
-- acting role is GetCurrentRoleId() (the role of SET ROLE), else
-- GetSessionUserId(); PostgreSQL 15 starts every parallel worker with the
-- leader's session user (SET SESSION AUTHORIZATION included), the leader's
-- SET ROLE and its current user and security context (ParallelWorkerMain,
-- from the leader's FixedParallelState), so a worker judges the same role as
-- its leader.  The rows they read (billing.role_binding, billing.account)
-- are read under the leader's snapshot, which every worker restores;
-- the catalogs (pg_authid, pg_extension) through the same syscaches.
-- sql/bounds.sql checks the plan and the answers in a worker.
CREATE FUNCTION billing._acting_role_sees_all() RETURNS boolean
    AS 'MODULE_PATHNAME', 'acting_role_sees_all' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_sees_all() IS
    'internal: true when the acting role may use every billing entity (superuser, BYPASSRLS, the extension''s '
    'owner, or bound to every entity directly or through a role whose privileges it has)';

CREATE FUNCTION billing._acting_role_entities() RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'acting_role_entities' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_entities() IS
    'internal: the billing entities bound to the acting role or to a role whose privileges it has (never NULL; '
    'for a superuser every bound entity)';

CREATE FUNCTION billing._may_use_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'may_use_account' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._may_use_account(bigint) IS
    'internal: true when the acting role may use the account (false for an account that does not exist)';

-- The row-level security policies' form of _may_use_account: what the role
-- may use is read once per query and the accounts' entities are kept for
-- its rows (a few probes of account's key, or one scan of the role's
-- accounts when there are many), so that a statement about one account
-- costs a probe and a report over a whole table one scan of its accounts.
CREATE FUNCTION billing._acting_role_may_use_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'account_in_scope' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing._acting_role_may_use_account(bigint) IS
    'internal: true when the acting role may use the account (false for an account that does not exist); '
    'for row-level security policies: the answers are kept for the rest of the query';

-- The checks.  One call at the top of every SECURITY DEFINER function, once
-- per call (never per row).  A role that may not use an account gets 42501
-- whether the account exists or not, so ids of other entities cannot be
-- probed; a role that may use every entity gets the function's own error.
CREATE FUNCTION billing._authorize_account(account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF NOT billing._may_use_account(account_id) THEN
        RAISE EXCEPTION 'role % may not use account %', billing.acting_role(), coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The account does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_account(bigint) IS
    'internal: raises 42501 unless the acting role may use the account';

-- For reads that answer about an account (entitlements): the account must
-- also exist, so that a wrong id in the application is an error rather
-- than a customer without access.
CREATE FUNCTION billing._authorize_existing_account(account_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_account(account_id);
    PERFORM FROM billing.account a WHERE a.account_id = _authorize_existing_account.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_existing_account(bigint) IS
    'internal: raises 42501 unless the acting role may use the account, no_data_found unless it exists';

-- For batches (dunning statuses): one query for the whole array.
CREATE FUNCTION billing._authorize_accounts(accounts bigint[]) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_bad bigint;
BEGIN
    IF billing._acting_role_sees_all() THEN
        RETURN;
    END IF;
    SELECT u.id INTO v_bad FROM unnest(accounts) u(id)
    WHERE NOT EXISTS (SELECT FROM billing.account a
                      WHERE a.account_id = u.id AND a.entity_id = ANY (billing._acting_role_entities()))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'role % may not use account %', billing.acting_role(), coalesce(v_bad::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The account does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_accounts(bigint[]) IS
    'internal: raises 42501 unless the acting role may use every account of the array';

CREATE FUNCTION billing._authorize_entity(entity_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    -- (coalesce: a NULL entity_id makes the test NULL, which must refuse,
    -- not let the call through)
    IF NOT coalesce(billing._acting_role_sees_all() OR entity_id = ANY (billing._acting_role_entities()), false) THEN
        RAISE EXCEPTION 'role % may not use billing entity %', billing.acting_role(), coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The role is not bound to that billing entity.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_entity(bigint) IS
    'internal: raises 42501 unless the acting role may use the billing entity';

CREATE FUNCTION billing._authorize_invoice(invoice_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF billing._acting_role_sees_all() THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM billing.invoice i
                   WHERE i.invoice_id = _authorize_invoice.invoice_id
                     AND i.entity_id = ANY (billing._acting_role_entities())) THEN
        RAISE EXCEPTION 'role % may not use invoice %', billing.acting_role(), coalesce(invoice_id::text, 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The invoice does not exist or belongs to a billing entity the role is not bound to.',
                  HINT = 'A DBA binds roles to entities with billing.bind_role_to_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_invoice(bigint) IS
    'internal: raises 42501 unless the acting role may use the invoice''s billing entity';

-- What is shared by every entity (the catalog, new entities, settings) and
-- what runs over every entity (the cycle, collection workers) needs a role
-- that may use every entity.
CREATE FUNCTION billing._authorize_all(action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF NOT billing._acting_role_sees_all() THEN
        RAISE EXCEPTION 'role % may not %: that needs a role bound to every billing entity', billing.acting_role(), action
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The catalog, new billing entities, settings and the cycle are shared by every entity.',
                  HINT = 'A DBA binds a role to every entity with billing.bind_role_to_entity(role, NULL).';
    END IF;
END $$;
COMMENT ON FUNCTION billing._authorize_all(text) IS
    'internal: raises 42501 unless the acting role may use every billing entity';

-- ---------------------------------------------------------------------------
-- Bindings.  Called by the DBA (no role is granted these).

CREATE FUNCTION billing.bind_role_to_entity(role_name name, entity_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = bind_role_to_entity.role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', coalesce(role_name::text, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'Create it first, or call billing.grant_roles.';
    END IF;
    IF entity_id IS NOT NULL AND NOT EXISTS (SELECT FROM billing.billing_entity e
                                             WHERE e.entity_id = bind_role_to_entity.entity_id) THEN
        RAISE EXCEPTION 'billing entity % does not exist', entity_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Pass NULL to bind the role to every entity.';
    END IF;
    INSERT INTO billing.role_binding AS b (role_name, entity_id) VALUES (role_name, entity_id)
    ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION billing.bind_role_to_entity(name, bigint) IS
    'lets a role (and every role that has its privileges) use a billing entity: its accounts, invoices, payments '
    'and the rest; entity_id NULL: every entity.  For the DBA';

CREATE FUNCTION billing.unbind_role_from_entity(role_name name, entity_id bigint) RETURNS integer
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH d AS (
        DELETE FROM billing.role_binding b
        WHERE b.role_name = unbind_role_from_entity.role_name
          AND b.entity_id IS NOT DISTINCT FROM unbind_role_from_entity.entity_id
        RETURNING 1
    )
    SELECT count(*)::integer FROM d
$$;
COMMENT ON FUNCTION billing.unbind_role_from_entity(name, bigint) IS
    'removes a binding made by bind_role_to_entity (entity_id NULL: the every-entity binding); returns how many '
    'were removed.  For the DBA';

-- ---------------------------------------------------------------------------
-- Which role kind may execute which function.  The one list that
-- grant_roles grants from and that the install script below makes SECURITY
-- DEFINER.  Kinds:
--   reader    SECURITY DEFINER reads that check the account: every role
--   writer    SECURITY DEFINER writes of the application
--   operator  the cycle and the collection workers, over every entity
--   dba       bindings and grants: no role, only the owner/superuser
--   read_helper  internal functions that the views, the read functions and
--             the procedures running with the caller's rights call: granted
--             to every role; they read under row-level security like the
--             caller
-- Every other function whose name does not start with "_" (amounts, periods,
-- formatting, invariant checks) runs with the caller's rights, reads under
-- row-level security, and is granted to every role.  sql/security.sql fails
-- when a function that writes is missing here.
CREATE FUNCTION billing.role_functions()
RETURNS TABLE (kind text, function regprocedure)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT x.kind, x.function::regprocedure FROM (VALUES
        ('reader',   'billing.preview_invoice(bigint, bigint, date)'),
        ('reader',   'billing.entitled(bigint, text)'),
        ('reader',   'billing.entitlement(bigint, text)'),
        ('reader',   'billing.entitlements(bigint)'),
        ('reader',   'billing.account_balance(bigint, date)'),
        ('reader',   'billing.account_statement(bigint, date, date)'),
        ('reader',   'billing.invoice_document(bigint, text)'),
        ('reader',   'billing.dashboard_html(bigint, text, integer, text)'),
        ('reader',   'billing.price_amount(bigint, numeric, text)'),
        ('writer',   'billing.create_billing_entity(text, text, text, text, text, boolean, integer, jsonb, text)'),
        ('writer',   'billing.update_billing_entity(bigint, text, text, text, text, jsonb, text)'),
        ('writer',   'billing.create_tax_rate(text, numeric, boolean, text)'),
        ('writer',   'billing.create_account(bigint, text, text, text, integer, text, text, text, bigint, boolean, jsonb, text)'),
        ('writer',   'billing.update_account(bigint, text, text, integer, text, text, text, bigint, boolean, jsonb, text)'),
        ('writer',   'billing.create_product(text, text, jsonb)'),
        ('writer',   'billing.update_product(bigint, text, text, boolean, jsonb)'),
        ('writer',   'billing.create_price(bigint, text, numeric, text, interval, text, text, numeric, jsonb, numeric, integer, bigint, text, jsonb, boolean)'),
        ('writer',   'billing.update_price(bigint, text, boolean, bigint, integer, jsonb, boolean)'),
        ('writer',   'billing.create_coupon(text, text, numeric, billing.amount, integer, text)'),
        ('writer',   'billing.create_coupon(text, text, numeric, text, integer, text)'),
        ('writer',   'billing.subscribe(bigint, bigint, numeric, date, date, integer, text, jsonb, boolean, jsonb)'),
        ('writer',   'billing.apply_coupon(bigint, bigint, text, boolean)'),
        ('writer',   'billing.change_subscription(bigint, bigint, bigint, numeric, text, date, bigint)'),
        ('writer',   'billing.cancel_subscription(bigint, bigint, boolean, boolean, date)'),
        ('writer',   'billing.add_subscription_item(bigint, bigint, bigint, numeric, text, date)'),
        ('writer',   'billing.remove_subscription_item(bigint, bigint, text, date)'),
        ('writer',   'billing.schedule_change(bigint, bigint, date, bigint, numeric, bigint)'),
        ('writer',   'billing.cancel_scheduled_change(bigint, bigint)'),
        ('writer',   'billing.migrate_price(bigint, bigint, integer, bigint[])'),
        ('writer',   'billing.pause_subscription(bigint, bigint)'),
        ('writer',   'billing.resume_subscription(bigint, bigint, date)'),
        ('writer',   'billing.record_usage(bigint, bigint, numeric, text, timestamptz, text)'),
        ('writer',   'billing.record_usage_batch(bigint[], bigint[], numeric[], text[], timestamptz[], text[])'),
        ('writer',   'billing.mark_events_done(bigint[])'),
        ('writer',   'billing.set_early_payment_discount(bigint, numeric, integer)'),
        ('writer',   'billing.apply_payment(bigint, billing.amount, text, text, text, date, bigint[])'),
        ('writer',   'billing.apply_payment(bigint, numeric, text, text, text, date, bigint[])'),
        ('writer',   'billing.refund_payment(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.refund_payment(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.refund_credit(bigint, billing.amount, text, text)'),
        ('writer',   'billing.refund_credit(bigint, numeric, text, text)'),
        ('writer',   'billing.record_chargeback(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.record_chargeback(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.issue_credit_note(bigint, bigint, billing.amount, text, text)'),
        ('writer',   'billing.issue_credit_note(bigint, bigint, numeric, text, text)'),
        ('writer',   'billing.void_invoice(bigint, bigint, text)'),
        ('writer',   'billing.write_off_invoice(bigint, bigint, text)'),
        ('writer',   'billing.add_payment_method(bigint, text, text, boolean)'),
        ('writer',   'billing.remove_payment_method(bigint, bigint)'),
        ('writer',   'billing.set_collection_retry_days(integer[])'),
        ('writer',   'billing.create_installment_plan(bigint, bigint, integer, interval, date)'),
        ('writer',   'billing.create_dunning_policy(text, jsonb, boolean, text)'),
        ('writer',   'billing.set_dunning_policy(bigint, text)'),
        ('writer',   'billing.set_price_change_notice_days(integer)'),
        ('writer',   'billing.close_dunning(bigint, bigint, text)'),
        ('writer',   'billing.set_entity_draft_days(bigint, integer)'),
        ('writer',   'billing.set_account_draft_days(bigint, integer)'),
        ('writer',   'billing.finalize_invoice(bigint, bigint)'),
        ('writer',   'billing.add_invoice_item(bigint, billing.amount, text, bigint, bigint, boolean)'),
        ('writer',   'billing.add_invoice_item(bigint, numeric, text, bigint, bigint, boolean)'),
        ('writer',   'billing.remove_invoice_item(bigint, bigint, bigint)'),
        ('writer',   'billing.create_feature(text, text, text, text)'),
        ('writer',   'billing.set_price_feature(bigint, text, text, boolean)'),
        ('writer',   'billing.remove_price_feature(bigint, text)'),
        ('writer',   'billing.set_subscription_feature(bigint, bigint, text, text)'),
        ('writer',   'billing.remove_subscription_feature(bigint, bigint, text)'),
        ('operator', 'billing.run_cycle(date, integer, timestamptz)'),
        ('operator', 'billing.run_dunning(date, integer, timestamptz)'),
        ('operator', 'billing._default_dunning_policy()'),
        ('operator', 'billing._price_change_notices(date, timestamptz)'),
        ('operator', 'billing._dunning_batch(bigint, date, timestamptz, integer, bigint, bigint)'),
        ('operator', 'billing._dunning_sync_status(bigint[], date, timestamptz)'),
        ('operator', 'billing._cycle_batch(bigint, date, timestamptz, integer, date, bigint, bigint)'),
        ('operator', 'billing._trial_notices(date, timestamptz, integer)'),
        ('operator', 'billing._finalize_drafts_past_grace(date, timestamptz, integer, bigint, bigint)'),
        ('operator', 'billing._run_in_batches(regclass, bigint, regprocedure[], date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._cycle_drafts_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._cycle_bill_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._dunning_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing._dunning_status_step(bigint, date, timestamptz, integer, jsonb)'),
        ('operator', 'billing.claim_collection_attempts(text, integer, timestamptz)'),
        ('operator', 'billing.report_collection_result(bigint, bigint, boolean, text, text, text)'),
        ('operator', 'billing.claim_deliveries(text, text[], integer, interval, integer)'),
        ('operator', 'billing.finish_delivery(bigint, bigint, text, text, text, text, integer, interval, interval)'),
        ('operator', 'billing.delivery_email(bigint, bigint)'),
        ('dba',      'billing.grant_roles(name, name, name)'),
        ('dba',      'billing.bind_role_to_entity(name, bigint)'),
        ('dba',      'billing.unbind_role_from_entity(name, bigint)'),
        ('dba',      'billing.role_functions()'),
        ('dba',      'billing.schedule(text, text)'),
        ('dba',      'billing.unschedule()'),
        ('dba',      'billing.distribute()'),
        ('read_helper', 'billing._check_date(date, text, date)'),
        ('read_helper', 'billing._bill_dates(bigint[], bigint[], date, timestamptz, text, boolean)'),
        ('read_helper', 'billing._lines_to_bill(bigint[], bigint[], date, timestamptz, text, boolean)'),
        ('read_helper', 'billing._discount_and_tax(bigint[], bigint[], text[], text[], bigint[], bigint[], billing.amount[])'),
        ('read_helper', 'billing._usage_line(bigint, bigint, bigint, daterange, date, date, date, date, boolean, bigint[], text, text)'),
        ('read_helper', 'billing._price_value(bigint, text, numeric, numeric, numeric)'),
        ('read_helper', 'billing._tiered_value(bigint, text, numeric)'),
        ('read_helper', 'billing._ar_aging()'),
        ('read_helper', 'billing._mrr_movements()'),
        ('read_helper', 'billing._mrr_by_month(bigint)'),
        ('read_helper', 'billing._cohort_retention()'),
        ('writer',   'billing.set_exchange_rate(text, text, numeric, date)'),
        ('read_helper', 'billing._revenue_lines()'),
        ('read_helper', 'billing._revenue_schedule()'),
        ('read_helper', 'billing._revenue_months()'),
        ('read_helper', 'billing._revenue_waterfall()'),
        ('read_helper', 'billing._revenue_by_price()'),
        ('read_helper', 'billing._check_currency(text, text)'),
        ('read_helper', 'billing._convert_at(numeric, numeric, text)'),
        ('read_helper', 'billing._convert(numeric, text, text, date)'),
        ('read_helper', 'billing._check_report_month(text, date, text)'),
        ('read_helper', 'billing._check_report_months(text, date, date)'),
        ('read_helper', 'billing._revenue_by_month(bigint)'),
        ('read_helper', 'billing._days_sales_outstanding(integer, bigint)'),
        ('read_helper', 'billing._dunning_funnel(bigint)')
    ) x(kind, function)
$$;
COMMENT ON FUNCTION billing.role_functions() IS
    'which role kind may execute which function: reader (every role), writer, operator (SECURITY DEFINER, '
    'entity-checked), dba (nobody but the owner), read_helper (internal reads, every role); functions not '
    'listed are granted to every role unless internal';

-- Row-level security helpers need EXECUTE by every reader: they say what
-- the reader itself may use, nothing more.
CREATE FUNCTION billing._everyone_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT p.oid::regprocedure
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
    WHERE (p.proname !~ '^_' OR p.oid IN ('billing._acting_role_sees_all()'::regprocedure,
                                          'billing._acting_role_entities()'::regprocedure,
                                          'billing._acting_role_may_use_account(bigint)'::regprocedure))
      AND p.oid NOT IN (SELECT f.function FROM billing.role_functions() f)
$$;
COMMENT ON FUNCTION billing._everyone_functions() IS
    'internal: the functions granted to every role of grant_roles (not in role_functions, not internal)';

CREATE FUNCTION billing.grant_roles(writer name DEFAULT 'billing_writer', operator name DEFAULT 'billing_operator',
                                    reporting name DEFAULT 'billing_reporting')
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    r name;
    f regprocedure;
BEGIN
    IF writer IS NULL OR operator IS NULL OR reporting IS NULL OR '' IN (writer, operator, reporting) THEN
        RAISE EXCEPTION 'grant_roles needs three role names, not %, %, %', coalesce(writer::text, 'NULL'),
            coalesce(operator::text, 'NULL'), coalesce(reporting::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The defaults are billing_writer, billing_operator, billing_reporting.';
    END IF;
    FOREACH r IN ARRAY ARRAY[writer, operator, reporting] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles x WHERE x.rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
        -- reading: the schema, every table and view (rows filtered by
        -- row-level security) except the bindings, the read functions
        EXECUTE format('GRANT USAGE ON SCHEMA billing TO %I', r);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA billing TO %I', r);
        EXECUTE format('REVOKE ALL ON billing.role_binding FROM %I', r);
        FOR f IN SELECT x FROM billing._everyone_functions() x
                 UNION SELECT x.function FROM billing.role_functions() x WHERE x.kind IN ('reader', 'read_helper') LOOP
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, r);
        END LOOP;
    END LOOP;
    FOR f IN SELECT x.function FROM billing.role_functions() x WHERE x.kind = 'writer' LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, writer);
    END LOOP;
    -- run_cycle is a procedure that commits, so it runs with the operator's
    -- rights: it writes its log itself and calls the SECURITY DEFINER batches
    FOR f IN SELECT x.function FROM billing.role_functions() x WHERE x.kind = 'operator' LOOP
        EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', f, operator);
    END LOOP;
    EXECUTE format('GRANT INSERT, UPDATE ON billing.cycle_run, billing.dunning_run TO %I', operator);
    EXECUTE format('GRANT USAGE ON SEQUENCE billing.cycle_run_cycle_run_id_seq, billing.dunning_run_dunning_run_id_seq TO %I',
                   operator);
    -- the operator works over every entity
    PERFORM billing.bind_role_to_entity(operator, NULL);
END $$;
COMMENT ON FUNCTION billing.grant_roles(name, name, name) IS
    'for the DBA: creates the application writer, operator and read-only reporting roles (NOLOGIN) if missing and '
    'grants them what billing.role_functions() lists; binds the operator to every entity; safe to call again';

-- ---------------------------------------------------------------------------
-- SECURITY DEFINER for the functions of role_functions() (procedures cannot
-- be: they commit).  Each one pins search_path (every function of billing
-- does) and calls billing._authorize_* first; sql/security.sql checks both.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT x.function FROM billing.role_functions() x
             JOIN pg_catalog.pg_proc p ON p.oid = x.function
             WHERE x.kind IN ('reader', 'writer', 'operator') AND p.prokind = 'f' LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f);
    END LOOP;
END $$;

-- ---------------------------------------------------------------------------
-- Row-level security on every table that carries entity_id or account_id
-- (a table added later gets it too), and on the cycle log.  Policies only
-- for SELECT: no role but the owner writes these tables, and with row-level
-- security on, a write a policy does not allow is refused even to a role
-- that was granted it by mistake.  The functions of the policies run once
-- per query (scalar subqueries), not per row.  A table without entity_id
-- asks _acting_role_may_use_account about each row's account: one probe of account's
-- key for a statement about one account, one scan of the role's accounts
-- for a report over a whole table.  (A subquery over the role's accounts
-- was hashed whole before the first row even for one account; as a
-- correlated EXISTS the planner costs it as a probe per row and then
-- chooses nested loops of a million probes for the reports' joins.)
DO $$
DECLARE
    t regclass;
    has_entity boolean;
BEGIN
    FOR t, has_entity IN
        SELECT c.oid::regclass, bool_or(a.attname = 'entity_id')
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('account_id', 'entity_id') AND NOT a.attisdropped
        WHERE c.relkind = 'r' AND c.oid <> 'billing.role_binding'::regclass
        GROUP BY c.oid
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        IF has_entity THEN
            EXECUTE format('CREATE POLICY entity_scope ON %s FOR SELECT USING ('
                           '(SELECT billing._acting_role_sees_all()) '
                           'OR entity_id = ANY ((SELECT billing._acting_role_entities())::bigint[]))', t);
        ELSE
            EXECUTE format('CREATE POLICY entity_scope ON %s FOR SELECT USING ('
                           '(SELECT billing._acting_role_sees_all()) OR billing._acting_role_may_use_account(account_id))', t);
        END IF;
    END LOOP;
END $$;
-- The cycle and dunning logs name accounts of every entity: only for roles
-- that may use every entity (the operator writes them from run_cycle and
-- run_dunning).
ALTER TABLE billing.cycle_run ENABLE ROW LEVEL SECURITY;
CREATE POLICY entity_scope ON billing.cycle_run
    USING ((SELECT billing._acting_role_sees_all())) WITH CHECK ((SELECT billing._acting_role_sees_all()));
ALTER TABLE billing.dunning_run ENABLE ROW LEVEL SECURITY;
CREATE POLICY entity_scope ON billing.dunning_run
    USING ((SELECT billing._acting_role_sees_all())) WITH CHECK ((SELECT billing._acting_role_sees_all()));

-- Views read their tables with the reader's rights, so the policies above
-- apply to whoever reads them (a view owned by a superuser would see all).
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
             JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
             WHERE c.relkind = 'v' LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END $$;

