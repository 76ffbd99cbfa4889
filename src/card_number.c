/*
 * card_number.c - the card-number guard of billing's tables (the scan
 * itself is core/card_number.c).
 *
 *   billing.looks_like_card_number(text | jsonb) -> boolean
 *   billing._no_card_number(text | jsonb, field text) -> true, or 23514
 *
 * The second is what the CHECK constraints call: it raises the error
 * itself, so that every path that writes a row (a function, a direct
 * INSERT, a restore) gets the same message and hint.  The message names the
 * field and the last four digits only: the number must not reach the
 * server log either.
 */
#include "billing.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "core/card_number.h"

/* The scan of a text in the server encoding (the core reads UTF-8). */
static bool
find_in_server_text(const char *s, int len, CardNumberMatch *m)
{
	int			encoding = GetDatabaseEncoding();
	char	   *u;
	bool		r;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return card_number_find(s, (size_t) len, m);
	u = pg_server_to_any(s, len, PG_UTF8);
	if (u == s)
		return card_number_find(s, (size_t) len, m);
	r = card_number_find(u, strlen(u), m);
	pfree(u);
	return r;
}

/*
 * Every string of a jsonb value, keys and values at every depth, and every
 * number by its text.  *where says which one held the card number.
 */
static bool
find_in_jsonb(Jsonb *jb, CardNumberMatch *m, const char **where)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	const char *key = NULL;
	int			keylen = 0;

	/* '{}' and '[]', what most rows carry, cost nothing more */
	if (JB_ROOT_COUNT(jb) == 0)
		return false;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		bool		hit = false;

		if (tok != WJB_KEY && tok != WJB_VALUE && tok != WJB_ELEM)
			continue;
		if (v.type == jbvString)
			hit = find_in_server_text(v.val.string.val, v.val.string.len, m);
		else if (v.type == jbvNumeric)
		{
			char	   *t = DatumGetCString(DirectFunctionCall1(numeric_out,
																NumericGetDatum(v.val.numeric)));

			hit = find_in_server_text(t, (int) strlen(t), m);
			pfree(t);
		}
		if (hit)
		{
			if (where)
			{
				if (tok == WJB_KEY)
					*where = "a key";
				else if (key == NULL)
					*where = tok == WJB_ELEM ? "an array element" : "the value";
				else
					*where = psprintf("%s under key \"%.*s\"",
									  tok == WJB_ELEM ? "an array element" : "the value", keylen, key);
			}
			return true;
		}
		if (tok == WJB_KEY)
		{
			/* the key was just checked: naming it in a message is safe */
			key = v.val.string.val;
			keylen = v.val.string.len;
		}
	}
	return false;
}

static void
refuse(const char *field, const char *where, const CardNumberMatch *m) pg_attribute_noreturn();

static void
refuse(const char *field, const char *where, const CardNumberMatch *m)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 where ?
			 errmsg("%s must not hold a card number: %s holds %d digits ending in %s that pass the Luhn check",
					field, where, m->digits, m->last4) :
			 errmsg("%s must not hold a card number: it holds %d digits ending in %s that pass the Luhn check",
					field, m->digits, m->last4),
			 errdetail("Digits count across spaces, dots, dashes and other separators, in every script."),
			 errhint("Store the payment provider's token or reference (at most the last four digits), "
					 "never the card number.")));
}

PG_FUNCTION_INFO_V1(looks_like_card_number_text);
Datum
looks_like_card_number_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(find_in_server_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), NULL));
}

PG_FUNCTION_INFO_V1(looks_like_card_number_jsonb);
Datum
looks_like_card_number_jsonb(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(find_in_jsonb(PG_GETARG_JSONB_P(0), NULL, NULL));
}

PG_FUNCTION_INFO_V1(no_card_number_text);
Datum
no_card_number_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	CardNumberMatch m;

	if (find_in_server_text(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &m))
		refuse(text_to_cstring(PG_GETARG_TEXT_PP(1)), NULL, &m);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(no_card_number_jsonb);
Datum
no_card_number_jsonb(PG_FUNCTION_ARGS)
{
	CardNumberMatch m;
	const char *where = NULL;

	if (find_in_jsonb(PG_GETARG_JSONB_P(0), &m, &where))
		refuse(text_to_cstring(PG_GETARG_TEXT_PP(1)), where, &m);
	PG_RETURN_BOOL(true);
}
