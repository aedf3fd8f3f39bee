//! The virtual NDIS miniport: OID dispatch, capability reporting, translation of
//! `OFFLOAD_IPSEC_ADD_SA` into NIC SA programming, and the send/receive glue between the
//! protocol (through the `oid` contract) and the NIC model (`nicsim`).
//!
//! It does **not** build ESP/AH headers or keep replay state: that is the transport's job.
#![forbid(unsafe_code)]
