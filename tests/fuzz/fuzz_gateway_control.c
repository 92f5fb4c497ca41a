/* libFuzzer target: control request validation and the CSV splitter. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/control-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct ctl_command *cmd;
	json_t *req;
	struct ctl_error err;
	char *fields[CTL_CSV_FIELDS_MAX];
	size_t n;
	const char *why;

	if (ctl_request_parse((const char *)data, size, &cmd, &req,
	    &err) == 0)
		json_decref(req);
	if (ctl_csv_split((const char *)data, size, fields, &n, &why) == 0) {
		for (size_t i = 0; i < n; i++)
			free(fields[i]);
	}
	return 0;
}
