--
-- Billing periods, cadences, proration and the test clock.
--
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';
SET IntervalStyle = 'postgres';
SET billing.rounding = 'half_up';

-- Shows an error's SQLSTATE and message instead of stopping, so that every
-- bad input is listed with the code it raises.
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE q INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

------------------------------------------------------------------------
-- period_containing: month ends are kept and clamped, never drifted
------------------------------------------------------------------------
SELECT d AS on_date, billing.period_containing('2024-01-31', '1 month', d)
FROM unnest('{2024-01-31,2024-02-28,2024-02-29,2024-03-30,2024-03-31,2024-04-30,2024-05-30,2024-05-31}'::date[]) d;

-- the same anchor in a non-leap year, and backwards before the anchor
SELECT d AS on_date, billing.period_containing('2023-01-31', '1 month', d)
FROM unnest('{2023-02-27,2023-02-28,2023-03-31,2022-12-31,2022-12-30,2019-06-15}'::date[]) d;

-- anchored on the 30th and the 29th
SELECT billing.period_containing('2024-01-30', '1 month', '2024-02-29') AS jan30,
       billing.period_containing('2024-01-29', '1 month', '2024-02-29') AS jan29,
       billing.period_containing('2023-01-29', '1 month', '2023-03-01') AS jan29_2023;

-- Feb 29 yearly: Feb 28 in other years, Feb 29 in leap years, 2100 is no leap year
SELECT d AS on_date, billing.period_containing('2024-02-29', '1 year', d)
FROM unnest('{2024-02-29,2025-02-27,2025-02-28,2027-12-31,2028-02-28,2028-02-29,2023-03-01,2100-06-01}'::date[]) d;

-- quarters, weeks, days and year boundaries
SELECT c AS cadence, billing.period_containing('2023-11-30', c::interval, '2024-01-01')
FROM unnest('{1 day,10 days,1 week,2 weeks,1 month,3 months,6 months,1 year,2 years}'::text[]) c;
SELECT billing.period_containing('2023-12-31', '1 month', '2023-12-31') AS dec31,
       billing.period_containing('2023-12-31', '1 month', '2024-01-30') AS jan30,
       billing.period_containing('2023-12-31', '1 month', '2024-12-31') AS next_dec31;

-- the ends of the date range
SELECT billing.period_containing('2000-01-01', '1 day', '4714-11-24 BC') AS first_day,
       billing.period_containing('2000-01-01', '1 day', '5874897-12-30') AS last_period;

------------------------------------------------------------------------
-- periods_between and next_period: catching up many periods at once
------------------------------------------------------------------------
SELECT * FROM billing.periods_between('2024-01-31', '1 month', '[2024-01-01,2025-01-01)');
SELECT * FROM billing.periods_between('2024-01-31', '1 month', '[2024-03-31,2024-04-01)');
SELECT count(*) AS none_for_empty FROM billing.periods_between('2024-01-31', '1 month', 'empty');
SELECT * FROM billing.periods_between('2024-02-29', '1 year', '[2027-06-01,2029-03-01)');
SELECT billing.next_period('2024-01-31', '1 month', '[2024-01-31,2024-02-29)') AS after_jan,
       billing.next_period('2024-01-31', '1 month', '[2024-02-29,2024-03-31)') AS after_feb,
       billing.next_period('2024-01-31', '1 month', '[2023-12-31,2024-01-31)') AS before_anchor,
       billing.next_period('2024-02-29', '1 year', '[2027-02-28,2028-02-29)') AS leap;

------------------------------------------------------------------------
-- prorate
------------------------------------------------------------------------
-- 100.00 over January (31 days): 15 days are 48.387 -> 48.39, the rest 51.61
SELECT billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-16)') AS first_15,
       billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-16,2024-02-01)') AS last_16,
       billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-02-01)') AS whole,
       billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', 'empty') AS empty_part;
