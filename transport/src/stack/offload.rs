//! Building v1 ADD_SA and v2 ADD_SA_EX requests from installed bundles, and deciding what
//! the NIC advertises.

use core::net::{IpAddr, Ipv4Addr};

use ipsec::{Encryption, Integrity, Mode, Protocol, SaParams};
use oid::v2::{V2AddSa, V2UdpEspEncapsulation};
use oid::{
    AddSaRequest, AhSa, ConfAlgorithm, Direction, EspSa, IntegrityAlgorithm, OffloadCapabilities,
    OffloadHandle, SaBundle, SaOptions, SecretKey, Selector, TunnelEndpoints, UdpEncapType,
    UdpEspEncap,
};

/// Where one direction's bundle is with respect to the NIC.
///
/// ```text
/// Software ──(offload on, advertised, room)──> [Offloading: the ADD_SA OID, synchronous]
///     ├── SUCCESS ───────────> Offloaded ──(SaDeleteReq)──> DeleteRequested ──(hold-off)──> Pending
///     ├── RESOURCES / NOT_SUPPORTED ──> Pending ──(DELETE_SA freed room, or tick)──> Offloading
///     └── other failure ─────> Software (not retried)
/// Offloaded ──(SA deleted / expired / outbound removed)──> DELETE_SA, gone
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaOffloadState {
    /// Processed in software and not retried (offload off, not advertised, or a hard failure).
    Software,
    /// Processed in software; the NIC refused it (full / not supported): retried when
    /// capacity frees and periodically.
    Pending,
    /// The NIC holds it (its `OffloadHandle` goes on every send).
    Offloaded,
    /// Evicted on the NIC's `SaDeleteReq`: software, not retried before the hold-off ends.
    DeleteRequested,
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(v) => Some(v),
        IpAddr::V6(_) => None,
    }
}

fn cipher(e: Encryption) -> ConfAlgorithm {
    match e {
        Encryption::None | Encryption::Null => ConfAlgorithm::None,
        Encryption::AesGcm128 => ConfAlgorithm::AesGcm128,
        Encryption::AesGcm192 => ConfAlgorithm::AesGcm192,
        Encryption::AesGcm256 => ConfAlgorithm::AesGcm256,
        Encryption::AesCbc128 => ConfAlgorithm::AesCbc128,
        Encryption::AesCbc192 => ConfAlgorithm::AesCbc192,
        Encryption::AesCbc256 => ConfAlgorithm::AesCbc256,
    }
}

fn integrity(i: Integrity) -> IntegrityAlgorithm {
    match i {
        Integrity::None => IntegrityAlgorithm::None,
        Integrity::HmacSha1_96 => IntegrityAlgorithm::Sha1,
        Integrity::HmacSha256_128 => IntegrityAlgorithm::Sha256,
        Integrity::AesGmac128 => IntegrityAlgorithm::AesGmac128,
        Integrity::AesGmac192 => IntegrityAlgorithm::AesGmac192,
        Integrity::AesGmac256 => IntegrityAlgorithm::AesGmac256,
    }
}

/// The traffic a bundle protects, from its SA context (this host's view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Traffic {
    pub local: IpAddr,
    pub remote: IpAddr,
    pub protocol: u8,
    pub local_port: u16,
    pub remote_port: u16,
}

/// Build the v1 ADD_SA (or ADD_UDPESP_SA) request for one direction's bundle. `None` when v1
/// cannot express it (IPv6, ESN, an empty or malformed bundle).
pub(crate) fn add_sa_request(
    sas: &[SaParams],
    traffic: &Traffic,
    outbound: bool,
) -> Option<AddSaRequest> {
    let first = sas.first()?;
    if sas.iter().any(|p| p.esn) {
        return None;
    }
    let (local, remote) = (v4(traffic.local)?, v4(traffic.remote)?);
    let (src, dst, sport, dport) = if outbound {
        (local, remote, traffic.local_port, traffic.remote_port)
    } else {
        (remote, local, traffic.remote_port, traffic.local_port)
    };
    let (selector, tunnel) = match (first.mode, first.tunnel) {
        (Mode::Tunnel, Some(t)) => {
            let (tl, tr) = (v4(t.local)?, v4(t.remote)?);
            let ends = if outbound {
                TunnelEndpoints { src: tl, dest: tr }
            } else {
                TunnelEndpoints { src: tr, dest: tl }
            };
            (Selector::ANY, Some(ends))
        }
        (Mode::Tunnel, None) => return None,
        (Mode::Transport, _) => {
            let host = Ipv4Addr::BROADCAST;
            (
                Selector {
                    src_addr: src,
                    src_mask: host,
                    dest_addr: dst,
                    dest_mask: host,
                    protocol: traffic.protocol,
                    src_port: sport,
                    dest_port: dport,
                },
                None,
            )
        }
    };
    let bundle = sa_bundle(sas, 0)?;
    let udp_esp = first.udp_encap.map(|u| {
        let port = if outbound {
            u.remote_port
        } else {
            u.local_port
        };
        UdpEspEncap {
            encap_type: if port == 4500 {
                UdpEncapType::Ike
            } else {
                UdpEncapType::Other
            },
            dst_port: port,
            parser_entry: OffloadHandle::NULL,
        }
    });
    Some(AddSaRequest {
        selector,
        tunnel,
        direction: if outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        sas: bundle,
        udp_esp,
    })
}

