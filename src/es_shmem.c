/*-------------------------------------------------------------------------
 *
 * es_shmem.c
 *	  The position register: a shared-memory allocator of event positions
 *	  that also knows the lowest position each open transaction holds.
 *
 * Positions are numbered per database.  Each database that uses the
 * extension has one EsDatabase entry holding the next free position, and
 * the state of its notifier worker.  Each PGPROC has one EsSlot, written only
 * by its owner, holding the lowest position its open transaction may still
 * commit (0 when it holds none).
 *
 * Locking rules
 * -------------
 * EsShared->lock (an LWLock) protects the assignment of database entries
 * (dbid), their "initialized" flag and every notifier field.  Hot paths read
 * dbid, initialized and notifier_procno without the lock: each is a single
 * aligned word that only changes under the lock, and a stale read only
 * costs a retry under the lock or a spurious latch wake-up.
 *
 * next_position is an atomic counter, advanced only by atomic operations
 * (fetch-add, or compare-and-swap for an explicitly given position).
 *
 * The slot protocol that makes readers gap-safe:
 *
 *	 appender:	slot.min = read(next)		-- a lower bound, published first
 *				full barrier
 *				first = fetch_add(next, n)
 *				slot.min = first			-- tightened, still <= all it holds
 *	 end of transaction (xact callback, after the commit is visible to new
 *	 snapshots):	slot.min = 0
 *
 *	 reader:	h = read(next); full barrier
 *				h = min(h, every nonzero slot.min of this database)
 *
 * Every position below h was handed out before the reader read next, so its
 * holder had published a lower bound before that; the reader sees the bound,
 * or the cleared slot of a transaction whose commit (or abort) is already
 * visible.  A reader that takes its snapshot after computing h therefore
 * sees every event below h that will ever be committed: nothing below h can
 * appear later.  That is the gap-safe guarantee of the feed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/genam.h"
#include "access/table.h"
#include "access/twophase.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "postmaster/autovacuum.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/catcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "executor/tuptable.h"
#include "access/tableam.h"
#include "utils/fmgroids.h"

#include "event_store.h"

typedef enum EsNotifierState
{
	ES_NOTIFIER_NONE = 0,
	ES_NOTIFIER_STARTING,
	ES_NOTIFIER_RUNNING
} EsNotifierState;

struct EsDatabase
{
	Oid			dbid;			/* InvalidOid: free entry */
	bool		initialized;	/* next_position loaded from the table */
	pg_atomic_uint64 next_position; /* next position to hand out */
	/* notifier */
	EsNotifierState notifier_state;
	int			notifier_procno;	/* pgprocno of the running notifier */
	int			notifier_pid;
	bool		notifier_stop;	/* a database command wants it gone */
	bool		notifier_failed;	/* the last launch could not register */
	uint64		notifier_start_failures;	/* launches that could not register */
	TimestampTz notifier_launched;	/* last launch attempt */
	int64		notified_upto;	/* highest position the notifier examined */
	uint64		generation;		/* bumped by each reset of the positions */
	pg_atomic_uint32 wake_pending;	/* a commit since the notifier's last look */
	uint64		position_floor; /* positions are allocated above it */
	pg_atomic_uint32 registry_committing;	/* changes of rules committing */
	bool		subscribed_seen;	/* events was seen as a subscription's target */
};

typedef struct EsSlot
{
	pg_atomic_uint64 min_position;	/* 0: holds no position */
	Oid			dbid;			/* database of the holder */
} EsSlot;

typedef struct EsShared
{
	LWLock	   *lock;
	int			ndatabases;
	int			nslots;
	EsSlot	   *slots;
	EsDatabase	databases[FLEXIBLE_ARRAY_MEMBER];
} EsShared;

static EsShared *es_shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* backend-local state */
static EsDatabase *MyEsDatabase = NULL;
static bool es_holds_positions = false;

