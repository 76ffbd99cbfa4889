/*
 * calendar.h - civil dates, billing cadences and billing periods.
 *
 * Part of the pure C core: no PostgreSQL headers.  A day is a count of days
 * from 2000-01-01 (day 0), the epoch of PostgreSQL's DateADT, so a date
 * value passes between SQL and this file unchanged.  Years are astronomical
 * (1 BC is year 0, 2 BC is year -1), as PostgreSQL counts them inside.
 *
 * A billing period is the half-open range [start, end) of days.  Period k of
 * a cadence anchored at day A is always computed from the anchor itself, never
 * from the previous period, so a month cadence anchored on the 31st keeps
 * landing on the 31st (clamped to the month's last day where it is shorter)
 * instead of drifting to the 28th after February.
 */
#ifndef BILLING_CALENDAR_H
#define BILLING_CALENDAR_H

#include <stdbool.h>
#include <stdint.h>

/*
 * PostgreSQL's date range: 4714-11-24 BC (Julian day 0) to 5874897-12-31.
 * A period must start and end inside it; since its end is exclusive, the
 * last day itself is never inside a period (the day after it is no date).
 */
#define CAL_MIN_DAY	(-2451545)
#define CAL_MAX_DAY	2145031948

typedef struct CivilDate
{
	int64_t		year;			/* astronomical: 0 = 1 BC */
	int			month;			/* 1..12 */
	int			day;			/* 1..31 */
} CivilDate;

typedef enum CalError
{
	CAL_OK = 0,
	CAL_CADENCE_ZERO,			/* '0 days' */
	CAL_CADENCE_NEGATIVE,		/* '-1 month' */
	CAL_CADENCE_MIXED,			/* '1 month 3 days', '1 day 2 hours' */
	CAL_CADENCE_SUB_DAY,		/* '12 hours' */
	CAL_DATE_OUT_OF_RANGE,		/* an input day outside PostgreSQL's range */
	CAL_RESULT_OUT_OF_RANGE,	/* a period that would leave the range */
	CAL_EMPTY_PERIOD,			/* end <= start */
	CAL_PART_OUTSIDE,			/* a part not inside its period */
	CAL_NOT_A_PERIOD,			/* a range that is no period of the cadence */
	CAL_NO_DAY_COUNT,			/* a period of zero days under 30E/360 */
	CAL_AMOUNT_OUT_OF_RANGE		/* a prorated amount beyond int64 */
} CalError;

/* A short English description of an error, for messages. */
extern const char *cal_error_text(CalError err);

/* ---- civil dates ---- */

extern bool cal_is_leap_year(int64_t year);
extern int	cal_days_in_month(int64_t year, int month);

/* Whether a day number is a date PostgreSQL can store. */
static inline bool
cal_day_in_range(int64_t day)
{
	return day >= CAL_MIN_DAY && day <= CAL_MAX_DAY;
}

/*
 * Day number of a civil date.  Exact for any year within +-2^40 (far wider
 * than the date range); the caller checks the result with cal_day_in_range.
 * The month and day must be valid for that year.
 */
extern int64_t cal_day_from_civil(int64_t year, int month, int day);

/* The civil date of a day number; exact for |day| < 2^50. */
extern CivilDate cal_civil_from_day(int64_t day);

/* ---- cadences ---- */

typedef enum CadenceUnit
{
	CADENCE_DAYS,				/* weeks are 7 days */
	CADENCE_MONTHS				/* quarters are 3 months, years 12 */
} CadenceUnit;

typedef struct Cadence
{
	CadenceUnit unit;
	int32_t		count;			/* > 0 */
} Cadence;

/*
 * Validates a cadence given as the three fields of a PostgreSQL interval:
 * exactly one of months and days must be non-zero and positive, and the
 * microseconds must be zero.
 */
extern CalError cadence_from_interval(int32_t months, int32_t days,
									  int64_t microseconds, Cadence *out);

/* ---- periods ---- */

typedef struct Period
{
	int32_t		start;			/* first day */
	int32_t		end;			/* first day after the period */
} Period;

/*
 * Start of period k (k = 0 starts at the anchor, negative k lie before it).
 * For month cadences the anchor's day of month is kept and clamped to the
 * month's length.  CAL_RESULT_OUT_OF_RANGE when the day is not a date.
 */
extern CalError cal_period_start(int32_t anchor, const Cadence *cadence,
								 int64_t k, int32_t *start);

/* Period k: [start(k), start(k + 1)). */
extern CalError cal_period_at(int32_t anchor, const Cadence *cadence,
							  int64_t k, Period *out);

/* The index k of the period that contains `day` (no range check). */
extern CalError cal_period_index(int32_t anchor, const Cadence *cadence,
								 int32_t day, int64_t *k);

/* The period that contains `day`, and optionally its index. */
extern CalError cal_period_containing(int32_t anchor, const Cadence *cadence,
									  int32_t day, Period *out, int64_t *k);

/*
 * The period after `given`, which must itself be a period of the cadence
 * (CAL_NOT_A_PERIOD otherwise).
 */
extern CalError cal_next_period(int32_t anchor, const Cadence *cadence,
								const Period *given, Period *out);

/*
 * Indexes of the first and last periods that overlap the days [from, to),
 * with from < to.  Every period in between overlaps too.
 */
extern CalError cal_periods_overlapping(int32_t anchor, const Cadence *cadence,
										int32_t from, int32_t to,
										int64_t *first, int64_t *last);

/* ---- day counts ---- */

typedef enum DayCount
{
	DAYCOUNT_ACTUAL,			/* actual days */
	DAYCOUNT_30E_360			/* 30E/360: every month counts 30 days */
} DayCount;

#define DAYCOUNT_COUNT 2

/* "actual", "30e/360" */
extern const char *day_count_name(DayCount dc);

/* Parses a convention name, case-insensitively; also "30/360". */
extern bool day_count_parse(const char *name, DayCount *dc);

/*
 * Days from `from` to `to` (to >= from) under a convention.  Under 30E/360
 * it is 360 * years + 30 * months + (min(d2, 30) - min(d1, 30)), never
 * negative and never decreasing as `to` moves forward.
 */
extern int64_t cal_day_count(DayCount dc, int32_t from, int32_t to);

#endif
