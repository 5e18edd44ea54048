// End-to-end: the ckslab web UI in a real headless Chromium against `ckslab serve` on a real
// (local backend) cluster. run.sh starts the server and sets the environment:
//   CKSLAB_URL       http://127.0.0.1:<port>/
//   CKSLAB_BIN       the ckslab binary (for `ckslab solve`)
//   CKSLAB_HOME      its data dir; CKSLAB_BACKEND=local
//   E2E_SCENARIO     the scenario to play (default rbac-least-privilege)
//   E2E_ARTIFACTS    where screenshots go (default target/e2e-artifacts)
//   CHROMIUM         the browser (default /usr/bin/chromium)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const run = promisify(execFile);
const BASE = (process.env.CKSLAB_URL || "http://127.0.0.1:7878/").replace(/\/?$/, "/");
const BIN = process.env.CKSLAB_BIN || resolve("../../target/debug/ckslab");
const SCENARIO = process.env.E2E_SCENARIO || "rbac-least-privilege";
const ARTIFACTS = process.env.E2E_ARTIFACTS || resolve("../../target/e2e-artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGE_BUDGET_MS = 50;
const CLUSTER_TIMEOUT = 180_000;

let context;
let page;
let profile;
/** Server time (Server-Timing) of every document the browser loaded. */
const timings = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "ckslab-e2e-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on("dialog", (dialog) => dialog.accept());
  page.on("pageerror", (err) => console.error("page error:", err.message));
  page.on("response", (response) => {
    if (response.request().resourceType() !== "document") return;
    const header = response.headers()["server-timing"] || "";
    const match = /dur=([\d.]+)/.exec(header);
    if (match) timings.push({ url: response.url(), ms: Number(match[1]) });
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function go(path) {
  const response = await page.goto(new URL(path, BASE).href);
  assert.equal(response.status(), 200, `${path} answered ${response.status()}`);
  return response;
}

/** Clicks a job button and waits for the job box to say it finished; returns its title. */
async function runJob(button, timeout = CLUSTER_TIMEOUT) {
  await button.click();
  const title = page.locator("#job .job-title");
  await page.waitForFunction(() => {
    const t = document.querySelector("#job .job-title");
    return t && (t.classList.contains("ok") || t.classList.contains("failed"));
  }, null, { timeout });
  const text = await title.textContent();
  assert.ok(await title.evaluate((t) => t.classList.contains("ok")), `the job failed: ${text}`);
  return text;
}

/** Clicks "Check my work", records when each result arrived, and waits for the score. */
async function check() {
  await page.evaluate(() => {
    window.__arrivals = [];
    const results = document.getElementById("results");
    new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (node.dataset) window.__arrivals.push({ at: performance.now(), outcome: node.dataset.outcome, id: node.dataset.check });
        }
      }
    }).observe(results, { childList: true });
  });
  await page.locator("#check-button").click();
  await page.waitForSelector("#summary[data-passed]", { timeout: 120_000 });
  const arrivals = await page.evaluate(() => window.__arrivals);
  const passed = (await page.locator("#summary").getAttribute("data-passed")) === "true";
  const score = Number(await page.locator("#summary").getAttribute("data-score"));
  return { passed, score, arrivals };
}

test("home page shows the lab cluster and this machine", async () => {
  await go("/");
  await page.waitForSelector("#cluster-exists .pill.pass", { timeout: 20_000 });
  assert.match(await page.locator("#cluster-exists").textContent(), /exists/);
  assert.match(await page.locator("#cluster-api").textContent(), /healthy/);
  await page.waitForSelector("#doctor tbody tr td .pill");
  assert.ok((await page.locator("#components tbody tr").count()) >= 4, "control-plane components listed");
  assert.match(await page.content(), /export KUBECONFIG=/);
  await shot("01-home");
});

test("catalog lists the scenario by domain, runnable here", async () => {
  await page.locator("header nav a", { hasText: "Catalog" }).click();
  await page.waitForURL(/\/catalog$/);
  const row = page.locator(`tr[data-scenario="${SCENARIO}"]`);
  await row.waitFor();
  assert.match(await row.locator("td").last().textContent(), /yes/);
  assert.ok((await page.locator("section.domain h2").count()) >= 5, "every CKS domain");
  assert.match(await page.locator(".weight").first().textContent(), /% of the exam/);
  await shot("02-catalog");
  await row.locator("a").first().click();
  await page.waitForURL(new RegExp(`/scenarios/${SCENARIO}$`));
});

