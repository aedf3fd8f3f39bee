//! Offline ESP/AH processing of Ethernet captures (`ipsec-nic pcap encap|decap`) through the
//! full host model.
//!
//! # Layers exercised
//! One emulated [`Host`]: a `transport::HostStack` bound to a `miniport::VirtualMiniport`
//! whose `nicsim` NIC sits on an in-memory wire (`nicsim::MemWire::pair()`); this module holds
//! the other end of the wire.
//! - **WFP** (`transport::wfp`): the config's SAs are installed with the Manual SA calls
//!   ([`super::install`]: `FwpmFilterAdd0`, `IPsecSaContextCreate0`, `SetSpi0`/`GetSpi0`,
//!   `AddInbound0`, `AddOutbound0`, `Update0` for NAT-T). Every packet is classified by the
//!   engine's filters: which packets are protected, and with which SA, is the engine's
//!   decision, not this module's.
//! - **Offload management** (default): the stack offers every SA to the miniport with
//!   `OID_TCP_TASK_IPSEC_ADD_SA` / `ADD_UDPESP_SA` (IPv4) or
//!   `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX` (IPv6, ESN); processing starts only when every
//!   SA is offloaded (a refused offload is an error and nothing is processed).
//! - **Encap**: each IP packet enters with `HostStack::send_ip`: outbound classification, the
//!   SA context's sequence number, ESP/AH framing by the stack (`Bundle::encapsulate`), the
//!   offload handle in the per-packet send info, `NdisSendNetBufferLists` to the miniport,
//!   and the **NIC's** encryption/ICV (the NIC model's TX engine); the frame is taken off the
//!   wire.
//! - **Decap**: each ESP/AH frame for a configured SA is put on the wire towards the NIC:
//!   the NIC's SA lookup (SPI + destination), decryption and ICV check, the receive
//!   indication with its per-packet IPsec info, then the stack's anti-replay check, header
//!   removal, inbound policy (traffic selectors, filters) and delivery to the external-stack
//!   adapter (`set_external(true)`, `take_delivered_ip`).
//! - `--software`: the same, with offload off (`HostConfig::offload = false`): no ADD_SA OID
//!   is issued, the stack's software path does the crypto (`Bundle::protect` / `unprotect`)
//!   and the NIC forwards frames unprocessed. Both paths produce byte-identical output: the
//!   IV is a function of the SA and the sequence number.
//!
//! # Correspondence between input and output
//! Output frames follow input order and keep the input timestamps; the output holds one frame
//! per input frame except the dropped ones. The [`Report`] lists every dropped input frame by
//! its 1-based number (as Wireshark numbers frames), so output frame `i` is input frame `i`
//! minus the number of drops before it. A processed frame keeps the input's Ethernet
//! addresses; its EtherType follows the (new) outer IP version.
//!
//! # What passes, what drops
//! - Passed unchanged (counted by reason): frames that are not IPv4/IPv6 (VLAN-tagged frames
//!   included: not supported), IP packets the host stack cannot parse, packets no IPsec
//!   filter selects (encap: sent in clear by the stack), frames that are not ESP/AH for one of
//!   the file's inbound SAs (decap: SPI and protocol).
//! - Dropped (counted by reason, listed with the frame number): what the stack or the NIC
//!   refuses, named after the counter that moved (`authenticationFailuresOnInbound`,
//!   `replayCheckFailuresOnInbound`, NIC transmit failures...), and decap frames for a
//!   configured SPI that arrive for another destination than the SA's.
//!
//! # Bounds and allocation
//! The capture is held in memory (the CLI bounds the file size). Per frame, the loop
//! allocates the output record (the output capture owns its bytes) and, for decap, the frame
//! put on the wire (its buffer moves into the NIC); everything else is reused.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use nicsim::{Frame, MemWire, NicStats, Wire};
use transport::StackError;
use transport::stack::{SaOffloadState, SendDisposition, StackStatistics};

use super::config::{Direction, SaFile};
use super::install::{self, InstallOptions, Installed};
use super::pcap::{Capture, Record};
use crate::{Host, HostConfig};

