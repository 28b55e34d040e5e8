// An instance's latest move (admins): a drain's or a manual migration's target, status,
// attempts and why it stayed; re-read when the instance changes.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { call } from "./api.js";
import { dateTime } from "./format.js";

/** @typedef {import("../types/api").components["schemas"]["MoveItem"]} MoveItem */

/** @param {{inst: import("./instances_model.js").Instance}} props */
export function InstanceMigration({ inst }) {
  const [move, setMove] = useState(/** @type {MoveItem | null} */ (null));
  useEffect(() => {
    let alive = true;
    call("GET", `/v1/instances/${encodeURIComponent(inst.id)}/migration`)
      .then((/** @type {MoveItem} */ m) => alive && setMove(m))
      .catch(() => alive && setMove(null));
    return () => {
      alive = false;
    };
  }, [inst.id, inst.state, inst.host_id, inst.updated_at]);
  if (!move) return null;
  return html`
    <section class="card inst-migration" aria-labelledby="inst-move-title" data-testid="instance-migration"
      data-move-status=${move.status}>
      <h2 id="inst-move-title">${t("inst.move.title")}</h2>
      <dl class="facts">
        <dt>${t("inst.move.source")}</dt><dd class="mono" data-raw>${move.source_host}</dd>
        <dt>${t("inst.move.target")}</dt><dd class="mono" data-raw data-testid="move-target">${move.target_host || "—"}</dd>
        <dt>${t("inst.move.status")}</dt><dd>${t(/** @type {any} */ (`inst.move.status.${move.status}`))}</dd>
        <dt>${t("inst.move.attempts")}</dt><dd data-raw>${move.attempts}</dd>
        ${move.started_at && html`<dt>${t("inst.move.started")}</dt><dd data-raw>${dateTime(move.started_at)}</dd>`}
        ${move.reason && html`<dt>${t("inst.move.reason")}</dt><dd data-raw>${move.reason}</dd>`}
      </dl>
    </section>`;
}
