// Importing bare-metal servers from a CSV file: every row previewed (the passwords only as
// set or missing), then the file sent as it is to POST /v1/baremetal/import, which checks
// every row and imports all of them or none; its per-row report is shown on the preview.
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { Dialog } from "./ui/dialog.js";
import { Field } from "./ui/form.js";
import { HEADER, parseCsv } from "./baremetal_csv.js";

/** @typedef {import("../types/api").components["schemas"]["ImportRow"]} ImportRow */

/**
 * @param {{isAdmin: boolean, onImported: (ids: string[]) => void, onClose: () => void}} props
 */
export function ImportServers({ isAdmin, onImported, onClose }) {
  const [text, setText] = useState(/** @type {string | null} */ (null));
  const [tenant, setTenant] = useState("");
  const [busy, setBusy] = useState(false);
  /** @type {[{imported?: number, error?: string, rows: ImportRow[]} | null, (r: any) => void]} */
  const [report, setReport] = useState(/** @type {any} */ (null));

  const rows = text === null ? [] : parseCsv(text);
  const header = rows.length ? rows[0].cells.join(",") : "";
  const headerOk = header.replace(/^\uFEFF/, "") === HEADER;
  const data = rows.slice(1);
  /** @type {Map<number, ImportRow>} */
  const byLine = new Map((report?.rows || []).map((/** @type {ImportRow} */ r) => [r.line, r]));

  /** @param {Event} e */
  async function pick(e) {
    const file = /** @type {HTMLInputElement} */ (e.currentTarget).files?.[0];
    setReport(null);
    setText(file ? await file.text() : null);
  }

  /** @param {Event} e */
  async function send(e) {
    e.preventDefault();
    if (text === null) return;
    setBusy(true);
    setReport(null);
    try {
      const q = isAdmin ? `?tenant_email=${encodeURIComponent(tenant.trim())}` : "";
      // The file as it is, as text/csv (the API's call() speaks JSON only).
      const resp = await fetch(`/v1/baremetal/import${q}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "text/csv", Accept: "application/json", "X-Plinth-Session": "1" },
        body: text,
      });
      const body = await resp.json().catch(() => null);
      if (resp.ok) {
        setReport({ imported: body.imported, rows: body.rows });
        onImported(body.rows.map((/** @type {ImportRow} */ r) => r.id).filter(Boolean));
      } else {
        setReport({ error: body?.error?.message || resp.statusText, rows: body?.rows || [] });
      }
    } catch (err) {
      setReport({ error: String(err), rows: [] });
    } finally {
      setBusy(false);
    }
  }

  const done = report && report.imported !== undefined;
  return html`
    <${Dialog} title=${t("bm.import.title")} onClose=${onClose} wide testid="bm-import">
      <form class="form" onSubmit=${send}>
        ${isAdmin && html`
          <${Field} label=${t("bm.field.tenant_email")} name="tenant_email" hint=${t("bm.hint.tenant_email")}>
            <input type="email" required value=${tenant} onInput=${(/** @type {any} */ e) => setTenant(e.currentTarget.value)} />
          <//>`}
        <${Field} label=${t("bm.import.file")} name="csv" hint=${t("bm.import.hint")}>
          <input type="file" accept=".csv,text/csv" onChange=${pick} />
        <//>
        ${text !== null && !headerOk && html`<p class="error" role="alert">${t("bm.import.bad_header", { header: HEADER })}</p>`}
        ${text !== null && headerOk && data.length === 0 && html`<p class="error" role="alert">${t("bm.import.no_rows")}</p>`}
        ${report?.error && html`<p class="error" role="alert" data-testid="import-refused">${t("bm.import.refused", { error: report.error })}</p>`}
        ${done && html`<p class="ok" role="status" data-testid="import-done">${t("bm.import.done", { n: report.imported ?? 0 })}</p>`}
        ${data.length > 0 && html`
          <div class="bm-preview">
            <table class="bm-table" data-testid="import-preview">
              <caption>${t("bm.import.preview", { n: data.length })}</caption>
              <thead><tr>
                <th scope="col">${t("bm.import.line")}</th>
                <th scope="col">${t("bm.field.name")}</th>
                <th scope="col">${t("bm.field.ipmi_ip")}</th>
                <th scope="col">${t("bm.field.ipmi_username")}</th>
                <th scope="col">${t("bm.field.ipmi_password")}</th>
                <th scope="col">${t("bm.field.rack_location")}</th>
                <th scope="col">${t("bm.field.label")}</th>
                <th scope="col">${t("bm.import.problems")}</th>
              </tr></thead>
              <tbody>
                ${data.map((r) => {
                  const rep = byLine.get(r.line);
                  const bad = rep && rep.errors.length > 0;
                  return html`
                    <tr data-line=${r.line} data-bad=${bad ? "1" : "0"} class=${bad ? "is-bad" : ""}>
                      <td data-raw>${r.line}</td>
                      <td data-raw>${r.cells[0] ?? ""}</td>
                      <td class="mono" data-raw>${r.cells[1] ?? ""}</td>
                      <td data-raw>${r.cells[2] ?? ""}</td>
                      <td>${(r.cells[3] ?? "") !== "" ? t("bm.import.password_set") : t("bm.import.password_missing")}</td>
                      <td data-raw>${r.cells[4] ?? ""}</td>
                      <td data-raw>${r.cells[5] ?? ""}</td>
                      <td>${rep
                        ? bad
                          ? html`<ul class="bm-problems" data-raw>${rep.errors.map((m) => html`<li>${m}</li>`)}</ul>`
                          : html`<span>${t("bm.import.row_ok")}</span>`
                        : ""}</td>
                    </tr>`;
                })}
              </tbody>
            </table>
          </div>`}
        <div class="form-actions">
          ${!done && html`<button type="submit" class="primary" disabled=${busy || !headerOk || data.length === 0}>${t("bm.import.submit", { n: data.length })}</button>`}
          <button type="button" onClick=${onClose}>${done ? t("ui.close") : t("ui.cancel")}</button>
        </div>
      </form>
    <//>`;
}
