-- test/security/setup.sql, run by test/security/run.sh as the superuser in
-- a fresh database: the roles the attacks log in as, two tenants with data,
-- and the harness (schema atk) the attack files call.
--
-- Tenants: A (entity "Acme", USD) and B (entity "Globex", EUR), each with two
-- accounts, subscriptions with a flat and a metered item, usage, invoices of
-- two cycles, a payment, a refund, a credit note, an installment plan,
-- dunning cases and actions, a scheduled price change, collection attempts,
-- payment methods, early-payment terms, a dunning policy and outbox events.
-- The currencies differ so that the rows of a view that sums per currency
-- say which tenant they come from.
--
-- Login roles, members of the roles billing.grant_roles creates:
--   atk_writer    writer, bound to A          atk_writer_b  writer, bound to B
--   atk_reader    reporting, bound to A       atk_operator  operator (every entity, as grant_roles binds it)
--   atk_admin     writer, bound to every entity (the shared catalog needs one)
--   atk_canary    writer, bound to A: the attacker of the deliberately
--                 unpinned function that proves the temp-schema attack works
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
RESET client_min_messages;

SELECT billing.grant_roles('atk_grp_writer', 'atk_grp_operator', 'atk_grp_reporting');
CREATE ROLE atk_writer LOGIN PASSWORD :'pw' IN ROLE atk_grp_writer;
CREATE ROLE atk_writer_b LOGIN PASSWORD :'pw' IN ROLE atk_grp_writer;
CREATE ROLE atk_admin LOGIN PASSWORD :'pw' IN ROLE atk_grp_writer;
CREATE ROLE atk_canary LOGIN PASSWORD :'pw' IN ROLE atk_grp_writer;
CREATE ROLE atk_reader LOGIN PASSWORD :'pw' IN ROLE atk_grp_reporting;
CREATE ROLE atk_operator LOGIN PASSWORD :'pw' IN ROLE atk_grp_operator;
-- the test clock (superusers only, or roles granted SET on it)
GRANT SET ON PARAMETER billing.clock TO atk_writer, atk_writer_b, atk_admin, atk_canary, atk_reader, atk_operator;

-- ---------------------------------------------------------------------------
-- The tenants' data, made through billing's functions on the test clock.
SET billing.clock = '2026-01-01 12:00+00';
SELECT billing.create_billing_entity('Acme', 'USD') AS ea \gset
SELECT billing.create_billing_entity('Globex', 'EUR') AS eb \gset
SELECT billing.bind_role_to_entity('atk_writer', :ea), billing.bind_role_to_entity('atk_reader', :ea),
       billing.bind_role_to_entity('atk_canary', :ea), billing.bind_role_to_entity('atk_writer_b', :eb),
       billing.bind_role_to_entity('atk_admin', NULL);
SELECT billing.create_tax_rate('VAT', 7.25) AS tax \gset
SELECT billing.create_product('Pro') AS prod \gset
SELECT billing.create_price(:prod, 'USD', 10.00) AS pa \gset
SELECT billing.create_price(:prod, 'EUR', 20.00) AS pb \gset
SELECT billing.create_price(:prod, 'USD', 0.10, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'sum') AS ma \gset
SELECT billing.create_price(:prod, 'EUR', 0.20, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'sum') AS mb \gset
SELECT billing.create_price(:prod, 'USD', 12.00) AS pa2 \gset
SELECT billing.create_price(:prod, 'EUR', 24.00) AS pb2 \gset
SELECT billing.create_coupon('ATK10', 'once', 10) AS coupon \gset
SELECT billing.create_dunning_policy('strict') AS policy \gset
SELECT billing.create_account(:ea, 'Alice', tax_rate_id => :tax) AS a1 \gset
SELECT billing.create_account(:ea, 'Anna') AS a2 \gset
SELECT billing.create_account(:eb, 'Bruno', tax_rate_id => :tax) AS b1 \gset
SELECT billing.create_account(:eb, 'Berta') AS b2 \gset
-- 7.25% of 10.00 is 0.725: every rounding mode shows in her tax
SELECT billing.create_account(:ea, 'Rita', tax_rate_id => :tax) AS ar \gset
SELECT billing.add_payment_method(:a1, 'card', 'pm_alice') AS pma \gset
SELECT billing.add_payment_method(:b1, 'card', 'pm_bruno') AS pmb \gset
SELECT billing.subscribe(:a1, items => format('[{"price_id": %s}, {"price_id": %s}]', :pa, :ma)::jsonb, coupon => 'ATK10') AS sa \gset
SELECT billing.subscribe(:b1, items => format('[{"price_id": %s}, {"price_id": %s}]', :pb, :mb)::jsonb, coupon => 'ATK10') AS sb \gset
SELECT billing.subscribe(:a2, :pa) AS sa2 \gset
SELECT billing.subscribe(:b2, :pb) AS sb2 \gset
SELECT billing.subscribe(:ar, :pa) AS sar \gset
-- a feature both tenants' prices grant, and an override in each
SELECT billing.create_feature('atk_feature', 'ATK feature');
SELECT billing.set_price_feature(:pa, 'atk_feature'), billing.set_price_feature(:pb, 'atk_feature');
SELECT billing.set_subscription_feature(:a2, :sa2, 'atk_feature', 'false'),
       billing.set_subscription_feature(:b2, :sb2, 'atk_feature', 'false');
