/*
 * billing.c - module entry point and the settings (GUCs).
 */
#include "billing.h"
#include "clock.h"

#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static int	rounding_setting = ROUND_HALF_UP;

/* Same order and names as rounding.c's modes; checked in billing_init_settings. */
static const struct config_enum_entry rounding_options[] = {
	{"half_up", ROUND_HALF_UP, false},
	{"half_even", ROUND_HALF_EVEN, false},
	{"half_down", ROUND_HALF_DOWN, false},
	{"up", ROUND_UP, false},
	{"down", ROUND_DOWN, false},
	{"ceiling", ROUND_CEILING, false},
	{"floor", ROUND_FLOOR, false},
	{NULL, 0, false}
};

RoundingMode
billing_rounding_mode(void)
{
	return (RoundingMode) rounding_setting;
}

RoundingMode
billing_parse_rounding_mode(const char *name)
{
	RoundingMode mode;

	if (!rounding_mode_parse(name, &mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rounding mode \"%s\"", name),
				 errhint("Use one of half_up, half_even, half_down, up, down, ceiling, floor.")));
	return mode;
}

void
billing_init_settings(void)
{
	DefineCustomEnumVariable("billing.rounding",
							 "Rounding mode used when an amount is multiplied or divided by a non-integer.",
							 "One of half_up (the default), half_even, half_down, up, down, ceiling, floor. "
							 "Rounding happens only where a result must be whole minor units.",
							 &rounding_setting,
							 ROUND_HALF_UP,
							 rounding_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

void
_PG_init(void)
{
	billing_init_settings();
	billing_init_clock();
	MarkGUCPrefixReserved("billing");
}
