/*
 * test_cli.c - unit tests for cli.c: every flag, every error, --help.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tap.h"

/* The fake environment seen by cli_parse_args. */
static const char *env_migrations_dir;

static const char *fake_env(const char *name)
{
	if (strcmp(name, "PGPUSH_MIGRATIONS_DIR") == 0)
		return env_migrations_dir;
	return NULL;
}

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int parse(struct cli_opts *o, int argc, char *const argv[],
		 char *err, size_t errlen)
{
	return cli_parse_args(o, argc, argv, fake_env, err, errlen);
}

static void test_defaults(void)
{
	char *argv[] = { "pgpushd", "migrate" };
	struct cli_opts o;
	char err[256];

	is_int(parse(&o, ARGC(argv), argv, err, sizeof(err)), 0,
	       "migrate parses");
	is_int(o.command, CLI_COMMAND_MIGRATE, "command is migrate");
	is_str(o.conninfo, "", "--db defaults to empty (PG* variables)");
	is_str(o.migrations_dir, "",
	       "--migrations-dir defaults to empty (found at run time)");
	is_int(o.log_level, LOG_LEVEL_INFO, "--log-level defaults to info");
	is_int(o.help, 0, "no help");
	is_int(o.version, 0, "no version");
	is_str(err, "", "no error message");

	is_int(cli_parse_args(&o, ARGC(argv), argv, NULL, err, sizeof(err)),
	       0, "a NULL environment lookup is allowed");
}

/* Every run default is the PGPUSH_DEFAULT_* macro of cli.h, and --help
 * shows that same number. */
static void test_default_macros(void)
{
	char *argv[] = { "pgpushd", "run" };
	struct cli_opts o;
	char err[256], *text = NULL;
	const char *p;
	size_t len = 0;
	FILE *f;

	is_int(parse(&o, ARGC(argv), argv, err, sizeof(err)), 0,
	       "run parses");
	is_int(o.batch_size, PGPUSH_DEFAULT_BATCH_SIZE, "batch size");
	is_int(o.poll_interval_ms, PGPUSH_DEFAULT_POLL_INTERVAL_MS,
	       "poll interval");
	is_int(o.lease_seconds, PGPUSH_DEFAULT_LEASE_SECONDS, "lease");
	is_int(o.ack_interval_ms, PGPUSH_DEFAULT_ACK_INTERVAL_MS,
	       "ack interval");
	is_int(o.stats_interval_ms, PGPUSH_DEFAULT_STATS_INTERVAL_MS,
	       "stats interval");
	is_int(o.heartbeat_interval_ms, PGPUSH_DEFAULT_HEARTBEAT_INTERVAL_MS,
	       "heartbeat interval");
	is_int(o.connect_timeout_ms, PGPUSH_DEFAULT_CONNECT_TIMEOUT_MS,
	       "connect timeout");
	is_int(o.request_timeout_ms, PGPUSH_DEFAULT_REQUEST_TIMEOUT_MS,
	       "request timeout");
	is_int(o.rebuild_after_ms, PGPUSH_DEFAULT_REBUILD_AFTER_MS,
	       "rebuild after");
	is_int(o.drain_timeout_ms, PGPUSH_DEFAULT_DRAIN_TIMEOUT_MS,
	       "drain timeout");
	is_int(o.max_host_connections, PGPUSH_DEFAULT_MAX_HOST_CONNECTIONS,
	       "max host connections");
	is_int(o.http_threads, PGPUSH_DEFAULT_HTTP_THREADS, "http threads");
	is_int(o.h2_direct, PGPUSH_DEFAULT_H2_DIRECT, "h2 direct");
	is_int(PGPUSH_DEFAULT_CONNECT_TIMEOUT_MS, 5000,
	       "the provider connect timeout stays 5000 ms");
	is_int(PGPUSH_DEFAULT_REQUEST_TIMEOUT_MS, 10000,
	       "the provider request timeout stays 10000 ms");

	f = open_memstream(&text, &len);
	is_int(cli_write_help(f, "pgpushd"), 0, "help written");
	fclose(f);
	p = strstr(text, "--request-timeout-ms");
	ok(p != NULL && strstr(p, "Default: "
		CLI_STR(PGPUSH_DEFAULT_REQUEST_TIMEOUT_MS) ".") != NULL,
	   "--help prints the request timeout macro's value");
	free(text);
}

