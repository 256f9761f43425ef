/*
 * migrate.c - forward-only schema migrations (see migrate.h).
 *
 * migrate_apply_pending() runs in this order, and stops at the first
 * failure:
 *
 *   1. list the directory and read every file (checksums of the very bytes
 *      that will be sent, so a file edited mid-run cannot slip through);
 *   2. connect; take a session advisory lock on MIGRATE_LOCK_KEY, so a
 *      second migrate waits for the first and then sees its work;
 *   3. read push.schema_migrations, if to_regclass() finds it (migration
 *      0001 creates it: this tool runs no DDL of its own);
 *   4. check the recorded rows against the files and refuse, applying
 *      nothing, on any mismatch;
 *   5. apply each pending file: BEGIN; the file (simple query protocol,
 *      several statements); INSERT the version and checksum; COMMIT.  On
 *      an error, ROLLBACK and report the file and the server's message.
 */
#include "db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/log.h"
#include "base/mem.h"
#include "db/db.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int migrate_check_name(const char *name, unsigned long long *number)
{
	unsigned long long n = 0;
	const char *p = name, *rest;
	unsigned d;

	for (; *p >= '0' && *p <= '9'; p++) {
		d = (unsigned)(*p - '0');
		if (n > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		n = n * 10 + d;
	}
	if (p - name < 4 || *p != '_')
		return -EINVAL;
	rest = ++p;
	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
	       *p == '_')
		p++;
	if (p == rest || strcmp(p, ".sql") != 0)
		return -EINVAL;
	if (number)
		*number = n;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int by_number(const void *a, const void *b)
{
	const struct migrate_file *x = a, *y = b;

	if (x->number != y->number)
		return x->number < y->number ? -1 : 1;
	return strcmp(x->name, y->name);
}

int migrate_list_dir(const char *dir, struct migrate_list *out, char *err,
		     size_t errlen)
{
	struct migrate_list list = { NULL, 0 };
	size_t cap = 0, i;
	struct dirent *de;
	struct stat st;
	char path[PATH_MAX];
	DIR *d;
	int rc = 0;

	out->files = NULL;
	out->count = 0;
	d = opendir(dir);
	if (d == NULL)
		return fail(err, errlen, -errno,
			    "cannot open migrations directory '%s': %s", dir,
			    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct migrate_file *f;
		unsigned long long number;

		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".sql"))
			continue;
		if (migrate_check_name(de->d_name, &number) < 0) {
			rc = fail(err, errlen, -EINVAL,
				  "%s/%s: not a migration file name (want "
				  "NNNN_name.sql: 4 or more digits, '_', then "
				  "a-z, 0-9 and '_')", dir, de->d_name);
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			rc = fail(err, errlen, -EINVAL,
				  "%s: not a regular file", path);
			break;
		}
		if (list.count == cap) {
			cap = cap ? cap * 2 : 16;
			list.files = mem_realloc(list.files,
						 cap * sizeof(*list.files));
		}
		f = &list.files[list.count++];
		memset(f, 0, sizeof(*f));
		f->name = mem_strdup(de->d_name);
		f->version = mem_strdup(de->d_name);
		f->version[strlen(f->version) - 4] = '\0';
		f->number = number;
	}
	closedir(d);
	if (rc == 0 && list.count > 0) {
		qsort(list.files, list.count, sizeof(*list.files), by_number);
		for (i = 1; i < list.count; i++) {
			if (list.files[i].number == list.files[i - 1].number) {
				rc = fail(err, errlen, -EINVAL,
					  "%s: %s and %s have the same number "
					  "%llu; renumber one of them", dir,
					  list.files[i - 1].name,
					  list.files[i].name,
					  list.files[i].number);
				break;
			}
		}
	}
	if (rc < 0) {
		migrate_free_list(&list);
		return rc;
	}
	*out = list;
	return 0;
}

void migrate_free_list(struct migrate_list *list)
{
	size_t i;

	for (i = 0; i < list->count; i++) {
		free(list->files[i].name);
		free(list->files[i].version);
		free(list->files[i].sql);
	}
	free(list->files);
	list->files = NULL;
	list->count = 0;
}

int migrate_hash_bytes(const void *data, size_t len,
		       char hex[MIGRATE_HASH_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 ||
	    n * 2 + 1 != MIGRATE_HASH_HEX)
		return -EIO;
	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = '\0';
	return 0;
}

