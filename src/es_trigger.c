/*-------------------------------------------------------------------------
 *
 * es_trigger.c
 *	  Triggers of the extension's tables.
 *
 * es_events_before_insert numbers a plain INSERT INTO event_store.events
 * exactly like es_append: it claims the stream, checks a given version
 * (or assigns the next one), and takes a position from the register (or
 * claims a given one, for the table owner only, that is not below the next
 * free position).  es_events_after_statement then moves the streams' rows
 * for the rows that were really inserted, once per stream and statement.
 * So versions stay 1..N without gap or duplicate under any mix of writers.
 *
 * es_refuse_change refuses UPDATE, DELETE and TRUNCATE of events, and of
 * streams, whose rows only the extension's functions maintain.  Those
 * triggers are ENABLE ALWAYS, so they fire for replication-role sessions
 * too.
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
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"

/*
 * The highest version stored for the stream (0 if none), seen with
 * SnapshotSelf.  The caller has claimed the stream.
 */
int64
es_max_stored_version(const EsCatalog *cat, text *stream)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = index_open(cat->events_stream_version, AccessShareLock);
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	int64		result = 0;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ,
						   PointerGetDatum(stream));
	scan = index_beginscan(rel, idx, SnapshotSelf, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		result = DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

static void
es_require_not_null(const bool *nulls, int attnum, const char *column)
{
	if (nulls[attnum - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of relation \"events\" violates not-null constraint",
						column)));
}

/*
 * The trigger data of a C trigger function, after checking that it was
 * fired as intended: when is TRIGGER_EVENT_BEFORE or _AFTER, level
 * TRIGGER_EVENT_ROW or 0 for a statement trigger; all of them fire on INSERT.
 */
TriggerData *
es_trigger_data(FunctionCallInfo fcinfo, TriggerEvent when, TriggerEvent level,
				const char *function)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		(trigdata->tg_event & TRIGGER_EVENT_TIMINGMASK) != when ||
		(trigdata->tg_event & TRIGGER_EVENT_ROW) != level ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be fired %s INSERT%s", function,
						when == TRIGGER_EVENT_BEFORE ? "before" : "after",
						level == TRIGGER_EVENT_ROW ? " for each row" : "")));
	if (RelationGetRelid(trigdata->tg_relation) != es_catalog()->events)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s only works on table \"%s.events\"", function,
						ES_SCHEMA_NAME)));
	return trigdata;
}

/*
 * Streams whose row the numbering trigger created (at version 0) in this
 * transaction: those that got no event (the row was skipped, e.g. by ON
 * CONFLICT DO NOTHING) are dropped again before commit.  (Not at the end of
 * each statement: a statement nested in another, run by a user's trigger,
 * would drop the outer one's new streams before their rows are in.)  And
 * whether this transaction inserted events by plain INSERT at all: then the
 * streams rows may lag behind the stored events until the end of the
 * statement, and es_append counts from the stored events too.  Both are
 * forgotten at the end of the transaction; the streams created in a
 * subtransaction that rolls back are forgotten with it.
 */
typedef struct EsCreatedStream
{
	text	   *name;
	ItemPointerData tid;		/* the row version the trigger inserted */
	SubTransactionId subid;
} EsCreatedStream;

static List *es_created_streams = NIL;	/* in TopTransactionContext */
static bool es_plain_inserts = false;
static bool es_trigger_callback_registered = false;

/*
 * Drop the row the trigger created for a stream that got no event, if it is
 * still exactly that row: the version it inserted (not rewritten since, as
 * es_erase_stream or es_set_stream_metadata would), not locked (a foreign
 * key check of a row referencing it, e.g. a snapshot, locks it), at version
 * 0 with no stored event.  Anything else keeps it, an empty stream.
 */
