/*
 * clock.c - the setting billing.clock and the SQL functions that read it.
 */
#include "clock.h"

#include <ctype.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static char *clock_setting = NULL;

/*
 * DecodeDateTime() reports most bad input by its return code, but on
 * PostgreSQL 15 raises an error for a word it takes for a time zone name
 * that is no zone (a field ParseDateTime typed DTK_DATE that starts with a
 * letter: 'Europe/Berlin', 'Foo/Bar'; 16 and later return an error code
 * there too).  A GUC check hook must not raise: a bad value stored with
 * ALTER DATABASE would then fail every session's _PG_init.  So every such
 * word is looked up first, with pg_tzset(), which answers NULL for an
 * unknown name instead of raising, and a value with an unknown zone never
 * reaches DecodeDateTime().
 */
static bool
zone_words_known(char **field, const int *ftype, int nf)
{
	for (int i = 0; i < nf; i++)
		if (ftype[i] == DTK_DATE && isalpha((unsigned char) field[i][0]) &&
			pg_tzset(field[i]) == NULL)
			return false;
	return true;
}

/*
 * Parses a clock value without raising errors, as a GUC check hook must.
 * Only a real, finite timestamp is accepted: 'now', 'today', 'infinity' and
 * friends would make the test clock no clock at all.  A value without a time
 * zone is read in the session's TimeZone at the time of use.
 */
static bool
parse_clock(const char *text, TimestampTz *out)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tt;
	fsec_t		fsec;

	if (strlen(text) >= MAXDATELEN)
		return false;
	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	/* ParseDateTime lower-cases words; these decode relative to real time */
	for (int i = 0; i < nf; i++)
		if (strcmp(field[i], "now") == 0 || strcmp(field[i], "today") == 0 ||
			strcmp(field[i], "tomorrow") == 0 || strcmp(field[i], "yesterday") == 0)
			return false;
	if (!zone_words_known(field, ftype, nf))
		return false;
#if PG_VERSION_NUM >= 160000
	{
		DateTimeErrorExtra extra;

		if (DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz, &extra) != 0)
			return false;
	}
#else
	if (DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0)
		return false;
#endif
	if (dtype != DTK_DATE)
		return false;
	if (tm2timestamp(&tt, fsec, &tz, out) != 0 || !IS_VALID_TIMESTAMP(*out))
		return false;
	return true;
}

static bool
clock_check_hook(char **newval, void **extra pg_attribute_unused(),
				 GucSource source pg_attribute_unused())
{
	TimestampTz ts;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/*
	 * A parallel worker restores the leader's settings before its time zone
	 * abbreviations are loaded, and DecodeDateTime would crash on them: the
	 * leader checked the value, and billing_clock_now() parses it at use.
	 */
	if (InitializingParallelWorker)
		return true;
	if (parse_clock(*newval, &ts))
		return true;
	GUC_check_errcode(ERRCODE_INVALID_DATETIME_FORMAT);
	GUC_check_errdetail("billing.clock must be empty (real time) or a finite timestamp with time zone.");
	GUC_check_errhint("For example: SET billing.clock = '2024-01-31 09:00:00+00'.");
	return false;
}

TimestampTz
billing_clock_now(void)
{
	TimestampTz ts;

	if (clock_setting == NULL || clock_setting[0] == '\0')
		return GetCurrentTransactionStartTimestamp();
	/* the check hook accepted it; only a changed TimeZone could upset it */
	if (!parse_clock(clock_setting, &ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid value for billing.clock: \"%s\"", clock_setting),
				 errhint("Set billing.clock to a timestamp with an explicit time zone, or RESET it.")));
	return ts;
}

void
billing_init_clock(void)
{
	DefineCustomStringVariable("billing.clock",
							   "The time billing treats as now (the test clock).",
							   "Empty (the default) means real time: the start of the current "
							   "transaction. Set it to a timestamp with time zone to simulate "
							   "billing at another time.",
							   &clock_setting,
							   "",
							   /* moving "now" backdates payments and due dates:
								* superusers, or roles granted SET on it */
							   PGC_SUSET,
							   0,
							   clock_check_hook, NULL, NULL);
}

PG_FUNCTION_INFO_V1(billing_now);
Datum
billing_now(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(billing_clock_now());
}

/*
 * timestamptz_zone names an unknown zone but gives no hint: an error
 * context callback adds one to that error (22023) as it is raised, and
 * says which function was called.  A callback, not PG_CATCH, because
 * catching an error without a subtransaction leaves whatever the failed
 * call held (locks, buffer pins, memory) to chance.
 */
static void
today_error_context(void *arg)
{
	if (geterrcode() == ERRCODE_INVALID_PARAMETER_VALUE)
		errhint("Use a name from pg_timezone_names, such as 'America/New_York' or 'Europe/Berlin'.");
	/* the zone's text is read only here, when there is an error to tell */
	errcontext("billing.today(%s)", text_to_cstring((text *) arg));
}

/*
 * billing.today(timezone text, as_of timestamptz) -> date: the calendar date
 * in `timezone` at the instant `as_of` (by default billing.now()).  A date,
 * not a time, so no DST change can move a billing period boundary.
 */
