//! IPsec offload v1 set requests: `OID_TCP_TASK_IPSEC_ADD_SA`, `_ADD_UDPESP_SA`, `_DELETE_SA`,
//! `_DELETE_UDPESP_SA` (ndis-wfp-abi.md §3.4-§3.8, §8.2).
//!
//! # Conventions (emulator decisions)
//!
//! - `IPAddr`/`IPMask` fields hold the address in network byte order (first octet in the
//!   lowest-addressed byte), as Windows' `IPAddr` does; they are exposed as [`Ipv4Addr`].
//!   Ports (`USHORT`) are in network byte order too and exposed as host numbers. SPIs
//!   (`SPI_TYPE`) are host-order numbers: the SPI value itself, as WFP passes it.
//! - Selectors are the first seven fields; 0 is a wildcard (protocol 0 = any, port 0 = any,
//!   address 0 with mask 0 = any). `SrcTunnelAddr`/`DestTunnelAddr` both non-zero = tunnel SA,
//!   both zero = transport SA.
//! - Key material: `KeyLen` bytes starting at offset 180 (196 for UDP-ESP). Per SA in array
//!   order, that SA's two keys in the chosen [`KeyOrder`] (the two Microsoft pages disagree,
//!   §3.4). A key of length 0 takes no bytes.
//!
//! # Errors (in the order they are checked)
//!
//! | condition | status |
//! |---|---|
//! | buffer shorter than the struct (184 / 200) | `INVALID_LENGTH`, bytes_needed = struct size |
//! | buffer shorter than key offset + `KeyLen` | `INVALID_LENGTH`, bytes_needed = that sum |
//! | `Flags` not exactly `OFFLOAD_INBOUND_SA` or `OFFLOAD_OUTBOUND_SA` | `INVALID_DATA` |
//! | `Protocol` > 255 | `INVALID_DATA` |
//! | exactly one tunnel address zero | `INVALID_DATA` |
//! | `NumSAs` ≤ 0 or > `OFFLOAD_MAX_SAS` | `INVALID_DATA` |
//! | `NumSAs` = 3 | `NOT_SUPPORTED` |
//! | `Operation` not `AUTHENTICATE`/`ENCRYPT` | `INVALID_DATA` |
//! | `Reserved` algorithm info not zero | `INVALID_DATA` |
//! | unknown algorithm identifier (incl. `OFFLOAD_IPSEC_CONF_RESERVED`) | `INVALID_DATA` |
//! | `algoKeylen` ≠ the algorithm's key length | `INVALID_DATA` |
//! | AH without integrity algorithm, or with a non-zero `ConfAlgo` | `INVALID_DATA` |
//! | ESP with neither an AEAD cipher nor an integrity algorithm | `NOT_SUPPORTED` |
//! | ESP with an AEAD cipher *and* an integrity algorithm | `NOT_SUPPORTED` |
//! | two SAs other than [ESP, AH] | `NOT_SUPPORTED` |
//! | sum of the used `algoKeylen` ≠ `KeyLen` | `INVALID_DATA` |
//! | UDP-ESP: `UdpEncapType` not IKE (0) / OTHER (1) | `INVALID_DATA` |
//! | DELETE: buffer shorter than 8 / 16 | `INVALID_LENGTH` |

use core::net::Ipv4Addr;

use crate::abi::{self, *};
use crate::algo::{
    AhSa, ConfAlgorithm, Direction, EspSa, IntegrityAlgorithm, SaBundle, SaOptions, SaProtocol,
};
use crate::error::{OidError, SecretKey, read_at, slice_at, write_at, write_offload_handle_at};
use crate::{OffloadHandle, Oid};

/// Offset of `OffloadHandle` in `OFFLOAD_IPSEC_ADD_SA` and `OFFLOAD_IPSEC_ADD_UDPESP_SA`.
pub const ADD_SA_OFFLOAD_HANDLE_OFFSET: usize = 168;
/// Offset of `KeyMat` in `OFFLOAD_IPSEC_ADD_SA`.
pub const ADD_SA_KEY_OFFSET: usize = 180;
/// Offset of `KeyMat` in `OFFLOAD_IPSEC_ADD_UDPESP_SA`.
pub const ADD_UDPESP_SA_KEY_OFFSET: usize = 196;

/// Where each SA's two keys sit inside `KeyMat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyOrder {
    /// Confidentiality key, then integrity key (the `OFFLOAD_IPSEC_ADD_SA` page). Default.
    #[default]
    ConfidentialityFirst,
    /// Integrity key, then confidentiality key (the `OFFLOAD_ALGO_INFO` page).
    IntegrityFirst,
}

/// The transport-mode traffic selector of a v1 SA (the first seven fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    /// `SrcAddr`.
    pub src_addr: Ipv4Addr,
    /// `SrcMask`.
    pub src_mask: Ipv4Addr,
    /// `DestAddr`.
    pub dest_addr: Ipv4Addr,
    /// `DestMask`.
    pub dest_mask: Ipv4Addr,
    /// `Protocol` (0 = any).
    pub protocol: u8,
    /// `SrcPort` (0 = any).
    pub src_port: u16,
    /// `DestPort` (0 = any).
    pub dest_port: u16,
}

impl Selector {
    /// A selector matching everything.
    pub const ANY: Selector = Selector {
        src_addr: Ipv4Addr::UNSPECIFIED,
        src_mask: Ipv4Addr::UNSPECIFIED,
        dest_addr: Ipv4Addr::UNSPECIFIED,
        dest_mask: Ipv4Addr::UNSPECIFIED,
        protocol: 0,
        src_port: 0,
        dest_port: 0,
    };

    /// Whether a packet's 5-tuple falls under this selector (zero fields are wildcards;
    /// addresses compare under their masks).
    pub fn matches(
        &self,
        src: Ipv4Addr,
        dest: Ipv4Addr,
        protocol: u8,
        sport: u16,
        dport: u16,
    ) -> bool {
        let under = |a: Ipv4Addr, sel: Ipv4Addr, mask: Ipv4Addr| {
            u32::from(a) & u32::from(mask) == u32::from(sel) & u32::from(mask)
        };
        under(src, self.src_addr, self.src_mask)
            && under(dest, self.dest_addr, self.dest_mask)
            && (self.protocol == 0 || self.protocol == protocol)
            && (self.src_port == 0 || self.src_port == sport)
            && (self.dest_port == 0 || self.dest_port == dport)
    }
}

