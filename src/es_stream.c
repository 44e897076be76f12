/*-------------------------------------------------------------------------
 *
 * es_stream.c
 *	  Layer 2: the streams table, whose rows serialize the writers of each
 *	  stream; the rows a transaction holds; a stream's row as a snapshot
 *	  sees it.
 *
 * A writer claims a stream by updating (or creating) its row in
 * event_store.streams, before it takes positions and inserts events.  The
 * row update is the lock: it lasts until the writer's transaction ends, it
 * lives in the tuple header (no shared lock table entry, so one transaction
 * may write to any number of streams), and deadlocks are detected as for
 * any row.  The protocol, in es_append and the numbering trigger:
 *
 *	1. es_stream_fetch: find the row with a dirty snapshot, which also shows
 *	   rows that open transactions are inserting or updating;
 *	2. if another open transaction is writing it, wait for that transaction
 *	   and look again: its outcome decides what we see (steps 1 and 2 are
 *	   es_stream_fetch_settled);
 *	3. check what must be checked against the row's version (committed, or
 *	   our own);
 *	4. es_stream_update / es_stream_create; if somebody got in between, they
 *	   return false and we start again.
 *
 * Creating a row takes a short lock on a 64-bit hash of the name (advisory,
 * objsubid 17747 in pg_locks), released once the row is in, so that two
 * creators do not both insert; the second then finds the first's row at
 * step 1 and waits for its transaction.  Two names with the same hash
 * merely share that lock.
 *
 * Positions are taken after the claim, so within a stream they follow
 * versions.
 *
 * A transaction remembers where it wrote each stream's row (EsHeldStream):
 * writing one again, it goes straight to that row instead of through the
 * index, which leads past every version the transaction left behind (they
 * cannot be pruned before it ends, so a loop of appends to one stream would
 * be quadratic).  Nothing in that memory is trusted: a hit is used only if
 * the streams table is still the same file and the row at that address is
 * visible, written by this transaction and named so.  A rolled-back
 * subtransaction, a rewritten or recreated table, all fall back to the
 * index.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_compat.h"
#include "es_scan.h"
#include "es_register.h"
#include "es_stream.h"
#include "es_util.h"
#include "es_validate.h"

typedef struct EsHeldStream
{
	uint64		hash;			/* hash key: hash of the name */
	text	   *name;
	ItemPointerData tid;
	SubTransactionId subid;		/* the subtransaction that wrote it there */
} EsHeldStream;

static MemoryContext es_held_context = NULL;
static HTAB *es_held = NULL;
static Oid	es_held_relid = InvalidOid; /* the streams table they are in */
static Oid	es_held_relfile = InvalidOid;	/* and its file */
static bool es_plain_inserts = false;


/* The memory lives in TopTransactionContext: forget, or free and forget. */
static void
es_held_forget(bool free_it)
{
	if (free_it && es_held_context != NULL)
		MemoryContextDelete(es_held_context);
	es_held_context = NULL;
	es_held = NULL;
	es_held_relid = InvalidOid;
	es_held_relfile = InvalidOid;
}

static void es_held_forget_one(EsHeldStream *held);

/*
 * The end of the transaction (event_store.c): the memory was in
 * TopTransactionContext, and so was the plain INSERTs' flag.
 */
void
es_stream_xact_end(void)
{
	es_held_forget(false);
	es_plain_inserts = false;
}

/*
 * A subtransaction that rolls back takes its row versions with it: forget
 * where it wrote (a later write looks the row up through the index); one
 * that commits hands them to its parent.
 */
void
es_stream_subxact_end(bool committed, SubTransactionId mySubid,
					  SubTransactionId parentSubid)
{
	HASH_SEQ_STATUS seq;
	EsHeldStream *held;

	if (es_held == NULL)
		return;
	hash_seq_init(&seq, es_held);
	while ((held = hash_seq_search(&seq)) != NULL)
	{
		if (!committed && held->subid >= mySubid)
			es_held_forget_one(held);
		else if (committed && held->subid == mySubid)
			held->subid = parentSubid;
	}
}

