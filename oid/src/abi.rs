//! Byte-exact mirrors of the Windows x64 NDIS IPsec-offload structures, and the constants of the
//! NDIS ABI, with their C names.
//!
//! Sources: ndis-wfp-abi.md §3 (layouts) and §4 (values), which cite mingw-w64 `ntddndis.h` /
//! `ddk/ndis.h`, the WDK headers, windows-sys 0.61.2 and Microsoft's DDI reference pages
//! (`learn.microsoft.com/windows-hardware/drivers/ddi/...`). The `NDIS_OFFLOAD_PARAMETERS`
//! revision sizes are the `RTL_SIZEOF_THROUGH_FIELD` definitions of the WDK `ntddndis.h` and the
//! Microsoft `NDIS_OFFLOAD_PARAMETERS` page.
//!
//! Every struct is `#[repr(C)]`, [`bytemuck::Pod`] and has every padding byte as an explicit
//! `_padN` field, so it can be read from an (unaligned) information buffer with
//! [`bytemuck::try_pod_read_unaligned`] and written back with [`bytemuck::bytes_of`]. Its size
//! and the offset of every field are asserted at compile time against the reference.
//!
//! Conventions:
//! - Handles and pointers (`HANDLE`, `NDIS_HANDLE`, `PVOID`, `Next` pointers) are `u64`.
//! - A C `enum` is an `i32` (`OFFLOAD_OPERATION_E`, `UDP_ENCAP_TYPE`, ...).
//! - C bitfields are one `ULONG`/`USHORT` word holding the bits LSB-first (MSVC rules).
//! - A variable tail (`KeyMat[1]`, `KeyData[1]`, `TaskBuffer[1]`) is declared together with the
//!   tail padding that follows it (e.g. `KeyMat: [u8; 4]`), because a `[u8; 1]` would leave
//!   implicit padding and could not be `Pod`. The real data starts at the field offset and runs
//!   for the length given by the struct (`KeyLen`, `KeyLength`, `TaskBufferLength`).
//! - Unions are stored as raw bytes (`Raw`/`Endpoints`) with accessors for each arm.
//! - Address fields (`IPAddr`) hold the address in network byte order in memory, as Windows'
//!   `IPAddr` does: read them with `u32::to_ne_bytes` to get the octets.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

use bytemuck::{Pod, Zeroable};
use core::mem::{offset_of, size_of};

/// `ULONG` in Windows x64.
pub type ULONG = u32;
/// `USHORT`.
pub type USHORT = u16;
/// `UCHAR`.
pub type UCHAR = u8;
/// `BOOLEAN` (0 = FALSE, 1 = TRUE).
pub type BOOLEAN = u8;
/// `IPAddr`: an IPv4 address, network byte order in memory.
pub type IPAddr = u32;
/// `IPMask`: an IPv4 mask, network byte order in memory.
pub type IPMask = u32;
/// `SPI_TYPE`: the SPI value as a host-order number (emulator convention, see the crate docs).
pub type SPI_TYPE = u32;
/// `HANDLE` / `NDIS_HANDLE`: an opaque 64-bit value.
pub type HANDLE = u64;
/// `NDIS_HANDLE`.
pub type NDIS_HANDLE = u64;
/// `OFFLOAD_OPERATION_E` (a C enum).
pub type OFFLOAD_OPERATION_E = i32;
/// `UDP_ENCAP_TYPE` (a C enum).
pub type UDP_ENCAP_TYPE = i32;
/// `NDIS_TASK` (a C enum).
pub type NDIS_TASK = i32;
/// `NDIS_ENCAPSULATION` (a C enum).
pub type NDIS_ENCAPSULATION = i32;
/// `IPSEC_OFFLOAD_V2_OPERATION` (a C enum).
pub type IPSEC_OFFLOAD_V2_OPERATION = i32;
/// `NDIS_SWITCH_PORT_ID` (`UINT32`).
pub type NDIS_SWITCH_PORT_ID = u32;

// ---------------------------------------------------------------------------------------------
// §3.1 / §3.14 object header types and NDIS_OFFLOAD / NDIS_OFFLOAD_PARAMETERS values.

/// `NDIS_OBJECT_TYPE_DEFAULT` (`NDIS_OBJECT_HEADER.Type` of the v2 SA structs and
/// `NDIS_OFFLOAD_PARAMETERS`).
pub const NDIS_OBJECT_TYPE_DEFAULT: UCHAR = 0x80;
/// `NDIS_OBJECT_TYPE_OFFLOAD` (`NDIS_OFFLOAD.Header.Type`).
pub const NDIS_OBJECT_TYPE_OFFLOAD: UCHAR = 0xA7;

/// `NDIS_OFFLOAD_REVISION_1` (NDIS 6.0: through `Flags`).
pub const NDIS_OFFLOAD_REVISION_1: UCHAR = 1;
/// `NDIS_OFFLOAD_REVISION_2` (NDIS 6.1: through `IPsecV2`).
pub const NDIS_OFFLOAD_REVISION_2: UCHAR = 2;
/// `NDIS_OFFLOAD_REVISION_3` (NDIS 6.30: through `EncapsulatedPacketTaskOffloadGre`).
pub const NDIS_OFFLOAD_REVISION_3: UCHAR = 3;
/// `NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1` (`RTL_SIZEOF_THROUGH_FIELD(NDIS_OFFLOAD, Flags)`).
pub const NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_1: USHORT = 112;
/// `NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_2` (through `IPsecV2`).
pub const NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_2: USHORT = 144;
/// `NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3` (through `EncapsulatedPacketTaskOffloadGre`).
pub const NDIS_SIZEOF_NDIS_OFFLOAD_REVISION_3: USHORT = 156;
/// `NDIS_OFFLOAD_FLAGS_GROUP_CHECKSUM_CAPABILITIES`.
pub const NDIS_OFFLOAD_FLAGS_GROUP_CHECKSUM_CAPABILITIES: ULONG = 0x1;
/// `IPSEC_OFFLOAD_V2_AND_TCP_CHECKSUM_COEXISTENCE`.
pub const IPSEC_OFFLOAD_V2_AND_TCP_CHECKSUM_COEXISTENCE: ULONG = 0x2;
/// `IPSEC_OFFLOAD_V2_AND_UDP_CHECKSUM_COEXISTENCE`.
pub const IPSEC_OFFLOAD_V2_AND_UDP_CHECKSUM_COEXISTENCE: ULONG = 0x4;
/// `NDIS_OFFLOAD_NOT_SUPPORTED`: value of a 2-bit capability field.
pub const NDIS_OFFLOAD_NOT_SUPPORTED: ULONG = 0;
/// `NDIS_OFFLOAD_SUPPORTED`: value of a 2-bit capability field.
pub const NDIS_OFFLOAD_SUPPORTED: ULONG = 1;

/// `NDIS_OFFLOAD_PARAMETERS_REVISION_1` (NDIS 6.0).
pub const NDIS_OFFLOAD_PARAMETERS_REVISION_1: UCHAR = 1;
/// `NDIS_OFFLOAD_PARAMETERS_REVISION_2` (NDIS 6.1: adds `IPsecV2`, `IPsecV2IPv4`).
pub const NDIS_OFFLOAD_PARAMETERS_REVISION_2: UCHAR = 2;
/// `NDIS_OFFLOAD_PARAMETERS_REVISION_3` (NDIS 6.30: adds RSC and encapsulation members).
pub const NDIS_OFFLOAD_PARAMETERS_REVISION_3: UCHAR = 3;
/// `NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1` (through `Flags`).
pub const NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_1: USHORT = 20;
/// `NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_2` (through `IPsecV2IPv4`).
pub const NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_2: USHORT = 22;
/// `NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_3` (through `EncapsulationTypes`).
pub const NDIS_SIZEOF_OFFLOAD_PARAMETERS_REVISION_3: USHORT = 26;
/// `NDIS_OFFLOAD_PARAMETERS_NO_CHANGE`.
pub const NDIS_OFFLOAD_PARAMETERS_NO_CHANGE: UCHAR = 0;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV1_DISABLED: UCHAR = 1;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_ENABLED: UCHAR = 2;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV1_ESP_ENABLED: UCHAR = 3;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV1_AH_AND_ESP_ENABLED: UCHAR = 4;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_DISABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV2_DISABLED: UCHAR = 1;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_ENABLED: UCHAR = 2;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_ESP_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV2_ESP_ENABLED: UCHAR = 3;
/// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_AND_ESP_ENABLED`.
pub const NDIS_OFFLOAD_PARAMETERS_IPSECV2_AH_AND_ESP_ENABLED: UCHAR = 4;

