//! A real `redis-server` for the tests and the benches: started on a free
//! loopback port with no persistence, stopped (and its directory removed)
//! when dropped.
//!
//! The binary is `$ACQREL_REDIS_SERVER` or `redis-server` on the `PATH`
//! (Debian's package `redis-server`, which `cargo xtask ci` and
//! `cargo xtask install-redis` install). Without it, starting a server
//! panics with a message saying so: a test that needs Redis never passes
//! by skipping.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`, or one killed and waiting to be restarted.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free loopback port.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed, or does not answer within
    /// ten seconds.
    pub fn start() -> RedisServer {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("acqrel-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a directory for redis-server");
            let mut server = RedisServer {
                child: None,
                port,
                dir,
            };
            match server.spawn() {
                Ok(()) => return server,
                // Another process took the port between our probe and
                // the server's bind: try another.
                Err(e) => last = e,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client of this server, for the commands a test sends itself.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a loopback URL")
    }

    /// Sends one command (inline form: words without spaces) and returns
    /// the server's reply line, without a client library.
    pub fn command(&self, words: &[&str]) -> String {
        command_on(self.port, words)
    }

    /// Kills the server at once (SIGKILL: no shutdown, no save) and waits
    /// for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (nothing was
    /// persisted).
    ///
    /// # Panics
    ///
    /// When it does not come back within ten seconds.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("redis-server did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary =
            std::env::var_os("ACQREL_REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let port = self.port.to_string();
        let spawned = Command::new(&binary)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "{}: not found. The Redis tests need a real redis-server: \
                 `cargo xtask install-redis` installs Debian's package \
                 (`cargo xtask ci` does it too), or set ACQREL_REDIS_SERVER \
                 to a redis-server binary",
                binary.to_string_lossy()
            ),
            Err(e) => panic!("{}: {e}", binary.to_string_lossy()),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited: {status}",
                    self.port
                ));
            }
            if self.pings() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no PONG from port {} within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pings(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        stream.write_all(b"PING\r\n").is_ok() && read_line(&mut stream) == "+PONG"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`RedisServer::command`] to the server on loopback port `port`, for a
/// thread that does not hold the server (a command that blocks, such as
/// `DEBUG SLEEP`, sent while the test goes on).
pub fn command_on(port: u16, words: &[&str]) -> String {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect(addr).expect("connect to redis-server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    stream
        .write_all(format!("{}\r\n", words.join(" ")).as_bytes())
        .expect("send to redis-server");
    read_line(&mut stream)
}

/// A port nothing listens on now (the kernel's choice for port 0).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One reply line, without its CRLF (empty on a read error).
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = stream.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8_lossy(&line).into_owned()
}
