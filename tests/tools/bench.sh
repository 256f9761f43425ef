#!/usr/bin/env bash
# bench.sh - `make bench`: the dispatcher's throughput against its raw SQL
# ceiling, on a throwaway Postgres (fsync=off) and the fake FCM in --sink
# mode, all on this machine.  Prints ONE JSON line on stdout (progress goes
# to stderr).
#
#   BENCH_N=200000      pushes drained (default 200,000)
#   BENCH_PLATFORM=fcm  or `apns`: the same run through the APNs sender
#       (token auth, ES256 JWT, HTTP/2 to the fake APNs in --sink mode,
#       10,000 APNs devices); the JSON line names the platform
#   BENCH_MODE=drain    (default) the raw ceiling, then the daemon:
#       1. enqueue N, drain them with tests/tools/sqlceiling.c (the daemon's
#          CLAIM_SQL and ACK_SQL from dispatcher/core/claim.c and ack.c, same
#          batch size, same 1000-row acks, no HTTP; like the daemon it
#          claims on one connection while it acks on another) -> rows/s;
#       2. enqueue N again (VACUUM ANALYZE after each enqueue), run
#          build/pgpushd until the queue is empty -> pushes/s from the
#          first send to the last ack
#          (push.deliveries), p50/p99 enqueue->sent latency, daemon CPU
#          seconds per 10,000 pushes (/proc/PID/stat), peak RSS (VmHWM),
#          most Postgres connections of the daemon seen in pg_stat_activity
#          (sampled every 200 ms); CPU seconds per 10,000 of all postgres
#          processes and of the fake over the drain.  fsync=off is reported
#          as a field.
#   BENCH_MODE=latency  light load: pgbench offers BENCH_RATE (2,000) single-
#       row INSERTs per second (BENCH_CLIENTS=4 pgbench clients) for
#       BENCH_SECONDS (10) to a running daemon;
#       p50/p99 from the commit of each insert (its commit timestamp:
#       the cluster runs with track_commit_timestamp) to the provider's
#       answer handled by the daemon; also from the insert's transaction
#       start (push.deliveries.latency_ms), which adds the insert itself.
#   BENCH_RUNS=1        drain mode: that many drains (ceiling + daemon) in
#       a row; the line is the median run's (by pushes/s) plus `runs` (each
#       run's figures) and the medians of pushes/s and of the share of the
#       ceiling
#   BENCH_BATCH=500     the daemon's --batch-size (and the ceiling's)
#   BENCH_CEILING_MODE=pipe  or `seq`: claim, ack, claim... on one connection
#   BENCH_CEILING=0     skip the raw ceiling (e.g. a long peak-RSS run)
#   BENCH_KEEP=1        keep the temp dir (logs) and say where it is
#   BENCH_HOLD_SNAPSHOT=1  drain mode: one REPEATABLE READ transaction stays
#       open through the daemon's drain (a long report, a pg_dump), so no
#       delivered queue row can be cleaned up (docs/operations.md, "When
#       things go wrong")
#   PGPUSHD, FAKE       other binaries than build/pgpushd, build/fakes/pgpush-fake
#   PGPUSH_HTTP_THREADS the daemon's --http-threads (its default when unset);
#                       the JSON line says which ran ("http_threads")
#   PGPUSH_H2_DIRECT    the daemon's --h2-direct (1 when unset: FCM on its
#                       own HTTP/2 client; 0: libcurl); JSON "h2_direct"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$tools_top"

N=${BENCH_N:-200000}
MODE=${BENCH_MODE:-drain}
BATCH=${BENCH_BATCH:-500}
CEILING_MODE=${BENCH_CEILING_MODE:-pipe}
RATE=${BENCH_RATE:-2000}
SECS=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-1}
PLATFORM=${BENCH_PLATFORM:-fcm}
export BENCH_PLATFORM=$PLATFORM   # sqlceiling claims this platform
case $RUNS in ''|*[!0-9]*|0)
	echo "bench: BENCH_RUNS must be a positive integer" >&2; exit 1 ;; esac
