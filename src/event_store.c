/*-------------------------------------------------------------------------
 *
 * event_store.c
 *	  Layer 5: the module.  _PG_init (settings, hooks), the one transaction
 *	  callback that calls every module's end-of-transaction step in the
 *	  order written below, the utility hook that stops a database's notifier
 *	  before a command that needs the database alone, and small SQL helpers.
 *
 * The library must be loaded through shared_preload_libraries: the
 * position register lives in shared memory, and the notifier is a
 * background worker.  Loaded any other way (CREATE EXTENSION loads it to
 * create the C functions) it installs nothing, and every function refuses
 * to run with a hint saying what to configure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/postmaster.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "utils/resowner.h"

#include "event_store.h"
#include "es_compat.h"
#include "es_emit.h"
#include "es_notifier.h"
#include "es_project.h"
#include "es_register.h"
#include "es_stream.h"
#include "es_trigger.h"
#include "es_util.h"
#include "es_validate.h"

PG_MODULE_MAGIC;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;

void		_PG_init(void);

/*
 * The end of a transaction, in this order:
 *
 * PRE_COMMIT
 *	1. es_trigger_pre_commit: drop the streams rows the numbering trigger
 *	   created that got no event (it writes, so it runs while the
 *	   transaction can still fail, and before the register's slot is
 *	   cleared: its deletes are part of the transaction);
 *	2. es_emit_pre_commit: count a committing change of stream metadata or
 *	   upcasters, so reads look up every stream and type until its
 *	   invalidations are sent (step 9).
 * PRE_PREPARE
 *	   es_register_pre_prepare, then es_emit_pre_prepare: a transaction
 *	   holding positions, or changing rules, cannot be prepared.
 * COMMIT, ABORT, PREPARE (the outcome is visible)
 *	3. es_register_release: add what a committed transaction counted to
 *	   its database's counters (es_stats()), clear the transaction's slot
 *	   in the register (the feed's safe horizon moves on) and wake the
 *	   notifier;
 *	4. es_stream_xact_end: forget the streams rows held (their memory was
 *	   the transaction's) and the plain-INSERT flag;
 *	5. es_trigger_xact_end: forget the created streams;
 *	6. es_emit_xact_end: forget that the transaction changed rules;
 *	7. es_notifier_xact_end: a committed change of projections (registered,
 *	   resumed, retried, rebuilt) wakes the database's worker.
 * Subtransaction end
 *	8. es_stream_subxact_end, es_trigger_subxact_end, es_emit_subxact_end,
 *	   es_stats_subxact_end: what a rolled back subtransaction wrote (rows
 *	   held, streams created, changes of rules, counts) is forgotten, a
 *	   committed one's is its parent's.
 * Resource release, after locks, top level
 *	9. es_emit_after_locks: the commit's invalidations are sent; the count
 *	   of step 2 goes.
 */
static void
es_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			es_trigger_pre_commit();
			es_emit_pre_commit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			es_register_pre_prepare();
			es_emit_pre_prepare();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			(void) es_register_release(event == XACT_EVENT_COMMIT ||
									   event == XACT_EVENT_PARALLEL_COMMIT);
			es_stream_xact_end();
			es_trigger_xact_end();
			es_emit_xact_end();
			es_notifier_xact_end(event == XACT_EVENT_COMMIT ||
								 event == XACT_EVENT_PARALLEL_COMMIT);
			break;
		default:
			break;
	}
}

static void
es_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_ABORT_SUB:
		case SUBXACT_EVENT_COMMIT_SUB:
			es_stream_subxact_end(event == SUBXACT_EVENT_COMMIT_SUB,
								  mySubid, parentSubid);
			es_trigger_subxact_end(event == SUBXACT_EVENT_COMMIT_SUB,
								   mySubid, parentSubid);
			es_emit_subxact_end(event == SUBXACT_EVENT_COMMIT_SUB,
								mySubid, parentSubid);
			es_stats_subxact_end(event == SUBXACT_EVENT_COMMIT_SUB,
								 mySubid, parentSubid);
			break;
		default:
			break;
	}
}

static void
es_resource_release_callback(ResourceReleasePhase phase, bool isCommit,
							 bool isTopLevel, void *arg)
{
	if (phase == RESOURCE_RELEASE_AFTER_LOCKS && isTopLevel)
		es_emit_after_locks();
}

/*
 * Could the current role run the command on the database?  Checked before
 * the command's own checks, so that a role that may not drop or copy a
 * database cannot stop its notifier by trying.
 */
static bool
es_entitled(Oid dbid, bool as_template)
{
	if (superuser())
		return true;
	if (as_template)
	{
		HeapTuple	tuple;
		bool		is_template = false;

		if (!es_have_createdb_privilege())
			return false;
		tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid));
		if (HeapTupleIsValid(tuple))
		{
			is_template = ((Form_pg_database) GETSTRUCT(tuple))->datistemplate;
			ReleaseSysCache(tuple);
		}
		if (is_template)
			return true;
	}
	return es_owns_database(dbid);
}

/*
 * The notifier of a database keeps a connection to it; commands that need
 * the database without connections must first see it gone.
 */
