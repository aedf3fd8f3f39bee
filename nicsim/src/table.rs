//! The NIC's SA table (the SAD): fixed capacity, O(1) lookups, opaque handles, counters, dump.
//!
//! # Layout
//! A slab of slots, indexed by the handle's index; each slot has a generation that changes
//! when its SA is deleted, so a stale handle (whose generation no longer matches) is never
//! honoured (netdevsim's `offload_handle`, plus a generation). Slots are created lazily up to
//! `inbound_capacity + outbound_capacity` and recycled through a free list, so construction is
//! cheap even for a million-SA table. Inbound SAs are also indexed in a hash map keyed by
//! (SPI, destination address, IPsec protocol, UDP encapsulation port); a missing destination
//! in the [`SaSpec`] is a wildcard, tried after the exact address.
//!
//! # Concurrency (the choice)
//! The table has no lock of its own: the [`crate::Nic`] keeps it behind one `RwLock`. The data
//! path takes the **read** lock once per *batch* of frames (one atomic operation per batch, not
//! per frame), and updates per-SA state through atomics (counters, sequence-number state, LRU
//! time). `add` and `delete` take the **write** lock, so a delete waits until every in-flight
//! batch that might use the SA has finished, and no batch that starts afterwards can find it.
//! Hence no frame is ever processed with a deleted SA's key, without per-frame reference
//! counting. An epoch/`Arc` scheme would let deletes return sooner, but batches are short
//! (tens of microseconds), control-plane operations are rare next to frames, and the read lock
//! per batch keeps the lookup a plain slab index. The table is generic over the compiled crypto
//! state `C` (`ipsec::Bundle` in the NIC) so it can be built and tested independently.
//!
//! Keys: the table never stores [`ipsec::SaParams`] (whose keys zeroize on drop); it keeps a
//! key-free [`SaInfo`] and the compiled crypto state, dropped (and zeroized by `ipsec`) on
//! delete.

use core::fmt::Write as _;
use core::net::IpAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ipsec::hash::KeyHashMap;
use ipsec::{Encryption, Integrity, Mode, ParamError, Protocol, SaParams, UdpEncap};

use crate::frame::SaHandle;
use crate::stats::{SaCounters, SaStats, write_fields};

/// Default capacity in each direction (like common NICs).
pub const DEFAULT_CAPACITY: usize = 1024;

/// The largest capacity in each direction (handle indexes are 32-bit; kept well below).
pub const MAX_CAPACITY: usize = 1 << 24;

/// Direction of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received traffic: looked up by SPI + destination (+ protocol / encapsulation port).
    Inbound,
    /// Transmitted traffic: looked up by handle.
    Outbound,
}

/// How UDP-encapsulated ESP is recognised (NDIS `UDP_ENCAP_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncapType {
    /// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE`: RFC 3948 on the IKE port (non-ESP marker for IKE).
    Ike,
    /// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER`: ESP directly in UDP on another port.
    Other,
}

/// A UDP-ESP parser entry: encapsulation type and the UDP destination port it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncapEntry {
    /// The encapsulation type.
    pub encap_type: EncapType,
    /// The UDP destination port of received encapsulated ESP (e.g. 4500).
    pub port: u16,
}

/// What to program: one SA, or an ESP-then-AH bundle, in one direction.
#[derive(Clone, Debug)]
pub struct SaSpec {
    /// Inbound or outbound.
    pub direction: Direction,
    /// One SA, or ESP then AH (processing order, as in `OFFLOAD_IPSEC_ADD_SA.SecAssoc`).
    pub sas: Vec<SaParams>,
    /// Destination address for inbound lookup; `None` is a wildcard. For tunnel SAs, `None`
    /// means the tunnel's local endpoint.
    pub dst: Option<IpAddr>,
    /// Source address (informational: shown in the dump; the NIC matches on SPI + destination).
    pub src: Option<IpAddr>,
    /// The UDP-ESP parser entry for inbound UDP-encapsulated ESP (the `_UDPESP_` OIDs).
    pub udp_encap: Option<EncapEntry>,
}

/// Why a table operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// No free slot in that direction (NDIS: `NDIS_STATUS_RESOURCES`).
    #[error("SA table full")]
    Full,
    /// The SA parameters are unusable.
    #[error("invalid SA parameters: {0}")]
    Invalid(ParamError),
    /// An inbound SA with the same SPI, destination, protocol and encapsulation exists.
    #[error("duplicate inbound SA")]
    Duplicate,
    /// The handle names no SA (never issued, or deleted).
    #[error("no such SA")]
    NotFound,
    /// The operation does not apply to this SA (e.g. ESN state of an SA without ESN).
    #[error("operation not applicable to this SA")]
    NotApplicable,
}

/// Table sizing and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Inbound SAs the table holds.
    pub inbound_capacity: usize,
    /// Outbound SAs the table holds.
    pub outbound_capacity: usize,
    /// When the number of inbound SAs reaches this, received frames of the least recently used
    /// inbound SA carry `sa_delete_req`. `None`: never ask.
    pub delete_request_threshold: Option<usize>,
    /// How often (virtual nanoseconds) the least recently used inbound SA is recomputed.
    pub lru_scan_interval_ns: u64,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            inbound_capacity: DEFAULT_CAPACITY,
            outbound_capacity: DEFAULT_CAPACITY,
            delete_request_threshold: None,
            lru_scan_interval_ns: 100_000_000,
        }
    }
}