-- three single days of 1.00 split 0.33 + 0.34 + 0.33: the telescoping rule
SELECT d::date AS day, billing.prorate('1.00 USD', '[2024-01-01,2024-01-04)', daterange(d::date, d::date + 1))
FROM generate_series(date '2024-01-01', '2024-01-03', '1 day') g(d);

-- credits (negative prices) mirror charges; zero stays zero
SELECT billing.prorate('-100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-16)') AS credit_15,
       billing.prorate('-100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-16,2024-02-01)') AS credit_16,
       billing.prorate('0.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-05,2024-01-09)') AS zero;

-- currencies of 0 and 3 minor digits keep theirs
SELECT billing.prorate('1000 JPY', '[2024-02-01,2024-03-01)', '[2024-02-01,2024-02-11)') AS jpy_10_of_29,
       billing.prorate('10.000 KWD', '[2023-02-01,2023-03-01)', '[2023-02-01,2023-02-11)') AS kwd_10_of_28;

-- the largest amounts (10^12 major units): exact, the parts sum to the price
SELECT billing.prorate(billing.from_minor_units(100000000000000, 'USD'),
                       '[2024-01-01,2024-02-01)', '[2024-01-31,2024-02-01)') AS max_one_day,
       billing.minor_units(billing.prorate(billing.from_minor_units(100000000000000, 'USD'),
                       '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-31)'))
     + billing.minor_units(billing.prorate(billing.from_minor_units(100000000000000, 'USD'),
                       '[2024-01-01,2024-02-01)', '[2024-01-31,2024-02-01)')) AS max_sum,
       billing.prorate(billing.from_minor_units(-100000000000000, 'USD'),
                       '[2000-01-01,5874897-12-31)', '[2000-01-01,2000-01-02)') AS min_widest_period;

-- the rounding comes from billing.rounding
SET billing.rounding = 'down';
SELECT billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-16)') AS down_first,
       billing.prorate('100.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-16,2024-02-01)') AS down_rest;
SET billing.rounding = 'half_even';
SELECT billing.prorate('1.00 USD', '[2024-01-01,2024-01-09)', '[2024-01-01,2024-01-04)') AS half_even_0375;
RESET billing.rounding;

-- 30e/360: every month counts 30 days, so half of February is half the price
SELECT billing.prorate('30.00 USD', '[2023-02-01,2023-03-01)', '[2023-02-01,2023-02-16)', '30e/360') AS feb_30e360,
       billing.prorate('30.00 USD', '[2023-02-01,2023-03-01)', '[2023-02-01,2023-02-16)') AS feb_actual,
       billing.prorate('30.00 USD', '[2024-03-01,2024-04-01)', '[2024-03-01,2024-03-11)', '30/360') AS mar_10_days,
       billing.prorate('360.00 USD', '[2024-01-01,2025-01-01)', '[2024-01-01,2024-02-01)', '30E/360') AS one_month_of_year;

------------------------------------------------------------------------
-- the test clock
------------------------------------------------------------------------
SELECT billing.now() = now() AS real_time_by_default;
SET billing.clock = '2024-03-10 06:59:59+00';
SELECT billing.now(), billing.today('UTC') AS utc, billing.today('America/New_York') AS new_york;
-- a zone-less clock is read in the session's TimeZone
SET TimeZone = 'America/New_York';
SET billing.clock = '2024-03-10 02:30:00';
SELECT billing.now() AT TIME ZONE 'UTC' AS utc_instant;
SET TimeZone = 'UTC';
SET IntervalStyle = 'postgres';
RESET billing.clock;
SELECT billing.now() = now() AS real_time_after_reset;

-- DST: the date in the zone at instants around each change; a date, so a
-- billing period boundary never moves with the clocks.
-- New York: 2024-03-10 02:00 EST -> 03:00 EDT, 2024-11-03 02:00 EDT -> 01:00 EST
-- Berlin:   2024-03-31 02:00 CET -> 03:00 CEST, 2024-10-27 03:00 CEST -> 02:00 CET
SELECT t AS instant_utc,
       billing.today('America/New_York', t) AS new_york,
       billing.today('Europe/Berlin', t) AS berlin,
       billing.period_containing('2024-01-10', '1 month', billing.today('America/New_York', t)) AS ny_period
