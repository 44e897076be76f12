/*-------------------------------------------------------------------------
 *
 * es_notify.c
 *	  The notifier: one background worker per database that appends,
 *	  sending coalesced notifications on the channel "es_events".
 *
 * Appending transactions never NOTIFY themselves: PostgreSQL serializes the
 * commits of notifying transactions behind one lock held through the WAL
 * flush, which would cut append throughput about threefold.  Instead, the
 * transaction callback of a committing (or aborting) appender sets this
 * worker's latch.  The worker computes the safe horizon of the position
 * register, looks at the events that became readable since its last look,
 * and sends one notification for all of them:
 *
 *	 {"head": 1234, "categories": ["order", "payment"]}
 *
 * "head" is the position of the newest readable event; "categories" lists
 * the categories of the new events, or is null when there were too many to
 * list (a listener then treats every category as touched).  A rollback alone
 * makes nothing readable and sends nothing.  Between two notifications the
 * worker waits at least event_store.notify_min_interval milliseconds, so a
 * burst of commits costs a handful of notifications.
 *
 * The first commit that appends in a database starts its worker (see
 * es_notifier_wake); it runs until it has had nothing to announce for
 * event_store.notifier_idle_timeout (60 s), the server stops, the extension
 * is dropped, or a command that needs the database to itself (DROP
 * DATABASE, CREATE DATABASE from it as a template, ALTER DATABASE RENAME or
 * SET TABLESPACE, run by a role entitled to it) asks it to leave.  A worker
 * slot is shared with parallel query and logical replication, so an idle
 * notifier gives it back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"

/* at most this many new events are examined for their categories */
#define ES_NOTIFY_SCAN_LIMIT	256
/* a notifier with nothing to do looks again this often (ms) */
#define ES_NOTIFIER_RECHECK_MS	10000L
/* keep the payload well below NOTIFY's limit of 8000 bytes */
#define ES_NOTIFY_PAYLOAD_MAX	7000

bool
es_notifier_launch(Oid dbid)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "event_store");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "es_notifier_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "event_store notifier for database %u", dbid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "event_store notifier");
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, NULL);
}

static void
es_notifier_on_exit(int code, Datum arg)
{
	es_notifier_detach((EsDatabase *) DatumGetPointer(arg));
}

/*
 * Add the category of stream to the list, if new.
 */
static void
es_add_category(List **categories, text *stream)
{
	text	   *category = es_category_of(stream);
	ListCell   *lc;

	foreach(lc, *categories)
	{
		if (es_same_name((text *) lfirst(lc), category))
			return;
	}
	*categories = lappend(*categories, category);
}

/*
 * One look at the feed, in its own transaction.  Returns true if a
 * notification was sent; sets *gone when the extension is not installed.
 */
static bool
es_notifier_step(EsDatabase *db, bool *gone, bool *woken)
{
	const EsCatalog *cat;
	int64		upto;
	uint64		generation;
	int64		horizon;
	bool		sent = false;

	*woken = es_notifier_begin_look(db);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "event_store: looking for new events");

	cat = es_catalog_if_installed();
	if (cat == NULL)
	{
		*gone = true;
		CommitTransactionCommand();
		return false;
	}

	/* the horizon first, then the snapshot: see es_shmem.c */
	horizon = es_safe_horizon(cat);
	upto = es_notifier_progress(db, &generation);
	if (horizon - 1 > upto)
	{
		Relation	rel;
		Relation	idx;
		IndexScanDesc scan;
		TupleTableSlot *slot;
		ScanKeyData keys[2];
		List	   *categories = NIL;
		bool		overflow = false;
		int			count = 0;
		int64		head = 0;

		PushActiveSnapshot(GetTransactionSnapshot());
		rel = es_table_open(cat->events, AccessShareLock);
		idx = index_open(cat->events_pkey, AccessShareLock);
		slot = table_slot_create(rel, NULL);

		ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT8GT, Int64GetDatum(upto));
		ScanKeyInit(&keys[1], 1, BTLessStrategyNumber, F_INT8LT, Int64GetDatum(horizon));
		scan = index_beginscan(rel, idx, GetActiveSnapshot(), 2, 0);
		index_rescan(scan, keys, 2, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;

			head = DatumGetInt64(slot_getattr(slot, Anum_es_events_position, &isnull));
			if (++count > ES_NOTIFY_SCAN_LIMIT)
			{
				overflow = true;
				break;
			}
			es_add_category(&categories,
							DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream, &isnull)));
		}
		index_endscan(scan);

		/* too many to look at: find the newest directly */
		if (overflow)
			head = es_newest_position(cat, GetActiveSnapshot(), horizon);
		ExecDropSingleTupleTableSlot(slot);
		index_close(idx, AccessShareLock);
		table_close(rel, AccessShareLock);
		PopActiveSnapshot();

		if (count > 0)
		{
			StringInfoData payload;
			ListCell   *lc;

			initStringInfo(&payload);
			appendStringInfo(&payload, "{\"head\":" INT64_FORMAT ",\"categories\":", head);
			if (!overflow)
			{
				int			start = payload.len;

				appendStringInfoChar(&payload, '[');
				foreach(lc, categories)
				{
					if (lc != list_head(categories))
						appendStringInfoChar(&payload, ',');
					escape_json(&payload, text_to_cstring((text *) lfirst(lc)));
					if (payload.len > ES_NOTIFY_PAYLOAD_MAX)
					{
						overflow = true;
						break;
					}
				}
				if (overflow)
				{
					payload.len = start;
					payload.data[start] = '\0';
				}
				else
					appendStringInfoChar(&payload, ']');
			}
			if (overflow)
				appendStringInfoString(&payload, "null");
			appendStringInfoChar(&payload, '}');
			Async_Notify(ES_NOTIFY_CHANNEL, payload.data);
			sent = true;
		}
		upto = horizon - 1;
	}

	CommitTransactionCommand();
	es_notifier_set_progress(db, upto, generation);
	pgstat_report_activity(STATE_IDLE, NULL);
	return sent;
}

