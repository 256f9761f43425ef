/*
 * sender.c - the registry of built-in push platforms (sender_for()).
 * The only place outside tests that includes a platform's header.
 */
#include "sender.h"

#include "sender_apns.h"
#include "sender_fcm.h"
#include "sender_mpns.h"
#include "sender_wns.h"

const struct sender_ops *sender_for(enum push_platform platform)
{
	switch (platform) {
	case PUSH_PLATFORM_APNS:
		return &sender_apns_ops;
	case PUSH_PLATFORM_FCM:
		return &sender_fcm_ops;
	case PUSH_PLATFORM_WNS:
		return &sender_wns_ops;
	case PUSH_PLATFORM_MPNS:
		return &sender_mpns_ops;
	default:
		return NULL;
	}
}
