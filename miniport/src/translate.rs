//! Translation of parsed OID requests into NIC SA programming ([`nicsim::SaSpec`] holding one
//! [`ipsec::SaParams`] per SA), and of NIC errors into `NDIS_STATUS` values.
//!
//! # Address mapping (from this host's point of view)
//!
//! | SA | `SaSpec.dst` (inbound lookup) | `SaParams.tunnel` |
//! |---|---|---|
//! | inbound transport | selector `DestAddr` (0 = wildcard: `None`) | `None` |
//! | inbound tunnel | `DestTunnelAddr` | local = `DestTunnelAddr`, remote = `SrcTunnelAddr` |
//! | outbound transport | selector `DestAddr` (informational) | `None` |
//! | outbound tunnel | `DestTunnelAddr` (informational) | local = `SrcTunnelAddr`, remote = `DestTunnelAddr` |
//!
//! UDP-ESP (v1 `ADD_UDPESP_SA`): `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY` carries one port,
//! `DstEncapPort`. The NIC needs the ports to find ESP after the UDP header; v1 has no second
//! port, so both ends are taken to use `DstEncapPort` (RFC 3948's 4500 <-> 4500):
//! `SaParams.udp_encap = UdpEncap { local_port: port, remote_port: port }` on the ESP SA, and
//! the inbound parser entry is `(encap type, DstEncapPort)`.

use core::net::IpAddr;

use ipsec::{Encryption, Integrity, Key, Mode, ParamError, Protocol, SaParams, UdpEncap};
use nicsim::{EncapEntry, EncapType, SaSpec, TableError};
use oid::{AddSaRequest, ConfAlgorithm, Direction, IntegrityAlgorithm, OidError, SaBundle};

/// A request to program one SA bundle, independent of the OID version it came from.
#[derive(Debug)]
pub(crate) struct SaRequest<'a> {
    pub direction: Direction,
    pub sas: &'a SaBundle,
    /// (local, remote) tunnel endpoints seen from this host.
    pub tunnel: Option<(IpAddr, IpAddr)>,
    /// Inbound lookup destination (`None` = wildcard).
    pub dst: Option<IpAddr>,
    /// Source, informational.
    pub src: Option<IpAddr>,
    /// UDP-ESP parser entry and ports.
    pub udp: Option<(EncapEntry, UdpEncap)>,
}

fn nonzero(a: core::net::Ipv4Addr) -> Option<IpAddr> {
    if a.is_unspecified() {
        None
    } else {
        Some(IpAddr::V4(a))
    }
}

impl<'a> SaRequest<'a> {
    /// The v1 request (`OFFLOAD_IPSEC_ADD_SA` / `OFFLOAD_IPSEC_ADD_UDPESP_SA`).
    pub fn from_v1(req: &'a AddSaRequest) -> Self {
        let sel = &req.selector;
        let (tunnel, dst, src) = match (req.tunnel, req.direction) {
            (None, _) => (None, nonzero(sel.dest_addr), nonzero(sel.src_addr)),
            (Some(t), Direction::Inbound) => (
                Some((IpAddr::V4(t.dest), IpAddr::V4(t.src))),
                Some(IpAddr::V4(t.dest)),
                Some(IpAddr::V4(t.src)),
            ),
            (Some(t), Direction::Outbound) => (
                Some((IpAddr::V4(t.src), IpAddr::V4(t.dest))),
                Some(IpAddr::V4(t.dest)),
                Some(IpAddr::V4(t.src)),
            ),
        };
        let udp = req.udp_esp.map(|u| {
            (
                EncapEntry {
                    encap_type: match u.encap_type {
                        oid::UdpEncapType::Ike => EncapType::Ike,
                        oid::UdpEncapType::Other => EncapType::Other,
                    },
                    port: u.dst_port,
                },
                UdpEncap {
                    local_port: u.dst_port,
                    remote_port: u.dst_port,
                },
            )
        });
        SaRequest {
            direction: req.direction,
            sas: &req.sas,
            tunnel,
            dst,
            src,
            udp,
        }
    }

