//! Offline ESP/AH processing of Ethernet frames (`ipsec-nic pcap encap|decap`).
//!
//! # Layers exercised
//! - Offload path (default): host framing with `ipsec::Bundle::encapsulate` /
//!   `Bundle::decapsulate` (the same calls the host stack makes) plus the anti-replay window
//!   on receive, and the crypto in the **NIC model** (`nicsim::Nic::process_tx` /
//!   `process_rx`: SA table programmed with `Nic::add_sa`, SA lookup by handle on transmit and
//!   by SPI + destination on receive, IV/encryption/ICV by the NIC's engine). The NDIS
//!   miniport (OIDs) and the host stack's WFP layer are **not** exercised here.
//! - Software path (`--software`): the same framing with `Bundle::protect` /
//!   `Bundle::unprotect` on the host instead of the NIC.
//!
//! Both paths produce byte-identical output (IVs are a function of SA and sequence number).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::collections::BTreeMap;

use ipsec::{Bundle, BundleSeq, Classified, ProviderKind, ReplayWindow};
use nicsim::{CryptoStatus, Frame, MemWire, Nic, NicConfig, SaHandle, SaSpec, TxStatus};

use super::config::{Direction, SaConfig, SaFile};
use super::pcap::Capture;

const ETH: usize = 14;
const ROOM: usize = 128;

/// Which way frames are processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Apply outbound SAs.
    Encap,
    /// Apply inbound SAs.
    Decap,
}

/// What happened to the frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Frames processed by an SA.
    pub processed: u64,
    /// Frames that matched no SA and were copied unchanged.
    pub passed: u64,
    /// Dropped frames by reason.
    pub drops: BTreeMap<String, u64>,
    /// `(frame index, reason)` of every dropped frame.
    pub dropped: Vec<(usize, String)>,
    /// Packets and bytes (input frame bytes) per SPI.
    pub per_sa: BTreeMap<u32, (u64, u64)>,
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

struct SaState<'a> {
    cfg: &'a SaConfig,
    bundle: Bundle,
    handle: SaHandle,
    next_seq: u64,
    replay: ReplayWindow,
    hi: u32,
}

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

