//! The `cloud_api` provider: Meta's Graph API (the Cloud API) for a WABA and its phone
//! numbers. Meta's health model and its series live in [`crate::meta`]; what is Graph's
//! own (the rate-limit usage headers, paging, discovery) lives here.

pub mod client;
pub mod config;
pub mod payload;
pub mod versions;

pub use config::CloudApiTarget;

use crate::exposition::{Family, Samples};
use payload::{SubscribedApp, TokenInfo, Usage};

pub fn usage_samples(out: &mut Samples, usage: &[Usage]) {
    for u in usage {
        out.push(
            Family::GraphApiUsage,
            &[
                ("business_object_id", u.business_object_id.as_str()),
                ("usage_type", u.usage_type.as_str()),
                ("measure", u.measure.as_str()),
            ],
            u.ratio,
        );
    }
}

/// What `debug_token` says of the target's access token.
pub fn token_samples(out: &mut Samples, token: &TokenInfo) {
    out.push(
        Family::AccessTokenValid,
        &[],
        if token.valid { 1.0 } else { 0.0 },
    );
    if let Some(at) = token.expires_at {
        out.push(Family::AccessTokenExpiry, &[], at);
    }
    if let Some(at) = token.data_access_expires_at {
        out.push(Family::AccessTokenDataAccessExpiry, &[], at);
    }
    let mut scopes: Vec<&str> = token.scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    scopes.dedup();
    for scope in scopes {
        out.push(Family::AccessTokenScope, &[("scope", scope)], 1.0);
    }
}

/// The apps subscribed to a WABA's webhooks: how many, and one series each. `waba_id` is
/// given where the samples are not already scoped to the WABA.
pub fn subscription_samples(out: &mut Samples, waba_id: Option<&str>, apps: &[SubscribedApp]) {
    let waba: Vec<(&str, &str)> = waba_id.map(|id| ("waba_id", id)).into_iter().collect();
    out.push(Family::WebhookSubscribedApps, &waba, apps.len() as f64);
    let mut seen = std::collections::HashSet::new();
    for app in apps.iter().filter(|a| seen.insert(a.id.as_str())) {
        let name = crate::upstream::truncate(&app.name, crate::meta::MAX_LABEL_CHARS);
        let mut labels = waba.clone();
        labels.push(("app_id", &app.id));
        labels.push(("app_name", &name));
        out.push(Family::WebhookAppSubscribed, &labels, 1.0);
    }
}
