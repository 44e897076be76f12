/*-------------------------------------------------------------------------
 *
 * es_project.c
 *	  Layer 4, entry points: projections run by the server.  The rules of a
 *	  handler, the call of a handler as the role that registered it, and
 *	  the runner's step in the database's worker (es_project_run).
 *
 * A projection (the table projections, docs/projections.md) is a handler
 * function the server calls on the feed after the projection's checkpoint,
 * one page per transaction: the page is read, the handler called, the
 * checkpoint saved, and all of it commits or none (the SQL function
 * _es_project_page).  The handler runs as the role that registered the
 * projection, never as a superuser, under the fixed search_path
 * "pg_catalog, pg_temp", as a security-restricted operation: the worker
 * that runs it is a superuser's process and must lend it nothing.
 *
 * The runner is a step of the database's worker (es_notifier.c): after each
 * look for news, one page of every projection that is due, each in its own
 * transaction, round-robin, so that one projection's backlog or failure
 * holds the others back by one page at most.  A page that fails is
 * retried, event by event, in the SQL function; an error outside the
 * handler (the extension dropped, a lock timeout) is logged, and the
 * worker goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_compat.h"
#include "es_events.h"
#include "es_notifier.h"
#include "es_project.h"
#include "es_register.h"
#include "es_util.h"
#include "es_validate.h"


/* event_store.projection_timeout (ms): the longest a page may run */
int			es_projection_timeout = 60000;

/* the worker's waits for locks, in its own statements and in pages */
#define ES_RUNNER_LOCK_TIMEOUT	"2s"

/* handlers running in this backend (their pages hold their projections) */
static int	es_handler_depth = 0;

/*
 * A page still running this long after event_store.projection_timeout (its
 * handler caught the cancel and went on) ends the worker: an error cannot,
 * since the handler catches it.  The next worker of the database records
 * the attempt (es_project_record_stuck).
 */
#define ES_HARD_STOP_GRACE_MS	5000

static TimeoutId es_hard_stop_timeout = MAX_TIMEOUTS;	/* not registered */
static volatile sig_atomic_t es_hard_stopped = false;
/* the projection whose page runs now ("": none) */
static char es_page_of[ES_MAX_CONSUMER_BYTES + 1];

typedef enum EsHandlerShape
{
	ES_SHAPE_NONE,				/* no such function */
	ES_SHAPE_WRONG,				/* a function of another signature */
	ES_SHAPE_PAGE,				/* (es_event[]) */
	ES_SHAPE_EVENT,				/* (es_event) */
	ES_SHAPE_RESET				/* () */
} EsHandlerShape;

static const char *
es_shape_name(EsHandlerShape shape)
{
	switch (shape)
	{
		case ES_SHAPE_PAGE:
			return "page";
		case ES_SHAPE_EVENT:
			return "event";
		case ES_SHAPE_RESET:
			return "reset";
		default:
			return NULL;
	}
}

static EsHandlerShape
es_shape_of_name(const char *name)
{
	if (strcmp(name, "page") == 0)
		return ES_SHAPE_PAGE;
	if (strcmp(name, "event") == 0)
		return ES_SHAPE_EVENT;
	if (strcmp(name, "reset") == 0)
		return ES_SHAPE_RESET;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("\"%s\" is not a shape of handler", name),
			 errdetail("A handler takes a page (es_event[]) or an event (es_event); a reset handler takes nothing.")));
	return ES_SHAPE_WRONG;		/* keep compiler quiet */
}

/*
 * What fn is as a handler.  A handler is a plain function, not
 * set-returning, of one argument of type es_event[] (a page) or es_event
 * (one event at a time); a reset handler has no argument.  *kind_wrong is
 * set for a procedure, an aggregate or a window function.
 */
static EsHandlerShape
es_handler_shape(const EsCatalog *cat, Oid fn, bool reset, bool *kind_wrong)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	EsHandlerShape shape = ES_SHAPE_WRONG;

	*kind_wrong = false;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		return ES_SHAPE_NONE;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	if (proc->prokind != PROKIND_FUNCTION)
		*kind_wrong = true;
	else if (isAnyTempNamespace(proc->pronamespace) ||
			 (get_typtype(proc->prorettype) == TYPTYPE_PSEUDO &&
			  proc->prorettype != VOIDOID && proc->prorettype != RECORDOID))
		shape = ES_SHAPE_WRONG;	/* a session's own, or a trigger, a handler of the server */
	else if (!proc->proretset)
	{
		if (reset && proc->pronargs == 0)
			shape = ES_SHAPE_RESET;
		else if (!reset && proc->pronargs == 1 &&
				 proc->proargtypes.values[0] == cat->event_type)
			shape = ES_SHAPE_EVENT;
		else if (!reset && proc->pronargs == 1 &&
				 proc->proargtypes.values[0] == get_array_type(cat->event_type))
			shape = ES_SHAPE_PAGE;
	}
	ReleaseSysCache(tuple);
	return shape;
}

