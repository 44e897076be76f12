/*-------------------------------------------------------------------------
 *
 * es_emit.c
 *	  Layer 3: what every read path returns (es_emit.h).
 *
 * Every read (es_read_stream, es_read_stream_at, es_read_all,
 * es_read_category, es_load_aggregate) hands its rows to an emitter, which
 *
 *	- leaves out the events the stream's metadata hides: versions below
 *	  truncate_before (a soft delete sets it past the last event), all but
 *	  the newest max_count, and those older than max_age seconds (but never
 *	  the stream's last append);
 *	- upcasts the others through the registered chain of their type, from
 *	  their schema version to the newest, and returns the result with the
 *	  schema version reached.  Stored events never change.
 *
 * One snapshot per read
 * ---------------------
 * A read sees the rules of a stream (its metadata and version) and the
 * registered upcasters as of its own snapshot, the one it reads the events
 * with: the caller's for stream reads, the feed's own for feed reads.  So a
 * REPEATABLE READ transaction that reads twice gets the same answer, and no
 * uncommitted or newer change decides what a read returns.
 *
 * Looking up every stream's row would cost a feed read an index probe per
 * event.  So each backend keeps two supersets, loaded with SnapshotAny: the
 * names of the streams that have, or had, metadata (every version in the
 * partial index streams_with_metadata, dead ones included) and the types
 * that have, or had, upcasters.  Every row version some live snapshot can
 * see is in them; a read looks up, with its own snapshot, only the streams
 * and types they hold, once per read.  With no rule and no upcaster
 * anywhere, an emitter costs one test per row.
 *
 * The supersets are dropped by a relcache invalidation of their table,
 * which the changing transaction sends at commit.  A transaction becomes
 * visible to new snapshots a moment before its invalidations are sent, so
 * a read could take a snapshot that sees a change its superset does not
 * know of yet.  So a transaction that changed metadata or upcasters counts
 * itself in shared memory as committing, from PRE_COMMIT (before it becomes
 * visible) until its resources are released after locks (after its
 * invalidations are sent).  A read that finds such a change committing once
 * it has its snapshot does not trust the supersets and looks up every
 * stream and type it meets ("exact"); one that finds none takes in the
 * invalidations sent so far, which hold every change its snapshot sees.
 * Nobody waits for anybody, and no role can hold the mechanism up.  A hot
 * standby, which does not see the primary's counts, always reads exactly.
 * Such a transaction cannot be prepared: its commit would not be counted.
 *
 * Caches never hold what a read is using: the per-read results (stream
 * views, resolved upcasters with their FmgrInfo) live in the read's own
 * memory, so an invalidation during an upcaster, or a nested read that
 * reloads a superset, frees nothing in use.
 *
 * Upcasters are user code: each is resolved from its qualified signature
 * under a fixed search_path, its kind, argument and return types are
 * checked every time it is resolved and again before every call, and it
 * runs as its owner, under search_path "pg_catalog, pg_temp", as a
 * security-restricted operation, each call in a GUC nest level of its own
 * that is rolled back after it: nothing it sets outlives the call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_emit.h"
#include "es_register.h"
#include "es_scan.h"
#include "es_stream.h"
#include "es_util.h"
#include "es_validate.h"

/*
 * The memory of the tuplestores the read functions return.
 *
 * A page of the feed is about half a megabyte of rows.  Built in per-query
 * memory, it is given back to malloc at the end of each query, which hands
 * the big blocks back to the kernel, and the next page faults them in again:
 * measured, that cost a third of a catch-up's speed against a plain SELECT.
 * So the rows of a query's reads live in a context of ours (EsResultMemory)
 * whose blocks are kept from one query to the next.
 *
 * Each such context belongs to one query at a time: it is taken from a
 * small pool when a read first runs in a query, shared by every read of that
 * query (a LATERAL join calling a read once per row reuses the memory of the
 * rows the executor has already released), and given back when the query's
 * memory goes, through a reset callback on it.  That callback runs whether
 * the query ends normally or fails, in a subtransaction or not: after a
 * normal end the executor has ended every tuplestore, so the context holds
 * nothing but free blocks and is kept as it is; when the query's memory goes
 * while its transaction is aborting, the tuplestores were never ended, and
 * the context is reset.  A kept context that has grown past a bound is reset
 * too, so no path can make one grow without end.
 *
 * A tuplestore spills to a temporary file past its memory bound.  With
 * work_mem's default of 4MB, that was every read of more than about 6,000
 * events: a whole stream, an aggregate, which a plain SELECT streams to the
 * client without storing.  event_store.read_mem (16MB) raises the bound for
 * our result rows alone; a larger work_mem still applies.
 */
int			es_read_mem = 16 * 1024;

static void es_fence_check_end(EsEmitter *em);

/* upcaster calls in progress in this backend (es_in_upcaster) */
static int	es_upcaster_depth = 0;

#define ES_RESULT_MEMORY_KEEP	(8 * 1024 * 1024)
#define ES_RESULT_POOL_SIZE		2

typedef struct EsResultMemory
{
	MemoryContext query;		/* the query's memory it serves; NULL: idle */
	MemoryContext rows;			/* where its tuplestores live */
	MemoryContextCallback callback; /* on "query" */
	struct EsResultMemory *next;
} EsResultMemory;

static EsResultMemory *es_results_active = NULL;	/* serving a query */
static EsResultMemory *es_results_idle = NULL;	/* the pool */
static int	es_results_nidle = 0;

