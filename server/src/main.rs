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
        print_where_to_go(running.local_addr());
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

/// Tells the person who started the hub where to go, once, after it is listening.
/// Standard error, like the first-start admin password: it is for the terminal, and
/// standard output stays free for whatever a supervisor pipes.
fn print_where_to_go(addr: std::net::SocketAddr) {
    // A wildcard bind is reachable on loopback; a browser cannot open 0.0.0.0.
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let base = format!("http://{host}:{}", addr.port());
    let _ = writeln!(
        std::io::stderr(),
        "\n  Switchboard is listening on {base}\n    inbox:        {base}/\n    demo website: {base}/demo\n    health:       {base}/healthz\n"
    );
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
