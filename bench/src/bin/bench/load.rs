//! The throughput load: keep-alive users, each on its own session, sending
//! one request after another in a mix of routes for a fixed time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::time::MissedTickBehavior;

use crate::client::Browser;
use crate::cpu::CpuClock;

/// Keys each user's session holds before the first round, `k0`…`k9`, and
/// the keys the mixes read and write.
const KEYS: usize = 10;

/// A mix of routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Half `/set/{k}/{v}`, half `/get/{k}`, alternating.
    SetGet,
    /// Only `/get/{k}`.
    Get,
    /// Only `/`, which touches no session on this project's servers.
    Root,
}

/// Every mix, in the order of the table.
pub const MIXES: [Mix; 3] = [Mix::SetGet, Mix::Get, Mix::Root];

impl Mix {
    /// The name in the table: route and share.
    pub fn name(self) -> &'static str {
        match self {
            Mix::SetGet => "set:50,get:50",
            Mix::Get => "get:100",
            Mix::Root => "root:100",
        }
    }

    /// The `n`th request of a user.
    pub fn path(self, n: usize) -> String {
        let key = n % KEYS;
        match self {
            Mix::SetGet if n.is_multiple_of(2) => format!("/set/k{key}/v{n}"),
            Mix::SetGet | Mix::Get => format!("/get/k{key}"),
            Mix::Root => "/".to_string(),
        }
    }

    /// Whether `body` is a right answer to the `n`th request: a read must
    /// find a value, not `null`, since every key was set while warming up. A server that lost a session would answer `null`, having done
    /// less work, and `/set` would quietly make a new session.
    pub fn answered(self, n: usize, body: &[u8]) -> bool {
        let reads = match self {
            Mix::SetGet => !n.is_multiple_of(2),
            Mix::Get => true,
            Mix::Root => false,
        };
        !reads || !matches!(body, b"" | b"null")
    }
}

/// How long after a run its servers' CPU is read: longer than store-redis
/// takes to write out the read counts and refreshes its plain reads left
/// (a pass every second) and than the embedded stores' 500 ms passes and
/// syncs, so that the work a run's requests left for later is the run's.
pub const DRAIN: Duration = Duration::from_millis(1_500);

/// `users` browsers on the server at `url`, each with a session holding
/// `KEYS` keys. Fails if the server does not answer them.
pub async fn warm(url: &str, users: usize) -> anyhow::Result<Vec<Browser>> {
    let browsers: Vec<Browser> = (0..users).map(|_| Browser::new(url)).collect();
    for browser in &browsers {
        for key in 0..KEYS {
            let answer = browser.get(&format!("/set/k{key}/initial")).await?;
            if !answer.ok() {
                bail!("/set answered {} while warming up", answer.status);
            }
        }
    }
    Ok(browsers)
}

/// The processes whose CPU time a run charges to the server.
#[derive(Clone, Copy, Debug)]
pub struct Processes {
    pub clock: CpuClock,
    /// The server.
    pub server: u32,
    /// The Redis it uses, if any, as its pid and loopback port: its CPU and
    /// the commands it ran are reported apart.
    pub redis: Option<(u32, u16)>,
}

/// What one timed run measured.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// 2xx answers within the run.
    pub requests: u64,
    /// Answers other than 2xx, reads that found no value, transport
    /// failures and timeouts.
    pub errors: u64,
    pub elapsed: Duration,
    /// The server's CPU time over the run.
    pub server_cpu: Duration,
    /// Redis's CPU time over the run, if the server uses Redis.
    pub redis_cpu: Option<Duration>,
    /// Commands Redis ran over the run, those inside scripts included (as
    /// `INFO commandstats` counts them), if the server uses Redis.
    pub redis_commands: Option<u64>,
}

impl Sample {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU per answered request, in µs.
    pub fn server_us_per_request(&self) -> f64 {
        per_request_us(self.server_cpu, self.requests)
    }

    /// The server's and Redis's CPU together per answered request, in µs:
    /// a store on Redis does part of the session work in its scripts.
    pub fn all_us_per_request(&self) -> f64 {
        per_request_us(
            self.server_cpu + self.redis_cpu.unwrap_or_default(),
            self.requests,
        )
    }

    /// Redis CPU per answered request, in µs.
    pub fn redis_us_per_request(&self) -> Option<f64> {
        self.redis_cpu.map(|cpu| per_request_us(cpu, self.requests))
    }

    /// Redis commands per answered request.
    pub fn redis_commands_per_request(&self) -> Option<f64> {
        self.redis_commands
            .map(|commands| commands as f64 / self.requests.max(1) as f64)
    }
}