/* Refuse fn as a handler (or a reset handler): 42883, 42809, 42P13. */
static EsHandlerShape
es_require_handler(const EsCatalog *cat, Oid fn, bool reset, const char *signature)
{
	bool		kind_wrong;
	EsHandlerShape shape = es_handler_shape(cat, fn, reset, &kind_wrong);

	if (shape == ES_SHAPE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s does not exist", signature)));
	if (kind_wrong)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a plain function", format_procedure(fn)),
				 errdetail("A handler is called as a function; procedures, aggregates and window functions cannot be handlers.")));
	if (shape == ES_SHAPE_WRONG)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s has the wrong signature for a %s",
						format_procedure(fn), reset ? "reset handler" : "projection handler"),
				 reset ?
				 errhint("A reset handler takes no argument, returns no set, trigger or other pseudo-type, and is not a temporary function.") :
				 errhint("A handler takes one argument, event_store.es_event[] (a page) or event_store.es_event (one event), returns no set, trigger or other pseudo-type, and is not a temporary function.")));
	return shape;
}

/*
 * _es_check_handler(handler regprocedure, reset boolean) returns text: the
 * shape of a handler being registered.
 */
PG_FUNCTION_INFO_V1(es_check_handler_sql);
Datum
es_check_handler_sql(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	Oid			fn;
	bool		reset = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("handler must not be null")));
	fn = PG_GETARG_OID(0);
	PG_RETURN_TEXT_P(cstring_to_text(es_shape_name(
		es_require_handler(cat, fn, reset, psprintf("%u", fn)))));
}

/*
 * The owner of a projection, which must exist and not be a superuser (a
 * projection runs as its owner in a superuser's process).
 */
static Oid
es_projection_owner(Name owner_name)
{
	Oid			owner = get_role_oid(NameStr(*owner_name), true);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", NameStr(*owner_name)),
				 errdetail("A projection runs as the role that registered it.")));
	if (superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a projection must not run as superuser \"%s\"", NameStr(*owner_name)),
				 errdetail("A projection runs as the role that registered it, and never as a superuser."),
				 errhint("Register it as the role that owns its read model.")));
	return owner;
}

/*
 * Resolve and check a stored handler for its owner: the function exists
 * and has the shape (42883, 42P13), the owner may execute it and may read
 * the events (42501).  Locks the function against DROP until the
 * transaction ends.
 */
static Oid
es_handler_for(const EsCatalog *cat, const char *signature, EsHandlerShape shape, Oid owner,
			   bool privileges)
{
	Oid			fn = es_signature_lookup_as(signature, owner);

	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s does not exist", signature),
				 errdetail("The handler was dropped, or its owner cannot see its schema.")));
	LockDatabaseObject(ProcedureRelationId, fn, 0, AccessShareLock);
	if (es_require_handler(cat, fn, shape == ES_SHAPE_RESET, signature) != shape)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s is not a handler of the registered shape", signature),
				 errdetail("The projection was registered with a handler of a %s.",
						   shape == ES_SHAPE_PAGE ? "page (es_event[])" : "single event (es_event)")));
	if (!privileges)
		return fn;
	if (es_proc_aclcheck(fn, owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not execute function %s",
						GetUserNameFromId(owner, false), signature),
				 errdetail("A projection's handlers run as the role that registered it.")));
	if (pg_class_aclcheck(cat->events, owner, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not read the events", GetUserNameFromId(owner, false)),
				 errdetail("A projection's handler is given events of the feed."),
				 errhint("GRANT SELECT ON event_store.events TO the role.")));
	return fn;
}

/*
 * _es_check_projection_row(handler text, shape text, reset_handler text,
 * owner name, privileges boolean): a row of projections is runnable,
 * however it was written: handlers of the shapes, an owner that exists
 * and is not a superuser; and, if asked, the owner's privileges.
 */
