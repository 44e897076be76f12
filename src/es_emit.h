/*-------------------------------------------------------------------------
 *
 * es_emit.h
 *	  Layer 3: what every read returns.  The result rows of a read (a
 *	  set-returning function's tuplestore, in memory of its query), and the
 *	  emitter that puts each event into them: leaving out what the stream's
 *	  rules hide, upcasting the rest through the registered chain of its
 *	  type, all as the read's snapshot sees rules and registry; the caches
 *	  that keep that cheap, and the end-of-transaction steps of changes to
 *	  rules and registry.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_EMIT_H
#define ES_EMIT_H

#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "es_catalog.h"
#include "es_stream.h"

/* event_store.read_mem (kB) */
extern int	es_read_mem;

/* a materialize-mode set returning function's result */
extern Tuplestorestate *es_begin_srf(FunctionCallInfo fcinfo, TupleDesc *desc);
extern void es_check_event_desc(TupleDesc result, Relation rel);

/* the emitter of one read */
typedef struct EsEmitter
{
	const EsCatalog *cat;
	Tuplestorestate *store;
	TupleDesc	desc;
	Snapshot	snapshot;		/* the read's */
	bool		rules;			/* some stream may have rules */
	bool		upcasting;		/* some type may have upcasters */
	bool		exact;			/* look up every stream and type: the supersets
								 * may miss a change that is committing */
	TimestampTz now;
	struct HTAB *views;			/* streams with rules, as the snapshot sees them */
	struct HTAB *steps;			/* upcasters, as the snapshot sees them */
	MemoryContext cxt;			/* per-read memory */
	MemoryContext row_cxt;		/* per-row memory of upcasting */
	struct List *fence;			/* the session's cursors at the first upcaster
								 * call (EsPortalMark), which upcasters must
								 * leave alone */
	bool		fenced;
	const char *read_portal;	/* the name of the portal the read runs in */
} EsEmitter;

extern void es_emitter_init(EsEmitter *em, const EsCatalog *cat,
							Tuplestorestate *store, TupleDesc desc,
							Snapshot snapshot);
extern bool es_emit(EsEmitter *em, TupleTableSlot *slot);
extern void es_emitter_end(EsEmitter *em);

/* what the rules of a stream (a view of its row) hide */
extern bool es_view_hides(const EsStreamView *view, int64 version,
						  TimestampTz created_at, TimestampTz now);

/* upcasters: the shape of a function, the check of a registration, and
 * whether one is running */
extern int	es_upcaster_shape(const EsCatalog *cat, Oid fn, Oid *owner);
extern void es_check_upcaster(const EsCatalog *cat, Oid fn);
extern bool es_in_upcaster(void);
extern void es_upcaster_executor_check(void);

/* changes of stream metadata or upcasters, and their transaction's end */
extern void es_registry_touch(const EsCatalog *cat, Oid relid);
extern void es_emit_pre_commit(void);
extern void es_emit_pre_prepare(void);
extern void es_emit_xact_end(void);
extern void es_emit_subxact_end(bool committed, SubTransactionId mySubid,
								SubTransactionId parentSubid);
extern void es_emit_after_locks(void);

#endif							/* ES_EMIT_H */
