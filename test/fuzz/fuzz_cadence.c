/*
 * fuzz_cadence.c - libFuzzer target for cadence validation, billing periods
 * and proration, on raw untrusted numbers.
 *
 * The input is read as the fields of an interval (months, days,
 * microseconds), an anchor and a date (any int32, in range or not), a price,
 * a rounding mode, a convention and cut points.  Whatever it is, the calls
 * must not hit UB, and when they succeed: the period contains the date, its
 * neighbours tile it, and the cut parts prorate exactly to the price.
 */
#include "../../src/core/proration.h"

#include <stdlib.h>
#include <string.h>

typedef struct Reader
{
	const uint8_t *p;
	size_t		left;
} Reader;

static uint64_t
take(Reader *r, size_t n)
{
	uint64_t	v = 0;

	for (size_t i = 0; i < n; i++)
	{
		v = (v << 8) | (r->left ? *r->p : 0);
		if (r->left)
		{
			r->p++;
			r->left--;
		}
	}
	return v;
}

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Reader		r = {data, size};
	int32_t		months = (int32_t) (uint32_t) take(&r, 4);
	int32_t		days = (int32_t) (uint32_t) take(&r, 4);
	int64_t		usecs = (int64_t) take(&r, 8);
	int32_t		anchor = (int32_t) (uint32_t) take(&r, 4);
	int32_t		date = (int32_t) (uint32_t) take(&r, 4);
	int64_t		price = (int64_t) take(&r, 8);
	RoundingMode mode = (RoundingMode) (take(&r, 1) % ROUNDING_MODE_COUNT);
	DayCount	dc = (DayCount) (take(&r, 1) % DAYCOUNT_COUNT);
	Cadence		c;
	Period		p,
				next,
				prev,
				again;
	int64_t		k;
	CalError	err;

	/* small values are the interesting ones: fold some inputs down */
	if (size > 0 && (data[0] & 1))
	{
		months = (int32_t) (months % 200);
		days = (int32_t) (days % 800);
		usecs = (data[0] & 2) ? usecs : 0;
		anchor = anchor % 40000;
		date = date % 40000;
	}

	err = cadence_from_interval(months, days, usecs, &c);
	if (err != CAL_OK)
	{
		REQUIRE(err == CAL_CADENCE_ZERO || err == CAL_CADENCE_NEGATIVE ||
				err == CAL_CADENCE_MIXED || err == CAL_CADENCE_SUB_DAY);
		return 0;
	}
	REQUIRE(c.count > 0);

	err = cal_period_containing(anchor, &c, date, &p, &k);
	if (err == CAL_DATE_OUT_OF_RANGE)
	{
		REQUIRE(!cal_day_in_range(anchor) || !cal_day_in_range(date));
		return 0;
	}
	if (err != CAL_OK)
	{
		REQUIRE(err == CAL_RESULT_OUT_OF_RANGE);
		return 0;
	}
	REQUIRE(p.start <= date && date < p.end);
	REQUIRE(cal_day_in_range(p.start) && cal_day_in_range(p.end));

	/* the same period by index, from its first and its last day */
	REQUIRE(cal_period_at(anchor, &c, k, &again) == CAL_OK);
	REQUIRE(again.start == p.start && again.end == p.end);
	REQUIRE(cal_period_containing(anchor, &c, p.end - 1, &again, NULL) == CAL_OK);
	REQUIRE(again.start == p.start && again.end == p.end);

	/* tiling with both neighbours, where they exist */
	err = cal_next_period(anchor, &c, &p, &next);
	REQUIRE(err == CAL_OK || err == CAL_RESULT_OUT_OF_RANGE);
	if (err == CAL_OK)
		REQUIRE(next.start == p.end && next.end > next.start);
	err = cal_period_at(anchor, &c, k - 1, &prev);
	REQUIRE(err == CAL_OK || err == CAL_RESULT_OUT_OF_RANGE);
	if (err == CAL_OK)
		REQUIRE(prev.end == p.start && prev.start < prev.end);

	/* a range that is not a period is refused */
	if (p.end - p.start > 1)
	{
		again.start = p.start;
		again.end = p.end - 1;
		REQUIRE(cal_next_period(anchor, &c, &again, &next) == CAL_NOT_A_PERIOD);
	}

	/* cut the period at the remaining bytes and prorate */
	if (price == INT64_MIN)
		price = -INT64_MAX;		/* amounts are symmetric */
	{
		int32_t		prev_cut = p.start;
		int128_t	sum = 0;
		bool		counted = cal_day_count(dc, p.start, p.end) > 0;
		int64_t		u;
		int			n = 0;

		while (prev_cut < p.end && n++ < 64)
		{
			uint32_t	step = (uint32_t) take(&r, 4);
			int64_t		span = (int64_t) p.end - prev_cut;
			int32_t		cut = r.left == 0 ? p.end : prev_cut + 1 + (int32_t) (step % (uint64_t) span);
			Period		part = {prev_cut, cut};

			err = prorate_units(price, &p, &part, dc, mode, &u);
			if (!counted)
			{
				REQUIRE(err == CAL_NO_DAY_COUNT);
				return 0;
			}
			REQUIRE(err == CAL_OK);
			REQUIRE(price >= 0 ? (u >= 0 && u <= price) : (u <= 0 && u >= price));
			sum += u;
			prev_cut = cut;
		}
		if (prev_cut == p.end)
			REQUIRE(sum == price);
	}
	return 0;
}
