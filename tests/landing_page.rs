//! The landing page against the simulator: a BLOCKED WABA fails instead of reading up, a
//! disconnected On-Premises node shows, healthy targets read ok, and hostile values stay
//! text; then the same page as a real browser (headless Chromium) parsed it.

mod common;

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{global, onprem_target, Auth};
use whatsapp_exporter::simulator::meta::{PHONE_NUMBER_IDS, WABA_ID};
use whatsapp_exporter::simulator::{Cluster, SimulatorOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium renders this page in about a second; past this it is stuck and killed.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(90);
/// A phone number status as a hostile upstream could send it.
const HOSTILE: &str = "<script>alert(\"x\")</script>";

/// The `tbody` of one target, from its opening tag to its end.
fn target_block<'a>(page: &'a str, target: &str) -> &'a str {
    let open = format!("<tbody data-target=\"{target}\">");
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in\n{page}"));
    let end = page[start..]
        .find("</tbody>")
        .unwrap_or_else(|| panic!("{open} not closed in\n{page}"));
    &page[start..start + end]
}

fn verdict_of<'a>(page: &'a str, target: &str) -> &'a str {
    let block = target_block(page, target);
    let at = block
        .find("data-verdict=\"")
        .unwrap_or_else(|| panic!("no verdict for {target}: {block}"));
    let rest = &block[at + "data-verdict=\"".len()..];
    &rest[..rest.find('"').unwrap_or(0)]
}

