//! The NIC: SA programming API, TX/RX queues, worker threads or deterministic stepping.
//!
//! # Data path
//! * [`Nic::send`] moves a batch of frames (each with [`crate::TxMeta`]) onto a TX queue, steered
//!   by SA so that frames of one SA keep their order. Every queue is a vector that stays in
//!   place (frames are appended to it and drained from it, so its capacity is kept) plus a
//!   one-slot doorbell for the worker thread: in steady state nothing is allocated per frame
//!   or per batch.
//! * The queued frames are processed either by [`Nic::poll`] in the caller's thread (stepping
//!   mode: deterministic, used by tests and the two-host simulation) or by worker threads
//!   started with [`Nic::start`] (one per queue, plus one port thread that reads the wire and
//!   steers received frames by SPI).
//! * Every sent frame comes back once through [`Nic::take_completions`] with its
//!   [`crate::TxStatus`]; frames whose buffer moved to the peer (in-memory wire) come back as
//!   husks: an empty data range, and an empty `buf` or a buffer the peer recycled. Every received frame goes up through [`Nic::take_indications`]
//!   with its [`crate::RxMeta`].
//! * [`Nic::process_tx`] / [`Nic::process_rx`] run the crypto engine on frames in place without
//!   queues or wire (for callers that own their own I/O, and for benchmarks).
//!
//! # Control path
//! [`Nic::add_sa`], [`Nic::delete_sa`] and [`Nic::set_esn_high`] are safe while traffic flows:
//! see [`crate::table`] for the locking scheme (each batch runs under the table's read lock).

use core::time::Duration;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, select};
use ipsec::{Bundle, Classified, ProviderKind};

use crate::engine::{Engine, Table, ip_range};
use crate::frame::{Frame, SaHandle, TxStatus};
use crate::stats::{NicCounters, NicStats, SaStats, bump};
use crate::table::{SaInfo, SaSpec, TableConfig, TableError};
use crate::wire::{Wire, nanos};

/// NIC configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NicConfig {
    /// SA table sizing and delete-request policy.
    pub table: TableConfig,
    /// The crypto provider every SA is compiled with.
    pub provider: ProviderKind,
    /// Queues (and worker threads, once started). At least 1.
    pub queues: usize,
    /// Frames the NIC takes from the wire per receive call.
    pub rx_batch: usize,
}

impl Default for NicConfig {
    fn default() -> Self {
        NicConfig {
            table: TableConfig::default(),
            provider: ProviderKind::fastest(),
            queues: 1,
            rx_batch: 64,
        }
    }
}

type Chan = (Sender<Vec<Frame>>, Receiver<Vec<Frame>>);

/// A frame queue: frames accumulate in one vector that never leaves the queue (so it keeps
/// its capacity and appending allocates nothing once it has reached its working size), and a
/// one-slot doorbell wakes a worker thread blocked in `select!`. A consumer that wakes on the
/// bell takes everything queued, so a bell that is already rung need not be rung twice.
struct Queue {
    frames: Mutex<Vec<Frame>>,
    bell: (Sender<()>, Receiver<()>),
}

impl Queue {
    fn new() -> Self {
        Queue {
            frames: Mutex::new(Vec::new()),
            bell: bounded(1),
        }
    }

    /// Append (and empty) `v`, then ring the bell.
    fn push(&self, v: &mut Vec<Frame>) {
        if v.is_empty() {
            return;
        }
        self.frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(v);
        let _ = self.bell.0.try_send(());
    }

    /// Move everything queued to the end of `out`; returns how many frames moved.
    fn take(&self, out: &mut Vec<Frame>) -> usize {
        let mut q = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        let n = q.len();
        out.append(&mut q);
        n
    }
}

struct Shared {
    table: RwLock<Table>,
    counters: NicCounters,
    cfg: NicConfig,
    clock: AtomicU64,
    stop: AtomicBool,
    wire: Mutex<Box<dyn Wire>>,
    tx_queues: Vec<Queue>,
    rx_queues: Vec<Queue>,
    completions: Queue,
    indications: Queue,
    spare: Chan,
    steer_scratch: Mutex<Vec<Vec<Frame>>>,
}

/// The simulated NIC. Cheap to share by reference across threads (`&Nic` is `Send + Sync`).
pub struct Nic {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl core::fmt::Debug for Nic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Nic")
            .field("cfg", &self.shared.cfg)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

/// Spare batch vectors kept for reuse.
const SPARE_BATCHES: usize = 256;

fn steer_key(x: u64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) % n as u64) as usize
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn wire(&self) -> MutexGuard<'_, Box<dyn Wire>> {
        self.wire.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn batch(&self) -> Vec<Frame> {
        self.spare.1.try_recv().unwrap_or_default()
    }

    fn give_back(&self, mut v: Vec<Frame>) {
        v.clear();
        if v.capacity() > 0 {
            let _ = self.spare.0.try_send(v);
        }
    }

    /// Process a TX batch, hand the good frames to the wire, complete all of them.
    fn run_tx(&self, now_ns: u64, frames: &mut Vec<Frame>) {
        {
            let table = self.read();
            let engine = Engine::new(&table, &self.counters, now_ns);
            for f in frames.iter_mut() {
                engine.transmit(f);
            }
        }
        let mut done = self.batch();
        let mut out = self.batch();
        for f in frames.drain(..) {
            if f.tx.status == TxStatus::Pending {
                out.push(f);
            } else {
                done.push(f);
            }
        }
        let before = done.len();
        {
            let mut wire = self.wire();
            let _ = wire.transmit(Duration::from_nanos(now_ns), &mut out, &mut done);
        }
        for f in done.iter().skip(before) {
            if f.tx.status == TxStatus::WireError {
                bump(&self.counters.tx_wire_error);
            }
        }
        self.give_back(out);
        self.completions.push(&mut done);
        self.give_back(done);
    }

    /// Process an RX batch and indicate it.
    fn run_rx(&self, now_ns: u64, frames: &mut Vec<Frame>) {
        {
            let table = self.read();
            let engine = Engine::new(&table, &self.counters, now_ns);
            for f in frames.iter_mut() {
                engine.receive(f);
            }
        }
        self.indications.push(frames);
    }

    /// Receive up to one batch from the wire (also lets middleware release held frames).
    fn pull(&self, now_ns: u64, into: &mut Vec<Frame>) -> usize {
        let mut wire = self.wire();
        let now = Duration::from_nanos(now_ns);
        let mut none = Vec::new();
        let mut done = Vec::new();
        let _ = wire.transmit(now, &mut none, &mut done);
        wire.receive(now, into, self.cfg.rx_batch.max(1))
            .unwrap_or(0)
    }

    fn rx_steer(&self, f: &Frame) -> usize {
        let n = self.rx_queues.len();
        if n <= 1 {
            return 0;
        }
        let bytes = f.bytes();
        let spi = ip_range(bytes)
            .and_then(|r| bytes.get(r))
            .and_then(|p| match ipsec::classify(p, self.read().encap_ports()) {
                Ok(Classified::Esp(k) | Classified::Ah(k)) => Some(k.spi),
                _ => None,
            })
            .unwrap_or(0);
        steer_key(u64::from(spi), n)
    }
}

