//! RMCP+ security: the cipher suites plinth speaks (3 and 17), the RAKP key-exchange codes,
//! session key derivation (SIK, K1, K2), packet integrity and AES-CBC-128 confidentiality
//! (IPMI v2.0 §13.28–13.33).

use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// A cipher suite: authentication, integrity and confidentiality algorithms as one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128: what nearly every BMC serves.
    #[serde(rename = "3")]
    Suite3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128: newer BMCs' default.
    #[serde(rename = "17")]
    Suite17,
}

impl CipherSuite {
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    /// Authentication algorithm number in Open Session.
    pub fn auth_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x03,
        }
    }

    /// Integrity algorithm number in Open Session.
    pub fn integrity_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 0x01,
            CipherSuite::Suite17 => 0x04,
        }
    }

    /// AES-CBC-128 for both.
    pub fn confidentiality_alg(self) -> u8 {
        0x01
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            CipherSuite::Suite3 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            CipherSuite::Suite17 => hmac::HMAC_SHA256,
        }
    }

    /// Length of the RAKP 2 and 3 key exchange codes and of the SIK, K1 and K2.
    pub fn digest_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the packet authentication code and of RAKP 4's integrity check value.
    pub fn integrity_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac(), key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }
}

/// What both sides of a RAKP exchange know once RAKP 2 has arrived.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub suite: CipherSuite,
    /// Our (remote console's) session id, SIDm.
    pub console_session_id: u32,
    /// The BMC's (managed system's) session id, SIDc.
    pub bmc_session_id: u32,
    pub console_random: [u8; 16],
    pub bmc_random: [u8; 16],
    pub bmc_guid: [u8; 16],
    /// The requested-privilege byte of RAKP 1 (privilege and lookup bit).
    pub role: u8,
    pub username: &'a [u8],
    /// Kuid: the user's password.
    pub password: &'a [u8],
}

impl Exchange<'_> {
    /// The code RAKP 2 must carry: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENGTHm, UNAMEm).
    pub fn rakp2_code(&self) -> Vec<u8> {
        self.suite.mac(
            self.password,
            &[
                &self.console_session_id.to_le_bytes(),
                &self.bmc_session_id.to_le_bytes(),
                &self.console_random,
                &self.bmc_random,
                &self.bmc_guid,
                &[self.role, self.username.len() as u8],
                self.username,
            ],
        )
    }

    /// The code RAKP 3 sends: HMAC_Kuid(Rc, SIDm, ROLEm, ULENGTHm, UNAMEm).
    pub fn rakp3_code(&self) -> Vec<u8> {
        self.suite.mac(
            self.password,
            &[
                &self.bmc_random,
                &self.console_session_id.to_le_bytes(),
                &[self.role, self.username.len() as u8],
                self.username,
            ],
        )
    }

    /// The session integrity key: HMAC_Kg(Rm, Rc, ROLEm, ULENGTHm, UNAMEm), with Kg = Kuid
    /// (plinth sets no BMC key).
    pub fn sik(&self) -> Vec<u8> {
        self.suite.mac(
            self.password,
            &[
                &self.console_random,
                &self.bmc_random,
                &[self.role, self.username.len() as u8],
                self.username,
            ],
        )
    }

    /// The integrity check value RAKP 4 must carry: HMAC_SIK(Rm, SIDc, GUIDc), truncated.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut v = self.suite.mac(
            sik,
            &[
                &self.console_random,
                &self.bmc_session_id.to_le_bytes(),
                &self.bmc_guid,
            ],
        );
        v.truncate(self.suite.integrity_len());
        v
    }
}

/// Equality that takes as long whatever the inputs hold.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("encrypted payload length {0} is not a positive multiple of 16 after the IV")]
    Length(usize),
    #[error("encrypted payload padding is malformed")]
    Padding,
}

