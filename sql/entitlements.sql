-- Entitlements: features granted by prices, overridden per subscription,
-- combined per account from the subscriptions that give access today in
-- the account's time zone.  A database of its own.
CREATE DATABASE entitlements_regress;
\c entitlements_regress
SET client_min_messages = warning;
CREATE EXTENSION billing CASCADE;
RESET client_min_messages;
\pset null '(null)'
SET search_path = public, billing;
\i test/regress_helpers.sql

SET billing.clock = '2024-01-31 12:00+00';
SELECT create_billing_entity('Acme', 'EUR') AS acme \gset
SELECT create_product('Cloud') AS cloud \gset
SELECT create_price(:cloud, 'EUR', 10.00, nickname => 'Basic') AS basic \gset
SELECT create_price(:cloud, 'EUR', 50.00, nickname => 'Pro') AS pro \gset
SELECT create_price(:cloud, 'EUR', 5.00, scheme => 'per_unit', nickname => 'Extra storage') AS storage_pack \gset
SELECT create_price(:cloud, 'EUR', 2.00, scheme => 'per_unit', nickname => 'Seat') AS seat \gset

-- the catalog: a switch, two limits, a text
SELECT create_feature('api', 'API access') AS f_api \gset
SELECT create_feature('sso', 'Single sign-on') AS f_sso \gset
SELECT create_feature('storage_gb', 'Storage (GB)', 'limit') AS f_storage \gset
SELECT create_feature('seats', 'Seats', 'limit') AS f_seats \gset
SELECT create_feature('support', 'Support tier', 'text', 'what support the customer gets') AS f_support \gset
SELECT key, name, kind FROM feature ORDER BY feature_id;

-- Basic: API, 10 GB, standard support.  Pro: API, SSO, 100 GB, priority.
-- Extra storage: 50 GB per unit.  Seat: one seat per unit.
SELECT set_price_feature(:basic, 'api'), set_price_feature(:basic, 'storage_gb', '10'),
       set_price_feature(:basic, 'support', 'standard'), set_price_feature(:basic, 'seats', '1');
SELECT set_price_feature(:pro, 'api', 'true'), set_price_feature(:pro, 'sso', 'on'),
       set_price_feature(:pro, 'storage_gb', '100.000'), set_price_feature(:pro, 'support', 'priority');
SELECT set_price_feature(:storage_pack, 'storage_gb', '50', per_unit => true);
SELECT set_price_feature(:seat, 'seats', '1', per_unit => true);
-- setting again changes the value; values are stored normalized
SELECT set_price_feature(:basic, 'storage_gb', '20');
SELECT p.nickname, f.key, pf.value, pf.per_unit
FROM price_feature pf JOIN price p USING (price_id) JOIN feature f USING (feature_id) ORDER BY 1, 2;

-- Anna on Basic from Jan 31.  Nothing granted before her start.
SELECT create_account(:acme, 'Anna') AS anna \gset
SELECT entitled(:anna, 'api') AS before_subscribing, entitlement(:anna, 'storage_gb') AS storage,
       entitlement(:anna, 'support') AS support;
SELECT subscribe(:anna, :basic) AS anna_sub \gset
SELECT * FROM entitlements(:anna);
SELECT entitled(:anna, 'api') AS api, entitled(:anna, 'sso') AS sso, entitled(:anna, 'storage_gb') AS storage,
       entitlement(:anna, 'sso') AS sso_value;

-- An add-on of 3 storage packs on a second subscription: limits add up,
-- per unit: 20 + 3 x 50 = 170 GB.
SELECT subscribe(:anna, :storage_pack, quantity => 3) AS anna_packs \gset
SELECT entitlement(:anna, 'storage_gb') AS storage_with_packs;

-- Month end: Anna upgrades to Pro from Feb 29 (a leap day).  Until then
-- Basic's grants apply; from Feb 29 Pro's (100 + 150 = 250 GB, SSO,
-- priority support).
SELECT subscription_item_id AS anna_item FROM subscription_item WHERE subscription_id = :anna_sub \gset
SELECT change_subscription(:anna, :anna_sub, price_id => :pro, effective_date => '2024-02-29',
                           proration => 'none', subscription_item_id => :anna_item) IS NOT NULL AS changed;
