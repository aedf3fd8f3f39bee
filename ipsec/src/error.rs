//! Error types of the data path: small `Copy` enums, no strings, no allocation.

use core::fmt;

use crate::params::{Mode, Protocol};

/// Why a frame could not be parsed, framed or stripped (no cryptography involved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// The buffer ends before a header or a length field says it should.
    Truncated,
    /// A field holds a value that is not allowed (bad version, header length, padding, ...).
    Malformed,
    /// Not enough headroom before or tailroom after the packet for the bytes to add.
    NoRoom,
    /// Valid but not handled here: IPv4 fragments, IPv6 extension headers, IPv4 source-route
    /// options under AH.
    Unsupported,
    /// The packet's IPsec protocol (or next header) does not match the SA bundle.
    ProtocolMismatch,
    /// The packet's SPI does not match the SA.
    SpiMismatch,
    /// The outbound sequence number space is exhausted (an SA never wraps, RFC 4303 §3.3.3).
    SeqOverflow,
    /// The result would exceed the IP length fields (65535 bytes).
    TooLarge,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::Truncated => "truncated packet",
            FrameError::Malformed => "malformed packet",
            FrameError::NoRoom => "not enough headroom or tailroom",
            FrameError::Unsupported => "unsupported packet layout",
            FrameError::ProtocolMismatch => "IPsec protocol does not match the SA",
            FrameError::SpiMismatch => "SPI does not match the SA",
            FrameError::SeqOverflow => "sequence number space exhausted",
            FrameError::TooLarge => "packet too large",
        })
    }
}

impl std::error::Error for FrameError {}

/// Why the crypto step ([`crate::Bundle::protect`] / [`crate::Bundle::unprotect`]) failed.
///
/// Maps 1:1 onto the NDIS receive `CryptoStatus`: `InvalidSyntax` and `BadPadding` ->
/// `INVALID_PACKET_SYNTAX`, `ProtocolMismatch` -> `INVALID_PROTOCOL`, `AuthFailed` -> the
/// `{TRANSPORT,TUNNEL}_{AH,ESP}_AUTH_FAILED` value picked by `protocol` and `mode`, anything else
/// -> `GENERIC_ERROR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoError {
    /// Lengths or header fields inconsistent with the SA (truncated, bad block multiple, ...).
    InvalidSyntax,
    /// The packet carries another IPsec protocol than the SA (bundle) expects.
    ProtocolMismatch,
    /// The packet's SPI is not the SA's.
    SpiMismatch,
    /// The ICV did not verify.
    AuthFailed {
        /// Which protocol's ICV failed.
        protocol: Protocol,
        /// The SA's mode.
        mode: Mode,
    },
    /// The ICV verified but the decrypted ESP padding or pad length is wrong (RFC 4303 §2.4).
    BadPadding,
    /// The packet or SA uses something this implementation does not do.
    Unsupported,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::InvalidSyntax => f.write_str("invalid packet syntax"),
            CryptoError::ProtocolMismatch => f.write_str("IPsec protocol does not match the SA"),
            CryptoError::SpiMismatch => f.write_str("SPI does not match the SA"),
            CryptoError::AuthFailed { protocol, mode } => {
                write!(f, "{protocol:?} {mode:?}-mode integrity check failed")
            }
            CryptoError::BadPadding => f.write_str("bad ESP padding"),
            CryptoError::Unsupported => f.write_str("unsupported"),
        }
    }
}

impl std::error::Error for CryptoError {}

impl From<FrameError> for CryptoError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::ProtocolMismatch => CryptoError::ProtocolMismatch,
            FrameError::SpiMismatch => CryptoError::SpiMismatch,
            FrameError::Unsupported => CryptoError::Unsupported,
            _ => CryptoError::InvalidSyntax,
        }
    }
}

/// Why the anti-replay window refused a sequence number (RFC 4303 §3.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplayError {
    /// Sequence number 0 is never sent (the first packet is 1).
    Zero,
    /// Already received.
    Duplicate,
    /// Left of the window: too old to tell.
    TooOld,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::Zero => "sequence number 0",
            ReplayError::Duplicate => "replayed packet",
            ReplayError::TooOld => "sequence number left of the replay window",
        })
    }
}

impl std::error::Error for ReplayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_to_crypto() {
        assert_eq!(
            CryptoError::from(FrameError::Truncated),
            CryptoError::InvalidSyntax
        );
        assert_eq!(
            CryptoError::from(FrameError::SpiMismatch),
            CryptoError::SpiMismatch
        );
        assert_eq!(
            CryptoError::from(FrameError::ProtocolMismatch),
            CryptoError::ProtocolMismatch
        );
        assert_eq!(
            CryptoError::from(FrameError::Unsupported),
            CryptoError::Unsupported
        );
    }

    #[test]
    fn display_has_no_secrets_and_is_nonempty() {
        let e = CryptoError::AuthFailed {
            protocol: Protocol::Esp,
            mode: Mode::Tunnel,
        };
        assert_eq!(e.to_string(), "Esp Tunnel-mode integrity check failed");
        assert!(!ReplayError::Duplicate.to_string().is_empty());
    }
}
