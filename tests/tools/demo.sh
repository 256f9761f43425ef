#!/usr/bin/env bash
# demo.sh - `make demo` (`./pgpush demo`): pgpush end to end on this
# machine, in about a minute.
#
#   1. a local PostgreSQL cluster in /tmp/pgpush-demo-UID/pg (its own port
#      and Unix socket, no TCP; as root the server runs as the
#      unprivileged `postgres` account, which is why it lives under /tmp
#      and not in the checkout: /root is closed to other users), or the
#      database named by PGPUSH_DB (a libpq connection string) when set;
#   2. `pgpushd migrate`;
#   3. the fake FCM server (tests/fakes/) on free loopback ports, with a
#      throwaway CA and service account;
#   4. an app with (fake) FCM credentials, 10,000 devices, 100,000 pushes;
#   5. `pgpushd run` with a progress line once a second (sent/s, queue
#      depth); when the queue is empty, SIGTERM (it drains and exits 0);
#   6. a summary from push.stats_minute and push.deliveries.
# Everything it started is stopped and its data removed at the end, also
# on ^C or failure.  With PGPUSH_DB the demo app and all of its rows are
# deleted again.
#
# DEMO_KEEP=1 keeps it all running after a successful run - Postgres, the
# fake FCM and a fresh pgpushd - and prints the commands to try by hand;
# `demo.sh --stop` (./pgpush demo-stop) stops them and removes the data.
#
#   DEMO_DEVICES=10000  DEMO_PUSHES=100000  DEMO_DIR=/tmp/pgpush-demo-UID
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$tools_top"

DEVICES=${DEMO_DEVICES:-10000}
PUSHES=${DEMO_PUSHES:-100000}
# A short path: the Unix socket's path must stay under 108 bytes.
demo=${DEMO_DIR:-/tmp/pgpush-demo-$(id -u)}
app_name=demo
app=
db=
current=
kept=
# The logs that explain a failure of the current step (others are noise).
step_logs=

step() { current=$*; step_logs=; printf '\n== %s\n' "$*"; }
calc() { awk "BEGIN { print $1 }"; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" -c "$1"; }

# stop_kept: stop what a DEMO_KEEP=1 run left (recorded in $demo/kept),
# or a cluster a killed run left behind; remove $demo.
stop_kept() {
	local DEMO_DAEMON_PID= DEMO_FAKE_PID=
	[ -d "$demo" ] || return 0
	if [ "$(stat -c %u "$demo")" != "$(id -u)" ]; then
		echo "demo: $demo belongs to someone else; set DEMO_DIR" >&2
		return 1
	fi
	# shellcheck disable=SC1091
	[ -f "$demo/kept" ] && . "$demo/kept"
	# Only our own processes: the pid must still run our programs.
	[ -n "$DEMO_DAEMON_PID" ] &&
		[ "$(readlink "/proc/$DEMO_DAEMON_PID/exe" 2>/dev/null)" = \
		  "$(readlink -f "$PGPUSHD")" ] && stop_pid "$DEMO_DAEMON_PID"
	[ -n "$DEMO_FAKE_PID" ] &&
		[ "$(readlink "/proc/$DEMO_FAKE_PID/exe" 2>/dev/null)" = \
		  "$(readlink -f "$FAKE")" ] && stop_pid "$DEMO_FAKE_PID"
	if [ -f "$demo/pg/data/postmaster.pid" ]; then
		tools_pg_dir=$demo/pg
		[ "$(id -u)" -eq 0 ] && as_server() {
			runuser -u "$(stat -c %U "$demo/pg")" -- env -C / "$@"; }
		pg_stop
		tools_pg_dir=
	fi
	rm -rf "$demo"
}

if [ "${1:-}" = --stop ]; then
	if [ -d "$demo" ]; then
		stop_kept
		echo "demo: stopped and removed $demo"
	else
		echo "demo: nothing running ($demo does not exist)"
	fi
	exit 0
fi

cleanup() {
	local rc=$?
	trap - INT TERM HUP
	[ -n "${progress_nl:-}" ] && echo
	if [ $rc -eq 0 ] && [ -n "$kept" ]; then
		exit 0
	fi
	if [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ -n "$current" ]; then
		echo "demo: FAILED while: $current" >&2
	fi
	stop_pid "$tools_daemon_pid"; tools_daemon_pid=
	stop_pid "$tools_fake_pid"; tools_fake_pid=
	if [ -n "${PGPUSH_DB:-}" ] && [ -n "$app" ] && [ -z "${DEMO_KEEP:-}" ]
	then
		psql -X -q -d "$db" -c "
		DELETE FROM push.queue WHERE app_id = $app;
		DELETE FROM push.deliveries WHERE app_id = $app;
		DELETE FROM push.stats_minute WHERE app_id = $app;
		DELETE FROM push.stats_inbox WHERE app_id = $app;
		DELETE FROM push.pushes WHERE app_id = $app;
		DELETE FROM push.apps WHERE id = $app;" >/dev/null 2>&1 ||
			echo "demo: could not remove app $app_name from PGPUSH_DB" >&2
	fi
	pg_stop
	if [ $rc -ne 0 ] && [ $rc -ne 130 ]; then
		for f in $step_logs; do
			[ -s "$demo/$f" ] && { echo "demo: last lines of $f:" >&2
				tail -n 15 "$demo/$f" >&2; }
		done
	fi
	if [ -n "${DEMO_KEEP:-}" ] && [ $rc -ne 0 ]; then
		echo "demo: kept $demo for a look; ./pgpush demo-stop removes it"
	else
		rm -rf "$demo"
	fi
	[ $rc -eq 0 ] && echo "demo: cleaned up."
	exit $rc
}

[ -x "$PGPUSHD" ] && [ -x "$FAKE" ] || {
	echo "demo: build first: make all fakes (or make demo)" >&2; exit 1; }

# A demo left running (DEMO_KEEP=1) or by a killed run: stop it, start
# afresh.
if [ -d "$demo" ]; then
	echo "demo: stopping the demo left in $demo"
	stop_kept
fi
mkdir -m 755 "$demo"
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ -n "${PGPUSH_DB:-}" ]; then
	step "using PGPUSH_DB"
	db=$PGPUSH_DB
	app_name=pgpush-demo-$$
