/*-------------------------------------------------------------------------
 *
 * es_feed.c
 *	  Layer 4, entry points: the gap-safe feed.  es_read_all,
 *	  es_read_category, consumer groups, es_head_position.
 *
 * A feed read first computes the safe horizon of the position register
 * (es_shmem.c): every position below it is settled, committed or never to
 * be.  Only then does it take a fresh snapshot, which therefore sees every
 * event below the horizon that will ever exist, and it returns events
 * after the reader's position and below the horizon, in position order.  A
 * reader that checkpoints the last position it read thus never skips an
 * event and never sees one twice, whatever the commit order of concurrent
 * writers.  Only transactions that appended events hold the horizon back,
 * and only while they are open.
 *
 * The snapshot is the feed's own, not the caller's: a REPEATABLE READ or
 * SERIALIZABLE transaction's snapshot may predate commits below the
 * horizon, and reading with it would skip them.  (So feed reads do not take
 * part in serializable conflict detection.)
 *
 * Filters are served by indexes: a type filter merges one scan of
 * events_type_position per type; a category reads events_category_position,
 * an expression index on es_category(stream).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_emit.h"
#include "es_events.h"
#include "es_register.h"
#include "es_scan.h"
#include "es_util.h"
#include "es_validate.h"

/*
 * The consumer group member of a stream: FNV-1a (64 bits) of the name's
 * bytes, modulo the group size.  Documented, so that any client can compute
 * it: offset basis 14695981039346656037, prime 1099511628211.
 */
static int32
es_member_of(text *stream, int32 size)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(stream);
	int			len = VARSIZE_ANY_EXHDR(stream);
	uint64		hash = UINT64CONST(14695981039346656037);
	int			i;

	for (i = 0; i < len; i++)
	{
		hash ^= p[i];
		hash *= UINT64CONST(1099511628211);
	}
	return (int32) (hash % (uint64) size);
}

static int64 es_forget_reached(void);

static int64
es_after_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		after = PG_ARGISNULL(argno) ? 0 : PG_GETARG_INT64(argno);

	es_validate_position(PG_ARGISNULL(argno), after, "after_position",
						 "Pass 0 to read from the start.");
	return after;
}

static int64
es_max_count_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		max_count = PG_ARGISNULL(argno) ? 0 : PG_GETARG_INT64(argno);

	es_validate_max_count(ES_READ_FEED, PG_ARGISNULL(argno), max_count);
	return max_count;
}

/*
 * The types argument: NULL for all, else its distinct, non-empty elements.
 */
static Datum *
es_types_arg(FunctionCallInfo fcinfo, int argno, int *ntypes)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			j;
	int			kept = 0;

	*ntypes = 0;
	if (PG_ARGISNULL(argno))
		return NULL;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("types must be a one-dimensional array")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("types must not be empty"),
				 errhint("Pass NULL to read events of every type.")));
	if (n > ES_MAX_FEED_TYPES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many types"),
				 errdetail("The filter has %d types; the limit is %d.", n, ES_MAX_FEED_TYPES)));
	for (i = 0; i < n; i++)
	{
		text	   *t;
		bool		dup = false;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("types must not contain nulls")));
		t = DatumGetTextPP(elems[i]);
		es_validate_type(t);
		for (j = 0; j < kept && !dup; j++)
			dup = es_same_name(t, DatumGetTextPP(elems[j]));
		if (!dup)
			elems[kept++] = PointerGetDatum(t);
	}
	*ntypes = kept;
	return elems;
}

/* one index scan of the feed, positioned on its next row */
typedef struct EsFeedScan
{
	EsScan		scan;
	int64		position;		/* of the row in scan.slot, if !done */
	bool		done;
} EsFeedScan;

/*
 * Events after "after" and below the horizon, in position order: by the
 * primary key, or by an index on (prefix, position) (a type, a category).
 */
static void
es_feed_scan_begin(EsFeedScan *fs, Relation rel, Relation idx, Snapshot snapshot,
				   text *prefix, int64 after, int64 horizon)
{
	AttrNumber	posattr = prefix ? 2 : 1;

	es_scan_init(&fs->scan, rel, idx);
	if (prefix)
		es_scan_key_text(&fs->scan, 1, prefix);
	es_scan_key_int8(&fs->scan, posattr, BTGreaterStrategyNumber, after);
	es_scan_key_int8(&fs->scan, posattr, BTLessStrategyNumber, horizon);
	es_scan_begin(&fs->scan, snapshot);
	fs->done = false;
}

