\echo
\echo '== 3. January: subscriptions, the first invoices, payments, an upgrade'
SELECT subscribe(:anna, items => jsonb_build_array(jsonb_build_object('price_id', :starter_eur),
                                                   jsonb_build_object('price_id', :api_eur))) AS anna_sub,
       subscribe(:bob, :pro_usd) AS bob_sub,
       subscribe(:chie, :pro_jpy_year) AS chie_sub,
       subscribe(:dario, :pro_eur, coupon => 'LAUNCH') AS dario_sub,
       subscribe(:eve, :pro_usd) AS eve_sub \gset
-- the view the story lists invoices with: the four totals add up
-- (subtotal + discount + tax = total), amount_due is what is still owed
CREATE VIEW demo.invoices AS
SELECT i.number, a.name AS customer, i.billing_reason AS reason, i.issue_date, i.due_date,
       i.subtotal, i.discount, i.tax, i.total, i.status, i.amount_due
FROM invoice i JOIN account a USING (account_id);
CREATE VIEW demo.access AS
SELECT a.name AS customer, s.status AS subscription, entitled(a.account_id, 'sso') AS sso,
       entitlement(a.account_id, 'projects') AS projects, entitlement(a.account_id, 'support') AS support
FROM account a JOIN subscription s USING (account_id);
\echo '   Subscribing invoices the first period at once. Anna: Starter plus metered API calls; Dario:'
\echo '   Pro with the LAUNCH coupon (25% off his first two months); Chie: a yearly plan. Anna and'
\echo '   Dario pay VAT; subtotal + discount + tax = total:'
SELECT number, customer, issue_date, due_date, subtotal, discount, tax, total FROM demo.invoices ORDER BY number;
\echo '   Chie pays her yearly plan in three installments (billing.split: they add up to the total):'
SELECT installment_no, due_date, amount
FROM create_installment_plan(:chie, (SELECT invoice_id FROM invoice WHERE account_id = :chie), 3);
\echo '   What each customer may use today, as the application sees it:'
SELECT * FROM demo.access ORDER BY customer;

CALL demo.days_until('2026-01-05');
SELECT apply_payment(:bob, '59.00 USD', 'card', reference => 'ch_1001') IS NOT NULL AS bob_paid \gset
CALL demo.days_until('2026-01-10');
SELECT apply_payment(:anna, '22.61 EUR', 'bank_transfer', reference => 'SEPA-0001') IS NOT NULL AS anna_paid \gset

CALL demo.days_until('2026-01-16');
\echo '   January 16: Anna upgrades from Starter to Pro. The rest of January is invoiced at once: the'
\echo '   unused half month of Starter is credited, the same days of Pro charged (16 of 31 days):'
SELECT change_subscription(:anna, :anna_sub, price_id => :pro_eur, proration => 'prorate_now',
                           subscription_item_id => (SELECT subscription_item_id FROM subscription_item
                                                    WHERE price_id = :starter_eur)) IS NOT NULL AS upgraded \gset
SELECT l.kind, l.description, l.amount, l.period_start, l.period_end
FROM invoice_line l JOIN invoice i USING (account_id, invoice_id)
WHERE i.billing_reason = 'subscription_update' AND i.account_id = :anna ORDER BY l.invoice_line_id;
\echo '   ... and Anna has single sign-on and 25 projects from this moment:'
SELECT * FROM demo.access WHERE customer = 'Anna Schmidt';

CALL demo.days_until('2026-01-20');
SELECT apply_payment(:anna, (SELECT amount_due FROM invoice WHERE account_id = :anna AND status = 'open'),
                     'bank_transfer', reference => 'SEPA-0002') IS NOT NULL AS anna_paid \gset
CALL demo.days_until('2026-01-26');
SELECT apply_payment(:chie, '24000 JPY', 'bank_transfer', reference => 'furikomi-01') IS NOT NULL AS chie_paid \gset
CALL demo.days_until('2026-01-31');
-- Anna's API calls in January, as her application reports them (an
-- idempotency key per event: a retried report is counted once)
SELECT count(record_usage(:anna, (SELECT subscription_item_id FROM subscription_item WHERE price_id = :api_eur),
                          1500 + 100 * (i % 7), 'jan-' || i, '2026-01-01 10:00+00'::timestamptz + i * interval '1 day'))
       AS january_usage_events FROM generate_series(1, 30) i \gset
\echo '   Payments received in January (Dario and Eve have not paid):'
SELECT p.received_on, a.name AS customer, p.method, p.reference, p.amount
FROM payment p JOIN account a USING (account_id) ORDER BY p.received_on, p.payment_id;
\echo '   Chie''s installments so far: the first is covered, two are to come:'
SELECT installment_no, due_date, amount, paid, remaining FROM installment_status WHERE account_id = :chie ORDER BY 1;
