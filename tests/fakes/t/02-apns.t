#!/usr/bin/env bash
# APNs fake: token auth (ES256 JWT: key, team, age, re-mint window),
# certificate auth, every header rule, scripted reasons, stream limits.
. "$(dirname "$0")/lib.sh"
start_fake
now=$(date +%s)
U="https://127.0.0.1:$APNS_PORT/3/device"
TOPIC=com.example.app
PAYLOAD='{"aps":{"alert":"hi"}}'

# first JWT: minted 21.5 minutes ago, so a fresh one is allowed later
J1=$(apns_jwt $((now - 1290)))
push() { # push JWT [TOKEN] [CURL ARGS...]
	local j=$1 t=${2:-$APNS_TOKEN}
	shift 2 || shift $#
	req --http2 "$U/$t" -H "authorization: bearer $j" \
		-H "apns-topic: $TOPIC" "$@"
}
reason() { jget "$BODY" reason; }

push "$J1" "" -d "$PAYLOAD"
is "$STATUS/$VER" 200/2 "valid token-auth push accepted over HTTP/2"
like "$(hdr apns-id)" '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-' "apns-id generated"
is "$BODY" "" "success has an empty body"
push "$J1" "" -H 'apns-id: 123e4567-e89b-12d3-a456-426614174000' -d "$PAYLOAD"
is "$(hdr apns-id)" 123e4567-e89b-12d3-a456-426614174000 "apns-id echoed"

# --- token authentication ---
req --http2 "$U/$APNS_TOKEN" -H "apns-topic: $TOPIC" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/MissingProviderToken "no JWT"
push "$(apns_jwt "$now" "$KID" "$CERTS/apns-wrong.p8")" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/InvalidProviderToken "JWT signed with the wrong key"
push "$(apns_jwt "$now" ZZZ9999999)" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/InvalidProviderToken "unknown key id"
push "$(apns_jwt "$now" "$KID" "" OTHERTEAM1)" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/InvalidProviderToken "iss is not the key's team"
push "$(apns_jwt $((now - 3700)))" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/ExpiredProviderToken "JWT older than one hour"
push "$(apns_jwt $((now - 1000)))" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 429/TooManyProviderTokenUpdates \
	"new JWT minted < 20 min after the last one"
J2=$(apns_jwt "$now")
push "$J2" "" -d "$PAYLOAD"
is "$STATUS" 200 "new JWT minted >= 20 min after the last one"
push "$J1" "" -d "$PAYLOAD"
is "$STATUS" 200 "the previous JWT stays valid until it expires"
push "$(apns_jwt $((now + 1)))" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 429/TooManyProviderTokenUpdates "re-mint 1 s later"
ctl POST /config '{"apns_jwt_min_refresh":0}' >/dev/null
push "$(apns_jwt $((now + 2)))" "" -d "$PAYLOAD"
is "$STATUS" 200 "window switched off through /config"
ctl POST /config '{"apns_jwt_max_age":60}' >/dev/null
push "$(apns_jwt $((now - 90)))" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/ExpiredProviderToken "shortened max age"
ctl POST /config '{"apns_jwt_max_age":3600}' >/dev/null
push "garbage.jwt.here" "" -d "$PAYLOAD"
is "$STATUS/$(reason)" 403/InvalidProviderToken "malformed JWT"

# --- header rules ---
J=$J2
push "$J" "" -H 'apns-id: not-a-uuid' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadMessageId "bad apns-id"
req --http2 "$U/$APNS_TOKEN" -H "authorization: bearer $J" -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/MissingTopic "token auth without apns-topic"
push "$J" "" -H "apns-collapse-id: $(printf '%065d' 0)" -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadCollapseId "collapse id of 65 bytes"
push "$J" "" -H "apns-collapse-id: $(printf '%064d' 0)" -d "$PAYLOAD"
is "$STATUS" 200 "collapse id of 64 bytes"
push "$J" "" -H 'apns-priority: 7' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadPriority "priority 7"
push "$J" "" -H 'apns-push-type: banner' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/InvalidPushType "unknown push type"
push "$J" "" -H 'apns-push-type: voip' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadTopic "voip push without .voip topic"
push "$J" "" -H 'apns-push-type: background' -d '{"aps":{"content-available":1}}'
is "$STATUS/$(reason)" 400/BadPriority "background at (default) priority 10"
push "$J" "" -H 'apns-push-type: background' -H 'apns-priority: 5' \
	-d '{"aps":{"content-available":1}}'