/// The keys of an established session: K1 signs packets, the first 16 bytes of K2 encrypt.
#[derive(Clone)]
pub struct SessionKeys {
    suite: CipherSuite,
    k1: Vec<u8>,
    aes: Aes128,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({:?}, ..)", self.suite)
    }
}

impl SessionKeys {
    /// K1 = HMAC_SIK(0x01 × n), K2 = HMAC_SIK(0x02 × n), n the digest length.
    pub fn derive(suite: CipherSuite, sik: &[u8]) -> SessionKeys {
        let n = suite.digest_len();
        let k1 = suite.mac(sik, &[&vec![0x01; n]]);
        let k2 = suite.mac(sik, &[&vec![0x02; n]]);
        SessionKeys {
            suite,
            k1,
            aes: Aes128::new(GenericArray::from_slice(&k2[..16])),
        }
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn k1(&self) -> &[u8] {
        &self.k1
    }

    /// The authentication code of a packet: HMAC_K1 over the bytes from the auth type field
    /// through the next-header byte, truncated to the suite's length.
    pub fn integrity(&self, signed: &[u8]) -> Vec<u8> {
        let mut v = self.suite.mac(&self.k1, &[signed]);
        v.truncate(self.suite.integrity_len());
        v
    }

    /// IV, then AES-CBC-128 of the payload with IPMI's padding (1, 2, .., n, then n).
    pub fn encrypt(&self, payload: &[u8], iv: [u8; 16]) -> Vec<u8> {
        let pad = (16 - (payload.len() + 1) % 16) % 16;
        let mut plain = payload.to_vec();
        plain.extend((1..=pad).map(|i| i as u8));
        plain.push(pad as u8);
        let mut out = iv.to_vec();
        let mut prev = iv;
        for chunk in plain.chunks(16) {
            let mut block = [0u8; 16];
            for (i, b) in chunk.iter().enumerate() {
                block[i] = b ^ prev[i];
            }
            let mut ga = GenericArray::from(block);
            self.aes.encrypt_block(&mut ga);
            prev.copy_from_slice(&ga);
            out.extend_from_slice(&ga);
        }
        out
    }

    /// The reverse of [`SessionKeys::encrypt`]; padding is checked.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.len() < 32 || !data.len().is_multiple_of(16) {
            return Err(CryptoError::Length(data.len().saturating_sub(16)));
        }
        let (iv, body) = data.split_at(16);
        let mut prev: [u8; 16] = iv.try_into().map_err(|_| CryptoError::Length(0))?;
        let mut plain = Vec::with_capacity(body.len());
        for chunk in body.chunks(16) {
            let mut ga = GenericArray::clone_from_slice(chunk);
            self.aes.decrypt_block(&mut ga);
            for (i, b) in ga.iter().enumerate() {
                plain.push(b ^ prev[i]);
            }
            prev.copy_from_slice(chunk);
        }
        let pad = usize::from(*plain.last().ok_or(CryptoError::Padding)?);
        if pad > 15 || pad + 1 > plain.len() {
            return Err(CryptoError::Padding);
        }
        let end = plain.len() - 1 - pad;
        if plain[end..plain.len() - 1]
            .iter()
            .enumerate()
            .any(|(i, &b)| usize::from(b) != i + 1)
        {
            return Err(CryptoError::Padding);
        }
        plain.truncate(end);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed independently with Python's `hmac`/`hashlib` and the
    /// `cryptography` package's AES-CBC (scripts/ipmi-kat.py prints them): the same
    /// inputs for both suites.
    struct Vectors {
        suite: CipherSuite,
        rakp2: &'static str,
        rakp3: &'static str,
        sik: &'static str,
        rakp4: &'static str,
        k1: &'static str,
        auth: &'static str,
        ciphertext: &'static str,
    }

