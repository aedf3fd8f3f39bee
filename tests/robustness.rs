//! Model-based and robustness tests across the crates (MISSION.md "What bad input gets"):
//!
//! - the NIC SA table ([`nicsim::SaTable`] and [`nicsim::Nic`]) against a map model: random
//!   add / delete / lookup sequences including a full table, stale handles and duplicates;
//! - [`ipsec::ReplayWindow`] against a naive model (set of seen numbers + highest), window
//!   sizes 32..=4096;
//! - arbitrary and mutated frames into the miniport receive path: no panic, every frame
//!   indicated with a status;
//! - concurrency: traffic both ways through two miniports over a [`nicsim::MemWire`] (two
//!   pushing threads) while a third thread adds and deletes SAs through OIDs; the counters add
//!   up afterwards; and the same with the third thread replacing the traffic SAs themselves:
//!   no frame handed over after its SA's DELETE_SA returned is ever protected;
//! - keys: after DELETE_SA no key bytes in dumps, `Debug` output or stats, and no key bytes in
//!   the `Debug` output of any key-holding public type;
//! - fault campaigns on the two-host topology ([`ipsec_nic::TwoHosts`]): seeded loss,
//!   duplication, reordering and corruption at 0, 1, 5 and 20 % for several algorithms,
//!   offloaded and in software; every received frame counted once, nothing delivered twice or
//!   in clear, corrupted frames dropped, intact ones delivered. The table:
//!   `cargo test --test robustness fault_campaigns -- --nocapture`.
//!
//! Every test is seeded (proptest's deterministic runner) and bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, missing_docs)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ipsec::{Bundle, Encryption, Integrity, Key, ParamError, ProviderKind, SaParams};
use miniport::VirtualMiniport;
use nicsim::{
    EncapEntry, EncapType, Frame, MemWire, Nic, NicConfig, SaHandle, SaSpec, SaTable, TableConfig,
    TableError, Wire,
};
use oid::{
    AddSaRequest, ConfAlgorithm, CryptoStatus, DeleteSaRequest, DeleteUdpEspSaRequest, Direction,
    IntegrityAlgorithm, KeyOrder, Miniport, Nbl, NdisStatus, OffloadHandle, Oid, StatusIndication,
    UdpEncapType, UdpEspEncap,
};
use proptest::prelude::*;

// ---- SA table against a map ----

const IN_CAP: usize = 3;
const OUT_CAP: usize = 2;

#[derive(Clone, Copy, Debug)]
enum TableOp {
    /// Add an SA; `spi`, `dst` and `udp` are small indexes so duplicates are frequent.
    Add {
        inbound: bool,
        ah: bool,
        spi: u8,
        dst: u8,
        udp: bool,
        invalid: bool,
    },
    /// Delete the n-th handle ever issued (possibly stale), or a never-issued one.
    Delete(u8),
    /// Look an inbound SA up.
    Lookup {
        ah: bool,
        spi: u8,
        dst: u8,
        udp: bool,
    },
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        3 => (any::<bool>(), any::<bool>(), 0u8..4, 0u8..3, any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(inbound, ah, spi, dst, udp, invalid)| TableOp::Add { inbound, ah, spi, dst, udp, invalid }),
        2 => any::<u8>().prop_map(TableOp::Delete),
        2 => (any::<bool>(), 0u8..4, 1u8..3, any::<bool>())
            .prop_map(|(ah, spi, dst, udp)| TableOp::Lookup { ah, spi, dst, udp }),
    ]
}

fn dst_of(i: u8) -> Option<IpAddr> {
    match i {
        0 => None,
        1 => Some(IpAddr::V4(harness::HOST_B)),
        _ => Some(IpAddr::V6(harness::HOST_B6)),
    }
}

/// The key of an inbound SA in the model: (spi, is AH, destination, encapsulation port).
type ModelKey = (u32, bool, Option<IpAddr>, u16);

#[derive(Clone, Debug)]
struct ModelSa {
    inbound: bool,
    key: ModelKey,
}

fn spec_for(
    inbound: bool,
    ah: bool,
    spi: u32,
    dst: Option<IpAddr>,
    udp: bool,
    bad: bool,
) -> SaSpec {
    let mut p = if ah {
        harness::sa_params(
            ipsec::Protocol::Ah,
            Encryption::None,
            Integrity::HmacSha1_96,
            spi,
            3,
        )
    } else {
        harness::sa_params(
            ipsec::Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            spi,
            3,
        )
    };
    if bad {
        // A key of the wrong length: the NIC's build step refuses it.
        p.integrity_key = Key::new(&[1, 2, 3]);
        p.encryption_key = Key::new(&[1, 2, 3]);
    }
    if udp && !ah {
        p.udp_encap = Some(ipsec::UdpEncap {
            local_port: 4500,
            remote_port: 4500,
        });
    }
    SaSpec {
        direction: if inbound {
            nicsim::Direction::Inbound
        } else {
            nicsim::Direction::Outbound
        },
        sas: vec![p],
        dst,
        src: None,
        udp_encap: (udp && !ah).then_some(EncapEntry {
            encap_type: EncapType::Other,
            port: 4500,
        }),
    }
}

/// What the table must answer to an add, given the live SAs.
fn model_add(
    live: &HashMap<u64, ModelSa>,
    inbound: bool,
    key: ModelKey,
    invalid: bool,
) -> Result<(), TableError> {
    if inbound && live.values().any(|s| s.inbound && s.key == key) {
        return Err(TableError::Duplicate);
    }
    let n = live.values().filter(|s| s.inbound == inbound).count();
    if n >= if inbound { IN_CAP } else { OUT_CAP } {
        return Err(TableError::Full);
    }
    if invalid {
        return Err(TableError::Invalid(ParamError::InvalidCombination));
    }
    Ok(())
}

/// The two implementations under test: the bare table (crypto = a tag) and the NIC.
enum Backend {
    Table(SaTable<u32>),
    Nic(Nic),
}

impl Backend {
    fn add(&mut self, spec: SaSpec, invalid: bool) -> Result<SaHandle, TableError> {
        match self {
            Backend::Table(t) => t.add(spec, |sas| {
                if invalid {
                    Err(ParamError::InvalidCombination)
                } else {
                    Ok(sas.len() as u32)
                }
            }),
            Backend::Nic(n) => n.add_sa(spec),
        }
    }
    fn delete(&mut self, h: SaHandle) -> Result<(), TableError> {
        match self {
            Backend::Table(t) => t.delete(h).map(drop),
            Backend::Nic(n) => n.delete_sa(h).map(drop),
        }
    }
    fn len(&self) -> (usize, usize) {
        match self {
            Backend::Table(t) => t.len(),
            Backend::Nic(n) => n.sa_count(),
        }
    }
    fn live(&self, h: SaHandle) -> bool {
        match self {
            Backend::Table(t) => t.get(h).is_some(),
            Backend::Nic(n) => n.sa_info(h).is_some(),
        }
    }
}

