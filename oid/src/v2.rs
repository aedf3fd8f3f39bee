//! IPsec offload v2 set requests: `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA`, `_ADD_SA_EX`,
//! `_DELETE_SA`, `_UPDATE_SA` (ndis-wfp-abi.md §3.15, §4.7, §8.3).
//!
//! # Emulation convention for buffers (not Windows behaviour)
//!
//! On Windows, `Next` is a kernel pointer and the buffers live in kernel memory. Here an
//! information buffer is a byte array, so:
//!
//! - `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA`: the buffer holds one or more
//!   `IPSEC_OFFLOAD_V2_ADD_SA` records, the first at offset 0. Each record's key data is
//!   `KeyLength` bytes at record offset 168 (`KeyData`); each algorithm's key is `KeyLength`
//!   bytes at `KeyOffsetBytes` inside that key data. `Next` is the byte offset of the next
//!   record from the start of the buffer (0 = last). A next record must start at an 8-aligned
//!   offset at or after the end of the previous record (its 176 bytes or its key data, whichever
//!   ends later) and lie inside the buffer; this guarantees termination.
//! - `_DELETE_SA`: the same list convention with 24-byte `IPSEC_OFFLOAD_V2_DELETE_SA` records.
//! - `_ADD_SA_EX`: one record; its key data is `KeyLength` bytes at `KeyOffset` bytes from the
//!   start of the buffer. [`AddSaExV2Request::to_bytes`] places it right after the record (176).
//! - `_UPDATE_SA`: one 32-byte record.
//!
//! # Semantics
//!
//! - Header: `Type` = `NDIS_OBJECT_TYPE_DEFAULT`, `Revision` = 1, `Size` ≥ the record size.
//! - `Flags`: `IPSEC_OFFLOAD_V2_INBOUND` (else outbound), `IPSEC_OFFLOAD_V2_IPv6` (selects the
//!   IPv6 endpoint arm); endpoints are exposed as [`IpAddr`], IPv4 ones in network byte order in
//!   memory like v1's `IPAddr`.
//! - `NumExtHdrs` 1 or 2; with 2, `SecAssoc` must be [ESP, AH] (processing order, as in v1).
//! - Per SA: `Flags` may only hold `IPSEC_OFFLOAD_V2_ESN_SA`; `Operation` AH (1) or ESP (2);
//!   `Identifier` a single documented bit (0 = none). AH needs an authentication algorithm and
//!   no encryption algorithm. An ESP SA without encryption algorithm, or with
//!   `IPSEC_OFFLOAD_V2_ENCRYPTION_NONE`, is NULL encryption ([`ConfAlgorithm::None`]). With
//!   AES-GCM, only `EncryptionAlgorithm` carries the key: `AuthenticationAlgorithm` must be 0
//!   or the same-size `AES_GCM` bit and its key fields are ignored (parsed as
//!   [`IntegrityAlgorithm::None`]). `AdditionalInfo` is the ICV length for GCM/GMAC: 16, or 0
//!   meaning 16. `KeyLength` must be the algorithm's key length.
//!
//! # Errors
//!
//! | condition | status |
//! |---|---|
//! | buffer shorter than the first record (176 / 24 / 32) | `INVALID_LENGTH`, bytes_needed |
//! | key data beyond the buffer | `INVALID_LENGTH`, bytes_needed = its end |
//! | header `Type`/`Revision`/`Size` wrong | `INVALID_DATA` |
//! | `Next` misaligned, backwards, overlapping or outside the buffer | `INVALID_DATA` |
//! | unknown ADD_SA `Flags` bit, unknown `UdpEspEncapsulation` | `INVALID_DATA` |
//! | `NumExtHdrs` 0 or > 2 | `INVALID_DATA` |
//! | two SAs other than [ESP, AH] | `NOT_SUPPORTED` |
//! | unknown SA `Flags` bit, unknown `Operation`, unknown or multi-bit `Identifier` | `INVALID_DATA` |
//! | AH without authentication or with encryption | `INVALID_DATA` |
//! | ESP without any authentication; GCM with another authentication algorithm | `NOT_SUPPORTED` |
//! | `KeyLength` ≠ the algorithm's key length, key outside the key data | `INVALID_DATA` |
//! | `AdditionalInfo` (ICV length) other than 0/16 for GCM/GMAC | `NOT_SUPPORTED` |

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::OffloadHandle;
use crate::abi::*;
use crate::algo::{
    AhSa, ConfAlgorithm, Direction, EspSa, IntegrityAlgorithm, SaBundle, SaOptions, SaProtocol,
};
use crate::error::{
    OidError, SecretKey, read_at, saturate, slice_at, write_at, write_offload_handle_at,
};

const ADD_SA_LEN: usize = size_of::<IPSEC_OFFLOAD_V2_ADD_SA>();
const ADD_SA_KEY_OFFSET: usize = 168;
const ADD_SA_HANDLE_OFFSET: usize = 56;
const ADD_SA_EX_LEN: usize = size_of::<IPSEC_OFFLOAD_V2_ADD_SA_EX>();
const ADD_SA_EX_HANDLE_OFFSET: usize = 48;
const DELETE_SA_LEN: usize = size_of::<IPSEC_OFFLOAD_V2_DELETE_SA>();
const UPDATE_SA_LEN: usize = size_of::<IPSEC_OFFLOAD_V2_UPDATE_SA>();
const ICV_LEN: u32 = 16;

/// `UdpEspEncapsulation` of a v2 ADD_SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum V2UdpEspEncapsulation {
    /// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_NONE`.
    #[default]
    None,
    /// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT`.
    Transport,
    /// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL`.
    Tunnel,
    /// `IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL`.
    TransportOverUdpEspTunnel,
    /// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL`.
    UdpEspTransportOverTunnel,
}

impl V2UdpEspEncapsulation {
    /// The C value.
    pub fn value(self) -> u32 {
        match self {
            Self::None => IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_NONE,
            Self::Transport => IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT,
            Self::Tunnel => IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL,
            Self::TransportOverUdpEspTunnel => {
                IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL
            }
            Self::UdpEspTransportOverTunnel => {
                IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL
            }
        }
    }

