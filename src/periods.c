/*
 * periods.c - SQL-callable billing periods and proration over the core in
 * core/calendar.c and core/proration.c.
 *
 * Dates pass straight through: a DateADT is the core's day number.  Periods
 * are daterange values, which PostgreSQL always stores as [lower, upper),
 * exactly the core's Period.  NULL arguments, infinite dates and unbounded
 * or empty periods are errors here, not NULL results: a billing period that
 * silently turns NULL is a customer silently not billed.
 */
#include "billing.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/rangetypes.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "core/calendar.h"
#include "core/proration.h"

static TypeCacheEntry *
daterange_typcache(void)
{
	return lookup_type_cache(DATERANGEOID, TYPECACHE_RANGE_INFO);
}

/* The type cache for daterange, kept in fn_extra (not for set-returning functions). */
static TypeCacheEntry *
cached_daterange_typcache(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = daterange_typcache();
	return (TypeCacheEntry *) fcinfo->flinfo->fn_extra;
}

static void
require_not_null(FunctionCallInfo fcinfo, int argno, const char *fname,
				 const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not be NULL", fname, argname),
				 errhint("Billing periods need every argument; filter out NULLs before calling %s.",
						 fname)));
}

static const char *
date_text(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

/*
 * A daterange argument as text.  range_out needs the caller's flinfo for its
 * type cache, so the text is built here from the bounds instead.
 */
static const char *
range_text(TypeCacheEntry *typcache, Datum range)
{
	RangeBound	lower,
				upper;
	bool		empty;

	range_deserialize(typcache, DatumGetRangeTypeP(range), &lower, &upper, &empty);
	if (empty)
		return "empty";
	return psprintf("%c%s,%s%c",
					lower.inclusive ? '[' : '(',
					lower.infinite ? "" : date_text(DatumGetDateADT(lower.val)),
					upper.infinite ? "" : date_text(DatumGetDateADT(upper.val)),
					upper.inclusive ? ']' : ')');
}

static DateADT
get_date_arg(FunctionCallInfo fcinfo, int argno, const char *fname,
			 const char *argname)
{
	DateADT		d;

	require_not_null(fcinfo, argno, fname, argname);
	d = PG_GETARG_DATEADT(argno);
	if (DATE_NOT_FINITE(d))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s: %s must be a finite date, not \"%s\"", fname, argname, date_text(d)),
				 errhint("Billing periods begin and end on real calendar dates.")));
	return d;
}

static Cadence
get_cadence_arg(FunctionCallInfo fcinfo, int argno, const char *fname)
{
	Interval   *iv;
	Cadence		c;
	CalError	err;

	require_not_null(fcinfo, argno, fname, "cadence");
	iv = PG_GETARG_INTERVAL_P(argno);
	err = cadence_from_interval(iv->month, iv->day, iv->time, &c);
	if (err != CAL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: invalid billing cadence \"%s\"", fname,
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(iv)))),
				 errdetail("%s.", cal_error_text(err)),
				 errhint("Use a positive number of one unit: days, weeks, months, quarters or years, "
						 "such as '1 month', '2 weeks' or '1 year'.")));
	return c;
}

/*
 * A daterange argument as a Period.  With allow_empty, an empty range gives
 * false (the caller decides what empty means); otherwise it is an error.
 */
static bool
get_period_arg(FunctionCallInfo fcinfo, TypeCacheEntry *typcache, int argno,
			   const char *fname, const char *argname, bool allow_empty,
			   Period *out)
{
	RangeType  *r;
	RangeBound	lower,
				upper;
	bool		empty;

	require_not_null(fcinfo, argno, fname, argname);
	r = PG_GETARG_RANGE_P(argno);
	range_deserialize(typcache, r, &lower, &upper, &empty);
	if (empty)
	{
		if (allow_empty)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must not be empty", fname, argname),
				 errhint("A billing period has at least one day, such as '[2024-01-01,2024-02-01)'.")));
	}
	if (lower.infinite || upper.infinite ||
		DATE_NOT_FINITE(DatumGetDateADT(lower.val)) ||
		DATE_NOT_FINITE(DatumGetDateADT(upper.val)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be bounded, not \"%s\"", fname, argname,
						range_text(typcache, RangeTypePGetDatum(r))),
				 errhint("Give both a first day and an end day, such as '[2024-01-01,2024-02-01)'.")));
	/* daterange is canonical: inclusive lower, exclusive upper */
	Assert(lower.inclusive && !upper.inclusive);
	out->start = DatumGetDateADT(lower.val);
	out->end = DatumGetDateADT(upper.val);
	return true;
}