FROM unnest('{2024-03-10 04:59:59+00,2024-03-10 05:00:00+00,2024-03-10 07:30:00+00,
              2024-03-11 03:59:59+00,2024-03-11 04:00:00+00,
              2024-03-30 22:59:59+00,2024-03-30 23:00:00+00,2024-03-31 21:59:59+00,2024-03-31 22:00:00+00,
              2024-10-26 21:59:59+00,2024-10-26 22:00:00+00,2024-10-27 22:59:59+00,2024-10-27 23:00:00+00,
              2024-11-03 03:59:59+00,2024-11-03 04:00:00+00,2024-11-04 04:59:59+00,2024-11-04 05:00:00+00}'::timestamptz[]) t;

-- the same through the clock setting
SET billing.clock = '2024-11-03 04:30:00+00';
SELECT billing.today('America/New_York') AS ny_fall_back, billing.today('Europe/Berlin') AS berlin;
SET billing.clock = '2024-11-04 04:59:59+00';
SELECT billing.today('America/New_York') AS ny_last_second_of_nov3;
SET billing.clock = '2024-03-31 01:30:00+00';
SELECT billing.today('Europe/Berlin') AS berlin_spring_forward, billing.today('Pacific/Kiritimati') AS kiritimati;
RESET billing.clock;

------------------------------------------------------------------------
-- every bad input, with its SQLSTATE
------------------------------------------------------------------------
SELECT q, pg_temp.try(q) AS result FROM (VALUES
    -- cadences: mixed, zero, negative, sub-day, NULL
    ($$SELECT billing.period_containing('2024-01-31', '1 month 3 days', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '1 day 2 hours', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '0 days', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '-1 month', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '-7 days', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '12 hours', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '24 hours', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', NULL, '2024-03-01')$$),
    -- dates: NULL, infinite, results out of range
    ($$SELECT billing.period_containing(NULL, '1 month', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '1 month', NULL)$$),
    ($$SELECT billing.period_containing('infinity', '1 month', '2024-03-01')$$),
    ($$SELECT billing.period_containing('2024-01-31', '1 month', '-infinity')$$),
    ($$SELECT billing.period_containing('2024-01-31', '1 month', '5874897-12-31')$$),
    ($$SELECT billing.period_containing('2024-01-30', '1 month', '4714-11-24 BC')$$),
    ($$SELECT billing.period_containing('2024-01-31', '2147483647 days', '2024-03-01')$$),
    -- periods: not a period, empty, unbounded, infinite bounds, NULL
    ($$SELECT billing.next_period('2024-01-31', '1 month', '[2024-01-31,2024-03-01)')$$),
    ($$SELECT billing.next_period('2024-01-31', '1 month', 'empty')$$),
    ($$SELECT billing.next_period('2024-01-31', '1 month', '[2024-01-31,)')$$),
    ($$SELECT billing.next_period('2024-01-31', '1 month', NULL)$$),
    ($$SELECT billing.next_period('2024-01-31', '1 day', '[5874897-12-30,5874897-12-31)')$$),
    ($$SELECT count(*) FROM billing.periods_between('2024-01-31', '1 month', '(,2024-03-01)')$$),
    ($$SELECT count(*) FROM billing.periods_between('2024-01-31', '1 month', '[-infinity,2024-03-01)')$$),
    ($$SELECT count(*) FROM billing.periods_between('2024-01-31', '0 mons', '[2024-01-01,2024-03-01)')$$),
    ($$SELECT count(*) FROM billing.periods_between('2024-01-31', '1 month', NULL)$$),
    -- prorate: part outside, empty or unbounded period, NULLs, unknown convention
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2023-12-31,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-25,2024-02-02)')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-03-01,2024-03-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', 'empty', '[2024-01-01,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', 'empty', 'empty')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,)', '[2024-01-01,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,infinity)', '[2024-01-01,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,)')$$),
    ($$SELECT billing.prorate(NULL, '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', NULL, '[2024-01-01,2024-01-05)')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', NULL)$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-05)', NULL)$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-01,2024-01-05)', 'act/365')$$),
    ($$SELECT billing.prorate('10.00 USD', '[2024-01-30,2024-01-31)', '[2024-01-30,2024-01-31)', '30e/360')$$),
    -- the clock and today
    ($$SELECT set_config('billing.clock', 'garbage', true)$$),
    ($$SELECT set_config('billing.clock', 'now', true)$$),
    ($$SELECT set_config('billing.clock', 'tomorrow', true)$$),
    ($$SELECT set_config('billing.clock', 'infinity', true)$$),
    ($$SELECT set_config('billing.clock', '2024-02-30 10:00+00', true)$$),
    ($$SELECT billing.today('Mars/Olympus')$$),
    ($$SELECT billing.today(NULL)$$),
    ($$SELECT billing.today('UTC', NULL)$$),
    ($$SELECT billing.today('UTC', 'infinity')$$)
) v(q);

