//! Fast receive-side classification for SA lookup (used by the NIC model and the host).

use core::net::IpAddr;

use crate::error::FrameError;
use crate::params::UdpEncap;
use crate::wire::{ah, esp, ip_protocol, ipv4, ipv6, udp, udp_encap};

/// The SA lookup key of an inbound IPsec packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InboundKey {
    /// The SPI.
    pub spi: u32,
    /// Outer destination address (this host).
    pub dst: IpAddr,
    /// Outer source address (the peer).
    pub src: IpAddr,
    /// The sequence number as carried (low 32 bits with ESN).
    pub seq_lo: u32,
    /// For UDP-encapsulated ESP: the ports from the receiver's point of view
    /// (`local_port` = UDP destination, `remote_port` = UDP source).
    pub udp_encap: Option<UdpEncap>,
    /// Offset of the ESP or AH header from the start of the packet.
    pub ip_offset_of_ipsec_header: usize,
}

/// What an inbound IP packet is, for SA lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Classified {
    /// ESP (IP protocol 50, or UDP-encapsulated).
    Esp(InboundKey),
    /// AH (IP protocol 51); with an AH+ESP bundle this is the outer header.
    Ah(InboundKey),
    /// Not IPsec: the transport protocol.
    Clear {
        /// IP protocol / IPv6 next header.
        protocol: u8,
    },
    /// A NAT-keepalive on a UDP encapsulation port (RFC 3948 §2.3).
    NatKeepalive,
    /// An IKE message behind the non-ESP marker on a UDP encapsulation port (RFC 3948 §2.2).
    Ike,
}

