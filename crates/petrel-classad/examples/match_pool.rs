//! Time matching a synthetic pool: `cargo run --release --example match_pool -- [jobs] [slots] [threads]`.

use std::io::Write;
use std::time::Instant;

use petrel_classad::{matching, parse_classad, parse_expr, ClassAd};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (nj, ns, threads) = (
        args.first().copied().unwrap_or(10_000),
        args.get(1).copied().unwrap_or(1_000),
        args.get(2).copied().unwrap_or(2),
    );
    let jobs: Vec<ClassAd> = (0..nj)
        .map(|i| {
            parse_classad(&format!(
                "[ ClusterId = {}; ProcId = 0; Owner = \"user{}\"; RequestMemory = {}; RequestCpus = {}; RequestDisk = 1048576; \
                 JobUniverse = 5; Cmd = \"/bin/sleep\"; ContainerImage = \"docker://alpine:3\"; \
                 Requirements = TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus && TARGET.HasDocker ]",
                i,
                i % 7,
                256 << (i % 6),
                1 + i % 4
            ))
            .unwrap_or_default()
        })
        .collect();
    let slots: Vec<ClassAd> = (0..ns)
        .map(|i| {
            parse_classad(&format!(
                "[ Name = \"slot{}@node{}\"; Memory = {}; Cpus = {}; Disk = 100000000; HasDocker = {}; Arch = \"X86_64\"; \
                 OpSys = \"LINUX\"; Start = true; Requirements = START && TARGET.RequestMemory <= MY.Memory ]",
                i % 16,
                i / 16,
                1024 << (i % 5),
                1 + i % 8,
                i % 10 != 0
            ))
            .unwrap_or_default()
        })
        .collect();
    let t = Instant::now();
    let chunk = jobs.len().div_ceil(threads.max(1));
    let n: usize = std::thread::scope(|s| {
        let hs: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                let slots = &slots;
                s.spawn(move || {
                    part.iter()
                        .map(|j| slots.iter().filter(|sl| matching::matches(j, sl)).count())
                        .sum::<usize>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    say(format!(
        "naive loop:  {nj} jobs x {ns} slots on {threads} threads: {n} matches, {:.3} s ({:.0} ns per pair per thread)",
        secs,
        secs * 1e9 * threads as f64 / (nj * ns) as f64
    ));
    let t = Instant::now();
    let n: usize = matching::match_all(&jobs, &slots, threads)
        .iter()
        .map(Vec::len)
        .sum();
    let secs = t.elapsed().as_secs_f64();
    say(format!(
        "match_all:   {nj} jobs x {ns} slots on {threads} threads: {n} matches, {:.3} s ({:.0} ns per pair per thread)",
        secs,
        secs * 1e9 * threads as f64 / (nj * ns) as f64
    ));

    // One expression evaluated against one ad many times (the same one
    // bench/compare_classad2.sh gives classad2).
    let Ok(e) =
        parse_expr("RequestMemory * 2 + RequestCpus > 100 && strcat(Owner, \"x\") == \"user0x\"")
    else {
        return;
    };
    if let Some(ad) = jobs.first() {
        let t = Instant::now();
        let mut trues = 0;
        for _ in 0..100_000 {
            trues += usize::from(ad.eval(&e).is_true());
        }
        let secs = t.elapsed().as_secs_f64();
        say(format!(
            "expression eval: 100000 evaluations ({trues} true) in {secs:.3} s ({:.0} ns each)",
            secs * 1e4
        ));
    }
}

/// Print a line, ignoring a closed stdout (e.g. piped into `head`).
fn say(line: String) {
    let _ = writeln!(std::io::stdout(), "{line}");
}
