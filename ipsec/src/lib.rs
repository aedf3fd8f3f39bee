//! Sans-IO IPsec protocol core: ESP (RFC 4303) and AH (RFC 4302).
//!
//! Used by the host stack (`transport`: framing, software crypto, replay, decapsulation) and by
//! the NIC model (`nicsim`: the offload crypto engine), so both produce identical bytes.
//!
//! It does **not** know NDIS, do I/O, read a clock or allocate per packet.
#![forbid(unsafe_code)]

mod bundle;
mod classify;
pub mod crypto;
mod error;
pub mod esn;
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
