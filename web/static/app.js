// ckslab web UI: buttons, job progress, streamed check results, timers. No dependencies.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Text with `code` spans as <code> elements (built as DOM nodes: nothing is parsed as HTML). */
function codeSpans(text) {
  const parts = String(text).split("`");
  const span = el("span");
  parts.forEach((part, index) => {
    const closed = index % 2 === 1 && index < parts.length - (parts.length % 2 === 0 ? 1 : 0);
    if (closed) span.append(el("code", { text: part }));
    else span.append((index % 2 === 1 ? "`" : "") + part);
  });
  return span;
}

function pill(kind, text) {
  return el("span", { class: "pill " + kind, text: text || kind });
}

function post(url) {
  return fetch(url, { method: "POST", headers: { "x-csrf-token": csrf }, credentials: "same-origin" });
}

function two(n) {
  return String(n).padStart(2, "0");
}

function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  return (h > 0 ? h + ":" + two(m) : String(m)) + ":" + two(s);
}

// ---------------------------------------------------------------------------------------------
// Operations (up, down, start, reset, solve): one at a time, progress polled from /api/job.

let polling = null;

function setBusy(job) {
  const busy = document.getElementById("busy");
  const running = job && job.running;
  if (busy) {
    busy.hidden = !running;
    busy.textContent = running ? job.label + "…" : "";
  }
  for (const button of document.querySelectorAll("[data-action], #check-button")) {
    if (button.dataset.disabledByServer === undefined) button.dataset.disabledByServer = button.disabled ? "1" : "";
    button.disabled = Boolean(running) || button.dataset.disabledByServer === "1";
  }
}

function showJob(job) {
  const box = document.getElementById("job");
  setBusy(job);
  if (!box || !job || job.kind === "grade") return;
  box.hidden = false;
  const title = box.querySelector(".job-title");
  title.className = "job-title";
  if (job.running) {
    title.textContent = job.label + "… (" + job.seconds + "s)";
  } else if (job.ok) {
    title.classList.add("ok");
    title.textContent = job.label + ": done in " + job.seconds + "s";
  } else {
    title.classList.add("failed");
    title.textContent = job.label + " failed: " + (job.error || "unknown error");
  }
  const list = box.querySelector(".job-steps");
  list.replaceChildren(...job.steps.map((step) => el("li", { text: step })));
  list.scrollTop = list.scrollHeight;
}

function showError(message) {
  const box = document.getElementById("job");
  if (box) {
    box.hidden = false;
    const title = box.querySelector(".job-title");
    title.className = "job-title failed";
    title.textContent = message;
    box.querySelector(".job-steps").replaceChildren();
  } else {
    alert(message);
  }
}

function pollJob(onDone) {
  if (polling) clearTimeout(polling);
  const tick = async () => {
    let job = null;
    try {
      job = (await (await fetch("/api/job")).json()).job;
    } catch (e) {
      polling = setTimeout(tick, 2000);
      return;
    }
    showJob(job);
    if (document.body.dataset.page === "home") refreshCluster();
    if (job && job.running) {
      polling = setTimeout(tick, 700);
    } else {
      polling = null;
      if (onDone) onDone(job);
    }
  };
  tick();
}

function afterJob(job) {
  if (!job || !job.ok) return;
  if ((job.kind === "start" || job.kind === "reset") && job.finished_ms) {
    const timer = document.querySelector("[data-timer]");
    if (timer) timer.dataset.started = String(job.finished_ms);
    tickTimers();
  }
  if (job.kind === "start") {
    // A fresh start begins the hint ladder again (the server has cleared it).
    const hints = document.getElementById("hints");
    const list = document.getElementById("hint-list");
    if (hints && list) {
      list.replaceChildren();
      document.getElementById("hint-count").textContent = "0 of " + hints.dataset.total;
      const button = document.getElementById("hint-button");
      if (button) button.disabled = false;
    }
  }
  if (job.kind === "solve") {
    const summary = document.getElementById("summary");
    if (summary) {
      summary.hidden = false;
      summary.className = "summary info";
      summary.textContent = "The reference solution is applied. Check again to see it pass.";
    }
  }
}

async function runAction(button) {
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  let response;
  try {
    response = await post(button.dataset.action);
  } catch (e) {
    showError("the server did not answer: " + e);
    return;
  }
  if (response.status === 202) {
    showJob(await response.json());
    pollJob(afterJob);
  } else if (response.ok) {
    location.reload();
  } else {
    showError(await response.text());
  }
}

