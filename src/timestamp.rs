//! Lenient parsing of the timestamps WhatsApp APIs send.
//!
//! Upstream timestamps come in several RFC 3339-like shapes: `T` or a space between date and
//! time, `Z`, `+00:00`, `+0000` or `+00` offsets, any number of fractional-second digits, and
//! sometimes no zone at all (read as UTC, e.g. the On-Premises `expire_timestamp`
//! `2018-09-27T14:26:07`). Anything else is rejected.

use std::time::SystemTime;

use chrono::NaiveDate;

/// Parses an upstream timestamp into unix seconds (with fractions).
///
/// Accepted shape, after trimming surrounding whitespace:
/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction][zone]`, where `zone` is `Z`/`z`, `±HH:MM`, `±HHMM`
/// or `±HH`; without a zone the time is UTC. A leap second (`:60`) is accepted and counted
/// as the first second of the next minute. Returns `None` for anything else.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let b = s.trim().as_bytes();
    // Fixed-width date and time: YYYY-MM-DD?HH:MM:SS
    if b.len() < 19 {
        return None;
    }
    let year = digits(&b[0..4])?;
    expect(b, 4, b'-')?;
    let month = digits(&b[5..7])?;
    expect(b, 7, b'-')?;
    let day = digits(&b[8..10])?;
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(&b[11..13])?;
    expect(b, 13, b':')?;
    let minute = digits(&b[14..16])?;
    expect(b, 16, b':')?;
    let second = digits(&b[17..19])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }

    let mut rest = &b[19..];

    // Optional fraction: '.' followed by at least one digit.
    let mut frac: &[u8] = &[];
    if let Some((&b'.', after)) = rest.split_first() {
        let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        frac = &after[..n];
        rest = &after[n..];
    }

    // Optional zone.
    let offset_secs: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (oh, om) = match tail {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                [h1, h2, b':', m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh) * 3600 + i64::from(om) * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };

    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let (second, leap) = if second == 60 { (59, 1) } else { (second, 0) };
    let local = date
        .and_hms_opt(hour, minute, second)?
        .and_utc()
        .timestamp();
    let secs = local + leap - offset_secs;

    Some(with_fraction(secs, frac))
}

/// `secs + 0.<frac>`, correctly rounded for non-negative `secs` (decimal text parsed once).
fn with_fraction(secs: i64, frac: &[u8]) -> f64 {
    if frac.iter().all(|&c| c == b'0') {
        return secs as f64;
    }
    // `frac` holds ASCII digits only, so it is valid UTF-8.
    let frac_str = std::str::from_utf8(frac).unwrap_or("0");
    if secs >= 0 {
        if let Ok(v) = format!("{secs}.{frac_str}").parse::<f64>() {
            return v;
        }
    }
    let f = format!("0.{frac_str}").parse::<f64>().unwrap_or(0.0);
    secs as f64 + f
}

/// Parses a run of ASCII digits (at most 9, so it fits a `u32`).
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, want: u8) -> Option<()> {
    (b.get(at) == Some(&want)).then_some(())
}

/// A point in time as unix seconds: the value of every `*_timestamp_seconds` series.
pub fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    #[test]
    fn rfc3339_with_t_and_z() {
        assert_eq!(
            parse_timestamp("2018-09-27T14:26:07Z"),
            Some(1_538_058_367.0)
        );
        assert_eq!(
            parse_timestamp("2018-09-27t14:26:07z"),
            Some(1_538_058_367.0)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0.0));
    }

    #[test]
    fn no_zone_is_utc() {
        assert_eq!(
            parse_timestamp("2018-09-27T14:26:07"),
            Some(1_538_058_367.0)
        );
        assert_eq!(
            parse_timestamp("2018-09-27 14:26:07"),
            Some(1_538_058_367.0)
        );
    }

    #[test]
    fn space_separator_with_colon_offset() {
        // The On-Premises login `expires_after` shape.
        assert_eq!(
            parse_timestamp("2021-09-14 15:29:26+00:00"),
            Some(1_631_633_366.0)
        );
        assert_eq!(
            parse_timestamp("2021-09-14T15:29:26+00:00"),
            Some(1_631_633_366.0)
        );
    }

    #[test]
    fn compact_and_hour_only_offsets() {
        assert_eq!(
            parse_timestamp("2021-09-14T15:29:26+0000"),
            Some(1_631_633_366.0)
        );
        assert_eq!(
            parse_timestamp("2021-09-14T15:29:26+00"),
            Some(1_631_633_366.0)
        );
        assert_eq!(
            parse_timestamp("2021-09-14T17:29:26+0200"),
            Some(1_631_633_366.0)
        );
    }

    #[test]
    fn non_utc_offsets() {
        assert_eq!(
            parse_timestamp("2021-09-14T17:29:26+02:00"),
            Some(1_631_633_366.0)
        );
        assert_eq!(
            parse_timestamp("2021-09-14T10:59:26-04:30"),
            Some(1_631_633_366.0)
        );
        assert_eq!(
            parse_timestamp("2021-09-14 10:59:26-0430"),
            Some(1_631_633_366.0)
        );
        // Offset crossing midnight.
        assert_eq!(
            parse_timestamp("2021-09-15T01:29:26+10:00"),
            Some(1_631_633_366.0)
        );
    }

    #[test]
    fn fractional_seconds_any_digits() {
        assert_eq!(
            parse_timestamp("2019-01-10 09:51:09.470591"),
            Some(1_547_113_869.470_591)
        );
        assert_eq!(
            parse_timestamp("2019-01-10T09:51:09.5Z"),
            Some(1_547_113_869.5)
        );
        assert_eq!(
            parse_timestamp("2019-01-10T09:51:09.123+00:00"),
            Some(1_547_113_869.123)
        );
        assert_eq!(
            parse_timestamp("2019-01-10T11:51:09.250+0200"),
            Some(1_547_113_869.25)
        );
        assert_eq!(
            parse_timestamp("2019-01-10T09:51:09.000000000Z"),
            Some(1_547_113_869.0)
        );
        // More digits than f64 can hold: still parses, rounded to the nearest f64.
        assert_eq!(
            parse_timestamp("2019-01-10T09:51:09.470591123456789Z"),
            Some(1_547_113_869.470_591)
        );
    }

    #[test]
    fn before_epoch() {
        assert_eq!(parse_timestamp("1969-12-31T23:59:59Z"), Some(-1.0));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.25Z"), Some(-0.75));
    }

    #[test]
    fn leap_second_counts_into_next_minute() {
        assert_eq!(
            parse_timestamp("2016-12-31T23:59:60Z"),
            Some(1_483_228_800.0)
        );
    }

    #[test]
    fn trims_whitespace() {
        assert_eq!(
            parse_timestamp("  2018-09-27T14:26:07Z\n"),
            Some(1_538_058_367.0)
        );
        assert_eq!(
            parse_timestamp("\t2021-09-14 15:29:26+00:00 "),
            Some(1_631_633_366.0)
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "   ",
            "garbage",
            "now",
            "1631633366",
            "2018-09-27",
            "2018-09-27T14:26",
            "2018-09-27T14:26:07ZZ",
            "2018-09-27T14:26:07.",
            "2018-09-27T14:26:07.Z",
            "2018-09-27T14:26:07 Z",
            "2018-09-27T14:26:07+1",
            "2018-09-27T14:26:07+123",
            "2018-09-27T14:26:07+00:0",
            "2018-09-27T14:26:07+24:00",
            "2018-09-27T14:26:07+00:60",
            "2018-09-27X14:26:07",
            "2018/09/27T14:26:07",
            "2018-13-27T14:26:07",
            "2018-02-30T14:26:07",
            "2018-09-27T24:00:00",
            "2018-09-27T14:60:07",
            "2018-09-27T14:26:61",
            "+018-09-27T14:26:07",
            "2018-09-27T14:26:07garbage",
            "2018-09-27T14:26:07.5.5",
            "２０１８-09-27T14:26:07",
            "2018-09-27T14:26:0７",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s:?}");
        }
    }
}