fn run_table_model(mut backend: Backend, ops: &[TableOp]) -> Result<(), TestCaseError> {
    let mut live: HashMap<u64, ModelSa> = HashMap::new();
    let mut issued: Vec<SaHandle> = Vec::new();
    for op in ops {
        match *op {
            TableOp::Add {
                inbound,
                ah,
                spi,
                dst,
                udp,
                invalid,
            } => {
                let spi = 0x100 + u32::from(spi);
                let dst = dst_of(dst);
                let udp = udp && !ah;
                let key = (spi, ah, dst, if udp { 4500 } else { 0 });
                let expect = model_add(&live, inbound, key, invalid);
                let got = backend.add(spec_for(inbound, ah, spi, dst, udp, invalid), invalid);
                match (expect, got) {
                    (Ok(()), Ok(h)) => {
                        prop_assert!(!h.is_none());
                        prop_assert!(!issued.contains(&h), "handle {h:?} reissued");
                        issued.push(h);
                        live.insert(h.raw(), ModelSa { inbound, key });
                    }
                    (Err(TableError::Invalid(_)), Err(TableError::Invalid(_))) => {}
                    (e, g) => prop_assert_eq!(e, g.map(drop), "add {:?}", op),
                }
            }
            TableOp::Delete(i) => {
                let h = issued
                    .get(usize::from(i) % (issued.len() + 1))
                    .copied()
                    .unwrap_or(SaHandle(0xdead_0000_0000 + u64::from(i)));
                let expect = if live.remove(&h.raw()).is_some() {
                    Ok(())
                } else {
                    Err(TableError::NotFound)
                };
                prop_assert_eq!(backend.delete(h), expect, "delete {:?}", h);
            }
            TableOp::Lookup { ah, spi, dst, udp } => {
                let Backend::Table(t) = &backend else {
                    continue;
                };
                let spi = 0x100 + u32::from(spi);
                let addr = dst_of(dst).unwrap_or(IpAddr::V4(harness::HOST_B));
                let port = (udp && !ah).then_some(4500);
                let proto = if ah { 51 } else { 50 };
                let find = |d: Option<IpAddr>| {
                    live.iter()
                        .find(|(_, s)| s.inbound && s.key == (spi, ah, d, port.unwrap_or(0)))
                        .map(|(h, _)| *h)
                };
                let expect = find(Some(addr)).or_else(|| find(None));
                let got = t
                    .lookup_inbound(spi, proto, addr, port)
                    .map(|e| e.info().handle.raw());
                prop_assert_eq!(got, expect, "lookup {:?}", op);
            }
        }
        let n_in = live.values().filter(|s| s.inbound).count();
        prop_assert_eq!(backend.len(), (n_in, live.len() - n_in));
        for h in &issued {
            prop_assert_eq!(
                backend.live(*h),
                live.contains_key(&h.raw()),
                "liveness of {:?}",
                h
            );
        }
        if let Backend::Table(t) = &backend {
            let udp_live = live.values().any(|s| s.inbound && s.key.3 == 4500);
            prop_assert_eq!(t.encap_ports().contains(&4500), udp_live, "encap ports");
        }
    }
    Ok(())
}

