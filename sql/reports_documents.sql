-- Invoice documents: ICU dates, text direction, HTML escaping, and
-- billing.invoice_document in html, text and json.
\pset null '(null)'
SET search_path = public, billing;
\i test/regress_helpers.sql

-- Dates in the reader's locale, every style; month ends and Feb 29.
-- unaligned: psql versions differ in how wide they count the bidi marks
-- (U+200E, U+200F, U+061C) these hold, which would shift aligned columns
\pset format unaligned
SELECT l, billing.format_date('2028-02-29', l) AS long_date,
       billing.format_date('2026-12-31', l, 'short') AS short_date,
       billing.format_date('2026-01-31', l, 'medium') AS medium_date,
       billing.format_date('2026-01-31', l, 'full') AS full_date
FROM unnest(ARRAY['en-US', 'en-GB', 'de-DE', 'he-IL', 'ar-EG', 'ja-JP', 'ru-RU']) l;
\pset format aligned
SELECT billing.format_date('0001-01-01', 'en-US') AS first_year,
       billing.format_date('9999-12-31', 'en-US') AS last_four_digit_year;
SELECT l, billing.locale_direction(l) AS direction
FROM unnest(ARRAY['en-US', 'he-IL', 'he', 'ar-EG', 'fa-IR', 'ur-PK', 'de_DE', 'ja']) l;
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.format_date('2026-01-01', 'xx-YY')$$),
    ($$SELECT billing.format_date('2026-01-01', '')$$),
    ($$SELECT billing.format_date('2026-01-01', 'en-US', 'longest')$$),
    ($$SELECT billing.format_date('infinity', 'en-US')$$),
    ($$SELECT billing.locale_direction('<script>')$$)
) t(q);
SELECT billing.format_date(NULL, 'en-US') AS null_date, billing.locale_direction(NULL) AS null_locale;

-- Escaping: every character that means something in HTML.
SELECT billing.html_escape($$<script>alert('x') & "y"</script>$$) AS escaped,
       billing.html_escape('') AS empty, billing.html_escape('plain') AS plain,
       billing.html_escape('דנה & בניו') AS hebrew;

-- Two invoices: English in USD with sales tax added, Hebrew in ILS with
-- VAT included.  The figures, by hand:
--   English: 79.99 + 3 x 4.50 = 93.49; tax 8.625%: 6.899 -> 6.90 and
--            1.164 -> 1.16 per line, or 8.063 on the sum: 8.06 either way;
--            total 101.55, due 30 days after 2026-03-01: 2026-03-31.
--   Hebrew:  129.90 with 17% VAT inside: 129.90 x 17 / 117 = 18.874 -> 18.87.
\i test/documents/invoices.sql
SELECT a.external_ref, i.number, i.status, i.subtotal, i.tax, i.total, i.amount_due, i.due_date
FROM billing.invoice i JOIN billing.account a USING (account_id)
WHERE a.external_ref LIKE 'doc-%' ORDER BY a.external_ref;
SELECT invoice_id AS en_invoice FROM billing.invoice JOIN billing.account USING (account_id)
WHERE external_ref = 'doc-en' \gset
SELECT invoice_id AS he_invoice FROM billing.invoice JOIN billing.account USING (account_id)
WHERE external_ref = 'doc-he' \gset

SELECT billing.invoice_document(:en_invoice, 'text');
-- (unaligned for the bidi marks, as above)
\pset format unaligned
SELECT billing.invoice_document(:he_invoice, 'text');
\pset format aligned

-- HTML: language and direction, escaped names, the figures, no raw markup
-- from the data.
WITH d AS (SELECT billing.invoice_document(:en_invoice) AS en,
                  billing.invoice_document(:he_invoice, 'html') AS he)
SELECT en LIKE '%<html lang="en-US" dir="ltr">%' AS en_ltr,
       he LIKE '%<html lang="he-IL" dir="rtl">%' AS he_rtl,
       en LIKE '%&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons Inc.%' AS name_escaped,
       en NOT LIKE '%<script>%' AS no_raw_script,
       en LIKE '%<td class="num">$101.55</td>%' AS en_total,
       en LIKE '%Mar 1, 2026 – Mar 31, 2026%' AS en_period,
       he LIKE '%דנה כהן בע&quot;מ%' AS he_name_escaped,
       he LIKE '%18.87%₪%' AS he_vat,
       he LIKE '%31 במרץ 2026%' AS he_due_date,
       en LIKE '%12 Harbor Road%Boston, MA 02110%' AS en_buyer_address,
       en LIKE '%<td class="num">3</td><td class="num">$4.50</td>%' AS en_quantity,
       en LIKE '%How to pay%IBAN US00 NWND 0000 1234 5678%' AS instructions
