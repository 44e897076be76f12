/*-------------------------------------------------------------------------
 *
 * es_trigger.c
 *	  Layer 4, entry points: the triggers of the events and streams tables.
 *
 * es_events_before_insert numbers a plain INSERT INTO event_store.events
 * exactly like es_append: it claims the stream, checks a given version
 * (or assigns the next one), and takes a position from the register (or
 * claims a given one, for the table owner only, that is not below the next
 * free position).  es_events_after_statement then moves the streams' rows
 * for the rows that were really inserted, once per stream and statement.
 * So versions stay 1..N without gap or duplicate under any mix of writers.
 * Streams whose row the trigger created but that got no event are dropped
 * before commit (es_trigger_pre_commit, called by event_store.c's
 * transaction callback).
 *
 * es_refuse_change refuses UPDATE, DELETE and TRUNCATE of events, and of
 * streams, whose rows only the extension's functions maintain.  Those
 * triggers are ENABLE ALWAYS, so they fire for replication-role sessions
 * too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_events.h"
#include "es_register.h"
#include "es_stream.h"
#include "es_trigger.h"
#include "es_util.h"
#include "es_validate.h"

/*
 * The trigger data of the numbering triggers of event_store.events, after
 * checking that they were fired as intended: es_events_before_insert before
 * INSERT for each row, es_events_after_statement after INSERT for each
 * statement.
 */
