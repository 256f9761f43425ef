/*
 * fake_jwt_tool.c — fake-jwt, mints JWTs for the fakes' self-tests.
 *
 *   fake-jwt ALG KEY.pem HEADER-JSON CLAIMS-JSON
 *
 * ALG is ES256 or RS256; KEY.pem a PEM private key (an APNs .p8 is
 * PKCS#8 PEM).  The JSON texts are used verbatim as the first two
 * parts, so tests can also craft odd headers.  ES256 signatures are
 * converted from OpenSSL's DER to JOSE's 64-byte r||s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "fake.h"
#include "fake_jwt.h"

int
main(int argc, char **argv)
{
	EVP_PKEY *key;
	EVP_MD_CTX *md;
	char *h, *c, *input, *sig64;
	unsigned char sig[1024], raw[64];
	size_t siglen = sizeof sig, inlen;
	int es;

	if (argc != 5) {
		fprintf(stderr, "usage: fake-jwt ES256|RS256 KEY.pem HEADER "
		    "CLAIMS\n");
		return 2;
	}
	es = strcmp(argv[1], "ES256") == 0;
	if (!es && strcmp(argv[1], "RS256") != 0) {
		fprintf(stderr, "fake-jwt: unknown alg %s\n", argv[1]);
		return 2;
	}
	if ((key = fake_key_load_file(argv[2])) == NULL) {
		fprintf(stderr, "fake-jwt: cannot load %s\n", argv[2]);
		return 1;
	}
	h = fake_b64url_encode((unsigned char *)argv[3], strlen(argv[3]));
	c = fake_b64url_encode((unsigned char *)argv[4], strlen(argv[4]));
	inlen = strlen(h) + strlen(c) + 1;
	input = fake_xmalloc(inlen + 1);
	snprintf(input, inlen + 1, "%s.%s", h, c);
	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)input,
	    inlen) != 1) {
		fprintf(stderr, "fake-jwt: signing failed\n");
		return 1;
	}
	if (es) {
		const unsigned char *p = sig;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		const BIGNUM *r, *ss;

		if (s == NULL)
			return 1;
		ECDSA_SIG_get0(s, &r, &ss);
		BN_bn2binpad(r, raw, 32);
		BN_bn2binpad(ss, raw + 32, 32);
		ECDSA_SIG_free(s);
		sig64 = fake_b64url_encode(raw, 64);
	} else {
		sig64 = fake_b64url_encode(sig, siglen);
	}
	printf("%s.%s\n", input, sig64);
	free(sig64);
	free(input);
	free(h);
	free(c);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return 0;
}