// ---------------------------------------------------------------------------------------------
// §4.1 - §4.4 v1 values.

/// `AUTHENTICATE` (`OFFLOAD_OPERATION_E`): an AH SA.
pub const AUTHENTICATE: OFFLOAD_OPERATION_E = 1;
/// `ENCRYPT` (`OFFLOAD_OPERATION_E`): an ESP SA.
pub const ENCRYPT: OFFLOAD_OPERATION_E = 2;
/// `OFFLOAD_IPSEC_CONF_NONE`: no confidentiality (NULL encryption for ESP).
pub const OFFLOAD_IPSEC_CONF_NONE: ULONG = 0;
/// `OFFLOAD_IPSEC_CONF_DES`.
pub const OFFLOAD_IPSEC_CONF_DES: ULONG = 1;
/// `OFFLOAD_IPSEC_CONF_RESERVED`.
pub const OFFLOAD_IPSEC_CONF_RESERVED: ULONG = 2;
/// `OFFLOAD_IPSEC_CONF_3_DES`.
pub const OFFLOAD_IPSEC_CONF_3_DES: ULONG = 3;
/// `OFFLOAD_IPSEC_CONF_MAX`.
pub const OFFLOAD_IPSEC_CONF_MAX: ULONG = 4;
/// `OFFLOAD_IPSEC_INTEGRITY_NONE`.
pub const OFFLOAD_IPSEC_INTEGRITY_NONE: ULONG = 0;
/// `OFFLOAD_IPSEC_INTEGRITY_MD5`.
pub const OFFLOAD_IPSEC_INTEGRITY_MD5: ULONG = 1;
/// `OFFLOAD_IPSEC_INTEGRITY_SHA` (SHA-1).
pub const OFFLOAD_IPSEC_INTEGRITY_SHA: ULONG = 2;
/// `OFFLOAD_IPSEC_INTEGRITY_MAX`.
pub const OFFLOAD_IPSEC_INTEGRITY_MAX: ULONG = 3;

/// **Emulator extension, not in any Windows header.** v1 has no AES, SHA-256, GCM or GMAC
/// identifiers; an `algoIdentifier` with this bit set carries a v2 `IPSEC_OFFLOAD_V2_*`
/// algorithm bit in its low bits (`OFFLOAD_IPSEC_EXT_FLAG | IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128`
/// selects AES-GCM-128 as `ConfAlgo`, `OFFLOAD_IPSEC_EXT_FLAG |
/// IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256` selects HMAC-SHA-256 as `IntegrityAlgo`).
pub const OFFLOAD_IPSEC_EXT_FLAG: ULONG = 0x8000_0000;

/// `OFFLOAD_MAX_SAS`: capacity of `OFFLOAD_IPSEC_ADD_SA.SecAssoc`.
pub const OFFLOAD_MAX_SAS: usize = 3;
/// `OFFLOAD_INBOUND_SA` (`OFFLOAD_IPSEC_ADD_SA.Flags`).
pub const OFFLOAD_INBOUND_SA: USHORT = 0x0001;
/// `OFFLOAD_OUTBOUND_SA` (`OFFLOAD_IPSEC_ADD_SA.Flags`).
pub const OFFLOAD_OUTBOUND_SA: USHORT = 0x0002;

/// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE` (`UDP_ENCAP_TYPE`).
pub const OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE: UDP_ENCAP_TYPE = 0;
/// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER` (`UDP_ENCAP_TYPE`).
pub const OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_OTHER: UDP_ENCAP_TYPE = 1;

/// `CRYPTO_SUCCESS`.
pub const CRYPTO_SUCCESS: ULONG = 0;
/// `CRYPTO_GENERIC_ERROR`.
pub const CRYPTO_GENERIC_ERROR: ULONG = 1;
/// `CRYPTO_TRANSPORT_AH_AUTH_FAILED`.
pub const CRYPTO_TRANSPORT_AH_AUTH_FAILED: ULONG = 2;
/// `CRYPTO_TRANSPORT_ESP_AUTH_FAILED`.
pub const CRYPTO_TRANSPORT_ESP_AUTH_FAILED: ULONG = 3;
/// `CRYPTO_TUNNEL_AH_AUTH_FAILED`.
pub const CRYPTO_TUNNEL_AH_AUTH_FAILED: ULONG = 4;
/// `CRYPTO_TUNNEL_ESP_AUTH_FAILED`.
pub const CRYPTO_TUNNEL_ESP_AUTH_FAILED: ULONG = 5;
/// `CRYPTO_INVALID_PACKET_SYNTAX`.
pub const CRYPTO_INVALID_PACKET_SYNTAX: ULONG = 6;
/// `CRYPTO_INVALID_PROTOCOL`.
pub const CRYPTO_INVALID_PROTOCOL: ULONG = 7;
/// `MAX_HASHES` (NDIS 5 `ndis.h`).
pub const MAX_HASHES: ULONG = 4;
/// `TRUNCATED_HASH_LEN` (NDIS 5 `ndis.h`).
pub const TRUNCATED_HASH_LEN: ULONG = 12;

// ---------------------------------------------------------------------------------------------
// §4.5 v1 UDP-ESP capability bits, §4.6 NDIS_ENCAPSULATION_* flags, §3.11 NDIS 5 enums.

/// `IPSEC_TPT_UDPESP_ENCAPTYPE_IKE` (reserved for internal use).
pub const IPSEC_TPT_UDPESP_ENCAPTYPE_IKE: ULONG = 0x01;
/// `IPSEC_TUN_UDPESP_ENCAPTYPE_IKE` (reserved).
pub const IPSEC_TUN_UDPESP_ENCAPTYPE_IKE: ULONG = 0x02;
/// `IPSEC_TPTOVERTUN_UDPESP_ENCAPTYPE_IKE` (reserved).
pub const IPSEC_TPTOVERTUN_UDPESP_ENCAPTYPE_IKE: ULONG = 0x04;
/// `IPSEC_TPT_UDPESP_OVER_PURE_TUN_ENCAPTYPE_IKE` (reserved).
pub const IPSEC_TPT_UDPESP_OVER_PURE_TUN_ENCAPTYPE_IKE: ULONG = 0x08;
/// `IPSEC_TPT_UDPESP_ENCAPTYPE_OTHER`: UDP-encapsulated transport mode.
pub const IPSEC_TPT_UDPESP_ENCAPTYPE_OTHER: ULONG = 0x10;
/// `IPSEC_TUN_UDPESP_ENCAPTYPE_OTHER`: UDP-encapsulated tunnel mode.
pub const IPSEC_TUN_UDPESP_ENCAPTYPE_OTHER: ULONG = 0x20;
/// `IPSEC_TPTOVERTUN_UDPESP_ENCAPTYPE_OTHER`: transport over a UDP-encapsulated tunnel.
pub const IPSEC_TPTOVERTUN_UDPESP_ENCAPTYPE_OTHER: ULONG = 0x40;
/// `IPSEC_TPT_UDPESP_OVER_PURE_TUN_ENCAPTYPE_OTHER`: UDP-encapsulated transport over a tunnel.
pub const IPSEC_TPT_UDPESP_OVER_PURE_TUN_ENCAPTYPE_OTHER: ULONG = 0x80;

/// `NDIS_ENCAPSULATION_NOT_SUPPORTED`.
pub const NDIS_ENCAPSULATION_NOT_SUPPORTED: ULONG = 0x00;
/// `NDIS_ENCAPSULATION_NULL`.
pub const NDIS_ENCAPSULATION_NULL: ULONG = 0x01;
/// `NDIS_ENCAPSULATION_IEEE_802_3` (mandatory for Ethernet miniports).
pub const NDIS_ENCAPSULATION_IEEE_802_3: ULONG = 0x02;
/// `NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q`.
pub const NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q: ULONG = 0x04;
/// `NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB`.
pub const NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q_IN_OOB: ULONG = 0x08;
/// `NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED`.
pub const NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED: ULONG = 0x10;

