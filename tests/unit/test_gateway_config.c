/* Check suite for gateway/config: good files, defaults, and every error
 * with the line it is reported on. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"
#include "log.h"
#include "strbuf.h"

static const char good[] =
	"# popgate test configuration\n"
	"[imap]\n"
	"listen = 127.0.0.1:1143, [::1]:1143\n"
	"listen_tls = *:1993\n"
	"cert = /etc/popgate/cert.pem\n"
	"key = /etc/popgate/key.pem   ; inline comment\n"
	"loopback_secure = no\n"
	"allow_plaintext = yes\n"
	"\n"
	"[store]\n"
	"data_dir = /var/lib/pg\n"
	"map_size = 2G\n"
	"[control]\n"
	"socket = /run/pg/ctl.sock\n"
	"mode = 0660\n"
	"group = mailadm\n"
	"[log]\n"
	"target = syslog\n"
	"level = debug\n"
	"[limits]\n"
	"imap_connections = 10\n"
	"imap_connections_per_ip = 3\n"
	"control_clients = 4\n"
	"control_request_max = 64K\n"
	"upstream_connections_per_host = 3\n"
	"[upstream-defaults]\n"
	"interval = 5m\n"
	"mode = delete-after:30\n"
	"size_limit = 10M\n"
	"tls = stls\n"
	"folder = Legacy\n"
	"timeout = 20s\n"
	"ca_file = /etc/ssl/ca.pem\n"
	"[passthrough]\n"
	"enabled = yes\n"
	"host = pop.example.org\n"
	"port = 995\n"
	"tls = pop3s\n"
	"domains = example.org example.com\n"
	"attempts_per_minute = 5\n"
	"failure_cache = 2m\n"
	"[daemon]\n"
	"user = popgate\n"
	"secret_key = /etc/popgate/secret.key\n";

START_TEST(good_file_parses_every_key)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_int_eq(config_load_string("t.conf", good, &c, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(c->listen_count, 2);
	ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
	ck_assert_str_eq(c->listen[0].port, "1143");
	ck_assert_str_eq(c->listen[1].host, "::1");
	ck_assert_uint_eq(c->listen_tls_count, 1);
	ck_assert_str_eq(c->listen_tls[0].host, "*");
	ck_assert_str_eq(c->listen_tls[0].port, "1993");
	ck_assert_str_eq(c->key_file, "/etc/popgate/key.pem");
	ck_assert(!c->loopback_secure);
	ck_assert(c->allow_plaintext);
	ck_assert_str_eq(c->data_dir, "/var/lib/pg");
	ck_assert_uint_eq(c->map_size, 2ull << 30);
	ck_assert_str_eq(c->control_socket, "/run/pg/ctl.sock");
	ck_assert_uint_eq(c->control_mode, 0660);
	ck_assert_str_eq(c->control_group, "mailadm");
	ck_assert_int_eq(c->log_target, LOG_TARGET_SYSLOG);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(c->imap_connections, 10);
	ck_assert_uint_eq(c->imap_connections_per_ip, 3);
	ck_assert_uint_eq(c->control_clients, 4);
	ck_assert_uint_eq(c->control_request_max, 65536);
	ck_assert_uint_eq(c->upstream_per_host, 3);
	ck_assert_uint_eq(c->upstream.interval, 300);
	ck_assert_int_eq(c->upstream.mode, CONFIG_MODE_DELETE_AFTER);
	ck_assert_uint_eq(c->upstream.delete_after_days, 30);
	ck_assert_uint_eq(c->upstream.size_limit, 10u << 20);
	ck_assert_int_eq(c->upstream.tls, CONFIG_TLS_STLS);
	ck_assert_str_eq(c->upstream.folder, "Legacy");
	ck_assert_uint_eq(c->upstream.timeout, 20);
	ck_assert_str_eq(c->upstream.ca_file, "/etc/ssl/ca.pem");
	ck_assert(c->pt_enabled);
	ck_assert_str_eq(c->pt_host, "pop.example.org");
	ck_assert_str_eq(c->pt_port, "995");
	ck_assert_uint_eq(c->pt_domain_count, 2);
	ck_assert_str_eq(c->pt_domains[1], "example.com");
	ck_assert_uint_eq(c->pt_attempts_per_minute, 5);
	ck_assert_uint_eq(c->pt_failure_cache, 120);
	ck_assert_str_eq(c->user, "popgate");
	ck_assert_str_eq(c->secret_key_file, "/etc/popgate/secret.key");
	config_free(&c);
	ck_assert_ptr_null(c);
	config_free(&c);
}
END_TEST

START_TEST(empty_file_gives_defaults)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_int_eq(config_load_string("e.conf", "", &c, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(c->listen_count, 0);
	ck_assert(c->loopback_secure);
	ck_assert(!c->allow_plaintext);
	ck_assert_str_eq(c->data_dir, "/var/lib/popgate");
	ck_assert_uint_eq(c->control_mode, 0600);
	ck_assert_ptr_null(c->control_group);
	ck_assert_int_eq(c->log_target, LOG_TARGET_STDERR);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(c->upstream.mode, CONFIG_MODE_KEEP);
	ck_assert_int_eq(c->upstream.tls, CONFIG_TLS_POP3S);
	ck_assert_str_eq(c->upstream.folder, "INBOX");
	ck_assert_ptr_null(c->user);
	ck_assert_str_eq(c->secret_key_file, "/var/lib/popgate/secret.key");
	ck_assert(!c->pt_enabled);
	/* the web page: off, loopback, bounded sessions, no self-service */
	ck_assert(!c->web_enabled);
	ck_assert_uint_eq(c->web_listen_count, 1);
	ck_assert_str_eq(c->web_listen[0].host, "127.0.0.1");
	ck_assert_str_eq(c->web_listen[0].port, CONFIG_WEB_PORT);
	ck_assert_uint_eq(c->web_session_timeout, 1800);
	ck_assert_uint_eq(c->web_sessions, 1000);
	ck_assert(!c->web_self_service);
	config_free(&c);
}
END_TEST

