//! Serial over LAN on an open session (IPMI v2.0 §15, §24): Activate and Deactivate Payload,
//! and the SOL payload itself — sequence numbers 1–15, acknowledgements both ways,
//! retransmission of what the BMC has not acknowledged.

use super::IpmiError;
use super::rmcp::payload;
use super::session::{NETFN_APP, Session};
use std::time::Duration;
use tokio::time::Instant;

/// Bytes per SOL packet we send (BMCs take at least this; ipmi_sim takes 255).
const MAX_SEND: usize = 200;
const ACK_WAIT: Duration = Duration::from_millis(500);
const SEND_ATTEMPTS: u32 = 5;

/// Where the SOL stream stands on this session.
#[derive(Debug, Default, Clone)]
pub struct SolState {
    /// Our last packet sequence number (1–15).
    out_seq: u8,
    /// The BMC's last data packet we took, to spot its retransmissions.
    in_seq: Option<u8>,
    /// The BMC said it is deactivating the payload.
    pub ended: bool,
}

/// A SOL packet from the BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolPacket {
    pub seq: u8,
    pub ack_seq: u8,
    pub accepted: u8,
    pub status: u8,
    pub data: Vec<u8>,
}

pub fn parse(p: &[u8]) -> Option<SolPacket> {
    if p.len() < 4 {
        return None;
    }
    Some(SolPacket {
        seq: p[0] & 0x0f,
        ack_seq: p[1] & 0x0f,
        accepted: p[2],
        status: p[3],
        data: p[4..].to_vec(),
    })
}

impl Session {
    /// Activates the SOL payload (instance 1), encrypted and authenticated. A console left
    /// active elsewhere is taken over: plinth is the one managing this BMC.
    pub async fn sol_activate(&mut self) -> Result<(), IpmiError> {
        const NAME: &str = "activate payload (sol)";
        let req = [payload::SOL, 0x01, 0xc0, 0, 0, 0];
        let answer = match self.command(NAME, NETFN_APP, 0x48, &req).await {
            Err(IpmiError::Completion { code: 0x80, .. }) => {
                self.sol_deactivate().await?;
                self.command(NAME, NETFN_APP, 0x48, &req).await?
            }
            other => other?,
        };
        if answer.len() >= 10 {
            let port = u16::from_le_bytes([answer[8], answer[9]]);
            if port != self.addr().port() {
                let _ = self.sol_deactivate().await;
                return Err(IpmiError::Unsupported(format!(
                    "SOL on a port of its own ({port})"
                )));
            }
        }
        self.sol_active = true;
        // Our sequence numbers carry on: a BMC (ipmi_sim does) may keep the last one it took
        // across activations and drop a packet that repeats it as a retransmission.
        self.sol = SolState {
            out_seq: self.sol.out_seq,
            ..SolState::default()
        };
        self.sol_inbox.clear();
        Ok(())
    }

    /// Deactivates the SOL payload; one that is not active is fine.
    pub async fn sol_deactivate(&mut self) -> Result<(), IpmiError> {
        self.sol_active = false;
        self.sol_inbox.clear();
        match self
            .command(
                "deactivate payload (sol)",
                NETFN_APP,
                0x49,
                &[payload::SOL, 0x01, 0, 0, 0, 0],
            )
            .await
        {
            Ok(_) | Err(IpmiError::Completion { code: 0x80, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn sol_is_active(&self) -> bool {
        self.sol_active && !self.sol.ended
    }

    fn sol_packet(&self, seq: u8, ack: Option<(u8, u8)>, data: &[u8]) -> Vec<u8> {
        let (ack_seq, accepted) = ack.unwrap_or((0, 0));
        let mut p = vec![seq, ack_seq, accepted, 0];
        p.extend_from_slice(data);
        self.wire.seal(payload::SOL, &p)
    }

    /// Takes a packet from the BMC: acknowledges its data, keeps new data in `out`, and says
    /// whether it acknowledged our packet `awaiting`.
    async fn sol_take(
        &mut self,
        packet: &[u8],
        awaiting: Option<u8>,
        out: &mut Vec<u8>,
    ) -> Result<bool, IpmiError> {
        let Some(p) = parse(packet) else {
            return Ok(false);
        };
        if p.status & 0x10 != 0 {
            self.sol.ended = true;
        }
        if p.seq != 0 {
            if self.sol.in_seq != Some(p.seq) {
                out.extend_from_slice(&p.data);
                self.sol.in_seq = Some(p.seq);
            }
            let ack = self.sol_packet(0, Some((p.seq, p.data.len() as u8)), &[]);
            self.sock.send(&ack).await?;
        }
        Ok(awaiting.is_some_and(|s| p.ack_seq == s && p.status & 0x40 == 0))
    }

    /// Reads SOL packets until `until` or until `awaiting` is acknowledged (then `true`).
    async fn sol_pump(
        &mut self,
        until: Instant,
        awaiting: Option<u8>,
        out: &mut Vec<u8>,
    ) -> Result<bool, IpmiError> {
        while let Some(p) = self.sol_inbox.pop_front() {
            if self.sol_take(&p, awaiting, out).await? {
                return Ok(true);
            }
        }
        if awaiting.is_none() && !out.is_empty() {
            return Ok(false);
        }
        let mut buf = vec![0u8; 1024];
        loop {
            let n = match tokio::time::timeout_at(until, self.sock.recv(&mut buf)).await {
                Err(_) => return Ok(false),
                Ok(r) => r?,
            };
            let Some((ptype, plain)) = self.wire.open(&buf[..n]) else {
                continue;
            };
            if ptype == payload::SOL && self.sol_take(&plain, awaiting, out).await? {
                return Ok(true);
            }
            // Any data read so far is returned without waiting out the full time.
            if awaiting.is_none() && !out.is_empty() {
                return Ok(false);
            }
        }
    }

    /// Sends `data` to the serial port; each packet is retransmitted until acknowledged.
    /// Bytes the BMC sends meanwhile are returned.
    pub async fn sol_send(&mut self, data: &[u8]) -> Result<Vec<u8>, IpmiError> {
        let mut received = Vec::new();
        for chunk in data.chunks(MAX_SEND) {
            self.sol.out_seq = self.sol.out_seq % 15 + 1;
            let seq = self.sol.out_seq;
            let mut acked = false;
            for _ in 0..SEND_ATTEMPTS {
                let packet = self.sol_packet(seq, None, chunk);
                self.sock.send(&packet).await?;
                if self
                    .sol_pump(Instant::now() + ACK_WAIT, Some(seq), &mut received)
                    .await?
                {
                    acked = true;
                    break;
                }
            }
            if !acked {
                return Err(IpmiError::NoResponse {
                    addr: self.addr(),
                    waited_ms: (ACK_WAIT * SEND_ATTEMPTS).as_millis(),
                });
            }
        }
        Ok(received)
    }

    /// Bytes from the serial port: what has arrived, waiting at most `wait` for the first.
    pub async fn sol_recv(&mut self, wait: Duration) -> Result<Vec<u8>, IpmiError> {
        let mut out = Vec::new();
        self.sol_pump(Instant::now() + wait, None, &mut out).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sol_packets() {
        let p = parse(&[0x03, 0x02, 0x05, 0x00, b'h', b'i']).expect("packet");
        assert_eq!((p.seq, p.ack_seq, p.accepted, p.status), (3, 2, 5, 0));
        assert_eq!(p.data, b"hi");
        assert_eq!(parse(&[1, 2, 3]), None);
    }
}
