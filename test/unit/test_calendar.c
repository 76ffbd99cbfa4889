/*
 * Unit tests for calendar.c: the civil calendar over PostgreSQL's whole date
 * range, cadence validation, clamped month periods, and property loops over
 * every anchor day of several years (the period contains the date, periods
 * tile, the anchor day is kept, a split at the date prorates exactly).
 */
#include "../../src/core/calendar.h"
#include "../../src/core/proration.h"
#include "unit.h"

static int64_t
day(int64_t y, int m, int d)
{
	return cal_day_from_civil(y, m, d);
}

/* A deterministic generator, so that a failure can be replayed. */
static Cadence
cad(CadenceUnit u, int32_t n)
{
	Cadence		c = {u, n};

	return c;
}

static bool
period_is(const Period *p, int64_t s, int64_t e)
{
	return p->start == s && p->end == e;
}

/*
 * The anchored-period checks of one (anchor, cadence, date).  Near the ends
 * of the date range the neighbouring periods may not exist: with edges_ok,
 * CAL_RESULT_OUT_OF_RANGE for them is accepted.
 */
static int
check_one(int32_t anchor, const Cadence *c, int32_t d, bool edges_ok)
{
	CalError	err;

	Period		p,
				next,
				prev;
	int64_t		k;
	int			bad = 0;
	CivilDate	ca = cal_civil_from_day(anchor);

	if (cal_period_containing(anchor, c, d, &p, &k) != CAL_OK)
		return 1;
	/* contains the date */
	bad += !(p.start <= d && d < p.end);
	/* the same as period k computed from the anchor */
	if (cal_period_at(anchor, c, k, &next) != CAL_OK || !period_is(&next, p.start, p.end))
		bad++;
	/* tiles: the next period starts where this one ends, and follows it */
	err = cal_next_period(anchor, c, &p, &next);
	if (err == CAL_OK)
		bad += next.start != p.end || next.end <= next.start;
	else
		bad += !(edges_ok && err == CAL_RESULT_OUT_OF_RANGE);
	err = cal_period_at(anchor, c, k - 1, &prev);
	if (err == CAL_OK)
		bad += prev.end != p.start || prev.start >= prev.end;
	else
		bad += !(edges_ok && err == CAL_RESULT_OUT_OF_RANGE);
	/* the containing period of its own last day is itself */
	if (cal_period_containing(anchor, c, p.end - 1, &next, NULL) != CAL_OK ||
		!period_is(&next, p.start, p.end))
		bad++;
	/* split at the date, the two parts prorate exactly to the price */
	if (d > p.start)
	{
		Period		left = {p.start, d},
					right = {d, p.end};
		int64_t		l = 0,
					r = 0;

		if (prorate_units(-1000003, &p, &left, DAYCOUNT_ACTUAL, ROUND_HALF_EVEN, &l) != CAL_OK ||
			prorate_units(-1000003, &p, &right, DAYCOUNT_ACTUAL, ROUND_HALF_EVEN, &r) != CAL_OK ||
			l + r != -1000003)
			bad++;
	}
	/* the anchor falls on a period start */
	if (k == 0 && p.start != anchor)
		bad++;
	if (c->unit == CADENCE_MONTHS)
	{
		/* the anchor's day of month, clamped, never drifted */
		CivilDate	cs = cal_civil_from_day(p.start);
		int			dim = cal_days_in_month(cs.year, cs.month);
		int			want = ca.day < dim ? ca.day : dim;
		int64_t		months = (cs.year - ca.year) * 12 + (cs.month - ca.month);

		bad += cs.day != want;
		bad += months != k * c->count;
	}
	else
		bad += (int64_t) p.start - anchor != k * c->count || p.end - p.start != c->count;
	return bad;
}

