//! Crypto throughput of the `ipsec` crate: each provider's raw primitive next to
//! [`Bundle::protect`] / [`Bundle::unprotect`] on a framed packet, plus the replay window and
//! the host-side framing alone.
//!
//! Group names put the two sides of a ratio next to each other:
//! `esp_seal/<algorithm>/<provider>/<size>/raw` vs `.../bundle` (and `esp_open/...`).
//!
//! # How the measurement is made
//! * `<size>` is the ESP payload: an IPv4 transport-mode packet whose IP payload (a UDP header
//!   and data) is `<size>` bytes. `Throughput::ElementsAndBytes` counts `BATCH` packets and
//!   `BATCH * size` payload bytes per iteration.
//! * `raw` runs exactly the primitive calls the transform makes (same key, nonce, AAD, body
//!   and ICV regions of the same framed packet), without the bundle's parsing: GCM seal/open,
//!   CBC + HMAC, HMAC over the NULL-encrypted packet, GMAC (AES-GCM with an empty
//!   plaintext).
//! * Seal is repeated in place on the same buffers (sealing any bytes is valid work).
//! * Open needs the sealed bytes back each time: before every timed batch the `BATCH`
//!   buffers are restored from a pristine copy with `copy_from_slice` **outside** the timed
//!   region (`iter_custom`), for `raw` and `bundle` alike, so both sides see the same warm
//!   cache. Nothing is allocated in the timed region.
#![allow(missing_docs)]

use core::hint::black_box;
use core::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipsec::crypto::{AeadKey, CbcKey, MacKey};
use ipsec::{
    Bundle, BundleSeq, BundleSeqHi, Encryption, Integrity, Key, Mode, Protocol, ProviderKind,
    ReplayWindow, SaParams,
};

/// Packets per timed iteration.
const BATCH: usize = 32;
/// ESP payload sizes.
const SIZES: [usize; 4] = [64, 512, 1420, 9000];
const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SPI: u32 = 0x1000_0001;
/// Bytes reserved before and after the packet for `encapsulate`.
const ROOM: usize = 64;

/// The benchmarked transforms: name, cipher, integrity.
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

