/*-------------------------------------------------------------------------
 *
 * es_util.h
 *	  Layer 0: small helpers every module may use, which know nothing of
 *	  the extension's tables: time-ordered UUIDs, index maintenance for rows
 *	  written with the table AM, names and their hashes, JSON and numeric
 *	  helpers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_UTIL_H
#define ES_UTIL_H

#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* a time-ordered (version 7) UUID */
extern void es_generate_uuid(pg_uuid_t *uuid);

/* index maintenance for rows written with the table AM directly */
typedef struct EsInserter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
} EsInserter;

extern void es_inserter_open(EsInserter *ins, Relation rel);
extern void es_inserter_index(EsInserter *ins, TupleTableSlot *slot,
							  bool only_summarizing);
extern void es_inserter_close(EsInserter *ins);

/* names (streams, types, categories): compared byte for byte, hashed */
extern Oid	es_signature_lookup(const char *signature);
extern Oid	es_signature_lookup_as(const char *signature, Oid role);

/*
 * The search_path user code runs under (upcasters, handlers) and signatures
 * are resolved under: pg_temp last, so a caller's temporary objects never
 * stand in for anything.
 */
#define ES_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

extern uint64 es_name_hash(text *name);
extern bool es_same_name(text *a, text *b);
extern text *es_category_of(text *name);
extern HTAB *es_name_hash_table(const char *tabname, Size entrysize,
								MemoryContext cxt);

/* JSON */
extern Jsonb *es_empty_object(void);
extern const char *es_jsonb_type_name(JsonbValue *v);
extern JsonbValue *es_jsonb_get(Jsonb *obj, const char *key);
extern int64 es_jsonb_int8(Jsonb *obj, const char *key);
extern bool es_jsonb_has(Jsonb *obj, const char *key);
extern Jsonb *es_jsonb_with(Jsonb *obj, const char *key, Jsonb *value);
extern Jsonb *es_jsonb_of_int8(int64 value);
extern Jsonb *es_jsonb_of_time(TimestampTz value);

/* the trigger data of a function that must be called as a trigger */
struct TriggerData;
extern struct TriggerData *es_trigger_call(FunctionCallInfo fcinfo, const char *function);

/* the key/value pairs of a JSON object's top level, one at a time */
extern bool es_jsonb_next_pair(JsonbIterator **it, JsonbValue *key, JsonbValue *value);

/* numbers that must be whole */
extern bool es_numeric_is_whole(Numeric num);
extern bool es_numeric_in_range(Numeric num, int64 min, int64 max);

#endif							/* ES_UTIL_H */