SET billing.clock = '2024-02-28 23:59+00';
SELECT entitled(:anna, 'sso') AS sso_feb_28, entitlement(:anna, 'storage_gb') AS storage_feb_28,
       entitlement(:anna, 'support') AS support_feb_28;
SET billing.clock = '2024-02-29 00:00+00';
SELECT entitled(:anna, 'sso') AS sso_feb_29, entitlement(:anna, 'storage_gb') AS storage_feb_29,
       entitlement(:anna, 'support') AS support_feb_29;

-- The day is the account's: in Auckland (UTC+13 in February) it is Feb 29
-- while it is still Feb 28 in UTC.
SELECT create_account(:acme, 'Kiri', timezone => 'Pacific/Auckland') AS kiri \gset
SET billing.clock = '2024-02-27 12:00+00';
SELECT subscribe(:kiri, :basic) AS kiri_sub \gset
SELECT subscription_item_id AS kiri_item FROM subscription_item WHERE subscription_id = :kiri_sub \gset
SELECT change_subscription(:kiri, :kiri_sub, price_id => :pro, effective_date => '2024-02-29',
                           proration => 'none', subscription_item_id => :kiri_item) IS NOT NULL AS changed;
SET billing.clock = '2024-02-28 10:59+00';
SELECT billing.today('Pacific/Auckland') AS auckland_day, entitled(:kiri, 'sso') AS sso;
SET billing.clock = '2024-02-28 11:00+00';
SELECT billing.today('Pacific/Auckland') AS auckland_day, entitled(:kiri, 'sso') AS sso;

