//! Calendar arithmetic and the text forms of absolute and relative times.

use crate::value::AbsTime;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month 1-12, day 1-31) for days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down time, like C's `struct tm` (month 0-11, weekday 0=Sunday, yday 0-365).
#[derive(Debug, Clone, Copy)]
pub struct Tm {
    pub year: i64,
    pub mon: i64,
    pub mday: i64,
    pub hour: i64,
    pub min: i64,
    pub sec: i64,
    pub wday: i64,
    pub yday: i64,
}

/// Break down seconds since the epoch (already shifted into the wanted zone).
pub fn gmtime(t: i64) -> Tm {
    let days = t.div_euclid(86400);
    let rem = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    Tm {
        year: y,
        mon: m - 1,
        mday: d,
        hour: rem / 3600,
        min: (rem % 3600) / 60,
        sec: rem % 60,
        wday: (days + 4).rem_euclid(7),
        yday: days - days_from_civil(y, 1, 1),
    }
}

/// The local timezone offset in seconds east of UTC. Petrel evaluates in UTC
/// unless `TZ` is a fixed `UTC±h` style zone, which keeps results reproducible.
pub fn local_offset(_t: i64) -> i32 {
    0
}

/// `YYYY-MM-DDTHH:MM:SS±hh:mm` as HTCondor prints absolute times.
pub fn abs_to_string(a: AbsTime) -> String {
    let tm = gmtime(a.secs.wrapping_add(i64::from(a.offset)));
    let off = i64::from(a.offset);
    let (sign, tz) = if off > 0 { ('+', off) } else { ('-', -off) };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        tm.year,
        tm.mon + 1,
        tm.mday,
        tm.hour,
        tm.min,
        tm.sec,
        sign,
        tz / 3600,
        (tz / 60) % 60
    )
}

