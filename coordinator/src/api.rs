//! The coordinator's whole HTTP API: every resource's routes (each in its folder's `api`)
//! joined, the web console at `/`, and the OpenAPI document.

use crate::baremetal::api as baremetal;
use crate::baremetal::api::console as baremetal_console;
use crate::devices::api as host_devices;
use crate::events::api as events;
use crate::hosts::api as hosts;
use crate::hosts::api::{
    agent, clusters, enroll, identity as host_identity, metrics as host_metrics,
};
use crate::images::api as images;
use crate::images::api::{agent as agent_images, delete as image_delete, downloads};
use crate::instances::api as instances;
use crate::instances::api::export as instance_export;
use crate::jobs::api as operations;
use crate::jobs::lease::api as coordinators;
use crate::maintenance::api as maintenance;
use crate::network::api::{eips, segments};
use crate::tenants::api as tenants;
use crate::tenants::api::{audit, quotas, sessions, tokens};

use crate::http::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "plinth coordinator API", description = "Physical layer of a private cloud region: hosts, bare metal, images, external segments."),
    paths(
        hosts::list, hosts::show, hosts::lock, hosts::unlock, hosts::agent_facts,
        host_identity::remove, host_identity::certificates, host_identity::revoke,
        host_identity::reenroll,
        clusters::list, clusters::create,
        tenants::list, tenants::create, tenants::show,
        tokens::list, tokens::create, tokens::revoke, tokens::create_enrollment,
        sessions::create, sessions::show, sessions::end,
        enroll::ca, enroll::enroll,
        agent::heartbeat, agent::renew,
        audit::list, coordinators::list,
        images::list, images::show, images::import, images::create, images::upload, images::update,
        images::copy_to_base, images::download_link, downloads::download,
        image_delete::delete_image, image_delete::batch_delete, image_delete::recycle_bin,
        image_delete::restore, image_delete::destroy,
        operations::list, operations::show, events::events,
        instances::create, instances::list, instances::show, instances::start, instances::stop,
        instances::reboot, instances::delete, instances::host_instances, instance_export::export,
        quotas::show, quotas::set, agent_images::fetch, agent_images::upload_export,
        maintenance::status, maintenance::plan, maintenance::enter, maintenance::exit,
        maintenance::migrate, maintenance::migration,
        segments::list, segments::create, segments::show, segments::update, segments::delete,
        segments::set_permissions,
        eips::allocate, eips::list, eips::show, eips::bind, eips::unbind, eips::release,
        eips::network,
        host_devices::usb, host_devices::gpus, host_devices::vgpus, host_devices::assign_usb,
        host_devices::release_usb, host_devices::slice, host_devices::restore,
        host_metrics::host_metrics,
        baremetal::create, baremetal::list, baremetal::show, baremetal::update, baremetal::delete,
        baremetal::batch_delete, baremetal::power, baremetal::import, baremetal::sensors,
        baremetal::events,
        baremetal_console::prepare_console, baremetal_console::release_console,
        baremetal_console::connect,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "hosts", description = "Compute hosts (SPEC §2)"),
        (name = "admin", description = "Clusters, tenants, tokens, audit"),
        (name = "agents", description = "Enrollment and agent calls (mTLS)"),
        (name = "images", description = "Image repository (SPEC §5)"),
        (name = "operations", description = "Long-running work: status, progress and steps"),
        (name = "instances", description = "Instances (SPEC §3)"),
        (name = "segments", description = "External IP segments (SPEC §6)"),
        (name = "eips", description = "EIPs: public addresses tenants allocate from segments (SPEC §6)"),
        (name = "baremetal", description = "Bare-metal servers managed through their BMCs (SPEC §4)"),
        (name = "events", description = "The change feed: state changes as Server-Sent Events"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The browser session cookie of `POST /v1/session`.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::tenants::sessions::COOKIE_NAME,
                "browser session from POST /v1/session; mutating requests also need X-Plinth-Session: 1",
            ))),
        );
    }
}

/// The OpenAPI document as checked in at `docs/openapi.json`.
pub fn openapi_json() -> String {
    // Serialising a derived document cannot fail: every value is a plain string or map.
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(hosts::routes())
        .merge(host_identity::routes())
        .merge(clusters::routes())
        .merge(tenants::routes())
        .merge(tokens::routes())
        .merge(sessions::routes())
        .merge(enroll::routes())
        .merge(agent::routes())
        .merge(audit::routes())
        .merge(coordinators::routes())
        .merge(images::routes())
        .merge(image_delete::routes())
        .merge(downloads::routes())
        .merge(operations::routes())
        .merge(events::routes())
        .merge(instances::routes())
        .merge(maintenance::routes())
        .merge(instance_export::routes())
        .merge(quotas::routes())
        .merge(agent_images::routes())
        .merge(segments::routes())
        .merge(eips::routes())
        .merge(host_devices::routes())
        .merge(host_metrics::routes())
        .merge(baremetal::routes())
        .merge(crate::http::console::routes())
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { ApiError::not_found("route", "requested") })
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_openapi_is_current() {
        let current = super::openapi_json();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            current == checked_in,
            "docs/openapi.json is out of date: run `cargo run -p plinth-coordinator -- openapi > docs/openapi.json`"
        );
    }
}
