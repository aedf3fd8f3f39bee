//! Statistics in the shapes of the Windows IPsec statistics structures (`ipsectypes.h`,
//! field names checked against learn.microsoft.com, "IPSEC_AGGREGATE_DROP_PACKET_STATISTICS1
//! structure (ipsectypes.h)", "IPSEC_STATISTICS1 structure", "IPSEC_STATISTICS0 structure"),
//! plus the outbound and data-path counters Windows keeps elsewhere.
//!
//! Decisions: counters the structures declare as `UINT32` saturate at `u32::MAX`; byte counts
//! (`UINT64`) count the protected payload, i.e. the cleartext IP packet (transport mode: the
//! original packet; tunnel mode: the inner packet). `pendingSaNegotiations` is always 0 (no
//! IKE). An "SA" in the aggregate counters is one installed bundle of one direction.
//! The traffic statistics use the `IPSEC_TRAFFIC_STATISTICS0` shape (no
//! `IPSEC_TRAFFIC_STATISTICS1` extension fields).

/// `IPSEC_AGGREGATE_SA_STATISTICS0`.
#[doc(alias = "IPSEC_AGGREGATE_SA_STATISTICS0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecAggregateSaStatistics0 {
    /// `activeSas`: installed bundles (each direction counts once).
    pub active_sas: u32,
    /// `pendingSaNegotiations`: always 0 (no IKE in this emulator).
    pub pending_sa_negotiations: u32,
    /// `totalSasAdded`.
    pub total_sas_added: u32,
    /// `totalSasDeleted`.
    pub total_sas_deleted: u32,
    /// `successfulRekeys`: outbound bundles added while an older complete context served the
    /// same filter and addresses.
    pub successful_rekeys: u32,
    /// `activeTunnels`: installed tunnel-mode bundles.
    pub active_tunnels: u32,
    /// `offloadedSas`: bundles currently offloaded to the NIC.
    pub offloaded_sas: u32,
}

/// `IPSEC_TRAFFIC_STATISTICS0` (one direction).
#[doc(alias = "IPSEC_TRAFFIC_STATISTICS0")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecTrafficStatistics0 {
    /// `encryptedByteCount`: bytes protected by ESP with a cipher.
    pub encrypted_byte_count: u64,
    /// `authenticatedAHByteCount`.
    pub authenticated_ah_byte_count: u64,
    /// `authenticatedESPByteCount`.
    pub authenticated_esp_byte_count: u64,
    /// `transportByteCount`.
    pub transport_byte_count: u64,
    /// `tunnelByteCount`.
    pub tunnel_byte_count: u64,
    /// `offloadByteCount`: bytes whose crypto the NIC did.
    pub offload_byte_count: u64,
}

/// `IPSEC_AGGREGATE_DROP_PACKET_STATISTICS1`.
#[doc(alias = "IPSEC_AGGREGATE_DROP_PACKET_STATISTICS1")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecAggregateDropPacketStatistics1 {
    /// `invalidSpisOnInbound`: no inbound SA with that SPI.
    pub invalid_spis_on_inbound: u32,
    /// `decryptionFailuresOnInbound`: bad padding / syntax (software) or a NIC syntax,
    /// protocol or generic failure status.
    pub decryption_failures_on_inbound: u32,
    /// `authenticationFailuresOnInbound`: ICV mismatch (software or NIC status).
    pub authentication_failures_on_inbound: u32,
    /// `udpEspValidationFailuresOnInbound`: a UDP-encapsulated ESP packet whose ports do not
    /// match its SA.
    pub udp_esp_validation_failures_on_inbound: u32,
    /// `replayCheckFailuresOnInbound`.
    pub replay_check_failures_on_inbound: u32,
    /// `invalidClearTextInbound`: cleartext a filter requires to be protected.
    pub invalid_clear_text_inbound: u32,
    /// `saNotInitializedOnInbound`: the SA's context exists but its inbound bundle is not (or
    /// no longer) usable.
    pub sa_not_initialized_on_inbound: u32,
    /// `receiveOverIncorrectSaInbound`: inner addresses outside the SA's traffic selectors.
    pub receive_over_incorrect_sa_inbound: u32,
    /// `secureReceivesNotMatchingFilters`: protected packet whose inbound classification
    /// names another IPsec filter than its SA context's.
    pub secure_receives_not_matching_filters: u32,
    /// `totalDropPacketsInbound`: every inbound drop, including the non-IPsec ones below.
    pub total_drop_packets_inbound: u32,
}

