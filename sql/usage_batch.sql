--
-- Usage in batches: billing.record_usage_batch records many events in one
-- call with the rules of billing.record_usage, counts what it inserted and
-- what were duplicates, and fails as a whole on one bad event.
--
CREATE DATABASE usage_batch_regress;
\c usage_batch_regress
\i test/regress_own_database.sql
\i test/regress_digest.sql
\set SHOW_CONTEXT never

-- Two sellers; Acme's customers Alice (New York) and Bob (Tokyo) with a
-- metered item each, Alice also a licensed one; Globex's customer Gina.
SELECT billing.create_billing_entity('Acme', 'USD') AS acme \gset
SELECT billing.create_billing_entity('Globex', 'USD') AS globex \gset
SELECT billing.create_account(:acme, 'Alice', timezone => 'America/New_York') AS alice \gset
SELECT billing.create_account(:acme, 'Bob', timezone => 'Asia/Tokyo') AS bob \gset
SELECT billing.create_account(:globex, 'Gina') AS gina \gset
SELECT billing.create_product('API') AS product \gset
SELECT billing.create_price(:product, 'USD', 10.00) AS flat \gset
SELECT billing.create_price(:product, 'USD', 0.01, scheme => 'per_unit', usage_type => 'metered') AS metered \gset
SELECT billing.subscribe(:alice, :flat) AS alice_flat_sub \gset
SELECT billing.subscribe(:alice, :metered) AS alice_sub \gset
SELECT billing.subscribe(:bob, :metered) AS bob_sub \gset
SELECT billing.subscribe(:gina, :metered) AS gina_sub \gset
SELECT subscription_item_id AS alice_flat FROM billing.subscription_item WHERE subscription_id = :alice_flat_sub \gset
SELECT subscription_item_id AS alice_item FROM billing.subscription_item WHERE subscription_id = :alice_sub \gset
SELECT subscription_item_id AS bob_item FROM billing.subscription_item WHERE subscription_id = :bob_sub \gset
SELECT subscription_item_id AS gina_item FROM billing.subscription_item WHERE subscription_id = :gina_sub \gset

CREATE VIEW events AS
SELECT a.name, e.idempotency_key, e.quantity, e.value, e.occurred_at, e.usage_date
FROM billing.usage_event e JOIN billing.account a USING (account_id) ORDER BY e.usage_event_id;

-- 1. A batch of two accounts: each event once, the day in each account's
-- time zone (Tokyo is already on the next day at 16:00 UTC), without a
-- time today.
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :bob, :alice], ARRAY[:alice_item, :bob_item, :alice_item],
    '{100, 7, 0}', '{a-1, b-1, a-2}', '{2026-01-01 16:00+00, 2026-01-01 16:00+00, NULL}', '{gpt, NULL, NULL}');
SELECT * FROM events;

-- 2. Duplicates: within one batch (the same key twice, the second without a
-- time matches any time) and across batches (keys stored before), counted
-- and not written again.
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :alice, :bob, :alice], ARRAY[:alice_item, :alice_item, :bob_item, :alice_item],
    '{5, 5, 7, 100}', '{a-3, a-3, b-1, a-1}', '{2026-01-01 11:00+00, NULL, NULL, 2026-01-01 16:00+00}', '{NULL, NULL, NULL, gpt}');
-- a batch of nothing but duplicates, and the same batch again
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :bob], ARRAY[:alice_item, :bob_item], '{100, 7}', '{a-1, b-1}',
    usage_values => '{gpt, NULL}');
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :bob], ARRAY[:alice_item, :bob_item], '{100, 7}', '{a-1, b-1}',
    usage_values => '{gpt, NULL}');
-- the same key in two accounts is two events
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :bob], ARRAY[:alice_item, :bob_item], '{1, 1}', '{same, same}');
-- the single call sees what the batch stored
SELECT billing.record_usage(:bob, :bob_item, 7, 'b-1') = (SELECT usage_event_id FROM billing.usage_event
                                                          WHERE idempotency_key = 'b-1') AS single_call_finds_it;

