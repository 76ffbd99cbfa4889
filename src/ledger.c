/*
 * ledger.c - the ledger's balance trigger (billing._ledger_check_balance).
 *
 * An AFTER INSERT ... FOR EACH STATEMENT trigger on billing.ledger_entry
 * with the transition table new_entries.  The rule it enforces is written
 * out in src/sql/install/60_ledger.sql: the entries one statement adds sum to
 * zero per ledger transaction and currency (23514), and every transaction
 * they post to exists in billing.ledger_transaction, and so does its
 * account in billing.account (23503).  Whatever the statement: a restore
 * loads the tables in any order with triggers off
 * (session_replication_role = replica), never by exempting a kind of
 * statement, because the client chooses the statement.
 *
 * It is C because it runs once per posting statement, that is once per
 * payment: as PL/pgSQL it ran two queries and set search_path each time.
 * Here the sums are one pass over the transition table into a hash table,
 * and each existence check is one probe of a primary key.  Only when a
 * rule is broken does it run SQL, to report the first offender.
 */
#include "billing.h"
#include "core/currency.h"
#include "probe.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(ledger_check_balance);

#ifndef HAVE_INT128
#error "the ledger's exact sums need a 128-bit integer type"
#endif

/* One ledger transaction and currency of the statement's entries. */
typedef struct BalanceKey
{
	int64		account_id;
	int64		txn_id;
	char		currency[3];
} BalanceKey;

typedef struct BalanceEntry
{
	BalanceKey	key;			/* the hash key: first */
	int128		sum;			/* at scale CURRENCY_MAX_DIGITS */
} BalanceEntry;

/* 10^0 .. 10^CURRENCY_MAX_DIGITS: scales an amount up to the common scale */
static const int64 scale_factor[] = {
	INT64CONST(1000000000), INT64CONST(100000000), INT64CONST(10000000), INT64CONST(1000000),
	INT64CONST(100000), INT64CONST(10000), INT64CONST(1000), INT64CONST(100), INT64CONST(10),
	INT64CONST(1)
};

StaticAssertDecl(lengthof(scale_factor) == CURRENCY_MAX_DIGITS + 1,
				 "one factor per possible scale");

/*
 * Raises 23514 for the first unbalanced transaction of the statement,
 * worded as before this trigger was C: the sum is billing.sum's, in SQL.
 */
static void
report_unbalanced(TriggerData *trigdata, const BalanceKey *key)
{
	StringInfoData sql;
	char	   *total;

	SPI_connect();
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition table new_entries");
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT billing.sum(n.amount)::pg_catalog.text FROM new_entries n "
					 "WHERE n.account_id OPERATOR(pg_catalog.=) " INT64_FORMAT
					 " AND n.txn_id OPERATOR(pg_catalog.=) " INT64_FORMAT
					 " AND billing.currency(n.amount) OPERATOR(pg_catalog.=) %s",
					 key->account_id, key->txn_id,
					 quote_literal_cstr(pnstrdup(key->currency, 3)));
	if (SPI_execute(sql.data, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not sum the entries of ledger transaction " INT64_FORMAT, key->txn_id);
	total = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("ledger transaction " INT64_FORMAT " of account " INT64_FORMAT
					" does not balance: its %.3s entries sum to %s",
					key->txn_id, key->account_id, key->currency, total),
			 errhint("Post all entries of a transaction in one INSERT; debits (positive) must equal "
					 "credits (negative).")));
}

