//! The soak test: many tasks work one store for minutes with every kind of
//! operation, each under a deadline, so that a store that hangs (a deadlock
//! that only shows after a minute of load, say) fails a test with a clear
//! message instead of passing every short one.
//!
//! ```ignore
//! // store-foo/tests/soak.rs
//! #[test]
//! fn soak() {
//!     session_core::testkit::soak::run_test("store-foo", || async {
//!         store_foo::FooStore::builder().build()
//!     });
//! }
//! ```
//!
//! Each task owns its sessions and keeps a model of what they hold, so every
//! read is checked: a lost or torn write fails the soak as surely as a hang.
//! All tasks also write their own key of one shared session, checked at the
//! end. Half the creations also leave behind a 4 KiB session with a
//! one-second idle timeout, so the store keeps growing and its expiry
//! sweeper keeps shrinking it during the soak.
//!
//! Knobs (environment variables): `SOAK_SECS` (default 120), `SOAK_TASKS`
//! (default 64), `SOAK_DEADLINE_SECS` (default 5).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ExpiryPolicy, SessionId, Store, WriteMode, WriteOutcome};

use super::IntoTestStore;

/// How a soak runs. [`Soak::from_env`] reads the knobs.
#[derive(Clone, Debug)]
pub struct Soak {
    /// Concurrent tasks.
    pub tasks: usize,
    /// How long the soak runs.
    pub duration: Duration,
    /// The longest any one operation may take before the soak fails.
    pub deadline: Duration,
    /// How often throughput is reported.
    pub report_every: Duration,
    /// Whether an operation that ends in time with the store's own
    /// [`Error::Timeout`](crate::Error::Timeout) is counted and survived
    /// rather than failing the soak: for a store known to stall (sled),
    /// whose promise is an answer within its deadline, not a success. The
    /// task then starts over with a fresh session (a timed-out write may or
    /// may not have been applied). Off by default.
    pub tolerate_timeouts: bool,
}

impl Default for Soak {
    fn default() -> Soak {
        Soak {
            tasks: 64,
            duration: Duration::from_secs(120),
            deadline: Duration::from_secs(5),
            report_every: Duration::from_secs(30),
            tolerate_timeouts: false,
        }
    }
}

/// Reads an environment variable as a number, `default` when unset.
///
/// # Panics
///
/// When the variable is set but not a number: a mistyped knob must not
/// silently run the default.
pub fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

impl Soak {
    /// The defaults, changed by `SOAK_SECS`, `SOAK_TASKS` and
    /// `SOAK_DEADLINE_SECS`. Throughput is reported every 30 s, or every
    /// minute for soaks of 10 minutes or more.
    pub fn from_env() -> Soak {
        let defaults = Soak::default();
        let duration = Duration::from_secs(env_number("SOAK_SECS", defaults.duration.as_secs()));
        Soak {
            tasks: env_number("SOAK_TASKS", defaults.tasks as u64).max(1) as usize,
            duration,
            deadline: Duration::from_secs(env_number(
                "SOAK_DEADLINE_SECS",
                defaults.deadline.as_secs(),
            )),
            report_every: if duration >= Duration::from_secs(600) {
                Duration::from_secs(60)
            } else {
                defaults.report_every
            },
            tolerate_timeouts: false,
        }
    }

