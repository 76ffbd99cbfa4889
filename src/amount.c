/*
 * amount.c - fmgr glue for billing.amount: type I/O, operators, btree and
 * hash support, aggregates, constructors, allocation and locale formatting.
 *
 * The arithmetic itself lives in core/amount.c; this file converts datums,
 * and turns core errors into ereports with a SQLSTATE.
 */
#include "billing.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"

#include "core/currency.h"

static char *
amount_cstring(const Amount *a)
{
	char	   *buf = palloc(AMOUNT_TEXT_MAX);

	amount_format(a, buf);
	return buf;
}

static char *
code_cstring(const char code[3])
{
	return psprintf("%.3s", code);
}

/*
 * The DETAIL of every out-of-range error: the bound, in the currency when
 * there is one ("1000000000000.00 USD"), else in words.
 */
static int
range_detail(const char *code, int scale)
{
	if (code != NULL && scale >= 0 && scale <= 18)
	{
		Amount		max;

		memset(&max, 0, sizeof(max));
		max.units = amount_max_units(scale);
		memcpy(max.currency, code, 3);
		max.scale = (uint8) scale;
		return errdetail("An amount holds at most %s either side of zero (10^%d major units).",
						 amount_cstring(&max), AMOUNT_MAX_MAJOR_DIGITS);
	}
	return errdetail("An amount holds at most 10^%d major units of its currency either side of zero.",
					 AMOUNT_MAX_MAJOR_DIGITS);
}

#define RANGE_HINT \
	errhint("Sums over many amounts that may exceed it are exact as numeric: billing.sum_numeric(amount).")

void
billing_amount_error(AmountError err, const Amount *a, const Amount *b,
					 const char *what)
{
	switch (err)
	{
		case AMOUNT_CURRENCY_MISMATCH:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("currency mismatch: cannot %s %s and %s", what,
							a ? amount_cstring(a) : "?", b ? amount_cstring(b) : "?"),
					 errdetail("Amounts in different currencies are never added, compared or aggregated together."),
					 errhint("Convert one amount explicitly, or group by billing.currency(...).")));
			break;
		case AMOUNT_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("amount out of range in %s%s%s", what,
							a ? ": " : "", a ? amount_cstring(a) : ""),
					 a ? range_detail(a->currency, a->scale) : range_detail(NULL, -1),
					 RANGE_HINT));
			break;
		case AMOUNT_DIVISION_BY_ZERO:
			ereport(ERROR,
					(errcode(ERRCODE_DIVISION_BY_ZERO),
					 errmsg("division by zero")));
			break;
		case AMOUNT_UNKNOWN_CURRENCY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown currency code \"%s\"", a ? code_cstring(a->currency) : "?"),
					 errhint("Use an ISO 4217 code; SELECT * FROM billing.currencies lists them.")));
			break;
		case AMOUNT_BAD_WEIGHTS:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid ratios for %s", what),
					 errdetail("Ratios must be zero or positive, and at least one must be positive.")));
			break;
		default:
			elog(ERROR, "unexpected amount error %d in %s", (int) err, what);
	}
	pg_unreachable();
}

/* ---------------------------------------------------------------------
 * Text and binary I/O
 */

static void
report_input_error(AmountError err, const Amount *partial, const char *text)
{
	const char *example = "An amount is a number and an ISO 4217 currency code, such as \"12.34 USD\" or \"USD 12.34\".";

	switch (err)
	{
		case AMOUNT_EMPTY:
		case AMOUNT_SYNTAX:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type amount: \"%s\"", text),
					 errdetail("%s", example)));
			break;
		case AMOUNT_NO_CURRENCY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type amount: \"%s\"", text),
					 errdetail("The currency code is missing."),
					 errhint("Write the ISO 4217 code next to the number, such as \"%s USD\".", text)));
			break;
		case AMOUNT_BAD_CODE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type amount: \"%s\"", text),
					 errdetail("A currency code is three letters, such as USD or EUR.")));
			break;
		case AMOUNT_UNKNOWN_CURRENCY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown currency code \"%s\" in amount \"%s\"",
							code_cstring(partial->currency), text),
					 errhint("Use an ISO 4217 code; SELECT * FROM billing.currencies lists them.")));
			break;
		case AMOUNT_TOO_MANY_DIGITS:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("too many decimal places for %s in amount \"%s\"",
							code_cstring(partial->currency), text),
					 errdetail("%s has %d minor-unit digits; amounts are never rounded silently.",
							   code_cstring(partial->currency), (int) partial->scale),
					 errhint("Round explicitly, for example billing.round_amount(value, '%s', 'half_even').",
							 code_cstring(partial->currency))));
			break;
		case AMOUNT_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("amount out of range: \"%s\"", text),
					 range_detail(partial->currency, partial->scale),
					 errhint("A larger sum is a numeric: billing.sum_numeric(amount), or billing.to_numeric(amount) added up.")));
			break;
		case AMOUNT_NOT_FINITE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type amount: \"%s\"", text),
					 errdetail("An amount cannot be NaN or infinity.")));
			break;
		default:
			elog(ERROR, "unexpected amount input error %d", (int) err);
	}
}

