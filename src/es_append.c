/*-------------------------------------------------------------------------
 *
 * es_append.c
 *	  Layer 4, entry point: es_append, which appends events to a stream
 *	  with optimistic concurrency.
 *
 * The two SQL forms (a JSON array of events, or one event given as
 * arguments) are parsed into EsNewEvent structs and share one path,
 * es_append_events, in named steps:
 *
 *	es_append_claim		read the stream's row (waiting for an open
 *						transaction writing it), decide whether this is an
 *						idempotent retry (es_find_retry), check the expected
 *						version, and claim the stream by moving (or creating)
 *						its row at the new version (es_stream.c); if somebody
 *						got in between, start again;
 *	es_insert_events	take positions from the register and insert the
 *						events with the table AM, maintaining the indexes.
 *
 * The rows are written directly, not through INSERT: the numbering trigger
 * does not fire for them (this code does its work), nor do row triggers a
 * user adds to the events table.  Everything happens in the caller's
 * transaction, so an error anywhere (here or later in the transaction)
 * leaves nothing behind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_events.h"
#include "es_register.h"
#include "es_scan.h"
#include "es_stream.h"
#include "es_util.h"
#include "es_validate.h"

/* an event to append */
typedef struct EsNewEvent
{
	text	   *type;
	Jsonb	   *data;
	Jsonb	   *metadata;		/* NULL: none */
	pg_uuid_t	id;
	bool		id_given;
	int32		schema_version;
} EsNewEvent;

/* rows per table_multi_insert() call */
#define ES_INSERT_BATCH 100

typedef struct EsAppendResult
{
	int64		first_version;
	int64		last_version;
	int64		first_position;
	int64		last_position;
} EsAppendResult;

/* error context: which event of the append was being looked at */
typedef struct EsParseContext
{
	int			index;			/* 0-based */
} EsParseContext;

static void
es_parse_error_context(void *arg)
{
	EsParseContext *ctx = (EsParseContext *) arg;

	if (ctx->index >= 0)
		errcontext("event %d of the append", ctx->index + 1);
}

static void
es_uuid_from_string(const char *s, int len, pg_uuid_t *out)
{
	char	   *cstr = pnstrdup(s, len);
	pg_uuid_t  *u = DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(cstr)));

	memcpy(out, u, sizeof(pg_uuid_t));
}

/*
 * One event object: {type, data, metadata?, id?, schema_version?}.
 * Unknown keys are refused, so that a misspelt "metdata" is not dropped.
 */
static void
es_parse_event(JsonbContainer *obj, EsNewEvent *ev)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	key;
	JsonbValue	val;
	bool		have_type = false;
	bool		have_data = false;

	ev->schema_version = 1;
	ev->metadata = NULL;
	ev->id_given = false;

	while (es_jsonb_next_pair(&it, &key, &val))
	{
		char	   *k = key.val.string.val;
		int			klen = key.val.string.len;

		if (klen == 4 && memcmp(k, "type", 4) == 0)
		{
			if (val.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event type must be a string"),
						 errdetail("The type is a JSON %s.", es_jsonb_type_name(&val))));
			ev->type = cstring_to_text_with_len(val.val.string.val, val.val.string.len);
			es_validate_type(ev->type);
			have_type = true;
		}
		else if (klen == 4 && memcmp(k, "data", 4) == 0)
		{
			ev->data = JsonbValueToJsonb(&val);
			have_data = true;
		}
		else if (klen == 8 && memcmp(k, "metadata", 8) == 0)
			ev->metadata = es_event_metadata_value(&val);
		else if (klen == 2 && memcmp(k, "id", 2) == 0)
		{
			if (val.type == jbvNull)
				continue;
			if (val.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("event id must be a string holding a UUID"),
						 errdetail("The id is a JSON %s.", es_jsonb_type_name(&val))));
			es_uuid_from_string(val.val.string.val, val.val.string.len, &ev->id);
			ev->id_given = true;
		}
		else if (klen == 14 && memcmp(k, "schema_version", 14) == 0)
			ev->schema_version = es_schema_version_value(&val);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%.*s\" in event", klen, k),
					 errhint("An event has the keys type, data, metadata, id and schema_version.")));
	}

	if (!have_type)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event has no type"),
				 errhint("Every event needs a non-empty \"type\" string.")));
	if (!have_data)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event has no data"),
				 errhint("Every event needs a \"data\" value; use {} when there is nothing to say.")));
}