    /// Build the NIC programming, validating every SA's parameters (nothing touches the NIC).
    ///
    /// # Errors
    /// `NDIS_STATUS_NOT_SUPPORTED` for an algorithm the NIC lacks; `NDIS_STATUS_INVALID_DATA`
    /// for unusable parameters (reserved SPI 0-255, UDP-ESP without ESP, ...).
    pub fn to_spec(&self) -> Result<SaSpec, OidError> {
        let mode = if self.tunnel.is_some() {
            Mode::Tunnel
        } else {
            Mode::Transport
        };
        let tunnel = self
            .tunnel
            .map(|(local, remote)| ipsec::TunnelEndpoints { local, remote });
        let mut sas = Vec::with_capacity(2);
        if let Some(e) = self.sas.esp() {
            let integrity = integrity(e.integrity)?;
            let encryption = match e.cipher {
                ConfAlgorithm::None if integrity.is_gmac() => Encryption::None,
                ConfAlgorithm::None => Encryption::Null,
                ConfAlgorithm::AesGcm128 => Encryption::AesGcm128,
                ConfAlgorithm::AesGcm192 => Encryption::AesGcm192,
                ConfAlgorithm::AesGcm256 => Encryption::AesGcm256,
                ConfAlgorithm::AesCbc128 => Encryption::AesCbc128,
                ConfAlgorithm::AesCbc192 => Encryption::AesCbc192,
                ConfAlgorithm::AesCbc256 => Encryption::AesCbc256,
                _ => return Err(OidError::not_supported("cipher not supported by the NIC")),
            };
            sas.push(SaParams {
                spi: e.spi,
                protocol: Protocol::Esp,
                mode,
                encryption,
                encryption_key: Key::new(e.cipher_key.expose()),
                integrity,
                integrity_key: Key::new(e.integrity_key.expose()),
                esn: e.options.esn,
                tunnel,
                udp_encap: self.udp.map(|(_, u)| u),
            });
        } else if self.udp.is_some() {
            return Err(OidError::invalid_data("UDP-ESP SA without an ESP SA"));
        }
        if let Some(a) = self.sas.ah() {
            sas.push(SaParams {
                spi: a.spi,
                protocol: Protocol::Ah,
                mode,
                encryption: Encryption::None,
                encryption_key: Key::empty(),
                integrity: integrity(a.integrity)?,
                integrity_key: Key::new(a.integrity_key.expose()),
                esn: a.options.esn,
                tunnel,
                udp_encap: None,
            });
        }
        for p in &sas {
            p.validate().map_err(param_error)?;
        }
        Ok(SaSpec {
            direction: match self.direction {
                Direction::Inbound => nicsim::Direction::Inbound,
                Direction::Outbound => nicsim::Direction::Outbound,
            },
            sas,
            dst: self.dst,
            src: self.src,
            udp_encap: self.udp.map(|(e, _)| e),
        })
    }
}

fn integrity(a: IntegrityAlgorithm) -> Result<Integrity, OidError> {
    Ok(match a {
        IntegrityAlgorithm::None => Integrity::None,
        IntegrityAlgorithm::Sha1 => Integrity::HmacSha1_96,
        IntegrityAlgorithm::Sha256 => Integrity::HmacSha256_128,
        IntegrityAlgorithm::AesGmac128 => Integrity::AesGmac128,
        IntegrityAlgorithm::AesGmac192 => Integrity::AesGmac192,
        IntegrityAlgorithm::AesGmac256 => Integrity::AesGmac256,
        _ => {
            return Err(OidError::not_supported(
                "integrity algorithm not supported by the NIC",
            ));
        }
    })
}

/// The status for unusable SA parameters.
pub(crate) fn param_error(e: ParamError) -> OidError {
    match e {
        ParamError::UnsupportedByProvider => {
            OidError::not_supported("the NIC's crypto provider lacks this algorithm")
        }
        ParamError::ReservedSpi => OidError::invalid_data("SPI 0-255 is reserved"),
        ParamError::EncryptionKeyLength | ParamError::IntegrityKeyLength => {
            OidError::invalid_data("key length does not match the algorithm")
        }
        ParamError::NoIntegrity => OidError::not_supported("ESP SA without authentication"),
        ParamError::TunnelEndpoints => OidError::invalid_data("tunnel endpoints of mixed families"),
        ParamError::UdpEncapOnAh => OidError::invalid_data("UDP encapsulation on an AH SA"),
        ParamError::InvalidCombination => {
            OidError::not_supported("algorithm combination not supported (e.g. a cipher with GMAC)")
        }
        _ => OidError::invalid_data("invalid SA parameters"),
    }
}