    /// Parse a C value.
    pub fn from_value(v: u32) -> Option<Self> {
        [
            Self::None,
            Self::Transport,
            Self::Tunnel,
            Self::TransportOverUdpEspTunnel,
            Self::UdpEspTransportOverTunnel,
        ]
        .into_iter()
        .find(|e| e.value() == v)
    }
}

/// One v2 SA bundle to add (the content of an `IPSEC_OFFLOAD_V2_ADD_SA` record).
#[doc(alias = "IPSEC_OFFLOAD_V2_ADD_SA")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2AddSa {
    /// `IPSEC_OFFLOAD_V2_INBOUND` set or clear.
    pub direction: Direction,
    /// Source endpoint (IPv4 or IPv6, the same family as `dest`).
    pub src: IpAddr,
    /// Destination endpoint.
    pub dest: IpAddr,
    /// `UdpEspEncapsulation`.
    pub udp_esp: V2UdpEspEncapsulation,
    /// The SAs in processing order, with keys and ESN options.
    pub sas: SaBundle,
}

/// A validated `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA` request: one or more bundles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSaV2Request {
    /// The records in list order.
    pub entries: Vec<V2AddSa>,
}

/// A validated `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX` request.
#[doc(alias = "IPSEC_OFFLOAD_V2_ADD_SA_EX")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSaExV2Request {
    /// The bundle.
    pub sa: V2AddSa,
    /// `SourceSwitchPortId`.
    pub source_switch_port_id: u32,
    /// `VlanId`.
    pub vlan_id: u16,
}

/// A validated `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA` request.
#[doc(alias = "IPSEC_OFFLOAD_V2_DELETE_SA")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteSaV2Request {
    /// The SA bundles to delete, in list order (at least one).
    pub offload_handles: Vec<OffloadHandle>,
}

/// A validated `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA` request.
#[doc(alias = "IPSEC_OFFLOAD_V2_UPDATE_SA")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateSaV2Request {
    /// The SA bundle.
    pub offload_handle: OffloadHandle,
    /// Which SA of the bundle (`Operation`).
    pub protocol: SaProtocol,
    /// Its SPI.
    pub spi: u32,
    /// The new ESN high-order bits.
    pub sequence_number_high_order: u32,
}

fn check_header(h: NDIS_OBJECT_HEADER, record_len: usize) -> Result<(), OidError> {
    if h.Type != NDIS_OBJECT_TYPE_DEFAULT {
        return Err(OidError::invalid_data(
            "header type is not NDIS_OBJECT_TYPE_DEFAULT",
        ));
    }
    if h.Revision != 1 {
        return Err(OidError::invalid_data("header revision is not 1"));
    }
    if usize::from(h.Size) < record_len {
        return Err(OidError::invalid_data("header size below the record size"));
    }
    Ok(())
}

fn header(record_len: usize) -> NDIS_OBJECT_HEADER {
    NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_DEFAULT,
        Revision: 1,
        Size: u16::try_from(record_len).unwrap_or(u16::MAX),
    }
}

/// Walk a `Next` chain and return each record's offset.
///
/// `record_end(offset)` gives the end of the record at `offset` (its key data included) or an
/// error.
fn walk_chain(
    buf: &[u8],
    record_len: usize,
    mut record_end: impl FnMut(usize) -> Result<usize, OidError>,
) -> Result<Vec<usize>, OidError> {
    if buf.len() < record_len {
        return Err(OidError::invalid_length(
            record_len,
            "buffer shorter than the first record",
        ));
    }
    let mut offsets = vec![0usize];
    let mut at = 0usize;
    loop {
        let end = record_end(at)?;
        // `Next` is at offset 8 in both list records.
        let next: u64 = read_at(buf, at.saturating_add(8))
            .ok_or(OidError::invalid_data("record outside the buffer"))?;
        if next == 0 {
            return Ok(offsets);
        }
        let next =
            usize::try_from(next).map_err(|_| OidError::invalid_data("Next out of range"))?;
        if next % 8 != 0 {
            return Err(OidError::invalid_data("Next is not 8-aligned"));
        }
        if next < end {
            return Err(OidError::invalid_data(
                "Next does not move past the previous record",
            ));
        }
        if next.checked_add(record_len).is_none_or(|e| e > buf.len()) {
            return Err(OidError::invalid_data("Next record outside the buffer"));
        }
        offsets.push(next);
        at = next;
    }
}

fn endpoints(flags: u32, ep: [u8; 32], v4: IPSEC_OFFLOAD_V2_IPv4Endpoints) -> (IpAddr, IpAddr) {
    if flags & IPSEC_OFFLOAD_V2_IPv6 != 0 {
        let v6: IPSEC_OFFLOAD_V2_IPv6Endpoints = bytemuck::cast(ep);
        (
            IpAddr::V6(Ipv6Addr::from(v6.SrcAddr)),
            IpAddr::V6(Ipv6Addr::from(v6.DestAddr)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(v4.SrcAddr.to_ne_bytes())),
            IpAddr::V4(Ipv4Addr::from(v4.DestAddr.to_ne_bytes())),
        )
    }
}

/// The key bytes of one algorithm inside `key_data`.
fn algo_key(
    info: &IPSEC_OFFLOAD_V2_ALGORITHM_INFO,
    expected: usize,
    key_data: &[u8],
) -> Result<SecretKey, OidError> {
    if usize::try_from(info.KeyLength).ok() != Some(expected) {
        return Err(OidError::invalid_data(
            "KeyLength does not match the algorithm",
        ));
    }
    if expected == 0 {
        return Ok(SecretKey::default());
    }
    let off = usize::try_from(info.KeyOffsetBytes)
        .map_err(|_| OidError::invalid_data("KeyOffsetBytes out of range"))?;
    slice_at(key_data, off, expected)
        .map(SecretKey::from_slice)
        .ok_or(OidError::invalid_data("algorithm key outside the key data"))
}

fn check_icv(info: &IPSEC_OFFLOAD_V2_ALGORITHM_INFO) -> Result<(), OidError> {
    match info.AdditionalInfo {
        0 | ICV_LEN => Ok(()),
        _ => Err(OidError::not_supported("GCM/GMAC ICV length other than 16")),
    }
}

