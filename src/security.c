/*
 * security.c - who acts, and which billing entities it may use.
 *
 * The rule is written out in src/sql/install/95_security.sql: the acting role
 * (the role of SET ROLE, else the session user) may use every entity when
 * it is a superuser, has BYPASSRLS, owns the extension, or has the
 * privileges of a role bound to every entity (billing.role_binding with
 * entity_id NULL); otherwise it may use the entities bound to the roles
 * whose privileges it has.
 *
 * These run at the top of every SECURITY DEFINER function and in every
 * row-level security policy, so they are C: the role's attributes come from
 * the syscache, billing.role_binding (a handful of rows) is read with one
 * heap scan under the statement's snapshot, an account's entity with one
 * probe of its primary key.  As PL/pgSQL the check of one payment ran
 * three functions, each setting search_path, and four queries over
 * pg_roles, pg_extension and role_binding.  Nothing is cached between
 * statements (the policies' account test keeps its answers for one
 * execution of one statement), so a binding or a role attribute changed by
 * another session counts from the next statement on, as it did.
 */
#include "billing.h"
#include "probe.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(acting_role_sees_all);
PG_FUNCTION_INFO_V1(acting_role_entities);
PG_FUNCTION_INFO_V1(may_use_account);
PG_FUNCTION_INFO_V1(account_in_scope);

/* What the bindings give the acting role. */
typedef struct RoleReach
{
	bool		all;			/* may use every entity */
	int			nentities;		/* else these, sorted, distinct */
	int64	   *entities;
} RoleReach;

/* The role of SET ROLE, else the session user (billing.acting_role()). */
static Oid
acting_role(void)
{
	Oid			role = GetCurrentRoleId();

	return OidIsValid(role) ? role : GetSessionUserId();
}

/* The statement's snapshot, registered: release with UnregisterSnapshot. */
static Snapshot
statement_snapshot(void)
{
	return RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
}

