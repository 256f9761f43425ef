#!/usr/bin/env bash
# http_fcm_h2_threads.t - http_fcm_h2.t with the bridge on two worker
# threads, as pgpushd runs by default: the h2_direct client stays on the
# caller's loop, libcurl (OAuth, the control port, the HTTP/1.1 fall
# back) runs on the workers.
# Only loopback here; a proxy variable would turn the client off.
unset https_proxy HTTPS_PROXY all_proxy ALL_PROXY
H2_DIRECT=1 HTTP_THREADS=2 exec "$(dirname "$0")/http_fcm.t"
