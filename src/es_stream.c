/*-------------------------------------------------------------------------
 *
 * es_stream.c
 *	  Streams: name rules, the per-stream lock, and the streams table.
 *
 * Every writer of a stream (es_append, or a plain INSERT through the
 * numbering trigger) first takes the stream lock: a transaction-scoped
 * heavyweight lock on a 64-bit hash of the stream name, shown in pg_locks
 * as an advisory lock with objsubid 17747 ("ES").  Holding it, the writer
 * reads the stream's row with SnapshotSelf, which sees everything committed
 * so far (the previous holder has finished, since locks are released after
 * commit) and the transaction's own changes.  Writers of one stream thus
 * queue in lock order, each sees its predecessor's version, and positions,
 * taken under the lock, follow versions.  Two names with the same hash
 * merely share a queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"

void
es_validate_stream_name(text *name)
{
	int			len = VARSIZE_ANY_EXHDR(name);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream name must not be empty")));
	if (len > ES_MAX_STREAM_NAME_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("stream name is too long"),
				 errdetail("The name has %d bytes; the limit is %d bytes.",
						   len, ES_MAX_STREAM_NAME_BYTES)));
	if (VARDATA_ANY(name)[0] == '-')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream name must not start with \"-\""),
				 errdetail("The category of a stream is the part of its name before the first \"-\".")));
}

void
es_validate_type(text *type)
{
	int			len = VARSIZE_ANY_EXHDR(type);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event type must not be empty")));
	if (len > ES_MAX_TYPE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event type is too long"),
				 errdetail("The type has %d bytes; the limit is %d bytes.",
						   len, ES_MAX_TYPE_BYTES)));
}

/*
 * The category: the part of the name before the first "-", or the whole
 * name when it has none.
 */
text *
es_category_of(text *name)
{
	const char *s = VARDATA_ANY(name);
	int			len = VARSIZE_ANY_EXHDR(name);
	const char *dash = memchr(s, '-', len);

	return cstring_to_text_with_len(s, dash ? (int) (dash - s) : len);
}

void
es_lock_stream(text *name)
{
	uint64		hash;
	LOCKTAG		tag;

	hash = hash_bytes_extended((const unsigned char *) VARDATA_ANY(name),
							   VARSIZE_ANY_EXHDR(name), 0);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_STREAM);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Read the stream's row.  The caller holds the stream lock.
 */
void
es_stream_fetch(Relation streams, Relation name_index, text *name,
				EsStream *stream)
{
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	memset(stream, 0, sizeof(EsStream));

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   name_index->rd_indcollation[0], F_TEXTEQ,
						   PointerGetDatum(name));
	slot = table_slot_create(streams, NULL);
	scan = index_beginscan(streams, name_index, SnapshotSelf, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;

		stream->exists = true;
		stream->tuple = ExecCopySlotHeapTuple(slot);
		stream->tid = stream->tuple->t_self;
		stream->id = DatumGetInt64(slot_getattr(slot, Anum_es_streams_id, &isnull));
		stream->version = DatumGetInt64(slot_getattr(slot, Anum_es_streams_version,
													 &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Create the stream's row, or move it to new_version.  The caller holds the
 * stream lock.  Ends with CommandCounterIncrement(), so that the next write
 * of the same stream in this transaction (even in the same command) sees
 * and may update the new row.
 */
void
es_stream_store(const EsCatalog *cat, Relation streams, text *name,
				EsStream *stream, int64 new_version)
{
	TupleDesc	desc = RelationGetDescr(streams);
	Datum		values[Natts_es_streams];
	bool		nulls[Natts_es_streams];
	bool		replace[Natts_es_streams];
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	HeapTuple	tuple;
	bool		index_it;
	EsInserter	ins;
	TupleTableSlot *slot;

	memset(nulls, false, sizeof(nulls));

	if (!stream->exists)
	{
		values[Anum_es_streams_id - 1] =
			Int64GetDatum(nextval_internal(cat->streams_id_seq, false));
		values[Anum_es_streams_name - 1] = PointerGetDatum(name);
		values[Anum_es_streams_category - 1] = PointerGetDatum(es_category_of(name));
		values[Anum_es_streams_version - 1] = Int64GetDatum(new_version);
		values[Anum_es_streams_created_at - 1] = TimestampTzGetDatum(now);
		values[Anum_es_streams_updated_at - 1] = TimestampTzGetDatum(now);
		values[Anum_es_streams_metadata - 1] = JsonbPGetDatum(es_empty_object());
		tuple = heap_form_tuple(desc, values, nulls);
		simple_heap_insert(streams, tuple);
		index_it = true;
		stream->exists = true;
		stream->id = DatumGetInt64(values[Anum_es_streams_id - 1]);
	}
	else
	{
#if PG_VERSION_NUM >= 160000
		TU_UpdateIndexes update_indexes;
#endif

		memset(replace, false, sizeof(replace));
		values[Anum_es_streams_version - 1] = Int64GetDatum(new_version);
		replace[Anum_es_streams_version - 1] = true;
		values[Anum_es_streams_updated_at - 1] = TimestampTzGetDatum(now);
		replace[Anum_es_streams_updated_at - 1] = true;
		tuple = heap_modify_tuple(stream->tuple, desc, values, nulls, replace);
#if PG_VERSION_NUM >= 160000
		simple_heap_update(streams, &stream->tid, tuple, &update_indexes);
		index_it = (update_indexes != TU_None);
#else
		simple_heap_update(streams, &stream->tid, tuple);
		index_it = !HeapTupleIsHeapOnly(tuple);
#endif
	}

	if (index_it)
	{
		es_inserter_open(&ins, streams);
		slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
		ExecStoreHeapTuple(tuple, slot, false);
		es_inserter_index(&ins, slot);
		ExecDropSingleTupleTableSlot(slot);
		es_inserter_close(&ins);
	}

	stream->version = new_version;
	stream->tid = tuple->t_self;
	stream->tuple = tuple;

	CommandCounterIncrement();
}

void
es_raise_wrong_version(text *name, int64 expected, int64 actual)
{
	ereport(ERROR,
			(errcode(ERRCODE_ES_WRONG_EXPECTED_VERSION),
			 errmsg("wrong expected version for stream \"%s\"",
					text_to_cstring(name)),
			 errdetail("Expected version %lld, actual version %lld.",
					   (long long) expected, (long long) actual),
			 errhint("Read the stream again and retry with its current version, or pass NULL to append at any version.")));
}