impl Nic {
    /// A NIC on `wire`, in stepping mode (call [`Nic::poll`], or [`Nic::start`] for threads).
    pub fn new(cfg: NicConfig, wire: impl Wire + 'static) -> Nic {
        let queues = cfg.queues.max(1);
        let cfg = NicConfig { queues, ..cfg };
        let shared = Shared {
            table: RwLock::new(Table::new(cfg.table)),
            counters: NicCounters::default(),
            cfg,
            clock: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wire: Mutex::new(Box::new(wire)),
            tx_queues: (0..queues).map(|_| Queue::new()).collect(),
            rx_queues: (0..queues).map(|_| Queue::new()).collect(),
            completions: Queue::new(),
            indications: Queue::new(),
            spare: bounded(SPARE_BATCHES),
            steer_scratch: Mutex::new(Vec::new()),
        };
        Nic {
            shared: Arc::new(shared),
            threads: Vec::new(),
        }
    }

    /// The configuration (queues clamped to at least 1).
    pub fn config(&self) -> NicConfig {
        self.shared.cfg
    }

    // ---- control path ----

    /// Program an SA or an ESP+AH bundle. Atomic: all SAs of the bundle or none.
    ///
    /// # Errors
    /// [`TableError::Full`], [`TableError::Invalid`], [`TableError::Duplicate`].
    pub fn add_sa(&self, spec: SaSpec) -> Result<SaHandle, TableError> {
        let provider = self.shared.cfg.provider;
        let c = &self.shared.counters;
        let r = self
            .shared
            .write()
            .add(spec, |sas| Bundle::new(sas, provider));
        match r {
            Ok(_) => bump(&c.sa_added),
            Err(TableError::Full) => bump(&c.sa_add_full),
            Err(_) => bump(&c.sa_add_invalid),
        }
        r
    }

    /// Delete an SA (bundle): waits for in-flight batches, frees the slot, zeroizes keys.
    /// Returns its final counters.
    ///
    /// # Errors
    /// [`TableError::NotFound`] for an unknown or stale handle.
    pub fn delete_sa(&self, handle: SaHandle) -> Result<SaStats, TableError> {
        let r = self.shared.write().delete(handle);
        if r.is_ok() {
            bump(&self.shared.counters.sa_deleted);
        }
        r
    }

    /// Set the ESN high-order 32 bits of an outbound SA (NDIS v2 `UPDATE_SA`).
    ///
    /// # Errors
    /// [`TableError::NotFound`]; [`TableError::NotApplicable`] for inbound or non-ESN SAs.
    pub fn set_esn_high(&self, handle: SaHandle, hi: u32) -> Result<(), TableError> {
        self.shared.read().set_esn_high(handle, hi)
    }

    /// `(inbound, outbound)` capacity (what the miniport advertises, e.g. `SaOffloadCapacity`).
    pub fn capacity(&self) -> (usize, usize) {
        self.shared.read().capacity()
    }

    /// `(inbound, outbound)` SAs programmed.
    pub fn sa_count(&self) -> (usize, usize) {
        self.shared.read().len()
    }

    /// NIC-wide counters.
    pub fn stats(&self) -> NicStats {
        self.shared.counters.snapshot()
    }

    /// Counters of one SA.
    pub fn sa_stats(&self, handle: SaHandle) -> Option<SaStats> {
        self.shared.read().get(handle).map(|e| e.stats())
    }

    /// Key-free description of one SA.
    pub fn sa_info(&self, handle: SaHandle) -> Option<SaInfo> {
        self.shared.read().get(handle).map(|e| e.info().clone())
    }

    /// Text dump (netdevsim debugfs style): the table (one line per SA), then a `nic` line
    /// with every NIC counter. Stable format, never keys.
    pub fn dump(&self) -> String {
        let mut s = self.shared.read().dump();
        s.push_str("nic ");
        crate::stats::write_fields(&mut s, self.stats().fields());
        s.push('\n');
        s
    }

    // ---- data path without queues ----

    /// Run the transmit engine on `frames` in place (no wire); sets each `tx.status`
    /// (`Pending` = ready for the wire).
    pub fn process_tx(&self, now: Duration, frames: &mut [Frame]) {
        let table = self.shared.read();
        let engine = Engine::new(&table, &self.shared.counters, nanos(now));
        for f in frames {
            engine.transmit(f);
        }
    }

    /// Run the receive engine on `frames` in place (no wire); fills each `rx`.
    pub fn process_rx(&self, now: Duration, frames: &mut [Frame]) {
        let table = self.shared.read();
        let engine = Engine::new(&table, &self.shared.counters, nanos(now));
        for f in frames {
            engine.receive(f);
        }
    }