    /// Runs the soak against `store`, printing throughput as it goes (on
    /// stderr, prefixed with `name`). Stops at the first failure: an operation
    /// past its deadline, a store error, or a read that disagrees with what
    /// was written.
    pub async fn run(&self, name: &str, store: Arc<dyn Store>) -> Result<SoakReport, String> {
        let shared = Progress::new(self.deadline, self.tolerate_timeouts);
        let hot = SessionId::generate("soak:");
        let created = shared
            .call("create the shared session", 0, async {
                store
                    .set(&hot, "seed", b"0", WriteMode::Create, &POLICY)
                    .await
            })
            .await;
        if !matches!(created, Ok(WriteOutcome::Applied)) {
            return Err(shared
                .failure()
                .unwrap_or_else(|| "shared session not created".into()));
        }
        let tasks: Vec<_> = (0..self.tasks)
            .map(|task| {
                let worker = Worker::new(task, store.clone(), shared.clone(), hot.clone());
                tokio::spawn(worker.run())
            })
            .collect();

        let intervals = shared.report(name, "operations", self).await;
        // Every operation has a deadline, so every task ends soon.
        let mut last_values = HashMap::new();
        for task in tasks {
            match task.await {
                Ok(Some((key, value))) => {
                    last_values.insert(key, value);
                }
                Ok(None) => {}
                Err(panic) => shared.fail(format!("a soak task panicked: {panic}")),
            }
        }
        if let Some(failure) = shared.failure() {
            return Err(failure);
        }
        // Every task's last write to the shared session is there.
        let all = shared
            .call("read the shared session", 0, store.get_all(&hot, &POLICY))
            .await;
        let Ok(all) = all else {
            return Err(shared
                .failure()
                .unwrap_or_else(|| "the shared session's read timed out".into()));
        };
        for (key, value) in &last_values {
            if all.get(key) != Some(value) {
                return Err(format!(
                    "the shared session lost a write: {key} is {:?}, last written {:?}",
                    all.get(key)
                        .map(|v| String::from_utf8_lossy(v).into_owned()),
                    String::from_utf8_lossy(value)
                ));
            }
        }
        let report = shared.summary(self, "operations", intervals);
        eprintln!("soak {name}: passed: {report}");
        Ok(report)
    }
}

/// What a soak that passed did.
#[derive(Clone, Debug)]
pub struct SoakReport {
    /// What was counted: "operations" on a store, "requests" over HTTP.
    pub unit: &'static str,
    /// Operations completed.
    pub operations: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Operations per reporting interval, in order (the last may be shorter).
    pub intervals: Vec<u64>,
    /// The reporting interval.
    pub report_every: Duration,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Operations that ended with the store's own timeout error (counted
    /// only with [`Soak::tolerate_timeouts`]).
    pub timeouts: u64,
}

impl std::fmt::Display for SoakReport {
    /// Operations, time, tasks, the mean rate and each interval's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rates: Vec<String> = self
            .intervals
            .iter()
            .map(|ops| format!("{:.0}", *ops as f64 / self.report_every.as_secs_f64()))
            .collect();
        write!(
            f,
            "{} {} in {:.0} s by {} tasks ({:.0}/s); per {} s interval: {}/s",
            self.operations,
            self.unit,
            self.elapsed.as_secs_f64(),
            self.tasks,
            self.operations as f64 / self.elapsed.as_secs_f64(),
            self.report_every.as_secs(),
            rates.join(", ")
        )?;
        if self.timeouts > 0 {
            write!(
                f,
                "; {} {} answered with the store's timeout error",
                self.timeouts, self.unit
            )?;
        }
        Ok(())
    }
}

/// Runs [`Soak::from_env`] on a store from `factory`, on a runtime of its own,
/// and panics with the failure. On a failure the store is leaked, not dropped:
/// a hung store would hang its own drop too (and with it the test).
pub fn run_test<F, Fut, S>(name: &str, factory: F) -> SoakReport
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    S: IntoTestStore,
{
    run_test_with(name, Soak::from_env(), factory)
}

/// [`run_test`] with a [`Soak`] of the caller's (for example one that
/// tolerates the store's own timeouts).
pub fn run_test_with<F, Fut, S>(name: &str, soak: Soak, factory: F) -> SoakReport
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    S: IntoTestStore,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the soak");
    let test = runtime.block_on(async { factory().await.into_test_store() });
    eprintln!(
        "soak {name}: {} tasks for {} s, each operation within {:?} (SOAK_SECS, SOAK_TASKS, SOAK_DEADLINE_SECS)",
        soak.tasks,
        soak.duration.as_secs(),
        soak.deadline
    );
    match runtime.block_on(soak.run(name, test.store.clone())) {
        Ok(report) => {
            runtime.block_on(async move { drop(test) });
            report
        }
        Err(failure) => {
            std::mem::forget(test);
            runtime.shutdown_timeout(Duration::from_secs(1));
            panic!("soak {name} failed: {failure}");
        }
    }
}

/// Sessions of the soak live an hour unless abandoned on purpose.
const POLICY: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(3600));
/// Abandoned sessions expire after a second, for the sweeper.
const SHORT: ExpiryPolicy = ExpiryPolicy::idle(Duration::from_secs(1));

