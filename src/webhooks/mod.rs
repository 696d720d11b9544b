//! The optional webhook receiver: Meta's pushed message statuses and business events
//! (the Cloud API format, also what 360dialog and Kapso relay), turned into series.

pub mod auth;
pub mod dedup;
