use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::*;
use crate::json::Problems;
use crate::webhooks::auth::verify_signature;
use crate::webhooks::payload::{parse_delivery, Event, StatusKind};

const NOW: u64 = 1_750_030_073;

fn options(url: &str) -> SenderOptions {
    SenderOptions::demo(url.parse().unwrap(), Secret::new("demo-app-secret"))
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// Every status of many bodies, each with the WABA and phone number id of its body.
fn statuses(generator: &mut Generator, bodies: usize) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for _ in 0..bodies {
        let body = parse(&generator.status_body(NOW));
        let entry = &body["entry"][0];
        let value = &entry["changes"][0]["value"];
        for s in value["statuses"].as_array().unwrap() {
            out.push((
                entry["id"].as_str().unwrap().to_string(),
                value["metadata"]["phone_number_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                s.clone(),
            ));
        }
    }
    out
}

#[test]
fn demo_names_the_simulated_wabas_numbers_and_templates() {
    let wabas = SimulatedWaba::demo();
    assert_eq!(wabas.len(), 2);
    assert_eq!(wabas[0].waba_id, "102290129340398");
    assert_eq!(wabas[1].waba_id, "102290129340401");
    assert_eq!(
        wabas[1].numbers,
        vec![SimulatedNumber {
            phone_number_id: "114400512345601".into(),
            display_phone_number: "15550199001".into(),
        }]
    );
    let ids: Vec<&str> = wabas[0]
        .numbers
        .iter()
        .map(|n| n.phone_number_id.as_str())
        .collect();
    assert_eq!(ids, meta::PHONE_NUMBER_IDS);
    assert_eq!(wabas[0].numbers[0].display_phone_number, "15550123401");
    assert_eq!(wabas[0].templates.len(), meta::TEMPLATE_IDS.len());
    assert_eq!(
        wabas[0].templates[2],
        SimulatedTemplate {
            id: "983456120983471".into(),
            name: "welcome_offer".into(),
            language: "pt_BR".into(),
            category: "MARKETING".into(),
        }
    );
}

#[test]
fn a_sent_status_has_the_shape_of_metas_example() {
    let mut generator = Generator::new(&SenderOptions {
        failed_share: 0.0,
        ..options("http://127.0.0.1:9/")
    });
    let all = statuses(&mut generator, 50);
    let (_, _, sent) = all
        .iter()
        .find(|(_, _, s)| s["status"] == "sent" && s["pricing"]["category"] == "marketing")
        .unwrap();
    let keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let example = parse(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/webhooks/messages-status-sent-marketing.json"
        ))
        .unwrap(),
    );
    let published = &example["entry"][0]["changes"][0]["value"]["statuses"][0];
    let mut published_keys: Vec<&str> = published
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    published_keys.sort_unstable();
    assert_eq!(keys, published_keys);
    assert_eq!(
        sent["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"})
    );
    assert_eq!(sent["conversation"]["origin"], json!({"type": "marketing"}));
    assert_eq!(sent["conversation"]["id"].as_str().unwrap().len(), 32);
    assert_eq!(
        sent["conversation"]["expiration_timestamp"],
        json!("1750116473")
    );
    assert_eq!(sent["timestamp"], json!("1750030073"));
    let recipient = sent["recipient_id"].as_str().unwrap();
    assert!(
        recipient.starts_with("1555010") && recipient.len() == 11,
        "{recipient}"
    );
    // The wamid decodes to the record Meta's examples decode to, with this recipient.
    let wamid = sent["id"].as_str().unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(wamid.strip_prefix("wamid.").unwrap())
        .unwrap();
    assert_eq!(&raw[..3], &[0x1c, 0x18, 11]);
    assert_eq!(&raw[3..14], recipient.as_bytes());
    assert_eq!(raw.len(), 3 + 11 + 6 + 20 + 1);
}

#[test]
fn a_body_has_the_envelope_of_metas_example() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let body = parse(&generator.status_body(NOW));
    assert_eq!(body["object"], "whatsapp_business_account");
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let change = &entries[0]["changes"][0];
    assert_eq!(change["field"], "messages");
    assert_eq!(change["value"]["messaging_product"], "whatsapp");
    let n = change["value"]["statuses"].as_array().unwrap().len();
    assert!((1..=5).contains(&n), "{n} statuses");
    // A messages change has no entry `time`, as in Meta's example.
    assert!(entries[0].get("time").is_none());
}