-- Overrides replace what their subscription grants: Anna's Pro gets 1 TB
-- and no SSO (a deal, a revocation); the packs' 150 still add.
SET billing.clock = '2024-03-05 12:00+00';
SELECT set_subscription_feature(:anna, :anna_sub, 'storage_gb', '1000');
SELECT set_subscription_feature(:anna, :anna_sub, 'sso', 'false');
SELECT entitlement(:anna, 'storage_gb') AS storage, entitled(:anna, 'sso') AS sso, entitled(:anna, 'api') AS api;
-- an override needs no grant (the packs grant no support), and a text
-- override wins over the grants of other subscriptions
SELECT set_subscription_feature(:anna, :anna_packs, 'support', 'enterprise');
SELECT entitlement(:anna, 'support') AS support;
SELECT * FROM entitlements(:anna);
-- removing an override brings the grants back; removing twice finds none
-- (one statement each: a statement's reads see the data as it began)
SELECT remove_subscription_feature(:anna, :anna_sub, 'sso') AS removed;
SELECT remove_subscription_feature(:anna, :anna_sub, 'sso') AS again;
SELECT entitled(:anna, 'sso') AS sso;
SELECT remove_subscription_feature(:anna, :anna_packs, 'support') AS removed;
SELECT entitlement(:anna, 'support') AS support;

-- Unlimited wins over numbers; zero is not entitled.
SELECT set_subscription_feature(:anna, :anna_packs, 'storage_gb', 'Unlimited');
SELECT entitlement(:anna, 'storage_gb') AS storage, entitled(:anna, 'storage_gb') AS entitled;
SELECT set_subscription_feature(:anna, :anna_packs, 'storage_gb', '0'),
       set_subscription_feature(:anna, :anna_sub, 'storage_gb', '0');
SELECT entitlement(:anna, 'storage_gb') AS storage, entitled(:anna, 'storage_gb') AS entitled;
SELECT remove_subscription_feature(:anna, :anna_packs, 'storage_gb'),
       remove_subscription_feature(:anna, :anna_sub, 'storage_gb');

-- Seats: one per unit of the seat item, plus Basic's one.  The largest
-- limit a grant holds, times a large quantity, is exact.
SELECT create_account(:acme, 'Bob') AS bob \gset
SELECT subscribe(:bob, :basic) AS bob_basic \gset
SELECT subscribe(:bob, :seat, quantity => 12) AS bob_seats \gset
SELECT entitlement(:bob, 'seats') AS seats;
SELECT set_price_feature(:seat, 'seats', '999999999999999.999999', per_unit => true);
SELECT entitlement(:bob, 'seats') AS seats;
SELECT set_price_feature(:seat, 'seats', '1', per_unit => true);

-- Status: past due still gives access; suspended (by dunning), paused and
-- canceled give none.
UPDATE subscription SET status = 'past_due' WHERE subscription_id = :bob_basic;
SELECT entitled(:bob, 'api') AS past_due_api;
UPDATE subscription SET status = 'suspended' WHERE subscription_id = :bob_basic;
SELECT entitled(:bob, 'api') AS suspended_api, entitlement(:bob, 'seats') AS seats_of_the_other_subscription;
UPDATE subscription SET status = 'active' WHERE subscription_id = :bob_basic;
SELECT pause_subscription(:bob, :bob_basic);
SET billing.clock = '2024-04-06 12:00+00';
CALL run_cycle();
SELECT status FROM subscription WHERE subscription_id = :bob_basic;
SELECT entitled(:bob, 'api') AS paused_api;
SELECT resume_subscription(:bob, :bob_basic);
SELECT entitled(:bob, 'api') AS resumed_api;
-- a cancellation at period end keeps access until it takes effect
SELECT cancel_subscription(:bob, :bob_basic);
SELECT status, cancel_on FROM subscription WHERE subscription_id = :bob_basic;
SELECT entitled(:bob, 'api') AS until_period_end;
SELECT cancel_subscription(:bob, :bob_basic, at_period_end => false);
SELECT entitled(:bob, 'api') AS canceled_api, entitlement(:bob, 'support') AS support;
SELECT * FROM entitlements(:bob);

-- A trial gives access.
SELECT create_account(:acme, 'Tom') AS tom \gset
SELECT subscribe(:tom, :pro, trial_days => 14) AS tom_sub \gset
SELECT status, entitled(:tom, 'sso') AS trial_sso FROM subscription WHERE subscription_id = :tom_sub;

-- A price that stops granting a feature stops it for every subscriber.
SELECT remove_price_feature(:pro, 'sso') AS removed;
SELECT remove_price_feature(:pro, 'sso') AS again;
SELECT entitled(:tom, 'sso') AS sso_after_removal;

-- Bad inputs: each a clear error, nothing written.
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM feature) AS features, (SELECT count(*) FROM price_feature) AS grants,
       (SELECT count(*) FROM subscription_feature) AS overrides;
SELECT billing_test_error($$SELECT create_feature('API', 'x')$$) AS upper_case_key;
SELECT billing_test_error($$SELECT create_feature('1api', 'x')$$) AS digit_first;
SELECT billing_test_error($$SELECT create_feature('api', 'x')$$) AS duplicate_key;
SELECT billing_test_error($$SELECT create_feature('x', 'x', 'number')$$) AS unknown_kind;
SELECT billing_test_error($$SELECT create_feature('x', '')$$) AS empty_name;
SELECT billing_test_error($$SELECT create_feature('x', 'card 4111 1111 1111 1111')$$) AS card_number_name;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L)', :pro, 'nope')) AS unknown_feature;
SELECT billing_test_error($$SELECT set_price_feature(999, 'api')$$) AS unknown_price;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'api', 'sometimes')) AS bad_switch;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L)', :pro, 'storage_gb')) AS limit_without_value;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'storage_gb', '-5')) AS negative_limit;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'storage_gb', '1.5e3')) AS exponent;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'storage_gb', '1000000000000000'))
    AS too_large;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'storage_gb', '0.0000001'))
    AS too_many_decimals;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, per_unit => true)', :pro, 'api')) AS switch_per_unit;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'support', '')) AS empty_text;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'support', repeat('x', 201)))
    AS long_text;
SELECT billing_test_error(format('SELECT set_price_feature(%s, %L, %L)', :pro, 'support', '4111 1111 1111 1111'))
    AS card_number_value;
