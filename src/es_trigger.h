/*-------------------------------------------------------------------------
 *
 * es_trigger.h
 *	  Layer 4: the end-of-transaction steps of the numbering trigger, which
 *	  event_store.c's transaction callbacks call (the trigger functions
 *	  themselves are reached through SQL only).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_TRIGGER_H
#define ES_TRIGGER_H

extern void es_trigger_pre_commit(void);
extern void es_trigger_xact_end(void);
extern void es_trigger_subxact_end(bool committed, SubTransactionId mySubid,
								   SubTransactionId parentSubid);

#endif							/* ES_TRIGGER_H */
