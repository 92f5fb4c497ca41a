"""Socket options of accepted IMAP connections: TCP_NODELAY is on for plain
and implicit-TLS connections (without it, a response longer than one
write waits for the client's delayed ACK before its last segment, the one
with the tagged line: ~40 ms per large STORE or FETCH).

The test takes the server's end of its own connection out of the server
process with pidfd_getfd(2) (the server is this process's child) and
reads the option there."""
import ctypes
import os
import socket

from imapd import ImapTestCase

SYS_PIDFD_GETFD = 438   # the same number on x86_64 and the generic table
_libc = ctypes.CDLL(None, use_errno=True)


def server_socket_options(pid, client_sock):
    """TCP_NODELAY of the server's socket connected to client_sock."""
    want = client_sock.getsockname()
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, name))
            except OSError:
                continue
            if not link.startswith("socket:"):
                continue
            fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                err = ctypes.get_errno()
                raise OSError(err, "pidfd_getfd: " + os.strerror(err))
            s = socket.socket(fileno=fd)
            try:
                if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                    continue
                try:
                    peer = s.getpeername()
                except OSError:
                    continue        # a listener
                if peer == want:
                    return s.getsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_NODELAY)
            finally:
                s.close()
    finally:
        os.close(pidfd)
    raise AssertionError("no server socket connected to %r" % (want,))


class ImapSocketTest(ImapTestCase):
    def test_nodelay_plain(self):
        c = self.plain()
        nodelay = server_socket_options(self.srv.proc.pid, c.sock)
        self.assertNotEqual(nodelay, 0, "TCP_NODELAY is off")

    def test_nodelay_tls(self):
        c = self.tls()
        nodelay = server_socket_options(self.srv.proc.pid, c.sock)
        self.assertNotEqual(nodelay, 0, "TCP_NODELAY is off")
