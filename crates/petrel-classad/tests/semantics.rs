//! Behaviour that needs no oracle: functions HTCondor registers outside
//! the ClassAd library (string lists, split*), daemon ("compat") scoping,
//! syntax round trips, JSON, guard rails and error positions.

use petrel_classad::json::{ad_from_json, ads_from_json, ads_to_json};
use petrel_classad::parser::old_syntax::{parse_old_classad, parse_old_classads};
use petrel_classad::{
    eval_in, matching, parse_classad, parse_expr, parse_expr_with_limits, unparse_value, ClassAd,
    Error, ParseLimits, Semantics, Value,
};

fn ev(s: &str) -> String {
    let e = parse_expr(s).unwrap_or_else(|err| panic!("{s}: {err}"));
    unparse_value(&petrel_classad::eval(&e))
}

#[test]
fn string_list_functions() {
    let cases = [
        ("stringListSize(\"a, b, c\")", "3"),
        ("stringListSize(\"\")", "0"),
        ("stringListSize(\"a;b;c\", \";\")", "3"),
        ("stringListSize(undefined)", "undefined"),
        ("stringListSize(1)", "error"),
        ("stringListSum(\"1, 2, 3\")", "6"),
        ("stringListSum(\"1, 2.5\")", "3.500000000000000E+00"),
        ("stringListSum(\"1, x\")", "error"),
        ("stringListAvg(\"1, 2, 3, 4\")", "2.500000000000000E+00"),
        ("stringListMin(\"3, 1, 2\")", "1"),
        ("stringListMax(\"3, 10.5\")", "1.050000000000000E+01"),
        ("stringListMin(\"\")", "undefined"),
        ("stringListMember(\"b\", \"a, b, c\")", "true"),
        ("stringListMember(\"B\", \"a, b, c\")", "false"),
        ("stringListIMember(\"B\", \"a, b, c\")", "true"),
        ("stringListMember(\"b\", \"a;b;c\", \";\")", "true"),
        ("stringListsIntersect(\"a, b\", \"b, c\")", "true"),
        ("stringListsIntersect(\"a, b\", \"c, d\")", "false"),
        ("stringListSubsetMatch(\"a, b\", \"a, b, c\")", "true"),
        ("stringListSubsetMatch(\"a, d\", \"a, b, c\")", "false"),
        ("stringListISubsetMatch(\"A, B\", \"a, b, c\")", "true"),
        ("stringListRegexpMember(\"^b\", \"a, bc\")", "true"),
        ("split(\"a b,c\")", "{ \"a\",\"b\",\"c\" }"),
        ("split(\"a:b::c\", \":\")", "{ \"a\",\"b\",\"c\" }"),
        (
            "splitUserName(\"alice@example.org\")",
            "{ \"alice\",\"example.org\" }",
        ),
        ("splitUserName(\"alice\")", "{ \"alice\",\"\" }"),
        (
            "splitSlotName(\"slot1_2@host\")",
            "{ \"slot1_2\",\"host\" }",
        ),
        ("splitSlotName(\"host\")", "{ \"\",\"host\" }"),
        ("envV1ToV2(\"A=1;B=two words\")", "\"A=1 'B=two words'\""),
        ("envV1ToV2(\"bogus\")", "error"),
    ];
    for (e, want) in cases {
        assert_eq!(ev(e), want, "{e}");
    }
}

#[test]
fn time_functions_are_deterministic_given_a_time() {
    assert_eq!(
        ev("formatTime(0, \"%Y-%m-%dT%H:%M:%S %a %b %j\")"),
        "\"1970-01-01T00:00:00 Thu Jan 001\""
    );
    assert_eq!(
        ev("formatTime(absTime(\"2024-02-29T13:14:15Z\"), \"%D %T %p\")"),
        "\"02/29/24 13:14:15 PM\""
    );
    assert_eq!(ev("interval(90061)"), "\"1+01:01:01\"");
    assert_eq!(ev("getYear(absTime(\"2024-02-29T13:14:15Z\"))"), "2024");
    assert_eq!(ev("getDays(relTime(90061))"), "1");
    assert_eq!(ev("splitTime(relTime(90061)).Hours"), "1");
    assert_eq!(ev("isInteger(time())"), "true");
    assert_eq!(ev("isReal(random())"), "true");
    assert_eq!(ev("random(1)"), "0");
}