START_TEST(web_section)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_int_eq(config_load_string("w.conf", "[imap]\ncert = c.pem\n"
	    "key = k.pem\n[web]\nenabled = yes\nlisten = [::1]:9443 "
	    "127.0.0.1:8080\nsession_timeout = 10m\nsessions = 5\n"
	    "self_service = yes\n", &c, err, sizeof(err)), 0);
	ck_assert(c->web_enabled);
	ck_assert_uint_eq(c->web_listen_count, 2);
	ck_assert_str_eq(c->web_listen[0].host, "::1");
	ck_assert_str_eq(c->web_listen[1].port, "8080");
	ck_assert_uint_eq(c->web_session_timeout, 600);
	ck_assert_uint_eq(c->web_sessions, 5);
	ck_assert(c->web_self_service);
	config_free(&c);
	/* HTTPS only: no page without the certificate */
	ck_assert_int_eq(config_load_string("w.conf", "[web]\nenabled = yes\n",
	    &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "[web] enabled needs [imap] cert"));
	ck_assert_int_eq(config_load_string("w.conf", "[web]\n"
	    "session_timeout = 5s\n", &c, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(config_load_string("w.conf", "[web]\nsessions = 0\n",
	    &c, err, sizeof(err)), -1);
	ck_assert_int_eq(config_load_string("w.conf", "[web]\nport = 1\n",
	    &c, err, sizeof(err)), -1);
}
END_TEST

START_TEST(crlf_and_indentation_accepted)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_int_eq(config_load_string("c.conf",
	    "[store]\r\n  data_dir = /srv/pg\r\n\tmap_size=64M\r\n", &c, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(c->data_dir, "/srv/pg");
	ck_assert_uint_eq(c->map_size, 64u << 20);
	config_free(&c);
}
END_TEST

struct bad_case {
	const char *text;
	const char *error;	/* the whole expected message */
};

static const struct bad_case bad_cases[] = {
	{ "[nope]\nx = 1\n", "b.conf:2: unknown section [nope]" },
	{ "[store]\n\nbogus = 1\n",
	  "b.conf:3: unknown key \"bogus\" in [store]" },
	{ "data_dir = /x\n", "b.conf:1: setting outside of any [section]" },
	{ "[store]\ndata_dir = /a\ndata_dir = /b\n",
	  "b.conf:3: [store] data_dir is set twice" },
	{ "[store]\nthis line has no equals sign\n",
	  "b.conf:2: syntax error (expected [section], name = value, or a "
	  "# comment)" },
	{ "[store\n", "b.conf:1: syntax error (expected [section], name = "
	  "value, or a # comment)" },
	{ "[imap]\nloopback_secure = maybe\n",
	  "b.conf:2: [imap] loopback_secure = \"maybe\": expected yes or no" },
	{ "[imap]\nlisten = 127.0.0.1\n",
	  "b.conf:2: [imap] listen = \"127.0.0.1\": expected ADDRESS:PORT "
	  "(or *:PORT)" },
	{ "[imap]\nlisten = 127.0.0.1:0\n",
	  "b.conf:2: [imap] listen = \"127.0.0.1:0\": expected a port number "
	  "from 1 to 65535" },
	{ "[imap]\nlisten = 127.0.0.1:65536\n",
	  "b.conf:2: [imap] listen = \"127.0.0.1:65536\": expected a port "
	  "number from 1 to 65535" },
	{ "[imap]\nlisten_tls = ::1:993\n",
	  "b.conf:2: [imap] listen_tls = \"::1:993\": IPv6 addresses go in "
	  "brackets: [::1]:PORT" },
	{ "[imap]\nlisten = [::1:993\n",
	  "b.conf:2: [imap] listen = \"[::1:993\": expected [ADDRESS]:PORT" },
	{ "[imap]\nlisten = a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9\n",
	  "b.conf:2: [imap] listen = \"a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8 i:9\": "
	  "too many items in the list" },
	{ "[imap]\ncert =\n",
	  "b.conf:2: [imap] cert = \"\": value must not be empty" },
	{ "[store]\nmap_size = 12Q\n",
	  "b.conf:2: [store] map_size = \"12Q\": expected a size such as "
	  "65536, 512K, 64M or 1G" },
	{ "[store]\nmap_size = 99999999999999999999\n",
	  "b.conf:2: [store] map_size = \"99999999999999999999\": expected a "
	  "size such as 65536, 512K, 64M or 1G" },
	{ "[store]\nmap_size = 17179869184T\n",
	  "b.conf:2: [store] map_size = \"17179869184T\": expected a size "
	  "such as 65536, 512K, 64M or 1G" },
	{ "[control]\nmode = 0666\n",
	  "b.conf:2: [control] mode = \"0666\": the control socket must not "
	  "be usable by others (no world bits)" },
	{ "[control]\nmode = 0689\n",
	  "b.conf:2: [control] mode = \"0689\": expected octal permission "
	  "bits such as 0600" },
	{ "[log]\ntarget = file\n",
	  "b.conf:2: [log] target = \"file\": expected stderr or syslog" },
	{ "[log]\nlevel = loud\n",
	  "b.conf:2: [log] level = \"loud\": expected error, warn, info or "
	  "debug" },
	{ "[limits]\nimap_connections = 0\n",
	  "b.conf:2: [limits] imap_connections = \"0\": number out of range" },
	{ "[limits]\ncontrol_clients = -1\n",
	  "b.conf:2: [limits] control_clients = \"-1\": expected a number" },
	{ "[limits]\ncontrol_request_max = 100\n",
	  "b.conf:2: [limits] control_request_max = \"100\": size out of "
	  "range" },
	{ "[upstream-defaults]\ninterval = 1\n",
	  "b.conf:2: [upstream-defaults] interval = \"1\": duration out of "
	  "range" },
	{ "[upstream-defaults]\ninterval = 5 minutes\n",
	  "b.conf:2: [upstream-defaults] interval = \"5 minutes\": expected "
	  "a duration such as 300, 90s, 5m, 2h or 1d" },
	{ "[upstream-defaults]\nmode = purge\n",
	  "b.conf:2: [upstream-defaults] mode = \"purge\": expected keep, "
	  "delete, delete-after:DAYS or mirror" },
	{ "[upstream-defaults]\nmode = delete-after:0\n",
	  "b.conf:2: [upstream-defaults] mode = \"delete-after:0\": "
	  "delete-after needs a number of days from 1 to 36500" },
	{ "[upstream-defaults]\ntls = starttls\n",
	  "b.conf:2: [upstream-defaults] tls = \"starttls\": expected pop3s, "
	  "stls or none" },
	{ "[passthrough]\nport = 99999\n",
	  "b.conf:2: [passthrough] port = \"99999\": expected a port number "
	  "from 1 to 65535" },
	{ "[passthrough]\ndomains = example.org bad/domain\n",
	  "b.conf:2: [passthrough] domains = \"example.org bad/domain\": "
	  "not a mail domain" },
	{ "[log]\nlevel = \x1b[31mred\n",
	  "b.conf:2: [log] level = \"\\x1b[31mred\": expected error, warn, "
	  "info or debug" },
	/* whole-file checks: no line */
	{ "[imap]\nlisten = 127.0.0.1:1143\n",
	  "b.conf: [imap] cert and key are required for the IMAP listeners" },
	{ "[store]\ndata_dir = relative/dir\n",
	  "b.conf: [store] data_dir must be an absolute path" },
	{ "[control]\nsocket = ctl.sock\n",
	  "b.conf: [control] socket must be an absolute path" },
	{ "[store]\nmap_size = 4K\n",
	  "b.conf: [store] map_size must be at least 1M" },
	{ "[passthrough]\nenabled = yes\n",
	  "b.conf: [passthrough] enabled needs host and port" },
	/* the first error wins */
	{ "[store]\nbogus = 1\n[log]\nlevel = x\n",
	  "b.conf:2: unknown key \"bogus\" in [store]" },
	{ "[store]\nno equals\n[log]\nlevel = x\n",
	  "b.conf:2: syntax error (expected [section], name = value, or a "
	  "# comment)" },
	{ "[log]\nlevel = x\nno equals\n",
	  "b.conf:2: [log] level = \"x\": expected error, warn, info or "
	  "debug" },
};

START_TEST(bad_file_reports_line_and_reason)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	err[0] = '\0';
	ck_assert_int_eq(config_load_string("b.conf", bc->text, &c, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, bc->error);
}
END_TEST

START_TEST(long_line_is_an_error)
{
	static char text[CONFIG_LINE_MAX + 600];
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	snprintf(text, sizeof(text), "[store]\n# ok\ndata_dir = /%0*d\n"
	    "map_size = 1G\n", CONFIG_LINE_MAX, 0);
	ck_assert_int_eq(config_load_string("l.conf", text, &c, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "l.conf:3: line too long (at most 16384 "
	    "bytes)");

	/* exactly at the limit is fine */
	memset(text, 0, sizeof(text));
	strcpy(text, "[store]\ndata_dir = /");
	memset(text + strlen(text), 'a', CONFIG_LINE_MAX - 12);
	strcat(text, "\r\n");
	ck_assert_int_eq(config_load_string("l.conf", text, &c, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c->data_dir), CONFIG_LINE_MAX - 11);
	config_free(&c);
}
END_TEST

/* Issue 18: a 197-byte limit refused long comments and capped
 * [passthrough] domains at about ten domains. */
START_TEST(long_comment_and_many_domains_accepted)
{
	struct strbuf sb = STRBUF_INIT;
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	strbuf_appendf(&sb, "# ");
	for (int i = 0; i < 100; i++)
		strbuf_appendf(&sb, "a long comment explaining things %d ", i);
	strbuf_appendf(&sb, "\n[passthrough]\nenabled = yes\n"
	    "host = pop.example.org\nport = 995\ndomains =");
	for (int i = 0; i < 300; i++)
		strbuf_appendf(&sb, " d%d.example.org,", i);
	strbuf_appendf(&sb, "\n");
	ck_assert_uint_gt(sb.len, 8000);
	ck_assert_msg(config_load_string("d.conf", sb.data, &c, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(c->pt_domain_count, 300);
	ck_assert_str_eq(c->pt_domains[299], "d299.example.org");
	config_free(&c);
	strbuf_free(&sb);
}
END_TEST

START_TEST(load_from_file)
{
	char path[] = "/tmp/pgconfXXXXXX";
	int fd = mkstemp(path);
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, good, strlen(good)), (int)strlen(good));
	close(fd);
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->path, path);
	config_free(&c);
	unlink(path);
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, "cannot open: No such file") != NULL);
	ck_assert(strncmp(err, path, strlen(path)) == 0);
}
END_TEST

