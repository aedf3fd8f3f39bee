//! Dispatch by OID: turn an [`OidRequest`] into a typed [`SetRequest`] or [`QueryOid`].

use crate::caps::{OffloadParameters, TaskOffloadList};
use crate::contract::RequestType;
use crate::error::{OidError, saturate};
use crate::v1::{AddSaRequest, DeleteSaRequest, DeleteUdpEspSaRequest, KeyOrder};
use crate::v2::{AddSaExV2Request, AddSaV2Request, DeleteSaV2Request, UpdateSaV2Request};
use crate::{Oid, OidRequest};

/// A validated set request, one variant per set OID this crate knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetRequest {
    /// `OID_TCP_TASK_OFFLOAD` (NDIS 5 set: enable the listed tasks).
    TaskOffload(TaskOffloadList),
    /// `OID_TCP_TASK_IPSEC_ADD_SA`, or `_ADD_UDPESP_SA` when `udp_esp` is set.
    AddSa(AddSaRequest),
    /// `OID_TCP_TASK_IPSEC_DELETE_SA`.
    DeleteSa(DeleteSaRequest),
    /// `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA`.
    DeleteUdpEspSa(DeleteUdpEspSaRequest),
    /// `OID_TCP_OFFLOAD_PARAMETERS`.
    OffloadParameters(OffloadParameters),
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA`.
    AddSaV2(AddSaV2Request),
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX`.
    AddSaExV2(AddSaExV2Request),
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA`.
    DeleteSaV2(DeleteSaV2Request),
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA`.
    UpdateSaV2(UpdateSaV2Request),
}

impl SetRequest {
    /// Parse the information buffer of a set request for `oid`.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_OID` for an OID that is not a known set OID; otherwise the
    /// statuses of the per-OID parser.
    pub fn parse(oid: Oid, buf: &[u8], order: KeyOrder) -> Result<Self, OidError> {
        Ok(match oid {
            Oid::TCP_TASK_OFFLOAD => Self::TaskOffload(TaskOffloadList::parse(buf)?),
            Oid::TCP_TASK_IPSEC_ADD_SA => Self::AddSa(AddSaRequest::parse(buf, order)?),
            Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA => {
                Self::AddSa(AddSaRequest::parse_udpesp(buf, order)?)
            }
            Oid::TCP_TASK_IPSEC_DELETE_SA => Self::DeleteSa(DeleteSaRequest::parse(buf)?),
            Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA => {
                Self::DeleteUdpEspSa(DeleteUdpEspSaRequest::parse(buf)?)
            }
            Oid::TCP_OFFLOAD_PARAMETERS => Self::OffloadParameters(OffloadParameters::parse(buf)?),
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA => Self::AddSaV2(AddSaV2Request::parse(buf)?),
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX => {
                Self::AddSaExV2(AddSaExV2Request::parse(buf)?)
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA => {
                Self::DeleteSaV2(DeleteSaV2Request::parse(buf)?)
            }
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA => {
                Self::UpdateSaV2(UpdateSaV2Request::parse(buf)?)
            }
            _ => return Err(OidError::invalid_oid()),
        })
    }

    /// Parse a set [`OidRequest`]: on success `bytes_read` is the buffer length; on failure
    /// `bytes_needed` is set as the error says ([`OidError::apply`]). A query request gets
    /// `NDIS_STATUS_INVALID_OID` (none of these OIDs can be queried).
    ///
    /// # Errors
    /// As [`Self::parse`].
    pub fn from_request(req: &mut OidRequest<'_>, order: KeyOrder) -> Result<Self, OidError> {
        let parsed = match req.request_type {
            RequestType::SetInformation => Self::parse(req.oid, req.information_buffer, order),
            RequestType::QueryInformation => Err(OidError::invalid_oid()),
        };
        match parsed {
            Ok(r) => {
                req.bytes_read = saturate(req.information_buffer.len());
                req.bytes_needed = 0;
                Ok(r)
            }
            Err(e) => {
                e.apply(req);
                Err(e)
            }
        }
    }

    /// The OID this request travels in.
    pub fn oid(&self) -> Oid {
        match self {
            Self::TaskOffload(_) => Oid::TCP_TASK_OFFLOAD,
            Self::AddSa(r) => r.oid(),
            Self::DeleteSa(_) => Oid::TCP_TASK_IPSEC_DELETE_SA,
            Self::DeleteUdpEspSa(_) => Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA,
            Self::OffloadParameters(_) => Oid::TCP_OFFLOAD_PARAMETERS,
            Self::AddSaV2(_) => Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA,
            Self::AddSaExV2(_) => Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX,
            Self::DeleteSaV2(_) => Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA,
            Self::UpdateSaV2(_) => Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA,
        }
    }

    /// The information buffer.
    ///
    /// # Errors
    /// As the per-OID emitters (requests a parser would refuse are refused).
    pub fn to_bytes(&self, order: KeyOrder) -> Result<Vec<u8>, OidError> {
        Ok(match self {
            Self::TaskOffload(t) => t.to_bytes(),
            Self::AddSa(r) => r.to_bytes(order)?,
            Self::DeleteSa(r) => r.to_bytes().to_vec(),
            Self::DeleteUdpEspSa(r) => r.to_bytes().to_vec(),
            Self::OffloadParameters(p) => p.to_bytes().to_vec(),
            Self::AddSaV2(r) => r.to_bytes()?,
            Self::AddSaExV2(r) => r.to_bytes()?,
            Self::DeleteSaV2(r) => r.to_bytes()?,
            Self::UpdateSaV2(r) => r.to_bytes().to_vec(),
        })
    }
}

/// The query OIDs this crate knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryOid {
    /// `OID_TCP_TASK_OFFLOAD`: answer with a [`TaskOffloadList`].
    TaskOffload,
    /// `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES`: answer with an `NDIS_OFFLOAD`
    /// ([`crate::OffloadCapabilities`]).
    HardwareCapabilities,
    /// `OID_TCP_OFFLOAD_CURRENT_CONFIG`: answer with an `NDIS_OFFLOAD` (NDIS answers it itself
    /// on Windows; the emulated miniport answers it here).
    CurrentConfig,
}

