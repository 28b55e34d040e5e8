// The host detail screen: open a host from the list and see every field the API gives, lock
// it there and see an API unlock arrive from the change feed; the 14 monitoring charts drawn,
// for a range switched in the URL; the instances on it searched; a GPU sliced by type and
// restored, a refused restore naming the instance holding its vGPU; a USB device assigned and
// released on a real libvirt host (when the Rust test could start one); each checked against
// the API, with axe-core and the catalogues in English and Chinese, at 1280×800 and 390×844.
import { api, check, checkA11y, checkNoErrors, checkStrings, env, eventually, launch, openPage, shot, signIn } from "./lib.mjs";

const id = env.hostId;
check(id, "CONSOLE_HOST_ID names the GPU host");
const holder = process.env.CONSOLE_GPU_HOLDER || "";
check(holder, "CONSOLE_GPU_HOLDER names the instance holding the L4's vGPU");
const usbHost = process.env.CONSOLE_USB_HOST || "";
const usbInstance = process.env.CONSOLE_USB_INSTANCE || "";
const P40 = "0000:41:00.0";
const L4 = "0000:81:00.0";
const TABS = ["info", "monitoring", "instances", "usb", "gpus"];

/** The refusals this script asks for; Chromium logs their answers as failed loads. */
const expected = (e) => e.includes("409") && e.includes(`/gpus/${encodeURIComponent(L4)}/restore`);

/** @param {import("playwright-core").Page} page @param {string} tab */
async function openTab(page, tab) {
  await page.locator(`[role=tab][data-tab="${tab}"]`).click();
  await page.locator(`[role=tabpanel][data-panel="${tab}"]`).waitFor();
  if (tab === "monitoring") await page.locator(".hd-monitoring[data-loading='0'] figure[data-series]").first().waitFor();
  if (tab === "instances") await page.locator("[data-instance]").first().waitFor();
  if (tab === "usb") await page.locator("[data-usb]").first().waitFor();
  if (tab === "gpus") await page.locator("[data-gpu]").first().waitFor();
}

