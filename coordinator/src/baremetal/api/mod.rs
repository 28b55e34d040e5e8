//! `/v1/baremetal` (SPEC §4): add (one or a CSV file), list with fuzzy search, detail, update
//! rack location and label, power actions, delete (one or a batch). Tenants see, add and
//! operate only their own servers. The coordinator never talks to a BMC: every operation is
//! routed to the server's agent over mTLS. The IPMI password goes in sealed and never out.

pub mod input;

use crate::agents::AgentError;
use crate::baremetal::api::input::{
    self as baremetal_input, CSV_HEADER, MAX_ROWS, ServerInput, ValidServer,
};
use crate::baremetal::prepare::{self as prepare, NO_AGENT};
use crate::baremetal::store::{BaremetalFilter, BaremetalRecord, NewServerRow};
use crate::http::auth::Caller;
use crate::http::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::text::{NAME, text};
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_common::api::{
    AgentPower, Baremetal, BaremetalDetail, BaremetalPage, BatchDelete, BatchItem, ErrorBody,
    ErrorDetail, ImportReport, ImportRow, Inventory, NewBaremetal, PowerRequest, UpdateBaremetal,
};
use plinth_common::baremetal::{BaremetalEvent, BaremetalState, PowerState};
use plinth_common::ids::new_id;
use plinth_common::timefmt::now_ms;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/baremetal", get(list).post(create))
        .route("/v1/baremetal/import", post(import))
        .route("/v1/baremetal/batch-delete", post(batch_delete))
        .route("/v1/baremetal/{id}", get(show).patch(update).delete(delete))
        .route("/v1/baremetal/{id}/power", post(power))
        .route(
            "/v1/baremetal/{id}/console/prepare",
            post(crate::baremetal::console::prepare_console),
        )
        .route(
            "/v1/baremetal/{id}/console/release",
            post(crate::baremetal::console::release_console),
        )
        .route(
            "/v1/baremetal/console/{token}",
            get(crate::baremetal::console::connect),
        )
}

/// The tenant a new server belongs to: a tenant's own, or the one an admin names by email.
async fn owner(st: &AppState, caller: &Caller, email: Option<&str>) -> ApiResult<String> {
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    match caller.tenant_id() {
        Some(own) => {
            let tenant = st
                .store
                .get_tenant(own)
                .await?
                .ok_or_else(|| ApiError::not_found("tenant", own))?;
            if email.is_some_and(|e| !e.eq_ignore_ascii_case(&tenant.email)) {
                return Err(ApiError::Forbidden(
                    "a tenant adds bare-metal servers for itself only".into(),
                ));
            }
            Ok(tenant.id)
        }
        None => {
            let email = email.ok_or_else(|| {
                ApiError::field("tenant_email", "is required: the tenant the server is for")
            })?;
            st.store
                .tenant_by_email(email)
                .await?
                .map(|(id, _)| id)
                .ok_or_else(|| {
                    ApiError::field("tenant_email", format!("no tenant has the email '{email}'"))
                })
        }
    }
}

/// The server if the caller may see it; a 404 otherwise (tenants learn nothing of others').
pub(crate) async fn find(st: &AppState, caller: &Caller, id: &str) -> ApiResult<BaremetalRecord> {
    st.store
        .baremetal(id)
        .await?
        .filter(|r| caller.tenant_id().is_none_or(|t| t == r.server.tenant_id))
        .ok_or_else(|| ApiError::not_found("baremetal", id))
}

/// Operations other than delete need a prepared (`running`) server.
pub(crate) fn require_running(rec: &BaremetalRecord, what: &str) -> ApiResult<()> {
    rec.server
        .state
        .transition(BaremetalEvent::Operate)
        .map(drop)
        .map_err(|e| ApiError::Conflict {
            code: "baremetal_not_running",
            message: format!(
                "bare-metal server {} is {}; {what} needs {}",
                rec.server.id, e.from, e.needs
            ),
        })
}

fn taken(ips: &[String]) -> ApiError {
    ApiError::Conflict {
        code: "bmc_already_managed",
        message: format!(
            "the BMC at {} is managed already; delete that server first",
            ips.join(", ")
        ),
    }
}

fn row_of(v: &ValidServer, tenant_id: &str, sealed: String) -> NewServerRow {
    NewServerRow {
        id: new_id("bm"),
        name: v.name.clone(),
        tenant_id: tenant_id.to_string(),
        ipmi_ip: v.ipmi_ip.clone(),
        username: v.username.clone(),
        password_sealed: sealed,
        rack_location: v.rack_location.clone(),
        label: v.label.clone(),
        operation_id: new_id("op"),
    }
}

