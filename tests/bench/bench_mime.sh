#!/bin/sh
# Message parser throughput (issue 3): MB/s over a generated corpus of
# realistic mail, whole and chunked, next to a bare memchr line scan of the
# same bytes (no mail server exposes its parser alone to time against).
# Bounded: ~64 MB corpus, 2 s per figure.
#   tests/bench/bench_mime.sh BUILD_DIR
set -u
B=${1:-build/release}
bin="$B/tests/tools/mail_bench"
if [ ! -x "$bin" ]; then
	echo "bench_mime: $bin missing (make MODE=release build-mode)" >&2
	exit 1
fi
exec "$bin" "${MAIL_BENCH_MB:-64}" "${MAIL_BENCH_SECONDS:-2}"
