// The Bare metal screen (/baremetal, admins and tenants; a tenant sees and adds its own):
// the servers with the seed's eleven columns, kept live from the change feed, instant fuzzy
// search (in the URL), add, CSV import, power actions, the serial console, update, delete
// and batch remove. The detail view is in baremetal_detail.js.
import { useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { fuzzyScore } from "./fuzzy.js";
import { useLiveList } from "./live_list.js";
import { TypedConfirm } from "./ui/dialog.js";
import { BaremetalRow } from "./baremetal_row.js";
import { PowerConfirm, PowerStatus } from "./baremetal_power.js";
import { AddServer, UpdateServer } from "./baremetal_forms.js";
import { ImportServers } from "./baremetal_import.js";
import { SerialConsole } from "./baremetal_console.js";

export { BaremetalDetail } from "./baremetal_detail.js";

/** @typedef {import("../types/api").components["schemas"]["Baremetal"]} Baremetal */
/** @typedef {import("../types/api").components["schemas"]["BatchItem"]} BatchItem */
/** @typedef {import("./baremetal_row.js").RowAction} RowAction */
/** @typedef {import("./baremetal_power.js").PowerRun} PowerRun */
/**
 * @typedef {{kind: "add"} | {kind: "import"} | {kind: "remove", ids: string[]} |
 *   {kind: RowAction, server: Baremetal}} Open
 */

/** @param {Baremetal} b the text the search matches, lower case */
function haystack(b) {
  return [b.name, b.id, b.ipmi_ip, b.sn, b.model, b.rack_location, b.label, b.tenant_email]
    .filter(Boolean).join(" ").toLowerCase();
}

/** @param {Baremetal} a @param {Baremetal} b newest first, then by name */
function byCreated(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** @param {import("./shell.js").ScreenProps} props */
export function BaremetalScreen({ session, feed, route }) {
  const isAdmin = session.role === "admin";
  /** @type {ReturnType<typeof useLiveList<Baremetal>>} */
  const list = useLiveList(feed, { path: "/v1/baremetal", type: "baremetal" });
  const [q, setQ] = useState(() => route.params.get("q") || "");
  const [selected, setSelected] = useState(() => new Set(/** @type {string[]} */ ([])));
  const [open, setOpen] = useState(/** @type {Open | null} */ (null));
  const [run, setRun] = useState(/** @type {PowerRun | null} */ (null));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(/** @type {string | null} */ (null));
  /** @type {[{results: BatchItem[]} | null, (r: {results: BatchItem[]} | null) => void]} */
  const [removed, setRemoved] = useState(/** @type {{results: BatchItem[]} | null} */ (null));

  const servers = useMemo(() => [...list.items].sort(byCreated), [list.items]);
  const shown = useMemo(() => {
    const query = q.trim().toLowerCase();
    if (!query) return servers;
    /** @type {[Baremetal, number][]} */
    const scored = [];
    for (const b of servers) {
      const s = fuzzyScore(query, haystack(b));
      if (s >= 0) scored.push([b, s]);
    }
    scored.sort((a, b) => b[1] - a[1]);
    return scored.map((x) => x[0]);
  }, [servers, q]);

  /** @param {string} value */
  function search(value) {
    setQ(value);
    replaceParams("/baremetal", { q: value });
  }

  /** @param {string} id */
  function select(id) {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  }
  const known = new Set(servers.map((b) => b.id));
  const selectedIds = [...selected].filter((id) => known.has(id));
  const allShownSelected = shown.length > 0 && shown.every((b) => selected.has(b.id));

  /** @param {string[]} ids */
  async function remove(ids) {
    setBusy(true);
    setError(null);
    try {
      /** @type {BatchItem[]} */
      const results = await call("POST", "/v1/baremetal/batch-delete", { ids });
      for (const r of results) if (r.deleted) list.drop(r.id);
      setRemoved({ results });
      setSelected(new Set(results.filter((r) => !r.deleted).map((r) => r.id)));
      setOpen(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  /** @param {string} id */
  async function removeOne(id) {
    setBusy(true);
    setError(null);
    try {
      await call("DELETE", `/v1/baremetal/${encodeURIComponent(id)}`);
      list.drop(id);
      setOpen(null);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const close = () => {
    setOpen(null);
    setError(null);
  };

  /** @param {Open} o */
  function dialog(o) {
    if (o.kind === "add") {
      return html`<${AddServer} isAdmin=${isAdmin} onClose=${close}
        onAdded=${(/** @type {Baremetal} */ b) => {
          list.put(b);
          close();
        }} />`;
    }
    if (o.kind === "import") return html`<${ImportServers} isAdmin=${isAdmin} onClose=${close} onImported=${() => undefined} />`;
    if (o.kind === "remove") {
      return html`<${TypedConfirm} title=${t("bm.remove.title", { n: o.ids.length })} text=${t("bm.remove.text", { n: o.ids.length })}
        expect=${t("bm.remove.confirm_word")} action=${t("bm.remove_selected")} busy=${busy} error=${error}
        onConfirm=${() => remove(o.ids)} onCancel=${close} />`;
    }
    const s = o.server;
    if (o.kind === "console") return html`<${SerialConsole} server=${s} onClose=${close} />`;
    if (o.kind === "update") {
      return html`<${UpdateServer} server=${s} onClose=${close}
        onSaved=${(/** @type {Baremetal} */ b) => {
          list.put(b);
          close();
        }} />`;
    }
    if (o.kind === "delete") {
      return html`<${TypedConfirm} title=${t("bm.delete.title", { name: s.name })} text=${t("bm.delete.text", { name: s.name })}
        expect=${s.name} action=${t("bm.action.delete")} busy=${busy} error=${error}
        onConfirm=${() => removeOne(s.id)} onCancel=${close} />`;
    }
    return html`<${PowerConfirm} server=${s} action=${o.kind}
      onDone=${(/** @type {PowerRun | null} */ r) => {
        close();
        if (r) setRun(r);
      }} />`;
  }

  const failed = removed ? removed.results.filter((r) => !r.deleted) : [];
  return html`
    <section class="bm" aria-labelledby="bm-title">
      <div class="screen-head">
        <h1 id="bm-title">${t("bm.title")}</h1>
        <input type="search" class="search" aria-label=${t("bm.search")} placeholder=${t("bm.search")}
          value=${q} onInput=${(/** @type {any} */ e) => search(e.currentTarget.value)} />
        <span class="count" data-testid="bm-count">
          ${list.loaded ? t("bm.count", { shown: shown.length, total: servers.length }) : t("bm.loading")}
        </span>
      </div>
      ${list.error && html`<p class="error" role="alert" data-raw>${list.error}</p>`}
      <div class="toolbar" role="toolbar" aria-label=${t("bm.batch")}>
        <button type="button" class="primary" data-open="add" onClick=${() => setOpen({ kind: "add" })}>${t("bm.add")}</button>
        <button type="button" data-open="import" onClick=${() => setOpen({ kind: "import" })}>${t("bm.import")}</button>
        <span data-testid="bm-selected">${t("bm.selected", { n: selectedIds.length })}</span>
        <button type="button" data-batch="remove" disabled=${selectedIds.length === 0}
          onClick=${() => setOpen({ kind: "remove", ids: selectedIds })}>${t("bm.remove_selected")}</button>
        <button type="button" class="link" disabled=${selectedIds.length === 0} onClick=${() => setSelected(new Set())}>${t("bm.clear_selection")}</button>
      </div>
      ${run && html`<${PowerStatus} run=${run} feed=${feed} onClose=${() => setRun(null)} />`}
      ${removed && html`
        <section class="results" aria-live="polite" data-testid="bm-removed">
          <h2>${t("bm.remove.result", { ok: removed.results.length - failed.length, failed: failed.length })}</h2>
          <ul>${removed.results.map((r) => html`
            <li class=${r.deleted ? "ok" : "failed"} data-removed=${r.id} data-ok=${r.deleted ? "1" : "0"}>
              <span class="mono" data-raw>${r.id}</span>
              ${r.deleted ? html`<span>${t("bm.remove.ok")}</span>` : html`<span data-raw>${r.error?.message || ""}</span>`}
            </li>`)}</ul>
          <div class="results-actions"><button type="button" onClick=${() => setRemoved(null)}>${t("bm.dismiss")}</button></div>
        </section>`}
      <div class="bm-scroll bm-list">
        <table class="bm-table" aria-labelledby="bm-title" data-testid="bm-list">
          <thead><tr>
            <th scope="col" class="c-select"><input type="checkbox" checked=${allShownSelected} aria-label=${t("bm.select_all")}
              onChange=${() => setSelected(allShownSelected ? new Set() : new Set(shown.map((b) => b.id)))} /></th>
            <th scope="col">${t("bm.col.name")}</th>
            <th scope="col">${t("bm.col.id")}</th>
            <th scope="col">${t("bm.col.state")}</th>
            <th scope="col">${t("bm.col.sn")}</th>
            <th scope="col">${t("bm.col.ipmi_ip")}</th>
            <th scope="col">${t("bm.col.tenant")}</th>
            <th scope="col">${t("bm.col.model")}</th>
            <th scope="col">${t("bm.col.rack")}</th>
            <th scope="col">${t("bm.col.power")}</th>
            <th scope="col">${t("bm.col.console")}</th>
            <th scope="col">${t("bm.col.created")}</th>
            <th scope="col">${t("bm.col.actions")}</th>
          </tr></thead>
          <tbody>
            ${shown.map((b) => html`<${BaremetalRow} key=${b.id} server=${b} selected=${selected.has(b.id)} onSelect=${select}
              onAction=${(/** @type {RowAction} */ kind, /** @type {Baremetal} */ server) => setOpen({ kind, server })} />`)}
          </tbody>
        </table>
        ${list.loaded && shown.length === 0 && html`<p class="empty">${t("bm.empty")}</p>`}
      </div>
      ${open && open.kind !== "remove" && open.kind !== "delete" && error && html`<p class="error" role="alert" data-raw>${error}</p>`}
      ${open && dialog(open)}
    </section>`;
}
