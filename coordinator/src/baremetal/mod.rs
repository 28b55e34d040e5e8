//! Bare-metal servers through their BMCs: import, preparation, power and its sync, the serial
//! console.
//!
//! This file holds the operations, the only code that changes a server's state, power or
//! console: the table in `plinth_common::baremetal` says whether a change is legal, the store
//! applies it as a compare-and-swap on (from, to), then the audit entry, then the job. It also
//! holds what the API and the jobs share: which agent reaches a server's BMC, and the
//! credentials that agent gets. The console's operations are in console.rs, the CSV import
//! in import.rs.

pub mod api;
pub mod console;
mod error;
pub mod health;
pub mod import;
pub mod input;
pub mod power;
pub mod prepare;
pub mod store;
pub mod sync;

pub use error::{BaremetalError, BaremetalResult, NO_AGENT};

use crate::agents::AgentEndpoint;
use crate::agents::AgentError;
use crate::baremetal::input::{ServerInput, ValidServer};
use crate::baremetal::store::{
    BaremetalFilter, BaremetalRecord, NewServerRow, PowerJob, PowerParams, Prepared, Swap,
};
use crate::http::auth::Caller;
use crate::http::paging::PageRequest;
use crate::jobs::operations::NewOperation;
use crate::state::AppState;
use anyhow::Context;
use plinth_common::api::{
    AgentBmc, AgentProbe, Baremetal, BaremetalDetail, BaremetalPage, HardwareEventList, Inventory,
    NewBaremetal, Operation, PowerRequest, SensorList, UpdateBaremetal, operation_kinds,
};
use plinth_common::baremetal::{BaremetalEvent, PowerEvent, PowerState};
use plinth_common::ids::{BaremetalId, new_id};
use plinth_common::text::{self, NAME};
use plinth_common::timefmt::now_ms;
use tracing::{info, warn};

/// How often an operation reads a row again that moved under its compare-and-swap before it
/// answers a conflict.
const SWAP_ATTEMPTS: usize = 3;

// ---- services: routing and credentials ----

/// The BMC as the agent gets it: address and credentials, the password unsealed.
pub fn bmc_of(st: &AppState, rec: &BaremetalRecord) -> anyhow::Result<AgentBmc> {
    let password = st
        .images
        .secrets
        .unseal(&rec.password_sealed)
        .with_context(|| format!("unsealing the IPMI password of {}", rec.server.id))?;
    Ok(AgentBmc {
        ip: rec.server.ipmi_ip.clone(),
        port: 623,
        username: rec.username.clone(),
        password,
    })
}

/// The online agent that speaks to this server's BMC, assigning one first when it has none
/// or its agent is offline; `None` when no IPMI agent is online.
pub async fn route(
    st: &AppState,
    rec: &BaremetalRecord,
) -> anyhow::Result<Option<(String, AgentEndpoint)>> {
    let now = now_ms();
    if let Some(host) = &rec.server.agent_host_id
        && let Some(ep) = st.store.agent_endpoint(host, now).await?
        && ep.online
    {
        return Ok(Some((host.clone(), ep)));
    }
    sync::reassign(st).await?;
    let Some(fresh) = st.store.baremetal(&rec.server.id).await? else {
        return Ok(None);
    };
    let Some(host) = fresh.server.agent_host_id else {
        return Ok(None);
    };
    Ok(st
        .store
        .agent_endpoint(&host, now_ms())
        .await?
        .filter(|ep| ep.online)
        .map(|ep| (host, ep)))
}

/// Where an operation reaches a server's BMC: the agent in charge and the credentials.
pub struct Reach {
    pub host: String,
    pub ep: AgentEndpoint,
    pub bmc: AgentBmc,
}