is "$STATUS" 200 "background at priority 5"
push "$J" "" -H 'apns-expiration: tomorrow' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadExpirationDate "non-numeric expiration"
push "$J" "" -H 'apns-expiration: 0' -d "$PAYLOAD"
is "$STATUS" 200 "expiration 0"
push "$J" "" -H 'apns-topic: com.example.other' -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/DuplicateHeaders "repeated header"
push "$J" "xyz$APNS_TOKEN" -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadDeviceToken "non-hex device token"
push "$J" "abcd" -d "$PAYLOAD"
is "$STATUS/$(reason)" 400/BadDeviceToken "short device token"
push "$J" "${APNS_TOKEN}${APNS_TOKEN}" -d "$PAYLOAD"
is "$STATUS" 200 "128-hex-digit token accepted (not hard-coded 64)"
push "$J" "" -X POST
is "$STATUS/$(reason)" 400/PayloadEmpty "empty payload"
big=$(head -c 4090 /dev/zero | tr '\0' x)
push "$J" "" -d "{\"a\":\"$big\"}"
is "$STATUS/$(reason)" 413/PayloadTooLarge "4097-byte payload"
push "$J" "" -d "{\"a\":\"${big:0:4088}\"}"
is "$STATUS" 200 "4096-byte payload"
req --http2 "$U/$APNS_TOKEN" -H "authorization: bearer $J" \
	-H "apns-topic: $TOPIC.voip" -H 'apns-push-type: voip' \
	-d "{\"a\":\"$big$big\"}"
is "$STATUS/$(reason)" 413/PayloadTooLarge "VoIP payload over 5120"
req --http2 "$U/$APNS_TOKEN" -H "authorization: bearer $J" \
	-H "apns-topic: $TOPIC.voip" -H 'apns-push-type: voip' \
	-d "{\"a\":\"$big${big:0:1000}\"}"
is "$STATUS" 200 "VoIP payload of 5100 bytes"
req --http2 "$U/$APNS_TOKEN" -H "authorization: bearer $J"
is "$STATUS/$(reason)" 405/MethodNotAllowed "GET"
req --http2 "https://127.0.0.1:$APNS_PORT/2/device/$APNS_TOKEN" \
	-H "authorization: bearer $J" -d "$PAYLOAD"
is "$STATUS/$(reason)" 404/BadPath "bad path"
req --http2 "$U/" -H "authorization: bearer $J" -H "apns-topic: $TOPIC" \
	-d "$PAYLOAD"
is "$STATUS/$(reason)" 400/MissingDeviceToken "empty device token"

# --- ALPN: APNs is HTTP/2 only ---
req --http1.1 "$U/$APNS_TOKEN" -H "authorization: bearer $J" -d "$PAYLOAD"
ok $((CURL_RC == 0)) "HTTP/1.1-only client fails the handshake"

# --- certificate authentication ---
CC=(--cert "$CERTS/apns-client.pem" --key "$CERTS/apns-client.key")
req --http2 "${CC[@]}" "$U/$APNS_TOKEN" -d "$PAYLOAD"
is "$STATUS" 200 "client certificate, no JWT, topic from the cert"
is "$(jget "$(logline)" auth)" certificate "logged as certificate auth"
req --http2 "${CC[@]}" "$U/$APNS_TOKEN" -H 'apns-topic: org.other.app' \
	-d "$PAYLOAD"
is "$STATUS/$(reason)" 400/TopicDisallowed "topic not in the certificate"
req --http2 --cert "$CERTS/rogue-client.pem" --key "$CERTS/rogue-client.key" \
	"$U/$APNS_TOKEN" -d "$PAYLOAD"