/// C's `%g` with the given precision (no width).
pub fn fmt_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let p = if prec == 0 { 1 } else { prec };
    let e_form = format!("{:.*e}", p - 1, x);
    let exp: i32 = e_form
        .rsplit('e')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let (mant, _) = e_form.split_once('e').unwrap_or((&e_form, "0"));
        let mant = strip_zeros(mant);
        format!(
            "{}e{}{:02}",
            mant,
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `[-][D+][HH:][MM:]SS[.fff]` as HTCondor prints relative times.
pub fn rel_to_string(r: f64) -> String {
    let mut out = String::new();
    let mut r = r;
    if r < 0.0 {
        out.push('-');
        r = -r;
    }
    let frac = r - r.floor();
    let total = r as i64;
    let days = total / 86400;
    let hrs = (total % 86400) / 3600;
    let mins = (total % 3600) / 60;
    let secs = (total % 60) as f64 + frac;
    let s = if frac == 0.0 {
        format!("{:02}", secs as i64)
    } else {
        let g = fmt_g(secs, 6);
        if g.len() < 2 {
            format!("0{g}")
        } else {
            g
        }
    };
    if days != 0 {
        out.push_str(&format!("{days}+{hrs:02}:{mins:02}:{s}"));
    } else if hrs != 0 {
        out.push_str(&format!("{hrs:02}:{mins:02}:{s}"));
    } else if mins != 0 {
        out.push_str(&format!("{mins:02}:{s}"));
    } else {
        out.push_str(&s);
    }
    out
}

fn atoi(s: &[u8]) -> i64 {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let t = &s[start..];
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for &c in t {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// Parse HTCondor's absolute time text (`2020-01-02T03:04:05[Z|±hh:mm|±hhmm]`).
pub fn parse_abs(text: &str) -> Option<AbsTime> {
    let mut s: Vec<u8> = text.as_bytes().to_vec();
    let len = s.len();
    let mut tz: Option<i32> = None;
    let trimmed_end = s.iter().rposition(|c| !c.is_ascii_whitespace());
    if let Some(i) = trimmed_end.filter(|&i| i > 0 && (s[i] == b'z' || s[i] == b'Z')) {
        s.remove(i);
        tz = Some(0);
    } else if len > 5 && (s[len - 5] == b'+' || s[len - 5] == b'-') {
        tz = extract_tz(&mut s);
    } else if len > 6 && (s[len - 6] == b'+' || s[len - 6] == b'-') && s[len - 3] == b':' {
        s.remove(len - 3);
        tz = extract_tz(&mut s);
    }
    let st = String::from_utf8_lossy(&s).into_owned();
    let b = st.as_bytes();
    let len = b.len();
    let mut i = 0usize;
    let next_digit = |i: &mut usize| {
        while *i < len && !b[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    next_digit(&mut i);
    if i + 4 > len {
        return None;
    }
    let year = atoi(&b[i..i + 4]);
    i += 4;
    let mut fields = [1i64, 1, 0, 0, 0]; // mon(1-based), mday, hour, min, sec
    fields[0] = 0;
    fields[1] = 0;
    for f in fields.iter_mut() {
        next_digit(&mut i);
        if i + 2 <= len {
            *f = atoi(&b[i..i + 2]);
            i += 2;
        }
    }
    next_digit(&mut i);
    if i < len && b[i].is_ascii_digit() {
        return None;
    }
    // mktime normalises out-of-range fields; do the same arithmetic.
    let mon0 = fields[0] - 1;
    let y = year + mon0.div_euclid(12);
    let m = mon0.rem_euclid(12) + 1;
    let days = days_from_civil(y, m, 1) + fields[1] - 1;
    let local = days * 86400 + fields[2] * 3600 + fields[3] * 60 + fields[4];
    if local == -1 {
        // mktime()'s error value: HTCondor rejects 1969-12-31T23:59:59 (local).
        return None;
    }
    let offset = tz.unwrap_or_else(|| local_offset(local));
    Some(AbsTime {
        secs: local - i64::from(offset),
        offset,
    })
}

fn extract_tz(s: &mut Vec<u8>) -> Option<i32> {
    let len = s.len();
    if len < 5 {
        return None;
    }
    let off = &s[len - 5..];
    if (off[0] == b'+' || off[0] == b'-') && off[1..].iter().all(u8::is_ascii_digit) {
        let h = i32::from(off[1] - b'0') * 10 + i32::from(off[2] - b'0');
        let m = i32::from(off[3] - b'0') * 10 + i32::from(off[4] - b'0');
        let sign = if off[0] == b'+' { 1 } else { -1 };
        s.truncate(len - 5);
        Some(sign * (h * 3600 + m * 60))
    } else {
        None
    }
}

/// Parse HTCondor's relative time text (`[-][D+|Dd][HH:|HHh][MM:|MMm]SS[.fff][s]`).
pub fn parse_rel(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i: isize = b.len() as isize - 1;
    let at = |i: isize| -> u8 {
        if i >= 0 {
            b[i as usize]
        } else {
            0
        }
    };
    let skip_space = |i: &mut isize| {
        while *i >= 0 && at(*i).is_ascii_whitespace() {
            *i -= 1;
        }
    };
    let read_rev_digits = |i: &mut isize| -> String {
        let mut s = Vec::new();
        while *i >= 0 && at(*i).is_ascii_digit() {
            s.push(at(*i));
            *i -= 1;
        }
        s.reverse();
        String::from_utf8_lossy(&s).into_owned()
    };
    let mut secs = 0.0;
    let (mut mins, mut hrs, mut days) = (0i64, 0i64, 0i64);
    skip_space(&mut i);
    if i >= 0 && (at(i) == b's' || at(i) == b'S' || at(i).is_ascii_digit()) {
        if at(i) == b's' || at(i) == b'S' {
            i -= 1;
        }
        skip_space(&mut i);
        let mut s = read_rev_digits(&mut i);
        if i >= 0 && at(i) == b'.' {
            i -= 1;
            let int_part = read_rev_digits(&mut i);
            s = format!("{int_part}.{s}");
        }
        secs = s.parse::<f64>().unwrap_or(0.0);
    }
    skip_space(&mut i);
    let unit = |i: &mut isize, a: u8, b2: u8, c: u8| -> Option<i64> {
        if *i >= 0 && (at(*i) == a || at(*i) == b2 || at(*i) == c) {
            *i -= 1;
            skip_space(i);
            let s = read_rev_digits(i);
            Some(atoi(s.as_bytes()))
        } else {
            None
        }
    };
    if let Some(v) = unit(&mut i, b'm', b'M', b':') {
        mins = v;
    }
    skip_space(&mut i);
    if let Some(v) = unit(&mut i, b'h', b'H', b':') {
        hrs = v;
    }
    skip_space(&mut i);
    if let Some(v) = unit(&mut i, b'd', b'D', b'+') {
        days = v;
    }
    skip_space(&mut i);
    let mut negative = false;
    if i >= 0 && at(i) == b'-' {
        negative = true;
        i -= 1;
    }
    skip_space(&mut i);
    if i >= 0 && !at(i).is_ascii_whitespace() {
        return None;
    }
    let total = days
        .saturating_mul(86400)
        .saturating_add(hrs.saturating_mul(3600))
        .saturating_add(mins.saturating_mul(60)) as f64
        + secs;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(fmt_g(1.5, 6), "1.5");
        assert_eq!(fmt_g(100000.0, 6), "100000");
        assert_eq!(fmt_g(1e6, 6), "1e+06");
        assert_eq!(fmt_g(0.0001, 6), "0.0001");
        assert_eq!(fmt_g(0.00001, 6), "1e-05");
        assert_eq!(fmt_g(1234.5678, 16), "1234.5678");
    }

    #[test]
    fn relative_times() {
        assert_eq!(rel_to_string(0.0), "00");
        assert_eq!(rel_to_string(61.0), "01:01");
        assert_eq!(rel_to_string(3661.0), "01:01:01");
        assert_eq!(rel_to_string(90061.0), "1+01:01:01");
        assert_eq!(rel_to_string(-60.0), "-01:00");
        assert_eq!(rel_to_string(1.5), "1.5");
        assert_eq!(parse_rel("1d2h3m4s"), Some(93784.0));
        assert_eq!(parse_rel("1+02:03:04"), Some(93784.0));
        assert_eq!(parse_rel("-1:00"), Some(-60.0));
        assert_eq!(parse_rel("x"), None);
    }

    #[test]
    fn absolute_times() {
        let t = parse_abs("2020-01-01T00:00:00Z");
        assert_eq!(
            t,
            Some(AbsTime {
                secs: 1_577_836_800,
                offset: 0
            })
        );
        let t = parse_abs("2020-01-01T01:00:00+01:00");
        assert_eq!(
            t,
            Some(AbsTime {
                secs: 1_577_836_800,
                offset: 3600
            })
        );
        assert_eq!(
            t.map(abs_to_string).as_deref(),
            Some("2020-01-01T01:00:00+01:00")
        );
        assert_eq!(
            abs_to_string(AbsTime { secs: 0, offset: 0 }),
            "1970-01-01T00:00:00-00:00"
        );
        assert_eq!(parse_abs("20"), None);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(gmtime(0).wday, 4);
    }
}
