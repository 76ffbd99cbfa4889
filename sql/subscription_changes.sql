-- Add-ons, scheduled changes and price migration
-- (src/sql/install/47_subscription_changes.sql).  A database of its own.
-- Amounts: R rounds half up to the cent; billing.prorate of a period
-- amount P over [s, e) for the part [a, b) is R(P(b-s)/(e-s)) - R(P(a-s)/(e-s)).
CREATE DATABASE subscription_changes_regress;
\c subscription_changes_regress
\i test/regress_own_database.sql

CREATE FUNCTION invoices_of(sub bigint) RETURNS TABLE (issue_date date, reason text, total billing.amount,
                                                       amount_due billing.amount, lines text)
LANGUAGE sql AS $$
    SELECT i.issue_date, i.billing_reason, i.total, i.amount_due,
           (SELECT string_agg(l.kind || ' ' || l.amount::text || coalesce(' ' || l.period_start || '..' || l.period_end, ''),
                              '; ' ORDER BY l.invoice_line_id)
            FROM billing.invoice_line l WHERE l.account_id = i.account_id AND l.invoice_id = i.invoice_id)
    FROM billing.invoice i WHERE i.subscription_id = sub ORDER BY i.invoice_id
$$;
CREATE FUNCTION items_of(sub bigint) RETURNS TABLE (item bigint, nickname text, quantity numeric, started_on date,
                                                    ended_on date)
LANGUAGE sql AS $$
    SELECT i.subscription_item_id, p.nickname, i.quantity, i.started_on, i.ended_on
    FROM billing.subscription_item i JOIN billing.price p USING (price_id)
    WHERE i.subscription_id = sub ORDER BY i.subscription_item_id
$$;

SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Acme', 'EUR') AS acme \gset
SELECT create_product('Cloud') AS cloud \gset
SELECT create_product('Storage') AS storage \gset
SELECT create_product('API') AS api \gset
SELECT create_price(:cloud, 'EUR', 30.00, nickname => 'basic') AS basic \gset
SELECT create_price(:cloud, 'EUR', 60.00, nickname => 'pro') AS pro \gset
SELECT create_price(:storage, 'EUR', 5.00, scheme => 'per_unit', nickname => 'storage') AS storage_pack \gset
SELECT create_price(:api, 'EUR', 0.01, scheme => 'per_unit', usage_type => 'metered', nickname => 'calls') AS calls \gset
SELECT create_price(:storage, 'USD', 5.00, scheme => 'per_unit', nickname => 'storage usd') AS storage_usd \gset
SELECT create_price(:storage, 'EUR', 50.00, cadence => '1 year', nickname => 'storage yearly') AS storage_year \gset
SELECT create_price(:storage, 'EUR', 5.00, scheme => 'per_unit', setup_fee => 2.50, nickname => 'backup') AS backup \gset
SELECT create_account(:acme, 'Ada') AS ada \gset
SELECT create_account(:acme, 'Bo') AS bo \gset
SELECT subscribe(:ada, :pro) AS sub \gset
SELECT item AS base FROM items_of(:sub) \gset

-- ---------------------------------------------------------------------------
-- Add-ons.
-- Jan 11, prorate_next: 2 x storage (10.00 a month) for [Jan 11, Feb 1) of
-- January's 31 days: R(10.00 x 31/31) - R(10.00 x 10/31) = 10.00 - 3.23 = 6.77
-- on the next invoice.
SET billing.clock = '2024-01-11 12:00+00';
SELECT add_subscription_item(:ada, :sub, :storage_pack, 2) AS addon \gset
SELECT kind, description, quantity, amount, period_start, period_end FROM pending_item
WHERE subscription_id = :sub AND invoice_id IS NULL;
-- Feb 1: one invoice, the plan and the add-on: 60.00 + 10.00 + 6.77 = 76.77
SET billing.clock = '2024-02-01 12:00+00';
CALL run_cycle();
SELECT * FROM invoices_of(:sub);

-- bad inputs, each changing nothing
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s)', :ada, :sub, :storage_usd)) AS currency;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s)', :ada, :sub, :storage_year)) AS cadence;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s)', :ada, :sub, :storage_pack)) AS twice;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, 999999)', :ada, :sub)) AS no_price;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, -1)', :ada, :sub, :backup)) AS negative;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, ''NaN'')', :ada, :sub, :backup)) AS nan;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, 1e15)', :ada, :sub, :backup)) AS too_large;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, proration => ''later'')', :ada, :sub, :backup)) AS proration;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, effective_date => ''2024-01-31'')', :ada, :sub, :backup)) AS closed_period;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, effective_date => ''2024-03-02'')', :ada, :sub, :backup)) AS after_period;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, proration => ''at_period_end'', effective_date => ''2024-03-15'')', :ada, :sub, :backup)) AS not_a_period_start;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s, effective_date => ''infinity'')', :ada, :sub, :backup)) AS infinite;
SELECT billing_test_error(format('SELECT add_subscription_item(%s, %s, %s)', :bo, :sub, :backup)) AS other_account;
SELECT count(*) AS items, (SELECT count(*) FROM pending_item WHERE invoice_id IS NULL) AS pending FROM subscription_item;

