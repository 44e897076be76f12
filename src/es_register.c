/*-------------------------------------------------------------------------
 *
 * es_register.c
 *	  Layer 1: the position register, a shared-memory allocator of event
 *	  positions that also knows the lowest position each open transaction
 *	  holds, and the shared state of each database (es_register.h).
 *
 * Positions are numbered per database.  Each database that uses the
 * extension has one EsDatabase entry; each PGPROC has one EsSlot, written
 * only by its owner, holding the lowest position its open transaction may
 * still commit (0 when it holds none).
 *
 * Locking rules
 * -------------
 * EsShared->lock (one LWLock, tranche "event_store") protects the fields of
 * each EsDatabase as follows.  "lock" means: written with the lock held in
 * exclusive mode, read with it held in either mode, unless said otherwise.
 *
 *	dbid				lock.  Hot paths read it without the lock: one
 *						aligned word that changes only under the lock, for
 *						an entry in use by this backend's database only when
 *						the database is dropped, when nobody uses it.
 *	initialized			lock.  Read without the lock on hot paths, after
 *						which a read barrier orders the reads of the
 *						position fields; a stale false costs a reload under
 *						the lock.
 *	next_position		atomic; advanced only by fetch-add or compare-and-
 *						swap, written plainly only under the lock with
 *						initialized false (no position is handed out then).
 *	position_floor		lock, written with initialized false; read without
 *						it once initialized is seen true (read barrier).
 *	subscribed_seen		lock (it was written without it before 0.2.0).
 *	notifier_*			lock; notifier_procno is also read without it when
 *						waking (a stale value costs a spurious wake-up or a
 *						launch that finds the notifier running), and
 *						notifier_waiting by a worker deciding whether to
 *						hand its slot over (a stale value delays that by a
 *						round).
 *	next_waiting (EsShared)	lock.
 *	notified_upto, generation	lock.
 *	stuck_projection	lock.
 *	stats				atomic: added to by fetch-add, by anyone.
 *	stats_reset			lock.
 *	wake_pending		atomic: exchanged by committers, cleared by the
 *						notifier (see es_notifier_signal).
 *	registry_committing	atomic: incremented and decremented by committing
 *						changes of rules, read by reads.
 *
 * EsSlot.min_position is atomic and written only by the slot's owner;
 * EsSlot.dbid and since are written by the owner before min_position is set
 * (write barrier) and read by others after min_position is seen nonzero
 * (read barrier; since may then be a later transaction's: es_stats() reads
 * an age, not a guarantee).
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

#include "access/twophase.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "event_store.h"
#include "es_compat.h"
#include "es_register.h"

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
	uint64		position_floor; /* positions are allocated above it */
	bool		subscribed_seen;	/* events was seen as a subscription's target */
	/* notifier */
	EsNotifierState notifier_state;
	int			notifier_procno;	/* pgprocno of the running notifier */
	int			notifier_pid;
	bool		notifier_stop;	/* a database command wants it gone */
	bool		notifier_failed;	/* the last launch could not register */
	bool		notifier_waiting;	/* wants a worker; all event_store.max_workers run */
	TimestampTz notifier_launched;	/* last launch attempt */
	int64		notified_upto;	/* highest position the notifier examined */
	uint64		generation;		/* bumped by each reset of the positions */
	pg_atomic_uint32 wake_pending;	/* a commit since the notifier's last look */
	pg_atomic_uint32 registry_committing;	/* changes of rules committing */
	char		stuck_projection[ES_MAX_CONSUMER_BYTES + 1];	/* "": none */
	pg_atomic_uint64 stats[ES_STAT_COUNT];	/* es_stats() */
	TimestampTz stats_reset;	/* when they started from zero */
};

typedef struct EsSlot
{
	pg_atomic_uint64 min_position;	/* 0: holds no position */
	Oid			dbid;			/* database of the holder */
	TimestampTz since;			/* when the holder took its first position */
} EsSlot;

typedef struct EsShared
{
	LWLock	   *lock;
	int			ndatabases;
	int			nslots;
	int			next_waiting;	/* where the search for a waiting database starts */
	EsSlot	   *slots;
	EsDatabase	databases[FLEXIBLE_ARRAY_MEMBER];
} EsShared;

int			es_max_databases = 32;
int			es_max_workers = 3;
es_release_hook_type es_release_hook = NULL;

