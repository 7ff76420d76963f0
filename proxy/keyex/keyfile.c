/* keyfile.c - identity key files: PKCS#8 PEM, mode 0600, never overwritten, erased from memory
 * after use. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define KEYFILE_MAX 16384 /* a PEM Ed25519 key is ~120 bytes */

static enum px_err keyfile_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return PX_ERR_IO;
		buf += n;
		len -= (size_t)n;
	}
	return PX_OK;
}

/* Generates a key and writes its PEM to fd; fsync only when fd is a file (a pipe has none). */
static enum px_err keyfile_emit(int fd, bool sync, struct id_key **out)
{
	struct id_key *key = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	enum px_err rc = id_key_generate(&key);

	if (rc == PX_OK)
		rc = id_key_to_pem(key, &pem, &pem_len);
	if (rc == PX_OK)
		rc = keyfile_write_all(fd, pem, pem_len);
	if (rc == PX_OK && sync && fsync(fd) != 0)
		rc = PX_ERR_IO;
	if (pem) {
		OPENSSL_cleanse(pem, pem_len);
		free(pem);
	}
	if (rc != PX_OK) {
		id_key_free(key);
		return rc;
	}
	*out = key;
	return PX_OK;
}

enum px_err keyfile_create(const char *path, struct id_key **out, char *err, size_t errlen)
{
	enum px_err rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		rc = errno == EEXIST ? PX_ERR_EXISTS : PX_ERR_IO;
		snprintf(err, errlen, "%s: %s", path,
			 errno == EEXIST ? "already exists; refusing to overwrite an identity key" : strerror(errno));
		return rc;
	}
	rc = keyfile_emit(fd, true, out);
	if (close(fd) != 0 && rc == PX_OK) {
		id_key_free(*out);
		*out = NULL;
		rc = PX_ERR_IO;
	}
	if (rc != PX_OK) {
		snprintf(err, errlen, "%s: cannot write the key: %s", path, px_strerror(rc));
		unlink(path);
	}
	return rc;
}

enum px_err keyfile_create_fd(int fd, struct id_key **out, char *err, size_t errlen)
{
	struct stat st;
	enum px_err rc = keyfile_emit(fd, fstat(fd, &st) == 0 && S_ISREG(st.st_mode), out);

	if (rc != PX_OK)
		snprintf(err, errlen, "cannot write the key to standard output: %s", px_strerror(rc));
	return rc;
}

static enum px_err keyfile_read(int fd, char *buf, size_t cap, size_t *len)
{
	size_t total = 0;

	for (;;) {
		ssize_t n = read(fd, buf + total, cap - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PX_ERR_IO;
		if (n == 0)
			break;
		total += (size_t)n;
		if (total == cap)
			return PX_ERR_TOO_LARGE;
	}
	*len = total;
	return PX_OK;
}

/* Reads and parses a key from fd (no permission check); name is for messages. */
static enum px_err keyfile_parse_fd(int fd, const char *name, struct id_key **out, char *err, size_t errlen)
{
	char *buf = malloc(KEYFILE_MAX);
	size_t len = 0;
	enum px_err rc = PX_ERR_NOMEM;

	if (buf) {
		rc = keyfile_read(fd, buf, KEYFILE_MAX, &len);
		if (rc == PX_OK)
			rc = id_key_from_pem(buf, len, out);
		OPENSSL_cleanse(buf, KEYFILE_MAX);
		free(buf);
	}
	if (rc != PX_OK)
		snprintf(err, errlen, "%s: not an Ed25519 identity key (%s)", name, px_strerror(rc));
	return rc;
}

enum px_err keyfile_load(const char *path, bool strict_mode, struct id_key **out, char *err, size_t errlen)
{
	struct stat st;
	enum px_err rc = PX_ERR_IO;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PX_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (strict_mode && (st.st_mode & 077)) {
		snprintf(err, errlen, "%s: mode %04o lets others read the identity key; run chmod 600 %s", path,
			 (unsigned)(st.st_mode & 07777), path);
		rc = PX_ERR_INVAL;
		goto out;
	}
	rc = keyfile_parse_fd(fd, path, out, err, errlen);
out:
	close(fd);
	return rc;
}

enum px_err keyfile_load_fd(int fd, const char *name, struct id_key **out, char *err, size_t errlen)
{
	return keyfile_parse_fd(fd, name, out, err, errlen);
}

enum px_err keyfile_public_text(const struct id_key *key, char out[static ID_PUB_TEXT_LEN + 1])
{
	uint8_t raw[ID_PUB_LEN];
	enum px_err rc = id_key_public(key, raw);

	if (rc == PX_OK)
		id_pub_encode(raw, out);
	return rc;
}