/// The OID form of a bundle's SAs (keys copied into zeroizing [`SecretKey`]s). ESN SAs carry
/// the v2 ESN option with `hi` as `SequenceNumberHighOrder` (v1 callers never pass ESN SAs).
fn sa_bundle(sas: &[SaParams], hi: u32) -> Option<SaBundle> {
    let options = |p: &SaParams| SaOptions {
        esn: p.esn,
        sequence_number_high_order: if p.esn { hi } else { 0 },
        ..SaOptions::default()
    };
    let esp = |p: &SaParams| EspSa {
        spi: p.spi,
        cipher: cipher(p.encryption),
        cipher_key: SecretKey::from_slice(p.encryption_key.expose()),
        integrity: integrity(p.integrity),
        integrity_key: SecretKey::from_slice(p.integrity_key.expose()),
        options: options(p),
    };
    let ah = |p: &SaParams| AhSa {
        spi: p.spi,
        integrity: integrity(p.integrity),
        integrity_key: SecretKey::from_slice(p.integrity_key.expose()),
        options: options(p),
    };
    match sas {
        [one] if one.protocol == Protocol::Esp => Some(SaBundle::Esp(esp(one))),
        [one] => Some(SaBundle::Ah(ah(one))),
        [e, a] => Some(SaBundle::EspThenAh(esp(e), ah(a))),
        _ => None,
    }
}

