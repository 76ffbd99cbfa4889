-- test/citus/operations.sql: the main job on a distributed billing, one
-- operation at a time, each in its own transaction (psql without
-- ON_ERROR_STOP), run by test/citus/run.sh on the coordinator.  Prints
-- "op <name> ... ok" or the error; run.sh counts the lines.
\set VERBOSITY default
SET billing.clock = '2025-01-01 12:00+00';
SELECT billing.create_billing_entity('Acme', 'EUR') AS e \gset
SELECT 'op create_billing_entity ok' WHERE :e > 0;
SELECT billing.create_tax_rate('VAT', 19) AS vat \gset
SELECT billing.create_product('Plan') AS prod \gset
SELECT billing.create_price(:prod, 'EUR', 19.00) AS price \gset
SELECT billing.create_price(:prod, 'EUR', 0.10, scheme => 'per_unit', usage_type => 'metered') AS metered \gset
SELECT 'op catalog ok';
SELECT billing.create_account(:e, 'customer ' || i, currency => 'EUR') FROM generate_series(1, 20) i;
SELECT CASE WHEN count(*) = 20 THEN 'op create_account ok' ELSE 'op create_account FAILED' END FROM billing.account;
SELECT min(account_id) AS a FROM billing.account \gset
SELECT 'op subscribe ' || CASE WHEN billing.subscribe(:a, :price, start_date => '2025-01-01', invoice_now => false) > 0
       THEN 'ok' END;
-- the writer functions are called from the coordinator for a list of
-- accounts, not per row of a distributed table (that would run them on a
-- shard, where they cannot reach the other shards)
SELECT array_agg(account_id) AS others FROM billing.account WHERE account_id <> :a \gset
SELECT 'op subscribe_many ' || count(*) || ' ok'
FROM (SELECT billing.subscribe(x, :price, start_date => '2025-01-01', invoice_now => false)
      FROM unnest(:'others'::bigint[]) x) x;
SELECT billing.subscribe(:a, :metered, start_date => '2025-01-01', invoice_now => false) AS msub \gset
SELECT subscription_item_id AS item FROM billing.subscription_item WHERE subscription_id = :msub \gset
SELECT 'op record_usage ' || CASE WHEN billing.record_usage(:a, :item, 5, 'u1') IS NOT NULL THEN 'ok' END;
SELECT 'op preview_invoice ' || count(*) || ' ok' FROM billing.preview_invoice(:a);
SET billing.clock = '2025-02-01 12:00+00';
CALL billing.run_cycle();
SELECT 'op run_cycle ' || CASE WHEN count(*) > 0 THEN 'ok' ELSE 'FAILED (no invoices)' END FROM billing.invoice;
SELECT 'op apply_payment ' || CASE WHEN billing.apply_payment(:a, 10.00, 'card') > 0 THEN 'ok' END;
SELECT max(payment_id) AS pay FROM billing.payment WHERE account_id = :a \gset
SELECT 'op refund_payment ' || CASE WHEN billing.refund_payment(:a, :pay, 1.00) IS NOT NULL THEN 'ok' END;
SET billing.clock = '2025-04-01 12:00+00';
CALL billing.run_dunning();
SELECT 'op run_dunning ' || count(*) || ' cases ok' FROM billing.dunning_case;
SELECT 'op invoice_number ' || CASE WHEN count(*) = count(DISTINCT number) THEN 'ok' ELSE 'FAILED duplicates' END
FROM billing.invoice WHERE number IS NOT NULL;
SELECT 'op account_balances ' || count(*) || ' ok' FROM billing.account_balances;
SELECT 'op ar_aging ' || count(*) || ' ok' FROM billing.ar_aging;
SELECT 'op mrr_by_month ' || count(*) || ' ok' FROM billing.mrr_by_month;
SELECT 'op revenue_by_month ' || count(*) || ' ok' FROM billing.revenue_by_month;
SELECT 'op upcoming_invoices ' || count(*) || ' ok' FROM billing.upcoming_invoices;
SELECT 'op account_statement ' || count(*) || ' ok' FROM billing.account_statement(:a, '2025-01-01', '2025-12-31');
SELECT 'op check_invariants ' || CASE WHEN count(*) = 0 THEN 'ok' ELSE 'FAILED ' || string_agg(invariant, ', ') END
FROM billing.check_invariants();