enum ParsedSa {
    Ah(AhSa),
    Esp(EspSa),
}

fn parse_v2_sa(
    sa: &IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION,
    key_data: &[u8],
) -> Result<ParsedSa, OidError> {
    if sa.Flags & !IPSEC_OFFLOAD_V2_ESN_SA != 0 {
        return Err(OidError::invalid_data("unknown SA flag"));
    }
    let protocol = SaProtocol::from_operation(sa.Operation)
        .ok_or(OidError::invalid_data("Operation is neither AH nor ESP"))?;
    let auth_info = &sa.AuthenticationAlgorithm;
    let enc_info = &sa.EncryptionAlgorithm;
    let mut integrity = IntegrityAlgorithm::from_v2_identifier(auth_info.Identifier)
        .ok_or(OidError::invalid_data("unknown authentication Identifier"))?;
    let cipher = match enc_info.Identifier {
        0 => None,
        id => Some(
            ConfAlgorithm::from_v2_identifier(id)
                .ok_or(OidError::invalid_data("unknown encryption Identifier"))?,
        ),
    };
    let options = SaOptions {
        integrity_rounds: 0,
        conf_rounds: 0,
        esn: sa.Flags & IPSEC_OFFLOAD_V2_ESN_SA != 0,
        sequence_number_high_order: sa.SequenceNumberHighOrder,
    };
    match protocol {
        SaProtocol::Ah => {
            if integrity == IntegrityAlgorithm::None {
                return Err(OidError::invalid_data(
                    "AH SA without an authentication algorithm",
                ));
            }
            if cipher.is_some() {
                return Err(OidError::invalid_data("AH SA with an encryption algorithm"));
            }
            if integrity.is_gmac() {
                check_icv(auth_info)?;
            }
            let integrity_key = algo_key(auth_info, integrity.key_len(), key_data)?;
            Ok(ParsedSa::Ah(AhSa {
                spi: sa.Spi,
                integrity,
                integrity_key,
                options,
            }))
        }
        SaProtocol::Esp => {
            let cipher = cipher.unwrap_or(ConfAlgorithm::None);
            if cipher.is_aead() {
                let same_size = match cipher {
                    ConfAlgorithm::AesGcm128 => IntegrityAlgorithm::AesGmac128,
                    ConfAlgorithm::AesGcm192 => IntegrityAlgorithm::AesGmac192,
                    _ => IntegrityAlgorithm::AesGmac256,
                };
                if integrity != IntegrityAlgorithm::None && integrity != same_size {
                    return Err(OidError::not_supported(
                        "AES-GCM combined with another authentication algorithm",
                    ));
                }
                integrity = IntegrityAlgorithm::None;
                check_icv(enc_info)?;
            } else if integrity == IntegrityAlgorithm::None {
                return Err(OidError::not_supported("ESP SA without authentication"));
            } else if integrity.is_gmac() {
                check_icv(auth_info)?;
            }
            let cipher_key = algo_key(enc_info, cipher.key_len(), key_data)?;
            let integrity_key = if integrity == IntegrityAlgorithm::None {
                SecretKey::default()
            } else {
                algo_key(auth_info, integrity.key_len(), key_data)?
            };
            Ok(ParsedSa::Esp(EspSa {
                spi: sa.Spi,
                cipher,
                cipher_key,
                integrity,
                integrity_key,
                options,
            }))
        }
    }
}

/// Fields shared by ADD_SA and ADD_SA_EX records.
struct Body<'a> {
    num_ext_hdrs: u32,
    flags: u32,
    endpoints: (IpAddr, IpAddr),
    udp_esp: u32,
    sec_assoc: &'a [IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION; IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS],
}

fn parse_body(b: &Body<'_>, key_data: &[u8]) -> Result<V2AddSa, OidError> {
    if b.flags & !(IPSEC_OFFLOAD_V2_INBOUND | IPSEC_OFFLOAD_V2_IPv6) != 0 {
        return Err(OidError::invalid_data("unknown ADD_SA flag"));
    }
    let udp_esp = V2UdpEspEncapsulation::from_value(b.udp_esp)
        .ok_or(OidError::invalid_data("unknown UdpEspEncapsulation"))?;
    let n = match b.num_ext_hdrs {
        1 => 1,
        2 => 2,
        _ => return Err(OidError::invalid_data("NumExtHdrs outside 1..=2")),
    };
    if n == 2 {
        let [first, second] = b.sec_assoc;
        let ops = [first.Operation, second.Operation];
        if ops != [IPsecOffloadV2Esp, IPsecOffloadV2Ah] {
            // Unknown operations are INVALID_DATA, checked per SA first.
            for op in ops {
                SaProtocol::from_operation(op)
                    .ok_or(OidError::invalid_data("Operation is neither AH nor ESP"))?;
            }
            return Err(OidError::not_supported(
                "the only supported SA pair is [ESP, AH]",
            ));
        }
    }
    let mut parsed = Vec::with_capacity(2);
    for sa in b.sec_assoc.iter().take(n) {
        parsed.push(parse_v2_sa(sa, key_data)?);
    }
    let mut it = parsed.into_iter();
    let sas = match (it.next(), it.next()) {
        (Some(ParsedSa::Esp(e)), Some(ParsedSa::Ah(a))) => SaBundle::EspThenAh(e, a),
        (Some(ParsedSa::Esp(e)), None) => SaBundle::Esp(e),
        (Some(ParsedSa::Ah(a)), None) => SaBundle::Ah(a),
        _ => {
            return Err(OidError::not_supported(
                "the only supported SA pair is [ESP, AH]",
            ));
        }
    };
    Ok(V2AddSa {
        direction: if b.flags & IPSEC_OFFLOAD_V2_INBOUND != 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
        src: b.endpoints.0,
        dest: b.endpoints.1,
        udp_esp,
        sas,
    })
}

