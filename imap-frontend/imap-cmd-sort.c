/* imap-cmd-sort — SORT (RFC 5256, with ESORT of RFC 5267) and THREAD
 * (ORDEREDSUBJECT, REFERENCES), and their UID forms.
 *
 * Both run as a SEARCH job on a worker (imap_search_submit: chunked,
 * each chunk on a fresh snapshot, other users' jobs in between): each
 * matching message's sort keys are read from the small record stored
 * with it at delivery (store_msg_sortkey, store/mail-sortkey.h) while
 * the chunk has it at hand; a message stored without one gets the same
 * record built from its cached structure (and, for THREAD=REFERENCES,
 * its References header). The sort or the threading then runs on the
 * worker after the last chunk, and the loop only writes the answer. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-fetch.h"
#include "imap-parse.h"
#include "imap-search-match.h"
#include "imap-session.h"
#include "imap-sort.h"
#include "imap-sortcache.h"
#include "log.h"
#include "store/mail-message.h"
#include "store/mail-serialize.h"
#include "store/mail-sortkey.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Block size of a SORT's key arena (on the worker). */
#define IMAP_SORT_ARENA_CHUNK (64 * 1024)

enum sort_kind { SORT_SORT, THREAD_ORDEREDSUBJECT, THREAD_REFERENCES };

struct sort_job {
	enum sort_kind kind;
	bool uid;
	struct imap_sort_criterion crit[IMAP_SORT_KEYS_MAX];
	size_t ncrit;
	bool has_return;	/* ESORT: RETURN (...) */
	unsigned ret;		/* IMAP_SEARCH_RETURN_* */
	bool need_env, need_refs;
	bool need_subject, need_addr;	/* which keys SORT compares */
	struct arena *a;	/* keys (worker) */
	struct arena *env_a;	/* one message's envelope (worker) */
	struct imap_sort_msg *msgs;
	size_t n, cap;
	uint32_t *sorted;	/* SORT: the answer's numbers, in order */
	size_t built;		/* messages without stored keys */
	/* SORT: the mailbox's ranks kept between commands (imap-sortcache.h;
	 * cache NULL: not used) */
	struct imap_sortcache *cache;
	uint32_t user_id, mailbox_id, uidvalidity;
	size_t view_count;
	struct imap_sortcache_gen *gen;	/* what the cache held at first */
	bool gen_taken;
	size_t gpos;			/* where the last lookup in gen ended */
	size_t *miss;			/* indexes in msgs of those gen lacks */
	size_t nmiss, miss_cap;
	size_t cached;			/* messages whose keys gen had */
	struct strbuf out;	/* THREAD: the response's body */
	struct strbuf tmp, rec;
};

static void
sort_job_free(void *ctx)
{
	struct sort_job *j = ctx;

	arena_free(&j->a);
	arena_free(&j->env_a);
	imap_sortcache_unref(&j->gen);
	free(j->miss);
	free(j->sorted);
	free(j->msgs);
	strbuf_free(&j->out);
	strbuf_free(&j->tmp);
	strbuf_free(&j->rec);
	free(j);
}

/* The unfolded References value of a message whose header block is
 * body[0..hdr_len): 1, 0 when it has none, -1 on error. Only the header
 * block is read (no parse of the message). */
static int
references(struct imap_msgview *v, const struct store_msg *m,
    uint64_t hdr_len, struct strbuf *out)
{
	const void *body;
	size_t size;
	const char *err;

	strbuf_reset(out);
	if (hdr_len == 0)
		return imap_msgview_header_value(v, "References", out);
	if (store_msg_body(v->r, v->user_id, v->mailbox_id, m->uid, &body,
	    &size, &err) != 0 || hdr_len > size)
		return -1;
	return mail_sortkey_references(body, (size_t)hdr_len, out) ? 1 : 0;
}

/* A message stored without its key record (before the store kept
 * them): the record built into j->rec from the root's envelope alone in
 * the cached blob (the whole tree costs several times more), else from
 * a parse of the message, and its header block's References. */
