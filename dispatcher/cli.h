/*
 * cli.h - the pgpushd command line: commands, flags, --help text.
 *
 * Pure: argv (and an environment lookup the caller supplies) in, a filled
 * struct cli_opts or an error message out; nothing is printed, nothing
 * exits.  Two tables in cli.c drive everything: the commands and the
 * flags.  Each flag row names its option, short letter, argument, value
 * type, the field of struct cli_opts it sets, an environment variable and
 * a default, and its help text; the parser, the defaults and `--help` all
 * read the same rows, so a new flag is one row plus one field.
 */
#ifndef PGPUSH_CLI_H
#define PGPUSH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "base/log.h"

#define PGPUSH_VERSION "0.1.0"

/*
 * The one place for the defaults of `pgpushd run`: cli.c's flag table
 * applies them and --help prints them (as text, through CLI_STR), so the
 * two cannot disagree; other modules that need a fallback (the HTTP
 * bridge's timeouts) name these too.  Plain decimal literals only, no
 * parentheses or arithmetic: they are stringified for --help.
 */
#define PGPUSH_DEFAULT_LOG_LEVEL "info"
#define PGPUSH_DEFAULT_BATCH_SIZE 500		/* queue rows per claim */
#define PGPUSH_DEFAULT_POLL_INTERVAL_MS 1000
#define PGPUSH_DEFAULT_LEASE_SECONDS 120
#define PGPUSH_DEFAULT_ACK_INTERVAL_MS 5
#define PGPUSH_DEFAULT_STATS_INTERVAL_MS 2000
#define PGPUSH_DEFAULT_HEARTBEAT_INTERVAL_MS 2000
#define PGPUSH_DEFAULT_CONNECT_TIMEOUT_MS 5000	/* provider connect */
#define PGPUSH_DEFAULT_REQUEST_TIMEOUT_MS 10000	/* provider request */
#define PGPUSH_DEFAULT_REBUILD_AFTER_MS 120000
#define PGPUSH_DEFAULT_DRAIN_TIMEOUT_MS 3000
#define PGPUSH_DEFAULT_MAX_HOST_CONNECTIONS 4	/* per provider host */
#define PGPUSH_DEFAULT_HTTP_THREADS 2
#define PGPUSH_DEFAULT_H2_DIRECT 1

/* A macro's value as a string literal: CLI_STR(500) is "500". */
#define CLI_STR(x) CLI_STR_(x)
#define CLI_STR_(x) #x

/* Process exit codes. */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,
	CLI_EXIT_USAGE = 2
};

enum cli_command {
	CLI_COMMAND_NONE,
	CLI_COMMAND_MIGRATE,
	CLI_COMMAND_RUN
};

/*
 * What the command line asked for.  The strings point into argv, into the
 * environment or into static defaults: they are not owned and stay valid
 * as long as those do.
 */
struct cli_opts {
	enum cli_command command;
	const char *conninfo;		/* --db; "" lets libpq read PG* */
	const char *migrations_dir;	/* --migrations-dir */
	enum log_level log_level;	/* --log-level */
	int help;			/* -h / --help */
	int version;			/* -V / --version */
	/* run: tuning */
	int batch_size;			/* --batch-size */
	int poll_interval_ms;		/* --poll-interval-ms */
	int lease_seconds;		/* --lease-seconds */
	int ack_interval_ms;		/* --ack-interval-ms */
	int stats_interval_ms;		/* --stats-interval-ms */
	int heartbeat_interval_ms;	/* --heartbeat-interval-ms */
	int connect_timeout_ms;		/* --connect-timeout-ms */
	int request_timeout_ms;		/* --request-timeout-ms */
	int drain_timeout_ms;		/* --drain-timeout-ms */
	int rebuild_after_ms;		/* --rebuild-after-ms */
	int max_host_connections;	/* --max-host-connections */
	int http_threads;		/* --http-threads */
	int h2_direct;			/* --h2-direct */
	const char *metrics_listen;	/* --metrics-listen; "": off */
};

/* Looks up an environment variable; NULL when unset. */
typedef const char *(*cli_getenv_fn)(const char *name);

/*
 * Fill *opts from argv[1..argc-1]: first every flag's default, then any
 * environment variable the flag row names (looked up with `getenv_fn`,
 * which may be NULL to ignore the environment), then the command line.
 * Flags go before or after the command, as `--flag VALUE` or
 * `--flag=VALUE`; `--` ends the flags.  With -h or -V no command is needed.
 *
 * Returns 0, or -EINVAL with a one-line message in `err` (unknown command
 * or flag, missing or bad value, missing command, extra argument).
 */
int cli_parse_args(struct cli_opts *opts, int argc, char *const argv[],
		   cli_getenv_fn getenv_fn, char *err, size_t errlen);

/*
 * Write the --help text, listing every command and every flag row with
 * its argument, help, environment variable and default, to `out`.
 * `prog` is the program name shown in the usage line.  Returns 0, or -EIO
 * when writing failed.
 */
int cli_write_help(FILE *out, const char *prog);

/*
 * Call `fn` once per flag row with its long name ("--db"), its short name
 * ('h', or 0) and its argument name ("CONNINFO", or NULL); lets tests check
 * that the help text lists every row.
 */
void cli_each_flag(void (*fn)(void *arg, const char *name, char short_name,
			      const char *metavar),
		   void *arg);

/*
 * Call `fn` once per command with its name ("migrate").
 */
void cli_each_command(void (*fn)(void *arg, const char *name), void *arg);

#endif