PG_FUNCTION_INFO_V1(amount_in);
Datum
amount_in(PG_FUNCTION_ARGS)
{
	char	   *text = PG_GETARG_CSTRING(0);
	Amount	   *result = palloc(sizeof(Amount));
	AmountError err = amount_parse(text, result);

	if (err != AMOUNT_OK)
		report_input_error(err, result, text);
	PG_RETURN_AMOUNT_P(result);
}

PG_FUNCTION_INFO_V1(amount_out);
Datum
amount_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(amount_cstring(PG_GETARG_AMOUNT_P(0)));
}

/* The three code bytes of binary input, printable: "USD", "U\x01D". */
static char *
code_bytes_cstring(const char code[3])
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < 3; i++)
	{
		unsigned char c = (unsigned char) code[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			appendStringInfoChar(&buf, (char) c);
		else
			appendStringInfo(&buf, "\\x%02x", c);
	}
	return buf.data;
}

/*
 * Binary form: int64 units, then the three code letters, then the scale
 * byte.  The scale travels with the value for the same reason it is stored.
 * What binary input accepts is exactly what text input can make: the same
 * core rule decides (amount_validate), so a driver cannot store 1.005 USD,
 * a lower-case code, or an amount beyond the bound that text refuses.
 */
PG_FUNCTION_INFO_V1(amount_recv);
Datum
amount_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Amount	   *result = palloc0(sizeof(Amount));
	AmountError err;
	char	   *code;

	result->units = pq_getmsgint64(buf);
	pq_copymsgbytes(buf, result->currency, 3);
	result->scale = (uint8) pq_getmsgbyte(buf);
	err = amount_validate(result);
	if (err == AMOUNT_OK)
		PG_RETURN_AMOUNT_P(result);
	code = code_bytes_cstring(result->currency);
	switch (err)
	{
		case AMOUNT_BAD_CODE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external amount value: currency code \"%s\" is not three upper-case letters",
							code),
					 errhint("Send the ISO 4217 code in upper case, such as USD, as text output prints it.")));
			break;
		case AMOUNT_UNKNOWN_CURRENCY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid external amount value: unknown currency code \"%s\"", code),
					 errhint("Use an ISO 4217 code; SELECT * FROM billing.currencies lists them.")));
			break;
		case AMOUNT_BAD_SCALE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external amount value: %lld minor units of %s at scale %d",
							(long long) result->units, code, (int) result->scale),
					 errdetail("%s has %d minor-unit digits; binary input carries exactly those, as text input does.",
							   code, currency_digits(result->currency)),
					 errhint("Send the value in minor units at scale %d; round explicitly with billing.round_amount first.",
							 currency_digits(result->currency))));
			break;
		case AMOUNT_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("invalid external amount value: %lld minor units of %s are out of range",
							(long long) result->units, code),
					 range_detail(result->currency, result->scale),
					 errhint("A larger sum is a numeric: billing.sum_numeric(amount).")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external amount value: %lld minor units of %s with non-zero reserved bytes",
							(long long) result->units, code),
					 errhint("The binary form is 8 bytes of units, 3 code letters and 1 scale byte.")));
	}
	pg_unreachable();
}

PG_FUNCTION_INFO_V1(amount_send);
Datum
amount_send(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, a->units);
	pq_sendbytes(&buf, a->currency, 3);
	pq_sendbyte(&buf, a->scale);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* ---------------------------------------------------------------------
 * Comparison, btree and hash support
 */

static int
amount_compare(const Amount *a, const Amount *b)
{
	int			result;
	AmountError err = amount_cmp(a, b, &result);

	if (err != AMOUNT_OK)
		billing_amount_error(err, a, b, "compare");
	return result;
}

/*
 * One boolean comparison operator: `order` is amount_compare (the money
 * comparisons, an error across currencies) or amount_total_order (the
 * btree order, defined below).
 */
#define AMOUNT_COMPARISON(name, order, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			c = order(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)); \
	PG_RETURN_BOOL(expr); \
}

AMOUNT_COMPARISON(amount_lt, amount_compare, c < 0)
AMOUNT_COMPARISON(amount_le, amount_compare, c <= 0)
AMOUNT_COMPARISON(amount_gt, amount_compare, c > 0)
AMOUNT_COMPARISON(amount_ge, amount_compare, c >= 0)

/* Equality is false, not an error, across currencies: a join stays usable. */
PG_FUNCTION_INFO_V1(amount_eq_fn);
Datum
amount_eq_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(amount_eq(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)));
}

PG_FUNCTION_INFO_V1(amount_ne_fn);
Datum
amount_ne_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!amount_eq(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)));
}

