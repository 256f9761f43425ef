#!/usr/bin/env bash
# dispatch_basic_threads.t - dispatch_basic.t again with libcurl on four
# worker threads (pgpushd --http-threads 4, more than the default two and
# than this machine's cores) and FCM sent by libcurl too: https_proxy is
# set (with no_proxy covering the fake), which turns pgpushd's own HTTP/2
# client off, since it speaks no proxy.  Every push still delivered
# exactly once with the right body and token, stats adding up, at most 4
# Postgres connections.
export https_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost
DISPATCH_DAEMON_ARGS="${DISPATCH_DAEMON_ARGS:-} --http-threads 4" \
	exec "$(dirname "$0")/dispatch_basic.t"