-- 3. Empty arrays: nothing to do.
SELECT * FROM billing.record_usage_batch('{}', '{}', '{}', '{}');
SELECT * FROM billing.record_usage_batch('{}', '{}', '{}', '{}', '{}', '{}');

-- 4. Largest values: a quantity of 10^20 with 12 decimals, a key and a
-- value of 10,000 characters, a time ten years ahead (the last day billing
-- accepts), 1,000 events in one call.
SELECT * FROM billing.record_usage_batch(ARRAY[:alice], ARRAY[:alice_item], '{100000000000000000000.000000000001}',
    ARRAY[repeat('k', 10000)], '{2036-01-01 12:00+00}', ARRAY[repeat('v', 10000)]);
SELECT quantity, length(idempotency_key) AS key_length, length(value) AS value_length, usage_date
FROM billing.usage_event WHERE length(idempotency_key) = 10000;
SELECT * FROM billing.record_usage_batch(array_fill(:alice::bigint, ARRAY[1000]), array_fill(:alice_item::bigint, ARRAY[1000]),
    array_fill(1::numeric, ARRAY[1000]), ARRAY(SELECT 'bulk-' || i FROM generate_series(1, 1000) i));
SELECT count(*) AS bulk_events, sum(quantity) AS bulk_quantity FROM billing.usage_event WHERE idempotency_key LIKE 'bulk-%';

-- 5. Bad inputs: a clean error with its SQLSTATE, naming the event, and
-- nothing written (the digest of every table before and after).
CREATE TEMP TABLE before AS SELECT * FROM billing_digest();
SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    -- arrays of different lengths, of two dimensions, missing
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s], ''{1, 1}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s], ARRAY[%s], ''{1}'', ''{x-1}'', ''{}'')', :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s], ARRAY[%s], ''{1}'', ''{x-1}'', usage_values => ''{a, b}'')', :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[[%s]], ARRAY[[%s]], ''{{1}}'', ''{{x-1}}'')', :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(NULL, ARRAY[%s], ''{1}'', ''{x-1}'')', :alice_item)),
    ('SELECT billing.record_usage_batch(''{}'', ''{}'', ''{}'', NULL)'),
    -- a good event, then a bad one: the item of another account, a
    -- licensed item, an item that does not exist, a NULL account
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :bob_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :alice_flat)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, 999999], ''{1, 1}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, NULL], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'')', :alice, :alice_item, :alice_item)),
    -- negative, NULL, NaN and infinite quantities
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, -0.001}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, NULL}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, NaN}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, Infinity}'', ''{x-1, x-2}'')', :alice, :alice, :alice_item, :alice_item)),
    -- NULL and empty keys
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, NULL}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, ""}'')', :alice, :alice, :alice_item, :alice_item)),
    -- a key used before for other usage, and twice in the batch for other usage
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 99}'', ''{x-1, a-1}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, a-1}'', usage_values => ''{NULL, other}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, a-1}'', ''{NULL, 2026-01-01 16:00:01+00}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 2}'', ''{x-1, x-1}'')', :alice, :alice, :alice_item, :alice_item)),
    -- times: infinite, more than ten years ahead, before the item started
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'', ''{NULL, infinity}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'', ''{NULL, -infinity}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'', ''{NULL, 2036-01-02 12:00+00}'')', :alice, :alice, :alice_item, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{x-1, x-2}'', ''{NULL, 2025-06-01 12:00+00}'')', :alice, :alice, :alice_item, :alice_item)),
    -- a card number in a key or a value
    (format('SELECT billing.record_usage_batch(ARRAY[%s], ARRAY[%s], ''{1}'', ''{4111111111111111}'')', :alice, :alice_item)),
    (format('SELECT billing.record_usage_batch(ARRAY[%s], ARRAY[%s], ''{1}'', ''{x-1}'', usage_values => ''{"card 4111 1111 1111 1111"}'')', :alice, :alice_item))
) t(v);
SELECT * FROM before EXCEPT SELECT * FROM billing_digest();

