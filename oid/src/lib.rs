//! NDIS vocabulary for the IPsec-offload emulator.
//!
//! This crate is the contract between a protocol driver (the host stack, crate `transport`) and
//! a miniport (crate `miniport`). It contains:
//!
//! - OID codes, `NDIS_STATUS` values and every IPsec-offload constant of the NDIS v1/v2 ABI;
//! - byte-exact `#[repr(C)]` mirrors of the Windows x64 structures (module [`abi`]), with their
//!   Windows names, sizes and offsets asserted at compile time;
//! - safe, validated views of OID information buffers (parse and emit);
//! - the request/send/receive contract through which a protocol talks to a miniport, with the
//!   per-packet IPsec metadata.
//!
//! It does **not** do I/O, keep time, touch a NIC or perform cryptography.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing, clippy::panic)]
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod abi;
mod algo;
pub mod caps;
mod codes;
pub mod contract;
mod error;
mod packet_info;
mod status;
pub mod v1;
pub mod v2;

pub use algo::{
    AhSa, ConfAlgorithm, Direction, EspSa, IntegrityAlgorithm, SaBundle, SaOptions, SaProtocol,
};
pub use caps::{
    EncapsulationFormat, IpsecOffloadSetting, IpsecV1AhCapabilities, IpsecV1Capabilities,
    IpsecV1EspCapabilities, IpsecV2Capabilities, IpsecV2Settings, NdisEncapsulation, NdisTask,
    OffloadCapabilities, OffloadParameters, TaskOffloadEntry, TaskOffloadList,
};
pub use codes::Oid;
pub use contract::{
    CryptoStatus, IpsecReceiveInfo, IpsecSendInfo, Miniport, Nbl, OffloadHandle, OidRequest,
    Protocol, RequestType, StatusIndication,
};
pub use error::{OidError, SecretKey, check_set_length, complete_query, write_offload_handle_at};
pub use status::NdisStatus;
pub use v1::{
    AddSaRequest, DeleteSaRequest, DeleteUdpEspSaRequest, KeyOrder, Selector, TunnelEndpoints,
    UdpEncapType, UdpEspEncap,
};
pub use v2::{
    AddSaExV2Request, AddSaV2Request, DeleteSaV2Request, UpdateSaV2Request, V2AddSa,
    V2UdpEspEncapsulation,
};
