//! Instructions per request, counted by valgrind's callgrind (`--instructions`).
//!
//! CPU time on a shared machine drifts by a third within minutes, and two
//! servers' ratio with it. The instructions a server runs for a request do
//! not drift: with one user sending one request at a time, two runs of one
//! build have agreed to within about a percent here. So this mode runs each
//! server under callgrind and counts its user-space instructions (`Ir`) for
//! a fixed number of requests of each mix. What it leaves out is the
//! kernel's share (the loopback TCP path) and the cost of cache misses.
//!
//! One correction is reported apart: valgrind does not run the SHA
//! extensions, so under it `sha2` falls back to its portable code, whose
//! SHA-256 compression runs about 3,500 instructions a block, where a CPU
//! with SHA-NI needs about a hundred. The table gives the count without the
//! SHA-256 compression function too.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::client::Browser;
use crate::load::{self, Mix};
use crate::report::{thousands, Machine};
use crate::servers::Running;

/// Requests of each mix before counting: connections, caches and the
/// server's lazily made state are warm by then.
const WARM_UP: usize = 200;

/// How long `callgrind_control` may take. It reaches an idle server through
/// ptrace (valgrind's vgdb), which a container may forbid, and would then
/// wait for ever.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// What one server ran for `requests` requests of one mix.
#[derive(Clone, Copy, Debug)]
pub struct Count {
    /// Requests counted.
    pub requests: usize,
    /// User-space instructions, all threads.
    pub instructions: u64,
    /// Of those, in `sha2`'s SHA-256 compression function.
    pub sha256: u64,
}

impl Count {
    /// Instructions per request.
    pub fn per_request(&self) -> f64 {
        self.instructions as f64 / self.requests.max(1) as f64
    }

    /// Of those, in the SHA-256 compression.
    pub fn sha256_per_request(&self) -> f64 {
        self.sha256 as f64 / self.requests.max(1) as f64
    }

    /// Per request, without the SHA-256 compression.
    pub fn per_request_without_sha256(&self) -> f64 {
        self.per_request() - self.sha256_per_request()
    }
}

/// Fails with a clear message unless valgrind and `callgrind_control` are
/// on `PATH`.
pub fn ensure_installed() -> anyhow::Result<()> {
    for tool in ["valgrind", "callgrind_control"] {
        if !crate::on_path(tool) {
            bail!("{tool} is not on PATH: install valgrind (Debian: apt-get install valgrind)");
        }
    }
    Ok(())
}

/// The command that runs `binary` under callgrind, its counts dumped to
/// `<dir>/callgrind.out.N`.
pub fn wrap(binary: &Path, dir: &Path) -> Command {
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file(dir).display()))
        .arg(binary);
    command
}

fn out_file(dir: &Path) -> PathBuf {
    dir.join("callgrind.out")
}

/// Counts what `server` (started with [`wrap`]) runs for `requests`
/// requests of `mix`, sent one at a time by one user whose session holds the
/// load's keys.
pub async fn count(server: &Running, mix: Mix, requests: usize) -> anyhow::Result<Count> {
    let user = load::warm(&server.url, 1)
        .await?
        .pop()
        .context("no user warmed")?;
    send(&user, mix, WARM_UP).await?;
    // callgrind_control may exit 0 without reaching valgrind: a dump is this
    // count's only if it is newer than the last.
    let before = latest_dump(server.dir())?.map_or(0, |(part, _)| part);
    control(server.pid(), "-z")?;
    send(&user, mix, requests).await?;
    control(server.pid(), "-d")?;
    let dump = match latest_dump(server.dir())? {
        Some((part, dump)) if part > before => dump,
        _ => bail!("callgrind wrote no new dump in {}", server.dir().display()),
    };
    let text =
        std::fs::read_to_string(&dump).with_context(|| format!("read {}", dump.display()))?;
    let (instructions, sha256) = tally(&text, |function| function.starts_with("sha2::sha256::"))
        .with_context(|| format!("{} is not a dump this can read", dump.display()))?;
    Ok(Count {
        requests,
        instructions,
        sha256,
    })
}

async fn send(user: &Browser, mix: Mix, requests: usize) -> anyhow::Result<()> {
    for n in 0..requests {
        let answer = user.get(&mix.path(n)).await?;
        if !answer.ok() {
            bail!("{} answered {}", mix.path(n), answer.status);
        }
    }
    Ok(())
}

/// Runs `callgrind_control OPTION PID` (`-z` zeroes the counts, `-d` dumps
/// them), which returns once the server has done it.
fn control(pid: u32, option: &str) -> anyhow::Result<()> {
    let mut child = Command::new("callgrind_control")
        .args([option, &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("run callgrind_control")?;
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "callgrind_control {option} {pid} took over {CONTROL_TIMEOUT:?} \
                 (it needs ptrace to reach an idle server)"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut said = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut said)?;
    }
    // It tells of a failure on stdout and still exits 0.
    if ["Error", "No active", "not detected"]
        .iter()
        .any(|failure| said.contains(failure))
    {
        bail!("callgrind_control {option} {pid}: {}", said.trim());
    }
    Ok(())
}

