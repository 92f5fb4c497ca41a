#include "mail-message.h"

#include <stdlib.h>
#include <strings.h>

#include "arena.h"

void
mail_message_free(struct mail_message **msgp)
{
	struct mail_message *msg;

	if (msgp == NULL || *msgp == NULL)
		return;
	msg = *msgp;
	arena_free(&msg->arena);
	free(msg->parts);
	free(msg);
	*msgp = NULL;
}

bool
mail_part_is_type(const struct mail_part *part, const char *type,
    const char *subtype)
{
	if (strcasecmp(part->type, type) != 0)
		return false;
	return subtype == NULL || strcasecmp(part->subtype, subtype) == 0;
}

const char *
mail_part_param(const struct mail_part *part, const char *name)
{
	for (uint32_t i = 0; i < part->nparams; i++) {
		if (strcasecmp(part->params[i].name, name) == 0)
			return part->params[i].value;
	}
	return NULL;
}

int
mail_section_path_parse(const char *s, size_t len, uint32_t *path,
    size_t path_max, size_t *n_r, const char **error_r)
{
	size_t n = 0, i = 0;

	*n_r = 0;
	if (len == 0) {
		*error_r = "empty part path";
		return -1;
	}
	while (i < len) {
		uint64_t num = 0;
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			num = num * 10 + (uint64_t)(s[i] - '0');
			if (num > UINT32_MAX) {
				*error_r = "part number too large";
				return -1;
			}
			i++;
		}
		if (i == start || num == 0) {
			*error_r = "bad part number";
			return -1;
		}
		if (n == path_max) {
			*error_r = "part path too deep";
			return -1;
		}
		path[n++] = (uint32_t)num;
		if (i < len) {
			if (s[i] != '.' || i + 1 == len) {
				*error_r = "bad part path";
				return -1;
			}
			i++;
		}
	}
	*n_r = n;
	return 0;
}

static uint32_t
nth_child(const struct mail_message *msg, uint32_t idx, uint32_t n)
{
	uint32_t c = msg->parts[idx].first_child;

	while (c != MAIL_NONE && --n > 0)
		c = msg->parts[c].next_sibling;
	return c;
}

int
mail_section_find(const struct mail_message *msg, const uint32_t *path,
    size_t npath, uint32_t *index_r)
{
	uint32_t cur = 0;

	for (size_t i = 0; i < npath; i++) {
		const struct mail_part *p = &msg->parts[cur];
		uint32_t n = path[i];

		if (i > 0 && (p->flags & MAIL_PART_MESSAGE) != 0) {
			/* Step into the encapsulated message. */
			cur = p->first_child;
			p = &msg->parts[cur];
			if ((p->flags & MAIL_PART_MULTIPART) == 0) {
				if (n != 1)
					return -1;
				continue;
			}
		} else if ((p->flags & MAIL_PART_MULTIPART) == 0) {
			/* A non-multipart message has only part 1, itself. */
			if (i != 0 || n != 1)
				return -1;
			continue;
		}
		cur = nth_child(msg, cur, n);
		if (cur == MAIL_NONE)
			return -1;
	}
	*index_r = cur;
	return 0;
}

int
mail_section_range(const struct mail_message *msg, const uint32_t *path,
    size_t npath, enum mail_section_kind kind, uint64_t *off_r,
    uint64_t *len_r, const char **error_r)
{
	const struct mail_part *p;
	uint32_t idx;

	if (mail_section_find(msg, path, npath, &idx) < 0) {
		*error_r = "no such part";
		return -1;
	}
	p = &msg->parts[idx];
	switch (kind) {
	case MAIL_SECTION_PART:
		if (npath == 0) {
			*off_r = 0;
			*len_r = msg->size;
		} else {
			*off_r = p->body_off;
			*len_r = p->body_len;
		}
		return 0;
	case MAIL_SECTION_MIME:
		if (npath == 0) {
			*error_r = "MIME needs a part number";
			return -1;
		}
		*off_r = p->hdr_off;
		*len_r = p->hdr_len;
		return 0;
	case MAIL_SECTION_HEADER:
	case MAIL_SECTION_TEXT:
		if (npath > 0) {
			if ((p->flags & MAIL_PART_MESSAGE) == 0) {
				*error_r = "part is not message/rfc822";
				return -1;
			}
			p = &msg->parts[p->first_child];
		}
		if (kind == MAIL_SECTION_HEADER) {
			*off_r = p->hdr_off;
			*len_r = p->hdr_len;
		} else {
			*off_r = p->body_off;
			*len_r = p->body_len;
		}
		return 0;
	}
	*error_r = "bad section kind";
	return -1;
}

void
mail_range_partial(uint64_t off, uint64_t len, uint64_t origin,
    uint64_t count, uint64_t *off_r, uint64_t *len_r)
{
	if (origin >= len) {
		*off_r = off + len;
		*len_r = 0;
		return;
	}
	*off_r = off + origin;
	*len_r = len - origin < count ? len - origin : count;
}

time_t
mail_message_internaldate(const struct mail_message *msg, time_t fallback,
    int *tz_min_r)
{
	const struct mail_envelope *env =
	    msg->nparts > 0 ? msg->parts[0].envelope : NULL;

	*tz_min_r = 0;
	if (env != NULL && env->received_valid) {
		*tz_min_r = env->received_tz_min;
		return (time_t)env->received_time;
	}
	if (env != NULL && env->date_valid) {
		*tz_min_r = env->date_tz_min;
		return (time_t)env->date_time;
	}
	return fallback;
}
