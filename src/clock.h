/*
 * clock.h - the test clock: the one place "now" comes from.
 *
 * Every function that depends on the current time reads it through
 * billing_clock_now(), so setting billing.clock moves all of them at once.
 */
#ifndef BILLING_CLOCK_H
#define BILLING_CLOCK_H

#include "postgres.h"
#include "datatype/timestamp.h"

/*
 * The instant billing treats as now: billing.clock when it is set, else the
 * start of the current transaction (what now() returns).
 */
extern TimestampTz billing_clock_now(void);

/* Defines the setting billing.clock; called from _PG_init. */
extern void billing_init_clock(void);

#endif
