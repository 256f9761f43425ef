/*
 * jwt.h - base64url and signed JSON Web Tokens (RS256 for Google's OAuth2
 * assertion, ES256 for APNs provider tokens), OpenSSL only.
 *
 * A struct jwt_key holds one private key parsed from PEM (PKCS#8,
 * traditional RSA or EC).  It is owned by whoever made it and freed with
 * jwt_key_free(), which wipes what pgpush itself held of the key (OpenSSL
 * clears the private numbers of the keys it frees).  No function here
 * logs, and no error text ever contains key material.
 */
#ifndef PGPUSH_JWT_H
#define PGPUSH_JWT_H

#include <stddef.h>

enum jwt_alg {
	JWT_ALG_RS256,  /* RSASSA-PKCS1-v1_5 with SHA-256 */
	JWT_ALG_ES256   /* ECDSA P-256 with SHA-256, JOSE r||s signature */
};

struct jwt_key;

/*
 * base64url (RFC 4648 section 5) of `len` bytes, without padding, as a
 * malloc'd NUL-terminated string (free with free()).
 */
char *jwt_b64url_encode(const void *in, size_t len);

/*
 * Decode base64url (padding optional; '+' and '/' refused).  On success
 * *out is a malloc'd buffer of *outlen bytes (plus a NUL, not counted)
 * and 0 is returned; -EINVAL for invalid input.
 */
int jwt_b64url_decode(const char *in, size_t len, unsigned char **out,
		      size_t *outlen);

/*
 * Parse a PEM private key of `len` bytes (need not be NUL-terminated).
 * Returns 0 and *out (owned by the caller), or -EINVAL with a reason in
 * `err`.
 */
int jwt_key_from_pem(struct jwt_key **out, const char *pem, size_t len,
		     char *err, size_t errlen);

/*
 * Free a key and wipe it.  NULL is a no-op.
 */
void jwt_key_free(struct jwt_key *key);

/*
 * Sign base64url(header_json) "." base64url(claims_json) with `key`; the
 * JSON texts are used verbatim (the caller builds them).  `alg` must fit
 * the key (RS256: RSA; ES256: EC P-256).  ES256 signatures are the JOSE
 * form: the 64 raw bytes r||s, not DER.  On success *out is the whole
 * compact JWT, malloc'd (free with free()), and 0 is returned; otherwise
 * a negative code with a reason in `err`.
 */
int jwt_sign(const struct jwt_key *key, enum jwt_alg alg,
	     const char *header_json, const char *claims_json, char **out,
	     char *err, size_t errlen);

#endif