/// What emit needs for one record: the fields, the key data and its length.
struct EmitParts {
    flags: u32,
    num_ext_hdrs: u32,
    v4: Option<IPSEC_OFFLOAD_V2_IPv4Endpoints>,
    v6: Option<IPSEC_OFFLOAD_V2_IPv6Endpoints>,
    sec: [IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION; IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS],
    keys: Vec<u8>,
}

impl Drop for EmitParts {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.keys);
    }
}

fn algo_info(
    identifier: u32,
    key: &[u8],
    keys: &mut Vec<u8>,
    aead_or_gmac: bool,
) -> IPSEC_OFFLOAD_V2_ALGORITHM_INFO {
    let off = keys.len();
    keys.extend_from_slice(key);
    IPSEC_OFFLOAD_V2_ALGORITHM_INFO {
        Identifier: identifier,
        KeyLength: saturate(key.len()),
        KeyOffsetBytes: if key.is_empty() { 0 } else { saturate(off) },
        AdditionalInfo: if aead_or_gmac { ICV_LEN } else { 0 },
    }
}

fn v2_sa_ah(a: &AhSa, keys: &mut Vec<u8>) -> IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION {
    IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION {
        Flags: if a.options.esn {
            IPSEC_OFFLOAD_V2_ESN_SA
        } else {
            0
        },
        Operation: IPsecOffloadV2Ah,
        Spi: a.spi,
        AuthenticationAlgorithm: algo_info(
            a.integrity.v2_identifier(),
            a.integrity_key.expose(),
            keys,
            a.integrity.is_gmac(),
        ),
        EncryptionAlgorithm: IPSEC_OFFLOAD_V2_ALGORITHM_INFO::default(),
        SequenceNumberHighOrder: a.options.sequence_number_high_order,
    }
}

fn v2_sa_esp(e: &EspSa, keys: &mut Vec<u8>) -> IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION {
    let enc = algo_info(
        e.cipher.v2_identifier(),
        e.cipher_key.expose(),
        keys,
        e.cipher.is_aead(),
    );
    let auth = algo_info(
        e.integrity.v2_identifier(),
        e.integrity_key.expose(),
        keys,
        e.integrity.is_gmac(),
    );
    IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION {
        Flags: if e.options.esn {
            IPSEC_OFFLOAD_V2_ESN_SA
        } else {
            0
        },
        Operation: IPsecOffloadV2Esp,
        Spi: e.spi,
        AuthenticationAlgorithm: auth,
        EncryptionAlgorithm: enc,
        SequenceNumberHighOrder: e.options.sequence_number_high_order,
    }
}

impl V2AddSa {
    fn emit_parts(&self) -> Result<EmitParts, OidError> {
        self.sas.validate()?;
        let v1_only = self.sas.esp().is_some_and(|e| e.options.has_v1_only())
            || self.sas.ah().is_some_and(|a| a.options.has_v1_only());
        if v1_only {
            return Err(OidError::invalid_data(
                "algoRounds cannot be expressed in a v2 ADD_SA",
            ));
        }
        let mut flags = match self.direction {
            Direction::Inbound => IPSEC_OFFLOAD_V2_INBOUND,
            Direction::Outbound => 0,
        };
        let (v4, v6) = match (self.src, self.dest) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (
                Some(IPSEC_OFFLOAD_V2_IPv4Endpoints {
                    SrcAddr: u32::from_ne_bytes(s.octets()),
                    DestAddr: u32::from_ne_bytes(d.octets()),
                }),
                None,
            ),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                flags |= IPSEC_OFFLOAD_V2_IPv6;
                (
                    None,
                    Some(IPSEC_OFFLOAD_V2_IPv6Endpoints {
                        SrcAddr: s.octets(),
                        DestAddr: d.octets(),
                    }),
                )
            }
            _ => {
                return Err(OidError::invalid_data(
                    "source and destination of different families",
                ));
            }
        };
        let mut keys = Vec::new();
        let none = IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION::default();
        let (num_ext_hdrs, sec) = match &self.sas {
            SaBundle::Ah(a) => (1, [v2_sa_ah(a, &mut keys), none]),
            SaBundle::Esp(e) => (1, [v2_sa_esp(e, &mut keys), none]),
            SaBundle::EspThenAh(e, a) => {
                let esp = v2_sa_esp(e, &mut keys);
                (2, [esp, v2_sa_ah(a, &mut keys)])
            }
        };
        Ok(EmitParts {
            flags,
            num_ext_hdrs,
            v4,
            v6,
            sec,
            keys,
        })
    }
}

fn record_len_with_keys(key_len: usize) -> usize {
    // Round up to 8 so the next record starts 8-aligned.
    ADD_SA_KEY_OFFSET
        .saturating_add(key_len)
        .max(ADD_SA_LEN)
        .saturating_add(7)
        & !7
}