/// `NDIS_TASK_OFFLOAD_VERSION`.
pub const NDIS_TASK_OFFLOAD_VERSION: ULONG = 1;
/// `TcpIpChecksumNdisTask` (`NDIS_TASK`).
pub const TcpIpChecksumNdisTask: NDIS_TASK = 0;
/// `IpSecNdisTask` (`NDIS_TASK`): the task buffer is an `NDIS_TASK_IPSEC`.
pub const IpSecNdisTask: NDIS_TASK = 1;
/// `TcpLargeSendNdisTask` (`NDIS_TASK`).
pub const TcpLargeSendNdisTask: NDIS_TASK = 2;
/// `MaxNdisTask` (`NDIS_TASK`).
pub const MaxNdisTask: NDIS_TASK = 3;
/// `UNSPECIFIED_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const UNSPECIFIED_Encapsulation: NDIS_ENCAPSULATION = 0;
/// `NULL_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const NULL_Encapsulation: NDIS_ENCAPSULATION = 1;
/// `IEEE_802_3_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const IEEE_802_3_Encapsulation: NDIS_ENCAPSULATION = 2;
/// `IEEE_802_5_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const IEEE_802_5_Encapsulation: NDIS_ENCAPSULATION = 3;
/// `LLC_SNAP_ROUTED_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const LLC_SNAP_ROUTED_Encapsulation: NDIS_ENCAPSULATION = 4;
/// `LLC_SNAP_BRIDGED_Encapsulation` (`NDIS_ENCAPSULATION`).
pub const LLC_SNAP_BRIDGED_Encapsulation: NDIS_ENCAPSULATION = 5;

/// `NDIS_NET_BUFFER_LIST_INFO` slot `TcpIpChecksumNetBufferListInfo`.
pub const TcpIpChecksumNetBufferListInfo: usize = 0;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `IPsecOffloadV1NetBufferListInfo`.
pub const IPsecOffloadV1NetBufferListInfo: usize = 1;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `IPsecOffloadV2NetBufferListInfo` (same slot as v1).
pub const IPsecOffloadV2NetBufferListInfo: usize = 1;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `TcpLargeSendNetBufferListInfo`.
pub const TcpLargeSendNetBufferListInfo: usize = 2;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `ClassificationHandleNetBufferListInfo`.
pub const ClassificationHandleNetBufferListInfo: usize = 3;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `Ieee8021QNetBufferListInfo`.
pub const Ieee8021QNetBufferListInfo: usize = 4;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `NetBufferListCancelId`.
pub const NetBufferListCancelId: usize = 5;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `MediaSpecificInformation`.
pub const MediaSpecificInformation: usize = 6;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `NetBufferListFrameType`.
pub const NetBufferListFrameType: usize = 7;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `NetBufferListHashValue`.
pub const NetBufferListHashValue: usize = 8;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `NetBufferListHashInfo`.
pub const NetBufferListHashInfo: usize = 9;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `WfpNetBufferListInfo`.
pub const WfpNetBufferListInfo: usize = 10;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `IPsecOffloadV2TunnelNetBufferListInfo`.
pub const IPsecOffloadV2TunnelNetBufferListInfo: usize = 11;
/// `NDIS_NET_BUFFER_LIST_INFO` slot `IPsecOffloadV2HeaderNetBufferListInfo`.
pub const IPsecOffloadV2HeaderNetBufferListInfo: usize = 12;

// ---------------------------------------------------------------------------------------------
// §4.7 v2 values.

/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_MD5`.
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_MD5: ULONG = 0x001;
/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1`.
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_1: ULONG = 0x002;
/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256`.
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_SHA_256: ULONG = 0x004;
/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128` (AES-GMAC-128 integrity).
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_128: ULONG = 0x008;
/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_192` (AES-GMAC-192 integrity).
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_192: ULONG = 0x010;
/// `IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_256` (AES-GMAC-256 integrity).
pub const IPSEC_OFFLOAD_V2_AUTHENTICATION_AES_GCM_256: ULONG = 0x020;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_NONE` (NULL encryption).
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_NONE: ULONG = 0x001;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_DES_CBC`.
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_DES_CBC: ULONG = 0x002;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_3_DES_CBC`.
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_3_DES_CBC: ULONG = 0x004;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128` (combined mode).
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_128: ULONG = 0x008;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_192` (combined mode).
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_192: ULONG = 0x010;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_256` (combined mode).
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_GCM_256: ULONG = 0x020;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_128`.
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_128: ULONG = 0x040;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_192`.
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_192: ULONG = 0x080;
/// `IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256`.
pub const IPSEC_OFFLOAD_V2_ENCRYPTION_AES_CBC_256: ULONG = 0x100;
/// `IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS`: capacity of `IPSEC_OFFLOAD_V2_ADD_SA.SecAssoc`.
pub const IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS: usize = 2;
/// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_NONE`.
pub const IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_NONE: ULONG = 0;
/// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT`.
pub const IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT: ULONG = 1;
/// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL`.
pub const IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL: ULONG = 2;
/// `IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL`.
pub const IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL: ULONG = 4;
/// `IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL`.
pub const IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL: ULONG = 8;
/// `IPSEC_OFFLOAD_V2_INBOUND` (`IPSEC_OFFLOAD_V2_ADD_SA.Flags`; clear = outbound).
pub const IPSEC_OFFLOAD_V2_INBOUND: ULONG = 0x01;
/// `IPSEC_OFFLOAD_V2_IPv6` (`IPSEC_OFFLOAD_V2_ADD_SA.Flags`; clear = IPv4 endpoints).
pub const IPSEC_OFFLOAD_V2_IPv6: ULONG = 0x10;
/// `IPSEC_OFFLOAD_V2_ESN_SA` (`IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION.Flags`).
pub const IPSEC_OFFLOAD_V2_ESN_SA: ULONG = 0x01;
/// `IPsecOffloadV2Ah` (`IPSEC_OFFLOAD_V2_OPERATION`).
pub const IPsecOffloadV2Ah: IPSEC_OFFLOAD_V2_OPERATION = 1;
/// `IPsecOffloadV2Esp` (`IPSEC_OFFLOAD_V2_OPERATION`).
pub const IPsecOffloadV2Esp: IPSEC_OFFLOAD_V2_OPERATION = 2;
/// `IPsecOffloadV2Max` (`IPSEC_OFFLOAD_V2_OPERATION`).
pub const IPsecOffloadV2Max: IPSEC_OFFLOAD_V2_OPERATION = 3;
/// `NDIS_IPSEC_OFFLOAD_V2_ADD_SA_REVISION_1`.
pub const NDIS_IPSEC_OFFLOAD_V2_ADD_SA_REVISION_1: UCHAR = 1;
/// `NDIS_IPSEC_OFFLOAD_V2_ADD_SA_EX_REVISION_1`.
pub const NDIS_IPSEC_OFFLOAD_V2_ADD_SA_EX_REVISION_1: UCHAR = 1;
/// `NDIS_IPSEC_OFFLOAD_V2_DELETE_SA_REVISION_1`.
pub const NDIS_IPSEC_OFFLOAD_V2_DELETE_SA_REVISION_1: UCHAR = 1;
/// `NDIS_IPSEC_OFFLOAD_V2_UPDATE_SA_REVISION_1`.
pub const NDIS_IPSEC_OFFLOAD_V2_UPDATE_SA_REVISION_1: UCHAR = 1;

// ---------------------------------------------------------------------------------------------
// Structures.

/// Asserts the size of a mirror and the offset of each listed field.
macro_rules! layout {
    ($t:ty, $size:expr, { $($f:ident @ $off:expr),* $(,)? }) => {
        const _: () = assert!(size_of::<$t>() == $size);
        $(const _: () = assert!(offset_of!($t, $f) == $off);)*
    };
}