/// Every command Redis on `port` has run, from `INFO commandstats` (the
/// `INFO` calls that ask, this one included, left out), or `None` if it
/// cannot be asked.
fn redis_commands(port: u16) -> Option<u64> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut connection = client.get_connection().ok()?;
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .ok()?;
    let calls = stats.lines().filter_map(|line| {
        let (command, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
        let calls: u64 = rest.split(',').next()?.parse().ok()?;
        Some(if command == "info" { 0 } else { calls })
    });
    Some(calls.sum())
}

fn per_request_us(cpu: Duration, requests: u64) -> f64 {
    cpu.as_secs_f64() * 1e6 / requests.max(1) as f64
}

/// Runs `mix` from every user in `users` for `length`, on fresh connections:
/// each user sends its next request as soon as the last is answered, or,
/// with a `rate`, at its share of that many requests a second (later if the
/// last answer is late: the pace never bursts to catch up). CPU is read a
/// [`DRAIN`] after the stop.
pub async fn run(
    users: &[Browser],
    mix: Mix,
    length: Duration,
    rate: Option<u64>,
    processes: Processes,
) -> Sample {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // A process gone mid-run (or exited, not yet reaped) would read as
    // having spent what it had when it died, and rank as cheap: the bench
    // stops instead.
    let cpu = |pid| {
        processes
            .clock
            .process_tree(pid)
            .unwrap_or_else(|| panic!("process {pid} (a server or redis-server) exited during a run"))
    };
    let server_before = cpu(processes.server);
    let redis_before = processes.redis.map(|(pid, _)| cpu(pid));
    let commands_before = processes.redis.and_then(|(_, port)| redis_commands(port));
    let start = Instant::now();
    let count = users.len();
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(user, browser)| {
            let browser = browser.reconnected();
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            let mut pace = rate.map(|rate| {
                let (offset, period) = share(rate, count, user);
                let mut ticks = tokio::time::interval_at((start + offset).into(), period);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                ticks
            });
            tokio::spawn(async move {
                // Users start at different keys, so they do not move in step.
                let mut n = user;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(ticks) = &mut pace {
                        ticks.tick().await;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    let answered = browser.get(&mix.path(n)).await;
                    let counter = match answered {
                        Ok(answer) if answer.ok() && mix.answered(n, &answer.body) => &done,
                        _ => &failed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    // Counted at the stop: answers still in flight (at most one a user)
    // are left out.
    let requests = done.load(Ordering::Relaxed);
    let errors = failed.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    for task in tasks {
        // A user task only loops and counts; it cannot panic but on a bug.
        let _ = task.await;
    }
    tokio::time::sleep(DRAIN).await;
    let server_cpu = cpu(processes.server).saturating_sub(server_before);
    let redis_cpu = processes
        .redis
        .zip(redis_before)
        .map(|((pid, _), before)| cpu(pid).saturating_sub(before));
    let redis_commands = processes
        .redis
        .and_then(|(_, port)| redis_commands(port))
        .zip(commands_before)
        .map(|(after, before)| after.saturating_sub(before));
    Sample {
        requests,
        errors,
        elapsed,
        server_cpu,
        redis_cpu,
        redis_commands,
    }
}

/// User `user`'s share of `rate` requests a second among `users`: when its
/// first request goes, after the start, and the period between its requests.
/// The users' offsets spread evenly over one period, so that the load
/// arrives steadily rather than all users at once.
fn share(rate: u64, users: usize, user: usize) -> (Duration, Duration) {
    let period = Duration::from_secs_f64(users as f64 / rate.max(1) as f64);
    (period.mul_f64(user as f64 / users.max(1) as f64), period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_shares_add_up_to_the_rate_and_spread_over_a_period() {
        // 4 users at 1,000 a second: each sends every 4 ms, 1 ms apart.
        let shares: Vec<_> = (0..4).map(|user| share(1_000, 4, user)).collect();
        for (user, (offset, period)) in shares.iter().enumerate() {
            assert_eq!(*period, Duration::from_millis(4));
            assert_eq!(*offset, Duration::from_millis(user as u64));
        }
        // 64 users at 16,000 a second: 250 each.
        let (_, period) = share(16_000, 64, 0);
        assert_eq!(period, Duration::from_millis(4));
    }

    #[test]
    fn a_read_that_finds_no_value_is_no_answer() {
        // In set:50,get:50 the odd requests read.
        assert!(Mix::SetGet.answered(0, b"null"));
        assert!(Mix::SetGet.answered(1, br#""v0""#));
        assert!(!Mix::SetGet.answered(1, b"null"));
        assert!(!Mix::Get.answered(4, b""));
        assert!(Mix::Get.answered(4, br#""initial""#));
        assert!(Mix::Get.answered(4, b"12"));
        assert!(Mix::Root.answered(7, b"anything"));
    }
}
