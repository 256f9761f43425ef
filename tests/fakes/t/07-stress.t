#!/usr/bin/env bash
# Concurrency under the full (non-sink) path: many streams with random
# latency, scripted resets mixed with successes, and clients vanishing
# while delayed responses are pending — the paths where memory bugs
# hide, run under ASan by `make SANITIZE=1`.
. "$(dirname "$0")/lib.sh"
start_fake
TOK=$(fcm_token)
U="https://127.0.0.1:$FCM_PORT/v1/projects/$PROJECT/messages:send"
printf '{"message":{"token":"t","data":{"k":"v"}}}' >"$TMP/b.json"
load() { # load N CONNS STREAMS: h2load summary line "requests: ..."
	h2load -n "$1" -c "$2" -m "$3" -d "$TMP/b.json" \
		-H 'content-type: application/json' \
		-H "authorization: Bearer $TOK" "$U" 2>&1 | grep '^requests:'
}

ctl POST /latency '{"min_ms":0,"max_ms":5}' >/dev/null
like "$(load 3000 4 50)" '3000 succeeded, 0 failed, 0 errored' \
	"3000 validated requests on 4 connections x 50 streams, random latency"
c=$(ctl GET '/counters?provider=fcm&token=t')
is "$(jget "$c" fcm.t.ok)" 3000 "all counted"
is "$(grep -c '"token":"t"' "$TMP/requests.log")" 3000 "all logged"

ctl POST /rules '{"provider":"fcm","token":"t","action":"reset_stream","times":300}' >/dev/null
like "$(load 1000 2 20)" '1000 done, 700 succeeded' \
	"300 scripted stream resets among 1000 requests"
ctl POST /rules '{"provider":"fcm","token":"t","status":503,"times":250,"retry_after":1}' >/dev/null
like "$(load 500 1 100)" '250 succeeded, 250 failed' "250 scripted 503s"

ctl POST /latency '{"max_ms":0}' >/dev/null
ctl POST /rules '{"provider":"fcm","token":"t","delay_ms":3000}' >/dev/null
timeout 1 h2load -n 400 -c 4 -m 100 -d "$TMP/b.json" \
	-H 'content-type: application/json' -H "authorization: Bearer $TOK" \
	"$U" >/dev/null 2>&1
ctl DELETE '/rules?provider=fcm&token=t' >/dev/null
like "$(load 200 1 10)" '200 succeeded' \
	"clients gone with 400 delayed responses pending; server still fine"
finish
