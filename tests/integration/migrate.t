#!/usr/bin/env bash
# migrate.t - `pgpushd migrate` against a real database: migrating an empty
# database produces exactly what schema/ describes, a second run is a no-op,
# a new file is applied, and a changed applied file is refused.
. "$(dirname "$0")/../harness/lib.sh"
plan 13

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; _tap_finish' EXIT

empty_db mig_a
out=$("$PGPUSHD" migrate --db "dbname=mig_a" \
	--migrations-dir "$PGPUSH_TOP/migrations" 2>&1)
ok $? "migrate on an empty database succeeds"
like "$out" "applied.*0001_foundation" "it reports the migration it applied"
is "$(q mig_a "SELECT string_agg(version, ',' ORDER BY version)
               FROM push.schema_migrations")" \
   "$(cd "$PGPUSH_TOP/migrations" && ls *.sql | sed 's/\.sql$//' |
      paste -sd, -)" \
   "every migration file is recorded in push.schema_migrations"
is "$(q mig_a "SELECT checksum FROM push.schema_migrations
               WHERE version = '0001_foundation'")" \
   "$(sha256sum "$PGPUSH_TOP/migrations/0001_foundation.sql" | cut -d' ' -f1)" \
   "the recorded checksum is the file's SHA-256"

out=$("$PGPUSHD" migrate --db "dbname=mig_a" \
	--migrations-dir "$PGPUSH_TOP/migrations" 2>&1)
ok $? "a second migrate succeeds"
like "$out" "nothing to do" "and does nothing"

# schema/ (loaded file by file) and the migrations make the same objects,
# grants, comments and policies.
empty_db mig_b
cat "$PGPUSH_TOP"/schema/*.sql |
	psql -X -q -v ON_ERROR_STOP=1 -1 -d mig_b >"$tmp/load.log" 2>&1
ok $? "schema/*.sql loads into an empty database"
dump() {
	pg_dump --schema-only --schema=push --no-owner -d "$1" |
		grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict'
}
dump mig_a >"$tmp/a.sql"
dump mig_b >"$tmp/b.sql"
if diff -u "$tmp/b.sql" "$tmp/a.sql" >"$tmp/diff"; then
	ok 0 "migrations from empty produce exactly what schema/ describes"
else
	ok 1 "migrations from empty produce exactly what schema/ describes"
	sed 's/^/# /' "$tmp/diff" | head -n 40
fi

# A new file is applied, in order, and recorded.
mkdir "$tmp/m"
cp "$PGPUSH_TOP"/migrations/*.sql "$tmp/m/"
printf 'CREATE TABLE push.mig_probe (x int);\n' >"$tmp/m/9990_probe.sql"
"$PGPUSHD" migrate --db "dbname=mig_a" --migrations-dir "$tmp/m" \
	>/dev/null 2>&1
ok $? "a new migration file is applied"
is "$(q mig_a "SELECT count(*) FROM push.schema_migrations
               WHERE version = '9990_probe'")" 1 "and recorded"

# Editing an applied migration is refused, and nothing is applied.
printf -- '-- edited\n' >>"$tmp/m/0001_foundation.sql"
printf 'CREATE TABLE push.mig_probe2 (x int);\n' >"$tmp/m/9991_probe.sql"
out=$("$PGPUSHD" migrate --db "dbname=mig_a" --migrations-dir "$tmp/m" 2>&1)
st=$?
ok $((st == 0)) "migrate refuses to run when an applied file changed (exit $st)"
like "$out" "0001_foundation.*(changed|checksum)" \
	"the message names the changed file"
is "$(q mig_a "SELECT count(*) FROM push.schema_migrations
               WHERE version = '9991_probe'")" 0 \
   "and the pending migration was not applied"