int migrate_read_file(const char *dir, struct migrate_file *file, char *err,
		      size_t errlen)
{
	char path[PATH_MAX], *buf;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path,
			    strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = fail(err, errlen, -errno, "%s: %s", path,
			  strerror(errno));
		close(fd);
		return rc;
	}
	if (st.st_size > (off_t)MIGRATE_FILE_MAX) {
		close(fd);
		return fail(err, errlen, -EFBIG, "%s: larger than %u bytes",
			    path, MIGRATE_FILE_MAX);
	}
	/* One byte more than stat says, to notice a file still growing. */
	buf = mem_alloc((size_t)st.st_size + 2);
	while (len < (size_t)st.st_size + 1) {
		n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(err, errlen, -errno, "%s: %s", path,
				  strerror(errno));
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc == 0 && len != (size_t)st.st_size)
		rc = fail(err, errlen, -EAGAIN,
			  "%s: changed size while being read", path);
	if (rc == 0 && memchr(buf, '\0', len) != NULL)
		rc = fail(err, errlen, -EINVAL, "%s: contains a NUL byte",
			  path);
	if (rc == 0 && migrate_hash_bytes(buf, len, file->checksum) < 0)
		rc = fail(err, errlen, -EIO, "%s: SHA-256 failed", path);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	free(file->sql);
	file->sql = buf;
	file->len = len;
	return 0;
}

static struct migrate_file *find_version(struct migrate_list *list,
					 const char *version)
{
	size_t i;

	for (i = 0; i < list->count; i++)
		if (strcmp(list->files[i].version, version) == 0)
			return &list->files[i];
	return NULL;
}

int migrate_check_applied(struct migrate_list *list,
			  const struct migrate_applied *applied,
			  size_t napplied, char *err, size_t errlen)
{
	const struct migrate_file *newest = NULL;
	struct migrate_file *f;
	size_t i, problems = 0;

	for (i = 0; i < list->count; i++)
		list->files[i].applied = 0;
	for (i = 0; i < napplied; i++) {
		f = find_version(list, applied[i].version);
		if (f == NULL) {
			log_error("applied migration has no file in the "
				  "migrations directory; restore it "
				  "(migrations are forward-only)",
				  "version=%s recorded_checksum=%s",
				  applied[i].version, applied[i].checksum);
			problems++;
			continue;
		}
		f->applied = 1;
		if (applied[i].checksum == NULL ||
		    strcmp(applied[i].checksum, f->checksum) != 0) {
			log_error("applied migration was changed; migrations "
				  "are forward-only: restore the file and "
				  "write the change as a new migration",
				  "file=%s recorded_checksum=%s "
				  "current_checksum=%s", f->name,
				  applied[i].checksum, f->checksum);
			problems++;
		}
		if (newest == NULL || f->number > newest->number)
			newest = f;
	}
	for (i = 0; newest && i < list->count; i++) {
		f = &list->files[i];
		if (!f->applied && f->number < newest->number) {
			log_error("pending migration is numbered below an "
				  "applied one; renumber it after the newest "
				  "applied migration",
				  "file=%s newest_applied=%s", f->name,
				  newest->name);
			problems++;
		}
	}
	if (problems > 0)
		return fail(err, errlen, -EINVAL,
			    "refusing to migrate: %zu problem%s with already "
			    "applied migrations (see above); nothing was "
			    "applied", problems, problems == 1 ? "" : "s");
	return 0;
}

/* Applied rows as read from push.schema_migrations; owns its strings. */
struct applied_rows {
	struct migrate_applied *rows;
	size_t count, cap;
};

static int collect_applied(void *arg, int ncols, const char *const *values)
{
	struct applied_rows *a = arg;

	if (ncols != 2 || values[0] == NULL)
		return -EPROTO;
	if (a->count == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->rows = mem_realloc(a->rows, a->cap * sizeof(*a->rows));
	}
	a->rows[a->count].version = mem_strdup(values[0]);
	a->rows[a->count].checksum = values[1] ? mem_strdup(values[1]) : NULL;
	a->count++;
	return 0;
}

static void free_applied(struct applied_rows *a)
{
	size_t i;

	for (i = 0; i < a->count; i++) {
		free((char *)a->rows[i].version);
		free((char *)a->rows[i].checksum);
	}
	free(a->rows);
}

static int get_bool(void *arg, int ncols, const char *const *values)
{
	*(int *)arg = ncols == 1 && values[0] && values[0][0] == 't';
	return 0;
}

/* Wait for the migration advisory lock, saying so if it is held. */
static int take_lock(struct db_conn *conn, char *err, size_t errlen)
{
	const char *key[] = { MIGRATE_LOCK_KEY };
	int got = 0, rc;

	rc = db_query_rows(conn, "SELECT pg_try_advisory_lock($1::bigint)",
			   1, key, get_bool, &got, err, errlen);
	if (rc < 0 || got)
		return rc;
	log_info("another migrate is running; waiting for its lock",
		 "lock_key=%s", MIGRATE_LOCK_KEY);
	return db_query_rows(conn, "SELECT pg_advisory_lock($1::bigint)", 1,
			     key, NULL, NULL, err, errlen);
}