static void
build_keys(struct sort_job *j, struct imap_msgview *v,
    const struct store_msg *m)
{
	const struct mail_message *mm;
	const struct mail_envelope *env = NULL;
	struct mail_envelope blob_env;
	const void *blob;
	size_t blob_size;
	uint64_t hdr_len = 0;
	const char *err;
	bool refs;

	arena_reset(j->env_a);
	if (store_msg_structure(v->r, v->user_id, v->mailbox_id, m->uid,
	    &blob, &blob_size, &err) == 0 && blob_size > 0 &&
	    mail_blob_envelope(blob, blob_size, j->env_a, &blob_env,
	    &hdr_len, &err) == 0) {
		env = &blob_env;
	} else if ((mm = imap_msgview_message(v)) != NULL) {
		env = mm->parts[0].envelope;
		hdr_len = mm->parts[0].hdr_off == 0 ? mm->parts[0].hdr_len : 0;
	}
	/* only THREAD=REFERENCES reads the References header */
	refs = j->need_refs && references(v, m, hdr_len, &j->tmp) == 1;
	mail_sortkey_build(env, refs ? strbuf_str(&j->tmp) : NULL,
	    refs ? j->tmp.len : 0, &j->rec);
	j->built++;
}

static const char *
key_dup(struct sort_job *j, const char *s)
{
	return arena_strndup(j->a, s, strlen(s));
}

/* Worker: the keys of one matching message, from the record stored with
 * it (copied: the chunk's snapshot ends before the sort). */
static int
sort_hit(void *ctx, struct imap_msgview *v, const struct store_msg *m,
    uint32_t seq)
{
	struct sort_job *j = ctx;
	struct imap_sort_msg *k;
	struct mail_sortkey sk;
	const void *rec;
	size_t rec_size;
	const char *err;

	if (j->n == j->cap) {
		j->cap = j->cap == 0 ? 256 : j->cap * 2;
		j->msgs = xreallocarray(j->msgs, j->cap, sizeof(*j->msgs));
	}
	k = &j->msgs[j->n++];
	memset(k, 0, sizeof(*k));
	k->seq = seq;
	k->uid = m->uid;
	k->size = m->size;
	k->arrival = m->internaldate;
	k->sent = m->internaldate;
	k->subject = k->from = k->to = k->cc = "";
	if (!j->need_env)
		return 0;
	if (j->cache != NULL) {
		if (!j->gen_taken) {
			j->gen_taken = true;
			j->user_id = v->user_id;
			j->mailbox_id = v->mailbox_id;
			j->gen = imap_sortcache_get(j->cache, v->user_id,
			    v->mailbox_id, j->uidvalidity, j->view_count);
		}
		if (j->gen != NULL && imap_sortcache_find(j->gen, m->uid,
		    &j->gpos, &k->sent, k->rank)) {
			j->cached++;
			return 0;	/* no record read */
		}
		if (j->nmiss == j->miss_cap) {
			j->miss_cap = j->miss_cap == 0 ? 256 : j->miss_cap * 2;
			j->miss = xreallocarray(j->miss, j->miss_cap,
			    sizeof(*j->miss));
		}
		j->miss[j->nmiss++] = j->n - 1;
	}
	if (store_msg_sortkey(v->r, v->user_id, m->body_id, &rec, &rec_size,
	    &err) != 0 || mail_sortkey_read(rec, rec_size, &sk) != 0) {
		build_keys(j, v, m);
		if (mail_sortkey_read(j->rec.data, j->rec.len, &sk) != 0)
			return -1;	/* cannot happen: built here */
	}
	/* RFC 5256 2.2: a message without a valid Date: sorts by its
	   INTERNALDATE */
	if (sk.sent_valid)
		k->sent = sk.sent;
	if (j->need_addr) {
		k->from = key_dup(j, sk.from);
		k->to = key_dup(j, sk.to);
		k->cc = key_dup(j, sk.cc);
	}
	if (j->need_subject) {
		k->subject = key_dup(j, sk.subject);
		k->reply = sk.reply;
	}
	if (!j->need_refs)
		return 0;
	if (sk.msgid != NULL)
		k->msgid = key_dup(j, sk.msgid);
	k->nrefs = sk.nrefs;
	if (sk.nrefs > 0)
		k->refs = arena_alloc(j->a, sk.nrefs * sizeof(*k->refs));
	for (size_t i = 0; i < sk.nrefs; i++)
		k->refs[i] = key_dup(j, sk.refs[i]);
	return 0;
}

