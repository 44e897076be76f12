/*-------------------------------------------------------------------------
 *
 * es_project.h
 *	  Layer 4: projections run by the server: the rules and the call of
 *	  their handlers (SQL functions), and the runner's round in the
 *	  database's worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_PROJECT_H
#define ES_PROJECT_H

#include "es_notifier.h"

/* event_store.projection_timeout (ms) */
extern int	es_projection_timeout;

extern void es_project_run(EsProjectStatus *status);

#endif							/* ES_PROJECT_H */
