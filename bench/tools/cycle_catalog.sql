-- The catalog of the cycle benchmark (bench/cycle.sh, bench/tools/compare.sh):
-- one billing entity, a sales tax, one product with a flat monthly price.
CREATE EXTENSION IF NOT EXISTS billing;
SELECT billing.create_billing_entity('Bench Inc', 'USD');
SELECT billing.create_tax_rate('Sales tax', 8.875);
SELECT billing.create_product('Plan');
SELECT billing.create_price(1, 'USD', 19.99);
