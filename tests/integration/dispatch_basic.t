#!/usr/bin/env bash
# dispatch_basic.t - end to end through pgpushd and the fake FCM: 10,000
# pushes to 3 apps (device, token and user targets; the users have two
# devices each, 13,000 deliveries) are each delivered exactly once with the
# right body and a Bearer token the fake issued; the queue ends empty,
# push.deliveries has one `sent` row per (push, device) with the provider's
# message name, push.stats_minute adds up to the deliveries, the daemon
# never holds more than 4 Postgres connections, and push.dispatchers shows
# it running, then stopped after SIGTERM; claims were HOT updates.
# DISPATCH_DAEMON_ARGS may choose the worker threads (--http-threads N);
# with https_proxy set FCM goes through libcurl, else its own client.
. "$(dirname "$0")/../harness/lib.sh"
. "$(dirname "$0")/../harness/dispatch.sh"

DB=dispatch_basic
fresh_db $DB || { echo "Bail out! createdb"; exit 1; }
fake_start

A1=$(fcm_app $DB basic-devices)
A2=$(fcm_app $DB basic-tokens)
A3=$(fcm_app $DB basic-users)
q $DB "
  INSERT INTO push.devices (app_id, platform, token)
    SELECT $A1, 'fcm', 'a1-device-token-' || lpad(i::text, 6, '0')
    FROM generate_series(1, 4000) i;
  INSERT INTO push.devices (app_id, platform, token, user_id)
    SELECT $A3, 'fcm', 'a3-user-' || i || '-device-' || j || '-token',
           'user-' || i
    FROM generate_series(1, 3000) i, generate_series(1, 2) j;" >/dev/null

conns_sample_start $DB
daemon_start $DB
wait_for $DB "SELECT state = 'running' AND pid = $DAEMON_PID
              FROM push.dispatchers" 10
ok $? "push.dispatchers shows the daemon running (its pid)"
# (dispatch_basic_threads.t runs this file again with --http-threads 4.)
threads=$(echo "${DISPATCH_DAEMON_ARGS:-}" |
	sed -nE 's/.*--http-threads[ =]([0-9]+).*/\1/p')
like "$(grep -o 'http_threads=[0-9]*' "$DAEMON_LOG" | head -n 1)" \
	"^http_threads=${threads:-2}\$" \
	"libcurl runs on ${threads:-2} worker threads"
# (dispatch_basic_threads.t sets https_proxy: FCM then goes by libcurl.)
if [ -n "${https_proxy:-}" ]; then
	like "$(cat "$DAEMON_LOG")" 'a proxy is configured: libcurl sends every' \
		"https_proxy set: FCM goes through libcurl (the own client speaks no proxy)"
else
	ok "$(grep -q 'a proxy is configured' "$DAEMON_LOG"; [ $? -ne 0 ]; echo $?)" \
		"FCM on pgpushd's own HTTP/2 client (--h2-direct 1, no proxy)"
fi

payload="jsonb_build_object('title', 'title ' || i, 'body', 'body of ' || i,
  'data', jsonb_build_object('n', i, 'flag', true, 's', 'str-' || i,
                             'obj', jsonb_build_object('k', i)))"
t0=$(now_ms)
q $DB "
  INSERT INTO push.pushes (app_id, device_id, payload)
    SELECT $A1, d.id, $payload
    FROM (SELECT id, id AS i FROM push.devices WHERE app_id = $A1) d;
  INSERT INTO push.pushes (app_id, platform, token, payload)
    SELECT $A2, 'fcm', 'a2-raw-token-' || lpad(i::text, 6, '0'), $payload
    FROM generate_series(1, 3000) i;
  INSERT INTO push.pushes (app_id, user_id, payload)
    SELECT $A3, 'user-' || i, $payload FROM generate_series(1, 3000) i;" \
	>/dev/null
is "$(q $DB 'SELECT count(*) FROM push.pushes')" 10000 "10,000 pushes enqueued"

wait_for $DB "SELECT NOT EXISTS (SELECT 1 FROM push.queue)
  AND (SELECT count(*) FROM push.deliveries WHERE outcome <> 'retry') >= 13000" 90
