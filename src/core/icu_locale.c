/*
 * icu_locale.c - locale ids, text direction and date formatting from ICU.
 */
#include "icu_locale.h"
#include "calendar.h"

#include <string.h>

#include <unicode/ucal.h>
#include <unicode/udat.h>
#include <unicode/udatpg.h>
#include <unicode/unum.h>
#include <unicode/uloc.h>
#include <unicode/ustring.h>

/*
 * A locale is usable when it parses completely as a language tag and ICU has
 * data for its language.  unum_open() alone cannot tell: it falls back to the
 * root locale for "xx-YY" and reports the same warning as for "de-DE".
 */
bool
locale_to_icu(const char *locale, char *id, size_t idsize)
{
	char		tag[ULOC_FULLNAME_CAPACITY];
	char		lang[ULOC_LANG_CAPACITY];
	size_t		len = strlen(locale);
	int32_t		parsed = 0;
	UErrorCode	status = U_ZERO_ERROR;
	int32_t		n;

	if (len == 0 || len >= sizeof(tag))
		return false;
	for (size_t i = 0; i <= len; i++)
		tag[i] = locale[i] == '_' ? '-' : locale[i];
	uloc_forLanguageTag(tag, id, (int32_t) idsize, &parsed, &status);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING ||
		(size_t) parsed != len || id[0] == '\0')
		return false;
	uloc_getLanguage(id, lang, sizeof(lang), &status);
	if (U_FAILURE(status) || lang[0] == '\0')
		return false;
	n = uloc_countAvailable();
	for (int32_t i = 0; i < n; i++)
	{
		const char *avail = uloc_getAvailable(i);
		size_t		l = strlen(lang);

		if (strncmp(avail, lang, l) == 0 && (avail[l] == '\0' || avail[l] == '_'))
			return true;
	}
	return false;
}

bool
locale_is_rtl(const char *icu_id)
{
	return uloc_isRightToLeft(icu_id) != 0;
}

bool
date_style_parse(const char *name, DateStyle *style)
{
	static const char *const names[] = {"short", "medium", "long", "full"};

	for (int i = 0; i < 4; i++)
	{
		if (strcmp(name, names[i]) == 0)
		{
			*style = (DateStyle) i;
			return true;
		}
	}
	return false;
}

/* days from 1970-01-01 to 2000-01-01 */
#define UNIX_TO_PG_DAYS 10957

/* UTC, the zone every date is shown in */
static const UChar utc_zone[] = {'U', 'T', 'C', 0};

/* before PostgreSQL's first date, and inside ICU's range */
#define BEGINNING_OF_TIME (-1.8e17)

/*
 * Whether ICU's proleptic Gregorian calendar puts `instant` on the civil
 * date PostgreSQL means.  ICU's calendars end about 5,800,000 years from
 * now (PostgreSQL's dates go to 5874897) and past that end ICU clamps,
 * naming a wrong day without an error: such a date is refused instead.
 */
static bool
icu_names_day(UDate instant, const CivilDate *civil)
{
	UErrorCode	status = U_ZERO_ERROR;
	UCalendar  *g = ucal_open(utc_zone, -1, "en_US@calendar=gregorian", UCAL_GREGORIAN, &status);
	bool		same;

	if (U_FAILURE(status))
		return false;
	ucal_setGregorianChange(g, BEGINNING_OF_TIME, &status);
	ucal_setMillis(g, instant, &status);
	same = U_SUCCESS(status) &&
		ucal_get(g, UCAL_EXTENDED_YEAR, &status) == civil->year &&
		ucal_get(g, UCAL_MONTH, &status) + 1 == civil->month &&
		ucal_get(g, UCAL_DATE, &status) == civil->day &&
		U_SUCCESS(status);
	ucal_close(g);
	return same;
}

/*
 * The formatter's pattern with every two-letter year ("yy", outside quoted
 * text) written as the whole year ("y").  Returns whether it had an era
 * field (G) outside quotes.
 */
