-- January 1, 2026: the seller, its catalog with what each plan grants,
-- its dunning policy, five customers.
\echo
\echo '== 2. January 1, 2026: a seller, its catalog, five customers'
SET billing.clock = '2026-01-01 09:00+00';
SELECT create_billing_entity('Acme Cloud GmbH', 'EUR', tax_id => 'DE123456789',
                             address => 'Hauptstr. 1, 10115 Berlin') AS acme \gset
SELECT create_tax_rate('VAT DE', 19, jurisdiction => 'DE') AS vat_de,
       create_tax_rate('IVA IT', 22, jurisdiction => 'IT') AS iva_it \gset

SELECT create_product('Cloud plan') AS plan, create_product('API calls') AS api \gset
SELECT create_price(:plan, 'EUR', 19.00, nickname => 'Starter') AS starter_eur,
       create_price(:plan, 'EUR', 49.00, nickname => 'Pro') AS pro_eur,
       create_price(:plan, 'USD', 19.00, nickname => 'Starter') AS starter_usd,
       create_price(:plan, 'USD', 59.00, nickname => 'Pro') AS pro_usd,
       create_price(:plan, 'JPY', 72000, nickname => 'Pro yearly', cadence => '1 year') AS pro_jpy_year,
       create_price(:api, 'EUR', 0.002, scheme => 'per_unit', usage_type => 'metered', nickname => 'per call') AS api_eur \gset
SELECT create_coupon('LAUNCH', 'repeating', percent_off => 25, duration_periods => 2) AS launch \gset
\echo '   The catalog: a price is an amount in one currency per cadence. API calls are metered:'
\echo '   counted as they happen, billed at the end of the month they were made in.'
SELECT p.price_id, pr.name AS product, p.nickname, p.currency, p.unit_amount, p.cadence, p.usage_type
FROM price p JOIN product pr USING (product_id) ORDER BY 1;

SELECT create_feature('sso', 'Single sign-on') AS sso,
       create_feature('projects', 'Projects', 'limit') AS projects,
       create_feature('support', 'Support tier', 'text') AS support \gset
SELECT count(set_price_feature(p, 'projects', '3')) + count(set_price_feature(p, 'support', 'email')) AS grants
FROM unnest(ARRAY[:starter_eur, :starter_usd]::bigint[]) p \gset
SELECT count(set_price_feature(p, 'sso')) + count(set_price_feature(p, 'projects', '25'))
       + count(set_price_feature(p, 'support', 'priority')) AS grants
FROM unnest(ARRAY[:pro_eur, :pro_usd, :pro_jpy_year]::bigint[]) p \gset
\echo '   What each plan grants (entitlements): the application asks billing.entitled(account, ''sso'')'
\echo '   or billing.entitlement(account, ''projects'') instead of hard-coding plans:'
SELECT pr.nickname AS plan, string_agg(DISTINCT pr.currency, ', ') AS currencies, f.key AS feature,
       coalesce(pf.value, 'on') AS grants
FROM price_feature pf JOIN price pr USING (price_id) JOIN feature f USING (feature_id)
GROUP BY 1, 3, 4 ORDER BY 1 DESC, 3;

SELECT create_dunning_policy('standard', is_default => true) AS standard \gset
INSERT INTO dunning_step (policy_id, day_offset, action, name) VALUES (:standard, 21, 'remind', 'final_notice');
\echo '   What happens to an unpaid invoice: the standard dunning policy plus a final notice added'
\echo '   with one INSERT. day_offset counts from the due date (-3: three days before it); the late'
\echo '   fee is 2% of what is due:'
SELECT day_offset, action, name FROM dunning_step ORDER BY day_offset;

SELECT create_account(:acme, 'Anna Schmidt', timezone => 'Europe/Berlin', locale => 'de-DE',
                      tax_rate_id => :vat_de, email => 'anna@example.de',
                      address => E'Lindenweg 5\n80331 München') AS anna \gset
SELECT create_account(:acme, 'Bob Jones', currency => 'USD', timezone => 'America/New_York',
                      payment_terms_days => 14, email => 'bob@example.com') AS bob \gset
SELECT create_account(:acme, 'Chie Sato', currency => 'JPY', timezone => 'Asia/Tokyo',
                      locale => 'ja-JP', email => 'chie@example.jp') AS chie \gset
SELECT create_account(:acme, 'Dario Rossi', timezone => 'Europe/Rome', locale => 'it-IT',
                      tax_rate_id => :iva_it, email => 'dario@example.it') AS dario \gset
SELECT create_account(:acme, 'Eve Miller', currency => 'USD', timezone => 'America/Chicago',
                      email => 'eve@example.com') AS eve \gset
\echo '   The customers: one currency each, a time zone (their "today"), a locale (their documents)'
\echo '   and payment terms (days from an invoice''s issue to its due date):'
SELECT a.account_id, a.name, a.currency, a.timezone, a.locale, a.payment_terms_days AS terms_days,
       coalesce(t.name, 'none') AS tax
FROM account a LEFT JOIN tax_rate t USING (tax_rate_id) ORDER BY 1;
