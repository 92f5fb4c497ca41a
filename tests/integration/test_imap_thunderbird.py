"""Issue 13 item 19: Thunderbird as a real client. Debian's thunderbird
runs headless against the real daemon (imapd_test, implicit TLS) with a
profile the test writes: prefs for the account, a certificate override
for the test certificate and the password in its NSS login store, both
set through Marionette (chrome JavaScript, pgtest/marionette.py) before
any connection. Thunderbird shows subscribed folders only by default
(item 18): it must find INBOX and the special-use folders with their
roles, sync INBOX's headers, never try to CREATE a folder that exists,
and pick up a flag and a MOVE another client made. Every response it was
sent passes the grammar checker (ImapTestCase's tearDown)."""
import base64
import glob
import imaplib
import os
import shutil
import ssl

import pgtest
from imapd import ImapTestCase, USER, PASSWORD
from pgtest.marionette import Marionette

THUNDERBIRD = shutil.which("thunderbird") or "/usr/bin/thunderbird"

PREFS = """\
user_pref("marionette.port", {mport});
user_pref("mail.shell.checkDefaultClient", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("mail.provider.suppress_dialog_on_startup", true);
user_pref("mail.startup.enabledMailCheckOnce", true);
user_pref("mail.accountmanager.accounts", "account1");
user_pref("mail.accountmanager.defaultaccount", "account1");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.identity.id1.useremail", "{user}@example.com");
user_pref("mail.identity.id1.fullName", "Alice Example");
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.hostname", "127.0.0.1");
user_pref("mail.server.server1.port", {port});
user_pref("mail.server.server1.socketType", 3);
user_pref("mail.server.server1.authMethod", 3);
user_pref("mail.server.server1.userName", "{user}");
user_pref("mail.server.server1.name", "popgate");
user_pref("mail.server.server1.login_at_startup", false);
user_pref("mail.server.server1.check_new_mail", false);
"""

# chrome JavaScript run inside Thunderbird
JS_SETUP = """
let [certB64, port, user, pw, resolve] = arguments;
let certdb = Cc["@mozilla.org/security/x509certdb;1"]
    .getService(Ci.nsIX509CertDB);
let cert = certdb.constructX509FromBase64(certB64);
Cc["@mozilla.org/security/certoverride;1"]
    .getService(Ci.nsICertOverrideService)
    .rememberValidityOverride("127.0.0.1", port, {}, cert, false);
let li = Cc["@mozilla.org/login-manager/loginInfo;1"]
    .createInstance(Ci.nsILoginInfo);
li.init("imap://127.0.0.1", null, "imap://127.0.0.1", user, pw, "", "");
Services.logins.addLoginAsync(li).then(
    () => Promise.resolve(Services.logins.getAllLogins()).then(
        l => resolve(l.filter(x => x.origin == "imap://127.0.0.1" &&
                              x.username == user).length)),
    e => resolve("error: " + e));
"""

JS_DISCOVER = """
let resolve = arguments[arguments.length - 1];
let server = MailServices.accounts.accounts[0].incomingServer;
MailServices.imap.discoverAllFolders(server.rootFolder, {
    OnStartRunningUrl() {},
    OnStopRunningUrl(url, rc) { resolve(rc); },
}, null);
"""

JS_FOLDERS = """
let server = MailServices.accounts.accounts[0].incomingServer;
let F = Ci.nsMsgFolderFlags;
let roles = {Inbox: F.Inbox, Sent: F.SentMail, Drafts: F.Drafts,
             Trash: F.Trash, Junk: F.Junk, Archive: F.Archive};
return server.rootFolder.descendants.map(f => {
    let r = Object.keys(roles).filter(k => f.flags & roles[k]);
    return [f.name, r];
});
"""

JS_UPDATE = """
let [name, resolve] = arguments;
let server = MailServices.accounts.accounts[0].incomingServer;
let folder = server.rootFolder.descendants.find(
    f => f.name.toLowerCase() == name.toLowerCase());
folder.QueryInterface(Ci.nsIMsgImapMailFolder);
folder.updateFolderWithListener(null, {
    OnStartRunningUrl() {},
    OnStopRunningUrl(url, rc) {
        let out = [];
        for (let h of folder.msgDatabase.enumerateMessages())
            out.push([h.messageId, h.isFlagged, h.isRead]);
        resolve([rc, out]);
    },
});
"""


