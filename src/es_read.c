/*-------------------------------------------------------------------------
 *
 * es_read.c
 *	  Layer 4, entry points: reading one stream.  es_read_stream,
 *	  es_read_stream_at (time travel), es_stream_version, es_load_snapshot
 *	  and es_load_aggregate.
 *
 * Stream reads use the caller's snapshot, like any SELECT: a transaction
 * sees its own appends and a consistent picture of the others', and the
 * stream's rules and upcasters as of the same snapshot (es_emit.c).  The
 * set returning functions fill a tuplestore in one call (materialize mode),
 * so a LIMIT that stops reading early leaves no scan open.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_emit.h"
#include "es_events.h"
#include "es_scan.h"
#include "es_stream.h"
#include "es_validate.h"

/* the event type of the row es_load_aggregate returns for a snapshot */
#define ES_SNAPSHOT_TYPE	"$snapshot"

/*
 * es_read_stream(stream text, from_version bigint, max_count bigint,
 *				  backwards boolean) returns setof es_event
 *
 * from_version NULL means the start (forwards) or the end (backwards).
 */
PG_FUNCTION_INFO_V1(es_read_stream);
Datum
es_read_stream(PG_FUNCTION_ARGS)
{
	text	   *stream;
	bool		has_from = !PG_ARGISNULL(1);
	int64		from = has_from ? PG_GETARG_INT64(1) : 0;
	bool		limited = !PG_ARGISNULL(2);
	int64		max_count = limited ? PG_GETARG_INT64(2) : 0;
	bool		backwards;
	const EsCatalog *cat;
	Relation	rel;
	Relation	idx;
	EsScan		scan;
	Tuplestorestate *store;
	TupleDesc	desc;
	int64		count = 0;
	ScanDirection dir;
	EsEmitter	em;

	stream = es_arg_stream(fcinfo, 0);
	if (has_from)
		es_validate_from_version(from);
	es_validate_max_count(ES_READ_STREAM, !limited, max_count);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("backwards must not be null")));
	backwards = PG_GETARG_BOOL(3);

	cat = es_ready();
	es_require_privilege(cat->events, ACL_SELECT);

	store = es_begin_srf(fcinfo, &desc);

	rel = es_table_open(cat->events, AccessShareLock);
	es_check_event_desc(desc, rel);
	idx = es_index_open(cat->events_stream_version, AccessShareLock);

	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	if (has_from)
		es_scan_key_int8(&scan, 2,
						 backwards ? BTLessEqualStrategyNumber : BTGreaterEqualStrategyNumber,
						 from);
	dir = backwards ? BackwardScanDirection : ForwardScanDirection;

	es_emitter_init(&em, cat, store, desc, GetActiveSnapshot());
	es_scan_begin(&scan, GetActiveSnapshot());
	while ((!limited || count < max_count) && es_scan_next(&scan, dir))
	{
		if (es_emit(&em, scan.slot))
			count++;
	}
	es_scan_end(&scan);
	es_emitter_end(&em);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	return (Datum) 0;
}

/*
 * es_stream_version(stream text) returns bigint: the number of events ever
 * appended to the stream; 0 when it does not exist.
 */
PG_FUNCTION_INFO_V1(es_stream_version);
Datum
es_stream_version(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_stream(fcinfo, 0);
	const EsCatalog *cat = es_ready();
	EsStreamView view;

	es_require_privilege(cat->streams, ACL_SELECT);
	(void) es_stream_view(cat, GetActiveSnapshot(), stream, &view, false);
	PG_RETURN_INT64(view.version);
}

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
	Relation	idx = es_index_open(cat->events_stream_version, AccessShareLock);
	EsScan		scan;

	es_check_event_desc(em->desc, rel);
	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	es_scan_key_int8(&scan, 2, BTGreaterEqualStrategyNumber, from);
	if (until > 0)
		es_scan_key_int8(&scan, 2, BTLessEqualStrategyNumber, until);
	es_scan_begin(&scan, em->snapshot);
	while (es_scan_next(&scan, ForwardScanDirection))
	{
		if (has_time)
		{
			bool		isnull;
			TimestampTz created = DatumGetTimestampTz(slot_getattr(scan.slot, Anum_es_events_created_at, &isnull));

			if (created > at_time)
				break;
		}
		(void) es_emit(em, scan.slot);
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/*
 * es_read_stream_at(stream text, at_version bigint, at_time timestamptz)
 */
PG_FUNCTION_INFO_V1(es_read_stream_at);
Datum
es_read_stream_at(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_stream(fcinfo, 0);
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
				 errmsg("exactly one of at_version and at_time must be given"),
				 errhint("es_read_stream_at(stream, at_version => 5) or es_read_stream_at(stream, at_time => '2026-01-01').")));
	if (has_version && at_version < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at_version must not be negative")));
	if (has_time && TIMESTAMP_NOT_FINITE(at_time))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at_time must be finite")));

	cat = es_ready();
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
	EsScan		scan;
	bool		found;
	int64		lowest;

	if (!es_stream_view(cat, snapshot, stream, &view, false) || view.erased)
		return false;

	rel = es_table_open(cat->snapshots, AccessShareLock);
	idx = es_index_open(cat->snapshots_pkey, AccessShareLock);
	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	found = es_scan_first(&scan, snapshot, ForwardScanDirection);
	if (found)
	{
		TupleTableSlot *slot = scan.slot;
		bool		isnull;

		snap->version = DatumGetInt64(slot_getattr(slot, Anum_es_snapshots_version, &isnull));
		snap->state = DatumGetJsonbPCopy(slot_getattr(slot, Anum_es_snapshots_state, &isnull));
		snap->schema_version = DatumGetInt32(slot_getattr(slot, Anum_es_snapshots_schema_version, &isnull));
		snap->created_at = DatumGetTimestampTz(slot_getattr(slot, Anum_es_snapshots_created_at, &isnull));
	}
	es_scan_end(&scan);
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
	es_validate_schema_version(v, "min_schema_version", PG_INT32_MAX);
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
	text	   *stream = es_arg_stream(fcinfo, 0);
	int32		min_schema_version = es_min_schema_version_arg(fcinfo, 1);
	const EsCatalog *cat = es_ready();
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
	text	   *stream = es_arg_stream(fcinfo, 0);
	int32		min_schema_version = es_min_schema_version_arg(fcinfo, 1);
	const EsCatalog *cat = es_ready();
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