static bool
whole_year(UDateFormat *fmt, UErrorCode *status)
{
	UChar		pattern[256];
	int32_t		len = udat_toPattern(fmt, false, pattern, 256, status);
	bool		quoted = false;
	bool		has_era = false;
	int32_t		n = 0;

	if (U_FAILURE(*status) || *status == U_STRING_NOT_TERMINATED_WARNING)
		return false;
	for (int32_t i = 0; i < len; i++)
	{
		UChar		c = pattern[i];

		if (c == '\'')
			quoted = !quoted;
		else if (!quoted && c == 'G')
			has_era = true;
		else if (!quoted && c == 'y' && (i == 0 || pattern[i - 1] != 'y') &&
				 i + 1 < len && pattern[i + 1] == 'y' && (i + 2 >= len || pattern[i + 2] != 'y'))
		{
			/* exactly two: keep one */
			pattern[n++] = c;
			i++;
			continue;
		}
		pattern[n++] = c;
	}
	if (n != len)
		udat_applyPattern(fmt, false, pattern, n);
	return has_era;
}

/*
 * Adds the era to the formatter's pattern, in the locale's order: its
 * skeleton plus "G" through the locale's pattern generator.
 */
static void
add_era(UDateFormat *fmt, const char *icu_id, UErrorCode *status)
{
	UChar		pattern[256];
	UChar		skeleton[260];
	UChar		best[256];
	int32_t		len;
	UDateTimePatternGenerator *gen;

	len = udat_toPattern(fmt, false, pattern, 256, status);
	if (U_FAILURE(*status) || *status == U_STRING_NOT_TERMINATED_WARNING)
		return;
	gen = udatpg_open(icu_id, status);
	if (U_FAILURE(*status))
		return;
	len = udatpg_getSkeleton(gen, pattern, len, skeleton, 256, status);
	if (U_SUCCESS(*status) && *status != U_STRING_NOT_TERMINATED_WARNING)
	{
		skeleton[len++] = 'G';
		skeleton[len] = 0;
		len = udatpg_getBestPattern(gen, skeleton, len, best, 256, status);
		if (U_SUCCESS(*status) && *status != U_STRING_NOT_TERMINATED_WARNING)
			udat_applyPattern(fmt, false, best, len);
	}
	udatpg_close(gen);
}

