/* about — see about.h. */
#include "about.h"

#include <event2/event.h>
#include <jansson.h>
#include <lmdb.h>
#include <openssl/crypto.h>

#include "version.h"

void
about_print_version(FILE *f, const char *prog)
{
	int major, minor, patch;

	(void)mdb_version(&major, &minor, &patch);
	fprintf(f, "%s %s\n", prog, popgate_version_long());
	fprintf(f, "  libevent %s, %s, LMDB %d.%d.%d, jansson %s\n",
	    event_get_version(), OpenSSL_version(OPENSSL_VERSION), major,
	    minor, patch, jansson_version_str());
}