/// Key-free description of one SA of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaSummary {
    /// SPI.
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Cipher.
    pub encryption: Encryption,
    /// Integrity transform.
    pub integrity: Integrity,
    /// Extended sequence numbers.
    pub esn: bool,
    /// UDP encapsulation of the SA (ESP only).
    pub udp_encap: Option<UdpEncap>,
}

/// Key-free description of a programmed entry (one SA or a bundle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaInfo {
    /// The handle.
    pub handle: SaHandle,
    /// Direction.
    pub direction: Direction,
    /// The SAs in processing order (ESP then AH).
    pub sas: Vec<SaSummary>,
    /// Lookup destination (inbound), `None` = wildcard.
    pub dst: Option<IpAddr>,
    /// Source address as given.
    pub src: Option<IpAddr>,
    /// The UDP-ESP parser entry.
    pub udp_encap: Option<EncapEntry>,
}

impl SaInfo {
    /// The SA whose header is outermost on the wire (AH of an ESP+AH bundle).
    pub fn outermost(&self) -> Option<&SaSummary> {
        self.sas.last()
    }

    /// The bundle's mode.
    pub fn mode(&self) -> Mode {
        self.sas.first().map_or(Mode::Transport, |s| s.mode)
    }

    /// True if the bundle has an ESP SA.
    pub fn has_esp(&self) -> bool {
        self.sas.iter().any(|s| s.protocol == Protocol::Esp)
    }

    /// True if the bundle has an AH SA.
    pub fn has_ah(&self) -> bool {
        self.sas.iter().any(|s| s.protocol == Protocol::Ah)
    }

    /// True if any SA of the bundle uses ESN.
    pub fn esn(&self) -> bool {
        self.sas.iter().any(|s| s.esn)
    }
}

/// Index into the `seq` state arrays.
pub(crate) const ESP: usize = 0;
/// Index into the `seq` state arrays.
pub(crate) const AH: usize = 1;

/// One programmed entry: key-free info, compiled crypto state and runtime state.
#[derive(Debug)]
pub struct SaEntry<C> {
    pub(crate) info: SaInfo,
    pub(crate) crypto: C,
    pub(crate) counters: SaCounters,
    /// Outbound: ESN state `hi << 32 | last_lo` per protocol. Inbound: highest verified
    /// sequence number per protocol.
    pub(crate) seq: [AtomicU64; 2],
    /// Virtual time (ns) of the last frame that used this SA.
    pub(crate) last_used: AtomicU64,
    /// Outbound: set by `set_esn_high`; the next frame's low bits are taken without inference.
    pub(crate) esn_fresh: [AtomicBool; 2],
}

impl<C> SaEntry<C> {
    /// The key-free description.
    pub fn info(&self) -> &SaInfo {
        &self.info
    }

    /// The compiled crypto state.
    pub fn crypto(&self) -> &C {
        &self.crypto
    }

    /// Counter snapshot.
    pub fn stats(&self) -> SaStats {
        self.counters.snapshot()
    }

    pub(crate) fn touch(&self, now_ns: u64) {
        // A plain store: the data path of one SA runs on one worker at a time.
        self.last_used.store(now_ns, Ordering::Relaxed);
    }

