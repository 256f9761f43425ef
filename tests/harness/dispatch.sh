# shellcheck shell=bash
# dispatch.sh — helpers for the end-to-end dispatcher scenarios
# (tests/integration/dispatch_*.t): the fake providers, an app with FCM
# credentials pointing at them, the daemon, polling, and cleanup.
#
# Source it after lib.sh:
#   . "$(dirname "$0")/../harness/lib.sh"
#   . "$(dirname "$0")/../harness/dispatch.sh"
#
# What it gives:
#   fake_start [ARGS]       fresh certificates in a temp dir, pgpush-fake on
#                           free ports with a request log ($DT/requests.log);
#                           sets FCM_PORT, CONTROL_PORT, ... (its ports file)
#   fake_stop               SIGTERM it; one assertion: exit 0, no sanitizer
#                           report
#   ctl METHOD PATH [JSON]  the fake's control port (rules, modes, counters)
#   fcm_app DB NAME [COLS VALUES]
#                           an app (extra push.apps columns optional) with
#                           FCM credentials for the fake; prints its id
#   daemon_start DB [ARGS]  build/pgpushd run in the background, short
#                           poll/stats/heartbeat intervals, log in
#                           $DAEMON_LOG; DAEMON_PID
#   daemon_stop [SECS]      SIGTERM, wait up to SECS (default 10); sets
#                           DAEMON_RC and DAEMON_STOP_MS; one assertion:
#                           exit 0 within SECS, no sanitizer report
#   daemon_alive            0 while the daemon runs
#   wait_for DB SQL [SECS]  poll SQL (every 100 ms) until it prints 't';
#                           non-zero on timeout (default 30 s) or when the
#                           daemon died
#   conns_sample_start DB / conns_sample_stop
#                           sample pg_stat_activity for the daemon's
#                           connections; stop prints the maximum seen
#   fcm_log_tokens          fcm send requests in the log: "token status"
#   fcm_token_requests      OAuth token requests in the log: their status
#   now_ms, sql_lit TEXT    wall clock in ms; TEXT as a SQL literal
#   done_testing            print the plan (after the last assertion)
# FAKE_WRAPPER and DAEMON_WRAPPER run the programs under a tool that keeps
# their pid and signals (e.g. "valgrind -q --error-exitcode=99");
# DISPATCH_DAEMON_ARGS adds daemon flags (e.g. --log-level debug);
# KEEP_DISPATCH_TMP=1 keeps the temp dir (logs, request log) for a look.
# The EXIT trap stops a daemon and a fake still running (a failure), removes
# the temp dir, then runs lib.sh's finish (database drop, exit status).
# Scenarios print their plan at the end (done_testing), since the daemon
# and fake checks add assertions.

: "${PGPUSH_FAKE:=${FAKES_BUILD:-$PGPUSH_TOP/build}/fakes/pgpush-fake}"
if [ ! -x "$PGPUSH_FAKE" ]; then
	echo "Bail out! $PGPUSH_FAKE missing: run make fakes"
	exit 1
fi

DT=$(mktemp -d "${TMPDIR:-/tmp}/pgpush-dispatch.XXXXXX")
CERTS=$DT/certs
FAKE_PID=
DAEMON_PID=
DAEMON_N=0
DAEMON_LOG=
DAEMON_DB=
DAEMON_RC=
DAEMON_STOP_MS=
_sampler_pid=
SA_EMAIL=fake-fcm@pgpush-test.iam.gserviceaccount.com
FCM_PROJECT=pgpush-test

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# _sanitizer_report FILE: true if FILE holds an ASan/UBSan/LSan report.
_sanitizer_report() {
	grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$1" 2>/dev/null
}

