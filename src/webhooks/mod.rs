//! The parts of the optional webhook receiver built so far (no listener serves them yet):
//! Meta's pushed message statuses and business events (the Cloud API format, also what
//! 360dialog and Kapso relay) read from a body, who may deliver them, and which were seen
//! before.
//!
//! Bodies hold customers' numbers and message texts: what leaves [`payload`] carries none
//! of them.

pub mod auth;
pub mod config;
pub mod dedup;
pub mod ingest;
pub mod payload;
pub mod server;
