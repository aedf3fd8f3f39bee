//! Fuzz harnesses for the IPsec offload emulator, in plain Rust (no libFuzzer here).
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name with libFuzzer's input;
//! `tests/fuzz_regressions.rs` (root package) includes this file with `#[path]` and replays
//! the committed seeds and every input under `fuzz/regressions/<target>/` through the same
//! functions, and its ignored test `generate_seed_corpus` writes [`seeds`] to `fuzz/corpus/`.
//!
//! The functions return normally for every input; they panic only when a property fails:
//!
//! - [`oid_set_info`]: any OID (IPsec ones or an arbitrary code) with any information buffer,
//!   as a set or a query: a failing status leaves the SA table and the UDP-ESP parser entries
//!   unchanged and reads no bytes; `INVALID_LENGTH` / `BUFFER_TOO_SHORT` come with
//!   `bytes_needed`; a query never changes the table.
//! - [`oid_parsers`]: every `oid` parser; a successful parse emits and parses back equal.
//! - [`nic_rx_frame`]: a NIC holding inbound SAs of every algorithm receives the frame: every
//!   frame lands in exactly one receive counter bucket and a processed frame names its SA.
//! - [`ipsec_inbound`]: `classify`, `Bundle::unprotect` and `Bundle::decapsulate` of every
//!   algorithm return (an error or a result inside the buffer).
//! - [`replay_model`]: [`ipsec::ReplayWindow`] agrees with [`ReplayModel`].
#![forbid(unsafe_code)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;
use core::time::Duration;
use std::collections::BTreeSet;
use std::sync::Arc;

use ipsec::{
    Bundle, BundleSeq, Encryption, Integrity, Key, Mode, ProviderKind, ReplayError, ReplayWindow,
    SaParams,
};
use miniport::{MiniportConfig, NicConfig, VirtualMiniport};
use nicsim::{
    CryptoStatus, EncapEntry, EncapType, Frame, MemWire, Nic, NicStats, SaSpec, TableConfig,
};
use oid::v2::{
    AddSaExV2Request, AddSaV2Request, DeleteSaV2Request, UpdateSaV2Request, V2AddSa,
    V2UdpEspEncapsulation,
};
use oid::{
    AddSaRequest, ConfAlgorithm, DeleteSaRequest, DeleteUdpEspSaRequest, Direction, EspSa,
    IntegrityAlgorithm, IpsecOffloadSetting, IpsecReceiveInfo, IpsecSendInfo, IpsecV2Settings,
    KeyOrder, Miniport, Nbl, NdisStatus, OffloadCapabilities, OffloadHandle, OffloadParameters,
    Oid, OidRequest, Protocol, SaBundle, SaOptions, SaProtocol, SecretKey, Selector,
    StatusIndication, TaskOffloadList, TunnelEndpoints, UdpEncapType, UdpEspEncap,
};

// ---- input reader ----

/// Reads a fuzz input front to back; past the end every read yields zero.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn rest(self) -> &'a [u8] {
        self.data
    }
}

// ---- addresses ----

/// Host A (sender) in the documentation range.
pub const HOST_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Host B (receiver, the NIC under test) in the documentation range.
pub const HOST_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// A's tunnel endpoint.
pub const TUNNEL_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// B's tunnel endpoint.
pub const TUNNEL_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// A's IPv6 address.
pub const HOST_A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// B's IPv6 address.
pub const HOST_B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

// ---- OID side ----

/// The IPsec set OIDs of the miniport.
pub const SET_OIDS: [Oid; 10] = [
    Oid::TCP_TASK_OFFLOAD,
    Oid::TCP_TASK_IPSEC_ADD_SA,
    Oid::TCP_TASK_IPSEC_DELETE_SA,
    Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA,
    Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA,
    Oid::TCP_OFFLOAD_PARAMETERS,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA,
];

/// The query OIDs of the miniport.
pub const QUERY_OIDS: [Oid; 3] = [
    Oid::TCP_TASK_OFFLOAD,
    Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES,
    Oid::TCP_OFFLOAD_CURRENT_CONFIG,
];

/// A protocol driver that drops everything it is given (the harness only looks at the NIC).
#[derive(Debug, Default)]
pub struct NullProtocol;

impl Protocol for NullProtocol {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        nbls.clear();
    }
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        nbls.clear();
    }
    fn status_indication(&self, _indication: &StatusIndication<'_>) {}
}

/// Miniport configuration with a small table (`capacity` SAs per direction), RustCrypto.
pub fn miniport_config(capacity: usize) -> MiniportConfig {
    MiniportConfig {
        nic: NicConfig {
            table: TableConfig {
                inbound_capacity: capacity,
                outbound_capacity: capacity,
                ..TableConfig::default()
            },
            provider: ProviderKind::RustCrypto,
            ..NicConfig::default()
        },
        ..MiniportConfig::default()
    }
}

fn secret(len: usize, seed: u8) -> SecretKey {
    SecretKey::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
}

/// An ESP SA for OID requests, keys derived from `seed`.
pub fn oid_esp(
    spi: u32,
    cipher: ConfAlgorithm,
    integrity: IntegrityAlgorithm,
    seed: u8,
) -> SaBundle {
    SaBundle::Esp(EspSa {
        spi,
        cipher,
        cipher_key: secret(cipher.key_len(), seed),
        integrity,
        integrity_key: secret(integrity.key_len(), seed.wrapping_add(100)),
        options: SaOptions::default(),
    })
}

/// A v1 transport ADD_SA from A to B.
pub fn oid_add_request(direction: Direction, sas: SaBundle) -> AddSaRequest {
    AddSaRequest {
        selector: Selector {
            src_addr: HOST_A,
            src_mask: Ipv4Addr::BROADCAST,
            dest_addr: HOST_B,
            dest_mask: Ipv4Addr::BROADCAST,
            ..Selector::ANY
        },
        tunnel: None,
        direction,
        sas,
        udp_esp: None,
    }
}

/// A v2 record from A to B.
pub fn oid_v2_entry(direction: Direction, sas: SaBundle) -> V2AddSa {
    V2AddSa {
        direction,
        src: IpAddr::V4(HOST_A),
        dest: IpAddr::V4(HOST_B),
        udp_esp: V2UdpEspEncapsulation::None,
        sas,
    }
}

/// Issue one OID request; returns (status, bytes read, bytes written, bytes needed).
pub fn oid_request(m: &dyn Miniport, oid: Oid, query: bool, buf: &mut [u8]) -> [u32; 4] {
    let mut r = if query {
        OidRequest::query(oid, buf)
    } else {
        OidRequest::set(oid, buf)
    };
    let status = m.oid_request(&mut r);
    [status.0, r.bytes_read, r.bytes_written, r.bytes_needed]
}