    const VECTORS: [Vectors; 2] = [
        Vectors {
            suite: CipherSuite::Suite17,
            rakp2: "a4e806c82e5e3337eae11b614562ecfed49799a5b9b16c41d23f24326561fa6d",
            rakp3: "6e51af87944f03924aa4db1a37bcf59cf4daae07500f0f25d23a6034d28ff1c7",
            sik: "e5935f7199865ad961063477b0662684e2ce9b1da8f2b8d41c5ce127d37e9bcf",
            rakp4: "329dee2c0ec9a8a9cffc80f28b2fbf9d",
            k1: "d2bb1919caf11253c1d7849dd7aa00825470ea0bec22df7ead719e11435b5d02",
            auth: "89de4655b22c79ab05787000c24ba25e",
            ciphertext: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffeef6716006257025e4a9b9d79a5a3bb9",
        },
        Vectors {
            suite: CipherSuite::Suite3,
            rakp2: "cbc85614e5a2e38b03f17e448fd5d9a3cf8df82d",
            rakp3: "f3c19e5b84f5b8124e95cfcc1a3c121596b826ea",
            sik: "122c77c4b11ccd93251cbae6c34a9cb6310da154",
            rakp4: "9e32a61a7eff2a227cc7cb49",
            k1: "e4472be78f9a81fa68297aab696a7be8c97fc9f8",
            auth: "67c84e9fcd6befb8cda1cced",
            ciphertext: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffd90b543cb9f5e8c1c25cf0148909f504",
        },
    ];

    fn seq(from: u8) -> [u8; 16] {
        std::array::from_fn(|i| from + i as u8)
    }

    #[test]
    fn known_answers_for_suites_17_and_3() {
        for v in VECTORS {
            let label = format!("suite {}", v.suite.id());
            let x = Exchange {
                suite: v.suite,
                console_session_id: 0x0102_0304,
                bmc_session_id: 0xa0b0_c0d0,
                console_random: seq(0),
                bmc_random: seq(16),
                bmc_guid: seq(0xa0),
                role: 0x14,
                username: b"admin",
                password: b"password",
            };
            assert_eq!(hex::encode(x.rakp2_code()), v.rakp2, "{label} RAKP 2");
            assert_eq!(hex::encode(x.rakp3_code()), v.rakp3, "{label} RAKP 3");
            let sik = x.sik();
            assert_eq!(hex::encode(&sik), v.sik, "{label} SIK");
            assert_eq!(hex::encode(x.rakp4_icv(&sik)), v.rakp4, "{label} RAKP 4");
            let keys = SessionKeys::derive(v.suite, &sik);
            assert_eq!(hex::encode(keys.k1()), v.k1, "{label} K1");
            // An authenticated packet's signed span: session header, payload, pad, next header.
            let signed = hex::decode(
                "06c0d0c0b0a00100000020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fffff0207",
            )
            .expect("hex");
            assert_eq!(hex::encode(keys.integrity(&signed)), v.auth, "{label} auth");
            let payload = hex::decode("2018c8810401007b").expect("hex");
            let sealed = keys.encrypt(&payload, seq(0xf0));
            assert_eq!(hex::encode(&sealed), v.ciphertext, "{label} AES-CBC");
            assert_eq!(keys.decrypt(&sealed), Ok(payload), "{label} round trip");
        }
    }

    #[test]
    fn padding_round_trips_every_length_and_rejects_tampering() {
        let keys = SessionKeys::derive(CipherSuite::Suite17, b"sik");
        for len in 0..40 {
            let payload: Vec<u8> = (0..len as u8).collect();
            let sealed = keys.encrypt(&payload, [7; 16]);
            assert_eq!(sealed.len() % 16, 0, "len {len}");
            assert_eq!(
                keys.decrypt(&sealed).as_deref(),
                Ok(&payload[..]),
                "len {len}"
            );
        }
        assert_eq!(keys.decrypt(&[0; 20]), Err(CryptoError::Length(4)));
        let mut sealed = keys.encrypt(b"hello", [1; 16]);
        let last = sealed.len() - 1;
        sealed[last] ^= 0x55;
        assert_eq!(keys.decrypt(&sealed), Err(CryptoError::Padding));
    }
}