-- and the full error report (message, detail, hint) for a few of them
SELECT billing.period_containing('2024-01-31', '1 month 3 days', '2024-03-01');
SELECT billing.prorate('10.00 USD', '[2024-01-01,2024-02-01)', '[2024-01-25,2024-02-02)');
SELECT billing.next_period('2024-01-31', '1 month', '[2024-01-31,2024-03-01)');
SELECT billing.today('Mars/Olympus');
SET billing.clock = 'soon';

------------------------------------------------------------------------
-- properties over thousands of random cases (each query counts
-- violations, which must be 0)
------------------------------------------------------------------------
SELECT setseed(0.5);
-- anchors anywhere 1900-2100, a third of them on a month's last day and
-- some on Feb 29; dates up to ~8 years either side of the anchor
CREATE TEMP TABLE cases AS
SELECT i, anchor, cadence,
       anchor + (floor(random() * 6000) - 3000)::int AS on_date
FROM (
    SELECT i,
           CASE floor(random() * 6)::int
               WHEN 0 THEN (date_trunc('month', date '1900-01-01' + floor(random() * 73000)::int)
                            + interval '1 month - 1 day')::date
               WHEN 1 THEN make_date(1904 + 4 * floor(random() * 49)::int, 2, 29)
               ELSE date '1900-01-01' + floor(random() * 73000)::int
           END AS anchor,
           ('{1 day,2 days,7 days,14 days,30 days,1 month,2 months,3 months,6 months,1 year,2 years}'::interval[])
               [1 + floor(random() * 11)::int] AS cadence
    FROM generate_series(1, 20000) i
) s;

-- the period contains the date, and equals an independent oracle: PostgreSQL's
-- own date + interval, which also adds months from the anchor and clamps
CREATE TEMP TABLE checked AS
SELECT c.*, billing.period_containing(anchor, cadence, on_date) AS p,
       CASE WHEN date_part('month', cadence) + date_part('year', cadence) * 12 > 0 THEN
           (date_part('year', cadence) * 12 + date_part('month', cadence))::int
       END AS n_months
FROM cases c;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE NOT p @> on_date) AS not_containing,
       count(*) FILTER (WHERE lower(p) <> oracle_start OR upper(p) <> oracle_end) AS not_oracle
