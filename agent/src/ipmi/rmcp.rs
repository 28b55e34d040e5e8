//! The bytes on the wire: RMCP header, IPMI v1.5 and v2.0 (RMCP+) session wrappers, and the
//! IPMI LAN message inside them. Decoding takes untrusted input and never panics (fuzzed).

pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xff, 0x07];
const AUTH_NONE: u8 = 0x00;
const AUTH_RMCP_PLUS: u8 = 0x06;
/// Next-header byte of the integrity trailer: always RMCP's IPMI class.
const NEXT_HEADER: u8 = 0x07;

pub const BMC_ADDR: u8 = 0x20;
pub const CONSOLE_ADDR: u8 = 0x81;

/// RMCP+ payload types plinth sends or reads.
pub mod payload {
    pub const IPMI: u8 = 0x00;
    pub const SOL: u8 = 0x01;
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub const RAKP1: u8 = 0x12;
    pub const RAKP2: u8 = 0x13;
    pub const RAKP3: u8 = 0x14;
    pub const RAKP4: u8 = 0x15;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet too short ({0} bytes)")]
    Short(usize),
    #[error("not an RMCP IPMI packet")]
    NotIpmi,
    #[error("unsupported session auth type {0:#04x}")]
    AuthType(u8),
    #[error("payload length {declared} exceeds the {available} bytes received")]
    Length { declared: usize, available: usize },
    #[error("integrity trailer is malformed")]
    Trailer,
    #[error("IPMI message checksum is wrong")]
    Checksum,
    #[error("IPMI message is not a response to us")]
    NotResponse,
}

/// A decoded packet; payload bytes still encrypted if the header says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// IPMI v1.5 session wrapper (only before a session: Get Channel Auth Capabilities).
    V15 {
        session_id: u32,
        payload: &'a [u8],
    },
    V2(V2Frame<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Frame<'a> {
    pub payload_type: u8,
    pub encrypted: bool,
    pub authenticated: bool,
    pub session_id: u32,
    pub seq: u32,
    pub payload: &'a [u8],
    /// What the authentication code covers: auth type through next header (authenticated only).
    pub signed: &'a [u8],
    pub auth_code: &'a [u8],
}

fn u32_le(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Reads a packet; `auth_len` is the session's authentication code length (0 without one).
pub fn decode(buf: &[u8], auth_len: usize) -> Result<Frame<'_>, DecodeError> {
    if buf.len() < 5 {
        return Err(DecodeError::Short(buf.len()));
    }
    if buf[0] != 0x06 || buf[3] != 0x07 {
        return Err(DecodeError::NotIpmi);
    }
    match buf[4] {
        AUTH_NONE => {
            // auth type, seq (4), session id (4), length (1), message
            if buf.len() < 14 {
                return Err(DecodeError::Short(buf.len()));
            }
            let len = usize::from(buf[13]);
            let available = buf.len() - 14;
            if len > available {
                return Err(DecodeError::Length {
                    declared: len,
                    available,
                });
            }
            Ok(Frame::V15 {
                session_id: u32_le(&buf[9..13]),
                payload: &buf[14..14 + len],
            })
        }
        AUTH_RMCP_PLUS => decode_v2(buf, auth_len),
        other => Err(DecodeError::AuthType(other)),
    }
}

