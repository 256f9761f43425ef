/*
 * test_migrate.c - unit tests for the pure part of migrate.c: file names,
 * directory listing and ordering, duplicates, checksums, and checking
 * recorded migrations against the files.  No database.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "db/migrate.h"
#include "tap.h"

#define SHA256_EMPTY \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char top[] = "/tmp/pgpush-test-migrate.XXXXXX";

static void write_file(const char *dir, const char *name, const char *data,
		       size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(255);
	}
}

/* A fresh directory under `top`, named `name`. */
static const char *make_dir(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", top, name);
	if (mkdir(path, 0700) < 0) {
		perror(path);
		exit(255);
	}
	return path;
}

/* rm -r for the two levels of directories these tests make. */
static void remove_tree(const char *dir, int depth)
{
	char path[1024];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth < 3)
			remove_tree(path, depth + 1);
		else
			unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void test_names(void)
{
	static const char *const good[] = {
		"0001_foundation.sql", "0009_a.sql", "0100_x_y.sql",
		"1234_a1_b2.sql", "0001__x.sql", "00000001_z.sql",
		"20261122_daily.sql",
	};
	static const char *const bad[] = {
		"001_a.sql", "1_a.sql", "0001-a.sql", "0001_.sql",
		"0001_A.sql", "0001_a.SQL", "0001_a.sql.bak", "0001_a b.sql",
		"_0001_a.sql", "abcd_a.sql", "0001_a", "0001.sql", "",
		"0001_a-b.sql", "0001_caf\xc3\xa9.sql", "0001_a.sqlx",
		"0001_a..sql", " 0001_a.sql", "0001_a.sql ",
	};
	unsigned long long n = 12345;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		is_int(migrate_check_name(good[i], NULL), 0, "accepts '%s'",
		       good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		is_int(migrate_check_name(bad[i], &n), -EINVAL,
		       "rejects '%s'", bad[i]);
	is_int(n, 12345, "a rejected name leaves the number alone");
	is_int(migrate_check_name("0100_x.sql", &n), 0, "0100_x.sql");
	is_int(n, 100, "its number is 100");
	is_int(migrate_check_name("18446744073709551615_max.sql", &n), 0,
	       "the largest 64-bit number");
	ok(n == 18446744073709551615ull, "is parsed exactly");
	is_int(migrate_check_name("18446744073709551616_big.sql", &n),
	       -ERANGE, "a number past 64 bits is -ERANGE");
}

static void test_list_order(void)
{
	const char *dir = make_dir("order");
	struct migrate_list list;
	char err[512] = "";

	write_file(dir, "0010_ten.sql", "", 0);
	write_file(dir, "0009_nine.sql", "", 0);
	write_file(dir, "0100_hundred.sql", "", 0);
	write_file(dir, "00011_eleven.sql", "", 0);
	write_file(dir, "README.md", "", 0);
	write_file(dir, "notes.txt", "", 0);
	write_file(dir, ".0001_hidden.sql", "", 0);
	write_file(dir, "0002_backup.sql~", "", 0);

	if (!is_int(migrate_list_dir(dir, &list, err, sizeof(err)), 0,
		    "lists a directory")) {
		diag("%s", err);
		return;
	}
	if (is_int(list.count, 4, "four migrations; other files ignored")) {
		is_str(list.files[0].name, "0009_nine.sql", "9 first");
		is_str(list.files[1].name, "0010_ten.sql", "then 10");
		is_str(list.files[2].name, "00011_eleven.sql",
		       "then 11 (five digits)");
		is_str(list.files[3].name, "0100_hundred.sql", "then 100");
		is_str(list.files[1].version, "0010_ten",
		       "version is the name without .sql");
		is_int(list.files[3].number, 100, "number of 0100");
		is_ptr(list.files[0].sql, NULL, "listing reads nothing");
	}
	migrate_free_list(&list);
	is_int(list.count, 0, "freed list is empty");
	migrate_free_list(&list);
	ok(1, "freeing an empty list is a no-op");

	dir = make_dir("empty");
	is_int(migrate_list_dir(dir, &list, err, sizeof(err)), 0,
	       "an empty directory lists");
	is_int(list.count, 0, "with no files");
	migrate_free_list(&list);
}

static void test_list_errors(void)
{
	struct migrate_list list;
	char err[512] = "", path[512];
	const char *dir;

	dir = make_dir("dup");
	write_file(dir, "0001_a.sql", "", 0);
	write_file(dir, "0002_b.sql", "", 0);
	write_file(dir, "0001_c.sql", "", 0);
	is_int(migrate_list_dir(dir, &list, err, sizeof(err)), -EINVAL,
	       "two files numbered 1 are rejected");
	like_str(err, "0001_a.sql and 0001_c.sql have the same number 1",
		 "the message names both");
	is_int(list.count, 0, "and the list is empty");

	dir = make_dir("dupwidth");
	write_file(dir, "0010_a.sql", "", 0);
	write_file(dir, "00010_b.sql", "", 0);
	is_int(migrate_list_dir(dir, &list, err, sizeof(err)), -EINVAL,
	       "0010 and 00010 are the same number");
	like_str(err, "same number 10", "the message says so");

	dir = make_dir("badname");
	write_file(dir, "0001_ok.sql", "", 0);
	write_file(dir, "2_short.sql", "", 0);
	is_int(migrate_list_dir(dir, &list, err, sizeof(err)), -EINVAL,
	       "a .sql file with a bad name is an error");
	like_str(err, "2_short.sql: not a migration file name",
		 "the message names it");

	snprintf(path, sizeof(path), "%s", make_dir("subdir"));
	make_dir("subdir/0001_dir.sql");
	is_int(migrate_list_dir(path, &list, err, sizeof(err)), -EINVAL,
	       "a directory named like a migration is an error");
	like_str(err, "not a regular file", "the message says why");

	is_int(migrate_list_dir("/nonexistent/pgpush", &list, err,
				sizeof(err)), -ENOENT,
	       "a missing directory is -ENOENT");
	like_str(err, "cannot open migrations directory '/nonexistent/pgpush'",
		 "the message names it");
}

static void test_hash(void)
{
	char hex[MIGRATE_HASH_HEX];

	is_int(migrate_hash_bytes("", 0, hex), 0, "hash of nothing");
	is_str(hex, SHA256_EMPTY, "SHA-256 of \"\"");
	is_int(migrate_hash_bytes("abc", 3, hex), 0, "hash of abc");
	is_str(hex, SHA256_ABC, "SHA-256 of \"abc\"");
}

static void test_read(void)
{
	const char *dir = make_dir("read");
	struct migrate_file f;
	char err[512] = "";

	write_file(dir, "0001_abc.sql", "abc", 3);
	write_file(dir, "0002_empty.sql", "", 0);
	write_file(dir, "0003_nul.sql", "a\0b", 3);

	memset(&f, 0, sizeof(f));
	f.name = "0001_abc.sql";
	is_int(migrate_read_file(dir, &f, err, sizeof(err)), 0, "reads abc");
	is_str(f.sql, "abc", "contents, NUL-terminated");
	is_int(f.len, 3, "length");
	is_str(f.checksum, SHA256_ABC, "checksum of the file's bytes");
	f.name = "0002_empty.sql";
	is_int(migrate_read_file(dir, &f, err, sizeof(err)), 0,
	       "reads an empty file (replacing the old contents)");
	is_str(f.sql, "", "empty contents");
	is_str(f.checksum, SHA256_EMPTY, "checksum of an empty file");
	f.name = "0003_nul.sql";
	is_int(migrate_read_file(dir, &f, err, sizeof(err)), -EINVAL,
	       "a NUL byte is refused");
	like_str(err, "0003_nul.sql: contains a NUL byte", "and named");
	is_str(f.sql, "", "a failed read leaves the old contents");
	f.name = "0004_missing.sql";
	is_int(migrate_read_file(dir, &f, err, sizeof(err)), -ENOENT,
	       "a missing file is -ENOENT");
	free(f.sql);
}

/* A list of three read files: 0001 "a", 0002 "b", 0003 "c". */
static void make_list(struct migrate_list *list)
{
	static const char *const names[] = { "0001_a.sql", "0002_b.sql",
					     "0003_c.sql" };
	size_t i;

	list->count = 3;
	list->files = calloc(3, sizeof(*list->files));
	for (i = 0; i < 3; i++) {
		struct migrate_file *f = &list->files[i];

		f->name = strdup(names[i]);
		f->version = strdup(names[i]);
		f->version[6] = '\0';
		f->number = i + 1;
		f->sql = strdup(names[i] + 5);
		f->sql[1] = '\0';
		f->len = 1;
		migrate_hash_bytes(f->sql, 1, f->checksum);
	}
}

/*
 * Run migrate_check_applied, storing its result in *rc; returns what it
 * logged (free it).
 */
static char *check(struct migrate_list *list,
		   const struct migrate_applied *a, size_t n, char *err,
		   size_t errlen, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	log_set_output(out);
	*rc = migrate_check_applied(list, a, n, err, errlen);
	log_set_output(NULL);
	fclose(out);
	return buf;
}

static void test_check_applied(void)
{
	char ha[MIGRATE_HASH_HEX], hb[MIGRATE_HASH_HEX], err[512];
	struct migrate_list list;
	char *logbuf;
	int rc;

	make_list(&list);
	strcpy(ha, list.files[0].checksum);
	strcpy(hb, list.files[1].checksum);

	{
		logbuf = check(&list, NULL, 0, err, sizeof(err), &rc);
		is_int(rc, 0, "nothing applied: fine");
		is_int(list.files[0].applied + list.files[1].applied +
		       list.files[2].applied, 0, "nothing marked applied");
		is_str(logbuf, "", "nothing logged");
		free(logbuf);
	}
	{
		const struct migrate_applied a[] = { { "0001_a", ha },
						     { "0002_b", hb } };

		logbuf = check(&list, a, 2, err, sizeof(err), &rc);
		is_int(rc, 0, "two applied, matching checksums: fine");
		ok(list.files[0].applied && list.files[1].applied &&
		   !list.files[2].applied, "0001 and 0002 marked, 0003 not");
		free(logbuf);
	}
	{
		const struct migrate_applied a[] = { { "0001_a", ha },
						     { "0002_b", ha } };

		logbuf = check(&list, a, 2, err, sizeof(err), &rc);
		is_int(rc, -EINVAL, "a changed file is refused");
		like_str(err, "refusing to migrate: 1 problem",
			 "the error says so");
		like_str(err, "nothing was applied", "and nothing applied");
		like_str(logbuf, "file=0002_b.sql", "the log names the file");
		like_str(logbuf, "current_checksum=",
			 "the log has the current checksum");
		ok(strstr(logbuf, ha) && strstr(logbuf, hb),
		   "the log shows the recorded and the current checksum");
		like_str(logbuf, "forward-only", "and says forward-only");
		free(logbuf);
	}
	{
		const struct migrate_applied a[] = { { "0001_a", ha },
						     { "0004_gone", ha } };

		logbuf = check(&list, a, 2, err, sizeof(err), &rc);
		is_int(rc, -EINVAL,
		       "an applied version with no file is refused");
		like_str(logbuf, "version=0004_gone", "the log names it");
		free(logbuf);
	}
	{
		const struct migrate_applied a[] = { { "0001_a", ha },
						     { "0003_c", NULL } };

		list.files[2].checksum[0] ^= 1;
		logbuf = check(&list, a, 2, err, sizeof(err), &rc);
		is_int(rc, -EINVAL,
		       "0002 pending below applied 0003 is refused");
		like_str(logbuf, "file=0002_b.sql newest_applied=0003_c.sql",
			 "the log names both");
		like_str(logbuf, "recorded_checksum=null",
			 "a NULL recorded checksum is a mismatch");
		like_str(err, "2 problems", "both problems counted");
		free(logbuf);
	}
	migrate_free_list(&list);
}

int main(void)
{
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 255;
	}
	test_names();
	test_list_order();
	test_list_errors();
	test_hash();
	test_read();
	test_check_applied();
	remove_tree(top, 0);
	ok(access(top, F_OK) != 0, "temp dir removed");
	return done_testing();
}
