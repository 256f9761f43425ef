/*
 * auth_apns.c - the shared APNs provider-token cache.  See auth_apns.h.
 *
 * State of one cache: the current token (`cur`, minted at `cur_at_us`,
 * possibly marked rejected by APNs, and whether APNs has accepted it),
 * the one before it (`prev`, kept so a TooManyProviderTokenUpdates can
 * fall back to a token APNs already accepted), the time of the last mint
 * (the 20-minute floor counts from it) and `no_mint_until_us` (set by
 * TooManyProviderTokenUpdates).  Every decision is taken in
 * auth_apns_token(), from those fields and `now`.
 */
#include "platforms/apns/auth_apns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/log.h"
#include "base/mem.h"
#include "platforms/jwt.h"
#include "platforms/secret.h"

#define USEC 1000000LL
/* A fallback token must have this much life left (of Apple's hour). */
#define PREV_MARGIN_US (300 * USEC)

struct auth_apns {
	char team[32];
	char kid[32];
	unsigned char key_hash[32];     /* SHA-256 of the key's PEM text */
	struct jwt_key *key;
	int refs;
	int64_t refresh_us;
	int64_t floor_us;

	char *cur;                      /* NULL: none minted yet */
	int64_t cur_at_us;
	bool cur_rejected;
	bool cur_accepted;              /* APNs answered 200 to it */
	char *prev;
	int64_t prev_at_us;
	bool prev_accepted;
	int64_t last_mint_us;           /* 0: never */
	int64_t no_mint_until_us;

	struct auth_apns_stats stats;
	struct auth_apns *next;
};

/* Every live cache (process-wide; loop thread only). */
static struct auth_apns *registry;

static int64_t env_seconds(const char *name, int64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	long long n;

	if (v == NULL || *v == '\0')
		return dflt;
	n = strtoll(v, &end, 10);
	if (*end != '\0' || n < 1 || n > 86400)
		return dflt;
	return n;
}

void auth_apns_header_json(const char *key_id, char *buf, size_t len)
{
	snprintf(buf, len, "{\"alg\":\"ES256\",\"kid\":\"%s\"}", key_id);
}

void auth_apns_claims_json(const char *team_id, int64_t iat_s, char *buf,
			   size_t len)
{
	snprintf(buf, len, "{\"iss\":\"%s\",\"iat\":%lld}", team_id,
		 (long long)iat_s);
}

/* Team and key ids are 10 characters of [A-Z0-9]; nothing to escape. */
static bool id_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9')))
			return false;
	return n >= 1 && n <= 20;
}

int auth_apns_get(struct auth_apns **out, const char *team_id,
		  const char *key_id, const char *key_pem, char *err,
		  size_t errlen)
{
	unsigned char hash[32];
	unsigned int hlen = 0;
	struct auth_apns *a;
	char kerr[200];
	int rc;

	if (!id_ok(team_id) || !id_ok(key_id)) {
		snprintf(err, errlen, "team_id and key_id must be 10 "
			 "characters of A-Z and 0-9");
		return -EINVAL;
	}
	if (key_pem == NULL || key_pem[0] == '\0') {
		snprintf(err, errlen, "no signing_key");
		return -EINVAL;
	}
	if (EVP_Digest(key_pem, strlen(key_pem), hash, &hlen, EVP_sha256(),
		       NULL) != 1 || hlen != sizeof hash) {
		snprintf(err, errlen, "cannot hash the signing key");
		return -EINVAL;
	}
	for (a = registry; a != NULL; a = a->next) {
		if (strcmp(a->team, team_id) == 0 &&
		    strcmp(a->kid, key_id) == 0 &&
		    memcmp(a->key_hash, hash, sizeof hash) == 0) {
			a->refs++;
			a->stats.refs = a->refs;
			*out = a;
			return 0;
		}
	}
	a = mem_alloc_zero(1, sizeof *a);
	rc = jwt_key_from_pem(&a->key, key_pem, strlen(key_pem), kerr,
			      sizeof kerr);
	if (rc < 0) {
		snprintf(err, errlen, "signing_key: %s", kerr);
		free(a);
		return rc;
	}
	snprintf(a->team, sizeof a->team, "%s", team_id);
	snprintf(a->kid, sizeof a->kid, "%s", key_id);
	memcpy(a->key_hash, hash, sizeof hash);
	a->refresh_us = env_seconds("PGPUSH_APNS_JWT_REFRESH_S",
				    AUTH_APNS_REFRESH_S) * USEC;
	a->floor_us = env_seconds("PGPUSH_APNS_JWT_FLOOR_S",
				  AUTH_APNS_FLOOR_S) * USEC;
	if (a->refresh_us < a->floor_us)
		a->refresh_us = a->floor_us;
	a->refs = 1;
	a->stats.refs = 1;
	a->next = registry;
	registry = a;
	*out = a;
	return 0;
}