/// The newest `callgrind.out.N` in `dir`, and its `N`.
fn latest_dump(dir: &Path) -> anyhow::Result<Option<(u32, PathBuf)>> {
    let prefix = format!("{}.", out_file(dir).display());
    let mut newest: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry?.path();
        let text = path.display().to_string();
        // The dumps asked for are `.1`, `.2`, ...; the one at exit has no suffix.
        let Some(part) = text.strip_prefix(&prefix) else {
            continue;
        };
        if let Ok(n) = part.parse::<u32>() {
            if newest.as_ref().is_none_or(|(best, _)| n > *best) {
                newest = Some((n, path));
            }
        }
    }
    Ok(newest)
}

/// The total `Ir` of a callgrind dump, and the self cost of the functions
/// `pick` chooses. `None` unless the dump counts `Ir` alone and its cost
/// lines add up to its `totals:` line.
///
/// The format, as far as read here: `fn=(id) name` starts a function's
/// lines (later `fn=(id)` alone), a line of numbers is a position and its
/// cost, and the line after `calls=` is the cost of a call, which belongs to
/// the callee and is skipped.
fn tally(text: &str, pick: impl Fn(&str) -> bool) -> Option<(u64, u64)> {
    if !text.lines().any(|line| line == "events: Ir") {
        return None;
    }
    let totals: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))?
        .trim()
        .parse()
        .ok()?;
    let mut names = std::collections::HashMap::new();
    let mut picked = false;
    let mut after_call = false;
    let (mut total, mut chosen, mut seen) = (0u64, 0u64, false);
    for line in text.lines() {
        if let Some(rest) = line
            .strip_prefix("fn=")
            .or_else(|| line.strip_prefix("cfn="))
        {
            let (id, name) = rest.split_once(' ').unwrap_or((rest, ""));
            if !name.is_empty() {
                names.insert(id.to_string(), name.to_string());
            }
            if line.starts_with("fn=") {
                picked = names.get(id).is_some_and(|name| pick(name));
            }
            continue;
        }
        if line.starts_with("calls=") {
            after_call = true;
            continue;
        }
        let is_cost = line
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'*'));
        if !is_cost {
            continue;
        }
        if std::mem::take(&mut after_call) {
            continue;
        }
        let Some(cost) = line
            .split_whitespace()
            .last()
            .and_then(|c| c.parse::<u64>().ok())
        else {
            continue;
        };
        seen = true;
        total += cost;
        if picked {
            chosen += cost;
        }
    }
    (seen && total == totals).then_some((total, chosen))
}

/// One server's count on one mix, and the raw baseline it is compared with.
pub struct Counted {
    /// The server's name in the catalogue.
    pub server: &'static str,
    /// The raw baseline on the same framework.
    pub raw: &'static str,
    /// The mix its requests came from.
    pub mix: Mix,
    /// What it ran.
    pub count: Count,
}

/// The counts as a Markdown report.
pub fn markdown(machine: &Machine, requests: usize, rows: &[Counted]) -> String {
    let mut out = String::from("# Instructions per request, under callgrind\n\n");
    // `write!` into a String cannot fail.
    let _ = writeln!(
        out,
        "{}, {} ({}). {requests} requests of each mix, one user sending one at a time \
         (after {WARM_UP} not counted); user-space instructions (`Ir`) of the server process, \
         all threads.\n",
        machine.date, machine.cpu, machine.arch
    );
    out.push_str(
        "| server | mix | instructions/req | vs raw¹ | SHA-256 compression/req² | without it | vs raw¹ |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let raw = rows
            .iter()
            .find(|other| other.server == row.raw && other.mix == row.mix)
            .map(|raw| raw.count);
        let ratio = |ours: f64, raw: Option<f64>| {
            raw.map_or("—".to_string(), |raw| format!("{:.2}", ours / raw))
        };
        let c = row.count;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.server,
            row.mix.name(),
            thousands(c.per_request()),
            ratio(c.per_request(), raw.map(|r| r.per_request())),
            thousands(c.sha256_per_request()),
            thousands(c.per_request_without_sha256()),
            ratio(
                c.per_request_without_sha256(),
                raw.map(|r| r.per_request_without_sha256())
            ),
        );
    }
    out.push_str(
        "\n¹ Over the raw baseline on the same framework (`raw-redis` on axum and hyper, \
         `raw-redis-actix` on actix-web), when it is in the run.\n\
         ² `sha2`'s SHA-256 compression: valgrind does not run the SHA extensions, so it runs \
         the portable code here, about 3,500 instructions a block where SHA-NI needs about a \
         hundred.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_self_costs_and_skips_call_costs() {
        let dump = "\
events: Ir
fn=(1) main
3 10
+2 5
cfn=(2) sha2::sha256::compress256
calls=1 0
4 1000
fn=(2)
7 700
fn=(3) other
cfn=(2)
calls=2 0
1 300
1 20
totals: 735
";
        let (total, sha) = tally(dump, |name| name.starts_with("sha2::sha256::")).unwrap();
        assert_eq!(total, 10 + 5 + 700 + 20);
        assert_eq!(sha, 700);
        assert_eq!(tally("events: Ir\n", |_| true), None);
        // A dump whose lines do not add up to its totals, or that counts
        // more than instructions, is not read.
        assert_eq!(tally(&dump.replace("735", "736"), |_| true), None);
        assert_eq!(
            tally(&dump.replace("events: Ir", "events: Ir Dr"), |_| true),
            None
        );
    }
}
