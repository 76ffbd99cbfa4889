/*
 * icu_locale.c - locale ids, text direction and date formatting from ICU.
 */
#include "icu_locale.h"

#include <string.h>

#include <unicode/ucal.h>
#include <unicode/udat.h>
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

int
locale_format_date(int32_t days, const char *icu_id, DateStyle style,
				   char *buf, size_t bufsize)
{
	static const UDateFormatStyle styles[] = {UDAT_SHORT, UDAT_MEDIUM, UDAT_LONG, UDAT_FULL};
	static const UChar utc[] = {'U', 'T', 'C', 0};
	UErrorCode	status = U_ZERO_ERROR;
	UDateFormat *fmt;
	UChar		out[256];
	int32_t		ulen;
	int32_t		blen = 0;

	/*
	 * ICU takes an instant in milliseconds; midnight UTC of the date, shown
	 * in UTC, is that date in every locale.  A double holds every
	 * millisecond exactly for +-285,000 years.
	 */
	UDate		instant = ((double) days + UNIX_TO_PG_DAYS) * 86400000.0;

	fmt = udat_open(UDAT_NONE, styles[style], icu_id, utc, -1, NULL, 0, &status);
	if (U_FAILURE(status))
		return -1;

	/*
	 * ICU's Gregorian calendar switches to Julian before 1582; PostgreSQL's
	 * dates are proleptic Gregorian.  Move the switch to the beginning of
	 * time so that both name the same day.
	 */
	if (ucal_getType(udat_getCalendar(fmt), &status) != NULL &&
		strcmp(ucal_getType(udat_getCalendar(fmt), &status), "gregorian") == 0)
	{
		UCalendar  *cal = ucal_clone(udat_getCalendar(fmt), &status);

		ucal_setGregorianChange(cal, -1.8e17, &status);
		udat_setCalendar(fmt, cal);
		ucal_close(cal);
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
