#!/usr/bin/env bash
# MPNS fake: request headers, payload checks, the documented
# X-NotificationStatus / X-SubscriptionStatus / X-DeviceConnectionStatus
# combinations, the unauthenticated daily limit, certificate auth.
. "$(dirname "$0")/lib.sh"
start_fake
B="https://127.0.0.1:$MPNS_PORT/throttledthirdparty/01.00"
TOAST='<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification"><wp:Toast><wp:Text1>a</wp:Text1><wp:Text2>b</wp:Text2></wp:Toast></wp:Notification>'
TILE='<wp:Notification xmlns:wp="WPNotification"><wp:Tile><wp:Count>3</wp:Count></wp:Tile></wp:Notification>'
MID=0b9f4c6e-3c57-4b44-9a77-5a1f8b0e7d21

send() { # send CHANNEL TARGET CLASS BODY [CURL ARGS...]
	local ch=$1 tg=$2 cl=$3 b=$4
	shift 4
	req "$B/$ch" ${tg:+-H "x-windowsphone-target: $tg"} \
		-H "x-notificationclass: $cl" -H 'content-type: text/xml' \
		--data-binary "$b" "$@"
}
trio() { echo "$STATUS/$(hdr x-notificationstatus)/$(hdr x-subscriptionstatus)/$(hdr x-deviceconnectionstatus)"; }

send c1 toast 2 "$TOAST" -H "x-messageid: $MID"
is "$(trio)" 200/Received/Active/Connected "toast: 200 Received/Active/Connected"
is "$VER" 1.1 "MPNS speaks HTTP/1.1"
is "$(hdr x-messageid)" "$MID" "X-MessageID echoed"
send c1 token 11 "$TILE"
is "$STATUS" 200 "tile (target token, class 11)"
send c1 "" 3 'raw-bytes'
is "$STATUS" 200 "raw (no target, class 3)"
send c1 raw 23 'raw-bytes'
is "$STATUS" 200 "raw (target raw, class 23)"
send c1 tile 1 "$TILE"
is "$STATUS" 401 "invalid X-WindowsPhone-Target: 401"
send c1 toast 1 "$TOAST"
is "$STATUS" 400 "class 1 is not a toast class"
send c1 toast 2 '<wp:Notification xmlns:wp="WPNotification"/>'
is "$STATUS" 400 "toast without <wp:Toast>"
send c1 toast 2 "$TOAST" -H 'x-messageid: 42'
is "$STATUS" 400 "X-MessageID not a UUID"
send c1 "" 3 "$(head -c 1025 /dev/zero | tr '\0' x)"
is "$STATUS" 400 "raw over 1 KB"
send c1 toast 2 "$TOAST$(head -c 3000 /dev/zero | tr '\0' x)"
is "$STATUS" 400 "toast over 3 KB"
req "$B/c1" -X GET
is "$STATUS" 405 "GET: 405"

row() { # row STATUS REASON WANT NAME [HEADERS-JSON]
	local ch=ch$T
	ctl POST /rules "{\"provider\":\"mpns\",\"token\":\"$ch\",\"status\":$1${2:+,\"reason\":\"$2\"}${5:+,\"headers\":$5}}" >/dev/null
	send "$ch" toast 2 "$TOAST"
	is "$(trio)" "$3" "$4"
}
row 200 QueueFull 200/QueueFull/Active/Connected "200 QueueFull"
row 200 Suppressed 200/Suppressed/Active/Connected "200 Suppressed"
row 200 "" 200/Received/Active/TempDisconnected \
	"200 Received, TempDisconnected" '{"X-DeviceConnectionStatus":"TempDisconnected"}'
row 400 "" 400/// "400 without status headers"
row 401 "" 401/// "401"
row 404 "" 404/Dropped/Expired/Connected "404 Dropped/Expired"
row 405 "" 405/// "405"
row 406 "" 406/Dropped/Active/Connected "406 Dropped/Active"
row 412 "" 412/Dropped//Inactive "412 Dropped/Inactive"
row 503 "" 503/// "503"

ctl POST /config '{"mpns_daily_limit":2}' >/dev/null
send lim toast 2 "$TOAST"; a=$STATUS
send lim toast 2 "$TOAST"; b=$STATUS
send lim toast 2 "$TOAST"
is "$a $b $(trio)" "200 200 406/Dropped/Active/Connected" \
	"unauthenticated daily limit: then 406"
send lim toast 2 "$TOAST" --cert "$CERTS/mpns-client.pem" \
	--key "$CERTS/mpns-client.key"
is "$STATUS" 200 "authenticated (client certificate): no limit"
is "$(jget "$(logline)" auth)" certificate "logged as certificate"
finish
