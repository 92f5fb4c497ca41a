#!/bin/sh
# The store's benchmark: durable batched delivery, body placement (files
# vs LMDB), listing and flagging a 100,000-message mailbox, memory as it
# grows. There is no natural peer for the raw store, so the figures are
# absolute (the body-placement line compares the two designs in one run).
#   tests/bench/bench_store.sh BUILD_DIR
set -u
B=${1:-build/release}
tool="$B/tests/tools/bench_store"
[ -x "$tool" ] || { echo "bench_store: $tool not built"; exit 1; }
# On the disk the store would use (not a tmpfs), removed afterwards.
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/popgate-bench-store.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
echo "store benchmark on $(df -P "$dir" | awk 'NR==2 {print $1}'), $(nproc) CPUs"
"$tool" "$dir"