case $PLATFORM in fcm|apns) ;; *)
	echo "bench: BENCH_PLATFORM must be fcm or apns" >&2; exit 1 ;; esac
DEVICES=10000
DB=bench

tmp=$(mktemp -d /tmp/pgpush-bench.XXXXXX)
chmod 755 "$tmp"
sampler_pid=
holder_pid=

cleanup() {
	local rc=$?
	[ -n "$sampler_pid" ] && { kill "$sampler_pid" 2>/dev/null || true
		wait "$sampler_pid" 2>/dev/null || true; }
	[ -n "$holder_pid" ] && { kill "$holder_pid" 2>/dev/null || true
		wait "$holder_pid" 2>/dev/null || true; }
	tools_cleanup
	if [ $rc -ne 0 ] && [ $rc -ne 130 ]; then
		for f in daemon.log server.log fake.out; do
			[ -s "$tmp/$f" ] && { echo "bench: last lines of $f:" >&2
				tail -n 15 "$tmp/$f" >&2; }
		done
	fi
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say() { echo "bench: $*" >&2; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" -c "$1"; }
now() { date +%s.%N; }

[ -x "$PGPUSHD" ] && [ -x "$FAKE" ] || {
	echo "bench: build first (make all fakes)" >&2; exit 1; }

# The raw-ceiling program: the daemon's own claim/ack code (its statements
# and parameter builders), compiled from dispatcher/ - not from
# build/libpgpush.a, which may be a sanitizer build.
cc -O2 -std=c11 -D_GNU_SOURCE -Idispatcher \
	$(pkg-config --cflags libpq) -o "$tmp/sqlceiling" \
	tests/tools/sqlceiling.c dispatcher/core/claim.c dispatcher/core/ack.c \
	dispatcher/db/sqlarr.c dispatcher/base/push.c dispatcher/base/mem.c \
	dispatcher/base/buf.c \
	$(pkg-config --libs libpq) -lpthread

say "starting a throwaway Postgres (fsync=off) and the fake $PLATFORM (--sink)"
pg_extra=
# Latency is measured from each insert's commit (its commit timestamp).
[ "$MODE" = latency ] && pg_extra=track_commit_timestamp=on
pg_start "$tmp/pg" fsync=off synchronous_commit=off full_page_writes=off \
	$pg_extra
createdb "$DB"
"$PGPUSHD" migrate --db "dbname=$DB" --migrations-dir migrations \
	>"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; exit 1; }
fake_start "$tmp" --sink

if [ "$PLATFORM" = apns ]; then
	# Token auth with the fake's test key; the sink checks nothing but
	# the daemon signs, sends and classifies exactly as for Apple.
	app=$(psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" \
		-v key="$(cat "$tmp/certs/apns-key.p8")" \
		-v ep="https://127.0.0.1:$APNS_PORT" \
		-v ca="$tmp/certs/ca.pem" <<-'SQL'
	INSERT INTO push.apps (name) VALUES ('bench');
	INSERT INTO push.apns_credentials (app_id, auth_method, topic,
	    team_id, key_id, signing_key, endpoint, ca_bundle_path)
	VALUES (push.app_id('bench'), 'token', 'com.example.app',
	    'TEAM123456', 'ABC123DEFG', :'key', :'ep', :'ca');
	SELECT push.app_id('bench');
	SQL
	)
	psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" -c "
	SELECT count(push.register_device($app, 'apns',
	    encode(sha256(i::text::bytea), 'hex'), 'user-' || (i / 3)))
	FROM generate_series(1, $DEVICES) AS i" >/dev/null
else
	app=$(app_setup "$DB" bench "$tmp/certs")
	devices_setup "$DB" "$app" "$DEVICES"
fi
conn="dbname=$DB"

# Daemon start/stop with its CPU and memory read from /proc.
clk=$(getconf CLK_TCK)
start_daemon() {
	"$PGPUSHD" run --db "$conn" --batch-size "$BATCH" \
		>>"$tmp/daemon.log" 2>&1 &
	tools_daemon_pid=$!
}
cpu_seconds() {  # utime + stime of the daemon
	awk -v t="$clk" '{ print ($14 + $15) / t }' \
		"/proc/$tools_daemon_pid/stat"
}
# CPU seconds of every postgres process (backends, walwriter, autovacuum;
# processes that exit between two readings take theirs along) and of the
# fake: the rest of the box's cost per push, next to the daemon's.
pg_cpu_seconds() {
	# (cat fails when a process exits between the glob and the read)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } |
		awk -v t="$clk" '$2 == "(postgres)" { s += $14 + $15 }
			END { printf "%.2f", s / t }'
}
fake_cpu_seconds() {
	awk -v t="$clk" '{ printf "%.2f", ($14 + $15) / t }' \
		"/proc/$tools_fake_pid/stat"
}
# Worker threads the daemon ran with (its "pgpushd running" line).
http_threads() {
	sed -nE 's/.*pgpushd running.* http_threads=([0-9]+).*/\1/p' \
		"$tmp/daemon.log" | tail -n 1 | grep . || echo null
}
# FCM on the daemon's own HTTP/2 client (1) or libcurl (0).
h2_direct() {
	sed -nE 's/.*pgpushd running.* h2_direct=([0-9]+).*/\1/p' \
		"$tmp/daemon.log" | tail -n 1 | grep . || echo null
}
vmhwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$tools_daemon_pid/status"; }
stop_daemon() {
	kill -TERM "$tools_daemon_pid"
	local rc=0
	wait "$tools_daemon_pid" || rc=$?
	tools_daemon_pid=
	[ $rc -eq 0 ] || say "WARNING: the daemon exited with status $rc"
	daemon_rc=$rc
}
# One psql samples every 200 ms, on one connection: the daemon's
# connections (application_name 'pgpushd ...') and whether the queue is
# empty ("CONNS QUEUED", QUEUED 0 or 1).  Nothing else polls the database
# while the daemon runs.
start_sampler() {
	{ echo "SELECT (SELECT count(*) FROM pg_stat_activity
	                WHERE application_name LIKE 'pgpushd%')
	        || ' ' || (SELECT count(*) FROM
	                   (SELECT 1 FROM push.queue LIMIT 1) x)"
	  echo '\watch 0.2'; } |
		psql -X -q -At -d "$DB" >"$tmp/samples.txt" 2>/dev/null &
	sampler_pid=$!
}
stop_sampler() {
	kill "$sampler_pid" 2>/dev/null || true
	wait "$sampler_pid" 2>/dev/null || true
	sampler_pid=
	max_conns=$(awk 'NF == 2 { print $1 }' "$tmp/samples.txt" |
		sort -n | tail -n 1)
}
# BENCH_HOLD_SNAPSHOT=1: a session that keeps one snapshot open.
hold_snapshot_start() {
	[ "${BENCH_HOLD_SNAPSHOT:-0}" = 1 ] || return 0
	psql -X -q -d "$DB" -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
		-c "SELECT count(*) FROM push.apps" \
		-c "SELECT pg_sleep(86400) /* bench: held snapshot */" \
		>/dev/null 2>&1 &
	holder_pid=$!
	for _ in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity
		        WHERE backend_xmin IS NOT NULL
		          AND pid <> pg_backend_pid()
		          AND query LIKE '%bench: held snapshot%'")" = 1 ] &&
			return 0
		sleep 0.1
	done
	say "the snapshot-holding session did not start"; exit 1
}
hold_snapshot_stop() {
	[ -n "$holder_pid" ] || return 0
	kill "$holder_pid" 2>/dev/null || true
	wait "$holder_pid" 2>/dev/null || true
	holder_pid=
}
wait_queue_empty() {  # $1: seconds to give up after
	# Bash builtins only, but for one `sleep` per turn: this loop runs
	# beside the drain it measures (forking tail, awk and date ten times
	# a second took ~0.2 of a core from the daemon and Postgres).
	local deadline=$(( ${EPOCHSECONDS:-$(date +%s)} + $1 ))
	local fd line conns queued
	exec {fd}<"$tmp/samples.txt"
	while read -r -u "$fd" line; do :; done   # samples taken before
	while :; do
		sleep 0.2
		kill -0 "$tools_daemon_pid" 2>/dev/null || {
			exec {fd}<&-; say "the daemon died"; exit 1; }
		# A sample taken after we started waiting that saw no row.
		while read -r -u "$fd" conns queued; do
			[ "$queued" = 0 ] && [ -n "$conns" ] && {
				exec {fd}<&-; return 0; }
		done
		[ "${EPOCHSECONDS:-$(date +%s)}" -lt "$deadline" ] || {
			exec {fd}<&-
			say "queue not empty after $1 s: $(q 'SELECT count(*) FROM push.queue') left"
			exit 1; }
	done
}
machine=$(printf '%s, %s cores, %s GiB, PostgreSQL %s' \
	"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo |
	   sed 's/  */ /g')" "$(nproc)" \
	"$(awk '/^MemTotal/ { printf "%d", $2 / 1048576 + 0.5 }' /proc/meminfo)" \
	"$(q 'SHOW server_version' | awk '{ print $1 }')")

