/*
 * secret.h - secrets held as C strings (tokens, keys, Authorization
 * headers, passwords) are wiped before their memory is freed.
 *
 * A module of its own, with nothing but libc below it, so an auth cache
 * links without the sender registry.
 */
#ifndef PGPUSH_SECRET_H
#define PGPUSH_SECRET_H

/* Wipe the C string `s` and free it; NULL is a no-op. */
void secret_free(char *s);

#endif
