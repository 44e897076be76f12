/*-------------------------------------------------------------------------
 *
 * esctl.h
 *	  The operators' command-line tool of event_store: what the commands
 *	  share (options, connection, queries, output).
 *
 * Every statement is sent with PQexecParams: values travel as parameters,
 * never inside the SQL text, and every name is schema-qualified.  A new
 * connection sets search_path to "pg_catalog, pg_temp", so nothing a role
 * creates elsewhere can stand in for an operator or a type (docs/esctl.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESCTL_H
#define ESCTL_H

#include <stdbool.h>
#include <stdio.h>

#include "libpq-fe.h"

#if defined(__GNUC__) || defined(__clang__)
#define ES_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ES_PRINTF(f, a)
#endif

/* exit codes (docs/esctl.md) */
#define ES_EXIT_OK			0
#define ES_EXIT_ERROR		1	/* connection, SQL, a faulted replay */
#define ES_EXIT_USAGE		2	/* bad options or arguments */
#define ES_EXIT_DIFFERENT	3	/* verify found differences */

/* long option values that have no short form */
#define ES_OPT_HELP			1000
#define ES_OPT_FIRST_OWN	1001

/* the connection options every command takes */
typedef struct EsConnOptions
{
	const char *dbname;			/* -d: a database name, a conninfo string or
								 * a URI */
	const char *host;			/* -h */
	const char *port;			/* -p */
	const char *user;			/* -U */
} EsConnOptions;

/* short options and getopt_long entries of the connection options */
#define ES_CONN_SHORTOPTS "d:h:p:U:"
#define ES_CONN_LONGOPTS \
	{"dbname", required_argument, NULL, 'd'}, \
	{"host", required_argument, NULL, 'h'}, \
	{"port", required_argument, NULL, 'p'}, \
	{"username", required_argument, NULL, 'U'}, \
	{"help", no_argument, NULL, ES_OPT_HELP}

/* the connect timeout (s) unless PGCONNECT_TIMEOUT or the conninfo sets one */
#define ES_CONNECT_TIMEOUT	"10"

extern const char *progname;

/* set by SIGINT or SIGTERM in the commands that wait */
extern volatile int es_stop_requested;

/* the commands: argv[0] is "esctl COMMAND"; each returns an exit code */
extern int	es_cmd_tail(int argc, char **argv);
extern int	es_cmd_stats(int argc, char **argv);
extern int	es_cmd_projections(int argc, char **argv);
extern int	es_cmd_replay(int argc, char **argv);
extern int	es_cmd_verify(int argc, char **argv);
extern int	es_cmd_append(int argc, char **argv);

/* esctl.c */
extern bool es_conn_option(EsConnOptions *opts, int c, const char *arg);
extern void es_conn_options_help(void);
extern int	es_usage_error(const char *command, const char *fmt,...)
			ES_PRINTF(2, 3);
extern void es_catch_stop_signals(void);

/* common.c */
extern PGconn *es_connect(const EsConnOptions *opts, bool report);
extern bool es_connection_lost(PGconn *conn, const PGresult *res);
extern PGresult *es_query(PGconn *conn, const char *sql,
						  int nparams, const char *const *params);
extern bool es_command(PGconn *conn, const char *sql,
					   int nparams, const char *const *params);
extern void es_report_result(const PGresult *res);
extern void es_error(const char *fmt,...) ES_PRINTF(1, 2);
extern char *es_strdup(const char *s);
extern bool es_parse_int64(const char *s, long long *value);
extern void es_print_escaped(FILE *out, const char *s);
extern void es_sleep_ms(int ms);
extern char *es_text_array(const char *const *items, int n);
extern void es_print_name_values(PGresult *res, int row);
extern void es_print_table(PGresult *res);

#endif							/* ESCTL_H */
