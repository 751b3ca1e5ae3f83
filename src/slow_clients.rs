//! Slow clients: a connection must send each request's head within a deadline (10 seconds)
//! from its first byte, or from the connection's start for the first request; poem's idle
//! timeout closes a connection that stays silent between requests. Without these a client
//! that trickles a header byte now and then (slowloris) holds a connection for ever.
//!
//! The guard wraps each accepted stream and watches only where a head ends (the first empty
//! line); hyper still parses everything. A head that misses its deadline fails the read, and
//! hyper closes the connection.
//!
//! Open connections are capped for the whole process (`WXLOGIN_MAX_CONNECTIONS`): at the cap,
//! the acceptor waits for one to close, and new ones wait in the kernel's listen queue, so that
//! memory and file descriptors stay bounded. A failed accept (out of file descriptors, say) is
//! retried after a pause instead of at once: poem's accept loop would otherwise spin.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How long a request head may take to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections open at once in one process, by default.
pub const MAX_CONNECTIONS: usize = 4096;
/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The limits of a server's connections. Clones share one count of open connections.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// For each request head, from its first byte (the first: from the connection's start).
    pub head: Duration,
    /// Between requests.
    pub idle: Duration,
    /// Connections that may be open at once, shared by every clone (every serving thread).
    pub open: Arc<Semaphore>,
}

impl ConnectionLimits {
    /// The default deadlines, and at most `max` connections open at once.
    pub fn new(max: usize) -> Self {
        ConnectionLimits {
            head: HEAD_TIMEOUT,
            idle: IDLE_TIMEOUT,
            open: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::new(MAX_CONNECTIONS)
    }
}

/// An acceptor that keeps open connections under a cap, and whose connections must send
/// request heads within a deadline.
pub struct Guarded<A> {
    inner: A,
    head_timeout: Duration,
    open: Arc<Semaphore>,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, limits: &ConnectionLimits) -> Self {
        Guarded {
            inner,
            head_timeout: limits.head,
            open: limits.open.clone(),
        }
    }
}

impl<A: Acceptor> Acceptor for Guarded<A> {
    type Io = Timed<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    /// Cancel-safe, as poem needs: a permit taken before an accept that is cancelled is
    /// dropped with it.
    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            let permit = self
                .open
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| io::Error::other("the connection cap is closed"))?;
            match self.inner.accept().await {
                Ok((io, local, remote, scheme)) => {
                    let io = Timed::new(io, self.head_timeout, Some(permit));
                    return Ok((io, local, remote, scheme));
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "accepting a connection failed; pausing");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Where a connection is in its request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Reading a head: the deadline runs.
    Head,
    /// The head is in: the body and the answer take what they take.
    Rest,
    /// Answered: the next byte starts the next head's deadline.
    Idle,
}

/// A stream whose request heads have a deadline, and that counts as open until dropped.
pub struct Timed<IO> {
    io: IO,
    limit: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    /// How much of `\r\n\r\n` the last bytes read have matched.
    matched: usize,
    _open: Option<OwnedSemaphorePermit>,
}

impl<IO> Timed<IO> {
    fn new(io: IO, limit: Duration, open: Option<OwnedSemaphorePermit>) -> Self {
        Timed {
            io,
            limit,
            phase: Phase::Head,
            deadline: Box::pin(tokio::time::sleep(limit)),
            matched: 0,
            _open: open,
        }
    }

    /// Notes bytes read: a head that starts, or ends.
    fn saw(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.matched = 0;
            self.deadline.as_mut().reset(Instant::now() + self.limit);
        }
        if self.phase != Phase::Head {
            return;
        }
        const END: &[u8; 4] = b"\r\n\r\n";
        for &b in bytes {
            self.matched = match b {
                _ if b == END[self.matched] => self.matched + 1,
                b'\r' => 1,
                _ => 0,
            };
            if self.matched == END.len() {
                self.phase = Phase::Rest;
                return;
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Timed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase == Phase::Head && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request head did not arrive in time",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.saw(&buf.filled()[before..]);
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Timed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // An answer is going out: the request is over, the next head's clock starts at its
        // first byte.
        if this.phase == Phase::Rest {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == Phase::Rest {
            this.phase = Phase::Idle;
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_head_ends_at_its_first_empty_line_even_across_reads() {
        let mut t = Timed::new((), Duration::from_secs(10), None);
        t.saw(b"GET / HTTP/1.1\r\nHost: a\r");
        assert_eq!(t.phase, Phase::Head);
        t.saw(b"\n\r");
        assert_eq!(t.phase, Phase::Head);
        t.saw(b"\n");
        assert_eq!(t.phase, Phase::Rest);
        // Body bytes change nothing; after the answer, the next byte starts a head.
        t.saw(b"\r\n\r\n");
        assert_eq!(t.phase, Phase::Rest);
        t.phase = Phase::Idle;
        t.saw(b"G");
        assert_eq!(t.phase, Phase::Head);
        t.saw(b"ET / HTTP/1.1\r\n\r\r\n\r\n");
        assert_eq!(t.phase, Phase::Rest);
    }
}
