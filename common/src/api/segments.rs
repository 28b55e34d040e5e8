//! External IP segments and the EIPs tenants draw from them (SPEC §6): the admin records the
//! physical network's segments; tenants allocate addresses and bind them to their instances.

use crate::image::text_enum;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use utoipa::ToSchema;

text_enum!(
    /// What an instance bound to one of the segment's EIPs routes through it: `default`
    /// (0.0.0.0/0 or ::/0), `specified` (the segment's `routes`), or `none` (only the segment
    /// itself is reached through the address).
    RoutePolicy { Default => "default", Specified => "specified", None => "none" }
);

text_enum!(
    /// `available`: tenants may allocate from it. `disabled`: no new allocations; EIPs already
    /// allocated stay and keep working.
    SegmentState { Available => "available", Disabled => "disabled" }
);

text_enum!(
    /// `bound` while the EIP is bound to an instance, else `allocated`.
    EipState { Allocated => "allocated", Bound => "bound" }
);

/// A tenant that may use a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermittedTenant {
    pub id: String,
    pub email: String,
}

/// Who may see and allocate from a segment: every tenant, or the ones listed. A tenant caller
/// sees itself in the list only, never the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SegmentPermission {
    pub all_tenants: bool,
    /// Empty when `all_tenants`.
    pub tenants: Vec<PermittedTenant>,
}

/// One external segment: the seed's list fields plus what is allocated from it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    pub id: String,
    pub name: String,
    /// 4 or 6.
    pub ip_version: u8,
    /// Canonical, e.g. `203.0.113.0/24` or `2001:db8:1::/64`.
    pub cidr: String,
    pub gateway: String,
    /// The hypervisors' interface the segment is reached through, e.g. `bond1`.
    pub nic: String,
    /// 802.1Q tag, 1-4094; none when untagged.
    pub vlan: Option<u16>,
    pub route_policy: RoutePolicy,
    /// The routes an instance gets through an EIP of this segment: `0.0.0.0/0` or `::/0` for
    /// `default`, the admin's list for `specified`, none for `none`.
    pub routes: Vec<String>,
    pub permission: SegmentPermission,
    pub state: SegmentState,
    /// EIPs allocated from it now.
    pub allocated: u64,
    /// How many addresses it can hand out in all (network, gateway, IPv4 broadcast and the
    /// IPv6 reserved anycast addresses excluded), in decimal: an IPv6 /64 holds more than a
    /// JSON number carries exactly.
    pub usable: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Who may use a segment (`PUT /v1/segments/{id}/permissions`, or at create): every tenant, or
/// the tenants listed by id or email. Changing it never touches EIPs already allocated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSegmentPermission {
    pub all_tenants: bool,
    /// Tenant ids or emails; must be empty when `all_tenants`. An empty list with
    /// `all_tenants: false` leaves the segment to no tenant.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// `POST /v1/segments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSegment {
    pub name: String,
    /// 4 or 6; when given it must match the CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// Canonical: host bits zero.
    pub cidr: String,
    /// Inside the CIDR; not its network (or IPv4 broadcast) address.
    pub gateway: String,
    /// A Linux interface name (1-15 characters, no '/', ':' or whitespace).
    pub nic: String,
    /// 1-4094; none when untagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<i64>,
    /// `default` unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_policy: Option<RoutePolicy>,
    /// CIDRs of the segment's family; required with `specified`, refused otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Every tenant unless given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<SetSegmentPermission>,
}

/// `PATCH /v1/segments/{id}`: the fields given change, the others stay. The CIDR and the IP
/// version cannot change (delete the segment and add it anew).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic: Option<String>,
    /// A tag 1-4094, or `null` for untagged; left out, it stays.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>)]
    pub vlan: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_policy: Option<RoutePolicy>,
    /// Replaces the list of a `specified` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SegmentState>,
    #[schema(value_type = Option<String>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<serde_json::Value>,
    #[schema(value_type = Option<u8>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<serde_json::Value>,
}

/// A field that was given, possibly as `null` (`Some(None)`), apart from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One public address a tenant holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Eip {
    pub id: String,
    pub address: String,
    pub ip_version: u8,
    pub segment_id: String,
    pub segment_name: String,
    pub tenant_id: String,
    pub tenant_email: String,
    /// The instance it is bound to.
    pub instance_id: Option<String>,
    pub state: EipState,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EipPage {
    pub items: Vec<Eip>,
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `POST /v1/eips`: an address from a segment the tenant may use. Name a segment, an IP
/// version (4 unless a segment or address says otherwise) or one specific address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEip {
    /// Admins name the tenant; a tenant's own token implies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    /// This address exactly (it must be free and usable in a segment the tenant may use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `POST /v1/eips/{id}/bind`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindEip {
    pub instance_id: String,
}

/// One EIP as the instance's network metadata carries it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceAddress {
    pub eip_id: String,
    pub address: String,
    pub ip_version: u8,
    pub prefix_len: u8,
    pub segment_id: String,
    /// The MAC of the instance's NIC that carries it.
    pub mac: Option<String>,
    pub gateway: String,
    pub nic: String,
    pub vlan: Option<u16>,
    pub route_policy: RoutePolicy,
    /// Destinations the instance reaches through this address and its gateway.
    pub routes: Vec<String>,
}

/// `GET /v1/instances/{id}/network`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceNetwork {
    pub instance_id: String,
    pub addresses: Vec<InstanceAddress>,
}

impl fmt::Display for SegmentPermission {
    /// `all tenants`, or the emails, as the seed's list shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all_tenants {
            return f.write_str("all tenants");
        }
        if self.tenants.is_empty() {
            return f.write_str("no tenant");
        }
        let emails: Vec<&str> = self.tenants.iter().map(|t| t.email.as_str()).collect();
        f.write_str(&emails.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_left_out_null_or_given() {
        let parse =
            |text: &str| -> UpdateSegment { serde_json::from_str(text).expect("an update body") };
        assert_eq!(parse("{}").vlan, None);
        assert_eq!(parse(r#"{"vlan": null}"#).vlan, Some(None));
        assert_eq!(parse(r#"{"vlan": 12}"#).vlan, Some(Some(12)));
    }

    #[test]
    fn permission_shows_emails() {
        let mut p = SegmentPermission {
            all_tenants: true,
            tenants: Vec::new(),
        };
        assert_eq!(p.to_string(), "all tenants");
        p.all_tenants = false;
        assert_eq!(p.to_string(), "no tenant");
        p.tenants = vec![
            PermittedTenant {
                id: "tenant-1".into(),
                email: "a@example.com".into(),
            },
            PermittedTenant {
                id: "tenant-2".into(),
                email: "b@example.com".into(),
            },
        ];
        assert_eq!(p.to_string(), "a@example.com, b@example.com");
    }
}

/// `GET /v1/segments`: a page of segments, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SegmentPage {
    pub items: Vec<Segment>,
    /// How many match in all, on every page.
    pub total: u64,
    /// Pass as `cursor` for the page after this one; null on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}
