// What the network screen keeps current beyond its two live lists: an EIP allocated or
// released changes its segment's usage, which the segment's own events do not carry, so the
// segment is read again (one resource, never the list).
import { useEffect } from "preact/hooks";
import { call } from "./api.js";

/**
 * @param {import("./events.js").ChangeFeed} feed
 * @param {{put: (s: any) => void}} segments the segments' live list
 */
export function useNetworkFeed(feed, segments) {
  useEffect(() => feed.onEvent((e) => {
    if (e.type !== "eip" || !e.data || typeof e.data.segment_id !== "string") return;
    call("GET", `/v1/segments/${encodeURIComponent(e.data.segment_id)}`).then(segments.put, () => {
      // A tenant may no longer see the segment; its list keeps what it had.
    });
  }), [feed, segments.put]);
}
