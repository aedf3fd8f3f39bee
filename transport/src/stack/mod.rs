//! The IPsec data path of the host stack: what the Windows TCP/IP transport does around an
//! offloading NIC (NDIS IPsec offload v1, ndis-wfp-abi.md §8.2, and v2 ADD_SA_EX for IPv6 and
//! ESN, §3.15/§4.7/§8.3; MISSION.md "The model").
//!
//! # Outbound pipeline (`send_udp`, `ping`, `send_ip`, echo replies)
//! 1. A free frame buffer ([`Nbl`]) is taken from the stack's pool; the IP packet is written
//!    after a fixed headroom ([`HEADROOM`]). No pool buffer: `SendError::NoBuffer`.
//! 2. The packet is classified at `FWPM_LAYER_OUTBOUND_TRANSPORT_V4/V6` (local/remote
//!    address, protocol, ports, local address type unicast). BLOCK: dropped (counted).
//!    PERMIT: sent in clear (step 6). Decisions are cached per flow ([`ClassifyCache`],
//!    exact while the filters are unchanged), as is step 3's selection ([`OutboundSaCache`],
//!    exact while the SA contexts are unchanged), so neither costs a scan per packet.
//! 3. IPsec callout: the newest complete SA context of that filter and address pair
//!    ([`Bfe::outbound_sa_context`]); for a tunnel callout
//!    (`FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4/V6`) the newest complete tunnel context of that
//!    filter whatever the inner addresses ([`Bfe::outbound_tunnel_sa_context`]: the
//!    context's addresses are the tunnel endpoints, the filter stands in for the tunnel
//!    policy). Then its outbound bundle state (kept by this module). None: dropped as "no SA".
//! 4. Sequence numbers from the bundle's [`SeqCounter`]s; exhaustion drops the packet and
//!    expires the SA context (`IPsecSaContextExpire0` through the stack's own session).
//! 5. [`Bundle::encapsulate`] in place (headers, padding, trailer, zeroed IV/ICV space).
//! 6. Ethernet is prepended in the headroom: this host's MAC, the neighbor's MAC for the
//!    outer destination from the static neighbor table (none: dropped), EtherType by the
//!    outer IP version.
//! 7. Offloaded bundle: its `OffloadHandle` goes into `send_info` and the NIC does the
//!    crypto; otherwise [`Bundle::protect`] runs here. The IV derives from the sequence
//!    number, so both paths put identical bytes on the wire.
//! 8. Lifetimes ([`Bfe::account_traffic`]) and statistics are updated; the buffer goes to
//!    the miniport (`send_net_buffer_lists`). **Ownership**: the miniport owns it until
//!    `send_net_buffer_lists_complete`, which queues it in the protocol adapter; the next
//!    [`HostStack::poll`] resets it and puts it back into the pool.
//!
//! # Inbound pipeline ([`HostStack::poll`])
//! Received frames are queued by the protocol adapter (the miniport's buffers: **owned by
//! the stack until returned** with `return_net_buffer_lists` at the end of the same poll).
//! 1. `SaDeleteReq`: DELETE_SA for the inbound SA the frame arrived on and its outbound
//!    partner; both continue in software and are not re-offloaded before
//!    [`SA_DELETE_REQ_HOLDOFF`]. The frame itself is still processed.
//! 2. Ethernet/IP parsing, [`ipsec::classify`]. Unknown SPI: `invalidSpisOnInbound`.
//! 3. `CryptoDone` with `CRYPTO_SUCCESS`: [`Bundle::decapsulate`] (no crypto), replay check
//!    with its sequence numbers, then update. `CryptoDone` with a failure: dropped, counted by
//!    status (auth failures as `authenticationFailuresOnInbound`, the others as
//!    `decryptionFailuresOnInbound`). Not processed by the NIC: replay check on the inferred
//!    number, [`Bundle::unprotect`], replay check again with the returned numbers, update
//!    (only now: the ICV verified), [`Bundle::decapsulate`].
//! 4. Inbound policy: a transport-mode packet must lie inside the SA context's traffic
//!    (addresses, protocol, ports; else `receiveOverIncorrectSaInbound`). Tunnel mode skips
//!    that check (the context's addresses are the tunnel endpoints); instead the inner packet
//!    must select the context's own tunnel filter, whose conditions are the inner selectors
//!    (no IPsec filter matched: `receiveOverIncorrectSaInbound`). Then it is classified at
//!    `FWPM_LAYER_INBOUND_TRANSPORT_V4/V6`: a protected packet whose winning IPsec callout
//!    filter is not its context's is `secureReceivesNotMatchingFilters`; a cleartext packet
//!    that hits an IPsec callout is `invalidClearTextInbound`; BLOCK is dropped.
//! 5. Delivery: the cleartext packet is copied into a pool buffer and queued for the
//!    external-stack adapter ([`HostStack::take_delivered_ip`], when enabled) or the
//!    endpoints (UDP datagrams, echo replies; echo requests are answered by the stack).
//!
//! # Offload management
//! Capabilities are queried once (`OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`) and replaced by
//! `NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG` indications. Each direction's bundle has a
//! [`SaOffloadState`] (state machine there). A bundle is offered to the NIC only when offload
//! is on (config and NIC), the NIC advertises every algorithm, protocol and mode it needs,
//! and fewer than `SaOffloadCapacity` bundles are offloaded:
//! - IPv4 without ESN (transport or tunnel, with or without UDP-ESP): v1
//!   `OID_TCP_TASK_IPSEC_ADD_SA` / `ADD_UDPESP_SA`, checked against the v1 capabilities
//!   (algorithms beyond v1's through the v2 masks). The buffer is a stack-owned scratch buffer
//!   zeroized after every OID.
//! - IPv6 or ESN, transport mode without UDP encapsulation: v2
//!   `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX` (src/dest = the packet's addresses in that
//!   direction, `UdpEspEncapsulation` NONE, `IPSEC_OFFLOAD_V2_ESN_SA` with the current high
//!   bits as `SequenceNumberHighOrder`), only when the NIC advertises IPsec v2 with
//!   `Transport`, `IPv6Supported` (IPv6) and `ExtendedSequenceNumbers` (ESN) and the
//!   algorithms; removed with `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA`. The request buffer
//!   holds the keys and is zeroized after the OID. IPv6/ESN tunnel mode and IPv6/ESN UDP-ESP
//!   stay in software (v2 UDP-ESP implies port 4500 at both ends, which the stack does not
//!   assume).
//! - Anything else stays in software (`not_advertised`).
//!
//! # Decisions
//! - Tunnel-mode traffic selectors are wildcards (the SA context's addresses are the tunnel
//!   endpoints); transport-mode selectors carry the context's addresses with host masks and
//!   its protocol/ports (0 = wildcard).
//! - `NOT_SUPPORTED` is retried like `RESOURCES` (the NIC's configuration may change); any
//!   other failure is final for that bundle.
//! - Retries: after every successful DELETE_SA and every [`RETRY_INTERVAL`] in `poll`.
//! - `SeqCounter` exhaustion expires the context (outbound removed at once, inbound kept for
//!   the grace period, as `IPsecSaContextExpire0` does).
//! - Inbound SA lookups use this module's SPI → context map (O(1)), never the Bfe's scan.
//! - Events are taken from the Bfe with [`Bfe::take_events`] into a reused buffer (never
//!   lost, no allocation per event); handling one may queue more, so the loop runs until
//!   the queue is empty. Retry and `SaDeleteReq` bookkeeping reuse buffers too.
//! - `SaEvent::Updated` rebuilds only a direction whose `SaParams` changed (keys,
//!   algorithms, SPI, mode, tunnel, ESN, UDP encapsulation). An unchanged direction keeps its
//!   bundle, sequence counters, replay window and NIC offload (a flags-only update changes
//!   nothing on the data path). A changed one is DELETE_SA'd and re-offered; when its SPI is
//!   unchanged its sequence counters (outbound) / replay windows (inbound) are carried over,
//!   so an update never makes a sequence number repeat nor re-opens the replay window.
//!   Updates count neither `totalSasAdded` nor `successfulRekeys`.
//! - Rekey (make before break): a second SA context for the same IPsec filter and address
//!   pair. Outbound switches to it at once (the newest complete context wins,
//!   [`Bfe::outbound_sa_context`]); the old context's inbound SA keeps receiving (its SPI
//!   stays in the map) until the old context is deleted or expires. `successfulRekeys`
//!   counts each outbound bundle installed while another context already serves that
//!   filter and pair.
//! - Sequence numbers start at 1; [`HostStack::set_outbound_next_seq`] sets the next one
//!   (restoring a migrated SA, testing exhaustion). The send that finds the counter
//!   exhausted is dropped as `seq_overflow` and expires the context; later sends for that
//!   traffic find no outbound SA (`no_sa`) until a new context is added.
//! - UDP-encapsulated ESP is offered with `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA` and removed
//!   with `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA` (only when the NIC advertises
//!   `UdpEsp` support); the frames carry the UDP header (port 4500 with IKE encapsulation).
//! - A `TASK_OFFLOAD_CURRENT_CONFIG` indication turning IPsec offload off, or
//!   [`HostStack::set_offload`]`(false)`, keeps new bundles in software; bundles already on
//!   the NIC stay there until deleted.
//! - ESN SAs come from the Bfe extension flag `IPSEC_SA_BUNDLE_FLAG_ESN_EXT` (WFP has no ESN
//!   setting). For an ESN bundle offloaded through v2, the send whose sequence number crosses
//!   a 2^32 boundary first issues `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA` with the new high
//!   bits (per ESP/AH member; the send path allocates nothing for it). The NIC may also infer
//!   them (nicsim does); the update keeps any conforming NIC right. If UPDATE_SA fails, that
//!   packet is protected in software and the update is retried on the next one. Inbound ESN
//!   SAs are not updated: the NIC infers the high bits from its own replay state.
//! - Frames are processed in the poll that drains them; nothing is retained from a received
//!   buffer after it is returned.

