//! Per-packet IPsec information: [`IpsecSendInfo`] and [`IpsecReceiveInfo`] to and from the
//! three binary forms NDIS has used (ndis-wfp-abi.md §3.9, §3.10, §3.15):
//!
//! | form | send side | receive side |
//! |---|---|---|
//! | NDIS 5 `NDIS_IPSEC_PACKET_INFO` (16 bytes) | `OffloadHandle` @0, `NextOffloadHandle` @8 | `ULONG` bits 0-2 @0, `ULONG CryptoStatus` @4 |
//! | NDIS 6.0 `NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO` (8) | `OffloadHandle` @0 | `USHORT` bits 0-2 @0, `USHORT CryptoStatus` @2 |
//! | NDIS 6.1 `NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO` (8) + tunnel slot 11 (8) | `OffloadHandle` @0; `TunnelHandle` in slot 11 | `ULONG`: bits 0-2, `CryptoStatus` bits 16-31 |
//!
//! Bits 0, 1, 2 are `SaDeleteReq`, `CryptoDone`, `NextCryptoDone`. Unused/reserved bits are
//! written as zero and ignored on parse.
//!
//! Errors: a buffer shorter than the form's size gets `NDIS_STATUS_INVALID_LENGTH` with the
//! size as bytes_needed; an NDIS 5 `CryptoStatus` above `0xFFFF` (not representable in
//! [`CryptoStatus`]) gets `NDIS_STATUS_INVALID_DATA`.

use crate::abi::*;
use crate::error::{OidError, read_at};
use crate::{CryptoStatus, IpsecReceiveInfo, IpsecSendInfo, OffloadHandle};

const SA_DELETE_REQ: u32 = 1 << 0;
const CRYPTO_DONE: u32 = 1 << 1;
const NEXT_CRYPTO_DONE: u32 = 1 << 2;

fn read<T: bytemuck::Pod>(buf: &[u8], what: &'static str) -> Result<T, OidError> {
    read_at(buf, 0).ok_or(OidError::invalid_length(size_of::<T>(), what))
}

impl IpsecSendInfo {
    /// `NDIS_IPSEC_PACKET_INFO.Transmit` (NDIS 5.1).
    pub fn to_ndis5_bytes(&self) -> [u8; 16] {
        NDIS_IPSEC_PACKET_INFO::from_transmit(NDIS_IPSEC_PACKET_INFO_Transmit {
            OffloadHandle: self.offload_handle.0,
            NextOffloadHandle: self.next_offload_handle.0,
        })
        .Raw
    }

    /// Parse `NDIS_IPSEC_PACKET_INFO.Transmit`.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (16) for a short buffer.
    pub fn from_ndis5_bytes(buf: &[u8]) -> Result<Self, OidError> {
        let t =
            read::<NDIS_IPSEC_PACKET_INFO>(buf, "shorter than NDIS_IPSEC_PACKET_INFO")?.transmit();
        Ok(IpsecSendInfo {
            offload_handle: OffloadHandle(t.OffloadHandle),
            next_offload_handle: OffloadHandle(t.NextOffloadHandle),
        })
    }

    /// `NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO.Transmit` (NDIS 6.0), which holds only
    /// `offload_handle`; the same bytes serve as the v2 slot-1 `Transmit.OffloadHandle`.
    pub fn to_v1_nbl_bytes(&self) -> [u8; 8] {
        NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO::from_transmit(self.offload_handle.0).Raw
    }

    /// Parse the v1 (or v2 slot-1) NBL transmit info; `next_offload_handle` comes out NULL.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (8) for a short buffer.
    pub fn from_v1_nbl_bytes(buf: &[u8]) -> Result<Self, OidError> {
        let v =
            read::<NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO>(buf, "shorter than the NBL info")?;
        Ok(IpsecSendInfo {
            offload_handle: OffloadHandle(v.transmit_offload_handle()),
            next_offload_handle: OffloadHandle::NULL,
        })
    }

    /// The v2 pair: slot 1 (`OffloadHandle`) and slot 11 (`TunnelHandle` = `next_offload_handle`).
    pub fn to_v2_nbl_bytes(&self) -> ([u8; 8], [u8; 8]) {
        let tunnel = NDIS_IPSEC_OFFLOAD_V2_TUNNEL_NET_BUFFER_LIST_INFO {
            TunnelHandle: self.next_offload_handle.0,
        };
        (
            NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO::from_transmit(self.offload_handle.0).Raw,
            bytemuck::cast(tunnel),
        )
    }