/// The SA table part of the miniport's dump (the `nic` counter line counts refusals too).
pub fn table_dump(m: &VirtualMiniport) -> String {
    m.dump()
        .lines()
        .filter(|l| !l.starts_with("nic "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A miniport with one inbound v1 SA and one UDP-ESP SA programmed, and their handles.
fn programmed_miniport() -> (VirtualMiniport, MemWire, Vec<u64>) {
    let (w, peer) = MemWire::pair();
    let m = VirtualMiniport::initialize(miniport_config(4), w);
    m.bind(Arc::new(NullProtocol));
    let mut handles = Vec::new();
    let req = oid_add_request(
        Direction::Inbound,
        oid_esp(
            0xD000,
            ConfAlgorithm::AesGcm128,
            IntegrityAlgorithm::None,
            1,
        ),
    );
    let mut udp = oid_add_request(
        Direction::Inbound,
        oid_esp(
            0xD001,
            ConfAlgorithm::AesCbc128,
            IntegrityAlgorithm::Sha1,
            2,
        ),
    );
    udp.udp_esp = Some(UdpEspEncap {
        encap_type: UdpEncapType::Other,
        dst_port: 4500,
        parser_entry: OffloadHandle::NULL,
    });
    for r in [req, udp] {
        if let Ok(mut buf) = r.to_bytes(KeyOrder::ConfidentialityFirst) {
            let mut q = OidRequest::set(r.oid(), &mut buf);
            if m.oid_request(&mut q) == NdisStatus::SUCCESS {
                if let Some(h) = AddSaRequest::read_offload_handle(&buf) {
                    handles.push(h.0);
                }
                if buf.len() >= miniport::UDPESP_PARSER_HANDLE_OFFSET + 8 && r.udp_esp.is_some() {
                    let at = miniport::UDPESP_PARSER_HANDLE_OFFSET;
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[at..at + 8]);
                    handles.push(u64::from_ne_bytes(b));
                }
            }
        }
    }
    (m, peer, handles)
}

/// Fuzz target `oid_set_info`.
///
/// Input: selector byte (OID: `SET_OIDS`/`QUERY_OIDS` index, else the next 4 bytes as an
/// arbitrary OID code), flags byte (bit 0 query, bit 1 patch a live handle at the offset given
/// by the next byte), then the information buffer.
pub fn oid_set_info(data: &[u8]) {
    let mut inp = Input { data };
    let sel = inp.u8();
    let flags = inp.u8();
    let all: Vec<Oid> = SET_OIDS.iter().chain(QUERY_OIDS.iter()).copied().collect();
    let oid = match all.get(usize::from(sel) % (all.len() + 1)) {
        Some(o) => *o,
        None => Oid(inp.u32()),
    };
    let query = flags & 1 != 0;
    let patch_at = usize::from(inp.u8());
    let mut buf = inp.rest().to_vec();
    let (m, _peer, handles) = programmed_miniport();
    if flags & 2 != 0 && !handles.is_empty() {
        let h = handles[usize::from(flags >> 2) % handles.len()];
        if let Some(dst) = buf.get_mut(patch_at..patch_at + 8) {
            dst.copy_from_slice(&h.to_ne_bytes());
        }
    }
    let len = buf.len();
    let before = (table_dump(&m), m.sa_count(), m.parser_entries());
    let [status, read, written, needed] = oid_request(&m, oid, query, &mut buf);
    let status = NdisStatus(status);
    let after = (table_dump(&m), m.sa_count(), m.parser_entries());
    if status != NdisStatus::SUCCESS {
        assert_eq!(
            before, after,
            "{oid:?} failed with {status:?} but changed the NIC"
        );
        assert_eq!(read, 0, "{oid:?} failed with {status:?} but read bytes");
        assert_eq!(written, 0, "{oid:?} failed with {status:?} but wrote bytes");
    } else if query {
        assert_eq!(before, after, "a query changed the NIC");
        assert!(written as usize <= len, "query wrote past the buffer");
    } else {
        assert_eq!(read as usize, len, "successful set reads the whole buffer");
    }
    if status == NdisStatus::INVALID_LENGTH || status == NdisStatus::BUFFER_TOO_SHORT {
        assert!(needed > 0, "{oid:?}: {status:?} without bytes_needed");
    }
}

fn round_trip<T: PartialEq + core::fmt::Debug>(
    what: &str,
    parsed: &T,
    emitted: Result<Vec<u8>, oid::OidError>,
    parse: impl Fn(&[u8]) -> Result<T, oid::OidError>,
) {
    match emitted {
        Ok(bytes) => match parse(&bytes) {
            Ok(again) => assert_eq!(&again, parsed, "{what}: parse(emit(x)) != x"),
            Err(e) => panic!("{what}: emitted bytes do not parse: {e:?}"),
        },
        Err(e) => panic!("{what}: a parsed value does not emit: {e:?}"),
    }
}

fn check_error(what: &str, e: &oid::OidError) {
    if e.status == NdisStatus::INVALID_LENGTH || e.status == NdisStatus::BUFFER_TOO_SHORT {
        assert!(e.bytes_needed > 0, "{what}: {e:?} without bytes_needed");
    }
}

/// Fuzz target `oid_parsers`: the same bytes into every `oid` parser, with emit∘parse round
/// trips (the first byte picks the v1 key order and is part of the buffer too).
pub fn oid_parsers(data: &[u8]) {
    let order = if data.first().is_some_and(|b| b & 0x80 != 0) {
        KeyOrder::IntegrityFirst
    } else {
        KeyOrder::ConfidentialityFirst
    };
    macro_rules! each {
        ($what:expr, $parse:expr, $emit:expr) => {
            match $parse(data) {
                Ok(v) => round_trip($what, &v, $emit(&v), $parse),
                Err(e) => check_error($what, &e),
            }
        };
    }
    each!(
        "AddSaRequest",
        |b: &[u8]| AddSaRequest::parse(b, order),
        |v: &AddSaRequest| v.to_bytes(order)
    );
    each!(
        "AddSaRequest(UDPESP)",
        |b: &[u8]| AddSaRequest::parse_udpesp(b, order),
        |v: &AddSaRequest| v.to_bytes(order)
    );
    each!(
        "DeleteSaRequest",
        DeleteSaRequest::parse,
        |v: &DeleteSaRequest| Ok(v.to_bytes().to_vec())
    );
    each!(
        "DeleteUdpEspSaRequest",
        DeleteUdpEspSaRequest::parse,
        |v: &DeleteUdpEspSaRequest| Ok(v.to_bytes().to_vec())
    );
    each!(
        "AddSaV2Request",
        AddSaV2Request::parse,
        |v: &AddSaV2Request| v.to_bytes()
    );
    each!(
        "AddSaExV2Request",
        AddSaExV2Request::parse,
        |v: &AddSaExV2Request| v.to_bytes()
    );
    each!(
        "DeleteSaV2Request",
        DeleteSaV2Request::parse,
        |v: &DeleteSaV2Request| v.to_bytes()
    );
    each!(
        "UpdateSaV2Request",
        UpdateSaV2Request::parse,
        |v: &UpdateSaV2Request| Ok(v.to_bytes().to_vec())
    );
    each!(
        "OffloadCapabilities",
        OffloadCapabilities::parse,
        |v: &OffloadCapabilities| Ok(v.to_bytes())
    );
    each!(
        "OffloadParameters",
        OffloadParameters::parse,
        |v: &OffloadParameters| Ok(v.to_bytes().to_vec())
    );
    each!(
        "TaskOffloadList",
        TaskOffloadList::parse,
        |v: &TaskOffloadList| Ok(v.to_bytes())
    );
    each!(
        "IpsecSendInfo(NDIS 5)",
        IpsecSendInfo::from_ndis5_bytes,
        |v: &IpsecSendInfo| Ok(v.to_ndis5_bytes().to_vec())
    );
    each!(
        "IpsecSendInfo(v1)",
        IpsecSendInfo::from_v1_nbl_bytes,
        |v: &IpsecSendInfo| Ok(v.to_v1_nbl_bytes().to_vec())
    );
    each!(
        "IpsecReceiveInfo(NDIS 5)",
        IpsecReceiveInfo::from_ndis5_bytes,
        |v: &IpsecReceiveInfo| Ok(v.to_ndis5_bytes().to_vec())
    );
    each!(
        "IpsecReceiveInfo(v1)",
        IpsecReceiveInfo::from_v1_nbl_bytes,
        |v: &IpsecReceiveInfo| Ok(v.to_v1_nbl_bytes().to_vec())
    );
    each!(
        "IpsecReceiveInfo(v2)",
        IpsecReceiveInfo::from_v2_nbl_bytes,
        |v: &IpsecReceiveInfo| Ok(v.to_v2_nbl_bytes().to_vec())
    );
    // The v2 send info spans two NBL info slots: split the input.
    let mid = data.len() / 2;
    let (s1, s11) = data.split_at(mid);
    match IpsecSendInfo::from_v2_nbl_bytes(s1, s11) {
        Ok(v) => {
            let (a, b) = v.to_v2_nbl_bytes();
            match IpsecSendInfo::from_v2_nbl_bytes(&a, &b) {
                Ok(again) => assert_eq!(again, v, "IpsecSendInfo(v2) round trip"),
                Err(e) => panic!("IpsecSendInfo(v2): emitted bytes do not parse: {e:?}"),
            }
        }
        Err(e) => check_error("IpsecSendInfo(v2)", &e),
    }
    // Every set OID through the generic dispatcher.
    for oid in SET_OIDS {
        match oid::SetRequest::parse(oid, data, order) {
            Ok(v) => round_trip("SetRequest", &v, v.to_bytes(order), |b| {
                oid::SetRequest::parse(oid, b, order)
            }),
            Err(e) => check_error("SetRequest", &e),
        }
    }
}

// ---- data path side ----

fn key(len: usize, seed: u8) -> Key {
    let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
    Key::new(&bytes)
}

/// One SA's parameters as the receiving host B sees them (inbound), keys from `seed`.
pub fn sa_params(
    protocol: ipsec::Protocol,
    encryption: Encryption,
    integrity: Integrity,
    spi: u32,
    seed: u8,
) -> SaParams {
    SaParams {
        spi,
        protocol,
        mode: Mode::Transport,
        encryption,
        encryption_key: key(encryption.key_len(), seed),
        integrity,
        integrity_key: key(integrity.key_len(), seed.wrapping_add(1)),
        esn: false,
        tunnel: None,
        udp_encap: None,
    }
}

/// The same SA seen from the other end (tunnel endpoints and UDP ports swapped).
pub fn peer_view(p: &SaParams) -> SaParams {
    let mut q = p.clone();
    q.tunnel = p.tunnel.map(|t| ipsec::TunnelEndpoints {
        local: t.remote,
        remote: t.local,
    });
    q.udp_encap = p.udp_encap.map(|u| ipsec::UdpEncap {
        local_port: u.remote_port,
        remote_port: u.local_port,
    });
    q
}

/// One inbound SA bundle of the fuzzed NIC and how the sender frames packets for it.
#[derive(Debug, Clone)]
pub struct RxCase {
    /// Short name (seed file names).
    pub name: &'static str,
    /// Receiver-side parameters (innermost first, as `Bundle::new` takes them).
    pub sas: Vec<SaParams>,
    /// Selector destination of the inbound SA (None for tunnel SAs).
    pub dst: Option<IpAddr>,
    /// UDP-ESP parser entry.
    pub udp_encap: Option<EncapEntry>,
    /// IPv6 inner packet instead of IPv4.
    pub ipv6: bool,
}

/// Inbound SAs of every algorithm and framing: ESP GCM/GMAC/CBC+HMAC/NULL+HMAC, AH, ESP+AH,
/// tunnel, UDP-encapsulated, ESN, IPv6. SPIs are distinct.
pub fn rx_cases() -> Vec<RxCase> {
    use Encryption as E;
    use Integrity as I;
    use ipsec::Protocol::{Ah, Esp};
    let b = Some(IpAddr::V4(HOST_B));
    let one = |name, p, e, i, spi, seed| RxCase {
        name,
        sas: vec![sa_params(p, e, i, spi, seed)],
        dst: b,
        udp_encap: None,
        ipv6: false,
    };
    let mut v = vec![
        one("esp-gcm128", Esp, E::AesGcm128, I::None, 0x1001, 1),
        one("esp-gcm256", Esp, E::AesGcm256, I::None, 0x1002, 2),
        one("esp-gmac128", Esp, E::None, I::AesGmac128, 0x1003, 3),
        one(
            "esp-cbc128-sha1",
            Esp,
            E::AesCbc128,
            I::HmacSha1_96,
            0x1004,
            4,
        ),
        one(
            "esp-cbc256-sha256",
            Esp,
            E::AesCbc256,
            I::HmacSha256_128,
            0x1005,
            5,
        ),
        one(
            "esp-null-sha256",
            Esp,
            E::Null,
            I::HmacSha256_128,
            0x1006,
            6,
        ),
        one("ah-sha1", Ah, E::None, I::HmacSha1_96, 0x1007, 7),
        one("ah-gmac128", Ah, E::None, I::AesGmac128, 0x1008, 8),
    ];
    v.push(RxCase {
        name: "esp-then-ah",
        sas: vec![
            sa_params(Esp, E::AesCbc128, I::HmacSha1_96, 0x1009, 9),
            sa_params(Ah, E::None, I::HmacSha256_128, 0x100A, 10),
        ],
        dst: b,
        udp_encap: None,
        ipv6: false,
    });
    let mut tun = sa_params(Esp, E::AesGcm128, I::None, 0x100B, 11);
    tun.mode = Mode::Tunnel;
    tun.tunnel = Some(ipsec::TunnelEndpoints {
        local: IpAddr::V4(TUNNEL_B),
        remote: IpAddr::V4(TUNNEL_A),
    });
    v.push(RxCase {
        name: "esp-tunnel",
        sas: vec![tun],
        dst: None,
        udp_encap: None,
        ipv6: false,
    });
    let mut udp = sa_params(Esp, E::AesGcm128, I::None, 0x100C, 12);
    udp.udp_encap = Some(ipsec::UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    });
    v.push(RxCase {
        name: "esp-udp-encap",
        sas: vec![udp],
        dst: b,
        udp_encap: Some(EncapEntry {
            encap_type: EncapType::Other,
            port: 4500,
        }),
        ipv6: false,
    });
    let mut esn = sa_params(Esp, E::AesGcm128, I::None, 0x100D, 13);
    esn.esn = true;
    v.push(RxCase {
        name: "esp-esn",
        sas: vec![esn],
        dst: b,
        udp_encap: None,
        ipv6: false,
    });
    v.push(RxCase {
        name: "esp-gcm128-ipv6",
        sas: vec![sa_params(Esp, E::AesGcm128, I::None, 0x100E, 14)],
        dst: Some(IpAddr::V6(HOST_B6)),
        udp_encap: None,
        ipv6: true,
    });
    v
}

fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in h.chunks(2) {
        let hi = c.first().copied().unwrap_or(0);
        let lo = c.get(1).copied().unwrap_or(0);
        s += u32::from(u16::from_be_bytes([hi, lo]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A UDP packet from A to B (IPv4, or IPv6 with the 2001:db8:: addresses) carrying `payload`.
pub fn udp_packet(ipv6: bool, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&5000u16.to_be_bytes());
    udp.extend_from_slice(&5001u16.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut p = Vec::new();
    if ipv6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&HOST_A6.octets());
        p.extend_from_slice(&HOST_B6.octets());
    } else {
        let total = 20 + udp_len;
        p.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0]);
        if let Some(t) = p.get_mut(2..4) {
            t.copy_from_slice(&(total as u16).to_be_bytes());
        }
        p.extend_from_slice(&HOST_A.octets());
        p.extend_from_slice(&HOST_B.octets());
        let c = checksum(&p);
        if let Some(t) = p.get_mut(10..12) {
            t.copy_from_slice(&c.to_be_bytes());
        }
    }
    p.extend_from_slice(&udp);
    p
}

/// Headroom left in front of packets framed by [`protected_packet`].
pub const HEADROOM: usize = 128;

/// `inner` protected by the sender side of `case` with sequence number `seq`, in a buffer with
/// [`HEADROOM`] bytes of headroom: returns the buffer and the IP packet's range, or None if the
/// host API refuses (never for the cases of [`rx_cases`]).
pub fn protected_packet(case: &RxCase, seq: u64, inner: &[u8]) -> Option<(Vec<u8>, Range<usize>)> {
    let sender: Vec<SaParams> = case.sas.iter().map(peer_view).collect();
    let host = Bundle::new(&sender, ProviderKind::RustCrypto).ok()?;
    let mut buf = vec![0u8; HEADROOM + inner.len() + 256];
    buf.get_mut(HEADROOM..HEADROOM + inner.len())?
        .copy_from_slice(inner);
    let r = host
        .encapsulate(
            BundleSeq { esp: seq, ah: seq },
            &mut buf,
            HEADROOM..HEADROOM + inner.len(),
        )
        .ok()?;
    host.protect(
        buf.get_mut(r.clone())?,
        BundleSeq { esp: seq, ah: seq }.hi(),
    )
    .ok()?;
    Some((buf, r))
}

/// An Ethernet frame (B's MAC <- A's MAC) around an IP packet.
pub fn ethernet(packet: &[u8]) -> Vec<u8> {
    let et: u16 = if packet.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(packet);
    f
}

/// Payload of the packets the harness protects.
pub const MARKER: &[u8] = b"fuzz-harness-cleartext-marker";

/// A valid protected frame for `case` (sequence `seq`), or None.
pub fn valid_frame(case: &RxCase, seq: u64) -> Option<Vec<u8>> {
    let (buf, r) = protected_packet(case, seq, &udp_packet(case.ipv6, MARKER))?;
    Some(ethernet(buf.get(r)?))
}

/// A NIC (RustCrypto) holding every inbound SA of [`rx_cases`] (on one end of a [`MemWire`]).
pub fn rx_nic(cases: &[RxCase]) -> (Nic, MemWire) {
    let (w, peer) = MemWire::pair();
    let cfg = NicConfig {
        table: TableConfig {
            inbound_capacity: 32,
            outbound_capacity: 32,
            ..TableConfig::default()
        },
        provider: ProviderKind::RustCrypto,
        ..NicConfig::default()
    };
    let nic = Nic::new(cfg, w);
    for c in cases {
        let spec = SaSpec {
            direction: nicsim::Direction::Inbound,
            sas: c.sas.clone(),
            dst: c.dst,
            src: None,
            udp_encap: c.udp_encap,
        };
        // A refused SA shows up as a missing-SA receive; the property checks still apply.
        let _ = nic.add_sa(spec);
    }
    (nic, peer)
}

