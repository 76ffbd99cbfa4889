/*
 * probe.c - see probe.h.
 */
#include "probe.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

Oid
billing_relid(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("billing", false));

	if (!OidIsValid(relid))
		elog(ERROR, "billing.%s does not exist", name);
	return relid;
}

AttrNumber
billing_column_number(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	elog(ERROR, "no column \"%s\" in a table of billing", name);
	return InvalidAttrNumber;	/* keep the compiler quiet */
}

void
key_probe_open(KeyProbe *probe, Oid relid, int nkeys, const char *const *columns, Snapshot snapshot)
{
	Oid			indexid;

	probe->heap = table_open(relid, AccessShareLock);
	indexid = RelationGetPrimaryKeyIndex(probe->heap);
	if (!OidIsValid(indexid))
		elog(ERROR, "billing.%s has no primary key", RelationGetRelationName(probe->heap));
	probe->index = index_open(indexid, AccessShareLock);
	for (int i = 0; i < nkeys; i++)
	{
		TupleDesc	desc = RelationGetDescr(probe->heap);
		AttrNumber	att = billing_column_number(desc, columns[i]);

		/* the scan keys below compare int8 */
		if (i >= probe->index->rd_index->indnkeyatts || probe->index->rd_index->indkey.values[i] != att ||
			TupleDescAttr(desc, att - 1)->atttypid != INT8OID)
			elog(ERROR, "the primary key of billing.%s does not start with the bigint %s",
				 RelationGetRelationName(probe->heap), columns[i]);
	}
	probe->nkeys = nkeys;
	probe->scan = index_beginscan(probe->heap, probe->index, snapshot, nkeys, 0);
	probe->slot = table_slot_create(probe->heap, NULL);
}

bool
key_probe_found(KeyProbe *probe, const int64 *values)
{
	ScanKeyData keys[INDEX_MAX_KEYS];

	Assert(probe->nkeys <= INDEX_MAX_KEYS);
	for (int i = 0; i < probe->nkeys; i++)
		ScanKeyInit(&keys[i], i + 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(values[i]));
	index_rescan(probe->scan, keys, probe->nkeys, NULL, 0);
	return index_getnext_slot(probe->scan, ForwardScanDirection, probe->slot);
}

void
key_probe_close(KeyProbe *probe)
{
	ExecDropSingleTupleTableSlot(probe->slot);
	index_endscan(probe->scan);
	/* the locks stay until the end of the transaction, as a query's do */
	index_close(probe->index, NoLock);
	table_close(probe->heap, NoLock);
}
