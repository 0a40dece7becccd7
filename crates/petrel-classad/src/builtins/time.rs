//! Time functions: time, absTime, relTime, formatTime, interval,
//! currentTime, timeZoneOffset, dayTime, splitTime and the get* fields.
//!
//! Local time is UTC (see [`crate::timefmt::local_offset`]).

use std::sync::Arc;

use super::eval_args;
use crate::ast::Expr;
use crate::classad::ClassAd;
use crate::eval::{Evaluator, EV};
use crate::timefmt::{self, gmtime, Tm};
use crate::value::{AbsTime, Value};

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// C `strftime` for the common conversions, in the C locale.
pub fn strftime(fmt: &str, tm: &Tm, epoch: i64, offset: i32) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(k) = chars.next() else {
            out.push('%');
            break;
        };
        let h12 = if tm.hour % 12 == 0 { 12 } else { tm.hour % 12 };
        match k {
            'a' => out.push_str(&DAYS[tm.wday as usize][..3]),
            'A' => out.push_str(DAYS[tm.wday as usize]),
            'b' | 'h' => out.push_str(&MONTHS[tm.mon as usize][..3]),
            'B' => out.push_str(MONTHS[tm.mon as usize]),
            'c' => out.push_str(&strftime("%a %b %e %H:%M:%S %Y", tm, epoch, offset)),
            'C' => out.push_str(&format!("{:02}", tm.year / 100)),
            'd' => out.push_str(&format!("{:02}", tm.mday)),
            'D' => out.push_str(&strftime("%m/%d/%y", tm, epoch, offset)),
            'e' => out.push_str(&format!("{:2}", tm.mday)),
            'F' => out.push_str(&strftime("%Y-%m-%d", tm, epoch, offset)),
            'H' => out.push_str(&format!("{:02}", tm.hour)),
            'I' => out.push_str(&format!("{h12:02}")),
            'j' => out.push_str(&format!("{:03}", tm.yday + 1)),
            'k' => out.push_str(&format!("{:2}", tm.hour)),
            'l' => out.push_str(&format!("{h12:2}")),
            'm' => out.push_str(&format!("{:02}", tm.mon + 1)),
            'M' => out.push_str(&format!("{:02}", tm.min)),
            'n' => out.push('\n'),
            'p' => out.push_str(if tm.hour < 12 { "AM" } else { "PM" }),
            'r' => out.push_str(&strftime("%I:%M:%S %p", tm, epoch, offset)),
            'R' => out.push_str(&strftime("%H:%M", tm, epoch, offset)),
            's' => out.push_str(&epoch.to_string()),
            'S' => out.push_str(&format!("{:02}", tm.sec)),
            't' => out.push('\t'),
            'T' => out.push_str(&strftime("%H:%M:%S", tm, epoch, offset)),
            'u' => out.push_str(&(if tm.wday == 0 { 7 } else { tm.wday }).to_string()),
            'w' => out.push_str(&tm.wday.to_string()),
            'x' => out.push_str(&strftime("%m/%d/%y", tm, epoch, offset)),
            'X' => out.push_str(&strftime("%H:%M:%S", tm, epoch, offset)),
            'y' => out.push_str(&format!("{:02}", tm.year % 100)),
            'Y' => out.push_str(&tm.year.to_string()),
            'z' => {
                let off = i64::from(offset);
                let (s, o) = if off < 0 { ('-', -off) } else { ('+', off) };
                out.push_str(&format!("{s}{:02}{:02}", o / 3600, (o / 60) % 60));
            }
            'Z' => out.push_str(if offset == 0 { "UTC" } else { "" }),
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

/// `interval(secs)`: `[days+]hh:mm:ss` with leading zero fields dropped.
pub fn interval(secs: i64) -> String {
    let (neg, s) = if secs < 0 {
        ("-", secs.unsigned_abs())
    } else {
        ("", secs.unsigned_abs())
    };
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    if d > 0 {
        format!("{neg}{d}+{h:02}:{m:02}:{sec:02}")
    } else if h > 0 {
        format!("{neg}{h}:{m:02}:{sec:02}")
    } else if m > 0 {
        format!("{neg}{m}:{sec:02}")
    } else {
        format!("{neg}{sec}")
    }
}

fn abs_now() -> AbsTime {
    let t = now();
    AbsTime {
        secs: t,
        offset: timefmt::local_offset(t),
    }
}

pub(crate) fn call(ev: &mut Evaluator<'_>, n: &str, args: &[Expr], cur: usize) -> EV {
    let a = eval_args(ev, args, cur);
    match n {
        "time" => {
            if !a.is_empty() {
                return EV::ERR;
            }
            EV::S(Value::Int(now()))
        }
        "currenttime" => {
            if !a.is_empty() {
                return EV::ERR;
            }
            EV::S(Value::AbsTime(abs_now()))
        }
        "timezoneoffset" => {
            if !a.is_empty() {
                return EV::ERR;
            }
            EV::S(Value::RelTime(f64::from(timefmt::local_offset(now()))))
        }
        "daytime" => {
            if !a.is_empty() {
                return EV::ERR;
            }
            let tm = gmtime(now() + i64::from(timefmt::local_offset(now())));
            EV::S(Value::RelTime(
                (tm.hour * 3600 + tm.min * 60 + tm.sec) as f64,
            ))
        }
        "interval" => {
            if a.len() != 1 {
                return EV::ERR;
            }
            match super::to_int(&a[0]) {
                // HTCondor narrows to a C int here.
                Ok(i) => EV::S(Value::from(interval(i64::from(i as i32)))),
                Err(_) => EV::ERR,
            }
        }
        "formattime" => format_time(&a),
        "abstime" => abs_time(&a),
        "reltime" => {
            if a.len() != 1 {
                return EV::ERR;
            }
            match &a[0] {
                EV::S(Value::Undefined) => EV::UNDEF,
                EV::S(Value::String(s)) => {
                    timefmt::parse_rel(s).map_or(EV::ERR, |r| EV::S(Value::RelTime(r)))
                }
                EV::S(Value::Int(i)) => EV::S(Value::RelTime(*i as f64)),
                EV::S(Value::Real(r)) => EV::S(Value::RelTime(r.trunc())),
                EV::S(Value::RelTime(_)) => a[0].clone(),
                _ => EV::ERR,
            }
        }
        "splittime" => split_time(ev, &a),
        _ => get_field(n, &a),
    }
}

fn abs_time(a: &[EV]) -> EV {
    if a.is_empty() {
        return EV::S(Value::AbsTime(abs_now()));
    }
    if a.len() > 2 {
        return EV::ERR;
    }
    if a.iter().any(EV::is_undefined) {
        return EV::UNDEF;
    }
    let offset = match a.get(1) {
        None => None,
        Some(EV::S(Value::Int(o))) => Some(*o as i32),
        Some(EV::S(Value::RelTime(o))) => Some(*o as i32),
        Some(_) => return EV::ERR,
    };
    let base = match &a[0] {
        EV::S(Value::String(s)) => match timefmt::parse_abs(s) {
            Some(t) => t,
            None => return EV::ERR,
        },
        EV::S(Value::Int(i)) => AbsTime {
            secs: *i,
            offset: timefmt::local_offset(*i),
        },
        EV::S(Value::Real(r)) => AbsTime {
            secs: *r as i64,
            offset: timefmt::local_offset(*r as i64),
        },
        EV::S(Value::AbsTime(t)) => *t,
        _ => return EV::ERR,
    };
    EV::S(Value::AbsTime(match offset {
        Some(o) => AbsTime {
            secs: base.secs,
            offset: o,
        },
        None => base,
    }))
}

fn format_time(a: &[EV]) -> EV {
    if a.len() > 2 {
        return EV::ERR;
    }
    let (secs, offset) = match a.first() {
        None => {
            let t = abs_now();
            (t.secs, t.offset)
        }
        Some(EV::S(Value::Int(i))) => (*i, timefmt::local_offset(*i)),
        Some(EV::S(Value::Real(r))) => (*r as i64, timefmt::local_offset(*r as i64)),
        Some(EV::S(Value::AbsTime(t))) => (t.secs, t.offset),
        Some(_) => return EV::ERR,
    };
    let fmt = match a.get(1) {
        None => "%c".to_string(),
        Some(EV::S(Value::String(s))) => s.to_string(),
        Some(EV::S(Value::Undefined)) => return EV::UNDEF,
        Some(_) => return EV::ERR,
    };
    let tm = gmtime(secs.wrapping_add(i64::from(offset)));
    EV::S(Value::from(strftime(&fmt, &tm, secs, offset)))
}

fn get_field(n: &str, a: &[EV]) -> EV {
    if a.len() != 1 {
        return EV::ERR;
    }
    match &a[0] {
        EV::S(Value::AbsTime(t)) => {
            let tm = gmtime(t.secs.wrapping_add(i64::from(t.offset)));
            EV::S(Value::Int(match n {
                "getyear" => tm.year,
                "getmonth" => tm.mon + 1,
                "getdayofyear" => tm.yday,
                "getdayofmonth" => tm.mday,
                "getdayofweek" => tm.wday,
                "gethours" => tm.hour,
                "getminutes" => tm.min,
                "getseconds" => tm.sec,
                _ => return EV::ERR,
            }))
        }
        EV::S(Value::RelTime(r)) => {
            let s = *r as i64;
            EV::S(Value::Int(match n {
                "getdays" => s / 86400,
                "gethours" => (s % 86400) / 3600,
                "getminutes" => (s % 3600) / 60,
                "getseconds" => s % 60,
                _ => return EV::ERR,
            }))
        }
        EV::S(Value::Undefined) => EV::UNDEF,
        _ => EV::ERR,
    }
}

fn split_time(ev: &mut Evaluator<'_>, a: &[EV]) -> EV {
    if a.len() != 1 {
        return EV::ERR;
    }
    let mut ad = ClassAd::new();
    match &a[0] {
        EV::S(Value::AbsTime(t)) => {
            let tm = gmtime(t.secs.wrapping_add(i64::from(t.offset)));
            ad.insert_value("Type", "Absolute Time");
            ad.insert_value("Year", tm.year);
            ad.insert_value("Month", tm.mon + 1);
            ad.insert_value("Day", tm.mday);
            ad.insert_value("Hours", tm.hour);
            ad.insert_value("Minutes", tm.min);
            ad.insert_value("Seconds", tm.sec);
            ad.insert_value("Offset", i64::from(t.offset));
        }
        EV::S(Value::RelTime(r)) => {
            let s = *r as i64;
            ad.insert_value("Type", "Relative Time");
            ad.insert_value("Days", s / 86400);
            ad.insert_value("Hours", (s % 86400) / 3600);
            ad.insert_value("Minutes", (s % 3600) / 60);
            ad.insert_value("Seconds", (s % 60) as f64 + r.fract());
        }
        EV::S(Value::Undefined) => return EV::UNDEF,
        _ => return EV::ERR,
    }
    EV::Ad(ev.push_ad(Arc::new(ad), None))
}