static void es_xact_callback(XactEvent event, void *arg);
static void es_backend_exit(int code, Datum arg);
static void es_release_positions(bool committed);

/*
 * Number of PGPROCs, hence of slots: one per backend, auxiliary process and
 * prepared transaction, as in InitProcGlobal().
 */
static int
es_total_procs(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
#else
	/* MaxBackends is not computed yet when _PG_init runs before 15 */
	return MaxConnections + autovacuum_max_workers + 1 + max_worker_processes +
		max_wal_senders + NUM_AUXILIARY_PROCS + max_prepared_xacts;
#endif
}

static Size
es_shmem_size(void)
{
	Size		size;

	size = MAXALIGN(add_size(offsetof(EsShared, databases),
							 mul_size(es_max_databases, sizeof(EsDatabase))));
	size = add_size(size, mul_size(es_total_procs(), sizeof(EsSlot)));
	return size;
}

static void
es_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(es_shmem_size());
	RequestNamedLWLockTranche("event_store", 1);
}

static void
es_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	es_shared = ShmemInitStruct("event_store", es_shmem_size(), &found);
	if (!found)
	{
		int			i;

		es_shared->lock = &(GetNamedLWLockTranche("event_store"))->lock;
		es_shared->ndatabases = es_max_databases;
		es_shared->nslots = es_total_procs();
		es_shared->slots = (EsSlot *)
			((char *) es_shared +
			 MAXALIGN(offsetof(EsShared, databases) +
					  es_max_databases * sizeof(EsDatabase)));
		for (i = 0; i < es_shared->ndatabases; i++)
		{
			EsDatabase *db = &es_shared->databases[i];

			db->dbid = InvalidOid;
			db->initialized = false;
			pg_atomic_init_u64(&db->next_position, 1);
			pg_atomic_init_u32(&db->wake_pending, 0);
			pg_atomic_init_u32(&db->registry_committing, 0);
			db->notifier_state = ES_NOTIFIER_NONE;
			db->notifier_procno = -1;
			db->notifier_pid = 0;
			db->notifier_stop = false;
			db->notifier_failed = false;
			db->subscribed_seen = false;
			db->position_floor = 0;
			db->notifier_launched = 0;
			db->notified_upto = 0;
			db->generation = 0;
		}
		for (i = 0; i < es_shared->nslots; i++)
		{
			pg_atomic_init_u64(&es_shared->slots[i].min_position, 0);
			es_shared->slots[i].dbid = InvalidOid;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init while shared_preload_libraries are loaded.
 */
void
es_shmem_init_hooks(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = es_shmem_request;
#else
	es_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = es_shmem_startup;

	RegisterXactCallback(es_xact_callback, NULL);
}

bool
es_shmem_ready(void)
{
	return es_shared != NULL;
}

void
es_require_preload(void)
{
	if (es_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event_store must be loaded via shared_preload_libraries"),
				 errdetail("The position register of the event feed lives in shared memory, which is set up when the server starts."),
				 errhint("Add event_store to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * The database entry of dbid; create it when asked and absent.
 *
 * Entries of dropped databases are given back by es_forget_database(); when
 * the array is full we also look for entries whose database no longer
 * exists (it may have been dropped while the server ran without us seeing
 * the command, e.g. by a pg_upgrade'd catalog).
 */
EsDatabase *
es_database_entry(Oid dbid, bool create)
{
	EsDatabase *found = NULL;
	EsDatabase *free_entry = NULL;
	int			i;
	int			attempt;

	es_require_preload();

	for (attempt = 0; attempt < 2; attempt++)
	{
		LWLockAcquire(es_shared->lock, create ? LW_EXCLUSIVE : LW_SHARED);
		for (i = 0; i < es_shared->ndatabases; i++)
		{
			EsDatabase *db = &es_shared->databases[i];

			if (db->dbid == dbid)
			{
				found = db;
				break;
			}
			if (db->dbid == InvalidOid && free_entry == NULL)
				free_entry = db;
		}
		if (found == NULL && create && free_entry != NULL)
		{
			found = free_entry;
			found->dbid = dbid;
			found->initialized = false;
			pg_atomic_write_u64(&found->next_position, 1);
			pg_atomic_write_u32(&found->registry_committing, 0);
			found->notifier_state = ES_NOTIFIER_NONE;
			found->notifier_procno = -1;
			found->notifier_pid = 0;
			found->notifier_stop = false;
			found->notifier_failed = false;
			found->subscribed_seen = false;
			found->position_floor = 0;
			found->notifier_launched = 0;
			found->generation++;
			found->notified_upto = 0;
		}
		LWLockRelease(es_shared->lock);

		if (found != NULL || !create)
			return found;

		/*
		 * Full: free the entries of databases that no longer exist, outside
		 * the LWLock (the syscache may need to read the catalog), then retry.
		 */
		{
			Oid		   *candidates = palloc(sizeof(Oid) * es_shared->ndatabases);
			int			ncandidates = 0;

			LWLockAcquire(es_shared->lock, LW_SHARED);
			for (i = 0; i < es_shared->ndatabases; i++)
				candidates[ncandidates++] = es_shared->databases[i].dbid;
			LWLockRelease(es_shared->lock);

			for (i = 0; i < ncandidates; i++)
			{
				if (OidIsValid(candidates[i]) &&
					!SearchSysCacheExists1(DATABASEOID,
										   ObjectIdGetDatum(candidates[i])))
					es_forget_database(candidates[i]);
			}
			pfree(candidates);
		}
	}

	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("too many databases use event_store"),
			 errdetail("event_store.max_databases is %d.", es_max_databases),
			 errhint("Increase event_store.max_databases and restart the server.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * Give back the entry of a dropped database.  Nobody can use it any more:
 * no backend is connected to a dropped database, and a notifier still
 * starting for it fails to connect before it attaches.
 */
void
es_forget_database(Oid dbid)
{
	int			i;

	if (es_shared == NULL)
		return;
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < es_shared->ndatabases; i++)
	{
		EsDatabase *db = &es_shared->databases[i];

		if (db->dbid == dbid)
		{
			db->dbid = InvalidOid;
			db->initialized = false;
			db->notifier_state = ES_NOTIFIER_NONE;
			db->notifier_procno = -1;
			db->notifier_pid = 0;
		}
	}
	LWLockRelease(es_shared->lock);
}

/*
 * Forget what we know of the database's positions: the next use reloads the
 * highest position from the events table.  Called by CREATE EXTENSION: the
 * table is new (empty, or about to be filled by a restore, which gives its
 * positions), so positions start again from it.
 */
void
es_reset_database(Oid dbid)
{
	EsDatabase *db = es_database_entry(dbid, true);
	bool		held = false;
	int			i;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < es_shared->nslots; i++)
		if (es_shared->slots[i].dbid == dbid &&
			pg_atomic_read_u64(&es_shared->slots[i].min_position) != 0)
			held = true;
	/* a new events table: its positions start afresh, unless some are held */
	if (!held)
		pg_atomic_write_u64(&db->next_position, 1);
	db->initialized = false;
	db->generation++;			/* a notifier's step in flight must not write back */
	LWLockRelease(es_shared->lock);
}

/*
 * Highest position stored in the events table, by a backward scan of its
 * primary key.  Every committed row counts, whatever our snapshot.
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
 * The entry of our database, with next_position loaded.
 *
 * The first backend to get here after a server start (or CREATE EXTENSION)
 * reads the highest stored position.  It reads it before taking the lock;
 * that is safe because no position is handed out before "initialized" is
 * set, so the table cannot grow meanwhile.
 */
static EsDatabase *
es_my_database(const EsCatalog *cat)
{
	EsDatabase *db;

	if (MyEsDatabase == NULL)
	{
		MyEsDatabase = es_database_entry(MyDatabaseId, true);
		before_shmem_exit(es_backend_exit, (Datum) 0);
	}
	db = MyEsDatabase;

	/*
	 * A logical replication subscriber receives events in commit order, not
	 * position order, from a sender that hands out the positions: it can
	 * neither tell a safe horizon nor take positions of its own.  (The
	 * catalog cache makes this check a hash lookup.)  Once the subscription
	 * is gone, the positions continue above the replicated ones.
	 */
	if (es_events_subscribed(cat))
	{
		db->subscribed_seen = true;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event_store.events is the target of a logical replication subscription"),
				 errdetail("Replicated events arrive in commit order: this database can neither tell which positions are final nor hand out its own."),
				 errhint("Read the feed and append on the publisher; stream reads work here.")));
	}
	if (db->subscribed_seen)
	{
		LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
		if (db->subscribed_seen)
		{
			db->initialized = false;	/* reload: replication moved the head */
			db->subscribed_seen = false;
		}
		LWLockRelease(es_shared->lock);
	}

	if (!db->initialized)
	{
		int64		max_position;
		int64		floor;

		/*
		 * A standby replays commits in commit order and knows nothing of
		 * the positions the primary's open transactions hold: it cannot
		 * tell a safe horizon, and the counter would be stale after
		 * promotion.  Initialize only once recovery is over.
		 */
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the event feed cannot be read during recovery"),
					 errdetail("A standby cannot tell whether a transaction on the primary still holds a lower position."),
					 errhint("Read the feed from the primary; stream reads work on a standby.")));
		max_position = es_read_max_position(cat);
		floor = es_read_erased_floor(cat);

		LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
		if (!db->initialized)
		{
			uint64		next = pg_atomic_read_u64(&db->next_position);

			if (next < (uint64) max_position + 1)
				next = (uint64) max_position + 1;
			pg_atomic_write_u64(&db->next_position, next);
			db->position_floor = (uint64) floor;
			db->notified_upto = (int64) next - 1;
			pg_memory_barrier();
			db->initialized = true;
		}
		LWLockRelease(es_shared->lock);
	}
	pg_read_barrier();
	return db;
}

static EsSlot *
es_my_slot(void)
{
	int			procno = ES_MY_PROCNO;

	if (procno < 0 || procno >= es_shared->nslots)
		elog(ERROR, "event_store: process number %d has no position slot", procno);
	return &es_shared->slots[procno];
}

/*
 * Publish a lower bound of what this transaction is about to take.
 */
static void
es_publish_lower_bound(EsDatabase *db)
{
	EsSlot	   *slot = es_my_slot();

	slot->dbid = MyDatabaseId;
	pg_write_barrier();
	pg_atomic_write_u64(&slot->min_position,
						pg_atomic_read_u64(&db->next_position));
	pg_memory_barrier();
	es_holds_positions = true;
}

static void
es_positions_exhausted(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
			 errmsg("event positions are exhausted"),
			 errdetail("Positions end at %lld.", (long long) ES_MAX_POSITION)));
}

