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

/*
 * What a round of the runner found (es_project.c): a page was applied, so
 * more may be due at once; a round failed outside a handler; in how many
 * milliseconds a failed page may be tried again (-1: none waits).
 */
typedef struct EsProjectStatus
{
	bool		due;
	bool		failed;
	long		next_retry_ms;
} EsProjectStatus;

/* the runner's step in the database's worker, set by event_store.c */
typedef void (*es_worker_hook_type) (EsProjectStatus *status);
extern es_worker_hook_type es_worker_hook;

extern void es_notifier_wake(EsDatabase *db, bool committed);
extern void es_notifier_wake_at_commit(void);
extern void es_notifier_xact_end(bool committed);
extern void es_notifier_register_launcher(void);
extern PGDLLEXPORT void es_launcher_main(Datum main_arg);
extern void es_notifier_stop(Oid dbid);
extern PGDLLEXPORT void es_notifier_main(Datum main_arg);

#endif							/* ES_NOTIFIER_H */
