//! A private `redis-server` on a free loopback port, for `callbackd demo` and the tests, and
//! a private Redis Cluster of a few such servers, for the tests.
//!
//! Persistence is off (or, for tests that restart it, an append-only file in a directory of
//! its own) and the process is killed when the handle drops, so nothing outlives it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a private Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    #[error("cannot run redis-server (Debian package redis-server): {0}")]
    Spawn(std::io::Error),
    #[error("redis-server did not answer PING within 5 s")]
    NotReady,
    #[error("redis-cli --cluster create failed: {0}")]
    ClusterCreate(String),
    #[error("the cluster did not report cluster_state:ok within 20 s")]
    ClusterNotReady,
}

/// A running private `redis-server`.
pub struct LocalRedis {
    child: Child,
    port: u16,
    /// Where a durable server keeps its append-only file, removed on drop.
    dir: Option<std::path::PathBuf>,
    /// A node of a cluster (it keeps its `nodes.conf` in `dir`).
    cluster: bool,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether the Redis on `port` is the process `pid`: another test (or process) may have
/// taken the port first, and its server would answer a PING just as well.
fn answers_as(port: u16, pid: u32) -> bool {
    info(port, "INFO server", "\r\nrun_id:")
        .is_some_and(|text| text.contains(&format!("process_id:{pid}\r\n")))
}

/// The reply to an inline `command` (one that answers a bulk string) from the Redis on
/// `port`, once it holds `complete`; `None` when it cannot be read.
fn info(port: u16, command: &str, complete: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    s.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains(complete) {
            return Some(text.into_owned());
        }
    }
    None
}

impl LocalRedis {
    pub fn start() -> Result<Self, LocalRedisError> {
        Self::start_in(None)
    }

    /// A server that keeps what it was told across [`LocalRedis::restart`]: every write
    /// is in its append-only file before it is answered (`appendfsync always`).
    pub fn start_durable() -> Result<Self, LocalRedisError> {
        let dir = std::env::temp_dir().join(format!("callbackd-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(LocalRedisError::Spawn)?;
        Self::start_in(Some(dir))
    }

    fn start_in(dir: Option<std::path::PathBuf>) -> Result<Self, LocalRedisError> {
        Self::start_node(dir, false)
    }

    fn start_node(dir: Option<std::path::PathBuf>, cluster: bool) -> Result<Self, LocalRedisError> {
        // Another process may take the port between probing and binding; try a few.
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port, dir.as_deref(), cluster)? {
                return Ok(Self {
                    child,
                    port,
                    dir,
                    cluster,
                });
            }
        }
        Err(LocalRedisError::NotReady)
    }

    /// Kill the server as a crash would (`SIGKILL`), then start it again on its port.
    pub fn restart(&mut self) -> Result<(), LocalRedisError> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // The old socket may linger a moment.
            if let Some(child) = spawn(self.port, self.dir.as_deref(), self.cluster)? {
                self.child = child;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LocalRedisError::NotReady);
            }
        }
    }

    /// Kill the server and leave it down, until [`LocalRedis::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// A `redis-server` on `port`, once it answers; `None` when it did not (the port was taken).
fn spawn(
    port: u16,
    dir: Option<&std::path::Path>,
    cluster: bool,
) -> Result<Option<Child>, LocalRedisError> {
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]);
    match dir {
        Some(dir) => command
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir),
        None => command.args(["--appendonly", "no"]),
    };
    if cluster {
        command.args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "3000",
        ]);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(LocalRedisError::Spawn)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if answers_as(port, child.id()) {
            return Ok(Some(child));
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(None)
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A private Redis Cluster: a few durable masters on loopback ports, their slots spread
/// by `redis-cli --cluster create`, no replicas (a node restarted from its append-only
/// file comes back with its slots).
pub struct LocalRedisCluster {
    nodes: Vec<LocalRedis>,
}

impl LocalRedisCluster {
    pub fn start(masters: usize) -> Result<Self, LocalRedisError> {
        let nodes = (0..masters)
            .map(|_| {
                let dir = std::env::temp_dir()
                    .join(format!("callbackd-redis-cluster-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).map_err(LocalRedisError::Spawn)?;
                LocalRedis::start_node(Some(dir), true)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(LocalRedisError::Spawn)?;
        if !out.status.success() {
            return Err(LocalRedisError::ClusterCreate(
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ));
        }
        let cluster = Self { nodes };
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    /// Wait until every node says the cluster is whole.
    fn wait_until_ok(&self) -> Result<(), LocalRedisError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = self.nodes.iter().all(|n| {
                info(n.port, "CLUSTER INFO", "cluster_stats_messages")
                    .is_some_and(|text| text.contains("cluster_state:ok"))
            });
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(LocalRedisError::ClusterNotReady)
    }

    /// A seed node's URL: the cluster client learns the others from it.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// The URL of each node, for commands meant for one node (`CLIENT PAUSE`).
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(LocalRedis::url).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Kill one node as a crash would and start it again from its append-only file; its
    /// slots are unserved meanwhile.
    pub fn restart_node(&mut self, node: usize) -> Result<(), LocalRedisError> {
        self.nodes[node].restart()?;
        self.wait_until_ok()
    }
}
