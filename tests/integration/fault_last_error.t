#!/usr/bin/env bash
# fault_last_error.t - push.dispatcher_health.last_error shows an error
# while it applies and not after: acks that fail for a while (a trigger
# refuses every delivery row) put "ack failed" in last_error; once they
# work again and the queue drained, a clean stop leaves status stopped and
# last_error empty.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

N=20
DB=fault_last_error
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start
APP=$(fcm_app $DB lasterr)
q $DB "CREATE FUNCTION public.refuse_delivery() RETURNS trigger
         LANGUAGE plpgsql AS \$\$
       BEGIN RAISE EXCEPTION 'refused for the test'; END \$\$;
       CREATE TRIGGER refuse_delivery BEFORE INSERT ON push.deliveries
         FOR EACH ROW EXECUTE FUNCTION public.refuse_delivery()" >/dev/null
q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
       SELECT $APP, 'fcm', 'lasterr-token-' || lpad(i::text, 6, '0'),
              '{\"title\":\"t\"}'
       FROM generate_series(1, $N) i" >/dev/null

daemon_start $DB
wait_for $DB "SELECT last_error LIKE 'ack failed:%refused for the test%'
              FROM push.dispatcher_health" 30
ok $? "while acks fail, last_error says so"
q $DB "DROP TRIGGER refuse_delivery ON push.deliveries" >/dev/null
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30
ok $? "once acks work again the queue drains"
wait_for $DB "SELECT last_error IS NULL FROM push.dispatcher_health" 10
ok $? "  and the running process's last_error is cleared"
daemon_stop 10
is "$(q $DB "SELECT status || '|' || coalesce(last_error, '<null>')
             FROM push.dispatcher_health")" "stopped|<null>" \
	"after a clean stop: status stopped, no stale last_error"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome = 'sent'")" "$N" \
	"every push recorded as sent"
fake_stop
done_testing
