/*
 * amount.c - parsing, printing and exact arithmetic of amounts.
 */
#include "amount.h"
#include "currency.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t pow10_table[19] = {
	1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL,
	100000000LL, 1000000000LL, 10000000000LL, 100000000000LL,
	1000000000000LL, 10000000000000LL, 100000000000000LL,
	1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
	1000000000000000000LL
};

int64_t
amount_pow10(int n)
{
	return (n >= 0 && n <= 18) ? pow10_table[n] : 0;
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Case-insensitive comparison of a word with a lower-case literal. */
static bool
word_is(const char *w, size_t len, const char *lit)
{
	if (strlen(lit) != len)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		char		c = w[i];

		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != lit[i])
			return false;
	}
	return true;
}

static bool
word_is_non_finite(const char *w, size_t len)
{
	return word_is(w, len, "nan") || word_is(w, len, "inf") ||
		word_is(w, len, "infinity");
}

int64_t
amount_max_units(int scale)
{
	/* 10^(12 + scale) fits in an int64 up to scale 6 */
	if (scale < 0)
		return 0;
	if (scale + AMOUNT_MAX_MAJOR_DIGITS > 18)
		return AMOUNT_MAX_UNITS;
	return pow10_table[scale + AMOUNT_MAX_MAJOR_DIGITS];
}

bool
amount_units_in_range(int128_t units, int scale)
{
	int64_t		max = amount_max_units(scale);

	return units <= max && units >= -(int128_t) max;
}

/* Puts a wide result into *out when it is within the bound. */
static AmountError
finish(int128_t units, const char currency[3], int scale, Amount *out)
{
	if (!amount_units_in_range(units, scale))
		return AMOUNT_OUT_OF_RANGE;
	memset(out, 0, sizeof(*out));
	out->units = (int64_t) units;
	memcpy(out->currency, currency, 3);
	out->scale = (uint8_t) scale;
	return AMOUNT_OK;
}

AmountError
amount_parse(const char *text, Amount *out)
{
	const char *p = text;
	const char *code = NULL;
	size_t		code_len = 0;
	const char *int_digits = NULL;
	size_t		int_len = 0;
	const char *frac_digits = NULL;
	size_t		frac_len = 0;
	int			sign = 0;
	int			digits;
	unsigned __int128 mag = 0;
	char		cur[3];

	memset(out, 0, sizeof(*out));
	while (is_space(*p))
		p++;
	if (*p == '\0')
		return AMOUNT_EMPTY;
	if (*p == '+' || *p == '-')
		sign = (*p++ == '-') ? -1 : 1;

	/* code first ("USD 12.34"), or a word where the number should be */
	if (is_letter(*p))
	{
		code = p;
		while (is_letter(*p))
			p++;
		code_len = (size_t) (p - code);
		if (word_is_non_finite(code, code_len))
			return AMOUNT_NOT_FINITE;
		while (is_space(*p))
			p++;
		if (*p == '+' || *p == '-')
		{
			if (sign != 0)
				return AMOUNT_SYNTAX;
			sign = (*p++ == '-') ? -1 : 1;
		}
		if (is_letter(*p))
		{
			const char *w = p;

			while (is_letter(*p))
				p++;
			return word_is_non_finite(w, (size_t) (p - w)) ?
				AMOUNT_NOT_FINITE : AMOUNT_SYNTAX;
		}
	}

	/* the number: digits, optionally a point and more digits */
	int_digits = p;
	while (is_digit(*p))
		p++;
	int_len = (size_t) (p - int_digits);
	if (*p == '.')
	{
		p++;
		frac_digits = p;
		while (is_digit(*p))
			p++;
		frac_len = (size_t) (p - frac_digits);
		if (frac_len == 0)
			return AMOUNT_SYNTAX;
	}
	if (int_len == 0)
		return AMOUNT_SYNTAX;

	while (is_space(*p))
		p++;
	if (code == NULL)
	{
		if (!is_letter(*p))
			return *p == '\0' ? AMOUNT_NO_CURRENCY : AMOUNT_SYNTAX;
		code = p;
		while (is_letter(*p))
			p++;
		code_len = (size_t) (p - code);
		while (is_space(*p))
			p++;
	}
	if (*p != '\0')
		return AMOUNT_SYNTAX;

	if (!currency_code_normalize(code, code_len, cur))
		return AMOUNT_BAD_CODE;
	memcpy(out->currency, cur, 3);
	digits = currency_digits(cur);
	if (digits < 0)
		return AMOUNT_UNKNOWN_CURRENCY;
	out->scale = (uint8_t) digits;

	/* extra fraction digits are allowed only when they are zeros */
	for (size_t i = (size_t) digits; i < frac_len; i++)
		if (frac_digits[i] != '0')
			return AMOUNT_TOO_MANY_DIGITS;

	while (int_len > 0 && *int_digits == '0')
	{
		int_digits++;
		int_len--;
	}
	if (int_len > 19)
		return AMOUNT_OUT_OF_RANGE;
	for (size_t i = 0; i < int_len; i++)
		mag = mag * 10 + (unsigned) (int_digits[i] - '0');
	for (int i = 0; i < digits; i++)
		mag = mag * 10 + ((size_t) i < frac_len ? (unsigned) (frac_digits[i] - '0') : 0);
	if (mag > (unsigned __int128) AMOUNT_MAX_UNITS)
		return AMOUNT_OUT_OF_RANGE;
	out->units = sign < 0 ? -(int64_t) mag : (int64_t) mag;
	/* the rule binary input obeys too: one function decides for both */
	return amount_validate(out);
}