static void test_env(void)
{
	char *argv[] = { "pgpushd", "migrate" };
	char *argv2[] = { "pgpushd", "migrate", "--migrations-dir", "flag" };
	struct cli_opts o;
	char err[256];

	env_migrations_dir = "/from/env";
	parse(&o, ARGC(argv), argv, err, sizeof(err));
	is_str(o.migrations_dir, "/from/env",
	       "PGPUSH_MIGRATIONS_DIR replaces the default");
	parse(&o, ARGC(argv2), argv2, err, sizeof(err));
	is_str(o.migrations_dir, "flag", "--migrations-dir beats the env");
	env_migrations_dir = "";
	parse(&o, ARGC(argv), argv, err, sizeof(err));
	is_str(o.migrations_dir, "",
	       "an empty PGPUSH_MIGRATIONS_DIR counts as unset");
	env_migrations_dir = NULL;
}

static void test_flags(void)
{
	char *a1[] = { "pgpushd", "--db", "host=/tmp dbname=x", "migrate" };
	char *a2[] = { "pgpushd", "migrate", "--db=dbname=y port=5" };
	char *a3[] = { "pgpushd", "migrate", "--migrations-dir", "/m" };
	char *a4[] = { "pgpushd", "--migrations-dir=/n", "migrate" };
	char *a5[] = { "pgpushd", "migrate", "--db=" };
	char *a6[] = { "pgpushd", "--", "migrate" };
	char *a7[] = { "pgpushd", "--db", "--weird", "migrate" };
	static const char *const levels[] = { "debug", "info", "warn",
					       "error" };
	struct cli_opts o;
	char err[256], arg[64];
	size_t i;

	is_int(parse(&o, ARGC(a1), a1, err, sizeof(err)), 0, "--db VALUE");
	is_str(o.conninfo, "host=/tmp dbname=x", "--db value stored");
	is_int(o.command, CLI_COMMAND_MIGRATE, "command after a flag");
	is_int(parse(&o, ARGC(a2), a2, err, sizeof(err)), 0, "--db=VALUE");
	is_str(o.conninfo, "dbname=y port=5",
	       "--db=VALUE keeps '=' inside the value");
	is_int(parse(&o, ARGC(a3), a3, err, sizeof(err)), 0,
	       "--migrations-dir DIR after the command");
	is_str(o.migrations_dir, "/m", "--migrations-dir value stored");
	is_int(parse(&o, ARGC(a4), a4, err, sizeof(err)), 0,
	       "--migrations-dir=DIR");
	is_str(o.migrations_dir, "/n", "--migrations-dir= value stored");
	is_int(parse(&o, ARGC(a5), a5, err, sizeof(err)), 0, "--db=");
	is_str(o.conninfo, "", "--db= is an empty conninfo");
	is_int(parse(&o, ARGC(a6), a6, err, sizeof(err)), 0, "-- then command");
	is_int(o.command, CLI_COMMAND_MIGRATE, "command after --");
	is_int(parse(&o, ARGC(a7), a7, err, sizeof(err)), 0,
	       "a value may start with '-'");
	is_str(o.conninfo, "--weird", "that value is stored");

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char *a[] = { "pgpushd", "migrate", "--log-level",
			      (char *)levels[i] };
		char *b[] = { "pgpushd", "migrate", arg };
		enum log_level want = (enum log_level)i;

		is_int(parse(&o, ARGC(a), a, err, sizeof(err)), 0,
		       "--log-level %s", levels[i]);
		is_int(o.log_level, want, "--log-level %s stored", levels[i]);
		snprintf(arg, sizeof(arg), "--log-level=%s", levels[i]);
		parse(&o, ARGC(b), b, err, sizeof(err));
		is_int(o.log_level, want, "%s stored", arg);
	}
}

