// Sign in with a token, who am I, sign out; a tenant's session; a wrong token refused.
import { check, checkA11y, checkNoErrors, env, launch, openPage, shot, signIn } from "./lib.mjs";

const browser = await launch();
try {
  const { page, errors } = await openPage(browser);
  const resp = await signIn(page, env.adminToken);
  const headers = resp.headers();
  check(headers["content-security-policy"]?.includes("script-src 'self'"), `CSP on /: ${headers["content-security-policy"]}`);
  check(headers["x-content-type-options"] === "nosniff", "nosniff on /");
  check(headers["cache-control"] === "no-cache", `index.html is revalidated: ${headers["cache-control"]}`);

  // Who am I: the overview and the top bar say administrator.
  check((await page.getByTestId("role").textContent()) === "Administrator", "overview names the admin role");
  check((await page.getByTestId("who").textContent())?.includes("Administrator"), "top bar names the role");
  check(await page.locator('nav a[href="#/hosts"]').isVisible(), "an admin has the Hosts screen");
  // The token is not in the page (the session is the HttpOnly cookie, not readable by script).
  const stored = await page.evaluate(() => JSON.stringify(localStorage) + document.cookie);
  check(!stored.includes(env.adminToken.split(".")[1] || env.adminToken), "the token is not kept in the page");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "plinth_session");
  check(session && session.httpOnly && session.secure && session.sameSite === "Strict", `session cookie: ${JSON.stringify(session)}`);
  await shot(page, "session-overview");
  await checkA11y(page, "overview");

  // Sign out ends the session: a reload shows the sign-in form, and the cookie is refused.
  const sessionValue = session.value;
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#token").waitFor();
  await page.reload();
  await page.locator("#token").waitFor();
  const after = await fetch(`${env.url}/v1/session`, { headers: { Cookie: `plinth_session=${sessionValue}` } });
  check(after.status === 401, `the signed-out session is refused: ${after.status}`);

  // A wrong token: the API's message next to the field, still signed out.
  await page.locator("#token").fill("tok-000000000000.nope");
  await page.locator("form button[type=submit]").click();
  await page.locator(".sign-in .error").waitFor();
  check(await page.locator("#token").isVisible(), "still on the sign-in form");
  await shot(page, "session-refused");
  await checkA11y(page, "sign-in with an error");
  checkNoErrors(errors, "admin page");

  if (env.tenantToken) {
    const t = await openPage(browser);
    await signIn(t.page, env.tenantToken);
    check((await t.page.getByTestId("role").textContent()) === "Tenant", "overview names the tenant role");
    check((await t.page.getByTestId("tenant").textContent()) === env.tenantId, "overview names the tenant");
    check((await t.page.locator('nav a[href="#/hosts"]').count()) === 0, "a tenant is not offered the Hosts screen");
    checkNoErrors(t.errors, "tenant page");
  }
} finally {
  await browser.close();
}
console.log("session: ok");