/// [`route`] and [`bmc_of`] for an operation a client waits on.
pub async fn reach(st: &AppState, rec: &BaremetalRecord) -> BaremetalResult<Reach> {
    let (host, ep) = route(st, rec)
        .await
        .map_err(BaremetalError::Internal)?
        .ok_or(BaremetalError::NoAgent)?;
    let bmc = bmc_of(st, rec).map_err(BaremetalError::Internal)?;
    Ok(Reach { host, ep, bmc })
}

/// Whether the agent's error code says it reached (or tried) the BMC and why not: every
/// IPMI failure the agent answers has a `bmc_` code (agent/src/api/error.rs).
pub fn is_bmc_failure(code: &str) -> bool {
    code.starts_with("bmc_")
}

/// The agent's refusal or failure as a tenant reads it: the BMC's own words, or that the
/// agent could not be asked (which agent, and why, go to the log).
pub fn agent_failure(host: &str, err: AgentError) -> BaremetalError {
    match err {
        AgentError::Refused { code, message, .. } if is_bmc_failure(&code) => {
            BaremetalError::Bmc(message)
        }
        other => {
            warn!(agent = %host, error = %other.explain(), "The agent of a bare-metal server could not be asked.");
            BaremetalError::AgentUnreachable
        }
    }
}

// ---- who sees what ----

/// The server if the caller may see it; not found otherwise (tenants learn nothing of others').
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> BaremetalResult<BaremetalRecord> {
    st.store
        .baremetal(id)
        .await?
        .filter(|r| caller.tenant_id().is_none_or(|t| t == r.server.tenant_id))
        .ok_or_else(|| BaremetalError::NotFound(id.to_string()))
}

/// Operations other than delete need a prepared (`running`) server: the table says so.
pub fn require_running(rec: &BaremetalRecord, what: &'static str) -> BaremetalResult<()> {
    rec.server
        .state
        .transition(BaremetalEvent::Operate)
        .map(drop)
        .map_err(|err| BaremetalError::NotAllowed {
            id: rec.server.id.clone(),
            what,
            err,
        })
}

/// The tenant a new server belongs to: a tenant's own, or the one an admin names by email.
async fn owner(st: &AppState, caller: &Caller, email: Option<&str>) -> BaremetalResult<String> {
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    match caller.tenant_id() {
        Some(own) => {
            let tenant = st
                .store
                .get_tenant(own)
                .await?
                .ok_or_else(|| BaremetalError::TenantNotFound(own.to_string()))?;
            if email.is_some_and(|e| !e.eq_ignore_ascii_case(&tenant.email)) {
                return Err(BaremetalError::Forbidden(
                    "a tenant adds bare-metal servers for itself only".into(),
                ));
            }
            Ok(tenant.id)
        }
        None => {
            let email = email.ok_or_else(|| {
                BaremetalError::field("tenant_email", "is required: the tenant the server is for")
            })?;
            st.store
                .tenant_by_email(email)
                .await?
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    BaremetalError::field(
                        "tenant_email",
                        format!("no tenant has the email '{email}'"),
                    )
                })
        }
    }
}

// ---- adding and removing ----

/// A checked server as a new row, its password sealed and its preparation's operation named.
fn new_row(st: &AppState, v: &ValidServer, tenant_id: &str) -> BaremetalResult<NewServerRow> {
    let sealed = st
        .images
        .secrets
        .seal(&v.password)
        .map_err(|e| BaremetalError::Internal(e.into()))?;
    Ok(NewServerRow {
        id: BaremetalId::generate().into_string(),
        name: v.name.clone(),
        tenant_id: tenant_id.to_string(),
        ipmi_ip: v.ipmi_ip.clone(),
        username: v.username.clone(),
        password_sealed: sealed,
        rack_location: v.rack_location.clone(),
        label: v.label.clone(),
        operation_id: new_id("op"),
    })
}

/// What an add records in the audit log: the action, its target and the detail.
struct AuditNote<'a> {
    action: &'a str,
    target: &'a str,
    detail: String,
}

