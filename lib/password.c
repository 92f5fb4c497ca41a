#include "password.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <string.h>

#include "tls.h"
#include "xmalloc.h"

int
password_hash(const char *password, size_t len,
    char encoded_r[PASSWORD_ENCODED_MAX], const char **error_r)
{
	unsigned char salt[PASSWORD_SALT_LEN];
	int rc;

	if (len > PASSWORD_MAX_LEN) {
		*error_r = "password too long";
		return -1;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		tls_log_errors("password");
		*error_r = "random generator failed";
		return -1;
	}
	rc = argon2id_hash_encoded(PASSWORD_ITERATIONS, PASSWORD_MEMORY_KIB,
	    PASSWORD_PARALLELISM, password, len, salt, sizeof(salt),
	    PASSWORD_HASH_LEN, encoded_r, PASSWORD_ENCODED_MAX);
	secure_zero(salt, sizeof(salt));
	if (rc != ARGON2_OK) {
		*error_r = argon2_error_message(rc);
		return -1;
	}
	return 0;
}

bool
password_verify(const char *encoded, const char *password, size_t len)
{
	if (encoded == NULL || len > PASSWORD_MAX_LEN)
		return false;
	if (strncmp(encoded, "$argon2id$", 10) != 0)
		return false;
	/* argon2id_verify compares in constant time (argon2_compare). */
	return argon2id_verify(encoded, password, len) == ARGON2_OK;
}
