/*-------------------------------------------------------------------------
 *
 * es_notifier.h
 *	  Layer 3: the notifier, a background worker per database that sends
 *	  coalesced notifications on "es_events", and the policy that starts,
 *	  wakes and stops it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_NOTIFIER_H
#define ES_NOTIFIER_H

#include "es_register.h"

/* event_store.notify_min_interval (ms), event_store.notifier_idle_timeout (s) */
extern int	es_notify_min_interval;
extern int	es_notifier_idle_timeout;

extern void es_notifier_wake(EsDatabase *db, bool committed);
extern void es_notifier_stop(Oid dbid);
extern PGDLLEXPORT void es_notifier_main(Datum main_arg);

#endif							/* ES_NOTIFIER_H */
