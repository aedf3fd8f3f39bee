//! The real-traffic parts of the `ipsec-nic` tool (Linux only, set-up needs CAP_NET_ADMIN):
//!
//! - [`demo`]: `ipsec-nic demo` — two network namespaces whose Linux stacks sit on top of two
//!   emulated hosts (TAP devices joined to the hosts' stacks by the [`bridge`] adapter), ping
//!   in clear and iperf3 (or the built-in [`load`] generator) as ESP through the emulated
//!   NICs, a capture ([`capture`]) and the SA config for Wireshark;
//! - [`run`]: `ipsec-nic run --config host.toml` — one emulated host on a TAP wire port,
//!   optionally with a Linux host side, writing live counters ([`stats`]) every second;
//! - [`netns`]: namespace guards and `ip` helpers.
//!
//! The wall clock and the OS are used here only (the core crates take time as a parameter).

pub mod bridge;
pub mod capture;
pub mod demo;
pub mod load;
pub mod netns;
pub mod run;
pub mod stats;

/// The host part of `addr` for a `host:port` string (IPv6 gets brackets).
pub fn sock_host(addr: &str) -> String {
    if addr.contains(':') && !addr.starts_with('[') {
        format!("[{addr}]")
    } else {
        addr.to_owned()
    }
}
