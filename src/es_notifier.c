/*-------------------------------------------------------------------------
 *
 * es_notifier.c
 *	  Layer 3: the notifier, one background worker per database that
 *	  appends, sending coalesced notifications on the channel "es_events",
 *	  and the policy of starting, waking and stopping it (es_notifier.h).
 *
 * Appending transactions never NOTIFY themselves: PostgreSQL serializes the
 * commits of notifying transactions behind one lock held through the WAL
 * flush, which would cut append throughput about threefold.  Instead, the
 * end of a committing (or aborting) appender's transaction sets this
 * worker's latch (es_notifier_wake).  The worker computes the safe horizon
 * of the position register, looks at the events that became readable since
 * its last look, and sends one notification for all of them:
 *
 *	 {"head": 1234, "categories": ["order", "payment"]}
 *
 * "head" is the position of the newest readable event; "categories" lists
 * the distinct categories of the new events, however many events each had,
 * or is null when they were more than ES_NOTIFY_MAX_CATEGORIES or would not
 * fit in the payload (a listener then treats every category as touched).
 * A rollback alone makes nothing readable and sends nothing.  Between two
 * notifications the worker waits at least event_store.notify_min_interval
 * milliseconds, so a burst of commits costs a handful of notifications.
 *
 * The first commit that appends in a database starts its worker; it runs
 * until it has had nothing to announce for event_store.notifier_idle_timeout
 * (60 s) while no transaction holds positions, the server stops, the
 * extension is dropped, or a command that needs the database to itself
 * (DROP DATABASE, CREATE DATABASE from it as a template, ALTER DATABASE
 * RENAME or SET TABLESPACE, run by a role entitled to it) asks it to leave.
 * A worker slot is shared with parallel query and logical replication, so an
 * idle notifier gives it back.
 *
 * The worker's loop, as PostgreSQL's own launchers run theirs: reload the
 * configuration on SIGHUP, wait for the minimum interval, take one look in
 * its own transaction and memory context (es_notifier_step), decide whether
 * to leave, and wait on the latch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_events.h"
#include "es_notifier.h"
#include "es_register.h"
#include "es_scan.h"
#include "es_util.h"

/* distinct categories a notification names at most (documented) */
#define ES_NOTIFY_MAX_CATEGORIES	64
/* keep the payload well below NOTIFY's limit of 8000 bytes */
#define ES_NOTIFY_PAYLOAD_MAX	7000
/* a notifier with nothing to do looks again this often (ms) */
#define ES_NOTIFIER_RECHECK_MS	10000L
/* while other databases wait for a slot, a worker's turn (ms) */
#define ES_NOTIFIER_TURN_MS		1000
/* a launch that could not register is tried again after this (ms) */
#define ES_NOTIFIER_RETRY_MS	1000

int			es_notify_min_interval = 10;
int			es_notifier_idle_timeout = 60;

/* the runner's step (es_project.c, set by event_store.c) */
es_worker_hook_type es_worker_hook = NULL;

/* ---------------------------------------------------------------------
 * Starting, waking and stopping (called by other processes)
 * ---------------------------------------------------------------------
 */
/*
 * The extension's workers: connected to a database (the launcher to none),
 * started only once recovery is over (never on a standby; after a
 * promotion), never restarted by the postmaster (but the launcher: see
 * ES_LAUNCHER_RESTART_S).
 */
static void
es_worker_init(BackgroundWorker *worker, const char *function, const char *type)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "event_store");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

