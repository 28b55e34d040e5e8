//! External segments and EIPs (SPEC §6). The functions here are their operations, the one
//! place that changes them (the API in api/ parses a request and calls one): the request is
//! checked with validate.rs, the store (store/segments.rs, store/eips.rs) applies it in one
//! transaction, and the change is audited. pool.rs sees a segment as a pool of addresses.

pub mod api;
mod error;
pub mod store;

pub mod pool;
pub mod validate;

pub use error::NetworkError;

use crate::http::auth::Caller;
use crate::network::store::eips::{AllocRefused, Allocation, ReleaseRefused};
use crate::network::store::segments::{Permission, SegmentRefused, UnknownTenant};
use crate::network::validate::SegmentInput;
use crate::state::AppState;
use plinth_common::api::{
    AgentNic, Eip, Instance, InstanceAddress, NewEip, NewSegment, Segment, SetSegmentPermission,
    UpdateSegment, Uplink,
};
use plinth_common::ids::{EipId, SegmentId, new_id};
use plinth_common::instance::InstanceState;
use plinth_common::timefmt::now_ms;
use std::net::IpAddr;

/// A refusal of the store about segment `id` (of `cidr`), in the API's words.
fn refused(id: &str, cidr: &str, r: SegmentRefused) -> NetworkError {
    match r {
        SegmentRefused::NotFound => NetworkError::SegmentNotFound(id.to_string()),
        SegmentRefused::Clash(clash) => NetworkError::Clash {
            cidr: cidr.to_string(),
            clash,
        },
        SegmentRefused::GatewayAllocated { eip } => NetworkError::GatewayAllocated(eip),
        SegmentRefused::InUse { eips, allocated } => NetworkError::SegmentInUse {
            id: id.to_string(),
            eips,
            allocated,
        },
    }
}

/// Resolves a permission's tenants (ids or emails) to ids.
async fn permission(st: &AppState, p: &SetSegmentPermission) -> Result<Permission, NetworkError> {
    if p.all_tenants && !p.tenants.is_empty() {
        return Err(NetworkError::invalid(
            "tenants",
            "must be empty when all_tenants is true",
        ));
    }
    match st.store.resolve_tenants(&p.tenants).await? {
        Ok(tenant_ids) => Ok(Permission {
            all_tenants: p.all_tenants,
            tenant_ids,
        }),
        Err(UnknownTenant(unknown)) => Err(NetworkError::invalid(
            "tenants",
            format!("'{unknown}' is neither a tenant id nor a tenant's email"),
        )),
    }
}

/// Adds a segment for `actor`: checked, then recorded unless it clashes with another.
pub async fn create_segment(
    st: &AppState,
    actor: &str,
    req: &NewSegment,
) -> Result<Segment, NetworkError> {
    let spec = validate::spec(&SegmentInput {
        name: &req.name,
        ip_version: req.ip_version,
        cidr: &req.cidr,
        gateway: &req.gateway,
        nic: &req.nic,
        vlan: req.vlan,
        route_policy: req.route_policy,
        routes: &req.routes,
    })?;
    let permission = match &req.permission {
        Some(p) => permission(st, p).await?,
        None => Permission {
            all_tenants: true,
            tenant_ids: Vec::new(),
        },
    };
    let id = new_id("seg");
    let cidr = spec.net.to_string();
    let segment = st
        .store
        .create_segment(&id, &spec, &permission, now_ms())
        .await?
        .map_err(|r| refused(&id, &cidr, r))?;
    let detail = format!(
        "{} {cidr} gateway {} on {} vlan {} routes {}, for {}",
        segment.name,
        segment.gateway,
        segment.nic,
        segment.vlan.map_or("none".to_string(), |v| v.to_string()),
        segment.route_policy,
        segment.permission
    );
    st.store
        .audit(actor, "create segment", &id, &detail)
        .await?;
    Ok(segment)
}

