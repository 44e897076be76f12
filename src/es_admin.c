/*-------------------------------------------------------------------------
 *
 * es_admin.c
 *	  Layer 4, entry points: the life of a stream and the registry around
 *	  the reads.  es_set_stream_metadata, es_delete_stream (soft delete),
 *	  es_erase_stream (hard delete); the triggers of the registry tables
 *	  (upcasters, streams); the rules the SQL functions of the install
 *	  script call (_es_check_*).
 *
 * Erasure (es_erase_stream) removes the stream's events with the table AM
 * directly, so the immutability trigger never sees a DELETE and has nothing
 * to let through: no setting, variable or role opens it.  The function is
 * executable only by roles granted EXECUTE on it.
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
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "event_store.h"
#include "es_catalog.h"
#include "es_emit.h"
#include "es_events.h"
#include "es_register.h"
#include "es_scan.h"
#include "es_stream.h"
#include "es_util.h"
#include "es_validate.h"

/* ---------------------------------------------------------------------
 * Stream metadata, soft delete, erasure
 * ---------------------------------------------------------------------
 */

/*
 * Fetch the stream's row, waiting for an open writer as an append does;
 * refuse an unknown or erased stream.  The caller then claims it by
 * rewriting the row, starting again if that fails.
 */
static void
es_claim_existing(const EsCatalog *cat, Relation streams, Relation name_index,
				  text *stream, EsStream *st)
{
	es_stream_fetch_settled(streams, name_index, stream, st);
	if (!st->exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("stream \"%s\" does not exist", text_to_cstring(stream))));
	if (es_stream_erased(streams, st))
		es_refuse_erased(stream);
}

static Jsonb *
es_stream_metadata_of(Relation streams, EsStream *st)
{
	bool		isnull;

	return DatumGetJsonbPCopy(heap_getattr(st->tuple, Anum_es_streams_metadata,
										   RelationGetDescr(streams), &isnull));
}

/*
 * Delete a row found with a fresh snapshot, waiting for a transaction that
 * is changing it; a row another transaction changed or deleted meanwhile is
 * left to it (a snapshot saved concurrently stays: a deleted stream's
 * snapshot is unusable anyway, and an erased stream takes no snapshot).
 */
static void
es_delete_row(Relation rel, TupleTableSlot *slot)
{
	TM_FailureData tmfd;
	TM_Result	result;

	result = table_tuple_delete(rel, &slot->tts_tid, GetCurrentCommandId(true),
								InvalidSnapshot, InvalidSnapshot, true, &tmfd, false);
	if (result != TM_Ok && result != TM_Updated && result != TM_Deleted &&
		result != TM_SelfModified)
		elog(ERROR, "unexpected result %d deleting a row of \"%s\"",
			 (int) result, RelationGetRelationName(rel));
}

/*
 * Delete every row of rel whose first key column (index idx) is the
 * stream, as a fresh snapshot sees them; returns how many, and the highest
 * value of column "highest" among them (0: not asked).
 */
static int64
es_delete_rows_of(Oid relid, Oid idxid, text *stream, AttrNumber highest,
				  int64 *max_value)
{
	Relation	rel = es_table_open(relid, RowExclusiveLock);
	Relation	idx = es_index_open(idxid, AccessShareLock);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	EsScan		scan;
	int64		deleted = 0;

	es_scan_init(&scan, rel, idx);
	es_scan_key_text(&scan, 1, stream);
	es_scan_begin(&scan, snapshot);
	while (es_scan_next(&scan, ForwardScanDirection))
	{
		CHECK_FOR_INTERRUPTS();
		if (highest != InvalidAttrNumber)
		{
			bool		isnull;
			int64		value = DatumGetInt64(slot_getattr(scan.slot, highest, &isnull));

			*max_value = Max(*max_value, value);
		}
		es_delete_row(rel, scan.slot);
		deleted++;
	}
	es_scan_end(&scan);
	UnregisterSnapshot(snapshot);
	index_close(idx, AccessShareLock);
	table_close(rel, RowExclusiveLock);
	return deleted;
}

