//! A TCP proxy between a server and PostgreSQL, so a test can cut the database off without
//! touching the shared cluster: refuse connections at once (a database that is down), or
//! silently stop forwarding (an address that stops answering, as during a restart or a network
//! partition). Connections cut either way are closed when the proxy forwards again, as a
//! restarted database would have closed them.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Pass everything through.
    Forward,
    /// Close new and existing connections at once.
    Refuse,
    /// Accept connections but pass nothing either way.
    Blackhole,
}

/// A running proxy; stops when dropped.
pub struct DbProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl DbProxy {
    /// Starts a proxy on 127.0.0.1 to `target`, forwarding.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(Mode::Forward);
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                client.set_nodelay(true).ok();
                tokio::spawn(relay(client, target, modes.subscribe()));
            }
        });
        Self { addr, mode, task }
    }

    /// A proxy in front of the test PostgreSQL server (`TEST_DATABASE_URL`).
    pub async fn before_test_postgres() -> Self {
        let base = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let (_, host_port, _) = split_url(&base);
        let target = tokio::net::lookup_host(host_port)
            .await
            .expect("database host")
            .next()
            .expect("an address");
        Self::start(target).await
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn route(&self, database_url: &str) -> String {
        let (head, host_port, tail) = split_url(database_url);
        assert!(!host_port.is_empty(), "a URL with a host");
        format!("{head}{}{tail}", self.addr)
    }

    /// Changes what the proxy does, for new and existing connections.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return,
        Mode::Blackhole => {
            // Hold the connection open and silent until the mode changes, then close it.
            mode.changed().await.ok();
            return;
        }
        Mode::Forward => {}
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    server.set_nodelay(true).ok();
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    loop {
        let event = tokio::select! {
            read = client_read.read(&mut up) => Event::FromClient(read),
            read = server_read.read(&mut down) => Event::FromServer(read),
            changed = mode.changed() => Event::ModeChanged(changed.is_ok()),
        };
        match event {
            Event::FromClient(Ok(n)) if n > 0 => {
                if server_write.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            Event::FromServer(Ok(n)) if n > 0 => {
                if client_write.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
            Event::FromClient(_) | Event::FromServer(_) | Event::ModeChanged(false) => return,
            Event::ModeChanged(true) => {
                let now = *mode.borrow_and_update();
                match now {
                    Mode::Forward => {}
                    Mode::Refuse => return,
                    Mode::Blackhole => {
                        mode.changed().await.ok();
                        return;
                    }
                }
            }
        }
    }
}

enum Event {
    FromClient(std::io::Result<usize>),
    FromServer(std::io::Result<usize>),
    ModeChanged(bool),
}

/// A URL as (everything before the host, `host:port`, everything after it).
fn split_url(url: &str) -> (&str, &str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let host_start = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let host_end = url[host_start..]
        .find('/')
        .map_or(url.len(), |i| host_start + i);
    (
        &url[..host_start],
        &url[host_start..host_end],
        &url[host_end..],
    )
}
