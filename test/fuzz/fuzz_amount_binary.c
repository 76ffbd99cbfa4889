/*
 * libFuzzer target: amount binary input (what amount_recv reads) and the
 * arithmetic on whatever it accepts.  Validated values must print, parse
 * back to an equal value, and survive every operation without undefined
 * behaviour; failed operations must report an error, never wrap.
 */
#include "../../src/core/amount.h"
#include "../../src/core/currency.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
take(const uint8_t **data, size_t *size, Amount *a)
{
	if (*size < 12)
		return false;
	memset(a, 0, sizeof(*a));
	memcpy(&a->units, *data, 8);
	memcpy(a->currency, *data + 8, 3);
	a->scale = (*data)[11];
	*data += 12;
	*size -= 12;
	return amount_validate(a) == AMOUNT_OK;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Amount		a,
				b,
				r;
	char		buf[AMOUNT_TEXT_MAX];
	int			c;

	if (!take(&data, &size, &a))
		return 0;
	amount_format(&a, buf);
	if (a.scale == currency_digits(a.currency))
	{
		if (amount_parse(buf, &r) != AMOUNT_OK || !amount_eq(&a, &r))
			abort();
	}
	if (amount_neg(&a, &r) != AMOUNT_OK || r.units != -a.units)
		abort();
	if (size >= 8)
	{
		int64_t		f;

		memcpy(&f, data, 8);
		if (amount_mul_int(&a, f, &r) == AMOUNT_OK &&
			(__int128) r.units != (__int128) a.units * f)
			abort();
		for (int m = 0; m < ROUNDING_MODE_COUNT; m++)
		{
			AmountError err = amount_div_int(&a, f, (RoundingMode) m, &r);

			if (err == AMOUNT_OK && amount_validate(&r) != AMOUNT_OK)
				abort();
			if (f == 0 && err != AMOUNT_DIVISION_BY_ZERO)
				abort();
		}
	}
	if (take(&data, &size, &b))
	{
		bool		same = amount_same_currency(&a, &b);

		if ((amount_add(&a, &b, &r) == AMOUNT_CURRENCY_MISMATCH) == same)
			abort();
		if ((amount_cmp(&a, &b, &c) == AMOUNT_OK) != same)
			abort();
		if (amount_eq(&a, &b) && (!same || c != 0))
			abort();
		if (amount_sub(&a, &b, &r) == AMOUNT_OK && amount_validate(&r) != AMOUNT_OK)
			abort();
	}
	return 0;
}
