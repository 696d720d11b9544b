//! The receiver's own listener: Meta's subscription handshake (GET) and its deliveries
//! (POST) on one path, nothing else. It faces the internet (usually behind a TLS reverse
//! proxy) while /metrics may stay private, so it serves no other page and reveals nothing
//! of the exporter.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::auth::{Handshake, SIGNATURE_HEADER};
use super::ingest::{Ingest, RequestResult};
use crate::http_server::{serve_with, text, Chunks};

/// Where the business changes of accepted deliveries go, with the target of their WABA:
/// the exporter, whose targets show them before their next poll.
pub type Deliver = Arc<dyn Fn(Changes) + Send + Sync>;

/// Serves the receiver until `shutdown` resolves; `tls` from the section's
/// `web_config_file`. Path, limits and secrets are read per request, so a reload changes
/// them; the address and TLS are the start's.
pub async fn serve(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    deliver: Deliver,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let header_timeout = ingest.settings().header_timeout;
    let handler = move |request| {
        let ingest = Arc::clone(&ingest);
        let deliver = Arc::clone(&deliver);
        async move { respond(request, &ingest, &deliver).await }
    };
    serve_with(listener, tls, header_timeout, handler, shutdown).await
}

async fn respond(
    request: Request<Incoming>,
    ingest: &Ingest,
    deliver: &Deliver,
) -> Response<Chunks> {
    let settings = ingest.settings();
    if request.uri().path() != settings.path {
        return text(StatusCode::NOT_FOUND, "Not Found\n");
    }
    match *request.method() {
        Method::GET => match ingest.handshake(request.uri().query().unwrap_or_default()) {
            Handshake::Accept(challenge) => text(StatusCode::OK, &challenge),
            Handshake::Refused(refusal) => {
                tracing::debug!(reason = refusal.result(), "webhook handshake refused");
                text(StatusCode::FORBIDDEN, "Forbidden\n")
            }
        },
        Method::POST => {
            let limit = settings.body_size_limit;
            let body_timeout = settings.body_timeout;
            let (result, changes) = receive(request, ingest, limit, body_timeout).await;
            if result == RequestResult::Accepted && !changes.is_empty() {
                deliver(changes);
            }
            answer(result)
        }
        _ => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, POST"));
            response
        }
    }
}

pub type Changes = Vec<(String, super::payload::Change)>;

/// Reads, verifies and counts one delivery. Nothing of the body is ever logged.
async fn receive(
    request: Request<Incoming>,
    ingest: &Ingest,
    limit: u64,
    body_timeout: Duration,
) -> (RequestResult, Changes) {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature = header(SIGNATURE_HEADER);
    let authorization = header(AUTHORIZATION.as_str());
    let refuse = |result| {
        ingest.count_request(result);
        (result, Vec::new())
    };
    if !ingest.has_credential(signature.as_deref(), authorization.as_deref()) {
        return refuse(RequestResult::Unauthenticated);
    }
    let declared = header(CONTENT_LENGTH.as_str()).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return refuse(RequestResult::TooLarge);
    }
    let limited = Limited::new(
        request.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    );
    let body: Bytes = match tokio::time::timeout(body_timeout, limited.collect()).await {
        Err(_) => return refuse(RequestResult::Timeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return refuse(RequestResult::TooLarge)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "webhook body could not be read");
            return refuse(RequestResult::Malformed);
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if let Err(result) = ingest.authenticate(signature.as_deref(), authorization.as_deref(), &body)
    {
        tracing::debug!(result = result.as_str(), "webhook delivery refused");
        return refuse(result);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    match ingest.ingest(&body, now) {
        Ok(changes) => (RequestResult::Accepted, changes),
        Err(e) => {
            tracing::debug!(error = %e, "webhook delivery is not Meta's format");
            (RequestResult::Malformed, Vec::new())
        }
    }
}

fn answer(result: RequestResult) -> Response<Chunks> {
    let (status, body) = match result {
        RequestResult::Accepted => (StatusCode::OK, ""),
        RequestResult::Unauthenticated => (StatusCode::UNAUTHORIZED, "Unauthorized\n"),
        RequestResult::BadSignature => (StatusCode::FORBIDDEN, "Forbidden\n"),
        RequestResult::Malformed => (StatusCode::BAD_REQUEST, "Bad Request\n"),
        RequestResult::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n"),
        RequestResult::Timeout => (StatusCode::REQUEST_TIMEOUT, "Request Timeout\n"),
    };
    let mut response = text(status, body);
    if result == RequestResult::Unauthenticated {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
    }
    if result == RequestResult::Accepted {
        *response.body_mut() = Chunks::one(Bytes::new());
        response.headers_mut().remove(CONTENT_TYPE);
    }
    response
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("webhooks.web_config_file: {0}")]
    WebConfig(#[from] crate::web_config::WebConfigError),
    #[error("webhooks listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A receiver serving in the background.
pub struct Running {
    pub address: std::net::SocketAddr,
    pub tls: bool,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish (as /metrics does) and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the webhook receiver ended with an error"),
            Err(e) => tracing::warn!(error = %e, "the webhook receiver task failed"),
        }
    }
}

/// Starts the receiver on `listener`, with the TLS of the section's `web_config_file`
/// (its basic auth and headers do not apply: Meta sends neither).
pub fn start(
    listener: TcpListener,
    ingest: Arc<Ingest>,
    deliver: Deliver,
) -> Result<Running, ServerError> {
    let tls = match &ingest.settings().web_config_file {
        Some(path) => crate::web_config::WebSecurity::load(path)?.tls,
        None => None,
    };
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running_tls = tls.is_some();
    let task = tokio::spawn(serve(listener, ingest, deliver, tls, async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        address,
        tls: running_tls,
        stop,
        task,
    })
}
