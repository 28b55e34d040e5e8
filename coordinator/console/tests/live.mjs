// The live indicator: "Live" while the change feed streams; when the coordinator goes away,
// "Stale since HH:MM:SS"; when it is back, the page reconnects by itself (resuming with
// Last-Event-ID) and a change made meanwhile reaches the row without a reload.
// tests/console.rs restarts the coordinator once this script writes $CONSOLE_MARK/live.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { api, check, env, eventually, launch, openPage, shot, signIn } from "./lib.mjs";

const id = env.hostId;
const mark = process.env.CONSOLE_MARK;
check(mark, "CONSOLE_MARK names where to tell the test the page is live");

const browser = await launch();
try {
  const { page } = await openPage(browser);
  await signIn(page, env.adminToken);
  await page.locator('nav a[href="#/hosts"]').click();
  await page.locator(`[data-host-id="${id}"][data-state="available"]`).waitFor();
  await page.locator('.live[data-live="live"]').waitFor();
  // The page sees events before the drop, so it resumes after the last one it saw.
  for (const [action, state] of [["lock", "locked"], ["unlock", "available"]]) {
    check((await api("POST", `/v1/hosts/${id}/${action}`)).status === 200, `${action} through the API`);
    await page.locator(`[data-host-id="${id}"][data-state="${state}"]`).waitFor({ timeout: 30000 });
  }
  writeFileSync(join(mark, "live"), "");

  // Read in the same look that finds it stale: a quick restart may end the stale spell before
  // a second look.
  const staleText = await page.waitForFunction(
    () => document.querySelector('.live[data-live="stale"]')?.textContent,
    null,
    { timeout: 60000 },
  );
  const text = await staleText.jsonValue();
  check(/^Stale since \d\d:\d\d:\d\d$/.test(text || ""), `the indicator says since when: ${text}`);
  await shot(page, "live-stale");

  // Back up: a change made through the API reaches the open page, which reconnected itself.
  await eventually("the coordinator to answer again", async () => {
    try {
      return (await api("POST", `/v1/hosts/${id}/lock`)).status === 200;
    } catch {
      return false;
    }
  }, 60000);
  await page.locator('.live[data-live="live"]').waitFor({ timeout: 60000 });
  await page.locator(`[data-host-id="${id}"][data-state="locked"]`).waitFor({ timeout: 30000 });
  check((await api("POST", `/v1/hosts/${id}/unlock`)).status === 200, "unlocked again");
  await page.locator(`[data-host-id="${id}"][data-state="available"]`).waitFor({ timeout: 30000 });
  // The dropped stream's failed loads are what this test provokes; no error is checked here.
} finally {
  await browser.close();
}
console.log("live: ok");