static bool
es_feed_scan_next(EsFeedScan *fs)
{
	bool		isnull;

	if (fs->done)
		return false;
	if (!es_scan_next(&fs->scan, ForwardScanDirection))
	{
		fs->done = true;
		return false;
	}
	fs->position = DatumGetInt64(slot_getattr(fs->scan.slot, Anum_es_events_position, &isnull));
	return true;
}

static void
es_feed_scan_end(EsFeedScan *fs)
{
	es_scan_end(&fs->scan);
}

/* one read of the feed: its snapshot, the events table and its emitter */
typedef struct EsFeedRead
{
	int64		horizon;
	Snapshot	snapshot;
	Relation	rel;
	EsEmitter	em;
} EsFeedRead;

/*
 * The position the session's last feed read got to: the last event it
 * returned if it returned max_count; else the newest event below its
 * horizon (it looked at everything up to there).  A consumer saves this as
 * its checkpoint, so that a filter that matches rarely does not read the
 * same non-matching events again on every poll.  -1: no read yet.
 *
 * Never a position past the newest event, although every position below
 * the horizon is settled: the positions of rolled-back transactions above
 * the newest event are handed out again after a restart (the counter
 * continues above the highest stored position), and a checkpoint past one
 * of them would skip the event that gets it.
 */
static int64 es_reached = -1;

/* Forget the last read's position; returns what it was. */
static int64
es_forget_reached(void)
{
	int64		was = es_reached;

	es_reached = -1;
	return was;
}

static void
es_set_reached(const EsCatalog *cat, EsFeedRead *r, bool full, int64 last, int64 after)
{
	if (full)
		es_reached = last;
	else
		es_reached = Max(after, es_newest_position(cat, r->snapshot, r->horizon));
}

/*
 * Begin a read of the feed (function: its name, for the parallel-mode
 * error): the safe horizon first, then the snapshot (see the file header).
 */
static void
es_feed_read_begin(FunctionCallInfo fcinfo, const EsCatalog *cat,
				   const char *function, EsFeedRead *r)
{
	Tuplestorestate *store;
	TupleDesc	desc;

	es_require_privilege(cat->events, ACL_SELECT);
	/* it takes a snapshot of its own, which a parallel operation cannot */
	PreventCommandIfParallelMode(function);
	store = es_begin_srf(fcinfo, &desc);
	r->horizon = es_safe_horizon(es_positions_ready(cat));
	r->snapshot = RegisterSnapshot(GetLatestSnapshot());
	r->rel = es_table_open(cat->events, AccessShareLock);
	es_check_event_desc(desc, r->rel);
	es_emitter_init(&r->em, cat, store, desc, r->snapshot);
}

static void
es_feed_read_end(EsFeedRead *r, Relation idx)
{
	es_emitter_end(&r->em);
	index_close(idx, AccessShareLock);
	table_close(r->rel, AccessShareLock);
	UnregisterSnapshot(r->snapshot);
}

/*
 * es_read_all(after_position bigint, max_count bigint, types text[])
 * returns setof es_event
 */
PG_FUNCTION_INFO_V1(es_read_all);
Datum
es_read_all(PG_FUNCTION_ARGS)
{
	/* first: a read that fails, its arguments included, got nowhere */
	int64		forgot pg_attribute_unused() = es_forget_reached();
	int64		after = es_after_arg(fcinfo, 0);
	int64		max_count = es_max_count_arg(fcinfo, 1);
	int			ntypes;
	Datum	   *types = es_types_arg(fcinfo, 2, &ntypes);
	const EsCatalog *cat = es_ready();
	EsFeedRead	r;
	Relation	idx;
	int64		count = 0;
	int64		last = after;

	es_feed_read_begin(fcinfo, cat, "es_read_all()", &r);

	if (types == NULL)
	{
		EsFeedScan	fs;

		idx = es_index_open(cat->events_pkey, AccessShareLock);
		es_feed_scan_begin(&fs, r.rel, idx, r.snapshot, NULL, after, r.horizon);
		while (count < max_count && es_feed_scan_next(&fs))
		{
			if (es_emit(&r.em, fs.scan.slot))
				count++;
			last = fs.position;
		}
		es_feed_scan_end(&fs);
	}
	else
	{
		/* merge one scan per type by position */
		EsFeedScan *scans = palloc(sizeof(EsFeedScan) * ntypes);
		int			i;

		idx = es_index_open(cat->events_type_position, AccessShareLock);
		for (i = 0; i < ntypes; i++)
		{
			es_feed_scan_begin(&scans[i], r.rel, idx, r.snapshot,
							   DatumGetTextPP(types[i]), after, r.horizon);
			(void) es_feed_scan_next(&scans[i]);
		}
		while (count < max_count)
		{
			int			best = -1;

			for (i = 0; i < ntypes; i++)
				if (!scans[i].done &&
					(best < 0 || scans[i].position < scans[best].position))
					best = i;
			if (best < 0)
				break;
			if (es_emit(&r.em, scans[best].scan.slot))
				count++;
			last = scans[best].position;
			(void) es_feed_scan_next(&scans[best]);
		}
		for (i = 0; i < ntypes; i++)
			es_feed_scan_end(&scans[i]);
	}
	es_set_reached(cat, &r, count >= max_count, last, after);
	es_feed_read_end(&r, idx);
	return (Datum) 0;
}

