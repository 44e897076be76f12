/*-------------------------------------------------------------------------
 *
 * es_validate.c
 *	  Layer 1: the rules of the extension's input (es_validate.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "event_store.h"
#include "es_util.h"
#include "es_validate.h"

int			es_max_event_size = 1024 * 1024;

/* ---------------------------------------------------------------------
 * Arguments
 * ---------------------------------------------------------------------
 */

/* argument argno, which must not be NULL ("<what> must not be null") */
text *
es_arg_text(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return PG_GETARG_TEXT_PP(argno);
}

/* a stream name given as argument argno */
text *
es_arg_stream(FunctionCallInfo fcinfo, int argno)
{
	text	   *stream = es_arg_text(fcinfo, argno, "stream name");

	es_validate_stream_name(stream);
	return stream;
}

/* ---------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------
 */
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

/* a category: a stream name without "-" */
void
es_validate_category(text *category)
{
	es_validate_stream_name(category);
	if (memchr(VARDATA_ANY(category), '-', VARSIZE_ANY_EXHDR(category)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("category must not contain \"-\""),
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

void
es_validate_consumer(text *consumer)
{
	int			len = VARSIZE_ANY_EXHDR(consumer);

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer must not be empty")));
	if (len > ES_MAX_CONSUMER_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("consumer name is too long"),
				 errdetail("The name has %d bytes; the limit is %d bytes.",
						   len, ES_MAX_CONSUMER_BYTES)));
}

/* ---------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------
 */

/* a position (a checkpoint's, a feed reader's): given, and not negative */
void
es_validate_position(bool isnull, int64 position, const char *what, const char *hint)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what),
				 hint ? errhint("%s", hint) : 0));
	if (position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what),
				 hint ? errhint("%s", hint) : 0));
}

/* an expected version; hint: what the function takes instead (or NULL) */
void
es_validate_expected_version(int64 expected, const char *hint)
{
	if (expected < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected version must not be negative"),
				 hint ? errhint("%s", hint) : 0));
}

void
es_validate_from_version(int64 from_version)
{
	if (from_version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_version must be at least 1"),
				 errhint("The first event of a stream has version 1; pass NULL to read from the start (or, backwards, from the end).")));
}

/* a schema version (what: its name), 1 to max */
void
es_validate_schema_version(int64 schema_version, const char *what, int32 max)
{
	if (schema_version < 1 || schema_version > max)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be between 1 and %d", what, max)));
}

void
es_validate_max_count(EsReadKind kind, bool isnull, int64 max_count)
{
	if (kind == ES_READ_STREAM)
	{
		if (!isnull && max_count <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_count must be positive"),
					 errhint("Pass NULL to read without a limit.")));
		return;
	}
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_count must not be null")));
	if (max_count <= 0 || max_count > ES_MAX_FEED_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must be between 1 and %d", ES_MAX_FEED_COUNT),
				 errhint("Read the feed in pages: pass the last position read as after_position.")));
}

/* the size of a consumer group: 1 to ES_MAX_CONSUMER_SIZE */
void
es_validate_consumer_size(int32 size)
{
	if (size < 1 || size > ES_MAX_CONSUMER_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer_size must be between 1 and %d", ES_MAX_CONSUMER_SIZE)));
}

/* ---------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------
 */

/*
 * An event's metadata: a JSON object, or NULL for none; a JSON null is none
 * too if json_null_is_none (an argument), refused otherwise (a column).
 */
Jsonb *
es_event_metadata(Jsonb *metadata, bool json_null_is_none)
{
	JsonbValue	v;

	if (JB_ROOT_IS_OBJECT(metadata) && !JB_ROOT_IS_SCALAR(metadata))
		return metadata;
	if (JB_ROOT_IS_SCALAR(metadata) && JsonbExtractScalar(&metadata->root, &v))
	{
		if (v.type == jbvNull && json_null_is_none)
			return NULL;
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &metadata->root;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("event metadata must be a JSON object"),
			 errdetail("The metadata is a JSON %s.", es_jsonb_type_name(&v))));
	return NULL;				/* keep compiler quiet */
}

/* the same for a value of an event object: null is none */
Jsonb *
es_event_metadata_value(JsonbValue *value)
{
	if (value->type == jbvNull)
		return NULL;
	if (value->type != jbvBinary || !JsonContainerIsObject(value->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event metadata must be a JSON object"),
				 errdetail("The metadata is a JSON %s.", es_jsonb_type_name(value))));
	return JsonbValueToJsonb(value);
}

