//! `/v1/baremetal` (SPEC §4): add (one or a CSV file), list with fuzzy search, detail, update
//! rack location and label, power actions, delete (one or a batch). Tenants see, add and
//! operate only their own servers. The coordinator never talks to a BMC: every operation is
//! routed to the server's agent over mTLS. The IPMI password goes in sealed and never out.
//! Each handler parses, calls one operation of `crate::baremetal`, and maps its answer.

pub mod console;

use crate::baremetal::import::{self, Imported};
use crate::baremetal::store::BaremetalFilter;
use crate::http::auth::Caller;
use crate::http::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::paging::{self, PageRequest};
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_common::api::{
    Baremetal, BaremetalDetail, BaremetalPage, BatchDelete, BatchItem, ErrorBody, ErrorDetail,
    HardwareEventList, ImportRefused, ImportReport, NewBaremetal, Operation, PowerRequest,
    SensorList, UpdateBaremetal,
};
use plinth_common::baremetal::BaremetalState;
use plinth_common::ids::BaremetalId;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/baremetal", get(list).post(create))
        .route("/v1/baremetal/import", post(import))
        .route("/v1/baremetal/batch-delete", post(batch_delete))
        .route("/v1/baremetal/{id}", get(show).patch(update).delete(delete))
        .route("/v1/baremetal/{id}/power", post(power))
        .route("/v1/baremetal/{id}/sensors", get(sensors))
        .route("/v1/baremetal/{id}/events", get(events))
        .route(
            "/v1/baremetal/{id}/console/prepare",
            post(console::prepare_console),
        )
        .route(
            "/v1/baremetal/{id}/console/release",
            post(console::release_console),
        )
        .route("/v1/baremetal/console/{token}", get(console::connect))
}

/// Add a bare-metal server: recorded `preparing` at once; its agent then reaches the BMC and
/// it becomes `running` (serial, model, power read) or `failed` with the reason.
#[utoipa::path(post, operation_id = "create_baremetal", path = "/v1/baremetal", tag = "baremetal", security(("bearer" = [])), request_body = NewBaremetal,
    responses((status = 202, body = Baremetal), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewBaremetal>,
) -> ApiResult<(StatusCode, ApiJson<Baremetal>)> {
    let server = crate::baremetal::add(&st, &caller, req).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(server)))
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
    /// Servers on the page, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the page before; leave it out for the first page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The store's filter, for `caller` (a tenant is held to its own servers), and the page
    /// asked for (servers are listed newest first).
    fn filter(self, caller: &Caller) -> ApiResult<(BaremetalFilter, PageRequest<i64>)> {
        let state = self
            .state
            .as_deref()
            .map(|s| {
                BaremetalState::parse(s).ok_or_else(|| {
                    ApiError::field("state", format!("must be {}", BaremetalState::choices()))
                })
            })
            .transpose()?;
        let page = paging::request("baremetal", self.limit, self.cursor.as_deref())?;
        let filter = BaremetalFilter {
            q: self.q,
            tenant: caller.list_scope(self.tenant, "bare-metal servers")?,
            state,
            limit: page.fetch(),
            after: page.after.clone(),
        };
        Ok((filter, page))
    }
}

/// List bare-metal servers; tenants see only theirs.
#[utoipa::path(get, operation_id = "list_baremetal", path = "/v1/baremetal", tag = "baremetal", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = BaremetalPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<BaremetalPage>> {
    let (filter, page) = q.filter(&caller)?;
    Ok(ApiJson(crate::baremetal::list(&st, &filter, &page).await?))
}

/// One server: the list's fields, its recent power changes, and its hardware inventory.
#[utoipa::path(get, operation_id = "show_baremetal", path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = BaremetalDetail), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn show(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
) -> ApiResult<ApiJson<BaremetalDetail>> {
    Ok(ApiJson(crate::baremetal::show(&st, &caller, &id).await?))
}

