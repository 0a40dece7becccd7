//! `request_cpus`, `request_memory`, `request_disk`, `request_gpus` and `request_<tag>`.
//!
//! Memory is stored in MiB and disk in KiB, as HTCondor stores them. A number may carry a
//! unit (K/KB, M/MB, G/GB, T/TB, case-insensitive, fractions allowed, rounded up); a bare
//! number is MiB for memory and KiB for disk. Anything that is not a number is kept as a
//! ClassAd expression; a number followed by an unknown unit is an error.

use crate::error::ErrorKind;
use crate::to_ads::{check_expr, BuildError, ResourceCtx};

type R<T> = Result<T, BuildError>;

/// Parses `value` as a size with an optional unit, in units of `base` bytes (rounded up).
/// `Ok(None)`: not a number (an expression). `Err(unit)`: a number with an unknown unit.
pub fn parse_size(value: &str, base: i64) -> Result<Option<i64>, String> {
    let t = value.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let num = &t[..num_end];
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(None);
    }
    let Ok(n) = num.parse::<f64>() else {
        return Ok(None);
    };
    let unit = t[num_end..].trim();
    let mult: f64 = match unit.to_ascii_uppercase().as_str() {
        "" => base as f64,
        "K" | "KB" => 1024.0,
        "M" | "MB" => 1024.0 * 1024.0,
        "G" | "GB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" => 1024.0_f64.powi(4),
        _ => {
            // a number followed by operators is an expression (e.g. "2 * 1024")
            if unit.starts_with(|c: char| c.is_ascii_alphabetic())
                && unit.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(unit.to_string());
            }
            return Ok(None);
        }
    };
    // fraction precision matches HTCondor: three decimal digits
    let bytes = (n * 1000.0).trunc() / 1000.0 * mult;
    let v = ((bytes + (base - 1) as f64) / base as f64).trunc();
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(unit.to_string());
    }
    Ok(Some(v as i64))
}

fn size_cmd(ctx: &mut ResourceCtx, key: &str, attr: &str, base: i64, default: &str) -> R<()> {
    match ctx.param(key, Some(attr))? {
        Some(v) if v.eq_ignore_ascii_case("undefined") => Ok(()),
        Some(v) => insert_size(ctx, key, attr, v, base),
        None => {
            ctx.ad().insert(attr, default);
            Ok(())
        }
    }
}

/// Inserts `v` as a size converted to `base` units (`512M`, `2G`, a plain number), or as
/// the expression it is; a unit HTCondor does not know is an error naming the command.
fn insert_size(ctx: &mut ResourceCtx, key: &str, attr: &str, v: String, base: i64) -> R<()> {
    match parse_size(&v, base) {
        Ok(Some(n)) => ctx.ad().insert_int(attr, n),
        Ok(None) => {
            check_expr(&v, key)?;
            ctx.ad().insert(attr, v);
        }
        Err(unit) => {
            return Err(BuildError {
                kind: ErrorKind::BadUnit {
                    command: key.into(),
                    value: v,
                    unit,
                },
                key: Some(key.into()),
            })
        }
    }
    Ok(())
}

pub(crate) fn set_request_resources(ctx: &mut ResourceCtx) -> R<()> {
    match ctx.param("request_cpus", Some("RequestCpus"))? {
        Some(v) => {
            check_expr(&v, "request_cpus")?;
            ctx.ad().insert("RequestCpus", v);
        }
        None => ctx.ad().insert_int("RequestCpus", 1),
    }
    size_cmd(ctx, "request_disk", "RequestDisk", 1024, "DiskUsage")?;
    size_cmd(
        ctx,
        "request_memory",
        "RequestMemory",
        1024 * 1024,
        "ifthenelse(MemoryUsage isnt undefined,MemoryUsage,(ImageSize + 1023) / 1024)",
    )?;
    if let Some(v) = ctx.param("request_gpus", Some("RequestGPUs"))? {
        check_expr(&v, "request_gpus")?;
        ctx.ad().insert("RequestGPUs", v);
    }
    if ctx.ad().contains("RequestGPUs") {
        set_gpu_requirements(ctx)?;
    }
    for key in ctx.custom_request_keys() {
        let tag = &key["request_".len()..];
        if let Some(v) = ctx.param(&key, None)? {
            check_expr(&v, &key)?;
            let attr = format!("Request{tag}");
            ctx.ad().insert(attr, v);
        }
    }
    Ok(())
}