/* The owner of the extension billing, or InvalidOid. */
static Oid
extension_owner(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum("billing"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * What the acting role may use.  `want_entities` false: only whether it
 * may use all (the entities are left out).  `stop_at_all`: once it may use
 * all, the entities do not matter (the checks); otherwise they are the
 * bound ones even for a role that may use all, as billing's reads of
 * _acting_role_entities() have always seen them.
 */
static RoleReach
role_reach(bool want_entities, bool stop_at_all)
{
	Oid			role = acting_role();
	RoleReach	reach = {false, 0, NULL};
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	AttrNumber	att_role,
				att_entity;
	int			allocated = 0;

	reach.all = superuser_arg(role) || has_bypassrls_privilege(role) || role == extension_owner();
	if (reach.all && (stop_at_all || !want_entities))
		return reach;
	rel = table_open(billing_relid("role_binding"), AccessShareLock);
	att_role = billing_column_number(RelationGetDescr(rel), "role_name");
	att_entity = billing_column_number(RelationGetDescr(rel), "entity_id");
	slot = table_slot_create(rel, NULL);
	snapshot = statement_snapshot();
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (!(reach.all && (stop_at_all || !want_entities)) &&
		   table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		name = slot_getattr(slot, att_role, &isnull);
		Datum		entity;
		bool		no_entity;
		Oid			bound;

		if (isnull)
			continue;
		entity = slot_getattr(slot, att_entity, &no_entity);
		if (!no_entity && !want_entities)
			continue;
		/* a name kept after its role was dropped binds nobody */
		bound = get_role_oid(NameStr(*DatumGetName(name)), true);
		if (!OidIsValid(bound) || !has_privs_of_role(role, bound))
			continue;
		if (no_entity)
			reach.all = true;
		else
		{
			if (reach.nentities == allocated)
			{
				allocated = allocated == 0 ? 8 : allocated * 2;
				reach.entities = reach.entities == NULL ? palloc(allocated * sizeof(int64))
					: repalloc(reach.entities, allocated * sizeof(int64));
			}
			reach.entities[reach.nentities++] = DatumGetInt64(entity);
		}
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);	/* held to the end, as a query's lock */

	if (reach.nentities > 1)
	{
		int			n = 1;

		qsort(reach.entities, reach.nentities, sizeof(int64), cmp_int64);
		for (int i = 1; i < reach.nentities; i++)
			if (reach.entities[i] != reach.entities[n - 1])
				reach.entities[n++] = reach.entities[i];
		reach.nentities = n;
	}
	return reach;
}

Datum
acting_role_sees_all(PG_FUNCTION_ARGS pg_attribute_unused())
{
	PG_RETURN_BOOL(role_reach(false, true).all);
}

/* The entities bound to the acting role's roles ('{}', never NULL). */
Datum
acting_role_entities(PG_FUNCTION_ARGS pg_attribute_unused())
{
	RoleReach	reach = role_reach(true, false);
	Datum	   *items = palloc(Max(reach.nentities, 1) * sizeof(Datum));

	for (int i = 0; i < reach.nentities; i++)
		items[i] = Int64GetDatum(reach.entities[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(items, reach.nentities, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

/*
 * The entity of an account, found by its primary key under the statement's
 * snapshot; false when there is no such account.
 */
static bool
account_entity(int64 account_id, int64 *entity_id)
{
	static const char *const key_columns[] = {"account_id"};
	Snapshot	snapshot = statement_snapshot();
	KeyProbe	probe;
	bool		found;

	key_probe_open(&probe, billing_relid("account"), 1, key_columns, snapshot);
	found = key_probe_found(&probe, &account_id);
	if (found)
	{
		bool		isnull;
		Datum		entity = slot_getattr(probe.slot,
										  billing_column_number(RelationGetDescr(probe.heap), "entity_id"),
										  &isnull);

		found = !isnull;
		if (found)
			*entity_id = DatumGetInt64(entity);
	}
	key_probe_close(&probe);
	UnregisterSnapshot(snapshot);
	return found;
}

/*
 * Whether the acting role may use the account: false for an account that
 * does not exist (or NULL) unless the role may use every entity.
 */
Datum
may_use_account(PG_FUNCTION_ARGS)
{
	RoleReach	reach;
	int64		entity;

	reach = role_reach(true, true);
	if (reach.all)
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(0) || reach.nentities == 0 || !account_entity(PG_GETARG_INT64(0), &entity))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(bsearch(&entity, reach.entities, reach.nentities, sizeof(int64), cmp_int64) != NULL);
}

/*
 * The policies' test of an account, once per row of every table keyed by
 * account_id: what the role may use is read once per query (the cache lives
 * in the call's FmgrInfo, made again for every execution of a statement, so
 * a binding changed by another session counts from the next statement on,
 * as with the checks above).  The first accounts asked for are probed one
 * by one (a statement about one account asks for one); after
 * SCOPE_PROBES of them, the accounts of the role's entities are read in
 * one scan of billing.account instead (a report over a whole table asks for
 * every account), and an account not among them is not the role's.
 */
#define SCOPE_PROBES 64

typedef struct ScopeEntry
{
	int64		account_id;		/* the hash key */
	bool		usable;
} ScopeEntry;

typedef struct ScopeCache
{
	RoleReach	reach;
	HTAB	   *accounts;
	int			probes;			/* accounts probed one by one so far */
	bool		complete;		/* every account of the role's entities is in accounts */
} ScopeCache;

static bool
reach_has(const RoleReach *reach, int64 entity)
{
	return bsearch(&entity, reach->entities, reach->nentities, sizeof(int64), cmp_int64) != NULL;
}

/* Every account of the role's entities into the cache, by one heap scan. */
static void
scope_fill(ScopeCache *cache)
{
	Relation	rel = table_open(billing_relid("account"), AccessShareLock);
	AttrNumber	att_account = billing_column_number(RelationGetDescr(rel), "account_id");
	AttrNumber	att_entity = billing_column_number(RelationGetDescr(rel), "entity_id");
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot = statement_snapshot();
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		entity = slot_getattr(slot, att_entity, &isnull);
		Datum		account;
		int64		id;
		ScopeEntry *e;

		if (isnull || !reach_has(&cache->reach, DatumGetInt64(entity)))
			continue;
		account = slot_getattr(slot, att_account, &isnull);
		if (isnull)
			continue;
		id = DatumGetInt64(account);
		e = hash_search(cache->accounts, &id, HASH_ENTER, NULL);
		e->usable = true;
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);	/* held to the end, as a query's lock */
	cache->complete = true;
}

Datum
account_in_scope(PG_FUNCTION_ARGS)
{
	ScopeCache *cache = (ScopeCache *) fcinfo->flinfo->fn_extra;
	int64		account_id;
	ScopeEntry *e;
	bool		found;

	if (cache == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		HASHCTL		ctl;

		cache = palloc0(sizeof(ScopeCache));
		cache->reach = role_reach(true, true);
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(ScopeEntry);
		ctl.hcxt = fcinfo->flinfo->fn_mcxt;
		cache->accounts = hash_create("billing account scope", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->reach.all)
		PG_RETURN_BOOL(true);
	if (PG_ARGISNULL(0) || cache->reach.nentities == 0)
		PG_RETURN_BOOL(false);
	account_id = PG_GETARG_INT64(0);
	e = hash_search(cache->accounts, &account_id, HASH_FIND, NULL);
	if (e != NULL)
		PG_RETURN_BOOL(e->usable);
	if (cache->complete)
		PG_RETURN_BOOL(false);
	if (cache->probes >= SCOPE_PROBES)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		scope_fill(cache);
		MemoryContextSwitchTo(old);
		e = hash_search(cache->accounts, &account_id, HASH_FIND, NULL);
		PG_RETURN_BOOL(e != NULL && e->usable);
	}
	else
	{
		int64		entity;
		bool		usable = account_entity(account_id, &entity) && reach_has(&cache->reach, entity);

		cache->probes++;
		e = hash_search(cache->accounts, &account_id, HASH_ENTER, &found);
		e->usable = usable;
		PG_RETURN_BOOL(usable);
	}
}