/// Records `rows` (`preparing`) all or none, audits the add, then starts each one's
/// preparation.
async fn add_rows(
    st: &AppState,
    caller: &Caller,
    rows: &[NewServerRow],
    note: AuditNote<'_>,
) -> BaremetalResult<()> {
    st.store
        .create_baremetal(rows, now_ms())
        .await?
        .map_err(|holders| BaremetalError::bmc_taken(caller, holders))?;
    st.store
        .audit(&caller.actor(), note.action, note.target, &note.detail)
        .await?;
    for row in rows {
        let job = prepare::prepare(st.clone(), row.id.clone());
        crate::jobs::lease::run(st, &row.operation_id, "bare-metal preparation", job);
    }
    Ok(())
}

/// Adds one server: recorded `preparing` at once; its agent then reaches the BMC.
pub async fn add(st: &AppState, caller: &Caller, req: NewBaremetal) -> BaremetalResult<Baremetal> {
    let v = input::check(&ServerInput {
        name: &req.name,
        ipmi_ip: &req.ipmi_ip,
        username: &req.ipmi_username,
        password: &req.ipmi_password,
        rack_location: &req.rack_location,
        label: req.label.as_deref(),
    })
    .map_err(|errors| {
        let (field, message) = errors.into_iter().next().unwrap_or(("body", String::new()));
        BaremetalError::field(field, message)
    })?;
    let tenant_id = owner(st, caller, req.tenant_email.as_deref()).await?;
    let row = new_row(st, &v, &tenant_id)?;
    let note = AuditNote {
        action: "add baremetal",
        target: &row.id,
        detail: format!("{} at {} for {tenant_id}", v.name, v.ipmi_ip),
    };
    add_rows(st, caller, std::slice::from_ref(&row), note).await?;
    Ok(find(st, caller, &row.id).await?.server)
}

/// Stops managing the server (allowed in every state); its power is never touched, and its
/// agent is asked to close its session with the BMC.
pub async fn remove(st: &AppState, caller: &Caller, id: &str) -> BaremetalResult<()> {
    find(st, caller, id).await?;
    let Some(rec) = st.store.delete_baremetal(id).await? else {
        return Err(BaremetalError::NotFound(id.to_string()));
    };
    st.store
        .audit(&caller.actor(), "delete baremetal", id, &rec.server.ipmi_ip)
        .await?;
    if let Some(host) = rec.server.agent_host_id.clone() {
        let st = st.clone();
        st.jobs.clone().spawn("bmc forget", async move {
            sync::forget_on(&st, &host, &rec).await
        });
    }
    Ok(())
}

/// Removes each of `ids` on its own: one outcome per id, in order.
pub async fn remove_many(
    st: &AppState,
    caller: &Caller,
    ids: Vec<String>,
) -> BaremetalResult<Vec<(String, BaremetalResult<()>)>> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(BaremetalError::field("ids", "must list 1-1000 ids"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = match id.parse::<BaremetalId>() {
            Ok(typed) => remove(st, caller, &typed).await,
            Err(e) => Err(BaremetalError::field("ids", format!("'{id}' {e}"))),
        };
        out.push((id, outcome));
    }
    Ok(out)
}

// ---- reading ----

/// One page of the servers `filter` matches (its `limit` and `after` are `page`'s).
pub async fn list(
    st: &AppState,
    filter: &BaremetalFilter,
    page: &PageRequest<i64>,
) -> BaremetalResult<BaremetalPage> {
    let (rows, total) = st.store.list_baremetal(filter).await?;
    let (items, next_cursor) = page.finish_keyed(rows);
    Ok(BaremetalPage {
        items,
        total,
        next_cursor,
    })
}

