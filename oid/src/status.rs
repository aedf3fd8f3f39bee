//! `NDIS_STATUS` values (ndis-wfp-abi.md §2; mingw-w64 `ddk/ndis.h`).

use core::fmt;

/// An `NDIS_STATUS` (an `NTSTATUS`, a signed 32-bit value on Windows).
///
/// Stored as the unsigned bit pattern so the constants read as in the headers (`0xC0010014`).
#[doc(alias = "NDIS_STATUS")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdisStatus(pub u32);

macro_rules! statuses {
    ($($(#[$m:meta])* $name:ident = $val:expr;)*) => {
        impl NdisStatus {
            $($(#[$m])* pub const $name: NdisStatus = NdisStatus($val);)*

            /// The Windows name of a known status, e.g. `"NDIS_STATUS_INVALID_LENGTH"`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(concat!("NDIS_STATUS_", stringify!($name))),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// `NDIS_STATUS_SUCCESS`.
    SUCCESS = 0x0000_0000;
    /// `NDIS_STATUS_PENDING`: the request completes later.
    PENDING = 0x0000_0103;
    /// `NDIS_STATUS_NOT_RECOGNIZED`.
    NOT_RECOGNIZED = 0x0001_0001;
    /// `NDIS_STATUS_NOT_COPIED`.
    NOT_COPIED = 0x0001_0002;
    /// `NDIS_STATUS_NOT_ACCEPTED`: e.g. after surprise removal, before halt.
    NOT_ACCEPTED = 0x0001_0003;
    /// `NDIS_STATUS_CALL_ACTIVE`.
    CALL_ACTIVE = 0x0001_0007;
    /// `NDIS_STATUS_INDICATION_REQUIRED`.
    INDICATION_REQUIRED = 0x4023_0001;
    /// `NDIS_STATUS_BUFFER_OVERFLOW`.
    BUFFER_OVERFLOW = 0x8000_0005;
    /// `NDIS_STATUS_FAILURE`.
    FAILURE = 0xC000_0001;
    /// `NDIS_STATUS_INVALID_PARAMETER` (NDIS 6).
    INVALID_PARAMETER = 0xC000_000D;
    /// `NDIS_STATUS_INVALID_DEVICE_REQUEST`.
    INVALID_DEVICE_REQUEST = 0xC000_0010;
    /// `NDIS_STATUS_RESOURCES`: e.g. the NIC's SA table is full.
    RESOURCES = 0xC000_009A;
    /// `NDIS_STATUS_NOT_SUPPORTED`: recognised but unsupported (e.g. an algorithm not advertised).
    NOT_SUPPORTED = 0xC000_00BB;
    /// `NDIS_STATUS_INVALID_STATE` (NDIS 6).
    INVALID_STATE = 0xC000_0184;
    /// `NDIS_STATUS_NETWORK_UNREACHABLE`.
    NETWORK_UNREACHABLE = 0xC000_023C;
    /// `NDIS_STATUS_CLOSING`.
    CLOSING = 0xC001_0002;
    /// `NDIS_STATUS_BAD_VERSION`.
    BAD_VERSION = 0xC001_0004;
    /// `NDIS_STATUS_ADAPTER_NOT_FOUND`.
    ADAPTER_NOT_FOUND = 0xC001_0006;
    /// `NDIS_STATUS_OPEN_FAILED`.
    OPEN_FAILED = 0xC001_0007;
    /// `NDIS_STATUS_DEVICE_FAILED`.
    DEVICE_FAILED = 0xC001_0008;
    /// `NDIS_STATUS_REQUEST_ABORTED`.
    REQUEST_ABORTED = 0xC001_000C;
    /// `NDIS_STATUS_RESET_IN_PROGRESS`.
    RESET_IN_PROGRESS = 0xC001_000D;
    /// `NDIS_STATUS_INVALID_PACKET`.
    INVALID_PACKET = 0xC001_000F;
    /// `NDIS_STATUS_ADAPTER_NOT_READY`.
    ADAPTER_NOT_READY = 0xC001_0011;
    /// `NDIS_STATUS_INVALID_LENGTH`: the information buffer has the wrong length for a set.
    INVALID_LENGTH = 0xC001_0014;
    /// `NDIS_STATUS_INVALID_DATA`: out-of-range contents in a set.
    INVALID_DATA = 0xC001_0015;
    /// `NDIS_STATUS_BUFFER_TOO_SHORT`: the query buffer cannot hold the answer.
    BUFFER_TOO_SHORT = 0xC001_0016;
    /// `NDIS_STATUS_INVALID_OID`: the OID is not recognised.
    INVALID_OID = 0xC001_0017;
    /// `NDIS_STATUS_ADAPTER_REMOVED`.
    ADAPTER_REMOVED = 0xC001_0018;
    /// `NDIS_STATUS_SEND_ABORTED` (NDIS 6).
    SEND_ABORTED = 0xC023_000C;
    /// `NDIS_STATUS_PAUSED`.
    PAUSED = 0xC023_002A;
    /// `NDIS_STATUS_UNSUPPORTED_REVISION`.
    UNSUPPORTED_REVISION = 0xC023_002C;
    /// `NDIS_STATUS_INVALID_PORT`.
    INVALID_PORT = 0xC023_002D;
    /// `NDIS_STATUS_INVALID_PORT_STATE`.
    INVALID_PORT_STATE = 0xC023_002E;
    /// `NDIS_STATUS_OFFLOAD_PAUSE` (chimney indication).
    OFFLOAD_PAUSE = 0x4002_0001;
    /// `NDIS_STATUS_UPLOAD_ALL` (chimney indication).
    UPLOAD_ALL = 0x4002_0002;
    /// `NDIS_STATUS_OFFLOAD_RESUME` (chimney indication).
    OFFLOAD_RESUME = 0x4002_0003;
    /// `NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS` (chimney indication).
    OFFLOAD_PARTIAL_SUCCESS = 0x4002_0004;
    /// `NDIS_STATUS_OFFLOAD_STATE_INVALID` (chimney indication).
    OFFLOAD_STATE_INVALID = 0x4002_0005;
    /// `NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG`: the current offload configuration changed
    /// (payload `NDIS_OFFLOAD`).
    TASK_OFFLOAD_CURRENT_CONFIG = 0x4002_0006;
    /// `NDIS_STATUS_TASK_OFFLOAD_HARDWARE_CAPABILITIES`: hardware capabilities changed
    /// (payload `NDIS_OFFLOAD`).
    TASK_OFFLOAD_HARDWARE_CAPABILITIES = 0x4002_0007;
    /// `NDIS_STATUS_OFFLOAD_ENCASPULATION_CHANGE` (sic, as misspelled in the headers).
    OFFLOAD_ENCASPULATION_CHANGE = 0x4002_0008;
    /// `NDIS_STATUS_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES`.
    TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES = 0x4002_000B;
}

impl NdisStatus {
    /// `NT_SUCCESS`: true for success and informational values (the top bit is clear).
    pub fn is_success(self) -> bool {
        (self.0 as i32) >= 0
    }

    /// The value as the signed `NTSTATUS` Windows code sees.
    pub fn as_i32(self) -> i32 {
        self.0 as i32
    }
}

impl fmt::Debug for NdisStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "NdisStatus({:#010x})", self.0),
        }
    }
}

impl fmt::Display for NdisStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#010x})", self.0),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_headers() {
        assert_eq!(NdisStatus::INVALID_LENGTH.0, 0xC001_0014);
        assert_eq!(NdisStatus::RESOURCES.0, 0xC000_009A);
        assert_eq!(NdisStatus::NOT_SUPPORTED.0, 0xC000_00BB);
        assert_eq!(NdisStatus::INVALID_OID.0, 0xC001_0017);
        assert_eq!(NdisStatus::TASK_OFFLOAD_CURRENT_CONFIG.0, 0x4002_0006);
    }

    #[test]
    fn names_and_success() {
        assert_eq!(
            NdisStatus::INVALID_DATA.name(),
            Some("NDIS_STATUS_INVALID_DATA")
        );
        assert!(NdisStatus::SUCCESS.is_success());
        assert!(NdisStatus::PENDING.is_success());
        assert!(!NdisStatus::FAILURE.is_success());
        assert_eq!(
            format!("{:?}", NdisStatus(0x1234)),
            "NdisStatus(0x00001234)"
        );
        assert_eq!(NdisStatus::FAILURE.as_i32(), -1073741823);
    }
}
