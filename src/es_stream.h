/*-------------------------------------------------------------------------
 *
 * es_stream.h
 *	  Layer 2: the streams table, whose rows serialize the writers of each
 *	  stream (the claim protocol, es_stream.c's header), the rows a
 *	  transaction holds, and a stream's row as a reader's snapshot sees it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_STREAM_H
#define ES_STREAM_H

#include "access/htup.h"
#include "access/transam.h"
#include "storage/itemptr.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#include "es_catalog.h"
#include "es_validate.h"

/* a stream's row, as a writer fetched it */
typedef struct EsStream
{
	bool		exists;
	int64		id;
	int64		version;
	TimestampTz last_created;	/* updated_at: created_at of its last append */
	ItemPointerData tid;
	HeapTuple	tuple;			/* copy of the current row, if exists */
	TransactionId wait_xid;		/* an open transaction writing the row */
} EsStream;

/* the claim protocol */
extern void es_stream_fetch(Relation streams, Relation name_index, text *name,
							EsStream *stream);
extern void es_stream_fetch_settled(Relation streams, Relation name_index,
									text *name, EsStream *stream);
extern bool es_stream_is_ours(EsStream *stream);
extern bool es_stream_create(const EsCatalog *cat, Relation streams,
							 Relation name_index, text *name, EsStream *stream,
							 int64 version);
extern bool es_stream_update(Relation streams, text *name, EsStream *stream,
							 int64 new_version);
extern bool es_stream_rewrite(Relation streams, text *name, EsStream *stream,
							  Jsonb *metadata, bool erase);
extern bool es_stream_erased(Relation streams, EsStream *stream);
extern TimestampTz es_stream_next_created(const EsStream *stream);
extern void es_refuse_erased(text *name);
extern void es_raise_wrong_version(text *name, int64 expected, int64 actual);

/* the rows this transaction holds, and whether it inserted by plain INSERT */
extern void es_held_drop(text *name);
extern void es_stream_plain_inserts(void);
extern bool es_plain_inserts_in_xact(void);
extern void es_stream_xact_end(void);
extern void es_stream_subxact_end(bool committed, SubTransactionId mySubid,
								  SubTransactionId parentSubid);

/* a stream's row, as one snapshot sees it */
typedef struct EsStreamView
{
	bool		exists;
	int64		version;
	bool		erased;
	TimestampTz last_created;	/* created_at of its last append */
	bool		has_rules;
	EsRules		rules;
	Jsonb	   *metadata;		/* a copy, if asked for */
} EsStreamView;

extern bool es_stream_view(const EsCatalog *cat, Snapshot snapshot, text *name,
						   EsStreamView *view, bool want_metadata);

#endif							/* ES_STREAM_H */