/* The query's memory is going: give its result memory back. */
static void
es_result_memory_release(void *arg)
{
	EsResultMemory *rm = (EsResultMemory *) arg;
	EsResultMemory **link;

	for (link = &es_results_active; *link != NULL; link = &(*link)->next)
	{
		if (*link == rm)
		{
			*link = rm->next;
			break;
		}
	}
	rm->query = NULL;

	/*
	 * Outside a running transaction (an abort, or the end of a transaction)
	 * the tuplestores may never have been ended: reset.
	 */
	if (!IsTransactionState() ||
		MemoryContextMemAllocated(rm->rows, true) > ES_RESULT_MEMORY_KEEP)
		MemoryContextReset(rm->rows);

	if (es_results_nidle >= ES_RESULT_POOL_SIZE)
	{
		MemoryContextDelete(rm->rows);
		pfree(rm);
		return;
	}
	rm->next = es_results_idle;
	es_results_idle = rm;
	es_results_nidle++;
}

/* The result memory of the query whose memory is "query". */
static MemoryContext
es_result_memory(MemoryContext query)
{
	EsResultMemory *rm;

	for (rm = es_results_active; rm != NULL; rm = rm->next)
		if (rm->query == query)
			return rm->rows;

	if (es_results_idle != NULL)
	{
		rm = es_results_idle;
		es_results_idle = rm->next;
		es_results_nidle--;
	}
	else
	{
		rm = MemoryContextAllocZero(TopMemoryContext, sizeof(EsResultMemory));
		rm->rows = AllocSetContextCreate(TopMemoryContext,
										 "event_store result rows",
										 ALLOCSET_DEFAULT_SIZES);
	}
	rm->query = query;
	rm->callback.func = es_result_memory_release;
	rm->callback.arg = rm;
	MemoryContextRegisterResetCallback(query, &rm->callback);
	rm->next = es_results_active;
	es_results_active = rm;
	return rm->rows;
}

/*
 * Start a materialize-mode set returning function; returns the tuplestore
 * and the result descriptor.  (InitMaterializedSRF() exists from 15 on;
 * this is the same, for every supported version, but for the memory.)
 */
Tuplestorestate *
es_begin_srf(FunctionCallInfo fcinfo, TupleDesc *desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	*desc = CreateTupleDescCopy(*desc);
	MemoryContextSwitchTo(es_result_memory(rsinfo->econtext->ecxt_per_query_memory));
	store = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
								  false, Max(work_mem, es_read_mem));
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = *desc;
	MemoryContextSwitchTo(old);
	return store;
}

/*
 * es_event has the columns of the events table, in the same order, so that
 * a stored row is returned as it is.  Refuse a type that drifted.
 */
void
es_check_event_desc(TupleDesc result, Relation rel)
{
	TupleDesc	table = RelationGetDescr(rel);
	int			i;

	if (result->natts != table->natts)
		goto mismatch;
	for (i = 0; i < result->natts; i++)
		if (TupleDescAttr(result, i)->atttypid != TupleDescAttr(table, i)->atttypid ||
			TupleDescAttr(result, i)->attisdropped)
			goto mismatch;
	return;

mismatch:
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("type \"%s.es_event\" does not match table \"%s.events\"",
					ES_SCHEMA_NAME, ES_SCHEMA_NAME),
			 errhint("Do not alter the extension's objects; reinstall the extension from a dump.")));
}

/* ---------------------------------------------------------------------
 * Supersets: streams that may have rules, types that may have upcasters
 * ---------------------------------------------------------------------
 */

/* hash table entry: the names that share a 64-bit hash */
typedef struct EsNameEntry
{
	uint64		hash;
	List	   *names;			/* of text * */
} EsNameEntry;

/*
 * A per-backend set of names.  A load fills a new hash table and replaces
 * the old one only once it has finished: an error in the middle of a load
 * (a cancel, say, caught by an exception block around a nested read) leaves
 * the old set in place for the reads still using it.  The set is valid when
 * no invalidation came since its load began.
 */
typedef struct EsNameSet
{
	const char *name;
	MemoryContext cxt;			/* of hash */
	HTAB	   *hash;
	int			count;			/* names in hash */
	bool		valid;
	Oid			relid;			/* the table it was loaded from */
	uint64		invalidations;	/* seen by the callbacks */
	/* a load in progress, installed only once it has finished */
	MemoryContext loading_cxt;
	HTAB	   *loading_hash;
	int			loading_count;
	uint64		loading_since;	/* invalidations when the load began */
} EsNameSet;

static EsNameSet es_rule_streams = {"event_store streams with metadata"};
static EsNameSet es_upcast_types = {"event_store types with upcasters"};

/* signature -> function, resolved under the fixed search_path */
typedef struct EsResolved
{
	char	   *signature;
	Oid			fn;
} EsResolved;

static MemoryContext es_resolved_cxt = NULL;
static List *es_resolved = NIL;

static bool es_registry_callbacks = false;

static void
es_nameset_invalidate(EsNameSet *set)
{
	set->valid = false;
	set->invalidations++;
}

static void
es_resolved_forget(void)
{
	if (es_resolved_cxt != NULL)
		MemoryContextReset(es_resolved_cxt);
	es_resolved = NIL;
}

static void
es_registry_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == es_rule_streams.relid)
		es_nameset_invalidate(&es_rule_streams);
	if (relid == InvalidOid || relid == es_upcast_types.relid)
	{
		es_nameset_invalidate(&es_upcast_types);
		es_resolved_forget();
	}
}

