/*-------------------------------------------------------------------------
 *
 * es_read.c
 *	  Reading streams: es_read_stream, es_stream_version, es_head_position.
 *
 * Stream reads use the caller's snapshot, like any SELECT: a transaction
 * sees its own appends and a consistent picture of the others'.  The set
 * returning function fills a tuplestore in one call (materialize mode), so
 * a LIMIT that stops reading early leaves no scan open.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "event_store.h"

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
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	Tuplestorestate *store;
	TupleDesc	desc;
	int64		count = 0;
	ScanDirection dir;
	EsEmitter	em;

	es_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = PG_GETARG_TEXT_PP(0);
	es_validate_stream_name(stream);
	if (has_from && from < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_version must be at least 1"),
				 errhint("The first event of a stream has version 1; pass NULL to read from the start (or, backwards, from the end).")));
	if (limited && max_count <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be positive"),
				 errhint("Pass NULL to read without a limit.")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("backwards must not be null")));
	backwards = PG_GETARG_BOOL(3);

	cat = es_catalog();
	es_require_privilege(cat->events, ACL_SELECT);

	store = es_begin_srf(fcinfo, &desc);

	rel = es_table_open(cat->events, AccessShareLock);
	es_check_event_desc(desc, rel);
	idx = index_open(cat->events_stream_version, AccessShareLock);

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ,
						   PointerGetDatum(stream));
	if (has_from)
		ScanKeyEntryInitialize(&keys[1], 0, 2,
							   backwards ? BTLessEqualStrategyNumber : BTGreaterEqualStrategyNumber,
							   InvalidOid, InvalidOid,
							   backwards ? F_INT8LE : F_INT8GE,
							   Int64GetDatum(from));
	dir = backwards ? BackwardScanDirection : ForwardScanDirection;

	es_emitter_init(&em, cat, store, desc, GetActiveSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), has_from ? 2 : 1, 0);
	index_rescan(scan, keys, has_from ? 2 : 1, NULL, 0);
	while ((!limited || count < max_count) &&
		   index_getnext_slot(scan, dir, slot))
	{
		if (es_emit(&em, slot))
			count++;
	}
	index_endscan(scan);
	es_emitter_end(&em);
	ExecDropSingleTupleTableSlot(slot);
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
	text	   *stream;
	const EsCatalog *cat;
	EsStreamView view;

	es_require_preload();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream name must not be null")));
	stream = PG_GETARG_TEXT_PP(0);
	es_validate_stream_name(stream);

	cat = es_catalog();
	es_require_privilege(cat->streams, ACL_SELECT);
	(void) es_stream_view(cat, GetActiveSnapshot(), stream, &view, false);
	PG_RETURN_INT64(view.version);
}

/*
 * The position of the newest event below "below" that snapshot sees, by a
 * backward scan of the primary key; 0 when there is none.
 */
int64
es_newest_position(const EsCatalog *cat, Snapshot snapshot, int64 below)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = index_open(cat->events_pkey, AccessShareLock);
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData key;
	int64		result = 0;

	ScanKeyInit(&key, 1, BTLessStrategyNumber, F_INT8LT, Int64GetDatum(below));
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		result = DatumGetInt64(slot_getattr(slot, Anum_es_events_position, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * The position of the newest event a feed reader may see now: the highest
 * committed position below the safe horizon of the position register, read
 * with a snapshot taken after the horizon.  0 when there is none.
 */
int64
es_readable_head(const EsCatalog *cat)
{
	int64		horizon = es_safe_horizon(cat);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int64		head = es_newest_position(cat, snapshot, horizon);

	UnregisterSnapshot(snapshot);
	return head;
}

/*
 * es_head_position() returns bigint
 */
PG_FUNCTION_INFO_V1(es_head_position);
Datum
es_head_position(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_catalog();

	es_require_privilege(cat->events, ACL_SELECT);
	PreventCommandIfParallelMode("es_head_position()");
	PG_RETURN_INT64(es_readable_head(cat));
}

/*
 * _es_head_if_known() returns bigint: es_head_position(), or NULL where the
 * head cannot be told (a standby, a subscription's target): for the
 * monitoring view es_consumers, which must work everywhere.
 */
PG_FUNCTION_INFO_V1(es_head_if_known);
Datum
es_head_if_known(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_catalog();

	es_require_privilege(cat->events, ACL_SELECT);
	if (!es_head_known(cat) || IsInParallelMode())
		PG_RETURN_NULL();
	PG_RETURN_INT64(es_readable_head(cat));
}
