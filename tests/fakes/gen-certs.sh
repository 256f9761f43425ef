#!/usr/bin/env bash
# gen-certs.sh DIR — throwaway credentials for the fake providers.
#
# Writes into DIR (created if needed), with the openssl CLI only:
#   ca.pem ca.key              test CA (EC P-256, 2 days)
#   server.pem server.key      server cert for 127.0.0.1, localhost and
#                              the real provider host names (so a client
#                              may map them to 127.0.0.1 and keep its
#                              host allow-list)
#   apns-client.pem/.key       APNs certificate auth, UID=com.example.app
#   mpns-client.pem/.key       authenticated MPNS web service
#   rogue-ca.pem rogue-client.pem/.key   a client cert NOT from the CA
#   apns-key.p8                APNs token key (PKCS#8 EC P-256)
#                              key id ABC123DEFG, team TEAM123456
#   apns-wrong.p8              another EC key (wrong-signature tests)
#   fcm-sa.json fcm-sa.key     FCM service account, project pgpush-test
#   fcm-wrong.key              another RSA key
# Everything here is test material; never use it for anything else.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }

ec_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$1"; }

ec_key ca.key
ossl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=pgpush test CA" \
	-addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem

sign() { # sign NAME SUBJECT EXTFILE CA CAKEY
	ec_key "$1.key"
	ossl req -new -key "$1.key" -subj "$2" -out "$1.csr"
	ossl x509 -req -in "$1.csr" -CA "$4" -CAkey "$5" -CAcreateserial \
		-days 2 -sha256 -extfile "$3" -out "$1.pem"
	rm -f "$1.csr"
}

cat > server.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=@alt
[alt]
IP.1=127.0.0.1
DNS.1=localhost
DNS.2=api.push.apple.com
DNS.3=api.sandbox.push.apple.com
DNS.4=api.development.push.apple.com
DNS.5=fcm.googleapis.com
DNS.6=oauth2.googleapis.com
DNS.7=login.live.com
DNS.8=login.microsoftonline.com
DNS.9=*.notify.windows.com
DNS.10=*.notify.live.net
EXT
cat > client.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EXT
sign server "/CN=localhost" server.ext ca.pem ca.key
sign apns-client \
	"/UID=com.example.app/CN=Apple Push Services: com.example.app" \
	client.ext ca.pem ca.key
sign mpns-client "/CN=pgpush MPNS web service" client.ext ca.pem ca.key

ec_key rogue-ca.key
ossl req -x509 -new -key rogue-ca.key -sha256 -days 2 -subj "/CN=rogue CA" \
	-addext basicConstraints=critical,CA:TRUE -out rogue-ca.pem
sign rogue-client "/UID=com.example.app/CN=rogue" client.ext rogue-ca.pem \
	rogue-ca.key
rm -f server.ext client.ext ./*.srl

ec_key apns-key.p8
ec_key apns-wrong.p8

ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm-sa.key
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm-wrong.key
pem=$(awk '{printf "%s\\n", $0}' fcm-sa.key)
cat > fcm-sa.json <<JSON
{
  "type": "service_account",
  "project_id": "pgpush-test",
  "private_key_id": "0123456789abcdef0123456789abcdef01234567",
  "private_key": "$pem",
  "client_email": "fake-fcm@pgpush-test.iam.gserviceaccount.com",
  "client_id": "100000000000000000001",
  "auth_uri": "https://accounts.google.com/o/oauth2/auth",
  "token_uri": "https://oauth2.googleapis.com/token"
}
JSON
chmod 600 ./*.key ./*.p8
