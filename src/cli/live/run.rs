//! `ipsec-nic run --config host.toml`: one emulated host on a TAP wire port, until stopped.
//!
//! The host config is an SA config with a `[host]` section ([`crate::cli::config::HostSection`]).
//! The NIC's port is the TAP `wire_tap` (created, or attached to an existing persistent one;
//! IPv6 is disabled on it and the link brought up). The SAs are installed through the host's
//! WFP engine ([`crate::cli::install::install`]). With a host side, Linux traffic enters the
//! emulated host through a TAP: `host_tap` (the user addresses Linux's side of it) or a TAP the
//! tool creates in the existing namespace `namespace`, addressed with the host's addresses,
//! MTU 1400 (room for the ESP overhead on a 1500-byte wire), IPv6 off unless an IPv6 address
//! is configured, and a permanent neighbor entry per configured neighbor (ARP is answered
//! anyway). The loop runs until `stop` (SIGINT/SIGTERM) or the time limit, and rewrites the
//! stats file every second ([`super::stats::write_atomic`]).

use core::time::Duration;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nicsim::wire::tap::TapWire;

use super::bridge::{BridgeStats, HostSide};
use super::netns;
use super::stats::{self, HostCounters};
use crate::cli::config::{self, HostSection, HostSide as HostSideConfig};
use crate::{Host, HostConfig};

/// Options of [`run`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The host config file.
    pub config: PathBuf,
    /// Stop after this long (`None`: until `stop`).
    pub seconds: Option<f64>,
    /// Stats file (`None`: [`stats::default_path`] of the host's name).
    pub stats_file: Option<PathBuf>,
}

/// MTU of a host-side TAP the tool creates in a namespace.
pub const HOST_SIDE_MTU: &str = "1400";

fn read_mac(dev: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{dev}/address")).ok()?;
    netns::parse_mac(s.trim())
}

/// The MAC of a TAP the tool creates for the host side: the host's MAC with another
/// locally administered first octet.
fn host_side_mac(mac: [u8; 6]) -> [u8; 6] {
    let mut m = mac;
    m[0] = (m[0] | 0x02) & 0xfe ^ 0x04;
    if m == mac {
        m[5] ^= 0x80;
    }
    m
}

fn bridge_extra(b: Option<BridgeStats>, running: bool, contexts: usize) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    m.insert("running".to_owned(), u64::from(running));
    m.insert("sa_contexts".to_owned(), contexts as u64);
    if let Some(b) = b {
        for (n, v) in [
            ("linux_to_stack", b.to_stack),
            ("stack_refused", b.stack_refused),
            ("ignored_from_linux", b.ignored),
            ("arp_replies", b.arp_replies),
            ("stack_to_linux", b.to_linux),
            ("tap_errors", b.tap_errors),
            ("port_errors", b.port_errors),
        ] {
            m.insert(n.to_owned(), v);
        }
    }
    m
}