if [ "$MODE" = latency ]; then
	lo=$(q "SELECT min(id) FROM push.devices WHERE app_id = $app")
	hi=$(q "SELECT max(id) FROM push.devices WHERE app_id = $app")
	cat >"$tmp/insert.sql" <<-'SQL'
	\set dev random(:lo, :hi)
	INSERT INTO push.pushes (app_id, device_id, payload) VALUES (:app, :dev, '{"title":"Hello","body":"light load","data":{"k":"v"}}');
	SQL
	start_sampler
	start_daemon
	sleep 2   # config loaded, OAuth token fetched, HTTP/2 connection warm
	# Warm-up: a few pushes so the first connection and token are made.
	q "INSERT INTO push.pushes (app_id, device_id, payload)
	   SELECT $app, $lo + i, '{\"title\":\"warm\"}' FROM generate_series(0, 9) i"
	wait_queue_empty 30
	sleep 1
	first=$(q "SELECT coalesce(max(id), 0) FROM push.pushes")
	say "offering $RATE single-row inserts/s for $SECS s (pgbench)"
	"$pg_bindir/pgbench" -n -f "$tmp/insert.sql" -R "$RATE" -T "$SECS" \
		-c "${BENCH_CLIENTS:-4}" -j 2 -D app="$app" -D lo="$lo" -D hi="$hi" "$DB" \
		>"$tmp/pgbench.log" 2>&1 || { cat "$tmp/pgbench.log" >&2; exit 1; }
	wait_queue_empty 60
	sleep 0.2
	stop_daemon
	stop_sampler
	inserts=$(awk '/number of transactions actually processed/ { print $NF }' \
		"$tmp/pgbench.log" | cut -d/ -f1)
	tps=$(awk '/^tps = / { printf "%.0f", $3 }' "$tmp/pgbench.log")
	ins_lat=$(awk '/^latency average/ { print $4 }' "$tmp/pgbench.log")
	q "SELECT json_build_object(
	     'bench', 'pgpush dispatcher light-load latency',
	     'platform', '$PLATFORM',
	     'machine', '$machine',
	     'offered_per_s', $RATE, 'seconds', $SECS,
	     'inserts', ${inserts:-0}, 'insert_tps', ${tps:-0},
	     'insert_latency_avg_ms', ${ins_lat:-null},
	     'delivered', count(*) FILTER (WHERE outcome = 'sent'),
	     'other_outcomes', (SELECT json_object_agg(o, n) FROM (
	         SELECT outcome || coalesce(': ' || provider_reason, '') AS o,
	                count(*) AS n
	         FROM push.deliveries WHERE outcome <> 'sent'
	           AND push_id > $first GROUP BY 1) x),
	     'latency_ms_p50', round(percentile_cont(0.5) WITHIN GROUP
	         (ORDER BY from_commit)::numeric, 2),
	     'latency_ms_p99', round(percentile_cont(0.99) WITHIN GROUP
	         (ORDER BY from_commit)::numeric, 2),
	     'latency_ms_max', round(max(from_commit)::numeric, 2),
	     'latency_from', 'commit of the insert (one row per autocommit insert) to the provider answer handled by the daemon',
	     'from_insert_start_ms_p50', round(percentile_cont(0.5) WITHIN GROUP
	         (ORDER BY latency_ms)::numeric, 2),
	     'from_insert_start_ms_p99', round(percentile_cont(0.99) WITHIN
	         GROUP (ORDER BY latency_ms)::numeric, 2),
	     'pg_connections_max', ${max_conns:-0},
	     'daemon_exit', $daemon_rc,
	     'http_threads', $(http_threads),
	     'h2_direct', $(h2_direct),
	     'fsync', false)
	   FROM (SELECT d.*, 1000 * extract(epoch FROM d.enqueued_at
	             + d.latency_ms * interval '1 ms'
	             - pg_xact_commit_timestamp(p.xmin)) AS from_commit
	         FROM push.deliveries d JOIN push.pushes p ON p.id = d.push_id
	         WHERE d.push_id > $first) d"
	exit 0
