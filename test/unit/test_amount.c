/*
 * Unit tests for the amount core: parsing, printing, arithmetic limits,
 * currency rules, allocation and the wide sum.
 */
#include "../../src/core/amount.h"
#include "../../src/core/currency.h"
#include "unit.h"

#include <stdlib.h>

static const char *
fmt(const Amount *a)
{
	static char buf[AMOUNT_TEXT_MAX];

	amount_format(a, buf);
	return buf;
}

/* parse, then print: "" when parsing failed */
static const char *
roundtrip(const char *text)
{
	Amount		a;

	if (amount_parse(text, &a) != AMOUNT_OK)
		return "";
	return fmt(&a);
}

static AmountError
perr(const char *text)
{
	Amount		a;

	return amount_parse(text, &a);
}

static Amount
A(const char *text)
{
	Amount		a;

	if (amount_parse(text, &a) != AMOUNT_OK)
	{
		fprintf(stderr, "bad literal in test: %s\n", text);
		exit(2);
	}
	return a;
}

static void
test_parse_and_format(void)
{
	Amount		a;

	CHECK_STR(roundtrip("12.34 USD"), "12.34 USD");
	CHECK_STR(roundtrip("USD 12.34"), "12.34 USD");
	CHECK_STR(roundtrip("  -12.34   usd  "), "-12.34 USD");
	CHECK_STR(roundtrip("usd -12.34"), "-12.34 USD");
	CHECK_STR(roundtrip("-USD 12.34"), "-12.34 USD");
	CHECK_STR(roundtrip("+5 EUR"), "5.00 EUR");
	CHECK_STR(roundtrip("5 USD"), "5.00 USD");
	CHECK_STR(roundtrip("1000 JPY"), "1000 JPY");
	CHECK_STR(roundtrip("1.5 KWD"), "1.500 KWD");
	CHECK_STR(roundtrip("12.34USD"), "12.34 USD");
	CHECK_STR(roundtrip("-0.00 USD"), "0.00 USD");
	CHECK_STR(roundtrip("-0 JPY"), "0 JPY");
	CHECK_STR(roundtrip("0.05 USD"), "0.05 USD");
	CHECK_STR(roundtrip("007.10 USD"), "7.10 USD");
	/* extra zeros are exact, so they are accepted */
	CHECK_STR(roundtrip("1.2300 USD"), "1.23 USD");
	CHECK_STR(roundtrip("1000.00 JPY"), "1000 JPY");
	/* the extremes of the bound: 10^12 major units at every scale */
	CHECK_STR(roundtrip("1000000000000.00 USD"), "1000000000000.00 USD");
	CHECK_STR(roundtrip("-1000000000000 USD"), "-1000000000000.00 USD");
	CHECK_STR(roundtrip("1000000000000 JPY"), "1000000000000 JPY");
	CHECK_STR(roundtrip("-1000000000000.000 KWD"), "-1000000000000.000 KWD");
	CHECK_STR(roundtrip("1000000000000.0000 CLF"), "1000000000000.0000 CLF");
	CHECK_STR(roundtrip("0.0001 CLF"), "0.0001 CLF");

	CHECK_I64(perr(""), AMOUNT_EMPTY);
	CHECK_I64(perr("   "), AMOUNT_EMPTY);
	CHECK_I64(perr("12.34"), AMOUNT_NO_CURRENCY);
	CHECK_I64(perr("-5"), AMOUNT_NO_CURRENCY);
	CHECK_I64(perr("USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr("12.34 US"), AMOUNT_BAD_CODE);
	CHECK_I64(perr("12.34 USDX"), AMOUNT_BAD_CODE);
	CHECK_I64(perr("12.34 ZZZ"), AMOUNT_UNKNOWN_CURRENCY);
	CHECK_I64(perr("12.34 U$D"), AMOUNT_SYNTAX);
	CHECK_I64(perr("1,234.00 USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr("12. USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr(".5 USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr("1e5 USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr("--5 USD"), AMOUNT_SYNTAX);
	CHECK_I64(perr("-USD -5"), AMOUNT_SYNTAX);
	CHECK_I64(perr("5 USD EUR"), AMOUNT_SYNTAX);
	CHECK_I64(perr("USD 5 EUR"), AMOUNT_SYNTAX);
	CHECK_I64(perr("NaN USD"), AMOUNT_NOT_FINITE);
	CHECK_I64(perr("USD nan"), AMOUNT_NOT_FINITE);
	CHECK_I64(perr("-Infinity USD"), AMOUNT_NOT_FINITE);
	CHECK_I64(perr("inf EUR"), AMOUNT_NOT_FINITE);
	CHECK_I64(perr("1000000000000.01 USD"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("-1000000000000.01 USD"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("1000000000001 JPY"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("1000000000000.0001 CLF"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("92233720368547758.07 USD"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("9223372036854775807 JPY"), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(perr("99999999999999999999999999 USD"), AMOUNT_OUT_OF_RANGE);

	/* too many digits names the currency and its scale */
	CHECK_I64(amount_parse("1.234 USD", &a), AMOUNT_TOO_MANY_DIGITS);
	CHECK(memcmp(a.currency, "USD", 3) == 0);
	CHECK_I64(a.scale, 2);
	CHECK_I64(amount_parse("1.5 JPY", &a), AMOUNT_TOO_MANY_DIGITS);
	CHECK_I64(amount_parse("1.0001 KWD", &a), AMOUNT_TOO_MANY_DIGITS);
	CHECK_I64(a.scale, 3);
	CHECK_I64(amount_parse("1 QQQ", &a), AMOUNT_UNKNOWN_CURRENCY);
	CHECK(memcmp(a.currency, "QQQ", 3) == 0);
}

static void
test_currencies(void)
{
	int			cursor = 0,
				n = 0;
	char		code[3];

	CHECK_I64(currency_digits("USD"), 2);
	CHECK_I64(currency_digits("JPY"), 0);
	CHECK_I64(currency_digits("KWD"), 3);
	CHECK_I64(currency_digits("BHD"), 3);
	CHECK_I64(currency_digits("CLF"), 4);
	CHECK_I64(currency_digits("EUR"), 2);
	CHECK_I64(currency_digits("ZZZ"), -1);
	CHECK_I64(currency_digits("usd"), -1);	/* callers normalize first */
	CHECK(currency_is_current("USD"));
	CHECK(!currency_is_current("DEM"));
	CHECK(currency_code_normalize("eUr", 3, code) && memcmp(code, "EUR", 3) == 0);
	CHECK(!currency_code_normalize("EU1", 3, code));
	CHECK(!currency_code_normalize("EURO", 4, code));
	while (currency_next(&cursor, code))
	{
		CHECK(currency_digits(code) >= 0);
		n++;
	}
	CHECK(n > 150);
}

static void
test_arithmetic(void)
{
	Amount		a = A("10.00 USD"),
				b = A("2.50 USD"),
				e = A("1.00 EUR"),
				max = A("1000000000000.00 USD"),
				min = A("-1000000000000.00 USD"),
				r;
	int			c;

	CHECK_I64(amount_max_units(0), 1000000000000LL);
	CHECK_I64(amount_max_units(2), 100000000000000LL);
	CHECK_I64(amount_max_units(4), 10000000000000000LL);
	CHECK_I64(amount_max_units(6), 1000000000000000000LL);
	CHECK_I64(amount_max_units(7), INT64_MAX);	/* beyond: the int64 bounds it */
	CHECK(amount_units_in_range(-100000000000000LL, 2));
	CHECK(!amount_units_in_range(100000000000001LL, 2));
	CHECK(!amount_units_in_range((int128_t) INT64_MIN, 9));

	CHECK_I64(amount_add(&a, &b, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "12.50 USD");
	CHECK_I64(amount_sub(&b, &a, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "-7.50 USD");
	CHECK_I64(amount_neg(&min, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "1000000000000.00 USD");
	CHECK_I64(amount_add(&a, &e, &r), AMOUNT_CURRENCY_MISMATCH);
	CHECK_I64(amount_sub(&a, &e, &r), AMOUNT_CURRENCY_MISMATCH);
	CHECK_I64(amount_add(&max, &b, &r), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(amount_sub(&min, &b, &r), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(amount_add(&max, &max, &r), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(amount_add(&max, &min, &r), AMOUNT_OK);
	CHECK_I64(r.units, 0);
	/* a value stored at a finer scale (a later ICU) has the bound of its scale */
	{
		Amount		fine = max;

		fine.scale = 4;
		fine.units = 10000000000000000LL;	/* 10^12 at scale 4 */
		CHECK_I64(amount_add(&fine, &a, &r), AMOUNT_OUT_OF_RANGE);
		CHECK_I64(amount_sub(&fine, &a, &r), AMOUNT_OK);
	}

	CHECK_I64(amount_mul_int(&b, 3, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "7.50 USD");
	CHECK_I64(amount_mul_int(&b, -2, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "-5.00 USD");
	CHECK_I64(amount_mul_int(&max, 2, &r), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(amount_mul_int(&max, -1, &r), AMOUNT_OK);
	CHECK_I64(amount_mul_int(&b, INT64_MIN, &r), AMOUNT_OUT_OF_RANGE);

	CHECK_I64(amount_div_int(&a, 3, ROUND_HALF_UP, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "3.33 USD");
	CHECK_I64(amount_div_int(&a, 3, ROUND_UP, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "3.34 USD");
	CHECK_I64(amount_div_int(&b, 4, ROUND_HALF_EVEN, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.62 USD");	/* 0.625 -> even */
	CHECK_I64(amount_div_int(&b, 4, ROUND_HALF_UP, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.63 USD");
	CHECK_I64(amount_div_int(&a, 0, ROUND_HALF_UP, &r), AMOUNT_DIVISION_BY_ZERO);
	CHECK_I64(amount_div_int(&min, -1, ROUND_HALF_UP, &r), AMOUNT_OK);

	CHECK_I64(amount_cmp(&a, &b, &c), AMOUNT_OK);
	CHECK_I64(c, 1);
	CHECK_I64(amount_cmp(&b, &a, &c), AMOUNT_OK);
	CHECK_I64(c, -1);
	CHECK_I64(amount_cmp(&a, &e, &c), AMOUNT_CURRENCY_MISMATCH);
	CHECK(!amount_eq(&a, &e));
	CHECK(amount_eq(&a, &a));

	/* a value stored at another scale is the same money */
	{
		Amount		old = a;
		int64_t		u1,
					u2;
		int			s1,
					s2;

		old.units = 100000;		/* 10.0000 at scale 4 */
		old.scale = 4;
		CHECK(amount_eq(&a, &old));
		CHECK_I64(amount_cmp(&a, &old, &c), AMOUNT_OK);
		CHECK_I64(c, 0);
		amount_canonical(&a, &u1, &s1);
		amount_canonical(&old, &u2, &s2);
		CHECK_I64(u1, u2);
		CHECK_I64(s1, s2);
		CHECK_I64(amount_add(&b, &old, &r), AMOUNT_OK);
		CHECK_I64(r.scale, 4);
		CHECK_I64(r.units, 125000);
		CHECK_STR(fmt(&r), "12.5000 USD");
	}
	/*
	 * binary_input_refuses_what_text_refuses: the one rule of values from
	 * outside refuses every value text input cannot make
	 */
	{
		Amount		v = a;

		CHECK_I64(amount_validate(&v), AMOUNT_OK);
		CHECK_I64(amount_validate(&max), AMOUNT_OK);
		CHECK_I64(amount_validate(&min), AMOUNT_OK);
		v.units = INT64_MIN;
		CHECK_I64(amount_validate(&v), AMOUNT_OUT_OF_RANGE);
		v.units = 100000000000001LL;	/* 1000000000000.01 USD */
		CHECK_I64(amount_validate(&v), AMOUNT_OUT_OF_RANGE);
		v = a;
		v.scale = 200;
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_SCALE);
		v = a;
		v.units = 1005;			/* 1.005 USD */
		v.scale = 3;
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_SCALE);
		v.units = 1000;			/* 1.000 USD: text makes 1.00 USD of scale 2 */
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_SCALE);
		v = a;
		v.scale = 0;			/* 1000 USD at scale 0 */
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_SCALE);
		v = a;
		memcpy(v.currency, "ZZZ", 3);
		CHECK_I64(amount_validate(&v), AMOUNT_UNKNOWN_CURRENCY);
		v = a;
		memcpy(v.currency, "usd", 3);	/* text makes USD of it */
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_CODE);
		v = a;
		v.currency[0] = 0;
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_CODE);
		v = a;
		v.reserved[2] = 1;
		CHECK_I64(amount_validate(&v), AMOUNT_BAD_PADDING);
	}
}

static void
test_allocate(void)
{
	Amount		parts[64];
	AllocSlot	slots[64];
	Amount		t = A("10.00 USD");
	int64_t		w[64];

	for (int i = 0; i < 3; i++)
		w[i] = 1;
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_OK);
	CHECK_STR(fmt(&parts[0]), "3.34 USD");
	CHECK_STR(fmt(&parts[1]), "3.33 USD");
	CHECK_STR(fmt(&parts[2]), "3.33 USD");

	t = A("-10.00 USD");
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_OK);
	CHECK_STR(fmt(&parts[0]), "-3.34 USD");
	CHECK_STR(fmt(&parts[2]), "-3.33 USD");

	/* a zero weight gets zero; the remainder goes to the largest fraction */
	t = A("100 JPY");
	w[0] = 1;
	w[1] = 0;
	w[2] = 2;
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_OK);
	CHECK_STR(fmt(&parts[0]), "33 JPY");
	CHECK_STR(fmt(&parts[1]), "0 JPY");
	CHECK_STR(fmt(&parts[2]), "67 JPY");

	/* bad weights */
	w[1] = -1;
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_BAD_WEIGHTS);
	w[0] = w[1] = w[2] = 0;
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_BAD_WEIGHTS);
	CHECK_I64(amount_allocate(&t, w, 0, parts, slots), AMOUNT_BAD_WEIGHTS);

	/* the largest values: the product of total and weight needs 110 bits */
	t = A("1000000000000.00 USD");
	w[0] = INT64_MAX;
	w[1] = INT64_MAX - 1;
	w[2] = 1;
	CHECK_I64(amount_allocate(&t, w, 3, parts, slots), AMOUNT_OK);
	CHECK((int128_t) parts[0].units + parts[1].units + parts[2].units == t.units);

	/* property: random totals and weights always sum exactly, and every
	 * part is within one minor unit of its exact share */
	srand(42);
	for (int iter = 0; iter < 20000; iter++)
	{
		int			n = 1 + rand() % 64;
		int128_t	sum = 0,
					wsum = 0;
		bool		close = true;

		t.units = ((int64_t) rand() << 31 ^ rand()) % 100000000000LL;
		if (rand() % 2)
			t.units = -t.units;
		for (int i = 0; i < n; i++)
		{
			w[i] = rand() % 5 == 0 ? 0 : rand() % 1000;
			wsum += w[i];
		}
		if (wsum == 0)
			w[0] = wsum = 1;
		if (amount_allocate(&t, w, n, parts, slots) != AMOUNT_OK)
		{
			CHECK(false);
			continue;
		}
		for (int i = 0; i < n; i++)
		{
			int128_t	exact_num = (int128_t) t.units * w[i];	/* share * wsum */
			int128_t	diff = (int128_t) parts[i].units * wsum - exact_num;

			sum += parts[i].units;
			if (diff < 0)
				diff = -diff;
			if (diff >= wsum || (w[i] == 0 && parts[i].units != 0))
				close = false;
		}
		if (sum != t.units || !close)
		{
			CHECK(sum == t.units);
			CHECK(close);
		}
	}
	unit_passed++;				/* the property loop as a whole */
}

static void
test_sum(void)
{
	AmountSum	s,
				s2;
	Amount		r,
				max = A("1000000000000.00 USD"),
				one = A("0.01 USD"),
				e = A("1.00 EUR");

	amount_sum_init(&s);
	CHECK_I64(amount_sum_add(&s, &max), AMOUNT_OK);
	CHECK_I64(amount_sum_add(&s, &max), AMOUNT_OK);
	/* the running total may exceed the bound; only the result is checked */
	CHECK_I64(amount_sum_result(&s, &r), AMOUNT_OUT_OF_RANGE);
	CHECK_I64(amount_sum_avg(&s, ROUND_HALF_UP, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "1000000000000.00 USD");
	r = max;
	r.units = -r.units;
	CHECK_I64(amount_sum_add(&s, &r), AMOUNT_OK);
	CHECK_I64(amount_sum_result(&s, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "1000000000000.00 USD");

	/*
	 * sum_numeric_never_overflows: 2^63 amounts of the largest value at
	 * ICU's most digits (CLF, 4) fit the 128-bit total, and its text is
	 * exact
	 */
	{
		char		wide[AMOUNT_WIDE_TEXT_MAX];

		amount_sum_init(&s);
		r = A("1000000000000.0000 CLF");
		CHECK_I64(amount_sum_add(&s, &r), AMOUNT_OK);
		s.count = INT64_MAX - 1;
		s.total = (int128_t) r.units * (INT64_MAX - 1);
		CHECK_I64(amount_sum_add(&s, &r), AMOUNT_OK);
		CHECK(s.total == (int128_t) r.units * INT64_MAX);
		amount_format_wide(s.total, s.scale, wide);
		CHECK_STR(wide, "9223372036854775807000000000000.0000");
		CHECK_I64(amount_sum_result(&s, &r), AMOUNT_OUT_OF_RANGE);
		amount_format_wide(-5, 2, wide);
		CHECK_STR(wide, "-0.05");
		amount_format_wide(0, 3, wide);
		CHECK_STR(wide, "0.000");
		amount_format_wide(-1234, 0, wide);
		CHECK_STR(wide, "-1234");
		amount_format_wide(-((int128_t) 1 << 126), 4, wide);
		CHECK_STR(wide, "-8507059173023461586584365185794205.2864");
	}
	CHECK_I64(amount_sum_add(&s, &e), AMOUNT_CURRENCY_MISMATCH);

	/* combine, with a second accumulator at a finer scale */
	amount_sum_init(&s);
	amount_sum_init(&s2);
	CHECK_I64(amount_sum_add(&s, &one), AMOUNT_OK);
	r = one;
	r.units = 5;
	r.scale = 3;				/* 0.005 USD from a future, finer USD */
	CHECK_I64(amount_sum_add(&s2, &r), AMOUNT_OK);
	CHECK_I64(amount_sum_combine(&s, &s2), AMOUNT_OK);
	CHECK_I64(amount_sum_result(&s, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.015 USD");
	CHECK_I64(s.count, 2);
	amount_sum_init(&s2);
	CHECK_I64(amount_sum_combine(&s, &s2), AMOUNT_OK);
	CHECK_I64(s.count, 2);
	CHECK_I64(amount_sum_add(&s2, &e), AMOUNT_OK);
	CHECK_I64(amount_sum_combine(&s, &s2), AMOUNT_CURRENCY_MISMATCH);

	/* avg rounds once */
	amount_sum_init(&s);
	amount_sum_add(&s, &one);
	r = one;
	r.units = 2;
	amount_sum_add(&s, &r);		/* 0.01 + 0.02 = 0.03 / 2 = 0.015 */
	CHECK_I64(amount_sum_avg(&s, ROUND_HALF_UP, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.02 USD");
	CHECK_I64(amount_sum_avg(&s, ROUND_HALF_EVEN, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.02 USD");
	CHECK_I64(amount_sum_avg(&s, ROUND_DOWN, &r), AMOUNT_OK);
	CHECK_STR(fmt(&r), "0.01 USD");
	amount_sum_init(&s);
	CHECK_I64(amount_sum_avg(&s, ROUND_DOWN, &r), AMOUNT_DIVISION_BY_ZERO);
}

static void
test_locale(void)
{
	char		buf[256];

	CHECK(currency_format_locale("1234.50", "USD", 2, "en-US", buf, sizeof buf) > 0);
	CHECK_STR(buf, "$1,234.50");
	CHECK(currency_format_locale("-1234.50", "EUR", 2, "de-DE", buf, sizeof buf) > 0);
	CHECK_STR(buf, "-1.234,50\xc2\xa0\xe2\x82\xac");	/* NBSP, euro sign */
	CHECK(currency_format_locale("1234", "JPY", 0, "ja-JP", buf, sizeof buf) > 0);
	CHECK_STR(buf, "\xef\xbf\xa5" "1,234");	/* fullwidth yen sign */
	CHECK(currency_format_locale("1234.50", "RUB", 2, "ru-RU", buf, sizeof buf) > 0);
	CHECK(strstr(buf, "234,50") != NULL);
	CHECK(currency_format_locale("1234.50", "ILS", 2, "he_IL", buf, sizeof buf) > 0);
	CHECK(strstr(buf, "1,234.50") != NULL && strstr(buf, "\xe2\x82\xaa") != NULL);	/* shekel */
	CHECK(currency_format_locale("1234.50", "EGP", 2, "ar-EG", buf, sizeof buf) > 0);
	CHECK(strstr(buf, "\xd9\xa1") != NULL);	/* Arabic-Indic digit one */
	CHECK(currency_format_locale("1", "USD", 2, "xx-YY", buf, sizeof buf) == -1);
	CHECK(currency_format_locale("1", "USD", 2, "", buf, sizeof buf) == -1);
	CHECK(currency_format_locale("1", "USD", 2, "garbage!!", buf, sizeof buf) == -1);
	CHECK(currency_format_locale("1", "USD", 2, "en-US", buf, 3) == -2);
}

int
main(void)
{
	test_parse_and_format();
	test_currencies();
	test_arithmetic();
	test_allocate();
	test_sum();
	test_locale();
	return UNIT_DONE();
}