#[test]
fn compat_semantics_follow_htcondor_daemons() {
    let ad = parse_classad("[ a = 1; b = MY.a + 1 ]").unwrap_or_default();
    let e = parse_expr("MY.b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval_in(&e, Some(&ad), None, Semantics::Compat),
        Value::Int(2)
    );
    assert_eq!(
        eval_in(&e, Some(&ad), None, Semantics::Strict),
        Value::Undefined
    );
    let ct = parse_expr("CurrentTime > 0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        eval_in(&ct, Some(&ad), None, Semantics::Compat),
        Value::Bool(true)
    );

    // Unscoped names fall back to the other ad while matching.
    let job = parse_classad("[ RequestMemory = 100; Requirements = Memory >= RequestMemory ]")
        .unwrap_or_default();
    let slot = parse_classad("[ Memory = 200; Requirements = RequestMemory < Memory ]")
        .unwrap_or_default();
    assert!(matching::matches(&job, &slot));
    assert!(!matching::matches_with(&job, &slot, Semantics::Strict));
    let ranked =
        parse_classad("[ Rank = TARGET.Memory / 2; Requirements = true ]").unwrap_or_default();
    assert_eq!(matching::rank(&ranked, &slot), 100.0);
    assert_eq!(matching::matching_slots(&job, [&slot, &ranked]), vec![0]);
}