mod offload;
pub mod packet;
pub mod stats;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ipsec::hash::KeyHashMap;
use ipsec::{
    Bundle, BundleSeq, Classified, CryptoError, Mode, Protocol, ProviderKind, ReplayWindow,
    SaParams, SeqCounter, esn,
};
use oid::{
    CryptoStatus, DeleteSaRequest, DeleteUdpEspSaRequest, Miniport, Nbl, NdisStatus,
    OffloadCapabilities, OffloadHandle, Oid, OidRequest, SaProtocol, StatusIndication,
    v2::{AddSaExV2Request, DeleteSaV2Request, UpdateSaV2Request},
};
use zeroize::Zeroize;

pub use offload::SaOffloadState;
use offload::Traffic;
use packet::{FiveTuple, PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP};
pub use stats::*;

use crate::wfp::{
    Bfe, ClassifyAction, ClassifyCache, ClassifyValues, EngineHandle, FWP_DIRECTION_INBOUND,
    FWP_DIRECTION_OUTBOUND, FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
    FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6, FWPM_LAYER_INBOUND_TRANSPORT_V4,
    FWPM_LAYER_INBOUND_TRANSPORT_V6, FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPM_LAYER_OUTBOUND_TRANSPORT_V6, NlAddressType, OutboundSaCache, SaEvent,
};

/// Bytes reserved before the IP packet in every frame buffer (Ethernet + worst-case IPsec
/// headroom: outer IPv6 + UDP + AH + ESP header and IV).
pub const HEADROOM: usize = 160;
/// Size of each pool buffer.
pub const BUFFER_LEN: usize = 2048;
/// Largest IP packet an endpoint may send (leaves room for the ESP trailer and ICV).
pub const MAX_IP_PACKET: usize = BUFFER_LEN - HEADROOM - 64;
/// How long a bundle evicted by `SaDeleteReq` stays in software before offload is retried.
pub const SA_DELETE_REQ_HOLDOFF: Duration = Duration::from_secs(10);
/// How often refused bundles are retried from `poll` (besides after each DELETE_SA).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

const ETH_LEN: usize = 14;
const CAPS_BUF_LEN: usize = 512;
const ADD_SA_BUF_LEN: usize = 512;

/// The stack's configuration.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// This host's MAC address.
    pub mac: [u8; 6],
    /// This host's IP addresses.
    pub addresses: Vec<IpAddr>,
    /// Static neighbor table: next-hop IP address → MAC address.
    pub neighbors: Vec<(IpAddr, [u8; 6])>,
    /// Software crypto provider.
    pub provider: ProviderKind,
    /// Offer SAs to the NIC (false: everything in software, for comparison).
    pub offload: bool,
    /// Number of frame buffers in the pool.
    pub buffers: usize,
    /// Anti-replay window size (32..=65536).
    pub replay_window: u32,
}

/// Errors of [`HostStack::new`] and the send calls (drops inside the pipeline are counted,
/// not errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StackError {
    /// The replay window size is outside 32..=65536.
    InvalidReplayWindow,
    /// No free frame buffer.
    NoBuffer,
    /// The packet or payload is too large for a frame buffer.
    TooLarge,
    /// Not a well-formed IPv4/IPv6 packet, or mixed address families.
    Malformed,
}

/// What happened to one outbound packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendDisposition {
    /// Sent in clear (PERMIT).
    Clear,
    /// Sent protected with SA context `sa_context`; `offloaded`: the NIC does the crypto.
    Protected {
        /// The SA context.
        sa_context: u64,
        /// Whether the NIC was asked to do the crypto.
        offloaded: bool,
        /// The ESP (or AH-only) sequence number used.
        seq: u64,
    },
    /// Dropped; the reason is counted in [`OutboundDrops`].
    Dropped,
}

/// A UDP datagram received by an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpDatagram {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Payload length (copied up to the caller's buffer size).
    pub len: usize,
    /// Whether it arrived protected by IPsec.
    pub secure: bool,
}

/// An echo reply received for [`HostStack::ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EchoReply {
    /// Who answered.
    pub src: IpAddr,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// Whether it arrived protected by IPsec.
    pub secure: bool,
}

/// The offload state of an SA context's two bundles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SaOffloadStatus {
    /// The inbound bundle, if installed.
    pub inbound: Option<SaOffloadState>,
    /// The outbound bundle, if installed.
    pub outbound: Option<SaOffloadState>,
}

#[derive(Default)]
struct AdapterQueues {
    received: Vec<Nbl>,
    completed: Vec<Nbl>,
    config: Option<Vec<u8>>,
}

/// The stack's `oid::Protocol` face: it only queues what the miniport indicates; the stack
/// drains the queues in [`HostStack::poll`].
struct ProtocolAdapter {
    queues: Mutex<AdapterQueues>,
}

impl oid::Protocol for ProtocolAdapter {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        if let Ok(mut q) = self.queues.lock() {
            q.received.append(nbls);
        }
    }

    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        if let Ok(mut q) = self.queues.lock() {
            q.completed.append(nbls);
        }
    }

    fn status_indication(&self, indication: &StatusIndication<'_>) {
        if indication.status == NdisStatus::TASK_OFFLOAD_CURRENT_CONFIG
            && let Ok(mut q) = self.queues.lock()
        {
            q.config = Some(indication.buffer.to_vec());
        }
    }
}

#[derive(Debug)]
struct OffloadSlot {
    state: SaOffloadState,
    handle: OffloadHandle,
    udp: bool,
    /// Offloaded through IPsec v2 (ADD_SA_EX; deleted with the v2 DELETE_SA).
    v2: bool,
    /// ESN high bits last given to the NIC (ADD_SA_EX or UPDATE_SA): ESP, AH.
    nic_hi: (u32, u32),
    retry_at: Duration,
}

impl OffloadSlot {
    fn new(udp: bool) -> Self {
        OffloadSlot {
            state: SaOffloadState::Software,
            handle: OffloadHandle::NULL,
            udp,
            v2: false,
            nic_hi: (0, 0),
            retry_at: Duration::ZERO,
        }
    }
}

struct OutSa {
    bundle: Bundle,
    params: Vec<SaParams>,
    esp_seq: SeqCounter,
    ah_seq: SeqCounter,
    has_esp: bool,
    next_hop: IpAddr,
    tunnel: bool,
    encrypts: bool,
    has_ah: bool,
    slot: OffloadSlot,
    traffic: Traffic,
}

struct InSa {
    bundle: Bundle,
    params: Vec<SaParams>,
    esp_replay: ReplayWindow,
    ah_replay: ReplayWindow,
    has_esp: bool,
    has_ah: bool,
    tunnel: bool,
    encrypts: bool,
    spi: u32,
    filter_id: u64,
    slot: OffloadSlot,
    traffic: Traffic,
}

#[derive(Default)]
struct CtxState {
    inbound: Option<InSa>,
    outbound: Option<OutSa>,
}

enum Delivered {
    Udp(UdpDatagram),
    Echo(EchoReply),
    Ip,
}

/// The host stack's data path over one miniport. See the [module docs](self).
pub struct HostStack {
    config: StackConfig,
    miniport: Arc<dyn Miniport>,
    adapter: Arc<ProtocolAdapter>,
    bfe: Bfe,
    engine: Option<EngineHandle>,
    pool: Vec<Nbl>,
    rx_work: Vec<Nbl>,
    tx_batch: Vec<Nbl>,
    /// Per-flow filter decisions (validated against the Bfe's classify generation).
    classify_cache: ClassifyCache,
    /// Per-flow outbound SA selections (validated against the Bfe's SA generation).
    outbound_sa_cache: OutboundSaCache,
    sas: KeyHashMap<u64, CtxState>,
    by_spi: KeyHashMap<u32, u64>,
    udp_ports: Vec<u16>,
    caps: Option<OffloadCapabilities>,
    nic_offload_on: bool,
    offloaded: usize,
    next_retry: Duration,
    oid_buf: Vec<u8>,
    delivered: VecDeque<(Delivered, Nbl)>,
    events: Vec<SaEvent>,
    retry_todo: Vec<(u64, bool)>,
    external: bool,
    stats: StackStatistics,
    now: Duration,
}