static EsNewEvent *
es_parse_events(Jsonb *events, int *count)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	EsNewEvent *evs;
	int			n;
	int			i = 0;
	EsParseContext ctx;
	ErrorContextCallback errcb;

	if (JB_ROOT_IS_SCALAR(events) || !JB_ROOT_IS_ARRAY(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a JSON array of event objects"),
				 errdetail("The value is a JSON %s.",
						   JB_ROOT_IS_SCALAR(events) ? "scalar" : "object")));
	n = JB_ROOT_COUNT(events);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must not be an empty array")));
	if (n > ES_MAX_APPEND_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many events in one append"),
				 errdetail("The append has %d events; the limit is %d.",
						   n, ES_MAX_APPEND_EVENTS)));

	evs = palloc0(sizeof(EsNewEvent) * n);

	ctx.index = -1;
	errcb.callback = es_parse_error_context;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	it = JsonbIteratorInit(&events->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		ctx.index = i;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event must be a JSON object"),
					 errdetail("The event is a JSON %s.", es_jsonb_type_name(&v))));
		es_parse_event(v.val.binary.data, &evs[i]);
		es_validate_event_size(i, evs[i].type, evs[i].data, evs[i].metadata);
		i++;
	}

	error_context_stack = errcb.previous;
	Assert(i == n);
	*count = n;
	return evs;
}

/* where an event id of the append is stored already */
typedef struct EsStoredId
{
	text	   *stream;
	int64		version;
	int64		position;
} EsStoredId;

/* es_find_retry step 1: the stored event with this id, if any */
static bool
es_retry_lookup(Relation rel, Relation idx, pg_uuid_t *id, EsStoredId *stored)
{
	EsScan		scan;
	bool		found;

	es_scan_init(&scan, rel, idx);
	es_scan_key_uuid(&scan, 1, id);
	found = es_scan_first(&scan, SnapshotSelf, ForwardScanDirection);
	if (found)
	{
		bool		isnull;

		stored->stream = DatumGetTextPCopy(slot_getattr(scan.slot, Anum_es_events_stream, &isnull));
		stored->version = DatumGetInt64(slot_getattr(scan.slot, Anum_es_events_version, &isnull));
		stored->position = DatumGetInt64(slot_getattr(scan.slot, Anum_es_events_position, &isnull));
	}
	es_scan_end(&scan);
	return found;
}

/*
 * es_find_retry step 2: an id stored in another stream is a unique
 * violation; name the other stream only to a role that may read it.
 */
static void
es_refuse_id_elsewhere(const EsCatalog *cat, pg_uuid_t *id, EsStoredId *stored)
{
	bool		may_read = pg_class_aclcheck(cat->events, GetUserId(), ACL_SELECT) == ACLCHECK_OK;

	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("event id %s already exists",
					DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(id)))),
			 may_read ?
			 errdetail("It is stored in stream \"%s\" at version %lld.",
					   text_to_cstring(stored->stream), (long long) stored->version) : 0));
}

/*
 * es_find_retry step 3: some ids are stored, but the append is not a retry
 * (not all of them, or not as one append in its order).
 */
static void
es_refuse_partial_retry(text *stream, int nfound, int n)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("some event ids of the append already exist in stream \"%s\"",
					text_to_cstring(stream)),
			 errdetail("%d of the %d events are stored already, but not as the same append in the same order.",
					   nfound, n),
			 errhint("An append is only an idempotent retry when all its event ids are stored, in order, at consecutive versions.")));
}

