-- The finance dashboard: one HTML page of one billing entity in one
-- currency, with inline SVG charts (MRR and its movements, revenue and
-- collected, receivables aging, days sales outstanding, the dunning
-- funnel), readable in a browser without scripts.
--
-- Its figures are the reporting views' (82_reports.sql, 78_dunning.sql):
-- ar_aging and mrr_movements per account, filtered by the entity's
-- accounts; the views that add up every account the caller sees are read
-- through the functions behind them with the entity as argument, so that
-- each report's rule stays written once.  The page runs with the owner's
-- rights (a reader function of role_functions) after
-- billing._authorize_entity, and reads only that entity's rows.
--
-- Bars are scaled in numeric (value x height / largest value, rounded to
-- hundredths of a pixel): no float on the way from an amount to the page.

-- One bar chart as SVG: a group per label, one bar per series (b NULL: one
-- series), heights proportional to the largest value.  A value below zero
-- (a month of refunds only, say) draws no bar; the tables beside the charts
-- show every figure.  dir rtl mirrors the chart: the first label on the
-- right, as the page reads.
CREATE FUNCTION billing._dashboard_bars(labels text[], a numeric[], b numeric[], locale text, dir text)
RETURNS text
LANGUAGE sql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    WITH d AS (
        SELECT i, labels[i] AS label, a[i] AS va, b[i] AS vb
        FROM generate_subscripts(labels, 1) i
    ), s AS (
        SELECT count(*) AS n,
               coalesce(nullif(greatest(max(greatest(va, 0)), coalesce(max(greatest(vb, 0)), 0)), 0), 1) AS top
        FROM d
    ), g AS (
        -- x of the group's left edge and its width, in a 700 wide plot
        -- starting at 10; bars are 160 high at most, their base at y 170
        SELECT d.*, round(700::numeric / s.n, 4) AS gw, s.top,
               10 + round(700::numeric / s.n, 4) * (d.i - 1) AS x0
        FROM d CROSS JOIN s
    ), bars AS (
        SELECT g.i, 1 AS k, g.label, g.va AS v, g.x0 + round(g.gw * CASE WHEN b IS NULL THEN 0.15 ELSE 0.1 END, 2) AS x,
               round(g.gw * CASE WHEN b IS NULL THEN 0.7 ELSE 0.4 END, 2) AS w, g.top
        FROM g
        UNION ALL
        SELECT g.i, 2, g.label, g.vb, g.x0 + round(g.gw * 0.5, 2), round(g.gw * 0.4, 2), g.top
        FROM g WHERE b IS NOT NULL
    )
    SELECT '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 720 200" width="720" height="200" role="img">'
        || '<line x1="10" y1="170" x2="710" y2="170" class="axis"/>'
        || coalesce((SELECT string_agg(format('<rect class="s%s" x="%s" y="%s" width="%s" height="%s"><title>%s</title></rect>',
                                              r.k, round(CASE WHEN dir = 'rtl' THEN 720 - r.x - r.w ELSE r.x END, 2),
                                              170 - r.h, r.w, r.h,
                                              billing.html_escape(r.label || ': ' || billing.format_number(r.v, locale))),
                                       '' ORDER BY r.i, r.k)
                     FROM (SELECT bars.*, round(greatest(coalesce(bars.v, 0), 0) * 160 / bars.top, 2) AS h FROM bars) r), '')
        || coalesce((SELECT string_agg(format('<text x="%s" y="188" class="label">%s</text>',
                                              round(CASE WHEN dir = 'rtl' THEN 720 - (g.x0 + g.gw / 2)
                                                         ELSE g.x0 + g.gw / 2 END, 2),
                                              billing.html_escape(g.label)),
                                       '' ORDER BY g.i)
                     FROM g), '')
        || '</svg>'
$$;
COMMENT ON FUNCTION billing._dashboard_bars(text[], numeric[], numeric[], text, text) IS
    'internal: a bar chart of billing.dashboard_html as inline SVG, one or two series, scaled in numeric';

