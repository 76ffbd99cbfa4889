/*
 * calendar.c - civil dates, cadences and billing periods.
 *
 * Everything is integer arithmetic on day numbers; widths are chosen so that
 * no input (any int32 day, any int32 cadence, any int64 period index) can
 * overflow before the range check that rejects it.
 */
#include "calendar.h"

#include <stddef.h>

/* Days from 0000-03-01 to 2000-01-01 (the PostgreSQL epoch). */
#define DAYS_0000_03_01_TO_EPOCH 730425

/* Days in 400 Gregorian years. */
#define DAYS_PER_ERA 146097

/*
 * Month indexes (12 * year + month - 1) of the first and last dates of the
 * range, 4714-11 BC and 5874897-12; test_calendar checks them.
 */
#define CAL_MIN_MONTH_INDEX ((int64_t) -4713 * 12 + 10)
#define CAL_MAX_MONTH_INDEX ((int64_t) 5874897 * 12 + 11)

static const char *const error_texts[] = {
	[CAL_OK] = "no error",
	[CAL_CADENCE_ZERO] = "a cadence must not be zero",
	[CAL_CADENCE_NEGATIVE] = "a cadence must not be negative",
	[CAL_CADENCE_MIXED] = "a cadence must use one unit only",
	[CAL_CADENCE_SUB_DAY] = "a cadence must be whole days, weeks, months or years",
	[CAL_DATE_OUT_OF_RANGE] = "date out of range",
	[CAL_RESULT_OUT_OF_RANGE] = "billing period out of the date range",
	[CAL_EMPTY_PERIOD] = "a billing period must not be empty",
	[CAL_PART_OUTSIDE] = "the part is not inside the period",
	[CAL_NOT_A_PERIOD] = "the range is not a billing period of the cadence",
	[CAL_NO_DAY_COUNT] = "the period has no days under the convention",
	[CAL_AMOUNT_OUT_OF_RANGE] = "amount out of range"
};

const char *
cal_error_text(CalError err)
{
	if ((int) err < 0 || (size_t) err >= sizeof(error_texts) / sizeof(error_texts[0]))
		return "unknown calendar error";
	return error_texts[err];
}

/* Division rounding toward -infinity; d > 0. */
static inline int64_t
floor_div(int64_t n, int64_t d)
{
	int64_t		q = n / d;

	if (n % d != 0 && n < 0)
		q--;
	return q;
}

bool
cal_is_leap_year(int64_t year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int
cal_days_in_month(int64_t year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month == 2 && cal_is_leap_year(year))
		return 29;
	return days[month - 1];
}

/*
 * The count runs in years that start on March 1, so that the leap day is the
 * last day of its year and the day of the year follows from the month by one
 * linear formula: the month lengths from March on (31 30 31 30 31 31 30 31
 * 30 31 31 28/29) repeat a five-month pattern of 153 days.
 */
int64_t
cal_day_from_civil(int64_t year, int month, int day)
{
	int64_t		y = month <= 2 ? year - 1 : year;
	int64_t		mar = month <= 2 ? month + 9 : month - 3;	/* 0 = March */
	int64_t		era = floor_div(y, 400);
	int64_t		yoe = y - era * 400;	/* 0..399 */
	int64_t		doy = (153 * mar + 2) / 5 + day - 1;	/* 0..365 */
	int64_t		doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;	/* 0..146096 */

	return era * DAYS_PER_ERA + doe - DAYS_0000_03_01_TO_EPOCH;
}

CivilDate
cal_civil_from_day(int64_t day)
{
	int64_t		z = day + DAYS_0000_03_01_TO_EPOCH;
	int64_t		era = floor_div(z, DAYS_PER_ERA);
	int64_t		doe = z - era * DAYS_PER_ERA;	/* 0..146096 */

	/* the leap days before doe within the era: every 4th year but centuries */
	int64_t		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t		mar = (5 * doy + 2) / 153;	/* 0 = March */
	CivilDate	c;

	c.day = (int) (doy - (153 * mar + 2) / 5 + 1);
	c.month = (int) (mar < 10 ? mar + 3 : mar - 9);
	c.year = yoe + era * 400 + (c.month <= 2 ? 1 : 0);
	return c;
}

CalError
cadence_from_interval(int32_t months, int32_t days, int64_t microseconds,
					  Cadence *out)
{
	int			units = (months != 0) + (days != 0) + (microseconds != 0);

	if (units > 1)
		return CAL_CADENCE_MIXED;
	if (units == 0)
		return CAL_CADENCE_ZERO;
	if (months < 0 || days < 0 || microseconds < 0)
		return CAL_CADENCE_NEGATIVE;
	if (microseconds != 0)
		return CAL_CADENCE_SUB_DAY;
	if (months != 0)
	{
		out->unit = CADENCE_MONTHS;
		out->count = months;
	}
	else
	{
		out->unit = CADENCE_DAYS;
		out->count = days;
	}
	return CAL_OK;
}

static inline int64_t
month_index(const CivilDate *c)
{
	return c->year * 12 + (c->month - 1);
}

/*
 * The day in month `mi` that carries the anchor's day of month, clamped to
 * the month's length.  mi must be within a few months of the date range.
 */
static int64_t
clamped_day_in_month(int64_t mi, int anchor_dom)
{
	int64_t		year = floor_div(mi, 12);
	int			month = (int) (mi - year * 12) + 1;
	int			dim = cal_days_in_month(year, month);

	return cal_day_from_civil(year, month, anchor_dom < dim ? anchor_dom : dim);
}

/*
 * Start of period k without the final range check, as a wide value; false
 * when it is so far out that it cannot be represented.  k * count needs up
 * to 95 bits, hence __int128.
 */