/// Outer addresses of a tunnel-mode SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelEndpoints {
    /// `SrcTunnelAddr`.
    pub src: Ipv4Addr,
    /// `DestTunnelAddr`.
    pub dest: Ipv4Addr,
}

/// `UDP_ENCAP_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UdpEncapType {
    /// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE`.
    #[doc(alias = "OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE")]
    Ike,
    /// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER`.
    #[doc(alias = "OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER")]
    Other,
}

/// The UDP encapsulation part of `OFFLOAD_IPSEC_ADD_UDPESP_SA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpEspEncap {
    /// `EncapTypeEntry.UdpEncapType`.
    pub encap_type: UdpEncapType,
    /// `EncapTypeEntry.DstEncapPort` (host number; network order on the wire).
    pub dst_port: u16,
    /// `EncapTypeEntryOffldHandle`: an existing parser entry (NULL = none).
    pub parser_entry: OffloadHandle,
}

/// A validated `OID_TCP_TASK_IPSEC_ADD_SA` / `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA` request.
#[doc(alias = "OFFLOAD_IPSEC_ADD_SA")]
#[doc(alias = "OFFLOAD_IPSEC_ADD_UDPESP_SA")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSaRequest {
    /// The traffic selector.
    pub selector: Selector,
    /// Tunnel endpoints (None = transport mode).
    pub tunnel: Option<TunnelEndpoints>,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The SAs in processing order, with their keys.
    pub sas: SaBundle,
    /// UDP encapsulation (Some = the `_ADD_UDPESP_SA` OID).
    pub udp_esp: Option<UdpEspEncap>,
}

/// The fields the two v1 ADD structs share.
struct V1Common {
    src_addr: u32,
    src_mask: u32,
    dest_addr: u32,
    dest_mask: u32,
    protocol: u32,
    src_port: u16,
    dest_port: u16,
    src_tunnel: u32,
    dest_tunnel: u32,
    flags: u16,
    num_sas: i16,
    sec_assoc: [OFFLOAD_SECURITY_ASSOCIATION; OFFLOAD_MAX_SAS],
    key_len: u32,
}

fn ip(field: u32) -> Ipv4Addr {
    Ipv4Addr::from(field.to_ne_bytes())
}