SELECT billing_test_error(format('SELECT set_subscription_feature(%s, %s, %L)', :anna, :bob_basic, 'api'))
    AS other_accounts_subscription;
SELECT billing_test_error(format('SELECT set_subscription_feature(%s, 999, %L)', :anna, 'api')) AS unknown_subscription;
SELECT billing_test_error(format('SELECT entitled(%s, %L)', :anna, 'nope')) AS unknown_feature_check;
SELECT billing_test_error($$SELECT entitled(999, 'api')$$) AS unknown_account;
SELECT billing_test_error($$SELECT entitled(NULL, 'api')$$) AS null_account;
SELECT (SELECT count(*) FROM feature) AS features, (SELECT count(*) FROM price_feature) AS grants,
       (SELECT count(*) FROM subscription_feature) AS overrides, * FROM before;

-- Tenants: a role bound to another entity learns nothing of Anna's
-- entitlements and cannot change them; the catalog needs a role bound to
-- every entity; a reader of Anna's entity sees her overrides only.
SELECT create_billing_entity('Globex', 'EUR') AS globex \gset
SELECT create_account(:globex, 'Gus') AS gus \gset
SELECT subscribe(:gus, :basic) AS gus_sub \gset
SELECT set_subscription_feature(:gus, :gus_sub, 'seats', '7');
SELECT set_subscription_feature(:anna, :anna_sub, 'seats', '3');
SELECT billing.grant_roles('regress_ent_app', 'regress_ent_op', 'regress_ent_bi');
SELECT billing.bind_role_to_entity('regress_ent_app', :globex);
SELECT billing.bind_role_to_entity('regress_ent_bi', :acme);
SET ROLE regress_ent_app;
SELECT entitlement(:gus, 'seats') AS own_account;
SELECT billing_test_error(format('SELECT billing.entitled(%s, %L)', :anna, 'api')) AS other_tenant_check;
SELECT billing_test_error(format('SELECT count(*) FROM billing.entitlements(%s)', :anna)) AS other_tenant_list;
SELECT billing_test_error(format('SELECT billing.set_subscription_feature(%s, %s, %L, %L)', :anna, :anna_sub,
                                 'seats', '100')) AS other_tenant_override;
SELECT billing_test_error(format('SELECT billing.set_price_feature(%s, %L)', :basic, 'sso')) AS catalog_change;
SELECT billing_test_error($$SELECT billing.create_feature('x', 'x')$$) AS catalog_feature;
-- reading the table directly shows its own entity's rows only
SELECT account_id, value FROM billing.subscription_feature ORDER BY 1, 2;
RESET ROLE;
SET ROLE regress_ent_bi;
SELECT account_id, value FROM billing.subscription_feature ORDER BY 1, 2;
SELECT billing.entitled(:anna, 'api') AS reader_check;
SELECT billing_test_error(format('SELECT billing.set_subscription_feature(%s, %s, %L)', :anna, :anna_sub, 'sso'))
    AS reader_writes;
RESET ROLE;
SELECT account_id, value FROM subscription_feature ORDER BY 1;

-- A temporary table or function named like billing's changes nothing: the
-- functions pin their search_path.
CREATE TEMP TABLE feature (feature_id bigint, key text, name text, kind text, description text,
                           created_at timestamptz);
INSERT INTO pg_temp.feature VALUES (1, 'api', 'fake', 'limit', NULL, now());
SELECT entitled(:anna, 'api') AS api_with_temp_table, entitlement(:anna, 'api') AS value;
DROP TABLE pg_temp.feature;

SELECT * FROM check_invariants();
SELECT billing.unbind_role_from_entity('regress_ent_app', :globex);
SELECT billing.unbind_role_from_entity('regress_ent_bi', :acme);
DROP OWNED BY regress_ent_app, regress_ent_op, regress_ent_bi;
DROP ROLE regress_ent_app, regress_ent_op, regress_ent_bi;

\c contrib_regression
DROP DATABASE entitlements_regress;
