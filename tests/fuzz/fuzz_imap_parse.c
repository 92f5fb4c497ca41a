/*
 * Fuzz target for imap-frontend/imap-parse (and, on every parsed command,
 * the fetch-att, search, seqset, mailbox-name and NOTIFY parsers).
 *
 * Input: byte 0 selects limits (bit 0: tiny), authentication (bit 1), a
 * literal sink (bit 2: APPEND messages streamed to it, some refused or
 * failing mid-way; every handle must be discarded by the end);
 * byte 1 seeds the split pattern; the rest is the client's byte stream.
 * The stream is fed whole and again in pseudo-random slices of 1..16
 * bytes; the two result transcripts (hashed) must be identical, so any
 * split-dependent behaviour traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "imap-frontend/imap-parse.h"
#include "imap-frontend/imap-parse-notify.h"
#include "imap-frontend/imap-search-match.h"
#include "imap-frontend/imap-seqset.h"
#include "imap-frontend/imap-utf7.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x100000001b3ull;
	return h;
}

static uint64_t
hash_bytes(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = mix(h, (unsigned char)s[i]);
	return h;
}

static uint64_t
hash_arg(uint64_t h, const struct imap_arg *a, struct arena *arena)
{
	h = mix(h, (uint64_t)a->type + 1000);
	if (a->type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < a->list_count; i++)
			h = hash_arg(h, &a->list[i], arena);
		return mix(h, 2000);
	}
	h = hash_bytes(h, a->str, a->len);
	h = mix(h, a->literal_plus * 4u + a->literal8 * 2u + a->has_nul);
	h = mix(h, a->stream != NULL ? a->stream_size + 1 : 0);
	if (a->str[a->len] != '\0')
		abort();

	/* Side parsers on whatever the client sent. */
	const char *error;
	if (a->type == IMAP_ARG_ATOM) {
		struct imap_fetch_att att;
		struct imap_seqset_spec spec;
		struct imap_seqset set = { 0 };
		if (imap_parse_fetch_att(a, arena, &att, &error) == 0)
			h = hash_bytes(h, att.response_name,
			    strlen(att.response_name));
		if (imap_seqset_parse(a->str, a->len, &spec, &error) == 0) {
			imap_seqset_resolve(&spec, 1000, &set);
			h = mix(h, imap_seqset_count(&set));
			imap_seqset_free(&set);
			imap_seqset_spec_free(&spec);
		}
	}
	struct strbuf sb = STRBUF_INIT;
	if (imap_mailbox_name_from_wire(a->str, a->len, &sb, &error) == 0)
		h = hash_bytes(h, sb.data, sb.len);
	strbuf_free(&sb);
	return h;
}

static uint64_t
hash_command(uint64_t h, const struct imap_command *cmd)
{
	struct arena *arena = arena_new(0);
	struct imap_search_program *prog;
	enum imap_search_error serr;
	const char *error;
	struct imap_fetch_att *atts;
	size_t n;

	h = hash_bytes(h, cmd->tag, strlen(cmd->tag));
	h = hash_bytes(h, cmd->name, strlen(cmd->name));
	h = mix(h, cmd->size);
	for (size_t i = 0; i < cmd->arg_count; i++)
		h = hash_arg(h, &cmd->args[i], arena);
	if (imap_search_parse(cmd->args, cmd->arg_count, arena, &prog, &serr,
	    &error) == 0) {
		struct imap_search_message m = {
			.seq = 3, .uid = 7, .max_seq = 10, .max_uid = 20,
			.flags = 5, .size = 100, .modseq = 9,
		};
		if (!prog->needs_body && !prog->needs_headers)
			h = mix(h, (uint64_t)imap_search_match(prog, &m) + 7);
	}
	if (cmd->arg_count > 1 && imap_parse_fetch_atts(&cmd->args[1], arena,
	    &atts, &n, &error) == 0)
		h = mix(h, n);
	/* NOTIFY's filters, in both name encodings, and a match on them */
	for (int utf8 = 0; utf8 < 2; utf8++) {
		struct imap_notify_spec *spec;
		enum imap_notify_error code;

		if (imap_notify_parse(cmd->args, cmd->arg_count, utf8, &spec,
		    &code, &error) != 0) {
			h = mix(h, (uint64_t)code + 50);
			continue;
		}
		h = mix(h, spec->group_count * 64 + spec->fetch_count);
		h = mix(h, imap_notify_wants(spec, "INBOX/a", true, true,
		    IMAP_NOTIFY_EV_MESSAGE_NEW));
		imap_notify_spec_free(&spec);
	}
	arena_free(&arena);
	return h;
}