static bool
es_notifier_launch(Oid dbid, bool probe, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	es_worker_init(&worker, "es_notifier_main", "event_store notifier");
	snprintf(worker.bgw_name, BGW_MAXLEN, "event_store notifier for database %u", dbid);
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	worker.bgw_extra[0] = probe ? 1 : 0;
	worker.bgw_notify_pid = handle ? MyProcPid : 0;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * A transaction that held positions in db ended: the notifier must look (a
 * rollback too: it may have been holding back others' commits).  Start one
 * if none runs and the transaction committed (a rollback alone has nothing
 * to announce, and a notifier does not leave while positions are held).
 */
void
es_notifier_wake(EsDatabase *db, bool committed)
{
	TimestampTz now;
	bool		ok;

	if (es_notifier_signal(db) || !committed)
		return;

	now = GetCurrentTimestamp();
	if (!es_notifier_claim_launch(db, now, ES_NOTIFIER_RETRY_MS))
	{
		/* it waits for a slot: the running workers see it at once */
		if (es_notifier_others_waiting())
			es_notifier_nudge_all();
		return;
	}
	ok = es_notifier_launch(es_database_oid(db), false, NULL);
	es_notifier_launched(db, ok);

	/*
	 * Listeners of this database wait in vain until a later commit finds a
	 * free slot: say so to the committing client, at most once per retry
	 * interval and database.
	 */
	if (!ok)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the event notifier of database %u",
						es_database_oid(db)),
				 errdetail("No background worker slot is free; listeners of the database are not woken until one is."),
				 errhint("Increase max_worker_processes, or lower event_store.notifier_idle_timeout so that idle notifiers leave sooner.")));
}

/*
 * A change of projections (registered, resumed, retried, rebuilt) wakes
 * the database's worker when its transaction commits, starting one if none
 * runs: the runner is a step of the notifier's loop.  The entry is found
 * now, while an error can still fail the transaction.
 */
static EsDatabase *es_wake_pending = NULL;

void
es_notifier_wake_at_commit(void)
{
	es_wake_pending = es_database_entry(MyDatabaseId, true);
}

void
es_notifier_xact_end(bool committed)
{
	EsDatabase *db = es_wake_pending;

	es_wake_pending = NULL;
	if (db != NULL && committed)
		es_notifier_wake(db, true);
}

/*
 * Ask the notifier of dbid to go away: DROP DATABASE, CREATE DATABASE from
 * it as a template and the like need the database to have no connection.
 * The next commit that appends in that database starts it again.
 */
void
es_notifier_stop(Oid dbid)
{
	int			pid = es_notifier_stop_request(dbid);

	if (pid != 0)
		kill(pid, SIGTERM);
}

/* ---------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------
 */

/* what one look found: the newest readable event and the categories */
typedef struct EsNews
{
	int64		head;			/* 0: nothing new */
	List	   *categories;		/* of text *, distinct */
	bool		overflow;		/* more than ES_NOTIFY_MAX_CATEGORIES */
} EsNews;

/*
 * Start the worker of the next database that waits for a slot, if any (the
 * caller's slot is free now).
 */
static void
es_notifier_hand_over(void)
{
	EsDatabase *next;

	if ((next = es_notifier_take_waiting(GetCurrentTimestamp())) != NULL)
	{
		bool		ok = es_notifier_launch(es_database_oid(next), false, NULL);

		es_notifier_launched(next, ok);
		if (!ok)
		{
			/* no slot free in the server: it keeps its place in the queue */
			es_notifier_requeue(next);
			ereport(LOG,
					(errmsg("event_store could not start the worker of database %u", es_database_oid(next)),
					 errdetail("No background worker slot is free; the database waits for its turn.")));
		}
	}
}

/*
 * However the worker ends: free its database's entry and hand the slot
 * over (not when the server is stopping or the worker was terminated:
 * then nothing should start).
 */
static void
es_notifier_on_exit(int code, Datum arg)
{
	EsDatabase *db = (EsDatabase *) DatumGetPointer(arg);

	es_notifier_detach(db);
	/* ended for a page that would not stop: the next worker records it */
	if (es_project_stuck_pending(db))
		es_notifier_requeue(db);
	if (!ProcDiePending)
		es_notifier_hand_over();
}

/* Add the category of stream to the news, if new. */
static void
es_news_add_category(EsNews *news, text *stream)
{
	text	   *category = es_category_of(stream);
	ListCell   *lc;

	foreach(lc, news->categories)
	{
		if (es_same_name((text *) lfirst(lc), category))
			return;
	}
	if (list_length(news->categories) >= ES_NOTIFY_MAX_CATEGORIES)
		news->overflow = true;
	else
		news->categories = lappend(news->categories, category);
}