// ---------------------------------------------------------------------------------------------
// Home: cluster state and doctor findings.

function renderCluster(answer) {
  const cluster = answer.cluster || {};
  const status = cluster.status;
  const exists = document.getElementById("cluster-exists");
  const api = document.getElementById("cluster-api");
  const nodes = document.getElementById("cluster-nodes");
  if (!exists) return;
  if (status) {
    exists.replaceChildren(status.exists ? pill("pass", "exists") : pill("muted", "not created"));
    api.replaceChildren(status.exists ? (status.api_healthy ? pill("pass", "healthy") : pill("fail", "not answering")) : "–");
    nodes.textContent = (status.nodes || []).join(", ");
  } else {
    exists.replaceChildren(pill("error", "unknown"), " " + (cluster.error || ""));
    api.textContent = "–";
    nodes.textContent = "";
  }
  const rows = ((status && status.components) || []).map((c) =>
    el("tr", {}, el("td", { text: c.name }), el("td", {}, c.running ? pill("pass", "running") : pill("fail", "down")),
      el("td", {}, el("pre", { class: "detail", text: c.detail || "" }))));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "3", class: "muted", text: "no components (no cluster)" })));
  document.querySelector("#components tbody").replaceChildren(...rows);
  if (answer.doctor) {
    document.querySelector("#doctor tbody").replaceChildren(...answer.doctor.map((f) =>
      el("tr", {}, el("td", {}, f.ok ? pill("pass", "ok") : pill("fail", "missing")), el("td", { text: f.name }),
        el("td", { text: f.detail }), el("td", {}, f.fix ? el("code", { text: f.fix }) : null))));
  }
}

let refreshing = false;
async function refreshCluster() {
  if (refreshing) return;
  refreshing = true;
  try {
    const answer = await (await fetch("/api/cluster")).json();
    renderCluster(answer);
    if (answer.job && answer.job.running && !polling) {
      showJob(answer.job);
      pollJob(afterJob);
    }
  } catch (e) {
    /* the next refresh tries again */
  } finally {
    refreshing = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Check: results stream in (server-sent events over a POST), one per check as it finishes.

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const dispatch = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) onEvent(name, JSON.parse(data.join("\n")));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let index;
    while ((index = buffer.indexOf("\n\n")) >= 0) {
      dispatch(buffer.slice(0, index));
      buffer = buffer.slice(index + 2);
    }
  }
  if (buffer.trim()) dispatch(buffer);
}

function verdictItem(v) {
  const item = el("li", { class: v.outcome, "data-check": v.id, "data-outcome": v.outcome },
    el("div", { class: "head" },
      el("span", {}, v.description, " ", el("span", { class: "muted small", text: "(weight " + v.weight + ")" })),
      pill(v.outcome === "pass" ? "pass" : v.outcome === "fail" ? "fail" : "error", v.outcome)));
  if (v.outcome !== "pass") {
    const why = el("dl", { class: "why" },
      el("dt", { text: "observed" }), el("dd", { text: v.observed }),
      el("dt", { text: "expected" }), el("dd", { text: v.expected }));
    if (v.hint) why.append(el("dt", { text: "where to look" }), el("dd", {}, codeSpans(v.hint)));
    item.append(why);
  }
  return item;
}