/// The server's sensors as the last health sweep read them, its health summary, and why the
/// last read failed (null when it worked). A BMC without sensors answers an empty list.
#[utoipa::path(get, operation_id = "baremetal_sensors", path = "/v1/baremetal/{id}/sensors", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = SensorList), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn sensors(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
) -> ApiResult<ApiJson<SensorList>> {
    Ok(ApiJson(crate::baremetal::sensors(&st, &caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Entries to answer, newest first, 1-1000 (default 100).
    pub limit: Option<u32>,
}

/// The entries of the server's BMC event log that plinth kept (the newest 1000), newest
/// first; each entry once, and the entries from before a cleared log stay.
#[utoipa::path(get, operation_id = "baremetal_events", path = "/v1/baremetal/{id}/events", params(("id" = String, Path, description = "bare-metal server id"), EventsQuery), tag = "baremetal", security(("bearer" = [])),
    responses((status = 200, body = HardwareEventList), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn events(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<ApiJson<HardwareEventList>> {
    // The list's limit rules; it has no cursor (one page of the newest).
    let limit = paging::request::<i64>("hardware events", q.limit, None)?.limit;
    Ok(ApiJson(
        crate::baremetal::hardware_events(&st, &caller, &id, limit).await?,
    ))
}

/// Change the rack location and the label (nothing else may change).
#[utoipa::path(patch, operation_id = "update_baremetal", path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])), request_body = UpdateBaremetal,
    responses((status = 200, body = Baremetal), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
    ApiJson(req): ApiJson<UpdateBaremetal>,
) -> ApiResult<ApiJson<Baremetal>> {
    Ok(ApiJson(
        crate::baremetal::update(&st, &caller, &id, &req).await?,
    ))
}

/// Delete a server from management (allowed in every state); the machine keeps running and
/// its BMC can be added again, for any tenant.
#[utoipa::path(delete, operation_id = "delete_baremetal", path = "/v1/baremetal/{id}", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
) -> ApiResult<StatusCode> {
    crate::baremetal::remove(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove several servers; each id gets its own outcome.
#[utoipa::path(post, operation_id = "batch_delete_baremetal", path = "/v1/baremetal/batch-delete", tag = "baremetal", security(("bearer" = [])), request_body = BatchDelete,
    responses((status = 200, body = Vec<BatchItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn batch_delete(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchDelete>,
) -> ApiResult<ApiJson<Vec<BatchItem>>> {
    let outcomes = crate::baremetal::remove_many(&st, &caller, req.ids).await?;
    let items = outcomes
        .into_iter()
        .map(|(id, outcome)| BatchItem {
            deleted: outcome.is_ok(),
            error: outcome.err().map(|e| ApiError::from(e).detail().1),
            id,
        })
        .collect();
    Ok(ApiJson(items))
}

/// Power: `on`, `off` (soft, ACPI), `reboot` (soft off then on; `hard` for a reset),
/// `force_off`, `cycle`. Answers 202 with the operation at once; the operation's steps and
/// status tell when the BMC has done it (`GET /v1/operations/{id}`), and the server's power
/// is read after it. One power action runs per server at a time (409 names the running one).
#[utoipa::path(post, path = "/v1/baremetal/{id}/power", params(("id" = String, Path, description = "bare-metal server id")), tag = "baremetal", security(("bearer" = [])), request_body = PowerRequest,
    responses((status = 202, body = Operation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn power(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<BaremetalId>,
    ApiJson(req): ApiJson<PowerRequest>,
) -> ApiResult<(StatusCode, ApiJson<Operation>)> {
    let op = crate::baremetal::power(&st, &caller, &id, &req).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(op)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The tenant the servers are for (admins; a tenant imports for itself).
    pub tenant_email: Option<String>,
}

/// Import servers from CSV (`text/csv`), header exactly
/// `Name,IPMIIP,IPMIUsername,IPMIPassword,RackLocation,Label`. Every row is checked first
/// (fields, address syntax, duplicates in the file and against the servers managed); one bad
/// row refuses the file with a per-row report and nothing is imported.
#[utoipa::path(post, operation_id = "import_baremetal", path = "/v1/baremetal/import", tag = "baremetal", security(("bearer" = [])), params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 202, body = ImportReport), (status = 400, body = ImportRefused), (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn import(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    match import::import(&st, &caller, q.tenant_email.as_deref(), &body).await? {
        Imported::Added(report) => Ok((StatusCode::ACCEPTED, Json(report)).into_response()),
        Imported::Refused { message, rows } => {
            let body = ImportRefused {
                error: ErrorDetail {
                    code: "invalid_csv".into(),
                    message,
                    field: None,
                },
                rows: Some(rows),
            };
            Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
        }
    }
}
