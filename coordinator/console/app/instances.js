// The Instances screen (/instances), for admins (every tenant's) and tenants (their own): the
// list kept live from the change feed, instant search and facets in the URL, create; and one
// instance's detail (/instances/<id>) with its actions, migration and EIPs.
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { fuzzyScore } from "./fuzzy.js";
import { dateTime, gib, shortTime } from "./format.js";
import { useLiveList } from "./live_list.js";
import { VirtualList } from "./virtual_list.js";
import { Facet } from "./facet.js";
import { STATES, actionsFor, isBusy, mib, useInstance } from "./instances_model.js";
import { CreateInstance } from "./instance_create.js";
import { DeleteDialog, ExportDialog, MigrateDialog, runAction } from "./instance_actions.js";
import { InstanceEips } from "./instance_eips.js";
import { InstanceMigration } from "./instance_migration.js";

/** @typedef {import("./instances_model.js").Instance} Instance */
/** @typedef {import("./instances_model.js").InstanceAction} InstanceAction */
/** @typedef {"state" | "tenant" | "host"} FacetName */

const ROW_HEIGHT = 44;

/** @param {URLSearchParams} params @param {string} name */
function setParam(params, name) {
  return new Set((params.get(name) || "").split(",").filter(Boolean));
}

/** @param {Instance} i @param {FacetName} f */
function facetValue(i, f) {
  return f === "state" ? i.state : f === "tenant" ? i.tenant_email : i.host_ip || "";
}

/** @param {Instance} i */
function haystack(i) {
  return `${i.name} ${i.id} ${i.tenant_email} ${i.image_id || ""} ${i.host_ip || ""}`.toLowerCase();
}

/** @param {string} state */
function StateBadge(state) {
  return html`<span class=${`badge inst-state-${state}`} data-state=${state}>${t(/** @type {any} */ (`inst.state.${state}`))}</span>`;
}

