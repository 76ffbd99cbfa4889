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

CREATE FUNCTION billing.format_number(value numeric, locale text) RETURNS text
    AS 'MODULE_PATHNAME', 'billing_format_number' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.format_number(numeric, text) IS
    'the number formatted by ICU for a locale (BCP 47 tag): its digits, grouping and decimal sign, every fraction '
    'digit kept (none rounded)';

CREATE FUNCTION billing.html_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT replace(replace(replace(replace(replace(value,
        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION billing.html_escape(text) IS
    'text made safe for HTML element content and quoted attributes: & < > " and '' escaped';

-- The words of the document, per language; a language without rows falls
-- back to English.  Add a language with INSERTs.
CREATE TABLE billing.document_label (
    language text NOT NULL CHECK (language ~ '^[a-z]{2,3}$'),
    key      text NOT NULL,
    label    text NOT NULL,
    PRIMARY KEY (language, key)
);
-- no card numbers in what a caller can store (25_card_numbers.sql)
ALTER TABLE billing.document_label ADD CONSTRAINT document_label_no_card_number CHECK (
    billing._no_card_number(key, 'billing.document_label.key')
    AND billing._no_card_number(label, 'billing.document_label.label'));
COMMENT ON TABLE billing.document_label IS
    'words printed on invoice documents, per ISO 639 language; English is the fallback';

-- The words the extension ships, written once: the install seeds them and
-- the upgrade adds the ones an older version lacked.  Every language has
-- every key (sql/reports_documents.sql checks it).
CREATE FUNCTION billing._shipped_document_labels()
RETURNS TABLE (language text, key text, label text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT l.language, k.key, k.labels[l.n]
    FROM unnest(ARRAY['en', 'he', 'de', 'ru', 'ar', 'fr', 'es']) WITH ORDINALITY l(language, n)
    CROSS JOIN (VALUES
        ('invoice', ARRAY['Invoice', 'חשבונית', 'Rechnung', 'Счёт', 'فاتورة', 'Facture', 'Factura']),
        ('credit_invoice', ARRAY['Credit invoice', 'חשבונית זיכוי', 'Gutschrift', 'Кредитовый счёт', 'فاتورة دائنة',
                                 'Facture d''avoir', 'Factura de abono']),
        ('number', ARRAY['Invoice number', 'מספר חשבונית', 'Rechnungsnummer', 'Номер счёта', 'رقم الفاتورة',
                         'Numéro de facture', 'Número de factura']),
        ('issue_date', ARRAY['Issue date', 'תאריך הפקה', 'Rechnungsdatum', 'Дата выставления', 'تاريخ الإصدار',
                             'Date d''émission', 'Fecha de emisión']),
        ('due_date', ARRAY['Due date', 'לתשלום עד', 'Fällig am', 'Оплатить до', 'تاريخ الاستحقاق',
                           'Date d''échéance', 'Fecha de vencimiento']),
        ('period', ARRAY['Period', 'תקופה', 'Leistungszeitraum', 'Период', 'الفترة', 'Période', 'Periodo']),
        ('bill_to', ARRAY['Bill to', 'לכבוד', 'Rechnung an', 'Плательщик', 'فاتورة إلى', 'Facturé à', 'Facturar a']),
        ('from', ARRAY['From', 'מאת', 'Von', 'Поставщик', 'من', 'Émetteur', 'Emisor']),
        ('tax_id', ARRAY['Tax ID', 'מספר עוסק', 'USt-IdNr.', 'ИНН', 'الرقم الضريبي', 'N° de TVA', 'NIF']),
        ('description', ARRAY['Description', 'תיאור', 'Beschreibung', 'Описание', 'الوصف', 'Désignation',
                              'Descripción']),
        ('quantity', ARRAY['Qty', 'כמות', 'Menge', 'Кол-во', 'الكمية', 'Qté', 'Cant.']),
        ('unit_price', ARRAY['Unit price', 'מחיר ליחידה', 'Einzelpreis', 'Цена за ед.', 'سعر الوحدة',
                             'Prix unitaire', 'Precio unitario']),
        ('amount', ARRAY['Amount', 'סכום', 'Betrag', 'Сумма', 'المبلغ', 'Montant', 'Importe']),
        ('subtotal', ARRAY['Subtotal', 'סכום ביניים', 'Zwischensumme', 'Промежуточный итог', 'المجموع الفرعي',
                           'Sous-total', 'Subtotal']),
        ('discount', ARRAY['Discount', 'הנחה', 'Rabatt', 'Скидка', 'الخصم', 'Remise', 'Descuento']),
        ('tax', ARRAY['Tax', 'מע"מ', 'MwSt.', 'Налог', 'الضريبة', 'TVA', 'IVA']),
        ('total', ARRAY['Total', 'סה"כ', 'Gesamt', 'Итого', 'الإجمالي', 'Total', 'Total']),
        ('payments', ARRAY['Payments', 'תשלומים', 'Zahlungen', 'Платежи', 'المدفوعات', 'Paiements', 'Pagos']),
        ('payments_returned', ARRAY['Refunds and chargebacks', 'החזרים וביטולי חיוב', 'Erstattungen und Rückbuchungen',
                                    'Возвраты и отмены платежей', 'المبالغ المستردة والمدفوعات المعكوسة',
                                    'Remboursements et rétrofacturations', 'Reembolsos y contracargos']),
        ('early_payment_discount', ARRAY['Early-payment discount', 'הנחת תשלום מוקדם', 'Skonto',
                                         'Скидка за досрочную оплату', 'خصم السداد المبكر',
                                         'Escompte pour paiement anticipé', 'Descuento por pronto pago']),
        ('credit_notes', ARRAY['Credit notes', 'הודעות זיכוי', 'Gutschriften', 'Кредит-ноты', 'الإشعارات الدائنة',
                               'Avoirs', 'Notas de crédito']),
        ('credit_applied', ARRAY['Paid from your account credit', 'שולם מיתרת הזכות שלך', 'Mit Ihrem Guthaben verrechnet',
                                 'Оплачено с вашего баланса', 'مدفوع من رصيدك الدائن',
                                 'Réglé avec votre crédit', 'Pagado con su saldo a favor']),
        ('credit_added', ARRAY['Added to your account credit', 'נוסף ליתרת הזכות שלך', 'Ihrem Guthaben gutgeschrieben',
                               'Зачислено на ваш баланс', 'أضيف إلى رصيدك الدائن', 'Ajouté à votre crédit',
                               'Añadido a su saldo a favor']),
        ('voided', ARRAY['Voided', 'בוטל', 'Storniert', 'Аннулировано', 'أُلغي', 'Annulé', 'Anulado']),
        ('amount_due', ARRAY['Amount due', 'יתרה לתשלום', 'Offener Betrag', 'К оплате', 'المبلغ المستحق',
                             'Reste à payer', 'Importe pendiente']),
        ('credit_note', ARRAY['Credit note', 'הודעת זיכוי', 'Gutschrift', 'Кредит-нота', 'إشعار دائن', 'Avoir',
                              'Nota de crédito']),
        ('credit_note_to_balance', ARRAY['added to your account credit', 'נוספה ליתרת הזכות שלך',
                                         'Ihrem Guthaben gutgeschrieben', 'зачислена на ваш баланс',
                                         'أضيف إلى رصيدك الدائن', 'ajouté à votre crédit', 'añadida a su saldo a favor']),
        ('credit_note_refunded', ARRAY['refunded to you', 'הוחזרה לך', 'an Sie erstattet', 'возвращена вам',
                                       'رُدّ إليك', 'remboursé', 'reembolsada']),
        ('payment_instructions', ARRAY['How to pay', 'אופן התשלום', 'Zahlungshinweise', 'Как оплатить', 'طريقة الدفع',
                                       'Modalités de paiement', 'Forma de pago']),
        ('draft', ARRAY['DRAFT', 'טיוטה', 'ENTWURF', 'ЧЕРНОВИК', 'مسودة', 'BROUILLON', 'BORRADOR']),
        ('open', ARRAY['OPEN', 'פתוחה', 'OFFEN', 'ОЖИДАЕТ ОПЛАТЫ', 'مستحقة الدفع', 'À PAYER', 'PENDIENTE']),
        ('paid', ARRAY['PAID', 'שולמה', 'BEZAHLT', 'ОПЛАЧЕН', 'مدفوعة', 'PAYÉE', 'PAGADA']),
        ('void', ARRAY['VOID', 'מבוטלת', 'STORNIERT', 'АННУЛИРОВАН', 'ملغاة', 'ANNULÉE', 'ANULADA']),
        ('uncollectible', ARRAY['UNCOLLECTIBLE', 'אבודה', 'UNEINBRINGLICH', 'СПИСАН', 'غير قابلة للتحصيل',
                                'IRRÉCOUVRABLE', 'INCOBRABLE']),
        ('credited', ARRAY['CREDITED', 'זוכתה', 'GUTGESCHRIEBEN', 'ЗАЧИСЛЕН НА БАЛАНС', 'أضيفت إلى رصيدك',
                           'CRÉDITÉE', 'ABONADA'])
    ) k(key, labels)
$$;
COMMENT ON FUNCTION billing._shipped_document_labels() IS
    'internal: the document words the extension ships, every key in en, he, de, ru, ar, fr and es';

INSERT INTO billing.document_label (language, key, label) SELECT * FROM billing._shipped_document_labels();
-- a dump keeps the languages a user added; the shipped ones come with the
-- extension
SELECT pg_catalog.pg_extension_config_dump('billing.document_label',
    $$WHERE language NOT IN ('en', 'he', 'de', 'ru', 'ar', 'fr', 'es')$$);

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
-- through ICU as money when it has no more digits than the currency, as a
-- number in the locale's digits with the currency code otherwise (0.0035
-- USD per call is shown, not rounded).
CREATE FUNCTION billing._format_unit_price(unit_amount numeric, currency text, locale text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN unit_amount IS NULL THEN ''
        WHEN scale(trim_scale(unit_amount)) <= billing.scale(billing.from_minor_units(0, currency))
        THEN billing.format_amount(billing.amount(unit_amount, currency), locale)
        ELSE billing.format_number(trim_scale(unit_amount), locale) || ' ' || currency
    END
$$;
COMMENT ON FUNCTION billing._format_unit_price(numeric, text, text) IS
    'internal: a unit price for documents, never rounded';

-- Everything a document shows, gathered once: one jsonb, also the json format.
--
-- What settled the invoice, each as what it is (billing.payment_application
-- by source), signed as it changes the amount due, so that
--   amount_due = total + the sum of settlement
-- holds for every invoice (check_invariants: amount_paid is the sum of the
-- applications, amount_due = total - amount_paid; a void invoice has
-- nothing applied and nothing due):
--   payments                money received (source payment, positive);
--   payments_returned       what refunds and chargebacks of those payments
--                           took back off the invoice, which reopened it
--                           (source payment, negative): raises the due;
--   early_payment_discount  the discount for paying within the terms;
--   credit_notes            credit notes that reduced the due (reduce_due);
--   credit_applied          the account's unapplied credit paying it;
--   credit_added            a credit invoice's amount handed to the
--                           account's credit (source credit, negative);
--   voided                  a void invoice's total, no longer asked for.
-- Credit notes on the invoice that went to the account's credit or were
-- refunded do not change its due: they are listed apart (credit_notes).
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
        'credit_invoice', billing.to_numeric(i.total) < 0,
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
        'buyer', jsonb_build_object('name', a.name, 'email', a.email, 'address', a.address,
                                    'external_ref', a.external_ref),
        'subtotal', i.subtotal::text, 'discount', i.discount::text, 'tax', i.tax::text,
        'total', i.total::text, 'amount_paid', i.amount_paid::text, 'amount_due', i.amount_due::text,
        'settlement', coalesce((
            SELECT jsonb_agg(jsonb_build_object('kind', x.kind, 'amount', x.amount::text) ORDER BY x.n)
            FROM (SELECT s.n, s.kind, billing.amount(s.change, i.currency) AS amount
                  FROM (VALUES
                      (1, 'payments', -ap.payments),
                      (2, 'payments_returned', -ap.returned),
                      (3, 'early_payment_discount', -ap.discount),
                      (4, 'credit_notes', -ap.credit_notes),
                      (5, 'credit_applied', -ap.credit_applied),
                      (6, 'credit_added', -ap.credit_added),
                      (7, 'voided', CASE WHEN i.status = 'void' THEN -billing.to_numeric(i.total) ELSE 0 END)
                  ) s(n, kind, change)
                  WHERE s.change <> 0) x), '[]'),
        'credit_notes', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'credit_note_id', c.credit_note_id, 'amount', c.amount::text, 'tax', c.tax::text,
                       'method', c.method, 'reason', c.reason,
                       'issued_on', (c.created_at AT TIME ZONE a.timezone)::date)
                   ORDER BY c.credit_note_id)
            FROM billing.credit_note c
            WHERE c.account_id = i.account_id AND c.invoice_id = i.invoice_id), '[]'),
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
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'payment' AND billing.to_numeric(y.amount) > 0), 0) AS payments,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'payment' AND billing.to_numeric(y.amount) < 0), 0) AS returned,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'discount'), 0) AS discount,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit_note'), 0) AS credit_notes,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit' AND billing.to_numeric(y.amount) > 0), 0) AS credit_applied,
               coalesce(sum(billing.to_numeric(y.amount)) FILTER (WHERE y.source = 'credit' AND billing.to_numeric(y.amount) < 0), 0) AS credit_added
        FROM billing.payment_application y
        WHERE y.account_id = i.account_id AND y.invoice_id = i.invoice_id) ap
    WHERE i.invoice_id = p_invoice_id;
    IF facts IS NULL THEN
        RAISE EXCEPTION 'invoice % does not exist', p_invoice_id
            USING ERRCODE = 'no_data_found', HINT = 'Pass the invoice_id of a row of billing.invoice.';
    END IF;
    RETURN facts;
