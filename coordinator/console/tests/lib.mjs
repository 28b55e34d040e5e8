// What the console's browser tests share: Debian's Chromium driven by playwright-core (never a
// downloaded browser), pages that record console errors and CSP violations, sign-in, the API
// (to check what the UI did), screenshots, and the catalogue check of visible strings.
// The Rust test (tests/console.rs) starts the region and passes it in the environment.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/console.rs sets it)`);
  return v;
}

export const env = {
  url: need("CONSOLE_URL"),
  adminToken: need("CONSOLE_ADMIN_TOKEN"),
  tenantToken: process.env.CONSOLE_TENANT_TOKEN || "",
  tenantId: process.env.CONSOLE_TENANT_ID || "",
  hostId: process.env.CONSOLE_HOST_ID || "",
  out: process.env.CONSOLE_OUT || "/tmp/plinth-console-shots",
  chromium: process.env.CONSOLE_CHROMIUM || "/usr/bin/chromium",
};

/** @param {string} lang every screen's catalogue of `lang` (app/i18n/<lang>/*.json) in one */
function catalogue(lang) {
  const dir = join(here, "../app/i18n", lang);
  const all = {};
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    Object.assign(all, JSON.parse(readFileSync(join(dir, f), "utf8")));
  }
  return all;
}

export const catalogues = { en: catalogue("en"), "zh-CN": catalogue("zh-CN") };

/** @param {unknown} cond @param {string} msg */
export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: env.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

/**
 * A page in its own context (own cookies), 1280x800, that records every console error, page
 * error and CSP violation into `errors`.
 * @param {import("playwright-core").Browser} browser
 * @param {{locale?: string}} [opts]
 */
export async function openPage(browser, opts = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
    locale: opts.locale || "en-US",
  });
  // Playwright's 30 s for a wait or a page load is not enough where twelve regions and three
  // browsers share two cores; a wait that takes a minute is stuck.
  context.setDefaultTimeout(60_000);
  context.setDefaultNavigationTimeout(60_000);
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // Signed out, the who-am-I probe (GET /v1/session) and a refused sign-in answer 401 by
    // design; Chromium logs those as failed loads.
    if (m.location().url.endsWith("/v1/session") && m.text().includes("401")) return;
    errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  return { context, page, errors };
}

/** Navigates to the console and signs in with `token`; answers the response of `/`. */
export async function signIn(page, token) {
  const resp = await page.goto(`${env.url}/`);
  await page.locator("#token").fill(token);
  await page.locator("form button[type=submit]").click();
  await page.locator(".shell").waitFor();
  return resp;
}

/** The API as a test client (bearer token), to check what the UI did. */
export async function api(method, path, token = env.adminToken, body) {
  const resp = await fetch(`${env.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await resp.text();
  return { status: resp.status, body: text ? JSON.parse(text) : null };
}

/** @param {import("playwright-core").Page} page @param {string} name */
export async function shot(page, name) {
  mkdirSync(env.out, { recursive: true });
  await page.screenshot({ path: join(env.out, `${name}.png`) });
}

/**
 * Every visible string of the page that is not data from the API (elements marked
 * `data-raw`): text nodes, placeholders, labels for assistive technology.
 * @param {import("playwright-core").Page} page
 * @returns {Promise<string[]>}
 */
export async function visibleStrings(page) {
  return page.evaluate(() => {
    const out = [];
    const visible = (el) => {
      if (!el) return false;
      if (el.closest("option")) return !!el.closest("select")?.checkVisibility();
      return el.checkVisibility ? el.checkVisibility() : true;
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      const text = (n.textContent || "").trim();
      if (!text || !el || el.closest("[data-raw]") || !visible(el)) continue;
      out.push(text);
    }
    for (const el of document.querySelectorAll("[placeholder], [aria-label]")) {
      if (el.closest("[data-raw]") || !visible(el)) continue;
      for (const a of ["placeholder", "aria-label"]) {
        const v = el.getAttribute(a);
        if (v) out.push(v.trim());
      }
    }
    out.push(document.title);
    return out;
  });
}

/** Whether `text` is the catalogue string `value`, `{name}` standing for any value. */
function matches(value, text) {
  if (value === text) return true;
  if (!value.includes("{")) return false;
  const re = new RegExp(
    `^${value.split(/\{\w+\}/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".+?")}$`,
    "s",
  );
  return re.test(text);
}

/** Whether `text` is one of the catalogue's strings, `{name}` standing for any value. */
export function inCatalogue(catalogue, text) {
  return Object.values(catalogue).some((value) => matches(value, text));
}

/**
 * Checks that every visible string of `page` is from catalogue `lang`, and (with `other`)
 * that none is a string of `other` that `lang` words differently.
 */
export async function checkStrings(page, lang, other, where) {
  const strings = await visibleStrings(page);
  const bad = strings.filter((s) => /\p{L}/u.test(s) && !inCatalogue(catalogues[lang], s));
  check(bad.length === 0, `${where}: strings not in the ${lang} catalogue: ${JSON.stringify(bad)}`);
  if (other) {
    // Left over: a string that is not one of `lang`'s own, but is some key's wording in
    // `other` and not that key's wording in `lang` (one both word alike, "{n} GiB", is not).
    const mine = catalogues[lang];
    const own = new Set(Object.values(mine));
    const left = strings.filter((s) =>
      !own.has(s) &&
      Object.entries(catalogues[other]).some(([key, value]) => matches(value, s) && !matches(mine[key] ?? "", s)),
    );
    check(left.length === 0, `${where}: ${other} strings left after switching to ${lang}: ${JSON.stringify(left)}`);
  }
  return strings.length;
}

/** Switches `page` to `lang` with the top bar's select and waits until it shows it. */
async function switchLanguage(page, lang) {
  await page.locator(".top .lang select").selectOption(lang, { force: true });
  // Its sign-out button says so once the page has re-rendered.
  await page.waitForFunction((text) => [...document.querySelectorAll(".top button")].some((b) => b.textContent.trim() === text),
    catalogues[lang].signout);
}

/** Every visible string of `page` from the catalogues, in English and then in Chinese (and back). */
export async function checkBothLanguages(page, where) {
  await checkStrings(page, "en", null, `${where} (en)`);
  await switchLanguage(page, "zh-CN");
  await checkStrings(page, "zh-CN", "en", `${where} (zh-CN)`);
  await switchLanguage(page, "en");
}

/** No console error, page error or CSP violation happened on the page. */
export function checkNoErrors(errors, where) {
  check(errors.length === 0, `${where}: ${errors.join("; ")}`);
}

/** Waits until `f()` (in node) answers truthy, up to `ms`. */
export async function eventually(what, f, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const axeSource = readFileSync(join(here, "../node_modules/axe-core/axe.min.js"), "utf8");

/**
 * axe-core on the page as it is now (run it with every part of the screen shown: dialogs
 * open, lists filled): fails on any serious or critical violation, naming the rule and the
 * elements. Evaluated through the driver, so the page's CSP stays as served.
 * @param {import("playwright-core").Page} page
 * @param {string} where
 */
export async function checkA11y(page, where) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // @ts-ignore axe is the script evaluated above
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")} [${n.failureSummary?.replace(/\s+/g, " ")}]`).join(", ")}`);
  });
  check(violations.length === 0, `${where}: accessibility violations: ${violations.join("; ")}`);
}
