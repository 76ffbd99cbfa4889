-- :n accounts from id :first on, each with one active monthly subscription
-- of one flat item due on 2024-01-01, every other account taxed; then
-- VACUUM ANALYZE and CHECKPOINT.  Set-based, not timed.  Used by
-- bench/cycle.sh and bench/tools/compare.sh (psql -v first=... -v n=...).
INSERT INTO billing.account (account_id, entity_id, name, currency, tax_rate_id)
SELECT i, 1, 'customer ' || i, 'USD', CASE WHEN i % 2 = 0 THEN 1 END
FROM generate_series(:first::bigint, :first + :n - 1) i;
INSERT INTO billing.subscription (account_id, subscription_id, status, anchor, cadence, start_date, next_bill_date)
SELECT i, i, 'active', '2024-01-01', '1 month', '2024-01-01', '2024-01-01'
FROM generate_series(:first::bigint, :first + :n - 1) i;
INSERT INTO billing.subscription_item (account_id, subscription_item_id, subscription_id, price_id, quantity, started_on)
SELECT i, i, i, 1, 1, '2024-01-01' FROM generate_series(:first::bigint, :first + :n - 1) i;
VACUUM ANALYZE;
CHECKPOINT;
