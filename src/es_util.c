/*-------------------------------------------------------------------------
 *
 * es_util.c
 *	  Layer 0: small helpers that know nothing of the extension's tables
 *	  (es_util.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"

#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "datatype/timestamp.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "es_compat.h"
#include "es_util.h"

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
	recheck = es_insert_index_tuples(ins->rri, slot, ins->estate, only_summarizing);
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


uint64
es_name_hash(text *name)
{
	return hash_bytes_extended((const unsigned char *) VARDATA_ANY(name),
							   VARSIZE_ANY_EXHDR(name), 0);
}

/* Equal texts, byte for byte (names and types are compared in "C"). */
bool
es_same_name(text *a, text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
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


const char *
es_jsonb_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? "object" : "array";
		default:
			return "value";
	}
}

/* ---------------------------------------------------------------------
 * Stream rules, as a snapshot sees them
 * ---------------------------------------------------------------------
 */

/* The value of key in a JSON object; NULL if it has none. */
JsonbValue *
es_jsonb_get(Jsonb *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &k);
}

/* a whole number under key (0 if there is none) */
int64
es_jsonb_int8(Jsonb *obj, const char *key)
{
	JsonbValue *v = es_jsonb_get(obj, key);

	if (v == NULL || v->type != jbvNumeric)
		return 0;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 NumericGetDatum(v->val.numeric)));
}

bool
es_jsonb_has(Jsonb *obj, const char *key)
{
	return es_jsonb_get(obj, key) != NULL;
}

/* obj with key set to value (a copy) */
Jsonb *
es_jsonb_with(Jsonb *obj, const char *key, Jsonb *value)
{
	Datum		path = CStringGetTextDatum(key);
	ArrayType  *keys = construct_array(&path, 1, TEXTOID, -1, false, TYPALIGN_INT);

	return DatumGetJsonbP(DirectFunctionCall4(jsonb_set, JsonbPGetDatum(obj),
											  PointerGetDatum(keys),
											  JsonbPGetDatum(value), BoolGetDatum(true)));
}

Jsonb *
es_jsonb_of_int8(int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(value)));
	return JsonbValueToJsonb(&v);
}

/* a time as ISO 8601 in UTC, whatever the session's DateStyle and TimeZone */
Jsonb *
es_jsonb_of_time(TimestampTz value)
{
	JsonbValue	v;
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[MAXDATELEN + 1];
	char	   *s = buf;

	if (timestamp2tm(value, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_isdst = 0;			/* UTC: print its offset, +00:00 */
	EncodeDateTime(&tm, fsec, true, 0, NULL, USE_XSD_DATES, buf);

	v.type = jbvString;
	v.val.string.val = s;
	v.val.string.len = strlen(s);
	return JsonbValueToJsonb(&v);
}

/* ---------------------------------------------------------------------
 * Triggers
 * ---------------------------------------------------------------------
 */
TriggerData *
es_trigger_call(FunctionCallInfo fcinfo, const char *function)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", function)));
	return (TriggerData *) fcinfo->context;
}

/*
 * The next key and value of the top level of a JSON object iterated with
 * JsonbIteratorInit(&jsonb->root); false at the end.  The values of nested
 * containers are given whole (jbvBinary).
 */
bool
es_jsonb_next_pair(JsonbIterator **it, JsonbValue *key, JsonbValue *value)
{
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(it, key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(it, value, true);
		Assert(tok == WJB_VALUE);
		return true;
	}
	return false;
}

/*
 * The function a signature such as "app.f(jsonb)" names, with the current
 * search_path and privileges; InvalidOid if there is none.  A signature
 * names its function: to_regprocedure of PostgreSQL 16 and later also takes
 * a number for the function's OID, which 15 refuses; refused on every
 * version (rows of event_store.upcasters are read and written through here).
 */
Oid
es_signature_lookup(const char *signature)
{
	LOCAL_FCINFO(fcinfo, 1);
	FmgrInfo	flinfo;
	Datum		value;

	if (signature[0] != '\0' &&
		strspn(signature, "0123456789") == strlen(signature))
		return InvalidOid;
	fmgr_info(F_TO_REGPROCEDURE, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(signature);
	fcinfo->args[0].isnull = false;
	value = FunctionCallInvoke(fcinfo);
	return fcinfo->isnull ? InvalidOid : DatumGetObjectId(value);
}

/*
 * The same, looked up as role under ES_SAFE_SEARCH_PATH: what it finds
 * depends neither on the caller's privileges on schemas nor on its
 * search_path (signatures are stored qualified).
 */
Oid
es_signature_lookup_as(const char *signature, Oid role)
{
	Oid			save_userid;
	int			save_sec_context;
	int			nest;
	Oid			result;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", ES_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	result = es_signature_lookup(signature);
	AtEOXact_GUC(false, nest);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}