-- Feb 15, prorate_now: the add-on's unused [Feb 15, Mar 1) of February's 29
-- days (2024 is a leap year) is credited at once:
-- -(R(10.00 x 29/29) - R(10.00 x 14/29)) = -(10.00 - 4.83) = -5.17, which
-- pays part of the oldest open invoice (January: 60.00 - 5.17 = 54.83 due).
SET billing.clock = '2024-02-15 12:00+00';
SELECT remove_subscription_item(:ada, :addon, 'prorate_now');
SELECT * FROM invoices_of(:sub);
SELECT * FROM items_of(:sub);
-- the add-on is gone: removing it again, or the last item, is refused
SELECT billing_test_error(format('SELECT remove_subscription_item(%s, %s)', :ada, :addon)) AS again;
SELECT billing_test_error(format('SELECT remove_subscription_item(%s, %s)', :ada, :base)) AS last_item;
SELECT billing_test_error(format('SELECT remove_subscription_item(%s, %s)', :bo, :base)) AS other_account;
SELECT billing_test_error(format('SELECT remove_subscription_item(%s, NULL)', :ada)) AS null_item;

-- Feb 20, a metered add-on (no proration: usage is billed in arrears): its
-- usage counts from its first day; 500 + 300 calls at 0.01 = 8.00 on March's
-- invoice, with the plan's 60.00: 68.00.
SET billing.clock = '2024-02-20 12:00+00';
SELECT add_subscription_item(:ada, :sub, :calls, proration => 'none') AS meter \gset
SELECT billing_test_error(format('SELECT record_usage(%s, %s, 1, ''early'', occurred_at => ''2024-02-19 12:00+00'')', :ada, :meter)) AS before_its_start;
SELECT record_usage(:ada, :meter, 500, 'c1') > 0 AS recorded;
SET billing.clock = '2024-02-25 12:00+00';
SELECT record_usage(:ada, :meter, 300, 'c2') > 0 AS recorded;
SET billing.clock = '2024-03-01 12:00+00';
CALL run_cycle();
SELECT * FROM invoices_of(:sub) OFFSET 2;
-- Ada pays what is due: 54.83 + 76.77 + 68.00 = 199.60
SELECT apply_payment(:ada, 199.60, 'bank_transfer', idempotency_key => 'ada-1') > 0 AS paid;
SELECT sum(to_numeric(amount_due)) AS due FROM invoice WHERE account_id = :ada;

-- An add-on with a setup fee, at period end: nothing now; it would bill
-- 5.00 a month from Apr 1 and its setup fee 2.50 on the Apr 1 invoice.
SELECT add_subscription_item(:ada, :sub, :backup, proration => 'at_period_end') AS backup_item \gset
SELECT started_on FROM subscription_item WHERE subscription_item_id = :backup_item;
-- removed before it begins: it never runs, and owes no setup fee
SELECT remove_subscription_item(:ada, :backup_item, 'at_period_end');
SELECT started_on, ended_on FROM subscription_item WHERE subscription_item_id = :backup_item;
SELECT kind, amount FROM pending_item WHERE subscription_id = :sub AND invoice_id IS NULL;

