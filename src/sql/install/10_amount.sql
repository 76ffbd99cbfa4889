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
    STORAGE = plain,
    -- An amount is written as a quoted literal ('58.31 USD').  Where a
    -- function also takes a plain number in the currency it knows
    -- (apply_payment(1, 58.31, 'cash')), PostgreSQL resolves an untyped
    -- literal to the string category: in it, '58.31 USD' is an amount.
    CATEGORY = 'S'
);
COMMENT ON FUNCTION billing.amount_in(cstring) IS 'text input: ''12.34 USD'', ''USD 12.34'', signs, lower-case codes';
COMMENT ON FUNCTION billing.amount_out(billing.amount) IS 'text output: the number with the currency''s digits, then the code';
COMMENT ON FUNCTION billing.amount_recv(internal) IS
    'binary input: int64 minor units, three code letters, one scale byte; accepts exactly what text input accepts '
    '(a known upper-case code, the currency''s own digits, at most 10^12 major units)';
COMMENT ON FUNCTION billing.amount_send(billing.amount) IS 'binary output: int64 minor units, three code letters, one scale byte';
COMMENT ON TYPE billing.amount IS
    'Money: exact minor units with their ISO 4217 currency, such as ''12.34 USD''; at most 10^12 major units '
    '(1000000000000.00 USD) either side of zero, a bound every constructor and operator keeps (22003 beyond it)';

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
CREATE FUNCTION billing.amount_sum_numeric_final(internal) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_sum_numeric_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
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
COMMENT ON FUNCTION billing.amount_sum_numeric_final(internal) IS 'sum_numeric final: the exact total as numeric, never out of range';
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
-- The sum reports use: one amount is bounded (10^12 major units), a sum of
-- any number of them is not, so this one ends in numeric, at the amounts'
-- scale, and cannot fail on range whatever one tenant stores.
CREATE AGGREGATE billing.sum_numeric(billing.amount) (
    SFUNC = billing.amount_sum_accum, STYPE = internal, SSPACE = 48,
    FINALFUNC = billing.amount_sum_numeric_final,
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
COMMENT ON AGGREGATE billing.sum(billing.amount) IS
    'exact sum as an amount; error on mixed currencies or a result beyond 10^12 major units';
COMMENT ON AGGREGATE billing.sum_numeric(billing.amount) IS
    'exact sum as numeric with the currency''s digits, never out of range; error on mixed currencies';
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
CREATE FUNCTION billing.round_money(value numeric, currency text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_money(numeric, text) IS
    'value rounded once by billing.rounding to the currency''s minor units, as numeric with exactly its digits '
    'and no bound (money that no single amount need hold, such as a currency''s MRR)';
CREATE FUNCTION billing.round_money(value numeric, currency text, mode text) RETURNS numeric
    AS 'MODULE_PATHNAME', 'amount_round_money' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billing.round_money(numeric, text, text) IS
    'value rounded once by the named mode to the currency''s minor units, as numeric with its digits and no bound';
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