const ETH: usize = 14;
/// The emulated host's MAC (locally administered).
const HOST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x01];
/// The MAC every neighbor gets: the output keeps the input's Ethernet addresses anyway.
const NEIGHBOR_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x02];
/// Most input destinations entered in the static neighbor table (the stack scans it per
/// packet); cleartext packets to others are recognised by the stack's no-neighbor drop.
const MAX_NEIGHBORS: usize = 1024;
/// Polls per frame before giving up on it (one normally suffices).
const MAX_POLLS: usize = 4;
const NOW: Duration = Duration::ZERO;

/// Which way frames are processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Send the input's IP packets through the host: outbound SAs apply.
    Encap,
    /// Receive the input's frames on the host's NIC: inbound SAs apply.
    Decap,
}

/// What happened to the frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Frames processed by an SA.
    pub processed: u64,
    /// Frames copied unchanged (no SA applies).
    pub passed: u64,
    /// Passed frames by reason.
    pub passed_by_reason: BTreeMap<String, u64>,
    /// Dropped frames by reason.
    pub drops: BTreeMap<String, u64>,
    /// `(frame number, reason)` of every dropped frame; numbers are 1-based (Wireshark's).
    pub dropped: Vec<(usize, String)>,
    /// Packets and bytes (input frame bytes) per SPI of the file.
    pub per_sa: BTreeMap<u32, (u64, u64)>,
    /// Frames whose crypto the NIC did (the stack's offloaded sends / `CryptoDone` receives).
    pub nic_crypto: u64,
    /// The host stack's counters at the end (offload OIDs, drops, IPsec statistics).
    pub stack: StackStatistics,
    /// The NIC's counters at the end.
    pub nic: NicStats,
}

impl Report {
    fn pass(&mut self, reason: &str) {
        self.passed = self.passed.saturating_add(1);
        match self.passed_by_reason.get_mut(reason) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                self.passed_by_reason.insert(reason.to_owned(), 1);
            }
        }
    }

    fn drop(&mut self, frame: usize, reason: String) {
        tracing::info!(frame, %reason, "dropped");
        let n = self.drops.entry(reason.clone()).or_default();
        *n = n.saturating_add(1);
        self.dropped.push((frame, reason));
    }

    fn done(&mut self, spi: Option<u32>, bytes: usize) {
        self.processed = self.processed.saturating_add(1);
        if let Some(spi) = spi {
            let e = self.per_sa.entry(spi).or_default();
            e.0 = e.0.saturating_add(1);
            e.1 = e.1.saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
    }
}

/// Why processing could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessError(pub String);

impl core::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProcessError {}

fn ip_addrs(pkt: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match pkt.first()? >> 4 {
        4 => {
            let s: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = pkt.get(16..20)?.try_into().ok()?;
            Some((Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()))
        }
        6 => {
            let s: [u8; 16] = pkt.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = pkt.get(24..40)?.try_into().ok()?;
            Some((Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()))
        }
        _ => None,
    }
}

/// The IP packet's length per its header (drops Ethernet padding), bounded by the data.
fn ip_len(pkt: &[u8]) -> usize {
    let n = match pkt.first().map(|b| b >> 4) {
        Some(4) => pkt
            .get(2..4)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 2]| usize::from(u16::from_be_bytes(b))),
        Some(6) => pkt
            .get(4..6)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 2]| 40 + usize::from(u16::from_be_bytes(b))),
        _ => None,
    };
    match n {
        Some(n) if n > 0 && n <= pkt.len() => n,
        _ => pkt.len(),
    }
}

fn ethertype_for(pkt: &[u8]) -> [u8; 2] {
    if pkt.first().map(|b| b >> 4) == Some(6) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    }
}

