-- Invoicing end to end: a seller, customers in three currencies and time
-- zones, a catalog, subscriptions, a month of cycles, the invoices, a report.
\echo '== A billing entity (the seller), a tax rate, customers'
SET billing.clock = '2026-01-01 09:00+00';
SELECT create_billing_entity('Acme Cloud GmbH', 'EUR', tax_id => 'DE123456789',
                             address => 'Hauptstr. 1, 10115 Berlin') AS acme \gset
SELECT create_tax_rate('VAT', 19, jurisdiction => 'DE') AS vat \gset
SELECT create_account(:acme, 'Anna Schmidt', timezone => 'Europe/Berlin', tax_rate_id => :vat,
                      email => 'anna@example.de', external_ref => 'crm-001') AS anna \gset
SELECT create_account(:acme, 'Bob Jones', currency => 'USD', timezone => 'America/New_York',
                      payment_terms_days => 14) AS bob \gset
SELECT create_account(:acme, 'Chie Sato', currency => 'JPY', timezone => 'Asia/Tokyo') AS chie \gset
SELECT account_id, name, currency, timezone, payment_terms_days FROM account ORDER BY 1;

\echo '== The catalog: a flat plan, seats, API calls at 0.0035 each, a yen plan'
SELECT create_product('Cloud plan') AS plan, create_product('Seats') AS seats, create_product('API') AS api \gset
SELECT create_price(:plan, 'EUR', 49.00, nickname => 'Pro', setup_fee => 99) AS pro_eur \gset
SELECT create_price(:seats, 'EUR', scheme => 'graduated', nickname => 'seats',
                    tiers => '[{"up_to": 5, "unit_amount": 10}, {"up_to": null, "unit_amount": 8}]') AS seats_eur \gset
SELECT create_price(:api, 'EUR', 0.0035, scheme => 'per_unit', usage_type => 'metered', nickname => 'calls') AS api_eur \gset
SELECT create_price(:plan, 'USD', 59.00, nickname => 'Pro', trial_days => 14) AS pro_usd \gset
SELECT create_price(:plan, 'JPY', 6000, nickname => 'Pro') AS pro_jpy \gset
SELECT create_coupon('LAUNCH', 'repeating', percent_off => 25, duration_periods => 2) AS launch \gset
SELECT price_id, nickname, currency, scheme, usage_type, unit_amount, setup_fee, trial_days FROM price ORDER BY 1;

\echo '== Subscriptions: Anna (plan + 8 seats + API, coupon), Bob (14-day trial), Chie'
SELECT subscribe(:anna, items => jsonb_build_array(
                     jsonb_build_object('price_id', :pro_eur),
                     jsonb_build_object('price_id', :seats_eur, 'quantity', 8),
                     jsonb_build_object('price_id', :api_eur)),
                 coupon => 'LAUNCH', invoice_now => false) AS anna_sub \gset
SELECT subscribe(:bob, :pro_usd) AS bob_sub \gset
SELECT subscribe(:chie, :pro_jpy, start_date => '2026-01-15', invoice_now => false) AS chie_sub \gset
SELECT subscription_id, account_id, status, anchor, trial_end, next_bill_date FROM subscription ORDER BY 1;

\echo '== What the first run will bill Anna (preview writes nothing)'
SELECT bill_date, kind, description, quantity, amount FROM preview_invoice(:anna);

\echo '== The cycle: run_cycle on Jan 1, usage during January, the cycle every day until Feb 16'
CALL run_cycle();
SELECT subscription_item_id AS api_item FROM subscription_item WHERE price_id = :api_eur \gset
SELECT count(record_usage(:anna, :api_item, 1000 + i, 'demo-call-' || i, '2026-01-02 10:00+00'::timestamptz + i * interval '1 day'))
       AS usage_events FROM generate_series(1, 20) i;
DO $$
BEGIN
    FOR d IN 2 .. 47 LOOP
        PERFORM set_config('billing.clock', (date '2026-01-01' + d) || ' 09:00+00', false);
        COMMIT;
        CALL billing.run_cycle();
    END LOOP;
END $$;
SELECT cycle_run_id, as_of, status, subscriptions, invoices, lines, duration < interval '10 s' AS quick
FROM cycle_run WHERE invoices > 0 ORDER BY 1;

\echo '== The invoices'
SELECT i.number, a.name, i.status, i.issue_date, i.due_date, i.subtotal, i.discount, i.tax, i.total
FROM invoice i JOIN account a USING (account_id) ORDER BY i.number;
\echo '== Anna''s February invoice, line by line (usage in arrears, coupon before tax)'
SELECT l.kind, l.description, l.quantity, l.amount, l.period_start, l.period_end
FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
WHERE i.account_id = :anna AND i.issue_date = '2026-02-01' ORDER BY l.invoice_line_id;
\echo '== An upgrade mid-period, invoiced at once with prorations'
SET billing.clock = '2026-02-16 09:00+00';
SELECT change_subscription(:anna, :anna_sub, quantity => 12, proration => 'prorate_now',
                           subscription_item_id => (SELECT subscription_item_id FROM subscription_item
                                                    WHERE price_id = :seats_eur AND ended_on IS NULL)) AS new_seat_item;
SELECT i.number, l.kind, l.description, l.amount FROM invoice i JOIN invoice_line l USING (account_id, invoice_id)
WHERE i.billing_reason = 'subscription_update' ORDER BY l.invoice_line_id;

\echo '== A simple report: billed per month and currency'
SELECT to_char(issue_date, 'YYYY-MM') AS month, currency, count(*) AS invoices, sum(subtotal) AS net,
       sum(tax) AS tax, sum(total) AS total
FROM invoice GROUP BY 1, 2 ORDER BY 1, 2;
\echo '== Outbox events waiting for the email/CRM worker (woken by NOTIFY billing_events)'
SELECT event_type, count(*) FROM outbox WHERE processed_at IS NULL GROUP BY 1 ORDER BY 1;
SELECT count(*) AS invariant_violations FROM check_invariants();
RESET billing.clock;
