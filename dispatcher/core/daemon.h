/*
 * daemon.h - `pgpushd run`: the dispatcher's event loop.
 *
 * One libuv loop drives everything: four Postgres connections (listener,
 * claim, ack, stats - never more, whatever the load), the HTTP bridge, the
 * per-(app, platform) pools and their senders, and a few timers.  See
 * daemon.c for the life of a push through it.
 */
#ifndef PGPUSH_DAEMON_H
#define PGPUSH_DAEMON_H

#include "cli.h"

/*
 * Run until SIGTERM or SIGINT, then drain and return 0; return 1 when the
 * daemon cannot start (bad conninfo, no loop).  Blocks the calling thread.
 */
int daemon_run(const struct cli_opts *opts);

#endif
