#!/usr/bin/env bash
# http_fcm_threads.t - http_fcm.t again with the HTTP bridge on two worker
# threads (http_opts.threads, pgpushd --http-threads): the same requests,
# answers, token refreshes, cancellations and body cap, with libcurl on
# other loops and every callback still on the test's loop.
HTTP_THREADS=2 exec "$(dirname "$0")/http_fcm.t"
