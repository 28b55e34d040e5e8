// Languages: every visible string comes from the catalogue of the language shown; switching
// changes every one of them, is remembered, and a Chinese browser starts in Chinese.
import { catalogues, check, checkNoErrors, checkStrings, env, launch, openPage, shot, signIn } from "./lib.mjs";

const en = Object.keys(catalogues.en).sort();
const zh = Object.keys(catalogues["zh-CN"]).sort();
check(JSON.stringify(en) === JSON.stringify(zh), "both catalogues have the same keys");

/** Brings every part of the Hosts screen out: a confirmation and a batch result. */
async function hostsScreen(page) {
  await page.locator('nav a[href="#/hosts"]').click();
  await page.locator(`[data-host-id="${env.hostId}"]`).waitFor();
  await page.locator(`[data-host-id="${env.hostId}"] [data-action="lock"]`).click();
  await page.locator("[data-confirm]").waitFor();
}

const browser = await launch();
try {
  const { page, errors } = await openPage(browser, { locale: "en-US" });
  await page.goto(`${env.url}/`);
  await page.locator("#token").waitFor();
  let n = await checkStrings(page, "en", null, "sign-in (en)");
  await page.locator(".lang select").selectOption("zh-CN");
  await page.getByText("使用 API 令牌登录").waitFor();
  n += await checkStrings(page, "zh-CN", "en", "sign-in (zh-CN)");
  await page.locator(".lang select").selectOption("en");

  await signIn(page, env.adminToken);
  n += await checkStrings(page, "en", null, "overview (en)");
  await hostsScreen(page);
  n += await checkStrings(page, "en", null, "hosts (en)");
  await shot(page, "hosts-en");

  await page.locator(".top .lang select").selectOption("zh-CN");
  await page.getByRole("heading", { name: "宿主机" }).waitFor();
  n += await checkStrings(page, "zh-CN", "en", "hosts (zh-CN)");
  await shot(page, "hosts-zh-CN");
  await page.reload();
  await page.getByRole("heading", { name: "宿主机" }).waitFor();
  check((await page.evaluate(() => document.documentElement.lang)) === "zh-CN", "the page says its language");
  await page.locator('nav a[href="#/"]').click();
  n += await checkStrings(page, "zh-CN", "en", "overview (zh-CN, after a reload)");
  checkNoErrors(errors, "en page");
  check(n > 60, `enough strings were checked (${n})`);

  // A browser that asks for Chinese gets it without choosing.
  const zhPage = await openPage(browser, { locale: "zh-CN" });
  await zhPage.page.goto(`${env.url}/`);
  await zhPage.page.getByText("使用 API 令牌登录").waitFor();
  await checkStrings(zhPage.page, "zh-CN", "en", "sign-in (zh-CN browser)");
  await shot(zhPage.page, "sign-in-zh-CN");
  checkNoErrors(zhPage.errors, "zh-CN page");
} finally {
  await browser.close();
}
console.log("i18n: ok");
