//! The `switchboard` binary: reads the environment, starts the hub, and shuts it
//! down gracefully on SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use switchboard::{telemetry, Config};

fn main() -> ExitCode {
    telemetry::init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "switchboard: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_rt::System::new().block_on(async move {
        let running = switchboard::start(config).await?;
        let handle = running.shutdown_handle();
        actix_rt::spawn(async move {
            wait_for_signal().await;
            handle.shutdown().await;
        });
        running.stopped().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, detail = ?e, "switchboard failed");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