FROM d;
-- JSON: the facts, amounts as exact text.
SELECT j ->> 'number' AS number, j ->> 'direction' AS direction, j ->> 'total' AS total,
       j #>> '{buyer,name}' AS buyer, jsonb_array_length(j -> 'lines') AS lines,
       j #>> '{lines,1,amount}' AS second_line
FROM (SELECT billing.invoice_document(:en_invoice, 'json')::jsonb AS j) x;

-- Numbers in the reader's digits and grouping, every fraction digit kept.
-- (unaligned for the bidi marks, as above)
\pset format unaligned
SELECT l, billing.format_number(12000.5, l) AS n, billing.format_number(-0.0035, l) AS small,
       billing.format_number(3, l) AS whole
FROM unnest(ARRAY['en-US', 'de-DE', 'fr-FR', 'es-ES', 'ru-RU', 'ar-EG', 'he-IL']) l;
\pset format aligned
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.format_number(1, 'xx-YY')$$),
    ($$SELECT billing.format_number('NaN', 'en-US')$$),
    ($$SELECT billing.format_number('Infinity', 'en-US')$$),
    ($$SELECT billing.format_number(repeat('9', 400)::numeric, 'en-US')$$)
) t(q);
SELECT billing.format_number(NULL, 'en-US') AS null_number;

-- Every shipped language has every key, and no language has a key English
-- lacks (a label would never be printed).
SELECT l.language, k.key AS missing
FROM (SELECT DISTINCT language FROM billing.document_label) l
CROSS JOIN (SELECT key FROM billing.document_label WHERE language = 'en') k
WHERE NOT EXISTS (SELECT FROM billing.document_label d WHERE d.language = l.language AND d.key = k.key)
UNION ALL
SELECT d.language, d.key || ' (not in en)' FROM billing.document_label d
WHERE NOT EXISTS (SELECT FROM billing.document_label e WHERE e.language = 'en' AND e.key = d.key);
SELECT language, count(*) AS keys FROM billing.document_label GROUP BY 1 ORDER BY 1;
-- The new languages' words, key by key.
SELECT key, max(label) FILTER (WHERE language = 'ru') AS ru, max(label) FILTER (WHERE language = 'ar') AS ar,
       max(label) FILTER (WHERE language = 'fr') AS fr, max(label) FILTER (WHERE language = 'es') AS es
FROM billing.document_label GROUP BY key ORDER BY key;

-- What settled an invoice, each as what it is.  An account with 2% off
-- within 10 days; its 100.00 invoice of Apr 1 (no tax), then, by hand:
--   Apr 2  credit note 10.00, reduce_due:            due 90.00
--   Apr 5  payment 88.00: settles it within the window, the discount is
--          2% of the total, 2.00, so 88.00 + 2.00 pay the 90.00: due 0.00, paid
--   Apr 6  credit note 5.00 to the account's credit (the invoice's due
--          does not change; the account has 5.00 of credit)
--   Apr 7  refund 8.00 of the payment: it reopens the invoice by 8.00 and
--          the 5.00 credit pays it again: due 8.00 - 5.00 = 3.00, open
-- The document: total 100.00, payments -88.00, refunds +8.00, discount
-- -2.00, credit notes -10.00, account credit -5.00, due 3.00
-- (100 - 88 + 8 - 2 - 10 - 5 = 3), and the 5.00 note listed apart.
SET billing.clock = '2026-04-01 09:00+00';
SELECT billing.create_product(name => 'Consulting retainer') AS retainer \gset
SELECT billing.create_price(product_id => :retainer, currency => 'USD', unit_amount => 100.00) AS retainer_usd \gset
SELECT billing.create_account(entity_id => :entity, name => 'Settle & Co', currency => 'USD', locale => 'en-US',
    external_ref => 'doc-settle', address => E'1 Main St\nSpringfield, IL 62701') AS settle \gset
