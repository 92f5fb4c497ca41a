/* imap-commands — the command table, dispatch, and the commands that work
 * in any state (RFC 3501 6.1, 6.2) plus ID, ENABLE, NAMESPACE, IDLE. */
#include "imap-commands.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "imap-compress.h"
#include "imap-parse.h"
#include "imap-format.h"
#include "imap-notify.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "log.h"
#include "password.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Longest ID field value we keep (client name/version for the admin). */
#define IMAP_ID_VALUE_MAX 64
/* ID parameter pairs accepted (RFC 2971 says at most 30). */
#define IMAP_ID_PAIRS_MAX 30
/* Largest decoded SASL PLAIN response: authzid, user and password. */
#define IMAP_SASL_DECODED_MAX (2 * STORE_USER_NAME_MAX + PASSWORD_MAX_LEN + 2)

#define ANY IMAP_STATES_ANY
#define AUTHED IMAP_STATES_AUTHED
#define NOTAUTH IMAP_STATE_NOT_AUTH
#define SELECTED IMAP_STATE_SELECTED

static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", imap_cmd_capability, ANY, 0 },
	{ "NOOP", imap_cmd_noop, ANY, 0 },
	{ "LOGOUT", imap_cmd_logout, ANY, IMAP_CMD_LEAVES },
	{ "STARTTLS", imap_cmd_starttls, NOTAUTH, 0 },
	{ "LOGIN", imap_cmd_login, NOTAUTH, 0 },
	{ "AUTHENTICATE", imap_cmd_authenticate, NOTAUTH, 0 },
	{ "ID", imap_cmd_id, ANY, 0 },
	{ "ENABLE", imap_cmd_enable, AUTHED, 0 },
	{ "NAMESPACE", imap_cmd_namespace, AUTHED, 0 },
	{ "COMPRESS", imap_cmd_compress, AUTHED, 0 },
	/* RFC 2177: authenticated and selected states only (IDLE stays in
	 * the pre-login CAPABILITY: some clients look for it there) */
	{ "IDLE", imap_cmd_idle, AUTHED, 0 },
	{ "SELECT", imap_cmd_select, AUTHED, IMAP_CMD_LEAVES },
	{ "EXAMINE", imap_cmd_examine, AUTHED, IMAP_CMD_LEAVES },
	{ "CREATE", imap_cmd_create, AUTHED, 0 },
	{ "DELETE", imap_cmd_delete, AUTHED, 0 },
	{ "RENAME", imap_cmd_rename, AUTHED, 0 },
	{ "SUBSCRIBE", imap_cmd_subscribe, AUTHED, 0 },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, AUTHED, 0 },
	{ "LIST", imap_cmd_list, AUTHED, 0 },
	{ "LSUB", imap_cmd_lsub, AUTHED, 0 },
	{ "STATUS", imap_cmd_status, AUTHED, 0 },
	{ "NOTIFY", imap_cmd_notify, AUTHED, 0 },
	{ "APPEND", imap_cmd_append, AUTHED, 0 },
	{ "GETQUOTA", imap_cmd_getquota, AUTHED, 0 },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, AUTHED, 0 },
	{ "SETQUOTA", imap_cmd_setquota, AUTHED, 0 },
	{ "CHECK", imap_cmd_check, SELECTED, 0 },
	{ "CLOSE", imap_cmd_close, SELECTED, IMAP_CMD_LEAVES },
	{ "UNSELECT", imap_cmd_unselect, SELECTED, IMAP_CMD_LEAVES },
	{ "EXPUNGE", imap_cmd_expunge, SELECTED, IMAP_CMD_UID },
	{ "SEARCH", imap_cmd_search, SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "SORT", imap_cmd_sort, SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "THREAD", imap_cmd_thread, SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "FETCH", imap_cmd_fetch, SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "STORE", imap_cmd_store, SELECTED, IMAP_CMD_UID | IMAP_CMD_NO_EXPUNGE },
	{ "COPY", imap_cmd_copy, SELECTED, IMAP_CMD_UID },
	{ "MOVE", imap_cmd_move, SELECTED, IMAP_CMD_UID },
};

