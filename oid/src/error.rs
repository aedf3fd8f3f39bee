//! OID errors and the information-buffer helpers a miniport uses.
//!
//! NDIS semantics ([DDI] `nc-ndis-miniport_oid_request.md`): a **set** whose buffer is shorter
//! than the OID needs fails with `NDIS_STATUS_INVALID_LENGTH` and `BytesNeeded`; a **query**
//! whose buffer cannot hold the answer fails with `NDIS_STATUS_BUFFER_TOO_SHORT` and
//! `BytesNeeded`; out-of-range contents get `NDIS_STATUS_INVALID_DATA`; a recognised but
//! unsupported request gets `NDIS_STATUS_NOT_SUPPORTED`; an unknown OID gets
//! `NDIS_STATUS_INVALID_OID`.

use core::fmt;

use bytemuck::Pod;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{NdisStatus, OffloadHandle, OidRequest};

/// Why an OID request (or a per-packet info buffer) was refused.
///
/// Carries the `NDIS_STATUS` to return, the `BytesNeeded` to report (0 unless the buffer was
/// too short) and a static, key-free explanation for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OidError {
    /// The status the request completes with.
    pub status: NdisStatus,
    /// `BytesNeeded` (non-zero with `INVALID_LENGTH` / `BUFFER_TOO_SHORT`).
    pub bytes_needed: u32,
    /// What was wrong, for logs and tests.
    pub reason: &'static str,
}

impl OidError {
    /// A set buffer too short: `NDIS_STATUS_INVALID_LENGTH` with `bytes_needed`.
    pub fn invalid_length(bytes_needed: usize, reason: &'static str) -> Self {
        OidError {
            status: NdisStatus::INVALID_LENGTH,
            bytes_needed: saturate(bytes_needed),
            reason,
        }
    }

    /// A query buffer too short: `NDIS_STATUS_BUFFER_TOO_SHORT` with `bytes_needed`.
    pub fn buffer_too_short(bytes_needed: usize, reason: &'static str) -> Self {
        OidError {
            status: NdisStatus::BUFFER_TOO_SHORT,
            bytes_needed: saturate(bytes_needed),
            reason,
        }
    }

    /// Out-of-range contents: `NDIS_STATUS_INVALID_DATA`.
    pub fn invalid_data(reason: &'static str) -> Self {
        OidError {
            status: NdisStatus::INVALID_DATA,
            bytes_needed: 0,
            reason,
        }
    }

    /// Well-formed but unsupported: `NDIS_STATUS_NOT_SUPPORTED`.
    pub fn not_supported(reason: &'static str) -> Self {
        OidError {
            status: NdisStatus::NOT_SUPPORTED,
            bytes_needed: 0,
            reason,
        }
    }

    /// An OID this crate does not know (or not for this request type):
    /// `NDIS_STATUS_INVALID_OID`.
    pub fn invalid_oid() -> Self {
        OidError {
            status: NdisStatus::INVALID_OID,
            bytes_needed: 0,
            reason: "unknown OID",
        }
    }

    /// The status to complete the request with.
    pub fn status(&self) -> NdisStatus {
        self.status
    }

    /// Record the failure in `req`: sets `bytes_needed` and clears `bytes_read` /
    /// `bytes_written`. Returns the status to complete the request with.
    pub fn apply(&self, req: &mut OidRequest<'_>) -> NdisStatus {
        req.bytes_needed = self.bytes_needed;
        req.bytes_read = 0;
        req.bytes_written = 0;
        self.status
    }
}

impl fmt::Display for OidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)?;
        if self.bytes_needed != 0 {
            write!(f, " ({} bytes needed)", self.bytes_needed)?;
        }
        Ok(())
    }
}

impl core::error::Error for OidError {}

/// Answer a query: copy `answer` into the information buffer and set `bytes_written`, or fail
/// with `NDIS_STATUS_BUFFER_TOO_SHORT` and `bytes_needed` (nothing is written then).
pub fn complete_query(req: &mut OidRequest<'_>, answer: &[u8]) -> NdisStatus {
    match req.information_buffer.get_mut(..answer.len()) {
        Some(dst) => {
            dst.copy_from_slice(answer);
            req.bytes_written = saturate(answer.len());
            req.bytes_needed = 0;
            NdisStatus::SUCCESS
        }
        None => OidError::buffer_too_short(answer.len(), "query buffer shorter than the answer")
            .apply(req),
    }
}

/// The set-length check: if the information buffer holds at least `needed` bytes, record
/// `bytes_read = needed` and succeed; otherwise record `bytes_needed = needed` and fail with
/// `NDIS_STATUS_INVALID_LENGTH`.
pub fn check_set_length(req: &mut OidRequest<'_>, needed: usize) -> Result<(), OidError> {
    if req.information_buffer.len() >= needed {
        req.bytes_read = saturate(needed);
        req.bytes_needed = 0;
        Ok(())
    } else {
        let e = OidError::invalid_length(needed, "information buffer too short");
        e.apply(req);
        Err(e)
    }
}

/// Write an `OffloadHandle` (8 bytes, native order as the `HANDLE` field holds it) at `offset`
/// of `buffer`.
///
/// # Errors
/// `NDIS_STATUS_INVALID_LENGTH` when the field does not fit in the buffer.
pub fn write_offload_handle_at(
    buffer: &mut [u8],
    offset: usize,
    handle: OffloadHandle,
) -> Result<(), OidError> {
    let end = offset
        .checked_add(8)
        .ok_or(OidError::invalid_data("offload handle offset overflows"))?;
    let dst = buffer.get_mut(offset..end).ok_or(OidError::invalid_length(
        end,
        "no room for the OffloadHandle",
    ))?;
    dst.copy_from_slice(&handle.0.to_ne_bytes());
    Ok(())
}

