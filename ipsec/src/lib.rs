//! Sans-IO IPsec protocol core: ESP (RFC 4303) and AH (RFC 4302).
//!
//! Used by the host stack (`transport`: framing, software crypto, replay, decapsulation) and by
//! the NIC model (`nicsim`: the offload crypto engine), so both produce identical bytes.
//!
//! # What it does
//! - Checked wire views in the style of smoltcp ([`wire`]): Ethernet, IPv4, IPv6, UDP, ESP
//!   header and trailer, AH, UDP encapsulation (RFC 3948 non-ESP marker and NAT keepalive).
//! - [`classify`]: receive-side SA lookup key (SPI, addresses, low sequence bits, UDP ports).
//! - [`Transform`]: one keyed SA, built once ([`Transform::new`]): AES-GCM-128/192/256
//!   (RFC 4106), AES-GMAC-128/192/256 for ESP and AH (RFC 4543), AES-CBC-128/192/256
//!   (RFC 3602) with HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868), NULL encryption
//!   (RFC 2410) with an HMAC. ESP without integrity is refused. Two crypto providers
//!   ([`ProviderKind`]) produce identical bytes.
//! - [`Bundle`]: what one ADD_SA programs (one SA, or ESP then AH): transport and tunnel mode,
//!   IPv4 and IPv6 (inner and outer of either family), UDP-encapsulated ESP.
//! - [`ReplayWindow`] (RFC 4303 §3.4.3, RFC 6479 bitmap, 32..=65536), [`esn::infer`]
//!   (RFC 4303 Appendix A2.1), [`SeqCounter`] (never wraps).
//!
//! # What it does not do
//! No NDIS, no I/O, no clock, no allocation per packet (allocation happens when an SA or a
//! replay window is created). No IPv4 fragments, no IPv6 extension headers in transport mode
//! (and none in front of ESP/AH on receive), no IPv4 source-route options under AH, no
//! confidentiality-only ESP, no TFC padding, no dummy packets (next header 59), no IKE.
//!
//! # Host frames, NIC encrypts
//! NDIS IPsec offload is crypto offload, so framing and crypto are separate calls:
//!
//! ```text
//! host:  Bundle::encapsulate   headers, padding, trailer; zeroed IV and ICV space
//! NIC or software path:
//!        Bundle::protect       IV, encryption, ICV (ESP first, then AH)
//!        ---------------------- wire ----------------------
//!        classify              SPI + destination -> SA
//!        ReplayWindow::check   before any crypto
//!        Bundle::unprotect     verify AH, verify + decrypt ESP, check padding; strips nothing
//! host:  ReplayWindow::check + update (with the returned sequence numbers), then
//!        Bundle::decapsulate   strip headers, IV, trailer, ICV; restore the IP header
//! ```
//!
//! An ESP transport-mode IPv4 packet before and after [`Bundle::encapsulate`] (headroom `H`
//! and tailroom `T` reserved by the caller, see [`Bundle::overhead`]):
//!
//! ```text
//! before:  [ H ............ ][ IPv4 hdr | TCP/UDP payload ][ T ................. ]
//! after:   [ ][ IPv4 hdr' | SPI | seq | IV=0 ][ TCP/UDP payload ][ 1 2 3 .. | padlen | nh | ICV=0 ]
//!              proto 50, total length and checksum fixed up; the payload does not move
//! ```
//!
//! # IVs
//! The IV is a function of the SA and the sequence number, so the NIC and the software path
//! produce the same frame: AES-GCM / AES-GMAC use the 64-bit sequence number, big-endian
//! (unique per packet under one key, RFC 4106 §3.1 / RFC 4543 §3.1); AES-CBC uses
//! `AES_K(0^64 || seq)` under the SA's own key (NIST SP 800-38A Appendix C), unpredictable as
//! RFC 3602 requires. [`Transform::seal_esp`] also accepts a caller-given IV (used by the
//! published-vector tests).
//!
//! # Extended sequence numbers
//! Only the low 32 bits are carried. [`Bundle::protect`] takes the high bits
//! ([`BundleSeqHi`]); [`Bundle::unprotect`] and [`Bundle::decapsulate`] infer them from the
//! highest accepted number (RFC 4303 Appendix A2.1; window [`DEFAULT_ESN_WINDOW`] unless set
//! with [`Bundle::with_esn_window`]). The high bits enter the ICV: appended after the ESP
//! trailer for HMAC (RFC 4303 §2.2.1), in the AAD `SPI | seq_hi | seq_lo` for GCM (RFC 4106
//! §5), in the AAD `SPI | seq_hi | seq_lo | IV | payload ...` for ESP-GMAC (RFC 4543 §3.2; an
//! in-place save/restore trick, no scratch copy), and after the packet for AH (RFC 4302
//! §3.3.3.2.2; for AH-GMAC through a stack scratch buffer bounded by
//! [`MAX_AH_GMAC_ESN_PACKET`]). Because inference in `unprotect` may disagree with the
//! receiver's own inference for packets outside its window, check the replay window again
//! with the returned sequence number before updating it (see [`replay`]).
//!
//! # Choices beyond the RFCs
//! - Tunnel mode outer IPv4 header: TTL 64, DSCP/ECN copied, DF copied from an IPv4 inner
//!   header (else clear), identification = low 16 bits of the outermost SA's sequence number.
//!   Outer IPv6: hop limit 64, traffic class copied, flow label 0.
//! - UDP encapsulation: UDP checksum 0 (RFC 3948 §2.1; for IPv6, RFC 6935/6936 tunnel use).
//! - AH with AES-GMAC: Authentication Data = IV (8, the sequence number) | tag (16)
//!   (RFC 4543 §4 with erratum 3643: 4 bytes of padding under IPv6); the AAD is the packet
//!   with mutable fields and the tag zeroed, the IV kept.
//! - An AH+ESP bundle cannot use UDP encapsulation.
#![forbid(unsafe_code)]

mod bundle;
mod classify;
pub mod crypto;
mod error;
pub mod esn;
pub mod hash;
pub mod params;
pub mod replay;
mod seq;
mod transform;
pub mod wire;

pub use bundle::{Bundle, BundleSeq, BundleSeqHi, DEFAULT_ESN_WINDOW, Decapsulated, Unprotected};
pub use classify::{Classified, InboundKey, classify};
pub use crypto::{CryptoProvider, ProviderKind, provider};
pub use error::{CryptoError, FrameError, ReplayError};
pub use params::{
    Encryption, Integrity, Key, Mode, ParamError, Protocol, SaParams, TunnelEndpoints, UdpEncap,
};
pub use replay::ReplayWindow;
pub use seq::SeqCounter;
pub use transform::{EspOpened, MAX_AH_GMAC_ESN_PACKET, Transform};