/* Delete the stream's snapshot, if it has one. */
static void
es_drop_snapshot(const EsCatalog *cat, text *stream)
{
	(void) es_delete_rows_of(cat->snapshots, cat->snapshots_pkey, stream,
							 InvalidAttrNumber, NULL);
}

static void
es_metadata_changed(const EsCatalog *cat)
{
	es_registry_touch(cat, cat->streams);
	CommandCounterIncrement();
}

static void
es_require_writer(const EsCatalog *cat, const char *what)
{
	es_require_privilege(cat->events, ACL_INSERT);
	PreventCommandIfReadOnly(what);
	PreventCommandIfParallelMode(what);
	PreventCommandDuringRecovery(what);
}

/*
 * es_set_stream_metadata(stream text, metadata jsonb) returns jsonb
 */
PG_FUNCTION_INFO_V1(es_set_stream_metadata);
Datum
es_set_stream_metadata(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_stream(fcinfo, 0);
	Jsonb	   *metadata;
	const EsCatalog *cat = es_ready();
	Relation	streams;
	Relation	name_index;
	EsStream	st;
	Jsonb	   *stored;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("stream metadata must not be null"),
				 errhint("Pass '{}' to remove every rule.")));
	metadata = PG_GETARG_JSONB_P(1);
	es_validate_stream_metadata(metadata);
	es_require_writer(cat, "es_set_stream_metadata()");

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = es_index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		Jsonb	   *old;
		bool		deleted;

		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		/* a soft delete is remembered: deleted_at stays */
		old = es_stream_metadata_of(streams, &st);
		stored = metadata;
		deleted = JB_ROOT_IS_OBJECT(old) && es_jsonb_has(old, "deleted_at");
		if (deleted)
		{
			JsonbValue *truncate_before = es_jsonb_get(old, "truncate_before");

			stored = es_jsonb_with(metadata, "deleted_at",
									  JsonbValueToJsonb(es_jsonb_get(old, "deleted_at")));

			/*
			 * The deleted events stay hidden unless truncate_before is given
			 * explicitly (lowering it undoes the delete).
			 */
			if (!es_jsonb_has(metadata, "truncate_before") && truncate_before != NULL)
				stored = es_jsonb_with(stored, "truncate_before",
										  JsonbValueToJsonb(truncate_before));
		}
		if (es_stream_rewrite(streams, stream, &st, stored, false))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	es_metadata_changed(cat);
	PG_RETURN_JSONB_P(stored);
}

/*
 * es_delete_stream(stream text, expected_version bigint) returns bigint
 *
 * Soft delete, as EventStoreDB does it: truncate_before moves past the last
 * event, so every read leaves the stream's events out; appending again
 * continues the numbering, and the new events are read.  The snapshot goes.
 */
PG_FUNCTION_INFO_V1(es_delete_stream);
Datum
es_delete_stream(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_stream(fcinfo, 0);
	bool		expected_any = PG_ARGISNULL(1);
	int64		expected = expected_any ? 0 : PG_GETARG_INT64(1);
	const EsCatalog *cat = es_ready();
	Relation	streams;
	Relation	name_index;
	EsStream	st;

	es_validate_expected_version(expected, NULL);
	es_require_writer(cat, "es_delete_stream()");

	streams = es_table_open(cat->streams, RowExclusiveLock);
	name_index = es_index_open(cat->streams_name, AccessShareLock);
	for (;;)
	{
		Jsonb	   *metadata;

		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, &st);
		if (!expected_any && expected != st.version)
			es_raise_wrong_version(stream, expected, st.version);
		metadata = es_stream_metadata_of(streams, &st);
		metadata = es_jsonb_with(metadata, "truncate_before",
									es_jsonb_of_int8(st.version + 1));
		metadata = es_jsonb_with(metadata, "deleted_at",
									es_jsonb_of_time(GetCurrentTransactionStartTimestamp()));
		if (es_stream_rewrite(streams, stream, &st, metadata, false))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
	es_drop_snapshot(cat, stream);
	es_metadata_changed(cat);
	PG_RETURN_INT64(st.version);
}

