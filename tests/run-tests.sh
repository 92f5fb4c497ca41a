#!/bin/sh
# Runs every test popgate has: Check unit suites (sanitizer build), a bounded
# libFuzzer run of each fuzz target on its seed corpus, and the integration
# tests against real servers and clients. Prints one closing line
# "N passed, N failed" and exits non-zero when anything failed.
#   tests/run-tests.sh BUILD_DIR FUZZ_BUILD_DIR [TSAN_BUILD_DIR]
# With a ThreadSanitizer build, its unit suites and the integration tests
# that drive the worker pool and the writer run there too (TSAN_TESTS).
set -u
B=${1:-build/test}
F=${2:-build/fuzz}
T=${3:-}
# Integration tests (run.py -k patterns) that the ThreadSanitizer build
# runs: every kind of job on the workers and the writer, concurrently.
# (test_scale_move, the user import's reader thread, took 86 s here and
# is left to TSAN_TESTS=test_scale_move runs: make test must stay under
# 20 minutes on 2 cores.)
TSAN_TESTS=${TSAN_TESTS:-"test_threads test_imap_commands test_sync_stress test_pop3_dovecot test_gateway_e2e test_scale_nginx test_imap_sort_keys"}
FUZZ_SECONDS=${FUZZ_SECONDS:-8}
PYTHON=${PYTHON:-python3}
passed=0
failed=0
failures=""

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_units() {
for t in "$@"; do
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	out=$(CK_VERBOSITY=normal "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks' | sed "s|^|$(basename "$t"): |"
	checks=$(printf '%s\n' "$out" | sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' | tail -n 1)
	if [ -z "$checks" ]; then
		failed=$((failed + 1)); failures="$failures $(basename "$t")"
		printf '%s\n' "$out" | tail -n 30
		continue
	fi
	set -- $checks
	bad=$(($2 + $3))
	passed=$((passed + $1 - bad))
	failed=$((failed + bad))
	if [ "$bad" -ne 0 ] || [ "$rc" -ne 0 ]; then
		[ "$bad" -eq 0 ] && failed=$((failed + 1))
		failures="$failures $(basename "$t")"
		printf '%s\n' "$out" | grep -vE '^[0-9]+%: Checks' | tail -n 40
	fi
done
}

echo "== unit tests (Check, $B)"
run_units "$B"/tests/unit/test_*

# Two targets at a time (each is one process on one core).
echo "== fuzz smoke runs (${FUZZ_SECONDS}s each, two at a time, $F)"
fuzz_one() {
	t=$1; res=$2
	name=$(basename "$t")
	work=$(mktemp -d)
	seeds="tests/fuzz/corpus/${name#fuzz_}"
	[ -d "$seeds" ] || seeds=""
	if "$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$work/" "$work" $seeds >"$work/log" 2>&1; then
		echo "$name: ok ($(grep -c . "$work/log") log lines)" >"$res/$name.ok"
	else
		{ tail -n 40 "$work/log"
		  ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null
		} >"$res/$name.fail"
	fi
	rm -rf "$work"
}
fres=$(mktemp -d)
lane0=""; lane1=""; n=0
for t in "$F"/tests/fuzz/fuzz_*; do
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	if [ $((n % 2)) -eq 0 ]; then lane0="$lane0 $t"; else lane1="$lane1 $t"; fi
	n=$((n + 1))
done
( for t in $lane0; do fuzz_one "$t" "$fres"; done ) &
( for t in $lane1; do fuzz_one "$t" "$fres"; done ) &
wait
for t in "$F"/tests/fuzz/fuzz_*; do
	case "$t" in *.o|*.d) continue ;; esac
	[ -x "$t" ] || continue
	name=$(basename "$t")
	if [ -f "$fres/$name.ok" ]; then
		passed=$((passed + 1))
		cat "$fres/$name.ok"
	else
		failed=$((failed + 1)); failures="$failures $name"
		echo "$name: FAILED"
		cat "$fres/$name.fail" 2>/dev/null
	fi
done
rm -rf "$fres"

# Modules run three at a time (POPGATE_TEST_JOBS): they mostly wait on
# servers and clients, and this keeps make test in its time budget.
JOBS=${POPGATE_TEST_JOBS:-3}
echo "== integration tests ($B, $JOBS at a time)"
out=$(mktemp)
$PYTHON tests/integration/run.py --build "$B" -j "$JOBS" 2>&1 | tee "$out"
line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
if [ -n "$line" ]; then
	ip=$(printf '%s' "$line" | sed 's/integration: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/')
	if_=$(printf '%s' "$line" | sed 's/integration: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/')
	passed=$((passed + ip)); failed=$((failed + if_))
	[ "$if_" -ne 0 ] && failures="$failures integration"
else
	failed=$((failed + 1)); failures="$failures integration-runner"
fi
rm -f "$out"

if [ -n "$T" ]; then
	# halt_on_error: a data race fails the suite it happened in
	export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$(pwd)/tests/tsan.supp}
	echo "== ThreadSanitizer: unit tests ($T)"
	run_units "$T"/tests/unit/test_*
	echo "== ThreadSanitizer: integration tests ($T): $TSAN_TESTS"
	out=$(mktemp)
	ks=""
	for k in $TSAN_TESTS; do ks="$ks -k $k"; done
	# shellcheck disable=SC2086
	# two at a time (POPGATE_TSAN_JOBS): ThreadSanitizer makes each
	# several times slower, but most of a module's time is still spent
	# waiting on servers and clients; one at a time took 5 of make
	# test's 18 minutes
	$PYTHON tests/integration/run.py --build "$T" -j "${POPGATE_TSAN_JOBS:-2}" $ks 2>&1 | tee "$out"
	line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [ -n "$line" ]; then
		ip=$(printf '%s' "$line" | sed 's/integration: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/')
		if_=$(printf '%s' "$line" | sed 's/integration: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/')
		passed=$((passed + ip)); failed=$((failed + if_))
		[ "$if_" -ne 0 ] && failures="$failures tsan-integration"
	else
		failed=$((failed + 1)); failures="$failures tsan-integration-runner"
	fi
	rm -f "$out"
fi

echo
[ -n "$failures" ] && echo "failing:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
