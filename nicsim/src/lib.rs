//! The NIC hardware model: SA table, crypto engine, queues and ports.
//!
//! Knows nothing of NDIS structures: it has its own SA parameters, handles and status values,
//! which the `miniport` crate maps. Only the `wire::tap` module touches the operating system;
//! the engine takes time as a parameter.
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
