/*-------------------------------------------------------------------------
 *
 * tail.c
 *	  esctl tail: the gap-safe feed (es_read_all, es_read_category), page
 *	  after page, and with --follow for ever.
 *
 * The feed never returns a position while a lower one may still commit,
 * so a reader that goes on after the last position it printed prints every
 * event once.  --follow does so across lost connections: LISTEN es_events,
 * read until a page comes back empty, wait for a notification or 10 s,
 * read again; a lost connection (a restart, a terminated backend) is
 * opened again with a growing pause, and the reading goes on after the
 * last position printed.  A page is printed only once its statement has
 * completed, then flushed: a page is printed whole or not at all.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "esctl.h"

#define TAIL_PAGE_SIZE		"1000"
#define TAIL_WAIT_MS		10000	/* the longest wait for a notification */
#define TAIL_MAX_TYPES		100 /* es_read_all's limit */
#define TAIL_BACKOFF_FIRST	250
#define TAIL_BACKOFF_MAX	10000

typedef struct TailOptions
{
	EsConnOptions conn;
	const char *from;			/* --from: a position, "now"; NULL: 0 */
	const char *from_time;		/* --from-time */
	const char *category;		/* --category */
	const char *types[TAIL_MAX_TYPES];	/* --type */
	int			ntypes;
	bool		follow;
	bool		json;
	long long	limit;			/* --limit; 0: none */
} TailOptions;

/* columns of both queries: 0 position, 1 type; then the output's */
static const char *const sql_all_text =
"SELECT e.position, e.type, e.stream, e.version, e.created_at, e.data "
"FROM event_store.es_read_all($1::pg_catalog.int8, $2::pg_catalog.int8, $3::pg_catalog.text[]) e";
static const char *const sql_all_json =
"SELECT e.position, e.type, pg_catalog.row_to_json(e) "
"FROM event_store.es_read_all($1::pg_catalog.int8, $2::pg_catalog.int8, $3::pg_catalog.text[]) e";
static const char *const sql_cat_text =
"SELECT e.position, e.type, e.stream, e.version, e.created_at, e.data "
"FROM event_store.es_read_category($1::pg_catalog.text, $2::pg_catalog.int8, $3::pg_catalog.int8) e";
static const char *const sql_cat_json =
"SELECT e.position, e.type, pg_catalog.row_to_json(e) "
"FROM event_store.es_read_category($1::pg_catalog.text, $2::pg_catalog.int8, $3::pg_catalog.int8) e";

static void
tail_help(const char *name)
{
	printf("%s prints the events of the gap-safe feed, one per line.\n\n", name);
	printf("Usage:\n  %s [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --from=POSITION      start after this position (default 0: the first event);\n");
	printf("                           \"now\": after the feed's head\n");
	printf("      --from-time=TIME     start after es_position_before_time(TIME): every event\n");
	printf("                           created at or after TIME (a timestamptz)\n");
	printf("      --category=CATEGORY  only the events of one category (es_read_category)\n");
	printf("      --type=TYPE          only events of this type (repeatable)\n");
	printf("  -f, --follow             go on for ever: wait for new events (LISTEN es_events,\n");
	printf("                           or every 10 s) and reconnect after a lost connection\n");
	printf("  -n, --limit=N            stop after N events\n");
	printf("      --json               one JSON object per line, every column of es_event\n");
	printf("      --help               show this help, then exit\n");
	es_conn_options_help();
	printf("\nText lines: position, stream, version, type, created_at, data, separated by\n");
	printf("tabs (backslash, tab and newline escaped as \\\\, \\t, \\n).\n");
	printf("Exit status: 0 done (without --follow: at the end of the feed; with it: on\n");
	printf("SIGINT or SIGTERM), 1 error, 2 bad usage.\n");
}

/* The position to start after: --from, --from-time, or 0. */
static bool
tail_start(PGconn *conn, const TailOptions *o, long long *pos)
{
	PGresult   *res;
	const char *params[1];

	*pos = 0;
	if (o->from_time)
	{
		params[0] = o->from_time;
		res = es_query(conn,
					   "SELECT event_store.es_position_before_time($1::pg_catalog.timestamptz)",
					   1, params);
	}
	else if (o->from && strcmp(o->from, "now") == 0)
		res = es_query(conn, "SELECT event_store.es_head_position()", 0, NULL);
	else
		return true;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		PQgetisnull(res, 0, 0) || !es_parse_int64(PQgetvalue(res, 0, 0), pos))
	{
		es_report_result(res);
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/* Does an event of this type pass the --type filter? */
static bool
tail_type_wanted(const TailOptions *o, const char *type)
{
	int			i;

	if (o->ntypes == 0)
		return true;
	for (i = 0; i < o->ntypes; i++)
		if (strcmp(o->types[i], type) == 0)
			return true;
	return false;
}

/*
 * Print a page.  Returns the number of rows (not only those printed), -1
 * if stdout cannot be written (a closed pipe, a full disk), and sets *pos
 * to the last row's position; *printed counts printed events.
 */
static int
tail_print_page(PGresult *res, const TailOptions *o, long long *pos, long long *printed)
{
	int			n = PQntuples(res);
	int			r;

	for (r = 0; r < n; r++)
	{
		long long	p;

		if (!es_parse_int64(PQgetvalue(res, r, 0), &p))
			continue;
		*pos = p;
		/* es_read_category has no filter of types: applied here */
		if (!tail_type_wanted(o, PQgetvalue(res, r, 1)))
			continue;
		if (o->limit > 0 && *printed >= o->limit)
			break;
		if (o->json)
			fputs(PQgetvalue(res, r, 2), stdout);
		else
		{
			/* position, stream, version, type, created_at, data */
			static const int order[] = {2, 3, 1, 4, 5};
			int			c;

			fputs(PQgetvalue(res, r, 0), stdout);
			for (c = 0; c < 5; c++)
			{
				putchar('\t');
				es_print_escaped(stdout, PQgetvalue(res, r, order[c]));
			}
		}
		putchar('\n');
		(*printed)++;
	}
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		es_error("could not write the events: %s", strerror(errno));
		return -1;
	}
	return n;
}