int
main(void)
{
	CivilDate	c;
	Cadence		cd;
	Period		p,
				q;
	int64_t		k,
				k2;
	int32_t		s;
	int			bad;

	/* ---- the epoch and the ends of the range ---- */
	CHECK_I64(day(2000, 1, 1), 0);
	CHECK_I64(day(1999, 12, 31), -1);
	CHECK_I64(day(2000, 3, 1), 60);
	CHECK_I64(day(1970, 1, 1), -10957);
	CHECK_I64(day(2024, 2, 29), 8825);
	CHECK_I64(day(-4713, 11, 24), CAL_MIN_DAY);
	CHECK_I64(day(5874897, 12, 31), CAL_MAX_DAY);
	c = cal_civil_from_day(CAL_MIN_DAY);
	CHECK(c.year == -4713 && c.month == 11 && c.day == 24);
	c = cal_civil_from_day(CAL_MAX_DAY);
	CHECK(c.year == 5874897 && c.month == 12 && c.day == 31);
	c = cal_civil_from_day(CAL_MAX_DAY + 1);
	CHECK(c.year == 5874898 && c.month == 1 && c.day == 1);
	CHECK(cal_day_in_range(CAL_MIN_DAY) && cal_day_in_range(CAL_MAX_DAY));
	CHECK(!cal_day_in_range(CAL_MIN_DAY - 1) && !cal_day_in_range(CAL_MAX_DAY + 1));
	c = cal_civil_from_day(-1);
	CHECK(c.year == 1999 && c.month == 12 && c.day == 31);

	/* ---- leap years and month lengths ---- */
	CHECK(cal_is_leap_year(2000));
	CHECK(cal_is_leap_year(2024));
	CHECK(!cal_is_leap_year(1900));
	CHECK(!cal_is_leap_year(2100));
	CHECK(!cal_is_leap_year(2023));
	CHECK(cal_is_leap_year(0));
	CHECK(cal_is_leap_year(-4));
	CHECK(!cal_is_leap_year(-100));
	CHECK(cal_is_leap_year(-400));
	CHECK_I64(cal_days_in_month(2024, 2), 29);
	CHECK_I64(cal_days_in_month(2023, 2), 28);
	CHECK_I64(cal_days_in_month(2100, 2), 28);
	CHECK_I64(cal_days_in_month(2023, 4), 30);
	CHECK_I64(cal_days_in_month(2023, 12), 31);

	/*
	 * ---- a day-by-day walk from the first date to the year 3000 ----
	 * An independent, naive successor function against both conversions.
	 */
	{
		int64_t		y = -4713,
					n = CAL_MIN_DAY;
		int			m = 11,
					d = 24;

		bad = 0;
		while (y < 3000)
		{
			CivilDate	w = cal_civil_from_day(n);

			if (cal_day_from_civil(y, m, d) != n || w.year != y || w.month != m || w.day != d)
				bad++;
			n++;
			if (++d > cal_days_in_month(y, m))
			{
				d = 1;
				if (++m > 12)
				{
					m = 1;
					y++;
				}
			}
		}
		CHECK_I64(bad, 0);
		/* and the last days of the range by the same walk, backwards */
		y = 5874897, m = 12, d = 31, n = CAL_MAX_DAY, bad = 0;
		for (int i = 0; i < 2000; i++)
		{
			CivilDate	w = cal_civil_from_day(n);

			if (cal_day_from_civil(y, m, d) != n || w.year != y || w.month != m || w.day != d)
				bad++;
			n--;
			if (--d == 0)
			{
				if (--m == 0)
				{
					m = 12;
					y--;
				}
				d = cal_days_in_month(y, m);
			}
		}
		CHECK_I64(bad, 0);
	}

	/* ---- random round trips over the whole range ---- */
	bad = 0;
	for (int i = 0; i < 1000000; i++)
	{
		int64_t		n = CAL_MIN_DAY + (int64_t) (unit_rng() % ((uint64_t) CAL_MAX_DAY - CAL_MIN_DAY + 1));
		CivilDate	w = cal_civil_from_day(n);

		if (w.month < 1 || w.month > 12 || w.day < 1 || w.day > cal_days_in_month(w.year, w.month) ||
			cal_day_from_civil(w.year, w.month, w.day) != n)
			bad++;
	}
	CHECK_I64(bad, 0);

	/* ---- cadences from interval fields ---- */
	CHECK(cadence_from_interval(1, 0, 0, &cd) == CAL_OK && cd.unit == CADENCE_MONTHS && cd.count == 1);
	CHECK(cadence_from_interval(12, 0, 0, &cd) == CAL_OK && cd.unit == CADENCE_MONTHS && cd.count == 12);
	CHECK(cadence_from_interval(0, 7, 0, &cd) == CAL_OK && cd.unit == CADENCE_DAYS && cd.count == 7);
	CHECK(cadence_from_interval(0, INT32_MAX, 0, &cd) == CAL_OK && cd.count == INT32_MAX);
	CHECK(cadence_from_interval(0, 0, 0, &cd) == CAL_CADENCE_ZERO);
	CHECK(cadence_from_interval(-1, 0, 0, &cd) == CAL_CADENCE_NEGATIVE);
	CHECK(cadence_from_interval(0, -7, 0, &cd) == CAL_CADENCE_NEGATIVE);
	CHECK(cadence_from_interval(0, 0, -1, &cd) == CAL_CADENCE_NEGATIVE);
	CHECK(cadence_from_interval(INT32_MIN, 0, 0, &cd) == CAL_CADENCE_NEGATIVE);
	CHECK(cadence_from_interval(1, 3, 0, &cd) == CAL_CADENCE_MIXED);
	CHECK(cadence_from_interval(0, 1, 3600000000LL, &cd) == CAL_CADENCE_MIXED);
	CHECK(cadence_from_interval(1, -3, 0, &cd) == CAL_CADENCE_MIXED);
	CHECK(cadence_from_interval(0, 0, 43200000000LL, &cd) == CAL_CADENCE_SUB_DAY);
	CHECK(cadence_from_interval(0, 0, 86400000000LL, &cd) == CAL_CADENCE_SUB_DAY);
	CHECK_STR(cal_error_text(CAL_CADENCE_MIXED), "a cadence must use one unit only");
	CHECK_STR(cal_error_text((CalError) 999), "unknown calendar error");

	/* ---- the anchor day is kept: Jan 31 monthly ---- */
	cd = cad(CADENCE_MONTHS, 1);
	CHECK(cal_period_at(day(2024, 1, 31), &cd, 0, &p) == CAL_OK);
	CHECK(period_is(&p, day(2024, 1, 31), day(2024, 2, 29)));
	CHECK(cal_period_at(day(2024, 1, 31), &cd, 1, &p) == CAL_OK);
	CHECK(period_is(&p, day(2024, 2, 29), day(2024, 3, 31)));
	CHECK(cal_period_at(day(2024, 1, 31), &cd, 2, &p) == CAL_OK);
	CHECK(period_is(&p, day(2024, 3, 31), day(2024, 4, 30)));
	CHECK(cal_period_at(day(2024, 1, 31), &cd, 3, &p) == CAL_OK);
	CHECK(period_is(&p, day(2024, 4, 30), day(2024, 5, 31)));
	CHECK(cal_period_at(day(2023, 1, 31), &cd, 0, &p) == CAL_OK);
	CHECK(period_is(&p, day(2023, 1, 31), day(2023, 2, 28)));
	CHECK(cal_period_at(day(2023, 1, 31), &cd, 1, &p) == CAL_OK);
	CHECK(period_is(&p, day(2023, 2, 28), day(2023, 3, 31)));
	/* backwards before the anchor */
	CHECK(cal_period_at(day(2024, 1, 31), &cd, -1, &p) == CAL_OK);
	CHECK(period_is(&p, day(2023, 12, 31), day(2024, 1, 31)));
	CHECK(cal_period_at(day(2024, 1, 31), &cd, -11, &p) == CAL_OK);
	CHECK(period_is(&p, day(2023, 2, 28), day(2023, 3, 31)));
	/* a date in the clamped stretch: Mar 30 lies in [Feb 29, Mar 31) */
	CHECK(cal_period_containing(day(2024, 1, 31), &cd, day(2024, 3, 30), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2024, 2, 29), day(2024, 3, 31)) && k == 1);
	CHECK(cal_period_containing(day(2024, 1, 31), &cd, day(2024, 3, 31), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2024, 3, 31), day(2024, 4, 30)) && k == 2);
	CHECK(cal_period_containing(day(2024, 1, 31), &cd, day(2019, 6, 15), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2019, 5, 31), day(2019, 6, 30)) && k == -56);

	/* ---- Feb 29 yearly ---- */
	cd = cad(CADENCE_MONTHS, 12);
	CHECK(cal_period_containing(day(2024, 2, 29), &cd, day(2025, 6, 1), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2025, 2, 28), day(2026, 2, 28)) && k == 1);
	CHECK(cal_period_at(day(2024, 2, 29), &cd, 3, &p) == CAL_OK);
	CHECK(period_is(&p, day(2027, 2, 28), day(2028, 2, 29)));
	CHECK(cal_period_at(day(2024, 2, 29), &cd, -1, &p) == CAL_OK);
	CHECK(period_is(&p, day(2023, 2, 28), day(2024, 2, 29)));
	/* 2100 is no leap year, 2400 is */
	CHECK(cal_period_at(day(2096, 2, 29), &cd, 4, &p) == CAL_OK);
	CHECK(period_is(&p, day(2100, 2, 28), day(2101, 2, 28)));
	CHECK(cal_period_at(day(2396, 2, 29), &cd, 4, &p) == CAL_OK);
	CHECK(period_is(&p, day(2400, 2, 29), day(2401, 2, 28)));
	/* the day before a Feb 28 start, in a non-leap year */
	CHECK(cal_period_containing(day(2024, 2, 29), &cd, day(2025, 2, 27), &p, NULL) == CAL_OK);
	CHECK(period_is(&p, day(2024, 2, 29), day(2025, 2, 28)));

	/* ---- quarters, weeks, N days, year boundaries ---- */
	cd = cad(CADENCE_MONTHS, 3);
	CHECK(cal_period_containing(day(2023, 11, 30), &cd, day(2024, 1, 1), &p, NULL) == CAL_OK);
	CHECK(period_is(&p, day(2023, 11, 30), day(2024, 2, 29)));
	cd = cad(CADENCE_DAYS, 7);
	CHECK(cal_period_containing(day(2023, 12, 28), &cd, day(2024, 1, 4), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2024, 1, 4), day(2024, 1, 11)) && k == 1);
	CHECK(cal_period_containing(day(2023, 12, 28), &cd, day(2023, 12, 27), &p, &k) == CAL_OK);
	CHECK(period_is(&p, day(2023, 12, 21), day(2023, 12, 28)) && k == -1);
	cd = cad(CADENCE_DAYS, 1);
	CHECK(cal_period_containing(day(2023, 12, 31), &cd, day(2023, 12, 31), &p, NULL) == CAL_OK);
	CHECK(period_is(&p, day(2023, 12, 31), day(2024, 1, 1)));

	/* ---- next period, and ranges that are not periods ---- */
	cd = cad(CADENCE_MONTHS, 1);
	p.start = (int32_t) day(2024, 1, 31);
	p.end = (int32_t) day(2024, 2, 29);
	CHECK(cal_next_period(p.start, &cd, &p, &q) == CAL_OK);
	CHECK(period_is(&q, day(2024, 2, 29), day(2024, 3, 31)));
	p.end = (int32_t) day(2024, 3, 1);
	CHECK(cal_next_period((int32_t) day(2024, 1, 31), &cd, &p, &q) == CAL_NOT_A_PERIOD);
	p.end = p.start;
	CHECK(cal_next_period((int32_t) day(2024, 1, 31), &cd, &p, &q) == CAL_EMPTY_PERIOD);

	/* ---- periods overlapping a range ---- */
	CHECK(cal_periods_overlapping((int32_t) day(2024, 1, 31), &cd, (int32_t) day(2024, 1, 1),
								  (int32_t) day(2025, 1, 1), &k, &k2) == CAL_OK);
	CHECK(k == -1 && k2 == 11);
	CHECK(cal_periods_overlapping((int32_t) day(2024, 1, 31), &cd, (int32_t) day(2024, 3, 31),
								  (int32_t) day(2024, 4, 1), &k, &k2) == CAL_OK);
	CHECK(k == 2 && k2 == 2);
	CHECK(cal_periods_overlapping(0, &cd, 5, 5, &k, &k2) == CAL_EMPTY_PERIOD);

	/* ---- the edges of the date range: errors, never wraparound ---- */
	cd = cad(CADENCE_DAYS, 1);
	CHECK(cal_period_containing(0, &cd, CAL_MAX_DAY, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_containing(0, &cd, CAL_MAX_DAY - 1, &p, NULL) == CAL_OK);
	CHECK(period_is(&p, CAL_MAX_DAY - 1, CAL_MAX_DAY));
	CHECK(cal_period_containing(0, &cd, CAL_MIN_DAY, &p, NULL) == CAL_OK);
	CHECK(p.start == CAL_MIN_DAY);
	CHECK(cal_period_containing(0, &cd, CAL_MIN_DAY - 1, &p, NULL) == CAL_DATE_OUT_OF_RANGE);
	CHECK(cal_period_containing(INT32_MAX, &cd, 0, &p, NULL) == CAL_DATE_OUT_OF_RANGE);
	CHECK(cal_period_containing(0, &cd, INT32_MIN, &p, NULL) == CAL_DATE_OUT_OF_RANGE);
	cd = cad(CADENCE_MONTHS, 1);
	/* anchored on the 30th, 4714-11-24 BC lies in a period from Oct 30 */
	CHECK(cal_period_containing(30 - 1, &cd, CAL_MIN_DAY, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_containing(CAL_MIN_DAY, &cd, CAL_MIN_DAY + 40, &p, NULL) == CAL_OK);
	CHECK(period_is(&p, day(-4713, 12, 24), day(-4712, 1, 24)));
	CHECK(cal_period_containing(0, &cd, CAL_MAX_DAY - 1, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_containing(0, &cd, (int32_t) day(5874897, 11, 30), &p, NULL) == CAL_OK);
	CHECK(period_is(&p, day(5874897, 11, 1), day(5874897, 12, 1)));
	CHECK(cal_period_start(0, &cd, INT64_MAX, &s) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_start(0, &cd, INT64_MIN, &s) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_at(0, &cd, INT64_MAX, &p) == CAL_RESULT_OUT_OF_RANGE);
	cd = cad(CADENCE_DAYS, INT32_MAX);
	CHECK(cal_period_containing(0, &cd, 100, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);
	CHECK(cal_period_containing(CAL_MIN_DAY, &cd, 0, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);
	cd = cad(CADENCE_DAYS, CAL_MAX_DAY - CAL_MIN_DAY);
	CHECK(cal_period_containing(CAL_MIN_DAY, &cd, 0, &p, NULL) == CAL_OK);
	CHECK(period_is(&p, CAL_MIN_DAY, CAL_MAX_DAY));
	cd = cad(CADENCE_MONTHS, INT32_MAX);
	CHECK(cal_period_containing(0, &cd, 100, &p, NULL) == CAL_RESULT_OUT_OF_RANGE);

	/*
	 * ---- properties over every anchor day of 2023-2025 and 2099-2100 ----
	 * For each anchor and cadence, dates from 400 days before to 800 after.
	 */
	{
		static const Cadence cadences[] = {
			{CADENCE_DAYS, 1}, {CADENCE_DAYS, 7}, {CADENCE_DAYS, 10},
			{CADENCE_DAYS, 14}, {CADENCE_MONTHS, 1}, {CADENCE_MONTHS, 2},
			{CADENCE_MONTHS, 3}, {CADENCE_MONTHS, 6}, {CADENCE_MONTHS, 12},
			{CADENCE_MONTHS, 48}
		};
		int64_t		ranges[2][2] = {
			{day(2023, 1, 1), day(2026, 1, 1)},
			{day(2099, 1, 1), day(2101, 1, 1)}
		};
		int64_t		cases = 0;

		bad = 0;
		for (int r = 0; r < 2; r++)
			for (int64_t a = ranges[r][0]; a < ranges[r][1]; a++)
				for (size_t ci = 0; ci < sizeof(cadences) / sizeof(cadences[0]); ci++)
					for (int64_t d = a - 400; d <= a + 800; d += 1 + (int64_t) (unit_rng() % 9))
					{
						bad += check_one((int32_t) a, &cadences[ci], (int32_t) d, false);
						cases++;
					}
		CHECK_I64(bad, 0);
		CHECK(cases > 500000);
	}

	/* ---- random anchors, cadences and dates over the whole range ---- */
	bad = 0;
	for (int i = 0; i < 200000; i++)
	{
		uint64_t	span = (uint64_t) CAL_MAX_DAY - CAL_MIN_DAY;
		int32_t		a = (int32_t) (CAL_MIN_DAY + (int64_t) (unit_rng() % span));
		int32_t		d = (int32_t) (CAL_MIN_DAY + (int64_t) (unit_rng() % span));
		Cadence		rc = cad(unit_rng() % 2 ? CADENCE_DAYS : CADENCE_MONTHS,
							 (int32_t) (1 + unit_rng() % (unit_rng() % 2 ? 40 : 100000)));
		CalError	err = cal_period_containing(a, &rc, d, &p, &k);

		if (err == CAL_OK)
			bad += check_one(a, &rc, d, true);
		else if (err != CAL_RESULT_OUT_OF_RANGE)
			bad++;
	}
	CHECK_I64(bad, 0);

	/* ---- day counts ---- */
	CHECK_I64(cal_day_count(DAYCOUNT_ACTUAL, (int32_t) day(2024, 1, 1), (int32_t) day(2025, 1, 1)), 366);
	CHECK_I64(cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2024, 1, 1), (int32_t) day(2025, 1, 1)), 360);
	CHECK_I64(cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2023, 2, 1), (int32_t) day(2023, 3, 1)), 30);
	CHECK_I64(cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2024, 1, 31), (int32_t) day(2024, 2, 29)), 29);
	CHECK_I64(cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2024, 3, 1), (int32_t) day(2024, 3, 16)), 15);
	CHECK_I64(cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2024, 1, 30), (int32_t) day(2024, 1, 31)), 0);
	{
		DayCount	dc;

		CHECK(day_count_parse("actual", &dc) && dc == DAYCOUNT_ACTUAL);
		CHECK(day_count_parse("ACTUAL", &dc) && dc == DAYCOUNT_ACTUAL);
		CHECK(day_count_parse("30E/360", &dc) && dc == DAYCOUNT_30E_360);
		CHECK(day_count_parse("30/360", &dc) && dc == DAYCOUNT_30E_360);
		CHECK(!day_count_parse("actual/365", &dc));
		CHECK(!day_count_parse("", &dc));
		CHECK_STR(day_count_name(DAYCOUNT_30E_360), "30e/360");
		CHECK(day_count_name((DayCount) 5) == NULL);
	}
	/* 30E/360 never decreases as the end moves forward */
	bad = 0;
	for (int32_t d = (int32_t) day(2023, 1, 1); d < day(2026, 1, 1); d++)
		bad += cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2023, 1, 1), d + 1) <
			cal_day_count(DAYCOUNT_30E_360, (int32_t) day(2023, 1, 1), d);
	CHECK_I64(bad, 0);

	return UNIT_DONE();
}