/// `require_gpus` and the GPU property commands, combined into `RequireGPUs`.
fn set_gpu_requirements(ctx: &mut ResourceCtx) -> R<()> {
    let require = ctx.param("require_gpus", Some("RequireGPUs"))?;
    if let Some(r) = &require {
        check_expr(r, "require_gpus")?;
        ctx.ad().insert("RequireGPUs", r.clone());
    }
    let mut clauses: Vec<&str> = Vec::new();
    let refs = |word: &str| {
        require
            .as_deref()
            .is_some_and(|r| r.to_ascii_lowercase().contains(&word.to_ascii_lowercase()))
    };
    for (key, attr, clause, prop) in [
        (
            "gpus_minimum_capability",
            "GPUsMinCapability",
            "Capability >= GPUsMinCapability",
            "Capability",
        ),
        (
            "gpus_maximum_capability",
            "GPUsMaxCapability",
            "Capability <= GPUsMaxCapability",
            "Capability",
        ),
        (
            "gpus_minimum_memory",
            "GPUsMinMemory",
            "GlobalMemoryMb >= GPUsMinMemory",
            "GlobalMemoryMb",
        ),
        (
            "gpus_minimum_runtime",
            "GPUsMinRuntime",
            "MaxSupportedVersion >= GPUsMinRuntime",
            "MaxSupportedVersion",
        ),
    ] {
        let Some(v) = ctx.param(key, Some(attr))? else {
            continue;
        };
        match key {
            "gpus_minimum_memory" => insert_size(ctx, key, attr, v, 1024 * 1024)?,
            "gpus_minimum_runtime" => match runtime_version(&v) {
                Some(n) => ctx.ad().insert_int(attr, n),
                None => {
                    check_expr(&v, key)?;
                    ctx.ad().insert(attr, v);
                }
            },
            _ => {
                check_expr(&v, key)?;
                ctx.ad().insert(attr, v);
            }
        }
        if !refs(prop) {
            clauses.push(clause);
        }
    }
    if !clauses.is_empty() {
        let joined = clauses.join(" && ");
        let value = match &require {
            Some(r) if top_level_or(r) => format!("({r}) && {joined}"),
            Some(r) => format!("{r} && {joined}"),
            None => joined,
        };
        ctx.ad().insert("RequireGPUs", value);
    }
    Ok(())
}

/// `12.1` → 12010, `12` → 12000, `12010` stays.
fn runtime_version(v: &str) -> Option<i64> {
    match v.split_once('.') {
        Some((a, b)) => {
            let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
            (0..100).contains(&b).then_some(a * 1000 + b * 10)
        }
        None => {
            let a: i64 = v.parse().ok()?;
            Some(if a > 1000 { a } else { a * 1000 })
        }
    }
}

/// Whether an expression has `||` or `?:` outside parentheses (it needs them before `&&`).
fn top_level_or(e: &str) -> bool {
    let mut depth = 0;
    let mut in_str = false;
    let b = e.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => depth -= 1,
            b'?' if !in_str && depth == 0 => return true,
            b'|' if !in_str && depth == 0 && b.get(i + 1) == Some(&b'|') => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let mib = 1024 * 1024;
        assert_eq!(parse_size("512", mib), Ok(Some(512)));
        assert_eq!(parse_size("1.5 GB", mib), Ok(Some(1536)));
        assert_eq!(parse_size("100K", mib), Ok(Some(1)));
        assert_eq!(parse_size("1T", mib), Ok(Some(1048576)));
        assert_eq!(parse_size("2M", 1024), Ok(Some(2048)));
        assert_eq!(parse_size("1GB", 1024), Ok(Some(1048576)));
        assert_eq!(parse_size("MemoryUsage * 2", mib), Ok(None));
        assert_eq!(parse_size("3 XB", mib), Err("XB".into()));
        assert_eq!(parse_size("2 * 1024", mib), Ok(None));
    }
}
