"""The documentation says what the programs do: the man pages render
without troff warnings (issue 18: a line starting with "._@+-)" was read
as a request and lost), and name every popgatectl command, every control
command and every configuration key the code has."""
import os
import re
import subprocess
import unittest

from pgtest import ROOT
from pgtest.gateway import popgatectl

DOCS = os.path.join(ROOT, "docs")
PAGES = ("popgated.8", "popgatectl.8", "popgate.conf.5")


def render(page):
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-Wbreak",
                        os.path.join(DOCS, page)], capture_output=True,
                       timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def plain(text):
    """Rendered text without overstriking and with hyphenation undone."""
    text = re.sub(r".\x08", "", text)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"\u2010\n\s*|-\n\s+", "", text)
    return re.sub(r"(?<=\S)  +(?=\S)", " ", text)   # justification


class DocsTest(unittest.TestCase):
    def test_man_pages_render_without_warnings(self):
        for page in PAGES:
            rc, out, err = render(page)
            self.assertEqual(rc, 0, page)
            self.assertEqual(err, "", "%s: %s" % (page, err))
            self.assertGreater(len(out), 1000, page)

    def test_no_text_line_starts_like_a_request(self):
        # a text line starting with "." or "'" is a troff request: it
        # must be one the man macros know, never a piece of text
        known = set("TH SH SS TP TQ IP PP LP P RS RE B I R BI BR IB IR RB "
                    "RI SM SB nf fi br sp in ti ad na ne hy nh ft ps EX EE "
                    "UR UE MT ME".split())
        for page in PAGES:
            with open(os.path.join(DOCS, page)) as f:
                for n, line in enumerate(f, 1):
                    if line[:1] not in (".", "'") or line.startswith('.\\"'):
                        continue
                    req = line[1:].split()[0] if line[1:].split() else ""
                    self.assertIn(req, known, "%s:%d: %r" % (page, n, line))
        rc, out, _ = render("popgatectl.8")
        self.assertIn("._@+-)", plain(out))

    def test_popgatectl_page_has_every_command(self):
        r = subprocess.run([popgatectl(), "--help"], capture_output=True,
                           text=True, timeout=30)
        cmds = re.findall(r"^  ([a-z]+(?: [a-z]+)?)", r.stdout, re.M)
        self.assertGreater(len(cmds), 20)
        text = plain(render("popgatectl.8")[1])
        for c in cmds:
            self.assertRegex(text, r"\n\s+%s\b" % re.escape(c), c)

    def test_control_protocol_has_every_command(self):
        with open(os.path.join(ROOT, "gateway", "control-proto.c")) as f:
            src = f.read()
        names = re.findall(r'^\t\{ "([a-z.]+)", CTL_', src, re.M)
        self.assertGreater(len(names), 15)
        with open(os.path.join(DOCS, "control-protocol.md")) as f:
            doc = f.read()
        for n in names:
            self.assertRegex(doc, r"(?m)^### .*`%s`" % re.escape(n), n)

    def test_config_page_has_every_key(self):
        with open(os.path.join(ROOT, "gateway", "config.c")) as f:
            src = f.read()
        keys = re.findall(r'\{ "([a-z-]+)", "([a-z_]+)", KEY_', src)
        self.assertGreater(len(keys), 30)
        with open(os.path.join(DOCS, "popgate.conf.5")) as f:
            page = f.read()
        for section, key in keys:
            i = page.find('.SH "[%s]"' % section)
            self.assertGreaterEqual(i, 0, section)
            j = page.find(".SH", i + 4)
            self.assertIn(".BI %s " % key, page[i:j], "[%s] %s"
                          % (section, key))


if __name__ == "__main__":
    unittest.main()