/* a function or schema was created, changed or dropped */
static void
es_registry_syscache_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	es_resolved_forget();
}

static void
es_registry_register_callbacks(void)
{
	if (es_registry_callbacks)
		return;
	CacheRegisterRelcacheCallback(es_registry_relcache_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, es_registry_syscache_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, es_registry_syscache_changed, (Datum) 0);
	es_registry_callbacks = true;
}

/* Start a load: an empty set in memory of its own. */
static void
es_nameset_begin_load(EsNameSet *set, Oid relid)
{
	if (set->loading_cxt != NULL)
		MemoryContextDelete(set->loading_cxt);	/* a load that failed */
	set->loading_cxt = NULL;
	set->loading_cxt = AllocSetContextCreate(TopMemoryContext, "event_store cache",
											 ALLOCSET_SMALL_SIZES);
	MemoryContextSetIdentifier(set->loading_cxt, set->name);
	set->loading_hash = es_name_hash_table(set->name, sizeof(EsNameEntry),
										   set->loading_cxt);
	set->loading_count = 0;
	set->loading_since = set->invalidations;
	set->relid = relid;
}

static void
es_nameset_add(EsNameSet *set, text *name)
{
	uint64		hash = es_name_hash(name);
	EsNameEntry *entry;
	bool		found;
	ListCell   *lc;
	MemoryContext old;

	entry = hash_search(set->loading_hash, &hash, HASH_ENTER, &found);
	if (!found)
		entry->names = NIL;
	foreach(lc, entry->names)
	{
		if (es_same_name((text *) lfirst(lc), name))
			return;
	}
	old = MemoryContextSwitchTo(set->loading_cxt);
	entry->names = lappend(entry->names, DatumGetTextPCopy(PointerGetDatum(name)));
	MemoryContextSwitchTo(old);
	set->loading_count++;
}

/*
 * Install the loaded set.  It holds everything stored when the load began;
 * if an invalidation came meanwhile, the next read loads it again.
 */
static void
es_nameset_end_load(EsNameSet *set)
{
	if (set->cxt != NULL)
		MemoryContextDelete(set->cxt);
	set->cxt = set->loading_cxt;
	set->hash = set->loading_hash;
	set->count = set->loading_count;
	set->loading_cxt = NULL;
	set->loading_hash = NULL;
	set->valid = (set->invalidations == set->loading_since);
}