    /// Outbound ESN: the high-order 32 bits for a frame whose low-order bits are `lo`,
    /// inferred from the last low bits seen (incremented when the low bits wrap; a frame from
    /// just before the wrap gets the previous value).
    pub(crate) fn outbound_seq_hi(&self, which: usize, lo: u32) -> u32 {
        let Some(state) = self.seq.get(which) else {
            return 0;
        };
        let mut cur = state.load(Ordering::Relaxed);
        if self
            .esn_fresh
            .get(which)
            .is_some_and(|f| f.swap(false, Ordering::Relaxed))
        {
            let hi = (cur >> 32) as u32;
            state.store((u64::from(hi) << 32) | u64::from(lo), Ordering::Relaxed);
            return hi;
        }
        loop {
            let (hi, last) = ((cur >> 32) as u32, cur as u32);
            let (use_hi, new) = infer_hi(hi, last, lo);
            if new == cur {
                return use_hi;
            }
            match state.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return use_hi,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Inbound: the highest verified sequence number of one protocol.
    pub(crate) fn highest(&self, which: usize) -> u64 {
        self.seq.get(which).map_or(0, |s| s.load(Ordering::Relaxed))
    }

    /// Inbound: record a verified sequence number.
    pub(crate) fn verified(&self, which: usize, seq: u64) {
        if let Some(s) = self.seq.get(which) {
            s.fetch_max(seq, Ordering::Relaxed);
        }
    }
}

/// Outbound ESN inference: `(hi to use, new state)`, state = `hi << 32 | last_lo`.
fn infer_hi(hi: u32, last: u32, lo: u32) -> (u32, u64) {
    const HALF: u32 = 1 << 31;
    let pack = |h: u32, l: u32| (u64::from(h) << 32) | u64::from(l);
    if lo >= last {
        if lo - last < HALF || hi == 0 {
            // Forward (with no earlier epoch, a big jump can only be forward).
            (hi, pack(hi, lo))
        } else {
            // Far ahead in raw value: really a late frame from before the last wrap.
            (hi.wrapping_sub(1), pack(hi, last))
        }
    } else if last - lo > HALF {
        // The low bits wrapped.
        let h = hi.wrapping_add(1);
        (h, pack(h, lo))
    } else {
        // A little behind (reordered by the host): same epoch.
        (hi, pack(hi, last))
    }
}

#[derive(Debug)]
struct Slot<C> {
    generation: u32,
    entry: Option<Box<SaEntry<C>>>,
}

/// Inbound lookup key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct InKey {
    spi: u32,
    proto: u8,
    encap_port: u16,
    /// `0` = wildcard, `4` / `6` = family of `addr`.
    family: u8,
    addr: u128,
}

impl InKey {
    fn new(spi: u32, proto: u8, dst: Option<IpAddr>, encap_port: u16) -> Self {
        let (family, addr) = match dst {
            None => (0, 0),
            Some(IpAddr::V4(a)) => (4, u128::from(a.to_bits())),
            Some(IpAddr::V6(a)) => (6, a.to_bits()),
        };
        InKey {
            spi,
            proto,
            encap_port,
            family,
            addr,
        }
    }
}

/// The SA table. See the module docs.
#[derive(Debug)]
pub struct SaTable<C> {
    cfg: TableConfig,
    slots: Vec<Slot<C>>,
    free: Vec<u32>,
    inbound_len: usize,
    outbound_len: usize,
    inbound: KeyHashMap<InKey, u32>,
    /// UDP-ESP parser entries with reference counts.
    encap: Vec<(EncapEntry, usize)>,
    /// The ports of `encap`, for `ipsec::classify`.
    encap_ports: Vec<u16>,
    /// Raw handle of the inbound SA to ask the host to delete (0 = none).
    victim: AtomicU64,
    /// Virtual time of the last LRU scan, plus one (0 = never).
    last_scan: AtomicU64,
}

impl<C> SaTable<C> {
    /// An empty table.
    ///
    /// Capacities are clamped to [`MAX_CAPACITY`]. Nothing per slot is allocated up front.
    pub fn new(cfg: TableConfig) -> Self {
        let cfg = TableConfig {
            inbound_capacity: cfg.inbound_capacity.min(MAX_CAPACITY),
            outbound_capacity: cfg.outbound_capacity.min(MAX_CAPACITY),
            ..cfg
        };
        SaTable {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            inbound_len: 0,
            outbound_len: 0,
            inbound: KeyHashMap::default(),
            encap: Vec::new(),
            encap_ports: Vec::new(),
            victim: AtomicU64::new(0),
            last_scan: AtomicU64::new(0),
        }
    }

    /// The configuration (with capacities as clamped).
    pub fn config(&self) -> TableConfig {
        self.cfg
    }

    /// `(inbound, outbound)` capacity: what the miniport advertises.
    pub fn capacity(&self) -> (usize, usize) {
        (self.cfg.inbound_capacity, self.cfg.outbound_capacity)
    }

    /// `(inbound, outbound)` SAs programmed.
    pub fn len(&self) -> (usize, usize) {
        (self.inbound_len, self.outbound_len)
    }

    /// True when no SA is programmed.
    pub fn is_empty(&self) -> bool {
        self.inbound_len == 0 && self.outbound_len == 0
    }

    /// The UDP ports of the UDP-ESP parser entries.
    pub fn encap_ports(&self) -> &[u16] {
        &self.encap_ports
    }

