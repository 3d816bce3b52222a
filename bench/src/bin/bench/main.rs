//! The comparative HTTP bench, in one command:
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml --bin bench -- [--quick] [--servers a,b] [--list]
//! ```
//!
//! It builds this project's example servers and the peers, starts one
//! private redis-server, starts every server on a free loopback port, loads
//! them in interleaved rounds (so every ratio compares the same minutes),
//! checks each for lost updates, and writes `results/results.md` and
//! `results/chart.svg`. See bench/README.md.

mod binaries;
mod chart;
mod client;
mod cpu;
mod instructions;
mod load;
mod lost;
mod report;
mod results;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use redis_test_server::RedisServer;

use crate::cpu::CpuClock;
use crate::load::{Processes, MIXES};
use crate::report::{Machine, Report, Settings};
use crate::results::{LostRow, Run};
use crate::servers::{Running, Spec, BASELINE, CATALOGUE};

/// Pause between two timed runs, so that the last one's connections close
/// before the next server is measured.
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Parser)]
#[command(
    about = "generic-session's example servers beside tower-sessions, actix-session and raw Redis, over HTTP"
)]
struct Args {
    /// Rounds; each runs every mix on every server once [default: 3; --quick 1].
    #[arg(long)]
    rounds: Option<usize>,

    /// Seconds per server, mix and round [default: 5; --quick 1].
    #[arg(long)]
    secs: Option<u64>,

    /// Concurrent keep-alive users per server, each with its own session
    /// [default: 64; --quick 16].
    #[arg(long)]
    users: Option<usize>,

    /// Users in the lost-update check [default: 200; --quick 20].
    #[arg(long)]
    lost_users: Option<usize>,

    /// The servers to run, comma-separated (see --list) [default: every
    /// server marked default].
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,

    /// List the servers and exit.
    #[arg(long)]
    list: bool,

    /// A smoke test: 1 round of 1 s, 16 users, 20 in the lost-update check.
    #[arg(long)]
    quick: bool,

    /// Where results.md and chart.svg go [default: bench/results].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Offer this many requests a second in all, spread evenly over the
    /// users, instead of each user sending its next request as soon as the
    /// last is answered [default: as fast as answered]. At a rate every
    /// server keeps up with, CPU per request compares the same work: run
    /// flat out, a slower server also takes fewer requests per wake-up, and
    /// pays for that too.
    #[arg(long, value_name = "REQ_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,

    /// Instead of the load, count each server's instructions per request
    /// under valgrind's callgrind, which do not drift with the machine as
    /// CPU time does, and write `instructions.md` (needs valgrind).
    #[arg(long)]
    instructions: bool,

    /// With --instructions: requests counted per server and mix [default:
    /// 2000; --quick 200].
    #[arg(long, value_name = "N", requires = "instructions", value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
}