static void
es_drop_empty_streams(void)
{
	const EsCatalog *cat = es_catalog_if_installed();
	Relation	streams;
	Relation	name_index;
	ListCell   *lc;

	if (cat == NULL)
		return;					/* the extension was dropped meanwhile */
	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);
	foreach(lc, es_created_streams)
	{
		EsCreatedStream *created = (EsCreatedStream *) lfirst(lc);
		EsStream	st;

		es_stream_fetch(streams, name_index, created->name, &st);
		if (es_stream_is_ours(&st) && st.version == 0 &&
			ItemPointerEquals(&st.tid, &created->tid) &&
			(st.tuple->t_data->t_infomask & HEAP_XMAX_INVALID ||
			 !TransactionIdIsValid(HeapTupleHeaderGetRawXmax(st.tuple->t_data))) &&
			es_max_stored_version(cat, created->name) == 0)
		{
			simple_heap_delete(streams, &st.tid);
			es_held_drop(created->name);
			CommandCounterIncrement();
		}
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	es_created_streams = NIL;
}

static void
es_trigger_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (es_created_streams != NIL)
				es_drop_empty_streams();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			es_created_streams = NIL;	/* was in TopTransactionContext */
			es_plain_inserts = false;
			break;
		default:
			break;
	}
}

static void
es_trigger_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
			foreach(lc, es_created_streams)
			{
				EsCreatedStream *created = (EsCreatedStream *) lfirst(lc);

				if (created->subid >= mySubid)
				{
					es_created_streams = foreach_delete_current(es_created_streams, lc);
					pfree(created->name);
					pfree(created);
				}
			}
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			foreach(lc, es_created_streams)
			{
				EsCreatedStream *created = (EsCreatedStream *) lfirst(lc);

				if (created->subid == mySubid)
					created->subid = parentSubid;
			}
			break;
		default:
			break;
	}
}

bool
es_plain_inserts_in_xact(void)
{
	return es_plain_inserts;
}

/*
 * Claim the stream for this transaction without moving its version (see
 * es_stream.c): create its row at version 0, or rewrite its row, unless
 * this transaction wrote it already.
 */
static void
es_claim_stream(const EsCatalog *cat, text *stream, EsStream *claimed)
{
	Relation	streams = es_table_open(cat->streams, RowExclusiveLock);
	Relation	name_index = index_open(cat->streams_name, AccessShareLock);
	EsStream	st;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_stream_fetch_settled(streams, name_index, stream, &st);
		if (es_stream_erased(streams, &st))
			es_refuse_erased(stream);
		if (es_stream_is_ours(&st))
			break;
		if (st.exists)
		{
			if (es_stream_update(streams, stream, &st, st.version))
				break;
		}
		else if (es_stream_create(cat, streams, name_index, stream, &st, 0))
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
			EsCreatedStream *created = palloc(sizeof(EsCreatedStream));

			created->name = DatumGetTextPCopy(PointerGetDatum(stream));
			created->tid = st.tid;
			created->subid = GetCurrentSubTransactionId();
			es_created_streams = lappend(es_created_streams, created);
			MemoryContextSwitchTo(old);
			break;
		}
	}
	*claimed = st;
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
}