impl core::fmt::Debug for HostStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostStack")
            .field("addresses", &self.config.addresses)
            .field("sa_contexts", &self.sas.len())
            .field("offloaded", &self.offloaded)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn ip_of(buf: &[u8]) -> Option<IpAddr> {
    packet::parse_ip(buf).map(|p| p.tuple.dst)
}

impl HostStack {
    /// A stack over `miniport`, with a fresh [`Bfe`]; queries the NIC's capabilities.
    ///
    /// # Errors
    /// [`StackError::InvalidReplayWindow`].
    pub fn new(config: StackConfig, miniport: Arc<dyn Miniport>) -> Result<Self, StackError> {
        Self::with_bfe(config, miniport, Bfe::new())
    }

    /// As [`HostStack::new`] with a given [`Bfe`] (e.g. [`Bfe::with_seed`]).
    ///
    /// # Errors
    /// [`StackError::InvalidReplayWindow`].
    pub fn with_bfe(
        config: StackConfig,
        miniport: Arc<dyn Miniport>,
        mut bfe: Bfe,
    ) -> Result<Self, StackError> {
        ReplayWindow::new(config.replay_window).map_err(|_| StackError::InvalidReplayWindow)?;
        let engine = bfe
            .fwpm_engine_open0(None, crate::wfp::RPC_C_AUTHN_WINNT, None, None)
            .ok();
        let n = config.buffers;
        let mut stack = HostStack {
            pool: (0..n)
                .map(|_| Nbl::with_capacity(BUFFER_LEN, HEADROOM))
                .collect(),
            rx_work: Vec::with_capacity(n),
            tx_batch: Vec::with_capacity(1),
            config,
            miniport,
            adapter: Arc::new(ProtocolAdapter {
                queues: Mutex::new(AdapterQueues {
                    received: Vec::with_capacity(n),
                    completed: Vec::with_capacity(n),
                    config: None,
                }),
            }),
            bfe,
            engine,
            classify_cache: ClassifyCache::new(),
            outbound_sa_cache: OutboundSaCache::new(),
            sas: KeyHashMap::default(),
            by_spi: KeyHashMap::default(),
            udp_ports: Vec::new(),
            caps: None,
            nic_offload_on: false,
            offloaded: 0,
            next_retry: Duration::ZERO,
            oid_buf: vec![0; ADD_SA_BUF_LEN],
            delivered: VecDeque::with_capacity(n),
            events: Vec::with_capacity(16),
            retry_todo: Vec::with_capacity(16),
            external: false,
            stats: StackStatistics::default(),
            now: Duration::ZERO,
        };
        stack.query_capabilities();
        Ok(stack)
    }

    fn query_capabilities(&mut self) {
        let mut buf = [0u8; CAPS_BUF_LEN];
        let mut req = OidRequest::query(Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &mut buf);
        if self.miniport.oid_request(&mut req) == NdisStatus::SUCCESS {
            let n = usize::try_from(req.bytes_written)
                .unwrap_or(0)
                .min(CAPS_BUF_LEN);
            self.set_capabilities(buf.get(..n).unwrap_or(&[]));
        }
    }

    fn set_capabilities(&mut self, bytes: &[u8]) {
        match OffloadCapabilities::parse(bytes) {
            Ok(c) => {
                self.nic_offload_on = offload::any_enabled(&c);
                self.caps = Some(c);
            }
            Err(_) => {
                self.nic_offload_on = false;
                self.caps = None;
            }
        }
    }

    /// The NIC capabilities in force (hardware answer or the last CURRENT_CONFIG indication).
    pub fn capabilities(&self) -> Option<&OffloadCapabilities> {
        self.caps.as_ref()
    }

    /// The WFP engine (filters, SA contexts) of this host.
    pub fn bfe(&self) -> &Bfe {
        &self.bfe
    }

    /// The WFP engine, mutable (management calls).
    pub fn bfe_mut(&mut self) -> &mut Bfe {
        &mut self.bfe
    }

    /// The `oid::Protocol` to bind the miniport to (it queues; [`HostStack::poll`] drains).
    pub fn protocol_handle(&self) -> Arc<dyn oid::Protocol> {
        self.adapter.clone()
    }

    /// Turn offload on or off at run time (off: every new bundle stays in software; bundles
    /// already offloaded stay until deleted).
    pub fn set_offload(&mut self, on: bool) {
        self.config.offload = on;
    }

    /// Route every delivered packet to [`HostStack::take_delivered_ip`] (an external stack on
    /// top) instead of the built-in endpoints; echo requests are then not answered here.
    pub fn set_external(&mut self, on: bool) {
        self.external = on;
    }

    /// All counters.
    pub fn statistics(&self) -> StackStatistics {
        let mut s = self.stats;
        let agg = &mut s.ipsec.aggregate_sa_statistics;
        let mut active = 0u32;
        let mut tunnels = 0u32;
        for c in self.sas.values() {
            for t in [
                c.inbound.as_ref().map(|i| i.tunnel),
                c.outbound.as_ref().map(|o| o.tunnel),
            ]
            .into_iter()
            .flatten()
            {
                active = active.saturating_add(1);
                tunnels = tunnels.saturating_add(u32::from(t));
            }
        }
        agg.active_sas = active;
        agg.active_tunnels = tunnels;
        agg.offloaded_sas = u32::try_from(self.offloaded).unwrap_or(u32::MAX);
        s
    }

    /// The Windows-shaped IPsec statistics.
    #[doc(alias = "IPsecGetStatistics1")]
    pub fn ipsec_get_statistics1(&self) -> IpsecStatistics1 {
        self.statistics().ipsec
    }

    /// The offload state of SA context `id`'s bundles (`None`: unknown context).
    pub fn sa_offload_state(&self, id: u64) -> Option<SaOffloadStatus> {
        self.sas.get(&id).map(|c| SaOffloadStatus {
            inbound: c.inbound.as_ref().map(|i| i.slot.state),
            outbound: c.outbound.as_ref().map(|o| o.slot.state),
        })
    }

    /// Free frame buffers in the pool.
    pub fn free_buffers(&self) -> usize {
        self.pool.len()
    }

    // ---------------------------------------------------------------- poll

    /// Drain completions, status indications and received frames; process the Bfe's SA
    /// events (offload OIDs) and lifetimes (`Bfe::tick`); retry refused offloads.
    pub fn poll(&mut self, now: Duration) {
        self.now = now;
        let config = {
            let Ok(mut q) = self.adapter.queues.lock() else {
                return;
            };
            for mut nbl in q.completed.drain(..) {
                if nbl.status != NdisStatus::SUCCESS {
                    self.stats.outbound.send_failures += 1;
                }
                if nbl.buffer.len() < BUFFER_LEN {
                    // The frame's memory moved on with the frame (an in-memory wire hands the
                    // Vec to the peer) and the miniport completed a smaller or empty husk:
                    // give the pool a full buffer back. This allocates, but only when the
                    // miniport had no returned receive buffer to refill the husk with
                    // (one-way traffic); counted in `husk_completions_refilled`.
                    nbl.buffer = vec![0; BUFFER_LEN];
                    self.stats.husk_completions_refilled += 1;
                }
                nbl.reset(HEADROOM);
                self.pool.push(nbl);
            }
            core::mem::swap(&mut q.received, &mut self.rx_work);
            q.config.take()
        };
        if let Some(c) = config {
            self.set_capabilities(&c);
        }
        self.bfe.tick(now);
        self.process_events(now);
        let mut work = core::mem::take(&mut self.rx_work);
        for nbl in work.iter_mut() {
            self.receive(now, nbl);
            self.process_events(now);
        }
        if !work.is_empty() {
            self.miniport.return_net_buffer_lists(&mut work);
        }
        work.clear();
        self.rx_work = work;
        if now >= self.next_retry {
            self.next_retry = now + RETRY_INTERVAL;
            self.retry_offloads(now);
        }
    }

    fn process_events(&mut self, now: Duration) {
        // Handling an event may queue more (e.g. an expiry): loop until quiet. The buffer is
        // reused (no allocation per event).
        loop {
            let mut evs = core::mem::take(&mut self.events);
            self.bfe.take_events(&mut evs);
            if evs.is_empty() {
                self.events = evs;
                return;
            }
            for ev in evs.drain(..) {
                self.handle_event(now, ev);
            }
            self.events = evs;
        }
    }

    fn traffic_of(&self, id: u64, inbound: bool) -> Option<(Traffic, u64)> {
        let ctx = self.bfe.sa_context(id)?;
        let t = if inbound {
            ctx.inbound_traffic().unwrap_or(ctx.traffic())
        } else {
            ctx.traffic()
        };
        Some((
            Traffic {
                local: t.local_address.to_ip(),
                remote: t.remote_address.to_ip(),
                protocol: t.ip_protocol,
                local_port: t.local_port,
                remote_port: t.remote_port,
            },
            t.ipsec_filter_id,
        ))
    }

