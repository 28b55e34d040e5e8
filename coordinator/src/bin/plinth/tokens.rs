//! `plinth tokens`: API tokens (listed without secrets; a new one's secret shown once) and
//! one-time enrollment tokens for `plinth-agent enroll`.

use crate::client::Client;
use crate::format::{or_dash, when};
use crate::output::Output;
use crate::paging::{PageArgs, footer};
use crate::table::{Table, key_values};
use clap::{Subcommand, ValueEnum};
use plinth_common::api::{
    ApiTokenPage, CreateEnrollmentToken, CreateToken, CreatedToken, EnrollmentToken, TokenRole,
};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// List live API tokens, oldest first (never their secrets).
    List(PageArgs),
    /// Create an API token; its secret is printed once.
    Create {
        /// What the token may do: everything, or act for one tenant.
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant a tenant token acts for.
        #[arg(long, value_name = "ID")]
        tenant: Option<String>,
        /// A name to recognise the token by in `tokens list`.
        #[arg(long)]
        name: String,
        /// Lifetime such as 30d or 12h, at most the coordinator's max_token_ttl (365d by
        /// default) [default: until revoked].
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Revoke an API token.
    Revoke { id: String },
    /// Issue a one-time token for enrolling a host's agent.
    Enrollment {
        /// How long the token stays valid (at most 7d).
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long, default_value = "")]
        description: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    Admin,
    Tenant,
}

impl From<Role> for TokenRole {
    fn from(role: Role) -> TokenRole {
        match role {
            Role::Admin => TokenRole::Admin,
            Role::Tenant => TokenRole::Tenant,
        }
    }
}

fn role_name(role: TokenRole) -> &'static str {
    match role {
        TokenRole::Admin => "admin",
        TokenRole::Tenant => "tenant",
    }
}

pub async fn run(client: &Client, out: &Output, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List(page) => {
            let list = client.list(&["v1", "tokens"], &[], &page).await?;
            out.emit(list, render_tokens)
        }
        TokensCommand::Create {
            role,
            tenant,
            name,
            ttl,
        } => {
            let body = CreateToken {
                role: role.into(),
                tenant_id: tenant,
                name,
                ttl,
            };
            out.emit(client.post(&["v1", "tokens"], &body).await?, render_created)
        }
        TokensCommand::Revoke { id } => {
            client.delete(&["v1", "tokens", &id]).await?;
            out.note(&format!("token {id} revoked\n"))
        }
        TokensCommand::Enrollment { ttl, description } => {
            let issued = client
                .post(
                    &["v1", "enrollment-tokens"],
                    &CreateEnrollmentToken { ttl, description },
                )
                .await?;
            let coordinator = client.base().to_string();
            out.emit(issued, |t: &EnrollmentToken| {
                render_enrollment(t, &coordinator)
            })
        }
    }
}

fn render_tokens(page: &ApiTokenPage) -> String {
    if page.total == 0 {
        return "no tokens\n".to_string();
    }
    let mut table = Table::new(&[
        "id",
        "role",
        "tenant",
        "name",
        "created",
        "expires",
        "created by",
    ]);
    for t in &page.items {
        table.row(vec![
            t.id.clone(),
            role_name(t.role).to_string(),
            or_dash(t.tenant_id.as_deref()),
            t.name.clone(),
            t.created_at.clone(),
            t.expires_at.clone().unwrap_or_else(|| "never".to_string()),
            t.created_by.clone(),
        ]);
    }
    let more = page.next_cursor.as_deref();
    table.render() + &footer(page.items.len(), page.total, "tokens", more)
}

fn render_created(created: &CreatedToken) -> String {
    let t = &created.token;
    let pairs = [
        ("id", t.id.clone()),
        ("role", role_name(t.role).to_string()),
        ("tenant", or_dash(t.tenant_id.as_deref())),
        ("name", t.name.clone()),
        (
            "expires",
            t.expires_at
                .as_deref()
                .map_or_else(|| "never (until revoked)".to_string(), |e| when(Some(e))),
        ),
        ("secret", created.secret.clone()),
    ];
    format!(
        "{}\nStore the secret now: it is not shown again.\n",
        key_values(&pairs)
    )
}

pub(crate) fn render_enrollment(token: &EnrollmentToken, coordinator: &str) -> String {
    let pairs = [
        ("token", token.token.clone()),
        ("expires", when(Some(&token.expires_at))),
        ("ca hash", token.ca_hash.clone()),
    ];
    format!(
        "{}\nOn the new host (the token works once, until it expires):\n  plinth-agent enroll --coordinator {coordinator} \
         --token {} --ca-hash {} --cluster <cluster>\n",
        key_values(&pairs),
        token.token,
        token.ca_hash
    )
}
