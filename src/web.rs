//! The exporter's HTTP server: `/metrics`, `/probe`, the landing page, `/config`,
//! `/-/healthy`, `/-/ready` and `/-/reload`; over TLS and behind basic auth when the web
//! config asks for them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::exporter::Exporter;
use crate::exposition::Format;
pub use crate::http_server::Chunks;
use crate::http_server::{plain_error, serve_with, text};
use crate::web_config::WebSecurity;

/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

fn html(body: String) -> Response<Chunks> {
    Response::builder()
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Chunks::one(Bytes::from(body)))
        .unwrap_or_else(|_| plain_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
