/*
 * fuzz_card_number.c - libFuzzer target for the card-number scan on raw
 * untrusted bytes (invalid UTF-8 included).
 *
 * Whatever the input, the scan must not hit UB or read past the text, and
 * its answer must not depend on whether a match is asked for; a match has
 * 13 to 19 digits and four ASCII digits as its last four.  A text that
 * holds a match still holds one with a letter appended (a letter only ends
 * the run after the number was seen).
 */
#include "../../src/core/card_number.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CardNumberMatch m;
	char	   *copy = malloc(size + 1);
	bool		found = card_number_find((const char *) data, size, NULL);

	if (found != card_number_find((const char *) data, size, &m))
		abort();
	if (found)
	{
		if (m.digits < 13 || m.digits > 19 || strlen(m.last4) != 4)
			abort();
		for (int i = 0; i < 4; i++)
			if (m.last4[i] < '0' || m.last4[i] > '9')
				abort();
		memcpy(copy, data, size);
		copy[size] = 'x';
		if (!card_number_find(copy, size + 1, NULL))
			abort();
	}
	free(copy);
	return 0;
}
