#include "mail-address.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "strbuf.h"
#include "xmalloc.h"

struct addr_parser {
	struct arena *arena;
	const char *s;
	size_t len, pos;
	uint32_t max;
	struct mail_address *addrs;
	uint32_t count, cap;
	struct strbuf phrase, local, domain, route, comment;
};

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_special(char c)
{
	return c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
	    c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' ||
	    c == '.' || c == '[' || c == ']';
}

/* Skips whitespace and comments; the last comment's text goes to
 * ap->comment. */
static void
skip_cfws(struct addr_parser *ap)
{
	while (ap->pos < ap->len) {
		char c = ap->s[ap->pos];

		if (is_ws(c)) {
			ap->pos++;
		} else if (c == '(') {
			int depth = 0;
			size_t start = ap->pos + 1;

			strbuf_reset(&ap->comment);
			while (ap->pos < ap->len) {
				c = ap->s[ap->pos++];
				if (c == '\\' && ap->pos < ap->len) {
					ap->pos++;
				} else if (c == '(') {
					depth++;
				} else if (c == ')' && --depth == 0) {
					strbuf_append(&ap->comment,
					    ap->s + start, ap->pos - 1 - start);
					break;
				}
			}
			if (depth > 0)
				strbuf_append(&ap->comment, ap->s + start,
				    ap->pos - start);
		} else {
			break;
		}
	}
}

/* Reads a quoted string (at '"'), appending its unescaped content. */
static void
read_quoted(struct addr_parser *ap, struct strbuf *out)
{
	ap->pos++;
	while (ap->pos < ap->len) {
		char c = ap->s[ap->pos++];

		if (c == '"')
			return;
		if (c == '\\' && ap->pos < ap->len)
			c = ap->s[ap->pos++];
		if (c == '\r' || c == '\n')
			continue;
		strbuf_appendc(out, c);
	}
}

/* Reads an atom (possibly with garbage specials it cannot use). */
static void
read_atom(struct addr_parser *ap, struct strbuf *out)
{
	while (ap->pos < ap->len) {
		char c = ap->s[ap->pos];

		if (is_ws(c) || is_special(c))
			break;
		strbuf_appendc(out, c);
		ap->pos++;
	}
}

static const char *
dup_or_null(struct addr_parser *ap, const struct strbuf *sb)
{
	if (sb->len == 0)
		return NULL;
	return arena_strndup(ap->arena, sb->data, sb->len);
}

static void
emit(struct addr_parser *ap, const char *name, const char *route,
    const char *mailbox, const char *domain)
{
	struct mail_address *a;

	if (ap->count >= ap->max)
		return;
	if (ap->count == ap->cap) {
		ap->cap = ap->cap == 0 ? 8 : ap->cap * 2;
		ap->addrs = xreallocarray(ap->addrs, ap->cap, sizeof(*a));
	}
	a = &ap->addrs[ap->count++];
	a->name = name;
	a->route = route;
	a->mailbox = mailbox;
	a->domain = domain;
}

/* Collects the words before a delimiter: phrase gets them separated by
 * spaces, local gets them as a local part would read. */
static void
read_words(struct addr_parser *ap, bool in_angle)
{
	bool after_dot = false;

	strbuf_reset(&ap->phrase);
	strbuf_reset(&ap->local);
	strbuf_reset(&ap->comment);
	for (;;) {
		char c;

		skip_cfws(ap);
		if (ap->pos >= ap->len)
			return;
		c = ap->s[ap->pos];
		if (c == '<' || c == '@' || c == ':' || c == ',' || c == ';' ||
		    (in_angle && c == '>'))
			return;
		if (c == '.') {
			strbuf_appendc(&ap->phrase, '.');
			strbuf_appendc(&ap->local, '.');
			after_dot = true;
			ap->pos++;
			continue;
		}
		if (ap->phrase.len > 0 && !after_dot)
			strbuf_appendc(&ap->phrase, ' ');
		after_dot = false;
		if (c == '"') {
			size_t before = ap->local.len;

			read_quoted(ap, &ap->local);
			if (ap->local.len > before)
				strbuf_append(&ap->phrase,
				    ap->local.data + before,
				    ap->local.len - before);
		} else if (is_special(c)) {
			/* Stray '>', ']', ')', '\\': garbage, kept as text. */
			strbuf_appendc(&ap->phrase, c);
			strbuf_appendc(&ap->local, c);
			ap->pos++;
		} else {
			size_t before = ap->local.len;

			read_atom(ap, &ap->local);
			if (ap->local.len > before)
				strbuf_append(&ap->phrase,
				    ap->local.data + before,
				    ap->local.len - before);
		}
	}
}

/* Reads a domain after '@', stopping at stop characters. */
static void
read_domain(struct addr_parser *ap, const char *stops)
{
	strbuf_reset(&ap->domain);
	for (;;) {
		char c;

		skip_cfws(ap);
		if (ap->pos >= ap->len)
			return;
		c = ap->s[ap->pos];
		if (strchr(stops, c) != NULL)
			return;
		if (c == '[') {
			while (ap->pos < ap->len) {
				c = ap->s[ap->pos++];
				if (!is_ws(c))
					strbuf_appendc(&ap->domain, c);
				if (c == ']')
					break;
			}
		} else if (c == '.' || c == '@' || is_special(c)) {
			strbuf_appendc(&ap->domain, c);
			ap->pos++;
		} else {
			read_atom(ap, &ap->domain);
		}
	}
}

