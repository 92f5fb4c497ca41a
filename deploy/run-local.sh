#!/bin/sh
# `make run`: start a working gateway on a local default configuration that
# needs no editing. Everything lives under ./var/ in the checkout (ignored by
# git): the configuration, the data directory, the control socket, and a
# local certificate authority with a server certificate signed by it, made
# on first start. IMAP listens on 127.0.0.1:1143 (STARTTLS) and
# 127.0.0.1:1993 (TLS), the metrics on 127.0.0.1:9154, the web page for
# people on https://127.0.0.1:8443/ (docs/web.md), so no root is
# needed. Once the gateway answers, a short banner says where everything
# is; the ports in it are read from the configuration in use.
#   deploy/run-local.sh BUILD_DIR
# A listener for a proxy in front (PROXY protocol from 127.0.0.1) on
# 127.0.0.1:1144 and nginx's auth_http service on 127.0.0.1:9144 make it a
# one-node cluster that nginx's mail proxy can front (popgatectl -c
# var/popgate.conf nginx-config; docs/scale-out.md).
# POPGATE_IMAP_PORT / POPGATE_IMAPS_PORT / POPGATE_METRICS_PORT /
# POPGATE_PROXY_PORT / POPGATE_AUTH_HTTP_PORT / POPGATE_WEB_PORT move the
# ports (used by the
# tests; they apply when the configuration is first written).
set -eu
B=${1:-build/release}
case "$B" in /*) ;; *) B="$(pwd)/$B" ;; esac
IMAP_PORT=${POPGATE_IMAP_PORT:-1143}
IMAPS_PORT=${POPGATE_IMAPS_PORT:-1993}
METRICS_PORT=${POPGATE_METRICS_PORT:-9154}
PROXY_PORT=${POPGATE_PROXY_PORT:-1144}
AUTH_HTTP_PORT=${POPGATE_AUTH_HTTP_PORT:-9144}
WEB_PORT=${POPGATE_WEB_PORT:-8443}
ROOT=$(pwd)
VAR="$ROOT/var"
TLS="$VAR/tls"
CONF="$VAR/popgate.conf"
SOCK="$VAR/popgate.sock"

mkdir -p "$TLS"
chmod 700 "$VAR"

# A CA of this checkout's own, and a server certificate it signs: a mail
# program that trusts ca.pem once trusts every certificate made here, with
# no exception to click through. (A self-signed server certificate is what
# older versions made; they are replaced.)
if [ ! -s "$TLS/ca.pem" ] || [ ! -s "$TLS/ca-key.pem" ]; then
	echo "popgate: making a local certificate authority in $TLS/"
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout "$TLS/ca-key.pem" -out "$TLS/ca.pem" \
			-days 3650 -subj "/CN=popgate local CA (make run)" \
			-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			>/dev/null 2>&1
	)
	chmod 644 "$TLS/ca.pem"
	rm -f "$TLS/cert.pem" "$TLS/key.pem"
fi
if [ ! -s "$TLS/cert.pem" ] || [ ! -s "$TLS/key.pem" ]; then
	echo "popgate: making a server certificate for localhost, signed by the local CA"
	(
		umask 077
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout "$TLS/key.pem" -out "$TLS/server.csr" \
			-subj "/CN=localhost" >/dev/null 2>&1
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
			>"$TLS/server.ext"
		# 825 days: the longest some mail programs accept
		openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" \
			-CAkey "$TLS/ca-key.pem" -CAcreateserial \
			-out "$TLS/cert.pem" -days 825 -extfile "$TLS/server.ext" \
			>/dev/null 2>&1
		rm -f "$TLS/server.csr" "$TLS/server.ext" "$TLS/ca.srl"
	)
fi

if [ ! -e "$CONF" ]; then
	cat >"$CONF" <<CONF
# popgate local configuration, written by deploy/run-local.sh (make run).
# See docs/popgate.conf.5 for every setting.

[imap]
listen = 127.0.0.1:$IMAP_PORT
listen_tls = 127.0.0.1:$IMAPS_PORT
cert = $TLS/cert.pem
key = $TLS/key.pem
# loopback counts as secure, so LOGIN works on $IMAP_PORT without STARTTLS here
loopback_secure = yes
# "* OK Still here" during IDLE, so proxies and NATs keep the connection
idle_keepalive = 2m
# for a proxy in front (nginx's mail proxy with proxy_protocol on): the
# client's address comes in a PROXY header
proxy_listen = 127.0.0.1:$PROXY_PORT
proxy_trusted = 127.0.0.1

[store]
data_dir = $VAR/data
map_size = 1G

[control]
socket = $SOCK

[log]
target = stderr
level = info

[metrics]
enabled = yes
listen = 127.0.0.1:$METRICS_PORT

[cluster]
# nginx's auth_http service: nginx asks it where each login goes
# (popgatectl -c $CONF nginx-config prints nginx's configuration);
# on loopback it needs no key, on any other address secret_file
auth_http_listen = 127.0.0.1:$AUTH_HTTP_PORT
node_address = 127.0.0.1:$PROXY_PORT

# the page where people see their old accounts (docs/web.md)
[web]
enabled = yes
listen = 127.0.0.1:$WEB_PORT

[upstream-defaults]
interval = 5m
mode = keep
tls = pop3s
CONF
	echo "popgate: wrote $CONF"
fi

# What the configuration in use says (the daemon's own parser reads it).
if ! CHECK=$("$B/popgated" -t -c "$CONF" 2>&1); then
	echo "$CHECK" >&2
	exit 1
fi
listen_of() {
	printf '%s\n' "$CHECK" | sed -n "s/^listen $1 //p"
}
IMAP=$(listen_of imap | tr '\n' ' ')
IMAPS=$(listen_of imaps | tr '\n' ' ')
METRICS=$(listen_of metrics | tr '\n' ' ')
PROXY=$(listen_of imap-proxy | tr '\n' ' ')
AUTH_HTTP=$(listen_of auth-http | tr '\n' ' ')
WEB=$(listen_of web | tr '\n' ' ')
SOCK=$(printf '%s\n' "$CHECK" | sed -n 's/^control //p')
DATA=$(printf '%s\n' "$CHECK" | sed -n 's/^data_dir //p')
FIRST_IMAP=$(listen_of imap | head -n 1)
CTL="$B/popgatectl -s $SOCK"

# The banner comes last, once the daemon answers on its socket, so that it
# is not lost among the start-up lines. $$ is the daemon's PID after exec.
(
	pid=$$
	tries=0
	while [ $tries -lt 300 ]; do
		kill -0 "$pid" 2>/dev/null || exit 0
		if $CTL stats >/dev/null 2>&1; then
			break
		fi
		sleep 0.1
		tries=$((tries + 1))
	done
	[ $tries -lt 300 ] || exit 0
	cat <<MSG

popgate is running (Ctrl-C stops it)
  IMAP     ${IMAP:-none}(STARTTLS)   ${IMAPS:-none}(TLS)
  metrics  ${METRICS:+http://}${METRICS:-off}
  proxy    ${PROXY:-none}(PROXY protocol)   auth_http ${AUTH_HTTP:+http://}${AUTH_HTTP:-off}
           (nginx in front: $B/popgatectl -c $CONF nginx-config)
  web      ${WEB:-off}(people sign in with their IMAP password)
  config   $CONF
  data     $DATA
  import   $TLS/ca.pem into your mail program: the local CA that signed
           the server's certificate (docs/admin-guide.md, section 1)

Add a user and an upstream POP3 account (in another terminal):

  echo 'user-password' | $CTL user add alice --password-stdin
  echo 'pop3-password' | $CTL account add alice \\
      --host pop.example.org --port 995 --tls pop3s \\
      --login alice@example.org --password-stdin
  $CTL poll alice
  $CTL status

then point a mail client at ${FIRST_IMAP:-the IMAP port} (user alice).

MSG
) &
exec "$B/popgated" -c "$CONF" -f
