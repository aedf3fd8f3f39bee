//! Throughput of the NIC model: the crypto engine (`Nic::process_tx` / `Nic::process_rx` on
//! batches of 32 Ethernet frames), SA table scaling, and 1 vs 2 worker threads over a
//! `MemWire`.
//!
//! # How the measurement is made
//! * Frames: Ethernet + IPv4 transport-mode ESP, built once by the host side of `ipsec`
//!   (`Bundle::encapsulate`). `<size>` is the ESP payload (the IP payload of the cleartext
//!   packet), as in `ipsec`'s `crypto` bench, so `engine_tx/aes-gcm-128/aws-lc/1420` compares
//!   directly with `esp_seal/aes-gcm-128/aws-lc/1420/raw` of the same run.
//! * `engine_tx`: `process_tx` re-protects the same 32 frames in place each iteration (sealing
//!   any bytes is valid work; the engine does not look at the payload).
//! * `engine_rx`: `process_rx` decrypts in place, so before each timed batch the 32 frames are
//!   restored from sealed copies with `copy_from_slice` outside the timed region
//!   (`iter_custom`). The NIC keeps no replay state, so the same sequence numbers are fine.
//! * `sa_table`: 1, 1k, 100k and 1M inbound SAs with pseudo-random SPIs; a pool of up to 4096
//!   sealed 64-byte frames, each for a random programmed SA, is replayed 32 frames at a time
//!   (restored outside the timed region). Each table is built right before its measurement
//!   and dropped after it (1M SAs take a few seconds and about a gigabyte). `hot64-<n>`: the
//!   same table with all traffic on 64 of its SAs (spread evenly over the installed ones), so
//!   the table's size is measured apart from the traffic's working set. Then a `summary`
//!   line: 7 interleaved rounds of 1 SA, 100k random and 100k hot64, medians.
//! * `multi_queue`: the NIC runs its worker threads (`Nic::start`, 1 or 2 queues); the
//!   benchmark thread circulates 64 batches of 32 frames (16 outbound SAs) through
//!   `Nic::send` -> workers (protect) -> `MemWire` -> the peer end, which the benchmark thread
//!   drains and sends again. Frames/s is what comes out of the wire.
//! * `engine_vs_raw`: the engine next to the raw AES-GCM calls the transform makes (same key,
//!   nonce, AAD, body and tag regions) on the same frames, in this binary: raw seal, engine
//!   tx, raw open, engine rx, every batch restored with `copy_from_slice` outside the timed
//!   region for all four; then 7 interleaved rounds of the four and a `summary` line with the
//!   median ratios (the cross-binary ratio of earlier runs was dominated by noise).
//!
//! Nothing is allocated in the timed regions except inside the NIC's queued data path (which
//! recycles its batch vectors).
#![allow(missing_docs)]

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipsec::{
    Bundle, BundleSeq, Encryption, Integrity, Key, Mode, Protocol, ProviderKind, SaParams,
};
use nicsim::{
    CryptoStatus, Direction, Frame, MemWire, Nic, NicConfig, SaHandle, SaSpec, TableConfig,
    TxStatus, Wire,
};

const BATCH: usize = 32;
const SIZES: [usize; 4] = [64, 512, 1420, 9000];
const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SPI: u32 = 0x1000_0001;
const ROOM: usize = 64;
const NOW: Duration = Duration::from_millis(1);

const ALGS: [(&str, Encryption, Integrity); 5] = [
    ("aes-gcm-128", Encryption::AesGcm128, Integrity::None),
    ("aes-gcm-256", Encryption::AesGcm256, Integrity::None),
    (
        "aes-cbc-128-hmac-sha256",
        Encryption::AesCbc128,
        Integrity::HmacSha256_128,
    ),
    ("null-hmac-sha1", Encryption::Null, Integrity::HmacSha1_96),
    ("gmac-128", Encryption::None, Integrity::AesGmac128),
];