    /// Add an SA or bundle, atomically: either everything is programmed or nothing changes.
    ///
    /// `build` compiles the parameters into the crypto state (it must validate them; the NIC
    /// passes `ipsec::Bundle::new`). The spec (and with it the caller's key copies) is dropped
    /// here, which zeroizes the keys.
    ///
    /// # Errors
    /// [`TableError::Invalid`] (from `build`, or an encapsulation entry on a bundle without
    /// ESP), [`TableError::Duplicate`], [`TableError::Full`].
    pub fn add(
        &mut self,
        spec: SaSpec,
        build: impl FnOnce(&[SaParams]) -> Result<C, ParamError>,
    ) -> Result<SaHandle, TableError> {
        let sas: Vec<SaSummary> = spec
            .sas
            .iter()
            .map(|p| SaSummary {
                spi: p.spi,
                protocol: p.protocol,
                mode: p.mode,
                encryption: p.encryption,
                integrity: p.integrity,
                esn: p.esn,
                udp_encap: p.udp_encap,
            })
            .collect();
        let Some(outer) = sas.last().copied() else {
            return Err(TableError::Invalid(ParamError::InvalidBundle));
        };
        let dst = match spec.dst {
            Some(d) => Some(d),
            None => spec.sas.first().and_then(|p| p.tunnel).map(|t| t.local),
        };
        if spec.udp_encap.is_some() && outer.protocol != Protocol::Esp {
            return Err(TableError::Invalid(ParamError::UdpEncapOnAh));
        }
        let key = InKey::new(
            outer.spi,
            outer.protocol.ip_protocol(),
            dst,
            spec.udp_encap.map_or(0, |e| e.port),
        );
        if spec.direction == Direction::Inbound && self.inbound.contains_key(&key) {
            return Err(TableError::Duplicate);
        }
        let full = match spec.direction {
            Direction::Inbound => self.inbound_len >= self.cfg.inbound_capacity,
            Direction::Outbound => self.outbound_len >= self.cfg.outbound_capacity,
        };
        if full {
            return Err(TableError::Full);
        }
        let crypto = build(&spec.sas).map_err(TableError::Invalid)?;
        drop(spec.sas);

        // From here on nothing can fail except running out of 32-bit slot indexes, which the
        // capacity clamp excludes.
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let Ok(i) = u32::try_from(self.slots.len()) else {
                    return Err(TableError::Full);
                };
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                i
            }
        };
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return Err(TableError::Full);
        };
        let handle = SaHandle::new(index, slot.generation);
        slot.entry = Some(Box::new(SaEntry {
            info: SaInfo {
                handle,
                direction: spec.direction,
                sas,
                dst,
                src: spec.src,
                udp_encap: spec.udp_encap,
            },
            crypto,
            counters: SaCounters::default(),
            seq: [AtomicU64::new(0), AtomicU64::new(0)],
            last_used: AtomicU64::new(0),
            esn_fresh: [AtomicBool::new(false), AtomicBool::new(false)],
        }));
        match spec.direction {
            Direction::Inbound => {
                self.inbound.insert(key, index);
                self.inbound_len += 1;
                if let Some(e) = spec.udp_encap {
                    self.encap_ref(e);
                }
            }
            Direction::Outbound => self.outbound_len += 1,
        }
        Ok(handle)
    }

    fn encap_ref(&mut self, e: EncapEntry) {
        if let Some(x) = self.encap.iter_mut().find(|(x, _)| *x == e) {
            x.1 += 1;
        } else {
            self.encap.push((e, 1));
        }
        self.rebuild_ports();
    }

    fn encap_unref(&mut self, e: EncapEntry) {
        if let Some(pos) = self.encap.iter().position(|(x, _)| *x == e)
            && let Some(x) = self.encap.get_mut(pos)
        {
            x.1 = x.1.saturating_sub(1);
            if x.1 == 0 {
                self.encap.remove(pos);
            }
        }
        self.rebuild_ports();
    }

    fn rebuild_ports(&mut self) {
        self.encap_ports.clear();
        for (e, _) in &self.encap {
            if !self.encap_ports.contains(&e.port) {
                self.encap_ports.push(e.port);
            }
        }
    }

    /// Delete the SA (or bundle) named by `handle`; its slot is freed and its crypto state
    /// dropped (keys zeroized by `ipsec`). The handle is never honoured again.
    ///
    /// # Errors
    /// [`TableError::NotFound`] for an unknown or stale handle.
    pub fn delete(&mut self, handle: SaHandle) -> Result<SaStats, TableError> {
        let index = handle.index().ok_or(TableError::NotFound)?;
        let slot = self
            .slots
            .get_mut(index as usize)
            .ok_or(TableError::NotFound)?;
        if slot.generation != handle.generation() || slot.entry.is_none() {
            return Err(TableError::NotFound);
        }
        let entry = slot.entry.take().ok_or(TableError::NotFound)?;
        slot.generation = (slot.generation + 1) & 0x7fff_ffff;
        // A slot whose generation wrapped is retired, so no handle is ever reissued.
        if slot.generation != 0 {
            self.free.push(index);
        }
        let info = &entry.info;
        match info.direction {
            Direction::Inbound => {
                if let Some(outer) = info.outermost() {
                    let key = InKey::new(
                        outer.spi,
                        outer.protocol.ip_protocol(),
                        info.dst,
                        info.udp_encap.map_or(0, |e| e.port),
                    );
                    self.inbound.remove(&key);
                }
                self.inbound_len = self.inbound_len.saturating_sub(1);
                if let Some(e) = info.udp_encap {
                    self.encap_unref(e);
                }
            }
            Direction::Outbound => self.outbound_len = self.outbound_len.saturating_sub(1),
        }
        if self.victim.load(Ordering::Relaxed) == handle.raw() {
            self.victim.store(0, Ordering::Relaxed);
            self.last_scan.store(0, Ordering::Relaxed);
        }
        let stats = entry.counters.snapshot();
        drop(entry);
        Ok(stats)
    }

    /// The entry named by `handle`, if it is live (generation checked).
    pub fn get(&self, handle: SaHandle) -> Option<&SaEntry<C>> {
        let index = handle.index()?;
        let slot = self.slots.get(index as usize)?;
        if slot.generation != handle.generation() {
            return None;
        }
        slot.entry.as_deref()
    }

    /// The inbound entry for a received header: exact destination first, then a wildcard.
    pub fn lookup_inbound(
        &self,
        spi: u32,
        protocol: u8,
        dst: IpAddr,
        encap_port: Option<u16>,
    ) -> Option<&SaEntry<C>> {
        let port = encap_port.unwrap_or(0);
        let idx = self
            .inbound
            .get(&InKey::new(spi, protocol, Some(dst), port))
            .or_else(|| self.inbound.get(&InKey::new(spi, protocol, None, port)))?;
        self.slots.get(*idx as usize)?.entry.as_deref()
    }

    /// Every live entry, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &SaEntry<C>> {
        self.slots.iter().filter_map(|s| s.entry.as_deref())
    }

    /// Set the outbound ESN high-order bits (NDIS v2 `UPDATE_SA`): subsequent frames use `hi`
    /// (and `hi + 1` after the low bits wrap).
    ///
    /// # Errors
    /// [`TableError::NotFound`]; [`TableError::NotApplicable`] for an inbound SA or one
    /// without ESN.
    pub fn set_esn_high(&self, handle: SaHandle, hi: u32) -> Result<(), TableError> {
        let e = self.get(handle).ok_or(TableError::NotFound)?;
        if e.info.direction != Direction::Outbound || !e.info.esn() {
            return Err(TableError::NotApplicable);
        }
        for (s, f) in e.seq.iter().zip(&e.esn_fresh) {
            s.store(u64::from(hi) << 32, Ordering::Relaxed);
            f.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The raw handle of the inbound SA the NIC asks the host to delete, recomputed at most
    /// every `lru_scan_interval_ns` of virtual time (0 = none: table not under pressure).
    pub fn delete_request_victim(&self, now_ns: u64) -> u64 {
        let Some(threshold) = self.cfg.delete_request_threshold else {
            return 0;
        };
        if self.inbound_len < threshold.max(1) {
            return 0;
        }
        let last = self.last_scan.load(Ordering::Relaxed);
        let due = last == 0 || now_ns.saturating_sub(last - 1) >= self.cfg.lru_scan_interval_ns;
        if due {
            let victim = self
                .iter()
                .filter(|e| e.info.direction == Direction::Inbound)
                .min_by_key(|e| (e.last_used.load(Ordering::Relaxed), e.info.handle))
                .map_or(0, |e| e.info.handle.raw());
            self.victim.store(victim, Ordering::Relaxed);
            self.last_scan
                .store(now_ns.saturating_add(1), Ordering::Relaxed);
        }
        self.victim.load(Ordering::Relaxed)
    }

    /// A text dump in the style of netdevsim's debugfs file: a header line, then one line per
    /// SA in slot order. Stable format; never contains keys.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "sa_table capacity_in={} capacity_out={} used_in={} used_out={}",
            self.cfg.inbound_capacity,
            self.cfg.outbound_capacity,
            self.inbound_len,
            self.outbound_len
        );
        for e in self.iter() {
            dump_line(&mut out, e);
        }
        out
    }
}

