//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) and every crash input found so far
//! (`fuzz/regressions/<target>/`) through the same harness functions the cargo-fuzz targets
//! call (`fuzz/src/lib.rs`, included here so no libFuzzer is built).
//!
//! `cargo test --test fuzz_regressions -- --ignored generate_seed_corpus` rewrites the seed
//! corpus from the harness's valid cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, missing_docs)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// A harness entry point.
type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 5] = [
    ("oid_set_info", harness::oid_set_info),
    ("oid_parsers", harness::oid_parsers),
    ("nic_rx_frame", harness::nic_rx_frame),
    ("ipsec_inbound", harness::ipsec_inbound),
    ("replay_model", harness::replay_model),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file directly under `dir/<target>/`, sorted (a missing directory is empty).
fn inputs(dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir.join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn replay(sub: &str) -> usize {
    let dir = fuzz_dir().join(sub);
    let mut n = 0;
    for (target, run) in TARGETS {
        for (path, bytes) in inputs(&dir, target) {
            let r = std::panic::catch_unwind(|| run(&bytes));
            assert!(r.is_ok(), "{} fails: {}", target, path.display());
            n += 1;
        }
    }
    n
}

/// Every crash input ever found, through its target's harness.
#[test]
fn regressions_replay() {
    replay("regressions");
}

/// The committed seed corpus passes (the harness accepts valid cases).
#[test]
fn seed_corpus_replays() {
    assert!(
        replay("corpus") >= 40,
        "seed corpus missing: run generate_seed_corpus"
    );
}

/// The generated seeds are exactly the committed ones.
#[test]
fn seed_corpus_is_current() {
    for (target, name, bytes) in harness::seeds() {
        let p = fuzz_dir().join("corpus").join(target).join(&name);
        let on_disk = std::fs::read(&p).unwrap_or_default();
        assert_eq!(
            on_disk,
            bytes,
            "{} is stale: run generate_seed_corpus",
            p.display()
        );
    }
}

/// Write the seed corpus under `fuzz/corpus/<target>/`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the harness"]
fn generate_seed_corpus() {
    let mut total = 0;
    for (target, name, bytes) in harness::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        total += bytes.len();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    assert!(total < 1 << 20, "seed corpus too large: {total} bytes");
}
