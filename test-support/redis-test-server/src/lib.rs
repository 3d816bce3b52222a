//! Throwaway Redis servers for tests and benchmarks.
//!
//! [`RedisServer::start`] runs a `redis-server` of its own on a free loopback
//! port, with persistence off (`--save "" --appendonly no`) and its files in a
//! temporary directory, and kills it by pid when dropped. [`RedisCluster::start`]
//! does the same for a Redis Cluster of several masters, assigning the slots and
//! waiting until every node reports `cluster_state:ok`. Nothing here assumes a
//! server is already running, so tests can run in parallel.
//!
//! If `redis-server` is not installed, these panic with a message that says how
//! to install it: a Redis test must fail, never skip silently.

#![warn(missing_docs)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a server may take to answer PING, and a cluster to become ok.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Fresh ports tried when a server could not bind the one it was given.
const PORT_ATTEMPTS: usize = 5;

const INSTALL_HINT: &str = "redis-server is not on PATH: the Redis tests start their own server \
     and need the binary (Debian/Ubuntu: apt-get install redis-server)";

/// One `redis-server` process on a loopback port, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a standalone server on a free port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (`["--requirepass", "x"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("redis-test-server-")
            .tempdir()
            .expect("create a temporary directory for redis-server");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            if let Some(child) = spawn(port, &extra, dir.path()) {
                return RedisServer {
                    child: Some(child),
                    port,
                    extra,
                    dir,
                };
            }
        }
        panic!("redis-server did not start on any of {PORT_ATTEMPTS} free ports");
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, by pid) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same arguments.
    ///
    /// # Panics
    ///
    /// If the port was taken meanwhile or the server does not come up.
    pub fn restart(&mut self) {
        self.stop();
        // The kernel may hold the port briefly after the kill: try for a while.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(child) = spawn(self.port, &self.extra, self.dir.path()) {
                self.child = Some(child);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// A blocking connection, for set-up and inspection in tests.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection())
            .expect("connect to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of masters only, each a [`RedisServer`] with
/// `--cluster-enabled yes`, its 16384 slots split evenly between them.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` cluster-enabled servers, assigns the slots, introduces
    /// the nodes to each other and waits until the cluster state is ok on each.
    pub fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 1, "a cluster needs at least one master");
        // Each node's cluster bus gets a free port of its own rather than port + 10000.
        let (nodes, buses): (Vec<RedisServer>, Vec<u16>) = (0..masters)
            .map(|_| {
                let bus = free_port();
                let server = RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                    "--cluster-node-timeout",
                    "5000",
                ]);
                (server, bus)
            })
            .unzip();
        let slots_per_node = 16384 / masters;
        let mut connections: Vec<redis::Connection> =
            nodes.iter().map(RedisServer::connection).collect();
        for (i, con) in connections.iter_mut().enumerate() {
            let first = i * slots_per_node;
            let last = if i + 1 == masters {
                16383
            } else {
                first + slots_per_node - 1
            };
            let () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(con)
                .expect("CLUSTER ADDSLOTSRANGE");
        }
        for (node, bus) in nodes.iter().zip(&buses).skip(1) {
            let () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port)
                .arg(bus)
                .query(&mut connections[0])
                .expect("CLUSTER MEET");
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = connections.iter_mut().all(|con| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(con)
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{masters}\r"))
            });
            if ready {
                return RedisCluster { nodes };
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not reach cluster_state:ok within {READY_TIMEOUT:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// The nodes' URLs, `redis://127.0.0.1:PORT` each.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

/// Starts `redis-server` on `port` and waits until it answers PING; `None` if it
/// exited first (most likely the port was taken).
fn spawn(port: u16, extra: &[String], dir: &Path) -> Option<Child> {
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
        Err(error) => panic!("could not run redis-server: {error}"),
    };
    // With `--requirepass`, the readiness check must authenticate.
    let password = extra
        .iter()
        .position(|arg| arg == "--requirepass")
        .and_then(|i| extra.get(i + 1));
    let url = match password {
        Some(password) => format!("redis://:{password}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        // Ask for the pid, so that a server of another test that took the port
        // first is not mistaken for this one.
        let info = redis::Client::open(url.as_str())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut con| {
                // Something else on the port must not hang the check.
                con.set_read_timeout(Some(Duration::from_secs(1)))?;
                redis::cmd("INFO").arg("server").query::<String>(&mut con)
            });
        if let Ok(info) = info {
            if info.contains(&format!("process_id:{}\r", child.id())) {
                return Some(child);
            }
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server on port {port} did not answer within {READY_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(10));
    }
}