impl AddSaV2Request {
    /// Parse the information buffer (see the module documentation).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let mut entries = Vec::new();
        walk_chain(buf, ADD_SA_LEN, |at| {
            let r: IPSEC_OFFLOAD_V2_ADD_SA =
                read_at(buf, at).ok_or(OidError::invalid_data("record outside the buffer"))?;
            check_header(r.Header, ADD_SA_LEN)?;
            let key_len = usize::try_from(r.KeyLength)
                .map_err(|_| OidError::invalid_data("KeyLength out of range"))?;
            let key_start = at.saturating_add(ADD_SA_KEY_OFFSET);
            let key_end = key_start
                .checked_add(key_len)
                .ok_or(OidError::invalid_data("KeyLength out of range"))?;
            let key_data = buf.get(key_start..key_end).ok_or(OidError::invalid_length(
                key_end,
                "KeyData reaches beyond the buffer",
            ))?;
            let body = Body {
                num_ext_hdrs: r.NumExtHdrs,
                flags: r.Flags,
                endpoints: endpoints(r.Flags, r.Endpoints, r.ipv4_endpoints()),
                udp_esp: r.UdpEspEncapsulation,
                sec_assoc: &r.SecAssoc,
            };
            entries.push(parse_body(&body, key_data)?);
            Ok(key_end.max(at.saturating_add(ADD_SA_LEN)))
        })?;
        Ok(AddSaV2Request { entries })
    }

    /// The information-buffer length [`Self::to_bytes`] produces.
    pub fn buffer_len(&self) -> usize {
        self.entries.iter().fold(0usize, |acc, e| {
            let keys = e
                .sas
                .esp()
                .map_or(0, |s| {
                    s.cipher_key.len().saturating_add(s.integrity_key.len())
                })
                .saturating_add(e.sas.ah().map_or(0, |a| a.integrity_key.len()));
            acc.saturating_add(record_len_with_keys(keys))
        })
    }

    /// The information buffer: records back to back, each 8-aligned, `OffloadHandle` 0.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` for an empty list, mixed address families, v1-only options
    /// or inconsistent keys; `NOT_SUPPORTED` as the parser would.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OidError> {
        if self.entries.is_empty() {
            return Err(OidError::invalid_data(
                "an ADD_SA list needs at least one record",
            ));
        }
        let parts = self
            .entries
            .iter()
            .map(V2AddSa::emit_parts)
            .collect::<Result<Vec<_>, _>>()?;
        let lens: Vec<usize> = parts
            .iter()
            .map(|p| record_len_with_keys(p.keys.len()))
            .collect();
        let total = lens.iter().fold(0usize, |a, l| a.saturating_add(*l));
        let mut out = vec![0u8; total];
        let mut at = 0usize;
        for (i, (p, len)) in parts.iter().zip(&lens).enumerate() {
            let next = if i.saturating_add(1) == parts.len() {
                0
            } else {
                at.saturating_add(*len)
            };
            let mut r = IPSEC_OFFLOAD_V2_ADD_SA {
                Header: header(ADD_SA_LEN),
                Next: next as u64,
                NumExtHdrs: p.num_ext_hdrs,
                Flags: p.flags,
                UdpEspEncapsulation: self.entries.get(i).map_or(0, |e| e.udp_esp.value()),
                SecAssoc: p.sec,
                KeyLength: saturate(p.keys.len()),
                ..Default::default()
            };
            if let Some(v4) = p.v4 {
                r.set_ipv4_endpoints(v4);
            }
            if let Some(v6) = p.v6 {
                r.set_ipv6_endpoints(v6);
            }
            write_at(&mut out, at, &r);
            let ks = at.saturating_add(ADD_SA_KEY_OFFSET);
            if let Some(dst) = out.get_mut(ks..ks.saturating_add(p.keys.len())) {
                dst.copy_from_slice(&p.keys);
            }
            at = at.saturating_add(*len);
        }
        Ok(out)
    }

    /// Write one `OffloadHandle` per record back into the caller's buffer (NULL for a record
    /// the miniport could not offload). `handles` must have one entry per record.
    ///
    /// # Errors
    /// As [`Self::parse`] for a malformed chain; `NDIS_STATUS_INVALID_DATA` when the number of
    /// handles differs from the number of records.
    pub fn write_offload_handles(
        buf: &mut [u8],
        handles: &[OffloadHandle],
    ) -> Result<(), OidError> {
        let offsets = Self::record_offsets(buf)?;
        if offsets.len() != handles.len() {
            return Err(OidError::invalid_data(
                "one handle per ADD_SA record is needed",
            ));
        }
        for (off, h) in offsets.into_iter().zip(handles) {
            write_offload_handle_at(buf, off.saturating_add(ADD_SA_HANDLE_OFFSET), *h)?;
        }
        Ok(())
    }

    /// Read back the `OffloadHandle` of every record (the transport's side of the write-back).
    ///
    /// # Errors
    /// As [`Self::parse`] for a malformed chain.
    pub fn read_offload_handles(buf: &[u8]) -> Result<Vec<OffloadHandle>, OidError> {
        Self::record_offsets(buf)?
            .into_iter()
            .map(|off| {
                read_at::<u64>(buf, off.saturating_add(ADD_SA_HANDLE_OFFSET))
                    .map(OffloadHandle)
                    .ok_or(OidError::invalid_data("record outside the buffer"))
            })
            .collect()
    }

    fn record_offsets(buf: &[u8]) -> Result<Vec<usize>, OidError> {
        walk_chain(buf, ADD_SA_LEN, |at| {
            let r: IPSEC_OFFLOAD_V2_ADD_SA =
                read_at(buf, at).ok_or(OidError::invalid_data("record outside the buffer"))?;
            check_header(r.Header, ADD_SA_LEN)?;
            let key_len = usize::try_from(r.KeyLength)
                .map_err(|_| OidError::invalid_data("KeyLength out of range"))?;
            Ok(at
                .saturating_add(ADD_SA_KEY_OFFSET)
                .saturating_add(key_len)
                .max(at.saturating_add(ADD_SA_LEN)))
        })
    }
}