/*
 * Look up the given event ids.  If any is stored already, this append is
 * either an idempotent retry, and *result describes the original append, or
 * an error.  Returns true for a retry.
 *
 * A retry: every event carries an id, all of them are stored in this stream,
 * in the batch's order at consecutive versions, and, unless the expected
 * version is "any", right after the expected version.  The same ids stored
 * at another place of this stream are a wrong expected version (the events
 * are there, but not where the client thinks); stored in another stream, or
 * only some of them, a unique violation.
 */
static bool
es_find_retry(const EsCatalog *cat, text *stream, bool expected_any,
			  int64 expected, EsNewEvent *evs, int n, EsAppendResult *result)
{
	Relation	rel;
	Relation	idx;
	int			i;
	int			nfound = 0;
	bool		retry = true;
	int64		prev_version = 0;
	int64		prev_position = 0;
	int			first_given = -1;

	for (i = 0; i < n; i++)
		if (evs[i].id_given)
		{
			first_given = i;
			break;
		}
	if (first_given < 0)
		return false;

	rel = es_table_open(cat->events, AccessShareLock);
	idx = es_index_open(cat->events_event_id, AccessShareLock);
	for (i = first_given; i < n; i++)
	{
		EsStoredId	stored;

		if (!evs[i].id_given || !es_retry_lookup(rel, idx, &evs[i].id, &stored))
		{
			retry = false;
			continue;
		}
		nfound++;
		if (!es_same_name(stored.stream, stream))
			es_refuse_id_elsewhere(cat, &evs[i].id, &stored);
		if (i == 0)
		{
			result->first_version = stored.version;
			result->first_position = stored.position;
		}
		else if (stored.version != prev_version + 1 ||
				 stored.position <= prev_position)
			retry = false;
		prev_version = stored.version;
		prev_position = stored.position;
		result->last_version = stored.version;
		result->last_position = stored.position;
	}
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (nfound == 0)
		return false;
	if (!retry || nfound != n)
		es_refuse_partial_retry(stream, nfound, n);
	if (!expected_any && result->first_version != expected + 1)
	{
		es_stats_count(ES_STAT_CONFLICTS, 1);
		ereport(ERROR,
				(errcode(ERRCODE_ES_WRONG_EXPECTED_VERSION),
				 errmsg("wrong expected version for stream \"%s\"",
						text_to_cstring(stream)),
				 errdetail("The events of this append are stored already, at versions %lld to %lld, not after version %lld.",
						   (long long) result->first_version,
						   (long long) result->last_version, (long long) expected),
				 errhint("A retry must give the expected version of the first attempt, or NULL.")));
	}
	return true;
}

/*
 * Insert the events at versions from first_version, positions from
 * first_position, created at created_at, in batches through the table AM.
 */