fn seal(st: &AppState, password: &str) -> ApiResult<String> {
    st.images
        .secrets
        .seal(password)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Add a bare-metal server: recorded `preparing` at once; its agent then reaches the BMC and
/// it becomes `running` (serial, model, power read) or `failed` with the reason.
#[utoipa::path(post, path = "/v1/baremetal", tag = "baremetal", security(("bearer" = [])), request_body = NewBaremetal,
    responses((status = 202, body = Baremetal), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewBaremetal>,
) -> ApiResult<(StatusCode, ApiJson<Baremetal>)> {
    let v = baremetal_input::check(&ServerInput {
        name: &req.name,
        ipmi_ip: &req.ipmi_ip,
        username: &req.ipmi_username,
        password: &req.ipmi_password,
        rack_location: &req.rack_location,
        label: req.label.as_deref(),
    })
    .map_err(|errors| {
        let (field, message) = errors.into_iter().next().unwrap_or(("body", String::new()));
        ApiError::field(field, message)
    })?;
    let tenant_id = owner(&st, &caller, req.tenant_email.as_deref()).await?;
    let row = row_of(&v, &tenant_id, seal(&st, &v.password)?);
    st.store
        .create_baremetal(std::slice::from_ref(&row), now_ms())
        .await?
        .map_err(|ips| taken(&ips))?;
    let detail = format!("{} at {} for {tenant_id}", v.name, v.ipmi_ip);
    st.store
        .audit(&caller.actor(), "add baremetal", &row.id, &detail)
        .await?;
    st.jobs.spawn(
        "bare-metal preparation",
        prepare::prepare(st.clone(), row.id.clone()),
    );
    let rec = find(&st, &caller, &row.id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(rec.server)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Fuzzy match on name, id, IPMI IP, SN, model, rack location, label and tenant email.
    pub q: Option<String>,
    /// Tenant id (admins only; a tenant always sees its own).
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// List bare-metal servers; tenants see only theirs.
#[utoipa::path(get, path = "/v1/baremetal", tag = "baremetal", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = BaremetalPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<BaremetalPage>> {
    let state = q
        .state
        .as_deref()
        .map(|s| {
            BaremetalState::parse(s).ok_or_else(|| {
                ApiError::field("state", format!("must be {}", BaremetalState::choices()))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1-1000"));
    }
    let tenant = caller.list_scope(q.tenant, "bare-metal servers")?;
    let filter = BaremetalFilter {
        q: q.q,
        tenant,
        state,
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let (items, total) = st.store.list_baremetal(&filter).await?;
    Ok(ApiJson(BaremetalPage { items, total }))
}

/// One server: the list's fields, its recent power changes, and its hardware inventory.
#[utoipa::path(get, path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = BaremetalDetail), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<BaremetalDetail>> {
    let rec = find(&st, &caller, &id).await?;
    let power_history = st.store.baremetal_power_history(&id, 20).await?;
    let inventory = st
        .store
        .baremetal_inventory(&id)
        .await?
        .unwrap_or_else(|| Inventory {
            source: "unknown".into(),
            note: Some("not read yet: it is read from Redfish once the server is running".into()),
            ..Inventory::default()
        });
    Ok(ApiJson(BaremetalDetail {
        server: rec.server,
        power_history,
        inventory,
    }))
}

/// Change the rack location and the label (nothing else may change).
#[utoipa::path(patch, path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])), request_body = UpdateBaremetal,
    responses((status = 200, body = Baremetal), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateBaremetal>,
) -> ApiResult<ApiJson<Baremetal>> {
    if req.rack_location.is_none() && req.label.is_none() {
        return Err(ApiError::field(
            "body",
            "give rack_location or label: nothing else can change",
        ));
    }
    if let Some(r) = &req.rack_location {
        text("rack_location", NAME, r)?;
    }
    if let Some(l) = req.label.as_deref().filter(|l| !l.trim().is_empty()) {
        text("label", NAME, l)?;
    }
    let rec = find(&st, &caller, &id).await?;
    require_running(&rec, "an update")?;
    let label = req
        .label
        .as_deref()
        .map(|l| Some(l.trim()).filter(|l| !l.is_empty()));
    st.store
        .update_baremetal(
            &id,
            req.rack_location.as_deref().map(str::trim),
            label,
            now_ms(),
        )
        .await?;
    let detail = serde_json::to_string(&req).unwrap_or_default();
    st.store
        .audit(&caller.actor(), "update baremetal", &id, &detail)
        .await?;
    Ok(ApiJson(find(&st, &caller, &id).await?.server))
}

/// Stops managing the server; its power is never touched (the machine keeps running).
async fn remove(st: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    find(st, caller, id).await?;
    let Some(rec) = st.store.delete_baremetal(id).await? else {
        return Err(ApiError::not_found("baremetal", id));
    };
    st.store
        .audit(&caller.actor(), "delete baremetal", id, &rec.server.ipmi_ip)
        .await?;
    // The agent closes its session with the BMC; nothing else happens to the machine.
    if let Some(host) = rec.server.agent_host_id.clone() {
        let st = st.clone();
        st.jobs.clone().spawn("bmc forget", async move {
            crate::baremetal::sync::forget_on(&st, &host, &rec).await
        });
    }
    Ok(())
}

/// Delete a server from management (allowed in every state); the machine keeps running and
/// its BMC can be added again, for any tenant.
#[utoipa::path(delete, path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    remove(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove several servers; each id gets its own outcome.
#[utoipa::path(post, path = "/v1/baremetal/batch-delete", tag = "baremetal", security(("bearer" = [])), request_body = BatchDelete,
    responses((status = 200, body = Vec<BatchItem>), (status = 400, body = ErrorBody)))]
pub async fn batch_delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchDelete>,
) -> ApiResult<ApiJson<Vec<BatchItem>>> {
    if req.ids.is_empty() || req.ids.len() > 1000 {
        return Err(ApiError::field("ids", "must list 1-1000 ids"));
    }
    let mut out = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let outcome = remove(&st, &caller, &id).await;
        out.push(BatchItem {
            deleted: outcome.is_ok(),
            error: outcome.err().map(|e| e.detail().1),
            id,
        });
    }
    Ok(ApiJson(out))
}

/// The agent's refusal or failure as an API error.
pub(crate) fn agent_failure(host: &str, err: AgentError) -> ApiError {
    match err {
        AgentError::Refused { code, message, .. } if prepare::is_bmc_failure(&code) => {
            ApiError::Upstream {
                code: "bmc_failed",
                message,
            }
        }
        other => ApiError::Unavailable {
            code: "agent_unreachable",
            message: format!("agent {host}: {}", other.explain()),
        },
    }
}

/// Power: `on`, `off` (soft, ACPI), `reboot` (soft off then on; `hard` for a reset),
/// `force_off`, `cycle`. Answers once the BMC has done it, with the power read after.
#[utoipa::path(post, path = "/v1/baremetal/{id}/power", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])), request_body = PowerRequest,
    responses((status = 200, body = Baremetal), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn power(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PowerRequest>,
) -> ApiResult<ApiJson<Baremetal>> {
    let rec = find(&st, &caller, &id).await?;
    require_running(&rec, "a power action")?;
    let (host, ep) = prepare::route(&st, &rec)
        .await
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::Unavailable {
            code: "no_ipmi_agent",
            message: NO_AGENT.into(),
        })?;
    let bmc = prepare::bmc_of(&st, &rec).map_err(ApiError::Internal)?;
    let answer = st
        .agents
        .bmc_power(
            &ep,
            &AgentPower {
                bmc,
                action: req.action,
                hard: req.hard,
            },
        )
        .await
        .map_err(|e| agent_failure(&host, e))?;
    st.store
        .set_baremetal_power(
            &id,
            PowerState::from_on(answer.power_on),
            "action",
            now_ms(),
        )
        .await?;
    let detail = format!("{}{}", req.action, if req.hard { " (hard)" } else { "" });
    st.store
        .audit(&caller.actor(), "power baremetal", &id, &detail)
        .await?;
    Ok(ApiJson(find(&st, &caller, &id).await?.server))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The tenant the servers are for (admins; a tenant imports for itself).
    pub tenant_email: Option<String>,
}

/// The CSV column each field comes from, for the per-row report.
fn column(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "ipmi_ip" => "IPMIIP",
        "ipmi_username" => "IPMIUsername",
        "ipmi_password" => "IPMIPassword",
        "rack_location" => "RackLocation",
        "label" => "Label",
        _ => "row",
    }
}