/*
 * es_erase_stream step 1: claim the stream and turn its row into a
 * tombstone (erased_at; the user's metadata goes too).  Writers wait for
 * us, then find it erased.
 */
static void
es_erase_claim(const EsCatalog *cat, text *stream, EsStream *st)
{
	Relation	streams = es_table_open(cat->streams, RowExclusiveLock);
	Relation	name_index = es_index_open(cat->streams_name, AccessShareLock);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		es_claim_existing(cat, streams, name_index, stream, st);
		if (es_stream_rewrite(streams, stream, st, es_empty_object(), true))
			break;
	}
	index_close(name_index, AccessShareLock);
	table_close(streams, RowExclusiveLock);
}

/* es_erase_stream step 3: the audit row */
static void
es_erase_audit(const EsCatalog *cat, text *stream, text *reason,
			   int64 erased, int64 last_version, int64 last_position)
{
	Relation	audit = es_table_open(cat->erasures, RowExclusiveLock);
	TupleTableSlot *slot = table_slot_create(audit, NULL);
	EsInserter	ins;
	Datum	   *values = slot->tts_values;
	bool	   *nulls = slot->tts_isnull;
	NameData	by;
	NameData	session;

	namestrcpy(&by, GetUserNameFromId(GetUserId(), false));
	namestrcpy(&session, GetUserNameFromId(GetSessionUserId(), false));
	ExecClearTuple(slot);
	memset(nulls, false, sizeof(bool) * Natts_es_erasures);
	values[Anum_es_erasures_stream - 1] = PointerGetDatum(stream);
	values[Anum_es_erasures_erased_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[Anum_es_erasures_erased_by - 1] = NameGetDatum(&by);
	values[Anum_es_erasures_session_user - 1] = NameGetDatum(&session);
	values[Anum_es_erasures_events_erased - 1] = Int64GetDatum(erased);
	values[Anum_es_erasures_last_version - 1] = Int64GetDatum(last_version);
	if (reason != NULL)
		values[Anum_es_erasures_reason - 1] = PointerGetDatum(reason);
	else
		nulls[Anum_es_erasures_reason - 1] = true;
	values[Anum_es_erasures_last_position - 1] = Int64GetDatum(last_position);
	ExecStoreVirtualTuple(slot);
	es_inserter_open(&ins, audit);
	table_tuple_insert(audit, slot, GetCurrentCommandId(true), 0, NULL);
	es_inserter_index(&ins, slot, false);
	es_inserter_close(&ins);
	ExecDropSingleTupleTableSlot(slot);
	table_close(audit, RowExclusiveLock);
}

/*
 * es_erase_stream(stream text, reason text) returns bigint
 *
 * Hard delete, for erasure requests: the stream's events and snapshot are
 * removed for real, the streams row stays as a tombstone (erased_at), so the
 * name can never be used again, and an audit row records who, when and how
 * many.  EXECUTE is granted to nobody by default.
 */
PG_FUNCTION_INFO_V1(es_erase_stream);
Datum
es_erase_stream(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_stream(fcinfo, 0);
	text	   *reason = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	const EsCatalog *cat = es_ready();
	EsStream	st;
	int64		erased;
	int64		last_position = 0;

	PreventCommandIfReadOnly("es_erase_stream()");
	PreventCommandIfParallelMode("es_erase_stream()");
	PreventCommandDuringRecovery("es_erase_stream()");

	/*
	 * Hold snapshot saves off until we commit, before claiming the stream
	 * (the order of an append that follows a save, so no deadlock): a save
	 * in flight finishes first and its row is deleted below; a later one
	 * waits and then finds the stream erased.  es_save_snapshot takes ROW
	 * EXCLUSIVE first thing.  Erasures are rare; saves of other streams
	 * wait for this transaction too.
	 */
	LockRelationOid(cat->snapshots, ShareRowExclusiveLock);

	es_erase_claim(cat, stream, &st);

	/*
	 * step 2: every event of the stream, committed by anybody: we hold the
	 * stream, so nobody adds one now.  Deleted with the table AM: no
	 * trigger fires.
	 */
	erased = es_delete_rows_of(cat->events, cat->events_stream_version, stream,
							   Anum_es_events_position, &last_position);
	es_drop_snapshot(cat, stream);

	es_erase_audit(cat, stream, reason, erased, st.version, last_position);
	es_stats_pending(ES_STAT_ERASURES, 1);
	es_metadata_changed(cat);
	PG_RETURN_INT64(erased);
}

/* a type's registered schema versions: lowest, highest and how many */
typedef struct EsChain
{
	uint64		hash;
	text	   *type;
	int32		lo;
	int32		hi;
	int64		count;
	struct EsChain *next;		/* another type with the same hash */
} EsChain;

/* the chain of type in chains, made (empty) if absent and make */
static EsChain *
es_chain_of(HTAB *chains, text *type, bool make)
{
	uint64		hash = es_name_hash(type);
	bool		found;
	EsChain    *entry;
	EsChain    *chain;

	entry = hash_search(chains, &hash, make ? HASH_ENTER : HASH_FIND, &found);
	if (entry == NULL)
		return NULL;
	if (!found)
	{
		entry->type = NULL;
		entry->count = 0;
		entry->next = NULL;
	}
	for (chain = entry; chain != NULL; chain = chain->next)
		if (chain->type != NULL && es_same_name(chain->type, type))
			return chain;
	if (!make)
		return NULL;
	chain = entry->type == NULL ? entry : palloc0(sizeof(EsChain));
	if (chain != entry)
	{
		chain->next = entry->next;
		entry->next = chain;
	}
	chain->type = DatumGetTextPCopy(PointerGetDatum(type));
	chain->count = 0;
	return chain;
}

/* add the types of a transition table to chains */
static void
es_chains_of_rows(HTAB *chains, Tuplestorestate *rows, TupleDesc desc)
{
	TupleTableSlot *slot;

	if (rows == NULL)
		return;
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		type = slot_getattr(slot, Anum_es_upcasters_type, &isnull);

		if (!isnull)
			(void) es_chain_of(chains, DatumGetTextPP(type), true);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * The chains of upcasters of the types in chains have no hole, however the
 * rows were written (es_register_upcaster and es_unregister_upcaster keep
 * them so; a plain INSERT, UPDATE or DELETE of a role that may write the
 * table must too).  The statement holds SHARE ROW EXCLUSIVE on the table
 * (es_upcasters_lock), so no other transaction is changing it, and
 * SnapshotSelf sees what is committed and ours.  A type the statement did
 * not touch is not looked at: a hole from before 0.2.0 refuses only
 * changes of its own type that keep it.
 */
static void
es_check_upcaster_chains(const EsCatalog *cat, HTAB *chains)
{
	Relation	rel = es_table_open(cat->upcasters, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, SnapshotSelf, 0, NULL);
	HASH_SEQ_STATUS seq;
	EsChain    *entry;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		text	   *type = DatumGetTextPP(slot_getattr(slot, Anum_es_upcasters_type, &isnull));
		int32		from = DatumGetInt32(slot_getattr(slot, Anum_es_upcasters_from_version, &isnull));
		EsChain    *chain = es_chain_of(chains, type, false);

		if (chain == NULL)
			continue;
		chain->lo = chain->count == 0 ? from : Min(chain->lo, from);
		chain->hi = chain->count == 0 ? from : Max(chain->hi, from);
		chain->count++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);

	hash_seq_init(&seq, chains);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		EsChain    *chain;

		for (chain = entry; chain != NULL; chain = chain->next)
			if (chain->type != NULL && chain->count > 0 &&
				(int64) chain->hi - chain->lo + 1 != chain->count)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the upcasters of type \"%s\" would have a hole in their chain",
								text_to_cstring(chain->type)),
						 errdetail("Schema versions %d to %d have %lld upcasters, not %lld.",
								   chain->lo, chain->hi, (long long) chain->count,
								   (long long) chain->hi - chain->lo + 1),
						 errhint("Register and unregister upcasters at either end of a type's chain.")));
	}
}