/*
 * The btree order is total over all values: by currency code first, then by
 * value.  So an index can hold several currencies, and ORDER BY, DISTINCT,
 * GROUP BY and merge joins work on mixed columns.  The btree operators
 * (~<~ ~<=~ ~>=~ ~>~) implement this order and never fail: the planner calls
 * them on arbitrary pairs from the statistics.  The money comparisons
 * < <= > >= are separate operators that refuse two currencies, and so cannot
 * be members of the operator class.
 */
static int
amount_total_order(const Amount *a, const Amount *b)
{
	int			c = memcmp(a->currency, b->currency, 3);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return amount_compare(a, b);
}

AMOUNT_COMPARISON(amount_order_lt, amount_total_order, c < 0)
AMOUNT_COMPARISON(amount_order_le, amount_total_order, c <= 0)
AMOUNT_COMPARISON(amount_order_gt, amount_total_order, c > 0)
AMOUNT_COMPARISON(amount_order_ge, amount_total_order, c >= 0)

PG_FUNCTION_INFO_V1(amount_cmp_fn);
Datum
amount_cmp_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(amount_total_order(PG_GETARG_AMOUNT_P(0), PG_GETARG_AMOUNT_P(1)));
}

static int
amount_sort_cmp(Datum x, Datum y, SortSupport ssup pg_attribute_unused())
{
	return amount_total_order(DatumGetAmountP(x), DatumGetAmountP(y));
}

PG_FUNCTION_INFO_V1(amount_sortsupport);
Datum
amount_sortsupport(PG_FUNCTION_ARGS)
{
	SortSupport ssup = (SortSupport) PG_GETARG_POINTER(0);

	ssup->comparator = amount_sort_cmp;
	PG_RETURN_VOID();
}

/* Hashes the canonical form, so 1.50 and 1.5000 of one currency agree. */
static uint64
amount_hash_common(const Amount *a, uint64 seed)
{
	struct
	{
		int64		units;
		char		currency[3];
		uint8		scale;
	}			key;
	int			scale;

	memset(&key, 0, sizeof(key));
	amount_canonical(a, &key.units, &scale);
	memcpy(key.currency, a->currency, 3);
	key.scale = (uint8) scale;
	return hash_bytes_extended((const unsigned char *) &key, sizeof(key), seed);
}

PG_FUNCTION_INFO_V1(amount_hash);
Datum
amount_hash(PG_FUNCTION_ARGS)
{
	PG_RETURN_UINT32((uint32) amount_hash_common(PG_GETARG_AMOUNT_P(0), 0));
}

PG_FUNCTION_INFO_V1(amount_hash_extended);
Datum
amount_hash_extended(PG_FUNCTION_ARGS)
{
	PG_RETURN_UINT64(amount_hash_common(PG_GETARG_AMOUNT_P(0), PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(amount_smaller);
Datum
amount_smaller(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_AMOUNT_P(amount_compare(a, b) <= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(amount_larger);
Datum
amount_larger(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);

	PG_RETURN_AMOUNT_P(amount_compare(a, b) >= 0 ? a : b);
}

/* ---------------------------------------------------------------------
 * Arithmetic
 */

static Datum
amount_result(AmountError err, Amount *result, const Amount *a,
			  const Amount *b, const char *what)
{
	if (err != AMOUNT_OK)
		billing_amount_error(err, a, b, what);
	return AmountPGetDatum(result);
}

PG_FUNCTION_INFO_V1(amount_pl);
Datum
amount_pl(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);
	Amount	   *r = palloc(sizeof(Amount));

	return amount_result(amount_add(a, b, r), r, a, b, "add");
}

PG_FUNCTION_INFO_V1(amount_mi);
Datum
amount_mi(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);
	Amount	   *r = palloc(sizeof(Amount));

	return amount_result(amount_sub(a, b, r), r, a, b, "subtract");
}

PG_FUNCTION_INFO_V1(amount_um);
Datum
amount_um(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *r = palloc(sizeof(Amount));

	return amount_result(amount_neg(a, r), r, a, NULL, "negate");
}

/*
 * amount * integer and amount / integer, for int8 and int4 on either side:
 * `arg` is the amount's argument number, `factor` how to read the integer.
 */
#define AMOUNT_INT_OP(name, arg, factor, call, what) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	Amount	   *a = PG_GETARG_AMOUNT_P(arg); \
	Amount	   *r = palloc(sizeof(Amount)); \
	\
	return amount_result(call(a, factor, r), r, a, NULL, what); \
}

/* integer division rounds by the setting billing.rounding */
#define amount_div_by_setting(a, d, r) amount_div_int(a, d, billing_rounding_mode(), r)

AMOUNT_INT_OP(amount_mul_int8, 0, PG_GETARG_INT64(1), amount_mul_int, "multiply")
AMOUNT_INT_OP(int8_mul_amount, 1, PG_GETARG_INT64(0), amount_mul_int, "multiply")
AMOUNT_INT_OP(amount_mul_int4, 0, PG_GETARG_INT32(1), amount_mul_int, "multiply")
AMOUNT_INT_OP(int4_mul_amount, 1, PG_GETARG_INT32(0), amount_mul_int, "multiply")
AMOUNT_INT_OP(amount_div_int8, 0, PG_GETARG_INT64(1), amount_div_by_setting, "divide")
AMOUNT_INT_OP(amount_div_int4, 0, PG_GETARG_INT32(1), amount_div_by_setting, "divide")

/*
 * n / d rounded to an integer by `mode`, exactly, for numerics of any size:
 * q = trunc(n / d) and r = n - q * d are exact, and the rounding decision
 * comes from rounding.c like everywhere else.
 */
static Numeric
numeric_round_div_exact(Numeric n, Numeric d, RoundingMode mode)
{
	Numeric		q,
				r,
				twice_r;
	int			sign_n,
				sign_d,
				cmp_half;
	bool		exact,
				odd;
	int			adj;

	sign_n = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											   NumericGetDatum(int64_to_numeric(0))));
	sign_d = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(d),
											   NumericGetDatum(int64_to_numeric(0))));
	if (sign_d == 0)
		ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("division by zero")));
	q = DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(n),
											NumericGetDatum(d)));
	r = numeric_sub_opt_error(n, numeric_mul_opt_error(q, d, NULL), NULL);
	exact = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(r),
											  NumericGetDatum(int64_to_numeric(0)))) == 0;
	twice_r = DatumGetNumeric(DirectFunctionCall1(numeric_abs,
												  NumericGetDatum(numeric_add_opt_error(r, r, NULL))));
	cmp_half = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(twice_r),
												 DirectFunctionCall1(numeric_abs, NumericGetDatum(d))));
	odd = DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											NumericGetDatum(numeric_mod_opt_error(q, int64_to_numeric(2), NULL)),
											NumericGetDatum(int64_to_numeric(0)))) != 0;
	adj = rounding_adjust(mode, sign_n * sign_d, cmp_half, exact, odd);
	if (adj != 0)
		q = numeric_add_opt_error(q, int64_to_numeric(adj), NULL);
	return q;
}

