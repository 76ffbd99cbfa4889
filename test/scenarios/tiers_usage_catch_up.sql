-- Tiers, usage aggregations, late usage, catch-up after downtime, time
-- zones, and a rerun that creates nothing.  Expected figures by hand.
\set ON_ERROR_STOP 1
\ir _helpers.psql

SET billing.clock = '2024-01-01 12:00+00';
SELECT create_billing_entity('Tiers Inc', 'USD', invoice_prefix => 'T', number_per_year => false) AS e \gset
SELECT create_product('Seats') AS seats \gset
SELECT create_product('API') AS api \gset
-- graduated: 1-10 at 5, 11-20 at 4, 21+ at 3 (+ 2.00 flat in the last tier)
SELECT create_price(:seats, 'USD', scheme => 'graduated', tiers =>
    '[{"up_to": 10, "unit_amount": 5}, {"up_to": 20, "unit_amount": 4}, {"up_to": null, "unit_amount": 3, "flat_amount": 2}]') AS grad \gset
SELECT create_price(:seats, 'USD', scheme => 'volume', tiers =>
    '[{"up_to": 10, "unit_amount": 5}, {"up_to": 20, "unit_amount": 4}, {"up_to": null, "unit_amount": 3}]') AS vol \gset
SELECT create_price(:api, 'USD', 0.0035, scheme => 'per_unit', usage_type => 'metered') AS per_call \gset
SELECT create_price(:api, 'USD', 1.00, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'max') AS peak \gset
SELECT create_price(:api, 'USD', 2.50, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'unique_count') AS users \gset
SELECT create_price(:api, 'USD', 0.10, scheme => 'per_unit', usage_type => 'metered', usage_aggregation => 'last') AS gauge \gset
SELECT create_price(:api, 'USD', 5.00, scheme => 'package', package_size => 1000, usage_type => 'metered', usage_aggregation => 'count') AS pack \gset
SELECT create_account(:e, 'Tiered', currency => 'USD', timezone => 'America/Los_Angeles') AS acct \gset
SELECT create_account(:e, 'Tokyo', currency => 'USD', timezone => 'Asia/Tokyo') AS tokyo \gset

-- 25 seats graduated: 10x5 + 10x4 + 5x3 + 2 = 107.00; volume: 25x3 = 75.00
SELECT subscribe(:acct, :grad, quantity => 25, invoice_now => false) AS g_sub \gset
SELECT subscribe(:acct, :vol, quantity => 25, invoice_now => false) AS v_sub \gset
SELECT subscribe(:acct, items => jsonb_build_array(jsonb_build_object('price_id', :per_call),
    jsonb_build_object('price_id', :peak), jsonb_build_object('price_id', :users),
    jsonb_build_object('price_id', :gauge), jsonb_build_object('price_id', :pack)), invoice_now => false) AS u_sub \gset
SELECT subscription_item_id AS i_call FROM subscription_item WHERE price_id = :per_call \gset
SELECT subscription_item_id AS i_peak FROM subscription_item WHERE price_id = :peak \gset
SELECT subscription_item_id AS i_users FROM subscription_item WHERE price_id = :users \gset
SELECT subscription_item_id AS i_gauge FROM subscription_item WHERE price_id = :gauge \gset
SELECT subscription_item_id AS i_pack FROM subscription_item WHERE price_id = :pack \gset

CALL drive('2024-01-01', '2024-01-01');
SELECT expect('graduated 25', invoices_of(:g_sub), '{"2024-01-01 107.00 USD"}'::text[]);
SELECT expect('volume 25', invoices_of(:v_sub), '{"2024-01-01 75.00 USD"}'::text[]);
SELECT expect('metered: nothing in advance', invoices_of(:u_sub), '{}'::text[]);