fn key(len: usize, seed: u8) -> Key {
    let bytes: Vec<u8> = (0..len)
        .map(|i| seed.wrapping_add(i as u8).wrapping_mul(7))
        .collect();
    Key::new(&bytes)
}

fn params(spi: u32, enc: Encryption, int: Integrity) -> SaParams {
    SaParams {
        spi,
        protocol: Protocol::Esp,
        mode: Mode::Transport,
        encryption: enc,
        encryption_key: key(enc.key_len(), 1),
        integrity: int,
        integrity_key: key(int.key_len(), 101),
        esn: false,
        tunnel: None,
        udp_encap: None,
    }
}

/// Ethernet + IPv4 UDP packet whose IP payload is `payload` bytes, with room around the IP
/// packet for `encapsulate`; returns the buffer and the IP packet's range.
fn cleartext(payload: usize) -> (Vec<u8>, core::ops::Range<usize>) {
    let total = 20 + payload;
    let mut buf = vec![0u8; ROOM + 14 + total + ROOM];
    let eth = ROOM;
    buf[eth..eth + 6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    buf[eth + 6..eth + 12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    buf[eth + 12..eth + 14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = eth + 14;
    let p = &mut buf[ip..ip + total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&SRC.octets());
    p[16..20].copy_from_slice(&DST.octets());
    let mut sum = 0u32;
    for c in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p[20..22].copy_from_slice(&1000u16.to_be_bytes());
    p[22..24].copy_from_slice(&2000u16.to_be_bytes());
    p[24..26].copy_from_slice(&(payload as u16).to_be_bytes());
    (buf, ip..ip + total)
}

/// A framed (not yet protected) Ethernet frame for `bundle`, with the Ethernet header moved
/// in front of the framed IP packet.
fn framed_frame(bundle: &Bundle, payload: usize, seq: u64) -> Frame {
    let (mut buf, r) = cleartext(payload);
    let eth: [u8; 14] = buf[r.start - 14..r.start].try_into().expect("eth");
    let out = bundle
        .encapsulate(BundleSeq { esp: seq, ah: 0 }, &mut buf, r)
        .expect("encapsulate");
    let start = out.start - 14;
    buf[start..out.start].copy_from_slice(&eth);
    let bytes = buf[start..out.end].to_vec();
    Frame::from_bytes(&bytes, 0, 0)
}

fn nic(provider: ProviderKind, capacity: usize, queues: usize) -> (Nic, MemWire) {
    let (w, peer) = MemWire::pair();
    let cfg = NicConfig {
        table: TableConfig {
            inbound_capacity: capacity,
            outbound_capacity: capacity,
            ..TableConfig::default()
        },
        provider,
        queues,
        ..NicConfig::default()
    };
    (Nic::new(cfg, w), peer)
}

fn spec(direction: Direction, p: SaParams) -> SaSpec {
    SaSpec {
        direction,
        sas: vec![p],
        dst: Some(IpAddr::V4(DST)),
        src: Some(IpAddr::V4(SRC)),
        udp_encap: None,
    }
}

fn restore(frames: &mut [Frame], pristine: &[Frame]) {
    for (f, p) in frames.iter_mut().zip(pristine) {
        f.buf.copy_from_slice(&p.buf);
    }
}

/// Time `process_rx` only; frames restored outside the timed region.
fn timed_rx(nic: &Nic, iters: u64, frames: &mut [Frame], pool: &[Frame]) -> Duration {
    let mut total = Duration::ZERO;
    let chunks = (pool.len() / BATCH).max(1);
    for i in 0..iters {
        let at = (i as usize % chunks) * BATCH;
        restore(frames, &pool[at..at + BATCH]);
        let t = Instant::now();
        nic.process_rx(NOW, frames);
        total += t.elapsed();
    }
    total
}

/// Decrypt one batch from the pool outside any measurement and check it (also when a
/// criterion filter skipped the benchmark itself).
fn check_rx(nic: &Nic, frames: &mut [Frame], pool: &[Frame]) {
    timed_rx(nic, 1, frames, pool);
    for f in frames {
        assert!(f.rx.crypto_done, "frame not processed");
        assert_eq!(f.rx.status, CryptoStatus::Success, "decrypt failed");
    }
}

fn engine(c: &mut Criterion) {
    for &kind in ProviderKind::available() {
        for (alg, enc, int) in ALGS {
            let (nic, _peer) = nic(kind, 16, 1);
            let out = nic
                .add_sa(spec(Direction::Outbound, params(SPI, enc, int)))
                .expect("outbound");
            nic.add_sa(spec(Direction::Inbound, params(SPI, enc, int)))
                .expect("inbound");
            let host =
                Bundle::new(&[params(SPI, enc, int)], ProviderKind::RustCrypto).expect("bundle");
            let mut tx = c.benchmark_group(format!("engine_tx/{alg}/{kind}"));
            let mut sealed_by_size = Vec::new();
            for size in SIZES {
                let mut frames: Vec<Frame> = (1..=BATCH as u64)
                    .map(|s| {
                        let mut f = framed_frame(&host, size, s);
                        f.tx.handle = out;
                        f
                    })
                    .collect();
                tx.throughput(Throughput::ElementsAndBytes {
                    elements: BATCH as u64,
                    bytes: (BATCH * size) as u64,
                });
                tx.bench_function(BenchmarkId::from_parameter(size), |b| {
                    b.iter(|| nic.process_tx(NOW, &mut frames));
                });
                assert!(frames.iter().all(|f| f.tx.status == TxStatus::Pending));
                // Seal once more from the framed state for the receive side.
                let mut sealed: Vec<Frame> = (1..=BATCH as u64)
                    .map(|s| {
                        let mut f = framed_frame(&host, size, s);
                        f.tx.handle = out;
                        f
                    })
                    .collect();
                nic.process_tx(NOW, &mut sealed);
                sealed_by_size.push((size, sealed));
            }
            tx.finish();
            let mut rx = c.benchmark_group(format!("engine_rx/{alg}/{kind}"));
            for (size, sealed) in &sealed_by_size {
                let mut frames = sealed.clone();
                rx.throughput(Throughput::ElementsAndBytes {
                    elements: BATCH as u64,
                    bytes: (BATCH * size) as u64,
                });
                rx.bench_function(BenchmarkId::from_parameter(size), |b| {
                    b.iter_custom(|iters| timed_rx(&nic, iters, &mut frames, sealed));
                });
                check_rx(&nic, &mut frames, sealed);
            }
            rx.finish();
        }
    }
}

/// SplitMix64 step (deterministic pseudo-random numbers without a dependency).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `i`-th SPI: a bijection of `i` (so unique), never in the reserved 0..=255.
fn spi_of(i: u32) -> u32 {
    let x = i.wrapping_add(1).wrapping_mul(0x9e37_79b1) ^ 0x5bd1_e995;
    if x < 256 { x | 0x8000_0000 } else { x }
}

fn sa_table(c: &mut Criterion) {
    let kind = ProviderKind::fastest();
    let (enc, int) = (Encryption::AesGcm128, Integrity::None);
    let size = 64;
    let mut g = c.benchmark_group(format!("sa_table/aes-gcm-128/{kind}/{size}"));
    g.throughput(Throughput::ElementsAndBytes {
        elements: BATCH as u64,
        bytes: (BATCH * size) as u64,
    });
    g.sample_size(30);
    // (n, NIC, random pool, hot pool) kept for the interleaved summary below.
    let mut kept = Vec::new();
    for n in [1usize, 1_000, 100_000, 1_000_000] {
        let t0 = Instant::now();
        let (nic, _peer) = nic(kind, n + 16, 1);
        for i in 0..n as u32 {
            nic.add_sa(spec(Direction::Inbound, params(spi_of(i), enc, int)))
                .expect("inbound");
        }
        let built = t0.elapsed();
        let mut rng = 0x1234_5678_u64;
        let pool: Vec<Frame> = (0..4096)
            .map(|_| {
                let i = (splitmix(&mut rng) % n as u64) as u32;
                let host = Bundle::new(&[params(spi_of(i), enc, int)], kind).expect("host bundle");
                let mut f = framed_frame(&host, size, 1);
                host.protect(&mut f.bytes_mut()[14..], Default::default())
                    .expect("protect");
                f
            })
            .collect();
        let mut frames: Vec<Frame> = pool[..BATCH].to_vec();
        eprintln!("sa_table: {n} SAs programmed in {built:?}");
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| timed_rx(&nic, iters, &mut frames, &pool));
        });
        check_rx(&nic, &mut frames, &pool);
        // The same table, traffic on a hot set of HOT SAs spread evenly over the installed
        // ones: what the table's size costs the lookup when the working set stays small.
        let stride = (n / HOT).max(1);
        let hot: Vec<Frame> = (0..4096)
            .map(|k| {
                let i = ((k % HOT) * stride % n) as u32;
                let host = Bundle::new(&[params(spi_of(i), enc, int)], kind).expect("host bundle");
                let mut f = framed_frame(&host, size, 1);
                host.protect(&mut f.bytes_mut()[14..], Default::default())
                    .expect("protect");
                f
            })
            .collect();
        g.bench_function(BenchmarkId::from_parameter(format!("hot{HOT}-{n}")), |b| {
            b.iter_custom(|iters| timed_rx(&nic, iters, &mut frames, &hot));
        });
        check_rx(&nic, &mut frames, &hot);
        if n == 1 || n == 100_000 {
            kept.push((nic, pool, hot));
        }
    }
    g.finish();
    // Interleaved (criterion measures the benchmarks above tens of seconds apart): 7 rounds of
    // 1 SA, 100k SAs with random traffic and 100k SAs with traffic on 64 of them; medians.
    let [(one, one_pool, _), (big, big_pool, big_hot)] = kept.as_slice() else {
        return;
    };
    let mut frames: Vec<Frame> = one_pool[..BATCH].to_vec();
    let mut per: [Vec<f64>; 3] = Default::default();
    for _ in 0..7 {
        for (k, samples) in per.iter_mut().enumerate() {
            let (nic, pool) = match k {
                0 => (one, one_pool),
                1 => (big, big_pool),
                _ => (big, big_hot),
            };
            let batches = 300;
            let t = timed_rx(nic, batches, &mut frames, pool);
            samples.push(t.as_nanos() as f64 / (batches as usize * BATCH) as f64);
        }
    }
    let med = medians(&mut per);
    println!(
        "summary sa_table {size} B ({kind}): 1 SA {:.0} ns, 100000 SAs random {:.0} ns \
         ({:.0} % of 1 SA), 100000 SAs hot{HOT} {:.0} ns ({:.0} % of 1 SA) per frame",
        med[0],
        med[1],
        100.0 * med[0] / med[1],
        med[2],
        100.0 * med[0] / med[2]
    );
}