/// Sum of the receive outcome counters: every received frame lands in exactly one.
pub fn rx_outcomes(s: &NicStats) -> u64 {
    s.rx_clear
        + s.rx_unparsed
        + s.rx_no_sa
        + s.rx_ok
        + s.rx_transport_ah_auth_failed
        + s.rx_transport_esp_auth_failed
        + s.rx_tunnel_ah_auth_failed
        + s.rx_tunnel_esp_auth_failed
        + s.rx_invalid_syntax
        + s.rx_invalid_protocol
        + s.rx_generic_error
}

/// Sum of the transmit outcome counters except wire errors (counted after the engine).
pub fn tx_outcomes(s: &NicStats) -> u64 {
    s.tx_protected
        + s.tx_clear
        + s.tx_unknown_handle
        + s.tx_wrong_direction
        + s.tx_malformed
        + s.tx_crypto_error
}

/// Apply fuzz-chosen mutations to `bytes`: a truncation byte, then (position, xor) pairs.
fn mutate(bytes: &mut Vec<u8>, inp: &mut Input<'_>) {
    let cut = usize::from(inp.u8());
    if cut != 0 && cut < 64 {
        let keep = bytes.len().saturating_sub(cut);
        bytes.truncate(keep);
    }
    while !inp.data.is_empty() {
        let at = usize::from(inp.u16());
        let x = inp.u8();
        let n = bytes.len();
        if n == 0 {
            break;
        }
        if let Some(b) = bytes.get_mut(at % n) {
            *b ^= x;
        }
    }
}

/// The frame a `nic_rx_frame` / `ipsec_inbound` input describes.
///
/// Byte 0 even: the rest is the frame (packet) as is. Odd: byte 1 picks a case of
/// [`rx_cases`], bytes 2-5 the sequence number, then [`mutate`] instructions apply to a valid
/// protected frame. Returns the bytes and whether they are an unmutated valid frame's case.
fn frame_from_input(
    data: &[u8],
    cases: &[RxCase],
    with_ethernet: bool,
) -> (Vec<u8>, Option<usize>) {
    let mut inp = Input { data };
    let mode = inp.u8();
    if mode & 1 == 0 {
        return (inp.rest().to_vec(), None);
    }
    let idx = usize::from(inp.u8()) % cases.len().max(1);
    let seq = u64::from(inp.u32().max(1));
    let Some(case) = cases.get(idx) else {
        return (Vec::new(), None);
    };
    let bytes = if with_ethernet {
        valid_frame(case, seq)
    } else {
        protected_packet(case, seq, &udp_packet(case.ipv6, MARKER))
            .and_then(|(b, r)| b.get(r).map(<[u8]>::to_vec))
    };
    let Some(mut bytes) = bytes else {
        return (Vec::new(), None);
    };
    let pristine = inp.data.is_empty();
    mutate(&mut bytes, &mut inp);
    (bytes, pristine.then_some(idx))
}

/// Fuzz target `nic_rx_frame`: see [`frame_from_input`] for the input layout.
pub fn nic_rx_frame(data: &[u8]) {
    let cases = rx_cases();
    let (nic, _peer) = rx_nic(&cases);
    let (bytes, pristine) = frame_from_input(data, &cases, true);
    let before = nic.stats();
    let mut frame = Frame::from_bytes(&bytes, 64, 64);
    nic.process_rx(Duration::from_millis(1), core::slice::from_mut(&mut frame));
    let after = nic.stats();
    assert_eq!(after.rx_frames, before.rx_frames + 1, "frame not counted");
    assert_eq!(
        rx_outcomes(&after) - rx_outcomes(&before),
        1,
        "a received frame must land in exactly one outcome counter: {after:?}"
    );
    let rx = frame.rx;
    if rx.crypto_done {
        assert!(rx.sa.is_some(), "crypto_done without an SA");
    } else {
        assert_eq!(
            rx.status,
            CryptoStatus::Success,
            "a status without crypto_done"
        );
        assert!(!rx.next_crypto_done, "next_crypto_done without crypto_done");
    }
    if let Some(i) = pristine {
        assert!(
            rx.crypto_done && rx.status == CryptoStatus::Success,
            "a valid frame for {:?} was not accepted: {rx:?}",
            cases.get(i).map(|c| c.name)
        );
    }
}

/// Fuzz target `ipsec_inbound`: `classify`, `Bundle::unprotect` and `Bundle::decapsulate` of
/// the SA picked by byte 1 on the packet [`frame_from_input`] describes (no Ethernet header).
pub fn ipsec_inbound(data: &[u8]) {
    let cases = rx_cases();
    let (packet, pristine) = frame_from_input(data, &cases, false);
    let pick = usize::from(data.get(1).copied().unwrap_or(0)) % cases.len().max(1);
    let Some(case) = cases.get(pristine.unwrap_or(pick)) else {
        return;
    };
    let _ = ipsec::classify(&packet, &[4500]);
    let _ = ipsec::classify(&packet, &[]);
    let Ok(bundle) = Bundle::new(&case.sas, ProviderKind::RustCrypto) else {
        return;
    };
    let highest = BundleSeq::default();
    let mut a = packet.clone();
    let unprotected = bundle.unprotect(&mut a, highest);
    if let Ok(u) = &unprotected {
        assert!(u.payload.end <= a.len(), "unprotect payload out of bounds");
        let len = a.len();
        if let Ok(d) = bundle.decapsulate(&mut a, 0..len, highest) {
            assert!(d.packet.end <= len, "decapsulate result out of bounds");
        }
    }
    if pristine.is_some() {
        assert!(unprotected.is_ok(), "valid packet refused: {unprotected:?}");
    }
    let mut b = packet;
    let len = b.len();
    if let Ok(d) = bundle.decapsulate(&mut b, 0..len, highest) {
        assert!(d.packet.end <= len, "decapsulate result out of bounds");
    }
    let _ = bundle.inner_packet(&b);
}

// ---- replay ----

/// A naive anti-replay model: the set of accepted numbers and the highest one.
#[derive(Debug, Clone)]
pub struct ReplayModel {
    size: u64,
    highest: u64,
    seen: BTreeSet<u64>,
}

impl ReplayModel {
    /// A model of a window of `size` numbers.
    pub fn new(size: u32) -> Self {
        ReplayModel {
            size: u64::from(size),
            highest: 0,
            seen: BTreeSet::new(),
        }
    }

    /// What [`ReplayWindow::check`] must answer.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            Err(ReplayError::Zero)
        } else if seq > self.highest {
            Ok(())
        } else if self.highest - seq >= self.size {
            Err(ReplayError::TooOld)
        } else if self.seen.contains(&seq) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// What [`ReplayWindow::update`] must do.
    pub fn update(&mut self, seq: u64) {
        if seq == 0 {
            return;
        }
        if seq > self.highest {
            self.highest = seq;
        } else if self.highest - seq >= self.size {
            return;
        }
        self.seen.insert(seq);
        let floor = self.highest.saturating_sub(self.size);
        self.seen = self.seen.split_off(&floor);
    }

    /// The highest accepted number.
    pub fn highest(&self) -> u64 {
        self.highest
    }
}

/// One replay operation of [`replay_ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOp {
    /// `check` only.
    Check(u64),
    /// `update` only (the data path never does this unchecked, the window must cope).
    Update(u64),
    /// `check`, then `update` if accepted (the receive path).
    Receive(u64),
}

/// Run `ops` on a window of `size` and on the model; panics on the first disagreement.
pub fn replay_ops(size: u32, ops: &[ReplayOp]) {
    let Ok(mut w) = ReplayWindow::new(size) else {
        return;
    };
    let mut m = ReplayModel::new(size);
    for (i, op) in ops.iter().enumerate() {
        match *op {
            ReplayOp::Check(s) => {
                assert_eq!(w.check(s), m.check(s), "op {i} check({s}) size {size}");
            }
            ReplayOp::Update(s) => {
                w.update(s);
                m.update(s);
            }
            ReplayOp::Receive(s) => {
                let got = w.check(s);
                assert_eq!(got, m.check(s), "op {i} receive({s}) size {size}");
                if got.is_ok() {
                    w.update(s);
                    m.update(s);
                }
            }
        }
        assert_eq!(w.highest(), m.highest(), "op {i} {op:?}: highest");
    }
}

/// Decode a `replay_model` input: 2 bytes window size (32..=4096), then 5-byte operations
/// (kind byte; 32-bit value: a small signed step from the current highest, or absolute).
pub fn decode_replay(data: &[u8]) -> (u32, Vec<ReplayOp>) {
    let mut inp = Input { data };
    let size = 32 + u32::from(inp.u16()) % (4096 - 32 + 1);
    let mut ops = Vec::new();
    let mut highest: u64 = 0;
    while !inp.data.is_empty() && ops.len() < 4096 {
        let kind = inp.u8();
        let v = inp.u32();
        let seq = match kind >> 2 {
            // relative to the highest: -8192..+8191
            0..=47 => {
                let d = i64::from(v % 16384) - 8192;
                highest.saturating_add_signed(d)
            }
            48..=55 => u64::from(v),
            56..=61 => highest.saturating_add(u64::from(v) << 16),
            _ => u64::MAX - u64::from(v % 8),
        };
        let op = match kind & 3 {
            0 => ReplayOp::Check(seq),
            1 => ReplayOp::Update(seq),
            _ => ReplayOp::Receive(seq),
        };
        if !matches!(op, ReplayOp::Check(_)) && seq > highest {
            highest = seq;
        }
        ops.push(op);
    }
    (size, ops)
}

/// Fuzz target `replay_model`.
pub fn replay_model(data: &[u8]) {
    let (size, ops) = decode_replay(data);
    replay_ops(size, &ops);
}

// ---- seeds ----

fn with_header(head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = head.to_vec();
    v.extend_from_slice(body);
    v
}

