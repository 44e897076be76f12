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
 *	  the newest max_count, and those older than max_age seconds;
 *	- upcasts the others through the registered chain of their type, from
 *	  their schema version to the newest, and returns the result with the
 *	  schema version reached.  Stored events never change.
 *
 * Both rest on caches kept per backend and dropped when the tables behind
 * them change: the rules of the streams whose metadata says something (read
 * through the partial index streams_with_metadata), and the upcasters
 * (event_store.upcasters).  es_set_stream_metadata, es_delete_stream and
 * the statement trigger on upcasters send a relcache invalidation of their
 * table, which reaches every backend when the change commits.  With no rule
 * and no upcaster anywhere, an emitter costs one test per row.
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
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
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

/* ---------------------------------------------------------------------
 * Stream rules
 * ---------------------------------------------------------------------
 */
typedef struct EsRules
{
	text	   *name;
	int64		truncate_before;	/* 0: none */
	int64		max_count;		/* 0: none */
	int64		max_age;		/* seconds; 0: none */
	bool		deleted;		/* soft deleted once (deleted_at) */
} EsRules;

/* hash table entry: the streams whose names share a 64-bit hash */
typedef struct EsRulesEntry
{
	uint64		hash;
	List	   *rules;			/* of EsRules * */
} EsRulesEntry;

typedef struct EsUpcaster
{
	text	   *type;
	char	   *signature;		/* as registered */
	int32		from_version;
	int			nargs;			/* 1: data; 2: data and metadata */
	Oid			fn;
	bool		missing;		/* the function was dropped */
	FmgrInfo	flinfo;
} EsUpcaster;

typedef struct EsUpcasterEntry
{
	uint64		hash;
	List	   *upcasters;		/* of EsUpcaster * */
} EsUpcasterEntry;

/*
 * A per-backend cache of table contents.  It is valid only once a load has
 * finished with no invalidation since it began: an error in the middle of a
 * load (a cancel, say) leaves it invalid, to be loaded again.
 */
typedef struct EsCache
{
	const char *name;
	Size		entrysize;
	MemoryContext cxt;
	HTAB	   *hash;
	int			count;			/* items in hash */
	bool		valid;
	uint64		invalidations;	/* seen by the callbacks */
	uint64		loading_since;	/* invalidations when the load began */
} EsCache;

static EsCache es_rules = {"event_store stream rules", sizeof(EsRulesEntry)};
static EsCache es_upcasters = {"event_store upcasters", sizeof(EsUpcasterEntry)};

static void
es_cache_invalidate(EsCache *cache)
{
	cache->valid = false;
	cache->invalidations++;
}

/* Start a load: an empty hash table in the cache's (reset) memory. */
static void
es_cache_begin_load(EsCache *cache)
{
	if (cache->cxt == NULL)
	{
		cache->cxt = AllocSetContextCreate(TopMemoryContext, "event_store cache",
										   ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(cache->cxt, cache->name);
	}
	else
		MemoryContextReset(cache->cxt);
	cache->valid = false;
	cache->hash = es_name_hash_table(cache->name, cache->entrysize, cache->cxt);
	cache->count = 0;
	cache->loading_since = cache->invalidations;
}

static void
es_cache_end_load(EsCache *cache)
{
	cache->valid = (cache->invalidations == cache->loading_since);
}

static bool es_lifecycle_callback_registered = false;
static Oid	es_rules_relid = InvalidOid;
static Oid	es_upcasters_relid = InvalidOid;

static void
es_lifecycle_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == es_rules_relid)
		es_cache_invalidate(&es_rules);
	if (relid == InvalidOid || relid == es_upcasters_relid)
		es_cache_invalidate(&es_upcasters);
}

/* a function was created, replaced or dropped: it may be an upcaster */
static void
es_lifecycle_proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	es_cache_invalidate(&es_upcasters);
}

