//! NDIS vocabulary for the IPsec-offload emulator.
//!
//! This crate is the contract between a protocol driver (the host stack, crate `transport`) and
//! a miniport (crate `miniport`). It contains:
//!
//! - OID codes ([`Oid`]), `NDIS_STATUS` values ([`NdisStatus`]) and every IPsec-offload
//!   constant of the NDIS v1/v2 ABI with its C name ([`abi`]);
//! - byte-exact `#[repr(C)]` bytemuck mirrors of the Windows x64 structures ([`abi`]), with
//!   their Windows names; sizes and every field offset are asserted at compile time against
//!   ndis-wfp-abi.md;
//! - safe, validated views of every IPsec OID information buffer, parsed into Rust types and
//!   emitted back ([`v1`], [`v2`], [`caps`], [`SetRequest`], [`QueryOid`]), plus the helpers a
//!   miniport needs ([`complete_query`], [`check_set_length`], `OffloadHandle` write-back,
//!   [`OidError`]);
//! - the request/send/receive contract through which a protocol talks to a miniport
//!   ([`contract`]), with the per-packet IPsec metadata and its conversions to the NDIS 5,
//!   NDIS 6.0 (v1) and NDIS 6.1 (v2) per-packet forms.
//!
//! It does **not** do I/O, keep time, touch a NIC, perform cryptography, or decide what a NIC
//! supports: it parses DES, 3DES and MD5 like any other algorithm, and the miniport refuses
//! what it does not advertise. It never panics on buffer contents: every read is checked
//! (`#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]`), buffers may be
//! misaligned, and key bytes live in [`SecretKey`] (zeroized on drop, redacted in `Debug`).
//!
//! # Emulator conventions
//!
//! - **Byte order.** `IPAddr`/`IPMask` fields hold the address in network byte order in memory
//!   (first octet at the lowest address), as Windows' `IPAddr` does, and are exposed as
//!   [`core::net::Ipv4Addr`]; ports are network order on the wire and host numbers in Rust;
//!   SPIs (`SPI_TYPE`) are host-order numbers (the SPI value itself, as WFP passes it). Other
//!   integers are native (little-endian on Windows x64).
//! - **AES in v1.** v1 has no AES/SHA-256/GCM/GMAC identifiers; the emulator extends them with
//!   [`abi::OFFLOAD_IPSEC_EXT_FLAG`] (`0x8000_0000`) | the v2 algorithm bit. **This extension
//!   is not in any Windows header.** See [`ConfAlgorithm`] / [`IntegrityAlgorithm`].
//! - **KeyMat order.** The Microsoft pages disagree (§3.4); parse and emit take a [`KeyOrder`].
//! - **v2 buffers** are byte arrays with `Next` as a byte offset; see [`v2`].
//! - **Status choices** where Microsoft documents none (malformed contents → `INVALID_DATA`,
//!   well-formed but unsupported combinations → `NOT_SUPPORTED`) are listed per module.
//!
//! # OIDs, buffers and statuses
//!
//! | OID | request | buffer | type | statuses besides `SUCCESS` |
//! |---|---|---|---|---|
//! | `OID_TCP_TASK_OFFLOAD` | query | `NDIS_TASK_OFFLOAD_HEADER` + `NDIS_TASK_OFFLOAD` chain (`NDIS_TASK_IPSEC`) | [`TaskOffloadList`] | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_TASK_OFFLOAD` | set | same | [`TaskOffloadList`] | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_ADD_SA` | set | `OFFLOAD_IPSEC_ADD_SA` + KeyMat @180 | [`AddSaRequest`] | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED` |
//! | `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA` | set | `OFFLOAD_IPSEC_ADD_UDPESP_SA` + KeyMat @196 | [`AddSaRequest`] (`udp_esp`) | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED` |
//! | `OID_TCP_TASK_IPSEC_DELETE_SA` | set | `OFFLOAD_IPSEC_DELETE_SA` | [`DeleteSaRequest`] | `INVALID_LENGTH` |
//! | `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA` | set | `OFFLOAD_IPSEC_DELETE_UDPESP_SA` | [`DeleteUdpEspSaRequest`] | `INVALID_LENGTH` |
//! | `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES` | query | `NDIS_OFFLOAD` (`NDIS_IPSEC_OFFLOAD_V1`/`V2`) | [`OffloadCapabilities`] | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_OFFLOAD_CURRENT_CONFIG` | query | `NDIS_OFFLOAD` | [`OffloadCapabilities`] | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_OFFLOAD_PARAMETERS` | set | `NDIS_OFFLOAD_PARAMETERS` | [`OffloadParameters`] | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA` | set | `IPSEC_OFFLOAD_V2_ADD_SA` list | [`AddSaV2Request`] | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX` | set | `IPSEC_OFFLOAD_V2_ADD_SA_EX` + key data | [`AddSaExV2Request`] | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA` | set | `IPSEC_OFFLOAD_V2_DELETE_SA` list | [`DeleteSaV2Request`] | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA` | set | `IPSEC_OFFLOAD_V2_UPDATE_SA` | [`UpdateSaV2Request`] | `INVALID_LENGTH`, `INVALID_DATA` |
//! | any other OID (or a query of a set-only OID) | — | — | — | `INVALID_OID` |
//!
//! `BytesNeeded` accompanies `INVALID_LENGTH` and `BUFFER_TOO_SHORT`. Statuses that depend on
//! NIC state (`RESOURCES` when the SA table is full, `NOT_SUPPORTED` for an algorithm the NIC
//! does not advertise, `INVALID_PARAMETER` for an unknown handle in v2 UPDATE_SA) are the
//! miniport's.
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
mod request;
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
pub use request::{QueryOid, SetRequest};
pub use status::NdisStatus;
pub use v1::{
    AddSaRequest, DeleteSaRequest, DeleteUdpEspSaRequest, KeyOrder, Selector, TunnelEndpoints,
    UdpEncapType, UdpEspEncap,
};
pub use v2::{
    AddSaExV2Request, AddSaV2Request, DeleteSaV2Request, UpdateSaV2Request, V2AddSa,
    V2UdpEspEncapsulation,
};
