/*
 * proration.h - the share of a price that falls on part of a billing period.
 *
 * Part of the pure C core: no PostgreSQL headers.  For a period [s, e), a
 * part [a, b) inside it and one rounding R, the part's share is
 *
 *     R(price * D(s, b) / D(s, e)) - R(price * D(s, a) / D(s, e))
 *
 * where D counts days under the chosen convention.  The sum telescopes: the
 * parts of any split of the period add up to R(price) - R(0) = price, to the
 * minor unit, whatever R is.  Each share has the price's sign (a credit
 * prorates to credits) and is never larger than the price.
 */
#ifndef BILLING_PRORATION_H
#define BILLING_PRORATION_H

#include "amount.h"
#include "calendar.h"
#include "rounding.h"

/*
 * The share of `price` for `part` (NULL: the empty part, which is zero) of
 * `period`, in the price's currency and scale.  Errors: CAL_EMPTY_PERIOD,
 * CAL_PART_OUTSIDE (also for an empty non-NULL part), CAL_NO_DAY_COUNT
 * (a period that counts zero days under 30E/360).
 */
extern CalError prorate_amount(const Amount *price, const Period *period,
							   const Period *part, DayCount dc,
							   RoundingMode mode, Amount *out);

/* The same on bare minor units. */
extern CalError prorate_units(int64_t price, const Period *period,
							  const Period *part, DayCount dc,
							  RoundingMode mode, int64_t *out);

#endif