ok $? "the queue drains (13,000 deliveries)"
diag "drained in $(( $(now_ms) - t0 )) ms"
wait_for $DB "SELECT coalesce(sum(count), 0) >= (SELECT count(*)
  FROM push.deliveries) FROM push.stats_minute" 10
ok $? "stats flushed"
sleep 0.5   # any late or duplicate delivery would show up now

is "$(q $DB 'SELECT count(*) FROM push.queue')" 0 "the queue is empty"
is "$(q $DB "SELECT count(*) FILTER (WHERE outcome = 'sent'),
                    count(*) FILTER (WHERE outcome NOT IN ('sent', 'retry'))
             FROM push.deliveries")" "13000|0" \
	"13,000 sent deliveries, no other final outcome"
is "$(q $DB "SELECT count(*) FROM (SELECT push_id, device_id
             FROM push.deliveries WHERE outcome = 'sent'
             GROUP BY 1, 2 HAVING count(*) > 1) x")" 0 \
	"exactly one sent delivery per (push, device)"
is "$(q $DB "SELECT count(*) FROM push.deliveries WHERE outcome = 'retry'")" 0 \
	"no retries against a healthy provider"
is "$(q $DB "SELECT count(*) FROM push.deliveries")" 13000 \
	"13,000 delivery rows in all"
is "$(q $DB "SELECT string_agg(app_id || ':' || n, ' ' ORDER BY app_id)
             FROM (SELECT app_id, count(*) n FROM push.deliveries
                   WHERE outcome = 'sent' GROUP BY 1) x")" "$A1:4000 $A2:3000 $A3:6000" \
	"per app: 4,000 device, 3,000 token, 6,000 user-fan-out deliveries"
is "$(q $DB "SELECT count(*) FROM push.deliveries
             WHERE outcome = 'sent'
               AND provider_message_id LIKE 'projects/$FCM_PROJECT/messages/%'
               AND provider_status = 200 AND sent_at IS NOT NULL")" 13000 \
	"every sent delivery has the provider's message name and status 200"
is "$(q $DB "SELECT count(DISTINCT provider_message_id) FROM push.deliveries
             WHERE outcome = 'sent'")" 13000 "message names are distinct"
is "$(q $DB "SELECT count(*) FROM push.pushes p WHERE NOT EXISTS (
             SELECT 1 FROM push.deliveries x WHERE x.push_id = p.id)")" 0 \
	"every push has a delivery"

# Stats: one row set per app, outcome sent, adding up to the deliveries.
is "$(q $DB "SELECT string_agg(app_id || ':' || outcome || ':' || n || ':' || a,
                               ' ' ORDER BY app_id)
             FROM (SELECT app_id, outcome, sum(count) n, sum(attempts) a
                   FROM push.stats_minute GROUP BY 1, 2) x")" \
	"$A1:sent:4000:4000 $A2:sent:3000:3000 $A3:sent:6000:6000" \
	"push.stats_minute counts (and attempts) add up to the deliveries"
is "$(q $DB "SELECT bool_and(latency_ms_sum > 0 AND latency_ms_min >= 0
               AND latency_ms_max >= latency_ms_min
               AND (SELECT sum(h) FROM unnest(latency_hist) h) = count)
             FROM push.stats_minute")" t \
	"stats latency sums, min/max and histograms are consistent"

# The fake's view: every token exactly once, 200, right body and auth.
q $DB "SELECT coalesce(d.token, p.token), p.payload::text
       FROM push.deliveries x JOIN push.pushes p ON p.id = x.push_id
       LEFT JOIN push.devices d ON d.id = x.device_id" >"$DT/expected"
