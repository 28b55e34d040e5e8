// A transfer's progress: a bar (when the total is known) and bytes, rate and ETA beside it.
import { html } from "./html.js";
import { t } from "./i18n.js";
import { progressParts } from "./images_model.js";

/**
 * @param {{bytes: number, total: number | null, rate: number | null, eta: number | null,
 *   label: string}} props
 */
export function Progress({ bytes, total, rate, eta, label }) {
  const parts = progressParts({ bytes, total, rate, eta });
  const pct = total ? Math.min(100, Math.round((bytes * 100) / total)) : null;
  return html`
    <div class="image-progress" data-testid="progress" data-bytes=${bytes} data-total=${total ?? ""}>
      ${pct !== null
        ? html`<progress max="100" value=${pct} aria-label=${label}>${t("images.progress.pct", { pct })}</progress>`
        : html`<progress aria-label=${label}></progress>`}
      <span class="progress-text">
        <span data-part="bytes" data-raw=${total === null ? "" : undefined}>${parts.bytes}</span>
        ${parts.rate && html`<span data-part="rate">${parts.rate}</span>`}
        ${parts.eta && html`<span data-part="eta">${parts.eta}</span>`}
      </span>
    </div>`;
}