/*
 * The same, as minor units of an amount of `code` at `scale`: raises 22003
 * when the result is beyond the bound (AMOUNT_MAX_MAJOR).
 */
static int64
numeric_round_div(Numeric n, Numeric d, RoundingMode mode, const char *code, int scale,
				  const char *what)
{
	Numeric		q = numeric_round_div_exact(n, d, mode);

	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp,
										  DirectFunctionCall1(numeric_abs, NumericGetDatum(q)),
										  NumericGetDatum(int64_to_numeric(amount_max_units(scale))))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount out of range in %s: %s minor units of %.3s", what,
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(q))), code),
				 range_detail(code, scale),
				 RANGE_HINT));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(q)));
}

static void
check_finite(Numeric n, const char *what)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot %s an amount by %s", what,
						numeric_is_nan(n) ? "NaN" : "infinity")));
}

PG_FUNCTION_INFO_V1(amount_mul_numeric);
Datum
amount_mul_numeric(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Numeric		f = PG_GETARG_NUMERIC(1);
	Amount	   *r = palloc0(sizeof(Amount));

	check_finite(f, "multiply");
	*r = *a;
	r->units = numeric_round_div(numeric_mul_opt_error(int64_to_numeric(a->units), f, NULL),
								 int64_to_numeric(1), billing_rounding_mode(), a->currency, a->scale,
								 "multiply");
	PG_RETURN_AMOUNT_P(r);
}

PG_FUNCTION_INFO_V1(numeric_mul_amount);
Datum
numeric_mul_amount(PG_FUNCTION_ARGS)
{
	return DirectFunctionCall2(amount_mul_numeric, PG_GETARG_DATUM(1), PG_GETARG_DATUM(0));
}

PG_FUNCTION_INFO_V1(amount_div_numeric);
Datum
amount_div_numeric(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Numeric		d = PG_GETARG_NUMERIC(1);
	Amount	   *r = palloc0(sizeof(Amount));

	check_finite(d, "divide");
	*r = *a;
	r->units = numeric_round_div(int64_to_numeric(a->units), d, billing_rounding_mode(), a->currency,
								 a->scale, "divide");
	PG_RETURN_AMOUNT_P(r);
}

/* amount / amount of one currency: the exact ratio as a numeric. */
PG_FUNCTION_INFO_V1(amount_div_amount);
Datum
amount_div_amount(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	Amount	   *b = PG_GETARG_AMOUNT_P(1);
	int128_t	ua,
				ub;
	int			scale;
	AmountError err = amount_align(a, b, &ua, &ub, &scale);

	if (err != AMOUNT_OK)
		billing_amount_error(err, a, b, "divide");
	if (ub == 0)
		ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("division by zero")));

	/* both sides were raised to one scale; with |units| < 2^63 and scale
	 * differences <= 9 digits only the raised side can exceed int64, so
	 * divide the original values and correct by the power of ten */
	{
		Numeric		na = int64_div_fast_to_numeric(a->units, a->scale);
		Numeric		nb = int64_div_fast_to_numeric(b->units, b->scale);

		PG_RETURN_NUMERIC(numeric_div_opt_error(na, nb, NULL));
	}
}