-- January usage (Los Angeles dates): calls 1000 + 2500 = 3500 x 0.0035 =
-- 12.25; peak max(5, 9, 7) = 9 x 1.00 = 9.00; users {a, b, a} = 2 x 2.50 =
-- 5.00; gauge last (by time) = 40 x 0.10 = 4.00; pack count 2 events -> 1
-- package = 5.00.  Total 35.25 on Feb 1.  An event at 2024-02-01 07:30 UTC
-- is still Jan 31 in Los Angeles.
SELECT record_usage(:acct, :i_call, 1000, 'c1', '2024-01-05 10:00+00'),
       record_usage(:acct, :i_call, 2500, 'c2', '2024-02-01 07:30+00'),
       record_usage(:acct, :i_peak, 5, 'p1', '2024-01-05 10:00+00'),
       record_usage(:acct, :i_peak, 9, 'p2', '2024-01-06 10:00+00'),
       record_usage(:acct, :i_peak, 7, 'p3', '2024-01-07 10:00+00'),
       record_usage(:acct, :i_users, 1, 'u1', '2024-01-05 10:00+00', 'a'),
       record_usage(:acct, :i_users, 1, 'u2', '2024-01-06 10:00+00', 'b'),
       record_usage(:acct, :i_users, 1, 'u3', '2024-01-07 10:00+00', 'a'),
       record_usage(:acct, :i_gauge, 30, 'g1', '2024-01-05 10:00+00'),
       record_usage(:acct, :i_gauge, 40, 'g2', '2024-01-20 10:00+00'),
       record_usage(:acct, :i_gauge, 10, 'g0', '2024-01-02 10:00+00'),
       record_usage(:acct, :i_pack, 1, 'k1', '2024-01-05 10:00+00'),
       record_usage(:acct, :i_pack, 1, 'k2', '2024-01-06 10:00+00');
-- the same key again is the same event, not a second one
SELECT expect('idempotent usage', record_usage(:acct, :i_call, 1000, 'c1', '2024-01-05 10:00+00'),
              (SELECT usage_event_id FROM usage_event WHERE idempotency_key = 'c1'));
CALL drive('2024-01-02', '2024-02-01');
SELECT expect('usage in arrears', lines_of(:u_sub, 1),
    '{"usage 12.25 USD","usage 9.00 USD","usage 5.00 USD","usage 4.00 USD","usage 5.00 USD"}'::text[]);
SELECT expect('usage period', (SELECT min(period_start) || ' ' || max(period_end) FROM invoice_line
    WHERE subscription_id = :u_sub), '2024-01-01 2024-02-01');

-- Late events for January, recorded in February: calls +500 -> 4000 x
-- 0.0035 = 14.00, 1.75 more; peak 12 -> 3 more units, 3.00; users c -> 3,
-- 2.50 more.  They go on the Mar 1 invoice, for the January period, with
-- February's usage (calls 100 = 0.35).
SET billing.clock = '2024-02-10 12:00+00';
SELECT record_usage(:acct, :i_call, 500, 'c3', '2024-01-20 10:00+00'),
       record_usage(:acct, :i_peak, 12, 'p4', '2024-01-21 10:00+00'),
       record_usage(:acct, :i_users, 1, 'u4', '2024-01-22 10:00+00', 'c'),
       record_usage(:acct, :i_call, 100, 'c4', '2024-02-05 10:00+00');
CALL drive('2024-02-02', '2024-03-01');
SELECT expect('late usage on the next invoice',
    (SELECT array_agg(l.period_start || ' ' || l.quantity || ' ' || l.amount::text ORDER BY l.invoice_line_id)
     FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
     WHERE i.subscription_id = :u_sub AND i.issue_date = '2024-03-01'),
    -- lines in item order, then period
    '{"2024-01-01 500 1.75 USD","2024-02-01 100 0.35 USD","2024-01-01 3 3.00 USD","2024-01-01 1 2.50 USD"}'::text[]);