/// The shared state of a running soak, store-level or over HTTP: what is
/// done, whether to stop, the first failure, and each operation's deadline.
pub struct Progress {
    done: AtomicU64,
    timeouts: AtomicU64,
    tolerate_timeouts: bool,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
    start: Instant,
    deadline: Duration,
}

impl Progress {
    /// A soak starting now, each operation within `deadline`; see
    /// [`Soak::tolerate_timeouts`].
    pub fn new(deadline: Duration, tolerate_timeouts: bool) -> Arc<Progress> {
        Arc::new(Progress {
            done: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            tolerate_timeouts,
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            start: Instant::now(),
            deadline,
        })
    }

    /// Records the first failure and stops the soak.
    pub fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(message);
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the soak is over (its time is up, or something failed).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Operations done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Each operation's deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Counts an operation answered in time with the store's timeout error,
    /// and says whether the soak survives it ([`Soak::tolerate_timeouts`]).
    pub fn timed_out(&self) -> bool {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        self.tolerate_timeouts
    }

    /// Time since the start, in seconds, for messages.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Awaits `operation` within the deadline, counting it when it ends in
    /// time; `None` when it missed the deadline (the caller says what hung).
    pub async fn within<T>(&self, operation: impl Future<Output = T>) -> Option<T> {
        let value = tokio::time::timeout(self.deadline, operation).await.ok()?;
        self.done.fetch_add(1, Ordering::Relaxed);
        Some(value)
    }

    /// Prints throughput (`unit` per second) every `soak.report_every`
    /// until `soak.duration` has passed or the soak failed, then stops it.
    /// Returns the count of each interval.
    pub async fn report(&self, name: &str, unit: &str, soak: &Soak) -> Vec<u64> {
        let mut intervals = Vec::new();
        let mut last = 0;
        let end = self.start + soak.duration;
        while Instant::now() < end && !self.stopped() {
            let next = (Instant::now() + soak.report_every).min(end);
            while Instant::now() < next && !self.stopped() {
                tokio::time::sleep(Duration::from_millis(100).min(next - Instant::now())).await;
            }
            let now = self.done();
            let span = soak.report_every.min(self.start.elapsed());
            eprintln!(
                "soak {name}: {:>5.0} s: {now} {unit}, {:.0}/s in the last interval",
                self.seconds(),
                (now - last) as f64 / span.as_secs_f64().max(f64::MIN_POSITIVE)
            );
            intervals.push(now - last);
            last = now;
        }
        self.stop.store(true, Ordering::SeqCst);
        intervals
    }

    /// The report of a soak that passed, counting `unit` ("operations",
    /// "requests").
    pub fn summary(&self, soak: &Soak, unit: &'static str, intervals: Vec<u64>) -> SoakReport {
        SoakReport {
            unit,
            operations: self.done(),
            elapsed: self.start.elapsed(),
            intervals,
            report_every: soak.report_every,
            tasks: soak.tasks,
            timeouts: self.timeouts.load(Ordering::SeqCst),
        }
    }

    /// Awaits one store operation under the deadline; `Halt::Stopped` (and
    /// the soak failed) if it missed it or returned an error, or
    /// `Halt::TimedOut` for a tolerated timeout error.
    async fn call<T>(
        &self,
        what: &str,
        task: usize,
        operation: impl Future<Output = crate::Result<T>>,
    ) -> Result<T, Halt> {
        match self.within(operation).await {
            Some(Ok(value)) => Ok(value),
            Some(Err(crate::Error::Timeout(_))) if self.timed_out() => Err(Halt::TimedOut),
            Some(Err(error)) => {
                self.fail(format!(
                    "task {task}: {what} failed {:.1} s into the soak: {error}",
                    self.seconds()
                ));
                Err(Halt::Stopped)
            }
            None => {
                self.fail(format!(
                    "task {task}: {what} missed its {:?} deadline {:.1} s into the soak, after {} operations in all: the store hangs",
                    self.deadline,
                    self.seconds(),
                    self.done()
                ));
                Err(Halt::Stopped)
            }
        }
    }
}