    // ---- queued data path ----

    /// Queue `frames` for transmission (left empty, possibly with another vector's capacity).
    /// Frames are steered by SA so that each SA's frames stay in order.
    pub fn send(&self, frames: &mut Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        let s = &self.shared;
        let n = s.tx_queues.len();
        if n == 1 {
            if let Some(q) = s.tx_queues.first() {
                q.push(frames);
            }
            return;
        }
        let mut per = s
            .steer_scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        per.resize_with(n, Vec::new);
        for f in frames.drain(..) {
            let key = if f.tx.next_handle.is_none() {
                f.tx.handle
            } else {
                f.tx.next_handle
            };
            if let Some(v) = per.get_mut(steer_key(key.raw(), n)) {
                v.push(f);
            }
        }
        for (v, q) in per.iter_mut().zip(&s.tx_queues) {
            q.push(v);
        }
    }

    /// Stepping mode: process everything queued for transmission, then receive and process one
    /// batch from the wire, all in the caller's thread at virtual time `now`. Returns the number
    /// of frames processed. Must not be mixed with [`Nic::start`].
    pub fn poll(&self, now: Duration) -> usize {
        let s = &self.shared;
        let now_ns = nanos(now);
        s.clock.store(now_ns, Ordering::Relaxed);
        let mut n = 0;
        let mut tx = s.batch();
        for q in &s.tx_queues {
            n += q.take(&mut tx);
        }
        s.run_tx(now_ns, &mut tx);
        s.give_back(tx);
        let mut rx = s.batch();
        n += s.pull(now_ns, &mut rx);
        s.run_rx(now_ns, &mut rx);
        s.give_back(rx);
        n
    }

    /// Move every completed transmit frame into `out` (in completion order).
    pub fn take_completions(&self, out: &mut Vec<Frame>) {
        self.shared.completions.take(out);
    }

    /// Move every received (processed) frame into `out`.
    pub fn take_indications(&self, out: &mut Vec<Frame>) {
        self.shared.indications.take(out);
    }

    /// Give a buffer back to the port (TAP keeps a pool for received frames).
    pub fn recycle(&self, buf: Vec<u8>) {
        self.shared.wire().recycle(buf);
    }

    /// Set the virtual time used by worker threads.
    pub fn set_now(&self, now: Duration) {
        self.shared.clock.store(nanos(now), Ordering::Relaxed);
    }

    /// The earliest virtual time at which the port has something held back (fault delay).
    pub fn next_event(&self) -> Option<Duration> {
        self.shared.wire().next_event()
    }

    /// Start one worker thread per queue and a port thread. Idempotent.
    ///
    /// # Errors
    /// The OS refused to spawn a thread (already started threads keep running).
    pub fn start(&mut self) -> std::io::Result<()> {
        if !self.threads.is_empty() {
            return Ok(());
        }
        self.shared.stop.store(false, Ordering::Relaxed);
        for i in 0..self.shared.tx_queues.len() {
            let s = Arc::clone(&self.shared);
            let t = std::thread::Builder::new()
                .name(format!("nicsim-worker-{i}"))
                .spawn(move || worker(&s, i))?;
            self.threads.push(t);
        }
        let s = Arc::clone(&self.shared);
        let t = std::thread::Builder::new()
            .name("nicsim-port".into())
            .spawn(move || port(&s))?;
        self.threads.push(t);
        Ok(())
    }

    /// Stop and join the threads (queued frames stay queued; [`Nic::poll`] can drain them).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Nic {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(s: &Shared, i: usize) {
    let (Some(txq), Some(rxq)) = (s.tx_queues.get(i), s.rx_queues.get(i)) else {
        return;
    };
    let tick = std::time::Duration::from_millis(1);
    let mut work = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        // Whatever woke us, drain both queues: a bell may have been consumed by an earlier
        // pass that already took its frames.
        select! {
            recv(txq.bell.1) -> _ => {},
            recv(rxq.bell.1) -> _ => {},
            default(tick) => {}
        }
        if txq.take(&mut work) > 0 {
            s.run_tx(s.clock.load(Ordering::Relaxed), &mut work);
            work.clear();
        }
        if rxq.take(&mut work) > 0 {
            s.run_rx(s.clock.load(Ordering::Relaxed), &mut work);
        }
    }
}