/// Changes segment `id` for `actor`: the request merged into what the segment is, checked
/// whole, then written (bound instances get the new routes and gateway).
pub async fn update_segment(
    st: &AppState,
    actor: &str,
    id: &SegmentId,
    req: &UpdateSegment,
) -> Result<Segment, NetworkError> {
    let current = st
        .store
        .segment_record(id)
        .await?
        .ok_or_else(|| NetworkError::SegmentNotFound(id.to_string()))?;
    let now = &current.spec;
    let cidr = now.net.to_string();
    let gateway = now.gateway.to_string();
    let policy = req.route_policy.unwrap_or(now.route_policy);
    // A new policy drops the old list unless one comes with it.
    let kept: Vec<String> = if policy == now.route_policy {
        now.routes.iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let routes = req.routes.clone().unwrap_or(kept);
    let spec = validate::spec(&SegmentInput {
        name: req.name.as_deref().unwrap_or(&now.name),
        ip_version: None,
        cidr: &cidr,
        gateway: req.gateway.as_deref().unwrap_or(&gateway),
        nic: req.nic.as_deref().unwrap_or(&now.nic),
        vlan: req.vlan.unwrap_or(now.vlan.map(i64::from)),
        route_policy: Some(policy),
        routes: &routes,
    })?;
    let state = req.state.unwrap_or(current.state);
    let segment = st
        .store
        .update_segment(id, &spec, state, now_ms())
        .await?
        .map_err(|r| refused(id, &cidr, r))?;
    let detail = serde_json::to_string(req).unwrap_or_default();
    st.store.audit(actor, "update segment", id, &detail).await?;
    Ok(segment)
}

/// Deletes segment `id` for `actor`; refused while any EIP is allocated from it.
pub async fn delete_segment(
    st: &AppState,
    actor: &str,
    id: &SegmentId,
) -> Result<(), NetworkError> {
    st.store
        .delete_segment(id)
        .await?
        .map_err(|r| refused(id, id, r))?;
    st.store.audit(actor, "delete segment", id, "").await?;
    Ok(())
}

/// Sets who may use segment `id`, for `actor`.
pub async fn set_segment_permission(
    st: &AppState,
    actor: &str,
    id: &SegmentId,
    req: &SetSegmentPermission,
) -> Result<Segment, NetworkError> {
    let permission = permission(st, req).await?;
    let segment = st
        .store
        .set_segment_permission(id, &permission, now_ms())
        .await?
        .ok_or_else(|| NetworkError::SegmentNotFound(id.to_string()))?;
    let detail = segment.permission.to_string();
    st.store
        .audit(actor, "set segment permission", id, &detail)
        .await?;
    Ok(segment)
}

/// Checks an allocation's version and address against each other.
fn requested_address(req: &NewEip) -> Result<Option<IpAddr>, NetworkError> {
    if let Some(v) = req.ip_version.filter(|v| *v != 4 && *v != 6) {
        return Err(NetworkError::invalid(
            "ip_version",
            format!("must be 4 or 6, got {v}"),
        ));
    }
    let address = req
        .address
        .as_deref()
        .map(|a| {
            a.trim().parse::<IpAddr>().map_err(|_| {
                NetworkError::invalid("address", format!("'{a}' is not an IP address"))
            })
        })
        .transpose()?;
    if let (Some(v), Some(a)) = (req.ip_version, address)
        && (v == 4) != a.is_ipv4()
    {
        return Err(NetworkError::invalid(
            "address",
            format!("{a} is not an IPv{v} address"),
        ));
    }
    Ok(address)
}

/// A refusal of the store to allocate, in the API's words, for `caller`.
fn alloc_refused(caller: &Caller, req: &NewEip, r: AllocRefused) -> NetworkError {
    let segment = req.segment_id.as_deref().unwrap_or_default();
    let address = req.address.as_deref().unwrap_or_default();
    match r {
        AllocRefused::SegmentNotFound => NetworkError::SegmentNotFound(segment.to_string()),
        AllocRefused::SegmentDisabled { id } => NetworkError::SegmentDisabled(id),
        AllocRefused::WrongVersion { id, version } => NetworkError::invalid(
            // The version asked for, or the address's.
            if req.ip_version.is_some() {
                "ip_version"
            } else {
                "address"
            },
            format!("segment {id} is not an IPv{version} segment"),
        ),
        AllocRefused::NoSegment { version } => NetworkError::NoSegment(version),
        AllocRefused::Full(full) => NetworkError::SegmentFull(full),
        AllocRefused::AddressOutside => NetworkError::invalid(
            "address",
            format!("{address} is in no available segment this tenant may use"),
        ),
        AllocRefused::AddressReserved { why } => NetworkError::invalid(
            "address",
            format!("{address} is {why} and is never handed out"),
        ),
        AllocRefused::AddressTaken { eip, tenant_id } => NetworkError::AddressTaken {
            address: address.to_string(),
            // Named to an admin and to the tenant that holds it; another tenant's is not.
            holder: caller
                .tenant_id()
                .is_none_or(|own| own == tenant_id)
                .then_some(eip),
        },
    }
}

/// Allocates an EIP for `tenant_id` (by `caller`): from the segment or at the address asked
/// for, else from the tenant's available segment of the version with the most free addresses.
pub async fn allocate_eip(
    st: &AppState,
    caller: &Caller,
    tenant_id: &str,
    req: &NewEip,
) -> Result<Eip, NetworkError> {
    let actor = &caller.actor();
    if st.store.get_tenant(tenant_id).await?.is_none() {
        return Err(NetworkError::invalid(
            "tenant_id",
            format!("no tenant {tenant_id}"),
        ));
    }
    let address = requested_address(req)?;
    let id = new_id("eip");
    let allocation = Allocation {
        id: &id,
        tenant_id,
        segment_id: req.segment_id.as_deref(),
        ip_version: req.ip_version,
        address,
        now: now_ms(),
    };
    let eip = st
        .store
        .allocate_eip(&allocation)
        .await?
        .map_err(|r| alloc_refused(caller, req, r))?;
    let detail = format!(
        "{} from segment {} for tenant {tenant_id}",
        eip.address, eip.segment_id
    );
    st.store.audit(actor, "allocate eip", &id, &detail).await?;
    Ok(eip)
}

/// EIP `id` if a caller of `tenant` (none for an admin) may see it.
pub async fn visible_eip(
    st: &AppState,
    tenant: Option<&str>,
    id: &EipId,
) -> Result<Eip, NetworkError> {
    st.store
        .eip(id)
        .await?
        .filter(|e| tenant.is_none_or(|t| t == e.tenant_id))
        .ok_or_else(|| NetworkError::EipNotFound(id.to_string()))
}

/// The host whose agent holds `inst`'s NICs now (none while it is unplaced); refused while a
/// job moves the instance, whose NICs follow the store once it is settled.
fn nic_host(inst: &Instance) -> Result<Option<&str>, NetworkError> {
    match (inst.state, inst.host_id.as_deref()) {
        (InstanceState::Running | InstanceState::Stopped | InstanceState::Error, host) => Ok(host),
        (_, None) => Ok(None),
        (state, Some(_)) => Err(NetworkError::InstanceBusy {
            id: inst.id.clone(),
            state,
        }),
    }
}

/// Before a bind: the instance can take a NIC on `eip`'s segment where it is.
pub async fn check_pluggable(
    st: &AppState,
    eip: &Eip,
    inst: &Instance,
) -> Result<(), NetworkError> {
    let Some(host) = nic_host(inst)? else {
        return Ok(());
    };
    let segment = st
        .store
        .segment_record(&eip.segment_id)
        .await?
        .ok_or_else(|| NetworkError::SegmentNotFound(eip.segment_id.clone()))?;
    let nics = st.store.with_placement(now_ms(), |hosts| {
        hosts
            .iter()
            .find(|h| h.host_id == host)
            .map(|h| h.nics.clone())
            .unwrap_or_default()
    });
    if !plinth_common::api::has_nic(&nics, &segment.spec.nic) {
        return Err(NetworkError::NicUnavailable {
            host: host.to_string(),
            nic: segment.spec.nic,
            segment: segment.id,
        });
    }
    Ok(())
}

/// After a bind: the instance's domain gets the EIP's NIC (live when it runs). On failure the
/// bind is undone, so the store never holds an EIP the guest was not given.
pub async fn plug(st: &AppState, eip: &Eip, inst: &Instance) -> Result<(), NetworkError> {
    let Some(host) = nic_host(inst)? else {
        return Ok(());
    };
    let attached = async {
        let address = st
            .store
            .instance_addresses(&inst.id)
            .await?
            .into_iter()
            .find(|a| a.eip_id == eip.id)
            .ok_or_else(|| NetworkError::EipNotFound(eip.id.clone()))?;
        let mac = match address.mac.clone() {
            Some(mac) => mac,
            None => st.store.give_mac(&eip.id).await?,
        };
        let nic = agent_nic(address, mac);
        let ep = st
            .store
            .agent_endpoint(host, now_ms())
            .await?
            .ok_or(NetworkError::Agent("reach"))?;
        match st.agents.attach_nic(&ep, &inst.id, &nic).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("instance_not_found") => Ok(()),
            Err(e) => {
                tracing::warn!(instance = %inst.id, eip = %eip.id, error = %e.explain(), "Attaching a NIC failed.");
                Err(NetworkError::Agent("attach"))
            }
        }
    }
    .await;
    if attached.is_err()
        && let Err(e) = st.store.unbind_eip(&eip.id, now_ms()).await
    {
        tracing::error!(eip = %eip.id, error = %e, "Could not undo the bind of an EIP whose NIC failed.");
    }
    attached
}

