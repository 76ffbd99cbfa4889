-- Invoice documents: ICU dates, text direction, HTML escaping, and
-- billing.invoice_document in html, text and json.
\pset null '(null)'
SET search_path = public, billing;
\i test/regress_helpers.sql

-- Dates in the reader's locale, every style; month ends and Feb 29.
SELECT l, billing.format_date('2028-02-29', l) AS long_date,
       billing.format_date('2026-12-31', l, 'short') AS short_date,
       billing.format_date('2026-01-31', l, 'medium') AS medium_date,
       billing.format_date('2026-01-31', l, 'full') AS full_date
FROM unnest(ARRAY['en-US', 'en-GB', 'de-DE', 'he-IL', 'ar-EG', 'ja-JP', 'ru-RU']) l;
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
SELECT billing.invoice_document(:he_invoice, 'text');

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
       en LIKE '%How to pay%IBAN US00 NWND 0000 1234 5678%' AS instructions
FROM d;
-- JSON: the facts, amounts as exact text.
SELECT j ->> 'number' AS number, j ->> 'direction' AS direction, j ->> 'total' AS total,
       j #>> '{buyer,name}' AS buyer, jsonb_array_length(j -> 'lines') AS lines,
       j #>> '{lines,1,amount}' AS second_line
FROM (SELECT billing.invoice_document(:en_invoice, 'json')::jsonb AS j) x;

-- A language without labels falls back to English words, its own formats.
UPDATE billing.account SET locale = 'fr-FR' WHERE external_ref = 'doc-en';
SELECT split_part(billing.invoice_document(:en_invoice, 'text'), E'\n', 1) AS first_line,
       billing.invoice_document(:en_invoice) LIKE '%101,55%$US%' AS french_amount;
-- Labels are data: a language is an INSERT away.
INSERT INTO billing.document_label VALUES ('fr', 'invoice', 'Facture');
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
