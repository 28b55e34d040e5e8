// Unit tests of the console's modules that need no browser: fuzzy matching and the change
// feed's SSE parsing (run by tests/console.rs with node).
import assert from "node:assert/strict";
import { fuzzyScore } from "../app/fuzzy.js";
import { ChangeFeed } from "../app/events.js";
import { parseCsv } from "../app/baremetal_csv.js";

// Fuzzy: [query, text, matches]
for (const [q, text, want] of [
  ["", "anything", true],
  ["host-4f", "host-4f2a 10.0.0.7 az1", true],
  ["h4f2", "host-4f2a", true],
  ["az1", "host-4f2a 10.0.0.7 az1 amd epyc", true],
  ["epycz", "host-4f2a amd epyc", false],
  ["10.0.7", "host-4f2a 10.0.0.7", true],
  ["x", "host", false],
]) {
  assert.equal(fuzzyScore(q, text) >= 0, want, `fuzzyScore(${JSON.stringify(q)}, ${JSON.stringify(text)})`);
}
assert.ok(fuzzyScore("az1", "az1 host") > fuzzyScore("az1", "a-z-1 host"), "a contiguous match ranks first");
assert.ok(fuzzyScore("host-4", "host-4f2a") > fuzzyScore("host-4", "xhost-4"), "a match at a word start ranks higher");

// SSE blocks: events with id/type/data, keep-alive comments, reload, multi-line data.
const feed = new ChangeFeed();
const seen = [];
let reloads = 0;
feed.onEvent((e) => seen.push(e));
feed.onReload(() => reloads++);
feed.dispatch(': keep-alive');
feed.dispatch('id: 7\nevent: host\ndata: {"id":7,"type":"host","resource_id":"host-1","data":{"state":"locked"},"at":1}');
feed.dispatch('id:8\nevent:host\ndata:{"id":8,"type":"host",\ndata:"resource_id":"host-2","data":{},"at":2}');
feed.dispatch('id: 9\nevent: reload\ndata: {"reason":"gone"}');
feed.dispatch('id: 10\nevent: host\ndata: not json');
assert.deepEqual(seen.map((e) => e.resource_id), ["host-1", "host-2"]);
assert.equal(seen[0].data.state, "locked");
assert.equal(reloads, 1);
assert.equal(feed.lastId, 10, "the last id seen, to resume from");
// The bare-metal import's CSV preview: quotes, doubled quotes, CRLF, a quoted newline
// (the record keeps its first line), blank lines left out.
assert.deepEqual(
  parseCsv('Name,IPMIIP\r\n"a, b",10.0.0.1\r\n\r\n"say ""hi""","x\ny"\nlast,'),
  [
    { line: 1, cells: ["Name", "IPMIIP"] },
    { line: 2, cells: ["a, b", "10.0.0.1"] },
    { line: 4, cells: ['say "hi"', "x\ny"] },
    { line: 6, cells: ["last", ""] },
  ],
);
console.log("units: ok");