static bool
es_nameset_has(EsNameSet *set, text *name)
{
	uint64		hash = es_name_hash(name);
	EsNameEntry *entry;
	ListCell   *lc;

	if (set->count == 0)
		return false;
	entry = hash_search(set->hash, &hash, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	foreach(lc, entry->names)
	{
		if (es_same_name((text *) lfirst(lc), name))
			return true;
	}
	return false;
}

/*
 * The names of the streams whose metadata says something, in any version
 * of their row that is still stored: every entry of the partial index
 * streams_with_metadata, read with SnapshotAny.
 */
static void
es_rule_streams_load(const EsCatalog *cat)
{
	Relation	rel;
	Relation	idx;
	EsScan		scan;

	if (es_rule_streams.valid && es_rule_streams.relid == cat->streams)
		return;
	es_nameset_begin_load(&es_rule_streams, cat->streams);
	rel = es_table_open(cat->streams, AccessShareLock);
	idx = es_index_open(cat->streams_with_metadata, AccessShareLock);
	es_scan_init(&scan, rel, idx);
	es_scan_begin(&scan, SnapshotAny);
	while (es_scan_next(&scan, ForwardScanDirection))
	{
		bool		isnull;

		es_nameset_add(&es_rule_streams,
					   DatumGetTextPP(slot_getattr(scan.slot, Anum_es_streams_name, &isnull)));
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	es_nameset_end_load(&es_rule_streams);
}

/* The types of every stored row version of event_store.upcasters. */
static void
es_upcast_types_load(const EsCatalog *cat)
{
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;

	if (es_upcast_types.valid && es_upcast_types.relid == cat->upcasters)
		return;
	es_nameset_begin_load(&es_upcast_types, cat->upcasters);
	rel = es_table_open(cat->upcasters, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, SnapshotAny, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		es_nameset_add(&es_upcast_types,
					   DatumGetTextPP(slot_getattr(slot, Anum_es_upcasters_type, &isnull)));
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	es_nameset_end_load(&es_upcast_types);
}

/* ---------------------------------------------------------------------
 * The barrier between a change of the registry and the reads
 * ---------------------------------------------------------------------
 */
/* the outermost (sub)transaction that changed the registry, if any */
static SubTransactionId es_registry_changed_subid = InvalidSubTransactionId;
static bool es_registry_counted = false;

#define es_registry_changed_in_xact \
	(es_registry_changed_subid != InvalidSubTransactionId)

/*
 * This transaction changed stream metadata (relid: streams) or upcasters
 * (relid: upcasters): every backend drops its superset when it commits, and
 * reads meanwhile look up everything (see the file header).  Our own sets
 * go now: a read later in this statement must see the change too (the
 * supersets are loaded with SnapshotAny, so they hold our new rows).
 */
void
es_registry_touch(const EsCatalog *cat, Oid relid)
{
	if (!es_registry_changed_in_xact)
		es_registry_changed_subid = GetCurrentSubTransactionId();
	CacheInvalidateRelcacheByRelid(relid);
	es_registry_register_callbacks();
	es_registry_relcache_changed((Datum) 0, relid);
}

/*
 * A subtransaction that rolls back takes its changes of the registry with
 * it (and their invalidations); one that commits hands them to its parent.
 */
void
es_emit_subxact_end(bool committed, SubTransactionId mySubid,
					SubTransactionId parentSubid)
{
	if (!es_registry_changed_in_xact)
		return;
	if (!committed && es_registry_changed_subid >= mySubid)
		es_registry_changed_subid = InvalidSubTransactionId;
	else if (committed && es_registry_changed_subid == mySubid)
		es_registry_changed_subid = parentSubid;
}

/* PRE_COMMIT (event_store.c): count the commit until es_emit_after_locks */
void
es_emit_pre_commit(void)
{
	if (es_registry_changed_in_xact && !es_registry_counted)
		es_registry_counted = es_registry_commit_begin();
}

/* PRE_PREPARE: a prepared transaction's commit would not be counted */
void
es_emit_pre_prepare(void)
{
	if (es_registry_changed_in_xact)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that changed stream metadata or upcasters"),
				 errdetail("Reads learn of such a change when its commit is counted, which a prepared transaction's is not."),
				 errhint("Commit the change directly.")));
}

/* the end of the transaction, once its outcome is visible */
void
es_emit_xact_end(void)
{
	es_registry_changed_subid = InvalidSubTransactionId;
}

/* after locks, after the invalidations of the commit (or abort) are sent */
void
es_emit_after_locks(void)
{
	if (es_registry_counted)
	{
		es_registry_counted = false;
		es_registry_commit_end();
	}
}

/* ---------------------------------------------------------------------
 * Stream rules, as a snapshot sees them
 * ---------------------------------------------------------------------
 */

/*
 * Do the stream's rules hide its event at version, created at created_at,
 * from a read whose transaction started at now?
 *
 * max_age never hides the stream's last append (the events created at or
 * after streams.updated_at): an append commits visible, however long its
 * transaction ran.  created_at never decreases within a stream, so every
 * rule hides a prefix of it.
 */
bool
es_view_hides(const EsStreamView *view, int64 version, TimestampTz created_at,
			  TimestampTz now)
{
	const EsRules *rules = &view->rules;

	if (!view->has_rules)
		return false;
	if (version < rules->truncate_before)
		return true;
	if (rules->max_count > 0 && version <= view->version - rules->max_count)
		return true;
	if (rules->max_age > 0 && created_at < view->last_created &&
		es_max_age_expired(now, rules->max_age, created_at))
		return true;
	return false;
}

/* ---------------------------------------------------------------------
 * Upcasters, as a snapshot sees them
 * ---------------------------------------------------------------------
 */

/* one step of an upcaster chain, resolved for one read */
typedef struct EsUpcastStep
{
	text	   *type;
	int32		from_version;
	bool		registered;		/* false: the chain ends here */
	char	   *signature;		/* as stored */
	Oid			fn;
	Oid			owner;
	int			nargs;			/* 1: data; 2: data and metadata */
	FmgrInfo	flinfo;			/* in the read's memory */
} EsUpcastStep;

/* emitter memo entries: the steps / stream views sharing a 64-bit hash */
typedef struct EsMemoEntry
{
	uint64		hash;
	List	   *items;
} EsMemoEntry;

typedef struct EsViewItem
{
	text	   *name;
	EsStreamView view;
} EsViewItem;

static uint64
es_upcaster_hash(text *type, int32 version)
{
	return es_name_hash(type) ^ ((uint64) (uint32) version * UINT64CONST(0x9E3779B97F4A7C15));
}

/*
 * The function a registered signature names; InvalidOid if there is none.
 * Looked up as the owner of the registry, so that what a reader gets does
 * not depend on its privileges on the function's schema (nor on which role
 * looked first), and under a fixed search_path, so that it does not depend
 * on the reader's either (signatures are stored qualified; rows of older
 * versions name functions of pg_catalog unqualified).
 */
static Oid
es_resolve_uncached(const EsCatalog *cat, const char *signature)
{
	Oid			owner;
	HeapTuple	classtup;

	classtup = SearchSysCache1(RELOID, ObjectIdGetDatum(cat->upcasters));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for relation %u", cat->upcasters);
	owner = ((Form_pg_class) GETSTRUCT(classtup))->relowner;
	ReleaseSysCache(classtup);
	return es_signature_lookup_as(signature, owner);
}

static Oid
es_resolve_signature(const EsCatalog *cat, const char *signature)
{
	ListCell   *lc;
	EsResolved *r;
	Oid			fn;
	MemoryContext old;

	es_registry_register_callbacks();
	foreach(lc, es_resolved)
	{
		r = (EsResolved *) lfirst(lc);
		if (strcmp(r->signature, signature) == 0)
			return r->fn;
	}
	fn = es_resolve_uncached(cat, signature);
	if (es_resolved_cxt == NULL)
		es_resolved_cxt = AllocSetContextCreate(TopMemoryContext,
												"event_store resolved upcasters",
												ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(es_resolved_cxt);
	r = palloc(sizeof(EsResolved));
	r->signature = pstrdup(signature);
	r->fn = fn;
	es_resolved = lappend(es_resolved, r);
	MemoryContextSwitchTo(old);
	return fn;
}

/*
 * Is fn an upcaster: a plain function, not set-returning, (jsonb) returning
 * jsonb or (jsonb, jsonb) returning es_upcast?  Returns its number of
 * arguments (1 or 2), 0 if it has another signature, -1 if there is no such
 * function; *owner is its owner.
 */
int
es_upcaster_shape(const EsCatalog *cat, Oid fn, Oid *owner)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	int			result = 0;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		return -1;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	*owner = proc->proowner;
	if (proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->pronargs >= 1 && proc->proargtypes.values[0] == JSONBOID)
	{
		if (proc->pronargs == 1 && proc->prorettype == JSONBOID)
			result = 1;
		else if (proc->pronargs == 2 && proc->proargtypes.values[1] == JSONBOID &&
				 proc->prorettype == cat->upcast_type)
			result = 2;
	}
	ReleaseSysCache(tuple);
	return result;
}

/*
 * Refuse a function whose own search_path setting leaves pg_temp out: then
 * the reader's temporary schema is searched first for tables and views,
 * and an upcaster runs as its owner, so a reader could have it use objects
 * the reader made.  (Without a setting of its own an upcaster runs under
 * ES_SAFE_SEARCH_PATH, which puts pg_temp last.)
 */
static void
es_check_upcaster_search_path(Oid fn)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Datum		config;
	bool		isnull;
	ArrayType  *array;
	Datum	   *items;
	int			nitems;
	int			i;

	if (!HeapTupleIsValid(tuple))
		return;					/* the caller says it does not exist */
	config = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proconfig, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tuple);
		return;
	}
	array = DatumGetArrayTypeP(config);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &items, NULL, &nitems);
	for (i = 0; i < nitems; i++)
	{
		char	   *item = TextDatumGetCString(items[i]);
		List	   *names;
		ListCell   *lc;
		bool		has_temp = false;

		if (strncmp(item, "search_path=", 12) != 0)
			continue;
		/* pg_temp must be there, and last */
		if (SplitIdentifierString(item + 12, ',', &names) && names != NIL)
		{
			lc = list_tail(names);
			has_temp = strcmp((char *) lfirst(lc), "pg_temp") == 0;
		}
		if (!has_temp)
		{
			ReleaseSysCache(tuple);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
					 errmsg("upcaster %s sets a search_path that does not end with pg_temp",
							format_procedure(fn)),
					 errdetail("Unless pg_temp comes last, a function searches the reader's temporary schema before the schemas after it, and an upcaster runs as its owner."),
					 errhint("Put pg_temp last, as in SET search_path = app, pg_temp, or set no search_path.")));
		}
	}
	ReleaseSysCache(tuple);
}

