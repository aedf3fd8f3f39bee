//! The Windows Filtering Platform management API as an application sees it through
//! `fwpuclnt.dll`: engine sessions, transactions, access rights, sublayers, filters and their
//! arbitration, and the IPsec SA-context calls of the "Manual SA" scenario.
//!
//! One [`Bfe`] value is the Base Filtering Engine of one host and holds all state; sessions
//! are [`EngineHandle`]s into it. Every Windows call is one method, with the Windows
//! arguments in the Windows order; out-parameters become return values and `DWORD` results
//! become `Result<_, WfpError>` (the exact code via [`WfpError::code`]).
//!
//! # Emulation decisions
//! - **Access rights**: Windows checks security descriptors; here each session carries a
//!   [`CallerToken`] (granted `FWPM_ACTRL_*` bits plus `DELETE`). [`Bfe::fwpm_engine_open0`]
//!   opens as an administrator, [`Bfe::fwpm_engine_open0_as`] for a restricted caller. Rights:
//!   OPEN at open; ADD for FilterAdd/SubLayerAdd and SA-context Create/GetSpi/SetSpi/AddInbound/
//!   AddOutbound; DELETE for the delete calls and Expire; WRITE for Update; READ for Get; ENUM
//!   for enumeration; SUBSCRIBE for Subscribe; BEGIN_READ_TXN / BEGIN_WRITE_TXN for Begin.
//!   A missing right gives `ERROR_ACCESS_DENIED`.
//! - **Transactions**: one per session. A write transaction snapshots the mutable state
//!   (filters, sublayers, SA contexts, SPIs) at Begin; Commit keeps, Abort restores it exactly.
//!   Events and notifications produced inside it are delivered at Commit and dropped at Abort.
//!   Calls outside an explicit transaction are all-or-nothing (validated before anything
//!   changes). The emulator never waits for the lock: while another session holds a
//!   transaction, any call that would wait fails at once with `FWP_E_TIMEOUT`. A write call in
//!   a read-only transaction gives `FWP_E_INCOMPATIBLE_TXN`. The data path
//!   ([`Bfe::classify`], [`Bfe::sa_context`]) sees the committed state only. Lifetime
//!   processing waits while a write transaction is open.
//! - **Dynamic sessions**: their filters and sublayers are deleted at `FwpmEngineClose0`.
//!   SA contexts cannot be created or deleted in them (`FWP_E_DYNAMIC_SESSION_IN_PROGRESS`).
//! - **Layers**: the four IPsec transport layers; see [`filter`] for callouts, conditions, weights,
//!   arbitration and the classification index, and [`sa`] for the SA-context rules.
//! - **Time**: a virtual clock, advanced with [`Bfe::tick`].

mod cache;
mod consts;
mod engine;
mod error;
pub mod filter;
pub mod sa;
mod types;

pub use consts::*;
pub use engine::{
    Bfe, CallerToken, DEFAULT_SEED, EngineHandle, EnumHandle, SaContextCallback, SubscriptionHandle,
};
pub use error::*;
pub use filter::{ClassifyAction, ClassifyCache, ClassifyResult, ClassifyValues};
pub use sa::{
    EXPIRE_GRACE_PERIOD, OutboundSaCache, SOFT_LIFETIME_PERCENT, SaContext, SaContextState,
    SaEvent, SaLifetimeUsage,
};
pub use types::*;
