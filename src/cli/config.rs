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
    Ok(SaFile { sas })
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
    let err = |field: &str, msg: String| ConfigError(format!("{who}: {field}: {msg}"));
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
    for k in t.keys() {
        if !FIELDS.contains(&k.as_str()) {
            return Err(err(
                k,
                format!("unknown field (known: {})", FIELDS.join(", ")),
            ));
        }
    }
    let string = |field: &str| -> Result<Option<&str>, ConfigError> {
        match t.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(err(field, "expected a string".into())),
        }
    };
    let required = |field: &str| -> Result<&str, ConfigError> {
        string(field)?.ok_or_else(|| err(field, "missing".into()))
    };
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