/// Build the host, set up the TAPs, install the SAs and loop. `ready` is called once
/// everything is in place (with a one-line description). Returns the final counters.
///
/// # Errors
/// A message naming the file/section/field for config errors, or the failing step.
pub fn run(
    o: &RunOptions,
    stop: &Arc<AtomicBool>,
    mut ready: impl FnMut(&str),
) -> Result<HostCounters, String> {
    let (file, host) = config::load_host(&o.config).map_err(|e| e.to_string())?;
    let h: HostSection = host.ok_or_else(|| {
        format!(
            "{}: no [host] section (ipsec-nic run needs one: name, mac, addresses, wire_tap, ...)",
            o.config.display()
        )
    })?;
    let replay_window = match h.replay_window {
        Some(w) => w,
        None => crate::cli::install::host_replay_window(&file)
            .map_err(|e| format!("{}: {e}", o.config.display()))?,
    };
    let stats_path = o
        .stats_file
        .clone()
        .unwrap_or_else(|| stats::default_path(&h.name));

    // The wire port.
    let wire = TapWire::open(&h.wire_tap).map_err(|e| format!("wire_tap {}: {e}", h.wire_tap))?;
    let _ = std::process::Command::new("sysctl")
        .args([
            "-q",
            "-w",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", h.wire_tap),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    wire.set_link_up()
        .map_err(|e| format!("wire_tap {}: {e}", h.wire_tap))?;

    // The host side.
    let mut side = match &h.host_side {
        HostSideConfig::None => None,
        HostSideConfig::Tap(name) => {
            let tap = TapWire::open(name).map_err(|e| format!("host_tap {name}: {e}"))?;
            tap.set_link_up()
                .map_err(|e| format!("host_tap {name}: {e}"))?;
            let linux = read_mac(name).ok_or_else(|| format!("host_tap {name}: no MAC address"))?;
            Some(HostSide::new(tap, linux, h.mac))
        }
        HostSideConfig::Namespace(ns) => {
            let dev = format!("ipsh{}", std::process::id());
            let tap = TapWire::open(&dev).map_err(|e| format!("namespace {ns}: TAP {dev}: {e}"))?;
            let linux = host_side_mac(h.mac);
            setup_namespace_side(ns, &dev, linux, &h)
                .map_err(|e| format!("namespace {ns}: {e}"))?;
            Some(HostSide::new(tap, linux, h.mac))
        }
    };

    let mut cfg = HostConfig::new(&h.name, h.mac, h.addresses.iter().map(|p| p.addr).collect());
    cfg.neighbors = h.neighbors.clone();
    cfg.provider = h.provider;
    cfg.offload = h.offload;
    cfg.nic_capacity = h.nic_capacity;
    cfg.replay_window = replay_window;
    cfg.buffers = 1024;
    let mut host = Host::new(&cfg, wire).map_err(|e| format!("host {}: {e}", h.name))?;
    let start = Instant::now();
    let opts = crate::cli::install::InstallOptions {
        clear_icmp: h.clear_icmp,
        ..Default::default()
    };
    let installed = crate::cli::install::install_with(&mut host, &file, &opts)
        .map_err(|e| format!("{}: {e}", o.config.display()))?;
    let contexts = installed.contexts.len();
    if side.is_some() {
        host.stack_mut().set_external(true);
    }
    let snapshot = |host: &Host, side: &Option<HostSide<TapWire>>, running: bool| {
        let mut c = stats::host_counters(host, start.elapsed().as_secs_f64());
        c.extra = bridge_extra(side.as_ref().map(HostSide::stats), running, contexts);
        c
    };
    stats::write_atomic(&stats_path, &snapshot(&host, &side, true))?;
    ready(&format!(
        "host {} running: wire TAP {}, host side {}, {} SA context(s) installed, stats in {}",
        h.name,
        h.wire_tap,
        match &h.host_side {
            HostSideConfig::None => "none".to_owned(),
            HostSideConfig::Tap(t) => format!("TAP {t}"),
            HostSideConfig::Namespace(n) => format!("namespace {n}"),
        },
        contexts,
        stats_path.display()
    ));

    let deadline = o
        .seconds
        .map(|s| start + Duration::from_secs_f64(s.max(0.0)));
    let mut last_write = Instant::now();
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        let now = start.elapsed();
        let mut moved = 0;
        if let Some(s) = side.as_mut() {
            moved += s.ingress(now, host.stack_mut()).unwrap_or(0);
        }
        moved += host.poll(now);
        if let Some(s) = side.as_mut() {
            moved += s.egress(now, host.stack_mut()).unwrap_or(0);
        }
        if last_write.elapsed() >= Duration::from_secs(1) {
            last_write = Instant::now();
            if let Err(e) = stats::write_atomic(&stats_path, &snapshot(&host, &side, true)) {
                tracing::warn!("{e}");
            }
        }
        if moved == 0 {
            idle = idle.saturating_add(1);
            std::thread::sleep(Duration::from_micros(if idle > 200 { 1000 } else { 50 }));
        } else {
            idle = 0;
        }
    }
    let last = snapshot(&host, &side, false);
    stats::write_atomic(&stats_path, &last)?;
    Ok(last)
}

fn setup_namespace_side(
    ns: &str,
    dev: &str,
    mac: [u8; 6],
    h: &HostSection,
) -> Result<(), netns::SetupError> {
    netns::ip(&["link", "set", "dev", dev, "netns", ns])?;
    let n = |args: &[&str]| {
        let mut v = vec!["-n", ns];
        v.extend_from_slice(args);
        netns::ip(&v)
    };
    n(&[
        "link",
        "set",
        "dev",
        dev,
        "address",
        &netns::mac_string(mac),
    ])?;
    n(&["link", "set", "dev", dev, "mtu", HOST_SIDE_MTU])?;
    if h.addresses.iter().all(|p| p.addr.is_ipv4()) {
        netns::disable_ipv6(ns, dev);
    }
    for p in &h.addresses {
        let a = p.to_string();
        if p.addr.is_ipv6() {
            n(&["addr", "add", &a, "dev", dev, "nodad"])?;
        } else {
            n(&["addr", "add", &a, "dev", dev])?;
        }
    }
    n(&["link", "set", "dev", dev, "up"])?;
    let own = netns::mac_string(h.mac);
    for (ip, _) in &h.neighbors {
        n(&[
            "neigh",
            "replace",
            &ip.to_string(),
            "lladdr",
            &own,
            "dev",
            dev,
            "nud",
            "permanent",
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_side_mac_is_unicast_local_and_differs() {
        for m in [
            [2u8, 0, 0, 0, 0, 1],
            [6, 1, 2, 3, 4, 5],
            [0xfe, 0, 0, 0, 0, 0],
        ] {
            let s = host_side_mac(m);
            assert_ne!(s, m);
            assert_eq!(s[0] & 1, 0, "{s:?}");
            assert_eq!(s[0] & 2, 2, "{s:?}");
        }
    }

    #[test]
    fn extra_counters_say_whether_the_host_runs() {
        let e = bridge_extra(None, true, 2);
        assert_eq!((e["running"], e["sa_contexts"]), (1, 2));
        assert!(!e.contains_key("linux_to_stack"));
        let e = bridge_extra(
            Some(BridgeStats {
                to_stack: 5,
                ..BridgeStats::default()
            }),
            false,
            1,
        );
        assert_eq!((e["running"], e["linux_to_stack"]), (0, 5));
    }
}
