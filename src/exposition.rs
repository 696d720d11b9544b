//! The metrics contract and its text encodings.
//!
//! Every metric family the exporter publishes for its targets is declared once in
//! [`Family`]. A poll renders its samples straight to exposition lines ([`Samples`]), kept per
//! family, so a scrape only concatenates what the polls left: its cost does not depend on
//! how the data got there, and nothing stale can linger in a registry. Label values come
//! from upstream payloads and are escaped here, for both text formats.
//!
//! The exporter's own metrics use `prometheus-client` (`self_metrics.rs`); the targets'
//! families do not, for measured reasons rather than missing features: a registry encodes
//! every series at every scrape, while here each poll renders its target's lines once, when
//! its data changes; a scrape sends the targets' own buffers as they are instead of copying
//! them into one body; one encoding of the whole serves every scrape that arrives in its
//! short life, and its gzip is made once for all of them (`gzip.rs`). The README's
//! Performance section has the figures (10,000 targets, beside nginx serving the same bytes).

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

/// How a family is typed in the exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// The name ends in `_total`; OpenMetrics names the family without it.
    Counter,
    /// The name ends in `_info`; OpenMetrics types it `info`, text 0.0.4 `gauge`.
    Info,
}

macro_rules! families {
    ($($variant:ident => $name:literal, $kind:ident, $help:literal;)+) => {
        /// Every per-target metric family, in exposition order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Family { $($variant),+ }

        impl Family {
            pub const ALL: &'static [Family] = &[$(Family::$variant),+];

            pub fn name(self) -> &'static str {
                match self { $(Family::$variant => $name),+ }
            }

            pub fn kind(self) -> Kind {
                match self { $(Family::$variant => Kind::$kind),+ }
            }

            pub fn help(self) -> &'static str {
                match self { $(Family::$variant => $help),+ }
            }
        }
    };
}