/// `NDIS_OBJECT_HEADER` (§3.1): size 4, align 2.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_OBJECT_HEADER {
    /// `NDIS_OBJECT_TYPE_*`.
    pub Type: UCHAR,
    /// Structure revision.
    pub Revision: UCHAR,
    /// Size of the structure in bytes for this revision.
    pub Size: USHORT,
}
layout!(NDIS_OBJECT_HEADER, 4, { Type @ 0, Revision @ 1, Size @ 2 });

/// `OFFLOAD_ALGO_INFO` (§3.2): size 12.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_ALGO_INFO {
    /// `OFFLOAD_IPSEC_CONF_*` / `OFFLOAD_IPSEC_INTEGRITY_*` (or the emulator extension).
    pub algoIdentifier: ULONG,
    /// Key length in bytes.
    pub algoKeylen: ULONG,
    /// Rounds (v1 only; carried, not interpreted).
    pub algoRounds: ULONG,
}
layout!(OFFLOAD_ALGO_INFO, 12, { algoIdentifier @ 0, algoKeylen @ 4, algoRounds @ 8 });

/// `OFFLOAD_SECURITY_ASSOCIATION` (§3.3): size 44.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_SECURITY_ASSOCIATION {
    /// `AUTHENTICATE` (AH) or `ENCRYPT` (ESP).
    pub Operation: OFFLOAD_OPERATION_E,
    /// The SPI.
    pub SPI: SPI_TYPE,
    /// Integrity algorithm.
    pub IntegrityAlgo: OFFLOAD_ALGO_INFO,
    /// Confidentiality algorithm.
    pub ConfAlgo: OFFLOAD_ALGO_INFO,
    /// Reserved (must be zero).
    pub Reserved: OFFLOAD_ALGO_INFO,
}
layout!(OFFLOAD_SECURITY_ASSOCIATION, 44, {
    Operation @ 0, SPI @ 4, IntegrityAlgo @ 8, ConfAlgo @ 20, Reserved @ 32,
});

/// `OFFLOAD_IPSEC_ADD_SA` (§3.4): size 184, key bytes from offset 180
/// (`OID_TCP_TASK_IPSEC_ADD_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_IPSEC_ADD_SA {
    /// Source address selector.
    pub SrcAddr: IPAddr,
    /// Source mask.
    pub SrcMask: IPMask,
    /// Destination address selector.
    pub DestAddr: IPAddr,
    /// Destination mask.
    pub DestMask: IPMask,
    /// IP protocol selector (0 = any).
    pub Protocol: ULONG,
    /// Source port selector (network order; 0 = any).
    pub SrcPort: USHORT,
    /// Destination port selector (network order; 0 = any).
    pub DestPort: USHORT,
    /// Tunnel source (0 for transport SAs).
    pub SrcTunnelAddr: IPAddr,
    /// Tunnel destination (0 for transport SAs).
    pub DestTunnelAddr: IPAddr,
    /// `OFFLOAD_INBOUND_SA` or `OFFLOAD_OUTBOUND_SA`.
    pub Flags: USHORT,
    /// Number of used `SecAssoc` entries.
    pub NumSAs: i16,
    /// The SAs in processing order.
    pub SecAssoc: [OFFLOAD_SECURITY_ASSOCIATION; OFFLOAD_MAX_SAS],
    /// Written by the miniport.
    pub OffloadHandle: HANDLE,
    /// Length of the key material.
    pub KeyLen: ULONG,
    /// First byte of the key material plus 3 bytes of tail padding.
    pub KeyMat: [UCHAR; 4],
}
layout!(OFFLOAD_IPSEC_ADD_SA, 184, {
    SrcAddr @ 0, SrcMask @ 4, DestAddr @ 8, DestMask @ 12, Protocol @ 16, SrcPort @ 20,
    DestPort @ 22, SrcTunnelAddr @ 24, DestTunnelAddr @ 28, Flags @ 32, NumSAs @ 34,
    SecAssoc @ 36, OffloadHandle @ 168, KeyLen @ 176, KeyMat @ 180,
});

/// `OFFLOAD_IPSEC_DELETE_SA` (§3.5): size 8 (`OID_TCP_TASK_IPSEC_DELETE_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_IPSEC_DELETE_SA {
    /// The SA to delete.
    pub OffloadHandle: HANDLE,
}
layout!(OFFLOAD_IPSEC_DELETE_SA, 8, { OffloadHandle @ 0 });

/// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY` (§3.6): size 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY {
    /// `OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_IKE` or `_OTHER`.
    pub UdpEncapType: UDP_ENCAP_TYPE,
    /// Destination UDP port (network order).
    pub DstEncapPort: USHORT,
    /// Tail padding.
    pub _pad0: [u8; 2],
}
layout!(OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY, 8, { UdpEncapType @ 0, DstEncapPort @ 4, _pad0 @ 6 });

/// `OFFLOAD_IPSEC_ADD_UDPESP_SA` (§3.7): size 200, key bytes from offset 196
/// (`OID_TCP_TASK_IPSEC_ADD_UDPESP_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_IPSEC_ADD_UDPESP_SA {
    /// Source address selector.
    pub SrcAddr: IPAddr,
    /// Source mask.
    pub SrcMask: IPMask,
    /// Destination address selector.
    pub DstAddr: IPAddr,
    /// Destination mask.
    pub DstMask: IPMask,
    /// IP protocol selector (0 = any).
    pub Protocol: ULONG,
    /// Source port selector (network order; 0 = any).
    pub SrcPort: USHORT,
    /// Destination port selector (network order; 0 = any).
    pub DstPort: USHORT,
    /// Tunnel source (0 for transport SAs).
    pub SrcTunnelAddr: IPAddr,
    /// Tunnel destination (0 for transport SAs).
    pub DstTunnelAddr: IPAddr,
    /// `OFFLOAD_INBOUND_SA` or `OFFLOAD_OUTBOUND_SA`.
    pub Flags: USHORT,
    /// Number of used `SecAssoc` entries.
    pub NumSAs: i16,
    /// The SAs in processing order.
    pub SecAssoc: [OFFLOAD_SECURITY_ASSOCIATION; OFFLOAD_MAX_SAS],
    /// Written by the miniport.
    pub OffloadHandle: HANDLE,
    /// The UDP encapsulation parser entry.
    pub EncapTypeEntry: OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY,
    /// Handle of an existing parser entry (0 = NULL).
    pub EncapTypeEntryOffldHandle: HANDLE,
    /// Length of the key material.
    pub KeyLen: ULONG,
    /// First byte of the key material plus 3 bytes of tail padding.
    pub KeyMat: [UCHAR; 4],
}
layout!(OFFLOAD_IPSEC_ADD_UDPESP_SA, 200, {
    SrcAddr @ 0, SrcMask @ 4, DstAddr @ 8, DstMask @ 12, Protocol @ 16, SrcPort @ 20,
    DstPort @ 22, SrcTunnelAddr @ 24, DstTunnelAddr @ 28, Flags @ 32, NumSAs @ 34,
    SecAssoc @ 36, OffloadHandle @ 168, EncapTypeEntry @ 176, EncapTypeEntryOffldHandle @ 184,
    KeyLen @ 192, KeyMat @ 196,
});

/// `OFFLOAD_IPSEC_DELETE_UDPESP_SA` (§3.8): size 16 (`OID_TCP_TASK_IPSEC_DELETE_UDPESP_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct OFFLOAD_IPSEC_DELETE_UDPESP_SA {
    /// The SA to delete.
    pub OffloadHandle: HANDLE,
    /// The parser entry to delete too (0 = only the SA).
    pub EncapTypeEntryOffldHandle: HANDLE,
}
layout!(OFFLOAD_IPSEC_DELETE_UDPESP_SA, 16, { OffloadHandle @ 0, EncapTypeEntryOffldHandle @ 8 });

/// `NDIS_IPSEC_PACKET_INFO.Transmit` (§3.9).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_PACKET_INFO_Transmit {
    /// Outbound transport-mode SA.
    pub OffloadHandle: NDIS_HANDLE,
    /// Outbound tunnel SA (when tunnelled).
    pub NextOffloadHandle: NDIS_HANDLE,
}
layout!(NDIS_IPSEC_PACKET_INFO_Transmit, 16, { OffloadHandle @ 0, NextOffloadHandle @ 8 });