static bool
period_start_wide(int32_t anchor, const Cadence *cadence, int64_t k,
				  int64_t *start)
{
	__int128	offset = (__int128) k * cadence->count;

	if (cadence->unit == CADENCE_DAYS)
	{
		__int128	s = (__int128) anchor + offset;

		if (s < (__int128) CAL_MIN_DAY - 1 || s > (__int128) CAL_MAX_DAY + 1)
			return false;
		*start = (int64_t) s;
	}
	else
	{
		CivilDate	a = cal_civil_from_day(anchor);
		__int128	mi = (__int128) month_index(&a) + offset;

		if (mi < CAL_MIN_MONTH_INDEX - 1 || mi > CAL_MAX_MONTH_INDEX + 1)
			return false;
		*start = clamped_day_in_month((int64_t) mi, a.day);
	}
	return true;
}

CalError
cal_period_start(int32_t anchor, const Cadence *cadence, int64_t k,
				 int32_t *start)
{
	int64_t		s;

	if (!cal_day_in_range(anchor))
		return CAL_DATE_OUT_OF_RANGE;
	if (!period_start_wide(anchor, cadence, k, &s) || !cal_day_in_range(s))
		return CAL_RESULT_OUT_OF_RANGE;
	*start = (int32_t) s;
	return CAL_OK;
}

CalError
cal_period_at(int32_t anchor, const Cadence *cadence, int64_t k, Period *out)
{
	CalError	err;
	int32_t		s,
				e;

	if (k == INT64_MAX)
		return CAL_RESULT_OUT_OF_RANGE;
	if ((err = cal_period_start(anchor, cadence, k, &s)) != CAL_OK)
		return err;
	if ((err = cal_period_start(anchor, cadence, k + 1, &e)) != CAL_OK)
		return err;
	out->start = s;
	out->end = e;
	return CAL_OK;
}

CalError
cal_period_index(int32_t anchor, const Cadence *cadence, int32_t day,
				 int64_t *k)
{
	if (!cal_day_in_range(anchor) || !cal_day_in_range(day))
		return CAL_DATE_OUT_OF_RANGE;
	if (cadence->unit == CADENCE_DAYS)
		*k = floor_div((int64_t) day - anchor, cadence->count);
	else
	{
		CivilDate	a = cal_civil_from_day(anchor);
		CivilDate	d = cal_civil_from_day(day);
		int64_t		guess = floor_div(month_index(&d) - month_index(&a),
									  cadence->count);

		/*
		 * Period `guess` starts in d's month or earlier, and period guess + 1
		 * after d's month.  When it starts in d's month on a later day than
		 * d (anchor day 31, d the 15th), d belongs to the period before,
		 * which starts at least one month earlier.
		 */
		if (clamped_day_in_month(month_index(&a) + guess * cadence->count,
								 a.day) > day)
			guess--;
		*k = guess;
	}
	return CAL_OK;
}

CalError
cal_period_containing(int32_t anchor, const Cadence *cadence, int32_t day,
					  Period *out, int64_t *k)
{
	int64_t		idx;
	CalError	err;

	if ((err = cal_period_index(anchor, cadence, day, &idx)) != CAL_OK)
		return err;
	if ((err = cal_period_at(anchor, cadence, idx, out)) != CAL_OK)
		return err;
	if (k)
		*k = idx;
	return CAL_OK;
}

CalError
cal_next_period(int32_t anchor, const Cadence *cadence, const Period *given,
				Period *out)
{
	Period		p;
	int64_t		k;
	CalError	err;

	if (given->end <= given->start)
		return CAL_EMPTY_PERIOD;
	if ((err = cal_period_containing(anchor, cadence, given->start, &p, &k)) != CAL_OK)
		return err;
	if (p.start != given->start || p.end != given->end)
		return CAL_NOT_A_PERIOD;
	return cal_period_at(anchor, cadence, k + 1, out);
}

CalError
cal_periods_overlapping(int32_t anchor, const Cadence *cadence,
						int32_t from, int32_t to, int64_t *first, int64_t *last)
{
	Period		p;
	CalError	err;

	if (to <= from)
		return CAL_EMPTY_PERIOD;
	/* both ends must be inside whole periods; the ones between then are */
	if ((err = cal_period_containing(anchor, cadence, from, &p, first)) != CAL_OK)
		return err;
	return cal_period_containing(anchor, cadence, to - 1, &p, last);
}

static const char *const day_count_names[DAYCOUNT_COUNT] = {
	"actual", "30e/360"
};

const char *
day_count_name(DayCount dc)
{
	if ((int) dc < 0 || (int) dc >= DAYCOUNT_COUNT)
		return NULL;
	return day_count_names[dc];
}

static bool
equal_ignoring_case(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
	{
		char		ca = (*a >= 'A' && *a <= 'Z') ? (char) (*a - 'A' + 'a') : *a;

		if (ca != *b)
			return false;
	}
	return *a == '\0' && *b == '\0';
}

bool
day_count_parse(const char *name, DayCount *dc)
{
	if (equal_ignoring_case(name, "actual"))
		*dc = DAYCOUNT_ACTUAL;
	else if (equal_ignoring_case(name, "30e/360") || equal_ignoring_case(name, "30/360"))
		*dc = DAYCOUNT_30E_360;
	else
		return false;
	return true;
}

int64_t
cal_day_count(DayCount dc, int32_t from, int32_t to)
{
	CivilDate	a,
				b;
	int			da,
				db;

	if (dc == DAYCOUNT_ACTUAL)
		return (int64_t) to - from;
	a = cal_civil_from_day(from);
	b = cal_civil_from_day(to);
	da = a.day < 30 ? a.day : 30;
	db = b.day < 30 ? b.day : 30;
	return 360 * (b.year - a.year) + 30 * (int64_t) (b.month - a.month) + (db - da);
}