/*
 * Hand out count consecutive positions; returns the first.  The caller must
 * hold the lock of the stream it appends to, so that positions follow
 * versions within a stream.
 */
int64
es_allocate_positions(const EsCatalog *cat, int64 count)
{
	EsDatabase *db = es_my_database(cat);
	bool		first_in_xact = !es_holds_positions;
	uint64		first;

	Assert(count > 0 && count <= ES_MAX_APPEND_EVENTS);
	/* the batch's positions are first .. first + count - 1 */
	if (pg_atomic_read_u64(&db->next_position) > (uint64) (ES_MAX_POSITION - count + 1))
		es_positions_exhausted();
	if (first_in_xact)
		es_publish_lower_bound(db);

	/* never at or below an erased position (see es_read_erased_floor) */
	if (db->position_floor > 0)
	{
		uint64		cur = pg_atomic_read_u64(&db->next_position);

		while (cur <= db->position_floor &&
			   !pg_atomic_compare_exchange_u64(&db->next_position, &cur,
											   db->position_floor + 1))
			;
	}
	first = pg_atomic_fetch_add_u64(&db->next_position, (uint64) count);

	/*
	 * Concurrent appenders may all have passed the test above: the one that
	 * got positions past the end fails now, and so does every later one.
	 * (The counter stays far below where it would wrap.)
	 */
	if (first + count - 1 > (uint64) ES_MAX_POSITION)
		es_positions_exhausted();

	if (first_in_xact)
		pg_atomic_write_u64(&es_my_slot()->min_position, first);

	return (int64) first;
}