SELECT subscription_item_id AS ia FROM billing.subscription_item WHERE subscription_id = :sa AND price_id = :pa \gset
SELECT subscription_item_id AS ib FROM billing.subscription_item WHERE subscription_id = :sb AND price_id = :pb \gset
SELECT subscription_item_id AS mia FROM billing.subscription_item WHERE subscription_id = :sa AND price_id = :ma \gset
SELECT subscription_item_id AS mib FROM billing.subscription_item WHERE subscription_id = :sb AND price_id = :mb \gset
SET billing.clock = '2026-01-10 12:00+00';
SELECT billing.record_usage(:a1, :mia, 5, 'use-a-1'), billing.record_usage(:b1, :mib, 5, 'use-b-1');
SET billing.clock = '2026-01-15 12:00+00';
SELECT billing.apply_payment(:a1, '5.00 USD', 'card', reference => 'ref-a', idempotency_key => 'pay-a-1') AS paya \gset
SELECT billing.apply_payment(:b1, '5.00 EUR', 'card', reference => 'ref-b', idempotency_key => 'pay-b-1') AS payb \gset
SELECT billing.refund_payment(:a1, :paya, '1.00 USD', 'goodwill'), billing.refund_payment(:b1, :payb, '1.00 EUR', 'goodwill');
SELECT billing.set_early_payment_discount(:a1, 2, 10), billing.set_early_payment_discount(:b1, 2, 10);
SELECT billing.set_dunning_policy(:a1, 'strict'), billing.set_dunning_policy(:b1, 'strict');
-- mid-period quantity changes: prorations waiting for the next invoice
SELECT billing.change_subscription(:a2, :sa2, quantity => 2), billing.change_subscription(:b2, :sb2, quantity => 2);

-- The cycle of February, run by the operator's login role.
\c - atk_operator
SET billing.clock = '2026-02-01 12:00+00';
CALL billing.run_cycle();
\c - :super
SET billing.clock = '2026-02-05 12:00+00';
SELECT invoice_id AS inva FROM billing.invoice WHERE account_id = :a1 AND period_start = '2026-02-01' \gset
SELECT invoice_id AS invb FROM billing.invoice WHERE account_id = :b1 AND period_start = '2026-02-01' \gset
SELECT invoice_id AS inva2 FROM billing.invoice WHERE account_id = :a2 AND period_start = '2026-02-01' \gset
SELECT invoice_id AS invb2 FROM billing.invoice WHERE account_id = :b2 AND period_start = '2026-02-01' \gset
SELECT billing.issue_credit_note(:a1, :inva, '1.00 USD', reason => 'sorry'),
       billing.issue_credit_note(:b1, :invb, '1.00 EUR', reason => 'sorry');
