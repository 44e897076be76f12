/*-------------------------------------------------------------------------
 *
 * es_events.h
 *	  Layer 2: what several entry points ask of the stored events, and the
 *	  readiness of the extension: the register's counter loaded from the
 *	  highest stored (and erased) position, the newest position a snapshot
 *	  sees, the feed head, the highest stored version of a stream, the time
 *	  an event was created, the time of the first event after a position.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "es_catalog.h"
#include "es_register.h"

/* the extension's objects, once the library is preloaded (every entry point) */
extern const EsCatalog *es_ready(void);

/* the register's entry of this database, its counter loaded */
extern EsDatabase *es_positions_ready(const EsCatalog *cat);

extern int64 es_newest_position(const EsCatalog *cat, Snapshot snapshot, int64 below);
extern int64 es_readable_head(const EsCatalog *cat);
extern bool es_head_known(const EsCatalog *cat);
extern int64 es_max_stored_version(const EsCatalog *cat, text *stream);
extern bool es_event_created_at(const EsCatalog *cat, Snapshot snapshot, text *stream,
								int64 version, TimestampTz *created_at);
extern bool es_first_created_after(const EsCatalog *cat, Snapshot snapshot, int64 after,
								   int64 upto, TimestampTz *created_at);

#endif							/* ES_EVENTS_H */
