/*
 * migrate.h - forward-only schema migrations (`pgpushd migrate`).
 *
 * A migrations directory holds files named NNNN_name.sql: a numeric
 * prefix of at least 4 digits, '_', then [a-z0-9_]+, then ".sql".  They
 * are applied in the order of that number, each once, each in its own
 * transaction, and recorded in push.schema_migrations with the SHA-256 of
 * the file's bytes.  A file, once applied, must never change: if one did
 * (or vanished), migrate refuses to run and applies nothing.
 *
 * The pure part (names, listing, ordering, checksums, checking what was
 * applied against the directory) needs no database and is unit-tested;
 * migrate_apply_pending() is the database part.
 */
#ifndef PGPUSH_MIGRATE_H
#define PGPUSH_MIGRATE_H

#include <stddef.h>

/* A SHA-256 in lower-case hex, with its NUL. */
#define MIGRATE_HASH_HEX 65

/* The biggest migration file read, in bytes. */
#define MIGRATE_FILE_MAX (64u << 20)

/* The advisory lock key that serialises concurrent migrates. */
#define MIGRATE_LOCK_KEY "8099566104598806529"

/* One migration file; owned by its struct migrate_list. */
struct migrate_file {
	char *name;		/* "0001_foundation.sql" */
	char *version;		/* "0001_foundation", the recorded name */
	unsigned long long number;	/* 1 */
	char *sql;		/* contents, NUL-terminated; after read */
	size_t len;		/* bytes in sql */
	char checksum[MIGRATE_HASH_HEX];	/* of sql; after read */
	int applied;		/* set by migrate_check_applied() */
};

/* The migration files of a directory, sorted by number. */
struct migrate_list {
	struct migrate_file *files;
	size_t count;
};

/* A row of push.schema_migrations. */
struct migrate_applied {
	const char *version;
	const char *checksum;
};

/*
 * Whether `name` is a migration file name (see the header comment).
 * Returns 0 and stores its number in *number (if not NULL), or -EINVAL
 * (-ERANGE when the number does not fit in 64 bits).
 */
int migrate_check_name(const char *name, unsigned long long *number);

/*
 * List the migration files of `dir` into *out, sorted by number, without
 * reading them.  Names that do not end in ".sql" and dot files are
 * ignored; a ".sql" file with a bad name, or two files with the same
 * number (0001_a.sql and 0001_b.sql, or 0010_a.sql and 00010_b.sql), is
 * an error.  Returns 0, or a negative errno with a message in `err`; *out
 * is empty on error.  Free with migrate_free_list().
 */
int migrate_list_dir(const char *dir, struct migrate_list *out, char *err,
		     size_t errlen);

/*
 * Free what `list` holds and empty it.  An empty list is a no-op.
 */
void migrate_free_list(struct migrate_list *list);

/*
 * The SHA-256 of `len` bytes at `data` as lower-case hex into `hex`.
 * Returns 0, or -EIO if OpenSSL failed.
 */
int migrate_hash_bytes(const void *data, size_t len,
		       char hex[MIGRATE_HASH_HEX]);

/*
 * Read `file` from `dir` into file->sql / file->len (replacing what was
 * there) and set file->checksum.  Files over MIGRATE_FILE_MAX or holding
 * a NUL byte are refused.  Returns 0, or a negative errno with a message
 * in `err`.
 */
int migrate_read_file(const char *dir, struct migrate_file *file, char *err,
		      size_t errlen);

/*
 * Check the `napplied` recorded migrations against `list` (read, so with
 * checksums) and mark the applied files.  Every problem is logged at
 * error level: a recorded version with no file, a file whose checksum
 * differs from the recorded one (both shown), a pending file numbered
 * below the newest applied one.  Returns 0 when it is safe to apply the
 * unmarked files in order, else -EINVAL with a summary in `err`.
 */
int migrate_check_applied(struct migrate_list *list,
			  const struct migrate_applied *applied,
			  size_t napplied, char *err, size_t errlen);

/* Where `make install` puts the migrations (PREFIX from the Makefile). */
#ifndef PGPUSH_MIGRATIONS_INSTALLED
#define PGPUSH_MIGRATIONS_INSTALLED "/usr/local/share/pgpush/migrations"
#endif

/*
 * The migrations directory `pgpushd migrate` uses without
 * --migrations-dir, for the program at `exe` (e.g. /proc/self/exe
 * resolved): the first that is a directory of
 *   1. <exe's dir>/../share/pgpush/migrations  (installed, also under a
 *      DESTDIR or after moving the whole tree),
 *   2. <exe's dir>/../migrations               (build/pgpushd in a source
 *      tree),
 *   3. PGPUSH_MIGRATIONS_INSTALLED             (the compile-time path).
 * Writes it to `out`.  Returns 0, or -ENOENT with the places tried in
 * `err`.
 */
int migrate_find_dir(const char *exe, char *out, size_t outlen, char *err,
		     size_t errlen);

/*
 * `pgpushd migrate`: read every migration of `dir`, connect with
 * `conninfo` (see db_open_conn), take the migration advisory lock, check
 * what is applied (migrate_check_applied), then apply each pending file in
 * its own transaction and record it.  Logs one line per applied migration
 * with its duration, or "nothing to do (N applied)".  Returns 0, or a
 * negative errno with a message in `err`; on an SQL error that migration
 * is rolled back and the message names the file and the server's error.
 */
int migrate_apply_pending(const char *conninfo, const char *dir, char *err,
			  size_t errlen);

#endif
