"""Pieces the benchmarks share (not a benchmark: run.sh runs bench_* only).

- CPU time of a process from /proc: per thread (popgated's loop, workers
  and writer by their thread names) and of a process tree (Dovecot's
  master and everything under it, exited children included).
- popgated started from a build for a benchmark, and an upstream import
  waited for through the control socket.
- Percentiles and a bounded wait.
"""
import math
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path):
    """(comm, fields after the comm) of a /proc stat file, or None."""
    try:
        with open(path) as f:
            st = f.read()
    except OSError:
        return None
    comm = st[st.index("(") + 1:st.rindex(")")]
    return comm, st[st.rindex(")") + 2:].split()


def _secs(fields, children):
    # fields[0] is the state (field 3 of proc(5)): utime is field 14
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t / TICK


def thread_cpu(pid):
    """{tid: (thread name, user+sys seconds)} of every thread of pid."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        r = _stat_fields("/proc/%d/task/%s/stat" % (pid, tid))
        if r is not None:
            out[int(tid)] = (r[0], _secs(r[1], False))
    return out


def thread_kind(pid, tid, name):
    if tid == pid:
        return "loop"
    if name.startswith("pg-worker"):
        return "workers"
    if name == "pg-writer":
        return "writer"
    return "other"


def cpu_by_kind(pid, before, after):
    """Seconds of CPU between two thread_cpu() snapshots, summed by kind:
    loop (the main thread), workers, writer, other; and total."""
    out = {"loop": 0.0, "workers": 0.0, "writer": 0.0, "other": 0.0}
    for tid, (name, secs) in after.items():
        prev = before.get(tid, (name, 0.0))[1]
        out[thread_kind(pid, tid, name)] += secs - prev
    out["total"] = sum(out.values())
    return out


def tree_cpu(pids):
    """user+sys seconds of the processes pids (a whole tree: give every
    member) including their waited-for children, so that processes that
    exited in between still count through their parent."""
    total = 0.0
    for pid in pids:
        r = _stat_fields("/proc/%d/stat" % pid)
        if r is not None:
            total += _secs(r[1], True)
    return total


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = max(1, int(math.ceil(q / 100.0 * len(v))))
    return v[min(k, len(v)) - 1]


def start_popgated(tmp, ca, build, limits="", map_size="16G", imap=True,
                   log_level="info"):
    """popgated from build (the release build), configured by pgtest's
    Gateway, without the protocol trace, logging at info (the default);
    not started yet."""
    from pgtest.gateway import Gateway
    gw = Gateway(os.path.join(tmp, "gw"), ca, build=build, rawlog=False,
                 log_level=log_level, map_size=map_size, imap=imap,
                 sections={"limits": limits})
    return gw


def import_status(gw, user, account):
    st = gw.ok({"command": "status", "user": user})
    for a in st["accounts"]:
        if a["account"] == account:
            return a["status"]
    return None


def import_done(s, count):
    """True once the account's poll finished, having fetched count."""
    if s is None:
        return False
    if s.get("last_error"):
        raise RuntimeError("poll failed: %s" % s["last_error"])
    return (s.get("last_success") is not None and
            s.get("messages_fetched", 0) >= count and
            s["state"] not in ("polling", "queued"))


def wait_until(pred, timeout, step=0.05):
    """Calls pred() until it returns true or timeout seconds pass; returns
    the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)
