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
}
