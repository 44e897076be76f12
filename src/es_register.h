/*-------------------------------------------------------------------------
 *
 * es_register.h
 *	  Layer 1: the position register, in shared memory.  It hands out event
 *	  positions, knows the lowest position each open transaction holds (so
 *	  feed readers can tell a safe horizon), and keeps each database's
 *	  shared state: its notifier's, its counts of committing changes of
 *	  rules.  It never opens a relation and never starts a worker: what it
 *	  needs from tables (the highest stored position) it is given, and who
 *	  to wake after a transaction ends it tells through a hook.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_REGISTER_H
#define ES_REGISTER_H

#include "datatype/timestamp.h"

typedef struct EsDatabase EsDatabase;

/* event_store.max_databases */
extern int	es_max_databases;
/* event_store.max_workers: the databases' workers at once, all databases */
extern int	es_max_workers;

/*
 * Called once an open transaction's positions are released (its end, or
 * the backend's exit): event_store.c wakes the notifier through it.
 */
typedef void (*es_release_hook_type) (EsDatabase *db, bool committed);
extern es_release_hook_type es_release_hook;

/* set-up (_PG_init), and whether it happened */
extern void es_register_init_hooks(void);
extern bool es_register_ready(void);
extern void es_require_preload(void);

/* database entries */
extern EsDatabase *es_database_entry(Oid dbid, bool create);
extern void es_forget_database(Oid dbid);
extern void es_reset_database(Oid dbid);

/*
 * Positions.  es_positions_loaded says whether the database's counter has
 * been loaded since the server started (or CREATE EXTENSION); if not, the
 * caller reads the highest stored and the highest erased position and
 * gives them to es_positions_load (es_events.c does).
 */
extern bool es_positions_loaded(EsDatabase *db);
extern void es_positions_load(EsDatabase *db, int64 max_position, int64 erased_floor);
extern void es_positions_subscribed(EsDatabase *db);
extern bool es_positions_unsubscribed(EsDatabase *db);
extern int64 es_allocate_positions(EsDatabase *db, int64 count);
extern void es_claim_position(EsDatabase *db, int64 position);
extern int64 es_safe_horizon(EsDatabase *db);
extern bool es_positions_held(EsDatabase *db);

/* the end of a transaction: true if it held positions (then the hook ran) */
extern void es_register_pre_prepare(void);
extern bool es_register_release(bool committed);

/*
 * Counters of the database's work, for es_stats().  Pending ones count what
 * the transaction did and reach the database's counters only if it commits
 * (what a rolled-back subtransaction counted is forgotten); the others
 * count at once.  es_register_release publishes them.
 */
typedef enum EsStat
{
	ES_STAT_TRANSACTIONS,		/* committed transactions that appended */
	ES_STAT_EVENTS,				/* events they appended */
	ES_STAT_BYTES,				/* bytes of those events' data and metadata */
	ES_STAT_ROLLED_BACK,		/* appending transactions rolled back */
	ES_STAT_CONFLICTS,			/* wrong expected versions raised */
	ES_STAT_RETRIES,			/* idempotent retries recognised */
	ES_STAT_NOTIFICATIONS,		/* notifications sent */
	ES_STAT_NOTIFIER_FAILURES,	/* notifier launches that found no slot */
	ES_STAT_ERASURES,			/* streams erased, committed */
	ES_STAT_COUNT
} EsStat;

typedef struct EsStats
{
	uint64		counters[ES_STAT_COUNT];
	TimestampTz reset_at;
	bool		notifier_running;
	int			oldest_pid;		/* 0: no transaction holds positions */
	TimestampTz oldest_since;
} EsStats;

extern void es_stats_pending(EsStat stat, uint64 n);
extern void es_stats_count(EsStat stat, uint64 n);
extern void es_stats_subxact_end(bool committed, SubTransactionId mySubid,
								 SubTransactionId parentSubid);
extern bool es_stats_read(Oid dbid, EsStats *stats);
extern void es_stats_reset(Oid dbid);

/* committing changes of stream metadata or upcasters (es_emit.c) */
extern bool es_registry_commit_begin(void);
extern void es_registry_commit_end(void);
extern bool es_registry_committing(void);

/*
 * The notifier's shared state (the worker and its policy are es_notifier.c's).
 */
extern int64 es_notifier_attach(EsDatabase *db);
extern void es_notifier_detach(EsDatabase *db);
extern bool es_notifier_begin_look(EsDatabase *db);
extern bool es_notifier_leave_if_idle(EsDatabase *db);
extern int64 es_notifier_progress(EsDatabase *db, uint64 *generation);
extern void es_notifier_set_progress(EsDatabase *db, int64 upto, uint64 generation);
extern bool es_notifier_signal(EsDatabase *db);
extern bool es_notifier_claim_launch(EsDatabase *db, TimestampTz now, int retry_ms);
extern void es_notifier_launched(EsDatabase *db, bool ok);
extern EsDatabase *es_notifier_take_waiting(TimestampTz now);
extern bool es_notifier_others_waiting(void);
extern void es_notifier_requeue(EsDatabase *db);
extern void es_notifier_nudge_all(void);
extern int	es_notifier_stop_request(Oid dbid);
extern Oid	es_database_oid(EsDatabase *db);

/*
 * A projection whose page would not stop (its handler caught the cancel
 * after event_store.projection_timeout): its worker was ended; the next
 * worker of the database records the attempt (es_project.c).
 */
extern void es_project_stuck_set(EsDatabase *db, const char *name);
extern bool es_project_stuck_pending(EsDatabase *db);
extern bool es_project_stuck_take(EsDatabase *db, char *name, Size size);

#endif							/* ES_REGISTER_H */