FROM (
    SELECT *,
           CASE WHEN n_months IS NULL THEN anchor + k * date_part('day', cadence)::int
                ELSE (anchor + make_interval(months => k * n_months))::date END AS oracle_start,
           CASE WHEN n_months IS NULL THEN anchor + (k + 1) * date_part('day', cadence)::int
                ELSE (anchor + make_interval(months => (k + 1) * n_months))::date END AS oracle_end
    FROM (
        SELECT *,
               CASE WHEN n_months IS NULL THEN floor((on_date - anchor) / date_part('day', cadence))::int
                    -- the period starting in on_date's month may start after on_date
                    WHEN (anchor + make_interval(months => km * n_months))::date > on_date THEN km - 1
                    ELSE km END AS k
        FROM (
            SELECT *, floor(((date_part('year', on_date) - date_part('year', anchor)) * 12
                             + date_part('month', on_date) - date_part('month', anchor)) / n_months)::int AS km
            FROM checked
        ) a
    ) b
) o;

-- consecutive periods tile: no gap, no overlap, in both directions
SELECT count(*) FILTER (WHERE lower(nx) <> upper(p) OR isempty(nx)) AS next_gaps,
       count(*) FILTER (WHERE billing.period_containing(anchor, cadence, upper(p)) <> nx) AS next_mismatch,
       count(*) FILTER (WHERE upper(billing.period_containing(anchor, cadence, lower(p) - 1)) <> lower(p)) AS prev_gaps,
       count(*) FILTER (WHERE billing.period_containing(anchor, cadence, upper(p) - 1) <> p) AS last_day_mismatch
FROM (SELECT *, billing.next_period(anchor, cadence, p) AS nx FROM checked) t;

-- periods_between: consecutive, first and last overlap the range, none missing
SELECT count(*) FILTER (WHERE NOT ok) AS bad_ranges
FROM (
    SELECT c.i,
           bool_and(prev IS NULL OR lower(pb) = upper(prev))
           AND bool_and(pb && r)
           AND min(lower(pb)) <= lower(r) AND max(upper(pb)) >= upper(r) AS ok
    FROM (SELECT *, daterange(least(on_date, anchor), greatest(on_date, anchor) + 1) AS r
          FROM cases WHERE i <= 3000) c,
         LATERAL (SELECT pb, lag(pb) OVER (ORDER BY lower(pb)) AS prev
                  FROM billing.periods_between(c.anchor, c.cadence, c.r) pb) x
    GROUP BY c.i, c.r
) y;

-- random splits of a period prorate exactly to the price, each part has the
-- price's sign and is no larger: for prices of three currencies including
-- the extremes, for several rounding modes and both conventions
CREATE TEMP TABLE priced AS
SELECT i, p,
       billing.from_minor_units(CASE floor(random() * 4)::int
                                    WHEN 0 THEN floor(random() * 200001)::bigint - 100000
                                    WHEN 1 THEN floor(random() * 1e12)::bigint
                                    WHEN 2 THEN -floor(random() * 1e12)::bigint
                                    -- the largest JPY amount, within the bound of all three
                                    ELSE 1000000000000 * (CASE WHEN random() < 0.5 THEN 1 ELSE -1 END)
                                END,
                                (ARRAY['USD', 'JPY', 'KWD'])[1 + floor(random() * 3)::int]) AS price,
       floor(random() * 12)::int AS ncut
FROM checked WHERE i <= 5000;
CREATE TEMP TABLE parts AS
SELECT i, p, price, daterange(c, lead(c) OVER (PARTITION BY i ORDER BY c)) AS part
FROM (
    SELECT i, p, price, lower(p) + floor(random() * (upper(p) - lower(p)))::int AS c
    FROM priced, generate_series(1, ncut)
    UNION SELECT i, p, price, lower(p) FROM priced
    UNION SELECT i, p, price, upper(p) FROM priced
) cuts;
DELETE FROM parts WHERE upper_inf(part);
SELECT count(DISTINCT i) AS split_periods, count(*) > 20000 AS many_parts FROM parts;
CREATE FUNCTION pg_temp.split_violations(convention text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT i, price,
               sum(billing.minor_units(share)) AS total,
               bool_and(CASE WHEN billing.minor_units(price) >= 0
                             THEN billing.minor_units(share) BETWEEN 0 AND billing.minor_units(price)
                             ELSE billing.minor_units(share) BETWEEN billing.minor_units(price) AND 0 END
                        AND billing.currency(share) = billing.currency(price)
                        AND billing.scale(share) = billing.scale(price)) AS parts_ok
        FROM (SELECT i, price, billing.prorate(price, p, part, convention) AS share FROM parts) s
        GROUP BY i, price
    ) t
    WHERE total <> billing.minor_units(price) OR NOT parts_ok