#[test]
fn the_same_seed_gives_the_same_bodies() {
    let mut a = Generator::new(&options("http://127.0.0.1:9/"));
    let mut b = Generator::new(&options("http://127.0.0.1:9/"));
    for _ in 0..100 {
        assert_eq!(a.status_body(NOW), b.status_body(NOW));
    }
    let mut c = Generator::new(&SenderOptions {
        seed: 7,
        ..options("http://127.0.0.1:9/")
    });
    let mut d = Generator::new(&options("http://127.0.0.1:9/"));
    assert_ne!(c.status_body(NOW), d.status_body(NOW));
}

#[test]
fn each_message_goes_sent_delivered_then_maybe_read_on_one_number() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let all = statuses(&mut generator, 5_000);
    let mut seen: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for (_, number, s) in &all {
        let entry = seen
            .entry(s["id"].as_str().unwrap().to_string())
            .or_insert_with(|| (number.clone(), Vec::new()));
        assert_eq!(&entry.0, number, "a message changed numbers");
        entry.1.push(s["status"].as_str().unwrap().to_string());
    }
    let mut read = 0;
    let mut delivered_only = 0;
    for (_, (_, history)) in seen {
        let h: Vec<&str> = history.iter().map(String::as_str).collect();
        match h.as_slice() {
            ["failed"] | ["sent"] | ["sent", "delivered"] => {}
            ["sent", "delivered", "read"] => read += 1,
            other => panic!("unexpected life cycle {other:?}"),
        }
        if h == ["sent", "delivered"] {
            delivered_only += 1;
        }
    }
    assert!(
        read > 0 && delivered_only > 0,
        "{read} read, {delivered_only} not"
    );
    // Only the first status carries pricing.
    for (_, _, s) in &all {
        assert_eq!(s["status"] == "sent", s.get("pricing").is_some());
    }
}

#[test]
fn statuses_name_every_demo_number_including_the_client_wabas() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let all = statuses(&mut generator, 400);
    let pairs: HashSet<(String, String)> = all.into_iter().map(|(w, n, _)| (w, n)).collect();
    let mut expected: HashSet<(String, String)> = meta::PHONE_NUMBER_IDS
        .iter()
        .map(|n| (meta::WABA_ID.to_string(), n.to_string()))
        .collect();
    expected.insert((
        meta::CLIENT_WABA_ID.to_string(),
        meta::CLIENT_PHONE_NUMBER_IDS[0].to_string(),
    ));
    assert_eq!(pairs, expected);
}

#[test]
fn failures_come_at_the_configured_share_with_metas_errors() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let all = statuses(&mut generator, 20_000);
    let started = all
        .iter()
        .filter(|(_, _, s)| s["status"] == "sent" || s["status"] == "failed")
        .count();
    let failed: Vec<&Value> = all
        .iter()
        .map(|(_, _, s)| s)
        .filter(|s| s["status"] == "failed")
        .collect();
    let share = failed.len() as f64 / started as f64;
    // Fixed seed: the share is the same at every run; 0.03 within sampling error.
    assert!(
        (0.025..0.035).contains(&share),
        "{} of {started}",
        failed.len()
    );
    let mut codes = HashSet::new();
    for s in &failed {
        let error = &s["errors"][0];
        let code = error["code"].as_i64().unwrap();
        let (_, title, details) = FAILURES.iter().find(|f| f.0 == code).unwrap();
        assert_eq!(error["title"], *title);
        assert_eq!(error["message"], *title);
        assert_eq!(error["error_data"]["details"], *details);
        assert_eq!(error["href"], ERROR_HREF);
        assert!(s.get("pricing").is_none());
        codes.insert(code);
    }
    assert_eq!(codes.len(), FAILURES.len());
    // 131049 exactly as Meta's failed-status example.
    let example = parse(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/webhooks/messages-status-failed-131049.json"
        ))
        .unwrap(),
    );
    let published = &example["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0];
    let ours = failed
        .iter()
        .find(|s| s["errors"][0]["code"] == 131_049)
        .unwrap();
    assert_eq!(&ours["errors"][0], published);
}

