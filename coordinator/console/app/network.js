// The External network screen (/network): external segments (外网网段) with the seed's list
// fields and their usage, and the EIPs tenants hold from them. Admins add and change
// segments and say which tenants may use them; a tenant sees the segments it may use and its
// own EIPs. The tab is in the URL (?tab=eips).
import { html } from "./html.js";
import { t } from "./i18n.js";
import { Tabs } from "./ui/tabs.js";
import { useLiveList } from "./live_list.js";
import { useNetworkFeed } from "./network_model.js";
import { SegmentList } from "./network_segments.js";
import { EipList } from "./network_eips.js";

/** @typedef {import("../types/api").components["schemas"]["Segment"]} Segment */
/** @typedef {import("../types/api").components["schemas"]["Eip"]} Eip */

/** @param {import("./shell.js").ScreenProps} props */
export function NetworkScreen({ session, feed, route }) {
  const isAdmin = session.role === "admin";
  const tab = route.params.get("tab") === "eips" ? "eips" : "segments";
  const segments = useLiveList(feed, { path: "/v1/segments", type: "segment" });
  const eips = useLiveList(feed, { path: "/v1/eips", type: "eip" });
  useNetworkFeed(feed, segments);

  const tabs = [
    { id: "segments", label: t("network.tab.segments") },
    { id: "eips", label: t("network.tab.eips") },
  ];
  return html`
    <section class="network" aria-labelledby="network-title">
      <div class="screen-head">
        <h1 id="network-title">${t("network.title")}</h1>
      </div>
      <${Tabs} tabs=${tabs} current=${tab} label=${t("network.tabs")}
        onChange=${(/** @type {string} */ id) => { location.hash = id === "eips" ? "#/network?tab=eips" : "#/network"; }} />
      <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
        ${tab === "segments"
          ? html`<${SegmentList} isAdmin=${isAdmin} list=${segments} />`
          : html`<${EipList} isAdmin=${isAdmin} list=${eips} segments=${segments.items} />`}
      </div>
    </section>`;
}
