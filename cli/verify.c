/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  esctl verify: rebuild a projection from the beginning up to its live
 *	  checkpoint in one transaction that is rolled back, and report every
 *	  row in which the rebuilt read model differs from the live one.
 *
 * The steps, in one READ COMMITTED transaction (docs/esctl.md):
 *
 *	1. lock the projection's row (SELECT ... FOR UPDATE): the server's
 *	   worker skips a locked projection, so its checkpoint C and its read
 *	   model stay as they are until the end; a page in progress is waited
 *	   for, and the next statement's snapshot sees its commit;
 *	2. copy each read-model table, each row as its text, into a temporary
 *	   table;
 *	3. es_rebuild_projection(name, 0): its reset handler empties the read
 *	   model (without one, esctl empties the tables with DELETE);
 *	4. es_run_projection(name, pages, C) until the checkpoint is at C: the
 *	   handler applies every event up to C again, as the projection's owner;
 *	5. compare each table with its copy both ways (EXCEPT ALL): rows of the
 *	   rebuild missing from the live table, rows of the live table the
 *	   rebuild does not have;
 *	6. ROLLBACK: nothing of the live state changes.
 *
 *-------------------------------------------------------------------------
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "esctl.h"

#define VERIFY_MAX_TABLES	100
#define VERIFY_PAGES		"100"	/* pages per es_run_projection */
#define VERIFY_MAX_CALLS	100000

typedef struct VerifyTable
{
	char	   *name;			/* quoted by the server: schema.table */
	bool		deletable;		/* a table (not a view): emptied if the
								 * projection has no reset handler */
} VerifyTable;

static void
verify_help(const char *name)
{
	printf("%s rebuilds a projection from the beginning up to its live checkpoint\n", name);
	printf("in a transaction that is rolled back, and prints every row in which the\n");
	printf("rebuilt read model differs from the live one.  Nothing of the live state\n");
	printf("changes; the projection waits while it runs.\n\n");
	printf("Usage:\n  %s NAME [OPTION]...\n\n", name);
	printf("Options:\n");
	printf("      --table=SCHEMA.TABLE  a table of the read model (repeatable); default:\n");
	printf("                            every table of the handler's schema\n");
	printf("      --max-rows=N          print at most N differing rows per table and side\n");
	printf("                            (default 20; the counts are always complete)\n");
	printf("      --help                show this help, then exit\n");
	es_conn_options_help();
	printf("\nRun it as the projection's owner (or a member of its role) with SELECT on the\n");
	printf("tables, TEMP on the database (and DELETE on the tables if the projection has no\n");
	printf("reset handler): docs/esctl.md.\n");
	printf("Exit status: 0 the same, 3 differences found, 1 error, 2 bad usage.\n");
}

/* Run a statement whose rows do not matter; false (reported) on error. */
static bool
verify_run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return es_command(conn, sql, nparams, params);
}