#[test]
fn old_syntax_round_trip() {
    let text = "ClusterId = 12\nOwner = \"alice\"\nCmd = \"/bin/echo \\\"hi\\\"\"\n\nRequirements = TARGET.Memory >= 1024 && MY.X =?= undefined\nRate = 1.5\nArgs = \"C:\\\\path\\\\\"\n";
    let ad = parse_old_classad(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ad.eval_string("Cmd").as_deref(), Some("/bin/echo \"hi\""));
    assert_eq!(ad.eval_string("Args").as_deref(), Some("C:\\\\path\\\\"));
    assert_eq!(ad.eval_int("clusterid"), Some(12));
    let printed = ad.to_old_syntax();
    assert!(
        printed.contains("Requirements = TARGET.Memory >= 1024 && MY.X =?= undefined\n"),
        "{printed}"
    );
    assert!(printed.contains("Rate = 1.5\n"), "{printed}");
    let again = parse_old_classad(&printed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, ad);

    let two = parse_old_classads("a = 1\nb = 2\n\na = 3\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].eval_int("a"), Some(3));
}

#[test]
fn json_round_trip() {
    let ad = parse_classad(
        "[ a = 1; b = \"x\\ny\"; c = {1, 2.5, \"s\"}; d = [e = true]; f = a + 1; g = undefined; h = error; r = 1e100 ]",
    )
    .unwrap_or_default();
    let j = ad.to_json();
    assert!(j.contains("\"f\": \"\\/Expr(a + 1)\\/\""), "{j}");
    assert!(j.contains("\"g\": null"), "{j}");
    let back = ad_from_json(&j).unwrap_or_else(|e| panic!("{e}: {j}"));
    assert_eq!(back.to_new_syntax(), ad.to_new_syntax());
    let many = ads_to_json(&[ad.clone(), ClassAd::new()]);
    assert_eq!(ads_from_json(&many).map(|v| v.len()), Ok(2));
    assert!(matches!(ad_from_json("[1]"), Err(Error::Json(_))));
}

#[test]
fn parse_errors_say_where_and_what() {
    match parse_classad("[\n  a = 1;\n  b = (2 + ;\n]") {
        Err(Error::Parse { pos, expected, .. }) => {
            assert_eq!((pos.line, pos.column), (3, 12));
            assert_eq!(expected, "an expression");
        }
        other => panic!("{other:?}"),
    }
    match parse_expr("f(1, 2") {
        Err(Error::Parse {
            expected, found, ..
        }) => {
            assert_eq!(expected, "',' or ')'");
            assert_eq!(found, "end of input");
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_old_classad("a = 1\nb = \"unterminated\n").is_err());
    assert!(matches!(parse_old_classad("x\n"), Err(Error::Parse { pos, .. }) if pos.line == 1));
}

#[test]
fn guard_rails() {
    // Deep nesting is a typed error, not a stack overflow.
    let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(parse_expr(&deep), Err(Error::TooDeep { .. })));
    let unary = format!("{}true", "!".repeat(100_000));
    assert!(matches!(parse_expr(&unary), Err(Error::TooDeep { .. })));
    let lists = format!("{}1{}", "{".repeat(50_000), "}".repeat(50_000));
    assert!(matches!(parse_expr(&lists), Err(Error::TooDeep { .. })));
    let chain = vec!["1"; 200_000].join(" + ");
    assert!(matches!(parse_expr(&chain), Err(Error::TooDeep { .. })));
    let small = ParseLimits {
        max_bytes: 10,
        ..ParseLimits::default()
    };
    assert!(matches!(
        parse_expr_with_limits("1 + 2 + 3 + 4", &small),
        Err(Error::TooLarge { .. })
    ));

    // A long (but parseable) chain evaluates to ERROR past the depth limit.
    let chain = vec!["1"; 900].join(" + ");
    let e = parse_expr(&chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(petrel_classad::eval(&e), Value::Error);
    let chain = vec!["1"; 300].join(" + ");
    let e = parse_expr(&chain).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(petrel_classad::eval(&e), Value::Int(300));

    // Reference cycles and long reference chains terminate.
    let mut ad = ClassAd::new();
    for i in 0..2000 {
        ad.insert_expr_str(&format!("a{i}"), &format!("a{} + 1", i + 1))
            .unwrap_or_default();
    }
    assert_eq!(ad.eval_attr("a0"), Value::Error);
    let ad = parse_classad("[ x = y + 1; y = x + 1; z = z ]").unwrap_or_default();
    assert_eq!(ad.eval_attr("x"), Value::Undefined);
    assert_eq!(ad.eval_attr("z"), Value::Undefined);
    // Exponential re-evaluation is bounded by the step budget.
    let mut ad = ClassAd::new();
    ad.insert_expr_str("b0", "1").unwrap_or_default();
    for i in 1..60 {
        ad.insert_expr_str(&format!("b{i}"), &format!("b{p} + b{p}", p = i - 1))
            .unwrap_or_default();
    }
    assert_eq!(ad.eval_attr("b59"), Value::Error);
}

#[test]
fn classad_eval_tool_matches_the_manual() {
    let args: Vec<String> = ["x = y", "x", "y = 7", "x", "[ x = 6; z = \"foo\"; ]", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = petrel_classad::tools::classad_eval(&args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        "[ x = y ]\nundefined\n[ x = y; y = 7 ]\n7\n[ x = 6; y = 7; z = \"foo\" ]\n6\n"
    );
    let args: Vec<String> = [
        "x = y",
        "x",
        "-quiet",
        "y = 7",
        "x",
        "[ x = 6; z = \"foo\"; ]",
        "x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = petrel_classad::tools::classad_eval(&args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "[ x = y ]\nundefined\n7\n6\n");
    let args = vec!["a=2".to_string(), "a*2".to_string()];
    assert_eq!(
        petrel_classad::tools::classad_eval(&args).ok().as_deref(),
        Some("[ a = 2 ]\n4\n")
    );
    let args = vec!["strcat(\"foo\", \"bar\")".to_string()];
    assert_eq!(
        petrel_classad::tools::classad_eval(&args).ok().as_deref(),
        Some("[  ]\n\"foobar\"\n")
    );
    let args = vec!["1 +".to_string()];
    assert!(matches!(
        petrel_classad::tools::classad_eval(&args),
        Err(Error::Usage(_))
    ));
    let args = vec!["--file".to_string()];
    assert!(matches!(
        petrel_classad::tools::classad_eval(&args),
        Err(Error::Usage(_))
    ));
}

#[test]
fn classad_eval_tool_reads_files() {
    let dir = std::env::temp_dir().join(format!("petrel-classad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let job = dir.join("job.ad");
    let slot = dir.join("slot.ad");
    std::fs::write(
        &job,
        "{\n[ RequestMemory = 100; Requirements = TARGET.Memory >= MY.RequestMemory ]\n}\n",
    )
    .unwrap_or_default();
    std::fs::write(&slot, "Memory = 200\nRequirements = true\n").unwrap_or_default();
    let args: Vec<String> = vec![
        "-quiet".into(),
        "-my-file".into(),
        job.display().to_string(),
        "-target-file".into(),
        slot.display().to_string(),
        "MY.Requirements".into(),
        "TARGET.Memory".into(),
    ];
    let out = petrel_classad::tools::classad_eval(&args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, "true\n200\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ads_are_case_insensitive_and_ordered_like_htcondor() {
    let mut ad = ClassAd::new();
    ad.insert_value("Memory", 1i64);
    ad.insert_value("memory", 2i64);
    ad.insert_value("A", "x");
    ad.insert_value("requirements", true);
    assert_eq!(ad.len(), 3);
    assert_eq!(ad.eval_attr("MEMORY"), Value::Int(2));
    assert_eq!(
        ad.names().collect::<Vec<_>>(),
        vec!["A", "Memory", "requirements"]
    );
    assert!(ad.remove("a").is_some());
    assert!(!ad.contains("A"));
    let parsed: ClassAd = "[ b = 1 ]".parse().unwrap_or_default();
    assert_eq!(parsed.to_string(), "[ b = 1 ]");
}

#[test]
fn match_all_agrees_with_pairwise_matching() {
    let jobs: Vec<ClassAd> = (0..40)
        .map(|i| {
            let req = match i % 5 {
                0 => "TARGET.Memory >= MY.RequestMemory",
                1 => "Memory >= RequestMemory && TARGET.Cpus > 1",
                2 => "other.Memory > 1000 || target.Name == \"slot3\"",
                3 => "TARGET.Memory >= MY.RequestMemory && my.target =?= undefined",
                _ => "[ x = TARGET.Memory ].x > 0",
            };
            let extra = if i % 7 == 0 { "target = 5;" } else { "" };
            parse_classad(&format!(
                "[ {extra} RequestMemory = {}; Requirements = {req} ]",
                500 * (i % 6)
            ))
            .unwrap_or_default()
        })
        .collect();
    let slots: Vec<ClassAd> = (0..300)
        .map(|i| {
            parse_classad(&format!(
                "[ Name = \"slot{}\"; Memory = {}; Cpus = {}; Requirements = TARGET.RequestMemory <= MY.Memory || MY.Cpus > 3 ]",
                i % 10,
                256 * (i % 9),
                i % 5
            ))
            .unwrap_or_default()
        })
        .collect();
    for threads in [1, 3] {
        let all = matching::match_all(&jobs, &slots, threads);
        for (j, job) in jobs.iter().enumerate() {
            let want: Vec<usize> = (0..slots.len())
                .filter(|&s| matching::matches(job, &slots[s]))
                .collect();
            assert_eq!(all[j], want, "job {j}");
        }
    }
    let strict = matching::match_all_with(&jobs, &slots, 2, Semantics::Strict);
    let want: Vec<usize> = (0..slots.len())
        .filter(|&s| matching::matches_with(&jobs[1], &slots[s], Semantics::Strict))
        .collect();
    assert_eq!(strict[1], want);
}