PG_FUNCTION_INFO_V1(es_events_before_insert);
Datum
es_events_before_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = es_trigger_data(fcinfo, TRIGGER_EVENT_BEFORE,
											TRIGGER_EVENT_ROW,
											"es_events_before_insert");
	const EsCatalog *cat;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum		values[Natts_es_events];
	bool		nulls[Natts_es_events];
	bool		replace[Natts_es_events];
	text	   *stream;
	EsNewEvent	ev;
	int64		current;
	int64		version;
	int64		position;
	EsStream	claimed;

	cat = es_catalog();
	memset(replace, false, sizeof(replace));

	desc = RelationGetDescr(trigdata->tg_relation);
	tuple = trigdata->tg_trigtuple;
	heap_deform_tuple(tuple, desc, values, nulls);

	es_require_not_null(nulls, Anum_es_events_stream, "stream");
	es_require_not_null(nulls, Anum_es_events_type, "type");
	es_require_not_null(nulls, Anum_es_events_data, "data");
	es_require_not_null(nulls, Anum_es_events_event_id, "event_id");
	es_require_not_null(nulls, Anum_es_events_schema_version, "schema_version");
	if (!nulls[Anum_es_events_version - 1] &&
		DatumGetInt64(values[Anum_es_events_version - 1]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be at least 1"),
				 errhint("Leave the version column out and the next one is assigned.")));
	if (DatumGetInt32(values[Anum_es_events_schema_version - 1]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("schema_version must be between 1 and %d", PG_INT32_MAX)));

	stream = DatumGetTextPP(values[Anum_es_events_stream - 1]);
	es_validate_stream_name(stream);
	memset(&ev, 0, sizeof(ev));
	ev.type = DatumGetTextPP(values[Anum_es_events_type - 1]);
	es_validate_type(ev.type);
	ev.data = DatumGetJsonbP(values[Anum_es_events_data - 1]);
	if (!nulls[Anum_es_events_metadata - 1])
	{
		Jsonb	   *md = DatumGetJsonbP(values[Anum_es_events_metadata - 1]);

		if (!JB_ROOT_IS_OBJECT(md) || JB_ROOT_IS_SCALAR(md))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event metadata must be a JSON object")));
		ev.metadata = md;
	}
	es_check_event_size(0, &ev);

	/*
	 * Number from the highest stored version, not from streams.version: the
	 * streams row only moves in the AFTER trigger, for rows really inserted
	 * (a row skipped by ON CONFLICT DO NOTHING, or by a later BEFORE
	 * trigger, must not leave a gap), and a restore may load the streams
	 * table before the events.
	 */
	if (!es_trigger_callback_registered)
	{
		RegisterXactCallback(es_trigger_xact_callback, NULL);
		RegisterSubXactCallback(es_trigger_subxact_callback, NULL);
		es_trigger_callback_registered = true;
	}
	es_plain_inserts = true;
	es_claim_stream(cat, stream, &claimed);
	current = es_max_stored_version(cat, stream);

	if (nulls[Anum_es_events_version - 1])
		version = current + 1;
	else
	{
		version = DatumGetInt64(values[Anum_es_events_version - 1]);
		if (version != current + 1)
			es_raise_wrong_version(stream, version - 1, current);
	}

	/*
	 * created_at is the start of the appending transaction (the column's
	 * default), or the created_at of the stream's last append if that is
	 * later, as for es_append; only the owner (a restore) may give another
	 * time, or the log could claim an event happened when it did not.
	 */
	if (nulls[Anum_es_events_created_at - 1])
		;						/* the NOT NULL constraint says so */
	else if (DatumGetTimestampTz(values[Anum_es_events_created_at - 1]) ==
			 GetCurrentTransactionStartTimestamp())
	{
		/* never before the stream's last append, as with es_append */
		values[Anum_es_events_created_at - 1] =
			TimestampTzGetDatum(es_stream_next_created(&claimed));
		replace[Anum_es_events_created_at - 1] = true;
	}
	else if (!has_privs_of_role(GetUserId(), trigdata->tg_relation->rd_rel->relowner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the owner of \"%s.events\" may give created_at",
						ES_SCHEMA_NAME),
				 errhint("Leave the created_at column out and it is the start of the transaction.")));

	if (nulls[Anum_es_events_position - 1])
		position = es_allocate_positions(cat, 1);
	else
	{
		/*
		 * Only the owner (a restore) may give positions: a position far
		 * ahead would push every later event there.
		 */
		if (!has_privs_of_role(GetUserId(),
							   trigdata->tg_relation->rd_rel->relowner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of \"%s.events\" may give positions",
							ES_SCHEMA_NAME),
					 errhint("Leave the position column out and it is assigned.")));
		position = DatumGetInt64(values[Anum_es_events_position - 1]);
		es_claim_position(cat, position);
	}

	values[Anum_es_events_version - 1] = Int64GetDatum(version);
	nulls[Anum_es_events_version - 1] = false;
	replace[Anum_es_events_version - 1] = true;
	values[Anum_es_events_position - 1] = Int64GetDatum(position);
	nulls[Anum_es_events_position - 1] = false;
	replace[Anum_es_events_position - 1] = true;

	return PointerGetDatum(heap_modify_tuple(tuple, desc, values, nulls, replace));
}

