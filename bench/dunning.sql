-- bench/dunning.sql - billing.run_dunning over 100k overdue invoices: the
-- first run catches up with four steps each (two reminders, one of them
-- superseded, a retry, a late-fee invoice) and moves 100k subscriptions to
-- past_due; the second run, the same day, finds nothing to do.  Run by
-- bench/run.sh: sh test/run.sh bench dunning.  Prints
--   BENCH dunning_100k_first_run_seconds <s>
--   BENCH dunning_100k_second_run_seconds <s>
--   BENCH dunning_steps_taken <n>
--   BENCH dunning_broken_invariants <n>
\set n 100000
\pset format unaligned
\pset tuples_only on
SELECT billing.create_dunning_policy('standard', NULL, true) IS NOT NULL AS policy \gset
SELECT billing.create_billing_entity('Bench Inc', 'USD') \g /dev/null
SELECT billing.create_product('Plan') \g /dev/null
SELECT billing.create_price(1, 'USD', 10.00) \g /dev/null
INSERT INTO billing.account (account_id, entity_id, name, currency, payment_terms_days)
SELECT i, 1, 'customer ' || i, 'USD', 14 FROM generate_series(1, :n) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-01-01' FROM generate_series(1, :n) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(1, :n) i;
SET billing.clock = '2024-01-01 12:00+00';
CALL billing.run_cycle(as_of => '2024-01-01', batch_size => 10000);
VACUUM ANALYZE;
SET billing.clock = '2024-01-23 12:00+00';
SELECT clock_timestamp() AS t0 \gset
CALL billing.run_dunning(batch_size => 10000);
SELECT 'BENCH dunning_100k_first_run_seconds ' || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1);
SELECT clock_timestamp() AS t0 \gset
CALL billing.run_dunning(batch_size => 10000);
SELECT 'BENCH dunning_100k_second_run_seconds ' || round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1);
SELECT 'BENCH dunning_steps_taken ' || count(*) FROM billing.dunning_action;
SELECT 'BENCH dunning_broken_invariants ' || count(*) FROM billing.check_invariants();