/*
 * Refuse fn as an upcaster registered by the current role: it must have an
 * upcaster's signature (42P13), a safe search_path (42P13) and be
 * controlled by the role (42501), since it runs in every read of its type.
 * The caller has locked it.
 */
void
es_check_upcaster(const EsCatalog *cat, Oid fn)
{
	Oid			owner;
	int			shape = es_upcaster_shape(cat, fn, &owner);

	if (shape < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %u does not exist", fn)));
	if (shape == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s has the wrong signature for an upcaster",
						format_procedure(fn)),
				 errhint("An upcaster is (data jsonb) RETURNS jsonb, or (data jsonb, metadata jsonb) RETURNS event_store.es_upcast.")));
	es_check_upcaster_search_path(fn);
	if (!is_member_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be a member of the owner of function %s to register it",
						format_procedure(fn))));
}

/*
 * Resolve the registered signature of step for the event at position:
 * the function, checked, locked against DROP until the transaction ends,
 * and its FmgrInfo in cxt.
 */
static void
es_upcast_step_resolve(const EsCatalog *cat, EsUpcastStep *step, int64 position,
					   MemoryContext cxt)
{
	int			attempt;
	int			shape = -1;

	for (attempt = 0; attempt < 2; attempt++)
	{
		step->fn = es_resolve_signature(cat, step->signature);
		if (!OidIsValid(step->fn))
			break;
		/* lock first, then check what we locked: DROP FUNCTION waits now */
		LockDatabaseObject(ProcedureRelationId, step->fn, 0, AccessShareLock);
		shape = es_upcaster_shape(cat, step->fn, &step->owner);
		if (shape >= 0)
			break;
		/* dropped (and perhaps created again) since it was resolved */
		es_resolved_forget();
	}
	if (!OidIsValid(step->fn) || shape < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the upcaster of type \"%s\" from schema version %d no longer exists",
						text_to_cstring(step->type), step->from_version),
				 errdetail("It was function %s; the event at position %lld needs it.",
						   step->signature, (long long) position),
				 errhint("Unregister it with es_unregister_upcaster and register a function again.")));
	if (shape == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s has the wrong signature for an upcaster",
						format_procedure(step->fn)),
				 errdetail("It is registered for type \"%s\" from schema version %d; the event at position %lld needs it.",
						   text_to_cstring(step->type), step->from_version,
						   (long long) position),
				 errhint("An upcaster is (data jsonb) RETURNS jsonb, or (data jsonb, metadata jsonb) RETURNS event_store.es_upcast.")));
	es_check_upcaster_search_path(step->fn);
	step->nargs = shape;
	fmgr_info_cxt(step->fn, &step->flinfo, cxt);
}

/* ---------------------------------------------------------------------
 * The emitter
 * ---------------------------------------------------------------------
 */