/// Size of the hot set of the `sa_table` hot variant.
const HOT: usize = 64;

/// Circulate frames through a started NIC and its wire; see the module docs.
fn multi_queue(c: &mut Criterion) {
    const SAS: u32 = 16;
    const IN_FLIGHT: usize = 64;
    let kind = ProviderKind::fastest();
    let (enc, int) = (Encryption::AesGcm128, Integrity::None);
    for size in [64usize, 1420] {
        let mut g = c.benchmark_group(format!("multi_queue/aes-gcm-128/{kind}/{size}"));
        g.throughput(Throughput::ElementsAndBytes {
            elements: BATCH as u64,
            bytes: (BATCH * size) as u64,
        });
        for queues in [1usize, 2] {
            let (mut nic, mut peer) = nic(kind, 64, queues);
            let mut batches: Vec<Vec<Frame>> = Vec::new();
            for s in 0..SAS {
                let p = params(SPI + s, enc, int);
                let h = nic
                    .add_sa(spec(Direction::Outbound, p.clone()))
                    .expect("sa");
                let host = Bundle::new(&[p], kind).expect("host");
                for _ in 0..IN_FLIGHT / SAS as usize {
                    batches.push(
                        (1..=BATCH as u64)
                            .map(|q| {
                                let mut f = framed_frame(&host, size, q);
                                f.cookie = h.raw();
                                f
                            })
                            .collect(),
                    );
                }
            }
            nic.start().expect("start");
            let mut rx: Vec<Frame> = Vec::with_capacity(IN_FLIGHT * BATCH);
            let mut husks: Vec<Frame> = Vec::with_capacity(IN_FLIGHT * BATCH);
            for mut b in batches {
                for f in &mut b {
                    f.tx.handle = SaHandle(f.cookie);
                }
                nic.send(&mut b);
            }
            g.bench_function(BenchmarkId::new("workers", queues), |b| {
                b.iter_custom(|iters| {
                    let want = iters as usize * BATCH;
                    let mut got = 0usize;
                    let t = Instant::now();
                    while got < want {
                        let n = peer
                            .receive(NOW, &mut rx, IN_FLIGHT * BATCH)
                            .expect("receive");
                        nic.take_completions(&mut husks);
                        husks.clear();
                        if n == 0 {
                            std::thread::yield_now();
                            continue;
                        }
                        got += n;
                        // Re-send everything at once: `Nic::send` steers each frame to
                        // its SA's queue, keeping each SA's frames in order. (Regrouping by
                        // SA here cost the benchmark thread as much CPU as a worker at 64 B,
                        // on a machine with two cores.)
                        for f in &mut rx {
                            f.tx.handle = SaHandle(f.cookie);
                            f.tx.status = TxStatus::Pending;
                        }
                        nic.send(&mut rx);
                    }
                    t.elapsed()
                });
            });
            nic.stop();
        }
        g.finish();
    }
}

