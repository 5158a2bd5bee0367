//! This node's copy of the WhatsApp numbers with their secrets opened, so the two
//! hot paths — verifying a Meta or WAHA webhook and sending an outbox row — neither
//! read `whatsapp_numbers` nor run HKDF + AEAD per request.
//!
//! Freshness: the copy is rebuilt when [`crate::hub::Hub::numbers_generation`] moves
//! (every change through the admin API publishes [`crate::bus::BusEvent::NumbersChanged`],
//! which reaches every node; a node that lost its Redis link resyncs, which bumps it
//! too) and, as a backstop for a change made outside the API, after [`MAX_AGE`].
//! A number's WAHA session status is not part of the copy: it is read from the
//! database where it is shown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::{all, credentials_of, NumberRow};
use crate::channels::numbers::{Credentials, MetaCredentials, NumberId};
use crate::channels::Provider;
use crate::error::AppError;
use crate::state::AppState;

/// How long a copy is trusted without a change notice (a row edited by hand in
/// the database, say).
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// One number as cached: the row (secrets still sealed) and its opened credentials.
#[derive(Debug, Clone)]
pub struct CachedNumber {
    /// The stored row.
    pub row: NumberRow,
    /// Its credentials, secrets opened.
    pub credentials: Credentials,
}

/// Every number at one moment.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    loaded: Instant,
    numbers: Vec<CachedNumber>,
    /// Indexes of the active Meta numbers in `numbers`, in id order.
    active_meta: Vec<usize>,
}

impl Snapshot {
    /// Every number, active or not.
    pub fn all(&self) -> impl Iterator<Item = &CachedNumber> {
        self.numbers.iter()
    }

    /// A number by id, active or not.
    pub fn get(&self, id: &str) -> Option<&CachedNumber> {
        self.numbers.iter().find(|n| n.row.id == id)
    }

    /// The credentials of every active Meta number (webhook verification picks
    /// among them), in id order.
    pub fn active_meta(&self) -> impl Iterator<Item = &MetaCredentials> {
        self.active_meta
            .iter()
            .filter_map(|&i| match &self.numbers[i].credentials {
                Credentials::Meta(m) => Some(m),
                Credentials::Waha(_) => None,
            })
    }

    /// The WAHA number of `session`, else the active env WAHA number (which, as
    /// before several numbers existed, takes any session).
    pub fn waha_by_session(&self, session: &str) -> Option<&CachedNumber> {
        self.numbers
            .iter()
            .find(|n| {
                n.row.provider() == Provider::Waha && n.row.waha_session.as_deref() == Some(session)
            })
            .or_else(|| self.get(NumberId::ENV_WAHA).filter(|n| n.row.active))
    }
}

/// The per-node cache; one lives in [`AppState`].
#[derive(Debug, Default)]
pub struct NumberCache {
    current: RwLock<Option<Arc<Snapshot>>>,
}

impl NumberCache {
    /// An empty cache: the first use loads.
    pub fn new() -> Self {
        Self::default()
    }

    /// The numbers as of now: the cached copy while it is fresh, else a new one
    /// read from the database (one query) and opened.
    ///
    /// # Errors
    /// Database errors (the cache is left as it was).
    pub async fn snapshot(&self, state: &AppState) -> Result<Arc<Snapshot>, AppError> {
        let generation = state.hub.numbers_generation();
        if let Some(s) = self.current.read().as_ref() {
            if s.generation == generation && s.loaded.elapsed() < MAX_AGE {
                return Ok(s.clone());
            }
        }
        let rows = state.db.run(all).await?;
        let cfg = &state.config.whatsapp;
        let numbers: Vec<CachedNumber> = rows
            .into_iter()
            .map(|row| CachedNumber {
                credentials: credentials_of(&row, &state.secrets, cfg),
                row,
            })
            .collect();
        // The same filter and order as `active_meta_rows`, the database's answer
        // to the same question.
        let mut active_meta: Vec<usize> = (0..numbers.len())
            .filter(|&i| numbers[i].row.active && numbers[i].row.provider() == Provider::Meta)
            .collect();
        active_meta.sort_by(|&a, &b| numbers[a].row.id.cmp(&numbers[b].row.id));
        let snapshot = Arc::new(Snapshot {
            generation,
            loaded: Instant::now(),
            numbers,
            active_meta,
        });
        *self.current.write() = Some(snapshot.clone());
        Ok(snapshot)
    }
}
