/*
 * documents.c - what invoice documents need from ICU: dates in the reader's
 * locale, and the direction its script is written in.
 */
#include "billing.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/numeric.h"

#include "core/icu_locale.h"

static void
icu_locale_arg(text *arg, char *id, size_t idsize)
{
	char	   *locale = text_to_cstring(arg);

	if (!locale_to_icu(locale, id, idsize))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown locale \"%s\"", locale),
				 errhint("Use a BCP 47 language tag that ICU knows, such as en-US, de-DE or he-IL.")));
}

PG_FUNCTION_INFO_V1(billing_format_date);
Datum
billing_format_date(PG_FUNCTION_ARGS)
{
	DateADT		d = PG_GETARG_DATEADT(0);
	char		id[160];
	char	   *style_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	DateStyle	style;
	char		out[512];
	int			len;

	icu_locale_arg(PG_GETARG_TEXT_PP(1), id, sizeof(id));
	if (!date_style_parse(style_name, &style))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown date style \"%s\"", style_name),
				 errhint("Use short, medium, long or full.")));
	if (DATE_NOT_FINITE(d))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot format the infinite date \"%s\"", DATE_IS_NOBEGIN(d) ? "-infinity" : "infinity"),
				 errhint("Pass a real day.")));
	len = locale_format_date(d, id, style, out, sizeof(out));
	if (len == LOCALE_DATE_OUT_OF_RANGE)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot format the date %s: it is past the end of ICU's calendar",
						DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)))),
				 errdetail("ICU formats dates up to about the year 5,800,000 and would print another day after it."),
				 errhint("Print such a date with to_char.")));
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("ICU could not format the date for locale \"%s\"", id)));
	PG_RETURN_TEXT_P(cstring_to_text(pg_any_to_server(out, len, PG_UTF8)));
}

PG_FUNCTION_INFO_V1(billing_locale_direction);
Datum
billing_locale_direction(PG_FUNCTION_ARGS)
{
	char		id[160];

	icu_locale_arg(PG_GETARG_TEXT_PP(0), id, sizeof(id));
	PG_RETURN_TEXT_P(cstring_to_text(locale_is_rtl(id) ? "rtl" : "ltr"));
}

PG_FUNCTION_INFO_V1(billing_format_number);
Datum
billing_format_number(PG_FUNCTION_ARGS)
{
	Numeric		value = PG_GETARG_NUMERIC(0);
	char		id[160];
	char	   *decimal;
	char		out[512];
	int			len;

	icu_locale_arg(PG_GETARG_TEXT_PP(1), id, sizeof(id));
	if (numeric_is_nan(value) || numeric_is_inf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot format the number \"%s\"",
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)))),
				 errhint("Pass a finite number.")));
	decimal = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)));
	len = locale_format_decimal(decimal, id, out, sizeof(out));
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("ICU could not format the number %s for locale \"%s\"", decimal, id),
				 errhint("A number of up to a few hundred digits can be formatted.")));
	PG_RETURN_TEXT_P(cstring_to_text(pg_any_to_server(out, len, PG_UTF8)));
}