/* ---------------------------------------------------------------------
 * Aggregates: sum and avg over a 128-bit accumulator
 */

static AmountSum *
sum_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggctx;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "aggregate function called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		AmountSum  *s = MemoryContextAlloc(aggctx, sizeof(AmountSum));

		amount_sum_init(s);
		return s;
	}
	return (AmountSum *) PG_GETARG_POINTER(0);
}

PG_FUNCTION_INFO_V1(amount_sum_accum);
Datum
amount_sum_accum(PG_FUNCTION_ARGS)
{
	AmountSum  *s = sum_state(fcinfo);

	if (!PG_ARGISNULL(1))
	{
		Amount	   *a = PG_GETARG_AMOUNT_P(1);

		/* the common case inline: same currency and scale, no overflow */
		int128_t	total;

		if (s->count > 0 && s->scale == a->scale &&
			memcmp(s->currency, a->currency, 3) == 0 &&
			!__builtin_add_overflow(s->total, (int128_t) a->units, &total))
		{
			s->total = total;
			s->count++;
		}
		else
		{
			AmountError err = amount_sum_add(s, a);

			if (err != AMOUNT_OK)
			{
				Amount		first;

				memset(&first, 0, sizeof(first));
				memcpy(first.currency, s->currency, 3);
				first.scale = s->scale;
				if (err == AMOUNT_CURRENCY_MISMATCH)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("currency mismatch in aggregate: %.3s and %.3s",
									s->currency, a->currency),
							 errdetail("Amounts in different currencies are never summed together."),
							 errhint("Add GROUP BY billing.currency(...) to aggregate each currency.")));
				billing_amount_error(err, a, NULL, "sum");
			}
		}
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(amount_sum_combine_fn);
Datum
amount_sum_combine_fn(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	AmountSum  *s;
	AmountError err;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "aggregate function called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(PG_ARGISNULL(0) ? NULL : PG_GETARG_POINTER(0));
	if (PG_ARGISNULL(0))
	{
		s = MemoryContextAlloc(aggctx, sizeof(AmountSum));
		*s = *(AmountSum *) PG_GETARG_POINTER(1);
		PG_RETURN_POINTER(s);
	}
	s = (AmountSum *) PG_GETARG_POINTER(0);
	err = amount_sum_combine(s, (AmountSum *) PG_GETARG_POINTER(1));
	if (err == AMOUNT_CURRENCY_MISMATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("currency mismatch in aggregate: %.3s and %.3s", s->currency,
						((AmountSum *) PG_GETARG_POINTER(1))->currency),
				 errhint("Add GROUP BY billing.currency(...) to aggregate each currency.")));
	if (err != AMOUNT_OK)
		billing_amount_error(err, NULL, NULL, "sum");
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(amount_sum_serialize);
Datum
amount_sum_serialize(PG_FUNCTION_ARGS)
{
	AmountSum  *s = (AmountSum *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	uint128		t = (uint128) s->total;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, (uint64) (t >> 64));
	pq_sendint64(&buf, (uint64) t);
	pq_sendint64(&buf, s->count);
	pq_sendbytes(&buf, s->currency, 3);
	pq_sendbyte(&buf, s->scale);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(amount_sum_deserialize);
Datum
amount_sum_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	AmountSum  *s = palloc0(sizeof(AmountSum));
	uint64		hi,
				lo;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	hi = (uint64) pq_getmsgint64(&buf);
	lo = (uint64) pq_getmsgint64(&buf);
	s->total = (int128_t) (((uint128) hi << 64) | lo);
	s->count = pq_getmsgint64(&buf);
	pq_copymsgbytes(&buf, s->currency, 3);
	s->scale = (uint8) pq_getmsgbyte(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(amount_sum_final);
Datum
amount_sum_final(PG_FUNCTION_ARGS)
{
	AmountSum  *s = PG_ARGISNULL(0) ? NULL : (AmountSum *) PG_GETARG_POINTER(0);
	Amount	   *r;
	AmountError err;

	if (s == NULL || s->count == 0)
		PG_RETURN_NULL();
	r = palloc(sizeof(Amount));
	err = amount_sum_result(s, r);
	if (err != AMOUNT_OK)
	{
		char		total[AMOUNT_WIDE_TEXT_MAX];

		amount_format_wide(s->total, s->scale, total);
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("sum of %lld %.3s amounts is out of range: %s %.3s", (long long) s->count, s->currency,
						total, s->currency),
				 range_detail(s->currency, s->scale),
				 RANGE_HINT));
	}
	PG_RETURN_AMOUNT_P(r);
}

/*
 * sum_numeric: the same 128-bit total as numeric, at the amounts' scale, so
 * never out of range: what reports add up (any number of amounts of any
 * number of accounts).  The total goes through its decimal text, exact.
 */
