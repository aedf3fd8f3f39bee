//! The NIC: SA programming API, TX/RX queues, worker threads or deterministic stepping.
//!
//! # Data path
//! * [`Nic::send`] moves a batch of frames (each with [`crate::TxMeta`]) onto a TX queue, steered
//!   by SA so that frames of one SA keep their order. The batch vector is swapped with a recycled
//!   one: nothing is copied or allocated per frame.
//! * The queued frames are processed either by [`Nic::poll`] in the caller's thread (stepping
//!   mode: deterministic, used by tests and the two-host simulation) or by worker threads
//!   started with [`Nic::start`] (one per queue, plus one port thread that reads the wire and
//!   steers received frames by SPI).
//! * Every sent frame comes back once through [`Nic::take_completions`] with its
//!   [`crate::TxStatus`]; frames whose buffer moved to the peer (in-memory wire) come back as
//!   husks with an empty `buf`. Every received frame goes up through [`Nic::take_indications`]
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

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
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

struct Shared {
    table: RwLock<Table>,
    counters: NicCounters,
    cfg: NicConfig,
    clock: AtomicU64,
    stop: AtomicBool,
    wire: Mutex<Box<dyn Wire>>,
    tx_queues: Vec<Chan>,
    rx_queues: Vec<Chan>,
    completions: Chan,
    indications: Chan,
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

    fn push(&self, chan: &Chan, v: Vec<Frame>) {
        if v.is_empty() {
            self.give_back(v);
        } else {
            // Unbounded: cannot fail while `self` holds the receiver.
            let _ = chan.0.send(v);
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
        self.push(&self.completions, done);
    }

    /// Process an RX batch and indicate it.
    fn run_rx(&self, now_ns: u64, mut frames: Vec<Frame>) {
        {
            let table = self.read();
            let engine = Engine::new(&table, &self.counters, now_ns);
            for f in frames.iter_mut() {
                engine.receive(f);
            }
        }
        self.push(&self.indications, frames);
    }

    /// Receive up to one batch from the wire (also lets middleware release held frames).
    fn pull(&self, now_ns: u64, into: &mut Vec<Frame>) -> usize {
        let mut wire = self.wire();
        let now = Duration::from_nanos(now_ns);
        let mut none = Vec::new();
        let mut done = Vec::new();
        let _ = wire.transmit(now, &mut none, &mut done);
        wire.receive(now, into, self.cfg.rx_batch.max(1)).unwrap_or(0)
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
            tx_queues: (0..queues).map(|_| unbounded()).collect(),
            rx_queues: (0..queues).map(|_| unbounded()).collect(),
            completions: unbounded(),
            indications: unbounded(),
            spare: bounded(SPARE_BATCHES),
            steer_scratch: Mutex::new(Vec::new()),
        };
        Nic { shared: Arc::new(shared), threads: Vec::new() }
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
        let r = self.shared.write().add(spec, |sas| Bundle::new(sas, provider));
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
            let mut b = s.batch();
            core::mem::swap(&mut b, frames);
            if let Some(q) = s.tx_queues.first() {
                s.push(q, b);
            }
            return;
        }
        let mut per = s.steer_scratch.lock().unwrap_or_else(PoisonError::into_inner);
        per.resize_with(n, Vec::new);
        for f in frames.drain(..) {
            let key = if f.tx.next_handle.is_none() { f.tx.handle } else { f.tx.next_handle };
            if let Some(v) = per.get_mut(steer_key(key.raw(), n)) {
                v.push(f);
            }
        }
        for (v, q) in per.iter_mut().zip(&s.tx_queues) {
            if !v.is_empty() {
                let mut b = s.batch();
                core::mem::swap(&mut b, v);
                s.push(q, b);
            }
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
            while let Ok(mut b) = q.1.try_recv() {
                tx.append(&mut b);
                s.give_back(b);
            }
        }
        n += tx.len();
        s.run_tx(now_ns, &mut tx);
        s.give_back(tx);
        let mut rx = s.batch();
        n += s.pull(now_ns, &mut rx);
        s.run_rx(now_ns, rx);
        n
    }

    /// Move every completed transmit frame into `out` (in completion order).
    pub fn take_completions(&self, out: &mut Vec<Frame>) {
        let s = &self.shared;
        while let Ok(mut b) = s.completions.1.try_recv() {
            out.append(&mut b);
            s.give_back(b);
        }
    }

    /// Move every received (processed) frame into `out`.
    pub fn take_indications(&self, out: &mut Vec<Frame>) {
        let s = &self.shared;
        while let Ok(mut b) = s.indications.1.try_recv() {
            out.append(&mut b);
            s.give_back(b);
        }
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
        let t = std::thread::Builder::new().name("nicsim-port".into()).spawn(move || port(&s))?;
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
    let (Some(txq), Some(rxq)) = (s.tx_queues.get(i), s.rx_queues.get(i)) else { return };
    let tick = std::time::Duration::from_millis(1);
    while !s.stop.load(Ordering::Relaxed) {
        select! {
            recv(txq.1) -> b => if let Ok(mut b) = b {
                s.run_tx(s.clock.load(Ordering::Relaxed), &mut b);
                s.give_back(b);
            },
            recv(rxq.1) -> b => if let Ok(b) = b {
                s.run_rx(s.clock.load(Ordering::Relaxed), b);
            },
            default(tick) => {}
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
            if !v.is_empty() {
                let mut b = s.batch();
                core::mem::swap(&mut b, v);
                s.push(q, b);
            }
        }
    }
}