impl AddSaExV2Request {
    /// Parse the information buffer (see the module documentation).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let r: IPSEC_OFFLOAD_V2_ADD_SA_EX = read_at(buf, 0).ok_or(OidError::invalid_length(
            ADD_SA_EX_LEN,
            "buffer shorter than IPSEC_OFFLOAD_V2_ADD_SA_EX",
        ))?;
        check_header(r.Header, ADD_SA_EX_LEN)?;
        let key_off = usize::try_from(r.KeyOffset)
            .map_err(|_| OidError::invalid_data("KeyOffset out of range"))?;
        let key_len = usize::try_from(r.KeyLength)
            .map_err(|_| OidError::invalid_data("KeyLength out of range"))?;
        let key_end = key_off
            .checked_add(key_len)
            .ok_or(OidError::invalid_data("KeyOffset + KeyLength overflows"))?;
        let key_data = buf.get(key_off..key_end).ok_or(OidError::invalid_length(
            key_end,
            "key data reaches beyond the buffer",
        ))?;
        let body = Body {
            num_ext_hdrs: r.NumExtHdrs,
            flags: r.Flags,
            endpoints: endpoints(r.Flags, r.Endpoints, r.ipv4_endpoints()),
            udp_esp: r.UdpEspEncapsulation,
            sec_assoc: &r.SecAssoc,
        };
        Ok(AddSaExV2Request {
            sa: parse_body(&body, key_data)?,
            source_switch_port_id: r.SourceSwitchPortId,
            vlan_id: r.VlanId,
        })
    }

    /// The information buffer: the record, then the key data at offset 176.
    ///
    /// # Errors
    /// As [`AddSaV2Request::to_bytes`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, OidError> {
        let p = self.sa.emit_parts()?;
        let mut r = IPSEC_OFFLOAD_V2_ADD_SA_EX {
            Header: header(ADD_SA_EX_LEN),
            NumExtHdrs: p.num_ext_hdrs,
            Flags: p.flags,
            UdpEspEncapsulation: self.sa.udp_esp.value(),
            SecAssoc: p.sec,
            KeyLength: saturate(p.keys.len()),
            KeyOffset: saturate(ADD_SA_EX_LEN),
            SourceSwitchPortId: self.source_switch_port_id,
            VlanId: self.vlan_id,
            ..Default::default()
        };
        if let Some(v4) = p.v4 {
            r.set_ipv4_endpoints(v4);
        }
        if let Some(v6) = p.v6 {
            r.set_ipv6_endpoints(v6);
        }
        let mut out = bytemuck::bytes_of(&r).to_vec();
        out.extend_from_slice(&p.keys);
        Ok(out)
    }

    /// Write the miniport's `OffloadHandle` back (offset 48).
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` when the buffer is shorter than 56 bytes.
    pub fn write_offload_handle(buf: &mut [u8], handle: OffloadHandle) -> Result<(), OidError> {
        write_offload_handle_at(buf, ADD_SA_EX_HANDLE_OFFSET, handle)
    }

    /// Read back the `OffloadHandle`.
    pub fn read_offload_handle(buf: &[u8]) -> Option<OffloadHandle> {
        read_at::<u64>(buf, ADD_SA_EX_HANDLE_OFFSET).map(OffloadHandle)
    }
}

impl DeleteSaV2Request {
    /// Parse the information buffer (a `Next` list of 24-byte records).
    ///
    /// # Errors
    /// See the module documentation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let mut offload_handles = Vec::new();
        walk_chain(buf, DELETE_SA_LEN, |at| {
            let r: IPSEC_OFFLOAD_V2_DELETE_SA =
                read_at(buf, at).ok_or(OidError::invalid_data("record outside the buffer"))?;
            check_header(r.Header, DELETE_SA_LEN)?;
            offload_handles.push(OffloadHandle(r.OffloadHandle));
            Ok(at.saturating_add(DELETE_SA_LEN))
        })?;
        Ok(DeleteSaV2Request { offload_handles })
    }

    /// The information buffer.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_DATA` for an empty list.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OidError> {
        if self.offload_handles.is_empty() {
            return Err(OidError::invalid_data(
                "a DELETE_SA list needs at least one record",
            ));
        }
        let mut out = Vec::with_capacity(self.offload_handles.len().saturating_mul(DELETE_SA_LEN));
        for (i, h) in self.offload_handles.iter().enumerate() {
            let next = if i.saturating_add(1) == self.offload_handles.len() {
                0
            } else {
                i.saturating_add(1).saturating_mul(DELETE_SA_LEN) as u64
            };
            let r = IPSEC_OFFLOAD_V2_DELETE_SA {
                Header: header(DELETE_SA_LEN),
                _pad0: [0; 4],
                Next: next,
                OffloadHandle: h.0,
            };
            out.extend_from_slice(bytemuck::bytes_of(&r));
        }
        Ok(out)
    }
}