/// `NDIS_IPSEC_PACKET_INFO.Receive` (§3.9), padded to the union's 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_PACKET_INFO_Receive {
    /// Bitfield: bit 0 `SA_DELETE_REQ`, bit 1 `CRYPTO_DONE`, bit 2 `NEXT_CRYPTO_DONE`.
    pub Flags: ULONG,
    /// `CRYPTO_*`.
    pub CryptoStatus: ULONG,
    /// The rest of the union.
    pub _pad0: [u8; 8],
}
layout!(NDIS_IPSEC_PACKET_INFO_Receive, 16, { Flags @ 0, CryptoStatus @ 4, _pad0 @ 8 });

/// `NDIS_IPSEC_PACKET_INFO` (§3.9): NDIS 5 per-packet info, a union of
/// [`NDIS_IPSEC_PACKET_INFO_Transmit`] and [`NDIS_IPSEC_PACKET_INFO_Receive`]; size 16, align 8.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_PACKET_INFO {
    /// The union's bytes.
    pub Raw: [u8; 16],
}
layout!(NDIS_IPSEC_PACKET_INFO, 16, { Raw @ 0 });

impl NDIS_IPSEC_PACKET_INFO {
    /// The `Transmit` arm.
    pub fn transmit(&self) -> NDIS_IPSEC_PACKET_INFO_Transmit {
        bytemuck::cast(self.Raw)
    }
    /// The `Receive` arm.
    pub fn receive(&self) -> NDIS_IPSEC_PACKET_INFO_Receive {
        bytemuck::cast(self.Raw)
    }
    /// The union holding `Transmit`.
    pub fn from_transmit(t: NDIS_IPSEC_PACKET_INFO_Transmit) -> Self {
        Self {
            Raw: bytemuck::cast(t),
        }
    }
    /// The union holding `Receive`.
    pub fn from_receive(r: NDIS_IPSEC_PACKET_INFO_Receive) -> Self {
        Self {
            Raw: bytemuck::cast(r),
        }
    }
}

/// `NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO.Receive` (§3.10).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive {
    /// Bitfield: bit 0 `SaDeleteReq`, bit 1 `CryptoDone`, bit 2 `NextCryptoDone`.
    pub Flags: USHORT,
    /// `CRYPTO_*`.
    pub CryptoStatus: USHORT,
    /// The rest of the union.
    pub _pad0: [u8; 4],
}
layout!(NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive, 8, {
    Flags @ 0, CryptoStatus @ 2, _pad0 @ 4,
});

/// `NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO` (§3.10): NBL slot 1 in NDIS 6.0; a union of
/// `Transmit.OffloadHandle` and [`NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive`]; size 8.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO {
    /// The union's bytes.
    pub Raw: [u8; 8],
}
layout!(NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO, 8, { Raw @ 0 });

impl NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO {
    /// `Transmit.OffloadHandle`.
    pub fn transmit_offload_handle(&self) -> NDIS_HANDLE {
        u64::from_ne_bytes(self.Raw)
    }
    /// The `Receive` arm.
    pub fn receive(&self) -> NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive {
        bytemuck::cast(self.Raw)
    }
    /// The union holding `Transmit.OffloadHandle`.
    pub fn from_transmit(offload_handle: NDIS_HANDLE) -> Self {
        Self {
            Raw: offload_handle.to_ne_bytes(),
        }
    }
    /// The union holding `Receive`.
    pub fn from_receive(r: NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO_Receive) -> Self {
        Self {
            Raw: bytemuck::cast(r),
        }
    }
}

/// `NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO` (§3.15): NBL slot 1 in NDIS 6.1+; a union of
/// `Transmit.OffloadHandle` and a `Receive` ULONG bitfield (bit 0 `SaDeleteReq`, bit 1
/// `CryptoDone`, bit 2 `NextCryptoDone`, bits 16-31 `CryptoStatus`); size 8.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO {
    /// The union's bytes.
    pub Raw: [u8; 8],
}
layout!(NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO, 8, { Raw @ 0 });

impl NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO {
    /// `Transmit.OffloadHandle`.
    pub fn transmit_offload_handle(&self) -> NDIS_HANDLE {
        u64::from_ne_bytes(self.Raw)
    }
    /// The `Receive` bitfield word.
    pub fn receive(&self) -> ULONG {
        let [a, b, c, d, ..] = self.Raw;
        u32::from_ne_bytes([a, b, c, d])
    }
    /// The union holding `Transmit.OffloadHandle`.
    pub fn from_transmit(offload_handle: NDIS_HANDLE) -> Self {
        Self {
            Raw: offload_handle.to_ne_bytes(),
        }
    }
    /// The union holding the `Receive` word (the upper 4 bytes are zero).
    pub fn from_receive(word: ULONG) -> Self {
        let [a, b, c, d] = word.to_ne_bytes();
        Self {
            Raw: [a, b, c, d, 0, 0, 0, 0],
        }
    }
}

/// `NDIS_IPSEC_OFFLOAD_V2_TUNNEL_NET_BUFFER_LIST_INFO` (§3.15): NBL slot 11; size 8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V2_TUNNEL_NET_BUFFER_LIST_INFO {
    /// `Transmit.TunnelHandle`: the outbound tunnel SA.
    pub TunnelHandle: NDIS_HANDLE,
}
layout!(NDIS_IPSEC_OFFLOAD_V2_TUNNEL_NET_BUFFER_LIST_INFO, 8, { TunnelHandle @ 0 });

/// `NDIS_IPSEC_OFFLOAD_V2_HEADER_NET_BUFFER_LIST_INFO` (§3.15): NBL slot 12; size 4.
///
/// Transmit: bits 0-7 `NextHeader`, 8-15 `PadLength`, 16-23 `AhHeaderOffset`, 24-31
/// `EspHeaderOffset`. Receive: bits 0-7 `NextHeader`, 8-15 `PadLength`, bit 16 `HeaderInfoSet`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V2_HEADER_NET_BUFFER_LIST_INFO {
    /// The bitfield word.
    pub Value: ULONG,
}
layout!(NDIS_IPSEC_OFFLOAD_V2_HEADER_NET_BUFFER_LIST_INFO, 4, { Value @ 0 });

/// `NDIS_TASK_IPSEC.Supported` (§3.11).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_TASK_IPSEC_Supported {
    /// AH and ESP in one packet.
    pub AH_ESP_COMBINED: ULONG,
    /// Transport over tunnel.
    pub TRANSPORT_TUNNEL_COMBINED: ULONG,
    /// IPv4 options.
    pub V4_OPTIONS: ULONG,
    /// Reserved.
    pub RESERVED: ULONG,
}
layout!(NDIS_TASK_IPSEC_Supported, 16, {
    AH_ESP_COMBINED @ 0, TRANSPORT_TUNNEL_COMBINED @ 4, V4_OPTIONS @ 8, RESERVED @ 12,
});

/// `NDIS_TASK_IPSEC` (§3.11): the NDIS 5 `IpSecNdisTask` task buffer; size 24.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_TASK_IPSEC {
    /// General capabilities.
    pub Supported: NDIS_TASK_IPSEC_Supported,
    /// Bits: 0 MD5, 1 SHA_1, 2 Transport, 3 Tunnel, 4 Send, 5 Receive.
    pub V4AH: ULONG,
    /// Bits: 0 DES, 1 RESERVED, 2 TRIPLE_DES, 3 NULL_ESP, 4 Transport, 5 Tunnel, 6 Send,
    /// 7 Receive.
    pub V4ESP: ULONG,
}
layout!(NDIS_TASK_IPSEC, 24, { Supported @ 0, V4AH @ 16, V4ESP @ 20 });

/// `NDIS_ENCAPSULATION_FORMAT` (§3.11): size 12.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_ENCAPSULATION_FORMAT {
    /// `NDIS_ENCAPSULATION`.
    pub Encapsulation: NDIS_ENCAPSULATION,
    /// Bit 0: `FixedHeaderSize`.
    pub Flags: ULONG,
    /// Encapsulation header size.
    pub EncapsulationHeaderSize: ULONG,
}
layout!(NDIS_ENCAPSULATION_FORMAT, 12, {
    Encapsulation @ 0, Flags @ 4, EncapsulationHeaderSize @ 8,
});

