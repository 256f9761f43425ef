/*
 * fake_fcm.h — internals shared by the FCM fake's two files:
 * fake_fcm_auth.c (service accounts, token endpoint, access tokens)
 * and fake_fcm.c (messages:send).
 */
#ifndef FAKE_FCM_H
#define FAKE_FCM_H

#include "fake.h"

/* Answers POST /token: the JWT-bearer grant (fake_fcm_auth.c). */
void fake_fcm__token(struct fake_req *req, struct fake_resp *r);

/*
 * Project id of the service account a live access token was issued
 * to; NULL if the token is unknown, or expired (then *expired = 1).
 */
const char *fake_fcm__project(const char *access_token, int *expired);

#endif
