//! Live counters of an emulated host as JSON: what `ipsec-nic run` writes every second to
//! its stats file (atomically, via a rename) and `ipsec-nic stats` reads and prints, and
//! what the demo's summary reports per host. Never contains key bytes: only SPIs,
//! algorithm names and counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Host;

/// One SA offloaded to a NIC, with its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaCounters {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// SPI, `0x` hex.
    pub spi: String,
    /// `esp` or `ah`.
    pub protocol: String,
    /// `transport` or `tunnel`.
    pub mode: String,
    /// Algorithm names (`AesGcm128`, `AesCbc128+HmacSha256_128`, ...).
    pub algorithm: String,
    /// Packets processed by the NIC with this SA.
    pub packets: u64,
    /// Bytes processed.
    pub bytes: u64,
    /// Other non-zero per-SA counters (failures by reason).
    pub errors: BTreeMap<String, u64>,
}

/// The counters of one host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostCounters {
    /// Host name.
    pub name: String,
    /// Seconds since the host started (stats file) or the traffic phase (demo).
    pub uptime_s: f64,
    /// SAs the NIC holds.
    pub sas: Vec<SaCounters>,
    /// Every NIC counter.
    pub nic: BTreeMap<String, u64>,
    /// Host stack traffic counters.
    pub stack: BTreeMap<String, u64>,
    /// Drops by reason (`outbound.*`, `inbound.*`, `ipsec.*` = the IPSEC_AGGREGATE_DROP
    /// statistics); every reason, zero or not.
    pub drops: BTreeMap<String, u64>,
    /// Counters of the host-side adapter or other extras (may be empty).
    #[serde(default)]
    pub extra: BTreeMap<String, u64>,
}

fn algo_name(e: ipsec::Encryption, i: ipsec::Integrity) -> String {
    match (e, i) {
        (ipsec::Encryption::None, i) => format!("{i:?}"),
        (e, ipsec::Integrity::None) => format!("{e:?}"),
        (e, i) => format!("{e:?}+{i:?}"),
    }
}