static const struct imap_cmd_def *
cmd_find(const char *name)
{
	for (size_t i = 0; i < N_ELEMENTS(commands); i++)
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Why def cannot run in state: the reason the client can act on. */
static const char *
state_refusal(const struct imap_cmd_def *def, enum imap_state state)
{
	if (state == IMAP_STATE_NOT_AUTH)
		return "not allowed before login";
	if (def->states == IMAP_STATE_NOT_AUTH)
		return "not allowed after login";
	if (state == IMAP_STATE_AUTH && (def->states & IMAP_STATE_SELECTED))
		return "needs a selected mailbox";
	return "not allowed in this state";
}

void
imap_cmd_dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def;
	const struct imap_arg *args = cmd->args;
	size_t argc = cmd->arg_count;
	bool uid = false;
	char esc[LOG_PEER_TEXT_MAX];

	if (strcasecmp(cmd->name, "UID") == 0) {
		const char *sub;

		if (argc == 0 || !imap_arg_get_atom(&args[0], &sub)) {
			imap_session_tagged(s, cmd->tag, "BAD", "UID needs a "
			    "command");
			return;
		}
		def = cmd_find(sub);
		if (def == NULL || !(def->flags & IMAP_CMD_UID)) {
			imap_session_tagged(s, cmd->tag, "BAD", "Unknown UID "
			    "command");
			return;
		}
		uid = true;
		args++;
		argc--;
	} else {
		def = cmd_find(cmd->name);
	}
	if (def == NULL) {
		log_debug("imap session=%u event=unknown_command name=\"%s\"",
		    s->id, log_escape(esc, sizeof(esc), cmd->name,
		    strlen(cmd->name)));
		imap_session_tagged(s, cmd->tag, "BAD", "Unknown command");
		return;
	}
	if (!(def->states & s->state)) {
		imap_session_tagged(s, cmd->tag, "BAD", "%s %s", def->name,
		    state_refusal(def, s->state));
		return;
	}
	if (s->sel != NULL && s->sel->deleted &&
	    !(def->flags & IMAP_CMD_LEAVES)) {
		/* The selected mailbox is gone (another session deleted it):
		 * never answer from the stale view (RFC 2180 3). */
		imap_session_bye_deleted(s);
		return;
	}
	if (s->sel != NULL)
		imap_session_send_keyword_updates(s);
	s->cmd_allows_expunge = !((def->flags & IMAP_CMD_NO_EXPUNGE) && !uid);
	def->fn(s, cmd->tag, args, argc, uid);
}

/* ---- any state ---- */

void
imap_cmd_capability(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "CAPABILITY takes no "
		    "arguments");
		return;
	}
	imap_session_printf(s, "* CAPABILITY %s\r\n",
	    imap_session_capabilities(s));
	imap_session_tagged(s, tag, "OK", "Capability completed");
}

void
imap_cmd_noop(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "NOOP takes no arguments");
		return;
	}
	imap_session_tagged(s, tag, "OK", "NOOP completed");
}

void
imap_cmd_check(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "CHECK takes no arguments");
		return;
	}
	/* Every store write is durable on return: nothing to checkpoint. */
	imap_session_tagged(s, tag, "OK", "CHECK completed");
}

void
imap_cmd_logout(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "LOGOUT takes no arguments");
		return;
	}
	imap_session_printf(s, "* BYE Logging out\r\n");
	s->cmd_allows_expunge = false;
	s->state = IMAP_STATE_LOGOUT;
	imap_session_printf(s, "%s OK Logout completed\r\n", tag);
	imap_session_close(s);
}

void
imap_cmd_starttls(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "STARTTLS takes no "
		    "arguments");
		return;
	}
	if (s->tls) {
		imap_session_tagged(s, tag, "BAD", "TLS is already active");
		return;
	}
	if (s->server->ssl_ctx == NULL) {
		imap_session_tagged(s, tag, "BAD", "TLS is not configured");
		return;
	}
	imap_session_tagged(s, tag, "OK", "Begin TLS negotiation now");
	imap_session_starttls(s);
}