families! {
    TargetInfo => "whatsapp_target_info", Info,
        "Configured target: its type and the user labels from the config. Join on target.";
    Up => "whatsapp_up", Gauge,
        "1 when the last poll of every endpoint of the target succeeded, else 0.";
    PollSuccess => "whatsapp_poll_success", Gauge,
        "1 when the last poll of this endpoint succeeded, else 0.";
    PollDuration => "whatsapp_poll_duration_seconds", Gauge,
        "Duration of the last poll of this endpoint, login included.";
    LastPollSuccess => "whatsapp_last_poll_success_timestamp_seconds", Gauge,
        "Unix time of the last successful poll of this endpoint.";
    PollErrors => "whatsapp_poll_errors_total", Counter,
        "Failed polls of this endpoint by reason: timeout, dns, connection_refused, connection_reset, connect, tls_unknown_ca, tls_expired, tls_wrong_host, tls, http_status, unauthorized, rate_limited, unavailable, decode, body_too_large.";
    UpstreamRequests => "whatsapp_upstream_requests_total", Counter,
        "HTTP requests the exporter sent upstream to poll this endpoint, logins and retries included, each counted as it is sent: one that got no answer (refused, timed out) counts too.";
    AuthTokenExpiry => "whatsapp_auth_token_expiry_timestamp_seconds", Gauge,
        "Unix time at which the current login (Bearer) token expires.";
    ApiInfo => "whatsapp_api_info", Info,
        "API version and status (deprecated, experimental, stable) from the response envelope's meta.";
    GatewayStatus => "whatsapp_gateway_status", Gauge,
        "Connection of the node to the WhatsApp servers, one series per status; 1 marks the current one.";
    NodeErrorInfo => "whatsapp_node_error_info", Info,
        "One series per node that answered an error instead of its health: the error's code and title.";
    NodeRole => "whatsapp_node_role", Gauge,
        "Role of the node in a High Availability or multiconnect cluster; 1 marks the current one.";
    SocketConnection => "whatsapp_socket_connection", Gauge,
        "socket_conn of the node as sent (UP, DN, SC, UP receiving offline, UNK); 1 marks the current one.";
    FreeSpace => "whatsapp_free_space_bytes", Gauge,
        "Free bytes on the node's volume (data, logs, media_incoming, media_outgoing).";
    SchemaVersion => "whatsapp_schema_version", Gauge,
        "Database schema version of the node, per schema.";
    MulticonnectEnabled => "whatsapp_multiconnect_enabled", Gauge,
        "1 when the node runs in multiconnect mode.";
    NodeShards => "whatsapp_node_shards", Gauge,
        "Number of shard ids the node owns.";
    BuildInfo => "whatsapp_build_info", Info,
        "Build of the node's WhatsApp Business API client.";
    BuildExpiry => "whatsapp_build_expiry_timestamp_seconds", Gauge,
        "Unix time at which the node's client build expires (expire_timestamp, read as UTC).";
    ClockSkew => "whatsapp_clock_skew_seconds", Gauge,
        "The node's clock (device_iso8601) minus the exporter's clock when the response arrived.";
    UpstreamErrors => "whatsapp_upstream_errors_total", Counter,
        "Errors the upstream reported inside an otherwise good answer (Kapso's error field).";
    ItemsSkipped => "whatsapp_items_skipped_total", Counter,
        "Items of this endpoint's answers (nodes, entities, phone numbers, templates) left out because they could not be read; the rest of each answer was exported.";
    SeriesDropped => "whatsapp_series_dropped_total", Counter,
        "Data series of this endpoint's answers left out because the target reached its series_limit.";
    GraphApiUsage => "whatsapp_graph_api_usage_ratio", Gauge,
        "Graph API rate-limit usage from the x-business-use-case-usage and x-app-usage headers, as a ratio: 1 is the limit (Meta throttles there).";
    GraphApiVersionExpiry => "whatsapp_graph_api_version_expiry_timestamp_seconds", Gauge,
        "Unix time at which Meta stops serving the Graph API version the target calls (its api_version): Meta's published date, or the release plus two years where Meta has published none yet.";
    BusinessWabas => "whatsapp_business_wabas", Gauge,
        "WABAs the business owns or serves as a solution partner, as its last discovery listed them (cloud_api targets with business_id).";
    AccessTokenValid => "whatsapp_access_token_valid", Gauge,
        "1 when Graph's debug_token says the target's access token is valid, else 0.";
    AccessTokenExpiry => "whatsapp_access_token_expiry_timestamp_seconds", Gauge,
        "Unix time at which the target's access token expires, from debug_token (+Inf when it never expires).";
    AccessTokenDataAccessExpiry => "whatsapp_access_token_data_access_expiry_timestamp_seconds", Gauge,
        "Unix time at which the target's access token loses data access, from debug_token (+Inf when never).";
    AccessTokenScope => "whatsapp_access_token_scope", Gauge,
        "1 for each permission (scope) granted to the target's access token, from debug_token.";
    WebhookSubscribedApps => "whatsapp_webhook_subscribed_apps", Gauge,
        "Apps subscribed to the WABA's webhooks (GET /{waba_id}/subscribed_apps); 0 means Meta sends the WABA's webhooks to no one.";
    WebhookAppSubscribed => "whatsapp_webhook_app_subscribed", Gauge,
        "1 for each app subscribed to the WABA's webhooks.";
    MessagingHealthStatus => "whatsapp_messaging_health_status", Gauge,
        "Overall can_send_message of the target (AVAILABLE, LIMITED, BLOCKED); 1 marks the current one.";
    CanSendMessage => "whatsapp_can_send_message", Gauge,
        "can_send_message of each entity (phone number, WABA, business, app, template); 1 marks the current one.";
    CanReceiveCallSip => "whatsapp_can_receive_call_sip", Gauge,
        "can_receive_call_sip of each entity that has it; 1 marks the current one.";
    EntityErrorInfo => "whatsapp_entity_error_info", Info,
        "One series per error of a BLOCKED entity: its code, description and possible solution.";
    EntityLimitationInfo => "whatsapp_entity_limitation_info", Info,
        "One series per additional_info line of a LIMITED entity.";
    ConfigHealthStatus => "whatsapp_config_health_status", Gauge,
        "Kapso's overall status of the WhatsApp config, or of the phone number in phone_number_id (kapso_platform targets): healthy, degraded, unhealthy, error; 1 marks the current one.";
    HealthCheckPassed => "whatsapp_health_check_passed", Gauge,
        "1 when Kapso's health check of that name passed, else 0; per phone number (phone_number_id) for kapso_platform targets.";
    WebhookSubscribed => "whatsapp_webhook_subscribed", Gauge,
        "1 when Kapso reports the app subscribed to the WABA's webhooks; per phone number (phone_number_id) for kapso_platform targets.";
    WebhookVerified => "whatsapp_webhook_verified_timestamp_seconds", Gauge,
        "Unix time at which Kapso last verified the webhook; per phone number (phone_number_id) for kapso_platform targets.";
    PhoneQualityRating => "whatsapp_phone_quality_rating", Gauge,
        "Quality rating of the phone number (GREEN, YELLOW, RED, UNKNOWN, NA); 1 marks the current one.";
    PhoneNumberInfo => "whatsapp_phone_number_info", Info,
        "Display number and verified name of the phone number.";
    PhoneMessagingLimitTier => "whatsapp_phone_messaging_limit_tier", Gauge,
        "Messaging limit tier of the phone number; 1 marks the current one.";
    PhoneMessagingLimit => "whatsapp_phone_messaging_limit", Gauge,
        "Business-initiated conversations the phone number may open per 24 hours (+Inf when unlimited).";
    PhoneNumberStatus => "whatsapp_phone_number_status", Gauge,
        "Status of the phone number (CONNECTED, FLAGGED, RESTRICTED, ...); 1 marks the current one.";
    PhoneNameStatus => "whatsapp_phone_name_status", Gauge,
        "Review status of the phone number's display name; 1 marks the current one.";
    PhoneThroughputLevel => "whatsapp_phone_throughput_level", Gauge,
        "Throughput level of the phone number; 1 marks the current one.";
    TemplateStatus => "whatsapp_template_status", Gauge,
        "Review status of the message template (APPROVED, PAUSED, DISABLED, ...); 1 marks the current one.";
    TemplateQuality => "whatsapp_template_quality", Gauge,
        "Quality of the message template (GREEN, YELLOW, RED, UNKNOWN); 1 marks the current one.";
    WebhookRequests => "whatsapp_webhook_requests_total", Counter,
        "Webhook deliveries (POST) the receiver answered, by result.";
    WebhookVerifications => "whatsapp_webhook_verifications_total", Counter,
        "Webhook subscription handshakes (GET) the receiver answered, by result.";
    WebhookEvents => "whatsapp_webhook_events_total", Counter,
        "Changes received in accepted webhook deliveries, by WABA and field.";
    WebhookLastEvent => "whatsapp_webhook_last_event_timestamp_seconds", Gauge,
        "Unix time the receiver last got a change for the WABA.";
    MessageStatuses => "whatsapp_message_statuses_total", Counter,
        "Statuses of sent messages Meta reported by webhook (sent, delivered, read, failed, ...), each message and status counted once.";
    MessageErrors => "whatsapp_message_errors_total", Counter,
        "Error codes of failed messages and of messages changes, by phone number.";
    MessageBillable => "whatsapp_message_billable_total", Counter,
        "Statuses of billable messages, by pricing category.";
    BusinessEvents => "whatsapp_business_events_total", Counter,
        "Account, quality, template and capability events received by webhook, by field and event.";
    WebhookDuplicateStatuses => "whatsapp_webhook_duplicate_statuses_total", Counter,
        "Message statuses Meta delivered again within the de-duplication window, counted once.";
    WebhookItemsSkipped => "whatsapp_webhook_items_skipped_total", Counter,
        "Parts of accepted webhook deliveries that could not be read or were too long to be labels.";
    WebhookSeriesDropped => "whatsapp_webhook_series_dropped_total", Counter,
        "Webhook counts not kept because the webhooks series_limit was reached.";
}