#[test]
fn no_failures_at_share_zero_and_all_at_one() {
    for (share, want_failed) in [(0.0, false), (1.0, true)] {
        let mut generator = Generator::new(&SenderOptions {
            failed_share: share,
            ..options("http://127.0.0.1:9/")
        });
        let all = statuses(&mut generator, 500);
        assert!(all
            .iter()
            .all(|(_, _, s)| (s["status"] == "failed") == want_failed));
    }
}

#[test]
fn categories_and_billing() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let all = statuses(&mut generator, 2_000);
    let mut categories = HashSet::new();
    for (_, _, s) in all.iter().filter(|(_, _, s)| s["status"] == "sent") {
        let category = s["pricing"]["category"].as_str().unwrap();
        categories.insert(category.to_string());
        assert_eq!(s["pricing"]["billable"], json!(category != "service"));
        assert_eq!(s["pricing"]["pricing_model"], "PMP");
    }
    let want: HashSet<String> = ["marketing", "utility", "authentication", "service"]
        .map(String::from)
        .into();
    assert_eq!(categories, want);
}

#[test]
fn events_rotate_through_every_field_naming_real_demo_entities() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let mut fields_events = Vec::new();
    for i in 0..18 {
        let body = parse(&generator.event_body(NOW + i).unwrap());
        assert_eq!(body["object"], "whatsapp_business_account");
        let entry = &body["entry"][0];
        assert_eq!(entry["time"], json!(NOW + i));
        let waba = entry["id"].as_str().unwrap();
        let change = &entry["changes"][0];
        let field = change["field"].as_str().unwrap();
        let value = &change["value"];
        if let Some(id) = value.get("message_template_id") {
            // A real template of the simulated WABA, named as the Graph API names it.
            let id = id.as_u64().unwrap().to_string();
            let i = meta::TEMPLATE_IDS.iter().position(|t| *t == id).unwrap();
            assert_eq!(waba, meta::WABA_ID);
            assert_eq!(value["message_template_name"], meta::TEMPLATE_NAMES[i]);
            assert_eq!(
                value["message_template_language"],
                meta::TEMPLATE_LANGUAGES[i]
            );
        }
        if let Some(display) = value.get("display_phone_number") {
            let demo = SimulatedWaba::demo();
            let w = demo.iter().find(|w| w.waba_id == waba).unwrap();
            assert!(w.numbers.iter().any(|n| n.display_phone_number == *display));
        }
        let event = value["event"]
            .as_str()
            .or(value["new_quality_score"].as_str())
            .or(value["alert_info"]["alert_type"].as_str())
            .unwrap();
        fields_events.push(format!("{field} {event}"));
    }
    assert_eq!(
        fields_events[..9],
        [
            "message_template_status_update PAUSED",
            "phone_number_quality_update FLAGGED",
            "message_template_quality_update YELLOW",
            "account_alerts INCREASED_CAPABILITIES_ELIGIBILITY_DEFERRED",
            "message_template_status_update REINSTATED",
            "phone_number_quality_update UNFLAGGED",
            "message_template_quality_update GREEN",
            "phone_number_quality_update UPGRADE",
            "account_update AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
        ]
    );
    assert_eq!(fields_events[..9], fields_events[9..]);
}

#[test]
fn the_paused_template_is_the_marketing_one_and_the_upgrade_is_the_client_number() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let bodies: Vec<Value> = (0..9)
        .map(|_| parse(&generator.event_body(NOW).unwrap()))
        .collect();
    let value = |i: usize| bodies[i]["entry"][0]["changes"][0]["value"].clone();
    assert_eq!(
        value(0),
        json!({
            "event": "PAUSED",
            "message_template_id": 983_456_120_983_471_u64,
            "message_template_name": "welcome_offer",
            "message_template_language": "pt_BR",
            "reason": "NONE",
            "message_template_category": "MARKETING",
            "other_info": {
                "title": "FIRST_PAUSE",
                "description": "Your WhatsApp message template has been paused because of low quality."
            }
        })
    );
    assert_eq!(value(2)["message_template_name"], "order_confirmation");
    assert_eq!(
        value(1),
        json!({"display_phone_number": "15550123402", "event": "FLAGGED", "current_limit": "TIER_10K"})
    );
    assert_eq!(bodies[7]["entry"][0]["id"], meta::CLIENT_WABA_ID);
    assert_eq!(
        value(7),
        json!({"display_phone_number": "15550199001", "event": "UPGRADE", "old_limit": "TIER_10K", "current_limit": "TIER_100K"})
    );
    assert_eq!(value(3)["entity_id"], meta::BUSINESS_ID);
}

