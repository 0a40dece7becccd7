//! Symmetric matching and ad printing (new syntax, old syntax, JSON)
//! compared with HTCondor's classad2.

mod common;

use serde_json::{json, Value as Json};

const JOB_REQS: &[&str] = &[
    "TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus && TARGET.HasDocker",
    "TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus",
    "TARGET.Arch == \"X86_64\" && TARGET.OpSys == \"LINUX\"",
    "Memory >= RequestMemory",
    "TARGET.HasDocker =?= true",
    "isUndefined(TARGET.GPUs) || TARGET.GPUs >= MY.RequestGPUs",
    "TARGET.GPUs >= MY.RequestGPUs",
    "member(TARGET.Name, {\"slot1@a\", \"slot2@b\"})",
    "regexp(\"^slot1\", TARGET.Name)",
    "TARGET.Memory > 1000 || TARGET.Unknown",
    "(TARGET.Memory * 2 > MY.RequestMemory) ? true : false",
    "TARGET.Requirements",
    "MY.RequestCpus <= TARGET.Cpus && TARGET.Memory >= 1024 * MY.RequestCpus",
    "TARGET.Owner == MY.Owner",
    "true",
    "false",
    "undefined",
];
const SLOT_REQS: &[&str] = &[
    "TARGET.RequestMemory <= MY.Memory",
    "true",
    "TARGET.Owner =!= \"mallory\"",
    "MY.Cpus >= TARGET.RequestCpus",
    "RequestCpus <= Cpus",
    "TARGET.JobUniverse == 5 || TARGET.JobUniverse =?= undefined",
    "START",
    "target.requestmemory < my.memory && other.requestcpus <= ad.cpus",
];

fn pick<'a>(state: &mut u64, xs: &[&'a str]) -> &'a str {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    xs[((*state >> 33) % xs.len() as u64) as usize]
}

fn ads() -> (Vec<String>, Vec<String>) {
    let mut st = 42u64;
    let mut jobs = Vec::new();
    for i in 0..60 {
        let req = pick(&mut st, JOB_REQS);
        let mem = pick(
            &mut st,
            &[
                "512",
                "1024",
                "2048",
                "4096",
                "8192",
                "undefined",
                "\"big\"",
            ],
        );
        let cpus = pick(&mut st, &["1", "2", "4", "8", "1.5"]);
        let owner = pick(&mut st, &["\"alice\"", "\"bob\"", "\"mallory\""]);
        jobs.push(format!(
            "[ ClusterId = {i}; ProcId = 0; RequestMemory = {mem}; RequestCpus = {cpus}; RequestGPUs = 1; Owner = {owner}; JobUniverse = 5; Requirements = {req} ]"
        ));
    }
    let mut slots = Vec::new();
    for i in 0..25 {
        let req = pick(&mut st, SLOT_REQS);
        let mem = pick(&mut st, &["1024", "2048", "4096", "16384"]);
        let cpus = pick(&mut st, &["1", "2", "8"]);
        let docker = pick(&mut st, &["true", "false", "undefined"]);
        let gpus = pick(&mut st, &["", "GPUs = 2;", "GPUs = 0;"]);
        slots.push(format!(
            "[ Name = \"slot{i}@a\"; Memory = {mem}; Cpus = {cpus}; HasDocker = {docker}; {gpus} Arch = \"X86_64\"; OpSys = \"LINUX\"; Owner = \"alice\"; START = TARGET.Owner == \"alice\"; Requirements = {req} ]"
        ));
    }
    (jobs, slots)
}

#[test]
fn symmetric_match_agrees_with_htcondor() {
    let (jobs, slots) = ads();
    let mut reqs: Vec<Json> = Vec::new();
    for j in &jobs {
        for s in &slots {
            reqs.push(json!({"op": "match", "left": j, "right": s}));
        }
        reqs.push(json!({"op": "eval", "expr": "TARGET.Memory - MY.RequestMemory", "ad": j, "target": slots[0]}));
    }
    let Some(py) = common::oracle_python("symmetric_match_agrees_with_htcondor") else {
        return;
    };
    let oracle = common::run_oracle(&py, &reqs);
    let matched = oracle.iter().filter(|o| o["value"] == "true").count();
    assert!(
        matched > 50,
        "the corpus should contain matches, got {matched}"
    );
    common::assert_agree("match", &reqs, &oracle);
}

#[test]
fn ad_printing_agrees_with_htcondor() {
    let (jobs, slots) = ads();
    let mut reqs: Vec<Json> = jobs
        .iter()
        .chain(&slots)
        .map(|a| json!({"op": "ad", "ad": a}))
        .collect();
    for extra in [
        "[]",
        "[ a = { 1,[ x = \"q\\\"/\\n\"; y = {  } ],{  } }; b = [  ]; e = a + 1; r = 1.5; s = \"\\t\\001\"; t = absTime(\"2020-01-01T00:00:00Z\"); u = undefined; er = error; r0 = 0.0; rt = relTime(5); big = 1e100 ]",
        "[ 'odd name' = 1; 'true' = 2; Zed = 3; a_b = 4.25; neg = -3.5e-7; big = 123456789.125; tiny = 1e-300; s = \"é\\\\\" ]",
        "[ x = y; y = 7; z = \"foo\"; nested = [ a = [ b = {1, 2} ] ]; expr = a =?= b && !c || d ? e : f ?: g ]",
    ] {
        reqs.push(json!({"op": "ad", "ad": extra}));
    }
    let Some(py) = common::oracle_python("ad_printing_agrees_with_htcondor") else {
        return;
    };
    let oracle = common::run_oracle(&py, &reqs);
    common::assert_agree("ad-printing", &reqs, &oracle);
}

#[test]
fn json_input_agrees_with_htcondor() {
    let (jobs, slots) = ads();
    let mut docs: Vec<String> = jobs
        .iter()
        .chain(&slots)
        .filter_map(|a| petrel_classad::parse_classad(a).ok())
        .map(|ad| ad.to_json())
        .collect();
    for extra in [
        r#"{"a": 1, "b": "x\ny", "c": [1, 2.5, null], "d": {"e": true}, "f": "\/Expr(a + 1)\/", "g": 1e5, "h": 1.0}"#,
        r#"{"i": 12345678901234567890, "j": "/Expr(x)/", "k": -0.0, "l": "\u0041\t\"q\"", "m": [], "n": {}}"#,
        r#"{"Requirements": "\/Expr(TARGET.Memory >= 1024 && MY.x =?= undefined)\/", "r": "\/Expr(real(\"INF\"))\/"}"#,
        r#"{"Name": "slot1@host", "t": "\/Expr(absTime(\"2020-01-01T00:00:00Z\"))\/", "e": "\/Expr(error)\/"}"#,
    ] {
        docs.push(extra.to_string());
    }
    // Not compared: non-ASCII `\uXXXX` escapes, which classad2 25.14 decodes
    // to wrong bytes (`"\u00e9"` becomes "\003\001"); petrel decodes them as UTF-8.
    let reqs: Vec<Json> = docs
        .iter()
        .map(|d| json!({"op": "json_in", "json": d}))
        .collect();
    let Some(py) = common::oracle_python("json_input_agrees_with_htcondor") else {
        return;
    };
    let oracle = common::run_oracle(&py, &reqs);
    common::assert_agree("json-in", &reqs, &oracle);
}
