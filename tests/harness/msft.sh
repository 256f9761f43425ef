# shellcheck shell=bash
# msft.sh - helpers for the WNS and MPNS dispatcher scenarios
# (tests/integration/dispatch_wns*.t, dispatch_mpns*.t).  Source it after
# lib.sh and dispatch.sh; start the fake with the WNS client registered:
#   fake_start $WNS_FAKE_CLIENT
#
#   wns_app DB NAME [FLOW [COLS VALUES]]
#                       an app with WNS credentials for the fake (FLOW store,
#                       the default, or entra with tenant "contoso"); the
#                       fake's host 127.0.0.1 is allowed through the
#                       credential's channel_hosts; prints the app id
#   mpns_app DB NAME [cert [COLS VALUES]]
#                       an app with MPNS settings for the fake; "cert" adds
#                       the test client certificate (authenticated MPNS)
#   wns_channel NAME    a WNS channel URL on the fake (token NAME)
#   mpns_channel NAME   an MPNS channel URL on the fake (token NAME)
#   wns_log             WNS channel requests in the fake's log, one a line:
#                       "token x-wns-type status"
#   wns_token_requests  WNS OAuth token requests: "path status"
#   mpns_log            MPNS requests: "token target class status auth
#                       messageid" (target "-" when absent)
#   log_header PROV TOKEN HEADER
#                       that request header of every request of TOKEN

WNS_SID='ms-app://S-1-15-2-1111'
WNS_SECRET='wns-test-secret'
WNS_FAKE_CLIENT="--wns-client=$WNS_SID:$WNS_SECRET"

wns_channel() { printf 'https://127.0.0.1:%s/?token=%s' "$WNS_PORT" "$1"; }
mpns_channel() {
	printf 'https://127.0.0.1:%s/unthrottledthirdparty/01.00/%s' \
		"$MPNS_PORT" "$1"
}

wns_app() {
	local db=$1 name=$2 flow=${3:-store} cols=${4:-} vals=${5:-}
	local url="https://127.0.0.1:$WNS_PORT/accesstoken.srf" tenant=NULL
	if [ "$flow" = entra ]; then
		url="https://127.0.0.1:$WNS_PORT/contoso/oauth2/v2.0/token"
		tenant="'contoso'"
	fi
	q "$db" "
	  WITH a AS (INSERT INTO push.apps (name $cols)
	             VALUES ('$name' $vals) RETURNING id),
	       c AS (INSERT INTO push.wns_credentials (app_id, auth_flow,
	               client_id, client_secret, tenant_id, channel_hosts,
	               token_endpoint, ca_bundle_path)
	             SELECT id, '$flow', '$WNS_SID', '$WNS_SECRET', $tenant,
	               '{127.0.0.1}', '$url', $(sql_lit "$CERTS/ca.pem")
	             FROM a RETURNING app_id)
	  SELECT app_id FROM c"
}

mpns_app() {
	local db=$1 name=$2 cert=${3:-} cols=${4:-} vals=${5:-}
	local c=NULL k=NULL
	if [ "$cert" = cert ]; then
		c=$(sql_lit "$(cat "$CERTS/mpns-client.pem")")
		k=$(sql_lit "$(cat "$CERTS/mpns-client.key")")
	fi
	q "$db" "
	  WITH a AS (INSERT INTO push.apps (name $cols)
	             VALUES ('$name' $vals) RETURNING id),
	       c AS (INSERT INTO push.mpns_credentials (app_id,
	               certificate_pem, private_key_pem, channel_hosts,
	               ca_bundle_path)
	             SELECT id, $c, $k, '{127.0.0.1}', $(sql_lit "$CERTS/ca.pem")
	             FROM a RETURNING app_id)
	  SELECT app_id FROM c"
}

wns_log() {
	perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "wns" && defined $r->{token} &&
		    ($r->{path} // "") =~ /[?&]token=/;
		print "$r->{token} ", ($r->{headers}{"x-wns-type"} // "-"),
		    " $r->{response}{status}\n";
	' "$DT/requests.log" 2>/dev/null
}

wns_token_requests() {
	perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "wns" &&
		    ($r->{path} // "") =~ m{(accesstoken\.srf|/token)$};
		print "$r->{path} $r->{response}{status}\n";
	' "$DT/requests.log" 2>/dev/null
}

mpns_log() {
	perl -MJSON::PP -ne '
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "mpns";
		my $h = $r->{headers};
		print join(" ", $r->{token} // "-",
		    $h->{"x-windowsphone-target"} // "-",
		    $h->{"x-notificationclass"} // "-",
		    $r->{response}{status}, $r->{auth} // "-",
		    $h->{"x-messageid"} // "-"), "\n";
	' "$DT/requests.log" 2>/dev/null
}

log_header() {
	perl -MJSON::PP -se '
		open(my $f, "<", $file) or exit 0;
		while (<$f>) {
			my $r = eval { decode_json($_) } or next;
			next unless $r->{provider} eq $prov &&
			    ($r->{token} // "") eq $tok;
			print(($r->{headers}{lc $hdr} // "-"), "\n");
		}
	' -- -file="$DT/requests.log" -prov="$1" -tok="$2" -hdr="$3"
}