/// Which text format a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// OpenMetrics when the Accept header prefers it to plain text, else text 0.0.4.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.split(',') {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or_default().to_ascii_lowercase();
            let q = params
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && openmetrics >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Exposition lines of one target, per family. Every line starts with the target label.
/// Only the families used take memory: a target has a few dozen of the catalog's.
///
/// Lines are added per family ([`Samples::push`]); [`Samples::shrink`] then packs them into
/// one shared buffer that /metrics sends from directly, so the exporter never holds a
/// second copy of its targets' series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    target_label: String,
    /// Where the target label ends in `target_label`; a [`Samples::scope`] follows it.
    scope_at: usize,
    /// Position + 1 in `lines` (and `spans`) of each family's text, 0 when it has none: a
    /// lookup per family and part at every encoding of /metrics must be cheap.
    index: FamilyIndex,
    /// Lines while samples are being added, one string per family in `index` order.
    lines: Vec<String>,
    /// Lines in `lines`: what [`Samples::series`] answers before packing.
    unpacked_series: usize,
    /// Once packed: every family's lines, one after the other, and where each is.
    packed: Bytes,
    spans: Vec<(u32, u32)>,
    /// (family, value) pairs that a state set did not know: the poller logs each once.
    unknown: Vec<(Family, String)>,
}