static Datum
period_datum(TypeCacheEntry *typcache, const Period *p)
{
	RangeBound	lower,
				upper;

	lower.val = DateADTGetDatum(p->start);
	lower.infinite = false;
	lower.inclusive = true;
	lower.lower = true;
	upper.val = DateADTGetDatum(p->end);
	upper.infinite = false;
	upper.inclusive = false;
	upper.lower = false;
	/* PostgreSQL 16 added a soft-error context; NULL raises as 15 does */
#if PG_VERSION_NUM >= 160000
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false, NULL));
#else
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false));
#endif
}

/* Raises the error for a failed period computation. */
static void
period_error(CalError err, const char *fname, DateADT anchor, const Cadence *c,
			 const char *subject) pg_attribute_noreturn();

static void
period_error(CalError err, const char *fname, DateADT anchor, const Cadence *c,
			 const char *subject)
{
	const char *unit = c->unit == CADENCE_DAYS ? "day" : "month";

	switch (err)
	{
		case CAL_DATE_OUT_OF_RANGE:
		case CAL_RESULT_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("%s: the billing period of %s is out of the date range", fname, subject),
					 errdetail("Anchor %s, cadence %d %s(s); a period must start and end "
							   "between 4714-11-24 BC and 5874897-12-31.",
							   date_text(anchor), c->count, unit),
					 errhint("Use dates further from the ends of the date range.")));
			break;
		case CAL_NOT_A_PERIOD:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s is not a billing period of this cycle", fname, subject),
					 errdetail("Anchor %s, cadence %d %s(s).", date_text(anchor), c->count, unit),
					 errhint("Get periods from billing.period_containing or billing.periods_between.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s: %s", fname, cal_error_text(err))));
	}
	pg_unreachable();
}

/*
 * billing.period_containing(anchor date, cadence interval, on_date date)
 * -> daterange
 */
PG_FUNCTION_INFO_V1(period_containing);
Datum
period_containing(PG_FUNCTION_ARGS)
{
	const char *fname = "billing.period_containing";
	DateADT		anchor = get_date_arg(fcinfo, 0, fname, "anchor");
	Cadence		c = get_cadence_arg(fcinfo, 1, fname);
	DateADT		on_date = get_date_arg(fcinfo, 2, fname, "on_date");
	Period		p;
	CalError	err;

	err = cal_period_containing(anchor, &c, on_date, &p, NULL);
	if (err != CAL_OK)
		period_error(err, fname, anchor, &c, date_text(on_date));
	return period_datum(cached_daterange_typcache(fcinfo), &p);
}

/*
 * billing.next_period(anchor date, cadence interval, period daterange)
 * -> daterange
 */
PG_FUNCTION_INFO_V1(next_period);
Datum
next_period(PG_FUNCTION_ARGS)
{
	const char *fname = "billing.next_period";
	TypeCacheEntry *typcache = cached_daterange_typcache(fcinfo);
	DateADT		anchor = get_date_arg(fcinfo, 0, fname, "anchor");
	Cadence		c = get_cadence_arg(fcinfo, 1, fname);
	Period		given,
				p;
	CalError	err;

	get_period_arg(fcinfo, typcache, 2, fname, "period", false, &given);
	err = cal_next_period(anchor, &c, &given, &p);
	if (err != CAL_OK)
		period_error(err, fname, anchor, &c, range_text(typcache, PG_GETARG_DATUM(2)));
	return period_datum(typcache, &p);
}

typedef struct PeriodsState
{
	TypeCacheEntry *typcache;
	DateADT		anchor;
	Cadence		cadence;
	int64		next;			/* index of the next period to return */
	int64		last;			/* index of the last one */
} PeriodsState;

/*
 * billing.periods_between(anchor date, cadence interval, during daterange)
 * -> setof daterange: every period that overlaps `during`, in order.  An
 * empty `during` overlaps nothing and gives no rows.
 */