END $$;
COMMENT ON FUNCTION billing._invoice_facts(bigint) IS
    'internal: what an invoice document shows, with what settled it by kind (amount_due = total + settlement)';

-- A line of the text form: the label left, the figure right-aligned in a
-- column of 20 after a label column of 48; neither is ever cut.  A label
-- longer than its column stands on a line of its own, and the figure below
-- it in the column, so that every figure lines up with the totals.
CREATE FUNCTION billing._text_row(label text, figure text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN length(label) > 48 THEN label || E'\n' || repeat(' ', 48) ELSE rpad(label, 48) END
           || ' ' || lpad(figure, greatest(20, length(figure)))
$$;
COMMENT ON FUNCTION billing._text_row(text, text) IS 'internal: a label and a figure as one line of a text document';

-- A period [start, end) as the reader writes it, the last day included.
CREATE FUNCTION billing._document_period(period_start date, period_end date, locale text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT CASE WHEN period_start IS NOT NULL AND period_end IS NOT NULL
                THEN billing.format_date(period_start, locale, 'medium') || ' – '
                     || billing.format_date(greatest(period_end - 1, period_start), locale, 'medium') END
$$;
COMMENT ON FUNCTION billing._document_period(date, date, text) IS
    'internal: a billing period [start, end) for documents, its last day included';

-- The plain-text document: one line per row, amounts aligned at the
-- right (_text_row), each line's period and quantity under it.
CREATE FUNCTION billing._document_text(f jsonb, lb jsonb, loc text, title text, status text, period text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    cur text := f ->> 'currency';
    body text;
    line jsonb;
    row_ jsonb;
    v_detail text;
    notes text := '';
BEGIN
    body := concat_ws(E'\n',
        -- a draft's heading says so in place of its number, once
        upper(title) || ' ' || coalesce(f ->> 'number' || ' · ' || status, '(' || (lb ->> 'draft') || ')'),
        (lb ->> 'from') || ': ' || (f #>> '{seller,legal_name}')
            || coalesce(' (' || (lb ->> 'tax_id') || ' ' || (f #>> '{seller,tax_id}') || ')', ''),
        '  ' || replace(f #>> '{seller,address}', E'\n', E'\n  '),
        (lb ->> 'bill_to') || ': ' || (f #>> '{buyer,name}'),
        '  ' || replace(f #>> '{buyer,address}', E'\n', E'\n  '),
        '  ' || (f #>> '{buyer,email}'),
        (lb ->> 'issue_date') || ': ' || billing.format_date((f ->> 'issue_date')::date, loc),
        (lb ->> 'due_date') || ': ' || billing.format_date((f ->> 'due_date')::date, loc),
        (lb ->> 'period') || ': ' || period,
        '');
    FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
        body := body || E'\n' || billing._text_row(line ->> 'description',
                                                   billing.format_amount((line ->> 'amount')::billing.amount, loc));
        -- under it: its period, and how many at what price unless that
        -- is one at the amount (a tax line's unit_amount is its rate,
        -- already in its description)
        v_detail := concat_ws(' · ',
            billing._document_period((line ->> 'period_start')::date, (line ->> 'period_end')::date, loc),
            CASE WHEN line ->> 'kind' <> 'tax' AND line ->> 'quantity' IS NOT NULL
                      AND line ->> 'unit_amount' IS NOT NULL
                      AND NOT ((line ->> 'quantity')::numeric = 1 AND (line ->> 'unit_amount')::numeric
                               = billing.to_numeric((line ->> 'amount')::billing.amount))
                 THEN billing.format_number(trim_scale((line ->> 'quantity')::numeric), loc) || ' × '
                      || billing._format_unit_price((line ->> 'unit_amount')::numeric, cur, loc) END);
        IF v_detail <> '' THEN
            body := body || E'\n  ' || v_detail;
        END IF;
    END LOOP;
    body := body || E'\n\n' || concat_ws(E'\n',
        billing._text_row(lb ->> 'subtotal', billing.format_amount((f ->> 'subtotal')::billing.amount, loc)),
        CASE WHEN (f ->> 'discount')::billing.amount <> billing.from_minor_units(0, cur)
             THEN billing._text_row(lb ->> 'discount', billing.format_amount((f ->> 'discount')::billing.amount, loc)) END,
        billing._text_row(lb ->> 'tax', billing.format_amount((f ->> 'tax')::billing.amount, loc)),
        billing._text_row(lb ->> 'total', billing.format_amount((f ->> 'total')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'settlement') LOOP
        body := body || E'\n' || billing._text_row(lb ->> (row_ ->> 'kind'),
                                                   billing.format_amount((row_ ->> 'amount')::billing.amount, loc));
    END LOOP;
    body := body || E'\n' || billing._text_row(lb ->> 'amount_due',
                                               billing.format_amount((f ->> 'amount_due')::billing.amount, loc));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'credit_notes') WHERE value ->> 'method' <> 'reduce_due' LOOP
        notes := notes || E'\n' || (lb ->> 'credit_note') || ' ' || (row_ ->> 'credit_note_id') || ', '
            || billing.format_date((row_ ->> 'issued_on')::date, loc, 'medium') || ': '
            || billing.format_amount((row_ ->> 'amount')::billing.amount, loc) || ' '
            || (lb ->> CASE row_ ->> 'method' WHEN 'refund' THEN 'credit_note_refunded' ELSE 'credit_note_to_balance' END);
    END LOOP;
    IF notes <> '' THEN
        body := body || E'\n' || notes;
    END IF;
    IF f #>> '{seller,payment_instructions}' IS NOT NULL THEN
        body := body || E'\n\n' || (lb ->> 'payment_instructions') || E':\n'
            || (f #>> '{seller,payment_instructions}');
    END IF;
    RETURN body || E'\n';
END $$;
COMMENT ON FUNCTION billing._document_text(jsonb, jsonb, text, text, text, text) IS
    'invoice_document''s text format, from the invoice''s facts (_invoice_facts), the words of its locale and its '
    'title, status and period as invoice_document words them';

-- The HTML document: a print-ready page, right to left where the locale
-- is, every value from a table escaped.
CREATE FUNCTION billing._document_html(f jsonb, lb jsonb, loc text, title text, status text, period text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    cur text := f ->> 'currency';
    h text;
    body text;
    line jsonb;
    row_ jsonb;
    money_rows text := '';
    notes text := '';
BEGIN
    -- html: every value from a table goes through html_escape; invoice.discount
    -- is already negative (the sum of the discount lines)
    body := '';
    FOR line IN SELECT value FROM jsonb_array_elements(f -> 'lines') LOOP
        body := body || format(
            '<tr><td>%s%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td></tr>' || E'\n',
            html_escape(line ->> 'description'),
            coalesce('<div class="period">' || html_escape(billing._document_period(
                        (line ->> 'period_start')::date, (line ->> 'period_end')::date, loc)) || '</div>', ''),
            -- a tax line's unit_amount is its rate, already in its description
            CASE WHEN line ->> 'kind' = 'tax' OR line ->> 'quantity' IS NULL THEN ''
                 ELSE html_escape(billing.format_number(trim_scale((line ->> 'quantity')::numeric), loc)) END,
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
        '<tr><th>%s</th><td class="num">%s</td></tr><tr class="total"><th>%s</th><td class="num">%s</td></tr>',
        html_escape(lb ->> 'tax'), html_escape(billing.format_amount((f ->> 'tax')::billing.amount, loc)),
        html_escape(lb ->> 'total'), html_escape(billing.format_amount((f ->> 'total')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'settlement') LOOP
        money_rows := money_rows || format('<tr class="%s"><th>%s</th><td class="num">%s</td></tr>',
            row_ ->> 'kind', html_escape(lb ->> (row_ ->> 'kind')),
            html_escape(billing.format_amount((row_ ->> 'amount')::billing.amount, loc)));
    END LOOP;
    money_rows := money_rows || format('<tr class="due"><th>%s</th><td class="num">%s</td></tr>',
        html_escape(lb ->> 'amount_due'), html_escape(billing.format_amount((f ->> 'amount_due')::billing.amount, loc)));
    FOR row_ IN SELECT value FROM jsonb_array_elements(f -> 'credit_notes') WHERE value ->> 'method' <> 'reduce_due' LOOP
        notes := notes || format('<li>%s %s, %s: %s %s</li>', html_escape(lb ->> 'credit_note'),
            row_ ->> 'credit_note_id', html_escape(billing.format_date((row_ ->> 'issued_on')::date, loc, 'medium')),
            html_escape(billing.format_amount((row_ ->> 'amount')::billing.amount, loc)),
            html_escape(lb ->> CASE row_ ->> 'method' WHEN 'refund' THEN 'credit_note_refunded' ELSE 'credit_note_to_balance' END));
    END LOOP;

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
tr.due th, tr.due td { font-weight: bold; font-size: 1.15em; border-top: 1px solid #222; }
.notes { margin-top: 1.5em; color: #555; }
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
%s</table>
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
%s%s</body>
</html>
$html$,
        html_escape(replace(loc, '_', '-')), f ->> 'direction',
        html_escape(title), html_escape(coalesce(f ->> 'number', '')),
        html_escape(title),
        html_escape(status),
        html_escape(lb ->> 'number'), html_escape(coalesce(f ->> 'number', '—')),
        html_escape(lb ->> 'issue_date'), html_escape(billing.format_date((f ->> 'issue_date')::date, loc)),
        html_escape(lb ->> 'due_date'), html_escape(billing.format_date((f ->> 'due_date')::date, loc)),
        coalesce('<tr><th>' || html_escape(lb ->> 'period') || '</th><td>' || html_escape(period) || '</td></tr>' || E'\n', ''),
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
        CASE WHEN notes <> '' THEN '<ul class="notes">' || notes || '</ul>' || E'\n' ELSE '' END,
        coalesce('<div class="instructions"><strong>' || html_escape(lb ->> 'payment_instructions')
                 || '</strong>' || E'\n' || html_escape(f #>> '{seller,payment_instructions}') || '</div>' || E'\n', ''));
    RETURN h;
END $$;
COMMENT ON FUNCTION billing._document_html(jsonb, jsonb, text, text, text, text) IS
    'invoice_document''s html format, from the invoice''s facts (_invoice_facts), the words of its locale and its '
    'title, status and period as invoice_document words them';

CREATE FUNCTION billing.invoice_document(invoice_id bigint, format text DEFAULT 'html') RETURNS text
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    f jsonb;
    lb jsonb;
    loc text;
    v_title text;
    v_status text;
    v_period text;
BEGIN
    PERFORM billing._authorize_invoice(invoice_document.invoice_id);
    IF format IS NULL OR format NOT IN ('html', 'text', 'json') THEN
        RAISE EXCEPTION 'unknown invoice document format "%"', format
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use html, text or json.';
    END IF;
    IF invoice_id IS NULL THEN
        RAISE EXCEPTION 'invoice_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- the account's locale, checked before anything is formatted, so that
    -- a tag ICU does not know is named with its account
    SELECT a.locale INTO loc FROM billing.invoice i JOIN billing.account a ON a.account_id = i.account_id
    WHERE i.invoice_id = invoice_document.invoice_id;
    IF FOUND THEN
        BEGIN
            PERFORM billing.locale_direction(loc);
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'invoice %: the account''s locale "%" is not a language ICU knows', invoice_id, loc
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Set a BCP 47 tag such as en-US, de-DE, he-IL or ar-EG with billing.update_account(locale => ...).';
        END;
    END IF;
    f := billing._invoice_facts(invoice_id);
    IF format = 'json' THEN
        RETURN jsonb_pretty(f);
    END IF;
    lb := billing._document_labels(loc);
    -- a credit invoice (its total below zero) reads as one: its own title,
    -- and credited instead of paid (the engine pays it by handing its
    -- amount to the account's credit)
    v_title := lb ->> CASE WHEN (f ->> 'credit_invoice')::boolean THEN 'credit_invoice' ELSE 'invoice' END;
    v_status := lb ->> CASE WHEN (f ->> 'credit_invoice')::boolean AND f ->> 'status' = 'paid' THEN 'credited'
                            ELSE f ->> 'status' END;
    v_period := billing._document_period((f ->> 'period_start')::date, (f ->> 'period_end')::date, loc);

    IF format = 'text' THEN
        RETURN billing._document_text(f, lb, loc, v_title, v_status, v_period);
    END IF;
    RETURN billing._document_html(f, lb, loc, v_title, v_status, v_period);
END $$;
COMMENT ON FUNCTION billing.invoice_document(bigint, text) IS
    'the invoice as a print-ready html page, plain text, or json, in the account''s locale: its lines with their '
    'periods, totals, and what settled it by kind (payments, refunds, early-payment discount, credit notes, account '
    'credit), so that the amount due is the total less them';