/* Worker: every message's ranks, from the cache's generation; the
 * messages it lacked are merged into a new one first, which the cache
 * then keeps (unless another SORT kept a newer one meanwhile). */
static void
rank_all(struct sort_job *j)
{
	struct imap_sortcache_msg *nm;
	struct imap_sortcache_gen *g;
	size_t pos = 0;
	int64_t sent;

	if (j->nmiss == 0)
		return;		/* every rank came from j->gen */
	nm = xreallocarray(NULL, j->nmiss, sizeof(*nm));
	for (size_t i = 0; i < j->nmiss; i++) {
		const struct imap_sort_msg *k = &j->msgs[j->miss[i]];

		nm[i].uid = k->uid;
		nm[i].sent = k->sent;
		nm[i].key[IMAP_SORT_RANK_SUBJECT] = k->subject;
		nm[i].key[IMAP_SORT_RANK_FROM] = k->from;
		nm[i].key[IMAP_SORT_RANK_TO] = k->to;
		nm[i].key[IMAP_SORT_RANK_CC] = k->cc;
	}
	g = imap_sortcache_merge(j->gen, nm, j->nmiss, j->user_id,
	    j->mailbox_id, j->uidvalidity);
	free(nm);
	/* the merge renumbered the old ranks: all of them from g */
	for (size_t i = 0; i < j->n; i++) {
		bool found = imap_sortcache_find(g, j->msgs[i].uid, &pos,
		    &sent, j->msgs[i].rank);

		PG_ASSERT(found);
	}
	imap_sortcache_publish(j->cache, j->gen, g);
	imap_sortcache_unref(&j->gen);
	j->gen = g;
}

/* Worker: SORT's answer as numbers in j->sorted. The messages (about
 * 100 bytes each) are read in order once; the permutation then picks
 * from a compact array of their numbers (random reads of the messages
 * themselves cost more than the sort at 100,000). */
static void
sort_numbers(struct sort_job *j, bool ranked)
{
	size_t *order = xreallocarray(NULL, j->n + 1, sizeof(*order));
	uint32_t *nums = xreallocarray(NULL, j->n + 1, sizeof(*nums));

	for (size_t i = 0; i < j->n; i++)
		nums[i] = j->uid ? j->msgs[i].uid : j->msgs[i].seq;
	imap_sort_order(j->msgs, j->n, j->crit, j->ncrit, ranked, order);
	j->sorted = xreallocarray(NULL, j->n + 1, sizeof(*j->sorted));
	for (size_t i = 0; i < j->n; i++)
		j->sorted[i] = nums[order[i]];
	free(nums);
	free(order);
}

/* Worker: every message is in; sort or thread them. */
static void
sort_done(void *ctx)
{
	struct sort_job *j = ctx;

	switch (j->kind) {
	case SORT_SORT: {
		bool ranked = j->cache != NULL && j->gen_taken;

		if (ranked)
			rank_all(j);
		sort_numbers(j, ranked);
		break;
	}
	case THREAD_ORDEREDSUBJECT:
		imap_thread_orderedsubject(j->msgs, j->n, j->uid, j->a,
		    &j->out);
		break;
	case THREAD_REFERENCES:
		imap_thread_references(j->msgs, j->n, j->uid, j->a, &j->out);
		break;
	}
}

/* The number of SORT's i-th message. */
static uint32_t
num(const struct sort_job *j, size_t i)
{
	return j->sorted[i];
}

/* ESORT (RFC 5267 3.2): MIN and MAX are the first and last in the sort
 * order, ALL the whole order (a range only where it ascends by one). */