/*
 * This transaction inserts events by plain INSERT: then the streams rows
 * may lag behind the stored events until the end of the statement, and
 * es_append counts from the stored events too (es_trigger.c sets it).
 */
void
es_stream_plain_inserts(void)
{
	es_plain_inserts = true;
}

bool
es_plain_inserts_in_xact(void)
{
	return es_plain_inserts;
}

static EsHeldStream *
es_held_find(text *name)
{
	uint64		hash = es_name_hash(name);
	EsHeldStream *held;

	if (es_held == NULL)
		return NULL;
	held = hash_search(es_held, &hash, HASH_FIND, NULL);
	return (held != NULL && es_same_name(held->name, name)) ? held : NULL;
}

static void
es_held_forget_one(EsHeldStream *held)
{
	uint64		hash = held->hash;

	pfree(held->name);
	(void) hash_search(es_held, &hash, HASH_REMOVE, NULL);
}

/*
 * The stream's row where this transaction last wrote it, checked, into
 * stream (a copy); false if there is none to trust.
 */
static bool
es_held_fetch(Relation streams, text *name, EsStream *stream)
{
	EsHeldStream *held;
	TupleTableSlot *slot;
	bool		ok = false;

	if (es_held == NULL)
		return false;
	if (es_held_relid != RelationGetRelid(streams) ||
		es_held_relfile != ES_RELFILE(streams))
	{
		/* recreated or rewritten (CLUSTER, VACUUM FULL): addresses are void */
		es_held_forget(true);
		return false;
	}
	held = es_held_find(name);
	if (held == NULL)
		return false;

	slot = table_slot_create(streams, NULL);
	if (table_tuple_fetch_row_version(streams, &held->tid, SnapshotSelf, slot))
	{
		HeapTuple	tuple = ExecCopySlotHeapTuple(slot);
		bool		isnull;
		text	   *stored = DatumGetTextPP(heap_getattr(tuple, Anum_es_streams_name,
														 RelationGetDescr(streams), &isnull));

		if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)) &&
			es_same_name(stored, name))
		{
			memset(stream, 0, sizeof(EsStream));
			stream->exists = true;
			stream->tuple = tuple;
			stream->tid = tuple->t_self;
			stream->wait_xid = InvalidTransactionId;
			stream->id = DatumGetInt64(heap_getattr(tuple, Anum_es_streams_id,
													RelationGetDescr(streams), &isnull));
			stream->version = DatumGetInt64(heap_getattr(tuple, Anum_es_streams_version,
														 RelationGetDescr(streams), &isnull));
			stream->last_created = DatumGetTimestampTz(heap_getattr(tuple, Anum_es_streams_updated_at,
																	RelationGetDescr(streams), &isnull));
			ok = true;
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	if (!ok)
		es_held_forget_one(held);	/* e.g. written by a rolled-back subtransaction */
	return ok;
}

/* Remember the row this transaction just wrote for the stream. */
static void
es_held_remember(Relation streams, text *name, EsStream *stream)
{
	uint64		hash = es_name_hash(name);
	EsHeldStream *held;
	bool		found;
	MemoryContext old;

	if (es_held != NULL &&
		(es_held_relid != RelationGetRelid(streams) ||
		 es_held_relfile != ES_RELFILE(streams)))
		es_held_forget(true);
	if (es_held == NULL)
	{
		es_held_context = AllocSetContextCreate(TopTransactionContext,
												"event_store held streams",
												ALLOCSET_DEFAULT_SIZES);
		es_held = es_name_hash_table("event_store held streams",
									 sizeof(EsHeldStream), es_held_context);
		es_held_relid = RelationGetRelid(streams);
		es_held_relfile = ES_RELFILE(streams);
	}

	held = hash_search(es_held, &hash, HASH_ENTER, &found);
	if (found && !es_same_name(held->name, name))
	{
		/* another name with the same hash: it falls back to the index */
		pfree(held->name);
		found = false;
	}
	if (!found)
	{
		old = MemoryContextSwitchTo(es_held_context);
		held->name = DatumGetTextPCopy(PointerGetDatum(name));
		MemoryContextSwitchTo(old);
	}
	held->tid = stream->tid;
	held->subid = GetCurrentSubTransactionId();
}