/// `NDIS_TASK_OFFLOAD_HEADER` (§3.11): size 28; `OffsetFirstTask` is relative to the start of
/// the header (0 = no task).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_TASK_OFFLOAD_HEADER {
    /// `NDIS_TASK_OFFLOAD_VERSION`.
    pub Version: ULONG,
    /// `sizeof(NDIS_TASK_OFFLOAD_HEADER)`.
    pub Size: ULONG,
    /// Reserved.
    pub Reserved: ULONG,
    /// Offset of the first `NDIS_TASK_OFFLOAD` from the start of this header.
    pub OffsetFirstTask: ULONG,
    /// The encapsulation the tasks apply to.
    pub EncapsulationFormat: NDIS_ENCAPSULATION_FORMAT,
}
layout!(NDIS_TASK_OFFLOAD_HEADER, 28, {
    Version @ 0, Size @ 4, Reserved @ 8, OffsetFirstTask @ 12, EncapsulationFormat @ 16,
});

/// `NDIS_TASK_OFFLOAD` (§3.11): size 24; the task buffer starts at offset 20.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_TASK_OFFLOAD {
    /// `NDIS_TASK_OFFLOAD_VERSION`.
    pub Version: ULONG,
    /// `sizeof(NDIS_TASK_OFFLOAD)`.
    pub Size: ULONG,
    /// `NDIS_TASK`.
    pub Task: NDIS_TASK,
    /// Offset of the next entry from the start of this one (0 = last).
    pub OffsetNextTask: ULONG,
    /// Length of the task buffer.
    pub TaskBufferLength: ULONG,
    /// First byte of the task buffer plus 3 bytes of tail padding.
    pub TaskBuffer: [UCHAR; 4],
}
layout!(NDIS_TASK_OFFLOAD, 24, {
    Version @ 0, Size @ 4, Task @ 8, OffsetNextTask @ 12, TaskBufferLength @ 16, TaskBuffer @ 20,
});

/// `NDIS_IPSEC_OFFLOAD_V1.Supported` (§3.12).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V1_Supported {
    /// `NDIS_ENCAPSULATION_*` flags.
    pub Encapsulation: ULONG,
    /// AH and ESP in one packet.
    pub AhEspCombined: ULONG,
    /// Transport over tunnel.
    pub TransportTunnelCombined: ULONG,
    /// IPv4 options.
    pub IPv4Options: ULONG,
    /// `IPSEC_*_UDPESP_ENCAPTYPE_*` bits.
    pub Flags: ULONG,
}
layout!(NDIS_IPSEC_OFFLOAD_V1_Supported, 20, {
    Encapsulation @ 0, AhEspCombined @ 4, TransportTunnelCombined @ 8, IPv4Options @ 12,
    Flags @ 16,
});

/// `NDIS_IPSEC_OFFLOAD_V1` (§3.12): size 28.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V1 {
    /// General capabilities.
    pub Supported: NDIS_IPSEC_OFFLOAD_V1_Supported,
    /// 2-bit fields: Md5 0-1, Sha_1 2-3, Transport 4-5, Tunnel 6-7, Send 8-9, Receive 10-11.
    pub IPv4AH: ULONG,
    /// 2-bit fields: Des 0-1, Reserved 2-3, TripleDes 4-5, NullEsp 6-7, Transport 8-9,
    /// Tunnel 10-11, Send 12-13, Receive 14-15.
    pub IPv4ESP: ULONG,
}
layout!(NDIS_IPSEC_OFFLOAD_V1, 28, { Supported @ 0, IPv4AH @ 20, IPv4ESP @ 24 });

/// `NDIS_IPSEC_OFFLOAD_V2` (§3.13): size 32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_IPSEC_OFFLOAD_V2 {
    /// `NDIS_ENCAPSULATION_*` flags.
    pub Encapsulation: ULONG,
    /// IPv6 supported.
    pub IPv6Supported: BOOLEAN,
    /// IPv4 options.
    pub IPv4Options: BOOLEAN,
    /// IPv6 non-IPsec extension headers.
    pub IPv6NonIPsecExtensionHeaders: BOOLEAN,
    /// AH.
    pub Ah: BOOLEAN,
    /// ESP.
    pub Esp: BOOLEAN,
    /// AH and ESP in one packet.
    pub AhEspCombined: BOOLEAN,
    /// Transport mode.
    pub Transport: BOOLEAN,
    /// Tunnel mode (must be TRUE for the NIC to be used at all).
    pub Tunnel: BOOLEAN,
    /// Transport over tunnel.
    pub TransportTunnelCombined: BOOLEAN,
    /// LSO for IPsec traffic.
    pub LsoSupported: BOOLEAN,
    /// Extended sequence numbers.
    pub ExtendedSequenceNumbers: BOOLEAN,
    /// Padding.
    pub _pad0: u8,
    /// `IPSEC_OFFLOAD_V2_*UDP_ESP_ENCAPSULATION*` mask.
    pub UdpEsp: ULONG,
    /// `IPSEC_OFFLOAD_V2_AUTHENTICATION_*` mask.
    pub AuthenticationAlgorithms: ULONG,
    /// `IPSEC_OFFLOAD_V2_ENCRYPTION_*` mask.
    pub EncryptionAlgorithms: ULONG,
    /// SA bundles the NIC can hold.
    pub SaOffloadCapacity: ULONG,
}
layout!(NDIS_IPSEC_OFFLOAD_V2, 32, {
    Encapsulation @ 0, IPv6Supported @ 4, IPv4Options @ 5, IPv6NonIPsecExtensionHeaders @ 6,
    Ah @ 7, Esp @ 8, AhEspCombined @ 9, Transport @ 10, Tunnel @ 11,
    TransportTunnelCombined @ 12, LsoSupported @ 13, ExtendedSequenceNumbers @ 14, _pad0 @ 15,
    UdpEsp @ 16, AuthenticationAlgorithms @ 20, EncryptionAlgorithms @ 24,
    SaOffloadCapacity @ 28,
});

/// `NDIS_OFFLOAD` (§3.14), revision 3: size 156. Sub-structures other than the IPsec ones are
/// opaque bytes of the right size at the right offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_OFFLOAD {
    /// Type `NDIS_OBJECT_TYPE_OFFLOAD`, revision 1-3.
    pub Header: NDIS_OBJECT_HEADER,
    /// `NDIS_TCP_IP_CHECKSUM_OFFLOAD` (opaque).
    pub Checksum: [u8; 32],
    /// `NDIS_TCP_LARGE_SEND_OFFLOAD_V1` (opaque).
    pub LsoV1: [u8; 16],
    /// IPsec offload v1 capabilities.
    pub IPsecV1: NDIS_IPSEC_OFFLOAD_V1,
    /// `NDIS_TCP_LARGE_SEND_OFFLOAD_V2` (opaque).
    pub LsoV2: [u8; 28],
    /// `NDIS_OFFLOAD_FLAGS_*` / `IPSEC_OFFLOAD_V2_AND_*_CHECKSUM_COEXISTENCE`.
    pub Flags: ULONG,
    /// IPsec offload v2 capabilities (revision 2+).
    pub IPsecV2: NDIS_IPSEC_OFFLOAD_V2,
    /// `NDIS_TCP_RECV_SEG_COALESCE_OFFLOAD` (opaque, revision 3).
    pub Rsc: [u8; 2],
    /// Padding.
    pub _pad0: [u8; 2],
    /// `NDIS_ENCAPSULATED_PACKET_TASK_OFFLOAD` (opaque, revision 3).
    pub EncapsulatedPacketTaskOffloadGre: [u8; 8],
}
layout!(NDIS_OFFLOAD, 156, {
    Header @ 0, Checksum @ 4, LsoV1 @ 36, IPsecV1 @ 52, LsoV2 @ 80, Flags @ 108, IPsecV2 @ 112,
    Rsc @ 144, _pad0 @ 146, EncapsulatedPacketTaskOffloadGre @ 148,
});

