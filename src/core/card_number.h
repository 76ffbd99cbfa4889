/*
 * card_number.h - finds a payment card number (PAN) in a text.
 *
 * Part of the pure C core: no PostgreSQL headers (ICU for the Unicode
 * digits).  Billing never stores a card number: every text and jsonb value
 * a caller can store goes through card_number_find() (the CHECK constraints
 * of billing's tables, src/card_number.c), so there is one definition of
 * what counts as one.
 *
 * What counts: 13 to 19 decimal digits that pass the Luhn check.  A digit
 * is any Unicode decimal digit (general category Nd: ASCII, full-width,
 * Arabic-Indic, Devanagari, mathematical, ...), by its digit value.  Digits
 * form a run as long as only non-alphanumeric characters stand between them
 * (spaces of every kind, tabs, line breaks, dots, dashes, slashes, combining
 * marks, invisible characters, ...); a letter ends the run.  Within a run the
 * digits between separators are groups, and every stretch of whole groups of
 * 13 to 19 digits is a candidate, so a number followed by its expiry date
 * ("4111 1111 1111 1111 12/25") is found too.  A single group longer than 19
 * digits is a long identifier, not a card number, and is not split.
 */
#ifndef BILLING_CARD_NUMBER_H
#define BILLING_CARD_NUMBER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct CardNumberMatch
{
	int			digits;			/* how many digits the number has */
	char		last4[5];		/* its last four digits, ASCII, for a message */
} CardNumberMatch;

/*
 * True if the UTF-8 text s[0..len) holds a card number; then *match (if not
 * NULL) says which.  Bytes that are not valid UTF-8 count as separators.
 * Returns at once, after one pass over the bytes, when the text cannot hold
 * 13 digits.
 */
extern bool card_number_find(const char *s, size_t len, CardNumberMatch *match);

/* The Luhn check of n digit values d[0..n), most significant first. */
extern bool card_number_luhn(const unsigned char *d, int n);

#endif
