//! `ipmi-rs-core`'s sans-IO commands driven by plinth's async RMCP+ session: the crate builds
//! each request and parses each answer; `session.rs` carries them. (The crate's own transport
//! is blocking and suite-3 only, so only its message types are used.)

use super::IpmiError;
use super::session::Session;
use ipmi_rs_core::connection::{IpmiCommand, Message};

impl Session {
    /// Sends `cmd` and parses its answer with the crate; also hands back the raw data (some
    /// fields the crate keeps private, such as a SEL entry's timestamp).
    pub async fn execute<C>(
        &mut self,
        name: &'static str,
        cmd: C,
    ) -> Result<(C::Output, Vec<u8>), IpmiError>
    where
        C: IpmiCommand,
        C::Error: std::fmt::Debug,
    {
        let message: Message = cmd.into();
        let data = self
            .command(
                name,
                message.netfn().request_value(),
                message.cmd(),
                message.data(),
            )
            .await?;
        let out = C::parse_success_response(&data).map_err(|e| IpmiError::Malformed {
            command: name,
            detail: format!("{e:?}"),
        })?;
        Ok((out, data))
    }
}
