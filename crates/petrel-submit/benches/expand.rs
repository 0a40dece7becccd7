//! Parse + expand a 100,000-proc cluster: `queue 100000` with macros in arguments and
//! output, and `queue x from` a 100,000-line file, with the incremental build and with
//! every proc built from scratch. Goal: at least 10^5 procs/s.
//!
//! With `PETREL_ORACLE_PY24` set, the same inputs are also timed through HTCondor 24.0's
//! `htcondor.Submit(...).jobs()` once, for comparison (printed, not part of criterion).

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use petrel_submit::{Submission, SubmitOptions};

const N: usize = 100_000;

fn count_text() -> String {
    format!(
        "executable = /bin/echo\narguments = job $(Cluster).$(Process) step $(Step)\noutput = out/$(Cluster)/$(Process).out\nerror = err/$(Process).err\nrequest_memory = 1 GB\nqueue {N}\n"
    )
}

fn from_text() -> &'static str {
    "executable = /bin/echo\narguments = \"$(x) $(y)\"\noutput = $(x).out\nqueue x, y from items.txt\n"
}

fn run(text: &str, dir: &Path) -> usize {
    run_with(text, dir, &SubmitOptions::default())
}

fn run_with(text: &str, dir: &Path, opts: &SubmitOptions) -> usize {
    let sub = Submission::from_text(text, "bench.sub", dir, opts).expect("valid submit");
    let mut n = 0;
    for ad in sub.procs() {
        let ad = ad.expect("valid proc");
        n += ad.len();
    }
    n
}

fn oracle_time(py: &str, dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let script = "import sys,time,warnings\nwarnings.simplefilter('ignore')\nimport htcondor\nt=time.time()\nn=sum(1 for _ in htcondor.Submit(open(sys.argv[1]).read()).jobs())\nprint(n, time.time()-t)\n";
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .current_dir(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout);
            let mut it = s.split_whitespace();
            let (n, secs): (f64, f64) = (
                it.next().and_then(|v| v.parse().ok()).unwrap_or(0.0),
                it.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
            );
            eprintln!("oracle htcondor 24.0 Submit.jobs() {name}: {n} procs in {secs:.2} s = {:.0} procs/s", n / secs);
        }
        Ok(o) => eprintln!(
            "oracle failed on {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("oracle could not run: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut items = String::with_capacity(N * 16);
    for i in 0..N {
        items.push_str(&format!("item{i} {}\n", i * 7));
    }
    std::fs::write(dir.path().join("items.txt"), items).expect("write items");
    let count = count_text();
    // one timed pass each, reported as procs/s
    for (name, text) in [
        ("queue_100000", count.as_str()),
        ("queue_from_100000_lines", from_text()),
    ] {
        let t = Instant::now();
        run(text, dir.path());
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "petrel {name}: {N} procs in {secs:.3} s = {:.0} procs/s",
            N as f64 / secs
        );
    }
    if let Ok(py) = std::env::var("PETREL_ORACLE_PY24") {
        oracle_time(&py, dir.path(), "count.sub", &count);
        oracle_time(&py, dir.path(), "from.sub", from_text());
    }
    let mut g = c.benchmark_group("expand");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("queue_100000", |b| b.iter(|| run(&count, dir.path())));
    g.bench_function("queue_from_100000_lines", |b| {
        b.iter(|| run(from_text(), dir.path()))
    });
    // every proc built from scratch (what a command that changes per proc and feeds
    // Requirements, such as request_memory = $(x), costs)
    let full = SubmitOptions {
        incremental: false,
        ..Default::default()
    };
    g.bench_function("queue_100000_full_build", |b| {
        b.iter(|| run_with(&count, dir.path(), &full))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
