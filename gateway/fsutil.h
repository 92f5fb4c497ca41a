/*
 * fsutil — small file-system steps the gateway's file writers share
 * (backup, user export).
 */
#ifndef POPGATE_GATEWAY_FSUTIL_H
#define POPGATE_GATEWAY_FSUTIL_H

/* fsync()s the directory that holds path, so that a file created or
 * renamed there survives a crash; errors are ignored (best effort). */
void fs_sync_parent_dir(const char *path);

#endif