/*
 * Move the stream's row up to version, unless it is there already.  This
 * transaction holds the stream (the BEFORE trigger claimed it).
 */
static void
es_stream_move_up(const EsCatalog *cat, Relation streams, Relation name_index,
				  text *stream, int64 version)
{
	EsStream	st;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_stream_fetch_settled(streams, name_index, stream, &st);
		if (st.exists && st.version >= version)
			return;
		if (st.exists ?
			es_stream_update(streams, stream, &st, version) :
			es_stream_create(cat, streams, name_index, stream, &st, version))
			return;
	}
}

/* highest version inserted per stream by a statement */
typedef struct EsInsertedMax
{
	uint64		hash;			/* hash key */
	text	   *stream;
	int64		version;
} EsInsertedMax;

/*
 * After each INSERT statement (REFERENCING NEW TABLE): move each stream's
 * row up to the highest version the statement inserted, once per stream.
 * The BEFORE trigger claimed those streams, so this transaction holds them.  A row restored
 * under a streams row that already counts it (the streams table is
 * restored first) leaves the version alone.
 */
PG_FUNCTION_INFO_V1(es_events_after_statement);
Datum
es_events_after_statement(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = es_trigger_data(fcinfo, TRIGGER_EVENT_AFTER, 0,
											"es_events_after_statement");
	const EsCatalog *cat = es_catalog();
	Tuplestorestate *inserted = trigdata->tg_newtable;
	Relation	streams;
	Relation	name_index;

	if (inserted == NULL || tuplestore_tuple_count(inserted) == 0)
		return PointerGetDatum(NULL);

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = index_open(cat->streams_name, AccessShareLock);

	if (inserted != NULL && tuplestore_tuple_count(inserted) > 0)
	{
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		HTAB	   *maxima = es_name_hash_table("event_store inserted streams",
												sizeof(EsInsertedMax),
												CurrentMemoryContext);
		HASH_SEQ_STATUS seq;
		EsInsertedMax *entry;

		tuplestore_rescan(inserted);
		while (tuplestore_gettupleslot(inserted, true, false, slot))
		{
			bool		isnull;
			text	   *stream = DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream, &isnull));
			int64		version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull));
			uint64		hash = es_name_hash(stream);
			bool		found;

			entry = hash_search(maxima, &hash, HASH_ENTER, &found);
			if (found && !es_same_name(entry->stream, stream))
			{
				/* another name with the same hash: move this one now */
				es_stream_move_up(cat, streams, name_index, stream, version);
				continue;
			}
			if (!found)
			{
				entry->stream = DatumGetTextPCopy(PointerGetDatum(stream));
				entry->version = version;
			}
			else if (version > entry->version)
				entry->version = version;
		}
		ExecDropSingleTupleTableSlot(slot);

		hash_seq_init(&seq, maxima);
		while ((entry = hash_seq_search(&seq)) != NULL)
			es_stream_move_up(cat, streams, name_index, entry->stream, entry->version);
		hash_destroy(maxima);
	}


	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(es_refuse_change);
Datum
es_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;
	const char *relname;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_refuse_change must be called as a trigger")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		op = "TRUNCATE";
	else
		op = "INSERT";
	relname = RelationGetRelationName(trigdata->tg_relation);

	if (strcmp(relname, "events") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("events are immutable"),
				 errdetail("%s of \"%s.events\" is refused for every role.",
						   op, ES_SCHEMA_NAME),
				 errhint("Append a compensating event instead.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s of \"%s.%s\" is refused", op, ES_SCHEMA_NAME, relname),
			 errdetail("The rows of this table are maintained by the functions of event_store.")));
	PG_RETURN_NULL();
}
