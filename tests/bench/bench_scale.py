#!/usr/bin/env python3
"""Scale-out through nginx (issue 17), side by side in one run:

  direct   one popgated node, clients connect to it
  nginx    Debian's nginx (mail module, proxy_protocol on) in front of two
           popgated nodes, users spread over both; every login goes
           through the nodes' auth_http service

Rows: logins per second (connect, LOGIN, LOGOUT; C clients at once, N
logins in all, real argon2id hashes) and IDLE sessions held (K sessions
logged in, SELECTed and IDLE, all still answering; nginx's anonymous
memory per relayed session; the nodes' own is bench_abuse's figure).
Prints the ratio nginx/direct. Bounded in count; never fails on timing.
    bench_scale.py --build build/release [--count 200] [--idle 400]
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)


def args_build():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--idle", type=int, default=400)
    return ap.parse_args()


ARGS = args_build()
os.environ["POPGATE_BUILD"] = os.path.abspath(ARGS.build)

import pgtest  # noqa: E402
from pgtest import Proc, TestCA, free_port, tempdir, wait_port  # noqa: E402
from pgtest.gateway import Gateway, popgatectl  # noqa: E402


def anon_kb(pids):
    """Anonymous resident memory (RssAnon): the session's own heap, not
    the store's mapped pages, which come and go with the page cache."""
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    total += int(line.split()[1])
    return total

NGINX = "/usr/sbin/nginx"
MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
USERS = 20


def node(tmp, ca, name, auth_ports):
    proxy = free_port()
    peers = ", ".join("127.0.0.1:%d" % p for n, p in sorted(
        auth_ports.items()) if n != name)
    gw = Gateway(os.path.join(tmp, name), ca, imap=False, sections={
        "imap": "listen = 127.0.0.1:%d\nproxy_listen = 127.0.0.1:%d\n"
                "proxy_trusted = 127.0.0.1\n" % (free_port(), proxy),
        "limits": "imap_connections = 20000\n"
                  "imap_connections_per_ip = 20000\n"
                  "imap_preauth_per_ip = 20000\n"
                  "imap_connections_per_user = 20000\n"},
        extra="[cluster]\nauth_http_listen = 127.0.0.1:%d\n"
              "node_address = 127.0.0.1:%d\n%s"
              % (auth_ports[name], proxy,
                 "peers = %s\n" % peers if peers else ""))
    # log at info: debug lines are not what is measured
    with open(gw.conf) as f:
        text = f.read().replace("level = debug", "level = info")
    with open(gw.conf, "w") as f:
        f.write(text)
    gw.start(wait=False)
    gw.wait_ready(120)
    wait_port(auth_ports[name], 60)
    return gw


def plain_port(gw):
    with open(gw.conf) as f:
        for line in f:
            if line.startswith("listen = 127.0.0.1:"):
                return int(line.split(":")[1])
    raise RuntimeError("no listen")


def start_nginx(tmp, conf_of, port):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    relay = free_port()
    gen = subprocess.run([popgatectl(), "-c", conf_of, "nginx-config",
                          "--listen", "127.0.0.1:%d" % port, "--relay",
                          "127.0.0.1:%d" % relay],
                         capture_output=True, text=True, timeout=60,
                         check=True).stdout
    gen = gen.replace("http {\n", "http {\n    client_body_temp_path %s/b;\n"
                      "    proxy_temp_path %s/p;\n    fastcgi_temp_path %s/f;"
                      "\n    uwsgi_temp_path %s/u;\n    scgi_temp_path %s/s;"
                      "\n    access_log off;\n" % ((d,) * 5), 1)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("load_module %s;\nmaster_process off;\ndaemon off;\n"
                "worker_rlimit_nofile 20000;\npid %s/nginx.pid;\n"
                "error_log %s/error.log warn;\n"
                "events { worker_connections 10000; }\n%s"
                % (MAIL_MODULE, d, d, gen))
    p = Proc([NGINX, "-p", d + "/", "-e", d + "/error.log", "-c", conf],
             log_path=os.path.join(d, "out.log"))
    wait_port(port, 60)
    return p


def readline(s, buf):
    while b"\r\n" not in buf[0]:
        d = s.recv(65536)
        if not d:
            raise RuntimeError("closed")
        buf[0] += d
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line


def until_tag(s, buf, tag):
    while True:
        line = readline(s, buf)
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(line.decode(errors="replace"))
            return