/// The IP packet of an Ethernet frame, or why the frame passes unchanged.
fn ip_of_frame(frame: &[u8]) -> Result<&[u8], &'static str> {
    match frame.get(12..14) {
        Some([0x08, 0x00] | [0x86, 0xdd]) => {
            let pkt = frame.get(ETH..).unwrap_or_default();
            Ok(pkt.get(..ip_len(pkt)).unwrap_or(pkt))
        }
        Some([0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00]) => {
            Err("VLAN-tagged frame (not supported)")
        }
        Some(_) => Err("not IPv4/IPv6"),
        None => Err("shorter than an Ethernet header"),
    }
}

/// `(name, value)` of the stack counters that name a drop reason.
fn stack_counters(s: &StackStatistics) -> [(&'static str, u64); 20] {
    let d = &s.ipsec.aggregate_drop_packet_statistics;
    [
        ("blocked by a WFP filter (outbound)", s.outbound.blocked),
        (
            "IPsec filter matched but no complete SA context (no_sa)",
            s.outbound.no_sa,
        ),
        (
            "sequence number space exhausted (the SA was expired)",
            s.outbound.seq_overflow,
        ),
        ("no neighbor for the next hop", s.outbound.no_neighbor),
        (
            "framing or software crypto failed (frame_errors)",
            s.outbound.frame_errors,
        ),
        ("send completed with a failure", s.outbound.send_failures),
        (
            "replay (replayCheckFailuresOnInbound)",
            u64::from(d.replay_check_failures_on_inbound),
        ),
        (
            "ICV mismatch (authenticationFailuresOnInbound)",
            u64::from(d.authentication_failures_on_inbound),
        ),
        (
            "decryption or syntax failure (decryptionFailuresOnInbound)",
            u64::from(d.decryption_failures_on_inbound),
        ),
        (
            "unknown SPI (invalidSpisOnInbound)",
            u64::from(d.invalid_spis_on_inbound),
        ),
        (
            "UDP encapsulation ports do not match the SA (udpEspValidationFailuresOnInbound)",
            u64::from(d.udp_esp_validation_failures_on_inbound),
        ),
        (
            "SA not initialized (saNotInitializedOnInbound)",
            u64::from(d.sa_not_initialized_on_inbound),
        ),
        (
            "inner packet outside the SA's selectors (receiveOverIncorrectSaInbound)",
            u64::from(d.receive_over_incorrect_sa_inbound),
        ),
        (
            "protected packet selects another IPsec filter (secureReceivesNotMatchingFilters)",
            u64::from(d.secure_receives_not_matching_filters),
        ),
        (
            "cleartext a filter requires protected (invalidClearTextInbound)",
            u64::from(d.invalid_clear_text_inbound),
        ),
        ("bad IPv4 header checksum", s.inbound.bad_ipv4_checksum),
        ("malformed or not for this host", s.inbound.malformed),
        ("blocked by a WFP filter (inbound)", s.inbound.blocked),
        ("no receive buffer", s.inbound.no_buffer),
        ("UDP checksum wrong", s.inbound.bad_checksum),
    ]
}

/// The first stack counter that moved between `before` and `after`.
fn stack_reason(before: &StackStatistics, after: &StackStatistics) -> Option<&'static str> {
    stack_counters(before)
        .iter()
        .zip(stack_counters(after).iter())
        .find(|(b, a)| a.1 > b.1)
        .map(|(_, a)| a.0)
}

/// The first NIC failure counter that moved.
fn nic_reason(before: &NicStats, after: &NicStats) -> Option<&'static str> {
    before
        .fields()
        .zip(after.fields())
        .filter(|((name, _), _)| {
            let n = *name;
            n.starts_with("tx_")
                && !matches!(n, "tx_frames" | "tx_bytes" | "tx_protected" | "tx_clear")
        })
        .find(|((_, b), (_, a))| a > b)
        .map(|((name, _), _)| name)
}

/// Whether an outbound SA's selectors cover the packet's addresses.
fn selected(sas: &SaFile, pkt: &[u8]) -> bool {
    ip_addrs(pkt).is_some_and(|(s, d)| sas.sas.iter().any(|sa| sa.matches_outbound(s, d)))
}

