//! `ipsec-nic`: an emulator of an NDIS-style network adapter with IPsec task offload.
//!
//! The root package wires the member crates together: hosts (a transport bound to a miniport
//! driving one emulated NIC on a wire port), two-host topologies, and the `ipsec-nic` CLI.
#![forbid(unsafe_code)]