/* The sink: hashes what is streamed; refuses streams whose size is a
 * multiple of 7, fails those of a multiple of 5 after 100 bytes, and
 * refuses buffered literals over 50 bytes. */
struct fsink {
	uint64_t h;
	uint64_t written, fail_at;
	unsigned opened, discarded;
	int handle;
};

static enum imap_parse_error_code
fs_start(void *ctx, uint64_t size, bool stream, void **handle_r,
    const char **text_r)
{
	struct fsink *f = ctx;

	*text_r = "refused";
	if (!stream)
		return size > 50 ? IMAP_PARSE_ERR_LIMIT : IMAP_PARSE_ERR_NONE;
	if (size % 7 == 0)
		return IMAP_PARSE_ERR_OVERQUOTA;
	f->opened++;
	f->written = 0;
	f->fail_at = size % 5 == 0 ? 100 : UINT64_MAX;
	*handle_r = &f->handle;
	return IMAP_PARSE_ERR_NONE;
}

static enum imap_parse_error_code
fs_write(void *ctx, void *handle, const void *data, size_t n,
    const char **text_r)
{
	struct fsink *f = ctx;

	if (handle != &f->handle)
		abort();
	/* per byte, and none past fail_at: the hash does not depend on how
	   the input was split into writes */
	for (size_t i = 0; i < n && f->written < f->fail_at; i++) {
		f->h = mix(f->h, ((const unsigned char *)data)[i]);
		f->written++;
	}
	if (f->written >= f->fail_at) {
		*text_r = "full";
		return IMAP_PARSE_ERR_LIMIT;
	}
	return IMAP_PARSE_ERR_NONE;
}

static void
fs_discard(void *ctx, void *handle)
{
	struct fsink *f = ctx;

	if (handle != &f->handle)
		abort();
	f->discarded++;
}

static uint64_t
run(const uint8_t *data, size_t size, const struct imap_parse_limits *l,
    bool authed, bool sink, unsigned int seed)
{
	struct imap_parser *p = imap_parser_new(l);
	uint64_t h = 0xcbf29ce484222325ull;
	size_t off = 0;
	uint32_t rng = seed * 2654435761u + 1;
	struct fsink fs = { 0, 0, 0, 0, 0, 0 };

	if (sink)
		imap_parser_set_sink(p, &(struct imap_literal_sink){ &fs,
		    fs_start, fs_write, fs_discard });
	imap_parser_set_authenticated(p, authed);
	/* literal8 on for the authenticated runs: both grammars of '~' */
	imap_parser_set_literal8(p, authed);
	while (off < size) {
		size_t chunk = size - off;
		if (seed != 0) {
			rng = rng * 1103515245u + 12345u;
			chunk = 1 + (rng >> 16) % 16;
			if (chunk > size - off)
				chunk = size - off;
		}
		const uint8_t *d = data + off;
		size_t len = chunk;
		off += chunk;
		while (len > 0) {
			size_t used;
			const struct imap_command *cmd;
			enum imap_parse_result r = imap_parser_feed(p, d, len,
			    &used, &cmd);
			if (used > len)
				abort();
			d += used;
			len -= used;
			/* NEED_MORE depends on the split: not hashed. */
			if (r != IMAP_PARSE_NEED_MORE)
				h = mix(h, (uint64_t)r + 100);
			if (r == IMAP_PARSE_DONE)
				h = hash_command(h, cmd);
			else if (r == IMAP_PARSE_ERROR)
				h = mix(h, imap_parser_get_error(p)->code);
			else if (r == IMAP_PARSE_FATAL) {
				h = mix(h, imap_parser_get_error(p)->code);
				goto out;
			} else if (r == IMAP_PARSE_NEED_MORE && len != 0) {
				abort();
			}
		}
	}
out:
	imap_parser_free(&p);
	/* every stream the sink opened was discarded (none was taken) */
	if (fs.opened != fs.discarded)
		abort();
	return mix(h, fs.h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parse_limits l;

	if (size < 2)
		return 0;
	uint8_t mode = data[0], seed = data[1];
	data += 2;
	size -= 2;
	imap_parse_limits_default(&l);
	if (mode & 1) {
		l.max_line = 40;
		l.max_literal = 20;
		l.max_literal_preauth = 10;
		l.max_command = 100;
		l.max_depth = 3;
		l.max_args = 8;
		l.max_tag = 8;
		l.max_atom = 12;
		l.max_quoted = 10;
	}
	if (run(data, size, &l, mode & 2, mode & 4, 0) !=
	    run(data, size, &l, mode & 2, mode & 4, seed | 1u))
		abort();
	return 0;
}