/* The calendars ICU builds on its Gregorian one, with its Julian past. */
static bool
julian_before_1582(const UCalendar *cal)
{
	static const char *const types[] = {"buddhist", "japanese", "roc", "iso8601"};
	UErrorCode	status = U_ZERO_ERROR;
	const char *type = ucal_getType(cal, &status);

	if (U_FAILURE(status) || type == NULL)
		return false;
	for (int i = 0; i < 4; i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

int
locale_format_date(int32_t days, const char *icu_id, DateStyle style,
				   char *buf, size_t bufsize)
{
	static const UDateFormatStyle styles[] = {UDAT_SHORT, UDAT_MEDIUM, UDAT_LONG, UDAT_FULL};
	UErrorCode	status = U_ZERO_ERROR;
	UDateFormat *fmt;
	UCalendar  *cal;
	CivilDate	civil = cal_civil_from_day(days);
	UChar		out[256];
	int32_t		ulen;
	int32_t		blen = 0;

	/*
	 * ICU takes an instant in milliseconds; midnight UTC of the date, shown
	 * in UTC, is that date in every locale.  A double holds every
	 * millisecond exactly for +-285,000 years.
	 */
	UDate		instant = ((double) days + UNIX_TO_PG_DAYS) * 86400000.0;

	if (!icu_names_day(instant, &civil))
		return LOCALE_DATE_OUT_OF_RANGE;
	fmt = udat_open(UDAT_NONE, styles[style], icu_id, utc_zone, -1, NULL, 0, &status);
	if (U_FAILURE(status))
		return -1;

	/*
	 * ICU's Gregorian calendar, and the calendars built on it (Buddhist,
	 * Japanese, ROC), switch to Julian before 1582; PostgreSQL's dates are
	 * proleptic Gregorian.  Move the switch of the Gregorian calendar to the
	 * beginning of time so that both name the same day.  ICU moves it for
	 * no other calendar: a date before the switch in a locale whose
	 * calendar is built on the Gregorian one (th-TH) is written in the
	 * Gregorian calendar of that locale instead of on the Julian day.
	 */
	cal = ucal_clone(udat_getCalendar(fmt), &status);
	if (U_SUCCESS(status))
	{
		UErrorCode	change = U_ZERO_ERROR;

		ucal_setGregorianChange(cal, BEGINNING_OF_TIME, &change);
		if (U_SUCCESS(change))
			udat_setCalendar(fmt, cal);
		else if (days < cal_day_from_civil(1582, 10, 15) && julian_before_1582(cal))
		{
			char		gregorian[ULOC_FULLNAME_CAPACITY];

			strncpy(gregorian, icu_id, sizeof(gregorian) - 1);
			gregorian[sizeof(gregorian) - 1] = '\0';
			uloc_setKeywordValue("calendar", "gregorian", gregorian, sizeof(gregorian), &status);
			ucal_close(cal);
			udat_close(fmt);
			if (U_FAILURE(status))
				return -1;
			return locale_format_date(days, gregorian, style, buf, bufsize);
		}
		ucal_close(cal);
	}

	/*
	 * The locale's patterns are made for the years people write: a short
	 * style has two digits of year (12/31/99 would be 9999 and 99 too), and
	 * no style shows the era (January 1, 1 would be 1 BC and 1 AD).  A year
	 * that has not four digits is written whole ("1/1/10000"), and a year
	 * before 1 AD with its era, placed in the locale's own order by ICU's
	 * pattern generator ("January 1, 1 BC", "1. Januar 1 v. Chr.").
	 */
	if (U_SUCCESS(status) && (civil.year < 1000 || civil.year > 9999))
	{
		bool		has_era = whole_year(fmt, &status);

		if (U_SUCCESS(status) && civil.year < 1 && !has_era)
			add_era(fmt, icu_id, &status);
	}
	if (U_FAILURE(status))
	{
		udat_close(fmt);
		return -1;
	}
	ulen = udat_format(fmt, instant, out, 256, NULL, &status);
	udat_close(fmt);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	u_strToUTF8(buf, (int32_t) bufsize, &blen, out, ulen, &status);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING ||
		(size_t) blen >= bufsize)
		return -1;
	return blen;
}

/*
 * A decimal number written as PostgreSQL's numeric prints it ("-1234.50")
 * in the locale's digits, grouping and decimal sign, with exactly the
 * fraction digits it has: nothing is rounded or dropped, so a quantity of
 * 0.0035 or 12000.50 reads as given.
 */
int
locale_format_decimal(const char *decimal, const char *icu_id, char *buf, size_t bufsize)
{
	UErrorCode	status = U_ZERO_ERROR;
	UNumberFormat *nf;
	UChar		out[256];
	int32_t		ulen;
	int32_t		blen = 0;
	const char *point = strchr(decimal, '.');
	int32_t		digits = point ? (int32_t) strlen(point + 1) : 0;

	nf = unum_open(UNUM_DECIMAL, NULL, 0, icu_id, NULL, &status);
	if (U_FAILURE(status))
		return -1;
	unum_setAttribute(nf, UNUM_MIN_FRACTION_DIGITS, digits);
	unum_setAttribute(nf, UNUM_MAX_FRACTION_DIGITS, digits);
	unum_setAttribute(nf, UNUM_ROUNDING_MODE, UNUM_ROUND_UNNECESSARY);
	ulen = unum_formatDecimal(nf, decimal, -1, out, 256, NULL, &status);
	unum_close(nf);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING)
		return -1;
	u_strToUTF8(buf, (int32_t) bufsize, &blen, out, ulen, &status);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING || (size_t) blen >= bufsize)
		return -1;
	return blen;
}