static EsShared *es_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* backend-local state: the database whose positions this transaction holds */
static EsDatabase *es_holding = NULL;
static EsDatabase *es_database_entry_extended(Oid dbid, bool create, bool error_if_full);
static void es_stats_publish(EsDatabase *db, bool committed);
static bool es_exit_callback = false;

#define ES_LOCKED()			LWLockHeldByMeInMode(es_shared->lock, LW_EXCLUSIVE)

/*
 * The notifier's state of a database, and who runs it (procno and pid: -1
 * and 0 unless running).  The caller holds the lock exclusively.
 */
static void
es_notifier_set_state(EsDatabase *db, EsNotifierState state)
{
	Assert(ES_LOCKED());
	db->notifier_state = state;
	db->notifier_procno = state == ES_NOTIFIER_RUNNING ? ES_MY_PROCNO : -1;
	db->notifier_pid = state == ES_NOTIFIER_RUNNING ? MyProcPid : 0;
}

/*
 * Number of PGPROCs, hence of slots: one per backend, auxiliary process and
 * prepared transaction, as in InitProcGlobal().
 */
static int
es_total_procs(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
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

/* An entry as new: for dbid (InvalidOid: free).  With the lock held. */
static void
es_database_reset_entry(EsDatabase *db, Oid dbid)
{
	Assert(es_shared == NULL || !IsUnderPostmaster || ES_LOCKED());
	db->dbid = dbid;
	db->initialized = false;
	pg_atomic_write_u64(&db->next_position, 1);
	db->position_floor = 0;
	db->subscribed_seen = false;
	db->notifier_state = ES_NOTIFIER_NONE;
	db->notifier_procno = -1;
	db->notifier_pid = 0;
	db->notifier_stop = false;
	db->notifier_failed = false;
	db->notifier_waiting = false;
	db->notifier_launched = 0;
	db->notified_upto = 0;
	db->generation++;
	pg_atomic_write_u32(&db->wake_pending, 0);
	pg_atomic_write_u32(&db->registry_committing, 0);
	db->stuck_projection[0] = '\0';
	for (int i = 0; i < ES_STAT_COUNT; i++)
		pg_atomic_write_u64(&db->stats[i], 0);
	db->stats_reset = IsUnderPostmaster ? GetCurrentTimestamp() : 0;
}

static void
es_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
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
		es_shared->next_waiting = 0;
		es_shared->nslots = es_total_procs();
		es_shared->slots = (EsSlot *)
			((char *) es_shared +
			 MAXALIGN(offsetof(EsShared, databases) +
					  es_max_databases * sizeof(EsDatabase)));
		for (i = 0; i < es_shared->ndatabases; i++)
		{
			EsDatabase *db = &es_shared->databases[i];

			pg_atomic_init_u64(&db->next_position, 1);
			pg_atomic_init_u32(&db->wake_pending, 0);
			pg_atomic_init_u32(&db->registry_committing, 0);
			for (int j = 0; j < ES_STAT_COUNT; j++)
				pg_atomic_init_u64(&db->stats[j], 0);
			db->generation = 0;
			es_database_reset_entry(db, InvalidOid);
		}
		for (i = 0; i < es_shared->nslots; i++)
		{
			pg_atomic_init_u64(&es_shared->slots[i].min_position, 0);
			es_shared->slots[i].dbid = InvalidOid;
			es_shared->slots[i].since = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init while shared_preload_libraries are loaded.
 */
void
es_register_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = es_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = es_shmem_startup;
}

bool
es_register_ready(void)
{
	return es_shared != NULL;
}

void
es_require_preload(void)
{
	if (es_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"event_store\" must be loaded via shared_preload_libraries"),
				 errdetail("The position register of the event feed lives in shared memory, which is set up when the server starts."),
				 errhint("Add event_store to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * The entry of dbid, or NULL (*free_entry: the first unused one, if asked).
 * The caller holds the lock, in either mode.
 */
static EsDatabase *
es_database_lookup(Oid dbid, EsDatabase **free_entry)
{
	int			i;

	Assert(LWLockHeldByMe(es_shared->lock));
	if (free_entry != NULL)
		*free_entry = NULL;
	for (i = 0; i < es_shared->ndatabases; i++)
	{
		EsDatabase *db = &es_shared->databases[i];

		if (db->dbid == dbid && OidIsValid(dbid))
			return db;
		if (free_entry != NULL && db->dbid == InvalidOid && *free_entry == NULL)
			*free_entry = db;
	}
	return NULL;
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
	return es_database_entry_extended(dbid, create, true);
}

/* the same; when the register is full, NULL unless error_if_full */
static EsDatabase *
es_database_entry_extended(Oid dbid, bool create, bool error_if_full)
{
	EsDatabase *found = NULL;
	EsDatabase *free_entry = NULL;
	int			i;
	int			attempt;

	es_require_preload();

	for (attempt = 0; attempt < 2; attempt++)
	{
		LWLockAcquire(es_shared->lock, create ? LW_EXCLUSIVE : LW_SHARED);
		found = es_database_lookup(dbid, &free_entry);
		if (found == NULL && create && free_entry != NULL)
		{
			found = free_entry;
			es_database_reset_entry(found, dbid);
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

	if (!error_if_full)
		return NULL;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("too many databases use event_store"),
			 errdetail("event_store.max_databases is %d.", es_max_databases),
			 errhint("Increase event_store.max_databases and restart the server.")));
	return NULL;				/* keep compiler quiet */
}

Oid
es_database_oid(EsDatabase *db)
{
	return db->dbid;
}

/*
 * Give back the entry of a dropped database.  Nobody can use it any more:
 * no backend is connected to a dropped database, and a notifier still
 * starting for it fails to connect before it attaches.
 */
void
es_forget_database(Oid dbid)
{
	EsDatabase *db;

	if (es_shared == NULL)
		return;
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	db = es_database_lookup(dbid, NULL);
	if (db != NULL)
		es_database_reset_entry(db, InvalidOid);
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

/* ---------------------------------------------------------------------
 * Positions
 * ---------------------------------------------------------------------
 */

/* Has the counter been loaded?  (Then a read barrier.) */
bool
es_positions_loaded(EsDatabase *db)
{
	bool		loaded = db->initialized;

	pg_read_barrier();
	return loaded;
}

/*
 * Load the counter: positions continue above the highest stored one and
 * above every erased one.  The caller read both before taking the lock;
 * that is safe because no position is handed out before "initialized" is
 * set, so the table cannot grow meanwhile.
 */
void
es_positions_load(EsDatabase *db, int64 max_position, int64 erased_floor)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (!db->initialized)
	{
		uint64		next = pg_atomic_read_u64(&db->next_position);

		if (next < (uint64) max_position + 1)
			next = (uint64) max_position + 1;
		pg_atomic_write_u64(&db->next_position, next);
		db->position_floor = (uint64) erased_floor;
		db->notified_upto = (int64) next - 1;
		pg_memory_barrier();
		db->initialized = true;
	}
	LWLockRelease(es_shared->lock);
}

/* events was seen as the target of a logical replication subscription */
void
es_positions_subscribed(EsDatabase *db)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	db->subscribed_seen = true;
	LWLockRelease(es_shared->lock);
}

/*
 * ... and no longer is: replication moved the head, so the counter is
 * loaded again.  True if it was seen so.
 */
bool
es_positions_unsubscribed(EsDatabase *db)
{
	bool		was = false;

	if (!db->subscribed_seen)	/* a stale false is caught on the next call */
		return false;
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->subscribed_seen)
	{
		db->initialized = false;
		db->subscribed_seen = false;
		was = true;
	}
	LWLockRelease(es_shared->lock);
	return was;
}

static EsSlot *
es_my_slot(void)
{
	int			procno = ES_MY_PROCNO;

	if (procno < 0 || procno >= es_shared->nslots)
		elog(ERROR, "process number %d has no position slot", procno);
	return &es_shared->slots[procno];
}

/* the positions of the transaction ending now, released at backend exit too */
static void
es_backend_exit(int code, Datum arg)
{
	if (es_holding != NULL)
		(void) es_register_release(false);
}

/*
 * Publish a lower bound of what this transaction is about to take.
 */
static void
es_publish_lower_bound(EsDatabase *db)
{
	EsSlot	   *slot = es_my_slot();

	if (!es_exit_callback)
	{
		/*
		 * Backend exit with a transaction still open: it can only abort, but
		 * others' commits it held back become readable, so the notifier must
		 * look.  (This runs before the abort that would otherwise do it.)
		 */
		before_shmem_exit(es_backend_exit, (Datum) 0);
		es_exit_callback = true;
	}
	slot->dbid = MyDatabaseId;
	slot->since = GetCurrentTimestamp();
	pg_write_barrier();
	pg_atomic_write_u64(&slot->min_position,
						pg_atomic_read_u64(&db->next_position));
	pg_memory_barrier();
	es_holding = db;
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
 * versions within a stream; db's counter is loaded.
 */
int64
es_allocate_positions(EsDatabase *db, int64 count)
{
	bool		first_in_xact = (es_holding == NULL);
	uint64		first;

	Assert(db->initialized);
	Assert(count > 0 && count <= ES_MAX_APPEND_EVENTS);
	/* the batch's positions are first .. first + count - 1 */
	if (pg_atomic_read_u64(&db->next_position) > (uint64) (ES_MAX_POSITION - count + 1))
		es_positions_exhausted();
	if (first_in_xact)
		es_publish_lower_bound(db);

	/* never at or below an erased position (see es_positions_load) */
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
es_claim_position(EsDatabase *db, int64 position)
{
	uint64		cur;

	Assert(db->initialized);
	if (position < 1 || position > ES_MAX_POSITION)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("position must be between 1 and %lld", (long long) ES_MAX_POSITION)));

	if (es_holding == NULL)
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
es_safe_horizon(EsDatabase *db)
{
	uint64		horizon;
	int			i;

	Assert(db->initialized);
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

/*
 * PREPARE TRANSACTION is refused: a prepared transaction that holds
 * positions would stall every reader of the feed until somebody resolves
 * it, and the slot belongs to this backend, not to the prepared transaction.
 */
void
es_register_pre_prepare(void)
{
	if (es_holding != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that appended events"),
				 errdetail("A prepared transaction holding event positions would hold back every reader of the feed until it is resolved."),
				 errhint("Commit the append directly.")));
}

/*
 * The transaction's end, once its outcome is visible: clear our slot and
 * tell the release hook (the notifier must look).  True if it held
 * positions.
 */
bool
es_register_release(bool committed)
{
	EsDatabase *db = es_holding;

	es_stats_publish(db, committed);
	if (db == NULL)
		return false;
	pg_atomic_write_u64(&es_my_slot()->min_position, 0);
	es_holding = NULL;
	if (es_release_hook)
		es_release_hook(db, committed);
	return true;
}

/* ---------------------------------------------------------------------
 * A projection whose page would not stop
 * ---------------------------------------------------------------------
 */
void
es_project_stuck_set(EsDatabase *db, const char *name)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	strlcpy(db->stuck_projection, name, sizeof(db->stuck_projection));
	LWLockRelease(es_shared->lock);
}

bool
es_project_stuck_pending(EsDatabase *db)
{
	bool		pending;

	LWLockAcquire(es_shared->lock, LW_SHARED);
	pending = db->stuck_projection[0] != '\0';
	LWLockRelease(es_shared->lock);
	return pending;
}

/* The name (true), forgotten; false if none. */
bool
es_project_stuck_take(EsDatabase *db, char *name, Size size)
{
	bool		found;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	found = db->stuck_projection[0] != '\0';
	if (found)
		strlcpy(name, db->stuck_projection, size);
	db->stuck_projection[0] = '\0';
	LWLockRelease(es_shared->lock);
	return found;
}

/* ---------------------------------------------------------------------
 * Counters (es_stats())
 * ---------------------------------------------------------------------
 */

/*
 * What this transaction counted, to be added to its database's counters if
 * it commits.  A subtransaction that counts saves what was counted before
 * it (one entry per subtransaction that counted, innermost last): its
 * rollback restores that, its commit hands the entry to its parent.
 */
typedef struct EsPendingSave
{
	SubTransactionId subid;
	uint64		counted[ES_STAT_COUNT];
	struct EsPendingSave *outer;
} EsPendingSave;

static uint64 es_pending[ES_STAT_COUNT];
static bool es_pending_any = false;
static EsPendingSave *es_pending_saves = NULL;	/* in TopTransactionContext */

void
es_stats_pending(EsStat stat, uint64 n)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	if (subid != TopSubTransactionId &&
		(es_pending_saves == NULL || es_pending_saves->subid != subid))
	{
		EsPendingSave *save = MemoryContextAlloc(TopTransactionContext,
												 sizeof(EsPendingSave));

		save->subid = subid;
		memcpy(save->counted, es_pending, sizeof(es_pending));
		save->outer = es_pending_saves;
		es_pending_saves = save;
	}
	es_pending[stat] += n;
	es_pending_any = true;
}

