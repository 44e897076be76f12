/*-------------------------------------------------------------------------
 *
 * es_scan.h
 *	  Layer 0: the one way event_store scans an index.  Every lookup of the
 *	  extension (a stream's row, its events, a snapshot, an upcaster, the
 *	  feed) goes through it, so a difference between server versions is
 *	  handled here (es_compat.h) and nowhere else.
 *
 *	  EsScan s;
 *	  es_scan_init(&s, heap, index);
 *	  es_scan_key_text(&s, 1, name);
 *	  es_scan_begin(&s, snapshot);
 *	  while (es_scan_next(&s, ForwardScanDirection))
 *		  ... s.slot ...
 *	  es_scan_end(&s);
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_SCAN_H
#define ES_SCAN_H

#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/uuid.h"

#define ES_SCAN_MAX_KEYS	3

typedef struct EsScan
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;		/* the current row (es_scan_next) */
	int			nkeys;
	ScanKeyData keys[ES_SCAN_MAX_KEYS];
} EsScan;

extern void es_scan_init(EsScan *s, Relation heap, Relation index);
/* keys on index column attno: = a text (in the column's collation) ... */
extern void es_scan_key_text(EsScan *s, AttrNumber attno, text *value);
/* ... an int8 compared by strategy (BTLessStrategyNumber ...), */
extern void es_scan_key_int8(EsScan *s, AttrNumber attno,
							 StrategyNumber strategy, int64 value);
/* ... = an int4, = a uuid */
extern void es_scan_key_int4(EsScan *s, AttrNumber attno, int32 value);
extern void es_scan_key_uuid(EsScan *s, AttrNumber attno, pg_uuid_t *value);
extern void es_scan_begin(EsScan *s, Snapshot snapshot);
/* the next row the snapshot sees, into s->slot; false at the end */
extern bool es_scan_next(EsScan *s, ScanDirection dir);
/* the next index entry, for callers that fetch the heap themselves */
extern ItemPointer es_scan_next_tid(EsScan *s, ScanDirection dir);
extern void es_scan_end(EsScan *s);
/* the first row only: begin, next, and the slot is s->slot until es_scan_end */
extern bool es_scan_first(EsScan *s, Snapshot snapshot, ScanDirection dir);

#endif							/* ES_SCAN_H */