fn csv_refused(message: String, rows: Vec<ImportRow>) -> Response {
    let body = serde_json::json!({
        "error": ErrorDetail { code: "invalid_csv".into(), message },
        "rows": rows,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Import servers from CSV (`text/csv`), header exactly
/// `Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label`. Every row is checked first
/// (fields, address syntax, duplicates in the file and against the servers managed); one bad
/// row refuses the file with a per-row report and nothing is imported.
#[utoipa::path(post, path = "/v1/baremetal/import", tag = "baremetal", security(("bearer" = [])), params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 202, body = ImportReport), (status = 400, body = ImportReport), (status = 409, body = ErrorBody)))]
pub async fn import(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    let tenant_id = owner(&st, &caller, q.tenant_email.as_deref()).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::field("csv", "the file is not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = baremetal_input::parse_csv(text)
        .map_err(|line| ApiError::field("csv", format!("line {line}: a quote is never closed")))?;
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return Err(ApiError::field("csv", "the file is empty"));
    };
    if header.join(",") != CSV_HEADER {
        return Err(ApiError::field(
            "csv",
            format!("the header must be exactly '{CSV_HEADER}'"),
        ));
    }
    let rows: Vec<(u64, Vec<String>)> = records
        .filter(|(_, f)| !(f.len() == 1 && f[0].trim().is_empty()))
        .collect();
    if rows.is_empty() {
        return Err(ApiError::field(
            "csv",
            "the file has no rows under the header",
        ));
    }
    if rows.len() > MAX_ROWS {
        return Err(ApiError::field(
            "csv",
            format!("at most {MAX_ROWS} rows per file"),
        ));
    }
    let mut report = Vec::with_capacity(rows.len());
    let mut valid: Vec<Option<ValidServer>> = Vec::with_capacity(rows.len());
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, f) in &rows {
        let mut errors = Vec::new();
        let name = f.first().cloned().unwrap_or_default();
        let checked = if f.len() != 6 {
            errors.push(format!("has {} fields; the header has 6", f.len()));
            None
        } else {
            match baremetal_input::check(&ServerInput {
                name: &f[0],
                ipmi_ip: &f[1],
                username: &f[2],
                password: &f[3],
                rack_location: &f[4],
                label: Some(&f[5]),
            }) {
                Ok(v) => Some(v),
                Err(errs) => {
                    errors.extend(
                        errs.into_iter()
                            .map(|(field, m)| format!("{} {m}", column(field))),
                    );
                    None
                }
            }
        };
        if let Some(v) = &checked
            && let Some(first) = first_line.insert(v.ipmi_ip.clone(), *line)
        {
            errors.push(format!("IPMIIP {} repeats line {first}", v.ipmi_ip));
            first_line.insert(v.ipmi_ip.clone(), first);
        }
        report.push(ImportRow {
            line: *line,
            name,
            errors,
            id: None,
        });
        valid.push(checked);
    }
    let ips: Vec<String> = valid.iter().flatten().map(|v| v.ipmi_ip.clone()).collect();
    let managed = st.store.baremetal_ips_taken(&ips).await?;
    for (row, v) in report.iter_mut().zip(&valid) {
        if let Some(v) = v
            && let Some(id) = managed.get(&v.ipmi_ip)
        {
            row.errors.push(match caller.tenant_id() {
                None => format!("IPMIIP {} is managed already (as {id})", v.ipmi_ip),
                Some(_) => format!("IPMIIP {} is managed already", v.ipmi_ip),
            });
        }
    }
    let bad = report.iter().filter(|r| !r.errors.is_empty()).count();
    if bad > 0 {
        let message = format!(
            "{bad} of {} rows are invalid; nothing was imported",
            report.len()
        );
        return Ok(csv_refused(message, report));
    }
    let mut new_rows = Vec::with_capacity(valid.len());
    for v in valid.iter().flatten() {
        new_rows.push(row_of(v, &tenant_id, seal(&st, &v.password)?));
    }
    st.store
        .create_baremetal(&new_rows, now_ms())
        .await?
        .map_err(|ips| taken(&ips))?;
    for (row, new) in report.iter_mut().zip(&new_rows) {
        row.id = Some(new.id.clone());
    }
    st.store
        .audit(
            &caller.actor(),
            "import baremetal",
            &tenant_id,
            &format!("{} servers", new_rows.len()),
        )
        .await?;
    for new in &new_rows {
        st.jobs.spawn(
            "bare-metal preparation",
            prepare::prepare(st.clone(), new.id.clone()),
        );
    }
    let body = ImportReport {
        imported: new_rows.len() as u64,
        rows: report,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