/*
 * Triggers of the registry tables, telling every backend to drop its
 * superset of streams with rules or types with upcasters when the change
 * commits (es_emit.c):
 *
 *	- AFTER INSERT, UPDATE, DELETE FOR EACH STATEMENT on upcasters, with
 *	  transition tables: the chains of the types written have no hole;
 *	- AFTER TRUNCATE on upcasters;
 *	- BEFORE INSERT FOR EACH ROW on streams (a restore, or a row arriving by
 *	  logical replication), when the row has metadata;
 *	- ENABLE REPLICA row triggers on streams (UPDATE of metadata) and
 *	  upcasters: a logical replication apply worker fires row triggers
 *	  only.
 */
PG_FUNCTION_INFO_V1(es_registry_changed);
Datum
es_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = es_trigger_call(fcinfo, "es_registry_changed");
	const EsCatalog *cat;
	Oid			relid;

	cat = es_ready();
	relid = RelationGetRelid(trigdata->tg_relation);
	if (relid != cat->upcasters && relid != cat->streams)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger function es_registry_changed only works on tables \"%s.upcasters\" and \"%s.streams\"",
						ES_SCHEMA_NAME, ES_SCHEMA_NAME)));
	if (relid == cat->upcasters && TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) &&
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		HTAB	   *chains = es_name_hash_table("event_store upcaster chains",
												sizeof(EsChain), CurrentMemoryContext);
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);

		es_chains_of_rows(chains, trigdata->tg_oldtable, desc);
		es_chains_of_rows(chains, trigdata->tg_newtable, desc);
		es_check_upcaster_chains(cat, chains);
		hash_destroy(chains);
	}
	es_registry_touch(cat, relid);
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) && TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);
	return PointerGetDatum(NULL);
}

