//! A short run of each fuzz target (`fuzz/targets.rs`) inside `cargo test`:
//! every committed seed (`fuzz/seeds/<target>/`), then mutations of them
//! from a fixed generator. A panic anywhere fails the test. The long,
//! coverage-guided runs are `cargo fuzz run` (see the README).

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One of libFuzzer's simpler moves on `seed`: flip bits, overwrite or
/// insert bytes, erase a range, or splice in part of another seed.
fn mutate(rng: &mut Rng, seed: &[u8], all: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = rng.next() as u8;
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            _ => {
                let other = &all[rng.below(all.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(64)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
        }
    }
    v
}

fn run(target: &str, f: fn(&[u8]), mutations: usize) {
    let all = seeds(target);
    assert!(!all.is_empty(), "no seeds for {target}");
    for seed in &all {
        f(seed);
    }
    let mut rng = Rng(0x5eed_2026_1202);
    for _ in 0..mutations {
        let seed = &all[rng.below(all.len())];
        f(&mutate(&mut rng, seed, &all));
    }
}

#[test]
fn component_loading_and_instantiation() {
    run("component", targets::component, 300);
}

#[test]
fn canonical_abi_round_trips() {
    run("canon", targets::canon, 300);
}

#[test]
fn registry_loading() {
    run("registry", targets::registry, 300);
}