Datum
ledger_check_balance(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	TupleTableSlot *slot;
	AttrNumber	att_account,
				att_txn,
				att_amount;
	HASHCTL		ctl;
	HTAB	   *sums;
	HASH_SEQ_STATUS seq;
	BalanceEntry *entry;
	KeyProbe	txns,
				accounts;
	static const char *const txn_columns[] = {"account_id", "txn_id"};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("billing._ledger_check_balance must be an AFTER INSERT statement trigger "
						"with a transition table of the new rows")));

	desc = RelationGetDescr(trigdata->tg_relation);
	att_account = billing_column_number(desc, "account_id");
	att_txn = billing_column_number(desc, "txn_id");
	att_amount = billing_column_number(desc, "amount");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(BalanceKey);
	ctl.entrysize = sizeof(BalanceEntry);
	ctl.hcxt = CurrentMemoryContext;
	sums = hash_create("ledger balances", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(trigdata->tg_newtable);
	while (tuplestore_gettupleslot(trigdata->tg_newtable, true, false, slot))
	{
		BalanceKey	key;
		bool		isnull;
		Datum		account = slot_getattr(slot, att_account, &isnull);
		Datum		txn;
		Datum		amount;
		const Amount *a;
		bool		found;

		/* the columns are NOT NULL: a NULL means the table was changed */
		if (isnull)
			elog(ERROR, "ledger entry without an account");
		txn = slot_getattr(slot, att_txn, &isnull);
		if (isnull)
			elog(ERROR, "ledger entry without a transaction");
		amount = slot_getattr(slot, att_amount, &isnull);
		if (isnull)
			elog(ERROR, "ledger entry without an amount");
		a = DatumGetAmountP(amount);
		if (a->scale > CURRENCY_MAX_DIGITS)
			elog(ERROR, "ledger entry with an amount of scale %d", a->scale);

		memset(&key, 0, sizeof(key));
		key.account_id = DatumGetInt64(account);
		key.txn_id = DatumGetInt64(txn);
		memcpy(key.currency, a->currency, sizeof(key.currency));
		entry = hash_search(sums, &key, HASH_ENTER, &found);
		if (!found)
			entry->sum = 0;
		/* |units| < 2^63 times 10^9 < 2^93: no overflow for 2^34 entries */
		entry->sum += (int128) a->units * scale_factor[a->scale];
	}
	ExecDropSingleTupleTableSlot(slot);

	hash_seq_init(&seq, sums);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->sum != 0)
		{
			hash_seq_term(&seq);
			report_unbalanced(trigdata, &entry->key);
		}
	}

	/*
	 * On a shard of a distributed install the rows of the other tables are
	 * in shards of their own, not in the tables this would probe: there
	 * billing.distribute() creates the trigger with the argument
	 * 'balance', and foreign keys (which Citus keeps within the account's
	 * shard group) check that transactions and accounts exist.
	 */
	if (trigdata->tg_trigger->tgnargs == 1 && strcmp(trigdata->tg_trigger->tgargs[0], "balance") == 0)
	{
		hash_destroy(sums);
		PG_RETURN_POINTER(NULL);
	}

	/*
	 * SnapshotSelf: the transaction may have been inserted by this very
	 * statement (a transaction and its entries in one INSERT ... WITH); rows
	 * of both tables are never deleted (triggers refuse it), so one that
	 * another transaction committed after our snapshot may count, also
	 * under REPEATABLE READ, as a foreign key's check would; it takes no
	 * SSI predicate lock, which a row that cannot go away does not need.
	 */
	key_probe_open(&txns, billing_relid("ledger_transaction"), 2, txn_columns, SnapshotSelf);
	key_probe_open(&accounts, billing_relid("account"), 1, txn_columns, SnapshotSelf);
	hash_seq_init(&seq, sums);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		int64		key[2] = {entry->key.account_id, entry->key.txn_id};

		if (!key_probe_found(&txns, key))
		{
			hash_seq_term(&seq);
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("ledger transaction " INT64_FORMAT " of account " INT64_FORMAT " does not exist",
							entry->key.txn_id, entry->key.account_id),
					 errhint("Insert the transaction and its entries in one statement (see billing._post).")));
		}
		if (!key_probe_found(&accounts, key))
		{
			hash_seq_term(&seq);
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("account " INT64_FORMAT " of ledger transaction " INT64_FORMAT " does not exist",
							entry->key.account_id, entry->key.txn_id),
					 errhint("Post to an account that billing.account holds.")));
		}
	}
	key_probe_close(&accounts);
	key_probe_close(&txns);
	hash_destroy(sums);
	PG_RETURN_POINTER(NULL);
}