/// The host (and our end of its wire) for `sas`.
fn host_for(
    sas: &SaFile,
    input: &Capture,
    op: Op,
    software: bool,
) -> Result<(Host, MemWire), ProcessError> {
    let window = install::host_replay_window(sas).map_err(|e| ProcessError(e.to_string()))?;
    let addresses = install::local_addresses(sas);
    // Neighbors: every SA's next hop (transport: the remote host; tunnel: the remote tunnel
    // endpoint), then (encap) the input's destinations up to MAX_NEIGHBORS.
    let mut hops: BTreeSet<IpAddr> = BTreeSet::new();
    for sa in &sas.sas {
        if let Some(a) = sa.params.tunnel.map(|t| t.remote).or(sa.remote.host()) {
            hops.insert(a);
        }
    }
    if op == Op::Encap {
        for rec in &input.records {
            if hops.len() >= MAX_NEIGHBORS {
                break;
            }
            if let Some((_, dst)) = ip_of_frame(&rec.data).ok().and_then(ip_addrs) {
                hops.insert(dst);
            }
        }
    }
    let mut cfg = HostConfig::new("pcap", HOST_MAC, addresses);
    cfg.neighbors = hops.into_iter().map(|a| (a, NEIGHBOR_MAC)).collect();
    cfg.offload = !software;
    // Every SA context holds at most two bundles (a receive-only partner adds one).
    cfg.nic_capacity = sas.sas.len().saturating_mul(2).max(1);
    cfg.replay_window = window;
    let (ours, nic_end) = MemWire::pair();
    let host = Host::new(&cfg, nic_end).map_err(|e| ProcessError(format!("host: {e}")))?;
    Ok((host, ours))
}

/// Process `input` with the SAs of `sas` in direction `op` through an emulated host (see the
/// [module docs](self)); `software` turns offload off (the stack's software crypto).
///
/// # Errors
/// [`ProcessError`] when the host cannot be built, an SA cannot be installed, or (offload)
/// the NIC refuses to offload an SA; nothing is processed then.
pub fn process(
    sas: &SaFile,
    input: &Capture,
    op: Op,
    software: bool,
) -> Result<(Capture, Report), ProcessError> {
    let (mut host, mut wire) = host_for(sas, input, op, software)?;
    let opts = InstallOptions {
        receive_only_partner: true,
        ..Default::default()
    };
    let installed =
        install::install_with(&mut host, sas, &opts).map_err(|e| ProcessError(e.to_string()))?;
    if !software {
        wait_offloaded(&mut host, sas, &installed)?;
    }
    host.stack_mut().set_external(true);
    let mut st = Run {
        last: host.stack().statistics(),
        last_nic: host.nic_stats(),
        host,
        wire: &mut wire,
        rx: Vec::with_capacity(4),
        done: Vec::with_capacity(4),
        tx: Vec::with_capacity(1),
        delivered: Vec::with_capacity(2048),
        spi_of_context: installed
            .contexts
            .iter()
            .filter_map(|c| {
                let sa = sas.sas.get(c.outbound?)?;
                Some((c.context, sa.params.spi))
            })
            .collect(),
        inbound: sas
            .sas
            .iter()
            .enumerate()
            .filter(|(_, s)| s.direction == Direction::Inbound)
            .map(|(i, s)| ((s.params.spi, s.params.protocol == ipsec::Protocol::Esp), i))
            .collect(),
    };
    let udp_ports: Vec<u16> = sas
        .sas
        .iter()
        .filter(|s| s.direction == Direction::Inbound)
        .filter_map(|s| s.params.udp_encap.map(|u| u.local_port))
        .collect();
    let mut report = Report::default();
    let mut out = Capture {
        nanos: input.nanos,
        snaplen: input.snaplen,
        records: Vec::with_capacity(input.records.len()),
    };
    for (i, rec) in input.records.iter().enumerate() {
        let number = i.saturating_add(1);
        let result = match op {
            Op::Encap => st.encap(sas, rec, &mut report),
            Op::Decap => st.decap(sas, &udp_ports, rec),
        };
        match result {
            Outcome::Pass(reason) => {
                report.pass(reason);
                out.records.push(rec.clone());
            }
            Outcome::Done(spi, data) => {
                report.done(spi, rec.data.len());
                out.records.push(Record {
                    ts_sec: rec.ts_sec,
                    ts_frac: rec.ts_frac,
                    orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    data,
                });
            }
            Outcome::Drop(reason) => report.drop(number, reason),
        }
    }
    report.stack = st.host.stack().statistics();
    report.nic = st.host.nic_stats();
    if op == Op::Decap {
        report.nic_crypto = report.stack.inbound.nic_processed;
    }
    Ok((out, report))
}