/// The seed corpus: `(target, file name, bytes)`, built from valid cases.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    // Valid OID buffers.
    let order = KeyOrder::ConfidentialityFirst;
    let mut bufs: Vec<(String, Oid, Vec<u8>)> = Vec::new();
    let gcm = oid_esp(
        0x2000,
        ConfAlgorithm::AesGcm128,
        IntegrityAlgorithm::None,
        1,
    );
    let cbc = oid_esp(
        0x2001,
        ConfAlgorithm::AesCbc128,
        IntegrityAlgorithm::Sha1,
        2,
    );
    let v1 = oid_add_request(Direction::Inbound, gcm.clone());
    if let Ok(b) = v1.to_bytes(order) {
        bufs.push(("add-sa".into(), Oid::TCP_TASK_IPSEC_ADD_SA, b));
    }
    let mut tun = oid_add_request(Direction::Outbound, cbc.clone());
    tun.tunnel = Some(TunnelEndpoints {
        src: TUNNEL_A,
        dest: TUNNEL_B,
    });
    if let Ok(b) = tun.to_bytes(order) {
        bufs.push(("add-sa-tunnel".into(), Oid::TCP_TASK_IPSEC_ADD_SA, b));
    }
    let mut udp = oid_add_request(Direction::Inbound, cbc.clone());
    udp.udp_esp = Some(UdpEspEncap {
        encap_type: UdpEncapType::Other,
        dst_port: 4500,
        parser_entry: OffloadHandle::NULL,
    });
    if let Ok(b) = udp.to_bytes(order) {
        bufs.push(("add-udpesp-sa".into(), Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA, b));
    }
    let ah = SaBundle::Ah(oid::AhSa {
        spi: 0x2002,
        integrity: IntegrityAlgorithm::Sha1,
        integrity_key: secret(IntegrityAlgorithm::Sha1.key_len(), 3),
        options: SaOptions::default(),
    });
    if let Ok(b) = oid_add_request(Direction::Inbound, ah).to_bytes(order) {
        bufs.push(("add-sa-ah".into(), Oid::TCP_TASK_IPSEC_ADD_SA, b));
    }
    bufs.push((
        "delete-sa".into(),
        Oid::TCP_TASK_IPSEC_DELETE_SA,
        DeleteSaRequest {
            offload_handle: OffloadHandle(1),
        }
        .to_bytes()
        .to_vec(),
    ));
    bufs.push((
        "delete-udpesp-sa".into(),
        Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA,
        DeleteUdpEspSaRequest {
            offload_handle: OffloadHandle(1),
            parser_entry: OffloadHandle(2),
        }
        .to_bytes()
        .to_vec(),
    ));
    let v2 = AddSaV2Request {
        entries: vec![
            oid_v2_entry(Direction::Inbound, gcm.clone()),
            oid_v2_entry(Direction::Outbound, cbc.clone()),
        ],
    };
    if let Ok(b) = v2.to_bytes() {
        bufs.push(("v2-add-sa".into(), Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA, b));
    }
    let ex = AddSaExV2Request {
        sa: oid_v2_entry(Direction::Outbound, gcm),
        source_switch_port_id: 0,
        vlan_id: 0,
    };
    if let Ok(b) = ex.to_bytes() {
        bufs.push((
            "v2-add-sa-ex".into(),
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX,
            b,
        ));
    }
    if let Ok(b) = (DeleteSaV2Request {
        offload_handles: vec![OffloadHandle(1), OffloadHandle(2)],
    })
    .to_bytes()
    {
        bufs.push((
            "v2-delete-sa".into(),
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA,
            b,
        ));
    }
    bufs.push((
        "v2-update-sa".into(),
        Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA,
        UpdateSaV2Request {
            offload_handle: OffloadHandle(1),
            protocol: SaProtocol::Esp,
            spi: 0x2000,
            sequence_number_high_order: 1,
        }
        .to_bytes()
        .to_vec(),
    ));
    let params = OffloadParameters {
        ipsec_v1: IpsecOffloadSetting::AhAndEspEnabled,
        flags: 0,
        ipsec_v2: Some(IpsecV2Settings {
            all: IpsecOffloadSetting::EspEnabled,
            ipv4: IpsecOffloadSetting::NoChange,
        }),
    };
    bufs.push((
        "offload-parameters".into(),
        Oid::TCP_OFFLOAD_PARAMETERS,
        params.to_bytes().to_vec(),
    ));
    // Capabilities and the task list, as the miniport answers them.
    let (m, _peer, _) = programmed_miniport();
    for (name, q) in [
        ("task-offload", Oid::TCP_TASK_OFFLOAD),
        ("hardware-caps", Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES),
    ] {
        let mut b = vec![0u8; 512];
        let [st, _, written, _] = oid_request(&m, q, true, &mut b);
        if NdisStatus(st) == NdisStatus::SUCCESS {
            b.truncate(written as usize);
            bufs.push((name.into(), q, b));
        }
    }
    let all: Vec<Oid> = SET_OIDS.iter().chain(QUERY_OIDS.iter()).copied().collect();
    for (name, oid, b) in &bufs {
        out.push(("oid_parsers", name.clone(), b.clone()));
        if let Some(i) = all.iter().position(|o| o == oid) {
            // As a set; DELETE seeds also with a live handle patched in at offset 0.
            out.push((
                "oid_set_info",
                format!("set-{name}"),
                with_header(&[i as u8, 0, 0], b),
            ));
            if name.contains("delete") || name.contains("update") {
                out.push((
                    "oid_set_info",
                    format!("set-{name}-live"),
                    with_header(&[i as u8, 2, 0], b),
                ));
            }
        }
    }
    for (i, q) in QUERY_OIDS.iter().enumerate() {
        let sel = (SET_OIDS.len() + i) as u8;
        out.push((
            "oid_set_info",
            format!("query-{i}"),
            with_header(&[sel, 1, 0], &[0u8; 200]),
        ));
        let _ = q;
    }
    let info = IpsecReceiveInfo {
        sa_delete_req: false,
        crypto_done: true,
        next_crypto_done: false,
        crypto_status: oid::CryptoStatus::SUCCESS,
    };
    out.push((
        "oid_parsers",
        "receive-info-ndis5".into(),
        info.to_ndis5_bytes().to_vec(),
    ));
    // Frames.
    let cases = rx_cases();
    for (i, c) in cases.iter().enumerate() {
        let seq: u32 = 1;
        let head = with_header(&[1, i as u8], &seq.to_le_bytes());
        out.push(("nic_rx_frame", format!("valid-{}", c.name), head.clone()));
        out.push(("ipsec_inbound", format!("valid-{}", c.name), head));
        if let Some(f) = valid_frame(c, 1) {
            out.push((
                "nic_rx_frame",
                format!("raw-{}", c.name),
                with_header(&[0], &f),
            ));
        }
        if let Some((b, r)) = protected_packet(c, 1, &udp_packet(c.ipv6, MARKER))
            && let Some(p) = b.get(r)
        {
            out.push((
                "ipsec_inbound",
                format!("raw-{}", c.name),
                with_header(&[0, i as u8], p),
            ));
        }
    }
    out.push((
        "nic_rx_frame",
        "clear-udp".into(),
        with_header(&[0], &ethernet(&udp_packet(false, MARKER))),
    ));
    // Replay: in order, reordered, duplicates, a jump, window sizes 32 and 4096.
    let mut r = Vec::new();
    r.extend_from_slice(&0u16.to_le_bytes());
    for (kind, v) in [
        (2u8, 8193u32),
        (2, 8193),
        (2, 8190),
        (2, 8192),
        (0, 8000),
        (2, 9000),
    ] {
        r.push(kind);
        r.extend_from_slice(&v.to_le_bytes());
    }
    out.push(("replay_model", "size32".into(), r));
    let mut r = Vec::new();
    r.extend_from_slice(&(4096u16 - 32).to_le_bytes());
    for (kind, v) in [(2u8, 16000u32), (2, 8192), (1, 4000), (0xC2, 3), (2, 16383)] {
        r.push(kind);
        r.extend_from_slice(&v.to_le_bytes());
    }
    out.push(("replay_model", "size4096".into(), r));
    for (name, bytes) in wfp_seeds() {
        out.push(("wfp_sequence", name.into(), bytes));
    }
    for (name, bytes) in pcap_seeds() {
        out.push(("pcap_decap", name.into(), bytes));
    }
    for (i, c) in inbound_cases().iter().enumerate() {
        // Four valid frames in order, then reordered with a duplicate.
        let i = i as u8;
        out.push((
            "transport_inbound",
            format!("valid-{}", c.name),
            vec![i, 3, 0, 0, 0, 1, 0, 3, 0, 2, 3, 0, 0, 1],
        ));
        // A flipped ICV byte, a flipped ciphertext byte, a truncated frame, raw bytes, then
        // the valid frames.
        let mut m = vec![i, 1, 1, 0, 1];
        m.extend_from_slice(&(-1i16 as u16).to_le_bytes());
        m.extend_from_slice(&[0x01, 1, 1, 1]);
        m.extend_from_slice(&60u16.to_le_bytes());
        m.extend_from_slice(&[0x80, 0x81, 0, 0, 8, 2, 20]);
        m.extend_from_slice(
            ethernet(&udp_packet(false, b"cleartext"))
                .get(..20)
                .unwrap_or(&[]),
        );
        m.extend_from_slice(&[0, 0, 0, 1]);
        out.push(("transport_inbound", format!("mutated-{}", c.name), m));
    }
    out
}

/// Op index of `op` in the `wfp_sequence` encoding.
fn wfp_op(op: WfpOp) -> u8 {
    WFP_OPS.iter().position(|o| *o == op).unwrap_or(0) as u8
}

/// The Manual SA sequence on session `s` for the first context, `v6` or IPv4.
fn wfp_manual_sa(s: u8, v6: bool, kind: u8) -> Vec<u8> {
    let fam = u8::from(v6);
    let kind = kind | if v6 { 0x80 } else { 0 };
    let mut v = vec![wfp_op(WfpOp::Create), s, fam, 0];
    v.extend_from_slice(&[wfp_op(WfpOp::GetSpi), s, 0, fam, 0]);
    v.extend_from_slice(&[wfp_op(WfpOp::AddInbound), s, 0, kind, 1, 0, 0, 0]);
    v.extend_from_slice(&[wfp_op(WfpOp::AddOutbound), s, 0, kind, 0]);
    v.extend_from_slice(&0x1000u32.to_le_bytes());
    v.extend_from_slice(&[0, 0, 1]);
    v
}

/// `wfp_sequence` seeds: the Manual SA flow (IPv4, IPv6, every valid bundle shape), then
/// GetById, Enum, Update, Expire, the grace period, Delete; transactions; subscriptions.
fn wfp_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let tail = |v: &mut Vec<u8>| {
        v.extend_from_slice(&[wfp_op(WfpOp::GetById), 0, 0]);
        v.extend_from_slice(&[wfp_op(WfpOp::Enum), 0, 2, wfp_op(WfpOp::Enum), 0, 1, 10]);
        v.extend_from_slice(&[wfp_op(WfpOp::Update), 0, 0, 1, 0]);
        v.extend_from_slice(&[wfp_op(WfpOp::Expire), 0, 0]);
        v.extend_from_slice(&[wfp_op(WfpOp::Tick), 0, 0xFF]);
        v.extend_from_slice(&[wfp_op(WfpOp::Delete), 0, 0]);
    };
    let mut v = wfp_manual_sa(0, false, 0);
    tail(&mut v);
    out.push(("manual-sa-v4", v));
    let mut v = wfp_manual_sa(0, true, 0);
    tail(&mut v);
    out.push(("manual-sa-v6", v));
    let names = [
        "bundle-gcm256",
        "bundle-gmac",
        "bundle-cbc-sha256",
        "bundle-null-sha1",
        "bundle-ah",
        "bundle-esp-ah",
    ];
    for (i, name) in names.into_iter().enumerate() {
        out.push((name, wfp_manual_sa(0, false, i as u8 + 1)));
    }
    // A transaction that creates and aborts, then one that commits; a dynamic session's
    // context vanishes when it closes.
    let mut v = vec![wfp_op(WfpOp::Txn), 0, 0];
    v.extend(wfp_manual_sa(0, false, 0));
    v.extend_from_slice(&[wfp_op(WfpOp::Txn), 0, 4, wfp_op(WfpOp::Txn), 0, 0]);
    v.extend(wfp_manual_sa(0, false, 0));
    v.extend_from_slice(&[wfp_op(WfpOp::Txn), 0, 3]);
    out.push(("transactions", v));
    let mut v = wfp_manual_sa(1, false, 0);
    v.extend_from_slice(&[wfp_op(WfpOp::Session), 0, 1]);
    out.push(("dynamic-session-close", v));
    let mut v = vec![wfp_op(WfpOp::Subscribe), 0, 3];
    v.extend(wfp_manual_sa(0, false, 0));
    v.extend_from_slice(&[wfp_op(WfpOp::Delete), 0, 0, wfp_op(WfpOp::Subscribe), 0, 0]);
    out.push(("subscribe", v));
    out
}

// ---- WFP call sequences ----

use transport::wfp as w;

/// Allowed failure codes of one WFP call kind (the `# Errors` section of its documentation).
fn allowed_errors(op: WfpOp) -> &'static [w::WfpError] {
    use w::*;
    match op {
        WfpOp::Create => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_TXN_IN_PROGRESS,
            FWP_E_DYNAMIC_SESSION_IN_PROGRESS,
            FWP_E_INVALID_PARAMETER,
            FWP_E_INVALID_ENUMERATOR,
            FWP_E_FILTER_NOT_FOUND,
        ],
        WfpOp::GetSpi | WfpOp::SetSpi => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_NOT_FOUND,
            FWP_E_INVALID_PARAMETER,
            FWP_E_INVALID_ENUMERATOR,
            FWP_E_INCOMPATIBLE_SA_STATE,
            FWP_E_TRAFFIC_MISMATCH,
            FWP_E_FILTER_NOT_FOUND,
            FWP_E_ALREADY_EXISTS,
            FWP_E_OUT_OF_BOUNDS,
        ],
        WfpOp::AddInbound | WfpOp::AddOutbound => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_NOT_FOUND,
            FWP_E_INCOMPATIBLE_SA_STATE,
            FWP_E_ZERO_LENGTH_ARRAY,
            FWP_E_INVALID_TRANSFORM_COMBINATION,
            FWP_E_INVALID_CIPHER_TRANSFORM,
            FWP_E_INVALID_AUTH_TRANSFORM,
            FWP_E_INVALID_PARAMETER,
        ],
        WfpOp::Update => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_INVALID_FLAGS,
            FWP_E_NOT_FOUND,
            FWP_E_INVALID_PARAMETER,
            FWP_E_INCOMPATIBLE_SA_STATE,
        ],
        WfpOp::Expire => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_NOT_FOUND,
            FWP_E_INCOMPATIBLE_SA_STATE,
        ],
        WfpOp::Delete => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_TXN_IN_PROGRESS,
            FWP_E_DYNAMIC_SESSION_IN_PROGRESS,
            FWP_E_NOT_FOUND,
        ],
        WfpOp::GetById => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_NOT_FOUND,
        ],
        WfpOp::Enum => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_TYPE_MISMATCH,
        ],
        WfpOp::Subscribe => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_TXN_IN_PROGRESS,
            FWP_E_INVALID_FLAGS,
            FWP_E_TYPE_MISMATCH,
        ],
        WfpOp::Txn => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_INVALID_FLAGS,
            FWP_E_TXN_IN_PROGRESS,
            FWP_E_TIMEOUT,
            FWP_E_NO_TXN_IN_PROGRESS,
        ],
        WfpOp::Session => &[ERROR_INVALID_HANDLE],
        WfpOp::FilterDelete => &[
            ERROR_INVALID_HANDLE,
            ERROR_ACCESS_DENIED,
            FWP_E_TIMEOUT,
            FWP_E_INCOMPATIBLE_TXN,
            FWP_E_FILTER_NOT_FOUND,
        ],
        // Filter adds are built by the harness; the documented list is long, any named code.
        WfpOp::FilterAdd | WfpOp::Tick => &[],
    }
}