PG_FUNCTION_INFO_V1(amount_sum_numeric_final);
Datum
amount_sum_numeric_final(PG_FUNCTION_ARGS)
{
	AmountSum  *s = PG_ARGISNULL(0) ? NULL : (AmountSum *) PG_GETARG_POINTER(0);
	char		total[AMOUNT_WIDE_TEXT_MAX];

	if (s == NULL || s->count == 0)
		PG_RETURN_NULL();
	amount_format_wide(s->total, s->scale, total);
	PG_RETURN_DATUM(DirectFunctionCall3(numeric_in, CStringGetDatum(total), ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1)));
}

PG_FUNCTION_INFO_V1(amount_avg_final);
Datum
amount_avg_final(PG_FUNCTION_ARGS)
{
	AmountSum  *s = PG_ARGISNULL(0) ? NULL : (AmountSum *) PG_GETARG_POINTER(0);
	Amount	   *r;
	AmountError err;

	if (s == NULL || s->count == 0)
		PG_RETURN_NULL();
	r = palloc(sizeof(Amount));
	err = amount_sum_avg(s, billing_rounding_mode(), r);
	if (err != AMOUNT_OK)
		billing_amount_error(err, NULL, NULL, "avg");
	PG_RETURN_AMOUNT_P(r);
}

/* ---------------------------------------------------------------------
 * Constructors and accessors
 */

static void
currency_arg(text *code_text, char code[3], int *digits)
{
	char	   *s = text_to_cstring(code_text);

	if (!currency_code_normalize(s, strlen(s), code))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid currency code \"%s\"", s),
				 errdetail("A currency code is three letters, such as USD or EUR.")));
	*digits = currency_digits(code);
	if (*digits < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown currency code \"%s\"", s),
				 errhint("Use an ISO 4217 code; SELECT * FROM billing.currencies lists them.")));
}

/* value * 10^digits, rounded by mode; `exact` demands no rounding at all. */
static Datum
make_from_numeric(Numeric value, text *code_text, bool exact, RoundingMode mode)
{
	char		code[3];
	int			digits;
	Numeric		scaled;
	Amount	   *r = palloc0(sizeof(Amount));

	currency_arg(code_text, code, &digits);
	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an amount cannot be %s", numeric_is_nan(value) ? "NaN" : "infinity")));
	scaled = numeric_mul_opt_error(value, int64_to_numeric(amount_pow10(digits)), NULL);
	if (exact)
	{
		Numeric		whole = DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
																NumericGetDatum(scaled),
																Int32GetDatum(0)));

		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(whole),
											  NumericGetDatum(scaled))) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("too many decimal places for %.3s: %s", code,
							DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)))),
					 errdetail("%.3s has %d minor-unit digits; amounts are never rounded silently.",
							   code, digits),
					 errhint("Round explicitly with billing.round_amount(value, '%.3s', 'half_even').",
							 code)));
	}
	r->units = numeric_round_div(scaled, int64_to_numeric(1), mode, code, digits,
								 exact ? "billing.amount" : "billing.round_amount");
	memcpy(r->currency, code, 3);
	r->scale = (uint8) digits;
	PG_RETURN_AMOUNT_P(r);
}

PG_FUNCTION_INFO_V1(amount_from_numeric);
Datum
amount_from_numeric(PG_FUNCTION_ARGS)
{
	return make_from_numeric(PG_GETARG_NUMERIC(0), PG_GETARG_TEXT_PP(1), true, ROUND_DOWN);
}

PG_FUNCTION_INFO_V1(amount_round_numeric);
Datum
amount_round_numeric(PG_FUNCTION_ARGS)
{
	RoundingMode mode = PG_NARGS() > 2 ?
		billing_parse_rounding_mode(text_to_cstring(PG_GETARG_TEXT_PP(2))) :
		billing_rounding_mode();

	return make_from_numeric(PG_GETARG_NUMERIC(0), PG_GETARG_TEXT_PP(1), false, mode);
}

PG_FUNCTION_INFO_V1(amount_from_minor_units);
Datum
amount_from_minor_units(PG_FUNCTION_ARGS)
{
	int64		units = PG_GETARG_INT64(0);
	char		code[3];
	int			digits;
	Amount	   *r = palloc0(sizeof(Amount));

	currency_arg(PG_GETARG_TEXT_PP(1), code, &digits);
	if (amount_make(units, code, r) != AMOUNT_OK)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("amount out of range: %lld minor units of %.3s", (long long) units, code),
				 range_detail(code, digits),
				 RANGE_HINT));
	PG_RETURN_AMOUNT_P(r);
}

/*
 * billing.round_money(value numeric, currency text) -> numeric: value
 * rounded once by billing.rounding to the currency's minor units, with
 * exactly its digits, and no bound: for reports, which compute money that
 * no single amount need hold (a monthly value of a weekly price, the MRR of
 * a whole currency).
 */