fn ip_field(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

fn port(field: u16) -> u16 {
    u16::from_be_bytes(field.to_ne_bytes())
}

fn port_field(p: u16) -> u16 {
    u16::from_ne_bytes(p.to_be_bytes())
}

impl AddSaRequest {
    /// The OID this request travels in.
    pub fn oid(&self) -> Oid {
        if self.udp_esp.is_some() {
            Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA
        } else {
            Oid::TCP_TASK_IPSEC_ADD_SA
        }
    }

    /// Parse an `OID_TCP_TASK_IPSEC_ADD_SA` information buffer.
    ///
    /// # Errors
    /// See the module documentation for every status.
    pub fn parse(buf: &[u8], order: KeyOrder) -> Result<Self, OidError> {
        let s: OFFLOAD_IPSEC_ADD_SA = read_at(buf, 0).ok_or(OidError::invalid_length(
            size_of::<OFFLOAD_IPSEC_ADD_SA>(),
            "buffer shorter than OFFLOAD_IPSEC_ADD_SA",
        ))?;
        let c = V1Common {
            src_addr: s.SrcAddr,
            src_mask: s.SrcMask,
            dest_addr: s.DestAddr,
            dest_mask: s.DestMask,
            protocol: s.Protocol,
            src_port: s.SrcPort,
            dest_port: s.DestPort,
            src_tunnel: s.SrcTunnelAddr,
            dest_tunnel: s.DestTunnelAddr,
            flags: s.Flags,
            num_sas: s.NumSAs,
            sec_assoc: s.SecAssoc,
            key_len: s.KeyLen,
        };
        parse_common(
            buf,
            &c,
            ADD_SA_KEY_OFFSET,
            size_of::<OFFLOAD_IPSEC_ADD_SA>(),
            order,
            None,
        )
    }

    /// Parse an `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA` information buffer.
    ///
    /// # Errors
    /// See the module documentation for every status.
    pub fn parse_udpesp(buf: &[u8], order: KeyOrder) -> Result<Self, OidError> {
        let s: OFFLOAD_IPSEC_ADD_UDPESP_SA = read_at(buf, 0).ok_or(OidError::invalid_length(
            size_of::<OFFLOAD_IPSEC_ADD_UDPESP_SA>(),
            "buffer shorter than OFFLOAD_IPSEC_ADD_UDPESP_SA",
        ))?;
        let c = V1Common {
            src_addr: s.SrcAddr,
            src_mask: s.SrcMask,
            dest_addr: s.DstAddr,
            dest_mask: s.DstMask,
            protocol: s.Protocol,
            src_port: s.SrcPort,
            dest_port: s.DstPort,
            src_tunnel: s.SrcTunnelAddr,
            dest_tunnel: s.DstTunnelAddr,
            flags: s.Flags,
            num_sas: s.NumSAs,
            sec_assoc: s.SecAssoc,
            key_len: s.KeyLen,
        };
        let encap_type = match s.EncapTypeEntry.UdpEncapType {
            OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE => UdpEncapType::Ike,
            OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER => UdpEncapType::Other,
            _ => return Err(OidError::invalid_data("unknown UdpEncapType")),
        };
        let encap = UdpEspEncap {
            encap_type,
            dst_port: port(s.EncapTypeEntry.DstEncapPort),
            parser_entry: OffloadHandle(s.EncapTypeEntryOffldHandle),
        };
        parse_common(
            buf,
            &c,
            ADD_UDPESP_SA_KEY_OFFSET,
            size_of::<OFFLOAD_IPSEC_ADD_UDPESP_SA>(),
            order,
            Some(encap),
        )
    }

    /// Parse either OID's buffer.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_OID` for any other OID; otherwise as [`Self::parse`].
    pub fn parse_for(oid: Oid, buf: &[u8], order: KeyOrder) -> Result<Self, OidError> {
        match oid {
            Oid::TCP_TASK_IPSEC_ADD_SA => Self::parse(buf, order),
            Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA => Self::parse_udpesp(buf, order),
            _ => Err(OidError::invalid_oid()),
        }
    }

    fn key_offset(&self) -> usize {
        if self.udp_esp.is_some() {
            ADD_UDPESP_SA_KEY_OFFSET
        } else {
            ADD_SA_KEY_OFFSET
        }
    }

    fn struct_size(&self) -> usize {
        if self.udp_esp.is_some() {
            size_of::<OFFLOAD_IPSEC_ADD_UDPESP_SA>()
        } else {
            size_of::<OFFLOAD_IPSEC_ADD_SA>()
        }
    }

    /// Total key bytes.
    pub fn key_len(&self) -> usize {
        let esp = self.sas.esp().map_or(0, |e| {
            e.cipher_key.len().saturating_add(e.integrity_key.len())
        });
        let ah = self.sas.ah().map_or(0, |a| a.integrity_key.len());
        esp.saturating_add(ah)
    }

    /// The information-buffer length [`Self::emit`] needs: max(struct size, key offset +
    /// `KeyLen`).
    pub fn buffer_len(&self) -> usize {
        self.struct_size()
            .max(self.key_offset().saturating_add(self.key_len()))
    }

    /// Write the request into `buf` (which should be zeroed; `OffloadHandle` is written as 0).
    /// Returns the number of bytes used ([`Self::buffer_len`]).
    ///
    /// # Errors
    /// `NDIS_STATUS_BUFFER_TOO_SHORT` with bytes_needed when `buf` is too short;
    /// `NDIS_STATUS_INVALID_DATA` / `NOT_SUPPORTED` when the request is not one
    /// [`Self::parse`] would accept (inconsistent keys, v2-only options, ...).
    pub fn emit(&self, order: KeyOrder, buf: &mut [u8]) -> Result<usize, OidError> {
        self.sas.validate()?;
        let sa_list: [Option<(SaProtocol, &SaOptions)>; 2] = match &self.sas {
            SaBundle::Ah(a) => [Some((SaProtocol::Ah, &a.options)), None],
            SaBundle::Esp(e) => [Some((SaProtocol::Esp, &e.options)), None],
            SaBundle::EspThenAh(e, a) => [
                Some((SaProtocol::Esp, &e.options)),
                Some((SaProtocol::Ah, &a.options)),
            ],
        };
        if sa_list.iter().flatten().any(|(_, o)| o.has_v2_only()) {
            return Err(OidError::invalid_data(
                "ESN options cannot be expressed in a v1 ADD_SA",
            ));
        }
        let needed = self.buffer_len();
        if buf.len() < needed {
            return Err(OidError::buffer_too_short(
                needed,
                "buffer too short for the ADD_SA",
            ));
        }
        let key_len = u32::try_from(self.key_len())
            .map_err(|_| OidError::invalid_data("key material too long"))?;
        let mut sec = [OFFLOAD_SECURITY_ASSOCIATION::default(); OFFLOAD_MAX_SAS];
        let mut keys: Vec<&[u8]> = Vec::with_capacity(4);
        let sas: [Option<SaRef<'_>>; 2] = match &self.sas {
            SaBundle::Ah(a) => [Some(SaRef::Ah(a)), None],
            SaBundle::Esp(e) => [Some(SaRef::Esp(e)), None],
            SaBundle::EspThenAh(e, a) => [Some(SaRef::Esp(e)), Some(SaRef::Ah(a))],
        };
        for (slot, sa) in sec.iter_mut().zip(sas.iter().flatten()) {
            let (proto, spi, integ, ikey, conf, ckey, opts) = match sa {
                SaRef::Ah(a) => (
                    SaProtocol::Ah,
                    a.spi,
                    a.integrity,
                    a.integrity_key.expose(),
                    None,
                    &[][..],
                    &a.options,
                ),
                SaRef::Esp(e) => (
                    SaProtocol::Esp,
                    e.spi,
                    e.integrity,
                    e.integrity_key.expose(),
                    Some(e.cipher),
                    e.cipher_key.expose(),
                    &e.options,
                ),
            };
            slot.Operation = proto.operation();
            slot.SPI = spi;
            slot.IntegrityAlgo = OFFLOAD_ALGO_INFO {
                algoIdentifier: integ.v1_identifier(),
                algoKeylen: len32(ikey.len()),
                algoRounds: opts.integrity_rounds,
            };
            if let Some(conf) = conf {
                slot.ConfAlgo = OFFLOAD_ALGO_INFO {
                    algoIdentifier: conf.v1_identifier(),
                    algoKeylen: len32(ckey.len()),
                    algoRounds: opts.conf_rounds,
                };
            } else if opts.conf_rounds != 0 {
                return Err(OidError::invalid_data("AH SA with confidentiality rounds"));
            }
            match order {
                KeyOrder::ConfidentialityFirst => keys.extend([ckey, ikey]),
                KeyOrder::IntegrityFirst => keys.extend([ikey, ckey]),
            }
        }
        let (src_tunnel, dest_tunnel) = match self.tunnel {
            Some(t) => {
                if t.src.is_unspecified() || t.dest.is_unspecified() {
                    return Err(OidError::invalid_data("tunnel endpoint 0.0.0.0"));
                }
                (ip_field(t.src), ip_field(t.dest))
            }
            None => (0, 0),
        };
        let flags = match self.direction {
            Direction::Inbound => OFFLOAD_INBOUND_SA,
            Direction::Outbound => OFFLOAD_OUTBOUND_SA,
        };
        let num_sas = if self.sas.len() == 2 { 2 } else { 1 };
        let sel = &self.selector;
        let written = match self.udp_esp {
            None => {
                let s = OFFLOAD_IPSEC_ADD_SA {
                    SrcAddr: ip_field(sel.src_addr),
                    SrcMask: ip_field(sel.src_mask),
                    DestAddr: ip_field(sel.dest_addr),
                    DestMask: ip_field(sel.dest_mask),
                    Protocol: u32::from(sel.protocol),
                    SrcPort: port_field(sel.src_port),
                    DestPort: port_field(sel.dest_port),
                    SrcTunnelAddr: src_tunnel,
                    DestTunnelAddr: dest_tunnel,
                    Flags: flags,
                    NumSAs: num_sas,
                    SecAssoc: sec,
                    OffloadHandle: 0,
                    KeyLen: key_len,
                    KeyMat: [0; 4],
                };
                write_at(buf, 0, &s)
            }
            Some(u) => {
                let s = OFFLOAD_IPSEC_ADD_UDPESP_SA {
                    SrcAddr: ip_field(sel.src_addr),
                    SrcMask: ip_field(sel.src_mask),
                    DstAddr: ip_field(sel.dest_addr),
                    DstMask: ip_field(sel.dest_mask),
                    Protocol: u32::from(sel.protocol),
                    SrcPort: port_field(sel.src_port),
                    DstPort: port_field(sel.dest_port),
                    SrcTunnelAddr: src_tunnel,
                    DstTunnelAddr: dest_tunnel,
                    Flags: flags,
                    NumSAs: num_sas,
                    SecAssoc: sec,
                    OffloadHandle: 0,
                    EncapTypeEntry: OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY {
                        UdpEncapType: match u.encap_type {
                            UdpEncapType::Ike => OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE,
                            UdpEncapType::Other => OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER,
                        },
                        DstEncapPort: port_field(u.dst_port),
                        _pad0: [0; 2],
                    },
                    EncapTypeEntryOffldHandle: u.parser_entry.0,
                    KeyLen: key_len,
                    KeyMat: [0; 4],
                };
                write_at(buf, 0, &s)
            }
        };
        if !written {
            return Err(OidError::buffer_too_short(
                needed,
                "buffer too short for the ADD_SA",
            ));
        }
        let mut at = self.key_offset();
        for k in keys {
            let Some(dst) = at.checked_add(k.len()).and_then(|end| buf.get_mut(at..end)) else {
                return Err(OidError::buffer_too_short(
                    needed,
                    "buffer too short for the keys",
                ));
            };
            dst.copy_from_slice(k);
            at = at.saturating_add(k.len());
        }
        Ok(needed)
    }

    /// The request as a fresh information buffer.
    ///
    /// # Errors
    /// As [`Self::emit`] (never `BUFFER_TOO_SHORT`).
    pub fn to_bytes(&self, order: KeyOrder) -> Result<Vec<u8>, OidError> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(order, &mut v)?;
        Ok(v)
    }

    /// Write the miniport's `OffloadHandle` back into the caller's ADD_SA / ADD_UDPESP_SA
    /// buffer (offset 168).
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` when the buffer is shorter than 176 bytes.
    pub fn write_offload_handle(buf: &mut [u8], handle: OffloadHandle) -> Result<(), OidError> {
        write_offload_handle_at(buf, ADD_SA_OFFLOAD_HANDLE_OFFSET, handle)
    }

    /// Read the `OffloadHandle` the miniport wrote (the transport's side of the write-back).
    pub fn read_offload_handle(buf: &[u8]) -> Option<OffloadHandle> {
        read_at::<u64>(buf, ADD_SA_OFFLOAD_HANDLE_OFFSET).map(OffloadHandle)
    }
}

enum SaRef<'a> {
    Ah(&'a AhSa),
    Esp(&'a EspSa),
}

fn len32(n: usize) -> u32 {
    crate::error::saturate(n)
}

/// One parsed-but-not-yet-keyed SA.
struct SaShape {
    protocol: SaProtocol,
    spi: u32,
    integrity: IntegrityAlgorithm,
    integrity_rounds: u32,
    conf: ConfAlgorithm,
    conf_rounds: u32,
}

fn parse_sa(sa: &OFFLOAD_SECURITY_ASSOCIATION) -> Result<SaShape, OidError> {
    let protocol = SaProtocol::from_operation(sa.Operation).ok_or(OidError::invalid_data(
        "Operation is neither AUTHENTICATE nor ENCRYPT",
    ))?;
    if sa.Reserved != OFFLOAD_ALGO_INFO::default() {
        return Err(OidError::invalid_data(
            "Reserved OFFLOAD_ALGO_INFO is not zero",
        ));
    }
    let integrity = IntegrityAlgorithm::from_v1_identifier(sa.IntegrityAlgo.algoIdentifier)
        .ok_or(OidError::invalid_data("unknown IntegrityAlgo identifier"))?;
    if usize::try_from(sa.IntegrityAlgo.algoKeylen).ok() != Some(integrity.key_len()) {
        return Err(OidError::invalid_data(
            "IntegrityAlgo.algoKeylen does not match the algorithm",
        ));
    }
    let conf = match protocol {
        SaProtocol::Ah => {
            if sa.ConfAlgo != OFFLOAD_ALGO_INFO::default() {
                return Err(OidError::invalid_data("AH SA with a non-zero ConfAlgo"));
            }
            if integrity == IntegrityAlgorithm::None {
                return Err(OidError::invalid_data(
                    "AH SA without an integrity algorithm",
                ));
            }
            ConfAlgorithm::None
        }
        SaProtocol::Esp => {
            let conf = ConfAlgorithm::from_v1_identifier(sa.ConfAlgo.algoIdentifier)
                .ok_or(OidError::invalid_data("unknown ConfAlgo identifier"))?;
            if usize::try_from(sa.ConfAlgo.algoKeylen).ok() != Some(conf.key_len()) {
                return Err(OidError::invalid_data(
                    "ConfAlgo.algoKeylen does not match the algorithm",
                ));
            }
            if conf.is_aead() && integrity != IntegrityAlgorithm::None {
                return Err(OidError::not_supported(
                    "AEAD cipher combined with an integrity algorithm",
                ));
            }
            if !conf.is_aead() && integrity == IntegrityAlgorithm::None {
                return Err(OidError::not_supported("ESP SA without authentication"));
            }
            conf
        }
    };
    Ok(SaShape {
        protocol,
        spi: sa.SPI,
        integrity,
        integrity_rounds: sa.IntegrityAlgo.algoRounds,
        conf,
        conf_rounds: sa.ConfAlgo.algoRounds,
    })
}

fn parse_common(
    buf: &[u8],
    c: &V1Common,
    key_offset: usize,
    struct_size: usize,
    order: KeyOrder,
    udp_esp: Option<UdpEspEncap>,
) -> Result<AddSaRequest, OidError> {
    let key_len =
        usize::try_from(c.key_len).map_err(|_| OidError::invalid_data("KeyLen too large"))?;
    let needed = key_offset
        .checked_add(key_len)
        .ok_or(OidError::invalid_data("KeyLen too large"))?
        .max(struct_size);
    if buf.len() < needed {
        return Err(OidError::invalid_length(
            needed,
            "KeyLen reaches beyond the buffer",
        ));
    }
    let direction = match c.flags {
        OFFLOAD_INBOUND_SA => Direction::Inbound,
        OFFLOAD_OUTBOUND_SA => Direction::Outbound,
        _ => {
            return Err(OidError::invalid_data(
                "Flags must be exactly INBOUND or OUTBOUND",
            ));
        }
    };
    let protocol =
        u8::try_from(c.protocol).map_err(|_| OidError::invalid_data("Protocol above 255"))?;
    let selector = Selector {
        src_addr: ip(c.src_addr),
        src_mask: ip(c.src_mask),
        dest_addr: ip(c.dest_addr),
        dest_mask: ip(c.dest_mask),
        protocol,
        src_port: port(c.src_port),
        dest_port: port(c.dest_port),
    };
    let tunnel = match (c.src_tunnel, c.dest_tunnel) {
        (0, 0) => None,
        (0, _) | (_, 0) => {
            return Err(OidError::invalid_data("exactly one tunnel address is zero"));
        }
        (s, d) => Some(TunnelEndpoints {
            src: ip(s),
            dest: ip(d),
        }),
    };
    let n = match c.num_sas {
        1 => 1,
        2 => 2,
        3 => return Err(OidError::not_supported("three SAs in one bundle")),
        _ => return Err(OidError::invalid_data("NumSAs outside 1..=OFFLOAD_MAX_SAS")),
    };
    let mut shapes = Vec::with_capacity(2);
    for sa in c.sec_assoc.iter().take(n) {
        shapes.push(parse_sa(sa)?);
    }
    if let [a, b] = shapes.as_slice()
        && (a.protocol != SaProtocol::Esp || b.protocol != SaProtocol::Ah)
    {
        return Err(OidError::not_supported(
            "the only supported SA pair is [ESP, AH]",
        ));
    }
    let sum: usize = shapes.iter().fold(0usize, |acc, s| {
        acc.saturating_add(s.integrity.key_len())
            .saturating_add(s.conf.key_len())
    });
    if sum != key_len {
        return Err(OidError::invalid_data(
            "KeyLen differs from the sum of the algoKeylen",
        ));
    }
    // Split KeyMat per SA.
    let keymat = slice_at(buf, key_offset, key_len).ok_or(OidError::invalid_length(
        needed,
        "KeyLen reaches beyond the buffer",
    ))?;
    let mut at = 0usize;
    let mut take = |len: usize| -> Result<SecretKey, OidError> {
        let k = slice_at(keymat, at, len).ok_or(OidError::invalid_data("key material overrun"))?;
        at = at.saturating_add(len);
        Ok(SecretKey::from_slice(k))
    };
    let mut ah = None;
    let mut esp = None;
    for s in shapes {
        let (ckey, ikey) = match order {
            KeyOrder::ConfidentialityFirst => {
                let c = take(s.conf.key_len())?;
                (c, take(s.integrity.key_len())?)
            }
            KeyOrder::IntegrityFirst => {
                let i = take(s.integrity.key_len())?;
                (take(s.conf.key_len())?, i)
            }
        };
        let options = SaOptions {
            integrity_rounds: s.integrity_rounds,
            conf_rounds: s.conf_rounds,
            esn: false,
            sequence_number_high_order: 0,
        };
        match s.protocol {
            SaProtocol::Ah => {
                ah = Some(AhSa {
                    spi: s.spi,
                    integrity: s.integrity,
                    integrity_key: ikey,
                    options,
                });
            }
            SaProtocol::Esp => {
                esp = Some(EspSa {
                    spi: s.spi,
                    cipher: s.conf,
                    cipher_key: ckey,
                    integrity: s.integrity,
                    integrity_key: ikey,
                    options,
                });
            }
        }
    }
    let sas = match (esp, ah) {
        (Some(e), Some(a)) => SaBundle::EspThenAh(e, a),
        (Some(e), None) => SaBundle::Esp(e),
        (None, Some(a)) => SaBundle::Ah(a),
        // INVARIANT: n >= 1 so at least one SA was parsed; kept as an error, not a panic.
        (None, None) => return Err(OidError::invalid_data("no SA")),
    };
    Ok(AddSaRequest {
        selector,
        tunnel,
        direction,
        sas,
        udp_esp,
    })
}

/// A validated `OID_TCP_TASK_IPSEC_DELETE_SA` request (`OFFLOAD_IPSEC_DELETE_SA`).
#[doc(alias = "OFFLOAD_IPSEC_DELETE_SA")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeleteSaRequest {
    /// The SA to delete (the miniport decides what an unknown or NULL handle gets).
    pub offload_handle: OffloadHandle,
}

impl DeleteSaRequest {
    /// Size of the information buffer.
    pub const LEN: usize = size_of::<OFFLOAD_IPSEC_DELETE_SA>();

    /// Parse the information buffer.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (bytes_needed 8) when shorter than 8 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let s: abi::OFFLOAD_IPSEC_DELETE_SA = read_at(buf, 0).ok_or(OidError::invalid_length(
            Self::LEN,
            "buffer shorter than OFFLOAD_IPSEC_DELETE_SA",
        ))?;
        Ok(DeleteSaRequest {
            offload_handle: OffloadHandle(s.OffloadHandle),
        })
    }

    /// The information buffer.
    pub fn to_bytes(&self) -> [u8; 8] {
        bytemuck::cast(OFFLOAD_IPSEC_DELETE_SA {
            OffloadHandle: self.offload_handle.0,
        })
    }
}

/// A validated `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA` request (`OFFLOAD_IPSEC_DELETE_UDPESP_SA`).
#[doc(alias = "OFFLOAD_IPSEC_DELETE_UDPESP_SA")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeleteUdpEspSaRequest {
    /// The SA to delete.
    pub offload_handle: OffloadHandle,
    /// The parser entry to delete as well (NULL = only the SA).
    pub parser_entry: OffloadHandle,
}

impl DeleteUdpEspSaRequest {
    /// Size of the information buffer.
    pub const LEN: usize = size_of::<OFFLOAD_IPSEC_DELETE_UDPESP_SA>();

    /// Parse the information buffer.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (bytes_needed 16) when shorter than 16 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self, OidError> {
        let s: OFFLOAD_IPSEC_DELETE_UDPESP_SA = read_at(buf, 0).ok_or(OidError::invalid_length(
            Self::LEN,
            "buffer shorter than OFFLOAD_IPSEC_DELETE_UDPESP_SA",
        ))?;
        Ok(DeleteUdpEspSaRequest {
            offload_handle: OffloadHandle(s.OffloadHandle),
            parser_entry: OffloadHandle(s.EncapTypeEntryOffldHandle),
        })
    }

    /// The information buffer.
    pub fn to_bytes(&self) -> [u8; 16] {
        bytemuck::cast(OFFLOAD_IPSEC_DELETE_UDPESP_SA {
            OffloadHandle: self.offload_handle.0,
            EncapTypeEntryOffldHandle: self.parser_entry.0,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::NdisStatus;

    pub(crate) fn key(len: usize, seed: u8) -> SecretKey {
        SecretKey::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
    }

    pub(crate) fn esp_gcm() -> EspSa {
        EspSa {
            spi: 0x1001,
            cipher: ConfAlgorithm::AesGcm128,
            cipher_key: key(20, 0x10),
            integrity: IntegrityAlgorithm::None,
            integrity_key: SecretKey::default(),
            options: SaOptions::default(),
        }
    }

    pub(crate) fn esp_cbc_sha256() -> EspSa {
        EspSa {
            spi: 0x2002,
            cipher: ConfAlgorithm::AesCbc256,
            cipher_key: key(32, 0x40),
            integrity: IntegrityAlgorithm::Sha256,
            integrity_key: key(32, 0x80),
            options: SaOptions::default(),
        }
    }

    pub(crate) fn ah_sha1() -> AhSa {
        AhSa {
            spi: 0x3003,
            integrity: IntegrityAlgorithm::Sha1,
            integrity_key: key(20, 0xC0),
            options: SaOptions::default(),
        }
    }

    pub(crate) fn request(sas: SaBundle) -> AddSaRequest {
        AddSaRequest {
            selector: Selector {
                src_addr: Ipv4Addr::new(192, 0, 2, 1),
                src_mask: Ipv4Addr::new(255, 255, 255, 255),
                dest_addr: Ipv4Addr::new(198, 51, 100, 0),
                dest_mask: Ipv4Addr::new(255, 255, 255, 0),
                protocol: 17,
                src_port: 0,
                dest_port: 4500,
            },
            tunnel: None,
            direction: Direction::Outbound,
            sas,
            udp_esp: None,
        }
    }

    fn bytes(r: &AddSaRequest) -> Vec<u8> {
        r.to_bytes(KeyOrder::default()).unwrap()
    }

    fn set_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn set_u16(b: &mut [u8], off: usize, v: u16) {
        b[off..off + 2].copy_from_slice(&v.to_ne_bytes());
    }

    fn status(b: &[u8]) -> NdisStatus {
        AddSaRequest::parse(b, KeyOrder::default())
            .unwrap_err()
            .status()
    }

    // Offsets inside SecAssoc[i].
    const SA0: usize = 36;
    const SA1: usize = 80;
    const OP: usize = 0;
    const INTEG_ID: usize = 8;
    const INTEG_LEN: usize = 12;
    const CONF_ID: usize = 20;
    const CONF_LEN: usize = 24;
    const RESERVED: usize = 32;

    #[test]
    fn construct_and_deconstruct_exact_bytes() {
        let r = request(SaBundle::Esp(esp_gcm()));
        let b = bytes(&r);
        assert_eq!(b.len(), 200, "180 + 20 key bytes");
        assert_eq!(b[0..4], [192, 0, 2, 1], "SrcAddr in network order");
        assert_eq!(b[8..12], [198, 51, 100, 0]);
        assert_eq!(b[16..20], 17u32.to_ne_bytes());
        assert_eq!(b[22..24], [0x11, 0x94], "DestPort 4500 in network order");
        assert_eq!(b[32..34], OFFLOAD_OUTBOUND_SA.to_ne_bytes());
        assert_eq!(b[34..36], 1i16.to_ne_bytes());
        assert_eq!(b[SA0..SA0 + 4], ENCRYPT.to_ne_bytes());
        assert_eq!(
            b[SA0 + 4..SA0 + 8],
            0x1001u32.to_ne_bytes(),
            "SPI host order"
        );
        assert_eq!(
            b[SA0 + CONF_ID..SA0 + CONF_ID + 4],
            0x8000_0008u32.to_ne_bytes()
        );
        assert_eq!(b[SA0 + CONF_LEN..SA0 + CONF_LEN + 4], 20u32.to_ne_bytes());
        assert_eq!(b[176..180], 20u32.to_ne_bytes());
        assert_eq!(b[180..200], *key(20, 0x10).expose());
    }

    #[test]
    fn round_trip_every_bundle_shape_and_key_order() {
        let mut tunnel = request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1()));
        tunnel.tunnel = Some(TunnelEndpoints {
            src: Ipv4Addr::new(203, 0, 113, 1),
            dest: Ipv4Addr::new(203, 0, 113, 2),
        });
        tunnel.direction = Direction::Inbound;
        let cases = [
            request(SaBundle::Esp(esp_gcm())),
            request(SaBundle::Esp(esp_cbc_sha256())),
            request(SaBundle::Ah(ah_sha1())),
            tunnel,
        ];
        for r in cases {
            for order in [KeyOrder::ConfidentialityFirst, KeyOrder::IntegrityFirst] {
                let b = r.to_bytes(order).unwrap();
                assert_eq!(b.len(), r.buffer_len());
                assert_eq!(AddSaRequest::parse(&b, order).unwrap(), r);
            }
        }
    }

    #[test]
    fn key_order_decides_the_split() {
        let r = request(SaBundle::Esp(esp_cbc_sha256()));
        let conf_first = r.to_bytes(KeyOrder::ConfidentialityFirst).unwrap();
        assert_eq!(conf_first[180..212], *key(32, 0x40).expose());
        let integ_first = r.to_bytes(KeyOrder::IntegrityFirst).unwrap();
        assert_eq!(integ_first[180..212], *key(32, 0x80).expose());
        // Same bytes read in the other order swap the keys.
        let swapped = AddSaRequest::parse(&conf_first, KeyOrder::IntegrityFirst).unwrap();
        assert_eq!(swapped.sas.esp().unwrap().integrity_key, key(32, 0x40));
    }

    #[test]
    fn misaligned_buffer_is_fine() {
        let r = request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1()));
        let b = bytes(&r);
        let mut shifted = vec![0u8; b.len() + 3];
        shifted[3..].copy_from_slice(&b);
        assert_eq!(
            AddSaRequest::parse(&shifted[3..], KeyOrder::default()).unwrap(),
            r
        );
    }

    #[test]
    fn short_struct_is_invalid_length_with_bytes_needed() {
        let b = bytes(&request(SaBundle::Ah(ah_sha1())));
        let e = AddSaRequest::parse(&b[..183], KeyOrder::default()).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 184)
        );
    }

    #[test]
    fn key_len_beyond_buffer_is_invalid_length_with_bytes_needed() {
        let b = bytes(&request(SaBundle::Esp(esp_cbc_sha256())));
        assert_eq!(b.len(), 244);
        let e = AddSaRequest::parse(&b[..243], KeyOrder::default()).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 244)
        );
        let mut huge = b.clone();
        set_u32(&mut huge, 176, u32::MAX);
        let e = AddSaRequest::parse(&huge, KeyOrder::default()).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_LENGTH);
        assert_eq!(e.bytes_needed, u32::MAX, "saturated");
    }

    #[test]
    fn bad_flags_are_invalid_data() {
        for flags in [0u16, 3, 4, 0x8001] {
            let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
            set_u16(&mut b, 32, flags);
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "flags {flags:#x}");
        }
    }

    #[test]
    fn protocol_above_255_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, 16, 256);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn one_zero_tunnel_address_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        b[24..28].copy_from_slice(&[203, 0, 113, 9]);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn num_sas_out_of_range_is_invalid_data() {
        for n in [0i16, -1, 4, i16::MIN] {
            let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
            b[34..36].copy_from_slice(&n.to_ne_bytes());
            assert_eq!(status(&b), NdisStatus::INVALID_DATA, "NumSAs {n}");
        }
    }

    #[test]
    fn three_sas_are_not_supported() {
        let mut b = bytes(&request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1())));
        b[34..36].copy_from_slice(&3i16.to_ne_bytes());
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn unknown_operation_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, SA0 + OP, 3);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn non_zero_reserved_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, SA0 + RESERVED + 8, 1);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn unknown_or_reserved_algorithm_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Esp(esp_cbc_sha256())));
        set_u32(&mut b, SA0 + CONF_ID, OFFLOAD_IPSEC_CONF_RESERVED);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
        let mut b = bytes(&request(SaBundle::Esp(esp_cbc_sha256())));
        set_u32(&mut b, SA0 + INTEG_ID, 0x4000_0000);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn key_length_not_matching_algorithm_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Esp(esp_cbc_sha256())));
        set_u32(&mut b, SA0 + CONF_LEN, 16);
        set_u32(&mut b, 176, 48);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, SA0 + INTEG_LEN, 16);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn ah_with_conf_algo_or_without_integrity_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, SA0 + CONF_ID, OFFLOAD_IPSEC_CONF_DES);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, SA0 + INTEG_ID, 0);
        set_u32(&mut b, SA0 + INTEG_LEN, 0);
        set_u32(&mut b, 176, 0);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn esp_without_authentication_is_not_supported() {
        let mut b = bytes(&request(SaBundle::Esp(esp_cbc_sha256())));
        set_u32(&mut b, SA0 + INTEG_ID, 0);
        set_u32(&mut b, SA0 + INTEG_LEN, 0);
        set_u32(&mut b, 176, 32);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn aead_with_integrity_is_not_supported() {
        let mut b = bytes(&request(SaBundle::Esp(esp_gcm())));
        set_u32(&mut b, SA0 + INTEG_ID, OFFLOAD_IPSEC_INTEGRITY_SHA);
        set_u32(&mut b, SA0 + INTEG_LEN, 20);
        set_u32(&mut b, 176, 40);
        b.resize(220, 0);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn pair_other_than_esp_then_ah_is_not_supported() {
        // [AH, ESP]: swap the two entries.
        let mut b = bytes(&request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1())));
        let (esp, ah) = (b[SA0..SA0 + 44].to_vec(), b[SA1..SA1 + 44].to_vec());
        b[SA0..SA0 + 44].copy_from_slice(&ah);
        b[SA1..SA1 + 44].copy_from_slice(&esp);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
        // [AH, AH].
        let mut b = bytes(&request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1())));
        b[SA0..SA0 + 44].copy_from_slice(&ah);
        set_u32(&mut b, 176, 40);
        assert_eq!(status(&b), NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn key_len_not_the_sum_is_invalid_data() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        set_u32(&mut b, 176, 4);
        assert_eq!(status(&b), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn unused_slots_are_ignored() {
        let r = request(SaBundle::Ah(ah_sha1()));
        let mut b = bytes(&r);
        b[SA1..SA1 + 88].fill(0xEE);
        assert_eq!(AddSaRequest::parse(&b, KeyOrder::default()).unwrap(), r);
    }

    #[test]
    fn udpesp_round_trip_and_layout() {
        let mut r = request(SaBundle::Esp(esp_gcm()));
        r.udp_esp = Some(UdpEspEncap {
            encap_type: UdpEncapType::Other,
            dst_port: 4500,
            parser_entry: OffloadHandle(0x77),
        });
        assert_eq!(r.oid(), Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA);
        let b = bytes(&r);
        assert_eq!(b.len(), 216);
        assert_eq!(
            b[176..180],
            OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER.to_ne_bytes()
        );
        assert_eq!(b[180..182], [0x11, 0x94]);
        assert_eq!(b[184..192], 0x77u64.to_ne_bytes());
        assert_eq!(b[192..196], 20u32.to_ne_bytes());
        assert_eq!(b[196..216], *key(20, 0x10).expose());
        assert_eq!(
            AddSaRequest::parse_udpesp(&b, KeyOrder::default()).unwrap(),
            r
        );
        assert_eq!(
            AddSaRequest::parse_for(r.oid(), &b, KeyOrder::default()).unwrap(),
            r
        );
        let e = AddSaRequest::parse_udpesp(&b[..199], KeyOrder::default()).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 200)
        );
    }

    #[test]
    fn udpesp_unknown_encap_type_is_invalid_data() {
        let mut r = request(SaBundle::Esp(esp_gcm()));
        r.udp_esp = Some(UdpEspEncap {
            encap_type: UdpEncapType::Ike,
            dst_port: 500,
            parser_entry: OffloadHandle::NULL,
        });
        let mut b = bytes(&r);
        set_u32(&mut b, 176, 2);
        let e = AddSaRequest::parse_udpesp(&b, KeyOrder::default()).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_DATA);
    }

    #[test]
    fn parse_for_other_oid_is_invalid_oid() {
        let b = bytes(&request(SaBundle::Ah(ah_sha1())));
        let e = AddSaRequest::parse_for(Oid::TCP_TASK_IPSEC_DELETE_SA, &b, KeyOrder::default());
        assert_eq!(e.unwrap_err().status(), NdisStatus::INVALID_OID);
    }

    #[test]
    fn offload_handle_write_back() {
        let mut b = bytes(&request(SaBundle::Ah(ah_sha1())));
        AddSaRequest::write_offload_handle(&mut b, OffloadHandle(0xABCD)).unwrap();
        assert_eq!(
            AddSaRequest::read_offload_handle(&b),
            Some(OffloadHandle(0xABCD))
        );
        assert_eq!(b[168..176], 0xABCDu64.to_ne_bytes());
        let e = AddSaRequest::write_offload_handle(&mut b[..170], OffloadHandle(1)).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_LENGTH);
    }

    #[test]
    fn emit_refuses_invalid_requests_and_short_buffers() {
        let mut bad = esp_gcm();
        bad.cipher_key = key(16, 0);
        let e = request(SaBundle::Esp(bad))
            .to_bytes(KeyOrder::default())
            .unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_DATA);
        let mut esn = ah_sha1();
        esn.options.esn = true;
        let e = request(SaBundle::Ah(esn))
            .to_bytes(KeyOrder::default())
            .unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_DATA);
        let r = request(SaBundle::Ah(ah_sha1()));
        let mut small = [0u8; 190];
        let e = r.emit(KeyOrder::default(), &mut small).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::BUFFER_TOO_SHORT, 200)
        );
    }

    #[test]
    fn keys_are_redacted_in_debug() {
        let r = request(SaBundle::EspThenAh(esp_cbc_sha256(), ah_sha1()));
        let s = format!("{r:?}");
        assert!(s.contains("redacted"));
        // 0x40.. key bytes would print as "64, 65"; none of them may appear.
        assert!(!s.contains("64, 65") && !s.contains("[64"));
    }

    #[test]
    fn selector_matching() {
        let s = request(SaBundle::Ah(ah_sha1())).selector;
        let src = Ipv4Addr::new(192, 0, 2, 1);
        assert!(s.matches(src, Ipv4Addr::new(198, 51, 100, 7), 17, 1234, 4500));
        assert!(!s.matches(src, Ipv4Addr::new(198, 51, 101, 7), 17, 1234, 4500));
        assert!(!s.matches(src, Ipv4Addr::new(198, 51, 100, 7), 6, 1234, 4500));
        assert!(!s.matches(src, Ipv4Addr::new(198, 51, 100, 7), 17, 1234, 500));
        assert!(Selector::ANY.matches(src, src, 1, 0, 0));
    }

    #[test]
    fn delete_requests() {
        let d = DeleteSaRequest {
            offload_handle: OffloadHandle(9),
        };
        assert_eq!(DeleteSaRequest::parse(&d.to_bytes()).unwrap(), d);
        let e = DeleteSaRequest::parse(&[0; 7]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 8)
        );
        let u = DeleteUdpEspSaRequest {
            offload_handle: OffloadHandle(9),
            parser_entry: OffloadHandle(3),
        };
        assert_eq!(u.to_bytes()[8..], 3u64.to_ne_bytes());
        assert_eq!(DeleteUdpEspSaRequest::parse(&u.to_bytes()).unwrap(), u);
        let e = DeleteUdpEspSaRequest::parse(&[0; 15]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 16)
        );
    }
}