/// The kinds of call [`wfp_sequence`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WfpOp {
    /// `IPsecSaContextCreate0/1`.
    Create,
    /// `IPsecSaContextGetSpi0/1`.
    GetSpi,
    /// `IPsecSaContextSetSpi0`.
    SetSpi,
    /// `IPsecSaContextAddInbound0/1`.
    AddInbound,
    /// `IPsecSaContextAddOutbound0/1`.
    AddOutbound,
    /// `IPsecSaContextUpdate0`.
    Update,
    /// `IPsecSaContextExpire0`.
    Expire,
    /// `IPsecSaContextDeleteById0`.
    Delete,
    /// `IPsecSaContextGetById0/1`.
    GetById,
    /// Enumeration handle create / enum / destroy.
    Enum,
    /// Subscribe / unsubscribe / subscriptions get.
    Subscribe,
    /// Transaction begin / commit / abort.
    Txn,
    /// Engine open / close.
    Session,
    /// `FwpmFilterAdd0`.
    FilterAdd,
    /// `FwpmFilterDeleteById0`.
    FilterDelete,
    /// Advance the virtual clock.
    Tick,
}

const WFP_OPS: [WfpOp; 16] = [
    WfpOp::Create,
    WfpOp::GetSpi,
    WfpOp::SetSpi,
    WfpOp::AddInbound,
    WfpOp::AddOutbound,
    WfpOp::Update,
    WfpOp::Expire,
    WfpOp::Delete,
    WfpOp::GetById,
    WfpOp::Enum,
    WfpOp::Subscribe,
    WfpOp::Txn,
    WfpOp::Session,
    WfpOp::FilterAdd,
    WfpOp::FilterDelete,
    WfpOp::Tick,
];

/// The transport-layer IPsec policy of one address family: (inbound, outbound) filter ids.
#[derive(Clone, Copy, Debug, Default)]
struct WfpPolicy {
    inbound: u64,
    outbound: u64,
}

/// The engine under test and what the harness knows about it.
struct WfpWorld {
    bfe: w::Bfe,
    /// Slot 0: administrator; 1: dynamic session; 2: read/enum-only token.
    sessions: [Option<w::EngineHandle>; 3],
    closed: Vec<w::EngineHandle>,
    policy: [WfpPolicy; 2],
    filters: Vec<u64>,
    contexts: Vec<u64>,
    deleted: BTreeSet<u64>,
    enums: Vec<w::EnumHandle>,
    subs: Vec<w::SubscriptionHandle>,
    changes: Arc<std::sync::Mutex<Vec<w::IpsecSaContextChange0>>>,
    events: Vec<w::SaEvent>,
}

fn wfp_local_remote(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (IpAddr::V6(HOST_A6), IpAddr::V6(HOST_B6))
    } else {
        (IpAddr::V4(HOST_A), IpAddr::V4(HOST_B))
    }
}

fn wfp_version(v6: bool) -> w::FwpIpVersion {
    if v6 {
        w::FWP_IP_VERSION_V6
    } else {
        w::FWP_IP_VERSION_V4
    }
}

/// An IPsec transport filter (or, with `exempt`, an ICMP permit) for A <-> B.
fn wfp_filter(v6: bool, inbound: bool, exempt: bool, weight: u8) -> w::FwpmFilter0 {
    let (local, remote) = wfp_local_remote(v6);
    let (layer, callout) = match (v6, inbound) {
        (false, true) => (
            w::FWPM_LAYER_INBOUND_TRANSPORT_V4,
            w::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
        ),
        (false, false) => (
            w::FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
            w::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
        ),
        (true, true) => (
            w::FWPM_LAYER_INBOUND_TRANSPORT_V6,
            w::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
        ),
        (true, false) => (
            w::FWPM_LAYER_OUTBOUND_TRANSPORT_V6,
            w::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
        ),
    };
    let mut conditions = vec![w::FwpmFilterCondition0::new(
        w::FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
        w::FWP_MATCH_EQUAL,
        w::FwpConditionValue0::Uint8(w::NlAddressType::Unicast as u8),
    )];
    let action = if exempt {
        let icmp = if v6 {
            w::IPPROTO_ICMPV6
        } else {
            w::IPPROTO_ICMP
        };
        conditions.push(w::FwpmFilterCondition0::new(
            w::FWPM_CONDITION_IP_PROTOCOL,
            w::FWP_MATCH_EQUAL,
            w::FwpConditionValue0::Uint8(icmp),
        ));
        w::FwpmAction0 {
            action_type: w::FWP_ACTION_PERMIT,
            callout_key: w::Guid::NULL,
        }
    } else {
        conditions.push(w::FwpmFilterCondition0::new(
            w::FWPM_CONDITION_IP_LOCAL_ADDRESS,
            w::FWP_MATCH_EQUAL,
            w::FwpConditionValue0::ip(local),
        ));
        conditions.push(w::FwpmFilterCondition0::new(
            w::FWPM_CONDITION_IP_REMOTE_ADDRESS,
            w::FWP_MATCH_EQUAL,
            w::FwpConditionValue0::ip(remote),
        ));
        w::FwpmAction0 {
            action_type: w::FWP_ACTION_CALLOUT_TERMINATING,
            callout_key: callout,
        }
    };
    w::FwpmFilter0 {
        display_data: w::FwpmDisplayData0::named("fuzz filter"),
        layer_key: layer,
        weight: w::FwpValue0::Uint8(weight),
        filter_condition: conditions,
        action,
        ..Default::default()
    }
}

/// A bundle of shape `kind` (valid shapes first, then every documented refusal) with `spi`.
fn wfp_bundle(kind: u8, spi: u32, v6: bool, lifetime: w::IpsecSaLifetime0) -> w::IpsecSaBundle0 {
    use w::IpsecSaTransform as T;
    let key = |len: usize| Key::new(&vec![0x5A; len]);
    let auth = |id, len| w::IpsecSaAuthInformation0 {
        auth_transform: w::IpsecAuthTransform0 {
            auth_transform_id: id,
            crypto_module_id: None,
        },
        auth_key: key(len),
    };
    let cipher = |id, len| w::IpsecSaCipherInformation0 {
        cipher_transform: w::IpsecCipherTransform0 {
            cipher_transform_id: id,
            crypto_module_id: None,
        },
        cipher_key: key(len),
    };
    let both = |c, clen, a, alen| {
        T::EspAuthAndCipher(w::IpsecSaAuthAndCipherInformation0 {
            sa_cipher_information: cipher(c, clen),
            sa_auth_information: auth(a, alen),
        })
    };
    let sa = |t| w::IpsecSa0 {
        spi,
        sa_transform: t,
    };
    let gcm128 = || {
        sa(both(
            w::IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
            20,
            w::IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
            20,
        ))
    };
    let ah_sha1 = || sa(T::Ah(auth(w::IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96, 20)));
    let sa_list = match kind % 14 {
        0 => vec![gcm128()],
        1 => vec![sa(both(
            w::IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256,
            36,
            w::IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256,
            36,
        ))],
        2 => vec![sa(T::EspAuth(auth(
            w::IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
            20,
        )))],
        3 => vec![sa(both(
            w::IPSEC_CIPHER_TRANSFORM_ID_AES_128,
            16,
            w::IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128,
            32,
        ))],
        4 => vec![sa(T::EspAuth(auth(
            w::IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
            20,
        )))],
        5 => vec![ah_sha1()],
        6 => vec![gcm128(), ah_sha1()],
        // Refusals: empty, three SAs, AH then ESP, ESP cipher only, wrong key length, DES,
        // MD5.
        7 => Vec::new(),
        8 => vec![gcm128(), ah_sha1(), ah_sha1()],
        9 => vec![ah_sha1(), gcm128()],
        10 => vec![sa(T::EspCipher(cipher(
            w::IPSEC_CIPHER_TRANSFORM_ID_AES_128,
            16,
        )))],
        11 => vec![sa(both(
            w::IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
            16,
            w::IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
            16,
        ))],
        12 => vec![sa(both(
            w::IPSEC_CIPHER_TRANSFORM_ID_CBC_DES,
            8,
            w::IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
            20,
        ))],
        _ => vec![sa(T::Ah(auth(w::IPSEC_AUTH_TRANSFORM_ID_HMAC_MD5_96, 16)))],
    };
    w::IpsecSaBundle0 {
        lifetime,
        sa_list,
        ip_version: wfp_version(v6),
        ..Default::default()
    }
}

/// Every key blob of `c` (what GetById / Enum hand out).
fn context_keys(c: &w::IpsecSaContext1) -> Vec<usize> {
    let mut out = Vec::new();
    for d in [&c.inbound_sa, &c.outbound_sa].into_iter().flatten() {
        for sa in &d.sa_bundle.sa_list {
            match &sa.sa_transform {
                w::IpsecSaTransform::Ah(a)
                | w::IpsecSaTransform::EspAuth(a)
                | w::IpsecSaTransform::EspAuthFw(a) => out.push(a.auth_key.len()),
                w::IpsecSaTransform::EspCipher(ci) => out.push(ci.cipher_key.len()),
                w::IpsecSaTransform::EspAuthAndCipher(ac) => {
                    out.push(ac.sa_cipher_information.cipher_key.len());
                    out.push(ac.sa_auth_information.auth_key.len());
                }
            }
        }
    }
    out
}

impl WfpWorld {
    fn new() -> Self {
        let mut bfe = w::Bfe::with_seed(7);
        let admin = bfe
            .fwpm_engine_open0(None, w::RPC_C_AUTHN_WINNT, None, None)
            .ok();
        let dynamic = bfe
            .fwpm_engine_open0(
                None,
                w::RPC_C_AUTHN_WINNT,
                None,
                Some(&w::FwpmSession0 {
                    flags: w::FWPM_SESSION_FLAG_DYNAMIC,
                    ..Default::default()
                }),
            )
            .ok();
        let reader = bfe
            .fwpm_engine_open0_as(
                w::CallerToken::new(w::FWPM_ACTRL_READ | w::FWPM_ACTRL_ENUM),
                None,
                w::RPC_C_AUTHN_WINNT,
                None,
                None,
            )
            .ok();
        // A closed session's handle: every call with it is ERROR_INVALID_HANDLE.
        let mut closed = Vec::new();
        if let Ok(stale) = bfe.fwpm_engine_open0(None, w::RPC_C_AUTHN_WINNT, None, None)
            && bfe.fwpm_engine_close0(stale).is_ok()
        {
            closed.push(stale);
        }
        let mut world = WfpWorld {
            bfe,
            sessions: [admin, dynamic, reader],
            closed,
            policy: [WfpPolicy::default(); 2],
            filters: Vec::new(),
            contexts: Vec::new(),
            deleted: BTreeSet::new(),
            enums: Vec::new(),
            subs: Vec::new(),
            changes: Arc::default(),
            events: Vec::new(),
        };
        if let Some(h) = admin {
            for v6 in [false, true] {
                let mut ids = [0u64; 2];
                for (i, inbound) in [true, false].into_iter().enumerate() {
                    for exempt in [false, true] {
                        let weight = if exempt {
                            w::FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS
                        } else {
                            w::FWPM_WEIGHT_RANGE_IPSEC
                        };
                        let f = wfp_filter(v6, inbound, exempt, weight);
                        if let Ok(id) = world.bfe.fwpm_filter_add0(h, &f, None) {
                            world.filters.push(id);
                            if !exempt && let Some(slot) = ids.get_mut(i) {
                                *slot = id;
                            }
                        }
                    }
                }
                world.policy[usize::from(v6)] = WfpPolicy {
                    inbound: ids[0],
                    outbound: ids[1],
                };
            }
        }
        world
    }

