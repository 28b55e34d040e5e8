//! Tenants, their quotas, API tokens and the audit log. The functions here are the tokens'
//! operations (the API in api/ parses a request and calls one): TTLs checked against their
//! maximum, the token made, stored and audited.

pub mod api;
mod error;
pub mod sessions;
pub mod store;

pub use error::{TenantError, TtlError};
pub use store::tokens::EnrollmentTokenStatus;

use crate::http::auth::{Caller, new_token};
use crate::state::AppState;
use crate::tenants::store::tokens::NewApiToken;
use plinth_common::api::{CreatedToken, EnrollmentToken, Quota, Tenant, TenantQuota, TokenRole};
use plinth_common::ids::{TenantId, new_id};
use plinth_common::timefmt::{expiry_after, now_ms, parse_duration, rfc3339};
use plinth_common::tls::ca_hash;
use std::time::Duration;

/// The longest an enrollment token may live.
pub const MAX_ENROLLMENT_TTL: Duration = Duration::from_secs(7 * 86_400);

/// A TTL as typed, more than zero and at most `max`.
pub fn bounded_ttl(ttl: &str, max: Duration) -> Result<Duration, TtlError> {
    let d = parse_duration(ttl).map_err(TtlError::Unreadable)?;
    if d.is_zero() {
        return Err(TtlError::Zero);
    }
    if d > max {
        return Err(TtlError::OverMax {
            ttl: ttl.trim().to_string(),
            max: duration_text(max),
        });
    }
    Ok(d)
}

/// An enrollment token's `ttl` as typed, in milliseconds (at most 7 days, so they fit).
pub fn enrollment_ttl_ms(ttl: &str) -> Result<i64, TtlError> {
    let ttl = bounded_ttl(ttl, MAX_ENROLLMENT_TTL)?;
    i64::try_from(ttl.as_millis()).map_err(|_| TtlError::Overflow)
}

/// A TTL as typed, bounded by `max`: the expiry timestamp it gives from `now`.
pub fn expiry(ttl: &str, max: Duration, now: i64) -> Result<i64, TtlError> {
    let d = bounded_ttl(ttl, max)?;
    expiry_after(now, d).ok_or_else(|| TtlError::TooLong(ttl.trim().to_string()))
}

/// `7d`, `36h`, `90s`: the largest whole unit (how a maximum is shown to an operator).
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// Creates a tenant with a new id (its email checked and lower-cased by the caller), for
/// `actor`.
pub async fn create_tenant(
    st: &AppState,
    actor: &str,
    email: &str,
    name: &str,
) -> Result<Tenant, TenantError> {
    let Some(tenant) = st
        .store
        .create_tenant(&new_id("tenant"), email, name)
        .await?
    else {
        let holder = st.store.tenant_id_with_email(email).await?;
        return Err(TenantError::EmailTaken {
            email: email.to_string(),
            holder,
        });
    };
    st.store
        .audit(actor, "create tenant", &tenant.id, email)
        .await?;
    Ok(tenant)
}

/// Tenant `id`'s quota and what it uses of it.
pub async fn quota(st: &AppState, id: &TenantId) -> Result<TenantQuota, TenantError> {
    if st.store.get_tenant(id).await?.is_none() {
        return Err(TenantError::NotFound(id.to_string()));
    }
    let (quota, usage) = st.store.quota(id).await?;
    Ok(TenantQuota {
        tenant_id: id.to_string(),
        quota,
        usage,
    })
}

/// Sets tenant `id`'s quota (limits already checked), for `actor`; what it is now.
pub async fn set_quota(
    st: &AppState,
    actor: &str,
    id: &TenantId,
    q: &Quota,
) -> Result<TenantQuota, TenantError> {
    if st.store.get_tenant(id).await?.is_none() {
        return Err(TenantError::NotFound(id.to_string()));
    }
    st.store.set_quota(id, q).await?;
    let detail = format!(
        "cores {:?}, memory_bytes {:?}, instances {:?}",
        q.cores, q.memory_bytes, q.instances
    );
    st.store.audit(actor, "set quota", id, &detail).await?;
    quota(st, id).await
}

/// An API token to make, its request checked (who may hold it is the caller's to decide).
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub role: TokenRole,
    /// The tenant a tenant token belongs to; none for an admin token.
    pub tenant_id: Option<&'a str>,
    pub name: &'a str,
    pub ttl: Option<&'a str>,
}

