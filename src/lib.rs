//! `ipsec-nic`: an emulator of an NDIS-style network adapter with IPsec task offload.
//!
//! The root package wires the member crates together: [`Host`]s (a transport bound to a
//! miniport driving one emulated NIC on a wire port), the [`TwoHosts`] topology (two hosts
//! over an in-memory wire with seeded faults and a pcap capture, on a virtual clock), and the
//! reusable [`manual_sa`] scenario (ndis-wfp-abi.md §8.1) that protects traffic between them.
//!
//! No wall clock: time advances only through [`TwoHosts::step`] / [`TwoHosts::drive`] /
//! [`TwoHosts::advance`] (or the `now` given to [`Host::poll`]), so every run with the same
//! seeds is reproducible frame for frame.
//!
//! # Pieces
//! - [`Host`] ([`HostConfig`]): `VirtualMiniport::initialize` on a wire port (stepping mode),
//!   `HostStack` over it (its own seeded WFP engine), the stack bound as the miniport's
//!   protocol. [`Host::poll`] runs the miniport (NIC transmit/receive, send completions,
//!   receive indications) then the stack (completions, received frames, SA events, lifetimes).
//! - [`TwoHosts`] ([`TopologyConfig`]): A and B on a `MemWire` pair (or any two ports:
//!   [`TwoHosts::with_wires`], e.g. TAP devices), each direction through a seeded
//!   `FaultInjector` ([`TwoHosts::faults_a_to_b`] / [`TwoHosts::faults_b_to_a`] report what
//!   it did), A's port optionally captured ([`Capture`], [`CaptureBuffer::frames`],
//!   [`pcap_frames`]). [`TwoHosts::step`] advances the clock by one tick and polls A then B;
//!   [`TwoHosts::drive`] steps until three consecutive steps move no frame and nothing is held
//!   in the wire, or the step bound is hit.
//! - [`manual_sa`] ([`ManualSaOptions`], [`Algorithms`], [`SaMode`]): the WFP call sequence of
//!   the Manual SA scenario on both hosts; returns both sides' engine, SA context, SPI and
//!   filter ids ([`ManualSa`]).
//!
//! # Example
//! ```
//! use std::net::SocketAddr;
//! use ipsec_nic::{manual_sa, ManualSaOptions, TwoHosts, A_V4, B_V4};
//!
//! let mut net = TwoHosts::standard().unwrap();
//! let sa = manual_sa(&mut net, &ManualSaOptions::default()).unwrap();
//! net.drive().unwrap(); // the stacks offload the new SAs to their NICs
//! let now = net.now();
//! let (src, dst) = (SocketAddr::new(A_V4.into(), 5000), SocketAddr::new(B_V4.into(), 6000));
//! net.a.stack_mut().send_udp(now, src, dst, b"hello").unwrap();
//! net.drive().unwrap();
//! let mut buf = [0u8; 64];
//! let d = net.b.stack_mut().recv_udp(&mut buf).unwrap();
//! assert_eq!((&buf[..d.len], d.secure), (&b"hello"[..], true));
//! // The capture at A's port shows ESP (IP protocol 50), and NIC A did the encryption.
//! let frames = net.capture().unwrap().frames();
//! assert!(frames.iter().any(|f| f.len() > 23 && f[23] == 50));
//! assert_eq!(net.a.nic_stats().tx_protected, 1);
//! assert!(net.a.stack().sa_offload_state(sa.a.context).is_some());
//! ```
#![forbid(unsafe_code)]

use core::net::{Ipv4Addr, Ipv6Addr};

mod host;
mod manual_sa;
mod topology;

pub use host::{Host, HostConfig, HostError};
pub use manual_sa::{
    Algorithms, ManualSa, ManualSaError, ManualSaOptions, ManualSaSide, SaMode, manual_sa, rekey,
};
pub use topology::{
    Capture, CaptureBuffer, SharedWire, Topology, TopologyConfig, TwoHosts, pcap_frames,
};

/// Host A's IPv4 address in the standard topology.
pub const A_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Host B's IPv4 address in the standard topology.
pub const B_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Host A's IPv6 address in the standard topology.
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Host B's IPv6 address in the standard topology.
pub const B_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Host A's MAC address in the standard topology.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Host B's MAC address in the standard topology.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub mod cli;