-- 6. A writer bound to Acme: Acme's events go in; an event of Globex's
-- account, or an Acme account with Globex's item, fails the whole batch
-- with 42501 or 23503, and Globex's usage is untouched.
SELECT billing.grant_roles('regress_usage_writer', 'regress_usage_operator', 'regress_usage_reporting');
CREATE ROLE regress_usage_app IN ROLE regress_usage_writer;
SELECT billing.bind_role_to_entity('regress_usage_app', :acme);
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT * FROM billing_digest();
GRANT SELECT ON before TO PUBLIC;
SET ROLE regress_usage_app;
SELECT billing_test_error(format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{w-1, w-2}'')',
    :alice, :gina, :alice_item, :gina_item)) AS other_tenants_account;
SELECT billing_test_error(format('SELECT billing.record_usage_batch(ARRAY[%s], ARRAY[%s], ''{1}'', ''{w-1}'')',
    :gina, :gina_item)) AS only_other_tenants_account;
SELECT billing_test_error(format('SELECT billing.record_usage_batch(ARRAY[%s, %s], ARRAY[%s, %s], ''{1, 1}'', ''{w-1, w-2}'')',
    :alice, :alice, :alice_item, :gina_item)) AS other_tenants_item;
SELECT billing_test_error(format('SELECT billing.record_usage_batch(ARRAY[%s, 999999], ARRAY[%s, 1], ''{1, 1}'', ''{w-1, w-2}'')',
    :alice, :alice_item)) AS account_that_does_not_exist;
RESET ROLE;
SELECT * FROM before EXCEPT SELECT * FROM billing_digest();
SET ROLE regress_usage_app;
SELECT * FROM billing.record_usage_batch(ARRAY[:alice, :bob], ARRAY[:alice_item, :bob_item], '{1, 2}', '{w-1, w-2}');
RESET ROLE;
SELECT name, idempotency_key, quantity FROM events WHERE idempotency_key LIKE 'w-%';

-- 7. Events name their item without a foreign key: every statement's new
-- events are checked at once (a direct INSERT too), and items are never
-- deleted and keep their key, nor does an event change its item (55000).
SELECT billing_test_error(format($$INSERT INTO billing.usage_event (account_id, subscription_item_id, quantity, occurred_at,
    usage_date, idempotency_key) VALUES (%s, %s, 1, '2026-01-01', '2026-01-01', 'direct-1'), (%s, %s, 1, '2026-01-01',
    '2026-01-01', 'direct-2')$$, :alice, :alice_item, :alice, :bob_item)) AS direct_insert_of_another_accounts_item;
SELECT billing_test_error(format('DELETE FROM billing.subscription_item WHERE subscription_item_id = %s', :alice_item)) AS delete_item;
SET client_min_messages = warning;
SELECT billing_test_error('TRUNCATE billing.subscription_item CASCADE') AS truncate_items;
RESET client_min_messages;
SELECT billing_test_error(format('UPDATE billing.subscription_item SET subscription_item_id = 99 WHERE subscription_item_id = %s',
    :alice_item)) AS renumber_item;
SELECT billing_test_error(format('UPDATE billing.usage_event SET subscription_item_id = %s WHERE idempotency_key = ''a-1''',
    :bob_item)) AS move_event;
-- an update of other columns passes
UPDATE billing.subscription_item SET quantity = quantity WHERE subscription_item_id = :alice_item;
SELECT count(*) AS alice_events FROM billing.usage_event WHERE account_id = :alice;

-- 8. What the batch stored breaks no invariant.
SELECT * FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE usage_batch_regress;
DROP ROLE regress_usage_app, regress_usage_writer, regress_usage_operator, regress_usage_reporting;