static void
es_lifecycle_register_callback(void)
{
	if (!es_lifecycle_callback_registered)
	{
		CacheRegisterRelcacheCallback(es_lifecycle_invalidate, (Datum) 0);
		CacheRegisterSyscacheCallback(PROCOID, es_lifecycle_proc_changed, (Datum) 0);
		es_lifecycle_callback_registered = true;
	}
}

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
	if (JB_ROOT_COUNT(metadata) == 0 || !JB_ROOT_IS_OBJECT(metadata))
		return false;
	rules->truncate_before = es_jsonb_int8(metadata, "truncate_before");
	rules->max_count = es_jsonb_int8(metadata, "max_count");
	rules->max_age = es_jsonb_int8(metadata, "max_age");
	rules->deleted = es_jsonb_has(metadata, "deleted_at");
	return rules->truncate_before > 0 || rules->max_count > 0 || rules->max_age > 0;
}

static void
es_rules_load(const EsCatalog *cat)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;

	es_lifecycle_register_callback();
	es_rules_relid = cat->streams;
	if (es_rules.valid)
		return;
	es_cache_begin_load(&es_rules);

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(cat->streams, AccessShareLock);
	idx = index_open(cat->streams_with_metadata, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snapshot, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Jsonb	   *metadata;
		EsRules		rules;
		EsRules    *copy;
		text	   *name;
		uint64		hash;
		EsRulesEntry *entry;
		bool		found;
		MemoryContext old;

		metadata = DatumGetJsonbP(slot_getattr(slot, Anum_es_streams_metadata, &isnull));
		if (!es_rules_of(metadata, &rules))
			continue;
		name = DatumGetTextPP(slot_getattr(slot, Anum_es_streams_name, &isnull));
		hash = es_name_hash(name);
		old = MemoryContextSwitchTo(es_rules.cxt);
		copy = palloc(sizeof(EsRules));
		*copy = rules;
		copy->name = DatumGetTextPCopy(PointerGetDatum(name));
		entry = hash_search(es_rules.hash, &hash, HASH_ENTER, &found);
		if (!found)
			entry->rules = NIL;
		entry->rules = lappend(entry->rules, copy);
		MemoryContextSwitchTo(old);
		es_rules.count++;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);
	es_cache_end_load(&es_rules);
}

