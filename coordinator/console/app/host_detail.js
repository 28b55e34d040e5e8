// A host's page (/hosts/<id>): basic info, monitoring, the instances on it, its USB devices,
// its GPUs and vGPUs, in tabs; the tab (and the monitoring range, the instance search) live in
// the URL. The host itself is kept current from the change feed.
import { useEffect, useMemo, useState } from "preact/hooks";
import { html } from "./html.js";
import { call } from "./api.js";
import { t } from "./i18n.js";
import { replaceParams } from "./route.js";
import { Tabs } from "./ui/tabs.js";
import { HostInfo } from "./host_info.js";
import { HostMonitoring, RANGES } from "./host_monitoring.js";
import { HostInstances } from "./host_instances.js";
import { HostUsb } from "./host_usb.js";
import { HostGpus } from "./host_gpus.js";

/** @typedef {import("../types/api").components["schemas"]["HostDetail"]} HostDetailT */

const TABS = /** @type {const} */ (["info", "monitoring", "instances", "usb", "gpus"]);

/**
 * The host, read once and again on each of its change-feed events (and on a feed reload).
 * @param {import("./events.js").ChangeFeed} feed
 * @param {string} id
 */
export function useHostDetail(feed, id) {
  const [host, setHost] = useState(/** @type {HostDetailT | null} */ (null));
  const [error, setError] = useState(/** @type {{status: number, message: string} | null} */ (null));
  const ops = useMemo(() => {
    let alive = true;
    async function load() {
      try {
        const h = await call("GET", `/v1/hosts/${encodeURIComponent(id)}`);
        if (!alive) return;
        setHost(h);
        setError(null);
      } catch (err) {
        if (!alive) return;
        setError({ status: /** @type {any} */ (err).status || 0, message: err instanceof Error ? err.message : String(err) });
      }
    }
    /** @param {import("./events.js").ChangeEvent} e */
    function onEvent(e) {
      if (e.type === "host" && e.resource_id === id) load();
    }
    return { load, onEvent, stop: () => { alive = false; } };
  }, [id]);
  useEffect(() => {
    const offEvent = feed.onEvent(ops.onEvent);
    const offReload = feed.onReload(ops.load);
    ops.load();
    return () => {
      ops.stop();
      offEvent();
      offReload();
    };
  }, [feed, ops]);
  return { host, error, reload: ops.load, setHost };
}

/** @param {import("./route.js").Route} route */
function tabOf(route) {
  const want = route.params.get("tab") || "info";
  return /** @type {readonly string[]} */ (TABS).includes(want) ? want : "info";
}

/** @param {import("./route.js").Route} route */
function rangeOf(route) {
  const want = route.params.get("range") || "1h";
  return RANGES.includes(want) ? want : "1h";
}

/**
 * One page per host: another host's URL starts afresh (its tab and search from the URL).
 * @param {import("./shell.js").ScreenProps & {id: string}} props
 */
export function HostDetail(props) {
  return html`<${HostPage} key=${props.id} ...${props} />`;
}

/** @param {import("./shell.js").ScreenProps & {id: string}} props */
function HostPage({ id, feed, route }) {
  const { host, error, reload, setHost } = useHostDetail(feed, id);
  const [tab, setTab] = useState(() => tabOf(route));
  const [range, setRange] = useState(() => rangeOf(route));
  const [q, setQ] = useState(() => route.params.get("q") || "");
  // A navigation (a link, back and forward) brings its own tab, range and search; the
  // changes made here replace the URL without one.
  useEffect(() => {
    setTab(tabOf(route));
    setRange(rangeOf(route));
    setQ(route.params.get("q") || "");
  }, [route]);

  /** @param {{tab?: string, range?: string, q?: string}} next */
  function remember(next) {
    const p = { tab, range, q, ...next };
    replaceParams(`/hosts/${encodeURIComponent(id)}`, {
      tab: p.tab === "info" ? "" : p.tab,
      range: p.tab === "monitoring" && p.range !== "1h" ? p.range : "",
      q: p.tab === "instances" ? p.q : "",
    });
  }

  const tabs = TABS.map((x) => ({ id: x, label: t(/** @type {any} */ (`hd.tab.${x}`)) }));

  if (error && !host) {
    return html`
      <section class="screen host-detail">
        <p><a href="#/hosts">${t("hd.back")}</a></p>
        <p class="error" role="alert">${error.status === 404 ? t("hd.not_found") : t("hd.load_failed")}</p>
        <p class="mono" data-raw>${error.message}</p>
      </section>`;
  }

  return html`
    <section class="screen host-detail" aria-labelledby="hd-title" data-host=${id} data-state=${host ? host.state : ""}>
      <p class="hd-back"><a href="#/hosts">${t("hd.back")}</a></p>
      <div class="screen-head hd-head">
        <h1 id="hd-title">${t("hd.title")} <span class="mono" data-raw>${id}</span></h1>
        ${host && html`
          <span class=${`badge state-${host.state}`} data-testid="hd-state">${t(/** @type {any} */ (`state.${host.state}`))}</span>
          <span class=${`badge agent-${host.agent}`}>${t(/** @type {any} */ (`agent.${host.agent}`))}</span>
          <span class="hd-hostname" data-raw>${host.hostname}</span>`}
      </div>
      <${Tabs} tabs=${tabs} current=${tab} label=${t("hd.tabs")} onChange=${(/** @type {string} */ x) => {
        setTab(x);
        remember({ tab: x });
      }} />
      <div role="tabpanel" id=${`panel-${tab}`} aria-labelledby=${`tab-${tab}`} class="hd-panel" data-panel=${tab}>
        ${!host
          ? html`<p class="empty">${t("hd.loading")}</p>`
          : tab === "info"
            ? html`<${HostInfo} host=${host} feed=${feed} onChanged=${(/** @type {any} */ h) => (h ? setHost({ ...host, ...h }) : reload())} />`
            : tab === "monitoring"
              ? html`<${HostMonitoring} id=${id} range=${range} onRange=${(/** @type {string} */ r) => {
                setRange(r);
                remember({ range: r });
              }} />`
              : tab === "instances"
                ? html`<${HostInstances} id=${id} feed=${feed} q=${q} onSearch=${(/** @type {string} */ v) => {
                  setQ(v);
                  remember({ q: v });
                }} />`
                : tab === "usb"
                  ? html`<${HostUsb} id=${id} feed=${feed} />`
                  : html`<${HostGpus} id=${id} feed=${feed} />`}
      </div>
    </section>`;
}