/* what tail_wait saw */
typedef enum TailWait
{
	TAIL_WOKEN,					/* a notification, the time, or a signal */
	TAIL_CONNECTION_LOST,
	TAIL_OUTPUT_CLOSED			/* the reader of our output has gone */
} TailWait;

/*
 * Wait for a notification on es_events, or TAIL_WAIT_MS, or a stop
 * signal.  The output is watched too: a pipe whose reader has gone
 * (esctl tail -f | head) reports an error, and the wait ends at once
 * rather than at the next event.
 */
static TailWait
tail_wait(PGconn *conn)
{
	struct pollfd pfd[2];
	PGnotify   *note;
	int			rc;

	/* a notification may already have arrived with the last result */
	if (!PQconsumeInput(conn))
		return TAIL_CONNECTION_LOST;
	if ((note = PQnotifies(conn)) != NULL)
	{
		do
		{
			PQfreemem(note);
		} while ((note = PQnotifies(conn)) != NULL);
		return TAIL_WOKEN;
	}
	pfd[0].fd = PQsocket(conn);
	if (pfd[0].fd < 0)
		return TAIL_CONNECTION_LOST;
	pfd[0].events = POLLIN;
	pfd[0].revents = 0;
	pfd[1].fd = fileno(stdout);
	pfd[1].events = 0;			/* errors and hang-ups only */
	pfd[1].revents = 0;
	rc = poll(pfd, 2, TAIL_WAIT_MS);
	if (rc < 0 && errno != EINTR)
		return TAIL_CONNECTION_LOST;
	if (rc > 0 && (pfd[1].revents & (POLLERR | POLLHUP)) != 0)
		return TAIL_OUTPUT_CLOSED;
	if (rc > 0 && pfd[0].revents != 0)
	{
		if (!PQconsumeInput(conn))
			return TAIL_CONNECTION_LOST;
		while ((note = PQnotifies(conn)) != NULL)
			PQfreemem(note);
	}
	return PQstatus(conn) == CONNECTION_OK ? TAIL_WOKEN : TAIL_CONNECTION_LOST;
}

/*
 * Open the connection again, pausing longer each time (*pause: the next
 * pause, kept by the caller until a read succeeds); NULL if stopped.
 */
static PGconn *
tail_reconnect(const TailOptions *o, int *pause)
{
	for (;;)
	{
		PGconn	   *conn;

		es_sleep_ms(*pause);
		*pause = *pause * 2 > TAIL_BACKOFF_MAX ? TAIL_BACKOFF_MAX : *pause * 2;
		if (es_stop_requested)
			return NULL;
		conn = es_connect(&o->conn, true);
		if (conn)
		{
			es_error("connected again");
			return conn;
		}
		es_error("trying again in %d ms", *pause);
	}
}

