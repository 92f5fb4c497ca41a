/*
 * arena — per-command scratch memory, freed all at once.
 *
 * Allocations stay valid until arena_reset() or arena_free(). A session
 * resets its arena when a command completes, so a command's temporaries
 * never leak and never need individual frees.
 */
#ifndef POPGATE_ARENA_H
#define POPGATE_ARENA_H

#include <stddef.h>

struct arena;

/* chunk_size: size of each block requested from malloc (0: 4 KiB). */
struct arena *arena_new(size_t chunk_size);
/* Frees everything and sets *ap to NULL. Accepts NULL and *ap == NULL. */
void arena_free(struct arena **ap);
/* Frees every allocation; keeps the first block for reuse. */
void arena_reset(struct arena *a);
/* 16-byte aligned; never returns NULL (aborts on out of memory). */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
/* Bytes currently handed out (for limits and tests). */
size_t arena_used(const struct arena *a);

#endif