static void
format_esort(struct imap_session *s, const char *tag, struct sort_job *j,
    struct strbuf *sb)
{
	strbuf_appendf(sb, "* ESEARCH (TAG \"%s\")%s", tag,
	    j->uid ? " UID" : "");
	if ((j->ret & IMAP_SEARCH_RETURN_MIN) && j->n > 0)
		strbuf_appendf(sb, " MIN %u", num(j, 0));
	if ((j->ret & IMAP_SEARCH_RETURN_MAX) && j->n > 0)
		strbuf_appendf(sb, " MAX %u", num(j, j->n - 1));
	if (j->ret & IMAP_SEARCH_RETURN_COUNT)
		strbuf_appendf(sb, " COUNT %zu", j->n);
	if ((j->ret & IMAP_SEARCH_RETURN_ALL) && j->n > 0) {
		strbuf_appends(sb, " ALL ");
		for (size_t i = 0; i < j->n; i++) {
			size_t e = i;

			while (e + 1 < j->n && num(j, e + 1) == num(j, e) + 1)
				e++;
			strbuf_appendf(sb, i > 0 ? ",%u" : "%u", num(j, i));
			if (e > i)
				strbuf_appendf(sb, ":%u", num(j, e));
			i = e;
			if (sb->len > 65536)
				imap_session_write_sb(s, sb);
		}
	}
	strbuf_appends(sb, "\r\n");
}

/* Loop: the answer. */
static void
sort_finish(struct imap_session *s, const char *tag, void *ctx, bool error,
    bool cancelled)
{
	struct sort_job *j = ctx;
	struct strbuf sb = STRBUF_INIT;
	const char *cmd = j->kind == SORT_SORT ? "SORT" : "THREAD";

	if (cancelled) {
		imap_session_tagged(s, tag, "NO", "[UNAVAILABLE] Server "
		    "shutting down");
		return;
	}
	if (error) {
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] %s failed", cmd);
		return;
	}
	log_debug("imap session=%u event=sort command=%s messages=%zu "
	    "keys_built=%zu cached=%zu ranks_bytes=%zu", s->id, cmd, j->n,
	    j->built, j->cached, j->gen != NULL ?
	    imap_sortcache_gen_bytes(j->gen) : (size_t)0);
	if (j->kind != SORT_SORT) {
		strbuf_appends(&sb, "* THREAD ");
		imap_session_write_sb(s, &sb);
		imap_session_write_sb(s, &j->out);
		strbuf_appends(&sb, "\r\n");
	} else if (j->has_return) {
		format_esort(s, tag, j, &sb);
	} else {
		strbuf_appends(&sb, "* SORT");
		for (size_t i = 0; i < j->n; i++) {
			strbuf_appendc(&sb, ' ');
			strbuf_append_u64(&sb, num(j, i));
			if (sb.len > 65536)
				imap_session_write_sb(s, &sb);
		}
		strbuf_appends(&sb, "\r\n");
	}
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "%s completed", cmd);
}

/* "RETURN (opts)" of ESORT: MIN MAX COUNT ALL; "()" is ALL. */
static int
parse_return(const struct imap_arg *arg, unsigned *ret_r, const char **error_r)
{
	const struct imap_arg *l;
	size_t n;

	*ret_r = 0;
	if (!imap_arg_get_list(arg, &l, &n)) {
		*error_r = "RETURN needs a list";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&l[i], "MIN"))
			*ret_r |= IMAP_SEARCH_RETURN_MIN;
		else if (imap_arg_atom_equals(&l[i], "MAX"))
			*ret_r |= IMAP_SEARCH_RETURN_MAX;
		else if (imap_arg_atom_equals(&l[i], "COUNT"))
			*ret_r |= IMAP_SEARCH_RETURN_COUNT;
		else if (imap_arg_atom_equals(&l[i], "ALL"))
			*ret_r |= IMAP_SEARCH_RETURN_ALL;
		else {
			*error_r = "Unknown RETURN option";
			return -1;
		}
	}
	if (*ret_r == 0)
		*ret_r = IMAP_SEARCH_RETURN_ALL;
	return 0;
}

/*
 * The search part: "charset key..." (SORT and THREAD name the charset
 * without the word CHARSET), handed to the SEARCH parser as
 * "CHARSET charset key...".
 */
