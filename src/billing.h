/*
 * billing.h - what the fmgr glue files share: the amount datum macros, the
 * settings, and the one place that turns a core error into an ereport.
 */
#ifndef BILLING_GLUE_H
#define BILLING_GLUE_H

#include "postgres.h"
#include "fmgr.h"

#include "core/amount.h"
#include "core/rounding.h"

/* billing.amount is a fixed 16-byte, pass-by-reference type. */
#define DatumGetAmountP(X)		((Amount *) DatumGetPointer(X))
#define AmountPGetDatum(X)		PointerGetDatum(X)
#define PG_GETARG_AMOUNT_P(n)	DatumGetAmountP(PG_GETARG_DATUM(n))
#define PG_RETURN_AMOUNT_P(x)	return AmountPGetDatum(x)

/* The mode named by the setting billing.rounding. */
extern RoundingMode billing_rounding_mode(void);

/* Parses a rounding mode name given as an argument, or raises 22023. */
extern RoundingMode billing_parse_rounding_mode(const char *name);

/*
 * Raises the error for a failed core operation.  `a` and `b` are the
 * operands (either may be NULL) and `what` the operation, for the message.
 */
extern void billing_amount_error(AmountError err, const Amount *a,
								 const Amount *b, const char *what) pg_attribute_noreturn();

extern void billing_init_settings(void);

#endif