/// `NDIS_OFFLOAD_PARAMETERS` (§3.14): size 28 (`OID_TCP_OFFLOAD_PARAMETERS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NDIS_OFFLOAD_PARAMETERS {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1-3.
    pub Header: NDIS_OBJECT_HEADER,
    /// IPv4 checksum setting.
    pub IPv4Checksum: UCHAR,
    /// TCP/IPv4 checksum setting.
    pub TCPIPv4Checksum: UCHAR,
    /// UDP/IPv4 checksum setting.
    pub UDPIPv4Checksum: UCHAR,
    /// TCP/IPv6 checksum setting.
    pub TCPIPv6Checksum: UCHAR,
    /// UDP/IPv6 checksum setting.
    pub UDPIPv6Checksum: UCHAR,
    /// LSO v1 setting.
    pub LsoV1: UCHAR,
    /// `NDIS_OFFLOAD_PARAMETERS_IPSECV1_*`.
    pub IPsecV1: UCHAR,
    /// LSO v2 IPv4 setting.
    pub LsoV2IPv4: UCHAR,
    /// LSO v2 IPv6 setting.
    pub LsoV2IPv6: UCHAR,
    /// TCP chimney IPv4 setting.
    pub TcpConnectionIPv4: UCHAR,
    /// TCP chimney IPv6 setting.
    pub TcpConnectionIPv6: UCHAR,
    /// Padding.
    pub _pad0: u8,
    /// Flags.
    pub Flags: ULONG,
    /// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_*` (revision 2+).
    pub IPsecV2: UCHAR,
    /// `NDIS_OFFLOAD_PARAMETERS_IPSECV2_*` for IPv4 (revision 2+).
    pub IPsecV2IPv4: UCHAR,
    /// RSC IPv4 setting (revision 3).
    pub RscIPv4: UCHAR,
    /// RSC IPv6 setting (revision 3).
    pub RscIPv6: UCHAR,
    /// Encapsulated packet task offload setting (revision 3).
    pub EncapsulatedPacketTaskOffload: UCHAR,
    /// Encapsulation types (revision 3).
    pub EncapsulationTypes: UCHAR,
    /// Tail padding.
    pub _pad1: [u8; 2],
}
layout!(NDIS_OFFLOAD_PARAMETERS, 28, {
    Header @ 0, IPv4Checksum @ 4, TCPIPv4Checksum @ 5, UDPIPv4Checksum @ 6, TCPIPv6Checksum @ 7,
    UDPIPv6Checksum @ 8, LsoV1 @ 9, IPsecV1 @ 10, LsoV2IPv4 @ 11, LsoV2IPv6 @ 12,
    TcpConnectionIPv4 @ 13, TcpConnectionIPv6 @ 14, _pad0 @ 15, Flags @ 16, IPsecV2 @ 20,
    IPsecV2IPv4 @ 21, RscIPv4 @ 22, RscIPv6 @ 23, EncapsulatedPacketTaskOffload @ 24,
    EncapsulationTypes @ 25, _pad1 @ 26,
});

/// `IPSEC_OFFLOAD_V2_ALGORITHM_INFO` (§3.15): size 16.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_ALGORITHM_INFO {
    /// A single `IPSEC_OFFLOAD_V2_AUTHENTICATION_*` / `_ENCRYPTION_*` bit (0 = none).
    pub Identifier: ULONG,
    /// Key length in bytes.
    pub KeyLength: ULONG,
    /// Offset of the key inside the key data.
    pub KeyOffsetBytes: ULONG,
    /// ICV length for AES-GCM/GMAC.
    pub AdditionalInfo: ULONG,
}
layout!(IPSEC_OFFLOAD_V2_ALGORITHM_INFO, 16, {
    Identifier @ 0, KeyLength @ 4, KeyOffsetBytes @ 8, AdditionalInfo @ 12,
});

/// `IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION` (§3.15): size 48.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION {
    /// `IPSEC_OFFLOAD_V2_ESN_SA`.
    pub Flags: ULONG,
    /// `IPsecOffloadV2Ah` or `IPsecOffloadV2Esp`.
    pub Operation: IPSEC_OFFLOAD_V2_OPERATION,
    /// The SPI.
    pub Spi: ULONG,
    /// Authentication algorithm.
    pub AuthenticationAlgorithm: IPSEC_OFFLOAD_V2_ALGORITHM_INFO,
    /// Encryption algorithm.
    pub EncryptionAlgorithm: IPSEC_OFFLOAD_V2_ALGORITHM_INFO,
    /// ESN high-order 32 bits.
    pub SequenceNumberHighOrder: ULONG,
}
layout!(IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION, 48, {
    Flags @ 0, Operation @ 4, Spi @ 8, AuthenticationAlgorithm @ 12, EncryptionAlgorithm @ 28,
    SequenceNumberHighOrder @ 44,
});

/// `IPv4Endpoints` arm of the v2 endpoint union.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_IPv4Endpoints {
    /// Source address (network order in memory).
    pub SrcAddr: IPAddr,
    /// Destination address (network order in memory).
    pub DestAddr: IPAddr,
}
layout!(IPSEC_OFFLOAD_V2_IPv4Endpoints, 8, { SrcAddr @ 0, DestAddr @ 4 });

/// `IPv6Endpoints` arm of the v2 endpoint union.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_IPv6Endpoints {
    /// Source address.
    pub SrcAddr: [UCHAR; 16],
    /// Destination address.
    pub DestAddr: [UCHAR; 16],
}
layout!(IPSEC_OFFLOAD_V2_IPv6Endpoints, 32, { SrcAddr @ 0, DestAddr @ 16 });

/// Accessors shared by the two structs that embed the endpoint union.
macro_rules! endpoint_accessors {
    ($t:ty) => {
        impl $t {
            /// The `IPv4Endpoints` arm.
            pub fn ipv4_endpoints(&self) -> IPSEC_OFFLOAD_V2_IPv4Endpoints {
                let [a, b, c, d, e, f, g, h, ..] = self.Endpoints;
                IPSEC_OFFLOAD_V2_IPv4Endpoints {
                    SrcAddr: u32::from_ne_bytes([a, b, c, d]),
                    DestAddr: u32::from_ne_bytes([e, f, g, h]),
                }
            }
            /// The `IPv6Endpoints` arm.
            pub fn ipv6_endpoints(&self) -> IPSEC_OFFLOAD_V2_IPv6Endpoints {
                bytemuck::cast(self.Endpoints)
            }
            /// Store the `IPv4Endpoints` arm (the rest of the union is zeroed).
            pub fn set_ipv4_endpoints(&mut self, e: IPSEC_OFFLOAD_V2_IPv4Endpoints) {
                self.Endpoints = [0; 32];
                let src = e.SrcAddr.to_ne_bytes();
                let dst = e.DestAddr.to_ne_bytes();
                for (d, s) in self.Endpoints.iter_mut().zip(src.iter().chain(dst.iter())) {
                    *d = *s;
                }
            }
            /// Store the `IPv6Endpoints` arm.
            pub fn set_ipv6_endpoints(&mut self, e: IPSEC_OFFLOAD_V2_IPv6Endpoints) {
                self.Endpoints = bytemuck::cast(e);
            }
        }
    };
}

/// `IPSEC_OFFLOAD_V2_ADD_SA` (§3.15): size 176, key bytes from offset 168
/// (`OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_ADD_SA {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1.
    pub Header: NDIS_OBJECT_HEADER,
    /// Padding.
    pub _pad0: [u8; 4],
    /// Next record (emulator: byte offset in the information buffer, 0 = last).
    pub Next: u64,
    /// 1 or 2 used `SecAssoc` entries.
    pub NumExtHdrs: ULONG,
    /// `IPSEC_OFFLOAD_V2_INBOUND`, `IPSEC_OFFLOAD_V2_IPv6`.
    pub Flags: ULONG,
    /// Union of `IPv4Endpoints` / `IPv6Endpoints`.
    pub Endpoints: [u8; 32],
    /// Written by the miniport.
    pub OffloadHandle: NDIS_HANDLE,
    /// `IPSEC_OFFLOAD_V2_*UDP_ESP_ENCAPSULATION*`.
    pub UdpEspEncapsulation: ULONG,
    /// The SAs in processing order.
    pub SecAssoc: [IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION; IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS],
    /// Length of the key data.
    pub KeyLength: ULONG,
    /// First byte of the key data plus 7 bytes of tail padding.
    pub KeyData: [UCHAR; 8],
}
layout!(IPSEC_OFFLOAD_V2_ADD_SA, 176, {
    Header @ 0, _pad0 @ 4, Next @ 8, NumExtHdrs @ 16, Flags @ 20, Endpoints @ 24,
    OffloadHandle @ 56, UdpEspEncapsulation @ 64, SecAssoc @ 68, KeyLength @ 164, KeyData @ 168,
});
endpoint_accessors!(IPSEC_OFFLOAD_V2_ADD_SA);

