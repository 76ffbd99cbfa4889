/*
 * amount.h - the money-safe amount: a count of minor units with its currency.
 *
 * Part of the pure C core: no PostgreSQL headers.  Nothing here rounds
 * unless a RoundingMode is passed in, nothing wraps around, and no operation
 * accepts two currencies.
 *
 * A value records its own scale (the number of minor-unit digits it was
 * made with) next to the currency, so a stored amount keeps its meaning even
 * if a later ICU release changed that currency's digits.  Two values of one
 * currency but different scales compare, add and hash by their exact value.
 */
#ifndef BILLING_AMOUNT_H
#define BILLING_AMOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rounding.h"

/*
 * 16 bytes, the on-disk and in-memory form.  The range of units is
 * symmetric so that negation never overflows, and bounded by
 * AMOUNT_MAX_MAJOR below.
 */
typedef struct Amount
{
	int64_t		units;			/* value in 10^-scale of the currency */
	char		currency[3];	/* ISO 4217 code, upper case, not terminated */
	uint8_t		scale;			/* minor-unit digits, 0..CURRENCY_MAX_DIGITS */
	uint8_t		reserved[4];	/* always zero */
} Amount;

#define AMOUNT_MAX_UNITS INT64_MAX
#define AMOUNT_MIN_UNITS (-INT64_MAX)

/*
 * The largest single amount: 10^12 major units either side of zero
 * (1000000000000.00 USD, 1000000000000 JPY, 1000000000000.000 KWD), at
 * every scale whose minor units fit in an int64 (at 7 digits and more the
 * int64 is the bound).  Every value that text input, binary input, a
 * constructor or an operator makes is within it.  Why a bound far below
 * the int64: amounts are added up across accounts and tenants (reports,
 * balances), and with every amount below 10^12 major units (under 2^54
 * minor units at ICU's most, 4 digits) 2^63 of them, the count an
 * aggregate keeps, cannot overflow a 128-bit sum; and no invoice, payment
 * or credit a business bills comes near it.
 */
#define AMOUNT_MAX_MAJOR INT64_C(1000000000000)
#define AMOUNT_MAX_MAJOR_DIGITS 12

/* "-92233720368547758.07 USD" plus room: sign, 19 digits, point, code */
#define AMOUNT_TEXT_MAX 32

/* A 128-bit value at a scale: sign, 39 digits, point, leading zeros */
#define AMOUNT_WIDE_TEXT_MAX 64

typedef enum AmountError
{
	AMOUNT_OK = 0,
	AMOUNT_EMPTY,				/* nothing but spaces */
	AMOUNT_SYNTAX,				/* not a number and a code */
	AMOUNT_NO_CURRENCY,			/* a number without a code */
	AMOUNT_BAD_CODE,			/* a code that is not three letters */
	AMOUNT_UNKNOWN_CURRENCY,	/* three letters ICU does not know */
	AMOUNT_TOO_MANY_DIGITS,		/* more fraction digits than the currency */
	AMOUNT_OUT_OF_RANGE,		/* beyond AMOUNT_MAX_MAJOR major units */
	AMOUNT_NOT_FINITE,			/* NaN or Infinity */
	AMOUNT_CURRENCY_MISMATCH,	/* two different currencies */
	AMOUNT_DIVISION_BY_ZERO,
	AMOUNT_BAD_SCALE,			/* a scale other than the currency's digits */
	AMOUNT_BAD_PADDING,			/* binary input with reserved bytes set */
	AMOUNT_BAD_WEIGHTS			/* negative weight, or all weights zero */
} AmountError;

#define AMOUNT_ERROR_LAST AMOUNT_BAD_WEIGHTS

/* The largest |units| at `scale`: 10^(12 + scale), capped at INT64_MAX. */
extern int64_t amount_max_units(int scale);

/* Whether `units` minor units at `scale` are within the bound above. */
extern bool amount_units_in_range(int128_t units, int scale);

/*
 * Parses "12.34 USD", "USD 12.34", "-12.34 usd", "+5 EUR".  On
 * AMOUNT_TOO_MANY_DIGITS and AMOUNT_UNKNOWN_CURRENCY, out->currency (and for
 * the former out->scale) are filled in so the caller can name them.  The
 * value it makes passes amount_validate, which it calls last.
 */
extern AmountError amount_parse(const char *text, Amount *out);

/* Builds an amount of `units` minor units at the currency's own scale. */
extern AmountError amount_make(int64_t units, const char code[3], Amount *out);