static void
es_insert_events(const EsCatalog *cat, text *stream, int64 first_version,
				 int64 first_position, TimestampTz created_at,
				 EsNewEvent *evs, int n)
{
	Relation	rel = es_table_open(cat->events, RowExclusiveLock);
	TupleTableSlot *slots[ES_INSERT_BATCH];
	CommandId	cid = GetCurrentCommandId(true);
	EsInserter	ins;
	int			nslots = Min(n, ES_INSERT_BATCH);
	int			done = 0;
	int			i;
	uint64		bytes = 0;

	es_inserter_open(&ins, rel);
	for (i = 0; i < nslots; i++)
		slots[i] = table_slot_create(rel, NULL);

	while (done < n)
	{
		int			batch = Min(n - done, ES_INSERT_BATCH);

		for (i = 0; i < batch; i++)
		{
			EsNewEvent *ev = &evs[done + i];
			TupleTableSlot *slot = slots[i];
			Datum	   *values;
			bool	   *isnull;

			ExecClearTuple(slot);
			values = slot->tts_values;
			isnull = slot->tts_isnull;
			memset(isnull, false, sizeof(bool) * Natts_es_events);
			if (!ev->id_given)
				es_generate_uuid(&ev->id);
			values[Anum_es_events_position - 1] = Int64GetDatum(first_position + done + i);
			values[Anum_es_events_stream - 1] = PointerGetDatum(stream);
			values[Anum_es_events_version - 1] = Int64GetDatum(first_version + done + i);
			values[Anum_es_events_type - 1] = PointerGetDatum(ev->type);
			values[Anum_es_events_data - 1] = JsonbPGetDatum(ev->data);
			bytes += VARSIZE(ev->data);
			if (ev->metadata != NULL)
				bytes += VARSIZE(ev->metadata);
			if (ev->metadata != NULL)
				values[Anum_es_events_metadata - 1] = JsonbPGetDatum(ev->metadata);
			else
			{
				values[Anum_es_events_metadata - 1] = (Datum) 0;
				isnull[Anum_es_events_metadata - 1] = true;
			}
			values[Anum_es_events_event_id - 1] = UUIDPGetDatum(&ev->id);
			values[Anum_es_events_schema_version - 1] = Int32GetDatum(ev->schema_version);
			values[Anum_es_events_created_at - 1] = TimestampTzGetDatum(created_at);
			ExecStoreVirtualTuple(slot);
		}

		if (batch == 1)
			table_tuple_insert(rel, slots[0], cid, 0, NULL);
		else
			table_multi_insert(rel, slots, batch, cid, 0, NULL);

		for (i = 0; i < batch; i++)
			es_inserter_index(&ins, slots[i], false);
		done += batch;
	}

	for (i = 0; i < nslots; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	es_inserter_close(&ins);
	es_stats_pending(ES_STAT_EVENTS, n);
	es_stats_pending(ES_STAT_BYTES, bytes);
	table_close(rel, RowExclusiveLock);
}

/*
 * es_append_events step 1: claim the stream at its new version, or find
 * that this append is a retry of one stored already (true).
 */
static bool
es_append_claim(const EsCatalog *cat, Relation streams, Relation name_index,
				text *stream, bool expected_any, int64 expected,
				EsNewEvent *evs, int n, EsStream *st, EsAppendResult *result)
{
	for (;;)
	{
		int64		current;

		CHECK_FOR_INTERRUPTS();
		es_stream_fetch_settled(streams, name_index, stream, st);
		if (es_stream_erased(streams, st))
			es_refuse_erased(stream);
		if (es_find_retry(cat, stream, expected_any, expected, evs, n, result))
			return true;
		current = st->exists ? st->version : 0;
		/* plain INSERTs move the streams row only at the end of a statement */
		if (es_plain_inserts_in_xact())
			current = Max(current, es_max_stored_version(cat, stream));
		if (!expected_any && expected != current)
			es_raise_wrong_version(stream, expected, current);
		if (current > PG_INT64_MAX - n)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg_plural("stream \"%s\" has no room for %d more event",
								   "stream \"%s\" has no room for %d more events",
								   n, text_to_cstring(stream), n),
					 errdetail("Its version is %lld; versions end at %lld.",
							   (long long) current, (long long) PG_INT64_MAX)));
		if (st->exists ?
			es_stream_update(streams, stream, st, current + n) :
			es_stream_create(cat, streams, name_index, stream, st, current + n))
		{
			result->first_version = current + 1;
			result->last_version = current + n;
			return false;
		}
		/* somebody got in between: start again */
	}
}