static TriggerData *
es_trigger_data(FunctionCallInfo fcinfo, const EsCatalog *cat, bool before_row)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (before_row &&
		(!CALLED_AS_TRIGGER(fcinfo) ||
		 !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		 !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		 !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_events_before_insert must be fired before INSERT for each row")));
	if (!before_row &&
		(!CALLED_AS_TRIGGER(fcinfo) ||
		 !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		 !TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		 !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_events_after_statement must be fired after INSERT for each statement")));
	if (RelationGetRelid(trigdata->tg_relation) != cat->events)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger function %s only works on table \"%s.events\"",
						before_row ? "es_events_before_insert" : "es_events_after_statement",
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

/*
 * Drop the row the trigger created for a stream that got no event, if it is
 * still exactly that row: the version it inserted (not rewritten since, as
 * es_erase_stream or es_set_stream_metadata would), not locked (a foreign
 * key check of a row referencing it, e.g. a snapshot, locks it), at version
 * 0 with no stored event.  Anything else keeps it, an empty stream.
 */
void
es_trigger_pre_commit(void)
{
	const EsCatalog *cat;
	Relation	streams;
	Relation	name_index;
	ListCell   *lc;

	if (es_created_streams == NIL)
		return;
	cat = es_catalog_if_installed();
	if (cat == NULL)
	{
		es_created_streams = NIL;
		return;					/* the extension was dropped meanwhile */
	}
	/*
	 * Before commit no snapshot is active; heap_delete needs one (for the
	 * TOAST of the row), as deferred triggers do at this point.
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = es_index_open(cat->streams_name, AccessShareLock);
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
	PopActiveSnapshot();
	es_created_streams = NIL;
}

/* the end of the transaction: the list was in TopTransactionContext */
void
es_trigger_xact_end(void)
{
	es_created_streams = NIL;
}

/*
 * A subtransaction that rolls back forgets the streams it created (their
 * rows are gone with it); one that commits hands them to its parent.
 */
void
es_trigger_subxact_end(bool committed, SubTransactionId mySubid,
					   SubTransactionId parentSubid)
{
	ListCell   *lc;

	foreach(lc, es_created_streams)
	{
		EsCreatedStream *created = (EsCreatedStream *) lfirst(lc);

		if (!committed && created->subid >= mySubid)
		{
			es_created_streams = foreach_delete_current(es_created_streams, lc);
			pfree(created->name);
			pfree(created);
		}
		else if (committed && created->subid == mySubid)
			created->subid = parentSubid;
	}
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
	Relation	name_index = es_index_open(cat->streams_name, AccessShareLock);
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

/* a row being inserted into event_store.events, deformed */
typedef struct EsInsertRow
{
	Relation	rel;
	Datum		values[Natts_es_events];
	bool		nulls[Natts_es_events];
	bool		replace[Natts_es_events];
} EsInsertRow;

static void
es_require_not_null(EsInsertRow *row, int attnum, const char *column)
{
	if (row->nulls[attnum - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"%s\" of relation \"events\" violates not-null constraint",
						column)));
}

/* Is the current role a member of the events table's owner (a restore)? */
static bool
es_is_events_owner(EsInsertRow *row)
{
	return has_privs_of_role(GetUserId(), row->rel->rd_rel->relowner);
}

/*
 * es_events_before_insert step 1: the row holds what es_append would
 * accept.
 */
static void
es_insert_check_row(EsInsertRow *row)
{
	Jsonb	   *metadata = NULL;

	es_require_not_null(row, Anum_es_events_stream, "stream");
	es_require_not_null(row, Anum_es_events_type, "type");
	es_require_not_null(row, Anum_es_events_data, "data");
	es_require_not_null(row, Anum_es_events_event_id, "event_id");
	es_require_not_null(row, Anum_es_events_schema_version, "schema_version");
	if (!row->nulls[Anum_es_events_version - 1] &&
		DatumGetInt64(row->values[Anum_es_events_version - 1]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be at least 1"),
				 errhint("Leave the version column out and the next one is assigned.")));
	es_validate_schema_version(DatumGetInt32(row->values[Anum_es_events_schema_version - 1]),
							   "schema_version", PG_INT32_MAX);
	es_validate_stream_name(DatumGetTextPP(row->values[Anum_es_events_stream - 1]));
	es_validate_type(DatumGetTextPP(row->values[Anum_es_events_type - 1]));
	if (!row->nulls[Anum_es_events_metadata - 1])
		metadata = es_event_metadata(DatumGetJsonbP(row->values[Anum_es_events_metadata - 1]),
									 false);
	es_validate_event_size(0, DatumGetTextPP(row->values[Anum_es_events_type - 1]),
						   DatumGetJsonbP(row->values[Anum_es_events_data - 1]),
						   metadata);
}

/*
 * es_events_before_insert step 3: the version, numbered from the highest
 * stored version, not from streams.version: the streams row only moves in
 * the AFTER trigger, for rows really inserted (a row skipped by ON CONFLICT
 * DO NOTHING, or by a later BEFORE trigger, must not leave a gap), and a
 * restore may load the streams table before the events.
 */
static void
es_insert_version(const EsCatalog *cat, EsInsertRow *row, text *stream)
{
	int64		current = es_max_stored_version(cat, stream);
	int64		version;

	if (row->nulls[Anum_es_events_version - 1])
		version = current + 1;
	else
	{
		version = DatumGetInt64(row->values[Anum_es_events_version - 1]);
		if (version != current + 1)
			es_raise_wrong_version(stream, version - 1, current);
	}
	row->values[Anum_es_events_version - 1] = Int64GetDatum(version);
	row->nulls[Anum_es_events_version - 1] = false;
	row->replace[Anum_es_events_version - 1] = true;
}

/*
 * es_events_before_insert step 4: created_at is the start of the appending
 * transaction (the column's default), or the created_at of the stream's
 * last append if that is later, as for es_append; only the owner (a
 * restore) may give another time, or the log could claim an event happened
 * when it did not.
 */
static void
es_insert_created_at(EsInsertRow *row, EsStream *claimed)
{
	if (row->nulls[Anum_es_events_created_at - 1])
		return;					/* the NOT NULL constraint says so */
	if (DatumGetTimestampTz(row->values[Anum_es_events_created_at - 1]) ==
		GetCurrentTransactionStartTimestamp())
	{
		row->values[Anum_es_events_created_at - 1] =
			TimestampTzGetDatum(es_stream_next_created(claimed));
		row->replace[Anum_es_events_created_at - 1] = true;
	}
	else if (!es_is_events_owner(row))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the owner of \"%s.events\" may give created_at",
						ES_SCHEMA_NAME),
				 errhint("Leave the created_at column out and it is the start of the transaction.")));
}

/*
 * es_events_before_insert step 5: the position, taken from the register;
 * only the owner (a restore) may give one, which the register claims: a
 * position far ahead would push every later event there.
 */
static void
es_insert_position(const EsCatalog *cat, EsInsertRow *row)
{
	EsDatabase *db = es_positions_ready(cat);
	int64		position;

	if (row->nulls[Anum_es_events_position - 1])
		position = es_allocate_positions(db, 1);
	else
	{
		if (!es_is_events_owner(row))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only the owner of \"%s.events\" may give positions",
							ES_SCHEMA_NAME),
					 errhint("Leave the position column out and it is assigned.")));
		position = DatumGetInt64(row->values[Anum_es_events_position - 1]);
		es_claim_position(db, position);
	}
	row->values[Anum_es_events_position - 1] = Int64GetDatum(position);
	row->nulls[Anum_es_events_position - 1] = false;
	row->replace[Anum_es_events_position - 1] = true;
}

/*
 * BEFORE INSERT FOR EACH ROW on event_store.events: number a plain INSERT
 * as es_append would, in steps.
 */
