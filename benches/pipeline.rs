//! The full two-host pipeline over the in-memory wire, next to the NIC engine alone, and the
//! host-side CPU per packet with offload vs the software path, all in one binary and run.
//!
//! # What is measured (every iteration is one batch of 32 UDP datagrams, AES-GCM-128)
//! * `pipeline/<size>/two_hosts`: [`TwoHosts`] (no capture, no faults) after [`manual_sa`]
//!   with the SAs offloaded: A's stack `send_udp` x32 (framing, ESP header, sequence
//!   numbers), A's miniport and NIC (encrypt), the `MemWire`, B's NIC (decrypt) and miniport
//!   (indication), B's stack (replay check, strip ESP, deliver), `recv_udp` x32 (copy out).
//!   The clock is stepped until B has all 32; A's send completions are handled in the next
//!   batch's first step, as in a steady stream.
//! * `pipeline/<size>/engine_only`: a [`Nic`] with the same transform runs `process_tx` then
//!   `process_rx` on 32 Ethernet frames of the same shape (IPv4, UDP of `<size>` payload
//!   bytes, framed as transport-mode ESP by `ipsec::Bundle::encapsulate`): the crypto work the
//!   two NICs of the pipeline do per packet. Transmit seals in place and receive opens in
//!   place, which leaves the frame framed again, so the same 32 buffers cycle with no restore
//!   copy. Target (performance.md): pipeline >= 50 % of engine-only.
//! * `host_cpu/<size>/{offload,software}/{stack,nic}`: the same pipeline stepped by hand, with
//!   the time spent in the host stacks (`send_udp`, `HostStack::poll` on A and B, `recv_udp`:
//!   what runs on the host CPU in NDIS) and in the miniports + NICs (`VirtualMiniport::poll`:
//!   what a real NIC does in hardware) accumulated separately inside `iter_custom`. `stack`
//!   reports the host time per batch, `nic` the miniport/NIC time. Offload:
//!   `HostConfig::offload = true` (the NICs encrypt/decrypt); software: `offload = false` on
//!   both hosts (the stacks run ESP themselves and the NICs pass frames through). Target:
//!   host time with offload <= 40 % of the software path's, at 1420 B.
//!
//! After the criterion groups, an interleaved summary (7 rounds of each measurement, medians)
//! prints both ratios and writes them to `<target>/criterion/ipsec-nic-summary.json` for
//! `scripts/bench-report.py`: interleaving within one process is the fairest comparison on a
//! shared machine.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipsec::{
    Bundle, BundleSeq, Encryption, Integrity, Key, Mode, Protocol, ProviderKind, SaParams,
};
use ipsec_nic::{A_V4, B_V4, Capture, ManualSaOptions, TopologyConfig, TwoHosts, manual_sa};
use nicsim::{CryptoStatus, Direction, Frame, MemWire, Nic, NicConfig, SaSpec, TxStatus};

const BATCH: usize = 32;
const SIZES: [usize; 2] = [64, 1420];
const NOW: Duration = Duration::from_millis(1);
const TICK: Duration = Duration::from_millis(1);

// ------------------------------------------------------------------ the two-host pipeline

struct Pipeline {
    net: TwoHosts,
    payload: Vec<u8>,
    buf: Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
}

impl Pipeline {
    fn new(offload: bool, size: usize) -> Self {
        let mut cfg = TopologyConfig::standard();
        cfg.capture = Capture::None;
        cfg.a.offload = offload;
        cfg.b.offload = offload;
        let mut net = TwoHosts::new(cfg).expect("topology");
        manual_sa(&mut net, &ManualSaOptions::default()).expect("manual SA");
        net.drive().expect("offload settles");
        let mut p = Pipeline {
            net,
            payload: (0..size).map(|i| (i * 7) as u8).collect(),
            buf: vec![0u8; 2048],
            src: SocketAddr::new(A_V4.into(), 5000),
            dst: SocketAddr::new(B_V4.into(), 6000),
        };
        // Warm-up: every pool and queue reaches its working size (see tests/alloc.rs).
        for _ in 0..16 {
            p.batch();
        }
        let nic = p.net.a.nic_stats();
        assert_eq!(nic.tx_protected > 0, offload, "wrong path: {nic:?}");
        p
    }

    /// One batch through the whole pipeline; returns the protected datagrams B received.
    fn batch(&mut self) -> usize {
        for _ in 0..BATCH {
            let now = self.net.now();
            self.net
                .a
                .stack_mut()
                .send_udp(now, self.src, self.dst, &self.payload)
                .expect("send");
        }
        let mut got = 0;
        let mut secure = 0;
        let mut steps = 0;
        while got < BATCH {
            self.net.step();
            while let Some(d) = self.net.b.stack_mut().recv_udp(&mut self.buf) {
                got += 1;
                secure += usize::from(d.secure);
            }
            steps += 1;
            assert!(steps < 100, "pipeline stalled at {got}/{BATCH}");
        }
        secure
    }

