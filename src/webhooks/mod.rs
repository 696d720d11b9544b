//! The optional webhook receiver: Meta's pushed message statuses and business events
//! (the Cloud API format, also what 360dialog and Kapso relay), turned into series.
//!
//! Bodies hold customers' numbers and message texts: what leaves [`payload`] carries none
//! of them.

pub mod auth;
pub mod dedup;
pub mod payload;
