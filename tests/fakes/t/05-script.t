#!/usr/bin/env bash
# Scripting without restart: delays, stream/connection resets, GOAWAY,
# server-wide modes, latency, SETTINGS, rule removal, reset, counters,
# and the control port's own validation.
. "$(dirname "$0")/lib.sh"
start_fake
TOK=$(fcm_token)
msg() { echo "{\"message\":{\"token\":\"$1\"}}"; }
U="https://127.0.0.1:$FCM_PORT/v1/projects/$PROJECT/messages:send"

elapsed() { # elapsed TOKEN: seconds one send took
	curl -sS -o /dev/null -w '%{time_total}' --http2 --cacert "$CERTS/ca.pem" \
		"$U" -H "authorization: Bearer $TOK" \
		-H 'content-type: application/json' -d "$(msg "$1")"
}
ge() { perl -e 'exit !($ARGV[0] >= $ARGV[1])' "$1" "$2"; echo $?; }

is "$(ctl GET /health)" '{"ok":true}' "control port is up"
ctl POST /rules '{"provider":"fcm","token":"slow","delay_ms":1200}' >/dev/null
ok "$(ge "$(elapsed slow)" 1.1)" "delay_ms holds the response back"
fcm_send "$TOK" "$(msg slow)"
is "$STATUS" 200 "a delayed response is still a success"
is "$(jget "$(logline)" response.delay_ms)" 1200 "delay logged"

ctl POST /rules '{"provider":"fcm","token":"rst","action":"reset_stream","error_code":2}' >/dev/null
fcm_send "$TOK" "$(msg rst)"
is "$CURL_RC" 92 "reset_stream: curl sees an HTTP/2 stream error"
like "$(cat "$TMP/curl.err")" 'INTERNAL_ERROR|err 2' "with the scripted error code"
is "$(jget "$(logline)" response.action)/$(jget "$(logline)" response.status)" \
	reset_stream/0 "logged as reset_stream, no status"

ctl POST /rules '{"provider":"fcm","token":"kill","action":"reset_conn"}' >/dev/null
fcm_send "$TOK" "$(msg kill)"
ok $((CURL_RC == 0)) "reset_conn: the connection dies (curl rc $CURL_RC)"

ctl POST /rules '{"provider":"fcm","token":"bye","action":"close"}' >/dev/null
fcm_send "$TOK" "$(msg bye)"
ok $((CURL_RC == 0)) "close: no response (curl rc $CURL_RC)"

# GOAWAY seen with nghttp, which prints every frame
printf '%s' "$(msg x)" >"$TMP/m.json"
ng() { # ng TOKEN: one request with nghttp, frames in $TMP/ng.out
	printf '%s' "$(msg "$1")" >"$TMP/m.json"
	nghttp -nv -H ':method: POST' -H "authorization: Bearer $TOK" \
		-H 'content-type: application/json' -d "$TMP/m.json" "$U" \
		>"$TMP/ng.out" 2>&1
}
ctl POST /rules '{"provider":"fcm","token":"ga","action":"goaway","reason":"Shutdown"}' >/dev/null
ng ga
like "$(grep -A1 'recv GOAWAY' "$TMP/ng.out" | tr -d '\n')" \
	'NO_ERROR.*\{"reason":"Shutdown"\}' "goaway: GOAWAY with a JSON reason"
like "$(cat "$TMP/ng.out")" 'requests were not processed' \
	"goaway: last_stream_id excludes the stream (retryable)"
ctl POST /rules '{"provider":"fcm","token":"ga2","action":"respond_goaway","status":503,"reason":"UNAVAILABLE"}' >/dev/null
ng ga2
like "$(tr -d '\n' <"$TMP/ng.out")" ':status: 503.*recv GOAWAY.*last_stream_id=1' \
	"respond_goaway: 503, then GOAWAY including the stream"

# control-initiated GOAWAY while a delayed request is in flight
ctl POST /rules '{"provider":"fcm","token":"inflight","delay_ms":1500}' >/dev/null
ng inflight &
ngpid=$!
for _ in $(seq 1 200); do	# until the fake has the request
	grep -q '"token":"inflight"' "$TMP/requests.log" && break
	sleep 0.05
done
ctl POST /goaway '{"provider":"fcm","reason":"Shutdown"}' >/dev/null
wait $ngpid
like "$(tr -d '\n' <"$TMP/ng.out")" 'recv GOAWAY.*:status: 200' \
	"/goaway: GOAWAY now, the in-flight stream still completes"