impl Samples {
    pub fn new(target: &str) -> Self {
        let mut target_label = String::from("target=\"");
        escape_label_value(&mut target_label, target);
        target_label.push('"');
        Samples {
            scope_at: target_label.len(),
            target_label,
            ..Samples::default()
        }
    }

    /// Puts `labels` right after the target label of every sample pushed from now on, until
    /// the next call (an empty slice ends it): the series of one of several WABAs a target
    /// covers carry that WABA's id.
    pub fn scope(&mut self, labels: &[(&str, &str)]) {
        self.target_label.truncate(self.scope_at);
        for (name, value) in labels {
            self.target_label.push(',');
            self.target_label.push_str(name);
            self.target_label.push_str("=\"");
            escape_label_value(&mut self.target_label, value);
            self.target_label.push('"');
        }
    }

    fn buffer(&mut self, family: Family) -> &mut String {
        if !self.spans.is_empty() {
            self.unpack();
        }
        let slot = self.index.0[family as usize];
        let index = if slot == 0 {
            self.lines.push(spare_string());
            // At most one entry per family, and the catalog has fewer than 255.
            self.index.0[family as usize] = self.lines.len() as u8;
            self.lines.len() - 1
        } else {
            usize::from(slot) - 1
        };
        &mut self.lines[index]
    }

    /// Back to one string per family, to add more lines after [`Samples::shrink`].
    fn unpack(&mut self) {
        self.lines = self
            .spans
            .iter()
            .map(|&(start, end)| {
                String::from_utf8_lossy(&self.packed[start as usize..end as usize]).into_owned()
            })
            .collect();
        self.unpacked_series = self.lines.iter().map(|t| count_lines(t.as_bytes())).sum();
        self.packed = Bytes::new();
        self.spans = Vec::new();
    }

