/*-------------------------------------------------------------------------
 *
 * es_lifecycle.c
 *	  What every read path returns, and the life of a stream around it:
 *	  retention rules, upcasting, snapshots, time travel, soft delete and
 *	  erasure.
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
 * Erasure (es_erase_stream) removes the stream's events with the table AM
 * directly, so the immutability trigger never sees a DELETE and has nothing
 * to let through: no setting, variable or role opens it.  The function is
 * executable only by roles granted EXECUTE on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "event_store.h"

/* the event type of the row es_load_aggregate returns for a snapshot */
#define ES_SNAPSHOT_TYPE	"$snapshot"

/* max_age in seconds: at most what a timestamp difference can hold */
#define ES_MAX_AGE_SECONDS	(PG_INT64_MAX / USECS_PER_SEC)

/* the search_path user code (upcasters) runs and is resolved under */
#define ES_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

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

static bool es_lifecycle_callbacks = false;

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
es_lifecycle_relcache_changed(Datum arg, Oid relid)
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
es_lifecycle_syscache_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	es_resolved_forget();
}

static void
es_lifecycle_register_callbacks(void)
{
	if (es_lifecycle_callbacks)
		return;
	CacheRegisterRelcacheCallback(es_lifecycle_relcache_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, es_lifecycle_syscache_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, es_lifecycle_syscache_changed, (Datum) 0);
	es_lifecycle_callbacks = true;
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
	IndexScanDesc scan;
	TupleTableSlot *slot;

	if (es_rule_streams.valid && es_rule_streams.relid == cat->streams)
		return;
	es_nameset_begin_load(&es_rule_streams, cat->streams);
	rel = es_table_open(cat->streams, AccessShareLock);
	idx = index_open(cat->streams_with_metadata, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, SnapshotAny, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		es_nameset_add(&es_rule_streams,
					   DatumGetTextPP(slot_getattr(slot, Anum_es_streams_name, &isnull)));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
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
static bool es_registry_changed_in_xact = false;
static bool es_registry_counted = false;
static bool es_registry_callbacks = false;

static void
es_registry_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (es_registry_changed_in_xact && !es_registry_counted)
			{
				/* until es_registry_release_callback: see the file header */
				es_registry_commit_begin();
				es_registry_counted = true;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (es_registry_changed_in_xact)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that changed stream metadata or upcasters"),
						 errdetail("Reads learn of such a change when its commit is counted, which a prepared transaction's is not."),
						 errhint("Commit the change directly.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			es_registry_changed_in_xact = false;
			break;
		default:
			break;
	}
}

/* After locks, after the invalidations of the commit (or abort) are sent. */
static void
es_registry_release_callback(ResourceReleasePhase phase, bool isCommit,
							 bool isTopLevel, void *arg)
{
	if (phase == RESOURCE_RELEASE_AFTER_LOCKS && isTopLevel && es_registry_counted)
	{
		es_registry_counted = false;
		es_registry_commit_end();
	}
}

/*
 * This transaction changed stream metadata (relid: streams) or upcasters
 * (relid: upcasters): every backend drops its superset when it commits, and
 * reads meanwhile look up everything (see the file header).
 */
void
es_registry_touch(const EsCatalog *cat, Oid relid)
{
	if (!es_registry_callbacks)
	{
		RegisterXactCallback(es_registry_xact_callback, NULL);
		RegisterResourceReleaseCallback(es_registry_release_callback, NULL);
		es_registry_callbacks = true;
	}
	es_registry_changed_in_xact = true;
	CacheInvalidateRelcacheByRelid(relid);
}

/* ---------------------------------------------------------------------
 * Stream rules, as a snapshot sees them
 * ---------------------------------------------------------------------
 */

/* The value of key in a JSON object; NULL if it has none. */
static JsonbValue *
es_jsonb_get(Jsonb *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &k);
}

/* a whole number under key (0 if there is none) */
static int64
es_jsonb_int8(Jsonb *obj, const char *key)
{
	JsonbValue *v = es_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvNumeric)
		return 0;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(v->val.numeric)));
}

static bool
es_jsonb_has(Jsonb *obj, const char *key)
{
	return es_jsonb_get(obj, key) != NULL;
}

/* the rules of a metadata object; false if it has none */
static bool
es_rules_of(Jsonb *metadata, EsRules *rules)
{
	memset(rules, 0, sizeof(EsRules));
	if (JB_ROOT_COUNT(metadata) == 0 || !JB_ROOT_IS_OBJECT(metadata) ||
		JB_ROOT_IS_SCALAR(metadata))
		return false;
	rules->truncate_before = es_jsonb_int8(metadata, "truncate_before");
	rules->max_count = es_jsonb_int8(metadata, "max_count");
	rules->max_age = es_jsonb_int8(metadata, "max_age");
	rules->deleted = es_jsonb_has(metadata, "deleted_at");
	return rules->truncate_before > 0 || rules->max_count > 0 || rules->max_age > 0;
}

