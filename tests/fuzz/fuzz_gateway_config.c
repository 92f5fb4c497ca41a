/* libFuzzer target: the configuration parser on arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	memcpy(text, data, size);
	text[size] = '\0';	/* a NUL inside just ends the text early */
	if (config_load_string("fuzz.conf", text, &c, err, sizeof(err)) == 0)
		config_free(&c);
	free(text);
	return 0;
}