fn table_config() -> TableConfig {
    TableConfig {
        inbound_capacity: IN_CAP,
        outbound_capacity: OUT_CAP,
        ..TableConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `SaTable` add/delete/lookup agree with a map, including full tables, duplicates,
    /// invalid parameters and stale handles.
    #[test]
    fn sa_table_matches_map_model(ops in proptest::collection::vec(table_op(), 1..60)) {
        run_table_model(Backend::Table(SaTable::new(table_config())), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// `Nic::add_sa` / `delete_sa` (real crypto state) agree with the same model.
    #[test]
    fn nic_sa_table_matches_map_model(ops in proptest::collection::vec(table_op(), 1..40)) {
        let (w, _peer) = MemWire::pair();
        let nic = Nic::new(
            NicConfig { table: table_config(), provider: ProviderKind::RustCrypto, ..NicConfig::default() },
            w,
        );
        run_table_model(Backend::Nic(nic), &ops)?;
    }
}

// ---- replay window against a naive model ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `ReplayWindow` agrees with a set-of-seen-numbers model (fuzz target `replay_model`'s
    /// decoder: sizes 32..=4096, steps around the highest number, jumps, the u64 edge).
    #[test]
    fn replay_window_matches_model(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        harness::replay_model(&bytes);
    }

    /// The same with explicit in-window reordering for every power-of-two size.
    #[test]
    fn replay_window_reordering(
        shift in 5u32..=12,
        steps in proptest::collection::vec((0u8..3, -5000i64..5000), 1..300),
    ) {
        let size = 1u32 << shift;
        let mut ops = Vec::new();
        let mut top: u64 = 1;
        for (kind, d) in steps {
            let s = top.saturating_add_signed(d).max(1);
            top = top.max(s);
            ops.push(match kind {
                0 => harness::ReplayOp::Check(s),
                1 => harness::ReplayOp::Update(s),
                _ => harness::ReplayOp::Receive(s),
            });
        }
        harness::replay_ops(size, &ops);
    }
}

#[test]
fn replay_window_edges() {
    use harness::ReplayOp::{Check, Receive, Update};
    for size in [32u32, 33, 64, 65, 1000, 1024, 4096] {
        let s = u64::from(size);
        harness::replay_ops(
            size,
            &[
                Check(0),
                Receive(1),
                Receive(1),
                Receive(s),
                Receive(s + 1),
                Check(1),
                Check(2),
                Receive(2),
                Receive(3 * s),
                Check(2 * s),
                Check(2 * s + 1),
                Update(5),
                Receive(u64::MAX),
                Check(u64::MAX - s),
                Check(u64::MAX - s + 1),
                Receive(u64::MAX - 1),
            ],
        );
    }
}

// ---- miniport receive path ----

/// Counts what the miniport gives its protocol; keeps no buffers.
#[derive(Default)]
struct Counter {
    received: AtomicU64,
    crypto_ok: AtomicU64,
    bad_receive_info: AtomicU64,
    completed: AtomicU64,
    completed_ok: AtomicU64,
    statuses: Mutex<BTreeSet<u32>>,
}

impl oid::Protocol for Counter {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        for n in nbls.drain(..) {
            self.received.fetch_add(1, Ordering::Relaxed);
            let i = n.receive_info;
            if i.crypto_done && i.crypto_status == CryptoStatus::SUCCESS {
                self.crypto_ok.fetch_add(1, Ordering::Relaxed);
            }
            if !i.crypto_done && (i.next_crypto_done || i.crypto_status != CryptoStatus::SUCCESS) {
                self.bad_receive_info.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        for n in nbls.drain(..) {
            self.completed.fetch_add(1, Ordering::Relaxed);
            if n.status == NdisStatus::SUCCESS {
                self.completed_ok.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut s) = self.statuses.lock() {
                s.insert(n.status.0);
            }
        }
    }
    fn status_indication(&self, _i: &StatusIndication<'_>) {}
}

fn set(m: &dyn Miniport, oid: Oid, buf: &mut [u8]) -> NdisStatus {
    NdisStatus(harness::oid_request(m, oid, false, buf)[0])
}

/// ADD_SA through the OID; the handle on success.
fn add(m: &dyn Miniport, r: &AddSaRequest) -> Result<(OffloadHandle, Vec<u8>), NdisStatus> {
    let mut buf = r.to_bytes(KeyOrder::ConfidentialityFirst).expect("emit");
    match set(m, r.oid(), &mut buf) {
        NdisStatus::SUCCESS => Ok((
            AddSaRequest::read_offload_handle(&buf).expect("handle"),
            buf,
        )),
        s => Err(s),
    }
}

fn delete(m: &dyn Miniport, h: OffloadHandle) -> NdisStatus {
    let mut b = DeleteSaRequest { offload_handle: h }.to_bytes();
    set(m, Oid::TCP_TASK_IPSEC_DELETE_SA, &mut b)
}

fn gcm_req(direction: Direction, spi: u32, seed: u8) -> AddSaRequest {
    harness::oid_add_request(
        direction,
        harness::oid_esp(
            spi,
            ConfAlgorithm::AesGcm128,
            IntegrityAlgorithm::None,
            seed,
        ),
    )
}

/// The host-side bundle matching `gcm_req(_, spi, seed)` (same key derivation).
fn gcm_case(spi: u32, seed: u8) -> harness::RxCase {
    harness::RxCase {
        name: "gcm",
        sas: vec![harness::sa_params(
            ipsec::Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            spi,
            seed,
        )],
        dst: Some(IpAddr::V4(harness::HOST_B)),
        udp_encap: None,
        ipv6: false,
    }
}

fn miniport(capacity: usize) -> (Arc<VirtualMiniport>, Arc<Counter>, MemWire) {
    let (w, peer) = MemWire::pair();
    let m = Arc::new(VirtualMiniport::initialize(
        harness::miniport_config(capacity),
        w,
    ));
    let c = Arc::new(Counter::default());
    m.bind(c.clone());
    (m, c, peer)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary and mutated frames from the wire: the miniport never panics and indicates
    /// every frame, each in exactly one NIC receive counter.
    #[test]
    fn miniport_receive_path_survives_any_frame(
        frames in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200), any::<u16>(), any::<u8>()),
            1..12,
        ),
    ) {
        let (m, c, mut peer) = miniport(4);
        let mut udp = gcm_req(Direction::Inbound, 0x3001, 7);
        udp.udp_esp = Some(UdpEspEncap { encap_type: UdpEncapType::Other, dst_port: 4500, parser_entry: OffloadHandle::NULL });
        prop_assert!(add(m.as_ref(), &gcm_req(Direction::Inbound, 0x3000, 5)).is_ok());
        prop_assert!(add(m.as_ref(), &udp).is_ok());
        let valid = harness::valid_frame(&gcm_case(0x3000, 5), 1).expect("frame");
        let mut batch = Vec::new();
        for (mutated, bytes, at, xor) in &frames {
            let b = if *mutated {
                let mut v = valid.clone();
                let n = v.len();
                v[usize::from(*at) % n] ^= *xor;
                v.truncate(n - bytes.len().min(n) / 4);
                v
            } else {
                bytes.clone()
            };
            batch.push(Frame::from_bytes(&b, 0, 0));
        }
        let n = batch.len() as u64;
        let mut done = Vec::new();
        prop_assert!(peer.transmit(Duration::from_millis(1), &mut batch, &mut done).is_ok());
        for t in 2..6 {
            m.poll(Duration::from_millis(t));
        }
        prop_assert_eq!(c.received.load(Ordering::Relaxed), n);
        prop_assert_eq!(c.bad_receive_info.load(Ordering::Relaxed), 0);
        let s = m.nic_stats();
        prop_assert_eq!(s.rx_frames, n);
        prop_assert_eq!(harness::rx_outcomes(&s), n);
    }
}

// ---- concurrency ----

/// Traffic A->B and B->A through two miniports on one wire, for a bounded time, while a third
/// thread adds and deletes SAs (v1, UDP-ESP, full table, stale handles) on both through OIDs.
#[test]
fn traffic_and_sa_churn_counters_add_up() {
    const RUN: Duration = Duration::from_millis(1500);
    const MAX_FRAMES: u64 = 4000;
    let (wa, wb) = MemWire::pair();
    let a = Arc::new(VirtualMiniport::initialize(harness::miniport_config(4), wa));
    let b = Arc::new(VirtualMiniport::initialize(harness::miniport_config(4), wb));
    let (ca, cb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    a.bind(ca.clone());
    b.bind(cb.clone());
    // A->B uses SPI 0x4000, B->A uses 0x4001; B's outbound SA is "from A to B" in selector
    // terms, which the NIC ignores on transmit.
    let (ha, _) = add(a.as_ref(), &gcm_req(Direction::Outbound, 0x4000, 1)).unwrap();
    add(b.as_ref(), &gcm_req(Direction::Inbound, 0x4000, 1)).unwrap();
    let (hb, _) = add(b.as_ref(), &gcm_req(Direction::Outbound, 0x4001, 2)).unwrap();
    let mut to_a = gcm_req(Direction::Inbound, 0x4001, 2);
    to_a.selector.dest_addr = Ipv4Addr::UNSPECIFIED;
    to_a.selector.dest_mask = Ipv4Addr::UNSPECIFIED;
    add(a.as_ref(), &to_a).unwrap();
    let clock = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sent = std::thread::scope(|s| {
        let mut senders = Vec::new();
        for (from, to, h, spi, seed) in [(&a, &b, ha, 0x4000u32, 1u8), (&b, &a, hb, 0x4001, 2)] {
            let (clock, stop) = (Arc::clone(&clock), Arc::clone(&stop));
            senders.push(s.spawn(move || {
                // The host frames (ESP header, trailer) and the NIC encrypts: unprotected
                // frames built by `encapsulate` only.
                let host = Bundle::new(
                    &gcm_case(spi, seed)
                        .sas
                        .iter()
                        .map(harness::peer_view)
                        .collect::<Vec<SaParams>>(),
                    ProviderKind::RustCrypto,
                )
                .unwrap();
                let inner = harness::udp_packet(false, harness::MARKER);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < MAX_FRAMES {
                    let mut batch = Vec::new();
                    for _ in 0..8 {
                        n += 1;
                        let mut buf = vec![0u8; harness::HEADROOM + inner.len() + 128];
                        buf[harness::HEADROOM..harness::HEADROOM + inner.len()]
                            .copy_from_slice(&inner);
                        let r = host
                            .encapsulate(
                                ipsec::BundleSeq { esp: n, ah: n },
                                &mut buf,
                                harness::HEADROOM..harness::HEADROOM + inner.len(),
                            )
                            .unwrap();
                        let mut nbl = Nbl::with_capacity(2048, 64);
                        assert!(nbl.fill(64, &harness::ethernet(&buf[r])));
                        nbl.send_info.offload_handle = h;
                        batch.push(nbl);
                    }
                    from.send_net_buffer_lists(&mut batch);
                    let t = clock.fetch_add(1, Ordering::Relaxed);
                    from.poll(Duration::from_micros(t));
                    to.poll(Duration::from_micros(t));
                }
                n
            }));
        }
        let (a2, b2, stop2) = (&a, &b, Arc::clone(&stop));
        s.spawn(move || {
            let pick =
                |w: usize| -> &dyn Miniport { if w == 0 { a2.as_ref() } else { b2.as_ref() } };
            let mut i = 0u32;
            let mut full = 0u32;
            let mut held: Vec<(usize, OffloadHandle, Option<OffloadHandle>)> = Vec::new();
            let mut stale: Vec<(usize, OffloadHandle)> = Vec::new();
            while start.elapsed() < RUN {
                i += 1;
                let which = (i % 2) as usize;
                let m = pick(which);
                let spi = 0x5000 + i;
                let dir = if i.is_multiple_of(3) {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                let mut r = gcm_req(dir, spi, 9);
                let udp = i.is_multiple_of(5);
                if udp {
                    r.udp_esp = Some(UdpEspEncap {
                        encap_type: UdpEncapType::Other,
                        dst_port: 4500,
                        parser_entry: OffloadHandle::NULL,
                    });
                }
                match add(m, &r) {
                    Ok((h, buf)) => {
                        let parser = udp.then(|| {
                            let at = miniport::UDPESP_PARSER_HANDLE_OFFSET;
                            OffloadHandle(u64::from_ne_bytes(buf[at..at + 8].try_into().unwrap()))
                        });
                        held.push((which, h, parser));
                    }
                    Err(s) => {
                        assert_eq!(s, NdisStatus::RESOURCES, "add {i}");
                        full += 1;
                    }
                }
                // Delete the oldest when holding many (so the table fills up now and then).
                if (held.len() > 8 || i.is_multiple_of(7)) && !held.is_empty() {
                    let (w, h, parser) = held.remove(0);
                    let st = delete_held(pick(w), h, parser);
                    assert_eq!(st, NdisStatus::SUCCESS, "delete {h:?}");
                    stale.push((w, h));
                }
                if let Some(&(w, h)) = stale.get(i as usize % stale.len().max(1)) {
                    // A stale handle is refused by the miniport that issued it (never
                    // honoured again).
                    assert_eq!(delete(pick(w), h), NdisStatus::INVALID_DATA, "stale {h:?}");
                }
                std::thread::yield_now();
            }
            stop2.store(true, Ordering::Relaxed);
            assert!(
                i < 100 || full > 0,
                "the table never filled up in {i} rounds"
            );
            for (w, h, parser) in held {
                assert_eq!(delete_held(pick(w), h, parser), NdisStatus::SUCCESS);
            }
        });
        senders
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<u64>>()
    });
    // Drain.
    for k in 0..50 {
        let t = clock.fetch_add(1, Ordering::Relaxed) + k;
        a.poll(Duration::from_micros(t));
        b.poll(Duration::from_micros(t));
    }
    assert!(start.elapsed() < Duration::from_secs(20), "bounded run");
    let (sa, sb) = (a.nic_stats(), b.nic_stats());
    for (name, sent, tx, rx, c_tx, c_rx) in [
        ("A->B", sent[0], sa, sb, &ca, &cb),
        ("B->A", sent[1], sb, sa, &cb, &ca),
    ] {
        assert!(sent > 0, "{name}: no traffic");
        // Sent = completed, each with one transmit outcome.
        assert_eq!(tx.tx_frames, sent, "{name}");
        assert_eq!(harness::tx_outcomes(&tx), sent, "{name}: {tx:?}");
        assert_eq!(c_tx.completed.load(Ordering::Relaxed), sent, "{name}");
        assert_eq!(
            c_tx.completed_ok.load(Ordering::Relaxed),
            tx.tx_protected,
            "{name}"
        );
        assert_eq!(
            tx.tx_protected, sent,
            "{name}: the traffic SA stays programmed"
        );
        // Received = sent minus wire drops (none: both ends are polled), each in one bucket.
        assert_eq!(
            rx.rx_frames,
            tx.tx_protected + tx.tx_clear - tx.tx_wire_error,
            "{name}"
        );
        assert_eq!(harness::rx_outcomes(&rx), rx.rx_frames, "{name}: {rx:?}");
        assert_eq!(
            c_rx.received.load(Ordering::Relaxed),
            rx.rx_frames,
            "{name}"
        );
        assert_eq!(rx.rx_ok, rx.rx_frames, "{name}: every frame decrypts");
        assert_eq!(
            c_rx.crypto_ok.load(Ordering::Relaxed),
            rx.rx_frames,
            "{name}"
        );
    }
    assert_eq!(a.sa_count(), (1, 1), "only the traffic SAs remain");
    assert_eq!(b.sa_count(), (1, 1), "only the traffic SAs remain");
    assert!(a.parser_entries().is_empty() && b.parser_entries().is_empty());
}

/// DELETE_SA, or DELETE_UDPESP_SA when the SA holds a parser entry reference.
fn delete_held(m: &dyn Miniport, h: OffloadHandle, parser: Option<OffloadHandle>) -> NdisStatus {
    match parser {
        Some(p) => {
            let mut buf = DeleteUdpEspSaRequest {
                offload_handle: h,
                parser_entry: p,
            }
            .to_bytes();
            set(m, Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA, &mut buf)
        }
        None => delete(m, h),
    }
}

// ---- keys ----

/// Distinctive key material: bytes `0xA7, 0xA8, ...`.
const KEY_SEED: u8 = 0xA7;

fn key_strings(len: usize, seed: u8) -> Vec<String> {
    let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
    let w = &bytes[..6.min(bytes.len())];
    let lower: String = w.iter().map(|b| format!("{b:02x}")).collect();
    let upper: String = w.iter().map(|b| format!("{b:02X}")).collect();
    let dec = format!("{:?}", &w[..4.min(w.len())])
        .trim_matches(['[', ']'])
        .to_string();
    let spaced: String = w.iter().map(|b| format!("{b:02x} ")).collect();
    vec![lower, upper, dec, spaced.trim_end().to_string()]
}

fn assert_no_key(what: &str, text: &str) {
    for seed in [KEY_SEED, KEY_SEED.wrapping_add(100)] {
        for needle in key_strings(20, seed) {
            assert!(
                !text.contains(&needle),
                "{what} contains key bytes {needle:?}: {text}"
            );
        }
    }
}

#[test]
fn no_key_bytes_after_delete_sa_in_dump_debug_or_stats() {
    let (m, _c, _peer) = miniport(4);
    let mut handles = Vec::new();
    for (i, (cipher, integ)) in [
        (ConfAlgorithm::AesGcm128, IntegrityAlgorithm::None),
        (ConfAlgorithm::AesCbc128, IntegrityAlgorithm::Sha1),
    ]
    .into_iter()
    .enumerate()
    {
        let r = harness::oid_add_request(
            Direction::Inbound,
            harness::oid_esp(0x6000 + i as u32, cipher, integ, KEY_SEED),
        );
        assert_no_key("AddSaRequest Debug", &format!("{r:?}"));
        handles.push(add(m.as_ref(), &r).unwrap().0);
    }
    let check = |when: &str| {
        assert_no_key(&format!("{when}: dump"), &m.dump());
        assert_no_key(&format!("{when}: miniport Debug"), &format!("{m:?}"));
        assert_no_key(
            &format!("{when}: NIC stats"),
            &format!("{:?}", m.nic_stats()),
        );
        assert_no_key(
            &format!("{when}: data path stats"),
            &format!("{:?}", m.data_path_stats()),
        );
        for h in &handles {
            assert_no_key(&format!("{when}: SA info"), &format!("{:?}", m.sa_info(*h)));
            assert_no_key(
                &format!("{when}: SA stats"),
                &format!("{:?}", m.sa_stats(*h)),
            );
        }
    };
    check("programmed");
    for h in &handles {
        assert_eq!(delete(m.as_ref(), *h), NdisStatus::SUCCESS);
    }
    check("deleted");
    assert_eq!(m.sa_count(), (0, 0));
    assert!(m.sa_info(handles[0]).is_none() && m.sa_stats(handles[0]).is_none());
}

#[test]
fn debug_of_key_holding_types_shows_no_key_bytes() {
    let k20: Vec<u8> = (0..20).map(|i| KEY_SEED.wrapping_add(i)).collect();
    let ipsec_key = Key::new(&k20);
    assert_no_key("ipsec::Key", &format!("{ipsec_key:?}"));
    let secret = oid::SecretKey::new(k20.clone());
    assert_no_key("oid::SecretKey", &format!("{secret:?}"));
    let esp = harness::oid_esp(
        0x7000,
        ConfAlgorithm::AesCbc128,
        IntegrityAlgorithm::Sha1,
        KEY_SEED,
    );
    assert_no_key("oid::SaBundle", &format!("{esp:?}"));
    if let oid::SaBundle::Esp(e) = &esp {
        assert_no_key("oid::EspSa", &format!("{e:?}"));
    }
    let ah = oid::AhSa {
        spi: 0x7001,
        integrity: IntegrityAlgorithm::Sha1,
        integrity_key: oid::SecretKey::new(k20.clone()),
        options: oid::SaOptions::default(),
    };
    assert_no_key("oid::AhSa", &format!("{ah:?}"));
    let req = harness::oid_add_request(Direction::Inbound, esp.clone());
    assert_no_key("oid::AddSaRequest", &format!("{req:?}"));
    let set_req = oid::SetRequest::AddSa(req.clone());
    assert_no_key("oid::SetRequest", &format!("{set_req:?}"));
    let v2 = oid::v2::AddSaV2Request {
        entries: vec![harness::oid_v2_entry(Direction::Inbound, esp.clone())],
    };
    assert_no_key("oid::v2::AddSaV2Request", &format!("{v2:?}"));
    let ex = oid::v2::AddSaExV2Request {
        sa: harness::oid_v2_entry(Direction::Outbound, esp),
        source_switch_port_id: 0,
        vlan_id: 0,
    };
    assert_no_key("oid::v2::AddSaExV2Request", &format!("{ex:?}"));
    // ipsec / nicsim types.
    let mut p = harness::sa_params(
        ipsec::Protocol::Esp,
        Encryption::AesCbc128,
        Integrity::HmacSha1_96,
        0x7002,
        KEY_SEED,
    );
    p.integrity_key = Key::new(&k20);
    assert_no_key("ipsec::SaParams", &format!("{p:?}"));
    let bundle = Bundle::new(std::slice::from_ref(&p), ProviderKind::RustCrypto).unwrap();
    assert_no_key("ipsec::Bundle", &format!("{bundle:?}"));
    if let Some(t) = bundle.esp() {
        assert_no_key("ipsec::Transform", &format!("{t:?}"));
    }
    let spec = SaSpec {
        direction: nicsim::Direction::Inbound,
        sas: vec![p.clone()],
        dst: None,
        src: None,
        udp_encap: None,
    };
    assert_no_key("nicsim::SaSpec", &format!("{spec:?}"));
    let mut table: SaTable<Bundle> = SaTable::new(TableConfig::default());
    let h = table
        .add(spec.clone(), |sas| {
            Bundle::new(sas, ProviderKind::RustCrypto)
        })
        .unwrap();
    assert_no_key("nicsim::SaTable", &format!("{table:?}"));
    assert_no_key("nicsim::SaEntry", &format!("{:?}", table.get(h)));
    assert_no_key("nicsim::SaTable dump", &table.dump());
    let (w, _peer) = MemWire::pair();
    let nic = Nic::new(NicConfig::default(), w);
    let h = nic.add_sa(spec).unwrap();
    assert_no_key("nicsim::Nic", &format!("{nic:?}"));
    assert_no_key("nicsim::Nic dump", &nic.dump());
    nic.delete_sa(h).unwrap();
    assert_no_key(
        "nicsim::Nic after delete",
        &format!("{nic:?} {}", nic.dump()),
    );
    // The OID buffer itself holds keys by design; parsing it must not leak them into Debug.
    let bytes = req.to_bytes(KeyOrder::ConfidentialityFirst).unwrap();
    let parsed = AddSaRequest::parse(&bytes, KeyOrder::ConfidentialityFirst).unwrap();
    assert_no_key("parsed AddSaRequest", &format!("{parsed:?}"));
}

// ---- fault campaigns on the two-host topology ----

/// One fault-campaign run: A sends `SENT` datagrams to B through a seeded injector applying
/// loss, duplication, reordering (window 5, inside the replay window) and corruption, each at
/// `rate`.
struct CampaignRow {
    algorithms: ipsec_nic::Algorithms,
    offload: bool,
    rate: f64,
    faults: nicsim::FaultStats,
    delivered: u64,
    unique: u64,
    replay: u64,
    auth: u64,
    malformed: u64,
    other: u64,
    total_drops: u64,
}

impl CampaignRow {
    fn header() -> String {
        format!(
            "{:<22} {:>4} {:>5} | {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} | {:>5} {:>6} {:>6} {:>4} {:>4} {:>5} {:>5}",
            "algorithms",
            "nic",
            "rate",
            "sent",
            "lost",
            "dup",
            "reor",
            "corr",
            "rx",
            "deliv",
            "unique",
            "replay",
            "auth",
            "malf",
            "other",
            "drops"
        )
    }

    fn line(&self) -> String {
        let f = &self.faults;
        format!(
            "{:<22} {:>4} {:>5.2} | {:>4} {:>4} {:>4} {:>4} {:>4} {:>5} | {:>5} {:>6} {:>6} {:>4} {:>4} {:>5} {:>5}",
            format!("{:?}", self.algorithms),
            if self.offload { "on" } else { "off" },
            self.rate,
            f.input,
            f.dropped,
            f.duplicated,
            f.reordered,
            f.corrupted,
            f.passed,
            self.delivered,
            self.unique,
            self.replay,
            self.auth,
            self.malformed,
            self.other,
            self.total_drops
        )
    }
}

const CAMPAIGN_SENT: usize = 150;

/// Run one campaign; returns the row and the violated properties.
fn campaign(
    algorithms: ipsec_nic::Algorithms,
    offload: bool,
    rate: f64,
    seed: u64,
) -> (CampaignRow, Vec<String>) {
    use ipsec_nic::{A_V4, B_V4, ManualSaOptions, TopologyConfig, TwoHosts, manual_sa};
    use std::net::SocketAddr;
    let mut cfg = TopologyConfig::standard();
    cfg.capture = ipsec_nic::Capture::None;
    cfg.a.offload = offload;
    cfg.b.offload = offload;
    cfg.faults_a_to_b = nicsim::FaultConfig {
        seed,
        loss: rate,
        duplicate: rate,
        reorder: rate,
        reorder_window: 5,
        corrupt: rate,
        ..Default::default()
    };
    let mut net = TwoHosts::new(cfg).unwrap();
    manual_sa(
        &mut net,
        &ManualSaOptions {
            algorithms,
            ..Default::default()
        },
    )
    .unwrap();
    net.drive().unwrap();
    let (src, dst) = (
        SocketAddr::new(A_V4.into(), 5000),
        SocketAddr::new(B_V4.into(), 6000),
    );
    let payload = |i: usize| format!("campaign-{i:05}-{}", "x".repeat(40)).into_bytes();
    let mut delivered: Vec<Vec<u8>> = Vec::new();
    let mut bad = Vec::new();
    let mut buf = [0u8; 256];
    let mut recv = |net: &mut TwoHosts, delivered: &mut Vec<Vec<u8>>, bad: &mut Vec<String>| {
        while let Some(d) = net.b.stack_mut().recv_udp(&mut buf) {
            if !d.secure {
                bad.push(format!("cleartext datagram delivered: {d:?}"));
            }
            delivered.push(buf.get(..d.len).unwrap_or(&[]).to_vec());
        }
    };
    for chunk in 0..CAMPAIGN_SENT.div_ceil(10) {
        let now = net.now();
        for i in chunk * 10..(chunk * 10 + 10).min(CAMPAIGN_SENT) {
            net.a
                .stack_mut()
                .send_udp(now, src, dst, &payload(i))
                .unwrap();
        }
        net.step();
        recv(&mut net, &mut delivered, &mut bad);
    }
    if net.drive().is_none() {
        bad.push("the topology did not settle".into());
    }
    recv(&mut net, &mut delivered, &mut bad);
    let f = net.faults_a_to_b();
    let s = net.b.stack().statistics();
    let d = s.ipsec.aggregate_drop_packet_statistics;
    let nic = net.b.nic_stats();
    let total_drops = u64::from(d.total_drop_packets_inbound);
    let replay = u64::from(d.replay_check_failures_on_inbound);
    let auth = u64::from(d.authentication_failures_on_inbound);
    let malformed = s.inbound.malformed;
    let other = total_drops - replay - auth - malformed;
    let sent_set: BTreeSet<Vec<u8>> = (0..CAMPAIGN_SENT).map(payload).collect();
    let unique: BTreeSet<Vec<u8>> = delivered.iter().cloned().collect();
    let row = CampaignRow {
        algorithms,
        offload,
        rate,
        faults: f,
        delivered: delivered.len() as u64,
        unique: unique.len() as u64,
        replay,
        auth,
        malformed,
        other,
        total_drops,
    };
    let mut check = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    check(
        f.input == CAMPAIGN_SENT as u64,
        format!("injector saw {} frames", f.input),
    );
    check(
        f.passed == f.input - f.dropped + f.duplicated && nic.rx_frames == f.passed,
        format!("frames passed {} vs B's NIC {}", f.passed, nic.rx_frames),
    );
    // Every frame B received is counted once: delivered or dropped by reason.
    check(
        s.inbound.delivered + total_drops == f.passed,
        format!(
            "{} delivered + {total_drops} dropped != {} received",
            s.inbound.delivered, f.passed
        ),
    );
    check(
        s.inbound.delivered == delivered.len() as u64,
        "delivery counter != datagrams read".into(),
    );
    // No duplicate delivered; only what A sent.
    check(
        unique.len() == delivered.len(),
        "a datagram was delivered twice".into(),
    );
    check(
        unique.is_subset(&sent_set),
        "a datagram A never sent".into(),
    );
    // Every datagram whose frame arrived intact at least once is delivered: at most the lost
    // and the corrupted ones are missing (reordering stays inside the replay window).
    check(
        unique.len() as u64 + f.dropped + f.corrupted >= CAMPAIGN_SENT as u64,
        format!(
            "{} delivered < {} sent - {} lost - {} corrupted",
            unique.len(),
            CAMPAIGN_SENT,
            f.dropped,
            f.corrupted
        ),
    );
    // Every corrupted frame is dropped (or harmless: a flipped MAC address bit): drops other
    // than replays come only from corrupted copies (a frame is corrupted before it is
    // duplicated, so both copies carry the flip); replays only from duplicates and corrupted
    // sequence numbers (software checks the replay window before the ICV).
    let corrupted_copies = f.corrupted + f.duplicated.min(f.corrupted);
    check(
        total_drops - replay <= corrupted_copies,
        format!(
            "{} non-replay drops > {corrupted_copies} corrupted copies",
            total_drops - replay
        ),
    );
    check(
        auth <= corrupted_copies,
        format!("{auth} ICV failures > {corrupted_copies} corrupted copies"),
    );
    check(
        replay <= f.duplicated + corrupted_copies,
        format!("{replay} replay drops > {} duplicates", f.duplicated),
    );
    if f.corrupted == 0 {
        check(
            total_drops == replay && replay == f.duplicated,
            format!(
                "without corruption every duplicate is exactly one replay drop: {replay} vs {}",
                f.duplicated
            ),
        );
    }
    // The NIC's ICV verdicts are the stack's authentication failures (offload on).
    let nic_auth = nic.rx_transport_esp_auth_failed
        + nic.rx_transport_ah_auth_failed
        + nic.rx_tunnel_esp_auth_failed
        + nic.rx_tunnel_ah_auth_failed;
    if offload {
        // A frame the NIC failed can still be dropped earlier by the stack for another
        // reason (AH: a flipped outer-header bit fails the IPv4 checksum first).
        check(
            auth <= nic_auth && nic_auth <= auth + malformed + other,
            format!("NIC auth failures {nic_auth} vs stack's {auth}"),
        );
    } else {
        check(nic_auth == 0, "NIC verified frames with offload off".into());
    }
    (row, bad)
}

/// Fault campaigns: loss, duplication, reordering and corruption at 0, 1, 5 and 20 % for
/// several algorithms, offloaded and in software. The table prints with
/// `cargo test --test robustness fault_campaigns -- --nocapture` (and in the failure message).
#[test]
fn fault_campaigns() {
    use ipsec_nic::Algorithms as A;
    let mut table = vec![CampaignRow::header()];
    let mut failures = Vec::new();
    let runs = [
        (A::AesGcm128, true),
        (A::AesCbc128HmacSha256, true),
        (A::AhHmacSha256, true),
        (A::AesGcm128ThenAhSha1, false),
    ];
    for (k, (alg, offload)) in runs.into_iter().enumerate() {
        for (j, rate) in [0.0, 0.01, 0.05, 0.2].into_iter().enumerate() {
            let (row, bad) = campaign(alg, offload, rate, 100 + (k * 4 + j) as u64);
            for b in bad {
                failures.push(format!("{alg:?} offload {offload} rate {rate}: {b}"));
            }
            table.push(row.line());
        }
    }
    let table = table.join("\n");
    println!("{table}");
    assert!(failures.is_empty(), "{}\n\n{table}", failures.join("\n"));
}

// ---- secrets in the demo and after delete through the WFP API ----

/// The keys `manual_sa` installs are a seed byte repeated (`ManualSaOptions::key_*`, default
/// 0xA1 and 0xB2): the renderings of 8 such bytes a log or report could contain.
fn repeated_key_needles(seed: u8) -> Vec<String> {
    let w = [seed; 8];
    let lower: String = w.iter().map(|b| format!("{b:02x}")).collect();
    let upper: String = w.iter().map(|b| format!("{b:02X}")).collect();
    let spaced: String = w.iter().map(|b| format!("{b:02x} ")).collect();
    let dec = format!("{:?}", &w[..4])
        .trim_matches(['[', ']'])
        .to_string();
    let hex_list = format!("{:#04x?}", &w[..4])
        .replace(['\n', ' '], "")
        .trim_matches(['[', ']'])
        .to_string();
    let comma_hex = format!("{:x?}", &w[..4])
        .trim_matches(['[', ']'])
        .to_string();
    vec![
        lower,
        upper,
        spaced.trim_end().to_string(),
        dec,
        hex_list,
        comma_hex,
    ]
}

fn assert_no_demo_key(what: &str, text: &str) {
    let o = ipsec_nic::ManualSaOptions::default();
    for seed in [o.key_a_in, o.key_b_in, o.key_a_out] {
        for needle in repeated_key_needles(seed) {
            assert!(
                !text.contains(&needle),
                "{what} contains key bytes {needle:?}:\n{text}"
            );
        }
    }
}

/// The needles do find a key rendered in each of those ways (the check is not vacuous).
#[test]
fn key_needles_find_rendered_keys() {
    let key = [0xA1u8; 20];
    let renderings = [
        key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        key.iter().map(|b| format!("{b:02X}")).collect::<String>(),
        format!("{key:?}"),
        format!("{key:x?}"),
        format!("{key:#04x?}").replace(['\n', ' '], ""),
    ];
    for r in renderings {
        let hit = repeated_key_needles(0xA1).iter().any(|n| r.contains(n));
        assert!(hit, "no needle matches {r}");
    }
}

/// The in-memory demo's report, for every algorithm set, tunnel mode and IPv6, shows no key
/// bytes.
#[test]
fn demo_report_has_no_key_bytes() {
    use ipsec_nic::{Algorithms, ManualSaOptions, SaMode};
    let mut runs: Vec<ManualSaOptions> = Algorithms::ALL
        .iter()
        .map(|a| ManualSaOptions {
            algorithms: *a,
            ..Default::default()
        })
        .collect();
    runs.push(ManualSaOptions {
        mode: SaMode::Tunnel,
        ..Default::default()
    });
    runs.push(ManualSaOptions {
        ipv6: true,
        ..Default::default()
    });
    for o in runs {
        let r = ipsec_nic::cli::demo::run(&o, 3, 1).unwrap();
        assert_eq!((r.udp_received, r.echo_replies), (3, 1), "{o:?}");
        assert!(!r.report.is_empty());
        assert_no_demo_key(&format!("demo report {o:?}"), &r.report);
        assert_no_demo_key(
            &format!("demo result Debug {o:?}"),
            &format!("{r:?}").replace(&format!("{:?}", r.pcap), ""),
        );
    }
}

/// `ipsec-nic demo --in-memory` with debug logging (-vv and RUST_LOG=debug), text and JSON:
/// neither stdout nor stderr holds key bytes.
#[test]
fn demo_binary_output_and_debug_logs_have_no_key_bytes() {
    let dir = std::env::temp_dir().join(format!("ipsec-nic-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("demo.pcap");
    for extra in [
        &[][..],
        &["--json"][..],
        &["--algorithm", "aes-cbc-128-hmac-sha1"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipsec-nic"))
            .args([
                "-vv",
                "demo",
                "--in-memory",
                "--udp",
                "3",
                "--pings",
                "1",
                "--pcap",
            ])
            .arg(&pcap)
            .args(extra)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "demo {extra:?} failed:\n{stdout}\n{stderr}"
        );
        assert!(!stdout.is_empty(), "demo {extra:?} printed nothing");
        assert_no_demo_key(&format!("demo {extra:?} stdout"), &stdout);
        assert_no_demo_key(&format!("demo {extra:?} stderr"), &stderr);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keys through the WFP API: after `IPsecSaContextDeleteById0` on both hosts the NICs hold no
/// SA (DELETE_SA reached them), and neither the NIC dumps, nor `Debug` of the topology, nor
/// the statistics, nor GetById/Enum (before and after) show key bytes.
#[test]
fn keys_gone_after_sa_context_delete_through_the_public_api() {
    use ipsec_nic::{A_V4, B_V4, ManualSaOptions, TwoHosts, manual_sa};
    use std::net::SocketAddr;
    let mut net = TwoHosts::standard().unwrap();
    let sa = manual_sa(
        &mut net,
        &ManualSaOptions {
            algorithms: ipsec_nic::Algorithms::AesCbc128HmacSha256,
            ..Default::default()
        },
    )
    .unwrap();
    net.drive().unwrap();
    let now = net.now();
    let (src, dst) = (
        SocketAddr::new(A_V4.into(), 5000),
        SocketAddr::new(B_V4.into(), 6000),
    );
    net.a.stack_mut().send_udp(now, src, dst, b"x").unwrap();
    net.drive().unwrap();
    assert_eq!(net.b.nic_stats().rx_ok, 1);
    let texts = |net: &TwoHosts| {
        let mut t = vec![format!("{net:?}")];
        for h in [&net.a, &net.b] {
            t.push(h.miniport().dump());
            t.push(format!("{:?}", h.nic_stats()));
            t.push(format!("{:?}", h.stack().statistics()));
            t.push(format!("{:?}", h.stack().bfe()));
        }
        t
    };
    for t in texts(&net) {
        assert_no_demo_key("before delete", &t);
    }
    for (h, side) in [(&mut net.a, sa.a), (&mut net.b, sa.b)] {
        let bfe = h.stack_mut().bfe_mut();
        let c = bfe
            .ipsec_sa_context_get_by_id1(side.engine, side.context)
            .unwrap();
        assert_no_demo_key("GetById1", &format!("{c:?}"));
        let e = bfe
            .ipsec_sa_context_create_enum_handle0(side.engine, None)
            .unwrap();
        let all = bfe.ipsec_sa_context_enum1(side.engine, e, 100).unwrap();
        assert_eq!(all.len(), 1);
        assert_no_demo_key("Enum1", &format!("{all:?}"));
        bfe.ipsec_sa_context_delete_by_id0(side.engine, side.context)
            .unwrap();
    }
    net.drive().unwrap();
    for h in [&net.a, &net.b] {
        assert_eq!(
            h.miniport().sa_count(),
            (0, 0),
            "{}: SAs left on the NIC",
            h.name()
        );
        assert!(h.stack().bfe().sa_contexts().next().is_none());
        assert!(h.stack().statistics().offload.delete_sa >= 2);
    }
    for t in texts(&net) {
        assert_no_demo_key("after delete", &t);
    }
}

// ---- concurrency: the traffic SAs themselves are deleted under load ----

/// Records every send completion's cookie and status.
#[derive(Default)]
struct CompletionLog {
    completions: Mutex<Vec<(u64, NdisStatus)>>,
    received: AtomicU64,
}

impl oid::Protocol for CompletionLog {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        self.received
            .fetch_add(nbls.len() as u64, Ordering::Relaxed);
        nbls.clear();
    }
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        if let Ok(mut c) = self.completions.lock() {
            c.extend(nbls.iter().map(|n| (n.cookie, n.status)));
        }
        nbls.clear();
    }
    fn status_indication(&self, _i: &StatusIndication<'_>) {}
}

/// Cookie bit: the frame's SA had already been deleted (DELETE_SA returned) when the frame was
/// handed to the miniport.
const SENT_AFTER_DELETE: u64 = 1 << 63;

/// Two threads push traffic (A->B and B->A) on the current traffic SA of their direction
/// while a third replaces those very SAs (ADD new generation with a new SPI and key, then
/// DELETE_SA the old one) as fast as it can. No frame handed to the miniport after its SA's
/// DELETE_SA returned is ever protected (the NIC refuses the stale handle), every frame is
/// completed once, nothing decrypts with a key that is not its own (no ICV failure: SPIs are
/// never reused), and every received frame lands in one receive counter. Bounded in time.
#[test]
fn traffic_on_sas_being_deleted_never_uses_a_deleted_key() {
    const RUN: Duration = Duration::from_millis(1200);
    const MAX_BATCHES: u64 = 600;
    let (wa, wb) = MemWire::pair();
    let a = Arc::new(VirtualMiniport::initialize(harness::miniport_config(8), wa));
    let b = Arc::new(VirtualMiniport::initialize(harness::miniport_config(8), wb));
    let (la, lb) = (
        Arc::new(CompletionLog::default()),
        Arc::new(CompletionLog::default()),
    );
    a.bind(la.clone());
    b.bind(lb.clone());
    // Per direction: (outbound handle, SPI, key seed) of the current generation.
    type Current = Mutex<(OffloadHandle, u32, u8)>;
    let install = |from: &VirtualMiniport, to: &VirtualMiniport, spi: u32, seed: u8| {
        let (h, _) = add(from, &gcm_req(Direction::Outbound, spi, seed)).unwrap();
        let mut inb = gcm_req(Direction::Inbound, spi, seed);
        inb.selector.dest_addr = Ipv4Addr::UNSPECIFIED;
        inb.selector.dest_mask = Ipv4Addr::UNSPECIFIED;
        let (hin, _) = add(to, &inb).unwrap();
        (h, hin)
    };
    let (ha, ia) = install(&a, &b, 0x7000, 1);
    let (hb, ib) = install(&b, &a, 0x7800, 2);
    let current: [Arc<Current>; 2] = [
        Arc::new(Mutex::new((ha, 0x7000, 1))),
        Arc::new(Mutex::new((hb, 0x7800, 2))),
    ];
    let deleted: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let clock = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (sent, generations) = std::thread::scope(|s| {
        let mut senders = Vec::new();
        for (dir, (from, to)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
            let (clock, stop, cur, deleted) = (
                Arc::clone(&clock),
                Arc::clone(&stop),
                Arc::clone(&current[dir]),
                Arc::clone(&deleted),
            );
            senders.push(s.spawn(move || {
                let inner = harness::udp_packet(false, harness::MARKER);
                let mut n = 0u64;
                let mut batches = 0;
                while !stop.load(Ordering::Relaxed) && batches < MAX_BATCHES {
                    batches += 1;
                    let (h, spi, seed) = *cur.lock().unwrap();
                    let host = Bundle::new(
                        &gcm_case(spi, seed)
                            .sas
                            .iter()
                            .map(harness::peer_view)
                            .collect::<Vec<SaParams>>(),
                        ProviderKind::RustCrypto,
                    )
                    .unwrap();
                    let mut batch = Vec::new();
                    for _ in 0..4 {
                        n += 1;
                        let mut buf = vec![0u8; harness::HEADROOM + inner.len() + 128];
                        buf[harness::HEADROOM..harness::HEADROOM + inner.len()]
                            .copy_from_slice(&inner);
                        let r = host
                            .encapsulate(
                                ipsec::BundleSeq { esp: n, ah: n },
                                &mut buf,
                                harness::HEADROOM..harness::HEADROOM + inner.len(),
                            )
                            .unwrap();
                        let mut nbl = Nbl::with_capacity(2048, 64);
                        assert!(nbl.fill(64, &harness::ethernet(&buf[r])));
                        nbl.send_info.offload_handle = h;
                        nbl.cookie = n;
                        batch.push(nbl);
                    }
                    // Decided before the miniport sees the frames: if DELETE_SA of `h` has
                    // returned by now, none of them may be protected.
                    if deleted.lock().unwrap().contains(&h.0) {
                        for nbl in &mut batch {
                            nbl.cookie |= SENT_AFTER_DELETE;
                        }
                    }
                    from.send_net_buffer_lists(&mut batch);
                    let t = clock.fetch_add(1, Ordering::Relaxed);
                    from.poll(Duration::from_micros(t));
                    to.poll(Duration::from_micros(t));
                }
                n
            }));
        }
        let (a2, b2) = (&a, &b);
        let (stop2, current2, deleted2) = (Arc::clone(&stop), &current, Arc::clone(&deleted));
        let churn = s.spawn(move || {
            let mut inbound = [ia, ib];
            let mut g = 0u32;
            while start.elapsed() < RUN {
                g += 1;
                let dir = (g % 2) as usize;
                let (from, to): (&VirtualMiniport, &VirtualMiniport) =
                    if dir == 0 { (a2, b2) } else { (b2, a2) };
                let spi = 0x7000 + 0x800 * dir as u32 + g;
                let seed = (g % 200) as u8 + 10;
                let (h, hin) = install(from, to, spi, seed);
                let old = core::mem::replace(&mut *current2[dir].lock().unwrap(), (h, spi, seed));
                let old_in = core::mem::replace(&mut inbound[dir], hin);
                // Give the senders a moment on the old SA, then delete it under their feet.
                std::thread::yield_now();
                assert_eq!(delete(from, old.0), NdisStatus::SUCCESS);
                deleted2.lock().unwrap().insert(old.0.0);
                assert_eq!(delete(to, old_in), NdisStatus::SUCCESS);
            }
            stop2.store(true, Ordering::Relaxed);
            g
        });
        let sent: Vec<u64> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        (sent, churn.join().unwrap())
    });
    for k in 0..50 {
        let t = clock.fetch_add(1, Ordering::Relaxed) + k;
        a.poll(Duration::from_micros(t));
        b.poll(Duration::from_micros(t));
    }
    assert!(start.elapsed() < Duration::from_secs(20), "bounded run");
    assert!(generations > 10, "only {generations} SA generations");
    let mut after_delete = 0;
    for (name, n, log, tx, rx) in [
        ("A->B", sent[0], &la, a.nic_stats(), b.nic_stats()),
        ("B->A", sent[1], &lb, b.nic_stats(), a.nic_stats()),
    ] {
        let c = log.completions.lock().unwrap();
        assert_eq!(c.len() as u64, n, "{name}: every frame completed once");
        let cookies: BTreeSet<u64> = c.iter().map(|(k, _)| k & !SENT_AFTER_DELETE).collect();
        assert_eq!(cookies.len() as u64, n, "{name}: a frame completed twice");
        for (cookie, status) in c.iter() {
            if cookie & SENT_AFTER_DELETE != 0 {
                after_delete += 1;
                assert_ne!(
                    *status,
                    NdisStatus::SUCCESS,
                    "{name}: frame {} sent after its SA's DELETE_SA was protected",
                    cookie & !SENT_AFTER_DELETE
                );
            }
        }
        let ok = c.iter().filter(|(_, s)| *s == NdisStatus::SUCCESS).count() as u64;
        assert_eq!(ok, tx.tx_protected, "{name}: {tx:?}");
        assert_eq!(harness::tx_outcomes(&tx), n, "{name}: {tx:?}");
        assert_eq!(
            rx.rx_frames,
            tx.tx_protected + tx.tx_clear - tx.tx_wire_error,
            "{name}: only protected frames reach the wire"
        );
        assert_eq!(harness::rx_outcomes(&rx), rx.rx_frames, "{name}: {rx:?}");
        assert_eq!(
            rx.rx_transport_esp_auth_failed, 0,
            "{name}: a frame met a key not its own: {rx:?}"
        );
        assert_eq!(rx.rx_ok + rx.rx_no_sa, rx.rx_frames, "{name}: {rx:?}");
    }
    // Churn really raced the traffic (frames after a delete, and deleted SAs' in-flight
    // frames) at least somewhere; the run is timing-dependent, so only the sum is required.
    let refused = a.nic_stats().tx_unknown_handle + b.nic_stats().tx_unknown_handle;
    assert!(
        refused >= after_delete,
        "{refused} refusals < {after_delete} frames sent after delete"
    );
    assert_eq!(a.sa_count(), (1, 1));
    assert_eq!(b.sa_count(), (1, 1));
}
