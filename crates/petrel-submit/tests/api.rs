//! The library API the pool will use: cluster ad + per-proc deltas, streaming, options.

use petrel_submit::{JobAd, Submission, SubmitOptions};

/// Submits from the crate directory (it exists for the whole test run).
fn sub(text: &str, opts: &SubmitOptions) -> Submission {
    Submission::from_text(text, "api.sub", env!("CARGO_MANIFEST_DIR"), opts)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn opts() -> SubmitOptions {
    SubmitOptions {
        qdate: Some(1_700_000_000),
        owner: Some("alice".into()),
        ..Default::default()
    }
}

#[test]
fn cluster_ad_and_deltas() {
    let s = sub(
        "executable = /bin/echo\narguments = n $(Process)\nrequest_memory = 2G\nqueue 3\n",
        &opts(),
    );
    let r = s.expand().expect("expand");
    assert_eq!(r.cluster_id, 1);
    assert_eq!(r.procs.len(), 3);
    assert_eq!(r.cluster_ad.get("RequestMemory"), Some("2048"));
    assert_eq!(r.cluster_ad.get("Owner"), Some("\"alice\""));
    assert_eq!(r.cluster_ad.get("QDate"), Some("1700000000"));
    assert!(r.cluster_ad.get("ProcId").is_none());
    // a delta holds ProcId, JobStatus and what differs
    let d1: Vec<(&str, &str)> = r.procs[1].iter().collect();
    assert_eq!(
        d1,
        [("ProcId", "1"), ("JobStatus", "1"), ("Args", "\"n 1\"")]
    );
    let full = r.full_ad(2).expect("proc 2");
    assert_eq!(full.get("Args"), Some("\"n 2\""));
    assert_eq!(full.get("procid"), Some("2"));
    assert_eq!(r.full_ads().count(), 3);
}

#[test]
fn cluster_id_and_streaming() {
    let o = SubmitOptions {
        cluster_id: 42,
        ..opts()
    };
    let s = sub(
        "executable = /bin/echo\noutput = $(Cluster).$(Process).out\nqueue 100000\n",
        &o,
    );
    assert_eq!(s.proc_count(), 100_000);
    let last = s.procs().last().expect("procs").expect("valid");
    assert_eq!(last.get("Out"), Some("\"42.99999.out\""));
    assert_eq!(last.get("ClusterId"), Some("42"));
}

#[test]
fn append_queue_and_batch_name_options() {
    let o = SubmitOptions {
        append: vec!["request_cpus = 2".into(), "+From = \"append\"".into()],
        queue_override: Some("2 x in (a, b)".into()),
        batch_name: Some("nightly".into()),
        ..opts()
    };
    let s = sub("executable = /bin/echo\narguments = $(x)\n", &o);
    let ads: Vec<JobAd> = s.procs().map(|a| a.expect("ad")).collect();
    assert_eq!(ads.len(), 4);
    assert_eq!(ads[3].get("Args"), Some("\"b\""));
    assert_eq!(ads[0].get("RequestCpus"), Some("2"));
    assert_eq!(ads[0].get("From"), Some("\"append\""));
    assert_eq!(ads[0].get("JobBatchName"), Some("\"nightly\""));
    // -queue conflicts with a queue statement in the file
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Submission::from_text("executable = /bin/echo\nqueue\n", "api.sub", dir.path(), &o)
        .unwrap_err();
    assert!(e.to_string().contains("-queue"), "{e}");
}

#[test]
fn queue_zero_and_multiple_statements() {
    let s = sub(
        "executable = /bin/echo\nqueue 0\narguments = a\nqueue 2\narguments = b\nqueue\n",
        &opts(),
    );
    let args: Vec<String> = s
        .procs()
        .map(|a| a.expect("ad").get("Args").unwrap_or("").to_string())
        .collect();
    assert_eq!(args, ["\"a\"", "\"a\"", "\"b\""]);
    assert_eq!(s.queue_ops().len(), 3);
}

#[test]
fn getenv_and_env_macros() {
    std::env::set_var("PETREL_SUBMIT_TEST_VAR", "v1");
    let s = sub(
        "executable = /bin/echo\ngetenv = PETREL_SUBMIT_TEST_*\nenvironment = \"A=1\"\narguments = $ENV(PETREL_SUBMIT_TEST_VAR)\nqueue\n",
        &opts(),
    );
    let ad = s.procs().next().expect("one").expect("ad");
    assert_eq!(
        ad.get("Environment"),
        Some("\"A=1 PETREL_SUBMIT_TEST_VAR=v1\"")
    );
    assert_eq!(ad.get("Args"), Some("\"v1\""));
}

#[test]
fn random_choice_picks_from_the_list() {
    let s = sub("executable = /bin/echo\narguments = $RANDOM_CHOICE(red, green, blue) $RANDOM_INTEGER(1, 9, 2)\nqueue 50\n", &opts());
    for ad in s.procs() {
        let ad = ad.expect("ad");
        let args = ad.get_string("Args").expect("args");
        let (c, n) = args.split_once(' ').expect("two words");
        assert!(["red", "green", "blue"].contains(&c), "{args}");
        assert!(["1", "3", "5", "7", "9"].contains(&n), "{args}");
    }
}

#[test]
fn warnings_and_quoting() {
    let s = sub(
        "warning : check $(x:me)\nexecutable = /bin/echo\n+Path = \"C:\\\\dir\"\narguments = \"say \"\"hi\"\"\"\nqueue\n",
        &opts(),
    );
    assert_eq!(s.warnings().len(), 1);
    assert!(s.warnings()[0].contains("check me"));
    let ad = s.procs().next().expect("one").expect("ad");
    assert_eq!(ad.get("Arguments"), Some(r#""say \"hi\"""#));
    assert_eq!(ad.get_string("Arguments").as_deref(), Some("say \"hi\""));
    assert_eq!(ad.get("Path"), Some("\"C:\\\\dir\""));
}

#[test]
fn image_kinds_and_container_runtime_become_requirements() {
    let text = "universe = container\nexecutable = /bin/true\ntransfer_executable = false\n\
                container_image = /images/x.sqfs\nqueue\n\
                container_image = oci:/images/layout:1\nqueue\n\
                container_image = /images/x.sif\ncontainer_runtime = CH-RUN\nqueue\n";
    let r = sub(text, &opts()).expand().expect("expand");
    let req = |i: usize| {
        r.full_ad(i)
            .unwrap()
            .get("Requirements")
            .unwrap()
            .to_string()
    };
    assert!(req(0).contains("TARGET.HasSquashfs"), "{}", req(0));
    assert!(!req(0).contains("HasSandboxImage"), "{}", req(0));
    assert!(req(1).contains("TARGET.HasOCILayout"), "{}", req(1));
    assert!(req(2).contains("TARGET.HasSIF"), "{}", req(2));
    assert!(
        req(2).contains("stringListIMember(MY.ContainerRuntime, TARGET.ContainerRuntimes)"),
        "{}",
        req(2)
    );
    assert_eq!(
        r.full_ad(2).unwrap().get("ContainerRuntime"),
        Some("\"charliecloud\"")
    );
    let bad = Submission::from_text(
        "universe = container\nexecutable = /bin/true\ncontainer_image = /x\ncontainer_runtime = lxc\nqueue\n",
        "api.sub",
        env!("CARGO_MANIFEST_DIR"),
        &opts(),
    )
    .and_then(|s| s.expand())
    .expect_err("an unknown runtime is refused");
    let msg = bad.to_string();
    assert!(msg.contains("lxc") && msg.contains("charliecloud"), "{msg}");
}

#[test]
fn container_policy_becomes_the_job_attribute() {
    let s = sub(
        "executable = /bin/true\ncontainer_policy = $(p)\nqueue p in (preferred, NEVER, Optional)\n",
        &opts(),
    );
    let policies: Vec<String> = s
        .procs()
        .map(|ad| {
            ad.expect("valid")
                .get("ContainerPolicy")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(policies, ["\"PREFERRED\"", "\"NEVER\"", "\"OPTIONAL\""]);
    // Not written unless given: the pool chooses by whether the job names an image.
    let plain = sub("executable = /bin/true\nqueue\n", &opts());
    let ad = plain.procs().next().unwrap().unwrap();
    assert_eq!(ad.get("ContainerPolicy"), None);
    for (text, expected) in [
        (
            "container_policy = sometimes\n",
            "required, preferred, optional or never",
        ),
        (
            "universe = container\ncontainer_image = docker://busybox\ncontainer_policy = never\n",
            "not never for a job that names",
        ),
    ] {
        let text = format!("executable = /bin/true\n{text}queue\n");
        let e = Submission::from_text(&text, "api.sub", env!("CARGO_MANIFEST_DIR"), &opts())
            .and_then(|s| s.procs().collect::<Result<Vec<_>, _>>())
            .unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
        assert!(e.to_string().contains("container_policy"), "{e}");
    }
}

/// `expand` builds the procs of a queue statement in one reused ad: its deltas are what
/// comparing each streamed ad with the first gives.
#[test]
fn deltas_match_the_streamed_ads() {
    let texts = [
        "executable = /bin/echo\narguments = n $(Process)\nqueue 5\n",
        "executable = /bin/echo\nenvironment = \"A=$(Process) B=2\"\nqueue 4\n",
        "executable = /bin/echo\n+Extra = $(Process)\n+Fixed = 1\noutput = o.$(Process)\nqueue 3\n",
        "executable = /bin/echo\narguments = $(x)\nqueue x from (\na\nb\n\nc\n)\n",
        "executable = /bin/echo\narguments = a $(Process)\nqueue 2\narguments = b\nqueue 2\nerror = e.$(Step)\nqueue 3\n",
        "executable = /bin/echo\nrequest_memory = $(Process) + 1\nqueue 3\n",
        "executable = /bin/echo\nenvironment = $(e)\nqueue e in (\"\", \"A=1\", \"\", \"B=2 C=3\")\n",
        // Attributes that some procs have and others lack.
        "executable = /bin/echo\narguments = $(x)\n+Extra = $(y)\noutput = $(z)\nqueue x,y,z from (\n , 1, \na, , o\n, 2, \n)\n",
    ];
    for text in texts {
        let s = sub(text, &opts());
        let r = s.expand().unwrap_or_else(|e| panic!("{text}: {e}"));
        let ads: Vec<JobAd> = s.procs().map(|a| a.expect("ad")).collect();
        // Proc 0's ad without ProcId, and without what some proc lacks: a delta cannot
        // remove an attribute of the cluster ad.
        let mut cluster = ads[0].clone();
        cluster.remove("ProcId");
        let lacked: Vec<String> = cluster
            .iter()
            .filter(|(k, _)| ads.iter().any(|a| !a.contains(k)))
            .map(|(k, _)| k.to_string())
            .collect();
        for k in &lacked {
            cluster.remove(k);
        }
        assert_eq!(r.cluster_ad, cluster, "{text}");
        let by_name = |ad: &JobAd| {
            ad.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        for (i, ad) in ads.iter().enumerate() {
            let mut d = JobAd::new();
            d.insert("ProcId", ad.get("ProcId").unwrap_or("0"));
            d.insert("JobStatus", ad.get("JobStatus").unwrap_or("1"));
            d.update(&ad.delta_from(&cluster));
            assert_eq!(by_name(&r.procs[i]), by_name(&d), "{text} proc {i}");
            let full = r.full_ad(i).expect("a full ad");
            assert_eq!(by_name(&full), by_name(ad), "{text} proc {i}");
        }
    }
}
