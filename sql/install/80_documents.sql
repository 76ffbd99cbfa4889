-- Invoice documents: a print-ready HTML invoice, a plain-text one, and JSON,
-- in the account's locale (amounts and dates by ICU, right to left for
-- Hebrew and Arabic), every user-supplied string escaped.

CREATE FUNCTION billing.format_date(value date, locale text, style text DEFAULT 'long') RETURNS text
    AS 'MODULE_PATHNAME', 'billing_format_date' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.format_date(date, text, text) IS
    'the date formatted by ICU for a locale (BCP 47 tag), style short, medium, long or full';

CREATE FUNCTION billing.locale_direction(locale text) RETURNS text
    AS 'MODULE_PATHNAME', 'billing_locale_direction' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.locale_direction(text) IS
    'rtl for locales written right to left (he, ar, fa, ...), else ltr';

CREATE FUNCTION billing.html_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(replace(replace(replace(replace(value,
        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION billing.html_escape(text) IS
    'text made safe for HTML element content and quoted attributes: & < > " and '' escaped';

-- The words of the document, per language; a missing language falls back
-- to English.  Add a language with INSERTs.
CREATE TABLE billing.document_label (
    language text NOT NULL CHECK (language ~ '^[a-z]{2,3}$'),
    key      text NOT NULL,
    label    text NOT NULL,
    PRIMARY KEY (language, key)
);
COMMENT ON TABLE billing.document_label IS
    'words printed on invoice documents, per ISO 639 language; English is the fallback';

INSERT INTO billing.document_label (language, key, label)
SELECT 'en', k, v FROM (VALUES
    ('invoice', 'Invoice'), ('number', 'Invoice number'), ('issue_date', 'Issue date'),
    ('due_date', 'Due date'), ('period', 'Period'), ('bill_to', 'Bill to'), ('from', 'From'),
    ('tax_id', 'Tax ID'), ('description', 'Description'), ('quantity', 'Qty'),
    ('unit_price', 'Unit price'), ('amount', 'Amount'), ('subtotal', 'Subtotal'),
    ('discount', 'Discount'), ('tax', 'Tax'), ('total', 'Total'), ('amount_paid', 'Amount paid'),
    ('amount_due', 'Amount due'), ('payment_instructions', 'How to pay'),
    ('draft', 'DRAFT'), ('open', 'OPEN'), ('paid', 'PAID'), ('void', 'VOID'),
    ('uncollectible', 'UNCOLLECTIBLE')) t(k, v)
UNION ALL
SELECT 'he', k, v FROM (VALUES
    ('invoice', 'חשבונית'), ('number', 'מספר חשבונית'), ('issue_date', 'תאריך הפקה'),
    ('due_date', 'לתשלום עד'), ('period', 'תקופה'), ('bill_to', 'לכבוד'), ('from', 'מאת'),
    ('tax_id', 'מספר עוסק'), ('description', 'תיאור'), ('quantity', 'כמות'),
    ('unit_price', 'מחיר ליחידה'), ('amount', 'סכום'), ('subtotal', 'סכום ביניים'),
    ('discount', 'הנחה'), ('tax', 'מע"מ'), ('total', 'סה"כ'), ('amount_paid', 'שולם'),
    ('amount_due', 'יתרה לתשלום'), ('payment_instructions', 'אופן התשלום'),
    ('draft', 'טיוטה'), ('open', 'פתוחה'), ('paid', 'שולמה'), ('void', 'מבוטלת'),
    ('uncollectible', 'אבודה')) t(k, v)
UNION ALL
SELECT 'de', k, v FROM (VALUES
    ('invoice', 'Rechnung'), ('number', 'Rechnungsnummer'), ('issue_date', 'Rechnungsdatum'),
    ('due_date', 'Fällig am'), ('period', 'Leistungszeitraum'), ('bill_to', 'Rechnung an'),
    ('from', 'Von'), ('tax_id', 'USt-IdNr.'), ('description', 'Beschreibung'), ('quantity', 'Menge'),
    ('unit_price', 'Einzelpreis'), ('amount', 'Betrag'), ('subtotal', 'Zwischensumme'),
    ('discount', 'Rabatt'), ('tax', 'MwSt.'), ('total', 'Gesamt'), ('amount_paid', 'Bezahlt'),
    ('amount_due', 'Offener Betrag'), ('payment_instructions', 'Zahlungshinweise'),
    ('draft', 'ENTWURF'), ('open', 'OFFEN'), ('paid', 'BEZAHLT'), ('void', 'STORNIERT'),
    ('uncollectible', 'UNEINBRINGLICH')) t(k, v);
SELECT pg_catalog.pg_extension_config_dump('billing.document_label', $$WHERE language NOT IN ('en', 'he', 'de')$$);

-- The labels for a locale as one jsonb object, English under the rest.
CREATE FUNCTION billing._document_labels(locale text) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT (SELECT jsonb_object_agg(key, label) FROM billing.document_label WHERE language = 'en')
        || coalesce((SELECT jsonb_object_agg(key, label) FROM billing.document_label
                     WHERE language = lower(split_part(replace(locale, '_', '-'), '-', 1))
                       AND language <> 'en'), '{}')
$$;
COMMENT ON FUNCTION billing._document_labels(text) IS 'internal: document words for a locale';

-- A unit price (numeric, possibly finer than the currency) for display:
-- through ICU when it has no more digits than the currency, as written
-- otherwise (0.0035 USD per call is shown, not rounded).
CREATE FUNCTION billing._format_unit_price(unit_amount numeric, currency text, locale text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN unit_amount IS NULL THEN ''
        WHEN scale(trim_scale(unit_amount)) <= billing.scale(billing.from_minor_units(0, currency))
        THEN billing.format_amount(billing.amount(unit_amount, currency), locale)
        ELSE trim_scale(unit_amount)::text || ' ' || currency
    END
$$;
COMMENT ON FUNCTION billing._format_unit_price(numeric, text, text) IS
    'internal: a unit price for documents, never rounded';

-- Everything a document shows, gathered once: one jsonb, also the json format.
CREATE FUNCTION billing._invoice_facts(p_invoice_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    facts jsonb;
BEGIN
    SELECT jsonb_build_object(
        'invoice_id', i.invoice_id,
        'account_id', i.account_id,
        'number', i.number,
        'status', i.status,
        'currency', i.currency,
        'issue_date', i.issue_date,
        'due_date', i.due_date,
        'period_start', i.period_start,
        'period_end', i.period_end,
        'locale', a.locale,
        'direction', billing.locale_direction(a.locale),
        'seller', jsonb_build_object('legal_name', e.legal_name, 'tax_id', e.tax_id,
                                     'address', e.address,
                                     'payment_instructions', e.metadata ->> 'payment_instructions'),
        'buyer', jsonb_build_object('name', a.name, 'email', a.email,
                                    'address', a.metadata ->> 'address',
                                    'external_ref', a.external_ref),
        'subtotal', i.subtotal::text, 'discount', i.discount::text, 'tax', i.tax::text,
        'total', i.total::text, 'amount_paid', i.amount_paid::text, 'amount_due', i.amount_due::text,
        'lines', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'kind', l.kind, 'description', l.description,
                       'quantity', l.quantity, 'unit_amount', l.unit_amount,
                       'amount', l.amount::text,
                       'period_start', l.period_start, 'period_end', l.period_end)
                   ORDER BY l.invoice_line_id)
            FROM billing.invoice_line l
            WHERE l.account_id = i.account_id AND l.invoice_id = i.invoice_id), '[]'))
    INTO facts
    FROM billing.invoice i
    JOIN billing.account a ON a.account_id = i.account_id
    JOIN billing.billing_entity e ON e.entity_id = i.entity_id
    WHERE i.invoice_id = p_invoice_id;
    IF facts IS NULL THEN
        RAISE EXCEPTION 'invoice % does not exist', p_invoice_id
            USING ERRCODE = 'no_data_found', HINT = 'Pass the invoice_id of a row of billing.invoice.';
    END IF;
    RETURN facts;
END $$;
COMMENT ON FUNCTION billing._invoice_facts(bigint) IS 'internal: what an invoice document shows';

CREATE FUNCTION billing.invoice_document(invoice_id bigint, format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    lb jsonb;
    loc text;
    cur text;
    h text;
    body text;
    line jsonb;
    money_rows text := '';
BEGIN
    PERFORM billing._authorize_invoice(invoice_document.invoice_id);
    IF format IS NULL OR format NOT IN ('html', 'text', 'json') THEN
        RAISE EXCEPTION 'unknown invoice document format "%"', format
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, text or json.';
    END IF;
    IF invoice_id IS NULL THEN
        RAISE EXCEPTION 'invoice_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    f := billing._invoice_facts(invoice_id);
    IF format = 'json' THEN
        RETURN jsonb_pretty(f);
    END IF;
    loc := f ->> 'locale';
    cur := f ->> 'currency';
    lb := billing._document_labels(loc);

    IF format = 'text' THEN
        body := concat_ws(E'\n',
            upper(lb ->> 'invoice') || ' ' || coalesce(f ->> 'number', '(' || (lb ->> 'draft') || ')'),
            (lb ->> 'from') || ': ' || (f #>> '{seller,legal_name}')
                || coalesce(' (' || (lb ->> 'tax_id') || ' ' || (f #>> '{seller,tax_id}') || ')', ''),
            (lb ->> 'bill_to') || ': ' || (f #>> '{buyer,name}'),
            (lb ->> 'issue_date') || ': ' || billing.format_date((f ->> 'issue_date')::date, loc),
            (lb ->> 'due_date') || ': ' || billing.format_date((f ->> 'due_date')::date, loc),
            '');
        FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
            body := body || E'\n' || rpad(line ->> 'description', 48) || ' '
                || lpad(billing.format_amount((line ->> 'amount')::billing.amount, loc), 20);
        END LOOP;
        body := body || E'\n\n' || concat_ws(E'\n',
            rpad(lb ->> 'subtotal', 48) || ' ' || lpad(billing.format_amount((f ->> 'subtotal')::billing.amount, loc), 20),
            CASE WHEN (f ->> 'discount')::billing.amount <> billing.from_minor_units(0, cur)
                 THEN rpad(lb ->> 'discount', 48) || ' '
                      || lpad(billing.format_amount((f ->> 'discount')::billing.amount, loc), 20) END,
            rpad(lb ->> 'tax', 48) || ' ' || lpad(billing.format_amount((f ->> 'tax')::billing.amount, loc), 20),
            rpad(lb ->> 'total', 48) || ' ' || lpad(billing.format_amount((f ->> 'total')::billing.amount, loc), 20),
            rpad(lb ->> 'amount_paid', 48) || ' ' || lpad(billing.format_amount((f ->> 'amount_paid')::billing.amount, loc), 20),
            rpad(lb ->> 'amount_due', 48) || ' ' || lpad(billing.format_amount((f ->> 'amount_due')::billing.amount, loc), 20));
        IF f #>> '{seller,payment_instructions}' IS NOT NULL THEN
            body := body || E'\n\n' || (lb ->> 'payment_instructions') || E':\n'
                || (f #>> '{seller,payment_instructions}');
        END IF;
        RETURN body || E'\n';
    END IF;

    -- html: every value from a table goes through html_escape; invoice.discount
    -- is already negative (the sum of the discount lines)
    body := '';
    FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
        body := body || format(
            '<tr><td>%s%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>' || E'\n',
            html_escape(line ->> 'description'),
            CASE WHEN line ->> 'period_start' IS NOT NULL AND line ->> 'period_end' IS NOT NULL
                 THEN '<div class="period">' || html_escape(
                        billing.format_date((line ->> 'period_start')::date, loc, 'medium') || ' – '
                        || billing.format_date((line ->> 'period_end')::date - 1, loc, 'medium')) || '</div>'
                 ELSE '' END,
            -- a tax line's unit_amount is its rate, already in its description
            CASE WHEN line ->> 'kind' = 'tax' THEN ''
                 ELSE html_escape(coalesce(trim_scale((line ->> 'quantity')::numeric)::text, '')) END,
            CASE WHEN line ->> 'kind' = 'tax' THEN ''
                 ELSE html_escape(billing._format_unit_price((line ->> 'unit_amount')::numeric, cur, loc)) END,
            html_escape(billing.format_amount((line ->> 'amount')::billing.amount, loc)));
    END LOOP;
    money_rows := format('<tr><th>%s</th><td class="num">%s</td></tr>',
                         html_escape(lb ->> 'subtotal'),
                         html_escape(billing.format_amount((f ->> 'subtotal')::billing.amount, loc)));
    IF ((f ->> 'discount')::billing.amount) <> billing.from_minor_units(0, cur) THEN
        money_rows := money_rows || format('<tr><th>%s</th><td class="num">%s</td></tr>',
                         html_escape(lb ->> 'discount'),
                         html_escape(billing.format_amount((f ->> 'discount')::billing.amount, loc)));
    END IF;
    money_rows := money_rows || format(
        '<tr><th>%s</th><td class="num">%s</td></tr><tr class="total"><th>%s</th><td class="num">%s</td></tr>'
        || '<tr><th>%s</th><td class="num">%s</td></tr><tr class="due"><th>%s</th><td class="num">%s</td></tr>',
        html_escape(lb ->> 'tax'), html_escape(billing.format_amount((f ->> 'tax')::billing.amount, loc)),
        html_escape(lb ->> 'total'), html_escape(billing.format_amount((f ->> 'total')::billing.amount, loc)),
        html_escape(lb ->> 'amount_paid'), html_escape(billing.format_amount((f ->> 'amount_paid')::billing.amount, loc)),
        html_escape(lb ->> 'amount_due'), html_escape(billing.format_amount((f ->> 'amount_due')::billing.amount, loc)));

    h := format($html$<!DOCTYPE html>
<html lang="%s" dir="%s">
<head>
<meta charset="utf-8">
<title>%s %s</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2.5em; color: #222; }
h1 { font-size: 1.8em; margin: 0 0 0.2em 0; }
.status { display: inline-block; border: 2px solid #888; color: #888; padding: 0.1em 0.6em; font-weight: bold; }
.parties { display: flex; justify-content: space-between; margin: 1.5em 0; }
.parties div { width: 45%%; white-space: pre-line; }
.meta th { text-align: start; padding-inline-end: 1em; font-weight: normal; color: #555; }
table.lines { width: 100%%; border-collapse: collapse; margin-top: 1.5em; }
table.lines th { border-bottom: 2px solid #222; text-align: start; padding: 0.4em; }
table.lines td { border-bottom: 1px solid #ddd; padding: 0.4em; vertical-align: top; }
.num { text-align: end; white-space: nowrap; }
.period { color: #666; font-size: 0.85em; }
table.totals { margin-inline-start: auto; margin-top: 1em; border-collapse: collapse; }
table.totals th { text-align: start; padding-block: 0.3em; padding-inline-end: 1.5em; font-weight: normal; }
table.totals td { padding: 0.3em 0; }
tr.total th, tr.total td { font-weight: bold; border-top: 2px solid #222; }
tr.due th, tr.due td { font-weight: bold; font-size: 1.15em; }
.instructions { margin-top: 2em; white-space: pre-line; }
</style>
</head>
<body>
<h1>%s</h1>
<span class="status">%s</span>
<table class="meta">
<tr><th>%s</th><td>%s</td></tr>
<tr><th>%s</th><td>%s</td></tr>
<tr><th>%s</th><td>%s</td></tr>
</table>
<div class="parties">
<div><strong>%s</strong>
%s%s%s</div>
<div><strong>%s</strong>
%s%s%s</div>
</div>
<table class="lines">
<thead><tr><th>%s</th><th class="num">%s</th><th class="num">%s</th><th class="num">%s</th></tr></thead>
<tbody>
%s</tbody>
</table>
<table class="totals">%s</table>
%s</body>
</html>
$html$,
        html_escape(replace(loc, '_', '-')), f ->> 'direction',
        html_escape(lb ->> 'invoice'), html_escape(coalesce(f ->> 'number', '')),
        html_escape(lb ->> 'invoice'),
        html_escape(lb ->> (f ->> 'status')),
        html_escape(lb ->> 'number'), html_escape(coalesce(f ->> 'number', '—')),
        html_escape(lb ->> 'issue_date'), html_escape(billing.format_date((f ->> 'issue_date')::date, loc)),
        html_escape(lb ->> 'due_date'), html_escape(billing.format_date((f ->> 'due_date')::date, loc)),
        html_escape(lb ->> 'from'),
        html_escape(f #>> '{seller,legal_name}'),
        coalesce(E'\n' || html_escape(f #>> '{seller,address}'), ''),
        coalesce(E'\n' || html_escape((lb ->> 'tax_id') || ' ' || (f #>> '{seller,tax_id}')), ''),
        html_escape(lb ->> 'bill_to'),
        html_escape(f #>> '{buyer,name}'),
        coalesce(E'\n' || html_escape(f #>> '{buyer,address}'), ''),
        coalesce(E'\n' || html_escape(f #>> '{buyer,email}'), ''),
        html_escape(lb ->> 'description'), html_escape(lb ->> 'quantity'),
        html_escape(lb ->> 'unit_price'), html_escape(lb ->> 'amount'),
        body,
        money_rows,
        coalesce('<div class="instructions"><strong>' || html_escape(lb ->> 'payment_instructions')
                 || '</strong>' || E'\n' || html_escape(f #>> '{seller,payment_instructions}') || '</div>' || E'\n', ''));
    RETURN h;
END $$;
COMMENT ON FUNCTION billing.invoice_document(bigint, text) IS
    'the invoice as a print-ready html page, plain text, or json, in the account''s locale';
