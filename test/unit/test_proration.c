/*
 * Unit tests for proration.c: worked examples, credits, the extremes of the
 * amount range, both day-count conventions, every rounding mode, and random
 * splits of random periods that must sum exactly to the price.
 */
#include "../../src/core/proration.h"
#include "unit.h"

static Period
per(int64_t s, int64_t e)
{
	Period		p = {(int32_t) s, (int32_t) e};

	return p;
}

static int32_t
day(int64_t y, int m, int d)
{
	return (int32_t) cal_day_from_civil(y, m, d);
}

/* The share, or a sentinel when the call refused. */
static int64_t
share(int64_t price, Period period, Period part, DayCount dc, RoundingMode m)
{
	int64_t		out = 0x5a5a5a5a;

	if (prorate_units(price, &period, &part, dc, m, &out) != CAL_OK)
		return 0x7eadbeef;
	return out;
}

int
main(void)
{
	unit_rng_state = 0x2545f4914f6cdd1dULL;
	Period		jan = per(day(2024, 1, 1), day(2024, 2, 1));
	Period		p;
	Amount		price,
				out;
	int64_t		u;
	int			bad;

	/* 100.00 for 15 of January's 31 days: 48.387... */
	CHECK_I64(share(10000, jan, per(day(2024, 1, 1), day(2024, 1, 16)), DAYCOUNT_ACTUAL, ROUND_HALF_UP), 4839);
	CHECK_I64(share(10000, jan, per(day(2024, 1, 16), day(2024, 2, 1)), DAYCOUNT_ACTUAL, ROUND_HALF_UP), 5161);
	CHECK_I64(share(10000, jan, per(day(2024, 1, 1), day(2024, 1, 16)), DAYCOUNT_ACTUAL, ROUND_DOWN), 4838);
	CHECK_I64(share(10000, jan, per(day(2024, 1, 16), day(2024, 2, 1)), DAYCOUNT_ACTUAL, ROUND_DOWN), 5162);
	/* the whole period is the price, in every mode */
	for (int m = 0; m < ROUNDING_MODE_COUNT; m++)
		CHECK_I64(share(-12345, jan, jan, DAYCOUNT_ACTUAL, (RoundingMode) m), -12345);
	/* a credit mirrors the charge under a symmetric mode */
	CHECK_I64(share(-10000, jan, per(day(2024, 1, 1), day(2024, 1, 16)), DAYCOUNT_ACTUAL, ROUND_HALF_UP), -4839);
	CHECK_I64(share(-10000, jan, per(day(2024, 1, 16), day(2024, 2, 1)), DAYCOUNT_ACTUAL, ROUND_HALF_UP), -5161);
	/* three single days of a 3-day period: 1.00 / 3 */
	p = per(0, 3);
	CHECK_I64(share(100, p, per(0, 1), DAYCOUNT_ACTUAL, ROUND_HALF_EVEN), 33);
	CHECK_I64(share(100, p, per(1, 2), DAYCOUNT_ACTUAL, ROUND_HALF_EVEN), 34);
	CHECK_I64(share(100, p, per(2, 3), DAYCOUNT_ACTUAL, ROUND_HALF_EVEN), 33);
	/* zero price */
	CHECK_I64(share(0, jan, per(day(2024, 1, 5), day(2024, 1, 9)), DAYCOUNT_ACTUAL, ROUND_UP), 0);

	/* the largest amounts: |price| * days needs more than 64 bits */
	CHECK_I64(share(INT64_MAX, jan, jan, DAYCOUNT_ACTUAL, ROUND_HALF_UP), INT64_MAX);
	CHECK_I64(share(-INT64_MAX, jan, jan, DAYCOUNT_ACTUAL, ROUND_HALF_UP), -INT64_MAX);
	CHECK_I64(share(INT64_MAX, jan, per(day(2024, 1, 1), day(2024, 1, 31)), DAYCOUNT_ACTUAL, ROUND_HALF_UP) +
			  share(INT64_MAX, jan, per(day(2024, 1, 31), day(2024, 2, 1)), DAYCOUNT_ACTUAL, ROUND_HALF_UP),
			  INT64_MAX);
	/* INT64_MAX / 31 = 297528130221121800.03... */
	CHECK_I64(share(INT64_MAX, jan, per(day(2024, 1, 31), day(2024, 2, 1)), DAYCOUNT_ACTUAL, ROUND_HALF_UP),
			  297528130221121800LL);
	{
		/* the widest period the date range allows */
		Period		all = per(CAL_MIN_DAY, CAL_MAX_DAY);
		Period		a = per(CAL_MIN_DAY, 12345);
		Period		b = per(12345, CAL_MAX_DAY);

		CHECK_I64(share(INT64_MAX, all, a, DAYCOUNT_ACTUAL, ROUND_CEILING) +
				  share(INT64_MAX, all, b, DAYCOUNT_ACTUAL, ROUND_CEILING), INT64_MAX);
		CHECK_I64(share(-INT64_MAX, all, a, DAYCOUNT_30E_360, ROUND_FLOOR) +
				  share(-INT64_MAX, all, b, DAYCOUNT_30E_360, ROUND_FLOOR), -INT64_MAX);
	}

	/* errors: empty period, part outside, empty non-NULL part */
	p = per(5, 5);
	CHECK(prorate_units(100, &p, &jan, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_EMPTY_PERIOD);
	p = per(day(2023, 12, 31), day(2024, 1, 5));
	CHECK(prorate_units(100, &jan, &p, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_PART_OUTSIDE);
	p = per(day(2024, 1, 25), day(2024, 2, 2));
	CHECK(prorate_units(100, &jan, &p, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_PART_OUTSIDE);
	p = per(day(2024, 1, 9), day(2024, 1, 9));
	CHECK(prorate_units(100, &jan, &p, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_PART_OUTSIDE);
	/* the empty part (NULL) is zero */
	u = 77;
	CHECK(prorate_units(100, &jan, NULL, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_OK && u == 0);
	/* a one-day period on the 30th of a 31-day month counts no 30E/360 days */
	p = per(day(2024, 1, 30), day(2024, 1, 31));
	CHECK(prorate_units(100, &p, &p, DAYCOUNT_30E_360, ROUND_HALF_UP, &u) == CAL_NO_DAY_COUNT);
	CHECK(prorate_units(100, &p, &p, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &u) == CAL_OK && u == 100);

	/* 30E/360: half of February is 15/30, whatever its length */
	p = per(day(2023, 2, 1), day(2023, 3, 1));
	CHECK_I64(share(3000, p, per(day(2023, 2, 1), day(2023, 2, 16)), DAYCOUNT_30E_360, ROUND_HALF_UP), 1500);
	CHECK_I64(share(3000, p, per(day(2023, 2, 1), day(2023, 2, 16)), DAYCOUNT_ACTUAL, ROUND_HALF_UP), 1607);
	p = per(day(2024, 3, 1), day(2024, 4, 1));
	CHECK_I64(share(3000, p, per(day(2024, 3, 1), day(2024, 3, 11)), DAYCOUNT_30E_360, ROUND_HALF_UP), 1000);

	/* the Amount form keeps currency and scale */
	CHECK(amount_make(-2500, "USD", &price) == AMOUNT_OK);
	p = per(day(2024, 1, 1), day(2024, 1, 11));
	CHECK(prorate_amount(&price, &jan, &p, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &out) == CAL_OK);
	CHECK_I64(out.units, -806);
	CHECK(memcmp(out.currency, "USD", 3) == 0 && out.scale == 2);
	CHECK(amount_validate(&out) == AMOUNT_OK);
	CHECK(prorate_amount(&price, &jan, NULL, DAYCOUNT_ACTUAL, ROUND_HALF_UP, &out) == CAL_OK);
	CHECK(out.units == 0 && memcmp(out.currency, "USD", 3) == 0 && out.scale == 2);

	/*
	 * Random splits: a random period (up to ~3 years, anywhere from 1900 to
	 * 2100), cut at random points into up to 12 parts; the parts sum exactly
	 * to the price, have its sign, and never exceed it, in every mode and
	 * both conventions.
	 */
	bad = 0;
	for (int i = 0; i < 200000; i++)
	{
		int32_t		s = day(1900, 1, 1) + (int32_t) (unit_rng() % 73000);
		int32_t		e = s + 1 + (int32_t) (unit_rng() % 1100);
		int64_t		price_u;
		int			ncut = (int) (unit_rng() % 12);
		int32_t		cuts[14];
		DayCount	dc = (DayCount) (unit_rng() % DAYCOUNT_COUNT);
		RoundingMode mode = (RoundingMode) (unit_rng() % ROUNDING_MODE_COUNT);
		int128_t	sum = 0;
		Period		whole = per(s, e);

		switch (unit_rng() % 4)
		{
			case 0:
				price_u = (int64_t) (unit_rng() % 100000) - 50000;
				break;
			case 1:
				price_u = (int64_t) (unit_rng() >> 1);
				break;
			case 2:
				price_u = -(int64_t) (unit_rng() >> 1);
				break;
			default:
				price_u = (unit_rng() % 2) ? INT64_MAX : -INT64_MAX;
				break;
		}
		if (dc == DAYCOUNT_30E_360 && cal_day_count(dc, s, e) == 0)
			continue;
		/* sorted cut points strictly inside, duplicates allowed (skipped) */
		cuts[0] = s;
		for (int c = 1; c <= ncut; c++)
			cuts[c] = s + (int32_t) (unit_rng() % (uint64_t) (e - s));
		cuts[ncut + 1] = e;
		for (int x = 1; x <= ncut; x++)
			for (int y = x + 1; y <= ncut; y++)
				if (cuts[y] < cuts[x])
				{
					int32_t		t = cuts[x];

					cuts[x] = cuts[y];
					cuts[y] = t;
				}
		for (int c = 0; c <= ncut; c++)
		{
			Period		part = per(cuts[c], cuts[c + 1]);

			if (part.start == part.end)
				continue;
			if (prorate_units(price_u, &whole, &part, dc, mode, &u) != CAL_OK)
			{
				bad++;
				continue;
			}
			if ((price_u >= 0 && (u < 0 || u > price_u)) || (price_u < 0 && (u > 0 || u < price_u)))
				bad++;
			sum += u;
		}
		if (sum != price_u)
			bad++;
	}
	CHECK_I64(bad, 0);

	return UNIT_DONE();
}
