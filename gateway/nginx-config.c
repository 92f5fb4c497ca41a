/* nginx-config — nginx's configuration for the cluster (see the header). */
#include "nginx-config.h"

#include <string.h>

#include "gateway/config.h"

/* What popgate offers (imap-session.c), as nginx announces it before
 * login; after login the client talks to the node itself. STARTTLS is
 * nginx's own (its ssl settings), COMPRESS is left out: nginx relays
 * bytes and a client would compress through it, which works, but a
 * capability nginx does not itself implement is not announced before
 * login. */
static const char capabilities[] = "\"IMAP4rev1\" \"LITERAL+\" "
    "\"SASL-IR\" \"ID\" \"ENABLE\" \"IDLE\" \"NAMESPACE\" \"UIDPLUS\" "
    "\"MOVE\" \"UNSELECT\" \"CHILDREN\" \"SPECIAL-USE\" \"CONDSTORE\" "
    "\"QRESYNC\" \"ESEARCH\" \"LIST-EXTENDED\" \"LIST-STATUS\"";

static void
host_port(FILE *f, const struct config_listen *l)
{
	bool v6 = strchr(l->host, ':') != NULL;

	fprintf(f, "%s%s%s:%s", v6 ? "[" : "",
	    strcmp(l->host, "*") == 0 ? "127.0.0.1" : l->host, v6 ? "]" : "",
	    l->port);
}

int
nginx_config_write(FILE *f, const struct config *c, const char *listen,
    const char *relay, const char **error_r)
{
	if (c->cluster_auth_listen_count == 0) {
		*error_r = "no [cluster] auth_http_listen in this configuration";
		return -1;
	}
	fprintf(f,
	    "# nginx in front of popgate nodes (popgatectl nginx-config).\n"
	    "# Debian: apt-get install nginx libnginx-mod-mail (the module is\n"
	    "# loaded from /etc/nginx/modules-enabled/). Both blocks go at\n"
	    "# the top level of nginx.conf. See popgate's docs/scale-out.md.\n"
	    "\n"
	    "# auth_http takes one URL: a local relay to every node's\n"
	    "# auth_http service, so that a node that is down is skipped.\n"
	    "http {\n"
	    "    upstream popgate_auth {\n");
	fprintf(f, "        server ");
	host_port(f, &c->cluster_auth_listen[0]);
	fprintf(f, " max_fails=1 fail_timeout=10s;\n");
	for (size_t i = 0; i < c->cluster_peer_count; i++) {
		fprintf(f, "        server ");
		host_port(f, &c->cluster_peers[i]);
		fprintf(f, " max_fails=1 fail_timeout=10s;\n");
	}
	fprintf(f,
	    "    }\n"
	    "    server {\n"
	    "        listen %s;\n"
	    "        access_log off;\n"
	    "        location / {\n"
	    "            proxy_pass http://popgate_auth;\n"
	    "            proxy_next_upstream error timeout;\n"
	    "            proxy_connect_timeout 5s;\n"
	    "        }\n"
	    "    }\n"
	    "}\n"
	    "\n"
	    "mail {\n"
	    "    server_name popgate;\n"
	    "    auth_http %s/;\n"
	    "    auth_http_timeout 60s;\n"
	    "%s%s%s"
	    "    proxy_pass_error_message on;\n"
	    "    imap_auth plain login;\n"
	    "    imap_capabilities %s;\n"
	    "    # longer than the nodes' IDLE keep-alive ([imap]\n"
	    "    # idle_keepalive, 2 minutes by default)\n"
	    "    proxy_timeout 10m;\n"
	    "\n"
	    "    server {\n"
	    "        listen %s;\n"
	    "        protocol imap;\n"
	    "        # the client's address to the node: its [imap]\n"
	    "        # proxy_listen, with this machine in proxy_trusted\n"
	    "        proxy_protocol on;\n"
	    "        # TLS for clients, at the proxy:\n"
	    "        # starttls only;\n"
	    "        # ssl_certificate /etc/nginx/tls/fullchain.pem;\n"
	    "        # ssl_certificate_key /etc/nginx/tls/privkey.pem;\n"
	    "    }\n"
	    "}\n", relay, relay,
	    c->cluster_secret != NULL ? "    # the nodes' [cluster] secret: "
	    "keep this file private (chmod 600)\n    auth_http_header "
	    "X-Auth-Key \"" : "    # no [cluster] secret: the nodes' "
	    "auth_http must stay on loopback\n",
	    c->cluster_secret != NULL ? c->cluster_secret : "",
	    c->cluster_secret != NULL ? "\";\n" : "", capabilities, listen);
	return 0;
}