/*
 * BEFORE INSERT, UPDATE, DELETE FOR EACH STATEMENT on upcasters, and
 * _es_lock_upcasters() for es_register_upcaster and es_unregister_upcaster
 * (first thing, so two of them queue rather than deadlock): changes of
 * upcasters, which must keep each chain without a hole, happen one
 * transaction at a time.  Readers are not held up.
 */
static void
es_lock_upcasters(const EsCatalog *cat)
{
	/* opened, not only locked: a DROP EXTENSION waited for says so */
	table_close(es_table_open(cat->upcasters, ShareRowExclusiveLock), NoLock);
}

PG_FUNCTION_INFO_V1(es_upcasters_lock);
Datum
es_upcasters_lock(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = es_trigger_call(fcinfo, "es_upcasters_lock");
	const EsCatalog *cat = es_ready();

	if (RelationGetRelid(trigdata->tg_relation) != cat->upcasters)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger function es_upcasters_lock only works on table \"%s.upcasters\"",
						ES_SCHEMA_NAME)));
	es_lock_upcasters(cat);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(es_lock_upcasters_sql);
Datum
es_lock_upcasters_sql(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat = es_ready();

	/* a role that may register or unregister (either privilege will do) */
	es_require_privilege(cat->upcasters, ACL_INSERT | ACL_DELETE);
	if (es_in_upcaster())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change upcasters in an upcaster")));
	es_lock_upcasters(cat);
	PG_RETURN_VOID();
}

