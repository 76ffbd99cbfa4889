/*
 * proration.c - exact, telescoping proration.
 */
#include "proration.h"

#include <string.h>

CalError
prorate_units(int64_t price, const Period *period, const Period *part,
			  DayCount dc, RoundingMode mode, int64_t *out)
{
	int64_t		total,
				upto_a,
				upto_b,
				ra,
				rb;

	if (period->end <= period->start)
		return CAL_EMPTY_PERIOD;
	if (part == NULL)
	{
		*out = 0;
		return CAL_OK;
	}
	if (part->end <= part->start || part->start < period->start ||
		part->end > period->end)
		return CAL_PART_OUTSIDE;

	total = cal_day_count(dc, period->start, period->end);
	if (total <= 0)
		return CAL_NO_DAY_COUNT;
	upto_a = cal_day_count(dc, period->start, part->start);
	upto_b = cal_day_count(dc, period->start, part->end);

	/*
	 * |price| < 2^63 and the day counts < 2^32, so the products fit in 95
	 * bits.  Both rounded fractions lie between 0 and price, so does their
	 * difference, and round_div_i128 cannot refuse them.
	 */
	if (!round_div_i128((int128_t) price * upto_b, total, mode, &rb) ||
		!round_div_i128((int128_t) price * upto_a, total, mode, &ra))
		return CAL_AMOUNT_OUT_OF_RANGE;
	*out = rb - ra;
	return CAL_OK;
}

CalError
prorate_amount(const Amount *price, const Period *period, const Period *part,
			   DayCount dc, RoundingMode mode, Amount *out)
{
	int64_t		units;
	CalError	err;

	if ((err = prorate_units(price->units, period, part, dc, mode, &units)) != CAL_OK)
		return err;
	memset(out, 0, sizeof(*out));
	out->units = units;
	memcpy(out->currency, price->currency, 3);
	out->scale = price->scale;
	return CAL_OK;
}