# server-wide mode for a while
ctl POST /mode '{"provider":"fcm","status":503,"reason":"UNAVAILABLE","seconds":3,"retry_after":5}' >/dev/null
fcm_send "$TOK" "$(msg any1)"
is "$STATUS/$(hdr retry-after)/$(jget "$BODY" error.status)" 503/5/UNAVAILABLE \
	"mode: every request fails"
fcm_send "$TOK" "$(msg any2)"
is "$STATUS" 503 "mode: for every token"
req --http2 "https://127.0.0.1:$APNS_PORT/3/device/$APNS_TOKEN" \
	-H "authorization: bearer $(apns_jwt)" -H 'apns-topic: com.example.app' \
	-d '{"aps":{}}'
is "$STATUS" 200 "mode: only for its provider"
sleep 3.2
fcm_send "$TOK" "$(msg any3)"
is "$STATUS" 200 "mode: over after its seconds"

# latency distribution
ctl POST /latency '{"min_ms":400,"max_ms":500}' >/dev/null
ok "$(ge "$(elapsed lat)" 0.35)" "uniform latency applies"
ctl POST /latency '{"distribution":"exponential","mean_ms":10,"max_ms":50}' >/dev/null
fcm_send "$TOK" "$(msg lat)"
is "$STATUS" 200 "exponential latency"
ctl POST /latency '{"max_ms":0}' >/dev/null

# SETTINGS_MAX_CONCURRENT_STREAMS for new connections
ctl POST /settings '{"max_streams":7}' >/dev/null
ng s7
like "$(grep -A3 'recv SETTINGS' "$TMP/ng.out" | tr -d '\n')" \
	'MAX_CONCURRENT_STREAMS\(0x03\):7' "max_streams override advertised"

# ... and on a live connection (a delayed request keeps it open)
ctl POST /rules '{"provider":"fcm","token":"live","delay_ms":1500}' >/dev/null
ng live &
ngpid=$!
for _ in $(seq 1 200); do
	grep -q '"token":"live"' "$TMP/requests.log" && break
	sleep 0.05
done
ctl POST /settings '{"max_streams":9}' >/dev/null
wait $ngpid
like "$(grep -A3 'recv SETTINGS' "$TMP/ng.out" | tr -d '\n')" \
	'MAX_CONCURRENT_STREAMS\(0x03\):7.*MAX_CONCURRENT_STREAMS\(0x03\):9' \
	"max_streams change sent to a live connection"

# rule life cycle
ctl POST /rules '{"provider":"fcm","token":"del","status":500}' >/dev/null
is "$(ctl DELETE '/rules?provider=fcm&token=del')" '{"ok":true}' "DELETE a rule"
fcm_send "$TOK" "$(msg del)"
is "$STATUS" 200 "deleted rule no longer applies"
ctl POST /rules '[{"provider":"fcm","token":"a1","status":500},{"provider":"fcm","token":"*","status":429}]' >/dev/null
fcm_send "$TOK" "$(msg a1)"; s1=$STATUS
fcm_send "$TOK" "$(msg zz)"
is "$s1 $STATUS" "500 429" "rule arrays; exact token beats '*'"
ctl POST /reset >/dev/null
fcm_send "$TOK" "$(msg zz)"
is "$STATUS" 200 "/reset drops rules"
c=$(ctl GET '/counters?provider=fcm')
is "$(jget "$c" fcm.zz.requests)" 1 "/reset zeroes counters"

# HTTP/1.1: head and body in separate segments, then a pipelined request
exec 3<>"/dev/tcp/127.0.0.1/$CONTROL_PORT"
printf 'POST /rules HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\n\r\n' >&3
sleep 0.3
printf '{"provider":"fcm","token":"sp","status":500}' >&3
printf 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
out=$(timeout 10 cat <&3 | grep -o 'HTTP/1.1 200 OK' | wc -l | tr -d ' ')
exec 3<&-
is "$out" 2 "HTTP/1.1 body in a later segment; pipelined request answered"
fcm_send "$TOK" "$(msg sp)"
is "$STATUS" 500 "the split request's rule applies"

# control port validation
like "$(ctl POST /rules '{"provider":"fcm","token":"x","stauts":500}')" \
	'unknown field stauts' "typo in a rule field is an error"
like "$(ctl POST /rules '{"provider":"gcm","token":"x"}')" 'unknown provider' \
	"unknown provider is an error"
like "$(ctl POST /rules '{"provider":"fcm","token":"x","action":"explode"}')" \
	'unknown action' "unknown action is an error"
like "$(ctl POST /mode '{"provider":"fcm","status":503}')" 'seconds' \
	"mode without seconds is an error"
like "$(ctl POST /config '{"nope":1}')" 'unknown field' "unknown config key"
finish
