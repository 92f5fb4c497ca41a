"""The web page in a real browser: headless Chromium (Debian's chromium,
chromium-driver, python3-selenium) signs in to popgated's page with an
IMAP password, watches the progress bar of a running import from a real
Dovecot POP3 server advance (the link to Dovecot goes through a relay
the test paces, so the import stops mid-way while the page is looked
at), sees a refused upstream password explained in plain words, enters
the right one, clicks "Check now" and sees that account recover, adds
an old account of its own with the form ([web] self_service) and
removes it; made
an admin (popgatectl user admin), it lists every account and filters
them by state. The page runs under its strict Content-Security-Policy: the browser's
console must show no error (a blocked script or style would). Screen
shots are kept in BUILD/artefacts/web/ (not in the repository)."""
import os
import re
import time
import unittest

from pgtest import BUILD, TestCA, debian_module, free_port, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway
from pgtest.web import GatedRelay, chromium, web_section

WAIT = 300          # seconds: generous, the machine may be loaded
MESSAGES = 300


class WebBrowserTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("alice", "pop-secret")
        self.dc.add_user("carol", "carol-pop")
        self.dc.add_user("dave", "dave-pop")
        self.dc.add_messages("dave", [make_message(2000)])
        self.dc.add_messages("alice", [make_message(i, 3000)
                                       for i in range(MESSAGES)])
        self.dc.add_messages("carol", [make_message(1000 + i)
                                       for i in range(2)])
        self.dc.start()
        self.relay = GatedRelay(self.dc.port, allowance=0)
        self.port = free_port()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          extra=web_section(self.port) +
                          "self_service = yes\n")
        # the paced link stops for as long as the test looks: the
        # upstream timeout must not end the poll meanwhile
        with open(self.gw.conf) as f:
            conf = f.read().replace("timeout = 10s", "timeout = 900s")
        with open(self.gw.conf, "w") as f:
            f.write(conf)
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "alice-pw"})
        self.driver = None
        self.nudged = 0.0
        self.idle_since = None
        self.shots = os.path.join(BUILD, "artefacts", "web")
        os.makedirs(self.shots, exist_ok=True)

    def tearDown(self):
        if self.driver is not None:
            self.driver.quit()
        self.relay.stop()
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    # ---- helpers -----------------------------------------------------------

    def until(self, what, fn):
        wait = debian_module("selenium.webdriver.support.wait")
        try:
            return wait.WebDriverWait(self.driver, WAIT, 0.2).until(
                lambda d: fn())
        except Exception as e:
            self.shot("failed")
            raise AssertionError("%s: not in %ds (%s)\n%s" % (
                what, WAIT, type(e).__name__, self.gw.output()[-3000:]))

    def css(self, sel):
        by = debian_module("selenium.webdriver.common.by").By
        return self.driver.find_elements(by.CSS_SELECTOR, sel)

    def field(self, account, name):
        els = self.css('article[data-account="%s"] [data-f="%s"]'
                       % (account, name))
        return els[0] if els else None

    def shot(self, name):
        path = os.path.join(self.shots, "%s-%s.png" % (self.id().split(
            ".")[-1], name))
        self.driver.save_screenshot(path)
        return path

    def snapshot(self, account):
        """What the page shows of an account's import, read in one go (the
        page refreshes every 2 s: separate reads could straddle one)."""
        return self.driver.execute_script("""
            const c = document.querySelector(
                'article[data-account="' + arguments[0] + '"]');
            if (!c) { return null; }
            const f = (n) => c.querySelector('[data-f="' + n + '"]');
            return {shown: !f("progress-box").hidden,
                    text: f("progress-text").textContent,
                    bar: f("progress").value,
                    imported: f("imported").textContent};""", account)

    def progress(self, account):
        """(done, total, imported) the page shows for a running import,
        or None."""
        s = self.snapshot(account)
        if s is None or not s["shown"]:
            return None
        m = re.match(r"Importing: (\d+) of (\d+) messages", s["text"])
        i = re.match(r"Messages imported so far: (\d+)", s["imported"])
        if m is None or i is None:
            return None
        done, total = int(m.group(1)), int(m.group(2))
        self.assertEqual(int(s["bar"]), 100 * done // total)
        return done, total, int(i.group(1))

    def admin_rows(self):
        """The admin list's rows, read in one go (the page replaces them
        at each refresh): [user, account, state, state in words]."""
        return self.driver.execute_script("""
            return Array.from(document.querySelectorAll("#admin-rows tr"))
                .map((tr) => [tr.dataset.user, tr.dataset.account,
                              tr.dataset.state, tr.cells[2].textContent]);""")

    def paced(self, pred):
        """The progress the page shows once pred(progress) holds, else
        None, having let one more message through the relay when the
        link has been idle for 1.5 s."""
        p = self.progress("old-isp")
        if p is not None and pred(p):
            return p
        now = time.monotonic()
        if self.relay.allowance == 0 and now - self.nudged > 1.5:
            if self.idle_since is None:
                self.idle_since = now
            elif now - self.idle_since > 1.5:
                self.relay.allow(3500)
                self.nudged = now
                self.idle_since = None
        return None

    def add_account(self, name, login, password, port):
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": port, "tls": "stls",
                    "login": login, "password": password, "account": name,
                    "interval": 3600})

    # ---- the test ------------------------------------------------------------

    def test_sign_in_watch_import_fix_password_check_now(self):
        self.add_account("old-isp", "alice", "pop-secret", self.relay.port)
        self.add_account("work", "carol", "not-carols", self.dc.port)
        self.driver = chromium(self.tmp, self.gw.cert)
        self.driver.get("https://127.0.0.1:%d/" % self.port)

        # sign in: a wrong password first, then the right one
        self.until("login form", lambda: self.css("#login-user") and
                   self.css("#login-user")[0].is_displayed())
        self.css("#login-user")[0].send_keys("alice")
        self.css("#login-password")[0].send_keys("wrong")
        self.css("#login-submit")[0].click()
        self.until("wrong password said", lambda: "wrong" in
                   self.css("#login-error")[0].text)
        self.css("#login-password")[0].send_keys("alice-pw")
        self.css("#login-submit")[0].click()
        self.until("accounts shown", lambda: self.field("old-isp", "state")
                   is not None and self.field("work", "state") is not None)
        self.assertEqual(self.css("#who")[0].text, "alice")
        # the session cookie is not readable by the page's scripts
        self.assertNotIn("popgate", self.driver.execute_script(
            "return document.cookie"))

        # the import runs as far as the relay lets it, and the page
        # shows how far. The poller commits a batch when a message comes
        # in a second or more after the batch's first one: the relay
        # lets one more message's bytes through now and then, so the
        # batch held so far is stored while the import stays stopped.
        self.relay.allow(60000)
        first = self.until("import progress", lambda: self.paced(
            lambda p: 0 < p[0] < p[1]))
        self.assertEqual(first[1], MESSAGES)
        self.assertEqual(first[2], first[0])
        self.assertEqual(self.field("old-isp", "state").get_attribute(
            "data-state"), "polling")
        self.shot("importing")
        self.relay.allow(300000)
        second = self.until("progress advances", lambda: self.paced(
            lambda p: first[0] < p[0] < p[1]))
        self.assertGreater(second[0], first[0])
        self.relay.open()
        self.until("import done", lambda: self.field(
            "old-isp", "state").get_attribute("data-state") == "idle" and
            "Messages imported so far: %d" % MESSAGES in
            self.field("old-isp", "imported").text)
        self.assertFalse(self.field("old-isp", "progress-box").is_displayed())
        self.assertFalse(self.field("old-isp", "advice-box").is_displayed())
        self.assertEqual(self.field("old-isp", "state").text, "Up to date")

        # the other account's password is refused upstream: explained
        self.until("refused password explained", lambda: self.field(
            "work", "advice-box").is_displayed())
        adv = self.field("work", "advice-box")
        self.assertEqual(adv.get_attribute("data-code"), "password-refused")
        self.assertIn("refused the password", adv.text)
        self.assertIn("Change password", adv.text)
        self.assertIn("authentication failed",
                      self.field("work", "last-error").text)
        self.assertIn("problem", self.field("work", "state")
                      .get_attribute("class"))
        self.shot("refused-password")

        # the person enters the right one and clicks "Check now"
        self.css('article[data-account="work"] [data-f="pw-details"] '
                 'summary')[0].click()
        self.field("work", "pw").send_keys("carol-pop")
        self.css('article[data-account="work"] [data-f="pw-form"] '
                 'button')[0].click()
        self.until("password saved", lambda: "Saved" in
                   self.field("work", "pw-result").text)
        self.assertEqual(self.field("work", "pw").get_attribute("value"), "")
        rows = len(self.css('article[data-account="work"] '
                            '[data-f="recent"] tr'))
        self.field("work", "check").click()
        self.until("check now acknowledged", lambda: "Checking now" in
                   self.field("work", "check-result").text)
        self.until("account recovered", lambda: not self.field(
            "work", "advice-box").is_displayed() and
            "Messages imported so far: 2" in
            self.field("work", "imported").text)
        self.until("the check is listed", lambda: len(self.css(
            'article[data-account="work"] [data-f="recent"] tr')) > rows)
        outcomes = [tr.get_attribute("data-outcome") for tr in self.css(
            'article[data-account="work"] [data-f="recent"] tr')]
        self.assertEqual(outcomes[0], "ok")
        self.assertIn("auth", outcomes)
        path = self.shot("done")
        self.assertGreater(os.path.getsize(path), 1000)

        # nothing the page did broke its CSP or threw
        errors = [e for e in self.driver.get_log("browser")
                  if e.get("level") == "SEVERE" and
                  "401" not in e.get("message", "")]
        self.assertEqual(errors, [])

        # where the admin allows it, she adds an old account of her own
        # with the form, sees its mail come in, and removes it again
        self.css("#add-details summary")[0].click()
        self.css("#add-host")[0].send_keys("127.0.0.1")
        port = self.css("#add-port")[0]
        port.clear()
        port.send_keys(str(self.dc.port))
        debian_module("selenium.webdriver.support.select").Select(
            self.css("#add-tls")[0]).select_by_value("stls")
        self.css("#add-login")[0].send_keys("dave")
        self.css("#add-password")[0].send_keys("dave-pop")
        self.css("#add-name")[0].send_keys("daves")
        self.css("#add-submit")[0].click()
        self.until("account added", lambda: "Added" in
                   self.css("#add-result")[0].text)
        self.until("its mail came in", lambda: self.field(
            "daves", "imported") is not None and
            "Messages imported so far: 1" in
            self.field("daves", "imported").text)
        self.shot("added")
        self.css('article[data-account="daves"] [data-f="remove-details"] '
                 'summary')[0].click()
        self.field("daves", "remove").click()
        self.until("account removed", lambda: self.field(
            "daves", "state") is None)
        self.assertEqual([x["account"] for x in self.gw.ok(
            {"command": "account.list", "user": "alice"})["accounts"]],
            ["old-isp", "work"])

        # the admin view: hidden for alice until popgatectl makes her an
        # admin, then every account, filtered by state
        self.assertFalse(self.css("#admin-view")[0].is_displayed())
        self.gw.ok({"command": "user.add", "user": "bob",
                    "password": "bob-pw"})
        self.gw.ok({"command": "account.add", "user": "bob",
                    "host": "127.0.0.1", "port": self.dc.port, "tls": "stls",
                    "login": "carol", "password": "bob-wrong",
                    "account": "bobs", "interval": 3600, "enabled": False,
                    # the same Dovecot mailbox as alice's "work", on purpose
                    "force": True})
        r = self.gw.ctl("user", "admin", "alice", "yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.driver.refresh()
        self.until("admin list", lambda: len(self.admin_rows()) == 3)
        self.assertIn("(admin)", self.css("#who")[0].text)
        self.assertIn("3 accounts", self.css("#admin-summary")[0].text)
        sel = debian_module("selenium.webdriver.support.select").Select(
            self.css("#admin-filter")[0])
        sel.select_by_value("disabled")
        self.until("filtered", lambda: self.admin_rows() == [
            ["bob", "bobs", "disabled", "Switched off"]])
        self.shot("admin")
        # switched on from the page: polling bob's account starts
        sw = self.driver.find_element(
            "css selector", '#admin-rows tr[data-account="bobs"] .switch')
        self.assertEqual(sw.text, "Switch on")
        sw.click()
        self.until("switched on", lambda: [a["enabled"] for a in self.gw.ok(
            {"command": "account.list", "user": "bob"})["accounts"]] ==
            [True])
        sel.select_by_value("")
        self.until("unfiltered", lambda: len(self.admin_rows()) == 3)

        # sign out: back to the form, and the session is gone
        self.css("#logout")[0].click()
        self.until("signed out", lambda: self.css("#login-user")[0]
                   .is_displayed())
        self.driver.refresh()
        self.until("still signed out", lambda: self.css("#login-user")[0]
                   .is_displayed())
        out = self.gw.output()
        for line in ("component=web event=login ip=127.0.0.1 user=alice",
                     "component=web event=login_failed ip=127.0.0.1 "
                     "user=alice", "component=web event=account-password "
                     "ip=127.0.0.1 user=alice account=work result=ok",
                     "component=web event=check-now ip=127.0.0.1 "
                     "user=alice account=work result=ok",
                     "component=web event=logout"):
            self.assertIn(line, out)
        for secret in ("alice-pw", "carol-pop", "not-carols", "dave-pop"):
            self.assertNotIn(secret, out)


if __name__ == "__main__":
    unittest.main()
