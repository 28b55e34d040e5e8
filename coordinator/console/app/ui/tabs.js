// Tabs: a row of buttons with the ARIA tab pattern; the caller renders the chosen panel.
import { html } from "../html.js";

/**
 * @param {{tabs: {id: string, label: string}[], current: string, onChange: (id: string) => void,
 *   label: string}} props
 */
export function Tabs({ tabs, current, onChange, label }) {
  /** @param {KeyboardEvent} e @param {number} i */
  function key(e, i) {
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    const next = tabs[(i + step + tabs.length) % tabs.length];
    onChange(next.id);
    const el = /** @type {HTMLElement | null} */ (document.getElementById(`tab-${next.id}`));
    if (el) el.focus();
  }
  return html`
    <div class="tabs" role="tablist" aria-label=${label}>
      ${tabs.map((tab, i) => html`
        <button type="button" role="tab" id=${`tab-${tab.id}`} data-tab=${tab.id}
          aria-selected=${tab.id === current ? "true" : "false"} tabindex=${tab.id === current ? 0 : -1}
          onClick=${() => onChange(tab.id)} onKeyDown=${(/** @type {KeyboardEvent} */ e) => key(e, i)}>${tab.label}</button>`)}
    </div>`;
}