impl UpdateSaV2Request {
    /// Parse the information buffer.
    ///
    /// # Errors
    /// `INVALID_LENGTH` (32) for a short buffer; `INVALID_DATA` for a bad header or operation.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let r: IPSEC_OFFLOAD_V2_UPDATE_SA = read_at(buf, 0).ok_or(OidError::invalid_length(
            UPDATE_SA_LEN,
            "buffer shorter than IPSEC_OFFLOAD_V2_UPDATE_SA",
        ))?;
        check_header(r.Header, UPDATE_SA_LEN)?;
        Ok(UpdateSaV2Request {
            offload_handle: OffloadHandle(r.OffloadHandle),
            protocol: SaProtocol::from_operation(r.Operation)
                .ok_or(OidError::invalid_data("Operation is neither AH nor ESP"))?,
            spi: r.Spi,
            sequence_number_high_order: r.SequenceNumberHighOrder,
        })
    }

    /// The information buffer.
    pub fn to_bytes(&self) -> [u8; 32] {
        bytemuck::cast(IPSEC_OFFLOAD_V2_UPDATE_SA {
            Header: header(UPDATE_SA_LEN),
            OffloadHandle: self.offload_handle.0,
            Operation: self.protocol.operation(),
            Spi: self.spi,
            SequenceNumberHighOrder: self.sequence_number_high_order,
            ..Default::default()
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::NdisStatus;
    use crate::v1::tests::{ah_sha1, esp_cbc_sha256, esp_gcm, key};

    fn esn(mut e: EspSa) -> EspSa {
        e.options.esn = true;
        e.options.sequence_number_high_order = 7;
        e
    }

    pub(crate) fn v4_entry(sas: SaBundle) -> V2AddSa {
        V2AddSa {
            direction: Direction::Outbound,
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dest: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
            udp_esp: V2UdpEspEncapsulation::None,
            sas,
        }
    }

    fn v6_entry(sas: SaBundle) -> V2AddSa {
        V2AddSa {
            direction: Direction::Inbound,
            src: "2001:db8::1".parse().unwrap(),
            dest: "2001:db8::2".parse().unwrap(),
            udp_esp: V2UdpEspEncapsulation::Transport,
            sas,
        }
    }

    fn one(sas: SaBundle) -> Vec<u8> {
        AddSaV2Request {
            entries: vec![v4_entry(sas)],
        }
        .to_bytes()
        .unwrap()
    }

    fn status(b: &[u8]) -> NdisStatus {
        AddSaV2Request::parse(b).unwrap_err().status()
    }

    fn set_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    // Offsets in the record and in SecAssoc[i].
    const SA0: usize = 68;
    const SA1: usize = 116;
    const AUTH: usize = 12;
    const ENC: usize = 28;

    #[test]
    fn list_round_trip_and_layout() {
        let req = AddSaV2Request {
            entries: vec![
                v4_entry(SaBundle::Esp(esn(esp_gcm()))),
                v6_entry(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1())),
                v4_entry(SaBundle::Ah(ah_sha1())),
            ],
        };
        let b = req.to_bytes().unwrap();
        assert_eq!(b.len(), req.buffer_len());
        // First record: 168 + 20 key bytes = 188, rounded up to 192.
        assert_eq!(b[8..16], 192u64.to_ne_bytes(), "Next");
        assert_eq!(b[0..4], [0x80, 1, 176, 0]);
        assert_eq!(b[24..32], [192, 0, 2, 1, 198, 51, 100, 2]);
        assert_eq!(b[SA0..SA0 + 4], IPSEC_OFFLOAD_V2_ESN_SA.to_ne_bytes());
        assert_eq!(
            b[SA0 + ENC..SA0 + ENC + 4],
            IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128.to_ne_bytes()
        );
        assert_eq!(
            b[SA0 + ENC + 12..SA0 + ENC + 16],
            16u32.to_ne_bytes(),
            "ICV length"
        );
        assert_eq!(b[SA0 + 44..SA0 + 48], 7u32.to_ne_bytes());
        assert_eq!(b[164..168], 20u32.to_ne_bytes());
        assert_eq!(b[168..188], *key(20, 0x10).expose());
        // Second record (IPv6, inbound).
        assert_eq!(
            b[192 + 20..192 + 24],
            (IPSEC_OFFLOAD_V2_INBOUND | IPSEC_OFFLOAD_V2_IPv6).to_ne_bytes()
        );
        assert_eq!(b[192 + 24..192 + 26], [0x20, 0x01]);
        assert_eq!(AddSaV2Request::parse(&b).unwrap(), req);
    }

    #[test]
    fn handles_write_back_per_record() {
        let req = AddSaV2Request {
            entries: vec![
                v4_entry(SaBundle::Ah(ah_sha1())),
                v4_entry(SaBundle::Esp(esp_gcm())),
            ],
        };
        let mut b = req.to_bytes().unwrap();
        let hs = [OffloadHandle(5), OffloadHandle::NULL];
        AddSaV2Request::write_offload_handles(&mut b, &hs).unwrap();
        assert_eq!(b[56..64], 5u64.to_ne_bytes());
        assert_eq!(AddSaV2Request::read_offload_handles(&b).unwrap(), hs);
        let e = AddSaV2Request::write_offload_handles(&mut b, &hs[..1]).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_DATA);
        assert_eq!(
            AddSaV2Request::parse(&b).unwrap(),
            req,
            "handles do not disturb parsing"
        );
    }

    #[test]
    fn short_buffer_is_invalid_length() {
        let b = one(SaBundle::Ah(ah_sha1()));
        let e = AddSaV2Request::parse(&b[..175]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 176)
        );
        let b = one(SaBundle::Esp(esp_cbc_sha256()));
        let e = AddSaV2Request::parse(&b[..200]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 232)
        );
    }

    #[test]
    fn bad_header_is_invalid_data() {
        for (off, v) in [(0usize, 0xA7u8), (1, 2), (2, 100)] {
            let mut b = one(SaBundle::Ah(ah_sha1()));
            b[off] = v;
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "{off}");
        }
    }

    #[test]
    fn bad_next_is_invalid_data() {
        let req = AddSaV2Request {
            entries: vec![
                v4_entry(SaBundle::Ah(ah_sha1())),
                v4_entry(SaBundle::Ah(ah_sha1())),
            ],
        };
        let good = req.to_bytes().unwrap();
        for next in [
            0u64.wrapping_sub(8),
            8,
            196,
            193,
            good.len() as u64,
            1 << 40,
        ] {
            let mut b = good.clone();
            b[8..16].copy_from_slice(&next.to_ne_bytes());
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "Next {next}");
        }
        // A second record pointing back at the first.
        let mut b = good.clone();
        b[192 + 8..192 + 16].copy_from_slice(&0u64.to_ne_bytes());
        assert!(AddSaV2Request::parse(&b).is_ok());
        b[192 + 8..192 + 16].copy_from_slice(&192u64.to_ne_bytes());
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn bad_flags_encapsulation_and_num_ext_hdrs_are_invalid_data() {
        for (off, v) in [(20usize, 0x2u32), (64, 3), (64, 16), (16, 0), (16, 3)] {
            let mut b = one(SaBundle::Ah(ah_sha1()));
            set_u32(&mut b, off, v);
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "{off}={v}");
        }
    }

    #[test]
    fn pair_other_than_esp_then_ah_is_not_supported() {
        let mut b = one(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1()));
        set_u32(&mut b, SA0 + 4, IPsecOffloadV2Ah as u32);
        set_u32(&mut b, SA1 + 4, IPsecOffloadV2Esp as u32);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn bad_sa_fields_are_invalid_data() {
        let cases: [(usize, u32); 5] = [
            (SA0, 2),             // unknown SA flag
            (SA0 + 4, 3),         // IPsecOffloadV2Max
            (SA0 + AUTH, 0x3),    // two bits
            (SA0 + AUTH, 0x40),   // unknown bit
            (SA0 + AUTH + 4, 16), // KeyLength mismatch
        ];
        for (off, v) in cases {
            let mut b = one(SaBundle::Ah(ah_sha1()));
            set_u32(&mut b, off, v);
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "{off}={v:#x}");
        }
        // Key outside the key data.
        let mut b = one(SaBundle::Ah(ah_sha1()));
        set_u32(&mut b, SA0 + AUTH + 8, 1);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
        // AH with an encryption algorithm; AH without authentication.
        let mut b = one(SaBundle::Ah(ah_sha1()));
        set_u32(&mut b, SA0 + ENC, IPSEC_OFFLOAD_V2_ENCRYPTION_NONE);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
        let mut b = one(SaBundle::Ah(ah_sha1()));
        set_u32(&mut b, SA0 + AUTH, 0);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn esp_rules_and_icv_length() {
        // ESP with NULL encryption and no authentication.
        let mut b = one(SaBundle::Esp(esp_cbc_sha256()));
        set_u32(&mut b, SA0 + ENC, IPSEC_OFFLOAD_V2_ENCRYPTION_NONE);
        set_u32(&mut b, SA0 + ENC + 4, 0);
        set_u32(&mut b, SA0 + AUTH, 0);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
        // GCM with SHA-256 authentication.
        let mut b = one(SaBundle::Esp(esp_gcm()));
        set_u32(&mut b, SA0 + AUTH, IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
        // GCM with an 8-byte ICV.
        let mut b = one(SaBundle::Esp(esp_gcm()));
        set_u32(&mut b, SA0 + ENC + 12, 8);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
        // GCM with the matching GMAC identifier and ICV 0 (= 16) is the same SA.
        let mut b = one(SaBundle::Esp(esp_gcm()));
        set_u32(
            &mut b,
            SA0 + AUTH,
            IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128,
        );
        set_u32(&mut b, SA0 + AUTH + 4, 99);
        set_u32(&mut b, SA0 + ENC + 12, 0);
        assert_eq!(
            AddSaV2Request::parse(&b).unwrap().entries[0].sas,
            SaBundle::Esp(esp_gcm())
        );
        // ESP without encryption identifier = NULL encryption.
        let mut null = esp_cbc_sha256();
        null.cipher = ConfAlgorithm::None;
        null.cipher_key = SecretKey::default();
        let mut b = one(SaBundle::Esp(null.clone()));
        set_u32(&mut b, SA0 + ENC, 0);
        assert_eq!(
            AddSaV2Request::parse(&b).unwrap().entries[0].sas,
            SaBundle::Esp(null)
        );
    }

    #[test]
    fn emit_refusals() {
        let mut mixed = v4_entry(SaBundle::Ah(ah_sha1()));
        mixed.dest = "2001:db8::2".parse().unwrap();
        assert_eq!(
            AddSaV2Request {
                entries: vec![mixed]
            }
            .to_bytes()
            .unwrap_err()
            .status(),
            NdisStatus::INVALID_DATA
        );
        let mut rounds = ah_sha1();
        rounds.options.integrity_rounds = 1;
        let r = AddSaV2Request {
            entries: vec![v4_entry(SaBundle::Ah(rounds))],
        };
        assert_eq!(r.to_bytes().unwrap_err().status(), NdisStatus::INVALID_DATA);
        assert_eq!(
            AddSaV2Request { entries: vec![] }
                .to_bytes()
                .unwrap_err()
                .status(),
            NdisStatus::INVALID_DATA
        );
        assert!(
            DeleteSaV2Request {
                offload_handles: vec![]
            }
            .to_bytes()
            .is_err()
        );
    }

    #[test]
    fn add_sa_ex_round_trip_layout_and_errors() {
        let req = AddSaExV2Request {
            sa: v6_entry(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1())),
            source_switch_port_id: 3,
            vlan_id: 100,
        };
        let mut b = req.to_bytes().unwrap();
        assert_eq!(b.len(), 176 + 84);
        assert_eq!(b[160..164], 176u32.to_ne_bytes(), "KeyOffset");
        assert_eq!(b[168..170], 100u16.to_ne_bytes());
        assert_eq!(b[12..14], [0x20, 0x01], "IPv6 source at 12");
        assert_eq!(AddSaExV2Request::parse(&b).unwrap(), req);
        AddSaExV2Request::write_offload_handle(&mut b, OffloadHandle(0x42)).unwrap();
        assert_eq!(
            AddSaExV2Request::read_offload_handle(&b),
            Some(OffloadHandle(0x42))
        );
        assert_eq!(b[48..56], 0x42u64.to_ne_bytes());
        let e = AddSaExV2Request::parse(&b[..175]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 176)
        );
        let e = AddSaExV2Request::parse(&b[..250]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 260)
        );
        let mut bad = b.clone();
        bad[0] = 0;
        assert_eq!(
            AddSaExV2Request::parse(&bad).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        // Key data may live anywhere in the buffer, e.g. inside the record's tail padding area.
        let mut moved = b.clone();
        moved.extend_from_slice(&[0; 8]);
        let keys = moved[176..260].to_vec();
        moved[184..268].copy_from_slice(&keys);
        set_u32(&mut moved, 160, 184);
        assert_eq!(AddSaExV2Request::parse(&moved).unwrap(), req);
    }

    #[test]
    fn delete_list_round_trip_and_errors() {
        let d = DeleteSaV2Request {
            offload_handles: vec![OffloadHandle(1), OffloadHandle(2), OffloadHandle(3)],
        };
        let b = d.to_bytes().unwrap();
        assert_eq!(b.len(), 72);
        assert_eq!(b[8..16], 24u64.to_ne_bytes());
        assert_eq!(b[48 + 8..48 + 16], 0u64.to_ne_bytes());
        assert_eq!(DeleteSaV2Request::parse(&b).unwrap(), d);
        let e = DeleteSaV2Request::parse(&b[..23]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 24)
        );
        assert_eq!(
            DeleteSaV2Request::parse(&b[..47]).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
        let mut looped = b.clone();
        looped[24 + 8..24 + 16].copy_from_slice(&0u64.to_ne_bytes());
        looped[24 + 8] = 24;
        assert_eq!(
            DeleteSaV2Request::parse(&looped).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
    }

    #[test]
    fn update_round_trip_and_errors() {
        let u = UpdateSaV2Request {
            offload_handle: OffloadHandle(9),
            protocol: SaProtocol::Esp,
            spi: 0x1001,
            sequence_number_high_order: 2,
        };
        let b = u.to_bytes();
        assert_eq!(b[0..4], [0x80, 1, 32, 0]);
        assert_eq!(b[16..20], IPsecOffloadV2Esp.to_ne_bytes());
        assert_eq!(UpdateSaV2Request::parse(&b).unwrap(), u);
        let e = UpdateSaV2Request::parse(&b[..31]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 32)
        );
        let mut bad = b;
        bad[16] = 3;
        assert_eq!(
            UpdateSaV2Request::parse(&bad).unwrap_err().status(),
            NdisStatus::INVALID_DATA
        );
    }
}
