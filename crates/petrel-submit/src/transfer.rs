//! File transfer: `transfer_input_files` (plus a container image that travels with the job),
//! `transfer_output_files`, `transfer_output_remaps`, `should_transfer_files`,
//! `when_to_transfer_output`, and the sizes condor_submit records (`DiskUsage`,
//! `TransferInputSizeMB`).

use crate::error::ErrorKind;
use crate::to_ads::{err, file_kb, parse_bool, Builder, Topping, R};

pub(crate) fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn set_transfer(b: &mut Builder, exe_kb: i64) -> R<()> {
    let might_transfer = !matches!(b.universe, 7 | 12);
    let mut inputs: Vec<String> = match b.param("transfer_input_files", Some("TransferInput"))? {
        Some(v) => split_list(&v),
        None => Vec::new(),
    };
    let mut input_kb: i64 = inputs
        .iter()
        .filter(|f| !f.contains("://"))
        .map(|f| file_kb(&b.path_in_iwd(f)).unwrap_or(0))
        .sum();
    // the container image travels with the job unless it is shared or pulled
    let transfer_container = b.ad.get("TransferContainer") != Some("false");
    if b.topping == Topping::Container && !transfer_container {
        b.ad.insert_string("ContainerImageSource", "local");
    } else if b.topping == Topping::Container {
        if let Some(img) = b.ad.get_string("ContainerImage") {
            let transfer = transfer_container;
            let source = if !transfer
                || b.s
                    .container_shared_fs
                    .iter()
                    .any(|p| img.starts_with(p.as_str()))
            {
                "local".to_string()
            } else if let Some(scheme) = ["docker://", "oras://"]
                .iter()
                .find(|p| img.starts_with(**p))
            {
                scheme.trim_end_matches("://").to_string()
            } else {
                input_kb += file_kb(&b.path_in_iwd(&img)).unwrap_or(0);
                inputs.push(img.clone());
                let trimmed = img.strip_suffix('/').unwrap_or(&img);
                let base = trimmed.rsplit('/').next().unwrap_or(trimmed).to_string();
                b.ad.insert_string("ContainerImage", &base);
                match trimmed.find(':') {
                    Some(p) => trimmed[..p].to_string(),
                    None => "cedar".to_string(),
                }
            };
            b.ad.insert_string("ContainerImageSource", &source);
        }
    }
    if !inputs.is_empty() {
        b.ad.insert_string("TransferInput", &inputs.join(","));
    }
    // standard input travels with the job too
    if let Some(stdin) = b.ad.get_string("In") {
        if stdin != "/dev/null" && b.ad.get("TransferIn") != Some("false") {
            input_kb += file_kb(&b.path_in_iwd(&stdin)).unwrap_or(0);
        }
    }
    b.ad.insert_int("DiskUsage", (exe_kb + input_kb).max(exe_kb));
    b.ad.insert_int("TransferInputSizeMB", input_kb / 1024);
    if let Some(v) = b.param("transfer_output_files", Some("TransferOutput"))? {
        let l: Vec<String> = split_list(&v);
        b.ad.insert_string("TransferOutput", &l.join(","));
    }
    if let Some(v) = b.param("transfer_output_remaps", Some("TransferOutputRemaps"))? {
        let t = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(&v);
        b.ad.insert_string("TransferOutputRemaps", t);
    }
    let _ = might_transfer;
    let should = b.param("should_transfer_files", Some("ShouldTransferFiles"))?;
    let when = b.param("when_to_transfer_output", Some("WhenToTransferOutput"))?;
    let mut stf = match should.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => "IF_NEEDED".to_string(),
        Some(s @ ("YES" | "NO" | "IF_NEEDED")) => s.to_string(),
        Some(s) if parse_bool(s) == Some(true) => "YES".into(),
        Some(s) if parse_bool(s) == Some(false) => "NO".into(),
        Some(_) => {
            return err(
                ErrorKind::BadValue {
                    command: "should_transfer_files".into(),
                    value: should.unwrap_or_default(),
                    expected: "YES, NO or IF_NEEDED".into(),
                },
                "should_transfer_files",
            )
        }
    };
    let when_v = match when.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => "ON_EXIT".to_string(),
        Some(w @ ("ON_EXIT" | "ON_EXIT_OR_EVICT" | "ON_SUCCESS")) => w.to_string(),
        Some(_) => {
            return err(
                ErrorKind::BadValue {
                    command: "when_to_transfer_output".into(),
                    value: when.unwrap_or_default(),
                    expected: "ON_EXIT, ON_EXIT_OR_EVICT or ON_SUCCESS".into(),
                },
                "when_to_transfer_output",
            )
        }
    };
    if when_v == "ON_EXIT_OR_EVICT" && stf == "IF_NEEDED" && should.is_none() {
        stf = "YES".into();
    }
    if stf == "NO" && (b.ad.contains("TransferInput") || b.ad.contains("TransferOutput")) {
        let which = if b.ad.contains("TransferInput") {
            "transfer_input_files"
        } else {
            "transfer_output_files"
        };
        return err(
            ErrorKind::BadValue {
                command: "should_transfer_files".into(),
                value: "NO".into(),
                expected: format!(
                    "YES or IF_NEEDED, since {which} asks for files to be transferred"
                ),
            },
            "should_transfer_files",
        );
    }
    if stf == "IF_NEEDED" && should.is_some() && when_v == "ON_EXIT_OR_EVICT" {
        return err(
            ErrorKind::BadValue {
                command: "when_to_transfer_output".into(),
                value: when_v,
                expected:
                    "ON_EXIT when should_transfer_files = IF_NEEDED (ON_EXIT_OR_EVICT needs YES)"
                        .into(),
            },
            "when_to_transfer_output",
        );
    }
    if stf == "NO" && when.is_some() {
        return err(
            ErrorKind::BadValue {
                command: "when_to_transfer_output".into(),
                value: when_v,
                expected: "no when_to_transfer_output when should_transfer_files = NO".into(),
            },
            "when_to_transfer_output",
        );
    }
    b.ad.insert_string("ShouldTransferFiles", &stf);
    if stf != "NO" {
        b.ad.insert_string("WhenToTransferOutput", &when_v);
    }
    if stf != "YES" {
        b.ad.insert_string("FileSystemDomain", &b.s.filesystem_domain);
    }
    Ok(())
}