/*
 * The stream's row as snapshot sees it, into view: its version, rules,
 * erasure and the created_at of its last append (streams.updated_at); a
 * copy of its metadata if want_metadata.  False (and an empty view) if the
 * snapshot sees no row.
 */
bool
es_stream_view(const EsCatalog *cat, Snapshot snapshot, text *name,
			   EsStreamView *view, bool want_metadata)
{
	Relation	rel = es_table_open(cat->streams, AccessShareLock);
	Relation	idx = index_open(cat->streams_name, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData key;
	IndexScanDesc scan;

	memset(view, 0, sizeof(EsStreamView));
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(name));
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Jsonb	   *metadata;

		view->exists = true;
		view->version = DatumGetInt64(slot_getattr(slot, Anum_es_streams_version, &isnull));
		view->last_created = DatumGetTimestampTz(slot_getattr(slot, Anum_es_streams_updated_at,
															  &isnull));
		(void) slot_getattr(slot, Anum_es_streams_erased_at, &isnull);
		view->erased = !isnull;
		metadata = DatumGetJsonbP(slot_getattr(slot, Anum_es_streams_metadata, &isnull));
		view->has_rules = es_rules_of(metadata, &view->rules);
		if (want_metadata)
			view->metadata = DatumGetJsonbPCopy(PointerGetDatum(metadata));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return view->exists;
}

/* Was created_at more than max_age seconds before now? (No overflow.) */
static bool
es_expired(TimestampTz now, int64 max_age, TimestampTz created_at)
{
	if (max_age > ES_MAX_AGE_SECONDS || created_at >= now)
		return false;
	/* now - created_at > 0 here; it overflows only if it is huge anyway */
	if (created_at < 0 && now > PG_INT64_MAX + created_at)
		return true;
	return now - created_at > max_age * USECS_PER_SEC;
}

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
		es_expired(now, rules->max_age, created_at))
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
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		value;
	Oid			save_userid;
	int			save_sec_context;
	int			nest;
	Oid			owner;
	Oid			result;
	HeapTuple	classtup;

	classtup = SearchSysCache1(RELOID, ObjectIdGetDatum(cat->upcasters));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for relation %u", cat->upcasters);
	owner = ((Form_pg_class) GETSTRUCT(classtup))->relowner;
	ReleaseSysCache(classtup);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", ES_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	fmgr_info(F_TO_REGPROCEDURE, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(signature);
	fcinfo->args[0].isnull = false;
	value = FunctionCallInvoke(fcinfo);
	result = fcinfo->isnull ? InvalidOid : DatumGetObjectId(value);
	AtEOXact_GUC(false, nest);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

static Oid
es_resolve_signature(const EsCatalog *cat, const char *signature)
{
	ListCell   *lc;
	EsResolved *r;
	Oid			fn;
	MemoryContext old;

	es_lifecycle_register_callbacks();
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
 * Refuse fn as an upcaster registered by the current role: it must have an
 * upcaster's signature (42P13) and be controlled by the role (42501), since
 * it runs in every read of its type.  The caller has locked it.
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
	es_lifecycle_register_callbacks();
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
		Relation	idx = index_open(em->cat->upcasters_pkey, AccessShareLock);
		TupleTableSlot *slot = table_slot_create(rel, NULL);
		ScanKeyData keys[2];
		IndexScanDesc scan;

		ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
							   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(type));
		ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
							   InvalidOid, F_INT4EQ, Int32GetDatum(version));
		scan = index_beginscan(rel, idx, em->snapshot, 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;

			step->registered = true;
			step->signature = TextDatumGetCString(slot_getattr(slot, Anum_es_upcasters_upcaster,
															   &isnull));
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
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

/*
 * Run one upcaster on (data, metadata) in place: as its owner, under the
 * fixed search_path, as a security-restricted operation.
 */
static void
es_upcast_once(EsEmitter *em, EsUpcastStep *step, int64 position,
			   Datum *data, Datum *metadata, bool *metadata_null)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result = (Datum) 0;
	Oid			save_userid;
	int			save_sec_context;
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
		fcinfo->isnull = false;
		result = FunctionCallInvoke(fcinfo);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		AtEOXact_GUC(false, nest);
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

/* ---------------------------------------------------------------------
 * Reading one stream: es_read_stream_at, snapshots, es_load_aggregate
 * ---------------------------------------------------------------------
 */

/*
 * Scan the stream forwards from version "from" (>= 1) up to "until"
 * (inclusive; 0 for no bound), through the emitter.  With has_time, stop at
 * the first event created after at_time, so that what is returned is always
 * a prefix of the stream.
 */
static void
es_scan_stream(EsEmitter *em, text *stream, int64 from, int64 until,
			   bool has_time, TimestampTz at_time)
{
	const EsCatalog *cat = em->cat;
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = index_open(cat->events_stream_version, AccessShareLock);
	ScanKeyData keys[3];
	int			nkeys = 2;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	es_check_event_desc(em->desc, rel);
	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_INT8GE, Int64GetDatum(from));
	if (until > 0)
		ScanKeyEntryInitialize(&keys[nkeys++], 0, 2, BTLessEqualStrategyNumber,
							   InvalidOid, InvalidOid, F_INT8LE, Int64GetDatum(until));
	scan = index_beginscan(rel, idx, em->snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		if (has_time)
		{
			bool		isnull;
			TimestampTz created = DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at, &isnull));

			if (created > at_time)
				break;
		}
		(void) es_emit(em, slot);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

