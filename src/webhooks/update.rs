//! What a business event changes in the polled state of the target its WABA belongs to, so
//! that its series show the change at once rather than at the target's next poll (or, for
//! templates, its next discovery). The next poll overwrites it with the Graph API's own
//! answer.
//!
//! Only the events whose meaning for a polled series Meta documents become an update; the
//! rest are counted by the receiver and change nothing else.

use super::payload::{Change, Event, PhoneQuality, TemplateRef};
use crate::meta::payload::{PhoneNumber, Template};

/// Template statuses an event may set: the values of the Graph API's `status` (see
/// [`crate::meta::TEMPLATE_STATUSES`]) and `ARCHIVED`, which Meta documents for both.
const TEMPLATE_STATUS_EVENTS: &[&str] = &[
    "APPROVED",
    "IN_APPEAL",
    "PENDING",
    "REJECTED",
    "PENDING_DELETION",
    "DELETED",
    "DISABLED",
    "PAUSED",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
];

/// A change to apply to the polled state of a target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetUpdate {
    /// `message_template_status_update`: the template's `whatsapp_template_status`.
    TemplateStatus {
        waba_id: String,
        template: TemplateRef,
        /// A Graph API template status (`PAUSED`, `APPROVED`, ...).
        status: String,
    },
    /// `message_template_quality_update`: the template's `whatsapp_template_quality`.
    TemplateQuality {
        waba_id: String,
        template: TemplateRef,
        /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
        quality: String,
    },
    /// `phone_number_quality_update`: one field of the number whose display number this is.
    PhoneQuality {
        waba_id: String,
        /// Digits only: Meta sends `15550783881` where Graph lists `+1 555-078-3881`.
        display_phone_number: String,
        /// The event as sent (`FLAGGED`, `UPGRADE`, ...), for logs.
        event: String,
        change: PhoneChange,
    },
}

/// What a `phone_number_quality_update` event says of a number's polled fields.
#[derive(Debug, Clone, PartialEq)]
pub enum PhoneChange {
    /// `quality_rating`, for `FLAGGED`: Meta flags a number when its quality rating reaches
    /// low (RED); its messaging limits guide says a flagged number cannot be upgraded, and
    /// is downgraded unless its quality improves within 7 days.
    QualityRating(&'static str),
    /// `UNFLAGGED`: the quality is no longer low. Meta does not say what it is now (its
    /// reference, as relayed by BSPs, only says the number "is eligible to receive a
    /// messaging limit increase if it continues to receive positive feedback"), so a RED
    /// rating becomes `UNKNOWN` until the next poll reads it; any other is left alone.
    QualityNoLongerRed,
    /// The messaging limit tier (`UPGRADE`, `DOWNGRADE`): `current_limit`, or
    /// `max_daily_conversations_per_business`, which Meta names as its successor.
    MessagingLimitTier(String),
    /// `THROUGHPUT_UPGRADE`: the number's throughput level is now high.
    ThroughputLevel(&'static str),
}

impl TargetUpdate {
    /// The update a business change stands for; `None` for changes that touch no polled
    /// series, and for events without what they would need (an unknown template status, a
    /// tier change without its tier, a quality event without its number).
    pub fn from_change(change: &Change) -> Option<TargetUpdate> {
        let waba_id = change.waba_id.clone();
        match &change.event {
            Event::TemplateStatus(t) => {
                let status = template_status(t.event.as_deref()?)?;
                Some(TargetUpdate::TemplateStatus {
                    waba_id,
                    template: usable(&t.template)?,
                    status: status.to_owned(),
                })
            }
            Event::TemplateQuality(t) => {
                let quality = t.new_quality_score.as_deref()?;
                let quality = crate::meta::TEMPLATE_QUALITY
                    .iter()
                    .find(|q| **q == quality)?;
                Some(TargetUpdate::TemplateQuality {
                    waba_id,
                    template: usable(&t.template)?,
                    quality: (*quality).to_owned(),
                })
            }
            Event::PhoneQuality(p) => phone_update(waba_id, p),
            _ => None,
        }
    }

    /// The WABA whose template or number it is.
    pub fn waba_id(&self) -> &str {
        match self {
            TargetUpdate::TemplateStatus { waba_id, .. }
            | TargetUpdate::TemplateQuality { waba_id, .. }
            | TargetUpdate::PhoneQuality { waba_id, .. } => waba_id,
        }
    }

    /// Applies a template update to a polled `template`: `None` when the update is not
    /// about it, else whether it changed.
    pub fn apply_to_template(&self, template: &mut Template) -> Option<bool> {
        let wanted = match self {
            TargetUpdate::TemplateStatus { template, .. }
            | TargetUpdate::TemplateQuality { template, .. } => template,
            TargetUpdate::PhoneQuality { .. } => return None,
        };
        if !names_template(wanted, &template.id, &template.name, &template.language) {
            return None;
        }
        Some(match self {
            TargetUpdate::TemplateStatus { status, .. } => {
                let changed = template.status != *status;
                status.clone_into(&mut template.status);
                changed
            }
            TargetUpdate::TemplateQuality { quality, .. } => set(&mut template.quality, quality),
            TargetUpdate::PhoneQuality { .. } => false,
        })
    }

    /// Applies a number update to a polled `phone`: `None` when the update is not about
    /// it (its display number's digits differ), else whether it changed.
    pub fn apply_to_phone(&self, phone: &mut PhoneNumber) -> Option<bool> {
        let TargetUpdate::PhoneQuality {
            display_phone_number,
            change,
            ..
        } = self
        else {
            return None;
        };
        let polled = phone.display_phone_number.as_deref()?;
        if !polled
            .chars()
            .filter(char::is_ascii_digit)
            .eq(display_phone_number.chars())
        {
            return None;
        }
        Some(match change {
            PhoneChange::QualityRating(rating) => set(&mut phone.quality_rating, rating),
            PhoneChange::QualityNoLongerRed => {
                phone.quality_rating.as_deref() == Some("RED")
                    && set(&mut phone.quality_rating, "UNKNOWN")
            }
            PhoneChange::MessagingLimitTier(tier) => set(&mut phone.messaging_limit_tier, tier),
            PhoneChange::ThroughputLevel(level) => set(&mut phone.throughput_level, level),
        })
    }

    /// A name for logs: says what kind of update, nothing of its content.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetUpdate::TemplateStatus { .. } => "template_status",
            TargetUpdate::TemplateQuality { .. } => "template_quality",
            TargetUpdate::PhoneQuality { .. } => "phone_quality",
        }
    }
}

