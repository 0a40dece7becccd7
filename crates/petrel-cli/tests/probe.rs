//! `petrel probe`: one line per runtime, JSON for scripts, exit status 0 whatever it finds.

mod common;

use std::process::Command;

fn petrel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_petrel"))
        .args(args)
        .output()
        .expect("run petrel")
}

#[test]
fn one_line_per_runtime() {
    let out = petrel(&[
        "probe",
        "--runtime",
        "embedded",
        "--runtime",
        "no-such-rt-a",
    ]);
    assert_eq!(
        out.status.code(),
        Some(125),
        "an unknown runtime name is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown container runtime 'no-such-rt-a'")
    );

    let out = petrel(&["probe", "--runtime", "embedded", "--runtime", "apptainer"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("embedded "), "{text}");
    assert!(
        lines[0].contains(" available ") || lines[0].contains(" unavailable "),
        "{text}"
    );
    assert!(lines[1].starts_with("apptainer "), "{text}");
    if common::which("apptainer").is_none() {
        assert!(
            lines[1].contains("unavailable  apptainer is not installed"),
            "{text}"
        );
    }
}

#[test]
fn json_for_scripts() {
    let out = petrel(&[
        "probe",
        "--json",
        "--runtime",
        "embedded",
        "--runtime",
        "podman",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 2);
    assert_eq!(probes[0]["runtime"], "embedded");
    assert_eq!(probes[1]["runtime"], "podman");
    for p in probes {
        let health = p["health"].as_str().unwrap();
        assert!(
            ["healthy", "unhealthy", "undetected"].contains(&health),
            "{p}"
        );
        assert_eq!(p["reason"].is_null(), health == "healthy", "{p}");
    }
    let attrs = &v["attributes"];
    assert!(attrs["HasContainer"].is_boolean());
    let runtimes = attrs["ContainerRuntimes"].as_str().unwrap();
    assert_eq!(
        runtimes.split(',').filter(|s| !s.is_empty()).count(),
        probes.iter().filter(|p| p["health"] == "healthy").count()
    );
}
