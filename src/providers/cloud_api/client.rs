//! Polls a Cloud API target through Meta's Graph API: the health_status and fields of each
//! phone number and of the WABA every interval, and (with `discover: true`) the WABA's
//! phone numbers and message templates on the slower discovery interval.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::Url;

use super::config::CloudApiTarget;
use super::payload::{self, HealthStatus, Page, PayloadError, PhoneNumber, Template};
use crate::json::Problems;
use crate::exposition::Samples;
use crate::providers::TargetClient;
use crate::upstream::{self, PollError, Polled, Reason, Upstream};

pub const HEALTH: &str = "health";
pub const DISCOVERY: &str = "discovery";

/// Listing stops after this many pages: a paging loop upstream cannot hold a poll forever.
const MAX_PAGES: usize = 100;
/// A slowed-down target waits at most this many intervals between polls.
const MAX_SLOWDOWN: u32 = 8;

#[derive(Debug)]
pub struct CloudApiClient {
    http: reqwest::Client,
    base: upstream::BaseUrl,
    config: CloudApiTarget,
    body_limit: u64,
    discovered: Vec<String>,
    last_discovery: Option<Instant>,
    /// Latest usage per (business object, usage type, measure), from the response headers,
    /// with the poll cycle that saw it: a figure no answer repeated for a whole cycle goes.
    usage: BTreeMap<(String, String, String), (f64, u64)>,
    cycle: u64,
    slowdown: u32,
}

impl TargetClient for CloudApiClient {
    fn endpoints(&self) -> Vec<&'static str> {
        self.endpoint_names().to_vec()
    }

    fn stale_after(&self, index: usize, default: Duration) -> Duration {
        if self.endpoint_names().get(index) == Some(&DISCOVERY) {
            crate::providers::discovery_stale_after(default, self.config.discovery_interval)
        } else {
            default
        }
    }

    /// Doubles the wait between polls while any usage is at or above the threshold, up to
    /// `MAX_SLOWDOWN` intervals; back to one interval once all usage is below it.
    fn interval_factor(&mut self) -> u32 {
        let peak = self
            .usage
            .values()
            .map(|(ratio, _)| *ratio)
            .fold(0.0, f64::max);
        let previous = self.slowdown;
        self.slowdown = if peak >= self.config.usage_threshold {
            (self.slowdown * 2).clamp(2, MAX_SLOWDOWN)
        } else {
            1
        };
        if self.slowdown != previous {
            tracing::info!(
                usage = peak,
                threshold = self.config.usage_threshold,
                intervals = self.slowdown,
                "Graph API usage: polling every {} interval(s)",
                self.slowdown
            );
        }
        self.slowdown
    }

    /// A new poll cycle: usage figures the last cycle did not see are dropped.
    fn begin_cycle(&mut self) {
        let last = self.cycle;
        self.usage.retain(|_, (_, seen)| *seen == last);
        self.cycle += 1;
    }

    async fn poll(&mut self, index: usize, target: &str) -> Result<Polled, PollError> {
        match self.endpoint_names().get(index).copied() {
            Some(DISCOVERY) => self.discover(target).await,
            _ => self.health(target).await,
        }
    }

    fn status_samples(&self, out: &mut Samples) {
        self.usage_samples(out);
        super::versions::expiry_samples(out, &self.config.api_version);
    }
}

impl CloudApiClient {
    pub fn new(upstream: Upstream, config: &CloudApiTarget) -> Self {
        CloudApiClient {
            http: upstream.http,
            base: upstream::BaseUrl::new(&upstream.base_url),
            config: config.clone(),
            body_limit: upstream.body_limit,
            discovered: Vec::new(),
            last_discovery: None,
            usage: BTreeMap::new(),
            cycle: 0,
            slowdown: 1,
        }
    }

