//! The servers under test: the catalogue of names the bench knows, and a
//! running server process (on a free loopback port, killed when dropped).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::binaries::Executables;
use crate::instructions;

/// Signing keys for this project's servers (`SESSION_KEYS`: comma-separated,
/// newest first, each at least 32 bytes). A fixed key is fine: the sessions
/// live only as long as the bench.
const SESSION_KEYS: &str = "bench-signing-key-that-is-long-enough-0123456789";

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One server the bench can run.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The name in `--servers`, the table and the chart.
    pub name: &'static str,
    /// The executable's name.
    pub binary: &'static str,
    /// The `--store` it runs with.
    pub store: &'static str,
    /// Whether a plain run includes it.
    pub default: bool,
    /// Flags of ours beyond the store's (none for the peers).
    pub flags: &'static [&'static str],
    /// One line for `--list`.
    pub about: &'static str,
    /// The raw baseline on the same web framework: its server CPU per
    /// request is what this server's is compared with, so that the
    /// comparison shows the session work rather than axum against actix-web.
    pub raw: &'static str,
}

impl Spec {
    /// Whether it keeps its sessions in Redis.
    pub fn uses_redis(&self) -> bool {
        self.store == "redis"
    }

    /// Whether it is one of this project's example servers (which take the
    /// project's flags) rather than a peer.
    fn is_ours(&self) -> bool {
        self.name.starts_with("gs-")
    }
}

/// The baseline every req/s ratio is against.
pub const BASELINE: &str = "raw-redis";

/// The baseline on actix-web, for the actix-web servers' CPU ratio.
pub const BASELINE_ACTIX: &str = "raw-redis-actix";

/// Every server the bench knows, in the order of the table.
pub const CATALOGUE: [Spec; 15] = [
    ours("gs-axum-memory", "server-axum", "memory", true),
    ours("gs-axum-redb", "server-axum", "redb", true),
    ours("gs-axum-sled", "server-axum", "sled", true),
    Spec {
        flags: &["--sync-every-ms", "500"],
        about: "generic-session example server, disk synced every 500 ms",
        ..ours("gs-axum-redb-sync500", "server-axum", "redb", true)
    },
    Spec {
        flags: &["--sync-every-ms", "500"],
        about: "generic-session example server, disk synced every 500 ms",
        ..ours("gs-axum-sled-sync500", "server-axum", "sled", true)
    },
    ours("gs-axum-redis", "server-axum", "redis", true),
    Spec {
        raw: BASELINE_ACTIX,
        ..ours("gs-actix-redis", "server-actix", "redis", true)
    },
    Spec {
        flags: &["--redis-layout", "connect-redis", "--cookie-format", "express"],
        about: "generic-session example server, store-redis in connect-redis's layout (a JSON string per session)",
        ..ours("gs-axum-redis-connect", "server-axum", "redis", false)
    },
    ours("gs-tower-redis", "server-tower", "redis", false),
    ours("gs-hyper-redis", "server", "redis", false),
    Spec {
        name: "tower-sessions-redis",
        binary: "peer-tower-sessions",
        store: "redis",
        default: true,
        flags: &[],
        about: "axum + tower-sessions 0.14, tower-sessions-redis-store (fred)",
        raw: BASELINE,
    },
    Spec {
        name: "tower-sessions-memory",
        binary: "peer-tower-sessions",
        store: "memory",
        default: true,
        flags: &[],
        about: "axum + tower-sessions 0.14, its MemoryStore",
        raw: BASELINE,
    },
    Spec {
        name: "actix-session-redis",
        binary: "peer-actix-session",
        store: "redis",
        default: true,
        flags: &[],
        about: "actix-web + actix-session 0.11, RedisSessionStore (redis-rs)",
        raw: BASELINE_ACTIX,
    },
    Spec {
        name: BASELINE,
        binary: "raw-redis",
        store: "redis",
        default: true,
        flags: &[],
        about: "axum + redis-rs, HSET/HGET/HINCRBY on a hash per cookie, no session library",
        raw: BASELINE,
    },
    Spec {
        name: BASELINE_ACTIX,
        binary: "raw-redis-actix",
        store: "redis",
        default: true,
        flags: &[],
        about: "the same on actix-web: the baseline for the actix-web servers' CPU",
        raw: BASELINE_ACTIX,
    },
];

