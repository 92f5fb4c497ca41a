/*
 * store-admin — what an admin needs of the store as a whole: its size and
 * the room left (for the metrics), and a consistent compacted copy taken
 * while it is in use (popgatectl backup).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store-private.h"

int
store_backup_fd(struct store *store, int fd, char *errbuf, size_t errsize)
{
	int rc;

	/* MDB_CP_COMPACT walks the B-trees in one read snapshot and writes
	   only pages in use, renumbered: a consistent copy that is no
	   larger than the data. Writers go on meanwhile. */
	/* its snapshot is inside the map gate like any other (the map
	   does not grow while a backup runs) */
	store_gate_enter(store);
	rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
	store_gate_leave(store);
	if (rc != 0) {
		snprintf(errbuf, errsize, "copy: %s", mdb_strerror(rc));
		return -1;
	}
	if (fsync(fd) < 0) {
		snprintf(errbuf, errsize, "fsync: %s", strerror(errno));
		return -1;
	}
	return 0;
}