/// The Graph API status a template status event leaves the template in: the event itself
/// for the statuses both share, `APPROVED` for `REINSTATED` ("no longer flagged or disabled
/// and can be sent in template messages again", Meta's message_template_status_update
/// reference). `FLAGGED` (at risk, still sendable), `LOCKED` and `UNLOCKED` (editing only)
/// leave the status as it is.
fn template_status(event: &str) -> Option<&'static str> {
    if event == "REINSTATED" {
        return Some("APPROVED");
    }
    TEMPLATE_STATUS_EVENTS
        .iter()
        .find(|s| **s == event)
        .copied()
}

/// The template reference, when it names one template: by id, else by name and language.
fn usable(template: &TemplateRef) -> Option<TemplateRef> {
    let named = template.name.is_some() && template.language.is_some();
    (template.id.is_some() || named).then(|| template.clone())
}

fn phone_update(waba_id: String, p: &PhoneQuality) -> Option<TargetUpdate> {
    let event = p.event.as_deref()?;
    let change = match event {
        "FLAGGED" => PhoneChange::QualityRating("RED"),
        "UNFLAGGED" => PhoneChange::QualityNoLongerRed,
        "UPGRADE" | "DOWNGRADE" => {
            let tier = p
                .current_limit
                .as_deref()
                .or(p.max_daily_conversations_per_business.as_deref())
                .filter(|t| crate::meta::MESSAGING_TIERS.contains(t))?;
            PhoneChange::MessagingLimitTier(tier.to_owned())
        }
        "THROUGHPUT_UPGRADE" => PhoneChange::ThroughputLevel("HIGH"),
        // ONBOARDING (still registering) and anything newer: nothing polled changes.
        _ => return None,
    };
    let display_phone_number = digits(p.display_phone_number.as_deref()?);
    if display_phone_number.is_empty() {
        return None;
    }
    Some(TargetUpdate::PhoneQuality {
        waba_id,
        display_phone_number,
        event: event.to_owned(),
        change,
    })
}

/// Sets a polled field; whether it changed.
fn set(field: &mut Option<String>, value: &str) -> bool {
    if field.as_deref() == Some(value) {
        return false;
    }
    *field = Some(value.to_owned());
    true
}

/// The digits of a phone number as displayed: `+1 555-078-3881` -> `15550783881`.
pub fn digits(display: &str) -> String {
    display.chars().filter(char::is_ascii_digit).collect()
}