ok $((CURL_RC == 0)) "certificate from another CA fails the handshake"

# --- scripted failures: every reason of the table ---
for r in BadCollapseId:400 BadDeviceToken:400 BadExpirationDate:400 \
	BadMessageId:400 BadPriority:400 BadTopic:400 \
	DeviceTokenNotForTopic:400 DuplicateHeaders:400 IdleTimeout:400 \
	InvalidPushType:400 MissingDeviceToken:400 MissingTopic:400 \
	PayloadEmpty:400 TopicDisallowed:400 BadCertificate:403 \
	BadCertificateEnvironment:403 ExpiredProviderToken:403 Forbidden:403 \
	InvalidProviderToken:403 MissingProviderToken:403 \
	UnrelatedKeyIdInToken:403 BadEnvironmentKeyIdInToken:403 BadPath:404 \
	MethodNotAllowed:405 ExpiredToken:410 PayloadTooLarge:413 \
	TooManyProviderTokenUpdates:429 TooManyRequests:429 \
	InternalServerError:500 ServiceUnavailable:503 Shutdown:503; do
	tok=$(printf '%064x' $((5000 + T)))
	ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$tok\",\"reason\":\"${r%:*}\"}" >/dev/null
	push "$J" "$tok" -d "$PAYLOAD"
	is "$STATUS/$(reason)" "${r#*:}/${r%:*}" "scripted ${r%:*}"
done
tok=$(printf '%064x' 4100)
ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$tok\",\"status\":410,\"reason\":\"Unregistered\",\"timestamp\":1700000000123}" >/dev/null
push "$J" "$tok" -d "$PAYLOAD"
is "$STATUS/$(reason)/$(jget "$BODY" timestamp)" 410/Unregistered/1700000000123 \
	"410 Unregistered with the scripted timestamp"
like "$(hdr apns-id)" '^[0-9a-f-]{36}$' "errors carry apns-id too"
tok=$(printf '%064x' 4101)
ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$tok\",\"status\":410}" >/dev/null
t0=$(($(date +%s) * 1000))
push "$J" "$tok" -d "$PAYLOAD"
ts=$(jget "$BODY" timestamp)
ok $((ts < t0 - 1000)) "410 timestamp defaults to now (ms)"
tok=$(printf '%064x' 4102)
ctl POST /rules "{\"provider\":\"apns\",\"token\":\"$tok\",\"status\":429,\"retry_after\":30}" >/dev/null
push "$J" "$tok" -d "$PAYLOAD"
is "$STATUS/$(reason)/$(hdr retry-after)" 429/TooManyRequests/30 "429 with Retry-After"

# --- concurrent streams: 1 until a valid JWT, then 1000 ---
# recv_max_streams: SETTINGS_MAX_CONCURRENT_STREAMS values the server sent
recv_max_streams() {
	awk '/ (recv|send) [A-Z_]+ frame/ { dir = $3 }
	     dir == "recv" && /SETTINGS_MAX_CONCURRENT_STREAMS/ {
		sub(/.*:/, ""); sub(/\]/, ""); printf "%s ", $0 }' \
		"$TMP/nghttp.out"
}
printf '%s' "$PAYLOAD" >"$TMP/p.json"
nghttp -nv -H ':method: POST' -H "authorization: bearer $J" \
	-H "apns-topic: $TOPIC" -d "$TMP/p.json" "$U/$APNS_TOKEN" \
	>"$TMP/nghttp.out" 2>&1
m=$(recv_max_streams)
is "$m" "1 1000 " "SETTINGS: 1 stream, 1000 after the first valid JWT"
nghttp -nv -H ':method: POST' -H "apns-topic: $TOPIC" -d "$TMP/p.json" \
	"$U/$APNS_TOKEN" >"$TMP/nghttp.out" 2>&1
m=$(recv_max_streams)
is "$m" "1 " "stays at 1 without a valid JWT"
finish