/* [cluster] secret_file: one key, or two (the second accepted too) */
static const char *
secret_file_load(const char *content, mode_t mode, struct config **c,
    char *err, size_t errsize)
{
	static char path[] = "/tmp/pgkeyXXXXXX";
	char text[256];
	int fd;

	snprintf(path, sizeof(path), "/tmp/pgkeyXXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)),
	    (int)strlen(content));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	snprintf(text, sizeof(text), "[cluster]\nsecret_file = %s\n", path);
	if (config_load_string("f.conf", text, c, err, errsize) != 0) {
		unlink(path);
		return NULL;
	}
	unlink(path);
	return path;
}

START_TEST(cluster_secret_file)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	ck_assert_ptr_nonnull(secret_file_load("0123456789abcdef\n", 0600, &c,
	    err, sizeof(err)));
	ck_assert_str_eq(c->cluster_secret, "0123456789abcdef");
	ck_assert_ptr_null(c->cluster_secret_also);
	config_free(&c);
	ck_assert_ptr_nonnull(secret_file_load("new-key-0123456789\r\n"
	    "old-key-0123456789\r\n\n", 0640, &c, err, sizeof(err)));
	ck_assert_str_eq(c->cluster_secret, "new-key-0123456789");
	ck_assert_str_eq(c->cluster_secret_also, "old-key-0123456789");
	config_free(&c);
	ck_assert_ptr_null(secret_file_load("0123456789abcdef\n", 0604, &c,
	    err, sizeof(err)));
	ck_assert_msg(strstr(err, "open to others") != NULL, "%s", err);
	ck_assert_ptr_null(secret_file_load("a\nb\nc", 0600, &c, err,
	    sizeof(err)));
	ck_assert_ptr_null(secret_file_load("0123456789abcdef\n"
	    "0123456789abcdef\n0123456789abcdef\n", 0600, &c, err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "one or two lines") != NULL, "%s", err);
	ck_assert_ptr_null(secret_file_load("", 0600, &c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "16 to 256") != NULL, "%s", err);
}
END_TEST