void
es_held_drop(text *name)
{
	EsHeldStream *held = es_held_find(name);

	if (held != NULL)
		es_held_forget_one(held);
}

/*
 * Should a writer's fetch prune the page of a stream's row?
 *
 * PostgreSQL prunes a heap page on any read through an index once the
 * page's free space is under its fillfactor's reserve (or a tenth of the
 * page).  Stream rows are inserted until just that reserve is left, so
 * after one append to any stream of a page, the next append to a stream of
 * that page would prune it: look at every row of the page and WAL-log the
 * result, to reclaim one dead version.  Measured (bench/instructions), that
 * was 8% of a single-event append's instructions and of its WAL.  Writers
 * instead let dead versions collect until half of that reserve is used,
 * and prune them all then: the update still finds room on its own page (a
 * HOT update, no new index entries), with a dozen versions' room to spare
 * for when pruning must wait for an old snapshot; the page is pruned once
 * per dozen or so appends; and following a longer HOT chain costs far less
 * than a prune.  Readers and VACUUM prune as always.
 */
static bool
es_streams_page_needs_prune(Relation streams, Page page)
{
	Size		minfree = RelationGetTargetPageFreeSpace(streams,
														 HEAP_DEFAULT_FILLFACTOR);

	minfree = Max(minfree / 2, BLCKSZ / 10);
	return PageIsFull(page) || PageGetHeapFreeSpace(page) < minfree;
}

/*
 * The row version at tid (an index entry's, followed along its HOT chain)
 * that snapshot sees, copied; false if none.  heapam_index_fetch_tuple's
 * work, with the pruning decided above.
 */
static bool
es_stream_heap_fetch(Relation streams, ItemPointer tid, Snapshot snapshot,
					 HeapTuple *copy, bool *all_dead)
{
	Buffer		buf;
	Page		page;
	HeapTupleData tuple;
	bool		found;

	buf = ReadBuffer(streams, ItemPointerGetBlockNumber(tid));
	page = BufferGetPage(buf);
	/* unlocked, as heap_page_prune_opt's own test: a hint is enough */
	if (es_streams_page_needs_prune(streams, page))
		heap_page_prune_opt(streams, buf);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(tid, streams, buf, snapshot, &tuple,
								   all_dead, true);
	if (found)
		*copy = heap_copytuple(&tuple);
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buf);
	return found;
}

/*
 * Find the stream's row with a dirty snapshot.  When an open transaction
 * other than ours is inserting or updating it, st->wait_xid says which.
 */
void
es_stream_fetch(Relation streams, Relation name_index, text *name,
				EsStream *stream)
{
	SnapshotData dirty;
	EsScan		scan;
	ItemPointer tid;

	memset(stream, 0, sizeof(EsStream));
	stream->wait_xid = InvalidTransactionId;

	InitDirtySnapshot(dirty);
	es_scan_init(&scan, streams, name_index);
	es_scan_key_text(&scan, 1, name);
	es_scan_begin(&scan, &dirty);
	while ((tid = es_scan_next_tid(&scan, ForwardScanDirection)) != NULL)
	{
		ItemPointerData at = *tid;
		HeapTuple	tuple;
		bool		all_dead = false;
		bool		isnull;
		TupleDesc	desc = RelationGetDescr(streams);

		if (!es_stream_heap_fetch(streams, &at, &dirty, &tuple, &all_dead))
		{
			/* as index_getnext_slot: the index may forget a dead chain */
			if (!scan.scan->xactStartedInRecovery)
				scan.scan->kill_prior_tuple = all_dead;
			continue;
		}

		if (TransactionIdIsValid(dirty.xmin))
			stream->wait_xid = dirty.xmin;
		else if (TransactionIdIsValid(dirty.xmax))
			stream->wait_xid = dirty.xmax;

		stream->exists = true;
		stream->tuple = tuple;
		stream->tid = tuple->t_self;
		stream->id = DatumGetInt64(heap_getattr(tuple, Anum_es_streams_id,
												desc, &isnull));
		stream->version = DatumGetInt64(heap_getattr(tuple, Anum_es_streams_version,
													 desc, &isnull));
		stream->last_created = DatumGetTimestampTz(heap_getattr(tuple, Anum_es_streams_updated_at,
																desc, &isnull));
		break;
	}
	es_scan_end(&scan);
}

