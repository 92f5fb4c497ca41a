#include "mail-search.h"

#include <string.h>
#include <strings.h>

#include "arena.h"
#include "mail-address.h"
#include "mail-charset.h"
#include "mail-decode.h"
#include "mail-header.h"
#include "mail-html.h"
#include "mail-rfc2047.h"
#include "strbuf.h"

void
mail_search_field_value(const char *v, size_t len, bool fold,
    struct strbuf *out)
{
	struct strbuf raw = STRBUF_INIT, dec = STRBUF_INIT;

	mail_header_unfold(v, len, &raw);
	mail_rfc2047_decode(raw.data == NULL ? "" : raw.data, raw.len, &dec);
	if (fold)
		mail_utf8_casefold(dec.data == NULL ? "" : dec.data, dec.len,
		    out);
	else
		strbuf_append(out, dec.data == NULL ? "" : dec.data, dec.len);
	strbuf_free(&raw);
	strbuf_free(&dec);
}

unsigned int
mail_search_header_values(const char *hdr, size_t len, const char *name,
    bool fold, struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	size_t nlen = strlen(name);
	unsigned int n = 0;

	mail_header_iter_init(&it, hdr, len);
	while (mail_header_iter_next(&it, &f)) {
		if (f.name_len != nlen || strncasecmp(f.name, name, nlen) != 0)
			continue;
		mail_search_field_value(f.value, f.value_len, fold, out);
		strbuf_appendc(out, '\n');
		n++;
	}
	return n;
}

/* One parsed address list as SEARCH sees it (mail_search_address_values). */
static void
address_text(const struct mail_address_list *l, struct strbuf *out)
{
	bool sep = false;

	for (uint32_t i = 0; i < l->count; i++) {
		const struct mail_address *a = &l->addrs[i];

		if (a->mailbox == NULL && a->domain == NULL) {
			strbuf_appendc(out, ';');	/* end of a group */
			sep = true;
			continue;
		}
		if (sep)
			strbuf_appends(out, ", ");
		sep = true;
		if (a->domain == NULL) {
			/* start of a group: its name */
			mail_rfc2047_decode(a->mailbox, strlen(a->mailbox),
			    out);
			strbuf_appends(out, ": ");
			sep = false;
			continue;
		}
		if (a->name != NULL && a->name[0] != '\0') {
			mail_rfc2047_decode(a->name, strlen(a->name), out);
			strbuf_appends(out, " <");
		}
		if (strcmp(a->mailbox, MAIL_MISSING_MAILBOX) != 0)
			strbuf_appends(out, a->mailbox);
		if (strcmp(a->domain, MAIL_MISSING_DOMAIN) != 0) {
			strbuf_appendc(out, '@');
			strbuf_appends(out, a->domain);
		}
		if (a->name != NULL && a->name[0] != '\0')
			strbuf_appendc(out, '>');
	}
}

unsigned int
mail_search_address_values(const char *hdr, size_t len, const char *name,
    bool fold, struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	struct strbuf raw = STRBUF_INIT, text = STRBUF_INIT;
	struct arena *a = arena_new(4096);
	size_t nlen = strlen(name);
	unsigned int n = 0;

	mail_header_iter_init(&it, hdr, len);
	while (mail_header_iter_next(&it, &f)) {
		struct mail_address_list l;

		if (f.name_len != nlen || strncasecmp(f.name, name, nlen) != 0)
			continue;
		strbuf_reset(&raw);
		strbuf_reset(&text);
		mail_header_unfold(f.value, f.value_len, &raw);
		mail_address_parse(a, strbuf_str(&raw), raw.len,
		    MAIL_ADDRESSES_MAX, &l);
		address_text(&l, &text);
		if (fold)
			mail_utf8_casefold(strbuf_str(&text), text.len, out);
		else
			strbuf_append(out, strbuf_str(&text), text.len);
		strbuf_appendc(out, '\n');
		arena_reset(a);
		n++;
	}
	arena_free(&a);
	strbuf_free(&raw);
	strbuf_free(&text);
	return n;
}

void
mail_search_header_text(const char *hdr, size_t len, bool fold,
    struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;

	mail_header_iter_init(&it, hdr, len);
	while (mail_header_iter_next(&it, &f)) {
		if (fold)
			mail_utf8_casefold(f.name, f.name_len, out);
		else
			strbuf_append(out, f.name, f.name_len);
		strbuf_append(out, ": ", 2);
		mail_search_field_value(f.value, f.value_len, fold, out);
		strbuf_appendc(out, '\n');
	}
}

