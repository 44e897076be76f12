/*-------------------------------------------------------------------------
 *
 * es_catalog.h
 *	  Layer 1: the extension's objects, by OID.  The C functions reach the
 *	  tables by OID, never by a name resolved through search_path; the OIDs
 *	  are looked up once per backend, forgotten when a relcache invalidation
 *	  touches one of the tables, and refused when the installed version of
 *	  the extension is not the library's.  Also the privilege check and the
 *	  table and index opens every function goes through.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_CATALOG_H
#define ES_CATALOG_H

#include "nodes/parsenodes.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"

typedef struct EsCatalog
{
	Oid			namespace;
	Oid			events;
	Oid			events_pkey;		/* (position) */
	Oid			events_stream_version;	/* (stream, version) */
	Oid			events_event_id;	/* (event_id) */
	Oid			events_type_position;	/* (type, position) */
	Oid			events_category_position;	/* (es_category(stream), position) */
	Oid			streams;
	Oid			streams_pkey;		/* (id) */
	Oid			streams_name;		/* (name) */
	Oid			streams_id_seq;
	Oid			streams_with_metadata;	/* partial (name): streams with rules */
	Oid			snapshots;
	Oid			snapshots_pkey;		/* (stream) */
	Oid			upcasters;
	Oid			upcasters_pkey;		/* (type, from_schema_version) */
	Oid			erasures;
	Oid			erasures_pkey;		/* (stream) */
	Oid			event_type;			/* composite es_event */
	Oid			upcast_type;		/* composite es_upcast */
} EsCatalog;

extern const EsCatalog *es_catalog(void);
extern const EsCatalog *es_catalog_if_installed(void);
extern bool es_catalog_current(void);
extern void es_require_privilege(Oid relid, AclMode mode);
extern Relation es_table_open(Oid relid, LOCKMODE lockmode);
extern Relation es_index_open(Oid indexid, LOCKMODE lockmode);

#endif							/* ES_CATALOG_H */
