#!/usr/bin/env bash
# WNS fake: OAuth client credentials, notification header rules over
# HTTP/1.1, response headers, every scripted status of PROTOCOLS.md 3.4.
. "$(dirname "$0")/lib.sh"
start_fake
B="https://127.0.0.1:$WNS_PORT"
CH="$B/w/?token=AwYAAAD-channel-1"
TOAST='<toast><visual><binding template="ToastGeneric"><text>hi</text></binding></visual></toast>'

token() { # token [SECRET] [SCOPE] [PATH]
	req --http2 "$B${3:-/accesstoken.srf}" \
		--data-urlencode grant_type=client_credentials \
		--data-urlencode "client_id=$WNS_SID" \
		--data-urlencode "client_secret=${1:-$WNS_SECRET}" \
		--data-urlencode "scope=${2:-notify.windows.com}"
}
token
is "$STATUS/$VER" 200/1.1 "token issued; ALPN picked http/1.1 over h2"
is "$(jget "$BODY" token_type)/$(jget "$BODY" expires_in)" bearer/86400 \
	"token_type bearer, expires_in 86400"
TOK=$(jget "$BODY" access_token)
token wrong
is "$STATUS/$(jget "$BODY" error)" 400/invalid_client "wrong secret refused"
token "" https://wns.windows.com/.default
is "$STATUS/$(jget "$BODY" error)" 400/invalid_scope "wrong scope refused"
token "" https://wns.windows.com/.default /tenant-1/oauth2/v2.0/token
is "$STATUS" 200 "Entra ID token endpoint"

send() { # send TYPE CONTENT-TYPE BODY [CURL ARGS...]
	local t=$1 ct=$2 b=$3
	shift 3
	req "$CH" -H "authorization: Bearer $TOK" -H "x-wns-type: $t" \
		-H "content-type: $ct" --data-binary "$b" "$@"
}
desc() { hdr x-wns-error-description; }

send wns/toast text/xml "$TOAST" -H 'ms-cv: abc.1'
is "$STATUS/$(hdr x-wns-status)" 200/received "toast accepted"
like "$(hdr x-wns-msg-id)" '^[0-9a-f]{16}$' "X-WNS-Msg-ID"
is "$(hdr ms-cv)" abc.1 "MS-CV echoed"
send wns/tile text/xml '<tile><visual/></tile>' -H 'x-wns-tag: tag1' \
	-H 'x-wns-ttl: 60' -H 'x-wns-cache-policy: cache' -H 'x-wns-priority: 2'
is "$STATUS" 200 "tile with tag, ttl, cache policy, priority"
send wns/badge text/xml '<badge value="3"/>' -H 'x-wns-requestforstatus: true'
is "$STATUS/$(hdr x-wns-deviceconnectionstatus)" 200/connected \
	"badge with RequestForStatus"
send wns/raw application/octet-stream 'raw bytes'
is "$STATUS" 200 "raw accepted"

send wns/banner text/xml "$TOAST"
is "$STATUS" 400 "unknown X-WNS-Type"
like "$(desc)" 'X-WNS-Type' "with X-WNS-Error-Description"
req "$CH" -H "authorization: Bearer $TOK" -H 'content-type: text/xml' \
	--data-binary "$TOAST"
is "$STATUS" 400 "missing X-WNS-Type"
send wns/raw text/xml 'x'
is "$STATUS" 400 "raw needs application/octet-stream"
send wns/toast application/octet-stream "$TOAST"
is "$STATUS" 400 "toast needs text/xml"
send wns/toast text/xml "$TOAST" -H 'x-wns-tag: t1'
is "$STATUS" 400 "X-WNS-Tag on a toast"
send wns/tile text/xml '<tile/>' -H 'x-wns-tag: 12345678901234567'
is "$STATUS" 400 "X-WNS-Tag longer than 16"
send wns/toast text/xml "$TOAST" -H 'x-wns-ttl: soon'
is "$STATUS" 400 "bad X-WNS-TTL"
send wns/toast text/xml "$TOAST" -H 'x-wns-priority: 5'
is "$STATUS" 400 "X-WNS-PRIORITY out of 1-4"
send wns/toast text/xml "$TOAST" -H 'x-wns-cache-policy: maybe'
is "$STATUS" 400 "bad X-WNS-Cache-Policy"
send wns/toast text/xml '<tile/>'
is "$STATUS" 400 "XML root does not match the type"
send wns/raw application/octet-stream ''
is "$STATUS" 400 "empty raw"
big=$(head -c 5001 /dev/zero | tr '\0' x)
send wns/raw application/octet-stream "$big"
is "$STATUS" 413 "payload over 5000 bytes"
send wns/raw application/octet-stream "${big:0:5000}"
is "$STATUS" 200 "payload of 5000 bytes"
req "$CH" -H 'x-wns-type: wns/raw' -H 'content-type: application/octet-stream' \
	--data-binary x
is "$STATUS" 401 "no access token"
req "$CH" -X GET -H "authorization: Bearer $TOK"
is "$STATUS" 405 "GET is not allowed"
req "$B/w/" -H "authorization: Bearer $TOK" -d x
is "$STATUS" 404 "no channel token"
req "$CH" -H "authorization: Bearer $TOK" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' -H 'transfer-encoding: chunked' \
	--data-binary x
is "$STATUS" 411 "chunked body refused"

ctl POST /config '{"expire_tokens":true}' >/dev/null
send wns/toast text/xml "$TOAST"
is "$STATUS/$(desc)" "401/Token expired" "expired token: 401"
like "$(hdr www-authenticate)" 'expired' "WWW-Authenticate says expired"
token
TOK=$(jget "$BODY" access_token)

# --- scripted answers ---
row() { # row STATUS [REASON] WANT-WNS-STATUS NAME
	local ch=ch$T
	ctl POST /rules "{\"provider\":\"wns\",\"token\":\"$ch\",\"status\":$1${2:+,\"reason\":\"$2\"}}" >/dev/null
	req "$B/w/?token=$ch" -H "authorization: Bearer $TOK" \
		-H 'x-wns-type: wns/raw' -H 'content-type: application/octet-stream' \
		--data-binary x
	is "$STATUS/$(hdr x-wns-status)" "$1/$3" "$4"
}
row 200 dropped dropped "200 dropped"
row 200 channelthrottled channelthrottled "200 channelthrottled"
row 400 "" "" "scripted 400"
row 401 "" "" "scripted 401"
row 403 "" "" "scripted 403"
row 404 "" "" "scripted 404"
row 405 "" "" "scripted 405"
row 406 "" "" "scripted 406"
is "$(hdr retry-after)" 60 "406 carries Retry-After"
row 410 "" "" "scripted 410"
like "$(desc)" 'expired' "410 says the channel expired"
row 410 "Domain Blocked" "" "scripted 410 Domain Blocked"
is "$(desc)" "Domain Blocked" "with its description"
row 413 "" "" "scripted 413"
row 500 "" "" "scripted 500"
ctl POST /rules '{"provider":"wns","token":"down","status":503,"retry_after":120}' >/dev/null
req "$B/w/?token=down" -H "authorization: Bearer $TOK" -H 'x-wns-type: wns/raw' \
	-H 'content-type: application/octet-stream' --data-binary x
is "$STATUS/$(hdr retry-after)" 503/120 "503 with Retry-After"
l=$(logline)
is "$(jget "$l" provider)/$(jget "$l" token)/$(jget "$l" http)" wns/down/1.1 \
	"log line for WNS"
finish
