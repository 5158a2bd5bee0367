//! Starting and stopping the processes under test (the hub, the peers), and what
//! `/proc` says about them: resident memory and CPU time.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// A process under test; killed when dropped.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    pid: u32,
}

impl Proc {
    /// Spawns `program args` with `env`, its standard output (where the hub's
    /// `tracing` logs go) and error into `log`, and waits
    /// until `port` accepts TCP connections.
    pub async fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        port: u16,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log).with_context(|| format!("log {log:?}"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {name} ({program:?})"))?;
        let pid = child.id().context("child has a pid while running")?;
        let mut p = Self {
            name: name.to_string(),
            child,
            pid,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(p);
            }
            if let Some(status) = p.child.try_wait()? {
                bail!("{name} exited at start ({status}); see {log:?}");
            }
            if Instant::now() > deadline {
                bail!("{name} did not listen on {port} within 60 s; see {log:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// SIGTERM, then SIGKILL after a few seconds.
    pub async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(8), self.child.wait())
            .await
            .is_err()
        {
            let _ = writeln!(
                std::io::stderr(),
                "[bench] {} ignored SIGTERM; killing",
                self.name
            );
            let _ = self.child.kill().await;
        }
    }
}

/// `VmRSS` of a process in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS line")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?;
    Ok(kb * 1024)
}

/// User + system CPU seconds of a process (fields 14 and 15 of `/proc/<pid>/stat`).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields are counted after its ')'.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds of every `postgres` process (the database's share of the work).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| cpu_seconds(pid).ok())
        .sum()
}

/// Paths of the programs under test.
#[derive(Clone, Debug)]
pub struct Programs {
    /// `target/release/switchboard`.
    pub hub: PathBuf,
    /// `target/release/raw-hub`.
    pub raw_hub: PathBuf,
    /// `target/release/noop-http`.
    pub noop_http: PathBuf,
    /// `target/release/fake-graph` (the broadcast workload's provider).
    pub fake_graph: PathBuf,
    /// `node`.
    pub node: PathBuf,
    /// `bench/peers/node`.
    pub node_dir: PathBuf,
}
