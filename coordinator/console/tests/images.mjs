// The Images screen: import from a local HTTP server and watch bytes, rate and ETA until
// available; upload a file; edit name, tags and visibility; filters and search in the URL;
// the download link copied and fetched; copy to base; a refused delete naming the instance
// that uses the image; delete → recycle bin → restore, and destroy; a tenant sees its own
// and the shared images only. Every outcome checked through the API.
import { api, check, checkA11y, checkNoErrors, checkStrings, env, eventually, launch, openPage, shot, signIn } from "./lib.mjs";

const need = (name) => {
  const v = process.env[name];
  check(v, `${name} is set (tests/console/images.rs)`);
  return v;
};
const importUrl = need("CONSOLE_IMAGE_URL");
const uploadFile = need("CONSOLE_UPLOAD_FILE");
const inUse = need("CONSOLE_IN_USE_IMAGE");
const instanceId = need("CONSOLE_INSTANCE_ID");
const bPrivate = need("CONSOLE_B_PRIVATE");
const bPublic = need("CONSOLE_B_PUBLIC");
check(env.tenantToken && env.tenantId, "the tenant's token and id are set");

/** The one image named `name` (admin's view), once the API has it. */
async function imageNamed(name) {
  return eventually(`image ${name} in the API`, async () => {
    const { body } = await api("GET", `/v1/images?q=${encodeURIComponent(name)}`);
    return body.items.find((i) => i.name === name);
  }, 15000);
}

/** Errors a page logs by design: a refused delete (409) and re-reads of binned images (404). */
const expected = (e) => (e.includes("409") && e.includes(`/v1/images/${inUse}`)) ||
  (e.includes("404") && e.includes("/v1/images/"));