fn port(s: &Shared) {
    let n = s.rx_queues.len();
    let mut steered: Vec<Vec<Frame>> = (0..n).map(|_| Vec::new()).collect();
    let mut batch = Vec::new();
    while !s.stop.load(Ordering::Relaxed) {
        let got = s.pull(s.clock.load(Ordering::Relaxed), &mut batch);
        if got == 0 {
            std::thread::sleep(std::time::Duration::from_micros(50));
            continue;
        }
        for f in batch.drain(..) {
            let q = s.rx_steer(&f);
            if let Some(v) = steered.get_mut(q) {
                v.push(f);
            }
        }
        for (v, q) in steered.iter_mut().zip(&s.rx_queues) {
            q.push(v);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::CryptoStatus;
    use crate::table::{Direction, EncapEntry, EncapType};
    use crate::wire::{MemWire, PcapWriter};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use ipsec::{BundleSeq, BundleSeqHi, Encryption, Integrity, Key, Mode, Protocol, SaParams};
    use ipsec::{TunnelEndpoints, UdpEncap};

    const HA: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const HB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const TA: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const TB: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const MARKER: &[u8] = b"nicsim-cleartext-marker-0123456789abcdef";
    const HEAD: usize = 200;
    const T0: Duration = Duration::from_millis(1);

    fn checksum(h: &[u8]) -> u16 {
        let mut sum = 0u32;
        for c in h.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// IPv4 UDP packet carrying MARKER.
    fn udp4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let total = 20 + 8 + MARKER.len();
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0]);
        p.extend_from_slice(&((8 + MARKER.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(MARKER);
        p
    }

    /// IPv6 UDP packet carrying MARKER (2001:db8::1 -> 2001:db8::2).
    fn udp6() -> Vec<u8> {
        let plen = 8 + MARKER.len();
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(plen as u16).to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0]);
        p.extend_from_slice(&(plen as u16).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(MARKER);
        p
    }

    fn sa(
        protocol: Protocol,
        enc: Encryption,
        integ: Integrity,
        mode: Mode,
        spi: u32,
        k: u8,
    ) -> SaParams {
        SaParams {
            spi,
            protocol,
            mode,
            encryption: enc,
            encryption_key: Key::new(&vec![k; enc.key_len()]),
            integrity: integ,
            integrity_key: Key::new(&vec![k.wrapping_add(1); integ.key_len()]),
            esn: false,
            tunnel: None,
            udp_encap: None,
        }
    }

    /// The same SA as seen by the receiver (tunnel endpoints swapped).
    fn peer(p: &SaParams) -> SaParams {
        let mut q = p.clone();
        q.tunnel = p.tunnel.map(|t| TunnelEndpoints {
            local: t.remote,
            remote: t.local,
        });
        q.udp_encap = p.udp_encap.map(|u| UdpEncap {
            local_port: u.remote_port,
            remote_port: u.local_port,
        });
        q
    }

    fn tunnel(mut p: SaParams) -> SaParams {
        p.mode = Mode::Tunnel;
        p.tunnel = Some(TunnelEndpoints {
            local: IpAddr::V4(TA),
            remote: IpAddr::V4(TB),
        });
        p
    }

    fn host(sas: &[SaParams]) -> Bundle {
        Bundle::new(sas, ProviderKind::fastest()).unwrap()
    }

    /// Host framing: encapsulate `inner` with `bundles` (innermost first), add Ethernet.
    fn framed(bundles: &[&Bundle], seq: u64, inner: &[u8]) -> Frame {
        let mut buf = vec![0u8; HEAD * 2 + inner.len() + 400];
        buf[HEAD..HEAD + inner.len()].copy_from_slice(inner);
        let mut r = HEAD..HEAD + inner.len();
        for b in bundles {
            r = b
                .encapsulate(BundleSeq { esp: seq, ah: seq }, &mut buf, r)
                .unwrap();
        }
        let start = r.start - 14;
        buf[start..start + 12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        let et: u16 = if buf[r.start] >> 4 == 6 {
            0x86dd
        } else {
            0x0800
        };
        buf[start + 12..start + 14].copy_from_slice(&et.to_be_bytes());
        Frame::new(buf, start..r.end)
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn nic() -> Nic {
        Nic::new(NicConfig::default(), MemWire::pair().0)
    }

    fn inbound(sas: Vec<SaParams>, dst: Option<IpAddr>) -> SaSpec {
        SaSpec {
            direction: Direction::Inbound,
            sas,
            dst,
            src: None,
            udp_encap: None,
        }
    }

    fn outbound(sas: Vec<SaParams>) -> SaSpec {
        SaSpec {
            direction: Direction::Outbound,
            sas,
            dst: None,
            src: None,
            udp_encap: None,
        }
    }

    /// Protect on NIC `a`, check against the software path, receive on NIC `b`.
    fn roundtrip(sas: Vec<SaParams>, inner: &[u8], dst: IpAddr) -> (Frame, Frame) {
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(sas.clone())).unwrap();
        let rx_sas: Vec<SaParams> = sas.iter().map(peer).collect();
        let hb = b
            .add_sa(inbound(
                rx_sas.clone(),
                if sas[0].mode == Mode::Tunnel {
                    None
                } else {
                    Some(dst)
                },
            ))
            .unwrap();
        let hostb = host(&sas);
        let mut f = framed(&[&hostb], 1, inner);
        let framed_bytes = f.bytes().to_vec();
        f.tx.handle = ha;
        a.process_tx(T0, core::slice::from_mut(&mut f));
        assert_eq!(f.tx.status, TxStatus::Pending, "{sas:?}");
        // Same bytes as the software path.
        let mut soft = framed_bytes.clone();
        hostb
            .protect(&mut soft[14..], BundleSeqHi::default())
            .unwrap();
        assert_eq!(f.bytes(), &soft[..], "NIC and software crypto differ");
        assert_ne!(f.bytes(), &framed_bytes[..]);
        let wire = f.clone();
        // NIC b verifies and decrypts in place.
        b.process_rx(T0, core::slice::from_mut(&mut f));
        assert!(f.rx.crypto_done, "{sas:?}");
        assert_eq!(f.rx.status, CryptoStatus::Success, "{sas:?}");
        assert_eq!(f.rx.sa, Some(hb));
        assert!(!f.rx.next_crypto_done);
        assert!(contains(f.bytes(), MARKER));
        assert_eq!(b.sa_stats(hb).unwrap().packets, 1);
        assert_eq!(a.sa_stats(ha).unwrap().packets, 1);
        // The receiving host strips the headers of the NIC-decrypted frame: the original.
        let mut up = f.clone();
        let r = up.data.start + 14..up.data.end;
        let d = host(&rx_sas)
            .decapsulate(&mut up.buf, r, BundleSeq::default())
            .unwrap();
        assert_eq!(&up.buf[d.packet], inner, "{sas:?}");
        (wire, f)
    }

    fn algorithms() -> Vec<(Protocol, Encryption, Integrity)> {
        use Encryption as E;
        use Integrity as I;
        vec![
            (Protocol::Esp, E::AesGcm128, I::None),
            (Protocol::Esp, E::AesGcm192, I::None),
            (Protocol::Esp, E::AesGcm256, I::None),
            (Protocol::Esp, E::None, I::AesGmac128),
            (Protocol::Esp, E::None, I::AesGmac256),
            (Protocol::Esp, E::AesCbc128, I::HmacSha256_128),
            (Protocol::Esp, E::AesCbc192, I::HmacSha1_96),
            (Protocol::Esp, E::AesCbc256, I::HmacSha256_128),
            (Protocol::Esp, E::Null, I::HmacSha256_128),
            (Protocol::Ah, E::None, I::HmacSha1_96),
            (Protocol::Ah, E::None, I::HmacSha256_128),
            (Protocol::Ah, E::None, I::AesGmac128),
        ]
    }

    #[test]
    fn every_algorithm_and_mode_round_trips() {
        for (p, e, i) in algorithms() {
            for mode in [Mode::Transport, Mode::Tunnel] {
                let mut s = sa(p, e, i, Mode::Transport, 0x1001, 7);
                if mode == Mode::Tunnel {
                    s = tunnel(s);
                }
                let (wire, _) = roundtrip(vec![s], &udp4(HA, HB), IpAddr::V4(HB));
                let encrypted =
                    p == Protocol::Esp && !matches!(e, Encryption::Null | Encryption::None);
                assert_eq!(
                    !contains(wire.bytes(), MARKER),
                    encrypted,
                    "{p:?} {e:?} {i:?} {mode:?}"
                );
            }
        }
    }

    #[test]
    fn ipv6_vlan_bundle_and_udp_encap_round_trip() {
        // IPv6 transport.
        let dst6: IpAddr = "2001:db8::2".parse().unwrap();
        roundtrip(
            vec![sa(
                Protocol::Esp,
                Encryption::AesGcm128,
                Integrity::None,
                Mode::Transport,
                0x2001,
                3,
            )],
            &udp6(),
            dst6,
        );
        // ESP then AH bundle.
        let esp = sa(
            Protocol::Esp,
            Encryption::AesCbc128,
            Integrity::HmacSha1_96,
            Mode::Transport,
            0x3001,
            4,
        );
        let ah = sa(
            Protocol::Ah,
            Encryption::None,
            Integrity::HmacSha256_128,
            Mode::Transport,
            0x3002,
            5,
        );
        roundtrip(vec![esp, ah], &udp4(HA, HB), IpAddr::V4(HB));
        // 802.1Q-tagged frame.
        let s = sa(
            Protocol::Esp,
            Encryption::AesGcm256,
            Integrity::None,
            Mode::Transport,
            0x4001,
            6,
        );
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(vec![s.clone()])).unwrap();
        b.add_sa(inbound(vec![s.clone()], Some(IpAddr::V4(HB))))
            .unwrap();
        let f0 = framed(&[&host(&[s])], 1, &udp4(HA, HB));
        let mut bytes = f0.bytes()[..12].to_vec();
        bytes.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        bytes.extend_from_slice(&f0.bytes()[12..]);
        let mut f = Frame::from_bytes(&bytes, 0, 0);
        f.tx.handle = ha;
        a.process_tx(T0, core::slice::from_mut(&mut f));
        b.process_rx(T0, core::slice::from_mut(&mut f));
        assert_eq!(
            (f.rx.crypto_done, f.rx.status),
            (true, CryptoStatus::Success)
        );
        // UDP-encapsulated ESP (NAT-T).
        let mut s = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x5001,
            8,
        );
        s.udp_encap = Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500,
        });
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(vec![s.clone()])).unwrap();
        let mut spec = inbound(vec![peer(&s)], Some(IpAddr::V4(HB)));
        spec.udp_encap = Some(EncapEntry {
            encap_type: EncapType::Ike,
            port: 4500,
        });
        let hb = b.add_sa(spec).unwrap();
        let mut f = framed(&[&host(&[s])], 1, &udp4(HA, HB));
        f.tx.handle = ha;
        a.process_tx(T0, core::slice::from_mut(&mut f));
        b.process_rx(T0, core::slice::from_mut(&mut f));
        assert_eq!(
            (f.rx.crypto_done, f.rx.status, f.rx.sa),
            (true, CryptoStatus::Success, Some(hb))
        );
    }

    /// Receive status of a frame protected with `tx` and received by an SA made of `rx`.
    fn status_with(tx: SaParams, rx: SaParams) -> RxStatusSeen {
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(vec![tx.clone()])).unwrap();
        let dst = if rx.mode == Mode::Tunnel {
            None
        } else {
            Some(IpAddr::V4(HB))
        };
        b.add_sa(inbound(vec![peer(&rx)], dst)).unwrap();
        let mut f = framed(&[&host(&[tx])], 1, &udp4(HA, HB));
        f.tx.handle = ha;
        a.process_tx(T0, core::slice::from_mut(&mut f));
        b.process_rx(T0, core::slice::from_mut(&mut f));
        (f.rx.crypto_done, f.rx.status)
    }

    type RxStatusSeen = (bool, CryptoStatus);

    #[test]
    fn every_receive_status_is_reachable() {
        use CryptoStatus as S;
        let esp = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1001,
            1,
        );
        let ah = sa(
            Protocol::Ah,
            Encryption::None,
            Integrity::HmacSha256_128,
            Mode::Transport,
            0x1001,
            1,
        );
        let rekey = |p: &SaParams| {
            let mut q = p.clone();
            q.encryption_key = Key::new(&vec![0xee; q.encryption.key_len()]);
            q.integrity_key = Key::new(&vec![0xee; q.integrity.key_len()]);
            q
        };
        assert_eq!(
            status_with(esp.clone(), rekey(&esp)),
            (true, S::TransportEspAuthFailed)
        );
        assert_eq!(
            status_with(ah.clone(), rekey(&ah)),
            (true, S::TransportAhAuthFailed)
        );
        let (et, at) = (tunnel(esp.clone()), tunnel(ah.clone()));
        assert_eq!(
            status_with(et.clone(), rekey(&et)),
            (true, S::TunnelEspAuthFailed)
        );
        assert_eq!(
            status_with(at.clone(), rekey(&at)),
            (true, S::TunnelAhAuthFailed)
        );
        // AH frame for an ESP SA with the same SPI.
        assert_eq!(
            status_with(ah.clone(), esp.clone()),
            (true, S::InvalidProtocol)
        );
        // Unknown SPI: unprocessed.
        let mut other = esp.clone();
        other.spi = 0x9999;
        assert_eq!(status_with(esp.clone(), other), (false, S::Success));

        // Truncated: the IP length says the ESP payload is shorter than IV + ICV.
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(vec![esp.clone()])).unwrap();
        let hb = b
            .add_sa(inbound(vec![esp.clone()], Some(IpAddr::V4(HB))))
            .unwrap();
        let mut f = framed(&[&host(core::slice::from_ref(&esp))], 1, &udp4(HA, HB));
        f.tx.handle = ha;
        a.process_tx(T0, core::slice::from_mut(&mut f));
        let s = f.data.start;
        let total: u16 = 20 + 8 + 12;
        f.buf[s + 16..s + 18].copy_from_slice(&total.to_be_bytes());
        f.data.end = s + 14 + usize::from(total);
        b.process_rx(T0, core::slice::from_mut(&mut f));
        assert_eq!(
            (f.rx.crypto_done, f.rx.status, f.rx.sa),
            (true, S::InvalidPacketSyntax, Some(hb))
        );
        let st = b.stats();
        assert_eq!(st.rx_invalid_syntax, 1);
        assert_eq!(b.sa_stats(hb).unwrap().invalid_syntax, 1);

        // Not IPsec: unprocessed.
        let mut clear = framed(&[], 1, &udp4(HA, HB));
        b.process_rx(T0, core::slice::from_mut(&mut clear));
        assert_eq!(
            (clear.rx.crypto_done, clear.rx.status, clear.rx.sa),
            (false, S::Success, None)
        );
        assert_eq!(b.stats().rx_clear, 1);
        // Garbage: unprocessed, counted, no panic.
        let mut junk = Frame::from_bytes(&[0xff; 7], 0, 0);
        b.process_rx(T0, core::slice::from_mut(&mut junk));
        assert!(!junk.rx.crypto_done);
    }

    #[test]
    fn transmit_handles() {
        let a = nic();
        let s = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1001,
            1,
        );
        let h = a.add_sa(outbound(vec![s.clone()])).unwrap();
        let hin = a.add_sa(inbound(vec![s.clone()], None)).unwrap();
        let base = framed(&[&host(&[s])], 1, &udp4(HA, HB));
        let run = |handle: SaHandle| {
            let mut f = base.clone();
            f.tx.handle = handle;
            a.process_tx(T0, core::slice::from_mut(&mut f));
            f
        };
        let clear = run(SaHandle::NONE);
        assert_eq!(
            (clear.tx.status, clear.bytes()),
            (TxStatus::Pending, base.bytes()),
            "handle 0 is sent as is"
        );
        assert_eq!(run(SaHandle(0x1234)).tx.status, TxStatus::UnknownHandle);
        assert_eq!(run(hin).tx.status, TxStatus::WrongDirection);
        assert_eq!(run(h).tx.status, TxStatus::Pending);
        a.delete_sa(h).unwrap();
        assert_eq!(run(h).tx.status, TxStatus::UnknownHandle, "stale handle");
        let st = a.stats();
        assert_eq!(
            (
                st.tx_unknown_handle,
                st.tx_wrong_direction,
                st.tx_clear,
                st.tx_protected
            ),
            (2, 1, 1, 1)
        );
        // Not an IP frame with a handle: malformed, counted.
        let h2 = a
            .add_sa(outbound(vec![sa(
                Protocol::Esp,
                Encryption::AesGcm128,
                Integrity::None,
                Mode::Transport,
                0x1002,
                1,
            )]))
            .unwrap();
        let mut junk = Frame::from_bytes(&[0; 20], 0, 0);
        junk.tx.handle = h2;
        a.process_tx(T0, core::slice::from_mut(&mut junk));
        assert_eq!(junk.tx.status, TxStatus::Malformed);
        assert_eq!(a.sa_stats(h2).unwrap().tx_errors, 1);
    }

    #[test]
    fn transport_in_tunnel_sets_next_crypto_done() {
        let tr = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1001,
            1,
        );
        let tu = tunnel(sa(
            Protocol::Esp,
            Encryption::AesCbc128,
            Integrity::HmacSha256_128,
            Mode::Transport,
            0x2001,
            2,
        ));
        for inner_key_ok in [true, false] {
            let (a, b) = (nic(), nic());
            let htr = a.add_sa(outbound(vec![tr.clone()])).unwrap();
            let htu = a.add_sa(outbound(vec![tu.clone()])).unwrap();
            let btu = b.add_sa(inbound(vec![peer(&tu)], None)).unwrap();
            let mut rtr = tr.clone();
            if !inner_key_ok {
                rtr.encryption_key = Key::new(&[0xee; 20]);
            }
            let btr = b.add_sa(inbound(vec![rtr], Some(IpAddr::V4(HB)))).unwrap();
            let mut f = framed(
                &[
                    &host(core::slice::from_ref(&tr)),
                    &host(core::slice::from_ref(&tu)),
                ],
                1,
                &udp4(HA, HB),
            );
            f.tx.handle = htr;
            f.tx.next_handle = htu;
            a.process_tx(T0, core::slice::from_mut(&mut f));
            assert_eq!(f.tx.status, TxStatus::Pending);
            assert!(!contains(f.bytes(), MARKER));
            b.process_rx(T0, core::slice::from_mut(&mut f));
            assert!(f.rx.crypto_done && f.rx.next_crypto_done);
            assert_eq!((f.rx.sa, f.rx.next_sa), (Some(btu), Some(btr)));
            if inner_key_ok {
                assert_eq!(f.rx.status, CryptoStatus::Success);
                assert!(contains(f.bytes(), MARKER));
            } else {
                assert_eq!(f.rx.status, CryptoStatus::TransportEspAuthFailed);
            }
        }
    }

    #[test]
    fn esn_high_bits_are_tracked_and_settable() {
        let mut s = sa(
            Protocol::Esp,
            Encryption::AesCbc128,
            Integrity::HmacSha256_128,
            Mode::Transport,
            0x1001,
            1,
        );
        s.esn = true;
        let (a, b) = (nic(), nic());
        let ha = a.add_sa(outbound(vec![s.clone()])).unwrap();
        b.add_sa(inbound(vec![s.clone()], Some(IpAddr::V4(HB))))
            .unwrap();
        let hs = host(core::slice::from_ref(&s));
        let send = |seq: u64| {
            let mut f = framed(&[&hs], seq, &udp4(HA, HB));
            let mut soft = f.bytes().to_vec();
            f.tx.handle = ha;
            a.process_tx(T0, core::slice::from_mut(&mut f));
            hs.protect(&mut soft[14..], BundleSeq { esp: seq, ah: 0 }.hi())
                .unwrap();
            assert_eq!(
                f.bytes(),
                &soft[..],
                "NIC used the wrong ESN high bits for {seq:#x}"
            );
            f
        };
        let mut f = send(1);
        b.process_rx(T0, core::slice::from_mut(&mut f));
        assert_eq!(f.rx.status, CryptoStatus::Success);
        send(0xffff_fff0);
        // The low bits wrap: the NIC increments the high bits itself.
        send((1 << 32) | 2);
        // UPDATE_SA: explicit high bits.
        a.set_esn_high(ha, 5).unwrap();
        send((5 << 32) | 3);
        assert_eq!(a.set_esn_high(SaHandle(1), 1), Err(TableError::NotFound));
    }

    #[test]
    fn delete_request_on_lru_inbound_sa() {
        let cfg = NicConfig {
            table: TableConfig {
                delete_request_threshold: Some(2),
                ..TableConfig::default()
            },
            ..NicConfig::default()
        };
        let (a, b) = (nic(), Nic::new(cfg, MemWire::pair().0));
        let s1 = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1001,
            1,
        );
        let s2 = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1002,
            2,
        );
        let h1 = b.add_sa(inbound(vec![s1.clone()], None)).unwrap();
        let h2 = b.add_sa(inbound(vec![s2.clone()], None)).unwrap();
        let frame_for = |s: &SaParams| {
            let h = a.add_sa(outbound(vec![s.clone()])).unwrap();
            let mut f = framed(&[&host(core::slice::from_ref(s))], 1, &udp4(HA, HB));
            f.tx.handle = h;
            a.process_tx(T0, core::slice::from_mut(&mut f));
            f
        };
        let mut f2 = frame_for(&s2);
        b.process_rx(Duration::from_millis(1), core::slice::from_mut(&mut f2));
        assert!(!f2.rx.sa_delete_req, "not the LRU SA");
        let mut f1 = frame_for(&s1);
        b.process_rx(Duration::from_millis(2), core::slice::from_mut(&mut f1));
        assert!(
            f1.rx.sa_delete_req && f1.rx.crypto_done,
            "the LRU SA gets the request"
        );
        assert_eq!(b.sa_stats(h1).unwrap().delete_requests, 1);
        // The NIC never drops the SA itself.
        assert!(b.sa_info(h1).is_some() && b.sa_info(h2).is_some());
        b.delete_sa(h1).unwrap();
        let mut f2 = frame_for(&s2);
        b.process_rx(Duration::from_millis(3), core::slice::from_mut(&mut f2));
        assert!(!f2.rx.sa_delete_req, "under the threshold again");
    }

    #[test]
    fn two_nics_over_memwire_in_stepping_mode_with_pcap() {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let cap = Shared::default();
        let (wa, wb) = MemWire::pair();
        let a = Nic::new(NicConfig::default(), PcapWriter::new(wa, cap.clone()));
        let b = Nic::new(NicConfig::default(), wb);
        let s = sa(
            Protocol::Esp,
            Encryption::AesGcm128,
            Integrity::None,
            Mode::Transport,
            0x1001,
            1,
        );
        let ha = a.add_sa(outbound(vec![s.clone()])).unwrap();
        let hb = b.add_sa(inbound(vec![s.clone()], None)).unwrap();
        let hs = host(&[s]);
        let mut batch: Vec<Frame> = (1..=10)
            .map(|i| {
                let mut f = framed(&[&hs], i, &udp4(HA, HB));
                f.tx.handle = ha;
                f.cookie = i;
                f
            })
            .collect();
        a.send(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(a.poll(Duration::from_millis(5)), 10);
        b.poll(Duration::from_millis(6));
        let (mut done, mut up) = (Vec::new(), Vec::new());
        a.take_completions(&mut done);
        b.take_indications(&mut up);
        assert_eq!(
            done.iter()
                .map(|f| (f.cookie, f.tx.status))
                .collect::<Vec<_>>(),
            (1..=10).map(|i| (i, TxStatus::Sent)).collect::<Vec<_>>()
        );
        assert_eq!(
            up.iter().map(|f| f.cookie).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert!(up.iter().all(|f| f.rx.crypto_done
            && f.rx.status == CryptoStatus::Success
            && contains(f.bytes(), MARKER)));
        assert_eq!(b.sa_stats(hb).unwrap().packets, 10);
        // The capture holds the 10 encrypted frames.
        let bytes = cap.0.lock().unwrap().clone();
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert!(!contains(&bytes, MARKER));
        assert!(b.dump().contains("packets=10"));
        assert!(
            b.dump()
                .lines()
                .last()
                .unwrap()
                .starts_with("nic tx_frames=0")
        );
    }

    #[test]
    fn worker_threads_keep_per_sa_order() {
        let (wa, wb) = MemWire::pair();
        let mut a = Nic::new(
            NicConfig {
                queues: 2,
                ..NicConfig::default()
            },
            wa,
        );
        let b = Nic::new(NicConfig::default(), wb);
        let mut hosts = Vec::new();
        let mut handles = Vec::new();
        for i in 0..4u32 {
            let s = sa(
                Protocol::Esp,
                Encryption::AesGcm128,
                Integrity::None,
                Mode::Transport,
                0x1000 + i,
                i as u8,
            );
            handles.push(a.add_sa(outbound(vec![s.clone()])).unwrap());
            b.add_sa(inbound(vec![s.clone()], None)).unwrap();
            hosts.push(host(&[s]));
        }
        a.start().unwrap();
        let per = 50u64;
        for seq in 1..=per {
            let mut batch: Vec<Frame> = (0..4)
                .map(|i| {
                    let mut f = framed(&[&hosts[i]], seq, &udp4(HA, HB));
                    f.tx.handle = handles[i];
                    f.cookie = (i as u64) << 32 | seq;
                    f
                })
                .collect();
            a.send(&mut batch);
        }
        let mut up = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while (up.len() as u64) < 4 * per && std::time::Instant::now() < deadline {
            b.poll(T0);
            b.take_indications(&mut up);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        a.stop();
        assert_eq!(up.len() as u64, 4 * per);
        assert!(
            up.iter()
                .all(|f| f.rx.status == CryptoStatus::Success && f.rx.crypto_done)
        );
        for i in 0..4u64 {
            let seqs: Vec<u64> = up
                .iter()
                .filter(|f| f.cookie >> 32 == i)
                .map(|f| f.cookie & 0xffff_ffff)
                .collect();
            assert_eq!(seqs, (1..=per).collect::<Vec<_>>(), "SA {i} reordered");
        }
        let mut done = Vec::new();
        a.take_completions(&mut done);
        assert_eq!(done.len() as u64, 4 * per);
    }

    #[test]
    fn add_and_delete_under_traffic_never_use_a_deleted_sa() {
        use std::collections::HashMap;
        let a = Arc::new(nic());
        // Live SAs: handle -> (software bundle with the same key, deleted flag).
        type Live = Vec<(SaHandle, Arc<Bundle>, Arc<AtomicBool>)>;
        let live: Arc<Mutex<Live>> = Arc::default();
        let base = udp4(HA, HB);
        let add = |k: u8| {
            let s = sa(
                Protocol::Esp,
                Encryption::AesGcm128,
                Integrity::None,
                Mode::Transport,
                0x1000 + u32::from(k),
                k,
            );
            let h = a.add_sa(outbound(vec![s.clone()])).unwrap();
            live.lock()
                .unwrap()
                .push((h, Arc::new(host(&[s])), Arc::new(AtomicBool::new(false))));
        };
        for k in 0..4 {
            add(k);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let processed = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (a, live, stop, base) = (
                    Arc::clone(&a),
                    Arc::clone(&live),
                    Arc::clone(&stop),
                    base.clone(),
                );
                let processed = Arc::clone(&processed);
                std::thread::spawn(move || {
                    let (mut ok, mut refused) = (0u64, 0u64);
                    let mut n = t;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let pick = {
                            let l = live.lock().unwrap();
                            l.get(n % l.len().max(1)).cloned()
                        };
                        let Some((h, soft, deleted)) = pick else {
                            continue;
                        };
                        let mut f = framed(&[&soft], 1, &base);
                        let mut expect = f.bytes().to_vec();
                        soft.protect(&mut expect[14..], BundleSeqHi::default())
                            .unwrap();
                        f.tx.handle = h;
                        let was_deleted = deleted.load(Ordering::SeqCst);
                        a.process_tx(T0, core::slice::from_mut(&mut f));
                        processed.fetch_add(1, Ordering::SeqCst);
                        if was_deleted {
                            assert_eq!(f.tx.status, TxStatus::UnknownHandle, "deleted SA used");
                        }
                        if f.tx.status == TxStatus::Pending {
                            assert_eq!(
                                f.bytes(),
                                &expect[..],
                                "frame processed with another SA's key"
                            );
                            ok += 1;
                        } else {
                            assert_eq!(f.tx.status, TxStatus::UnknownHandle);
                            refused += 1;
                        }
                    }
                    (ok, refused)
                })
            })
            .collect();
        let mut k = 4u8;
        let mut deleted: HashMap<SaHandle, ()> = HashMap::new();
        for _ in 0..300 {
            // Let the workers process a few frames between control operations.
            let target = processed.load(Ordering::SeqCst) + 4;
            while processed.load(Ordering::SeqCst) < target {
                std::thread::yield_now();
            }
            // Delete the oldest (its slot is reused by the next add, with a new key).
            let (h, _, flag) = live.lock().unwrap().remove(0);
            a.delete_sa(h).unwrap();
            flag.store(true, Ordering::SeqCst);
            deleted.insert(h, ());
            // Keep the deleted entry pickable so workers try stale handles too.
            live.lock().unwrap().push((
                h,
                Arc::new(host(&[sa(
                    Protocol::Esp,
                    Encryption::AesGcm128,
                    Integrity::None,
                    Mode::Transport,
                    0x999,
                    0,
                )])),
                flag,
            ));
            add(k);
            k = k.wrapping_add(1);
            live.lock()
                .unwrap()
                .retain(|(h2, _, f)| !f.load(Ordering::SeqCst) || *h2 == h);
        }
        stop.store(true, Ordering::SeqCst);
        let (mut ok, mut refused) = (0, 0);
        for w in workers {
            let (o, r) = w.join().unwrap();
            ok += o;
            refused += r;
        }
        assert!(ok > 0, "traffic flowed");
        let _ = refused;
        assert_eq!(a.sa_count(), (0, 4));
        assert_eq!(a.stats().sa_deleted, 300);
    }
}
