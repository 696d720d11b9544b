//! How long Meta serves each Graph API version: the
//! `whatsapp_graph_api_version_expiry_timestamp_seconds` series of a `cloud_api` target,
//! and the warning at start and at each reload when its `api_version` ends soon.
//!
//! Once a version has ended, Meta answers its calls at the oldest version still served,
//! so a target keeps running on fields and semantics it was not configured for: worth
//! knowing months ahead, not after the fact.

use std::time::{Duration, SystemTime};

use crate::exposition::{Family, Samples};

/// A version that ends within this long is warned about at start and at each reload.
pub const WARN_WITHIN: Duration = Duration::from_secs(90 * 86_400);

/// A calendar day (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

const fn day(year: i32, month: u32, day: u32) -> Day {
    Day { year, month, day }
}

impl Day {
    /// Unix seconds at the start (00:00 UTC) of the day; `None` for a day that does not exist.
    pub fn unix_seconds(self) -> Option<i64> {
        let date = chrono::NaiveDate::from_ymd_opt(self.year, self.month, self.day)?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// One Graph API version: when Meta released it and the day it stops serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GraphVersion {
    pub major: u32,
    pub minor: u32,
    pub released: Day,
    pub expires: Day,
    /// `false` where Meta has not published the end yet ("TBD"): `expires` is then the
    /// release plus two years, the least Meta guarantees.
    pub published: bool,
}

/// Meta's Graph API versions from v21.0 on, oldest first.
///
/// Source: Meta's "Versions" table of the Graph API changelog,
/// <https://developers.facebook.com/docs/graph-api/changelog/versions> (columns "Release
/// Date" and "Expiration Date"; the changelog's own page calls the latter "Available
/// Until"), in its edition whose newest entry is v26.0; and, for v27.0, Meta's release
/// post of 2026-11-04,
/// <https://developers.facebook.com/blog/post/2026/11/04/introducing-graph-api-v27-and-marketing-api-v27/>.
///
/// Meta's platform versioning guarantees every version at least two years from its
/// release, and ends it two years after the next version's release (the published dates
/// of v21.0, v23.0, v24.0 and v25.0 are exactly that; v22.0's is nine days earlier).
/// Where the table says "TBD" (v26.0, and v27.0, not listed yet), `expires` is the
/// release plus two years, `published: false`: the guaranteed floor, so an alert fires
/// early rather than late. v26.0 will likely be served until 2028-11-04, two years after
/// v27.0's release, once Meta publishes it. Versions before v21.0 had all ended by
/// 2026-09-24 (v20.0, the last of them).
pub const VERSIONS: &[GraphVersion] = &[
    GraphVersion {
        major: 21,
        minor: 0,
        released: day(2024, 10, 2),
        expires: day(2027, 1, 21),
        published: true,
    },
    GraphVersion {
        major: 22,
        minor: 0,
        released: day(2025, 1, 21),
        expires: day(2027, 5, 20),
        published: true,
    },
    GraphVersion {
        major: 23,
        minor: 0,
        released: day(2025, 5, 29),
        expires: day(2027, 10, 8),
        published: true,
    },
    GraphVersion {
        major: 24,
        minor: 0,
        released: day(2025, 10, 8),
        expires: day(2028, 2, 18),
        published: true,
    },
    GraphVersion {
        major: 25,
        minor: 0,
        released: day(2026, 2, 18),
        expires: day(2028, 7, 29),
        published: true,
    },
    GraphVersion {
        major: 26,
        minor: 0,
        released: day(2026, 7, 29),
        expires: day(2028, 7, 29),
        published: false,
    },
    GraphVersion {
        major: 27,
        minor: 0,
        released: day(2026, 11, 4),
        expires: day(2028, 11, 4),
        published: false,
    },
];

/// What the table says of a configured `api_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Known(&'static GraphVersion),
    /// Older than the table's first version: ended before this exporter was built.
    Older,
    /// Newer than the table, or a minor version Meta never released.
    Unknown,
}