SELECT count(*) FROM billing.create_installment_plan(:a2, :inva2, 2);
SELECT count(*) FROM billing.create_installment_plan(:b2, :invb2, 2);
-- a price change the next period starts with: run_dunning writes its notice
SELECT billing.change_subscription(:a1, :sa, price_id => :pa2, effective_date => '2026-03-01', subscription_item_id => :ia),
       billing.change_subscription(:b1, :sb, price_id => :pb2, effective_date => '2026-03-01', subscription_item_id => :ib);
-- an add-on each (billing.subscription_change)
SELECT billing.create_price(:prod, 'USD', 3.00) AS xa \gset
SELECT billing.create_price(:prod, 'EUR', 3.00) AS xb \gset
SELECT billing.add_subscription_item(:a1, :sa, :xa, proration => 'none'),
       billing.add_subscription_item(:b1, :sb, :xb, proration => 'none');
\c - atk_operator
SET billing.clock = '2026-02-10 12:00+00';
CALL billing.run_dunning();
SELECT count(*) FROM billing.claim_collection_attempts('setup-worker', 4);
-- every event's deliveries, claimed by the worker name the attacks use
SELECT count(*) FROM billing.claim_deliveries('atk-worker', '{email,webhook:atk}', 1000);
\c - :super

-- ---------------------------------------------------------------------------
-- The harness.  Owned by the superuser; the attack roles may use it.  Every
-- function pins its search_path and names what it uses with its schema, so
-- the attackers' temporary objects cannot steer it.
CREATE SCHEMA atk;
GRANT USAGE ON SCHEMA atk TO PUBLIC;

-- The ids the attacks pass, per tenant ('-' for what the tenants share).
CREATE TABLE atk.ids (tenant text, key text, val bigint, PRIMARY KEY (tenant, key));
INSERT INTO atk.ids VALUES
    ('A', 'entity', :ea), ('B', 'entity', :eb),
    ('A', 'account', :a1), ('B', 'account', :b1), ('A', 'account2', :a2), ('B', 'account2', :b2),
    ('A', 'subscription', :sa), ('B', 'subscription', :sb), ('A', 'subscription2', :sa2), ('B', 'subscription2', :sb2),
    ('A', 'item', :ia), ('B', 'item', :ib), ('A', 'metered_item', :mia), ('B', 'metered_item', :mib),
    ('A', 'invoice', :inva), ('B', 'invoice', :invb), ('A', 'invoice2', :inva2), ('B', 'invoice2', :invb2), ('A', 'payment', :paya), ('B', 'payment', :payb),
    ('A', 'payment_method', :pma), ('B', 'payment_method', :pmb),
    ('A', 'price', :pa), ('B', 'price', :pb), ('A', 'price2', :pa2), ('B', 'price2', :pb2),
    ('A', 'rounding_account', :ar), ('A', 'rounding_subscription', :sar),
    ('-', 'product', :prod), ('-', 'tax_rate', :tax), ('-', 'policy', :policy);
INSERT INTO atk.ids
SELECT t.tenant, 'dunning_invoice', min(c.invoice_id) FROM atk.ids t JOIN billing.dunning_case c ON c.account_id = t.val
WHERE t.key = 'account' AND c.status = 'active' GROUP BY 1
UNION ALL
SELECT t.tenant, 'attempt', min(c.attempt_id) FROM atk.ids t JOIN billing.collection_attempt c ON c.account_id = t.val
WHERE t.key = 'account' AND c.status = 'processing' GROUP BY 1
UNION ALL
SELECT t.tenant, 'event', min(o.event_id) FROM atk.ids t JOIN billing.outbox o ON o.account_id = t.val
WHERE t.key = 'account' AND o.processed_at IS NULL GROUP BY 1
UNION ALL
SELECT t.tenant, 'emailed_event', min(o.event_id) FROM atk.ids t JOIN billing.outbox o ON o.account_id = t.val
WHERE t.key = 'account' AND o.event_type = 'invoice.finalized' GROUP BY 1
UNION ALL
SELECT t.tenant, 'invoice_line', min(l.invoice_line_id) FROM atk.ids t
JOIN billing.invoice_line l ON l.invoice_id = t.val
WHERE t.key = 'invoice' GROUP BY 1
UNION ALL
SELECT '-', 'cycle_run', max(cycle_run_id) FROM billing.cycle_run
UNION ALL
SELECT '-', 'dunning_run', max(dunning_run_id) FROM billing.dunning_run;
CREATE TABLE atk.tenant (tenant text PRIMARY KEY, currency text, login text);
INSERT INTO atk.tenant VALUES ('A', 'USD', 'atk_writer'), ('B', 'EUR', 'atk_writer_b');
GRANT SELECT ON atk.ids, atk.tenant TO PUBLIC;