PG_FUNCTION_INFO_V1(es_check_projection_row_sql);
Datum
es_check_projection_row_sql(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	Oid			owner;
	bool		privileges;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("handler, shape and owner must not be null")));
	privileges = PG_NARGS() < 5 || PG_ARGISNULL(4) || PG_GETARG_BOOL(4);
	owner = es_projection_owner(PG_GETARG_NAME(3));
	(void) es_handler_for(cat, text_to_cstring(PG_GETARG_TEXT_PP(0)),
						  es_shape_of_name(text_to_cstring(PG_GETARG_TEXT_PP(1))), owner,
						  privileges);
	if (!PG_ARGISNULL(2))
		(void) es_handler_for(cat, text_to_cstring(PG_GETARG_TEXT_PP(2)), ES_SHAPE_RESET, owner,
							  privileges);
	PG_RETURN_VOID();
}

/* Call fn (already checked) with nargs (0 or 1) arguments, as owner. */
static void
es_call_as(Oid fn, Oid owner, int nargs, Datum arg, MemoryContext callcxt)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Oid			save_userid;
	int			save_sec_context;
	int			nest;
	MemoryContext old;

	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, nargs, InvalidOid, NULL, NULL);
	if (nargs == 1)
	{
		fcinfo->args[0].value = arg;
		fcinfo->args[0].isnull = false;
	}

	/*
	 * As the owner, under the fixed search_path (a handler's own SET clause
	 * wins), restricted: it cannot change the session's role or leave
	 * state behind.  An error restores all of it with the (sub)transaction.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", ES_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	/* what the call leaves (its result is ignored) goes with it */
	old = MemoryContextSwitchTo(callcxt);
	es_handler_depth++;
	PG_TRY();
	{
		(void) FunctionCallInvoke(fcinfo);
	}
	PG_FINALLY();
	{
		es_handler_depth--;
	}
	PG_END_TRY();

	/*
	 * The page's time ran out while the handler ran, and the handler caught
	 * the cancel: the page ends here all the same (outside the handler, so
	 * it cannot catch this one).
	 */
	if (get_timeout_indicator(STATEMENT_TIMEOUT, false))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("the page of projection ran longer than event_store.projection_timeout"),
				 errdetail("The handler caught the cancel; the page is cancelled when it returns.")));
	MemoryContextSwitchTo(old);
	MemoryContextReset(callcxt);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(false, nest);
}

/*
 * _es_check_not_in_handler(): a handler may not run or change a projection
 * (its own page holds its projection's row: it would apply events twice,
 * or a rewind would be overwritten by the page).
 */
PG_FUNCTION_INFO_V1(es_check_not_in_handler_sql);
Datum
es_check_not_in_handler_sql(PG_FUNCTION_ARGS)
{
	if (es_handler_depth > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a projection's handler cannot run or change a projection"),
				 errdetail("The handler runs inside a page, which holds its projection until it commits.")));
	PG_RETURN_VOID();
}

/*
 * _es_call_handler(projection text, handler text, shape text, owner name,
 * events es_event[]): call a projection's handler on a page (once, or once
 * per event), or its reset handler, as the owner.  The caller must act for
 * the owner (the runner is a superuser; a client runs its own projection).
 */
PG_FUNCTION_INFO_V1(es_call_handler);
Datum
es_call_handler(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();
	Oid			owner;
	EsHandlerShape shape;
	Oid			fn;
	MemoryContext callcxt;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("projection, handler, shape and owner must not be null")));
	owner = es_projection_owner(PG_GETARG_NAME(3));
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must have the privileges of role \"%s\" to run its projection \"%s\"",
						NameStr(*PG_GETARG_NAME(3)), text_to_cstring(PG_GETARG_TEXT_PP(0)))));
	shape = es_shape_of_name(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	fn = es_handler_for(cat, text_to_cstring(PG_GETARG_TEXT_PP(1)), shape, owner, true);

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "event_store handler call",
									ALLOCSET_DEFAULT_SIZES);
	if (shape == ES_SHAPE_RESET)
		es_call_as(fn, owner, 0, (Datum) 0, callcxt);
	else if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("events must not be null")));
	else if (shape == ES_SHAPE_PAGE)
		es_call_as(fn, owner, 1, PG_GETARG_DATUM(4), callcxt);
	else
	{
		ArrayType  *page = PG_GETARG_ARRAYTYPE_P(4);
		Datum	   *events;
		bool	   *nulls;
		int			n;
		int			i;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(ARR_ELEMTYPE(page), &typlen, &typbyval, &typalign);
		deconstruct_array(page, ARR_ELEMTYPE(page), typlen, typbyval, typalign,
						  &events, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("events must not contain nulls")));
			es_call_as(fn, owner, 1, events[i], callcxt);
		}
	}
	MemoryContextDelete(callcxt);
	PG_RETURN_VOID();
}

