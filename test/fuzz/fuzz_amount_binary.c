/*
 * libFuzzer target: amount binary input (what amount_recv reads) against
 * text input, and the arithmetic on whatever binary input accepts.
 *
 * Binary and text input must accept exactly the same values: the 12 bytes
 * of the wire form (units, code, scale) are accepted by amount_validate
 * exactly when their text form (amount_format) parses back to the very
 * same 16 bytes.  So every binary input accepted round-trips through text,
 * and whatever text refuses (1.005 USD, a lower-case or unknown code, an
 * amount beyond the bound) binary refuses.  Accepted values must survive
 * every operation without undefined behaviour; failed operations must
 * report an error, never wrap, and no result may leave the bound.
 */
#include "../../src/core/amount.h"
#include "../../src/core/currency.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wire form: reserved bytes do not travel, receive zeroes them. */
static bool
take_raw(const uint8_t **data, size_t *size, Amount *a)
{
	if (*size < 12)
		return false;
	memset(a, 0, sizeof(*a));
	memcpy(&a->units, *data, 8);
	memcpy(a->currency, *data + 8, 3);
	a->scale = (*data)[11];
	*data += 12;
	*size -= 12;
	return true;
}

/* What text input makes of the value's text form: the same bytes or not. */
static bool
text_accepts(const Amount *a)
{
	char		buf[AMOUNT_TEXT_MAX + 8];
	Amount		t;

	/* a scale beyond 18 digits has no text form at all */
	if (a->scale > 18)
		return false;
	amount_format(a, buf);
	return amount_parse(buf, &t) == AMOUNT_OK && memcmp(&t, a, sizeof(Amount)) == 0;
}

static void
check_result(AmountError err, const Amount *r)
{
	if (err == AMOUNT_OK && (!amount_units_in_range(r->units, r->scale) || amount_validate(r) != AMOUNT_OK))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Amount		a,
				b,
				r;
	int			c;
	bool		binary_ok;

	if (!take_raw(&data, &size, &a))
		return 0;
	binary_ok = amount_validate(&a) == AMOUNT_OK;
	if (binary_ok != text_accepts(&a))
		abort();
	if (!binary_ok)
		return 0;

	if (amount_neg(&a, &r) != AMOUNT_OK || r.units != -a.units)
		abort();
	check_result(AMOUNT_OK, &r);
	if (size >= 8)
	{
		int64_t		f;

		memcpy(&f, data, 8);
		if (amount_mul_int(&a, f, &r) == AMOUNT_OK &&
			(__int128) r.units != (__int128) a.units * f)
			abort();
		check_result(amount_mul_int(&a, f, &r), &r);
		for (int m = 0; m < ROUNDING_MODE_COUNT; m++)
		{
			AmountError err = amount_div_int(&a, f, (RoundingMode) m, &r);

			check_result(err, &r);
			if (f == 0 && err != AMOUNT_DIVISION_BY_ZERO)
				abort();
		}
	}
	if (take_raw(&data, &size, &b) && amount_validate(&b) == AMOUNT_OK)
	{
		bool		same = amount_same_currency(&a, &b);
		AmountError err;

		if ((amount_add(&a, &b, &r) == AMOUNT_CURRENCY_MISMATCH) == same)
			abort();
		if ((amount_cmp(&a, &b, &c) == AMOUNT_OK) != same)
			abort();
		if (amount_eq(&a, &b) && (!same || c != 0))
			abort();
		check_result(amount_add(&a, &b, &r), &r);
		err = amount_sub(&a, &b, &r);
		check_result(err, &r);
		/* two bounded values never overflow a sum, and its text is exact */
		if (same)
		{
			AmountSum	s;
			char		wide[AMOUNT_WIDE_TEXT_MAX];

			amount_sum_init(&s);
			if (amount_sum_add(&s, &a) != AMOUNT_OK || amount_sum_add(&s, &b) != AMOUNT_OK ||
				s.total != (__int128) a.units + b.units)
				abort();
			if (amount_format_wide(s.total, s.scale, wide) >= AMOUNT_WIDE_TEXT_MAX)
				abort();
		}
	}
	return 0;
}
