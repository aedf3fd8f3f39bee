//! The host stack ("transport"): the Windows Filtering Platform management API (engine,
//! sessions, transactions, filters, arbitration, IPsec SA contexts) and the IPsec data path
//! around an offloading NIC (classification, ESP/AH framing, offload management over OIDs,
//! software fallback, inbound checks, statistics).
//!
//! It talks to a miniport only through the `oid` contract and never depends on `miniport` or
//! `nicsim`. It does no I/O and reads no clock: time is passed in.
#![forbid(unsafe_code)]

pub mod wfp;

pub use wfp::{Bfe, EngineHandle, WfpError};
pub mod stack;

pub use stack::{HostStack, StackConfig, StackError};
