/* libFuzzer target: control request validation, the CSV splitter and the
 * import file's format detection. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/control-proto.h"
#include "gateway/import-csv.h"

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
	if (ctl_csv_split((const char *)data, size, ',', fields, &n, &why) == 0) {
		for (size_t i = 0; i < n; i++)
			free(fields[i]);
	}
	{
		struct import_csv_format fmt;
		char *cols[IMPORT_COL_COUNT];
		const char *col;
		char msg[256];
		size_t nl = 0;

		while (nl < size && data[nl] != '\n')
			nl++;
		if (import_csv_detect((const char *)data, nl, &fmt, msg,
		    sizeof(msg)) == 0 && nl < size &&
		    import_csv_split(&fmt, (const char *)data + nl + 1,
		    size - nl - 1, cols, &why, &col) == 0)
			import_csv_free(cols);
	}
	return 0;
}
