/*
 * rounding.h - named rounding modes and exact rounded division.
 *
 * Part of the pure C core: no PostgreSQL headers.  Every place in billing
 * that turns an exact quotient into whole minor units goes through
 * round_div_i128(), so there is exactly one definition of each mode.
 */
#ifndef BILLING_ROUNDING_H
#define BILLING_ROUNDING_H

#include <stdbool.h>
#include <stdint.h>

/*
 * 8-byte alignment, not the 16 the ABI gives __int128: structs holding one
 * live in memory from allocators (PostgreSQL's palloc among them) that only
 * promise 8, and the compiler would otherwise use aligned SSE moves on them.
 */
typedef __int128 int128_t __attribute__((aligned(8)));

typedef enum RoundingMode
{
	ROUND_HALF_UP = 0,			/* ties away from zero (commercial rounding) */
	ROUND_HALF_EVEN,			/* ties to the even neighbour (banker's) */
	ROUND_HALF_DOWN,			/* ties toward zero */
	ROUND_UP,					/* away from zero */
	ROUND_DOWN,					/* toward zero (truncate) */
	ROUND_CEILING,				/* toward +infinity */
	ROUND_FLOOR					/* toward -infinity */
} RoundingMode;

#define ROUNDING_MODE_COUNT 7

/* "half_up" etc.; NULL for an out-of-range mode. */
extern const char *rounding_mode_name(RoundingMode mode);

/* Parses a mode name (lower case, as rounding_mode_name prints it). */
extern bool rounding_mode_parse(const char *name, RoundingMode *mode);

/*
 * How far to move the truncated quotient q (rounded toward zero) so that it
 * is rounded by `mode`: returns -1, 0 or +1.
 *   sign      sign of the exact quotient (-1, 0, +1)
 *   cmp_half  comparison of the discarded fraction's magnitude with one half
 *             (-1 below, 0 exactly half, +1 above); ignored when exact
 *   exact     true when nothing was discarded
 *   q_odd     whether q is odd (only half_even looks at it)
 * Callers that hold the quotient in another representation (PostgreSQL
 * numeric, say) use this so the decision itself lives here only.
 */
extern int	rounding_adjust(RoundingMode mode, int sign, int cmp_half,
							bool exact, bool q_odd);

/*
 * *out = n / d rounded by mode.  Returns false when d == 0 or the result
 * does not fit in int64 (nothing is written then).
 */
extern bool round_div_i128(int128_t n, int128_t d, RoundingMode mode,
						   int64_t *out);

#endif
