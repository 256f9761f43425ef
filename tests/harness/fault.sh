# shellcheck shell=bash
# fault.sh — helpers for the fault suite (tests/integration/fault_*.t), on
# top of lib.sh and dispatch.sh (source those first).
#
#   disp_start N DB [ARGS]  start dispatcher number N (any number may run);
#                           its pid in DPID[N], log $DT/disp.N.<k>.log
#   disp_kill9 N            kill -9 dispatcher N (no drain, no goodbye);
#                           its pid goes to KILLED_PIDS
#   disp_stop N             SIGTERM and wait; one assertion (exit 0, no
#                           sanitizer report)
#   disp_alive N            0 while dispatcher N runs
#   fault_fcm_app DB NAME [COLS VALS]
#                           fcm_app with a shorter auto-ban policy default
#   fcm_requests_for_app PREFIX
#                           FCM send requests in the request log whose
#                           token starts with PREFIX
#   pg_server_stop / pg_server_start
#                           stop (fast) and start the harness's cluster
#                           (run.sh exports how); non-zero if unavailable
#   enqueue_tokens DB APP PREFIX N
#                           N devices PREFIX-token-000001.. and one push each
#   token_rules PREFIX N JSON-FIELDS
#                           one fake rule per token of enqueue_tokens
# The EXIT trap of dispatch.sh is extended to kill dispatchers still
# running (a failure unless the test stopped them).

declare -A DPID=()
declare -A DLOG=()
KILLED_PIDS=()
_disp_k=0

disp_start() {
	local n=$1 db=$2; shift 2
	_disp_k=$((_disp_k + 1))
	DLOG[$n]=$DT/disp.$n.$_disp_k.log
	${DAEMON_WRAPPER:-} "$PGPUSHD" run --db "dbname=$db" --log-level info \
		--poll-interval-ms 200 --stats-interval-ms 500 \
		--heartbeat-interval-ms 200 ${DISPATCH_DAEMON_ARGS:-} "$@" \
		>"${DLOG[$n]}" 2>&1 &
	DPID[$n]=$!
}

disp_alive() {
	[ -n "${DPID[$1]:-}" ] && kill -0 "${DPID[$1]}" 2>/dev/null
}

disp_kill9() {
	local n=$1
	[ -n "${DPID[$n]:-}" ] || return 1
	kill -KILL "${DPID[$n]}" 2>/dev/null
	wait "${DPID[$n]}" 2>/dev/null
	KILLED_PIDS+=("${DPID[$n]}")
	DPID[$n]=
}

disp_stop() {
	local n=$1 rc=0 t0
	t0=$(now_ms)
	kill -TERM "${DPID[$n]}" 2>/dev/null
	while kill -0 "${DPID[$n]}" 2>/dev/null; do
		if [ $(( $(now_ms) - t0 )) -gt 15000 ]; then
			kill -KILL "${DPID[$n]}" 2>/dev/null
			rc=98
			break
		fi
		sleep 0.05
	done
	wait "${DPID[$n]}" 2>/dev/null || { [ $rc -eq 0 ] && rc=$?; }
	DPID[$n]=
	if _sanitizer_report "${DLOG[$n]}"; then
		grep -A40 -E 'Sanitizer|runtime error:' "${DLOG[$n]}" |
			head -60 | sed 's/^/# daemon: /'
		rc=99
	fi
	[ "$rc" -ne 0 ] && tail -n 15 "${DLOG[$n]}" | sed 's/^/#   /'
	is "$rc" 0 "dispatcher $n exited 0 on SIGTERM, no sanitizer report"
}

fault_fcm_app() { fcm_app "$@"; }

fcm_requests_for_app() {
	fcm_log_tokens | awk -v p="$1" 'index($1, p) == 1' | wc -l
}

enqueue_tokens() {
	local db=$1 app=$2 prefix=$3 n=$4
	q "$db" "INSERT INTO push.devices (app_id, platform, token)
	         SELECT $app, 'fcm', '$prefix-token-' || lpad(g::text, 6, '0')
	         FROM generate_series(1, $n) g;
	         INSERT INTO push.pushes (app_id, device_id, payload)
	         SELECT $app, id, '{\"title\":\"t\",\"body\":\"b\"}'
	         FROM push.devices WHERE app_id = $app
	           AND token LIKE '$prefix-%'" >/dev/null
}

token_rules() {
	local prefix=$1 n=$2 fields=$3 r
	r=$(seq -f "$prefix-token-%06g" 1 "$n" | awk -v f="$fields" \
		'{printf "%s{\"provider\":\"fcm\",\"token\":\"%s\",%s}", (NR > 1 ? "," : ""), $1, f}')
	r=$(ctl POST /rules "[$r]")
	case $r in *error*) echo "Bail out! rules $prefix: $r"; exit 1 ;; esac
}

pg_server_stop() {
	[ -n "${PGPUSH_PGDATA:-}" ] || return 1
	${PGPUSH_AS_SERVER:-} "$PGPUSH_PG_BINDIR/pg_ctl" -D "$PGPUSH_PGDATA" \
		-m fast -w -t 60 stop >/dev/null
}

pg_server_start() {
	[ -n "${PGPUSH_PGDATA:-}" ] || return 1
	${PGPUSH_AS_SERVER:-} "$PGPUSH_PG_BINDIR/pg_ctl" -D "$PGPUSH_PGDATA" \
		-w -t 60 -l "$PGPUSH_PGLOG" -o "$PGPUSH_PG_OPTS" start >/dev/null
}

_fault_cleanup() {
	local rc=$? n
	for n in "${!DPID[@]}"; do
		if [ -n "${DPID[$n]}" ] && kill -0 "${DPID[$n]}" 2>/dev/null; then
			echo "# dispatcher $n was still running at exit: killed"
			kill -KILL "${DPID[$n]}" 2>/dev/null
			wait "${DPID[$n]}" 2>/dev/null
			[ $rc -eq 0 ] && rc=1
		fi
	done
	(exit $rc)
	_dispatch_cleanup
}
trap _fault_cleanup EXIT
