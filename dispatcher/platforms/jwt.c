/*
 * jwt.c - base64url and RS256/ES256 JWT signing with OpenSSL's EVP API.
 * See jwt.h.
 *
 * ECDSA signatures come out of OpenSSL as DER (SEQUENCE { r, s }); JOSE
 * wants the two integers as fixed 32-byte big-endian halves, so ES256
 * converts with d2i_ECDSA_SIG and BN_bn2binpad.
 */
#include "platforms/jwt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base/mem.h"

struct jwt_key {
	EVP_PKEY *pkey;
	int is_p256;    /* EC key on P-256 */
};

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *jwt_b64url_encode(const void *in, size_t len)
{
	const unsigned char *p = in;
	char *out = mem_alloc(len / 3 * 4 + 5);
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 |
			     p[i + 2];

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
		out[o++] = b64url[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

		out[o++] = b64url[v >> 18 & 63];
		out[o++] = b64url[v >> 12 & 63];
		out[o++] = b64url[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static int b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int jwt_b64url_decode(const char *in, size_t len, unsigned char **out,
		      size_t *outlen)
{
	unsigned char *buf;
	unsigned acc = 0;
	size_t i, o = 0;
	int bits = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -EINVAL;
	buf = mem_alloc(len / 4 * 3 + 3);
	for (i = 0; i < len; i++) {
		int v = b64url_val(in[i]);

		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
}

/* The first OpenSSL error as text, or `fallback`. */
static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		snprintf(err, errlen, "%s: %s", what, buf);
	} else {
		snprintf(err, errlen, "%s", what);
	}
	ERR_clear_error();
}

int jwt_key_from_pem(struct jwt_key **out, const char *pem, size_t len,
		     char *err, size_t errlen)
{
	struct jwt_key *key;
	EVP_PKEY *pkey;
	BIO *bio;

	if (pem == NULL || len == 0 || len > 1 << 20) {
		snprintf(err, errlen, "no private key");
		return -EINVAL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		ssl_err(err, errlen, "cannot read the private key");
		return -ENOMEM;
	}
	/* A NULL passphrase callback with "" : never prompt on a tty. */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (pkey == NULL) {
		ssl_err(err, errlen, "the private key is not a valid PEM key");
		return -EINVAL;
	}
	key = mem_alloc_zero(1, sizeof *key);
	key->pkey = pkey;
	if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64];
		size_t glen = 0;

		if (EVP_PKEY_get_utf8_string_param(pkey, "group", group,
						   sizeof group, &glen) &&
		    (strcmp(group, "prime256v1") == 0 ||
		     strcmp(group, "P-256") == 0))
			key->is_p256 = 1;
	} else if (!EVP_PKEY_is_a(pkey, "RSA")) {
		jwt_key_free(key);
		snprintf(err, errlen, "the private key is neither RSA nor EC");
		return -EINVAL;
	}
	*out = key;
	return 0;
}

void jwt_key_free(struct jwt_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_cleanse(key, sizeof *key);
	free(key);
}

/* DER ECDSA-Sig-Value -> 64 bytes r||s.  Returns 0 or -EINVAL. */
static int ecdsa_der_to_jose(const unsigned char *der, size_t derlen,
			     unsigned char raw[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	const BIGNUM *r, *s;
	int rc = -EINVAL;

	if (sig == NULL)
		return -EINVAL;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, raw, 32) == 32 &&
	    BN_bn2binpad(s, raw + 32, 32) == 32)
		rc = 0;
	ECDSA_SIG_free(sig);
	return rc;
}

int jwt_sign(const struct jwt_key *key, enum jwt_alg alg,
	     const char *header_json, const char *claims_json, char **out,
	     char *err, size_t errlen)
{
	char *h64, *c64, *input, *s64 = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0, inlen;
	EVP_MD_CTX *md;
	int rc = -EINVAL;

	if (alg == JWT_ALG_RS256 && !EVP_PKEY_is_a(key->pkey, "RSA")) {
		snprintf(err, errlen, "RS256 needs an RSA key");
		return -EINVAL;
	}
	if (alg == JWT_ALG_ES256 && !key->is_p256) {
		snprintf(err, errlen, "ES256 needs an EC P-256 key");
		return -EINVAL;
	}
	if (alg != JWT_ALG_RS256 && alg != JWT_ALG_ES256) {
		snprintf(err, errlen, "unknown JWT algorithm");
		return -EINVAL;
	}

	h64 = jwt_b64url_encode(header_json, strlen(header_json));
	c64 = jwt_b64url_encode(claims_json, strlen(claims_json));
	inlen = strlen(h64) + 1 + strlen(c64);
	input = mem_alloc(inlen + 1);
	snprintf(input, inlen + 1, "%s.%s", h64, c64);
	free(h64);
	free(c64);

	md = EVP_MD_CTX_new();
	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input,
			   inlen) != 1) {
		ssl_err(err, errlen, "cannot sign the JWT");
		goto out;
	}
	sig = mem_alloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, (unsigned char *)input,
			   inlen) != 1) {
		ssl_err(err, errlen, "cannot sign the JWT");
		goto out;
	}
	if (alg == JWT_ALG_ES256) {
		unsigned char raw[64];

		if (ecdsa_der_to_jose(sig, siglen, raw) < 0) {
			snprintf(err, errlen, "bad ECDSA signature");
			goto out;
		}
		s64 = jwt_b64url_encode(raw, sizeof raw);
	} else {
		s64 = jwt_b64url_encode(sig, siglen);
	}
	*out = mem_alloc(inlen + 1 + strlen(s64) + 1);
	sprintf(*out, "%s.%s", input, s64);
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(sig);
	free(s64);
	free(input);
	return rc;
}
