// A bare-metal server's serial console (SOL) in xterm.js: prepare (activates SOL, answers a
// one-time wss:// URL), attach (bytes both ways over that WebSocket), fit the terminal to its
// box whenever the box resizes (a serial line has no window size to tell the server), and
// release when the dialog closes or the page goes away. xterm and its stylesheet load only
// when a console opens.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { Dialog } from "./ui/dialog.js";
import { useCssomStyles } from "./xterm_styles.js";

/** @typedef {typeof import("@xterm/xterm")} XtermModule */
/** @typedef {typeof import("@xterm/addon-fit")} FitModule */
/** @typedef {"preparing" | "connected" | "closed" | "failed"} Phase */

/** xterm's stylesheet, linked once (the CSP allows this origin's stylesheets). */
function linkXtermCss() {
  const href = new URL("../vendor/xterm.css", import.meta.url).href;
  if (document.querySelector(`link[data-xterm-css]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  link.dataset.xtermCss = "";
  document.head.appendChild(link);
}

/** POST .../console/release, also while the page unloads (keepalive). @param {string} id */
function release(id) {
  return fetch(`/v1/baremetal/${encodeURIComponent(id)}/console/release`, {
    method: "POST",
    credentials: "same-origin",
    keepalive: true,
    headers: { Accept: "application/json", "X-Plinth-Session": "1" },
  }).catch(() => undefined);
}

/**
 * @param {{server: {id: string, name: string}, onClose: () => void}} props
 */
export function SerialConsole({ server, onClose }) {
  const box = useRef(/** @type {HTMLDivElement | null} */ (null));
  const [phase, setPhase] = useState(/** @type {Phase} */ ("preparing"));
  const [error, setError] = useState("");

  useEffect(() => {
    let gone = false;
    let released = false;
    /** @type {WebSocket | null} */
    let ws = null;
    /** @type {import("@xterm/xterm").Terminal | null} */
    let term = null;
    /** @type {ResizeObserver | null} */
    let ro = null;
    const restoreStyles = useCssomStyles();
    const letGo = () => {
      if (released) return;
      released = true;
      release(server.id);
    };
    addEventListener("pagehide", letGo);
    linkXtermCss();

    (async () => {
      try {
        const [xterm, fitAddon] = /** @type {[XtermModule, FitModule]} */ (await Promise.all([
          import(new URL("../vendor/xterm.mjs", import.meta.url).href),
          import(new URL("../vendor/addon-fit.mjs", import.meta.url).href),
        ]));
        if (gone || !box.current) return;
        term = new xterm.Terminal({ fontSize: 14, scrollback: 5000, cursorBlink: true });
        const fit = new fitAddon.FitAddon();
        term.loadAddon(fit);
        term.open(box.current);
        if (term.textarea) term.textarea.setAttribute("aria-label", t("bm.console.terminal"));
        fit.fit();
        ro = new ResizeObserver(() => {
          try {
            fit.fit();
          } catch {
            // A box with no size yet (the dialog opening).
          }
        });
        ro.observe(box.current);

        /** @type {import("../types/api").components["schemas"]["ConsoleTicket"]} */
        const ticket = await call("POST", `/v1/baremetal/${encodeURIComponent(server.id)}/console/prepare`);
        if (gone) return;
        const socket = new WebSocket(ticket.url);
        ws = socket;
        socket.binaryType = "arraybuffer";
        const encoder = new TextEncoder();
        socket.onopen = () => {
          setPhase("connected");
          term?.focus();
        };
        socket.onmessage = (m) => term?.write(typeof m.data === "string" ? m.data : new Uint8Array(m.data));
        socket.onclose = () => {
          if (!gone) setPhase((p) => (p === "failed" ? p : "closed"));
        };
        term.onData((d) => {
          if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(d));
        });
        term.onBinary((d) => {
          if (socket.readyState === WebSocket.OPEN) socket.send(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff));
        });
      } catch (err) {
        if (gone) return;
        setError(err instanceof Error ? err.message : String(err));
        setPhase("failed");
      }
    })();

    return () => {
      gone = true;
      removeEventListener("pagehide", letGo);
      if (ws) ws.close();
      ro?.disconnect();
      term?.dispose();
      restoreStyles();
      letGo();
    };
  }, [server.id]);

  const note = phase === "failed" ? t("bm.console.failed", { error }) : t(/** @type {any} */ (`bm.console.${phase}`));
  return html`
    <${Dialog} title=${t("bm.console.title", { name: server.name })} onClose=${onClose} wide testid="bm-console">
      <p class=${phase === "failed" ? "error" : "hint"} role="status" data-console-phase=${phase}>${note}</p>
      <div class="bm-terminal" ref=${box} data-raw data-testid="terminal"></div>
      <div class="form-actions">
        <button type="button" onClick=${onClose}>${t("bm.console.release")}</button>
      </div>
    <//>`;
}