CREATE FUNCTION atk.id(tenant text, key text) RETURNS bigint
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.val FROM atk.ids i WHERE i.tenant = $1 AND i.key = $2
$$;

-- The test clock's day and instant, as the attack sessions see them.
CREATE FUNCTION atk.clock() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.current_setting('billing.clock')::timestamptz
$$;

-- Every billing table (and pg_cron's jobs): row count and md5 of its rows.
-- SECURITY DEFINER so that an attacker's session sees every row, whatever
-- row-level security shows the attacker itself.
CREATE FUNCTION atk.digest() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regclass;
    d text;
    result jsonb := '{}';
BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND (n.nspname = 'billing' OR (n.nspname = 'cron' AND c.relname = 'job'))
             ORDER BY 1::text LOOP
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) || '' '' || pg_catalog.md5(coalesce('
                                  'pg_catalog.string_agg(x::pg_catalog.text, E''\n'' ORDER BY x::pg_catalog.text), '''')) '
                                  'FROM %s x', t) INTO d;
        result := result OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(t::pg_catalog.text, d);
    END LOOP;
    RETURN result;
END $$;

-- Every sequence's state, and setting it back: attacks that compare two
-- runs of one call (undone in between) need the same ids in both.
CREATE FUNCTION atk.seq_state() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s regclass;
    v jsonb;
    result jsonb := '{}';
BEGIN
    FOR s IN SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind = 'S'
             AND c.relnamespace = 'billing'::regnamespace LOOP
        EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_build_array(last_value, is_called) FROM %s', s) INTO v;
        result := result OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(s::pg_catalog.text, v);
    END LOOP;
    RETURN result;
END $$;
CREATE FUNCTION atk.seq_set(state jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    FOR k IN SELECT pg_catalog.jsonb_object_keys(state) LOOP
        PERFORM pg_catalog.setval(k::regclass, (state -> k ->> 0)::bigint, (state -> k ->> 1)::boolean);
    END LOOP;
END $$;

-- What billing.check_invariants() finds over every entity ('': nothing).
CREATE FUNCTION atk.broken_invariants() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(pg_catalog.string_agg(i.invariant || ': ' || i.detail, '; '), '') FROM billing.check_invariants() i
$$;

-- The tables whose digests differ.
CREATE FUNCTION atk.changed(before jsonb, after jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) FROM (
        SELECT k FROM pg_catalog.jsonb_object_keys(before OPERATOR(pg_catalog.||) after) k
        WHERE (before OPERATOR(pg_catalog.->) k) IS DISTINCT FROM (after OPERATOR(pg_catalog.->) k)) x
$$;

-- A type named with its schema (pg_catalog's too), so that the call texts
-- the harness builds resolve no name through an attacker's temporary schema.
CREATE FUNCTION atk.qtype(t oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN y.typelem <> 0 AND y.typlen = -1 AND y.typcategory = 'A'
                THEN atk.qtype(y.typelem) || '[]'
                ELSE pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(y.typname) END
    FROM pg_catalog.pg_type y JOIN pg_catalog.pg_namespace n ON n.oid = y.typnamespace WHERE y.oid = t
$$;

-- The extension's routines with their kind in billing.role_functions()
-- (NULL: not listed).  role_functions itself is the DBA's, so the list is
-- kept here for the attack roles.
CREATE TABLE atk.routine AS
SELECT p.oid::regprocedure AS fn, p.proname::text AS name, p.prokind, p.prosecdef, f.kind
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'billing'
LEFT JOIN billing.role_functions() f ON f.function = p.oid;
GRANT SELECT ON atk.routine TO PUBLIC;

-- What each argument of a billing function gets in a plausible call for a
-- tenant: an SQL expression, or NULL when the argument is left out (its
-- default) or unknown.  By argument name, so a new function with the usual
-- names is covered; a few names mean something else in one function.
CREATE FUNCTION atk.arg_value(fn text, arg text, typ oid, tenant text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur text := (SELECT t.currency FROM atk.tenant t WHERE t.tenant = arg_value.tenant);
    v text;
BEGIN
    v := CASE
        -- the second account: one item, nothing paid on its invoice
        WHEN fn IN ('change_subscription', 'void_invoice') AND arg = 'account_id' THEN atk.id(tenant, 'account2')::text
        WHEN fn IN ('change_subscription', 'void_invoice') AND arg = 'subscription_id' THEN atk.id(tenant, 'subscription2')::text
        WHEN fn IN ('change_subscription', 'void_invoice') AND arg = 'invoice_id' THEN atk.id(tenant, 'invoice2')::text
        WHEN fn = 'change_subscription' AND arg IN ('subscription_item_id', 'quantity') THEN NULL
        WHEN fn = 'create_coupon' AND arg = 'amount_off' AND typ = 'billing.amount'::regtype THEN NULL
        -- the plain-number form of an amount, in the currency of the account
        WHEN arg IN ('amount', 'amount_off') AND typ = 'numeric'::regtype THEN '1.00'
        -- a one-off charge for the next invoice (the tenant's invoice is
        -- finalized: no draft to add it to)
        WHEN fn = 'add_invoice_item' AND arg = 'invoice_id' THEN NULL
        WHEN arg = 'invoice_prefix' THEN 'ATK'
        -- entitlements: a new feature's key, the feature the setup made, a
        -- value any kind of grant takes for a switch
        WHEN arg = 'key' AND fn = 'create_feature' THEN 'atk_new_feature'
        WHEN arg = 'feature' THEN 'atk_feature'
        WHEN arg = 'value' AND fn IN ('set_price_feature', 'set_subscription_feature') THEN 'true'
        WHEN arg IN ('kind', 'per_unit') AND fn IN ('create_feature', 'set_price_feature') THEN NULL
        WHEN arg = 'invoice_id' AND fn = 'close_dunning' THEN atk.id(tenant, 'dunning_invoice')::text
        WHEN arg = 'subscription_item_id' AND fn = 'record_usage' THEN atk.id(tenant, 'metered_item')::text
        -- a batch of one event of the tenant's metered item
        WHEN fn = 'record_usage_batch' AND arg = 'account_ids' THEN pg_catalog.format('{%s}', atk.id(tenant, 'account'))
        WHEN fn = 'record_usage_batch' AND arg = 'subscription_item_ids' THEN pg_catalog.format('{%s}', atk.id(tenant, 'metered_item'))
        WHEN fn = 'record_usage_batch' AND arg = 'quantities' THEN '{1}'
        WHEN fn = 'record_usage_batch' AND arg = 'idempotency_keys' THEN '{atk-key}'
        WHEN arg = 'method' AND fn = 'issue_credit_note' THEN NULL
        WHEN arg = 'method' THEN 'card'
        WHEN arg = 'name' AND fn = 'create_dunning_policy' THEN 'atk policy'
        WHEN arg = 'code' AND fn = 'apply_coupon' THEN 'ATK10'
        WHEN arg = 'code' THEN 'ATKNEW'
        WHEN arg = 'account_id' THEN atk.id(tenant, 'account')::text
        WHEN arg = 'accounts' THEN pg_catalog.format('{%s}', atk.id(tenant, 'account'))
        WHEN arg = 'invoice_id' THEN atk.id(tenant, 'invoice')::text
        WHEN arg = 'invoice_ids' THEN pg_catalog.format('{%s}', atk.id(tenant, 'invoice'))
        WHEN arg = 'invoice_line_id' THEN atk.id(tenant, 'invoice_line')::text
        WHEN arg = 'payment_id' THEN atk.id(tenant, 'payment')::text
        WHEN arg = 'subscription_id' THEN atk.id(tenant, 'subscription')::text
        WHEN arg = 'subscription_item_id' THEN atk.id(tenant, 'item')::text
        WHEN arg = 'payment_method_id' THEN atk.id(tenant, 'payment_method')::text
        WHEN arg = 'attempt_id' THEN atk.id(tenant, 'attempt')::text
        WHEN arg = 'entity_id' THEN atk.id(tenant, 'entity')::text
        WHEN arg = 'event_ids' THEN pg_catalog.format('{%s}', atk.id(tenant, 'event'))
        -- the delivery worker's: an event's delivery on the webhook the setup claimed
        WHEN arg = 'event_id' AND fn = 'delivery_email' THEN atk.id(tenant, 'emailed_event')::text
        WHEN arg = 'event_id' THEN atk.id(tenant, 'event')::text
        WHEN arg = 'channels' THEN '{email,webhook:atk}'
        WHEN arg = 'channel' THEN 'webhook:atk'
        WHEN arg = 'outcome' THEN 'failed'
        WHEN arg = 'detail' THEN 'atk detail'
        WHEN arg = 'price_id' AND fn = 'change_subscription' THEN atk.id(tenant, 'price2')::text
        -- a price migration between the tenant's two prices; a change two
        -- months ahead, in a period not billed yet
        WHEN arg = 'from_price_id' THEN atk.id(tenant, 'price')::text
        WHEN arg = 'to_price_id' THEN atk.id(tenant, 'price2')::text
        WHEN arg = 'effective_on' THEN (atk.clock()::date + 62)::text
        WHEN arg = 'account_ids' THEN pg_catalog.format('{%s}', atk.id(tenant, 'account'))
        WHEN arg = 'price_id' THEN atk.id(tenant, 'price')::text
        WHEN arg = 'product_id' THEN atk.id('-', 'product')::text
        WHEN arg = 'tax_rate_id' THEN atk.id('-', 'tax_rate')::text
        WHEN arg IN ('cycle_run_id') THEN atk.id('-', 'cycle_run')::text
        WHEN arg = 'run_id' AND fn IN ('_cycle_bill_step', '_cycle_drafts_step') THEN atk.id('-', 'cycle_run')::text
        WHEN arg IN ('run_id') THEN atk.id('-', 'dunning_run')::text
        -- a batch step of billing._run_in_batches: the first batch
        WHEN arg = 'state' AND typ = 'jsonb'::regtype THEN '{}'
        WHEN arg = 'default_policy' THEN atk.id('-', 'policy')::text
        WHEN arg IN ('after_account', 'after_subscription', 'after_invoice') THEN '0'
        WHEN arg = 'after_date' THEN '2000-01-01'
        WHEN arg IN ('role_name', 'writer', 'operator', 'reporting') AND typ = 'name'::regtype THEN session_user::text
        WHEN arg = 'from_currency' THEN 'CHF'
        WHEN arg = 'to_currency' THEN 'JPY'
        WHEN arg = 'rate' AND fn = 'set_exchange_rate' THEN '1.5'
        WHEN arg = 'on_date' AND fn = 'set_exchange_rate' THEN '2026-01-01'
        WHEN arg IN ('currency', 'default_currency') THEN cur
        WHEN typ = 'billing.amount'::regtype THEN '1.00 ' || cur
        WHEN arg IN ('quantity', 'max_attempts') THEN '1'
        WHEN arg = 'unit_amount' THEN '5.00'
        WHEN arg IN ('percent_off', 'percentage') THEN '10'
        WHEN arg = 'percent' THEN '2'
        WHEN arg IN ('within_days', 'days') THEN '10'
        WHEN arg = 'installments' THEN '2'
        WHEN arg = 'batch_size' THEN '100'
        WHEN arg = 'retry_days' THEN '{1,3}'
        WHEN arg = 'duration' THEN 'once'
        WHEN arg = 'policy' THEN 'strict'
        WHEN arg = 'succeeded' THEN 'true'
        WHEN arg = 'format' THEN 'html'
        WHEN arg = 'token' THEN 'tok_atk'
        WHEN arg = 'worker' THEN 'atk-worker'
        WHEN arg = 'idempotency_key' THEN 'atk-key'
        WHEN arg = 'email' THEN 'atk@example.com'
        WHEN arg IN ('as_of', 'resume_date', 'cancel_date', 'effective_date', 'received_on', 'start_date',
                     'anchor', 'first_due', 'occurred_at', 'at', 'from_date', 'to_date')
             AND typ IN ('date'::regtype, 'timestamptz'::regtype)
        THEN CASE WHEN arg = 'as_of' THEN atk.clock()::date::text WHEN arg = 'at' THEN atk.clock()::text
                  WHEN arg = 'from_date' THEN '2026-01-01' WHEN arg = 'to_date' THEN '2026-12-31' END
        WHEN arg = 'metadata' THEN '{"note": "atk"}'
        WHEN arg IN ('name', 'legal_name', 'description', 'nickname', 'reason', 'reference', 'external_ref',
                     'address', 'tax_id', 'jurisdiction', 'provider_reference', 'value')
        THEN 'atk ' || pg_catalog.replace(arg, '_', ' ')
    END;
    RETURN v;
END $$;

-- A call of fn as a statement: every argument arg_value knows (named
-- notation), tenant per argument from tenants (default: tenant), values
-- replaced by overrides (argument name -> SQL value text, JSON null: leave
-- it out).  NULL when an argument without a default has no value.
CREATE FUNCTION atk.call_sql(fn regprocedure, tenant text DEFAULT 'A', tenants jsonb DEFAULT '{}',
                             overrides jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p pg_catalog.pg_proc;
    a record;
    v text;
    args text[] := '{}';
BEGIN
    SELECT * INTO p FROM pg_catalog.pg_proc x WHERE x.oid = fn;
    FOR a IN SELECT * FROM atk.in_args(fn) ORDER BY pos LOOP
        IF overrides ? a.name THEN
            v := overrides ->> a.name;
            IF v IS NULL THEN
                CONTINUE;
            END IF;
        ELSE
            v := atk.arg_value(p.proname, a.name, a.typ, coalesce(tenants ->> a.name, tenant));
            IF v IS NULL THEN
                IF a.pos <= p.pronargs - p.pronargdefaults THEN
                    RETURN NULL;
                END IF;
                CONTINUE;
            END IF;
            v := pg_catalog.format('%L::%s', v, atk.qtype(a.typ));
        END IF;
        args := args || pg_catalog.format('%I => %s', a.name, v);
    END LOOP;
    RETURN CASE WHEN p.prokind = 'p' THEN 'CALL ' ELSE 'SELECT * FROM ' END
           || fn::regproc::text || '(' || pg_catalog.array_to_string(args, ', ') || ')';
END $$;

-- The input arguments of fn: name, type, position among the inputs.
CREATE FUNCTION atk.in_args(fn regprocedure) RETURNS TABLE (name text, typ oid, pos bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.name, a.typ, pg_catalog.row_number() OVER (ORDER BY a.o)
    FROM pg_catalog.pg_proc p,
         ROWS FROM (pg_catalog.unnest(p.proargnames),
                    pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])),
                    pg_catalog.unnest(p.proargmodes)) WITH ORDINALITY a(name, typ, mode, o)
    WHERE p.oid = fn AND coalesce(a.mode, 'i') IN ('i', 'b', 'v') AND a.name IS NOT NULL
$$;

-- The input arguments of fn without a value in a plausible call.
CREATE FUNCTION atk.unmapped(fn regprocedure) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.string_agg(a.name, ', ')
    FROM pg_catalog.pg_proc p, atk.in_args(fn) a
    WHERE p.oid = fn AND a.pos <= p.pronargs - p.pronargdefaults
      AND atk.arg_value(p.proname, a.name, a.typ, 'A') IS NULL
$$;

-- Runs one statement; '00000' or 'SQLSTATE message'.  path: the
-- search_path the statement runs with (an attacker's), NULL: the harness's.
CREATE FUNCTION atk.try(stmt text, path text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF path IS NOT NULL THEN
        PERFORM pg_catalog.set_config('search_path', path, true);
    END IF;
    EXECUTE stmt;
    RETURN '00000';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;

-- What the statement ends in ('00000' or 'SQLSTATE message'), undone at
-- once: a baseline the attacks compare with.
CREATE FUNCTION atk.attempt(stmt text, path text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result text;
BEGIN
    BEGIN
        result := atk.try(stmt, path);
        RAISE EXCEPTION USING ERRCODE = 'AT999';
    EXCEPTION WHEN SQLSTATE 'AT999' THEN
        NULL;
    END;
    RETURN result;
END $$;

-- The first column the statement returns, as text, undone at once (its
-- error, when it fails).
CREATE FUNCTION atk.attempt_value(stmt text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    result text;
BEGIN
    BEGIN
        EXECUTE stmt INTO result;
        RAISE EXCEPTION USING ERRCODE = 'AT999';
    EXCEPTION WHEN SQLSTATE 'AT999' THEN
        NULL;
    WHEN OTHERS THEN
        result := SQLSTATE || ' ' || SQLERRM;
    END;
    RETURN result;
END $$;

-- One attack: the statement, as the session's role, must end in one of the
-- SQLSTATEs wanted (LIKE patterns: '22%' is a class) and change no row of
-- any billing table.  Whatever it
-- did is undone afterwards, so each attack starts from the same data.
CREATE FUNCTION atk.expect(name text, stmt text, want text[], path text DEFAULT NULL) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d0 jsonb;
    d1 jsonb;
    result text;
    changed text;
BEGIN
    BEGIN
        d0 := atk.digest();
        result := atk.try(stmt, path);
        d1 := atk.digest();
        RAISE EXCEPTION USING ERRCODE = 'AT999';
    EXCEPTION WHEN SQLSTATE 'AT999' THEN
        NULL;
    END;
    changed := atk.changed(d0, d1);
    RETURN QUERY SELECT * FROM atk.report(name, pg_catalog.left(result, 5) LIKE ANY (want) AND changed IS NULL,
        pg_catalog.format('%s as %s: %s (want %s)%s', stmt, pg_catalog.current_setting('role') || '/' || session_user,
                          result, pg_catalog.array_to_string(want, ' or '),
                          CASE WHEN changed IS NOT NULL THEN '; changed rows of ' || changed ELSE '' END));
END $$;

-- One attack of several statements: each must end in one of the
-- SQLSTATEs wanted and change no row; the first failures are listed.
CREATE FUNCTION atk.expect_all(name text, stmts text[], want text[]) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
    line text;
    bad text[] := '{}';
BEGIN
    FOREACH stmt IN ARRAY stmts LOOP
        FOR line IN SELECT * FROM atk.expect(name, stmt, want) LOOP
            IF line LIKE '      %' THEN
                bad := bad || pg_catalog.ltrim(line);
            END IF;
        END LOOP;
    END LOOP;
    RETURN QUERY SELECT * FROM atk.report(name, pg_catalog.cardinality(bad) = 0,
        pg_catalog.array_to_string(bad[1:2], E'\n')
        || CASE WHEN pg_catalog.cardinality(bad) > 2
                THEN pg_catalog.format(E'\n(and %s more of the %s statements)', pg_catalog.cardinality(bad) - 2,
                                       pg_catalog.cardinality(stmts))
                ELSE '' END);
END $$;

-- One line per attack, as pg_regress prints them; the detail under a
-- failure.
CREATE FUNCTION atk.report(name text, ok boolean, detail text DEFAULT NULL) RETURNS SETOF text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.format('attack %s ... %s', name, CASE WHEN ok THEN 'ok' ELSE 'FAILED' END)
    UNION ALL
    SELECT '      ' || pg_catalog.replace(detail, E'\n', E'\n      ') WHERE NOT coalesce(ok, false) AND detail IS NOT NULL
$$;

-- What an attack found that is no failure, printed under its line.
CREATE FUNCTION atk.note(detail text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '      note: ' || detail
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA atk TO PUBLIC;