#[test]
fn without_wabas_nothing_is_scripted() {
    let mut generator = Generator::new(&SenderOptions {
        wabas: Vec::new(),
        ..options("http://127.0.0.1:9/")
    });
    assert!(!generator.can_send());
    assert_eq!(generator.event_body(NOW), None);
    let mut problems = Problems::default();
    let delivery = parse_delivery(&generator.status_body(NOW), &mut problems).unwrap();
    assert!(delivery.changes.is_empty() && problems.is_empty());
}

#[test]
fn the_receivers_parser_reads_every_body_without_problems() {
    let mut generator = Generator::new(&options("http://127.0.0.1:9/"));
    let mut kinds = HashSet::new();
    for i in 0..300 {
        let body = generator.status_body(NOW);
        let mut problems = Problems::default();
        let delivery = parse_delivery(&body, &mut problems).unwrap();
        assert!(problems.is_empty(), "{:?}", problems.notes());
        let Event::Messages(m) = &delivery.changes[0].event else {
            panic!("not messages");
        };
        for s in &m.statuses {
            kinds.insert(s.status.as_str().to_owned());
            assert_eq!(s.timestamp, Some(NOW as f64));
        }
        if i < 20 {
            let body = generator.event_body(NOW).unwrap();
            let mut problems = Problems::default();
            let delivery = parse_delivery(&body, &mut problems).unwrap();
            assert!(problems.is_empty(), "{:?}", problems.notes());
            assert!(delivery.changes[0].event.business_event().is_some());
        }
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(kinds.contains(StatusKind::Failed.as_str()), "{kinds:?}");
}

#[test]
fn signature_matches_a_known_hmac_vector() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"what do ya want for nothing?", &Secret::new("Jefe")),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn signature_verifies_with_ring_and_the_receivers_check() {
    let secret = Secret::new("demo-app-secret");
    let body = Generator::new(&options("http://127.0.0.1:9/")).status_body(NOW);
    let header = signature(&body, &secret);
    let hex = header.strip_prefix("sha256=").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let tag: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"demo-app-secret");
    assert!(hmac::verify(&key, &body, &tag).is_ok());
    assert_eq!(
        verify_signature(std::slice::from_ref(&secret), Some(&header), &body),
        Ok(())
    );
    assert!(verify_signature(&[Secret::new("other")], Some(&header), &body).is_err());
}

#[test]
fn period_and_event_spacing() {
    let demo = options("http://127.0.0.1:9/");
    assert_eq!(demo.period(), Duration::from_millis(750));
    assert_eq!(demo.ticks_per_event(), Some(60));
    let odd = SenderOptions {
        statuses_per_second: f64::NAN,
        event_every: Some(Duration::ZERO),
        ..demo
    };
    assert_eq!(odd.period(), Duration::from_secs(3));
    assert_eq!(odd.ticks_per_event(), Some(1));
    let quiet = SenderOptions {
        event_every: None,
        ..odd
    };
    assert_eq!(quiet.ticks_per_event(), None);
}

/// One request the test receiver got.
struct Received {
    content_type: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

/// A receiver on 127.0.0.1:0 recording every request; answers `status`.
async fn receiver(status: u16) -> (std::net::SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let record = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .map(|v| v.to_str().unwrap().to_string())
                        };
                        let content_type = header("content-type");
                        let signature = header("x-hub-signature-256");
                        let body = req.into_body().collect().await?.to_bytes().to_vec();
                        record.lock().unwrap().push(Received {
                            content_type,
                            signature,
                            body,
                        });
                        let mut resp =
                            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, got)
}