static text *
es_stream_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *stream;

	es_require_preload();
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = PG_GETARG_TEXT_PP(argno);
	es_validate_stream_name(stream);
	return stream;
}

/*
 * es_read_stream_at(stream text, at_version bigint, at_time timestamptz)
 */
PG_FUNCTION_INFO_V1(es_read_stream_at);
Datum
es_read_stream_at(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	bool		has_version = !PG_ARGISNULL(1);
	bool		has_time = !PG_ARGISNULL(2);
	int64		at_version = has_version ? PG_GETARG_INT64(1) : 0;
	TimestampTz at_time = has_time ? PG_GETARG_TIMESTAMPTZ(2) : 0;
	const EsCatalog *cat;
	Tuplestorestate *store;
	TupleDesc	desc;
	EsEmitter	em;

	if (has_version == has_time)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give either at_version or at_time"),
				 errhint("es_read_stream_at(stream, at_version => 5) or es_read_stream_at(stream, at_time => '2026-01-01').")));
	if (has_version && at_version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at_version must not be negative")));
	if (has_time && TIMESTAMP_NOT_FINITE(at_time))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at_time must be finite")));

	cat = es_catalog();
	es_require_privilege(cat->events, ACL_SELECT);
	store = es_begin_srf(fcinfo, &desc);
	if (has_version && at_version == 0)
		return (Datum) 0;		/* before the first event */
	es_emitter_init(&em, cat, store, desc, GetActiveSnapshot());
	es_scan_stream(&em, stream, 1, has_version ? at_version : 0, has_time, at_time);
	es_emitter_end(&em);
	return (Datum) 0;
}

typedef struct EsSnapshot
{
	int64		version;
	Jsonb	   *state;
	int32		schema_version;
	TimestampTz created_at;
} EsSnapshot;

/*
 * The version below which the stream's snapshots stand for events a read no
 * longer returns: truncate_before - 1 (a snapshot at that version holds the
 * state before the first visible event), or truncate_before itself after a
 * soft delete (the stream starts again there).  es_save_snapshot refuses
 * versions below it; es_usable_snapshot ignores snapshots below it.
 */
int64
es_snapshot_floor(int64 truncate_before, bool deleted)
{
	if (truncate_before <= 0)
		return 0;
	return deleted ? truncate_before : truncate_before - 1;
}

/*
 * The created_at of the stream's event at version, as snapshot sees it;
 * false if there is none.
 */
static bool
es_event_created_at(const EsCatalog *cat, Snapshot snapshot, text *stream,
					int64 version, TimestampTz *created_at)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = index_open(cat->events_stream_version, AccessShareLock);
	ScanKeyData keys[2];
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan;
	bool		found;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_INT8EQ, Int64GetDatum(version));
	scan = index_beginscan(rel, idx, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		bool		isnull;

		*created_at = DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The stream's snapshot, if one is stored and usable, as snapshot sees
 * them both: its schema version at least min_schema_version, at most the
 * stream's version, and no event after it hidden (it must not stand for
 * events a read no longer returns).  Rules hide a prefix of the stream, so
 * the event right after it tells.
 */
static bool
es_usable_snapshot(const EsCatalog *cat, Snapshot snapshot, text *stream,
				   int32 min_schema_version, EsSnapshot *snap)
{
	EsStreamView view;
	Relation	rel;
	Relation	idx;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		found;
	int64		lowest;

	if (!es_stream_view(cat, snapshot, stream, &view, false) || view.erased)
		return false;

	rel = es_table_open(cat->snapshots, AccessShareLock);
	idx = index_open(cat->snapshots_pkey, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		bool		isnull;

		snap->version = DatumGetInt64(slot_getattr(slot, Anum_es_snapshots_version, &isnull));
		snap->state = DatumGetJsonbPCopy(slot_getattr(slot, Anum_es_snapshots_state, &isnull));
		snap->schema_version = DatumGetInt32(slot_getattr(slot, Anum_es_snapshots_schema_version, &isnull));
		snap->created_at = DatumGetTimestampTz(slot_getattr(slot, Anum_es_snapshots_created_at, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (!found || snap->schema_version < min_schema_version ||
		snap->version < 1 || snap->version > view.version)
		return false;
	if (!view.has_rules)
		return true;

	lowest = es_snapshot_floor(view.rules.truncate_before, view.rules.deleted);
	if (view.rules.max_count > 0)
		lowest = Max(lowest, view.version - view.rules.max_count);
	if (snap->version < lowest)
		return false;
	/* max_age: the event after it must still be returned */
	if (view.rules.max_age > 0 && snap->version < view.version)
	{
		TimestampTz created;

		if (!es_event_created_at(cat, snapshot, stream, snap->version + 1, &created))
			return false;		/* erased under it: nothing to stand on */
		if (es_view_hides(&view, snap->version + 1, created,
						  GetCurrentTransactionStartTimestamp()))
			return false;
	}
	return true;
}

static int32
es_min_schema_version_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("min_schema_version must not be null"),
				 errhint("Pass 1 to accept a snapshot of any schema version.")));
	v = PG_GETARG_INT32(argno);
	if (v < 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("min_schema_version must be between 1 and %d", PG_INT32_MAX)));
	return v;
}