/*
 * Take an explicitly given position (a plain INSERT that names it, as a
 * restore does).  It must not be below the next free position: a reader may
 * already have read past anything lower.
 */
void
es_claim_position(const EsCatalog *cat, int64 position)
{
	EsDatabase *db = es_my_database(cat);
	uint64		cur;

	if (position < 1 || position > ES_MAX_POSITION)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("position must be between 1 and %lld", (long long) ES_MAX_POSITION)));

	if (!es_holds_positions)
		es_publish_lower_bound(db);

	cur = pg_atomic_read_u64(&db->next_position);
	for (;;)
	{
		if ((uint64) position < cur)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("position %lld is already taken or passed",
							(long long) position),
					 errdetail("The next free position is %llu.",
							   (unsigned long long) cur),
					 errhint("Leave the position column out and it is assigned.")));
		if (pg_atomic_compare_exchange_u64(&db->next_position, &cur,
										   (uint64) position + 1))
			break;
	}
}

/*
 * Every position below the result is settled: committed, or never to be.
 * The caller must take its snapshot after this returns.
 */
int64
es_safe_horizon(const EsCatalog *cat)
{
	EsDatabase *db = es_my_database(cat);
	uint64		horizon;
	int			i;

	horizon = pg_atomic_read_u64(&db->next_position);
	pg_memory_barrier();
	for (i = 0; i < es_shared->nslots; i++)
	{
		EsSlot	   *slot = &es_shared->slots[i];
		uint64		min_position = pg_atomic_read_u64(&slot->min_position);

		if (min_position == 0 || min_position >= horizon)
			continue;
		pg_read_barrier();
		if (slot->dbid == db->dbid)
			horizon = min_position;
	}
	return (int64) Min(horizon, (uint64) ES_MAX_POSITION + 1);
}

