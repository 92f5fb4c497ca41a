/*
 * imap-seqset — IMAP sequence sets (RFC 3501 sequence-set, level 1: pure).
 *
 * Two forms:
 *  - struct imap_seqset: a normalised set of uint32 numbers >= 1, kept as
 *    sorted, disjoint, non-adjacent ranges; membership in O(log n).
 *  - struct imap_seqset_spec: what the client sent, with '*' unresolved.
 *    Its star-free elements are already normalised in .fixed; every
 *    element containing '*' ("*", "n:*", "*:n", "*:*") covers the range
 *    between n and the current maximum, so together they are kept as two
 *    numbers. imap_seqset_resolve() turns a spec into a set given the
 *    current maximum (EXISTS for sequence numbers, the highest UID for
 *    UIDs), so a spec can be kept and re-resolved (SEARCHRES, IDLE).
 *
 * Syntax: "0" is invalid; numbers are 1..4294967295 (4294967296 and more
 * are invalid); ranges may be reversed ("5:1" = "1:5"); no empty elements,
 * no spaces, no signs. "$" (RFC 5182) is not parsed here: the caller
 * checks for it first. The size of a set is bounded by the atom/line
 * limits of the parser (each element costs at least 2 bytes of input).
 *
 * Memory: the arrays are malloc'd and owned by the struct; _free releases
 * them. A zeroed struct is a valid empty set.
 */
#ifndef POPGATE_IMAP_SEQSET_H
#define POPGATE_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

struct imap_seq_range {
	uint32_t lo;
	uint32_t hi;	/* lo <= hi */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
	size_t cap;
};

struct imap_seqset_spec {
	struct imap_seqset fixed;	/* the elements without '*' */
	bool has_star;
	/* Over all elements with '*': the smallest and largest number
	 * paired with '*' (UINT32_MAX / 0 when only bare '*' was sent). */
	uint32_t star_lo;
	uint32_t star_hi;
};

void imap_seqset_init(struct imap_seqset *set);
void imap_seqset_free(struct imap_seqset *set);
void imap_seqset_clear(struct imap_seqset *set);	/* empty, keep memory */
/* Adds lo..hi (either order; 0 is ignored, so 0..5 adds 1..5). Cheap when
 * ranges are added in ascending order (building COPYUID/VANISHED sets). */
void imap_seqset_add_range(struct imap_seqset *set, uint32_t lo, uint32_t hi);
void imap_seqset_add(struct imap_seqset *set, uint32_t n);
/* Adds every range of src to set. */
void imap_seqset_merge(struct imap_seqset *set, const struct imap_seqset *src);
/* O(log ranges). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Numbers in the set (up to 2^32 - 1). */
uint64_t imap_seqset_count(const struct imap_seqset *set);
bool imap_seqset_is_empty(const struct imap_seqset *set);
/* Smallest / largest member; 0 when empty. */
uint32_t imap_seqset_min(const struct imap_seqset *set);
uint32_t imap_seqset_max(const struct imap_seqset *set);
/* Appends the compact form, e.g. "1:3,5,7:9" (nothing when empty). */
void imap_seqset_format(const struct imap_seqset *set, struct strbuf *out);

/*
 * Parses s[0..len) into *spec_r (which must be zeroed or freed; it is
 * overwritten). 0 ok; -1 with a static *error_r and *spec_r left empty.
 */
int imap_seqset_parse(const char *s, size_t len,
    struct imap_seqset_spec *spec_r, const char **error_r);
void imap_seqset_spec_free(struct imap_seqset_spec *spec);
/*
 * Resolves '*' to max and writes the normalised set to *set_r (cleared
 * first). Every element with '*' covers min(n, max)..max(n, max); with
 * max == 0 (empty mailbox) a bare '*' covers nothing and "n:*" covers
 * 1..n. Numbers above max stay in the set: the caller decides whether
 * that is an error (sequence numbers) or ignored (UIDs).
 */
void imap_seqset_resolve(const struct imap_seqset_spec *spec, uint32_t max,
    struct imap_seqset *set_r);
/* Membership without resolving the whole spec: O(log ranges). */
bool imap_seqset_spec_contains(const struct imap_seqset_spec *spec,
    uint32_t max, uint32_t n);

#endif
