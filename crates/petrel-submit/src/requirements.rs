//! The Requirements expression: the user's `requirements` in parentheses, followed by the
//! clauses condor_submit appends unless the user's expression already refers to the
//! attribute: architecture and operating system (or `HasContainer`/`HasDocker` and the
//! image kind for container jobs), disk, memory, CPUs, custom resources (`request_<tag>`),
//! and file transfer or a shared file system, with the URL schemes input files need.

use crate::to_ads::{check_expr, Builder, Topping, R};

/// Attribute names an expression refers to: `(target-or-unscoped, my-scoped)`, lowercase.
fn references(e: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = e.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let word = e[start..i].to_ascii_lowercase();
            let rest = &e[i..];
            if rest.trim_start().starts_with('(') {
                continue; // a function call
            }
            if let Some(a) = word.strip_prefix("target.") {
                out.push(a.to_string());
            } else if word.starts_with("my.") {
                // refers to the job itself
            } else if !matches!(
                word.as_str(),
                "true" | "false" | "undefined" | "error" | "is" | "isnt"
            ) {
                out.push(word);
            }
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

/// Whether `e` is an expression, or a literal number above `min`.
fn exceeds(e: &str, min: f64) -> bool {
    match literal_number(e) {
        Some(v) => v > min,
        None => true,
    }
}

fn literal_number(e: &str) -> Option<f64> {
    e.trim().parse::<f64>().ok()
}

pub(crate) fn set_requirements(b: &mut Builder) -> R<()> {
    if b.macros.get("MY.Requirements").is_some() {
        return Ok(());
    }
    let user = b.param("requirements", None)?;
    let mut ans = String::new();
    if let Some(u) = &user {
        check_expr(u, "requirements")?;
        ans = format!("({u})");
    }
    let refs = user.as_deref().map(references).unwrap_or_default();
    let has = |a: &str| refs.iter().any(|r| r == a);
    let arch = format!("(TARGET.Arch == \"{}\")", b.s.arch);
    let and = |ans: &mut String, clause: &str| {
        if !ans.is_empty() {
            ans.push_str(" && ");
        }
        ans.push_str(clause);
    };
    match b.topping {
        Topping::Docker | Topping::Container => {
            if !has("arch") {
                and(&mut ans, &arch);
            }
            if b.ad.contains("ContainerRuntime") {
                and(
                    &mut ans,
                    "stringListIMember(MY.ContainerRuntime, TARGET.ContainerRuntimes)",
                );
            }
            if b.topping == Topping::Docker {
                and(&mut ans, "TARGET.HasDocker");
            } else {
                and(&mut ans, "TARGET.HasContainer");
                if b.ad.contains("DockerImage") || b.ad.contains("WantDockerImage") {
                    and(&mut ans, "TARGET.HasDockerURL");
                } else if b.ad.contains("WantSIF") {
                    and(&mut ans, "TARGET.HasSIF");
                } else {
                    // HTCondor calls anything else a sandbox; petrel runs squashfs files and
                    // OCI layouts too, but only where a runtime for them is advertised.
                    let image = b.ad.get_string("ContainerImage").unwrap_or_default();
                    let lower = image.trim().to_ascii_lowercase();
                    let has = if lower.ends_with(".sqfs") || lower.ends_with(".squashfs") {
                        "TARGET.HasSquashfs"
                    } else if lower.starts_with("oci:")
                        || b.ad.get_string("ContainerImageSource").as_deref() == Some("oci")
                    {
                        "TARGET.HasOCILayout"
                    } else {
                        "TARGET.HasSandboxImage"
                    };
                    and(&mut ans, has);
                }
            }
        }
        Topping::None => {
            if b.universe == 10 {
                and(&mut ans, "TARGET.HasJava");
            } else {
                if !has("arch") {
                    and(&mut ans, &arch);
                }
                let checks_opsys = [
                    "opsys",
                    "opsysandver",
                    "opsyslongname",
                    "opsysshortname",
                    "opsysname",
                    "opsyslegacy",
                ]
                .iter()
                .any(|a| has(a));
                if !checks_opsys {
                    and(&mut ans, &format!("(TARGET.OpSys == \"{}\")", b.s.opsys));
                }
            }
        }
    }
    if !has("disk") {
        match b.ad.get("RequestDisk") {
            Some(d) if exceeds(d, 0.0) => and(&mut ans, "(TARGET.Disk >= RequestDisk)"),
            Some(_) => {}
            None => and(&mut ans, "(TARGET.Disk >= DiskUsage)"),
        }
    } else if b.ad.contains("RequestDisk") {
        and(&mut ans, "(TARGET.Disk >= RequestDisk)");
    }
    if let Some(m) = b.ad.get("RequestMemory") {
        if exceeds(m, 1.0) {
            and(&mut ans, "(TARGET.Memory >= RequestMemory)");
        }
    }
    if !has("cpus") {
        if let Some(c) = b.ad.get("RequestCpus") {
            if exceeds(c, 1.0) {
                and(&mut ans, "(TARGET.Cpus >= RequestCpus)");
            }
        }
    }
    // custom resources: Request<tag> other than Cpus, Disk, Memory, sorted case-insensitively
    let mut tags: Vec<(String, String)> =
        b.ad.iter()
            .filter(|(k, _)| {
                k.len() >= 9 && k[..7].eq_ignore_ascii_case("request") && !k[7..].starts_with('_')
            })
            .filter(|(k, _)| {
                !matches!(
                    k[7..].to_ascii_lowercase().as_str(),
                    "cpus" | "disk" | "memory"
                )
            })
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    tags.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    for (attr, v) in tags {
        let tag = &attr[7..];
        if has(&tag.to_ascii_lowercase()) {
            continue;
        }
        if v.trim().starts_with('"') {
            if v.trim().len() > 2 {
                and(&mut ans, &format!("regexp({attr}, TARGET.{tag})"));
            }
        } else if exceeds(&v, 0.0) {
            let require = format!("Require{tag}");
            if b.ad.contains(&require) {
                and(
                    &mut ans,
                    &format!("(countMatches(MY.{require},TARGET.Available{tag}) >= {attr})"),
                );
            } else {
                and(&mut ans, &format!("(TARGET.{tag} >= {attr})"));
            }
        }
    }
    if b.ad.get("EncryptExecuteDirectory") == Some("true") && !has("hasencryptexecutedirectory") {
        and(&mut ans, "TARGET.HasEncryptExecuteDirectory");
    }
    if !matches!(b.universe, 7 | 12) {
        let stf =
            b.ad.get_string("ShouldTransferFiles")
                .unwrap_or_else(|| "IF_NEEDED".into());
        let checks_fsd = has("filesystemdomain");
        let checks_ft = has("hasfiletransfer") || has("hasjobtransferplugins");
        let domain = "(TARGET.FileSystemDomain == MY.FileSystemDomain)";
        if stf == "NO" {
            if !checks_fsd {
                and(&mut ans, domain);
            }
        } else if !checks_ft {
            let xfer = if b
                .ad
                .get_string("TransferPlugins")
                .is_some_and(|p| !p.is_empty())
            {
                "TARGET.HasJobTransferPlugins"
            } else {
                "TARGET.HasFileTransfer"
            };
            let mut clause = xfer.to_string();
            let encrypt = [
                "EncryptInputFiles",
                "EncryptOutputFiles",
                "DontEncryptInputFiles",
                "DontEncryptOutputFiles",
            ]
            .iter()
            .any(|a| b.ad.contains(a));
            if encrypt && !has("hasperfileencryption") {
                clause.push_str(" && TARGET.HasPerFileEncryption");
            }
            let version_check = b.ad.contains("TransferCheckpoint")
                || b.ad.get("PreserveRelativePaths") == Some("true")
                || b.ad.get_string("WhenToTransferOutput").as_deref() == Some("ON_SUCCESS");
            if version_check {
                clause.push_str(" && versioncmp(split(TARGET.CondorVersion)[1], \"8.9.7\") >= 0");
            }
            // URL schemes the job's transfer plugins do not supply
            let mut methods: Vec<String> = Vec::new();
            let inputs = b.ad.get_string("TransferInput").unwrap_or_default();
            for f in inputs.split(',') {
                if let Some((scheme, _)) = f.trim().split_once("://") {
                    let s = scheme.to_ascii_lowercase();
                    if !methods.contains(&s) {
                        methods.push(s);
                    }
                }
            }
            let scheme_of = |u: &str| {
                u.trim()
                    .split_once("://")
                    .map(|(s, _)| s.to_ascii_lowercase())
            };
            if let Some(dest) = b.ad.get_string("OutputDestination") {
                if let Some(s) = scheme_of(&dest) {
                    if !methods.contains(&s) {
                        methods.push(s);
                    }
                }
            }
            if let Some(remaps) = b.ad.get_string("TransferOutputRemaps") {
                for r in remaps.split(';') {
                    if let Some(s) = r.split_once('=').and_then(|(_, to)| scheme_of(to)) {
                        if !methods.contains(&s) {
                            methods.push(s);
                        }
                    }
                }
            }
            let plugs = b.ad.get_string("TransferPlugins").unwrap_or_default();
            methods.retain(|m| {
                !plugs.split(';').any(|p| {
                    p.split_once('=').is_some_and(|(ms, _)| {
                        ms.split(',').any(|x| x.trim().eq_ignore_ascii_case(m))
                    })
                })
            });
            methods.sort();
            if !methods.is_empty() {
                b.ad.insert_string("WantTransferPluginMethods", &methods.join(","));
            }
            for m in &methods {
                clause.push_str(&format!(
                    " && stringListIMember(\"{m}\",TARGET.HasFileTransferPluginMethods)"
                ));
            }
            if stf == "IF_NEEDED" && !checks_fsd {
                and(&mut ans, &format!("({domain} || ({clause}))"));
            } else {
                and(&mut ans, &format!("({clause})"));
            }
        }
    }
    if b.ad.get("WantFTOnCheckpoint") == Some("true") && !has("hasselfcheckpointtransfers") {
        and(&mut ans, "TARGET.HasSelfCheckpointTransfers");
    }
    if let Some(cuda) = b.ad.get_string("CUDAVersion") {
        let parsed = match cuda.split_once('.') {
            Some((maj, min)) => match (maj.parse::<u64>(), min.parse::<u64>()) {
                (Ok(a), Ok(m)) if !maj.starts_with('+') && !min.starts_with('+') => {
                    Some(a * 1000 + m % 100)
                }
                _ => None,
            },
            None => cuda
                .parse::<u64>()
                .ok()
                .map(|a| if a < 1000 { a * 1000 } else { a }),
        };
        let Some(v) = parsed else {
            return Err(crate::to_ads::BuildError {
                kind: crate::error::ErrorKind::BadValue {
                    command: "cuda_version".into(),
                    value: cuda,
                    expected: "a version of the form x or x.y".into(),
                },
                key: Some("cuda_version".into()),
            });
        };
        b.ad.insert_int("CUDAVersion", v as i64);
        and(&mut ans, "CUDAVersion <= TARGET.CUDAMaxSupportedVersion");
    }
    b.ad.insert("Requirements", ans);
    Ok(())
}
