#!/usr/bin/env bash
# dispatch_basic_threads.t - dispatch_basic.t again with libcurl on four
# worker threads (pgpushd --http-threads 4, more than the default two and
# than this machine's cores): every push still delivered exactly once with
# the right body and token, stats adding up, at most 4 Postgres connections.
DISPATCH_DAEMON_ARGS="${DISPATCH_DAEMON_ARGS:-} --http-threads 4" \
	exec "$(dirname "$0")/dispatch_basic.t"
