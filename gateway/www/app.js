/*
 * popgate's web page: signs in, then shows the person's old POP3
 * accounts and refreshes them every few seconds. Only textContent is
 * set (never HTML from the server); the CSRF token lives in memory and
 * goes with every POST in X-CSRF-Token.
 */
"use strict";
(function () {
  const REFRESH_MS = 2000;
  let csrf = null;
  let timer = null;
  let admin = false;
  let selfService = false;
  const cards = new Map();

  function $(id) { return document.getElementById(id); }
  function f(card, name) { return card.querySelector("[data-f=\"" + name + "\"]"); }

  async function api(method, path, body) {
    const opts = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method === "POST" && csrf !== null) {
      opts.headers["X-CSRF-Token"] = csrf;
    }
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      return { status: 0, data: { error: "The gateway cannot be reached." } };
    }
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    return { status: r.status, data: data };
  }

  function show(view) {
    $("loading").hidden = true;
    $("login-view").hidden = view !== "login";
    $("accounts-view").hidden = view !== "accounts";
    $("logout").hidden = view !== "accounts";
    $("who").hidden = view !== "accounts";
    $("admin-view").hidden = view !== "accounts" || !admin;
  }

  function signedOut() {
    csrf = null;
    admin = false;
    if (timer !== null) { clearInterval(timer); timer = null; }
    cards.clear();
    $("accounts").replaceChildren();
    show("login");
  }

  function signedIn(data) {
    csrf = data.csrf;
    admin = data.admin === true;
    selfService = data.self_service === true;
    $("add-details").hidden = !selfService;
    const providers = data.oauth_providers || [];
    const psel = $("add-provider");
    providers.forEach(function (p) {
      if (!Array.from(psel.options).some(function (o) {
        return o.value === p;
      })) {
        const o = document.createElement("option");
        o.value = p;
        o.textContent = p;
        psel.appendChild(o);
      }
    });
    $("add-provider-label").hidden = providers.length === 0;
    $("who").textContent = data.user + (admin ? " (admin)" : "");
    show("accounts");
    refresh();
    if (timer === null) { timer = setInterval(refresh, REFRESH_MS); }
  }

  function when(t) {
    if (t === null || t === undefined) { return "never"; }
    return new Date(t * 1000).toLocaleString();
  }

  // The provider's code and where to enter it, as text (never HTML)
  function showSignin(el, d) {
    el.replaceChildren();
    el.append("Open ");
    const a = document.createElement("a");
    a.href = d.verification_uri_complete || d.verification_uri;
    a.textContent = d.verification_uri;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    el.append(a, " and enter the code ");
    const code = document.createElement("strong");
    code.className = "user-code";
    code.textContent = d.user_code;
    el.append(code, " within " + Math.round(d.expires_in / 60) +
      " minutes. This page shows when it is done.");
    el.hidden = false;
  }

  async function signin(path, body, el) {
    const r = await api("POST", path, body);
    if (r.status === 401) { signedOut(); return; }
    if (r.status === 200) {
      showSignin(el, r.data);
    } else {
      el.textContent = r.data.error || "That did not work.";
      el.hidden = false;
    }
  }

  function newCard(name) {
    const card = $("account-tpl").content.firstElementChild.cloneNode(true);
    card.dataset.account = name;
    f(card, "check").addEventListener("click", async function () {
      const btn = f(card, "check");
      btn.disabled = true;
      f(card, "check-result").textContent = "Asking…";
      const r = await api("POST", "/api/check", { account: name });
      btn.disabled = false;
      if (r.status === 401) { signedOut(); return; }
      f(card, "check-result").textContent = r.status === 200 ?
        "Checking now: new mail appears here as it arrives." :
        (r.data.error || "That did not work.");
      refresh();
    });
    f(card, "pw-form").addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const input = f(card, "pw");
      const r = await api("POST", "/api/password",
        { account: name, password: input.value });
      input.value = "";
      if (r.status === 401) { signedOut(); return; }
      f(card, "pw-result").textContent = r.status === 200 ?
        "Saved. popgate uses it from the next check." :
        (r.data.error || "That did not work.");
    });
    f(card, "signin").addEventListener("click", function () {
      signin("/api/account/signin", { account: name },
        f(card, "signin-result"));
    });
    f(card, "remove-details").hidden = !selfService;
    f(card, "remove").addEventListener("click", async function () {
      const r = await api("POST", "/api/account/delete", { account: name });
      if (r.status === 401) { signedOut(); return; }
      f(card, "remove-result").textContent = r.status === 200 ? "Removed." :
        (r.data.error || "That did not work.");
      refresh();
    });
    $("accounts").appendChild(card);
    cards.set(name, card);
    return card;
  }

  function fillRecent(tbody, recent) {
    const rows = recent.map(function (c) {
      const tr = document.createElement("tr");
      [when(c.started), c.words, String(c.fetched)].forEach(function (v) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      tr.dataset.outcome = c.outcome;
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  function update(card, a) {
    f(card, "account").textContent = a.account;
    f(card, "where").textContent = a.login + " at " + a.host;
    const badge = f(card, "state");
    badge.textContent = a.state_words;
    badge.dataset.state = a.state;
    badge.className = "badge" + (a.advice && a.advice.needs_person ?
      " problem" : a.state === "polling" || a.state === "queued" ?
      " busy" : "");
    // a poll's start and a success's end: the later one is the last check
    const last = a.last_success !== null && (a.last_poll === null ||
      a.last_success > a.last_poll) ? a.last_success : a.last_poll;
    f(card, "checked").textContent = "Last checked: " + when(last) +
      (a.last_success !== null && a.last_success !== last ?
        " · last good check: " + when(a.last_success) : "");
    const box = f(card, "progress-box");
    if (a.import) {
      const pct = Math.floor(100 * a.import.done / a.import.total);
      f(card, "progress").value = pct;
      f(card, "progress-text").textContent = "Importing: " + a.import.done +
        " of " + a.import.total + " messages (" + pct + " %), " +
        a.import.remaining + " to go";
      box.hidden = false;
    } else {
      box.hidden = true;
    }
    f(card, "imported").textContent = "Messages imported so far: " +
      a.imported;
    const adv = f(card, "advice-box");
    if (a.advice) {
      f(card, "advice-title").textContent = a.advice.title;
      f(card, "advice-action").textContent = a.advice.action;
      f(card, "last-error").textContent = a.last_error || "(nothing more)";
      adv.dataset.code = a.advice.code;
      adv.className = "advice" + (a.advice.needs_person ? "" : " calm");
      adv.hidden = false;
    } else {
      adv.hidden = true;
      delete adv.dataset.code;
    }
    fillRecent(f(card, "recent"), a.recent);
    // accounts that sign in with a provider: no password to change
    f(card, "signin-box").hidden = !a.oauth;
    f(card, "pw-details").hidden = a.oauth;
  }

  function cell(tr, text) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function adminRow(a) {
    const tr = document.createElement("tr");
    tr.dataset.user = a.user;
    tr.dataset.account = a.account;
    tr.dataset.state = a.state;
    cell(tr, a.user);
    cell(tr, a.account);
    cell(tr, a.state_words);
    cell(tr, a.import ? a.import.done + " of " + a.import.total : "");
    cell(tr, when(a.last_poll));
    cell(tr, a.advice ? a.advice.title : "");
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = "Check now";
    btn.addEventListener("click", async function () {
      btn.disabled = true;
      const r = await api("POST", "/api/admin/check",
        { user: a.user, account: a.account });
      if (r.status === 401) { signedOut(); return; }
      btn.textContent = r.status === 200 ? "Asked" :
        (r.data.error || "Refused");
    });
    const actions = cell(tr, "");
    actions.appendChild(btn);
    // switch polling off and on again (popgatectl account disable/enable)
    const off = a.state === "disabled";
    const sw = document.createElement("button");
    sw.type = "button";
    sw.className = "switch";
    sw.textContent = off ? "Switch on" : "Switch off";
    sw.addEventListener("click", async function () {
      sw.disabled = true;
      const r = await api("POST", off ? "/api/admin/enable" :
        "/api/admin/disable", { user: a.user, account: a.account });
      if (r.status === 401) { signedOut(); return; }
      if (r.status !== 200) {
        sw.textContent = r.data.error || "Refused";
        return;
      }
      refreshAdmin();
    });
    actions.appendChild(sw);
    return tr;
  }

  async function refreshAdmin() {
    const r = await api("GET", "/api/admin/accounts");
    if (r.status === 401) { signedOut(); return; }
    if (r.status !== 200) {
      $("admin-error").textContent = r.data.error || "Could not load.";
      return;
    }
    $("admin-error").textContent = "";
    const sel = $("admin-filter");
    const states = Object.keys(r.data.states).sort();
    const have = Array.from(sel.options).map(function (o) { return o.value; });
    states.forEach(function (st) {
      if (have.indexOf(st) < 0) {
        const o = document.createElement("option");
        o.value = st;
        o.textContent = st;
        sel.appendChild(o);
      }
    });
    const parts = states.map(function (st) {
      return r.data.states[st] + " " + st;
    });
    const imp = r.data.importing;
    $("admin-summary").textContent = r.data.accounts.length + " accounts: " +
      parts.join(", ") + (imp.total > 0 ? "; importing " + imp.done +
        " of " + imp.total + " messages" : "") +
      (r.data.truncated ? " (list cut short)" : "");
    const rows = r.data.accounts.filter(function (a) {
      return sel.value === "" || a.state === sel.value;
    }).map(adminRow);
    $("admin-rows").replaceChildren.apply($("admin-rows"), rows);
  }

  async function refresh() {
    if (admin) { refreshAdmin(); }
    const r = await api("GET", "/api/accounts");
    if (r.status === 401) { signedOut(); return; }
    if (r.status !== 200) {
      $("accounts-error").textContent = r.data.error || "Could not load.";
      return;
    }
    $("accounts-error").textContent = "";
    const seen = new Set();
    r.data.accounts.forEach(function (a) {
      seen.add(a.account);
      update(cards.get(a.account) || newCard(a.account), a);
    });
    cards.forEach(function (card, name) {
      if (!seen.has(name)) { card.remove(); cards.delete(name); }
    });
    $("no-accounts").hidden = r.data.accounts.length > 0;
  }

  $("login-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const btn = $("login-submit");
    btn.disabled = true;
    $("login-error").textContent = "";
    const r = await api("POST", "/api/login", {
      user: $("login-user").value, password: $("login-password").value
    });
    $("login-password").value = "";
    btn.disabled = false;
    if (r.status === 200) { signedIn(r.data); return; }
    $("login-error").textContent = r.data.error || "Sign-in failed.";
  });

  $("admin-filter").addEventListener("change", refreshAdmin);

  // with a provider, its settings fill the server and no password is
  // asked: the account signs in with a code instead
  $("add-provider").addEventListener("change", function () {
    const p = $("add-provider").value !== "";
    ["add-host", "add-port", "add-password"].forEach(function (id) {
      $(id).required = !p;
      $(id).closest("label").hidden = p;
    });
    $("add-tls").closest("label").hidden = p;
  });

  $("add-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const provider = $("add-provider").value;
    const req = provider !== "" ? {
      oauth_provider: provider, login: $("add-login").value
    } : {
      host: $("add-host").value, port: Number($("add-port").value),
      tls: $("add-tls").value, login: $("add-login").value,
      password: $("add-password").value
    };
    if ($("add-name").value !== "") { req.account = $("add-name").value; }
    $("add-signin").hidden = true;
    const r = await api("POST", "/api/account/add", req);
    $("add-password").value = "";
    if (r.status === 401) { signedOut(); return; }
    $("add-result").textContent = r.status !== 200 ?
      (r.data.error || "That did not work.") : provider !== "" ?
        "Added: now sign it in." : "Added: popgate checks it now.";
    refresh();
    if (r.status === 200 && provider !== "") {
      signin("/api/account/signin", { account: r.data.account },
        $("add-signin"));
    }
  });

  $("logout").addEventListener("click", async function () {
    await api("POST", "/api/logout", {});
    signedOut();
  });

  api("GET", "/api/session").then(function (r) {
    if (r.status === 200) { signedIn(r.data); } else { signedOut(); }
  });
}());