PG_FUNCTION_INFO_V1(amount_round_money);
Datum
amount_round_money(PG_FUNCTION_ARGS)
{
	Numeric		value = PG_GETARG_NUMERIC(0);
	char		code[3];
	int			digits;
	Numeric		factor;
	Numeric		units;

	currency_arg(PG_GETARG_TEXT_PP(1), code, &digits);
	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot round %s to money", numeric_is_nan(value) ? "NaN" : "infinity"),
				 errhint("Pass a finite number.")));
	factor = int64_to_numeric(amount_pow10(digits));
	/* the three-argument form names its mode (billing's own money paths) */
	units = numeric_round_div_exact(numeric_mul_opt_error(value, factor, NULL), int64_to_numeric(1),
									PG_NARGS() > 2 ? billing_parse_rounding_mode(text_to_cstring(PG_GETARG_TEXT_PP(2)))
									: billing_rounding_mode());
	/* units / 10^digits is exact; round() only sets the display scale */
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_round,
										NumericGetDatum(numeric_div_opt_error(units, factor, NULL)),
										Int32GetDatum(digits)));
}

PG_FUNCTION_INFO_V1(amount_minor_units);
Datum
amount_minor_units(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_AMOUNT_P(0)->units);
}

PG_FUNCTION_INFO_V1(amount_currency);
Datum
amount_currency(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text_with_len(PG_GETARG_AMOUNT_P(0)->currency, 3));
}

PG_FUNCTION_INFO_V1(amount_scale);
Datum
amount_scale(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_AMOUNT_P(0)->scale);
}

PG_FUNCTION_INFO_V1(amount_to_numeric);
Datum
amount_to_numeric(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);

	PG_RETURN_NUMERIC(int64_div_fast_to_numeric(a->units, a->scale));
}

/* ---------------------------------------------------------------------
 * Allocation
 */

/*
 * The element type comes from the call's own result type, looked up per call
 * (a syscache hit): a cached OID would go stale when the extension is dropped
 * and created again in the same session.
 */
static Datum
build_amount_array(FunctionCallInfo fcinfo, Amount *parts, int n)
{
	Oid			elemtype = get_element_type(get_fn_expr_rettype(fcinfo->flinfo));
	Datum	   *elems = palloc(sizeof(Datum) * n);

	if (!OidIsValid(elemtype))
		elog(ERROR, "could not determine the element type of billing.amount[]");
	for (int i = 0; i < n; i++)
		elems[i] = AmountPGetDatum(&parts[i]);
	return PointerGetDatum(construct_array(elems, n, elemtype,
										   sizeof(Amount), false, TYPALIGN_DOUBLE));
}

#define MAX_PARTS 1000000

static Datum
allocate_common(FunctionCallInfo fcinfo, Amount *total, int64 *weights, int n)
{
	Amount	   *parts = palloc(sizeof(Amount) * n);
	AllocSlot  *slots = palloc(sizeof(AllocSlot) * n);
	AmountError err = amount_allocate(total, weights, n, parts, slots);

	if (err != AMOUNT_OK)
		billing_amount_error(err, total, NULL, "billing.allocate");
	return build_amount_array(fcinfo, parts, n);
}

/*
 * Ratios that do not fit the core's int64 weights (1/3 as a numeric has 20
 * decimals; 10^30 is too large): the same rule as amount_allocate, done in
 * exact numeric arithmetic.  Each part is trunc(|total| x r / sum) minor
 * units; the units left over (fewer than the number of parts) go one each
 * to the largest remainders, ties to the earlier part.  Quotients and
 * remainders of numerics are exact, so nothing is rounded on the way.
 */
typedef struct NumericSlot
{
	Numeric		remainder;
	int			index;
} NumericSlot;

static int
numeric_slot_order(const void *pa, const void *pb)
{
	const NumericSlot *a = pa;
	const NumericSlot *b = pb;
	int			c = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(b->remainder),
													  NumericGetDatum(a->remainder)));

	if (c != 0)
		return c;
	return (a->index > b->index) - (a->index < b->index);
}

static Datum
allocate_numeric(FunctionCallInfo fcinfo, Amount *total, Datum *ratios, int n)
{
	Amount	   *parts = palloc(sizeof(Amount) * n);
	NumericSlot *slots = palloc(sizeof(NumericSlot) * n);
	int64		mag = total->units < 0 ? -total->units : total->units;
	Numeric		nmag = int64_to_numeric(mag);
	Numeric		zero = int64_to_numeric(0);
	Numeric		sum = zero;
	int64		given = 0;

	for (int i = 0; i < n; i++)
		sum = numeric_add_opt_error(sum, DatumGetNumeric(ratios[i]), NULL);
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(sum), NumericGetDatum(zero))) == 0)
		billing_amount_error(AMOUNT_BAD_WEIGHTS, total, NULL, "billing.allocate");
	for (int i = 0; i < n; i++)
	{
		Numeric		prod = numeric_mul_opt_error(nmag, DatumGetNumeric(ratios[i]), NULL);
		Numeric		q = DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(prod),
															NumericGetDatum(sum)));
		int64		units = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(q)));

		slots[i].remainder = numeric_sub_opt_error(prod, numeric_mul_opt_error(q, sum, NULL), NULL);
		slots[i].index = i;
		given += units;
		memset(&parts[i], 0, sizeof(Amount));
		parts[i].units = units;
		memcpy(parts[i].currency, total->currency, 3);
		parts[i].scale = total->scale;
	}
	/* each part is at most |total|, and their sum too: no overflow */
	if (mag - given > 0)
	{
		qsort(slots, (size_t) n, sizeof(NumericSlot), numeric_slot_order);
		for (int64 k = 0; k < mag - given; k++)
			parts[slots[k].index].units++;
	}
	if (total->units < 0)
		for (int i = 0; i < n; i++)
			parts[i].units = -parts[i].units;
	return build_amount_array(fcinfo, parts, n);
}

