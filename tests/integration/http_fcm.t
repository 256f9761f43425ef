#!/usr/bin/env bash
# http_fcm.t - runs build/tests/drivers/http_fcm (the HTTP bridge, the
# FCM OAuth cache and the FCM sender on a real loop) against the fake FCM
# server.  Builds nothing: needs `make` and `make fakes` first.  Makes
# fresh test credentials (tests/fakes/gen-certs.sh), starts
# build/fakes/pgpush-fake on a free port whose token URL is also the
# accepted assertion audience, runs the test binary (its TAP is this
# script's), then stops the fake and fails on a non-zero exit or a
# sanitizer report from either side.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${PGPUSH_BUILD:-$ROOT/build}
FAKE=${FAKES_BUILD:-$BUILD}/fakes/pgpush-fake
TEST=$BUILD/tests/drivers/http_fcm
for f in "$FAKE" "$TEST"; do
	if [ ! -x "$f" ]; then
		echo "Bail out! $f missing: run make and make fakes"
		exit 1
	fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/http_fcm-t.XXXXXX")
FAKE_PID=
cleanup() {
	if [ -n "$FAKE_PID" ]; then
		kill -TERM "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
"$ROOT/tests/fakes/gen-certs.sh" "$TMP/certs" >/dev/null

# The assertion's aud is the token URL used, so the fake must know its
# own port before it starts: pick a free one (retry if it gets taken).
free_port() {
	perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(
		Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0)
		->sockport'
}
for _ in 1 2 3 4 5; do
	PORT=$(free_port)
	rm -f "$TMP/ports"
	${FAKE_WRAPPER:-} "$FAKE" --certs "$TMP/certs" \
		--ports-file "$TMP/ports" --log "$TMP/requests.log" \
		--fcm-sa "$TMP/certs/fcm-sa.json" --fcm-port "$PORT" \
		>"$TMP/fake.out" 2>"$TMP/fake.err" &
	FAKE_PID=$!
	for _ in $(seq 1 300); do
		[ -s "$TMP/ports" ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$TMP/ports" ] && break
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
done
if [ -z "$FAKE_PID" ]; then
	echo "Bail out! the fake did not start: $(cat "$TMP/fake.err")"
	exit 1
fi
# shellcheck disable=SC1091
. "$TMP/ports"

rc=0
FAKE_FCM_URL="https://127.0.0.1:$FCM_PORT" \
FAKE_WNS_URL="https://127.0.0.1:$WNS_PORT" \
FAKE_CONTROL_URL="http://127.0.0.1:$CONTROL_PORT" \
FAKE_CA="$TMP/certs/ca.pem" \
FAKE_SA_JSON="$TMP/certs/fcm-sa.json" \
FAKE_LOG="$TMP/requests.log" \
	${TEST_WRAPPER:-} "$TEST" 2>"$TMP/test.err" || rc=$?
# The test's diagnostics (stderr) are TAP comments already.
cat "$TMP/test.err" >&2

kill -TERM "$FAKE_PID" 2>/dev/null
frc=0
wait "$FAKE_PID" || frc=$?
FAKE_PID=
if grep -qE 'Sanitizer|runtime error:' "$TMP/fake.err" "$TMP/test.err"; then
	echo "# sanitizer report:"
	sed 's/^/# /' "$TMP/fake.err" "$TMP/test.err" | head -60
	exit 99
fi
if [ "$frc" -ne 0 ]; then
	echo "# the fake exited with $frc"
	sed 's/^/# /' "$TMP/fake.err" | head -20
	exit 98
fi
exit "$rc"
