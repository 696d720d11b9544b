//! The On-Premises API client (Webapp): `/v1/health`, `/v1/support` and login.

pub mod payload;
