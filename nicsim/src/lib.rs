//! The NIC hardware model: SA table, crypto engine, queues and ports.
//!
//! Knows nothing of NDIS structures: it has its own SA parameters ([`SaSpec`]), handles
//! ([`SaHandle`]) and status values ([`CryptoStatus`], [`TxStatus`], [`TableError`]), which the
//! `miniport` crate maps. Only the [`wire::tap`] module touches the operating system; the
//! engine and table take time as a parameter (virtual clock).
//!
//! Layers:
//! * [`table`]: fixed-capacity SA table, O(1) lookups, generation-checked handles, per-SA
//!   counters, `sa_delete_req` policy, text dump. Locking scheme in its module docs.
//! * the engine (private): NDIS crypto-offload semantics on Ethernet frames, in place, via
//!   `ipsec::Bundle::{protect, unprotect, inner_packet}` and `ipsec::classify`.
//! * [`nic`]: the [`Nic`]: SA programming, TX/RX queues with batching, worker threads or
//!   deterministic stepping ([`Nic::poll`]).
//! * [`wire`]: ports ([`MemWire`], [`wire::tap::TapWire`]) and middleware ([`PcapWriter`],
//!   [`FaultInjector`]).
//!
//! NDIS mapping (for the miniport): `OffloadHandle` = [`SaHandle::raw`] (never 0);
//! `CryptoStatus` = [`CryptoStatus::code`]; `CryptoDone` / `NextCryptoDone` / `SaDeleteReq` =
//! [`RxMeta`] fields; capacity (`SaOffloadCapacity`) = [`Nic::capacity`]; a full table is
//! [`TableError::Full`] (NDIS_STATUS_RESOURCES); `UPDATE_SA` = [`Nic::set_esn_high`]; an
//! unknown send handle is [`TxStatus::UnknownHandle`] (NDIS_STATUS_FAILURE).
#![forbid(unsafe_code)]

mod engine;
pub mod frame;
pub mod nic;
pub mod stats;
pub mod table;

pub use frame::{CryptoStatus, Frame, RxMeta, SaHandle, TxMeta, TxStatus};
pub use nic::{Nic, NicConfig};
pub use stats::{NicStats, SaStats};
pub use table::{
    Direction, EncapEntry, EncapType, SaInfo, SaSpec, SaSummary, SaTable, TableConfig, TableError,
};
pub mod wire;

pub use wire::{FaultConfig, FaultInjector, FaultStats, MemWire, PcapWriter, Wire, WireError};
