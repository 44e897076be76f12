/*-------------------------------------------------------------------------
 *
 * es_util.c
 *	  Small helpers: time-ordered UUIDs, index maintenance for rows the
 *	  extension writes directly, the empty JSON object.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/index.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "event_store.h"

/*
 * Bytes from the strong random source, drawn a kilobyte at a time: one call
 * per id cost a twentieth of a single-event append.  The pool belongs to the
 * process that filled it, so that a child never reuses its parent's bytes.
 */
#define ES_RANDOM_POOL_SIZE 1024

static void
es_random_bytes(uint8 *buf, int len)
{
	static uint8 pool[ES_RANDOM_POOL_SIZE];
	static int	used = ES_RANDOM_POOL_SIZE;
	static int	pool_pid = 0;

	Assert(len <= ES_RANDOM_POOL_SIZE);
	if (used + len > ES_RANDOM_POOL_SIZE || pool_pid != MyProcPid)
	{
		if (!pg_strong_random(pool, ES_RANDOM_POOL_SIZE))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		used = 0;
		pool_pid = MyProcPid;
	}
	memcpy(buf, pool + used, len);
	/* a byte handed out is never handed out again */
	memset(pool + used, 0, len);
	used += len;
}

/*
 * A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then
 * random bits.  Ids that grow with time keep the event_id index compact and
 * its inserts on the same few pages, unlike random (version 4) ids.
 */
void
es_generate_uuid(pg_uuid_t *uuid)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		unix_ms;

	unix_ms = (uint64) (now / 1000) +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;

	es_random_bytes(uuid->data + 6, UUID_LEN - 6);

	uuid->data[0] = (unsigned char) (unix_ms >> 40);
	uuid->data[1] = (unsigned char) (unix_ms >> 32);
	uuid->data[2] = (unsigned char) (unix_ms >> 24);
	uuid->data[3] = (unsigned char) (unix_ms >> 16);
	uuid->data[4] = (unsigned char) (unix_ms >> 8);
	uuid->data[5] = (unsigned char) unix_ms;
	uuid->data[6] = (uuid->data[6] & 0x0F) | 0x70;	/* version 7 */
	uuid->data[8] = (uuid->data[8] & 0x3F) | 0x80;	/* RFC 9562 variant */
}

/*
 * Index maintenance for rows written with the table AM directly.  The
 * executor's own routine is used, so that indexes users add to the tables
 * (expressions, partial indexes) are maintained like after an INSERT.
 */
void
es_inserter_open(EsInserter *ins, Relation rel)
{
	ins->rel = rel;
	ins->estate = CreateExecutorState();
	ins->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ins->rri, rel, 1, NULL, 0);
	ExecOpenIndices(ins->rri, false);
}

/*
 * Insert the index entries of the row in slot.  only_summarizing: the row
 * is a heap-only update that still needs summarizing (BRIN) entries (16+).
 */
void
es_inserter_index(EsInserter *ins, TupleTableSlot *slot, bool only_summarizing)
{
	List	   *recheck;

	if (ins->rri->ri_NumIndices == 0)
		return;
#if PG_VERSION_NUM >= 160000
	recheck = ExecInsertIndexTuples(ins->rri, slot, ins->estate,
									false, false, NULL, NIL, only_summarizing);
#elif PG_VERSION_NUM >= 140000
	Assert(!only_summarizing);
	recheck = ExecInsertIndexTuples(ins->rri, slot, ins->estate,
									false, false, NULL, NIL);
#else
	Assert(!only_summarizing);
	ins->estate->es_result_relation_info = ins->rri;
	recheck = ExecInsertIndexTuples(slot, ins->estate, false, NULL, NIL);
#endif
	if (recheck != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("deferrable unique constraints on the tables of event_store are not supported")));
	ResetPerTupleExprContext(ins->estate);
}

void
es_inserter_close(EsInserter *ins)
{
	ExecCloseIndices(ins->rri);
	FreeExecutorState(ins->estate);
	pfree(ins->rri);
}

/*
 * A hash table keyed by the 64-bit hash of a stream name (es_name_hash),
 * whose entries start with that uint64; in cxt.  Callers compare the names
 * they store, since two names may share a hash.
 */
HTAB *
es_name_hash_table(const char *tabname, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(tabname, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Is num a whole number (not NaN, no fraction), between min and max?  For
 * JSON numbers that must be integers: schema_version, stream metadata.
 */
bool
es_numeric_is_whole(Numeric num)
{
	return !numeric_is_nan(num) &&
		DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(num),
										 DirectFunctionCall2(numeric_trunc,
															 NumericGetDatum(num),
															 Int32GetDatum(0))));
}

bool
es_numeric_in_range(Numeric num, int64 min, int64 max)
{
	return !DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(num),
											 DirectFunctionCall1(int8_numeric,
																 Int64GetDatum(min)))) &&
		!DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(num),
										  DirectFunctionCall1(int8_numeric,
															  Int64GetDatum(max))));
}

/*
 * '{}'::jsonb, built once per backend.
 */
Jsonb *
es_empty_object(void)
{
	static Jsonb *empty = NULL;

	if (empty == NULL)
	{
		JsonbParseState *state = NULL;
		JsonbValue *value;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		value = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		empty = JsonbValueToJsonb(value);
		MemoryContextSwitchTo(old);
	}
	return empty;
}
