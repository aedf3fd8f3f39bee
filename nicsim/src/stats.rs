//! Per-NIC and per-SA counters (DPDK SA statistics, netdevsim counters).
//!
//! Counters are relaxed atomics so the data path updates them under the table's *read* lock.
//! Snapshots ([`NicStats`], [`SaStats`]) are plain structs. No counter ever holds key material.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::frame::CryptoStatus;

macro_rules! counters {
    (
        $(#[$snap_meta:meta])* $snap:ident, $atomic:ident {
            $( $(#[$fmeta:meta])* $field:ident, )*
        }
    ) => {
        $(#[$snap_meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $snap {
            $( $(#[$fmeta])* pub $field: u64, )*
        }

        impl $snap {
            /// `(name, value)` for every counter, in declaration order (the dump's order).
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( (stringify!($field), self.$field), )*].into_iter()
            }
        }

        #[derive(Debug, Default)]
        pub(crate) struct $atomic {
            $( pub(crate) $field: AtomicU64, )*
        }

        impl $atomic {
            pub(crate) fn snapshot(&self) -> $snap {
                $snap { $( $field: self.$field.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Counters of the whole NIC.
    NicStats, NicCounters {
        /// Frames given to the NIC for transmission.
        tx_frames,
        /// Bytes of those frames.
        tx_bytes,
        /// Frames protected by an SA (handle non-zero) and sent.
        tx_protected,
        /// Frames sent as is (handle 0).
        tx_clear,
        /// Frames failed: unknown or stale handle.
        tx_unknown_handle,
        /// Frames failed: the handle names an inbound SA.
        tx_wrong_direction,
        /// Frames failed: unparsable, or not matching the SA's framing.
        tx_malformed,
        /// Frames failed: the crypto engine refused them.
        tx_crypto_error,
        /// Frames the wire refused.
        tx_wire_error,
        /// Frames received from the wire.
        rx_frames,
        /// Bytes of those frames.
        rx_bytes,
        /// Frames not for IPsec processing (no ESP/AH, IKE, keepalives, not IP).
        rx_clear,
        /// IP frames whose headers could not be parsed (indicated unprocessed).
        rx_unparsed,
        /// ESP/AH frames with no matching SA, indicated unprocessed.
        rx_no_sa,
        /// Frames processed with success (crypto_done, status success).
        rx_ok,
        /// Frames whose inner transport payload was processed too (next_crypto_done).
        rx_nested,
        /// Status transport AH auth failed.
        rx_transport_ah_auth_failed,
        /// Status transport ESP auth failed.
        rx_transport_esp_auth_failed,
        /// Status tunnel AH auth failed.
        rx_tunnel_ah_auth_failed,
        /// Status tunnel ESP auth failed.
        rx_tunnel_esp_auth_failed,
        /// Status invalid packet syntax.
        rx_invalid_syntax,
        /// Status invalid protocol.
        rx_invalid_protocol,
        /// Status generic error.
        rx_generic_error,
        /// Frames indicated with `sa_delete_req`.
        rx_sa_delete_req,
        /// SAs added.
        sa_added,
        /// SA adds refused because the table was full.
        sa_add_full,
        /// SA adds refused for invalid parameters or duplicates.
        sa_add_invalid,
        /// SAs deleted.
        sa_deleted,
    }
}

counters! {
    /// Counters of one SA.
    SaStats, SaCounters {
        /// Frames processed with success.
        packets,
        /// Bytes (whole frames) of those.
        bytes,
        /// Authentication (ICV) failures.
        auth_failed,
        /// Invalid packet syntax.
        invalid_syntax,
        /// Invalid protocol (packet's IPsec protocol differs from the SA's).
        invalid_protocol,
        /// Other failures.
        generic_error,
        /// Frames refused on transmit (malformed or crypto error).
        tx_errors,
        /// Frames indicated with `sa_delete_req` for this SA.
        delete_requests,
    }
}

#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl NicCounters {
    pub(crate) fn rx_status(&self, status: CryptoStatus) {
        let c = match status {
            CryptoStatus::Success => &self.rx_ok,
            CryptoStatus::GenericError => &self.rx_generic_error,
            CryptoStatus::TransportAhAuthFailed => &self.rx_transport_ah_auth_failed,
            CryptoStatus::TransportEspAuthFailed => &self.rx_transport_esp_auth_failed,
            CryptoStatus::TunnelAhAuthFailed => &self.rx_tunnel_ah_auth_failed,
            CryptoStatus::TunnelEspAuthFailed => &self.rx_tunnel_esp_auth_failed,
            CryptoStatus::InvalidPacketSyntax => &self.rx_invalid_syntax,
            CryptoStatus::InvalidProtocol => &self.rx_invalid_protocol,
        };
        bump(c);
    }
}

impl SaCounters {
    pub(crate) fn failure(&self, status: CryptoStatus) {
        let c = match status {
            CryptoStatus::Success => return,
            CryptoStatus::GenericError => &self.generic_error,
            CryptoStatus::TransportAhAuthFailed
            | CryptoStatus::TransportEspAuthFailed
            | CryptoStatus::TunnelAhAuthFailed
            | CryptoStatus::TunnelEspAuthFailed => &self.auth_failed,
            CryptoStatus::InvalidPacketSyntax => &self.invalid_syntax,
            CryptoStatus::InvalidProtocol => &self.invalid_protocol,
        };
        bump(c);
    }
}

/// Append `name=value` pairs separated by spaces.
pub(crate) fn write_fields(out: &mut String, fields: impl Iterator<Item = (&'static str, u64)>) {
    let mut first = true;
    for (name, value) in fields {
        if !first {
            out.push(' ');
        }
        first = false;
        // Writing to a String cannot fail.
        let _ = write!(out, "{name}={value}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_fields() {
        let c = SaCounters::default();
        bump(&c.packets);
        add(&c.bytes, 100);
        c.failure(CryptoStatus::TunnelEspAuthFailed);
        c.failure(CryptoStatus::Success);
        let s = c.snapshot();
        assert_eq!((s.packets, s.bytes, s.auth_failed), (1, 100, 1));
        let mut line = String::new();
        write_fields(&mut line, s.fields());
        assert_eq!(
            line,
            "packets=1 bytes=100 auth_failed=1 invalid_syntax=0 invalid_protocol=0 \
             generic_error=0 tx_errors=0 delete_requests=0"
        );
    }

    #[test]
    fn nic_status_counters() {
        let c = NicCounters::default();
        c.rx_status(CryptoStatus::InvalidProtocol);
        c.rx_status(CryptoStatus::Success);
        let s = c.snapshot();
        assert_eq!((s.rx_invalid_protocol, s.rx_ok), (1, 1));
    }
}