/// Raw AES-GCM seal/open on the ESP regions of the frames (the calls the transform makes:
/// nonce = salt | IV, AAD = SPI | sequence number, body, detached tag).
struct RawGcm {
    key: Box<dyn ipsec::crypto::AeadKey>,
    salt: [u8; 4],
}

impl RawGcm {
    fn new(kind: ProviderKind, p: &SaParams) -> Self {
        let k = p.encryption_key.expose();
        let key = ipsec::provider(kind)
            .expect("provider")
            .aes_gcm(&k[..k.len() - 4])
            .expect("gcm");
        RawGcm {
            key,
            salt: k[k.len() - 4..].try_into().expect("salt"),
        }
    }

    /// `f`: an Ethernet + IPv4 (20-byte header) + ESP frame. False if open failed.
    fn run(&self, f: &mut Frame, seal: bool) -> bool {
        let esp = &mut f.bytes_mut()[14 + 20..];
        let icv_at = esp.len() - 16;
        let (front, icv) = esp.split_at_mut(icv_at);
        let (aad, rest) = front.split_at_mut(8);
        let (iv, body) = rest.split_at_mut(8);
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(iv);
        let tag: &mut [u8; 16] = icv.try_into().expect("tag");
        if seal {
            self.key
                .seal_in_place_detached(&nonce, aad, body, tag)
                .is_ok()
        } else {
            self.key
                .open_in_place_detached(&nonce, aad, body, tag)
                .is_ok()
        }
    }
}

