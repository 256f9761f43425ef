#!/usr/bin/env bash
# enqueue_notify.t - the enqueue trigger sends one NOTIFY pgpush_enqueue per
# statement, whatever the row count and however many apps it touches, names
# the apps in the payload, and sends none when nothing was queued.
. "$(dirname "$0")/../harness/lib.sh"
plan 6

fresh_db notify
q notify "
  INSERT INTO push.apps (name)
    SELECT 'app' || i FROM generate_series(1, 10) i;
  INSERT INTO push.devices (app_id, platform, token, user_id)
    SELECT a.id, 'fcm', 'fcm-registration-token-' || a.id || '-' || i, 'u' || i
    FROM push.apps a, generate_series(1, 1000) i;" >/dev/null

# count_notifies SQL... - run statements in one session that LISTENs, each
# its own transaction; print how many notifications arrived and the payloads.
listen() {
	local args=(-c "LISTEN pgpush_enqueue")
	for s in "$@"; do args+=(-c "$s"); done
	args+=(-c "SELECT 1")
	psql -X -q -d notify "${args[@]}" 2>&1 |
		grep -o 'notification "pgpush_enqueue" with payload "[^"]*"'
}

out=$(listen "INSERT INTO push.pushes (app_id, device_id, payload)
	SELECT app_id, id, '{\"title\":\"hi\"}' FROM push.devices")
is "$(q notify 'SELECT count(*) FROM push.queue')" 10000 \
	"a 10,000-row INSERT ... SELECT over 10 apps queues 10,000 pushes"
is "$(printf '%s\n' "$out" | grep -c notification)" 1 \
	"and sends exactly one NOTIFY"
apps=$(q notify "SELECT string_agg(id::text, ',' ORDER BY id) FROM push.apps")
is "$(printf '%s\n' "$out" | sed 's/.*payload "\(.*\)"/\1/')" "$apps" \
	"whose payload lists the apps with new work"

out=$(listen "INSERT INTO push.pushes (app_id, user_id, payload)
	        VALUES (push.app_id('app1'), 'u1', '{\"title\":\"a\"}')" \
	     "INSERT INTO push.pushes (app_id, user_id, payload)
	        VALUES (push.app_id('app2'), 'u1', '{\"title\":\"b\"}')")
is "$(printf '%s\n' "$out" | grep -c notification)" 2 \
	"two statements in two transactions send two"

out=$(listen "INSERT INTO push.pushes (app_id, user_id, payload)
	        VALUES (push.app_id('app1'), 'nobody', '{\"title\":\"a\"}')")
is "$(printf '%s\n' "$out" | grep -c notification)" 0 \
	"a statement that queues nothing (user without devices) sends none"

out=$(listen "BEGIN" "INSERT INTO push.pushes (app_id, user_id, payload)
	        VALUES (push.app_id('app1'), 'u1', '{\"title\":\"a\"}')" \
	     "ROLLBACK")
is "$(printf '%s\n' "$out" | grep -c notification)" 0 \
	"a rolled-back insert sends none"