/*
 * _es_wake_runner(): wake this database's worker when the transaction
 * commits (a projection registered, resumed, retried or rebuilt).
 */
PG_FUNCTION_INFO_V1(es_wake_runner_sql);
Datum
es_wake_runner_sql(PG_FUNCTION_ARGS)
{
	(void) es_ready();
	es_notifier_wake_at_commit();
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * The runner: a step of the database's worker
 * ---------------------------------------------------------------------
 */

/* the projections that are running: names, and when the next retry is due */
static List *
es_project_list(EsProjectStatus *status)
{
	List	   *names = NIL;
	uint64		i;
	int			ret;
	MemoryContext outer = CurrentMemoryContext;

	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	ret = SPI_execute("SELECT j.name, "
					  "       CASE WHEN j.retry_at IS NOT NULL THEN "
					  "         (least(extract(epoch FROM j.retry_at - pg_catalog.clock_timestamp()), 86400) * 1000)::bigint END "
					  "  FROM event_store.projections j "
					  " WHERE j.state = 'running' "
					  "   AND j.position < event_store.es_head_position() "
					  " ORDER BY j.last_processed_at NULLS FIRST, j.name",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not list the projections: %s", SPI_result_code_string(ret));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		wait = SPI_getbinval(tuple, desc, 2, &isnull);

		if (!isnull && DatumGetInt64(wait) > 0)
		{
			long		ms = (long) Min(DatumGetInt64(wait), (int64) LONG_MAX);

			if (status->next_retry_ms < 0 || ms < status->next_retry_ms)
				status->next_retry_ms = ms;
			continue;
		}
		{
			/* the names outlive SPI and the transaction */
			char	   *name = SPI_getvalue(tuple, desc, 1);
			MemoryContext old = MemoryContextSwitchTo(outer);

			names = lappend(names, pstrdup(name));
			MemoryContextSwitchTo(old);
		}
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	return names;
}

/*
 * One statement of the runner in a transaction of its own, as the worker
 * (a superuser) under the worker's fixed search_path: the page of a
 * projection (events applied), or the record of a page that failed outside
 * its handler.  A page runs for event_store.projection_timeout at most.
 */
static int64
es_project_statement(const char *sql, int nargs, Datum *args, bool page)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	int64		got = 0;
	bool		isnull;
	int			ret;

	StartTransactionCommand();

	/*
	 * A worker's statements are not timed by postgres.c: arm the statement
	 * timeout ourselves (its handler cancels the page: 57014).
	 */
	if (page && es_projection_timeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, es_projection_timeout);

	/*
	 * A lock on the extension's tables (a role may LOCK what it may UPDATE)
	 * holds the worker back for a second at most: then this round leaves
	 * the projection (55P03, not an attempt).
	 */
	(void) set_config_option("lock_timeout", ES_RUNNER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE,
							 GUC_ACTION_LOCAL, true, 0, false);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (page)
		pgstat_report_activity(STATE_RUNNING, "event_store: running a projection");
	ret = SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 1);
	if (page && es_projection_timeout > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(ret));
	if (page)
	{
		got = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			got = 0;			/* another session runs it */
		else if (got < 0)
			got = -1;			/* its first event failed */
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return got;
}

/*
 * The hard stop (a timeout handler, in a signal handler's context): end the
 * worker as SIGTERM would, at the next CHECK_FOR_INTERRUPTS.
 */
static void
es_hard_stop(void)
{
	es_hard_stopped = true;
	ProcDiePending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/* The worker ends: if a page would not stop, say which for the next one. */
static void
es_project_on_exit(int code, Datum arg)
{
	EsDatabase *db;

	if (!es_hard_stopped || es_page_of[0] == '\0')
		return;
	db = es_database_entry(MyDatabaseId, false);
	if (db != NULL)
		es_project_stuck_set(db, es_page_of);
	ereport(LOG,
			(errmsg("event_store: the page of projection \"%s\" did not stop %d ms after event_store.projection_timeout, and its worker was ended",
					es_page_of, ES_HARD_STOP_GRACE_MS),
			 errdetail("Its handler caught the cancel.  The next worker of the database records the attempt.")));
}

/*
 * Record a page that failed outside its handler as an attempt of its
 * projection (_es_project_failed), which is then retried after its backoff
 * and faults after its attempts.  An error doing so is logged.
 */
static void
es_project_record_failure(const char *name, const char *sqlstate,
						  const char *message, MemoryContext cxt)
{
	Datum		args[3];

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(sqlstate);
	args[2] = CStringGetTextDatum(message);
	PG_TRY();
	{
		(void) es_project_statement("SELECT event_store._es_project_failed($1, $2, $3)::text",
									3, args, false);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

/* A page of a previous worker would not stop: its attempt (57014). */
static void
es_project_record_stuck(MemoryContext cxt)
{
	EsDatabase *db = es_database_entry(MyDatabaseId, false);
	char		name[ES_MAX_CONSUMER_BYTES + 1];

	if (db == NULL || !es_project_stuck_take(db, name, sizeof(name)))
		return;
	es_project_record_failure(name, "57014",
							  psprintf("the page did not stop %d ms after event_store.projection_timeout (its handler caught the cancel): its worker was ended",
									   ES_HARD_STOP_GRACE_MS),
							  cxt);
}

/*
 * One page of one projection.  An error that leaves the page (a timeout, a
 * cancel, an assertion, an error of the page's own statements) is logged,
 * rolled back, and recorded as an attempt of that projection, which is then
 * retried after its backoff and faults after its attempts: it never stops
 * the round, so one projection holds the others back by one page at most.
 * A handler's session-level advisory locks do not outlive its page.
 */
static int64
es_project_one_page(const char *name, MemoryContext cxt)
{
	Datum		args[1];
	int64		got = 0;
	ErrorData  *edata = NULL;

	args[0] = CStringGetTextDatum(name);
	strlcpy(es_page_of, name, sizeof(es_page_of));
	if (es_projection_timeout > 0)
		enable_timeout_after(es_hard_stop_timeout,
							 (int) Min((int64) es_projection_timeout + ES_HARD_STOP_GRACE_MS,
									   (int64) PG_INT32_MAX));
	PG_TRY();
	{
		got = es_project_statement("SELECT event_store._es_project_page($1)", 1, args, true);
	}
	PG_CATCH();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		disable_timeout(es_hard_stop_timeout, false);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	disable_timeout(es_hard_stop_timeout, false);
	es_page_of[0] = '\0';
	LockReleaseSession(USER_LOCKMETHOD);
	if (edata == NULL)
		return got;
	if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		/* a lock held elsewhere: not this projection's fault, try later */
		ereport(LOG,
				(errmsg("event_store: a page of projection \"%s\" waited for a lock: %s", name, edata->message),
				 errdetail("It is tried again in a later round, and does not count as an attempt.")));
		FreeErrorData(edata);
		return 0;
	}

	ereport(LOG,
			(errmsg("event_store: a page of projection \"%s\" failed: %s", name, edata->message),
			 errdetail("SQLSTATE %s.  It counts as an attempt of the projection.",
					   unpack_sql_state(edata->sqlerrcode))));
	es_project_record_failure(name, unpack_sql_state(edata->sqlerrcode),
							  edata->message ? edata->message : "", cxt);
	FreeErrorData(edata);
	return -1;
}

/*
 * One round: a page of every running projection that is due, each in its
 * own transaction.  status->due says a page was applied (there may be
 * more: run again at once); status->next_retry_ms when the next failed page
 * may be tried again (-1: none waits).  An error listing the projections
 * (the extension dropped, say) is logged and ends the round.
 */
void
es_project_run(EsProjectStatus *status)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names = NIL;
	ListCell   *lc;
	bool		failed = false;

	status->due = false;
	status->next_retry_ms = -1;
	if (es_hard_stop_timeout == MAX_TIMEOUTS)
	{
		es_hard_stop_timeout = RegisterTimeout(USER_TIMEOUT, es_hard_stop);
		before_shmem_exit(es_project_on_exit, (Datum) 0);
	}
	es_project_record_stuck(cxt);
	PG_TRY();
	{
		names = es_project_list(status);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		status->failed = true;
		return;
	}
	PG_END_TRY();

	foreach(lc, names)
	{
		int64		got;

		CHECK_FOR_INTERRUPTS();
		got = es_project_one_page((const char *) lfirst(lc), cxt);
		if (got > 0)
			status->due = true;
		else if (got < 0)
			failed = true;
	}

	/*
	 * A failure set a time to try again (or faulted the projection): look
	 * when.  A retry due at once makes the round due again; the attempts
	 * are bounded, so this ends.
	 */
	if (failed && !status->due)
	{
		PG_TRY();
		{
			status->next_retry_ms = -1;
			if (es_project_list(status) != NIL && status->next_retry_ms < 0)
				status->due = true;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			status->failed = true;
		}
		PG_END_TRY();
	}
}
