// The Maintenance screen (/maintenance, admin): the hosts in or entering maintenance with
// their drains' progress, live; and a host to plan a drain for (its board, /maintenance/<id>,
// is in maintenance_board.js).
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { fuzzyScore } from "./fuzzy.js";
import { replaceParams } from "./route.js";
import { useHosts } from "./hosts_model.js";
import { doneCount, useDrain } from "./maintenance_model.js";
import { boardHref, DrainStatus } from "./maintenance_parts.js";

export { MaintenanceBoard } from "./maintenance_board.js";

/** @typedef {import("./hosts_model.js").Host} Host */

const IN_MAINTENANCE = new Set(["entering_maintenance", "maintenance"]);
/** How many hosts the picker offers at once. */
const PICKS = 8;

/** @param {import("./shell.js").ScreenProps} props */
export function MaintenanceScreen({ feed, route }) {
  const { hosts, hay, loaded, error } = useHosts(feed);
  const [q, setQ] = useState(() => route.params.get("q") || "");
  const draining = useMemo(() => hosts.filter((h) => IN_MAINTENANCE.has(h.state)), [hosts]);

  // With a query, the best matches; without, the locked hosts (those that can enter now).
  const picks = useMemo(() => {
    const query = q.trim().toLowerCase();
    if (!query) return hosts.filter((h) => h.state === "locked").slice(0, PICKS);
    /** @type {[Host, number][]} */
    const scored = [];
    for (const h of hosts) {
      const s = fuzzyScore(query, hay.get(h.id) || "");
      if (s >= 0) scored.push([h, s]);
    }
    scored.sort((a, b) => b[1] - a[1]);
    return scored.slice(0, PICKS).map((x) => x[0]);
  }, [hosts, q]);

  /** @param {string} value */
  function search(value) {
    setQ(value);
    replaceParams("/maintenance", { q: value });
  }

  return html`
    <section class="maint" aria-labelledby="maint-title">
      <div class="screen-head">
        <h1 id="maint-title">${t("maint.title")}</h1>
        <span class="count" data-testid="maint-count">${loaded.done ? t("maint.count", { n: draining.length }) : t("maint.loading")}</span>
      </div>
      ${error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      <section class="maint-card" aria-labelledby="maint-draining">
        <h2 id="maint-draining">${t("maint.draining.title")}</h2>
        ${loaded.done && draining.length === 0 && html`<p class="empty">${t("maint.draining.none")}</p>`}
        ${draining.length > 0 && html`
          <div class="maint-scroll" role="region" tabindex="0" aria-labelledby="maint-draining">
            <table class="maint-table" data-testid="draining">
              <thead><tr>
                <th scope="col">${t("maint.col.host")}</th>
                <th scope="col">${t("maint.col.cluster")}</th>
                <th scope="col">${t("maint.col.state")}</th>
                <th scope="col">${t("maint.col.drain")}</th>
              </tr></thead>
              <tbody>
                ${draining.map((h) => html`<${DrainingRow} key=${h.id} host=${h} feed=${feed} />`)}
              </tbody>
            </table>
          </div>`}
      </section>
      <section class="maint-card" aria-labelledby="maint-pick">
        <h2 id="maint-pick">${t("maint.pick.title")}</h2>
        <p class="hint">${t("maint.pick.hint")}</p>
        <input type="search" class="search" aria-label=${t("maint.pick.search")} placeholder=${t("maint.pick.search")}
          value=${q} onInput=${(/** @type {any} */ e) => search(e.currentTarget.value)} />
        ${loaded.done && picks.length === 0 && html`<p class="empty">${q.trim() ? t("maint.pick.empty") : t("maint.pick.no_locked")}</p>`}
        <ul class="maint-picks" data-testid="picks">
          ${picks.map((h) => html`
            <li key=${h.id} data-host-id=${h.id}>
              <a href=${boardHref(h.id)} aria-label=${t("maint.pick.open", { id: h.id })}>
                <span class="mono" data-raw>${h.id}</span>
                <span class="sub" data-raw>${h.hostname} · ${h.ip} · ${h.cluster_id}</span>
              </a>
              <span class=${`badge state-${h.state}`}>${t(/** @type {any} */ (`state.${h.state}`))}</span>
            </li>`)}
        </ul>
      </section>
    </section>`;
}

/** A host in or entering maintenance, with its drain's progress. */
/** @param {{host: Host, feed: import("./events.js").ChangeFeed}} props */
function DrainingRow({ host, feed }) {
  const { value: drain, error } = useDrain(feed, host.id);
  const total = drain ? drain.items.length : 0;
  return html`
    <tr data-host-id=${host.id} data-state=${host.state}>
      <td>
        <a href=${boardHref(host.id)} class="mono" data-raw>${host.id}</a>
        <span class="sub" data-raw>${host.hostname} · ${host.ip}</span>
      </td>
      <td data-raw>${host.cluster_id}</td>
      <td><span class=${`badge state-${host.state}`}>${t(/** @type {any} */ (`state.${host.state}`))}</span></td>
      <td class="maint-progress-cell">
        ${error && html`<span class="error" data-raw>${error}</span>`}
        ${drain && html`
          <${DrainStatus} drain=${drain} />
          <progress max=${Math.max(total, 1)} value=${total ? doneCount(drain) : 1}
            aria-label=${t("maint.progress", { done: doneCount(drain), total })}></progress>
          <span class="sub">${t("maint.progress", { done: doneCount(drain), total })}</span>`}
      </td>
    </tr>`;
}