/// What the raw page and the browser's DOM must both show.
fn assert_summary(page: &str, what: &str) {
    let verdicts = [
        ("blocked", "fail"),
        ("cloud", "fail"),
        ("single", "fail"),
        ("unreachable", "fail"),
        ("ha", "ok"),
        ("healthy", "ok"),
        ("kapso", "ok"),
    ];
    for (target, verdict) in verdicts {
        assert_eq!(
            verdict_of(page, target),
            verdict,
            "{what}: {target}\n{}",
            target_block(page, target)
        );
    }
    // The BLOCKED WABA: its poll succeeded (the endpoint row says up), the target fails.
    let blocked = target_block(page, "blocked");
    assert!(
        blocked.contains("data-can-send=\"BLOCKED\">BLOCKED</td>"),
        "{what}: {blocked}"
    );
    assert!(
        blocked.contains("can_send_message BLOCKED"),
        "{what}: {blocked}"
    );
    assert!(blocked.contains(">up</td>"), "{what}: {blocked}");
    assert!(
        !blocked.contains("data-verdict=\"ok\""),
        "{what}: {blocked}"
    );
    // The disconnected single instance.
    let single = target_block(page, "single");
    assert!(
        single.contains("data-node=\"\" data-state=\"disconnected\">disconnected</div>"),
        "{what}: {single}"
    );
    assert!(single.contains("gateway disconnected"), "{what}: {single}");
    // High Availability: the masters are disconnected by design, the coreapp connected.
    let ha = target_block(page, "ha");
    assert_eq!(
        ha.matches("data-state=\"disconnected\"").count(),
        2,
        "{what}: {ha}"
    );
    assert_eq!(
        ha.matches("data-state=\"connected\"").count(),
        1,
        "{what}: {ha}"
    );
    assert_eq!(
        ha.matches("<tr").count(),
        2,
        "{what}: health and support: {ha}"
    );
    let healthy = target_block(page, "healthy");
    assert!(
        healthy.contains("data-can-send=\"AVAILABLE\">AVAILABLE</td>"),
        "{what}: {healthy}"
    );
    let kapso = target_block(page, "kapso");
    assert!(
        kapso.contains("data-config-health=\"healthy\">healthy</td>"),
        "{what}: {kapso}"
    );
    assert!(
        kapso.contains(
            "data-quality=\"GREEN\" data-count=\"1\" data-of=\"1\">GREEN (1 of 1 number)</td>"
        ),
        "{what}: {kapso}"
    );
    let cloud = target_block(page, "cloud");
    assert!(
        cloud.contains(&format!(
            "data-quality=\"RED\" data-count=\"1\" data-of=\"{n}\">RED (1 of {n} numbers)</td>",
            n = PHONE_NUMBER_IDS.len()
        )),
        "{what}: {cloud}"
    );
    let unreachable = target_block(page, "unreachable");
    assert!(unreachable.contains(">down</td>"), "{what}: {unreachable}");
    assert!(unreachable.contains("poll failed"), "{what}: {unreachable}");
    // Hostile text never became markup.
    assert!(!page.contains("<script"), "{what}: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_shows_each_targets_state() {
    // A second simulator keeps a healthy Meta account while the first one's WABA is BLOCKED.
    let healthy = common::simulator(SimulatorOptions::default()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = common::start(SimulatorOptions::default(), |s| {
        let o = s.simulator().options();
        let h = healthy.simulator().options();
        let mut text = global("300ms");
        text.push_str(&onprem_target(
            "single",
            &s.base_url(Cluster::Single),
            o,
            Auth::ApiKey,
        ));
        text.push_str(&onprem_target("ha", &s.base_url(Cluster::Ha), o, Auth::Login));
        text.push_str(&onprem_target(
            "unreachable",
            &format!("http://{closed}"),
            o,
            Auth::ApiKey,
        ));
        text.push_str(&format!(
            "  - name: blocked\n    type: dialog360\n    base_url: {}\n    api_key: {}\n\
             \x20 - name: cloud\n    type: cloud_api\n    base_url: {}\n    access_token: {}\n    waba_id: \"{WABA_ID}\"\n    phone_number_ids: [{}]\n\
             \x20 - name: healthy\n    type: dialog360\n    base_url: {}\n    api_key: {}\n\
             \x20 - name: kapso\n    type: kapso\n    base_url: {}\n    api_key: {}\n    config_id: {}\n",
            s.dialog360_base_url(),
            o.dialog360_api_keys[0],
            s.cloud_api_base_url(),
            o.cloud_api_token,
            PHONE_NUMBER_IDS.join(", "),
            healthy.dialog360_base_url(),
            h.dialog360_api_keys[0],
            healthy.kapso_base_url(),
            h.kapso_api_key,
            h.kapso_config_ids[0],
        ));
        text
    })
    .await;
    let sim = run.simulator.simulator().clone();
    sim.set_entity_status("WABA", WABA_ID, "BLOCKED");
    sim.set_gateway_status(Cluster::Single, None, "disconnected");
    sim.set_quality(PHONE_NUMBER_IDS[0], "RED");
    sim.set_phone_status(PHONE_NUMBER_IDS[1], HOSTILE);
    run.wait_for_lines(&[
        "whatsapp_messaging_health_status{target=\"blocked\",status=\"BLOCKED\"} 1",
        "whatsapp_messaging_health_status{target=\"cloud\",status=\"BLOCKED\"} 1",
        "whatsapp_gateway_status{target=\"single\",node=\"\",status=\"disconnected\"} 1",
        &format!(
            "whatsapp_phone_quality_rating{{target=\"cloud\",phone_number_id=\"{}\",rating=\"RED\"}} 1",
            PHONE_NUMBER_IDS[0]
        ),
        &format!(
            "whatsapp_phone_number_status{{target=\"cloud\",phone_number_id=\"{}\",status=\"<script>alert(\\\"x\\\")</script>\"}} 1",
            PHONE_NUMBER_IDS[1]
        ),
        "whatsapp_up{target=\"blocked\"} 1",
        "whatsapp_up{target=\"ha\"} 1",
        "whatsapp_up{target=\"healthy\"} 1",
        "whatsapp_up{target=\"kapso\"} 1",
        "whatsapp_up{target=\"unreachable\"} 0",
    ])
    .await;

    let response = run.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert_summary(&page, "the page as served");
    // The hostile status is the worst number status (a value nobody documented ranks
    // below CONNECTED), escaped in the attribute as in the text.
    let cloud = target_block(&page, "cloud");
    assert!(
        cloud.contains(
            "data-number-status=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\" data-count=\"1\""
        ),
        "{cloud}"
    );

    // The same page through a browser's parser: the table and its cells where the markup
    // puts them, and the hostile value as text.
    let url = format!("{}/", run.url);
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url))
        .await
        .unwrap();
    assert_summary(&dom, "the DOM Chromium built");
    assert_eq!(
        dom.matches("<tbody data-target=").count(),
        7,
        "one tbody per target: {dom}"
    );
    assert_eq!(
        dom.matches("<tr").count(),
        page.matches("<tr").count(),
        "every row where the page put it: {dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; (1 of 3 numbers)"),
        "{dom}"
    );
    run.stop().await;
    healthy.shutdown().await;
}

/// The DOM headless Chromium builds from `url` (`--dump-dom`), within [`CHROMIUM_LIMIT`].
/// Chromium runs in a process group of its own, killed whole when it overruns, with a
/// fresh profile and home in a temporary directory, and reaches nothing but 127.0.0.1.
fn chromium_dom(url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let stdout = std::fs::File::create(dir.path().join("dom.html")).unwrap();
    let stderr = std::fs::File::create(dir.path().join("chromium.log")).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(url)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .expect("chromium is installed (tests/run.sh installs Debian's chromium)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > CHROMIUM_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The group is the one Chromium was started in: its helpers go with it, whether it
    // finished or overran.
    kill_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("chromium.log")).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("chromium did not finish within {CHROMIUM_LIMIT:?}; its log:\n{log}")
    });
    assert!(status.success(), "chromium: {status}; its log:\n{log}");
    let dom = std::fs::read_to_string(dir.path().join("dom.html")).unwrap();
    assert!(
        dom.contains("<h1>WhatsApp Exporter</h1>"),
        "chromium dumped no page; its log:\n{log}\n{dom}"
    );
    dom
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
