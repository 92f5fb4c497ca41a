#!/usr/bin/env python3
"""Runs the integration tests (tests/integration/test_*.py) with unittest.

Each test starts the real processes it needs (popgated from the sanitizer
build, Dovecot, clients) on free loopback ports and stops them by PID.
Prints a closing line "integration: N passed, N failed".
    run.py --build build/test [-k PATTERN] [-v]
"""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/test")
    ap.add_argument("-k", dest="pattern", action="append", default=None)
    ap.add_argument("-v", dest="verbose", action="store_true")
    args = ap.parse_args()
    os.environ["POPGATE_BUILD"] = os.path.abspath(args.build)
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ["*%s*" % p for p in args.pattern]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1,
                                     stream=sys.stdout)
    result = runner.run(suite)
    # A skipped integration test counts as failed: the project installs
    # every real part it needs, so nothing has a reason to skip.
    bad = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses) + len(result.skipped)
    good = result.testsRun - bad
    print("integration: %d passed, %d failed" % (good, bad))
    sys.exit(0 if bad == 0 else 1)


if __name__ == "__main__":
    main()
