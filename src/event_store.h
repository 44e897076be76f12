/*-------------------------------------------------------------------------
 *
 * event_store.h
 *	  Shared declarations of the event_store extension.
 *
 * The extension keeps its data in two tables of the "event_store" schema:
 *
 *	  event_store.streams	one row per stream: its name, category, version
 *	  event_store.events	one row per event, numbered by a global position
 *
 * The attribute numbers below must match the column order of the install
 * script; es_catalog.c checks them when it first opens the tables, so a
 * changed schema is refused instead of silently misread.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STORE_H
#define EVENT_STORE_H

#include "access/htup.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "storage/itemptr.h"
#include "storage/lockdefs.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#define ES_SCHEMA_NAME			"event_store"
#define ES_NOTIFY_CHANNEL		"es_events"

/* event_store.events */
#define Anum_es_events_position			1
#define Anum_es_events_stream			2
#define Anum_es_events_version			3
#define Anum_es_events_type				4
#define Anum_es_events_data				5
#define Anum_es_events_metadata			6
#define Anum_es_events_event_id			7
#define Anum_es_events_schema_version	8
#define Anum_es_events_created_at		9
#define Natts_es_events					9

/* event_store.streams */
#define Anum_es_streams_id				1
#define Anum_es_streams_name			2
#define Anum_es_streams_category		3
#define Anum_es_streams_version			4
#define Anum_es_streams_created_at		5
#define Anum_es_streams_updated_at		6
#define Anum_es_streams_metadata		7
#define Anum_es_streams_erased_at		8
#define Natts_es_streams				8

/* event_store.snapshots */
#define Anum_es_snapshots_stream			1
#define Anum_es_snapshots_version			2
#define Anum_es_snapshots_state				3
#define Anum_es_snapshots_schema_version	4
#define Anum_es_snapshots_created_at		5
#define Natts_es_snapshots					5

/* event_store.upcasters */
#define Anum_es_upcasters_type				1
#define Anum_es_upcasters_from_version		2
#define Anum_es_upcasters_upcaster			3
#define Anum_es_upcasters_created_at		4
#define Natts_es_upcasters					4

/* event_store.erasures */
#define Anum_es_erasures_stream				1
#define Anum_es_erasures_erased_at			2
#define Anum_es_erasures_erased_by			3
#define Anum_es_erasures_session_user		4
#define Anum_es_erasures_events_erased		5
#define Anum_es_erasures_last_version		6
#define Anum_es_erasures_reason				7
#define Anum_es_erasures_last_position		8
#define Natts_es_erasures					8

/*
 * Documented limits (README, "Limits").
 */
#define ES_MAX_STREAM_NAME_BYTES	1000
#define ES_MAX_TYPE_BYTES			500
#define ES_MAX_APPEND_EVENTS		10000
/* feed reads: rows per call, types per filter, members per consumer group */
#define ES_MAX_FEED_COUNT			10000
#define ES_MAX_FEED_TYPES			100
#define ES_MAX_CONSUMER_SIZE		1024

/*
 * positions run from 1 to 2^62 - 1, 4611686018427387903 (far below where the
 * counter would wrap)
 */
#define ES_MAX_POSITION				(PG_INT64_MAX / 2)

/* this process's index in the PGPROC array */
#if PG_VERSION_NUM >= 170000
#define ES_MY_PROCNO		MyProcNumber
#else
#define ES_MY_PROCNO		(MyProc->pgprocno)
#endif

/*
 * SQLSTATE of a wrong expected version: class V0 is event_store's own
 * (implementation-defined classes start with 5-9 or I-Z).
 */
#define ERRCODE_ES_WRONG_EXPECTED_VERSION	MAKE_SQLSTATE('V','0','0','0','1')
/* the stream was erased (hard deleted): its name can never be used again */
#define ERRCODE_ES_STREAM_ERASED			MAKE_SQLSTATE('V','0','0','0','4')

/* lock tag field 4 of the stream creation lock in pg_locks ("ES") */
#define ES_LOCKTAG_STREAM			0x4553

/* GUCs (event_store.c) */
extern int	es_max_event_size;
extern int	es_notify_min_interval;
extern int	es_max_databases;
extern int	es_read_mem;
extern int	es_notifier_idle_timeout;