/* ---- authentication ---- */

static void
start_login(struct imap_session *s, const char *tag, const char *user,
    size_t user_len, const char *pass, size_t pass_len)
{
	char *u, *p;

	if (!imap_session_login_allowed(s)) {
		imap_session_tagged(s, tag, "NO", "[PRIVACYREQUIRED] "
		    "Plaintext authentication disallowed without TLS");
		s->server->stats.logins_failed++;
		return;
	}
	if (user_len == 0 || user_len > STORE_USER_NAME_MAX ||
	    memchr(user, '\0', user_len) != NULL ||
	    pass_len > PASSWORD_MAX_LEN || memchr(pass, '\0', pass_len) != NULL) {
		s->server->stats.logins_failed++;
		imap_session_tagged(s, tag, "NO", "[AUTHENTICATIONFAILED] "
		    "Authentication failed");
		return;
	}
	u = xstrndup(user, user_len);
	p = xstrndup(pass, pass_len);
	imap_session_begin_login(s, tag, u, p);
	secure_zero(p, pass_len);
	free(p);
	free(u);
}

void
imap_cmd_login(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *user, *pass;
	size_t ulen, plen;

	if (argc != 2 || !imap_arg_get_astring(&args[0], &user, &ulen) ||
	    !imap_arg_get_astring(&args[1], &pass, &plen)) {
		imap_session_tagged(s, tag, "BAD", "LOGIN needs a user name "
		    "and a password");
		return;
	}
	start_login(s, tag, user, ulen, pass, plen);
}

/* Decodes base64 SASL data; -1 on bad base64. *out_r is xmalloc'd. */
static int
sasl_decode(const char *in, size_t len, unsigned char **out_r, size_t *len_r)
{
	unsigned char *out;
	int n;
	size_t pad = 0;

	if (len % 4 != 0 || len > IMAP_SASL_DECODED_MAX * 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		    (c == '=' && i >= len - 2)))
			return -1;
	}
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0) {
		free(out);
		return -1;
	}
	*out_r = out;
	*len_r = (size_t)n - pad;
	return 0;
}

static void
sasl_plain(struct imap_session *s, const char *tag, const char *b64,
    size_t len)
{
	unsigned char *dec = NULL;
	size_t dlen = 0;
	const char *authz, *authc, *pass, *end;
	size_t authz_len, authc_len;

	if (len == 1 && b64[0] == '=')
		len = 0;	/* RFC 4959: "=" is an empty initial response */
	if (sasl_decode(b64, len, &dec, &dlen) != 0) {
		imap_session_tagged(s, tag, "BAD", "Invalid base64 data");
		return;
	}
	authz = (const char *)dec;
	end = authz + dlen;
	authc = memchr(authz, '\0', dlen);
	pass = authc != NULL ? memchr(authc + 1, '\0', (size_t)(end - authc - 1))
	    : NULL;
	if (authc == NULL || pass == NULL) {
		imap_session_tagged(s, tag, "BAD", "Malformed PLAIN response");
		goto out;
	}
	authz_len = (size_t)(authc - authz);
	authc++;
	authc_len = (size_t)(pass - authc);
	pass++;
	if (authz_len > 0 && (authz_len != authc_len ||
	    memcmp(authz, authc, authc_len) != 0)) {
		s->server->stats.logins_failed++;
		imap_session_tagged(s, tag, "NO", "[AUTHORIZATIONFAILED] "
		    "Authorization as another user is not allowed");
		goto out;
	}
	start_login(s, tag, authc, authc_len, pass, (size_t)(end - pass));
out:
	if (dec != NULL) {
		secure_zero(dec, dlen);
		free(dec);
	}
}

