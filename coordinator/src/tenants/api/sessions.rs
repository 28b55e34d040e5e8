//! `/v1/session`: browser sessions for the web console. A token is exchanged for a cookie
//! (its secret only, never the token); `GET` says who the session is, `DELETE` ends it.

use crate::http::error::{ApiJson, ApiResult};
use crate::state::AppState;
use crate::tenants::sessions::{self, CreateSession, Session, SessionInfo};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::routing::post;
use plinth_common::api::ErrorBody;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/session", post(create).get(show).delete(end))
}

/// Sign in: exchange an API token (in the body) for a session cookie (`plinth_session`,
/// HttpOnly, Secure, SameSite=Strict). Requests made with the cookie that change anything
/// must carry `X-Plinth-Session: 1`.
#[utoipa::path(post, path = "/v1/session", tag = "admin", request_body = CreateSession,
    responses(
        (status = 201, body = SessionInfo, description = "signed in; the cookie is in Set-Cookie",
            headers(("Set-Cookie" = String, description = "plinth_session=<session>; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=<seconds>"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<CreateSession>,
) -> ApiResult<(
    StatusCode,
    [(axum::http::HeaderName, String); 1],
    ApiJson<SessionInfo>,
)> {
    let login = sessions::login(&st, &req.token).await?;
    let cookie = sessions::set_cookie(&login.cookie, login.max_age);
    Ok((
        StatusCode::CREATED,
        [(SET_COOKIE, cookie)],
        ApiJson(login.info),
    ))
}

/// Who the session of the request's cookie is (role, tenant) and when it ends.
#[utoipa::path(get, path = "/v1/session", tag = "admin", security(("session" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn show(State(st): State<AppState>, session: Session) -> ApiJson<SessionInfo> {
    ApiJson(session.info(&st.settings.sessions))
}

/// Sign out: end the session of the request's cookie and clear the cookie. Needs
/// `X-Plinth-Session: 1` like every mutating cookie request.
#[utoipa::path(delete, path = "/v1/session", tag = "admin", security(("session" = [])),
    responses(
        (status = 204, description = "signed out; Set-Cookie clears the cookie"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn end(
    State(st): State<AppState>,
    session: Session,
) -> ApiResult<(StatusCode, [(axum::http::HeaderName, String); 1])> {
    sessions::logout(&st, &session).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, sessions::clear_cookie())],
    ))
}