-- ---------------------------------------------------------------------------
-- Scheduled changes.  Mar 1: pro -> basic from the period of Apr 15, which
-- begins on Apr 1; then 3 seats of basic from the period of Jun 10.
SELECT schedule_change(:ada, :sub, '2024-04-15', price_id => :basic, subscription_item_id => :base) AS phase1 \gset
SELECT schedule_change(:ada, :sub, '2024-06-10', quantity => 3, subscription_item_id => :phase1) AS phase2 \gset
SELECT * FROM items_of(:sub) WHERE item IN (:base, :phase1, :phase2);
SELECT kind, effective_on, replaces_item_id = :base AS replaces_base, canceled_on FROM subscription_change
ORDER BY subscription_item_id;
-- a billed period, an earlier phase than the last, bad arguments
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-03-20'', %s, subscription_item_id => %s)', :ada, :sub, :pro, :phase2)) AS billed_period;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-05-05'', %s, subscription_item_id => %s)', :ada, :sub, :pro, :phase2)) AS before_last_phase;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, NULL, %s, subscription_item_id => %s)', :ada, :sub, :pro, :phase2)) AS no_date;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''infinity'', %s, subscription_item_id => %s)', :ada, :sub, :pro, :phase2)) AS infinite;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-09-01'', %s)', :ada, :sub, :pro)) AS which_item;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-09-01'', %s, subscription_item_id => %s)', :ada, :sub, :storage_year, :phase2)) AS cadence;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-09-01'', %s, subscription_item_id => %s)', :ada, :sub, :storage_usd, :phase2)) AS currency;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-09-01'', quantity => -1, subscription_item_id => %s)', :ada, :sub, :phase2)) AS negative;
SELECT billing_test_error(format('SELECT schedule_change(%s, %s, ''2024-09-01'', %s, subscription_item_id => %s)', :bo, :sub, :pro, :phase2)) AS other_account;
SELECT billing_test_error(format('SELECT cancel_scheduled_change(%s, %s)', :ada, :base)) AS not_a_change;
SELECT billing_test_error(format('SELECT cancel_scheduled_change(%s, %s)', :bo, :phase1)) AS other_account;
SELECT billing_test_error(format('SELECT remove_subscription_item(%s, %s)', :ada, :phase2)) AS remove_a_phase;
SELECT count(*) AS items, (SELECT count(*) FROM subscription_change) AS changes FROM subscription_item;

-- The notice goes out price_change_notice_days (10) before Apr 1: not on
-- Mar 21, on Mar 22; a quantity change (phase 2) is no price change, and
-- the add-on that never ran is none either.
SELECT set_price_change_notice_days(10);
SET billing.clock = '2024-03-21 12:00+00';
CALL run_dunning();
SELECT count(*) AS notices FROM outbox WHERE event_type = 'subscription.price_change_notice';
SET billing.clock = '2024-03-22 12:00+00';
CALL run_dunning();
SELECT payload - 'subscription_id' - 'subscription_item_id' AS notice FROM outbox
WHERE event_type = 'subscription.price_change_notice';

-- Apr 1: the cycle bills basic 30.00 (and no usage: none in March).
SET billing.clock = '2024-04-01 12:00+00';
CALL run_cycle();
SELECT * FROM invoices_of(:sub) OFFSET 3;
SELECT billing_test_error(format('SELECT cancel_scheduled_change(%s, %s)', :ada, :phase1)) AS in_effect;
-- phase 2 is taken back: basic x 1 runs on, the phase never does; again is refused
SELECT cancel_scheduled_change(:ada, :phase2);
SELECT * FROM items_of(:sub) WHERE item IN (:phase1, :phase2);
SELECT billing_test_error(format('SELECT cancel_scheduled_change(%s, %s)', :ada, :phase2)) AS again;
SELECT payload ->> 'scheduled_change_canceled' = :'phase2' AS event, payload ->> 'notified' AS notified
FROM outbox WHERE payload ? 'scheduled_change_canceled';
-- a middle phase taken back: the next phase follows the item before it
SELECT schedule_change(:ada, :sub, '2024-07-01', quantity => 2, subscription_item_id => :phase1) AS p3 \gset
SELECT schedule_change(:ada, :sub, '2024-08-01', quantity => 4, subscription_item_id => :p3) AS p4 \gset
SELECT cancel_scheduled_change(:ada, :p3);
SELECT replaces_item_id = :phase1 AS follows_phase1 FROM subscription_change WHERE subscription_item_id = :p4;
SELECT * FROM items_of(:sub) WHERE item IN (:phase1, :p3, :p4);
SELECT cancel_scheduled_change(:ada, :p4);
SELECT ended_on FROM subscription_item WHERE subscription_item_id = :phase1;