/*
 * es_load_snapshot(stream text, min_schema_version integer)
 *	  returns table (version, state, schema_version, created_at)
 */
PG_FUNCTION_INFO_V1(es_load_snapshot);
Datum
es_load_snapshot(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	int32		min_schema_version = es_min_schema_version_arg(fcinfo, 1);
	const EsCatalog *cat = es_catalog();
	Tuplestorestate *store;
	TupleDesc	desc;
	EsSnapshot	snap;

	es_require_privilege(cat->streams, ACL_SELECT);
	es_require_privilege(cat->snapshots, ACL_SELECT);
	store = es_begin_srf(fcinfo, &desc);
	if (es_usable_snapshot(cat, GetActiveSnapshot(), stream, min_schema_version, &snap))
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int64GetDatum(snap.version);
		values[1] = JsonbPGetDatum(snap.state);
		values[2] = Int32GetDatum(snap.schema_version);
		values[3] = TimestampTzGetDatum(snap.created_at);
		tuplestore_putvalues(store, desc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * es_load_aggregate(stream text, min_schema_version integer)
 *	  returns setof es_event
 *
 * The usable snapshot first, as a row of type "$snapshot" (its state as
 * data, its version and schema version; no position, id or metadata), then
 * the events after it; without a usable snapshot, every event the stream
 * returns.  One round trip, one snapshot of the database.
 */
PG_FUNCTION_INFO_V1(es_load_aggregate);
Datum
es_load_aggregate(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	int32		min_schema_version = es_min_schema_version_arg(fcinfo, 1);
	const EsCatalog *cat = es_catalog();
	Snapshot	snapshot = GetActiveSnapshot();
	Tuplestorestate *store;
	TupleDesc	desc;
	EsSnapshot	snap;
	EsEmitter	em;
	int64		from = 1;

	es_require_privilege(cat->events, ACL_SELECT);
	es_require_privilege(cat->streams, ACL_SELECT);
	es_require_privilege(cat->snapshots, ACL_SELECT);
	store = es_begin_srf(fcinfo, &desc);
	if (es_usable_snapshot(cat, snapshot, stream, min_schema_version, &snap))
	{
		Datum		values[Natts_es_events];
		bool		nulls[Natts_es_events];

		memset(nulls, true, sizeof(nulls));
		values[Anum_es_events_stream - 1] = PointerGetDatum(stream);
		nulls[Anum_es_events_stream - 1] = false;
		values[Anum_es_events_version - 1] = Int64GetDatum(snap.version);
		nulls[Anum_es_events_version - 1] = false;
		values[Anum_es_events_type - 1] = CStringGetTextDatum(ES_SNAPSHOT_TYPE);
		nulls[Anum_es_events_type - 1] = false;
		values[Anum_es_events_data - 1] = JsonbPGetDatum(snap.state);
		nulls[Anum_es_events_data - 1] = false;
		values[Anum_es_events_schema_version - 1] = Int32GetDatum(snap.schema_version);
		nulls[Anum_es_events_schema_version - 1] = false;
		values[Anum_es_events_created_at - 1] = TimestampTzGetDatum(snap.created_at);
		nulls[Anum_es_events_created_at - 1] = false;
		tuplestore_putvalues(store, desc, values, nulls);
		from = snap.version + 1;
	}
	es_emitter_init(&em, cat, store, desc, snapshot);
	es_scan_stream(&em, stream, from, 0, false, 0);
	es_emitter_end(&em);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Stream metadata, soft delete, erasure
 * ---------------------------------------------------------------------
 */

/* a metadata value that must be a whole number in [min, max], or null */
static void
es_check_metadata_int(JsonbValue *v, const char *key, int64 min, int64 max)
{
	Numeric		num;

	if (v->type == jbvNull)
		return;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata \"%s\" must be a whole number", key)));
	num = v->val.numeric;
	if (!es_numeric_is_whole(num))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata \"%s\" must be a whole number", key)));
	if (!es_numeric_in_range(num, min, max))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata \"%s\" must be between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
}

