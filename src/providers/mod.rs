//! The upstream APIs a target can poll, one module each.

pub mod cloud_api;
pub mod dialog360;
pub mod kapso;
pub mod onprem;
