/* import-csv — see import-csv.h. */
#include "import-csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

const char *const import_col_names[IMPORT_COL_COUNT] = {
	"user", "user_password", "host", "port", "tls", "login", "password",
	"mode", "folder", "interval", "account", "auth", "ca_file", "ca_only",
	"fingerprint", "allow_cleartext", "oauth_provider",
};

static const char delims[] = { ',', ';', '\t' };

size_t
import_csv_bom(const char *text, size_t len)
{
	return len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

static void
free_fields(char **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		secure_zero(f[i], strlen(f[i]));
		free(f[i]);
	}
}

/* Delimiters outside quotes, per candidate. */
static void
count_delims(const char *line, size_t len, size_t counts[3])
{
	bool quoted = false;

	memset(counts, 0, 3 * sizeof(counts[0]));
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '"') {
			quoted = !quoted;
			continue;
		}
		for (size_t d = 0; d < N_ELEMENTS(delims) && !quoted; d++) {
			if (line[i] == delims[d])
				counts[d]++;
		}
	}
}

/* Field name without surrounding blanks, lower-cased into buf. */
static const char *
column_name(const char *field, char *buf, size_t size)
{
	size_t start = 0, end = strlen(field), o = 0;

	while (start < end && (field[start] == ' ' || field[start] == '\t'))
		start++;
	while (end > start && (field[end - 1] == ' ' ||
	    field[end - 1] == '\t'))
		end--;
	for (size_t i = start; i < end && o + 1 < size; i++) {
		char c = field[i];

		buf[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	buf[o] = '\0';
	return buf;
}

static int
read_header(char delim, char **f, size_t n, struct import_csv_format *fmt,
    char *errbuf, size_t errsize)
{
	bool seen[IMPORT_COL_COUNT] = { false };
	char name[64];

	for (size_t i = 0; i < n; i++) {
		int col = -1;

		column_name(f[i], name, sizeof(name));
		for (int c = 0; c < IMPORT_COL_COUNT; c++) {
			if (strcmp(name, import_col_names[c]) == 0)
				col = c;
		}
		if (col < 0) {
			char esc[40];
			size_t o = 0;

			/* the header is the admin's, but keep it printable */
			for (const char *p = f[i]; *p != '\0' &&
			    o + 1 < sizeof(esc); p++)
				esc[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
			esc[o] = '\0';
			snprintf(errbuf, errsize, "header: unknown column "
			    "\"%s\" (the columns are " IMPORT_COLUMNS ")", esc);
			return -1;
		}
		if (seen[col]) {
			snprintf(errbuf, errsize, "header: column %s appears "
			    "twice", import_col_names[col]);
			return -1;
		}
		seen[col] = true;
		fmt->col_of[i] = col;
	}
	fmt->delim = delim;
	fmt->header = true;
	fmt->columns = n;
	return 0;
}

int
import_csv_detect(const char *line, size_t len,
    struct import_csv_format *fmt_r, char *errbuf, size_t errsize)
{
	size_t counts[3], best = 0;
	char *f[CTL_CSV_FIELDS_MAX];
	char name[16];
	const char *why;
	size_t n;

	memset(fmt_r, 0, sizeof(*fmt_r));
	count_delims(line, len, counts);
	for (size_t d = 1; d < N_ELEMENTS(delims); d++) {
		if (counts[d] > counts[best])
			best = d;
	}
	/* A header's first field is "user"; the delimiter is the one found
	   most often in it (a lone "user" is a header too). */
	if (ctl_csv_split(line, len, delims[best], f, &n, &why) == 0) {
		int ret = 1;

		if (strcmp(column_name(f[0], name, sizeof(name)),
		    "user") == 0)
			ret = read_header(delims[best], f, n, fmt_r, errbuf,
			    errsize);
		free_fields(f, n);
		if (ret <= 0)
			return ret;
	}
	fmt_r->delim = delims[best];
	fmt_r->header = false;
	fmt_r->columns = IMPORT_COL_COUNT;
	for (int c = 0; c < IMPORT_COL_COUNT; c++)
		fmt_r->col_of[c] = c;
	return 0;
}

int
import_csv_split(const struct import_csv_format *fmt, const char *line,
    size_t len, char *cols_r[IMPORT_COL_COUNT], const char **error_r,
    const char **column_r)
{
	char *f[CTL_CSV_FIELDS_MAX];
	size_t n;

	*column_r = NULL;
	for (int c = 0; c < IMPORT_COL_COUNT; c++)
		cols_r[c] = NULL;
	if (ctl_csv_split(line, len, fmt->delim, f, &n, error_r) < 0)
		return -1;
	if (n > fmt->columns) {
		free_fields(f, n);
		*error_r = fmt->header ? "more fields than the header has "
		    "columns" : "more columns than " IMPORT_COLUMNS;
		return -1;
	}
	if (n == 1 && fmt->columns > 1) {
		for (size_t d = 0; d < N_ELEMENTS(delims); d++) {
			if (delims[d] != fmt->delim &&
			    strchr(f[0], delims[d]) != NULL) {
				free_fields(f, n);
				*error_r = delims[d] == ';' ? "one column "
				    "only, with ';' in it: the file mixes "
				    "delimiters (use one; a header line "
				    "\"user;...\" declares ';')" : "one column "
				    "only, with another delimiter in it: the "
				    "file mixes delimiters";
				*column_r = import_col_names[fmt->col_of[0]];
				return -1;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		cols_r[fmt->col_of[i]] = f[i];
	return 0;
}

void
import_csv_free(char *cols[IMPORT_COL_COUNT])
{
	for (int c = 0; c < IMPORT_COL_COUNT; c++) {
		if (cols[c] != NULL) {
			secure_zero(cols[c], strlen(cols[c]));
			free(cols[c]);
			cols[c] = NULL;
		}
	}
}
