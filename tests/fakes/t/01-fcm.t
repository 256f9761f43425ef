#!/usr/bin/env bash
# FCM HTTP v1 fake: OAuth2 JWT-bearer grant and messages:send, strict
# message validation and every scripted error row of PROTOCOLS.md 2.5.
. "$(dirname "$0")/lib.sh"
start_fake
now=$(date +%s)
GT=urn:ietf:params:oauth:grant-type:jwt-bearer

# --- OAuth2 token endpoint ---
oauth "$(fcm_assertion)"
is "$STATUS" 200 "valid assertion gets a token"
is "$VER" 2 "token endpoint over HTTP/2"
like "$(jget "$BODY" access_token)" '^ya29\.' "access_token issued"
is "$(jget "$BODY" expires_in)" 3599 "expires_in is the default 3599"
is "$(jget "$BODY" token_type)" Bearer "token_type Bearer"
TOK=$(jget "$BODY" access_token)

oauth "$(fcm_assertion "$(fcm_claims "" "" https://example.com/token)")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_grant "wrong audience refused"
oauth "$(fcm_assertion "$(fcm_claims "$now" $((now + 3601)))")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_grant "exp - iat > 1 h refused"
like "$(jget "$BODY" error_description)" 'short-lived' "with Google's text"
oauth "$(fcm_assertion "$(fcm_claims $((now - 7200)) $((now - 3600)))")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_grant "expired assertion refused"
oauth "$(fcm_assertion "$(fcm_claims $((now + 600)) $((now + 1200)))")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_grant "iat in the future refused"
oauth "$(fcm_assertion "$(fcm_claims)" "$CERTS/fcm-wrong.key")"
is "$(jget "$BODY" error_description)" "Invalid JWT Signature." \
	"assertion signed with another key refused"
oauth "$(fcm_assertion "$(fcm_claims "" "" "" "" nobody@example.com)")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_grant "unknown iss refused"
oauth "$(fcm_assertion "$(fcm_claims "" "" "" https://www.googleapis.com/auth/drive)")"
is "$STATUS/$(jget "$BODY" error)" 400/invalid_scope "wrong scope refused"
oauth "$(fcm_assertion "$(fcm_claims "" "" "" \
	'https://www.googleapis.com/auth/cloud-platform')")"
is "$STATUS" 200 "cloud-platform scope accepted"
req --http2 "https://127.0.0.1:$FCM_PORT/token" -d grant_type=password \
	-d "assertion=$(fcm_assertion)"
is "$STATUS/$(jget "$BODY" error)" 400/unsupported_grant_type "wrong grant_type"
req --http2 "https://127.0.0.1:$FCM_PORT/token" -H 'content-type: text/plain' \
	-d "grant_type=$GT&assertion=$(fcm_assertion)"
is "$STATUS" 400 "token endpoint needs a form body"
req --http1.1 "https://127.0.0.1:$FCM_PORT/token" -d "grant_type=$GT" \
	-d "assertion=$(fcm_assertion)"
is "$STATUS/$VER" 200/1.1 "token endpoint also over HTTP/1.1"

# --- send ---
fcm_send "$TOK" '{"message":{"token":"dev-1:abc","notification":{"title":"t","body":"b"},"data":{"k":"v"},"android":{"priority":"HIGH","ttl":"3.5s","collapse_key":"c"}}}'
is "$STATUS" 200 "valid message accepted"
like "$(jget "$BODY" name)" "^projects/$PROJECT/messages/" "name returned"
fcm_send "$TOK" '{"message":{"topic":"news"}}'
is "$STATUS" 200 "topic message accepted"
fcm_send "$TOK" '{"message":{"token":"dev-1"},"validate_only":true}'
is "$(jget "$BODY" name)" "projects/$PROJECT/messages/fake_message_id" \
	"validate_only answers fake_message_id"

req --http2 "https://127.0.0.1:$FCM_PORT/v1/projects/$PROJECT/messages:send" \
	-H "content-type: application/json" -d '{"message":{"token":"dev-1"}}'
is "$STATUS/$(jget "$BODY" error.status)" 401/UNAUTHENTICATED "no token: 401"
is "$(jget "$BODY" error.details)" "" "401 carries no FcmError"
fcm_send "ya29.c.made-up" '{"message":{"token":"dev-1"}}'
is "$STATUS" 401 "token we never issued: 401"
fcm_send "$TOK" '{"message":{"token":"dev-1"}}' other-project
is "$STATUS/$(jget "$BODY" error.status)" 403/PERMISSION_DENIED \
	"other project: 403 PERMISSION_DENIED"

bad() { # bad JSON NAME [FIELD]
	fcm_send "$TOK" "$1"
	is "$STATUS/$(jget "$BODY" error.status)/$(jget "$BODY" error.details.0.errorCode)" \
		400/INVALID_ARGUMENT/INVALID_ARGUMENT "$2"
}
bad '{"message":{"token":"a","topic":"b"}}' "two targets"
bad '{"message":{"notification":{"title":"x"}}}' "no target"
bad '{"message":{"token":"a","data":{"n":1}}}' "non-string data value"
bad '{"message":{"token":"a","notification":{"title":5}}}' "non-string title"
bad '{"message":{"token":"a","notification":{"sound":"x"}}}' "unknown notification field"
bad '{"message":{"token":"a","data":{"from":"x"}}}' "reserved data key from"
bad '{"message":{"token":"a","data":{"google.x":"x"}}}' "reserved data key google*"
bad '{"message":{"token":"a","data":{"gcm.x":"x"}}}' "reserved data key gcm*"
bad '{"message":{"token":"a","android":{"ttl":"10"}}}' "ttl without s"
bad '{"message":{"token":"a","android":{"ttl":"2419201s"}}}' "ttl over 4 weeks"
bad '{"message":{"token":"a","android":{"priority":"high"}}}' "priority enum"
bad '{"message":{"token":"a","bogus":1}}' "unknown message field"
bad '{"msg":{"token":"a"}}' "unknown top-level field"
bad '{"message":{"token":"a b"}}' "malformed registration token"
bad '{"message":{"topic":"/topics/x"}}' "topic with /topics/ prefix"
bad '{"message":' "invalid JSON"
big=$(head -c 4100 /dev/zero | tr '\0' x)
bad "{\"message\":{\"token\":\"a\",\"data\":{\"k\":\"$big\"}}}" "message > 4096 bytes"
mid=$(head -c 3000 /dev/zero | tr '\0' x)
bad "{\"message\":{\"topic\":\"t\",\"data\":{\"k\":\"$mid\"}}}" "topic message > 2048"
fcm_send "$TOK" "{\"message\":{\"token\":\"a\",\"data\":{\"k\":\"$mid\"}}}"
is "$STATUS" 200 "3000-byte token message fits"
fcm_send "$TOK" '{"message":{"token":"a b"}}'
is "$(jget "$BODY" error.details.1.fieldViolations.0.field)" message.token \
	"invalid token names message.token"

# --- scripted failures: every ErrorCode row ---
row() { # row CODE HTTP STATUS
	ctl POST /rules "{\"provider\":\"fcm\",\"token\":\"tok-$1\",\"reason\":\"$1\"}" >/dev/null
	fcm_send "$TOK" "{\"message\":{\"token\":\"tok-$1\"}}"
	is "$STATUS/$(jget "$BODY" error.code)/$(jget "$BODY" error.status)/$(jget "$BODY" error.details.0.errorCode)" \
		"$2/$2/$3/$1" "scripted $1"
}
row UNREGISTERED 404 NOT_FOUND
row INVALID_ARGUMENT 400 INVALID_ARGUMENT
row SENDER_ID_MISMATCH 403 PERMISSION_DENIED
row QUOTA_EXCEEDED 429 RESOURCE_EXHAUSTED
is "$(jget "$BODY" error.details.1.@type)" \
	type.googleapis.com/google.rpc.QuotaFailure "with a QuotaFailure detail"
row UNAVAILABLE 503 UNAVAILABLE
row INTERNAL 500 INTERNAL
row THIRD_PARTY_AUTH_ERROR 401 UNAUTHENTICATED
row APNS_AUTH_ERROR 401 UNAUTHENTICATED
for r in UNAUTHENTICATED:401 PERMISSION_DENIED:403; do
	ctl POST /rules "{\"provider\":\"fcm\",\"token\":\"t-${r%:*}\",\"reason\":\"${r%:*}\"}" >/dev/null
	fcm_send "$TOK" "{\"message\":{\"token\":\"t-${r%:*}\"}}"
	is "$STATUS/$(jget "$BODY" error.status)/$(jget "$BODY" error.details)" \
		"${r#*:}/${r%:*}/" "scripted ${r%:*} (no FcmError detail)"
done

ctl POST /rules '{"provider":"fcm","token":"busy","status":503,"retry_after":7}' >/dev/null
fcm_send "$TOK" '{"message":{"token":"busy"}}'
is "$STATUS/$(hdr retry-after)" 503/7 "503 with Retry-After"
ctl POST /rules '{"provider":"fcm","token":"gw","status":502}' >/dev/null
fcm_send "$TOK" '{"message":{"token":"gw"}}'
like "$STATUS $(hdr content-type)" '^502 text/html' "502 with an HTML body"
ctl POST /rules '{"provider":"fcm","token":"flaky","status":500,"times":2}' >/dev/null
for i in 1 2 3; do fcm_send "$TOK" '{"message":{"token":"flaky"}}'; s[$i]=$STATUS; done
is "${s[1]} ${s[2]} ${s[3]}" "500 500 200" "fail 2 times then succeed"
c=$(ctl GET "/counters?provider=fcm&token=flaky")
is "$(jget "$c" fcm.flaky.requests)/$(jget "$c" fcm.flaky.failed)/$(jget "$c" fcm.flaky.ok)" \
	3/2/1 "per-token counters"

# --- token expiry (REAUTH) ---
ctl POST /config '{"fcm_token_ttl":120}' >/dev/null
oauth "$(fcm_assertion)"
is "$(jget "$BODY" expires_in)" 120 "shortened token lifetime"
TOK2=$(jget "$BODY" access_token)
ctl POST /config '{"expire_tokens":true}' >/dev/null
fcm_send "$TOK2" '{"message":{"token":"dev-1"}}'
is "$STATUS/$(jget "$BODY" error.status)" 401/UNAUTHENTICATED "expired token: 401"
ctl POST /rules '{"provider":"fcm","token":"'"$SA_EMAIL"'","status":503,"times":1}' >/dev/null
oauth "$(fcm_assertion)"
is "$STATUS" 503 "token endpoint can be scripted (by iss)"

# --- request log ---
fcm_send "$(fcm_token)" '{"message":{"token":"logged","data":{"a":"b"}}}'
l=$(logline)
is "$(jget "$l" provider)/$(jget "$l" token)/$(jget "$l" response.status)" \
	fcm/logged/200 "log line: provider, token, status"
is "$(jget "$l" path)" "/v1/projects/$PROJECT/messages:send" "log line: path"
like "$(jget "$l" body)" '"logged"' "log line: body"
like "$(jget "$l" headers.authorization)" '^Bearer ya29' "log line: headers"
like "$(jget "$l" time)" '^20[0-9-]+T[0-9:.]+Z$' "log line: time"
finish
