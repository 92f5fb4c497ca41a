/* imap-spool — APPEND messages on disk while they arrive; see the header. */
#include "imap-spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

/* Name prefix of the fallback's short-lived named files. */
#define SPOOL_PREFIX "append."

struct imap_spool {
	int fd;
	uint64_t size;		/* announced */
	uint64_t written;
	void *map;
};

static _Atomic uint64_t spool_bytes;
static _Atomic uint64_t spool_files;

int
imap_spool_prepare_dir(const char *dir, unsigned *removed_r,
    const char **error_r)
{
	DIR *d;
	struct dirent *de;

	*removed_r = 0;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*error_r = "cannot create the spool directory";
		return -1;
	}
	d = opendir(dir);
	if (d == NULL) {
		*error_r = "cannot open the spool directory";
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, SPOOL_PREFIX,
		    sizeof(SPOOL_PREFIX) - 1) != 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			(*removed_r)++;
	}
	closedir(d);
	return 0;
}

static int
spool_create(const char *dir)
{
	char path[4096];
	int fd;

#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -1;
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/" SPOOL_PREFIX "XXXXXX",
	    dir) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		(void)unlink(path);
	return fd;
}

struct imap_spool *
imap_spool_open(const char *dir, uint64_t size, const char **error_r)
{
	struct imap_spool *sp;
	struct statvfs sv;
	int fd;

	if (statvfs(dir, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize <
	    size + IMAP_SPOOL_DISK_RESERVE) {
		*error_r = "Not enough disk space for this message";
		return NULL;
	}
	fd = spool_create(dir);
	if (fd < 0) {
		log_error("imap event=spool_error dir=%s error=\"%s\"", dir,
		    strerror(errno));
		*error_r = "Cannot store this message now";
		return NULL;
	}
	sp = xcalloc(1, sizeof(*sp));
	sp->fd = fd;
	sp->size = size;
	atomic_fetch_add(&spool_files, 1);
	return sp;
}

int
imap_spool_write(struct imap_spool *sp, const void *data, size_t n,
    const char **error_r)
{
	const char *p = data;

	PG_ASSERT(sp->written + n <= sp->size);
	while (n > 0) {
		ssize_t w = write(sp->fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			*error_r = errno == ENOSPC || errno == EDQUOT ?
			    "Not enough disk space for this message" :
			    "Cannot store this message now";
			log_error("imap event=spool_error error=\"%s\"",
			    strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
		sp->written += (uint64_t)w;
		atomic_fetch_add(&spool_bytes, (uint64_t)w);
	}
	return 0;
}

const char *
imap_spool_map(struct imap_spool *sp, const char **error_r)
{
	if (sp->map != NULL)
		return sp->map;
	if (sp->written == 0) {
		*error_r = "Empty message";
		return NULL;
	}
	sp->map = mmap(NULL, sp->written, PROT_READ, MAP_SHARED, sp->fd, 0);
	if (sp->map == MAP_FAILED) {
		sp->map = NULL;
		log_error("imap event=spool_error error=\"mmap: %s\"",
		    strerror(errno));
		*error_r = "Cannot store this message now";
		return NULL;
	}
	return sp->map;
}

uint64_t
imap_spool_written(const struct imap_spool *sp)
{
	return sp->written;
}

void
imap_spool_free(struct imap_spool **spp)
{
	struct imap_spool *sp = *spp;

	if (sp == NULL)
		return;
	*spp = NULL;
	if (sp->map != NULL)
		munmap(sp->map, sp->written);
	close(sp->fd);
	atomic_fetch_sub(&spool_bytes, sp->written);
	atomic_fetch_sub(&spool_files, 1);
	free(sp);
}

uint64_t
imap_spool_bytes_total(void)
{
	return atomic_load(&spool_bytes);
}

uint64_t
imap_spool_files_total(void)
{
	return atomic_load(&spool_files);
}
