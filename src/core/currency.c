/*
 * currency.c - currency metadata and locale formatting from ICU.
 */
#include "currency.h"

#include <string.h>

#include <unicode/ucurr.h>
#include <unicode/uloc.h>
#include <unicode/unum.h>
#include <unicode/ustring.h>

#define CODE_SPACE (26 * 26 * 26)

/* per code: 0 unknown, else 1 + digits; bit 7 set when current */
static uint8_t code_table[CODE_SPACE];
static bool table_loaded;

#define ENTRY_CURRENT 0x80
#define ENTRY_DIGITS(e) ((int) ((e) & 0x7f) - 1)

static inline int
code_index(const char code[3])
{
	return ((code[0] - 'A') * 26 + (code[1] - 'A')) * 26 + (code[2] - 'A');
}

static bool
is_upper_code(const char code[3])
{
	for (int i = 0; i < 3; i++)
		if (code[i] < 'A' || code[i] > 'Z')
			return false;
	return true;
}

static void
load_flags(uint32_t flags, bool mark_current)
{
	UErrorCode	status = U_ZERO_ERROR;
	UEnumeration *en = ucurr_openISOCurrencies(flags, &status);
	const char *code;
	int32_t		len;

	if (U_FAILURE(status))
		return;
	while ((code = uenum_next(en, &len, &status)) != NULL && U_SUCCESS(status))
	{
		UChar		ucode[4];
		UErrorCode	st = U_ZERO_ERROR;
		int32_t		digits;
		int			idx;

		if (len != 3 || !is_upper_code(code))
			continue;
		idx = code_index(code);
		if (mark_current)
		{
			if (code_table[idx] != 0)
				code_table[idx] |= ENTRY_CURRENT;
			continue;
		}
		u_charsToUChars(code, ucode, 3);
		ucode[3] = 0;
		digits = ucurr_getDefaultFractionDigits(ucode, &st);
		if (U_FAILURE(st) || digits < 0 || digits > CURRENCY_MAX_DIGITS)
			continue;
		code_table[idx] = (uint8_t) (digits + 1);
	}
	uenum_close(en);
}

static inline void
ensure_loaded(void)
{
	if (table_loaded)
		return;
	load_flags(UCURR_ALL, false);
	/* in use today: not deprecated (fund codes such as CHE or USN included) */
	load_flags(UCURR_NON_DEPRECATED, true);
	table_loaded = true;
}

bool
currency_code_normalize(const char *text, size_t len, char out[3])
{
	if (len != 3)
		return false;
	for (int i = 0; i < 3; i++)
	{
		char		c = text[i];

		if (c >= 'a' && c <= 'z')
			c = (char) (c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		out[i] = c;
	}
	return true;
}

int
currency_digits(const char code[3])
{
	uint8_t		e;

	if (!is_upper_code(code))
		return -1;
	ensure_loaded();
	e = code_table[code_index(code)];
	return e == 0 ? -1 : ENTRY_DIGITS(e);
}

bool
currency_is_current(const char code[3])
{
	if (!is_upper_code(code))
		return false;
	ensure_loaded();
	return (code_table[code_index(code)] & ENTRY_CURRENT) != 0;
}

bool
currency_next(int *cursor, char code[3])
{
	ensure_loaded();
	for (int i = *cursor; i < CODE_SPACE; i++)
	{
		if (code_table[i] != 0)
		{
			code[0] = (char) ('A' + i / (26 * 26));
			code[1] = (char) ('A' + (i / 26) % 26);
			code[2] = (char) ('A' + i % 26);
			*cursor = i + 1;
			return true;
		}
	}
	*cursor = CODE_SPACE;
	return false;
}

/*
 * A locale is usable when it parses completely as a language tag and ICU has
 * data for its language.  unum_open() alone cannot tell: it falls back to the
 * root locale for "xx-YY" and reports the same warning as for "de-DE".
 */
static bool
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

int
currency_format_locale(const char *decimal, const char code[3], int digits,
					   const char *locale, char *buf, size_t bufsize)
{
	char		id[ULOC_FULLNAME_CAPACITY];
	UErrorCode	status = U_ZERO_ERROR;
	UNumberFormat *nf;
	UChar		ucode[4];
	UChar		out[256];
	int32_t		ulen;
	int32_t		blen = 0;

	if (!locale_to_icu(locale, id, sizeof(id)))
		return -1;
	nf = unum_open(UNUM_CURRENCY, NULL, 0, id, NULL, &status);
	if (U_FAILURE(status))
		return -2;
	u_charsToUChars(code, ucode, 3);
	ucode[3] = 0;
	unum_setTextAttribute(nf, UNUM_CURRENCY_CODE, ucode, 3, &status);
	/* the amount already has its exact digits: show them all, round none */
	unum_setAttribute(nf, UNUM_MIN_FRACTION_DIGITS, digits);
	unum_setAttribute(nf, UNUM_MAX_FRACTION_DIGITS, digits);
	unum_setAttribute(nf, UNUM_ROUNDING_MODE, UNUM_ROUND_UNNECESSARY);
	ulen = unum_formatDecimal(nf, decimal, -1, out, 256, NULL, &status);
	unum_close(nf);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING)
		return -2;
	u_strToUTF8(buf, (int32_t) bufsize, &blen, out, ulen, &status);
	if (U_FAILURE(status) || status == U_STRING_NOT_TERMINATED_WARNING ||
		(size_t) blen >= bufsize)
		return -2;
	return blen;
}