/// `IPSEC_STATISTICS1` restricted to the three structures this stack fills (the ESP/AH
/// per-protocol drop structures are not kept).
#[doc(alias = "IPSEC_STATISTICS1")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpsecStatistics1 {
    /// `aggregateSaStatistics`.
    pub aggregate_sa_statistics: IpsecAggregateSaStatistics0,
    /// `aggregateDropPacketStatistics`.
    pub aggregate_drop_packet_statistics: IpsecAggregateDropPacketStatistics1,
    /// `inboundTrafficStatistics`.
    pub inbound_traffic_statistics: IpsecTrafficStatistics0,
    /// `outboundTrafficStatistics`.
    pub outbound_traffic_statistics: IpsecTrafficStatistics0,
}

/// Outbound drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OutboundDrops {
    /// Classified BLOCK at the outbound transport layer.
    pub blocked: u64,
    /// The IPsec callout applied but no complete SA context / outbound SA exists yet.
    pub no_sa: u64,
    /// The SA's sequence number space is exhausted (the SA was expired).
    pub seq_overflow: u64,
    /// No neighbor (MAC) for the next hop.
    pub no_neighbor: u64,
    /// Framing or software crypto failed (e.g. too large, unsupported packet).
    pub frame_errors: u64,
    /// The miniport completed the send with a failure status.
    pub send_failures: u64,
}

/// Non-IPsec inbound drops and receive-side facts (each drop also counts in
/// `totalDropPacketsInbound`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InboundCounters {
    /// Not Ethernet/IP, truncated, bad IPv4 header checksum, not for this host.
    pub malformed: u64,
    /// Of `malformed`: IPv4 header checksum failures (RFC 1122 §3.2.1.2).
    pub bad_ipv4_checksum: u64,
    /// Classified BLOCK at the inbound transport layer.
    pub blocked: u64,
    /// No free buffer to queue a delivery.
    pub no_buffer: u64,
    /// UDP checksum wrong.
    pub bad_checksum: u64,
    /// NIC failures by `CryptoStatus` value (index = status, 0..=7; larger values in 7).
    pub nic_crypto_failures: [u64; 8],
    /// Frames the NIC had already decrypted and verified (`CryptoDone`, success).
    pub nic_processed: u64,
    /// Frames processed in software.
    pub software_processed: u64,
    /// Packets delivered to an endpoint or the external stack.
    pub delivered: u64,
    /// Echo requests answered by the stack.
    pub echo_replies_sent: u64,
    /// NAT-keepalives (one `0xFF` byte, RFC 3948 §2.3) received on a NAT-T port: consumed,
    /// neither delivered nor dropped.
    pub nat_keepalives: u64,
    /// IKE messages (behind the non-ESP marker, RFC 3948 §2.2) received on a NAT-T port:
    /// consumed and not delivered, because this emulator keys SAs manually and runs no IKE.
    pub ike_messages: u64,
}

/// Offload management counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OffloadCounters {
    /// ADD_SA / ADD_UDPESP_SA that succeeded.
    pub add_sa_ok: u64,
    /// ADD_SA refused with `NDIS_STATUS_RESOURCES`.
    pub add_sa_resources: u64,
    /// ADD_SA refused with `NDIS_STATUS_NOT_SUPPORTED`.
    pub add_sa_not_supported: u64,
    /// ADD_SA failed with another status.
    pub add_sa_failed: u64,
    /// DELETE_SA / DELETE_UDPESP_SA issued.
    pub delete_sa: u64,
    /// Frames received with `SaDeleteReq`.
    pub sa_delete_requests: u64,
    /// Bundles kept in software because the NIC does not advertise what they need.
    pub not_advertised: u64,
    /// Of `add_sa_ok`: bundles offloaded with IPsec v2 ADD_SA_EX (IPv6 or ESN).
    pub add_sa_v2_ok: u64,
    /// `OID_TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA` (new ESN high bits) that succeeded.
    pub update_sa_ok: u64,
    /// UPDATE_SA that failed (that packet's crypto ran in software; retried on the next).
    pub update_sa_failed: u64,
}

/// Everything [`crate::HostStack::statistics`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackStatistics {
    /// The Windows-shaped IPsec statistics.
    pub ipsec: IpsecStatistics1,
    /// Outbound drops.
    pub outbound: OutboundDrops,
    /// Inbound counters beyond the IPsec drop structure.
    pub inbound: InboundCounters,
    /// Offload management.
    pub offload: OffloadCounters,
    /// Packets sent protected (software or offload).
    pub protected_sent: u64,
    /// Packets sent in clear.
    pub clear_sent: u64,
    /// Send completions that came back without their buffer (it moved to the peer over an
    /// in-memory wire) and were given a fresh one.
    pub husk_completions_refilled: u64,
}

pub(crate) fn inc32(c: &mut u32) {
    *c = c.saturating_add(1);
}
