/*
 * cli.c - the pgpushd command line (see cli.h).
 *
 * Two tables: cli_commands and cli_flags.  A flag row says how the flag is
 * spelled, what it takes, which struct cli_opts field it writes (by
 * offset), which environment variable and which default feed that field
 * when the flag is absent, and its help text.  Parsing applies, in order:
 * every row's default, the environment, then argv, each through the same
 * set_value(), so a default shown by --help is exactly what parsing
 * applies.  To add a tuning flag: add a field to struct cli_opts and a row
 * below (CLI_TYPE_INT checks the row's min..max range).
 */
#include "cli.h"

#include "base/buf.h"
#include "db/migrate.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum cli_type {
	CLI_TYPE_BOOL,		/* no argument; sets an int to 1 */
	CLI_TYPE_STRING,	/* const char * */
	CLI_TYPE_LOG_LEVEL,	/* enum log_level */
	CLI_TYPE_INT		/* int within [min, max] */
};

struct cli_flag {
	const char *name;	/* "--db" */
	char short_name;	/* 'h', or 0 for none */
	const char *metavar;	/* "CONNINFO"; NULL for CLI_TYPE_BOOL */
	enum cli_type type;
	size_t offset;		/* of the field in struct cli_opts */
	long min, max;		/* CLI_TYPE_INT only */
	const char *env;	/* environment variable, or NULL */
	const char *def;	/* default value as text, or NULL */
	const char *help;
};

struct cli_command_row {
	const char *name;
	enum cli_command command;
	const char *help;
};

#define OPT(field) offsetof(struct cli_opts, field)

static const struct cli_command_row cli_commands[] = {
	{ "migrate", CLI_COMMAND_MIGRATE,
	  "Apply the pending migrations of --migrations-dir in order, each "
	  "in its own transaction, and record them in "
	  "push.schema_migrations. Refuses to run, applying nothing, when an "
	  "applied migration's file was changed or removed: migrations are "
	  "forward-only, write a new one." },
	{ "run", CLI_COMMAND_RUN,
	  "Run the dispatcher (the default command): claim queued pushes, "
	  "send them, record the outcomes, until SIGTERM or SIGINT (which "
	  "drain in-flight work and exit 0). SIGHUP reloads apps and "
	  "credentials." },
};