async function runCheck(button) {
  const results = document.getElementById("results");
  const summary = document.getElementById("summary");
  results.replaceChildren();
  summary.hidden = false;
  summary.className = "summary info";
  summary.textContent = "Checking…";
  setBusy({ running: true, label: "checking" });
  const started = Date.now();
  let done = 0, total = 0;
  try {
    const response = await post(button.dataset.check);
    if (!response.ok) {
      summary.className = "summary error";
      summary.textContent = await response.text();
      return;
    }
    await readEvents(response, (name, data) => {
      if (name === "checks") {
        total = data.length;
        for (const c of data) {
          results.append(el("li", { class: "running", "data-check": c.id, "data-outcome": "running" },
            el("div", { class: "head" }, el("span", { text: c.description }), pill("running", "checking…"))));
        }
      } else if (name === "verdict") {
        done += 1;
        const old = results.querySelector('li[data-check="' + CSS.escape(data.id) + '"]');
        const item = verdictItem(data);
        if (old) old.replaceWith(item); else results.append(item);
        summary.textContent = "Checking… " + done + " of " + total + " done (" + clock(Date.now() - started) + ")";
      } else if (name === "error") {
        summary.className = "summary error";
        summary.textContent = data.message;
      } else if (name === "report") {
        summary.className = "summary " + (data.passed ? "pass" : "fail");
        summary.textContent = (data.passed ? "Passed: " : "Not yet: ") + data.score + "% of the checks' weight" +
          (data.best != null ? " · best " + data.best + "%" : "") + " · " + data.hints_used + (data.hints_used === 1 ? " hint" : " hints") + " used";
        const best = document.getElementById("best");
        if (best && data.best != null) { best.hidden = false; best.textContent = "best " + data.best + "%"; }
        if (data.classroom_problem) {
          summary.append(el("div", { class: "muted small", text: "Not reported to your classroom: " + data.classroom_problem }));
        }
        summary.dataset.score = String(data.score);
        summary.dataset.passed = String(data.passed);
        const note = document.getElementById("solution-note");
        if (note) {
          note.replaceChildren("The reference solution is now available: ", el("a", { href: location.pathname, text: "reload the page" }), ".");
        }
      }
    });
  } catch (e) {
    summary.className = "summary error";
    summary.textContent = "the check was interrupted: " + e;
  } finally {
    setBusy(null);
  }
}

// ---------------------------------------------------------------------------------------------
// Hints, flags, timers.

async function revealHint(button) {
  const response = await post(button.dataset.hint);
  if (!response.ok) return showError(await response.text());
  const answer = await response.json();
  document.getElementById("hint-list").replaceChildren(...answer.hints.map((h) => el("li", {}, codeSpans(h))));
  document.getElementById("hint-count").textContent = answer.revealed + " of " + answer.total;
  button.disabled = answer.revealed >= answer.total;
}

async function toggleFlag(button) {
  const response = await post(button.dataset.flag);
  if (!response.ok) return alert(await response.text());
  const { flagged } = await response.json();
  button.classList.toggle("on", flagged);
  const long = !button.classList.contains("small");
  button.textContent = flagged ? (long ? "⚑ Flagged for review" : "⚑ Flagged") : (long ? "⚐ Flag for review" : "⚐ Flag");
}

let reloadedAtZero = false;
function tickTimers() {
  const now = Date.now();
  for (const timer of document.querySelectorAll("[data-timer]")) {
    const started = Number(timer.dataset.started);
    const minutes = Number(timer.dataset.minutes);
    if (!started) {
      timer.textContent = "not started · " + minutes + " min";
      continue;
    }
    const elapsed = now - started;
    timer.textContent = clock(elapsed) + " / " + minutes + ":00";
    timer.classList.toggle("over", elapsed > minutes * 60000);
  }
  for (const countdown of document.querySelectorAll("[data-countdown]")) {
    const left = Number(countdown.dataset.countdown) - now;
    countdown.textContent = left > 0 ? clock(left) + " left" : "time is up";
    countdown.classList.toggle("low", left < 10 * 60000);
    if (left <= 0 && !reloadedAtZero && document.body.dataset.page === "exam") {
      reloadedAtZero = true;
      setTimeout(() => location.reload(), 500);
    }
  }
}

function localTimes() {
  for (const time of document.querySelectorAll("time[datetime]")) {
    const date = new Date(time.getAttribute("datetime"));
    if (!isNaN(date)) time.textContent = date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target || target.disabled) return;
  if (target.dataset.action) runAction(target);
  else if (target.dataset.check) runCheck(target);
  else if (target.dataset.hint) revealHint(target);
  else if (target.dataset.flag) toggleFlag(target);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) event.preventDefault();
});

localTimes();
tickTimers();
setInterval(tickTimers, 1000);
if (document.body.dataset.page === "home") {
  refreshCluster();
  setInterval(() => { if (!polling) refreshCluster(); }, 15000);
}
// Pick up an operation that is already running (started in another tab, or before a reload).
fetch("/api/job").then((r) => r.json()).then(({ job }) => {
  if (job && job.running) pollJob(afterJob);
  else if (job && document.getElementById("job") && !document.getElementById("job").hidden) showJob(job);
}).catch(() => {});
