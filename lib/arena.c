#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#define ARENA_ALIGN 16

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	/* data follows, aligned */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
	struct arena_block *head;
	size_t chunk_size;
	size_t used;
};

static struct arena_block *
block_new(size_t size)
{
	struct arena_block *b = xmalloc(sizeof(*b) + size);

	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

struct arena *
arena_new(size_t chunk_size)
{
	struct arena *a = xcalloc(1, sizeof(*a));

	a->chunk_size = chunk_size == 0 ? 4096 : chunk_size;
	a->head = block_new(a->chunk_size);
	return a;
}

void
arena_free(struct arena **ap)
{
	struct arena_block *b, *next;

	if (ap == NULL || *ap == NULL)
		return;
	for (b = (*ap)->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(*ap);
	*ap = NULL;
}

void
arena_reset(struct arena *a)
{
	struct arena_block *b, *next, *last = NULL;

	/* the first block allocated is the last in the list: keep it */
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (next == NULL)
			last = b;
		else
			free(b);
	}
	a->head = last;
	a->head->used = 0;
	a->used = 0;
}

void *
arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head;
	size_t rounded;

	PG_ASSERT(size < SIZE_MAX / 2);
	rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (rounded == 0)
		rounded = ARENA_ALIGN;
	if (b->size - b->used < rounded) {
		size_t bs = rounded > a->chunk_size ? rounded : a->chunk_size;

		b = block_new(bs);
		b->next = a->head;
		a->head = b;
	}
	b->used += rounded;
	a->used += rounded;
	return b->data + b->used - rounded;
}

void *
arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);

	memset(p, 0, size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *d = arena_alloc(a, len + 1);

	if (len > 0)
		memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

size_t
arena_used(const struct arena *a)
{
	return a->used;
}
