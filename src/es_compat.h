/*-------------------------------------------------------------------------
 *
 * es_compat.h
 *	  Layer 0: the differences between the PostgreSQL versions event_store supports
 *	  (15, 17 and 18), in one place.  Nothing else in src/ tests
 *	  PG_VERSION_NUM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_COMPAT_H
#define ES_COMPAT_H

#include "access/genam.h"
#include "access/heapam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_proc.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#if PG_VERSION_NUM < 150000
#error "event_store needs PostgreSQL 15 or later"
#endif

/*
 * May the current role create databases?  (have_createdb_privilege is
 * exported from 16 on; Debian's 15 exports it too, PostgreSQL's own 15 does
 * not.)
 */
static inline bool
es_have_createdb_privilege(void)
{
#if PG_VERSION_NUM >= 160000
	return have_createdb_privilege();
#else
	bool		result = false;
	HeapTuple	tuple;

	if (superuser())
		return true;
	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(tuple))
	{
		result = ((Form_pg_authid) GETSTRUCT(tuple))->rolcreatedb;
		ReleaseSysCache(tuple);
	}
	return result;
#endif
}

/* this process's index in the PGPROC array */
#if PG_VERSION_NUM >= 170000
#define ES_MY_PROCNO		MyProcNumber
#else
#define ES_MY_PROCNO		(MyProc->pgprocno)
#endif

/* EXECUTE on a function (16 replaced pg_proc_aclcheck by object_aclcheck) */
#if PG_VERSION_NUM >= 160000
#define es_proc_aclcheck(fn, roleid, mode) \
	object_aclcheck(ProcedureRelationId, (fn), (roleid), (mode))
#else
#define es_proc_aclcheck(fn, roleid, mode) \
	pg_proc_aclcheck((fn), (roleid), (mode))
#endif

/* the file number of a relation (16 renamed RelFileNode) */
#if PG_VERSION_NUM >= 160000
#define ES_RELFILE(rel)		((rel)->rd_locator.relNumber)
#else
#define ES_RELFILE(rel)		((rel)->rd_node.relNode)
#endif

/* 18 gives index_beginscan instrumentation to fill (none here) */
#if PG_VERSION_NUM >= 180000
#define es_index_beginscan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), 0)
#else
#define es_index_beginscan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), 0)
#endif

/*
 * heap_update, and what it says of the indexes: none to update (a HOT
 * update), only summarizing ones (16+), or all.
 */
static inline TM_Result
es_heap_update(Relation rel, ItemPointer otid, HeapTuple newtup,
			   TM_FailureData *tmfd, bool *index_it, bool *only_summarizing)
{
	TM_Result	result;
	LockTupleMode lockmode;
#if PG_VERSION_NUM >= 160000
	TU_UpdateIndexes update_indexes;

	result = heap_update(rel, otid, newtup, GetCurrentCommandId(true),
						 InvalidSnapshot, true, tmfd, &lockmode, &update_indexes);
	*index_it = (update_indexes != TU_None);
	*only_summarizing = (update_indexes == TU_Summarizing);
#else
	result = heap_update(rel, otid, newtup, GetCurrentCommandId(true),
						 InvalidSnapshot, true, tmfd, &lockmode);
	*index_it = !HeapTupleIsHeapOnly(newtup);
	*only_summarizing = false;
#endif
	return result;
}

/* the index entries of a row written with the table AM directly */
static inline List *
es_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
					   bool only_summarizing)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 only_summarizing);
#else
	Assert(!only_summarizing);
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

/* an ExecutorRun hook: 18 dropped the execute_once argument */
#if PG_VERSION_NUM >= 180000
#define ES_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define ES_EXECUTOR_RUN_CALL(fn) (fn) (queryDesc, direction, count)
#else
#define ES_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define ES_EXECUTOR_RUN_CALL(fn) (fn) (queryDesc, direction, count, execute_once)
#endif

/* does the current role own the database? */
#if PG_VERSION_NUM >= 160000
#define es_owns_database(dbid) \
	object_ownercheck(DatabaseRelationId, (dbid), GetUserId())
#else
#define es_owns_database(dbid) \
	pg_database_ownercheck((dbid), GetUserId())
#endif

#endif							/* ES_COMPAT_H */