fi

# Fresh statistics after each enqueue, the same for both runs.
analyze() {
	local t
	for t in push.queue push.pushes push.devices; do
		q "VACUUM ANALYZE $t" >/dev/null
	done
}

# One drain: the raw ceiling, then the daemon, on the same Postgres; writes
# the run's JSON line to $1.  (Not in a subshell: the daemon and the
# sampler must stay this shell's children, for wait and for cleanup.)
one_run() {
	q "TRUNCATE push.deliveries, push.pushes" >/dev/null
	# 1. The raw ceiling: the same N rows drained by the daemon's SQL alone.
	if [ "${BENCH_CEILING:-1}" != 0 ]; then
	say "enqueueing $N pushes (raw ceiling run)"
	enqueue "$DB" "$app" "$N"
	analyze
	say "draining them with CLAIM_SQL + ACK_SQL only (batch $BATCH)"
	ceiling=$("$tmp/sqlceiling" "$conn" "$app" "$BATCH" "$CEILING_MODE")
	say "raw ceiling: $ceiling"
	else
	ceiling='{"rows_per_s":null,"skipped":"BENCH_CEILING=0"}'
	fi
	q "TRUNCATE push.deliveries, push.pushes" >/dev/null
	q "VACUUM ANALYZE push.queue" >/dev/null
	q "VACUUM ANALYZE push.pushes" >/dev/null
	q "CHECKPOINT" >/dev/null

	# 2. The daemon, on the same Postgres, with the same N.
	say "enqueueing $N pushes (daemon run)"
	enqueue "$DB" "$app" "$N"
	analyze
	hold_snapshot_start
	start_sampler
	pg0=$(pg_cpu_seconds)
	fk0=$(fake_cpu_seconds)
	t0=$(now)
	start_daemon
	say "daemon pid $tools_daemon_pid draining"
	wait_queue_empty 3600
	t1=$(now)
	cpu=$(cpu_seconds)
	pg1=$(pg_cpu_seconds)
	fk1=$(fake_cpu_seconds)
	hwm=$(vmhwm_kib)
	sleep 0.3
	stop_daemon
	stop_sampler
	hold_snapshot_stop

	raw=$(echo "$ceiling" | sed -E 's/.*"rows_per_s":([0-9.]+|null).*/\1/')
	q "SELECT json_build_object(
	     'bench', 'pgpush dispatcher drain, $([ "$PLATFORM" = apns ] &&
	         echo APNs || echo FCM) into the fake --sink',
	     'platform', '$PLATFORM',
	     'machine', '$machine',
	     'n', $N, 'batch', $BATCH,
	     'delivered', count(*) FILTER (WHERE outcome = 'sent'),
	     'other_outcomes', (SELECT json_object_agg(o, n) FROM (
	         SELECT outcome || coalesce(': ' || provider_reason, '') AS o,
	                count(*) AS n
	         FROM push.deliveries WHERE outcome <> 'sent' GROUP BY 1) x),
	     'pushes_per_s', round($N / extract(epoch FROM
	         max(finished_at) - min(sent_at))),
	     'seconds', round(extract(epoch FROM max(finished_at) - min(sent_at))::numeric, 3),
	     'seconds_from_exec', round(($t1 - $t0)::numeric, 3),
	     'raw_ceiling_rows_per_s', $raw,
	     'pct_of_raw_ceiling', round(100.0 * $N / extract(epoch FROM
	         max(finished_at) - min(sent_at))::numeric / $raw, 1),
	     'latency_ms_p50', round(percentile_cont(0.5) WITHIN GROUP
	         (ORDER BY latency_ms)::numeric, 1),
	     'latency_ms_p99', round(percentile_cont(0.99) WITHIN GROUP
	         (ORDER BY latency_ms)::numeric, 1),
	     'latency_note', 'enqueue->provider answer of pushes all queued before the daemon started: mostly time spent waiting in the queue',
	     'cpu_s_per_10k', round(($cpu * 10000.0 / $N)::numeric, 3),
	     'cpu_s_total', $cpu,
	     'postgres_cpu_s_per_10k', round((($pg1 - $pg0) * 10000.0 / $N)::numeric, 3),
	     'fake_cpu_s_per_10k', round((($fk1 - $fk0) * 10000.0 / $N)::numeric, 3),
	     'peak_rss_mib', round($hwm / 1024.0, 1),
	     'pg_connections_max', ${max_conns:-0},
	     'daemon_exit', $daemon_rc,
	     'http_threads', $(http_threads),
	     'h2_direct', $(h2_direct),
	     'raw_ceiling', '$ceiling'::json,
	     'held_snapshot', $([ "${BENCH_HOLD_SNAPSHOT:-0}" = 1 ] && echo true || echo false),
	     'fsync', false)
	   FROM push.deliveries" >"$1"
}

