// The Administration screen and the operations drawer: create a cluster, a tenant with a
// quota, a tenant's API token (its secret shown once, and it works), an enrollment token (its
// command shown; admin.rs enrolls a host with it); the audit log shows those actions and
// filters them; the drawer shows a drain's operation appear and end without a reload. Every
// step checked against the API.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { api, check, checkA11y, checkBothLanguages, checkNoErrors, env, launch, openPage, shot, signIn } from "./lib.mjs";

const mark = process.env.CONSOLE_MARK;
check(mark && env.hostId, "admin.rs passes CONSOLE_MARK and CONSOLE_HOST_ID");
const email = "quota-1@example.com";

const browser = await launch();
try {
  const { page, errors } = await openPage(browser);
  await signIn(page, env.adminToken);
  await page.locator('nav a[href="#/admin"]').click();
  await page.locator('[data-tab-panel="tenants"]').waitFor();
  const tab = async (id) => {
    await page.locator(`[role="tab"][data-tab="${id}"]`).click();
    await page.locator(`[data-tab-panel="${id}"]`).waitFor();
    check(id === "tenants" || page.url().includes(`tab=${id}`), `the tab is in the URL: ${page.url()}`);
  };

  // A cluster.
  await tab("clusters");
  await page.locator('[data-cluster-id="az1"]').waitFor();
  await page.getByTestId("cluster-add").click();
  const cf = page.getByTestId("cluster-form");
  await cf.locator('[data-field="id"] input').fill("Edge 1");
  await cf.locator('button[type="submit"]').click();
  await cf.locator('[data-field="id"] .field-error').waitFor();
  await checkA11y(page, "cluster form with the API's error");
  await checkBothLanguages(page, "cluster form with the API's error");
  await cf.locator('[data-field="id"] input').fill("edge-1");
  await cf.locator('[data-field="description"] input').fill("the edge site");
  await cf.locator('button[type="submit"]').click();
  await cf.waitFor({ state: "detached" });
  await page.locator('[data-cluster-id="edge-1"]').waitFor();
  const clusters = (await api("GET", "/v1/clusters")).body.items;
  check(clusters.some((c) => c.id === "edge-1" && c.description === "the edge site"), `the cluster: ${JSON.stringify(clusters)}`);
  await checkBothLanguages(page, "clusters");

  // A tenant with a quota.
  await tab("tenants");
  await page.getByTestId("tenant-add").click();
  const tf = page.getByTestId("tenant-form");
  await tf.locator('[data-field="email"] input').fill(email);
  await tf.locator('[data-field="name"] input').fill("Quota one");
  await tf.locator('[data-field="cores"] input').fill("16");
  await tf.locator('[data-field="memory_bytes"] input').fill("64");
  await tf.locator('[data-field="instances"] input').fill("x");
  await tf.locator('button[type="submit"]').click();
  await tf.locator('[data-field="instances"] .field-error').waitFor();
  check((await api("GET", "/v1/tenants")).body.items.every((x) => x.email !== email), "a bad quota creates no tenant");
  await checkA11y(page, "tenant form with an error");
  await checkBothLanguages(page, "tenant form with an error");
  await tf.locator('[data-field="instances"] input').fill("5");
  await tf.locator('button[type="submit"]').click();
  await tf.waitFor({ state: "detached" });
  const row = page.locator(`[data-email="${email}"]`);
  await row.locator('[data-quota="cores"]').getByText("0 / 16").waitFor();
  const tenant = (await api("GET", "/v1/tenants")).body.items.find((x) => x.email === email);
  check(tenant && tenant.name === "Quota one", `the tenant: ${JSON.stringify(tenant)}`);
  const quota = (await api("GET", `/v1/tenants/${tenant.id}/quota`)).body.quota;
  check(quota.cores === 16 && quota.memory_bytes === 64 * 2 ** 30 && quota.instances === 5, `the quota: ${JSON.stringify(quota)}`);
  check((await row.innerText()).includes("0 / 64 GiB"), "the memory quota in GiB");
  await checkA11y(page, "tenants");
  await checkBothLanguages(page, "tenants");
  await shot(page, "admin-tenants");

  // A tenant's API token: the secret once, with a copy button; it signs in as the tenant.
  await tab("tokens");
  await page.getByTestId("token-add").click();
  const kf = page.getByTestId("token-form");
  await kf.locator('[data-field="name"] input').fill("ci");
  await kf.locator('[data-field="tenant_id"] select').selectOption(tenant.id);
  await kf.locator('[data-field="ttl"] input').fill("30d");
  await checkA11y(page, "token form");
  await checkBothLanguages(page, "token form");
  await kf.locator('button[type="submit"]').click();
  await kf.waitFor({ state: "detached" });
  const secretBox = page.getByTestId("token-secret");
  const secret = await secretBox.locator("input").inputValue();
  check(/^tok-/.test(secret), `the secret: ${secret}`);
  check(await secretBox.locator("[data-copy]").isVisible(), "a copy button beside the secret");
  const me = await api("GET", `/v1/tenants/${tenant.id}`, secret);
  check(me.status === 200 && me.body.id === tenant.id, `the secret acts as the tenant: ${JSON.stringify(me)}`);
  const tokens = (await api("GET", "/v1/tokens")).body.items;
  const made = tokens.find((x) => x.name === "ci");
  check(made && made.role === "tenant" && made.tenant_id === tenant.id && made.expires_at && !("secret" in made), `the token: ${JSON.stringify(made)}`);
  await page.locator(`[data-token-id="${made.id}"]`).waitFor();
  await checkA11y(page, "tokens with a new secret");
  await checkBothLanguages(page, "tokens with a new secret");
  await shot(page, "admin-token-once");
  await secretBox.getByRole("button", { name: "Done" }).click();
  await secretBox.waitFor({ state: "detached" });
  check(!(await page.content()).includes(secret), "the secret is gone from the page");
  await page.reload();
  await page.locator(`[data-token-id="${made.id}"]`).waitFor();
  check(!(await page.content()).includes(secret), "and is not shown again");

  // An enrollment token with the agent's command for the new cluster.
  await tab("enrollment");
  const ef = page.getByTestId("enrollment-form");
  await ef.locator('[data-field="description"] input').fill("rack 7");
  await ef.locator('[data-field="cluster"] select').selectOption("edge-1");
  await checkA11y(page, "enrollment form");
  await ef.locator('button[type="submit"]').click();
  const made2 = page.getByTestId("enrollment-token");
  await made2.waitFor();
  const command = (await made2.getByTestId("enroll-command").textContent()).trim();
  const token = (await made2.getByTestId("enroll-token").textContent()).trim();
  check(command.startsWith(`plinth-agent enroll --coordinator ${env.url} --token ${token} --ca-hash sha256:`)
    && command.endsWith("--cluster edge-1"), `the command: ${command}`);
  check(await made2.locator("[data-copy]").isVisible(), "a copy button beside the command");
  writeFileSync(join(mark, "enroll-command"), command);
  await checkA11y(page, "enrollment token shown");
  await checkBothLanguages(page, "enrollment token shown");
  await shot(page, "admin-enrollment");

  // The audit log: the actions above, filtered by action (in the URL).
  await tab("audit");
  for (const [action, target] of [["create cluster", "edge-1"], ["create tenant", tenant.id], ["set quota", tenant.id], ["create token", made.id]]) {
    await page.locator(`tr[data-action="${action}"][data-target="${target}"]`).waitFor();
  }
  const audit = (await api("GET", "/v1/audit?limit=1000")).body.items;
  for (const action of ["create cluster", "create tenant", "set quota", "create token"]) {
    check(audit.some((e) => e.action === action), `the API's audit has ${action}`);
  }
  await page.locator('[data-filter="action"]').selectOption("set quota");
  check(page.url().includes("action=set+quota") || page.url().includes("action=set%20quota"), `the filter is in the URL: ${page.url()}`);
  check((await page.locator("tbody tr").count()) === audit.filter((e) => e.action === "set quota").length, "only set quota rows");
  await page.reload();
  await page.locator('tr[data-action="set quota"]').first().waitFor();
  check((await page.locator('[data-filter="action"]').inputValue()) === "set quota", "the filter is restored from the URL");
  await checkA11y(page, "audit log filtered");
  await checkBothLanguages(page, "audit log filtered");
  await shot(page, "admin-audit");

  // The operations drawer: a drain of the empty host appears and ends while it is open.
  await page.locator('.live[data-live="live"]').waitFor();
  await page.getByTestId("operations-button").click();
  const drawer = page.getByTestId("operations-drawer");
  await drawer.waitFor();
  for (const action of ["lock", "maintenance/enter"]) {
    const r = await api("POST", `/v1/hosts/${env.hostId}/${action}`, env.adminToken, {});
    check(r.status === 200 || r.status === 202, `${action}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const drains = (await api("GET", `/v1/operations?kind=host_drain&resource=${env.hostId}`)).body.items;
  check(drains.length === 1, `one drain: ${JSON.stringify(drains)}`);
  const op = drawer.locator(`[data-op-id="${drains[0].id}"]`);
  await op.waitFor({ timeout: 15000 });
  await drawer.locator(`[data-op-id="${drains[0].id}"][data-status="succeeded"]`).waitFor({ timeout: 30000 });
  check((await op.innerText()).includes("Enter maintenance (drain)"), "the drain's kind");
  check((await op.getByTestId("op-progress").textContent()).length > 0, "its progress");
  await op.getByRole("button", { name: "Show steps" }).click();
  await op.getByText("drain ended: every instance left the host").waitFor();
  const ended = (await api("GET", `/v1/operations/${drains[0].id}`)).body;
  check(ended.status === "succeeded", `the API's drain: ${JSON.stringify(ended)}`);
  await checkA11y(page, "operations drawer");
  await checkBothLanguages(page, "operations drawer");
  await shot(page, "operations-drawer");

  // A phone-width screen: the drawer over the page.
  await page.setViewportSize({ width: 390, height: 844 });
  await checkA11y(page, "operations drawer at phone width");
  await shot(page, "operations-drawer-phone");
  await drawer.getByRole("button", { name: "Close" }).click();
  await drawer.waitFor({ state: "detached" });
  await tab("operations");
  await page.locator(`[data-op-id="${drains[0].id}"]`).waitFor();
  await shot(page, "admin-operations-phone");

  // The cluster id the API refused (400) is logged by Chromium as a failed load.
  checkNoErrors(errors.filter((e) => !(e.includes("400") && e.includes("/v1/clusters"))), "admin page");
} finally {
  await browser.close();
}
console.log("admin: ok");