static Oid
es_database_needing_exclusivity(Node *parsetree)
{
	const char *dbname = NULL;
	bool		as_template = false;
	ListCell   *lc;
	Oid			dbid;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_CreatedbStmt:
			dbname = "template1";
			as_template = true;
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
					dbname = defGetString(opt);
			}
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				dbname = ((RenameStmt *) parsetree)->subname;
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "tablespace") == 0)
					dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
			}
			break;
		default:
			break;
	}
	if (dbname == NULL)
		return InvalidOid;
	dbid = get_database_oid(dbname, true);
	if (!OidIsValid(dbid) || !es_entitled(dbid, as_template))
		return InvalidOid;
	return dbid;
}

static void
es_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv, DestReceiver *dest,
				  QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			dbid;

	/*
	 * An upcaster runs read-only inside a reader's transaction: of the
	 * utility commands, only SET, RESET and SHOW are its business (FETCH or
	 * MOVE of the reader's cursors, LOCK, ANALYZE, REINDEX, NOTIFY ... are
	 * not).
	 */
	if (es_in_upcaster() && !IsA(parsetree, VariableSetStmt) &&
		!IsA(parsetree, VariableShowStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot execute %s in an upcaster", GetCommandTagName(CreateCommandTag(parsetree))),
				 errdetail("An upcaster runs inside a reader's transaction and may only compute an event's new form."),
				 errhint("Move the command out of the upcaster.")));
	dbid = es_database_needing_exclusivity(parsetree);

	if (OidIsValid(dbid))
		es_notifier_stop(dbid);

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (OidIsValid(dbid) && IsA(parsetree, DropdbStmt))
		es_forget_database(dbid);
}

/* while an upcaster runs, the reader's cursors are not its to run */
static void
es_ExecutorRun(ES_EXECUTOR_RUN_ARGS)
{
	if (es_in_upcaster())
		es_upcaster_executor_check();
	if (prev_ExecutorRun)
		ES_EXECUTOR_RUN_CALL(prev_ExecutorRun);
	else
		ES_EXECUTOR_RUN_CALL(standard_ExecutorRun);
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	DefineCustomIntVariable("event_store.max_event_size",
							"Largest event accepted, counting its type, data and metadata.",
							NULL,
							&es_max_event_size,
							1024 * 1024,
							1024,
							256 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.notify_min_interval",
							"Shortest time between two notifications of a database's notifier.",
							"Commits within this time are announced together.",
							&es_notify_min_interval,
							10,
							0,
							10000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.max_databases",
							"Number of databases that can use event_store at once.",
							NULL,
							&es_max_databases,
							32,
							1,
							4096,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.max_workers",
							"Most background workers event_store runs at once, all databases together.",
							"Each database that appends or has projections behind needs one; beyond this many they take turns. The launcher takes one more for a few seconds after a start.",
							&es_max_workers,
							3,
							1,
							MAX_BACKENDS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.projection_timeout",
							"The longest a page of a projection may run in the server's worker.",
							"A page that runs longer is cancelled and counts as an attempt of its projection. 0: no limit.",
							&es_projection_timeout,
							60000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.read_mem",
							"Memory a read may hold its result rows in before it spills them to a temporary file.",
							"The larger of this and work_mem applies.",
							&es_read_mem,
							16 * 1024,
							64,
							MAX_KILOBYTES,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("event_store.notifier_idle_timeout",
							"Time after which a notifier with nothing to announce leaves, giving its worker slot back.",
							"0 keeps notifiers until the server stops. The next commit that appends starts one again.",
							&es_notifier_idle_timeout,
							60,
							0,
							INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("event_store");

	es_register_init_hooks();
	es_release_hook = es_notifier_wake;
	es_worker_hook = es_project_run;
	if (process_shared_preload_libraries_in_progress)
		es_notifier_register_launcher();
	RegisterXactCallback(es_xact_callback, NULL);
	RegisterSubXactCallback(es_subxact_callback, NULL);
	RegisterResourceReleaseCallback(es_resource_release_callback, NULL);

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = es_ProcessUtility;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = es_ExecutorRun;
}

/*
 * _es_install(): run by the install script.  Refuses without the preload
 * (so CREATE EXTENSION fails with the hint), and makes the register reload
 * the database's highest position on next use: a restore may load rows
 * without going through the triggers.
 */
PG_FUNCTION_INFO_V1(es_install);
Datum
es_install(PG_FUNCTION_ARGS)
{
	es_require_preload();
	es_reset_database(MyDatabaseId);
	PG_RETURN_VOID();
}

/*
 * es_category(stream text) returns text
 */
PG_FUNCTION_INFO_V1(es_category);
Datum
es_category(PG_FUNCTION_ARGS)
{
	text	   *stream = PG_GETARG_TEXT_PP(0);

	es_validate_stream_name(stream);
	PG_RETURN_TEXT_P(es_category_of(stream));
}

/*
 * es_uuid_v7() returns uuid
 */
PG_FUNCTION_INFO_V1(es_uuid_v7);
Datum
es_uuid_v7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	es_generate_uuid(uuid);
	PG_RETURN_UUID_P(uuid);
}
