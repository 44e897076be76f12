/*-------------------------------------------------------------------------
 *
 * event_store.h
 *	  Layer 0: the shape of the extension, shared by every module: its tables'
 *	  columns, its documented limits and its SQLSTATEs.  Each module's own
 *	  header (es_*.h) says what that module owns; src/README.md maps them.
 *
 * The extension keeps its data in the tables of the "event_store" schema
 * (event_store--<version>.sql).  The attribute numbers below must match the
 * column order of the install script; es_catalog.c checks them when it first
 * opens the tables, so a changed schema is refused instead of misread.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENT_STORE_H
#define EVENT_STORE_H

#define ES_SCHEMA_NAME			"event_store"
#define ES_NOTIFY_CHANNEL		"es_events"

/* event_store.events */
#define Anum_es_events_position			1
#define Anum_es_events_stream			2
#define Anum_es_events_version			3
#define Anum_es_events_type				4
#define Anum_es_events_data				5
#define Anum_es_events_metadata			6
#define Anum_es_events_event_id			7
#define Anum_es_events_schema_version	8
#define Anum_es_events_created_at		9
#define Natts_es_events					9

/* event_store.streams */
#define Anum_es_streams_id				1
#define Anum_es_streams_name			2
#define Anum_es_streams_category		3
#define Anum_es_streams_version			4
#define Anum_es_streams_created_at		5
#define Anum_es_streams_updated_at		6
#define Anum_es_streams_metadata		7
#define Anum_es_streams_erased_at		8
#define Natts_es_streams				8

/* event_store.snapshots */
#define Anum_es_snapshots_stream			1
#define Anum_es_snapshots_version			2
#define Anum_es_snapshots_state				3
#define Anum_es_snapshots_schema_version	4
#define Anum_es_snapshots_created_at		5
#define Natts_es_snapshots					5

/* event_store.upcasters */
#define Anum_es_upcasters_type				1
#define Anum_es_upcasters_from_version		2
#define Anum_es_upcasters_upcaster			3
#define Anum_es_upcasters_created_at		4
#define Natts_es_upcasters					4

/* event_store.erasures */
#define Anum_es_erasures_stream				1
#define Anum_es_erasures_erased_at			2
#define Anum_es_erasures_erased_by			3
#define Anum_es_erasures_session_user		4
#define Anum_es_erasures_events_erased		5
#define Anum_es_erasures_last_version		6
#define Anum_es_erasures_reason				7
#define Anum_es_erasures_last_position		8
#define Natts_es_erasures					8

/*
 * Documented limits (docs/reference.md, "Limits").
 */
#define ES_MAX_STREAM_NAME_BYTES	1000
#define ES_MAX_TYPE_BYTES			500
#define ES_MAX_CONSUMER_BYTES		200
#define ES_MAX_APPEND_EVENTS		10000
/* feed reads: rows per call, types per filter, members per consumer group */
#define ES_MAX_FEED_COUNT			10000
#define ES_MAX_FEED_TYPES			100
#define ES_MAX_CONSUMER_SIZE		1024

/*
 * positions run from 1 to 2^62 - 1, 4611686018427387903 (far below where the
 * counter would wrap)
 */
#define ES_MAX_POSITION				(PG_INT64_MAX / 2)

/*
 * The extension's own SQLSTATEs, class V0 (implementation-defined classes
 * start with 5-9 or I-Z); the SQL functions raise them through C helpers.
 */
/* a wrong expected version */
#define ERRCODE_ES_WRONG_EXPECTED_VERSION	MAKE_SQLSTATE('V','0','0','0','1')
/* a checkpoint would move backwards */
#define ERRCODE_ES_CHECKPOINT_BACKWARDS		MAKE_SQLSTATE('V','0','0','0','2')
/* a checkpoint is no longer at the expected position */
#define ERRCODE_ES_CHECKPOINT_MOVED			MAKE_SQLSTATE('V','0','0','0','3')
/* the stream was erased (hard deleted): its name can never be used again */
#define ERRCODE_ES_STREAM_ERASED			MAKE_SQLSTATE('V','0','0','0','4')

/* lock tag field 4 of the stream creation lock in pg_locks ("ES") */
#define ES_LOCKTAG_STREAM			0x4553

#endif							/* EVENT_STORE_H */