/*
 * Check a metadata object given by a user: an object; max_count (>= 1),
 * max_age (seconds, >= 1) and truncate_before (>= 0) whole numbers or
 * null; deleted_at is es_delete_stream's.  Other keys are the user's.
 */
static void
es_validate_metadata(Jsonb *metadata)
{
	JsonbIterator *it;
	JsonbValue	key;
	JsonbValue	val;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata must be a JSON object")));
	it = JsonbIteratorInit(&metadata->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		char	   *k;
		int			klen;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		k = key.val.string.val;
		klen = key.val.string.len;
		if (klen == 9 && memcmp(k, "max_count", 9) == 0)
			es_check_metadata_int(&val, "max_count", 1, PG_INT64_MAX);
		else if (klen == 7 && memcmp(k, "max_age", 7) == 0)
			es_check_metadata_int(&val, "max_age", 1, ES_MAX_AGE_SECONDS);
		else if (klen == 15 && memcmp(k, "truncate_before", 15) == 0)
			es_check_metadata_int(&val, "truncate_before", 0, PG_INT64_MAX);
		else if (klen == 10 && memcmp(k, "deleted_at", 10) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stream metadata \"deleted_at\" is set by es_delete_stream")));
	}
}

/* metadata with key set to value (a copy) */
static Jsonb *
es_metadata_with(Jsonb *metadata, const char *key, Jsonb *value)
{
	Datum		path = CStringGetTextDatum(key);
	ArrayType  *keys = construct_array(&path, 1, TEXTOID, -1, false, TYPALIGN_INT);

	return DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(metadata),
											  PointerGetDatum(keys),
											  JsonbPGetDatum(value), BoolGetDatum(true)));
}

static Jsonb *
es_jsonb_of_int8(int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(value)));
	return JsonbValueToJsonb(&v);
}

