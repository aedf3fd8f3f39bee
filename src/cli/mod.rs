//! The `ipsec-nic` command-line tool's library part: SA config files ([`config`]), the
//! Wireshark export ([`export`]), a classic-pcap reader/writer ([`pcap`]) and offline
//! ESP/AH processing of captures ([`process`]), and the real-traffic demo, `run` and `stats`
//! ([`live`]). The binary (`src/bin/ipsec-nic.rs`) is a thin
//! clap front end over these.

pub mod config;
pub mod demo;
pub mod export;
pub mod install;
pub mod live;
pub mod pcap;
pub mod process;
