-- Accounts, catalog, subscriptions and the invoicing cycle: normal cases,
-- edge cases and bad inputs with their SQLSTATE (billing_test_error).
-- The year-long runs are test/scenarios/*.sql; concurrency is
-- test/isolation.
\pset null '(null)'
SET search_path = public, billing;
SET billing.clock = '2024-01-01 12:00+00';

\i test/regress_helpers.sql

-- Every table that holds user data, and its sequence, is dumped by pg_dump.
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'billing' AND c.relkind IN ('r', 'S')
  AND c.oid NOT IN (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'billing')
ORDER BY 1;
-- Every function, procedure and aggregate has a comment, and every SQL or
-- PL/pgSQL one a safe search_path (run_cycle, run_dunning and their batch runner
-- cannot: a procedure with SET cannot commit).
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'billing' AND p.prokind IN ('f', 'p', 'a')
  AND (obj_description(p.oid, 'pg_proc') IS NULL
       OR (p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c') AND p.prokind <> 'a'
           AND p.proconfig IS NULL AND p.proname NOT IN ('run_cycle', 'run_dunning', '_run_in_batches')))
ORDER BY 1;

-- The seller, tax rates, accounts.
SELECT create_billing_entity('Acme GmbH', 'eur', tax_id => 'DE123', address => 'Berlin') AS entity;
SELECT entity_id, legal_name, default_currency, invoice_prefix, number_per_year, number_digits FROM billing_entity;
SELECT update_billing_entity(1, address => 'Hauptstr. 1, Berlin');
SELECT address FROM billing_entity;
SELECT create_tax_rate('VAT', 19) AS vat, create_tax_rate('VAT incl', 20, inclusive => true) AS vat_incl;
SELECT create_account(1, 'Anna', timezone => 'Europe/Berlin', email => 'anna@example.com',
                      external_ref => 'crm-1', tax_rate_id => 1) AS anna;
SELECT create_account(1, 'Bob', currency => 'USD', timezone => 'America/New_York', payment_terms_days => 14) AS bob;
SELECT create_account(1, 'Chie', currency => 'JPY', timezone => 'Asia/Tokyo', tax_exempt => true) AS chie;
SELECT update_account(2, locale => 'en-GB', metadata => '{"tier": "gold"}');
SELECT account_id, name, currency, timezone, payment_terms_days, locale, external_ref, tax_rate_id, tax_exempt, metadata
FROM account ORDER BY 1;

SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.create_billing_entity('X', 'ZZZ')$$),
    ($$SELECT billing.create_billing_entity('', 'EUR')$$),
    ($$SELECT billing.create_billing_entity('X', 'EUR', invoice_prefix => 'A B')$$),
    ($$SELECT billing.update_billing_entity(99, legal_name => 'X')$$),
    ($$SELECT billing.create_tax_rate('bad', -1)$$),
    ($$SELECT billing.create_account(99, 'Nobody')$$),
    ($$SELECT billing.create_account(1, 'Zed', currency => 'XYZ')$$),
    ($$SELECT billing.create_account(1, 'Zed', timezone => 'Mars/Olympus')$$),
    ($$SELECT billing.create_account(1, 'Zed', payment_terms_days => -1)$$),
    ($$SELECT billing.create_account(1, 'Zed', tax_rate_id => 99)$$),
    ($$SELECT billing.create_account(1, 'Zed', external_ref => 'crm-1')$$),
    ($$SELECT billing.update_account(99, name => 'X')$$)) t(v);

-- Products and prices of every scheme.
SELECT create_product('Plan') AS plan, create_product('Seats') AS seats, create_product('API') AS api;
SELECT update_product(1, description => 'the plan');
SELECT create_price(1, 'EUR', 30.00, nickname => 'basic') AS basic,          -- 1
       create_price(1, 'EUR', 60.00, nickname => 'pro', setup_fee => 25) AS pro,  -- 2
       create_price(2, 'EUR', 12.50, scheme => 'per_unit') AS seat,          -- 3
       create_price(2, 'EUR', scheme => 'graduated',
                    tiers => '[{"up_to": 10, "unit_amount": 5}, {"up_to": 20, "unit_amount": 4},
                               {"up_to": null, "unit_amount": 3}]') AS graduated,  -- 4
       create_price(2, 'EUR', scheme => 'volume',
                    tiers => '[{"up_to": 10, "unit_amount": 5}, {"up_to": 20, "unit_amount": 4},
                               {"up_to": null, "unit_amount": 3, "flat_amount": 1}]') AS volume,  -- 5
       create_price(3, 'EUR', 2.00, scheme => 'package', package_size => 100) AS package,  -- 6
       create_price(3, 'EUR', 0.0035, scheme => 'per_unit', usage_type => 'metered') AS metered, -- 7
       create_price(1, 'USD', 9.99, cadence => '1 year', trial_days => 14) AS usd_yearly,  -- 8
       create_price(1, 'JPY', 1000) AS yen;  -- 9
SELECT update_price(1, tax_rate_id => 1);
SELECT price_id, scheme, usage_type, usage_aggregation, unit_amount, package_size, cadence, setup_fee, trial_days, tax_rate_id
FROM price ORDER BY 1;

-- What quantities cost, rounded once.  Graduated 25: 10 x 5 + 10 x 4 + 5 x 3
-- = 105; volume 25: 25 x 3 + 1 = 76, 10: 50, 11: 44; package of 100 at
-- 2.00: 250 -> 3 packages; 0.0035 x 1001 = 3.5035 -> 3.50 (half_up).
SELECT q, price_amount(3, q) AS per_unit, price_amount(4, q) AS graduated, price_amount(5, q) AS volume,
       price_amount(6, q) AS package, price_amount(7, q) AS metered
FROM unnest('{0, 1, 10, 11, 20, 25, 250, 1001}'::numeric[]) q;
-- 1430 x 0.0035 = 5.005: half_up 5.01, half_even 5.00 (the mode argument;
-- the session setting billing.rounding has no say).
SELECT price_amount(7, 1430) AS half_up;
SET billing.rounding = 'half_even';
SELECT price_amount(7, 1430) AS still_half_up;
RESET billing.rounding;
SELECT price_amount(7, 1430, 'half_even') AS half_even;

SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.create_price(99, 'EUR', 1)$$),
    ($$SELECT billing.create_price(1, 'EUR', -1)$$),
    ($$SELECT billing.create_price(1, 'EUR')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, scheme => 'magic')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, cadence => '1 month 2 days')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, usage_type => 'metered')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'median')$$),
    ($$SELECT billing.create_price(1, 'EUR', scheme => 'graduated')$$),
    ($$SELECT billing.create_price(1, 'EUR', scheme => 'graduated', tiers => '[{"up_to": 10, "unit_amount": 1}]')$$),
    ($$SELECT billing.create_price(1, 'EUR', scheme => 'volume', tiers => '[{"up_to": 10}, {"up_to": 5}, {"up_to": null}]')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, tiers => '[{"up_to": null}]')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, scheme => 'package')$$),
    ($$SELECT billing.create_price(1, 'EUR', 1, tax_rate_id => 99)$$),
    ($$SELECT billing.update_price(99, nickname => 'x')$$),
    ($$SELECT billing.update_product(99, name => 'x')$$),
    ($$SELECT billing.price_amount(99, 1)$$),
    ($$SELECT billing.price_amount(3, -1)$$)) t(v);

-- Coupons.
SELECT create_coupon('TWENTY', 'forever', percent_off => 20) AS twenty,
       create_coupon('FIVE', 'once', amount_off => '5.00 EUR') AS five,
       create_coupon('TENx2', 'repeating', percent_off => 10, duration_periods => 2) AS ten_twice;
SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.create_coupon('X', 'once')$$),
    ($$SELECT billing.create_coupon('X', 'once', percent_off => 10, amount_off => '1.00 EUR')$$),
    ($$SELECT billing.create_coupon('X', 'once', percent_off => 120)$$),
    ($$SELECT billing.create_coupon('X', 'once', amount_off => '-1.00 EUR')$$),
    ($$SELECT billing.create_coupon('X', 'repeating', percent_off => 10)$$),
    ($$SELECT billing.create_coupon('X', 'sometimes', percent_off => 10)$$),
    ($$SELECT billing.create_coupon('TWENTY', 'once', percent_off => 10)$$)) t(v);

-- Subscribe: Anna to basic (VAT 19% from the price) with TWENTY, invoiced at
-- once: 30.00 - 6.00 = 24.00 net, VAT R(24.00 x 0.19) = 4.56, total 28.56.
SELECT subscribe(1, 1, coupon => 'TWENTY') AS anna_basic;
SELECT invoice_id, number, status, billing_reason, subtotal, discount, tax, total, amount_due, issue_date, due_date,
       period_start, period_end FROM invoice ORDER BY invoice_id;
SELECT invoice_id, kind, description, quantity, unit_amount, amount, period_start, period_end, tax_rate_id, source
FROM invoice_line ORDER BY invoice_line_id;
SELECT subscription_id, status, anchor, cadence, start_date, trial_end, next_bill_date, current_period_start,
       current_period_end, coupon_from, coupon_until FROM subscription;

-- Several items, a setup fee and a metered item; not invoiced yet
-- (invoice_now => false): the preview shows the first invoice.
-- pro 60.00 + 25.00 setup; 3 seats x 12.50 = 37.50; metered: nothing yet.
SELECT subscribe(1, items => '[{"price_id": 2}, {"price_id": 3, "quantity": 3}, {"price_id": 7}]',
                 start_date => '2024-01-15', invoice_now => false) AS anna_multi;
SELECT bill_date, line_no, kind, description, quantity, amount, period_start, period_end, tax_inclusive
FROM preview_invoice(1, 2);

-- Invariant 7: the preview as of a date is exactly what the run creates.
CREATE TEMP TABLE preview AS
SELECT p.subscription_id, p.bill_date, p.line_no, p.kind, p.description, p.subscription_item_id, p.price_id,
       p.quantity, p.unit_amount, p.amount::text AS amount, p.period_start, p.period_end, p.tax_rate_id,
       p.tax_inclusive
FROM account a, preview_invoice(a.account_id, NULL, '2024-01-15') p;
CALL run_cycle(as_of => '2024-01-15');
SELECT 'invariant 7: preview equals run' AS test, count(*) AS differences FROM (
    (SELECT * FROM preview
     EXCEPT
     SELECT l.subscription_id, coalesce(i.period_start, i.issue_date), row_number() OVER (PARTITION BY l.invoice_id ORDER BY l.invoice_line_id),
            l.kind, l.description, l.subscription_item_id, l.price_id, l.quantity, l.unit_amount, l.amount::text,
            l.period_start, l.period_end, l.tax_rate_id, l.tax_inclusive
     FROM invoice_line l JOIN invoice i USING (account_id, invoice_id) WHERE i.cycle_run_id = 1)
    UNION ALL
    (SELECT l.subscription_id, coalesce(i.period_start, i.issue_date), row_number() OVER (PARTITION BY l.invoice_id ORDER BY l.invoice_line_id),
            l.kind, l.description, l.subscription_item_id, l.price_id, l.quantity, l.unit_amount, l.amount::text,
            l.period_start, l.period_end, l.tax_rate_id, l.tax_inclusive
     FROM invoice_line l JOIN invoice i USING (account_id, invoice_id) WHERE i.cycle_run_id = 1
     EXCEPT
     SELECT * FROM preview)) x;
SELECT (SELECT count(*) FROM preview) AS previewed_lines;
SELECT cycle_run_id, as_of, status, batches, subscriptions, invoices, lines, errors FROM cycle_run;
-- Running again for the same day creates nothing.
CALL run_cycle(as_of => '2024-01-15');
SELECT cycle_run_id, status, subscriptions, invoices FROM cycle_run ORDER BY 1;
SELECT count(*) AS invoices FROM invoice;

-- Usage with idempotency keys; late usage goes on the next invoice.
SELECT subscription_item_id AS metered_item FROM subscription_item WHERE price_id = 7 \gset
SELECT record_usage(1, :metered_item, 1000, 'evt-1', '2024-01-20 10:00+00') AS e1,
       record_usage(1, :metered_item, 1000, 'evt-1', '2024-01-20 10:00+00') AS e1_again,
       record_usage(1, :metered_item, 429, 'evt-2', '2024-02-14 22:59+00') AS e2;
SELECT usage_event_id, quantity, occurred_at, usage_date FROM usage_event ORDER BY 1;
SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.record_usage(1, 999, 1, 'k')$$),
    ($$SELECT billing.record_usage(1, 1, 1, 'k')$$),
    ($$SELECT billing.record_usage(1, 4, -1, 'k')$$),
    ($$SELECT billing.record_usage(1, 4, 1, '')$$),
    ($$SELECT billing.record_usage(1, 4, 2, 'evt-1', '2024-01-20 10:00+00')$$),
    ($$SELECT billing.record_usage(1, 4, 1, 'early', '2024-01-01 10:00+00')$$),
    ($$SELECT billing.record_usage(2, 4, 1, 'other-account')$$)) t(v);
-- Feb 15: 1429 x 0.0035 = 5.0015 -> 5.00 for [Jan 15, Feb 15) (evt-2 was
-- 23:59 on Feb 14 in Berlin).
CALL run_cycle(as_of => '2024-02-15');
SELECT l.kind, l.quantity, l.amount, l.period_start, l.period_end
FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
WHERE i.subscription_id = 2 AND i.issue_date = '2024-02-15' ORDER BY l.invoice_line_id;
-- A late event for January: 571 more makes 2000 x 0.0035 = 7.00, of which
-- 5.00 were billed: 2.00 on the Mar 15 invoice, for the January period.
SELECT record_usage(1, :metered_item, 571, 'evt-late', '2024-02-01 10:00+00');
CALL run_cycle(as_of => '2024-03-15');
SELECT l.kind, l.quantity, l.amount, l.period_start, l.period_end
FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
WHERE i.subscription_id = 2 AND i.issue_date = '2024-03-15' ORDER BY l.invoice_line_id;

-- Changes.  Quantity 3 -> 5 seats on Mar 25 with prorate_next: period
-- [Mar 15, Apr 15) has 31 days, [Mar 25, Apr 15) 21 of them, 10 before:
--   credit -(37.50 - R(37.50 x 10/31 = 12.0967..)) = -(37.50 - 12.10) = -25.40
--   charge   62.50 - R(62.50 x 10/31 = 20.1612..)  =   62.50 - 20.16  =  42.34
SET billing.clock = '2024-03-25 12:00+00';
SELECT change_subscription(1, 2, quantity => 5, subscription_item_id => 3) AS new_seats;
SELECT kind, description, quantity, amount, period_start, period_end, invoice_id FROM pending_item ORDER BY 1, 2;
SELECT bill_date, kind, description, quantity, amount FROM preview_invoice(1, 2) WHERE kind IN ('subscription', 'proration');

SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.change_subscription(1, 99, quantity => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => -2, subscription_item_id => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, price_id => 8, subscription_item_id => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, price_id => 99, subscription_item_id => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, subscription_item_id => 2)$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => 2, subscription_item_id => 2, proration => 'sometimes')$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => 2, subscription_item_id => 2, effective_date => '2024-03-01')$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => 2, subscription_item_id => 2, effective_date => '2024-05-01')$$),
    ($$SELECT billing.change_subscription(1, 2, quantity => 2, subscription_item_id => 99)$$),
    ($$SELECT billing.subscribe(99, 1)$$),
    ($$SELECT billing.subscribe(2, 1)$$),
    ($$SELECT billing.subscribe(1, 99)$$),
    ($$SELECT billing.subscribe(1, 1, quantity => -1)$$),
    ($$SELECT billing.subscribe(1, items => '[{"price_id": 1}, {"price_id": 8}]')$$),
    ($$SELECT billing.subscribe(1)$$),
    ($$SELECT billing.subscribe(1, 1, coupon => 'NOPE')$$),
    ($$SELECT billing.apply_coupon(2, 1, 'FIVE')$$),
    ($$SELECT billing.preview_invoice(99)$$),
    ($$SELECT billing.preview_invoice(1, 99)$$),
    ($$CALL billing.run_cycle(batch_size => 0)$$)) t(v);
-- Nothing half-written by the failures above.
SELECT count(*) AS subscriptions, (SELECT count(*) FROM subscription_item) AS items,
       (SELECT count(*) FROM pending_item) AS pending FROM subscription;

-- USD yearly with a 14-day trial for Bob (New York): trialing, nothing
-- billed until Apr 8; the anchor is the trial end.
SELECT subscribe(2, 8) AS bob_yearly \gset
-- (ids taken by the failed calls above are not reused: identity sequences)
SELECT :bob_yearly AS bob_yearly;
SELECT status, trial_end, anchor, next_bill_date FROM subscription WHERE subscription_id = :bob_yearly;
SELECT count(*) AS bob_invoices FROM invoice WHERE account_id = 2;
-- The trial ends within 3 days on Apr 5: one trial.ending event.
CALL run_cycle(as_of => '2024-04-05');
CALL run_cycle(as_of => '2024-04-06');
SELECT event_type, payload FROM outbox WHERE event_type = 'trial.ending';
CALL run_cycle(as_of => '2024-04-08');
SELECT i.number, i.total, i.period_start, i.period_end, i.due_date, s.status
FROM invoice i JOIN subscription s USING (account_id, subscription_id) WHERE i.account_id = 2;

-- Cancel.  Anna's basic at period end: it is billed through May 1, so it
-- ends on May 1, without another invoice.
SELECT cancel_subscription(1, 1);
SELECT status, cancel_on FROM subscription WHERE subscription_id = 1;
SELECT v AS call, billing_test_error(v) AS error FROM (VALUES
    ($$SELECT billing.cancel_subscription(1, 1)$$),
    ($$SELECT billing.change_subscription(1, 1, quantity => 2)$$),
    ($$SELECT billing.pause_subscription(1, 1)$$),
    ($$SELECT billing.cancel_subscription(1, 99)$$),
    ($$SELECT billing.cancel_subscription(1, 2, at_period_end => true, prorate => true)$$),
    ($$SELECT billing.cancel_subscription(1, 2, at_period_end => false, cancel_date => '2024-01-01')$$),
    ($$SELECT billing.resume_subscription(1, 2)$$)) t(v);

-- Anna's multi-item subscription now, on Apr 1, with a prorated credit.
-- Period [Mar 15, Apr 15) (31 days), unused [Apr 1, Apr 15) = 14 days,
-- 17 used:  pro   -(60.00 - R(60.00 x 17/31 = 32.903..)) = -(60.00 - 32.90) = -27.10
--           seats -(62.50 - R(62.50 x 17/31 = 34.274..)) = -(62.50 - 34.27) = -28.23
-- The seats' pending prorations (-25.40, +42.34) and the usage so far go on
-- the same final invoice.
SET billing.clock = '2024-04-01 12:00+00';
SELECT record_usage(1, :metered_item, 100, 'evt-3', '2024-03-20 10:00+00');
SELECT cancel_subscription(1, 2, at_period_end => false, prorate => true);
SELECT i.billing_reason, i.status, l.kind, l.description, l.quantity, l.amount
FROM invoice i JOIN invoice_line l USING (account_id, invoice_id)
WHERE i.subscription_id = 2 AND i.billing_reason = 'subscription_cancel' ORDER BY l.invoice_line_id;
SELECT subtotal, tax, total, amount_due FROM invoice WHERE subscription_id = 2 AND billing_reason = 'subscription_cancel';
SELECT status, canceled_on, next_bill_date FROM subscription WHERE subscription_id = 2;
CALL run_cycle(as_of => '2024-04-01');
SELECT subscription_id, status, canceled_on, next_bill_date FROM subscription ORDER BY 1;

-- Pause and resume Chie's yen subscription (tax exempt).
SET billing.clock = '2024-04-01 00:00+00';
SELECT subscribe(3, 9) AS chie_yen \gset
SELECT pause_subscription(3, :chie_yen) AS pauses_on;
SELECT billing_test_error(format('SELECT billing.pause_subscription(3, %s)', :chie_yen)) AS pause_twice;
CALL run_cycle(as_of => '2024-05-01');
SELECT status, paused_on, next_bill_date FROM subscription WHERE subscription_id = :chie_yen;
SELECT billing_test_error(format('SELECT billing.resume_subscription(3, %s, ''2024-04-30'')', :chie_yen)) AS resume_before_pause;
-- Resumed on May 11: [May 11, Jun 1) is 21 of 31 days of [May 1, Jun 1):
-- 1000 - R(1000 x 10/31 = 322.58..) = 1000 - 323 = 677 JPY.
SET billing.clock = '2024-05-11 00:00+00';
SELECT resume_subscription(3, :chie_yen);
SELECT total, period_start, period_end FROM invoice WHERE subscription_id = :chie_yen ORDER BY invoice_id;

-- The outbox, and consumers marking events done.
SELECT event_type, count(*) FROM outbox GROUP BY 1 ORDER BY 1;
SELECT mark_events_done(array_agg(event_id)) AS marked FROM outbox WHERE event_type = 'invoice.finalized';
SELECT mark_events_done(array_agg(event_id)) AS marked_again FROM outbox WHERE event_type = 'invoice.finalized';
SELECT count(*) AS pending_events FROM outbox WHERE processed_at IS NULL;

-- Numbers: gapless, per entity and year.
SELECT number FROM invoice ORDER BY number;
SELECT * FROM invoice_number_series;
SELECT * FROM check_invariants();

-- Numbers are padded to number_digits, never cut: with one digit the tenth
-- invoice is S-10.
SELECT create_billing_entity('Tiny', 'EUR', invoice_prefix => 'S', number_per_year => false, number_digits => 1) AS tiny \gset
SELECT create_account(:tiny, 'Tiny customer') AS tiny_customer \gset
SET billing.clock = '2024-06-01 00:00+00';
SELECT count(subscribe(:tiny_customer, 1)) AS subscribed FROM generate_series(1, 11);
SELECT string_agg(number, ',' ORDER BY invoice_id) AS numbers FROM invoice WHERE entity_id = :tiny;
SELECT * FROM check_invariants();
-- The cycle commits in its batch runner, a nested CALL: that works from a
-- DO block as from a CALL, and never inside a transaction block.
DO $$ BEGIN CALL billing.run_cycle(); END $$;
SELECT status, batches, errors FROM cycle_run ORDER BY cycle_run_id DESC LIMIT 1;
BEGIN;
CALL run_cycle();
ROLLBACK;
-- The batch runner takes only steps of its signature in the billing schema
-- and a run table of billing (22023), nothing half-run.
CALL billing._run_in_batches('billing.cycle_run', 1, ARRAY['billing.mark_events_done(bigint[])'::regprocedure],
                             NULL, now(), 10);
CALL billing._run_in_batches('pg_catalog.pg_class', 1, ARRAY['billing._cycle_bill_step(bigint, date, timestamptz, integer, jsonb)'::regprocedure],
                             NULL, now(), 10);
SELECT count(*) AS cycle_runs FROM cycle_run;
