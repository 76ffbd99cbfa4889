--
-- The finance dashboard: billing.dashboard_html of one billing entity,
-- over two entities in the same currency, so that a figure of the other
-- one on the page could only come from a missing filter.
--
CREATE DATABASE dashboard_regress;
\c dashboard_regress
\i test/regress_own_database.sql

-- Acme: Alice (Basic 100.00/month, pays) and an account named <script>
-- (Basic 100.00, never pays: dunned).  Globex: Zed (Gold 777.00/month,
-- never pays: dunned too).  Terms 14 days: the January invoices are due
-- on 01-15.
SELECT billing.create_dunning_policy('chase', '[{"day_offset": 1, "action": "remind", "name": "first reminder"},
    {"day_offset": 30, "action": "write_off", "name": "give up"}]', is_default => true) IS NOT NULL AS policy;
SELECT billing.create_billing_entity('Acme & Co', 'USD') AS acme \gset
SELECT billing.create_billing_entity('Globex', 'USD') AS globex \gset
SELECT billing.create_product('Basic') AS basic \gset
SELECT billing.create_product('Gold') AS gold \gset
SELECT billing.create_price(:basic, 'USD', 100.00) AS basic_usd \gset
SELECT billing.create_price(:gold, 'USD', 777.00) AS gold_usd \gset
SELECT billing.create_account(:acme, 'Alice', payment_terms_days => 14) AS alice \gset
SELECT billing.create_account(:acme, '<script>alert(1)</script>', payment_terms_days => 14) AS mallory \gset
SELECT billing.create_account(:globex, 'Zed Globex', payment_terms_days => 14) AS zed \gset
SELECT billing.subscribe(:alice, :basic_usd) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:mallory, :basic_usd) IS NOT NULL AS subscribed;
SELECT billing.subscribe(:zed, :gold_usd) IS NOT NULL AS subscribed;
SET billing.clock = '2026-01-05 12:00+00';
SELECT billing.apply_payment(:alice, '100.00 USD', 'card', idempotency_key => 'a1') IS NOT NULL AS paid;
SET billing.clock = '2026-01-20 12:00+00';
CALL billing.run_dunning();

-- What the views say over both entities (the superuser sees all): MRR
-- 977.00, aging 877.00 past due, two invoices reached the first reminder.
SELECT month, currency, mrr, customers FROM billing.mrr_by_month ORDER BY month;
SELECT month, currency, invoiced, collected, outstanding FROM billing.revenue_by_month ORDER BY month;
SELECT account_name, days_1_30, total_due FROM billing.ar_aging ORDER BY account_name;
SELECT step, invoices, amount_due, still_open FROM billing.dunning_funnel ORDER BY day_offset;
SELECT currency, receivable, invoiced, dso_days FROM billing.days_sales_outstanding;

-- The functions behind the views, with an entity: Acme's share only.
SELECT month, mrr, customers FROM billing._mrr_by_month(:acme) ORDER BY month;
SELECT month, invoiced, collected, outstanding FROM billing._revenue_by_month(:acme) ORDER BY month;
SELECT step, invoices, amount_due FROM billing._dunning_funnel(:acme);
SELECT receivable, invoiced, dso_days FROM billing._days_sales_outstanding(90, :acme);
SELECT receivable, invoiced, dso_days FROM billing._days_sales_outstanding(90, :globex);

