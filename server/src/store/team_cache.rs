//! Per-team settings that every inbound message reads (the lead configuration, the
//! opt-out keywords), kept in memory for a few seconds so the pipeline pays neither
//! a query nor a JSON parse per message.
//!
//! Freshness: the node that saves a setting drops its entry after the commit
//! ([`TeamCache::invalidate`]), so its next message sees the change; other nodes see
//! it within [`TTL`]. A load that raced a save (read the old row, finished after the
//! invalidation) is not kept: every invalidation moves a generation, and a load only
//! stores its value when the generation it started at is still current.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long another node's change may go unseen here.
pub const TTL: Duration = Duration::from_secs(5);

/// One kind of per-team setting, by team id.
pub struct TeamCache<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    entries: HashMap<String, (Instant, Arc<T>)>,
    generation: u64,
}

impl<T> Default for TeamCache<T> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                generation: 0,
            }),
        }
    }
}

impl<T> TeamCache<T> {
    /// The team's value: the cached one if younger than [`TTL`], else `load`'s.
    ///
    /// # Errors
    /// `load`'s error; nothing is cached then.
    pub fn get<E>(&self, team_id: &str, load: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let generation = {
            let inner = self.inner.lock();
            if let Some((at, value)) = inner.entries.get(team_id) {
                if at.elapsed() < TTL {
                    return Ok(value.clone());
                }
            }
            inner.generation
        };
        let value = Arc::new(load()?);
        let mut inner = self.inner.lock();
        if inner.generation == generation {
            inner
                .entries
                .insert(team_id.to_string(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// The team's cached value if younger than [`TTL`], without loading: for a caller
    /// that would have to hop to a blocking thread to load it, and decides to only
    /// when this says `None`.
    pub fn peek(&self, team_id: &str) -> Option<Arc<T>> {
        let inner = self.inner.lock();
        inner
            .entries
            .get(team_id)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, value)| value.clone())
    }

    /// Forgets the team's value; call after the change committed.
    pub fn invalidate(&self, team_id: &str) {
        let mut inner = self.inner.lock();
        inner.generation += 1;
        inner.entries.remove(team_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_value_is_reused_until_invalidated() {
        let cache = TeamCache::<u32>::default();
        let mut loads = 0;
        let mut get = |cache: &TeamCache<u32>, v: u32| {
            *cache
                .get("t", || {
                    loads += 1;
                    Ok::<_, ()>(v)
                })
                .unwrap()
        };
        assert!(cache.peek("t").is_none(), "nothing to peek before a load");
        assert_eq!(get(&cache, 1), 1);
        assert_eq!(get(&cache, 2), 1, "cached");
        assert_eq!(cache.peek("t").as_deref(), Some(&1));
        cache.invalidate("t");
        assert!(cache.peek("t").is_none(), "a change is not peeked at");
        assert_eq!(get(&cache, 3), 3, "reloaded after the change");
        assert_eq!(loads, 2);
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_kept() {
        let cache = TeamCache::<u32>::default();
        let stale = cache
            .get("t", || {
                // The save commits and invalidates while this load is under way.
                cache.invalidate("t");
                Ok::<_, ()>(1)
            })
            .unwrap();
        assert_eq!(*stale, 1, "the caller still gets what it read");
        assert_eq!(*cache.get("t", || Ok::<_, ()>(2)).unwrap(), 2);
        assert!(
            cache.get("t", || Err::<u32, _>("no db")).is_ok(),
            "now cached"
        );
    }
}