/* a time as ISO 8601 in UTC, whatever the session's DateStyle and TimeZone */
static Jsonb *
es_jsonb_of_time(TimestampTz value)
{
	JsonbValue	v;
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[MAXDATELEN + 1];
	char	   *s = buf;

	if (timestamp2tm(value, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_isdst = 0;			/* UTC: print its offset, +00:00 */
	EncodeDateTime(&tm, fsec, true, 0, NULL, USE_XSD_DATES, buf);

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = strlen(s);
	return JsonbValueToJsonb(&v);
}

/*
 * Fetch the stream's row, waiting for an open writer as an append does;
 * refuse an unknown or erased stream.  The caller then claims it by
 * rewriting the row, starting again if that fails.
 */
static void
es_claim_existing(const EsCatalog *cat, Relation streams, Relation name_index,
				  text *stream, EsStream *st)
{
	es_stream_fetch_settled(streams, name_index, stream, st);
	if (!st->exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", text_to_cstring(stream))));
	if (es_stream_erased(streams, st))
		es_refuse_erased(stream);
}

static Jsonb *
es_stream_metadata_of(Relation streams, EsStream *st)
{
	bool		isnull;

	return DatumGetJsonbPCopy(heap_getattr(st->tuple, Anum_es_streams_metadata,
										   RelationGetDescr(streams), &isnull));
}

/*
 * Delete a row found with a fresh snapshot, waiting for a transaction that
 * is changing it; a row another transaction changed or deleted meanwhile is
 * left to it (a snapshot saved concurrently stays: a deleted stream's
 * snapshot is unusable anyway, and an erased stream takes no snapshot).
 */
static void
es_delete_row(Relation rel, TupleTableSlot *slot)
{
	TM_FailureData tmfd;
	TM_Result	result;

	result = table_tuple_delete(rel, &slot->tts_tid, GetCurrentCommandId(true),
								InvalidSnapshot, InvalidSnapshot, true, &tmfd, false);
	if (result != TM_Ok && result != TM_Updated && result != TM_Deleted &&
		result != TM_SelfModified)
		elog(ERROR, "unexpected result %d deleting a row of \"%s\"",
			 (int) result, RelationGetRelationName(rel));
}

/* Delete the stream's snapshot, if it has one. */
static void
es_drop_snapshot(const EsCatalog *cat, text *stream)
{
	Relation	rel = es_table_open(cat->snapshots, RowExclusiveLock);
	Relation	idx = index_open(cat->snapshots_pkey, AccessShareLock);
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
		es_delete_row(rel, slot);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(idx, AccessShareLock);
	table_close(rel, RowExclusiveLock);
}

static void
es_metadata_changed(const EsCatalog *cat)
{
	es_registry_touch(cat, cat->streams);
	CommandCounterIncrement();
}

static void
es_require_writer(const EsCatalog *cat, const char *what)
{
	es_require_privilege(cat->events, ACL_INSERT);
	PreventCommandIfReadOnly(what);
	PreventCommandIfParallelMode(what);
	PreventCommandDuringRecovery(what);
}

/*
 * es_set_stream_metadata(stream text, metadata jsonb) returns jsonb
 */
PG_FUNCTION_INFO_V1(es_set_stream_metadata);
Datum
es_set_stream_metadata(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	Jsonb	   *metadata;
	const EsCatalog *cat = es_catalog();
	Relation	streams;
	Relation	name_index;
	EsStream	st;
	Jsonb	   *stored;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream metadata must not be null"),
				 errhint("Pass '{}' to remove every rule.")));
	metadata = PG_GETARG_JSONB_P(1);
	es_validate_metadata(metadata);
	es_require_writer(cat, "es_set_stream_metadata()");

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		Jsonb	   *old;
		bool		deleted;

		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		/* a soft delete is remembered: deleted_at stays */
		old = es_stream_metadata_of(streams, &st);
		stored = metadata;
		deleted = JB_ROOT_IS_OBJECT(old) && es_jsonb_has(old, "deleted_at");
		if (deleted)
		{
			JsonbValue *truncate_before = es_jsonb_get(old, "truncate_before");

			stored = es_metadata_with(metadata, "deleted_at",
									  JsonbValueToJsonb(es_jsonb_get(old, "deleted_at")));

			/*
			 * The deleted events stay hidden unless truncate_before is given
			 * explicitly (lowering it undoes the delete).
			 */
			if (!es_jsonb_has(metadata, "truncate_before") && truncate_before != NULL)
				stored = es_metadata_with(stored, "truncate_before",
										  JsonbValueToJsonb(truncate_before));
		}
		if (es_stream_rewrite(streams, stream, &st, stored, false))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	es_metadata_changed(cat);
	PG_RETURN_JSONB_P(stored);
}

/*
 * es_delete_stream(stream text, expected_version bigint) returns bigint
 *
 * Soft delete, as EventStoreDB does it: truncate_before moves past the last
 * event, so every read leaves the stream's events out; appending again
 * continues the numbering, and the new events are read.  The snapshot goes.
 */
PG_FUNCTION_INFO_V1(es_delete_stream);
Datum
es_delete_stream(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	bool		expected_any = PG_ARGISNULL(1);
	int64		expected = expected_any ? 0 : PG_GETARG_INT64(1);
	const EsCatalog *cat = es_catalog();
	Relation	streams;
	Relation	name_index;
	EsStream	st;

	if (expected < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected version must not be negative")));
	es_require_writer(cat, "es_delete_stream()");

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		Jsonb	   *metadata;

		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		if (!expected_any && expected != st.version)
			es_raise_wrong_version(stream, expected, st.version);
		metadata = es_stream_metadata_of(streams, &st);
		metadata = es_metadata_with(metadata, "truncate_before",
									es_jsonb_of_int8(st.version + 1));
		metadata = es_metadata_with(metadata, "deleted_at",
									es_jsonb_of_time(GetCurrentTransactionStartTimestamp()));
		if (es_stream_rewrite(streams, stream, &st, metadata, false))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	es_drop_snapshot(cat, stream);
	es_metadata_changed(cat);
	PG_RETURN_INT64(st.version);
}

/*
 * es_erase_stream(stream text, reason text) returns bigint
 *
 * Hard delete, for erasure requests: the stream's events and snapshot are
 * removed for real, the streams row stays as a tombstone (erased_at), so the
 * name can never be used again, and an audit row records who, when and how
 * many.  EXECUTE is granted to nobody by default.
 */
PG_FUNCTION_INFO_V1(es_erase_stream);
Datum
es_erase_stream(PG_FUNCTION_ARGS)
{
	text	   *stream = es_stream_arg(fcinfo, 0);
	text	   *reason = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	const EsCatalog *cat = es_catalog();
	Relation	streams;
	Relation	name_index;
	Relation	events;
	Relation	idx;
	EsStream	st;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	int64		erased = 0;
	int64		last_position = 0;

	PreventCommandIfReadOnly("es_erase_stream()");
	PreventCommandIfParallelMode("es_erase_stream()");
	PreventCommandDuringRecovery("es_erase_stream()");

	/*
	 * Hold snapshot saves off until we commit, before claiming the stream
	 * (the order of an append that follows a save, so no deadlock): a save
	 * in flight finishes first and its row is deleted below; a later one
	 * waits and then finds the stream erased.  es_save_snapshot takes ROW
	 * EXCLUSIVE first thing.  Erasures are rare; saves of other streams
	 * wait for this transaction too.
	 */
	LockRelationOid(cat->snapshots, ShareRowExclusiveLock);

	/* claim the stream: writers wait, then find it erased */
	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		/* the tombstone keeps no metadata: the user's keys go too */
		if (es_stream_rewrite(streams, stream, &st, es_empty_object(), true))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);

	/*
	 * Every event of the stream, committed by anybody: we hold the stream,
	 * so nobody adds one now.  Deleted with the table AM: no trigger fires.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	events = es_table_open(cat->events, RowExclusiveLock);
	idx = index_open(cat->events_stream_version, AccessShareLock);
	slot = table_slot_create(events, NULL);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(events, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int64		position = DatumGetInt64(slot_getattr(slot, Anum_es_events_position, &isnull));

		CHECK_FOR_INTERRUPTS();
		es_delete_row(events, slot);
		erased++;
		last_position = Max(last_position, position);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(events, RowExclusiveLock);
	UnregisterSnapshot(snapshot);

	es_drop_snapshot(cat, stream);

	/* the audit row */
	{
		Relation	audit = es_table_open(cat->erasures, RowExclusiveLock);
		TupleTableSlot *aslot = table_slot_create(audit, NULL);
		EsInserter	ins;
		Datum	   *values = aslot->tts_values;
		bool	   *nulls = aslot->tts_isnull;
		NameData	by;
		NameData	session;

		namestrcpy(&by, GetUserNameFromId(GetUserId(), false));
		namestrcpy(&session, GetUserNameFromId(GetSessionUserId(), false));
		ExecClearTuple(aslot);
		memset(nulls, false, sizeof(bool) * Natts_es_erasures);
		values[Anum_es_erasures_stream - 1] = PointerGetDatum(stream);
		values[Anum_es_erasures_erased_at - 1] =
			TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		values[Anum_es_erasures_erased_by - 1] = NameGetDatum(&by);
		values[Anum_es_erasures_session_user - 1] = NameGetDatum(&session);
		values[Anum_es_erasures_events_erased - 1] = Int64GetDatum(erased);
		values[Anum_es_erasures_last_version - 1] = Int64GetDatum(st.version);
		if (reason != NULL)
			values[Anum_es_erasures_reason - 1] = PointerGetDatum(reason);
		else
			nulls[Anum_es_erasures_reason - 1] = true;
		values[Anum_es_erasures_last_position - 1] = Int64GetDatum(last_position);
		ExecStoreVirtualTuple(aslot);
		es_inserter_open(&ins, audit);
		table_tuple_insert(audit, aslot, GetCurrentCommandId(true), 0, NULL);
		es_inserter_index(&ins, aslot, false);
		es_inserter_close(&ins);
		ExecDropSingleTupleTableSlot(aslot);
		table_close(audit, RowExclusiveLock);
	}
	es_metadata_changed(cat);
	PG_RETURN_INT64(erased);
}

/* a type's registered schema versions: lowest, highest and how many */
typedef struct EsChain
{
	uint64		hash;
	text	   *type;
	int32		lo;
	int32		hi;
	int64		count;
	struct EsChain *next;		/* another type with the same hash */
} EsChain;

/*
 * Every type's chain of upcasters is without holes, however the rows were
 * written (es_register_upcaster and es_unregister_upcaster keep it so; a
 * plain INSERT or DELETE of a role that may write the table must too).
 */
static void
es_check_upcaster_chains(const EsCatalog *cat)
{
	Relation	rel = es_table_open(cat->upcasters, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, SnapshotSelf, 0, NULL);
	HTAB	   *chains = es_name_hash_table("event_store upcaster chains",
											sizeof(EsChain), CurrentMemoryContext);
	HASH_SEQ_STATUS seq;
	EsChain    *entry;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		text	   *type = DatumGetTextPP(slot_getattr(slot, Anum_es_upcasters_type, &isnull));
		int32		from = DatumGetInt32(slot_getattr(slot, Anum_es_upcasters_from_version, &isnull));
		uint64		hash = es_name_hash(type);
		bool		found;
		EsChain    *chain;

		entry = hash_search(chains, &hash, HASH_ENTER, &found);
		if (!found)
		{
			entry->type = NULL;
			entry->count = 0;
			entry->next = NULL;
		}
		for (chain = entry; chain != NULL; chain = chain->next)
			if (chain->type == NULL || es_same_name(chain->type, type))
				break;
		if (chain == NULL)
		{
			chain = palloc0(sizeof(EsChain));
			chain->next = entry->next;
			entry->next = chain;
		}
		if (chain->type == NULL)
		{
			chain->type = DatumGetTextPCopy(PointerGetDatum(type));
			chain->lo = chain->hi = from;
		}
		chain->lo = Min(chain->lo, from);
		chain->hi = Max(chain->hi, from);
		chain->count++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	hash_seq_init(&seq, chains);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		EsChain    *chain;

		for (chain = entry; chain != NULL; chain = chain->next)
			if (chain->type != NULL &&
				(int64) chain->hi - chain->lo + 1 != chain->count)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the upcasters of type \"%s\" would have a hole in their chain",
								text_to_cstring(chain->type)),
						 errdetail("Schema versions %d to %d have %lld upcasters, not %lld.",
								   chain->lo, chain->hi, (long long) chain->count,
								   (long long) chain->hi - chain->lo + 1),
						 errhint("Register and unregister upcasters at either end of a type's chain.")));
	}
	hash_destroy(chains);
}