const fn ours(
    name: &'static str,
    binary: &'static str,
    store: &'static str,
    default: bool,
) -> Spec {
    Spec {
        name,
        binary,
        store,
        default,
        flags: &[],
        about: "generic-session example server",
        raw: BASELINE,
    }
}

/// The servers `--servers` names (all defaults when empty), in catalogue
/// order; an unknown name is an error that lists the known ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<Spec>> {
    if names.is_empty() {
        return Ok(CATALOGUE
            .iter()
            .filter(|spec| spec.default)
            .copied()
            .collect());
    }
    for name in names {
        if !CATALOGUE.iter().any(|spec| spec.name == name) {
            bail!("unknown server {name:?}; `--list` shows the known ones");
        }
    }
    Ok(CATALOGUE
        .iter()
        .filter(|spec| names.iter().any(|name| name == spec.name))
        .copied()
        .collect())
}

/// A server process, killed when dropped.
pub struct Running {
    pub spec: Spec,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    /// Its working directory (data files, `server.log` for stderr), kept
    /// for as long as the server runs and removed after it.
    dir: tempfile::TempDir,
}

impl Running {
    /// Starts `spec` with `PORT=0` and waits for its `listening on` line.
    /// `redis_url` names the database of its own it uses if it needs Redis.
    /// `under_callgrind` runs it under valgrind's callgrind, which counts
    /// its instructions (see `instructions.rs`).
    pub fn start(
        spec: Spec,
        executables: &Executables,
        redis_url: &str,
        under_callgrind: bool,
    ) -> anyhow::Result<Running> {
        let binary = executables
            .get(spec.binary)
            .with_context(|| format!("the build made no {} binary", spec.binary))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("bench-{}-", spec.name))
            .tempdir()
            .context("create a temporary directory")?;
        let log =
            std::fs::File::create(dir.path().join("server.log")).context("create server.log")?;
        let mut command = if under_callgrind {
            instructions::wrap(binary, dir.path())
        } else {
            Command::new(binary)
        };
        let mut child = command
            .current_dir(dir.path())
            .args(arguments(&spec, dir.path(), redis_url))
            .env("PORT", "0")
            .env("SESSION_KEYS", SESSION_KEYS)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let url = match listening_url(&mut child) {
            Ok(url) => url,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log_tail(&dir.path().join("server.log"));
                return Err(
                    error.context(format!("{} did not start; its log ends:\n{log}", spec.name))
                );
            }
        };
        Ok(Running {
            spec,
            url,
            child,
            dir,
        })
    }

    /// Its process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command line for `spec`: this project's flags for ours, the peers'
/// subset for the rest.
fn arguments(spec: &Spec, dir: &Path, redis_url: &str) -> Vec<String> {
    let mut args = vec!["--store".to_string(), spec.store.to_string()];
    if spec.uses_redis() {
        args.extend(["--redis-url".to_string(), redis_url.to_string()]);
    }
    if spec.is_ours() {
        args.push("--insecure-cookies".into());
        match spec.store {
            "redb" => args.extend(["--redb-path".into(), path(dir, "sessions.redb")]),
            "sled" => args.extend(["--sled-path".into(), path(dir, "sled")]),
            _ => {}
        }
        args.extend(spec.flags.iter().map(|flag| flag.to_string()));
    }
    args
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Reads the server's first stdout line on a thread (so a server that never
/// gets there cannot hang the bench) and keeps draining stdout after it.
fn listening_url(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("the server's stdout")?;
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = line_tx.send(lines.next());
        // Whatever else it prints must not fill the pipe and block it.
        for _ in lines {}
    });
    let line = match line_rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        Ok(_) => bail!("it exited or closed stdout before listening"),
        Err(_) => bail!("no `listening on` line within {START_TIMEOUT:?}"),
    };
    line.trim()
        .strip_prefix("listening on ")
        .map(str::to_string)
        .with_context(|| format!("unexpected first line {line:?}"))
}

/// The last lines of a server's log, for a start-up failure.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
