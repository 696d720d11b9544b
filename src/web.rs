//! The exporter's HTTP server: `/metrics`, `/probe`, the landing page, `/config`,
//! `/-/healthy`, `/-/ready` and `/-/reload`; over TLS and behind basic auth when the web
//! config asks for them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::exporter::Exporter;
use crate::exposition::{Body, Format};
use crate::web_config::WebSecurity;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;
/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their request at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct WebOptions {
    pub telemetry_path: String,
    /// TLS, basic auth and extra headers from `--web.config.file`; default: none.
    pub security: WebSecurity,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            telemetry_path: "/metrics".to_owned(),
            security: WebSecurity::default(),
        }
    }
}

/// Serves until `shutdown` resolves. Open connections then finish the request in hand and
/// close (keep-alive connections too), within `SHUTDOWN_GRACE`.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    options: WebOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = options.security.tls.clone();
    let options = Arc::new(options);
    let handler = move |request| {
        let exporter = Arc::clone(&exporter);
        let options = Arc::clone(&options);
        async move { respond(request, &exporter, &options).await }
    };
    serve_with(listener, tls, HEADER_READ_TIMEOUT, handler, shutdown).await
}

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

/// Every request passes basic auth first (when configured), whatever its path; every
/// answer, a refusal included, carries the configured headers.
async fn respond(
    request: Request<Incoming>,
    exporter: &Exporter,
    options: &WebOptions,
) -> Response<Chunks> {
    let security = &options.security;
    let mut response = match &security.auth {
        Some(auth) => match auth.check(request.headers().get(AUTHORIZATION)).await {
            Ok(()) => route(request, exporter, options).await,
            Err(failure) => {
                tracing::debug!(
                    path = request.uri().path(),
                    reason = failure.as_str(),
                    "request refused: basic auth"
                );
                unauthorized()
            }
        },
        None => route(request, exporter, options).await,
    };
    for (name, value) in &security.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn unauthorized() -> Response<Chunks> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(WWW_AUTHENTICATE, "Basic")
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Chunks::one(Bytes::from_static(b"Unauthorized\n")))
        .unwrap_or_else(|_| plain_error())
}

async fn route(
    request: Request<Incoming>,
    exporter: &Exporter,
    options: &WebOptions,
) -> Response<Chunks> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET | &Method::HEAD, p) if p == options.telemetry_path => {
            metrics(&request, exporter)
        }
        (&Method::GET | &Method::HEAD, "/") => {
            html(crate::landing::page(exporter, &options.telemetry_path))
        }
        (&Method::GET | &Method::HEAD, "/probe") => probe(&request, exporter).await,
        (&Method::GET | &Method::HEAD, "/config") => text(
            StatusCode::OK,
            &crate::config_yaml::redacted_yaml(&exporter.config()),
        ),
        (&Method::GET | &Method::HEAD, "/-/healthy") => text(StatusCode::OK, "Healthy\n"),
        (&Method::GET | &Method::HEAD, "/-/ready") => text(StatusCode::OK, "Ready\n"),
        (&Method::POST | &Method::PUT, "/-/reload") => match exporter.reload().await {
            Ok(()) => text(StatusCode::OK, "configuration reloaded\n"),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("failed to reload config: {e}\n"),
            ),
        },
        (_, "/-/reload") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "This endpoint requires a POST request.\n",
        ),
        (_, p)
            if p == options.telemetry_path
                || p == "/"
                || p == "/probe"
                || p == "/config"
                || p.starts_with("/-/") =>
        {
            text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n")
        }
        _ => text(StatusCode::NOT_FOUND, "Not found.\n"),
    }
}

fn metrics(request: &Request<Incoming>, exporter: &Exporter) -> Response<Chunks> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(header("accept"));
    let gzip = accepts_gzip(header("accept-encoding"));
    exposition_response(exporter.exposition(format, gzip), format, gzip)
}

/// Part of the scraper's timeout left for its own work, as blackbox_exporter's
/// --timeout-offset.
const PROBE_TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

async fn probe(request: &Request<Incoming>, exporter: &Exporter) -> Response<Chunks> {
    let query = request.uri().query().unwrap_or("");
    let params = crate::query::QueryParams::parse(query);
    let param = |name: &str| params.get(name);
    let debug = match param("debug") {
        None | Some("false") => false,
        Some("true") => true,
        // The value is not repeated: the answer shows nothing of the request it did not
        // need to.
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "debug takes true or false: /probe?target=<name>&debug=true answers the trace of one poll\n",
            )
        }
    };
    let Some(target) = param("target").filter(|t| !t.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "target parameter is missing: /probe?target=<name of a configured target>\n",
        );
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let deadline = header("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|seconds| {
            let timeout = Duration::from_secs_f64(seconds);
            if timeout > PROBE_TIMEOUT_OFFSET * 2 {
                timeout - PROBE_TIMEOUT_OFFSET
            } else {
                timeout / 2
            }
        });
    if debug {
        return match exporter.probe_trace(target, deadline).await {
            Ok(body) => text(StatusCode::OK, &body),
            Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        };
    }
    let format = Format::negotiate(header("accept"));
    match exporter.probe(target, deadline, format).await {
        Ok(body) => exposition(body, format, header("accept-encoding")),
        Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
    }
}

/// An exposition body in `format`, gzipped when the scraper accepts it.
fn exposition(body: String, format: Format, accept_encoding: Option<&str>) -> Response<Chunks> {
    let gzip = accepts_gzip(accept_encoding);
    let bytes = if gzip {
        crate::gzip::compress(body.as_bytes())
    } else {
        Bytes::from(body)
    };
    exposition_response(Chunks::one(bytes), format, gzip)
}

/// An exposition answer: its content type, and its encoding when gzipped.
fn exposition_response(body: impl Into<Chunks>, format: Format, gzip: bool) -> Response<Chunks> {
    let mut response = Response::builder()
        .header(CONTENT_TYPE, format.content_type())
        .header(VARY, "Accept, Accept-Encoding");
    if gzip {
        response = response.header(CONTENT_ENCODING, "gzip");
    }
    response.body(body.into()).unwrap_or_else(|_| plain_error())
}

fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            name.eq_ignore_ascii_case("gzip") && q > 0.0
        })
    })
}

pub(crate) fn text(status: StatusCode, body: &str) -> Response<Chunks> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Chunks::one(Bytes::from(body.to_owned())))
        .unwrap_or_else(|_| plain_error())
}

fn html(body: String) -> Response<Chunks> {
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Chunks::one(Bytes::from(body)))
        .unwrap_or_else(|_| plain_error())
}

pub(crate) fn plain_error() -> Response<Chunks> {
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
    pub(crate) fn one(bytes: Bytes) -> Self {
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

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
