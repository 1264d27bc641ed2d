// ServerFlow web app: plain JS, no build step. Everything shown is set with textContent
// (never innerHTML), so server names, command output and LLM text render as text.
"use strict";
(() => {
  const API = "/v1";
  const state = { token: null, user: null, conversation: null, view: null, events: null, servers: new Map(),
                  alerts: new Map() };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function say(text) { $("status").textContent = text || ""; }
  function fail(err) {
    const box = $("alert");
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    const e = err.error || err;
    box.textContent = (e.code ? e.code + ": " : "") + (e.message || String(err));
    box.hidden = false;
  }
  const can = (perm) => !!(state.user && state.user.permissions && state.user.permissions.includes(perm));

  async function call(method, path, body, retry = true) {
    const headers = { "X-Requested-With": "serverflow" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                          credentials: "same-origin" });
    if (res.status === 401 && retry && state.token && await refresh()) return call(method, path, body, false);
    if (res.status === 204) return null;
    const data = await res.json().catch(() => ({ error: { code: "HTTP" + res.status, message: res.statusText } }));
    if (!res.ok) throw data;
    return data;
  }

  async function refresh() {
    try {
      const res = await fetch(API + "/auth/refresh", { method: "POST", credentials: "same-origin",
        headers: { "X-Requested-With": "serverflow", "Content-Type": "application/json" }, body: "{}" });
      if (!res.ok) return false;
      const data = await res.json();
      state.token = data.access_token;
      return true;
    } catch (e) { return false; }
  }

  // -- views -----------------------------------------------------------------------------
  function show(view) {
    state.view = view;
    for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
    for (const b of document.querySelectorAll("nav button")) {
      if (b.dataset.view === view) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
    }
    fail(null);
    const loaders = { chat: loadConversations, servers: loadServers, approvals: loadApprovals,
                      executions: loadExecutions, audit: loadAudit };
    if (loaders[view]) loaders[view]().catch(fail);
  }

  async function signedIn() {
    state.user = await call("GET", "/auth/me");
    $("top").hidden = false;
    $("who").textContent = state.user.email + " (" + state.user.role + ")";
    for (const b of document.querySelectorAll("[data-admin]")) b.hidden = !can("administer");
    startEvents();
    loadAlerts().catch(() => {});
    show("chat");
  }

  // -- login -----------------------------------------------------------------------------
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fail(null);
    const body = { email: $("login-email").value.trim(), password: $("login-password").value };
    const code = $("login-mfa").value.trim();
    if (code) body.mfa_code = code;
    try {
      const data = await call("POST", "/auth/login", body, false);
      state.token = data.access_token;
      $("login-password").value = ""; $("login-mfa").value = "";
      await signedIn();
    } catch (err) {
      if (err.error && err.error.code === "AUTH004") { $("mfa-row").hidden = false; $("login-mfa").focus(); }
      fail(err);
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await call("POST", "/auth/logout", {}); } catch (e) { /* signed out anyway */ }
    location.reload();
  });
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.view));

  // -- SSE over fetch (headers allowed, Last-Event-ID resume) ---------------------------
  async function readSSE(res, onEvent) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, cut); buf = buf.slice(cut + 2);
        const ev = { id: null, type: "message", data: "" };
        for (const line of frame.split("\n")) {
          if (line.startsWith("id: ")) ev.id = line.slice(4);
          else if (line.startsWith("event: ")) ev.type = line.slice(7);
          else if (line.startsWith("data: ")) ev.data += line.slice(6);
        }
        if (ev.data) onEvent(ev.type, JSON.parse(ev.data), ev.id);
      }
    }
  }

  async function startEvents() {
    let last = null;
    for (;;) {
      try {
        const headers = { Authorization: "Bearer " + state.token };
        if (last) headers["Last-Event-ID"] = last;
        const res = await fetch(API + "/events", { headers });
        if (res.status === 401) { if (!(await refresh())) return; continue; }
        await readSSE(res, (type, data, id) => { if (id) last = id; onLiveEvent(type, data); });
      } catch (e) { /* reconnect below */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function onLiveEvent(type, data) {
    if (type === "server_status") {
      const cell = document.querySelector(`[data-status-for="${CSS.escape(data.minion_id)}"]`);
      if (cell) { cell.textContent = data.status; cell.className = "st-" + data.status; }
      say(data.minion_id + " is " + data.status);
    } else if (type === "alert") {
      if (data.state === "resolved") {
        state.alerts.delete(data.alert_id);
        say("Resolved: " + (data.resolution || data.title || data.alert_id));
      } else {
        state.alerts.set(data.alert_id, { id: data.alert_id, severity: data.severity, title: data.title,
                                          description: data.description, created_at: data.created_at });
        say("Alert: " + (data.title || data.alert_id));
      }
      renderAlerts();
    } else if (type === "action_update") {
      const text = "Action " + data.status + (data.by ? " by " + data.by : "");
      say(text + " (" + data.action_id + ")");
      for (const card of document.querySelectorAll(`.action-card[data-action="${CSS.escape(data.action_id)}"]`)) {
        if (card.dataset.busy) continue;  // the approver's own card shows the result instead
        for (const b of card.querySelectorAll("button")) b.remove();
        card.append(el("p", { class: "decision" }, text));
      }
    }
  }

  // -- alerts (active ones, kept current by the live stream) -------------------------------
  async function loadAlerts() {
    const page = await call("GET", "/alerts?status=active&limit=100");
    state.alerts.clear();
    for (const a of page.data) state.alerts.set(a.id, a);
    renderAlerts();
  }

  function renderAlerts() {
    const items = [...state.alerts.values()].map((a) => {
      const sev = String(a.severity || "warning").toLowerCase();
      return el("li", { class: "sev-" + sev, "data-alert": a.id },
        el("span", { class: "sev" }, sev), el("strong", {}, a.title || ""),
        a.description ? " — " + a.description : "",
        a.created_at ? el("time", { datetime: a.created_at }, new Date(a.created_at).toLocaleString()) : null);
    });
    $("alert-list").replaceChildren(...items);
    $("alerts-panel").hidden = items.length === 0;
  }

  // -- two-factor enrolment ----------------------------------------------------------------
  $("mfa-start").addEventListener("click", async () => {
    fail(null);
    try {
      const e = await call("POST", "/auth/mfa/enroll", {});
      $("mfa-uri").value = e.otpauth_uri;
      $("mfa-secret").value = e.secret;
      $("mfa-codes").replaceChildren(...e.recovery_codes.map((c) => el("li", {}, c)));
      $("mfa-enrol").hidden = false;
      $("mfa-code").focus();
    } catch (err) { fail(err); }
  });

  $("mfa-confirm-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fail(null);
    try {
      await call("POST", "/auth/mfa/confirm", { code: $("mfa-code").value.trim() });
      $("mfa-code").value = "";
      $("mfa-enrol").hidden = true;
      $("mfa-uri").value = ""; $("mfa-secret").value = ""; $("mfa-codes").replaceChildren();
      $("mfa-state").textContent = "Two-factor authentication is on: sign-in asks for a code from your app.";
      say("Two-factor authentication is on");
    } catch (err) { fail(err); }
  });

  // -- chat --------------------------------------------------------------------------------
  async function loadConversations() {
    const page = await call("GET", "/chat/conversations?limit=50");
    const list = $("conversations");
    list.replaceChildren(...page.data.map((c) => el("li", {},
      el("button", { type: "button", onclick: () => openConversation(c.id).catch(fail),
                     "aria-current": c.id === state.conversation ? "true" : null }, c.title || "Untitled"))));
  }

  async function openConversation(id) {
    const conv = await call("GET", "/chat/conversations/" + encodeURIComponent(id));
    state.conversation = id;
    const box = $("messages");
    box.replaceChildren();
    for (const m of conv.messages) {
      const meta = m.metadata || {};
      if (m.role === "user") box.append(el("li", { class: "msg user" }, m.content));
      else box.append(renderAnswer({ text: m.content, response: meta.response }));
    }
    for (const a of conv.actions.filter((x) => x.status === "proposed")) {
      box.append(el("li", { class: "msg" }, actionCard({ action_id: a.id, ...a })));
    }
  }

  $("new-chat").addEventListener("click", () => { state.conversation = null; $("messages").replaceChildren(); $("chat-input").focus(); });

  function renderFindings(response) {
    const out = [];
    if (!response) return out;
    if (response.summary) out.push(el("p", { class: "summary" }, response.summary));
    for (const f of response.findings || []) {
      const sev = String(f.severity || "info").toLowerCase();
      out.push(el("div", { class: "finding " + sev },
        el("span", { class: "sev" }, sev), el("strong", {}, f.title || ""),
        f.minion_id ? " — " + f.minion_id : "", f.detail ? el("div", {}, f.detail) : null,
        (f.evidence || []).map((e) => el("div", { class: "evidence" }, "evidence: " + describeEvidence(e)))));
    }
    for (const r of response.recommendations || []) out.push(el("p", {}, "Recommendation: " + (r.text || r.title || JSON.stringify(r))));
    return out;
  }

  function describeEvidence(e) {
    if (!e || typeof e !== "object") return String(e);
    const parts = [e.minion_id || e.minion, e.function, e.jid ? "jid " + e.jid : null, e.key || e.path,
                   e.value !== undefined ? "= " + JSON.stringify(e.value) : null];
    const text = parts.filter(Boolean).join(" ");
    return text || JSON.stringify(e);
  }

  function renderAnswer(done) {
    const li = el("li", { class: "msg assistant" });
    const findings = renderFindings(done.response);
    if (findings.length) li.append(...findings);
    else li.append(el("div", { class: "answer" }, done.text || ""));
    return li;
  }

  // What the minions said when the action was proposed: a dry run, or the current state.
  function describePreview(p) {
    if (!p || typeof p !== "object") return "";
    const lines = [p.note || p.mode || ""];
    const changes = p.would_change || {};
    for (const [minion, states] of Object.entries(changes)) {
      for (const s of states) lines.push(minion + ": " + (s.comment || JSON.stringify(s.changes)));
    }
    if (!Object.keys(changes).length) {
      for (const [minion, r] of Object.entries(p.returns || {})) lines.push(minion + ": " + JSON.stringify(r.ret));
    }
    for (const minion of p.missing || []) lines.push(minion + ": did not answer");
    if (p.jid) lines.push("(jid " + p.jid + ")");
    return lines.join("\n");
  }

  function actionCard(a) {
    const preview = JSON.stringify({ function: a.function, targets: a.targets, args: a.args }, null, 2);
    const evidence = describePreview(a.preview);
    const card = el("div", { class: "action-card", "data-action": a.action_id },
      el("strong", {}, "Proposed action: " + (a.label || a.function)),
      a.description ? el("p", {}, a.description) : null,
      el("pre", { "aria-label": "Action" }, preview),
      evidence ? el("pre", { "aria-label": "Preview from the servers", "data-testid": "action-preview" }, evidence) : null);
    if (can("approve")) {
      card.append(el("div", { class: "row" },
        el("button", { type: "button", class: "primary",
                       onclick: () => approve(a, evidence ? preview + "\n\n" + evidence : preview, card) }, "Approve…"),
        el("button", { type: "button", onclick: () => reject(a, card) }, "Reject")));
    } else {
      card.append(el("p", {}, "Waiting for approval by an admin."));
    }
    return card;
  }

  function confirmDialog(preview) {
    return new Promise((resolve) => {
      const dlg = $("confirm");
      $("confirm-preview").textContent = preview;
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "run"), { once: true });
      dlg.showModal();
    });
  }

  async function approve(a, preview, card) {
    if (!(await confirmDialog(preview))) return;
    card.dataset.busy = "1";
    say("Running " + (a.label || a.function) + "…");
    try {
      const res = await call("POST", "/chat/actions/" + encodeURIComponent(a.action_id) + "/execute", { confirm: true });
      card.replaceChildren(el("strong", {}, "Action " + res.status + ": " + (a.label || a.function)),
        el("pre", { "aria-label": "Action result" }, JSON.stringify(res.returns || {}, null, 2)));
      say("Action " + res.status);
    } catch (err) { fail(err); }
  }

  async function reject(a, card) {
    try {
      await call("POST", "/chat/actions/" + encodeURIComponent(a.action_id) + "/reject", { reason: "rejected in the web app" });
      card.replaceChildren(el("strong", {}, "Rejected: " + (a.label || a.function)));
    } catch (err) { fail(err); }
  }

  $("chat-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("chat-form").requestSubmit(); }
  });

  $("chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text) return;
    fail(null);
    $("send").disabled = true;
    try {
      if (!state.conversation) {
        const conv = await call("POST", "/chat/conversations", { title: text.slice(0, 120) });
        state.conversation = conv.id;
      }
      $("chat-input").value = "";
      const box = $("messages");
      box.append(el("li", { class: "msg user" }, text));
      const progress = el("div", { class: "progress", "data-testid": "progress" });
      const reply = el("li", { class: "msg assistant streaming" }, progress);
      box.append(reply);
      await streamMessage(state.conversation, text, progress, reply);
      loadConversations().catch(() => {});
    } catch (err) { fail(err); } finally { $("send").disabled = false; }
  });

  async function streamMessage(cid, text, progress, reply) {
    const path = API + "/chat/conversations/" + encodeURIComponent(cid) + "/messages";
    let last = null, finished = false;
    const handle = (type, data, id) => {
      if (id) last = id;
      if (type === "content_delta") progress.append(document.createTextNode(data.delta));
      else if (type === "action_available") reply.append(actionCard(data));
      else if (type === "message_end") {
        finished = true;
        reply.classList.remove("streaming");
        reply.prepend(...renderFindings(data.response));
        if (!(data.response && data.response.findings)) reply.prepend(el("div", { class: "answer" }, data.text || ""));
      } else if (type === "error") {
        finished = true;
        reply.classList.remove("streaming");
        reply.classList.add("failed");
        fail(data);
      }
    };
    const res = await fetch(path, { method: "POST", body: JSON.stringify({ content: text }),
      headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" } });
    if (!res.ok) throw await res.json();
    try { await readSSE(res, handle); } catch (e) { /* connection dropped: resume below */ }
    for (let tries = 0; !finished && tries < 5; tries++) {
      const headers = { Authorization: "Bearer " + state.token };
      if (last) headers["Last-Event-ID"] = last;
      const again = await fetch(API + "/events?max_seconds=120&conversation_id=" + encodeURIComponent(cid), { headers });
      try { await readSSE(again, (t, d, i) => { handle(t, d, i); if (finished) throw new Error("done"); }); } catch (e) { /* done or dropped */ }
    }
  }

  // -- servers -----------------------------------------------------------------------------
  $("server-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadServers().catch(fail); });

  async function loadServers() {
    const q = new URLSearchParams({ limit: "100" });
    if ($("server-search").value.trim()) q.set("search", $("server-search").value.trim());
    if ($("server-status").value) q.set("status", $("server-status").value);
    if ($("server-tag").value.trim()) q.set("tags", $("server-tag").value.trim());
    const page = await call("GET", "/servers?" + q);
    $("server-rows").replaceChildren(...page.data.map((s) => el("tr", {},
      el("td", {}, el("button", { type: "button", onclick: () => loadServer(s.minion_id).catch(fail) }, s.minion_id)),
      el("td", { "data-status-for": s.minion_id, class: "st-" + s.status }, s.status),
      el("td", {}, [s.os, s.os_release].filter(Boolean).join(" ")),
      el("td", {}, (s.tags || []).map((t) => el("span", { class: "pill" }, t))),
      el("td", {}, s.last_seen_at ? new Date(s.last_seen_at).toLocaleString() : "never"))));
    $("server-count").textContent = page.pagination.total + " server(s)";
  }

  async function loadServer(id) {
    const s = await call("GET", "/servers/" + encodeURIComponent(id));
    const box = $("server-detail");
    box.hidden = false;
    box.replaceChildren(el("h2", {}, s.minion_id),
      el("p", {}, "Status: ", el("span", { class: "st-" + s.status }, s.status), " · ", s.hostname || "", " · ",
         (s.ip_addresses || []).join(", ")),
      el("p", {}, "Tags: ", (s.tags || []).map((t) => el("span", { class: "pill" }, t))),
      el("h3", {}, "Recent executions"),
      s.recent_executions.length ? el("ul", {}, s.recent_executions.map((e) =>
        el("li", {}, `${e.started_at || ""} ${e.module} ${e.status} (jid ${e.job_id || "-"}) by ${e.requested_by || "-"}`)))
        : el("p", {}, "None yet."),
      el("h3", {}, "Grains"), el("pre", {}, JSON.stringify(s.grains, null, 2)));
    box.focus && box.setAttribute("tabindex", "-1");
  }

  // -- approvals, executions, audit --------------------------------------------------------
  async function loadApprovals() {
    const res = await call("GET", "/chat/actions");
    const list = $("approval-list");
    if (!res.data.length) { list.replaceChildren(el("p", {}, "Nothing is waiting for approval.")); return; }
    list.replaceChildren(...res.data.map((a) => {
      const card = actionCard({ action_id: a.id, ...a });
      card.prepend(el("p", {}, "Asked by " + (a.requested_by || "?") + " · expires " + (a.expires_at || "")));
      return card;
    }));
  }

  async function loadExecutions() {
    const page = await call("GET", "/executions?limit=100");
    $("execution-rows").replaceChildren(...page.data.map((e) => el("tr", {},
      el("td", {}, e.created_at || ""), el("td", {}, e.module), el("td", {}, (e.targets || []).join(", ")),
      el("td", {}, e.status), el("td", {}, e.requested_by || ""), el("td", {}, e.job_id || ""))));
  }

  async function loadAudit() {
    const page = await call("GET", "/audit?limit=100");
    $("audit-rows").replaceChildren(...page.data.map((r) => el("tr", {},
      el("td", {}, r.created_at || ""), el("td", {}, r.action), el("td", {}, r.actor || r.user_id || ""),
      el("td", {}, [r.resource_type, r.resource_id].filter(Boolean).join(" ")),
      el("td", {}, JSON.stringify(r.details || {})))));
  }

  // -- start -------------------------------------------------------------------------------
  (async () => {
    if (await refresh()) { try { await signedIn(); return; } catch (e) { /* fall through */ } }
    $("view-login").hidden = false;
    $("login-email").focus();
  })();
})();
