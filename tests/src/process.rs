//! A real `switchboard` process, for the tests that need one rather than an
//! in-process server: several nodes on one database (`server/tests/multinode.rs`)
//! and a SIGKILL in the middle of work (`server/tests/broadcast_crash.rs`).
//!
//! The process starts from the binary with a cleared environment (only `PATH`, its
//! address, the bootstrap admin and what the test passes), writes its log to a
//! file the test shows when something goes wrong, and is killed without a
//! shutdown when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Backend, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The last 40 lines of a log file.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// One `switchboard` process and a client for it.
pub struct HubProcess {
    /// Its name in messages (a node id).
    pub name: String,
    /// The process, until killed.
    pub child: Option<Child>,
    /// A client for its address.
    pub srv: TestServer,
    /// Its log file (appended to, so a restart keeps the first run's lines).
    pub log: PathBuf,
}

impl HubProcess {
    /// Starts `binary` (the test's `env!("CARGO_BIN_EXE_switchboard")`) on a free
    /// port with `env` on top of the basics, logging to `log`.
    pub fn spawn(
        binary: &str,
        name: &str,
        backend: Backend,
        env: &[(&str, String)],
        log: &Path,
    ) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHBOARD_BIND", addr.to_string())
            .env("SWITCHBOARD_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start switchboard");
        Self {
            name: name.to_string(),
            child: Some(child),
            srv: TestServer::remote(addr, backend),
            log: log.to_path_buf(),
        }
    }

    /// Waits (up to `patience`) until `/readyz` answers with a body `ready`
    /// accepts; panics with the log's tail if the process exits or never gets there.
    pub async fn wait_ready(&mut self, patience: Duration, ready: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited with {status}:\n{}", self.name, tail(&self.log));
                }
            }
            if let Ok(resp) = self.srv.http.get(self.srv.url("/readyz")).send().await {
                if let Ok(body) = resp.json::<Value>().await {
                    if ready(&body) {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready:\n{}",
                self.name,
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