check=$(perl -MJSON::PP -e '
	my %want;
	open my $e, "<", $ARGV[0] or die;
	while (<$e>) { chomp; my ($t, $p) = split /\|/, $_, 2;
		$want{$t} = decode_json($p); }
	my (%seen, %issued, $n, $bad_body, $bad_auth, $non200, $unknown);
	my @why;
	open my $l, "<", $ARGV[1] or die;
	while (<$l>) {
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "fcm";
		if ($r->{path} =~ m{/token$}) {
			my $b = eval { decode_json($r->{response}{body}) };
			$issued{$b->{access_token}} = 1 if $b;
			next;
		}
		next unless $r->{path} =~ m{^/v1/projects/pgpush-test/messages:send$};
		$n++;
		$non200++ if $r->{response}{status} != 200;
		my $auth = $r->{headers}{authorization} // "";
		unless ($auth =~ /^Bearer (\S+)$/ && $issued{$1}) {
			$bad_auth++; push @why, "auth: $auth";
		}
		my $m = eval { decode_json($r->{body})->{message} } // {};
		my $t = $m->{token} // "";
		$seen{$t}++;
		my $w = $want{$t};
		unless ($w) { $unknown++; push @why, "unknown token $t"; next; }
		my %wd = map { my $v = $w->{data}{$_};
			$_ => (ref $v eq "" ? $v : JSON::PP->new->canonical
			    ->allow_nonref->encode($v)) } keys %{$w->{data}};
		my $d = $m->{data} // {};
		my $ok = ($m->{notification}{title} // "") eq $w->{title} &&
		    ($m->{notification}{body} // "") eq $w->{body} &&
		    join(",", sort keys %$d) eq join(",", sort keys %wd);
		for my $k (keys %wd) {
			# data values are strings; objects may be serialised
			# with any key order and spacing
			my $got = $d->{$k};
			$ok = 0 unless defined $got && !ref $got;
			next unless $ok;
			if (ref $w->{data}{$k}) {
				my $g = eval { JSON::PP->new->canonical
				    ->encode(decode_json($got)) } // "";
				$ok = 0 unless $g eq $wd{$k};
			} else {
				$ok = 0 unless $got eq $wd{$k};
			}
		}
		unless ($ok) { $bad_body++; push @why, "body: $r->{body}"; }
	}
	my $dup = grep { $seen{$_} > 1 } keys %seen;
	my $missing = grep { !$seen{$_} } keys %want;
	printf "requests=%d dup=%d missing=%d unknown=%d non200=%d bad_auth=%d bad_body=%d\n",
	    $n, $dup, $missing, $unknown // 0, $non200 // 0, $bad_auth // 0,
	    $bad_body // 0;
	print STDERR "# $_\n" for @why[0 .. ($#why < 4 ? $#why : 4)];
' "$DT/expected" "$DT/requests.log")
is "$check" \
	"requests=13000 dup=0 missing=0 unknown=0 non200=0 bad_auth=0 bad_body=0" \
	"the fake got each token exactly once, 200, right body, Bearer token it issued"
like "$(fcm_token_requests | sort | uniq -c | tr -s ' ')" "^ ?[0-9]+ 200$" \
	"OAuth token requests all succeeded"

# Postgres connections
daemon_stop 10
max=$(conns_sample_stop)
diag "most daemon connections seen in pg_stat_activity: $max"
ok "$([ -n "$max" ] && [ "$max" -ge 1 ] && [ "$max" -le 4 ]; echo $?)" \
	"the daemon never used more than 4 Postgres connections (max $max)"
is "$(q $DB "SELECT state, stopped_at IS NOT NULL, pid > 0
             FROM push.dispatchers")" "stopped|t|t" \
	"push.dispatchers shows it stopped after SIGTERM"
is "$(q $DB "SELECT count(*) FROM pg_stat_activity
             WHERE application_name LIKE 'pgpushd%'")" 0 \
	"no daemon connection left"
# Claiming writes the lease into each row: with the queue's fillfactor
# (migration 0006) that update stays on the row's page and touches no index.
# (Counters are flushed when the daemon's backends exit, checked above.)
hot=$(q $DB "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables
             WHERE relid = 'push.queue'::regclass")
diag "push.queue updates, HOT updates: $hot"
ok "$(echo "$hot" | awk '{ exit !($1 >= 13000 && $2 >= 0.95 * $1) }'; echo $?)" \
	"claims were HOT updates of the queue rows ($hot)"
fake_stop
done_testing