test("start the scenario: progress, then the task timer runs", async () => {
  await page.waitForSelector("#task .prose p");
  assert.match(await page.locator("#context").textContent(), /export KUBECONFIG=/);
  await shot("03-scenario");
  const title = await runJob(page.locator('button[data-action$="/start"]'));
  assert.match(title, /done/);
  assert.ok((await page.locator("#job .job-steps li").count()) > 0, "progress steps shown");
  await page.waitForFunction(() => /\d+:\d\d \//.test(document.querySelector("[data-timer]").textContent));
  assert.equal(await page.locator("#hint-list li").count(), 0, "a start begins the hint ladder again");
  if (process.env.E2E_FRESH_HISTORY) {
    assert.equal(await page.locator("#solution").count(), 0, "no solution before the first check");
  }
  await shot("04-started");
});

/** The terminal pane's screen as text (xterm.js's buffer, one line per row). */
async function terminalText() {
  return page.evaluate(() => {
    const buffer = window.ckslabTerminal.term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
    return lines.join("\n");
  });
}

/** Types `line` into the terminal as a learner does (keyboard into xterm.js), then Enter, and
 * waits for the screen to match `pattern`. */
async function typeInTerminal(line, pattern, timeout = 30_000) {
  await page.locator("#terminal-screen").click();
  await page.keyboard.type(line, { delay: 5 });
  await page.keyboard.press("Enter");
  try {
    await page.waitForFunction((source) => {
      const buffer = window.ckslabTerminal.term.buffer.active;
      let text = "";
      for (let i = 0; i < buffer.length; i++) text += buffer.getLine(i).translateToString(true) + "\n";
      return new RegExp(source, "m").test(text);
    }, pattern.source, { timeout });
  } catch (err) {
    throw new Error(`the terminal never showed ${pattern} after "${line}":\n${await terminalText()}`);
  }
}

test("the terminal pane: kubectl get nodes shows both nodes; the node shell lists the manifests", async () => {
  await page.waitForSelector('#terminal[data-state="connected"]', { timeout: 20_000 });
  await page.waitForFunction(() => /ckslab:/.test(document.querySelector("#terminal-screen").textContent));
  await typeInTerminal("kubectl get nodes", /^ckslab-worker\s+Ready/);
  const screen = await terminalText();
  assert.match(screen, /^ckslab-control-plane\s+Ready/m);
  assert.match(screen, /^ckslab-worker\s+Ready/m);
  await typeInTerminal("k version --client | head -1", /Client Version: v1\.34\.4/);
  await shot("03b-terminal-kubectl");
  await page.locator("#terminal-node").click();
  await page.waitForTimeout(500);
  await typeInTerminal("hostname; ls -1 /etc/kubernetes/manifests", /^kube-apiserver\.yaml/);
  const node = await terminalText();
  assert.match(node, /^ckslab-control-plane$/m, "the shell is the node's");
  for (const manifest of ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]) {
    assert.match(node, new RegExp(`^${manifest.replace(/\./g, "\\.")}`, "m"), manifest);
  }
  await shot("03c-terminal-node-shell");
  await page.keyboard.type("exit", { delay: 5 });
  await page.keyboard.press("Enter");
  await typeInTerminal("echo back:$((6*7))", /^back:42/);
});

test("check fails with observed, expected and where to look", async () => {
  const { passed, score, arrivals } = await check();
  assert.equal(passed, false);
  assert.ok(score < 100);
  const pending = arrivals.filter((a) => a.outcome === "running").length;
  const finished = arrivals.filter((a) => a.outcome !== "running");
  assert.ok(pending > 0, "pending rows were shown before results");
  assert.equal(finished.length, pending, "each check's result replaced its pending row");
  console.log(`results arrived at ${finished.map((a) => Math.round(a.at - arrivals[0].at) + "ms").join(", ")}`);
  const failed = page.locator('#results li[data-outcome="fail"]');
  assert.ok((await failed.count()) > 0);
  const why = await failed.first().locator(".why").textContent();
  assert.match(why, /observed/);
  assert.match(why, /expected/);
  assert.match(why, /where to look/);
  await shot("05-check-failed");
});

test("hint ladder reveals one hint at a time", async () => {
  await page.locator("#hint-button").click();
  await page.waitForSelector("#hint-list li");
  assert.equal(await page.locator("#hint-list li").count(), 1);
  assert.match(await page.locator("#hint-count").textContent(), /^1 of \d+/);
});

test("the reference solution shows after an attempt; apply it with the CLI; check passes", async () => {
  await page.reload();
  await page.waitForSelector("#solution details[open]");
  assert.equal(await page.locator("#hint-list li").count(), 1, "the ladder survives a reload");
  await shot("06-solution");
  const { stdout, stderr } = await run(BIN, ["solve", SCENARIO], { env: process.env, timeout: 120_000 });
  console.log((stdout + stderr).trim().split("\n").pop());
  const { passed, score } = await check();
  assert.equal(passed, true, `score ${score}`);
  assert.equal(score, 100);
  await shot("07-check-passed");
});

test("history lists both attempts", async () => {
  await page.locator("header nav a", { hasText: "History" }).click();
  await page.waitForURL(/\/history$/);
  const rows = page.locator(`#history tr[data-scenario="${SCENARIO}"]`);
  assert.ok((await rows.count()) >= 2);
  assert.match(await rows.first().textContent(), /100%/);
  assert.match(await rows.first().textContent(), /passed/);
  assert.match(await rows.nth(1).textContent(), /not yet/);
  await shot("08-history");
});

