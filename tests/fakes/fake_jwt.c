/*
 * fake_jwt.c — compact JWS parsing and ES256/RS256 verification.
 *
 * Pure functions over strings and OpenSSL keys; no server state.  The
 * base64url decoder is strict (no padding, no foreign characters), as
 * the providers are.  Shared by the server and the fake-jwt tool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "fake.h"
#include "fake_jwt.h"

static int
b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

int
fake_b64url_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	unsigned char *o;
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	o = fake_xmalloc(len * 3 / 4 + 1);
	for (i = 0; i < len; i++) {
		int v = b64val((unsigned char)in[i]);

		if (v < 0) {
			free(o);
			return -1;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	o[n] = '\0';
	*out = o;
	*outlen = n;
	return 0;
}

char *
fake_b64url_encode(const unsigned char *in, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *o = fake_xmalloc(len * 4 / 3 + 4), *p = o;
	uint32_t acc = 0;
	size_t i;
	int bits = 0;

	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			*p++ = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		*p++ = tab[(acc << (6 - bits)) & 63];
	*p = '\0';
	return o;
}

static json_object *
decode_obj(const char *s, size_t len)
{
	unsigned char *raw;
	size_t n;
	json_object *o;
	json_tokener *tok;

	if (fake_b64url_decode(s, len, &raw, &n) != 0)
		return NULL;
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, (char *)raw, (int)n);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success
	    || (size_t)json_tokener_get_parse_end(tok) != n ||
	    !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	free(raw);
	return o;
}

int
fake_jwt_parse(const char *token, struct fake_jwt *j)
{
	const char *d1, *d2;

	memset(j, 0, sizeof *j);
	d1 = strchr(token, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
		return -1;
	j->header = decode_obj(token, (size_t)(d1 - token));
	j->claims = decode_obj(d1 + 1, (size_t)(d2 - d1 - 1));
	if (j->header == NULL || j->claims == NULL)
		return -1;
	if (fake_b64url_decode(d2 + 1, strlen(d2 + 1), &j->sig,
	    &j->siglen) != 0)
		return -1;
	j->input = fake_xstrndup(token, (size_t)(d2 - token));
	return 0;
}

void
fake_jwt_free(struct fake_jwt *j)
{
	json_object_put(j->header);
	json_object_put(j->claims);
	free(j->input);
	free(j->sig);
	memset(j, 0, sizeof *j);
}

int
fake_jwt_verify(const struct fake_jwt *j, const char *alg, EVP_PKEY *key)
{
	unsigned char *der = NULL, *sig = j->sig;
	size_t siglen = j->siglen;
	EVP_MD_CTX *md;
	int ok = 0, len;

	if (key == NULL || j->input == NULL)
		return 0;
	if (strcmp(alg, "ES256") == 0) {
		ECDSA_SIG *es;
		BIGNUM *r, *s;

		if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
		    j->siglen != 64)
			return 0;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(j->sig, 32, NULL);
		s = BN_bin2bn(j->sig + 32, 32, NULL);
		if (es == NULL || r == NULL || s == NULL)
			abort();
		ECDSA_SIG_set0(es, r, s);
		len = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (len <= 0)
			return 0;
		sig = der;
		siglen = (size_t)len;
	} else if (strcmp(alg, "RS256") != 0 ||
	    EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		return 0;
	}
	md = EVP_MD_CTX_new();
	if (md != NULL &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, (unsigned char *)j->input,
	    strlen(j->input)) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ERR_clear_error();	/* a failed verify must not poison SSL_* */
	return ok;
}

const char *
fake_jwt_str(json_object *o, const char *key)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int
fake_jwt_int(json_object *o, const char *key, int64_t *out)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return 0;
}

EVP_PKEY *
fake_key_load_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k;

	if (b == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (k == NULL) {
		(void)BIO_reset(b);
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	return k;
}

EVP_PKEY *
fake_key_load_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = fake_xmalloc((size_t)(n > 0 ? n : 0) + 1);
	n = (long)fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
	buf[n] = '\0';
	fclose(f);
	k = fake_key_load_pem(buf);
	free(buf);
	return k;
}
