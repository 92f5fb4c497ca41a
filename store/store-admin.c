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
store_space(struct store *store, struct store_space *space_r,
    const char **error_r)
{
	MDB_envinfo info;
	MDB_stat st;
	struct statvfs vfs;
	struct stat fst;
	int fd, rc;

	memset(space_r, 0, sizeof(*space_r));
	if ((rc = mdb_env_info(store->env, &info)) != 0 ||
	    (rc = mdb_env_stat(store->env, &st)) != 0 ||
	    (rc = mdb_env_get_fd(store->env, &fd)) != 0) {
		if (error_r != NULL)
			*error_r = mdb_strerror(rc);
		return -1;
	}
	if (fstat(fd, &fst) < 0 || fstatvfs(fd, &vfs) < 0) {
		if (error_r != NULL)
			*error_r = strerror(errno);
		return -1;
	}
	space_r->map_size = info.me_mapsize;
	space_r->used_bytes = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	space_r->file_bytes = (uint64_t)fst.st_size;
	space_r->disk_free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	space_r->readers_used = info.me_numreaders;
	space_r->readers_max = info.me_maxreaders;
	return 0;
}

int
store_backup_fd(struct store *store, int fd, char *errbuf, size_t errsize)
{
	int rc;

	/* MDB_CP_COMPACT walks the B-trees in one read snapshot and writes
	   only pages in use, renumbered: a consistent copy that is no
	   larger than the data. Writers go on meanwhile. */
	rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
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
