/* secret — see secret.h. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

struct secret_key {
	unsigned char bytes[SECRET_KEY_LEN];
};

static const char sealed_prefix[] = "v1:";

struct secret_key *
secret_key_from_bytes(const unsigned char *bytes)
{
	struct secret_key *key = xmalloc(sizeof(*key));

	memcpy(key->bytes, bytes, SECRET_KEY_LEN);
	return key;
}

void
secret_key_free(struct secret_key **keyp)
{
	if (*keyp == NULL)
		return;
	secure_zero((*keyp)->bytes, sizeof((*keyp)->bytes));
	free(*keyp);
	*keyp = NULL;
}

static int
read_full(int fd, unsigned char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int
create_key(const char *path, struct secret_key **key_r, char *errbuf,
    size_t errsize)
{
	unsigned char bytes[SECRET_KEY_LEN];
	size_t done = 0;
	int fd, ret = -1;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
		snprintf(errbuf, errsize, "%s: no random bytes from OpenSSL",
		    path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		snprintf(errbuf, errsize, "%s: cannot create: %s", path,
		    strerror(errno));
		goto out;
	}
	while (done < sizeof(bytes)) {
		ssize_t n = write(fd, bytes + done, sizeof(bytes) - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(errbuf, errsize, "%s: cannot write: %s", path,
			    strerror(errno));
			goto out;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		snprintf(errbuf, errsize, "%s: fsync: %s", path,
		    strerror(errno));
		goto out;
	}
	*key_r = secret_key_from_bytes(bytes);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && fd >= 0)
		unlink(path);
	secure_zero(bytes, sizeof(bytes));
	return ret;
}

int
secret_key_load_or_create(const char *path, struct secret_key **key_r,
    bool *created_r, char *errbuf, size_t errsize)
{
	unsigned char bytes[SECRET_KEY_LEN + 1];
	struct stat st;
	int fd = -1, ret = -1;
	ssize_t extra;

	*created_r = false;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT) {
			snprintf(errbuf, errsize, "%s: %s", path,
			    strerror(errno));
			return -1;
		}
		if (create_key(path, key_r, errbuf, errsize) < 0)
			return -1;
		*created_r = true;
		return 0;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(errbuf, errsize, "%s: cannot open: %s", path,
		    strerror(errno));
		goto out;
	}
	/* Judge the file we opened, not whatever the path names now. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(errbuf, errsize, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		snprintf(errbuf, errsize, "%s: owned by uid %u, not by the "
		    "daemon's uid %u", path, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(errbuf, errsize, "%s: mode %04o lets group or others "
		    "read it; it must be 0600 (chmod 600 %s)", path,
		    (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size != SECRET_KEY_LEN ||
	    read_full(fd, bytes, SECRET_KEY_LEN) < 0) {
		snprintf(errbuf, errsize, "%s: not a key file (%d bytes "
		    "expected)", path, SECRET_KEY_LEN);
		goto out;
	}
	extra = read(fd, bytes + SECRET_KEY_LEN, 1);
	if (extra != 0) {
		snprintf(errbuf, errsize, "%s: not a key file (%d bytes "
		    "expected)", path, SECRET_KEY_LEN);
		goto out;
	}
	*key_r = secret_key_from_bytes(bytes);
	ret = 0;
out:
	secure_zero(bytes, sizeof(bytes));
	if (fd >= 0)
		close(fd);
	return ret;
}

char *
secret_seal(const struct secret_key *key, const char *aad, const void *plain,
    size_t len)
{
	unsigned char *raw = NULL;
	char *out = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	size_t raw_len = SECRET_NONCE_LEN + len + SECRET_TAG_LEN;
	int outl, n;

	PG_ASSERT(len <= SECRET_PLAIN_MAX);
	raw = xmalloc(raw_len);
	if (RAND_bytes(raw, SECRET_NONCE_LEN) != 1)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes,
	    raw) != 1)
		goto out;
	if (EVP_EncryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad,
	    (int)strlen(aad)) != 1)
		goto out;
	if (EVP_EncryptUpdate(ctx, raw + SECRET_NONCE_LEN, &outl, plain,
	    (int)len) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, raw + SECRET_NONCE_LEN + outl, &n) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_LEN,
	    raw + SECRET_NONCE_LEN + len) != 1)
		goto out;
	out = xmalloc(sizeof(sealed_prefix) + 4 * ((raw_len + 2) / 3) + 1);
	memcpy(out, sealed_prefix, sizeof(sealed_prefix) - 1);
	EVP_EncodeBlock((unsigned char *)out + sizeof(sealed_prefix) - 1, raw,
	    (int)raw_len);
out:
	if (out == NULL)
		log_error("secret event=seal-failed reason=openssl");
	EVP_CIPHER_CTX_free(ctx);
	if (raw != NULL) {
		secure_zero(raw, raw_len);
		free(raw);
	}
	return out;
}

int
secret_open(const struct secret_key *key, const char *aad, const char *sealed,
    char **plain_r, size_t *len_r, const char **error_r)
{
	const char *b64;
	size_t b64_len, raw_len, ct_len = 0;
	unsigned char *raw = NULL;
	char *plain = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	int outl, n, decoded, ret = -1;

	*error_r = "malformed sealed secret";
	if (strncmp(sealed, sealed_prefix, sizeof(sealed_prefix) - 1) != 0)
		return -1;
	b64 = sealed + sizeof(sealed_prefix) - 1;
	b64_len = strlen(b64);
	if (b64_len == 0 || b64_len % 4 != 0 ||
	    b64_len > 4 * ((SECRET_NONCE_LEN + SECRET_PLAIN_MAX +
	    SECRET_TAG_LEN + 2) / 3))
		return -1;
	raw = xmalloc(b64_len / 4 * 3 + 1);
	decoded = EVP_DecodeBlock(raw, (const unsigned char *)b64,
	    (int)b64_len);
	if (decoded < 0)
		goto out;
	/* EVP_DecodeBlock counts the '=' padding as zero bytes. */
	raw_len = (size_t)decoded;
	if (b64[b64_len - 1] == '=')
		raw_len--;
	if (b64[b64_len - 2] == '=')
		raw_len--;
	if (raw_len < SECRET_NONCE_LEN + SECRET_TAG_LEN)
		goto out;
	ct_len = raw_len - SECRET_NONCE_LEN - SECRET_TAG_LEN;
	plain = xmalloc(ct_len + 1);
	*error_r = "sealed secret does not open with this key (wrong key "
	    "file, or data altered)";
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->bytes,
	    raw) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)aad,
	    (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)plain, &outl,
	    raw + SECRET_NONCE_LEN, (int)ct_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_LEN,
	    raw + SECRET_NONCE_LEN + ct_len) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + outl, &n) != 1)
		goto out;
	plain[ct_len] = '\0';
	*plain_r = plain;
	*len_r = ct_len;
	plain = NULL;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (plain != NULL) {
		secure_zero(plain, ct_len + 1);
		free(plain);
	}
	free(raw);
	return ret;
}

void
secret_free_plain(char *plain)
{
	if (plain == NULL)
		return;
	secure_zero(plain, strlen(plain));
	free(plain);
}