void
es_emitter_init(EsEmitter *em, const EsCatalog *cat, Tuplestorestate *store,
				TupleDesc desc, Snapshot snapshot)
{
	es_registry_register_callbacks();
	/* after the snapshot: see the file header */
	em->exact = RecoveryInProgress() || es_registry_committing();
	AcceptInvalidationMessages();
	es_rule_streams_load(cat);
	es_upcast_types_load(cat);
	em->cat = cat;
	em->store = store;
	em->desc = desc;
	em->snapshot = snapshot;
	em->rules = em->exact || es_rule_streams.count > 0;
	em->upcasting = em->exact || es_upcast_types.count > 0;
	em->now = GetCurrentTransactionStartTimestamp();
	em->views = NULL;
	em->steps = NULL;
	em->cxt = NULL;
	em->row_cxt = NULL;
	em->fence = NIL;
	em->fenced = false;
	em->read_portal = NULL;
	if (em->rules || em->upcasting)
	{
		em->cxt = AllocSetContextCreate(CurrentMemoryContext,
										"event_store emitter",
										ALLOCSET_SMALL_SIZES);
		em->row_cxt = AllocSetContextCreate(em->cxt,
											"event_store emitter row",
											ALLOCSET_DEFAULT_SIZES);
	}
}

void
es_emitter_end(EsEmitter *em)
{
	if (em->fenced)
		es_fence_check_end(em);
	if (em->cxt != NULL)
		MemoryContextDelete(em->cxt);
	em->cxt = NULL;
	em->row_cxt = NULL;
	em->views = NULL;
	em->steps = NULL;
}

/*
 * The view of the stream as the read's snapshot sees it, once per read;
 * NULL when no version of its row ever had metadata.
 */
static const EsStreamView *
es_emitter_view(EsEmitter *em, text *name)
{
	uint64		hash;
	EsMemoEntry *entry;
	EsViewItem *item;
	bool		found;
	ListCell   *lc;
	MemoryContext old;

	if (!em->exact && !es_nameset_has(&es_rule_streams, name))
		return NULL;
	hash = es_name_hash(name);
	if (em->views == NULL)
		em->views = es_name_hash_table("event_store stream views",
									   sizeof(EsMemoEntry), em->cxt);
	entry = hash_search(em->views, &hash, HASH_ENTER, &found);
	if (!found)
		entry->items = NIL;
	foreach(lc, entry->items)
	{
		item = (EsViewItem *) lfirst(lc);
		if (es_same_name(item->name, name))
			return &item->view;
	}
	old = MemoryContextSwitchTo(em->cxt);
	item = palloc0(sizeof(EsViewItem));
	item->name = DatumGetTextPCopy(PointerGetDatum(name));
	(void) es_stream_view(em->cat, em->snapshot, name, &item->view, false);
	entry->items = lappend(entry->items, item);
	MemoryContextSwitchTo(old);
	return &item->view;
}

/*
 * The upcaster of type from version, as the read's snapshot sees the
 * registry, resolved once per read; NULL if there is none.
 */
static EsUpcastStep *
es_emitter_step(EsEmitter *em, text *type, int32 version, int64 position)
{
	uint64		hash;
	EsMemoEntry *entry;
	EsUpcastStep *step;
	bool		found;
	ListCell   *lc;
	MemoryContext old;

	if (!em->exact && !es_nameset_has(&es_upcast_types, type))
		return NULL;
	hash = es_upcaster_hash(type, version);
	if (em->steps == NULL)
		em->steps = es_name_hash_table("event_store upcast steps",
									   sizeof(EsMemoEntry), em->cxt);
	entry = hash_search(em->steps, &hash, HASH_ENTER, &found);
	if (!found)
		entry->items = NIL;
	foreach(lc, entry->items)
	{
		step = (EsUpcastStep *) lfirst(lc);
		if (step->from_version == version && es_same_name(step->type, type))
			return step->registered ? step : NULL;
	}

	old = MemoryContextSwitchTo(em->cxt);
	step = palloc0(sizeof(EsUpcastStep));
	step->type = DatumGetTextPCopy(PointerGetDatum(type));
	step->from_version = version;
	{
		Relation	rel = es_table_open(em->cat->upcasters, AccessShareLock);
		Relation	idx = es_index_open(em->cat->upcasters_pkey, AccessShareLock);
		EsScan		scan;

		es_scan_init(&scan, rel, idx);
		es_scan_key_text(&scan, 1, type);
		es_scan_key_int4(&scan, 2, version);
		if (es_scan_first(&scan, em->snapshot, ForwardScanDirection))
		{
			bool		isnull;

			step->registered = true;
			step->signature = TextDatumGetCString(slot_getattr(scan.slot, Anum_es_upcasters_upcaster,
															   &isnull));
		}
		es_scan_end(&scan);
		index_close(idx, AccessShareLock);
		table_close(rel, AccessShareLock);
	}
	entry->items = lappend(entry->items, step);
	MemoryContextSwitchTo(old);

	if (!step->registered)
		return NULL;
	es_upcast_step_resolve(em->cat, step, position, em->cxt);
	return step;
}

/* ---------------------------------------------------------------------
 * The reader's cursors, fenced off from upcasters
 *
 * An upcaster runs inside the reader's session, where the reader's open
 * cursors (portals) are reachable by name: PL/pgSQL's own cursor statements
 * (FETCH, MOVE, CLOSE, OPEN on a refcursor naming one) do not go through
 * the utility commands refused while an upcaster runs.  So at its first
 * upcaster call a read notes the session's portals (but the one it runs
 * in); while an upcaster runs, the executor refuses to run one of them
 * (es_upcaster_executor_check, from event_store.c's ExecutorRun hook);
 * after each call every one must still be there, the same portal at the
 * same place; and at the end of the read no new one may be left open.
 * Otherwise the read fails, which also discards what the upcaster queued
 * (notifications) with the reader's (sub)transaction.
 * ---------------------------------------------------------------------
 */