    fn handle_event(&mut self, now: Duration, ev: SaEvent) {
        match ev {
            SaEvent::InboundAdded { id } => self.install_inbound(now, id),
            SaEvent::OutboundAdded { id } => self.install_outbound(now, id),
            SaEvent::Updated { id } => self.update_context(now, id),
            SaEvent::OutboundRemoved { id } => {
                self.remove_outbound(id, true);
            }
            SaEvent::SoftExpired { .. } | SaEvent::HardExpired { .. } => {}
            SaEvent::Deleted { id } => {
                self.remove_inbound(id, true);
                self.remove_outbound(id, true);
                self.sas.remove(&id);
            }
        }
    }

    /// `SaEvent::Updated`: a direction whose parameters (keys, algorithms, SPI, UDP
    /// encapsulation...) are unchanged is left alone (bundle, counters, replay window and
    /// NIC offload untouched); a changed one is rebuilt (its NIC SA deleted and re-offered),
    /// carrying the sequence counters / replay windows over when the SPI stays the same.
    fn update_context(&mut self, now: Duration, id: u64) {
        let ctx = self.bfe.sa_context(id);
        let (new_in, new_out) = (
            ctx.and_then(|c| c.inbound()),
            ctx.and_then(|c| c.outbound()),
        );
        let cur = self.sas.get(&id);
        let same_in = match (cur.and_then(|c| c.inbound.as_ref()), new_in) {
            (Some(old), Some(new)) => old.params.as_slice() == new,
            (None, None) => true,
            _ => false,
        };
        let same_out = match (cur.and_then(|c| c.outbound.as_ref()), new_out) {
            (Some(old), Some(new)) => old.params.as_slice() == new,
            (None, None) => true,
            _ => false,
        };
        if !same_in {
            let old = self.remove_inbound(id, false);
            self.install_inbound_counted(now, id, false);
            if let (Some(old), Some(new)) =
                (old, self.sas.get_mut(&id).and_then(|c| c.inbound.as_mut()))
                && old.spi == new.spi
            {
                new.esp_replay = old.esp_replay;
                new.ah_replay = old.ah_replay;
            }
        }
        if !same_out {
            let old = self.remove_outbound(id, false);
            self.install_outbound_counted(now, id, false);
            if let (Some(old), Some(new)) =
                (old, self.sas.get_mut(&id).and_then(|c| c.outbound.as_mut()))
                && old.params.first().map(|p| p.spi) == new.params.first().map(|p| p.spi)
            {
                new.esp_seq = old.esp_seq;
                new.ah_seq = old.ah_seq;
            }
        }
    }

    /// Set the next outbound sequence number of SA context `id`'s outbound bundle (ESP and
    /// AH counters alike; 0 is treated as 1). For restoring a migrated SA and for testing
    /// sequence-number exhaustion. False when the context has no outbound bundle here.
    pub fn set_outbound_next_seq(&mut self, id: u64, next: u64) -> bool {
        let Some(sa) = self.sas.get_mut(&id).and_then(|c| c.outbound.as_mut()) else {
            return false;
        };
        let esn = |p: Protocol| sa.params.iter().any(|x| x.protocol == p && x.esn);
        sa.esp_seq = SeqCounter::new(esn(Protocol::Esp), next);
        sa.ah_seq = SeqCounter::new(esn(Protocol::Ah), next);
        true
    }

    /// The next outbound sequence number of SA context `id` (ESP, or AH for an AH-only
    /// bundle); `None` without an outbound bundle.
    pub fn outbound_next_seq(&self, id: u64) -> Option<u64> {
        let sa = self.sas.get(&id)?.outbound.as_ref()?;
        Some(if sa.has_esp {
            sa.esp_seq.peek()
        } else {
            sa.ah_seq.peek()
        })
    }

    /// The highest sequence number accepted on SA context `id`'s inbound bundle (ESP, or AH
    /// for an AH-only bundle); `None` without an inbound bundle.
    pub fn inbound_highest_seq(&self, id: u64) -> Option<u64> {
        let sa = self.sas.get(&id)?.inbound.as_ref()?;
        Some(if sa.has_esp {
            sa.esp_replay.highest()
        } else {
            sa.ah_replay.highest()
        })
    }

    fn install_inbound(&mut self, now: Duration, id: u64) {
        self.install_inbound_counted(now, id, true);
    }

    fn install_outbound(&mut self, now: Duration, id: u64) {
        self.install_outbound_counted(now, id, true);
    }

    fn install_inbound_counted(&mut self, now: Duration, id: u64, count: bool) {
        let Some(params) = self
            .bfe
            .sa_context(id)
            .and_then(|c| c.inbound())
            .map(<[SaParams]>::to_vec)
        else {
            return;
        };
        let Some((traffic, filter_id)) = self.traffic_of(id, true) else {
            return;
        };
        let w = self.config.replay_window;
        let (Ok(bundle), Ok(esp_replay), Ok(ah_replay)) = (
            Bundle::new(&params, self.config.provider),
            ReplayWindow::new(w),
            ReplayWindow::new(w),
        ) else {
            return;
        };
        let spi = params.first().map_or(0, |p| p.spi);
        let udp = params.first().and_then(|p| p.udp_encap);
        if let Some(u) = udp
            && !self.udp_ports.contains(&u.local_port)
        {
            self.udp_ports.push(u.local_port);
        }
        let sa = InSa {
            bundle: bundle.with_esn_window(w),
            has_esp: params.iter().any(|p| p.protocol == Protocol::Esp),
            has_ah: params.iter().any(|p| p.protocol == Protocol::Ah),
            tunnel: params.first().is_some_and(|p| p.mode == Mode::Tunnel),
            encrypts: params.iter().any(|p| {
                !matches!(
                    p.encryption,
                    ipsec::Encryption::None | ipsec::Encryption::Null
                )
            }),
            params,
            esp_replay,
            ah_replay,
            spi,
            filter_id,
            slot: OffloadSlot::new(udp.is_some()),
            traffic,
        };
        self.by_spi.insert(spi, id);
        self.sas.entry(id).or_default().inbound = Some(sa);
        if count {
            inc32(&mut self.stats.ipsec.aggregate_sa_statistics.total_sas_added);
        }
        self.try_offload(now, id, true);
    }

    fn install_outbound_counted(&mut self, now: Duration, id: u64, count: bool) {
        let Some(params) = self
            .bfe
            .sa_context(id)
            .and_then(|c| c.outbound())
            .map(<[SaParams]>::to_vec)
        else {
            return;
        };
        let Some((traffic, filter_id)) = self.traffic_of(id, false) else {
            return;
        };
        let Ok(bundle) = Bundle::new(&params, self.config.provider) else {
            return;
        };
        let esp = params.iter().find(|p| p.protocol == Protocol::Esp);
        let ah = params.iter().find(|p| p.protocol == Protocol::Ah);
        let first = params.first();
        let next_hop = first
            .and_then(|p| p.tunnel)
            .map_or(traffic.remote, |t| t.remote);
        // A rekey: another complete context already serves this filter and address pair.
        let rekey = self.sas.iter().any(|(other, c)| {
            *other != id
                && c.outbound.as_ref().is_some_and(|o| {
                    o.traffic.local == traffic.local && o.traffic.remote == traffic.remote
                })
                && self
                    .bfe
                    .sa_context(*other)
                    .is_some_and(|x| x.traffic().ipsec_filter_id == filter_id)
        });
        if rekey && count {
            inc32(&mut self.stats.ipsec.aggregate_sa_statistics.successful_rekeys);
        }
        let sa = OutSa {
            bundle,
            esp_seq: SeqCounter::new(esp.is_some_and(|p| p.esn), 1),
            ah_seq: SeqCounter::new(ah.is_some_and(|p| p.esn), 1),
            has_esp: esp.is_some(),
            has_ah: ah.is_some(),
            encrypts: esp.is_some_and(|p| {
                !matches!(
                    p.encryption,
                    ipsec::Encryption::None | ipsec::Encryption::Null
                )
            }),
            next_hop,
            tunnel: first.is_some_and(|p| p.mode == Mode::Tunnel),
            slot: OffloadSlot::new(first.is_some_and(|p| p.udp_encap.is_some())),
            params,
            traffic,
        };
        self.sas.entry(id).or_default().outbound = Some(sa);
        if count {
            inc32(&mut self.stats.ipsec.aggregate_sa_statistics.total_sas_added);
        }
        self.try_offload(now, id, false);
    }

    /// Remove the inbound bundle (DELETE_SA if offloaded); returns it (keys zeroize on drop).
    fn remove_inbound(&mut self, id: u64, count: bool) -> Option<InSa> {
        let sa = self.sas.get_mut(&id).and_then(|c| c.inbound.take())?;
        if self.by_spi.get(&sa.spi) == Some(&id) {
            self.by_spi.remove(&sa.spi);
        }
        if count {
            inc32(&mut self.stats.ipsec.aggregate_sa_statistics.total_sas_deleted);
        }
        if sa.slot.state == SaOffloadState::Offloaded {
            self.delete_sa(sa.slot.handle, sa.slot.udp, sa.slot.v2);
        }
        // `sa.params` keys are zeroized when dropped (ipsec::Key zeroizes on drop).
        Some(sa)
    }

