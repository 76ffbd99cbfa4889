-- Exchange rates and the reports in a reporting currency.
--
-- Billing never converts money it bills: an invoice, a payment and the
-- ledger stay in the account's currency.  Only reports convert, and each
-- figure is converted once, rounded once:
--   * a rate is an exact numeric (positive, below 10^9, at most 12
--     decimals), one unit of from_currency in to_currency, set for a day
--     and in force until the day of the next rate of the pair; a pair has
--     one direction only (the inverse of a rate is not exact, so EUR->USD
--     does not give USD->EUR: set both);
--   * a conversion multiplies by the rate in force on the report's date and
--     rounds once to the target currency's minor units by billing.rounding
--     (billing.round_money); the sums of converted figures are exact;
--   * a report without the rate it needs raises no_data_found (P0002),
--     naming the pair and the date: a figure left out or shown NULL would
--     make a total silently wrong;
--   * the dates: revenue at the invoice's issue date (a credit note's
--     reversal at its invoice's, so it takes back what was converted), MRR
--     at the last day of its month, aging at each account's today (the
--     as_of of billing.ar_aging).
-- Rates are shared by every billing entity, like the catalog: setting one
-- needs a role bound to every entity.

CREATE TABLE billing.exchange_rate (
    from_currency billing.currency_code NOT NULL,
    to_currency   billing.currency_code NOT NULL,
    effective_on  date NOT NULL,
    -- NaN fails the upper bound; scale bounds the lowest rate at 10^-12
    rate          numeric NOT NULL CHECK (rate > 0 AND rate < 1000000000 AND scale(rate) <= 12),
    set_at        timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (from_currency, to_currency, effective_on),
    CHECK (from_currency <> to_currency)
);
COMMENT ON TABLE billing.exchange_rate IS
    'exchange rates for reports: one unit of from_currency is rate units of to_currency from effective_on until '
    'the next rate of the pair; written by billing.set_exchange_rate';
COMMENT ON COLUMN billing.exchange_rate.rate IS 'exact: positive, below 10^9, at most 12 decimals';
COMMENT ON COLUMN billing.exchange_rate.effective_on IS 'the first day the rate is in force';
SELECT pg_catalog.pg_extension_config_dump('billing.exchange_rate', '');

