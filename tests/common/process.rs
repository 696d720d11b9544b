//! The real binary as a child process, with its whole log kept, and real `curl`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-exporter");

/// A running exporter, killed by its pid when dropped. Every line it writes to standard
/// error and standard output is kept.
pub struct ExporterProcess {
    child: Child,
    /// host:port it listens on.
    pub address: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl ExporterProcess {
    /// Starts the binary with `args` (plus `--web.listen-address=127.0.0.1:0`) and waits for
    /// its "listening" line, in logfmt or JSON.
    pub fn start<I, S>(args: I) -> ExporterProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(BIN)
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel::<String>();
        let err_pipe = child.stderr.take().expect("stderr");
        let out_pipe = child.stdout.take().expect("stdout");
        {
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("whatsapp-exporter listening") {
                        if let Some(address) = logged_address(&line) {
                            let _ = found.send(address);
                        }
                    }
                    stderr.lock().unwrap().push(line);
                }
            });
        }
        {
            let stdout = Arc::clone(&stdout);
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines() {
                    let Ok(line) = line else { break };
                    stdout.lock().unwrap().push(line);
                }
            });
        }
        let mut process = ExporterProcess {
            child,
            address: String::new(),
            stderr,
            stdout,
        };
        match address.recv_timeout(Duration::from_secs(15)) {
            Ok(address) => process.address = address,
            Err(_) => panic!(
                "the exporter never logged its address; its log:\n{}",
                process.log().join("\n")
            ),
        }
        process
    }

    /// Every line written so far, standard error then standard output.
    pub fn log(&self) -> Vec<String> {
        let mut lines = self.stderr.lock().unwrap().clone();
        lines.extend(self.stdout.lock().unwrap().iter().cloned());
        lines
    }

    /// Waits (bounded) until a log line contains `text`; returns the line.
    pub fn wait_for_log(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(text)) {
                return line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no log line with {text:?}; the log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// host:port of the webhook receiver, from its "webhook receiver listening" line
    /// (waited for, bounded): it comes after the exporter's own.
    pub fn webhook_address(&self) -> String {
        let line = self.wait_for_log("webhook receiver listening");
        logged_address(&line).unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Stops it with SIGTERM and waits (bounded) for it to exit, so its last lines are in.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Give the reader threads a moment to drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `address` field of the "listening" line, in logfmt or JSON.
fn logged_address(line: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["address"].as_str().map(str::to_owned);
    }
    line.split(' ')
        .find_map(|field| field.strip_prefix("address="))
        .map(|a| a.trim_matches('"').to_owned())
}

/// One answer as curl saw it.
#[derive(Debug)]
pub struct CurlAnswer {
    /// 0 when no HTTP answer came.
    pub status: u16,
    /// The response head (status line and headers), as received.
    pub head: String,
    pub body: Vec<u8>,
    /// curl's own messages (with -v: the TLS handshake).
    pub stderr: String,
    pub exit_code: Option<i32>,
}

impl CurlAnswer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of a response header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Runs `curl -sS -i --max-time 10 <args>`: real curl, as an operator would.
pub fn curl<I, S>(args: I) -> CurlAnswer
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is installed (tests/run.sh installs Debian's curl)");
    let mut out = Vec::new();
    let mut err = String::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (
            String::from_utf8_lossy(&out[..at]).into_owned(),
            out[at + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(&out).into_owned(), Vec::new()),
    };
    let code = head
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    CurlAnswer {
        status: code,
        head,
        body,
        stderr: err,
        exit_code: status.code(),
    }
}
