/*-------------------------------------------------------------------------
 *
 * common.c
 *	  What the commands of esctl share: the connection, statements with
 *	  parameters, error reports, and the output helpers.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esctl.h"

/* The server's notices and warnings on stderr, after "esctl: ". */
static void
es_notice_processor(void *arg, const char *message)
{
	(void) arg;
	fprintf(stderr, "%s: %s", progname, message);
}

/*
 * Open a connection: the PG* environment variables, then -d (a database
 * name, a conninfo string or a URI: expanded), then -h, -p, -U, which win
 * over what -d says; a connect timeout of ES_CONNECT_TIMEOUT s by default,
 * the client encoding UTF8.  Then pin the session: search_path "pg_catalog,
 * pg_temp" (no object a role creates elsewhere resolves in our
 * statements) and an ISO date style (the text output).
 *
 * On failure NULL, and, when report is true, libpq's message on stderr.
 */
PGconn *
es_connect(const EsConnOptions *opts, bool report)
{
	const char *keywords[10];
	const char *values[10];
	int			n = 0;
	PGconn	   *conn;
	PGresult   *res;

	/*
	 * A server that accepts the connection and never answers ends the
	 * attempt after ES_CONNECT_TIMEOUT seconds, unless PGCONNECT_TIMEOUT or
	 * the conninfo (expanded after this) says otherwise.
	 */
	if (getenv("PGCONNECT_TIMEOUT") == NULL)
	{
		keywords[n] = "connect_timeout";
		values[n++] = ES_CONNECT_TIMEOUT;
	}
	/* dbname next: the options after it override what it expands to */
	if (opts->dbname)
	{
		keywords[n] = "dbname";
		values[n++] = opts->dbname;
	}
	if (opts->host)
	{
		keywords[n] = "host";
		values[n++] = opts->host;
	}
	if (opts->port)
	{
		keywords[n] = "port";
		values[n++] = opts->port;
	}
	if (opts->user)
	{
		keywords[n] = "user";
		values[n++] = opts->user;
	}
	keywords[n] = "fallback_application_name";
	values[n++] = progname;
	/* what esctl prints (--json above all) is UTF-8, whatever PGCLIENTENCODING says */
	keywords[n] = "client_encoding";
	values[n++] = "UTF8";
	keywords[n] = NULL;
	values[n] = NULL;

	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL)
	{
		if (report)
			es_error("could not connect: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		if (report)
			fprintf(stderr, "%s: could not connect: %s", progname, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}

	PQsetNoticeProcessor(conn, es_notice_processor, NULL);
	res = PQexec(conn,
				 "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), "
				 "pg_catalog.set_config('datestyle', 'ISO, YMD', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (report)
			es_report_result(res);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/*
 * Is the connection gone (the server restarted or crashed, the backend was
 * terminated, the network failed)?  Then a command that follows the store
 * reconnects; any other error ends it.
 */
bool
es_connection_lost(PGconn *conn, const PGresult *res)
{
	const char *state;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return true;
	if (res == NULL)
		return false;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state == NULL)
		return false;
	/* connection exceptions; admin, crash shutdown; cannot connect now */
	return strncmp(state, "08", 2) == 0 ||
		strcmp(state, "57P01") == 0 ||
		strcmp(state, "57P02") == 0 ||
		strcmp(state, "57P03") == 0;
}

/*
 * Run a statement with text parameters and return its result whatever
 * its status; the caller checks it (PQresultStatus) and clears it.  NULL
 * only when libpq could not allocate one.
 */
PGresult *
es_query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
}

/* Run a statement that returns no rows that matter; false (reported) on error. */
bool
es_command(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = es_query(conn, sql, nparams, params);
	ExecStatusType st = PQresultStatus(res);
	bool		ok = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);

	if (!ok)
		es_report_result(res);
	PQclear(res);
	return ok;
}

/*
 * Report a failed statement on stderr: libpq's message (severity, primary
 * message, DETAIL, HINT, CONTEXT) and its SQLSTATE on a line of its own,
 * for scripts.
 */
void
es_report_result(const PGresult *res)
{
	const char *msg;
	const char *state;

	if (res == NULL)
	{
		es_error("out of memory");
		return;
	}
	msg = PQresultErrorMessage(res);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (msg == NULL || msg[0] == '\0')
		msg = "unexpected result from the server\n";
	fprintf(stderr, "%s: %s", progname, msg);
	if (msg[strlen(msg) - 1] != '\n')
		fputc('\n', stderr);
	if (state)
		fprintf(stderr, "%s: SQLSTATE %s\n", progname, state);
}

/* A message of esctl's own on stderr, after "esctl: ". */
void
es_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* strdup, or exit 1 when out of memory. */
char *
es_strdup(const char *s)
{
	char	   *copy = strdup(s);

	if (copy == NULL)
	{
		es_error("out of memory");
		exit(ES_EXIT_ERROR);
	}
	return copy;
}