/// Poll until every bundle of every installed context is offloaded; an error naming the SA
/// otherwise.
fn wait_offloaded(
    host: &mut Host,
    sas: &SaFile,
    installed: &Installed,
) -> Result<(), ProcessError> {
    for _ in 0..MAX_POLLS {
        host.poll(NOW);
    }
    for c in &installed.contexts {
        let state = host.stack().sa_offload_state(c.context);
        let dirs = [
            (
                c.inbound.or(c.outbound),
                state.and_then(|s| s.inbound),
                "inbound",
            ),
            (c.outbound, state.and_then(|s| s.outbound), "outbound"),
        ];
        for (idx, st, dir) in dirs {
            let Some(sa) = idx.and_then(|i| sas.sas.get(i)) else {
                continue;
            };
            if st != Some(SaOffloadState::Offloaded) {
                let o = host.stack().statistics().offload;
                return Err(ProcessError(format!(
                    "sa[{}] (spi {:#x}): the {dir} bundle was not offloaded to the NIC (state \
                     {st:?}; ADD_SA ok {}, refused: not advertised {}, resources {}, not \
                     supported {}, failed {}). IPv6/ESN tunnel mode and IPv6 UDP-ESP cannot be \
                     expressed in the offload OIDs; use --software for them",
                    sa.index,
                    sa.params.spi,
                    o.add_sa_ok,
                    o.not_advertised,
                    o.add_sa_resources,
                    o.add_sa_not_supported,
                    o.add_sa_failed
                )));
            }
        }
    }
    Ok(())
}

enum Outcome {
    Pass(&'static str),
    Done(Option<u32>, Vec<u8>),
    Drop(String),
}

struct Run<'w> {
    host: Host,
    /// Counters at the last drop (drop counters move only when a frame is dropped, so a
    /// snapshot per drop, not per frame, names the reason).
    last: StackStatistics,
    last_nic: NicStats,
    wire: &'w mut MemWire,
    rx: Vec<Frame>,
    done: Vec<Frame>,
    tx: Vec<Frame>,
    delivered: Vec<u8>,
    /// SA context -> SPI of its outbound SA (per-SA counters of encap).
    spi_of_context: HashMap<u64, u32>,
    /// (SPI, ESP?) -> index of the file's inbound SA (decap lookup).
    inbound: HashMap<(u32, bool), usize>,
}

