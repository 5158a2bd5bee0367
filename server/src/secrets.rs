//! Secrets at rest: the credentials of WhatsApp numbers (access tokens, app
//! secrets, WAHA API and HMAC keys) are stored encrypted with XChaCha20-Poly1305
//! (RustCrypto `chacha20poly1305`, an AEAD), never as plaintext.
//!
//! Key: HKDF-SHA256 (RFC 5869, `hkdf` crate) over the first of
//! 1. `SWITCHBOARD_NUMBERS_KEY` — recommended: a key kept apart from the database;
//! 2. the hub secret — `SWITCHBOARD_SECRET`, or when that is unset the token secret
//!    the hub generated and keeps in its `settings` table (`bootstrap.rs`). That
//!    choice survives restarts and needs no configuration, but the key then lives in
//!    the same database as the ciphertext: it protects a leaked backup of the
//!    `whatsapp_numbers` table, not a leaked database (`docs/channels/whatsapp.md`).
//!
//! Stored form: `v1:<hex nonce ‖ ciphertext>`. The number id and column name are
//! the associated data, so a ciphertext copied to another row or column does not
//! decrypt. Changing the key makes existing secrets unreadable: they show as
//! "unreadable" and must be entered again.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::config::Secret;
use crate::error::AppError;

/// Prefix of the stored form; a later format gets `v2:`.
const VERSION: &str = "v1:";
/// Length of an XChaCha20 nonce, in bytes.
const NONCE_LEN: usize = 24;
/// HKDF `info`: binds the derived key to this one use of the input secret.
const INFO: &[u8] = b"switchboard whatsapp-numbers secrets v1";

/// HKDF `info` of the hub's Meta verify token (independent of the cipher key).
const VERIFY_INFO: &[u8] = b"switchboard meta verify token v1";

/// Where the key came from (shown in the start-up log, never the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `SWITCHBOARD_NUMBERS_KEY`.
    NumbersKey,
    /// The hub secret (`SWITCHBOARD_SECRET` or the generated one in the database).
    HubSecret,
}

/// Encrypts and decrypts secrets at rest. Cheap to share behind an `Arc`.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    source: KeySource,
    verify_token: String,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why a stored secret could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not in the `v1:<hex>` form.
    #[error("not an encrypted secret")]
    Malformed,
    /// The key is not the one it was sealed with, or the value was altered.
    #[error("cannot be decrypted with the current key")]
    WrongKey,
}

impl SecretBox {
    /// Derives the key from `numbers_key` when given, else from `hub_secret`.
    pub fn new(numbers_key: Option<&Secret>, hub_secret: &Secret) -> Self {
        let (ikm, source) = match numbers_key {
            Some(k) => (k.expose(), KeySource::NumbersKey),
            None => (hub_secret.expose(), KeySource::HubSecret),
        };
        let hk = Hkdf::<Sha256>::new(Some(b"switchboard"), ikm.as_bytes());
        let mut key = [0u8; 32];
        // HKDF-SHA256 can produce up to 255 × 32 bytes; 32 and 16 always fit.
        let _ = hk.expand(INFO, &mut key);
        let mut token = [0u8; 16];
        let _ = hk.expand(VERIFY_INFO, &mut token);
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            source,
            verify_token: hex::encode(token),
        }
    }

    /// Where the key came from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// A verify token for Meta's webhook subscription handshake that needs no
    /// configuration: derived from the same input key (another HKDF `info`), stable
    /// across restarts and nodes, shown to admins in the numbers screen. It only
    /// lets someone subscribe a webhook URL, which Meta then signs with the app
    /// secret; it opens nothing.
    pub fn meta_verify_token(&self) -> &str {
        &self.verify_token
    }

    /// Encrypts `plain` for the column `field` of row `row_id`.
    ///
    /// # Errors
    /// [`AppError::Internal`] if the AEAD refuses (only for absurd lengths).
    pub fn seal(&self, row_id: &str, field: &str, plain: &str) -> Result<String, AppError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(row_id, field);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| AppError::internal("secret encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}{}", hex::encode(out)))
    }

    /// Decrypts what [`SecretBox::seal`] produced for the same row and field.
    ///
    /// # Errors
    /// [`OpenError`] when the value is malformed, altered, moved, or sealed under
    /// another key.
    pub fn open(&self, row_id: &str, field: &str, stored: &str) -> Result<Secret, OpenError> {
        let bytes = stored
            .strip_prefix(VERSION)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(OpenError::Malformed)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        let aad = aad(row_id, field);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::WrongKey)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| OpenError::Malformed)
    }
}

fn aad(row_id: &str, field: &str) -> Vec<u8> {
    format!("{row_id}\u{0}{field}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_in_place_and_under_the_same_key() {
        let hub = Secret::new("hub-secret");
        let b = SecretBox::new(None, &hub);
        assert_eq!(b.source(), KeySource::HubSecret);
        let sealed = b.seal("n1", "access_token", "EAAG-token").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("EAAG"));
        assert_ne!(sealed, b.seal("n1", "access_token", "EAAG-token").unwrap());
        assert_eq!(
            b.open("n1", "access_token", &sealed).unwrap().expose(),
            "EAAG-token"
        );
        assert_eq!(
            b.open("n2", "access_token", &sealed).unwrap_err(),
            OpenError::WrongKey
        );
        assert_eq!(
            b.open("n1", "app_secret", &sealed).unwrap_err(),
            OpenError::WrongKey
        );
        let other = SecretBox::new(Some(&Secret::new("numbers-key")), &hub);
        assert_eq!(other.source(), KeySource::NumbersKey);
        assert_eq!(
            other.open("n1", "access_token", &sealed).unwrap_err(),
            OpenError::WrongKey
        );
        assert_eq!(
            b.open("n1", "access_token", "EAAG").unwrap_err(),
            OpenError::Malformed
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(b.open("n1", "access_token", &tampered).is_err());
    }
}
