//! The container image's health probe: the runtime image (distroless) has no shell, curl
//! or wget, so the Dockerfile builds this one file with `rustc` (standard library only)
//! and its HEALTHCHECK runs it.
//!
//! Usage: `healthcheck [--expect STATUS] [URL]`
//!
//! Sends `GET URL` (plain `http://HOST:PORT/PATH`, default
//! `http://127.0.0.1:10109/-/healthy`) and exits 0 when the answer's status is STATUS
//! (default 200), else prints why on standard error and exits 1. Connecting, writing and
//! reading are each bounded by 3 seconds.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_URL: &str = "http://127.0.0.1:10109/-/healthy";
const TIMEOUT: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    match probe(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(args: Vec<String>) -> Result<(), String> {
    let mut expect = 200u16;
    let mut url = DEFAULT_URL.to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--expect" {
            let value = args.next().ok_or("--expect needs a status code")?;
            expect = value
                .parse()
                .map_err(|_| format!("--expect {value:?}: not a status code"))?;
        } else if arg.starts_with('-') {
            return Err(format!(
                "unknown flag {arg:?}; usage: healthcheck [--expect STATUS] [URL]"
            ));
        } else {
            url = arg;
        }
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority:?}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("{address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: whatsapp-exporter-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {address}: {e}"))?;
    // The status line is all that is needed: "HTTP/1.1 200 OK".
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("read from {address}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("GET {url}: not an HTTP answer: {line:?}"))?;
    if status == expect {
        Ok(())
    } else {
        Err(format!("GET {url}: {line} (expected {expect})"))
    }
}