SELECT billing.set_early_payment_discount(:settle, 2, 10);
SELECT billing.subscribe(account_id => :settle, price_id => :retainer_usd) IS NOT NULL AS subscribed;
SELECT invoice_id AS settle_invoice FROM billing.invoice WHERE account_id = :settle \gset
SET billing.clock = '2026-04-02 09:00+00';
SELECT billing.issue_credit_note(:settle, :settle_invoice, '10.00 USD', reason => 'late start') IS NOT NULL AS noted;
SET billing.clock = '2026-04-05 09:00+00';
SELECT billing.apply_payment(:settle, '88.00 USD', 'bank_transfer', idempotency_key => 'settle-1') AS settle_pay \gset
SELECT status, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :settle_invoice;
SET billing.clock = '2026-04-06 09:00+00';
SELECT billing.issue_credit_note(:settle, :settle_invoice, '5.00 USD', method => 'credit_balance') IS NOT NULL AS noted;
SET billing.clock = '2026-04-07 09:00+00';
SELECT billing.refund_payment(:settle, :settle_pay, '8.00 USD', 'partial refund') IS NOT NULL AS refunded;
SELECT status, total, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :settle_invoice;
SELECT source, amount FROM billing.payment_application WHERE invoice_id = :settle_invoice ORDER BY application_id;
SELECT billing.invoice_document(:settle_invoice, 'text');
-- The facts: the settlement rows add up to total - due, and to what the
-- engine counts as paid.
SELECT s ->> 'kind' AS kind, s ->> 'amount' AS amount
FROM jsonb_array_elements(billing.invoice_document(:settle_invoice, 'json')::jsonb -> 'settlement') s;
SELECT billing.to_numeric((j ->> 'total')::billing.amount)
           + (SELECT sum(billing.to_numeric((s ->> 'amount')::billing.amount)) FROM jsonb_array_elements(j -> 'settlement') s)
           = billing.to_numeric((j ->> 'amount_due')::billing.amount) AS due_is_total_less_settlement,
       (SELECT sum(billing.to_numeric((s ->> 'amount')::billing.amount)) FROM jsonb_array_elements(j -> 'settlement') s)
           = -billing.to_numeric((j ->> 'amount_paid')::billing.amount) AS settlement_is_amount_paid,
       j #>> '{credit_notes,1,method}' AS apart_method, j #>> '{buyer,address}' AS buyer_address
FROM (SELECT billing.invoice_document(:settle_invoice, 'json')::jsonb AS j) x;
WITH d AS (SELECT billing.invoice_document(:settle_invoice) AS h)
SELECT h LIKE '%<tr class="payments"><th>Payments</th><td class="num">-$88.00</td></tr>%' AS payments,
       h LIKE '%<tr class="payments_returned"><th>Refunds and chargebacks</th><td class="num">$8.00</td></tr>%' AS returned,
       h LIKE '%<tr class="early_payment_discount"><th>Early-payment discount</th><td class="num">-$2.00</td></tr>%' AS discount,
       h LIKE '%<tr class="credit_notes"><th>Credit notes</th><td class="num">-$10.00</td></tr>%' AS credit_notes,
       h LIKE '%<tr class="credit_applied"><th>Paid from your account credit</th><td class="num">-$5.00</td></tr>%' AS credit,
       h LIKE '%<tr class="due"><th>Amount due</th><td class="num">$3.00</td></tr>%' AS due,
       h LIKE '%<li>Credit note % $5.00 added to your account credit</li>%' AS note_apart,
       h LIKE '%1 Main St%Springfield, IL 62701%' AS buyer_address,
       h NOT LIKE '%Amount paid%' AS no_amount_paid
