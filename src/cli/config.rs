//! SA configuration files (TOML) for the `ipsec-nic` command-line tool.
//!
//! # Format
//! A file holds any number of `[[sa]]` tables, one per SA (one direction, one protocol):
//!
//! ```toml
//! [[sa]]
//! spi = 0x1001              # integer, 256..=0xffff_ffff
//! direction = "outbound"    # "outbound" | "inbound"
//! protocol = "esp"          # "esp" | "ah"
//! mode = "transport"        # "transport" | "tunnel"
//! local = "192.0.2.1"       # selector: this host's address or prefix (IPv4 or IPv6)
//! remote = "192.0.2.2"      # selector: the peer's address or prefix
//! tunnel_local = "203.0.113.1"   # tunnel mode only: outer addresses
//! tunnel_remote = "203.0.113.2"
//! encryption = "aes-gcm-128"     # aes-gcm-128|192|256, aes-cbc-128|192|256, null, none
//! integrity = "none"             # hmac-sha256-128, hmac-sha1-96, aes-gmac-128|192|256, none
//! encryption_key = "00112233..." # hex; for GCM/GMAC the AES key followed by the 4-byte salt
//! integrity_key = ""             # hex
//! esn = false
//! sequence = 1                   # next sequence number to send (64-bit with ESN)
//! replay_window = 64             # inbound anti-replay window, 32..=65536
//! udp_encap = { local_port = 4500, remote_port = 4500 }   # optional, NAT-T (ESP only)
//! comment = "lab SA 1"           # optional, ignored
//! ```
//!
//! Defaults: `mode = "transport"`, `integrity = "none"`, `encryption = "none"`, empty keys,
//! `esn = false`, `sequence = 1`, `replay_window = 64`. Selectors are an address
//! (`192.0.2.1`, a /32 or /128) or a prefix (`192.0.2.0/24`, `2001:db8::/32`). An outbound SA
//! applies to packets whose source matches `local` and destination matches `remote`; an
//! inbound SA to packets whose destination matches `local` (the NIC matches SPI + destination).
//!
//! A host config for `ipsec-nic run` is the same file plus one `[host]` section
//! ([`HostSection`], [`parse_host`], [`load_host`]); commands that only need SAs ignore it
//! (but refuse a malformed one).
//!
//! Every error names the file, the SA (index and SPI) and the field, e.g.
//! `sas.toml: sa[2] (spi 0x1003): encryption_key: expected 20 bytes for aes-gcm-128 (16-byte
//! key + 4-byte salt), got 16`. Key bytes never appear in messages or logs (`ipsec::Key`'s
//! `Debug` redacts them).

use core::fmt;
use core::net::IpAddr;
use std::path::Path;

use ipsec::{Encryption, Integrity, Key, Mode, Protocol, SaParams, TunnelEndpoints, UdpEncap};
use serde::Deserialize;

/// Most SAs one file may hold.
pub const MAX_SAS: usize = 4096;
/// Largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Direction of an SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applied to packets this host sends.
    Outbound,
    /// Applied to packets this host receives.
    Inbound,
}

/// An address prefix (selector).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// Parse `addr` or `addr/len`.
    ///
    /// # Errors
    /// A message describing what is wrong.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("not an IP address or prefix: {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| format!("prefix length must be 0..={max}: {s:?}"))?,
        };
        Ok(Prefix { addr, len })
    }

    /// Whether `ip` lies in the prefix (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(p) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(p) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// The single address of a host prefix (/32, /128), else `None`.
    pub fn host(&self) -> Option<IpAddr> {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        (self.len == full).then_some(self.addr)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One validated SA of a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaConfig {
    /// Index in the file (`sa[i]`).
    pub index: usize,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The SA itself (validated by [`SaParams::validate`]).
    pub params: SaParams,
    /// Selector: this host's side.
    pub local: Prefix,
    /// Selector: the peer's side.
    pub remote: Prefix,
    /// Next sequence number to send (outbound).
    pub sequence: u64,
    /// Anti-replay window (inbound).
    pub replay_window: u32,
}

impl SaConfig {
    /// Whether this outbound SA applies to a packet from `src` to `dst`.
    pub fn matches_outbound(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.direction == Direction::Outbound
            && self.local.contains(src)
            && self.remote.contains(dst)
    }
}

/// A whole validated config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaFile {
    /// The SAs in file order.
    pub sas: Vec<SaConfig>,
}

