/*-------------------------------------------------------------------------
 *
 * esctl.c
 *	  The operators' command-line tool of event_store: the commands, the
 *	  top-level options, the options every command shares.
 *
 *	  esctl COMMAND [OPTION]... [ARGUMENT]...
 *
 * docs/esctl.md describes every command, option and exit code.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "esctl.h"

#ifndef ES_VERSION
#define ES_VERSION "unknown"
#endif

const char *progname = "esctl";
volatile int es_stop_requested = 0;

typedef struct EsCommand
{
	const char *name;
	int			(*run) (int argc, char **argv);
	const char *summary;
} EsCommand;

static const EsCommand commands[] = {
	{"tail", es_cmd_tail, "print events of the gap-safe feed, and follow it"},
	{"stats", es_cmd_stats, "print the store's counters (es_stats)"},
	{"projections", es_cmd_projections, "list the projections and their lag"},
	{"replay", es_cmd_replay, "rebuild a projection and follow it to its target"},
	{"verify", es_cmd_verify, "rebuild a projection in a rolled-back transaction and compare"},
	{"append", es_cmd_append, "append one event to a stream"},
	{NULL, NULL, NULL}
};

static void
usage(void)
{
	const EsCommand *c;

	printf("%s is the command-line tool of the event_store extension.\n\n", progname);
	printf("Usage:\n");
	printf("  %s COMMAND [OPTION]... [ARGUMENT]...\n", progname);
	printf("  %s help COMMAND\n\n", progname);
	printf("Commands:\n");
	for (c = commands; c->name; c++)
		printf("  %-12s %s\n", c->name, c->summary);
	printf("\nOptions:\n");
	printf("  -V, --version  print the version, then exit\n");
	printf("  -?, --help     show this help, then exit\n\n");
	printf("\"%s COMMAND --help\" shows a command's options.\n\n", progname);
	printf("Exit status: 0 done, 1 error (connection, SQL, a faulted replay),\n");
	printf("2 bad usage, 3 verify found differences.\n");
	printf("Connection: the PG* environment variables, and each command's -d, -h, -p, -U.\n");
}

/* The connection options' lines of a command's help. */
void
es_conn_options_help(void)
{
	printf("\nConnection options:\n");
	printf("  -d, --dbname=CONNINFO    database name, conninfo string or URI\n");
	printf("  -h, --host=HOSTNAME      database server host or socket directory\n");
	printf("  -p, --port=PORT          database server port\n");
	printf("  -U, --username=USERNAME  user name to connect as\n");
	printf("  (and the PG* environment variables: PGHOST, PGDATABASE, PGSERVICE, ...)\n");
}

/* A connection option of a command's getopt_long; false for any other. */
bool
es_conn_option(EsConnOptions *opts, int c, const char *arg)
{
	switch (c)
	{
		case 'd':
			opts->dbname = arg;
			return true;
		case 'h':
			opts->host = arg;
			return true;
		case 'p':
			opts->port = arg;
			return true;
		case 'U':
			opts->user = arg;
			return true;
		default:
			return false;
	}
}

/*
 * Report bad usage of a command (fmt may be NULL when getopt already said
 * what is wrong) and return the usage exit code.
 */
int
es_usage_error(const char *command, const char *fmt,...)
{
	if (fmt)
	{
		va_list		ap;

		fprintf(stderr, "%s: ", command);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try \"%s --help\" for more information.\n", command);
	return ES_EXIT_USAGE;
}

static void
es_stop_handler(int signo)
{
	(void) signo;
	es_stop_requested = 1;
}

/*
 * SIGINT and SIGTERM end a waiting command at its next step (a clean
 * exit, 0), without SA_RESTART so that a wait is cut short.
 */
void
es_catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = es_stop_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static const EsCommand *
find_command(const char *name)
{
	const EsCommand *c;

	for (c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Run a command with its own argument vector, argv[0] "esctl COMMAND". */
static int
run_command(const EsCommand *cmd, int argc, char **argv)
{
	char	  **args;
	char		name[64];
	int			rc;
	int			i;

	args = malloc(sizeof(char *) * (argc + 1));
	if (args == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return ES_EXIT_ERROR;
	}
	snprintf(name, sizeof(name), "%s %s", progname, cmd->name);
	args[0] = name;
	for (i = 1; i < argc; i++)
		args[i] = argv[i];
	args[argc] = NULL;
	rc = cmd->run(argc, args);
	free(args);
	/* what could not be written is an error, whatever the command did */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc != ES_EXIT_ERROR)
	{
		fprintf(stderr, "%s: could not write the output: %s\n", progname, strerror(errno));
		rc = ES_EXIT_ERROR;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	const EsCommand *cmd;

	if (argc < 2)
	{
		fprintf(stderr, "%s: no command given\n", progname);
		fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
		return ES_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0)
	{
		usage();
		return ES_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
	{
		printf("%s (event_store) %s\n", progname, ES_VERSION);
		return ES_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0)
	{
		char	   *help_argv[3];

		if (argc == 2)
		{
			usage();
			return ES_EXIT_OK;
		}
		cmd = find_command(argv[2]);
		if (cmd == NULL)
		{
			fprintf(stderr, "%s: unknown command \"%s\"\n", progname, argv[2]);
			fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
			return ES_EXIT_USAGE;
		}
		if (argc > 3)
		{
			fprintf(stderr, "%s: unexpected argument \"%s\"\n", progname, argv[3]);
			fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
			return ES_EXIT_USAGE;
		}
		help_argv[0] = argv[0];
		help_argv[1] = "--help";
		help_argv[2] = NULL;
		return run_command(cmd, 2, help_argv);
	}
	cmd = find_command(argv[1]);
	if (cmd == NULL)
	{
		if (argv[1][0] == '-')
			fprintf(stderr, "%s: options go after the command: \"%s\"\n", progname, argv[1]);
		else
			fprintf(stderr, "%s: unknown command \"%s\"\n", progname, argv[1]);
		fprintf(stderr, "Try \"%s --help\" for more information.\n", progname);
		return ES_EXIT_USAGE;
	}
	/* the command's vector: argv[1] becomes its argv[0] */
	return run_command(cmd, argc - 1, argv + 1);
}