/// The status for a failed ADD (documented in the crate docs).
pub(crate) fn add_error(e: TableError) -> OidError {
    match e {
        TableError::Full => OidError {
            status: oid::NdisStatus::RESOURCES,
            bytes_needed: 0,
            reason: "the NIC's SA table is full",
        },
        TableError::Duplicate => {
            OidError::invalid_data("duplicate inbound SA (SPI, dst, protocol)")
        }
        TableError::Invalid(p) => param_error(p),
        _ => OidError::invalid_data("the NIC refused the SA"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;
    use oid::{EspSa, SaOptions, SecretKey, Selector, TunnelEndpoints, UdpEncapType, UdpEspEncap};

    fn gcm(spi: u32) -> EspSa {
        EspSa {
            spi,
            cipher: ConfAlgorithm::AesGcm128,
            cipher_key: SecretKey::new(vec![1; 20]),
            integrity: IntegrityAlgorithm::None,
            integrity_key: SecretKey::default(),
            options: SaOptions::default(),
        }
    }

    fn req(direction: Direction, tunnel: bool) -> AddSaRequest {
        AddSaRequest {
            selector: Selector {
                src_addr: Ipv4Addr::new(192, 0, 2, 1),
                src_mask: Ipv4Addr::BROADCAST,
                dest_addr: Ipv4Addr::new(192, 0, 2, 2),
                dest_mask: Ipv4Addr::BROADCAST,
                ..Selector::ANY
            },
            tunnel: tunnel.then_some(TunnelEndpoints {
                src: Ipv4Addr::new(198, 51, 100, 1),
                dest: Ipv4Addr::new(198, 51, 100, 2),
            }),
            direction,
            sas: SaBundle::Esp(gcm(0x1234)),
            udp_esp: None,
        }
    }

    #[test]
    fn inbound_transport_uses_selector_dst() {
        let r = req(Direction::Inbound, false);
        let s = SaRequest::from_v1(&r).to_spec().unwrap();
        assert_eq!(s.dst, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
        assert_eq!(s.sas[0].tunnel, None);
        assert_eq!(s.sas[0].mode, Mode::Transport);
        let mut r = req(Direction::Inbound, false);
        r.selector.dest_addr = Ipv4Addr::UNSPECIFIED;
        assert_eq!(SaRequest::from_v1(&r).to_spec().unwrap().dst, None);
    }

    #[test]
    fn tunnel_endpoints_from_this_host() {
        let a = Ipv4Addr::new(198, 51, 100, 1);
        let b = Ipv4Addr::new(198, 51, 100, 2);
        let r = req(Direction::Inbound, true);
        let s = SaRequest::from_v1(&r).to_spec().unwrap();
        assert_eq!(s.dst, Some(IpAddr::V4(b)));
        let t = s.sas[0].tunnel.unwrap();
        assert_eq!((t.local, t.remote), (IpAddr::V4(b), IpAddr::V4(a)));
        let r = req(Direction::Outbound, true);
        let t = SaRequest::from_v1(&r).to_spec().unwrap().sas[0]
            .tunnel
            .unwrap();
        assert_eq!((t.local, t.remote), (IpAddr::V4(a), IpAddr::V4(b)));
    }

    #[test]
    fn null_and_gmac_esp() {
        let mut r = req(Direction::Outbound, false);
        let mut e = gcm(0x999);
        e.cipher = ConfAlgorithm::None;
        e.cipher_key = SecretKey::default();
        e.integrity = IntegrityAlgorithm::Sha1;
        e.integrity_key = SecretKey::new(vec![2; 20]);
        r.sas = SaBundle::Esp(e.clone());
        let s = SaRequest::from_v1(&r).to_spec().unwrap();
        assert_eq!(s.sas[0].encryption, Encryption::Null);
        e.integrity = IntegrityAlgorithm::AesGmac256;
        e.integrity_key = SecretKey::new(vec![2; 36]);
        r.sas = SaBundle::Esp(e);
        let s = SaRequest::from_v1(&r).to_spec().unwrap();
        assert_eq!(s.sas[0].encryption, Encryption::None);
        assert_eq!(s.sas[0].integrity, Integrity::AesGmac256);
    }

    #[test]
    fn udp_encap_and_refusals() {
        let mut r = req(Direction::Inbound, false);
        r.udp_esp = Some(UdpEspEncap {
            encap_type: UdpEncapType::Other,
            dst_port: 4500,
            parser_entry: oid::OffloadHandle::NULL,
        });
        let s = SaRequest::from_v1(&r).to_spec().unwrap();
        assert_eq!(s.udp_encap.unwrap().port, 4500);
        assert_eq!(s.sas[0].udp_encap.unwrap().local_port, 4500);
        let mut r = req(Direction::Inbound, false);
        r.sas = SaBundle::Esp(gcm(7));
        let e = SaRequest::from_v1(&r).to_spec().unwrap_err();
        assert_eq!(e.status, oid::NdisStatus::INVALID_DATA);
        let mut r = req(Direction::Inbound, false);
        let mut e = gcm(0x999);
        e.cipher = ConfAlgorithm::Des;
        e.cipher_key = SecretKey::new(vec![0; 8]);
        e.integrity = IntegrityAlgorithm::Sha1;
        e.integrity_key = SecretKey::new(vec![0; 20]);
        r.sas = SaBundle::Esp(e);
        let e = SaRequest::from_v1(&r).to_spec().unwrap_err();
        assert_eq!(e.status, oid::NdisStatus::NOT_SUPPORTED);
    }

    #[test]
    fn table_errors() {
        assert_eq!(
            add_error(TableError::Full).status,
            oid::NdisStatus::RESOURCES
        );
        assert_eq!(
            add_error(TableError::Duplicate).status,
            oid::NdisStatus::INVALID_DATA
        );
    }
}