    /// Session slot `b % 4`: a live session, or (slot 3, or a closed slot) a stale handle.
    fn session(&self, b: u8) -> Option<w::EngineHandle> {
        self.sessions
            .get(usize::from(b % 4))
            .copied()
            .flatten()
            .or_else(|| {
                self.closed
                    .get(usize::from(b) % self.closed.len().max(1))
                    .copied()
            })
    }

    fn context(&self, inp: &mut Input<'_>) -> u64 {
        let b = inp.u8();
        if b >= 0xF0 || self.contexts.is_empty() {
            u64::from(inp.u16())
        } else {
            self.contexts[usize::from(b) % self.contexts.len()]
        }
    }

    fn traffic(&self, inp: &mut Input<'_>, inbound: bool) -> w::IpsecTraffic0 {
        let b = inp.u8();
        let v6 = b & 1 != 0;
        let (local, remote) = wfp_local_remote(v6);
        let p = self.policy[usize::from(v6)];
        let filter = match (b >> 1) & 7 {
            0..=4 => {
                if inbound {
                    p.inbound
                } else {
                    p.outbound
                }
            }
            5 => {
                if inbound {
                    p.outbound
                } else {
                    p.inbound
                }
            }
            6 => self
                .filters
                .get(usize::from(inp.u8()) % self.filters.len().max(1))
                .copied()
                .unwrap_or(0),
            _ => u64::from(inp.u8()),
        };
        let (local, remote) = if b & 0x10 != 0 {
            (remote, local)
        } else {
            (local, remote)
        };
        w::IpsecTraffic0 {
            ip_version: if b & 0x20 != 0 {
                wfp_version(!v6)
            } else {
                wfp_version(v6)
            },
            local_address: local.into(),
            remote_address: remote.into(),
            traffic_type: if b & 0x40 != 0 {
                w::IPSEC_TRAFFIC_TYPE_TUNNEL
            } else {
                w::IPSEC_TRAFFIC_TYPE_TRANSPORT
            },
            ipsec_filter_id: filter,
            remote_port: if b & 0x80 != 0 { inp.u16() } else { 0 },
        }
    }

    fn get_spi(&self, inp: &mut Input<'_>) -> w::IpsecGetSpi1 {
        let t = self.traffic(inp, true);
        let b = inp.u8();
        w::IpsecGetSpi1 {
            inbound_ipsec_traffic: t.into(),
            ip_version: t.ip_version,
            inbound_udp_encapsulation: (b & 1 != 0).then(|| w::IpsecV4UdpEncapsulation0 {
                local_udp_encap_port: 4500,
                remote_udp_encap_port: if b & 2 != 0 { 4500 } else { inp.u16() },
            }),
            rng_crypto_module_id: None,
        }
    }