    /// One batch stepped by hand; returns (host stack time, miniport + NIC time).
    fn split_batch(&mut self) -> (Duration, Duration) {
        let (mut host, mut nic) = (Duration::ZERO, Duration::ZERO);
        let t = Instant::now();
        for _ in 0..BATCH {
            let now = self.net.now();
            self.net
                .a
                .stack_mut()
                .send_udp(now, self.src, self.dst, &self.payload)
                .expect("send");
        }
        host += t.elapsed();
        let mut got = 0;
        let mut steps = 0;
        while got < BATCH {
            self.net.advance(TICK);
            let now = self.net.now();
            for h in [&mut self.net.a, &mut self.net.b] {
                let t = Instant::now();
                h.miniport().poll(now);
                let t2 = Instant::now();
                h.stack_mut().poll(now);
                let t3 = Instant::now();
                nic += t2 - t;
                host += t3 - t2;
            }
            let t = Instant::now();
            while self.net.b.stack_mut().recv_udp(&mut self.buf).is_some() {
                got += 1;
            }
            host += t.elapsed();
            steps += 1;
            assert!(steps < 100, "pipeline stalled at {got}/{BATCH}");
        }
        (host, nic)
    }
}

// ------------------------------------------------------------------ the engine alone

fn key(len: usize, seed: u8) -> Key {
    Key::new(&vec![seed; len])
}

fn gcm128(spi: u32) -> SaParams {
    SaParams {
        spi,
        protocol: Protocol::Esp,
        mode: Mode::Transport,
        encryption: Encryption::AesGcm128,
        encryption_key: key(20, 0xB2),
        integrity: Integrity::None,
        integrity_key: key(0, 0),
        esn: false,
        tunnel: None,
        udp_encap: None,
    }
}

/// Ethernet + IPv4 + UDP with `payload` bytes, framed as transport-mode ESP for `bundle`
/// (not yet sealed), as the stack hands it to the NIC.
fn framed(bundle: &Bundle, payload: usize, seq: u64) -> Frame {
    const ROOM: usize = 64;
    let total = 20 + 8 + payload;
    let mut buf = vec![0u8; ROOM + 14 + total + ROOM];
    let ip = ROOM + 14;
    {
        let p = &mut buf[ip..ip + total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&A_V4.octets());
        p[16..20].copy_from_slice(&B_V4.octets());
        let mut sum = 0u32;
        for c in p[..20].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        p[20..22].copy_from_slice(&5000u16.to_be_bytes());
        p[22..24].copy_from_slice(&6000u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    }
    let out = bundle
        .encapsulate(BundleSeq { esp: seq, ah: 0 }, &mut buf, ip..ip + total)
        .expect("encapsulate");
    let eth = out.start - 14;
    buf[eth..eth + 6].copy_from_slice(&ipsec_nic::MAC_B);
    buf[eth + 6..eth + 12].copy_from_slice(&ipsec_nic::MAC_A);
    buf[eth + 12..eth + 14].copy_from_slice(&0x0800u16.to_be_bytes());
    Frame::from_bytes(&buf[eth..out.end], 64, 64)
}

struct EngineOnly {
    nic: Nic,
    frames: Vec<Frame>,
    _peer: MemWire,
}

impl EngineOnly {
    fn new(size: usize) -> Self {
        let (w, peer) = MemWire::pair();
        let nic = Nic::new(NicConfig::default(), w);
        let spec = |direction| SaSpec {
            direction,
            sas: vec![gcm128(0x1000)],
            dst: Some(IpAddr::V4(B_V4)),
            src: Some(IpAddr::V4(A_V4)),
            udp_encap: None,
        };
        let out = nic.add_sa(spec(Direction::Outbound)).expect("outbound");
        nic.add_sa(spec(Direction::Inbound)).expect("inbound");
        let host = Bundle::new(&[gcm128(0x1000)], ProviderKind::fastest()).expect("bundle");
        let frames = (1..=BATCH as u64)
            .map(|s| {
                let mut f = framed(&host, size, s);
                f.tx.handle = out;
                f
            })
            .collect();
        let mut e = EngineOnly {
            nic,
            frames,
            _peer: peer,
        };
        e.batch();
        e.check();
        e
    }

    fn batch(&mut self) {
        self.nic.process_tx(NOW, &mut self.frames);
        self.nic.process_rx(NOW, &mut self.frames);
    }

    fn check(&self) {
        for f in &self.frames {
            assert_eq!(f.tx.status, TxStatus::Pending);
            assert!(f.rx.crypto_done);
            assert_eq!(f.rx.status, CryptoStatus::Success);
        }
    }
}

// ------------------------------------------------------------------ criterion groups

fn throughput(size: usize) -> Throughput {
    Throughput::ElementsAndBytes {
        elements: BATCH as u64,
        bytes: (BATCH * size) as u64,
    }
}

fn pipeline(c: &mut Criterion) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("pipeline/aes-gcm-128/{size}"));
        g.throughput(throughput(size));
        let mut p = Pipeline::new(true, size);
        g.bench_function("two_hosts", |b| {
            b.iter(|| assert_eq!(p.batch(), BATCH));
        });
        let mut e = EngineOnly::new(size);
        g.bench_function("engine_only", |b| b.iter(|| e.batch()));
        e.check();
        g.finish();
    }
}