static void
submit(struct imap_session *s, const char *tag, struct sort_job *j,
    const struct imap_arg *args, size_t argc)
{
	struct arena *arena = arena_new(16 * 1024);
	struct imap_search_program *prog;
	struct imap_search_hooks hooks;
	enum imap_search_error code;
	struct imap_arg *sargs;
	const char *err;

	if (argc < 2) {
		arena_free(&arena);
		sort_job_free(j);
		imap_session_tagged(s, tag, "BAD", "Missing charset or search "
		    "keys");
		return;
	}
	/* "$" (SEARCHRES) stands for the saved result here too */
	args = imap_search_saved_args(s, arena, args, argc);
	sargs = arena_alloc(arena, (argc + 1) * sizeof(*sargs));
	memset(&sargs[0], 0, sizeof(sargs[0]));
	sargs[0].type = IMAP_ARG_ATOM;
	sargs[0].str = "CHARSET";
	sargs[0].len = 7;
	memcpy(sargs + 1, args, argc * sizeof(*args));
	if (imap_search_parse(sargs, argc + 1, arena, &prog, &code,
	    &err) != 0) {
		arena_free(&arena);
		sort_job_free(j);
		if (code == IMAP_SEARCH_ERR_BADCHARSET)
			imap_session_tagged(s, tag, "NO", "[BADCHARSET (UTF-8 "
			    "US-ASCII)] %s", err);
		else
			imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	if (prog->has_return) {
		arena_free(&arena);
		sort_job_free(j);
		imap_session_tagged(s, tag, "BAD", "RETURN goes before the "
		    "sort criteria");
		return;
	}
	j->a = arena_new(IMAP_SORT_ARENA_CHUNK);
	j->env_a = arena_new(8192);
	/* room for every message of the view: no copies as the hits come
	   (pages never written are never faulted in) */
	if (s->sel != NULL && s->sel->count > 0) {
		j->cap = s->sel->count;
		j->msgs = xreallocarray(NULL, j->cap, sizeof(*j->msgs));
	}
	/* SORT on a sent date or a string key: the ranks the server keeps */
	if (j->kind == SORT_SORT && j->need_env && s->sel != NULL) {
		j->cache = s->server->sort_cache;
		j->uidvalidity = s->sel->uidvalidity;
		j->view_count = s->sel->count;
		j->need_subject = j->need_addr = true;	/* for the merge */
	}
	memset(&hooks, 0, sizeof(hooks));
	hooks.hit = sort_hit;
	hooks.done = sort_done;
	hooks.finish = sort_finish;
	hooks.free = sort_job_free;
	hooks.ctx = j;
	imap_search_submit(s, tag, arena, prog, j->uid, &hooks);
}

void
imap_cmd_sort(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct sort_job *j = xcalloc(1, sizeof(*j));
	const char *err;
	size_t i = 0;

	j->kind = SORT_SORT;
	j->uid = uid;
	if (argc > 0 && imap_arg_atom_equals(&args[0], "RETURN")) {
		if (argc < 2 || parse_return(&args[1], &j->ret, &err) != 0) {
			sort_job_free(j);
			imap_session_tagged(s, tag, "BAD", "%s", argc < 2 ?
			    "RETURN needs options" : err);
			return;
		}
		j->has_return = true;
		i = 2;
	}
	if (i >= argc || imap_sort_parse_criteria(&args[i], j->crit,
	    &j->ncrit, &err) != 0) {
		sort_job_free(j);
		imap_session_tagged(s, tag, "BAD", "%s", i >= argc ?
		    "SORT needs sort criteria" : err);
		return;
	}
	for (size_t k = 0; k < j->ncrit; k++) {
		enum imap_sort_key key = j->crit[k].key;

		if (key != IMAP_SORT_ARRIVAL && key != IMAP_SORT_SIZE)
			j->need_env = true;
		if (key == IMAP_SORT_SUBJECT)
			j->need_subject = true;
		if (key == IMAP_SORT_FROM || key == IMAP_SORT_TO ||
		    key == IMAP_SORT_CC)
			j->need_addr = true;
	}
	submit(s, tag, j, args + i + 1, argc - i - 1);
}

void
imap_cmd_thread(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct sort_job *j;

	if (argc < 1 || (!imap_arg_atom_equals(&args[0], "ORDEREDSUBJECT") &&
	    !imap_arg_atom_equals(&args[0], "REFERENCES"))) {
		imap_session_tagged(s, tag, "BAD", "THREAD supports "
		    "ORDEREDSUBJECT and REFERENCES");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->uid = uid;
	j->need_env = true;
	j->need_subject = true;
	if (imap_arg_atom_equals(&args[0], "REFERENCES")) {
		j->kind = THREAD_REFERENCES;
		j->need_refs = true;
	} else {
		j->kind = THREAD_ORDEREDSUBJECT;
	}
	submit(s, tag, j, args + 1, argc - 1);
}
