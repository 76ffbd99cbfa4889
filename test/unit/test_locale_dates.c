/*
 * Unit tests for dates formatted by ICU (core/icu_locale.c): the proleptic
 * Gregorian day in every calendar, the era before 1 AD, the whole year
 * outside four digits, and a refusal past the end of ICU's calendars.
 */
#include "../../src/core/calendar.h"
#include "../../src/core/icu_locale.h"
#include "unit.h"

static const char *
fmt(int64_t year, int month, int day, const char *locale, DateStyle style)
{
	static char buf[256];
	int			n = locale_format_date((int32_t) cal_day_from_civil(year, month, day), locale, style, buf,
									   sizeof(buf));

	return n == LOCALE_DATE_OUT_OF_RANGE ? "(out of range)" : n < 0 ? "(error)" : buf;
}

int
main(void)
{
	/* format_date_prints_bc_with_its_era_and_refuses_past_icu */
	CHECK_STR(fmt(2026, 1, 31, "en_US", DATE_STYLE_LONG), "January 31, 2026");
	CHECK_STR(fmt(2026, 12, 31, "en_US", DATE_STYLE_SHORT), "12/31/26");
	CHECK_STR(fmt(1, 1, 1, "en_US", DATE_STYLE_LONG), "January 1, 1");
	CHECK_STR(fmt(1, 1, 1, "en_US", DATE_STYLE_SHORT), "1/1/1");
	CHECK_STR(fmt(0, 12, 31, "en_US", DATE_STYLE_LONG), "December 31, 1 BC");
	CHECK_STR(fmt(0, 12, 31, "en_US", DATE_STYLE_SHORT), "12/31/1 BC");
	CHECK_STR(fmt(-4713, 11, 24, "en_US", DATE_STYLE_LONG), "November 24, 4714 BC");
	CHECK_STR(fmt(9999, 12, 31, "en_US", DATE_STYLE_LONG), "December 31, 9999");
	CHECK_STR(fmt(10000, 1, 1, "en_US", DATE_STYLE_LONG), "January 1, 10000");
	CHECK_STR(fmt(10000, 1, 1, "en_US", DATE_STYLE_SHORT), "1/1/10000");
	CHECK_STR(fmt(5828963, 12, 20, "en_US", DATE_STYLE_LONG), "December 20, 5828963");
	CHECK_STR(fmt(5828963, 12, 21, "en_US", DATE_STYLE_LONG), "(out of range)");
	CHECK_STR(fmt(5874897, 12, 31, "de_DE", DATE_STYLE_SHORT), "(out of range)");
	/* proleptic Gregorian before 1582, also where ICU's calendar is Buddhist */
	CHECK_STR(fmt(1582, 10, 14, "en_US", DATE_STYLE_LONG), "October 14, 1582");
	CHECK(strstr(fmt(1582, 10, 14, "th_TH", DATE_STYLE_LONG), "14 ") == fmt(1582, 10, 14, "th_TH", DATE_STYLE_LONG));
	CHECK(strstr(fmt(1582, 10, 14, "th_TH", DATE_STYLE_LONG), "1582") != NULL);
	return UNIT_DONE();
}