    /// Parse the v2 pair (slot 1, slot 11).
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (8) when either buffer is short.
    pub fn from_v2_nbl_bytes(slot1: &[u8], slot11: &[u8]) -> Result<Self, OidError> {
        let v =
            read::<NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO>(slot1, "shorter than the NBL info")?;
        let t = read::<NDIS_IPSEC_OFFLOAD_V2_TUNNEL_NET_BUFFER_LIST_INFO>(
            slot11,
            "shorter than the tunnel NBL info",
        )?;
        Ok(IpsecSendInfo {
            offload_handle: OffloadHandle(v.transmit_offload_handle()),
            next_offload_handle: OffloadHandle(t.TunnelHandle),
        })
    }
}

impl IpsecReceiveInfo {
    fn bits(&self) -> u32 {
        (if self.sa_delete_req { SA_DELETE_REQ } else { 0 })
            | (if self.crypto_done { CRYPTO_DONE } else { 0 })
            | (if self.next_crypto_done {
                NEXT_CRYPTO_DONE
            } else {
                0
            })
    }

    fn from_bits(bits: u32, crypto_status: u16) -> Self {
        IpsecReceiveInfo {
            sa_delete_req: bits & SA_DELETE_REQ != 0,
            crypto_done: bits & CRYPTO_DONE != 0,
            next_crypto_done: bits & NEXT_CRYPTO_DONE != 0,
            crypto_status: CryptoStatus(crypto_status),
        }
    }

    /// `NDIS_IPSEC_PACKET_INFO.Receive` (NDIS 5.1), 16 bytes.
    pub fn to_ndis5_bytes(&self) -> [u8; 16] {
        NDIS_IPSEC_PACKET_INFO::from_receive(NDIS_IPSEC_PACKET_INFO_Receive {
            Flags: self.bits(),
            CryptoStatus: u32::from(self.crypto_status.0),
            _pad0: [0; 8],
        })
        .Raw
    }

    /// Parse `NDIS_IPSEC_PACKET_INFO.Receive`.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (16) for a short buffer; `NDIS_STATUS_INVALID_DATA` for a
    /// `CryptoStatus` above `0xFFFF`.
    pub fn from_ndis5_bytes(buf: &[u8]) -> Result<Self, OidError> {
        let r =
            read::<NDIS_IPSEC_PACKET_INFO>(buf, "shorter than NDIS_IPSEC_PACKET_INFO")?.receive();
        let status = u16::try_from(r.CryptoStatus)
            .map_err(|_| OidError::invalid_data("CryptoStatus above 0xFFFF"))?;
        Ok(Self::from_bits(r.Flags, status))
    }

    /// `NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO.Receive` (NDIS 6.0), 8 bytes.
    pub fn to_v1_nbl_bytes(&self) -> [u8; 8] {
        NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO::from_receive(
            NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive {
                // INVARIANT: bits() only uses bits 0-2, so it fits a USHORT.
                Flags: u16::try_from(self.bits()).unwrap_or(0),
                CryptoStatus: self.crypto_status.0,
                _pad0: [0; 4],
            },
        )
        .Raw
    }

    /// Parse the v1 NBL receive info.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (8) for a short buffer.
    pub fn from_v1_nbl_bytes(buf: &[u8]) -> Result<Self, OidError> {
        let r =
            read::<NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO>(buf, "shorter than the NBL info")?
                .receive();
        Ok(Self::from_bits(u32::from(r.Flags), r.CryptoStatus))
    }

    /// `NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO.Receive` (NDIS 6.1+), 8 bytes.
    pub fn to_v2_nbl_bytes(&self) -> [u8; 8] {
        let word = self.bits() | u32::from(self.crypto_status.0).checked_shl(16).unwrap_or(0);
        NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO::from_receive(word).Raw
    }