/// Makes an API token for `actor`: the tenant must exist and the TTL fit the region's
/// maximum. The secret is in the answer only.
pub async fn create_token(
    st: &AppState,
    actor: &str,
    t: &NewToken<'_>,
) -> Result<CreatedToken, TenantError> {
    if let Some(tenant) = t.tenant_id
        && st.store.get_tenant(tenant).await?.is_none()
    {
        return Err(TenantError::Invalid {
            field: "tenant_id",
            message: format!("tenant {tenant} does not exist"),
        });
    }
    let now = now_ms();
    let expires_at = t
        .ttl
        .map(|ttl| expiry(ttl, st.settings.max_token_ttl, now))
        .transpose()?;
    let (id, token, secret_hash) = new_token("tok");
    let stored = st
        .store
        .insert_api_token(&NewApiToken {
            id: &id,
            secret_hash: &secret_hash,
            role: t.role,
            tenant_id: t.tenant_id,
            name: t.name,
            created_at: now,
            expires_at,
            created_by: actor,
        })
        .await?;
    st.store.audit(actor, "create token", &id, t.name).await?;
    Ok(CreatedToken {
        token: stored,
        secret: token,
    })
}

/// Revokes API token `id` for `caller` (a tenant only its own: another's is "not found").
pub async fn revoke_token(st: &AppState, caller: &Caller, id: &str) -> Result<(), TenantError> {
    if !st
        .store
        .revoke_api_token(id, caller.tenant_id(), now_ms())
        .await?
    {
        return Err(TenantError::TokenNotFound(id.to_string()));
    }
    st.store
        .audit(&caller.actor(), "revoke token", id, "")
        .await?;
    Ok(())
}

/// Whether enrollment token `token_id` with `secret` may be used at `now` (and for which host,
/// if it re-enrolls one). Using it is the enrollment's own transaction.
pub async fn enrollment_token_status(
    st: &AppState,
    token_id: &str,
    secret: &str,
    now: i64,
) -> Result<EnrollmentTokenStatus, TenantError> {
    let hash = crate::http::auth::hash_secret(secret);
    Ok(st
        .store
        .enrollment_token_status(token_id, &hash, now)
        .await?)
}

/// Makes and stores an enrollment token (bound to `host_id` for a re-enrollment); shared by
/// the API and `plinth-coordinator token create`.
pub async fn issue_enrollment_token(
    st: &AppState,
    ttl_ms: i64,
    description: &str,
    actor: &str,
    host_id: Option<&str>,
) -> Result<EnrollmentToken, TenantError> {
    let (id, token, hash) = new_token("enr");
    let now = now_ms();
    let expires_at = u64::try_from(ttl_ms)
        .ok()
        .and_then(|ms| expiry_after(now, Duration::from_millis(ms)))
        .ok_or(TtlError::OutOfRange)?;
    st.store
        .insert_enrollment_token(&id, &hash, description, now, expires_at, host_id)
        .await?;
    let action = match host_id {
        None => "create enrollment token",
        Some(_) => "create re-enrollment token",
    };
    st.store
        .audit(
            actor,
            action,
            host_id.unwrap_or(&id),
            &format!("token {id}; {description}"),
        )
        .await?;
    Ok(EnrollmentToken {
        id,
        token,
        expires_at: rfc3339(expires_at),
        ca_hash: ca_hash(st.ca.cert_pem()).map_err(|e| TenantError::Internal(e.into()))?,
        host_id: host_id.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        let now = 1_700_000_000_000;
        let year = Duration::from_secs(365 * 86_400);
        let cases: [(&str, &str, Duration, Result<i64, &str>); 9] = [
            ("an hour", "1h", year, Ok(now + 3_600_000)),
            (
                "exactly the maximum",
                "365d",
                year,
                Ok(now + 31_536_000_000),
            ),
            (
                "a second over",
                "31536001s",
                year,
                Err("longer than the maximum, 365d"),
            ),
            (
                "the issue's value",
                "99999999999d",
                year,
                Err("longer than the maximum"),
            ),
            ("overflows u64", "213503982334602d", year, Err("too long")),
            ("zero", "0s", year, Err("longer than zero")),
            ("no unit", "10", year, Err("no unit")),
            (
                "enrollment at 7d",
                "7d",
                MAX_ENROLLMENT_TTL,
                Ok(now + 604_800_000),
            ),
            (
                "enrollment at 8d",
                "8d",
                MAX_ENROLLMENT_TTL,
                Err("maximum, 7d"),
            ),
        ];
        for (label, ttl, max, want) in cases {
            match (expiry(ttl, max, now), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{label}"),
                (Err(got), Err(want)) => {
                    assert!(got.to_string().contains(want), "{label}: {got}")
                }
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }
}
