//! Job status and policy commands: `hold`, `notification`, `rank`, the periodic and
//! on-exit expressions, `max_retries`/`success_exit_code`/`retry_until` and the
//! `OnExitRemove` they imply, kill signals, concurrency limits and accounting groups.

use crate::error::ErrorKind;
use crate::to_ads::{check_expr, err, Builder, R};

pub(crate) fn set_job_status(b: &mut Builder) -> R<()> {
    if b.bool_param("hold", None)? == Some(true) {
        b.ad.insert_int("JobStatus", 5);
        b.ad.insert_string("HoldReason", "submitted on hold at user's request");
        b.ad.insert_int("HoldReasonCode", 15);
    }
    Ok(())
}

pub(crate) fn set_notification(b: &mut Builder) -> R<()> {
    if let Some(v) = b.param("notification", Some("JobNotification"))? {
        let n = match v.to_ascii_lowercase().as_str() {
            "never" | "0" => 0,
            "always" | "1" => 1,
            "complete" | "2" => 2,
            "error" | "3" => 3,
            _ => {
                return err(
                    ErrorKind::BadValue {
                        command: "notification".into(),
                        value: v,
                        expected: "never, always, complete or error".into(),
                    },
                    "notification",
                )
            }
        };
        b.ad.insert_int("JobNotification", n);
    }
    Ok(())
}

pub(crate) fn set_rank(b: &mut Builder) -> R<()> {
    let rank = match b.param("rank", None)? {
        Some(r) => Some(r),
        None => b.param("preferences", None)?,
    };
    if let Some(r) = rank {
        check_expr(&r, "rank")?;
        b.ad.insert("Rank", r);
    }
    Ok(())
}

fn expr_cmd(b: &mut Builder, key: &str, attr: &str) -> R<Option<String>> {
    let v = b.param(key, Some(attr))?;
    if let Some(e) = &v {
        check_expr(e, key)?;
        b.ad.insert(attr, e.clone());
    }
    Ok(v)
}

pub(crate) fn set_policy(b: &mut Builder) -> R<()> {
    expr_cmd(b, "periodic_hold", "PeriodicHold")?;
    expr_cmd(b, "periodic_hold_reason", "PeriodicHoldReason")?;
    expr_cmd(b, "periodic_hold_subcode", "PeriodicHoldSubCode")?;
    expr_cmd(b, "periodic_release", "PeriodicRelease")?;
    expr_cmd(b, "periodic_remove", "PeriodicRemove")?;
    expr_cmd(b, "periodic_vacate", "PeriodicVacate")?;
    if let Some(v) = b.param("leave_in_queue", Some("LeaveJobInQueue"))? {
        check_expr(&v, "leave_in_queue")?;
        b.ad.insert("LeaveJobInQueue", v);
    }
    // retries
    let erc = b.param("on_exit_remove", Some("OnExitRemove"))?;
    let ehc = b.param("on_exit_hold", Some("OnExitHold"))?;
    let int_param = |b: &Builder, key: &str, alt: &str| -> R<Option<i64>> {
        match b.param(key, Some(alt))? {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) => Ok(Some(n)),
                Err(_) => err(
                    ErrorKind::BadValue {
                        command: key.into(),
                        value: v,
                        expected: "an integer".into(),
                    },
                    key,
                ),
            },
        }
    };
    let retries = int_param(b, "max_retries", "JobMaxRetries")?;
    let success = int_param(b, "success_exit_code", "JobSuccessExitCode")?;
    let retry_until = b.param("retry_until", None)?;
    if retries.is_none() && success.is_none() && retry_until.is_none() {
        if let Some(e) = &erc {
            check_expr(e, "on_exit_remove")?;
            b.ad.insert("OnExitRemove", e.clone());
        }
        if let Some(e) = &ehc {
            check_expr(e, "on_exit_hold")?;
            b.ad.insert("OnExitHold", e.clone());
        }
    } else {
        b.ad.insert_int("JobMaxRetries", retries.unwrap_or(2));
        match &ehc {
            Some(e) => {
                check_expr(e, "on_exit_hold")?;
                b.ad.insert("OnExitHold", e.clone());
            }
            None => b.ad.insert_bool("OnExitHold", false),
        }
        let mut code = match success {
            Some(c) => {
                b.ad.insert_int("JobSuccessExitCode", c);
                "JobSuccessExitCode".to_string()
            }
            None => "0".to_string(),
        };
        if let Some(u) = &retry_until {
            check_expr(u, "retry_until")?;
            if let Ok(n) = u.parse::<i64>() {
                code.push_str(&format!(" || ExitCode is {n}"));
            } else {
                code.push_str(&format!(" || {}", wrap_for_or(u)));
            }
        }
        let mut rm = format!("NumJobCompletions > JobMaxRetries || ExitCode is {code}");
        if let Some(e) = &erc {
            check_expr(e, "on_exit_remove")?;
            rm.push_str(" || ");
            rm.push_str(&wrap_for_or(e));
        }
        b.ad.insert("OnExitRemove", rm);
    }
    expr_cmd(b, "on_exit_hold_reason", "OnExitHoldReason")?;
    expr_cmd(b, "on_exit_hold_subcode", "OnExitHoldSubCode")?;
    Ok(())
}

