/*
 * card_number.c - finds a payment card number in a text (card_number.h).
 *
 * One pass over the text keeps the last 19 digits of the current run in a
 * ring and the starts of its groups; at the end of each group every stretch
 * of whole groups that ends there and has 13 to 19 digits is Luhn-checked.
 * Nothing is allocated, and a text with fewer than 13 bytes that could
 * start a digit is answered by a byte count alone.
 */
#include "card_number.h"

#include <string.h>

#include <unicode/uchar.h>

#define CARD_MIN_DIGITS 13
#define CARD_MAX_DIGITS 19
#define RING 32					/* a power of two above CARD_MAX_DIGITS */

bool
card_number_luhn(const unsigned char *d, int n)
{
	int			sum = 0;

	for (int k = 0; k < n; k++)
	{
		int			x = d[n - 1 - k];

		/* every second digit from the right is doubled, its digits summed */
		if (k % 2 == 1)
		{
			x *= 2;
			if (x > 9)
				x -= 9;
		}
		sum += x;
	}
	return sum % 10 == 0;
}

/*
 * The code point at s[*i], advancing *i past it; -1 (a separator) for a
 * byte that does not start a valid, shortest-form UTF-8 sequence, which is
 * then skipped alone.
 */
static int32_t
next_code_point(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char b = s[*i];
	int			extra;
	int32_t		c;
	int32_t		min;

	if (b < 0x80)
	{
		(*i)++;
		return b;
	}
	if (b >= 0xC2 && b <= 0xDF)
	{
		extra = 1;
		c = b & 0x1F;
		min = 0x80;
	}
	else if (b >= 0xE0 && b <= 0xEF)
	{
		extra = 2;
		c = b & 0x0F;
		min = 0x800;
	}
	else if (b >= 0xF0 && b <= 0xF4)
	{
		extra = 3;
		c = b & 0x07;
		min = 0x10000;
	}
	else
	{
		(*i)++;
		return -1;
	}
	if (len - *i <= (size_t) extra)
	{
		(*i)++;
		return -1;
	}
	for (int k = 1; k <= extra; k++)
	{
		unsigned char cb = s[*i + k];

		if ((cb & 0xC0) != 0x80)
		{
			(*i)++;
			return -1;
		}
		c = (c << 6) | (cb & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
	{
		(*i)++;
		return -1;
	}
	*i += (size_t) extra + 1;
	return c;
}

typedef enum CharClass
{
	CC_DIGIT,
	CC_LETTER,
	CC_SEPARATOR
} CharClass;

static CharClass
classify(int32_t c, int *value)
{
	if (c < 0)
		return CC_SEPARATOR;
	if (c < 0x80)
	{
		if (c >= '0' && c <= '9')
		{
			*value = c - '0';
			return CC_DIGIT;
		}
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
			return CC_LETTER;
		return CC_SEPARATOR;
	}
	/* u_charDigitValue answers only for Nd, the decimal digits */
	*value = u_charDigitValue((UChar32) c);
	if (*value >= 0 && *value <= 9)
		return CC_DIGIT;
	/* letters (L*) and Nd; marks, spaces, punctuation, format: separators */
	if (u_isalnum((UChar32) c))
		return CC_LETTER;
	return CC_SEPARATOR;
}

typedef struct Run
{
	unsigned char ring[RING];	/* digit of run position p at ring[p % RING] */
	long		n;				/* digits in the run so far */
	long		starts[CARD_MAX_DIGITS + 2];	/* group starts still in reach */
	int			nstarts;
	bool		in_group;
} Run;

/*
 * The current group ends: checks every stretch of whole groups that ends
 * here and has 13 to 19 digits.
 */
static bool
group_end(Run *r, CardNumberMatch *match)
{
	int			drop = 0;

	r->in_group = false;
	/* a start more than 19 digits back can only make longer stretches */
	while (drop < r->nstarts && r->n - r->starts[drop] > CARD_MAX_DIGITS)
		drop++;
	if (drop > 0)
	{
		memmove(r->starts, r->starts + drop, sizeof(long) * (size_t) (r->nstarts - drop));
		r->nstarts -= drop;
	}
	for (int k = 0; k < r->nstarts; k++)
	{
		int			len = (int) (r->n - r->starts[k]);
		unsigned char d[CARD_MAX_DIGITS];

		if (len < CARD_MIN_DIGITS)
			break;				/* later starts are shorter still */
		for (int j = 0; j < len; j++)
			d[j] = r->ring[(r->starts[k] + j) % RING];
		if (card_number_luhn(d, len))
		{
			if (match)
			{
				match->digits = len;
				for (int j = 0; j < 4; j++)
					match->last4[j] = (char) ('0' + d[len - 4 + j]);
				match->last4[4] = '\0';
			}
			return true;
		}
	}
	return false;
}

bool
card_number_find(const char *text, size_t len, CardNumberMatch *match)
{
	const unsigned char *s = (const unsigned char *) text;
	size_t		candidates = 0;
	size_t		i;
	Run			r;

	/*
	 * Every decimal digit is an ASCII digit or a multi-byte sequence with
	 * one lead byte (0xC0 and up): fewer such bytes than 13, no card.
	 */
	for (i = 0; i < len && candidates < CARD_MIN_DIGITS; i++)
		if ((s[i] >= '0' && s[i] <= '9') || s[i] >= 0xC0)
			candidates++;
	if (candidates < CARD_MIN_DIGITS)
		return false;

	r.n = 0;
	r.nstarts = 0;
	r.in_group = false;
	i = 0;
	while (i < len)
	{
		int			value = 0;
		CharClass	cc = classify(next_code_point(s, len, &i), &value);

		if (cc == CC_DIGIT)
		{
			if (!r.in_group)
			{
				/* at most 20 starts are within 19 digits of the end */
				if (r.nstarts == CARD_MAX_DIGITS + 2)
				{
					memmove(r.starts, r.starts + 1, sizeof(long) * (CARD_MAX_DIGITS + 1));
					r.nstarts--;
				}
				r.starts[r.nstarts++] = r.n;
				r.in_group = true;
			}
			r.ring[r.n % RING] = (unsigned char) value;
			r.n++;
			continue;
		}
		if (r.in_group && group_end(&r, match))
			return true;
		if (cc == CC_LETTER)
		{
			/* a letter ends the run */
			r.n = 0;
			r.nstarts = 0;
		}
	}
	return r.in_group && group_end(&r, match);
}
