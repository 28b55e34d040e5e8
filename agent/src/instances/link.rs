//! The agent's way to the coordinator for image bytes: a client with no total timeout (a
//! transfer lasts as long as its bytes do) and the coordinator's base URL.

use plinth_common::api::ErrorBody;

#[derive(Clone)]
pub struct CoordinatorLink {
    pub client: reqwest::Client,
    /// `https://IP:PORT`, no trailing slash.
    pub base_url: String,
}

impl CoordinatorLink {
    /// `GET` fetches an image's content, `PUT` uploads an export's.
    pub fn image_content_url(&self, image_id: &str) -> String {
        format!(
            "{}{}",
            self.base_url.trim_end_matches('/'),
            plinth_common::api::agent_routes::coordinator::image_content(image_id)
        )
    }
}

/// The coordinator's reason for a non-2xx answer: its error message, or the start of the body.
pub async fn refusal(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let reason = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => format!("{}: {}", e.error.code, e.error.message),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(512)])
            .trim()
            .to_string(),
    };
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {reason}")
    }
}
