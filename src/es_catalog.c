/*-------------------------------------------------------------------------
 *
 * es_catalog.c
 *	  Layer 1: OIDs of the extension's tables, indexes, sequence and types
 *	  (es_catalog.h).
 *
 * The C functions reach the tables by OID, never by a name resolved through
 * search_path, so nothing a user plants in another schema can stand in for
 * them.  The schema is the one pg_extension records for event_store (not a
 * schema that merely has the name), and the tables must be members of the
 * extension.  The OIDs are looked up once per backend and forgotten when a
 * relcache invalidation touches one of the tables (DROP EXTENSION, ALTER
 * TABLE).  The first lookup also checks that the tables still have the
 * columns this code was written for.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "event_store.h"
#include "es_catalog.h"

static EsCatalog es_cat;
static bool es_cat_valid = false;
static bool es_cat_callback_registered = false;

static void
es_catalog_invalidate(Datum arg, Oid relid)
{
	if (!es_cat_valid)
		return;
	if (relid == InvalidOid || relid == es_cat.events || relid == es_cat.streams ||
		relid == es_cat.snapshots || relid == es_cat.upcasters ||
		relid == es_cat.erasures)
		es_cat_valid = false;
}

static Oid
es_relid(const char *name, Oid nsp)
{
	return get_relname_relid(name, nsp);
}

/*
 * The row of the extension event_store in pg_extension: its schema (in
 * *schema, InvalidOid when it is not installed) and whether its version is
 * the library's (the objects of another version, a library installed and
 * the server restarted but the database not yet updated, are refused
 * rather than misread).  (get_extension_schema() is not exported by every
 * supported version.)
 */
static void
es_extension_row(Oid extoid, Oid *schema, bool *ours)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;

	*schema = InvalidOid;
	*ours = false;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		version = heap_getattr(tuple, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		*schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		*ours = !isnull && strcmp(TextDatumGetCString(version), ES_VERSION) == 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * Is the extension installed here, at the library's version?  For the
 * notifier, which leaves quietly when it is not (every function refuses to
 * run then anyway).
 */
bool
es_catalog_current(void)
{
	Oid			extoid = get_extension_oid("event_store", true);
	Oid			schema;
	bool		ours;

	if (!OidIsValid(extoid))
		return false;
	es_extension_row(extoid, &schema, &ours);
	return ours;
}

/*
 * The extension's table, locked.  A call that waited for the lock behind an
 * uncommitted DROP EXTENSION finds the table gone once the DROP commits:
 * that is an error of its own, not a failure to open a relation.
 */
static void
es_report_dropped(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"event_store\" was dropped while this call waited for it"),
			 errhint("Run the call again.")));
}

Relation
es_table_open(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = try_table_open(relid, lockmode);

	if (rel == NULL)
		es_report_dropped();
	return rel;
}

/*
 * The extension's index, locked, as es_table_open.  Its table is locked
 * first, so a DROP EXTENSION cannot commit between the two opens; but the
 * OIDs come from a cache that a DROP committed meanwhile may have made
 * stale, and index_open of a dropped OID fails with an internal error
 * ("could not open relation").  So: lock the OID, then check that it still
 * names a relation, as try_table_open does (PostgreSQL 15 has no
 * try_index_open).
 */
Relation
es_index_open(Oid indexid, LOCKMODE lockmode)
{
	LockRelationOid(indexid, lockmode);
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(indexid)))
	{
		UnlockRelationOid(indexid, lockmode);
		es_report_dropped();
	}
	return index_open(indexid, NoLock);
}

/*
 * Refuse a table or composite type whose columns are not the ones of the
 * install script.  False if the relation is gone (the extension was dropped
 * while we waited for its lock).
 */
static bool
es_check_columns(Oid relid, const char *relname, const Oid *types, int natts)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	TupleDesc	desc;
	bool		ok;
	int			i;

	if (rel == NULL)
		return false;
	desc = RelationGetDescr(rel);
	ok = (desc->natts == natts);
	for (i = 0; ok && i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i])
			ok = false;
	}
	relation_close(rel, AccessShareLock);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("\"%s.%s\" does not have the columns event_store expects",
						ES_SCHEMA_NAME, relname),
				 errhint("Do not alter the extension's objects; reinstall the extension from a dump.")));
	return true;
}

static const Oid es_events_types[Natts_es_events] = {
	INT8OID, TEXTOID, INT8OID, TEXTOID, JSONBOID, JSONBOID, UUIDOID, INT4OID,
	TIMESTAMPTZOID
};

static const Oid es_streams_types[Natts_es_streams] = {
	INT8OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	JSONBOID, TIMESTAMPTZOID
};

static const Oid es_snapshots_types[Natts_es_snapshots] = {
	TEXTOID, INT8OID, JSONBOID, INT4OID, TIMESTAMPTZOID
};

static const Oid es_upcasters_types[Natts_es_upcasters] = {
	TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID
};

static const Oid es_erasures_types[Natts_es_erasures] = {
	TEXTOID, TIMESTAMPTZOID, NAMEOID, NAMEOID, INT8OID, INT8OID, TEXTOID, INT8OID
};

