// "Live" while the change feed streams; "stale since HH:MM:SS" from the moment it drops
// until it reconnects (the feed retries by itself).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { clock } from "./format.js";

/** @param {{feed: import("./events.js").ChangeFeed}} props */
export function LiveIndicator({ feed }) {
  const [status, setStatus] = useState(feed.status);
  useEffect(() => feed.onStatus(setStatus), [feed]);
  const text = status.live
    ? t("live.live")
    : t("live.stale", { time: clock(status.staleSince || new Date()) });
  return html`<span class=${`live ${status.live ? "is-live" : "is-stale"}`} role="status"
    data-live=${status.live ? "live" : "stale"}>${text}</span>`;
}