typedef struct EsPortalMark
{
	char	   *name;
	Portal		portal;
	char	   *source;			/* its query's text */
	uint64		pos;
	bool		at_start;
	bool		at_end;
} EsPortalMark;

/* the emitter whose upcaster is running (innermost) */
static EsEmitter *es_calling_emitter = NULL;

/*
 * The names of the session's visible portals, in the current memory: what
 * pg_cursor() (the view pg_cursors) lists, called directly, without SPI.
 */
static List *
es_portal_names(void)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext scratch = AllocSetContextCreate(caller, "event_store cursors",
												  ALLOCSET_SMALL_SIZES);
	LOCAL_FCINFO(fcinfo, 0);
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	ExprContext econtext;
	List	   *names = NIL;

	memset(&econtext, 0, sizeof(econtext));
	econtext.type = T_ExprContext;
	econtext.ecxt_per_query_memory = scratch;
	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = &econtext;
	rsinfo.allowedModes = (int) SFRM_Materialize;
	rsinfo.returnMode = SFRM_ValuePerCall;
	fmgr_info_cxt(F_PG_CURSOR, &flinfo, scratch);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, (Node *) &rsinfo);
	MemoryContextSwitchTo(scratch);
	(void) FunctionCallInvoke(fcinfo);
	if (rsinfo.setResult != NULL)
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);

		while (tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
		{
			bool		isnull;
			Datum		name = slot_getattr(slot, 1, &isnull);
			MemoryContext old = MemoryContextSwitchTo(caller);

			if (!isnull)
				names = lappend(names, TextDatumGetCString(name));
			MemoryContextSwitchTo(old);
		}
		ExecDropSingleTupleTableSlot(slot);
		tuplestore_end(rsinfo.setResult);
	}
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(scratch);
	return names;
}

/* Note the session's portals, before the read's first upcaster call. */
static void
es_fence_begin(EsEmitter *em)
{
	MemoryContext old = MemoryContextSwitchTo(em->cxt);
	List	   *names;
	ListCell   *lc;

	em->read_portal = ActivePortal != NULL ? pstrdup(ActivePortal->name) : NULL;
	names = es_portal_names();
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		Portal		portal = GetPortalByName(name);
		EsPortalMark *mark;

		if (portal == NULL || portal == ActivePortal)
			continue;
		mark = palloc(sizeof(EsPortalMark));
		mark->name = name;
		mark->portal = portal;
		mark->source = pstrdup(portal->sourceText ? portal->sourceText : "");
		mark->pos = portal->portalPos;
		mark->at_start = portal->atStart;
		mark->at_end = portal->atEnd;
		em->fence = lappend(em->fence, mark);
	}
	em->fenced = true;
	MemoryContextSwitchTo(old);
}

static void
es_fence_breached(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("an upcaster used the reader's cursor \"%s\"", name),
			 errdetail("An upcaster runs inside the reader's session; it may not fetch, move, close, replace or leave open a cursor there."),
			 errhint("Remove the cursor statements from the upcaster.")));
}

/* after each upcaster call: every noted portal is as it was */
static void
es_fence_check(EsEmitter *em)
{
	ListCell   *lc;

	foreach(lc, em->fence)
	{
		EsPortalMark *mark = (EsPortalMark *) lfirst(lc);
		Portal		portal = GetPortalByName(mark->name);

		if (portal != mark->portal || portal->portalPos != mark->pos ||
			portal->atStart != mark->at_start || portal->atEnd != mark->at_end ||
			strcmp(portal->sourceText ? portal->sourceText : "", mark->source) != 0)
			es_fence_breached(mark->name);
	}
}

/* at the end of the read: no portal an upcaster opened is left */
static void
es_fence_check_end(EsEmitter *em)
{
	List	   *names = es_portal_names();
	ListCell   *lc;

	es_fence_check(em);
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		ListCell   *lm;
		bool		known = em->read_portal != NULL && strcmp(name, em->read_portal) == 0;

		foreach(lm, em->fence)
		{
			if (strcmp(((EsPortalMark *) lfirst(lm))->name, name) == 0)
				known = true;
		}
		if (!known)
			es_fence_breached(name);
	}
}

/*
 * ExecutorRun, while an upcaster runs: refuse to run one of the reader's
 * portals (a FETCH or MOVE of it).
 */
void
es_upcaster_executor_check(void)
{
	ListCell   *lc;

	if (es_calling_emitter == NULL || ActivePortal == NULL)
		return;
	foreach(lc, es_calling_emitter->fence)
	{
		if (((EsPortalMark *) lfirst(lc))->portal == ActivePortal)
			es_fence_breached(ActivePortal->name);
	}
}

/*
 * Is an upcaster running?  event_store.c refuses utility commands then, and
 * _es_lock_upcasters refuses to run: an upcaster is a function of its event.
 */
bool
es_in_upcaster(void)
{
	return es_upcaster_depth > 0;
}

/*
 * Run one upcaster on (data, metadata) in place: as its owner, under the
 * fixed search_path, as a security-restricted operation, read-only.
 */