fn host_cpu(c: &mut Criterion) {
    for size in SIZES {
        let mut g = c.benchmark_group(format!("host_cpu/aes-gcm-128/{size}"));
        g.throughput(throughput(size));
        for (name, offload) in [("offload", true), ("software", false)] {
            let mut p = Pipeline::new(offload, size);
            for part in ["stack", "nic"] {
                g.bench_function(BenchmarkId::new(name, part), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let (host, nic) = p.split_batch();
                            total += if part == "stack" { host } else { nic };
                        }
                        total
                    });
                });
            }
        }
        g.finish();
    }
}

// ------------------------------------------------------------------ interleaved summary

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Nanoseconds per packet of `f` (one batch per call) over `batches` batches.
fn ns_per_packet(batches: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..batches {
        f();
    }
    t.elapsed().as_nanos() as f64 / (batches * BATCH) as f64
}

fn summary(_: &mut Criterion) {
    const ROUNDS: usize = 7;
    let batches = |size: usize| if size > 512 { 200 } else { 600 };
    let mut json = Vec::new();
    for size in SIZES {
        let n = batches(size);
        let mut p = Pipeline::new(true, size);
        let mut e = EngineOnly::new(size);
        let mut soft = Pipeline::new(false, size);
        let (mut pipe, mut eng) = (Vec::new(), Vec::new());
        let (mut off_host, mut off_nic, mut sw_host, mut sw_nic) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            pipe.push(ns_per_packet(n, || {
                p.batch();
            }));
            eng.push(ns_per_packet(n, || e.batch()));
            for (pl, h, nc) in [
                (&mut p, &mut off_host, &mut off_nic),
                (&mut soft, &mut sw_host, &mut sw_nic),
            ] {
                let (mut th, mut tn) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..n {
                    let (a, b) = pl.split_batch();
                    th += a;
                    tn += b;
                }
                h.push(th.as_nanos() as f64 / (n * BATCH) as f64);
                nc.push(tn.as_nanos() as f64 / (n * BATCH) as f64);
            }
        }
        e.check();
        let (pipe, eng) = (median(&mut pipe), median(&mut eng));
        let (oh, on, sh, sn) = (
            median(&mut off_host),
            median(&mut off_nic),
            median(&mut sw_host),
            median(&mut sw_nic),
        );
        println!(
            "summary {size} B: pipeline {pipe:.0} ns/pkt ({:.2} Mpps), engine-only {eng:.0} ns/pkt \
             ({:.2} Mpps): pipeline/engine = {:.0} % (target >= 50 %)",
            1e3 / pipe,
            1e3 / eng,
            100.0 * eng / pipe
        );
        println!(
            "summary {size} B: host stack ns/pkt offload {oh:.0} (NIC {on:.0}), software {sh:.0} \
             (NIC {sn:.0}): offload/software host CPU = {:.0} % (target <= 40 %)",
            100.0 * oh / sh
        );
        json.push(format!(
            "{{\"size\":{size},\"pipeline_ns\":{pipe:.1},\"engine_ns\":{eng:.1},\
             \"offload_host_ns\":{oh:.1},\"offload_nic_ns\":{on:.1},\
             \"software_host_ns\":{sh:.1},\"software_nic_ns\":{sn:.1}}}"
        ));
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = std::path::Path::new(&target).join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let body = format!("{{\"rounds\":{ROUNDS},\"sizes\":[{}]}}\n", json.join(","));
    if let Err(e) = std::fs::write(dir.join("ipsec-nic-summary.json"), body) {
        eprintln!("summary not written: {e}");
    }
}

criterion_group!(benches, pipeline, host_cpu, summary);
criterion_main!(benches);
