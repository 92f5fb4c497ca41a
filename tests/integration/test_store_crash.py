"""Durability of the store: SIGKILL during delivery, full map, full disk.

A C writer (tests/tools/store_crash_writer) delivers batches of generated
messages with their UIDLs and prints each acknowledged batch. We kill it at
random moments, reopen the store and check, with the writer's verify mode
and the offline checker (tests/tools/store_check): the database opens;
every acknowledged message is present exactly once with its exact bytes and
its UIDL in the ledger; nothing half-written is visible (the messages form a
contiguous prefix of whole messages and the ledger matches them); UIDs never
go backwards.
"""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import pgtest

WRITER = os.path.join(pgtest.BUILD, "tests", "tools", "store_crash_writer")
CHECK = os.path.join(pgtest.BUILD, "tests", "tools", "store_check")
MAX_SIZE = 12 * 1024     # caps generated sizes: more rounds per second
ACK_RE = re.compile(r"^ACK (\d+) (\d+) (\d+) (\d+)$")


def run(argv, timeout=60):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def acks(text):
    """The acknowledged batches: complete lines only (a kill may cut one)."""
    out = []
    for line in text.split("\n")[:-1]:
        m = ACK_RE.match(line)
        if m:
            out.append(tuple(int(x) for x in m.groups()))
    return out


class StoreCrashTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="popgate-crash-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def check_store(self, d):
        rc, out = run([CHECK, d])
        self.assertEqual(rc, 0, "store_check: " + out)
        self.assertIsNone(pgtest.sanitizer_report(out), out)

    def verify(self, d, acked, full_from=1):
        rc, out = run([WRITER, "verify", d, str(acked), str(MAX_SIZE),
                       str(full_from)])
        self.assertEqual(rc, 0, "verify: " + out)
        m = re.search(r"OK messages=(\d+) uidnext=(\d+)", out)
        self.assertIsNotNone(m, out)
        return int(m.group(1)), int(m.group(2))

    def test_sigkill_during_delivery(self):
        seed = int(os.environ.get("STORE_CRASH_SEED", time.time()))
        rnd = random.Random(seed)
        rounds = 55
        acked = 0           # highest sequence number acknowledged so far
        uidnext = 1         # the mailbox's UIDNEXT after the last round
        stored = 0
        killed_mid_batch = 0
        log = os.path.join(self.dir, "writer.log")
        store = os.path.join(self.dir, "store")
        os.mkdir(store)
        for i in range(rounds):
            if os.path.exists(log):
                os.unlink(log)
            batch = rnd.choice([1, 5, 20, 50])
            w = pgtest.Proc([WRITER, "write", store, str(batch),
                             str(MAX_SIZE)], log_path=log)
            time.sleep(rnd.uniform(0.0, 0.35))
            w.kill()
            out = w.output()
            self.assertIsNone(pgtest.sanitizer_report(out), out)
            got = acks(out)
            if got:
                # UIDs never go backwards across restarts.
                self.assertGreaterEqual(got[0][2], uidnext,
                                        "seed %d round %d" % (seed, i))
                self.assertEqual(got[0][0], stored + 1,
                                 "resumed at the wrong message")
                acked = got[-1][1]
            n, nxt = self.verify(store, acked, full_from=stored + 1)
            self.assertGreaterEqual(nxt, uidnext)
            if n > acked:
                killed_mid_batch += 1   # committed, not yet acknowledged
            acked = max(acked, n)
            stored, uidnext = n, nxt
            if i % 5 == 4:
                # the full-text index agrees with the messages too: every
                # stored body has exactly its terms, nothing else is indexed
                self.check_store(store)
        self.verify(store, acked, full_from=1)
        self.check_store(store)
        self.assertGreater(stored, 0, "seed %d: nothing was ever stored" % seed)
        sys.stderr.write("[crash: seed=%d rounds=%d messages=%d "
                         "committed-unacked=%d] " %
                         (seed, rounds, stored, killed_mid_batch))

    def fill_until_error(self, store, map_size=0, fsize=0):
        rc, out = run([WRITER, "write", store, "5", str(MAX_SIZE),
                       str(map_size), str(fsize)], timeout=120)
        self.assertIsNone(pgtest.sanitizer_report(out), out)
        self.assertEqual(rc, 3, "writer should stop on an error: " + out[-500:])
        err = [l for l in out.splitlines() if l.startswith("ERR ")]
        self.assertEqual(len(err), 1, out[-500:])
        got = acks(out)
        return (got[-1][1] if got else 0), err[0]

    def test_map_full(self):
        store = os.path.join(self.dir, "store")
        os.mkdir(store)
        acked, err = self.fill_until_error(store, map_size=2 * 1024 * 1024)
        self.assertTrue(err.startswith("ERR NOSPACE"), err)
        self.assertIn("MDB_MAP_FULL", err)
        self.assertGreater(acked, 0)
        n, _ = self.verify(store, acked)
        self.assertEqual(n, acked, "a failed batch must store nothing")
        # Still full on the next try, and still clean.
        acked2, err = self.fill_until_error(store, map_size=2 * 1024 * 1024)
        self.assertTrue(err.startswith("ERR NOSPACE"), err)
        self.verify(store, max(acked, acked2))
        self.check_store(store)

    def test_disk_full(self):
        mnt = os.path.join(self.dir, "tmpfs")
        os.mkdir(mnt)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m",
                                  "tmpfs", mnt],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode == 0
        if mounted:
            self.addCleanup(subprocess.run, ["umount", "-l", mnt])
            store = mnt
            fsize = 0
        else:
            # No mount privilege: a file size limit gives EFBIG, which the
            # store reports like ENOSPC.
            store = os.path.join(self.dir, "store")
            os.mkdir(store)
            fsize = 2 * 1024 * 1024
        acked, err = self.fill_until_error(store, map_size=64 << 20,
                                           fsize=fsize)
        self.assertTrue(err.startswith("ERR NOSPACE"), err)
        self.assertGreater(acked, 0)
        n, _ = self.verify(store, acked)
        self.assertEqual(n, acked, "a failed batch must store nothing")
        self.check_store(store)
        sys.stderr.write("[disk full via %s: %d messages, then %s] " %
                         ("tmpfs" if mounted else "RLIMIT_FSIZE", acked,
                          err[:60]))


if __name__ == "__main__":
    unittest.main()