static text *
es_category_arg(FunctionCallInfo fcinfo, int argno)
{
	text	   *category = es_arg_text(fcinfo, argno, "category");

	es_validate_category(category);
	return category;
}

static void
es_group_args(FunctionCallInfo fcinfo, int member_arg, int32 *member, int32 *size)
{
	if (PG_ARGISNULL(member_arg) || PG_ARGISNULL(member_arg + 1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("consumer_member and consumer_size must not be null")));
	*member = PG_GETARG_INT32(member_arg);
	*size = PG_GETARG_INT32(member_arg + 1);
	es_validate_consumer_size(*size);
	if (*member < 0 || *member >= *size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer_member must be between 0 and %d", *size - 1),
				 errdetail("Members of a group of %d are numbered 0 to %d.", *size, *size - 1)));
}

/*
 * es_read_category(category text, after_position bigint, max_count bigint,
 *					consumer_member integer, consumer_size integer)
 * returns setof es_event
 */
PG_FUNCTION_INFO_V1(es_read_category);
Datum
es_read_category(PG_FUNCTION_ARGS)
{
	/* first: a read that fails, its arguments included, got nowhere */
	int64		forgot pg_attribute_unused() = es_forget_reached();
	text	   *category = es_category_arg(fcinfo, 0);
	int64		after = es_after_arg(fcinfo, 1);
	int64		max_count = es_max_count_arg(fcinfo, 2);
	int32		member;
	int32		size;
	const EsCatalog *cat;
	EsFeedRead	r;
	Relation	idx;
	EsFeedScan	fs;
	int64		count = 0;
	int64		last = after;

	es_group_args(fcinfo, 3, &member, &size);
	cat = es_ready();
	es_feed_read_begin(fcinfo, cat, "es_read_category()", &r);
	idx = es_index_open(cat->events_category_position, AccessShareLock);

	es_feed_scan_begin(&fs, r.rel, idx, r.snapshot, category, after, r.horizon);
	while (count < max_count && es_feed_scan_next(&fs))
	{
		if (size > 1)
		{
			bool		isnull;
			text	   *stream = DatumGetTextPP(slot_getattr(fs.scan.slot, Anum_es_events_stream,
															 &isnull));

			if (es_member_of(stream, size) != member)
			{
				last = fs.position;
				continue;
			}
		}
		if (es_emit(&r.em, fs.scan.slot))
			count++;
		last = fs.position;
	}
	es_feed_scan_end(&fs);
	es_set_reached(cat, &r, count >= max_count, last, after);
	es_feed_read_end(&r, idx);
	return (Datum) 0;
}

/*
 * es_consumer_member(stream text, consumer_size integer) returns integer:
 * the member of a group of consumer_size that reads the stream.
 */
PG_FUNCTION_INFO_V1(es_consumer_member);
Datum
es_consumer_member(PG_FUNCTION_ARGS)
{
	text	   *stream = PG_GETARG_TEXT_PP(0);
	int32		size = PG_GETARG_INT32(1);

	es_validate_stream_name(stream);
	es_validate_consumer_size(size);
	PG_RETURN_INT32(es_member_of(stream, size));
}

/*
 * es_head_position() returns bigint
 */
PG_FUNCTION_INFO_V1(es_head_position);
Datum
es_head_position(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();

	es_require_privilege(cat->events, ACL_SELECT);
	PreventCommandIfParallelMode("es_head_position()");
	PG_RETURN_INT64(es_readable_head(cat));
}

/*
 * What the monitoring views read (the head, the time of the first unread
 * event): SELECT on events, or membership in pg_monitor, which reads these
 * figures and never the events.
 */
static void
es_require_monitor(const EsCatalog *cat)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
		es_require_privilege(cat->events, ACL_SELECT);
}

/*
 * _es_head_if_known() returns bigint: es_head_position(), or NULL where the
 * head cannot be told (a standby, a subscription's target, a parallel
 * operation): for the monitoring view es_consumers, which must work
 * everywhere.
 */
PG_FUNCTION_INFO_V1(es_head_if_known);
Datum
es_head_if_known(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();

	es_require_monitor(cat);
	if (!es_head_known(cat) || IsInParallelMode())
		PG_RETURN_NULL();
	PG_RETURN_INT64(es_readable_head(cat));
}