/*
 * Row trigger BEFORE INSERT OR UPDATE on event_store.upcasters: a row is
 * checked as es_register_upcaster checks its arguments, whoever writes it,
 * and stored with the function's qualified signature.
 *
 * The signature is resolved with the writer's search_path (what it meant);
 * the function must be an upcaster (42P13) whose owner the writer is a
 * member of (42501).  A function that does not exist is refused (42883),
 * except from the owner of the table: a restore may load the rows before a
 * schema that was left out of the dump, and reads of the type then fail
 * until the function is back.
 */
PG_FUNCTION_INFO_V1(es_upcasters_check);
Datum
es_upcasters_check(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const EsCatalog *cat;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tuple;
	Datum		values[Natts_es_upcasters];
	bool		nulls[Natts_es_upcasters];
	bool		replace[Natts_es_upcasters];
	char	   *signature;
	Oid			fn;
	Oid			owner;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_upcasters_check must be fired before INSERT or UPDATE for each row")));
	cat = es_ready();
	rel = trigdata->tg_relation;
	if (RelationGetRelid(rel) != cat->upcasters)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("es_upcasters_check only works on table \"%s.upcasters\"",
						ES_SCHEMA_NAME)));
	desc = RelationGetDescr(rel);
	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	heap_deform_tuple(tuple, desc, values, nulls);

	if (nulls[Anum_es_upcasters_type - 1] || nulls[Anum_es_upcasters_upcaster - 1])
		return PointerGetDatum(tuple);	/* NOT NULL says so */
	es_validate_type(DatumGetTextPP(values[Anum_es_upcasters_type - 1]));

	signature = TextDatumGetCString(values[Anum_es_upcasters_upcaster - 1]);
	fn = es_signature_lookup(signature);
	if (OidIsValid(fn))
		LockDatabaseObject(ProcedureRelationId, fn, 0, AccessShareLock);
	if (!OidIsValid(fn) || es_upcaster_shape(cat, fn, &owner) < 0)
	{
		if (has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
			return PointerGetDatum(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s does not exist", signature)));
	}
	es_check_upcaster(cat, fn);

	/* a read later in this statement sees it (es_registry_touch) */
	es_registry_touch(cat, cat->upcasters);
	memset(replace, false, sizeof(replace));
	values[Anum_es_upcasters_upcaster - 1] =
		CStringGetTextDatum(format_procedure_qualified(fn));
	replace[Anum_es_upcasters_upcaster - 1] = true;
	return PointerGetDatum(heap_modify_tuple(tuple, desc, values, nulls, replace));
}

/* ---------------------------------------------------------------------
 * The rules and SQLSTATEs of the SQL functions (the install script's
 * _es_* helpers): written once, here and in es_validate.c.
 * ---------------------------------------------------------------------
 */

/*
 * _es_check_stream_name(stream text), _es_check_type(type text),
 * _es_check_consumer(consumer text), _es_check_position(value bigint)
 */
PG_FUNCTION_INFO_V1(es_check_stream_name_sql);
Datum
es_check_stream_name_sql(PG_FUNCTION_ARGS)
{
	(void) es_arg_stream(fcinfo, 0);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(es_check_type_sql);
Datum
es_check_type_sql(PG_FUNCTION_ARGS)
{
	es_validate_type(es_arg_text(fcinfo, 0, "event type"));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(es_check_consumer_sql);
Datum
es_check_consumer_sql(PG_FUNCTION_ARGS)
{
	es_validate_consumer(es_arg_text(fcinfo, 0, "consumer"));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(es_check_position_sql);
Datum
es_check_position_sql(PG_FUNCTION_ARGS)
{
	es_validate_position(PG_ARGISNULL(0), PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0),
						 "position", NULL);
	PG_RETURN_VOID();
}

/*
 * _es_check_schema_version(value integer, what text): what is
 * 'schema_version' (of an event or snapshot: 1 to 2^31 - 1) or
 * 'from_schema_version' (of an upcaster, whose result is one higher).
 */
PG_FUNCTION_INFO_V1(es_check_schema_version_sql);
Datum
es_check_schema_version_sql(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(es_arg_text(fcinfo, 1, "what"));
	int32		max;

	if (strcmp(what, "schema_version") == 0)
		max = PG_INT32_MAX;
	else if (strcmp(what, "from_schema_version") == 0)
		max = PG_INT32_MAX - 1;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of schema version \"%s\"", what)));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	es_validate_schema_version(PG_GETARG_INT32(0), what, max);
	PG_RETURN_VOID();
}