AmountError
amount_make(int64_t units, const char code[3], Amount *out)
{
	int			digits = currency_digits(code);

	memset(out, 0, sizeof(*out));
	if (digits < 0)
	{
		memcpy(out->currency, code, 3);
		return AMOUNT_UNKNOWN_CURRENCY;
	}
	return finish(units, code, digits, out);
}

AmountError
amount_validate(const Amount *a)
{
	int			digits;

	for (int i = 0; i < 3; i++)
		if (a->currency[i] < 'A' || a->currency[i] > 'Z')
			return AMOUNT_BAD_CODE;
	digits = currency_digits(a->currency);
	if (digits < 0)
		return AMOUNT_UNKNOWN_CURRENCY;
	if (a->scale != digits)
		return AMOUNT_BAD_SCALE;
	if (!amount_units_in_range(a->units, a->scale))
		return AMOUNT_OUT_OF_RANGE;
	for (int i = 0; i < 4; i++)
		if (a->reserved[i] != 0)
			return AMOUNT_BAD_PADDING;
	return AMOUNT_OK;
}

int
amount_format_number(const Amount *a, char *buf)
{
	uint64_t	mag = a->units < 0 ? (uint64_t) 0 - (uint64_t) a->units : (uint64_t) a->units;
	uint64_t	p = (uint64_t) amount_pow10(a->scale);
	const char *sign = a->units < 0 ? "-" : "";

	if (a->scale == 0)
		return snprintf(buf, AMOUNT_TEXT_MAX, "%s%" PRIu64, sign, mag);
	return snprintf(buf, AMOUNT_TEXT_MAX, "%s%" PRIu64 ".%0*" PRIu64,
					sign, mag / p, (int) a->scale, mag % p);
}

int
amount_format_wide(int128_t units, int scale, char *buf)
{
	char		digits[AMOUNT_WIDE_TEXT_MAX];
	unsigned __int128 mag = units < 0 ? (unsigned __int128) 0 - (unsigned __int128) units
		: (unsigned __int128) units;
	int			n = 0,
				len = 0;

	if (scale < 0)
		scale = 0;
	if (scale > 18)
		scale = 18;
	/* the digits backwards, at least scale + 1 of them */
	do
	{
		digits[n++] = (char) ('0' + (int) (mag % 10));
		mag /= 10;
	} while (mag > 0 || n <= scale);
	if (units < 0)
		buf[len++] = '-';
	while (n > 0)
	{
		if (n == scale)
			buf[len++] = '.';
		buf[len++] = digits[--n];
	}
	buf[len] = '\0';
	return len;
}