/*
 * Statement trigger on event_store.upcasters, and on INSERT into
 * event_store.streams (a restore): every backend drops its superset when
 * the change commits (see the file header).
 */
PG_FUNCTION_INFO_V1(es_registry_changed);
Datum
es_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const EsCatalog *cat;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_registry_changed must be called as a trigger")));
	cat = es_catalog();
	if (RelationGetRelid(trigdata->tg_relation) == cat->upcasters &&
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		es_check_upcaster_chains(cat);
	es_registry_touch(cat, RelationGetRelid(trigdata->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * Row trigger BEFORE INSERT OR UPDATE on event_store.upcasters: a row is
 * checked as es_register_upcaster checks its arguments, whoever writes it,
 * and stored with the function's qualified signature.
 *
 * The signature is resolved with the writer's search_path (what it meant);
 * the function must be an upcaster (42P13) whose owner the writer is a
 * member of (42501).  A function that does not exist is refused (42883),
 * except from the owner of the table: a restore may load the rows before a
 * schema that was left out of the dump, and reads of the type then fail
 * until the function is back.
 */
PG_FUNCTION_INFO_V1(es_upcasters_check);
Datum
es_upcasters_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const EsCatalog *cat;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum		values[Natts_es_upcasters];
	bool		nulls[Natts_es_upcasters];
	bool		replace[Natts_es_upcasters];
	char	   *signature;
	LOCAL_FCINFO(regproc_fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		fnd;
	Oid			fn;
	Oid			owner;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_upcasters_check must be fired before INSERT or UPDATE for each row")));
	cat = es_catalog();
	rel = trigdata->tg_relation;
	if (RelationGetRelid(rel) != cat->upcasters)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_upcasters_check only works on table \"%s.upcasters\"",
						ES_SCHEMA_NAME)));
	desc = RelationGetDescr(rel);
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	heap_deform_tuple(tuple, desc, values, nulls);

	if (nulls[Anum_es_upcasters_type - 1] || nulls[Anum_es_upcasters_upcaster - 1])
		return PointerGetDatum(tuple);	/* NOT NULL says so */
	es_validate_type(DatumGetTextPP(values[Anum_es_upcasters_type - 1]));

	signature = TextDatumGetCString(values[Anum_es_upcasters_upcaster - 1]);
	fmgr_info(F_TO_REGPROCEDURE, &flinfo);
	InitFunctionCallInfoData(*regproc_fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	regproc_fcinfo->args[0].value = CStringGetTextDatum(signature);
	regproc_fcinfo->args[0].isnull = false;
	fnd = FunctionCallInvoke(regproc_fcinfo);
	fn = regproc_fcinfo->isnull ? InvalidOid : DatumGetObjectId(fnd);
	if (OidIsValid(fn))
		LockDatabaseObject(ProcedureRelationId, fn, 0, AccessShareLock);
	if (!OidIsValid(fn) || es_upcaster_shape(cat, fn, &owner) < 0)
	{
		if (has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
			return PointerGetDatum(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s does not exist", signature)));
	}
	es_check_upcaster(cat, fn);

	memset(replace, false, sizeof(replace));
	values[Anum_es_upcasters_upcaster - 1] =
		CStringGetTextDatum(format_procedure_qualified(fn));
	replace[Anum_es_upcasters_upcaster - 1] = true;
	return PointerGetDatum(heap_modify_tuple(tuple, desc, values, nulls, replace));
}

/*
 * _es_check_stream_name(stream text), _es_check_type(type text): the rules
 * of stream names and event types, for the SQL functions.
 */
PG_FUNCTION_INFO_V1(es_check_stream_name_sql);
Datum
es_check_stream_name_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	es_validate_stream_name(PG_GETARG_TEXT_PP(0));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(es_check_type_sql);
Datum
es_check_type_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type must not be null")));
	es_validate_type(PG_GETARG_TEXT_PP(0));
	PG_RETURN_VOID();
}

/*
 * _es_check_upcaster(upcaster regprocedure): es_check_upcaster for
 * es_register_upcaster.
 */
PG_FUNCTION_INFO_V1(es_check_upcaster_sql);
Datum
es_check_upcaster_sql(PG_FUNCTION_ARGS)
{
	Oid			fn;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("upcaster must not be null")));
	fn = PG_GETARG_OID(0);
	LockDatabaseObject(ProcedureRelationId, fn, 0, AccessShareLock);
	es_check_upcaster(es_catalog(), fn);
	PG_RETURN_VOID();
}

/*
 * _es_snapshot_floor(truncate_before bigint, deleted boolean) returns bigint
 */
PG_FUNCTION_INFO_V1(es_snapshot_floor_sql);
Datum
es_snapshot_floor_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(es_snapshot_floor(PG_GETARG_INT64(0), PG_GETARG_BOOL(1)));
}
