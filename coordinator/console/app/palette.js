// The command palette (Ctrl-K) over hosts, instances, images, bare metal and IPs, and `/`
// to focus the screen's search.

/** @param {{session: import("./app.js").Session, feed: import("./events.js").ChangeFeed}} _props */
export function Palette(_props) {
  return null;
}