void auth_apns_put(struct auth_apns *a)
{
	struct auth_apns **pp;

	if (a == NULL || --a->refs > 0) {
		if (a != NULL)
			a->stats.refs = a->refs;
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	jwt_key_free(a->key);
	secret_free(a->cur);
	secret_free(a->prev);
	OPENSSL_cleanse(a, sizeof *a);
	free(a);
}

/* Sign a new token for `now_us`; the current one becomes `prev`. */
static int mint(struct auth_apns *a, int64_t now_us)
{
	char hdr[96], claims[96], serr[200];
	char *jwt = NULL;
	int rc;

	auth_apns_header_json(a->kid, hdr, sizeof hdr);
	auth_apns_claims_json(a->team, now_us / USEC, claims, sizeof claims);
	rc = jwt_sign(a->key, JWT_ALG_ES256, hdr, claims, &jwt, serr,
		      sizeof serr);
	if (rc < 0) {
		log_error("cannot sign an APNs provider token",
			  "team=%s key_id=%s error=%s", a->team, a->kid, serr);
		return rc;
	}
	if (a->cur != NULL && !a->cur_rejected) {
		secret_free(a->prev);
		a->prev = a->cur;
		a->prev_at_us = a->cur_at_us;
		a->prev_accepted = a->cur_accepted;
	} else {
		secret_free(a->cur);
	}
	a->cur = jwt;
	a->cur_at_us = now_us;
	a->cur_rejected = false;
	a->cur_accepted = false;
	a->last_mint_us = now_us;
	a->stats.mints++;
	log_info("apns provider token minted", "team=%s key_id=%s mints=%llu",
		 a->team, a->kid, (unsigned long long)a->stats.mints);
	return 0;
}

/* When the next mint is allowed. */
static int64_t mint_allowed_at(const struct auth_apns *a)
{
	int64_t at = a->last_mint_us != 0 ? a->last_mint_us + a->floor_us : 0;

	return at > a->no_mint_until_us ? at : a->no_mint_until_us;
}

/* The current token is one APNs should still accept at `now_us`. */
static bool cur_usable(const struct auth_apns *a, int64_t now_us)
{
	return a->cur != NULL && !a->cur_rejected &&
	       now_us - a->cur_at_us < AUTH_APNS_MAX_AGE_S * USEC;
}

const char *auth_apns_token(struct auth_apns *a, int64_t now_us,
			    int64_t *retry_at_us)
{
	bool due = a->cur == NULL || a->cur_rejected ||
		   now_us - a->cur_at_us >= a->refresh_us;

	*retry_at_us = 0;
	if (!due)
		return a->cur;
	if (now_us >= mint_allowed_at(a)) {
		if (mint(a, now_us) == 0)
			return a->cur;
		/* Signing failed: a configuration error, not a wait. */
		return cur_usable(a, now_us) ? a->cur : NULL;
	}
	if (cur_usable(a, now_us))
		return a->cur;
	*retry_at_us = mint_allowed_at(a);
	return NULL;
}

void auth_apns_rejected(struct auth_apns *a, const char *token,
			int64_t now_us)
{
	(void)now_us;
	a->stats.rejected++;
	if (token == NULL)
		return;
	if (a->cur != NULL && strcmp(a->cur, token) == 0) {
		if (!a->cur_rejected)
			log_warn("apns provider token rejected",
				 "team=%s key_id=%s age_s=%lld", a->team,
				 a->kid, (long long)((now_us - a->cur_at_us) /
						     USEC));
		a->cur_rejected = true;
	} else if (a->prev != NULL && strcmp(a->prev, token) == 0) {
		secret_free(a->prev);
		a->prev = NULL;
	}
}

void auth_apns_accepted(struct auth_apns *a, const char *token)
{
	if (token == NULL)
		return;
	if (a->cur != NULL && strcmp(a->cur, token) == 0)
		a->cur_accepted = true;
	else if (a->prev != NULL && strcmp(a->prev, token) == 0)
		a->prev_accepted = true;
}

bool auth_apns_was_accepted(const struct auth_apns *a, const char *token)
{
	if (token == NULL)
		return false;
	if (a->cur != NULL && strcmp(a->cur, token) == 0)
		return a->cur_accepted;
	if (a->prev != NULL && strcmp(a->prev, token) == 0)
		return a->prev_accepted;
	return false;
}

int64_t auth_apns_too_many(struct auth_apns *a, const char *token,
			   int64_t now_us)
{
	a->stats.too_many++;
	if (a->no_mint_until_us < now_us + a->floor_us) {
		a->no_mint_until_us = now_us + a->floor_us;
		log_warn("apns: too many provider token updates; not minting",
			 "team=%s key_id=%s for_s=%lld", a->team, a->kid,
			 (long long)(a->floor_us / USEC));
	}
	if (token != NULL && a->cur != NULL && strcmp(a->cur, token) == 0) {
		if (a->prev != NULL &&
		    now_us - a->prev_at_us < AUTH_APNS_MAX_AGE_S * USEC -
		    PREV_MARGIN_US) {
			/* APNs accepted that one; it is still good. */
			secret_free(a->cur);
			a->cur = a->prev;
			a->cur_at_us = a->prev_at_us;
			a->cur_rejected = false;
			a->cur_accepted = a->prev_accepted;
			a->prev = NULL;
		} else {
			a->cur_rejected = true;
		}
	}
	if (cur_usable(a, now_us))
		return now_us;
	return mint_allowed_at(a);
}

const char *auth_apns_team(const struct auth_apns *a)
{
	return a->team;
}

const char *auth_apns_key_id(const struct auth_apns *a)
{
	return a->kid;
}

void auth_apns_get_stats(const struct auth_apns *a,
			 struct auth_apns_stats *out)
{
	*out = a->stats;
}