    /// The endpoints in poll order, without a copy: every poll looks its own up here.
    fn endpoint_names(&self) -> &'static [&'static str] {
        if self.config.discover {
            &[DISCOVERY, HEALTH]
        } else {
            &[HEALTH]
        }
    }

    pub fn usage_samples(&self, out: &mut Samples) {
        let usage: Vec<payload::Usage> = self
            .usage
            .iter()
            .map(|((object, kind, measure), (ratio, _))| payload::Usage {
                business_object_id: object.clone(),
                usage_type: kind.clone(),
                measure: measure.clone(),
                ratio: *ratio,
            })
            .collect();
        super::usage_samples(out, &usage);
    }

    async fn discover(&mut self, target: &str) -> Result<Polled, PollError> {
        if self
            .last_discovery
            .is_some_and(|at| at.elapsed() < self.config.discovery_interval)
        {
            return Ok(Polled::NotDue);
        }
        let Some(waba) = self.config.waba_id.clone() else {
            return Ok(Polled::NotDue);
        };
        let version = self.config.api_version.clone();
        let mut problems = Problems::default();
        let numbers = self
            .list(
                &format!("{version}/{waba}/phone_numbers?fields=id&limit=100"),
                payload::parse_phone_numbers_page,
                &mut problems,
            )
            .await?;
        let templates: Vec<Template> = self
            .list(
                &format!(
                    "{version}/{waba}/message_templates?fields=id,name,language,status,category,quality_score&limit=100"
                ),
                payload::parse_templates_page,
                &mut problems,
            )
            .await?;
        let ids: Vec<String> = numbers.into_iter().map(|n| n.id).collect();
        if ids != self.discovered {
            tracing::info!(
                target_name = target,
                phone_numbers = ids.len(),
                templates = templates.len(),
                "discovery found the WABA's phone numbers and templates"
            );
        }
        self.discovered = ids;
        self.last_discovery = Some(Instant::now());
        let mut samples = Samples::new(target);
        crate::meta::template_samples(&mut samples, &templates);
        Ok(Polled::read(samples, problems))
    }

    /// Every configured and discovered number, then the WABA: one endpoint, so entities the
    /// answers share (WABA, business, app) are merged into one series each.
    async fn health(&mut self, target: &str) -> Result<Polled, PollError> {
        let version = self.config.api_version.clone();
        let limit_field = if self.config.api_major_version() >= 24 {
            "whatsapp_business_manager_messaging_limit"
        } else {
            "messaging_limit_tier"
        };
        let ids = crate::providers::polled_ids(&self.config.phone_number_ids, &self.discovered);
        let mut problems = Problems::default();
        let mut phones: Vec<PhoneNumber> = Vec::with_capacity(ids.len());
        let mut first_failure = None;
        for id in &ids {
            let read = match self
                .get(&format!(
                    "{version}/{id}?fields=health_status,quality_rating,{limit_field},status,name_status,throughput,display_phone_number,verified_name"
                ))
                .await
            {
                Ok(body) => payload::parse_phone_number(&body, &mut problems).map_err(decode),
                Err(e) => Err(e),
            };
            match read {
                Ok(phone) => phones.push(phone),
                // Told to slow down, or shut out: the rest would fare no better.
                Err(e) if !item_failure(&e) => return Err(e),
                Err(e) => {
                    problems.skip(format_args!("phone number {id}: {e}"));
                    first_failure.get_or_insert(e);
                }
            }
        }
        let waba_health = match self.config.waba_id.clone() {
            Some(waba) => {
                let body = self
                    .get(&format!("{version}/{waba}?fields=health_status"))
                    .await?;
                Some(payload::parse_health_status_body(&body, &mut problems).map_err(decode)?)
            }
            None => None,
        };
        if let (true, None, Some(failure)) = (phones.is_empty(), &waba_health, first_failure) {
            // Nothing of the endpoint could be read.
            return Err(failure);
        }
        let mut samples = Samples::new(target);
        for phone in &phones {
            crate::meta::phone_samples(&mut samples, phone);
        }
        let statuses: Vec<&HealthStatus> = phones
            .iter()
            .filter_map(|p| p.health_status.as_ref())
            .chain(waba_health.as_ref())
            .collect();
        crate::meta::messaging_samples(&mut samples, &statuses);
        Ok(Polled::read(samples, problems))
    }

    /// Follows `paging.next` through every page, within the base URL's origin: a `next` on
    /// another host (a relay passing Graph's links on) is not followed, the first request is
    /// repeated from `paging.cursors.after` instead, so the token never leaves the origin.
    async fn list<T>(
        &mut self,
        first: &str,
        parse: fn(&[u8], &mut Problems) -> Result<Page<T>, PayloadError>,
        problems: &mut Problems,
    ) -> Result<Vec<T>, PollError> {
        let mut url = self.url(first)?;
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self.get_url(url).await?;
            let page = parse(&body, problems).map_err(decode)?;
            all.extend(page.data);
            let Some(next) = page.next else {
                return Ok(all);
            };
            url = match (next_url(self.base.base(), &next), page.after) {
                (Ok(url), _) => url,
                // A relay passing Graph's links on names another host: the listing goes on
                // from the cursor on the configured one, so the token stays there.
                (Err(_), Some(after)) if Url::parse(&next).is_ok() => {
                    let mut url = self.url(first)?;
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "after")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    url.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("after", &after);
                    url
                }
                (Err(e), _) => return Err(e),
            };
        }
        Err(PollError::new(
            Reason::Decode,
            format!("more than {MAX_PAGES} pages: listing abandoned"),
        ))
    }

    fn url(&self, path: &str) -> Result<Url, PollError> {
        self.base.join(path)
    }

    async fn get(&mut self, path: &str) -> Result<Bytes, PollError> {
        let url = self.url(path)?;
        self.get_url(url).await
    }

    async fn get_url(&mut self, url: Url) -> Result<Bytes, PollError> {
        let token = self
            .config
            .access_token
            .read()
            .map_err(|e| PollError::new(Reason::Unauthorized, e.to_string()))?;
        let header = upstream::secret_header(&format!("Bearer {}", token.expose()))?;
        let fetched = upstream::fetch(
            self.http.get(url).header(AUTHORIZATION, header),
            self.body_limit,
        )
        .await?;
        self.record_usage(&fetched.headers);
        if !fetched.status.is_success() {
            return Err(graph_error(fetched.status, &fetched.headers, &fetched.body));
        }
        check_content_type(fetched.headers.get(reqwest::header::CONTENT_TYPE))?;
        Ok(fetched.body)
    }

    fn record_usage(&mut self, headers: &HeaderMap) {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let parsed = [
            header("x-business-use-case-usage").map(payload::parse_business_use_case_usage),
            header("x-app-usage").map(payload::parse_app_usage),
        ];
        for result in parsed.into_iter().flatten() {
            match result {
                Ok(usage) => {
                    for u in usage {
                        let key = (u.business_object_id, u.usage_type, u.measure);
                        self.usage.insert(key, (u.ratio, self.cycle));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "unreadable Graph API usage header"),
            }
        }
    }
}