static EsRules *
es_rules_find(text *name)
{
	uint64		hash = es_name_hash(name);
	EsRulesEntry *entry = hash_search(es_rules.hash, &hash, HASH_FIND, NULL);
	ListCell   *lc;

	if (entry == NULL)
		return NULL;
	foreach(lc, entry->rules)
	{
		EsRules    *rules = (EsRules *) lfirst(lc);

		if (es_same_name(rules->name, name))
			return rules;
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Upcasters
 * ---------------------------------------------------------------------
 */
static uint64
es_upcaster_hash(text *type, int32 version)
{
	return es_name_hash(type) ^ ((uint64) (uint32) version * UINT64CONST(0x9E3779B97F4A7C15));
}

/*
 * The function a registered signature names; InvalidOid if there is none.
 * Looked up as the owner of the registry, so that what a reader gets does
 * not depend on its privileges on the function's schema (nor on which role
 * loaded the cache first); the reader runs it like a trigger function, by
 * OID.
 */
static Oid
es_resolve_function(const EsCatalog *cat, text *signature)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		result;
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;
	HeapTuple	classtup;

	classtup = SearchSysCache1(RELOID, ObjectIdGetDatum(cat->upcasters));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for relation %u", cat->upcasters);
	owner = ((Form_pg_class) GETSTRUCT(classtup))->relowner;
	ReleaseSysCache(classtup);

	fmgr_info(F_TO_REGPROCEDURE, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(signature);
	fcinfo->args[0].isnull = false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		result = FunctionCallInvoke(fcinfo);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(result);
}

static void
es_upcasters_load(const EsCatalog *cat)
{
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;

	es_lifecycle_register_callback();
	es_upcasters_relid = cat->upcasters;
	if (es_upcasters.valid)
		return;
	es_cache_begin_load(&es_upcasters);

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(cat->upcasters, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		text	   *type = DatumGetTextPP(slot_getattr(slot, Anum_es_upcasters_type, &isnull));
		int32		from = DatumGetInt32(slot_getattr(slot, Anum_es_upcasters_from_version, &isnull));
		text	   *signature = DatumGetTextPP(slot_getattr(slot, Anum_es_upcasters_upcaster, &isnull));
		Oid			fn = es_resolve_function(cat, signature);
		HeapTuple	proc;
		EsUpcaster *up;
		EsUpcasterEntry *entry;
		uint64		hash;
		bool		found;
		MemoryContext old;

		old = MemoryContextSwitchTo(es_upcasters.cxt);
		up = palloc0(sizeof(EsUpcaster));
		up->type = DatumGetTextPCopy(PointerGetDatum(type));
		up->from_version = from;
		up->fn = fn;
		up->signature = text_to_cstring(signature);
		proc = OidIsValid(fn) ? SearchSysCache1(PROCOID, ObjectIdGetDatum(fn)) : NULL;
		if (HeapTupleIsValid(proc))
		{
			ReleaseSysCache(proc);
			up->nargs = get_func_nargs(fn);
			fmgr_info_cxt(fn, &up->flinfo, es_upcasters.cxt);
		}
		else
			up->missing = true; /* dropped: reads of the type fail */
		hash = es_upcaster_hash(type, from);
		entry = hash_search(es_upcasters.hash, &hash, HASH_ENTER, &found);
		if (!found)
			entry->upcasters = NIL;
		entry->upcasters = lappend(entry->upcasters, up);
		MemoryContextSwitchTo(old);
		es_upcasters.count++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);
	es_cache_end_load(&es_upcasters);
}

static EsUpcaster *
es_upcaster_find(text *type, int32 version)
{
	uint64		hash = es_upcaster_hash(type, version);
	EsUpcasterEntry *entry = hash_search(es_upcasters.hash, &hash, HASH_FIND, NULL);
	ListCell   *lc;

	if (entry == NULL)
		return NULL;
	foreach(lc, entry->upcasters)
	{
		EsUpcaster *up = (EsUpcaster *) lfirst(lc);

		if (up->from_version == version && es_same_name(up->type, type))
			return up;
	}
	return NULL;
}

/*
 * Run one upcaster on (data, metadata) in place.
 */
static void
es_upcast_once(EsUpcaster *up, const EsCatalog *cat, int64 position,
			   Datum *data, Datum *metadata, bool *metadata_null)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result = (Datum) 0;

	if (up->missing)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the upcaster of type \"%s\" from schema version %d no longer exists",
						text_to_cstring(up->type), up->from_version),
				 errdetail("It was function %s; the event at position %lld needs it.",
						   up->signature, (long long) position),
				 errhint("Unregister it with es_unregister_upcaster and register a function again.")));

	InitFunctionCallInfoData(*fcinfo, &up->flinfo, up->nargs, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = *data;
	fcinfo->args[0].isnull = false;
	if (up->nargs == 2)
	{
		fcinfo->args[1].value = *metadata;
		fcinfo->args[1].isnull = *metadata_null;
	}
	if (up->nargs == 2 && *metadata_null && up->flinfo.fn_strict)
		fcinfo->isnull = true;	/* a strict function is not called */
	else
	{
		fcinfo->isnull = false;
		result = FunctionCallInvoke(fcinfo);
	}
	if (fcinfo->isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("upcaster %s returned null for the event at position %lld",
						format_procedure(up->fn), (long long) position),
				 errhint("An upcaster must return the event's data (or data and metadata); a two-argument one gets NULL metadata for events without any, so it must not be STRICT.")));
	if (up->nargs == 1)
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
							format_procedure(up->fn), (long long) position)));
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
								format_procedure(up->fn))));
			}
		}
	}
}

/* ---------------------------------------------------------------------
 * The emitter
 * ---------------------------------------------------------------------
 */
/* the committed version of a stream with max_count, once per read */
typedef struct EsLiveItem
{
	text	   *name;
	int64		version;
} EsLiveItem;

typedef struct EsLiveVersion
{
	uint64		hash;
	List	   *items;			/* of EsLiveItem * */
} EsLiveVersion;

void
es_emitter_init(EsEmitter *em, const EsCatalog *cat, Tuplestorestate *store,
				TupleDesc desc)
{
	es_rules_load(cat);
	es_upcasters_load(cat);
	em->cat = cat;
	em->store = store;
	em->desc = desc;
	em->rules = es_rules.count > 0;
	em->upcasting = es_upcasters.count > 0;
	em->now = GetCurrentTransactionStartTimestamp();
	em->versions = NULL;
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
	em->versions = NULL;
}