void
es_stats_subxact_end(bool committed, SubTransactionId mySubid,
					 SubTransactionId parentSubid)
{
	EsPendingSave *save = es_pending_saves;

	if (save == NULL || save->subid != mySubid)
		return;
	if (!committed)
		memcpy(es_pending, save->counted, sizeof(es_pending));
	else if (parentSubid != TopSubTransactionId &&
			 (save->outer == NULL || save->outer->subid != parentSubid))
	{
		/* the parent had counted nothing: this is what it started from */
		save->subid = parentSubid;
		return;
	}
	es_pending_saves = save->outer;
	pfree(save);
}

/* Count in this database at once, whatever becomes of the transaction. */
void
es_stats_count(EsStat stat, uint64 n)
{
	EsDatabase *db = es_database_entry_extended(MyDatabaseId, true, false);

	if (db != NULL)
		pg_atomic_fetch_add_u64(&db->stats[stat], n);
}

/*
 * The transaction's end: its counts go to its database if it committed;
 * an appending transaction (db, the database it holds positions in) counts
 * as committed or rolled back.  Runs after the outcome is visible, where an
 * error would be fatal: it takes no lock it could fail on and allocates
 * nothing.
 */
static void
es_stats_publish(EsDatabase *db, bool committed)
{
	bool		any = es_pending_any;

	/* the saves were in the transaction's memory, gone with it */
	es_pending_saves = NULL;
	es_pending_any = false;
	if (!any && db == NULL)
		return;
	/*
	 * An appending transaction counts if it committed events (not if what
	 * it appended was rolled back with a savepoint, or skipped by ON
	 * CONFLICT DO NOTHING: it held positions all the same).
	 */
	if (committed && db != NULL && es_pending[ES_STAT_EVENTS] > 0)
		es_pending[ES_STAT_TRANSACTIONS]++;
	else if (!committed && db != NULL)
		es_pending[ES_STAT_ROLLED_BACK]++;
	if (db == NULL && committed)
		db = es_database_entry_extended(MyDatabaseId, false, false);
	for (int i = 0; i < ES_STAT_COUNT; i++)
	{
		/* a rollback counts itself, nothing of what it did */
		if (db != NULL && es_pending[i] != 0 &&
			(committed || i == ES_STAT_ROLLED_BACK))
			pg_atomic_fetch_add_u64(&db->stats[i], es_pending[i]);
		es_pending[i] = 0;
	}
}