fake_start() {
	[ -s "$CERTS/ca.pem" ] ||
		"$PGPUSH_TOP/tests/fakes/gen-certs.sh" "$CERTS" >/dev/null || {
			echo "Bail out! gen-certs.sh failed"; exit 1; }
	rm -f "$DT/ports"
	# FAKE_WRAPPER / DAEMON_WRAPPER: run under a tool (strace, valgrind)
	${FAKE_WRAPPER:-} "$PGPUSH_FAKE" --certs "$CERTS" --ports-file "$DT/ports" \
		--log "$DT/requests.log" --fcm-sa "$CERTS/fcm-sa.json" \
		"$@" >"$DT/fake.out" 2>"$DT/fake.err" &
	FAKE_PID=$!
	for _ in $(seq 1 300); do
		[ -s "$DT/ports" ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$DT/ports" ]; then
		echo "Bail out! the fake did not start: $(cat "$DT/fake.err")"
		exit 1
	fi
	local pid=$FAKE_PID
	# shellcheck disable=SC1091
	. "$DT/ports"
	FAKE_PID=$pid
}

fake_stop() {
	local rc=0
	[ -n "$FAKE_PID" ] || return 0
	kill -TERM "$FAKE_PID" 2>/dev/null
	for _ in $(seq 1 200); do
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$FAKE_PID" 2>/dev/null; then
		diag "the fake did not exit on SIGTERM"
		kill -KILL "$FAKE_PID" 2>/dev/null
	fi
	wait "$FAKE_PID" 2>/dev/null || rc=$?
	FAKE_PID=
	if _sanitizer_report "$DT/fake.err"; then
		sed 's/^/# fake: /' "$DT/fake.err" | head -60
		rc=99
	fi
	is "$rc" 0 "the fake exited cleanly, no sanitizer report"
}

ctl() {
	if [ $# -ge 3 ]; then
		curl -sS -X "$1" "http://127.0.0.1:$CONTROL_PORT$2" \
			-H 'content-type: application/json' -d "$3"
	else
		curl -sS -X "$1" "http://127.0.0.1:$CONTROL_PORT$2"
	fi
}

# sql_lit TEXT: TEXT as a SQL string literal.
sql_lit() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# fcm_app DB NAME [COLUMNS VALUES]: e.g. fcm_app db shop ", max_concurrency" ", 64"
fcm_app() {
	local db=$1 name=$2 cols=${3:-} vals=${4:-}
	local sa
	sa=$(sql_lit "$(cat "$CERTS/fcm-sa.json")")
	q "$db" "
	  WITH a AS (INSERT INTO push.apps (name $cols)
	             VALUES ('$name' $vals) RETURNING id),
	       c AS (INSERT INTO push.fcm_credentials (app_id, project_id,
	               service_account, endpoint, token_endpoint, ca_bundle_path)
	             SELECT id, '$FCM_PROJECT', $sa::jsonb,
	               'https://127.0.0.1:$FCM_PORT',
	               'https://127.0.0.1:$FCM_PORT/token',
	               $(sql_lit "$CERTS/ca.pem") FROM a RETURNING app_id)
	  SELECT app_id FROM c"
}

daemon_start() {
	local db=$1; shift
	DAEMON_N=$((DAEMON_N + 1))
	DAEMON_LOG=$DT/daemon.$DAEMON_N.log
	DAEMON_DB=$db
	${DAEMON_WRAPPER:-} "$PGPUSHD" run --db "dbname=$db" --log-level info \
		--poll-interval-ms 200 --stats-interval-ms 200 \
		--heartbeat-interval-ms 200 ${DISPATCH_DAEMON_ARGS:-} "$@" \
		>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
}

daemon_alive() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null
}

# daemon_stop [SECS]: SIGTERM and wait; the assertion requires exit 0
# within SECS and a clean log.
daemon_stop() {
	local secs=${1:-10} t0 rc=0 late=0
	if [ -z "$DAEMON_PID" ]; then
		ok 1 "daemon stop: no daemon running"
		return 1
	fi
	t0=$(now_ms)
	kill -TERM "$DAEMON_PID" 2>/dev/null
	while kill -0 "$DAEMON_PID" 2>/dev/null; do
		if [ $(( $(now_ms) - t0 )) -gt $((secs * 1000)) ]; then
			late=1
			break
		fi
		sleep 0.02
	done
	DAEMON_STOP_MS=$(( $(now_ms) - t0 ))
	if [ $late -eq 1 ]; then
		diag "the daemon did not exit within ${secs}s of SIGTERM"
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	wait "$DAEMON_PID" 2>/dev/null || rc=$?
	DAEMON_RC=$rc
	DAEMON_PID=
	if _sanitizer_report "$DAEMON_LOG"; then
		grep -A40 -E 'Sanitizer|runtime error:' "$DAEMON_LOG" |
			head -60 | sed 's/^/# daemon: /'
		rc=99
	fi
	[ $late -eq 1 ] && rc=98
	if [ "$rc" -ne 0 ]; then
		diag "daemon log (last lines):"
		tail -n 15 "$DAEMON_LOG" | sed 's/^/#   /'
	fi
	is "$rc" 0 "daemon #$DAEMON_N exited 0 within ${secs}s of SIGTERM (${DAEMON_STOP_MS} ms), no sanitizer report"
}

# wait_for DB SQL [SECS]
wait_for() {
	local db=$1 sql=$2 secs=${3:-30} t0 v
	t0=$(now_ms)
	while :; do
		v=$(q "$db" "SELECT ($sql)::boolean" 2>/dev/null)
		[ "$v" = t ] && return 0
		if [ -n "$DAEMON_PID" ] && ! daemon_alive; then
			diag "wait_for: the daemon died"
			tail -n 20 "$DAEMON_LOG" | sed 's/^/#   /'
			return 2
		fi
		if [ $(( $(now_ms) - t0 )) -gt $((secs * 1000)) ]; then
			diag "wait_for: timed out after ${secs}s: $sql"
			return 1
		fi
		sleep 0.1
	done
}

conns_sample_start() {
	local db=$1
	: >"$DT/conns"
	(
		while :; do
			psql -X -q -A -t -d "$db" -c "SELECT count(*) FROM
			  pg_stat_activity WHERE application_name LIKE 'pgpushd%'" \
				>>"$DT/conns" 2>/dev/null
			sleep 0.2
		done
	) &
	_sampler_pid=$!
}

conns_sample_stop() {
	if [ -n "$_sampler_pid" ]; then
		kill "$_sampler_pid" 2>/dev/null
		wait "$_sampler_pid" 2>/dev/null
		_sampler_pid=
	fi
	sort -n "$DT/conns" | tail -n 1
}

# fcm_log_tokens: "token status" per FCM send request in the log.
fcm_log_tokens() {
	perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "fcm" &&
		    ($r->{path} // "") =~ m{/messages:send$};
		print(($r->{token} // "-"), " ", $r->{response}{status}, "\n");
	' "$DT/requests.log" 2>/dev/null
}

# fcm_token_requests: OAuth token requests in the log.
fcm_token_requests() {
	perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		print "$r->{response}{status}\n" if $r->{provider} eq "fcm" &&
		    ($r->{path} // "") =~ m{/token$};
	' "$DT/requests.log" 2>/dev/null
}

done_testing() { plan "$_tap_n"; }

_dispatch_cleanup() {
	local rc=$?
	if [ -n "$_sampler_pid" ]; then
		kill "$_sampler_pid" 2>/dev/null
		wait "$_sampler_pid" 2>/dev/null
	fi
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		echo "# the daemon was still running at exit: killed"
		kill -KILL "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
		[ $rc -eq 0 ] && rc=1
	fi
	if [ -n "$FAKE_PID" ]; then
		kill -TERM "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	fi
	if [ -n "${KEEP_DISPATCH_TMP:-}" ]; then
		echo "# kept $DT"
	else
		rm -rf "$DT"
	fi
	(exit $rc)
	_tap_finish
}
trap _dispatch_cleanup EXIT