impl Run<'_> {
    /// Drain what the NIC put on the wire; returns the first frame.
    fn drain_wire(&mut self) -> Option<Frame> {
        self.rx.clear();
        let _ = self.wire.receive(NOW, &mut self.rx, 16);
        let first = if self.rx.is_empty() {
            None
        } else {
            Some(self.rx.swap_remove(0))
        };
        self.rx.clear();
        first
    }

    fn encap(&mut self, sas: &SaFile, rec: &Record, report: &mut Report) -> Outcome {
        let frame = &rec.data;
        let pkt = match ip_of_frame(frame) {
            Ok(p) => p,
            Err(why) => return Outcome::Pass(why),
        };
        let disposition = match self.host.stack_mut().send_ip(NOW, pkt) {
            Ok(d) => d,
            Err(StackError::Malformed) => {
                // Never let a packet an SA's selectors cover leave in clear.
                return if selected(sas, pkt) {
                    Outcome::Drop(
                        "an SA's selectors cover it but the host stack cannot parse it \
                         (IPv6 extension headers, fragment, bad header)"
                            .into(),
                    )
                } else {
                    Outcome::Pass("not an IP packet the host stack parses")
                };
            }
            Err(StackError::TooLarge) => {
                return if selected(sas, pkt) {
                    Outcome::Drop(format!(
                        "too large for the host stack's frame buffers (at most {} bytes of IP)",
                        transport::stack::MAX_IP_PACKET
                    ))
                } else {
                    Outcome::Pass("too large for the host stack, and no SA selects it")
                };
            }
            Err(e) => return Outcome::Drop(format!("host stack refused the packet: {e:?}")),
        };
        let mut wire_frame = None;
        for _ in 0..MAX_POLLS {
            self.host.poll(NOW);
            wire_frame = self.drain_wire();
            if wire_frame.is_some() {
                break;
            }
        }
        match disposition {
            SendDisposition::Clear => Outcome::Pass("no IPsec filter selects it (sent in clear)"),
            SendDisposition::Dropped => {
                let after = self.host.stack().statistics();
                let reason = stack_reason(&self.last, &after);
                self.last = after;
                match reason {
                    // Cleartext to a destination beyond the neighbor table.
                    Some("no neighbor for the next hop") => {
                        Outcome::Pass("no IPsec filter selects it (sent in clear)")
                    }
                    Some(r) => Outcome::Drop(r.to_owned()),
                    None => Outcome::Drop("dropped by the host stack".into()),
                }
            }
            SendDisposition::Protected {
                sa_context,
                offloaded,
                ..
            } => {
                let Some(f) = wire_frame else {
                    let nic_after = self.host.nic_stats();
                    let reason = nic_reason(&self.last_nic, &nic_after);
                    self.last_nic = nic_after;
                    self.last = self.host.stack().statistics();
                    return Outcome::Drop(match reason {
                        Some(r) => format!("NIC transmit failed ({r})"),
                        None => "nothing reached the wire".into(),
                    });
                };
                if offloaded {
                    report.nic_crypto = report.nic_crypto.saturating_add(1);
                }
                let spi = self.spi_of_context.get(&sa_context).copied();
                let bytes = f.bytes();
                let mut data = Vec::with_capacity(bytes.len());
                data.extend_from_slice(frame.get(..12).unwrap_or_default());
                data.extend_from_slice(bytes.get(12..).unwrap_or_default());
                Outcome::Done(spi, data)
            }
        }
    }

    fn decap(&mut self, sas: &SaFile, udp_ports: &[u16], rec: &Record) -> Outcome {
        let frame = &rec.data;
        let pkt = match ip_of_frame(frame) {
            Ok(p) => p,
            Err(why) => return Outcome::Pass(why),
        };
        let (key, esp) = match ipsec::classify(pkt, udp_ports) {
            Ok(ipsec::Classified::Esp(k)) => (k, true),
            Ok(ipsec::Classified::Ah(k)) => (k, false),
            Ok(_) => return Outcome::Pass("not ESP/AH"),
            Err(_) => return Outcome::Pass("IP headers not parsable as ESP/AH"),
        };
        let Some(sa) = self
            .inbound
            .get(&(key.spi, esp))
            .and_then(|&i| sas.sas.get(i))
        else {
            return Outcome::Pass("ESP/AH for an SPI the file does not configure");
        };
        let ours = match sa.params.tunnel {
            Some(t) => t.local == key.dst,
            None => sa.local.contains(key.dst),
        };
        if !ours {
            return Outcome::Drop(format!(
                "SPI {:#x} arrived for {}, not sa[{}]'s local address (unknown SPI for the \
                 selectors)",
                key.spi, key.dst, sa.index
            ));
        }
        let mut f = Frame::from_bytes(frame, 0, 0);
        if let Some(dst) = f.bytes_mut().get_mut(..6) {
            dst.copy_from_slice(&HOST_MAC);
        }
        self.tx.clear();
        self.tx.push(f);
        self.done.clear();
        if self
            .wire
            .transmit(NOW, &mut self.tx, &mut self.done)
            .is_err()
        {
            return Outcome::Drop("the in-memory wire is disconnected".into());
        }
        let mut got = false;
        for _ in 0..MAX_POLLS {
            self.host.poll(NOW);
            let _ = self.drain_wire();
            if self.host.stack_mut().take_delivered_ip(&mut self.delivered) {
                got = true;
                break;
            }
        }
        if !got {
            let after = self.host.stack().statistics();
            let reason = stack_reason(&self.last, &after);
            self.last = after;
            return Outcome::Drop(match reason {
                Some(r) => r.to_owned(),
                None => "not delivered by the host stack".into(),
            });
        }
        let mut data = Vec::with_capacity(self.delivered.len().saturating_add(ETH));
        data.extend_from_slice(frame.get(..12).unwrap_or_default());
        data.extend_from_slice(&ethertype_for(&self.delivered));
        data.extend_from_slice(&self.delivered);
        Outcome::Done(Some(sa.params.spi), data)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eth(ethertype: [u8; 2], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ethertype);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn ip_of_frame_trims_padding_and_names_what_passes() {
        // A 20-byte IPv4 header claiming 20 bytes, then 6 bytes of Ethernet padding.
        let mut ip = vec![0x45, 0, 0, 20];
        ip.extend_from_slice(&[0; 16]);
        ip.extend_from_slice(&[0xee; 6]);
        assert_eq!(ip_of_frame(&eth([0x08, 0x00], &ip)).unwrap().len(), 20);
        // IPv6: payload length 0 -> 40 bytes.
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
        ip6.extend_from_slice(&[0; 32]);
        ip6.extend_from_slice(&[0xee; 4]);
        assert_eq!(ip_of_frame(&eth([0x86, 0xdd], &ip6)).unwrap().len(), 40);
        // A length field beyond the data: the data as is (the stack refuses it later).
        assert_eq!(
            ip_of_frame(&eth([0x08, 0x00], &[0x45, 0, 0xff, 0xff]))
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            ip_of_frame(&eth([0x81, 0x00], &ip)),
            Err("VLAN-tagged frame (not supported)")
        );
        assert_eq!(ip_of_frame(&eth([0x08, 0x06], &ip)), Err("not IPv4/IPv6"));
        assert_eq!(
            ip_of_frame(&[1, 2, 3]),
            Err("shorter than an Ethernet header")
        );
        assert_eq!(ethertype_for(&ip6), [0x86, 0xdd]);
        assert_eq!(ethertype_for(&ip), [0x08, 0x00]);
    }

    #[test]
    fn reasons_name_the_counter_that_moved() {
        let before = StackStatistics::default();
        let mut after = before;
        assert_eq!(stack_reason(&before, &after), None);
        after
            .ipsec
            .aggregate_drop_packet_statistics
            .replay_check_failures_on_inbound = 1;
        assert_eq!(
            stack_reason(&before, &after),
            Some("replay (replayCheckFailuresOnInbound)")
        );
        let mut after = before;
        after.outbound.seq_overflow = 3;
        assert_eq!(
            stack_reason(&before, &after),
            Some("sequence number space exhausted (the SA was expired)")
        );
        let b = NicStats::default();
        let mut a = b;
        a.tx_frames = 1;
        a.tx_protected = 1;
        assert_eq!(nic_reason(&b, &a), None);
        a.tx_crypto_error = 1;
        assert_eq!(nic_reason(&b, &a), Some("tx_crypto_error"));
    }

    #[test]
    fn ip_addrs_of_both_families() {
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        assert_eq!(
            ip_addrs(&ip),
            Some(("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()))
        );
        assert_eq!(ip_addrs(&ip[..19]), None);
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        ip6.extend_from_slice(&a.octets());
        ip6.extend_from_slice(&b.octets());
        assert_eq!(ip_addrs(&ip6), Some((a.into(), b.into())));
        assert_eq!(ip_addrs(&[0x50]), None);
    }
}