/*
 * Find the stream's row once no other open transaction is writing it:
 * wait for each such transaction to end (its outcome decides what we see),
 * then look again.
 */
void
es_stream_fetch_settled(Relation streams, Relation name_index, text *name,
						EsStream *stream)
{
	if (es_held_fetch(streams, name, stream))
		return;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_stream_fetch(streams, name_index, name, stream);
		if (!TransactionIdIsValid(stream->wait_xid))
			return;
		XactLockTableWait(stream->wait_xid, streams, &stream->tid, XLTW_Update);
	}
}

/*
 * Is the row's current version one this transaction wrote?  Then we hold
 * the stream already.
 */
bool
es_stream_is_ours(EsStream *stream)
{
	return stream->exists &&
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(stream->tuple->t_data));
}

static void
es_stream_index(Relation streams, HeapTuple tuple, bool only_summarizing)
{
	EsInserter	ins;
	TupleTableSlot *slot;

	es_inserter_open(&ins, streams);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(streams), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	es_inserter_index(&ins, slot, only_summarizing);
	ExecDropSingleTupleTableSlot(slot);
	es_inserter_close(&ins);
}

static void
es_creation_locktag(LOCKTAG *tag, text *name)
{
	uint64		hash = es_name_hash(name);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, ES_LOCKTAG_STREAM);
}

/*
 * Create the stream's row at version.  Returns false, creating nothing, if
 * another transaction created it meanwhile: start again from the fetch.
 */
bool
es_stream_create(const EsCatalog *cat, Relation streams, Relation name_index,
				 text *name, EsStream *stream, int64 version)
{
	LOCKTAG		tag;
	EsStream	again;
	bool		created = false;

	/*
	 * A transaction-level lock, released as soon as the row is in: an error
	 * in between leaves its release to the abort, and from then on the row
	 * itself makes others wait (it would fill the lock table to keep one
	 * per created stream until commit).
	 */
	es_creation_locktag(&tag, name);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	{
		es_stream_fetch(streams, name_index, name, &again);
		if (!again.exists)
		{
			Datum		values[Natts_es_streams];
			bool		nulls[Natts_es_streams];
			TimestampTz now = GetCurrentTransactionStartTimestamp();
			HeapTuple	tuple;

			memset(nulls, false, sizeof(nulls));
			values[Anum_es_streams_id - 1] =
				Int64GetDatum(nextval_internal(cat->streams_id_seq, false));
			values[Anum_es_streams_name - 1] = PointerGetDatum(name);
			values[Anum_es_streams_category - 1] = PointerGetDatum(es_category_of(name));
			values[Anum_es_streams_version - 1] = Int64GetDatum(version);
			values[Anum_es_streams_created_at - 1] = TimestampTzGetDatum(now);
			values[Anum_es_streams_updated_at - 1] = TimestampTzGetDatum(now);
			values[Anum_es_streams_metadata - 1] = JsonbPGetDatum(es_empty_object());
			values[Anum_es_streams_erased_at - 1] = (Datum) 0;
			nulls[Anum_es_streams_erased_at - 1] = true;
			tuple = heap_form_tuple(RelationGetDescr(streams), values, nulls);
			simple_heap_insert(streams, tuple);
			es_stream_index(streams, tuple, false);

			stream->exists = true;
			stream->id = DatumGetInt64(values[Anum_es_streams_id - 1]);
			stream->version = version;
			stream->last_created = now;
			stream->tuple = tuple;
			stream->tid = tuple->t_self;
			stream->wait_xid = InvalidTransactionId;
			created = true;
		}
	}
	/* others may look now: they will see our row and wait for us */
	LockRelease(&tag, ExclusiveLock, false);

	if (created)
	{
		es_held_remember(streams, name, stream);
		CommandCounterIncrement();
	}
	return created;
}

