#!/usr/bin/env bash
# dispatch_token_refresh.t - an FCM access token that expires mid-run is
# refreshed before it is rejected: with the fake issuing 4-second tokens,
# pushes enqueued over 10 s all succeed, the fake never answers 401 (it
# never sees an expired token), no push needs a retry, and several tokens
# are fetched.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_token_refresh
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start --fcm-token-ttl 4

APP=$(fcm_app $DB refresh)
daemon_start $DB
wait_for $DB "SELECT state = 'running' FROM push.dispatchers" 10
ok $? "the daemon is running"

# 40 batches of 50 pushes, one every 250 ms: 10 s of steady traffic.
for b in $(seq 1 40); do
	q $DB "INSERT INTO push.pushes (app_id, platform, token, payload)
	       SELECT $APP, 'fcm', 'refresh-$b-token-' || lpad(i::text, 4, '0'),
	              '{\"title\":\"refresh\"}'
	       FROM generate_series(1, 50) i" >/dev/null
	sleep 0.25
done
wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)" 30
ok $? "the queue drains"

is "$(q $DB "SELECT count(*) FILTER (WHERE outcome = 'sent'), count(*)
             FROM push.deliveries")" "2000|2000" \
	"all 2,000 pushes sent, none retried or failed"
is "$(fcm_log_tokens | awk '$2 != 200' | wc -l | tr -d ' ')" 0 \
	"the fake never rejected a send (no 401: no expired token used)"
n=$(fcm_token_requests | grep -c '^200$')
first=$(perl -MJSON::PP -ne 'my $r = decode_json($_);
	print "$r->{time_ms}\n" if $r->{path} =~ m{/token$}' "$DT/requests.log" |
	head -n 1)
last=$(perl -MJSON::PP -ne 'my $r = decode_json($_);
	print "$r->{time_ms}\n" if $r->{path} =~ m{/messages:send$}' \
	"$DT/requests.log" | tail -n 1)
span=$(( (last - first) / 1000 ))
diag "$n token fetches over ${span}s of sending"
ok "$([ "$n" -ge 3 ] && [ "$n" -ge $((span / 4 + 1)) ]; echo $?)" \
	"the token was refreshed as it aged: $n fetches over ${span}s with 4 s tokens"
is "$(fcm_token_requests | grep -vc '^200$')" 0 "every token request succeeded"

daemon_stop 10
fake_stop
done_testing
