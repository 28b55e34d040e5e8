//! Who is calling. Admins and tenants send `Authorization: Bearer <id>.<secret>`, or a
//! browser sends the session cookie `POST /v1/session` gave it (see `tenants::sessions`);
//! agents present their certificate, whose role the TLS layer put on the request.

use crate::db::{Store, StoreError};
use crate::hosts::store::certificates::Standing;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::tenants::sessions::{self, Session};
use crate::tenants::store::tokens::TokenAuthRow;
use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::request::Parts;
use plinth_common::api::TokenRole;
use plinth_common::ids::random_hex;
use plinth_common::timefmt::now_ms;
use plinth_common::tls::{PeerIdentity, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An authenticated admin or tenant.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin { token_id: String },
    Tenant { token_id: String, tenant_id: String },
}

impl Caller {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin { token_id } => format!("admin:{token_id}"),
            Caller::Tenant {
                token_id,
                tenant_id,
            } => format!("tenant:{tenant_id}:{token_id}"),
        }
    }

    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Caller::Admin { .. } => None,
            Caller::Tenant { tenant_id, .. } => Some(tenant_id),
        }
    }

    /// The tenant a list is for: a tenant's own (asking for another's is forbidden; `what`
    /// names the things listed), or for an admin the one asked for, if any.
    pub fn list_scope(
        &self,
        asked: Option<String>,
        what: &str,
    ) -> Result<Option<String>, ApiError> {
        match self.tenant_id() {
            Some(own) if asked.as_deref().is_some_and(|t| t != own) => Err(ApiError::Forbidden(
                format!("a tenant lists its own {what} only"),
            )),
            Some(own) => Ok(Some(own.to_string())),
            None => Ok(asked),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin { .. } => Ok(()),
            Caller::Tenant { .. } => Err(ApiError::Forbidden(
                "this operation needs an admin token".into(),
            )),
        }
    }
}

/// An admin, or a 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

/// An agent, identified by its client certificate.
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub host_id: String,
}

impl AgentCaller {
    /// Agents act only on their own host.
    pub fn require_host(&self, host_id: &str) -> Result<(), ApiError> {
        if self.host_id == host_id {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the certificate of {} cannot act for host {host_id}",
                self.host_id
            )))
        }
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new `<prefix>-<hex>.<secret>` token: (id, full token, secret hash).
pub fn new_token(prefix: &str) -> (String, String, String) {
    let id = plinth_common::ids::new_id(prefix);
    let secret = random_hex(32);
    let token = format!("{id}.{secret}");
    let hash = hash_secret(&secret);
    (id, token, hash)
}

/// Splits `<id>.<secret>`.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.trim().split_once('.')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// The caller an API token's stored row stands for at `now`: none once it is revoked or
/// expired (the secret is checked by the caller of this).
pub fn token_row_caller(id: &str, row: &TokenAuthRow, now: i64) -> Option<Caller> {
    if row.revoked || row.expires_at.is_some_and(|t| t <= now) {
        return None;
    }
    match (row.role, &row.tenant_id) {
        (TokenRole::Admin, _) => Some(Caller::Admin {
            token_id: id.to_string(),
        }),
        (TokenRole::Tenant, Some(tenant_id)) => Some(Caller::Tenant {
            token_id: id.to_string(),
            tenant_id: tenant_id.clone(),
        }),
        (TokenRole::Tenant, None) => None,
    }
}

/// Who API token `token` (`<id>.<secret>`) is, with the token's expiry; `None` when it is
/// malformed, unknown, wrong, revoked or expired.
pub async fn authenticate_token(
    store: &Store,
    token: &str,
) -> Result<Option<(Caller, Option<i64>)>, StoreError> {
    let Some((id, secret)) = split_token(token) else {
        return Ok(None);
    };
    let Some(row) = store.api_token_auth(id).await? else {
        return Ok(None);
    };
    if !hashes_equal(&row.secret_hash, &hash_secret(secret)) {
        return Ok(None);
    }
    Ok(token_row_caller(id, &row, now_ms()).map(|caller| (caller, row.expires_at)))
}