FROM d;
-- The same invoice in each new language: its words, its numbers and dates.
UPDATE billing.account SET locale = 'ru-RU' WHERE account_id = :settle;
SELECT billing.invoice_document(:settle_invoice, 'text') AS ru;
UPDATE billing.account SET locale = 'fr-FR' WHERE account_id = :settle;
SELECT billing.invoice_document(:settle_invoice, 'text') AS fr;
UPDATE billing.account SET locale = 'es-ES' WHERE account_id = :settle;
SELECT billing.invoice_document(:settle_invoice, 'text') AS es;
UPDATE billing.account SET locale = 'ar-EG' WHERE account_id = :settle;
-- (unaligned for the bidi marks, as above)
\pset format unaligned
SELECT billing.invoice_document(:settle_invoice, 'text') AS ar;
\pset format aligned
WITH d AS (SELECT billing.invoice_document(:settle_invoice) AS h)
SELECT h LIKE '%<html lang="ar-EG" dir="rtl">%' AS ar_rtl, h LIKE '%<th>المبلغ المستحق</th>%' AS ar_due_label,
       h LIKE '%<h1>فاتورة</h1>%' AS ar_title
FROM d;
UPDATE billing.account SET locale = 'en-US' WHERE account_id = :settle;

-- A credit invoice: paid up for April, the customer moves to the 10.00
-- plan on Apr 16 at once.  15 of April's 30 days unused: -50.00 for the old
-- plan, +5.00 for the new one, -45.00 in all.  The engine pays it by
-- handing 45.00 to the account's credit (nothing else is open): the
-- document is a credit invoice, CREDITED, "added to your account credit"
-- 45.00 and nothing due; the statement names it a credit invoice.
SET billing.clock = '2026-04-01 09:00+00';
SELECT billing.create_price(product_id => :retainer, currency => 'USD', unit_amount => 10.00) AS small_usd \gset
SELECT billing.create_account(entity_id => :entity, name => 'Downgrade Ltd', currency => 'USD',
    external_ref => 'doc-credit') AS down \gset
SELECT billing.subscribe(account_id => :down, price_id => :retainer_usd) AS down_sub \gset
SELECT billing.apply_payment(:down, '100.00 USD', 'card', idempotency_key => 'down-1') IS NOT NULL AS paid;
SET billing.clock = '2026-04-16 09:00+00';
SELECT billing.change_subscription(:down, :down_sub, price_id => :small_usd, proration => 'prorate_now') IS NOT NULL
    AS downgraded;
SELECT invoice_id AS credit_invoice FROM billing.invoice
WHERE account_id = :down AND billing.to_numeric(total) < 0 \gset
SELECT status, total, amount_paid, amount_due FROM billing.invoice WHERE invoice_id = :credit_invoice;
SELECT billing.invoice_document(:credit_invoice, 'text');
WITH d AS (SELECT billing.invoice_document(:credit_invoice) AS h)
SELECT h LIKE '%<h1>Credit invoice</h1>%' AS title, h LIKE '%<span class="status">CREDITED</span>%' AS credited,
       h LIKE '%<tr class="credit_added"><th>Added to your account credit</th><td class="num">$45.00</td></tr>%' AS added,
       h LIKE '%<tr class="due"><th>Amount due</th><td class="num">$0.00</td></tr>%' AS nothing_due
FROM d;
SELECT line_no, kind, description, amount, balance
FROM billing.account_statement(:down, '2026-04-01', '2026-04-30');
-- the statement of the settled invoice: the discount and each credit note
-- as what it is
SELECT line_no, kind, description, amount, balance
FROM billing.account_statement(:settle, '2026-04-01', '2026-04-30');

-- A void invoice: its total no longer asked for.
SELECT billing.create_account(entity_id => :entity, name => 'Void Inc', currency => 'USD',
    external_ref => 'doc-void') AS voided \gset
SELECT billing.subscribe(account_id => :voided, price_id => :small_usd) IS NOT NULL AS subscribed;
SELECT invoice_id AS void_invoice FROM billing.invoice WHERE account_id = :voided \gset
SELECT billing.void_invoice(:voided, :void_invoice, 'ordered by mistake');
SELECT string_agg(x, E'\n') AS void_totals
FROM regexp_split_to_table(billing.invoice_document(:void_invoice, 'text'), E'\n') x
WHERE x ~ '^(Total|Voided|Amount due|INVOICE)';

-- A language without labels falls back to English words, its own formats.
UPDATE billing.account SET locale = 'it-IT' WHERE external_ref = 'doc-en';
SELECT split_part(billing.invoice_document(:en_invoice, 'text'), E'\n', 1) AS first_line,
       billing.invoice_document(:en_invoice) LIKE '%101,55%USD%' AS italian_amount;
