// The Bare metal screen against ipmi_sim BMCs: add a server through the UI (a refused try
// clears the password, which no answer ever carries), force it off with the typed
// confirmation and see ipmitool agree, power it on, read the simulator's serial output in
// the xterm console and type into it, release it; the detail view (with its sensors);
// update rack and label;
// a CSV with a bad row imports nothing, a good one imports every row; batch remove; a tenant
// sees only its own servers. Every outcome is checked through the API.
import { execFileSync } from "node:child_process";
import { api, check, checkA11y, checkNoErrors, checkStrings, env, eventually, launch, openPage, shot, signIn } from "./lib.mjs";

const need = (name) => {
  const v = process.env[name];
  check(v, `${name} is set (tests/console/baremetal.rs)`);
  return v;
};
const tenantEmail = need("BM_TENANT_EMAIL");
const secret = need("BM_SECRET");
const otherToken = need("BM_OTHER_TOKEN");
const otherServer = need("BM_OTHER_SERVER");
const [uiIp, csvIp1, csvIp2, otherIp] = need("BM_SIMS").split(",");

/** ipmitool's view of a simulator's chassis power: "on" or "off". */
function ipmiPower(ip) {
  const out = execFileSync("ipmitool", ["-I", "lanplus", "-C", "3", "-H", ip, "-U", "admin", "-P", secret, "chassis", "power", "status"], { encoding: "utf8" });
  const m = /Chassis Power is (on|off)/.exec(out);
  check(m, `ipmitool answers the power: ${out}`);
  return m[1];
}

const servers = async (token = env.adminToken) => (await api("GET", "/v1/baremetal?limit=1000", token)).body.items;

/** Records every API answer's body a page receives, to look for the password in. */
function recordAnswers(page) {
  const bodies = [];
  page.on("response", async (r) => {
    if (!new URL(r.url()).pathname.startsWith("/v1/")) return;
    try {
      bodies.push(await r.text());
    } catch {
      // A body the browser did not keep (a redirect, the event stream).
    }
  });
  return bodies;
}

