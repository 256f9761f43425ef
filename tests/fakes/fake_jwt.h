/*
 * fake_jwt.h — parsing and verifying compact JWS tokens (ES256, RS256)
 * for the fakes' APNs provider tokens and FCM OAuth assertions.
 */
#ifndef FAKE_JWT_H
#define FAKE_JWT_H

#include <stddef.h>
#include <json-c/json.h>
#include <openssl/evp.h>

struct fake_jwt {
	json_object *header;	/* owned */
	json_object *claims;	/* owned */
	char *input;		/* "header.payload", the signed bytes */
	unsigned char *sig;
	size_t siglen;
};

/*
 * Splits and decodes token into j (zeroed by the call).  Returns 0, or
 * -1 when it is not three base64url parts with JSON objects in the
 * first two.  Call fake_jwt_free() either way.
 */
int fake_jwt_parse(const char *token, struct fake_jwt *j);

/*
 * Checks j's signature with key for alg "ES256" (64-byte JOSE r||s,
 * converted to DER for OpenSSL) or "RS256".  Returns 1 if valid.
 */
int fake_jwt_verify(const struct fake_jwt *j, const char *alg,
    EVP_PKEY *key);

/* Frees what j owns; j may be zeroed or half-filled. */
void fake_jwt_free(struct fake_jwt *j);

/* String claim/header field or NULL; integer claim into *v (0/-1). */
const char *fake_jwt_str(json_object *o, const char *key);
int fake_jwt_int(json_object *o, const char *key, int64_t *v);

/* base64url without padding: decode (-1 on bad input) and encode. */
int fake_b64url_decode(const char *in, size_t len, unsigned char **out,
    size_t *outlen);
char *fake_b64url_encode(const unsigned char *in, size_t len);

/* Loads a PEM private or public key from a file or a string. */
EVP_PKEY *fake_key_load_file(const char *path);
EVP_PKEY *fake_key_load_pem(const char *pem);

#endif