/// One task: its own session and a model of what it holds.
struct Worker {
    task: usize,
    store: Arc<dyn Store>,
    shared: Arc<Progress>,
    hot: SessionId,
    rng: u64,
    counter: u64,
    session: Option<(SessionId, HashMap<String, Vec<u8>>)>,
    /// The last value this task wrote to the shared session.
    hot_written: Option<Vec<u8>>,
    /// Whether a timed-out operation may have changed it since.
    hot_uncertain: bool,
}

/// Why a step ended early.
enum Halt {
    /// The soak failed (already recorded): the task ends.
    Stopped,
    /// A tolerated timeout: the task starts over with a fresh session.
    TimedOut,
}

impl Worker {
    fn new(task: usize, store: Arc<dyn Store>, shared: Arc<Progress>, hot: SessionId) -> Worker {
        Worker {
            task,
            store,
            shared,
            hot,
            rng: 0x9E37_79B9_7F4A_7C15 ^ ((task as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)),
            counter: 0,
            session: None,
            hot_written: None,
            hot_uncertain: false,
        }
    }

    /// Runs until the soak stops; returns the task's key in the shared
    /// session and its last value there.
    async fn run(mut self) -> Option<(String, Vec<u8>)> {
        while !self.shared.stopped() {
            match self.step().await {
                Ok(()) => {}
                Err(Halt::Stopped) => break,
                // What the timed-out operation did is unknown: start over
                // (the session was taken out of `self` for the step).
                Err(Halt::TimedOut) => {
                    if self.hot_written.is_some() {
                        self.hot_uncertain = true;
                    }
                }
            }
        }
        if self.hot_uncertain {
            return None;
        }
        let key = self.hot_key();
        self.hot_written.map(|value| (key, value))
    }

    fn hot_key(&self) -> String {
        format!("task{}", self.task)
    }