/*
 * The counters of dbid and what the register knows now: whether its
 * notifier runs, the oldest transaction holding positions.  False if the
 * database has no entry (nothing was counted since the server started).
 */
bool
es_stats_read(Oid dbid, EsStats *stats)
{
	EsDatabase *db;

	memset(stats, 0, sizeof(*stats));
	if (es_shared == NULL)
		return false;
	LWLockAcquire(es_shared->lock, LW_SHARED);
	db = es_database_lookup(dbid, NULL);
	if (db != NULL)
	{
		for (int i = 0; i < ES_STAT_COUNT; i++)
			stats->counters[i] = pg_atomic_read_u64(&db->stats[i]);
		stats->reset_at = db->stats_reset;
		stats->notifier_running = db->notifier_state == ES_NOTIFIER_RUNNING;
	}
	LWLockRelease(es_shared->lock);

	for (int i = 0; i < es_shared->nslots; i++)
	{
		EsSlot	   *slot = &es_shared->slots[i];
		TimestampTz since;
		int			pid;

		if (pg_atomic_read_u64(&slot->min_position) == 0)
			continue;
		pg_read_barrier();
		if (slot->dbid != dbid)
			continue;
		since = slot->since;
		pid = ProcGlobal->allProcs[i].pid;
		if (pid != 0 && (stats->oldest_pid == 0 || since < stats->oldest_since))
		{
			stats->oldest_pid = pid;
			stats->oldest_since = since;
		}
	}
	return db != NULL;
}

