//! The agent's mTLS API. Only a certificate with the `coordinator` role gets past the guard;
//! TLS itself has already refused clients without a certificate from the region CA.

mod baremetal;
mod devices;
mod error;
mod facts;
mod hardware;
mod instances;
mod metrics;
mod migration;

pub use error::ApiError;

use crate::runtime::Agent;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use plinth_common::api::agent_routes as r;
use plinth_common::tls::{PeerIdentity, Role};
use std::future::Future;
use std::sync::Arc;

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route(r::FACTS, get(facts::facts))
        .route(r::DEVICES, get(devices::inventory))
        .route(r::USB_ATTACH, post(devices::attach_usb))
        .route(r::USB_DETACH, post(devices::detach_usb))
        .route(r::GPU_SLICE, post(devices::slice))
        .route(r::GPU_RESTORE, post(devices::restore))
        .route(r::METRICS_HISTORY, get(metrics::history))
        .route(r::BMC_PROBE, post(baremetal::probe))
        .route(r::BMC_POWER, post(baremetal::power))
        .route(r::BMC_POWER_STATUS, post(baremetal::power_status))
        .route(r::BMC_FORGET, post(baremetal::forget))
        .route(r::BMC_INVENTORY, post(baremetal::inventory))
        .route(r::BMC_HEALTH, post(hardware::health))
        .route(r::BMC_SOL_ACTIVATE, post(baremetal::sol_activate))
        .route(r::BMC_SOL_DEACTIVATE, post(baremetal::sol_deactivate))
        .route(r::BMC_SOL_IO, post(baremetal::sol_io))
        .route(r::INSTANCES, post(instances::create))
        .route(r::INSTANCE, get(instances::get).delete(instances::delete))
        .route(r::INSTANCE_START, post(instances::start))
        .route(r::INSTANCE_REBOOT, post(instances::reboot))
        .route(r::INSTANCE_STOP, post(instances::stop))
        .route(r::INSTANCE_EXPORT, post(instances::export))
        .route(r::INSTANCE_NICS, post(instances::attach_nic))
        .route(
            r::INSTANCE_NIC,
            axum::routing::delete(instances::detach_nic),
        )
        .route(r::INSTANCE_PREPARE_MIGRATION, post(migration::prepare))
        .route(r::INSTANCE_MIGRATE, post(migration::migrate))
        .route(
            r::INSTANCE_MIGRATION,
            get(migration::status).delete(migration::abort),
        )
        .fallback(|| async { ApiError::RouteNotFound })
        .layer(middleware::from_fn_with_state(
            agent.clone(),
            coordinator_only,
        ))
        .with_state(agent)
}

/// A JSON body, or why it is not one (answered as `invalid_request`).
pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;

/// Runs `work` in its own task to its end, even if the coordinator hangs up meanwhile, and
/// answers its outcome; `worker` names the task when it panics.
pub(crate) async fn detached<T, E>(
    worker: &'static str,
    work: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(outcome) => outcome.map_err(Into::into),
        Err(join) => {
            tracing::error!(worker, error = %join, "Agent API worker failed.");
            Err(ApiError::Worker(worker))
        }
    }
}

/// The job lease's epoch a call carries, if it is a job's.
fn epoch_of(req: &Request) -> Result<Option<i64>, ApiError> {
    let Some(value) = req
        .headers()
        .get(plinth_common::api::agent_routes::EPOCH_HEADER)
    else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|e| *e >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "header {} is not a non-negative whole number",
                plinth_common::api::agent_routes::EPOCH_HEADER
            ))
        })
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
        Some(Role::Coordinator) if revoked => ApiError::CertificateRevoked.into_response(),
        Some(Role::Coordinator) => match epoch_of(&req) {
            Err(e) => e.into_response(),
            Ok(Some(got)) => match agent.fence.admit(got) {
                Ok(()) => next.run(req).await,
                Err(seen) => {
                    tracing::warn!(got, seen, path = %req.uri().path(), "Refused a call of an ended term of the job lease.");
                    ApiError::StaleEpoch { got, seen }.into_response()
                }
            },
            Ok(None) => next.run(req).await,
        },
        Some(other) => ApiError::Forbidden(format!(
            "the agent API accepts the coordinator only, not {other}"
        ))
        .into_response(),
        None => ApiError::Forbidden(
            "the agent API needs a certificate with the coordinator role".into(),
        )
        .into_response(),
    }
}