int
amount_format(const Amount *a, char *buf)
{
	int			n = amount_format_number(a, buf);

	buf[n++] = ' ';
	memcpy(buf + n, a->currency, 3);
	n += 3;
	buf[n] = '\0';
	return n;
}

bool
amount_same_currency(const Amount *a, const Amount *b)
{
	return memcmp(a->currency, b->currency, 3) == 0;
}

AmountError
amount_align(const Amount *a, const Amount *b, int128_t *ua, int128_t *ub,
			 int *scale)
{
	int			s;

	if (!amount_same_currency(a, b))
		return AMOUNT_CURRENCY_MISMATCH;
	s = a->scale > b->scale ? a->scale : b->scale;
	*ua = (int128_t) a->units * amount_pow10(s - a->scale);
	*ub = (int128_t) b->units * amount_pow10(s - b->scale);
	*scale = s;
	return AMOUNT_OK;
}

bool
amount_eq(const Amount *a, const Amount *b)
{
	int128_t	ua,
				ub;
	int			s;

	if (a->scale == b->scale)
		return a->units == b->units && amount_same_currency(a, b);
	return amount_align(a, b, &ua, &ub, &s) == AMOUNT_OK && ua == ub;
}

AmountError
amount_cmp(const Amount *a, const Amount *b, int *result)
{
	int128_t	ua,
				ub;
	int			s;
	AmountError err = amount_align(a, b, &ua, &ub, &s);

	if (err != AMOUNT_OK)
		return err;
	*result = (ua > ub) - (ua < ub);
	return AMOUNT_OK;
}

void
amount_canonical(const Amount *a, int64_t *units, int *scale)
{
	int64_t		u = a->units;
	int			s = a->scale;

	while (s > 0 && u % 10 == 0)
	{
		u /= 10;
		s--;
	}
	if (u == 0)
		s = 0;
	*units = u;
	*scale = s;
}

AmountError
amount_add(const Amount *a, const Amount *b, Amount *out)
{
	int128_t	ua,
				ub;
	int			s;
	AmountError err = amount_align(a, b, &ua, &ub, &s);

	if (err != AMOUNT_OK)
		return err;
	return finish(ua + ub, a->currency, s, out);
}

AmountError
amount_sub(const Amount *a, const Amount *b, Amount *out)
{
	int128_t	ua,
				ub;
	int			s;
	AmountError err = amount_align(a, b, &ua, &ub, &s);

	if (err != AMOUNT_OK)
		return err;
	return finish(ua - ub, a->currency, s, out);
}

AmountError
amount_neg(const Amount *a, Amount *out)
{
	return finish(-(int128_t) a->units, a->currency, a->scale, out);
}

AmountError
amount_mul_int(const Amount *a, int64_t factor, Amount *out)
{
	return finish((int128_t) a->units * factor, a->currency, a->scale, out);
}

AmountError
amount_div_int(const Amount *a, int64_t divisor, RoundingMode mode, Amount *out)
{
	int64_t		q;

	if (divisor == 0)
		return AMOUNT_DIVISION_BY_ZERO;
	if (!round_div_i128(a->units, divisor, mode, &q))
		return AMOUNT_OUT_OF_RANGE;
	return finish(q, a->currency, a->scale, out);
}