-- ---------------------------------------------------------------------------
-- Price migration.  Bo and Cy are on basic (Cy in a trial ending Apr 20),
-- Dee on basic but not asked (account_ids).  Apr 1, notice 14 days:
-- Bo (monthly from Apr 1, next bill May 1) moves on May 1 (Apr 15 <= May 1);
-- with 45 days the first renewal on or after May 16 is Jun 1.
SELECT subscribe(:bo, :basic) AS bo_sub \gset
SELECT create_account(:acme, 'Cy') AS cy \gset
SELECT subscribe(:cy, :basic, trial_days => 19) AS cy_sub \gset
SELECT create_account(:acme, 'Dee') AS dee \gset
SELECT subscribe(:dee, :basic) AS dee_sub \gset
SELECT create_price(:cloud, 'EUR', 35.00, nickname => 'basic 2024') AS basic2 \gset
SELECT billing_test_error(format('SELECT migrate_price(%s, %s)', :basic, :basic)) AS to_itself;
SELECT billing_test_error(format('SELECT migrate_price(%s, %s)', :basic, :storage_usd)) AS currency;
SELECT billing_test_error(format('SELECT migrate_price(%s, %s)', :basic, :calls)) AS usage_type;
SELECT billing_test_error(format('SELECT migrate_price(%s, %s)', :basic, :storage_year)) AS cadence;
SELECT billing_test_error(format('SELECT migrate_price(999999, %s)', :basic)) AS no_price;
SELECT billing_test_error(format('SELECT migrate_price(%s, %s, -1)', :basic, :basic2)) AS negative_days;
SELECT billing_test_error(format('SELECT migrate_price(%s, %s, 366)', :basic, :basic2)) AS too_many_days;
SELECT migrate_price(:basic, :basic2, 14, ARRAY[:bo, :cy]::bigint[]) AS migrated;
SELECT a.name, i.started_on, p.nickname, c.kind
FROM subscription_change c JOIN subscription_item i ON i.account_id = c.account_id AND i.subscription_item_id = c.subscription_item_id
JOIN price p ON p.price_id = i.price_id JOIN account a ON a.account_id = c.account_id
WHERE c.kind = 'migration' ORDER BY a.name;
-- Dee is grandfathered; a second call finds nobody left on basic in Bo's and Cy's accounts
SELECT migrate_price(:basic, :basic2, 14, ARRAY[:bo, :cy]::bigint[]) AS again;
SELECT count(*) AS dee_items FROM subscription_item WHERE subscription_id = :dee_sub;
-- Dee with 45 days' notice: Jun 1
SELECT migrate_price(:basic, :basic2, 45, ARRAY[:dee]::bigint[]) AS dee;
SELECT started_on FROM subscription_item WHERE subscription_id = :dee_sub AND price_id = :basic2;
-- the notices, 10 days before: Cy's move on its first billed day (its trial
-- ends Apr 20) on Apr 10, Bo's (May 1) on Apr 21
SET billing.clock = '2024-04-10 12:00+00';
CALL run_dunning();
SET billing.clock = '2024-04-21 12:00+00';
CALL run_dunning();
SELECT a.name, o.payload ->> 'effective_date' AS effective, o.payload ->> 'days_before' AS days_before,
       o.payload ->> 'old_amount' AS old_amount, o.payload ->> 'new_amount' AS new_amount
FROM outbox o JOIN account a USING (account_id) WHERE o.event_type = 'subscription.price_change_notice'
ORDER BY o.event_id;
-- Dee's move is taken back before its notice: Dee stays on basic
SELECT subscription_item_id AS dee_move FROM subscription_change WHERE account_id = :dee \gset
SELECT cancel_scheduled_change(:dee, :dee_move);
SELECT * FROM items_of(:dee_sub);
SELECT payload ->> 'notified' AS notified FROM outbox
WHERE account_id = :dee AND payload ? 'scheduled_change_canceled';
-- May 1: Bo pays 35.00 for May; Cy 35.00 for [Apr 20, May 20), billed late
-- by this run (the cycle did not run on Apr 20) at the price of that day
SET billing.clock = '2024-05-01 12:00+00';
CALL run_cycle();
SELECT * FROM invoices_of(:bo_sub);
SELECT * FROM invoices_of(:cy_sub);
SELECT count(*) AS violations FROM check_invariants();

-- ---------------------------------------------------------------------------
-- Month ends.  Eve from May 31: periods [May 31, Jun 30), [Jun 30, Jul 31)
-- (the anchor's day, clamped to June's 30).  Jun 10, one storage pack
-- (5.00) for [Jun 10, Jun 30) of 30 days: R(5.00 x 30/30) - R(5.00 x 10/30)
-- = 5.00 - 1.67 = 3.33.  A change for Jul 15 starts with its period, Jun 30.
SET billing.clock = '2024-05-31 12:00+00';
SELECT create_account(:acme, 'Eve') AS eve \gset
SELECT subscribe(:eve, :basic) AS eve_sub \gset
SET billing.clock = '2024-06-10 12:00+00';
SELECT add_subscription_item(:eve, :eve_sub, :storage_pack) > 0 AS added;
SELECT schedule_change(:eve, :eve_sub, '2024-07-15', :pro,
                       subscription_item_id => (SELECT min(item) FROM items_of(:eve_sub))) AS eve_pro \gset
SELECT started_on FROM subscription_item WHERE subscription_item_id = :eve_pro;
-- Jun 30: pro 60.00 + storage 5.00 + 3.33 = 68.33 for [Jun 30, Jul 31)
SET billing.clock = '2024-06-30 12:00+00';
CALL run_cycle();
SELECT * FROM invoices_of(:eve_sub);
-- Dee, grandfathered after all: basic 30.00 in June
SELECT issue_date, total, lines FROM invoices_of(:dee_sub) ORDER BY issue_date DESC LIMIT 1;
SELECT count(*) AS violations FROM check_invariants();