static int read_applied(struct db_conn *conn, struct applied_rows *a,
			char *err, size_t errlen)
{
	int exists = 0, rc;

	rc = db_query_rows(conn, "SELECT to_regclass('push.schema_migrations')"
			   " IS NOT NULL", 0, NULL, get_bool, &exists, err,
			   errlen);
	if (rc < 0 || !exists)
		return rc;
	rc = db_query_rows(conn, "SELECT version, checksum FROM "
			   "push.schema_migrations ORDER BY version", 0, NULL,
			   collect_applied, a, err, errlen);
	if (rc == -EPROTO)
		return fail(err, errlen, rc, "push.schema_migrations has an "
			    "unexpected shape");
	return rc;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Apply one file in its own transaction; roll back on any error. */
static int apply_one(struct db_conn *conn, const struct migrate_file *f,
		     char *err, size_t errlen)
{
	const char *params[] = { f->version, f->checksum };
	const char *outcome = "rolled back", *step = "";
	char msg[2048] = "";
	int rc;

	rc = db_exec_script(conn, "BEGIN", msg, sizeof(msg));
	if (rc == 0)
		rc = db_exec_script(conn, f->sql, msg, sizeof(msg));
	if (rc == 0 && !db_in_transaction(conn)) {
		snprintf(msg, sizeof(msg), "the file ends the transaction "
			 "itself (COMMIT or ROLLBACK inside it); migrations "
			 "must not control transactions");
		outcome = "what ran before its COMMIT stays committed: "
			  "check the database";
		rc = -EINVAL;
	}
	if (rc == 0) {
		step = "recording it in push.schema_migrations (which "
		       "migration 0001 must create): ";
		rc = db_query_rows(conn, "INSERT INTO push.schema_migrations"
				   "(version, checksum) VALUES ($1, $2)", 2,
				   params, NULL, NULL, msg, sizeof(msg));
	}
	if (rc == 0) {
		step = "COMMIT: ";
		rc = db_exec_script(conn, "COMMIT", msg, sizeof(msg));
	}
	if (rc < 0) {
		char ignored[256];

		db_exec_script(conn, "ROLLBACK", ignored, sizeof(ignored));
		return fail(err, errlen, rc, "migration %s failed (%s): %s%s",
			    f->name, outcome, step, msg);
	}
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int migrate_find_dir(const char *exe, char *out, size_t outlen, char *err,
		     size_t errlen)
{
	static const char *const rel[] = { "../share/pgpush/migrations",
					   "../migrations" };
	const char *slash = exe ? strrchr(exe, '/') : NULL;
	int dirlen = slash ? (int)(slash - exe) : 0;
	size_t i;
	int n;

	for (i = 0; slash && i < sizeof(rel) / sizeof(rel[0]); i++) {
		n = snprintf(out, outlen, "%.*s/%s", dirlen, exe, rel[i]);
		if (n > 0 && (size_t)n < outlen && is_dir(out))
			return 0;
	}
	n = snprintf(out, outlen, "%s", PGPUSH_MIGRATIONS_INSTALLED);
	if (n > 0 && (size_t)n < outlen && is_dir(out))
		return 0;
	if (outlen > 0)
		out[0] = '\0';
	return fail(err, errlen, -ENOENT,
		    "no migrations directory found (tried %.*s/%s, %.*s/%s "
		    "and %s); give one with --migrations-dir",
		    dirlen, exe ? exe : "", rel[0], dirlen, exe ? exe : "",
		    rel[1], PGPUSH_MIGRATIONS_INSTALLED);
}

int migrate_apply_pending(const char *conninfo, const char *dir, char *err,
			  size_t errlen)
{
	struct migrate_list list = { NULL, 0 };
	struct applied_rows applied = { NULL, 0, 0 };
	struct db_conn *conn = NULL;
	size_t i, done = 0;
	double t0;
	char msg[64];
	int rc;

	rc = migrate_list_dir(dir, &list, err, errlen);
	for (i = 0; rc == 0 && i < list.count; i++)
		rc = migrate_read_file(dir, &list.files[i], err, errlen);
	if (rc == 0 && list.count == 0)
		log_warn("no migration files found", "dir=%s", dir);
	if (rc == 0)
		rc = db_open_conn(&conn, conninfo, err, errlen);
	if (rc == 0)
		rc = take_lock(conn, err, errlen);
	if (rc == 0)
		rc = read_applied(conn, &applied, err, errlen);
	if (rc == 0)
		rc = migrate_check_applied(&list, applied.rows, applied.count,
					   err, errlen);
	for (i = 0; rc == 0 && i < list.count; i++) {
		if (list.files[i].applied)
			continue;
		t0 = now_ms();
		rc = apply_one(conn, &list.files[i], err, errlen);
		if (rc == 0) {
			log_info("applied migration",
				 "file=%s duration_ms=%.1f",
				 list.files[i].name, now_ms() - t0);
			done++;
		}
	}
	if (rc == 0 && done == 0) {
		snprintf(msg, sizeof(msg), "nothing to do (%zu applied)",
			 applied.count);
		log_info(msg, NULL);
	} else if (rc == 0) {
		log_info("migrations applied", "applied_now=%zu total=%zu",
			 done, applied.count + done);
	}
	/* Closing the session also releases the advisory lock. */
	db_close_conn(conn);
	free_applied(&applied);
	migrate_free_list(&list);
	return rc;
}