void
imap_cmd_authenticate(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *mech, *ir;
	size_t irlen;

	if (argc < 1 || argc > 2 || !imap_arg_get_atom(&args[0], &mech)) {
		imap_session_tagged(s, tag, "BAD", "AUTHENTICATE needs a "
		    "mechanism");
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0) {
		imap_session_tagged(s, tag, "NO", "Unsupported authentication "
		    "mechanism");
		return;
	}
	if (!imap_session_login_allowed(s)) {
		imap_session_tagged(s, tag, "NO", "[PRIVACYREQUIRED] "
		    "Plaintext authentication disallowed without TLS");
		s->server->stats.logins_failed++;
		return;
	}
	if (argc == 2) {
		if (!imap_arg_get_astring(&args[1], &ir, &irlen)) {
			imap_session_tagged(s, tag, "BAD", "Bad initial "
			    "response");
			return;
		}
		sasl_plain(s, tag, ir, irlen);
		return;
	}
	free(s->tag);
	s->tag = xstrdup(tag);
	s->io = IMAP_IO_SASL;
	imap_session_printf(s, "+ \r\n");
}

void
imap_cmd_authenticate_response(struct imap_session *s, const char *line,
    size_t len)
{
	char *tag = s->tag;

	s->tag = NULL;
	if (tag == NULL)
		tag = xstrdup("*");
	if (len == 1 && line[0] == '*')
		imap_session_tagged(s, tag, "BAD", "Authentication cancelled");
	else if (len > IMAP_SASL_DECODED_MAX * 2)
		imap_session_tagged(s, tag, "BAD", "Response too long");
	else
		sasl_plain(s, tag, line, len);
	/* sasl_plain may have entered AUTH_WAIT with its own copy */
	free(tag);
}

/* ---- ID, ENABLE, NAMESPACE, IDLE ---- */

void
imap_cmd_id(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const struct imap_arg *list;
	size_t n;
	const char *name = NULL, *version = NULL;
	size_t name_len = 0, version_len = 0;

	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "ID needs one argument");
		return;
	}
	if (args[0].type == IMAP_ARG_NIL) {
		n = 0;
		list = NULL;
	} else if (!imap_arg_get_list(&args[0], &list, &n) || n % 2 != 0 ||
	    n > 2 * IMAP_ID_PAIRS_MAX) {
		imap_session_tagged(s, tag, "BAD", "ID needs NIL or a list of "
		    "field/value pairs");
		return;
	}
	for (size_t i = 0; i + 1 < n; i += 2) {
		const char *k, *v;
		size_t kl, vl;

		if (!imap_arg_get_string(&list[i], &k, &kl) ||
		    !imap_arg_get_nstring(&list[i + 1], &v, &vl)) {
			imap_session_tagged(s, tag, "BAD", "ID fields are "
			    "strings");
			return;
		}
		if (v == NULL)
			continue;
		if (kl == 4 && strncasecmp(k, "name", 4) == 0) {
			name = v;
			name_len = vl;
		} else if (kl == 7 && strncasecmp(k, "version", 7) == 0) {
			version = v;
			version_len = vl;
		}
	}
	if (name != NULL) {
		char a[IMAP_ID_VALUE_MAX], b[IMAP_ID_VALUE_MAX];

		log_escape(a, sizeof(a), name, name_len);
		log_escape(b, sizeof(b), version != NULL ? version : "",
		    version_len);
		free(s->client_id);
		s->client_id = version != NULL ? xasprintf("%s %s", a, b) :
		    xstrdup(a);
		log_info("imap session=%u event=id client=\"%s\"", s->id,
		    s->client_id);
	}
	imap_session_printf(s, "* ID (\"name\" \"popgate\" \"vendor\" "
	    "\"popgate\")\r\n");
	imap_session_tagged(s, tag, "OK", "ID completed");
}

