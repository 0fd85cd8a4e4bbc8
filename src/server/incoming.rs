//! The accepted-connection stream: every socket with `TCP_NODELAY`, and a signal when the server
//! has dropped the stream (closing the listening socket), so that shutdown can report
//! NOT_SERVING only once new connections are refused.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tokio_stream::{wrappers::TcpListenerStream, Stream};

/// Accepts connections and turns Nagle's algorithm off on each. tonic's own `tcp_nodelay` setting
/// only reaches listeners it binds itself; without this every answer written in more than one
/// piece (headers, then body and trailers) waits for the client's delayed ACK, about 40 ms.
pub struct NoDelay {
    inner: TcpListenerStream,
}

impl NoDelay {
    /// Accepts from `listener`.
    pub fn new(listener: TcpListener) -> Self {
        Self {
            inner: TcpListenerStream::new(listener),
        }
    }
}

impl Stream for NoDelay {
    type Item = io::Result<TcpStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(stream))) = &polled {
            // A socket that refuses the option still serves, only slower: keep it.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY on an accepted connection");
            }
        }
        polled
    }
}

/// Passes connections through; says so when dropped.
pub struct ClosedOnDrop<S> {
    inner: S,
    closed: Option<oneshot::Sender<()>>,
}

impl<S> ClosedOnDrop<S> {
    /// The stream, and a receiver that resolves once the stream is dropped.
    pub fn new(inner: S) -> (Self, oneshot::Receiver<()>) {
        let (closed, on_close) = oneshot::channel();
        (
            Self {
                inner,
                closed: Some(closed),
            },
            on_close,
        )
    }
}

impl<S: Stream + Unpin> Stream for ClosedOnDrop<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<S> Drop for ClosedOnDrop<S> {
    fn drop(&mut self) {
        if let Some(closed) = self.closed.take() {
            closed.send(()).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_accepted_connection_has_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = NoDelay::new(listener);
        for _ in 0..2 {
            let _client = TcpStream::connect(addr).await.unwrap();
            let accepted = incoming.next().await.unwrap().unwrap();
            assert!(accepted.nodelay().unwrap());
        }
    }
}
