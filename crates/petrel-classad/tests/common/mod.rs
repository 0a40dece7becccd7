//! Shared helpers for the differential tests against HTCondor's classad2.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use petrel_classad::{
    matching, parse_classad, parse_expr, unparse, unparse_value, ClassAd, Semantics,
};
use serde_json::{json, Value as Json};

/// The oracle interpreter, or `None` (after printing why) when the test should skip.
/// With `PETREL_REQUIRE_ALL=1` a missing oracle is a failure.
pub fn oracle_python(test: &str) -> Option<PathBuf> {
    let require = std::env::var("PETREL_REQUIRE_ALL").is_ok_and(|v| v == "1");
    match std::env::var_os("PETREL_ORACLE_PY25") {
        Some(p) if PathBuf::from(&p).exists() => Some(PathBuf::from(p)),
        other => {
            let why = match other {
                Some(p) => format!(
                    "PETREL_ORACLE_PY25={} does not exist",
                    PathBuf::from(p).display()
                ),
                None => "PETREL_ORACLE_PY25 is not set".to_string(),
            };
            assert!(
                !require,
                "{test}: oracle required (PETREL_REQUIRE_ALL=1) but {why}"
            );
            println!("SKIP {test}: {why} (run scripts/test-deps.sh and set it to .cache/venvs/htcondor25/bin/python)");
            None
        }
    }
}

/// Send all requests to one oracle process; one response per request.
pub fn run_oracle(python: &PathBuf, requests: &[Json]) -> Vec<Json> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/oracle.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the oracle");
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("write to oracle");
    });
    let stdout = child.stdout.take().expect("oracle stdout");
    let out: Vec<Json> = BufReader::new(stdout)
        .lines()
        .map(|l| serde_json::from_str(&l.expect("read oracle")).expect("oracle JSON"))
        .collect();
    writer.join().expect("writer thread");
    let status = child.wait().expect("oracle exit");
    assert!(status.success(), "oracle failed: {status}");
    assert_eq!(
        out.len(),
        requests.len(),
        "oracle answered {} of {} requests",
        out.len(),
        requests.len()
    );
    out
}

/// Petrel's answer to the same request, in the oracle's format.
pub fn petrel_answer(req: &Json) -> Json {
    let op = req["op"].as_str().unwrap_or("");
    let ad_of = |k: &str| -> Result<Option<ClassAd>, String> {
        match req.get(k).and_then(Json::as_str) {
            Some(s) if !s.is_empty() => parse_classad(s).map(Some).map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    };
    let r: Result<String, String> = (|| match op {
        "eval" => {
            let e = parse_expr(req["expr"].as_str().unwrap_or(""))
                .map_err(|e| format!("parse: {e}"))?;
            let ad = ad_of("ad")?;
            let target = ad_of("target")?;
            let v = petrel_classad::eval_in(&e, ad.as_ref(), target.as_ref(), Semantics::Strict);
            Ok(unparse_value(&v))
        }
        "parse" => {
            let e = parse_expr(req["expr"].as_str().unwrap_or(""))
                .map_err(|e| format!("parse: {e}"))?;
            Ok(unparse(&e))
        }
        "match" => {
            let l = ad_of("left")?.unwrap_or_default();
            let r = ad_of("right")?.unwrap_or_default();
            Ok(matching::matches_with(&l, &r, Semantics::Strict).to_string())
        }
        "json_in" => {
            let ad = petrel_classad::json::ad_from_json(req["json"].as_str().unwrap_or(""))
                .map_err(|e| format!("parse: {e}"))?;
            Ok(ad.to_new_syntax())
        }
        "ad" => {
            let ad = ad_of("ad")?.unwrap_or_default();
            Ok(format!(
                "{}\u{0}{}\u{0}{}",
                ad.to_new_syntax(),
                ad.to_old_syntax(),
                ad.to_json()
            ))
        }
        _ => Err("unknown op".into()),
    })();
    match r {
        Ok(v) if op == "ad" => {
            let parts: Vec<&str> = v.split('\u{0}').collect();
            json!({"ok": true, "value": parts[0], "old": parts[1], "json": parts[2]})
        }
        Ok(v) => json!({"ok": true, "value": v}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

/// Compare oracle and petrel answers; returns human-readable disagreements.
pub fn compare(requests: &[Json], oracle: &[Json]) -> Vec<String> {
    let mut bad = Vec::new();
    for (req, o) in requests.iter().zip(oracle) {
        let p = petrel_answer(req);
        let o_ok = o["ok"].as_bool().unwrap_or(false);
        let p_ok = p["ok"].as_bool().unwrap_or(false);
        let o_err = o["error"].as_str().unwrap_or("");
        if o_ok && p_ok {
            if o["value"] != p["value"]
                || o.get("old") != p.get("old")
                || o.get("json") != p.get("json")
            {
                bad.push(format!(
                    "{req}\n    htcondor: {}\n    petrel:   {}",
                    o["value"], p["value"]
                ));
            }
        } else if o_ok != p_ok {
            // classad2 raises when evaluation itself fails (e.g. recursion
            // limits); only parse disagreements count then.
            let oracle_parse_failed = o_err.contains("parse");
            let petrel_parse_failed = p["error"].as_str().unwrap_or("").contains("parse");
            if oracle_parse_failed || petrel_parse_failed || o_ok {
                bad.push(format!("{req}\n    htcondor: {o}\n    petrel:   {p}"));
            }
        }
    }
    bad
}

/// Fail with a readable list of disagreements.
pub fn assert_agree(test: &str, requests: &[Json], oracle: &[Json]) {
    let bad = compare(requests, oracle);
    if !bad.is_empty() {
        let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{test}-disagreements.txt"));
        let _ = std::fs::write(&report, bad.join("\n"));
        let shown: Vec<&String> = bad.iter().take(60).collect();
        panic!(
            "{test}: {} of {} disagree with HTCondor (all in {}):\n{}",
            bad.len(),
            requests.len(),
            report.display(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    println!("{test}: {} requests agree with HTCondor", requests.len());
}