$$;
SET billing.rounding = 'half_up';
SELECT pg_temp.split_violations('actual') AS half_up_actual;
SET billing.rounding = 'half_even';
SELECT pg_temp.split_violations('actual') AS half_even_actual;
SET billing.rounding = 'ceiling';
SELECT pg_temp.split_violations('actual') AS ceiling_actual;
SET billing.rounding = 'floor';
SELECT pg_temp.split_violations('actual') AS floor_actual;
SET billing.rounding = 'half_even';
-- 30e/360 counts no days for a period that only covers a 30th before a 31st
DELETE FROM parts WHERE i IN (SELECT i FROM priced WHERE upper(p) - lower(p) = 1 AND date_part('day', lower(p)) >= 30);
SELECT pg_temp.split_violations('30e/360') AS half_even_30e360;
RESET billing.rounding;

------------------------------------------------------------------------
-- a year of monthly billing, simulated by moving billing.clock one day at a
-- time: a New York account anchored on Jan 31, 29.99 USD a month, billed on
-- the first day of each period in its own time zone, cancelled on 2025-01-10
-- with a prorated credit for the rest of that period
------------------------------------------------------------------------
CREATE TEMP TABLE invoice_lines (
    period daterange PRIMARY KEY,
    amount billing.amount NOT NULL,
    billed_on date NOT NULL,
    kind text NOT NULL
);
DO $$
DECLARE
    today date;
    p daterange;
BEGIN
    FOR day_no IN 0..400 LOOP
        -- 03:30 UTC is still the previous day in New York
        PERFORM set_config('billing.clock',
            to_char(timestamp '2024-01-31 03:30' + make_interval(days => day_no), 'YYYY-MM-DD HH24:MI') || '+00',
            true);
        today := billing.today('America/New_York');
        CONTINUE WHEN today < date '2024-01-31';
        EXIT WHEN today >= date '2025-01-10';
        -- every period from the anchor up to today, so that a missed run
        -- catches up; ON CONFLICT makes a re-run bill nothing twice
        FOR p IN SELECT pb FROM billing.periods_between('2024-01-31', '1 month',
                                                        daterange('2024-01-31', today + 1)) pb
                 WHERE lower(pb) <= today
        LOOP
            INSERT INTO invoice_lines VALUES (p, '29.99 USD', today, 'subscription')
            ON CONFLICT DO NOTHING;
        END LOOP;
    END LOOP;
    p := billing.period_containing('2024-01-31', '1 month', today);
    INSERT INTO invoice_lines VALUES (daterange(today, upper(p)),
        billing.amount_um(billing.prorate('29.99 USD', p, daterange(today, upper(p)))), today, 'credit');
END $$;
SELECT * FROM invoice_lines ORDER BY lower(period), kind;
SELECT count(*) FILTER (WHERE kind = 'subscription') AS invoices,
       count(*) FILTER (WHERE kind = 'subscription' AND lower(period) <> billed_on) AS billed_late,
       billing.sum(amount) AS billed_total
FROM invoice_lines;
-- the subscription periods tile from the anchor without a gap
SELECT count(*) AS gaps FROM (
    SELECT period, lag(period) OVER (ORDER BY lower(period)) AS prev
    FROM invoice_lines WHERE kind = 'subscription'
) t WHERE prev IS NOT NULL AND lower(period) <> upper(prev);
SHOW billing.clock;
