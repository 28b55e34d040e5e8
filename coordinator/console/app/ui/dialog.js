// Dialogs: the browser's own modal <dialog> (focus kept inside, Esc closes, the page behind
// inert), and the typed confirmation that a destructive action asks for.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../html.js";
import { t } from "../i18n.js";

let nextId = 0;

/**
 * A modal dialog, open while rendered; `onClose` on Esc or the close button. `className`
 * replaces the centred box's classes (the operations drawer along the right edge).
 * @param {{title: string, onClose: () => void, children?: any, wide?: boolean, testid?: string,
 *   className?: string}} props
 */
export function Dialog({ title, onClose, children, wide, testid, className }) {
  const ref = useRef(/** @type {HTMLDialogElement | null} */ (null));
  const [id] = useState(() => `dialog-${++nextId}`);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => {
      if (d && d.open) d.close();
    };
  }, []);
  return html`
    <dialog ref=${ref} class=${className || (wide ? "dialog wide" : "dialog")} aria-labelledby=${id} data-testid=${testid}
      onCancel=${(/** @type {Event} */ e) => {
        e.preventDefault();
        onClose();
      }}>
      <header class="dialog-head">
        <h2 id=${id}>${title}</h2>
        <button type="button" class="link" aria-label=${t("ui.close")} onClick=${onClose}>×</button>
      </header>
      <div class="dialog-body">${children}</div>
    </dialog>`;
}

/**
 * A destructive action confirmed by typing `expect` (an id or a name): the button stays
 * disabled until the text matches.
 * @param {{title: string, text: string, expect: string, action: string, busy?: boolean,
 *   error?: string | null, onConfirm: () => void, onCancel: () => void}} props
 */
export function TypedConfirm({ title, text, expect, action, busy, error, onConfirm, onCancel }) {
  const [typed, setTyped] = useState("");
  const ok = typed.trim() === expect;
  return html`
    <${Dialog} title=${title} onClose=${onCancel} testid="typed-confirm">
      <form class="form" onSubmit=${(/** @type {Event} */ e) => {
        e.preventDefault();
        if (ok && !busy) onConfirm();
      }}>
        <p>${text}</p>
        <label class="field">
          <span>${t("ui.type_to_confirm")} <code class="mono" data-raw>${expect}</code></span>
          <input name="confirm" autocomplete="off" value=${typed}
            onInput=${(/** @type {any} */ e) => setTyped(e.currentTarget.value)} />
        </label>
        ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
        <div class="form-actions">
          <button type="submit" class="danger" disabled=${!ok || busy}>${action}</button>
          <button type="button" onClick=${onCancel}>${t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