fn dump_line<C>(out: &mut String, e: &SaEntry<C>) {
    let i = &e.info;
    let dir = match i.direction {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    };
    let join = |f: &dyn Fn(&SaSummary) -> String| -> String {
        i.sas.iter().map(f).collect::<Vec<_>>().join("+")
    };
    let spi = join(&|s| format!("{:#010x}", s.spi));
    let proto = join(&|s| protocol_name(s.protocol).to_owned());
    let alg = join(&|s| {
        format!(
            "{}/{}",
            encryption_name(s.encryption),
            integrity_name(s.integrity)
        )
    });
    let mode = match i.mode() {
        Mode::Transport => "transport",
        Mode::Tunnel => "tunnel",
    };
    let addr = |a: Option<IpAddr>| a.map_or_else(|| "*".to_owned(), |a| a.to_string());
    let encap = i.udp_encap.map_or_else(
        || "-".to_owned(),
        |e| {
            let t = match e.encap_type {
                EncapType::Ike => "ike",
                EncapType::Other => "other",
            };
            format!("{t}:{}", e.port)
        },
    );
    let _ = write!(
        out,
        "sa handle={} dir={dir} spi={spi} proto={proto} mode={mode} dst={} src={} encap={encap} \
         alg={alg} esn={} ",
        i.handle,
        addr(i.dst),
        addr(i.src),
        u8::from(i.esn()),
    );
    write_fields(out, e.counters.snapshot().fields());
    out.push('\n');
}

/// Short name of a protocol, as in the dump.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Esp => "esp",
        Protocol::Ah => "ah",
    }
}

/// Short name of a cipher, as in the dump.
pub fn encryption_name(e: Encryption) -> &'static str {
    match e {
        Encryption::None => "none",
        Encryption::Null => "null",
        Encryption::AesGcm128 => "aes-gcm-128",
        Encryption::AesGcm192 => "aes-gcm-192",
        Encryption::AesGcm256 => "aes-gcm-256",
        Encryption::AesCbc128 => "aes-cbc-128",
        Encryption::AesCbc192 => "aes-cbc-192",
        Encryption::AesCbc256 => "aes-cbc-256",
    }
}