fn decode_v2(buf: &[u8], auth_len: usize) -> Result<Frame<'_>, DecodeError> {
    // auth type, payload type, session id (4), seq (4), length (2): 12 bytes after RMCP
    if buf.len() < 16 {
        return Err(DecodeError::Short(buf.len()));
    }
    let ptype = buf[5];
    if ptype & 0x3f == 0x02 {
        // OEM explicit payloads carry 6 more header bytes; plinth never asks for one.
        return Err(DecodeError::NotIpmi);
    }
    let len = usize::from(u16::from_le_bytes([buf[14], buf[15]]));
    let end = 16 + len;
    if end > buf.len() {
        return Err(DecodeError::Length {
            declared: len,
            available: buf.len() - 16,
        });
    }
    let authenticated = ptype & 0x40 != 0;
    let (signed, auth_code): (&[u8], &[u8]) = if authenticated {
        // pad (0xff × n), pad length, next header, auth code; auth type..next header is 4-aligned
        if auth_len == 0 || buf.len() < end + 2 + auth_len {
            return Err(DecodeError::Trailer);
        }
        let code_at = buf.len() - auth_len;
        let pad_len = usize::from(buf[code_at - 2]);
        if buf[code_at - 1] != NEXT_HEADER
            || end + pad_len + 2 != code_at
            || !(code_at - 4).is_multiple_of(4)
            || buf[end..end + pad_len].iter().any(|&b| b != 0xff)
        {
            return Err(DecodeError::Trailer);
        }
        (&buf[4..code_at], &buf[code_at..])
    } else {
        if end != buf.len() {
            return Err(DecodeError::Trailer);
        }
        (&[], &[])
    };
    Ok(Frame::V2(V2Frame {
        payload_type: ptype & 0x3f,
        encrypted: ptype & 0x80 != 0,
        authenticated,
        session_id: u32_le(&buf[6..10]),
        seq: u32_le(&buf[10..14]),
        payload: &buf[16..end],
        signed,
        auth_code,
    }))
}

/// Makes a packet's authentication code from its signed span.
pub type Signer<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// A session-less IPMI v1.5 packet (auth type none).
pub fn encode_v15(message: &[u8]) -> Vec<u8> {
    let mut out = RMCP_HEADER.to_vec();
    out.push(AUTH_NONE);
    out.extend_from_slice(&[0; 8]); // sequence, session id
    out.push(message.len() as u8);
    out.extend_from_slice(message);
    out
}

/// An RMCP+ packet. `payload` is already encrypted when `encrypted`; `sign` makes the
/// authentication code from the signed span when given.
pub fn encode_v2(
    payload_type: u8,
    encrypted: bool,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    sign: Option<Signer<'_>>,
) -> Vec<u8> {
    let mut out = RMCP_HEADER.to_vec();
    out.push(AUTH_RMCP_PLUS);
    let mut ptype = payload_type & 0x3f;
    if encrypted {
        ptype |= 0x80;
    }
    if sign.is_some() {
        ptype |= 0x40;
    }
    out.push(ptype);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.extend_from_slice(payload);
    if let Some(sign) = sign {
        let pad = (4 - (out.len() - 4 + 2) % 4) % 4;
        out.extend(std::iter::repeat_n(0xff, pad));
        out.push(pad as u8);
        out.push(NEXT_HEADER);
        let code = sign(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |acc, b| acc.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request message from the remote console (SWID 0x81) to the BMC (0x20), LUN 0.
pub fn encode_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![BMC_ADDR, netfn << 2];
    m.push(checksum(&m));
    m.extend_from_slice(&[CONSOLE_ADDR, (rq_seq & 0x3f) << 2, cmd]);
    m.extend_from_slice(data);
    m.push(checksum(&m[3..]));
    m
}

/// An IPMI response message as the BMC sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's network function (the response's, minus one).
    pub netfn: u8,
    pub rq_seq: u8,
    pub cmd: u8,
    pub completion: u8,
    pub data: &'a [u8],
}

pub fn decode_response(m: &[u8]) -> Result<Response<'_>, DecodeError> {
    if m.len() < 8 {
        return Err(DecodeError::Short(m.len()));
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err(DecodeError::Checksum);
    }
    let netfn = m[1] >> 2;
    if m[0] != CONSOLE_ADDR || netfn & 1 == 0 {
        return Err(DecodeError::NotResponse);
    }
    Ok(Response {
        netfn: netfn - 1,
        rq_seq: m[4] >> 2,
        cmd: m[5],
        completion: m[6],
        data: &m[7..m.len() - 1],
    })
}