/*
 * es_catalog.c: OIDs of the extension's objects, looked up once per backend
 * and forgotten when a relcache invalidation touches one of the tables.
 */
typedef struct EsCatalog
{
	Oid			namespace;
	Oid			events;
	Oid			events_pkey;		/* (position) */
	Oid			events_stream_version;	/* (stream, version) */
	Oid			events_event_id;	/* (event_id) */
	Oid			events_type_position;	/* (type, position) */
	Oid			events_category_position;	/* (es_category(stream), position) */
	Oid			streams;
	Oid			streams_pkey;		/* (id) */
	Oid			streams_name;		/* (name) */
	Oid			streams_id_seq;
	Oid			streams_with_metadata;	/* partial (name): streams with rules */
	Oid			snapshots;
	Oid			snapshots_pkey;		/* (stream) */
	Oid			upcasters;
	Oid			upcasters_pkey;	/* (type, from_schema_version) */
	Oid			erasures;
	Oid			erasures_pkey;		/* (stream) */
	Oid			event_type;			/* composite es_event */
	Oid			upcast_type;		/* composite es_upcast */
} EsCatalog;

extern const EsCatalog *es_catalog(void);
extern const EsCatalog *es_catalog_if_installed(void);
extern void es_require_privilege(Oid relid, AclMode mode);
extern Relation es_table_open(Oid relid, LOCKMODE lockmode);

/* es_shmem.c: the position register */
extern void es_shmem_init_hooks(void);
extern bool es_shmem_ready(void);
extern void es_require_preload(void);
extern int64 es_allocate_positions(const EsCatalog *cat, int64 count);
extern void es_claim_position(const EsCatalog *cat, int64 position);
extern int64 es_safe_horizon(const EsCatalog *cat);
extern void es_reset_database(Oid dbid);
extern void es_forget_database(Oid dbid);
extern void es_registry_commit_begin(void);
extern void es_registry_commit_end(void);
extern bool es_registry_committing(void);

/* per-database state shared with the notifier (es_shmem.c) */
typedef struct EsDatabase EsDatabase;
extern EsDatabase *es_database_entry(Oid dbid, bool create);
extern int64 es_notifier_attach(EsDatabase *db);
extern bool es_notifier_begin_look(EsDatabase *db);
extern void es_notifier_detach(EsDatabase *db);
extern bool es_notifier_leave_if_idle(EsDatabase *db);
extern bool es_positions_held(EsDatabase *db);
extern int64 es_notifier_progress(EsDatabase *db, uint64 *generation);
extern void es_notifier_set_progress(EsDatabase *db, int64 upto, uint64 generation);
extern void es_notifier_stop(Oid dbid);

/* es_notify.c */
extern bool es_notifier_launch(Oid dbid);
extern PGDLLEXPORT void es_notifier_main(Datum main_arg);

/* es_stream.c: the streams table, whose rows serialize writers */
typedef struct EsStream
{
	bool		exists;
	int64		id;
	int64		version;
	TimestampTz last_created;	/* updated_at: created_at of its last append */
	ItemPointerData tid;
	HeapTuple	tuple;			/* copy of the current row, if exists */
	TransactionId wait_xid;		/* an open transaction writing the row */
} EsStream;

extern uint64 es_name_hash(text *name);
extern bool es_same_name(text *a, text *b);
extern void es_validate_stream_name(text *name);
extern void es_validate_type(text *type);
extern text *es_category_of(text *name);
extern void es_stream_fetch(Relation streams, Relation name_index, text *name,
							EsStream *stream);
extern void es_stream_fetch_settled(Relation streams, Relation name_index,
									text *name, EsStream *stream);
extern bool es_stream_is_ours(EsStream *stream);
extern TimestampTz es_stream_next_created(const EsStream *stream);
extern bool es_stream_create(const EsCatalog *cat, Relation streams,
							 Relation name_index, text *name, EsStream *stream,
							 int64 version);
extern bool es_stream_update(Relation streams, text *name, EsStream *stream,
							 int64 new_version);
extern bool es_stream_rewrite(Relation streams, text *name, EsStream *stream,
							  Jsonb *metadata, bool erase);
extern bool es_stream_erased(Relation streams, EsStream *stream);
extern void es_refuse_erased(text *name);
extern void es_held_drop(text *name);
extern void es_raise_wrong_version(text *name, int64 expected, int64 actual);

