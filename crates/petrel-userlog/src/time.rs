//! Event times in record headers.
//!
//! HTCondor's default (`DEFAULT_USERLOG_FORMAT_OPTIONS` unset means `ISO_DATE`) is
//! `YYYY-MM-DD HH:MM:SS` in the local time zone of the writer, with no zone shown:
//! `ULogEvent::formatHeader` calls `localtime()`, so `TZ` decides. `UTC` adds a `Z`
//! and `SUB_SECOND` adds `.mmm`. Readers turn local times back with the reader's zone
//! (`mktime`), so writer and reader must agree on the zone, as with HTCondor.

use std::time::SystemTime;

pub use jiff::tz::TimeZone;
use jiff::{civil, Timestamp};

/// How record headers show the event time.
#[derive(Debug, Clone)]
pub struct TimeFormat {
    /// `None` writes UTC with a trailing `Z` (HTCondor's `UTC` option); otherwise the
    /// local time of this zone, without a zone marker (the default).
    pub zone: Option<TimeZone>,
    /// Add milliseconds (HTCondor's `SUB_SECOND` option).
    pub sub_second: bool,
}

impl Default for TimeFormat {
    /// HTCondor's default: local time of the system zone (`TZ`, else
    /// `/etc/localtime`), whole seconds.
    fn default() -> Self {
        TimeFormat {
            zone: Some(TimeZone::system()),
            sub_second: false,
        }
    }
}

impl TimeFormat {
    /// Local time in `zone`, whole seconds.
    pub fn local(zone: TimeZone) -> Self {
        TimeFormat {
            zone: Some(zone),
            sub_second: false,
        }
    }

    /// UTC with a `Z` marker, whole seconds.
    pub fn utc() -> Self {
        TimeFormat {
            zone: None,
            sub_second: false,
        }
    }

    pub fn with_sub_second(mut self, on: bool) -> Self {
        self.sub_second = on;
        self
    }
}

/// The header's time text for `at`.
pub(crate) fn format_time(at: SystemTime, fmt: &TimeFormat) -> Result<String, String> {
    let ts = Timestamp::try_from(at).map_err(|e| e.to_string())?;
    let zoned = ts.to_zoned(fmt.zone.clone().unwrap_or(TimeZone::UTC));
    let mut out = zoned.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if fmt.sub_second {
        out.push_str(&format!(".{:03}", zoned.subsec_nanosecond() / 1_000_000));
    }
    if fmt.zone.is_none() {
        out.push('Z');
    }
    Ok(out)
}

/// Parse the time at the start of `s` (what follows `(c.p.s) `); returns the time and
/// the rest of the line after the separating space. Accepts what HTCondor's
/// `ULogEvent::readHeader` accepts: `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`, and
/// the legacy `MM/DD HH:MM:SS` (whose year is taken as the current one, as HTCondor
/// does), each with optional `.fraction` and `Z` or `±HH:MM`.
pub(crate) fn parse_time<'a>(s: &'a str, zone: &TimeZone) -> Result<(SystemTime, &'a str), String> {
    let (first, rest) = split_word(s);
    let b = first.as_bytes();
    let (date, time_text, rest) = if b.len() == 5 && b[2] == b'/' {
        let (time_text, rest) = split_word(rest);
        let month = num(&first[0..2], "month")?;
        let day = num(&first[3..5], "day")?;
        let year = Timestamp::now().to_zoned(zone.clone()).year();
        (civil_date(year, month, day)?, time_text, rest)
    } else if b.len() == 10 {
        let (time_text, rest) = split_word(rest);
        (parse_date(first)?, time_text, rest)
    } else if let Some((d, t)) = first.split_once('T') {
        (parse_date(d)?, t, rest)
    } else {
        return Err(format!("no event time in {:?}", clip(s)));
    };
    let (time, offset) = parse_clock(time_text)?;
    let dt = date.to_datetime(time);
    let ts = match offset {
        Some(off) => off.to_timestamp(dt).map_err(|e| e.to_string())?,
        None => zone
            .to_ambiguous_zoned(dt)
            .compatible()
            .map_err(|e| e.to_string())?
            .timestamp(),
    };
    Ok((SystemTime::from(ts), rest))
}

fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((w, rest)) => (w, rest),
        None => (s, ""),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn num(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("bad {what} {s:?} in event time"));
    }
    s.parse()
        .map_err(|_| format!("bad {what} {s:?} in event time"))
}

