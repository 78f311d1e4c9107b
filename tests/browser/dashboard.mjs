// Browser test of the dashboard, in headless Chromium driven by playwright-core.
//
//   DASHBOARD_URL=http://127.0.0.1:8080/ DASHBOARD_EMAIL=… DASHBOARD_PASSWORD=… node dashboard.mjs
//
// Environment:
//   DASHBOARD_URL        base URL of the server (or the first argument); default http://127.0.0.1:8080/
//   DASHBOARD_ORG        organization to log in to; default "default"
//   DASHBOARD_EMAIL      user email (required)
//   DASHBOARD_PASSWORD   password (required)
//   CHROMIUM_PATH        the browser; default /usr/bin/chromium (Debian's `chromium` package)
//   SCREENSHOT_DIR       where the screenshots go; default ./screenshots
//   DASHBOARD_EXPECT_EMPTY  comma-separated panel or KPI ids allowed to have no data or to be
//                        unavailable (e.g. "goal-progress" when the dataset has no goals)
//   DASHBOARD_TIMEOUT    milliseconds a view may take to load; default 90000
//
// It logs in (after checking that a wrong password is refused with a message), opens each of
// the four views by its tab (one by the keyboard), checks that every KPI and chart shows data
// (charts count their data marks in `data-points`), reads a value with the arrow keys,
// applies a group and a subject filter, reloads, turns auto-refresh off, logs out, and fails
// on any console error, uncaught exception, failed request or HTTP error outside the
// wrong-password step. It prints one line per check and "N passed, N failed"; exits 1 on
// failure.

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2] || process.env.DASHBOARD_URL || "http://127.0.0.1:8080/";
const org = process.env.DASHBOARD_ORG || "default";
const email = process.env.DASHBOARD_EMAIL;
const password = process.env.DASHBOARD_PASSWORD;
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const shots = path.resolve(process.env.SCREENSHOT_DIR || "screenshots");
const expectEmpty = new Set((process.env.DASHBOARD_EXPECT_EMPTY || "").split(",").map((s) => s.trim()).filter(Boolean));
const timeout = Number(process.env.DASHBOARD_TIMEOUT || 90000);

const VIEWS = [
  { id: "overview", tab: "Overview" },
  { id: "progression", tab: "User progression" },
  { id: "nutrition", tab: "Nutrition habits" },
  { id: "activity", tab: "Activity tracking" },
];

if (!email || !password) {
  console.error("error: set DASHBOARD_EMAIL and DASHBOARD_PASSWORD");
  process.exit(2);
}

const problems = [];
let passed = 0;
let failed = 0;
let expectingErrors = false;