def login(port, user, idle=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    buf = [b""]
    readline(s, buf)
    s.sendall(b"l LOGIN %s %s-pw\r\n" % (user.encode(), user.encode()))
    until_tag(s, buf, b"l")
    if idle:
        s.sendall(b"s SELECT INBOX\r\n")
        until_tag(s, buf, b"s")
        s.sendall(b"i IDLE\r\n")
        readline(s, buf)
        return s
    s.sendall(b"o LOGOUT\r\n")
    until_tag(s, buf, b"o")
    s.close()
    return None


def logins_per_sec(port, users, n, clients):
    left = [n]
    lock = threading.Lock()
    errors = []

    def work(k):
        i = k
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                login(port, users[i % len(users)])
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                return
            i += clients
    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        raise RuntimeError("login failed: %s" % errors[0])
    return n / dt


def idle_held(port, users, k, groups):
    """Opens k IDLE sessions; returns how many are still open after a
    second (each then answers a DONE), and for each group of processes
    its RssAnon growth per session."""
    base = [anon_kb(g) for g in groups]
    socks = [login(port, users[i % len(users)], idle=True)
             for i in range(k)]
    time.sleep(1.0)
    used = [anon_kb(g) - b for g, b in zip(groups, base)]
    held = 0
    for s in socks:
        buf = [b""]
        s.sendall(b"DONE\r\n")
        try:
            until_tag(s, buf, b"i")
            held += 1
        except (RuntimeError, OSError):
            pass
        s.close()
    time.sleep(1.0)
    return held, [u / k for u in used]


def password_checks(gws):
    """argon2id hashes the nodes have verified, and their ticket logins."""
    st = [gw.ok({"command": "stats"})["stats"]["imap"] for gw in gws]
    return (sum(s["password_checks"] for s in st),
            sum(s["ticket_logins"] for s in st))


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (min(hard, max(soft, 4 * ARGS.idle + 1000)), hard))
    tmp = tempdir("popgate-bench-scale-")
    ca = TestCA(tmp)
    auth = {"a": free_port(), "b": free_port()}
    a = node(tmp, ca, "a", auth)
    b = node(tmp, ca, "b", auth)
    ngx_port = free_port()
    ngx = None
    try:
        users = []
        for i in range(USERS):
            gw, u = (a, "ua%d" % i) if i % 2 == 0 else (b, "ub%d" % i)
            gw.ok({"command": "user.add", "user": u, "password": u + "-pw"})
            users.append(u)
        users_a = [u for u in users if u.startswith("ua")]
        ngx = start_nginx(tmp, a.conf, ngx_port)
        n, c = ARGS.count, ARGS.clients
        # warm-up: both paths, a few logins each
        logins_per_sec(plain_port(a), users_a, 10, 2)
        logins_per_sec(ngx_port, users, 10, 2)
        c0 = password_checks([a, b])
        direct = logins_per_sec(plain_port(a), users_a, n, c)
        c1 = password_checks([a, b])
        proxied = logins_per_sec(ngx_port, users, n, c)
        c2 = password_checks([a, b])
        k = ARGS.idle
        # the nodes' memory per session is bench_abuse's figure: here
        # their heaps still hold what the argon2id hashes of the login
        # rows freed, so new sessions fit in pages already counted
        held_direct = idle_held(plain_port(a), users_a, k, [])
        held_ngx, (kb_proxy,) = idle_held(ngx_port, users, k, [[ngx.p.pid]])
        print("%d logins per row, %d clients at once; %d IDLE sessions"
              % (n, c, k))
        print("| what | one node, direct | nginx + 2 nodes | nginx/direct |")
        print("|---|---|---|---|")
        print("| logins/s (connect, LOGIN, LOGOUT) | %.1f | %.1f | %.2f |"
              % (direct, proxied, proxied / direct))
        print("| argon2id hashes per login (nodes' password_checks) | %.2f "
              "| %.2f | |" % ((c1[0] - c0[0]) / n, (c2[0] - c1[0]) / n))
        print("| logins with an auth_http ticket | %d of %d | %d of %d | |"
              % (c1[1] - c0[1], n, c2[1] - c1[1], n))
        print("| IDLE sessions held (SELECTed, IDLE) | %d of %d | %d of %d "
              "| |" % (held_direct[0], k, held_ngx, k))
        print("| nginx's anonymous memory per relayed IDLE session | | "
              "%.1f KB | |" % kb_proxy)
    finally:
        if ngx is not None:
            ngx.stop()
        for gw in (a, b):
            gw.stop()


if __name__ == "__main__":
    main()