-- A table of the page: a header row and a row per first index of cells
-- (NULL: no row), every cell escaped.
CREATE FUNCTION billing._dashboard_table(head text[], cells text[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT '<table><thead><tr>'
        || (SELECT string_agg('<th>' || billing.html_escape(coalesce(h, '')) || '</th>', '' ORDER BY o)
            FROM unnest(head) WITH ORDINALITY u(h, o))
        || '</tr></thead><tbody>'
        || coalesce((SELECT string_agg('<tr>' || (SELECT string_agg('<td>' || billing.html_escape(coalesce(cells[r][c], '')) || '</td>', ''
                                                                     ORDER BY c)
                                                   FROM generate_subscripts(cells, 2) c) || '</tr>', '' ORDER BY r)
                     FROM generate_subscripts(cells, 1) r), '')
        || '</tbody></table>'
$$;
COMMENT ON FUNCTION billing._dashboard_table(text[], text[]) IS 'internal: an HTML table of billing.dashboard_html, every cell escaped';

CREATE FUNCTION billing.dashboard_html(entity_id bigint, currency text DEFAULT NULL, months integer DEFAULT 12,
                                       locale text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_name text;
    v_currency text;
    v_locale text;
    v_dir text;
    v_accounts bigint[];
    v_last date := date_trunc('month', billing.today('UTC')::timestamp)::date;
    v_first date;
    v_labels text[];
    v_a numeric[];
    v_b numeric[];
    v_rows text[];
    v_mrr record;
    v_dso record;
    v_aging record;
    v_zero numeric;
    v_html text;
BEGIN
    PERFORM billing._authorize_entity(dashboard_html.entity_id);
    IF entity_id IS NULL THEN
        RAISE EXCEPTION 'entity_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.legal_name, coalesce(upper(dashboard_html.currency), e.default_currency) INTO v_name, v_currency
    FROM billing.billing_entity e WHERE e.entity_id = dashboard_html.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', entity_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
    PERFORM billing._check_currency(v_currency, 'currency');
    IF months IS NULL OR months < 1 OR months > 120 THEN
        RAISE EXCEPTION 'months must be between 1 and 120, not %', coalesce(months::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 12 months.';
    END IF;
    -- a zero with the currency's digits, for the months without figures
    v_zero := billing.round_money(0, v_currency);
    v_accounts := ARRAY(SELECT a.account_id FROM billing.account a WHERE a.entity_id = dashboard_html.entity_id
                        ORDER BY a.account_id);
    v_locale := coalesce(dashboard_html.locale,
                         (SELECT a.locale FROM billing.account a WHERE a.account_id = v_accounts[1]), 'en-US');
    BEGIN
        v_dir := billing.locale_direction(v_locale);
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'locale "%" is not a language ICU knows', v_locale
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a BCP 47 tag such as en-US, de-DE, he-IL or ar-EG.';
    END;
    v_first := (v_last - make_interval(months => months - 1))::date;

    v_html := format('<!DOCTYPE html><html lang="%s" dir="%s"><head><meta charset="utf-8"><title>%s</title>',
                     billing.html_escape(v_locale), v_dir, billing.html_escape(v_name || ' — ' || v_currency))
        || '<style>body{font-family:sans-serif;margin:2em;color:#222}h1{font-size:1.5em}h2{font-size:1.15em;'
        || 'margin-top:1.6em}section.kpi{display:flex;gap:1em;flex-wrap:wrap}section.kpi div{border:1px solid #ccc;'
        || 'padding:.6em 1em;border-radius:4px}section.kpi b{display:block;font-size:1.3em}table{border-collapse:'
        || 'collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:end}th{background:#f4f4f4}'
        || 'svg .s1{fill:#3b6fb6}svg .s2{fill:#e39a2d}svg .axis{stroke:#888}svg .label{font-size:10px;'
        || 'text-anchor:middle;fill:#444}.legend .s1{color:#3b6fb6}.legend .s2{color:#e39a2d}</style></head><body>'
        || format('<h1>%s</h1><p>%s · %s</p>', billing.html_escape(v_name), billing.html_escape(v_currency),
                  billing.html_escape(billing.format_date(billing.today('UTC'), v_locale, 'long')));

    -- MRR and its movements, month by month (mrr_by_month of the entity)
    SELECT array_agg(to_char(m, 'YYYY-MM') ORDER BY m),
           array_agg(coalesce(r.mrr, v_zero) ORDER BY m),
           array_agg(ARRAY[to_char(m, 'YYYY-MM'),
                           billing.format_number(coalesce(r.mrr, v_zero), v_locale),
                           billing.format_number(coalesce(r.new, v_zero), v_locale),
                           billing.format_number(coalesce(r.expansion, v_zero), v_locale),
                           billing.format_number(coalesce(r.contraction, v_zero), v_locale),
                           billing.format_number(coalesce(r.churn, v_zero), v_locale),
                           billing.format_number(coalesce(r.reactivation, v_zero), v_locale),
                           billing.format_number(coalesce(r.customers, 0), v_locale)] ORDER BY m)
    INTO v_labels, v_a, v_rows
    FROM generate_series(v_first, v_last, interval '1 month') m
    LEFT JOIN billing._mrr_by_month(dashboard_html.entity_id) r ON r.month = m::date AND r.currency = v_currency;
    SELECT r.mrr, r.arr, r.customers INTO v_mrr
    FROM billing._mrr_by_month(dashboard_html.entity_id) r
    WHERE r.currency = v_currency AND r.month <= v_last ORDER BY r.month DESC LIMIT 1;
    SELECT d.receivable, d.invoiced, d.dso_days INTO v_dso
    FROM billing._days_sales_outstanding(90, dashboard_html.entity_id) d WHERE d.currency = v_currency;
    v_html := v_html || '<section class="kpi">'
        || format('<div>MRR<b>%s</b></div><div>ARR<b>%s</b></div><div>Customers<b>%s</b></div>',
                  billing.html_escape(billing.format_number(coalesce(v_mrr.mrr, v_zero), v_locale)),
                  billing.html_escape(billing.format_number(coalesce(v_mrr.arr, v_zero), v_locale)),
                  billing.html_escape(billing.format_number(coalesce(v_mrr.customers, 0), v_locale)))
        || format('<div>Receivable<b>%s</b></div><div>DSO (90 days)<b>%s</b></div></section>',
                  billing.html_escape(billing.format_number(coalesce(v_dso.receivable, v_zero), v_locale)),
                  billing.html_escape(coalesce(billing.format_number(v_dso.dso_days, v_locale), '–')))
        || '<h2>MRR by month</h2>' || billing._dashboard_bars(v_labels, v_a, NULL, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Month', 'MRR', 'New', 'Expansion', 'Contraction', 'Churn', 'Reactivation',
                                          'Customers'],
                                    v_rows);

    -- invoiced and collected by month (revenue_by_month of the entity)
    SELECT array_agg(coalesce(r.invoiced, v_zero) ORDER BY m), array_agg(coalesce(r.collected, v_zero) ORDER BY m),
           array_agg(ARRAY[to_char(m, 'YYYY-MM'),
                           billing.format_number(coalesce(r.invoiced, v_zero), v_locale),
                           billing.format_number(coalesce(r.collected, v_zero), v_locale),
                           billing.format_number(coalesce(r.refunded, v_zero), v_locale),
                           billing.format_number(coalesce(r.outstanding, v_zero), v_locale)] ORDER BY m)
    INTO v_a, v_b, v_rows
    FROM generate_series(v_first, v_last, interval '1 month') m
    LEFT JOIN billing._revenue_by_month(dashboard_html.entity_id) r ON r.month = m::date AND r.currency = v_currency;
    v_html := v_html || '<h2>Invoiced and collected</h2>'
        || '<p class="legend"><span class="s1">■ invoiced</span> <span class="s2">■ collected</span></p>'
        || billing._dashboard_bars(v_labels, v_a, v_b, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Month', 'Invoiced', 'Collected', 'Refunded', 'Outstanding'],
                                    v_rows);

    -- receivables aging (ar_aging of the entity's accounts)
    SELECT coalesce(sum(g.current), v_zero) AS current, coalesce(sum(g.days_1_30), v_zero) AS d30,
           coalesce(sum(g.days_31_60), v_zero) AS d60, coalesce(sum(g.days_61_90), v_zero) AS d90,
           coalesce(sum(g.days_over_90), v_zero) AS over90,
           array_agg(ARRAY[g.account_name, billing.format_number(g.total_due, v_locale), billing.format_number(g.open_invoices, v_locale),
                           g.oldest_due_date::text] ORDER BY g.total_due DESC, g.account_id) AS rows
    INTO v_aging
    FROM billing._ar_aging() g
    WHERE g.account_id = ANY (v_accounts) AND g.currency = v_currency;
    v_html := v_html || '<h2>Receivables aging</h2>'
        || billing._dashboard_bars(ARRAY['current', '1–30', '31–60', '61–90', '> 90'],
                                   ARRAY[v_aging.current, v_aging.d30, v_aging.d60, v_aging.d90, v_aging.over90],
                                   NULL, v_locale, v_dir)
        || billing._dashboard_table(ARRAY['Current', '1–30 days', '31–60 days', '61–90 days', 'Over 90 days'],
                                    ARRAY[ARRAY[billing.format_number(v_aging.current, v_locale),
                                                billing.format_number(v_aging.d30, v_locale),
                                                billing.format_number(v_aging.d60, v_locale),
                                                billing.format_number(v_aging.d90, v_locale),
                                                billing.format_number(v_aging.over90, v_locale)]])
        || billing._dashboard_table(ARRAY['Account', 'Due', 'Open invoices', 'Oldest due date'],
                                    v_aging.rows);

    -- the dunning funnel (dunning_funnel of the entity's invoices)
    SELECT array_agg(f.step ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(f.invoices ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(f.recovered ORDER BY f.policy_id, f.day_offset, f.step_id),
           array_agg(ARRAY[f.policy, f.step, f.action, f.day_offset::text, billing.format_number(f.invoices, v_locale),
                           billing.format_number(f.amount_due, v_locale), billing.format_number(f.recovered, v_locale),
                           billing.format_number(f.recovered_amount, v_locale), billing.format_number(f.still_open, v_locale),
                           billing.format_number(f.written_off, v_locale)] ORDER BY f.policy_id, f.day_offset, f.step_id)
    INTO v_labels, v_a, v_b, v_rows
    FROM billing._dunning_funnel(dashboard_html.entity_id) f
    WHERE f.currency = v_currency;
    v_html := v_html || '<h2>Dunning funnel</h2>'
        || CASE WHEN v_labels IS NULL THEN '<p>No invoice reached a dunning step.</p>'
                ELSE '<p class="legend"><span class="s1">■ invoices</span> <span class="s2">■ recovered</span></p>'
                     || billing._dashboard_bars(v_labels, v_a, v_b, v_locale, v_dir) END
        || billing._dashboard_table(ARRAY['Policy', 'Step', 'Action', 'Day', 'Invoices', 'Amount due', 'Recovered',
                                          'Recovered amount', 'Still open', 'Written off'],
                                    v_rows);
    RETURN v_html || '</body></html>';
END $$;
COMMENT ON FUNCTION billing.dashboard_html(bigint, text, integer, text) IS
    'the finance dashboard of one billing entity as one HTML page with inline SVG charts and no script: MRR and its '
    'movements and invoiced and collected over the last months months, receivables aging, days sales outstanding '
    '(90 days), the dunning funnel; in one currency (default the entity''s), numbers in locale (default the '
    'entity''s first account''s, else en-US), right to left for Hebrew and Arabic';
