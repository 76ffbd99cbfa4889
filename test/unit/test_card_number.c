/*
 * Unit tests for card_number.c: the Luhn check, every way of writing a
 * card number that must still be found (separators of every kind, Unicode
 * digits, a number next to its expiry date), texts with digits that are
 * not card numbers, invalid UTF-8, and random texts against a brute-force
 * reference.
 */
#include "../../src/core/card_number.h"
#include "unit.h"

static bool
found(const char *s)
{
	return card_number_find(s, strlen(s), NULL);
}

/* the reference: every stretch of whole groups, by brute force */
static bool
reference(const char *s)
{
	unsigned char d[4096];
	int			gstart[4096];
	int			nd = 0,
				ng = 0;
	size_t		len = strlen(s);

	for (size_t i = 0; i <= len; i++)
	{
		char		c = i < len ? s[i] : 'x';

		if (c >= '0' && c <= '9')
		{
			if (i == 0 || !(s[i - 1] >= '0' && s[i - 1] <= '9'))
				gstart[ng++] = nd;
			d[nd++] = (unsigned char) (c - '0');
			continue;
		}
		if (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		{
			/* a group ends at nd */
			for (int g = 0; g < ng; g++)
			{
				int			l = nd - gstart[g];

				if (l >= 13 && l <= 19 && card_number_luhn(d + gstart[g], l))
					return true;
			}
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		{
			nd = 0;
			ng = 0;
		}
	}
	return false;
}

int
main(void)
{
	CardNumberMatch m;
	const unsigned char luhn_ok[] = {4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	const unsigned char luhn_bad[] = {4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2};

	CHECK(card_number_luhn(luhn_ok, 16));
	CHECK(!card_number_luhn(luhn_bad, 16));

	/* the test card numbers of the networks, as typed */
	CHECK(found("4111111111111111"));
	CHECK(found("4111 1111 1111 1111"));
	CHECK(found("4111-1111-1111-1111"));
	CHECK(found("378282246310005"));			/* 15 digits */
	CHECK(found("6011000990139424"));
	CHECK(found("4222222222222"));				/* 13 digits */
	CHECK(found("6011 0000 0000 0000 001"));	/* 19 digits */

	/* the match: digit count and last four */
	CHECK(card_number_find("card 4111.1111.1111.1111 ok", 27, &m));
	CHECK_I64(m.digits, 16);
	CHECK_STR(m.last4, "1111");
	CHECK(card_number_find("378282246310005", 15, &m));
	CHECK_I64(m.digits, 15);
	CHECK_STR(m.last4, "0005");

	/* separators of every kind, and runs of them */
	CHECK(found("4111.1111.1111.1111"));
	CHECK(found("4111  1111  1111  1111"));
	CHECK(found("4111\t1111\t1111\t1111"));
	CHECK(found("4111\n1111\r\n1111 / 1111"));
	CHECK(found("4111\xc2\xa0" "1111\xc2\xa0" "1111\xc2\xa0" "1111"));			/* no-break space */
	CHECK(found("4111\xe2\x80\x8b" "1111\xe2\x80\x8b" "1111\xe2\x80\x8b" "1111"));	/* zero-width space */
	CHECK(found("4\xcc\xb2" "111111111111111"));	/* a combining mark */
	CHECK(found("(4111) [1111] {1111} _1111_"));
	CHECK(found("4/1/1/1/1/1/1/1/1/1/1/1/1/1/1/1"));

	/* Unicode decimal digits */
	/* full-width 4111 1111 1111 1111 */
	CHECK(found("\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"
				"\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91"));
	/* Arabic-Indic digits 4111111111111111 */
	CHECK(found("\xd9\xa4\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1"
				"\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1\xd9\xa1"));
	/* Devanagari 4 then ASCII, mathematical bold 1 (U+1D7CF) at the end */
	CHECK(found("\xe0\xa5\xaa" "11111111111111" "\xf0\x9d\x9f\x8f"));

	/* next to other numbers of the same run */
	CHECK(found("4111 1111 1111 1111 12/25"));
	CHECK(found("4111111111111111 1225 123"));
	CHECK(found("exp 12/25 4111 1111 1111 1111"));

	/* not card numbers */
	CHECK(!found(""));
	CHECK(!found("no digits at all"));
	CHECK(!found("4111 1111 1111 1112"));		/* 16 digits, not Luhn */
	CHECK(!found("411111111111"));				/* 12 digits */
	CHECK(!found("INV-2024-000123"));
	CHECK(!found("+1 (555) 123-4567"));
	CHECK(!found("+49 30 1234 5678"));
	CHECK(!found("978-3-16-148410-0"));			/* an ISBN-13 that fails Luhn */
	CHECK(!found("4111a1111b1111c1111"));		/* letters end runs */
	CHECK(!found("41111111111111111111"));		/* one group of 20: an identifier */
	CHECK(!found("0.4111111111111111111111"));
	/* superscripts and circled digits are not decimal digits */
	CHECK(!found("\xe2\x81\xb4\xc2\xb9\xc2\xb9\xc2\xb9\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0"
				 "\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0\xe2\x91\xa0"));

	/* invalid UTF-8 is a separator, never a crash */
	CHECK(found("4111\xff" "1111\xc0\xaf" "1111\xed\xa0\x80" "1111"));
	CHECK(!found("\xf4"));
	CHECK(!found("1111111111111\xe2\x82"));	/* truncated sequence at the end */

	/* random texts of digits, spaces, dots and letters: as the reference */
	{
		const char	alphabet[] = "0123456789012345678901234567890123456789 . -x";
		char		buf[64];
		int			agree = 1;

		for (int t = 0; t < 200000; t++)
		{
			int			n = (int) (unit_rng() % 48);

			for (int k = 0; k < n; k++)
				buf[k] = alphabet[unit_rng() % (sizeof(alphabet) - 1)];
			buf[n] = '\0';
			if (found(buf) != reference(buf))
			{
				fprintf(stderr, "disagree on \"%s\": %d\n", buf, found(buf));
				agree = 0;
				break;
			}
		}
		CHECK(agree);
	}
	return UNIT_DONE();
}
