"""popgated as a process: configuration errors stop start-up with file,
line and reason (and `-t` checks); the control socket has its mode from the
first instant, a symlink / regular file / live socket at its path makes
start-up refuse, a stale socket is replaced; another Unix user cannot use
the socket (file mode, and peer credentials when the mode would let them
in); the secret key file must be private; started as root the daemon drops
to the configured user."""
import grp
import imaplib
import os
import pwd
import re
import socket
import stat
import subprocess
import time
import unittest
import uuid

from pgtest import ROOT, Proc, TestCA, tempdir
from pgtest.gateway import Gateway, popgated


def run_daemon(conf, timeout=30):
    return subprocess.run([popgated(), "-c", conf, "-f"], capture_output=True,
                          text=True, timeout=timeout)


class ThrowawayUsers:
    """System users and a group made for one test and removed after it."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:8]
        self.users = []
        self.groups = []

    def group(self):
        name = "pgg" + self.tag
        subprocess.run(["groupadd", "-r", name], check=True)
        self.groups.append(name)
        return name, grp.getgrnam(name).gr_gid

    def user(self, suffix, groups=()):
        name = "pgu%s%s" % (self.tag, suffix)
        argv = ["useradd", "-r", "-M", "-s", "/usr/sbin/nologin"]
        if groups:
            argv += ["-G", ",".join(groups)]
        subprocess.run(argv + [name], check=True)
        self.users.append(name)
        pw = pwd.getpwnam(name)
        return name, pw.pw_uid, pw.pw_gid

    def cleanup(self):
        for u in self.users:
            subprocess.run(["userdel", u], check=False,
                           stderr=subprocess.DEVNULL)
        for g in self.groups:
            subprocess.run(["groupdel", g], check=False,
                           stderr=subprocess.DEVNULL)


class GatewayDaemonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempdir()
        cls.ca = TestCA(cls.tmp)

    def setUp(self):
        self.dir = os.path.join(tempdir(), "gw")
        self.gws = []
        self.accounts = ThrowawayUsers()

    def tearDown(self):
        for gw in self.gws:
            if gw.proc is not None:
                gw.stop()
        self.accounts.cleanup()

    def gateway(self, **kw):
        gw = Gateway(self.dir, self.ca, **kw)
        self.gws.append(gw)
        return gw

    # ---- configuration -----------------------------------------------

    def test_config_errors_stop_startup_with_line(self):
        gw = self.gateway()
        r = subprocess.run([popgated(), "-c", gw.conf, "-t"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is valid", r.stdout)
        with open(gw.conf) as f:
            good = f.read()
        nlines = good.count("\n")
        with open(gw.conf, "a") as f:
            f.write("[limits]\nimap_connections = lots\n")
        for argv in ([popgated(), "-c", gw.conf, "-t"],
                     [popgated(), "-c", gw.conf, "-f"]):
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("%s:%d: [limits] imap_connections = \"lots\": "
                          "expected a number" % (gw.conf, nlines + 2),
                          r.stderr)
        self.assertFalse(os.path.exists(gw.socket))
        # a missing file, an unknown option
        r = subprocess.run([popgated(), "-c", gw.conf + ".nope", "-t"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 78)
        self.assertIn("cannot open", r.stderr)
        r = subprocess.run([popgated(), "-x"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 64)
        # -t loads the certificate too
        with open(gw.conf, "w") as f:
            f.write(good.replace(gw.key, gw.cert))
        r = subprocess.run([popgated(), "-c", gw.conf, "-t"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 78)
        self.assertIn("[imap] cert", r.stderr)

    def test_no_core_dump_can_hold_secrets(self):
        # Regression: popgated left core dumps allowed, and a core holds
        # the secret key and decrypted upstream passwords. The sanitizer
        # runtime only lowers the soft limit; the daemon must set both.
        gw = self.gateway()
        gw.start()
        with open("/proc/%d/limits" % gw.proc.pid) as f:
            line = [l for l in f if l.startswith("Max core file size")][0]
        gw.stop()
        self.assertEqual(line.split()[4:6], ["0", "0"], line)

    def test_secret_key_must_be_private(self):
        gw = self.gateway()
        gw.start()
        gw.stop()
        key = os.path.join(gw.data, "secret.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        os.chmod(key, 0o644)
        r = run_daemon(gw.conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("lets group or others read it", r.stderr)
        self.assertFalse(os.path.exists(gw.socket))
        os.chmod(key, 0o600)
        gw.start()

    # ---- control socket: creation ------------------------------------

    def test_socket_mode_from_first_instant(self):
        for mode, want in (("", 0o600), ("mode = 0660\n", 0o660)):
            self.dir = os.path.join(tempdir(), "gw")
            gw = self.gateway(sections={"control": mode})
            # umask 000: a daemon that chmod()ed after bind() would show
            # 0777 for a moment; watch the path from before the start
            p = Proc(["sh", "-c", "umask 000; exec %s -c %s -f" %
                      (popgated(), gw.conf)], log_path=gw.log)
            gw.proc = p
            seen = set()
            deadline = time.monotonic() + 20
            while "event=started" not in gw.output():
                self.assertLess(time.monotonic(), deadline, gw.output())
                try:
                    seen.add(stat.S_IMODE(os.lstat(gw.socket).st_mode))
                except FileNotFoundError:
                    pass
            seen.add(stat.S_IMODE(os.lstat(gw.socket).st_mode))
            self.assertEqual(seen, {want})
            self.assertTrue(stat.S_ISSOCK(os.lstat(gw.socket).st_mode))
            gw.stop()
            self.assertFalse(os.path.exists(gw.socket))

    def test_socket_path_refusals_and_stale_socket(self):
        gw = self.gateway()
        os.makedirs(self.dir, exist_ok=True)
        # a symlink (to a file an attacker would like replaced)
        target = os.path.join(self.dir, "precious")
        with open(target, "w") as f:
            f.write("keep me")
        os.symlink(target, gw.socket)
        r = run_daemon(gw.conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("symbolic link", r.stderr)
        self.assertTrue(os.path.islink(gw.socket))
        with open(target) as f:
            self.assertEqual(f.read(), "keep me")
        os.unlink(gw.socket)
        # a regular file
        with open(gw.socket, "w") as f:
            f.write("not a socket")
        r = run_daemon(gw.conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a socket", r.stderr)
        with open(gw.socket) as f:
            self.assertEqual(f.read(), "not a socket")
        os.unlink(gw.socket)
        # a live socket (another daemon answers there)
        live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        live.bind(gw.socket)
        live.listen(1)
        r = run_daemon(gw.conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("running daemon answers", r.stderr)
        self.assertTrue(stat.S_ISSOCK(os.lstat(gw.socket).st_mode))
        live.close()
        # now stale: nobody listens; replaced
        self.assertTrue(os.path.exists(gw.socket))
        gw.start()
        self.assertIn("stale-socket-removed", gw.output())
        self.assertTrue(gw.ok({"command": "stats"})["ok"])
        # a second daemon on the same socket refuses (live)
        gw2dir = os.path.join(tempdir(), "gw2")
        os.makedirs(gw2dir)
        conf2 = os.path.join(gw2dir, "popgate.conf")
        with open(gw.conf) as f:
            text = f.read().replace(gw.data, os.path.join(gw2dir, "data"))
        text = text.replace("listen = 127.0.0.1:%d" % gw.imap_port,
                            "listen =").replace(
            "listen_tls = 127.0.0.1:%d" % gw.imaps_port, "listen_tls =")
        with open(conf2, "w") as f:
            f.write(text)
        r = run_daemon(conf2)
        self.assertEqual(r.returncode, 1)
        self.assertIn("running daemon answers", r.stderr)
        # the first daemon still serves
        self.assertTrue(gw.ok({"command": "stats"})["ok"])

    # ---- control socket: other users ---------------------------------

    def test_other_unix_user_cannot_use_socket(self):
        gname, gid = self.accounts.group()
        _, xuid, xgid = self.accounts.user("x")
        _, yuid, ygid = self.accounts.user("y", groups=[gname])
        gw = self.gateway(sections={"control": "mode = 0660\ngroup = %s\n"
                                    % gname})
        # the socket's directory must be reachable for the test users
        os.chmod(os.path.dirname(gw.dir), 0o755)
        os.chmod(gw.dir, 0o755)
        gw.start()
        st = os.lstat(gw.socket)
        self.assertEqual(st.st_gid, gid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        before = gw.snapshot()

        # x: not in the group: the kernel refuses the connection
        r = gw.ctl("user", "add", "mallory", "--password-stdin",
                   stdin="pw\n", user=(xuid, xgid))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("Permission denied", r.stderr)

        # x with the group as a supplementary group of the process only:
        # the file mode lets the connection in, the daemon's peer
        # credential check (uid, primary gid, the user's groups in
        # /etc/group) refuses it
        argv = ["setpriv", "--reuid", str(xuid), "--regid", str(xgid),
                "--groups", str(gid), os.path.join(os.path.dirname(
                    popgated()), "popgatectl"), "-s", gw.socket,
                "user", "add", "mallory", "--password-stdin"]
        r = subprocess.run(argv, input="pw\n", capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("permission-denied", r.stderr)
        self.assertIn("event=refused uid=%d" % xuid, gw.output())
        self.assertEqual(gw.snapshot(), before)

        # y: a member of the configured group: served
        r = gw.ctl("user", "list", user=(yuid, ygid))
        self.assertEqual(r.returncode, 0, r.stderr)

        # and with the default mode 0600, not even the group member
        gw.stop()
        gw.write_conf()
        gw.start()
        r = gw.ctl("user", "list", user=(yuid, ygid))
        self.assertEqual(r.returncode, 3, r.stderr)

    # ---- privileges ---------------------------------------------------

    def test_root_binds_then_drops_to_user(self):
        if os.geteuid() != 0:
            self.fail("this test needs root (the suite runs as root)")
        name, uid, ugid = self.accounts.user("d")
        gw = self.gateway(extra="[daemon]\nuser = %s\n" % name)
        for d in (os.path.dirname(gw.dir), gw.dir):
            os.chmod(d, 0o755)
        # IMAP on a free port; the daemon binds it before dropping
        gw.start()
        with open("/proc/%d/status" % gw.proc.pid) as f:
            status = f.read()
        uids = [l for l in status.splitlines() if l.startswith("Uid:")][0]
        self.assertEqual(uids.split()[1:], [str(uid)] * 4)
        gids = [l for l in status.splitlines() if l.startswith("Groups:")]
        self.assertEqual(gids[0].split()[1:], [])
        self.assertIn("privileges-dropped user=%s" % name, gw.output())
        for fn in os.listdir(gw.data):
            self.assertEqual(os.stat(os.path.join(gw.data, fn)).st_uid, uid,
                             fn)
        self.assertEqual(os.lstat(gw.socket).st_uid, uid)
        # root may still use the socket; the daemon's user too
        r = gw.ctl("user", "add", "alice", "--password-stdin",
                   stdin="pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = gw.ctl("user", "list", user=(uid, ugid))
        self.assertEqual(r.returncode, 0, r.stderr)
        c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=30)
        self.assertEqual(c.login("alice", "pw")[0], "OK")
        c.logout()
        # a restart as root works on the user's files
        gw.stop()
        gw.start()
        self.assertIn("alice", gw.ctl("user", "list").stdout)

    # ---- the systemd unit's runtime directory (issue 18) ---------------

    def unit(self):
        with open(os.path.join(ROOT, "deploy", "popgated.service")) as f:
            lines = [l.strip() for l in f if l.strip() and
                     not l.startswith("#")]
        return {k: [l.split("=", 1)[1] for l in lines
                    if l.split("=", 1)[0] == k]
                for k in ("RuntimeDirectory", "RuntimeDirectoryMode",
                          "ExecStartPre", "ReadWritePaths")}

    def test_unit_runtime_dir_lets_the_admin_group_in(self):
        """Follows the shipped unit's steps for /run/popgate: systemd
        makes it root:root RuntimeDirectoryMode, the unit's ExecStartPre
        lines run, popgated starts as root with the example's [control]
        settings and drops to its user; a member of the admin group can
        then use popgatectl, and anyone else cannot. The throwaway group
        stands in for popgate-admin."""
        unit = self.unit()
        self.assertEqual(unit["RuntimeDirectory"], ["popgate"])
        mode = int(unit["RuntimeDirectoryMode"][0], 8)
        with open(os.path.join(ROOT, "deploy", "popgate.conf.example")) as f:
            example = f.read()
        self.assertIn("mode = 0660\ngroup = popgate-admin", example)
        self.assertIn("-/var/backups/popgate", unit["ReadWritePaths"][0])
        gname, gid = self.accounts.group()
        dname, duid, _ = self.accounts.user("d")
        _, auid, agid = self.accounts.user("a", groups=[gname])
        _, ouid, ogid = self.accounts.user("o")
        for with_unit_steps in (False, True):
            top = tempdir()
            run = os.path.join(top, "run", "popgate")
            os.makedirs(run)
            os.chmod(top, 0o755)
            os.chmod(os.path.dirname(run), 0o755)
            os.chown(run, 0, 0)        # what systemd makes
            os.chmod(run, mode)
            if with_unit_steps:
                for cmd in unit["ExecStartPre"]:
                    if "popgated" in cmd:
                        continue
                    argv = cmd.lstrip("-").replace("/run/popgate", run) \
                        .replace("popgate-admin", gname).split()
                    subprocess.run(argv, check=not cmd.startswith("-"))
            gw = self.gateway(sections={"control": "mode = 0660\n"
                                        "group = %s\n" % gname},
                              extra="[daemon]\nuser = %s\n" % dname)
            gw.socket = os.path.join(run, "popgate.sock")
            gw.write_conf(sections={"control": "mode = 0660\n"
                                    "group = %s\n" % gname},
                          extra="[daemon]\nuser = %s\n" % dname)
            with open(gw.conf) as f:
                conf = f.read()
            with open(gw.conf, "w") as f:
                f.write(re.sub(r"socket = .*", "socket = " + gw.socket,
                               conf))
            os.chmod(os.path.dirname(gw.dir), 0o755)
            os.chmod(gw.dir, 0o755)
            seen = len(gw.output())
            gw.start()
            r = gw.ctl("stats", user=(auid, agid))
            if with_unit_steps:
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("control-unreachable", gw.output()[seen:])
                st = os.stat(run)
                self.assertEqual((st.st_uid, st.st_gid,
                                  stat.S_IMODE(st.st_mode)), (0, gid, mode))
            else:
                # the issue: the group's members are locked out, and the
                # daemon says why
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn("Permission denied", r.stderr)
                self.assertRegex(gw.output(), r"event=control-unreachable "
                                 r"group=%s reason=\"%s is root:root 0750\""
                                 % (gname, re.escape(run)))
            r = gw.ctl("stats", user=(ouid, ogid))
            self.assertEqual(r.returncode, 3, r.stderr)
            gw.stop()
            self.gws.remove(gw)


if __name__ == "__main__":
    unittest.main()