static int
slot_order(const void *x, const void *y)
{
	const AllocSlot *a = x;
	const AllocSlot *b = y;

	/* larger remainder first; among equals the earlier part first */
	if (a->remainder != b->remainder)
		return a->remainder > b->remainder ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

AmountError
amount_allocate(const Amount *total, const int64_t *weights, int32_t n,
				Amount *parts, AllocSlot *slots)
{
	int128_t	sum_w = 0;
	int128_t	mag = total->units < 0 ? -(int128_t) total->units : total->units;
	int128_t	given = 0;
	int128_t	left;
	int			sign = total->units < 0 ? -1 : 1;

	if (n <= 0)
		return AMOUNT_BAD_WEIGHTS;
	for (int32_t i = 0; i < n; i++)
	{
		if (weights[i] < 0)
			return AMOUNT_BAD_WEIGHTS;
		sum_w += weights[i];
	}
	if (sum_w == 0)
		return AMOUNT_BAD_WEIGHTS;

	for (int32_t i = 0; i < n; i++)
	{
		/* mag < 2^63 and weight < 2^63: the product fits in 127 bits */
		int128_t	prod = mag * weights[i];
		int128_t	q = prod / sum_w;

		slots[i].remainder = prod % sum_w;
		slots[i].index = i;
		given += q;
		memset(&parts[i], 0, sizeof(Amount));
		parts[i].units = (int64_t) q;
		memcpy(parts[i].currency, total->currency, 3);
		parts[i].scale = total->scale;
	}

	/* fewer than n units are left; they go to the largest remainders */
	left = mag - given;
	if (left > 0)
	{
		qsort(slots, (size_t) n, sizeof(AllocSlot), slot_order);
		for (int32_t k = 0; k < left; k++)
			parts[slots[k].index].units++;
	}
	if (sign < 0)
		for (int32_t i = 0; i < n; i++)
			parts[i].units = -parts[i].units;
	return AMOUNT_OK;
}

void
amount_sum_init(AmountSum *s)
{
	memset(s, 0, sizeof(*s));
}

/* Brings the accumulator to `scale` (never lowers it). */
static AmountError
sum_rescale(AmountSum *s, int scale)
{
	if (scale > s->scale)
	{
		if (__builtin_mul_overflow(s->total, (int128_t) amount_pow10(scale - s->scale),
								   &s->total))
			return AMOUNT_OUT_OF_RANGE;
		s->scale = (uint8_t) scale;
	}
	return AMOUNT_OK;
}

AmountError
amount_sum_add(AmountSum *s, const Amount *a)
{
	int128_t	v = a->units;

	if (s->count == 0)
	{
		memcpy(s->currency, a->currency, 3);
		s->scale = a->scale;
		s->total = v;
		s->count = 1;
		return AMOUNT_OK;
	}
	if (memcmp(s->currency, a->currency, 3) != 0)
		return AMOUNT_CURRENCY_MISMATCH;
	if (a->scale != s->scale)
	{
		if (sum_rescale(s, a->scale) != AMOUNT_OK)
			return AMOUNT_OUT_OF_RANGE;
		v *= amount_pow10(s->scale - a->scale);
	}
	if (__builtin_add_overflow(s->total, v, &s->total))
		return AMOUNT_OUT_OF_RANGE;
	s->count++;
	return AMOUNT_OK;
}

AmountError
amount_sum_combine(AmountSum *s, const AmountSum *other)
{
	AmountSum	o = *other;

	if (o.count == 0)
		return AMOUNT_OK;
	if (s->count == 0)
	{
		*s = o;
		return AMOUNT_OK;
	}
	if (memcmp(s->currency, o.currency, 3) != 0)
		return AMOUNT_CURRENCY_MISMATCH;
	if (sum_rescale(s, o.scale) != AMOUNT_OK || sum_rescale(&o, s->scale) != AMOUNT_OK)
		return AMOUNT_OUT_OF_RANGE;
	if (__builtin_add_overflow(s->total, o.total, &s->total))
		return AMOUNT_OUT_OF_RANGE;
	s->count += o.count;
	return AMOUNT_OK;
}

AmountError
amount_sum_result(const AmountSum *s, Amount *out)
{
	return finish(s->total, s->currency, s->scale, out);
}

AmountError
amount_sum_avg(const AmountSum *s, RoundingMode mode, Amount *out)
{
	int64_t		q;

	if (s->count == 0)
		return AMOUNT_DIVISION_BY_ZERO;
	if (!round_div_i128(s->total, s->count, mode, &q))
		return AMOUNT_OUT_OF_RANGE;
	return finish(q, s->currency, s->scale, out);
}
