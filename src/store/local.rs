//! A private `redis-server` on a free loopback port, for `callbackd demo` and the tests.
//!
//! Persistence is off and the process is killed when the handle drops, so nothing outlives it.

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
}

/// A running private `redis-server`.
pub struct LocalRedis {
    child: Child,
    port: u16,
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
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    if s.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let want = format!("process_id:{pid}\r\n");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains("process_id:") && text.contains("\r\nrun_id:") {
            return text.contains(&want);
        }
    }
    false
}

impl LocalRedis {
    pub fn start() -> Result<Self, LocalRedisError> {
        // Another process may take the port between probing and binding; try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(LocalRedisError::Spawn)?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if answers_as(port, child.id()) {
                    return Ok(Self { child, port });
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(LocalRedisError::NotReady)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
