// Unit tests of the segment form's own checks (app/network_check.js): the same rules as the
// API's validation (coordinator/src/network/validate.rs) where they need nothing but the form.
import assert from "node:assert/strict";
import { checkCidr, checkGateway, checkNic, checkRoutes, checkVlan, parseIp } from "../app/network_check.js";

// [label, got, want]
for (const [label, got, want] of [
  ["an IPv4 address", parseIp("203.0.113.1")?.addr, 3405803777n],
  ["an IPv6 address", parseIp("2001:db8::1")?.addr, 0x20010db8000000000000000000000001n],
  ["an IPv4-mapped tail", parseIp("::ffff:1.2.3.4")?.addr, 0xffff01020304n],
  ["an IPv4 tail after ::", parseIp("::1.2.3.4")?.addr, 0x01020304n],
  ["eight groups", parseIp("1:2:3:4:5:6:7:8")?.addr, 0x00010002000300040005000600070008n],
  ["two ::", parseIp("1::2::3"), null],
  ["three octets", parseIp("1.2.3"), null],
  ["a leading zero", parseIp("01.2.3.4"), null],
  ["a /24", checkCidr("203.0.113.0/24"), null],
  ["a /64", checkCidr("2001:db8:1::/64"), null],
  ["no prefix", checkCidr("203.0.113.0")?.key, "network.check.cidr_syntax"],
  ["host bits", checkCidr("203.0.113.1/24")?.key, "network.check.cidr_host_bits"],
  ["a /31", checkCidr("203.0.113.0/31")?.key, "network.check.cidr_prefix"],
  ["a /7", checkCidr("0.0.0.0/7")?.key, "network.check.cidr_prefix"],
  ["a /127", checkCidr("2001:db8::/127")?.key, "network.check.cidr_prefix"],
  ["a gateway inside", checkGateway("203.0.113.1", "203.0.113.0/24"), null],
  ["a gateway outside", checkGateway("198.51.100.1", "203.0.113.0/24")?.key, "network.check.gateway_outside"],
  ["the network address", checkGateway("203.0.113.0", "203.0.113.0/24")?.key, "network.check.gateway_network"],
  ["the broadcast address", checkGateway("203.0.113.255", "203.0.113.0/24")?.key, "network.check.gateway_broadcast"],
  ["an IPv6 gateway", checkGateway("2001:db8:1::1", "2001:db8:1::/64"), null],
  ["an IPv6 gateway outside", checkGateway("2001:db8:2::1", "2001:db8:1::/64")?.key, "network.check.gateway_outside"],
  ["an IPv4 gateway of an IPv6 segment", checkGateway("203.0.113.1", "2001:db8:1::/64")?.key, "network.check.gateway_outside"],
  ["not an address", checkGateway("gw", "203.0.113.0/24")?.key, "network.check.ip_syntax"],
  ["a gateway of a wrong CIDR is the CIDR's error", checkGateway("203.0.113.1", "203.0.113.1/24"), null],
  ["specified routes", checkRoutes(["10.0.2.0/24", "10.0.3.0/24"], "203.0.113.0/24"), null],
  ["no routes", checkRoutes([], "203.0.113.0/24")?.key, "network.check.routes_empty"],
  ["a route of the other family", checkRoutes(["::/0"], "203.0.113.0/24")?.key, "network.check.route_family"],
  ["a route twice", checkRoutes(["10.0.2.0/24", "10.0.2.0/24"], "203.0.113.0/24")?.key, "network.check.route_twice"],
  ["a NIC", checkNic("bond1"), null],
  ["a NIC with ':'", checkNic("eth0:1")?.key, "network.check.nic"],
  ["a NIC of 16 characters", checkNic("a".repeat(16))?.key, "network.check.nic"],
  ["untagged", checkVlan(""), null],
  ["VLAN 100", checkVlan("100"), null],
  ["VLAN 4095", checkVlan("4095")?.key, "network.check.vlan"],
  ["VLAN 0", checkVlan("0")?.key, "network.check.vlan"],
]) {
  assert.equal(got, want, label);
}
console.log("network units: ok");
