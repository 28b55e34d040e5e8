// The segment form's own checks, before anything is sent: the rules of the API that need
// nothing but the form (a CIDR with its host bits zero and a prefix the API takes, a gateway
// inside it that is neither its network nor its IPv4 broadcast address, a VLAN tag, an
// interface name, routes of the segment's family). What needs the region (overlaps, reserved
// ranges) is the API's to say; its answer is shown under the field it names.

/** @typedef {{version: 4 | 6, addr: bigint}} Ip */
/** @typedef {{version: 4 | 6, addr: bigint, prefix: number}} Net */
/** @typedef {{key: import("./i18n.js").Key, vars?: Record<string, string | number>}} Problem */

/** @param {string} text @returns {bigint | null} */
function parse4(text) {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p[0] === "0")) return null;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

/** @param {string} text @returns {bigint | null} */
function parse6(text) {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  /** @type {number[]} */
  let tail = [];
  let s = text;
  // An embedded IPv4 tail (::ffff:192.0.2.1) is two groups.
  if (s.includes(".")) {
    const dot = s.lastIndexOf(":");
    const v4 = parse4(s.slice(dot + 1));
    if (v4 === null) return null;
    tail = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    const head = s.slice(0, dot + 1);
    s = head.endsWith("::") ? head : head.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  /** @param {string} h */
  const groups = (h) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  for (const g of [...head, ...rest]) if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const all = [
    ...head.map((g) => parseInt(g, 16)),
    ...Array(8 - given).fill(0),
    ...rest.map((g) => parseInt(g, 16)),
    ...tail,
  ];
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(g);
  return v;
}

/** An IPv4 or IPv6 address, or null. @param {string} text @returns {Ip | null} */
export function parseIp(text) {
  const s = text.trim();
  if (s.includes(":")) {
    const addr = parse6(s);
    return addr === null ? null : { version: 6, addr };
  }
  const addr = parse4(s);
  return addr === null ? null : { version: 4, addr };
}

/** `a.b.c.d/n` or `x::/n`, host bits as given, or null. @param {string} text @returns {Net | null} */
export function parseNet(text) {
  const s = text.trim();
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > (ip.version === 4 ? 32 : 128)) return null;
  return { version: ip.version, addr: ip.addr, prefix };
}

/** @param {4 | 6} version */
function width(version) {
  return version === 4 ? 32n : 128n;
}

/** The host-bits mask of `net`. @param {Net} net */
function hostMask(net) {
  return (1n << (width(net.version) - BigInt(net.prefix))) - 1n;
}

/** @param {Net} net */
function hasHostBits(net) {
  return (net.addr & hostMask(net)) !== 0n;
}

/** The CIDR's own problem, if any. @param {string} text @returns {Problem | null} */
export function checkCidr(text) {
  if (!text.trim()) return { key: "network.check.required" };
  const net = parseNet(text);
  if (!net) return { key: "network.check.cidr_syntax", vars: { value: text.trim() } };
  if (hasHostBits(net)) return { key: "network.check.cidr_host_bits", vars: { value: text.trim() } };
  const [min, max] = net.version === 4 ? [8, 30] : [16, 126];
  if (net.prefix < min || net.prefix > max) {
    return { key: "network.check.cidr_prefix", vars: { version: net.version, min, max } };
  }
  return null;
}

/**
 * The gateway's problem against `cidr`, if any (none when the CIDR itself is wrong: that is
 * the CIDR's error).
 * @param {string} text @param {string} cidr
 * @returns {Problem | null}
 */
export function checkGateway(text, cidr) {
  if (!text.trim()) return { key: "network.check.required" };
  const ip = parseIp(text);
  if (!ip) return { key: "network.check.ip_syntax", vars: { value: text.trim() } };
  const net = parseNet(cidr);
  if (!net || hasHostBits(net)) return null;
  const mask = hostMask(net);
  if (ip.version !== net.version || (ip.addr & ~mask) !== net.addr) {
    return { key: "network.check.gateway_outside", vars: { value: text.trim(), cidr: cidr.trim() } };
  }
  if (ip.addr === net.addr) return { key: "network.check.gateway_network", vars: { value: text.trim() } };
  if (net.version === 4 && ip.addr === (net.addr | mask)) {
    return { key: "network.check.gateway_broadcast", vars: { value: text.trim() } };
  }
  return null;
}

/** An interface name as Linux takes it. @param {string} text @returns {Problem | null} */
export function checkNic(text) {
  if (!text) return { key: "network.check.required" };
  if (text.length > 15 || text === "." || text === ".." || !/^[\x21-\x7e]+$/.test(text) || /[/:]/.test(text)) {
    return { key: "network.check.nic" };
  }
  return null;
}

/** A VLAN tag, empty for untagged. @param {string} text @returns {Problem | null} */
export function checkVlan(text) {
  const s = text.trim();
  if (!s) return null;
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 4094) return { key: "network.check.vlan" };
  return null;
}

/**
 * The routes of a `specified` policy, one CIDR a line, of the segment's family.
 * @param {string[]} lines @param {string} cidr
 * @returns {Problem | null}
 */
export function checkRoutes(lines, cidr) {
  if (lines.length === 0) return { key: "network.check.routes_empty" };
  const seg = parseNet(cidr);
  const seen = new Set();
  for (const line of lines) {
    const net = parseNet(line);
    if (!net) return { key: "network.check.cidr_syntax", vars: { value: line } };
    if (hasHostBits(net)) return { key: "network.check.cidr_host_bits", vars: { value: line } };
    if (seg && seg.version !== net.version) {
      return { key: "network.check.route_family", vars: { value: line, version: seg.version } };
    }
    const k = `${net.addr}/${net.prefix}`;
    if (seen.has(k)) return { key: "network.check.route_twice", vars: { value: line } };
    seen.add(k);
  }
  return null;
}