static void test_help_version(void)
{
	char *h1[] = { "pgpushd", "-h" };
	char *h2[] = { "pgpushd", "--help" };
	char *h3[] = { "pgpushd", "migrate", "--help" };
	char *v1[] = { "pgpushd", "-V" };
	char *v2[] = { "pgpushd", "--version" };
	struct cli_opts o;
	char err[256];

	is_int(parse(&o, ARGC(h1), h1, err, sizeof(err)), 0,
	       "-h needs no command");
	is_int(o.help, 1, "-h sets help");
	is_int(parse(&o, ARGC(h2), h2, err, sizeof(err)), 0, "--help");
	is_int(o.help, 1, "--help sets help");
	is_int(parse(&o, ARGC(h3), h3, err, sizeof(err)), 0,
	       "migrate --help");
	is_int(o.help, 1, "--help after a command sets help");
	is_int(parse(&o, ARGC(v1), v1, err, sizeof(err)), 0,
	       "-V needs no command");
	is_int(o.version, 1, "-V sets version");
	is_int(parse(&o, ARGC(v2), v2, err, sizeof(err)), 0, "--version");
	is_int(o.version, 1, "--version sets version");
}

/* One command line that must fail, and a piece of its message. */
struct bad_case {
	const char *args[5];
	const char *message;
};