/// A config error: file, SA and field named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sa: Vec<toml::Value>,
    /// The `[host]` section of a host config ([`parse_host`]); SA-only users ignore it.
    #[serde(default)]
    host: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncap {
    local_port: u16,
    remote_port: u16,
}

/// Read and validate the config file at `path`.
///
/// # Errors
/// [`ConfigError`] naming the file (and SA and field).
pub fn load(path: &Path) -> Result<SaFile, ConfigError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError(format!(
            "{name}: file too large ({} bytes, at most {MAX_CONFIG_BYTES})",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    parse(&name, &text)
}

/// Parse and validate config `text`; `name` is the file name used in messages.
///
/// # Errors
/// [`ConfigError`] naming the file, the SA (index and SPI) and the field.
pub fn parse(name: &str, text: &str) -> Result<SaFile, ConfigError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError(format!("{name}: {}", e.message().trim_end())))?;
    if raw.sa.len() > MAX_SAS {
        return Err(ConfigError(format!(
            "{name}: {} SAs, at most {MAX_SAS}",
            raw.sa.len()
        )));
    }
    let mut sas = Vec::with_capacity(raw.sa.len());
    for (i, v) in raw.sa.iter().enumerate() {
        sas.push(parse_sa(name, i, v)?);
    }
    // A [host] section is not needed here, but it must not be nonsense either.
    if let Some(h) = &raw.host {
        parse_host_section(name, h)?;
    }
    Ok(SaFile { sas })
}

/// Where Linux traffic enters an emulated host run by `ipsec-nic run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSide {
    /// No host side: the host only forwards nothing (wire port and SAs only).
    None,
    /// An existing or new TAP interface named so (`host_tap`); Linux's side of it is the
    /// user's to address.
    Tap(String),
    /// The tool creates a TAP in this existing network namespace (`namespace`) and addresses
    /// it with the host's addresses.
    Namespace(String),
}

/// The `[host]` section of a host config (`ipsec-nic run`):
///
/// ```toml
/// [host]
/// name = "A"                          # stats file name, messages; [A-Za-z0-9_-], 1..=32
/// mac = "02:00:00:00:00:01"           # the NIC's MAC on the wire
/// addresses = ["192.0.2.1/24"]        # the host's addresses (prefix: for the host side)
/// neighbors = { "192.0.2.2" = "02:00:00:00:00:02" }   # peer IP -> MAC on the wire
/// wire_tap = "ipsnA0"                 # TAP interface of the NIC's port (created/attached)
/// host_tap = "ipshA0"                 # optional: Linux traffic enters through this TAP
/// namespace = "blue"                  # optional, instead of host_tap: TAP made in this netns
/// offload = true                      # default true
/// provider = "fastest"                # "fastest" | "rustcrypto" | "aws-lc"
/// nic_capacity = 16                   # SAs per direction the NIC holds, 1..=65536
/// replay_window = 64                  # 32..=65536 (default: what the inbound SAs say)
/// clear_icmp = false                  # true: ICMP/ICMPv6 between the selectors stays in clear
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSection {
    /// Host name.
    pub name: String,
    /// The NIC's (and stack's) MAC.
    pub mac: [u8; 6],
    /// The host's addresses with the prefix length of the attached subnet (default /24 for
    /// IPv4, /64 for IPv6).
    pub addresses: Vec<Prefix>,
    /// Static neighbors on the wire: IP -> MAC.
    pub neighbors: Vec<(IpAddr, [u8; 6])>,
    /// TAP interface of the NIC's wire port.
    pub wire_tap: String,
    /// Where Linux traffic enters.
    pub host_side: HostSide,
    /// Offload SAs to the NIC.
    pub offload: bool,
    /// Crypto provider (NIC engine and software path).
    pub provider: ipsec::ProviderKind,
    /// NIC SA capacity per direction.
    pub nic_capacity: usize,
    /// Anti-replay window; `None`: from the inbound SAs.
    pub replay_window: Option<u32>,
    /// Exempt ICMP/ICMPv6 from the IPsec filters (a permit filter per layer at the IKE
    /// exemption weight, as the Manual SA scenario does), so `ping` works in clear.
    pub clear_icmp: bool,
}

