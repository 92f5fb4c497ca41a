/*
 * import-csv — the file format of the `import` command (level 1, pure).
 *
 * An import file is CSV as spreadsheets write it: RFC 4180 quoting,
 * CRLF or LF line ends, maybe a UTF-8 byte-order mark ("CSV UTF-8" from
 * Excel), fields separated by ',' — or by ';' (spreadsheets in locales
 * whose decimal mark is a comma) or a tab. The first non-empty line
 * decides:
 *
 *  - a header, when its first field is "user": the delimiter is the one
 *    that splits it, and the names give the column order (any order, any
 *    subset that includes user; an unknown or repeated name refuses the
 *    whole file, naming it);
 *  - otherwise the columns in their documented order, separated by
 *    whichever of ',' ';' and tab the line holds most of (outside quotes).
 *
 * A line whose single field contains the other common delimiter is
 * refused with a message that says so, rather than read as a user name.
 */
#ifndef POPGATE_GATEWAY_IMPORT_CSV_H
#define POPGATE_GATEWAY_IMPORT_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/control-proto.h"

enum import_col {
	IMPORT_COL_USER = 0,
	IMPORT_COL_USER_PASSWORD,
	IMPORT_COL_HOST,
	IMPORT_COL_PORT,
	IMPORT_COL_TLS,
	IMPORT_COL_LOGIN,
	IMPORT_COL_PASSWORD,
	IMPORT_COL_MODE,
	IMPORT_COL_FOLDER,
	IMPORT_COL_INTERVAL,
	IMPORT_COL_ACCOUNT,
	/* issue 16: trust, mechanism and OAuth, after the original eleven
	   so older files keep their meaning */
	IMPORT_COL_AUTH,
	IMPORT_COL_CA_FILE,
	IMPORT_COL_CA_ONLY,
	IMPORT_COL_FINGERPRINT,
	IMPORT_COL_ALLOW_CLEARTEXT,
	IMPORT_COL_OAUTH_PROVIDER,
	IMPORT_COL_COUNT
};

/* "user", "user_password", ... in enum order. */
extern const char *const import_col_names[IMPORT_COL_COUNT];
/* The documented order, for messages. */
#define IMPORT_COLUMNS "user,user_password,host,port,tls,login,password," \
	"mode,folder,interval,account,auth,ca_file,ca_only,fingerprint," \
	"allow_cleartext,oauth_provider"

struct import_csv_format {
	char delim;		/* ',' ';' or '\t' */
	bool header;		/* the first non-empty line names columns */
	size_t columns;		/* fields a line may have at most */
	int col_of[CTL_CSV_FIELDS_MAX];	/* field index -> enum import_col */
};

/* Bytes of a UTF-8 byte-order mark at the start of text (3 or 0). */
size_t import_csv_bom(const char *text, size_t len);

/*
 * Decides the format from the first non-empty line (without its line
 * end). -1 with a message in errbuf when it is a header that cannot be
 * used (unknown or repeated column, no user column, bad quoting).
 */
int import_csv_detect(const char *line, size_t len,
    struct import_csv_format *fmt_r, char *errbuf, size_t errsize);

/*
 * Splits one data line into cols_r[IMPORT_COL_COUNT]: a new string per
 * column the line has, NULL for the others. On -1 nothing is allocated
 * and *error_r (static text) says why, *column_r the column at fault or
 * NULL. Free the columns with import_csv_free (which wipes them: they
 * hold passwords).
 */
int import_csv_split(const struct import_csv_format *fmt, const char *line,
    size_t len, char *cols_r[IMPORT_COL_COUNT], const char **error_r,
    const char **column_r);
void import_csv_free(char *cols[IMPORT_COL_COUNT]);

#endif