/// Whether a request with `method` changes something (and so, cookie-authenticated, needs
/// the anti-forgery header).
fn mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session a request's cookie names, or the reason it cannot act: 401 without a live
/// session, 403 `csrf_header_missing` for a mutating request without `X-Plinth-Session: 1`.
async fn cookie_session(
    parts: &Parts,
    state: &AppState,
    cookie: &str,
) -> Result<Session, ApiError> {
    let session = sessions::authenticate(state, cookie)
        .await?
        .ok_or_else(|| ApiError::Unauthorized {
            code: "session_invalid",
            message: "the session ended, expired or is unknown; sign in again".into(),
        })?;
    if mutating(&parts.method)
        && parts
            .headers
            .get(sessions::CSRF_HEADER)
            .is_none_or(|v| v.as_bytes() != b"1")
    {
        return Err(ApiError::Refused {
            code: "csrf_header_missing",
            message: format!(
                "a request made with the session cookie that changes something must carry the header {}: 1",
                "X-Plinth-Session"
            ),
        });
    }
    Ok(session)
}

/// The session cookie's value on a request, if it has one.
fn request_cookie(parts: &Parts) -> Option<&str> {
    sessions::cookie_value(
        parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// A bearer token when the request has an `Authorization` header (the cookie is then not
/// looked at), else the browser session cookie.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return match request_cookie(parts) {
                Some(cookie) => Ok(cookie_session(parts, state, cookie).await?.caller),
                None => Err(ApiError::Unauthenticated(
                    "missing Authorization: Bearer token (or a session cookie)".into(),
                )),
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::Unauthenticated("Authorization must be 'Bearer <token>'".into())
            })?;
        authenticate_token(&state.store, token)
            .await?
            .map(|(caller, _)| caller)
            .ok_or_else(|| ApiError::Unauthenticated("invalid, expired or revoked token".into()))
    }
}

/// The browser session of the request's cookie (bearer tokens do not count here).
impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let cookie = request_cookie(parts).ok_or_else(|| ApiError::Unauthorized {
            code: "session_missing",
            message: "the request carries no session cookie; sign in with POST /v1/session".into(),
        })?;
        cookie_session(parts, state, cookie).await
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}

/// Agents present a certificate the CA signed; it is accepted only while the store holds it
/// as one of the named host's current certificates (not revoked, the host not removed).
impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<PeerIdentity>()
            .cloned()
            .unwrap_or_default();
        let host_id = match peer.role {
            Some(Role::Agent { host_id }) => host_id,
            Some(other) => {
                return Err(ApiError::Forbidden(format!(
                    "agent endpoints accept agent certificates only, not the {other}'s"
                )));
            }
            None => {
                return Err(ApiError::Unauthenticated(
                    "agent endpoints need an agent client certificate".into(),
                ));
            }
        };
        let (Some(serial), Some(expires_at)) = (peer.serial, peer.not_after_ms) else {
            return Err(ApiError::Unauthenticated(
                "the agent certificate carries no serial".into(),
            ));
        };
        let refused = |code, message: String| ApiError::Unauthorized { code, message };
        match state
            .store
            .agent_certificate_standing(&host_id, &serial, expires_at, now_ms())
            .await?
        {
            Standing::Current => Ok(AgentCaller { host_id }),
            Standing::Revoked(reason) => Err(refused(
                "certificate_revoked",
                format!(
                    "certificate {serial} of host {host_id} was revoked ({reason}); the agent must enroll again"
                ),
            )),
            Standing::HostRemoved => Err(refused(
                "host_removed",
                format!("host {host_id} was removed from the region; its certificates are void"),
            )),
            Standing::Unknown => Err(refused(
                "certificate_unknown",
                format!("certificate {serial} is not a current certificate of host {host_id}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_and_hash() {
        let (id, token, hash) = new_token("tok");
        let (got_id, secret) = split_token(&token).expect("well-formed");
        assert_eq!(got_id, id);
        assert!(hashes_equal(&hash, &hash_secret(secret)));
        assert!(!hashes_equal(&hash, &hash_secret("other")));
        assert_eq!(split_token("nodot"), None);
        assert_eq!(split_token(".x"), None);
    }
}