/* es_trigger.c */
extern TriggerData *es_trigger_data(FunctionCallInfo fcinfo, TriggerEvent when,
									TriggerEvent level, const char *function);
extern bool es_plain_inserts_in_xact(void);
extern int64 es_max_stored_version(const EsCatalog *cat, text *stream);

/* es_read.c */
extern int64 es_readable_head(const EsCatalog *cat);
extern bool es_head_known(const EsCatalog *cat);
extern int64 es_newest_position(const EsCatalog *cat, Snapshot snapshot, int64 below);
extern Tuplestorestate *es_begin_srf(FunctionCallInfo fcinfo, TupleDesc *desc);
extern void es_check_event_desc(TupleDesc result, Relation rel);

/*
 * es_lifecycle.c: what every read path returns.  An emitter puts the rows of
 * one read into its tuplestore, leaving out the events that the stream's
 * metadata hides (truncate_before, max_count, max_age) and upcasting the
 * others to the newest schema version of their type, all as the read's
 * snapshot sees them.
 */
typedef struct EsRules
{
	int64		truncate_before;	/* 0: none */
	int64		max_count;		/* 0: none */
	int64		max_age;		/* seconds; 0: none */
	bool		deleted;		/* soft deleted once (deleted_at) */
} EsRules;

/* a stream's row, as one snapshot sees it */
typedef struct EsStreamView
{
	bool		exists;
	int64		version;
	bool		erased;
	TimestampTz last_created;	/* created_at of its last append */
	bool		has_rules;
	EsRules		rules;
	Jsonb	   *metadata;		/* a copy, if asked for */
} EsStreamView;

typedef struct EsEmitter
{
	const EsCatalog *cat;
	Tuplestorestate *store;
	TupleDesc	desc;
	Snapshot	snapshot;		/* the read's */
	bool		rules;			/* some stream may have rules */
	bool		upcasting;		/* some type may have upcasters */
	TimestampTz now;
	struct HTAB *views;			/* streams with rules, as the snapshot sees them */
	struct HTAB *steps;			/* upcasters, as the snapshot sees them */
	bool		exact;			/* look up every stream and type: the supersets
								 * may miss a change that is committing */
	MemoryContext cxt;			/* per-read memory */
	MemoryContext row_cxt;		/* per-row memory of upcasting */
} EsEmitter;

extern void es_emitter_init(EsEmitter *em, const EsCatalog *cat,
							Tuplestorestate *store, TupleDesc desc,
							Snapshot snapshot);
extern bool es_emit(EsEmitter *em, TupleTableSlot *slot);
extern void es_emitter_end(EsEmitter *em);
extern bool es_stream_view(const EsCatalog *cat, Snapshot snapshot, text *name,
						   EsStreamView *view, bool want_metadata);
extern bool es_view_hides(const EsStreamView *view, int64 version,
						  TimestampTz created_at, TimestampTz now);
extern int64 es_snapshot_floor(int64 truncate_before, bool deleted);
extern int	es_upcaster_shape(const EsCatalog *cat, Oid fn, Oid *owner);
extern void es_check_upcaster(const EsCatalog *cat, Oid fn);
extern void es_registry_touch(const EsCatalog *cat, Oid relid);

/* es_append.c */
typedef struct EsNewEvent
{
	text	   *type;
	Jsonb	   *data;
	Jsonb	   *metadata;		/* NULL when absent */
	pg_uuid_t	id;
	bool		id_given;
	int32		schema_version;
} EsNewEvent;

extern void es_check_event_size(int index, const EsNewEvent *ev);

/* es_util.c */
typedef struct EsInserter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
} EsInserter;

extern void es_generate_uuid(pg_uuid_t *uuid);
extern void es_inserter_open(EsInserter *ins, Relation rel);
extern void es_inserter_index(EsInserter *ins, TupleTableSlot *slot,
							  bool only_summarizing);
extern void es_inserter_close(EsInserter *ins);
extern Jsonb *es_empty_object(void);
extern bool es_numeric_is_whole(Numeric num);
extern bool es_numeric_in_range(Numeric num, int64 min, int64 max);
extern struct HTAB *es_name_hash_table(const char *tabname, Size entrysize,
									   MemoryContext cxt);

#endif							/* EVENT_STORE_H */