-- Raises 22023 unless code is a currency billing.amount knows.
CREATE FUNCTION billing._check_currency(code text, what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    IF code IS NULL OR NOT EXISTS (SELECT FROM billing.currency_list() c WHERE c.code = _check_currency.code) THEN
        RAISE EXCEPTION '% must be an ISO 4217 currency code, not %', what, coalesce(quote_literal(code), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'billing.currencies lists them (upper case).';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_currency(text, text) IS
    'internal: raises 22023 unless code is a currency of billing.currencies';

CREATE FUNCTION billing.set_exchange_rate(from_currency text, to_currency text, rate numeric, on_date date)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._authorize_all('set an exchange rate');
    PERFORM billing._check_currency(from_currency, 'from_currency');
    PERFORM billing._check_currency(to_currency, 'to_currency');
    IF from_currency = to_currency THEN
        RAISE EXCEPTION 'an exchange rate converts between two currencies, not % to itself', from_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A currency converts to itself at 1 without a rate.';
    END IF;
    IF rate IS NULL OR rate = 'NaN' OR rate <= 0 OR rate >= 1000000000 OR scale(rate) > 12 THEN
        RAISE EXCEPTION 'an exchange rate must be positive, below 1000000000 and have at most 12 decimals, not %',
            coalesce(rate::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The rate is one unit of from_currency in to_currency, as an exact number.';
    END IF;
    IF on_date IS NULL THEN
        RAISE EXCEPTION 'an exchange rate needs the date it is in force from'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM billing._check_date(on_date, 'on_date', billing.today('UTC'));
    INSERT INTO billing.exchange_rate AS x (from_currency, to_currency, effective_on, rate)
    VALUES (from_currency, to_currency, on_date, rate)
    ON CONFLICT ON CONSTRAINT exchange_rate_pkey
    DO UPDATE SET rate = excluded.rate, set_at = billing.now();
END $$;
COMMENT ON FUNCTION billing.set_exchange_rate(text, text, numeric, date) IS
    'sets the rate of one unit of from_currency in to_currency from on_date until the pair''s next rate (again for '
    'the same day: replaces it, and the reports that used it change); exact, positive, below 10^9, at most 12 '
    'decimals; needs a role bound to every entity';

-- The rate in force on a day: the pair's latest rate set for that day or
-- before (through the primary key); 1 for a currency to itself.
CREATE FUNCTION billing.exchange_rate_on(from_currency text, to_currency text, on_date date)
RETURNS numeric LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_rate numeric;
BEGIN
    IF from_currency IS NULL OR to_currency IS NULL OR on_date IS NULL THEN
        RAISE EXCEPTION 'exchange_rate_on needs two currencies and a date'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_currency = to_currency THEN
        RETURN 1;
    END IF;
    SELECT x.rate INTO v_rate FROM billing.exchange_rate x
    WHERE x.from_currency = exchange_rate_on.from_currency AND x.to_currency = exchange_rate_on.to_currency
      AND x.effective_on <= on_date
    ORDER BY x.effective_on DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no exchange rate from % to % on or before %', from_currency, to_currency, on_date
            USING ERRCODE = 'no_data_found',
                  HINT = 'Set one with billing.set_exchange_rate(from_currency, to_currency, rate, on_date).';
    END IF;
    RETURN v_rate;
END $$;
COMMENT ON FUNCTION billing.exchange_rate_on(text, text, date) IS
    'the rate of one unit of from_currency in to_currency in force on on_date (1 for a currency to itself); '
    'P0002 when the pair has no rate on or before that day';

-- The one conversion of the reports: value x rate, rounded once to the
-- target currency by billing.rounding, numeric without a bound (a report's
-- sum need not fit an amount).
CREATE FUNCTION billing._convert_at(value numeric, rate numeric, to_currency text)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing.round_money(value * rate, to_currency)
$$;
COMMENT ON FUNCTION billing._convert_at(numeric, numeric, text) IS
    'internal: the conversion rule of the reports: value x rate rounded once to to_currency by billing.rounding';

CREATE FUNCTION billing._convert(value numeric, from_currency text, to_currency text, on_date date)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog, pg_temp AS $$
    SELECT billing._convert_at(value, billing.exchange_rate_on(from_currency, to_currency, on_date), to_currency)
$$;
COMMENT ON FUNCTION billing._convert(numeric, text, text, date) IS
    'internal: value in from_currency converted at the rate in force on on_date, rounded once (billing._convert_at)';

CREATE FUNCTION billing.convert_amount(value billing.amount, to_currency text, on_date date)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(to_currency, 'to_currency');
    IF value IS NULL THEN
        RAISE EXCEPTION 'convert_amount needs an amount' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN billing.amount(billing._convert(billing.to_numeric(value), billing.currency(value), to_currency, on_date),
                          to_currency);
END $$;
COMMENT ON FUNCTION billing.convert_amount(billing.amount, text, date) IS
    'an amount in another currency at the rate in force on on_date, rounded once to its minor units by '
    'billing.rounding; P0002 without a rate, 22003 when the result is beyond an amount''s range';

-- Checks a reporting currency and a month; returns the month's first day.
CREATE FUNCTION billing._check_report_month(currency text, month date, what text) RETURNS date
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(currency, 'the reporting currency');
    IF month IS NULL THEN
        RAISE EXCEPTION '% must be a date, not NULL', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM billing._check_date(month, what, billing.today('UTC'));
    RETURN date_trunc('month', month::timestamp)::date;
END $$;
COMMENT ON FUNCTION billing._check_report_month(text, date, text) IS
    'internal: 22023 for an unknown currency or a NULL month, 22008 for a month outside billing''s dates; the '
    'month''s first day';

-- MRR in a reporting currency: each currency's MRR and movements at the
-- end of the month (billing.mrr_by_month) converted at the rate in force on
-- the month's last day.
CREATE FUNCTION billing.mrr_in(reporting_currency text, for_month date)
RETURNS TABLE (month date, currency text, rate_on date, mrr numeric, arr numeric, new numeric, expansion numeric,
               contraction numeric, churn numeric, reactivation numeric, customers numeric)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
DECLARE
    v_month date := billing._check_report_month(reporting_currency, for_month, 'for_month');
    v_on date := (v_month + interval '1 month' - interval '1 day')::date;
BEGIN
    RETURN QUERY
    SELECT v_month, reporting_currency, v_on,
           coalesce(sum(c.mrr), 0) + z.zero, 12 * coalesce(sum(c.mrr), 0) + z.zero,
           coalesce(sum(c.new), 0) + z.zero, coalesce(sum(c.expansion), 0) + z.zero,
           coalesce(sum(c.contraction), 0) + z.zero, coalesce(sum(c.churn), 0) + z.zero,
           coalesce(sum(c.reactivation), 0) + z.zero, coalesce(sum(m.customers), 0)
    FROM (SELECT billing.round_money(0, reporting_currency) AS zero) z
    LEFT JOIN billing._mrr_by_month() m ON m.month = v_month
    LEFT JOIN LATERAL (SELECT billing._convert(m.mrr, m.currency, reporting_currency, v_on) AS mrr,
                              billing._convert(m.new, m.currency, reporting_currency, v_on) AS new,
                              billing._convert(m.expansion, m.currency, reporting_currency, v_on) AS expansion,
                              billing._convert(m.contraction, m.currency, reporting_currency, v_on) AS contraction,
                              billing._convert(m.churn, m.currency, reporting_currency, v_on) AS churn,
                              billing._convert(m.reactivation, m.currency, reporting_currency, v_on) AS reactivation
                       WHERE m.currency IS NOT NULL) c ON true
    GROUP BY z.zero;
END $$;
COMMENT ON FUNCTION billing.mrr_in(text, date) IS
    'MRR, ARR and the MRR movements of a month (billing.mrr_by_month) in one reporting currency: each currency''s '
    'figure converted once at the rate in force on the month''s last day (rate_on) and rounded once, then added; '
    'arr = 12 x mrr; P0002 when a rate is missing';

-- Aging in a reporting currency: each account's row of billing.ar_aging,
-- each bucket converted at the rate in force on the row's as_of.
CREATE FUNCTION billing.aging_in(reporting_currency text)
RETURNS TABLE (account_id bigint, account_name text, account_currency text, currency text, as_of date,
               rate numeric, current numeric, days_1_30 numeric, days_31_60 numeric, days_61_90 numeric,
               days_over_90 numeric, total_due numeric, open_invoices bigint, oldest_due_date date)
LANGUAGE plpgsql STABLE SET jit = off SET search_path = billing, pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing._check_currency(reporting_currency, 'the reporting currency');
    RETURN QUERY
    SELECT a.account_id, a.account_name, a.currency, reporting_currency, a.as_of, r.rate,
           c.current, c.d30, c.d60, c.d90, c.over, c.current + c.d30 + c.d60 + c.d90 + c.over,
           a.open_invoices, a.oldest_due_date
    FROM billing._ar_aging() a
    CROSS JOIN LATERAL (SELECT billing.exchange_rate_on(a.currency, reporting_currency, a.as_of) AS rate) r
    CROSS JOIN LATERAL (SELECT billing._convert_at(a.current, r.rate, reporting_currency) AS current,
                               billing._convert_at(a.days_1_30, r.rate, reporting_currency) AS d30,
                               billing._convert_at(a.days_31_60, r.rate, reporting_currency) AS d60,
                               billing._convert_at(a.days_61_90, r.rate, reporting_currency) AS d90,
                               billing._convert_at(a.days_over_90, r.rate, reporting_currency) AS over) c
    ORDER BY a.account_id;
END $$;
COMMENT ON FUNCTION billing.aging_in(text) IS
    'receivables aging (billing.ar_aging) in one reporting currency: each bucket of each account converted once at '
    'the rate in force on the row''s as_of (the account''s today) and rounded once; total_due is the sum of the '
    'converted buckets; P0002 when a rate is missing';