static const Oid es_upcast_types[2] = {JSONBOID, JSONBOID};


/*
 * The catalog, or NULL when the extension is not installed in this
 * database.
 */
/* what es_catalog_load found */
typedef enum EsLoad
{
	ES_LOAD_DONE,				/* cat filled (or the extension not installed) */
	ES_LOAD_DROPPED,			/* dropped while we waited for a lock */
	ES_LOAD_AGAIN				/* the caches may be behind: look again */
} EsLoad;

static EsLoad es_catalog_load(EsCatalog *cat, bool again);

/*
 * Load a composite type's descriptor into the type cache.  Its relation is
 * locked first: the type cache opens it with relation_open, which fails with
 * an internal error if a DROP EXTENSION committed since the OIDs were looked
 * up.  False if it is gone.
 */
static bool
es_warm_type(Oid typid)
{
	Oid			typrelid = OidIsValid(typid) ? get_typ_typrelid(typid) : InvalidOid;
	Relation	rel;
	TupleDesc	desc;

	if (!OidIsValid(typrelid))
		return !OidIsValid(typid);
	rel = try_relation_open(typrelid, AccessShareLock);
	if (rel == NULL)
		return false;
	desc = lookup_rowtype_tupdesc(typid, -1);
	ReleaseTupleDesc(desc);
	relation_close(rel, AccessShareLock);
	return true;
}