/*
 * Transaction end: clear our slot once the outcome is visible, and wake the
 * notifier.  PREPARE TRANSACTION is refused: a prepared transaction that
 * holds positions would stall every reader of the feed until somebody
 * resolves it, and the slot belongs to this backend, not to the prepared
 * transaction.
 */
static void
es_xact_callback(XactEvent event, void *arg)
{
	if (!es_holds_positions)
		return;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that appended events"),
					 errdetail("A prepared transaction holding event positions would hold back every reader of the feed until it is resolved."),
					 errhint("Commit the append directly.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			es_release_positions(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			es_release_positions(false);
			break;
		default:
			break;
	}
}

/*
 * Wake (or start) the notifier of our database.  A rollback wakes it too:
 * it may have been holding back events that others committed meanwhile.  It
 * never starts it: a rollback alone has nothing to announce.
 */
static void
es_notifier_wake(EsDatabase *db, bool committed)
{
	uint32		was_pending;
	int			procno;
	TimestampTz now;
	bool		launch = false;

	/*
	 * Signal the notifier only if no commit has since its last look: it
	 * will look again anyway, and a signal per commit costs a system call
	 * here and a wake-up there (a fifth of an append's time when measured).
	 * The exchange is a full barrier, so our commit is visible before the
	 * flag; the notifier clears the flag before it looks (es_notifier_
	 * begin_look), so a commit it may have missed finds the flag clear and
	 * signals.  The flag is set before we read which notifier runs: one
	 * that leaves for idleness clears notifier_procno before it reads the
	 * flag (es_notifier_leave_if_idle), so either it sees our flag and
	 * stays, or we see it gone and start another.
	 */
	was_pending = pg_atomic_exchange_u32(&db->wake_pending, 1);
	procno = db->notifier_procno;
	if (procno >= 0)
	{
		if (was_pending == 0)
			SetLatch(&GetPGProcByNumber(procno)->procLatch);
		return;
	}
	if (!committed)
		return;

	/*
	 * No notifier: start one now.  Only after a launch that could not
	 * register (no free worker slot) wait a second before trying again, so
	 * as not to retry on every commit; and launch again if one has not
	 * attached within a second (it died starting; a surplus one that
	 * starts late sees the other running and leaves).
	 */
	now = GetCurrentTimestamp();
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_procno < 0 &&
		((db->notifier_state == ES_NOTIFIER_NONE &&
		  (!db->notifier_failed ||
		   TimestampDifferenceExceeds(db->notifier_launched, now, 1000))) ||
		 (db->notifier_state == ES_NOTIFIER_STARTING &&
		  TimestampDifferenceExceeds(db->notifier_launched, now, 1000))))
	{
		db->notifier_state = ES_NOTIFIER_STARTING;
		db->notifier_launched = now;
		db->notifier_stop = false;
		launch = true;
	}
	LWLockRelease(es_shared->lock);

	if (launch)
	{
		bool		ok = es_notifier_launch(db->dbid);

		LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
		db->notifier_failed = !ok;
		if (!ok)
			db->notifier_start_failures++;
		if (!ok && db->notifier_state == ES_NOTIFIER_STARTING)
			db->notifier_state = ES_NOTIFIER_NONE;
		LWLockRelease(es_shared->lock);

		/*
		 * Listeners of this database wait in vain until a later commit
		 * finds a free slot: say so to the committing client, at most once
		 * a second per database (the retry interval above).
		 */
		if (!ok)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("event_store could not start the notifier of database %u",
							db->dbid),
					 errdetail("No background worker slot is free; listeners of the database are not woken until one is."),
					 errhint("Increase max_worker_processes, or lower event_store.notifier_idle_timeout so that idle notifiers leave sooner.")));
	}
}