else
	step "starting PostgreSQL in $demo/pg (port and socket of its own, no TCP)"
	step_logs="pg/initdb.log pg/server.log"
	pg_start "$demo/pg"
	createdb pgpush_demo
	db="host=$PGHOST port=$PGPORT user=postgres dbname=pgpush_demo"
fi

step "migrating: build/pgpushd migrate"
step_logs="pg/server.log"
"$PGPUSHD" migrate --db "$db"

step "starting the fake FCM server (tests/fakes, test CA in $demo/certs)"
step_logs="fake.out"
fake_start "$demo"
echo "fake FCM on https://127.0.0.1:$FCM_PORT (OAuth token endpoint /token)"

step "creating app '$app_name' with FCM credentials for the fake"
app=$(app_setup "$db" "$app_name" "$demo/certs")
q "SELECT 'app_id ' || id || ', ' || name || ', window ' || min_concurrency
   || '..' || max_concurrency FROM push.apps WHERE id = $app"

step "registering $DEVICES FCM devices: push.register_device(...)"
t=$(date +%s.%N)
devices_setup "$db" "$app" "$DEVICES"
printf '%d devices in %.1f s\n' "$DEVICES" "$(calc "$(date +%s.%N) - $t")"

step "enqueueing $PUSHES pushes: one INSERT INTO push.pushes ... SELECT"
t=$(date +%s.%N)
enqueue "$db" "$app" "$PUSHES"
printf '%d pushes queued in %.1f s\n' "$PUSHES" \
	"$(calc "$(date +%s.%N) - $t")"