int
es_cmd_tail(int argc, char **argv)
{
	static const struct option long_options[] = {
		ES_CONN_LONGOPTS,
		{"from", required_argument, NULL, ES_OPT_FIRST_OWN},
		{"from-time", required_argument, NULL, ES_OPT_FIRST_OWN + 1},
		{"category", required_argument, NULL, ES_OPT_FIRST_OWN + 2},
		{"type", required_argument, NULL, ES_OPT_FIRST_OWN + 3},
		{"json", no_argument, NULL, ES_OPT_FIRST_OWN + 4},
		{"follow", no_argument, NULL, 'f'},
		{"limit", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0}
	};
	TailOptions o;
	PGconn	   *conn;
	long long	pos = 0;
	long long	printed = 0;
	char	   *types = NULL;
	char		posbuf[32];
	int			rc = ES_EXIT_OK;
	int			pause = TAIL_BACKOFF_FIRST;
	int			c;

	memset(&o, 0, sizeof(o));
	while ((c = getopt_long(argc, argv, ES_CONN_SHORTOPTS "fn:", long_options, NULL)) != -1)
	{
		if (es_conn_option(&o.conn, c, optarg))
			continue;
		switch (c)
		{
			case ES_OPT_HELP:
				tail_help(argv[0]);
				return ES_EXIT_OK;
			case ES_OPT_FIRST_OWN:
				o.from = optarg;
				break;
			case ES_OPT_FIRST_OWN + 1:
				o.from_time = optarg;
				break;
			case ES_OPT_FIRST_OWN + 2:
				o.category = optarg;
				break;
			case ES_OPT_FIRST_OWN + 3:
				if (o.ntypes >= TAIL_MAX_TYPES)
					return es_usage_error(argv[0], "at most %d --type options", TAIL_MAX_TYPES);
				o.types[o.ntypes++] = optarg;
				break;
			case ES_OPT_FIRST_OWN + 4:
				o.json = true;
				break;
			case 'f':
				o.follow = true;
				break;
			case 'n':
				if (!es_parse_int64(optarg, &o.limit) || o.limit < 1)
					return es_usage_error(argv[0], "--limit must be a positive integer: \"%s\"", optarg);
				break;
			default:
				return es_usage_error(argv[0], NULL);
		}
	}
	if (optind < argc)
		return es_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind]);
	if (o.from && o.from_time)
		return es_usage_error(argv[0], "--from and --from-time cannot be combined");
	if (o.from && strcmp(o.from, "now") != 0)
	{
		if (!es_parse_int64(o.from, &pos) || pos < 0)
			return es_usage_error(argv[0], "--from must be a position (0 or more) or \"now\": \"%s\"", o.from);
	}

	conn = es_connect(&o.conn, true);
	if (conn == NULL)
		return ES_EXIT_ERROR;
	if (o.from_time || (o.from && strcmp(o.from, "now") == 0))
	{
		if (!tail_start(conn, &o, &pos))
		{
			PQfinish(conn);
			return ES_EXIT_ERROR;
		}
	}
	if (o.follow)
		es_catch_stop_signals();
	/* without a category the feed filters the types itself (index-backed) */
	if (o.category == NULL)
		types = es_text_array(o.types, o.ntypes);

	/* LISTEN before the first read: no wake-up is lost between them */
	if (o.follow && !es_command(conn, "LISTEN es_events", 0, NULL))
	{
		PQfinish(conn);
		free(types);
		return ES_EXIT_ERROR;
	}

	while (!es_stop_requested)
	{
		PGresult   *res;
		const char *params[3];
		int			n;

		if (conn == NULL)
		{
			conn = tail_reconnect(&o, &pause);
			if (conn == NULL)
				break;
			if (!es_command(conn, "LISTEN es_events", 0, NULL))
			{
				/*
				 * Lost again: try again, after a longer pause.  Refused (a
				 * standby, where LISTEN is not allowed): that is the end.
				 */
				bool		lost = PQstatus(conn) == CONNECTION_BAD;

				PQfinish(conn);
				conn = NULL;
				if (lost)
					continue;
				rc = ES_EXIT_ERROR;
				break;
			}
		}

		snprintf(posbuf, sizeof(posbuf), "%lld", pos);
		if (o.category)
		{
			params[0] = o.category;
			params[1] = posbuf;
			params[2] = TAIL_PAGE_SIZE;
			res = es_query(conn, o.json ? sql_cat_json : sql_cat_text, 3, params);
		}
		else
		{
			params[0] = posbuf;
			params[1] = TAIL_PAGE_SIZE;
			params[2] = types;
			res = es_query(conn, o.json ? sql_all_json : sql_all_text, 3, params);
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			if (o.follow && es_connection_lost(conn, res))
			{
				es_report_result(res);
				es_error("connection lost after position %lld; reconnecting", pos);
				PQclear(res);
				PQfinish(conn);
				conn = NULL;
				continue;
			}
			es_report_result(res);
			PQclear(res);
			rc = ES_EXIT_ERROR;
			break;
		}
		pause = TAIL_BACKOFF_FIRST;	/* a read succeeded */
		n = tail_print_page(res, &o, &pos, &printed);
		PQclear(res);
		if (n < 0)
		{
			rc = ES_EXIT_ERROR;
			break;
		}
		if (o.limit > 0 && printed >= o.limit)
			break;
		if (n == atoi(TAIL_PAGE_SIZE))
			continue;			/* more may be readable now */
		if (!o.follow)
			break;
		switch (tail_wait(conn))
		{
			case TAIL_WOKEN:
				break;
			case TAIL_CONNECTION_LOST:
				es_error("connection lost after position %lld: %s; reconnecting",
						 pos, PQerrorMessage(conn));
				PQfinish(conn);
				conn = NULL;
				break;
			case TAIL_OUTPUT_CLOSED:
				es_error("the output was closed");
				rc = ES_EXIT_ERROR;
				es_stop_requested = 1;
				break;
		}
	}
	if (conn)
		PQfinish(conn);
	free(types);
	return rc;
}
