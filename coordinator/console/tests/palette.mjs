// The command palette and `/`: Ctrl-K opens it over any screen, a host's id typed fuzzily finds
// that host, the arrow keys move the choice, Enter goes to the host's page, Escape closes;
// `/` puts the focus in the screen's search box (not while typing in a field); a tenant's
// palette holds no host; at phone width the navigation is behind a menu button that works.
import { api, check, checkA11y, checkNoErrors, checkStrings, env, launch, openPage, shot, signIn } from "./lib.mjs";

const id = env.hostId;
check(id, "CONSOLE_HOST_ID names the region's host");
const { body: host } = await api("GET", `/v1/hosts/${id}`);
const { body: hosts } = await api("GET", "/v1/hosts?limit=1000");
check(hosts.total >= 2, "the region has another host besides");

const dialog = (page) => page.getByTestId("palette");
const input = (page) => dialog(page).getByRole("combobox");

const browser = await launch();
try {
  // Admin, English.
  const { page, errors } = await openPage(browser);
  await signIn(page, env.adminToken);
  await page.locator('nav a[href="#/hosts"]').click();
  await page.locator(`[data-host-id="${id}"]`).waitFor();

  // `/` focuses the hosts search; typed there, `/` is text.
  await page.locator("main h1").click();
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement?.matches("main input.search")), "`/` focused the hosts search");
  await page.keyboard.type("a/b");
  check((await page.locator("main input.search").inputValue()) === "a/b", "a `/` typed in the search box is text");
  await page.locator("main input.search").fill("");

  // Ctrl-K from inside the search box opens the palette, focus in its query box.
  await page.keyboard.press("Control+k");
  await dialog(page).waitFor();
  check(await page.evaluate(() => document.activeElement?.getAttribute("role") === "combobox"), "the query box has the focus");
  await page.getByTestId("palette-status").filter({ hasText: "Type to search" }).waitFor();
  await checkStrings(page, "en", null, "palette, empty (en)");

  // A scattered subsequence of the host's id finds it; the combobox points at the option.
  const fuzzy = [...id.replace("host-", "")].filter((_, i) => i % 2 === 0).join("");
  await input(page).fill(fuzzy);
  const option = page.locator(`[role="option"][data-kind="host"][data-id="${id}"]`);
  await option.waitFor();
  check((await option.innerText()).includes(host.hostname), "the option shows the host's name");
  check(await option.getAttribute("aria-selected") === "true", "the best match is the active option");
  check((await input(page).getAttribute("aria-expanded")) === "true", "the combobox says its list is open");
  check((await input(page).getAttribute("aria-activedescendant")) === await option.getAttribute("id"), "aria-activedescendant names the active option");
  await checkA11y(page, "palette with results");
  await checkStrings(page, "en", null, "palette with results (en)");

  // Arrow keys move through every host (a query both ids match), wrapping around.
  await input(page).fill("host-");
  await page.locator('[role="option"][data-kind="host"]').nth(hosts.total - 1).waitFor();
  const options = page.locator('[role="option"]');
  const n = await options.count();
  check(n >= hosts.total, `every host is offered (${n})`);
  await page.keyboard.press("ArrowDown");
  check(await options.nth(1).getAttribute("aria-selected") === "true", "ArrowDown chose the second option");
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("ArrowUp");
  check(await options.nth(n - 1).getAttribute("aria-selected") === "true", "ArrowUp from the first wraps to the last");
  await shot(page, "palette");

  // Enter goes to the chosen host's page.
  await input(page).fill(fuzzy);
  await option.waitFor();
  await page.keyboard.press("Enter");
  await dialog(page).waitFor({ state: "detached" });
  check(new URL(page.url()).hash === `#/hosts/${id}`, `Enter went to the host's page: ${page.url()}`);

  // Escape closes it, from any screen, and the focus goes back.
  await page.locator('nav a[href="#/hosts"]').click();
  await page.locator(`[data-host-id="${id}"]`).waitFor();
  await page.keyboard.press("Control+k");
  await dialog(page).waitFor();
  await input(page).fill("zzzz-no-such-thing");
  await page.getByTestId("palette-status").filter({ hasText: "Nothing matches." }).waitFor();
  await page.keyboard.press("Escape");
  await dialog(page).waitFor({ state: "detached" });
  check(new URL(page.url()).hash.startsWith("#/hosts"), "Escape stayed on the screen");

  // In Chinese, every string is.
  await page.locator(".top .lang select").selectOption("zh-CN");
  await page.getByRole("heading", { name: "宿主机" }).waitFor();
  await page.keyboard.press("Control+k");
  await dialog(page).waitFor();
  await checkStrings(page, "zh-CN", "en", "palette, empty (zh-CN)");
  await input(page).fill(fuzzy);
  await option.waitFor();
  await checkStrings(page, "zh-CN", "en", "palette with results (zh-CN)");
  await checkA11y(page, "palette (zh-CN)");
  await shot(page, "palette-zh-CN");
  await page.keyboard.press("Escape");
  await dialog(page).waitFor({ state: "detached" });
  await page.locator(".top .lang select").selectOption("en");
  checkNoErrors(errors, "admin page");

  // A tenant: its palette reads only what a tenant may list (no hosts, no refused call).
  if (env.tenantToken) {
    const tp = await openPage(browser);
    await signIn(tp.page, env.tenantToken);
    await tp.page.keyboard.press("Meta+k");
    await dialog(tp.page).waitFor();
    await input(tp.page).fill(fuzzy);
    await tp.page.getByTestId("palette-status").filter({ hasText: "Nothing matches." }).waitFor();
    check((await tp.page.locator('[role="option"][data-kind="host"]').count()) === 0, "a tenant is offered no host");
    await checkA11y(tp.page, "tenant palette");
    await tp.page.keyboard.press("Escape");
    checkNoErrors(tp.errors, "tenant page");
  }

  // Phone width: the navigation is behind the menu button, which opens and closes it.
  const phone = await openPage(browser);
  await phone.page.setViewportSize({ width: 390, height: 844 });
  await signIn(phone.page, env.adminToken);
  const menu = phone.page.locator(".menu-button");
  const hostsLink = phone.page.locator('nav a[href="#/hosts"]');
  check(await menu.isVisible(), "the menu button shows at phone width");
  check(!(await hostsLink.isVisible()), "the navigation is folded away");
  check((await menu.getAttribute("aria-expanded")) === "false", "the menu says it is closed");
  await menu.click();
  await hostsLink.waitFor();
  check((await menu.getAttribute("aria-expanded")) === "true", "the menu says it is open");
  await checkA11y(phone.page, "phone menu open");
  await checkStrings(phone.page, "en", null, "phone menu open (en)");
  await shot(phone.page, "phone-menu");
  await hostsLink.click();
  await phone.page.locator(`[data-host-id="${id}"]`).waitFor();
  check(!(await hostsLink.isVisible()), "going somewhere folds the menu again");
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `the page does not scroll sideways at 390 px (${overflow} px too wide)`);
  // The top bar's search button opens the palette (no Ctrl-K on a phone).
  await phone.page.locator(".palette-button").click();
  await dialog(phone.page).waitFor();
  await input(phone.page).fill(fuzzy);
  await phone.page.locator(`[role="option"][data-id="${id}"]`).click();
  await phone.page.waitForURL((u) => u.hash === `#/hosts/${id}`);
  await phone.page.locator('nav a[href="#/hosts"]').waitFor({ state: "hidden" });
  await menu.click();
  await hostsLink.click();
  await phone.page.locator(`[data-host-id="${id}"]`).waitFor();
  await checkA11y(phone.page, "hosts at phone width");
  await shot(phone.page, "hosts-phone");
  checkNoErrors(phone.errors, "phone page");

  // Desktop: the menu button is not there, the navigation is.
  check(!(await page.locator(".menu-button").isVisible()), "no menu button at 1280 px");
  check(!(await page.locator(".palette-button").isVisible()), "no search button at 1280 px (Ctrl-K)");
  check(await page.locator('nav a[href="#/hosts"]').isVisible(), "the navigation shows at 1280 px");
} finally {
  await browser.close();
}
console.log("palette: ok");
