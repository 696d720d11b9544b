//! The connection handling that the exporter's listeners share (`/metrics` and its pages,
//! the webhook receiver): a cap on connections, TLS, a deadline for request headers, a
//! graceful end; and the response body they all send.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::exposition::Body;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;
/// How long open connections get to finish their request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The connection handling of every listener of the exporter: at most `MAX_CONNECTIONS`
/// at once, TLS when `tls` is set, clients dropped that send no headers within
/// `header_timeout`, and a graceful end when `shutdown` resolves.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    header_timeout: Duration,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Chunks>> + Send + 'static,
{
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let closed = closed.clone();
        let tls = tls
            .as_ref()
            .map(|config| tokio_rustls::TlsAcceptor::from(Arc::clone(config)));
        tasks.spawn(async move {
            let service = service_fn(move |request| {
                let answer = handler(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            match tls {
                None => serve_connection(stream, service, header_timeout, closed).await,
                // A client that has not finished its handshake in time is dropped, as one
                // that does not send its headers.
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, service, header_timeout, closed).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::debug!("connections still open after the grace period: dropping them");
        tasks.abort_all();
    }
    Ok(())
}

/// Serves one connection (plain or TLS) until it ends or the server closes.
async fn serve_connection<S, F>(
    stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    service: S,
    header_timeout: Duration,
    mut closed: tokio::sync::watch::Receiver<bool>,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Chunks>,
            Error = Infallible,
            Future = F,
        > + Send,
    F: Future<Output = Result<Response<Chunks>, Infallible>> + Send + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = closed.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

pub fn text(status: StatusCode, body: &str) -> Response<Chunks> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Chunks::one(Bytes::from(body.to_owned())))
        .unwrap_or_else(|_| plain_error())
}

pub fn plain_error() -> Response<Chunks> {
    let mut response = Response::new(Chunks::one(Bytes::from_static(b"internal error\n")));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// A response body of ready chunks. The cached part of a /metrics body is many small
/// buffers (a family of a target each) shared by every scrape: runs of small ones are
/// copied into frames of about `FRAME_SIZE` as they are sent, so a scrape costs a few
/// hundred writes and holds one frame, never a copy of the whole body.
pub struct Chunks {
    body: Body,
    next: usize,
    remaining: u64,
}

/// Frames of about this size go to the socket; a chunk at least this big goes as it is.
const FRAME_SIZE: usize = 256 * 1024;

impl Chunks {
    pub fn one(bytes: Bytes) -> Self {
        Chunks::from(Body {
            shared: Arc::from([bytes]),
            own: Vec::new(),
        })
    }

    fn chunk(&self, index: usize) -> Option<&Bytes> {
        let shared = self.body.shared.len();
        if index < shared {
            self.body.shared.get(index)
        } else {
            self.body.own.get(index - shared)
        }
    }
}

impl From<Body> for Chunks {
    fn from(body: Body) -> Self {
        Chunks {
            remaining: body.len() as u64,
            body,
            next: 0,
        }
    }
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let Some(first) = this.chunk(this.next).cloned() else {
            return Poll::Ready(None);
        };
        // The run of chunks that fits in one frame; a lone chunk (a big one, or the whole
        // of a small answer) goes as it is, without a copy.
        let mut end = this.next + 1;
        let mut size = first.len();
        while let Some(chunk) = this.chunk(end) {
            if size + chunk.len() > FRAME_SIZE {
                break;
            }
            size += chunk.len();
            end += 1;
        }
        let frame = if end == this.next + 1 {
            first
        } else {
            let mut frame = BytesMut::with_capacity(size);
            for index in this.next..end {
                if let Some(chunk) = this.chunk(index) {
                    frame.extend_from_slice(chunk);
                }
            }
            frame.freeze()
        };
        this.next = end;
        this.remaining -= frame.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_chunks_go_out_in_frames_and_big_ones_as_they_are() {
        use hyper::body::Body as _;
        let small: Vec<Bytes> = (0..10_000)
            .map(|i| Bytes::from(format!("line {i}\n")))
            .collect();
        let big = Bytes::from(vec![b'x'; FRAME_SIZE + 1]);
        let mut shared = small.clone();
        shared.push(big.clone());
        let body = Body {
            shared: Arc::from(shared),
            own: vec![Bytes::from_static(b"tail\n")],
        };
        let expected = body.to_vec();
        let mut chunks = Chunks::from(body);
        assert_eq!(chunks.size_hint().exact(), Some(expected.len() as u64));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut frames = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut chunks).poll_frame(&mut cx) {
            frames.push(frame.into_data().unwrap());
        }
        assert!(chunks.is_end_stream());
        assert_eq!(frames.concat(), expected);
        // 10,000 small lines in one frame, the big chunk shared as it is, then the tail.
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].as_ptr(), big.as_ptr());
    }
}