static void
es_upcast_once(EsEmitter *em, EsUpcastStep *step, int64 position,
			   Datum *data, Datum *metadata, bool *metadata_null)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result = (Datum) 0;
	Oid			save_userid;
	int			save_sec_context;
	bool		save_read_only;
	EsEmitter  *saved_emitter;
	int			nest;
	int			shape;

	/*
	 * Checked again before each call: an upcaster run earlier in this read
	 * may have dropped, replaced or given away this one (the lock taken at
	 * resolution holds off other transactions only).
	 */
	shape = es_upcaster_shape(em->cat, step->fn, &step->owner);
	if (shape != step->nargs)
		ereport(ERROR,
				(errcode(shape < 0 ? ERRCODE_UNDEFINED_FUNCTION : ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("the upcaster of type \"%s\" from schema version %d was dropped or changed during the read",
						text_to_cstring(step->type), step->from_version),
				 errdetail("It was function %s; the event at position %lld needs it.",
						   step->signature, (long long) position)));

	InitFunctionCallInfoData(*fcinfo, &step->flinfo, step->nargs, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = *data;
	fcinfo->args[0].isnull = false;
	if (step->nargs == 2)
	{
		fcinfo->args[1].value = *metadata;
		fcinfo->args[1].isnull = *metadata_null;
	}
	if (step->nargs == 2 && *metadata_null && step->flinfo.fn_strict)
		fcinfo->isnull = true;	/* a strict function is not called */
	else
	{
		/*
		 * As its owner, under the fixed search_path, restricted; whatever it
		 * sets is rolled back after it (an error restores all of it with
		 * the transaction).
		 */
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", ES_SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
		SetUserIdAndSecContext(step->owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		/*
		 * Read-only: an upcaster is a function of its event, and a read
		 * writes nothing (an error restores the flag with the
		 * (sub)transaction).
		 */
		save_read_only = XactReadOnly;
		XactReadOnly = true;
		fcinfo->isnull = false;
		if (!em->fenced)
			es_fence_begin(em);
		saved_emitter = es_calling_emitter;
		es_calling_emitter = em;
		es_upcaster_depth++;
		PG_TRY();
		{
			result = FunctionCallInvoke(fcinfo);
		}
		PG_FINALLY();
		{
			es_upcaster_depth--;
			es_calling_emitter = saved_emitter;
		}
		PG_END_TRY();
		es_fence_check(em);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		/* the settings first: their stack may hold the forced flag */
		AtEOXact_GUC(false, nest);
		XactReadOnly = save_read_only;
	}
	if (fcinfo->isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("upcaster %s returned null for the event at position %lld",
						format_procedure(step->fn), (long long) position),
				 errhint("An upcaster must return the event's data (or data and metadata); a two-argument one gets NULL metadata for events without any, so it must not be STRICT.")));
	if (step->nargs == 1)
	{
		*data = result;
		return;
	}
	else
	{
		HeapTupleHeader th = DatumGetHeapTupleHeader(result);
		bool		isnull;
		Datum		d = GetAttributeByNum(th, 1, &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("upcaster %s returned null data for the event at position %lld",
							format_procedure(step->fn), (long long) position)));
		*data = d;
		*metadata = GetAttributeByNum(th, 2, metadata_null);
		if (!*metadata_null)
		{
			Jsonb	   *md = DatumGetJsonbP(*metadata);

			if (!JB_ROOT_IS_OBJECT(md) || JB_ROOT_IS_SCALAR(md))
			{
				if (JB_ROOT_IS_SCALAR(md) && JB_ROOT_COUNT(md) == 1)
				{
					JsonbValue	v;

					if (JsonbExtractScalar(&md->root, &v) && v.type == jbvNull)
					{
						*metadata_null = true;
						return;
					}
				}
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("upcaster %s returned metadata that is not a JSON object",
								format_procedure(step->fn))));
			}
		}
	}
}

/*
 * Put the event in slot into the result, unless the stream's rules hide it
 * (then false), upcast to the newest schema version of its type.
 */
bool
es_emit(EsEmitter *em, TupleTableSlot *slot)
{
	bool		isnull;

	if (em->rules)
	{
		text	   *stream = DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream, &isnull));
		const EsStreamView *view = es_emitter_view(em, stream);

		if (view != NULL &&
			es_view_hides(view,
						  DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull)),
						  DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at, &isnull)),
						  em->now))
			return false;
	}
	if (em->upcasting)
	{
		text	   *type = DatumGetTextPP(slot_getattr(slot, Anum_es_events_type, &isnull));
		int32		version = DatumGetInt32(slot_getattr(slot, Anum_es_events_schema_version, &isnull));
		int64		position = DatumGetInt64(slot_getattr(slot, Anum_es_events_position, &isnull));
		EsUpcastStep *step = es_emitter_step(em, type, version, position);

		if (step != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(em->row_cxt);
			Datum		values[Natts_es_events];
			bool		nulls[Natts_es_events];

			slot_getallattrs(slot);
			memcpy(values, slot->tts_values, sizeof(values));
			memcpy(nulls, slot->tts_isnull, sizeof(nulls));
			/* the slot's own values may go with a nested read: keep ours */
			type = DatumGetTextPCopy(PointerGetDatum(type));
			while (step != NULL)
			{
				CHECK_FOR_INTERRUPTS();
				es_upcast_once(em, step, position,
							   &values[Anum_es_events_data - 1],
							   &values[Anum_es_events_metadata - 1],
							   &nulls[Anum_es_events_metadata - 1]);
				version++;
				step = es_emitter_step(em, type, version, position);
			}
			values[Anum_es_events_schema_version - 1] = Int32GetDatum(version);
			tuplestore_putvalues(em->store, em->desc, values, nulls);
			MemoryContextSwitchTo(old);
			MemoryContextReset(em->row_cxt);
			return true;
		}
	}
	tuplestore_puttupleslot(em->store, slot);
	return true;
}

