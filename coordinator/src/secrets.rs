//! The coordinator's own secrets: one random master key in the data directory (0600), from
//! which purpose keys are derived — sealing values at rest (AES-256-GCM) and signing download
//! links (HMAC-SHA256). A sealed value or a signature made for one purpose is useless for the
//! other.

use crate::paths::write_file;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading or writing the master key failed")]
    Io(#[from] std::io::Error),
    #[error("the master key file is malformed")]
    BadKey,
    #[error("random generation failed")]
    Random,
    #[error("sealed value is corrupt or was sealed with another key")]
    Unseal,
}

pub struct Secrets {
    seal: LessSafeKey,
    links: hmac::Key,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

fn derive(master: &[u8], purpose: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, master);
    hmac::sign(&key, purpose.as_bytes()).as_ref().to_vec()
}

impl Secrets {
    /// Loads the master key at `path`, making it first if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Secrets, SecretError> {
        let master = match std::fs::read_to_string(path) {
            Ok(text) => hex::decode(text.trim()).map_err(|_| SecretError::BadKey)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| SecretError::Random)?;
                write_file(path, hex::encode(key).as_bytes(), 0o600)?;
                key.to_vec()
            }
            Err(err) => return Err(err.into()),
        };
        Secrets::of_key(&master)
    }

    /// The secrets derived from 32 bytes of `master` key.
    pub fn of_key(master: &[u8]) -> Result<Secrets, SecretError> {
        if master.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let seal_key = UnboundKey::new(&AES_256_GCM, &derive(master, "plinth seal v1"))
            .map_err(|_| SecretError::BadKey)?;
        Ok(Secrets {
            seal: LessSafeKey::new(seal_key),
            links: hmac::Key::new(
                hmac::HMAC_SHA256,
                &derive(master, "plinth download links v1"),
            ),
        })
    }

    /// `v1:<hex nonce||ciphertext||tag>`.
    pub fn seal(&self, plaintext: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Random)?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("v1:{}", hex::encode(out)))
    }

    pub fn unseal(&self, sealed: &str) -> Result<String, SecretError> {
        let bytes = sealed
            .strip_prefix("v1:")
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SecretError::Unseal)?;
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Unseal)?;
        let mut buf = rest.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .map_err(|_| SecretError::Unseal)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Unseal)
    }

    /// Hex HMAC of `message` for download links.
    pub fn sign_link(&self, message: &str) -> String {
        hex::encode(hmac::sign(&self.links, message.as_bytes()).as_ref())
    }

    /// Constant-time check of a link signature.
    pub fn verify_link(&self, message: &str, signature_hex: &str) -> bool {
        hex::decode(signature_hex)
            .map(|sig| hmac::verify(&self.links, message.as_bytes(), &sig).is_ok())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() -> Result<(), SecretError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("master.key");
        let secrets = Secrets::load_or_create(&path)?;
        let sealed = secrets.seal("ftp://u:p@h/x")?;
        assert!(!sealed.contains("p@h"));
        // Loaded again from disk: the same key.
        let again = Secrets::load_or_create(&path)?;
        assert_eq!(again.unseal(&sealed)?, "ftp://u:p@h/x");
        let mut tampered = sealed.clone();
        let last = tampered.pop().map(|c| if c == '0' { '1' } else { '0' });
        tampered.extend(last);
        assert!(secrets.unseal(&tampered).is_err());
        let sig = secrets.sign_link("img-1\n100");
        assert!(secrets.verify_link("img-1\n100", &sig));
        assert!(!secrets.verify_link("img-2\n100", &sig));
        assert!(!secrets.verify_link("img-1\n100", "zz"));
        Ok(())
    }
}
