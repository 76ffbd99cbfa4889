/*
 * currency.h - ISO 4217 currency codes and their minor-unit digits, read
 * from ICU (the library PostgreSQL itself links), never typed by hand.
 *
 * Part of the pure C core: no PostgreSQL headers.  The table is built on
 * first use from ICU's list of ISO codes (current and historic) and cached
 * in a flat array indexed by the three letters, so a lookup is one load.
 */
#ifndef BILLING_CURRENCY_H
#define BILLING_CURRENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most minor-unit digits a stored amount may carry (ICU's most is 4). */
#define CURRENCY_MAX_DIGITS 9

/*
 * Copies a three-letter code into out[] in upper case.  Returns false unless
 * `len` bytes at `text` are exactly three ASCII letters.
 */
extern bool currency_code_normalize(const char *text, size_t len, char out[3]);

/* Minor-unit digits of an upper-case code, or -1 when ICU does not know it. */
extern int	currency_digits(const char code[3]);

/* Whether ICU lists the code as in use today (not withdrawn). */
extern bool currency_is_current(const char code[3]);

/*
 * Iterates the known codes in alphabetical order: start with *cursor = 0;
 * returns false when done.
 */
extern bool currency_next(int *cursor, char code[3]);

/*
 * Formats `decimal` (plain ASCII such as "-1234.50") as money in `code` for
 * a BCP 47 or ICU locale ("he-IL", "de_DE") with ICU, in UTF-8, showing
 * exactly `digits` fraction digits.  Returns the length written, or -1 for
 * a locale ICU has no data for, -2 for any other ICU failure (including a
 * buffer too small).
 */
extern int	currency_format_locale(const char *decimal, const char code[3],
								   int digits, const char *locale,
								   char *buf, size_t bufsize);

#endif