-- Acme's page, three months: MRR 200.00 (ARR 2,400.00, 2 customers),
-- receivable 100.00 (the <script> account's invoice), DSO 100 / 200 x 90 =
-- 45.0 days; nothing of Globex (777.00, 9,324.00, 977.00, Zed).
SELECT billing.dashboard_html(:acme, months => 3) AS page \gset
SELECT (regexp_match(:'page', '<section class="kpi">.*?</section>'))[1] AS kpi;
SELECT (regexp_match(:'page', '<html[^>]*>'))[1] AS html_tag, (regexp_match(:'page', '<h1>.*?</h1>'))[1] AS h1;
SELECT position('Zed' IN :'page') = 0 AS no_zed, position('777' IN :'page') = 0 AS no_777,
       position('977' IN :'page') = 0 AS no_977, position('9,324' IN :'page') = 0 AS no_globex_arr,
       position('Globex' IN :'page') = 0 AS no_globex_name;
-- Escaped: the account's name as text, the entity's ampersand; no script
-- anywhere (the page needs none).
SELECT position('&lt;script&gt;alert(1)&lt;/script&gt;' IN :'page') > 0 AS name_escaped,
       position('Acme &amp; Co' IN :'page') > 0 AS entity_escaped,
       position('<script' IN :'page') = 0 AS no_script_tag;
-- The charts: three months of MRR bars (0 in Nov and Dec, 160 high in
-- January: the largest), the aging bars (1-30 days holds everything).
SELECT (regexp_matches(:'page', '<rect class="s1" x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="([0-9.]+)"><title>([^<]*)</title>', 'g'))
       AS bar LIMIT 8;
SELECT count(*) AS svgs FROM regexp_matches(:'page', '<svg ', 'g');
-- The aging table and the funnel's row of the page.
SELECT (regexp_match(:'page', '<h2>Receivables aging</h2>.*?</table><table>(.*?)</table>'))[1] AS accounts;
SELECT (regexp_match(:'page', '<h2>Dunning funnel</h2>.*<tbody>(.*?)</tbody>'))[1] AS funnel;

-- Globex's page: its own figures only.
SELECT billing.dashboard_html(:globex, months => 1) AS gpage \gset
SELECT (regexp_match(:'gpage', '<section class="kpi">.*?</section>'))[1] AS kpi;
SELECT position('Alice' IN :'gpage') = 0 AS no_alice, position('script' IN :'gpage') = 0 AS no_mallory;

-- Another currency: nothing billed in it, zeros with its digits.
SELECT (regexp_match(billing.dashboard_html(:acme, 'jpy', 1), '<section class="kpi">.*?</section>'))[1] AS kpi_jpy;

-- Hebrew: right to left, the bars mirrored (the first month on the right).
SELECT (regexp_match(billing.dashboard_html(:acme, months => 2, locale => 'he-IL'), '<html[^>]*>'))[1] AS html_tag;
SELECT (regexp_match(billing.dashboard_html(:acme, months => 2, locale => 'he-IL'), '<text x="([0-9.]+)"'))[1] AS first_label_x,
       (regexp_match(billing.dashboard_html(:acme, months => 2), '<text x="([0-9.]+)"'))[1] AS first_label_x_ltr;
-- German numbers.
SELECT (regexp_match(billing.dashboard_html(:acme, months => 1, locale => 'de-DE'), 'ARR<b>([^<]*)</b>'))[1] AS arr_de;
-- Twelve months by default (a row each in the MRR and the revenue tables),
-- 120 at most.
SELECT count(*) AS mrr_rows FROM regexp_matches(billing.dashboard_html(:acme), '<tr><td>20[0-9-]+</td>', 'g');
SELECT length(billing.dashboard_html(:acme, months => 120)) > 0 AS longest;

-- Bad inputs.
SELECT billing_test_error('SELECT billing.dashboard_html(NULL)');
SELECT billing_test_error('SELECT billing.dashboard_html(999)');
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, %L)', :acme, 'XYZ'));
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, %L)', :acme, ''));
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, months => 0)', :acme));
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, months => 121)', :acme));
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, months => NULL)', :acme));
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s, locale => %L)', :acme, 'xx-notalocale-!'));

-- A reporting role bound to Acme: Acme's page as the superuser's; Globex's
-- and an unknown entity refused alike (42501: nothing says which exists).
SET client_min_messages = warning;
SELECT billing.grant_roles('regress_dashboard_writer', 'regress_dashboard_operator', 'regress_dashboard_reporting');
RESET client_min_messages;
CREATE ROLE regress_dashboard_bi IN ROLE regress_dashboard_reporting;
CREATE ROLE regress_dashboard_nobody;
SELECT billing.bind_role_to_entity('regress_dashboard_bi', :acme);
SET ROLE regress_dashboard_bi;
SELECT billing.dashboard_html(:acme, months => 3) = :'page' AS same_page;
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s)', :globex));
SELECT billing_test_error('SELECT billing.dashboard_html(999)');
SELECT billing_test_error('SELECT billing.dashboard_html(NULL)');
-- the views, read by the role, show Acme only too (row-level security)
SELECT month, mrr FROM billing.mrr_by_month ORDER BY month;
RESET ROLE;
-- a role without the grants may not call it at all
SET ROLE regress_dashboard_nobody;
SELECT billing_test_error(format('SELECT billing.dashboard_html(%s)', :acme));
RESET ROLE;
-- it reads, never writes: nothing changed and the books still balance
SELECT count(*) AS broken FROM billing.check_invariants();

\c contrib_regression
DROP DATABASE dashboard_regress;
DROP ROLE regress_dashboard_bi, regress_dashboard_nobody, regress_dashboard_writer, regress_dashboard_operator,
          regress_dashboard_reporting;
