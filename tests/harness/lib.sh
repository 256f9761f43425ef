# lib.sh — TAP and database helpers for the bash scenarios in tests/.
#
# Source it from a test (`. "$(dirname "$0")/../harness/lib.sh"`). It expects
# the environment tests/harness/run.sh sets (PGHOST, PGPORT, PGUSER,
# PGPUSH_TEMPLATE_DB, PGPUSHD, PGPUSH_TOP). A test calls plan N, then the
# assertions; each assertion prints `ok` / `not ok` with both values on
# failure, and the exit status is non-zero if any failed.

set -uo pipefail

: "${PGPUSH_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${PGPUSHD:=$PGPUSH_TOP/build/pgpushd}"
_tap_n=0
_tap_failed=0
_tap_dbs=()

plan() { echo "1..$1"; }

# ok COND_EXIT_STATUS DESCRIPTION — pass when the status is 0.
ok() {
	local st=$1; shift
	_tap_n=$((_tap_n + 1))
	if [ "$st" -eq 0 ]; then
		echo "ok $_tap_n - $*"
	else
		echo "not ok $_tap_n - $*"
		_tap_failed=$((_tap_failed + 1))
	fi
}

# is GOT EXPECTED DESCRIPTION — string equality, both shown on failure.
is() {
	local got=$1 want=$2; shift 2
	if [ "$got" = "$want" ]; then
		ok 0 "$*"
	else
		ok 1 "$*"
		# Diagnostics go to stderr, which prove shows even when quiet.
		echo "#   got:      '$got'" >&2
		echo "#   expected: '$want'" >&2
	fi
}

# like GOT REGEX DESCRIPTION — extended-regex match.
like() {
	local got=$1 re=$2; shift 2
	# Not grep -q: it may exit before printf has written everything, and
	# printf's SIGPIPE then fails the pipeline (pipefail) on a match.
	if printf '%s' "$got" | grep -E -- "$re" >/dev/null; then
		ok 0 "$*"
	else
		ok 1 "$*"
		echo "#   got:      '$got'" >&2
		echo "#   expected to match: /$re/" >&2
	fi
}

diag() { printf '# %s\n' "$@" >&2; }

# fresh_db NAME — a new database copied from the migrated template,
# dropped when the test exits.
fresh_db() {
	dropdb --if-exists "$1" >/dev/null 2>&1
	createdb -T "$PGPUSH_TEMPLATE_DB" "$1" || return 1
	_tap_dbs+=("$1")
}

# empty_db NAME — a new empty database (nothing migrated).
empty_db() {
	dropdb --if-exists "$1" >/dev/null 2>&1
	createdb "$1" || return 1
	_tap_dbs+=("$1")
}

# q DB SQL [psql args] — run SQL, print unaligned tuples only.
q() {
	local db=$1 sql=$2; shift 2
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@" -c "$sql"
}

# q_err DB SQL — run SQL that must fail; print the error message.
q_err() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1 >/dev/null
}

# free_port — a loopback TCP port nobody listens on right now (the kernel
# picks it; a race with another process taking it is possible, not likely).
free_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(Listen => 1,
		    LocalAddr => "127.0.0.1", LocalPort => 0) or die "$!\n";
		print $s->sockport, "\n";'
}

_tap_finish() {
	local rc=$?
	for d in "${_tap_dbs[@]}"; do
		dropdb --if-exists --force "$d" >/dev/null 2>&1
	done
	if [ $_tap_failed -gt 0 ]; then
		echo "# $_tap_failed of $_tap_n failed"
		exit 1
	fi
	exit $rc
}
trap _tap_finish EXIT