fn params(enc: Encryption, int: Integrity) -> SaParams {
    SaParams {
        spi: SPI,
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

/// An IPv4 UDP packet whose IP payload is `payload` bytes (at least 8).
fn udp4(payload: usize) -> Vec<u8> {
    let total = 20 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[5] = 1;
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
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// A cleartext packet in a buffer with room, and its range.
fn cleartext(payload: usize) -> (Vec<u8>, core::ops::Range<usize>) {
    let pkt = udp4(payload);
    let mut buf = vec![0u8; ROOM + pkt.len() + ROOM];
    buf[ROOM..ROOM + pkt.len()].copy_from_slice(&pkt);
    (buf, ROOM..ROOM + pkt.len())
}

/// The framed (encapsulated, not yet protected) IP packet, exactly its bytes.
fn framed(bundle: &Bundle, payload: usize, seq: u64) -> Vec<u8> {
    let (mut buf, r) = cleartext(payload);
    let out = bundle
        .encapsulate(BundleSeq { esp: seq, ah: 0 }, &mut buf, r)
        .expect("encapsulate");
    buf[out].to_vec()
}

/// The primitives one ESP transform uses, keyed like the bundle's.
enum Raw {
    Gcm(Box<dyn AeadKey>),
    Gmac(Box<dyn AeadKey>),
    Cbc(Box<dyn CbcKey>, Box<dyn MacKey>),
    Null(Box<dyn MacKey>),
}

/// Layout of an ESP packet (from the ESP header on).
#[derive(Clone, Copy)]
struct Layout {
    icv: usize,
    salt: [u8; 4],
}

impl Raw {
    fn new(kind: ProviderKind, p: &SaParams) -> (Raw, Layout) {
        let prov = ipsec::provider(kind).expect("provider");
        let ek = p.encryption_key.expose();
        let ik = p.integrity_key.expose();
        let salt_of = |k: &[u8]| -> [u8; 4] { k[k.len() - 4..].try_into().expect("salt") };
        match (p.encryption, p.integrity) {
            (Encryption::AesGcm128 | Encryption::AesGcm256, _) => (
                Raw::Gcm(prov.aes_gcm(&ek[..ek.len() - 4]).expect("gcm")),
                Layout {
                    icv: 16,
                    salt: salt_of(ek),
                },
            ),
            (Encryption::None, Integrity::AesGmac128) => (
                Raw::Gmac(prov.aes_gcm(&ik[..ik.len() - 4]).expect("gmac")),
                Layout {
                    icv: 16,
                    salt: salt_of(ik),
                },
            ),
            (Encryption::AesCbc128, Integrity::HmacSha256_128) => (
                Raw::Cbc(
                    prov.aes_cbc(ek).expect("cbc"),
                    prov.hmac(true, ik).expect("hmac"),
                ),
                Layout {
                    icv: 16,
                    salt: [0; 4],
                },
            ),
            (Encryption::Null, Integrity::HmacSha1_96) => (
                Raw::Null(prov.hmac(false, ik).expect("hmac")),
                Layout {
                    icv: 12,
                    salt: [0; 4],
                },
            ),
            _ => unreachable!("not benchmarked"),
        }
    }

    /// `esp` = ESP header .. ICV. Returns false on a failed verification.
    fn run(&self, l: Layout, esp: &mut [u8], seal: bool) -> bool {
        let icv_at = esp.len() - l.icv;
        let (front, icv) = esp.split_at_mut(icv_at);
        match self {
            Raw::Gcm(k) => {
                let (aad, rest) = front.split_at_mut(8);
                let (iv, body) = rest.split_at_mut(8);
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&l.salt);
                nonce[4..].copy_from_slice(iv);
                let tag: &mut [u8; 16] = icv.try_into().expect("tag");
                if seal {
                    k.seal_in_place_detached(&nonce, aad, body, tag).is_ok()
                } else {
                    k.open_in_place_detached(&nonce, aad, body, tag).is_ok()
                }
            }
            Raw::Gmac(k) => {
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&l.salt);
                nonce[4..].copy_from_slice(&front[8..16]);
                let tag: &mut [u8; 16] = icv.try_into().expect("tag");
                if seal {
                    k.seal_in_place_detached(&nonce, front, &mut [], tag)
                        .is_ok()
                } else {
                    k.open_in_place_detached(&nonce, front, &mut [], tag)
                        .is_ok()
                }
            }
            Raw::Cbc(c, m) => {
                let iv: [u8; 16] = front[8..24].try_into().expect("iv");
                if seal {
                    let ok = c.encrypt_in_place(&iv, &mut front[24..]).is_ok();
                    m.compute(&[front], icv);
                    ok
                } else {
                    m.verify(&[front], icv) && c.decrypt_in_place(&iv, &mut front[24..]).is_ok()
                }
            }
            Raw::Null(m) => {
                if seal {
                    m.compute(&[front], icv);
                    true
                } else {
                    m.verify(&[front], icv)
                }
            }
        }
    }
}

/// Time `work` only, after an untimed `restore`, `iters` times.
fn timed<S: ?Sized>(
    iters: u64,
    state: &mut S,
    mut restore: impl FnMut(&mut S),
    mut work: impl FnMut(&mut S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        restore(state);
        let t = Instant::now();
        work(state);
        total += t.elapsed();
    }
    total
}

fn restore(bufs: &mut [Vec<u8>], pristine: &[Vec<u8>]) {
    for (b, p) in bufs.iter_mut().zip(pristine) {
        b.copy_from_slice(p);
    }
}

fn esp_seal_open(c: &mut Criterion) {
    for &kind in ProviderKind::available() {
        for (alg, enc, int) in ALGS {
            let p = params(enc, int);
            let bundle = Bundle::new(core::slice::from_ref(&p), kind).expect("bundle");
            let (raw, l) = Raw::new(kind, &p);
            let mut seal = c.benchmark_group(format!("esp_seal/{alg}/{kind}"));
            for size in SIZES {
                let plain: Vec<Vec<u8>> = (1..=BATCH as u64)
                    .map(|s| framed(&bundle, size, s))
                    .collect();
                let mut bufs = plain.clone();
                seal.throughput(Throughput::ElementsAndBytes {
                    elements: BATCH as u64,
                    bytes: (BATCH * size) as u64,
                });
                seal.bench_function(BenchmarkId::new(size.to_string(), "raw"), |b| {
                    b.iter(|| {
                        for pkt in bufs.iter_mut() {
                            black_box(raw.run(l, &mut pkt[20..], true));
                        }
                    });
                });
                seal.bench_function(BenchmarkId::new(size.to_string(), "bundle"), |b| {
                    b.iter(|| {
                        for pkt in bufs.iter_mut() {
                            black_box(bundle.protect(pkt, BundleSeqHi::default())).expect("seal");
                        }
                    });
                });
            }
            seal.finish();
            let mut open = c.benchmark_group(format!("esp_open/{alg}/{kind}"));
            for size in SIZES {
                let mut sealed: Vec<Vec<u8>> = (1..=BATCH as u64)
                    .map(|s| framed(&bundle, size, s))
                    .collect();
                for pkt in &mut sealed {
                    bundle
                        .protect(pkt, BundleSeqHi::default())
                        .expect("protect");
                }
                let mut bufs = sealed.clone();
                open.throughput(Throughput::ElementsAndBytes {
                    elements: BATCH as u64,
                    bytes: (BATCH * size) as u64,
                });
                open.bench_function(BenchmarkId::new(size.to_string(), "raw"), |b| {
                    b.iter_custom(|iters| {
                        let mut ok = true;
                        let d = timed(
                            iters,
                            &mut bufs,
                            |bufs: &mut Vec<Vec<u8>>| restore(bufs, &sealed),
                            |bufs| {
                                for pkt in bufs.iter_mut() {
                                    ok &= raw.run(l, &mut pkt[20..], false);
                                }
                            },
                        );
                        assert!(ok, "raw open failed");
                        d
                    });
                });
                open.bench_function(BenchmarkId::new(size.to_string(), "bundle"), |b| {
                    b.iter_custom(|iters| {
                        let mut ok = true;
                        let d = timed(
                            iters,
                            &mut bufs,
                            |bufs: &mut Vec<Vec<u8>>| restore(bufs, &sealed),
                            |bufs| {
                                for pkt in bufs.iter_mut() {
                                    ok &= black_box(bundle.unprotect(pkt, BundleSeq::default()))
                                        .is_ok();
                                }
                            },
                        );
                        assert!(ok, "unprotect failed");
                        d
                    });
                });
            }
            open.finish();
        }
    }
}

/// Replay window check + update, 1024 sequence numbers per iteration: in order, and with
/// reordering (each block of 8 numbers arrives reversed, i.e. displacements up to 7).
fn replay(c: &mut Criterion) {
    const N: u64 = 1024;
    let mut g = c.benchmark_group("replay_check_update");
    g.throughput(Throughput::Elements(N));
    let in_order: Vec<u64> = (1..=N).collect();
    let reordered: Vec<u64> = (0..N).map(|i| (i / 8) * 8 + (7 - i % 8) + 1).collect();
    for (name, seqs) in [("in_order", &in_order), ("reordered", &reordered)] {
        let mut w = ReplayWindow::new(1024).expect("window");
        let mut base = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                for &s in seqs {
                    let s = base + s;
                    if w.check(s).is_ok() {
                        w.update(s);
                    }
                }
                base += N;
                black_box(w.highest())
            });
        });
    }
    g.finish();
}