/// The four measurements of `engine_vs_raw`, each one batch of 32 frames.
struct VsRaw {
    nic: Nic,
    _peer: MemWire,
    raw: RawGcm,
    /// Framed frames (engine tx input; raw seal seals them the same way).
    framed: Vec<Frame>,
    /// Sealed frames (open / rx input).
    sealed: Vec<Frame>,
    work: Vec<Frame>,
}

impl VsRaw {
    fn new(kind: ProviderKind, size: usize) -> Self {
        let p = params(SPI, Encryption::AesGcm128, Integrity::None);
        let (nic, peer) = nic(kind, 16, 1);
        let out = nic
            .add_sa(spec(Direction::Outbound, p.clone()))
            .expect("outbound");
        nic.add_sa(spec(Direction::Inbound, p.clone()))
            .expect("inbound");
        let host = Bundle::new(std::slice::from_ref(&p), kind).expect("bundle");
        let framed: Vec<Frame> = (1..=BATCH as u64)
            .map(|s| {
                let mut f = framed_frame(&host, size, s);
                f.tx.handle = out;
                f
            })
            .collect();
        let mut sealed = framed.clone();
        nic.process_tx(NOW, &mut sealed);
        let work = framed.clone();
        VsRaw {
            nic,
            _peer: peer,
            raw: RawGcm::new(kind, &p),
            framed,
            sealed,
            work,
        }
    }