const char *
mail_search_message_header(const void *data, size_t len,
    const struct mail_message *msg, size_t *hdr_len_r)
{
	*hdr_len_r = 0;
	if (msg->nparts == 0 || len != msg->size)
		return NULL;
	*hdr_len_r = (size_t)msg->parts[0].hdr_len;
	return (const char *)data + msg->parts[0].hdr_off;
}

bool
mail_search_part_in_bounds(const struct mail_part *p, size_t len)
{
	return p->hdr_off <= len && p->hdr_len <= len - p->hdr_off &&
	    p->body_off <= len && p->body_len <= len - p->body_off;
}

bool
mail_search_part_is_text(const struct mail_part *p)
{
	return p->first_child == MAIL_NONE &&
	    (strcasecmp(p->type, "text") == 0 ||
	    (p->flags & MAIL_PART_DEFAULT_TYPE) != 0);
}

void
mail_search_part_text(const void *data, size_t len,
    const struct mail_part *p, struct strbuf *out)
{
	struct strbuf raw = STRBUF_INIT, utf8 = STRBUF_INIT;
	const char *body = (const char *)data + p->body_off;
	size_t blen = (size_t)p->body_len;
	const char *cs = mail_part_param(p, "charset");
	bool html = strcasecmp(p->type, "text") == 0 &&
	    strcasecmp(p->subtype, "html") == 0;
	struct strbuf *dst = html ? &utf8 : out;

	if (!mail_search_part_in_bounds(p, len))
		return;
	if (strcasecmp(p->encoding, "base64") == 0) {
		mail_decode_base64(body, blen, &raw);
		body = strbuf_str(&raw);
		blen = raw.len;
	} else if (strcasecmp(p->encoding, "quoted-printable") == 0) {
		mail_decode_qp(body, blen, &raw);
		body = strbuf_str(&raw);
		blen = raw.len;
	}
	if (cs == NULL || mail_charset_to_utf8(cs, body, blen, dst) != 0)
		mail_utf8_sanitize(body, blen, dst);
	if (html)
		mail_html_to_text(strbuf_str(&utf8), utf8.len, out);
	strbuf_free(&raw);
	strbuf_free(&utf8);
}

int
mail_search_body_text(const void *data, size_t len,
    const struct mail_message *msg, bool fold, mail_search_text_cb *cb,
    void *ctx)
{
	struct strbuf text = STRBUF_INIT, folded = STRBUF_INIT;

	if (len != msg->size)
		return -1;
	for (uint32_t i = 0; i < msg->nparts; i++) {
		const struct mail_part *p = &msg->parts[i];

		if (!mail_search_part_in_bounds(p, len) ||
		    !mail_search_part_is_text(p))
			continue;
		strbuf_reset(&text);
		mail_search_part_text(data, len, p, &text);
		if (fold) {
			strbuf_reset(&folded);
			mail_utf8_casefold(strbuf_str(&text), text.len, &folded);
			cb(ctx, i, strbuf_str(&folded), folded.len);
		} else {
			cb(ctx, i, strbuf_str(&text), text.len);
		}
	}
	strbuf_free(&text);
	strbuf_free(&folded);
	return 0;
}

bool
mail_search_contains_folded(const char *text, size_t text_len,
    const char *folded_needle, size_t needle_len)
{
	struct strbuf folded = STRBUF_INIT;
	bool found;

	if (needle_len == 0)
		return true;
	mail_utf8_casefold(text, text_len, &folded);
	found = memmem(strbuf_str(&folded), folded.len, folded_needle,
	    needle_len) != NULL;
	strbuf_free(&folded);
	return found;
}

bool
mail_search_match(const char *text, size_t text_len, const char *needle,
    size_t needle_len)
{
	struct strbuf fn = STRBUF_INIT;
	bool found;

	mail_utf8_casefold(needle, needle_len, &fn);
	found = mail_search_contains_folded(text, text_len, strbuf_str(&fn),
	    fn.len);
	strbuf_free(&fn);
	return found;
}

bool
mail_search_sent_date(const struct mail_message *msg, int64_t *time_r,
    int32_t *tz_min_r)
{
	const struct mail_envelope *env =
	    msg->nparts > 0 ? msg->parts[0].envelope : NULL;

	if (env == NULL || !env->date_valid)
		return false;
	*time_r = env->date_time;
	*tz_min_r = env->date_tz_min;
	return true;
}
