# tests/fakes/t/lib.sh — shared helpers of the fakes' TAP self-tests.
#
# Sourced by every tests/fakes/t/*.t.  Gives a temp dir with fresh
# credentials, starts pgpush-fake on free ports (the fake binds port 0
# and writes the chosen ports to a file), TAP helpers, curl wrappers,
# JWT minting through build/fakes/fake-jwt, and JSON field access
# through perl's core JSON::PP (perl is there wherever prove is).
# finish() stops the fake, fails a test if a sanitizer report or a
# non-zero exit appeared, and prints the plan.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# FAKES_BUILD: another build directory (default: the repository's build/)
FAKE=${FAKES_BUILD:-$ROOT/build}/fakes/pgpush-fake
JWT=${FAKES_BUILD:-$ROOT/build}/fakes/fake-jwt
if [ ! -x "$FAKE" ] || [ ! -x "$JWT" ]; then
	echo "Bail out! $FAKE or $JWT missing: run make fakes"
	exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fakes-t.XXXXXX")
CERTS=$TMP/certs
"$ROOT/tests/fakes/gen-certs.sh" "$CERTS" >/dev/null
FAKE_PID=
T=0
FAILED=0

TEAM=TEAM123456
KID=ABC123DEFG
SA_EMAIL=fake-fcm@pgpush-test.iam.gserviceaccount.com
PROJECT=pgpush-test
WNS_SID='ms-app://S-1-15-2-1111-2222'
WNS_SECRET='s3cret+/='