/// Parenthesizes an expression that would bind looser than `||` (a `?:` at top level).
fn wrap_for_or(e: &str) -> String {
    let mut depth = 0;
    let mut in_str = false;
    for c in e.chars() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            '?' if !in_str && depth == 0 => return format!("({e})"),
            _ => {}
        }
    }
    e.to_string()
}

pub(crate) fn set_kill_sig(b: &mut Builder) -> R<()> {
    if let Some(v) = b.param("kill_sig", Some("KillSig"))? {
        b.ad.insert_string("KillSig", &v);
    }
    if let Some(v) = b.param("remove_kill_sig", Some("RemoveKillSig"))? {
        b.ad.insert_string("RemoveKillSig", &v);
    }
    if let Some(v) = b.param("hold_kill_sig", Some("HoldKillSig"))? {
        b.ad.insert_string("HoldKillSig", &v);
    }
    Ok(())
}

pub(crate) fn set_concurrency_and_accounting(b: &mut Builder) -> R<()> {
    if let Some(v) = b.param("concurrency_limits", Some("ConcurrencyLimits"))? {
        let list: Vec<String> = v
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
            .collect();
        b.ad.insert_string("ConcurrencyLimits", &list.join(","));
    } else if let Some(v) = b.param("concurrency_limits_expr", None)? {
        check_expr(&v, "concurrency_limits_expr")?;
        b.ad.insert("ConcurrencyLimits", v);
    }
    let mut group = b.param("accounting_group", Some("AccountingGroup"))?;
    let nice = match b.param("nice_user", Some("NiceUser"))? {
        None => false,
        Some(v) => match crate::to_ads::parse_bool(&v) {
            Some(n) => n,
            None => {
                return err(
                    ErrorKind::BadValue {
                        command: "nice_user".into(),
                        value: v,
                        expected: "true or false".into(),
                    },
                    "nice_user",
                )
            }
        },
    };
    if nice {
        // HTCondor's NICE_USER_ACCOUNTING_GROUP_NAME; an explicit group wins
        if group.is_none() {
            group = Some("nice-user".into());
        }
        b.ad.insert_int("MaxJobRetirementTime", 0);
    }
    let user = b.param("accounting_group_user", Some("AcctGroupUser"))?;
    if group.is_none() && user.is_none() {
        return Ok(());
    }
    let user = user.unwrap_or_else(|| b.s.owner.clone());
    for (what, v) in [
        ("accounting_group", group.as_deref()),
        ("accounting_group_user", Some(user.as_str())),
    ] {
        if let Some(v) = v {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '@' || c == '"') {
                return err(
                    ErrorKind::BadValue {
                        command: what.into(),
                        value: v.into(),
                        expected: "a name without spaces, '@' or quotes".into(),
                    },
                    what,
                );
            }
        }
    }
    b.ad.insert_string("AcctGroupUser", &user);
    match group {
        Some(g) => {
            b.ad.insert_string("AcctGroup", &g);
            b.ad.insert_string("AccountingGroup", &format!("{g}.{user}"));
        }
        None => b.ad.insert_string("AccountingGroup", &user),
    }
    Ok(())
}