const browser = await launch();
try {
  const admin = await openPage(browser);
  const page = admin.page;
  const answers = recordAnswers(page);
  await signIn(page, env.adminToken);
  await page.locator('nav a[href="#/baremetal"]').click();
  await page.getByRole("heading", { name: "Bare metal" }).waitFor();
  await page.locator(`[data-baremetal-id="${otherServer}"]`).waitFor();
  await page.locator('.live[data-live="live"]').waitFor();

  // Add: a wrong address is refused beside its field and the password is gone; then added.
  await page.locator('[data-open="add"]').click();
  const add = page.getByTestId("bm-add");
  await add.getByLabel("Tenant email").fill(tenantEmail);
  await add.getByLabel("Name").fill("bm-ui");
  await add.getByLabel("IPMI IP").fill("not-an-address");
  await add.getByLabel("IPMI user").fill("admin");
  await add.getByLabel("IPMI password").fill(secret);
  await add.getByLabel("Rack location").fill("R7-U12");
  await add.getByLabel("Label").fill("db");
  check((await add.getByLabel("IPMI password").getAttribute("type")) === "password", "the password is masked");
  await checkA11y(page, "add dialog");
  await checkStrings(page, "en", null, "add dialog");
  await add.locator("button[type=submit]").click();
  await add.locator('[data-field="ipmi_ip"] .field-error').waitFor();
  check((await add.getByLabel("IPMI password").inputValue()) === "", "a refused try clears the password");
  await add.getByLabel("IPMI IP").fill(uiIp);
  await add.getByLabel("IPMI password").fill(secret);
  await add.locator("button[type=submit]").click();
  await add.waitFor({ state: "detached" });
  const added = (await servers()).find((s) => s.name === "bm-ui");
  check(added && added.ipmi_ip === uiIp && added.tenant_email === tenantEmail && added.rack_location === "R7-U12" && added.label === "db",
    `the API has the server as entered: ${JSON.stringify(added)}`);
  const id = added.id;
  const row = page.locator(`[data-baremetal-id="${id}"]`);
  await row.and(page.locator('[data-state="running"]')).waitFor({ timeout: 60000 });
  const text = await row.innerText();
  const now = (await api("GET", `/v1/baremetal/${id}`)).body;
  // The simulator starts powered off.
  check(ipmiPower(uiIp) === "off" && now.power_state === "off", `the simulator starts off: ${now.power_state}`);
  for (const want of ["bm-ui", id, "Running", now.sn || "", uiIp, tenantEmail, now.model || "", "R7-U12", "Off", "Inactive"]) {
    check(text.includes(want), `the row shows ${JSON.stringify(want)}: ${JSON.stringify(text)}`);
  }
  await checkA11y(page, "list");
  await checkStrings(page, "en", null, "list");

  // Power on: a plain confirmation.
  await row.locator("[data-power-menu] summary").click();
  await row.locator('[data-power="on"]').click();
  await page.getByTestId("power-confirm").locator("[data-confirm]").click();
  await page.locator('[data-power-status="succeeded"][data-power-action="on"]').waitFor({ timeout: 60000 });
  await row.and(page.locator('[data-power="on"]')).waitFor({ timeout: 30000 });
  check(ipmiPower(uiIp) === "on", "ipmitool says on");

  // Force off: typed confirmation (the button waits for the name), then ipmitool agrees.
  await row.locator("[data-power-menu] summary").click();
  await row.locator('[data-power="force_off"]').click();
  const typed = page.getByTestId("typed-confirm");
  await typed.waitFor();
  check(await typed.locator("button[type=submit]").isDisabled(), "force off waits for the typed name");
  await typed.locator('input[name="confirm"]').fill("bm-u");
  check(await typed.locator("button[type=submit]").isDisabled(), "a wrong name does not confirm");
  await checkA11y(page, "force off confirmation");
  await checkStrings(page, "en", null, "force off confirmation");
  await shot(page, "baremetal-force-off");
  await typed.locator('input[name="confirm"]').fill("bm-ui");
  await typed.locator("button[type=submit]").click();
  await page.locator('[data-power-status="succeeded"][data-power-action="force_off"]').waitFor({ timeout: 60000 });
  await row.and(page.locator('[data-power="off"]')).waitFor({ timeout: 30000 });
  check(ipmiPower(uiIp) === "off", "ipmitool says off");
  check((await api("GET", `/v1/baremetal/${id}`)).body.power_state === "off", "the API says off");
  await checkStrings(page, "en", null, "power result");

  // The serial console: the simulator's output in the xterm, keys back, released on close.
  await row.locator('[data-action="console"]').click();
  const consoleDialog = page.getByTestId("bm-console");
  await consoleDialog.locator('[data-console-phase="connected"]').waitFor({ timeout: 30000 });
  const terminal = consoleDialog.getByTestId("terminal");
  await eventually("the simulator's output in the terminal", async () =>
    /login:|tick/.test(await terminal.locator(".xterm-rows").innerText()), 30000);
  check((await api("GET", `/v1/baremetal/${id}`)).body.console_state === "active", "the API says the console is active");
  await terminal.click();
  await page.keyboard.type("root");
  await page.keyboard.press("Enter");
  // The simulator echoes each chunk it reads as [echo:KEYS]; a CR in the echo sends the
  // cursor back to the line's start, so the check is on the first key's echo.
  await eventually("the simulator's echo of the keys", async () =>
    (await terminal.locator(".xterm-rows").innerText()).match(/echo:R/), 30000)
    .catch(async (e) => {
      await shot(page, "baremetal-console-failed");
      throw new Error(`${e.message}: the terminal shows ${JSON.stringify(await terminal.locator(".xterm-rows").innerText())}`);
    });
  check(await page.evaluate(() => !!document.querySelector("link[data-xterm-css]")), "xterm's stylesheet was linked on demand");
  const color = await terminal.locator(".xterm-rows").evaluate((el) => getComputedStyle(el).color);
  check(color !== "rgb(0, 0, 0)", `xterm's theme applies under the CSP (text colour ${color})`);
  await checkA11y(page, "serial console");
  await checkStrings(page, "en", null, "serial console");
  await shot(page, "baremetal-console");
  await consoleDialog.getByRole("button", { name: "Release console" }).click();
  await consoleDialog.waitFor({ state: "detached" });
  await eventually("the console to be released", async () => (await api("GET", `/v1/baremetal/${id}`)).body.console_state === "inactive", 30000);

  // The detail view: basic information, the hardware (recorded Redfish answers: two CPUs,
  // one memory module, a NIC), power history; update rack and label.
  const inventory = await eventually("the hardware inventory to be read", async () => {
    const inv = (await api("GET", `/v1/baremetal/${id}`)).body.inventory;
    return inv.source === "redfish" && inv;
  }, 60000);
  await row.getByRole("link", { name: "bm-ui" }).click();
  const detail = page.locator(`[data-baremetal-detail="${id}"]`);
  await detail.waitFor();
  const basic = await detail.getByTestId("bm-basic").innerText();
  for (const want of [id, "bm-ui", uiIp, now.sn || "—", "Off"]) check(basic.includes(want), `the detail shows ${want}: ${basic}`);
  const cpus = detail.getByTestId("bm-cpus").locator("tbody tr");
  check((await cpus.count()) === inventory.cpus.length && inventory.cpus.length === 2, "a row per CPU");
  const cpu = inventory.cpus[0];
  const cpuText = await cpus.first().innerText();
  for (const want of [cpu.model, cpu.cores, cpu.rated_power_watts, cpu.l1_cache_kb, cpu.l2_cache_kb, cpu.l3_cache_kb]) {
    check(cpuText.includes(String(want)), `the CPU row shows ${want}: ${cpuText}`);
  }
  const dimm = await detail.getByTestId("bm-memory").locator("tbody").innerText();
  const m = inventory.memory[0];
  for (const want of [m.vendor, m.serial, m.capacity_gb, m.speed_mhz]) check(dimm.includes(String(want)), `the memory shows ${want}: ${dimm}`);
  const pcie = await detail.getByTestId("bm-pcie").locator("tbody").innerText();
  check(pcie.includes(inventory.pcie_devices[0].model), `the PCIe devices show the NIC: ${pcie}`);
  await detail.locator('[data-testid="bm-history"] tr[data-power="off"]').first().waitFor({ timeout: 15000 });
  // Hardware monitoring (the health sweep runs every second here): the simulator's one
  // temperature sensor, healthy.
  const sensor = detail.locator('[data-testid="bm-sensors"] tr[data-sensor="MB Temp"]');
  await sensor.waitFor({ timeout: 30000 });
  const sensorText = await sensor.innerText();
  check(sensorText.includes("42 °C") && sensorText.includes("OK"), `the sensor row shows its reading: ${sensorText}`);
  const health = await detail.getByTestId("bm-health").innerText();
  check(health.includes("OK"), `the health summary is OK: ${health}`);
  await checkA11y(page, "detail");
  await checkStrings(page, "en", null, "detail");
  await shot(page, "baremetal-detail");
  await detail.locator('[data-action="update"]').click();
  const upd = page.getByTestId("bm-update");
  await upd.getByLabel("Rack location").fill("R9-U1");
  await upd.getByLabel("Label").fill("web");
  await checkA11y(page, "update dialog");
  await upd.locator("button[type=submit]").click();
  await upd.waitFor({ state: "detached" });
  await detail.locator('[data-field="rack"]', { hasText: "R9-U1" }).waitFor();
  const updated = (await api("GET", `/v1/baremetal/${id}`)).body;
  check(updated.rack_location === "R9-U1" && updated.label === "web", `the API has the update: ${JSON.stringify(updated)}`);
  await detail.getByRole("link", { name: "All bare-metal servers" }).click();
  await row.locator('[data-col="rack"]', { hasText: "R9-U1" }).waitFor();

  // CSV import: a file with a bad row imports nothing, each row's problems shown; then a good one.
  const header = "Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label";
  const bad = `${header}\ncsv-1,${csvIp1},admin,${secret},R1-U1,a\ncsv-bad,not-an-ip,admin,${secret},R1-U2,\ncsv-2,${csvIp2},admin,${secret},R1-U3,b\n`;
  const good = `${header}\ncsv-1,${csvIp1},admin,${secret},R1-U1,a\ncsv-2,${csvIp2},admin,${secret},R1-U3,b\n`;
  const before = (await servers()).length;
  await page.locator('[data-open="import"]').click();
  const imp = page.getByTestId("bm-import");
  await imp.getByLabel("Tenant email").fill(tenantEmail);
  await imp.locator('input[type="file"]').setInputFiles({ name: "bad.csv", mimeType: "text/csv", buffer: Buffer.from(bad) });
  const preview = imp.getByTestId("import-preview");
  await preview.waitFor();
  check((await preview.locator("tbody tr").count()) === 3, "every row is previewed");
  check(!(await preview.innerText()).includes(secret), "the preview does not show the passwords");
  await imp.getByRole("button", { name: "Import 3 servers" }).click();
  await imp.getByTestId("import-refused").waitFor();
  await preview.locator('tr[data-line="3"][data-bad="1"]').waitFor();
  check((await preview.locator('tr[data-bad="1"]').count()) === 1, "only the bad row is marked");
  check((await servers()).length === before, "the API has nothing imported");
  await checkA11y(page, "import refused");
  await checkStrings(page, "en", null, "import refused");
  await shot(page, "baremetal-import-refused");
  await imp.locator('input[type="file"]').setInputFiles({ name: "good.csv", mimeType: "text/csv", buffer: Buffer.from(good) });
  await imp.getByRole("button", { name: "Import 2 servers" }).click();
  await imp.getByTestId("import-done").waitFor();
  await imp.getByRole("button", { name: "Close" }).last().click();
  const imported = (await servers()).filter((s) => s.name.startsWith("csv-"));
  check(imported.length === 2 && imported.every((s) => s.tenant_email === tenantEmail), `the API has both rows: ${JSON.stringify(imported)}`);
  for (const s of imported) await page.locator(`[data-baremetal-id="${s.id}"]`).waitFor();

  // Batch remove: both imported servers, typed confirmation, a result each, gone from the API.
  for (const s of imported) await page.locator(`[data-baremetal-id="${s.id}"] input[type="checkbox"]`).check();
  check((await page.getByTestId("bm-selected").textContent()) === "2 selected", "two selected");
  await page.locator('[data-batch="remove"]').click();
  await typed.waitFor();
  await typed.locator('input[name="confirm"]').fill("remove");
  await checkA11y(page, "batch remove confirmation");
  await typed.locator("button[type=submit]").click();
  await page.locator('[data-testid="bm-removed"] [data-ok="1"]').nth(1).waitFor();
  for (const s of imported) {
    check((await api("GET", `/v1/baremetal/${s.id}`)).status === 404, `the API no longer has ${s.id}`);
    check((await page.locator(`[data-baremetal-id="${s.id}"]`).count()) === 0, `the list dropped ${s.id}`);
  }
  await checkStrings(page, "en", null, "batch removed");
  await shot(page, "baremetal");

  // A tenant (in Chinese) sees only its own server, and adds without naming a tenant.
  const tenant = await openPage(browser, { locale: "zh-CN" });
  await signIn(tenant.page, env.tenantToken);
  await tenant.page.locator('nav a[href="#/baremetal"]').click();
  await tenant.page.locator(`[data-baremetal-id="${id}"]`).waitFor();
  const mine = (await servers(env.tenantToken)).map((s) => s.id).sort();
  const rows = await tenant.page.locator("[data-baremetal-id]").evaluateAll((els) => els.map((e) => e.getAttribute("data-baremetal-id")).sort());
  check(JSON.stringify(rows) === JSON.stringify(mine) && !rows.includes(otherServer), `tenant A sees only its own: ${rows}`);
  await tenant.page.locator('[data-open="add"]').click();
  check((await tenant.page.getByTestId("bm-add").getByLabel("租户邮箱").count()) === 0, "a tenant names no tenant");
  await checkStrings(tenant.page, "zh-CN", "en", "add dialog (zh-CN)");
  await checkA11y(tenant.page, "add dialog (tenant)");
  await tenant.page.getByTestId("bm-add").getByRole("button", { name: "取消" }).click();
  await checkStrings(tenant.page, "zh-CN", "en", "list (zh-CN)");
  await shot(tenant.page, "baremetal-tenant-zh-CN");
  await tenant.page.locator(`[data-baremetal-id="${id}"] [data-power-menu] summary`).click();
  await tenant.page.locator(`[data-baremetal-id="${id}"] [data-power="cycle"]`).click();
  await tenant.page.getByTestId("typed-confirm").waitFor();
  await checkStrings(tenant.page, "zh-CN", "en", "power cycle confirmation (zh-CN)");
  await tenant.page.getByTestId("typed-confirm").getByRole("button", { name: "取消" }).click();
  await tenant.page.locator(`[data-baremetal-id="${id}"]`).getByRole("link").click();
  await tenant.page.locator(`[data-baremetal-detail="${id}"]`).waitFor();
  await checkStrings(tenant.page, "zh-CN", "en", "detail (zh-CN)");
  await shot(tenant.page, "baremetal-detail-zh-CN");
  await tenant.page.goto(`${env.url}/#/baremetal/${otherServer}`);
  await tenant.page.getByText("物理机不存在。").waitFor();

  // Tenant B: only B's; the phone-width list.
  const other = await openPage(browser);
  await other.page.setViewportSize({ width: 390, height: 844 });
  await signIn(other.page, otherToken);
  // At phone width the navigation is behind the menu button.
  await other.page.locator(".menu-button").click();
  await other.page.locator('nav a[href="#/baremetal"]').click();
  await other.page.locator(`[data-baremetal-id="${otherServer}"]`).waitFor();
  check((await other.page.locator("[data-baremetal-id]").count()) === 1, "tenant B sees one server, its own");
  await checkA11y(other.page, "list (phone)");
  await shot(other.page, "baremetal-phone");

  // Closing the tab with a console open releases it (the page's pagehide sends the release).
  const closer = await openPage(browser);
  await signIn(closer.page, env.tenantToken);
  await closer.page.goto(`${env.url}/#/baremetal/${id}`);
  await closer.page.locator(`[data-baremetal-detail="${id}"] [data-action="console"]`).click();
  await closer.page.locator('[data-console-phase="connected"]').waitFor({ timeout: 30000 });
  check((await api("GET", `/v1/baremetal/${id}`)).body.console_state === "active", "the tenant's console is active");
  checkNoErrors(closer.errors, "the page whose tab closes");
  await closer.page.close({ runBeforeUnload: true });
  await eventually("the closed tab's console to be released", async () =>
    (await api("GET", `/v1/baremetal/${id}`)).body.console_state === "inactive", 30000);

  check(!answers.some((b) => b.includes(secret)), "no answer the admin's page received carries the password");
  // The refused add's 400 and the refused import's 400 were asked for; Chromium logs them.
  const asked = (e) => e.includes("400") && (e.endsWith("/v1/baremetal)") || e.includes("/v1/baremetal/import"));
  checkNoErrors(admin.errors.filter((e) => !asked(e)), "admin page");
  // The other tenant's server is not found for tenant A (404), by design.
  checkNoErrors(tenant.errors.filter((e) => !(e.includes("404") && e.includes(otherServer))), "tenant page");
  checkNoErrors(other.errors, "tenant B page");
} finally {
  await browser.close();
}
console.log("baremetal: ok");