# BENCH_RUNS=N: N drains in a row (the shared machine's speed swings by
# a quarter within minutes, so one run's share of the ceiling is noise);
# the line is then the run with the median pushes/s, plus every run's
# figures and the medians of pushes/s and of the share of the ceiling.
for i in $(seq 1 "$RUNS"); do
	if [ "$RUNS" -gt 1 ]; then say "run $i of $RUNS"; fi
	one_run "$tmp/run$i.json"
done
if [ "$RUNS" -eq 1 ]; then
	cat "$tmp/run1.json"
	exit 0
fi
all=$(cat "$tmp"/run*.json | paste -sd, -)
q "WITH r AS (SELECT value AS j FROM jsonb_array_elements('[$all]'::jsonb)),
   m AS (SELECT j FROM r ORDER BY (j->>'pushes_per_s')::numeric
         OFFSET (SELECT (count(*) - 1) / 2 FROM r) LIMIT 1)
   SELECT (SELECT j FROM m) || jsonb_build_object(
     'runs', (SELECT jsonb_agg(jsonb_build_object(
         'pushes_per_s', j->'pushes_per_s',
         'raw_ceiling_rows_per_s', j->'raw_ceiling_rows_per_s',
         'pct_of_raw_ceiling', j->'pct_of_raw_ceiling',
         'cpu_s_per_10k', j->'cpu_s_per_10k',
         'postgres_cpu_s_per_10k', j->'postgres_cpu_s_per_10k',
         'fake_cpu_s_per_10k', j->'fake_cpu_s_per_10k',
         'peak_rss_mib', j->'peak_rss_mib')) FROM r),
     'median_of_runs', $RUNS,
     'median_pushes_per_s', (SELECT percentile_disc(0.5) WITHIN GROUP
         (ORDER BY (j->>'pushes_per_s')::numeric) FROM r),
     'median_pct_of_raw_ceiling', (SELECT percentile_disc(0.5) WITHIN GROUP
         (ORDER BY (j->>'pct_of_raw_ceiling')::numeric) FROM r))"
