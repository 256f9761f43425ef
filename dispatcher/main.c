/*
 * main.c - pgpushd: parse the command line, run the command, exit.
 *
 * Deliberately thin: everything lives in libpgpush.a so tests link the
 * same code.  Exit status: 0 success, 1 failure, 2 bad command line.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli.h"
#include "core/daemon.h"
#include "db/migrate.h"
#include "net/http.h"

static const char *env_lookup(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	const char *prog = "pgpushd";
	struct cli_opts opts;
	char err[4096], dir[PATH_MAX];
	char *exe;
	int rc;

	if (cli_parse_args(&opts, argc, argv, env_lookup, err,
			   sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\nTry '%s --help'.\n", prog, err, prog);
		return CLI_EXIT_USAGE;
	}
	if (opts.help)
		return cli_write_help(stdout, prog) < 0 ? CLI_EXIT_FAILURE
							 : CLI_EXIT_OK;
	if (opts.version) {
		printf("pgpushd %s (libcurl %s)\n", PGPUSH_VERSION,
		       http_lib_version());
		return fflush(stdout) != 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
	}
	log_set_level(opts.log_level);
	switch (opts.command) {
	case CLI_COMMAND_MIGRATE:
		if (*opts.migrations_dir == '\0') {
			exe = realpath("/proc/self/exe", NULL);
			rc = migrate_find_dir(exe ? exe : argv[0], dir,
					      sizeof(dir), err, sizeof(err));
			free(exe);
			if (rc < 0) {
				log_error("migrate failed", "error=%s", err);
				return CLI_EXIT_FAILURE;
			}
			opts.migrations_dir = dir;
		}
		if (migrate_apply_pending(opts.conninfo, opts.migrations_dir,
					  err, sizeof(err)) < 0) {
			log_error("migrate failed", "error=%s", err);
			return CLI_EXIT_FAILURE;
		}
		return CLI_EXIT_OK;
	case CLI_COMMAND_RUN:
		return daemon_run(&opts);
	case CLI_COMMAND_NONE:
		break;
	}
	return CLI_EXIT_USAGE;
}