/* the schema_version of an event object: null is 1 */
int32
es_schema_version_value(JsonbValue *value)
{
	Numeric		num;

	if (value->type == jbvNull)
		return 1;
	if (value->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema_version must be an integer"),
				 errdetail("The schema_version is a JSON %s.", es_jsonb_type_name(value))));
	num = value->val.numeric;
	if (!es_numeric_is_whole(num))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema_version must be an integer")));
	if (!es_numeric_in_range(num, 1, PG_INT32_MAX))
		es_validate_schema_version(0, "schema_version", PG_INT32_MAX);
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(num)));
}

/* event index (0-based) of an append: type, data and metadata within the limit */
void
es_validate_event_size(int index, text *type, Jsonb *data, Jsonb *metadata)
{
	Size		size = VARSIZE_ANY(data) + VARSIZE_ANY(type);

	if (metadata != NULL)
		size += VARSIZE_ANY(metadata);
	if (size > (Size) es_max_event_size)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("event %d is too large", index + 1),
				 errdetail("Its type, data and metadata take %zu bytes; event_store.max_event_size is %d bytes.",
						   size, es_max_event_size)));
}

/* ---------------------------------------------------------------------
 * Stream metadata and its rules
 * ---------------------------------------------------------------------
 */

/* a metadata value that must be a whole number in [min, max], or null */
static void
es_validate_metadata_int(JsonbValue *v, const char *key, int64 min, int64 max)
{
	Numeric		num;

	if (v->type == jbvNull)
		return;
	if (v->type != jbvNumeric || !es_numeric_is_whole(v->val.numeric))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata \"%s\" must be a whole number", key)));
	num = v->val.numeric;
	if (!es_numeric_in_range(num, min, max))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata \"%s\" must be between " INT64_FORMAT " and " INT64_FORMAT,
						key, min, max)));
}

/*
 * A metadata object given by a user: an object; max_count (>= 1), max_age
 * (seconds, >= 1) and truncate_before (>= 0) whole numbers or null;
 * deleted_at is es_delete_stream's.  Other keys are the user's.
 */
void
es_validate_stream_metadata(Jsonb *metadata)
{
	JsonbIterator *it;
	JsonbValue	key;
	JsonbValue	val;

	if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stream metadata must be a JSON object")));
	it = JsonbIteratorInit(&metadata->root);
	while (es_jsonb_next_pair(&it, &key, &val))
	{
		char	   *k = key.val.string.val;
		int			klen = key.val.string.len;
		if (klen == 9 && memcmp(k, "max_count", 9) == 0)
			es_validate_metadata_int(&val, "max_count", 1, PG_INT64_MAX);
		else if (klen == 7 && memcmp(k, "max_age", 7) == 0)
			es_validate_metadata_int(&val, "max_age", 1, ES_MAX_AGE_SECONDS);
		else if (klen == 15 && memcmp(k, "truncate_before", 15) == 0)
			es_validate_metadata_int(&val, "truncate_before", 0, PG_INT64_MAX);
		else if (klen == 10 && memcmp(k, "deleted_at", 10) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("stream metadata \"deleted_at\" is set by es_delete_stream")));
	}
}

/* the rules of a metadata object; false if it has none */
bool
es_stream_rules_of(Jsonb *metadata, EsRules *rules)
{
	memset(rules, 0, sizeof(EsRules));
	if (JB_ROOT_COUNT(metadata) == 0 || !JB_ROOT_IS_OBJECT(metadata) ||
		JB_ROOT_IS_SCALAR(metadata))
		return false;
	rules->truncate_before = es_jsonb_int8(metadata, "truncate_before");
	rules->max_count = es_jsonb_int8(metadata, "max_count");
	rules->max_age = es_jsonb_int8(metadata, "max_age");
	rules->deleted = es_jsonb_has(metadata, "deleted_at");
	return rules->truncate_before > 0 || rules->max_count > 0 || rules->max_age > 0;
}

/* Was created_at more than max_age seconds before now? (No overflow.) */
bool
es_max_age_expired(TimestampTz now, int64 max_age, TimestampTz created_at)
{
	if (max_age > ES_MAX_AGE_SECONDS || created_at >= now)
		return false;
	/* now - created_at > 0 here; it overflows only if it is huge anyway */
	if (created_at < 0 && now > PG_INT64_MAX + created_at)
		return true;
	return now - created_at > max_age * USECS_PER_SEC;
}

/*
 * The version below which the stream's snapshots stand for events a read no
 * longer returns: truncate_before - 1 (a snapshot at that version holds the
 * state before the first visible event), or truncate_before itself after a
 * soft delete (the stream starts again there).  es_save_snapshot refuses
 * versions below it; reads ignore snapshots below it.
 */
int64
es_snapshot_floor(int64 truncate_before, bool deleted)
{
	if (truncate_before <= 0)
		return 0;
	return deleted ? truncate_before : truncate_before - 1;
}