static void
es_release_positions(bool committed)
{
	pg_atomic_write_u64(&es_my_slot()->min_position, 0);
	es_holds_positions = false;
	if (MyEsDatabase != NULL)
		es_notifier_wake(MyEsDatabase, committed);
}

/*
 * Backend exit with a transaction still open: it can only abort, but others'
 * commits it held back become readable, so the notifier must look.  (This
 * runs before the abort that would otherwise do it.)
 */
static void
es_backend_exit(int code, Datum arg)
{
	if (es_holds_positions)
		es_release_positions(false);
}

/*
 * Notifier bookkeeping (the worker itself is in es_notify.c).
 *
 * es_notifier_attach: register the calling worker as the notifier of db.
 * Returns false if another one runs or a database command asked it to stop.
 */
int64
es_notifier_attach(EsDatabase *db)
{
	int64		result = -1;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_state == ES_NOTIFIER_RUNNING && db->notifier_procno >= 0)
		;						/* another one runs */
	else if (db->notifier_stop)
		db->notifier_state = ES_NOTIFIER_NONE;	/* the next commit relaunches */
	else
	{
		db->notifier_state = ES_NOTIFIER_RUNNING;
		db->notifier_procno = ES_MY_PROCNO;
		db->notifier_pid = MyProcPid;
		result = db->notified_upto;
	}
	LWLockRelease(es_shared->lock);
	return result;
}

/*
 * The notifier is about to look for new events: from now on a commit must
 * signal it again (see es_notifier_wake).  Returns whether a commit had
 * asked for a look since the last one.
 */
