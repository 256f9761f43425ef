/*
 * sender.c - the registry of built-in push platforms (sender_for()).
 * The only place outside tests that includes a platform's header.
 */
#include "sender.h"

#include "sender_fcm.h"

const struct sender_ops *sender_for(enum push_platform platform)
{
	switch (platform) {
	case PUSH_PLATFORM_FCM:
		return &sender_fcm_ops;
	default:
		return NULL;
	}
}
