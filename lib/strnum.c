#include "strnum.h"

#include <string.h>
#include <strings.h>

int
str_to_u64(const char *s, size_t len, uint64_t *num_r)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*num_r = n;
	return 0;
}

int
str_to_u32(const char *s, size_t len, uint32_t *num_r)
{
	uint64_t n;

	if (str_to_u64(s, len, &n) < 0 || n > UINT32_MAX)
		return -1;
	*num_r = (uint32_t)n;
	return 0;
}

int
str_to_u32z(const char *s, uint32_t *num_r)
{
	return str_to_u32(s, strlen(s), num_r);
}

int
str_to_u64z(const char *s, uint64_t *num_r)
{
	return str_to_u64(s, strlen(s), num_r);
}

bool
str_ieq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

bool
str_has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}
