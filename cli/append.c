/*-------------------------------------------------------------------------
 *
 * append.c
 *	  esctl append: one event through event_store.es_append's single-event
 *	  form, for scripts.
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <string.h>

#include "esctl.h"

static void
append_help(const char *name)
{
	printf("%s appends one event to a stream (event_store.es_append) and prints\n", name);
	printf("where it went.\n\n");
	printf("Usage:\n  %s STREAM --expected-version=V --type=TYPE --data=JSON [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --expected-version=V  a version N (the stream must be at exactly N),\n");
	printf("                            \"no-stream\" (0: it must have no events) or \"any\"\n");
	printf("      --type=TYPE           the event's type\n");
	printf("      --data=JSON           its data, any JSON value\n");
	printf("      --metadata=JSON       its metadata, a JSON object\n");
	printf("      --event-id=UUID       its id (a retry with the same id stores nothing)\n");
	printf("      --json                print the result as one JSON object\n");
	printf("      --help                show this help, then exit\n");
	es_conn_options_help();
	printf("\nPrints \"stream\", \"first_version\", \"last_version\", \"first_position\",\n");
	printf("\"last_position\" as \"name: value\" lines.  Needs INSERT and SELECT on\n");
	printf("event_store.events.\n");
	printf("Exit status: 0 appended, 1 error (a wrong expected version is SQLSTATE V0001,\n");
	printf("printed on stderr), 2 bad usage.\n");
}

int
es_cmd_append(int argc, char **argv)
{
	static const struct option long_options[] = {
		ES_CONN_LONGOPTS,
		{"expected-version", required_argument, NULL, ES_OPT_FIRST_OWN},
		{"type", required_argument, NULL, ES_OPT_FIRST_OWN + 1},
		{"data", required_argument, NULL, ES_OPT_FIRST_OWN + 2},
		{"metadata", required_argument, NULL, ES_OPT_FIRST_OWN + 3},
		{"event-id", required_argument, NULL, ES_OPT_FIRST_OWN + 4},
		{"json", no_argument, NULL, ES_OPT_FIRST_OWN + 5},
		{NULL, 0, NULL, 0}
	};
	EsConnOptions copts;
	const char *expected = NULL;
	const char *type = NULL;
	const char *data = NULL;
	const char *metadata = NULL;
	const char *event_id = NULL;
	bool		json = false;
	const char *params[6];
	PGconn	   *conn;
	PGresult   *res;
	long long	v;
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
				append_help(argv[0]);
				return ES_EXIT_OK;
			case ES_OPT_FIRST_OWN:
				expected = optarg;
				break;
			case ES_OPT_FIRST_OWN + 1:
				type = optarg;
				break;
			case ES_OPT_FIRST_OWN + 2:
				data = optarg;
				break;
			case ES_OPT_FIRST_OWN + 3:
				metadata = optarg;
				break;
			case ES_OPT_FIRST_OWN + 4:
				event_id = optarg;
				break;
			case ES_OPT_FIRST_OWN + 5:
				json = true;
				break;
			default:
				return es_usage_error(argv[0], NULL);
		}
	}
	if (optind >= argc)
		return es_usage_error(argv[0], "no stream given");
	if (optind + 1 < argc)
		return es_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind + 1]);
	if (expected == NULL || type == NULL || data == NULL)
		return es_usage_error(argv[0], "--expected-version, --type and --data are required");

	params[0] = argv[optind];
	if (strcmp(expected, "any") == 0)
		params[1] = NULL;
	else if (strcmp(expected, "no-stream") == 0)
		params[1] = "0";
	else if (es_parse_int64(expected, &v))
		params[1] = expected;
	else
		return es_usage_error(argv[0],
							  "--expected-version must be a version, \"no-stream\" or \"any\": \"%s\"",
							  expected);
	params[2] = type;
	params[3] = data;
	params[4] = metadata;
	params[5] = event_id;

	conn = es_connect(&copts, true);
	if (conn == NULL)
		return ES_EXIT_ERROR;
	res = es_query(conn, json ?
				   "SELECT pg_catalog.row_to_json(r) FROM event_store.es_append($1::pg_catalog.text, "
				   "$2::pg_catalog.int8, $3::pg_catalog.text, $4::pg_catalog.jsonb, "
				   "$5::pg_catalog.jsonb, $6::pg_catalog.uuid) r" :
				   "SELECT r.stream, r.first_version, r.last_version, r.first_position, r.last_position "
				   "FROM event_store.es_append($1::pg_catalog.text, "
				   "$2::pg_catalog.int8, $3::pg_catalog.text, $4::pg_catalog.jsonb, "
				   "$5::pg_catalog.jsonb, $6::pg_catalog.uuid) r",
				   6, params);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		if (json)
			printf("%s\n", PQgetvalue(res, 0, 0));
		else
			es_print_name_values(res, 0);
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
