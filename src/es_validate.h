/*-------------------------------------------------------------------------
 *
 * es_validate.h
 *	  Layer 1: every rule of the extension's input, written once: stream
 *	  names, event types, consumer names, positions, versions, counts,
 *	  event metadata and size, schema versions, stream metadata and what
 *	  its rules mean.  The SQL functions call these rules too (the
 *	  _es_check_* functions of the install script), so a rule and its
 *	  SQLSTATE are the same wherever an input arrives.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_VALIDATE_H
#define ES_VALIDATE_H

#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* event_store.max_event_size (bytes) */
extern int	es_max_event_size;

/* arguments of the SQL functions that must not be NULL */
extern text *es_arg_text(FunctionCallInfo fcinfo, int argno, const char *what);
extern text *es_arg_stream(FunctionCallInfo fcinfo, int argno);

/* names */
extern void es_validate_stream_name(text *name);
extern void es_validate_category(text *category);
extern void es_validate_type(text *type);
extern void es_validate_consumer(text *consumer);

/* numbers given as arguments (isnull: the argument is NULL) */
extern void es_validate_position(bool isnull, int64 position, const char *what,
								 const char *hint);
extern void es_validate_expected_version(int64 expected, const char *hint);
extern void es_validate_from_version(int64 from_version);
extern void es_validate_schema_version(int64 schema_version, const char *what,
									   int32 max);

/*
 * max_count, one bound per kind of read: a stream read takes NULL (all) or
 * a positive count; a feed read a count of 1 to ES_MAX_FEED_COUNT.
 */
typedef enum EsReadKind
{
	ES_READ_STREAM,
	ES_READ_FEED
} EsReadKind;

extern void es_validate_max_count(EsReadKind kind, bool isnull, int64 max_count);
extern void es_validate_consumer_size(int32 size);

/* events */
extern Jsonb *es_event_metadata(Jsonb *metadata, bool json_null_is_none);
extern Jsonb *es_event_metadata_value(JsonbValue *value);
extern int32 es_schema_version_value(JsonbValue *value);
extern void es_validate_event_size(int index, text *type, Jsonb *data,
								   Jsonb *metadata);

/*
 * Stream metadata: what a user may set, and the rules it holds.
 */
typedef struct EsRules
{
	int64		truncate_before;	/* 0: none */
	int64		max_count;		/* 0: none */
	int64		max_age;		/* seconds; 0: none */
	bool		deleted;		/* soft deleted once (deleted_at) */
} EsRules;

/* max_age in seconds: at most what a timestamp difference can hold */
#define ES_MAX_AGE_SECONDS	(PG_INT64_MAX / USECS_PER_SEC)

extern void es_validate_stream_metadata(Jsonb *metadata);
extern bool es_stream_rules_of(Jsonb *metadata, EsRules *rules);
extern bool es_max_age_expired(TimestampTz now, int64 max_age,
							   TimestampTz created_at);
extern int64 es_snapshot_floor(int64 truncate_before, bool deleted);

#endif							/* ES_VALIDATE_H */
