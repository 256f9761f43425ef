# tests/tools/lib.sh - shared by demo.sh and bench.sh (sourced, bash).
#
# A throwaway PostgreSQL cluster the way tests/harness/run.sh starts one
# (initdb in a directory we own, its own port and Unix socket, no TCP; as
# root the server runs as the unprivileged `postgres` account, or
# `pgpush-test`), the fake FCM server, and a demo/bench app with fake FCM
# credentials.  Everything started here is stopped by tools_cleanup, which
# the callers run from their EXIT trap.  Nothing here touches a server or
# process it did not start.

tools_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGPUSHD=${PGPUSHD:-$tools_top/build/pgpushd}
FAKE=${FAKE:-$tools_top/build/fakes/pgpush-fake}

pg_bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null |
	sort -V | tail -n 1)}
# psql on a terminal would page the summaries; never wait for a pager.
export PSQL_PAGER=cat PAGER=cat
tools_pg_dir=          # set once we initdb'd a cluster (we stop it)
tools_fake_pid=
tools_daemon_pid=
tools_server_user=

as_server() { "$@"; }

# pg_start DIR [extra -c settings...]: a cluster in DIR/data, socket in DIR.
# Exports PGHOST PGPORT PGUSER PGDATABASE.
pg_start() {
	local dir=$1; shift
	if [ ! -x "$pg_bindir/initdb" ]; then
		echo "no PostgreSQL server found (initdb); run 'make deps'" >&2
		return 1
	fi
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		if id postgres >/dev/null 2>&1; then
			tools_server_user=postgres
		else
			id pgpush-test >/dev/null 2>&1 ||
				useradd --system --no-create-home pgpush-test
			tools_server_user=pgpush-test
		fi
		chown "$tools_server_user" "$dir"
		as_server() { runuser -u "$tools_server_user" -- env -C / "$@"; }
	fi
	local port=$((20000 + RANDOM % 20000)) extra=
	local s
	for s in "$@"; do extra+=" -c $s"; done
	tools_pg_dir=$dir
	as_server "$pg_bindir/initdb" -D "$dir/data" -A trust -U postgres \
		-E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2; return 1; }
	as_server "$pg_bindir/pg_ctl" -D "$dir/data" -w -t 60 \
		-l "$dir/server.log" \
		-o "-p $port -k $dir -c listen_addresses='' \
		    -c max_connections=100 -c shared_buffers=256MB \
		    -c max_wal_size=4GB -c log_min_messages=warning \
		    -c log_checkpoints=off $extra" \
		start >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
	export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
	unset PGPASSWORD PGSERVICE PGOPTIONS
}

pg_stop() {
	if [ -n "$tools_pg_dir" ] && [ -f "$tools_pg_dir/data/postmaster.pid" ]
	then
		as_server "$pg_bindir/pg_ctl" -D "$tools_pg_dir/data" \
			-m immediate stop >/dev/null 2>&1 || true
	fi
}

# fake_start DIR [flags...]: certificates in DIR/certs, the fake on free
# ports; sources DIR/ports (FCM_PORT, CONTROL_PORT, ...).  PGPUSH_FAKE_FLAGS
# adds flags of pgpush-fake (tests/fakes/README.md), e.g. fixed ports.
fake_start() {
	local dir=$1; shift
	"$tools_top/tests/fakes/gen-certs.sh" "$dir/certs" >/dev/null 2>&1 || {
		echo "gen-certs.sh failed" >&2; return 1; }
	"$FAKE" --certs "$dir/certs" --ports-file "$dir/ports" \
		--fcm-sa "$dir/certs/fcm-sa.json" "$@" ${PGPUSH_FAKE_FLAGS:-} \
		>"$dir/fake.out" 2>&1 &
	tools_fake_pid=$!
	local i
	for i in $(seq 100); do
		[ -s "$dir/ports" ] && break
		kill -0 "$tools_fake_pid" 2>/dev/null || {
			cat "$dir/fake.out" >&2; return 1; }
		sleep 0.05
	done
	[ -s "$dir/ports" ] || { echo "the fake did not start" >&2; return 1; }
	# shellcheck disable=SC1091
	. "$dir/ports"
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

tools_cleanup() {
	stop_pid "$tools_daemon_pid"; tools_daemon_pid=
	stop_pid "$tools_fake_pid"; tools_fake_pid=
	pg_stop
}

# app_setup DB NAME CERTDIR: an app with fake FCM credentials pointing at
# the fake (FCM_PORT), trusting the test CA.  Prints the app id.
app_setup() {
	local db=$1 name=$2 certs=$3
	psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" \
		-v name="$name" -v sa="$(cat "$certs/fcm-sa.json")" \
		-v ep="https://127.0.0.1:$FCM_PORT" \
		-v tok="https://127.0.0.1:$FCM_PORT/token" \
		-v ca="$certs/ca.pem" <<-'SQL'
	INSERT INTO push.apps (name) VALUES (:'name');
	INSERT INTO push.fcm_credentials (app_id, project_id, service_account,
	    endpoint, token_endpoint, ca_bundle_path)
	VALUES (push.app_id(:'name'), 'pgpush-test', :'sa'::jsonb, :'ep',
	    :'tok', :'ca');
	SELECT push.app_id(:'name');
	SQL
}

# devices_setup DB APP_ID COUNT: COUNT FCM devices (tokens of FCM's
# character set), 3 per user.
devices_setup() {
	psql -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "
	SELECT count(push.register_device($2, 'fcm',
	    'fcm-demo-token-' || lpad(i::text, 8, '0') || ':APA91b' ||
	    md5(i::text), 'user-' || (i / 3)))
	FROM generate_series(1, $3) AS i" >/dev/null
}

# enqueue DB APP_ID N: N device-targeted pushes in one statement, spread
# over the app's devices.
enqueue() {
	psql -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "
	SET work_mem = '256MB';
	WITH d AS (SELECT array_agg(id ORDER BY id) AS ids
	           FROM push.devices WHERE app_id = $2)
	INSERT INTO push.pushes (app_id, device_id, payload)
	SELECT $2, d.ids[1 + i % cardinality(d.ids)],
	       jsonb_build_object('title', 'Hello', 'body', 'Push #' || i,
	                          'data', jsonb_build_object('n', i::text))
	FROM d, generate_series(1, $3) AS i" >/dev/null
}
