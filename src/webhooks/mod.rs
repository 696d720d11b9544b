//! The optional webhook receiver: Meta's pushed message statuses and business events (the
//! Cloud API format, also what 360dialog and Kapso relay) read from a body, who may deliver
//! them, which were seen before, what they count, and what a business event changes in the
//! polled state of its target ([`update`]).
//!
//! Bodies hold customers' numbers and message texts: what leaves [`payload`] carries none
//! of them.

pub mod auth;
pub mod config;
pub mod dedup;
pub mod ingest;
pub mod payload;
pub mod server;
pub mod update;
