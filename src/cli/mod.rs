//! The `ipsec-nic` command-line tool's library part: SA config files ([`config`]), the
//! Wireshark export ([`export`]), a classic-pcap reader/writer ([`pcap`]) and offline
//! ESP/AH processing of captures ([`process`]). The binary (`src/bin/ipsec-nic.rs`) is a thin
//! clap front end over these.

pub mod config;
pub mod demo;
pub mod export;
pub mod live;
pub mod install;
pub mod pcap;
pub mod process;