const HOST_FIELDS: [&str; 12] = [
    "name",
    "mac",
    "addresses",
    "neighbors",
    "wire_tap",
    "host_tap",
    "namespace",
    "offload",
    "provider",
    "nic_capacity",
    "replay_window",
    "clear_icmp",
];

/// Parse the `[host]` section of config `text` (`None`: the file has none); `name` is the
/// file name used in messages. The `[[sa]]` tables are not validated here (use [`parse`]).
///
/// # Errors
/// [`ConfigError`] naming the file, `[host]` and the field.
pub fn parse_host(name: &str, text: &str) -> Result<Option<HostSection>, ConfigError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError(format!("{name}: {}", e.message().trim_end())))?;
    raw.host
        .as_ref()
        .map(|h| parse_host_section(name, h))
        .transpose()
}

/// Read the config file at `path`: its SAs ([`load`]) and its `[host]` section.
///
/// # Errors
/// As [`load`] and [`parse_host`].
pub fn load_host(path: &Path) -> Result<(SaFile, Option<HostSection>), ConfigError> {
    let file = load(path)?;
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{name}: {e}")))?;
    Ok((file, parse_host(&name, &text)?))
}

fn valid_ifname(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A TOML table being parsed and the prefix that names it in messages ("file: sa[0] (spi
/// 0x1001)", "file: [host]").
struct Section<'a> {
    t: &'a toml::Table,
    who: String,
}

impl<'a> Section<'a> {
    fn err(&self, field: &str, msg: String) -> ConfigError {
        ConfigError(format!("{}: {field}: {msg}", self.who))
    }

    /// Refuse any key not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.t.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(self.err(k, format!("unknown field (known: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    /// An optional string field.
    fn string(&self, field: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.t.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.err(field, "expected a string".into())),
        }
    }

    /// A required string field.
    fn required(&self, field: &str) -> Result<&'a str, ConfigError> {
        self.string(field)?
            .ok_or_else(|| self.err(field, "missing".into()))
    }
}