-- Labels are data: a language is an INSERT away.
INSERT INTO billing.document_label VALUES ('it', 'invoice', 'Fattura'), ('it', 'open', 'DA PAGARE');
SELECT split_part(billing.invoice_document(:en_invoice, 'text'), E'\n', 1) AS first_line;

-- Bad input.
SELECT q, billing_test_error(q) AS error FROM (VALUES
    ($$SELECT billing.invoice_document(0)$$),
    ($$SELECT billing.invoice_document(-1, 'json')$$),
    ($$SELECT billing.invoice_document(NULL)$$),
    ($$SELECT billing.invoice_document(1, 'pdf')$$),
    ($$SELECT billing.invoice_document(1, NULL)$$),
    ($$SELECT billing.invoice_document(9223372036854775807, 'text')$$)
) t(q);
-- an account whose locale ICU does not know: a clear error naming it, for
-- every format, and nothing changes
UPDATE billing.account SET locale = 'xx-YY' WHERE account_id = :settle;
-- (ids depend on the tests before this one: shown by name)
SELECT f, replace(billing_test_error(format('SELECT billing.invoice_document(%s, %L)', :settle_invoice, f)),
                  'invoice ' || :settle_invoice || ':', 'invoice <settle_invoice>:') AS error
FROM unnest(ARRAY['html', 'text', 'json']) f;
UPDATE billing.account SET locale = 'en-US' WHERE account_id = :settle;

-- Another seller's invoice: 42501 for its reporting and its writer role,
-- the same as for an invoice that does not exist; its own invoice reads.
SET client_min_messages = warning;
SELECT billing.grant_roles('regress_docs_writer', 'regress_docs_operator', 'regress_docs_reporting');
RESET client_min_messages;
CREATE ROLE regress_docs_app LOGIN IN ROLE regress_docs_writer;
CREATE ROLE regress_docs_bi LOGIN IN ROLE regress_docs_reporting;
SELECT billing.create_billing_entity(legal_name => 'Other Seller GmbH', default_currency => 'EUR') AS other \gset
SELECT billing.bind_role_to_entity('regress_docs_app', :other), billing.bind_role_to_entity('regress_docs_bi', :other);
SET ROLE regress_docs_bi;
SELECT replace(billing_test_error(format('SELECT billing.invoice_document(%s)', :en_invoice)),
               'invoice ' || :en_invoice, 'invoice <en_invoice>') AS reporting_other_seller,
       replace(billing_test_error(format('SELECT billing.invoice_document(%s, ''json'')', :settle_invoice)),
               'invoice ' || :settle_invoice, 'invoice <settle_invoice>') AS reporting_json,
       billing_test_error('SELECT billing.invoice_document(999999)') AS reporting_missing;
RESET ROLE;
SET ROLE regress_docs_app;
SELECT replace(billing_test_error(format('SELECT billing.invoice_document(%s, ''text'')', :he_invoice)),
               'invoice ' || :he_invoice, 'invoice <he_invoice>') AS writer_other_seller;
SELECT billing.create_account(:other, 'Own Kunde', locale => 'de-DE') AS own \gset
RESET ROLE;
SELECT billing.create_price(product_id => :retainer, currency => 'EUR', unit_amount => 1234.5, scheme => 'per_unit') AS own_eur \gset
SELECT billing.subscribe(account_id => :own, price_id => :own_eur, quantity => 2.5) IS NOT NULL AS subscribed;
SELECT invoice_id AS own_invoice FROM billing.invoice WHERE account_id = :own \gset
SET ROLE regress_docs_bi;
SELECT x AS own_lines FROM regexp_split_to_table(billing.invoice_document(:own_invoice, 'text'), E'\n') x
WHERE x ~ '(Consulting|×|Gesamt|Rechnung an|Kunde)';
RESET ROLE;
SELECT billing.unbind_role_from_entity('regress_docs_app', :other) + billing.unbind_role_from_entity('regress_docs_bi', :other)
    AS unbound;
DROP OWNED BY regress_docs_app, regress_docs_bi, regress_docs_writer, regress_docs_operator, regress_docs_reporting;
DROP ROLE regress_docs_app, regress_docs_bi, regress_docs_writer, regress_docs_operator, regress_docs_reporting;
