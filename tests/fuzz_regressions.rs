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

const TARGETS: [(&str, Harness); 8] = [
    ("oid_set_info", harness::oid_set_info),
    ("oid_parsers", harness::oid_parsers),
    ("nic_rx_frame", harness::nic_rx_frame),
    ("ipsec_inbound", harness::ipsec_inbound),
    ("replay_model", harness::replay_model),
    ("wfp_sequence", harness::wfp_sequence),
    ("transport_inbound", harness::transport_inbound),
    ("pcap_decap", harness::pcap_decap),
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

/// The `wfp_sequence` seeds drive the engine through the documented states: the Manual SA
/// calls succeed for every valid bundle shape and family, and the tail (GetById, Enum,
/// Update, Expire, grace period, Delete) behaves as documented.
#[test]
fn wfp_seeds_reach_the_documented_states() {
    use transport::wfp::{FWP_E_NOT_FOUND, WfpError};
    let seeds: Vec<(String, Vec<u8>)> = harness::seeds()
        .into_iter()
        .filter(|(t, _, _)| *t == "wfp_sequence")
        .map(|(_, n, b)| (n, b))
        .collect();
    assert!(seeds.len() >= 10);
    for (name, bytes) in &seeds {
        let trace = harness::wfp_run(bytes);
        let results: Vec<Result<(), WfpError>> = trace.iter().map(|(_, r)| *r).collect();
        match name.as_str() {
            "manual-sa-v4" | "manual-sa-v6" => {
                // Create, GetSpi, AddInbound, AddOutbound, GetById, Enum x2, Update, Expire:
                // all succeed; after the grace period the context is gone (Delete: NOT_FOUND).
                assert_eq!(results.len(), 11, "{name}: {trace:?}");
                assert!(results[..9].iter().all(Result::is_ok), "{name}: {trace:?}");
                assert_eq!(results[10], Err(FWP_E_NOT_FOUND), "{name}: {trace:?}");
            }
            n if n.starts_with("bundle-") => {
                assert!(results.iter().all(Result::is_ok), "{name}: {trace:?}");
            }
            _ => {}
        }
    }
}

/// The `transport_inbound` bench really protects and offloads: for every case, A's four
/// datagrams reach B's endpoint protected, through B's NIC when the case offloads.
#[test]
fn transport_inbound_bench_delivers_through_the_nic() {
    for case in harness::inbound_cases() {
        let mut bench = harness::InboundBench::new(&case).unwrap();
        let frames = bench.valid_frames(4);
        assert_eq!(frames.len(), 4, "{}", case.name);
        bench.inject(&frames);
        let mut buf = [0u8; 256];
        let mut got = 0;
        while let Some(d) = bench.net.b.stack_mut().recv_udp(&mut buf) {
            assert!(d.secure, "{}", case.name);
            got += 1;
        }
        assert_eq!(got, 4, "{}", case.name);
        let s = bench.net.b.stack().statistics();
        if case.offload {
            assert_eq!(s.inbound.nic_processed, 4, "{}: {s:?}", case.name);
        } else {
            assert_eq!(s.inbound.software_processed, 4, "{}: {s:?}", case.name);
        }
        // Each frame again: replays, all dropped and counted.
        bench.inject(&frames);
        let s = bench.net.b.stack().statistics();
        assert_eq!(
            s.ipsec
                .aggregate_drop_packet_statistics
                .replay_check_failures_on_inbound,
            4,
            "{}",
            case.name
        );
        assert!(bench.net.b.stack_mut().recv_udp(&mut buf).is_none());
    }
}

/// The `pcap_decap` seeds decapsulate: every protected seed frame comes out as the cleartext
/// seed frame (both paths), and the replayed half is dropped.
#[test]
fn pcap_seeds_decapsulate_to_the_cleartext() {
    use ipsec_nic::cli::{pcap, process};
    let seeds: Vec<(String, Vec<u8>)> = harness::seeds()
        .into_iter()
        .filter(|(t, _, _)| *t == "pcap_decap")
        .map(|(_, n, b)| (n, b))
        .collect();
    let get = |n: &str| pcap::parse(&seeds.iter().find(|(m, _)| m == n).unwrap().1).unwrap();
    let (clear, prot, dup) = (
        get("cleartext"),
        get("protected"),
        get("protected-replayed"),
    );
    assert_eq!(clear.records.len(), 18);
    assert_ne!(clear.records, prot.records);
    let sas = harness::pcap_sas(true).unwrap();
    for software in [false, true] {
        let (out, rep) = process::process(&sas, &prot, process::Op::Decap, software).unwrap();
        assert_eq!(out.records.len(), 18, "{rep:?}");
        for (o, c) in out.records.iter().zip(&clear.records) {
            assert_eq!(o.data, c.data, "software {software}: {rep:?}");
        }
        let (out, rep) = process::process(&sas, &dup, process::Op::Decap, software).unwrap();
        assert_eq!((out.records.len(), rep.dropped.len()), (18, 18), "{rep:?}");
    }
}