/* Start dbid's counters from zero now. */
void
es_stats_reset(Oid dbid)
{
	EsDatabase *db = es_database_entry(dbid, true);

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ES_STAT_COUNT; i++)
		pg_atomic_write_u64(&db->stats[i], 0);
	db->stats_reset = GetCurrentTimestamp();
	LWLockRelease(es_shared->lock);
}

/* ---------------------------------------------------------------------
 * Committing changes of rules (see es_emit.c)
 * ---------------------------------------------------------------------
 */
bool
es_registry_commit_begin(void)
{
	/*
	 * Called in PRE_COMMIT, where an error would fail the commit (a logical
	 * replication apply worker would retry it forever): when the register
	 * is full, the commit is not counted, and the reads of this database
	 * (which cannot count either) rely on the invalidations alone.
	 */
	EsDatabase *db = es_database_entry_extended(MyDatabaseId, true, false);

	if (db == NULL)
		return false;
	pg_atomic_fetch_add_u32(&db->registry_committing, 1);
	return true;
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

/* ---------------------------------------------------------------------
 * The notifier's shared state
 * ---------------------------------------------------------------------
 */

/*
 * Workers running or starting, all databases.  With the lock held.  A
 * launch that has not attached after ES_STARTING_MAX_MS is not counted: its
 * worker died starting (its database dropped, say), and must not hold a
 * place for ever.
 */
#define ES_STARTING_MAX_MS	10000

static int
es_notifier_count_locked(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;
	int			n = 0;

	Assert(LWLockHeldByMe(es_shared->lock));
	for (i = 0; i < es_shared->ndatabases; i++)
	{
		EsDatabase *db = &es_shared->databases[i];

		if (!OidIsValid(db->dbid) || db->notifier_state == ES_NOTIFIER_NONE)
			continue;
		if (db->notifier_state == ES_NOTIFIER_STARTING &&
			TimestampDifferenceExceeds(db->notifier_launched, now, ES_STARTING_MAX_MS))
			continue;
		n++;
	}
	return n;
}

/*
 * Register the calling worker as the notifier of db.  Returns its progress
 * (>= 0), or -1 if another one runs or a database command asked it to stop.
 */
int64
es_notifier_attach(EsDatabase *db)
{
	int64		result = -1;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_state == ES_NOTIFIER_RUNNING && db->notifier_procno >= 0)
		;						/* another one runs */
	else if (db->notifier_stop)
		es_notifier_set_state(db, ES_NOTIFIER_NONE);	/* the next commit relaunches */
	else
	{
		es_notifier_set_state(db, ES_NOTIFIER_RUNNING);
		result = db->notified_upto;
	}
	LWLockRelease(es_shared->lock);
	return result;
}