/*
 * The events above upto and below horizon that the snapshot sees: every
 * one is looked at, so a burst into one category names it however many
 * events it holds.  The newest is the head.
 */
static void
es_notifier_scan(const EsCatalog *cat, Snapshot snapshot, int64 upto, int64 horizon,
				 EsNews *news)
{
	Relation	rel = es_table_open(cat->events, AccessShareLock);
	Relation	idx = es_index_open(cat->events_pkey, AccessShareLock);
	EsScan		scan;
	text	   *last_stream = NULL;

	es_scan_init(&scan, rel, idx);
	es_scan_key_int8(&scan, 1, BTGreaterStrategyNumber, upto);
	es_scan_key_int8(&scan, 1, BTLessStrategyNumber, horizon);
	es_scan_begin(&scan, snapshot);
	while (es_scan_next(&scan, ForwardScanDirection))
	{
		bool		isnull;
		text	   *stream;

		CHECK_FOR_INTERRUPTS();
		news->head = DatumGetInt64(slot_getattr(scan.slot, Anum_es_events_position, &isnull));
		if (news->overflow)
			continue;
		stream = DatumGetTextPP(slot_getattr(scan.slot, Anum_es_events_stream, &isnull));
		/* a batch is a run of one stream: one category to look up */
		if (last_stream != NULL && es_same_name(last_stream, stream))
			continue;
		if (last_stream != NULL)
			pfree(last_stream);
		last_stream = DatumGetTextPCopy(PointerGetDatum(stream));
		es_news_add_category(news, stream);
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* {"head": N, "categories": [...] or null}, within the payload's limit */
static char *
es_notifier_payload(EsNews *news)
{
	StringInfoData payload;
	bool		overflow = news->overflow;

	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"head\":" INT64_FORMAT ",\"categories\":", news->head);
	if (!overflow)
	{
		int			start = payload.len;
		ListCell   *lc;

		appendStringInfoChar(&payload, '[');
		foreach(lc, news->categories)
		{
			if (lc != list_head(news->categories))
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
	return payload.data;
}

/*
 * One look at the feed, in its own transaction.  Returns true if a
 * notification was sent; sets *gone when the extension is not installed,
 * *woken when a commit had asked for the look.
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

	/* dropped, or its objects are of another version than the library */
	cat = es_catalog_current() ? es_catalog_if_installed() : NULL;
	if (cat == NULL)
	{
		*gone = true;
		CommitTransactionCommand();
		return false;
	}

	/* the horizon first, then the snapshot: see es_register.c */
	horizon = es_safe_horizon(es_positions_ready(cat));
	upto = es_notifier_progress(db, &generation);
	if (horizon - 1 > upto)
	{
		EsNews		news = {0, NIL, false};

		PushActiveSnapshot(GetTransactionSnapshot());
		es_notifier_scan(cat, GetActiveSnapshot(), upto, horizon, &news);
		PopActiveSnapshot();
		if (news.head > 0)
		{
			Async_Notify(ES_NOTIFY_CHANNEL, es_notifier_payload(&news));
			sent = true;
		}
		upto = horizon - 1;
	}

	CommitTransactionCommand();
	if (sent)
		es_stats_count(ES_STAT_NOTIFICATIONS, 1);
	es_notifier_set_progress(db, upto, generation);
	pgstat_report_activity(STATE_IDLE, NULL);
	return sent;
}

/* Milliseconds since t. */
static long
es_ms_since(TimestampTz t)
{
	long		secs;
	int			usecs;

	TimestampDifference(t, GetCurrentTimestamp(), &secs, &usecs);
	return secs * 1000 + usecs / 1000;
}

/*
 * Coalesce: not two notifications within notify_min_interval.  Commits set
 * the latch meanwhile; we wake, see the time is not up, and wait again
 * (still answering SIGTERM at once).
 */
static void
es_notifier_wait_interval(TimestampTz last_sent)
{
	while (last_sent != 0 && es_notify_min_interval > 0)
	{
		long		elapsed_ms = es_ms_since(last_sent);

		if (elapsed_ms >= es_notify_min_interval)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 es_notify_min_interval - elapsed_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
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
	bool		probe;
	bool		work_left = false;
	char	   *synchronous_commit;
	TimestampTz turn_started;

	/*
	 * SIGTERM (server shutdown, DROP DATABASE, pg_terminate_backend) ends
	 * the worker at the next CHECK_FOR_INTERRUPTS, even in a lock wait.
	 */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * Connect even if the database does not accept connections now: a
	 * worker that died before it attached would hold its place among
	 * event_store.max_workers until the launch is considered stale.
	 */
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_appname("event_store notifier");
	/* started by the launcher: leave after the first round if idle */
	probe = MyBgworkerEntry->bgw_extra[0] == 1;
	/* projections' pages commit as the server is configured to */
	synchronous_commit = pstrdup(GetConfigOption("synchronous_commit", false, false));

	/*
	 * A notification needs no durability: do not wait for the WAL flush.
	 * And whatever the database's defaults, each step is a short READ
	 * COMMITTED transaction that no timeout should cut.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	/* the runner's SQL runs as a superuser: nothing on a path resolves in it */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0",
					PGC_SUSET, PGC_S_OVERRIDE);

	StartTransactionCommand();
	db = es_database_entry(dbid, true);
	CommitTransactionCommand();
	if (es_notifier_attach(db) < 0)
		proc_exit(0);			/* another one runs, or we were told to go */
	before_shmem_exit(es_notifier_on_exit, PointerGetDatum(db));
	turn_started = GetCurrentTimestamp();

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "event_store notifier",
										 ALLOCSET_DEFAULT_SIZES);
	last_active = GetCurrentTimestamp();

	while (!gone)
	{
		MemoryContext old;
		bool		woken;
		long		wait_ms = ES_NOTIFIER_RECHECK_MS;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		es_notifier_wait_interval(last_sent);

		old = MemoryContextSwitchTo(loop_context);
		if (es_notifier_step(db, &gone, &woken))
			last_sent = GetCurrentTimestamp();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
		if (gone)
			break;

		/*
		 * The runner: a page of each projection that is due.  Pending pages
		 * and retries keep the worker; a round that failed outside a
		 * handler is tried again after a pause, not at once.
		 */
		work_left = false;
		if (es_worker_hook != NULL)
		{
			EsProjectStatus status = {false, false, -1};

			SetConfigOption("synchronous_commit", synchronous_commit,
							PGC_SUSET, PGC_S_OVERRIDE);
			old = MemoryContextSwitchTo(loop_context);
			es_worker_hook(&status);
			MemoryContextSwitchTo(old);
			MemoryContextReset(loop_context);
			SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
			if (status.due || status.next_retry_ms >= 0)
			{
				last_active = GetCurrentTimestamp();
				probe = false;
				work_left = true;
			}
			if (status.failed)
				wait_ms = Min(wait_ms, ES_NOTIFIER_RECHECK_MS);
			else if (status.due)
			{
				if (!es_notifier_others_waiting())
					continue;
				wait_ms = 0;	/* its turn may be over: look below */
			}
			if (status.next_retry_ms >= 0)
				wait_ms = Min(wait_ms, Max(status.next_retry_ms, 1));
		}
		/*
		 * Other databases wait for a slot (event_store.max_workers run):
		 * after a turn of ES_NOTIFIER_TURN_MS, leave and let the next one in,
		 * putting this database back in the queue if it has work left.
		 */
		if (es_notifier_others_waiting() && es_ms_since(turn_started) >= ES_NOTIFIER_TURN_MS &&
			!es_positions_held(db))
		{
			es_notifier_detach(db);
			if (woken || work_left)
				es_notifier_requeue(db);
			break;
		}

		/*
		 * Started by the launcher, and the first round found nothing to run:
		 * leave (the look has announced whatever there was; a commit that
		 * comes after the detach starts a worker again).
		 */
		if (probe)
		{
			probe = false;
			if (!es_positions_held(db) && es_notifier_leave_if_idle(db))
				break;
		}

		/*
		 * Idle for notifier_idle_timeout: give the worker slot back, but not
		 * while a transaction holds positions (its end may make others'
		 * commits readable, and a rollback starts no notifier).  The next
		 * commit that appends starts a notifier again.
		 */
		if (woken)
			last_active = GetCurrentTimestamp();
		if (es_notifier_idle_timeout > 0)
		{
			long		limit_ms = (long) es_notifier_idle_timeout * 1000;
			long		idle_ms = es_ms_since(last_active);

			if (idle_ms >= limit_ms)
			{
				if (!es_positions_held(db))
				{
					if (es_notifier_leave_if_idle(db))
						break;
				}
				last_active = GetCurrentTimestamp();
				continue;
			}
			wait_ms = Min(wait_ms, limit_ms - idle_ms);
		}

		/* others waiting: look again when this turn is over */
		if (es_notifier_others_waiting())
			wait_ms = Min(wait_ms, Max(ES_NOTIFIER_TURN_MS - es_ms_since(turn_started), 1));

		/* also look now and then, to notice a dropped extension */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
	}

	proc_exit(0);
}

/* ---------------------------------------------------------------------
 * The launcher: at server start (and after a promotion), a worker per
 * database that may have projections to catch up
 * ---------------------------------------------------------------------
 */

/* how long the launcher waits for one database's worker to settle (ms) */
#define ES_LAUNCHER_SETTLE_MS	2000

/*
 * The launcher leaves with exit code 1 once it has started the databases'
 * workers, and so stays registered with the postmaster: a worker that
 * leaves with code 0, or one that is never restarted, is forgotten, and
 * would not run again after the postmaster reinitializes the server once a
 * backend crashed (restart_after_crash).  Registered, it runs again at once
 * after such a reinitialization, and otherwise only after this many
 * seconds (about 23 days: a pass over the databases then does no harm).
 * bgw_restart_time * 1000 must fit an int.
 */
#define ES_LAUNCHER_RESTART_S	2000000

void
es_notifier_register_launcher(void)
{
	BackgroundWorker worker;

	/* never on a standby: after a promotion, the postmaster starts it */
	es_worker_init(&worker, "es_launcher_main", "event_store launcher");
	worker.bgw_restart_time = ES_LAUNCHER_RESTART_S;
	RegisterBackgroundWorker(&worker);
}

/* the databases that accept connections */
static List *
es_launcher_databases(void)
{
	List	   *dbids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	MemoryContext outer = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(outer);

			dbids = lappend_oid(dbids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbids;
}

/*
 * One database after another: start its worker in probe mode (it leaves
 * after one round if it has nothing to do: no extension, no projection
 * behind), and wait until it has left or settled before the next one, so
 * that the launcher takes one more worker slot than there are databases
 * with work, whatever the number of databases.  Then leave, staying
 * registered (ES_LAUNCHER_RESTART_S).
 */
void
es_launcher_main(Datum main_arg)
{
	List	   *dbids;
	ListCell   *lc;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("event_store launcher");

	dbids = es_launcher_databases();
	foreach(lc, dbids)
	{
		Oid			dbid = lfirst_oid(lc);
		EsDatabase *db;
		BackgroundWorkerHandle *handle = NULL;
		TimestampTz started;

		CHECK_FOR_INTERRUPTS();
		StartTransactionCommand();
		db = es_database_entry(dbid, true);
		CommitTransactionCommand();
		if (es_notifier_signal(db))
			continue;			/* one runs already: it looks at once */
		if (!es_notifier_claim_launch(db, GetCurrentTimestamp(), 0))
			continue;
		if (!es_notifier_launch(dbid, true, &handle))
		{
			es_notifier_launched(db, false);
			ereport(LOG,
					(errmsg("event_store launcher could not start the worker of database %u", dbid),
					 errdetail("No background worker slot is free; the database's projections run after its next append.")));
			continue;
		}
		es_notifier_launched(db, true);
		started = GetCurrentTimestamp();
		for (;;)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED ||
				es_ms_since(started) >= ES_LAUNCHER_SETTLE_MS)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		pfree(handle);
	}
	proc_exit(1);
}