function check(name, ok, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok   ${name}${detail ? ` — ${detail}` : ""}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? ` — ${detail}` : ""}`);
  }
  return ok;
}

await mkdir(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Chromium's sandbox needs user namespaces, which containers and root often lack.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});

let exitCode = 1;
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);

  page.on("console", (message) => {
    if (message.type() === "error" && !expectingErrors) problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught exception: ${error.message}`));
  page.on("requestfailed", (request) => {
    if (!expectingErrors) problems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && !expectingErrors) {
      problems.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
    }
  });

  // Login page.
  const response = await page.goto(base, { waitUntil: "domcontentloaded" });
  check("dashboard page is served", response && response.ok(), `${response?.status()} ${base}`);
  const csp = response?.headers()["content-security-policy"];
  check("page is sent with a Content-Security-Policy", Boolean(csp), csp || "none");
  await page.locator("#login-form").waitFor({ state: "visible" });
  await page.screenshot({ path: path.join(shots, "00-login.png") });

  // A wrong password is refused with a message, and the form stays.
  expectingErrors = true;
  await page.getByLabel("Organization").fill(org);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(`${password}-wrong`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#login-error:not([hidden])").waitFor();
  check("a wrong password is refused with a message", await page.locator("#app-view").isHidden(), await page.locator("#login-error").innerText());
  expectingErrors = false;

  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#app-view").waitFor({ state: "visible" });
  check("login opens the dashboard", true);

  for (const [index, view] of VIEWS.entries()) {
    if (index === 1) {
      // Tabs are one tab stop; the arrow keys move between them.
      await page.getByRole("tab", { name: VIEWS[0].tab }).focus();
      await page.keyboard.press("ArrowRight");
    } else if (index > 0) {
      await page.getByRole("tab", { name: view.tab }).click();
    }
    await page.locator(`#view[data-view="${view.id}"][data-loaded="true"]`).waitFor({ timeout });
    const selected = await page.getByRole("tab", { name: view.tab }).getAttribute("aria-selected");
    check(`${view.id}: its tab is selected`, selected === "true");
    check(`${view.id}: the address names the view`, new URL(page.url()).hash.startsWith(`#/${view.id}`), page.url());

    const kpis = await page.$$eval("#view [data-kpi]", (cards) =>
      cards.map((c) => ({ id: c.dataset.kpi, state: c.dataset.state, value: c.querySelector(".value")?.textContent })),
    );
    for (const kpi of kpis) {
      const ok = kpi.state === "ready" || (expectEmpty.has(kpi.id) && kpi.state === "unavailable");
      check(`${view.id}: KPI ${kpi.id} has a value`, ok, `${kpi.state}: ${kpi.value}`);
    }

    const panels = await page.$$eval("#view [data-panel]", (sections) =>
      sections.map((s) => ({
        id: s.dataset.panel,
        state: s.dataset.state,
        points: Number(s.querySelector("figure")?.getAttribute("data-points") || 0),
        note: s.querySelector(".note, .empty")?.textContent || "",
      })),
    );
    check(`${view.id}: has charts`, panels.length > 0, `${panels.length} panels`);
    for (const panel of panels) {
      const ok = (panel.state === "ready" && panel.points > 0) || (expectEmpty.has(panel.id) && panel.state !== "failed");
      check(`${view.id}: chart ${panel.id} shows data`, ok, `${panel.state}, ${panel.points} data points${panel.note ? `, ${panel.note}` : ""}`);
    }
    await page.screenshot({ path: path.join(shots, `${String(index + 1).padStart(2, "0")}-${view.id}.png`), fullPage: true });
  }

  // A chart's values can be read with the keyboard.
  const chart = page.locator('#view [data-panel="steps-per-day"] svg');
  await chart.focus();
  await page.keyboard.press("ArrowRight");
  const readout = await page.locator('#view [data-panel="steps-per-day"] .readout').innerText();
  check("arrow keys on a chart announce a value", /\d/.test(readout) && /Steps/.test(readout), readout);

  // A group filter narrows the charts and the subject list.
  const groups = await page.$$eval("#f-group option", (os) => os.map((o) => o.value).filter(Boolean));
  if (groups.length) {
    await page.selectOption("#f-group", groups[0]);
    await page.waitForFunction((g) => location.hash.includes(`group=${g}`), groups[0]);
    await page.locator('#view[data-view="activity"][data-loaded="true"]').waitFor({ timeout });
    const points = await page.locator('#view [data-panel="steps-per-day"] figure').getAttribute("data-points");
    check("a group's steps are charted", Number(points) > 0, `group ${groups[0]}, ${points} data points`);
  } else {
    console.log("skip the group filter: the organization has no groups");
  }

  // A subject filter narrows every chart of the view.
  const options = await page.$$eval("#f-subject option", (os) => os.map((o) => o.value).filter(Boolean));
  if (check("the subject filter lists subjects", options.length > 0, `${options.length} subjects`)) {
    await page.selectOption("#f-subject", options[0]);
    await page.waitForFunction((s) => location.hash.includes(`subject=${s}`), options[0]);
    await page.locator('#view[data-view="activity"][data-loaded="true"]').waitFor({ timeout });
    const stepsPoints = await page.locator('#view [data-panel="steps-per-day"] figure').getAttribute("data-points");
    check("one subject's steps are charted", Number(stepsPoints) > 0, `${stepsPoints} data points`);
    await page.screenshot({ path: path.join(shots, "05-activity-one-subject.png"), fullPage: true });
  }

  // "Refresh now" reloads the view in place.
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.locator('#view[data-view="activity"][data-loaded="true"]').waitFor({ timeout });
  check("refresh now reloads the view", /Updated/.test(await page.locator("#status").innerText()), await page.locator("#status").innerText());

  // Auto-refresh can be turned off, and says so.
  await page.getByLabel("Auto-refresh every 60 s").uncheck();
  check("auto-refresh can be turned off", /off/i.test(await page.locator("#status").innerText()));

  await page.getByRole("button", { name: "Log out" }).click();
  await page.locator("#login-form").waitFor({ state: "visible" });
  check("logout shows the login form again", true);

  check("no console error, exception or failed request", problems.length === 0, problems.slice(0, 10).join(" | "));
  exitCode = failed === 0 ? 0 : 1;
} catch (error) {
  failed++;
  console.log(`FAIL ${error.message.split("\n")[0]}`);
  for (const p of problems.slice(0, 10)) console.log(`     ${p}`);
} finally {
  await browser.close();
}
console.log(`screenshots in ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(exitCode);