/*
 * The created_at of the next events of the stream, and the updated_at of its
 * row after the append: the start of this transaction, or the created_at of
 * the stream's last append if that is later (a transaction that began
 * earlier than the one it waited for).  So created_at never decreases within
 * a stream: "the events created at or before t" is always a prefix of it.
 */
TimestampTz
es_stream_next_created(const EsStream *stream)
{
	TimestampTz start = GetCurrentTransactionStartTimestamp();

	return (stream->exists && stream->last_created > start) ?
		stream->last_created : start;
}

/*
 * Move the stream's row to new_version (the same version just claims it).
 * Returns false if another transaction changed the row since it was
 * fetched: start again from the fetch.  Ends with CommandCounterIncrement(),
 * so that the next write of the stream in this transaction, even in the same
 * command, sees and may update the new row.
 */
static bool es_stream_write(Relation streams, text *name, EsStream *stream,
							Datum *values, bool *nulls, bool *replace,
							int64 new_version);

bool
es_stream_update(Relation streams, text *name, EsStream *stream, int64 new_version)
{
	Datum		values[Natts_es_streams];
	bool		nulls[Natts_es_streams];
	bool		replace[Natts_es_streams];

	memset(nulls, false, sizeof(nulls));
	memset(replace, false, sizeof(replace));
	/* the same version only claims the row: its values stay as they are */
	if (new_version != stream->version)
	{
		values[Anum_es_streams_version - 1] = Int64GetDatum(new_version);
		replace[Anum_es_streams_version - 1] = true;
		values[Anum_es_streams_updated_at - 1] =
			TimestampTzGetDatum(es_stream_next_created(stream));
		replace[Anum_es_streams_updated_at - 1] = true;
	}
	return es_stream_write(streams, name, stream, values, nulls, replace,
						   new_version);
}

/*
 * Claim the stream and replace its metadata (if not NULL), or mark it
 * erased: es_stream_update's protocol, false to start again from the fetch.
 */
bool
es_stream_rewrite(Relation streams, text *name, EsStream *stream,
				  Jsonb *metadata, bool erase)
{
	Datum		values[Natts_es_streams];
	bool		nulls[Natts_es_streams];
	bool		replace[Natts_es_streams];

	memset(nulls, false, sizeof(nulls));
	memset(replace, false, sizeof(replace));
	if (metadata != NULL)
	{
		values[Anum_es_streams_metadata - 1] = JsonbPGetDatum(metadata);
		replace[Anum_es_streams_metadata - 1] = true;
	}
	if (erase)
	{
		values[Anum_es_streams_erased_at - 1] =
			TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		replace[Anum_es_streams_erased_at - 1] = true;
	}
	return es_stream_write(streams, name, stream, values, nulls, replace,
						   stream->version);
}

/* Was the stream (a fetched row) erased? */
bool
es_stream_erased(Relation streams, EsStream *stream)
{
	bool		isnull;

	if (!stream->exists)
		return false;
	(void) heap_getattr(stream->tuple, Anum_es_streams_erased_at,
						RelationGetDescr(streams), &isnull);
	return !isnull;
}

