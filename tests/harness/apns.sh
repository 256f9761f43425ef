# shellcheck shell=bash
# apns.sh — helpers for the APNs dispatcher scenarios
# (tests/integration/dispatch_apns*.t).  Source it after dispatch.sh:
#   . "$(dirname "$0")/../harness/lib.sh"
#   . "$(dirname "$0")/../harness/dispatch.sh"
#   . "$(dirname "$0")/../harness/apns.sh"
#
# What it gives:
#   apns_fake_start [ARGS]  fake_start with two APNs signing keys
#                           registered: $APNS_KID/$APNS_TEAM
#                           ($CERTS/apns-key.p8, from gen-certs.sh) and
#                           $APNS_KID2/$APNS_TEAM2 ($CERTS/apns-key2.p8,
#                           made here)
#   apns_app DB NAME [TEAM KID KEYFILE [COLS VALS]]
#                           an app with APNs token-auth credentials for the
#                           fake (topic $APNS_TOPIC); prints its id
#   apns_cert_app DB NAME [pem|p12]
#                           an app with certificate auth ($CERTS/apns-client,
#                           as PEM columns or a password-protected PKCS#12)
#   apns_tok WORD           a 64-hex-digit device token derived from WORD
#   apns_log                APNs requests in the fake's log, one per line:
#                           "conn token status reason iss kid iat"
#                           (iss/kid/iat "-" without a JWT)

APNS_TOPIC=com.example.app
APNS_KID=ABC123DEFG
APNS_TEAM=TEAM123456
APNS_KID2=KEY2KEY2KY
APNS_TEAM2=TEAM2TEAM2

apns_fake_start() {
	[ -s "$CERTS/ca.pem" ] ||
		"$PGPUSH_TOP/tests/fakes/gen-certs.sh" "$CERTS" >/dev/null || {
			echo "Bail out! gen-certs.sh failed"; exit 1; }
	[ -s "$CERTS/apns-key2.p8" ] ||
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
			-out "$CERTS/apns-key2.p8" 2>/dev/null || {
			echo "Bail out! cannot make apns-key2.p8"; exit 1; }
	fake_start --apns-key "$APNS_KID:$APNS_TEAM:$CERTS/apns-key.p8" \
		--apns-key "$APNS_KID2:$APNS_TEAM2:$CERTS/apns-key2.p8" "$@"
}

# apns_app DB NAME [TEAM KID KEYFILE [COLS VALS]]
apns_app() {
	local db=$1 name=$2 team=${3:-$APNS_TEAM} kid=${4:-$APNS_KID}
	local keyf=${5:-$CERTS/apns-key.p8} cols=${6:-} vals=${7:-}
	q "$db" "
	  WITH a AS (INSERT INTO push.apps (name $cols)
	             VALUES ('$name' $vals) RETURNING id),
	       c AS (INSERT INTO push.apns_credentials (app_id, auth_method,
	               topic, environment, team_id, key_id, signing_key,
	               endpoint, ca_bundle_path)
	             SELECT id, 'token', '$APNS_TOPIC', 'sandbox', '$team',
	               '$kid', $(sql_lit "$(cat "$keyf")"),
	               'https://127.0.0.1:$APNS_PORT',
	               $(sql_lit "$CERTS/ca.pem") FROM a RETURNING app_id)
	  SELECT app_id FROM c"
}

# apns_cert_app DB NAME [pem|p12]
apns_cert_app() {
	local db=$1 name=$2 form=${3:-pem} cols vals
	if [ "$form" = p12 ]; then
		openssl pkcs12 -export -in "$CERTS/apns-client.pem" \
			-inkey "$CERTS/apns-client.key" \
			-passout pass:p12-secret -out "$DT/apns-client.p12" \
			2>/dev/null || { echo "Bail out! openssl pkcs12"; exit 1; }
		cols="pkcs12, pkcs12_password"
		vals="decode('$(od -An -v -tx1 "$DT/apns-client.p12" |
			tr -d ' \n')', 'hex'), 'p12-secret'"
	else
		cols="certificate_pem, private_key_pem"
		vals="$(sql_lit "$(cat "$CERTS/apns-client.pem")"),
		      $(sql_lit "$(cat "$CERTS/apns-client.key")")"
	fi
	q "$db" "
	  WITH a AS (INSERT INTO push.apps (name) VALUES ('$name')
	             RETURNING id),
	       c AS (INSERT INTO push.apns_credentials (app_id, auth_method,
	               topic, $cols, endpoint, ca_bundle_path)
	             SELECT id, 'certificate', '$APNS_TOPIC', $vals,
	               'https://127.0.0.1:$APNS_PORT',
	               $(sql_lit "$CERTS/ca.pem") FROM a RETURNING app_id)
	  SELECT app_id FROM c"
}

apns_tok() {
	printf '%s' "$1" | sha256sum | cut -c1-64
}

apns_log() {
	perl -MJSON::PP -MMIME::Base64 -ne '
		my $r = eval { decode_json($_) } or next;
		next unless $r->{provider} eq "apns";
		my ($iss, $kid, $iat) = ("-", "-", "-");
		my $a = $r->{headers}{authorization} // "";
		if ($a =~ /^bearer ([^.]+)\.([^.]+)\./i) {
			my ($h, $c) = ($1, $2);
			for ($h, $c) { tr{-_}{+/}; $_ .= "=" x (-length($_) % 4);
				$_ = decode_base64($_); }
			my $hj = eval { decode_json($h) } || {};
			my $cj = eval { decode_json($c) } || {};
			($iss, $kid, $iat) = ($cj->{iss} // "-", $hj->{kid} // "-",
				$cj->{iat} // "-");
		}
		my $reason = "-";
		my $b = $r->{response}{body} // "";
		if ($b ne "") { my $j = eval { decode_json($b) };
			$reason = $j->{reason} if $j && $j->{reason}; }
		print join(" ", $r->{conn} // 0, $r->{token} // "-",
			$r->{response}{status}, $reason, $iss, $kid, $iat), "\n";
	' "$DT/requests.log" 2>/dev/null
}

# apns_jwts FROM_MS [TO_MS]: the distinct provider tokens APNs requests
# carried between the two times, one "iat first_seen_ms iss" line each, in
# order of first use.
apns_jwts() {
	perl -MJSON::PP -MMIME::Base64 -e '
		my ($from, $to) = @ARGV; my %seen;
		while (<STDIN>) {
			my $r = eval { decode_json($_) } or next;
			next unless $r->{provider} eq "apns";
			next if $r->{time_ms} < $from || ($to && $r->{time_ms} > $to);
			my $a = $r->{headers}{authorization} // next;
			next if $seen{$a}++;
			my (undef, $c) = split /\./, substr($a, 7);
			$c =~ tr{-_}{+/}; $c .= "=" x (-length($c) % 4);
			my $j = eval { decode_json(decode_base64($c)) } || {};
			print "$j->{iat} $r->{time_ms} $j->{iss}\n";
		}' "$1" "${2:-0}" <"$DT/requests.log"
}

# apns_enqueue DB APP TAG N [PAYLOAD]: N token-targeted pushes, tokens
# $(apns_tok TAG) followed by a 4-digit number.
apns_enqueue() {
	local db=$1 app=$2 tag=$3 n=$4
	local pl=${5:-'{"title":"t","body":"b"}'}
	q "$db" "INSERT INTO push.pushes (app_id, platform, token, payload)
	         SELECT $app, 'apns', '$(apns_tok "$tag")' || lpad(i::text, 4, '0'),
	                $(sql_lit "$pl")
	         FROM generate_series(1, $n) i" >/dev/null
}
