/*
 * search_corpus DIR N — writes messages 1..N of tests/unit/lib/textgen
 * into the Maildir DIR (cur/, new/, tmp/), for the search benchmark:
 * Dovecot reads the Maildir, imapd_test --eml loads the same files into
 * a store. Prints the total bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "strbuf.h"
#include "tests/unit/lib/textgen.h"

int
main(int argc, char **argv)
{
	char path[4096];
	struct strbuf m = STRBUF_INIT;
	unsigned long n;
	unsigned long long total = 0;
	const char *subs[] = { "", "/cur", "/new", "/tmp" };

	if (argc != 3) {
		fprintf(stderr, "usage: search_corpus DIR N\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", argv[1], subs[i]);
		(void)mkdir(path, 0755);
	}
	for (unsigned long i = 1; i <= n; i++) {
		FILE *f;

		textgen_message((uint32_t)i, &m);
		snprintf(path, sizeof(path), "%s/cur/%010lu.M%luP1.bench,S=%zu:2,",
		    argv[1], 1700000000 + i, i, m.len);
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(m.data, 1, m.len, f) != m.len || fclose(f) != 0) {
			perror(path);
			return 1;
		}
		total += m.len;
	}
	printf("%llu\n", total);
	strbuf_free(&m);
	return 0;
}