static int64
es_live_version(EsEmitter *em, text *name)
{
	uint64		hash = es_name_hash(name);
	EsLiveVersion *entry;
	bool		found;
	ListCell   *lc;
	EsLiveItem *item;
	MemoryContext old;
	Relation	rel;
	Relation	idx;
	EsStream	st;

	if (em->versions == NULL)
		em->versions = es_name_hash_table("event_store live versions",
										  sizeof(EsLiveVersion), em->cxt);
	entry = hash_search(em->versions, &hash, HASH_ENTER, &found);
	if (!found)
		entry->items = NIL;
	foreach(lc, entry->items)
	{
		item = (EsLiveItem *) lfirst(lc);
		if (es_same_name(item->name, name))
			return item->version;
	}

	rel = table_open(em->cat->streams, AccessShareLock);
	idx = index_open(em->cat->streams_name, AccessShareLock);
	es_stream_fetch(rel, idx, name, &st);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	old = MemoryContextSwitchTo(em->cxt);
	item = palloc(sizeof(EsLiveItem));
	item->name = DatumGetTextPCopy(PointerGetDatum(name));
	item->version = st.exists ? st.version : 0;
	entry->items = lappend(entry->items, item);
	MemoryContextSwitchTo(old);
	return item->version;
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

/* Does the stream's metadata hide the event? */
static bool
es_hidden(EsEmitter *em, EsRules *rules, text *stream, int64 version,
		  TimestampTz created_at)
{
	if (version < rules->truncate_before)
		return true;
	if (rules->max_count > 0 &&
		version <= es_live_version(em, stream) - rules->max_count)
		return true;
	if (rules->max_age > 0 && es_expired(em->now, rules->max_age, created_at))
		return true;
	return false;
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
		EsRules    *rules = es_rules_find(stream);

		if (rules != NULL &&
			es_hidden(em, rules, stream,
					  DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull)),
					  DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at, &isnull))))
			return false;
	}
	if (em->upcasting)
	{
		text	   *type = DatumGetTextPP(slot_getattr(slot, Anum_es_events_type, &isnull));
		int32		version = DatumGetInt32(slot_getattr(slot, Anum_es_events_schema_version, &isnull));
		EsUpcaster *up = es_upcaster_find(type, version);

		if (up != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(em->row_cxt);
			Datum		values[Natts_es_events];
			bool		nulls[Natts_es_events];
			int64		position;

			slot_getallattrs(slot);
			memcpy(values, slot->tts_values, sizeof(values));
			memcpy(nulls, slot->tts_isnull, sizeof(nulls));
			position = DatumGetInt64(values[Anum_es_events_position - 1]);
			while (up != NULL)
			{
				CHECK_FOR_INTERRUPTS();
				es_upcast_once(up, em->cat, position,
							   &values[Anum_es_events_data - 1],
							   &values[Anum_es_events_metadata - 1],
							   &nulls[Anum_es_events_metadata - 1]);
				version++;
				up = es_upcaster_find(type, version);
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
 * The stream's row seen by the caller's snapshot: its version, its metadata
 * (a copy, if metadata is not NULL) and whether it was erased; false if
 * there is none.
 */
bool
es_stream_row(const EsCatalog *cat, text *name, int64 *version, Jsonb **metadata,
			  bool *erased)
{
	Relation	rel = table_open(cat->streams, AccessShareLock);
	Relation	idx = index_open(cat->streams_name, AccessShareLock);
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	bool		found;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(name));
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		bool		isnull;

		*version = DatumGetInt64(slot_getattr(slot, Anum_es_streams_version, &isnull));
		if (metadata != NULL)
			*metadata = DatumGetJsonbPCopy(slot_getattr(slot, Anum_es_streams_metadata, &isnull));
		(void) slot_getattr(slot, Anum_es_streams_erased_at, erased);
		*erased = !*erased;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Scan the stream forwards from version "from" (>= 1) up to "until"
 * (inclusive; 0 for no bound), events created at or before at_time if
 * given, through the emitter.
 */
static void
es_scan_stream(EsEmitter *em, text *stream, int64 from, int64 until,
			   bool has_time, TimestampTz at_time)
{
	const EsCatalog *cat = em->cat;
	Relation	rel = table_open(cat->events, AccessShareLock);
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
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		if (has_time)
		{
			bool		isnull;
			TimestampTz created = DatumGetTimestampTz(slot_getattr(slot, Anum_es_events_created_at, &isnull));

			if (created > at_time)
				continue;
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
	es_emitter_init(&em, cat, store, desc);
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
 * The stream's snapshot, if one is stored and usable: its schema version at
 * least min_schema_version, at most the stream's version, and no event
 * after it hidden (it must not stand for events a read no longer returns:
 * a soft-deleted stream starts again at truncate_before).
 */
static bool
es_usable_snapshot(const EsCatalog *cat, text *stream, int32 min_schema_version,
				   EsSnapshot *snap)
{
	int64		stream_version;
	Jsonb	   *metadata;
	bool		erased;
	EsRules		rules;
	Relation	rel;
	Relation	idx;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		found;
	int64		lowest;

	if (!es_stream_row(cat, stream, &stream_version, &metadata, &erased) || erased)
		return false;

	rel = table_open(cat->snapshots, AccessShareLock);
	idx = index_open(cat->snapshots_pkey, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
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
		snap->version > stream_version)
		return false;

	(void) es_rules_of(metadata, &rules);
	lowest = rules.deleted ? rules.truncate_before : rules.truncate_before - 1;
	if (rules.max_count > 0)
		lowest = Max(lowest, stream_version - rules.max_count);
	if (snap->version < lowest)
		return false;
	if (rules.max_age > 0 && snap->version < stream_version)
	{
		/* the event after it must still be returned */
		TimestampTz now = GetCurrentTransactionStartTimestamp();
		Relation	erel = table_open(cat->events, AccessShareLock);
		Relation	eidx = index_open(cat->events_stream_version, AccessShareLock);
		ScanKeyData keys[2];
		TupleTableSlot *eslot = table_slot_create(erel, NULL);
		bool		hidden = false;

		ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
							   eidx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
		ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
							   InvalidOid, F_INT8EQ, Int64GetDatum(snap->version + 1));
		scan = index_beginscan(erel, eidx, GetActiveSnapshot(), 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, eslot))
		{
			bool		isnull;
			TimestampTz created = DatumGetTimestampTz(slot_getattr(eslot, Anum_es_events_created_at, &isnull));

			hidden = es_expired(now, rules.max_age, created);
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(eslot);
		index_close(eidx, AccessShareLock);
		table_close(erel, AccessShareLock);
		if (hidden)
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
	if (es_usable_snapshot(cat, stream, min_schema_version, &snap))
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
	Tuplestorestate *store;
	TupleDesc	desc;
	EsSnapshot	snap;
	EsEmitter	em;
	int64		from = 1;

	es_require_privilege(cat->events, ACL_SELECT);
	es_require_privilege(cat->streams, ACL_SELECT);
	es_require_privilege(cat->snapshots, ACL_SELECT);
	store = es_begin_srf(fcinfo, &desc);
	if (es_usable_snapshot(cat, stream, min_schema_version, &snap))
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
	es_emitter_init(&em, cat, store, desc);
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
	Relation	rel = table_open(cat->snapshots, RowExclusiveLock);
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
	CacheInvalidateRelcacheByRelid(cat->streams);
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

	streams = table_open(cat->streams, RowExclusiveLock);
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

	streams = table_open(cat->streams, RowExclusiveLock);
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
	streams = table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		if (es_stream_rewrite(streams, stream, &st, NULL, true))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);

	/*
	 * Every event of the stream, committed by anybody: we hold the stream,
	 * so nobody adds one now.  Deleted with the table AM: no trigger fires.
	 */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	events = table_open(cat->events, RowExclusiveLock);
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
		Relation	audit = table_open(cat->erasures, RowExclusiveLock);
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

/*
 * Statement trigger on event_store.upcasters: every backend drops its cache
 * of upcasters when the change commits.
 */
PG_FUNCTION_INFO_V1(es_registry_changed);
Datum
es_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_registry_changed must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
