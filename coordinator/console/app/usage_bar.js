// Allocated of total as a bar with its numbers.
import { html } from "./html.js";

/** @param {{used: number, total: number, text: string, label: string}} props */
export function UsageBar({ used, total, text, label }) {
  const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
  const level = pct >= 90 ? "high" : pct >= 70 ? "mid" : "low";
  return html`
    <div class="usage" role="meter" aria-label=${label} aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${used}>
      <div class="usage-track"><div class=${`usage-fill ${level}`} style=${{ width: `${pct}%` }}></div></div>
      <span class="usage-text" data-raw>${text}</span>
    </div>`;
}