fn parse_host_section(name: &str, v: &toml::Value) -> Result<HostSection, ConfigError> {
    let Some(t) = v.as_table() else {
        return Err(ConfigError(format!("{name}: [host]: expected a table")));
    };
    let sec = Section {
        t,
        who: format!("{name}: [host]"),
    };
    let err = |field: &str, msg: String| sec.err(field, msg);
    sec.only(&HOST_FIELDS)?;
    let string = |field: &str| sec.string(field);
    let required = |field: &str| sec.required(field);
    let host_name = required("name")?;
    if !(1..=32).contains(&host_name.len())
        || !host_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(err(
            "name",
            format!("expected 1..=32 characters of [A-Za-z0-9_-], got {host_name:?}"),
        ));
    }
    let mac_s = required("mac")?;
    let mac = parse_mac(mac_s)
        .ok_or_else(|| err("mac", format!("expected aa:bb:cc:dd:ee:ff, got {mac_s:?}")))?;
    if mac[0] & 1 == 1 {
        return Err(err("mac", format!("{mac_s} is a multicast address")));
    }
    let addresses = match t.get("addresses") {
        None => return Err(err("addresses", "missing".into())),
        Some(toml::Value::Array(a)) if !a.is_empty() => {
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                let Some(s) = x.as_str() else {
                    return Err(err(&format!("addresses[{i}]"), "expected a string".into()));
                };
                let mut p = Prefix::parse(s).map_err(|m| err(&format!("addresses[{i}]"), m))?;
                if !s.contains('/') {
                    p.len = if p.addr.is_ipv4() { 24 } else { 64 };
                }
                out.push(p);
            }
            out
        }
        Some(_) => {
            return Err(err(
                "addresses",
                "expected a non-empty array of \"addr\" or \"addr/len\" strings".into(),
            ));
        }
    };
    let neighbors = match t.get("neighbors") {
        None => Vec::new(),
        Some(toml::Value::Table(n)) => {
            let mut out = Vec::with_capacity(n.len());
            for (ip, m) in n {
                let field = format!("neighbors.{ip:?}");
                let addr: IpAddr = ip
                    .parse()
                    .map_err(|_| err(&field, format!("not an IP address: {ip:?}")))?;
                let mac = m
                    .as_str()
                    .and_then(parse_mac)
                    .ok_or_else(|| err(&field, "expected a MAC string aa:bb:cc:dd:ee:ff".into()))?;
                out.push((addr, mac));
            }
            out
        }
        Some(_) => {
            return Err(err(
                "neighbors",
                "expected a table { \"ip\" = \"mac\", ... }".into(),
            ));
        }
    };
    let ifname = |field: &str| -> Result<Option<String>, ConfigError> {
        string(field)?
            .map(|s| {
                if valid_ifname(s) {
                    Ok(s.to_owned())
                } else {
                    Err(err(
                        field,
                        format!("not an interface name (1..=15 of [A-Za-z0-9._-]): {s:?}"),
                    ))
                }
            })
            .transpose()
    };
    let wire_tap = ifname("wire_tap")?.ok_or_else(|| err("wire_tap", "missing".into()))?;
    let host_tap = ifname("host_tap")?;
    let namespace = string("namespace")?;
    let host_side = match (host_tap, namespace) {
        (Some(_), Some(_)) => {
            return Err(err(
                "namespace",
                "give either host_tap or namespace, not both".into(),
            ));
        }
        (Some(tap), None) => {
            if tap == wire_tap {
                return Err(err("host_tap", "must differ from wire_tap".into()));
            }
            HostSide::Tap(tap)
        }
        (None, Some(ns)) => {
            if ns.is_empty()
                || ns.len() > 64
                || !ns
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                || ns.starts_with('.')
            {
                return Err(err("namespace", format!("not a namespace name: {ns:?}")));
            }
            HostSide::Namespace(ns.to_owned())
        }
        (None, None) => HostSide::None,
    };
    let offload = match t.get("offload") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(err("offload", "expected true or false".into())),
    };
    let clear_icmp = match t.get("clear_icmp") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(err("clear_icmp", "expected true or false".into())),
    };
    let provider = match string("provider")?.unwrap_or("fastest") {
        "fastest" => ipsec::ProviderKind::fastest(),
        "rustcrypto" => ipsec::ProviderKind::RustCrypto,
        "aws-lc" => ipsec::ProviderKind::AwsLc,
        o => {
            return Err(err(
                "provider",
                format!("expected \"fastest\", \"rustcrypto\" or \"aws-lc\", got {o:?}"),
            ));
        }
    };
    let int = |field: &str| -> Result<Option<i64>, ConfigError> {
        match t.get(field) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(*n)),
            Some(_) => Err(err(field, "expected an integer".into())),
        }
    };
    let nic_capacity = match int("nic_capacity")? {
        None => 16,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|c| (1..=65536).contains(c))
            .ok_or_else(|| err("nic_capacity", format!("must be 1..=65536, got {n}")))?,
    };
    let replay_window = int("replay_window")?
        .map(|n| {
            u32::try_from(n)
                .ok()
                .filter(|w| (32..=65536).contains(w))
                .ok_or_else(|| err("replay_window", format!("must be 32..=65536, got {n}")))
        })
        .transpose()?;
    Ok(HostSection {
        name: host_name.to_owned(),
        mac,
        addresses,
        neighbors,
        wire_tap,
        host_side,
        offload,
        provider,
        nic_capacity,
        replay_window,
        clear_icmp,
    })
}

const FIELDS: [&str; 17] = [
    "spi",
    "direction",
    "protocol",
    "mode",
    "local",
    "remote",
    "tunnel_local",
    "tunnel_remote",
    "encryption",
    "integrity",
    "encryption_key",
    "integrity_key",
    "esn",
    "sequence",
    "replay_window",
    "udp_encap",
    "comment",
];