bool
es_notifier_begin_look(EsDatabase *db)
{
	return pg_atomic_exchange_u32(&db->wake_pending, 0) != 0;
}

void
es_notifier_detach(EsDatabase *db)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_procno == ES_MY_PROCNO)
	{
		db->notifier_state = ES_NOTIFIER_NONE;
		db->notifier_procno = -1;
		db->notifier_pid = 0;
	}
	LWLockRelease(es_shared->lock);
}

/*
 * An idle notifier gives its worker slot back: it detaches, then looks
 * whether a commit came meanwhile (see es_notifier_wake for the other
 * half).  Returns true if it may leave; false if it must stay, attached
 * again.
 */
bool
es_notifier_leave_if_idle(EsDatabase *db)
{
	es_notifier_detach(db);
	pg_memory_barrier();
	if (pg_atomic_read_u32(&db->wake_pending) == 0)
		return true;

	/* a commit came: stay, unless another notifier was started for it */
	return es_notifier_attach(db) < 0;
}

/*
 * The notifier's progress: the highest position it has examined.  It is
 * kept in shared memory so that a restarted notifier neither repeats nor
 * skips, and reset with the database's positions.
 */
int64
es_notifier_progress(EsDatabase *db, uint64 *generation)
{
	int64		result;

	LWLockAcquire(es_shared->lock, LW_SHARED);
	result = db->notified_upto;
	*generation = db->generation;
	LWLockRelease(es_shared->lock);
	return result;
}

/* Record progress read at generation, unless positions were reset since. */
void
es_notifier_set_progress(EsDatabase *db, int64 upto, uint64 generation)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->generation == generation && upto > db->notified_upto)
		db->notified_upto = upto;
	LWLockRelease(es_shared->lock);
}

/*
 * Ask the notifier of dbid to go away: DROP DATABASE, CREATE DATABASE from
 * it as a template and the like need the database to have no connection.
 * The next commit that appends in that database starts it again.
 */
void
es_notifier_stop(Oid dbid)
{
	EsDatabase *db;
	int			pid = 0;

	if (es_shared == NULL)
		return;
	db = es_database_entry(dbid, false);
	if (db == NULL)
		return;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	db->notifier_stop = true;
	if (db->notifier_state == ES_NOTIFIER_RUNNING)
		pid = db->notifier_pid;
	LWLockRelease(es_shared->lock);

	if (pid != 0)
		kill(pid, SIGTERM);
}

/*
 * Changes of stream metadata or upcasters that are committing in this
 * database: counted from before the commit becomes visible (PRE_COMMIT)
 * until its invalidations have been sent (resource release after locks).
 * See es_lifecycle.c.
 */
void
es_registry_commit_begin(void)
{
	EsDatabase *db = es_database_entry(MyDatabaseId, true);

	pg_atomic_fetch_add_u32(&db->registry_committing, 1);
}

void
es_registry_commit_end(void)
{
	EsDatabase *db = es_database_entry(MyDatabaseId, false);

	if (db != NULL)
		pg_atomic_fetch_sub_u32(&db->registry_committing, 1);
}

/* Is such a change committing now?  (A full barrier before the read.) */
bool
es_registry_committing(void)
{
	EsDatabase *db = es_database_entry(MyDatabaseId, false);

	pg_memory_barrier();
	return db != NULL && pg_atomic_read_u32(&db->registry_committing) > 0;
}

/*
 * Does an open transaction hold positions in this database?  Its end may
 * make others' commits readable: the notifier must stay to announce them.
 */
bool
es_positions_held(EsDatabase *db)
{
	int			i;

	for (i = 0; i < es_shared->nslots; i++)
	{
		EsSlot	   *slot = &es_shared->slots[i];

		if (pg_atomic_read_u64(&slot->min_position) != 0)
		{
			pg_read_barrier();
			if (slot->dbid == db->dbid)
				return true;
		}
	}
	return false;
}