    /// xorshift64*: cheap, and each task's sequence is its own.
    fn next(&mut self, below: u64) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }

    /// A fresh value, 16 bytes to 1 KiB, that names its writer.
    fn value(&mut self) -> Vec<u8> {
        self.counter += 1;
        let len = 16 + self.next(1009) as usize;
        let mut value = format!("{}:{}:", self.task, self.counter).into_bytes();
        value.resize(len, b'x');
        value
    }

    fn key(&mut self) -> String {
        format!("k{}", self.next(8))
    }

    async fn call<T>(
        &self,
        what: &str,
        operation: impl Future<Output = crate::Result<T>>,
    ) -> Result<T, Halt> {
        self.shared.call(what, self.task, operation).await
    }

    fn check(&self, ok: bool, what: impl FnOnce() -> String) -> Result<(), Halt> {
        if ok {
            Ok(())
        } else {
            self.shared.fail(format!("task {}: {}", self.task, what()));
            Err(Halt::Stopped)
        }
    }

    async fn step(&mut self) -> Result<(), Halt> {
        let Some((id, model)) = self.session.take() else {
            return self.create().await;
        };
        let store = self.store.clone();
        let roll = self.next(100);
        let (id, model) = match roll {
            // Reads, the most common operation.
            0..=34 => {
                let key = self.key();
                let got = self.call("get", store.get(&id, &key, &POLICY)).await?;
                self.check(got.as_ref() == model.get(&key), || {
                    format!(
                        "get {key} read {} bytes, expected {} (a lost write)",
                        len(&got),
                        len(&model.get(&key).cloned())
                    )
                })?;
                (Some(id), model)
            }
            35..=54 => {
                let (key, value) = (self.key(), self.value());
                let outcome = self
                    .call(
                        "set",
                        store.set(&id, &key, &value, WriteMode::Existing, &POLICY),
                    )
                    .await?;
                self.check(outcome == WriteOutcome::Applied, || {
                    "set on a live session found no session".into()
                })?;
                let mut model = model;
                model.insert(key, value);
                (Some(id), model)
            }
            55..=61 => {
                let key = self.key();
                let exists = self.call("del", store.del(&id, &key, &POLICY)).await?;
                self.check(exists, || "del on a live session found no session".into())?;
                let mut model = model;
                model.remove(&key);
                (Some(id), model)
            }
            62..=69 => {
                let all = self.call("get_all", store.get_all(&id, &POLICY)).await?;
                self.check(all == model, || {
                    format!("get_all read {} keys, expected {}", all.len(), model.len())
                })?;
                (Some(id), model)
            }
            70..=74 => {
                let keys = [self.key(), self.key(), "absent".to_string()];
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let got = self
                    .call("get_many", store.get_many(&id, &refs, &POLICY))
                    .await?;
                let expected: Vec<_> = keys.iter().map(|k| model.get(k).cloned()).collect();
                self.check(got == expected, || {
                    "get_many disagrees with the writes".into()
                })?;
                (Some(id), model)
            }
            75..=79 => {
                let (set, gone) = (self.key(), self.key());
                let value = self.value();
                let changes = vec![(set.clone(), Some(value.clone())), (gone.clone(), None)];
                let outcome = self
                    .call(
                        "set_many",
                        store.set_many(&id, &changes, WriteMode::Existing, &POLICY),
                    )
                    .await?;
                self.check(outcome == WriteOutcome::Applied, || {
                    "set_many on a live session found no session".into()
                })?;
                let mut model = model;
                model.insert(set, value);
                model.remove(&gone);
                (Some(id), model)
            }
            80..=83 => {
                let exists = self.call("extend", store.extend(&id, &POLICY)).await?;
                self.check(exists, || "extend found no session".into())?;
                (Some(id), model)
            }
            84..=88 => {
                let to = SessionId::generate("soak:");
                let moved = self
                    .call("regenerate", store.regenerate(&id, &to, &POLICY))
                    .await?;
                self.check(moved, || "regenerate found no session".into())?;
                let old = self
                    .call("get_all of a regenerated id", store.get_all(&id, &POLICY))
                    .await?;
                self.check(old.is_empty(), || "the old id outlived regenerate".into())?;
                (Some(to), model)
            }
            89..=93 => {
                self.call("del_all", store.del_all(&id)).await?;
                let outcome = self
                    .call(
                        "set on a destroyed session",
                        store.set(&id, "late", b"x", WriteMode::Existing, &POLICY),
                    )
                    .await?;
                self.check(outcome == WriteOutcome::NoSession, || {
                    "an Existing write revived a destroyed session".into()
                })?;
                (None, model)
            }
            _ => {
                let value = self.value();
                let key = self.hot_key();
                let outcome = self
                    .call(
                        "set on the shared session",
                        store.set(&self.hot, &key, &value, WriteMode::Existing, &POLICY),
                    )
                    .await?;
                self.check(outcome == WriteOutcome::Applied, || {
                    "the shared session is gone".into()
                })?;
                self.hot_written = Some(value);
                (Some(id), model)
            }
        };
        self.session = id.map(|id| (id, model));
        Ok(())
    }

    /// Starts a session with three keys; every other time also one of 4 KiB
    /// that is abandoned at once, so that the store grows and the sweeper
    /// shrinks it again, over and over (sled's deadlock came with that churn).
    async fn create(&mut self) -> Result<(), Halt> {
        let store = self.store.clone();
        if self.next(2) == 0 {
            let id = SessionId::generate("soak:");
            let changes: Vec<_> = (0..4)
                .map(|i| (format!("abandoned{i}"), Some(vec![b'a'; 1024])))
                .collect();
            let outcome = self
                .call(
                    "set_many (abandoned session)",
                    store.set_many(&id, &changes, WriteMode::Create, &SHORT),
                )
                .await?;
            self.check(outcome == WriteOutcome::Applied, || {
                "a Create write did not apply".into()
            })?;
        }
        let id = SessionId::generate("soak:");
        let mut model = HashMap::new();
        for key in ["k0", "k1", "k2"] {
            model.insert(key.to_string(), self.value());
        }
        let changes: Vec<_> = model
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let outcome = self
            .call(
                "set_many (create)",
                store.set_many(&id, &changes, WriteMode::Create, &POLICY),
            )
            .await?;
        self.check(outcome == WriteOutcome::Applied, || {
            "a Create write did not apply".into()
        })?;
        self.session = Some((id, model));
        Ok(())
    }
}

fn len(value: &Option<Vec<u8>>) -> String {
    value
        .as_ref()
        .map_or("nothing".into(), |v| v.len().to_string())
}