/// Classify `packet` (starting at the IP header, v4 or v6) for SA lookup.
///
/// UDP datagrams to one of `udp_encap_ports` are UDP-encapsulated ESP unless they carry the
/// non-ESP marker (IKE) or are a keepalive. The IPv4 header checksum is not verified here.
///
/// # Errors
/// [`FrameError::Truncated`] / [`FrameError::Malformed`] for broken headers,
/// [`FrameError::Unsupported`] for IPv4 fragments and IPv6 packets with extension headers
/// (their upper-layer protocol is not visible without walking them).
pub fn classify(packet: &[u8], udp_encap_ports: &[u16]) -> Result<Classified, FrameError> {
    let version = packet
        .first()
        .map(|b| b >> 4)
        .ok_or(FrameError::Truncated)?;
    let (src, dst, protocol, off, end) = match version {
        4 => {
            let ip = ipv4::Packet::new_checked(packet)?;
            if ip.is_fragment() {
                return Err(FrameError::Unsupported);
            }
            (
                IpAddr::V4(ip.src_addr()),
                IpAddr::V4(ip.dst_addr()),
                ip.protocol(),
                ip.header_len(),
                usize::from(ip.total_len()),
            )
        }
        6 => {
            let ip = ipv6::Packet::new_checked(packet)?;
            let nh = ip.next_header();
            if ip_protocol::is_ipv6_extension(nh) {
                return Err(FrameError::Unsupported);
            }
            (
                IpAddr::V6(ip.src_addr()),
                IpAddr::V6(ip.dst_addr()),
                nh,
                ipv6::HEADER_LEN,
                ip.total_len(),
            )
        }
        _ => return Err(FrameError::Malformed),
    };
    let body = packet.get(off..end).ok_or(FrameError::Truncated)?;
    let key = |spi, seq_lo, udp_encap, at| InboundKey {
        spi,
        dst,
        src,
        seq_lo,
        udp_encap,
        ip_offset_of_ipsec_header: at,
    };
    match protocol {
        ip_protocol::ESP => {
            let e = esp::Packet::new_checked(body)?;
            Ok(Classified::Esp(key(e.spi(), e.seq_number(), None, off)))
        }
        ip_protocol::AH => {
            let a = ah::Packet::new_checked(body)?;
            Ok(Classified::Ah(key(a.spi(), a.seq_number(), None, off)))
        }
        ip_protocol::UDP => {
            let u = udp::Packet::new_checked(body)?;
            if !udp_encap_ports.contains(&u.dst_port()) {
                return Ok(Classified::Clear { protocol });
            }
            let payload = u.payload();
            match udp_encap::Repr::parse(&udp_encap::Packet::new_unchecked(payload))? {
                udp_encap::Repr::Keepalive => Ok(Classified::NatKeepalive),
                udp_encap::Repr::Ike => Ok(Classified::Ike),
                udp_encap::Repr::Esp { spi } => {
                    let e = esp::Packet::new_checked(payload)?;
                    let ports = UdpEncap {
                        local_port: u.dst_port(),
                        remote_port: u.src_port(),
                    };
                    Ok(Classified::Esp(key(
                        spi,
                        e.seq_number(),
                        Some(ports),
                        off + udp::HEADER_LEN,
                    )))
                }
            }
        }
        p => Ok(Classified::Clear { protocol: p }),
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use hex_literal::hex;
    use proptest::prelude::*;

    use super::*;

    fn v4(proto: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 20 + body.len()];
        let r = ipv4::Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(192, 0, 2, 2),
            protocol: proto,
            payload_len: body.len(),
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
        };
        r.emit(&mut ipv4::Packet::new_unchecked(&mut b[..]))
            .unwrap();
        b[20..].copy_from_slice(body);
        b
    }

    #[test]
    fn esp_ah_clear() {
        let p = v4(50, &hex!("00001001 00000007 aabbccdd"));
        match classify(&p, &[]).unwrap() {
            Classified::Esp(k) => {
                assert_eq!(
                    (k.spi, k.seq_lo, k.ip_offset_of_ipsec_header),
                    (0x1001, 7, 20)
                );
                assert_eq!(k.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
                assert_eq!(k.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
                assert_eq!(k.udp_encap, None);
            }
            other => panic!("{other:?}"),
        }
        let p = v4(
            51,
            &hex!("32040000 00002002 00000009 000000000000000000000000"),
        );
        assert!(
            matches!(classify(&p, &[]).unwrap(), Classified::Ah(k) if k.spi == 0x2002 && k.seq_lo == 9)
        );
        let p = v4(6, &[0; 20]);
        assert_eq!(
            classify(&p, &[4500]).unwrap(),
            Classified::Clear { protocol: 6 }
        );
    }

    #[test]
    fn udp_encap_kinds() {
        let esp = v4(17, &hex!("1194 1194 0010 0000 00001001 00000003"));
        match classify(&esp, &[4500]).unwrap() {
            Classified::Esp(k) => {
                assert_eq!(k.spi, 0x1001);
                assert_eq!(k.seq_lo, 3);
                assert_eq!(k.ip_offset_of_ipsec_header, 28);
                assert_eq!(
                    k.udp_encap,
                    Some(UdpEncap {
                        local_port: 4500,
                        remote_port: 4500
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        // Not an encapsulation port: plain UDP.
        assert_eq!(
            classify(&esp, &[4501]).unwrap(),
            Classified::Clear { protocol: 17 }
        );
        let ka = v4(17, &hex!("1194 1194 0009 0000 ff"));
        assert_eq!(classify(&ka, &[4500]).unwrap(), Classified::NatKeepalive);
        let ike = v4(17, &hex!("1194 1194 0010 0000 00000000 01020304"));
        assert_eq!(classify(&ike, &[4500]).unwrap(), Classified::Ike);
        let short = v4(17, &hex!("1194 1194 000e 0000 00001001 0000"));
        assert_eq!(classify(&short, &[4500]), Err(FrameError::Truncated));
    }

    #[test]
    fn ipv6_and_unsupported() {
        let mut p = vec![0u8; 40 + 8];
        let r = ipv6::Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: 50,
            payload_len: 8,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        r.emit(&mut ipv6::Packet::new_unchecked(&mut p[..]))
            .unwrap();
        p[40..].copy_from_slice(&hex!("00001001 00000001"));
        assert!(
            matches!(classify(&p, &[]).unwrap(), Classified::Esp(k) if k.ip_offset_of_ipsec_header == 40)
        );
        p[6] = 60; // destination options header
        assert_eq!(classify(&p, &[]), Err(FrameError::Unsupported));
        let mut f = v4(50, &[0; 8]);
        ipv4::Packet::new_unchecked(&mut f[..]).set_flags_and_frag(false, false, 8);
        assert_eq!(classify(&f, &[]), Err(FrameError::Unsupported));
        assert_eq!(classify(&[], &[]), Err(FrameError::Truncated));
        assert_eq!(classify(&[0x50; 40], &[]), Err(FrameError::Malformed));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let p = v4(17, &hex!("1194 1194 0010 0000 00001001 00000003"));
        for n in 0..p.len() {
            assert!(classify(&p[..n], &[4500]).is_err(), "{n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = classify(&b, &[4500, 0]);
        }

        #[test]
        fn arbitrary_ipv4_bodies_never_panic(proto in prop_oneof![Just(17u8), Just(50), Just(51)],
                                             body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = classify(&v4(proto, &body), &[4500]);
        }
    }
}
