#!/usr/bin/env bash
# --sink: every provider answers success without checks; the OAuth
# endpoints hand out a token; h2load over one connection succeeds.  The
# throughput figure is reported as a diagnostic (README.md has the
# measured number); sanitizer builds are too slow for a threshold.
. "$(dirname "$0")/lib.sh"
start_fake --sink

req --http2 "https://127.0.0.1:$FCM_PORT/token" -d x=y
is "$STATUS/$(jget "$BODY" access_token)" 200/ya29.sink "sink: token endpoint"
req --http2 "https://127.0.0.1:$FCM_PORT/v1/projects/p/messages:send" -d '{}'
like "$STATUS $(jget "$BODY" name)" '^200 projects/sink/messages/' "sink: FCM"
req --http2 "https://127.0.0.1:$APNS_PORT/3/device/x" -d x
like "$STATUS $(hdr apns-id)" '^200 [0-9a-f-]{36}$' "sink: APNs"
req "https://127.0.0.1:$WNS_PORT/w/?token=x" -d x
is "$STATUS/$(hdr x-wns-status)" 200/received "sink: WNS"
req "https://127.0.0.1:$MPNS_PORT/x/y" -d x
is "$STATUS/$(hdr x-notificationstatus)" 200/Received "sink: MPNS"
is "$(wc -l <"$TMP/requests.log" | tr -d ' ')" 0 "sink: nothing logged"

printf '{"message":{"token":"t","data":{"k":"v"}}}' >"$TMP/b.json"
h2load -n 20000 -c 1 -m 100 -d "$TMP/b.json" \
	-H 'content-type: application/json' -H 'authorization: Bearer ya29.sink' \
	"https://127.0.0.1:$FCM_PORT/v1/projects/p/messages:send" \
	>"$TMP/h2load.out" 2>&1
like "$(grep '^requests:' "$TMP/h2load.out")" '20000 succeeded, 0 failed' \
	"h2load: 20000 requests, 100 streams, one connection, all succeed"
echo "# $(grep '^finished' "$TMP/h2load.out")"
c=$(ctl GET /counters)
ok $(( $(jget "$c" sink_requests) < 20000 )) "sink counts requests"
finish