/// Builds the response the BMC would send to `request` (tests and the fake BMC of the unit
/// tests only).
#[cfg(test)]
pub fn encode_response(netfn: u8, cmd: u8, rq_seq: u8, completion: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![CONSOLE_ADDR, (netfn + 1) << 2];
    m.push(checksum(&m));
    m.extend_from_slice(&[BMC_ADDR, (rq_seq & 0x3f) << 2, cmd, completion]);
    m.extend_from_slice(data);
    m.push(checksum(&m[3..]));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipmi::crypto::{CipherSuite, SessionKeys};
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_with_checksums() {
        let req = encode_request(0x06, 0x01, 5, &[]);
        assert_eq!(req, vec![0x20, 0x18, 0xc8, 0x81, 0x14, 0x01, 0x6a]);
        let resp = encode_response(0x06, 0x01, 5, 0, &[0x20, 0x01]);
        let r = decode_response(&resp).expect("decodes");
        assert_eq!((r.netfn, r.rq_seq, r.cmd, r.completion), (0x06, 5, 0x01, 0));
        assert_eq!(r.data, &[0x20, 0x01]);
        let mut bad = resp.clone();
        bad[7] ^= 1;
        assert_eq!(decode_response(&bad), Err(DecodeError::Checksum));
        let longer = encode_request(0x06, 0x38, 0, &[0x8e, 0x04]);
        assert_eq!(decode_response(&longer), Err(DecodeError::NotResponse));
        assert_eq!(decode_response(&req), Err(DecodeError::Short(7)));
    }

    #[test]
    fn authenticated_packets_round_trip_and_are_aligned() {
        let keys = SessionKeys::derive(CipherSuite::Suite3, b"k");
        let sign = |b: &[u8]| keys.integrity(b);
        for len in 0..12 {
            let payload = vec![0xab; len];
            let pkt = encode_v2(payload::IPMI, true, 7, 9, &payload, Some(&sign));
            let Ok(Frame::V2(f)) = decode(&pkt, 12) else {
                panic!("len {len}: {pkt:02x?}")
            };
            assert_eq!(f.payload, &payload[..], "len {len}");
            assert!(f.encrypted && f.authenticated);
            assert_eq!((f.session_id, f.seq), (7, 9));
            assert_eq!(f.signed.len() % 4, 0, "len {len}");
            assert_eq!(keys.integrity(f.signed), f.auth_code);
        }
        let plain = encode_v2(payload::OPEN_SESSION_REQUEST, false, 0, 0, &[1, 2], None);
        assert!(matches!(decode(&plain, 0), Ok(Frame::V2(f)) if f.payload == [1, 2]));
        let v15 = encode_v15(&[9, 9, 9]);
        assert_eq!(
            decode(&v15, 0),
            Ok(Frame::V15 {
                session_id: 0,
                payload: &[9, 9, 9]
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// No input makes the decoders panic, whatever the trailer length assumed.
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                auth_len in 0usize..40) {
            let _ = decode(&bytes, auth_len);
            let _ = decode_response(&bytes);
            let keys = SessionKeys::derive(CipherSuite::Suite17, b"k");
            let _ = keys.decrypt(&bytes);
        }

        /// Inputs that look like RMCP+ get past the first checks and exercise the trailer
        /// and length paths.
        #[test]
        fn plausible_packets_never_panic(ptype in any::<u8>(), sid in any::<u32>(),
                                         len in any::<u16>(), tail in proptest::collection::vec(any::<u8>(), 0..80),
                                         auth_len in 0usize..20) {
            let mut b = RMCP_HEADER.to_vec();
            b.extend_from_slice(&[AUTH_RMCP_PLUS, ptype]);
            b.extend_from_slice(&sid.to_le_bytes());
            b.extend_from_slice(&[1, 0, 0, 0]);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&tail);
            if let Ok(Frame::V2(f)) = decode(&b, auth_len) {
                prop_assert!(f.payload.len() <= tail.len());
            }
        }
    }
}