/// Graph answers JSON, and older API versions label it `text/javascript`.
fn check_content_type(value: Option<&reqwest::header::HeaderValue>) -> Result<(), PollError> {
    let javascript = value.and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/javascript")
    });
    if javascript {
        return Ok(());
    }
    upstream::check_json_content_type(value)
}

/// A `paging.next` link, followed only within the origin of `base`: the credentials go
/// with it.
pub(crate) fn next_url(base: &Url, next: &str) -> Result<Url, PollError> {
    let url = Url::parse(next)
        .map_err(|e| PollError::new(Reason::Decode, format!("paging.next: {e}")))?;
    if url.origin() != base.origin() {
        return Err(PollError::new(
            Reason::Decode,
            "paging.next leads to another origin: not followed",
        ));
    }
    Ok(url)
}

fn decode(e: PayloadError) -> PollError {
    PollError::new(Reason::Decode, e.to_string())
}

/// Whether a failed request for one phone number concerns that number alone (it does not
/// exist any more, its answer is odd), so its siblings are still asked: not a rate limit,
/// an outage or a refused credential, which the others would meet too.
pub(crate) fn item_failure(e: &PollError) -> bool {
    matches!(e.reason, Reason::Decode | Reason::HttpStatus)
}

/// A Graph API error answer as a failed poll (see [`crate::meta::envelope_error`]); the
/// longer of Retry-After and the usage header's estimated time to regain access is the
/// wait of a rate limit.
pub fn graph_error(status: reqwest::StatusCode, headers: &HeaderMap, body: &[u8]) -> PollError {
    let Some(error) = payload::parse_graph_error(body) else {
        return upstream::status_error(status, headers, "");
    };
    let regain = headers
        .get("x-business-use-case-usage")
        .and_then(|v| v.to_str().ok())
        .and_then(payload::regain_access_minutes)
        .filter(|m| *m > 0.0)
        .map(|m| Duration::from_secs_f64(m * 60.0));
    crate::meta::envelope_error(status, headers, &error, regain)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::json::Problems;
    use reqwest::header::HeaderValue;
    use reqwest::StatusCode;

    fn error_body(code: i64) -> Vec<u8> {
        format!(r#"{{"error":{{"message":"m{code}","type":"OAuthException","code":{code},"fbtrace_id":"x"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn graph_error_codes_map_to_reasons() {
        let headers = HeaderMap::new();
        let cases = [
            (190, Reason::Unauthorized),
            (4, Reason::RateLimited),
            (80007, Reason::RateLimited),
            (80008, Reason::RateLimited),
            (2, Reason::Unavailable),
            (200, Reason::Unauthorized),
            (100, Reason::HttpStatus),
        ];
        for (code, reason) in cases {
            let err = graph_error(StatusCode::BAD_REQUEST, &headers, &error_body(code));
            assert_eq!(err.reason, reason, "{code}");
            assert_eq!(
                err.message,
                format!("HTTP 400: Graph error {code}: m{code}")
            );
        }
        let err = graph_error(StatusCode::BAD_GATEWAY, &headers, b"<html>");
        assert_eq!(err.reason, Reason::HttpStatus);
    }

    #[test]
    fn graph_error_message_is_one_cut_line() {
        let text = format!("first\\nsecond\\t{}", "x".repeat(300));
        let body = format!(r#"{{"error":{{"message":"{text}","code":100}}}}"#);
        let err = graph_error(StatusCode::BAD_REQUEST, &HeaderMap::new(), body.as_bytes());
        assert_eq!(
            err.message,
            format!(
                "HTTP 400: Graph error 100: first second {}…",
                "x".repeat(187)
            )
        );
    }

    fn client(threshold: f64) -> CloudApiClient {
        let text = format!(
            "targets:\n  - name: c\n    type: cloud_api\n    access_token: t\n    waba_id: 1\n    usage_threshold: {threshold}\n"
        );
        let config = crate::config::Config::parse(&text, std::path::Path::new("t.yaml")).unwrap();
        let target = &config.targets[0];
        let crate::providers::TargetKind::CloudApi(cloud) = &target.kind else {
            panic!("not cloud_api");
        };
        CloudApiClient::new(target.upstream(reqwest::Client::new()), cloud)
    }

    fn usage_headers(percent: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_str(&format!(
                r#"{{"1":[{{"type":"whatsapp_business_management","call_count":{percent},"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}}]}}"#
            ))
            .unwrap(),
        );
        headers
    }

    #[test]
    fn slowdown_doubles_above_the_threshold_and_usage_expires() {
        let mut client = client(0.8);
        client.begin_cycle();
        client.record_usage(&usage_headers(85));
        assert_eq!(client.interval_factor(), 2);
        client.begin_cycle();
        client.record_usage(&usage_headers(90));
        assert_eq!(client.interval_factor(), 4);
        client.begin_cycle();
        client.record_usage(&usage_headers(95));
        assert_eq!(client.interval_factor(), 8);
        client.begin_cycle();
        client.record_usage(&usage_headers(99));
        assert_eq!(client.interval_factor(), 8);
        // A cycle whose answers carry no usage keeps the last figures once...
        client.begin_cycle();
        assert_eq!(client.interval_factor(), 8);
        let mut out = Samples::new("c");
        client.usage_samples(&mut out);
        assert!(!out.is_empty());
        // ...then they go, and so does the slowdown.
        client.begin_cycle();
        assert_eq!(client.interval_factor(), 1);
        let mut out = Samples::new("c");
        client.usage_samples(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn rate_limit_waits_for_regained_access() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"1":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":3}]}"#,
            ),
        );
        let err = graph_error(StatusCode::BAD_REQUEST, &headers, &error_body(80008));
        assert_eq!(err.retry_after, Some(Duration::from_secs(180)));
    }
}
