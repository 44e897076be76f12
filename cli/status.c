/*-------------------------------------------------------------------------
 *
 * status.c
 *	  esctl stats (event_store.es_stats()) and esctl projections (the view
 *	  event_store.es_projections).
 *
 * stats prints whatever columns es_stats() returns, so a column added
 * later shows up without a change here.
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <string.h>

#include "esctl.h"

/* Options of a command that only prints: the connection and --json. */
static int
status_options(int argc, char **argv, EsConnOptions *conn, bool *json,
			   void (*help) (const char *))
{
	static const struct option long_options[] = {
		ES_CONN_LONGOPTS,
		{"json", no_argument, NULL, ES_OPT_FIRST_OWN},
		{NULL, 0, NULL, 0}
	};
	int			c;

	while ((c = getopt_long(argc, argv, ES_CONN_SHORTOPTS, long_options, NULL)) != -1)
	{
		if (es_conn_option(conn, c, optarg))
			continue;
		switch (c)
		{
			case ES_OPT_HELP:
				help(argv[0]);
				return -1;
			case ES_OPT_FIRST_OWN:
				*json = true;
				break;
			default:
				return es_usage_error(argv[0], NULL);
		}
	}
	if (optind < argc)
		return es_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind]);
	return ES_EXIT_OK;
}

/* Run a query and print it with print(); the exit code. */
static int
status_print(const EsConnOptions *opts, const char *sql, void (*print) (PGresult *))
{
	PGconn	   *conn;
	PGresult   *res;
	int			rc = ES_EXIT_OK;

	conn = es_connect(opts, true);
	if (conn == NULL)
		return ES_EXIT_ERROR;
	res = es_query(conn, sql, 0, NULL);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		print(res);
		fflush(stdout);
	}
	else
	{
		es_report_result(res);
		rc = ES_EXIT_ERROR;
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* One JSON document per row (the query's first column). */
static void
print_json_lines(PGresult *res)
{
	int			r;

	for (r = 0; r < PQntuples(res); r++)
		printf("%s\n", PQgetvalue(res, r, 0));
}

static void
print_stats(PGresult *res)
{
	int			r;

	for (r = 0; r < PQntuples(res); r++)
	{
		if (r > 0)
			putchar('\n');
		es_print_name_values(res, r);
	}
}

static void
stats_help(const char *name)
{
	printf("%s prints the counters of the current database: every column of\n", name);
	printf("event_store.es_stats(), one \"name: value\" line each (NULL: nothing after the colon).\n\n");
	printf("Usage:\n  %s [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --json  one JSON object\n");
	printf("      --help  show this help, then exit\n");
	es_conn_options_help();
	printf("\nNeeds EXECUTE on event_store.es_stats() (granted to pg_monitor).\n");
	printf("Exit status: 0 done, 1 error, 2 bad usage.\n");
}

int
es_cmd_stats(int argc, char **argv)
{
	EsConnOptions conn;
	bool		json = false;
	int			rc;

	memset(&conn, 0, sizeof(conn));
	rc = status_options(argc, argv, &conn, &json, stats_help);
	if (rc != ES_EXIT_OK)
		return rc < 0 ? ES_EXIT_OK : rc;
	if (json)
		return status_print(&conn,
							"SELECT pg_catalog.row_to_json(s) FROM event_store.es_stats() s",
							print_json_lines);
	return status_print(&conn, "SELECT * FROM event_store.es_stats()", print_stats);
}

static void
projections_help(const char *name)
{
	printf("%s lists the projections the caller controls (event_store.es_projections):\n", name);
	printf("state, checkpoint, head, lag, events processed and dead-lettered, failed\n");
	printf("attempts of the current page, and the last error.\n\n");
	printf("Usage:\n  %s [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --json  one JSON object per projection, every column of the view\n");
	printf("      --help  show this help, then exit\n");
	es_conn_options_help();
	printf("\nNeeds SELECT on event_store.es_projections; a role sees the projections of\n");
	printf("the roles it is a member of.\n");
	printf("Exit status: 0 done, 1 error, 2 bad usage.\n");
}

int
es_cmd_projections(int argc, char **argv)
{
	EsConnOptions conn;
	bool		json = false;
	int			rc;

	memset(&conn, 0, sizeof(conn));
	rc = status_options(argc, argv, &conn, &json, projections_help);
	if (rc != ES_EXIT_OK)
		return rc < 0 ? ES_EXIT_OK : rc;
	if (json)
		return status_print(&conn,
							"SELECT pg_catalog.row_to_json(p) FROM event_store.es_projections p "
							"ORDER BY p.name COLLATE \"C\"",
							print_json_lines);
	return status_print(&conn,
						"SELECT p.name, p.state, p.position, p.head, p.lag_positions AS lag, "
						"pg_catalog.round(p.lag_seconds::pg_catalog.numeric, 1) AS lag_seconds, "
						"p.processed, p.dead_lettered, p.attempts, "
						"COALESCE(p.error_sqlstate OPERATOR(pg_catalog.||) ': ' "
						"OPERATOR(pg_catalog.||) p.error_message, '') AS last_error "
						"FROM event_store.es_projections p ORDER BY p.name COLLATE \"C\"",
						es_print_table);
}
