#!/usr/bin/env python3
"""Runs the integration tests (tests/integration/test_*.py) with unittest.

Each test starts the real processes it needs (popgated from the sanitizer
build, Dovecot, clients) on loopback ports and stops them by PID.
Prints a closing line "integration: N passed, N failed".
    run.py --build build/test [-k PATTERN] [-v] [-j JOBS]

With -j N (or POPGATE_TEST_JOBS=N) the test modules run in N processes
at once, each module whole in one process (its fixtures are shared by its
tests), the longest first: the tests spend most of their time waiting on
servers and clients, so two run side by side on two cores in about
half the time. A module's output is printed in one piece when it ends.
The modules' times are kept in BUILD/integration-times.json to order the
next run; without it, the biggest files go first.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = "integration: %d passed, %d failed"


def run_suite(suite, verbose):
    runner = unittest.TextTestRunner(verbosity=2 if verbose else 1,
                                     stream=sys.stdout)
    result = runner.run(suite)
    # A skipped integration test counts as failed: the project installs
    # every real part it needs, so nothing has a reason to skip.
    bad = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses) + len(result.skipped)
    return result.testsRun - bad, bad


def modules():
    return sorted(f[:-3] for f in os.listdir(HERE)
                  if f.startswith("test_") and f.endswith(".py"))


def parse_summary(text):
    for line in reversed(text.splitlines()):
        if line.startswith("integration: "):
            parts = line.split()
            return int(parts[1]), int(parts[3])
    return None


def run_parallel(args):
    times_file = os.path.join(args.build, "integration-times.json")
    try:
        with open(times_file) as f:
            times = json.load(f)
    except (OSError, ValueError):
        times = {}
    mods = modules()
    # longest first, so the last ones to start are short
    mods.sort(key=lambda m: (times.get(m, 0),
                             os.path.getsize(os.path.join(HERE, m + ".py"))),
              reverse=True)
    base = [sys.executable, os.path.abspath(__file__), "--build",
            args.build]
    for p in args.pattern or []:
        base += ["-k", p]
    if args.verbose:
        base.append("-v")
    running = []
    good = bad = 0
    pending = list(mods)
    while pending or running:
        while pending and len(running) < args.jobs:
            m = pending.pop(0)
            out = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(base + ["--module", m], stdout=out,
                                    stderr=subprocess.STDOUT)
            running.append((m, proc, out, time.monotonic()))
        time.sleep(0.2)
        for item in list(running):
            m, proc, out, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            took = time.monotonic() - t0
            out.seek(0)
            text = out.read()
            out.close()
            counts = parse_summary(text)
            if counts is None:
                counts = (0, 1)	# the module did not even report
            good += counts[0]
            bad += counts[1]
            if counts != (0, 0):
                times[m] = round(took, 1)
            body = "\n".join(l for l in text.splitlines()
                             if not l.startswith("integration: "))
            sys.stdout.write("--- %s: %d passed, %d failed, %.0f s\n%s\n"
                             % (m, counts[0], counts[1], took, body))
            sys.stdout.flush()
    try:
        with open(times_file, "w") as f:
            json.dump(times, f, indent=0, sort_keys=True)
    except OSError:
        pass
    return good, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/test")
    ap.add_argument("-k", dest="pattern", action="append", default=None)
    ap.add_argument("-v", dest="verbose", action="store_true")
    ap.add_argument("-j", dest="jobs", type=int,
                    default=int(os.environ.get("POPGATE_TEST_JOBS", "1")))
    ap.add_argument("--module", default=None,
                    help="run one module (used by -j)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    os.environ["POPGATE_BUILD"] = args.build
    sys.path.insert(0, HERE)
    if args.jobs > 1 and args.module is None:
        good, bad = run_parallel(args)
    else:
        loader = unittest.TestLoader()
        if args.pattern:
            loader.testNamePatterns = ["*%s*" % p for p in args.pattern]
        if args.module is not None:
            import importlib
            suite = loader.loadTestsFromModule(
                importlib.import_module(args.module))
        else:
            suite = loader.discover(HERE, pattern="test_*.py",
                                    top_level_dir=HERE)
        good, bad = run_suite(suite, args.verbose)
    print(SUMMARY % (good, bad))
    sys.exit(0 if bad == 0 else 1)


if __name__ == "__main__":
    main()
