#!/usr/bin/env bash
# install.t - `make install` into a temporary DESTDIR gives a working
# daemon: the installed pgpushd runs, finds its installed migrations
# without --migrations-dir and migrates a database; the manual page
# documents every flag of --help; the systemd unit names the installed
# paths and passes `systemd-analyze verify` (where systemd is installed);
# `make uninstall` removes it all but the settings.
. "$(dirname "$0")/../harness/lib.sh"
plan 16

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; _tap_finish' EXIT
dest=$tmp/dest
prefix=/usr/local
mk() {
	# The flags of the build under test (run.sh's caller), so that
	# install does not rebuild build/ differently.
	make -C "$PGPUSH_TOP" --no-print-directory ${PGPUSH_MAKE_VARS:-} \
		DESTDIR="$dest" "$@" >>"$tmp/make.log" 2>&1
}

mk install
ok $? "make install DESTDIR=... succeeds" || diag "$(tail -n 20 "$tmp/make.log")"
bin=$dest$prefix/sbin/pgpushd
ok "$([ -x "$bin" ]; echo $?)" "pgpushd is installed in PREFIX/sbin"
is "$(ls "$dest$prefix/share/pgpush/migrations")" \
   "$(ls "$PGPUSH_TOP/migrations")" \
   "the migrations are in PREFIX/share/pgpush/migrations"
is "$(ls "$dest$prefix/share/pgpush/admin-sql")" \
   "$(ls "$PGPUSH_TOP/admin-sql")" \
   "the admin scripts are in PREFIX/share/pgpush/admin-sql"
like "$("$bin" --version)" '^pgpushd [0-9]+\.[0-9]+\.[0-9]+ ' \
   "the installed pgpushd --version names its version"

# Run from / so that nothing relative to a source tree can help.
empty_db inst_a
out=$(cd / && "$bin" migrate --db "dbname=inst_a" 2>&1)
ok $? "the installed pgpushd migrates without --migrations-dir" ||
	diag "$out"
is "$(q inst_a "SELECT string_agg(version, ',' ORDER BY version)
                FROM push.schema_migrations")" \
   "$(cd "$PGPUSH_TOP/migrations" && ls *.sql | sed 's/\.sql$//' |
      paste -sd, -)" \
   "every installed migration is applied"
is "$(cd / && "$bin" migrate --db "dbname=inst_a" 2>&1 |
      grep -c 'nothing to do')" 1 "a second migrate has nothing to do"

man=$dest$prefix/share/man/man8/pgpushd.8
like "$(head -n 1 "$man" 2>/dev/null)" '^\.TH PGPUSHD 8 ' \
   "pgpushd(8) is installed in PREFIX/share/man/man8"
missing=
for f in $("$bin" --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z0-9-]+' |
	   grep -oE -- '--[a-z0-9-]+'); do
	grep -qF -- "$(printf '%s' "$f" | sed 's/-/\\-/g')" "$man" ||
		missing+=" $f"
done
is "$missing" "" "the manual page documents every flag of --help"

unit=$dest$prefix/lib/systemd/system/pgpushd.service
is "$(grep -E '^(ExecStart|EnvironmentFile|User|Restart|NoNewPrivileges|ProtectSystem)=' \
      "$unit" 2>/dev/null | sort | tr '\n' ' ')" \
   "EnvironmentFile=-/etc/default/pgpushd ExecStart=$prefix/sbin/pgpushd run \$PGPUSHD_OPTS NoNewPrivileges=yes ProtectSystem=strict Restart=on-failure User=pgpush " \
   "the unit runs the installed pgpushd as pgpush, restarting on failure"
ok "$([ -f "$dest/etc/default/pgpushd" ]; echo $?)" \
   "the environment file is installed as /etc/default/pgpushd"

# systemd-analyze checks the unit against the running system's systemd;
# the ExecStart path is pointed at the DESTDIR copy.
if command -v systemd-analyze >/dev/null 2>&1 &&
	{ [ -e /lib/systemd/system/sysinit.target ] ||
	  [ -e /usr/lib/systemd/system/sysinit.target ]; }; then
	mkdir -p "$tmp/unit"
	sed "s|^ExecStart=$prefix|ExecStart=$dest$prefix|" "$unit" \
		>"$tmp/unit/pgpushd.service"
	out=$(systemd-analyze verify --man=no "$tmp/unit/pgpushd.service" 2>&1)
	ok $? "systemd-analyze verify accepts pgpushd.service"
	is "$out" "" "and has nothing to say about it"
else
	for _ in 1 2; do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # skip systemd is not installed"
	done
fi

echo '# kept' >>"$dest/etc/default/pgpushd"
mk install
is "$(tail -n 1 "$dest/etc/default/pgpushd")" "# kept" \
   "a second install keeps the edited environment file"
mk uninstall
is "$(cd "$dest" && find . -type f | sort | tr '\n' ' ')" \
   "./etc/default/pgpushd " "make uninstall removes all but the settings"
