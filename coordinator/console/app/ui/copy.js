// A button that copies a text (a download link, an enrollment command) to the clipboard and
// says so.
import { useState } from "preact/hooks";
import { html } from "../html.js";
import { t } from "../i18n.js";

/** @param {{text: string, label?: string}} props */
export function CopyButton({ text, label }) {
  const [done, setDone] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 2000);
    } catch {
      // No clipboard (an insecure origin, a refused permission): the text is shown to select.
    }
  }
  return html`<button type="button" data-copy onClick=${copy}>${done ? t("ui.copied") : label || t("ui.copy")}</button>`;
}