def message(i):
    return (b"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\n"
            b"Subject: hello %d\r\nMessage-ID: <tb%d@example.org>\r\n"
            b"Date: Mon, 7 Dec 2026 10:00:%02d +0000\r\n\r\n"
            b"body %d\r\n" % (i, i, i, i))


class ThunderbirdTest(ImapTestCase):

    def start_thunderbird(self):
        prof = os.path.join(self.tmp, "tb-profile")
        os.makedirs(prof)
        self.mport = pgtest.free_port()
        with open(os.path.join(prof, "user.js"), "w") as f:
            f.write(PREFS.format(mport=self.mport, port=self.srv.tls_port,
                                 user=USER))
        home = os.path.join(self.tmp, "tb-home")
        os.makedirs(home)
        self.tb = pgtest.Proc([THUNDERBIRD, "--headless", "--marionette",
                               "-remote-allow-system-access", "--no-remote",
                               "--profile", prof],
                              log_path=os.path.join(self.tmp, "tb.log"),
                              env={"HOME": home, "MOZ_CRASHREPORTER_DISABLE":
                                   "1"})
        self.addCleanup(self.tb.stop)
        pgtest.wait_port(self.mport, timeout=120)
        m = Marionette(self.mport)
        self.addCleanup(m.close)
        m.chrome_session()
        return m

    def update(self, m, name):
        rc, msgs = m.run_async(JS_UPDATE, name)
        self.assertEqual(rc, 0, (name, self.tb.output()[-2000:]))
        return {mid: (flagged, read) for mid, flagged, read in msgs}

    def test_item_19_thunderbird_syncs_and_follows_other_clients(self):
        r = self.plain()
        for i in range(5):
            typ, _ = r.append("INBOX", None, None, message(i))
            self.assertEqual(typ, "OK")
        m = self.start_thunderbird()
        with open(self.srv.cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        n = m.run_async(JS_SETUP, base64.b64encode(der).decode(),
                        self.srv.tls_port, USER, PASSWORD)
        self.assertEqual(n, 1, "the password is not in the login store")
        self.assertEqual(m.run_async(JS_DISCOVER), 0,
                         self.tb.output()[-2000:])
        folders = dict(m.run(JS_FOLDERS))
        self.assertEqual(folders.get("Inbox", folders.get("INBOX")),
                         ["Inbox"], folders)
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertEqual(folders.get(name), [name], folders)
        inbox = self.update(m, "Inbox")
        self.assertEqual(sorted(inbox), ["tb%d@example.org" % i
                                         for i in range(5)])
        self.assertFalse(any(fl for fl, _ in inbox.values()), inbox)
        for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertEqual(self.update(m, name), {}, name)
        # another device flags one message and moves another
        other = self.plain()
        other.select("INBOX")
        typ, _ = other.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
        self.assertEqual(typ, "OK")
        typ, _ = other.uid("MOVE", "2", "Archive")
        self.assertEqual(typ, "OK")
        inbox = self.update(m, "Inbox")
        self.assertEqual(sorted(inbox), ["tb0@example.org", "tb2@example.org",
                                         "tb3@example.org", "tb4@example.org"])
        self.assertTrue(inbox["tb0@example.org"][0], inbox)
        self.assertFalse(inbox["tb3@example.org"][0], inbox)
        archive = self.update(m, "Archive")
        self.assertEqual(sorted(archive), ["tb1@example.org"])
        # Thunderbird found its folders: it never tried to create one
        # that exists (the "CREATE Trash" at every start of the issue)
        traces = b"".join(open(p, "rb").read() for p in
                          glob.glob(os.path.join(self.srv.rawlog, "*.out")))
        self.assertIn(b"Logged in", traces)
        self.assertNotIn(b"ALREADYEXISTS", traces)
        self.assertNotIn(b"CREATE completed", traces)
