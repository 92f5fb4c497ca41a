#!/bin/sh
# `make bench`: every benchmark, each printing its figures side by side with
# the peer a user would choose instead. Benchmarks never fail on timing.
#   tests/bench/run.sh BUILD_DIR
set -u
B=${1:-build/release}
status=0
for b in tests/bench/bench_*.sh tests/bench/bench_*.py; do
	[ -e "$b" ] || continue
	echo "== $(basename "$b")"
	case "$b" in
	*.py) python3 "$b" --build "$B" || status=1 ;;
	*) sh "$b" "$B" || status=1 ;;
	esac
done
exit $status
