#!/usr/bin/env bash
# http_fcm_h2.t - http_fcm.t again with the FCM sends on the bridge's own
# HTTP/2 client (http_opts.h2_direct, pgpushd --h2-direct 1), everything
# on one loop: the same requests, answers, token refreshes, cancellations,
# body cap and stream waits, plus refused streams, GOAWAY, resets, a
# request timeout with the connection proven alive by a PING, and the
# fall back to libcurl for a host that does not offer h2.
# Only loopback here; a proxy variable would turn the client off.
unset https_proxy HTTPS_PROXY all_proxy ALL_PROXY
H2_DIRECT=1 HTTP_THREADS=0 exec "$(dirname "$0")/http_fcm.t"