static const struct cli_flag cli_flags[] = {
	{ "--db", 0, "CONNINFO", CLI_TYPE_STRING, OPT(conninfo), 0, 0,
	  NULL, "",
	  "libpq connection string or URI (e.g. \"host=/run/postgresql "
	  "dbname=push\"). Without it libpq uses PGHOST, PGPORT, "
	  "PGDATABASE, PGUSER, PGPASSWORD and the other PG* variables." },
	{ "--migrations-dir", 0, "DIR", CLI_TYPE_STRING, OPT(migrations_dir),
	  0, 0, "PGPUSH_MIGRATIONS_DIR", "",
	  "Directory of NNNN_name.sql migration files. Default: the "
	  "installed ones (../share/pgpush/migrations beside the binary, "
	  "else " PGPUSH_MIGRATIONS_INSTALLED "), or migrations/ of the "
	  "source tree when run as build/pgpushd." },
	{ "--log-level", 0, "LEVEL", CLI_TYPE_LOG_LEVEL, OPT(log_level), 0, 0,
	  NULL, PGPUSH_DEFAULT_LOG_LEVEL,
	  "Least severe events to log: debug, info, warn or error." },
	{ "--batch-size", 0, "N", CLI_TYPE_INT, OPT(batch_size), 1, 10000,
	  "PGPUSH_BATCH_SIZE", CLI_STR(PGPUSH_DEFAULT_BATCH_SIZE),
	  "run: most queue rows one claim takes for one pool." },
	{ "--poll-interval-ms", 0, "MS", CLI_TYPE_INT, OPT(poll_interval_ms),
	  50, 600000, "PGPUSH_POLL_INTERVAL_MS",
	  CLI_STR(PGPUSH_DEFAULT_POLL_INTERVAL_MS),
	  "run: look for due pushes at least this often (jittered), even "
	  "without a NOTIFY." },
	{ "--lease-seconds", 0, "S", CLI_TYPE_INT, OPT(lease_seconds), 5,
	  86400, "PGPUSH_LEASE_SECONDS",
	  CLI_STR(PGPUSH_DEFAULT_LEASE_SECONDS),
	  "run: how long a claimed row stays ours; after it another "
	  "dispatcher may take it." },
	{ "--ack-interval-ms", 0, "MS", CLI_TYPE_INT, OPT(ack_interval_ms), 1,
	  10000, "PGPUSH_ACK_INTERVAL_MS",
	  CLI_STR(PGPUSH_DEFAULT_ACK_INTERVAL_MS),
	  "run: outcomes are written back at least this often (and at once "
	  "when 1000 are waiting)." },
	{ "--stats-interval-ms", 0, "MS", CLI_TYPE_INT,
	  OPT(stats_interval_ms), 0, 600000, "PGPUSH_STATS_INTERVAL_MS",
	  CLI_STR(PGPUSH_DEFAULT_STATS_INTERVAL_MS),
	  "run: merge the in-memory counters into "
	  "push.stats_minute this often; 0 turns statistics off (no "
	  "counting, no writes; for measuring their cost)." },
	{ "--heartbeat-interval-ms", 0, "MS", CLI_TYPE_INT,
	  OPT(heartbeat_interval_ms), 100, 600000,
	  "PGPUSH_HEARTBEAT_INTERVAL_MS",
	  CLI_STR(PGPUSH_DEFAULT_HEARTBEAT_INTERVAL_MS),
	  "run: update this process's push.dispatchers row this often." },
	{ "--connect-timeout-ms", 0, "MS", CLI_TYPE_INT,
	  OPT(connect_timeout_ms), 100, 600000,
	  "PGPUSH_CONNECT_TIMEOUT_MS",
	  CLI_STR(PGPUSH_DEFAULT_CONNECT_TIMEOUT_MS),
	  "run: give up a provider connection attempt after this long." },
	{ "--request-timeout-ms", 0, "MS", CLI_TYPE_INT,
	  OPT(request_timeout_ms), 100, 600000,
	  "PGPUSH_REQUEST_TIMEOUT_MS",
	  CLI_STR(PGPUSH_DEFAULT_REQUEST_TIMEOUT_MS),
	  "run: give up a provider request (and retry it later) after this "
	  "long." },
	{ "--rebuild-after-ms", 0, "MS", CLI_TYPE_INT, OPT(rebuild_after_ms),
	  100, 3600000, "PGPUSH_REBUILD_AFTER_MS",
	  CLI_STR(PGPUSH_DEFAULT_REBUILD_AFTER_MS),
	  "run: after this long with nothing but timeouts and resets from a "
	  "provider, open fresh connections for it (a hung provider)." },
	{ "--drain-timeout-ms", 0, "MS", CLI_TYPE_INT, OPT(drain_timeout_ms),
	  0, 600000, "PGPUSH_DRAIN_TIMEOUT_MS",
	  CLI_STR(PGPUSH_DEFAULT_DRAIN_TIMEOUT_MS),
	  "run: on SIGTERM, wait this long for requests in flight before "
	  "cancelling them (they go back to the queue)." },
	{ "--max-host-connections", 0, "N", CLI_TYPE_INT,
	  OPT(max_host_connections), 1, 1000, "PGPUSH_MAX_HOST_CONNECTIONS",
	  CLI_STR(PGPUSH_DEFAULT_MAX_HOST_CONNECTIONS),
	  "run: most connections to one provider host (HTTP/2 "
	  "multiplexes many requests over each)." },
	{ "--http-threads", 0, "N", CLI_TYPE_INT, OPT(http_threads), 0, 64,
	  "PGPUSH_HTTP_THREADS",
	  CLI_STR(PGPUSH_DEFAULT_HTTP_THREADS),
	  "run: worker threads for provider requests (libcurl, TLS), each "
	  "with its own loop, beside the loop that claims, builds and acks; "
	  "0: all on one loop (fewest threads, a little less latency at a "
	  "light load).  Each worker keeps its own connections to a "
	  "provider host (--max-host-connections each), except that one "
	  "APNs team or certificate always uses one worker." },
	{ "--h2-direct", 0, "0|1", CLI_TYPE_INT, OPT(h2_direct), 0, 1,
	  "PGPUSH_H2_DIRECT",
	  CLI_STR(PGPUSH_DEFAULT_H2_DIRECT),
	  "run: 1: FCM requests go over pgpushd's own HTTP/2 client "
	  "(nghttp2 + OpenSSL, a third of libcurl's CPU per push; a host "
	  "that does not offer h2 falls back to libcurl); 0: everything "
	  "through libcurl." },
	{ "--metrics-listen", 0, "HOST:PORT", CLI_TYPE_STRING,
	  OPT(metrics_listen), 0, 0, "PGPUSH_METRICS_LISTEN", "",
	  "run: serve Prometheus metrics at http://HOST:PORT/metrics (e.g. "
	  "127.0.0.1:9464) from the dispatcher's loop; empty: off." },
	{ "--help", 'h', NULL, CLI_TYPE_BOOL, OPT(help), 0, 0, NULL, NULL,
	  "Print this help and exit." },
	{ "--version", 'V', NULL, CLI_TYPE_BOOL, OPT(version), 0, 0, NULL,
	  NULL, "Print the version and exit." },
};