/// Short name of an integrity transform, as in the dump.
pub fn integrity_name(i: Integrity) -> &'static str {
    match i {
        Integrity::None => "none",
        Integrity::HmacSha1_96 => "hmac-sha1-96",
        Integrity::HmacSha256_128 => "hmac-sha256-128",
        Integrity::AesGmac128 => "aes-gmac-128",
        Integrity::AesGmac192 => "aes-gmac-192",
        Integrity::AesGmac256 => "aes-gmac-256",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use ipsec::{Key, TunnelEndpoints};

    /// Test crypto state: validates like the real builder and remembers the first key byte
    /// (so tests can tell which SA processed something).
    #[derive(Debug)]
    struct Fake(u8);

    fn build(sas: &[SaParams]) -> Result<Fake, ParamError> {
        match sas {
            [_] => {}
            [a, b] if a.protocol == Protocol::Esp && b.protocol == Protocol::Ah => {}
            _ => return Err(ParamError::InvalidBundle),
        }
        for s in sas {
            s.validate()?;
        }
        Ok(Fake(
            sas.first()
                .and_then(|s| s.encryption_key.expose().first().copied())
                .unwrap_or(0),
        ))
    }

    fn gcm(spi: u32, k: u8) -> SaParams {
        SaParams {
            spi,
            protocol: Protocol::Esp,
            mode: Mode::Transport,
            encryption: Encryption::AesGcm128,
            encryption_key: Key::new(&[k; 20]),
            integrity: Integrity::None,
            integrity_key: Key::empty(),
            esn: false,
            tunnel: None,
            udp_encap: None,
        }
    }

    fn ah(spi: u32) -> SaParams {
        SaParams {
            spi,
            protocol: Protocol::Ah,
            mode: Mode::Transport,
            encryption: Encryption::None,
            encryption_key: Key::empty(),
            integrity: Integrity::HmacSha256_128,
            integrity_key: Key::new(&[3; 32]),
            esn: false,
            tunnel: None,
            udp_encap: None,
        }
    }

    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

    fn spec(direction: Direction, sas: Vec<SaParams>) -> SaSpec {
        SaSpec {
            direction,
            sas,
            dst: Some(DST),
            src: None,
            udp_encap: None,
        }
    }

    fn small(n: usize) -> SaTable<Fake> {
        SaTable::new(TableConfig {
            inbound_capacity: n,
            outbound_capacity: n,
            ..TableConfig::default()
        })
    }

    #[test]
    fn default_capacity() {
        let t: SaTable<Fake> = SaTable::new(TableConfig::default());
        assert_eq!(t.capacity(), (1024, 1024));
        assert!(t.is_empty());
    }

    #[test]
    fn add_lookup_delete() {
        let mut t = small(4);
        let h = t
            .add(spec(Direction::Inbound, vec![gcm(0x1001, 9)]), build)
            .unwrap();
        assert!(!h.is_none());
        assert_eq!(t.len(), (1, 0));
        let e = t.lookup_inbound(0x1001, 50, DST, None).unwrap();
        assert_eq!(e.info().handle, h);
        assert_eq!(e.crypto().0, 9);
        assert!(
            t.lookup_inbound(0x1001, 50, OTHER, None).is_none(),
            "dst is part of the key"
        );
        assert!(
            t.lookup_inbound(0x1001, 51, DST, None).is_none(),
            "protocol is part of the key"
        );
        assert!(t.lookup_inbound(0x1002, 50, DST, None).is_none());
        t.delete(h).unwrap();
        assert!(t.lookup_inbound(0x1001, 50, DST, None).is_none());
        assert!(t.get(h).is_none());
        assert_eq!(t.delete(h), Err(TableError::NotFound));
        assert_eq!(t.len(), (0, 0));
    }

    #[test]
    fn wildcard_destination() {
        let mut t = small(4);
        let mut s = spec(Direction::Inbound, vec![gcm(0x1001, 1)]);
        s.dst = None;
        let h = t.add(s, build).unwrap();
        assert_eq!(
            t.lookup_inbound(0x1001, 50, OTHER, None)
                .map(|e| e.info().handle),
            Some(h)
        );
        // An exact entry with the same SPI wins over the wildcard.
        let h2 = t
            .add(spec(Direction::Inbound, vec![gcm(0x1001, 2)]), build)
            .unwrap();
        assert_eq!(
            t.lookup_inbound(0x1001, 50, DST, None)
                .map(|e| e.info().handle),
            Some(h2)
        );
        assert_eq!(
            t.lookup_inbound(0x1001, 50, OTHER, None)
                .map(|e| e.info().handle),
            Some(h)
        );
    }

    #[test]
    fn tunnel_destination_defaults_to_local_endpoint() {
        let mut t = small(4);
        let mut p = gcm(0x2001, 1);
        p.mode = Mode::Tunnel;
        p.tunnel = Some(TunnelEndpoints {
            local: OTHER,
            remote: DST,
        });
        let mut s = spec(Direction::Inbound, vec![p]);
        s.dst = None;
        t.add(s, build).unwrap();
        assert!(t.lookup_inbound(0x2001, 50, OTHER, None).is_some());
        assert!(t.lookup_inbound(0x2001, 50, DST, None).is_none());
    }

    #[test]
    fn udp_encap_entries() {
        let mut t = small(4);
        let mut s = spec(Direction::Inbound, vec![gcm(0x3001, 1)]);
        s.udp_encap = Some(EncapEntry {
            encap_type: EncapType::Ike,
            port: 4500,
        });
        let h = t.add(s.clone(), build).unwrap();
        assert_eq!(t.encap_ports(), &[4500]);
        assert!(t.lookup_inbound(0x3001, 50, DST, Some(4500)).is_some());
        assert!(
            t.lookup_inbound(0x3001, 50, DST, None).is_none(),
            "plain ESP is another key"
        );
        assert_eq!(t.add(s.clone(), build), Err(TableError::Duplicate));
        let mut s2 = s.clone();
        s2.sas = vec![gcm(0x3002, 1)];
        let h2 = t.add(s2, build).unwrap();
        assert_eq!(t.encap_ports(), &[4500], "refcounted, listed once");
        t.delete(h).unwrap();
        assert_eq!(t.encap_ports(), &[4500]);
        t.delete(h2).unwrap();
        assert!(t.encap_ports().is_empty());
        let mut s3 = spec(Direction::Inbound, vec![ah(0x3003)]);
        s3.udp_encap = Some(EncapEntry {
            encap_type: EncapType::Other,
            port: 4501,
        });
        assert_eq!(
            t.add(s3, build),
            Err(TableError::Invalid(ParamError::UdpEncapOnAh))
        );
    }

    #[test]
    fn stale_handles_never_honoured() {
        let mut t = small(1);
        let mut seen = Vec::new();
        for round in 0..50u8 {
            let h = t
                .add(
                    spec(
                        Direction::Outbound,
                        vec![gcm(0x1000 + u32::from(round), round)],
                    ),
                    build,
                )
                .unwrap();
            assert!(!seen.contains(&h), "a handle is never reissued");
            for old in &seen {
                assert!(t.get(*old).is_none(), "stale handle {old:?} honoured");
                assert_eq!(t.set_esn_high(*old, 1), Err(TableError::NotFound));
            }
            assert_eq!(t.get(h).unwrap().crypto().0, round);
            t.delete(h).unwrap();
            seen.push(h);
        }
        // Handles that were never issued.
        assert!(t.get(SaHandle(0)).is_none());
        assert!(t.get(SaHandle(12345)).is_none());
        assert!(t.get(SaHandle(u64::MAX)).is_none());
    }

    #[test]
    fn full_table_is_a_distinct_error_per_direction() {
        let mut t = small(2);
        for spi in 0..2 {
            t.add(spec(Direction::Inbound, vec![gcm(0x100 + spi, 1)]), build)
                .unwrap();
        }
        assert_eq!(
            t.add(spec(Direction::Inbound, vec![gcm(0x200, 1)]), build),
            Err(TableError::Full)
        );
        // Outbound has its own capacity.
        let o1 = t
            .add(spec(Direction::Outbound, vec![gcm(0x300, 1)]), build)
            .unwrap();
        t.add(spec(Direction::Outbound, vec![gcm(0x301, 1)]), build)
            .unwrap();
        assert_eq!(
            t.add(spec(Direction::Outbound, vec![gcm(0x302, 1)]), build),
            Err(TableError::Full)
        );
        t.delete(o1).unwrap();
        t.add(spec(Direction::Outbound, vec![gcm(0x302, 1)]), build)
            .unwrap();
        assert_eq!(t.len(), (2, 2));
    }

    #[test]
    fn bundle_add_is_atomic() {
        let mut t = small(4);
        // ESP then AH: indexed by the outermost (AH) SPI.
        let h = t
            .add(
                spec(Direction::Inbound, vec![gcm(0x500, 1), ah(0x501)]),
                build,
            )
            .unwrap();
        assert!(t.lookup_inbound(0x501, 51, DST, None).is_some());
        assert!(t.lookup_inbound(0x500, 50, DST, None).is_none());
        assert_eq!(t.get(h).unwrap().info().sas.len(), 2);
        // A bundle with one bad SA: nothing programmed.
        let mut bad = ah(0x601);
        bad.integrity_key = Key::new(&[1; 5]);
        let before = t.dump();
        assert_eq!(
            t.add(spec(Direction::Inbound, vec![gcm(0x600, 1), bad]), build),
            Err(TableError::Invalid(ParamError::IntegrityKeyLength))
        );
        // Wrong order.
        assert_eq!(
            t.add(
                spec(Direction::Inbound, vec![ah(0x701), gcm(0x700, 1)]),
                build
            ),
            Err(TableError::Invalid(ParamError::InvalidBundle))
        );
        assert_eq!(
            t.add(spec(Direction::Inbound, vec![]), build),
            Err(TableError::Invalid(ParamError::InvalidBundle))
        );
        assert_eq!(t.dump(), before, "failed adds change nothing");
        assert_eq!(t.len(), (1, 0));
    }

    #[test]
    fn duplicate_inbound() {
        let mut t = small(4);
        t.add(spec(Direction::Inbound, vec![gcm(0x900, 1)]), build)
            .unwrap();
        assert_eq!(
            t.add(spec(Direction::Inbound, vec![gcm(0x900, 2)]), build),
            Err(TableError::Duplicate)
        );
        let mut other_dst = spec(Direction::Inbound, vec![gcm(0x900, 2)]);
        other_dst.dst = Some(OTHER);
        t.add(other_dst, build).unwrap();
        // Outbound SAs are found by handle only: the same SPI twice is allowed.
        t.add(spec(Direction::Outbound, vec![gcm(0x900, 1)]), build)
            .unwrap();
        t.add(spec(Direction::Outbound, vec![gcm(0x900, 1)]), build)
            .unwrap();
    }

    #[test]
    fn million_capacity() {
        let mut t: SaTable<Fake> = SaTable::new(TableConfig {
            inbound_capacity: 1_000_000,
            outbound_capacity: 1_000_000,
            ..TableConfig::default()
        });
        assert_eq!(t.capacity(), (1_000_000, 1_000_000));
        let mut hs = Vec::new();
        for i in 0..1000u32 {
            hs.push(
                t.add(spec(Direction::Inbound, vec![gcm(0x10000 + i, 1)]), build)
                    .unwrap(),
            );
        }
        assert!(t.lookup_inbound(0x10000 + 777, 50, DST, None).is_some());
        for h in hs {
            t.delete(h).unwrap();
        }
        assert!(t.is_empty());
    }

    #[test]
    fn outbound_esn_inference() {
        // (hi, last) = (0, 0): forward steps keep hi.
        assert_eq!(infer_hi(0, 0, 5), (0, 5));
        // Wrap: from near the top to a small value increments hi.
        assert_eq!(infer_hi(0, 0xffff_fff0, 3), (1, (1 << 32) | 3));
        // A late frame from before the wrap uses hi - 1 and leaves the state alone.
        assert_eq!(infer_hi(1, 3, 0xffff_fff1), (0, (1 << 32) | 3));
        // Small reordering keeps hi and the last value.
        assert_eq!(infer_hi(2, 100, 90), (2, (2 << 32) | 100));
    }

    #[test]
    fn set_esn_high_rules() {
        let mut t = small(4);
        let mut p = gcm(0x1234, 1);
        p.esn = true;
        let h = t
            .add(spec(Direction::Outbound, vec![p.clone()]), build)
            .unwrap();
        t.set_esn_high(h, 7).unwrap();
        let e = t.get(h).unwrap();
        // The first frame after the update takes `hi` whatever its low bits.
        assert_eq!(e.outbound_seq_hi(ESP, 0x9000_0000), 7);
        assert_eq!(e.outbound_seq_hi(ESP, 0xffff_fff0), 7);
        assert_eq!(e.outbound_seq_hi(ESP, 2), 8, "wrapped");
        assert_eq!(
            e.outbound_seq_hi(ESP, 0xffff_fff5),
            7,
            "late frame from before the wrap"
        );
        t.set_esn_high(h, 3).unwrap();
        assert_eq!(t.get(h).unwrap().outbound_seq_hi(ESP, 1), 3);
        let hin = t.add(spec(Direction::Inbound, vec![p]), build).unwrap();
        assert_eq!(t.set_esn_high(hin, 1), Err(TableError::NotApplicable));
        let h32 = t
            .add(spec(Direction::Outbound, vec![gcm(0x1235, 1)]), build)
            .unwrap();
        assert_eq!(t.set_esn_high(h32, 1), Err(TableError::NotApplicable));
    }

    #[test]
    fn delete_request_victim_is_lru_inbound() {
        let mut t: SaTable<Fake> = SaTable::new(TableConfig {
            inbound_capacity: 8,
            outbound_capacity: 8,
            delete_request_threshold: Some(3),
            lru_scan_interval_ns: 1000,
        });
        let a = t
            .add(spec(Direction::Inbound, vec![gcm(0x100, 1)]), build)
            .unwrap();
        let b = t
            .add(spec(Direction::Inbound, vec![gcm(0x101, 1)]), build)
            .unwrap();
        t.get(a).unwrap().touch(50);
        t.get(b).unwrap().touch(60);
        assert_eq!(t.delete_request_victim(100), 0, "below the threshold");
        let c = t
            .add(spec(Direction::Inbound, vec![gcm(0x102, 1)]), build)
            .unwrap();
        t.get(c).unwrap().touch(70);
        assert_eq!(t.delete_request_victim(100), a.raw());
        t.get(a).unwrap().touch(200);
        assert_eq!(
            t.delete_request_victim(500),
            a.raw(),
            "not rescanned before the interval"
        );
        assert_eq!(t.delete_request_victim(1200), b.raw());
        t.delete(b).unwrap();
        assert_eq!(t.delete_request_victim(1201), 0, "back under the threshold");
    }

    #[test]
    fn dump_format_has_no_keys() {
        let mut t = small(4);
        let mut s = spec(Direction::Inbound, vec![gcm(0x1001, 0xab), ah(0x1002)]);
        s.src = Some(OTHER);
        let h = t.add(s, build).unwrap();
        let mut p = gcm(0x2001, 0xcd);
        p.esn = true;
        let mut so = spec(Direction::Outbound, vec![p]);
        so.dst = None;
        so.udp_encap = Some(EncapEntry {
            encap_type: EncapType::Other,
            port: 4501,
        });
        let ho = t.add(so, build).unwrap();
        bump_for_test(&t, h);
        let dump = t.dump();
        let expected = format!(
            "sa_table capacity_in=4 capacity_out=4 used_in=1 used_out=1\n\
             sa handle={h} dir=in spi=0x00001001+0x00001002 proto=esp+ah mode=transport \
             dst=192.0.2.2 src=198.51.100.7 encap=- alg=aes-gcm-128/none+none/hmac-sha256-128 \
             esn=0 packets=1 bytes=0 auth_failed=0 invalid_syntax=0 invalid_protocol=0 \
             generic_error=0 tx_errors=0 delete_requests=0\n\
             sa handle={ho} dir=out spi=0x00002001 proto=esp mode=transport dst=* src=* \
             encap=other:4501 alg=aes-gcm-128/none esn=1 packets=0 bytes=0 auth_failed=0 \
             invalid_syntax=0 invalid_protocol=0 generic_error=0 tx_errors=0 delete_requests=0\n"
        );
        assert_eq!(dump, expected);
        assert!(!dump.contains("abab") && !dump.contains("cdcd"));
    }

    fn bump_for_test(t: &SaTable<Fake>, h: SaHandle) {
        crate::stats::bump(&t.get(h).unwrap().counters.packets);
    }
}
