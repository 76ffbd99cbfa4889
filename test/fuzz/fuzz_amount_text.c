/*
 * libFuzzer target: amount text input.  Any byte string either fails with an
 * error code or yields a valid amount that prints and parses back to itself.
 */
#include "../../src/core/amount.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	Amount		a,
				b;
	char		buf[AMOUNT_TEXT_MAX];
	AmountError err;

	memcpy(text, data, size);
	text[size] = '\0';
	err = amount_parse(text, &a);
	if (err == AMOUNT_OK)
	{
		if (amount_validate(&a) != AMOUNT_OK)
			abort();
		if (amount_format(&a, buf) >= AMOUNT_TEXT_MAX)
			abort();
		if (amount_parse(buf, &b) != AMOUNT_OK || !amount_eq(&a, &b) ||
			memcmp(&a, &b, sizeof(Amount)) != 0)
			abort();
	}
	else if (err > AMOUNT_ERROR_LAST)
		abort();
	free(text);
	return 0;
}