/// Host-side framing alone (AES-GCM-128 SA; no crypto): `encapsulate` a cleartext packet,
/// `decapsulate` an unprotected one. Buffers restored outside the timed region.
fn framing(c: &mut Criterion) {
    let p = params(Encryption::AesGcm128, Integrity::None);
    let bundle = Bundle::new(core::slice::from_ref(&p), ProviderKind::fastest()).expect("bundle");
    let mut g = c.benchmark_group("framing");
    for size in [64usize, 1420] {
        g.throughput(Throughput::ElementsAndBytes {
            elements: BATCH as u64,
            bytes: (BATCH * size) as u64,
        });
        let (clear, range) = cleartext(size);
        let pristine: Vec<Vec<u8>> = (0..BATCH).map(|_| clear.clone()).collect();
        let mut bufs = pristine.clone();
        g.bench_function(BenchmarkId::new("encapsulate", size), |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &mut bufs,
                    |bufs: &mut Vec<Vec<u8>>| restore(bufs, &pristine),
                    |bufs| {
                        for (i, buf) in bufs.iter_mut().enumerate() {
                            let seq = BundleSeq {
                                esp: i as u64 + 1,
                                ah: 0,
                            };
                            black_box(bundle.encapsulate(seq, buf, range.clone())).expect("encap");
                        }
                    },
                )
            });
        });
        // Framed + protected + unprotected: what decapsulate sees.
        let opened: Vec<Vec<u8>> = (1..=BATCH as u64)
            .map(|s| {
                let mut f = framed(&bundle, size, s);
                bundle
                    .protect(&mut f, BundleSeqHi::default())
                    .expect("protect");
                bundle
                    .unprotect(&mut f, BundleSeq::default())
                    .expect("unprotect");
                f
            })
            .collect();
        let mut bufs = opened.clone();
        g.bench_function(BenchmarkId::new("decapsulate", size), |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &mut bufs,
                    |bufs: &mut Vec<Vec<u8>>| restore(bufs, &opened),
                    |bufs| {
                        for buf in bufs.iter_mut() {
                            let r = 0..buf.len();
                            black_box(bundle.decapsulate(buf, r, BundleSeq::default()))
                                .expect("decap");
                        }
                    },
                )
            });
        });
    }
    g.finish();
}

criterion_group!(benches, esp_seal_open, replay, framing);
criterion_main!(benches);