cleanup() {
	if [ -n "$FAKE_PID" ]; then
		kill -TERM "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# start_fake [ARGS...]: starts the fake with the test credentials.
start_fake() {
	rm -f "$TMP/ports"
	# FAKE_WRAPPER: e.g. "valgrind -q --error-exitcode=99 --leak-check=full"
	${FAKE_WRAPPER:-} "$FAKE" --certs "$CERTS" --ports-file "$TMP/ports" \
		--log "$TMP/requests.log" \
		--apns-key "$KID:$TEAM:$CERTS/apns-key.p8" \
		--fcm-sa "$CERTS/fcm-sa.json" \
		--wns-client "$WNS_SID:$WNS_SECRET" \
		"$@" >"$TMP/fake.out" 2>"$TMP/fake.err" &
	FAKE_PID=$!
	for _ in $(seq 1 300); do
		[ -s "$TMP/ports" ] && break
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$TMP/ports" ]; then
		echo "Bail out! the fake did not start: $(cat "$TMP/fake.err")"
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$TMP/ports"
}

ok() { # ok COND-STATUS NAME
	T=$((T + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T - $2"
	else
		echo "not ok $T - $2"
		FAILED=$((FAILED + 1))
	fi
}

is() { # is GOT WANT NAME
	T=$((T + 1))
	if [ "$1" = "$2" ]; then
		echo "ok $T - $3"
	else
		echo "not ok $T - $3"
		echo "#   got:  '$1'"
		echo "#   want: '$2'"
		FAILED=$((FAILED + 1))
	fi
}

like() { # like GOT REGEX NAME
	T=$((T + 1))
	if [[ $1 =~ $2 ]]; then
		echo "ok $T - $3"
	else
		echo "not ok $T - $3"
		echo "#   got:  '$1'"
		echo "#   want: /$2/"
		FAILED=$((FAILED + 1))
	fi
}

# finish: stop the fake, check its stderr and exit code, print the plan.
finish() {
	local rc=0
	kill -TERM "$FAKE_PID" 2>/dev/null
	for _ in $(seq 1 200); do	# 10 s to shut down cleanly
		kill -0 "$FAKE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$FAKE_PID" 2>/dev/null; then
		echo "# the fake did not exit on SIGTERM"
		kill -KILL "$FAKE_PID"
	fi
	wait "$FAKE_PID" || rc=$?
	FAKE_PID=
	if grep -qE 'Sanitizer|runtime error:' "$TMP/fake.err"; then
		sed 's/^/# /' "$TMP/fake.err" | head -60
		rc=99
	fi
	is "$rc" 0 "fake exited cleanly, no sanitizer report"
	echo "1..$T"
}

# jget JSON PATH: a field by dotted path (array indexes are numbers);
# prints nothing if absent.
jget() {
	perl -MJSON::PP -e '
		my $v = eval { JSON::PP->new->allow_nonref->decode($ARGV[0]) };
		for my $k (split /\./, $ARGV[1]) {
			last unless defined $v;
			$v = ref $v eq "ARRAY" ? $v->[$k] : ref $v eq "HASH" ?
			    $v->{$k} : undef;
		}
		if (ref $v) { print JSON::PP->new->canonical->encode($v) }
		elsif (defined $v) { print $v }' "$1" "$2"
}

# logline N: the Nth request-log line counted from the end (1 = last).
logline() { tail -n "${1:-1}" "$TMP/requests.log" | head -n 1; }

# req [CURL ARGS...] URL: HTTPS with the test CA; sets STATUS, BODY,
# HDRS (response header block, names lower-cased), VER, CURL_RC.
req() {
	CURL_RC=0
	STATUS=$(curl -sS --cacert "$CERTS/ca.pem" -o "$TMP/body" \
		-D "$TMP/hdrs" -w '%{http_code} %{http_version}' \
		--max-time 20 "$@" 2>"$TMP/curl.err") || CURL_RC=$?
	VER=${STATUS#* }
	STATUS=${STATUS%% *}
	BODY=$(cat "$TMP/body" 2>/dev/null)
	HDRS=$(tr -d '\r' <"$TMP/hdrs" 2>/dev/null |
		awk -F': ' -v OFS=': ' '{ $1 = tolower($1) } 1')
}

# hdr NAME: a response header of the last req (name lower case).
hdr() { printf '%s\n' "$HDRS" | sed -n "s/^$1: //p" | tail -n 1; }

# ctl METHOD PATH [JSON]: talk to the control port; prints the body.
ctl() {
	if [ $# -ge 3 ]; then
		curl -sS -X "$1" "http://127.0.0.1:$CONTROL_PORT$2" \
			-H 'content-type: application/json' -d "$3"
	else
		curl -sS -X "$1" "http://127.0.0.1:$CONTROL_PORT$2"
	fi
}

# apns_jwt [IAT] [KID] [KEYFILE] [TEAM]
apns_jwt() {
	"$JWT" ES256 "${3:-$CERTS/apns-key.p8}" \
		"{\"alg\":\"ES256\",\"kid\":\"${2:-$KID}\"}" \
		"{\"iss\":\"${4:-$TEAM}\",\"iat\":${1:-$(date +%s)}}"
}

# fcm_claims [IAT] [EXP] [AUD] [SCOPE] [ISS]: assertion claims JSON.
fcm_claims() {
	local now
	now=$(date +%s)
	printf '{"iss":"%s","scope":"%s","aud":"%s","iat":%s,"exp":%s}' \
		"${5:-$SA_EMAIL}" \
		"${4:-https://www.googleapis.com/auth/firebase.messaging}" \
		"${3:-https://oauth2.googleapis.com/token}" \
		"${1:-$now}" "${2:-$((now + 3600))}"
}

# fcm_assertion [CLAIMS-JSON] [KEYFILE]: default claims are valid.
fcm_assertion() {
	local claims
	if [ $# -ge 1 ]; then claims=$1; else claims=$(fcm_claims); fi
	"$JWT" RS256 "${2:-$CERTS/fcm-sa.key}" \
		'{"alg":"RS256","typ":"JWT","kid":"0123456789abcdef0123456789abcdef01234567"}' \
		"$claims"
}

# oauth ASSERTION: POST it to the token endpoint (sets STATUS, BODY).
oauth() {
	req --http2 "https://127.0.0.1:$FCM_PORT/token" \
		-d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer \
		-d "assertion=$1"
}

# fcm_token: a fresh access token from the fake.
fcm_token() {
	oauth "$(fcm_assertion)"
	jget "$BODY" access_token
}

# fcm_send TOKEN JSON [PROJECT]: POST a SendMessageRequest.
fcm_send() {
	req --http2 \
		"https://127.0.0.1:$FCM_PORT/v1/projects/${3:-$PROJECT}/messages:send" \
		-H "authorization: Bearer $1" \
		-H 'content-type: application/json' -d "$2"
}

APNS_TOKEN=$(printf '%064d' 0 | tr 0 a)
