/*
 * auth_apns.h - APNs provider tokens: ES256 JWTs from a .p8 key, one per
 * (team, key), shared by every pool that uses that key.
 *
 * A token is {"alg":"ES256","kid":<key id>} . {"iss":<team id>,
 * "iat":<seconds>}, signed with jwt.c.  Apple rejects a token older than
 * an hour (ExpiredProviderToken) and one minted less than 20 minutes
 * after the previous one (TooManyProviderTokenUpdates), and pins a
 * connection to one team.  So the cache:
 *
 *   - mints on first use and again once the token is `refresh_s` old
 *     (default 3000 s = 50 min, inside Apple's 20..60 minute window);
 *   - never mints twice within `floor_s` (default 1200 s = 20 min),
 *     whatever the provider says;
 *   - on ExpiredProviderToken / InvalidProviderToken for the current
 *     token (auth_apns_rejected) mints a new one if the floor allows,
 *     else keeps the current one and tells the caller when to retry;
 *   - remembers whether APNs has ever accepted a token (a 200 for a
 *     request that carried it: auth_apns_accepted), so a sender can tell
 *     a token refused on first use (the key, team or key id is wrong)
 *     from one refused after it worked;
 *   - on TooManyProviderTokenUpdates (auth_apns_too_many) stops minting
 *     for a floor, goes back to the previous token if it is still young
 *     enough to be accepted, and tells the caller when to retry.
 *
 * Minting is synchronous (one ECDSA signature, cheap next to a request),
 * so there is no waiting.  Sharing: auth_apns_get() finds the cache of the
 * same (team id, key id, key text) or makes one; auth_apns_put() drops a
 * reference, the last one frees it.  The registry is process-wide and
 * used from the loop thread only.
 *
 * Tests may shorten the timings with the environment variables
 * PGPUSH_APNS_JWT_REFRESH_S and PGPUSH_APNS_JWT_FLOOR_S (read when a
 * cache is made; documented as test-only in the README).  The key and
 * the tokens are wiped when freed and never logged.
 */
#ifndef PGPUSH_AUTH_APNS_H
#define PGPUSH_AUTH_APNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_apns;

#define AUTH_APNS_REFRESH_S 3000    /* mint a new token after 50 min */
#define AUTH_APNS_FLOOR_S 1200      /* never mint faster than 20 min */
#define AUTH_APNS_MAX_AGE_S 3600    /* Apple's limit */

struct auth_apns_stats {
	uint64_t mints;          /* tokens signed */
	uint64_t rejected;       /* Expired/InvalidProviderToken reports */
	uint64_t too_many;       /* TooManyProviderTokenUpdates reports */
	int refs;                /* pools sharing this cache */
};

/*
 * The shared cache for (team_id, key_id, key_pem), made if needed (the
 * key is parsed then, and must be an EC P-256 PEM key).  Returns 0 and
 * *out (one reference), or -EINVAL with a reason in `err` (never the
 * key).
 */
int auth_apns_get(struct auth_apns **out, const char *team_id,
		  const char *key_id, const char *key_pem, char *err,
		  size_t errlen);

/* Drop a reference; the last one frees and wipes.  NULL is a no-op. */
void auth_apns_put(struct auth_apns *a);

/*
 * The token to send at `now_us`, minting a new one when there is none,
 * when it is due for refresh, or when it was rejected and the floor
 * allows.  Returns NULL when no usable token can be had now: *retry_at_us
 * says when to try again (0: signing failed, a configuration error).
 * The string is valid until the next call into this module; copy it.
 */
const char *auth_apns_token(struct auth_apns *a, int64_t now_us,
			    int64_t *retry_at_us);

/*
 * APNs answered ExpiredProviderToken or InvalidProviderToken for `token`.
 * If it is the current one it is marked rejected, so the next
 * auth_apns_token() mints a new one when the floor allows (and returns
 * NULL until then); an older token is simply forgotten.  The caller
 * resends only if auth_apns_token() then gives a different token.
 */
void auth_apns_rejected(struct auth_apns *a, const char *token,
			int64_t now_us);

/*
 * APNs answered 200 to a request that carried `token`: it is known good.
 * Only the current and the previous token are remembered.
 */
void auth_apns_accepted(struct auth_apns *a, const char *token);

/* Has APNs accepted `token` (auth_apns_accepted) since it was minted? */
bool auth_apns_was_accepted(const struct auth_apns *a, const char *token);

/*
 * APNs answered TooManyProviderTokenUpdates for `token`: no minting for a
 * floor from now; the previous token is restored if it is still young.
 * Returns when the push may be tried again.
 */
int64_t auth_apns_too_many(struct auth_apns *a, const char *token,
			   int64_t now_us);

/* The team and key id (for connection groups and logs). */
const char *auth_apns_team(const struct auth_apns *a);
const char *auth_apns_key_id(const struct auth_apns *a);

void auth_apns_get_stats(const struct auth_apns *a,
			 struct auth_apns_stats *out);

/*
 * The JOSE header and claims JSON of a token (pure; for tests):
 * {"alg":"ES256","kid":"<key_id>"} and {"iss":"<team_id>","iat":<iat>}.
 */
void auth_apns_header_json(const char *key_id, char *buf, size_t len);
void auth_apns_claims_json(const char *team_id, int64_t iat_s, char *buf,
			   size_t len);

#endif