PG_FUNCTION_INFO_V1(periods_between);
Datum
periods_between(PG_FUNCTION_ARGS)
{
	const char *fname = "billing.periods_between";
	FuncCallContext *funcctx;
	PeriodsState *st;
	Period		p;
	CalError	err;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcontext;
		TypeCacheEntry *typcache = daterange_typcache();
		DateADT		anchor = get_date_arg(fcinfo, 0, fname, "anchor");
		Cadence		c = get_cadence_arg(fcinfo, 1, fname);
		Period		during;
		bool		nonempty;

		nonempty = get_period_arg(fcinfo, typcache, 2, fname, "during", true, &during);

		funcctx = SRF_FIRSTCALL_INIT();
		oldcontext = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc(sizeof(PeriodsState));
		st->typcache = typcache;
		st->anchor = anchor;
		st->cadence = c;
		st->next = 0;
		st->last = -1;
		if (nonempty)
		{
			err = cal_periods_overlapping(anchor, &c, during.start, during.end,
										  &st->next, &st->last);
			if (err != CAL_OK)
				period_error(err, fname, anchor, &c, range_text(typcache, PG_GETARG_DATUM(2)));
		}
		funcctx->user_fctx = st;
		MemoryContextSwitchTo(oldcontext);
	}

	funcctx = SRF_PERCALL_SETUP();
	st = (PeriodsState *) funcctx->user_fctx;
	if (st->next > st->last)
		SRF_RETURN_DONE(funcctx);
	/* the first and last were checked, so every one between is in range */
	err = cal_period_at(st->anchor, &st->cadence, st->next, &p);
	if (err != CAL_OK)
		period_error(err, fname, st->anchor, &st->cadence, "a period");
	st->next++;
	SRF_RETURN_NEXT(funcctx, period_datum(st->typcache, &p));
}

/*
 * billing.prorate(price billing.amount, period daterange, part daterange,
 * convention text [, mode text]) -> billing.amount, rounded by the mode, or
 * without one by the setting billing.rounding.
 */
PG_FUNCTION_INFO_V1(prorate);
Datum
prorate(PG_FUNCTION_ARGS)
{
	const char *fname = "billing.prorate";
	TypeCacheEntry *typcache = cached_daterange_typcache(fcinfo);
	Amount	   *price;
	Amount	   *result;
	Period		period,
				part;
	bool		has_part;
	DayCount	dc;
	char	   *convention;
	RoundingMode mode;
	CalError	err;

	require_not_null(fcinfo, 0, fname, "price");
	price = PG_GETARG_AMOUNT_P(0);
	get_period_arg(fcinfo, typcache, 1, fname, "period", false, &period);
	has_part = get_period_arg(fcinfo, typcache, 2, fname, "part", true, &part);
	require_not_null(fcinfo, 3, fname, "convention");
	convention = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (!day_count_parse(convention, &dc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: unknown day-count convention \"%s\"", fname, convention),
				 errhint("Use 'actual' (actual days, the default) or '30e/360' (30-day months).")));

	if (PG_NARGS() > 4)
	{
		require_not_null(fcinfo, 4, fname, "mode");
		mode = billing_parse_rounding_mode(text_to_cstring(PG_GETARG_TEXT_PP(4)));
	}
	else
		mode = billing_rounding_mode();

	result = palloc(sizeof(Amount));
	err = prorate_amount(price, &period, has_part ? &part : NULL, dc, mode, result);
	switch (err)
	{
		case CAL_OK:
			break;
		case CAL_PART_OUTSIDE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: part %s is not inside period %s", fname,
							range_text(typcache, PG_GETARG_DATUM(2)), range_text(typcache, PG_GETARG_DATUM(1))),
					 errhint("Prorate each piece of a period separately, within the period.")));
			break;
		case CAL_NO_DAY_COUNT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: period %s counts no days under the 30e/360 convention", fname,
							range_text(typcache, PG_GETARG_DATUM(1))),
					 errhint("30e/360 counts the 31st as the 30th; use convention 'actual' for such short periods.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("%s: %s", fname, cal_error_text(err))));
	}
	PG_RETURN_AMOUNT_P(result);
}
