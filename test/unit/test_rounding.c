/*
 * Unit tests for rounding.c: every mode on positive, negative, exact,
 * half and near-half quotients, and the int64 limits.
 */
#include "../../src/core/rounding.h"
#include "unit.h"

static int64_t
rd(int128_t n, int128_t d, RoundingMode m)
{
	int64_t		out = 0x5a5a5a5a;

	if (!round_div_i128(n, d, m, &out))
		return 0x7eadbeef;		/* sentinel: the call refused */
	return out;
}

int
main(void)
{
	RoundingMode m;

	/* names round-trip */
	for (int i = 0; i < ROUNDING_MODE_COUNT; i++)
	{
		CHECK(rounding_mode_parse(rounding_mode_name((RoundingMode) i), &m));
		CHECK_I64(m, i);
	}
	CHECK(!rounding_mode_parse("HALF_UP", &m));
	CHECK(!rounding_mode_parse("", &m));
	CHECK(rounding_mode_name((RoundingMode) 99) == NULL);

	/* 2.5 and -2.5 */
	CHECK_I64(rd(5, 2, ROUND_HALF_UP), 3);
	CHECK_I64(rd(-5, 2, ROUND_HALF_UP), -3);
	CHECK_I64(rd(5, 2, ROUND_HALF_EVEN), 2);
	CHECK_I64(rd(-5, 2, ROUND_HALF_EVEN), -2);
	CHECK_I64(rd(7, 2, ROUND_HALF_EVEN), 4);
	CHECK_I64(rd(-7, 2, ROUND_HALF_EVEN), -4);
	CHECK_I64(rd(5, 2, ROUND_HALF_DOWN), 2);
	CHECK_I64(rd(-5, 2, ROUND_HALF_DOWN), -2);
	CHECK_I64(rd(5, 2, ROUND_UP), 3);
	CHECK_I64(rd(-5, 2, ROUND_UP), -3);
	CHECK_I64(rd(5, 2, ROUND_DOWN), 2);
	CHECK_I64(rd(-5, 2, ROUND_DOWN), -2);
	CHECK_I64(rd(5, 2, ROUND_CEILING), 3);
	CHECK_I64(rd(-5, 2, ROUND_CEILING), -2);
	CHECK_I64(rd(5, 2, ROUND_FLOOR), 2);
	CHECK_I64(rd(-5, 2, ROUND_FLOOR), -3);

	/* negative divisor mirrors a negative dividend */
	CHECK_I64(rd(5, -2, ROUND_HALF_UP), -3);
	CHECK_I64(rd(-5, -2, ROUND_FLOOR), 2);

	/* just below and above one half: 1/3 and 2/3 */
	for (int i = 0; i < ROUNDING_MODE_COUNT; i++)
	{
		RoundingMode mm = (RoundingMode) i;
		int64_t		lo = rd(1, 3, mm),
					hi = rd(2, 3, mm);

		CHECK(lo == 0 || lo == 1);
		CHECK(hi == 0 || hi == 1);
		/* exact quotients never move */
		CHECK_I64(rd(6, 3, mm), 2);
		CHECK_I64(rd(-6, 3, mm), -2);
		CHECK_I64(rd(0, 7, mm), 0);
	}
	CHECK_I64(rd(1, 3, ROUND_HALF_UP), 0);
	CHECK_I64(rd(2, 3, ROUND_HALF_DOWN), 1);
	CHECK_I64(rd(1, 3, ROUND_UP), 1);
	CHECK_I64(rd(-1, 3, ROUND_FLOOR), -1);
	CHECK_I64(rd(-1, 3, ROUND_CEILING), 0);

	/* the half is detected exactly for odd divisors too: 3/6 == 0.5 */
	CHECK_I64(rd(3, 6, ROUND_HALF_DOWN), 0);
	CHECK_I64(rd(3, 6, ROUND_HALF_UP), 1);

	/* limits: results that fit, and ones that do not */
	CHECK_I64(rd(INT64_MAX, 1, ROUND_HALF_UP), INT64_MAX);
	CHECK_I64(rd(INT64_MIN, 1, ROUND_HALF_UP), INT64_MIN);
	CHECK_I64(rd((int128_t) INT64_MAX * 2 + 1, 2, ROUND_DOWN), INT64_MAX);
	CHECK_I64(rd((int128_t) INT64_MAX * 2 + 1, 2, ROUND_UP), 0x7eadbeef);
	CHECK_I64(rd((int128_t) INT64_MIN, -1, ROUND_HALF_UP), 0x7eadbeef);
	CHECK_I64(rd(1, 0, ROUND_HALF_UP), 0x7eadbeef);
	{
		int128_t	big = (int128_t) 1 << 126;

		CHECK_I64(rd(big, big, ROUND_HALF_UP), 1);
		CHECK_I64(rd(-big, big / 2, ROUND_HALF_UP), -2);
	}
	return UNIT_DONE();
}