/*
 * _es_check_checkpoint(consumer text, stored bigint, "position" bigint,
 *						expected_position bigint, raced boolean)
 *
 * The rule of es_checkpoint_save: a checkpoint never moves backwards
 * (V0002); with expected_position, it is saved only if the stored one
 * (stored; NULL: none, which is 0) is still there (V0003).  raced: the
 * checkpoint was created concurrently, ahead of us or expected absent
 * (V0003).
 */
PG_FUNCTION_INFO_V1(es_check_checkpoint_sql);
Datum
es_check_checkpoint_sql(PG_FUNCTION_ARGS)
{
	char	   *consumer = text_to_cstring(es_arg_text(fcinfo, 0, "consumer"));
	int64		stored = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	bool		raced = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	int64		position;

	if (raced)
		ereport(ERROR,
				(errcode(ERRCODE_ES_CHECKPOINT_MOVED),
				 errmsg("checkpoint of consumer \"%s\" has moved", consumer),
				 errhint("Another instance of this consumer saved it; roll back and read again from the checkpoint.")));
	es_validate_position(PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2),
						 "position", NULL);
	position = PG_GETARG_INT64(2);
	if (!PG_ARGISNULL(3) && stored != PG_GETARG_INT64(3))
		ereport(ERROR,
				(errcode(ERRCODE_ES_CHECKPOINT_MOVED),
				 errmsg("checkpoint of consumer \"%s\" has moved", consumer),
				 errdetail("Expected position %lld, found %lld.",
						   (long long) PG_GETARG_INT64(3), (long long) stored),
				 errhint("Another instance of this consumer saved it; roll back and read again from the checkpoint.")));
	if (position < stored)
		ereport(ERROR,
				(errcode(ERRCODE_ES_CHECKPOINT_BACKWARDS),
				 errmsg("checkpoint of consumer \"%s\" cannot move backwards", consumer),
				 errdetail("It is at position %lld; %lld is below.",
						   (long long) stored, (long long) position),
				 errhint("Use es_checkpoint_reset to replay from an earlier position.")));
	PG_RETURN_VOID();
}

/*
 * _es_check_not_erased(stream text, erased_at timestamptz): a stream whose
 * row says it was erased is refused (V0004).
 */
PG_FUNCTION_INFO_V1(es_check_not_erased_sql);
Datum
es_check_not_erased_sql(PG_FUNCTION_ARGS)
{
	text	   *stream = es_arg_text(fcinfo, 0, "stream name");

	if (!PG_ARGISNULL(1))
		es_refuse_erased(stream);
	PG_RETURN_VOID();
}

/*
 * _es_check_upcaster(upcaster regprocedure): es_check_upcaster for
 * es_register_upcaster.
 */
PG_FUNCTION_INFO_V1(es_check_upcaster_sql);
Datum
es_check_upcaster_sql(PG_FUNCTION_ARGS)
{
	Oid			fn;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("upcaster must not be null")));
	fn = PG_GETARG_OID(0);
	LockDatabaseObject(ProcedureRelationId, fn, 0, AccessShareLock);
	es_check_upcaster(es_ready(), fn);
	PG_RETURN_VOID();
}

/*
 * _es_snapshot_floor(truncate_before bigint, deleted boolean) returns bigint
 */
PG_FUNCTION_INFO_V1(es_snapshot_floor_sql);
Datum
es_snapshot_floor_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(es_snapshot_floor(PG_GETARG_INT64(0), PG_GETARG_BOOL(1)));
}