impl Args {
    /// The knobs in force: each flag given, else its --quick or plain default.
    fn settings(&self) -> Settings {
        let pick = |given: Option<usize>, quick: usize, plain: usize| {
            given.unwrap_or(if self.quick { quick } else { plain })
        };
        Settings {
            rounds: pick(self.rounds, 1, 3).max(1),
            secs: self.secs.unwrap_or(if self.quick { 1 } else { 5 }).max(1),
            users: pick(self.users, 16, 64).max(1),
            lost_users: pick(self.lost_users, 20, 200).max(1),
            rate: self.rate,
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of contexts on one line, without a backtrace: the
            // messages say what to do.
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.list {
        for spec in CATALOGUE {
            let default = if spec.default { "default" } else { "       " };
            println!(
                "{:<22} {default}  {} --store {}: {}",
                spec.name, spec.binary, spec.store, spec.about
            );
        }
        return Ok(());
    }
    let settings = args.settings();
    let specs = servers::select(&args.servers)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| binaries::bench_dir().join("results"));

    let needs_redis = specs.iter().any(Spec::uses_redis);
    // Before the build, which takes minutes: fail at once if a tool is missing.
    if needs_redis {
        ensure_redis_installed()?;
    }
    if args.instructions {
        instructions::ensure_installed()?;
    }
    let executables = binaries::build()?;
    let redis = needs_redis.then(RedisServer::start);
    let redis_pid = redis.as_ref().map(redis_pid).transpose()?;
    let redis_port = redis.as_ref().map(RedisServer::port);
    let running = start_servers(&specs, &executables, redis.as_ref(), args.instructions)?;

    let machine = Machine::describe();
    // The load generator shares the cores with the server under test (and
    // Redis): as many workers as cores, as the servers themselves have.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(machine.cores.max(1))
        .enable_all()
        .build()
        .context("start the load generator's runtime")?;
    if args.instructions {
        let requests = args.requests.unwrap_or(if args.quick { 200 } else { 2000 }) as usize;
        let rows = runtime.block_on(count_instructions(&running, requests))?;
        let markdown = instructions::markdown(&machine, requests, &rows);
        return write_out(&out, "instructions.md", &markdown);
    }
    let clock = CpuClock::new();
    let redis = redis_pid.zip(redis_port);
    let (runs, lost) = runtime.block_on(measure(&running, settings, clock, redis))?;

    let names: Vec<&'static str> = running.iter().map(|server| server.spec.name).collect();
    let raw_of = |server: &str| {
        CATALOGUE
            .iter()
            .find(|spec| spec.name == server)
            .map_or(BASELINE, |spec| spec.raw)
    };
    let rows = results::summarize(&runs, &names, &MIXES, BASELINE, raw_of);
    let report = Report {
        machine: &machine,
        settings,
        baseline: BASELINE,
        rows: &rows,
        lost: &lost,
    };
    write_out(&out, "results.md", &report.markdown())?;
    let svg = out.join("chart.svg");
    chart::write(&svg, &names, &rows, &lost).with_context(|| format!("write {}", svg.display()))?;
    println!("wrote {}", svg.display());
    Ok(())
}

/// Writes `text` to `out/name` and prints it.
fn write_out(out: &std::path::Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let path = out.join(name);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    println!("\n{text}");
    println!("wrote {}", path.display());
    Ok(())
}

/// Counts every server's instructions on every mix, one server at a time.
async fn count_instructions(
    running: &[Running],
    requests: usize,
) -> anyhow::Result<Vec<instructions::Counted>> {
    let mut rows = Vec::new();
    for server in running {
        for mix in MIXES {
            let count = instructions::count(server, mix, requests)
                .await
                .with_context(|| format!("{}: counting {}", server.spec.name, mix.name()))?;
            println!(
                "{:<14} {:<22} {:>9} instructions/req",
                mix.name(),
                server.spec.name,
                report::thousands(count.per_request())
            );
            rows.push(instructions::Counted {
                server: server.spec.name,
                raw: server.spec.raw,
                mix,
                count,
            });
        }
    }
    Ok(rows)
}

/// Starts every server of `specs`, each on Redis with a database of its
/// own (numbered by the catalogue's order) so that none sees another's keys;
/// under callgrind if `under_callgrind`.
fn start_servers(
    specs: &[Spec],
    executables: &binaries::Executables,
    redis: Option<&RedisServer>,
    under_callgrind: bool,
) -> anyhow::Result<Vec<Running>> {
    let mut running = Vec::with_capacity(specs.len());
    for spec in specs {
        let db = CATALOGUE
            .iter()
            .position(|known| known.name == spec.name)
            .map_or(0, |index| index + 1);
        let url = redis.map_or(String::new(), |redis| format!("{}/{db}", redis.url()));
        let server = Running::start(*spec, executables, &url, under_callgrind)
            .context("leave it out with --servers (see --list) if it cannot run here")?;
        println!("{} listening", spec.name);
        running.push(server);
    }
    Ok(running)
}

/// Warms every server's users, runs the interleaved rounds, then the
/// lost-update check on each server.
async fn measure(
    running: &[Running],
    settings: Settings,
    clock: CpuClock,
    redis: Option<(u32, u16)>,
) -> anyhow::Result<(Vec<Run>, Vec<LostRow>)> {
    let mut users = Vec::with_capacity(running.len());
    for server in running {
        let warmed = load::warm(&server.url, settings.users)
            .await
            .with_context(|| format!("{}: warming up its users", server.spec.name))?;
        users.push(warmed);
    }
    let length = Duration::from_secs(settings.secs);
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        for mix in MIXES {
            // Each round starts one server further on, and every other
            // round goes the other way, so that no server always runs
            // first or last, nor always after the same one (whose
            // background work, a sync say, may not have ended).
            for i in round_order(running.len(), round) {
                let (server, users) = (&running[i], &users[i]);
                let processes = Processes {
                    clock,
                    server: server.pid(),
                    redis: redis.filter(|_| server.spec.uses_redis()),
                };
                let sample = load::run(users, mix, length, settings.rate, processes).await;
                println!(
                    "round {}/{} {:<14} {:<22} {:>9} req/s {:>6.1} µs CPU/req {:>5} errors",
                    round + 1,
                    settings.rounds,
                    mix.name(),
                    server.spec.name,
                    report::thousands(sample.per_second()),
                    sample.server_us_per_request(),
                    sample.errors
                );
                runs.push(Run {
                    server: server.spec.name,
                    mix,
                    round,
                    sample,
                });
                tokio::time::sleep(SETTLE).await;
            }
        }
    }
    let mut lost = Vec::with_capacity(running.len());
    for server in running {
        let counted = lost::check(&server.url, settings.lost_users).await;
        println!(
            "lost updates {:<22} /set {:>5} of {}, /incr {:>5} of {}, {} errors",
            server.spec.name,
            counted.sets,
            counted.sent(),
            counted.incrs,
            counted.sent(),
            counted.errors
        );
        lost.push(LostRow {
            server: server.spec.name,
            lost: counted,
        });
    }
    Ok((runs, lost))
}

