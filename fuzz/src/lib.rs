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
    out
}