#define N_COMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))
#define N_FLAGS (sizeof(cli_flags) / sizeof(cli_flags[0]))

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Store `val` into the field of `opts` that row `f` names.  `from` says
 * where the value came from ("--db", "PGPUSH_MIGRATIONS_DIR") for the
 * error message.
 */
static int set_value(struct cli_opts *opts, const struct cli_flag *f,
			  const char *val, const char *from, char *err,
			  size_t errlen)
{
	char *field = (char *)opts + f->offset;
	enum log_level level;
	char *end;
	long n;

	switch (f->type) {
	case CLI_TYPE_BOOL:
		*(int *)(void *)field = 1;
		return 0;
	case CLI_TYPE_STRING:
		*(const char **)(void *)field = val;
		return 0;
	case CLI_TYPE_LOG_LEVEL:
		if (log_parse_level(val, &level) < 0)
			return fail(err, errlen,
				    "%s: '%s' is not a log level (debug, "
				    "info, warn, error)", from, val);
		*(enum log_level *)(void *)field = level;
		return 0;
	case CLI_TYPE_INT:
		errno = 0;
		n = strtol(val, &end, 10);
		if (*val == '\0' || *end != '\0' || errno != 0 ||
		    n < f->min || n > f->max || n < INT_MIN || n > INT_MAX)
			return fail(err, errlen,
				    "%s: '%s' is not a whole number from %ld "
				    "to %ld", from, val, f->min, f->max);
		*(int *)(void *)field = (int)n;
		return 0;
	}
	return fail(err, errlen, "%s: unsupported flag type", from);
}

static const struct cli_flag *find_long(const char *arg, size_t len)
{
	size_t i;

	for (i = 0; i < N_FLAGS; i++)
		if (strlen(cli_flags[i].name) == len &&
		    strncmp(cli_flags[i].name, arg, len) == 0)
			return &cli_flags[i];
	return NULL;
}

static const struct cli_flag *find_short(char c)
{
	size_t i;

	for (i = 0; i < N_FLAGS; i++)
		if (cli_flags[i].short_name != 0 &&
		    cli_flags[i].short_name == c)
			return &cli_flags[i];
	return NULL;
}

static const struct cli_command_row *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

/* "migrate, run" into buf, for error messages. */
static void list_commands(char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < N_COMMANDS && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 i ? ", " : "", cli_commands[i].name);
}

