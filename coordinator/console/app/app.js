// The app: who the session is decides between the sign-in form and the shell. The change
// feed lives as long as the session does.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { call, setSignedOutHandler } from "./api.js";
import { ChangeFeed } from "./events.js";
import { onLangChange } from "./i18n.js";
import { SignIn } from "./sign_in.js";
import { Shell } from "./shell.js";

/**
 * @typedef {{id: string, role: "admin" | "tenant", tenant_id?: string | null, token_id: string,
 *   expires_at: string, idle_expires_at: string}} Session
 */

export function App() {
  /** @type {[Session | null | undefined, (s: Session | null) => void]} */
  const [session, setSession] = useState(/** @type {Session | null | undefined} */ (undefined));
  const [, setLangTick] = useState(0);
  /** @type {[ChangeFeed | null, (f: ChangeFeed | null) => void]} */
  const [feed, setFeed] = useState(/** @type {ChangeFeed | null} */ (null));

  useEffect(() => onLangChange(() => setLangTick((n) => n + 1)), []);
  useEffect(() => {
    setSignedOutHandler(() => setSession(null));
    call("GET", "/v1/session").then(setSession, () => setSession(null));
  }, []);
  useEffect(() => {
    if (!session) return undefined;
    const f = new ChangeFeed();
    f.start();
    setFeed(f);
    return () => {
      f.stop();
      setFeed(null);
    };
  }, [session && session.id]);

  if (session === undefined) return null;
  if (session === null) return html`<${SignIn} onSignedIn=${setSession} />`;
  if (!feed) return null;
  return html`<${Shell} session=${session} feed=${feed} onSignedOut=${() => setSession(null)} />`;
}
