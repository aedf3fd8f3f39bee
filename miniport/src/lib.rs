//! The virtual NDIS miniport: OID dispatch, capability reporting, translation of
//! `OFFLOAD_IPSEC_ADD_SA` into NIC SA programming, and the send/receive glue between the
//! protocol (through the `oid` contract) and the NIC model (`nicsim`).
//!
//! [`VirtualMiniport`] implements [`oid::Miniport`]: a protocol (the host stack) issues OID
//! requests and sends frames; the miniport completes sends and indicates received frames and
//! status changes up to the bound [`oid::Protocol`].
//!
//! It does **not** build ESP/AH headers, pick SPIs, number packets or keep replay state: that
//! is the transport's job (NDIS crypto offload). It does no I/O of its own (the NIC's port
//! does) and reads no clock: time is passed to [`VirtualMiniport::poll`] /
//! [`VirtualMiniport::set_now`].
//!
//! # OIDs
//!
//! | OID | request | buffer | statuses besides `SUCCESS` |
//! |---|---|---|---|
//! | `OID_TCP_TASK_OFFLOAD` | query | `NDIS_TASK_OFFLOAD_HEADER` + `NDIS_TASK_IPSEC` task (hardware capabilities) | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_TASK_OFFLOAD` | set | same; the IPsec task enables v1 AH/ESP, no IPsec task disables v1 | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED` (a bit the NIC lacks) |
//! | `OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES` | query | `NDIS_OFFLOAD` rev. 3 (`IPsecV1`, `IPsecV2`) | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_OFFLOAD_CURRENT_CONFIG` | query | `NDIS_OFFLOAD` rev. 3, only enabled parts set | `BUFFER_TOO_SHORT` |
//! | `OID_TCP_OFFLOAD_PARAMETERS` | set | `NDIS_OFFLOAD_PARAMETERS` (`IPsecV1`, `IPsecV2`, `IPsecV2IPv4`) | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_ADD_SA` | set | `OFFLOAD_IPSEC_ADD_SA` + KeyMat; `OffloadHandle` written back @168 | `INVALID_LENGTH`, `INVALID_DATA`, `NOT_SUPPORTED`, `RESOURCES` |
//! | `OID_TCP_TASK_IPSEC_ADD_UDPESP_SA` | set | `OFFLOAD_IPSEC_ADD_UDPESP_SA`; handles written back @168 and @184 | as ADD_SA |
//! | `OID_TCP_TASK_IPSEC_DELETE_SA` | set | `OFFLOAD_IPSEC_DELETE_SA` | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA` | set | `OFFLOAD_IPSEC_DELETE_UDPESP_SA` | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA` | set | `IPSEC_OFFLOAD_V2_ADD_SA` list; a handle per record @56 | as ADD_SA (only when no record was offloaded) |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX` | set | `IPSEC_OFFLOAD_V2_ADD_SA_EX`; handle @48 | as ADD_SA |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA` | set | `IPSEC_OFFLOAD_V2_DELETE_SA` list | `INVALID_LENGTH`, `INVALID_DATA` |
//! | `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA` | set | `IPSEC_OFFLOAD_V2_UPDATE_SA` | `INVALID_LENGTH`, `INVALID_DATA`, `INVALID_PARAMETER` |
//! | any of the above with the other request type | | | `NOT_SUPPORTED` |
//! | any other OID | | | `INVALID_OID` |
//! | anything after [`VirtualMiniport::halt`] | | | `ADAPTER_NOT_READY` |
//!
//! `BytesNeeded` accompanies `INVALID_LENGTH` / `BUFFER_TOO_SHORT`; `BytesRead` of a successful
//! set is the information buffer's length; `BytesWritten` of a query is the answer's length.
//!
//! # Decisions (where Microsoft documents no status, or the emulation needs one)
//!
//! - **Capabilities.** Derived from one table ([`caps::NicAlgorithms`]), so what is advertised
//!   and what ADD_SA accepts cannot drift apart. `NDIS_IPSEC_OFFLOAD_V1` says only what v1 can:
//!   HMAC-SHA-1 AH, NULL ESP, transport, tunnel, send, receive, ESP+AH, transport-over-tunnel,
//!   UDP-ESP `OTHER` in transport and tunnel mode (`IPSEC_TPT_/TUN_UDPESP_ENCAPTYPE_OTHER`);
//!   never MD5, DES, 3DES, IPv4 options or the reserved IKE bits. AES-GCM/GMAC/CBC and
//!   HMAC-SHA-256 are reported through `NDIS_IPSEC_OFFLOAD_V2` and accepted in v1 ADD_SA via
//!   the `oid` crate's documented extension identifiers. `SaOffloadCapacity` =
//!   min(inbound, outbound) table capacity: any mix of that many bundles fits.
//! - **Offload enable/disable.** `OID_TCP_OFFLOAD_PARAMETERS` (`IPsecV1`, `IPsecV2`; the NIC
//!   does not tell IPv4-only from IPv4+IPv6, so `IPsecV2` wins when set, else `IPsecV2IPv4`)
//!   and the NDIS 5 `OID_TCP_TASK_OFFLOAD` set. A change is indicated to the bound protocol
//!   with `NDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG` carrying the new `NDIS_OFFLOAD`. While a
//!   protocol (AH/ESP) is disabled for a version, ADD_SA of a bundle using it gets
//!   `NDIS_STATUS_NOT_SUPPORTED`; SAs already programmed stay until deleted.
//! - **ADD_SA errors.** Parse errors are the `oid` crate's (`INVALID_LENGTH` with bytes needed,
//!   `INVALID_DATA`, `NOT_SUPPORTED`). Then: algorithm not advertised (DES, 3DES, MD5) ->
//!   `NOT_SUPPORTED`; reserved SPI (0-255) -> `INVALID_DATA`; duplicate inbound SA (same SPI,
//!   destination, protocol, encapsulation port) -> `INVALID_DATA`; table full -> `RESOURCES`.
//!   Every failure leaves the NIC unchanged.
//! - **Address mapping**: see [`translate`]'s table. Inbound transport SAs are looked up by
//!   selector `DestAddr` (0 = wildcard), inbound tunnel SAs by `DestTunnelAddr`; tunnel
//!   endpoints are seen from this host (outbound local = `SrcTunnelAddr`, inbound local =
//!   `DestTunnelAddr`).
//! - **UDP-ESP parser entries.** ADD_UDPESP_SA with a NULL `EncapTypeEntryOffldHandle` creates
//!   (or reuses, by reference count, one with the same type and port) a parser entry and writes
//!   its handle back at offset 184; a non-NULL one must name an existing entry (else
//!   `INVALID_DATA`) whose type and port match (else `INVALID_DATA`), and takes a reference.
//!   DELETE_UDPESP_SA deletes the SA and, if its parser handle is non-NULL, releases one
//!   reference (the entry goes at zero); an unknown parser handle is `INVALID_DATA` and nothing
//!   is deleted. v1 carries one port, so the SA's UDP ports are both `DstEncapPort`.
//! - **DELETE_SA** of an unknown, stale or NULL handle -> `INVALID_DATA` (not specified by
//!   Microsoft). Success frees the NIC slot; nicsim zeroizes the keys.
//! - **Serialization.** All SA OIDs and offload settings run under one mutex (NDIS requires it
//!   for the UDP-ESP OIDs, whose deletes can race with adds); the NIC table has its own lock,
//!   so traffic flows meanwhile.
//! - **v2.** ADD_SA succeeds if any record was offloaded; failed records get a NULL handle; if
//!   none was, the first record's failure status is returned. v2 records carry no mode: they are
//!   transport SAs unless `UdpEspEncapsulation` names a UDP-ESP tunnel, and v2 UDP-ESP uses port
//!   4500 (IKE-type parser entry) since v2 carries no port. The nested encapsulations
//!   (`TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL`, `UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL`)
//!   are not advertised and get `NOT_SUPPORTED`; so does a cipher combined with AES-GMAC. DELETE_SA is all-or-nothing: any
//!   unknown handle -> `INVALID_DATA`, nothing deleted. UPDATE_SA of an unknown SA, an SA
//!   without ESN, an inbound SA or a wrong SPI/operation -> `INVALID_PARAMETER` (per the docs).
//! - **Send.** Frames move (their `Vec<u8>`, not a copy) into the NIC's TX queue with their
//!   `OffloadHandle`s; each completes through `send_net_buffer_lists_complete`:
//!   `SUCCESS`, `FAILURE` for an unknown/stale handle (v2 send docs) or crypto/wire failure,
//!   `INVALID_PACKET` for a frame that does not match its SA's framing. Handle 0 = sent as is.
//!   When the buffer moved to the peer (in-memory wire) the completed Nbl gets a recycled
//!   receive buffer if the pool has one, else an empty one.
//! - **Receive.** Every frame is indicated with `IpsecReceiveInfo` (`crypto_done`,
//!   `next_crypto_done`, `CryptoStatus` mapped 1:1 from nicsim, `sa_delete_req` passed
//!   through). Returned Nbls' buffers go to a bounded pool, then to the NIC's port.
//! - **Halt**: threads stop, every SA is deleted, OIDs and sends get `ADAPTER_NOT_READY`.
#![forbid(unsafe_code)]

mod adapter;
pub mod caps;
mod datapath;
pub mod translate;

pub use adapter::{
    MiniportConfig, ParserEntry, UDPESP_PARSER_HANDLE_OFFSET, V2_UDP_ESP_PORT, VirtualMiniport,
};
pub use datapath::{DataPathStats, completion_status, receive_info};
pub use nicsim::NicConfig;

impl VirtualMiniport {
    /// Miniport-level data-path counters.
    pub fn data_path_stats(&self) -> DataPathStats {
        self.data.stats()
    }
}