/// Key bytes of one algorithm: zeroized on drop, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Take ownership of key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretKey(bytes)
    }

    /// Copy key bytes.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretKey(bytes.to_vec())
    }

    /// The key bytes (handle with care).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} bytes, redacted)", self.0.len())
    }
}

/// A `usize` as a `ULONG`, saturating (buffers are never anywhere near 4 GiB here).
pub(crate) fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Read a `T` at `offset` of `buf` (unaligned); `None` when it does not fit.
pub(crate) fn read_at<T: Pod>(buf: &[u8], offset: usize) -> Option<T> {
    let end = offset.checked_add(core::mem::size_of::<T>())?;
    let bytes = buf.get(offset..end)?;
    bytemuck::try_pod_read_unaligned(bytes).ok()
}

/// Write `value` at `offset` of `buf`; `false` when it does not fit.
pub(crate) fn write_at<T: Pod>(buf: &mut [u8], offset: usize, value: &T) -> bool {
    let src = bytemuck::bytes_of(value);
    let Some(end) = offset.checked_add(src.len()) else {
        return false;
    };
    match buf.get_mut(offset..end) {
        Some(dst) => {
            dst.copy_from_slice(src);
            true
        }
        None => false,
    }
}

/// `buf[offset .. offset + len]` with checked arithmetic.
pub(crate) fn slice_at(buf: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    buf.get(offset..offset.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Oid;

    #[test]
    fn complete_query_copies_and_sets_bytes_written() {
        let mut buf = [0u8; 8];
        let mut req = OidRequest::query(Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &mut buf);
        assert_eq!(complete_query(&mut req, &[1, 2, 3]), NdisStatus::SUCCESS);
        assert_eq!(req.bytes_written, 3);
        assert_eq!(&req.information_buffer[..4], &[1, 2, 3, 0]);
    }

    #[test]
    fn complete_query_short_buffer_is_buffer_too_short() {
        let mut buf = [0u8; 2];
        let mut req = OidRequest::query(Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &mut buf);
        assert_eq!(
            complete_query(&mut req, &[9; 5]),
            NdisStatus::BUFFER_TOO_SHORT
        );
        assert_eq!(req.bytes_needed, 5);
        assert_eq!(req.bytes_written, 0);
        assert_eq!(req.information_buffer, &[0, 0], "nothing written");
    }

    #[test]
    fn set_length_check() {
        let mut buf = [0u8; 8];
        let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_DELETE_SA, &mut buf);
        assert!(check_set_length(&mut req, 8).is_ok());
        assert_eq!(req.bytes_read, 8);
        let e = check_set_length(&mut req, 16).unwrap_err();
        assert_eq!(e.status(), NdisStatus::INVALID_LENGTH);
        assert_eq!((req.bytes_needed, req.bytes_read), (16, 0));
    }

    #[test]
    fn display_and_apply() {
        let e = OidError::invalid_length(184, "short");
        assert_eq!(
            e.to_string(),
            "NDIS_STATUS_INVALID_LENGTH (0xc0010014): short (184 bytes needed)"
        );
        let mut buf = [0u8; 1];
        let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_ADD_SA, &mut buf);
        req.bytes_read = 1;
        assert_eq!(e.apply(&mut req), NdisStatus::INVALID_LENGTH);
        assert_eq!((req.bytes_needed, req.bytes_read), (184, 0));
        assert_eq!(OidError::invalid_oid().status(), NdisStatus::INVALID_OID);
        assert_eq!(
            OidError::not_supported("x").to_string(),
            "NDIS_STATUS_NOT_SUPPORTED (0xc00000bb): x"
        );
    }

    #[test]
    fn handle_write_back() {
        let mut buf = [0u8; 10];
        write_offload_handle_at(&mut buf, 2, OffloadHandle(0x0102_0304_0506_0708)).unwrap();
        assert_eq!(buf[2..10], 0x0102_0304_0506_0708u64.to_ne_bytes());
        let e = write_offload_handle_at(&mut buf, 3, OffloadHandle(1)).unwrap_err();
        assert_eq!(
            (e.status(), e.bytes_needed),
            (NdisStatus::INVALID_LENGTH, 11)
        );
        assert!(write_offload_handle_at(&mut buf, usize::MAX, OffloadHandle(1)).is_err());
    }

    #[test]
    fn secret_key_debug_is_redacted() {
        let k = SecretKey::from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let s = format!("{k:?}");
        assert_eq!(s, "SecretKey(4 bytes, redacted)");
        assert!(!s.contains("222") && !s.contains("de"));
        assert_eq!(k.expose(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn read_write_helpers_are_checked() {
        let mut buf = [0u8; 6];
        assert!(write_at(&mut buf, 1, &0x0403_0201u32));
        assert_eq!(read_at::<u32>(&buf, 1), Some(0x0403_0201));
        assert_eq!(read_at::<u32>(&buf, 3), None);
        assert_eq!(read_at::<u32>(&buf, usize::MAX), None);
        assert!(!write_at(&mut buf, 4, &0u32));
        assert_eq!(slice_at(&buf, 5, 2), None);
        assert_eq!(slice_at(&buf, usize::MAX, 2), None);
    }
}
