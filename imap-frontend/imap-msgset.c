#include "imap-msgset.h"

#include <string.h>

#include "arena.h"
#include "imap-parse.h"
#include "imap-seqset.h"
#include "imap-session.h"

int
imap_msgset_parse_in(struct imap_session *s, struct arena *a,
    const struct imap_arg *arg, bool uid, struct imap_msgset *set_r,
    const char **error_r)
{
	struct imap_selected *sel = s->sel;
	struct imap_seqset_spec spec;
	struct imap_seqset set;
	const char *str;
	uint64_t total = 0;
	size_t n = 0;

	memset(&spec, 0, sizeof(spec));
	memset(set_r, 0, sizeof(*set_r));
	if (imap_arg_atom_equals(arg, "$")) {
		/* SEARCHRES (RFC 5182 2.2): the saved result, what of it the
		 * view still has, whether the command is UID or not */
		set_r->idx = arena_alloc(a, (sel->count + 1) *
		    sizeof(uint32_t));
		for (uint32_t i = 0; i < sel->count; i++)
			if (imap_seqset_contains(&sel->saved, sel->uids[i]))
				set_r->idx[n++] = i;
		set_r->count = n;
		return 0;
	}
	if (!imap_arg_get_atom(arg, &str)) {
		*error_r = "Invalid message set";
		return -1;
	}
	if (imap_seqset_parse(str, strlen(str), &spec, error_r) != 0)
		return -1;
	imap_seqset_init(&set);
	if (!uid) {
		imap_seqset_resolve(&spec, sel->count, &set);
		imap_seqset_spec_free(&spec);
		if (sel->count == 0 || imap_seqset_max(&set) > sel->count) {
			imap_seqset_free(&set);
			*error_r = "Invalid sequence number (above EXISTS)";
			return -1;
		}
		total = imap_seqset_count(&set);
		set_r->idx = arena_alloc(a, total * sizeof(uint32_t));
		for (size_t i = 0; i < set.count; i++)
			for (uint64_t q = set.ranges[i].lo;
			    q <= set.ranges[i].hi; q++)
				set_r->idx[n++] = (uint32_t)q - 1;
	} else {
		uint32_t maxuid = sel->count > 0 ? sel->uids[sel->count - 1] : 0;

		imap_seqset_resolve(&spec, maxuid, &set);
		imap_seqset_spec_free(&spec);
		set_r->idx = arena_alloc(a, (sel->count + 1) * sizeof(uint32_t));
		/* Walk the view and the ranges together: both ascending. */
		for (size_t i = 0, r = 0; i < sel->count && r < set.count;) {
			uint32_t u = sel->uids[i];

			if (u < set.ranges[r].lo)
				i++;
			else if (u > set.ranges[r].hi)
				r++;
			else
				set_r->idx[n++] = (uint32_t)i++;
		}
	}
	imap_seqset_free(&set);
	set_r->count = n;
	return 0;
}

int
imap_msgset_parse(struct imap_session *s, const struct imap_arg *arg,
    bool uid, struct imap_msgset *set_r, const char **error_r)
{
	return imap_msgset_parse_in(s, s->server->scratch, arg, uid, set_r,
	    error_r);
}

void
imap_msgset_ranges(struct imap_session *s, const struct imap_msgset *set,
    struct store_uid_range **ranges_r, size_t *count_r)
{
	const uint32_t *uids = s->sel->uids;
	struct store_uid_range *r;
	size_t n = 0;

	r = arena_alloc(s->server->scratch, (set->count + 1) * sizeof(*r));
	for (size_t i = 0; i < set->count; i++) {
		uint32_t u = uids[set->idx[i]];

		if (n > 0 && r[n - 1].last + 1 == u)
			r[n - 1].last = u;
		else {
			r[n].first = u;
			r[n].last = u;
			n++;
		}
	}
	*ranges_r = r;
	*count_r = n;
}
