-- billing 0.1.0, as released: sql/install/*.sql of commit 5b97967 concatenated by the Makefile
-- of that commit.  Frozen: never edit (CREATE EXTENSION billing VERSION '0.1.0' installs it,
-- and the upgrade test starts from it).
\echo Use "CREATE EXTENSION billing" to load this file. \quit

-- sql/install/00_schema.sql
-- The schema itself is created by CREATE EXTENSION (billing.control names
-- it).  Nothing in it is granted to PUBLIC: billing.grant_roles() (issue 10)
-- hands out the documented roles.
COMMENT ON SCHEMA billing IS 'billing: recurring billing inside PostgreSQL';
REVOKE ALL ON SCHEMA billing FROM PUBLIC;

-- sql/install/10_amount.sql
-- billing.amount: a count of minor units with its ISO 4217 currency.
-- Written in C (src/amount.c over the pure core src/core/amount.c).

CREATE TYPE billing.amount;

CREATE FUNCTION billing.amount_in(cstring) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_out(billing.amount) RETURNS cstring
    AS 'MODULE_PATHNAME', 'amount_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_recv(internal) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_send(billing.amount) RETURNS bytea
    AS 'MODULE_PATHNAME', 'amount_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE billing.amount (
    INPUT = billing.amount_in,
    OUTPUT = billing.amount_out,
    RECEIVE = billing.amount_recv,
    SEND = billing.amount_send,
    INTERNALLENGTH = 16,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON FUNCTION billing.amount_in(cstring) IS 'text input: ''12.34 USD'', ''USD 12.34'', signs, lower-case codes';
COMMENT ON FUNCTION billing.amount_out(billing.amount) IS 'text output: the number with the currency''s digits, then the code';
COMMENT ON FUNCTION billing.amount_recv(internal) IS 'binary input: int64 minor units, three code letters, one scale byte (validated)';
COMMENT ON FUNCTION billing.amount_send(billing.amount) IS 'binary output: int64 minor units, three code letters, one scale byte';
COMMENT ON TYPE billing.amount IS
    'Money: exact minor units with their ISO 4217 currency, such as ''12.34 USD''';

-- Comparison.  = and <> compare values and are false/true across
-- currencies.  < <= > >= are money comparisons and raise an error across
-- currencies; they have no selectivity estimators because those would run
-- them against the column statistics, which may hold several currencies.
-- The btree operator class orders by currency code, then value, through the
-- total-order operators ~<~ ~<=~ ~>=~ ~>~, which never fail: use them for
-- index range scans (two bounds in one currency select only that currency).
-- The money comparisons are declared costlier than a currency test, so the
-- planner evaluates "billing.currency(a) = 'USD'" before them in a filter.
CREATE FUNCTION billing.amount_eq(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_eq_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_ne(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_ne_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_lt(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION billing.amount_le(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION billing.amount_gt(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION billing.amount_ge(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10;
CREATE FUNCTION billing.amount_order_lt(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_order_le(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_order_gt(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_order_ge(billing.amount, billing.amount) RETURNS boolean
    AS 'MODULE_PATHNAME', 'amount_order_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_cmp(billing.amount, billing.amount) RETURNS integer
    AS 'MODULE_PATHNAME', 'amount_cmp_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_sortsupport(internal) RETURNS void
    AS 'MODULE_PATHNAME', 'amount_sortsupport' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_hash(billing.amount) RETURNS integer
    AS 'MODULE_PATHNAME', 'amount_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION billing.amount_hash_extended(billing.amount, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'amount_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

COMMENT ON FUNCTION billing.amount_eq(billing.amount, billing.amount) IS 'equal by value; false across currencies';
COMMENT ON FUNCTION billing.amount_ne(billing.amount, billing.amount) IS 'not equal by value; true across currencies';
COMMENT ON FUNCTION billing.amount_lt(billing.amount, billing.amount) IS 'less than; error across currencies';
COMMENT ON FUNCTION billing.amount_le(billing.amount, billing.amount) IS 'less than or equal; error across currencies';
COMMENT ON FUNCTION billing.amount_gt(billing.amount, billing.amount) IS 'greater than; error across currencies';
COMMENT ON FUNCTION billing.amount_ge(billing.amount, billing.amount) IS 'greater than or equal; error across currencies';
COMMENT ON FUNCTION billing.amount_order_lt(billing.amount, billing.amount) IS 'sort order (currency code, then value): before';
COMMENT ON FUNCTION billing.amount_order_le(billing.amount, billing.amount) IS 'sort order (currency code, then value): before or equal';
COMMENT ON FUNCTION billing.amount_order_gt(billing.amount, billing.amount) IS 'sort order (currency code, then value): after';
COMMENT ON FUNCTION billing.amount_order_ge(billing.amount, billing.amount) IS 'sort order (currency code, then value): after or equal';
COMMENT ON FUNCTION billing.amount_cmp(billing.amount, billing.amount) IS 'btree order: currency code, then value';
COMMENT ON FUNCTION billing.amount_sortsupport(internal) IS 'btree sort support';
COMMENT ON FUNCTION billing.amount_hash(billing.amount) IS 'hash of the value, equal for equal values of any scale';
COMMENT ON FUNCTION billing.amount_hash_extended(billing.amount, bigint) IS 'seeded 64-bit hash';

CREATE OPERATOR billing.= (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_eq,
    COMMUTATOR = OPERATOR(billing.=), NEGATOR = OPERATOR(billing.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR billing.<> (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_ne,
    COMMUTATOR = OPERATOR(billing.<>), NEGATOR = OPERATOR(billing.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR billing.< (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_lt,
    COMMUTATOR = OPERATOR(billing.>), NEGATOR = OPERATOR(billing.>=));
CREATE OPERATOR billing.<= (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_le,
    COMMUTATOR = OPERATOR(billing.>=), NEGATOR = OPERATOR(billing.>));
CREATE OPERATOR billing.> (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_gt,
    COMMUTATOR = OPERATOR(billing.<), NEGATOR = OPERATOR(billing.<=));
CREATE OPERATOR billing.>= (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_ge,
    COMMUTATOR = OPERATOR(billing.<=), NEGATOR = OPERATOR(billing.<));
CREATE OPERATOR billing.~<~ (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_order_lt,
    COMMUTATOR = OPERATOR(billing.~>~), NEGATOR = OPERATOR(billing.~>=~),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR billing.~<=~ (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_order_le,
    COMMUTATOR = OPERATOR(billing.~>=~), NEGATOR = OPERATOR(billing.~>~),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR billing.~>~ (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_order_gt,
    COMMUTATOR = OPERATOR(billing.~<~), NEGATOR = OPERATOR(billing.~<=~),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR billing.~>=~ (
    LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_order_ge,
    COMMUTATOR = OPERATOR(billing.~<=~), NEGATOR = OPERATOR(billing.~<~),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS billing.amount_ops
    DEFAULT FOR TYPE billing.amount USING btree AS
        OPERATOR 1 billing.~<~,
        OPERATOR 2 billing.~<=~,
        OPERATOR 3 billing.=,
        OPERATOR 4 billing.~>=~,
        OPERATOR 5 billing.~>~,
        FUNCTION 1 billing.amount_cmp(billing.amount, billing.amount),
        FUNCTION 2 billing.amount_sortsupport(internal);

CREATE OPERATOR CLASS billing.amount_hash_ops
    DEFAULT FOR TYPE billing.amount USING hash AS
        OPERATOR 1 billing.=,
        FUNCTION 1 billing.amount_hash(billing.amount),
        FUNCTION 2 billing.amount_hash_extended(billing.amount, bigint);

-- Arithmetic.
CREATE FUNCTION billing.amount_pl(billing.amount, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_pl' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mi(billing.amount, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_mi' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_um(billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_um' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mul(billing.amount, bigint) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_mul_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mul(bigint, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'int8_mul_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mul(billing.amount, integer) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_mul_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mul(integer, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'int4_mul_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- The numeric and division forms read billing.rounding, hence STABLE.
CREATE FUNCTION billing.amount_mul(billing.amount, numeric) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_mul_numeric' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_mul(numeric, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'numeric_mul_amount' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_div(billing.amount, bigint) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_div_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_div(billing.amount, integer) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_div_int4' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_div(billing.amount, numeric) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_div_numeric' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_div(billing.amount, billing.amount) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_div_amount' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.amount_pl(billing.amount, billing.amount) IS 'sum of two amounts of one currency';
COMMENT ON FUNCTION billing.amount_mi(billing.amount, billing.amount) IS 'difference of two amounts of one currency';
COMMENT ON FUNCTION billing.amount_um(billing.amount) IS 'negation';
COMMENT ON FUNCTION billing.amount_mul(billing.amount, bigint) IS 'exact product by an integer';
COMMENT ON FUNCTION billing.amount_mul(bigint, billing.amount) IS 'exact product by an integer';
COMMENT ON FUNCTION billing.amount_mul(billing.amount, integer) IS 'exact product by an integer';
COMMENT ON FUNCTION billing.amount_mul(integer, billing.amount) IS 'exact product by an integer';
COMMENT ON FUNCTION billing.amount_mul(billing.amount, numeric) IS 'product by a numeric, rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_mul(numeric, billing.amount) IS 'product by a numeric, rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_div(billing.amount, bigint) IS 'quotient by an integer, rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_div(billing.amount, integer) IS 'quotient by an integer, rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_div(billing.amount, numeric) IS 'quotient by a numeric, rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_div(billing.amount, billing.amount) IS 'ratio of two amounts of one currency';

CREATE OPERATOR billing.+ (LEFTARG = billing.amount, RIGHTARG = billing.amount,
    FUNCTION = billing.amount_pl, COMMUTATOR = OPERATOR(billing.+));
CREATE OPERATOR billing.- (LEFTARG = billing.amount, RIGHTARG = billing.amount,
    FUNCTION = billing.amount_mi);
CREATE OPERATOR billing.- (RIGHTARG = billing.amount, FUNCTION = billing.amount_um);
CREATE OPERATOR billing.* (LEFTARG = billing.amount, RIGHTARG = bigint,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing.* (LEFTARG = bigint, RIGHTARG = billing.amount,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing.* (LEFTARG = billing.amount, RIGHTARG = integer,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing.* (LEFTARG = integer, RIGHTARG = billing.amount,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing.* (LEFTARG = billing.amount, RIGHTARG = numeric,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing.* (LEFTARG = numeric, RIGHTARG = billing.amount,
    FUNCTION = billing.amount_mul, COMMUTATOR = OPERATOR(billing.*));
CREATE OPERATOR billing./ (LEFTARG = billing.amount, RIGHTARG = bigint, FUNCTION = billing.amount_div);
CREATE OPERATOR billing./ (LEFTARG = billing.amount, RIGHTARG = integer, FUNCTION = billing.amount_div);
CREATE OPERATOR billing./ (LEFTARG = billing.amount, RIGHTARG = numeric, FUNCTION = billing.amount_div);
CREATE OPERATOR billing./ (LEFTARG = billing.amount, RIGHTARG = billing.amount, FUNCTION = billing.amount_div);

-- Aggregates over a 128-bit accumulator; parallel with combine functions.
CREATE FUNCTION billing.amount_sum_accum(internal, billing.amount) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION billing.amount_sum_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_combine_fn' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION billing.amount_sum_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'amount_sum_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_sum_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'amount_sum_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_sum_final(internal) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_sum_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION billing.amount_avg_final(internal) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_avg_final' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION billing.amount_smaller(billing.amount, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_smaller' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION billing.amount_larger(billing.amount, billing.amount) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_larger' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION billing.amount_sum_accum(internal, billing.amount) IS 'sum/avg transition';
COMMENT ON FUNCTION billing.amount_sum_combine(internal, internal) IS 'sum/avg combine (parallel)';
COMMENT ON FUNCTION billing.amount_sum_serialize(internal) IS 'sum/avg state serialization';
COMMENT ON FUNCTION billing.amount_sum_deserialize(bytea, internal) IS 'sum/avg state deserialization';
COMMENT ON FUNCTION billing.amount_sum_final(internal) IS 'sum final: range-checked amount';
COMMENT ON FUNCTION billing.amount_avg_final(internal) IS 'avg final: rounded once by billing.rounding';
COMMENT ON FUNCTION billing.amount_smaller(billing.amount, billing.amount) IS 'the smaller of two amounts of one currency';
COMMENT ON FUNCTION billing.amount_larger(billing.amount, billing.amount) IS 'the larger of two amounts of one currency';

CREATE AGGREGATE billing.sum(billing.amount) (
    SFUNC = billing.amount_sum_accum, STYPE = internal, SSPACE = 48,
    FINALFUNC = billing.amount_sum_final,
    COMBINEFUNC = billing.amount_sum_combine,
    SERIALFUNC = billing.amount_sum_serialize,
    DESERIALFUNC = billing.amount_sum_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE billing.avg(billing.amount) (
    SFUNC = billing.amount_sum_accum, STYPE = internal, SSPACE = 48,
    FINALFUNC = billing.amount_avg_final,
    COMBINEFUNC = billing.amount_sum_combine,
    SERIALFUNC = billing.amount_sum_serialize,
    DESERIALFUNC = billing.amount_sum_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE billing.min(billing.amount) (
    SFUNC = billing.amount_smaller, STYPE = billing.amount,
    COMBINEFUNC = billing.amount_smaller, PARALLEL = SAFE);
CREATE AGGREGATE billing.max(billing.amount) (
    SFUNC = billing.amount_larger, STYPE = billing.amount,
    COMBINEFUNC = billing.amount_larger, PARALLEL = SAFE);
COMMENT ON AGGREGATE billing.sum(billing.amount) IS 'exact sum; error on mixed currencies or a result out of range';
COMMENT ON AGGREGATE billing.avg(billing.amount) IS 'mean, rounded once to minor units by billing.rounding';
COMMENT ON AGGREGATE billing.min(billing.amount) IS 'smallest amount; error on mixed currencies';
COMMENT ON AGGREGATE billing.max(billing.amount) IS 'largest amount; error on mixed currencies';

-- Constructors, accessors, casts.
CREATE FUNCTION billing.amount(value numeric, currency text) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_from_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.amount(numeric, text) IS
    'exact constructor: error if value has more decimals than the currency (never rounds)';
CREATE FUNCTION billing.round_amount(value numeric, currency text, mode text) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_round_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_amount(numeric, text, text) IS
    'rounds value to the currency''s minor unit by the named mode (half_up, half_even, half_down, up, down, ceiling, floor)';
CREATE FUNCTION billing.round_amount(value numeric, currency text) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_round_numeric' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_amount(numeric, text) IS
    'rounds value to the currency''s minor unit by the mode in billing.rounding';
CREATE FUNCTION billing.from_minor_units(units bigint, currency text) RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'amount_from_minor_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.from_minor_units(bigint, text) IS
    'amount of that many minor units (cents) of the currency';
CREATE FUNCTION billing.minor_units(billing.amount) RETURNS bigint
    AS 'MODULE_PATHNAME', 'amount_minor_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.minor_units(billing.amount) IS
    'the value in minor units (cents) at the amount''s own scale';
CREATE FUNCTION billing.currency(billing.amount) RETURNS text
    AS 'MODULE_PATHNAME', 'amount_currency' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.currency(billing.amount) IS 'the ISO 4217 currency code';
CREATE FUNCTION billing.scale(billing.amount) RETURNS integer
    AS 'MODULE_PATHNAME', 'amount_scale' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.scale(billing.amount) IS
    'the number of minor-unit digits the amount was made with';
CREATE FUNCTION billing.to_numeric(billing.amount) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_to_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.to_numeric(billing.amount) IS 'the exact value as numeric, without the currency';
CREATE CAST (billing.amount AS numeric) WITH FUNCTION billing.to_numeric(billing.amount);

-- Allocation: parts that always sum exactly to the whole.
CREATE FUNCTION billing.allocate(total billing.amount, ratios numeric[]) RETURNS billing.amount[]
    AS 'MODULE_PATHNAME', 'amount_allocate_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.allocate(billing.amount, numeric[]) IS
    'splits total in proportion to ratios by largest remainder (ties to the earlier part); parts sum exactly to total';
CREATE FUNCTION billing.split(total billing.amount, parts integer) RETURNS billing.amount[]
    AS 'MODULE_PATHNAME', 'amount_split_fn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.split(billing.amount, integer) IS
    'splits total into n equal parts, the extra minor units to the first parts; parts sum exactly to total';

-- Locale formatting with ICU.  STABLE: ICU's locale data can change with
-- a library upgrade, so results must not be frozen into indexes.
CREATE FUNCTION billing.format_amount(value billing.amount, locale text) RETURNS text
    AS 'MODULE_PATHNAME', 'amount_format_locale' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.format_amount(billing.amount, text) IS
    'the amount formatted for a locale (BCP 47 tag such as de-DE or he-IL) by ICU';

CREATE FUNCTION billing.currency_list(OUT code text, OUT minor_digits integer, OUT current boolean)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'currency_list' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 310;
COMMENT ON FUNCTION billing.currency_list() IS 'the ISO 4217 currencies ICU knows, with their minor-unit digits';
CREATE VIEW billing.currencies AS SELECT code, minor_digits, current FROM billing.currency_list();
COMMENT ON VIEW billing.currencies IS
    'ISO 4217 currencies accepted by billing.amount (from ICU): code, minor-unit digits, whether in use today';
COMMENT ON COLUMN billing.currencies.code IS 'ISO 4217 alphabetic code';
COMMENT ON COLUMN billing.currencies.minor_digits IS 'digits after the decimal point (ICU/CLDR)';
COMMENT ON COLUMN billing.currencies.current IS 'false for withdrawn currencies (kept so old amounts stay readable)';

-- sql/install/20_periods.sql
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

-- Reads billing.rounding, hence STABLE.
CREATE FUNCTION billing.prorate(price billing.amount, period daterange, part daterange,
                                convention text DEFAULT 'actual')
    RETURNS billing.amount
    AS 'MODULE_PATHNAME', 'prorate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION billing.prorate(billing.amount, daterange, daterange, text) IS
    'the share of price for part of period: R(price*(b-s)/(e-s)) - R(price*(a-s)/(e-s)) '
    'with R = billing.rounding, so the parts of any split sum exactly to price; '
    'convention ''actual'' (days) or ''30e/360''';

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

-- sql/install/30_accounts_catalog.sql
-- Billing entities, accounts and the catalog: products, prices, price tiers,
-- tax rates, coupons.
--
-- The Citus shape (docs/design.md): the catalog tables (billing_entity,
-- product, price, price_tier, tax_rate, coupon) are small reference tables;
-- account and everything an account owns carry account_id first in their
-- primary and foreign keys, so they can be distributed and co-located on it.
--
-- Every table that holds user data, and its identity sequence, is registered
-- with pg_extension_config_dump at the end of the file that creates it, so
-- pg_dump keeps its rows.

-- An ISO 4217 code that billing.amount accepts (ICU's list): upper case,
-- three letters, and known (billing.from_minor_units raises 22023 if not).
CREATE DOMAIN billing.currency_code AS text
    CHECK (VALUE ~ '^[A-Z]{3}$' AND billing.currency(billing.from_minor_units(0, VALUE)) = VALUE);
COMMENT ON DOMAIN billing.currency_code IS 'an ISO 4217 currency code known to billing.amount, upper case';

-- An IANA time zone name (billing.today raises 22023 for an unknown one).
CREATE DOMAIN billing.time_zone AS text
    CHECK (billing.today(VALUE, '2000-01-01 00:00+00') IS NOT NULL);
COMMENT ON DOMAIN billing.time_zone IS 'an IANA time zone name such as Europe/Berlin';

-- The seller.  Invoice numbers are per entity and series: the series of an
-- invoice is invoice_prefix, followed by -YYYY (the issue year) when
-- number_per_year, and the number is the series, '-', and the counter
-- zero-padded to number_digits: INV-2026-000123.
CREATE TABLE billing.billing_entity (
    entity_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    legal_name       text NOT NULL CHECK (legal_name <> ''),
    tax_id           text,
    address          text,
    default_currency billing.currency_code NOT NULL,
    invoice_prefix   text NOT NULL DEFAULT 'INV' CHECK (invoice_prefix ~ '^[A-Za-z0-9_./-]{1,20}$'),
    number_per_year  boolean NOT NULL DEFAULT true,
    number_digits    integer NOT NULL DEFAULT 6 CHECK (number_digits BETWEEN 1 AND 18),
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT billing.now()
);
COMMENT ON TABLE billing.billing_entity IS
    'the seller: legal name, tax id, address, default currency and its invoice number series';

-- Tax rates: percentage of the net amount (exclusive) or contained in the
-- gross amount (inclusive).
CREATE TABLE billing.tax_rate (
    tax_rate_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CHECK (name <> ''),
    percentage   numeric NOT NULL CHECK (percentage >= 0 AND percentage < 1000),
    inclusive    boolean NOT NULL DEFAULT false,
    jurisdiction text,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT billing.now()
);
COMMENT ON TABLE billing.tax_rate IS
    'a tax rate in percent, exclusive (added to the net) or inclusive (contained in the price)';

CREATE TABLE billing.account (
    account_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    entity_id          bigint NOT NULL REFERENCES billing.billing_entity,
    name               text NOT NULL CHECK (name <> ''),
    currency           billing.currency_code NOT NULL,
    timezone           billing.time_zone NOT NULL DEFAULT 'UTC',
    payment_terms_days integer NOT NULL DEFAULT 30 CHECK (payment_terms_days BETWEEN 0 AND 3650),
    locale             text NOT NULL DEFAULT 'en-US',
    email              text,
    external_ref       text UNIQUE,
    tax_rate_id        bigint REFERENCES billing.tax_rate,
    tax_exempt         boolean NOT NULL DEFAULT false,
    metadata           jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT billing.now()
);
COMMENT ON TABLE billing.account IS
    'a customer: currency, time zone, payment terms, locale, contact, CRM/ERP reference, tax settings';
CREATE INDEX ON billing.account (entity_id);

CREATE TABLE billing.product (
    product_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    description text,
    active      boolean NOT NULL DEFAULT true,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT billing.now()
);
COMMENT ON TABLE billing.product IS 'what is sold; its prices say for how much';

-- A price.  scheme says how a quantity becomes an amount:
--   flat      unit_amount per period, whatever the quantity
--   per_unit  unit_amount x quantity
--   package   unit_amount per started package of package_size units
--   graduated each tier prices the units that fall in it (price_tier)
--   volume    the tier the whole quantity falls in prices every unit
-- usage_type 'licensed' bills the item's quantity in advance; 'metered'
-- bills the usage events of the period in arrears, aggregated by
-- usage_aggregation.  unit_amount and the tier amounts are numeric in the
-- currency's units and may have sub-minor precision (0.0035 USD); a line
-- amount is rounded once, by billing.rounding.
CREATE TABLE billing.price (
    price_id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    product_id        bigint NOT NULL REFERENCES billing.product,
    nickname          text,
    currency          billing.currency_code NOT NULL,
    scheme            text NOT NULL DEFAULT 'flat'
                      CHECK (scheme IN ('flat', 'per_unit', 'package', 'graduated', 'volume')),
    usage_type        text NOT NULL DEFAULT 'licensed' CHECK (usage_type IN ('licensed', 'metered')),
    usage_aggregation text CHECK (usage_aggregation IN ('sum', 'max', 'count', 'unique_count', 'last')),
    unit_amount       numeric CHECK (unit_amount >= 0),
    package_size      numeric CHECK (package_size > 0),
    cadence           interval NOT NULL DEFAULT '1 month',
    setup_fee         numeric CHECK (setup_fee >= 0),
    trial_days        integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 3650),
    tax_rate_id       bigint REFERENCES billing.tax_rate,
    active            boolean NOT NULL DEFAULT true,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT billing.now(),
    CHECK ((usage_type = 'metered') = (usage_aggregation IS NOT NULL)),
    CHECK (scheme IN ('graduated', 'volume') OR unit_amount IS NOT NULL),
    CHECK ((scheme = 'package') = (package_size IS NOT NULL)),
    CHECK (NOT (scheme = 'flat' AND usage_type = 'metered'))
);
COMMENT ON TABLE billing.price IS
    'how much a product costs per period: scheme, licensed or metered usage, cadence, setup fee, trial days, tax rate';
CREATE INDEX ON billing.price (product_id);

-- Tiers of a graduated or volume price, in order of up_to (NULL: the last,
-- unbounded tier).  A tier prices units up to and including up_to.
CREATE TABLE billing.price_tier (
    price_id    bigint NOT NULL REFERENCES billing.price ON DELETE CASCADE,
    up_to       numeric CHECK (up_to > 0),
    unit_amount numeric NOT NULL DEFAULT 0 CHECK (unit_amount >= 0),
    flat_amount numeric NOT NULL DEFAULT 0 CHECK (flat_amount >= 0),
    UNIQUE NULLS NOT DISTINCT (price_id, up_to)
);
COMMENT ON TABLE billing.price_tier IS
    'tiers of a graduated or volume price: units up to up_to (NULL: no limit) at unit_amount each, plus flat_amount';

-- Coupons: percent_off or amount_off (in one currency), applied before tax
-- to the recurring, usage and proration lines of the periods they cover:
-- once (the first), repeating (duration_periods periods) or forever.
CREATE TABLE billing.coupon (
    coupon_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    code             text NOT NULL UNIQUE CHECK (code <> ''),
    name             text,
    percent_off      numeric CHECK (percent_off > 0 AND percent_off <= 100),
    amount_off       billing.amount,
    duration         text NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_periods integer CHECK (duration_periods > 0),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT billing.now(),
    CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
    CHECK ((duration = 'repeating') = (duration_periods IS NOT NULL))
);
COMMENT ON TABLE billing.coupon IS
    'a discount applied before tax: percent_off or amount_off, once, for duration_periods periods, or forever';

-- One call per statement: pg_extension_config_dump updates pg_extension.
SELECT pg_catalog.pg_extension_config_dump('billing.billing_entity', '');
SELECT pg_catalog.pg_extension_config_dump('billing.tax_rate', '');
SELECT pg_catalog.pg_extension_config_dump('billing.account', '');
SELECT pg_catalog.pg_extension_config_dump('billing.product', '');
SELECT pg_catalog.pg_extension_config_dump('billing.price', '');
SELECT pg_catalog.pg_extension_config_dump('billing.price_tier', '');
SELECT pg_catalog.pg_extension_config_dump('billing.coupon', '');
SELECT pg_catalog.pg_extension_config_dump('billing.billing_entity_entity_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.tax_rate_tax_rate_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.account_account_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.product_product_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.price_price_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.coupon_coupon_id_seq', '');

-- ---------------------------------------------------------------------------
-- Functions.  Every function here runs with search_path = billing,
-- pg_catalog: the amount operators live in schema billing.  Updates take
-- named arguments whose NULL means "leave as it is".

CREATE FUNCTION billing.create_billing_entity(
    legal_name text, default_currency text, tax_id text DEFAULT NULL, address text DEFAULT NULL,
    invoice_prefix text DEFAULT 'INV', number_per_year boolean DEFAULT true,
    number_digits integer DEFAULT 6, metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    INSERT INTO billing.billing_entity (legal_name, default_currency, tax_id, address, invoice_prefix,
                                        number_per_year, number_digits, metadata)
    VALUES ($1, upper($2), $3, $4, $5, $6, $7, coalesce($8, '{}'))
    RETURNING entity_id
$$;
COMMENT ON FUNCTION billing.create_billing_entity(text, text, text, text, text, boolean, integer, jsonb) IS
    'creates a billing entity (the seller) and returns its id; invoice numbers are invoice_prefix[-YYYY]-NNNNNN';

CREATE FUNCTION billing.update_billing_entity(
    entity_id bigint, legal_name text DEFAULT NULL, tax_id text DEFAULT NULL, address text DEFAULT NULL,
    default_currency text DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    UPDATE billing.billing_entity e
    SET legal_name = coalesce(update_billing_entity.legal_name, e.legal_name),
        tax_id = coalesce(update_billing_entity.tax_id, e.tax_id),
        address = coalesce(update_billing_entity.address, e.address),
        default_currency = coalesce(upper(update_billing_entity.default_currency), e.default_currency),
        metadata = coalesce(update_billing_entity.metadata, e.metadata)
    WHERE e.entity_id = update_billing_entity.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.update_billing_entity(bigint, text, text, text, text, jsonb) IS
    'changes a billing entity''s legal name, tax id, address, default currency or metadata (NULL keeps a value)';

CREATE FUNCTION billing.create_tax_rate(name text, percentage numeric, inclusive boolean DEFAULT false,
                                        jurisdiction text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    INSERT INTO billing.tax_rate (name, percentage, inclusive, jurisdiction)
    VALUES ($1, $2, coalesce($3, false), $4)
    RETURNING tax_rate_id
$$;
COMMENT ON FUNCTION billing.create_tax_rate(text, numeric, boolean, text) IS
    'creates a tax rate in percent, exclusive (added to the net) or inclusive (contained in prices)';

CREATE FUNCTION billing._check_tax_rate(tax_rate_id bigint) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
BEGIN
    IF tax_rate_id IS NOT NULL AND NOT EXISTS (SELECT FROM billing.tax_rate t WHERE t.tax_rate_id = _check_tax_rate.tax_rate_id) THEN
        RAISE EXCEPTION 'tax rate % does not exist', tax_rate_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_tax_rate.';
    END IF;
END $$;
COMMENT ON FUNCTION billing._check_tax_rate(bigint) IS 'internal: raises 23503 for an unknown tax rate';

CREATE FUNCTION billing.create_account(
    entity_id bigint, name text, currency text DEFAULT NULL, timezone text DEFAULT 'UTC',
    payment_terms_days integer DEFAULT 30, locale text DEFAULT 'en-US', email text DEFAULT NULL,
    external_ref text DEFAULT NULL, tax_rate_id bigint DEFAULT NULL, tax_exempt boolean DEFAULT false,
    metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v_currency text;
    v_id bigint;
BEGIN
    SELECT coalesce(upper(create_account.currency), e.default_currency) INTO v_currency
    FROM billing.billing_entity e WHERE e.entity_id = create_account.entity_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'billing entity % does not exist', coalesce(entity_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_billing_entity.';
    END IF;
    PERFORM billing._check_tax_rate(tax_rate_id);
    INSERT INTO billing.account AS a (entity_id, name, currency, timezone, payment_terms_days, locale, email,
                                      external_ref, tax_rate_id, tax_exempt, metadata)
    VALUES (entity_id, name, v_currency, coalesce(timezone, 'UTC'), coalesce(payment_terms_days, 30),
            coalesce(locale, 'en-US'), email, external_ref, tax_rate_id, coalesce(tax_exempt, false),
            coalesce(metadata, '{}'))
    RETURNING a.account_id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_account(bigint, text, text, text, integer, text, text, text, bigint, boolean, jsonb) IS
    'creates a customer account of a billing entity (currency defaults to the entity''s) and returns its id';

CREATE FUNCTION billing.update_account(
    account_id bigint, name text DEFAULT NULL, timezone text DEFAULT NULL,
    payment_terms_days integer DEFAULT NULL, locale text DEFAULT NULL, email text DEFAULT NULL,
    external_ref text DEFAULT NULL, tax_rate_id bigint DEFAULT NULL, tax_exempt boolean DEFAULT NULL,
    metadata jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    PERFORM billing._check_tax_rate(tax_rate_id);
    UPDATE billing.account a
    SET name = coalesce(update_account.name, a.name),
        timezone = coalesce(update_account.timezone, a.timezone),
        payment_terms_days = coalesce(update_account.payment_terms_days, a.payment_terms_days),
        locale = coalesce(update_account.locale, a.locale),
        email = coalesce(update_account.email, a.email),
        external_ref = coalesce(update_account.external_ref, a.external_ref),
        tax_rate_id = coalesce(update_account.tax_rate_id, a.tax_rate_id),
        tax_exempt = coalesce(update_account.tax_exempt, a.tax_exempt),
        metadata = coalesce(update_account.metadata, a.metadata)
    WHERE a.account_id = update_account.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.update_account(bigint, text, text, integer, text, text, text, bigint, boolean, jsonb) IS
    'changes an account''s settings (NULL keeps a value); the currency of an account never changes';

CREATE FUNCTION billing.create_product(name text, description text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    INSERT INTO billing.product (name, description, metadata) VALUES ($1, $2, coalesce($3, '{}'))
    RETURNING product_id
$$;
COMMENT ON FUNCTION billing.create_product(text, text, jsonb) IS 'creates a product and returns its id';

CREATE FUNCTION billing.update_product(product_id bigint, name text DEFAULT NULL, description text DEFAULT NULL,
                                       active boolean DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    UPDATE billing.product p
    SET name = coalesce(update_product.name, p.name),
        description = coalesce(update_product.description, p.description),
        active = coalesce(update_product.active, p.active),
        metadata = coalesce(update_product.metadata, p.metadata)
    WHERE p.product_id = update_product.product_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product % does not exist', coalesce(product_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_product.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.update_product(bigint, text, text, boolean, jsonb) IS
    'changes a product''s name, description, active flag or metadata (NULL keeps a value)';

-- tiers: a jsonb array of {"up_to": n|null, "unit_amount": x, "flat_amount": y},
-- in increasing up_to, the last one unbounded.
CREATE FUNCTION billing.create_price(
    product_id bigint, currency text, unit_amount numeric DEFAULT NULL, scheme text DEFAULT 'flat',
    cadence interval DEFAULT '1 month', usage_type text DEFAULT 'licensed',
    usage_aggregation text DEFAULT NULL, package_size numeric DEFAULT NULL, tiers jsonb DEFAULT NULL,
    setup_fee numeric DEFAULT NULL, trial_days integer DEFAULT 0, tax_rate_id bigint DEFAULT NULL,
    nickname text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v_id bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM billing.product p WHERE p.product_id = create_price.product_id) THEN
        RAISE EXCEPTION 'product % does not exist', coalesce(product_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_product.';
    END IF;
    PERFORM billing._check_tax_rate(tax_rate_id);
    IF scheme NOT IN ('flat', 'per_unit', 'package', 'graduated', 'volume') OR scheme IS NULL THEN
        RAISE EXCEPTION 'unknown price scheme "%"', scheme
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use flat, per_unit, package, graduated or volume.';
    END IF;
    IF usage_type NOT IN ('licensed', 'metered') OR usage_type IS NULL THEN
        RAISE EXCEPTION 'unknown usage type "%"', usage_type
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use licensed or metered.';
    END IF;
    IF usage_type = 'metered' AND usage_aggregation IS NULL THEN
        usage_aggregation := 'sum';
    END IF;
    IF usage_aggregation IS NOT NULL AND usage_aggregation NOT IN ('sum', 'max', 'count', 'unique_count', 'last') THEN
        RAISE EXCEPTION 'unknown usage aggregation "%"', usage_aggregation
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use sum, max, count, unique_count or last.';
    END IF;
    IF usage_type = 'licensed' AND usage_aggregation IS NOT NULL THEN
        RAISE EXCEPTION 'a usage aggregation needs usage_type metered'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass usage_type => ''metered''.';
    END IF;
    IF scheme = 'flat' AND usage_type = 'metered' THEN
        RAISE EXCEPTION 'a metered price cannot be flat'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use per_unit, package, graduated or volume.';
    END IF;
    IF scheme IN ('graduated', 'volume') THEN
        IF tiers IS NULL OR jsonb_typeof(tiers) <> 'array' OR jsonb_array_length(tiers) = 0 THEN
            RAISE EXCEPTION 'a % price needs tiers', scheme
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass tiers => ''[{"up_to": 10, "unit_amount": 5}, {"up_to": null, "unit_amount": 4}]''.';
        END IF;
        IF unit_amount IS NOT NULL THEN
            RAISE EXCEPTION 'a % price takes its amounts from its tiers, not unit_amount', scheme
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave unit_amount out.';
        END IF;
    ELSIF tiers IS NOT NULL THEN
        RAISE EXCEPTION 'tiers are only for graduated and volume prices, not %', scheme
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass scheme => ''graduated'' or ''volume''.';
    ELSIF unit_amount IS NULL THEN
        RAISE EXCEPTION 'a % price needs unit_amount', scheme
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass unit_amount => 9.99 (in the currency''s units).';
    END IF;
    IF (scheme = 'package') <> (package_size IS NOT NULL) THEN
        RAISE EXCEPTION 'package_size goes with scheme package, and only with it'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass scheme => ''package'', package_size => 100.';
    END IF;
    IF unit_amount < 0 OR setup_fee < 0 OR package_size <= 0 THEN
        RAISE EXCEPTION 'a price''s amounts must not be negative (unit_amount %, setup_fee %, package_size %)',
            unit_amount, setup_fee, package_size
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give credits as coupons or credit lines.';
    END IF;
    -- validates the cadence the way the cycle will use it (22023 if bad)
    PERFORM billing.period_containing('2000-01-01', cadence, '2000-01-01');

    INSERT INTO billing.price AS p (product_id, currency, scheme, usage_type, usage_aggregation, unit_amount,
                                    package_size, cadence, setup_fee, trial_days, tax_rate_id, nickname, metadata)
    VALUES (product_id, upper(currency), scheme, usage_type, usage_aggregation, unit_amount, package_size,
            cadence, setup_fee, coalesce(trial_days, 0), tax_rate_id, nickname, coalesce(metadata, '{}'))
    RETURNING p.price_id INTO v_id;

    IF tiers IS NOT NULL THEN
        IF EXISTS (SELECT FROM (SELECT up_to, ord, count(*) OVER () AS n,
                                       lag(up_to) OVER (ORDER BY ord) AS prev
                                FROM (SELECT (t->>'up_to')::numeric AS up_to, ord
                                      FROM jsonb_array_elements(tiers) WITH ORDINALITY x(t, ord)) y) z
                   WHERE (ord < n AND up_to IS NULL) OR (ord = n AND up_to IS NOT NULL) OR up_to <= prev) THEN
            RAISE EXCEPTION 'tiers must have increasing up_to and end with one unbounded tier (up_to null): %', tiers
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Example: [{"up_to": 10, "unit_amount": 5}, {"up_to": null, "unit_amount": 4}].';
        END IF;
        INSERT INTO billing.price_tier (price_id, up_to, unit_amount, flat_amount)
        SELECT v_id, (t->>'up_to')::numeric, coalesce((t->>'unit_amount')::numeric, 0),
               coalesce((t->>'flat_amount')::numeric, 0)
        FROM jsonb_array_elements(tiers) t;
    END IF;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_price(bigint, text, numeric, text, interval, text, text, numeric, jsonb, numeric, integer, bigint, text, jsonb) IS
    'creates a price of a product: scheme flat, per_unit, package, graduated or volume (tiers jsonb), '
    'licensed or metered (usage_aggregation sum, max, count, unique_count, last), cadence, setup fee, trial days, tax rate';

CREATE FUNCTION billing.update_price(price_id bigint, nickname text DEFAULT NULL, active boolean DEFAULT NULL,
                                     tax_rate_id bigint DEFAULT NULL, trial_days integer DEFAULT NULL,
                                     metadata jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    PERFORM billing._check_tax_rate(tax_rate_id);
    UPDATE billing.price p
    SET nickname = coalesce(update_price.nickname, p.nickname),
        active = coalesce(update_price.active, p.active),
        tax_rate_id = coalesce(update_price.tax_rate_id, p.tax_rate_id),
        trial_days = coalesce(update_price.trial_days, p.trial_days),
        metadata = coalesce(update_price.metadata, p.metadata)
    WHERE p.price_id = update_price.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_price.';
    END IF;
END $$;
COMMENT ON FUNCTION billing.update_price(bigint, text, boolean, bigint, integer, jsonb) IS
    'changes a price''s nickname, active flag, tax rate, trial days or metadata; amounts never change '
    '(create a new price and move subscriptions to it)';

-- The exact (unrounded) value of quantity units of a tiered price.
CREATE FUNCTION billing._tiered_value(price_id bigint, scheme text, quantity numeric)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog AS $$
    SELECT CASE WHEN quantity = 0 THEN 0
           WHEN scheme = 'graduated' THEN
               (SELECT coalesce(sum(
                    (least(quantity, coalesce(t.up_to, quantity)) - coalesce(t.below, 0)) * t.unit_amount
                    + t.flat_amount), 0)
                FROM (SELECT up_to, unit_amount, flat_amount,
                             lag(up_to) OVER (ORDER BY up_to NULLS LAST) AS below
                      FROM billing.price_tier pt WHERE pt.price_id = _tiered_value.price_id) t
                WHERE coalesce(t.below, 0) < quantity)
           ELSE
               (SELECT quantity * t.unit_amount + t.flat_amount
                FROM billing.price_tier t
                WHERE t.price_id = _tiered_value.price_id AND (t.up_to IS NULL OR t.up_to >= quantity)
                ORDER BY t.up_to NULLS LAST LIMIT 1)
           END
$$;
COMMENT ON FUNCTION billing._tiered_value(bigint, text, numeric) IS
    'internal: exact value of a graduated (each tier its units) or volume (one tier for all units) price';

-- The exact value of a price for a quantity, in the currency's units.
CREATE FUNCTION billing._price_value(price_id bigint, scheme text, unit_amount numeric, package_size numeric,
                                     quantity numeric)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog AS $$
    SELECT CASE scheme
           WHEN 'flat' THEN unit_amount
           WHEN 'per_unit' THEN unit_amount * quantity
           WHEN 'package' THEN unit_amount * ceil(quantity / package_size)
           ELSE billing._tiered_value(price_id, scheme, quantity)
           END
$$;
COMMENT ON FUNCTION billing._price_value(bigint, text, numeric, numeric, numeric) IS
    'internal: exact value of quantity units of a price, before rounding';

CREATE FUNCTION billing.price_amount(price_id bigint, quantity numeric DEFAULT 1)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    p billing.price;
BEGIN
    SELECT * INTO p FROM billing.price x WHERE x.price_id = price_amount.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_price.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give credits as coupons or credit lines.';
    END IF;
    RETURN billing.round_amount(billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size, quantity),
                                p.currency);
END $$;
COMMENT ON FUNCTION billing.price_amount(bigint, numeric) IS
    'what quantity units of a price cost for one full period, rounded once by billing.rounding';

CREATE FUNCTION billing.create_coupon(code text, duration text, percent_off numeric DEFAULT NULL,
                                      amount_off billing.amount DEFAULT NULL, duration_periods integer DEFAULT NULL,
                                      name text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v_id bigint;
BEGIN
    IF (percent_off IS NULL) = (amount_off IS NULL) THEN
        RAISE EXCEPTION 'a coupon takes exactly one of percent_off and amount_off'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass percent_off => 20 or amount_off => ''5.00 USD''.';
    END IF;
    IF percent_off <= 0 OR percent_off > 100 OR amount_off <= billing.from_minor_units(0, billing.currency(amount_off)) THEN
        RAISE EXCEPTION 'a coupon must take off something positive, up to 100%%, not %', coalesce(percent_off::text, amount_off::text)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'percent_off is in (0, 100]; amount_off is positive.';
    END IF;
    IF duration IS NULL OR duration NOT IN ('once', 'repeating', 'forever')
       OR (duration = 'repeating') <> (duration_periods IS NOT NULL) OR duration_periods <= 0 THEN
        RAISE EXCEPTION 'bad coupon duration "%" with duration_periods %', duration, coalesce(duration_periods::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use once, forever, or repeating with duration_periods > 0.';
    END IF;
    INSERT INTO billing.coupon AS c (code, name, percent_off, amount_off, duration, duration_periods)
    VALUES (code, name, percent_off, amount_off, duration, duration_periods)
    RETURNING c.coupon_id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.create_coupon(text, text, numeric, billing.amount, integer, text) IS
    'creates a coupon: percent_off or amount_off, for once, repeating (duration_periods) or forever; returns its id';

-- sql/install/40_subscriptions.sql
-- Subscriptions, their items, usage events and pending items.
--
-- The state of a subscription that the cycle reads and advances is
-- next_bill_date: the first day not yet billed in advance.  A subscription
-- is due when next_bill_date has been reached in its account's time zone;
-- the periods it is then billed for are the periods of (anchor, cadence)
-- from next_bill_date on, the first one clipped to start at next_bill_date
-- (after a trial or a resume that is not on the anchor) and prorated.
-- next_bill_date is NULL once nothing more will be billed (paused,
-- canceled).

CREATE TABLE billing.subscription (
    account_id             bigint NOT NULL REFERENCES billing.account,
    subscription_id        bigint GENERATED BY DEFAULT AS IDENTITY,
    status                 text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('trialing', 'active', 'past_due', 'paused', 'canceled')),
    anchor                 date NOT NULL,
    cadence                interval NOT NULL,
    start_date             date NOT NULL,
    trial_end              date,
    next_bill_date         date,
    current_period_start   date,
    current_period_end     date,
    cancel_at              date,
    canceled_at            date,
    pause_at               date,
    paused_at              date,
    coupon_id              bigint REFERENCES billing.coupon,
    coupon_from            date,
    coupon_until           date,
    trial_ending_notified  boolean NOT NULL DEFAULT false,
    metadata               jsonb NOT NULL DEFAULT '{}',
    created_at             timestamptz NOT NULL DEFAULT billing.now(),
    updated_at             timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, subscription_id),
    CHECK (trial_end IS NULL OR trial_end > start_date),
    CHECK ((status IN ('paused', 'canceled')) = (next_bill_date IS NULL)),
    CHECK ((coupon_id IS NULL) = (coupon_from IS NULL)),
    CHECK (coupon_until IS NULL OR coupon_until > coupon_from),
    CHECK ((current_period_start IS NULL) = (current_period_end IS NULL))
);
COMMENT ON TABLE billing.subscription IS
    'an account''s subscription: status, anchor and cadence of its periods, trial, next bill date, '
    'current period, scheduled cancel or pause, coupon';
COMMENT ON COLUMN billing.subscription.next_bill_date IS
    'the first day not yet billed in advance: the cycle bills the subscription once this day is reached '
    'in the account''s time zone; NULL when paused or canceled';
-- The work queue of billing.run_cycle, read in key order from where the
-- previous batch stopped (so a run never wades through the index entries of
-- what it already billed).
CREATE INDEX subscription_due ON billing.subscription (next_bill_date, account_id, subscription_id)
    WHERE next_bill_date IS NOT NULL;

-- An item: a price and a quantity, valid on [started_on, ended_on).  A
-- change of price or quantity ends the item and starts a new one, so a
-- billed line always names the item it was billed for.
CREATE TABLE billing.subscription_item (
    account_id           bigint NOT NULL,
    subscription_item_id bigint GENERATED BY DEFAULT AS IDENTITY,
    subscription_id      bigint NOT NULL,
    price_id             bigint NOT NULL REFERENCES billing.price,
    quantity             numeric NOT NULL DEFAULT 1 CHECK (quantity >= 0),
    started_on           date NOT NULL,
    ended_on             date,
    created_at           timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, subscription_item_id),
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription,
    CHECK (ended_on IS NULL OR ended_on >= started_on)
);
COMMENT ON TABLE billing.subscription_item IS
    'a price and quantity on a subscription, valid from started_on until ended_on (exclusive)';
CREATE INDEX ON billing.subscription_item (account_id, subscription_id);

-- Usage of metered items.  usage_date is the day of occurred_at in the
-- account's time zone; invoice_id is set by the invoice that billed it.
CREATE TABLE billing.usage_event (
    account_id           bigint NOT NULL,
    usage_event_id       bigint GENERATED BY DEFAULT AS IDENTITY,
    subscription_item_id bigint NOT NULL,
    quantity             numeric NOT NULL CHECK (quantity >= 0),
    value                text,
    occurred_at          timestamptz NOT NULL,
    usage_date           date NOT NULL,
    idempotency_key      text NOT NULL CHECK (idempotency_key <> ''),
    invoice_id           bigint,
    recorded_at          timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, usage_event_id),
    UNIQUE (account_id, idempotency_key),
    FOREIGN KEY (account_id, subscription_item_id) REFERENCES billing.subscription_item
);
COMMENT ON TABLE billing.usage_event IS
    'a usage record of a metered item, once per idempotency key; invoice_id is the invoice that billed it';
CREATE INDEX usage_event_item ON billing.usage_event (account_id, subscription_item_id, usage_date);
CREATE INDEX usage_event_unbilled ON billing.usage_event (account_id, subscription_item_id, usage_date)
    WHERE invoice_id IS NULL;

-- Charges and credits waiting for a subscription's next invoice: setup
-- fees, prorations of mid-period changes (prorate_next), credits of a
-- cancellation.  invoice_id is set by the invoice that billed it.
CREATE TABLE billing.pending_item (
    account_id           bigint NOT NULL,
    pending_item_id      bigint GENERATED BY DEFAULT AS IDENTITY,
    subscription_id      bigint NOT NULL,
    subscription_item_id bigint,
    price_id             bigint REFERENCES billing.price,
    kind                 text NOT NULL CHECK (kind IN ('proration', 'setup_fee', 'late_fee', 'credit')),
    description          text NOT NULL,
    quantity             numeric NOT NULL DEFAULT 1,
    unit_amount          numeric,
    amount               billing.amount NOT NULL,
    period_start         date,
    period_end           date,
    invoice_id           bigint,
    created_at           timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, pending_item_id),
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription,
    FOREIGN KEY (account_id, subscription_item_id) REFERENCES billing.subscription_item
);
COMMENT ON TABLE billing.pending_item IS
    'a charge or credit waiting for the subscription''s next invoice (setup fee, proration, credit)';
CREATE INDEX pending_item_unbilled ON billing.pending_item (account_id, subscription_id)
    WHERE invoice_id IS NULL;

-- One call per statement: pg_extension_config_dump updates pg_extension.
SELECT pg_catalog.pg_extension_config_dump('billing.subscription', '');
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_item', '');
SELECT pg_catalog.pg_extension_config_dump('billing.usage_event', '');
SELECT pg_catalog.pg_extension_config_dump('billing.pending_item', '');
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_subscription_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.subscription_item_subscription_item_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.usage_event_usage_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.pending_item_pending_item_id_seq', '');

-- ---------------------------------------------------------------------------
-- Functions.  They take the account id first (Citus: per-account work
-- routed by account_id) and lock the subscription row, so a change and a
-- cycle batch never interleave on one subscription.

-- Locks and returns a subscription, or raises P0002.
CREATE FUNCTION billing._lock_subscription(account_id bigint, subscription_id bigint)
RETURNS billing.subscription LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
BEGIN
    SELECT * INTO s FROM billing.subscription x
    WHERE x.account_id = _lock_subscription.account_id AND x.subscription_id = _lock_subscription.subscription_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % of account % does not exist', coalesce(subscription_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription lists the account''s subscriptions.';
    END IF;
    RETURN s;
END $$;
COMMENT ON FUNCTION billing._lock_subscription(bigint, bigint) IS
    'internal: the subscription, locked FOR UPDATE; P0002 if there is none';

-- Checks that a price can go on a subscription of this account and cadence.
CREATE FUNCTION billing._check_price(price_id bigint, account_currency text, cadence interval, quantity numeric)
RETURNS billing.price LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    p billing.price;
BEGIN
    SELECT * INTO p FROM billing.price x WHERE x.price_id = _check_price.price_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'price % does not exist', coalesce(price_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_price.';
    END IF;
    IF NOT p.active THEN
        RAISE EXCEPTION 'price % is not active', price_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Subscribe to an active price.';
    END IF;
    IF p.currency <> account_currency THEN
        RAISE EXCEPTION 'price % is in %, the account in %', price_id, p.currency, account_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a price in the account''s currency.';
    END IF;
    IF cadence IS NOT NULL AND p.cadence <> cadence THEN
        RAISE EXCEPTION 'price % bills every %, the subscription every %', price_id, p.cadence, cadence
            USING ERRCODE = 'invalid_parameter_value', HINT = 'All items of a subscription share one cadence.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Cancel the subscription to stop billing it.';
    END IF;
    RETURN p;
END $$;
COMMENT ON FUNCTION billing._check_price(bigint, text, interval, numeric) IS
    'internal: the price, checked against the account''s currency, the subscription''s cadence and the quantity';

CREATE FUNCTION billing._event(account_id bigint, event_type text, payload jsonb)
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    INSERT INTO billing.outbox (account_id, event_type, payload) VALUES ($1, $2, $3);
    SELECT pg_notify('billing_events', '1');
$$;
COMMENT ON FUNCTION billing._event(bigint, text, jsonb) IS 'internal: writes an outbox event and notifies billing_events';

-- items: a jsonb array of {"price_id": n, "quantity": q} for several items;
-- otherwise price_id and quantity give the one item.
CREATE FUNCTION billing.subscribe(
    account_id bigint, price_id bigint DEFAULT NULL, quantity numeric DEFAULT 1,
    start_date date DEFAULT NULL, anchor date DEFAULT NULL, trial_days integer DEFAULT NULL,
    coupon text DEFAULT NULL, items jsonb DEFAULT NULL, invoice_now boolean DEFAULT true,
    metadata jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    v_today date;
    v_start date;
    v_trial integer;
    v_trial_end date;
    v_billing_start date;
    v_cadence interval;
    v_sub bigint;
    it record;
    p billing.price;
BEGIN
    SELECT * INTO a FROM billing.account x WHERE x.account_id = subscribe.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_account.';
    END IF;
    IF (items IS NULL) = (price_id IS NULL) THEN
        RAISE EXCEPTION 'subscribe takes price_id or items, one of them'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass price_id => 1, or items => ''[{"price_id": 1, "quantity": 2}]''.';
    END IF;
    IF items IS NULL THEN
        items := jsonb_build_array(jsonb_build_object('price_id', price_id, 'quantity', quantity));
    ELSIF jsonb_typeof(items) <> 'array' OR jsonb_array_length(items) = 0 THEN
        RAISE EXCEPTION 'items must be a non-empty jsonb array, not %', items
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: [{"price_id": 1, "quantity": 2}].';
    END IF;
    v_today := billing.today(a.timezone);
    v_start := coalesce(start_date, v_today);
    v_trial := 0;
    FOR it IN SELECT (e->>'price_id')::bigint AS price_id, coalesce((e->>'quantity')::numeric, 1) AS quantity
              FROM jsonb_array_elements(items) e LOOP
        p := billing._check_price(it.price_id, a.currency, v_cadence, it.quantity);
        v_cadence := p.cadence;
        v_trial := greatest(v_trial, p.trial_days);
    END LOOP;
    v_trial := coalesce(trial_days, v_trial);
    IF v_trial < 0 THEN
        RAISE EXCEPTION 'trial_days must be zero or more, not %', v_trial
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass trial_days => 0 for no trial.';
    END IF;
    IF v_trial > 0 THEN
        v_trial_end := v_start + v_trial;
    END IF;
    v_billing_start := coalesce(v_trial_end, v_start);

    INSERT INTO billing.subscription AS s (account_id, status, anchor, cadence, start_date, trial_end,
                                           next_bill_date, metadata)
    VALUES (a.account_id, CASE WHEN v_trial_end IS NULL THEN 'active' ELSE 'trialing' END,
            coalesce(anchor, v_billing_start), v_cadence, v_start, v_trial_end, v_billing_start,
            coalesce(metadata, '{}'))
    RETURNING s.subscription_id INTO v_sub;

    INSERT INTO billing.subscription_item (account_id, subscription_id, price_id, quantity, started_on)
    SELECT a.account_id, v_sub, (e->>'price_id')::bigint, coalesce((e->>'quantity')::numeric, 1), v_start
    FROM jsonb_array_elements(items) WITH ORDINALITY x(e, ord) ORDER BY ord;

    -- setup fees go on the first invoice
    INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                      description, quantity, unit_amount, amount, period_start)
    SELECT a.account_id, v_sub, i.subscription_item_id, pp.price_id, 'setup_fee',
           pr.name || ' setup fee', 1, pp.setup_fee, billing.round_amount(pp.setup_fee, pp.currency), v_start
    FROM billing.subscription_item i
    JOIN billing.price pp ON pp.price_id = i.price_id
    JOIN billing.product pr ON pr.product_id = pp.product_id
    WHERE i.account_id = a.account_id AND i.subscription_id = v_sub AND pp.setup_fee > 0
    ORDER BY i.subscription_item_id;

    IF coupon IS NOT NULL THEN
        PERFORM billing.apply_coupon(a.account_id, v_sub, coupon);
    END IF;
    PERFORM billing._event(a.account_id, 'subscription.created',
                           jsonb_build_object('subscription_id', v_sub, 'start_date', v_start,
                                              'trial_end', v_trial_end));
    IF invoice_now AND v_billing_start <= v_today THEN
        PERFORM billing._bill(ARRAY[a.account_id], ARRAY[v_sub], NULL, billing.now(), 'cycle');
    END IF;
    RETURN v_sub;
END $$;
COMMENT ON FUNCTION billing.subscribe(bigint, bigint, numeric, date, date, integer, text, jsonb, boolean, jsonb) IS
    'subscribes an account to a price (or items: [{"price_id", "quantity"}]) from start_date (default today in '
    'the account''s time zone), after trial_days (default the prices'' trial), periods anchored at anchor '
    '(default the first billed day); invoices the first period at once when due and invoice_now; returns its id';

CREATE FUNCTION billing.apply_coupon(account_id bigint, subscription_id bigint, code text)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
    c billing.coupon;
    v_currency text;
    v_until date;
BEGIN
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO c FROM billing.coupon x WHERE x.code = apply_coupon.code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'coupon "%" does not exist', code
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_coupon.';
    END IF;
    IF NOT c.active THEN
        RAISE EXCEPTION 'coupon "%" is not active', code
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use an active coupon.';
    END IF;
    IF s.next_bill_date IS NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Coupons apply to subscriptions still billed.';
    END IF;
    SELECT a.currency INTO v_currency FROM billing.account a WHERE a.account_id = s.account_id;
    IF c.amount_off IS NOT NULL AND billing.currency(c.amount_off) <> v_currency THEN
        RAISE EXCEPTION 'coupon "%" takes off %, the account is in %', code, c.amount_off, v_currency
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a coupon in the account''s currency or a percent coupon.';
    END IF;
    -- the coupon covers invoices from the next bill date, for its periods
    IF c.duration <> 'forever' THEN
        SELECT upper(p) INTO v_until
        FROM billing.periods_between(s.anchor, s.cadence,
                 daterange(s.next_bill_date, (s.next_bill_date + s.cadence * coalesce(c.duration_periods, 1))::date, '[]'))
             WITH ORDINALITY x(p, ord)
        WHERE ord = coalesce(c.duration_periods, 1);
    END IF;
    UPDATE billing.subscription x
    SET coupon_id = c.coupon_id, coupon_from = s.next_bill_date, coupon_until = v_until, updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
END $$;
COMMENT ON FUNCTION billing.apply_coupon(bigint, bigint, text) IS
    'applies a coupon to a subscription from its next invoice on, for the coupon''s duration, replacing any other';

-- Ends an item on a date and starts its replacement; with a proration,
-- the unused part of the billed period is credited and the rest of it
-- charged at the new price, both by billing.prorate over the cycle period.
CREATE FUNCTION billing.change_subscription(
    account_id bigint, subscription_id bigint, price_id bigint DEFAULT NULL, quantity numeric DEFAULT NULL,
    proration text DEFAULT 'prorate_next', effective_date date DEFAULT NULL,
    subscription_item_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    i billing.subscription_item;
    p_old billing.price;
    p_new billing.price;
    v_d date;
    v_new bigint;
    v_cycle daterange;
    v_items integer;
BEGIN
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    IF s.status IN ('canceled', 'paused') OR s.cancel_at IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id,
            CASE WHEN s.cancel_at IS NOT NULL AND s.status NOT IN ('canceled', 'paused')
                 THEN 'canceled from ' || s.cancel_at ELSE s.status END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a subscription that is billed and not canceled can change.';
    END IF;
    IF proration IS NULL OR proration NOT IN ('prorate_now', 'prorate_next', 'none', 'at_period_end') THEN
        RAISE EXCEPTION 'unknown proration behavior "%"', proration
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use prorate_now, prorate_next, none or at_period_end.';
    END IF;
    IF price_id IS NULL AND quantity IS NULL THEN
        RAISE EXCEPTION 'nothing to change'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass price_id, quantity or both.';
    END IF;
    -- the item: the one given, or the subscription's only open item
    SELECT count(*) INTO v_items FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (change_subscription.subscription_item_id IS NULL
           OR x.subscription_item_id = change_subscription.subscription_item_id);
    IF v_items <> 1 THEN
        RAISE EXCEPTION '%', CASE WHEN change_subscription.subscription_item_id IS NULL
                                  THEN format('subscription %s has %s current items', subscription_id, v_items)
                                  ELSE format('item %s is no current item of subscription %s',
                                              change_subscription.subscription_item_id, subscription_id) END
            USING ERRCODE = CASE WHEN change_subscription.subscription_item_id IS NULL
                                 THEN 'invalid_parameter_value' ELSE 'no_data_found' END,
                  HINT = 'Name the item with subscription_item_id.';
    END IF;
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id AND x.ended_on IS NULL
      AND (change_subscription.subscription_item_id IS NULL
           OR x.subscription_item_id = change_subscription.subscription_item_id);
    SELECT * INTO p_old FROM billing.price x WHERE x.price_id = i.price_id;
    p_new := billing._check_price(coalesce(change_subscription.price_id, i.price_id), a.currency, s.cadence,
                                  coalesce(quantity, i.quantity));

    IF proration = 'at_period_end' THEN
        IF effective_date IS NOT NULL AND effective_date <> s.next_bill_date THEN
            RAISE EXCEPTION 'a change at period end takes effect on %, not %', s.next_bill_date, effective_date
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave effective_date out.';
        END IF;
        v_d := s.next_bill_date;
    ELSE
        v_d := coalesce(effective_date, billing.today(a.timezone));
        IF v_d < coalesce(s.current_period_start, s.start_date) OR v_d < i.started_on THEN
            RAISE EXCEPTION 'change dated % falls in a closed period (the current one starts on %)',
                v_d, greatest(coalesce(s.current_period_start, s.start_date), i.started_on)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the change in the current period.';
        END IF;
        IF v_d > s.next_bill_date THEN
            RAISE EXCEPTION 'change dated % is after the current period, which ends on %', v_d, s.next_bill_date
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use proration => ''at_period_end''.';
        END IF;
    END IF;

    UPDATE billing.subscription_item x SET ended_on = v_d
    WHERE x.account_id = i.account_id AND x.subscription_item_id = i.subscription_item_id;
    INSERT INTO billing.subscription_item AS x (account_id, subscription_id, price_id, quantity, started_on)
    VALUES (s.account_id, s.subscription_id, p_new.price_id, coalesce(quantity, i.quantity), v_d)
    RETURNING x.subscription_item_id INTO v_new;

    -- prorations of a licensed item within the billed current period
    IF proration IN ('prorate_now', 'prorate_next') AND s.current_period_end IS NOT NULL
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        v_cycle := billing.period_containing(s.anchor, s.cadence, v_d);
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, x.item, x.pid, 'proration', dd.descr, x.qty, pr.unit_amount,
               x.sign * billing.prorate(billing.price_amount(x.pid, x.qty), v_cycle,
                                        daterange(v_d, s.current_period_end)),
               v_d, s.current_period_end
        FROM (VALUES (i.subscription_item_id, i.price_id, i.quantity, -1, 'Unused time'),
                     (v_new, p_new.price_id, coalesce(quantity, i.quantity), 1, 'Remaining time')) x(item, pid, qty, sign, what)
        JOIN billing.price pr ON pr.price_id = x.pid AND pr.usage_type = 'licensed'
        JOIN billing.product pd ON pd.product_id = pr.product_id
        CROSS JOIN LATERAL (SELECT x.what || ' on ' || pd.name || coalesce(' (' || pr.nickname || ')', '')
                                   || ' x ' || trim_scale(x.qty) || ' from ' || v_d AS descr) dd
        -- the old item is credited only if it was billed for this period
        WHERE x.sign = 1 OR i.started_on <= s.current_period_start OR EXISTS (
            SELECT FROM billing.pending_item q
            WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
              AND q.kind = 'proration' AND q.period_end = s.current_period_end)
        ORDER BY x.sign;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'effective_date', v_d,
                                              'old_item', i.subscription_item_id, 'new_item', v_new,
                                              'price_id', p_new.price_id, 'quantity', coalesce(quantity, i.quantity),
                                              'proration', proration));
    IF proration = 'prorate_now' THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
    END IF;
    RETURN v_new;
END $$;
COMMENT ON FUNCTION billing.change_subscription(bigint, bigint, bigint, numeric, text, date, bigint) IS
    'changes the price and/or quantity of a subscription''s item from effective_date (default today): the item '
    'ends and a new one starts (its id is returned); proration prorate_now (credit the unused part, charge the '
    'new one, invoice now), prorate_next (on the next invoice), none, or at_period_end';

CREATE FUNCTION billing.cancel_subscription(account_id bigint, subscription_id bigint,
                                            at_period_end boolean DEFAULT true, prorate boolean DEFAULT false,
                                            cancel_date date DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_d date;
BEGIN
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    IF s.status = 'canceled' OR (at_period_end AND s.cancel_at IS NOT NULL) THEN
        RAISE EXCEPTION 'subscription % is already canceled (from %)', subscription_id, coalesce(s.canceled_at, s.cancel_at)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing to do.';
    END IF;
    IF at_period_end IS NULL OR prorate IS NULL THEN
        RAISE EXCEPTION 'at_period_end and prorate must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass true or false.';
    END IF;
    IF at_period_end THEN
        IF s.status = 'paused' THEN
            RAISE EXCEPTION 'subscription % is paused: it has no period to end', subscription_id
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Cancel it now (at_period_end => false).';
        END IF;
        IF prorate OR cancel_date IS NOT NULL THEN
            RAISE EXCEPTION 'a cancellation at period end takes no proration and no date'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use at_period_end => false to cancel on a date.';
        END IF;
        UPDATE billing.subscription x SET cancel_at = s.next_bill_date, pause_at = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
        PERFORM billing._event(s.account_id, 'subscription.updated',
                               jsonb_build_object('subscription_id', s.subscription_id, 'cancel_at', s.next_bill_date));
        RETURN;
    END IF;

    v_d := coalesce(cancel_date, billing.today(a.timezone));
    IF v_d < coalesce(s.current_period_start, s.start_date) OR v_d < coalesce(s.paused_at, v_d) THEN
        RAISE EXCEPTION 'cancellation dated % falls in a closed period (the current one starts on %)',
            v_d, coalesce(s.paused_at, s.current_period_start, s.start_date)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Date the cancellation in the current period.';
    END IF;
    IF s.next_bill_date IS NOT NULL AND v_d > s.next_bill_date THEN
        RAISE EXCEPTION 'cancellation dated % is after the current period, which ends on %', v_d, s.next_bill_date
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use at_period_end => true.';
    END IF;
    -- credit the unused part of the billed period, item by item
    IF prorate AND s.current_period_end IS NOT NULL AND s.status <> 'paused'
       AND v_d >= s.current_period_start AND v_d < s.current_period_end THEN
        INSERT INTO billing.pending_item (account_id, subscription_id, subscription_item_id, price_id, kind,
                                          description, quantity, unit_amount, amount, period_start, period_end)
        SELECT s.account_id, s.subscription_id, i.subscription_item_id, i.price_id, 'proration',
               'Unused time on ' || pd.name || coalesce(' (' || p.nickname || ')', '') || ' x '
                   || trim_scale(i.quantity) || ' from ' || v_d,
               i.quantity, p.unit_amount,
               -billing.prorate(billing.price_amount(i.price_id, i.quantity),
                                billing.period_containing(s.anchor, s.cadence, v_d),
                                daterange(v_d, s.current_period_end)),
               v_d, s.current_period_end
        FROM billing.subscription_item i
        JOIN billing.price p ON p.price_id = i.price_id AND p.usage_type = 'licensed'
        JOIN billing.product pd ON pd.product_id = p.product_id
        WHERE i.account_id = s.account_id AND i.subscription_id = s.subscription_id
          AND i.started_on <= v_d AND (i.ended_on IS NULL OR i.ended_on > v_d)
          AND (i.started_on <= s.current_period_start OR EXISTS (
                SELECT FROM billing.pending_item q
                WHERE q.account_id = s.account_id AND q.subscription_item_id = i.subscription_item_id
                  AND q.kind = 'proration' AND q.period_end = s.current_period_end))
        ORDER BY i.subscription_item_id;
    END IF;
    UPDATE billing.subscription_item x SET ended_on = v_d
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id
      AND (x.ended_on IS NULL OR x.ended_on > v_d);
    UPDATE billing.subscription x
    SET status = 'canceled', canceled_at = v_d, cancel_at = v_d, pause_at = NULL, next_bill_date = NULL,
        updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    PERFORM billing._event(s.account_id, 'subscription.canceled',
                           jsonb_build_object('subscription_id', s.subscription_id, 'canceled_at', v_d));
    -- the final invoice: usage so far, pending items, the credit
    PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], v_d, billing.now(), 'now');
END $$;
COMMENT ON FUNCTION billing.cancel_subscription(bigint, bigint, boolean, boolean, date) IS
    'cancels a subscription at the end of its current period (default), or now / on cancel_date with a final '
    'invoice of its usage and, with prorate, a credit for the unused part of the billed period';

CREATE FUNCTION billing.pause_subscription(account_id bigint, subscription_id bigint)
RETURNS date LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
BEGIN
    s := billing._lock_subscription(account_id, subscription_id);
    IF s.status IN ('canceled', 'paused') OR s.cancel_at IS NOT NULL OR s.pause_at IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % is %', subscription_id,
            CASE WHEN s.status IN ('canceled', 'paused') THEN s.status
                 WHEN s.cancel_at IS NOT NULL THEN 'canceled from ' || s.cancel_at
                 ELSE 'paused from ' || s.pause_at END
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only a billed subscription can pause.';
    END IF;
    UPDATE billing.subscription x SET pause_at = s.next_bill_date, updated_at = billing.now()
    WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    PERFORM billing._event(s.account_id, 'subscription.updated',
                           jsonb_build_object('subscription_id', s.subscription_id, 'pause_at', s.next_bill_date));
    RETURN s.next_bill_date;
END $$;
COMMENT ON FUNCTION billing.pause_subscription(bigint, bigint) IS
    'pauses a subscription at the end of its current period (returned): no invoice after it until resumed';

CREATE FUNCTION billing.resume_subscription(account_id bigint, subscription_id bigint,
                                            resume_date date DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    s billing.subscription;
    a billing.account;
    v_d date;
BEGIN
    s := billing._lock_subscription(account_id, subscription_id);
    SELECT * INTO a FROM billing.account x WHERE x.account_id = s.account_id;
    IF s.status <> 'paused' AND s.pause_at IS NULL THEN
        RAISE EXCEPTION 'subscription % is % and not paused', subscription_id, s.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only a paused subscription resumes.';
    END IF;
    IF s.status <> 'paused' THEN
        -- the pause has not begun: forget it
        UPDATE billing.subscription x SET pause_at = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    ELSE
        v_d := coalesce(resume_date, billing.today(a.timezone));
        IF v_d < s.paused_at THEN
            RAISE EXCEPTION 'resume date % is before the pause began on %', v_d, s.paused_at
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Resume on or after the pause date.';
        END IF;
        UPDATE billing.subscription x
        SET status = 'active', next_bill_date = v_d, paused_at = NULL, updated_at = billing.now()
        WHERE x.account_id = s.account_id AND x.subscription_id = s.subscription_id;
    END IF;
    PERFORM billing._event(s.account_id, 'subscription.resumed',
                           jsonb_build_object('subscription_id', s.subscription_id, 'resume_date', v_d));
    IF v_d IS NOT NULL AND v_d <= billing.today(a.timezone) THEN
        PERFORM billing._bill(ARRAY[s.account_id], ARRAY[s.subscription_id], NULL, billing.now(), 'cycle');
    END IF;
END $$;
COMMENT ON FUNCTION billing.resume_subscription(bigint, bigint, date) IS
    'resumes a paused subscription on resume_date (default today): the period it falls in is billed prorated '
    'from that day, at once when due; a pause not yet begun is simply dropped';

CREATE FUNCTION billing.record_usage(account_id bigint, subscription_item_id bigint, quantity numeric,
                                     idempotency_key text, occurred_at timestamptz DEFAULT NULL,
                                     value text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    i billing.subscription_item;
    v_tz text;
    v_usage_type text;
    v_at timestamptz := coalesce(occurred_at, billing.now());
    v_date date;
    v_id bigint;
    e billing.usage_event;
BEGIN
    SELECT * INTO i FROM billing.subscription_item x
    WHERE x.account_id = record_usage.account_id AND x.subscription_item_id = record_usage.subscription_item_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription item % of account % does not exist', coalesce(subscription_item_id::text, 'NULL'),
            coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'billing.subscription_item lists the items.';
    END IF;
    SELECT p.usage_type INTO v_usage_type FROM billing.price p WHERE p.price_id = i.price_id;
    IF v_usage_type <> 'metered' THEN
        RAISE EXCEPTION 'subscription item % has a licensed price, not a metered one', subscription_item_id
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Change its quantity with billing.change_subscription.';
    END IF;
    IF quantity IS NULL OR quantity < 0 THEN
        RAISE EXCEPTION 'usage quantity must be zero or more, not %', coalesce(quantity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record corrections as credits.';
    END IF;
    IF idempotency_key IS NULL OR idempotency_key = '' THEN
        RAISE EXCEPTION 'usage needs an idempotency key'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the event in your system.';
    END IF;
    SELECT a.timezone INTO v_tz FROM billing.account a WHERE a.account_id = i.account_id;
    v_date := billing.today(v_tz, v_at);
    IF v_date < i.started_on OR v_date >= i.ended_on THEN
        RAISE EXCEPTION 'usage on % is outside subscription item %''s time [%, %)', v_date, subscription_item_id,
            i.started_on, coalesce(i.ended_on::text, 'open')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Record it on the item that was current then.';
    END IF;
    INSERT INTO billing.usage_event AS x (account_id, subscription_item_id, quantity, value, occurred_at, usage_date,
                                          idempotency_key)
    VALUES (i.account_id, i.subscription_item_id, quantity, value, v_at, v_date, idempotency_key)
    ON CONFLICT ON CONSTRAINT usage_event_account_id_idempotency_key_key DO NOTHING
    RETURNING x.usage_event_id INTO v_id;
    IF v_id IS NULL THEN
        SELECT * INTO e FROM billing.usage_event x
        WHERE x.account_id = i.account_id AND x.idempotency_key = record_usage.idempotency_key;
        IF e.subscription_item_id <> i.subscription_item_id OR e.quantity <> quantity
           OR e.value IS DISTINCT FROM record_usage.value
           OR (record_usage.occurred_at IS NOT NULL AND e.occurred_at <> record_usage.occurred_at) THEN
            RAISE EXCEPTION 'idempotency key "%" was already used for other usage (event %)', idempotency_key,
                e.usage_event_id
                USING ERRCODE = 'unique_violation', HINT = 'Use a new key for new usage.';
        END IF;
        v_id := e.usage_event_id;
    END IF;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.record_usage(bigint, bigint, numeric, text, timestamptz, text) IS
    'records usage of a metered item once per idempotency key (the same key again returns the same event, with '
    'other content it is an error); a late event for a billed period goes on the next invoice';

-- sql/install/50_invoicing.sql
-- Invoices, invoice lines, number series, the outbox and the cycle run log.
--
-- An invoice is finalized the moment billing inserts it from the cycle: it
-- is inserted with status 'open', its gapless number and its totals in one
-- statement (billing._bill), so there is no draft to forget.  A hook that
-- must see every finalized invoice (the ledger) is a statement-level AFTER
-- INSERT trigger on billing.invoice with a transition table; an invoice
-- whose total is zero is inserted 'paid'.

-- One counter per entity and series: the last number handed out.  Numbers
-- are taken by INSERT .. ON CONFLICT DO UPDATE in the transaction that
-- inserts the invoices, so the row lock serializes concurrent finalization
-- and a rollback gives the numbers back: no gaps, no reuse.
CREATE TABLE billing.invoice_number_series (
    entity_id   bigint NOT NULL REFERENCES billing.billing_entity,
    series      text NOT NULL,
    last_number bigint NOT NULL CHECK (last_number >= 0),
    PRIMARY KEY (entity_id, series)
);
COMMENT ON TABLE billing.invoice_number_series IS
    'the last invoice number handed out per billing entity and series (gapless)';

CREATE TABLE billing.invoice (
    account_id      bigint NOT NULL REFERENCES billing.account,
    invoice_id      bigint GENERATED BY DEFAULT AS IDENTITY,
    -- the account's entity, copied when the invoice is made (no foreign key
    -- of its own: the account's holds it, and it costs a check per invoice)
    entity_id       bigint NOT NULL,
    subscription_id bigint,
    number          text,
    status          text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    billing_reason  text NOT NULL
                    CHECK (billing_reason IN ('subscription_cycle', 'subscription_update',
                                              'subscription_cancel', 'manual')),
    currency        billing.currency_code NOT NULL,
    subtotal        billing.amount NOT NULL,
    discount        billing.amount NOT NULL,
    tax             billing.amount NOT NULL,
    total           billing.amount NOT NULL,
    amount_paid     billing.amount NOT NULL,
    amount_due      billing.amount NOT NULL,
    issue_date      date NOT NULL,
    due_date        date NOT NULL,
    period_start    date,
    period_end      date,
    cycle_run_id    bigint,
    created_at      timestamptz NOT NULL DEFAULT billing.now(),
    finalized_at    timestamptz,
    metadata        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (account_id, invoice_id),
    FOREIGN KEY (account_id, subscription_id) REFERENCES billing.subscription,
    CHECK ((status = 'draft') = (number IS NULL)),
    CHECK ((status = 'draft') = (finalized_at IS NULL)),
    CHECK (due_date >= issue_date)
);
COMMENT ON TABLE billing.invoice IS
    'an invoice: status draft, open, paid, void or uncollectible; totals as billing.amount, equal to the sum of its lines';
COMMENT ON COLUMN billing.invoice.subtotal IS 'sum of the charge and credit lines (every kind but discount and tax)';
COMMENT ON COLUMN billing.invoice.discount IS 'sum of the discount lines (negative or zero)';
COMMENT ON COLUMN billing.invoice.tax IS 'sum of the tax lines, exclusive and inclusive';
COMMENT ON COLUMN billing.invoice.total IS
    'subtotal + discount + exclusive tax: the sum of the lines that are not inclusive tax';
-- Numbers are unique per entity.  (Under Citus, with invoice distributed by
-- account_id, this index cannot exist; the counter keeps numbers unique.)
CREATE UNIQUE INDEX invoice_number ON billing.invoice (entity_id, number);
CREATE INDEX ON billing.invoice (account_id, subscription_id, issue_date);

-- A line.  kind: subscription (a recurring period in advance), proration,
-- usage (a metered period in arrears), setup_fee, discount, tax, late_fee,
-- credit.  tax_inclusive marks a tax line that is contained in the lines'
-- amounts and so is not added to the total.
CREATE TABLE billing.invoice_line (
    account_id           bigint NOT NULL,
    invoice_line_id      bigint GENERATED BY DEFAULT AS IDENTITY,
    invoice_id           bigint NOT NULL,
    kind                 text NOT NULL
                         CHECK (kind IN ('subscription', 'proration', 'usage', 'setup_fee',
                                         'discount', 'tax', 'late_fee', 'credit')),
    description          text NOT NULL,
    subscription_id      bigint,
    subscription_item_id bigint,
    price_id             bigint,
    quantity             numeric,
    unit_amount          numeric,
    amount               billing.amount NOT NULL,
    period_start         date,
    period_end           date,
    tax_rate_id          bigint,
    tax_inclusive        boolean NOT NULL DEFAULT false,
    source               text,
    PRIMARY KEY (account_id, invoice_line_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice,
    CHECK (tax_inclusive IS FALSE OR kind = 'tax'),
    CHECK (period_end IS NULL OR period_end >= period_start)
);
COMMENT ON TABLE billing.invoice_line IS
    'a line of an invoice: kind, quantity, unit price, amount, period and source';
CREATE INDEX ON billing.invoice_line (account_id, invoice_id);
-- Invariant 1: one recurring line per subscription item and period, whatever
-- runs concurrently or is retried.
CREATE UNIQUE INDEX invoice_line_one_per_item_period
    ON billing.invoice_line (account_id, subscription_item_id, period_start)
    WHERE kind = 'subscription';
-- Usage: one line per item and usage period on an invoice (a late event for
-- a billed period adds the difference on a later invoice).
CREATE UNIQUE INDEX invoice_line_usage_per_invoice
    ON billing.invoice_line (account_id, subscription_item_id, period_start, invoice_id)
    WHERE kind = 'usage';

-- The outbox: events for email, CRM and ERP workers, woken by
-- NOTIFY billing_events (payload: the number of new events).  A consumer
-- reads billing.outbox WHERE processed_at IS NULL and marks what it handled
-- with billing.mark_events_done.
CREATE TABLE billing.outbox (
    account_id   bigint NOT NULL,
    event_id     bigint GENERATED BY DEFAULT AS IDENTITY,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT billing.now(),
    processed_at timestamptz,
    PRIMARY KEY (account_id, event_id)
);
COMMENT ON TABLE billing.outbox IS
    'events for integrations (invoice.finalized, subscription.created/updated/canceled/paused/resumed, '
    'trial.ending); processed_at is set by billing.mark_events_done';
CREATE INDEX outbox_pending ON billing.outbox (event_id) WHERE processed_at IS NULL;

-- One row per call of billing.run_cycle.
CREATE TABLE billing.cycle_run (
    cycle_run_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    as_of         date,
    at            timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'done_with_errors')),
    batches       integer NOT NULL DEFAULT 0,
    subscriptions integer NOT NULL DEFAULT 0,
    invoices      integer NOT NULL DEFAULT 0,
    lines         integer NOT NULL DEFAULT 0,
    errors        jsonb NOT NULL DEFAULT '[]',
    duration      interval GENERATED ALWAYS AS (finished_at - started_at) STORED
);
COMMENT ON TABLE billing.cycle_run IS
    'the log of billing.run_cycle: as_of (NULL: each account''s today), counts, duration, errors; '
    'a run killed midway stays ''running''';

-- One call per statement: pg_extension_config_dump updates pg_extension.
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_number_series', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_line', '');
SELECT pg_catalog.pg_extension_config_dump('billing.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('billing.cycle_run', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_invoice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_line_invoice_line_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.outbox_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.cycle_run_cycle_run_id_seq', '');

-- ---------------------------------------------------------------------------
-- What is due.  One set-based computation decides every line: the cycle
-- (billing._bill) inserts its rows, billing.preview_invoice returns them.
-- So a preview is the invoice the cycle later makes (invariant 7) by
-- construction.
--
-- A boundary is one invoice of one subscription:
--   * each period of the subscription's cycle that starts on or after
--     next_bill_date and on or before the as_of date (the account's today
--     unless given): its recurring lines in advance, the first period
--     clipped to start at next_bill_date and prorated;
--   * a scheduled cancellation or pause reached by as_of: no recurring
--     lines, the subscription ends there;
--   * mode 'now' (a change invoiced immediately, an immediate
--     cancellation): one boundary at as_of with no recurring lines.
-- Each boundary also carries the unbilled usage dated before it (and on or
-- after the previous boundary of the same call) and, the first one, the
-- pending items.

CREATE FUNCTION billing._due_boundaries(accounts bigint[], subscriptions bigint[], as_of date,
                                        at timestamptz, mode text, assign_ids boolean DEFAULT false)
RETURNS TABLE (account_id bigint, subscription_id bigint, boundary date, seq bigint, n bigint,
               cycle_start date, cycle_end date, usage_from date, with_usage boolean, ends text,
               billing_reason text, as_of_date date, anchor date, cadence interval, currency text,
               tax_exempt boolean, account_tax_rate_id bigint, coupon_id bigint, invoice_id bigint)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH s AS (
        SELECT s.account_id, s.subscription_id, s.anchor, s.cadence, s.next_bill_date, s.status,
               s.cancel_at, s.pause_at, least(s.cancel_at, s.pause_at) AS stop,
               s.coupon_id, s.coupon_from, s.coupon_until,
               a.currency, a.tax_exempt, a.tax_rate_id AS account_tax_rate_id,
               CASE WHEN _due_boundaries.mode = 'preview' AND _due_boundaries.as_of IS NULL
                    THEN greatest(s.next_bill_date, billing.today(a.timezone, _due_boundaries.at))
                    ELSE coalesce(_due_boundaries.as_of, billing.today(a.timezone, _due_boundaries.at))
               END AS d
        FROM unnest(accounts, subscriptions) u(account_id, subscription_id)
        JOIN billing.subscription s ON s.account_id = u.account_id AND s.subscription_id = u.subscription_id
        JOIN billing.account a ON a.account_id = s.account_id
    ), b AS (
        -- recurring periods
        SELECT s.*, greatest(lower(p), s.next_bill_date) AS boundary,
               lower(p) AS cycle_start, upper(p) AS cycle_end, NULL::text AS ends,
               true AS with_usage, 'subscription_cycle' AS billing_reason
        FROM s CROSS JOIN LATERAL billing.periods_between(s.anchor, s.cadence, daterange(s.next_bill_date, s.d, '[]')) p
        WHERE _due_boundaries.mode IN ('cycle', 'preview') AND s.next_bill_date <= s.d
          AND greatest(lower(p), s.next_bill_date) <= s.d
          AND (s.stop IS NULL OR greatest(lower(p), s.next_bill_date) < s.stop)
        UNION ALL
        -- a scheduled cancellation or pause
        SELECT s.*, s.stop, NULL, NULL,
               CASE WHEN s.stop = s.cancel_at THEN 'canceled' ELSE 'paused' END,
               true, CASE WHEN s.stop = s.cancel_at THEN 'subscription_cancel' ELSE 'subscription_cycle' END
        FROM s
        WHERE _due_boundaries.mode IN ('cycle', 'preview') AND s.next_bill_date <= s.d AND s.stop <= s.d
        UNION ALL
        -- an invoice now: usage only when the subscription has ended
        SELECT s.*, s.d, NULL, NULL, NULL,
               s.status = 'canceled',
               CASE WHEN s.status = 'canceled' THEN 'subscription_cancel' ELSE 'subscription_update' END
        FROM s
        WHERE _due_boundaries.mode = 'now'
    )
    SELECT b.account_id, b.subscription_id, b.boundary,
           row_number() OVER w, count(*) OVER (PARTITION BY b.account_id, b.subscription_id),
           b.cycle_start, b.cycle_end, lag(b.boundary) OVER w, b.with_usage, b.ends, b.billing_reason, b.d,
           b.anchor, b.cadence, b.currency, b.tax_exempt, b.account_tax_rate_id,
           -- the coupon, if this invoice is in its time
           CASE WHEN b.boundary >= b.coupon_from AND (b.coupon_until IS NULL OR b.boundary < b.coupon_until)
                THEN b.coupon_id END,
           -- the invoice's id, when the cycle is going to insert it
           CASE WHEN assign_ids THEN nextval('billing.invoice_invoice_id_seq') END
    FROM b
    WINDOW w AS (PARTITION BY b.account_id, b.subscription_id ORDER BY b.boundary, b.ends NULLS FIRST)
$$;
COMMENT ON FUNCTION billing._due_boundaries(bigint[], bigint[], date, timestamptz, text, boolean) IS
    'internal: the invoices due for these subscriptions as of a date (NULL: each account''s today at at), '
    'one row per invoice; mode cycle, preview or now; assign_ids takes an invoice id for each';

-- Every line of every invoice due, with its invoice key (account_id,
-- subscription_id, boundary).  Line amounts:
--   recurring  R(price value(quantity)), prorated by billing.prorate over
--              the cycle period when the period is clipped
--   usage      R(price value(aggregate of the usage period's events so far))
--              minus what earlier invoices billed for that item and period
--   discount   per tax rate group: -R(percent x group net), or amount_off
--              (at most the net) split over the groups by billing.allocate
--   tax        per tax rate: R(net x rate / 100) exclusive,
--              R(net x rate / (100 + rate)) inclusive
-- where R rounds once to the currency's minor unit by billing.rounding.
-- Each step carries the invoice's columns along instead of joining back to
-- the boundaries: a join of two CTEs has no index and no estimate.
CREATE FUNCTION billing._due_lines(accounts bigint[], subscriptions bigint[], as_of date,
                                   at timestamptz, mode text, assign_ids boolean DEFAULT false)
RETURNS TABLE (account_id bigint, subscription_id bigint, boundary date, billing_reason text,
               as_of_date date, invoice_id bigint, cycle_end date, ends text, line_no bigint, kind text, description text, subscription_item_id bigint,
               price_id bigint, quantity numeric, unit_amount numeric, amount billing.amount,
               period_start date, period_end date, tax_rate_id bigint, tax_inclusive boolean, source text,
               usage_event_ids bigint[], pending_item_id bigint)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH b AS MATERIALIZED (
        SELECT * FROM billing._due_boundaries(accounts, subscriptions, as_of, at, mode, assign_ids)
    ), recurring AS (
        SELECT b.account_id, b.subscription_id, b.boundary, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end AS boundary_cycle_end, b.ends, b.currency, b.coupon_id, 1 AS sort, 'subscription'::text AS kind,
               pr.name || coalesce(' (' || p.nickname || ')', '') AS description,
               i.subscription_item_id, i.price_id, i.quantity, p.unit_amount,
               CASE WHEN b.boundary = b.cycle_start THEN full_amount
                    ELSE billing.prorate(full_amount, daterange(b.cycle_start, b.cycle_end),
                                         daterange(b.boundary, b.cycle_end))
               END AS amount,
               b.boundary AS period_start, b.cycle_end AS period_end,
               CASE WHEN b.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, b.account_tax_rate_id) END AS tax_rate_id,
               'cycle'::text AS source, NULL::bigint[] AS usage_event_ids, NULL::bigint AS pending_item_id
        FROM b
        JOIN billing.subscription_item i
          ON i.account_id = b.account_id AND i.subscription_id = b.subscription_id
         AND i.started_on <= b.boundary AND (i.ended_on IS NULL OR i.ended_on > b.boundary)
        JOIN billing.price p ON p.price_id = i.price_id AND p.usage_type = 'licensed'
        JOIN billing.product pr ON pr.product_id = p.product_id
        CROSS JOIN LATERAL (SELECT billing.round_amount(
                                CASE p.scheme WHEN 'flat' THEN p.unit_amount
                                              WHEN 'per_unit' THEN p.unit_amount * i.quantity
                                              ELSE billing._price_value(p.price_id, p.scheme, p.unit_amount,
                                                                        p.package_size, i.quantity) END,
                                b.currency) AS full_amount) f
        WHERE b.cycle_start IS NOT NULL
    ), new_usage AS (
        -- the unbilled events each invoice takes, by item and usage period
        SELECT b.account_id, b.subscription_id, b.boundary, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end AS boundary_cycle_end, b.ends, b.currency,
               b.coupon_id, b.tax_exempt, b.account_tax_rate_id, e.subscription_item_id,
               billing.period_containing(b.anchor, b.cadence, e.usage_date) AS up,
               array_agg(e.usage_event_id ORDER BY e.usage_event_id) AS ids
        FROM b
        JOIN billing.subscription_item i ON i.account_id = b.account_id AND i.subscription_id = b.subscription_id
        JOIN billing.usage_event e
          ON e.account_id = i.account_id AND e.subscription_item_id = i.subscription_item_id
         AND e.invoice_id IS NULL AND e.usage_date < b.boundary
         AND (b.usage_from IS NULL OR e.usage_date >= b.usage_from)
        WHERE b.with_usage
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
    ), usage AS (
        SELECT u.account_id, u.subscription_id, u.boundary, u.billing_reason, u.as_of_date, u.invoice_id,
               u.boundary_cycle_end, u.ends, u.currency, u.coupon_id, 2 AS sort, 'usage'::text AS kind,
               pr.name || coalesce(' (' || p.nickname || ')', '') || ' usage' AS description,
               u.subscription_item_id, p.price_id, q.total - coalesce(prev.quantity, 0) AS quantity,
               p.unit_amount,
               billing.round_amount(billing._price_value(p.price_id, p.scheme, p.unit_amount, p.package_size, q.total),
                                    u.currency)
                 - coalesce(prev.amount, billing.from_minor_units(0, u.currency)) AS amount,
               lower(u.up) AS period_start, least(upper(u.up), u.boundary) AS period_end,
               CASE WHEN u.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, u.account_tax_rate_id) END,
               'usage ' || p.usage_aggregation, u.ids, NULL::bigint
        FROM new_usage u
        JOIN billing.subscription_item i
          ON i.account_id = u.account_id AND i.subscription_item_id = u.subscription_item_id
        JOIN billing.price p ON p.price_id = i.price_id
        JOIN billing.product pr ON pr.product_id = p.product_id
        -- the aggregate over every event of the usage period up to the boundary
        CROSS JOIN LATERAL (
            SELECT CASE p.usage_aggregation
                   WHEN 'sum' THEN coalesce(sum(e.quantity), 0)
                   WHEN 'max' THEN coalesce(max(e.quantity), 0)
                   WHEN 'count' THEN count(*)
                   WHEN 'unique_count' THEN count(DISTINCT e.value)
                   ELSE coalesce((array_agg(e.quantity ORDER BY e.occurred_at DESC, e.usage_event_id DESC))[1], 0)
                   END AS total
            FROM billing.usage_event e
            WHERE e.account_id = u.account_id AND e.subscription_item_id = u.subscription_item_id
              AND e.usage_date >= lower(u.up) AND e.usage_date < least(upper(u.up), u.boundary)
              AND (e.invoice_id IS NOT NULL OR e.usage_event_id = ANY (u.ids))
        ) q
        -- what earlier invoices billed for the same item and usage period
        LEFT JOIN LATERAL (
            SELECT sum(l.quantity) AS quantity, billing.sum(l.amount) AS amount
            FROM billing.invoice_line l
            WHERE l.account_id = u.account_id AND l.subscription_item_id = u.subscription_item_id
              AND l.kind = 'usage' AND l.period_start = lower(u.up)
        ) prev ON true
    ), pending AS (
        SELECT b.account_id, b.subscription_id, b.boundary, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end, b.ends, b.currency, b.coupon_id, 3 AS sort, pi.kind, pi.description,
               pi.subscription_item_id, pi.price_id, pi.quantity, pi.unit_amount, pi.amount,
               pi.period_start, pi.period_end,
               CASE WHEN b.tax_exempt THEN NULL ELSE coalesce(p.tax_rate_id, b.account_tax_rate_id) END,
               'pending_item ' || pi.pending_item_id, NULL::bigint[], pi.pending_item_id
        FROM b
        JOIN billing.pending_item pi
          ON pi.account_id = b.account_id AND pi.subscription_id = b.subscription_id AND pi.invoice_id IS NULL
        LEFT JOIN billing.price p ON p.price_id = pi.price_id
        WHERE b.seq = 1
    ), charges AS MATERIALIZED (
        SELECT * FROM recurring UNION ALL SELECT * FROM usage UNION ALL SELECT * FROM pending
    ), groups AS (
        -- the net of each invoice per tax rate, and the coupon that applies
        SELECT c.account_id, c.subscription_id, c.boundary, c.billing_reason, c.as_of_date, c.invoice_id,
               c.boundary_cycle_end, c.ends, c.currency, c.coupon_id, c.tax_rate_id, billing.sum(c.amount) AS net
        FROM charges c
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    ), percent_or_none AS (
        SELECT g.*, cp.code, cp.percent_off, NULL::billing.amount AS amount_off,
               CASE WHEN cp.percent_off IS NOT NULL
                    THEN -billing.round_amount(to_numeric(g.net) * cp.percent_off / 100, g.currency)
               END AS discount
        FROM groups g
        LEFT JOIN billing.coupon cp ON cp.coupon_id = g.coupon_id
        WHERE cp.amount_off IS NULL
    ), fixed_amount AS (
        -- amount_off, at most the invoice's net, split over its tax groups
        SELECT f.account_id, f.subscription_id, f.boundary, f.billing_reason, f.as_of_date, f.invoice_id,
               f.boundary_cycle_end, f.ends, f.currency, f.coupon_id, f.tax_rate_id, f.net, f.code,
               NULL::numeric, f.amount_off,
               CASE WHEN f.invoice_net > 0
                    THEN -(billing.allocate(
                             billing.amount(least(to_numeric(f.amount_off), f.invoice_net), f.currency),
                             f.ratios))[f.group_no]
               END
        FROM (SELECT g.*, cp.code, cp.amount_off,
                     row_number() OVER inv AS group_no,
                     array_agg(greatest(to_numeric(g.net), 0)) OVER whole AS ratios,
                     sum(to_numeric(g.net)) OVER whole AS invoice_net
              FROM groups g
              JOIN billing.coupon cp ON cp.coupon_id = g.coupon_id AND cp.amount_off IS NOT NULL
              WINDOW inv AS (PARTITION BY g.account_id, g.subscription_id, g.boundary
                             ORDER BY g.tax_rate_id NULLS FIRST),
                     whole AS (inv ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) f
    ), discounts AS MATERIALIZED (
        SELECT * FROM percent_or_none UNION ALL SELECT * FROM fixed_amount
    ), discount_lines AS (
        SELECT d.account_id, d.subscription_id, d.boundary, d.billing_reason, d.as_of_date, d.invoice_id,
               d.boundary_cycle_end, d.ends, d.currency, d.coupon_id, 4 AS sort, 'discount'::text AS kind,
               'Coupon ' || d.code || CASE WHEN d.percent_off IS NOT NULL
                                           THEN ' (' || trim_scale(d.percent_off) || '% off)'
                                           ELSE ' (' || d.amount_off::text || ' off)' END,
               NULL::bigint, NULL::bigint, NULL::numeric, d.percent_off, d.discount,
               NULL::date, NULL::date, d.tax_rate_id, 'coupon ' || d.code, NULL::bigint[], NULL::bigint
        FROM discounts d
        WHERE d.discount IS NOT NULL
    ), tax_lines AS (
        SELECT d.account_id, d.subscription_id, d.boundary, d.billing_reason, d.as_of_date, d.invoice_id,
               d.boundary_cycle_end, d.ends, d.currency, d.coupon_id, 5 AS sort, 'tax'::text AS kind,
               t.name || ' ' || trim_scale(t.percentage) || '%' || CASE WHEN t.inclusive THEN ' (included)' ELSE '' END,
               NULL::bigint, NULL::bigint, NULL::numeric, t.percentage,
               billing.round_amount(
                   (to_numeric(d.net) + coalesce(to_numeric(d.discount), 0)) * t.percentage
                   / CASE WHEN t.inclusive THEN 100 + t.percentage ELSE 100 END, d.currency),
               NULL::date, NULL::date, d.tax_rate_id, 'tax_rate ' || t.tax_rate_id, NULL::bigint[],
               -- in place of pending_item_id: whether the tax is inclusive
               t.inclusive::integer::bigint
        FROM discounts d
        JOIN billing.tax_rate t ON t.tax_rate_id = d.tax_rate_id
    ), markers AS (
        -- one row of kind 'boundary' per invoice key, lines or not: what
        -- the cycle advances the subscription by
        SELECT b.account_id, b.subscription_id, b.boundary, b.billing_reason, b.as_of_date, b.invoice_id,
               b.cycle_end, b.ends, b.currency, b.coupon_id, 9, 'boundary'::text, NULL::text,
               NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric, NULL::billing.amount,
               NULL::date, NULL::date, NULL::bigint, NULL::text, NULL::bigint[], NULL::bigint
        FROM b
    ), all_lines AS (
        SELECT * FROM charges UNION ALL SELECT * FROM discount_lines UNION ALL SELECT * FROM tax_lines
        UNION ALL SELECT * FROM markers
    )
    SELECT l.account_id, l.subscription_id, l.boundary, l.billing_reason, l.as_of_date, l.invoice_id,
           l.boundary_cycle_end, l.ends,
           row_number() OVER (PARTITION BY l.account_id, l.subscription_id, l.boundary
                              ORDER BY l.sort, l.tax_rate_id NULLS FIRST, l.subscription_item_id, l.period_start,
                                       l.pending_item_id),
           l.kind, l.description, l.subscription_item_id, l.price_id, l.quantity, l.unit_amount, l.amount,
           l.period_start, l.period_end, l.tax_rate_id,
           l.kind = 'tax' AND l.pending_item_id = 1,
           l.source, l.usage_event_ids, CASE WHEN l.kind <> 'tax' THEN l.pending_item_id END
    FROM all_lines l
$$;
COMMENT ON FUNCTION billing._due_lines(bigint[], bigint[], date, timestamptz, text, boolean) IS
    'internal: every line of every invoice due for these subscriptions (see billing._due_boundaries), '
    'and one row of kind boundary per invoice; the cycle inserts them, billing.preview_invoice returns them';

-- Bills these subscriptions as of a date, in one statement: the lines of
-- billing._due_lines, one invoice per boundary with its totals and its
-- gapless number (finalized: status open, or paid when the total is zero),
-- the usage events and pending items marked with their invoice, the
-- subscriptions advanced (mode cycle), and an invoice.finalized event per
-- invoice.  The caller holds the subscriptions' row locks.  The unique
-- index invoice_line_one_per_item_period turns any double bill into an
-- error that rolls the whole statement back (no ON CONFLICT DO NOTHING: an
-- invoice must never total lines it does not have).
CREATE FUNCTION billing._bill(accounts bigint[], subscriptions bigint[], as_of date, at timestamptz,
                              mode text, cycle_run_id bigint DEFAULT NULL,
                              OUT invoices integer, OUT lines integer)
LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH due AS MATERIALIZED (
        SELECT * FROM billing._due_lines(accounts, subscriptions, as_of, at, mode, true)
    ), totals AS (
        SELECT d.invoice_id, min(d.account_id) AS account_id, min(d.subscription_id) AS subscription_id,
               min(d.boundary) AS boundary, min(d.billing_reason) AS billing_reason,
               min(d.as_of_date) AS issue_date,
               billing.sum(d.amount) FILTER (WHERE d.kind NOT IN ('discount', 'tax')) AS subtotal,
               billing.sum(d.amount) FILTER (WHERE d.kind = 'discount') AS discount,
               billing.sum(d.amount) FILTER (WHERE d.kind = 'tax') AS tax,
               billing.sum(d.amount) FILTER (WHERE NOT d.tax_inclusive) AS total,
               min(d.period_start) FILTER (WHERE d.kind = 'subscription') AS period_start,
               max(d.period_end) FILTER (WHERE d.kind = 'subscription') AS period_end
        FROM due d
        WHERE d.kind <> 'boundary'
        GROUP BY d.invoice_id
    ), inv AS (
        SELECT t.*, a.entity_id, a.currency, t.issue_date + a.payment_terms_days AS due_date,
               e.invoice_prefix || CASE WHEN e.number_per_year THEN '-' || extract(year FROM t.issue_date) ELSE '' END
                   AS series,
               e.number_digits,
               billing.from_minor_units(0, a.currency) AS zero
        FROM totals t
        JOIN billing.account a ON a.account_id = t.account_id
        JOIN billing.billing_entity e ON e.entity_id = a.entity_id
    ), numbered AS MATERIALIZED (
        SELECT i.*, row_number() OVER (PARTITION BY i.entity_id, i.series
                                       ORDER BY i.account_id, i.subscription_id, i.boundary) AS rn,
               count(*) OVER (PARTITION BY i.entity_id, i.series) AS in_series
        FROM inv i
    ), counter AS (
        -- takes the numbers: the row lock serializes concurrent finalization
        INSERT INTO billing.invoice_number_series AS c (entity_id, series, last_number)
        SELECT entity_id, series, count(*) FROM numbered GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (entity_id, series) DO UPDATE SET last_number = c.last_number + excluded.last_number
        RETURNING c.entity_id, c.series, c.last_number
    ), ins_invoice AS (
        INSERT INTO billing.invoice (account_id, invoice_id, entity_id, subscription_id, number, status,
                                     billing_reason, currency, subtotal, discount, tax, total, amount_paid,
                                     amount_due, issue_date, due_date, period_start, period_end, cycle_run_id,
                                     finalized_at)
        SELECT n.account_id, n.invoice_id, n.entity_id, n.subscription_id,
               n.series || '-' || lpad(x.seq, greatest(n.number_digits, length(x.seq)), '0'),
               CASE WHEN coalesce(n.total, n.zero) = n.zero THEN 'paid' ELSE 'open' END,
               n.billing_reason, n.currency, coalesce(n.subtotal, n.zero), coalesce(n.discount, n.zero),
               coalesce(n.tax, n.zero), coalesce(n.total, n.zero), n.zero,
               CASE WHEN coalesce(n.total, n.zero) = n.zero THEN n.zero ELSE n.total END,
               n.issue_date, n.due_date, n.period_start, n.period_end, _bill.cycle_run_id, billing.now()
        FROM numbered n
        JOIN counter c ON c.entity_id = n.entity_id AND c.series = n.series
        -- zero-padded to number_digits, never cut: 1000000 stays 1000000
        CROSS JOIN LATERAL (SELECT (c.last_number - n.in_series + n.rn)::text AS seq) x
        RETURNING account_id, invoice_id, number, subscription_id, total, due_date
    ), ins_lines AS (
        INSERT INTO billing.invoice_line (account_id, invoice_id, kind, description, subscription_id,
                                          subscription_item_id, price_id, quantity, unit_amount, amount,
                                          period_start, period_end, tax_rate_id, tax_inclusive, source)
        SELECT d.account_id, d.invoice_id, d.kind, d.description, d.subscription_id, d.subscription_item_id,
               d.price_id, d.quantity, d.unit_amount, d.amount, d.period_start, d.period_end, d.tax_rate_id,
               d.tax_inclusive, d.source
        FROM due d
        WHERE d.kind <> 'boundary'
        ORDER BY d.invoice_id, d.line_no
        RETURNING 1
    ), mark_usage AS (
        UPDATE billing.usage_event e SET invoice_id = x.invoice_id
        FROM (SELECT d.account_id, d.invoice_id, unnest(d.usage_event_ids) AS usage_event_id
              FROM due d
              WHERE d.usage_event_ids IS NOT NULL) x
        WHERE e.account_id = x.account_id AND e.usage_event_id = x.usage_event_id
        RETURNING 1
    ), mark_pending AS (
        UPDATE billing.pending_item p SET invoice_id = d.invoice_id
        FROM due d
        WHERE d.pending_item_id IS NOT NULL
          AND p.account_id = d.account_id AND p.pending_item_id = d.pending_item_id
        RETURNING 1
    ), advance AS (
        UPDATE billing.subscription s
        SET next_bill_date = CASE WHEN x.ends IS NULL THEN x.last_end END,
            current_period_start = coalesce(x.last_start, s.current_period_start),
            current_period_end = coalesce(x.last_end, s.current_period_end),
            status = CASE WHEN x.ends IS NOT NULL THEN x.ends
                          WHEN s.status = 'trialing' THEN 'active' ELSE s.status END,
            canceled_at = CASE WHEN x.ends = 'canceled' THEN x.stop ELSE s.canceled_at END,
            paused_at = CASE WHEN x.ends = 'paused' THEN x.stop ELSE s.paused_at END,
            pause_at = CASE WHEN x.ends = 'paused' THEN NULL ELSE s.pause_at END,
            updated_at = billing.now()
        FROM (SELECT d.account_id, d.subscription_id,
                     max(d.boundary) FILTER (WHERE d.cycle_end IS NOT NULL) AS last_start,
                     max(d.cycle_end) AS last_end,
                     max(d.ends) AS ends, max(d.boundary) FILTER (WHERE d.ends IS NOT NULL) AS stop
              FROM due d WHERE d.kind = 'boundary' GROUP BY 1, 2) x
        WHERE _bill.mode = 'cycle' AND s.account_id = x.account_id AND s.subscription_id = x.subscription_id
        RETURNING s.account_id, s.subscription_id, s.status, x.ends
    ), events AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT i.account_id, 'invoice.finalized',
               jsonb_build_object('invoice_id', i.invoice_id, 'number', i.number,
                                  'subscription_id', i.subscription_id, 'total', i.total::text,
                                  'due_date', i.due_date)
        FROM ins_invoice i
        UNION ALL
        SELECT a.account_id, 'subscription.' || a.ends, jsonb_build_object('subscription_id', a.subscription_id)
        FROM advance a WHERE a.ends IS NOT NULL
        RETURNING 1
    )
    SELECT (SELECT count(*)::integer FROM ins_invoice), (SELECT count(*)::integer FROM ins_lines)
    FROM (SELECT (SELECT count(*) FROM mark_usage) + (SELECT count(*) FROM mark_pending)
                 + (SELECT count(*) FROM events)) AS force_all
$$;
COMMENT ON FUNCTION billing._bill(bigint[], bigint[], date, timestamptz, text, bigint) IS
    'internal: creates and finalizes the invoices due for these (locked) subscriptions, marks usage and '
    'pending items, advances the subscriptions (mode cycle) and writes the outbox, in one statement';

-- One batch of the cycle: picks up to batch_size due subscriptions that no
-- other session holds (FOR UPDATE SKIP LOCKED), in the order of the queue
-- index after the key where this session's previous batch stopped, and
-- bills them in one statement.  If that fails, each subscription of the
-- batch is billed on its own so that one bad subscription cannot stop the
-- others; those that still fail are logged in errors.  Returns the key of
-- the last subscription picked, where the next batch starts.
CREATE FUNCTION billing._run_batch(cycle_run_id bigint, as_of date, at timestamptz, batch_size integer,
                                   INOUT after_date date, INOUT after_account bigint, INOUT after_subscription bigint,
                                   OUT subscriptions integer, OUT invoices integer, OUT lines integer,
                                   OUT errors jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v_accounts bigint[];
    v_subs bigint[];
    v_dates date[];
    -- no account is ahead of UTC+14: an index bound for every time zone
    v_latest date := coalesce(as_of, billing.today('Etc/GMT-14', at));
    r record;
    v_state text;
    v_msg text;
BEGIN
    errors := '[]';
    invoices := 0;
    lines := 0;
    SELECT array_agg(x.account_id ORDER BY x.next_bill_date, x.account_id, x.subscription_id),
           array_agg(x.subscription_id ORDER BY x.next_bill_date, x.account_id, x.subscription_id),
           array_agg(x.next_bill_date ORDER BY x.next_bill_date, x.account_id, x.subscription_id)
    INTO v_accounts, v_subs, v_dates
    FROM (SELECT s.next_bill_date, s.account_id, s.subscription_id
          FROM billing.subscription s
          JOIN billing.account a ON a.account_id = s.account_id
          WHERE s.next_bill_date IS NOT NULL AND s.next_bill_date <= v_latest
            AND (s.next_bill_date, s.account_id, s.subscription_id)
                > (coalesce(after_date, '-infinity'), coalesce(after_account, 0), coalesce(after_subscription, 0))
            AND s.next_bill_date <= coalesce(as_of, billing.today(a.timezone, at))
          ORDER BY s.next_bill_date, s.account_id, s.subscription_id
          LIMIT batch_size
          FOR UPDATE OF s SKIP LOCKED) x;
    subscriptions := coalesce(cardinality(v_subs), 0);
    IF subscriptions = 0 THEN
        RETURN;
    END IF;
    after_date := v_dates[subscriptions];
    after_account := v_accounts[subscriptions];
    after_subscription := v_subs[subscriptions];
    BEGIN
        SELECT b.invoices, b.lines INTO invoices, lines
        FROM billing._bill(v_accounts, v_subs, as_of, at, 'cycle', cycle_run_id) b;
    EXCEPTION WHEN OTHERS THEN
        -- the slow path, only after an error: one subscription at a time
        FOR i IN 1 .. cardinality(v_subs) LOOP
            BEGIN
                SELECT * INTO r FROM billing._bill(ARRAY[v_accounts[i]], ARRAY[v_subs[i]], as_of, at, 'cycle',
                                                   cycle_run_id);
                invoices := invoices + r.invoices;
                lines := lines + r.lines;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
                errors := errors || jsonb_build_object('account_id', v_accounts[i], 'subscription_id', v_subs[i],
                                                       'sqlstate', v_state, 'message', v_msg);
            END;
        END LOOP;
    END;
END $$;
COMMENT ON FUNCTION billing._run_batch(bigint, date, timestamptz, integer, date, bigint, bigint) IS
    'internal: one committed batch of billing.run_cycle, starting after the given queue key';

-- trial.ending events, once per subscription, days_before its trial ends.
CREATE FUNCTION billing._trial_notices(as_of date, at timestamptz, days_before integer DEFAULT 3)
RETURNS integer LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH n AS (
        UPDATE billing.subscription s SET trial_ending_notified = true
        FROM billing.account a
        WHERE a.account_id = s.account_id AND s.status = 'trialing' AND NOT s.trial_ending_notified
          AND s.trial_end <= coalesce(as_of, billing.today(a.timezone, at)) + days_before
        RETURNING s.account_id, s.subscription_id, s.trial_end
    ), e AS (
        INSERT INTO billing.outbox (account_id, event_type, payload)
        SELECT account_id, 'trial.ending', jsonb_build_object('subscription_id', subscription_id, 'trial_end', trial_end)
        FROM n
        RETURNING 1
    )
    SELECT count(*)::integer FROM e
$$;
COMMENT ON FUNCTION billing._trial_notices(date, timestamptz, integer) IS
    'internal: writes one trial.ending event per trialing subscription whose trial ends within days_before days';

-- The cycle.  A PROCEDURE so that it commits after each batch; it has no
-- SET search_path (a procedure with one cannot commit), so its body names
-- everything with its schema and leaves the work to the functions above.
CREATE PROCEDURE billing.run_cycle(as_of date DEFAULT NULL, batch_size integer DEFAULT 1000,
                                   at timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := coalesce(at, billing.now());
    v_run bigint;
    v_after_date date;
    v_after_account bigint;
    v_after_sub bigint;
    r record;
    v_subs integer := 0;
    v_invoices integer := 0;
    v_lines integer := 0;
    v_batches integer := 0;
    v_errors jsonb := '[]';
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default is 1000.';
    END IF;
    INSERT INTO billing.cycle_run (as_of, at, started_at) VALUES (as_of, v_at, pg_catalog.clock_timestamp())
    RETURNING cycle_run_id INTO v_run;
    PERFORM billing._trial_notices(as_of, v_at);
    COMMIT;
    LOOP
        SELECT * INTO r FROM billing._run_batch(v_run, as_of, v_at, batch_size, v_after_date, v_after_account,
                                                v_after_sub);
        EXIT WHEN r.subscriptions OPERATOR(pg_catalog.=) 0;
        v_after_date := r.after_date;
        v_after_account := r.after_account;
        v_after_sub := r.after_subscription;
        v_batches := v_batches OPERATOR(pg_catalog.+) 1;
        v_subs := v_subs OPERATOR(pg_catalog.+) r.subscriptions;
        v_invoices := v_invoices OPERATOR(pg_catalog.+) r.invoices;
        v_lines := v_lines OPERATOR(pg_catalog.+) r.lines;
        v_errors := v_errors OPERATOR(pg_catalog.||) r.errors;
        UPDATE billing.cycle_run
        SET batches = v_batches, subscriptions = v_subs, invoices = v_invoices, lines = v_lines, errors = v_errors
        WHERE cycle_run_id OPERATOR(pg_catalog.=) v_run;
        IF r.invoices OPERATOR(pg_catalog.>) 0 THEN
            PERFORM pg_catalog.pg_notify('billing_events', r.invoices::text);
        END IF;
        COMMIT;
    END LOOP;
    UPDATE billing.cycle_run
    SET finished_at = pg_catalog.clock_timestamp(),
        status = CASE WHEN v_errors OPERATOR(pg_catalog.=) '[]'::jsonb THEN 'done' ELSE 'done_with_errors' END
    WHERE cycle_run_id OPERATOR(pg_catalog.=) v_run;
    COMMIT;
END $$;
COMMENT ON PROCEDURE billing.run_cycle(date, integer, timestamptz) IS
    'bills every subscription whose next period has been reached by as_of (NULL: each account''s today in '
    'its time zone at at, default billing.now()), in committed batches of batch_size, SKIP LOCKED so several '
    'sessions can share a run; logs the run in billing.cycle_run and NOTIFYs billing_events once per batch';

CREATE TYPE billing.preview_line AS (
    subscription_id bigint, invoice_date date, line_no bigint, kind text, description text,
    subscription_item_id bigint, price_id bigint, quantity numeric, unit_amount numeric,
    amount billing.amount, period_start date, period_end date, tax_rate_id bigint, tax_inclusive boolean);
COMMENT ON TYPE billing.preview_line IS 'a line billing.preview_invoice returns';

CREATE FUNCTION billing.preview_invoice(account_id bigint, subscription_id bigint DEFAULT NULL,
                                        as_of date DEFAULT NULL)
RETURNS SETOF billing.preview_line
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    v_accounts bigint[];
    v_subs bigint[];
BEGIN
    IF NOT EXISTS (SELECT FROM billing.account a WHERE a.account_id = preview_invoice.account_id) THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(preview_invoice.account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    SELECT array_agg(s.account_id), array_agg(s.subscription_id) INTO v_accounts, v_subs
    FROM billing.subscription s
    WHERE s.account_id = preview_invoice.account_id
      AND (preview_invoice.subscription_id IS NULL OR s.subscription_id = preview_invoice.subscription_id);
    IF preview_invoice.subscription_id IS NOT NULL AND v_subs IS NULL THEN
        RAISE EXCEPTION 'subscription % of account % does not exist', preview_invoice.subscription_id,
            preview_invoice.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.subscription lists the account''s subscriptions.';
    END IF;
    RETURN QUERY
    SELECT d.subscription_id, d.boundary, d.line_no, d.kind, d.description, d.subscription_item_id, d.price_id,
           d.quantity, d.unit_amount, d.amount, d.period_start, d.period_end, d.tax_rate_id, d.tax_inclusive
    FROM billing._due_lines(coalesce(v_accounts, '{}'), coalesce(v_subs, '{}'), as_of, billing.now(), 'preview') d
    WHERE d.kind <> 'boundary'
    ORDER BY d.subscription_id, d.boundary, d.line_no;
END $$;
COMMENT ON FUNCTION billing.preview_invoice(bigint, bigint, date) IS
    'the lines the cycle will create for an account''s subscriptions (or one), writing nothing: as of as_of, '
    'or by default of each subscription''s next bill date (its today if that has passed); '
    'invoice_date is the boundary each invoice belongs to';

CREATE FUNCTION billing.mark_events_done(event_ids bigint[])
RETURNS integer LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH d AS (
        UPDATE billing.outbox o SET processed_at = billing.now()
        WHERE o.event_id = ANY (event_ids) AND o.processed_at IS NULL
        RETURNING 1
    )
    SELECT count(*)::integer FROM d
$$;
COMMENT ON FUNCTION billing.mark_events_done(bigint[]) IS
    'marks outbox events as processed by a consumer; returns how many were still pending';

-- sql/install/60_ledger.sql
-- The double-entry ledger (invariant 4) and the account's credit balance.
--
-- Every financial event posts one ledger_transaction with two or more
-- ledger_entry rows.  An entry's amount is signed: positive is a debit,
-- negative a credit, so a transaction balances when its entries sum to zero
-- in each currency.  The database enforces it:
--   * after every INSERT statement on ledger_entry, each transaction it
--     touched must sum to zero per currency (23514), so a transaction's
--     entries are posted in one statement;
--   * ledger_transaction and ledger_entry refuse UPDATE, DELETE and TRUNCATE
--     (55000): corrections are new transactions.
--
-- The customer's side of the books (invariant 5) is two ledger accounts:
-- receivable (what open invoices still ask for) and customer_credit (money
-- the customer has with us and has not yet been applied, a liability, so a
-- credit balance).  receivable + customer_credit = amount due on open
-- invoices - unapplied credit, per account.

-- The chart of ledger accounts: a small reference table.
CREATE TABLE billing.ledger_account (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    type        text NOT NULL CHECK (type IN ('asset', 'liability', 'revenue', 'contra_revenue', 'expense')),
    description text NOT NULL
);
COMMENT ON TABLE billing.ledger_account IS
    'the chart of ledger accounts: receivable, customer_credit, cash, revenue, tax_payable, discounts, bad_debt';
INSERT INTO billing.ledger_account (code, name, type, description) VALUES
    ('receivable', 'Accounts receivable', 'asset', 'what open invoices still ask the customer for'),
    ('customer_credit', 'Customer credit', 'liability', 'money received or credited and not yet applied to an invoice'),
    ('cash', 'Cash and clearing', 'asset', 'money received (or paid back) through any payment method'),
    ('revenue', 'Revenue', 'revenue', 'invoiced net amounts (after coupons, before tax)'),
    ('tax_payable', 'Tax payable', 'liability', 'tax invoiced, owed to the tax authority'),
    ('discounts', 'Discounts and credit notes', 'contra_revenue',
     'early-payment discounts and the net part of credit notes and voids'),
    ('bad_debt', 'Bad debt', 'expense', 'invoices written off as uncollectible');

CREATE TABLE billing.ledger_transaction (
    account_id  bigint NOT NULL REFERENCES billing.account,
    txn_id      bigint GENERATED BY DEFAULT AS IDENTITY,
    kind        text NOT NULL CHECK (kind IN ('invoice_finalized', 'payment', 'credit_applied', 'credit_note',
                                              'refund', 'void', 'write_off', 'chargeback',
                                              'early_payment_discount')),
    posted_on   date NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT billing.now(),
    invoice_id  bigint,
    payment_id  bigint,
    source_id   bigint,
    description text NOT NULL,
    PRIMARY KEY (account_id, txn_id)
);
COMMENT ON TABLE billing.ledger_transaction IS
    'one financial event (invoice finalized, payment, credit applied, credit note, refund, void, write-off, '
    'chargeback, early-payment discount); its entries balance per currency; append-only';
COMMENT ON COLUMN billing.ledger_transaction.source_id IS
    'the refund, credit note or chargeback that posted the transaction, by kind';
CREATE INDEX ON billing.ledger_transaction (account_id, posted_on);
CREATE INDEX ON billing.ledger_transaction (account_id, invoice_id) WHERE invoice_id IS NOT NULL;

CREATE TABLE billing.ledger_entry (
    account_id     bigint NOT NULL,
    entry_id       bigint GENERATED BY DEFAULT AS IDENTITY,
    txn_id         bigint NOT NULL,
    -- a CHECK, not a foreign key: every posting would share-lock the same
    -- few ledger_account rows (multixacts under concurrent payments)
    ledger_account text NOT NULL CHECK (ledger_account IN ('receivable', 'customer_credit', 'cash', 'revenue',
                                                           'tax_payable', 'discounts', 'bad_debt')),
    amount         billing.amount NOT NULL CHECK (billing.to_numeric(amount) <> 0),
    PRIMARY KEY (account_id, entry_id),
    FOREIGN KEY (account_id, txn_id) REFERENCES billing.ledger_transaction
);
COMMENT ON TABLE billing.ledger_entry IS
    'one line of a ledger transaction: a ledger account and a signed amount (debit positive, credit negative); '
    'append-only';
CREATE INDEX ON billing.ledger_entry (account_id, txn_id);
CREATE INDEX ON billing.ledger_entry (account_id, ledger_account);

-- The account's unapplied credit, one row per account that ever had any.
-- Its row is also the lock that serializes every money movement of an
-- account (payments, credit applied by the cycle, refunds, credit notes,
-- voids, write-offs): see the lock order in docs/payments.md.
CREATE TABLE billing.account_credit (
    account_id bigint PRIMARY KEY REFERENCES billing.account,
    balance    billing.amount NOT NULL CHECK (billing.to_numeric(balance) >= 0),
    updated_at timestamptz NOT NULL DEFAULT billing.now()
);
COMMENT ON TABLE billing.account_credit IS
    'an account''s unapplied credit (overpayments, credit notes to balance), consumed by its next invoices; '
    'its row lock serializes the account''s money movements';

-- the chart above is the extension's; accounts a user adds are dumped
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_account',
    'WHERE code NOT IN (''receivable'', ''customer_credit'', ''cash'', ''revenue'', ''tax_payable'', ''discounts'', ''bad_debt'')');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_transaction', '');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_entry', '');
SELECT pg_catalog.pg_extension_config_dump('billing.account_credit', '');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_transaction_txn_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_entry_entry_id_seq', '');

-- ---------------------------------------------------------------------------
-- Enforcement.

CREATE FUNCTION billing._ledger_check_balance() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog AS $$
DECLARE
    bad record;
BEGIN
    -- each touched transaction through the (account_id, txn_id) index: a
    -- join to the whole ledger would scan it once per cycle batch
    SELECT n.account_id, n.txn_id, x.currency, x.total
    INTO bad
    FROM (SELECT DISTINCT account_id, txn_id FROM new_entries) n
    CROSS JOIN LATERAL (
        SELECT billing.currency(e.amount) AS currency, billing.sum(e.amount) AS total
        FROM billing.ledger_entry e
        WHERE e.account_id = n.account_id AND e.txn_id = n.txn_id
        GROUP BY 1
    ) x
    WHERE billing.to_numeric(x.total) <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % of account % does not balance: its % entries sum to %',
            bad.txn_id, bad.account_id, bad.currency, bad.total
            USING ERRCODE = 'check_violation',
                  HINT = 'Post all entries of a transaction in one INSERT; debits (positive) must equal credits (negative).';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION billing._ledger_check_balance() IS
    'internal trigger: every ledger transaction an INSERT touched sums to zero per currency (23514)';

CREATE TRIGGER ledger_entry_balanced AFTER INSERT ON billing.ledger_entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing._ledger_check_balance();

CREATE FUNCTION billing._ledger_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'billing.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Correct a posting with a new transaction (credit note, refund, void).';
END $$;
COMMENT ON FUNCTION billing._ledger_append_only() IS
    'internal trigger: refuses UPDATE, DELETE and TRUNCATE on posted ledger rows (55000)';

CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON billing.ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION billing._ledger_append_only();
CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON billing.ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION billing._ledger_append_only();

-- ---------------------------------------------------------------------------
-- Posting invoice finalization.  The cycle inserts invoices already
-- finalized (status open, or paid when the total is zero); an invoice
-- could also become open by an UPDATE from draft.  Statement-level
-- triggers with transition tables post all of them in one statement:
--   receivable  +total
--   revenue     -(total - tax)
--   tax_payable -tax
-- and then let the account's unapplied credit pay the new invoices.

CREATE FUNCTION billing._post_invoices_finalized(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    WITH inv AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.number, i.issue_date, i.total, i.tax
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        WHERE billing.to_numeric(i.total) <> 0 OR billing.to_numeric(i.tax) <> 0
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, description)
        SELECT account_id, 'invoice_finalized', issue_date, invoice_id, 'invoice ' || number FROM inv
        RETURNING account_id, txn_id, invoice_id
    )
    INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
    SELECT t.account_id, t.txn_id, e.ledger_account, e.amount
    FROM txn t
    JOIN inv i ON i.account_id = t.account_id AND i.invoice_id = t.invoice_id
    CROSS JOIN LATERAL (VALUES ('receivable', i.total), ('revenue', -(i.total - i.tax)),
                               ('tax_payable', -i.tax)) e(ledger_account, amount)
    WHERE billing.to_numeric(e.amount) <> 0
$$;
COMMENT ON FUNCTION billing._post_invoices_finalized(bigint[], bigint[]) IS
    'internal: posts one balanced transaction per finalized invoice (receivable, revenue, tax payable)';


-- sql/install/70_payments.sql
-- Payments and their applications to invoices (invariant 2: one payment per
-- idempotency key).
--
-- Lock order, the same in every function that moves an account's money
-- (payments, credit applied by the cycle, refunds, credit notes, voids,
-- write-offs, collection results), so that none of them can deadlock:
--   1. the account's billing.account_credit row (created on first use);
--   2. the account's invoices, oldest due first (due_date, invoice_id), or
--      in the order the caller named them;
--   3. the payment row(s), in payment_id order.
-- The cycle takes the subscription rows and inserts invoices first; its
-- trigger then takes step 1 for the accounts of the batch in account_id
-- order and touches only the invoices it just inserted, which no other
-- session can see yet.

-- Payment methods: a provider's token or reference is stored, never a card
-- or bank number.
CREATE FUNCTION billing.looks_like_card_number(value text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog AS $$
BEGIN
    -- fast path: no run of 13 digits at all (a plpgsql expression, no query)
    IF value !~ '[0-9](?:[ -]?[0-9]){12}' THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT FROM (SELECT regexp_replace(m[1], '[ -]', '', 'g') AS d
                     FROM regexp_matches(value, '([0-9](?:[ -]?[0-9])*)', 'g') m) run
        WHERE length(run.d) BETWEEN 13 AND 19
          AND (SELECT sum(CASE WHEN i % 2 = 0
                               THEN CASE WHEN x * 2 > 9 THEN x * 2 - 9 ELSE x * 2 END
                               ELSE x END) % 10 = 0
               FROM (SELECT i, substr(reverse(run.d), i, 1)::integer AS x
                     FROM generate_series(1, length(run.d)) i) digits));
END $$;
COMMENT ON FUNCTION billing.looks_like_card_number(text) IS
    'true if the text holds a run of 13 to 19 digits (single spaces or dashes between them allowed) '
    'that passes the Luhn check: such values are refused in every payment reference field';

CREATE TABLE billing.payment (
    account_id         bigint NOT NULL REFERENCES billing.account,
    payment_id         bigint GENERATED BY DEFAULT AS IDENTITY,
    amount             billing.amount NOT NULL CHECK (billing.to_numeric(amount) > 0),
    method             text NOT NULL
                       CHECK (method IN ('card', 'direct_debit', 'bank_transfer', 'cash', 'check', 'wallet', 'other')),
    -- the regex (13 digits in a row) spares the function call for almost every value
    reference          text CHECK (reference !~ '[0-9](?:[ -]?[0-9]){12}' OR NOT billing.looks_like_card_number(reference)),
    idempotency_key    text CHECK (idempotency_key <> ''
                                   AND (idempotency_key !~ '[0-9](?:[ -]?[0-9]){12}' OR NOT billing.looks_like_card_number(idempotency_key))),
    received_on        date NOT NULL,
    target_invoice_ids bigint[],
    amount_refunded    billing.amount NOT NULL,
    status             text NOT NULL DEFAULT 'succeeded'
                       CHECK (status IN ('succeeded', 'partially_refunded', 'refunded', 'charged_back')),
    created_at         timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, payment_id),
    UNIQUE (account_id, idempotency_key),
    CHECK (billing.to_numeric(amount_refunded) >= 0 AND billing.to_numeric(amount_refunded) <= billing.to_numeric(amount))
);
COMMENT ON TABLE billing.payment IS
    'money received from an account: amount, method, the provider''s reference (never a card or bank number), '
    'idempotency key (unique per account), received date, what was refunded';

-- What paid an invoice: a payment, the account's credit, a credit note, or
-- an early-payment discount.
-- A negative amount takes an application back (refund, chargeback, void).
-- Append-only like the ledger: the sum per invoice is its amount_paid.
CREATE TABLE billing.payment_application (
    account_id     bigint NOT NULL,
    application_id bigint GENERATED BY DEFAULT AS IDENTITY,
    invoice_id     bigint NOT NULL,
    source         text NOT NULL CHECK (source IN ('payment', 'credit', 'credit_note', 'discount')),
    payment_id     bigint,
    credit_note_id bigint,
    amount         billing.amount NOT NULL CHECK (billing.to_numeric(amount) <> 0),
    applied_at     timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, application_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice,
    FOREIGN KEY (account_id, payment_id) REFERENCES billing.payment,
    CHECK ((source = 'payment') = (payment_id IS NOT NULL)),
    CHECK ((source = 'credit_note') = (credit_note_id IS NOT NULL))
);
COMMENT ON TABLE billing.payment_application IS
    'an amount of a payment, of the account''s credit or of a credit note applied to an invoice '
    '(negative: taken back); append-only';
CREATE INDEX ON billing.payment_application (account_id, invoice_id);
CREATE INDEX ON billing.payment_application (account_id, payment_id) WHERE payment_id IS NOT NULL;

CREATE TRIGGER payment_application_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON billing.payment_application
    FOR EACH STATEMENT EXECUTE FUNCTION billing._ledger_append_only();

SELECT pg_catalog.pg_extension_config_dump('billing.payment', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_application', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_payment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_application_application_id_seq', '');

-- Outbox events of money movements.  Unlike billing._event these do not
-- NOTIFY: a transaction that notifies takes a database-wide lock at commit,
-- which serialized concurrent payments (345 payments/s with 8 clients).
-- Consumers find them with the next NOTIFY (every cycle batch notifies) or
-- by polling billing.outbox.
CREATE FUNCTION billing._money_event(account_id bigint, event_type text, payload jsonb)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    INSERT INTO billing.outbox (account_id, event_type, payload) VALUES ($1, $2, $3);
END $$;
COMMENT ON FUNCTION billing._money_event(bigint, text, jsonb) IS
    'internal: writes an outbox event of a money movement, without NOTIFY (it would serialize commits)';

-- Takes lock 1 of the lock order: the account's credit row, created at
-- zero on first use.  Returns the unapplied credit.
CREATE FUNCTION billing._lock_account_money(account_id bigint, currency text)
RETURNS billing.amount LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v billing.amount;
BEGIN
    INSERT INTO billing.account_credit AS c (account_id, balance)
    VALUES ($1, billing.from_minor_units(0, $2))
    ON CONFLICT ON CONSTRAINT account_credit_pkey DO UPDATE SET updated_at = c.updated_at
    RETURNING c.balance INTO v;
    RETURN v;
END $$;
COMMENT ON FUNCTION billing._lock_account_money(bigint, text) IS
    'internal: locks the account''s credit row (step 1 of the lock order) and returns its unapplied credit';

-- The account, or 23503 when it does not exist.
CREATE FUNCTION billing._payment_account(account_id bigint)
RETURNS billing.account LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
BEGIN
    SELECT * INTO a FROM billing.account x WHERE x.account_id = _payment_account.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_account.';
    END IF;
    RETURN a;
END $$;
COMMENT ON FUNCTION billing._payment_account(bigint) IS 'internal: the account; 23503 if there is none';

-- Early-payment discounts: an invoice settled in full within within_days
-- of its issue date is discounted by percent of its total (rounded once by
-- billing.rounding); the discount counts as paid on the invoice.
CREATE TABLE billing.early_payment_terms (
    account_id  bigint PRIMARY KEY REFERENCES billing.account,
    percent     numeric NOT NULL CHECK (percent > 0 AND percent < 100),
    within_days integer NOT NULL CHECK (within_days BETWEEN 0 AND 3650)
);
COMMENT ON TABLE billing.early_payment_terms IS
    'an account''s early-payment discount: percent of the total off when an invoice is paid in full within '
    'within_days of its issue date (for example 2% within 10 days)';
SELECT pg_catalog.pg_extension_config_dump('billing.early_payment_terms', '');

CREATE FUNCTION billing.set_early_payment_discount(account_id bigint, percent numeric, within_days integer)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
BEGIN
    a := billing._payment_account(account_id);
    IF percent IS NULL THEN
        DELETE FROM billing.early_payment_terms t WHERE t.account_id = a.account_id;
        RETURN;
    END IF;
    IF percent <= 0 OR percent >= 100 OR within_days IS NULL OR within_days < 0 OR within_days > 3650 THEN
        RAISE EXCEPTION 'an early-payment discount needs a percent in (0, 100) and 0 to 3650 days, not % and %',
            percent, coalesce(within_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: percent => 2, within_days => 10.';
    END IF;
    INSERT INTO billing.early_payment_terms AS t (account_id, percent, within_days)
    VALUES (a.account_id, percent, within_days)
    ON CONFLICT ON CONSTRAINT early_payment_terms_pkey
    DO UPDATE SET percent = excluded.percent, within_days = excluded.within_days;
END $$;
COMMENT ON FUNCTION billing.set_early_payment_discount(bigint, numeric, integer) IS
    'sets the account''s early-payment discount (percent of the total off when paid in full within within_days '
    'of the issue date); percent NULL removes it';


-- Posts one balanced transaction from (ledger account, amount) pairs,
-- leaving out zero amounts.  Returns its id.
CREATE FUNCTION billing._post(account_id bigint, kind text, posted_on date, description text,
                              ledger_accounts text[], amounts billing.amount[],
                              invoice_id bigint DEFAULT NULL, payment_id bigint DEFAULT NULL,
                              source_id bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    v bigint;
BEGIN
    WITH t AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, description, invoice_id, payment_id,
                                                source_id)
        VALUES ($1, $2, $3, $4, $7, $8, $9)
        RETURNING txn_id
    ), e AS (
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT $1, t.txn_id, x.ledger_account, x.amount
        FROM t, unnest($5, $6) x(ledger_account, amount)
        WHERE billing.to_numeric(x.amount) <> 0
    )
    SELECT t.txn_id INTO v FROM t;
    RETURN v;
END $$;
COMMENT ON FUNCTION billing._post(bigint, text, date, text, text[], billing.amount[], bigint, bigint, bigint) IS
    'internal: posts one ledger transaction with its entries (zero amounts left out) in one statement';

CREATE FUNCTION billing.apply_payment(
    account_id bigint, amount billing.amount, method text, reference text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, received_on date DEFAULT NULL, invoice_ids bigint[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    p billing.payment;
    v_received date;
    v_id bigint;
    v_funds numeric;
    v_applied numeric;
    v_bad bigint;
    v_excess billing.amount;
    v_applied_amt billing.amount;
BEGIN
    SELECT * INTO a FROM billing.account x WHERE x.account_id = apply_payment.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with billing.create_account.';
    END IF;
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0 THEN
        RAISE EXCEPTION 'a payment must be a positive amount in the account''s currency %, not %', a.currency,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Money going back to the customer is a refund.';
    END IF;
    IF method IS NULL OR method NOT IN ('card', 'direct_debit', 'bank_transfer', 'cash', 'check', 'wallet', 'other') THEN
        RAISE EXCEPTION 'unknown payment method %', coalesce(method, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use card, direct_debit, bank_transfer, cash, check, wallet or other.';
    END IF;
    IF (reference ~ '[0-9](?:[ -]?[0-9]){12}' AND billing.looks_like_card_number(reference))
       OR (idempotency_key ~ '[0-9](?:[ -]?[0-9]){12}' AND billing.looks_like_card_number(idempotency_key)) THEN
        RAISE EXCEPTION 'a payment reference must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Store the payment provider''s token, never the card or bank number.';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'an idempotency key must not be empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for a payment without one.';
    END IF;
    IF cardinality(invoice_ids) = 0 OR array_position(invoice_ids, NULL) IS NOT NULL
       OR cardinality(invoice_ids) <> (SELECT count(DISTINCT x) FROM unnest(invoice_ids) x) THEN
        RAISE EXCEPTION 'invoice_ids must name distinct invoices, not %', invoice_ids
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL to pay the oldest invoices first.';
    END IF;
    v_received := coalesce(received_on, billing.today(a.timezone));

    -- lock 1 (billing._lock_account_money, inline: this is the hot path;
    -- a row lock, not an upsert that writes a new row version each time)
    PERFORM FROM billing.account_credit c WHERE c.account_id = a.account_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM billing._lock_account_money(a.account_id, a.currency);
    END IF;
    IF idempotency_key IS NOT NULL THEN
        SELECT * INTO p FROM billing.payment x
        WHERE x.account_id = a.account_id AND x.idempotency_key = apply_payment.idempotency_key;
        IF FOUND THEN
            IF p.amount = amount AND p.method = method AND p.reference IS NOT DISTINCT FROM reference
               AND (received_on IS NULL OR p.received_on = received_on)
               AND p.target_invoice_ids IS NOT DISTINCT FROM invoice_ids THEN
                RETURN p.payment_id;
            END IF;
            RAISE EXCEPTION 'idempotency key % of account % was used for another payment (%)', idempotency_key,
                a.account_id, p.payment_id
                USING ERRCODE = 'unique_violation',
                      DETAIL = format('Payment %s: %s by %s, reference %s, received %s, invoices %s.', p.payment_id,
                                      p.amount, p.method, coalesce(p.reference, 'none'), p.received_on,
                                      coalesce(p.target_invoice_ids::text, 'oldest first')),
                      HINT = 'Use a new key for a new payment; a retry must repeat the same arguments.';
        END IF;
    END IF;
    IF invoice_ids IS NOT NULL THEN
        SELECT x INTO v_bad FROM unnest(invoice_ids) x
        WHERE NOT EXISTS (SELECT FROM billing.invoice i WHERE i.account_id = a.account_id AND i.invoice_id = x)
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'invoice % of account % does not exist', v_bad, a.account_id
                USING ERRCODE = 'foreign_key_violation', HINT = 'billing.invoice lists the account''s invoices.';
        END IF;
        SELECT x INTO v_bad FROM unnest(invoice_ids) x
        JOIN billing.invoice i ON i.account_id = a.account_id AND i.invoice_id = x
        WHERE i.status <> 'open' LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'invoice % of account % is not open', v_bad, a.account_id
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only open invoices take payments.';
        END IF;
    END IF;

    INSERT INTO billing.payment AS x (account_id, amount, method, reference, idempotency_key, received_on,
                                      target_invoice_ids, amount_refunded)
    VALUES (a.account_id, amount, method, reference, idempotency_key, v_received, invoice_ids,
            billing.from_minor_units(0, a.currency))
    RETURNING x.payment_id INTO v_id;

    v_funds := billing.to_numeric(amount);
    -- lock 2 and the applications, in one statement: the open invoices,
    -- oldest due first or in the order of invoice_ids.  An invoice the funds
    -- settle within its early-payment window needs its due less the
    -- discount, and gets the discount as an application of its own, posted
    -- to discounts.
    WITH inv AS MATERIALIZED (
        SELECT i.invoice_id, i.due_date, i.number, billing.to_numeric(i.amount_due) AS due,
               CASE WHEN t.account_id IS NOT NULL AND v_received <= i.issue_date + t.within_days
                         AND NOT EXISTS (SELECT FROM billing.payment_application x
                                         WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id
                                           AND x.source = 'discount')
                    THEN least(billing.to_numeric(billing.round_amount(billing.to_numeric(i.total) * t.percent / 100, a.currency)),
                               billing.to_numeric(i.amount_due))
                    ELSE 0 END AS disc
        FROM billing.invoice i
        LEFT JOIN billing.early_payment_terms t ON t.account_id = i.account_id
        WHERE i.account_id = a.account_id AND i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
          AND (apply_payment.invoice_ids IS NULL OR i.invoice_id = ANY (apply_payment.invoice_ids))
        ORDER BY array_position(apply_payment.invoice_ids, i.invoice_id), i.due_date, i.invoice_id
        FOR UPDATE OF i
    ), run AS (
        SELECT invoice_id, number, due, disc, due - disc AS need,
               coalesce(sum(due - disc) OVER (ORDER BY array_position(apply_payment.invoice_ids, invoice_id), due_date, invoice_id
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM inv
    ), app AS MATERIALIZED (
        -- a partly paid invoice gets no discount, and needs its whole due
        SELECT invoice_id, number,
               billing.amount(least(need, v_funds - before), a.currency) AS amount,
               billing.amount(CASE WHEN v_funds - before >= need THEN disc ELSE 0 END, a.currency) AS discount
        FROM run WHERE v_funds > before
    ), ins AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, payment_id, amount)
        SELECT a.account_id, app.invoice_id, 'payment', v_id, app.amount FROM app WHERE billing.to_numeric(app.amount) > 0
        UNION ALL
        SELECT a.account_id, app.invoice_id, 'discount', NULL, app.discount FROM app WHERE billing.to_numeric(app.discount) > 0
    ), upd AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid + ap.amount + ap.discount, amount_due = i.amount_due - ap.amount - ap.discount,
            status = CASE WHEN billing.to_numeric(i.amount_due - ap.amount - ap.discount) = 0 THEN 'paid' ELSE i.status END
        FROM app ap WHERE i.account_id = a.account_id AND i.invoice_id = ap.invoice_id
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, payment_id, description)
        SELECT a.account_id, 'early_payment_discount', v_received, app.invoice_id, v_id,
               'early-payment discount on invoice ' || app.number
        FROM app WHERE billing.to_numeric(app.discount) > 0
        RETURNING txn_id, invoice_id
    ), ent AS (
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT a.account_id, t.txn_id, e.ledger_account, e.amount
        FROM txn t JOIN app ap ON ap.invoice_id = t.invoice_id
        CROSS JOIN LATERAL (VALUES ('discounts', ap.discount), ('receivable', -ap.discount)) e(ledger_account, amount)
    )
    SELECT coalesce(sum(billing.to_numeric(app.amount)), 0) INTO v_applied FROM app;
    v_applied_amt := billing.amount(v_applied, a.currency);
    v_excess := amount - v_applied_amt;
    IF billing.to_numeric(v_excess) > 0 THEN
        UPDATE billing.account_credit c SET balance = c.balance + v_excess, updated_at = billing.now()
        WHERE c.account_id = a.account_id;
    END IF;
    -- the ledger transaction (billing._post, inline) and the outbox event
    WITH t AS (
        INSERT INTO billing.ledger_transaction AS x (account_id, kind, posted_on, description, payment_id)
        VALUES (a.account_id, 'payment', v_received, format('payment %s by %s', v_id, method), v_id)
        RETURNING x.txn_id
    )
    INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
    SELECT a.account_id, t.txn_id, e.ledger_account, e.amount
    FROM t, (VALUES ('cash', amount), ('receivable', -v_applied_amt), ('customer_credit', -v_excess)) e(ledger_account, amount)
    WHERE billing.to_numeric(e.amount) <> 0;
    INSERT INTO billing.outbox (account_id, event_type, payload)
    VALUES (a.account_id, 'payment.received',
            jsonb_build_object('payment_id', v_id, 'amount', amount::text, 'applied', v_applied_amt::text,
                               'credited', v_excess::text));
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.apply_payment(bigint, billing.amount, text, text, text, date, bigint[]) IS
    'records a payment and applies it to the account''s open invoices, oldest due first (or to invoice_ids, in '
    'that order); the rest becomes unapplied credit that later invoices consume; posts it to the ledger; the same '
    'idempotency_key with the same arguments returns the same payment, with other arguments raises 23505';

-- Lets the accounts' unapplied credit pay these (just finalized) invoices,
-- oldest due first, in one statement.  Locks the account_credit rows in
-- account_id order.
CREATE FUNCTION billing._consume_credit(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    -- Step 1 of the lock order, in a statement of its own: the next
    -- statement's snapshot then sees every balance as it is after the
    -- transactions we waited for (a row locked and updated in one statement
    -- would be updated from the version in the statement's snapshot).
    SELECT count(*) FROM (
        SELECT FROM billing.account_credit c
        WHERE c.account_id IN (SELECT DISTINCT unnest(accounts))
        ORDER BY c.account_id
        FOR UPDATE) locked;
    WITH cr AS MATERIALIZED (
        SELECT c.account_id, billing.to_numeric(c.balance) AS balance
        FROM billing.account_credit c
        WHERE c.account_id IN (SELECT DISTINCT unnest(accounts)) AND billing.to_numeric(c.balance) > 0
    ), inv AS MATERIALIZED (
        SELECT i.account_id, i.invoice_id, i.currency, i.issue_date, i.number, cr.balance,
               billing.to_numeric(i.amount_due) AS due,
               coalesce(sum(billing.to_numeric(i.amount_due)) OVER (
                   PARTITION BY i.account_id ORDER BY i.due_date, i.invoice_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM unnest(accounts, invoices) u(account_id, invoice_id)
        JOIN cr ON cr.account_id = u.account_id
        JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
        WHERE i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
    ), app AS MATERIALIZED (
        SELECT account_id, invoice_id, currency, issue_date, number,
               billing.amount(least(due, balance - before), currency) AS amount
        FROM inv WHERE balance > before
    ), ins_app AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, amount)
        SELECT account_id, invoice_id, 'credit', amount FROM app
        RETURNING 1
    ), upd_inv AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid + a.amount, amount_due = i.amount_due - a.amount,
            status = CASE WHEN billing.to_numeric(i.amount_due - a.amount) = 0 THEN 'paid' ELSE i.status END
        FROM app a WHERE i.account_id = a.account_id AND i.invoice_id = a.invoice_id
        RETURNING 1
    ), upd_credit AS (
        UPDATE billing.account_credit c SET balance = c.balance - s.amount, updated_at = billing.now()
        FROM (SELECT account_id, billing.sum(amount) AS amount FROM app GROUP BY 1) s
        WHERE c.account_id = s.account_id
        RETURNING 1
    ), txn AS (
        INSERT INTO billing.ledger_transaction (account_id, kind, posted_on, invoice_id, description)
        SELECT account_id, 'credit_applied', issue_date, invoice_id, 'credit applied to invoice ' || number FROM app
        RETURNING account_id, txn_id, invoice_id
    ), ent AS (
        INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
        SELECT t.account_id, t.txn_id, e.ledger_account, e.amount
        FROM txn t
        JOIN app a ON a.account_id = t.account_id AND a.invoice_id = t.invoice_id
        CROSS JOIN LATERAL (VALUES ('customer_credit', a.amount), ('receivable', -a.amount)) e(ledger_account, amount)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins_app) + (SELECT count(*) FROM upd_inv) + (SELECT count(*) FROM upd_credit)
           + (SELECT count(*) FROM ent)
$$;
COMMENT ON FUNCTION billing._consume_credit(bigint[], bigint[]) IS
    'internal: applies the accounts'' unapplied credit to these open invoices, oldest due first, with ledger postings';

CREATE FUNCTION billing._invoice_finalized_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog AS $$
DECLARE
    v_accounts bigint[];
    v_invoices bigint[];
BEGIN
    -- pg_restore loads invoices with COPY and their ledger, credit and
    -- collection rows from the dump: posting them again would count them
    -- twice.  Invoices are only ever created by billing's functions, never
    -- by COPY (check_invariants reports an invoice that is not posted).
    IF current_query() ~* '^\s*COPY\s' THEN
        RETURN NULL;
    END IF;
    -- Everything is read from the transition table, never by joining the
    -- batch's ids back to billing.invoice (with 10k ids the planner would
    -- hash-join the whole invoice table, once per batch).
    WITH txn AS (
        INSERT INTO billing.ledger_transaction AS t (account_id, kind, posted_on, invoice_id, description)
        SELECT n.account_id, 'invoice_finalized', n.issue_date, n.invoice_id, 'invoice ' || n.number
        FROM new_invoices n
        WHERE n.status <> 'draft' AND (billing.to_numeric(n.total) <> 0 OR billing.to_numeric(n.tax) <> 0)
        RETURNING t.account_id, t.txn_id, t.invoice_id
    )
    INSERT INTO billing.ledger_entry (account_id, txn_id, ledger_account, amount)
    SELECT t.account_id, t.txn_id, e.ledger_account, e.amount
    FROM txn t
    JOIN new_invoices n ON n.account_id = t.account_id AND n.invoice_id = t.invoice_id
    CROSS JOIN LATERAL (VALUES ('receivable', n.total), ('revenue', -(n.total - n.tax)),
                               ('tax_payable', -n.tax)) e(ledger_account, amount)
    WHERE billing.to_numeric(e.amount) <> 0;
    -- credit and collection only for the few accounts that have some
    SELECT array_agg(n.account_id), array_agg(n.invoice_id) INTO v_accounts, v_invoices
    FROM new_invoices n
    WHERE n.status = 'open' AND n.account_id IN (SELECT c.account_id FROM billing.account_credit c);
    IF v_accounts IS NOT NULL THEN
        PERFORM billing._consume_credit(v_accounts, v_invoices);
    END IF;
    SELECT array_agg(n.account_id), array_agg(n.invoice_id) INTO v_accounts, v_invoices
    FROM new_invoices n
    WHERE n.status = 'open'
      AND n.account_id IN (SELECT m.account_id FROM billing.payment_method m WHERE m.is_default AND m.active);
    IF v_accounts IS NOT NULL THEN
        PERFORM billing._queue_collection(v_accounts, v_invoices);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION billing._invoice_finalized_trigger() IS
    'internal trigger: posts finalized invoices to the ledger, applies the accounts'' unapplied credit to them '
    'and queues automatic collection of what is left due';

CREATE TRIGGER invoice_finalized_insert AFTER INSERT ON billing.invoice
    REFERENCING NEW TABLE AS new_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing._invoice_finalized_trigger();
-- An invoice finalized by an UPDATE from draft is posted row by row: the
-- WHEN condition costs nothing for the updates that payments make, where a
-- statement trigger with transition tables would run on every one of them.
-- (The cycle inserts its invoices finalized: the statement trigger above.)
CREATE FUNCTION billing._invoice_finalized_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = billing, pg_catalog AS $$
BEGIN
    PERFORM billing._post_invoices_finalized(ARRAY[NEW.account_id], ARRAY[NEW.invoice_id]);
    PERFORM billing._consume_credit(ARRAY[NEW.account_id], ARRAY[NEW.invoice_id]);
    PERFORM billing._queue_collection(ARRAY[NEW.account_id], ARRAY[NEW.invoice_id]);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION billing._invoice_finalized_row() IS
    'internal trigger: posts an invoice finalized by an UPDATE from draft, applies credit, queues collection';
CREATE TRIGGER invoice_finalized_update AFTER UPDATE OF status ON billing.invoice
    FOR EACH ROW WHEN (OLD.status = 'draft' AND NEW.status <> 'draft')
    EXECUTE FUNCTION billing._invoice_finalized_row();

-- sql/install/72_refunds_credits.sql
-- Refunds, chargebacks, credit notes, voids and write-offs.  Each takes the
-- account's credit row first (step 1 of the lock order of 70_payments.sql),
-- then the invoices, then the payment, and posts one balanced transaction.
-- A finalized invoice's lines and totals never change (invariant 3): what
-- changes is what was paid on it, what is due, and its status.

-- Money given back on a payment: a refund (we send it) or a chargeback (the
-- card network takes it).
CREATE TABLE billing.refund (
    account_id      bigint NOT NULL,
    refund_id       bigint GENERATED BY DEFAULT AS IDENTITY,
    payment_id      bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('refund', 'chargeback')),
    amount          billing.amount NOT NULL CHECK (billing.to_numeric(amount) > 0),
    from_credit     billing.amount NOT NULL,
    reason          text,
    idempotency_key text CHECK (idempotency_key <> ''),
    created_at      timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, refund_id),
    FOREIGN KEY (account_id, payment_id) REFERENCES billing.payment,
    UNIQUE (account_id, idempotency_key)
);
COMMENT ON TABLE billing.refund IS
    'money given back on a payment (refund) or taken back by the card network (chargeback); from_credit is the '
    'part that came out of the account''s unapplied credit, the rest reopened the invoices the payment had paid';

CREATE TABLE billing.credit_note (
    account_id     bigint NOT NULL,
    credit_note_id bigint GENERATED BY DEFAULT AS IDENTITY,
    invoice_id     bigint NOT NULL,
    amount         billing.amount NOT NULL CHECK (billing.to_numeric(amount) > 0),
    tax            billing.amount NOT NULL,
    method         text NOT NULL CHECK (method IN ('reduce_due', 'credit_balance', 'refund')),
    reason         text,
    created_at     timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, credit_note_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice
);
COMMENT ON TABLE billing.credit_note IS
    'a correction of a finalized invoice: amount (tax included, tax is its share of the invoice''s tax) that '
    'reduces what is due, goes to the account''s credit balance, or is refunded';

SELECT pg_catalog.pg_extension_config_dump('billing.refund', '');
SELECT pg_catalog.pg_extension_config_dump('billing.credit_note', '');
SELECT pg_catalog.pg_extension_config_dump('billing.refund_refund_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.credit_note_credit_note_id_seq', '');

CREATE FUNCTION billing._take_back(account_id bigint, payment_id bigint, amount billing.amount, kind text,
                                   reason text, idempotency_key text)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    p billing.payment;
    r billing.refund;
    v_credit numeric;
    v_applied numeric;
    v_amount numeric;
    v_from_credit numeric;
    v_rest numeric;
    v_reopened numeric;
    v_reopened_ids bigint[];
    v_id bigint;
    v_today date;
BEGIN
    a := billing._payment_account(account_id);
    IF billing.looks_like_card_number(reason) OR billing.looks_like_card_number(idempotency_key) THEN
        RAISE EXCEPTION 'a % reason or key must not hold a card number', kind
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Never store card or bank numbers.';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'an idempotency key must not be empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Pass NULL for a %s without one.', kind);
    END IF;
    v_credit := billing.to_numeric(billing._lock_account_money(a.account_id, a.currency));
    IF idempotency_key IS NOT NULL THEN
        SELECT * INTO r FROM billing.refund x
        WHERE x.account_id = a.account_id AND x.idempotency_key = _take_back.idempotency_key;
        IF FOUND THEN
            IF r.payment_id = _take_back.payment_id AND r.kind = _take_back.kind
               AND (amount IS NULL OR r.amount = amount) AND r.reason IS NOT DISTINCT FROM reason THEN
                RETURN r.refund_id;
            END IF;
            RAISE EXCEPTION 'idempotency key % of account % was used for another refund (%)', idempotency_key,
                a.account_id, r.refund_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Use a new key for a new refund; a retry must repeat the same arguments.';
        END IF;
    END IF;
    -- step 2: the invoices this payment paid, then step 3: the payment
    PERFORM FROM billing.invoice i
    WHERE i.account_id = a.account_id
      AND i.invoice_id IN (SELECT x.invoice_id FROM billing.payment_application x
                           WHERE x.account_id = a.account_id AND x.payment_id = _take_back.payment_id)
    ORDER BY i.due_date, i.invoice_id FOR UPDATE;
    SELECT * INTO p FROM billing.payment x
    WHERE x.account_id = a.account_id AND x.payment_id = _take_back.payment_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment % of account % does not exist', coalesce(payment_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.payment lists the account''s payments.';
    END IF;
    IF p.status = 'charged_back' THEN
        RAISE EXCEPTION 'payment % was charged back', p.payment_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is left to give back.';
    END IF;
    v_amount := coalesce(billing.to_numeric(amount), billing.to_numeric(p.amount) - billing.to_numeric(p.amount_refunded));
    IF amount IS NOT NULL AND billing.currency(amount) <> a.currency OR v_amount <= 0
       OR v_amount > billing.to_numeric(p.amount) - billing.to_numeric(p.amount_refunded) THEN
        RAISE EXCEPTION 'a % of payment % must be positive, in %, and at most the % not yet given back, not %', kind,
            p.payment_id, a.currency, p.amount - p.amount_refunded, coalesce(amount::text, v_amount::text)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Leave amount out to give back all that is left.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(x.amount)), 0) INTO v_applied
    FROM billing.payment_application x WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id;
    -- first what the payment left unapplied (still in the credit balance),
    -- then what it paid, taken back from its newest invoices first
    v_from_credit := greatest(least(v_amount,
                                    billing.to_numeric(p.amount) - v_applied - billing.to_numeric(p.amount_refunded),
                                    v_credit), 0);
    v_rest := v_amount - v_from_credit;
    WITH paid AS (
        SELECT x.invoice_id, sum(billing.to_numeric(x.amount)) AS paid
        FROM billing.payment_application x
        JOIN billing.invoice i ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id
        WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id AND i.status IN ('open', 'paid')
        GROUP BY 1 HAVING sum(billing.to_numeric(x.amount)) > 0
    ), run AS (
        SELECT invoice_id, paid,
               coalesce(sum(paid) OVER (ORDER BY invoice_id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                   AS before
        FROM paid
    ), back AS MATERIALIZED (
        SELECT invoice_id, billing.amount(least(paid, v_rest - before), a.currency) AS back_amount
        FROM run WHERE v_rest > before
    ), ins AS (
        INSERT INTO billing.payment_application (account_id, invoice_id, source, payment_id, amount)
        SELECT a.account_id, back.invoice_id, 'payment', p.payment_id, -back.back_amount FROM back
    ), upd AS (
        UPDATE billing.invoice i
        SET amount_paid = i.amount_paid - b.back_amount, amount_due = i.amount_due + b.back_amount, status = 'open'
        FROM back b WHERE i.account_id = a.account_id AND i.invoice_id = b.invoice_id
    )
    SELECT coalesce(sum(billing.to_numeric(back.back_amount)), 0), array_agg(back.invoice_id)
    INTO v_reopened, v_reopened_ids FROM back;
    IF v_reopened <> v_rest THEN
        RAISE EXCEPTION 'payment % cannot give back % %: % is left unapplied and % on its open or paid invoices',
            p.payment_id, v_amount, a.currency, v_from_credit, v_reopened
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its credit was used by later invoices: issue a credit note with method refund instead.';
    END IF;
    UPDATE billing.account_credit c SET balance = c.balance - billing.amount(v_from_credit, a.currency),
                                        updated_at = billing.now()
    WHERE c.account_id = a.account_id AND v_from_credit > 0;
    -- credit the account still has pays the reopened invoices again
    IF v_reopened_ids IS NOT NULL THEN
        PERFORM billing._consume_credit(array_fill(a.account_id, ARRAY[cardinality(v_reopened_ids)]), v_reopened_ids);
    END IF;
    UPDATE billing.payment x
    SET amount_refunded = x.amount_refunded + billing.amount(v_amount, a.currency),
        status = CASE WHEN kind = 'chargeback' THEN 'charged_back'
                      WHEN billing.to_numeric(x.amount_refunded) + v_amount = billing.to_numeric(x.amount) THEN 'refunded'
                      ELSE 'partially_refunded' END
    WHERE x.account_id = a.account_id AND x.payment_id = p.payment_id;
    INSERT INTO billing.refund AS x (account_id, payment_id, kind, amount, from_credit, reason, idempotency_key)
    VALUES (a.account_id, p.payment_id, kind, billing.amount(v_amount, a.currency),
            billing.amount(v_from_credit, a.currency), reason, idempotency_key)
    RETURNING x.refund_id INTO v_id;
    v_today := billing.today(a.timezone);
    PERFORM billing._post(a.account_id, kind, v_today, format('%s %s of payment %s', kind, v_id, p.payment_id),
                          ARRAY['customer_credit', 'receivable', 'cash'],
                          ARRAY[billing.amount(v_from_credit, a.currency), billing.amount(v_rest, a.currency),
                                billing.amount(-v_amount, a.currency)],
                          payment_id => p.payment_id, source_id => v_id);
    PERFORM billing._money_event(a.account_id, 'payment.' || kind,
                           jsonb_build_object(kind || '_id', v_id, 'payment_id', p.payment_id,
                                              'amount', billing.amount(v_amount, a.currency)::text));
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing._take_back(bigint, bigint, billing.amount, text, text, text) IS
    'internal: a refund or chargeback of a payment: first from what it left unapplied, then reopening the '
    'invoices it paid, newest first; posts it to the ledger';

CREATE FUNCTION billing.refund_payment(account_id bigint, payment_id bigint, amount billing.amount DEFAULT NULL,
                                       reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    SELECT billing._take_back($1, $2, $3, 'refund', $4, $5)
$$;
COMMENT ON FUNCTION billing.refund_payment(bigint, bigint, billing.amount, text, text) IS
    'refunds a payment in full (amount NULL) or in part: first what it left as unapplied credit, then what it '
    'paid on invoices, which reopen (newest first); returns the refund id; same idempotency key, same refund';

CREATE FUNCTION billing.record_chargeback(account_id bigint, payment_id bigint, amount billing.amount DEFAULT NULL,
                                          reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    SELECT billing._take_back($1, $2, $3, 'chargeback', $4, $5)
$$;
COMMENT ON FUNCTION billing.record_chargeback(bigint, bigint, billing.amount, text, text) IS
    'records a chargeback of a payment (the card network took the money back): like a refund, the invoices it '
    'paid reopen and feed dunning; the payment becomes charged_back; returns the refund id';

-- The finalized invoice, locked after the account's credit row; P0002 if
-- there is none.
CREATE FUNCTION billing._lock_invoice(a billing.account, invoice_id bigint)
RETURNS billing.invoice LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    i billing.invoice;
BEGIN
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    SELECT * INTO i FROM billing.invoice x
    WHERE x.account_id = a.account_id AND x.invoice_id = _lock_invoice.invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % of account % does not exist', coalesce(invoice_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.invoice lists the account''s invoices.';
    END IF;
    RETURN i;
END $$;
COMMENT ON FUNCTION billing._lock_invoice(billing.account, bigint) IS
    'internal: locks the account''s credit row, then the invoice; P0002 if there is no such invoice';

CREATE FUNCTION billing.issue_credit_note(account_id bigint, invoice_id bigint, amount billing.amount,
                                          method text DEFAULT 'reduce_due', reason text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    i billing.invoice;
    v_credited numeric;
    v_parts billing.amount[];
    v_id bigint;
BEGIN
    a := billing._payment_account(account_id);
    IF method IS NULL OR method NOT IN ('reduce_due', 'credit_balance', 'refund') THEN
        RAISE EXCEPTION 'unknown credit note method %', coalesce(method, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use reduce_due, credit_balance or refund.';
    END IF;
    IF billing.looks_like_card_number(reason) THEN
        RAISE EXCEPTION 'a credit note reason must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Never store card or bank numbers.';
    END IF;
    i := billing._lock_invoice(a, invoice_id);
    IF i.status NOT IN ('open', 'paid') THEN
        RAISE EXCEPTION 'invoice % is %: only open or paid invoices take credit notes', i.invoice_id, i.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A void or written-off invoice is closed.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(c.amount)), 0) INTO v_credited
    FROM billing.credit_note c WHERE c.account_id = a.account_id AND c.invoice_id = i.invoice_id;
    IF amount IS NULL OR billing.currency(amount) <> a.currency OR billing.to_numeric(amount) <= 0
       OR billing.to_numeric(amount) > billing.to_numeric(i.total) - v_credited THEN
        RAISE EXCEPTION 'a credit note on invoice % must be positive, in %, and at most % (total % less % credited), not %',
            i.invoice_id, a.currency, billing.to_numeric(i.total) - v_credited, i.total, v_credited,
            coalesce(amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A credit note corrects at most what was invoiced.';
    END IF;
    IF method = 'reduce_due' AND billing.to_numeric(amount) > billing.to_numeric(i.amount_due) THEN
        RAISE EXCEPTION 'invoice % has only % due, less than the credit note''s %', i.invoice_id, i.amount_due, amount
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Credit the rest to the balance (method credit_balance) or refund it.';
    END IF;
    -- the credit note's tax is its share of the invoice's tax, exactly
    v_parts := billing.allocate(amount, ARRAY[billing.to_numeric(i.total - i.tax), billing.to_numeric(i.tax)]);
    INSERT INTO billing.credit_note AS c (account_id, invoice_id, amount, tax, method, reason)
    VALUES (a.account_id, i.invoice_id, amount, v_parts[2], method, reason)
    RETURNING c.credit_note_id INTO v_id;
    IF method = 'reduce_due' THEN
        INSERT INTO billing.payment_application (account_id, invoice_id, source, credit_note_id, amount)
        VALUES (a.account_id, i.invoice_id, 'credit_note', v_id, amount);
        UPDATE billing.invoice x
        SET amount_paid = x.amount_paid + amount, amount_due = x.amount_due - amount,
            status = CASE WHEN billing.to_numeric(x.amount_due - amount) = 0 THEN 'paid' ELSE x.status END
        WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    ELSIF method = 'credit_balance' THEN
        UPDATE billing.account_credit c SET balance = c.balance + amount, updated_at = billing.now()
        WHERE c.account_id = a.account_id;
    END IF;
    PERFORM billing._post(a.account_id, 'credit_note', billing.today(a.timezone),
                          format('credit note %s on invoice %s (%s)', v_id, i.number, method),
                          ARRAY['discounts', 'tax_payable',
                                CASE method WHEN 'reduce_due' THEN 'receivable'
                                            WHEN 'credit_balance' THEN 'customer_credit' ELSE 'cash' END],
                          ARRAY[v_parts[1], v_parts[2], -amount],
                          invoice_id => i.invoice_id, source_id => v_id);
    PERFORM billing._money_event(a.account_id, 'credit_note.issued',
                           jsonb_build_object('credit_note_id', v_id, 'invoice_id', i.invoice_id,
                                              'amount', amount::text, 'method', method));
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.issue_credit_note(bigint, bigint, billing.amount, text, text) IS
    'issues a credit note on a finalized invoice (at most its total less earlier credit notes): reduce_due lowers '
    'what is due, credit_balance adds to the account''s credit, refund pays it back; returns its id';

CREATE FUNCTION billing.void_invoice(account_id bigint, invoice_id bigint, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    a := billing._payment_account(account_id);
    i := billing._lock_invoice(a, invoice_id);
    IF i.status <> 'open' OR billing.to_numeric(i.amount_paid) <> 0 THEN
        RAISE EXCEPTION 'invoice % is % with % paid: only an open invoice with nothing paid can be voided',
            i.invoice_id, i.status, i.amount_paid
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Correct a paid or partly paid invoice with a credit note.';
    END IF;
    UPDATE billing.invoice x SET status = 'void', amount_due = billing.from_minor_units(0, a.currency),
                                 metadata = x.metadata || jsonb_build_object('void_reason', reason)
    WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    PERFORM billing._post(a.account_id, 'void', billing.today(a.timezone), format('void invoice %s', i.number),
                          ARRAY['revenue', 'tax_payable', 'receivable'],
                          ARRAY[i.total - i.tax, i.tax, -i.total], invoice_id => i.invoice_id);
    PERFORM billing._money_event(a.account_id, 'invoice.voided', jsonb_build_object('invoice_id', i.invoice_id));
END $$;
COMMENT ON FUNCTION billing.void_invoice(bigint, bigint, text) IS
    'voids an open invoice on which nothing was paid: it is no longer due and its posting is reversed';

CREATE FUNCTION billing.write_off_invoice(account_id bigint, invoice_id bigint, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    a := billing._payment_account(account_id);
    i := billing._lock_invoice(a, invoice_id);
    IF i.status <> 'open' THEN
        RAISE EXCEPTION 'invoice % is %: only an open invoice can be written off', i.invoice_id, i.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is due on it.';
    END IF;
    UPDATE billing.invoice x SET status = 'uncollectible',
                                 metadata = x.metadata || jsonb_build_object('write_off_reason', reason)
    WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id;
    PERFORM billing._post(a.account_id, 'write_off', billing.today(a.timezone), format('write off invoice %s', i.number),
                          ARRAY['bad_debt', 'receivable'], ARRAY[i.amount_due, -i.amount_due],
                          invoice_id => i.invoice_id);
    PERFORM billing._money_event(a.account_id, 'invoice.uncollectible',
                           jsonb_build_object('invoice_id', i.invoice_id, 'amount', i.amount_due::text));
END $$;
COMMENT ON FUNCTION billing.write_off_invoice(bigint, bigint, text) IS
    'writes an open invoice off as uncollectible: what was still due goes to bad debt';

-- sql/install/74_collection.sql
-- Automatic collection.  An account with a default payment method on file
-- (a provider's token, never a card or bank number) gets a payment attempt
-- queued when an invoice is finalized with something due.  An external
-- worker claims due attempts with billing.claim_collection_attempts (FOR
-- UPDATE SKIP LOCKED: several workers never take the same attempt), asks
-- the provider, and reports with billing.report_collection_result: success
-- records the payment (apply_payment, idempotent per attempt); failure
-- schedules the next attempt after the configured retry days and writes a
-- collection.failed event for dunning.  The database never calls out.

CREATE TABLE billing.payment_method (
    account_id        bigint NOT NULL REFERENCES billing.account,
    payment_method_id bigint GENERATED BY DEFAULT AS IDENTITY,
    method            text NOT NULL
                      CHECK (method IN ('card', 'direct_debit', 'bank_transfer', 'cash', 'check', 'wallet', 'other')),
    token             text NOT NULL CHECK (token <> '' AND NOT billing.looks_like_card_number(token)),
    is_default        boolean NOT NULL DEFAULT true,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, payment_method_id)
);
COMMENT ON TABLE billing.payment_method IS
    'a payment method on file: the provider''s token (never a card or bank number); the default active one is charged';
CREATE UNIQUE INDEX payment_method_one_default ON billing.payment_method (account_id) WHERE is_default AND active;

-- The retry schedule: days after the nth failure until attempt n+1.  No
-- row means the default, {1,3,5,7} (a row the extension inserted would
-- clash with the dumped one on restore).
CREATE TABLE billing.collection_setting (
    setting_id integer PRIMARY KEY DEFAULT 1 CHECK (setting_id = 1),
    retry_days integer[] NOT NULL DEFAULT '{1,3,5,7}'
               CHECK (array_position(retry_days, NULL) IS NULL AND 0 < ALL (retry_days) AND cardinality(retry_days) <= 50)
);
COMMENT ON TABLE billing.collection_setting IS
    'automatic collection settings: retry_days[n] is the wait after the nth failed attempt (default 1, 3, 5, 7 days)';

CREATE TABLE billing.collection_attempt (
    account_id        bigint NOT NULL,
    attempt_id        bigint GENERATED BY DEFAULT AS IDENTITY,
    invoice_id        bigint NOT NULL,
    payment_method_id bigint NOT NULL,
    attempt_no        integer NOT NULL CHECK (attempt_no >= 1),
    amount            billing.amount,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'canceled')),
    scheduled_at      timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    worker            text,
    provider_reference text CHECK (NOT billing.looks_like_card_number(provider_reference)),
    failure_code      text,
    failure_message   text,
    payment_id        bigint,
    PRIMARY KEY (account_id, attempt_id),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice,
    FOREIGN KEY (account_id, payment_method_id) REFERENCES billing.payment_method,
    FOREIGN KEY (account_id, payment_id) REFERENCES billing.payment
);
COMMENT ON TABLE billing.collection_attempt IS
    'the automatic collection queue: one row per attempt to charge an invoice''s amount due to the account''s '
    'payment method; workers claim pending rows with SKIP LOCKED and report the result';
CREATE INDEX collection_attempt_due ON billing.collection_attempt (scheduled_at, attempt_id) WHERE status = 'pending';
CREATE INDEX ON billing.collection_attempt (account_id, invoice_id);

SELECT pg_catalog.pg_extension_config_dump('billing.payment_method', '');
SELECT pg_catalog.pg_extension_config_dump('billing.collection_setting', '');
SELECT pg_catalog.pg_extension_config_dump('billing.collection_attempt', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_method_payment_method_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.collection_attempt_attempt_id_seq', '');

CREATE FUNCTION billing.add_payment_method(account_id bigint, method text, token text, make_default boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    v_id bigint;
BEGIN
    a := billing._payment_account(account_id);
    IF method IS NULL OR method NOT IN ('card', 'direct_debit', 'bank_transfer', 'cash', 'check', 'wallet', 'other') THEN
        RAISE EXCEPTION 'unknown payment method %', coalesce(method, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use card, direct_debit, bank_transfer, cash, check, wallet or other.';
    END IF;
    IF token IS NULL OR token = '' OR billing.looks_like_card_number(token) THEN
        RAISE EXCEPTION 'a payment method needs the provider''s token, and never a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Tokenize the card with the payment provider first.';
    END IF;
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    IF coalesce(make_default, true) THEN
        UPDATE billing.payment_method m SET is_default = false
        WHERE m.account_id = a.account_id AND m.is_default;
    END IF;
    INSERT INTO billing.payment_method AS m (account_id, method, token, is_default)
    VALUES (a.account_id, method, token,
            coalesce(make_default, true)
            OR NOT EXISTS (SELECT FROM billing.payment_method x WHERE x.account_id = a.account_id AND x.is_default AND x.active))
    RETURNING m.payment_method_id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION billing.add_payment_method(bigint, text, text, boolean) IS
    'puts a payment method on file (the provider''s token; card numbers are refused, 22023) and by default makes '
    'it the one automatic collection charges; returns its id';

CREATE FUNCTION billing.remove_payment_method(account_id bigint, payment_method_id bigint)
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
BEGIN
    a := billing._payment_account(account_id);
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    UPDATE billing.payment_method m SET active = false, is_default = false
    WHERE m.account_id = a.account_id AND m.payment_method_id = remove_payment_method.payment_method_id AND m.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'payment method % of account % does not exist or was removed',
            coalesce(payment_method_id::text, 'NULL'), a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'billing.payment_method lists the account''s methods.';
    END IF;
    UPDATE billing.collection_attempt c SET status = 'canceled', finished_at = billing.now()
    WHERE c.account_id = a.account_id AND c.payment_method_id = remove_payment_method.payment_method_id
      AND c.status = 'pending';
END $$;
COMMENT ON FUNCTION billing.remove_payment_method(bigint, bigint) IS
    'deactivates a payment method and cancels its pending collection attempts';

CREATE FUNCTION billing.set_collection_retry_days(retry_days integer[])
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    IF retry_days IS NULL OR array_position(retry_days, NULL) IS NOT NULL OR NOT 0 < ALL (retry_days)
       OR cardinality(retry_days) > 50 THEN
        RAISE EXCEPTION 'retry_days must be up to 50 positive day counts, not %', coalesce(retry_days::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: ''{1,3,5,7}''; ''{}'' never retries.';
    END IF;
    INSERT INTO billing.collection_setting AS s (setting_id, retry_days) VALUES (1, set_collection_retry_days.retry_days)
    ON CONFLICT ON CONSTRAINT collection_setting_pkey DO UPDATE SET retry_days = excluded.retry_days;
END $$;
COMMENT ON FUNCTION billing.set_collection_retry_days(integer[]) IS
    'sets the retry schedule of automatic collection: the nth failed attempt is retried after retry_days[n] days';

-- Called by the finalization trigger: one pending attempt per new open
-- invoice with something due whose account has a default payment method.
CREATE FUNCTION billing._queue_collection(accounts bigint[], invoices bigint[])
RETURNS void LANGUAGE sql VOLATILE SET search_path = billing, pg_catalog AS $$
    INSERT INTO billing.collection_attempt (account_id, invoice_id, payment_method_id, attempt_no, amount, scheduled_at)
    SELECT i.account_id, i.invoice_id, m.payment_method_id, 1, i.amount_due, billing.now()
    FROM unnest(accounts, invoices) u(account_id, invoice_id)
    JOIN billing.invoice i ON i.account_id = u.account_id AND i.invoice_id = u.invoice_id
    JOIN billing.payment_method m ON m.account_id = i.account_id AND m.is_default AND m.active
    WHERE i.status = 'open' AND billing.to_numeric(i.amount_due) > 0
$$;
COMMENT ON FUNCTION billing._queue_collection(bigint[], bigint[]) IS
    'internal: queues the first collection attempt of newly finalized invoices of accounts with a payment method';

CREATE FUNCTION billing.claim_collection_attempts(worker text, max_attempts integer DEFAULT 10,
                                                  as_of timestamptz DEFAULT NULL)
RETURNS TABLE (account_id bigint, attempt_id bigint, invoice_id bigint, attempt_no integer, amount billing.amount,
               method text, token text, idempotency_key text)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
BEGIN
    IF worker IS NULL OR worker = '' OR max_attempts IS NULL OR max_attempts < 1 OR max_attempts > 10000 THEN
        RAISE EXCEPTION 'claim_collection_attempts needs a worker name and 1 to 10000 attempts, not % and %',
            coalesce(worker, 'NULL'), coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: claim_collection_attempts(''worker-1'', 50).';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT c.account_id, c.attempt_id
        FROM billing.collection_attempt c
        WHERE c.status = 'pending' AND c.scheduled_at <= coalesce(as_of, billing.now())
        ORDER BY c.scheduled_at, c.attempt_id
        LIMIT max_attempts
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        -- an invoice paid or closed meanwhile is not charged: its attempt is canceled
        UPDATE billing.collection_attempt c
        SET status = CASE WHEN i.status = 'open' AND billing.to_numeric(i.amount_due) > 0 THEN 'processing'
                          ELSE 'canceled' END,
            amount = i.amount_due, started_at = billing.now(), worker = claim_collection_attempts.worker,
            finished_at = CASE WHEN i.status = 'open' AND billing.to_numeric(i.amount_due) > 0 THEN NULL
                               ELSE billing.now() END
        FROM picked p, billing.invoice i
        WHERE c.account_id = p.account_id AND c.attempt_id = p.attempt_id
          AND i.account_id = c.account_id AND i.invoice_id = c.invoice_id
        RETURNING c.account_id, c.attempt_id, c.invoice_id, c.attempt_no, c.amount, c.status, c.payment_method_id
    )
    SELECT x.account_id, x.attempt_id, x.invoice_id, x.attempt_no, x.amount, m.method, m.token,
           'collection-' || x.attempt_id
    FROM claimed x
    JOIN billing.payment_method m ON m.account_id = x.account_id AND m.payment_method_id = x.payment_method_id
    WHERE x.status = 'processing'
    ORDER BY x.attempt_id;
END $$;
COMMENT ON FUNCTION billing.claim_collection_attempts(text, integer, timestamptz) IS
    'for a collection worker: claims up to max_attempts due attempts (FOR UPDATE SKIP LOCKED, so workers never '
    'share one) with the amount now due, the method and token to charge; attempts of invoices no longer open are canceled';

CREATE FUNCTION billing.report_collection_result(account_id bigint, attempt_id bigint, succeeded boolean,
                                                 provider_reference text DEFAULT NULL, failure_code text DEFAULT NULL,
                                                 failure_message text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    c billing.collection_attempt;
    m billing.payment_method;
    v_payment bigint;
    v_days integer[];
    v_next bigint;
    v_open boolean;
BEGIN
    a := billing._payment_account(account_id);
    IF succeeded IS NULL THEN
        RAISE EXCEPTION 'succeeded must be true or false'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Report what the payment provider answered.';
    END IF;
    IF billing.looks_like_card_number(provider_reference) OR billing.looks_like_card_number(failure_message) THEN
        RAISE EXCEPTION 'a collection result must not hold a card number'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Report the provider''s reference only.';
    END IF;
    PERFORM billing._lock_account_money(a.account_id, a.currency);
    SELECT * INTO c FROM billing.collection_attempt x
    WHERE x.account_id = a.account_id AND x.attempt_id = report_collection_result.attempt_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection attempt % of account % does not exist', coalesce(attempt_id::text, 'NULL'),
            a.account_id
            USING ERRCODE = 'no_data_found', HINT = 'Report the attempts claim_collection_attempts returned.';
    END IF;
    -- a repeated report of the same result is answered the same way
    IF c.status = 'succeeded' AND succeeded THEN
        RETURN c.payment_id;
    ELSIF c.status = 'failed' AND NOT succeeded THEN
        RETURN (SELECT x.attempt_id FROM billing.collection_attempt x
                WHERE x.account_id = c.account_id AND x.invoice_id = c.invoice_id AND x.attempt_no = c.attempt_no + 1);
    ELSIF c.status <> 'processing' THEN
        RAISE EXCEPTION 'collection attempt % is %, not processing', c.attempt_id, c.status
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Claim it with claim_collection_attempts first.';
    END IF;
    SELECT * INTO m FROM billing.payment_method x
    WHERE x.account_id = a.account_id AND x.payment_method_id = c.payment_method_id;
    IF succeeded THEN
        SELECT i.status = 'open' INTO v_open FROM billing.invoice i
        WHERE i.account_id = a.account_id AND i.invoice_id = c.invoice_id;
        v_payment := billing.apply_payment(a.account_id, c.amount, m.method, reference => provider_reference,
                                           idempotency_key => 'collection-' || c.attempt_id,
                                           invoice_ids => CASE WHEN v_open THEN ARRAY[c.invoice_id] END);
        UPDATE billing.collection_attempt x
        SET status = 'succeeded', finished_at = billing.now(), payment_id = v_payment,
            provider_reference = report_collection_result.provider_reference
        WHERE x.account_id = a.account_id AND x.attempt_id = c.attempt_id;
        RETURN v_payment;
    END IF;
    UPDATE billing.collection_attempt x
    SET status = 'failed', finished_at = billing.now(), provider_reference = report_collection_result.provider_reference,
        failure_code = report_collection_result.failure_code, failure_message = report_collection_result.failure_message
    WHERE x.account_id = a.account_id AND x.attempt_id = c.attempt_id;
    v_days := coalesce((SELECT s.retry_days FROM billing.collection_setting s), '{1,3,5,7}');
    IF c.attempt_no <= cardinality(v_days) AND m.active THEN
        INSERT INTO billing.collection_attempt AS x (account_id, invoice_id, payment_method_id, attempt_no, amount,
                                                     scheduled_at)
        VALUES (a.account_id, c.invoice_id, c.payment_method_id, c.attempt_no + 1, c.amount,
                billing.now() + make_interval(days => v_days[c.attempt_no]))
        RETURNING x.attempt_id INTO v_next;
    END IF;
    PERFORM billing._money_event(a.account_id, 'collection.failed',
                           jsonb_build_object('attempt_id', c.attempt_id, 'invoice_id', c.invoice_id,
                                              'attempt_no', c.attempt_no, 'failure_code', failure_code,
                                              'next_attempt_id', v_next,
                                              'next_attempt_at', billing.now() + make_interval(days => v_days[c.attempt_no])));
    RETURN v_next;
END $$;
COMMENT ON FUNCTION billing.report_collection_result(bigint, bigint, boolean, text, text, text) IS
    'for a collection worker: success records the payment (idempotent per attempt) and returns its id; failure '
    'schedules the next attempt after retry_days[n], writes a collection.failed event for dunning and returns the '
    'next attempt id (NULL when retries are exhausted)';

-- sql/install/75_ledger_reports.sql
-- The ledger's checks (invariants 2 to 5), the account balance and the
-- account statement.  billing.check_invariants() includes
-- billing.check_ledger_invariants() (91_invariants_ledger.sql).

CREATE FUNCTION billing.check_ledger_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog AS $$
    -- invariant 4: every ledger transaction balances per currency
    SELECT 'ledger_transaction_balances',
           format('transaction %s (account %s, %s): %s entries sum to %s', t.txn_id, t.account_id, t.kind,
                  s.currency, s.total)
    FROM (SELECT e.account_id, e.txn_id, billing.currency(e.amount) AS currency, billing.sum(e.amount) AS total
          FROM billing.ledger_entry e GROUP BY 1, 2, 3
          HAVING billing.to_numeric(billing.sum(e.amount)) <> 0) s
    JOIN billing.ledger_transaction t ON t.account_id = s.account_id AND t.txn_id = s.txn_id
    UNION ALL
    SELECT 'ledger_transaction_has_entries',
           format('transaction %s (account %s, %s) has no entries', t.txn_id, t.account_id, t.kind)
    FROM billing.ledger_transaction t
    WHERE NOT EXISTS (SELECT FROM billing.ledger_entry e WHERE e.account_id = t.account_id AND e.txn_id = t.txn_id)
    UNION ALL
    -- invariant 3: every finalized invoice is posted
    SELECT 'invoice_finalization_posted',
           format('invoice %s (account %s, total %s) has no invoice_finalized transaction', i.invoice_id,
                  i.account_id, i.total)
    FROM billing.invoice i
    WHERE i.status <> 'draft' AND (billing.to_numeric(i.total) <> 0 OR billing.to_numeric(i.tax) <> 0)
      AND NOT EXISTS (SELECT FROM billing.ledger_transaction t
                      WHERE t.account_id = i.account_id AND t.invoice_id = i.invoice_id
                        AND t.kind = 'invoice_finalized')
    UNION ALL
    -- invariant 5, in its parts and whole, per account
    SELECT x.invariant, x.detail
    FROM (
        SELECT a.account_id,
               coalesce(l.receivable, 0) AS receivable, coalesce(l.customer_credit, 0) AS customer_credit,
               coalesce(d.due, 0) AS due, coalesce(billing.to_numeric(c.balance), 0) AS credit
        FROM billing.account a
        LEFT JOIN (SELECT e.account_id,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'receivable') AS receivable,
                          sum(billing.to_numeric(e.amount)) FILTER (WHERE e.ledger_account = 'customer_credit')
                              AS customer_credit
                   FROM billing.ledger_entry e GROUP BY 1) l ON l.account_id = a.account_id
        LEFT JOIN (SELECT i.account_id, sum(billing.to_numeric(i.amount_due)) AS due
                   FROM billing.invoice i WHERE i.status = 'open' GROUP BY 1) d ON d.account_id = a.account_id
        LEFT JOIN billing.account_credit c ON c.account_id = a.account_id
    ) b
    CROSS JOIN LATERAL (VALUES
        ('receivable_equals_due_less_credit', b.receivable + b.customer_credit <> b.due - b.credit,
         format('account %s: ledger receivable %s + customer credit %s <> amount due on open invoices %s - '
                'unapplied credit %s', b.account_id, b.receivable, b.customer_credit, b.due, b.credit)),
        ('ledger_receivable_equals_open_due', b.receivable <> b.due,
         format('account %s: ledger receivable %s, amount due on open invoices %s', b.account_id, b.receivable, b.due)),
        ('ledger_credit_equals_unapplied_credit', -b.customer_credit <> b.credit,
         format('account %s: ledger customer credit %s, unapplied credit %s', b.account_id, -b.customer_credit,
                b.credit))
    ) x(invariant, broken, detail)
    WHERE x.broken
    UNION ALL
    -- a payment is never applied (and refunded) beyond its amount
    SELECT 'payment_not_over_applied',
           format('payment %s (account %s): amount %s, applied %s, refunded %s', p.payment_id, p.account_id,
                  p.amount, coalesce(ap.applied, 0), p.amount_refunded)
    FROM billing.payment p
    LEFT JOIN (SELECT account_id, payment_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application WHERE payment_id IS NOT NULL GROUP BY 1, 2) ap
           ON ap.account_id = p.account_id AND ap.payment_id = p.payment_id
    WHERE coalesce(ap.applied, 0) + billing.to_numeric(p.amount_refunded) > billing.to_numeric(p.amount)
       OR coalesce(ap.applied, 0) < 0
    UNION ALL
    -- an invoice's amount_paid is what was applied to it, never beyond its total
    SELECT 'invoice_paid_equals_applications',
           format('invoice %s (account %s): amount_paid %s, applications %s', i.invoice_id, i.account_id,
                  i.amount_paid, coalesce(ap.applied, 0))
    FROM billing.invoice i
    LEFT JOIN (SELECT account_id, invoice_id, sum(billing.to_numeric(amount)) AS applied
               FROM billing.payment_application GROUP BY 1, 2) ap
           ON ap.account_id = i.account_id AND ap.invoice_id = i.invoice_id
    WHERE billing.to_numeric(i.amount_paid) <> coalesce(ap.applied, 0)
    UNION ALL
    SELECT 'invoice_not_paid_beyond_total',
           format('invoice %s (account %s): total %s, paid %s', i.invoice_id, i.account_id, i.total, i.amount_paid)
    FROM billing.invoice i
    WHERE billing.to_numeric(i.amount_paid) > greatest(billing.to_numeric(i.total), 0)
       OR billing.to_numeric(i.amount_paid) < 0
    UNION ALL
    -- invariant 2: one payment per idempotency key (the unique constraint
    -- holds it; this catches a dropped constraint)
    SELECT 'one_payment_per_idempotency_key',
           format('account %s: idempotency key %s names %s payments', account_id, idempotency_key, count(*))
    FROM billing.payment WHERE idempotency_key IS NOT NULL
    GROUP BY account_id, idempotency_key HAVING count(*) > 1
$$;
COMMENT ON FUNCTION billing.check_ledger_invariants() IS
    'the ledger and payment invariants (2 to 5), one named check each; no rows means all hold';

-- The account's balance from the ledger: what it owes (positive) or has in
-- credit (negative), receivable + customer_credit, as posted up to as_of.
CREATE FUNCTION billing.account_balance(account_id bigint, as_of date DEFAULT NULL)
RETURNS billing.amount LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    v numeric;
BEGIN
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_balance.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    SELECT coalesce(sum(billing.to_numeric(e.amount)), 0) INTO v
    FROM billing.ledger_entry e
    JOIN billing.ledger_transaction t ON t.account_id = e.account_id AND t.txn_id = e.txn_id
    WHERE e.account_id = a.account_id AND e.ledger_account IN ('receivable', 'customer_credit')
      AND (as_of IS NULL OR t.posted_on <= as_of);
    RETURN billing.amount(v, a.currency);
END $$;
COMMENT ON FUNCTION billing.account_balance(bigint, date) IS
    'what the account owes (positive) or has in credit (negative) by the ledger: receivable + customer credit '
    'posted up to as_of (NULL: everything)';

-- One row per ledger transaction that changed what the account owes.
CREATE VIEW billing.account_statement_lines AS
SELECT t.account_id, t.posted_on, t.txn_id, t.kind, t.description, t.invoice_id, t.payment_id,
       billing.sum(e.amount) AS amount
FROM billing.ledger_transaction t
JOIN billing.ledger_entry e ON e.account_id = t.account_id AND e.txn_id = t.txn_id
WHERE e.ledger_account IN ('receivable', 'customer_credit')
GROUP BY t.account_id, t.posted_on, t.txn_id, t.kind, t.description, t.invoice_id, t.payment_id
HAVING billing.to_numeric(billing.sum(e.amount)) <> 0;
COMMENT ON VIEW billing.account_statement_lines IS
    'the movements of what each account owes: invoices (+), payments, credit notes, write-offs (-), refunds and '
    'chargebacks (+); one row per ledger transaction';

CREATE FUNCTION billing.account_statement(account_id bigint, from_date date, to_date date)
RETURNS TABLE (line_no bigint, posted_on date, kind text, description text, invoice_id bigint, payment_id bigint,
               amount billing.amount, balance billing.amount)
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    v_open billing.amount;
BEGIN
    SELECT * INTO a FROM billing.account x WHERE x.account_id = account_statement.account_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', coalesce(account_id::text, 'NULL')
            USING ERRCODE = 'no_data_found', HINT = 'Create it with billing.create_account.';
    END IF;
    IF from_date IS NULL OR to_date IS NULL OR from_date > to_date THEN
        RAISE EXCEPTION 'a statement needs from_date <= to_date, not % to %', coalesce(from_date::text, 'NULL'),
            coalesce(to_date::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Both dates are included.';
    END IF;
    v_open := billing.account_balance(a.account_id, from_date - 1);
    RETURN QUERY
    WITH l AS (
        SELECT s.posted_on, s.txn_id, s.kind, s.description, s.invoice_id, s.payment_id, s.amount
        FROM billing.account_statement_lines s
        WHERE s.account_id = a.account_id AND s.posted_on BETWEEN from_date AND to_date
    ), numbered AS (
        SELECT row_number() OVER (ORDER BY l.posted_on, l.txn_id) AS n, l.*,
               billing.amount(billing.to_numeric(v_open)
                              + sum(billing.to_numeric(l.amount)) OVER (ORDER BY l.posted_on, l.txn_id), a.currency)
                   AS running
        FROM l
    )
    SELECT 0::bigint, from_date, 'opening_balance', 'opening balance', NULL::bigint, NULL::bigint, NULL::billing.amount,
           v_open
    UNION ALL
    SELECT n.n, n.posted_on, n.kind, n.description, n.invoice_id, n.payment_id, n.amount, n.running FROM numbered n
    UNION ALL
    SELECT (SELECT count(*) FROM l) + 1, to_date, 'closing_balance', 'closing balance', NULL, NULL, NULL,
           billing.account_balance(a.account_id, to_date)
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION billing.account_statement(bigint, date, date) IS
    'an account statement for [from_date, to_date]: the opening balance, each invoice, payment, credit, refund '
    'and write-off with the running balance, and the closing balance (positive: the customer owes)';

-- sql/install/76_installments.sql
-- Installment plans: what is due on an open invoice split into N dated
-- installments that sum to it exactly (billing.split: the extra minor units
-- go to the first installments).  Payments still apply to the invoice as a
-- whole, oldest due first; billing.installment_status shows, installment by
-- installment, what the invoice's payments since the plan have covered.

CREATE TABLE billing.installment (
    account_id     bigint NOT NULL,
    invoice_id     bigint NOT NULL,
    installment_no integer NOT NULL CHECK (installment_no >= 1),
    due_date       date NOT NULL,
    amount         billing.amount NOT NULL CHECK (billing.to_numeric(amount) > 0),
    created_at     timestamptz NOT NULL DEFAULT billing.now(),
    PRIMARY KEY (account_id, invoice_id, installment_no),
    FOREIGN KEY (account_id, invoice_id) REFERENCES billing.invoice
);
COMMENT ON TABLE billing.installment IS
    'an installment plan of an open invoice: the amount due when the plan was made, split into dated parts that '
    'sum to it exactly';
SELECT pg_catalog.pg_extension_config_dump('billing.installment', '');

CREATE FUNCTION billing.create_installment_plan(account_id bigint, invoice_id bigint, installments integer,
                                                every interval DEFAULT '1 month', first_due date DEFAULT NULL)
RETURNS TABLE (installment_no integer, due_date date, amount billing.amount)
LANGUAGE plpgsql VOLATILE SET search_path = billing, pg_catalog AS $$
DECLARE
    a billing.account;
    i billing.invoice;
BEGIN
    a := billing._payment_account(account_id);
    IF installments IS NULL OR installments < 2 OR installments > 120 THEN
        RAISE EXCEPTION 'an installment plan has 2 to 120 installments, not %', coalesce(installments::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: installments => 3.';
    END IF;
    IF every IS NULL OR every <= interval '0' OR every > interval '1 year' THEN
        RAISE EXCEPTION 'installments must be a positive interval of up to a year apart, not %',
            coalesce(every::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Example: every => ''1 month''.';
    END IF;
    i := billing._lock_invoice(a, invoice_id);
    IF i.status <> 'open' OR billing.to_numeric(i.amount_due) <= 0 THEN
        RAISE EXCEPTION 'invoice % is % with % due: only an open invoice with something due takes a plan',
            i.invoice_id, i.status, i.amount_due
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Nothing is left to spread.';
    END IF;
    IF EXISTS (SELECT FROM billing.installment x WHERE x.account_id = a.account_id AND x.invoice_id = i.invoice_id) THEN
        RAISE EXCEPTION 'invoice % already has an installment plan', i.invoice_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'billing.installment_status shows it.';
    END IF;
    IF billing.minor_units(i.amount_due) < installments THEN
        RAISE EXCEPTION 'invoice % has only % due: too little for % installments', i.invoice_id, i.amount_due,
            installments
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Every installment must be at least one minor unit.';
    END IF;
    RETURN QUERY
    INSERT INTO billing.installment AS x (account_id, invoice_id, installment_no, due_date, amount)
    SELECT a.account_id, i.invoice_id, n::integer,
           (coalesce(first_due, i.due_date) + every * (n - 1))::date, part
    FROM unnest(billing.split(i.amount_due, installments)) WITH ORDINALITY s(part, n)
    RETURNING x.installment_no, x.due_date, x.amount;
    PERFORM billing._money_event(a.account_id, 'invoice.installment_plan',
                           jsonb_build_object('invoice_id', i.invoice_id, 'installments', installments));
END $$;
COMMENT ON FUNCTION billing.create_installment_plan(bigint, bigint, integer, interval, date) IS
    'splits what is due on an open invoice into 2 to 120 installments, every interval from first_due (default '
    'the invoice''s due date), that sum to it exactly; returns them';

-- What each installment still asks for: the invoice's payments since the
-- plan cover the installments in order.
CREATE VIEW billing.installment_status AS
SELECT x.account_id, x.invoice_id, i.status AS invoice_status, x.installment_no, x.due_date, x.amount,
       billing.amount(greatest(least(billing.to_numeric(x.amount),
                                     (i.planned - billing.to_numeric(i.amount_due)) - x.before), 0), i.currency) AS paid,
       billing.amount(billing.to_numeric(x.amount)
                      - greatest(least(billing.to_numeric(x.amount),
                                       (i.planned - billing.to_numeric(i.amount_due)) - x.before), 0), i.currency) AS remaining
FROM (SELECT y.*, coalesce(sum(billing.to_numeric(y.amount)) OVER (
                      PARTITION BY y.account_id, y.invoice_id ORDER BY y.installment_no
                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
      FROM billing.installment y) x
JOIN (SELECT inv.account_id, inv.invoice_id, inv.currency, inv.status, inv.amount_due,
             (SELECT sum(billing.to_numeric(z.amount)) FROM billing.installment z
              WHERE z.account_id = inv.account_id AND z.invoice_id = inv.invoice_id) AS planned
      FROM billing.invoice inv) i
  ON i.account_id = x.account_id AND i.invoice_id = x.invoice_id;
COMMENT ON VIEW billing.installment_status IS
    'each installment with what the invoice''s payments since the plan have covered (installments in order) '
    'and what remains';

-- sql/install/80_documents.sql
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
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
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
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = billing, pg_catalog AS $$
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
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = billing, pg_catalog AS $$
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
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
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
LANGUAGE plpgsql STABLE SET search_path = billing, pg_catalog AS $$
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

-- sql/install/90_invariants.sql
-- billing.check_invariants(): every invariant of docs/design.md that can be read
-- off the tables, as named checks; a row is a violation, no rows is good.
-- Each check is one branch of the UNION ALL: later issues add theirs.
CREATE FUNCTION billing.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog AS $$
    -- invoice totals are the sums of their lines
    SELECT 'invoice_totals_equal_lines',
           format('invoice %s (account %s): subtotal %s discount %s tax %s total %s, lines %s %s %s %s',
                  i.invoice_id, i.account_id, i.subtotal, i.discount, i.tax, i.total,
                  l.subtotal, l.discount, l.tax, l.total)
    FROM billing.invoice i
    LEFT JOIN LATERAL (
        SELECT coalesce(billing.sum(amount) FILTER (WHERE kind NOT IN ('discount', 'tax')), billing.from_minor_units(0, i.currency)) AS subtotal,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'discount'), billing.from_minor_units(0, i.currency)) AS discount,
               coalesce(billing.sum(amount) FILTER (WHERE kind = 'tax'), billing.from_minor_units(0, i.currency)) AS tax,
               coalesce(billing.sum(amount) FILTER (WHERE NOT tax_inclusive), billing.from_minor_units(0, i.currency)) AS total
        FROM billing.invoice_line x WHERE x.account_id = i.account_id AND x.invoice_id = i.invoice_id
    ) l ON true
    WHERE NOT (i.subtotal = l.subtotal AND i.discount = l.discount AND i.tax = l.tax AND i.total = l.total)
    UNION ALL
    -- every amount of an invoice is in its currency
    SELECT 'invoice_one_currency', format('invoice %s line %s: %s on a %s invoice', l.invoice_id, l.invoice_line_id,
                                          l.amount, i.currency)
    FROM billing.invoice_line l
    JOIN billing.invoice i ON i.account_id = l.account_id AND i.invoice_id = l.invoice_id
    WHERE billing.currency(l.amount) <> i.currency
    UNION ALL
    -- invariant 1: one recurring line per subscription item and period
    SELECT 'one_line_per_item_and_period',
           format('item %s (account %s) billed %s times for the period from %s', subscription_item_id, account_id,
                  count(*), period_start)
    FROM billing.invoice_line
    WHERE kind = 'subscription'
    GROUP BY account_id, subscription_item_id, period_start
    HAVING count(*) > 1
    UNION ALL
    -- recurring periods of one item never overlap
    SELECT 'no_overlapping_periods',
           format('item %s (account %s): [%s, %s) overlaps [%s, %s)', a.subscription_item_id, a.account_id,
                  a.period_start, a.period_end, b.period_start, b.period_end)
    FROM billing.invoice_line a
    JOIN billing.invoice_line b
      ON b.account_id = a.account_id AND b.subscription_item_id = a.subscription_item_id
     AND b.kind = 'subscription' AND b.invoice_line_id > a.invoice_line_id
     AND daterange(a.period_start, a.period_end) && daterange(b.period_start, b.period_end)
    WHERE a.kind = 'subscription'
    UNION ALL
    -- invoice numbers: gapless from 1 in each series of each entity
    SELECT 'invoice_numbers_gapless',
           format('entity %s series %s: %s numbers, the last is %s, counter %s', s.entity_id, s.series,
                  n.numbers, n.last, s.last_number)
    FROM billing.invoice_number_series s
    LEFT JOIN LATERAL (
        SELECT count(*) AS numbers, count(DISTINCT i.number) AS distinct_numbers,
               max(substr(i.number, length(s.series) + 2)::bigint) AS last
        FROM billing.invoice i
        WHERE i.entity_id = s.entity_id AND i.number LIKE s.series || '-%'
          AND substr(i.number, length(s.series) + 2) ~ '^[0-9]+$'
    ) n ON true
    WHERE NOT (n.numbers = s.last_number AND n.distinct_numbers = n.numbers AND coalesce(n.last, 0) = s.last_number)
    UNION ALL
    -- an amount due is the total less what was paid
    SELECT 'amount_due_is_total_less_paid',
           format('invoice %s: total %s, paid %s, due %s', invoice_id, total, amount_paid, amount_due)
    FROM billing.invoice
    WHERE status IN ('open', 'paid') AND amount_due <> total - amount_paid
          AND NOT (status = 'paid' AND total = amount_paid)
    UNION ALL
    -- a billed usage event belongs to an invoice of its account
    SELECT 'usage_billed_on_an_invoice',
           format('usage event %s (account %s) names invoice %s, which does not exist', e.usage_event_id,
                  e.account_id, e.invoice_id)
    FROM billing.usage_event e
    WHERE e.invoice_id IS NOT NULL AND NOT EXISTS (
        SELECT FROM billing.invoice i WHERE i.account_id = e.account_id AND i.invoice_id = e.invoice_id)
$$;
COMMENT ON FUNCTION billing.check_invariants() IS
    'the invariants that can be checked on the tables, one named check each; no rows means all hold';

-- sql/install/91_invariants_ledger.sql
-- billing.check_invariants() of 90_invariants.sql becomes
-- billing.check_invoicing_invariants(), and billing.check_invariants() is
-- both sets of checks: the invoicing checks stay exactly as that file
-- defines them, whatever it changes later.
ALTER FUNCTION billing.check_invariants() RENAME TO check_invoicing_invariants;
COMMENT ON FUNCTION billing.check_invoicing_invariants() IS
    'the invoicing invariants (invoice totals, invariant 1, numbers, usage), one named check each; '
    'no rows means all hold';

CREATE FUNCTION billing.check_invariants()
RETURNS TABLE (invariant text, detail text)
LANGUAGE sql STABLE SET search_path = billing, pg_catalog AS $$
    SELECT * FROM billing.check_invoicing_invariants()
    UNION ALL
    SELECT * FROM billing.check_ledger_invariants()
$$;
COMMENT ON FUNCTION billing.check_invariants() IS
    'every invariant of docs/design.md that can be checked on the tables (invoicing and ledger), one named check '
    'each; no rows means all hold';

-- sql/install/99_privileges.sql
-- Last in the install script: nothing of billing is usable by PUBLIC.
-- Functions are created executable by PUBLIC by default; take that back for
-- every function the files above created.  The DBA grants what each role
-- needs (README, Operations: roles).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA billing FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA billing FROM PUBLIC;