impl QueryOid {
    /// Classify a query.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_OID` for any other OID (including the set-only ones).
    pub fn from_oid(oid: Oid) -> Result<Self, OidError> {
        match oid {
            Oid::TCP_TASK_OFFLOAD => Ok(Self::TaskOffload),
            Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES => Ok(Self::HardwareCapabilities),
            Oid::TCP_OFFLOAD_CURRENT_CONFIG => Ok(Self::CurrentConfig),
            _ => Err(OidError::invalid_oid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::SaBundle;
    use crate::caps::{EncapsulationFormat, IpsecOffloadSetting};
    use crate::v1::tests::{ah_sha1, request};
    use crate::v2::tests::v4_entry;
    use crate::{NdisStatus, OffloadHandle, SaProtocol};

    fn all() -> Vec<SetRequest> {
        vec![
            SetRequest::TaskOffload(TaskOffloadList::with_ipsec(
                EncapsulationFormat::default(),
                &Default::default(),
            )),
            SetRequest::AddSa(request(SaBundle::Ah(ah_sha1()))),
            SetRequest::DeleteSa(DeleteSaRequest {
                offload_handle: OffloadHandle(1),
            }),
            SetRequest::DeleteUdpEspSa(DeleteUdpEspSaRequest {
                offload_handle: OffloadHandle(1),
                parser_entry: OffloadHandle(2),
            }),
            SetRequest::OffloadParameters(OffloadParameters {
                ipsec_v1: IpsecOffloadSetting::EspEnabled,
                ..Default::default()
            }),
            SetRequest::AddSaV2(AddSaV2Request {
                entries: vec![v4_entry(SaBundle::Ah(ah_sha1()))],
            }),
            SetRequest::AddSaExV2(AddSaExV2Request {
                sa: v4_entry(SaBundle::Ah(ah_sha1())),
                source_switch_port_id: 0,
                vlan_id: 0,
            }),
            SetRequest::DeleteSaV2(DeleteSaV2Request {
                offload_handles: vec![OffloadHandle(4)],
            }),
            SetRequest::UpdateSaV2(UpdateSaV2Request {
                offload_handle: OffloadHandle(4),
                protocol: SaProtocol::Ah,
                spi: 1,
                sequence_number_high_order: 1,
            }),
        ]
    }

    #[test]
    fn every_set_oid_round_trips_through_a_request() {
        for r in all() {
            let mut b = r.to_bytes(KeyOrder::default()).unwrap();
            let len = b.len();
            let mut req = OidRequest::set(r.oid(), &mut b);
            assert_eq!(
                SetRequest::from_request(&mut req, KeyOrder::default()).unwrap(),
                r
            );
            assert_eq!(req.bytes_read as usize, len);
        }
    }

    #[test]
    fn unknown_oid_is_invalid_oid() {
        let mut b = [0u8; 256];
        let mut req = OidRequest::set(Oid(0x0101_0101), &mut b);
        let e = SetRequest::from_request(&mut req, KeyOrder::default()).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_OID);
        assert_eq!(
            QueryOid::from_oid(Oid::TCP_TASK_IPSEC_ADD_SA)
                .unwrap_err()
                .status(),
            NdisStatus::INVALID_OID
        );
        let mut req = OidRequest::query(Oid::TCP_TASK_IPSEC_ADD_SA, &mut b);
        let e = SetRequest::from_request(&mut req, KeyOrder::default()).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_OID);
        assert_eq!(
            QueryOid::from_oid(Oid::TCP_OFFLOAD_CURRENT_CONFIG).unwrap(),
            QueryOid::CurrentConfig
        );
    }

    #[test]
    fn short_set_buffer_sets_bytes_needed_on_the_request() {
        let mut b = [0u8; 100];
        let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_ADD_SA, &mut b);
        let e = SetRequest::from_request(&mut req, KeyOrder::default()).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_LENGTH);
        assert_eq!((req.bytes_needed, req.bytes_read), (184, 0));
    }

    mod props {
        use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

        use proptest::prelude::*;

        use super::*;
        use crate::algo::{AhSa, ConfAlgorithm, Direction, EspSa, IntegrityAlgorithm, SaOptions};
        use crate::caps::{IpsecV1Capabilities, IpsecV2Capabilities, OffloadCapabilities};
        use crate::v1::{Selector, TunnelEndpoints, UdpEncapType, UdpEspEncap};
        use crate::v2::{V2AddSa, V2UdpEspEncapsulation};
        use crate::{CryptoStatus, IpsecReceiveInfo, IpsecSendInfo, SecretKey};

        const OIDS: [Oid; 11] = [
            Oid::TCP_TASK_OFFLOAD,
            Oid::TCP_TASK_IPSEC_ADD_SA,
            Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA,
            Oid::TCP_TASK_IPSEC_DELETE_SA,
            Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA,
            Oid::TCP_OFFLOAD_PARAMETERS,
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA,
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX,
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA,
            Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA,
            Oid(0xFC01_0204),
        ];

        fn key(len: usize) -> impl Strategy<Value = SecretKey> {
            proptest::collection::vec(any::<u8>(), len).prop_map(SecretKey::new)
        }

        fn options(v2: bool) -> impl Strategy<Value = SaOptions> {
            (any::<u32>(), any::<u32>(), any::<bool>(), any::<u32>()).prop_map(
                move |(ir, cr, esn, hi)| {
                    if v2 {
                        SaOptions {
                            integrity_rounds: 0,
                            conf_rounds: 0,
                            esn,
                            sequence_number_high_order: hi,
                        }
                    } else {
                        SaOptions {
                            integrity_rounds: ir,
                            conf_rounds: cr,
                            esn: false,
                            sequence_number_high_order: 0,
                        }
                    }
                },
            )
        }

        fn ah(v2: bool) -> impl Strategy<Value = AhSa> {
            (any::<u32>(), 1..IntegrityAlgorithm::ALL.len(), options(v2)).prop_flat_map(
                |(spi, i, mut opts)| {
                    let integrity = IntegrityAlgorithm::ALL[i];
                    opts.conf_rounds = 0;
                    key(integrity.key_len()).prop_map(move |k| AhSa {
                        spi,
                        integrity,
                        integrity_key: k,
                        options: opts,
                    })
                },
            )
        }

        fn esp(v2: bool) -> impl Strategy<Value = EspSa> {
            let pairs: Vec<(ConfAlgorithm, IntegrityAlgorithm)> = ConfAlgorithm::ALL
                .into_iter()
                .flat_map(|c| IntegrityAlgorithm::ALL.into_iter().map(move |i| (c, i)))
                .filter(|(c, i)| c.is_aead() == (*i == IntegrityAlgorithm::None))
                .collect();
            (any::<u32>(), proptest::sample::select(pairs), options(v2)).prop_flat_map(
                |(spi, (c, i), opts)| {
                    (key(c.key_len()), key(i.key_len())).prop_map(move |(ck, ik)| EspSa {
                        spi,
                        cipher: c,
                        cipher_key: ck,
                        integrity: i,
                        integrity_key: ik,
                        options: opts,
                    })
                },
            )
        }

        fn bundle(v2: bool) -> impl Strategy<Value = SaBundle> {
            prop_oneof![
                ah(v2).prop_map(SaBundle::Ah),
                esp(v2).prop_map(SaBundle::Esp),
                (esp(v2), ah(v2)).prop_map(|(e, a)| SaBundle::EspThenAh(e, a)),
            ]
        }

        fn v4() -> impl Strategy<Value = Ipv4Addr> {
            any::<u32>().prop_map(Ipv4Addr::from)
        }

        fn add_sa() -> impl Strategy<Value = AddSaRequest> {
            let sel = (
                v4(),
                v4(),
                v4(),
                v4(),
                any::<u8>(),
                any::<u16>(),
                any::<u16>(),
            )
                .prop_map(
                    |(src_addr, src_mask, dest_addr, dest_mask, protocol, src_port, dest_port)| {
                        Selector {
                            src_addr,
                            src_mask,
                            dest_addr,
                            dest_mask,
                            protocol,
                            src_port,
                            dest_port,
                        }
                    },
                );
            let tunnel = proptest::option::of((1..=u32::MAX, 1..=u32::MAX).prop_map(|(s, d)| {
                TunnelEndpoints {
                    src: Ipv4Addr::from(s),
                    dest: Ipv4Addr::from(d),
                }
            }));
            let udp = proptest::option::of((any::<bool>(), any::<u16>(), any::<u64>()).prop_map(
                |(ike, p, h)| UdpEspEncap {
                    encap_type: if ike {
                        UdpEncapType::Ike
                    } else {
                        UdpEncapType::Other
                    },
                    dst_port: p,
                    parser_entry: crate::OffloadHandle(h),
                },
            ));
            (sel, tunnel, any::<bool>(), bundle(false), udp).prop_map(
                |(selector, tunnel, inbound, sas, udp_esp)| AddSaRequest {
                    selector,
                    tunnel,
                    direction: if inbound {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    },
                    sas,
                    udp_esp,
                },
            )
        }

        fn v2_entry() -> impl Strategy<Value = V2AddSa> {
            let addrs = prop_oneof![
                (v4(), v4()).prop_map(|(s, d)| (IpAddr::V4(s), IpAddr::V4(d))),
                (any::<u128>(), any::<u128>()).prop_map(|(s, d)| (
                    IpAddr::V6(Ipv6Addr::from(s)),
                    IpAddr::V6(Ipv6Addr::from(d))
                )),
            ];
            let udp = proptest::sample::select(vec![
                V2UdpEspEncapsulation::None,
                V2UdpEspEncapsulation::Transport,
                V2UdpEspEncapsulation::Tunnel,
                V2UdpEspEncapsulation::TransportOverUdpEspTunnel,
                V2UdpEspEncapsulation::UdpEspTransportOverTunnel,
            ]);
            (addrs, any::<bool>(), udp, bundle(true)).prop_map(
                |((src, dest), inbound, udp_esp, sas)| V2AddSa {
                    direction: if inbound {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    },
                    src,
                    dest,
                    udp_esp,
                    sas,
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                for oid in OIDS {
                    for order in [KeyOrder::ConfidentialityFirst, KeyOrder::IntegrityFirst] {
                        let _ = SetRequest::parse(oid, &bytes, order);
                    }
                }
                let _ = OffloadCapabilities::parse(&bytes);
                let _ = AddSaV2Request::read_offload_handles(&bytes);
                let _ = IpsecReceiveInfo::from_ndis5_bytes(&bytes);
                let _ = IpsecReceiveInfo::from_v1_nbl_bytes(&bytes);
                let _ = IpsecReceiveInfo::from_v2_nbl_bytes(&bytes);
                let _ = IpsecSendInfo::from_ndis5_bytes(&bytes);
                let _ = IpsecSendInfo::from_v2_nbl_bytes(&bytes, &bytes);
                let mut copy = bytes.clone();
                let _ = AddSaV2Request::write_offload_handles(&mut copy, &[crate::OffloadHandle(1)]);
                let mut req = OidRequest::query(Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &mut copy);
                let _ = crate::complete_query(&mut req, &bytes);
            }

            #[test]
            fn mutated_valid_buffers_never_panic(
                r in add_sa(),
                v2 in v2_entry(),
                flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
            ) {
                let ex = AddSaExV2Request { sa: v2.clone(), source_switch_port_id: 1, vlan_id: 2 };
                let list = AddSaV2Request { entries: vec![v2.clone(), v2] };
                let cases = [
                    (r.oid(), r.to_bytes(KeyOrder::default()).unwrap()),
                    (Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA, list.to_bytes().unwrap()),
                    (Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, ex.to_bytes().unwrap()),
                ];
                for (oid, mut b) in cases {
                    for (i, v) in &flips {
                        let at = i.index(b.len());
                        b[at] = *v;
                    }
                    let _ = SetRequest::parse(oid, &b, KeyOrder::default());
                    let _ = AddSaV2Request::write_offload_handles(&mut b, &[crate::OffloadHandle(1)]);
                }
            }

            #[test]
            fn v1_add_sa_emit_then_parse_is_identity(r in add_sa(), integrity_first in any::<bool>()) {
                let order = if integrity_first { KeyOrder::IntegrityFirst } else { KeyOrder::ConfidentialityFirst };
                let b = r.to_bytes(order).unwrap();
                prop_assert_eq!(AddSaRequest::parse_for(r.oid(), &b, order).unwrap(), r);
            }

            #[test]
            fn v2_emit_then_parse_is_identity(
                entries in proptest::collection::vec(v2_entry(), 1..4),
                port in any::<u32>(),
                vlan in any::<u16>(),
            ) {
                let list = AddSaV2Request { entries };
                prop_assert_eq!(AddSaV2Request::parse(&list.to_bytes().unwrap()).unwrap(), list.clone());
                let ex = AddSaExV2Request { sa: list.entries[0].clone(), source_switch_port_id: port, vlan_id: vlan };
                prop_assert_eq!(AddSaExV2Request::parse(&ex.to_bytes().unwrap()).unwrap(), ex);
                let handles: Vec<_> = (1..=list.entries.len() as u64).map(crate::OffloadHandle).collect();
                let mut b = list.to_bytes().unwrap();
                AddSaV2Request::write_offload_handles(&mut b, &handles).unwrap();
                prop_assert_eq!(AddSaV2Request::read_offload_handles(&b).unwrap(), handles);
            }

            #[test]
            fn capabilities_emit_then_parse_is_identity(
                v1_bits in (any::<[bool; 16]>(), 0u32..0x20, 0u32..0x100),
                v2_bits in (any::<[bool; 11]>(), 0u32..0x10, 0u32..0x40, 0u32..0x200, any::<u32>()),
                with_v2 in any::<bool>(),
                flags in any::<u32>(),
            ) {
                let (b, encapsulation, udp_esp_flags) = v1_bits;
                let v1 = IpsecV1Capabilities {
                    encapsulation,
                    ah_esp_combined: b[0],
                    transport_tunnel_combined: b[1],
                    ipv4_options: b[2],
                    udp_esp_flags,
                    ah: crate::IpsecV1AhCapabilities { md5: b[3], sha1: b[4], transport: b[5], tunnel: b[6], send: b[7], receive: b[8] },
                    esp: crate::IpsecV1EspCapabilities {
                        des: b[9], triple_des: b[10], null_esp: b[11], transport: b[12], tunnel: b[13], send: b[14], receive: b[15],
                    },
                };
                let (c, udp_esp, auth, enc, cap) = v2_bits;
                let v2 = IpsecV2Capabilities {
                    encapsulation,
                    ipv6: c[0], ipv4_options: c[1], ipv6_non_ipsec_extension_headers: c[2], ah: c[3], esp: c[4],
                    ah_esp_combined: c[5], transport: c[6], tunnel: c[7], transport_tunnel_combined: c[8],
                    lso: c[9], extended_sequence_numbers: c[10],
                    udp_esp, authentication_algorithms: auth, encryption_algorithms: enc, sa_offload_capacity: cap,
                };
                let o = OffloadCapabilities { flags, ipsec_v1: v1, ipsec_v2: with_v2.then_some(v2) };
                prop_assert_eq!(OffloadCapabilities::parse(&o.to_bytes()).unwrap(), o);
                let task = TaskOffloadList::with_ipsec(Default::default(), &v1);
                let back = TaskOffloadList::parse(&task.to_bytes()).unwrap().ipsec().unwrap().unwrap();
                prop_assert_eq!(back, IpsecV1Capabilities { encapsulation: 0, udp_esp_flags: 0, ..v1 });
            }

            #[test]
            fn packet_info_emit_then_parse_is_identity(
                h in any::<u64>(), n in any::<u64>(), bits in any::<[bool; 3]>(), status in any::<u16>(),
            ) {
                let s = IpsecSendInfo { offload_handle: crate::OffloadHandle(h), next_offload_handle: crate::OffloadHandle(n) };
                prop_assert_eq!(IpsecSendInfo::from_ndis5_bytes(&s.to_ndis5_bytes()).unwrap(), s);
                let (a, b) = s.to_v2_nbl_bytes();
                prop_assert_eq!(IpsecSendInfo::from_v2_nbl_bytes(&a, &b).unwrap(), s);
                let r = IpsecReceiveInfo {
                    sa_delete_req: bits[0], crypto_done: bits[1], next_crypto_done: bits[2], crypto_status: CryptoStatus(status),
                };
                prop_assert_eq!(IpsecReceiveInfo::from_ndis5_bytes(&r.to_ndis5_bytes()).unwrap(), r);
                prop_assert_eq!(IpsecReceiveInfo::from_v1_nbl_bytes(&r.to_v1_nbl_bytes()).unwrap(), r);
                prop_assert_eq!(IpsecReceiveInfo::from_v2_nbl_bytes(&r.to_v2_nbl_bytes()).unwrap(), r);
            }
        }
    }
}