fn parse_sa(name: &str, i: usize, v: &toml::Value) -> Result<SaConfig, ConfigError> {
    let Some(t) = v.as_table() else {
        return Err(ConfigError(format!("{name}: sa[{i}]: expected a table")));
    };
    // SPI first: it names the SA in every later message.
    let spi_v = t.get("spi");
    let spi = match spi_v.and_then(toml::Value::as_integer) {
        Some(n) => u32::try_from(n).ok(),
        None => None,
    };
    let who = match spi {
        Some(s) => format!("{name}: sa[{i}] (spi {s:#x})"),
        None => format!("{name}: sa[{i}]"),
    };
    let sec = Section { t, who };
    let err = |field: &str, msg: String| sec.err(field, msg);
    let spi = match (spi_v, spi) {
        (None, _) => return Err(err("spi", "missing".into())),
        (Some(_), None) => {
            return Err(err("spi", "expected an integer 256..=0xffffffff".into()));
        }
        (Some(_), Some(s)) if s < 256 => {
            return Err(err("spi", "SPI 0-255 is reserved (RFC 4303 §2.1)".into()));
        }
        (Some(_), Some(s)) => s,
    };
    sec.only(&FIELDS)?;
    let string = |field: &str| sec.string(field);
    let required = |field: &str| sec.required(field);
    let direction = match required("direction")? {
        "outbound" => Direction::Outbound,
        "inbound" => Direction::Inbound,
        o => {
            return Err(err(
                "direction",
                format!("expected \"outbound\" or \"inbound\", got {o:?}"),
            ));
        }
    };
    let protocol = match required("protocol")? {
        "esp" => Protocol::Esp,
        "ah" => Protocol::Ah,
        o => {
            return Err(err(
                "protocol",
                format!("expected \"esp\" or \"ah\", got {o:?}"),
            ));
        }
    };
    let mode = match string("mode")?.unwrap_or("transport") {
        "transport" => Mode::Transport,
        "tunnel" => Mode::Tunnel,
        o => {
            return Err(err(
                "mode",
                format!("expected \"transport\" or \"tunnel\", got {o:?}"),
            ));
        }
    };
    let local = Prefix::parse(required("local")?).map_err(|m| err("local", m))?;
    let remote = Prefix::parse(required("remote")?).map_err(|m| err("remote", m))?;
    if local.addr.is_ipv4() != remote.addr.is_ipv4() {
        return Err(err(
            "remote",
            "local and remote selectors are of different IP families".into(),
        ));
    }
    let addr = |field: &str| -> Result<Option<IpAddr>, ConfigError> {
        string(field)?
            .map(|s| {
                s.parse::<IpAddr>()
                    .map_err(|_| err(field, format!("not an IP address: {s:?}")))
            })
            .transpose()
    };
    let tl = addr("tunnel_local")?;
    let tr = addr("tunnel_remote")?;
    let tunnel = match (mode, tl, tr) {
        (Mode::Transport, None, None) => None,
        (Mode::Transport, Some(_), _) => {
            return Err(err("tunnel_local", "only allowed in tunnel mode".into()));
        }
        (Mode::Transport, None, Some(_)) => {
            return Err(err("tunnel_remote", "only allowed in tunnel mode".into()));
        }
        (Mode::Tunnel, None, _) => {
            return Err(err("tunnel_local", "required in tunnel mode".into()));
        }
        (Mode::Tunnel, _, None) => {
            return Err(err("tunnel_remote", "required in tunnel mode".into()));
        }
        (Mode::Tunnel, Some(l), Some(r)) => {
            if l.is_ipv4() != r.is_ipv4() {
                return Err(err(
                    "tunnel_remote",
                    "tunnel endpoints of different IP families".into(),
                ));
            }
            Some(TunnelEndpoints {
                local: l,
                remote: r,
            })
        }
    };
    let encryption = match string("encryption")?.unwrap_or("none") {
        "aes-gcm-128" => Encryption::AesGcm128,
        "aes-gcm-192" => Encryption::AesGcm192,
        "aes-gcm-256" => Encryption::AesGcm256,
        "aes-cbc-128" => Encryption::AesCbc128,
        "aes-cbc-192" => Encryption::AesCbc192,
        "aes-cbc-256" => Encryption::AesCbc256,
        "null" => Encryption::Null,
        "none" => Encryption::None,
        o => {
            return Err(err(
                "encryption",
                format!(
                    "unknown algorithm {o:?} (aes-gcm-128|192|256, aes-cbc-128|192|256, null, none)"
                ),
            ));
        }
    };
    let integrity = match string("integrity")?.unwrap_or("none") {
        "hmac-sha256-128" => Integrity::HmacSha256_128,
        "hmac-sha1-96" => Integrity::HmacSha1_96,
        "aes-gmac-128" => Integrity::AesGmac128,
        "aes-gmac-192" => Integrity::AesGmac192,
        "aes-gmac-256" => Integrity::AesGmac256,
        "none" => Integrity::None,
        o => {
            return Err(err(
                "integrity",
                format!(
                    "unknown algorithm {o:?} (hmac-sha256-128, hmac-sha1-96, aes-gmac-128|192|256, none)"
                ),
            ));
        }
    };
    let enc_name = string("encryption")?.unwrap_or("none");
    let int_name = string("integrity")?.unwrap_or("none");
    let encryption_key =
        hex_key(string("encryption_key")?.unwrap_or("")).map_err(|m| err("encryption_key", m))?;
    let integrity_key =
        hex_key(string("integrity_key")?.unwrap_or("")).map_err(|m| err("integrity_key", m))?;
    let want = encryption.key_len();
    if encryption_key.len() != want {
        let what = if encryption.is_aead() {
            format!(" ({}-byte key + 4-byte salt)", want.saturating_sub(4))
        } else {
            String::new()
        };
        return Err(err(
            "encryption_key",
            format!(
                "expected {want} bytes for {enc_name}{what}, got {}",
                encryption_key.len()
            ),
        ));
    }
    let want = integrity.key_len();
    if integrity_key.len() != want {
        let what = if integrity.is_gmac() {
            format!(" ({}-byte key + 4-byte salt)", want.saturating_sub(4))
        } else {
            String::new()
        };
        return Err(err(
            "integrity_key",
            format!(
                "expected {want} bytes for {int_name}{what}, got {}",
                integrity_key.len()
            ),
        ));
    }
    let esn = match t.get("esn") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(err("esn", "expected true or false".into())),
    };
    let int = |field: &str| -> Result<Option<i64>, ConfigError> {
        match t.get(field) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(*n)),
            Some(_) => Err(err(field, "expected an integer".into())),
        }
    };
    let sequence = int("sequence")?.unwrap_or(1);
    let max_seq: i64 = if esn { i64::MAX } else { i64::from(u32::MAX) };
    if !(1..=max_seq).contains(&sequence) {
        return Err(err(
            "sequence",
            format!(
                "must be 1..={max_seq}{}",
                if esn { "" } else { " without esn" }
            ),
        ));
    }
    let replay_window = int("replay_window")?.unwrap_or(64);
    let replay_window = u32::try_from(replay_window)
        .ok()
        .filter(|w| (32..=65536).contains(w))
        .ok_or_else(|| {
            err(
                "replay_window",
                format!("must be 32..=65536, got {replay_window}"),
            )
        })?;
    let udp_encap = match t.get("udp_encap") {
        None => None,
        Some(v) => {
            let e: RawEncap = v.clone().try_into().map_err(|e: toml::de::Error| {
                err(
                    "udp_encap",
                    format!(
                        "expected {{ local_port = N, remote_port = N }}: {}",
                        e.message().trim_end()
                    ),
                )
            })?;
            if protocol == Protocol::Ah {
                return Err(err(
                    "udp_encap",
                    "UDP encapsulation applies to ESP only".into(),
                ));
            }
            Some(UdpEncap {
                local_port: e.local_port,
                remote_port: e.remote_port,
            })
        }
    };
    let params = SaParams {
        spi,
        protocol,
        mode,
        encryption,
        encryption_key,
        integrity,
        integrity_key,
        esn,
        tunnel,
        udp_encap,
    };
    if let Err(e) = params.validate() {
        let field = match e {
            ipsec::ParamError::TunnelEndpoints => "tunnel_local",
            ipsec::ParamError::UdpEncapOnAh => "udp_encap",
            ipsec::ParamError::EncryptionKeyLength => "encryption_key",
            ipsec::ParamError::IntegrityKeyLength => "integrity_key",
            _ => "encryption/integrity",
        };
        return Err(err(field, e.to_string()));
    }
    Ok(SaConfig {
        index: i,
        direction,
        params,
        local,
        remote,
        sequence: sequence.unsigned_abs(),
        replay_window,
    })
}