static int apply_defaults(struct cli_opts *opts, cli_getenv_fn getenv_fn,
			  char *err, size_t errlen)
{
	const struct cli_flag *f;
	const char *v;
	size_t i;
	int rc;

	memset(opts, 0, sizeof(*opts));
	opts->command = CLI_COMMAND_NONE;
	for (i = 0; i < N_FLAGS; i++) {
		f = &cli_flags[i];
		if (f->def) {
			rc = set_value(opts, f, f->def, f->name, err,
					    errlen);
			if (rc < 0)
				return rc;
		}
		/* An empty variable counts as unset, as in most tools. */
		v = f->env && getenv_fn ? getenv_fn(f->env) : NULL;
		if (v && *v) {
			rc = set_value(opts, f, v, f->env, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Handle the flag at argv[*i]; may consume argv[*i + 1] as its value.
 */
static int parse_flag(struct cli_opts *opts, int argc, char *const argv[],
		      int *i, char *err, size_t errlen)
{
	const char *arg = argv[*i], *val = NULL, *eq;
	const struct cli_flag *f;

	if (arg[1] == '-') {
		eq = strchr(arg, '=');
		f = find_long(arg, eq ? (size_t)(eq - arg) : strlen(arg));
		if (f == NULL)
			return fail(err, errlen, "unknown flag '%.*s'",
				    eq ? (int)(eq - arg) : (int)strlen(arg),
				    arg);
		if (eq)
			val = eq + 1;
	} else {
		f = arg[2] == '\0' ? find_short(arg[1]) : NULL;
		if (f == NULL)
			return fail(err, errlen, "unknown flag '%s'", arg);
	}
	if (f->metavar == NULL) {
		if (val)
			return fail(err, errlen, "%s takes no value", f->name);
		return set_value(opts, f, NULL, f->name, err, errlen);
	}
	if (val == NULL) {
		if (*i + 1 >= argc)
			return fail(err, errlen, "%s needs a value (%s)",
				    f->name, f->metavar);
		val = argv[++*i];
	}
	return set_value(opts, f, val, f->name, err, errlen);
}

int cli_parse_args(struct cli_opts *opts, int argc, char *const argv[],
		   cli_getenv_fn getenv_fn, char *err, size_t errlen)
{
	const struct cli_command_row *cmd;
	char names[256];
	int i, flags_done = 0, rc;

	if (errlen > 0)
		err[0] = '\0';
	rc = apply_defaults(opts, getenv_fn, err, errlen);
	if (rc < 0)
		return rc;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!flags_done && strcmp(arg, "--") == 0) {
			flags_done = 1;
			continue;
		}
		if (!flags_done && arg[0] == '-' && arg[1] != '\0') {
			rc = parse_flag(opts, argc, argv, &i, err, errlen);
			if (rc < 0)
				return rc;
			continue;
		}
		if (opts->command != CLI_COMMAND_NONE)
			return fail(err, errlen, "unexpected argument '%s'",
				    arg);
		cmd = find_command(arg);
		if (cmd == NULL) {
			list_commands(names, sizeof(names));
			return fail(err, errlen,
				    "unknown command '%s' (commands: %s)",
				    arg, names);
		}
		opts->command = cmd->command;
	}
	/* No command runs the dispatcher, as DESIGN.md promises. */
	if (opts->command == CLI_COMMAND_NONE && !opts->help &&
	    !opts->version)
		opts->command = CLI_COMMAND_RUN;
	return 0;
}

/* Help layout: the left column, then text wrapped at HELP_WIDTH. */
#define HELP_INDENT 28
#define HELP_WIDTH 79
#define NBSP "\x1f"	/* a space the wrapper never breaks at */

/*
 * Write `text` word-wrapped, its first line continuing after `col`
 * characters already on the line, later lines indented by HELP_INDENT.
 */
static void write_wrapped(FILE *out, int col, const char *text)
{
	const char *p = text;
	size_t k;

	if (col >= HELP_INDENT) {
		fputc('\n', out);
		col = 0;
	}
	fprintf(out, "%*s", HELP_INDENT - col, "");
	col = HELP_INDENT;
	while (*p) {
		size_t w = strcspn(p, " ");

		if (col > HELP_INDENT && col + 1 + (int)w > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_INDENT, "");
			col = HELP_INDENT;
		}
		if (col > HELP_INDENT) {
			fputc(' ', out);
			col++;
		}
		for (k = 0; k < w; k++)
			fputc(p[k] == NBSP[0] ? ' ' : p[k], out);
		col += (int)w;
		p += w;
		p += strspn(p, " ");
	}
	fputc('\n', out);
}

int cli_write_help(FILE *out, const char *prog)
{
	/* No cap: the text comes from the static tables above. */
	struct buf text = { 0 };
	char left[80];
	const struct cli_flag *f;
	size_t i;
	int col;

	fprintf(out,
		"Usage: %s [FLAGS] COMMAND\n"
		"\n"
		"pgpushd is the pgpush push-notification dispatcher; its "
		"queue, results and\n"
		"settings live in PostgreSQL.\n"
		"\n"
		"Commands:\n", prog);
	for (i = 0; i < N_COMMANDS; i++) {
		col = fprintf(out, "  %s", cli_commands[i].name);
		write_wrapped(out, col, cli_commands[i].help);
	}
	fprintf(out, "\nFlags (before or after the command; --flag=VALUE "
		"also works):\n");
	for (i = 0; i < N_FLAGS; i++) {
		f = &cli_flags[i];
		if (f->short_name)
			snprintf(left, sizeof(left), "  -%c, %s%s%s",
				 f->short_name, f->name,
				 f->metavar ? " " : "",
				 f->metavar ? f->metavar : "");
		else
			snprintf(left, sizeof(left), "      %s%s%s", f->name,
				 f->metavar ? " " : "",
				 f->metavar ? f->metavar : "");
		/* NBSP keeps "Default:" and its value on one line. */
		buf_reset(&text);
		buf_printf(&text, "%s%s%s%s%s%s%s", f->help,
			   f->env ? " Environment:" NBSP : "",
			   f->env ? f->env : "", f->env ? "." : "",
			   f->def && *f->def ? " Default:" NBSP : "",
			   f->def && *f->def ? f->def : "",
			   f->def && *f->def ? "." : "");
		col = fprintf(out, "%s", left);
		write_wrapped(out, col, buf_str(&text));
	}
	buf_free(&text);
	fprintf(out,
		"\n"
		"Exit status: 0 success, 1 failure, 2 bad command line.\n");
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

void cli_each_flag(void (*fn)(void *arg, const char *name, char short_name,
			      const char *metavar),
		   void *arg)
{
	size_t i;

	for (i = 0; i < N_FLAGS; i++)
		fn(arg, cli_flags[i].name, cli_flags[i].short_name,
		   cli_flags[i].metavar);
}

void cli_each_command(void (*fn)(void *arg, const char *name), void *arg)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		fn(arg, cli_commands[i].name);
}
