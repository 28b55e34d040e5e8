//! Browser sessions: an API token exchanged (`POST /v1/session`) for a cookie that holds a
//! fresh random secret, never the token. A session acts as its token (same role and tenant;
//! the token's revocation or expiry ends it) and ends on its own after an absolute lifetime
//! or an idle time, whichever comes first, or at `DELETE /v1/session`.
//!
//! Cross-site requests: the cookie is `SameSite=Strict`, and a cookie-authenticated request
//! that changes anything (POST, PUT, PATCH, DELETE) must also carry [`CSRF_HEADER`]`: 1`,
//! which an HTML form or a plain cross-site `fetch` cannot send without a CORS preflight that
//! the coordinator never grants.

use crate::db::StoreError;
use crate::http::auth::{Caller, authenticate_token, hash_secret, new_token};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::tenants::store::sessions::NewSession;
use plinth_common::api::TokenRole;
use plinth_common::timefmt::{now_ms, rfc3339};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// The cookie's name.
pub const COOKIE_NAME: &str = "plinth_session";
/// The header a cookie-authenticated mutating request must carry (value `1`).
pub const CSRF_HEADER: &str = "x-plinth-session";
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(3600);
/// A session's last-seen time is written at most this often (every request would be a write).
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// How long sessions live (`session_ttl`, `session_idle_timeout` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// From login to the session's end, however busy it is.
    pub ttl: Duration,
    /// A session with no request for this long ends.
    pub idle: Duration,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            ttl: DEFAULT_SESSION_TTL,
            idle: DEFAULT_SESSION_IDLE,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A session's times, as stored, and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// The absolute end (login plus the TTL, never past the token's expiry).
    pub expires_at: i64,
    pub last_seen_at: i64,
}

impl SessionTimes {
    /// The times of a session made at `now` for a token that expires at `token_expires_at`.
    pub fn at_login(now: i64, settings: &SessionSettings, token_expires_at: Option<i64>) -> Self {
        let absolute = now.saturating_add(ms(settings.ttl));
        SessionTimes {
            expires_at: token_expires_at.map_or(absolute, |t| t.min(absolute)),
            last_seen_at: now,
        }
    }

    /// When the session ends if no request comes before: the idle end or the absolute end.
    pub fn idle_expires_at(&self, settings: &SessionSettings) -> i64 {
        self.last_seen_at
            .saturating_add(ms(settings.idle))
            .min(self.expires_at)
    }

    /// Whether the session may still be used at `now`.
    pub fn live(&self, settings: &SessionSettings, now: i64) -> bool {
        now < self.idle_expires_at(settings)
    }

    /// Whether a request at `now` should be written down as the session's last-seen time.
    pub fn needs_touch(&self, settings: &SessionSettings, now: i64) -> bool {
        let every = ms(TOUCH_EVERY).min(ms(settings.idle) / 10);
        now.saturating_sub(self.last_seen_at) >= every
    }
}

/// The `Set-Cookie` value that gives the browser session `value` for `max_age`.
pub fn set_cookie(value: &str, max_age: Duration) -> String {
    format!(
        "{COOKIE_NAME}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs().max(1)
    )
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The session cookie's value among the request's `Cookie` headers, if any.
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// `POST /v1/session`: the API token to sign in with (in the body, never in the URL).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// An admin or tenant API token, `<id>.<secret>`.
    pub token: String,
}

/// Who a browser session is, and until when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    /// The session's id (not its secret, which only the cookie holds).
    pub id: String,
    pub role: TokenRole,
    /// The tenant of a tenant session; none for an admin.
    pub tenant_id: Option<String>,
    /// The API token the session was made from.
    pub token_id: String,
    /// The absolute end of the session (RFC 3339).
    pub expires_at: String,
    /// When the session ends if no request comes before (RFC 3339).
    pub idle_expires_at: String,
}

/// Why a session request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid, expired or revoked token")]
    InvalidToken,
    #[error("token: must not be empty")]
    EmptyToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> ApiError {
        match err {
            SessionError::InvalidToken => ApiError::Unauthenticated(err.to_string()),
            SessionError::EmptyToken => ApiError::field("token", "must not be empty"),
            SessionError::Store(e) => e.into(),
        }
    }
}

/// A session authenticated from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub caller: Caller,
    pub times: SessionTimes,
}

impl Session {
    pub fn info(&self, settings: &SessionSettings) -> SessionInfo {
        let (role, tenant_id, token_id) = match &self.caller {
            Caller::Admin { token_id } => (TokenRole::Admin, None, token_id),
            Caller::Tenant {
                token_id,
                tenant_id,
            } => (TokenRole::Tenant, Some(tenant_id.clone()), token_id),
        };
        SessionInfo {
            id: self.id.clone(),
            role,
            tenant_id,
            token_id: token_id.clone(),
            expires_at: rfc3339(self.times.expires_at),
            idle_expires_at: rfc3339(self.times.idle_expires_at(settings)),
        }
    }
}

/// A new session: who it is, and the cookie value (`<id>.<secret>`) the browser keeps.
#[derive(Debug)]
pub struct NewLogin {
    pub info: SessionInfo,
    pub cookie: String,
    pub max_age: Duration,
}