static void
read_angle(struct addr_parser *ap, const char *name)
{
	const char *route = NULL, *mailbox, *domain;

	ap->pos++;	/* '<' */
	skip_cfws(ap);
	if (ap->pos < ap->len && ap->s[ap->pos] == '@') {
		/* Obsolete source route: @a,@b: */
		strbuf_reset(&ap->route);
		while (ap->pos < ap->len && ap->s[ap->pos] != ':' &&
		    ap->s[ap->pos] != '>') {
			if (!is_ws(ap->s[ap->pos]))
				strbuf_appendc(&ap->route, ap->s[ap->pos]);
			ap->pos++;
		}
		if (ap->pos < ap->len && ap->s[ap->pos] == ':') {
			ap->pos++;
			route = dup_or_null(ap, &ap->route);
		}
	}
	read_words(ap, true);
	mailbox = arena_strndup(ap->arena, ap->local.data == NULL ? "" :
	    ap->local.data, ap->local.len);
	strbuf_reset(&ap->domain);
	if (ap->pos < ap->len && ap->s[ap->pos] == '@') {
		ap->pos++;
		read_domain(ap, ">,;<");
	}
	domain = arena_strndup(ap->arena, ap->domain.data == NULL ? "" :
	    ap->domain.data, ap->domain.len);
	/* Skip anything up to and including '>'. */
	while (ap->pos < ap->len && ap->s[ap->pos] != '>' &&
	    ap->s[ap->pos] != ',' && ap->s[ap->pos] != ';')
		ap->pos++;
	if (ap->pos < ap->len && ap->s[ap->pos] == '>')
		ap->pos++;
	if (*mailbox == '\0')
		mailbox = MAIL_MISSING_MAILBOX;
	if (*domain == '\0')
		domain = MAIL_MISSING_DOMAIN;
	emit(ap, name, route, mailbox, domain);
}

void
mail_address_parse(struct arena *arena, const char *s, size_t len,
    uint32_t max, struct mail_address_list *list_r)
{
	struct addr_parser ap;
	bool in_group = false;

	memset(&ap, 0, sizeof(ap));
	ap.arena = arena;
	ap.s = s;
	ap.len = len;
	ap.max = max;
	while (ap.pos < ap.len && ap.count < ap.max) {
		const char *name;
		char c;

		read_words(&ap, false);
		if (ap.pos >= ap.len) {
			c = '\0';
		} else {
			c = ap.s[ap.pos];
		}
		if (c == ':' && !in_group) {
			ap.pos++;
			if (ap.count + 1 >= ap.max)
				break;	/* no room for a member and the end */
			emit(&ap, NULL, NULL, arena_strndup(arena,
			    ap.phrase.data == NULL ? "" : ap.phrase.data,
			    ap.phrase.len), NULL);
			in_group = true;
			continue;
		}
		if (c == ':') {
			/* A colon inside a group: garbage. */
			ap.pos++;
			continue;
		}
		if (c == '<') {
			name = dup_or_null(&ap, &ap.phrase);
			read_angle(&ap, name);
			skip_cfws(&ap);
			/* Garbage after '>' up to the next address. */
			while (ap.pos < ap.len && ap.s[ap.pos] != ',' &&
			    ap.s[ap.pos] != ';')
				ap.pos++;
			continue;
		}
		if (c == '@') {
			const char *mailbox = ap.local.len > 0 ?
			    arena_strndup(arena, ap.local.data, ap.local.len) :
			    MAIL_MISSING_MAILBOX;

			ap.pos++;
			read_domain(&ap, ",;<");
			name = dup_or_null(&ap, &ap.comment);
			emit(&ap, name, NULL, mailbox, ap.domain.len > 0 ?
			    arena_strndup(arena, ap.domain.data, ap.domain.len) :
			    MAIL_MISSING_DOMAIN);
			if (ap.pos < ap.len && ap.s[ap.pos] == '<') {
				/* "a@b <c@d>": garbage; skip the bracket. */
				while (ap.pos < ap.len && ap.s[ap.pos] != ',' &&
				    ap.s[ap.pos] != ';')
					ap.pos++;
			}
			continue;
		}
		/* ',' ';' or end: a bare word is a mailbox without domain. */
		if (ap.local.len > 0) {
			emit(&ap, dup_or_null(&ap, &ap.comment), NULL,
			    arena_strndup(arena, ap.local.data, ap.local.len),
			    MAIL_MISSING_DOMAIN);
		}
		if (c == ';') {
			ap.pos++;
			if (in_group) {
				emit(&ap, NULL, NULL, NULL, NULL);
				in_group = false;
			}
		} else if (c == ',') {
			ap.pos++;
		}
	}
	if (in_group) {
		/* Keep the markers balanced even when cut by the limit. */
		if (ap.count >= ap.max) {
			ap.count--;
			if (ap.addrs[ap.count].domain == NULL &&
			    ap.addrs[ap.count].mailbox != NULL)
				in_group = false;	/* dropped the start */
		}
		if (in_group)
			emit(&ap, NULL, NULL, NULL, NULL);
	}
	list_r->count = ap.count;
	list_r->addrs = NULL;
	if (ap.count > 0) {
		list_r->addrs = arena_alloc(arena,
		    ap.count * sizeof(struct mail_address));
		memcpy(list_r->addrs, ap.addrs,
		    ap.count * sizeof(struct mail_address));
	}
	free(ap.addrs);
	strbuf_free(&ap.phrase);
	strbuf_free(&ap.local);
	strbuf_free(&ap.domain);
	strbuf_free(&ap.route);
	strbuf_free(&ap.comment);
}