/*
 * The notifier is about to look for new events: from now on a commit must
 * signal it again (see es_notifier_signal).  Returns whether a commit had
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
		es_notifier_set_state(db, ES_NOTIFIER_NONE);
	}
	LWLockRelease(es_shared->lock);
}

/*
 * An idle notifier gives its worker slot back: it detaches, then looks
 * whether a commit came meanwhile (es_notifier_signal is the other half).
 * Returns true if it may leave; false if it must stay, attached again.
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
 * A commit (or a rollback) asks the notifier to look.  It is signalled only
 * if no commit has asked since its last look: it will look again anyway,
 * and a signal per commit costs a system call here and a wake-up there (a
 * fifth of an append's time when measured).  The exchange is a full
 * barrier, so our commit is visible before the flag; the notifier clears
 * the flag before it looks (es_notifier_begin_look), so a commit it may have
 * missed finds the flag clear and signals.  The flag is set before we read
 * which notifier runs: one that leaves for idleness clears notifier_procno
 * before it reads the flag (es_notifier_leave_if_idle), so either it sees
 * our flag and stays, or we see it gone.  Returns false if no notifier runs.
 */
bool
es_notifier_signal(EsDatabase *db)
{
	uint32		was_pending = pg_atomic_exchange_u32(&db->wake_pending, 1);
	int			procno = db->notifier_procno;

	if (procno < 0)
		return false;
	if (was_pending == 0)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
	return true;
}

/*
 * Should the caller start a notifier for db now?  Yes if none runs and none
 * is starting, unless the last launch could not register less than
 * retry_ms ago; or if one was launched more than retry_ms ago and has not
 * attached (it died starting; a surplus one that starts late sees the other
 * running and leaves).  A yes marks it starting.
 */
