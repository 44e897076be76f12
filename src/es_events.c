/*-------------------------------------------------------------------------
 *
 * es_events.c
 *	  Layer 2: what several entry points ask of the stored events, and the
 *	  readiness of the extension (es_events.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/catcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_events.h"
#include "es_register.h"
#include "es_scan.h"

/* the register's entry of this database, once looked up */
static EsDatabase *es_my_database = NULL;

const EsCatalog *
es_ready(void)
{
	es_require_preload();
	return es_catalog();
}

/*
 * The position of the newest event below "below" that snapshot sees, by a
 * backward scan of the primary key; 0 when there is none.
 */
int64
es_newest_position(const EsCatalog *cat, Snapshot snapshot, int64 below)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = es_index_open(cat->events_pkey, AccessShareLock);
	EsScan		scan;
	int64		result = 0;

	es_scan_init(&scan, rel, idx);
	es_scan_key_int8(&scan, 1, BTLessStrategyNumber, below);
	if (es_scan_first(&scan, snapshot, BackwardScanDirection))
	{
		bool		isnull;

		result = DatumGetInt64(slot_getattr(scan.slot, Anum_es_events_position, &isnull));
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * Highest position stored in the events table.  Every committed row
 * counts, whatever our snapshot.
 */
static int64
es_read_max_position(const EsCatalog *cat)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int64		result = es_newest_position(cat, snapshot, PG_INT64_MAX);

	UnregisterSnapshot(snapshot);
	return result;
}

/*
 * The highest position of erased events.  A consumer may have checkpointed
 * past them, so positions are never handed out at or below it again; but a
 * restore may still give positions below it explicitly (erasures is small,
 * dumped, and may be restored before the events).
 */
static int64
es_read_erased_floor(const EsCatalog *cat)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int64		result = 0;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;

	rel = es_table_open(cat->erasures, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		int64		erased = DatumGetInt64(slot_getattr(slot, Anum_es_erasures_last_position, &isnull));

		result = Max(result, erased);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	UnregisterSnapshot(snapshot);
	return result;
}

/* Is the events table the target of a logical replication subscription? */
static bool
es_events_subscribed(const EsCatalog *cat)
{
	CatCList   *list = SearchSysCacheList1(SUBSCRIPTIONRELMAP,
										   ObjectIdGetDatum(cat->events));
	bool		result = list->n_members > 0;

	ReleaseSysCacheList(list);
	return result;
}

/*
 * Can this database tell its feed head?  Not during recovery (a standby),
 * nor as the target of a logical replication subscription.
 */
bool
es_head_known(const EsCatalog *cat)
{
	return !RecoveryInProgress() && !es_events_subscribed(cat);
}

/*
 * The register's entry of our database, with its counter loaded.
 *
 * The first backend to get here after a server start (or CREATE EXTENSION)
 * reads the highest stored position and the erased floor, and loads them
 * (es_positions_load says why that is safe).
 */
EsDatabase *
es_positions_ready(const EsCatalog *cat)
{
	EsDatabase *db;

	if (es_my_database == NULL)
		es_my_database = es_database_entry(MyDatabaseId, true);
	db = es_my_database;

	/*
	 * A logical replication subscriber receives events in commit order, not
	 * position order, from a sender that hands out the positions: it can
	 * neither tell a safe horizon nor take positions of its own.  (The
	 * catalog cache makes this check a hash lookup.)  Once the subscription
	 * is gone, the positions continue above the replicated ones.
	 */
	if (es_events_subscribed(cat))
	{
		es_positions_subscribed(db);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.events\" is the target of a logical replication subscription",
						ES_SCHEMA_NAME),
				 errdetail("Replicated events arrive in commit order: this database can neither tell which positions are final nor hand out its own."),
				 errhint("Read the feed and append on the publisher; stream reads work here.")));
	}
	(void) es_positions_unsubscribed(db);

	if (!es_positions_loaded(db))
	{
		/*
		 * A standby replays commits in commit order and knows nothing of
		 * the positions the primary's open transactions hold: it cannot
		 * tell a safe horizon, and the counter would be stale after
		 * promotion.  Load only once recovery is over.
		 */
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the event feed cannot be read during recovery"),
					 errdetail("A standby cannot tell whether a transaction on the primary still holds a lower position."),
					 errhint("Read the feed from the primary; stream reads work on a standby.")));
		es_positions_load(db, es_read_max_position(cat), es_read_erased_floor(cat));
	}
	return db;
}

/*
 * The position of the newest event a feed reader may see now: the highest
 * committed position below the safe horizon of the position register, read
 * with a snapshot taken after the horizon.  0 when there is none.
 */
int64
es_readable_head(const EsCatalog *cat)
{
	int64		horizon = es_safe_horizon(es_positions_ready(cat));
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	int64		head = es_newest_position(cat, snapshot, horizon);

	UnregisterSnapshot(snapshot);
	return head;
}

/*
 * The highest version stored for the stream (0 if none), seen with
 * SnapshotSelf.  The caller has claimed the stream.
 */
int64
es_max_stored_version(const EsCatalog *cat, text *stream)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = es_index_open(cat->events_stream_version, AccessShareLock);
	EsScan		scan;
	int64		result = 0;

	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	if (es_scan_first(&scan, SnapshotSelf, BackwardScanDirection))
	{
		bool		isnull;

		result = DatumGetInt64(slot_getattr(scan.slot, Anum_es_events_version, &isnull));
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return result;
}

/* The created_at of the first event of a scan of events (false: none); ends it. */
static bool
es_scan_first_created_at(EsScan *scan, Snapshot snapshot, TimestampTz *created_at)
{
	bool		found = es_scan_first(scan, snapshot, ForwardScanDirection);

	if (found)
	{
		bool		isnull;

		*created_at = DatumGetTimestampTz(slot_getattr(scan->slot, Anum_es_events_created_at, &isnull));
	}
	es_scan_end(scan);
	return found;
}

/*
 * The created_at of the stream's event at version, as snapshot sees it;
 * false if there is none.
 */
bool
es_event_created_at(const EsCatalog *cat, Snapshot snapshot, text *stream,
					int64 version, TimestampTz *created_at)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = es_index_open(cat->events_stream_version, AccessShareLock);
	EsScan		scan;
	bool		found;

	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	es_scan_key_int8(&scan, 2, BTEqualStrategyNumber, version);
	found = es_scan_first_created_at(&scan, snapshot, created_at);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The created_at of the first event after position after (and at or below
 * upto, unless upto is 0), as snapshot sees it; false if there is none.
 * One probe of the primary key, whatever the number of events after it.
 */
bool
es_first_created_after(const EsCatalog *cat, Snapshot snapshot, int64 after,
					   int64 upto, TimestampTz *created_at)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = es_index_open(cat->events_pkey, AccessShareLock);
	EsScan		scan;
	bool		found;

	es_scan_init(&scan, rel, idx);
	es_scan_key_int8(&scan, 1, BTGreaterStrategyNumber, after);
	if (upto > 0)
		es_scan_key_int8(&scan, 1, BTLessEqualStrategyNumber, upto);
	found = es_scan_first_created_at(&scan, snapshot, created_at);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}