/// Signs in with API token `token`: a new session acting as it, stored (its secret hashed)
/// and audited.
pub async fn login(st: &AppState, token: &str) -> Result<NewLogin, SessionError> {
    if token.trim().is_empty() {
        return Err(SessionError::EmptyToken);
    }
    let (caller, token_expires_at) = authenticate_token(&st.store, token)
        .await?
        .ok_or(SessionError::InvalidToken)?;
    let settings = &st.settings.sessions;
    let now = now_ms();
    // Ended and expired sessions are of no further use; a login is a good time to drop them.
    st.store.prune_sessions(now).await?;
    let times = SessionTimes::at_login(now, settings, token_expires_at);
    let (id, cookie, secret_hash) = new_token("ses");
    let session = Session {
        id: id.clone(),
        caller,
        times,
    };
    let info = session.info(settings);
    st.store
        .insert_session(&NewSession {
            id: &id,
            secret_hash: &secret_hash,
            token_id: &info.token_id,
            created_at: now,
            expires_at: times.expires_at,
        })
        .await?;
    st.store
        .audit(&session.caller.actor(), "session login", &id, "")
        .await?;
    let max_age = Duration::from_millis(u64::try_from(times.expires_at - now).unwrap_or(0));
    Ok(NewLogin {
        info,
        cookie,
        max_age,
    })
}

/// The live session whose cookie value is `cookie`, if any; a use is recorded for its idle
/// expiry.
pub async fn authenticate(st: &AppState, cookie: &str) -> Result<Option<Session>, StoreError> {
    let Some((id, secret)) = crate::http::auth::split_token(cookie) else {
        return Ok(None);
    };
    let Some(row) = st.store.session_auth(id).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let times = SessionTimes {
        expires_at: row.expires_at,
        last_seen_at: row.last_seen_at,
    };
    let settings = &st.settings.sessions;
    if row.ended
        || !crate::http::auth::hashes_equal(&row.secret_hash, &hash_secret(secret))
        || !times.live(settings, now)
    {
        return Ok(None);
    }
    let Some(caller) = crate::http::auth::token_row_caller(&row.token_id, &row.token, now) else {
        return Ok(None);
    };
    let times = if times.needs_touch(settings, now) {
        st.store.touch_session(id, now).await?;
        SessionTimes {
            last_seen_at: now,
            ..times
        }
    } else {
        times
    };
    Ok(Some(Session {
        id: id.to_string(),
        caller,
        times,
    }))
}

/// Signs out: ends `session` and audits it.
pub async fn logout(st: &AppState, session: &Session) -> Result<(), SessionError> {
    if st.store.end_session(&session.id, now_ms()).await? {
        st.store
            .audit(&session.caller.actor(), "session logout", &session.id, "")
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn cookie_attributes() {
        let set = set_cookie("ses-1.abc", Duration::from_secs(43_200));
        let parts: Vec<&str> = set.split("; ").collect();
        assert_eq!(parts[0], "plinth_session=ses-1.abc");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(parts.contains(&attr), "{attr} missing from {set}");
        }
        let clear = clear_cookie();
        assert!(clear.starts_with("plinth_session=;"), "{clear}");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=0",
        ] {
            assert!(
                clear.split("; ").any(|a| a == attr),
                "{attr} missing from {clear}"
            );
        }
    }

    #[test]
    fn cookie_is_found_among_others() {
        assert_eq!(
            cookie_value(["a=1; plinth_session=ses-1.x; b=2"]),
            Some("ses-1.x")
        );
        assert_eq!(
            cookie_value(["a=1", "plinth_session=ses-2.y"]),
            Some("ses-2.y")
        );
        assert_eq!(cookie_value(["xplinth_session=ses-1.x"]), None);
        assert_eq!(cookie_value(["plinth_session="]), None);
        assert_eq!(cookie_value(Vec::<&str>::new()), None);
    }

    #[test]
    fn expiry() {
        let s = SessionSettings {
            ttl: Duration::from_secs(12 * 3600),
            idle: Duration::from_secs(3600),
        };
        let now = 1_700_000_000_000;
        let t = SessionTimes::at_login(now, &s, None);
        assert_eq!(t.expires_at, now + 12 * H);
        assert_eq!(t.idle_expires_at(&s), now + H);
        assert!(t.live(&s, now + H - 1));
        assert!(!t.live(&s, now + H), "idle for the whole idle time");
        // Busy sessions still end at the absolute end.
        let busy = SessionTimes {
            last_seen_at: now + 12 * H - 1,
            ..t
        };
        assert_eq!(busy.idle_expires_at(&s), now + 12 * H);
        assert!(busy.live(&s, now + 12 * H - 1));
        assert!(!busy.live(&s, now + 12 * H));
        // Never past the token's own expiry.
        let short = SessionTimes::at_login(now, &s, Some(now + 2 * H));
        assert_eq!(short.expires_at, now + 2 * H);
        let expired_token = SessionTimes::at_login(now, &s, Some(now));
        assert!(!expired_token.live(&s, now));
    }

    #[test]
    fn touches_are_spaced() {
        let s = SessionSettings::default();
        let t = SessionTimes::at_login(0, &s, None);
        assert!(!t.needs_touch(&s, 29_999));
        assert!(t.needs_touch(&s, 30_000));
        let tiny = SessionSettings {
            ttl: Duration::from_secs(5),
            idle: Duration::from_secs(2),
        };
        assert!(t.needs_touch(&tiny, 200), "a tenth of a short idle time");
    }
}
