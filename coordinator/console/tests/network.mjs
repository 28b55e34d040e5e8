// The External network screen: a segment with a gateway outside its CIDR is refused by the
// form (the error under the gateway field), one in a reserved range by the API (its error
// under the CIDR field), and neither is created; the right one is created with the seed's
// fields, then restricted to tenant A by email. Tenant A allocates an EIP from it, binds it to
// its instance, unbinds and releases it, while the admin's page follows the segment's usage
// live. Every step checked against the API.
import { api, check, checkA11y, checkBothLanguages, checkNoErrors, env, eventually, launch, openPage, shot, signIn } from "./lib.mjs";

const tenantEmail = process.env.CONSOLE_TENANT_EMAIL;
const instanceId = process.env.CONSOLE_INSTANCE_ID;
check(env.tenantToken && tenantEmail && instanceId, "network.rs passes the tenant, its email and its instance");

const segments = async () => (await api("GET", "/v1/segments")).body;

const browser = await launch();
try {
  check((await segments()).total === 0, "the region starts with no segment");
  const admin = await openPage(browser);
  const a = admin.page;
  await signIn(a, env.adminToken);
  await a.locator('nav a[href="#/network"]').click();
  await a.getByTestId("segment-count").waitFor();
  await a.locator('.live[data-live="live"]').waitFor();
  await a.locator(".net-segments .empty").waitFor();
  await checkA11y(a, "network, no segment");
  await checkBothLanguages(a, "network, no segment");

  // The form's own check: a gateway outside the CIDR, shown under the gateway field; nothing sent.
  await a.getByTestId("segment-add").click();
  const form = a.getByTestId("segment-form");
  await form.waitFor();
  const field = (name) => form.locator(`[data-field="${name}"]`);
  await field("name").locator("input").fill("public-1");
  await field("cidr").locator("input").fill("203.0.113.0/24");
  await field("gateway").locator("input").fill("198.51.100.1");
  await field("nic").locator("input").fill("bond1");
  await field("vlan").locator("input").fill("100");
  await form.locator('button[type="submit"]').click();
  const gwError = field("gateway").locator(".field-error");
  await gwError.waitFor();
  check((await gwError.textContent()) === "198.51.100.1 is outside 203.0.113.0/24.", `the gateway's error: ${await gwError.textContent()}`);
  check(await field("gateway").locator("input").getAttribute("aria-invalid") === "true", "the gateway is marked invalid");
  check((await field("cidr").locator(".field-error").count()) === 0, "the CIDR has no error");
  await checkA11y(a, "segment form with a gateway error");
  await checkBothLanguages(a, "segment form with a gateway error");
  await shot(a, "network-segment-error");
  check((await segments()).total === 0, "a refused gateway creates nothing");

  // The API's check: a link-local range passes the form, the API refuses it naming `cidr`.
  await field("cidr").locator("input").fill("169.254.0.0/16");
  await field("gateway").locator("input").fill("169.254.0.1");
  await field("gateway").locator("input").blur();
  await eventually("the gateway's error to clear", async () => (await field("gateway").locator(".field-error").count()) === 0);
  await form.locator('button[type="submit"]').click();
  const cidrError = field("cidr").locator(".field-error");
  await cidrError.waitFor();
  const cidrText = await cidrError.textContent();
  check(cidrText.includes("169.254.0.0/16") && cidrText.includes("link-local"), `the API's error under the CIDR: ${cidrText}`);
  check((await segments()).total === 0, "a refused CIDR creates nothing");

  // The right one.
  await field("cidr").locator("input").fill("203.0.113.0/24");
  await field("gateway").locator("input").fill("203.0.113.1");
  await form.locator('button[type="submit"]').click();
  await form.waitFor({ state: "detached" });
  const all = await segments();
  check(all.total === 1, `one segment: ${JSON.stringify(all)}`);
  const seg = all.items[0];
  check(seg.name === "public-1" && seg.cidr === "203.0.113.0/24" && seg.gateway === "203.0.113.1" && seg.nic === "bond1"
    && seg.vlan === 100 && seg.route_policy === "default" && seg.permission.all_tenants, `the segment as made: ${JSON.stringify(seg)}`);
  const row = a.locator(`[data-segment-id="${seg.id}"]`);
  await row.waitFor();
  const text = await row.innerText();
  for (const want of [seg.id, "public-1", "IPv4", "203.0.113.0/24", "203.0.113.1", "bond1", "100", "All tenants", "Available", "0 / 253"]) {
    check(text.includes(want), `the row shows ${JSON.stringify(want)}: ${JSON.stringify(text)}`);
  }

  // Edited: untagged, specified routes (one of the wrong family refused by the form first).
  await row.locator('[data-action="edit"]').click();
  const edit = a.getByTestId("segment-form");
  await edit.waitFor();
  const efield = (name) => edit.locator(`[data-field="${name}"]`);
  check(await efield("cidr").locator("input").isDisabled(), "the CIDR cannot change");
  await efield("vlan").locator("input").fill("");
  await efield("route_policy").locator("select").selectOption("specified");
  await efield("routes").locator("textarea").fill("10.0.2.0/24\n2001:db8::/32");
  await edit.locator('button[type="submit"]').click();
  await efield("routes").locator(".field-error").getByText("2001:db8::/32 is not an IPv4 CIDR like the segment.").waitFor();
  check((await api("GET", `/v1/segments/${seg.id}`)).body.route_policy === "default", "a refused edit changes nothing");
  await efield("routes").locator("textarea").fill("10.0.2.0/24");
  await edit.locator('button[type="submit"]').click();
  await edit.waitFor({ state: "detached" });
  const edited = (await api("GET", `/v1/segments/${seg.id}`)).body;
  check(edited.vlan == null && edited.route_policy === "specified" && JSON.stringify(edited.routes) === '["10.0.2.0/24"]',
    `the edit through the API: ${JSON.stringify(edited)}`);
  await row.getByText("Untagged").waitFor();

  // Restricted to tenant A, chosen by email.
  await row.locator('[data-action="permission"]').click();
  const perm = a.getByTestId("permission-form");
  await perm.waitFor();
  await perm.getByLabel("Chosen tenants").check();
  await perm.locator(`input[type="checkbox"][value="${tenantEmail}"]`).check();
  await checkA11y(a, "permission dialog");
  await checkBothLanguages(a, "permission dialog");
  await perm.locator('button[type="submit"]').click();
  await perm.waitFor({ state: "detached" });
  await row.getByTestId("permission").getByText(tenantEmail).waitFor();
  const restricted = (await api("GET", `/v1/segments/${seg.id}`)).body;
  check(!restricted.permission.all_tenants && restricted.permission.tenants.length === 1
    && restricted.permission.tenants[0].email === tenantEmail, `the API's permission: ${JSON.stringify(restricted.permission)}`);
  await checkA11y(a, "network with a segment");
  await checkBothLanguages(a, "network with a segment");
  await shot(a, "network-segments");

  // Tenant A: allocates from it, binds, unbinds, releases.
  const tenant = await openPage(browser);
  const p = tenant.page;
  await signIn(p, env.tenantToken);
  await p.goto(`${env.url}/#/network?tab=eips`);
  await p.getByTestId("eip-count").waitFor();
  await p.locator('.live[data-live="live"]').waitFor();
  await p.getByTestId("eip-allocate").click();
  const alloc = p.getByTestId("allocate-form");
  await alloc.waitFor();
  await alloc.locator("select").selectOption(seg.id);
  await checkA11y(p, "allocate dialog");
  await checkBothLanguages(p, "allocate dialog");
  await alloc.locator('button[type="submit"]').click();
  await alloc.waitFor({ state: "detached" });
  const mine = async () => (await api("GET", "/v1/eips", env.tenantToken)).body;
  const held = await mine();
  check(held.total === 1 && held.items[0].segment_id === seg.id && held.items[0].state === "allocated", `the tenant's EIP: ${JSON.stringify(held)}`);
  const eip = held.items[0];
  const eipRow = p.locator(`[data-eip-id="${eip.id}"]`);
  await eipRow.getByText(eip.address).waitFor();
  // The admin's page follows the usage without a reload.
  await row.getByText("1 / 253").waitFor({ timeout: 15000 });

  await eipRow.locator('[data-action="bind"]').click();
  const bind = p.getByTestId("bind-form");
  await bind.waitFor();
  await bind.locator(`option[value="${instanceId}"]`).waitFor({ state: "attached" });
  await bind.locator("select").selectOption(instanceId);
  await checkA11y(p, "bind dialog");
  await checkBothLanguages(p, "bind dialog");
  await bind.locator('button[type="submit"]').click();
  await bind.waitFor({ state: "detached" });
  await p.locator(`[data-eip-id="${eip.id}"][data-state="bound"]`).waitFor();
  const bound = (await api("GET", `/v1/eips/${eip.id}`, env.tenantToken)).body;
  check(bound.state === "bound" && bound.instance_id === instanceId, `bound through the API: ${JSON.stringify(bound)}`);
  await checkA11y(p, "EIPs with a bound one");
  await checkBothLanguages(p, "EIPs with a bound one");
  await shot(p, "network-eips-tenant");

  await eipRow.locator('[data-action="unbind"]').click();
  await p.locator(`[data-eip-id="${eip.id}"][data-state="allocated"]`).waitFor();
  const unbound = (await api("GET", `/v1/eips/${eip.id}`, env.tenantToken)).body;
  check(unbound.state === "allocated" && unbound.instance_id == null, `unbound through the API: ${JSON.stringify(unbound)}`);

  await eipRow.locator('[data-action="release"]').click();
  const confirm = p.getByTestId("typed-confirm");
  await confirm.locator('input[name="confirm"]').fill(eip.address);
  await confirm.locator('button[type="submit"]').click();
  await eipRow.waitFor({ state: "detached" });
  check((await mine()).total === 0, "released through the API");
  check((await api("GET", `/v1/eips/${eip.id}`, env.tenantToken)).status === 404, "the EIP is gone");
  await row.getByText("0 / 253").waitFor({ timeout: 15000 });

  // A phone-width screen: the segments as the tenant sees them.
  await p.setViewportSize({ width: 390, height: 844 });
  await p.goto(`${env.url}/#/network`);
  await p.locator(`[data-segment-id="${seg.id}"]`).waitFor();
  await checkA11y(p, "network at phone width");
  await shot(p, "network-phone");

  // The API refusals the test asked for are logged by Chromium as failed loads.
  checkNoErrors(admin.errors.filter((e) => !(e.includes("400") && e.includes("/v1/segments"))), "admin page");
  checkNoErrors(tenant.errors, "tenant page");
} finally {
  await browser.close();
}
console.log("network: ok");