/// `IPSEC_OFFLOAD_V2_ADD_SA_EX` (§3.15): size 176 (`OID_TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_ADD_SA_EX {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1.
    pub Header: NDIS_OBJECT_HEADER,
    /// 1 or 2 used `SecAssoc` entries.
    pub NumExtHdrs: ULONG,
    /// `IPSEC_OFFLOAD_V2_INBOUND`, `IPSEC_OFFLOAD_V2_IPv6`.
    pub Flags: ULONG,
    /// Union of `IPv4Endpoints` / `IPv6Endpoints`.
    pub Endpoints: [u8; 32],
    /// Padding.
    pub _pad0: [u8; 4],
    /// Written by the miniport.
    pub OffloadHandle: NDIS_HANDLE,
    /// `IPSEC_OFFLOAD_V2_*UDP_ESP_ENCAPSULATION*`.
    pub UdpEspEncapsulation: ULONG,
    /// The SAs in processing order.
    pub SecAssoc: [IPSEC_OFFLOAD_V2_SECURITY_ASSOCIATION; IPSEC_OFFLOAD_V2_MAX_EXTENSION_HEADERS],
    /// Length of the key data.
    pub KeyLength: ULONG,
    /// Emulator: offset of the key data from the start of the information buffer.
    pub KeyOffset: ULONG,
    /// Hyper-V switch port.
    pub SourceSwitchPortId: NDIS_SWITCH_PORT_ID,
    /// VLAN id.
    pub VlanId: USHORT,
    /// Tail padding.
    pub _pad1: [u8; 6],
}
layout!(IPSEC_OFFLOAD_V2_ADD_SA_EX, 176, {
    Header @ 0, NumExtHdrs @ 4, Flags @ 8, Endpoints @ 12, _pad0 @ 44, OffloadHandle @ 48,
    UdpEspEncapsulation @ 56, SecAssoc @ 60, KeyLength @ 156, KeyOffset @ 160,
    SourceSwitchPortId @ 164, VlanId @ 168, _pad1 @ 170,
});
endpoint_accessors!(IPSEC_OFFLOAD_V2_ADD_SA_EX);

/// `IPSEC_OFFLOAD_V2_DELETE_SA` (§3.15): size 24 (`OID_TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_DELETE_SA {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1.
    pub Header: NDIS_OBJECT_HEADER,
    /// Padding.
    pub _pad0: [u8; 4],
    /// Next record (emulator: byte offset in the information buffer, 0 = last).
    pub Next: u64,
    /// The SA to delete.
    pub OffloadHandle: NDIS_HANDLE,
}
layout!(IPSEC_OFFLOAD_V2_DELETE_SA, 24, { Header @ 0, _pad0 @ 4, Next @ 8, OffloadHandle @ 16 });

/// `IPSEC_OFFLOAD_V2_UPDATE_SA` (§3.15): size 32 (`OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct IPSEC_OFFLOAD_V2_UPDATE_SA {
    /// Type `NDIS_OBJECT_TYPE_DEFAULT`, revision 1.
    pub Header: NDIS_OBJECT_HEADER,
    /// Padding.
    pub _pad0: [u8; 4],
    /// The SA bundle to update.
    pub OffloadHandle: NDIS_HANDLE,
    /// Which SA of the bundle.
    pub Operation: IPSEC_OFFLOAD_V2_OPERATION,
    /// Its SPI.
    pub Spi: ULONG,
    /// New ESN high-order 32 bits.
    pub SequenceNumberHighOrder: ULONG,
    /// Tail padding.
    pub _pad1: [u8; 4],
}
layout!(IPSEC_OFFLOAD_V2_UPDATE_SA, 32, {
    Header @ 0, _pad0 @ 4, OffloadHandle @ 8, Operation @ 16, Spi @ 20,
    SequenceNumberHighOrder @ 24, _pad1 @ 28,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignments_match_windows_x64() {
        assert_eq!(core::mem::align_of::<NDIS_OBJECT_HEADER>(), 2);
        assert_eq!(core::mem::align_of::<OFFLOAD_IPSEC_ADD_SA>(), 8);
        assert_eq!(
            core::mem::align_of::<OFFLOAD_IPSEC_UDPESP_ENCAPTYPE_ENTRY>(),
            4
        );
        assert_eq!(core::mem::align_of::<NDIS_IPSEC_PACKET_INFO>(), 8);
        assert_eq!(core::mem::align_of::<NDIS_TASK_IPSEC>(), 4);
        assert_eq!(core::mem::align_of::<NDIS_OFFLOAD>(), 4);
        assert_eq!(core::mem::align_of::<IPSEC_OFFLOAD_V2_ADD_SA>(), 8);
        assert_eq!(core::mem::align_of::<IPSEC_OFFLOAD_V2_UPDATE_SA>(), 8);
    }

    #[test]
    fn packet_info_union_arms_share_bytes() {
        let t = NDIS_IPSEC_PACKET_INFO_Transmit {
            OffloadHandle: 0x0102,
            NextOffloadHandle: 7,
        };
        let u = NDIS_IPSEC_PACKET_INFO::from_transmit(t);
        assert_eq!(u.transmit(), t);
        assert_eq!(u.receive().Flags, 0x0102);
        let v1 = NDIS_IPSEC_OFFLOAD_V1_NET_BUFFER_LIST_INFO::from_transmit(0x0003_0005);
        assert_eq!(v1.receive().Flags, 5);
        assert_eq!(v1.receive().CryptoStatus, 3);
        let v2 = NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO::from_receive(0x0006_0002);
        assert_eq!(v2.transmit_offload_handle(), 0x0006_0002);
        assert_eq!(v2.receive(), 0x0006_0002);
    }

    #[test]
    fn endpoint_union_arms() {
        let mut a = IPSEC_OFFLOAD_V2_ADD_SA::default();
        a.set_ipv4_endpoints(IPSEC_OFFLOAD_V2_IPv4Endpoints {
            SrcAddr: u32::from_ne_bytes([192, 0, 2, 1]),
            DestAddr: u32::from_ne_bytes([198, 51, 100, 2]),
        });
        let bytes = bytemuck::bytes_of(&a);
        assert_eq!(bytes[24..32], [192, 0, 2, 1, 198, 51, 100, 2]);
        assert_eq!(
            a.ipv6_endpoints().SrcAddr[..8],
            [192, 0, 2, 1, 198, 51, 100, 2]
        );
        let mut e = IPSEC_OFFLOAD_V2_ADD_SA_EX::default();
        let mut v6 = IPSEC_OFFLOAD_V2_IPv6Endpoints::default();
        v6.DestAddr[0] = 0x20;
        e.set_ipv6_endpoints(v6);
        assert_eq!(bytemuck::bytes_of(&e)[28], 0x20);
        assert_eq!(e.ipv6_endpoints(), v6);
    }

    #[test]
    fn key_mat_sits_at_180_in_the_byte_image() {
        let a = OFFLOAD_IPSEC_ADD_SA {
            KeyLen: 0x11223344,
            KeyMat: [0xAA, 0, 0, 0],
            ..Default::default()
        };
        let b = bytemuck::bytes_of(&a);
        assert_eq!(b.len(), 184);
        assert_eq!(b[176..180], 0x11223344u32.to_ne_bytes());
        assert_eq!(b[180], 0xAA);
    }
}