/// Collect `host`'s counters.
pub fn host_counters(host: &Host, uptime_s: f64) -> HostCounters {
    let mp = host.miniport();
    let mut sas = Vec::new();
    for h in mp.sa_handles() {
        let (Some(info), Some(st)) = (mp.sa_info(h), mp.sa_stats(h)) else {
            continue;
        };
        let errors: BTreeMap<String, u64> = st
            .fields()
            .filter(|&(n, v)| v > 0 && n != "packets" && n != "bytes")
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        for s in &info.sas {
            sas.push(SaCounters {
                direction: format!("{:?}", info.direction).to_ascii_lowercase(),
                spi: format!("{:#010x}", s.spi),
                protocol: format!("{:?}", s.protocol).to_ascii_lowercase(),
                mode: format!("{:?}", s.mode).to_ascii_lowercase(),
                algorithm: algo_name(s.encryption, s.integrity),
                packets: st.packets,
                bytes: st.bytes,
                errors: errors.clone(),
            });
        }
    }
    let nic = host
        .nic_stats()
        .fields()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    let s = host.stack().statistics();
    let agg = s.ipsec.aggregate_sa_statistics;
    let stack: BTreeMap<String, u64> = [
        ("protected_sent", s.protected_sent),
        ("clear_sent", s.clear_sent),
        ("delivered", s.inbound.delivered),
        ("nic_processed", s.inbound.nic_processed),
        ("software_processed", s.inbound.software_processed),
        ("echo_replies_sent", s.inbound.echo_replies_sent),
        ("nat_keepalives", s.inbound.nat_keepalives),
        ("ike_messages", s.inbound.ike_messages),
        ("active_sas", u64::from(agg.active_sas)),
        ("offloaded_sas", u64::from(agg.offloaded_sas)),
        ("add_sa_ok", s.offload.add_sa_ok),
        (
            "add_sa_refused",
            s.offload.add_sa_resources + s.offload.add_sa_not_supported + s.offload.add_sa_failed,
        ),
        ("delete_sa", s.offload.delete_sa),
        (
            "offload_bytes_out",
            s.ipsec.outbound_traffic_statistics.offload_byte_count,
        ),
        (
            "offload_bytes_in",
            s.ipsec.inbound_traffic_statistics.offload_byte_count,
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    let o = s.outbound;
    let i = s.inbound;
    let d = s.ipsec.aggregate_drop_packet_statistics;
    let mut drops: BTreeMap<String, u64> = [
        ("outbound.blocked", o.blocked),
        ("outbound.no_sa", o.no_sa),
        ("outbound.seq_overflow", o.seq_overflow),
        ("outbound.no_neighbor", o.no_neighbor),
        ("outbound.frame_errors", o.frame_errors),
        ("outbound.send_failures", o.send_failures),
        ("inbound.malformed", i.malformed),
        ("inbound.bad_ipv4_checksum", i.bad_ipv4_checksum),
        ("inbound.blocked", i.blocked),
        ("inbound.no_buffer", i.no_buffer),
        ("inbound.bad_udp_checksum", i.bad_checksum),
        (
            "ipsec.invalid_spis_on_inbound",
            u64::from(d.invalid_spis_on_inbound),
        ),
        (
            "ipsec.decryption_failures_on_inbound",
            u64::from(d.decryption_failures_on_inbound),
        ),
        (
            "ipsec.authentication_failures_on_inbound",
            u64::from(d.authentication_failures_on_inbound),
        ),
        (
            "ipsec.udp_esp_validation_failures_on_inbound",
            u64::from(d.udp_esp_validation_failures_on_inbound),
        ),
        (
            "ipsec.replay_check_failures_on_inbound",
            u64::from(d.replay_check_failures_on_inbound),
        ),
        (
            "ipsec.invalid_clear_text_inbound",
            u64::from(d.invalid_clear_text_inbound),
        ),
        (
            "ipsec.sa_not_initialized_on_inbound",
            u64::from(d.sa_not_initialized_on_inbound),
        ),
        (
            "ipsec.receive_over_incorrect_sa_inbound",
            u64::from(d.receive_over_incorrect_sa_inbound),
        ),
        (
            "ipsec.secure_receives_not_matching_filters",
            u64::from(d.secure_receives_not_matching_filters),
        ),
        (
            "ipsec.total_drop_packets_inbound",
            u64::from(d.total_drop_packets_inbound),
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    for (idx, v) in i.nic_crypto_failures.iter().enumerate() {
        drops.insert(format!("inbound.nic_crypto_status_{idx}"), *v);
    }
    HostCounters {
        name: host.name().to_owned(),
        uptime_s,
        sas,
        nic,
        stack,
        drops,
        extra: BTreeMap::new(),
    }
}

/// Render `h` as a table. Zero drop reasons and zero NIC counters are left out.
pub fn render(h: &HostCounters) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "host {} (up {:.1} s)", h.name, h.uptime_s);
    if h.sas.is_empty() {
        let _ = writeln!(r, "  SAs offloaded to the NIC: none");
    } else {
        let _ = writeln!(r, "  SAs offloaded to the NIC:");
        let _ = writeln!(
            r,
            "    {:<9} {:<10} {:<5} {:<9} {:<28} {:>12} {:>14}",
            "direction", "spi", "proto", "mode", "algorithm", "packets", "bytes"
        );
        for s in &h.sas {
            let _ = writeln!(
                r,
                "    {:<9} {:<10} {:<5} {:<9} {:<28} {:>12} {:>14}",
                s.direction, s.spi, s.protocol, s.mode, s.algorithm, s.packets, s.bytes
            );
            for (n, v) in &s.errors {
                let _ = writeln!(r, "      {n}: {v}");
            }
        }
    }
    let _ = write!(r, "  NIC:");
    let mut any = false;
    for (n, v) in h.nic.iter().filter(|(_, v)| **v > 0) {
        let _ = write!(r, " {n}={v}");
        any = true;
    }
    if !any {
        let _ = write!(r, " (all zero)");
    }
    let _ = writeln!(r);
    let _ = write!(r, "  stack:");
    for (n, v) in &h.stack {
        let _ = write!(r, " {n}={v}");
    }
    let _ = writeln!(r);
    let drops: Vec<_> = h.drops.iter().filter(|(_, v)| **v > 0).collect();
    if drops.is_empty() {
        let _ = writeln!(r, "  drops: none");
    } else {
        let _ = writeln!(r, "  drops by reason:");
        for (n, v) in drops {
            let _ = writeln!(r, "    {n}: {v}");
        }
    }
    if !h.extra.is_empty() {
        let _ = write!(r, "  host side:");
        for (n, v) in &h.extra {
            let _ = write!(r, " {n}={v}");
        }
        let _ = writeln!(r);
    }
    r
}

/// The default stats file of host `name`: `$XDG_RUNTIME_DIR/ipsec-nic-<name>.json`, or under
/// `/tmp` without that variable.
pub fn default_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(format!("ipsec-nic-{name}.json"))
}

/// Write `h` to `path` atomically (a temporary file in the same directory, then a rename):
/// a reader sees the old or the new counters, never half a file.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_atomic(path: &Path, h: &HostCounters) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(h).map_err(|e| format!("stats: {e}"))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &json).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Read a stats file.
///
/// # Errors
/// A message naming the file.
pub fn read(path: &Path) -> Result<HostCounters, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a stats file: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{ManualSaOptions, TwoHosts, manual_sa};
    use core::net::SocketAddr;

    #[test]
    fn counters_of_a_protected_exchange_round_trip_through_a_file() {
        let mut net = TwoHosts::standard().unwrap();
        manual_sa(&mut net, &ManualSaOptions::default()).unwrap();
        net.drive().unwrap();
        let (a, b) = (crate::A_V4.into(), crate::B_V4.into());
        for _ in 0..3 {
            let now = net.now();
            net.a
                .stack_mut()
                .send_udp(now, SocketAddr::new(a, 1), SocketAddr::new(b, 2), b"x")
                .unwrap();
        }
        net.drive().unwrap();
        let h = host_counters(&net.a, 1.5);
        assert_eq!(h.name, "A");
        let out: Vec<_> = h.sas.iter().filter(|s| s.direction == "outbound").collect();
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].packets, out[0].algorithm.as_str()),
            (3, "AesGcm128")
        );
        assert_eq!(h.nic["tx_protected"], 3);
        assert_eq!(h.stack["protected_sent"], 3);
        assert!(h.drops.values().all(|v| *v == 0), "{:?}", h.drops);
        let dir = std::env::temp_dir().join(format!("ipsec-nic-stats-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        write_atomic(&p, &h).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back, h);
        let text = render(&back);
        assert!(text.contains("host A"), "{text}");
        assert!(text.contains("outbound"), "{text}");
        assert!(text.contains("drops: none"), "{text}");
        std::fs::write(&p, b"{").unwrap();
        assert!(read(&p).unwrap_err().contains("not a stats file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_path_names_the_host() {
        let p = default_path("hostA");
        assert!(p.to_string_lossy().ends_with("ipsec-nic-hostA.json"));
    }
}