PG_FUNCTION_INFO_V1(billing_today);
Datum
billing_today(PG_FUNCTION_ARGS)
{
	TimestampTz as_of;
	Datum		local;
	ErrorContextCallback callback;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("billing.today: timezone must not be NULL"),
				 errhint("Pass the account's time zone, such as 'America/New_York'.")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("billing.today: as_of must not be NULL"),
				 errhint("Leave as_of out to use billing.now().")));
	as_of = PG_GETARG_TIMESTAMPTZ(1);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("billing.today: as_of must be finite, not \"%s\"",
						TIMESTAMP_IS_NOBEGIN(as_of) ? "-infinity" : "infinity"),
				 errhint("Pass a real point in time.")));

	callback.callback = today_error_context;
	callback.arg = PG_GETARG_TEXT_PP(0);
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	local = DirectFunctionCall2(timestamptz_zone, PG_GETARG_DATUM(0), TimestampTzGetDatum(as_of));
	error_context_stack = callback.previous;
	return DirectFunctionCall1(timestamp_date, local);
}

/* ---------------------------------------------------------------------
 * Time zones: IANA names only
 */

/*
 * The IANA zone names of the server's time zone database, the names
 * pg_timezone_names lists, keyed by their lower-case spelling so that a
 * wrong case can be answered with the right one.  Built once per backend
 * (the database is a directory of files that PostgreSQL itself reads once
 * per zone and never reloads); about a thousand names.
 */
typedef struct ZoneName
{
	char		key[TZ_STRLEN_MAX + 1];	/* lower case: the hash key */
	char		name[TZ_STRLEN_MAX + 1];	/* as the database spells it */
} ZoneName;

static HTAB *zone_names = NULL;

static void
lower_name(const char *name, char *out)
{
	size_t		i;

	for (i = 0; name[i] != '\0' && i < TZ_STRLEN_MAX; i++)
		out[i] = (char) pg_tolower((unsigned char) name[i]);
	out[i] = '\0';
}

static HTAB *
iana_zone_names(void)
{
	HASHCTL		ctl;
	HTAB	   *names;
	pg_tzenum  *tzenum;
	pg_tz	   *tz;

	if (zone_names != NULL)
		return zone_names;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = TZ_STRLEN_MAX + 1;
	ctl.entrysize = sizeof(ZoneName);
	ctl.hcxt = TopMemoryContext;
	names = hash_create("billing IANA time zone names", 2048, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	PG_TRY();
	{
		tzenum = pg_tzenumerate_start();
		while ((tz = pg_tzenumerate_next(tzenum)) != NULL)
		{
			const char *name = pg_get_timezone_name(tz);
			char		key[TZ_STRLEN_MAX + 1];
			ZoneName   *entry;
			bool		found;

			/*
			 * Two files of the database are no zones: localtime is the
			 * host's zone (an account's days would move with the server's
			 * setting) and posixrules the template of POSIX strings.
			 */
			if (strcmp(name, "localtime") == 0 || strcmp(name, "posixrules") == 0)
				continue;
			lower_name(name, key);
			entry = hash_search(names, key, HASH_ENTER, &found);
			strlcpy(entry->name, name, sizeof(entry->name));
		}
		pg_tzenumerate_end(tzenum);
	}
	PG_CATCH();
	{
		hash_destroy(names);
		PG_RE_THROW();
	}
	PG_END_TRY();
	zone_names = names;
	return zone_names;
}

/*
 * billing.check_time_zone(timezone text) -> text: the name itself when it
 * is an IANA time zone name of the server's database (a name
 * pg_timezone_names lists, spelled as it spells it: 'UTC',
 * 'Europe/Berlin', 'Etc/GMT-14'); 22023 otherwise.  PostgreSQL also accepts
 * POSIX strings ('<+167>-167', 'XXX3') and abbreviations as zones: an
 * account in one would have days up to a week away from every real zone,
 * past the UTC-12 to UTC+14 that the cycle and the reports bound their
 * index scans with, and some of its subscriptions would never come due.
 * The domain billing.time_zone calls it, so every path that stores an
 * account's zone does.
 */
PG_FUNCTION_INFO_V1(billing_check_time_zone);
Datum
billing_check_time_zone(PG_FUNCTION_ARGS)
{
	text	   *arg = PG_GETARG_TEXT_PP(0);
	char	   *name = text_to_cstring(arg);
	char		key[TZ_STRLEN_MAX + 1];
	ZoneName   *entry = NULL;

	if (strlen(name) <= TZ_STRLEN_MAX)
	{
		lower_name(name, key);
		entry = hash_search(iana_zone_names(), key, HASH_FIND, NULL);
		if (entry != NULL && strcmp(entry->name, name) == 0)
			PG_RETURN_TEXT_P(arg);
	}
	if (entry != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not an IANA time zone name as spelled", name),
				 errhint("Write it as the time zone database does: '%s'.", entry->name)));
	/* a name longer than any zone's is shown cut, not echoed whole */
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("time zone \"%.*s%s\" is not an IANA time zone name",
					pg_mbcliplen(name, (int) strlen(name), 64), name, strlen(name) > 64 ? "..." : ""),
			 errdetail("An account's zone is a name of the IANA time zone database; POSIX strings such as "
					   "'<+05>-05' and abbreviations are not accepted."),
			 errhint("Use a name from pg_timezone_names, such as 'America/New_York', 'Europe/Berlin' or 'UTC'.")));
	PG_RETURN_NULL();
}
