//! whatsapp-exporter: polls WhatsApp Business API health surfaces and serves them as
//! Prometheus metrics.
//!
//! The daemon is a poller, not a proxy: every target is polled on its own interval and the
//! latest result is kept per target, so a scrape never waits on (or multiplies calls to) a
//! rate-limited upstream.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
mod config_split;
pub mod config_values;
pub mod config_yaml;
mod cores;
pub mod exporter;
pub mod exposition;
pub mod gzip;
pub mod http_server;
pub mod json;
pub mod landing;
pub mod logging;
pub mod meta;
pub mod poller;
pub mod probe;
pub mod providers;
pub mod query;
pub mod secret;
pub mod self_metrics;
pub mod shard;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod timestamp;
pub mod trace;
pub mod upstream;
pub mod web;
pub mod web_config;
pub mod webhooks;
