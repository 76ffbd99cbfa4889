/*
 * icu_locale.h - locales for documents: BCP 47 tags to ICU locale ids, text
 * direction, and dates formatted by ICU.
 *
 * Part of the pure C core: no PostgreSQL headers.
 */
#ifndef BILLING_ICU_LOCALE_H
#define BILLING_ICU_LOCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Converts a BCP 47 tag ("he-IL") or ICU id ("he_IL") into an ICU locale id.
 * False unless the whole tag parses and ICU has data for its language.
 */
extern bool locale_to_icu(const char *locale, char *id, size_t idsize);

/* Whether the locale's script is written right to left (he, ar, fa, ...). */
extern bool locale_is_rtl(const char *icu_id);

typedef enum DateStyle
{
	DATE_STYLE_SHORT,
	DATE_STYLE_MEDIUM,
	DATE_STYLE_LONG,
	DATE_STYLE_FULL
} DateStyle;

extern bool date_style_parse(const char *name, DateStyle *style);

/*
 * Formats a calendar date, given as days since 2000-01-01 (PostgreSQL's
 * epoch), for an ICU locale id, in UTF-8, in the proleptic Gregorian
 * calendar (or the locale's own).  A year outside 1 to 9999 is written in
 * full, and a year before 1 AD with its era ("January 1, 1 BC").  Returns
 * the length; LOCALE_DATE_OUT_OF_RANGE for a date past the end of ICU's
 * calendars (after about the year 5,800,000, which ICU would print as
 * another day); -1 when ICU fails (including a buffer too small).
 */
#define LOCALE_DATE_OUT_OF_RANGE (-2)

extern int	locale_format_date(int32_t days, const char *icu_id, DateStyle style,
							   char *buf, size_t bufsize);

/*
 * Formats a decimal number as numeric's text output writes it ("-1234.50",
 * no exponent) for an ICU locale id, in UTF-8: the locale's digits, grouping
 * and decimal sign, exactly the fraction digits given (none rounded).
 * Returns the length, or -1 when ICU fails (a buffer too small included).
 */
extern int	locale_format_decimal(const char *decimal, const char *icu_id, char *buf, size_t bufsize);

#endif
