#!/usr/bin/env bash
# first_run.t - the first start of pgpushd on a new database writes every
# outcome without an error, and partition maintenance never fails a
# concurrent write to push.deliveries.
#
# 1. A database migrated from empty, pushes queued before the daemon ever
#    ran: the daemon sends them all, and neither its log nor
#    push.dispatcher_health.last_error shows a failed ack (it used to
#    log 'ack failed: new row for relation "deliveries_default" violates
#    partition constraint' when its first maintenance run attached today's
#    partition while acks were writing). The outcomes are in today's
#    partition, none in the default one.
# 2. The race itself, made deterministic with two sessions, on a database
#    whose maintenance has not run for days (no partition for today):
#    push.run_maintenance() creates today's partition in a transaction
#    kept open, an outcome of today is written meanwhile (as an ack does),
#    then maintenance commits. The write succeeds, in today's partition.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

today_part="push.deliveries_$(date -u +%Y%m%d)"

# 1 ----------------------------------------------------------------------
DB=first_run
empty_db $DB || { echo "Bail out! createdb"; exit 1; }
"$PGPUSHD" migrate --db "dbname=$DB" \
	--migrations-dir "$PGPUSH_TOP/migrations" >"$DT/migrate.log" 2>&1
ok $? "a new database is migrated from empty"
fake_start
APP=$(fcm_app $DB fr_shop)
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $APP, 'fcm', 'first-run-token-' || lpad(i::text, 6, '0'),
              '{\"title\":\"t\"}'
       FROM generate_series(1, 300) i" >/dev/null
ok $? "300 pushes are queued before any daemon ran"
daemon_start $DB --ack-interval-ms 1
wait_for $DB "(SELECT count(*) FROM push.deliveries WHERE outcome = 'sent')
              = 300" 40
ok $? "the first daemon sends them all"
# The first maintenance run comes a second after the start: let it run.
wait_for $DB "EXISTS (SELECT 1 FROM push.dispatchers WHERE
              heartbeat_at > started_at + interval '2 seconds')" 20
daemon_stop
is "$(grep -c 'ack failed' "$DAEMON_LOG")" 0 "no failed ack in the log"
grep 'ack failed' "$DAEMON_LOG" | head -3 | sed 's/^/#   /'
is "$(q $DB "SELECT count(*) FROM push.dispatcher_health
             WHERE last_error LIKE '%ack failed%'
                OR last_error LIKE '%partition%'")" 0 \
	"no ack error in push.dispatcher_health.last_error"
is "$(q $DB "SELECT string_agg(DISTINCT tableoid::regclass::text, ',')
             FROM push.deliveries")" "$today_part" \
	"every outcome is in today's partition, none in the default one"
fake_stop

# 2 ----------------------------------------------------------------------
DB2=first_run_race
fresh_db $DB2 || { echo "Bail out! createdb"; exit 1; }
APP2=$(q $DB2 "INSERT INTO push.apps (name) VALUES ('fr_race') RETURNING id")
q $DB2 "DO \$\$ DECLARE r record; BEGIN
          FOR r IN SELECT inhrelid::regclass AS p FROM pg_inherits
                   WHERE inhparent = 'push.deliveries'::regclass
                     AND inhrelid::regclass::text ~ '_[0-9]{8}\$'
          LOOP EXECUTE format('DROP TABLE %s', r.p); END LOOP; END \$\$" \
	>/dev/null
coproc MAINT { psql -X -q -A -t -v ON_ERROR_STOP=1 -d $DB2 \
	2>"$DT/maint.err"; }
# maint SQL N: run SQL in the maintenance session, wait until it is done.
maint() {
	local line
	printf '%s\n\\echo done-%s\n' "$1" "$2" >&"${MAINT[1]}"
	while read -r -t 20 line <&"${MAINT[0]}"; do
		[ "$line" = "done-$2" ] && return 0
		echo "$line" >>"$DT/maint.out"
	done
	return 1
}
maint "BEGIN; SELECT action || ' ' || object FROM push.run_maintenance();" 1
ok $? "maintenance has run, its transaction still open"
like "$(cat "$DT/maint.out")" "created $today_part" \
	"  it created today's partition"
psql -X -q -A -t -d $DB2 -v ON_ERROR_STOP=1 \
	-c "SET application_name = 'fr_writer'" \
	-c "INSERT INTO push.deliveries (push_id, app_id, outcome,
	      provider_reason) VALUES (0, $APP2, 'sent', 'fr-now')" \
	>/dev/null 2>"$DT/writer.err" &
writer=$!
# Until the write has finished, or waits for a lock.
for _ in $(seq 1 100); do
	kill -0 $writer 2>/dev/null || break
	[ "$(q $DB2 "SELECT count(*) FROM pg_stat_activity
	             WHERE application_name = 'fr_writer'
	               AND wait_event_type = 'Lock'")" = 1 ] && break
	sleep 0.05
done
maint "COMMIT;" 2
ok $? "maintenance commits"
exec {MAINT[1]}>&-
wait "$MAINT_PID" 2>/dev/null
wait $writer
is "$?|$(cat "$DT/writer.err")" "0|" \
	"an outcome of today written meanwhile succeeds"
is "$(cat "$DT/maint.err")" "" "  maintenance saw no error either"
is "$(q $DB2 "SELECT tableoid::regclass FROM push.deliveries
              WHERE provider_reason = 'fr-now'")" "$today_part" \
	"  the outcome is in today's partition"

done_testing
