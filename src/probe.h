/*
 * probe.h - reading billing's own tables from C without SQL: a column by
 * name, and a primary key probed for one row at a time.
 */
#ifndef BILLING_PROBE_H
#define BILLING_PROBE_H

#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

/* The relation billing.<name>; an error if there is none. */
extern Oid	billing_relid(const char *name);

/* The attribute number of a column of a relation; an error if there is none. */
extern AttrNumber billing_column_number(TupleDesc desc, const char *name);

/*
 * A probe of a table's primary key, opened once and rescanned for each key
 * (the cycle's ledger check probes 10,000 keys a batch).  The key's leading
 * columns must be `columns`, int8; `snapshot` stays the caller's (register
 * an MVCC one for the probe's lifetime).
 */
typedef struct KeyProbe
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;		/* the row found, after key_probe_found */
	int			nkeys;
} KeyProbe;

extern void key_probe_open(KeyProbe *probe, Oid relid, int nkeys, const char *const *columns,
						   Snapshot snapshot);
extern bool key_probe_found(KeyProbe *probe, const int64 *values);
extern void key_probe_close(KeyProbe *probe);

#endif