fn civil_date(year: i16, month: i64, day: i64) -> Result<civil::Date, String> {
    let m = i8::try_from(month).map_err(|_| format!("bad month {month}"))?;
    let d = i8::try_from(day).map_err(|_| format!("bad day {day}"))?;
    civil::Date::new(year, m, d).map_err(|e| format!("bad event date: {e}"))
}

fn parse_date(s: &str) -> Result<civil::Date, String> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return Err(format!("bad event date {s:?}"));
    }
    let year = i16::try_from(num(parts[0], "year")?).map_err(|_| format!("bad year in {s:?}"))?;
    civil_date(year, num(parts[1], "month")?, num(parts[2], "day")?)
}

/// `HH:MM:SS[.frac][Z|±HH:MM|±HHMM]` → clock time and an explicit offset if any.
fn parse_clock(s: &str) -> Result<(civil::Time, Option<jiff::tz::Offset>), String> {
    let (clock, offset) = if let Some(c) = s.strip_suffix('Z') {
        (c, Some(jiff::tz::Offset::UTC))
    } else if let Some(i) = s.rfind(['+', '-']) {
        let (c, off) = s.split_at(i);
        let sign: i32 = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("bad zone offset in event time {s:?}"));
        }
        let h = num(&digits[..2], "offset hours")? as i32;
        let m = num(&digits[2..], "offset minutes")? as i32;
        let off = jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60))
            .map_err(|e| e.to_string())?;
        (c, Some(off))
    } else {
        (s, None)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() != 3 {
        return Err(format!("bad event time {s:?}"));
    }
    let nanos = match frac {
        None => 0,
        Some(f) => {
            let f: String = f.chars().take(9).collect();
            let n = num(&f, "fraction")?;
            (n * 10i64.pow(9 - f.len() as u32)) as i32
        }
    };
    let field = |i: usize, what: &str| -> Result<i8, String> {
        i8::try_from(num(parts[i], what)?).map_err(|_| format!("bad {what} in {s:?}"))
    };
    let time = civil::Time::new(
        field(0, "hour")?,
        field(1, "minute")?,
        field(2, "second")?,
        nanos,
    )
    .map_err(|e| format!("bad event time {s:?}: {e}"))?;
    Ok((time, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn local_time_in_a_named_zone() {
        let tz = TimeZone::get("America/Chicago").expect("tzdata");
        // 2026-11-23 16:00:00 UTC is 10:00 in Chicago (CST, -6).
        let t = at(1_795_449_600);
        let s = format_time(t, &TimeFormat::local(tz.clone())).unwrap();
        assert_eq!(s, "2026-11-23 10:00:00");
        let (back, rest) = parse_time("2026-11-23 10:00:00 Job", &tz).unwrap();
        assert_eq!((back, rest), (t, "Job"));
    }

    #[test]
    fn utc_and_sub_second() {
        let t = at(1_795_449_600) + Duration::from_millis(250);
        let s = format_time(t, &TimeFormat::utc().with_sub_second(true)).unwrap();
        assert_eq!(s, "2026-11-23 16:00:00.250Z");
        let tz = TimeZone::get("Asia/Tokyo").unwrap();
        let (back, _) = parse_time(&format!("{s} x"), &tz).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn iso_with_t_and_offset() {
        let (t, rest) = parse_time("2026-11-23T10:00:00-06:00 Job", &TimeZone::UTC).unwrap();
        assert_eq!(t, at(1_795_449_600));
        assert_eq!(rest, "Job");
    }

    #[test]
    fn legacy_month_day() {
        let (t, rest) = parse_time("01/22 12:09:19 Job submitted", &TimeZone::UTC).unwrap();
        assert_eq!(rest, "Job submitted");
        let z = Timestamp::try_from(t).unwrap().to_zoned(TimeZone::UTC);
        assert_eq!((z.month(), z.day(), z.hour(), z.second()), (1, 22, 12, 19));
    }

    #[test]
    fn garbage_is_an_error() {
        for s in [
            "",
            "yesterday 10:00",
            "2026-13-01 10:00:00",
            "2026-11-23 25:00:00",
            "2026-11-23 10:00",
            "2026-11-23 10:00:00+1é1 x",
            "é/22 12:09:19 x",
            "2026-11-23 10:00:00.x1 x",
        ] {
            assert!(parse_time(s, &TimeZone::UTC).is_err(), "{s:?}");
        }
    }
}
