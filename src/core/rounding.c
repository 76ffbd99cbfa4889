/*
 * rounding.c - the one definition of every rounding mode.
 */
#include "rounding.h"

#include <string.h>

static const char *const mode_names[ROUNDING_MODE_COUNT] = {
	"half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"
};

const char *
rounding_mode_name(RoundingMode mode)
{
	if ((int) mode < 0 || (int) mode >= ROUNDING_MODE_COUNT)
		return NULL;
	return mode_names[mode];
}

bool
rounding_mode_parse(const char *name, RoundingMode *mode)
{
	for (int i = 0; i < ROUNDING_MODE_COUNT; i++)
	{
		if (strcmp(name, mode_names[i]) == 0)
		{
			*mode = (RoundingMode) i;
			return true;
		}
	}
	return false;
}

int
rounding_adjust(RoundingMode mode, int sign, int cmp_half, bool exact,
				bool q_odd)
{
	bool		away;

	if (exact || sign == 0)
		return 0;
	switch (mode)
	{
		case ROUND_HALF_UP:
			away = cmp_half >= 0;
			break;
		case ROUND_HALF_EVEN:
			away = cmp_half > 0 || (cmp_half == 0 && q_odd);
			break;
		case ROUND_HALF_DOWN:
			away = cmp_half > 0;
			break;
		case ROUND_UP:
			away = true;
			break;
		case ROUND_DOWN:
			away = false;
			break;
		case ROUND_CEILING:
			away = sign > 0;
			break;
		case ROUND_FLOOR:
			away = sign < 0;
			break;
		default:
			away = false;
			break;
	}
	return away ? sign : 0;
}

/* |x| as unsigned, defined also for the most negative value. */
static inline unsigned __int128
uabs128(int128_t x)
{
	return x < 0 ? -(unsigned __int128) x : (unsigned __int128) x;
}

bool
round_div_i128(int128_t n, int128_t d, RoundingMode mode, int64_t *out)
{
	unsigned __int128 un,
				ud,
				uq,
				ur;
	int			sign;
	int			cmp_half;
	int			adj;
	int128_t	q;

	if (d == 0)
		return false;
	un = uabs128(n);
	ud = uabs128(d);
	uq = un / ud;
	ur = un % ud;
	sign = (n == 0) ? 0 : (((n < 0) != (d < 0)) ? -1 : 1);

	/* compare ur with ud/2 without overflow: ur vs ud - ur */
	if (ur == ud - ur)
		cmp_half = 0;
	else
		cmp_half = (ur < ud - ur) ? -1 : 1;

	adj = rounding_adjust(mode, sign, cmp_half, ur == 0, (uq & 1) != 0);

	/* uq <= 2^127, so compare before converting to a signed value */
	if (uq > (unsigned __int128) INT64_MAX + 1)
		return false;
	q = sign < 0 ? -(int128_t) uq : (int128_t) uq;
	q += adj;
	if (q > INT64_MAX || q < INT64_MIN)
		return false;
	*out = (int64_t) q;
	return true;
}
