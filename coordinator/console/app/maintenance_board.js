// One host's maintenance (/maintenance/<host-id>): before entering, the drain plan; entering
// with a parallelism (lock first when the host is available); the drain's live board; enter
// again to retry what stayed; exit maintenance.
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { Field, FormError, useForm } from "./ui/form.js";
import { useHosts } from "./hosts_model.js";
import { useDrain, usePlan } from "./maintenance_model.js";
import { DrainBoard, PlanTable } from "./maintenance_parts.js";

/** @typedef {import("./hosts_model.js").Host} Host */

/** @param {string} id */
const hostPath = (id) => `/v1/hosts/${encodeURIComponent(id)}`;

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function MaintenanceBoard({ feed, id }) {
  const { hosts, loaded, patch } = useHosts(feed);
  const byId = useMemo(() => new Map(hosts.map((h) => [h.id, h])), [hosts]);
  const host = byId.get(id);
  const state = host ? host.state : null;
  const planning = state === "available" || state === "locked";
  const drain = useDrain(feed, id);
  const plan = usePlan(feed, id, planning);
  const [acting, setActing] = useState(/** @type {string | null} */ (null));
  const [actionError, setActionError] = useState(/** @type {string | null} */ (null));

  /** @param {"lock" | "unlock" | "maintenance/exit"} action */
  async function act(action) {
    setActing(action);
    setActionError(null);
    try {
      patch(await call("POST", `${hostPath(id)}/${action}`));
    } catch (err) {
      setActionError(err instanceof Error ? err.message : String(err));
    } finally {
      setActing(null);
    }
  }

  const d = drain.value;
  const stayed = d && d.status !== "running" ? d.stayed : 0;
  // The drain first once there is one (what is happening, or what the last one left); before
  // any, the plan.
  const drainCard = html`
      <section class="maint-card" aria-labelledby="maint-drain-title">
        <h2 id="maint-drain-title">${t("maint.board.title")}</h2>
        ${drain.error && html`<p class="error" role="alert" data-raw>${drain.error}</p>`}
        ${d ? html`<${DrainBoard} drain=${d} hosts=${byId} />` : drain.loaded && html`<p class="empty" data-testid="no-drain">${t("maint.board.none")}</p>`}
      </section>`;

  return html`
    <section class="maint maint-board" aria-labelledby="maint-board-title" data-host-id=${id} data-state=${state || ""}>
      <p class="maint-back"><a href="#/maintenance">${t("maint.back")}</a></p>
      <div class="screen-head">
        <h1 id="maint-board-title">${t("maint.board.host")} <span class="mono" data-raw>${id}</span></h1>
        ${host && html`<span class=${`badge state-${host.state}`} data-testid="host-state">${t(/** @type {any} */ (`state.${host.state}`))}</span>`}
      </div>
      ${loaded.done && !host && html`<p class="error" role="alert">${t("maint.no_host")}</p>`}
      ${host && html`
        <dl class="facts maint-facts">
          <dt>${t("maint.host.name")}</dt><dd data-raw>${host.hostname}</dd>
          <dt>${t("maint.host.ip")}</dt><dd class="mono" data-raw>${host.ip}</dd>
          <dt>${t("maint.host.cluster")}</dt><dd data-raw>${host.cluster_id}</dd>
        </dl>`}
      ${host && html`
        <div class="toolbar maint-actions" role="toolbar" aria-label=${t("maint.actions")}>
          ${state === "available" && html`<button type="button" data-action="lock" disabled=${acting !== null} onClick=${() => act("lock")}>${t("maint.lock")}</button>`}
          ${state === "locked" && html`<button type="button" data-action="unlock" disabled=${acting !== null} onClick=${() => act("unlock")}>${t("maint.unlock")}</button>`}
          ${state === "maintenance" && html`<button type="button" class="primary" data-action="exit" disabled=${acting !== null} onClick=${() => act("maintenance/exit")}>${t("maint.exit")}</button>`}
          ${state === "maintenance" && html`<span class="hint">${t("maint.exit_hint")}</span>`}
          ${state === "entering_maintenance" && html`<span class="hint">${t("maint.entering_hint")}</span>`}
          ${actionError && html`<p class="error" role="alert" data-raw>${actionError}</p>`}
        </div>`}

      ${d && drainCard}
      ${planning && html`
        <section class="maint-card" aria-labelledby="maint-plan-title">
          <h2 id="maint-plan-title">${t("maint.plan.title")}</h2>
          <p class="hint">${t("maint.plan.hint")}</p>
          ${plan.error && html`<p class="error" role="alert" data-raw>${plan.error}</p>`}
          ${plan.value ? html`<${PlanTable} plan=${plan.value} hosts=${byId} />` : !plan.error && html`<p class="muted">${t("maint.loading")}</p>`}
          ${state === "available" && html`<p class="hint" data-testid="needs-lock">${t("maint.enter.needs_lock")}</p>`}
          ${state === "locked" && html`<${EnterForm} hostId=${id} stayed=${stayed}
            onEntered=${(/** @type {import("./maintenance_model.js").Drain} */ started) => {
              drain.set(started);
              drain.reload();
            }} />`}
        </section>`}

      ${!d && drainCard}
    </section>`;
}

/**
 * Entering maintenance (or entering again, to retry what the last drain left), with how many
 * migrations run at once; the API's errors under their field.
 * @param {{hostId: string, stayed: number, onEntered: (d: import("./maintenance_model.js").Drain) => void}} props
 */
function EnterForm({ hostId, stayed, onEntered }) {
  const [parallelism, setParallelism] = useState("");
  const { errors, busy, submit } = useForm();

  /** @param {Event} e */
  async function enter(e) {
    e.preventDefault();
    const started = await submit(["parallelism"], async () => {
      const text = parallelism.trim();
      // Not a number is sent as it is: the API says what is wrong with it, under the field.
      const value = text === "" ? undefined : /^-?\d+$/.test(text) ? Number(text) : text;
      return call("POST", `${hostPath(hostId)}/maintenance/enter`, value === undefined ? {} : { parallelism: value });
    });
    if (started) onEntered(started);
  }

  return html`
    <form class="form maint-enter" onSubmit=${enter} data-testid="enter-form" noValidate>
      <h3>${stayed > 0 ? t("maint.enter.retry_title") : t("maint.enter.title")}</h3>
      ${stayed > 0 && html`<p class="hint" data-testid="retry-hint">${t("maint.enter.retry_hint", { n: stayed })}</p>`}
      <${Field} label=${t("maint.enter.parallelism")} name="parallelism" error=${errors.parallelism}
        hint=${t("maint.enter.parallelism_hint")}>
        <input type="text" inputmode="numeric" autocomplete="off" value=${parallelism}
          onInput=${(/** @type {any} */ ev) => setParallelism(ev.currentTarget.value)} />
      </${Field}>
      <${FormError} errors=${errors} />
      <div class="form-actions">
        <button type="submit" class="primary" data-action="enter" disabled=${busy}>
          ${stayed > 0 ? t("maint.enter.retry") : t("maint.enter.submit")}</button>
      </div>
    </form>`;
}
