//! The adapter: [`VirtualMiniport`], its OID dispatch and its SA bookkeeping.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::thread::JoinHandle;

use ipsec::UdpEncap;
use nicsim::{
    EncapEntry, EncapType, Nic, NicConfig, NicStats, SaHandle, SaInfo, SaStats, TableError, Wire,
};
use oid::v2::{V2AddSa, V2UdpEspEncapsulation};
use oid::{
    AddSaRequest, KeyOrder, NdisStatus, OffloadCapabilities, OffloadHandle, OffloadParameters, Oid,
    OidError, OidRequest, Protocol, RequestType, StatusIndication, TaskOffloadList, complete_query,
    write_offload_handle_at,
};

use crate::caps::{Enabled, OffloadState, Version};
use crate::datapath::DataPath;
use crate::translate::{SaRequest, add_error};

/// Offset of `EncapTypeEntryOffldHandle` in `OFFLOAD_IPSEC_ADD_UDPESP_SA`.
pub const UDPESP_PARSER_HANDLE_OFFSET: usize = 184;

/// The UDP port v2 UDP-ESP SAs use (v2 `ADD_SA` carries no port): RFC 3948's 4500.
pub const V2_UDP_ESP_PORT: u16 = 4500;

/// Parser-entry handles carry this bit (and never bit 63, which SA handles carry), so the two
/// kinds of handle can never be confused.
const PARSER_HANDLE_BIT: u64 = 1 << 62;

/// Miniport configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiniportConfig {
    /// Where each SA's two keys sit in v1 `KeyMat` (the Microsoft pages disagree).
    pub key_order: KeyOrder,
    /// The NIC.
    pub nic: NicConfig,
    /// Offload enabled at initialization (v1 and v2, AH and ESP).
    pub offload_enabled: bool,
    /// Returned receive buffers kept for reuse (the rest go back to the NIC's port).
    pub buffer_pool: usize,
}

impl Default for MiniportConfig {
    fn default() -> Self {
        MiniportConfig {
            key_order: KeyOrder::ConfidentialityFirst,
            nic: NicConfig::default(),
            offload_enabled: true,
            buffer_pool: 256,
        }
    }
}

/// One UDP-ESP parser entry (`EncapTypeEntryOffldHandle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserEntry {
    /// Its handle.
    pub handle: OffloadHandle,
    /// Encapsulation type and UDP destination port.
    pub entry: EncapEntry,
    /// ADD_UDPESP_SA requests holding it.
    pub refs: usize,
}

/// Everything the SA OIDs change, behind one mutex (NDIS requires the UDP-ESP OIDs to be
/// serialized; all SA OIDs and offload settings are).
#[derive(Debug)]
struct Control {
    offload: OffloadState,
    parsers: Vec<ParserEntry>,
    next_parser: u64,
    /// Raw handles of the programmed SAs (bundles).
    sas: HashSet<u64>,
}

impl Control {
    fn parser(&self, h: OffloadHandle) -> Option<&ParserEntry> {
        self.parsers.iter().find(|p| p.handle == h)
    }

    /// Which entry an ADD_UDPESP_SA would use: `Ok(Some(existing))` or `Ok(None)` (create).
    fn resolve_parser(
        &self,
        requested: OffloadHandle,
        entry: EncapEntry,
    ) -> Result<Option<OffloadHandle>, OidError> {
        if requested.is_null() {
            return Ok(self
                .parsers
                .iter()
                .find(|p| p.entry == entry)
                .map(|p| p.handle));
        }
        let p = self.parser(requested).ok_or(OidError::invalid_data(
            "EncapTypeEntryOffldHandle names no parser entry",
        ))?;
        if p.entry != entry {
            return Err(OidError::invalid_data(
                "EncapTypeEntry differs from the named parser entry's type and port",
            ));
        }
        Ok(Some(p.handle))
    }

    fn take_parser_ref(
        &mut self,
        existing: Option<OffloadHandle>,
        entry: EncapEntry,
    ) -> OffloadHandle {
        if let Some(h) = existing
            && let Some(p) = self.parsers.iter_mut().find(|p| p.handle == h)
        {
            p.refs = p.refs.saturating_add(1);
            return h;
        }
        self.next_parser = self.next_parser.wrapping_add(1);
        let handle =
            OffloadHandle(PARSER_HANDLE_BIT | (self.next_parser & (PARSER_HANDLE_BIT - 1)));
        self.parsers.push(ParserEntry {
            handle,
            entry,
            refs: 1,
        });
        handle
    }

