//! `switchboard-bench`: runs Switchboard and its peers side by side, in
//! interleaved rounds, on SQLite and PostgreSQL, and writes
//! `bench/results/<date>.json` and `.md` (ratios with min / median / max).
//!
//! ```text
//! switchboard-bench all [--quick] [--rounds N] [--secs S] [--backends sqlite,postgres]
//!                       [--workloads latency,durable,connections,webhooks,routing,broadcast,newlead]
//!                       [--broadcast-recipients N] [--lead-contacts 1000,100000] [--new-leads N]
//!                       [--rates 1000,5000,10000] [--conns 5000,10000,19000] [--out DIR]
//! ```
//! `bench/run.sh` builds everything, installs the Node peers and calls this.

mod broadcast;
mod clients;
mod db;
mod newlead;
mod procs;
mod report;
mod stats;
mod workloads;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use clients::Kind;
use db::{Backend, Db};
use procs::{Proc, Programs};
use report::{Goal, Record};
use workloads::{Api, Chat, ConnTarget, Webhooks};

const HUB_PORT: u16 = 9100;
const RAW_PORT: u16 = 9101;
const SIO_PORT: u16 = 9102;
const NOOP_PORT: u16 = 9103;
const WS_PORT: u16 = 9104;
const GRAPH_PORT: u16 = 9105;

/// Run options.
#[derive(Clone, Debug)]
struct Opts {
    rounds: usize,
    secs: f64,
    warmup: f64,
    durable_secs: f64,
    window: usize,
    conversations: usize,
    rates: Vec<f64>,
    conns: Vec<usize>,
    webhook_rate: f64,
    webhook_concurrency: usize,
    routing_leads: usize,
    routing_agents: usize,
    broadcast_recipients: usize,
    lead_contacts: Vec<u64>,
    new_leads: u64,
    backends: Vec<Backend>,
    workloads: Vec<String>,
    out: PathBuf,
    pg_admin: String,
    quick: bool,
}

impl Opts {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let quick = args.iter().any(|a| a == "--quick");
        let mut o = Opts {
            rounds: if quick { 2 } else { 5 },
            secs: if quick { 3.0 } else { 8.0 },
            warmup: if quick { 1.0 } else { 2.0 },
            durable_secs: if quick { 4.0 } else { 8.0 },
            window: 2,
            conversations: 1000,
            rates: vec![1000.0, 5000.0, 10000.0],
            conns: if quick {
                vec![2000, 5000]
            } else {
                vec![5000, 10000, 19000]
            },
            webhook_rate: 500.0,
            webhook_concurrency: 16,
            routing_leads: if quick { 10 } else { 40 },
            routing_agents: 30,
            broadcast_recipients: if quick { 2_000 } else { 10_000 },
            lead_contacts: vec![1_000, 100_000],
            new_leads: if quick { 500 } else { 1_000 },
            backends: vec![Backend::Sqlite, Backend::Postgres],
            workloads: [
                "latency",
                "durable",
                "connections",
                "webhooks",
                "routing",
                "broadcast",
                "newlead",
            ]
            .map(String::from)
            .to_vec(),
            out: PathBuf::from("bench/results"),
            pg_admin: std::env::var("BENCH_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            quick,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || {
                it.next()
                    .cloned()
                    .with_context(|| format!("{a} needs a value"))
            };
            match a.as_str() {
                "--quick" | "all" => {}
                "--rounds" => o.rounds = val()?.parse()?,
                "--secs" => o.secs = val()?.parse()?,
                "--durable-secs" => o.durable_secs = val()?.parse()?,
                "--window" => o.window = val()?.parse()?,
                "--conversations" => o.conversations = val()?.parse()?,
                "--rates" => o.rates = list(&val()?)?,
                "--conns" => o.conns = list(&val()?)?,
                "--routing-leads" => o.routing_leads = val()?.parse()?,
                "--broadcast-recipients" => o.broadcast_recipients = val()?.parse()?,
                "--lead-contacts" => o.lead_contacts = list(&val()?)?,
                "--new-leads" => o.new_leads = val()?.parse()?,
                "--out" => o.out = PathBuf::from(val()?),
                "--workloads" => o.workloads = val()?.split(',').map(String::from).collect(),
                "--backends" => {
                    o.backends = val()?
                        .split(',')
                        .map(|b| match b {
                            "sqlite" => Ok(Backend::Sqlite),
                            "postgres" => Ok(Backend::Postgres),
                            other => Err(anyhow::anyhow!("unknown backend {other}")),
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                other => anyhow::bail!("unknown argument {other}"),
            }
        }
        Ok(o)
    }

    fn has(&self, w: &str) -> bool {
        self.workloads.iter().any(|x| x == w)
    }
}

fn list<T: std::str::FromStr>(s: &str) -> anyhow::Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.split(',').map(|x| Ok(x.trim().parse()?)).collect()
}

/// Messages not yet through the hub's inbound pipeline (`docs/architecture.md`):
/// customers' and agents' (the hub's own bot and system messages have no stage and
/// are only read past).
const PIPELINE_BEHIND_SQL: &str = "SELECT count(*) AS n FROM messages m \
     LEFT JOIN pipeline_progress p ON p.conversation_id = m.conversation_id \
     WHERE m.seq > COALESCE(p.seq, 0) AND m.sender_kind IN ('guest', 'agent')";

impl Run {
    /// After a durable phase: how many of its messages the pipeline (lead
    /// bookkeeping, bot) had not reached when the phase ended, and how long it took
    /// to reach every one (polled every 250 ms, given up after 120 s). Every message
    /// must get there: `bookkept` is the share that did.
    async fn pipeline_catch_up(
        &mut self,
        db: &Db,
        b: &str,
        rows: i64,
    ) -> anyhow::Result<serde_json::Value> {
        let start = std::time::Instant::now();
        let behind_at_end = db.count(PIPELINE_BEHIND_SQL)?;
        let mut behind = behind_at_end;
        while behind > 0 && start.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            behind = db.count(PIPELINE_BEHIND_SQL)?;
        }
        let drain = start.elapsed().as_secs_f64();
        let bookkept = 1.0 - behind as f64 / rows.max(1) as f64;
        say(format!(
            "  switchboard pipeline: {behind_at_end} behind at the end of the phase; \
             caught up in {drain:.1} s; {behind} never reached; bookkept {bookkept:.4}"
        ));
        self.rec
            .push(format!("{b}.durable.pipeline.bookkept"), Some(bookkept));
        self.rec
            .push(format!("{b}.durable.pipeline.catch_up_s"), Some(drain));
        Ok(
            json!({"behind_at_end": behind_at_end, "never_reached": behind, "catch_up_s": drain, "bookkept": bookkept}),
        )
    }
}

