/*
 * store_check DIR — runs the store's offline consistency checker on the
 * store in DIR, prints one line per problem, exits 0 when consistent,
 * 1 when problems were found, 2 when the store could not be opened.
 */
#include <stdio.h>

#include "store/store.h"

int
main(int argc, char **argv)
{
	unsigned int problems = 0;
	const char *error = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: store_check DIR\n");
		return 2;
	}
	if (store_check(argv[1], stdout, &problems, &error) < 0) {
		fprintf(stderr, "%s\n", error != NULL ? error : "store_check");
		return problems > 0 ? 1 : 2;
	}
	printf("store-check: ok\n");
	return 0;
}
