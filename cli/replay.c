/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  esctl replay: rebuild a projection (event_store.es_rebuild_projection:
 *	  its reset handler and the rewind, in one transaction), then follow it
 *	  in event_store.es_projections while the server's worker replays it,
 *	  until it reaches the rebuild's target or faults.
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "esctl.h"

#define REPLAY_POLL_MS	200
#define REPLAY_BAR		30

static void
replay_help(const char *name)
{
	printf("%s rebuilds a projection: its reset handler empties the read model and\n", name);
	printf("its checkpoint moves back; the server's worker then replays the events.  It\n");
	printf("follows the projection until it reaches the head of the feed as of the rewind\n");
	printf("(es_projections.rebuild_to).\n\n");
	printf("Usage:\n  %s NAME --from-beginning | --from-position=P | --from-time=TIME [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --from-beginning     replay every event (position 0)\n");
	printf("      --from-position=P    replay the events after position P\n");
	printf("      --from-time=TIME     replay every event created at or after TIME\n");
	printf("      --no-wait            rewind only; do not follow the replay\n");
	printf("      --timeout=SECONDS    give up following after this long (exit 1; the\n");
	printf("                           replay goes on in the server)\n");
	printf("      --help               show this help, then exit\n");
	es_conn_options_help();
	printf("\nOn a terminal a progress bar, else a progress line at most once a second.\n");
	printf("Needs to act for the projection's owner (a member of its role) and UPDATE on\n");
	printf("event_store.projections, SELECT on event_store.events and es_projections.\n");
	printf("Exit status: 0 caught up (or rewound, with --no-wait), 1 error, the projection\n");
	printf("faulted or paused, or the timeout passed, 2 bad usage.\n");
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The progress, on one line redrawn (a terminal) or a line (else). */
static void
replay_progress(bool tty, const char *name, long long pos, long long target,
				double fraction, const char *note)
{
	int			pct = (int) (fraction * 100.0);

	if (pct > 100)
		pct = 100;
	if (tty)
	{
		int			filled = (int) (fraction * REPLAY_BAR);
		int			i;

		printf("\r%s [", name);
		for (i = 0; i < REPLAY_BAR; i++)
			putchar(i < filled ? '#' : '.');
		printf("] %3d%%  %lld/%lld%s%s\033[K", pct, pos, target, note[0] ? "  " : "", note);
	}
	else
		printf("%s: position %lld of %lld (%d%%)%s%s\n", name, pos, target, pct,
			   note[0] ? ", " : "", note);
	fflush(stdout);
}

int
es_cmd_replay(int argc, char **argv)
{
	static const struct option long_options[] = {
		ES_CONN_LONGOPTS,
		{"from-beginning", no_argument, NULL, ES_OPT_FIRST_OWN},
		{"from-position", required_argument, NULL, ES_OPT_FIRST_OWN + 1},
		{"from-time", required_argument, NULL, ES_OPT_FIRST_OWN + 2},
		{"no-wait", no_argument, NULL, ES_OPT_FIRST_OWN + 3},
		{"timeout", required_argument, NULL, ES_OPT_FIRST_OWN + 4},
		{NULL, 0, NULL, 0}
	};
	EsConnOptions copts;
	const char *from_position = NULL;
	const char *from_time = NULL;
	int			nfrom = 0;
	bool		wait = true;
	long long	timeout = 0;
	long long	v;
	const char *params[2];
	const char *name;
	PGconn	   *conn;
	PGresult   *res;
	bool		tty;
	double		started,
				last_line = 0;
	int			rc = ES_EXIT_OK;
	int			c;

	memset(&copts, 0, sizeof(copts));
	while ((c = getopt_long(argc, argv, ES_CONN_SHORTOPTS, long_options, NULL)) != -1)
	{
		if (es_conn_option(&copts, c, optarg))
			continue;
		switch (c)
		{
			case ES_OPT_HELP:
				replay_help(argv[0]);
				return ES_EXIT_OK;
			case ES_OPT_FIRST_OWN:
				from_position = "0";
				nfrom++;
				break;
			case ES_OPT_FIRST_OWN + 1:
				if (!es_parse_int64(optarg, &v) || v < 0)
					return es_usage_error(argv[0], "--from-position must be a position (0 or more): \"%s\"", optarg);
				from_position = optarg;
				nfrom++;
				break;
			case ES_OPT_FIRST_OWN + 2:
				from_time = optarg;
				nfrom++;
				break;
			case ES_OPT_FIRST_OWN + 3:
				wait = false;
				break;
			case ES_OPT_FIRST_OWN + 4:
				if (!es_parse_int64(optarg, &timeout) || timeout < 1)
					return es_usage_error(argv[0], "--timeout must be a positive number of seconds: \"%s\"", optarg);
				break;
			default:
				return es_usage_error(argv[0], NULL);
		}
	}
	if (optind >= argc)
		return es_usage_error(argv[0], "no projection given");
	if (optind + 1 < argc)
		return es_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind + 1]);
	if (nfrom != 1)
		return es_usage_error(argv[0], "give one of --from-beginning, --from-position, --from-time");
	name = argv[optind];

	conn = es_connect(&copts, true);
	if (conn == NULL)
		return ES_EXIT_ERROR;

	/* the rewind: the reset handler and the checkpoint, one transaction */
	params[0] = name;
	params[1] = from_time ? from_time : from_position;
	res = es_query(conn, from_time ?
				   "SELECT event_store.es_rebuild_projection($1::pg_catalog.text, $2::pg_catalog.timestamptz)" :
				   "SELECT event_store.es_rebuild_projection($1::pg_catalog.text, $2::pg_catalog.int8)",
				   2, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		es_report_result(res);
		PQclear(res);
		PQfinish(conn);
		return ES_EXIT_ERROR;
	}
	printf("%s: rewound to position %s\n", name, PQgetvalue(res, 0, 0));
	fflush(stdout);
	PQclear(res);
	if (!wait)
	{
		PQfinish(conn);
		return ES_EXIT_OK;
	}

	/* follow it in es_projections */
	es_catch_stop_signals();
	tty = isatty(fileno(stdout));
	started = now_seconds();
	for (;;)
	{
		long long	pos,
					target;
		double		fraction;
		const char *state;
		char		note[300] = "";
		bool		done;

		res = es_query(conn,
					   "SELECT p.state, p.position, p.rebuild_to, "
					   "COALESCE(p.rebuild_progress, 1), "
					   "p.attempts, p.error_sqlstate, p.error_message, p.error_position "
					   "FROM event_store.es_projections p WHERE p.name OPERATOR(pg_catalog.=) $1",
					   1, params);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			es_report_result(res);
			PQclear(res);
			rc = ES_EXIT_ERROR;
			break;
		}
		if (PQntuples(res) != 1)
		{
			es_error("projection \"%s\" is gone (unregistered during the replay)", name);
			PQclear(res);
			rc = ES_EXIT_ERROR;
			break;
		}
		state = PQgetvalue(res, 0, 0);
		if (!es_parse_int64(PQgetvalue(res, 0, 1), &pos))
			pos = 0;
		if (PQgetisnull(res, 0, 2) || !es_parse_int64(PQgetvalue(res, 0, 2), &target))
			target = pos;
		fraction = atof(PQgetvalue(res, 0, 3));
		done = pos >= target;
		if (strcmp(PQgetvalue(res, 0, 4), "0") != 0 && !PQgetisnull(res, 0, 6))
			snprintf(note, sizeof(note), "attempt %s failed: %s: %s",
					 PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6));
		if (tty || done || strcmp(state, "running") != 0 || now_seconds() - last_line >= 1.0)
		{
			replay_progress(tty, name, pos, target, done ? 1.0 : fraction, note);
			last_line = now_seconds();
		}
		if (done)
		{
			if (tty)
				putchar('\n');
			printf("%s: caught up with position %lld\n", name, target);
			PQclear(res);
			break;
		}
		if (strcmp(state, "running") != 0)
		{
			if (tty)
				putchar('\n');
			/* a paused one's error columns may be of an older fault */
			if (strcmp(state, "faulted") == 0 && !PQgetisnull(res, 0, 6))
				es_error("projection \"%s\" is %s at position %lld: %s: %s (event at position %s)",
						 name, state, pos, PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 6),
						 PQgetisnull(res, 0, 7) ? "unknown" : PQgetvalue(res, 0, 7));
			else
				es_error("projection \"%s\" is %s at position %lld", name, state, pos);
			PQclear(res);
			rc = ES_EXIT_ERROR;
			break;
		}
		PQclear(res);
		if (es_stop_requested)
		{
			if (tty)
				putchar('\n');
			es_error("stopped following; the replay goes on in the server");
			rc = ES_EXIT_ERROR;
			break;
		}
		if (timeout > 0 && now_seconds() - started >= (double) timeout)
		{
			if (tty)
				putchar('\n');
			es_error("timeout: projection \"%s\" is at position %lld of %lld; the replay goes on in the server",
					 name, pos, target);
			rc = ES_EXIT_ERROR;
			break;
		}
		es_sleep_ms(REPLAY_POLL_MS);
	}
	fflush(stdout);
	if (rc != ES_EXIT_OK && PQstatus(conn) == CONNECTION_BAD)
		es_error("the connection was lost: %s", PQerrorMessage(conn));
	PQfinish(conn);
	return rc;
}
