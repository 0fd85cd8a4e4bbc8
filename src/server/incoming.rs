//! The accepted-connection stream, telling when the server has dropped it (closing the listening
//! socket), so that shutdown can report NOT_SERVING only once new connections are refused.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::oneshot;
use tokio_stream::Stream;

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