    fn release_parser(&mut self, h: OffloadHandle) {
        if let Some(pos) = self.parsers.iter().position(|p| p.handle == h)
            && let Some(p) = self.parsers.get_mut(pos)
        {
            p.refs = p.refs.saturating_sub(1);
            if p.refs == 0 {
                self.parsers.remove(pos);
            }
        }
    }
}

/// The virtual NDIS miniport: see the crate documentation.
#[doc(alias = "MINIPORT_ADAPTER_CONTEXT")]
pub struct VirtualMiniport {
    cfg: MiniportConfig,
    nic: RwLock<Nic>,
    protocol: RwLock<Option<Arc<dyn Protocol>>>,
    control: Mutex<Control>,
    halted: AtomicBool,
    pub(crate) data: DataPath,
    service: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl core::fmt::Debug for VirtualMiniport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtualMiniport")
            .field("cfg", &self.cfg)
            .field("halted", &self.halted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sa_handle(h: OffloadHandle) -> SaHandle {
    SaHandle(h.0)
}

fn offload_handle(h: SaHandle) -> OffloadHandle {
    OffloadHandle(h.raw())
}

/// The OIDs this miniport recognises, and whether each may be queried / set.
fn oid_kind(oid: Oid) -> Option<(bool, bool)> {
    Some(match oid {
        Oid::TCP_TASK_OFFLOAD => (true, true),
        Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES | Oid::TCP_OFFLOAD_CURRENT_CONFIG => (true, false),
        Oid::TCP_TASK_IPSEC_ADD_SA
        | Oid::TCP_TASK_IPSEC_DELETE_SA
        | Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA
        | Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA
        | Oid::TCP_OFFLOAD_PARAMETERS
        | Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA
        | Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX
        | Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA
        | Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA => (false, true),
        _ => return None,
    })
}

impl VirtualMiniport {
    /// `MiniportInitializeEx`: a miniport whose NIC (SA table per `cfg.nic`) sits on `wire`,
    /// in stepping mode (drive it with [`VirtualMiniport::poll`], or [`VirtualMiniport::start`]
    /// worker threads). No protocol is bound yet.
    #[doc(alias = "MiniportInitializeEx")]
    pub fn initialize(cfg: MiniportConfig, wire: impl Wire + 'static) -> Self {
        let nic = Nic::new(cfg.nic, wire);
        let (inb, outb) = nic.capacity();
        let capacity = u32::try_from(inb.min(outb)).unwrap_or(u32::MAX);
        let offload = if cfg.offload_enabled {
            OffloadState::all_enabled(capacity)
        } else {
            OffloadState {
                v1: Enabled::NONE,
                v2: Enabled::NONE,
                capacity,
            }
        };
        VirtualMiniport {
            cfg,
            nic: RwLock::new(nic),
            protocol: RwLock::new(None),
            control: Mutex::new(Control {
                offload,
                parsers: Vec::new(),
                next_parser: 0,
                sas: HashSet::new(),
            }),
            halted: AtomicBool::new(false),
            data: DataPath::new(cfg.buffer_pool),
            service: Mutex::new(None),
        }
    }

    /// Bind the protocol that receives completions, indications and status indications
    /// (replaces any previous one).
    pub fn bind(&self, protocol: Arc<dyn Protocol>) {
        *self
            .protocol
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(protocol);
    }

    /// Unbind the protocol: received frames are then recycled, completions dropped.
    pub fn unbind(&self) {
        *self
            .protocol
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn protocol(&self) -> Option<Arc<dyn Protocol>> {
        self.protocol
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn nic(&self) -> RwLockReadGuard<'_, Nic> {
        self.nic.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> MiniportConfig {
        self.cfg
    }

    /// `MiniportHaltEx`: stop worker threads, delete every SA (keys zeroized) and refuse
    /// further requests (`NDIS_STATUS_ADAPTER_NOT_READY`; sends complete with that status).
    #[doc(alias = "MiniportHaltEx")]
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.stop();
        let mut ctl = lock(&self.control);
        let nic = self.nic();
        for h in ctl.sas.drain() {
            let _ = nic.delete_sa(SaHandle(h));
        }
        ctl.parsers.clear();
    }

    /// True after [`VirtualMiniport::halt`].
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// The handles of every programmed SA (bundle), in slot order.
    pub fn sa_handles(&self) -> Vec<OffloadHandle> {
        let mut v: Vec<OffloadHandle> = lock(&self.control)
            .sas
            .iter()
            .map(|h| OffloadHandle(*h))
            .collect();
        v.sort_unstable();
        v
    }

    /// NIC-wide counters.
    pub fn nic_stats(&self) -> NicStats {
        self.nic().stats()
    }

    /// Counters of the SA named by `handle` (`None` if unknown or deleted).
    pub fn sa_stats(&self, handle: OffloadHandle) -> Option<SaStats> {
        self.nic().sa_stats(sa_handle(handle))
    }

    /// Key-free description of the SA named by `handle`.
    pub fn sa_info(&self, handle: OffloadHandle) -> Option<SaInfo> {
        self.nic().sa_info(sa_handle(handle))
    }

    /// `(inbound, outbound)` SAs programmed.
    pub fn sa_count(&self) -> (usize, usize) {
        self.nic().sa_count()
    }

    /// The NIC's text dump (one line per SA and the counters; never keys).
    pub fn dump(&self) -> String {
        self.nic().dump()
    }

    /// The UDP-ESP parser entries.
    pub fn parser_entries(&self) -> Vec<ParserEntry> {
        lock(&self.control).parsers.clone()
    }

    /// The current offload configuration (what `OID_TCP_OFFLOAD_CURRENT_CONFIG` answers).
    pub fn current_config(&self) -> OffloadCapabilities {
        lock(&self.control).offload.current()
    }

    /// The hardware capabilities (what `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES` answers).
    pub fn hardware_capabilities(&self) -> OffloadCapabilities {
        OffloadState::hardware(lock(&self.control).offload.capacity)
    }

    /// Program the NIC and record the handle.
    fn nic_add(&self, ctl: &mut Control, spec: nicsim::SaSpec) -> Result<SaHandle, OidError> {
        // Checked under the control lock, so nothing is added after `halt` emptied the table.
        if self.is_halted() {
            return Err(OidError {
                status: NdisStatus::ADAPTER_NOT_READY,
                bytes_needed: 0,
                reason: "the miniport is halted",
            });
        }
        let h = self.nic().add_sa(spec).map_err(add_error)?;
        ctl.sas.insert(h.raw());
        Ok(h)
    }

    /// Delete from the NIC and forget the handle.
    fn nic_delete(&self, ctl: &mut Control, h: SaHandle) -> Result<SaStats, TableError> {
        let r = self.nic().delete_sa(h);
        ctl.sas.remove(&h.raw());
        r
    }

    // ---- OID dispatch ----

    fn dispatch(&self, req: &mut OidRequest<'_>) -> Result<NdisStatus, OidError> {
        let Some((query_ok, set_ok)) = oid_kind(req.oid) else {
            return Err(OidError::invalid_oid());
        };
        match req.request_type {
            RequestType::QueryInformation if query_ok => self.query(req),
            RequestType::SetInformation if set_ok => self.set(req),
            _ => Err(OidError::not_supported(
                "this OID does not support this request type",
            )),
        }
    }

    fn query(&self, req: &mut OidRequest<'_>) -> Result<NdisStatus, OidError> {
        let state = lock(&self.control).offload;
        let answer = match req.oid {
            Oid::TCP_TASK_OFFLOAD => state.task_list(true).to_bytes(),
            Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES => {
                OffloadState::hardware(state.capacity).to_bytes()
            }
            _ => state.current().to_bytes(),
        };
        let status = complete_query(req, &answer);
        if status == NdisStatus::SUCCESS {
            Ok(status)
        } else {
            Err(OidError::buffer_too_short(
                answer.len(),
                "query buffer shorter than the answer",
            ))
        }
    }

    fn set(&self, req: &mut OidRequest<'_>) -> Result<NdisStatus, OidError> {
        let len = u32::try_from(req.information_buffer.len()).unwrap_or(u32::MAX);
        let order = self.cfg.key_order;
        let buf = &mut *req.information_buffer;
        let status = match req.oid {
            Oid::TCP_TASK_IPSEC_ADD_SA => {
                let r = AddSaRequest::parse(buf, order)?;
                self.add_sa_v1(buf, &r)?
            }
            Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA => {
                let r = AddSaRequest::parse_udpesp(buf, order)?;
                self.add_sa_v1(buf, &r)?
            }
            Oid::TCP_TASK_IPSEC_DELETE_SA => {
                let r = oid::DeleteSaRequest::parse(buf)?;
                self.delete_sa(r.offload_handle, OffloadHandle::NULL)?
            }
            Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA => {
                let r = oid::DeleteUdpEspSaRequest::parse(buf)?;
                self.delete_sa(r.offload_handle, r.parser_entry)?
            }
            Oid::TCP_OFFLOAD_PARAMETERS => {
                let p = OffloadParameters::parse(buf)?;
                self.set_offload_parameters(&p)
            }
            Oid::TCP_TASK_OFFLOAD => {
                let t = TaskOffloadList::parse(buf)?;
                self.set_task_offload(&t)?
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA => {
                let r = oid::v2::AddSaV2Request::parse(buf)?;
                self.add_sa_v2_list(buf, &r.entries)?
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX => {
                let r = oid::v2::AddSaExV2Request::parse(buf)?;
                let mut ctl = lock(&self.control);
                let h = self.add_one_v2(&mut ctl, &r.sa)?;
                if let Err(e) =
                    oid::v2::AddSaExV2Request::write_offload_handle(buf, offload_handle(h))
                {
                    let _ = self.nic_delete(&mut ctl, h);
                    return Err(e);
                }
                NdisStatus::SUCCESS
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA => {
                let r = oid::v2::DeleteSaV2Request::parse(buf)?;
                self.delete_sa_v2(&r.offload_handles)?
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA => {
                let r = oid::v2::UpdateSaV2Request::parse(buf)?;
                self.update_sa_v2(&r)?
            }
            _ => return Err(OidError::invalid_oid()),
        };
        req.bytes_read = len;
        req.bytes_needed = 0;
        Ok(status)
    }

    fn add_sa_v1(&self, buf: &mut [u8], r: &AddSaRequest) -> Result<NdisStatus, OidError> {
        let mut ctl = lock(&self.control);
        ctl.offload.check_bundle(Version::V1, &r.sas)?;
        let sreq = SaRequest::from_v1(r);
        let spec = sreq.to_spec()?;
        let parser = match (r.udp_esp, sreq.udp) {
            (Some(u), Some((entry, _))) => {
                Some((ctl.resolve_parser(u.parser_entry, entry)?, entry))
            }
            _ => None,
        };
        let h = self.nic_add(&mut ctl, spec)?;
        if let Err(e) = AddSaRequest::write_offload_handle(buf, offload_handle(h)) {
            let _ = self.nic_delete(&mut ctl, h);
            return Err(e);
        }
        if let Some((existing, entry)) = parser {
            let ph = ctl.take_parser_ref(existing, entry);
            if let Err(e) = write_offload_handle_at(buf, UDPESP_PARSER_HANDLE_OFFSET, ph) {
                ctl.release_parser(ph);
                let _ = self.nic_delete(&mut ctl, h);
                return Err(e);
            }
        }
        Ok(NdisStatus::SUCCESS)
    }

    fn delete_sa(&self, sa: OffloadHandle, parser: OffloadHandle) -> Result<NdisStatus, OidError> {
        let mut ctl = lock(&self.control);
        if !parser.is_null() && ctl.parser(parser).is_none() {
            return Err(OidError::invalid_data(
                "EncapTypeEntryOffldHandle names no parser entry",
            ));
        }
        if sa.is_null() {
            return Err(OidError::invalid_data("OffloadHandle is NULL"));
        }
        self.nic_delete(&mut ctl, sa_handle(sa))
            .map_err(|_| OidError::invalid_data("OffloadHandle names no SA"))?;
        if !parser.is_null() {
            ctl.release_parser(parser);
        }
        Ok(NdisStatus::SUCCESS)
    }

    fn v2_request<'a>(&self, sa: &'a V2AddSa) -> SaRequest<'a> {
        let (tunnel, udp_mode) =
            match sa.udp_esp {
                V2UdpEspEncapsulation::None => (false, false),
                V2UdpEspEncapsulation::Transport
                | V2UdpEspEncapsulation::UdpEspTransportOverTunnel => (false, true),
                V2UdpEspEncapsulation::Tunnel
                | V2UdpEspEncapsulation::TransportOverUdpEspTunnel => (true, true),
            };
        let inbound = sa.direction == oid::Direction::Inbound;
        let (local, remote) = if inbound {
            (sa.dest, sa.src)
        } else {
            (sa.src, sa.dest)
        };
        let wildcard = |a: IpAddr| (!a.is_unspecified()).then_some(a);
        SaRequest {
            direction: sa.direction,
            sas: &sa.sas,
            tunnel: tunnel.then_some((local, remote)),
            dst: wildcard(sa.dest),
            src: wildcard(sa.src),
            udp: udp_mode.then_some((
                EncapEntry {
                    encap_type: EncapType::Ike,
                    port: V2_UDP_ESP_PORT,
                },
                UdpEncap {
                    local_port: V2_UDP_ESP_PORT,
                    remote_port: V2_UDP_ESP_PORT,
                },
            )),
        }
    }

    fn add_one_v2(&self, ctl: &mut Control, sa: &V2AddSa) -> Result<SaHandle, OidError> {
        ctl.offload.check_bundle(Version::V2, &sa.sas)?;
        if matches!(
            sa.udp_esp,
            V2UdpEspEncapsulation::TransportOverUdpEspTunnel
                | V2UdpEspEncapsulation::UdpEspTransportOverTunnel
        ) {
            return Err(OidError::not_supported(
                "nested UDP-ESP encapsulations are not advertised",
            ));
        }
        if sa.sas.esp().is_none() && sa.udp_esp != V2UdpEspEncapsulation::None {
            return Err(OidError::invalid_data("UDP-ESP encapsulation without ESP"));
        }
        let spec = self.v2_request(sa).to_spec()?;
        self.nic_add(ctl, spec)
    }

    fn add_sa_v2_list(&self, buf: &mut [u8], entries: &[V2AddSa]) -> Result<NdisStatus, OidError> {
        let mut ctl = lock(&self.control);
        let mut handles = Vec::with_capacity(entries.len());
        let mut first_error = None;
        for e in entries {
            match self.add_one_v2(&mut ctl, e) {
                Ok(h) => handles.push(offload_handle(h)),
                Err(err) => {
                    first_error.get_or_insert(err);
                    handles.push(OffloadHandle::NULL);
                }
            }
        }
        if let Err(e) = oid::v2::AddSaV2Request::write_offload_handles(buf, &handles) {
            for h in handles.iter().filter(|h| !h.is_null()) {
                let _ = self.nic_delete(&mut ctl, sa_handle(*h));
            }
            return Err(e);
        }
        match first_error {
            Some(e) if handles.iter().all(|h| h.is_null()) => Err(e),
            _ => Ok(NdisStatus::SUCCESS),
        }
    }

    fn delete_sa_v2(&self, handles: &[OffloadHandle]) -> Result<NdisStatus, OidError> {
        let mut ctl = lock(&self.control);
        // All or nothing: check every handle first.
        for h in handles {
            if h.is_null() || !ctl.sas.contains(&h.0) {
                return Err(OidError::invalid_data("OffloadHandle names no SA"));
            }
        }
        for h in handles {
            if ctl.sas.contains(&h.0) {
                let _ = self.nic_delete(&mut ctl, sa_handle(*h));
            }
        }
        Ok(NdisStatus::SUCCESS)
    }

    fn update_sa_v2(&self, r: &oid::v2::UpdateSaV2Request) -> Result<NdisStatus, OidError> {
        let _ctl = lock(&self.control);
        let nic = self.nic();
        let invalid = OidError {
            status: NdisStatus::INVALID_PARAMETER,
            bytes_needed: 0,
            reason: "unknown SA, or SA without ESN",
        };
        let info = nic.sa_info(sa_handle(r.offload_handle)).ok_or(invalid)?;
        let proto = match r.protocol {
            oid::SaProtocol::Esp => ipsec::Protocol::Esp,
            oid::SaProtocol::Ah => ipsec::Protocol::Ah,
        };
        if !info
            .sas
            .iter()
            .any(|s| s.protocol == proto && s.spi == r.spi && s.esn)
        {
            return Err(invalid);
        }
        match nic.set_esn_high(sa_handle(r.offload_handle), r.sequence_number_high_order) {
            Ok(()) => Ok(NdisStatus::SUCCESS),
            Err(TableError::NotFound | TableError::NotApplicable) => Err(invalid),
            Err(_) => Err(invalid),
        }
    }

    fn set_offload_parameters(&self, p: &OffloadParameters) -> NdisStatus {
        let mut ctl = lock(&self.control);
        let before = ctl.offload;
        ctl.offload.v1 = ctl.offload.v1.apply(p.ipsec_v1);
        if let Some(v2) = p.ipsec_v2 {
            // The NIC does not distinguish IPv4-only from IPv4+IPv6: `IPsecV2` wins when it
            // says something, else `IPsecV2IPv4` applies.
            let s = if v2.all == oid::IpsecOffloadSetting::NoChange {
                v2.ipv4
            } else {
                v2.all
            };
            ctl.offload.v2 = ctl.offload.v2.apply(s);
        }
        let after = ctl.offload;
        drop(ctl);
        if after != before {
            self.indicate_config(&after);
        }
        NdisStatus::SUCCESS
    }

    fn set_task_offload(&self, t: &TaskOffloadList) -> Result<NdisStatus, OidError> {
        let requested = match t.ipsec() {
            None => None,
            Some(r) => Some(r?),
        };
        let mut ctl = lock(&self.control);
        let before = ctl.offload;
        let v1 = match requested {
            None => Enabled::NONE,
            Some(req) => {
                let hw = OffloadState::v1_caps(Enabled::ALL).to_task_ipsec();
                let want = req.to_task_ipsec();
                if want.V4AH & !hw.V4AH != 0
                    || want.V4ESP & !hw.V4ESP != 0
                    || (want.Supported.AH_ESP_COMBINED != 0 && hw.Supported.AH_ESP_COMBINED == 0)
                    || (want.Supported.TRANSPORT_TUNNEL_COMBINED != 0
                        && hw.Supported.TRANSPORT_TUNNEL_COMBINED == 0)
                    || (want.Supported.V4_OPTIONS != 0 && hw.Supported.V4_OPTIONS == 0)
                {
                    return Err(OidError::not_supported(
                        "task offload requests a capability the NIC lacks",
                    ));
                }
                Enabled {
                    ah: want.V4AH != 0,
                    esp: want.V4ESP != 0,
                }
            }
        };
        ctl.offload.v1 = v1;
        let after = ctl.offload;
        drop(ctl);
        if after != before {
            self.indicate_config(&after);
        }
        Ok(NdisStatus::SUCCESS)
    }

    fn indicate_config(&self, state: &OffloadState) {
        if let Some(p) = self.protocol() {
            let bytes = state.current().to_bytes();
            p.status_indication(&StatusIndication {
                status: NdisStatus::TASK_OFFLOAD_CURRENT_CONFIG,
                buffer: &bytes,
            });
        }
    }

    // ---- modes ----

    /// Stepping mode: drive the NIC at virtual time `now` in the caller's thread (transmit
    /// what is queued, receive one batch), then complete sends and indicate received frames
    /// to the bound protocol. Returns the number of frames the NIC processed.
    pub fn poll(&self, now: Duration) -> usize {
        let n = self.nic().poll(now);
        self.service();
        n
    }

    /// Deliver whatever the NIC has finished (send completions, received frames) to the bound
    /// protocol, in the caller's thread.
    pub fn service(&self) -> usize {
        self.data.deliver(self)
    }

    /// Set the virtual time the NIC's worker threads use.
    pub fn set_now(&self, now: Duration) {
        self.nic().set_now(now);
    }

    /// Threaded mode: start the NIC's worker threads and a service thread that completes sends
    /// and indicates received frames. Idempotent.
    ///
    /// # Errors
    /// The OS refused to spawn a thread.
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        let mut svc = lock(&self.service);
        if svc.is_some() {
            return Ok(());
        }
        self.nic
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak: Weak<Self> = Arc::downgrade(self);
        let flag = Arc::clone(&stop);
        let t = std::thread::Builder::new()
            .name("miniport-service".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let Some(m) = weak.upgrade() else { return };
                    let n = m.service();
                    drop(m);
                    if n == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                }
            })?;
        *svc = Some((stop, t));
        Ok(())
    }

    /// Stop the threads of [`VirtualMiniport::start`] (queued frames stay queued; `poll` can
    /// drain them).
    pub fn stop(&self) {
        let taken = lock(&self.service).take();
        if let Some((flag, t)) = taken {
            flag.store(true, Ordering::Relaxed);
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        self.nic
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
    }
}

impl oid::Miniport for VirtualMiniport {
    fn oid_request(&self, req: &mut OidRequest<'_>) -> NdisStatus {
        if self.is_halted() {
            req.bytes_read = 0;
            req.bytes_written = 0;
            return NdisStatus::ADAPTER_NOT_READY;
        }
        match self.dispatch(req) {
            Ok(s) => s,
            Err(e) => e.apply(req),
        }
    }

    fn send_net_buffer_lists(&self, nbls: &mut Vec<oid::Nbl>) {
        self.data.send(self, nbls);
    }

    fn return_net_buffer_lists(&self, nbls: &mut Vec<oid::Nbl>) {
        self.data.give_back(self, nbls);
    }
}

impl Drop for VirtualMiniport {
    fn drop(&mut self) {
        let taken = self
            .service
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((flag, t)) = taken {
            flag.store(true, Ordering::Relaxed);
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