    /// Remove the outbound bundle (DELETE_SA if offloaded); returns it.
    fn remove_outbound(&mut self, id: u64, count: bool) -> Option<OutSa> {
        let sa = self.sas.get_mut(&id).and_then(|c| c.outbound.take())?;
        if count {
            inc32(&mut self.stats.ipsec.aggregate_sa_statistics.total_sas_deleted);
        }
        if sa.slot.state == SaOffloadState::Offloaded {
            self.delete_sa(sa.slot.handle, sa.slot.udp, sa.slot.v2);
        }
        Some(sa)
    }

    /// DELETE_SA / DELETE_UDPESP_SA; frees a capacity slot and retries refused bundles.
    fn delete_sa(&mut self, handle: OffloadHandle, udp: bool, v2: bool) {
        self.offloaded = self.offloaded.saturating_sub(1);
        self.stats.offload.delete_sa += 1;
        let status = if v2 {
            let r = DeleteSaV2Request {
                offload_handles: vec![handle],
            };
            match r.to_bytes() {
                Ok(mut b) => {
                    let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA, &mut b);
                    self.miniport.oid_request(&mut req)
                }
                Err(_) => NdisStatus::FAILURE,
            }
        } else if udp {
            let mut b = DeleteUdpEspSaRequest {
                offload_handle: handle,
                parser_entry: OffloadHandle::NULL,
            }
            .to_bytes();
            let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA, &mut b);
            self.miniport.oid_request(&mut req)
        } else {
            let mut b = DeleteSaRequest {
                offload_handle: handle,
            }
            .to_bytes();
            let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_DELETE_SA, &mut b);
            self.miniport.oid_request(&mut req)
        };
        if status == NdisStatus::SUCCESS {
            let now = self.now;
            self.retry_offloads(now);
        }
    }

    fn retry_offloads(&mut self, now: Duration) {
        // A reused buffer: no allocation once it has grown to the number of bundles.
        let mut todo = core::mem::take(&mut self.retry_todo);
        todo.clear();
        for (id, c) in &self.sas {
            if let Some(i) = &c.inbound
                && Self::retryable(&i.slot, now)
            {
                todo.push((*id, true));
            }
            if let Some(o) = &c.outbound
                && Self::retryable(&o.slot, now)
            {
                todo.push((*id, false));
            }
        }
        todo.sort_unstable();
        for &(id, inbound) in &todo {
            self.try_offload(now, id, inbound);
        }
        self.retry_todo = todo;
    }

    fn retryable(slot: &OffloadSlot, now: Duration) -> bool {
        match slot.state {
            SaOffloadState::Pending => true,
            SaOffloadState::DeleteRequested => now >= slot.retry_at,
            SaOffloadState::Software | SaOffloadState::Offloaded => false,
        }
    }

    /// Offer one direction's bundle to the NIC (the `Offloading` step).
    fn try_offload(&mut self, now: Duration, id: u64, inbound: bool) {
        if !self.config.offload || !self.nic_offload_on {
            return;
        }
        let Some(caps) = self.caps else {
            return;
        };
        let Some(ctx) = self.sas.get(&id) else {
            return;
        };
        let (params, traffic, state) = if inbound {
            let Some(s) = &ctx.inbound else { return };
            (&s.params, s.traffic, s.slot.state)
        } else {
            let Some(s) = &ctx.outbound else { return };
            (&s.params, s.traffic, s.slot.state)
        };
        if state == SaOffloadState::Offloaded
            || (state == SaOffloadState::DeleteRequested
                && !Self::retryable(
                    if inbound {
                        ctx.inbound.as_ref().map(|s| &s.slot)
                    } else {
                        ctx.outbound.as_ref().map(|s| &s.slot)
                    }
                    .unwrap_or(&OffloadSlot::new(false)),
                    now,
                ))
        {
            return;
        }
        // v1 for what it can express (IPv4, no ESN, transport or tunnel); v2 ADD_SA_EX for
        // IPv6 / ESN transport-mode bundles.
        let hi = if inbound {
            ctx.inbound.as_ref().map_or(0, |s| {
                (s.esp_replay.highest().max(s.ah_replay.highest()) >> 32) as u32
            })
        } else {
            ctx.outbound
                .as_ref()
                .map_or(0, |s| (s.esp_seq.peek().max(s.ah_seq.peek()) >> 32) as u32)
        };
        let v1 = offload::add_sa_request(params, &traffic, !inbound);
        let v2 = if v1.is_none() {
            offload::add_sa_v2_request(params, &traffic, !inbound, hi)
                .filter(|r| offload::advertised_v2(&caps, r))
        } else {
            None
        };
        let v1 = v1.filter(|r| offload::advertised(&caps, r));
        if v1.is_none() && v2.is_none() {
            self.stats.offload.not_advertised += 1;
            self.set_slot(id, inbound, SaOffloadState::Software, OffloadHandle::NULL);
            return;
        }
        if self.offloaded >= offload::capacity(&caps) {
            self.stats.offload.add_sa_resources += 1;
            self.set_slot(id, inbound, SaOffloadState::Pending, OffloadHandle::NULL);
            return;
        }
        let used_v2 = v2.is_some();
        let (status, handle) = if let Some(sa) = v2 {
            let ex = AddSaExV2Request {
                sa,
                source_switch_port_id: 0,
                vlan_id: 0,
            };
            let Ok(mut buf) = ex.to_bytes() else {
                self.stats.offload.add_sa_failed += 1;
                self.set_slot(id, inbound, SaOffloadState::Software, OffloadHandle::NULL);
                return;
            };
            drop(ex);
            let mut r = OidRequest::set(Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut buf);
            let status = self.miniport.oid_request(&mut r);
            let handle = AddSaExV2Request::read_offload_handle(r.information_buffer);
            buf.zeroize();
            (status, handle)
        } else if let Some(req) = v1 {
            let oid = req.oid();
            let len = match req.emit(oid::KeyOrder::ConfidentialityFirst, &mut self.oid_buf) {
                Ok(n) => n,
                Err(_) => {
                    self.stats.offload.add_sa_failed += 1;
                    self.set_slot(id, inbound, SaOffloadState::Software, OffloadHandle::NULL);
                    return;
                }
            };
            drop(req);
            let r = {
                let buf = self.oid_buf.get_mut(..len).unwrap_or(&mut []);
                let mut r = OidRequest::set(oid, buf);
                let status = self.miniport.oid_request(&mut r);
                let handle = oid::AddSaRequest::read_offload_handle(r.information_buffer);
                (status, handle)
            };
            self.oid_buf.zeroize();
            self.oid_buf.resize(ADD_SA_BUF_LEN, 0);
            r
        } else {
            return;
        };
        match (status, handle) {
            (NdisStatus::SUCCESS, Some(h)) if !h.is_null() => {
                self.stats.offload.add_sa_ok += 1;
                self.offloaded += 1;
                self.set_slot(id, inbound, SaOffloadState::Offloaded, h);
                if used_v2 {
                    self.stats.offload.add_sa_v2_ok += 1;
                }
                if let Some(slot) = self.slot_mut(id, inbound) {
                    slot.v2 = used_v2;
                    slot.nic_hi = (hi, hi);
                }
            }
            (NdisStatus::RESOURCES, _) => {
                self.stats.offload.add_sa_resources += 1;
                self.set_slot(id, inbound, SaOffloadState::Pending, OffloadHandle::NULL);
            }
            (NdisStatus::NOT_SUPPORTED, _) => {
                self.stats.offload.add_sa_not_supported += 1;
                self.set_slot(id, inbound, SaOffloadState::Pending, OffloadHandle::NULL);
            }
            _ => {
                self.stats.offload.add_sa_failed += 1;
                self.set_slot(id, inbound, SaOffloadState::Software, OffloadHandle::NULL);
            }
        }
    }

    fn slot_mut(&mut self, id: u64, inbound: bool) -> Option<&mut OffloadSlot> {
        let c = self.sas.get_mut(&id)?;
        if inbound {
            c.inbound.as_mut().map(|s| &mut s.slot)
        } else {
            c.outbound.as_mut().map(|s| &mut s.slot)
        }
    }

    fn set_slot(&mut self, id: u64, inbound: bool, state: SaOffloadState, h: OffloadHandle) {
        if let Some(slot) = self.slot_mut(id, inbound) {
            slot.state = state;
            slot.handle = h;
        }
    }

    /// `SaDeleteReq` on a frame for SPI `spi`: evict the inbound SA and its outbound partner.
    fn handle_delete_req(&mut self, now: Duration, spi: u32) {
        self.stats.offload.sa_delete_requests += 1;
        let Some(&id) = self.by_spi.get(&spi) else {
            return;
        };
        // At most two bundles (inbound and outbound): a fixed array, no allocation.
        let mut deletes = [None; 2];
        if let Some(c) = self.sas.get_mut(&id) {
            let slots = [
                c.inbound.as_mut().map(|s| &mut s.slot),
                c.outbound.as_mut().map(|s| &mut s.slot),
            ];
            for (slot, del) in slots.into_iter().zip(deletes.iter_mut()) {
                let Some(slot) = slot else { continue };
                if slot.state == SaOffloadState::Offloaded {
                    *del = Some((slot.handle, slot.udp, slot.v2));
                }
                if slot.state != SaOffloadState::Software {
                    slot.state = SaOffloadState::DeleteRequested;
                    slot.handle = OffloadHandle::NULL;
                    slot.retry_at = now + SA_DELETE_REQ_HOLDOFF;
                }
            }
        }
        for (h, udp, v2) in deletes.into_iter().flatten() {
            self.delete_sa(h, udp, v2);
        }
    }

    // ---------------------------------------------------------------- outbound

    fn take_buffer(&mut self) -> Result<Nbl, StackError> {
        let mut nbl = self.pool.pop().ok_or(StackError::NoBuffer)?;
        nbl.reset(HEADROOM);
        Ok(nbl)
    }

    /// Send a UDP datagram from `src` (one of this host's addresses) to `dst`.
    ///
    /// # Errors
    /// [`StackError::NoBuffer`], [`StackError::TooLarge`], [`StackError::Malformed`] (mixed
    /// address families).
    pub fn send_udp(
        &mut self,
        now: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<SendDisposition, StackError> {
        if payload.len() + 48 > MAX_IP_PACKET {
            return Err(StackError::TooLarge);
        }
        let mut nbl = self.take_buffer()?;
        let n = nbl
            .buffer
            .get_mut(HEADROOM..)
            .and_then(|b| packet::build_udp(b, src, dst, payload));
        let Some(n) = n else {
            self.pool.push(nbl);
            return Err(StackError::Malformed);
        };
        nbl.data = HEADROOM..HEADROOM + n;
        Ok(self.output(now, nbl))
    }

    /// Send an ICMP / ICMPv6 echo request from this host's first address of `dst`'s family.
    ///
    /// # Errors
    /// As [`HostStack::send_udp`]; `Malformed` when no address of that family exists.
    pub fn ping(
        &mut self,
        now: Duration,
        dst: IpAddr,
        id: u16,
        seq: u16,
        payload: &[u8],
    ) -> Result<SendDisposition, StackError> {
        let src = self
            .config
            .addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv6() == dst.is_ipv6())
            .ok_or(StackError::Malformed)?;
        self.send_echo(now, src, dst, false, id, seq, payload)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_echo(
        &mut self,
        now: Duration,
        src: IpAddr,
        dst: IpAddr,
        reply: bool,
        id: u16,
        seq: u16,
        payload: &[u8],
    ) -> Result<SendDisposition, StackError> {
        if payload.len() + 48 > MAX_IP_PACKET {
            return Err(StackError::TooLarge);
        }
        let mut nbl = self.take_buffer()?;
        let n = nbl
            .buffer
            .get_mut(HEADROOM..)
            .and_then(|b| packet::build_echo(b, src, dst, reply, id, seq, payload));
        let Some(n) = n else {
            self.pool.push(nbl);
            return Err(StackError::Malformed);
        };
        nbl.data = HEADROOM..HEADROOM + n;
        Ok(self.output(now, nbl))
    }

    /// Send a raw IP packet (from an external stack or an application).
    ///
    /// # Errors
    /// [`StackError::NoBuffer`], [`StackError::TooLarge`], [`StackError::Malformed`].
    pub fn send_ip(
        &mut self,
        now: Duration,
        ip_packet: &[u8],
    ) -> Result<SendDisposition, StackError> {
        if ip_packet.len() > MAX_IP_PACKET {
            return Err(StackError::TooLarge);
        }
        if packet::parse_ip(ip_packet).is_none() {
            return Err(StackError::Malformed);
        }
        let mut nbl = self.take_buffer()?;
        if !nbl.fill(HEADROOM, ip_packet) {
            self.pool.push(nbl);
            return Err(StackError::TooLarge);
        }
        Ok(self.output(now, nbl))
    }

    fn classify_values(t: &FiveTuple, outbound: bool) -> ClassifyValues {
        let v6 = t.src.is_ipv6();
        let layer = match (v6, outbound) {
            (false, true) => FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
            (true, true) => FWPM_LAYER_OUTBOUND_TRANSPORT_V6,
            (false, false) => FWPM_LAYER_INBOUND_TRANSPORT_V4,
            (true, false) => FWPM_LAYER_INBOUND_TRANSPORT_V6,
        };
        let (local, remote, lp, rp) = if outbound {
            (t.src, t.dst, t.src_port, t.dst_port)
        } else {
            (t.dst, t.src, t.dst_port, t.src_port)
        };
        ClassifyValues {
            layer,
            local_addr: local,
            remote_addr: remote,
            protocol: t.protocol,
            local_port: lp,
            remote_port: rp,
            local_address_type: NlAddressType::Unicast,
        }
    }

    fn drop_out(&mut self, nbl: Nbl) -> SendDisposition {
        self.pool.push(nbl);
        SendDisposition::Dropped
    }

    /// The outbound pipeline for the IP packet in `nbl.data` (steps 2-8 of the module docs).
    fn output(&mut self, now: Duration, mut nbl: Nbl) -> SendDisposition {
        let Some(p) = packet::parse_ip(nbl.data()) else {
            self.stats.outbound.frame_errors += 1;
            return self.drop_out(nbl);
        };
        let t = p.tuple;
        let result = self
            .classify_cache
            .classify(&self.bfe, &Self::classify_values(&t, true));
        let (next_hop, disposition) = match result.action {
            ClassifyAction::Block => {
                self.stats.outbound.blocked += 1;
                return self.drop_out(nbl);
            }
            ClassifyAction::Permit => (t.dst, SendDisposition::Clear),
            ClassifyAction::Callout {
                filter_id,
                callout_key,
            } => {
                let tunnel = callout_key == FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4
                    || callout_key == FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6;
                match self.protect(now, &mut nbl, filter_id, tunnel, &t, p.total) {
                    Some(d) => d,
                    None => return self.drop_out(nbl),
                }
            }
        };
        let Some(mac) = self
            .config
            .neighbors
            .iter()
            .find(|(a, _)| *a == next_hop)
            .map(|(_, m)| *m)
        else {
            self.stats.outbound.no_neighbor += 1;
            return self.drop_out(nbl);
        };
        let ip_start = nbl.data.start;
        let Some(start) = ip_start.checked_sub(ETH_LEN) else {
            self.stats.outbound.frame_errors += 1;
            return self.drop_out(nbl);
        };
        let ethertype: u16 = match nbl.buffer.get(ip_start).map(|b| b >> 4) {
            Some(6) => 0x86DD,
            _ => 0x0800,
        };
        if let Some(h) = nbl.buffer.get_mut(start..ip_start) {
            // INVARIANT: `start = ip_start - ETH_LEN`, so `h` is exactly ETH_LEN (14) bytes:
            // the destination MAC (0..6), source MAC (6..12) and EtherType (12..14) fit.
            h[0..6].copy_from_slice(&mac);
            h[6..12].copy_from_slice(&self.config.mac);
            h[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        nbl.data.start = start;
        match disposition {
            SendDisposition::Clear => self.stats.clear_sent += 1,
            _ => self.stats.protected_sent += 1,
        }
        self.tx_batch.push(nbl);
        self.miniport.send_net_buffer_lists(&mut self.tx_batch);
        // The miniport drains the batch; anything left is reclaimed.
        while let Some(n) = self.tx_batch.pop() {
            self.pool.push(n);
        }
        disposition
    }

    /// Steps 3-5 and 7: returns (outer next hop, disposition) or `None` (dropped, counted).
    fn protect(
        &mut self,
        now: Duration,
        nbl: &mut Nbl,
        filter_id: u64,
        tunnel: bool,
        t: &FiveTuple,
        inner_len: usize,
    ) -> Option<(IpAddr, SendDisposition)> {
        let _ = now;
        let ctx = self
            .outbound_sa_cache
            .select(&self.bfe, filter_id, tunnel, t.src, t.dst);
        let Some(id) = ctx else {
            self.stats.outbound.no_sa += 1;
            return None;
        };
        let Some(sa) = self.sas.get_mut(&id).and_then(|c| c.outbound.as_mut()) else {
            self.stats.outbound.no_sa += 1;
            return None;
        };
        let esp = if sa.has_esp {
            sa.esp_seq.next().ok()
        } else {
            Some(0)
        };
        let ah = if sa.has_ah {
            sa.ah_seq.next().ok()
        } else {
            Some(0)
        };
        let (Some(esp), Some(ah)) = (esp, ah) else {
            self.stats.outbound.seq_overflow += 1;
            if let Some(e) = self.engine {
                let _ = self.bfe.ipsec_sa_context_expire0(e, id);
            }
            return None;
        };
        let seq = BundleSeq { esp, ah };
        let range = nbl.data.clone();
        let Ok(framed) = sa.bundle.encapsulate(seq, &mut nbl.buffer, range) else {
            self.stats.outbound.frame_errors += 1;
            return None;
        };
        nbl.data = framed.clone();
        let mut offloaded = sa.slot.state == SaOffloadState::Offloaded;
        if offloaded && sa.slot.v2 {
            // ESN: tell the NIC the new high bits when the counter crossed a 2^32 boundary.
            let hi = seq.hi();
            let members = [
                (Protocol::Esp, SaProtocol::Esp, hi.esp, sa.slot.nic_hi.0),
                (Protocol::Ah, SaProtocol::Ah, hi.ah, sa.slot.nic_hi.1),
            ];
            for (proto, op, new, old) in members {
                let Some(p) = sa.params.iter().find(|p| p.protocol == proto && p.esn) else {
                    continue;
                };
                if new == old {
                    continue;
                }
                let mut b = UpdateSaV2Request {
                    offload_handle: sa.slot.handle,
                    protocol: op,
                    spi: p.spi,
                    sequence_number_high_order: new,
                }
                .to_bytes();
                let mut r = OidRequest::set(Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA, &mut b);
                if self.miniport.oid_request(&mut r) == NdisStatus::SUCCESS {
                    self.stats.offload.update_sa_ok += 1;
                    if proto == Protocol::Esp {
                        sa.slot.nic_hi.0 = new;
                    } else {
                        sa.slot.nic_hi.1 = new;
                    }
                } else {
                    self.stats.offload.update_sa_failed += 1;
                    offloaded = false;
                }
            }
        }
        if offloaded {
            nbl.send_info.offload_handle = sa.slot.handle;
        } else {
            let pkt = nbl.buffer.get_mut(framed)?;
            if sa.bundle.protect(pkt, seq.hi()).is_err() {
                self.stats.outbound.frame_errors += 1;
                return None;
            }
        }
        let bytes = inner_len as u64;
        let tr = &mut self.stats.ipsec.outbound_traffic_statistics;
        Self::account(
            tr,
            bytes,
            sa.encrypts,
            sa.has_esp,
            sa.has_ah,
            sa.tunnel,
            offloaded,
        );
        let next_hop = sa.next_hop;
        let _ = self
            .bfe
            .account_traffic(id, FWP_DIRECTION_OUTBOUND, bytes, 1);
        Some((
            next_hop,
            SendDisposition::Protected {
                sa_context: id,
                offloaded,
                seq: if esp != 0 { esp } else { ah },
            },
        ))
    }

    fn account(
        tr: &mut IpsecTrafficStatistics0,
        bytes: u64,
        encrypts: bool,
        esp: bool,
        ah: bool,
        tunnel: bool,
        offloaded: bool,
    ) {
        if encrypts {
            tr.encrypted_byte_count += bytes;
        }
        if esp {
            tr.authenticated_esp_byte_count += bytes;
        }
        if ah {
            tr.authenticated_ah_byte_count += bytes;
        }
        if tunnel {
            tr.tunnel_byte_count += bytes;
        } else {
            tr.transport_byte_count += bytes;
        }
        if offloaded {
            tr.offload_byte_count += bytes;
        }
    }

    // ---------------------------------------------------------------- inbound

    fn drop_in(&mut self, f: impl FnOnce(&mut IpsecAggregateDropPacketStatistics1)) {
        let d = &mut self.stats.ipsec.aggregate_drop_packet_statistics;
        f(d);
        inc32(&mut d.total_drop_packets_inbound);
    }

    fn drop_malformed(&mut self) {
        self.stats.inbound.malformed += 1;
        self.drop_in(|_| {});
    }

    fn receive(&mut self, now: Duration, nbl: &mut Nbl) {
        let info = nbl.receive_info;
        let data = nbl.data.clone();
        let Some(frame) = nbl.buffer.get(data.clone()) else {
            return self.drop_malformed();
        };
        // INVARIANT: `get(12..14)` yields exactly two bytes, so `b[0]`/`b[1]` are in bounds
        // (likewise for the two IP length fields below).
        let ethertype = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
        if !matches!(ethertype, Some(0x0800 | 0x86DD)) || frame.len() < ETH_LEN {
            return self.drop_malformed();
        }
        let ip_start = data.start + ETH_LEN;
        let ip = nbl.buffer.get(ip_start..data.end).unwrap_or(&[]);
        // Trim Ethernet padding: the IP length decides.
        let ip_len = match ip.first().map(|b| b >> 4) {
            Some(4) => ip
                .get(2..4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
            Some(6) => ip
                .get(4..6)
                .map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
            _ => None,
        };
        let Some(ip_len) = ip_len.filter(|l| *l <= ip.len()) else {
            return self.drop_malformed();
        };
        let ip_range = ip_start..ip_start + ip_len;
        let ip = nbl.buffer.get(ip_range.clone()).unwrap_or(&[]);
        // RFC 1122 §3.2.1.2: a host verifies the IPv4 header checksum and silently discards
        // a datagram that fails (ESP and AH-less paths do not protect the outer header).
        if ip.first().map(|b| b >> 4) == Some(4) {
            let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
            match ip.get(..ihl) {
                Some(h) if ihl >= 20 && ipsec::wire::internet_checksum(h) == 0 => {}
                _ => {
                    self.stats.inbound.bad_ipv4_checksum += 1;
                    return self.drop_malformed();
                }
            }
        }
        // ESP/AH packets parse too (parse_ip does not interpret the payload).
        let Some(outer_dst) = ip_of(ip) else {
            return self.drop_malformed();
        };
        if !self.config.addresses.contains(&outer_dst) {
            return self.drop_malformed();
        }
        let classified = ipsec::classify(ip, &self.udp_ports);
        let key = match classified {
            Ok(Classified::Esp(k) | Classified::Ah(k)) => k,
            Ok(Classified::Clear { .. }) => {
                return self.deliver_checked(now, nbl, ip_range, None);
            }
            Ok(Classified::NatKeepalive) => {
                self.stats.inbound.nat_keepalives += 1;
                return;
            }
            Ok(Classified::Ike) => {
                self.stats.inbound.ike_messages += 1;
                return;
            }
            Err(_) => return self.drop_malformed(),
        };
        if info.sa_delete_req {
            self.handle_delete_req(now, key.spi);
        }
        let Some(&id) = self.by_spi.get(&key.spi) else {
            return self.drop_in(|d| inc32(&mut d.invalid_spis_on_inbound));
        };
        let Some(sa) = self.sas.get_mut(&id).and_then(|c| c.inbound.as_mut()) else {
            return self.drop_in(|d| inc32(&mut d.sa_not_initialized_on_inbound));
        };
        if let Some(u) = key.udp_encap
            && sa
                .params
                .first()
                .and_then(|p| p.udp_encap)
                .map(|e| e.local_port)
                != Some(u.local_port)
        {
            return self.drop_in(|d| inc32(&mut d.udp_esp_validation_failures_on_inbound));
        }
        let highest = BundleSeq {
            esp: sa.esp_replay.highest(),
            ah: sa.ah_replay.highest(),
        };
        let nic = info.crypto_done;
        if nic && info.crypto_status != CryptoStatus::SUCCESS {
            let idx = usize::from(info.crypto_status.0.min(7));
            if let Some(c) = self.stats.inbound.nic_crypto_failures.get_mut(idx) {
                *c += 1;
            }
            let auth = matches!(
                info.crypto_status,
                CryptoStatus::TRANSPORT_AH_AUTH_FAILED
                    | CryptoStatus::TRANSPORT_ESP_AUTH_FAILED
                    | CryptoStatus::TUNNEL_AH_AUTH_FAILED
                    | CryptoStatus::TUNNEL_ESP_AUTH_FAILED
            );
            return if auth {
                self.drop_in(|d| inc32(&mut d.authentication_failures_on_inbound))
            } else {
                self.drop_in(|d| inc32(&mut d.decryption_failures_on_inbound))
            };
        }
        if !nic {
            // Replay check on the inferred number of the outermost SA, before any crypto.
            let (win, esn_on) = if sa.has_ah {
                (
                    &sa.ah_replay,
                    sa.params
                        .iter()
                        .any(|p| p.protocol == Protocol::Ah && p.esn),
                )
            } else {
                (&sa.esp_replay, sa.params.first().is_some_and(|p| p.esn))
            };
            let inferred = if esn_on {
                esn::infer(key.seq_lo, win.highest(), self.config.replay_window)
            } else {
                u64::from(key.seq_lo)
            };
            if win.check(inferred).is_err() {
                return self.drop_in(|d| inc32(&mut d.replay_check_failures_on_inbound));
            }
            let Some(pkt) = nbl.buffer.get_mut(ip_range.clone()) else {
                return self.drop_malformed();
            };
            match sa.bundle.unprotect(pkt, highest) {
                Ok(u) => {
                    if !Self::replay_ok(sa, u.seq) {
                        return self.drop_in(|d| inc32(&mut d.replay_check_failures_on_inbound));
                    }
                }
                Err(CryptoError::AuthFailed { .. }) => {
                    return self.drop_in(|d| inc32(&mut d.authentication_failures_on_inbound));
                }
                Err(_) => {
                    return self.drop_in(|d| inc32(&mut d.decryption_failures_on_inbound));
                }
            }
        }
        let Ok(dec) = sa.bundle.decapsulate(&mut nbl.buffer, ip_range, highest) else {
            return self.drop_in(|d| inc32(&mut d.decryption_failures_on_inbound));
        };
        if nic && !Self::replay_ok(sa, dec.seq) {
            return self.drop_in(|d| inc32(&mut d.replay_check_failures_on_inbound));
        }
        if sa.has_esp {
            sa.esp_replay.update(dec.seq.esp);
        }
        if sa.has_ah {
            sa.ah_replay.update(dec.seq.ah);
        }
        if nic {
            self.stats.inbound.nic_processed += 1;
        } else {
            self.stats.inbound.software_processed += 1;
        }
        let bytes = (dec.packet.end - dec.packet.start) as u64;
        let tr = &mut self.stats.ipsec.inbound_traffic_statistics;
        Self::account(
            tr,
            bytes,
            sa.encrypts,
            sa.has_esp,
            sa.has_ah,
            sa.tunnel,
            nic,
        );
        let _ = self
            .bfe
            .account_traffic(id, FWP_DIRECTION_INBOUND, bytes, 1);
        self.deliver_checked(now, nbl, dec.packet, Some(id));
    }

    fn replay_ok(sa: &InSa, seq: BundleSeq) -> bool {
        (!sa.has_esp || sa.esp_replay.check(seq.esp).is_ok())
            && (!sa.has_ah || sa.ah_replay.check(seq.ah).is_ok())
    }

    /// Inbound policy (step 4) and delivery (step 5). `secured`: the SA context it came on.
    fn deliver_checked(
        &mut self,
        now: Duration,
        nbl: &mut Nbl,
        range: core::ops::Range<usize>,
        secured: Option<u64>,
    ) {
        let base = range.start;
        let Some(pkt) = nbl.buffer.get(range) else {
            return self.drop_malformed();
        };
        let Some(p) = packet::parse_ip(pkt) else {
            return self.drop_malformed();
        };
        let t = p.tuple;
        if let Some(id) = secured {
            let sel = self
                .sas
                .get(&id)
                .and_then(|c| c.inbound.as_ref())
                .map(|s| (s.traffic, s.tunnel, s.filter_id));
            let Some((tr, tunnel, filter_id)) = sel else {
                return self.drop_in(|d| inc32(&mut d.sa_not_initialized_on_inbound));
            };
            let matches = tunnel
                || (t.dst == tr.local
                    && t.src == tr.remote
                    && (tr.protocol == 0 || tr.protocol == t.protocol)
                    && (tr.local_port == 0 || tr.local_port == t.dst_port)
                    && (tr.remote_port == 0 || tr.remote_port == t.src_port));
            if !matches {
                return self.drop_in(|d| inc32(&mut d.receive_over_incorrect_sa_inbound));
            }
            match self
                .classify_cache
                .classify(&self.bfe, &Self::classify_values(&t, false))
                .action
            {
                ClassifyAction::Block => {
                    self.stats.inbound.blocked += 1;
                    return self.drop_in(|_| {});
                }
                ClassifyAction::Callout { filter_id: f, .. } if f != filter_id => {
                    return self.drop_in(|d| inc32(&mut d.secure_receives_not_matching_filters));
                }
                // Tunnel mode: the inner packet must select the context's (tunnel) filter,
                // whose conditions are the inner traffic selectors.
                ClassifyAction::Permit if tunnel => {
                    return self.drop_in(|d| inc32(&mut d.receive_over_incorrect_sa_inbound));
                }
                _ => {}
            }
        } else {
            match self
                .classify_cache
                .classify(&self.bfe, &Self::classify_values(&t, false))
                .action
            {
                ClassifyAction::Block => {
                    self.stats.inbound.blocked += 1;
                    return self.drop_in(|_| {});
                }
                ClassifyAction::Callout { .. } => {
                    return self.drop_in(|d| inc32(&mut d.invalid_clear_text_inbound));
                }
                ClassifyAction::Permit => {}
            }
        }
        let secure = secured.is_some();
        let seg = pkt.get(p.l4.clone()).unwrap_or(&[]);
        let kind = if self.external {
            Delivered::Ip
        } else {
            match t.protocol {
                PROTO_UDP => {
                    if !packet::udp_checksum_ok(&t, seg) {
                        self.stats.inbound.bad_checksum += 1;
                        return self.drop_in(|_| {});
                    }
                    Delivered::Udp(UdpDatagram {
                        src: SocketAddr::new(t.src, t.src_port),
                        dst: SocketAddr::new(t.dst, t.dst_port),
                        len: seg.len().saturating_sub(8),
                        secure,
                    })
                }
                PROTO_ICMP | PROTO_ICMPV6 => match packet::parse_echo(&t, seg) {
                    Some(e) if !e.reply => {
                        self.stats.inbound.delivered += 1;
                        // Answer with the same payload; copy it out first (stack buffer).
                        let body = seg.get(8..).unwrap_or(&[]);
                        let mut tmp = [0u8; 1500];
                        let n = body.len().min(tmp.len());
                        if let (Some(d), Some(s)) = (tmp.get_mut(..n), body.get(..n)) {
                            d.copy_from_slice(s);
                        }
                        if self
                            .send_echo(
                                now,
                                t.dst,
                                t.src,
                                true,
                                e.id,
                                e.seq,
                                tmp.get(..n).unwrap_or(&[]),
                            )
                            .is_ok()
                        {
                            self.stats.inbound.echo_replies_sent += 1;
                        }
                        return;
                    }
                    Some(e) => Delivered::Echo(EchoReply {
                        src: t.src,
                        id: e.id,
                        seq: e.seq,
                        secure,
                    }),
                    None => Delivered::Ip,
                },
                _ => Delivered::Ip,
            }
        };
        let Some(mut out) = self.pool.pop() else {
            self.stats.inbound.no_buffer += 1;
            return self.drop_in(|_| {});
        };
        out.reset(HEADROOM);
        let range = match kind {
            Delivered::Udp(_) => p.l4.start + 8..p.l4.end,
            _ => 0..p.total,
        };
        if nbl.buffer.len() >= BUFFER_LEN {
            // No copy: the received buffer goes up with the delivered data, and the pool's
            // buffer goes back to the miniport in its place (as a full-size buffer it is a
            // valid send buffer later; smaller received buffers, e.g. from a TAP port, are
            // copied instead so the pool only ever holds BUFFER_LEN buffers).
            let abs = base.saturating_add(range.start)..base.saturating_add(range.end);
            if nbl.buffer.get(abs.clone()).is_some() {
                core::mem::swap(&mut out.buffer, &mut nbl.buffer);
                out.data = abs;
                self.stats.inbound.delivered += 1;
                self.delivered.push_back((kind, out));
                return;
            }
        }
        if !out.fill(HEADROOM, pkt.get(range).unwrap_or(&[])) {
            self.pool.push(out);
            self.stats.inbound.no_buffer += 1;
            return self.drop_in(|_| {});
        }
        self.stats.inbound.delivered += 1;
        self.delivered.push_back((kind, out));
    }

    // ---------------------------------------------------------------- upper edge

    fn take_first(&mut self, pred: impl Fn(&Delivered) -> bool) -> Option<(Delivered, Nbl)> {
        let i = self.delivered.iter().position(|(d, _)| pred(d))?;
        self.delivered.remove(i)
    }

    /// The next received UDP datagram: its payload is copied into `buf` (truncated to its
    /// length).
    pub fn recv_udp(&mut self, buf: &mut [u8]) -> Option<UdpDatagram> {
        let (d, mut nbl) = self.take_first(|d| matches!(d, Delivered::Udp(_)))?;
        let r = match d {
            Delivered::Udp(u) => {
                let n = u.len.min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), nbl.data().get(..n)) {
                    dst.copy_from_slice(src);
                }
                Some(u)
            }
            _ => None,
        };
        nbl.reset(HEADROOM);
        self.pool.push(nbl);
        r
    }

    /// The next echo reply received for [`HostStack::ping`].
    pub fn recv_echo_reply(&mut self) -> Option<EchoReply> {
        let (d, mut nbl) = self.take_first(|d| matches!(d, Delivered::Echo(_)))?;
        nbl.reset(HEADROOM);
        self.pool.push(nbl);
        match d {
            Delivered::Echo(e) => Some(e),
            _ => None,
        }
    }

    /// The next delivered IP packet for the external stack (or any packet no built-in
    /// endpoint takes), copied into `out` (cleared first). False when none is queued.
    pub fn take_delivered_ip(&mut self, out: &mut Vec<u8>) -> bool {
        let Some((_, mut nbl)) = self.take_first(|d| matches!(d, Delivered::Ip)) else {
            return false;
        };
        out.clear();
        out.extend_from_slice(nbl.data());
        nbl.reset(HEADROOM);
        self.pool.push(nbl);
        true
    }
}