const browser = await launch();
try {
  const { context, page, errors } = await openPage(browser);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env.url });
  await signIn(page, env.adminToken);
  await page.locator('nav a[href="#/images"]').click();
  await page.getByTestId("images-table").waitFor();
  await page.locator(`[data-image-id="${inUse}"]`).waitFor();
  await page.locator('.live[data-live="live"]').waitFor();
  await checkA11y(page, "images (admin)");
  await checkStrings(page, "en", null, "images (en)");
  const row = (id) => page.locator(`tr[data-image-id="${id}"]`);
  // The admin sees every tenant's images, with the owner's email.
  for (const id of [inUse, bPrivate, bPublic]) await row(id).waitFor();
  check((await row(bPrivate).innerText()).includes("images-b@example.com"), "the owner's email is shown");

  // Import from the local HTTP server: the row shows bytes, rate and ETA from the operation's
  // events while it imports, then Available.
  await page.locator('[data-open="import"]').click();
  const dlg = page.getByTestId("import-dialog");
  await dlg.locator('[name="url"]').fill(importUrl);
  await dlg.locator('[name="name"]').fill("web-import");
  await dlg.locator('[name="tenant_id"]').selectOption(env.tenantId);
  await dlg.locator('[name="tags"]').fill("web, prod");
  await checkA11y(page, "import dialog");
  await checkStrings(page, "en", null, "import dialog (en)");
  await dlg.locator("[data-submit]").click();
  await dlg.waitFor({ state: "detached" });
  const imported = await imageNamed("web-import");
  const importRow = row(imported.id);
  await importRow.locator('[data-testid="progress"]').waitFor();
  await importRow.locator('[data-part="rate"]').waitFor({ timeout: 15000 });
  await importRow.locator('[data-part="eta"]').waitFor();
  const seen = Number(await importRow.locator('[data-testid="progress"]').getAttribute("data-bytes"));
  const total = Number(await importRow.locator('[data-testid="progress"]').getAttribute("data-total"));
  check(total > 0 && seen > 0 && seen < total, `progress part way: ${seen} of ${total}`);
  const text = await importRow.locator(".progress-text").innerText();
  check(/MiB of .*MiB/.test(text) && /\/s/.test(text) && /left/.test(text), `bytes, rate and ETA: ${JSON.stringify(text)}`);
  await checkStrings(page, "en", null, "an import in progress (en)");
  await shot(page, "images-import-progress");
  await page.locator(`tr[data-image-id="${imported.id}"][data-status="available"]`).waitFor({ timeout: 60000 });
  check((await importRow.locator('[data-testid="progress"]').count()) === 0, "the bar goes when it is available");
  const { body: importedNow } = await api("GET", `/v1/images/${imported.id}`);
  check(importedNow.status === "available" && importedNow.format === "qcow2", `the API: ${JSON.stringify(importedNow)}`);
  check(importedNow.owner_tenant_id === env.tenantId, "imported for the tenant chosen");
  check(JSON.stringify(importedNow.tags) === JSON.stringify(["prod", "web"]), `tags: ${importedNow.tags}`);
  const { body: op } = await api("GET", `/v1/operations/${importedNow.operation_id || imported.operation_id}`);
  check(op.status === "succeeded" && op.progress_bytes === op.total_bytes, `the operation: ${JSON.stringify(op)}`);

  // Upload a local file: the dialog streams it with its progress; the row is Available.
  await page.locator('[data-open="upload"]').click();
  const up = page.getByTestId("upload-dialog");
  await up.locator('input[type="file"]').setInputFiles(uploadFile);
  check((await up.locator('[name="name"]').inputValue()) === "upload", "the name comes from the file");
  await up.locator('[name="name"]').fill("uploaded");
  await up.locator('[name="tenant_id"]').selectOption(env.tenantId);
  await checkA11y(page, "upload dialog");
  // The browser's upload slowed down (DevTools' network emulation) so its progress is seen.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 768 * 1024 });
  await up.locator("[data-submit]").click();
  await up.locator('[data-testid="progress"] [data-part="rate"]').waitFor({ timeout: 15000 });
  const upText = await up.locator(".progress-text").innerText();
  check(/of .*MiB/.test(upText) && /\/s/.test(upText), `the upload's bytes and rate: ${JSON.stringify(upText)}`);
  await checkStrings(page, "en", null, "an upload in progress (en)");
  await shot(page, "images-upload-progress");
  await up.waitFor({ state: "detached", timeout: 60000 });
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const uploaded = await imageNamed("uploaded");
  await page.locator(`tr[data-image-id="${uploaded.id}"][data-status="available"]`).waitFor();
  check(uploaded.status === "available" && uploaded.size_bytes > 2 * 2 ** 20, `uploaded: ${JSON.stringify(uploaded)}`);

  // Edit name, tags and visibility.
  await row(uploaded.id).locator('[data-action="edit"]').click();
  const ed = page.getByTestId("edit-dialog");
  await ed.locator('[name="name"]').fill("uploaded-renamed");
  await ed.locator('[name="note"]').fill("from the browser");
  await ed.locator('[name="tags"]').fill("db, backup");
  await ed.locator('[name="visibility"]').selectOption("public");
  await checkA11y(page, "edit dialog");
  await ed.locator("[data-submit]").click();
  await ed.waitFor({ state: "detached" });
  await page.locator(`tr[data-image-id="${uploaded.id}"][data-visibility="public"]`).waitFor();
  check((await row(uploaded.id).innerText()).includes("uploaded-renamed"), "the row shows the new name");
  const { body: edited } = await api("GET", `/v1/images/${uploaded.id}`);
  check(edited.name === "uploaded-renamed" && edited.note === "from the browser" && edited.visibility === "public" &&
    JSON.stringify(edited.tags) === JSON.stringify(["backup", "db"]), `edited: ${JSON.stringify(edited)}`);

  // Filters live in the URL: a tag chip, the quick search, a column filter, a tab, visibility.
  await row(uploaded.id).locator('[data-tag="db"]').click();
  await eventually("only the tagged image", async () => (await page.locator("tr.image-row").count()) === 1);
  check(page.url().includes("tag=db"), `the tag is in the URL: ${page.url()}`);
  await page.reload();
  await row(uploaded.id).waitFor();
  check((await page.locator("tr.image-row").count()) === 1, "the tag filter survives a reload");
  check((await page.locator('select[data-filter="tag"]').inputValue()) === "db", "the tag select shows it");
  await page.locator("[data-clear]").click();
  await row(inUse).waitFor();
  await page.locator("#images-q").fill("web-imp");
  await eventually("the quick search", async () => (await page.locator("tr.image-row").count()) === 1);
  check(page.url().includes("q=web-imp"), `the search is in the URL: ${page.url()}`);
  await importRow.waitFor();
  await page.locator('select[data-filter="status"]').selectOption("import_failed");
  await page.locator(".empty").waitFor();
  check(page.url().includes("status=import_failed"), "the column filter is in the URL");
  await page.locator("[data-clear]").click();
  await page.locator('input[data-filter="name"]').fill("b-p");
  await eventually("the name filter", async () => (await page.locator("tr.image-row").count()) === 2);
  await page.locator('[data-filter="vis"] input[value="public"]').check({ force: true });
  await eventually("public only", async () => (await page.locator("tr.image-row").count()) === 1);
  await row(bPublic).waitFor();
  check(page.url().includes("vis=public") && page.url().includes("name=b-p"), `in the URL: ${page.url()}`);
  await page.locator('[data-tab="iso"]').click();
  await page.locator(".empty").waitFor();
  check(page.url().includes("tab=iso"), "the tab is in the URL");
  await page.locator("[data-clear]").click();
  await page.locator('[data-tab="all"]').click();
  await row(inUse).waitFor();

  // The download link: its expiry, copied with the button, fetched without a token.
  await importRow.locator('[data-action="download"]').click();
  const dl = page.getByTestId("download-dialog");
  const urlBox = dl.getByTestId("download-url");
  await urlBox.waitFor();
  const link = await urlBox.inputValue();
  check(link.includes("/v1/image-downloads/"), `a signed link: ${link}`);
  check((await dl.getByTestId("download-expires").innerText()).startsWith("Valid until"), "the expiry is shown");
  await dl.locator("[data-copy]").click();
  await dl.locator("[data-copy]", { hasText: "Copied" }).waitFor();
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  check(clip === link, `the clipboard holds the link: ${clip}`);
  await checkA11y(page, "download dialog");
  await checkStrings(page, "en", null, "download dialog (en)");
  const got = await fetch(link);
  const content = Buffer.from(await got.arrayBuffer());
  check(got.status === 200 && content.length === importedNow.size_bytes, `the link serves the image: ${got.status} ${content.length}`);
  await dl.getByRole("button", { name: "Close" }).click();

  // Copy to base: a base image that is Making, then Available, on the Base tab.
  await importRow.locator('[data-action="copy"]').click();
  const cp = page.getByTestId("copy-dialog");
  await cp.locator('[name="name"]').fill("golden-web");
  await cp.locator("[data-submit]").click();
  await cp.waitFor({ state: "detached" });
  await page.locator('[data-tab="base"]').click();
  const golden = await imageNamed("golden-web");
  await page.locator(`tr[data-image-id="${golden.id}"][data-status="available"]`).waitFor({ timeout: 60000 });
  const { body: goldenNow } = await api("GET", `/v1/images/${golden.id}`);
  check(goldenNow.kind === "base" && goldenNow.status === "available" && !goldenNow.owner_tenant_id, `base: ${JSON.stringify(goldenNow)}`);
  await page.locator('[data-tab="all"]').click();

  // A delete refused: the instance that boots from the image is named, with a link.
  await row(inUse).locator('[data-action="delete"]').click();
  const del = page.getByTestId("delete-dialog");
  await del.locator("[data-confirm]").click();
  await del.locator(`[data-testid="in-use"] [data-instance-id="${instanceId}"]`).waitFor();
  check((await del.getByTestId("delete-error").innerText()).includes(instanceId), "the refusal names the instance");
  check((await del.locator(`[data-instance-id="${instanceId}"] a`).innerText()) === "web-1", "the instance's name links to it");
  await checkA11y(page, "a refused delete");
  await checkStrings(page, "en", null, "a refused delete (en)");
  await shot(page, "images-delete-refused");
  await del.getByRole("button", { name: "Cancel" }).click();
  check((await api("GET", `/v1/images/${inUse}`)).body.status === "available", "the image in use stays");

  // Delete → recycle bin → restore; delete again → destroy with a typed confirmation.
  const deleteRow = async (id) => {
    await row(id).locator('[data-action="delete"]').click();
    await page.getByTestId("delete-dialog").locator("[data-confirm]").click();
    await row(id).waitFor({ state: "detached" });
  };
  await deleteRow(uploaded.id);
  check((await api("GET", `/v1/images/${uploaded.id}`)).status === 404, "deleted images leave the list");
  check((await api("GET", "/v1/recycle-bin")).body.items.some((i) => i.id === uploaded.id), "it is in the bin");
  await page.locator('[data-tab="bin"]').click();
  const binRow = page.locator(`tr[data-bin-id="${uploaded.id}"]`);
  await binRow.waitFor();
  await checkA11y(page, "recycle bin");
  await checkStrings(page, "en", null, "recycle bin (en)");
  await shot(page, "images-recycle-bin");
  await binRow.locator('[data-action="restore"]').click();
  await binRow.waitFor({ state: "detached" });
  const { status: back, body: restored } = await api("GET", `/v1/images/${uploaded.id}`);
  check(back === 200 && restored.status === "available", `restored: ${back} ${JSON.stringify(restored)}`);
  await page.locator('[data-tab="all"]').click();
  await row(uploaded.id).waitFor();
  await deleteRow(uploaded.id);
  await page.locator('[data-tab="bin"]').click();
  await binRow.locator('[data-action="destroy"]').click();
  const typed = page.getByTestId("typed-confirm");
  const confirmBtn = typed.locator('button[type="submit"]');
  check(await confirmBtn.isDisabled(), "destroy waits for the typed id");
  await typed.locator('[name="confirm"]').fill(uploaded.id);
  await checkA11y(page, "destroy confirmation");
  await confirmBtn.click();
  await binRow.waitFor({ state: "detached" });
  check(!(await api("GET", "/v1/recycle-bin")).body.items.some((i) => i.id === uploaded.id), "destroyed: not in the bin");
  check((await api("GET", `/v1/images/${uploaded.id}`)).status === 404, "destroyed: gone");

  // In Chinese: every string of the list, the bin, a dialog.
  await page.locator('[data-tab="all"]').click();
  await row(inUse).waitFor();
  await page.locator(".top .lang select").selectOption("zh-CN");
  await page.getByRole("heading", { name: "镜像", exact: true }).waitFor();
  await checkStrings(page, "zh-CN", "en", "images (zh-CN)");
  await shot(page, "images-zh-CN");
  await page.locator('[data-open="import"]').click();
  await checkStrings(page, "zh-CN", "en", "import dialog (zh-CN)");
  await page.getByTestId("import-dialog").getByRole("button", { name: "取消" }).click();
  await page.locator('[data-tab="bin"]').click();
  await page.getByTestId("recycle-bin").waitFor();
  await checkStrings(page, "zh-CN", "en", "recycle bin (zh-CN)");
  await page.locator('[data-tab="all"]').click();
  await page.locator(".top .lang select").selectOption("en");
  await row(inUse).waitFor();
  await shot(page, "images-admin");

  // A phone-width screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await row(inUse).waitFor();
  await checkA11y(page, "images at 390x844");
  await shot(page, "images-phone");
  checkNoErrors(errors.filter((e) => !expected(e)), "admin page");

  // A tenant: its own images and the shared ones, never another tenant's private image.
  const tp = await openPage(browser);
  await signIn(tp.page, env.tenantToken);
  await tp.page.locator('nav a[href="#/images"]').click();
  await tp.page.getByTestId("images-table").waitFor();
  check(await tp.page.locator('[data-filter="vis"] input[value="featured"]').isChecked(), "a tenant opens on featured");
  await tp.page.locator(".empty").waitFor();
  await tp.page.locator('[data-filter="vis"] input[value="all"]').check({ force: true });
  await tp.page.locator(`tr[data-image-id="${inUse}"]`).waitFor();
  const { body: mine } = await api("GET", "/v1/images?limit=1000", env.tenantToken);
  const want = mine.items.map((i) => i.id).sort();
  const shownIds = (await tp.page.locator("tr.image-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-image-id")))).sort();
  check(JSON.stringify(shownIds) === JSON.stringify(want), `the tenant sees what the API gives it: ${shownIds} vs ${want}`);
  for (const id of [inUse, imported.id, golden.id, bPublic]) check(shownIds.includes(id), `the tenant sees ${id}`);
  check(!shownIds.includes(bPrivate), "the tenant never sees another tenant's private image");
  check(tp.page.url().includes("vis=all"), `"all" is in the URL: ${tp.page.url()}`);
  // Another tenant's public image can be seen but not changed; its own can.
  check((await tp.page.locator(`tr[data-image-id="${bPublic}"] [data-action="edit"]`).count()) === 0, "no edit of another's image");
  check((await tp.page.locator(`tr[data-image-id="${inUse}"] [data-action="edit"]`).count()) === 1, "its own can be edited");
  await checkA11y(tp.page, "images (tenant)");
  await checkStrings(tp.page, "en", null, "images (tenant, en)");
  await shot(tp.page, "images-tenant");
  checkNoErrors(tp.errors.filter((e) => !expected(e)), "tenant page");
  console.log("images: import, upload, edit, filters, download link, copy to base, refused delete, bin, tenant view");
} finally {
  await browser.close();
}