test("the instructor's classroom board shows this learner's attempts", {
  skip: !process.env.CLASSROOM_BOARD && "run.sh joins a classroom only with a data dir of its own",
}, async () => {
  // The instructor's own tab: the learner's page stays where it is for the tests after this.
  const board = await context.newPage();
  try {
    const response = await board.goto(process.env.CLASSROOM_BOARD);
    assert.equal(response.status(), 200);
    const cell = board.locator(`#board tr[data-learner="E2E Learner"] td[data-scenario="${SCENARIO}"]`);
    await cell.waitFor();
    const text = await cell.textContent();
    assert.match(text, /100%/, "the best score");
    assert.match(text, /2×/, "both checks were reported");
    await board.screenshot({ path: join(ARTIFACTS, "08b-classroom-board.png"), fullPage: true });
  } finally {
    await board.close();
  }
});

test("exam mode: sampled tasks, countdown, flag, finish, review", async () => {
  await page.locator("header nav a", { hasText: "Exam" }).click();
  await page.waitForURL(/\/exam$/);
  await page.fill('input[name="seed"]', "7");
  await page.fill('input[name="tasks"]', "4");
  await shot("09-exam-new");
  await page.locator('form[action="/exam"] button[type="submit"]').click();
  await page.waitForURL(/\/exam\/[0-9a-f]+$/);
  await page.waitForFunction(() => /left$/.test(document.querySelector("[data-countdown]").textContent));
  assert.match(await page.locator("[data-countdown]").textContent(), /^1:59:\d\d left$|^2:00:00 left$/);
  const tasks = page.locator("#exam-tasks tbody tr");
  assert.ok((await tasks.count()) >= 1);
  await tasks.first().locator("button.flag").click();
  await page.waitForSelector("#exam-tasks tbody tr button.flag.on");
  await shot("10-exam");
  await tasks.first().locator("a").click();
  await page.waitForSelector(".exam-bar");
  assert.equal(await page.locator("#hint-button").count(), 0, "no hints in the exam");
  await page.waitForSelector('#terminal[data-state="connected"]', { timeout: 20_000 });
  await typeInTerminal("k get ns default", /^default\s+Active/);
  await shot("11-exam-task");
  await page.locator(".exam-bar a").click();
  await page.locator("form.finish button").click();
  await page.waitForURL(/\/review$/);
  assert.match(await page.locator("#exam-result").textContent(), /pass mark is 67%/);
  await shot("12-exam-review");
});

test("a state-changing request without the CSRF token is refused", async () => {
  const status = await page.evaluate(async (id) => (await fetch(`/scenarios/${id}/hint`, { method: "POST" })).status, SCENARIO);
  assert.equal(status, 403);
});

// Only on a cluster run.sh brought up itself: this deletes it and creates it again.
test("delete and re-create the cluster from the home page; one operation at a time", { skip: !process.env.E2E_OWN_CLUSTER }, async () => {
  await go("/");
  await page.waitForSelector("#cluster-exists .pill.pass");
  await page.locator('button[data-action="/cluster/down"]').click();
  await page.waitForSelector("#busy:not([hidden])");
  const busy = await page.evaluate(async (id) => {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(`/scenarios/${id}/start`, { method: "POST", headers: { "x-csrf-token": token } });
    return { status: response.status, text: await response.text() };
  }, SCENARIO);
  assert.equal(busy.status, 409);
  assert.match(busy.text, /^busy: deleting the local lab cluster/);
  await page.waitForSelector("#job .job-title.ok", { timeout: CLUSTER_TIMEOUT });
  await page.waitForSelector("#cluster-exists .pill.muted");
  await shot("13-cluster-deleted");
  await page.locator('button[data-action="/cluster/up"]').click();
  await page.waitForSelector("#job .job-title:not(.ok):not(.failed)");
  await page.waitForSelector("#job .job-steps li");
  await shot("14-cluster-creating");
  await page.waitForFunction(() => {
    const t = document.querySelector("#job .job-title");
    return t.classList.contains("ok") || t.classList.contains("failed");
  }, null, { timeout: CLUSTER_TIMEOUT });
  assert.match(await page.locator("#job .job-title").textContent(), /done/);
  await page.waitForSelector("#cluster-api .pill.pass", { timeout: 30_000 });
  await shot("15-cluster-created");
});

test(`every page was served in under ${PAGE_BUDGET_MS} ms`, () => {
  assert.ok(timings.length >= 8, `saw ${timings.length} documents`);
  const slow = timings.filter((t) => t.ms >= PAGE_BUDGET_MS);
  console.log(timings.map((t) => `${t.ms.toFixed(2)} ms ${new URL(t.url).pathname}`).join("\n"));
  console.log(`server time per page: max ${Math.max(...timings.map((t) => t.ms)).toFixed(2)} ms over ${timings.length} pages`);
  assert.deepEqual(slow, []);
});