/*
 * _es_lag_seconds(after bigint, head bigint) returns double precision:
 * seconds from the created_at of the first event after the position (up to
 * head, when known) to now; 0 when there is none.  One probe of the primary
 * key, whatever the backlog: what the views es_consumers, es_projections
 * and es_consumer_metrics show as lag_seconds.  The monitoring role reads
 * it as it reads the head.
 */
PG_FUNCTION_INFO_V1(es_lag_seconds);
Datum
es_lag_seconds(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	TimestampTz created_at;
	int64		head;

	es_require_monitor(cat);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	head = PG_ARGISNULL(1) ? 0 : Max(PG_GETARG_INT64(1), 0);
	if (!PG_ARGISNULL(1) && head <= PG_GETARG_INT64(0))
		PG_RETURN_FLOAT8(0);
	if (!es_first_created_after(cat, GetActiveSnapshot(), PG_GETARG_INT64(0), head, &created_at))
		PG_RETURN_FLOAT8(0);
	/* (a restore may give any created_at, infinities too) */
	if (TIMESTAMP_IS_NOBEGIN(created_at))
		PG_RETURN_FLOAT8(get_float8_infinity());
	if (TIMESTAMP_IS_NOEND(created_at))
		PG_RETURN_FLOAT8(0);
	PG_RETURN_FLOAT8(Max(GetCurrentTimestamp() - created_at, 0) / 1000000.0);
}

/*
 * es_stats(): the counters of this database's work since the server started
 * (or es_stats_reset()), with the feed head and the oldest transaction
 * holding positions, which holds every feed reader back.  EXECUTE is
 * granted to pg_monitor: nothing of the events is shown.
 */
#define ES_STATS_COLUMNS	15

PG_FUNCTION_INFO_V1(es_stats);
Datum
es_stats(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	EsStats		st;
	TupleDesc	desc;
	Datum		values[ES_STATS_COLUMNS];
	bool		nulls[ES_STATS_COLUMNS];
	NameData   *dbname = palloc0(sizeof(NameData));
	char	   *name = get_database_name(MyDatabaseId);
	int			col = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE ||
		desc->natts != ES_STATS_COLUMNS)
		elog(ERROR, "es_stats must return a row of %d columns", ES_STATS_COLUMNS);
	memset(nulls, false, sizeof(nulls));
	(void) es_stats_read(MyDatabaseId, &st);

	namestrcpy(dbname, name ? name : "");
	values[col++] = NameGetDatum(dbname);
	for (int i = 0; i < ES_STAT_COUNT; i++)
		values[col++] = Int64GetDatum((int64) Min(st.counters[i], (uint64) PG_INT64_MAX));
	values[col++] = BoolGetDatum(st.notifier_running);
	if (es_head_known(cat) && !IsInParallelMode())
		values[col++] = Int64GetDatum(es_readable_head(cat));
	else
		nulls[col++] = true;
	if (st.oldest_pid != 0)
	{
		values[col++] = Int32GetDatum(st.oldest_pid);
		values[col++] = Float8GetDatum(Max(GetCurrentTimestamp() - st.oldest_since, 0) / 1000000.0);
	}
	else
	{
		nulls[col++] = true;
		nulls[col++] = true;
	}
	if (st.reset_at != 0)
		values[col++] = TimestampTzGetDatum(st.reset_at);
	else
		nulls[col++] = true;
	Assert(col == ES_STATS_COLUMNS);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* es_stats_reset(): the database's counters from zero (superusers). */
PG_FUNCTION_INFO_V1(es_stats_reset_sql);
Datum
es_stats_reset_sql(PG_FUNCTION_ARGS)
{
	(void) es_ready();
	es_stats_reset(MyDatabaseId);
	PG_RETURN_VOID();
}

/*
 * es_feed_reached() returns bigint: the position the session's last feed
 * read got to (NULL before one).
 */
PG_FUNCTION_INFO_V1(es_feed_reached);
Datum
es_feed_reached(PG_FUNCTION_ARGS)
{
	if (es_reached < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(es_reached);
}

/*
 * _es_check_filter(category text, types text[]): a projection's filter, by
 * the rules of the feed's arguments.
 */
PG_FUNCTION_INFO_V1(es_check_filter_sql);
Datum
es_check_filter_sql(PG_FUNCTION_ARGS)
{
	int			ntypes;

	if (!PG_ARGISNULL(0))
		(void) es_category_arg(fcinfo, 0);
	(void) es_types_arg(fcinfo, 1, &ntypes);
	PG_RETURN_VOID();
}