/** @param {import("./shell.js").ScreenProps} props */
export function InstancesScreen({ session, feed, route }) {
  const isAdmin = session.role === "admin";
  const list = useLiveList(feed, { path: "/v1/instances", type: "instance", accept: (/** @type {Instance} */ i) => !!i.id });
  const [q, setQ] = useState(() => route.params.get("q") || "");
  /** @type {FacetName[]} */
  const facets = isAdmin ? ["state", "tenant", "host"] : ["state"];
  const [chosen, setChosen] = useState(() => ({
    state: setParam(route.params, "state"),
    tenant: setParam(route.params, "tenant"),
    host: setParam(route.params, "host"),
  }));
  const [creating, setCreating] = useState(false);
  const [actionError, setActionError] = useState(/** @type {string | null} */ (null));

  /** @param {string} nextQ @param {Record<FacetName, Set<string>>} next */
  function remember(nextQ, next) {
    replaceParams("/instances", {
      q: nextQ,
      state: [...next.state].join(","),
      tenant: [...next.tenant].join(","),
      host: [...next.host].join(","),
    });
  }

  /** @param {FacetName} f @param {string} value */
  function toggle(f, value) {
    const s = new Set(chosen[f]);
    if (s.has(value)) s.delete(value);
    else s.add(value);
    const next = { ...chosen, [f]: s };
    setChosen(next);
    remember(q, next);
  }

  function clearFilters() {
    const next = { state: new Set(), tenant: new Set(), host: new Set() };
    setChosen(next);
    setQ("");
    remember("", next);
  }

  const sorted = useMemo(
    () => [...list.items].sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? -1 : 1)),
    [list.items],
  );

  const matched = useMemo(() => {
    const query = q.trim().toLowerCase();
    if (!query) return sorted;
    /** @type {[Instance, number][]} */
    const scored = [];
    for (const i of sorted) {
      const s = fuzzyScore(query, haystack(i));
      if (s >= 0) scored.push([i, s]);
    }
    scored.sort((a, b) => b[1] - a[1]);
    return scored.map((x) => x[0]);
  }, [sorted, q]);

  /** @param {Instance} i @param {FacetName | null} except */
  const passes = (i, except) =>
    facets.every((f) => f === except || chosen[f].size === 0 || chosen[f].has(facetValue(i, f)));
  const shown = matched.filter((i) => passes(i, null));

  const counts = useMemo(() => {
    /** @type {Record<FacetName, Map<string, number>>} */
    const c = { state: new Map(), tenant: new Map(), host: new Map() };
    for (const i of matched) {
      for (const f of facets) {
        if (!passes(i, f)) continue;
        const v = facetValue(i, f);
        c[f].set(v, (c[f].get(v) || 0) + 1);
      }
    }
    return c;
  }, [matched, chosen]);

  const tenants = [...new Set(list.items.map((i) => i.tenant_email))].sort();
  const hosts = [...new Set(list.items.map((i) => i.host_ip || ""))].filter(Boolean).sort();

  /** @param {"start" | "stop" | "reboot"} action @param {Instance} i */
  async function act(action, i) {
    setActionError(null);
    try {
      list.put(await runAction(action, i.id));
    } catch (err) {
      setActionError(`${i.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  return html`
    <section class="instances" aria-labelledby="inst-title">
      <div class="screen-head">
        <h1 id="inst-title">${t("inst.title")}</h1>
        <input type="search" class="search" aria-label=${t("inst.search")} placeholder=${t("inst.search")}
          value=${q} onInput=${(/** @type {any} */ e) => {
            setQ(e.currentTarget.value);
            remember(e.currentTarget.value, chosen);
          }} />
        <span class="count" data-testid="inst-count">
          ${list.loaded ? t("inst.count", { shown: shown.length, total: list.items.length }) : t("inst.loading")}
        </span>
        <button type="button" class="primary" data-testid="create-open" onClick=${() => setCreating(true)}>${t("inst.create.open")}</button>
      </div>
      ${list.error && html`<p class="error" role="alert" data-raw>${list.error}</p>`}
      ${actionError && html`<p class="error" role="alert" data-raw>${actionError}</p>`}
      <div class="hosts-body">
        <aside class="facets" aria-label=${t("inst.facets")}>
          <${Facet} name="state" title=${t("inst.facet.state")} selected=${chosen.state} onToggle=${(/** @type {string} */ v) => toggle("state", v)}
            values=${STATES.map((s) => ({ value: s, label: t(/** @type {any} */ (`inst.state.${s}`)), count: counts.state.get(s) || 0 }))} />
          ${isAdmin && html`
            <${Facet} name="tenant" title=${t("inst.facet.tenant")} selected=${chosen.tenant} onToggle=${(/** @type {string} */ v) => toggle("tenant", v)}
              values=${tenants.map((x) => ({ value: x, label: x, count: counts.tenant.get(x) || 0, raw: true }))} />
            <${Facet} name="host" title=${t("inst.facet.host")} selected=${chosen.host} onToggle=${(/** @type {string} */ v) => toggle("host", v)}
              values=${hosts.map((x) => ({ value: x, label: x, count: counts.host.get(x) || 0, raw: true }))} />`}
          <button type="button" class="link" onClick=${clearFilters}>${t("inst.facet.clear")}</button>
        </aside>
        <div class="hosts-main">
          <div class="table" role="table" aria-label=${t("inst.title")} aria-rowcount=${shown.length + 1}>
            <div class="row head inst-row" role="row" aria-rowindex="1">
              <span role="columnheader">${t("inst.col.name")}</span>
              <span role="columnheader">${t("inst.col.state")}</span>
              <span role="columnheader" class="c-tenant">${t("inst.col.tenant")}</span>
              <span role="columnheader" class="c-host">${t("inst.col.host")}</span>
              <span role="columnheader" class="c-size">${t("inst.col.size")}</span>
              <span role="columnheader" class="c-image">${t("inst.col.image")}</span>
              <span role="columnheader" class="c-created">${t("inst.col.created")}</span>
              <span role="columnheader">${t("inst.col.actions")}</span>
            </div>
            ${shown.length === 0 && html`<p class="empty">${list.loaded ? t("inst.empty") : ""}</p>`}
            ${shown.length > 0 && html`<${VirtualList} items=${shown} rowHeight=${ROW_HEIGHT} label=${t("inst.title")}
              empty=""
              renderRow=${(/** @type {Instance} */ i, /** @type {number} */ n) => html`
                <div class="row inst-row" role="row" aria-rowindex=${n + 2} key=${i.id} data-instance-id=${i.id} data-state=${i.state}>
                  <span role="cell" class="c-id">
                    <a href=${`#/instances/${encodeURIComponent(i.id)}`} data-raw>${i.name}</a>
                    <span class="sub mono" data-raw>${i.id}</span>
                  </span>
                  <span role="cell">${StateBadge(i.state)}</span>
                  <span role="cell" class="c-tenant" data-raw title=${i.tenant_email}>${i.tenant_email}</span>
                  <span role="cell" class="c-host mono" data-raw>${i.host_ip || "—"}</span>
                  <span role="cell" class="c-size">${t("inst.size", { vcpus: i.vcpus, memory: mib(i.memory_bytes) })}</span>
                  <span role="cell" class="c-image mono" data-raw title=${i.image_id || ""}>${i.image_id || "—"}</span>
                  <span role="cell" class="c-created" data-raw title=${dateTime(i.created_at)}>${shortTime(i.created_at)}</span>
                  <span role="cell" class="c-actions">
                    ${actionsFor(i.state, isAdmin).filter((a) => a === "start" || a === "stop" || a === "reboot").map((a) => html`
                      <button type="button" class="link" data-action=${a}
                        aria-label=${t(/** @type {any} */ (`inst.action.${a}_one`), { name: i.name })}
                        onClick=${() => act(/** @type {"start" | "stop" | "reboot"} */ (a), i)}>${t(/** @type {any} */ (`inst.action.${a}`))}</button>`)}
                  </span>
                </div>`} />`}
          </div>
        </div>
      </div>
      ${creating && html`<${CreateInstance} isAdmin=${isAdmin} onClose=${() => setCreating(false)}
        onCreated=${(/** @type {Instance} */ i) => {
          list.put(i);
          setCreating(false);
        }} />`}
    </section>`;
}

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
export function InstanceDetail({ session, feed, id }) {
  const isAdmin = session.role === "admin";
  const { inst, setInst, error, gone } = useInstance(feed, id);
  /** @type {[InstanceAction | null, (a: InstanceAction | null) => void]} */
  const [dialog, setDialog] = useState(/** @type {InstanceAction | null} */ (null));
  const [actionError, setActionError] = useState(/** @type {string | null} */ (null));
  const [exported, setExported] = useState(/** @type {import("./instances_model.js").Image | null} */ (null));
  const [busy, setBusy] = useState(false);

  if (gone) {
    return html`
      <section class="inst-detail">
        <p class="empty" data-testid="instance-gone">${t("inst.detail.gone")}</p>
        <a href="#/instances">${t("inst.detail.back")}</a>
      </section>`;
  }
  if (!inst) {
    return html`<section class="inst-detail">
      ${error ? html`<p class="error" role="alert" data-raw>${error}</p>` : html`<p class="empty">${t("inst.loading")}</p>`}
    </section>`;
  }

  /** @param {InstanceAction} a */
  async function act(a) {
    if (a !== "start" && a !== "stop" && a !== "reboot") {
      setDialog(a);
      return;
    }
    if (!inst) return;
    setBusy(true);
    setActionError(null);
    try {
      setInst(await runAction(a, inst.id));
    } catch (err) {
      setActionError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const actions = actionsFor(inst.state, isAdmin);
  /** @type {[import("./i18n.js").Key, any][]} */
  const facts = [
    ["inst.col.id", html`<span class="mono" data-raw>${inst.id}</span>`],
    ["inst.col.state", html`${StateBadge(inst.state)}${inst.state_reason ? html` <span class="sub" data-raw>${inst.state_reason}</span>` : ""}`],
    ["inst.col.tenant", html`<span data-raw>${inst.tenant_email}</span>`],
    ["inst.col.host", html`<span class="mono" data-raw data-testid="inst-host">${inst.host_id || "—"}${inst.host_ip ? ` (${inst.host_ip})` : ""}</span>`],
    ["inst.field.vcpus", html`<span data-raw>${inst.vcpus}</span>`],
    ["inst.detail.memory", html`<span data-raw>${mib(inst.memory_bytes)} MiB</span>`],
    ["inst.detail.disk", html`<span data-raw>${gib(inst.disk_bytes)} GiB</span>`],
    ["inst.col.image", html`<span class="mono" data-raw>${inst.image_id || "—"}</span>`],
    ["inst.detail.kind", html`<span>${t(/** @type {any} */ (`inst.kind.${inst.kind}`))}</span>`],
    ["inst.detail.resource", html`<span class="mono" data-raw>${inst.resource_id || "—"}</span>`],
    ["inst.col.created", html`<span data-raw>${dateTime(inst.created_at)}</span>`],
    ["inst.detail.updated", html`<span data-raw>${dateTime(inst.updated_at)}</span>`],
  ];

  return html`
    <section class="inst-detail" aria-labelledby="inst-detail-title" data-instance-id=${inst.id} data-state=${inst.state}>
      <div class="screen-head">
        <a href="#/instances" class="inst-back">${t("inst.detail.back")}</a>
        <h1 id="inst-detail-title" data-raw>${inst.name}</h1>
        ${StateBadge(inst.state)}
        ${isBusy(inst.state) && html`<span class="sub">${t("inst.detail.working")}</span>`}
      </div>
      <div class="toolbar inst-actions" role="toolbar" aria-label=${t("inst.col.actions")}>
        ${(/** @type {InstanceAction[]} */ (["start", "stop", "reboot", "migrate", "export", "delete"]))
          .filter((a) => isAdmin || a !== "migrate")
          .map((a) => html`
            <button type="button" data-action=${a} class=${a === "delete" ? "danger" : ""}
              disabled=${busy || !actions.includes(a)} onClick=${() => act(a)}>${t(/** @type {any} */ (`inst.action.${a}`))}</button>`)}
      </div>
      ${actionError && html`<p class="error" role="alert" data-raw>${actionError}</p>`}
      ${exported && html`<p class="notice" role="status" data-testid="export-started">
        ${t("inst.export.started")} <a href="#/images" data-raw>${exported.name} · ${exported.id}</a></p>`}
      <div class="inst-detail-body">
        <section class="card" aria-labelledby="inst-facts-title">
          <h2 id="inst-facts-title">${t("inst.detail.facts")}</h2>
          <dl class="facts">
            ${facts.map(([k, v]) => html`<dt>${t(k)}</dt><dd>${v}</dd>`)}
          </dl>
        </section>
        <div class="inst-side">
          <${InstanceEips} inst=${inst} isAdmin=${isAdmin} feed=${feed} />
          ${isAdmin && html`<${InstanceMigration} inst=${inst} />`}
        </div>
      </div>
      ${dialog === "migrate" && html`<${MigrateDialog} inst=${inst} onClose=${() => setDialog(null)}
        onDone=${(/** @type {Instance} */ i) => {
          setInst(i);
          setDialog(null);
        }} />`}
      ${dialog === "export" && html`<${ExportDialog} inst=${inst} onClose=${() => setDialog(null)}
        onDone=${(/** @type {import("./instances_model.js").Image} */ img) => {
          setExported(img);
          setDialog(null);
        }} />`}
      ${dialog === "delete" && html`<${DeleteDialog} inst=${inst} onClose=${() => setDialog(null)}
        onDone=${(/** @type {Instance} */ i) => {
          setInst(i);
          setDialog(null);
        }} />`}
    </section>`;
}
