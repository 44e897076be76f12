/*-------------------------------------------------------------------------
 *
 * es_scan.c
 *	  Layer 0: index scans (es_scan.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "es_compat.h"
#include "es_scan.h"

void
es_scan_init(EsScan *s, Relation heap, Relation index)
{
	s->heap = heap;
	s->index = index;
	s->scan = NULL;
	s->slot = NULL;
	s->nkeys = 0;
}

static ScanKey
es_scan_next_key(EsScan *s)
{
	if (s->nkeys >= ES_SCAN_MAX_KEYS)
		elog(ERROR, "too many keys for an index scan of \"%s\"",
			 RelationGetRelationName(s->index));
	return &s->keys[s->nkeys++];
}

void
es_scan_key_text(EsScan *s, AttrNumber attno, text *value)
{
	ScanKeyEntryInitialize(es_scan_next_key(s), 0, attno, BTEqualStrategyNumber,
						   InvalidOid, s->index->rd_indcollation[attno - 1],
						   F_TEXTEQ, PointerGetDatum(value));
}

void
es_scan_key_int8(EsScan *s, AttrNumber attno, StrategyNumber strategy, int64 value)
{
	RegProcedure proc;

	switch (strategy)
	{
		case BTLessStrategyNumber:
			proc = F_INT8LT;
			break;
		case BTLessEqualStrategyNumber:
			proc = F_INT8LE;
			break;
		case BTEqualStrategyNumber:
			proc = F_INT8EQ;
			break;
		case BTGreaterEqualStrategyNumber:
			proc = F_INT8GE;
			break;
		case BTGreaterStrategyNumber:
			proc = F_INT8GT;
			break;
		default:
			elog(ERROR, "unknown btree strategy %d", (int) strategy);
			proc = InvalidOid;	/* keep compiler quiet */
	}
	ScanKeyEntryInitialize(es_scan_next_key(s), 0, attno, strategy, InvalidOid,
						   InvalidOid, proc, Int64GetDatum(value));
}

void
es_scan_key_int4(EsScan *s, AttrNumber attno, int32 value)
{
	ScanKeyEntryInitialize(es_scan_next_key(s), 0, attno, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_INT4EQ, Int32GetDatum(value));
}

void
es_scan_key_uuid(EsScan *s, AttrNumber attno, pg_uuid_t *value)
{
	ScanKeyEntryInitialize(es_scan_next_key(s), 0, attno, BTEqualStrategyNumber,
						   InvalidOid, InvalidOid, F_UUID_EQ, UUIDPGetDatum(value));
}

void
es_scan_begin(EsScan *s, Snapshot snapshot)
{
	s->scan = es_index_beginscan(s->heap, s->index, snapshot, s->nkeys);
	index_rescan(s->scan, s->nkeys > 0 ? s->keys : NULL, s->nkeys, NULL, 0);
}

bool
es_scan_next(EsScan *s, ScanDirection dir)
{
	/* made on first use: es_scan_next_tid's callers need none */
	if (s->slot == NULL)
		s->slot = table_slot_create(s->heap, NULL);
	return index_getnext_slot(s->scan, dir, s->slot);
}

ItemPointer
es_scan_next_tid(EsScan *s, ScanDirection dir)
{
	return index_getnext_tid(s->scan, dir);
}

bool
es_scan_first(EsScan *s, Snapshot snapshot, ScanDirection dir)
{
	es_scan_begin(s, snapshot);
	return es_scan_next(s, dir);
}

void
es_scan_end(EsScan *s)
{
	if (s->scan != NULL)
		index_endscan(s->scan);
	if (s->slot != NULL)
		ExecDropSingleTupleTableSlot(s->slot);
	s->scan = NULL;
	s->slot = NULL;
}
