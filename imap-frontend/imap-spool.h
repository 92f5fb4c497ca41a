/*
 * imap-spool — the message of an APPEND on disk while it arrives (level 3).
 *
 * An APPEND's literal never sits whole in memory: the parser streams it
 * (imap-parse.h, the literal sink) into a spool file under the data
 * directory, and the APPEND job maps that file read-only for the MIME
 * parse on a worker and the copy into LMDB on the writer. Memory per
 * unfinished APPEND is then a file descriptor and this struct, whatever
 * the message's size; the page cache holds the bytes and may drop them.
 *
 * Why a spool and not the store: LMDB has one write transaction at a time
 * (the writer's), so bytes still arriving over the network cannot go into
 * it without holding every other user's commit; and an APPEND may fail
 * (quota, a client that goes away) after its bytes came.
 *
 * Cleanup on every path: the file is created without a name (O_TMPFILE),
 * or, where the file system lacks it, named and unlinked at once, so its
 * space is freed when the descriptor closes: on success, on any error,
 * and when the process dies. imap_spool_prepare_dir() removes what a crash
 * between create and unlink could leave (files named "append.*").
 *
 * Threads: open, write and free run on the loop; the mapping is read by
 * a worker and the writer while the APPEND job that owns the spool runs
 * (the job is freed on the loop). The byte count is process-wide and
 * atomic.
 */
#ifndef POPGATE_IMAP_SPOOL_H
#define POPGATE_IMAP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_spool;

/* Free disk space a new spool file leaves at least (beside its own
 * size): APPENDs never take the space the store needs to commit. */
#define IMAP_SPOOL_DISK_RESERVE (64ull * 1024 * 1024)

/* Creates dir (mode 0700) if missing and removes stale spool files from
 * a crash; *removed_r: how many. 0, or -1 with *error_r. */
int imap_spool_prepare_dir(const char *dir, unsigned *removed_r,
    const char **error_r);

/* A new spool file in dir for a message of size bytes. Fails (NULL,
 * static *error_r) when the file system has less free space than size +
 * IMAP_SPOOL_DISK_RESERVE or the file cannot be made. */
struct imap_spool *imap_spool_open(const char *dir, uint64_t size,
    const char **error_r);

/* Appends bytes (never more than the announced size in all): 0, or -1
 * with *error_r (disk full, I/O error). */
int imap_spool_write(struct imap_spool *sp, const void *data, size_t n,
    const char **error_r);

/* Maps the whole (complete) file read-only; the pointer stays valid until
 * imap_spool_free(). NULL with *error_r on failure. */
const char *imap_spool_map(struct imap_spool *sp, const char **error_r);

/* Bytes written so far. */
uint64_t imap_spool_written(const struct imap_spool *sp);

/* Unmaps, closes (the space is freed) and frees; accepts NULL. */
void imap_spool_free(struct imap_spool **spp);

/* Bytes in spool files of this process now (for status and tests). */
uint64_t imap_spool_bytes_total(void);
/* Spool files open now. */
uint64_t imap_spool_files_total(void);

#endif