void
es_refuse_erased(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_ES_STREAM_ERASED),
			 errmsg("stream \"%s\" was erased", text_to_cstring(name)),
			 errdetail("An erased stream's name can never be used again."),
			 errhint("See event_store.erasures for who erased it and when.")));
}

/*
 * The update of es_stream_update and es_stream_rewrite: the row with the
 * given columns replaced, under the claim protocol.
 */
static bool
es_stream_write(Relation streams, text *name, EsStream *stream,
				Datum *values, bool *nulls, bool *replace, int64 new_version)
{
	TupleDesc	desc = RelationGetDescr(streams);
	HeapTuple	tuple;
	TM_Result	result;
	TM_FailureData tmfd;
	bool		index_it;
	bool		only_summarizing;

	tuple = heap_modify_tuple(stream->tuple, desc, values, nulls, replace);
	result = es_heap_update(streams, &stream->tid, tuple, &tmfd, &index_it,
							&only_summarizing);

	switch (result)
	{
		case TM_Ok:
			break;
		case TM_Updated:
		case TM_Deleted:
			/* somebody committed a change after our fetch: look again */
			es_held_drop(name);
			return false;
		default:
			elog(ERROR, "unexpected result %d updating the row of stream \"%s\"",
				 (int) result, text_to_cstring(name));
	}

	if (index_it)
		es_stream_index(streams, tuple, only_summarizing);

	if (replace[Anum_es_streams_updated_at - 1])
		stream->last_created = DatumGetTimestampTz(values[Anum_es_streams_updated_at - 1]);
	stream->version = new_version;
	stream->tid = tuple->t_self;
	stream->tuple = tuple;
	es_held_remember(streams, name, stream);

	CommandCounterIncrement();
	return true;
}

void
es_raise_wrong_version(text *name, int64 expected, int64 actual)
{
	es_stats_count(ES_STAT_CONFLICTS, 1);
	ereport(ERROR,
			(errcode(ERRCODE_ES_WRONG_EXPECTED_VERSION),
			 errmsg("wrong expected version for stream \"%s\"",
					text_to_cstring(name)),
			 errdetail("Expected version %lld, actual version %lld.",
					   (long long) expected, (long long) actual),
			 errhint("Read the stream again and retry with its current version, or pass NULL to append at any version.")));
}

/*
 * The stream's row as snapshot sees it, into view: its version, rules,
 * erasure and the created_at of its last append (streams.updated_at); a
 * copy of its metadata if want_metadata.  False (and an empty view) if the
 * snapshot sees no row.  (Readers use it; writers fetch the row to claim it.)
 */
bool
es_stream_view(const EsCatalog *cat, Snapshot snapshot, text *name,
			   EsStreamView *view, bool want_metadata)
{
	Relation	rel = es_table_open(cat->streams, AccessShareLock);
	Relation	idx = es_index_open(cat->streams_name, AccessShareLock);
	EsScan		scan;

	memset(view, 0, sizeof(EsStreamView));
	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, name);
	if (es_scan_first(&scan, snapshot, ForwardScanDirection))
	{
		TupleTableSlot *slot = scan.slot;
		bool		isnull;
		Jsonb	   *metadata;

		view->exists = true;
		view->version = DatumGetInt64(slot_getattr(slot, Anum_es_streams_version, &isnull));
		view->last_created = DatumGetTimestampTz(slot_getattr(slot, Anum_es_streams_updated_at,
															  &isnull));
		(void) slot_getattr(slot, Anum_es_streams_erased_at, &isnull);
		view->erased = !isnull;
		metadata = DatumGetJsonbP(slot_getattr(slot, Anum_es_streams_metadata, &isnull));
		view->has_rules = es_stream_rules_of(metadata, &view->rules);
		if (want_metadata)
			view->metadata = DatumGetJsonbPCopy(PointerGetDatum(metadata));
	}
	es_scan_end(&scan);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return view->exists;
}