/// Progress on standard error.
fn say(msg: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "[bench] {}", msg.as_ref());
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("all") {
        anyhow::bail!("usage: switchboard-bench all [--quick] [options] (see src/main.rs)");
    }
    let opts = Opts::parse(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(opts))
}

fn programs() -> anyhow::Result<Programs> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let release = Path::new(&target).join("release");
    let p = Programs {
        hub: release.join("switchboard"),
        raw_hub: release.join("raw-hub"),
        noop_http: release.join("noop-http"),
        fake_graph: release.join("fake-graph"),
        node: PathBuf::from("node"),
        node_dir: PathBuf::from("bench/peers/node"),
    };
    for path in [&p.hub, &p.raw_hub, &p.noop_http, &p.fake_graph] {
        anyhow::ensure!(
            path.exists(),
            "{path:?} missing: run bench/run.sh (it builds in release)"
        );
    }
    Ok(p)
}

struct Run {
    opts: Opts,
    progs: Programs,
    dir: PathBuf,
    rec: Record,
    seq: usize,
}

async fn run(opts: Opts) -> anyhow::Result<()> {
    let progs = programs()?;
    let date = chrono_like_now();
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{date}"));
    std::fs::create_dir_all(&dir)?;
    say(format!(
        "run directory {dir:?}; open files limit {}",
        workloads::open_files_limit()
    ));
    let mut r = Run {
        opts: opts.clone(),
        progs,
        dir: dir.clone(),
        rec: Record::default(),
        seq: 0,
    };
    // The broadcast workload's provider lives for the whole run; the hub's Meta
    // number points at it only when that workload is on.
    let _graph = if opts.has("broadcast") {
        let bind = format!("127.0.0.1:{GRAPH_PORT}");
        let log = dir.join("fake-graph.log");
        Some(
            Proc::spawn(
                "fake graph",
                &r.progs.fake_graph,
                &[&bind],
                &[],
                GRAPH_PORT,
                &log,
            )
            .await?,
        )
    } else {
        None
    };
    let machine = machine();
    let goals = goals(&opts);
    std::fs::create_dir_all(&opts.out)?;
    let json_path = opts.out.join(format!("{date}.json"));
    let md_path = opts.out.join(format!("{date}.md"));
    let mut md = String::new();
    for round in 0..opts.rounds {
        for &backend in &opts.backends {
            say(format!(
                "round {} / {} on {}",
                round + 1,
                opts.rounds,
                backend.name()
            ));
            let detail = r.round(round, backend).await?;
            r.rec.details.push(detail);
        }
        // Written after every round, so an interrupted run still leaves its
        // completed rounds behind.
        let meta = json!({
            "date": date,
            "machine": machine,
            "rounds": round + 1,
            "rounds_planned": opts.rounds,
            "quick": opts.quick,
            "options": format!("{opts:?}"),
        });
        let doc = r.rec.json(meta.clone(), &goals);
        std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)?;
        md = r.rec.markdown(&meta, &goals);
        std::fs::write(&md_path, &md)?;
        say(format!(
            "wrote {json_path:?} and {md_path:?} ({} rounds)",
            round + 1
        ));
    }
    std::io::stdout().write_all(md.as_bytes())?;
    if std::env::var_os("BENCH_HUB_LOG").is_some() {
        say(format!("hub logs kept in {dir:?}"));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Issue 15's targets, per backend (ratios inside one round).
fn goals(o: &Opts) -> Vec<Goal> {
    let mut g = Vec::new();
    let goal = |label: String, key: String, target: f64, at_least: bool| Goal {
        label,
        key,
        target,
        at_least,
    };
    for backend in &o.backends {
        let b = backend.name();
        let (raw, webhooks) = match backend {
            Backend::Sqlite => (0.5, 0.3),
            Backend::Postgres => (0.4, 0.2),
        };
        g.push(goal(
            format!("{b}: durable throughput ≥ {raw} × the raw batched insert rate"),
            format!("{b}.durable.switchboard_over_raw_insert"),
            raw,
            true,
        ));
        g.push(goal(
            format!("{b}: every durable message through the pipeline (bookkept)"),
            format!("{b}.durable.pipeline.bookkept"),
            1.0,
            true,
        ));
        g.push(goal(
            format!("{b}: p99 at 5k msgs/s ≤ 0.5 × the Socket.IO peer's"),
            format!("{b}.latency.5000.p99_switchboard_over_socketio"),
            0.5,
            false,
        ));
        let top = o.conns.iter().max().copied().unwrap_or(0);
        g.push(goal(
            format!("{b}: ≤ 12 KB per idle session ({top} sessions)"),
            format!("{b}.connections.{top}.switchboard.kb_per_session"),
            12.0,
            false,
        ));
        if o.has("broadcast") {
            g.push(goal(
                format!("{b}: inbound p99 during a broadcast ≤ 1.2 × before it"),
                format!("{b}.broadcast.p99_during_over_before"),
                1.2,
                false,
            ));
        }
        if o.has("newlead") && o.lead_contacts.len() > 1 {
            g.push(goal(
                format!(
                    "{b}: new leads/s at {} contacts ≥ 0.8 × at {} (a new lead's cost flat)",
                    o.lead_contacts.last().copied().unwrap_or(0),
                    o.lead_contacts.first().copied().unwrap_or(0)
                ),
                format!("{b}.newlead.largest_over_smallest"),
                0.8,
                true,
            ));
        }
        g.push(goal(
            format!("{b}: verified webhooks ≥ {webhooks} × the do-nothing handler"),
            format!("{b}.webhooks.switchboard_over_noop"),
            webhooks,
            true,
        ));
    }
    g
}

impl Run {
    fn hub_env(&self, db: &Db) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("SWITCHBOARD_BIND", format!("127.0.0.1:{HUB_PORT}")),
            ("DATABASE_URL", db.hub_url()),
            ("SWITCHBOARD_ADMIN_EMAIL", workloads::ADMIN_EMAIL.into()),
            (
                "SWITCHBOARD_ADMIN_PASSWORD",
                workloads::ADMIN_PASSWORD.into(),
            ),
            (
                "SWITCHBOARD_SECRET",
                "bench-secret-0123456789abcdef0123456789".into(),
            ),
            ("SWITCHBOARD_RATE_LOGIN", "1000000".into()),
            ("SWITCHBOARD_RATE_WIDGET", "1000000".into()),
            // The load generator is thousands of guests on one address, sending as
            // fast as they can: the abuse limits would measure themselves.
            ("SWITCHBOARD_RATE_GUEST_BURST", "1000000".into()),
            ("SWITCHBOARD_RATE_GUEST_MESSAGES", "1000000".into()),
            ("SWITCHBOARD_RATE_GUEST_ADDR_BURST", "1000000".into()),
            ("SWITCHBOARD_RATE_GUEST_ADDR_MESSAGES", "1000000".into()),
            ("SWITCHBOARD_RATE_WEBHOOK", "100000000".into()),
            ("SWITCHBOARD_WS_OUTBOUND_QUEUE", "8192".into()),
            ("WHATSAPP_APP_SECRET", workloads::APP_SECRET.into()),
            // `BENCH_HUB_LOG` (a `RUST_LOG` filter) to see what the hub decides
            // during a run, in `<run directory>/hub-<n>.log`.
            (
                "RUST_LOG",
                std::env::var("BENCH_HUB_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if self.opts.has("broadcast") {
            for (k, v) in [
                ("WHATSAPP_ACCESS_TOKEN", "bench-token".to_string()),
                ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922".into()),
                ("WHATSAPP_WABA_ID", "102290129340398".into()),
                (
                    "WHATSAPP_GRAPH_URL",
                    format!("http://127.0.0.1:{GRAPH_PORT}/v25.0"),
                ),
            ] {
                env.push((k.to_string(), v));
            }
        }
        env
    }

    fn fresh_db(&mut self, backend: Backend, what: &str) -> anyhow::Result<Db> {
        self.seq += 1;
        let name = format!("bench_{}_{}_{what}", std::process::id(), self.seq);
        Db::create(backend, &name, &self.dir, &self.opts.pg_admin)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-{}.log", self.seq))
    }

    async fn start_hub(&mut self, backend: Backend) -> anyhow::Result<(Proc, Db)> {
        let db = self.fresh_db(backend, "hub")?;
        let env = self.hub_env(&db);
        let log = self.log("hub");
        let hub = Proc::spawn("switchboard", &self.progs.hub, &[], &env, HUB_PORT, &log).await?;
        // Ready means migrated and the admin exists.
        let api = Api::new(addr(HUB_PORT))?;
        for _ in 0..200 {
            if api.get("/readyz", None).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((hub, db))
    }

    async fn start_sio(&mut self, backend: Backend) -> anyhow::Result<(Proc, Db)> {
        let db = self.fresh_db(backend, "sio")?;
        let env = vec![
            ("PORT".to_string(), SIO_PORT.to_string()),
            ("DB".to_string(), db.peer_url()),
        ];
        let script = self.progs.node_dir.join("socketio-server.js");
        let script = script.to_string_lossy().into_owned();
        let log = self.log("socketio");
        let p = Proc::spawn(
            "socket.io peer",
            &self.progs.node,
            &[&script],
            &env,
            SIO_PORT,
            &log,
        )
        .await?;
        Ok((p, db))
    }

    async fn round(&mut self, round: usize, backend: Backend) -> anyhow::Result<Value> {
        let b = backend.name();
        let o = self.opts.clone();
        let secs = Duration::from_secs_f64(o.secs);
        let warm = Duration::from_secs_f64(o.warmup);
        let dsecs = Duration::from_secs_f64(o.durable_secs);
        let mut detail = json!({"round": round, "backend": b});
        let mut order = vec![Kind::Ours, Kind::SocketIo, Kind::Raw];
        if round % 2 == 1 {
            order.reverse();
        }

        if o.has("durable") {
            let db = self.fresh_db(backend, "raw")?;
            let threads = if backend == Backend::Sqlite { 1 } else { 4 };
            let d = db.clone();
            let rate = tokio::task::spawn_blocking(move || d.raw_insert_rate(100, threads, dsecs))
                .await??;
            db.drop_db(&o.pg_admin);
            say(format!("  raw batched insert: {rate:.0} rows/s"));
            self.rec
                .push(format!("{b}.durable.raw_insert.rows_per_s"), Some(rate));
            detail["raw_insert_rows_per_s"] = json!(rate);
        }

        for kind in order {
            // Webhooks, routing and broadcast run on the hub alone; without this
            // `--workloads broadcast` started no hub and measured nothing.
            let hub_only = o.has("webhooks") || o.has("routing") || o.has("broadcast");
            if !(o.has("latency") || o.has("durable") || (kind == Kind::Ours && hub_only)) {
                continue;
            }
            let name = kind.name();
            let (proc_, db) = match kind {
                Kind::Ours => {
                    let (p, d) = self.start_hub(backend).await?;
                    (p, Some(d))
                }
                Kind::SocketIo => {
                    let (p, d) = self.start_sio(backend).await?;
                    (p, Some(d))
                }
                Kind::Raw => {
                    let log = self.log("raw");
                    let bind = format!("127.0.0.1:{RAW_PORT}");
                    (
                        Proc::spawn(
                            "raw hub",
                            &self.progs.raw_hub,
                            &[&bind],
                            &[],
                            RAW_PORT,
                            &log,
                        )
                        .await?,
                        None,
                    )
                }
            };
            let result = self
                .chat_target(kind, backend, &proc_, db.as_ref(), secs, warm, dsecs)
                .await;
            let v = match result {
                Ok(v) => v,
                Err(e) => {
                    say(format!("  {name} failed: {e:#}"));
                    json!({"error": format!("{e:#}")})
                }
            };
            detail[name] = v;
            proc_.stop().await;
            if let Some(db) = db {
                db.drop_db(&o.pg_admin);
            }
        }

        if o.has("webhooks") {
            let log = self.log("noop");
            let bind = format!("127.0.0.1:{NOOP_PORT}");
            let p = Proc::spawn(
                "noop http",
                &self.progs.noop_http,
                &[&bind],
                &[],
                NOOP_PORT,
                &log,
            )
            .await?;
            let wh = Webhooks::new(
                format!("http://127.0.0.1:{NOOP_PORT}/webhooks/whatsapp"),
                200,
            )?;
            wh.warm().await;
            let (rate, ok, bad) = wh.throughput(o.webhook_concurrency, secs).await;
            let (lat, fail) = wh.fixed_rate(o.webhook_rate, secs).await;
            say(format!(
                "  noop handler: {rate:.0} req/s; p99 at {} /s {:?} ms",
                o.webhook_rate,
                lat.quantile_ms(0.99)
            ));
            self.rec
                .push(format!("{b}.webhooks.noop.per_s"), Some(rate));
            self.rec
                .push(format!("{b}.webhooks.noop.p99_ms"), lat.quantile_ms(0.99));
            detail["noop_webhooks"] = json!({"per_s": rate, "ok": ok, "failed": bad, "fixed_rate": lat.summary(), "fixed_rate_failed": fail});
            p.stop().await;
            let ours = self
                .rec
                .samples
                .get(&format!("{b}.webhooks.switchboard.per_s"))
                .and_then(|v| v.last().copied());
            if detail["switchboard"]["webhooks"].is_object() {
                self.rec.push(
                    format!("{b}.webhooks.switchboard_over_noop"),
                    stats::ratio(ours, Some(rate)),
                );
            }
        }

        if o.has("newlead") {
            detail["newlead"] = self.new_leads(backend).await;
        }

        if o.has("connections") {
            detail["connections"] = self.connections(round, backend).await?;
        }

        // Ratios inside this round.
        for rate in &o.rates {
            let r = *rate as u64;
            for q in ["p50_ms", "p99_ms", "p999_ms"] {
                let get = |who: &str| detail[who]["latency"][r.to_string()][q].as_f64();
                let qn = q.trim_end_matches("_ms");
                self.rec.push(
                    format!("{b}.latency.{r}.{qn}_switchboard_over_socketio"),
                    stats::ratio(get("switchboard"), get("socketio")),
                );
                self.rec.push(
                    format!("{b}.latency.{r}.{qn}_switchboard_over_raw"),
                    stats::ratio(get("switchboard"), get("raw_hub")),
                );
            }
        }
        let ours = detail["switchboard"]["durable"]["acks_per_s"].as_f64();
        self.rec.push(
            format!("{b}.durable.switchboard_over_raw_insert"),
            stats::ratio(ours, detail["raw_insert_rows_per_s"].as_f64()),
        );
        self.rec.push(
            format!("{b}.durable.switchboard_over_socketio"),
            stats::ratio(ours, detail["socketio"]["durable"]["acks_per_s"].as_f64()),
        );
        Ok(detail)
    }

    #[allow(clippy::too_many_arguments)]
    async fn chat_target(
        &mut self,
        kind: Kind,
        backend: Backend,
        p: &Proc,
        db: Option<&Db>,
        secs: Duration,
        warm: Duration,
        dsecs: Duration,
    ) -> anyhow::Result<Value> {
        let b = backend.name();
        let name = kind.name();
        let o = self.opts.clone();
        let a = match kind {
            Kind::Ours => addr(HUB_PORT),
            Kind::SocketIo => addr(SIO_PORT),
            Kind::Raw => addr(RAW_PORT),
        };
        let mut out = json!({});
        let (convs, agent_token, api) = if kind == Kind::Ours {
            let api = Api::new(a)?;
            let admin = api.admin().await?;
            let team = api.team_id(&admin, "default").await?;
            api.put(
                &format!("/api/teams/{team}/routing"),
                Some(&admin),
                &json!({"routing_mode": "manual"}),
            )
            .await?;
            let convs = api.guests("default", o.conversations).await?;
            (convs, admin, Some(api))
        } else {
            let convs = (0..o.conversations)
                .map(|i| (format!("c{i}"), String::new()))
                .collect();
            (convs, String::new(), None)
        };
        let chat = Chat::connect(kind, a, &convs, &agent_token).await?;
        say(format!("  {name}: {} conversations connected", convs.len()));
        // The setup's guests are new leads: their bookkeeping is setup, not the first
        // phase's load (each phase's own messages are still bookkept while measured).
        if let (Kind::Ours, Some(db)) = (kind, db) {
            let waited = broadcast::settle(db).await?;
            say(format!(
                "  switchboard settled in {waited:.1} s after the setup"
            ));
        }

        if o.has("latency") {
            let mut lat = json!({});
            let mut overloaded = false;
            for rate in &o.rates {
                if overloaded {
                    // A target that could not keep up at a lower rate only builds a
                    // backlog here that poisons the phases after it.
                    say(format!(
                        "  {name}: skipping {rate}/s (overloaded at a lower rate)"
                    ));
                    lat[(*rate as u64).to_string()] =
                        json!({"skipped": "overloaded at a lower rate"});
                    continue;
                }
                let v = chat.latency(*rate, warm, secs).await?;
                overloaded = v["lost"].as_u64().unwrap_or(0) > 0
                    || v["p99_ms"].as_f64().is_none_or(|p| p > 2000.0);
                say(format!(
                    "  {name} latency at {rate}/s: p50 {} p99 {} p99.9 {} ms, lost {}",
                    v["p50_ms"], v["p99_ms"], v["p999_ms"], v["lost"]
                ));
                let r = *rate as u64;
                for q in ["p50_ms", "p99_ms", "p999_ms"] {
                    self.rec
                        .push(format!("{b}.latency.{r}.{name}.{q}"), v[q].as_f64());
                }
                self.rec
                    .push(format!("{b}.latency.{r}.{name}.lost"), v["lost"].as_f64());
                lat[r.to_string()] = v;
            }
            // Highest tested rate with p99 < 50 ms and nothing lost.
            let best = o
                .rates
                .iter()
                .filter(|r| {
                    let v = &lat[(**r as u64).to_string()];
                    v["p99_ms"].as_f64().is_some_and(|p| p < 50.0) && v["lost"] == 0
                })
                .fold(0.0f64, |m, r| m.max(*r));
            self.rec.push(
                format!("{b}.latency.{name}.max_rate_p99_under_50ms"),
                Some(best),
            );
            out["latency"] = lat;
        }

        if o.has("durable") && kind != Kind::Raw {
            let count_sql = if kind == Kind::Ours {
                "SELECT count(*) AS n FROM messages WHERE sender_kind = 'guest'"
            } else {
                "SELECT count(*) AS n FROM messages"
            };
            let db = db.context("a database")?;
            let rows0 = db.count(count_sql)?;
            let cpu0 = p.cpu_seconds()?;
            let pg0 = procs::postgres_cpu_seconds();
            let (rate, acks, errors) = chat.durable(o.window, dsecs).await?;
            let cpu = p.cpu_seconds()? - cpu0;
            let pg = procs::postgres_cpu_seconds() - pg0;
            let rows = db.count(count_sql)? - rows0;
            let verified = rows as u64 == acks;
            say(format!(
                "  {name} durable: {rate:.0} acks/s; rows {rows} = acks {acks}: {verified}; errors {errors}; {:.3} CPU-s per 1k",
                cpu * 1000.0 / acks.max(1) as f64
            ));
            self.rec
                .push(format!("{b}.durable.{name}.acks_per_s"), Some(rate));
            self.rec.push(
                format!("{b}.durable.{name}.cpu_s_per_1k"),
                Some(cpu * 1000.0 / acks.max(1) as f64),
            );
            if backend == Backend::Postgres {
                self.rec.push(
                    format!("{b}.durable.{name}.postgres_cpu_s_per_1k"),
                    Some(pg * 1000.0 / acks.max(1) as f64),
                );
            }
            self.rec.push(
                format!("{b}.durable.{name}.verified"),
                Some(if verified { 1.0 } else { 0.0 }),
            );
            out["durable"] = json!({
                "acks_per_s": rate, "acks": acks, "rows": rows, "verified": verified, "errors": errors,
                "cpu_s": cpu, "postgres_cpu_s": pg, "window": o.window,
            });
            if kind == Kind::Ours {
                out["durable"]["pipeline"] = self.pipeline_catch_up(db, b, rows).await?;
            }
        }

        if let (Some(api), Kind::Ours) = (&api, kind) {
            if o.has("webhooks") {
                let wh = Webhooks::new(format!("http://{a}/webhooks/whatsapp"), 200)?;
                let warmed = wh.warm().await;
                // The setup's guests and the warm-up's customers are new leads; their
                // bookkeeping is setup, not the phase's load (every phase's own work
                // still runs while it is measured).
                if let Some(db) = db {
                    let waited = broadcast::settle(db).await?;
                    say(format!(
                        "  switchboard settled in {waited:.1} s before the webhook phase"
                    ));
                }
                let pushed0 = chat.agent_received();
                let (rate, ok, bad) = wh.throughput(o.webhook_concurrency, secs).await;
                let (lat, fail) = wh.fixed_rate(o.webhook_rate, secs).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let pushed = chat.agent_received() - pushed0;
                say(format!(
                    "  switchboard webhooks: {rate:.0} /s ({ok} ok, {bad} failed, warm {warmed}); p99 at {} /s {:?} ms; pushed {pushed} of {}",
                    o.webhook_rate,
                    lat.quantile_ms(0.99),
                    ok + lat.count() - fail
                ));
                self.rec
                    .push(format!("{b}.webhooks.switchboard.per_s"), Some(rate));
                self.rec.push(
                    format!("{b}.webhooks.switchboard.p99_ms"),
                    lat.quantile_ms(0.99),
                );
                out["webhooks"] = json!({"per_s": rate, "ok": ok, "failed": bad, "fixed_rate": lat.summary(),
                    "fixed_rate_failed": fail, "pushed_to_agent": pushed, "stored_ok": ok + lat.count() - fail});
            }
            if o.has("routing") {
                match workloads::routing(api, a, o.routing_agents, o.routing_leads).await {
                    Ok(v) => {
                        say(format!(
                            "  routing: offer p99 {} ms (each agent), claim→winner p99 {} ms, unclaimed {}",
                            v["offer_each_agent"]["p99_ms"], v["claim_to_winner"]["p99_ms"], v["unclaimed"]
                        ));
                        for (k, path) in [
                            ("offer_p50_ms", ("offer_each_agent", "p50_ms")),
                            ("offer_p99_ms", ("offer_each_agent", "p99_ms")),
                            ("claim_p50_ms", ("claim_to_winner", "p50_ms")),
                            ("claim_p99_ms", ("claim_to_winner", "p99_ms")),
                        ] {
                            self.rec
                                .push(format!("{b}.routing.{k}"), v[path.0][path.1].as_f64());
                        }
                        out["routing"] = v;
                    }
                    Err(e) => {
                        say(format!("  routing failed: {e:#}"));
                        out["routing"] = json!({"error": format!("{e:#}")});
                    }
                }
            }
            if o.has("broadcast") {
                let db = db.context("a database")?;
                out["broadcast"] = self.broadcast(api, a, &chat, db, b).await;
            }
        }
        Ok(out)
    }

    /// The new-lead workload (`newlead.rs`) at each contact count, a fresh hub and
    /// database each; the rates and how flat they are go to the record.
    async fn new_leads(&mut self, backend: Backend) -> Value {
        let b = backend.name();
        let mut out = json!({});
        let mut rates = Vec::new();
        for contacts in self.opts.lead_contacts.clone() {
            let plan = newlead::Plan {
                contacts,
                new: self.opts.new_leads,
            };
            let result = match self.start_hub(backend).await {
                Ok((p, db)) => {
                    let r = newlead::run(addr(HUB_PORT), &p, &db, backend, plan).await;
                    p.stop().await;
                    db.drop_db(&self.opts.pg_admin);
                    r
                }
                Err(e) => Err(e),
            };
            let v = result.unwrap_or_else(|e| {
                say(format!("  new leads at {contacts} contacts failed: {e:#}"));
                json!({"error": format!("{e:#}")})
            });
            let rate = v["leads_per_s"].as_f64();
            say(format!(
                "  new leads at {contacts} contacts: {:.0} /s; hub {:.2} ms, PostgreSQL {} ms CPU per lead",
                rate.unwrap_or(f64::NAN),
                v["hub_cpu_ms_per_lead"].as_f64().unwrap_or(f64::NAN),
                v["postgres_cpu_ms_per_lead"]
            ));
            self.rec
                .push(format!("{b}.newlead.{contacts}.leads_per_s"), rate);
            for k in ["hub_cpu_ms_per_lead", "postgres_cpu_ms_per_lead"] {
                if let Some(x) = v[k].as_f64() {
                    self.rec
                        .push(format!("{b}.newlead.{contacts}.{k}"), Some(x));
                }
            }
            rates.push(rate);
            out[contacts.to_string()] = v;
        }
        if let (Some(first), Some(last)) = (rates.first(), rates.last()) {
            if rates.len() > 1 {
                self.rec.push(
                    format!("{b}.newlead.largest_over_smallest"),
                    stats::ratio(*last, *first),
                );
            }
        }
        out
    }

    /// The broadcast workload on a running hub; its numbers go to the record.
    async fn broadcast(
        &mut self,
        api: &Api,
        hub: SocketAddr,
        chat: &Chat,
        db: &Db,
        b: &str,
    ) -> Value {
        let o = &self.opts;
        let plan = broadcast::Plan {
            recipients: o.broadcast_recipients,
            rate: 1000.0,
            warmup: Duration::from_secs_f64(o.warmup),
            secs: Duration::from_secs_f64(o.secs),
        };
        match broadcast::run(api, hub, addr(GRAPH_PORT), chat, db, &plan).await {
            Ok(v) => {
                say(format!(
                    "  broadcast: {:.0} recipients/s ({} recipients; hub idle {:.1} s after they were stored); inbound p99 {} ms before, {} ms during (×{:.2})",
                    v["recipients_per_s"].as_f64().unwrap_or(0.0),
                    v["recipients"],
                    v["settle_s"].as_f64().unwrap_or(f64::NAN),
                    v["latency_before"]["p99_ms"],
                    v["latency_during"]["p99_ms"],
                    v["p99_during_over_before"].as_f64().unwrap_or(f64::NAN)
                ));
                self.rec.push(
                    format!("{b}.broadcast.recipients_per_s"),
                    v["recipients_per_s"].as_f64(),
                );
                self.rec.push(
                    format!("{b}.broadcast.p99_during_over_before"),
                    v["p99_during_over_before"].as_f64(),
                );
                v
            }
            Err(e) => {
                say(format!("  broadcast failed: {e:#}"));
                json!({"error": format!("{e:#}")})
            }
        }
    }

    async fn connections(&mut self, round: usize, backend: Backend) -> anyhow::Result<Value> {
        let b = backend.name();
        let levels = self.opts.conns.clone();
        let mut out = json!({});
        let mut targets = vec![ConnTarget::Ours, ConnTarget::Raw, ConnTarget::NodeWs];
        if round % 2 == 1 {
            targets.reverse();
        }
        for t in targets {
            let (name, p, db, token) = match t {
                ConnTarget::Ours => {
                    let (p, db) = self.start_hub(backend).await?;
                    let api = Api::new(addr(HUB_PORT))?;
                    let admin = api.admin().await?;
                    let team = api.team_id(&admin, "default").await?;
                    let token = api.agent(&admin, &team, 0).await?;
                    ("switchboard", p, Some(db), token)
                }
                ConnTarget::Raw => {
                    let log = self.log("raw-conns");
                    let bind = format!("127.0.0.1:{RAW_PORT}");
                    (
                        "raw_hub",
                        Proc::spawn(
                            "raw hub",
                            &self.progs.raw_hub,
                            &[&bind],
                            &[],
                            RAW_PORT,
                            &log,
                        )
                        .await?,
                        None,
                        String::new(),
                    )
                }
                ConnTarget::NodeWs => {
                    let log = self.log("ws");
                    let script = self
                        .progs
                        .node_dir
                        .join("ws-idle.js")
                        .to_string_lossy()
                        .into_owned();
                    let env = vec![("PORT".to_string(), WS_PORT.to_string())];
                    (
                        "node_ws",
                        Proc::spawn("node ws", &self.progs.node, &[&script], &env, WS_PORT, &log)
                            .await?,
                        None,
                        String::new(),
                    )
                }
            };
            let a = match t {
                ConnTarget::Ours => addr(HUB_PORT),
                ConnTarget::Raw => addr(RAW_PORT),
                ConnTarget::NodeWs => addr(WS_PORT),
            };
            match workloads::connections(t, a, &token, &levels, p.pid()).await {
                Ok(v) => {
                    for l in v["levels"].as_array().into_iter().flatten() {
                        let n = l["sessions"].as_u64().unwrap_or(0);
                        let level = levels
                            .iter()
                            .copied()
                            .filter(|x| *x as u64 >= n)
                            .min()
                            .unwrap_or(n as usize);
                        let kb = l["rss_per_session_bytes"].as_f64().map(|x| x / 1000.0);
                        say(format!(
                            "  {name}: {n} idle sessions, {:.1} KB each, {:.0} connects/s",
                            kb.unwrap_or(f64::NAN),
                            l["connect_per_s"].as_f64().unwrap_or(f64::NAN)
                        ));
                        self.rec
                            .push(format!("{b}.connections.{level}.{name}.kb_per_session"), kb);
                        self.rec.push(
                            format!("{b}.connections.{level}.{name}.connect_per_s"),
                            l["connect_per_s"].as_f64(),
                        );
                    }
                    out[name] = v;
                }
                Err(e) => {
                    say(format!("  {name} connections failed: {e:#}"));
                    out[name] = json!({"error": format!("{e:#}")});
                }
            }
            p.stop().await;
            if let Some(db) = db {
                db.drop_db(&self.opts.pg_admin);
            }
        }
        for level in &levels {
            let get = |who: &str| {
                self.rec
                    .samples
                    .get(&format!("{b}.connections.{level}.{who}.kb_per_session"))
                    .and_then(|v| v.last().copied())
            };
            let ours = get("switchboard");
            let (raw, node) = (get("raw_hub"), get("node_ws"));
            self.rec.push(
                format!("{b}.connections.{level}.kb_switchboard_over_raw"),
                stats::ratio(ours, raw),
            );
            self.rec.push(
                format!("{b}.connections.{level}.kb_switchboard_over_node_ws"),
                stats::ratio(ours, node),
            );
        }
        Ok(out)
    }
}

/// `YYYY-MM-DDTHH-MM-SS` (UTC) without a date library: from `date`.
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H-%M-%S"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown-date".into())
}

/// Cores, memory, kernel and versions, for the report.
fn machine() -> String {
    let sh = |cmd: &str| {
        std::process::Command::new("sh")
            .args(["-c", cmd])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_default()
    };
    format!(
        "{} cores ({}), {} RAM, Linux {}; {}; node {}; {}; SQLite {} (bundled)",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs"),
        sh("free -h | awk '/Mem:/{print $2}'"),
        sh("uname -r"),
        sh("rustc --version"),
        sh("node --version"),
        sh("psql --version"),
        sh("grep -m1 -o 'libsqlite3-sys [0-9.]*' Cargo.lock 2>/dev/null || true; grep -A1 'name = \"libsqlite3-sys\"' Cargo.lock | tail -1 | cut -d'\"' -f2"),
    )
}
