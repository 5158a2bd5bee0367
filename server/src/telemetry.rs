//! Logging setup (`tracing`). `RUST_LOG` chooses what is shown; the default is
//! `info` for the hub and `warn` for libraries. Secrets and tokens are never logged:
//! configuration secrets are wrapped in [`crate::config::Secret`], request logs
//! omit query strings and headers.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (e.g. several tests in one
/// process) is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,switchboard=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