void
es_notifier_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	EsDatabase *db;
	MemoryContext loop_context;
	TimestampTz last_sent = 0;
	TimestampTz last_active;
	bool		gone = false;

	/*
	 * SIGTERM (server shutdown, DROP DATABASE, pg_terminate_backend) ends
	 * the worker at the next CHECK_FOR_INTERRUPTS, even in a lock wait.
	 */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("event_store notifier");

	/*
	 * A notification needs no durability: do not wait for the WAL flush.
	 * And whatever the database's defaults, each step is a short READ
	 * COMMITTED transaction that no timeout should cut.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0",
					PGC_SUSET, PGC_S_OVERRIDE);

	StartTransactionCommand();
	db = es_database_entry(dbid, true);
	CommitTransactionCommand();
	if (es_notifier_attach(db) < 0)
		proc_exit(0);			/* another one runs, or we were told to go */
	before_shmem_exit(es_notifier_on_exit, PointerGetDatum(db));

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "event_store notifier",
										 ALLOCSET_DEFAULT_SIZES);
	last_active = GetCurrentTimestamp();

	while (!gone)
	{
		MemoryContext old;
		bool		woken;
		long		wait_ms;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * Coalesce: not two notifications within notify_min_interval.
		 * Commits set the latch meanwhile; we wake, see the time is not up,
		 * and wait again (still answering SIGTERM at once).
		 */
		while (last_sent != 0 && es_notify_min_interval > 0)
		{
			long		secs;
			int			usecs;
			long		elapsed_ms;

			TimestampDifference(last_sent, GetCurrentTimestamp(), &secs, &usecs);
			elapsed_ms = secs * 1000 + usecs / 1000;
			if (elapsed_ms >= es_notify_min_interval)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 es_notify_min_interval - elapsed_ms,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}

		old = MemoryContextSwitchTo(loop_context);
		if (es_notifier_step(db, &gone, &woken))
			last_sent = GetCurrentTimestamp();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
		if (gone)
			break;

		/*
		 * Idle for notifier_idle_timeout: give the worker slot back.  The
		 * next commit that appends starts a notifier again.
		 */
		if (woken)
			last_active = GetCurrentTimestamp();
		wait_ms = ES_NOTIFIER_RECHECK_MS;
		if (es_notifier_idle_timeout > 0)
		{
			long		secs;
			int			usecs;
			long		idle_ms;
			long		limit_ms = (long) es_notifier_idle_timeout * 1000;

			TimestampDifference(last_active, GetCurrentTimestamp(), &secs, &usecs);
			idle_ms = secs * 1000 + usecs / 1000;
			/*
			 * Not while a transaction holds positions: its end may make
			 * others' commits readable, and a rollback starts no notifier.
			 */
			if (idle_ms >= limit_ms && !es_positions_held(db))
			{
				if (es_notifier_leave_if_idle(db))
					break;
				last_active = GetCurrentTimestamp();
				continue;
			}
			if (idle_ms >= limit_ms)
				idle_ms = 0;	/* look again in a while */
			wait_ms = Min(wait_ms, limit_ms - idle_ms);
		}

		/* also look now and then, to notice a dropped extension */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
	}

	proc_exit(0);
}