void
imap_cmd_enable(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct strbuf sb = STRBUF_INIT;

	if (argc == 0) {
		imap_session_tagged(s, tag, "BAD", "ENABLE needs capability "
		    "names");
		return;
	}
	for (size_t i = 0; i < argc; i++) {
		const char *cap;

		if (!imap_arg_get_atom(&args[i], &cap)) {
			imap_session_tagged(s, tag, "BAD", "ENABLE takes atoms");
			strbuf_free(&sb);
			return;
		}
		/* RFC 5161 3.1: ENABLED lists what this command switched
		 * on; unknown or already enabled names are left out. */
		if (strcasecmp(cap, "CONDSTORE") == 0 &&
		    !s->enabled_condstore) {
			imap_session_enable_condstore(s);
			strbuf_appends(&sb, " CONDSTORE");
		} else if (strcasecmp(cap, "UTF8=ACCEPT") == 0 &&
		    !s->enabled_utf8) {
			/* RFC 6855: UTF-8 names and quoted strings from now
			 * on; APPEND takes UTF8 (literal8) */
			s->enabled_utf8 = true;
			strbuf_appends(&sb, " UTF8=ACCEPT");
		} else if (strcasecmp(cap, "IMAP4rev2") == 0 &&
		    !s->enabled_rev2) {
			/* RFC 9051 (Appendix E): UTF-8 names, ESEARCH, no
			 * \Recent, from now on */
			s->enabled_rev2 = true;
			s->enabled_utf8 = true;
			if (s->sel != NULL)
				s->sel->hide_recent = true;
			strbuf_appends(&sb, " IMAP4rev2");
		} else if (strcasecmp(cap, "QRESYNC") == 0 &&
		    !s->enabled_qresync) {
			/* QRESYNC implies CONDSTORE (RFC 7162 3.2.3) */
			imap_session_enable_condstore(s);
			s->enabled_qresync = true;
			strbuf_appends(&sb, " QRESYNC");
		}
	}
	imap_session_printf(s, "* ENABLED%s\r\n", strbuf_str(&sb));
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "ENABLE completed");
}

/* RFC 4978: the OK goes out uncompressed, everything after it (both
 * ways) is DEFLATE. */
void
imap_cmd_compress(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct imap_compress *z;
	const char *err;

	if (argc != 1 || !imap_arg_atom_equals(&args[0], "DEFLATE")) {
		imap_session_tagged(s, tag, "BAD", "COMPRESS supports DEFLATE "
		    "only");
		return;
	}
	if (s->z != NULL) {
		imap_session_tagged(s, tag, "NO", "[COMPRESSIONACTIVE] "
		    "DEFLATE is already active");
		return;
	}
	if ((z = imap_compress_new(&err)) == NULL) {
		log_error("imap session=%u event=compress_failed error=\"%s\"",
		    s->id, err);
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] Compression is "
		    "not available");
		return;
	}
	imap_session_tagged(s, tag, "OK", "DEFLATE active");
	imap_session_start_compress(s, z);
}

void
imap_cmd_namespace(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "NAMESPACE takes no "
		    "arguments");
		return;
	}
	imap_session_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_session_tagged(s, tag, "OK", "NAMESPACE completed");
}

/* While the session IDLEs: an untagged OK now and then, so that a proxy
 * or a NAT between the client and us sees traffic (issue 17). The timer
 * is stopped when IDLE ends (imap-session.c's handle_line). */
static void
idle_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	if (s->io != IMAP_IO_IDLE || s->closing) {
		evtimer_del(s->keepalive_ev);
		return;
	}
	imap_session_printf(s, "* OK Still here\r\n");
}

void
imap_cmd_idle(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "IDLE takes no arguments");
		return;
	}
	free(s->tag);
	s->tag = xstrdup(tag);
	s->io = IMAP_IO_IDLE;
	imap_session_printf(s, "+ idling\r\n");
	{
		struct timeval tv = {
			s->server->limits.idle_keepalive_secs, 0 };

		if (s->keepalive_ev == NULL)
			s->keepalive_ev = event_new(s->server->base, -1,
			    EV_PERSIST, idle_keepalive_cb, s);
		evtimer_add(s->keepalive_ev, &tv);
	}
	if (s->sel != NULL)
		imap_session_send_updates(s, true);
}