-- Downtime: nothing runs from Mar 2 until Jun 15.  One run catches up Apr
-- 1, May 1 and Jun 1 for each licensed subscription, one invoice each.
SET billing.clock = '2024-06-15 12:00+00';
SELECT count(*) AS before FROM invoice \gset
CALL run_cycle();
SELECT expect('catch-up: every missed period', (invoices_of(:g_sub))[2:6],
    '{"2024-02-01 107.00 USD","2024-03-01 107.00 USD","2024-04-01 107.00 USD","2024-05-01 107.00 USD","2024-06-01 107.00 USD"}'::text[]);
SELECT expect('catch-up: next bill date', (SELECT next_bill_date FROM subscription WHERE subscription_id = :g_sub), '2024-07-01'::date);
-- metered: empty periods make no invoice
SELECT expect('catch-up invoices', (SELECT count(*) FROM invoice) - :before, 6::bigint);
-- run again: nothing new
CALL run_cycle();
SELECT expect('rerun creates nothing', (SELECT count(*) FROM invoice) - :before, 6::bigint);
-- numbers without a year: T-000001 ..
SELECT expect('numbers gapless, no year', (SELECT min(number) || ' ' || max(number) FROM invoice),
    'T-000001 T-' || lpad((SELECT count(*) FROM invoice)::text, 6, '0'));

-- Time zones: Tokyo is 9 hours ahead.  On 2024-06-30 at 16:00 UTC it is
-- already Jul 1 in Tokyo but Jun 30 in Los Angeles: run_cycle() without
-- as_of bills the Tokyo subscription due Jul 1 and not the LA ones.
SET billing.clock = '2024-06-15 12:00+00';
SELECT subscribe(:tokyo, :grad, quantity => 1, start_date => '2024-06-01', invoice_now => false) AS t_sub \gset
CALL run_cycle();
SET billing.clock = '2024-06-30 16:00+00';
CALL run_cycle();
SELECT expect('Tokyo billed on its Jul 1', (invoices_of(:t_sub))[2], '2024-07-01 5.00 USD');
SELECT expect('LA not yet', (SELECT next_bill_date FROM subscription WHERE subscription_id = :g_sub), '2024-07-01'::date);
SET billing.clock = '2024-07-01 07:00+00';   -- midnight in Los Angeles
CALL run_cycle();
SELECT expect('LA billed on its Jul 1', (SELECT next_bill_date FROM subscription WHERE subscription_id = :g_sub), '2024-08-01'::date);

-- Invariant 6: a run stopped midway (here: after its first batch, the
-- statement cancelled) and run again ends in the same state as one run.
SET billing.clock = '2024-07-15 12:00+00';
SELECT create_account(:e, 'Bulk ' || i, currency => 'USD') FROM generate_series(1, 30) i \g /dev/null
SELECT count(subscribe(a.account_id, :vol, quantity => a.account_id % 25 + 1, start_date => '2024-08-01', invoice_now => false))
FROM account a WHERE a.name LIKE 'Bulk %' \g /dev/null
SET billing.clock = '2024-08-01 12:00+00';
\set ON_ERROR_STOP 0
SET statement_timeout = '30ms';
CALL run_cycle(batch_size => 1);
RESET statement_timeout;
\set ON_ERROR_STOP 1
SELECT expect('an interrupted run leaves no half batch', (SELECT count(*) FROM check_invariants()), 0::bigint);
CALL run_cycle(batch_size => 7);
SELECT expect('after the rerun every bulk subscription is billed once for August',
    (SELECT count(*) FROM invoice i JOIN account a USING (account_id)
     WHERE a.name LIKE 'Bulk %' AND i.period_start = '2024-08-01'), 30::bigint);
SELECT expect('and at its volume price',
    (SELECT bool_and(i.total = price_amount(:vol, a.account_id % 25 + 1)) FROM invoice i JOIN account a USING (account_id)
     WHERE a.name LIKE 'Bulk %'), true);
SELECT expect('no invariant violated', (SELECT count(*) FROM check_invariants()), 0::bigint);
