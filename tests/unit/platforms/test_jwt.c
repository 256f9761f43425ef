/*
 * test_jwt.c - unit tests for jwt.c: base64url both ways, RS256 and ES256
 * JWTs whose header and claims decode back and whose signatures verify
 * with OpenSSL's own verify path, and refused keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "platforms/jwt.h"
#include "tap.h"

static void test_b64url(void)
{
	static const struct { const char *in; size_t len; const char *out; }
	v[] = {
		{ "", 0, "" }, { "f", 1, "Zg" }, { "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" }, { "foob", 4, "Zm9vYg" },
		{ "\xfb\xff", 2, "-_8" }, { "\xff\xfe\xfd", 3, "__79" },
	};
	unsigned char *dec;
	size_t i, n;

	for (i = 0; i < sizeof v / sizeof *v; i++) {
		char *e = jwt_b64url_encode(v[i].in, v[i].len);

		is_str(e, v[i].out, "encode %zu", i);
		if (is_int(jwt_b64url_decode(e, strlen(e), &dec, &n), 0,
			   "decode %zu", i)) {
			ok(n == v[i].len && memcmp(dec, v[i].in, n) == 0,
			   "round trip %zu", i);
			free(dec);
		}
		free(e);
	}
	is_int(jwt_b64url_decode("Zm9v+", 5, &dec, &n), -EINVAL,
	       "'+' refused");
	is_int(jwt_b64url_decode("Z", 1, &dec, &n), -EINVAL,
	       "impossible length refused");
	if (is_int(jwt_b64url_decode("Zm8=", 4, &dec, &n), 0,
		   "padding accepted")) {
		is_int(n, 2, "padding: length");
		free(dec);
	}
}

/* A fresh key as PEM (PKCS#8); free the result. */
static char *make_pem(EVP_PKEY **pkey, int rsa)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *pem;
	long len;

	*pkey = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)
		    : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	PEM_write_bio_PrivateKey(b, *pkey, NULL, NULL, 0, NULL, NULL);
	len = BIO_get_mem_data(b, &data);
	pem = malloc((size_t)len + 1);
	memcpy(pem, data, (size_t)len);
	pem[len] = '\0';
	BIO_free(b);
	return pem;
}

static int verify(EVP_PKEY *pkey, const char *input, size_t inlen,
		  const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc;

	rc = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input,
			      inlen) == 1;
	EVP_MD_CTX_free(md);
	return rc;
}

/* Split, decode and verify one JWT. */
static void check_jwt(const char *jwt, EVP_PKEY *pkey, int es256,
		      const char *hdr, const char *claims)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : 0;
	unsigned char *h = NULL, *c = NULL, *s = NULL;
	size_t hl, cl, sl;
	const char *alg = es256 ? "ES256" : "RS256";

	if (!ok(d1 != NULL && d2 != NULL && strchr(d2 + 1, '.') == NULL,
		"%s: three parts", alg))
		return;
	ok(jwt_b64url_decode(jwt, (size_t)(d1 - jwt), &h, &hl) == 0 &&
	   jwt_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &c, &cl) == 0 &&
	   jwt_b64url_decode(d2 + 1, strlen(d2 + 1), &s, &sl) == 0,
	   "%s: parts are base64url", alg);
	is_str((char *)h, hdr, "%s: header verbatim", alg);
	is_str((char *)c, claims, "%s: claims verbatim", alg);
	if (es256) {
		ECDSA_SIG *sig = ECDSA_SIG_new();
		unsigned char *der = NULL;
		int dl;

		is_int(sl, 64, "ES256: signature is raw r||s");
		ECDSA_SIG_set0(sig, BN_bin2bn(s, 32, NULL),
			       BN_bin2bn(s + 32, 32, NULL));
		dl = i2d_ECDSA_SIG(sig, &der);
		ok(verify(pkey, jwt, (size_t)(d2 - jwt), der, (size_t)dl),
		   "ES256: signature verifies");
		OPENSSL_free(der);
		ECDSA_SIG_free(sig);
	} else {
		is_int(sl, 128, "RS256: signature is the modulus size");
		ok(verify(pkey, jwt, (size_t)(d2 - jwt), s, sl),
		   "RS256: signature verifies");
		s[0] ^= 1;
		ok(!verify(pkey, jwt, (size_t)(d2 - jwt), s, sl),
		   "RS256: a flipped bit does not");
	}
	free(h);
	free(c);
	free(s);
}

static void test_sign(void)
{
	const char *rh = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
	const char *rc = "{\"iss\":\"sa@x.iam.gserviceaccount.com\","
			 "\"scope\":\"https://www.googleapis.com/auth/"
			 "firebase.messaging\",\"aud\":\"https://oauth2."
			 "googleapis.com/token\",\"iat\":1,\"exp\":3601}";
	const char *eh = "{\"alg\":\"ES256\",\"kid\":\"ABC123DEFG\"}";
	const char *ec = "{\"iss\":\"TEAM123456\",\"iat\":1700000000}";
	EVP_PKEY *rsa, *ecp;
	char *rpem = make_pem(&rsa, 1), *epem = make_pem(&ecp, 0);
	struct jwt_key *rk = NULL, *ek = NULL;
	char err[256], *jwt = NULL;

	is_int(jwt_key_from_pem(&rk, rpem, strlen(rpem), err, sizeof err), 0,
	       "RSA PEM parsed");
	is_int(jwt_key_from_pem(&ek, epem, strlen(epem), err, sizeof err), 0,
	       "EC PEM parsed");
	if (is_int(jwt_sign(rk, JWT_ALG_RS256, rh, rc, &jwt, err, sizeof err),
		   0, "RS256 signed")) {
		check_jwt(jwt, rsa, 0, rh, rc);
		free(jwt);
	}
	jwt = NULL;
	if (is_int(jwt_sign(ek, JWT_ALG_ES256, eh, ec, &jwt, err, sizeof err),
		   0, "ES256 signed")) {
		check_jwt(jwt, ecp, 1, eh, ec);
		free(jwt);
	}
	jwt = NULL;
	is_int(jwt_sign(rk, JWT_ALG_ES256, eh, ec, &jwt, err, sizeof err),
	       -EINVAL, "ES256 with an RSA key refused");
	like_str(err, "ES256 needs", "with a reason");
	is_int(jwt_sign(ek, JWT_ALG_RS256, rh, rc, &jwt, err, sizeof err),
	       -EINVAL, "RS256 with an EC key refused");
	ok(jwt == NULL, "and nothing returned");

	jwt_key_free(rk);
	rk = NULL;
	is_int(jwt_key_from_pem(&rk, rpem, strlen(rpem), err, sizeof err), 0,
	       "parse again after a free");
	jwt_key_free(rk);
	jwt_key_free(ek);
	jwt_key_free(NULL);
	rk = NULL;
	is_int(jwt_key_from_pem(&rk, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
				"-----END PRIVATE KEY-----\n", 58, err,
				sizeof err), -EINVAL, "garbage PEM refused");
	like_str(err, "not a valid PEM key", "with a reason");
	is_int(jwt_key_from_pem(&rk, "", 0, err, sizeof err), -EINVAL,
	       "empty PEM refused");
	ok(rk == NULL, "no key made");
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ecp);
	free(rpem);
	free(epem);
}

int main(void)
{
	test_b64url();
	test_sign();
	return done_testing();
}
