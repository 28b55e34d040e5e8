// The operations drawer: every operation of the region with its live progress.

/** @param {{feed: import("./events.js").ChangeFeed}} _props */
export function OperationsButton(_props) {
  return null;
}