/// Build the v2 `IPSEC_OFFLOAD_V2_ADD_SA` record (sent as ADD_SA_EX) for one direction's
/// bundle: transport mode only (tunnel mode stays on v1), no UDP encapsulation (v2 UDP-ESP
/// implies port 4500 on both ends, which the stack does not assume), IPv4 or IPv6, ESN or
/// not. `src`/`dest` are the packet's addresses in that direction; `hi` is the initial
/// `SequenceNumberHighOrder` of ESN SAs. `None` when v2 cannot express it.
pub(crate) fn add_sa_v2_request(
    sas: &[SaParams],
    traffic: &Traffic,
    outbound: bool,
    hi: u32,
) -> Option<V2AddSa> {
    let first = sas.first()?;
    if first.mode != Mode::Transport || sas.iter().any(|p| p.udp_encap.is_some()) {
        return None;
    }
    if traffic.local.is_ipv6() != traffic.remote.is_ipv6() {
        return None;
    }
    let (src, dest) = if outbound {
        (traffic.local, traffic.remote)
    } else {
        (traffic.remote, traffic.local)
    };
    Some(V2AddSa {
        direction: if outbound {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        src,
        dest,
        udp_esp: V2UdpEspEncapsulation::None,
        sas: sa_bundle(sas, hi)?,
    })
}

/// Whether the NIC's IPsec v2 capabilities cover `req` (transport mode, AH/ESP and their
/// combination, every algorithm, IPv6 and ESN when used). Capacity is checked by the caller.
pub(crate) fn advertised_v2(caps: &OffloadCapabilities, req: &V2AddSa) -> bool {
    let Some(v2) = caps.ipsec_v2 else {
        return false;
    };
    if !v2.transport || (req.src.is_ipv6() && !v2.ipv6) {
        return false;
    }
    let esn =
        req.sas.esp().is_some_and(|e| e.options.esn) || req.sas.ah().is_some_and(|a| a.options.esn);
    if esn && !v2.extended_sequence_numbers {
        return false;
    }
    if let Some(e) = req.sas.esp() {
        let cipher_ok = e.cipher == ConfAlgorithm::None || v2.supports_cipher(e.cipher);
        if !v2.esp || !cipher_ok || !v2.supports_integrity(e.integrity) {
            return false;
        }
    }
    if let Some(a) = req.sas.ah()
        && (!v2.ah || !v2.supports_integrity(a.integrity))
    {
        return false;
    }
    req.sas.len() == 1 || v2.ah_esp_combined
}

/// Whether the NIC's capabilities cover `req` (capacity is checked by the caller).
pub(crate) fn advertised(caps: &OffloadCapabilities, req: &AddSaRequest) -> bool {
    let v1 = &caps.ipsec_v1;
    let outbound = req.direction == Direction::Outbound;
    let tunnel = req.tunnel.is_some();
    let cipher_ok = |c: ConfAlgorithm| match c {
        ConfAlgorithm::None => v1.esp.null_esp || caps.ipsec_v2.is_some_and(|v| v.esp),
        other => caps.ipsec_v2.is_some_and(|v| v.supports_cipher(other)),
    };
    let integ_ok = |i: IntegrityAlgorithm| match i {
        IntegrityAlgorithm::None => true,
        IntegrityAlgorithm::Sha1 if v1.ah.sha1 => true,
        other => caps.ipsec_v2.is_some_and(|v| v.supports_integrity(other)),
    };
    if let Some(e) = req.sas.esp() {
        let dir = if outbound {
            v1.esp.send
        } else {
            v1.esp.receive
        };
        let mode = if tunnel {
            v1.esp.tunnel
        } else {
            v1.esp.transport
        };
        if !dir || !mode || !cipher_ok(e.cipher) || !integ_ok(e.integrity) {
            return false;
        }
    }
    if let Some(a) = req.sas.ah() {
        let dir = if outbound { v1.ah.send } else { v1.ah.receive };
        let mode = if tunnel {
            v1.ah.tunnel
        } else {
            v1.ah.transport
        };
        if !dir || !mode || !integ_ok(a.integrity) {
            return false;
        }
    }
    if req.sas.len() == 2 && !v1.ah_esp_combined {
        return false;
    }
    if req.udp_esp.is_some() && v1.udp_esp_flags == 0 {
        return false;
    }
    true
}

/// Whether any IPsec offload is enabled in `caps` (v1 ESP or AH, send or receive).
pub(crate) fn any_enabled(caps: &OffloadCapabilities) -> bool {
    let v1 = &caps.ipsec_v1;
    v1.esp.send || v1.esp.receive || v1.ah.send || v1.ah.receive
}

/// The number of bundles the NIC can hold (`SaOffloadCapacity`; unbounded without v2).
pub(crate) fn capacity(caps: &OffloadCapabilities) -> usize {
    caps.ipsec_v2.map_or(usize::MAX, |v| {
        usize::try_from(v.sa_offload_capacity).unwrap_or(usize::MAX)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ipsec::{Key, UdpEncap};
    use oid::{IpsecV1Capabilities, IpsecV1EspCapabilities, IpsecV2Capabilities, KeyOrder};

    fn gcm(spi: u32) -> SaParams {
        SaParams {
            spi,
            protocol: Protocol::Esp,
            mode: Mode::Transport,
            encryption: Encryption::AesGcm128,
            encryption_key: Key::new(&[0x11; 20]),
            integrity: Integrity::None,
            integrity_key: Key::empty(),
            esn: false,
            tunnel: None,
            udp_encap: None,
        }
    }

    fn traffic() -> Traffic {
        Traffic {
            local: "192.0.2.1".parse().unwrap(),
            remote: "192.0.2.2".parse().unwrap(),
            protocol: 17,
            local_port: 5000,
            remote_port: 6000,
        }
    }

    fn esp_caps() -> OffloadCapabilities {
        OffloadCapabilities {
            ipsec_v1: IpsecV1Capabilities {
                esp: IpsecV1EspCapabilities {
                    transport: true,
                    send: true,
                    receive: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            ipsec_v2: Some(IpsecV2Capabilities {
                esp: true,
                encryption_algorithms: ConfAlgorithm::AesGcm128.v2_identifier(),
                sa_offload_capacity: 4,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn transport_selectors_follow_the_direction() {
        let out = add_sa_request(&[gcm(0x1000)], &traffic(), true).unwrap();
        assert_eq!(out.direction, Direction::Outbound);
        assert_eq!(out.selector.src_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(out.selector.dest_addr, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(
            (out.selector.src_port, out.selector.dest_port),
            (5000, 6000)
        );
        assert_eq!(out.selector.src_mask, Ipv4Addr::BROADCAST);
        assert_eq!(out.selector.protocol, 17);
        assert!(out.tunnel.is_none() && out.udp_esp.is_none());
        let inb = add_sa_request(&[gcm(0x1000)], &traffic(), false).unwrap();
        assert_eq!(inb.selector.src_addr, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(
            (inb.selector.src_port, inb.selector.dest_port),
            (6000, 5000)
        );
        match &inb.sas {
            SaBundle::Esp(e) => {
                assert_eq!(e.spi, 0x1000);
                assert_eq!(e.cipher, ConfAlgorithm::AesGcm128);
                assert_eq!(e.integrity, IntegrityAlgorithm::None);
                assert_eq!(e.cipher_key.expose(), &[0x11; 20]);
            }
            _ => panic!("ESP bundle expected"),
        }
    }

    #[test]
    fn v1_cannot_express_esn_ipv6_or_empty_bundles() {
        let mut esn = gcm(0x1000);
        esn.esn = true;
        assert!(add_sa_request(&[esn], &traffic(), true).is_none());
        let mut t6 = traffic();
        t6.local = "2001:db8::1".parse().unwrap();
        t6.remote = "2001:db8::2".parse().unwrap();
        assert!(add_sa_request(&[gcm(0x1000)], &t6, true).is_none());
        assert!(add_sa_request(&[], &traffic(), true).is_none());
        let mut tun = gcm(0x1000);
        tun.mode = Mode::Tunnel;
        assert!(
            add_sa_request(&[tun], &traffic(), true).is_none(),
            "tunnel without ends"
        );
    }

    #[test]
    fn udp_encapsulation_picks_the_peer_port_outbound() {
        let mut p = gcm(0x1000);
        p.udp_encap = Some(UdpEncap {
            local_port: 4500,
            remote_port: 4501,
        });
        let out = add_sa_request(&[p.clone()], &traffic(), true).unwrap();
        let u = out.udp_esp.unwrap();
        assert_eq!((u.dst_port, u.encap_type), (4501, UdpEncapType::Other));
        let inb = add_sa_request(&[p], &traffic(), false).unwrap();
        assert_eq!(inb.udp_esp.unwrap().encap_type, UdpEncapType::Ike);
    }

    #[test]
    fn capability_checks_and_key_order_round_trip() {
        let req = add_sa_request(&[gcm(0x1000)], &traffic(), true).unwrap();
        let caps = esp_caps();
        assert!(advertised(&caps, &req));
        assert!(any_enabled(&caps));
        assert_eq!(capacity(&caps), 4);
        let mut no_send = caps;
        no_send.ipsec_v1.esp.send = false;
        assert!(!advertised(&no_send, &req));
        let mut no_gcm = caps;
        no_gcm.ipsec_v2 = None;
        assert!(!advertised(&no_gcm, &req));
        assert_eq!(capacity(&no_gcm), usize::MAX);
        let mut udp = gcm(0x1000);
        udp.udp_encap = Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500,
        });
        let ureq = add_sa_request(&[udp], &traffic(), true).unwrap();
        assert!(!advertised(&caps, &ureq), "no UDP-ESP flags");
        let mut buf = [0u8; 512];
        let n = req.emit(KeyOrder::ConfidentialityFirst, &mut buf).unwrap();
        let back =
            AddSaRequest::parse_for(req.oid(), &buf[..n], KeyOrder::ConfidentialityFirst).unwrap();
        assert_eq!(back.selector, req.selector);
        assert_eq!(back.sas.esp().unwrap().cipher_key.expose(), &[0x11; 20]);
    }

    #[test]
    fn v2_requests_for_ipv6_and_esn_transport_only() {
        let mut t6 = traffic();
        t6.local = "2001:db8::1".parse().unwrap();
        t6.remote = "2001:db8::2".parse().unwrap();
        let out = add_sa_v2_request(&[gcm(0x2000)], &t6, true, 0).unwrap();
        assert_eq!((out.src, out.dest), (t6.local, t6.remote));
        assert_eq!(out.udp_esp, V2UdpEspEncapsulation::None);
        let inb = add_sa_v2_request(&[gcm(0x2000)], &t6, false, 0).unwrap();
        assert_eq!((inb.src, inb.dest), (t6.remote, t6.local));
        assert_eq!(inb.direction, Direction::Inbound);
        let mut esn = gcm(0x2000);
        esn.esn = true;
        let r = add_sa_v2_request(&[esn.clone()], &traffic(), true, 3).unwrap();
        let o = r.sas.esp().unwrap().options;
        assert!(o.esn);
        assert_eq!(o.sequence_number_high_order, 3);
        let mut caps = esp_caps();
        assert!(!advertised_v2(&caps, &r), "no Transport / ESN flags");
        let v2 = caps.ipsec_v2.as_mut().unwrap();
        v2.transport = true;
        assert!(!advertised_v2(&caps, &r), "no ESN flag");
        caps.ipsec_v2.as_mut().unwrap().extended_sequence_numbers = true;
        assert!(advertised_v2(&caps, &r));
        assert!(!advertised_v2(&caps, &out), "no IPv6 flag");
        caps.ipsec_v2.as_mut().unwrap().ipv6 = true;
        assert!(advertised_v2(&caps, &out));
        let mut tun = esn.clone();
        tun.mode = Mode::Tunnel;
        assert!(add_sa_v2_request(&[tun], &traffic(), true, 0).is_none());
        esn.udp_encap = Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500,
        });
        assert!(add_sa_v2_request(&[esn], &traffic(), true, 0).is_none());
    }
}