/* One row, one column; NULL (reported) on error.  PQclear the result. */
static PGresult *
verify_row(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = es_query(conn, sql, nparams, params);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			es_error("unexpected result: %d rows", PQntuples(res));
		else
			es_report_result(res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* On an error: free the names found so far; -1. */
static int
verify_tables_fail(VerifyTable *tables, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		free(tables[i].name);
	return -1;
}

/* The tables: those named, or every table of the handler's schema. */
static int
verify_tables(PGconn *conn, const char *const *named, int nnamed, const char *schema,
			  VerifyTable *tables)
{
	PGresult   *res;
	int			n = 0;
	int			i;

	if (nnamed > 0)
	{
		for (i = 0; i < nnamed; i++)
		{
			const char *params[1] = {named[i]};

			res = es_query(conn,
						   "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
						   "c.relkind IN ('r', 'p') "
						   "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
						   "WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p')",
						   1, params);
			if (PQresultStatus(res) != PGRES_TUPLES_OK)
			{
				es_report_result(res);
				PQclear(res);
				return verify_tables_fail(tables, n);
			}
			if (PQntuples(res) != 1)
			{
				es_error("no table \"%s\" (name a plain or partitioned table as SCHEMA.TABLE: reading a view would run its functions as you)", named[i]);
				PQclear(res);
				return verify_tables_fail(tables, n);
			}
			tables[n].name = es_strdup(PQgetvalue(res, 0, 0));
			tables[n].deletable = PQgetvalue(res, 0, 1)[0] == 't';
			n++;
			PQclear(res);
		}
		return n;
	}

	if (schema == NULL)
	{
		es_error("the handler's schema is unknown: name the tables with --table");
		return -1;
	}
	{
		const char *params[1] = {schema};

		res = es_query(conn,
					   "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) "
					   "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					   "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
					   "ORDER BY c.relname COLLATE \"C\"",
					   1, params);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		es_report_result(res);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 0)
	{
		es_error("schema \"%s\" of the handler has no table: name them with --table", schema);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) > VERIFY_MAX_TABLES)
	{
		es_error("schema \"%s\" has more than %d tables: name them with --table", schema,
				 VERIFY_MAX_TABLES);
		PQclear(res);
		return -1;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		tables[n].name = es_strdup(PQgetvalue(res, i, 0));
		tables[n].deletable = true;
		n++;
	}
	PQclear(res);
	return n;
}

/*
 * Run the rebuild up to position C.  True when the checkpoint got there (or
 * nothing more up to C was left to apply); false, reported, if a page
 * failed for good or the rebuild went past C.
 */
static bool
verify_rebuild(PGconn *conn, const char *name, const char *checkpoint)
{
	const char *params[3] = {name, VERIFY_PAGES, checkpoint};
	PGresult   *res;
	bool		upto;
	long long	c,
				prev = -1;
	int			calls;

	if (!es_parse_int64(checkpoint, &c))
		return false;
	/* es_run_projection(name, pages, upto) applies nothing above upto */
	res = verify_row(conn,
					 "SELECT pg_catalog.to_regprocedure('event_store.es_run_projection(text,integer,bigint)') IS NOT NULL",
					 0, NULL);
	if (res == NULL)
		return false;
	upto = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);

	for (calls = 0; calls < VERIFY_MAX_CALLS; calls++)
	{
		long long	consumed = 0,
					pos = 0;
		bool		waiting;

		res = verify_row(conn, upto ?
						 "SELECT event_store.es_run_projection($1::pg_catalog.text, $2::pg_catalog.int4, $3::pg_catalog.int8)" :
						 "SELECT event_store.es_run_projection($1::pg_catalog.text, $2::pg_catalog.int4)",
						 upto ? 3 : 2, params);
		if (res == NULL)
			return false;
		es_parse_int64(PQgetvalue(res, 0, 0), &consumed);
		PQclear(res);

		res = verify_row(conn,
						 "SELECT j.position, j.state, j.retry_at IS NOT NULL, j.error_sqlstate, "
						 "j.error_message, j.error_position "
						 "FROM event_store.projections j WHERE j.name = $1",
						 1, params);
		if (res == NULL)
			return false;
		es_parse_int64(PQgetvalue(res, 0, 0), &pos);
		if (pos > c)
		{
			es_error("the rebuild went past the live checkpoint %lld (to %lld): this extension's "
					 "es_run_projection has no upto argument and events were appended meanwhile; "
					 "try again", c, pos);
			PQclear(res);
			return false;
		}
		if (pos == c)
		{
			PQclear(res);
			return true;
		}
		if (strcmp(PQgetvalue(res, 0, 1), "running") != 0)
		{
			es_error("the rebuild stopped: the projection faulted at position %lld on the event "
					 "at position %s: %s: %s", pos, PQgetvalue(res, 0, 5),
					 PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
			PQclear(res);
			return false;
		}
		waiting = PQgetvalue(res, 0, 2)[0] == 't';
		PQclear(res);
		if (consumed > 0 || pos != prev)
		{
			prev = pos;
			continue;
		}
		/* a failed page waits for its backoff: try it now (rolled back too) */
		if (waiting)
		{
			if (!verify_run(conn, "SELECT event_store.es_retry_projection($1::pg_catalog.text)", 1, params))
				return false;
			continue;
		}
		/* nothing more up to C passes the projection's filter */
		return true;
	}
	es_error("the rebuild did not reach the live checkpoint %lld", c);
	return false;
}

/*
 * The rows on one side of a table's difference, at most max_rows of them,
 * with their count in *count; NULL (reported) on error.  rebuilt_first:
 * rows of the rebuild that the live copy lacks.
 */
static PGresult *
verify_side(PGconn *conn, const VerifyTable *t, int i, bool rebuilt_first,
			const char *max_rows, long long *count)
{
	char	   *sql;
	size_t		len;
	const char *params[1] = {max_rows};
	PGresult   *res;

	*count = 0;
	len = strlen(t->name) + 400;
	sql = malloc(len);
	if (sql == NULL)
	{
		es_error("out of memory");
		return NULL;
	}
	if (rebuilt_first)
		snprintf(sql, len,
				 "SELECT d.r, pg_catalog.count(*) OVER () FROM ("
				 "SELECT (t.*)::pg_catalog.text AS r FROM %s t "
				 "EXCEPT ALL SELECT l.r FROM pg_temp.esctl_live_%d l) d "
				 "ORDER BY d.r COLLATE \"C\" LIMIT pg_catalog.int8larger($1::pg_catalog.int8, 1)",
				 t->name, i);
	else
		snprintf(sql, len,
				 "SELECT d.r, pg_catalog.count(*) OVER () FROM ("
				 "SELECT l.r FROM pg_temp.esctl_live_%d l "
				 "EXCEPT ALL SELECT (t.*)::pg_catalog.text AS r FROM %s t) d "
				 "ORDER BY d.r COLLATE \"C\" LIMIT pg_catalog.int8larger($1::pg_catalog.int8, 1)",
				 i, t->name);
	res = es_query(conn, sql, 1, params);
	free(sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		es_report_result(res);
		PQclear(res);
		return NULL;
	}
	if (PQntuples(res) > 0)
		es_parse_int64(PQgetvalue(res, 0, 1), count);
	return res;
}

/* Print the rows of one side (a result of verify_side), then clear it. */
static void
verify_print_side(PGresult *res, const char *label, long long count, long long max_rows)
{
	int			r;
	int			shown = 0;

	for (r = 0; r < PQntuples(res) && r < max_rows; r++, shown++)
	{
		printf("  %-7s ", label);
		es_print_escaped(stdout, PQgetvalue(res, r, 0));
		putchar('\n');
	}
	if (count > shown)
		printf("  ... and %lld more %s rows\n", count - shown, label);
	PQclear(res);
}

int
es_cmd_verify(int argc, char **argv)
{
	static const struct option long_options[] = {
		ES_CONN_LONGOPTS,
		{"table", required_argument, NULL, ES_OPT_FIRST_OWN},
		{"max-rows", required_argument, NULL, ES_OPT_FIRST_OWN + 1},
		{NULL, 0, NULL, 0}
	};
	EsConnOptions copts;
	const char *named[VERIFY_MAX_TABLES];
	int			nnamed = 0;
	VerifyTable tables[VERIFY_MAX_TABLES];
	int			ntables = 0;
	const char *max_rows = "20";
	long long	max_rows_n = 20;
	const char *name;
	const char *params[2];
	char	   *checkpoint = NULL;
	char	   *schema = NULL;
	bool		has_reset;
	bool		superuser;
	long long	v;
	long long	differences = 0;
	int			differing_tables = 0;
	PGconn	   *conn;
	PGresult   *res;
	int			rc = ES_EXIT_ERROR;
	int			i,
				c;

	memset(&copts, 0, sizeof(copts));
	while ((c = getopt_long(argc, argv, ES_CONN_SHORTOPTS, long_options, NULL)) != -1)
	{
		if (es_conn_option(&copts, c, optarg))
			continue;
		switch (c)
		{
			case ES_OPT_HELP:
				verify_help(argv[0]);
				return ES_EXIT_OK;
			case ES_OPT_FIRST_OWN:
				if (nnamed >= VERIFY_MAX_TABLES)
					return es_usage_error(argv[0], "at most %d --table options", VERIFY_MAX_TABLES);
				named[nnamed++] = optarg;
				break;
			case ES_OPT_FIRST_OWN + 1:
				if (!es_parse_int64(optarg, &v) || v < 0)
					return es_usage_error(argv[0], "--max-rows must be 0 or more: \"%s\"", optarg);
				max_rows = optarg;
				max_rows_n = v;
				break;
			default:
				return es_usage_error(argv[0], NULL);
		}
	}
	if (optind >= argc)
		return es_usage_error(argv[0], "no projection given");
	if (optind + 1 < argc)
		return es_usage_error(argv[0], "unexpected argument \"%s\"", argv[optind + 1]);
	name = argv[optind];
	params[0] = name;

	conn = es_connect(&copts, true);
	if (conn == NULL)
		return ES_EXIT_ERROR;
	if (!verify_run(conn, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL))
		goto done;

	/* 1. the projection's row, locked: its checkpoint C */
	res = es_query(conn,
				   "SELECT j.position, j.reset_handler IS NOT NULL, n.nspname, "
				   "pg_catalog.current_setting('is_superuser') OPERATOR(pg_catalog.=) 'on' "
				   "FROM event_store.projections j "
				   "LEFT JOIN pg_catalog.pg_proc f ON f.oid = pg_catalog.to_regprocedure(j.handler) "
				   "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = f.pronamespace "
				   "WHERE j.name = $1::pg_catalog.text FOR UPDATE OF j",
				   1, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		es_report_result(res);
		PQclear(res);
		goto done;
	}
	if (PQntuples(res) != 1)
	{
		es_error("projection \"%s\" does not exist (or belongs to a role you are not a member of)", name);
		PQclear(res);
		goto done;
	}
	checkpoint = es_strdup(PQgetvalue(res, 0, 0));
	has_reset = PQgetvalue(res, 0, 1)[0] == 't';
	schema = PQgetisnull(res, 0, 2) ? NULL : es_strdup(PQgetvalue(res, 0, 2));
	superuser = PQgetvalue(res, 0, 3)[0] == 't';
	PQclear(res);

	/*
	 * Without a reset handler the tables are emptied by esctl's own DELETE,
	 * which fires their owner's triggers as the caller: not as a superuser
	 * (the reset handler runs as the projection's owner, restricted).
	 */
	if (!has_reset && superuser)
	{
		es_error("projection \"%s\" has no reset handler: verify empties its tables itself, which would run their triggers as a superuser", name);
		fprintf(stderr, "HINT:  Connect as the projection's owner (-U), or register the projection with a reset handler.\n");
		goto done;
	}

	ntables = verify_tables(conn, named, nnamed, schema, tables);
	if (ntables < 0)
	{
		ntables = 0;
		goto done;
	}

	/* 2. the live tables, each row as its text */
	for (i = 0; i < ntables; i++)
	{
		char		sql[1200];

		snprintf(sql, sizeof(sql),
				 "CREATE TEMPORARY TABLE pg_temp.esctl_live_%d ON COMMIT DROP AS "
				 "SELECT (t.*)::pg_catalog.text AS r FROM %s t", i, tables[i].name);
		if (strlen(tables[i].name) > 1000 || !verify_run(conn, sql, 0, NULL))
			goto done;
	}

	/* 3. the rewind, and the reset handler */
	if (!verify_run(conn, "SELECT event_store.es_rebuild_projection($1::pg_catalog.text, 0::pg_catalog.int8)",
					1, params))
		goto done;
	if (!has_reset)
	{
		es_error("projection \"%s\" has no reset handler: emptying the tables (DELETE, rolled back)", name);
		for (i = 0; i < ntables; i++)
		{
			char		sql[1100];

			if (!tables[i].deletable)
				continue;
			snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i].name);
			if (!verify_run(conn, sql, 0, NULL))
				goto done;
		}
	}

	/* 4. the replay up to C */
	if (!verify_rebuild(conn, name, checkpoint))
		goto done;

	/* 5. the differences */
	printf("%s: rebuilt from the beginning up to the live checkpoint %s (rolled back)\n",
		   name, checkpoint);
	for (i = 0; i < ntables; i++)
	{
		long long	missing,
					extra;
		PGresult   *mres,
				   *xres;

		mres = verify_side(conn, &tables[i], i, true, max_rows, &missing);
		if (mres == NULL)
			goto done;
		xres = verify_side(conn, &tables[i], i, false, max_rows, &extra);
		if (xres == NULL)
		{
			PQclear(mres);
			goto done;
		}
		if (missing == 0 && extra == 0)
			printf("%s: the same\n", tables[i].name);
		else
		{
			printf("%s: %lld missing (rows of the rebuild the live table lacks), %lld extra "
				   "(rows of the live table the rebuild lacks)\n",
				   tables[i].name, missing, extra);
			differing_tables++;
			differences += missing + extra;
		}
		verify_print_side(mres, "missing", missing, max_rows_n);
		verify_print_side(xres, "extra", extra, max_rows_n);
	}
	if (differences > 0)
	{
		printf("%s: %lld different rows in %d of the tables (tables: %d)\n", name, differences,
			   differing_tables, ntables);
		rc = ES_EXIT_DIFFERENT;
	}
	else
	{
		printf("%s: the read model matches the rebuild (tables: %d)\n", name, ntables);
		rc = ES_EXIT_OK;
	}

done:
	fflush(stdout);
	/* 6. nothing of it stays */
	if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
	{
		res = PQexec(conn, "ROLLBACK");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			es_report_result(res);
			rc = ES_EXIT_ERROR;
		}
		PQclear(res);
	}
	for (i = 0; i < ntables; i++)
		free(tables[i].name);
	free(checkpoint);
	free(schema);
	PQfinish(conn);
	return rc;
}