/// The NIC an agent gives `address` (bound, with `mac`).
pub fn agent_nic(address: InstanceAddress, mac: String) -> AgentNic {
    AgentNic {
        mac,
        uplink: Uplink {
            nic: address.nic,
            vlan: address.vlan,
        },
        address: address.address,
        prefix_len: address.prefix_len,
        gateway: address.gateway,
        routes: address.routes,
    }
}

/// Before an unbind: the NIC with the EIP's MAC comes off the instance where it runs.
async fn unplug(st: &AppState, eip: &Eip) -> Result<(), NetworkError> {
    let Some(instance) = &eip.instance_id else {
        return Ok(());
    };
    let Some(rec) = st.store.instance(instance).await? else {
        return Ok(());
    };
    let Some(host) = nic_host(&rec.instance)? else {
        return Ok(());
    };
    let Some(mac) = st
        .store
        .instance_addresses(instance)
        .await?
        .into_iter()
        .find(|a| a.eip_id == eip.id)
        .and_then(|a| a.mac)
    else {
        return Ok(());
    };
    let ep = st
        .store
        .agent_endpoint(host, now_ms())
        .await?
        .ok_or(NetworkError::Agent("reach"))?;
    match st.agents.detach_nic(&ep, instance, &mac).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("instance_not_found") => Ok(()),
        Err(e) => {
            tracing::warn!(instance = %instance, eip = %eip.id, error = %e.explain(), "Detaching a NIC failed.");
            Err(NetworkError::Agent("detach"))
        }
    }
}

