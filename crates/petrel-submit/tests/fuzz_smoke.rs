//! A deterministic, in-process fuzz run (the `submit` target of `scripts/fuzz.sh` goes further):
//! mutations of the corpus must never panic or hang, and always give ads or an error.

use std::path::Path;
use std::time::{Duration, Instant};

use petrel_submit::{Submission, SubmitOptions};

const TOKENS: &[&str] = &[
    "$(",
    ")",
    "$(Process)",
    "$$(",
    "$INT(",
    "$CHOICE(",
    "$Fnx(",
    "$ENV(",
    "\\\n",
    "\n",
    "queue ",
    "queue 3 x in (a b)\n",
    "from (\n",
    "matching *",
    "if defined x\n",
    "else\n",
    "endif\n",
    "elif 1\n",
    "include : ",
    "\"",
    "'",
    "=",
    "+A = ",
    "MY.",
    "universe = container\n",
    "container_image = docker://x\n",
    "request_memory = 1.5 GB\n",
    "[1:2]",
    ":",
    ",",
    "#",
    "\t",
    "arguments = \"a ''b''\"\n",
    "x = $(x)\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut s = text.to_string();
    for _ in 0..1 + rng.below(6) {
        let mut at = rng.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(3) {
            0 => s.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
            1 => {
                let mut end = (at + rng.below(20)).min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.replace_range(at..end, "");
            }
            _ => {
                let dup = s[at..].chars().take(rng.below(40)).collect::<String>();
                s.insert_str(at, &dup);
            }
        }
    }
    s
}

#[test]
fn mutated_corpus_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seeds: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sub"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    seeds.sort();
    let opts = SubmitOptions {
        max_procs: 1000,
        allow_commands: false,
        qdate: Some(0),
        ..Default::default()
    };
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let start = Instant::now();
    let (mut ok, mut err) = (0, 0);
    for i in 0..3000 {
        let seed = &seeds[i % seeds.len()];
        let text = mutate(seed, &mut rng);
        let t = Instant::now();
        match Submission::from_text(&text, "fuzz.sub", &dir, &opts) {
            Ok(sub) => {
                for ad in sub.procs().take(20) {
                    match ad {
                        Ok(ad) => {
                            assert!(ad.contains("ClusterId"));
                            ok += 1;
                        }
                        Err(e) => {
                            assert!(!e.to_string().is_empty());
                            err += 1;
                        }
                    }
                }
            }
            Err(e) => {
                assert!(
                    e.to_string().starts_with("fuzz.sub")
                        || e.to_string().contains(".inc")
                        || e.to_string().contains(".sub"),
                    "{e}"
                );
                err += 1;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "input took {:?}:\n{text}",
            t.elapsed()
        );
    }
    eprintln!("{ok} ads, {err} errors in {:?}", start.elapsed());
    assert!(ok > 0 && err > 0);
}