static void
es_append_events(text *stream, bool expected_any, int64 expected,
				 EsNewEvent *evs, int n, EsAppendResult *result)
{
	const EsCatalog *cat = es_ready();
	Relation	streams;
	Relation	name_index;
	EsStream	st;

	es_require_privilege(cat->events, ACL_INSERT);
	PreventCommandIfReadOnly("es_append()");
	PreventCommandIfParallelMode("es_append()");
	PreventCommandDuringRecovery("es_append()");

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = es_index_open(cat->streams_name, AccessShareLock);
	if (es_append_claim(cat, streams, name_index, stream, expected_any,
						expected, evs, n, &st, result))
		es_stats_count(ES_STAT_RETRIES, 1);
	else
	{
		EsDatabase *db = es_positions_ready(cat);

		result->first_position = es_allocate_positions(db, n);
		result->last_position = result->first_position + n - 1;
		/* the stream's row now holds the created_at of this append */
		es_insert_events(cat, stream, result->first_version,
						 result->first_position, st.last_created, evs, n);
		CommandCounterIncrement();
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
}

static Datum
es_append_result_datum(FunctionCallInfo fcinfo, text *stream,
					   EsAppendResult *result)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "es_append must return a composite type");
	desc = BlessTupleDesc(desc);
	values[0] = PointerGetDatum(stream);
	values[1] = Int64GetDatum(result->first_version);
	values[2] = Int64GetDatum(result->last_version);
	values[3] = Int64GetDatum(result->first_position);
	values[4] = Int64GetDatum(result->last_position);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/*
 * Arguments common to both forms: the stream and the expected version.
 */
static text *
es_append_stream_arg(FunctionCallInfo fcinfo, bool *expected_any,
					 int64 *expected)
{
	text	   *stream;

	es_require_preload();
	stream = es_arg_stream(fcinfo, 0);
	*expected_any = PG_ARGISNULL(1);
	*expected = *expected_any ? 0 : PG_GETARG_INT64(1);
	es_validate_expected_version(*expected,
								 "Pass NULL to append at any version, 0 for a stream that must not exist yet.");
	return stream;
}

/*
 * es_append(stream text, expected_version bigint, events jsonb)
 */
PG_FUNCTION_INFO_V1(es_append_json);
Datum
es_append_json(PG_FUNCTION_ARGS)
{
	bool		expected_any;
	int64		expected;
	text	   *stream = es_append_stream_arg(fcinfo, &expected_any, &expected);
	EsNewEvent *evs;
	int			n;
	EsAppendResult result;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null")));
	evs = es_parse_events(PG_GETARG_JSONB_P(2), &n);
	es_append_events(stream, expected_any, expected, evs, n, &result);
	return es_append_result_datum(fcinfo, stream, &result);
}

/*
 * es_append(stream text, expected_version bigint, type text, data jsonb,
 *			 metadata jsonb, event_id uuid, schema_version integer)
 */
PG_FUNCTION_INFO_V1(es_append_one);
Datum
es_append_one(PG_FUNCTION_ARGS)
{
	bool		expected_any;
	int64		expected;
	text	   *stream = es_append_stream_arg(fcinfo, &expected_any, &expected);
	EsNewEvent ev;
	EsAppendResult result;

	memset(&ev, 0, sizeof(ev));
	ev.type = es_arg_text(fcinfo, 2, "event type");
	es_validate_type(ev.type);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event data must not be null"),
				 errhint("Use '{}' when there is nothing to say.")));
	ev.data = PG_GETARG_JSONB_P(3);
	if (!PG_ARGISNULL(4))
		ev.metadata = es_event_metadata(PG_GETARG_JSONB_P(4), true);
	if (!PG_ARGISNULL(5))
	{
		memcpy(&ev.id, PG_GETARG_UUID_P(5), sizeof(pg_uuid_t));
		ev.id_given = true;
	}
	ev.schema_version = PG_ARGISNULL(6) ? 1 : PG_GETARG_INT32(6);
	es_validate_schema_version(ev.schema_version, "schema_version", PG_INT32_MAX);
	es_validate_event_size(0, ev.type, ev.data, ev.metadata);

	es_append_events(stream, expected_any, expected, &ev, 1, &result);
	return es_append_result_datum(fcinfo, stream, &result);
}