static void test_errors(void)
{
	static const struct bad_case cases[] = {
		{ { "frobnicate" }, "unknown command 'frobnicate'" },
		{ { "run", "--batch-size", "0" }, "--batch-size" },
		{ { "run", "--batch-size", "many" }, "--batch-size" },
		{ { "run", "--lease-seconds", "1" }, "--lease-seconds" },
		{ { "migrate", "--bogus" }, "unknown flag '--bogus'" },
		{ { "migrate", "--bogus=1" }, "unknown flag '--bogus'" },
		{ { "migrate", "-x" }, "unknown flag '-x'" },
		{ { "migrate", "-hV" }, "unknown flag '-hV'" },
		{ { "migrate", "--d" }, "unknown flag '--d'" },
		{ { "migrate", "--db" }, "--db needs a value (CONNINFO)" },
		{ { "migrate", "--migrations-dir" },
		  "--migrations-dir needs a value (DIR)" },
		{ { "migrate", "--log-level" },
		  "--log-level needs a value (LEVEL)" },
		{ { "migrate", "--log-level", "loud" },
		  "--log-level: 'loud' is not a log level" },
		{ { "migrate", "--log-level=" },
		  "--log-level: '' is not a log level" },
		{ { "migrate", "--log-level", "INFO" },
		  "'INFO' is not a log level" },
		{ { "--help=yes" }, "--help takes no value" },
		{ { "--version=1" }, "--version takes no value" },
		{ { "migrate", "migrate" }, "unexpected argument 'migrate'" },
		{ { "migrate", "extra" }, "unexpected argument 'extra'" },
		{ { "--", "--db" }, "unknown command '--db'" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[6] = { "pgpushd" };
		struct cli_opts o;
		char err[256] = "unchanged", label[128] = "";
		int argc = 1, j;

		for (j = 0; cases[i].args[j]; j++) {
			argv[argc++] = (char *)cases[i].args[j];
			strncat(label, " ", sizeof(label) - strlen(label) - 1);
			strncat(label, cases[i].args[j],
				sizeof(label) - strlen(label) - 1);
		}
		is_int(parse(&o, argc, argv, err, sizeof(err)), -EINVAL,
		       "pgpushd%s fails", label);
		like_str(err, cases[i].message, "pgpushd%s says why", label);
	}
}

static void test_small_buffer(void)
{
	char *argv[] = { "pgpushd" };
	struct cli_opts o;
	char err[8];

	char *bad[] = { "pgpushd", "frobnicate" };

	/* No command means run, as DESIGN.md says. */
	is_int(parse(&o, 1, argv, err, sizeof(err)), 0, "no command is fine");
	is_int(o.command, CLI_COMMAND_RUN, "no command runs the dispatcher");
	is_int(o.batch_size, 500, "run's batch size defaults to 500");
	is_int(o.lease_seconds, 120, "the lease defaults to 120 s");
	/* A tiny buffer: the message is cut, never overrun. */
	is_int(parse(&o, 2, bad, err, sizeof(err)), -EINVAL,
	       "unknown command, tiny error buffer");
	is_int((long long)strlen(err), (long long)sizeof(err) - 1,
	       "message truncated to the buffer");
	is_int(parse(&o, 2, bad, err, 0), -EINVAL, "errlen 0 is allowed");
}

/* Help text checks: every flag row and command appears. */
struct help_ctx {
	const char *text;
};

static void check_flag(void *arg, const char *name, char short_name,
		       const char *metavar)
{
	struct help_ctx *h = arg;
	char want[128];

	like_str(h->text, name, "help lists %s", name);
	if (metavar) {
		snprintf(want, sizeof(want), "%s %s", name, metavar);
		like_str(h->text, want, "help shows '%s'", want);
	}
	if (short_name) {
		snprintf(want, sizeof(want), "-%c, %s", short_name, name);
		like_str(h->text, want, "help shows '%s'", want);
	}
}

static void check_command(void *arg, const char *name)
{
	struct help_ctx *h = arg;
	char want[64];

	snprintf(want, sizeof(want), "\n  %s ", name);
	like_str(h->text, want, "help lists command %s", name);
}

static void test_help_text(void)
{
	struct help_ctx h;
	char *text = NULL, *line;
	size_t len = 0, longest = 0;
	FILE *out = open_memstream(&text, &len);

	if (!ok(out != NULL, "open_memstream"))
		return;
	is_int(cli_write_help(out, "pgpushd"), 0, "cli_write_help succeeds");
	fclose(out);
	h.text = text;
	like_str(text, "Usage: pgpushd [FLAGS] COMMAND", "usage line");
	like_str(text, "PGPUSH_MIGRATIONS_DIR", "help names the env var");
	like_str(text, "Default: the installed ones", "help shows a default");
	like_str(text, "Default: info.", "help shows the level default");
	like_str(text, "PGHOST", "help explains the PG* fallback");
	like_str(text, "  run ", "help lists the run command");
	like_str(text, "SIGTERM", "and how it stops");
	cli_each_flag(check_flag, &h);
	cli_each_command(check_command, &h);
	for (line = text; *line;) {
		size_t n = strcspn(line, "\n");

		if (n > longest)
			longest = n;
		line += n + (line[n] == '\n');
	}
	ok(longest <= 79, "help lines fit in 79 columns (longest %zu)",
	   longest);
	free(text);
}

/* The metrics endpoint is off unless asked for; stats can be
 * switched off with an interval of 0 (for measuring their cost). */
static void test_metrics_stats_flags(void)
{
	char *def[] = { "pgpushd", "run" };
	char *on[] = { "pgpushd", "run", "--metrics-listen",
		       "127.0.0.1:9464", "--stats-interval-ms", "0" };
	char *bad[] = { "pgpushd", "run", "--stats-interval-ms", "-1" };
	char *noval[] = { "pgpushd", "run", "--metrics-listen" };
	struct cli_opts o;
	char err[256];

	is_int(parse(&o, ARGC(def), def, err, sizeof(err)), 0,
	       "run without --metrics-listen parses");
	is_str(o.metrics_listen, "", "metrics endpoint off by default");
	is_int(o.stats_interval_ms, 2000, "stats every 2000 ms by default");
	is_int(parse(&o, ARGC(on), on, err, sizeof(err)), 0,
	       "--metrics-listen and --stats-interval-ms 0 parse");
	is_str(o.metrics_listen, "127.0.0.1:9464", "--metrics-listen value");
	is_int(o.stats_interval_ms, 0, "--stats-interval-ms 0 (stats off)");
	is_int(parse(&o, ARGC(bad), bad, err, sizeof(err)), -EINVAL,
	       "--stats-interval-ms -1 is refused");
	like_str(err, "--stats-interval-ms", "and the error names the flag");
	is_int(parse(&o, ARGC(noval), noval, err, sizeof(err)), -EINVAL,
	       "--metrics-listen without a value is refused");
	like_str(err, "--metrics-listen needs a value", "and says so");
}

int main(void)
{
	test_defaults();
	test_default_macros();
	test_env();
	test_flags();
	test_help_version();
	test_errors();
	test_small_buffer();
	test_help_text();
	test_metrics_stats_flags();
	return done_testing();
}