pub fn lookup(api_version: &str) -> Lookup {
    let Some((major, minor)) = super::config::parse_api_version(api_version) else {
        return Lookup::Unknown;
    };
    if let Some(known) = VERSIONS
        .iter()
        .find(|v| (v.major, v.minor) == (major, minor))
    {
        return Lookup::Known(known);
    }
    match VERSIONS.first() {
        Some(first) if (major, minor) < (first.major, first.minor) => Lookup::Older,
        _ => Lookup::Unknown,
    }
}

/// The expiry series of a target that calls `api_version`; none for a version the table
/// does not have (why is logged at start and reload, [`lifetime`]).
pub fn expiry_samples(out: &mut Samples, api_version: &str) {
    if let Lookup::Known(version) = lookup(api_version) {
        if let Some(at) = version.expires.unix_seconds() {
            out.push(
                Family::GraphApiVersionExpiry,
                &[("version", api_version)],
                at as f64,
            );
        }
    }
}

/// Whether a target's `api_version` deserves a word at start and reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Served for longer than [`WARN_WITHIN`].
    Served,
    EndsSoon {
        expires: Day,
        published: bool,
        days_left: u64,
    },
    Ended {
        expires: Day,
    },
    Older,
    Unknown,
}

/// The decision for `api_version` at `now`.
pub fn lifetime(api_version: &str, now: SystemTime) -> Lifetime {
    let version = match lookup(api_version) {
        Lookup::Known(version) => version,
        Lookup::Older => return Lifetime::Older,
        Lookup::Unknown => return Lifetime::Unknown,
    };
    let Some(expires_at) = version.expires.unix_seconds() else {
        return Lifetime::Unknown;
    };
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = expires_at - now;
    if left <= 0 {
        Lifetime::Ended {
            expires: version.expires,
        }
    } else if left as u64 <= WARN_WITHIN.as_secs() {
        Lifetime::EndsSoon {
            expires: version.expires,
            published: version.published,
            days_left: left as u64 / 86_400,
        }
    } else {
        Lifetime::Served
    }
}