/// One server with its recent power changes and its inventory (a note until it is read).
pub async fn show(st: &AppState, caller: &Caller, id: &str) -> BaremetalResult<BaremetalDetail> {
    let rec = find(st, caller, id).await?;
    let power_history = st.store.baremetal_power_history(id, 20).await?;
    let inventory = st
        .store
        .baremetal_inventory(id)
        .await?
        .unwrap_or_else(|| Inventory {
            source: "unknown".into(),
            note: Some("not read yet: it is read from Redfish once the server is running".into()),
            ..Inventory::default()
        });
    Ok(BaremetalDetail {
        server: rec.server,
        power_history,
        inventory,
    })
}

/// The server's sensors and health as the health sweep last read them.
pub async fn sensors(st: &AppState, caller: &Caller, id: &str) -> BaremetalResult<SensorList> {
    find(st, caller, id).await?;
    Ok(st.store.baremetal_sensors(id).await?)
}

/// The server's event-log entries plinth kept, newest first, `limit` at most.
pub async fn hardware_events(
    st: &AppState,
    caller: &Caller,
    id: &str,
    limit: u32,
) -> BaremetalResult<HardwareEventList> {
    find(st, caller, id).await?;
    let items = st.store.baremetal_hw_events(id, limit).await?;
    Ok(HardwareEventList { items })
}

// ---- changing ----

/// Rack location and label, the only fields that change; an empty label clears it.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    id: &str,
    req: &UpdateBaremetal,
) -> BaremetalResult<Baremetal> {
    if req.rack_location.is_none() && req.label.is_none() {
        return Err(BaremetalError::field(
            "body",
            "give rack_location or label: nothing else can change",
        ));
    }
    let checked = |field, value: &str| {
        text::check(NAME, value)
            .map(drop)
            .map_err(|m| BaremetalError::field(field, m))
    };
    if let Some(r) = &req.rack_location {
        checked("rack_location", r)?;
    }
    if let Some(l) = req.label.as_deref().filter(|l| !l.trim().is_empty()) {
        checked("label", l)?;
    }
    let rec = find(st, caller, id).await?;
    require_running(&rec, "an update")?;
    let label = req
        .label
        .as_deref()
        .map(|l| Some(l.trim()).filter(|l| !l.is_empty()));
    let rack = req.rack_location.as_deref().map(str::trim);
    st.store.update_baremetal(id, rack, label, now_ms()).await?;
    let detail = serde_json::to_string(req).unwrap_or_default();
    st.store
        .audit(&caller.actor(), "update baremetal", id, &detail)
        .await?;
    Ok(find(st, caller, id).await?.server)
}

/// Accepts one power action: checks the server and that an agent reaches its BMC, writes the
/// operation (one running per server), and starts its job ([`power::run`]); the operation
/// answers how it went.
pub async fn power(
    st: &AppState,
    caller: &Caller,
    id: &str,
    req: &PowerRequest,
) -> BaremetalResult<Operation> {
    let rec = find(st, caller, id).await?;
    require_running(&rec, "a power action")?;
    reach(st, &rec).await?;
    let params = PowerParams::new(req, &caller.actor());
    let op_id = new_id("op");
    let op = NewOperation {
        id: &op_id,
        kind: operation_kinds::BAREMETAL_POWER,
        target_id: id,
        owner_tenant_id: Some(&rec.server.tenant_id),
        now: now_ms(),
    };
    let step = format!("{} asked", power::describe(&params));
    if let Err(running) = st.store.begin_power(&op, &params, &step).await? {
        return Err(BaremetalError::PowerBusy {
            id: id.to_string(),
            operation: running,
        });
    }
    let job = PowerJob {
        op: op_id.clone(),
        server: id.to_string(),
        params,
    };
    crate::jobs::lease::run(st, &op_id, "bare-metal power", power::run(st.clone(), job));
    st.store
        .get_operation(&op_id, None)
        .await?
        .ok_or_else(|| BaremetalError::Internal(anyhow::anyhow!("operation {op_id} vanished")))
}