    /// Run one decoded call; returns its kind and result code (0 = success).
    fn call(&mut self, inp: &mut Input<'_>) -> (WfpOp, Result<(), w::WfpError>) {
        let op = WFP_OPS[usize::from(inp.u8()) % WFP_OPS.len()];
        let Some(h) = self.session(inp.u8()) else {
            return (WfpOp::Tick, Ok(()));
        };
        let r = match op {
            WfpOp::Create => {
                let t = self.traffic(inp, false);
                let mut cached = u64::MAX;
                let r = if inp.u8() & 1 == 0 {
                    self.bfe.ipsec_sa_context_create0(h, &t, Some(&mut cached))
                } else {
                    self.bfe
                        .ipsec_sa_context_create1(h, &t.into(), None, Some(&mut cached))
                };
                r.map(|id| {
                    assert!(
                        !self.contexts.contains(&id) && !self.deleted.contains(&id),
                        "Create returned a used id {id}"
                    );
                    assert!(
                        self.bfe.sa_context(id).is_some(),
                        "created context {id} not visible"
                    );
                    self.contexts.push(id);
                })
            }
            WfpOp::GetSpi => {
                let id = self.context(inp);
                let g = self.get_spi(inp);
                self.bfe.ipsec_sa_context_get_spi1(h, id, &g).map(|spi| {
                    assert!(spi >= 256, "GetSpi returned reserved SPI {spi}");
                })
            }
            WfpOp::SetSpi => {
                let id = self.context(inp);
                let g = self.get_spi(inp);
                let spi = match inp.u8() % 4 {
                    0 => u32::from(inp.u8()),
                    1 => self
                        .bfe
                        .sa_contexts()
                        .filter_map(w::SaContext::inbound_spi)
                        .next()
                        .unwrap_or(300),
                    _ => inp.u32(),
                };
                self.bfe.ipsec_sa_context_set_spi0(h, id, &g, spi)
            }
            WfpOp::AddInbound | WfpOp::AddOutbound => {
                let id = self.context(inp);
                let kind = inp.u8();
                let v6 = kind & 0x80 != 0;
                let spi = match inp.u8() % 4 {
                    0 => inp.u32(),
                    _ => self
                        .bfe
                        .sa_context(id)
                        .and_then(w::SaContext::inbound_spi)
                        .unwrap_or(0x1234),
                };
                let lifetime = w::IpsecSaLifetime0 {
                    lifetime_seconds: u32::from(inp.u8() & 0x3F),
                    lifetime_kilobytes: 0,
                    lifetime_packets: u32::from(inp.u8() & 3),
                };
                let b = wfp_bundle(kind & 0x7F, spi, v6, lifetime);
                let one = inp.u8() & 1 != 0;
                match (op, one) {
                    (WfpOp::AddInbound, false) => self.bfe.ipsec_sa_context_add_inbound0(h, id, &b),
                    (WfpOp::AddInbound, true) => {
                        self.bfe.ipsec_sa_context_add_inbound1(h, id, &b.into())
                    }
                    (_, false) => self.bfe.ipsec_sa_context_add_outbound0(h, id, &b),
                    (_, true) => self.bfe.ipsec_sa_context_add_outbound1(h, id, &b.into()),
                }
            }
            WfpOp::Update => {
                let id = self.context(inp);
                let flags = match inp.u8() % 4 {
                    0 => w::IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION,
                    1 => w::IPSEC_SA_BUNDLE_UPDATE_FLAGS,
                    2 => w::IPSEC_SA_DETAILS_UPDATE_TRAFFIC,
                    _ => u64::from(inp.u32()),
                };
                let mut c =
                    self.bfe
                        .ipsec_sa_context_get_by_id1(h, id)
                        .unwrap_or(w::IpsecSaContext1 {
                            sa_context_id: id,
                            ..Default::default()
                        });
                let x = inp.u8();
                if let Some(o) = c.outbound_sa.as_mut() {
                    if x & 1 != 0 {
                        o.udp_encapsulation = Some(w::IpsecV4UdpEncapsulation0 {
                            local_udp_encap_port: 4500,
                            remote_udp_encap_port: 4500,
                        });
                    }
                    if x & 2 != 0 {
                        o.sa_bundle.flags ^= inp.u32();
                    }
                    if x & 4 != 0 {
                        o.traffic.remote_port = inp.u16();
                    }
                }
                if x & 8 != 0 {
                    c.inbound_sa = None;
                }
                self.bfe.ipsec_sa_context_update0(h, flags, &c)
            }
            WfpOp::Expire => {
                let id = self.context(inp);
                self.bfe.ipsec_sa_context_expire0(h, id)
            }
            WfpOp::Delete => {
                let id = self.context(inp);
                let r = self.bfe.ipsec_sa_context_delete_by_id0(h, id);
                if r.is_ok() {
                    assert!(
                        self.bfe.sa_context(id).is_none(),
                        "deleted context {id} still there"
                    );
                    self.deleted.insert(id);
                }
                r
            }
            WfpOp::GetById => {
                let id = self.context(inp);
                match self.bfe.ipsec_sa_context_get_by_id1(h, id) {
                    Ok(c) => {
                        assert!(
                            context_keys(&c).iter().all(|l| *l == 0),
                            "GetById1 returned key bytes"
                        );
                        assert_eq!(c.sa_context_id, id, "GetById1 returned another context");
                        assert!(!self.deleted.contains(&id), "GetById1 found deleted {id}");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            WfpOp::Enum => {
                let b = inp.u8();
                if b & 3 == 0 && !self.enums.is_empty() {
                    let e = self.enums.remove(usize::from(b >> 2) % self.enums.len());
                    self.bfe.ipsec_sa_context_destroy_enum_handle0(h, e)
                } else if b & 3 == 1 && !self.enums.is_empty() {
                    let e = self.enums[usize::from(b >> 2) % self.enums.len()];
                    let n = u32::from(inp.u8());
                    match self.bfe.ipsec_sa_context_enum1(h, e, n) {
                        Ok(list) => {
                            assert!(list.len() <= n as usize, "Enum1 returned too many");
                            for c in &list {
                                assert!(
                                    context_keys(c).iter().all(|l| *l == 0),
                                    "Enum1 returned key bytes"
                                );
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    let template = match b >> 2 & 3 {
                        0 => None,
                        1 => Some(w::IpsecSaContextEnumTemplate0 {
                            local_sub_net: w::FwpConditionValue0::ip(IpAddr::V4(HOST_A)),
                            remote_sub_net: w::FwpConditionValue0::Empty,
                        }),
                        2 => Some(w::IpsecSaContextEnumTemplate0 {
                            local_sub_net: w::FwpConditionValue0::Uint8(inp.u8()),
                            remote_sub_net: w::FwpConditionValue0::Empty,
                        }),
                        _ => Some(w::IpsecSaContextEnumTemplate0::default()),
                    };
                    self.bfe
                        .ipsec_sa_context_create_enum_handle0(h, template.as_ref())
                        .map(|e| self.enums.push(e))
                }
            }
            WfpOp::Subscribe => {
                let b = inp.u8();
                if b & 1 == 0 && !self.subs.is_empty() {
                    let s = self.subs.remove(usize::from(b >> 1) % self.subs.len());
                    self.bfe.ipsec_sa_context_unsubscribe0(h, s)
                } else {
                    let sub = w::IpsecSaContextSubscription0 {
                        enum_template: None,
                        flags: if b & 2 != 0 {
                            w::IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT
                        } else if b & 4 != 0 {
                            u32::from(inp.u8())
                        } else {
                            0
                        },
                        session_key: w::Guid::NULL,
                    };
                    let log = Arc::clone(&self.changes);
                    let cb: w::SaContextCallback = Box::new(move |c| {
                        if let Ok(mut l) = log.lock() {
                            l.push(*c);
                        }
                    });
                    self.bfe
                        .ipsec_sa_context_subscribe0(h, &sub, cb)
                        .map(|s| self.subs.push(s))
                }
            }
            WfpOp::Txn => match inp.u8() % 5 {
                0 => self.bfe.fwpm_transaction_begin0(h, 0),
                1 => self.bfe.fwpm_transaction_begin0(h, w::FWPM_TXN_READ_ONLY),
                2 => self.bfe.fwpm_transaction_begin0(h, u32::from(inp.u8())),
                3 => self.bfe.fwpm_transaction_commit0(h),
                _ => self.bfe.fwpm_transaction_abort0(h),
            },
            WfpOp::Session => {
                let slot = usize::from(inp.u8() % 3);
                match self.sessions.get_mut(slot).and_then(Option::take) {
                    Some(s) => {
                        self.closed.push(s);
                        self.bfe.fwpm_engine_close0(s)
                    }
                    None => {
                        let flags = if slot == 1 {
                            w::FWPM_SESSION_FLAG_DYNAMIC
                        } else {
                            0
                        };
                        let s = w::FwpmSession0 {
                            flags,
                            ..Default::default()
                        };
                        match self
                            .bfe
                            .fwpm_engine_open0(None, w::RPC_C_AUTHN_WINNT, None, Some(&s))
                        {
                            Ok(hh) => {
                                if let Some(x) = self.sessions.get_mut(slot) {
                                    *x = Some(hh);
                                }
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
            }
            WfpOp::FilterAdd => {
                let b = inp.u8();
                let f = wfp_filter(b & 1 != 0, b & 2 != 0, b & 4 != 0, inp.u8() & 0x1F);
                self.bfe
                    .fwpm_filter_add0(h, &f, None)
                    .map(|id| self.filters.push(id))
            }
            WfpOp::FilterDelete => {
                let b = inp.u8();
                let id = self
                    .filters
                    .get(usize::from(b) % self.filters.len().max(1))
                    .copied()
                    .unwrap_or(u64::from(b));
                self.bfe.fwpm_filter_delete_by_id0(h, id)
            }
            WfpOp::Tick => {
                let secs = match inp.u8() {
                    b @ 0..=200 => u64::from(b % 8),
                    _ => 61,
                };
                let now = self.bfe.now() + Duration::from_secs(secs);
                self.bfe.tick(now);
                Ok(())
            }
        };
        (op, r)
    }

    /// The engine's invariants (committed state).
    fn check(&mut self, step: usize) {
        self.bfe.take_events(&mut self.events);
        for e in self.events.drain(..) {
            if let w::SaEvent::Deleted { id } = e {
                self.deleted.insert(id);
            }
        }
        let mut spis = BTreeSet::new();
        for c in self.bfe.sa_contexts() {
            let id = c.id();
            assert!(
                !self.deleted.contains(&id),
                "step {step}: deleted context {id} is back"
            );
            if let Some(spi) = c.inbound_spi() {
                assert!(spi >= 256, "step {step}: reserved SPI {spi}");
                assert!(spis.insert(spi), "step {step}: SPI {spi:#x} used twice");
            }
            use w::SaContextState as S;
            let st = c.state();
            assert_eq!(
                c.inbound_spi().is_some(),
                st != S::Created,
                "step {step}: context {id} in {st:?} with SPI {:?}",
                c.inbound_spi()
            );
            assert_eq!(
                c.inbound().is_some(),
                matches!(st, S::InboundAdded | S::Complete | S::Expiring),
                "step {step}: context {id} in {st:?}: inbound bundle"
            );
            assert_eq!(
                c.outbound().is_some(),
                st == S::Complete,
                "step {step}: context {id} in {st:?}: outbound bundle"
            );
            assert_eq!(
                c.grace_deadline().is_some(),
                st == S::Expiring,
                "step {step}: context {id} in {st:?}: grace deadline"
            );
            if let Some(spi) = c.inbound_spi()
                && matches!(st, S::InboundAdded | S::Complete | S::Expiring)
            {
                assert_eq!(
                    self.bfe.inbound_sa_context(spi).map(w::SaContext::id),
                    Some(id),
                    "step {step}: inbound SPI {spi:#x} does not find context {id}"
                );
            }
        }
    }
}

/// Fuzz target `wfp_sequence`: up to 64 WFP calls decoded from the input (op byte, session
/// byte, then the op's arguments) against one [`transport::Bfe`] with an IPsec policy for
/// A <-> B (IPv4 and IPv6) installed. Every failure must be a documented code of that call,
/// and after every call: inbound SPIs are unique and never reserved, each context's state
/// matches its SPI and bundles, a deleted context never comes back, ids are never reused,
/// and GetById / Enum never return key bytes.
pub fn wfp_sequence(data: &[u8]) {
    let _ = wfp_run(data);
}

/// [`wfp_sequence`], returning each call's kind and result.
pub fn wfp_run(data: &[u8]) -> Vec<(WfpOp, Result<(), w::WfpError>)> {
    let mut world = WfpWorld::new();
    let mut inp = Input { data };
    let mut step = 0;
    let mut trace = Vec::new();
    while !inp.data.is_empty() && step < 64 {
        let (op, r) = world.call(&mut inp);
        trace.push((op, r));
        if let Err(e) = r {
            assert_ne!(e.name(), "UNKNOWN", "step {step}: {op:?} returned {e:?}");
            let allowed = allowed_errors(op);
            assert!(
                allowed.is_empty() || allowed.contains(&e),
                "step {step}: {op:?} returned undocumented {e:?}"
            );
        }
        world.check(step);
        step += 1;
    }
    trace
}

// ---- transport inbound ----

use ipsec_nic::{Algorithms, HostConfig, ManualSaOptions, SaMode, TopologyConfig, TwoHosts};
use nicsim::Wire;

/// One SA configuration of [`transport_inbound`]: a Manual SA between hosts A and B of the
/// standard topology, offloaded to B's NIC or not.
#[derive(Clone, Copy, Debug)]
pub struct InboundCase {
    /// Short name (seed file names).
    pub name: &'static str,
    /// The Manual SA.
    pub opts: ManualSaOptions,
    /// Whether the stacks offload the SAs to their NICs.
    pub offload: bool,
}

/// Every algorithm family offloaded (IPv4 transport), tunnel, UDP-ESP and IPv6 (v2 ADD_SA_EX)
/// offloaded, and a software-only set (offload off).
pub fn inbound_cases() -> Vec<InboundCase> {
    let base = ManualSaOptions::default();
    let names = [
        "gcm128",
        "gcm192",
        "gcm256",
        "gmac128",
        "cbc128-sha256",
        "cbc256-sha256",
        "cbc128-sha1",
        "null-sha256",
        "null-sha1",
        "ah-sha1",
        "ah-sha256",
        "gcm-then-ah",
    ];
    let mut v: Vec<InboundCase> = Algorithms::ALL
        .iter()
        .zip(names)
        .map(|(a, name)| InboundCase {
            name,
            opts: ManualSaOptions {
                algorithms: *a,
                ..base
            },
            offload: true,
        })
        .collect();
    let more = [
        (
            "tunnel-gcm128",
            ManualSaOptions {
                mode: SaMode::Tunnel,
                ..base
            },
            true,
        ),
        (
            "udp-encap-gcm128",
            ManualSaOptions {
                udp_encap: Some((4500, 4500)),
                ..base
            },
            true,
        ),
        ("ipv6-gcm128", ManualSaOptions { ipv6: true, ..base }, true),
        (
            "sw-cbc128-sha256",
            ManualSaOptions {
                algorithms: Algorithms::AesCbc128HmacSha256,
                ..base
            },
            false,
        ),
        (
            "sw-ah-sha256",
            ManualSaOptions {
                algorithms: Algorithms::AhHmacSha256,
                ..base
            },
            false,
        ),
        (
            "sw-gcm-then-ah",
            ManualSaOptions {
                algorithms: Algorithms::AesGcm128ThenAhSha1,
                ..base
            },
            false,
        ),
        (
            "sw-tunnel-gmac",
            ManualSaOptions {
                algorithms: Algorithms::AesGmac128,
                mode: SaMode::Tunnel,
                ..base
            },
            false,
        ),
        (
            "sw-udp-encap-null",
            ManualSaOptions {
                algorithms: Algorithms::NullHmacSha1,
                udp_encap: Some((4500, 4500)),
                ..base
            },
            false,
        ),
        (
            "sw-ipv6-gcm256",
            ManualSaOptions {
                algorithms: Algorithms::AesGcm256,
                ipv6: true,
                ..base
            },
            false,
        ),
    ];
    for (name, opts, offload) in more {
        v.push(InboundCase {
            name,
            opts,
            offload,
        });
    }
    v
}

/// Two hosts with a Manual SA whose wires end at the harness: what A transmits can be read
/// from `from_a`, what the harness transmits on `to_b` B receives.
pub struct InboundBench {
    /// The hosts (A and B are not connected to each other).
    pub net: TwoHosts,
    /// The far end of A's port.
    pub from_a: MemWire,
    /// The far end of B's port.
    pub to_b: MemWire,
    /// A's and B's address of the protected traffic.
    pub addrs: (IpAddr, IpAddr),
}

impl InboundBench {
    /// Build the hosts (RustCrypto), run the Manual SA and let the stacks offload.
    pub fn new(case: &InboundCase) -> Option<Self> {
        let mut cfg = TopologyConfig::standard();
        cfg.capture = ipsec_nic::Capture::None;
        for h in [&mut cfg.a, &mut cfg.b] {
            let hc: &mut HostConfig = h;
            hc.provider = ProviderKind::RustCrypto;
            hc.offload = case.offload;
            hc.buffers = 32;
        }
        let (a, from_a) = MemWire::pair();
        let (b, to_b) = MemWire::pair();
        let mut net = TwoHosts::with_wires(cfg, a, b).ok()?;
        ipsec_nic::manual_sa(&mut net, &case.opts).ok()?;
        net.drive();
        let addrs = if case.opts.ipv6 {
            (IpAddr::V6(ipsec_nic::A_V6), IpAddr::V6(ipsec_nic::B_V6))
        } else {
            (IpAddr::V4(ipsec_nic::A_V4), IpAddr::V4(ipsec_nic::B_V4))
        };
        Some(InboundBench {
            net,
            from_a,
            to_b,
            addrs,
        })
    }

    /// A sends `n` UDP datagrams to B (payload [`inbound_payload`]`(i)`); returns the frames
    /// A put on the wire, in order.
    pub fn valid_frames(&mut self, n: usize) -> Vec<Vec<u8>> {
        let (a, b) = self.addrs;
        let now = self.net.now();
        for i in 0..n {
            let _ = self.net.a.stack_mut().send_udp(
                now,
                core::net::SocketAddr::new(a, 5000),
                core::net::SocketAddr::new(b, 6000),
                &inbound_payload(i),
            );
        }
        for _ in 0..4 {
            self.net.step();
        }
        let mut frames = Vec::new();
        let _ = self.from_a.receive(self.net.now(), &mut frames, 64);
        frames
            .iter()
            .filter_map(|f| f.buf.get(f.data.clone()).map(<[u8]>::to_vec))
            .collect()
    }

    /// Give B `frames` and let it process them.
    pub fn inject(&mut self, frames: &[Vec<u8>]) {
        let mut batch: Vec<Frame> = frames
            .iter()
            .map(|f| Frame::from_bytes(f, 64, 64))
            .collect();
        let mut done = Vec::new();
        let _ = self.to_b.transmit(self.net.now(), &mut batch, &mut done);
        for _ in 0..4 {
            self.net.step();
        }
    }
}

/// Payload of A's `i`-th datagram in [`InboundBench::valid_frames`].
pub fn inbound_payload(i: usize) -> Vec<u8> {
    format!("transport-inbound-datagram-{i:04}").into_bytes()
}

/// Frames B's stack may consume without counting them (IKE and NAT keepalives: UDP to port
/// 500 or 4500 that is not ESP; the harness over-approximates with the port alone).
fn maybe_uncounted(frame: &[u8]) -> bool {
    let et = frame.get(12..14);
    let ip = frame.get(14..).unwrap_or(&[]);
    let (proto, l4) = match (et, ip.first().map(|b| b >> 4)) {
        (Some([0x08, 0x00]), Some(4)) => {
            let ihl = usize::from(ip.first().map_or(0, |b| b & 0xf)) * 4;
            (ip.get(9).copied(), ip.get(ihl..))
        }
        (Some([0x86, 0xdd]), Some(6)) => (ip.get(6).copied(), ip.get(40..)),
        _ => (None, None),
    };
    let port = l4
        .and_then(|l| l.get(2..4))
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    proto == Some(17) && matches!(port, Some(500 | 4500))
}

fn inbound_counted(s: &transport::stack::StackStatistics) -> u64 {
    s.inbound.delivered
        + u64::from(
            s.ipsec
                .aggregate_drop_packet_statistics
                .total_drop_packets_inbound,
        )
}

/// Fuzz target `transport_inbound`: frames into host B's receive path (NIC, miniport,
/// transport) with a Manual SA installed from [`inbound_cases`] (byte 0).
///
/// Input: case byte, count byte (A sends `1 + count % 4` valid protected datagrams), then
/// up to 16 frame instructions: a kind byte (`% 4`: 0 valid frame `i` unchanged, 1 valid frame
/// `i` mutated, 2 raw bytes, 3 the previous frame again), `i` / a length byte, then for
/// mutations a count byte and that many (u16 offset, xor) pairs, for raw frames the bytes.
///
/// Properties: no panic; every injected frame is counted once in B's stack (delivered or
/// dropped by reason; IKE / NAT-keepalive lookalikes may be consumed silently); every UDP
/// datagram B delivers between A and B is protected, carries a payload A sent, and none is
/// delivered twice; every valid datagram whose unchanged frame was injected is delivered.
pub fn transport_inbound(data: &[u8]) {
    let mut inp = Input { data };
    let cases = inbound_cases();
    let Some(case) = cases.get(usize::from(inp.u8()) % cases.len()) else {
        return;
    };
    let Some(mut bench) = InboundBench::new(case) else {
        panic!("{}: Manual SA set-up failed", case.name);
    };
    let n = 1 + usize::from(inp.u8() % 4);
    let valid = bench.valid_frames(n);
    assert_eq!(
        valid.len(),
        n,
        "{}: A did not send its datagrams",
        case.name
    );
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut pristine = BTreeSet::new();
    // Frames of which an altered copy (or raw bytes holding its ICV) came before the
    // unchanged frame: if the alteration is outside the ICV's coverage (the outer header in
    // ESP), the copy authenticates and consumes the sequence number (the window is updated
    // once the ICV verifies, before the selector check: RFC 4303 §3.4.3, RFC 4301 §5.2), so
    // the unchanged frame may then be a replay.
    let mut tainted = BTreeSet::new();
    let icv_of = |f: &[u8]| f.get(f.len().saturating_sub(12)..).map(<[u8]>::to_vec);
    while !inp.data.is_empty() && frames.len() < 16 {
        let kind = inp.u8();
        let sel = usize::from(inp.u8());
        match kind % 4 {
            0 | 1 => {
                let i = sel % n;
                let mut f = valid.get(i).cloned().unwrap_or_default();
                if kind % 4 == 1 {
                    for _ in 0..inp.u8() % 8 {
                        let at = usize::from(inp.u16());
                        let x = inp.u8();
                        let len = f.len();
                        if let Some(b) = f.get_mut(at % len.max(1)) {
                            *b ^= x;
                        }
                    }
                    if kind & 0x80 != 0 {
                        let keep = f.len().saturating_sub(usize::from(inp.u8() % 64));
                        f.truncate(keep);
                    }
                }
                if valid.get(i) == Some(&f) {
                    if !tainted.contains(&i) {
                        pristine.insert(i);
                    }
                } else if !pristine.contains(&i) {
                    tainted.insert(i);
                }
                frames.push(f);
            }
            2 => {
                let take = sel.min(inp.data.len());
                let (raw, rest) = inp.data.split_at(take);
                inp.data = rest;
                for (i, v) in valid.iter().enumerate() {
                    if let Some(icv) = icv_of(v)
                        && raw.windows(icv.len()).any(|w| w == icv.as_slice())
                        && !pristine.contains(&i)
                    {
                        tainted.insert(i);
                    }
                }
                frames.push(raw.to_vec());
            }
            _ => {
                if let Some(last) = frames.last().cloned() {
                    frames.push(last);
                }
            }
        }
    }
    let before = bench.net.b.stack().statistics();
    bench.inject(&frames);
    let after = bench.net.b.stack().statistics();
    let counted = inbound_counted(&after) - inbound_counted(&before);
    let injected = frames.len() as u64;
    let silent = frames.iter().filter(|f| maybe_uncounted(f)).count() as u64;
    assert!(
        counted <= injected && counted + silent >= injected,
        "{}: {injected} frames injected ({silent} maybe uncounted) but {counted} counted: {:?}",
        case.name,
        after
    );
    let (a, b) = bench.addrs;
    let mut seen = BTreeSet::new();
    let mut buf = [0u8; 2048];
    while let Some(d) = bench.net.b.stack_mut().recv_udp(&mut buf) {
        if d.src.ip() != a || d.dst.ip() != b {
            continue;
        }
        assert!(
            d.secure,
            "{}: cleartext datagram delivered for protected traffic: {d:?}",
            case.name
        );
        let payload = buf.get(..d.len).unwrap_or(&[]);
        let i = (0..n).find(|i| inbound_payload(*i) == payload);
        let Some(i) = i else {
            panic!(
                "{}: delivered a payload A never sent: {payload:?}",
                case.name
            );
        };
        assert!(
            seen.insert(i),
            "{}: datagram {i} delivered twice",
            case.name
        );
    }
    for i in pristine {
        assert!(
            seen.contains(&i),
            "{}: valid datagram {i} not delivered: {:?}",
            case.name,
            after
        );
    }
}

// ---- pcap decap ----

use ipsec_nic::cli::{config as sa_config, pcap as cli_pcap, process as cli_process};

/// The SA file of [`pcap_decap`]: one SA per algorithm family, `inbound` at host B (for
/// decapsulation) or outbound at host A (to build seeds). ESP GCM-128 (IPv4), CBC-128 +
/// HMAC-SHA-256 (IPv6), AH HMAC-SHA1-96, GCM-256 tunnel, NULL + HMAC-SHA-256 over UDP 4500,
/// GMAC-128 with ESN near the 2^32 boundary.
pub fn pcap_sa_text(inbound: bool) -> String {
    let dir = if inbound { "inbound" } else { "outbound" };
    // (local, remote) as A sees them; B swaps.
    let pair = |a: &str, b: &str| {
        if inbound {
            format!("local = \"{b}\"\nremote = \"{a}\"\n")
        } else {
            format!("local = \"{a}\"\nremote = \"{b}\"\n")
        }
    };
    let tunnel = if inbound {
        "tunnel_local = \"203.0.113.2\"\ntunnel_remote = \"203.0.113.1\"\n"
    } else {
        "tunnel_local = \"203.0.113.1\"\ntunnel_remote = \"203.0.113.2\"\n"
    };
    let hex = |len: usize, seed: u8| -> String {
        (0..len)
            .map(|i| format!("{:02x}", seed.wrapping_add(i as u8)))
            .collect()
    };
    let sa =
        |spi: u32, rest: String| format!("[[sa]]\nspi = {spi:#x}\ndirection = \"{dir}\"\n{rest}\n");
    let mut t = String::new();
    t += &sa(
        0x1001,
        format!(
            "protocol = \"esp\"\n{}encryption = \"aes-gcm-128\"\nencryption_key = \"{}\"\n",
            pair("192.0.2.1", "192.0.2.2"),
            hex(20, 0x10)
        ),
    );
    t += &sa(
        0x1002,
        format!(
            "protocol = \"esp\"\n{}encryption = \"aes-cbc-128\"\nintegrity = \"hmac-sha256-128\"\nencryption_key = \"{}\"\nintegrity_key = \"{}\"\n",
            pair("2001:db8::1", "2001:db8::2"),
            hex(16, 0x20),
            hex(32, 0x30)
        ),
    );
    t += &sa(
        0x1003,
        format!(
            "protocol = \"ah\"\n{}integrity = \"hmac-sha1-96\"\nintegrity_key = \"{}\"\n",
            pair("198.51.100.1", "198.51.100.2"),
            hex(20, 0x40)
        ),
    );
    t += &sa(
        0x1004,
        format!(
            "protocol = \"esp\"\nmode = \"tunnel\"\n{}{tunnel}encryption = \"aes-gcm-256\"\nencryption_key = \"{}\"\n",
            pair("192.0.2.0/24", "198.51.100.0/24"),
            hex(36, 0x50)
        ),
    );
    t += &sa(
        0x1005,
        format!(
            "protocol = \"esp\"\n{}encryption = \"null\"\nintegrity = \"hmac-sha256-128\"\nintegrity_key = \"{}\"\nudp_encap = {{ local_port = 4500, remote_port = 4500 }}\n",
            pair("198.51.100.3", "198.51.100.4"),
            hex(32, 0x60)
        ),
    );
    t += &sa(
        0x1006,
        format!(
            "protocol = \"esp\"\n{}integrity = \"aes-gmac-128\"\nintegrity_key = \"{}\"\nesn = true\nsequence = 0xfffffffe\n",
            pair("198.51.100.5", "198.51.100.6"),
            hex(20, 0x70)
        ),
    );
    t
}

/// The parsed inbound SA file of [`pcap_decap`].
pub fn pcap_sas(inbound: bool) -> Option<sa_config::SaFile> {
    sa_config::parse("fuzz.toml", &pcap_sa_text(inbound)).ok()
}

/// Fuzz target `pcap_decap`: the input is a pcap file, decapsulated with [`pcap_sa_text`]'s
/// inbound SAs through the NIC model and through software. Properties: no panic; every
/// input frame is either output or dropped (with its index), nothing else; both paths give
/// the same output and the same drops.
pub fn pcap_decap(data: &[u8]) {
    let Ok(input) = cli_pcap::parse(data) else {
        return;
    };
    let Some(sas) = pcap_sas(true) else {
        panic!("the fixed SA file does not parse");
    };
    let hw = cli_process::process(&sas, &input, cli_process::Op::Decap, false);
    let sw = cli_process::process(&sas, &input, cli_process::Op::Decap, true);
    let (Ok((out_hw, rep_hw)), Ok((out_sw, rep_sw))) = (hw, sw) else {
        panic!("processing refused a valid SA file");
    };
    let n = input.records.len();
    for (name, out, rep) in [
        ("offload", &out_hw, &rep_hw),
        ("software", &out_sw, &rep_sw),
    ] {
        assert_eq!(
            out.records.len() + rep.dropped.len(),
            n,
            "{name}: {} out + {} dropped != {n} in",
            out.records.len(),
            rep.dropped.len()
        );
        // Frame numbers are 1-based (Wireshark's).
        let mut idx: Vec<usize> = rep.dropped.iter().map(|(i, _)| *i).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(
            idx.len(),
            rep.dropped.len(),
            "{name}: a frame dropped twice"
        );
        assert!(
            idx.iter().all(|i| (1..=n).contains(i)),
            "{name}: drop of a frame not in the input: {:?}",
            rep.dropped
        );
    }
    assert_eq!(
        out_hw.records, out_sw.records,
        "offload and software outputs differ"
    );
    // The same frames are dropped; the reason may differ: the NIC verifies the ICV before the
    // host's anti-replay check, software checks the window first (RFC 4303 §3.4.3), so a
    // corrupted replay is an ICV failure offloaded and a replay in software.
    let frames = |r: &cli_process::Report| r.dropped.iter().map(|(i, _)| *i).collect::<Vec<_>>();
    assert_eq!(
        frames(&rep_hw),
        frames(&rep_sw),
        "offload and software drop different frames: {:?} vs {:?}",
        rep_hw.dropped,
        rep_sw.dropped
    );
}

/// `pcap_decap` seeds: cleartext frames for every SA of [`pcap_sa_text`], encapsulated with
/// its outbound twin (as a pcap), plus the cleartext capture itself.
fn pcap_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let frame = |src: IpAddr, dst: IpAddr, sport: u16, payload: &[u8]| {
        let mut p = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut p = udp_packet(false, payload);
                if let Some(t) = p.get_mut(12..16) {
                    t.copy_from_slice(&s.octets());
                }
                if let Some(t) = p.get_mut(16..20) {
                    t.copy_from_slice(&d.octets());
                }
                if let Some(t) = p.get_mut(10..12) {
                    t.copy_from_slice(&[0, 0]);
                }
                let c = checksum(p.get(..20).unwrap_or(&[]));
                if let Some(t) = p.get_mut(10..12) {
                    t.copy_from_slice(&c.to_be_bytes());
                }
                p
            }
            _ => udp_packet(true, payload),
        };
        let at = if src.is_ipv4() { 20 } else { 40 };
        if let Some(t) = p.get_mut(at..at + 2) {
            t.copy_from_slice(&sport.to_be_bytes());
        }
        ethernet(&p)
    };
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let flows = [
        (v4(192, 0, 2, 1), v4(192, 0, 2, 2)),
        (IpAddr::V6(HOST_A6), IpAddr::V6(HOST_B6)),
        (v4(198, 51, 100, 1), v4(198, 51, 100, 2)),
        (v4(192, 0, 2, 7), v4(198, 51, 100, 9)),
        (v4(198, 51, 100, 3), v4(198, 51, 100, 4)),
        (v4(198, 51, 100, 5), v4(198, 51, 100, 6)),
    ];
    let mut records = Vec::new();
    for (k, (s, d)) in flows.iter().enumerate() {
        for j in 0..3u16 {
            let data = frame(*s, *d, 5000 + j, format!("pcap-seed-{k}-{j}").as_bytes());
            records.push(cli_pcap::Record {
                ts_sec: u32::from(j),
                ts_frac: 0,
                orig_len: data.len() as u32,
                data,
            });
        }
    }
    let clear = cli_pcap::Capture {
        nanos: false,
        snaplen: 65535,
        records,
    };
    out.push(("cleartext", cli_pcap::write(&clear)));
    if let Some(sas) = pcap_sas(false)
        && let Ok((enc, _)) = cli_process::process(&sas, &clear, cli_process::Op::Encap, true)
    {
        out.push(("protected", cli_pcap::write(&enc)));
        let mut dup = enc.clone();
        dup.records.extend(enc.records.iter().rev().cloned());
        out.push(("protected-replayed", cli_pcap::write(&dup)));
    }
    out
}
