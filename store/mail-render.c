#include "mail-render.h"

#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"

void
mail_render_imap_string(struct strbuf *out, const char *s, size_t len)
{
	bool literal = len > MAIL_RENDER_QUOTED_MAX;

	for (size_t i = 0; i < len && !literal; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c == '\r' || c == '\n' || c == '\0')
			literal = true;
	}
	if (literal) {
		strbuf_appendf(out, "{%zu}\r\n", len);
		strbuf_reserve(out, len);
		for (size_t i = 0; i < len; i++)
			out->data[out->len++] = s[i] == '\0' ? ' ' : s[i];
		out->data[out->len] = '\0';
		return;
	}
	strbuf_reserve(out, len + 2);
	out->data[out->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			strbuf_appendc(out, '\\');
		strbuf_appendc(out, s[i]);
	}
	strbuf_appendc(out, '"');
}

void
mail_render_imap_nstring(struct strbuf *out, const char *s)
{
	if (s == NULL)
		strbuf_append(out, "NIL", 3);
	else
		mail_render_imap_string(out, s, strlen(s));
}

static void
render_addresses(struct strbuf *out, const struct mail_address_list *list)
{
	if (list->count == 0) {
		strbuf_append(out, "NIL", 3);
		return;
	}
	strbuf_appendc(out, '(');
	for (uint32_t i = 0; i < list->count; i++) {
		const struct mail_address *a = &list->addrs[i];

		strbuf_appendc(out, '(');
		mail_render_imap_nstring(out, a->name);
		strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, a->route);
		strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, a->mailbox);
		strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, a->domain);
		strbuf_appendc(out, ')');
	}
	strbuf_appendc(out, ')');
}

void
mail_render_envelope(struct strbuf *out, const struct mail_envelope *env)
{
	static const struct mail_envelope empty;

	if (env == NULL)
		env = &empty;
	strbuf_appendc(out, '(');
	mail_render_imap_nstring(out, env->date);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, env->subject);
	strbuf_appendc(out, ' ');
	render_addresses(out, &env->from);
	strbuf_appendc(out, ' ');
	render_addresses(out, env->sender.count > 0 ? &env->sender :
	    &env->from);
	strbuf_appendc(out, ' ');
	render_addresses(out, env->reply_to.count > 0 ? &env->reply_to :
	    &env->from);
	strbuf_appendc(out, ' ');
	render_addresses(out, &env->to);
	strbuf_appendc(out, ' ');
	render_addresses(out, &env->cc);
	strbuf_appendc(out, ' ');
	render_addresses(out, &env->bcc);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, env->in_reply_to);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, env->message_id);
	strbuf_appendc(out, ')');
}

void
mail_render_message_envelope(struct strbuf *out,
    const struct mail_message *msg)
{
	mail_render_envelope(out, msg->nparts > 0 ? msg->parts[0].envelope :
	    NULL);
}

static void
render_params(struct strbuf *out, const struct mail_param *params,
    uint32_t n)
{
	if (n == 0) {
		strbuf_append(out, "NIL", 3);
		return;
	}
	strbuf_appendc(out, '(');
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0)
			strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, params[i].name);
		strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, params[i].value);
	}
	strbuf_appendc(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
render_ext_common(struct strbuf *out, const struct mail_part *p)
{
	if (p->disposition == NULL) {
		strbuf_append(out, "NIL", 3);
	} else {
		strbuf_appendc(out, '(');
		mail_render_imap_nstring(out, p->disposition);
		strbuf_appendc(out, ' ');
		render_params(out, p->disp_params, p->ndisp_params);
		strbuf_appendc(out, ')');
	}
	strbuf_appendc(out, ' ');
	if (p->nlanguages == 0) {
		strbuf_append(out, "NIL", 3);
	} else {
		strbuf_appendc(out, '(');
		for (uint32_t i = 0; i < p->nlanguages; i++) {
			if (i > 0)
				strbuf_appendc(out, ' ');
			mail_render_imap_nstring(out, p->languages[i]);
		}
		strbuf_appendc(out, ')');
	}
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, p->location);
}

static void render_part(struct strbuf *out, const struct mail_message *msg,
    uint32_t idx, bool extended);

static void
render_multipart(struct strbuf *out, const struct mail_message *msg,
    const struct mail_part *p, bool extended)
{
	strbuf_appendc(out, '(');
	if (p->first_child == MAIL_NONE) {
		strbuf_appends(out, "(\"text\" \"plain\" (\"charset\" "
		    "\"us-ascii\") NIL NIL \"7bit\" 0 0");
		if (extended)
			strbuf_appends(out, " NIL NIL NIL NIL");
		strbuf_appendc(out, ')');
	}
	for (uint32_t c = p->first_child; c != MAIL_NONE;
	    c = msg->parts[c].next_sibling)
		render_part(out, msg, c, extended);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, p->subtype);
	if (extended) {
		strbuf_appendc(out, ' ');
		render_params(out, p->params, p->nparams);
		strbuf_appendc(out, ' ');
		render_ext_common(out, p);
	}
	strbuf_appendc(out, ')');
}

static void
render_part(struct strbuf *out, const struct mail_message *msg, uint32_t idx,
    bool extended)
{
	const struct mail_part *p = &msg->parts[idx];
	const char *type = p->type, *subtype = p->subtype;
	bool is_message = (p->flags & MAIL_PART_MESSAGE) != 0 &&
	    p->first_child != MAIL_NONE;

	if ((p->flags & MAIL_PART_MULTIPART) != 0) {
		render_multipart(out, msg, p, extended);
		return;
	}
	if ((p->flags & MAIL_PART_NOT_PARSED) != 0 ||
	    (!is_message && mail_part_is_type(p, "message", "rfc822")) ||
	    mail_part_is_type(p, "multipart", NULL)) {
		type = "application";
		subtype = "octet-stream";
	}
	strbuf_appendc(out, '(');
	mail_render_imap_nstring(out, type);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, subtype);
	strbuf_appendc(out, ' ');
	render_params(out, p->params, p->nparams);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, p->id);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, p->description);
	strbuf_appendc(out, ' ');
	mail_render_imap_nstring(out, p->encoding);
	strbuf_appendf(out, " %" PRIu64, p->body_len);
	if (is_message) {
		const struct mail_part *child = &msg->parts[p->first_child];

		strbuf_appendc(out, ' ');
		mail_render_envelope(out, child->envelope);
		strbuf_appendc(out, ' ');
		render_part(out, msg, p->first_child, extended);
		strbuf_appendf(out, " %" PRIu64, p->lines);
	} else if (strcasecmp(type, "text") == 0) {
		strbuf_appendf(out, " %" PRIu64, p->lines);
	}
	if (extended) {
		strbuf_appendc(out, ' ');
		mail_render_imap_nstring(out, p->md5);
		strbuf_appendc(out, ' ');
		render_ext_common(out, p);
	}
	strbuf_appendc(out, ')');
}

void
mail_render_part_bodystructure(struct strbuf *out,
    const struct mail_message *msg, uint32_t part, bool extended)
{
	if (part >= msg->nparts)
		return;
	render_part(out, msg, part, extended);
}

void
mail_render_bodystructure(struct strbuf *out, const struct mail_message *msg,
    bool extended)
{
	mail_render_part_bodystructure(out, msg, 0, extended);
}
