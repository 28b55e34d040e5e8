// The operations tab: the region's recent operations with live progress, filtered by kind
// and status (in the URL; the API filters).
import { useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { KINDS, OperationList, useOperations } from "./operations.js";

const STATUSES = ["running", "succeeded", "failed"];

/**
 * @param {{feed: import("./events.js").ChangeFeed, route: import("./route.js").Route}} props
 */
export function OperationsTab({ feed, route }) {
  const [f, setF] = useState(() => ({ kind: route.params.get("kind") || "", status: route.params.get("status") || "" }));
  const ops = useOperations(feed, f);
  /** @param {"kind" | "status"} name @param {string} value */
  function set(name, value) {
    const next = { ...f, [name]: value };
    setF(next);
    replaceParams("/admin", { tab: "operations", ...next });
  }
  return html`
    <div class="admin-operations">
      <div class="toolbar" role="search" aria-label=${t("admin.ops.filters")}>
        <label>${t("admin.ops.kind")}
          <select value=${f.kind} onChange=${(/** @type {any} */ e) => set("kind", e.currentTarget.value)}>
            <option value="">${t("admin.ops.any")}</option>
            ${KINDS.map((k) => html`<option value=${k}>${t(/** @type {any} */ (`operations.kind.${k}`))}</option>`)}
          </select>
        </label>
        <label>${t("admin.ops.status")}
          <select value=${f.status} onChange=${(/** @type {any} */ e) => set("status", e.currentTarget.value)}>
            <option value="">${t("admin.ops.any")}</option>
            ${STATUSES.map((s) => html`<option value=${s}>${t(/** @type {any} */ (`operations.status.${s}`))}</option>`)}
          </select>
        </label>
      </div>
      <${OperationList} ops=${ops} />
    </div>`;
}