/// Unbinds EIP `id` from its instance (one not bound stays as it is), for `actor` of `tenant`:
/// its NIC comes off the instance first.
pub async fn unbind_eip(
    st: &AppState,
    actor: &str,
    tenant: Option<&str>,
    id: &EipId,
) -> Result<Eip, NetworkError> {
    let before = visible_eip(st, tenant, id).await?;
    unplug(st, &before).await?;
    let eip = st
        .store
        .unbind_eip(id, now_ms())
        .await?
        .ok_or_else(|| NetworkError::EipNotFound(id.to_string()))?;
    if let Some(instance) = before.instance_id {
        let detail = format!("{} from instance {instance}", eip.address);
        st.store.audit(actor, "unbind eip", id, &detail).await?;
    }
    Ok(eip)
}

/// Releases EIP `id` back to its segment, for `actor` of `tenant`; refused while it is bound.
pub async fn release_eip(
    st: &AppState,
    actor: &str,
    tenant: Option<&str>,
    id: &EipId,
) -> Result<(), NetworkError> {
    let eip = visible_eip(st, tenant, id).await?;
    st.store.release_eip(id).await?.map_err(|r| match r {
        ReleaseRefused::NotFound => NetworkError::EipNotFound(id.to_string()),
        ReleaseRefused::Bound { instance_id } => NetworkError::EipBound {
            id: id.to_string(),
            instance_id,
        },
    })?;
    let detail = format!("{} to segment {}", eip.address, eip.segment_id);
    st.store.audit(actor, "release eip", id, &detail).await?;
    Ok(())
}