/*
 * Ratios are numerics; they are made whole by one common power of ten (the
 * largest number of decimals among them), which keeps them exactly
 * proportional, and the core allocates by those int64 weights.  Ratios
 * that do not fit that way are allocated in numeric arithmetic by the same
 * rule (allocate_numeric).
 */
PG_FUNCTION_INFO_V1(amount_allocate_fn);
Datum
amount_allocate_fn(PG_FUNCTION_ARGS)
{
	Amount	   *total = PG_GETARG_AMOUNT_P(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			max_scale = 0;
	int64	   *weights;
	Numeric		factor;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ratios must be a one-dimensional array")));
	deconstruct_array(arr, NUMERICOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot allocate over an empty array of ratios")));
	if (n > MAX_PARTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot allocate into more than %d parts", MAX_PARTS)));
	for (int i = 0; i < n; i++)
	{
		Numeric		r;
		int			sc;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("ratio %d is NULL", i + 1)));
		r = DatumGetNumeric(elems[i]);
		if (numeric_is_nan(r) || numeric_is_inf(r))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ratio %d is not finite", i + 1)));
		sc = DatumGetInt32(DirectFunctionCall1(numeric_min_scale, elems[i]));
		if (sc > max_scale)
			max_scale = sc;
	}
	for (int i = 0; i < n; i++)
		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, elems[i],
											  NumericGetDatum(int64_to_numeric(0)))) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ratio %d is negative: %s", i + 1,
							DatumGetCString(DirectFunctionCall1(numeric_out, elems[i]))),
					 errdetail("Ratios must be zero or positive, and at least one must be positive.")));
	if (max_scale > 18)
		return allocate_numeric(fcinfo, total, elems, n);
	factor = int64_to_numeric(amount_pow10(max_scale));
	weights = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		Numeric		w = numeric_mul_opt_error(DatumGetNumeric(elems[i]), factor, NULL);

		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(w),
											  NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0)
			return allocate_numeric(fcinfo, total, elems, n);
		weights[i] = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(w)));
	}
	/* the core sums weights in int128: n < 2^20 weights below 2^63 fit */
	return allocate_common(fcinfo, total, weights, n);
}

PG_FUNCTION_INFO_V1(amount_split_fn);
Datum
amount_split_fn(PG_FUNCTION_ARGS)
{
	Amount	   *total = PG_GETARG_AMOUNT_P(0);
	int32		n = PG_GETARG_INT32(1);
	int64	   *weights;

	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot split an amount into %d parts", n),
				 errhint("The number of parts must be at least 1.")));
	if (n > MAX_PARTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot split an amount into more than %d parts", MAX_PARTS)));
	weights = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
		weights[i] = 1;
	return allocate_common(fcinfo, total, weights, n);
}

/* ---------------------------------------------------------------------
 * Locale formatting and the currency list
 */

PG_FUNCTION_INFO_V1(amount_format_locale);
Datum
amount_format_locale(PG_FUNCTION_ARGS)
{
	Amount	   *a = PG_GETARG_AMOUNT_P(0);
	char	   *locale = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char		number[AMOUNT_TEXT_MAX];
	char		code[4];
	char		out[512];
	int			len;
	char	   *converted;

	amount_format_number(a, number);
	memcpy(code, a->currency, 3);
	code[3] = '\0';
	len = currency_format_locale(number, code, a->scale, locale, out, sizeof(out));
	if (len == -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown locale \"%s\"", locale),
				 errhint("Use a BCP 47 language tag that ICU knows, such as en-US, de-DE or he-IL.")));
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("ICU could not format %s for locale \"%s\"", amount_cstring(a), locale)));
	converted = pg_any_to_server(out, len, PG_UTF8);
	PG_RETURN_TEXT_P(cstring_to_text(converted));
}

PG_FUNCTION_INFO_V1(currency_list);
Datum
currency_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			cursor = 0;
	char		code[3];

	InitMaterializedSRF(fcinfo, 0);
	while (currency_next(&cursor, code))
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = PointerGetDatum(cstring_to_text_with_len(code, 3));
		values[1] = Int32GetDatum(currency_digits(code));
		values[2] = BoolGetDatum(currency_is_current(code));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