/// The order of `servers` servers in round `round`: from server `round`
/// on, forwards in even rounds and backwards in odd ones.
fn round_order(servers: usize, round: usize) -> Vec<usize> {
    let start = round % servers.max(1);
    (0..servers)
        .map(|i| {
            if round.is_multiple_of(2) {
                (start + i) % servers
            } else {
                (start + servers - i) % servers
            }
        })
        .collect()
}

/// Fails with a clear message if `redis-server` is not on `PATH`
/// (`RedisServer::start`, which runs the bench's own on a free loopback
/// port, would panic instead).
fn ensure_redis_installed() -> anyhow::Result<()> {
    if !on_path("redis-server") {
        bail!("redis-server is not on PATH: install redis-server (Debian: apt-get install redis-server)");
    }
    Ok(())
}

/// Whether `program` is a file in one of `PATH`'s directories.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The redis-server's pid, from `INFO server`, for its CPU time.
fn redis_pid(redis: &RedisServer) -> anyhow::Result<u32> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut redis.connection())
        .context("INFO server from the bench's redis-server")?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .context("no process_id in INFO server")
}

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn rounds_change_who_runs_first_last_and_after_whom() {
        assert_eq!(round_order(4, 0), [0, 1, 2, 3]);
        assert_eq!(round_order(4, 1), [1, 0, 3, 2]);
        assert_eq!(round_order(4, 2), [2, 3, 0, 1]);
        assert_eq!(round_order(4, 3), [3, 2, 1, 0]);
        // Every round runs every server once, starting with server `round`.
        for round in 0..12 {
            let order = round_order(5, round);
            assert_eq!(order[0], round % 5);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
        }
        assert!(round_order(0, 3).is_empty());
    }
}