#[tokio::test]
async fn run_posts_signed_bodies_the_receiver_reads() {
    let (addr, got) = receiver(200).await;
    let secret = Secret::new("demo-app-secret");
    let opts = SenderOptions {
        statuses_per_second: 3_000.0,
        // The first status body, and every 4th after it, is followed by an event.
        event_every: Some(Duration::from_millis(4)),
        limit: Some(40),
        ..SenderOptions::demo(
            format!("http://{addr}/webhooks/whatsapp").parse().unwrap(),
            secret.clone(),
        )
    };
    let stats = Arc::new(SenderStats::default());
    run(opts, reqwest::Client::new(), stats.clone()).await;
    assert_eq!(stats.sent(), 40);
    assert_eq!(stats.failed(), 0);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 40);
    let mut fields = HashSet::new();
    for r in got.iter() {
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            verify_signature(
                std::slice::from_ref(&secret),
                r.signature.as_deref(),
                &r.body
            ),
            Ok(())
        );
        let mut problems = Problems::default();
        let delivery = parse_delivery(&r.body, &mut problems).unwrap();
        assert!(problems.is_empty(), "{:?}", problems.notes());
        assert_eq!(
            delivery.object.as_deref(),
            Some("whatsapp_business_account")
        );
        fields.insert(delivery.changes[0].field.clone());
    }
    // 32 status bodies and 8 events: the rotation's first eight.
    assert_eq!(
        fields,
        [
            "messages",
            "message_template_status_update",
            "phone_number_quality_update",
            "message_template_quality_update",
            "account_alerts",
        ]
        .map(String::from)
        .into()
    );
}

#[tokio::test]
async fn refused_and_unreachable_posts_are_counted_as_failed() {
    let (addr, got) = receiver(403).await;
    let opts = SenderOptions {
        statuses_per_second: 3_000.0,
        limit: Some(5),
        ..options(&format!("http://{addr}/webhooks/whatsapp"))
    };
    let stats = Arc::new(SenderStats::default());
    run(opts, reqwest::Client::new(), stats.clone()).await;
    assert_eq!((stats.sent(), stats.failed()), (0, 5));
    assert_eq!(got.lock().unwrap().len(), 5);

    // A port nothing listens on: bound, then closed.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let opts = SenderOptions {
        statuses_per_second: 3_000.0,
        limit: Some(3),
        ..options(&format!("http://{addr}/webhooks/whatsapp"))
    };
    let stats = Arc::new(SenderStats::default());
    run(opts, reqwest::Client::new(), stats.clone()).await;
    assert_eq!((stats.sent(), stats.failed()), (0, 3));
}

#[tokio::test]
async fn template_events_are_applied_to_the_simulated_graph_state_first() {
    let (addr, got) = receiver(200).await;
    let simulator = super::super::Simulator::new(super::super::SimulatorOptions::default());
    let status_of = |id: &str| {
        let state = simulator.lock();
        let template = state.cloud.templates.iter().find(|t| t.id == id).cloned();
        template.map(|t| (t.status, t.quality))
    };
    let opts = SenderOptions {
        statuses_per_second: 3_000.0,
        // Every status body is followed by an event: paused, flagged, quality down.
        event_every: Some(Duration::ZERO),
        limit: Some(6),
        simulator: Some(simulator.clone()),
        ..options(&format!("http://{addr}/webhooks/whatsapp"))
    };
    run(
        opts,
        reqwest::Client::new(),
        Arc::new(SenderStats::default()),
    )
    .await;
    let got = got.lock().unwrap();
    let template_of = |i: usize| {
        let value = &parse(&got[i].body)["entry"][0]["changes"][0]["value"];
        value["message_template_id"].to_string()
    };
    // Bodies: status, PAUSED, status, FLAGGED, status, template quality GREEN -> YELLOW.
    let paused = template_of(1);
    let (status, _) = status_of(&paused).unwrap();
    assert_eq!(status, "PAUSED");
    let degraded = template_of(5);
    assert_ne!(degraded, paused);
    let (_, quality) = status_of(&degraded).unwrap();
    assert_eq!(quality, "YELLOW");
}
