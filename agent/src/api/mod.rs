//! The agent's mTLS API. Only a certificate with the `coordinator` role gets past the guard;
//! TLS itself has already refused clients without a certificate from the region CA.

mod baremetal;
mod devices;
mod facts;
mod instances;
mod metrics;
mod migration;

use crate::runtime::Agent;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_common::api::{ErrorBody, ErrorDetail};
use plinth_common::tls::{PeerIdentity, Role};
use std::sync::Arc;

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/v1/facts", get(facts::facts))
        .route("/v1/devices", get(devices::inventory))
        .route("/v1/devices/usb/{device}/attach", post(devices::attach_usb))
        .route("/v1/devices/usb/{device}/detach", post(devices::detach_usb))
        .route("/v1/devices/gpus/{address}/slice", post(devices::slice))
        .route("/v1/devices/gpus/{address}/restore", post(devices::restore))
        .route("/v1/metrics/history", get(metrics::history))
        .route("/v1/bmc/probe", post(baremetal::probe))
        .route("/v1/bmc/power", post(baremetal::power))
        .route("/v1/bmc/power-status", post(baremetal::power_status))
        .route("/v1/bmc/forget", post(baremetal::forget))
        .route("/v1/bmc/inventory", post(baremetal::inventory))
        .route("/v1/bmc/sol/activate", post(baremetal::sol_activate))
        .route("/v1/bmc/sol/deactivate", post(baremetal::sol_deactivate))
        .route("/v1/bmc/sol/io", post(baremetal::sol_io))
        .route("/v1/instances", post(instances::create))
        .route(
            "/v1/instances/{id}",
            get(instances::get).delete(instances::delete),
        )
        .route("/v1/instances/{id}/start", post(instances::start))
        .route("/v1/instances/{id}/reboot", post(instances::reboot))
        .route("/v1/instances/{id}/stop", post(instances::stop))
        .route("/v1/instances/{id}/export", post(instances::export))
        .route(
            "/v1/instances/{id}/prepare-migration",
            post(migration::prepare),
        )
        .route("/v1/instances/{id}/migrate", post(migration::migrate))
        .route(
            "/v1/instances/{id}/migration",
            get(migration::status).delete(migration::abort),
        )
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "route_not_found",
                "no such route".into(),
            )
        })
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            coordinator_only,
        ))
        .with_state(agent)
}

pub(crate) fn error(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message,
        },
    };
    (status, axum::Json(body)).into_response()
}

async fn coordinator_only(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<PeerIdentity>()
        .cloned()
        .unwrap_or_default();
    let revoked = peer.serial.as_deref().is_some_and(|s| {
        agent
            .revoked_coordinator
            .is_revoked(s, plinth_common::timefmt::now_ms())
    });
    match peer.role {
        Some(Role::Coordinator) if revoked => error(
            StatusCode::FORBIDDEN,
            "certificate_revoked",
            "this coordinator certificate was rotated out; the coordinator presents its new one"
                .into(),
        ),
        Some(Role::Coordinator) => next.run(req).await,
        Some(other) => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the agent API accepts the coordinator only, not {other}"),
        ),
        None => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the agent API needs a certificate with the coordinator role".into(),
        ),
    }
}