/* A whole decimal integer (a bigint); false for anything else. */
bool
es_parse_int64(const char *s, long long *value)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s)
		return false;
	*value = v;
	return true;
}

/*
 * Text for one line: backslash, tab, newline and carriage return escaped
 * as COPY's text format does, so that every event stays on one line and
 * its fields split on tabs.
 */
void
es_print_escaped(FILE *out, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '\\':
				fputs("\\\\", out);
				break;
			case '\t':
				fputs("\\t", out);
				break;
			case '\n':
				fputs("\\n", out);
				break;
			case '\r':
				fputs("\\r", out);
				break;
			default:
				fputc(*s, out);
		}
	}
}

/* Sleep, cut short by SIGINT or SIGTERM. */
void
es_sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	while (!es_stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * A text[] literal of the given strings, each element quoted, sent as a
 * parameter.  malloc'd; NULL when n is 0.
 */
char *
es_text_array(const char *const *items, int n)
{
	size_t		len = 3;
	char	   *buf;
	char	   *p;
	int			i;

	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++)
		len += 2 * strlen(items[i]) + 3;
	buf = malloc(len);
	if (buf == NULL)
	{
		es_error("out of memory");
		exit(ES_EXIT_ERROR);
	}
	p = buf;
	*p++ = '{';
	for (i = 0; i < n; i++)
	{
		const char *s;

		if (i > 0)
			*p++ = ',';
		*p++ = '"';
		for (s = items[i]; *s; s++)
		{
			if (*s == '"' || *s == '\\')
				*p++ = '\\';
			*p++ = *s;
		}
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return buf;
}

/* One row as "name: value" lines, the names aligned; NULL prints nothing. */
void
es_print_name_values(PGresult *res, int row)
{
	int			ncols = PQnfields(res);
	int			width = 0;
	int			c;

	for (c = 0; c < ncols; c++)
	{
		int			w = (int) strlen(PQfname(res, c)) + 1;

		if (w > width)
			width = w;
	}
	for (c = 0; c < ncols; c++)
	{
		char		label[200];

		snprintf(label, sizeof(label), "%s:", PQfname(res, c));
		if (PQgetisnull(res, row, c))
			printf("%s\n", label);
		else
		{
			printf("%-*s ", width, label);
			es_print_escaped(stdout, PQgetvalue(res, row, c));
			putchar('\n');
		}
	}
}

/* The display width of a UTF-8 string, one column per character. */
static int
es_width(const char *s)
{
	int			w = 0;

	for (; *s; s++)
		if ((*s & 0xC0) != 0x80)
			w++;
	return w;
}

/*
 * Print a value of a table cell, padded to width (numbers on the right),
 * control characters as spaces.
 */
static void
es_print_cell(const char *s, int width, bool right, bool last)
{
	int			w = es_width(s);
	const char *p;

	if (right)
		for (; w < width; w++)
			putchar(' ');
	for (p = s; *p; p++)
		putchar((unsigned char) *p < 0x20 ? ' ' : *p);
	if (!last)
		for (; w < width; w++)
			putchar(' ');
}

/* Is a column of this type a number (int2, int4, int8, float4, float8, numeric)? */
static bool
es_numeric_type(Oid type)
{
	return type == 20 || type == 21 || type == 23 || type == 700 || type == 701 || type == 1700;
}

/* A result as an aligned table: a header, a rule, the rows; NULL as blank. */
void
es_print_table(PGresult *res)
{
	int			ncols = PQnfields(res);
	int			nrows = PQntuples(res);
	int		   *width;
	int			r,
				c;

	width = calloc(ncols > 0 ? ncols : 1, sizeof(int));
	if (width == NULL)
	{
		es_error("out of memory");
		exit(ES_EXIT_ERROR);
	}
	for (c = 0; c < ncols; c++)
	{
		width[c] = es_width(PQfname(res, c));
		for (r = 0; r < nrows; r++)
		{
			int			w = es_width(PQgetvalue(res, r, c));

			if (w > width[c])
				width[c] = w;
		}
	}
	for (c = 0; c < ncols; c++)
	{
		if (c > 0)
			fputs(" | ", stdout);
		es_print_cell(PQfname(res, c), width[c], false, c == ncols - 1);
	}
	putchar('\n');
	for (c = 0; c < ncols; c++)
	{
		int			i;

		if (c > 0)
			fputs("-+-", stdout);
		for (i = 0; i < width[c]; i++)
			putchar('-');
	}
	putchar('\n');
	for (r = 0; r < nrows; r++)
	{
		for (c = 0; c < ncols; c++)
		{
			if (c > 0)
				fputs(" | ", stdout);
			es_print_cell(PQgetvalue(res, r, c), width[c],
						  es_numeric_type(PQftype(res, c)), c == ncols - 1);
		}
		putchar('\n');
	}
	free(width);
}