/// Whether `template` names the polled template (`id`, `name`, `language`): by id when the
/// event carries one, else by name and language, the language compared as a locale
/// (`en-US` in Meta's webhook examples names the `en_US` the Graph API lists).
pub fn names_template(template: &TemplateRef, id: &str, name: &str, language: &str) -> bool {
    if let Some(wanted) = &template.id {
        return wanted == id;
    }
    match (&template.name, &template.language) {
        (Some(wanted_name), Some(wanted_language)) => {
            wanted_name == name && same_locale(wanted_language, language)
        }
        _ => false,
    }
}

fn same_locale(a: &str, b: &str) -> bool {
    let norm = |c: char| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.chars().map(norm).eq(b.chars().map(norm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Problems;
    use crate::webhooks::payload::parse_delivery;

    // Meta's published examples (each file's `.source.md` names its page).
    const TEMPLATE_APPROVED: &str =
        include_str!("../../tests/corpus/webhooks/template-status-approved.json");
    const TEMPLATE_REJECTED: &str =
        include_str!("../../tests/corpus/webhooks/template-status-rejected-invalid-format.json");
    const TEMPLATE_QUALITY: &str =
        include_str!("../../tests/corpus/webhooks/template-quality-update-green-yellow.json");
    const THROUGHPUT_UPGRADE: &str = include_str!(
        "../../tests/corpus/webhooks/phone-number-quality-update-throughput-upgrade.json"
    );
    const CATEGORY: &str =
        include_str!("../../tests/corpus/webhooks/template-category-update-completed.json");
    const ACCOUNT: &str =
        include_str!("../../tests/corpus/webhooks/account-update-account-violation.json");
    const ALERT: &str =
        include_str!("../../tests/corpus/webhooks/account-alerts-capabilities-deferred.json");
    const CAPABILITY: &str =
        include_str!("../../tests/corpus/webhooks/business-capability-update.json");
    const SENT: &str =
        include_str!("../../tests/corpus/webhooks/messages-status-sent-marketing.json");
    const WABA: &str = "102290129340398";

    fn updates(body: &str) -> Vec<Option<TargetUpdate>> {
        let delivery = parse_delivery(body.as_bytes(), &mut Problems::default()).unwrap();
        delivery
            .changes
            .iter()
            .map(TargetUpdate::from_change)
            .collect()
    }

    /// The update of a body of one change that makes one.
    fn only(body: &str) -> TargetUpdate {
        let [update] = updates(body).try_into().unwrap();
        update.unwrap()
    }

    fn template(id: &str, name: &str, language: &str) -> TemplateRef {
        TemplateRef {
            id: Some(id.into()),
            name: Some(name.into()),
            language: Some(language.into()),
        }
    }

    #[test]
    fn template_status_examples_set_the_status() {
        assert_eq!(
            updates(TEMPLATE_APPROVED),
            [Some(TargetUpdate::TemplateStatus {
                waba_id: WABA.into(),
                template: template("1689556908129832", "order_confirmation", "en-US"),
                status: "APPROVED".into(),
            })]
        );
        assert_eq!(
            updates(TEMPLATE_REJECTED),
            [Some(TargetUpdate::TemplateStatus {
                waba_id: WABA.into(),
                template: template("1689556908129835", "abandoned_cart", "en"),
                status: "REJECTED".into(),
            })]
        );
    }

    /// Meta's example names the field `message_template_status_update`: read by its
    /// `new_quality_score`, it is a quality update all the same.
    #[test]
    fn the_template_quality_example_sets_the_quality() {
        assert_eq!(
            updates(TEMPLATE_QUALITY),
            [Some(TargetUpdate::TemplateQuality {
                waba_id: WABA.into(),
                template: template("806312974732579", "welcome_template", "en-US"),
                quality: "YELLOW".into(),
            })]
        );
    }

    #[test]
    fn the_throughput_upgrade_example_sets_throughput_high() {
        assert_eq!(
            updates(THROUGHPUT_UPGRADE),
            [Some(TargetUpdate::PhoneQuality {
                waba_id: WABA.into(),
                display_phone_number: "15550783881".into(),
                event: "THROUGHPUT_UPGRADE".into(),
                change: PhoneChange::ThroughputLevel("HIGH"),
            })]
        );
    }

    #[test]
    fn other_fields_change_nothing_polled() {
        for body in [CATEGORY, ACCOUNT, ALERT, CAPABILITY, SENT] {
            assert_eq!(updates(body), [None], "{body}");
        }
    }

    /// The throughput example with another event and limits: what each event of the
    /// older reference (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, ONBOARDING) sets.
    fn phone_event(event: &str, limits: &str) -> Option<TargetUpdate> {
        let body = THROUGHPUT_UPGRADE
            .replace("\"THROUGHPUT_UPGRADE\"", &format!("\"{event}\""))
            .replace("\"current_limit\": \"TIER_UNLIMITED\"", limits);
        let [update] = updates(&body).try_into().unwrap();
        update
    }

    #[test]
    fn phone_events_map_to_quality_tier_or_nothing() {
        let change = |event, limits| match phone_event(event, limits) {
            Some(TargetUpdate::PhoneQuality { change, .. }) => Some(change),
            None => None,
            other => panic!("{other:?}"),
        };
        let limit = "\"current_limit\": \"TIER_10K\"";
        assert_eq!(
            change("FLAGGED", limit),
            Some(PhoneChange::QualityRating("RED"))
        );
        assert_eq!(
            change("UNFLAGGED", limit),
            Some(PhoneChange::QualityNoLongerRed)
        );
        assert_eq!(
            change(
                "UPGRADE",
                "\"old_limit\": \"TIER_1K\", \"current_limit\": \"TIER_10K\""
            ),
            Some(PhoneChange::MessagingLimitTier("TIER_10K".into()))
        );
        assert_eq!(
            change("DOWNGRADE", "\"current_limit\": \"TIER_250\""),
            Some(PhoneChange::MessagingLimitTier("TIER_250".into()))
        );
        // After February 2026 only the successor field carries the tier.
        assert_eq!(
            change(
                "UPGRADE",
                "\"max_daily_conversations_per_business\": \"TIER_2K\""
            ),
            Some(PhoneChange::MessagingLimitTier("TIER_2K".into()))
        );
        // A tier change without a tier, or with a value that is none, sets nothing.
        assert_eq!(change("UPGRADE", "\"old_limit\": \"TIER_1K\""), None);
        assert_eq!(change("UPGRADE", "\"current_limit\": \"lots\""), None);
        assert_eq!(change("ONBOARDING", limit), None);
        assert_eq!(change("SOMETHING_NEW", limit), None);
    }

    #[test]
    fn a_phone_event_without_a_usable_display_number_sets_nothing() {
        let body = THROUGHPUT_UPGRADE.replace("\"15550783881\"", "\"+-\"");
        assert_eq!(updates(&body), [None]);
        let body = THROUGHPUT_UPGRADE.replace("\"display_phone_number\": \"15550783881\",", "");
        assert_eq!(updates(&body), [None]);
    }

    #[test]
    fn template_events_map_to_graph_statuses() {
        let status = |event: &str| match updates(
            &TEMPLATE_APPROVED.replace("\"APPROVED\"", &format!("\"{event}\"")),
        )
        .pop()
        .flatten()
        {
            Some(TargetUpdate::TemplateStatus { status, .. }) => Some(status),
            None => None,
            other => panic!("{other:?}"),
        };
        for same in [
            "PAUSED",
            "DISABLED",
            "PENDING_DELETION",
            "ARCHIVED",
            "IN_APPEAL",
        ] {
            assert_eq!(status(same).as_deref(), Some(same));
        }
        assert_eq!(status("REINSTATED").as_deref(), Some("APPROVED"));
        for nothing in ["FLAGGED", "LOCKED", "UNLOCKED", "paused", "SOMETHING_NEW"] {
            assert_eq!(status(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn a_template_event_must_name_one_template() {
        let without_id =
            TEMPLATE_APPROVED.replace("\"message_template_id\": 1689556908129832,", "");
        let found = updates(&without_id);
        let [Some(TargetUpdate::TemplateStatus { template, .. })] = found.as_slice() else {
            panic!("name and language name a template: {found:?}");
        };
        assert_eq!(template.id, None);
        let name_only = without_id.replace("\"message_template_language\": \"en-US\",", "");
        assert_eq!(updates(&name_only), [None]);
        let unknown_quality = TEMPLATE_QUALITY.replace("\"YELLOW\"", "\"PURPLE\"");
        assert_eq!(updates(&unknown_quality), [None]);
    }

    #[test]
    fn templates_match_by_id_else_by_name_and_locale() {
        let by_id = template("7", "welcome", "en-US");
        assert!(names_template(&by_id, "7", "other_name", "pt_BR"));
        assert!(!names_template(&by_id, "8", "welcome", "en_US"));
        let by_name = TemplateRef { id: None, ..by_id };
        assert!(names_template(&by_name, "8", "welcome", "en_US"));
        assert!(names_template(&by_name, "8", "welcome", "EN-us"));
        assert!(!names_template(&by_name, "8", "welcome", "en"));
        assert!(!names_template(&by_name, "8", "welcome_2", "en_US"));
        let nameless = TemplateRef::default();
        assert!(!names_template(&nameless, "8", "welcome", "en_US"));
    }

    fn polled_template(id: &str, name: &str, language: &str) -> Template {
        Template {
            id: id.into(),
            name: name.into(),
            language: language.into(),
            status: "APPROVED".into(),
            category: Some("UTILITY".into()),
            quality: Some("GREEN".into()),
        }
    }

    #[test]
    fn a_template_update_changes_only_the_template_it_names() {
        let paused = only(&TEMPLATE_APPROVED.replace("\"APPROVED\"", "\"PAUSED\""));
        let mut named = polled_template("1689556908129832", "order_confirmation", "en_US");
        let mut other = polled_template("1689556908129833", "order_confirmation", "en_US");
        assert_eq!(paused.apply_to_template(&mut other), None);
        assert_eq!(other.status, "APPROVED");
        assert_eq!(paused.apply_to_template(&mut named), Some(true));
        assert_eq!(named.status, "PAUSED");
        assert_eq!(paused.apply_to_template(&mut named), Some(false));
        // A number's update is about no template.
        let upgrade = only(THROUGHPUT_UPGRADE);
        assert_eq!(upgrade.apply_to_template(&mut named), None);

        let yellow = only(TEMPLATE_QUALITY);
        let mut welcome = polled_template("806312974732579", "welcome_template", "en_US");
        assert_eq!(yellow.apply_to_template(&mut welcome), Some(true));
        assert_eq!(welcome.quality.as_deref(), Some("YELLOW"));
        assert_eq!(welcome.status, "APPROVED");
        assert_eq!(yellow.apply_to_phone(&mut phone()), None);
    }

    fn phone() -> PhoneNumber {
        PhoneNumber {
            id: "106540352242922".into(),
            health_status: None,
            quality_rating: Some("GREEN".into()),
            messaging_limit_tier: Some("TIER_1K".into()),
            status: Some("CONNECTED".into()),
            name_status: None,
            throughput_level: Some("STANDARD".into()),
            display_phone_number: Some("+1 555-078-3881".into()),
            verified_name: Some("Shop".into()),
        }
    }

    #[test]
    fn a_phone_update_changes_the_number_whose_digits_it_names() {
        let limit = "\"current_limit\": \"TIER_10K\"";
        let apply = |event: &str, phone: &mut PhoneNumber| {
            phone_event(event, limit).unwrap().apply_to_phone(phone)
        };
        let mut number = phone();
        let mut other = PhoneNumber {
            display_phone_number: Some("+1 555-078-3882".into()),
            ..phone()
        };
        assert_eq!(apply("FLAGGED", &mut other), None);
        assert_eq!(
            other,
            PhoneNumber {
                display_phone_number: Some("+1 555-078-3882".into()),
                ..phone()
            }
        );
        assert_eq!(apply("FLAGGED", &mut number), Some(true));
        assert_eq!(number.quality_rating.as_deref(), Some("RED"));
        assert_eq!(apply("UNFLAGGED", &mut number), Some(true));
        assert_eq!(number.quality_rating.as_deref(), Some("UNKNOWN"));
        // UNFLAGGED says nothing of a rating that was not RED.
        let mut yellow = PhoneNumber {
            quality_rating: Some("YELLOW".into()),
            ..phone()
        };
        assert_eq!(apply("UNFLAGGED", &mut yellow), Some(false));
        assert_eq!(yellow.quality_rating.as_deref(), Some("YELLOW"));
        assert_eq!(apply("UPGRADE", &mut number), Some(true));
        assert_eq!(number.messaging_limit_tier.as_deref(), Some("TIER_10K"));
        assert_eq!(apply("THROUGHPUT_UPGRADE", &mut number), Some(true));
        assert_eq!(number.throughput_level.as_deref(), Some("HIGH"));
        assert_eq!(apply("THROUGHPUT_UPGRADE", &mut number), Some(false));
        // A number polled without its display number cannot be told.
        let mut unnamed = PhoneNumber {
            display_phone_number: None,
            ..phone()
        };
        assert_eq!(apply("FLAGGED", &mut unnamed), None);
    }

    #[test]
    fn display_numbers_compare_by_digits() {
        assert_eq!(digits("+1 555-078-3881"), "15550783881");
        assert_eq!(digits("15550783881"), "15550783881");
    }
}