/// The IP packet's length per its header (to drop Ethernet padding), bounded by `avail`.
fn ip_len(pkt: &[u8]) -> usize {
    let n = match pkt.first().map(|b| b >> 4) {
        Some(4) => pkt
            .get(2..4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        Some(6) => pkt
            .get(4..6)
            .map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
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

/// Process `input` with the SAs of `sas` in direction `op`; `software` forces the host's
/// software crypto instead of the NIC model.
///
/// # Errors
/// [`ProcessError`] when an SA cannot be built or programmed (nothing is processed then).
pub fn process(
    sas: &SaFile,
    input: &Capture,
    op: Op,
    software: bool,
) -> Result<(Capture, Report), ProcessError> {
    let want = match op {
        Op::Encap => Direction::Outbound,
        Op::Decap => Direction::Inbound,
    };
    let provider = ProviderKind::fastest();
    let selected: Vec<&SaConfig> = sas.sas.iter().filter(|s| s.direction == want).collect();
    let n = selected.len().max(1);
    let nic = Nic::new(
        NicConfig {
            table: nicsim::TableConfig {
                inbound_capacity: n,
                outbound_capacity: n,
                ..nicsim::TableConfig::default()
            },
            provider,
            ..NicConfig::default()
        },
        MemWire::pair().0,
    );
    let mut states = Vec::with_capacity(selected.len());
    for cfg in selected {
        let name = format!("sa[{}] (spi {:#x})", cfg.index, cfg.params.spi);
        let bundle = Bundle::new(core::slice::from_ref(&cfg.params), provider)
            .map_err(|e| ProcessError(format!("{name}: {e}")))?;
        let handle = if software {
            SaHandle::NONE
        } else {
            let (dst, src) = match want {
                Direction::Inbound => (cfg.local.host(), cfg.remote.host()),
                Direction::Outbound => (cfg.remote.host(), cfg.local.host()),
            };
            let spec = SaSpec {
                direction: match want {
                    Direction::Inbound => nicsim::Direction::Inbound,
                    Direction::Outbound => nicsim::Direction::Outbound,
                },
                sas: vec![cfg.params.clone()],
                dst: if cfg.params.tunnel.is_some() {
                    None
                } else {
                    dst
                },
                src,
                udp_encap: match (want, cfg.params.udp_encap) {
                    (Direction::Inbound, Some(u)) => Some(nicsim::EncapEntry {
                        encap_type: nicsim::EncapType::Other,
                        port: u.local_port,
                    }),
                    _ => None,
                },
            };
            nic.add_sa(spec)
                .map_err(|e| ProcessError(format!("{name}: NIC ADD_SA: {e}")))?
        };
        let replay = ReplayWindow::new(cfg.replay_window)
            .map_err(|e| ProcessError(format!("{name}: replay_window: {e}")))?;
        tracing::debug!(spi = cfg.params.spi, index = cfg.index, ?handle, "SA ready");
        states.push(SaState {
            cfg,
            bundle,
            handle,
            next_seq: cfg.sequence,
            replay,
            hi: 0,
        });
    }
    let encap_ports: Vec<u16> = states
        .iter()
        .filter_map(|s| s.cfg.params.udp_encap.map(|u| u.local_port))
        .collect();
    let mut report = Report::default();
    let mut out = Capture {
        nanos: input.nanos,
        snaplen: input.snaplen,
        records: Vec::with_capacity(input.records.len()),
    };
    for (i, rec) in input.records.iter().enumerate() {
        let frame = &rec.data;
        let result = match op {
            Op::Encap => encap_one(&nic, &mut states, frame),
            Op::Decap => decap_one(&nic, &mut states, &encap_ports, frame, software),
        };
        let mut r = rec.clone();
        match result {
            Outcome::Pass => report.passed += 1,
            Outcome::Done(spi, bytes) => {
                report.processed += 1;
                let e = report.per_sa.entry(spi).or_default();
                e.0 += 1;
                e.1 += frame.len() as u64;
                r.orig_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                r.data = bytes;
            }
            Outcome::Drop(reason) => {
                tracing::info!(frame = i, %reason, "dropped");
                *report.drops.entry(reason.clone()).or_default() += 1;
                report.dropped.push((i, reason));
                continue;
            }
        }
        out.records.push(r);
    }
    Ok((out, report))
}

enum Outcome {
    Pass,
    Done(u32, Vec<u8>),
    Drop(String),
}

fn encap_one(nic: &Nic, states: &mut [SaState<'_>], frame: &[u8]) -> Outcome {
    let Some(et) = frame.get(12..14) else {
        return Outcome::Pass;
    };
    if et != [0x08, 0x00] && et != [0x86, 0xdd] {
        return Outcome::Pass;
    }
    let pkt = frame.get(ETH..).unwrap_or_default();
    let Some((src, dst)) = ip_addrs(pkt) else {
        return Outcome::Pass;
    };
    let Some(st) = states.iter_mut().find(|s| s.cfg.matches_outbound(src, dst)) else {
        return Outcome::Pass;
    };
    let spi = st.cfg.params.spi;
    let len = ip_len(pkt);
    let mut buf = vec![0u8; ROOM + ETH + len + ROOM];
    buf[ROOM + ETH..ROOM + ETH + len].copy_from_slice(&pkt[..len]);
    let seq = BundleSeq {
        esp: st.next_seq,
        ah: st.next_seq,
    };
    let framed = match st
        .bundle
        .encapsulate(seq, &mut buf, ROOM + ETH..ROOM + ETH + len)
    {
        Ok(r) => r,
        Err(e) => return Outcome::Drop(format!("framing: {e}")),
    };
    st.next_seq = st.next_seq.saturating_add(1);
    if st.handle.is_none() {
        let Some(p) = buf.get_mut(framed.clone()) else {
            return Outcome::Drop("framing: out of room".into());
        };
        if let Err(e) = st.bundle.protect(p, seq.hi()) {
            return Outcome::Drop(format!("crypto: {e}"));
        }
    } else {
        let hi = (seq.esp >> 32) as u32;
        if st.cfg.params.esn && hi != st.hi {
            if let Err(e) = nic.set_esn_high(st.handle, hi) {
                return Outcome::Drop(format!("NIC UPDATE_SA: {e}"));
            }
            st.hi = hi;
        }
        let start = framed.start - ETH;
        buf[start..framed.start].copy_from_slice(&frame[..ETH]);
        let mut f = [Frame::new(buf, start..framed.end)];
        f[0].tx.handle = st.handle;
        nic.process_tx(Duration::ZERO, &mut f);
        let [f] = f;
        if f.tx.status != TxStatus::Pending {
            return Outcome::Drop(format!("NIC transmit: {:?}", f.tx.status));
        }
        buf = f.buf;
    }
    let p = &buf[framed];
    let mut out = Vec::with_capacity(ETH + p.len());
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&ethertype_for(p));
    out.extend_from_slice(p);
    Outcome::Done(spi, out)
}

fn decap_one(
    nic: &Nic,
    states: &mut [SaState<'_>],
    ports: &[u16],
    frame: &[u8],
    software: bool,
) -> Outcome {
    let Some(et) = frame.get(12..14) else {
        return Outcome::Pass;
    };
    if et != [0x08, 0x00] && et != [0x86, 0xdd] {
        return Outcome::Pass;
    }
    let pkt = frame.get(ETH..).unwrap_or_default();
    let key = match ipsec::classify(pkt, ports) {
        Ok(Classified::Esp(k) | Classified::Ah(k)) => k,
        Ok(_) => return Outcome::Pass,
        Err(_) => return Outcome::Pass,
    };
    let proto_ok =
        |s: &SaState<'_>, esp: bool| (s.cfg.params.protocol == ipsec::Protocol::Esp) == esp;
    let is_esp = matches!(ipsec::classify(pkt, ports), Ok(Classified::Esp(_)));
    let Some(idx) = states.iter().position(|s| {
        s.cfg.params.spi == key.spi
            && proto_ok(s, is_esp)
            && match s.cfg.params.tunnel {
                Some(t) => t.local == key.dst,
                None => s.cfg.local.contains(key.dst),
            }
    }) else {
        return Outcome::Pass;
    };
    let len = ip_len(pkt);
    let mut buf = vec![0u8; ETH + len];
    buf[..ETH].copy_from_slice(&frame[..ETH]);
    buf[ETH..].copy_from_slice(&pkt[..len]);
    let highest = {
        let h = states[idx].replay.highest();
        BundleSeq { esp: h, ah: h }
    };
    let st = &mut states[idx];
    let spi = st.cfg.params.spi;
    if software {
        let Some(p) = buf.get_mut(ETH..) else {
            return Outcome::Drop("truncated".into());
        };
        let esn_seq = if st.cfg.params.esn {
            ipsec::esn::infer(key.seq_lo, highest.esp, ipsec::DEFAULT_ESN_WINDOW)
        } else {
            u64::from(key.seq_lo)
        };
        if let Err(e) = st.replay.check(esn_seq) {
            return Outcome::Drop(format!("replay: {e}"));
        }
        if let Err(e) = st.bundle.unprotect(p, highest) {
            return Outcome::Drop(format!("crypto: {e}"));
        }
    } else {
        let total = buf.len();
        let mut f = [Frame::new(buf, 0..total)];
        nic.process_rx(Duration::ZERO, &mut f);
        let [f] = f;
        if !f.rx.crypto_done {
            return Outcome::Drop("NIC did not process the frame".into());
        }
        if f.rx.status != CryptoStatus::Success {
            return Outcome::Drop(format!("NIC: {:?}", f.rx.status));
        }
        if f.rx.sa != Some(st.handle) {
            return Outcome::Drop("NIC matched a different SA".into());
        }
        buf = f.buf;
    }
    let total = buf.len();
    let d = match st.bundle.decapsulate(&mut buf, ETH..total, highest) {
        Ok(d) => d,
        Err(e) => return Outcome::Drop(format!("framing: {e}")),
    };
    let seq = if st.cfg.params.protocol == ipsec::Protocol::Esp {
        d.seq.esp
    } else {
        d.seq.ah
    };
    if let Err(e) = st.replay.check(seq) {
        return Outcome::Drop(format!("replay: {e}"));
    }
    st.replay.update(seq);
    if !software && st.cfg.params.esn {
        let hi = (seq >> 32) as u32;
        if hi != st.hi && nic.set_esn_high(st.handle, hi).is_ok() {
            st.hi = hi;
        }
    }
    let Some(p) = buf.get(d.packet) else {
        return Outcome::Drop("framing: bad range".into());
    };
    let mut out = Vec::with_capacity(ETH + p.len());
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&ethertype_for(p));
    out.extend_from_slice(p);
    Outcome::Done(spi, out)
}