bool
es_notifier_claim_launch(EsDatabase *db, TimestampTz now, int retry_ms)
{
	bool		launch = false;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_procno < 0 &&
		((db->notifier_state == ES_NOTIFIER_NONE &&
		  (!db->notifier_failed ||
		   TimestampDifferenceExceeds(db->notifier_launched, now, retry_ms))) ||
		 (db->notifier_state == ES_NOTIFIER_STARTING &&
		  TimestampDifferenceExceeds(db->notifier_launched, now, retry_ms))))
	{
		/*
		 * At most event_store.max_workers at once, whatever the number of
		 * databases: beyond it the database waits, and the next worker to
		 * leave starts its (es_notifier_take_waiting).
		 */
		if (db->notifier_state == ES_NOTIFIER_NONE &&
			es_notifier_count_locked() >= es_max_workers)
			db->notifier_waiting = true;
		else
		{
			es_notifier_set_state(db, ES_NOTIFIER_STARTING);
			db->notifier_launched = now;
			db->notifier_stop = false;
			db->notifier_waiting = false;
			launch = true;
		}
	}
	LWLockRelease(es_shared->lock);
	return launch;
}

/*
 * A worker leaves and hands its slot over: the next database that waits
 * for one, in turn, marked starting (the caller launches it and says so
 * with es_notifier_launched).  NULL if none waits.
 */
EsDatabase *
es_notifier_take_waiting(TimestampTz now)
{
	EsDatabase *found = NULL;
	int			i;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (es_notifier_count_locked() < es_max_workers)
	{
		for (i = 0; i < es_shared->ndatabases && found == NULL; i++)
		{
			EsDatabase *db = &es_shared->databases[(es_shared->next_waiting + i) % es_shared->ndatabases];

			if (OidIsValid(db->dbid) && db->notifier_waiting &&
				db->notifier_state == ES_NOTIFIER_NONE)
			{
				found = db;
				es_shared->next_waiting = (es_shared->next_waiting + i + 1) % es_shared->ndatabases;
				es_notifier_set_state(db, ES_NOTIFIER_STARTING);
				db->notifier_launched = now;
				db->notifier_stop = false;
				db->notifier_waiting = false;
			}
		}
	}
	LWLockRelease(es_shared->lock);
	return found;
}

/* Does a database wait for a worker slot?  (Read without the lock.) */
bool
es_notifier_others_waiting(void)
{
	int			i;

	for (i = 0; i < es_shared->ndatabases; i++)
		if (OidIsValid(es_shared->databases[i].dbid) && es_shared->databases[i].notifier_waiting)
			return true;
	return false;
}

/* Wake every running worker: a database waits for a slot. */
void
es_notifier_nudge_all(void)
{
	int			i;

	for (i = 0; i < es_shared->ndatabases; i++)
	{
		int			procno = es_shared->databases[i].notifier_procno;

		if (procno >= 0)
			SetLatch(&GetPGProcByNumber(procno)->procLatch);
	}
}

/*
 * A worker that leaves its database with work left (to let a waiting one
 * in) puts it in the queue.
 */
void
es_notifier_requeue(EsDatabase *db)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	if (db->notifier_state == ES_NOTIFIER_NONE)
		db->notifier_waiting = true;
	LWLockRelease(es_shared->lock);
}

/* What became of a launch es_notifier_claim_launch or es_notifier_take_waiting allowed. */
void
es_notifier_launched(EsDatabase *db, bool ok)
{
	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	db->notifier_failed = !ok;
	if (!ok)
	{
		pg_atomic_fetch_add_u64(&db->stats[ES_STAT_NOTIFIER_FAILURES], 1);
		if (db->notifier_state == ES_NOTIFIER_STARTING)
			es_notifier_set_state(db, ES_NOTIFIER_NONE);
	}
	LWLockRelease(es_shared->lock);
}

/*
 * A database command (DROP DATABASE, CREATE DATABASE from it as a template,
 * ...) needs the database without connections: the notifier of dbid must
 * go.  Marks it so and returns its pid to signal (0 if none runs); the next
 * commit that appends in that database starts it again.
 */
int
es_notifier_stop_request(Oid dbid)
{
	EsDatabase *db;
	int			pid = 0;

	if (es_shared == NULL)
		return 0;
	db = es_database_entry(dbid, false);
	if (db == NULL)
		return 0;

	LWLockAcquire(es_shared->lock, LW_EXCLUSIVE);
	db->notifier_stop = true;
	if (db->notifier_state == ES_NOTIFIER_RUNNING)
		pid = db->notifier_pid;
	LWLockRelease(es_shared->lock);
	return pid;
}