fn hex_key(s: &str) -> Result<Key, String> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let s = s.strip_prefix("0x").unwrap_or(&s);
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    if s.len() > 2 * 64 {
        return Err("key too long (at most 64 bytes)".into());
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    let b = s.as_bytes();
    for pair in b.chunks(2) {
        let hi = hex_digit(pair.first().copied());
        let lo = hex_digit(pair.get(1).copied());
        match (hi, lo) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return Err("not a hex string".into()),
        }
    }
    let k = Key::new(&out);
    out.fill(0);
    Ok(k)
}

fn hex_digit(c: Option<u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SA: &str = r#"
[[sa]]
spi = 0x1001
direction = "inbound"
protocol = "esp"
local = "192.0.2.1"
remote = "192.0.2.2"
encryption = "aes-gcm-128"
encryption_key = "0001020304050607080910111213141516171819"
"#;

    #[test]
    fn host_section_parses_with_defaults_and_sa_parsing_ignores_it() {
        let text = format!(
            "{SA}\n[host]\nname = \"A\"\nmac = \"02:00:00:00:00:01\"\naddresses = [\"192.0.2.1\", \"2001:db8::1/64\", \"198.51.100.1/25\"]\nneighbors = {{ \"192.0.2.2\" = \"02:00:00:00:00:02\" }}\nwire_tap = \"ipsnA0\"\nnamespace = \"blue\"\n"
        );
        let file = parse("h.toml", &text).unwrap();
        assert_eq!(file.sas.len(), 1);
        let h = parse_host("h.toml", &text).unwrap().unwrap();
        assert_eq!(h.name, "A");
        assert_eq!(h.mac, [2, 0, 0, 0, 0, 1]);
        let lens: Vec<u8> = h.addresses.iter().map(|p| p.len).collect();
        assert_eq!(lens, vec![24, 64, 25]);
        assert_eq!(
            h.neighbors,
            vec![("192.0.2.2".parse().unwrap(), [2, 0, 0, 0, 0, 2])]
        );
        assert_eq!(h.wire_tap, "ipsnA0");
        assert_eq!(h.host_side, HostSide::Namespace("blue".into()));
        assert!(h.offload);
        assert_eq!((h.nic_capacity, h.replay_window), (16, None));
        assert!(!h.clear_icmp);
        let on = parse_host("h.toml", &format!("{text}clear_icmp = true\n"))
            .unwrap()
            .unwrap();
        assert!(on.clear_icmp);
        assert_eq!(parse_host("h.toml", SA).unwrap(), None);
    }

    #[test]
    fn host_section_errors_name_file_section_and_field() {
        let base = "[host]\nname = \"A\"\nmac = \"02:00:00:00:00:01\"\naddresses = [\"192.0.2.1\"]\nwire_tap = \"w0\"\n";
        assert!(parse_host("h.toml", base).unwrap().is_some());
        let cases = [
            ("name = \"A\"", "name = \"a b\"", "[host]: name:"),
            (
                "mac = \"02:00:00:00:00:01\"",
                "mac = \"01:00:00:00:00:01\"",
                "[host]: mac: ",
            ),
            (
                "mac = \"02:00:00:00:00:01\"",
                "mac = \"xx\"",
                "[host]: mac: ",
            ),
            (
                "addresses = [\"192.0.2.1\"]",
                "addresses = []",
                "[host]: addresses: ",
            ),
            (
                "addresses = [\"192.0.2.1\"]",
                "addresses = [\"nope\"]",
                "[host]: addresses[0]: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"far-too-long-interface\"",
                "[host]: wire_tap: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nhost_tap = \"w0\"",
                "[host]: host_tap: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nhost_tap = \"h0\"\nnamespace = \"n\"",
                "[host]: namespace: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nnic_capacity = 0",
                "[host]: nic_capacity: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nclear_icmp = 1",
                "[host]: clear_icmp: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nreplay_window = 8",
                "[host]: replay_window: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nprovider = \"openssl\"",
                "[host]: provider: ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\nneighbors = { \"x\" = \"02:00:00:00:00:02\" }",
                "[host]: neighbors.\"x\": ",
            ),
            (
                "wire_tap = \"w0\"",
                "wire_tap = \"w0\"\ncolour = 1",
                "[host]: colour: unknown field",
            ),
            ("wire_tap = \"w0\"\n", "", "[host]: wire_tap: missing"),
        ];
        for (from, to, want) in cases {
            let text = base.replace(from, to);
            let e = parse_host("h.toml", &text).unwrap_err().0;
            assert!(e.starts_with("h.toml: ") && e.contains(want), "{to:?}: {e}");
            // The SA parser refuses the same broken section: nothing runs.
            assert!(parse("h.toml", &text).is_err(), "{to:?}");
        }
    }
}