    /// Time one batch of `what` (0 raw seal, 1 engine tx, 2 raw open, 3 engine rx); the
    /// input is restored with `copy_from_slice` before the clock starts, for all four.
    fn once(&mut self, what: usize) -> Duration {
        let src = if what < 2 { &self.framed } else { &self.sealed };
        restore(&mut self.work, src);
        let t = Instant::now();
        match what {
            0 => {
                for f in &mut self.work {
                    assert!(self.raw.run(f, true));
                }
            }
            1 => self.nic.process_tx(NOW, &mut self.work),
            2 => {
                for f in &mut self.work {
                    assert!(self.raw.run(f, false), "raw open failed");
                }
            }
            _ => self.nic.process_rx(NOW, &mut self.work),
        }
        let d = t.elapsed();
        if what == 3 {
            for f in &self.work {
                assert_eq!(f.rx.status, CryptoStatus::Success, "engine rx failed");
            }
        }
        d
    }
}

const VS_NAMES: [&str; 4] = ["raw_seal", "engine_tx", "raw_open", "engine_rx"];

/// Engine vs the raw primitive in one binary, with the same restore copy outside the timed
/// region for all four, then an interleaved summary (7 rounds, medians) on stdout.
fn engine_vs_raw(c: &mut Criterion) {
    let kind = ProviderKind::fastest();
    for size in [64usize, 1420] {
        let mut g = c.benchmark_group(format!("engine_vs_raw/aes-gcm-128/{kind}/{size}"));
        g.throughput(Throughput::ElementsAndBytes {
            elements: BATCH as u64,
            bytes: (BATCH * size) as u64,
        });
        let mut v = VsRaw::new(kind, size);
        for (what, name) in VS_NAMES.iter().enumerate() {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| v.once(what)).sum());
            });
        }
        g.finish();
        // Interleaved: each round measures the four in turn over the same number of batches.
        let mut per: [Vec<f64>; 4] = Default::default();
        for _ in 0..7 {
            for (what, samples) in per.iter_mut().enumerate() {
                let n = 2000;
                let total: Duration = (0..n).map(|_| v.once(what)).sum();
                samples.push(total.as_nanos() as f64 / (n * BATCH) as f64);
            }
        }
        let med = medians(&mut per);
        println!(
            "summary engine_vs_raw {size} B ({kind}): raw seal {:.0} ns, engine tx {:.0} ns \
             ({:.0} % of raw); raw open {:.0} ns, engine rx {:.0} ns ({:.0} % of raw) per frame",
            med[0],
            med[1],
            100.0 * med[0] / med[1],
            med[2],
            med[3],
            100.0 * med[2] / med[3]
        );
    }
}

/// The median of each sample vector (sorted in place).
fn medians(per: &mut [Vec<f64>]) -> Vec<f64> {
    per.iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect()
}

criterion_group!(benches, engine_vs_raw, engine, sa_table, multi_queue);
criterion_main!(benches);
