-- Billing periods, proration and the test clock.
-- Written in C (src/periods.c and src/clock.c over the pure core
-- src/core/calendar.c and src/core/proration.c).
--
-- None of these is STRICT on purpose: a NULL date, cadence or period is an
-- error (SQLSTATE 22004), not a NULL result, so that a missing anchor can
-- never quietly skip a bill.  C functions do not look names up, so no
-- search_path can change what they do.

CREATE FUNCTION billing.period_containing(anchor date, cadence interval, on_date date)
    RETURNS daterange
    AS 'MODULE_PATHNAME', 'period_containing' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.period_containing(date, interval, date) IS
    'the billing period [start, end) that contains on_date, for a cycle of cadence anchored at anchor; '
    'month and year cadences keep the anchor day, clamped to shorter months';

CREATE FUNCTION billing.periods_between(anchor date, cadence interval, during daterange)
    RETURNS SETOF daterange
    AS 'MODULE_PATHNAME', 'periods_between' LANGUAGE C IMMUTABLE PARALLEL SAFE
    ROWS 12;
COMMENT ON FUNCTION billing.periods_between(date, interval, daterange) IS
    'every billing period of the cycle that overlaps during, in order; none for an empty range';

CREATE FUNCTION billing.next_period(anchor date, cadence interval, period daterange)
    RETURNS daterange
    AS 'MODULE_PATHNAME', 'next_period' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.next_period(date, interval, daterange) IS
    'the billing period after period, which must itself be a period of the cycle';

-- The form without a mode is for ad-hoc arithmetic: it reads the session
-- setting billing.rounding, hence STABLE.  Billing's own functions call the
-- form with the entity's mode, so no session setting changes what is billed.
CREATE FUNCTION billing.prorate(price billing.amount, period daterange, part daterange,
                                convention text DEFAULT 'actual')
    RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'prorate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.prorate(billing.amount, daterange, daterange, text) IS
    'the share of price for part of period: R(price*(b-s)/(e-s)) - R(price*(a-s)/(e-s)) '
    'with R = the session setting billing.rounding, so the parts of any split sum exactly to price; '
    'convention ''actual'' (days) or ''30e/360''';
CREATE FUNCTION billing.prorate(price billing.amount, period daterange, part daterange,
                                convention text, mode text)
    RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'prorate' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.prorate(billing.amount, daterange, daterange, text, text) IS
    'billing.prorate with R rounding by the named mode (half_up, half_even, half_down, up, down, ceiling, floor): '
    'what billing''s own functions call, with the entity''s mode';

-- The test clock.  Everything that needs "now" reads billing.now().
CREATE FUNCTION billing.now()
    RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'billing_now' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.now() IS
    'the time billing treats as now: the setting billing.clock if set, else the transaction start time';

-- IMMUTABLE like timezone(text, timestamptz): the default billing.now() is
-- evaluated by the caller, which makes a call without as_of STABLE.
CREATE FUNCTION billing.today(timezone text, as_of timestamptz DEFAULT billing.now())
    RETURNS date
    AS 'MODULE_PATHNAME', 'billing_today' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.today(text, timestamptz) IS
    'the calendar date in timezone at as_of (by default billing.now())';