    /// Parse the v2 NBL receive info.
    ///
    /// # Errors
    /// `NDIS_STATUS_INVALID_LENGTH` (8) for a short buffer.
    pub fn from_v2_nbl_bytes(buf: &[u8]) -> Result<Self, OidError> {
        let word =
            read::<NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO>(buf, "shorter than the NBL info")?
                .receive();
        let status = u16::try_from(word.checked_shr(16).unwrap_or(0)).unwrap_or(0);
        Ok(Self::from_bits(word, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NdisStatus;

    fn rx() -> IpsecReceiveInfo {
        IpsecReceiveInfo {
            sa_delete_req: true,
            crypto_done: true,
            next_crypto_done: false,
            crypto_status: CryptoStatus::TUNNEL_ESP_AUTH_FAILED,
        }
    }

    #[test]
    fn send_info_forms() {
        let s = IpsecSendInfo {
            offload_handle: OffloadHandle(0x11),
            next_offload_handle: OffloadHandle(0x22),
        };
        let b = s.to_ndis5_bytes();
        assert_eq!(b[0..8], 0x11u64.to_ne_bytes());
        assert_eq!(b[8..16], 0x22u64.to_ne_bytes());
        assert_eq!(IpsecSendInfo::from_ndis5_bytes(&b).unwrap(), s);
        let v1 = s.to_v1_nbl_bytes();
        assert_eq!(v1, 0x11u64.to_ne_bytes());
        assert_eq!(
            IpsecSendInfo::from_v1_nbl_bytes(&v1).unwrap(),
            IpsecSendInfo {
                next_offload_handle: OffloadHandle::NULL,
                ..s
            }
        );
        let (slot1, slot11) = s.to_v2_nbl_bytes();
        assert_eq!(slot11, 0x22u64.to_ne_bytes());
        assert_eq!(
            IpsecSendInfo::from_v2_nbl_bytes(&slot1, &slot11).unwrap(),
            s
        );
    }

    #[test]
    fn receive_info_ndis5_layout() {
        let b = rx().to_ndis5_bytes();
        assert_eq!(b[0..4], 0b011u32.to_ne_bytes());
        assert_eq!(b[4..8], 5u32.to_ne_bytes());
        assert_eq!(IpsecReceiveInfo::from_ndis5_bytes(&b).unwrap(), rx());
    }

    #[test]
    fn receive_info_v1_layout() {
        let b = rx().to_v1_nbl_bytes();
        assert_eq!(b[0..2], 0b011u16.to_ne_bytes());
        assert_eq!(b[2..4], 5u16.to_ne_bytes());
        assert_eq!(IpsecReceiveInfo::from_v1_nbl_bytes(&b).unwrap(), rx());
    }

    #[test]
    fn receive_info_v2_layout_puts_crypto_status_at_byte_2() {
        let b = rx().to_v2_nbl_bytes();
        assert_eq!(b[0..4], (0b011u32 | (5 << 16)).to_le_bytes());
        assert_eq!(
            b[2..4],
            rx().to_v1_nbl_bytes()[2..4],
            "same place as the v1 USHORT"
        );
        assert_eq!(IpsecReceiveInfo::from_v2_nbl_bytes(&b).unwrap(), rx());
        let all = IpsecReceiveInfo {
            next_crypto_done: true,
            ..rx()
        };
        assert_eq!(
            IpsecReceiveInfo::from_v2_nbl_bytes(&all.to_v2_nbl_bytes()).unwrap(),
            all
        );
    }

    #[test]
    fn reserved_bits_are_ignored() {
        let mut b = rx().to_v1_nbl_bytes();
        b[0] |= 0xF8;
        assert_eq!(IpsecReceiveInfo::from_v1_nbl_bytes(&b).unwrap(), rx());
        let mut b = rx().to_v2_nbl_bytes();
        b[1] = 0xFF;
        assert_eq!(IpsecReceiveInfo::from_v2_nbl_bytes(&b).unwrap(), rx());
    }

    #[test]
    fn short_buffers_are_invalid_length() {
        let e = IpsecReceiveInfo::from_ndis5_bytes(&[0; 15]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 16)
        );
        let e = IpsecReceiveInfo::from_v1_nbl_bytes(&[0; 7]).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 8)
        );
        assert!(IpsecReceiveInfo::from_v2_nbl_bytes(&[0; 4]).is_err());
        assert!(IpsecSendInfo::from_ndis5_bytes(&[0; 8]).is_err());
        assert!(IpsecSendInfo::from_v1_nbl_bytes(&[0; 7]).is_err());
        assert!(IpsecSendInfo::from_v2_nbl_bytes(&[0; 8], &[0; 7]).is_err());
    }

    #[test]
    fn ndis5_crypto_status_above_u16_is_invalid_data() {
        let mut b = rx().to_ndis5_bytes();
        b[4..8].copy_from_slice(&0x1_0000u32.to_ne_bytes());
        let e = IpsecReceiveInfo::from_ndis5_bytes(&b).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_DATA);
    }
}