const EsCatalog *
es_catalog_if_installed(void)
{
	EsCatalog	cat;
	EsLoad		result;

	if (es_cat_valid)
		return &es_cat;

	if (!es_cat_callback_registered)
	{
		CacheRegisterRelcacheCallback(es_catalog_invalidate, (Datum) 0);
		es_cat_callback_registered = true;
	}

	/*
	 * Checking the columns locks the tables: if that waited for a DROP
	 * EXTENSION, this call fails as any other that waited for it (it must
	 * not go on with the objects of an extension created meanwhile: it was
	 * called as a function that is gone).
	 */
	memset(&cat, 0, sizeof(cat));
	result = es_catalog_load(&cat, false);
	if (result == ES_LOAD_AGAIN)
	{
		memset(&cat, 0, sizeof(cat));
		result = es_catalog_load(&cat, true);
	}
	if (result == ES_LOAD_DONE)
	{
		if (!OidIsValid(cat.namespace))
			return NULL;
		es_cat = cat;
		es_cat_valid = true;
		return &es_cat;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"event_store\" was dropped while this call waited for it"),
			 errhint("Run the call again.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * The lookups below take no lock until they check the columns, so a DROP
 * EXTENSION (and a CREATE after it) can commit between two of them: what
 * they found may then be part of a dropped installation and part of
 * another.  This tells: the extension is no longer the one whose OID the
 * first lookup found.  A load that finds it so reports the drop, never an
 * internal error or a damaged installation.
 */
static bool
es_extension_changed(Oid extoid)
{
	AcceptInvalidationMessages();
	return get_extension_oid("event_store", true) != extoid;
}

/*
 * A lookup by name found nothing, or something that is not the extension's.
 * The system caches may be behind a CREATE EXTENSION that just committed: a
 * commit is visible to catalog scans before its invalidations are sent, and
 * a negative entry cached before it still answers "no such object" until
 * then.  Before a first such answer is believed, the caches are emptied and
 * the load made again (a rare path: only a damaged or changing
 * installation takes it).
 */
static EsLoad
es_load_again(bool again)
{
	if (again)
		return ES_LOAD_DONE;
	InvalidateSystemCaches();
	return ES_LOAD_AGAIN;
}

/*
 * Look up the extension's objects into cat; cat->namespace stays invalid
 * when the extension is not installed.  again: this is the second look.
 */
static EsLoad
es_catalog_load(EsCatalog *cat, bool again)
{
	Oid			extoid;
	bool		ours;
	bool		complete;

	extoid = get_extension_oid("event_store", true);
	if (!OidIsValid(extoid))
		return ES_LOAD_DONE;
	es_extension_row(extoid, &cat->namespace, &ours);
	if (!OidIsValid(cat->namespace))
		return ES_LOAD_DONE;
	cat->events = es_relid("events", cat->namespace);
	cat->streams = es_relid("streams", cat->namespace);
	if (!OidIsValid(cat->events) || !OidIsValid(cat->streams))
	{
		cat->namespace = InvalidOid;	/* CREATE EXTENSION is running its script */
		return es_load_again(again);
	}

	if (getExtensionOfObject(RelationRelationId, cat->events) != extoid ||
		getExtensionOfObject(RelationRelationId, cat->streams) != extoid)
	{
		if (es_extension_changed(extoid))
			return ES_LOAD_DROPPED;
		if (es_load_again(again) == ES_LOAD_AGAIN)
			return ES_LOAD_AGAIN;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the tables of extension \"event_store\" are not members of it"),
				 errhint("Reinstall the extension.")));
	}
	cat->events_pkey = es_relid("events_pkey", cat->namespace);
	cat->events_stream_version = es_relid("events_stream_version_key", cat->namespace);
	cat->events_event_id = es_relid("events_event_id_key", cat->namespace);
	cat->events_type_position = es_relid("events_type_position", cat->namespace);
	cat->events_category_position = es_relid("events_category_position", cat->namespace);
	cat->streams_pkey = es_relid("streams_pkey", cat->namespace);
	cat->streams_name = es_relid("streams_name_key", cat->namespace);
	cat->streams_id_seq = es_relid("streams_id_seq", cat->namespace);
	cat->streams_with_metadata = es_relid("streams_with_metadata", cat->namespace);
	cat->snapshots = es_relid("snapshots", cat->namespace);
	cat->snapshots_pkey = es_relid("snapshots_pkey", cat->namespace);
	cat->upcasters = es_relid("upcasters", cat->namespace);
	cat->upcasters_pkey = es_relid("upcasters_pkey", cat->namespace);
	cat->erasures = es_relid("erasures", cat->namespace);
	cat->erasures_pkey = es_relid("erasures_pkey", cat->namespace);
	cat->event_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									  CStringGetDatum("es_event"),
									  ObjectIdGetDatum(cat->namespace));
	cat->upcast_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									   CStringGetDatum("es_upcast"),
									   ObjectIdGetDatum(cat->namespace));
	if (!ours)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the objects of extension \"event_store\" are not those of its library"),
				 errdetail("The library is version %s.", ES_VERSION),
				 errhint("Run ALTER EXTENSION event_store UPDATE.")));
	if (!OidIsValid(cat->events_pkey) || !OidIsValid(cat->events_stream_version) ||
		!OidIsValid(cat->events_event_id) || !OidIsValid(cat->streams_pkey) ||
		!OidIsValid(cat->events_type_position) || !OidIsValid(cat->events_category_position) ||
		!OidIsValid(cat->streams_name) || !OidIsValid(cat->streams_id_seq) ||
		!OidIsValid(cat->streams_with_metadata) || !OidIsValid(cat->snapshots) ||
		!OidIsValid(cat->snapshots_pkey) || !OidIsValid(cat->upcasters) ||
		!OidIsValid(cat->upcasters_pkey) ||
		!OidIsValid(cat->erasures) || !OidIsValid(cat->erasures_pkey) ||
		!OidIsValid(cat->event_type) || !OidIsValid(cat->upcast_type))
	{
		if (es_extension_changed(extoid))
			return ES_LOAD_DROPPED;
		if (es_load_again(again) == ES_LOAD_AGAIN)
			return ES_LOAD_AGAIN;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the objects of extension \"event_store\" are incomplete"),
				 errhint("Reinstall the extension.")));
	}

	complete = es_check_columns(cat->events, "events", es_events_types, Natts_es_events) &&
		es_check_columns(cat->streams, "streams", es_streams_types, Natts_es_streams) &&
		es_check_columns(cat->snapshots, "snapshots", es_snapshots_types, Natts_es_snapshots) &&
		es_check_columns(cat->upcasters, "upcasters", es_upcasters_types, Natts_es_upcasters) &&
		es_check_columns(cat->erasures, "erasures", es_erasures_types, Natts_es_erasures) &&
		es_check_columns(get_typ_typrelid(cat->upcast_type), "es_upcast", es_upcast_types, 2);

	/*
	 * Load the descriptors of the result types into the type cache now.
	 * Parsing a call of a function that returns one of them opens the type's
	 * relation while the cache has not got it; behind an uncommitted DROP
	 * EXTENSION that open waits, and fails in PostgreSQL's parser, not here,
	 * once the DROP commits.  A session that has used the extension parses
	 * from the cache and reaches es_table_open, which says what happened.
	 */
	complete = complete &&
		es_warm_type(cat->event_type) &&
		es_warm_type(cat->upcast_type) &&
		es_warm_type(GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									 CStringGetDatum("es_append_result"),
									 ObjectIdGetDatum(cat->namespace)));
	return complete && !es_extension_changed(extoid) ? ES_LOAD_DONE : ES_LOAD_DROPPED;
}

const EsCatalog *
es_catalog(void)
{
	const EsCatalog *cat;

	cat = es_catalog_if_installed();
	if (cat == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"event_store\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION event_store.")));
	return cat;
}

/*
 * The functions reach the tables directly, so they check the caller's table
 * privileges themselves: INSERT on events to append, SELECT to read.  Row
 * level security would be bypassed by that direct access, so a table with
 * RLS enabled is refused rather than read past its policies.
 */
void
es_require_privilege(Oid relid, AclMode mode)
{
	AclResult	result = pg_class_aclcheck(relid, GetUserId(), mode);

	if (result != ACLCHECK_OK)
		aclcheck_error(result, OBJECT_TABLE, get_rel_name(relid));

	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("row-level security on table \"%s\" is not supported by event_store",
						get_rel_name(relid)),
				 errhint("Disable row-level security on the extension's tables; grant access per role instead.")));
}