PG_FUNCTION_INFO_V1(es_events_before_insert);
Datum
es_events_before_insert(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	TriggerData *trigdata = es_trigger_data(fcinfo, cat, true);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	tuple = trigdata->tg_trigtuple;
	EsInsertRow row;
	text	   *stream;
	EsStream	claimed;

	row.rel = trigdata->tg_relation;
	heap_deform_tuple(tuple, desc, row.values, row.nulls);
	memset(row.replace, false, sizeof(row.replace));

	es_insert_check_row(&row);
	stream = DatumGetTextPP(row.values[Anum_es_events_stream - 1]);

	/* step 2: hold the stream; the end of the statement moves its row */
	es_stream_plain_inserts();
	es_claim_stream(cat, stream, &claimed);

	es_insert_version(cat, &row, stream);
	es_insert_created_at(&row, &claimed);
	es_insert_position(cat, &row);

	return PointerGetDatum(heap_modify_tuple(tuple, desc, row.values, row.nulls,
											 row.replace));
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
	const EsCatalog *cat = es_ready();
	TriggerData *trigdata = es_trigger_data(fcinfo, cat, false);
	Tuplestorestate *inserted = trigdata->tg_newtable;
	Relation	streams;
	Relation	name_index;

	if (inserted == NULL || tuplestore_tuple_count(inserted) == 0)
		return PointerGetDatum(NULL);

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = es_index_open(cat->streams_name, AccessShareLock);

	if (inserted != NULL && tuplestore_tuple_count(inserted) > 0)
	{
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		HTAB	   *maxima = es_name_hash_table("event_store inserted streams",
												sizeof(EsInsertedMax),
												CurrentMemoryContext);
		HASH_SEQ_STATUS seq;
		EsInsertedMax *entry;
		uint64		bytes = 0;

		tuplestore_rescan(inserted);
		while (tuplestore_gettupleslot(inserted, true, false, slot))
		{
			bool		isnull;
			text	   *stream = DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream, &isnull));
			int64		version = DatumGetInt64(slot_getattr(slot, Anum_es_events_version, &isnull));
			uint64		hash = es_name_hash(stream);
			bool		found;
			Datum		metadata;

			/* counted as es_append counts: the data's and metadata's sizes */
			bytes += toast_raw_datum_size(slot_getattr(slot, Anum_es_events_data, &isnull));
			metadata = slot_getattr(slot, Anum_es_events_metadata, &isnull);
			if (!isnull)
				bytes += toast_raw_datum_size(metadata);

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
		es_stats_pending(ES_STAT_EVENTS, tuplestore_tuple_count(inserted));
		es_stats_pending(ES_STAT_BYTES, bytes);

		hash_seq_init(&seq, maxima);
		while ((entry = hash_seq_search(&seq)) != NULL)
			es_stream_move_up(cat, streams, name_index, entry->stream, entry->version);
		hash_destroy(maxima);
	}


	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	return PointerGetDatum(NULL);
}

/*
 * Triggers on event_store.events (UPDATE, DELETE, TRUNCATE) and
 * event_store.streams (INSERT, UPDATE, DELETE, TRUNCATE of rows by
 * anybody but the extension's functions): refuse the change.
 */
PG_FUNCTION_INFO_V1(es_refuse_change);
Datum
es_refuse_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = es_trigger_call(fcinfo, "es_refuse_change");
	const char *relname;
	TriggerEvent event;

	relname = RelationGetRelationName(trigdata->tg_relation);
	event = trigdata->tg_event & TRIGGER_EVENT_OPMASK;

	if (RelationGetRelid(trigdata->tg_relation) == es_ready()->events)
	{
		if (event == TRIGGER_EVENT_UPDATE)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("events are immutable"),
					 errdetail("UPDATE of \"%s.events\" is refused for every role.",
							   ES_SCHEMA_NAME),
					 errhint("Append a compensating event instead.")));
		if (event == TRIGGER_EVENT_DELETE)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("events are immutable"),
					 errdetail("DELETE of \"%s.events\" is refused for every role.",
							   ES_SCHEMA_NAME),
					 errhint("Append a compensating event instead.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("events are immutable"),
				 errdetail("TRUNCATE of \"%s.events\" is refused for every role.",
						   ES_SCHEMA_NAME),
				 errhint("Append a compensating event instead.")));
	}
	switch (event)
	{
		case TRIGGER_EVENT_INSERT:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot insert into table \"%s.%s\"", ES_SCHEMA_NAME, relname),
					 errdetail("The rows of this table are maintained by the functions of event_store.")));
			break;
		case TRIGGER_EVENT_UPDATE:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot update table \"%s.%s\"", ES_SCHEMA_NAME, relname),
					 errdetail("The rows of this table are maintained by the functions of event_store.")));
			break;
		case TRIGGER_EVENT_DELETE:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot delete from table \"%s.%s\"", ES_SCHEMA_NAME, relname),
					 errdetail("The rows of this table are maintained by the functions of event_store.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot truncate table \"%s.%s\"", ES_SCHEMA_NAME, relname),
					 errdetail("The rows of this table are maintained by the functions of event_store.")));
	}
	PG_RETURN_NULL();
}