step "running the dispatcher: build/pgpushd run (log in $demo/daemon.log)"
step_logs="daemon.log fake.out"
"$PGPUSHD" run --db "$db" >"$demo/daemon.log" 2>&1 &
tools_daemon_pid=$!
progress_nl=1
prev_sent=0
prev_t=$(date +%s.%N)
t_start=$prev_t
while :; do
	sleep 0.8
	kill -0 "$tools_daemon_pid" 2>/dev/null || {
		echo; echo "demo: the daemon exited early" >&2; exit 1; }
	read -r depth sent failed < <(q "
	    SELECT (SELECT count(*) FROM push.queue WHERE app_id = $app),
	           count(*) FILTER (WHERE outcome = 'sent'),
	           count(*) FILTER (WHERE outcome <> 'sent')
	    FROM push.deliveries WHERE app_id = $app" | tr '|' ' ')
	now=$(date +%s.%N)
	rate=$(calc "int(($sent - $prev_sent) / ($now - $prev_t))")
	line=$(printf '%6.1f s  sent %7d  (%6d/s)  other outcomes %5d  queue depth %7d' \
		"$(calc "$now - $t_start")" "$sent" "$rate" "$failed" "$depth")
	if [ -t 1 ]; then printf '\r%s' "$line"; else echo "$line"; fi
	prev_sent=$sent prev_t=$now
	[ "$depth" -eq 0 ] && break
	[ "$(calc "($now - $t_start > 600) ? 1 : 0")" -eq 1 ] && {
		echo; echo "demo: still not empty after 10 minutes" >&2; exit 1; }
done
[ -t 1 ] && echo
progress_nl=

step "queue empty: SIGTERM to the daemon (it flushes outcomes and stats)"
step_logs="daemon.log"
kill -TERM "$tools_daemon_pid"
rc=0
wait "$tools_daemon_pid" || rc=$?
tools_daemon_pid=
echo "pgpushd exited with status $rc"
[ $rc -eq 0 ] || exit 1

step "summary"
step_logs="daemon.log"
psql -X -q -d "$db" -P footer=off <<SQL
\echo 'push.stats_minute, by outcome (latency: enqueue -> provider answer, from the histogram):'
SELECT outcome, sum(count) AS pushes,
       round((sum(latency_ms_sum) / nullif(sum(count), 0))::numeric, 1) AS avg_ms,
       push.hist_percentile(push.hist_merge(latency_hist), 0.50) AS p50_ms,
       push.hist_percentile(push.hist_merge(latency_hist), 0.95) AS p95_ms,
       push.hist_percentile(push.hist_merge(latency_hist), 0.99) AS p99_ms
FROM push.stats_minute WHERE app_id = $app GROUP BY outcome ORDER BY 2 DESC;
\echo 'push.deliveries:'
SELECT count(*) FILTER (WHERE outcome = 'sent') AS sent,
       count(*) FILTER (WHERE outcome <> 'sent') AS other_outcomes,
       count(DISTINCT push_id) AS distinct_pushes,
       round(extract(epoch FROM max(finished_at) - min(sent_at))::numeric, 2)
         AS seconds,
       round(count(*) FILTER (WHERE outcome = 'sent') /
         extract(epoch FROM max(finished_at) - min(sent_at))) AS pushes_per_s
FROM push.deliveries WHERE app_id = $app;
SQL
reasons=$(q "SELECT outcome || ': ' || coalesce(provider_reason, '-') || ' ('
              || count(*) || ')'
             FROM push.deliveries WHERE app_id = $app AND outcome <> 'sent'
             GROUP BY outcome, provider_reason ORDER BY count(*) DESC LIMIT 5")
if [ -n "$reasons" ]; then
	echo "not sent, by reason:"
	echo "$reasons" | sed 's/^/  /'
fi
cat <<'EOF'
(All the pushes were queued before the daemon started, so the latency
is mostly time spent waiting in the queue, not the dispatcher's own delay:
`make bench` measures both.)
EOF
sent=$(q "SELECT count(*) FROM push.deliveries
          WHERE app_id = $app AND outcome = 'sent'")
if [ "$sent" -ne "$PUSHES" ]; then
	echo "demo: only $sent of $PUSHES pushes were sent (see above)" >&2
	exit 1
fi
current=

if [ -z "${DEMO_KEEP:-}" ]; then
	cat <<'EOF'

Next: `DEMO_KEEP=1 ./pgpush demo` leaves Postgres, the fake FCM and
pgpushd running afterwards and prints commands to try by hand.
EOF
	exit 0
fi

step "DEMO_KEEP=1: pgpushd, the fake FCM and Postgres keep running"
step_logs="daemon.log"
"$PGPUSHD" run --db "$db" >>"$demo/daemon.log" 2>&1 &
tools_daemon_pid=$!
sleep 0.5
kill -0 "$tools_daemon_pid" 2>/dev/null || {
	echo "demo: pgpushd did not start again" >&2; exit 1; }
printf 'DEMO_DAEMON_PID=%s\nDEMO_FAKE_PID=%s\n' "$tools_daemon_pid" \
	"$tools_fake_pid" >"$demo/kept"
kept=1
if [ -n "${PGPUSH_DB:-}" ]; then
	env_line="# (the database of PGPUSH_DB)"
	psql_cmd="psql \"$db\""
else
	env_line="export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres PGDATABASE=pgpush_demo"
	psql_cmd=psql
fi
cat <<EOF
Try by hand (in this directory; pgpushd logs to $demo/daemon.log):

  $env_line

  # enqueue a push to a user (the demo registered user-0 ... user-$((DEVICES / 3)))
  $psql_cmd -c "INSERT INTO push.pushes (app_id, user_id, payload) VALUES (push.app_id('$app_name'), 'user-7', '{\"title\": \"Hello\", \"body\": \"by hand\"}')"

  # what happened to it, and the hourly statistics
  $psql_cmd -c "SELECT push_id, outcome, provider_reason, finished_at FROM push.deliveries ORDER BY finished_at DESC LIMIT 3"
  $psql_cmd -c "SELECT hour, total, sent, failed, no_device, latency_ms_p50 FROM push.app_stats_hourly WHERE app_id = push.app_id('$app_name')"

  # ban the app for ten minutes: its pushes are now dropped (dropped_banned)
  $psql_cmd -v app=$app_name -v duration='10 minutes' -v reason='trying a ban' -f admin-sql/ban_app.sql
  $psql_cmd -v app=$app_name -f admin-sql/unban_app.sql

  # stop it all and remove $demo
  ./pgpush demo-stop
EOF
