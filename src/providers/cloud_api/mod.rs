//! The `cloud_api` provider: Meta's Graph API (the Cloud API) for a WABA and its phone
//! numbers. Meta's health model and its series live in [`crate::meta`]; what is Graph's
//! own (the rate-limit usage headers, paging, discovery) lives here.

pub mod client;
pub mod config;
pub mod payload;
pub mod versions;

pub use config::CloudApiTarget;

use crate::exposition::{Family, Samples};
use payload::Usage;

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
