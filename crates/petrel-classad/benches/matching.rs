//! Matching 10,000 job ads against 1,000 slot ads (10 million symmetric
//! matches), on two threads, with typical `Requirements`.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use petrel_classad::{matching, parse_classad, ClassAd};

fn jobs(n: usize) -> Vec<ClassAd> {
    (0..n)
        .map(|i| {
            let text = format!(
                "[ ClusterId = {}; ProcId = {}; Owner = \"user{}\"; RequestMemory = {}; RequestCpus = {}; \
                 RequestDisk = 1048576; JobUniverse = 5; Cmd = \"/bin/sleep\"; Arguments = \"60\"; \
                 ContainerImage = \"docker://alpine:3\"; WantDocker = true; \
                 Requirements = TARGET.Memory >= MY.RequestMemory && TARGET.Cpus >= MY.RequestCpus && TARGET.HasDocker; \
                 Rank = TARGET.Memory ]",
                i / 10,
                i % 10,
                i % 7,
                256 << (i % 6),
                1 + i % 4
            );
            parse_classad(&text).unwrap_or_default()
        })
        .collect()
}

fn slots(n: usize) -> Vec<ClassAd> {
    (0..n)
        .map(|i| {
            let text = format!(
                "[ Name = \"slot{}@node{}\"; Machine = \"node{}\"; Memory = {}; Cpus = {}; Disk = 100000000; \
                 HasDocker = {}; Arch = \"X86_64\"; OpSys = \"LINUX\"; State = \"Unclaimed\"; Activity = \"Idle\"; \
                 Start = true; Requirements = START && TARGET.RequestMemory <= MY.Memory ]",
                i % 16,
                i / 16,
                i / 16,
                1024 << (i % 5),
                1 + i % 8,
                i % 10 != 0
            );
            parse_classad(&text).unwrap_or_default()
        })
        .collect()
}

/// Count matching pairs, splitting the jobs over `threads` threads.
fn count_matches(jobs: &[ClassAd], slots: &[ClassAd], threads: usize) -> usize {
    let chunk = jobs.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|j| slots.iter().filter(|sl| matching::matches(j, sl)).count())
                        .sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}

fn bench(c: &mut Criterion) {
    let jobs = jobs(10_000);
    let slots = slots(1_000);
    let t = Instant::now();
    let n: usize = matching::match_all(&jobs, &slots, 2)
        .iter()
        .map(Vec::len)
        .sum();
    eprintln!(
        "match_all: 10,000 jobs x 1,000 slots on 2 threads: {n} matches in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let n = count_matches(&jobs, &slots, 2);
    eprintln!(
        "pairwise matches(): 10,000 jobs x 1,000 slots on 2 threads: {n} matches in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let mut g = c.benchmark_group("matching");
    g.sample_size(10);
    g.bench_function("10k_jobs_x_1k_slots_2_threads_match_all", |b| {
        b.iter(|| {
            matching::match_all(&jobs, &slots, 2)
                .iter()
                .map(Vec::len)
                .sum::<usize>()
        })
    });
    g.bench_function("10k_jobs_x_1k_slots_2_threads_pairwise", |b| {
        b.iter(|| count_matches(&jobs, &slots, 2))
    });
    g.bench_function("1k_jobs_x_1k_slots_1_thread_pairwise", |b| {
        b.iter(|| count_matches(&jobs[..1000], &slots, 1))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