/// Logs what [`lifetime`] says of target `target`'s `api_version` now, if anything. The
/// target runs on either way.
pub fn log_lifetime(target: &str, api_version: &str) {
    let first = VERSIONS
        .first()
        .map(|v| (v.major, v.minor))
        .unwrap_or_default();
    let last = VERSIONS
        .last()
        .map(|v| (v.major, v.minor))
        .unwrap_or_default();
    match lifetime(api_version, SystemTime::now()) {
        Lifetime::Served => {}
        Lifetime::EndsSoon {
            expires,
            published,
            days_left,
        } => tracing::warn!(
            target_name = %target,
            api_version,
            expires = %expires,
            source = if published { "published by Meta" } else { "release + 2 years (Meta has published none)" },
            days_left,
            "Graph API version ends within 90 days: set a newer api_version"
        ),
        Lifetime::Ended { expires } => tracing::warn!(
            target_name = %target,
            api_version,
            expires = %expires,
            "Graph API version has ended: Meta answers its calls at the oldest version it still serves; set a newer api_version"
        ),
        Lifetime::Older => tracing::warn!(
            target_name = %target,
            api_version,
            oldest_known = %format_args!("v{}.{}", first.0, first.1),
            "Graph API version older than any this exporter knows, all ended: no expiry series; set a newer api_version"
        ),
        Lifetime::Unknown => tracing::info!(
            target_name = %target,
            api_version,
            known = %format_args!("v{}.{} to v{}.{}", first.0, first.1, last.0, last.1),
            "Graph API version not in the table of Meta versions built into this exporter: no expiry series for it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: Day) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(day.unix_seconds().unwrap() as u64)
    }

    #[test]
    fn the_table_is_sorted_without_gaps_and_every_version_ends_after_its_release() {
        let first = VERSIONS.first().unwrap();
        assert_eq!((first.major, first.minor), (21, 0));
        for pair in VERSIONS.windows(2) {
            assert_eq!(pair[1].major, pair[0].major + 1, "{pair:?}");
            assert!(pair[1].released > pair[0].released, "{pair:?}");
        }
        for v in VERSIONS {
            assert_eq!(v.minor, 0, "{v:?}");
            let released = v.released.unix_seconds().expect("a real day");
            let expires = v.expires.unix_seconds().expect("a real day");
            assert!(expires > released, "{v:?}");
            // Meta guarantees two years; a derived date is exactly that.
            let two_years = day(v.released.year + 2, v.released.month, v.released.day);
            assert!(v.expires >= two_years, "{v:?}");
            if !v.published {
                assert_eq!(v.expires, two_years, "{v:?}");
            }
        }
        // Published dates come before derived ones: Meta publishes the oldest first.
        let derived_from = VERSIONS.iter().position(|v| !v.published);
        if let Some(from) = derived_from {
            assert!(VERSIONS[from..].iter().all(|v| !v.published));
        }
    }

    #[test]
    fn days_are_unix_seconds_at_midnight_utc() {
        assert_eq!(day(1970, 1, 1).unix_seconds(), Some(0));
        assert_eq!(day(2027, 1, 21).unix_seconds(), Some(1_800_489_600));
        assert_eq!(day(2027, 2, 30).unix_seconds(), None);
        assert_eq!(day(2027, 1, 21).to_string(), "2027-01-21");
    }

    #[test]
    fn versions_are_found_or_said_to_be_older_or_unknown() {
        assert!(matches!(lookup("v24.0"), Lookup::Known(v) if v.major == 24));
        assert_eq!(lookup("v20.0"), Lookup::Older);
        assert_eq!(lookup("v2.12"), Lookup::Older);
        assert_eq!(lookup("v99.0"), Lookup::Unknown);
        assert_eq!(lookup("v24.1"), Lookup::Unknown);
        assert_eq!(lookup("24.0"), Lookup::Unknown);
    }

    #[test]
    fn a_known_version_has_its_expiry_series_and_others_none() {
        let mut out = Samples::new("cloud");
        expiry_samples(&mut out, "v21.0");
        assert_eq!(
            out.lines(Family::GraphApiVersionExpiry),
            "whatsapp_graph_api_version_expiry_timestamp_seconds{target=\"cloud\",version=\"v21.0\"} 1800489600\n"
        );
        for other in ["v20.0", "v99.0"] {
            let mut out = Samples::new("cloud");
            expiry_samples(&mut out, other);
            assert!(out.is_empty(), "{other}");
        }
    }

    #[test]
    fn a_version_is_warned_about_from_90_days_before_its_end() {
        let v21 = VERSIONS[0];
        let end = at(v21.expires);
        let day_secs = Duration::from_secs(86_400);
        assert_eq!(lifetime("v21.0", end - day_secs * 91), Lifetime::Served);
        assert_eq!(
            lifetime("v21.0", end - day_secs * 90),
            Lifetime::EndsSoon {
                expires: v21.expires,
                published: true,
                days_left: 90
            }
        );
        assert_eq!(
            lifetime("v21.0", end - Duration::from_secs(1)),
            Lifetime::EndsSoon {
                expires: v21.expires,
                published: true,
                days_left: 0
            }
        );
        assert_eq!(
            lifetime("v21.0", end),
            Lifetime::Ended {
                expires: v21.expires
            }
        );
        // 2026-12-05: v21.0 ends on 2027-01-21, 47 days later; v25.0 is far off.
        let today = at(day(2026, 12, 5));
        assert!(matches!(
            lifetime("v21.0", today),
            Lifetime::EndsSoon { days_left: 47, .. }
        ));
        assert_eq!(lifetime("v25.0", today), Lifetime::Served);
        assert_eq!(lifetime("v19.0", today), Lifetime::Older);
        assert_eq!(lifetime("v30.0", today), Lifetime::Unknown);
    }

    #[test]
    fn a_derived_end_says_so() {
        let v27 = VERSIONS.iter().find(|v| v.major == 27).unwrap();
        assert!(!v27.published);
        let soon = at(v27.expires) - Duration::from_secs(10 * 86_400);
        assert!(matches!(
            lifetime("v27.0", soon),
            Lifetime::EndsSoon {
                published: false,
                ..
            }
        ));
    }
}