    /// Adds one sample of `family` with the target label followed by `labels`.
    pub fn push(&mut self, family: Family, labels: &[(&str, &str)], value: f64) {
        let target_label = std::mem::take(&mut self.target_label);
        let out = self.buffer(family);
        out.push_str(family.name());
        out.push('{');
        out.push_str(&target_label);
        for (name, value) in labels {
            out.push(',');
            out.push_str(name);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push_str("} ");
        write_value(out, value);
        out.push('\n');
        self.target_label = target_label;
        self.unpacked_series += 1;
    }

    /// A state set: one series per known state, 1 for `current` and 0 for the rest. A
    /// state the exporter does not know becomes one more series with value 1.
    pub fn state_set(
        &mut self,
        family: Family,
        labels: &[(&str, &str)],
        state_label: &str,
        known: &[&str],
        current: &str,
    ) {
        let mut all = Vec::with_capacity(labels.len() + 1);
        all.extend_from_slice(labels);
        all.push((state_label, ""));
        let last = all.len() - 1;
        for state in known {
            all[last].1 = state;
            self.push(family, &all, if *state == current { 1.0 } else { 0.0 });
        }
        if !known.contains(&current) {
            all[last].1 = current;
            self.push(family, &all, 1.0);
            self.unknown.push((family, current.to_owned()));
        }
    }

    fn span(&self, family: Family) -> Option<std::ops::Range<usize>> {
        match self.index.0[family as usize] {
            0 => None,
            slot => {
                let (start, end) = *self.spans.get(usize::from(slot) - 1)?;
                Some(start as usize..end as usize)
            }
        }
    }

    /// The rendered lines of one family (empty when it has none).
    pub fn lines(&self, family: Family) -> &str {
        if let Some(span) = self.span(family) {
            // Packed from Strings, so always UTF-8.
            return std::str::from_utf8(&self.packed[span]).unwrap_or_default();
        }
        match self.index.0[family as usize] {
            0 => "",
            slot => self
                .lines
                .get(usize::from(slot) - 1)
                .map_or("", String::as_str),
        }
    }

    /// The lines of one family as a buffer to send: shared with these samples once they
    /// are packed, a copy before.
    pub fn chunk(&self, family: Family) -> Option<Bytes> {
        match self.span(family) {
            Some(span) if !span.is_empty() => Some(self.packed.slice(span)),
            Some(_) => None,
            None => {
                let lines = self.lines(family);
                (!lines.is_empty()).then(|| Bytes::copy_from_slice(lines.as_bytes()))
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Done adding: packs the lines into one buffer of exactly their size. Samples are
    /// kept until the next poll, so the memory they hold is the exporter's memory.
    pub fn shrink(&mut self) {
        if !self.spans.is_empty() || self.lines.is_empty() {
            self.unknown.shrink_to_fit();
            return;
        }
        let mut packed = Vec::with_capacity(self.len());
        let mut spans = Vec::with_capacity(self.lines.len());
        for text in &self.lines {
            let start = packed.len();
            packed.extend_from_slice(text.as_bytes());
            // A target's lines stay far below 4 GiB: answers are capped by body_size_limit
            // and series_limit.
            spans.push((start as u32, packed.len() as u32));
        }
        self.packed = Bytes::from(packed);
        self.spans = spans;
        // `index` still says which span is whose.
        for text in std::mem::take(&mut self.lines) {
            give_back_string(text);
        }
        self.unpacked_series = 0;
        self.unknown.shrink_to_fit();
    }

    /// State values no state set knew, for logging.
    pub fn unknown_values(&self) -> &[(Family, String)] {
        &self.unknown
    }

    /// Bytes of exposition held, for sizing buffers.
    pub fn len(&self) -> usize {
        if self.spans.is_empty() {
            self.lines.iter().map(String::len).sum()
        } else {
            self.packed.len()
        }
    }

    /// Number of series held (one line each).
    pub fn series(&self) -> usize {
        if !self.spans.is_empty() {
            return count_lines(&self.packed);
        }
        self.unpacked_series
    }

    /// Keeps the first `max` series in exposition order and drops the rest, so one answer
    /// with thousands of entities cannot bloat every scrape. Returns how many it dropped.
    pub fn limit_series(&mut self, max: usize) -> usize {
        if !self.spans.is_empty() {
            self.unpack();
        }
        let mut kept = 0usize;
        let mut dropped = 0usize;
        for &family in Family::ALL {
            let slot = self.index.0[family as usize];
            if slot == 0 {
                continue;
            }
            let text = &mut self.lines[usize::from(slot) - 1];
            let count = count_lines(text.as_bytes());
            let room = max - kept;
            if count <= room {
                kept += count;
                continue;
            }
            let cut = match room.checked_sub(1) {
                None => 0,
                Some(last) => text
                    .match_indices('\n')
                    .nth(last)
                    .map_or(text.len(), |(at, _)| at + 1),
            };
            text.truncate(cut);
            dropped += count - room;
            kept = max;
        }
        self.unpacked_series -= dropped;
        dropped
    }
}

thread_local! {
    /// Family buffers of samples already packed, for the next poll on this thread: a poll
    /// then writes its lines without growing (and copying) each buffer from empty.
    static SPARE_STRINGS: std::cell::RefCell<Vec<String>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare buffers a thread keeps, and the largest it keeps: enough for the
/// families of a few polls, so the spares stay a small, fixed share of memory.
const SPARE_STRINGS_KEPT: usize = 128;
const SPARE_STRING_MAX_CAPACITY: usize = 16 * 1024;

fn spare_string() -> String {
    SPARE_STRINGS
        .with(|spares| spares.borrow_mut().pop())
        .unwrap_or_default()
}

fn give_back_string(mut text: String) {
    if text.capacity() == 0 || text.capacity() > SPARE_STRING_MAX_CAPACITY {
        return;
    }
    text.clear();
    SPARE_STRINGS.with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARE_STRINGS_KEPT {
            spares.push(text);
        }
    });
}

fn count_lines(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count()
}

const FAMILIES: usize = Family::ALL.len();

#[derive(Clone, Debug, PartialEq)]
struct FamilyIndex([u8; FAMILIES]);

impl Default for FamilyIndex {
    fn default() -> Self {
        FamilyIndex([0; FAMILIES])
    }
}

/// Writes the HELP and TYPE lines of a family.
pub fn write_header(out: &mut String, family: Family, format: Format) {
    let name = family.name();
    let (type_name, kind) = match (format, family.kind()) {
        (Format::Text, Kind::Counter) => (name, "counter"),
        (Format::Text, Kind::Gauge | Kind::Info) => (name, "gauge"),
        (Format::OpenMetrics, Kind::Gauge) => (name, "gauge"),
        (Format::OpenMetrics, Kind::Counter) => {
            (name.strip_suffix("_total").unwrap_or(name), "counter")
        }
        (Format::OpenMetrics, Kind::Info) => (name.strip_suffix("_info").unwrap_or(name), "info"),
    };
    let _ = writeln!(out, "# HELP {type_name} {}", family.help());
    let _ = writeln!(out, "# TYPE {type_name} {kind}");
}

/// Renders the families of all `parts` (each a target's samples), grouped by family as
/// both formats require.
pub fn render_families(out: &mut String, format: Format, parts: &[&Samples]) {
    for &family in Family::ALL {
        let mut header_written = false;
        for part in parts {
            let lines = part.lines(family);
            if lines.is_empty() {
                continue;
            }
            if !header_written {
                write_header(out, family, format);
                header_written = true;
            }
            out.push_str(lines);
        }
    }
}

/// A /metrics answer's body: chunks shared by every scrape of the same data, then the
/// answer's own (the exporter's series, read at each scrape).
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub shared: Arc<[Bytes]>,
    pub own: Vec<Bytes>,
}

impl Body {
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        self.shared.iter().chain(&self.own)
    }

    pub fn len(&self) -> usize {
        self.chunks().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in self.chunks() {
            out.extend_from_slice(chunk);
        }
        out
    }
}

/// The families of all `parts` grouped as [`render_families`] does, as buffers to send one
/// after the other: the lines are the parts' own, shared rather than copied.
pub fn encode_families(format: Format, parts: &[&Samples]) -> Vec<Bytes> {
    let mut chunks = Vec::with_capacity(parts.len() * 4 + Family::ALL.len());
    for &family in Family::ALL {
        let mut header_written = false;
        for part in parts {
            let Some(lines) = part.chunk(family) else {
                continue;
            };
            if !header_written {
                let mut header = String::with_capacity(256);
                write_header(&mut header, family, format);
                chunks.push(Bytes::from(header));
                header_written = true;
            }
            chunks.push(lines);
        }
    }
    chunks
}

/// Escapes a label value as both text formats require: backslash, double quote, newline.
pub fn escape_label_value(out: &mut String, value: &str) {
    // Almost every value (ids, states, names) needs no escaping: one scan, one copy.
    if memchr::memchr3(b'\\', b'"', b'\n', value.as_bytes()).is_none() {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a sample value the way Prometheus parses it (`+Inf`, `-Inf`, `NaN`; integers
/// without a fraction).
pub fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Most samples are 0 or 1 (state sets) or counts: formatted without core::fmt.
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Converts OpenMetrics text from `prometheus-client` into text 0.0.4: counters are typed
/// under their `_total` name, info families become gauges named `_info`, and the UNIT and
/// EOF lines go.
pub fn openmetrics_to_text(openmetrics: &str, out: &mut String) {
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            pending_help = Some((name, help));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" => (name.to_owned(), "gauge"),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some((_, help)) = pending_help.take() {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_follows_the_target_label_until_it_ends() {
        let mut samples = Samples::new("t");
        samples.scope(&[("waba_id", "1\"2")]);
        samples.push(Family::Up, &[("x", "y")], 1.0);
        samples.scope(&[("waba_id", "3")]);
        samples.push(Family::Up, &[], 0.0);
        samples.scope(&[]);
        samples.push(Family::Up, &[], 2.0);
        assert_eq!(
            samples.lines(Family::Up),
            "whatsapp_up{target=\"t\",waba_id=\"1\\\"2\",x=\"y\"} 1\n\
             whatsapp_up{target=\"t\",waba_id=\"3\"} 0\n\
             whatsapp_up{target=\"t\"} 2\n"
        );
    }

    #[test]
    fn packed_samples_share_their_buffer() {
        let mut samples = Samples::new("a");
        samples.push(Family::Up, &[], 1.0);
        samples.push(Family::GatewayStatus, &[("node", "n1")], 0.0);
        samples.push(Family::Up, &[], 0.0);
        let before = samples.lines(Family::Up).to_owned();
        samples.shrink();
        assert_eq!(samples.lines(Family::Up), before);
        assert_eq!(
            samples.lines(Family::GatewayStatus),
            "whatsapp_gateway_status{target=\"a\",node=\"n1\"} 0\n"
        );
        let up = samples.chunk(Family::Up).unwrap();
        let again = samples.chunk(Family::Up).unwrap();
        assert_eq!(up.as_ptr(), again.as_ptr(), "a slice, not a copy");
        assert_eq!(samples.chunk(Family::NodeRole), None);
        assert_eq!(
            samples.len(),
            before.len() + samples.lines(Family::GatewayStatus).len()
        );
        // Adding after packing works on the lines as they were.
        samples.push(Family::Up, &[], 1.0);
        assert_eq!(
            samples.lines(Family::Up),
            format!("{before}whatsapp_up{{target=\"a\"}} 1\n")
        );
        samples.shrink();
        assert!(samples.lines(Family::GatewayStatus).ends_with("} 0\n"));
    }

    #[test]
    fn encoding_to_chunks_matches_rendering() {
        let mut a = Samples::new("a");
        a.push(Family::Up, &[], 1.0);
        a.push(Family::GatewayStatus, &[("node", "x")], 1.0);
        a.shrink();
        let mut b = Samples::new("b");
        b.push(Family::Up, &[], 0.0);
        for format in [Format::Text, Format::OpenMetrics] {
            let mut rendered = String::new();
            render_families(&mut rendered, format, &[&a, &b]);
            let encoded: Vec<u8> = encode_families(format, &[&a, &b])
                .iter()
                .flat_map(|c| c.to_vec())
                .collect();
            assert_eq!(String::from_utf8(encoded).unwrap(), rendered);
        }
    }

    #[test]
    fn the_family_index_fits_in_a_byte() {
        assert!(Family::ALL.len() < usize::from(u8::MAX));
        for (i, family) in Family::ALL.iter().enumerate() {
            assert_eq!(*family as usize, i);
        }
    }

    #[test]
    fn family_names_follow_the_conventions() {
        let mut names = std::collections::HashSet::new();
        for &family in Family::ALL {
            let name = family.name();
            assert!(names.insert(name), "{name} declared twice");
            assert!(name.starts_with("whatsapp_"), "{name}");
            match family.kind() {
                Kind::Counter => assert!(name.ends_with("_total"), "{name}"),
                Kind::Info => assert!(name.ends_with("_info"), "{name}"),
                Kind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
            }
            assert!(family.help().ends_with('.'), "{name}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut samples = Samples::new("t\"1");
        samples.push(
            Family::ApiInfo,
            &[("version", "a\\b\"c\nd"), ("api_status", "ünïcode")],
            1.0,
        );
        assert_eq!(
            samples.lines(Family::ApiInfo),
            "whatsapp_api_info{target=\"t\\\"1\",version=\"a\\\\b\\\"c\\nd\",api_status=\"ünïcode\"} 1\n"
        );
    }

    #[test]
    fn values_format_as_prometheus_parses_them() {
        let cases = [
            (1.0, "1"),
            (0.0, "0"),
            (-3.0, "-3"),
            (0.25, "0.25"),
            (9223372036853727000.0, "9223372036853727000"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1700000000.5, "1700000000.5"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn state_set_marks_current_and_passes_unknown_through() {
        let mut samples = Samples::new("a");
        samples.state_set(
            Family::GatewayStatus,
            &[("node", "")],
            "status",
            &["connected", "disconnected"],
            "disconnected",
        );
        assert_eq!(
            samples.lines(Family::GatewayStatus),
            "whatsapp_gateway_status{target=\"a\",node=\"\",status=\"connected\"} 0\n\
             whatsapp_gateway_status{target=\"a\",node=\"\",status=\"disconnected\"} 1\n"
        );
        assert!(samples.unknown_values().is_empty());
        let mut samples = Samples::new("a");
        samples.state_set(
            Family::GatewayStatus,
            &[("node", "n")],
            "status",
            &["connected"],
            "rebooting",
        );
        assert_eq!(
            samples.lines(Family::GatewayStatus),
            "whatsapp_gateway_status{target=\"a\",node=\"n\",status=\"connected\"} 0\n\
             whatsapp_gateway_status{target=\"a\",node=\"n\",status=\"rebooting\"} 1\n"
        );
        assert_eq!(
            samples.unknown_values(),
            &[(Family::GatewayStatus, "rebooting".to_owned())]
        );
    }

    #[test]
    fn series_beyond_the_limit_are_dropped_in_exposition_order() {
        let mut samples = Samples::new("a");
        // Pushed out of exposition order: the limit keeps the families that come first.
        samples.push(Family::FreeSpace, &[("volume", "data")], 1.0);
        samples.state_set(
            Family::GatewayStatus,
            &[("node", "n")],
            "status",
            &["connected", "disconnected"],
            "connected",
        );
        samples.push(Family::FreeSpace, &[("volume", "logs")], 2.0);
        assert_eq!(samples.series(), 4);
        let mut all = samples.clone();
        assert_eq!(all.limit_series(4), 0);
        assert_eq!(all, samples);
        assert_eq!(samples.limit_series(3), 1);
        assert_eq!(samples.series(), 3);
        assert_eq!(
            samples.lines(Family::FreeSpace),
            "whatsapp_free_space_bytes{target=\"a\",volume=\"data\"} 1\n"
        );
        assert_eq!(samples.lines(Family::GatewayStatus).lines().count(), 2);
        assert_eq!(samples.limit_series(0), 3);
        assert!(samples.is_empty());
    }

    #[test]
    fn render_groups_families_across_targets() {
        let mut a = Samples::new("a");
        a.push(Family::Up, &[], 1.0);
        a.push(
            Family::PollErrors,
            &[("endpoint", "health"), ("reason", "timeout")],
            2.0,
        );
        let mut b = Samples::new("b");
        b.push(Family::Up, &[], 0.0);
        let mut text = String::new();
        render_families(&mut text, Format::Text, &[&a, &b]);
        assert_eq!(
            text,
            "# HELP whatsapp_up 1 when the last poll of every endpoint of the target succeeded, else 0.\n\
             # TYPE whatsapp_up gauge\n\
             whatsapp_up{target=\"a\"} 1\n\
             whatsapp_up{target=\"b\"} 0\n\
             # HELP whatsapp_poll_errors_total Failed polls of this endpoint by reason: timeout, dns, connection_refused, connection_reset, connect, tls_unknown_ca, tls_expired, tls_wrong_host, tls, http_status, unauthorized, rate_limited, unavailable, decode, body_too_large.\n\
             # TYPE whatsapp_poll_errors_total counter\n\
             whatsapp_poll_errors_total{target=\"a\",endpoint=\"health\",reason=\"timeout\"} 2\n"
        );
        let mut om = String::new();
        render_families(&mut om, Format::OpenMetrics, &[&a]);
        assert!(om.contains("# TYPE whatsapp_poll_errors counter\n"), "{om}");
        assert!(
            om.contains("whatsapp_poll_errors_total{target=\"a\""),
            "{om}"
        );
    }

    #[test]
    fn info_families_per_format() {
        let mut a = Samples::new("a");
        a.push(Family::TargetInfo, &[("type", "onprem")], 1.0);
        let mut om = String::new();
        render_families(&mut om, Format::OpenMetrics, &[&a]);
        assert!(om.contains("# TYPE whatsapp_target info\n"), "{om}");
        let mut text = String::new();
        render_families(&mut text, Format::Text, &[&a]);
        assert!(
            text.contains("# TYPE whatsapp_target_info gauge\n"),
            "{text}"
        );
    }

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0.2,text/plain;q=0.9")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    }

    #[test]
    fn openmetrics_conversion() {
        let om = "# HELP x_reloads Reloads.\n# TYPE x_reloads counter\nx_reloads_total{result=\"success\"} 1\n\
                  # HELP x_build Build.\n# TYPE x_build info\nx_build_info{version=\"1\"} 1\n\
                  # HELP x_up Up.\n# TYPE x_up gauge\n# UNIT x_up seconds\nx_up 1\n# EOF\n";
        let mut text = String::new();
        openmetrics_to_text(om, &mut text);
        assert_eq!(
            text,
            "# HELP x_reloads_total Reloads.\n# TYPE x_reloads_total counter\nx_reloads_total{result=\"success\"} 1\n\
             # HELP x_build_info Build.\n# TYPE x_build_info gauge\nx_build_info{version=\"1\"} 1\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n"
        );
    }
}