/// Records what the BMC said about the power (`source`: `action` or `sync`): the table, then
/// the compare-and-swap, read again when the row moved. `None` when the server is gone; the
/// change otherwise (from and to are equal when nothing changed).
pub async fn record_power(
    st: &AppState,
    id: &str,
    event: PowerEvent,
    source: &str,
) -> BaremetalResult<Option<Swap<PowerState>>> {
    let mut last = None;
    for _ in 0..SWAP_ATTEMPTS {
        let Some((_, from, _)) = st.store.baremetal_states(id).await? else {
            return Ok(None);
        };
        let swap = Swap {
            from,
            to: from.transition(event),
        };
        if st
            .store
            .swap_baremetal_power(id, swap, source, now_ms())
            .await?
        {
            return Ok(Some(swap));
        }
        last = Some((swap.from.as_str(), swap.to.as_str()));
    }
    Err(moved(id, "power", last))
}

/// The conflict of a row that kept moving under its compare-and-swap: what it read last
/// and what it was to become.
fn moved(
    id: &str,
    what: &'static str,
    last: Option<(&'static str, &'static str)>,
) -> BaremetalError {
    let (from, to) = last.unwrap_or(("?", "?"));
    BaremetalError::Moved {
        id: id.to_string(),
        what,
        from,
        to,
    }
}

/// How a preparation ended, as the prepare job saw it.
pub enum PrepareOutcome {
    /// The agent reached the BMC (`via` that agent) and read it.
    Prepared { via: String, probe: AgentProbe },
    /// The reason, in words a tenant reads.
    Failed(String),
}

/// Ends a preparation: `preparing` → `running` (with the serial, model and power read) or
/// `failed` (with the reason), by the table and a compare-and-swap, then the audit entry.
/// `false` when there was nothing to end (the server is gone or settled already).
pub async fn finish_prepare(
    st: &AppState,
    id: &str,
    outcome: &PrepareOutcome,
) -> BaremetalResult<bool> {
    let event = match outcome {
        PrepareOutcome::Prepared { .. } => BaremetalEvent::Prepared,
        PrepareOutcome::Failed(_) => BaremetalEvent::PrepareFailed,
    };
    let mut last = None;
    for _ in 0..SWAP_ATTEMPTS {
        let Some((from, power, _)) = st.store.baremetal_states(id).await? else {
            return Ok(false);
        };
        let Ok(to) = from.transition(event) else {
            return Ok(false);
        };
        let row = match outcome {
            PrepareOutcome::Prepared { probe, .. } => Prepared::Ok {
                sn: probe.serial.clone(),
                model: probe.model.clone(),
                manufacturer: probe.manufacturer.clone(),
                power: Swap {
                    from: power,
                    to: power.transition(PowerEvent::read(probe.power_on)),
                },
            },
            PrepareOutcome::Failed(reason) => Prepared::Failed(reason.clone()),
        };
        let state = Swap { from, to };
        if st.store.swap_prepared(id, state, &row, now_ms()).await? {
            audit_prepared(st, id, outcome).await?;
            return Ok(true);
        }
        last = Some((from.as_str(), to.as_str()));
    }
    Err(moved(id, "state", last))
}

async fn audit_prepared(st: &AppState, id: &str, outcome: &PrepareOutcome) -> BaremetalResult<()> {
    match outcome {
        PrepareOutcome::Prepared { via, probe } => {
            let detail = format!(
                "via {via}: sn {}, model {}, cipher suite {}",
                probe.serial.as_deref().unwrap_or("unknown"),
                probe.model.as_deref().unwrap_or("unknown"),
                probe.cipher_suite
            );
            info!(baremetal = %id, agent = %via, "Bare-metal server prepared.");
            st.store
                .audit("coordinator", "baremetal running", id, &detail)
                .await?;
        }
        PrepareOutcome::Failed(reason) => {
            info!(baremetal = %id, reason = %reason, "Bare-metal server failed to prepare.");
            st.store
                .audit("coordinator", "baremetal failed", id, reason)
                .await?;
        }
    }
    Ok(())
}
