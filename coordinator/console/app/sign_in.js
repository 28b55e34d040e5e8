// Sign in: the token goes once, in the body of POST /v1/session, and comes back as an
// HttpOnly cookie; the page never keeps it.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { LanguageSwitch } from "./language_switch.js";

/** @param {{onSignedIn: (s: import("./app.js").Session) => void}} props */
export function SignIn({ onSignedIn }) {
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  /** @type {[string | null, (e: string | null) => void]} */
  const [error, setError] = useState(/** @type {string | null} */ (null));

  /** @param {Event} e */
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const session = await call("POST", "/v1/session", { token: token.trim() });
      setToken("");
      onSignedIn(session);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <main class="sign-in">
      <form class="card" onSubmit=${submit}>
        <div class="sign-in-head">
          <h1>${t("app.name")}</h1>
          <${LanguageSwitch} />
        </div>
        <h2>${t("signin.title")}</h2>
        <label for="token">${t("signin.token")}</label>
        <input id="token" name="token" type="password" autocomplete="off" required
          value=${token} onInput=${(/** @type {any} */ e) => setToken(e.currentTarget.value)}
          aria-describedby="token-hint" aria-invalid=${error ? "true" : "false"} />
        <p id="token-hint" class="hint">${t("signin.hint")}</p>
        ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
        <button type="submit" class="primary" disabled=${busy || !token.trim()}>
          ${busy ? t("signin.busy") : t("signin.submit")}
        </button>
      </form>
    </main>`;
}