/*
 * The one rule of what an amount from outside may be, shared by text input
 * (amount_parse ends with it) and binary input (amount_recv): the code is
 * three upper-case letters (AMOUNT_BAD_CODE) that ICU knows
 * (AMOUNT_UNKNOWN_CURRENCY), the scale is exactly the currency's
 * minor-unit digits (AMOUNT_BAD_SCALE: text input never makes another),
 * the units are within the bound (AMOUNT_OUT_OF_RANGE) and the reserved
 * bytes are zero (AMOUNT_BAD_PADDING).  So binary input accepts exactly the
 * values text input can make, each of which prints and parses back to
 * itself.
 */
extern AmountError amount_validate(const Amount *a);

/* "12.34 USD" / "-1000 JPY"; returns the length (< AMOUNT_TEXT_MAX). */
extern int	amount_format(const Amount *a, char *buf);

/* Just the number, "-12.34"; returns the length. */
extern int	amount_format_number(const Amount *a, char *buf);

/*
 * A 128-bit count of minor units at a scale (0..18) as a plain decimal,
 * "-123456789012345678901234.56", into buf of AMOUNT_WIDE_TEXT_MAX bytes;
 * returns the length.  For sums, which may exceed any single amount.
 */
extern int	amount_format_wide(int128_t units, int scale, char *buf);

extern bool amount_same_currency(const Amount *a, const Amount *b);

/* Equality by value; false, not an error, across currencies. */
extern bool amount_eq(const Amount *a, const Amount *b);

/* Three-way comparison; AMOUNT_CURRENCY_MISMATCH across currencies. */
extern AmountError amount_cmp(const Amount *a, const Amount *b, int *result);

/*
 * The canonical form used for hashing: trailing zero digits removed, so that
 * equal values of different scales hash alike.
 */
extern void amount_canonical(const Amount *a, int64_t *units, int *scale);

extern AmountError amount_add(const Amount *a, const Amount *b, Amount *out);
extern AmountError amount_sub(const Amount *a, const Amount *b, Amount *out);
extern AmountError amount_neg(const Amount *a, Amount *out);
extern AmountError amount_mul_int(const Amount *a, int64_t factor, Amount *out);
extern AmountError amount_div_int(const Amount *a, int64_t divisor,
								  RoundingMode mode, Amount *out);

/*
 * Both values at their common (larger) scale, as wide integers: what a ratio
 * a / b or any exact comparison needs.
 */
extern AmountError amount_align(const Amount *a, const Amount *b,
								int128_t *ua, int128_t *ub, int *scale);

/* 10^n for 0 <= n <= 18. */
extern int64_t amount_pow10(int n);

/*
 * Splits `total` into n parts proportional to the non-negative weights, by
 * largest remainder: each part gets floor(|total| * w / sum(w)) minor
 * units, and the units left over go one each to the parts with the largest
 * remainders, ties to the earlier part.  A negative total is split as its
 * magnitude and negated, so a refund mirrors its charge.  A zero weight gets
 * zero.  The parts always sum exactly to the total.  `slots` is scratch space
 * for n entries.
 */
typedef struct AllocSlot
{
	int128_t	remainder;
	int32_t		index;
} AllocSlot;

extern AmountError amount_allocate(const Amount *total, const int64_t *weights,
								   int32_t n, Amount *parts, AllocSlot *slots);

/*
 * The wide accumulator behind sum(), sum_numeric() and avg(): every amount
 * is below 2^54 minor units at ICU's scales (AMOUNT_MAX_MAJOR), so 2^63 of
 * them (the count's range) stay below 2^117 and the 128-bit total cannot
 * overflow; the result is checked when it is turned back into an amount
 * (sum, avg) and never for sum_numeric.  Only a mix of scales (a value
 * stored before ICU changed a currency's digits) raises the total's scale,
 * and that rescaling is still checked.
 */
typedef struct AmountSum
{
	int128_t	total;
	int64_t		count;
	char		currency[3];
	uint8_t		scale;
} AmountSum;

extern void amount_sum_init(AmountSum *s);
extern AmountError amount_sum_add(AmountSum *s, const Amount *a);
extern AmountError amount_sum_combine(AmountSum *s, const AmountSum *other);
extern AmountError amount_sum_result(const AmountSum *s, Amount *out);
extern AmountError amount_sum_avg(const AmountSum *s, RoundingMode mode,
								  Amount *out);

#endif