/* issue 17: the keep-alive, PROXY listeners and the [cluster] section */
START_TEST(scale_out_keys)
{
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];
	static const char *const bad[][2] = {
		{ "[imap]\nidle_keepalive = 0\n", "out of range" },
		{ "[imap]\nidle_keepalive = 31m\n", "out of range" },
		{ "[imap]\ncert = /c\nkey = /k\n"
		  "proxy_listen = 127.0.0.1:1144\n", "needs proxy_trusted" },
		{ "[imap]\nproxy_trusted = 10.0.0.0/33\n", "prefix" },
		{ "[imap]\nproxy_trusted = proxy.example.org\n", "address" },
		{ "[cluster]\nauth_http_listen = 127.0.0.1:9144\n",
		  "needs node_address" },
		{ "[cluster]\nnode_address = 127.0.0.1:1, 127.0.0.1:2\n",
		  "one address" },
		{ "[cluster]\ncache = 2d\n", "out of range" },
		{ "[cluster]\nauth_http_listen = 10.1.0.11:9144\n"
		  "node_address = 10.1.0.11:1144\n", "needs secret" },
		{ "[cluster]\nauth_http_listen = *:9144\n"
		  "node_address = 10.1.0.11:1144\n", "needs secret" },
		{ "[cluster]\nsecret = 0123456789abcde\n", "16 to 256" },
		{ "[cluster]\nsecret = 0123456789abcdef;\n", "16 to 256" },
		{ "[cluster]\nsecret = 0123456789abcdef}\n", "16 to 256" },
		{ "[cluster]\nsecret = 0123456789\tabcdef\n", "16 to 256" },
		{ "[cluster]\nsecret_file = relative/key\n", "absolute" },
		{ "[cluster]\nsecret_file = /nonexistent/popgate.key\n",
		  "cannot be read" },
		{ "[cluster]\nticket_lifetime = 0\n", "out of range" },
		{ "[cluster]\nticket_lifetime = 6m\n", "out of range" },
	};

	ck_assert_int_eq(config_load_string("e.conf", "", &c, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(c->idle_keepalive, 120);
	ck_assert_uint_eq(c->cluster_cache, 60);
	ck_assert_uint_eq(c->cluster_ticket_lifetime, 30);
	ck_assert_ptr_null(c->cluster_secret);
	ck_assert_uint_eq(c->proxy_listen_count, 0);
	config_free(&c);
	/* a key: auth_http may listen on any address */
	ck_assert_int_eq(config_load_string("k.conf",
	    "[cluster]\nauth_http_listen = 10.1.0.11:9144\n"
	    "node_address = 10.1.0.11:1144\n"
	    "secret = Ab0+/=_.-~!@%^&*()x\nticket_lifetime = 5m\n",
	    &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->cluster_secret, "Ab0+/=_.-~!@%^&*()x");
	ck_assert_uint_eq(c->cluster_ticket_lifetime, 300);
	config_free(&c);
	ck_assert_int_eq(config_load_string("s.conf",
	    "[imap]\ncert = /c\nkey = /k\nidle_keepalive = 30s\n"
	    "proxy_listen = 127.0.0.1:1144, [::1]:1144\n"
	    "proxy_trusted = 127.0.0.1 10.1.0.0/16, ::1\n"
	    "[cluster]\nauth_http_listen = 127.0.0.1:9144\n"
	    "node_address = 10.1.0.11:1144\n"
	    "peers = 10.1.0.12:9144, 10.1.0.13:9144\ncache = 0\n",
	    &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c->idle_keepalive, 30);
	ck_assert_uint_eq(c->proxy_listen_count, 2);
	ck_assert_str_eq(c->proxy_listen[1].host, "::1");
	ck_assert_uint_eq(c->proxy_trusted_count, 3);
	ck_assert_str_eq(c->proxy_trusted[1], "10.1.0.0/16");
	ck_assert_str_eq(c->cluster_node[0].host, "10.1.0.11");
	ck_assert_uint_eq(c->cluster_peer_count, 2);
	ck_assert_str_eq(c->cluster_peers[1].port, "9144");
	ck_assert_uint_eq(c->cluster_cache, 0);
	config_free(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(config_load_string("b.conf", bad[i][0], &c,
		    err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, bad[i][1]) != NULL, "%s: %s",
		    bad[i][0], err);
		ck_assert_ptr_null(c);
	}
}
END_TEST

START_TEST(value_parsers)
{
	const char *e;
	uint32_t secs, days;
	uint64_t bytes;
	enum config_upstream_mode mode;
	enum config_upstream_tls tls;
	char buf[32];

	ck_assert_int_eq(config_parse_duration("90s", &secs, &e), 0);
	ck_assert_uint_eq(secs, 90);
	ck_assert_int_eq(config_parse_duration("2h", &secs, &e), 0);
	ck_assert_uint_eq(secs, 7200);
	ck_assert_int_eq(config_parse_duration("1D", &secs, &e), 0);
	ck_assert_uint_eq(secs, 86400);
	ck_assert_int_eq(config_parse_duration("4294967295", &secs, &e), 0);
	ck_assert_int_eq(config_parse_duration("4294967296", &secs, &e), -1);
	ck_assert_int_eq(config_parse_duration("", &secs, &e), -1);
	ck_assert_int_eq(config_parse_duration("m", &secs, &e), -1);
	ck_assert_int_eq(config_parse_duration("-5", &secs, &e), -1);
	ck_assert_int_eq(config_parse_duration("5mm", &secs, &e), -1);
	ck_assert_int_eq(config_parse_size("512k", &bytes, &e), 0);
	ck_assert_uint_eq(bytes, 524288);
	ck_assert_int_eq(config_parse_size("1T", &bytes, &e), 0);
	ck_assert_uint_eq(bytes, 1ull << 40);
	ck_assert_int_eq(config_parse_mode("mirror", &mode, &days, &e), 0);
	ck_assert_int_eq(mode, CONFIG_MODE_MIRROR);
	ck_assert_int_eq(config_parse_mode("delete-after:7", &mode, &days,
	    &e), 0);
	ck_assert_uint_eq(days, 7);
	ck_assert_str_eq(config_mode_name(mode, days, buf, sizeof(buf)),
	    "delete-after:7");
	ck_assert_int_eq(config_parse_mode("delete-after:", &mode, &days,
	    &e), -1);
	ck_assert_int_eq(config_parse_mode("delete-after:36501", &mode, &days,
	    &e), -1);
	ck_assert_int_eq(config_parse_mode("Keep", &mode, &days, &e), -1);
	ck_assert_int_eq(config_parse_tls("none", &tls, &e), 0);
	ck_assert_int_eq(tls, CONFIG_TLS_NONE);
	ck_assert_str_eq(config_tls_name(CONFIG_TLS_STLS), "stls");
	ck_assert_int_eq(config_parse_port("995", &e), 0);
	ck_assert_int_eq(config_parse_port("0995", &e), -1);
	ck_assert_int_eq(config_parse_port("", &e), -1);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("gateway_config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, good_file_parses_every_key);
	tcase_add_test(tc, empty_file_gives_defaults);
	tcase_add_test(tc, web_section);
	tcase_add_test(tc, crlf_and_indentation_accepted);
	tcase_add_loop_test(tc, bad_file_reports_line_and_reason, 0,
	    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, long_line_is_an_error);
	tcase_add_test(tc, long_comment_and_many_domains_accepted);
	tcase_add_test(tc, load_from_file);
	tcase_add_test(tc, value_parsers);
	tcase_add_test(tc, scale_out_keys);
	tcase_add_test(tc, cluster_secret_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
