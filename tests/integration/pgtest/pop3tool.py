"""Running tests/tools/pop3_fetch (the POP3 upstream without the gateway)
and reading back what it stored, for the POP3 integration tests."""
import os
import re
import shutil
import subprocess

from . import BUILD, sanitizer_report


def tool(name, build=None):
    return os.path.join(build or BUILD, "tests", "tools", name)


def account_spec(**kw):
    kw.setdefault("id", "acct1")
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("login", "alice")
    kw.setdefault("password", "secret")
    return ",".join("%s=%s" % (k, v) for k, v in kw.items())


class FetchResult:
    def __init__(self, proc_result):
        self.rc = proc_result.returncode
        self.stdout = proc_result.stdout.decode("utf-8", "replace")
        self.stderr = proc_result.stderr.decode("utf-8", "replace")
        self.polls = []
        for line in self.stdout.splitlines():
            if line.startswith("poll "):
                d = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line[5:]))
                self.polls.append({k: v.strip('"') for k, v in d.items()})

    def __repr__(self):
        return "rc=%d\n%s\n%s" % (self.rc, self.stdout, self.stderr[-4000:])


def run_fetch(test, store, accounts, polls=1, extra=(), timeout=120,
              check_clean=True, build=None):
    """Runs pop3_fetch; fails the test on a sanitizer report."""
    argv = [tool("pop3_fetch", build), "--store", store, "--user", "bob",
            "--polls", str(polls)] + list(extra)
    for a in accounts:
        argv += ["--account", a]
    r = FetchResult(subprocess.run(argv, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=timeout))
    rep = sanitizer_report(r.stderr)
    if rep:
        test.fail("sanitizer report from pop3_fetch:\n" + rep)
    if check_clean:
        check_store(test, store)
    return r


def check_store(test, store, build=None):
    r = subprocess.run([tool("store_check", build), store],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    test.assertEqual(r.returncode, 0, "store_check: %s" % r.stdout.decode())


def dump_store(test, store, directory, ids=("acct1",), build=None):
    """Every stored message's bytes (a list) and the ledger lines of the
    accounts ids."""
    if os.path.exists(directory):
        shutil.rmtree(directory)
    argv = [tool("pop3_fetch", build), "--store", store, "--user", "bob",
            "--no-poll", "--dump", directory]
    for i in ids:
        argv += ["--account", "id=" + i]
    r = subprocess.run(argv,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    test.assertEqual(r.returncode, 0, r.stderr.decode())
    msgs = []
    for n in sorted(os.listdir(directory)):
        if n.endswith(".eml"):
            with open(os.path.join(directory, n), "rb") as f:
                msgs.append(f.read())
    with open(os.path.join(directory, "ledger.txt")) as f:
        ledger = f.read().splitlines()
    return msgs, ledger
