#!/bin/sh
# Install the Debian packages popgate needs to build, test and benchmark.
# Run by `make` before every build: cheap when everything is there.
# As root it installs what is missing with apt-get; otherwise it prints the
# exact command to run.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
liblmdb-dev lmdb-utils libevent-dev libssl-dev openssl
libjansson-dev libinih-dev libargon2-dev zlib1g-dev check libsubunit-dev
libcurl4-openssl-dev libunistring-dev
python3 python3-prometheus-client groff-base curl isync fetchmail
thunderbird mutt tmux
chromium chromium-driver python3-selenium
dovecot-core dovecot-imapd dovecot-pop3d
nginx libnginx-mod-mail
fail2ban"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "popgate: missing Debian packages:$missing" >&2
	echo "install them with:  sudo apt-get install -y$missing" >&2
	exit 1
fi

echo "popgate: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Dovecot's and nginx's packages try to start the system service; the tests
# start their own instances on free loopback ports, so keep the system one
# from starting.
policy_made=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	policy_made=1
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ "$policy_made" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
