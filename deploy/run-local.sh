#!/bin/sh
# `make run`: start a working gateway on a local default configuration that
# needs no editing. Everything lives under ./var/ in the checkout (ignored by
# git): the configuration, the data directory, the control socket and a
# self-signed certificate generated on first start. IMAP listens on
# 127.0.0.1:1143 (STARTTLS) and 127.0.0.1:1993 (TLS), so no root is needed.
#   deploy/run-local.sh BUILD_DIR
# POPGATE_IMAP_PORT / POPGATE_IMAPS_PORT move the ports (used by the tests;
# they apply when the configuration is first written).
set -eu
B=${1:-build/release}
case "$B" in /*) ;; *) B="$(pwd)/$B" ;; esac
IMAP_PORT=${POPGATE_IMAP_PORT:-1143}
IMAPS_PORT=${POPGATE_IMAPS_PORT:-1993}
ROOT=$(pwd)
VAR="$ROOT/var"
CONF="$VAR/popgate.conf"
SOCK="$VAR/popgate.sock"

mkdir -p "$VAR/tls"
chmod 700 "$VAR"

if [ ! -s "$VAR/tls/cert.pem" ] || [ ! -s "$VAR/tls/key.pem" ]; then
	echo "popgate: generating a self-signed certificate for localhost in $VAR/tls/"
	umask 077
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -keyout "$VAR/tls/key.pem" -out "$VAR/tls/cert.pem" \
		-days 825 -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		>/dev/null 2>&1
	umask 022
fi

if [ ! -e "$CONF" ]; then
	cat >"$CONF" <<CONF
# popgate local configuration, written by deploy/run-local.sh (make run).
# See docs/popgate.conf.5 for every setting.

[imap]
listen = 127.0.0.1:$IMAP_PORT
listen_tls = 127.0.0.1:$IMAPS_PORT
cert = $VAR/tls/cert.pem
key = $VAR/tls/key.pem
# loopback counts as secure, so LOGIN works on 1143 without STARTTLS here
loopback_secure = yes

[store]
data_dir = $VAR/data
map_size = 1G

[control]
socket = $SOCK

[log]
target = stderr
level = info

[upstream-defaults]
interval = 5m
mode = keep
tls = pop3s
CONF
	echo "popgate: wrote $CONF"
fi

CTL="$B/popgatectl -s $SOCK"
cat <<MSG

popgate is starting in the foreground (Ctrl-C stops it).
  IMAP   127.0.0.1:$IMAP_PORT (STARTTLS)   127.0.0.1:$IMAPS_PORT (TLS, self-signed)
  data   $VAR/data
  config $CONF

In another terminal, add a user and an upstream POP3 account:

  echo 'user-password' | $CTL user add alice --password-stdin
  echo 'pop3-password' | $CTL account add alice \\
      --host pop.example.org --port 995 --tls pop3s \\
      --login alice@example.org --password-stdin
  $CTL poll alice
  $CTL status

then point a mail client at 127.0.0.1:$IMAP_PORT (user alice).

MSG
exec "$B/popgated" -c "$CONF" -f