const browser = await launch();
try {
  const { page, errors } = await openPage(browser);
  await signIn(page, env.adminToken);

  // From the list: the host ID is a link to its page.
  await page.locator('nav a[href="#/hosts"]').click();
  await page.locator(`[data-host-id="${id}"] a[data-testid=host-link]`).click();
  await page.locator(`.host-detail[data-host="${id}"]`).waitFor();
  check(page.url().endsWith(`#/hosts/${id}`), `the URL is the host's: ${page.url()}`);
  await page.locator('.live[data-live="live"]').waitFor();

  // Info: every field of GET /v1/hosts/{id}.
  const { body: host } = await api("GET", `/v1/hosts/${id}`);
  await page.locator("[data-testid=hd-devices]", { hasText: "2 (0 assigned)" }).waitFor();
  const facts = await page.locator(".hd-info").innerText();
  for (const want of [host.id, host.hostname, host.ip, host.cluster_id, host.cpu_model, String(host.total_cores),
    String(host.allocated_cores), host.agent_version, host.hypervisor, host.libvirt_uri, host.agent_api,
    `${host.allocated_cores} / ${host.total_cores}`, "Available", "Online"]) {
    check(want && facts.includes(want), `the info shows ${JSON.stringify(want)}`);
  }
  check(host.domains.length > 0, "the agent reported domains");
  for (const d of host.domains) {
    const row = page.locator(`[data-domain="${d.name}"]`);
    check((await row.getAttribute("data-unknown")) === (host.unknown_domains.includes(d.name) ? "1" : "0"),
      `domain ${d.name} is marked as the API says`);
  }
  if (host.unknown_domains.length) {
    await page.locator("[data-testid=hd-unknown]", { hasText: `${host.unknown_domains.length} unknown domain(s)` }).waitFor();
  }
  check(await page.locator(`a[href="#/maintenance/${id}"]`).isVisible(), "a link to the host's maintenance");
  await checkA11y(page, "host info");
  await checkStrings(page, "en", null, "host info (en)");
  await shot(page, "host-detail-info");

  // Lock here; an unlock through the API arrives from the change feed.
  await page.locator('.hd-info [data-action="lock"]').click();
  await page.locator("[data-confirm]").waitFor();
  await checkA11y(page, "host info with a confirmation");
  await page.locator("[data-confirm]").click();
  await page.locator(`.host-detail[data-state="locked"]`).waitFor();
  check((await api("GET", `/v1/hosts/${id}`)).body.state === "locked", "the API says locked");
  check((await page.getByTestId("hd-state").textContent()) === "Locked", "the page says Locked");
  const unlocked = await api("POST", `/v1/hosts/${id}/unlock`);
  check(unlocked.status === 200, `unlock through the API: ${unlocked.status}`);
  await page.locator(`.host-detail[data-state="available"]`).waitFor({ timeout: 15000 });
  await page.locator('.hd-info [data-action="lock"]').waitFor();

  // Monitoring: the 14 series, each drawn; the range in the URL, read again when switched.
  await openTab(page, "monitoring");
  check(page.url().includes("tab=monitoring"), `the tab is in the URL: ${page.url()}`);
  const { body: metrics } = await api("GET", `/v1/hosts/${id}/metrics`);
  check(metrics.series.length === 14, `the API serves 14 series: ${metrics.series.length}`);
  await eventually("14 charts", async () => (await page.locator("figure[data-series]").count()) === 14);
  for (const s of metrics.series) check(await page.locator(`figure[data-series="${s.name}"]`).count() === 1, `a chart of ${s.name}`);
  // The ring fills every second: a chart for every series with points, its canvas drawn.
  await eventually("every chart drawn", async () =>
    (await page.locator("figure[data-series] canvas").count()) >= 12, 20000);
  const drawn = await page.evaluate(() => [...document.querySelectorAll("figure[data-series] canvas")]
    .filter((c) => /** @type {HTMLCanvasElement} */ (c).width > 100).length);
  check(drawn >= 12, `charts are drawn: ${drawn}`);
  await checkA11y(page, "monitoring");
  await checkStrings(page, "en", null, "monitoring (en)");
  await shot(page, "host-detail-monitoring");
  const sixHours = page.waitForResponse((r) => r.url().includes(`/v1/hosts/${id}/metrics?since=6h`) && r.status() === 200);
  await page.locator('.hd-ranges button[data-range="6h"]').click();
  await sixHours;
  await page.locator('.hd-monitoring[data-range="6h"][data-loading="0"]').waitFor();
  check(page.url().includes("range=6h"), `the range is in the URL: ${page.url()}`);
  check((await page.locator('.hd-ranges button[data-range="6h"]').getAttribute("aria-pressed")) === "true", "6 hours is pressed");
  await eventually("charts drawn for 6 hours", async () => (await page.locator("figure[data-series] canvas").count()) >= 12);
  await page.reload();
  await page.locator('.hd-monitoring[data-range="6h"][data-loading="0"]').waitFor();
  await page.locator("figure[data-series] canvas").first().waitFor();

  // Instances: the seed's fields, a fuzzy search in the URL.
  await openTab(page, "instances");
  const { body: listed } = await api("GET", `/v1/hosts/${id}/instances?limit=1000`);
  check(listed.total === 3, `three instances on the host: ${listed.total}`);
  await eventually("every instance shown", async () => (await page.locator("[data-instance]").count()) === listed.total);
  const web = listed.items.find((i) => i.name === "hd-web-1");
  const rowText = await page.locator(`[data-instance="${web.id}"]`).innerText();
  for (const want of [web.name, web.id, web.resource_id, web.tenant_email, web.host_ip, web.image_id, String(web.vcpus), "Running"]) {
    check(want && rowText.includes(want), `the instance row shows ${JSON.stringify(want)}: ${rowText}`);
  }
  const gpuRow = await page.locator(`[data-instance="${holder}"]`).innerText();
  check(gpuRow.includes("NVIDIA L4-6Q"), `the GPU instance shows its GPU: ${gpuRow}`);
  await page.locator(".hd-instances input[type=search]").fill("hdweb");
  await eventually("the search to leave one", async () => (await page.locator("[data-instance]").count()) === 1);
  check(await page.locator(`[data-instance="${web.id}"]`).isVisible(), "the fuzzy search finds hd-web-1");
  check(page.url().includes("q=hdweb"), `the search is in the URL: ${page.url()}`);
  await page.reload();
  await page.locator(`[data-instance="${web.id}"]`).waitFor();
  check((await page.locator("[data-instance]").count()) === 1, "the search survives a reload");
  await page.locator(".hd-instances input[type=search]").fill("zzzz-none");
  await page.locator(".hd-instances .empty").waitFor();
  await checkA11y(page, "instances");
  await checkStrings(page, "en", null, "instances (en)");
  await page.locator(".hd-instances input[type=search]").fill("");
  await shot(page, "host-detail-instances");

  // USB: the fixture's devices, the API's fields.
  await openTab(page, "usb");
  const { body: usb } = await api("GET", `/v1/hosts/${id}/usb`);
  for (const d of usb.items) {
    const text = await page.locator(`[data-usb="${d.id}"]`).innerText();
    for (const want of [d.name, d.id, d.vendor, d.type, d.usb_version, "Free"]) check(text.includes(want), `USB ${d.id} shows ${want}`);
  }
  await checkA11y(page, "usb");
  await checkStrings(page, "en", null, "usb (en)");

  // GPUs: slice the P40 by a type, showing how many fit; its vGPUs listed; restore it.
  await openTab(page, "gpus");
  const gpuAt = (address) => api("GET", `/v1/hosts/${id}/gpus`).then((r) => r.body.items.find((g) => g.address === address));
  const p40 = await gpuAt(P40);
  const t46 = p40.vgpu_types.find((x) => x.id === "nvidia-46");
  check(await page.locator(`[data-gpu="${P40}"] [data-vgpu-type="nvidia-46"]`).innerText() === `${t46.name}: ${t46.available} fit`, "the P40 says how many fit");
  await page.locator(`[data-gpu="${P40}"] [data-action="slice"]`).click();
  const dialog = page.getByTestId("gpu-slice");
  await dialog.waitFor();
  await dialog.locator("select").selectOption("nvidia-46");
  check((await dialog.getByTestId("gpu-fit").innerText()).includes(`${t46.available} more vGPUs`), "the dialog says how many fit");
  await dialog.locator("input[type=number]").fill("2");
  await checkA11y(page, "slice dialog");
  await checkStrings(page, "en", null, "slice dialog (en)");
  await shot(page, "host-detail-slice");
  await dialog.getByTestId("gpu-slice-submit").click();
  await dialog.waitFor({ state: "detached" });
  await eventually("two vGPUs of the P40 listed", async () => (await page.locator(`[data-vgpu][data-parent="${P40}"]`).count()) === 2);
  const { body: vgpus } = await api("GET", `/v1/hosts/${id}/vgpus`);
  const made = vgpus.items.filter((v) => v.parent === P40);
  check(made.length === 2 && made.every((v) => v.type_id === "nvidia-46" && v.state === "free"), `the API lists two nvidia-46 vGPUs: ${JSON.stringify(made)}`);
  const sliced = await gpuAt(P40);
  check(sliced.state === "sliced", `the API says the P40 is sliced: ${sliced.state}`);
  await page.locator(`[data-gpu="${P40}"][data-state="sliced"]`).waitFor();
  const left = sliced.vgpu_types.find((x) => x.id === "nvidia-46").available;
  check(left === t46.available - 2, `two fewer fit: ${left}`);
  check(await page.locator(`[data-gpu="${P40}"] [data-vgpu-type="nvidia-46"]`).innerText() === `${t46.name}: ${left} fit`, "the page says two fewer fit");
  await checkA11y(page, "gpus sliced");
  await shot(page, "host-detail-gpus");

  await page.locator(`[data-gpu="${P40}"] [data-action="restore"]`).click();
  await page.getByTestId("gpu-restored").waitFor();
  await page.locator(`[data-gpu="${P40}"][data-state="free"]`).waitFor();
  check((await page.locator(`[data-vgpu][data-parent="${P40}"]`).count()) === 0, "no vGPU of the P40 listed");
  check((await gpuAt(P40)).state === "free", "the API says the P40 is free");
  check((await api("GET", `/v1/hosts/${id}/vgpus`)).body.items.every((v) => v.parent !== P40), "the API lists no vGPU of the P40");

  // The L4's vGPU is attached: its restore is refused, naming the instance that holds it.
  await page.locator(`[data-gpu="${L4}"] [data-action="restore"]`).click();
  const refused = page.getByTestId("gpu-refused");
  await refused.waitFor();
  check((await refused.getAttribute("data-address")) === L4, "the refusal is the L4's");
  await refused.locator(`[data-holder="${holder}"]`).waitFor();
  check((await refused.innerText()).includes(holder), "the refusal names the holder");
  const l4 = await gpuAt(L4);
  check(l4.state === "sliced", `the API says the L4 is still sliced: ${l4.state}`);
  const held = (await api("GET", `/v1/hosts/${id}/vgpus`)).body.items.filter((v) => v.parent === L4);
  check(held.length === 1 && held[0].instance_id === holder, `the API says ${holder} still holds the L4's vGPU`);
  await checkA11y(page, "gpus with a refused restore");
  await checkStrings(page, "en", null, "gpus (en)");
  await shot(page, "host-detail-restore-refused");

  // USB assign and release on the real libvirt host.
  if (usbHost) {
    await page.goto(`${env.url}/#/hosts/${usbHost}?tab=usb`);
    await page.locator(`.host-detail[data-host="${usbHost}"] [data-usb="1-2"][data-state="free"]`).waitFor();
    await page.locator('[data-usb="1-2"] [data-action="assign"]').click();
    const assign = page.getByTestId("usb-assign");
    await assign.waitFor();
    await assign.locator(`option[value="${usbInstance}"]`).waitFor({ state: "attached" });
    await assign.locator("select").selectOption(usbInstance);
    await checkA11y(page, "usb assign dialog");
    await checkStrings(page, "en", null, "usb assign dialog (en)");
    await shot(page, "host-detail-usb-assign");
    await assign.getByTestId("usb-assign-submit").click();
    await assign.waitFor({ state: "detached", timeout: 30000 });
    await page.locator(`[data-usb="1-2"][data-state="assigned"]`).waitFor();
    check((await page.locator('[data-usb="1-2"]').innerText()).includes(usbInstance), "the row names the instance");
    const one = (await api("GET", `/v1/hosts/${usbHost}/usb`)).body.items.find((d) => d.id === "1-2");
    check(one.state === "assigned" && one.instance_id === usbInstance, `the API says 1-2 is assigned to ${usbInstance}: ${JSON.stringify(one)}`);
    check((await api("GET", `/v1/instances/${usbInstance}`)).body.devices.includes("usb:1-2"), "the instance lists the device");
    await checkA11y(page, "usb assigned");
    await shot(page, "host-detail-usb");
    await page.locator('[data-usb="1-2"] [data-action="release"]').click();
    await page.locator(`[data-usb="1-2"][data-state="free"]`).waitFor({ timeout: 30000 });
    const freed = (await api("GET", `/v1/hosts/${usbHost}/usb`)).body.items.find((d) => d.id === "1-2");
    check(freed.state === "free" && !freed.instance_id, `the API says 1-2 is free: ${JSON.stringify(freed)}`);
    check((await api("GET", `/v1/instances/${usbInstance}`)).body.devices.length === 0, "the instance lists no device");
  } else {
    console.log("host_detail: USB assign and release SKIPPED (no real libvirt host)");
  }
  checkNoErrors(errors.filter((e) => !expected(e)), "en page");

  // Chinese: every tab's strings from the zh-CN catalogue.
  const zh = await openPage(browser, { locale: "zh-CN" });
  await signIn(zh.page, env.adminToken);
  await zh.page.goto(`${env.url}/#/hosts/${id}`);
  await zh.page.locator(`.host-detail[data-host="${id}"]`).waitFor();
  await zh.page.locator("[data-testid=hd-devices]", { hasText: "2 个" }).waitFor();
  for (const tab of TABS) {
    await openTab(zh.page, tab);
    if (tab === "monitoring") await zh.page.locator("figure[data-series] canvas").first().waitFor();
    await checkStrings(zh.page, "zh-CN", "en", `${tab} (zh-CN)`);
  }
  await zh.page.locator(`[data-gpu="${L4}"] [data-action="restore"]`).click();
  await zh.page.getByTestId("gpu-refused").waitFor();
  await checkStrings(zh.page, "zh-CN", "en", "refused restore (zh-CN)");
  await zh.page.locator(`[data-gpu="${P40}"] [data-action="slice"]`).click();
  await zh.page.getByTestId("gpu-slice").waitFor();
  await checkStrings(zh.page, "zh-CN", "en", "slice dialog (zh-CN)");
  await shot(zh.page, "host-detail-gpus-zh-CN");
  await zh.page.keyboard.press("Escape");
  await openTab(zh.page, "info");
  await shot(zh.page, "host-detail-info-zh-CN");
  checkNoErrors(zh.errors.filter((e) => !expected(e)), "zh-CN page");

  // A phone: the info and the charts fit 390 px.
  const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, locale: "en-US" });
  const p = await phone.newPage();
  await signIn(p, env.adminToken);
  await p.goto(`${env.url}/#/hosts/${id}`);
  await p.locator(`.host-detail[data-host="${id}"]`).waitFor();
  await checkA11y(p, "host info (phone)");
  await shot(p, "host-detail-phone");
  await p.goto(`${env.url}/#/hosts/${id}?tab=monitoring`);
  await p.locator("figure[data-series] canvas").first().waitFor();
  const wide = await p.evaluate(() => Math.max(...[...document.querySelectorAll("figure[data-series]")].map((f) => f.getBoundingClientRect().right)));
  check(wide <= 390, `the charts fit the phone's width: ${wide}`);
  await shot(p, "host-detail-monitoring-phone");
} finally {
  await browser.close();
}
console.log("host_detail: ok");
