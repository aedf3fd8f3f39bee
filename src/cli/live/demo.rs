//! `ipsec-nic demo` with real Linux traffic.
//!
//! Two network namespaces (`ipsecnic-<pid>-a`, `-b`), each with a TAP device whose Linux side
//! is addressed 192.0.2.1/24 (A) or 192.0.2.2/24 (B) (with `--ipv6` also 2001:db8::1/64 and
//! ::2), a fixed MAC, a permanent neighbor entry for the peer and, unless `--ipv6`, IPv6
//! disabled (a quiet wire). The two emulated hosts ([`crate::TwoHosts`], in-memory wire
//! between their NICs, capture at A's port) run the Manual SA scenario ([`crate::manual_sa`])
//! and have [`transport::HostStack::set_external`] on: each TAP is joined to its host's stack
//! by a [`HostSide`] adapter, so the Linux stacks in the namespaces send and receive through
//! the emulated hosts. Then, with `ip netns exec`: `ping` A -> B (in clear: the Manual SA
//! policy exempts ICMP), iperf3 TCP and UDP (ESP through the NICs), or the built-in UDP load
//! generator when iperf3 is missing.
//!
//! The wall clock drives the hosts' virtual clock (elapsed time since the start); the pump
//! loop never blocks and sleeps briefly only when nothing moved. Clean-up always happens:
//! the [`Netns`] guards delete the namespaces (and the TAPs in them) on every return path,
//! children are killed when `stop` is raised (the binary's SIGINT/SIGTERM handler).

use core::net::IpAddr;
use core::time::Duration;
use std::fmt::Write as _;
use std::io::{BufWriter, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use nicsim::MemWire;
use nicsim::wire::tap::TapWire;
use serde::Serialize;

use super::bridge::HostSide;
use super::capture::{Counting, LimitWriter, WireCounters};
use super::netns::{self, Netns, SetupError};
use super::stats::{HostCounters, host_counters};
use crate::{
    A_V4, A_V6, Algorithms, B_V4, B_V6, Capture, ManualSa, ManualSaOptions, SaMode, TopologyConfig,
    TwoHosts, manual_sa,
};

/// MAC of Linux's interface in namespace A.
pub const LINUX_MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
/// MAC of Linux's interface in namespace B.
pub const LINUX_MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x02];

/// Options of the live demo.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// SA transforms.
    pub algorithms: Algorithms,
    /// Transport or tunnel mode.
    pub mode: SaMode,
    /// Also address IPv6 and protect IPv6 (the SAs then cover 2001:db8::1 <-> ::2).
    pub ipv6: bool,
    /// Offload off: the hosts do IPsec in software.
    pub software: bool,
    /// Seconds of each throughput run.
    pub seconds: u64,
    /// Target rate of the UDP run (iperf3 `-b` syntax, e.g. `200M`).
    pub udp_rate: String,
    /// Where the capture at A's wire port goes.
    pub pcap: PathBuf,
    /// Largest capture file (bytes); the capture stops at a record boundary after that.
    pub pcap_limit: u64,
    /// Where the SA config (A's view, with keys) goes.
    pub sa_config: PathBuf,
    /// Use the built-in UDP generator even when iperf3 is installed.
    pub builtin_load: bool,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// One throughput run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// `tcp` or `udp`.
    pub test: String,
    /// `iperf3` or `builtin`.
    pub tool: String,
    /// Receiver-side goodput, Mbit/s.
    pub mbit_s: f64,
    /// Seconds measured.
    pub seconds: f64,
    /// Bytes received.
    pub bytes: u64,
    /// UDP: packets lost (percent), when the tool reports it.
    pub lost_percent: Option<f64>,
}

/// The ping result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PingResult {
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
}

/// Everything the live demo reports (also its `--json` output). No key bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveSummary {
    /// `namespaces` (real Linux traffic) or `in-memory`.
    pub mode: String,
    /// The SA transforms.
    pub algorithm: String,
    /// `transport` or `tunnel`.
    pub ipsec_mode: String,
    /// Whether the NICs did the crypto.
    pub offload: bool,
    /// The namespaces used.
    pub namespaces: Vec<String>,
    /// The SPIs of the SA contexts: (host, inbound SPI).
    pub spis: Vec<(String, String)>,
    /// Ping A -> B.
    pub ping: PingResult,
    /// Throughput runs.
    pub throughput: Vec<Throughput>,
    /// Per host: SAs, NIC, stack and drop counters.
    pub hosts: Vec<HostCounters>,
    /// Frames at A's wire port by kind.
    pub wire: std::collections::BTreeMap<String, u64>,
    /// The capture file.
    pub pcap: String,
    /// Whether the capture stopped at its size limit.
    pub pcap_truncated: bool,
    /// The SA config file (contains keys; never printed).
    pub sa_config: String,
    /// Remarks (fallbacks, tool versions).
    pub notes: Vec<String>,
    /// Whether the run met its goals (every echo answered, in clear in transport mode and
    /// protected in tunnel mode; throughput > 0 with ESP/AH frames on the wire).
    pub ok: bool,
    /// `ESP`, `AH` or `ESP+AH`.
    pub protection: String,
    /// Whether the echo requests and replies crossed the wire in clear.
    pub ping_clear: bool,
}

/// Why the live demo did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveError {
    /// The namespace scenario cannot run here (no privilege, no `ip`, no `/dev/net/tun`):
    /// run the in-memory scenario instead.
    Unavailable(String),
    /// It failed.
    Failed(String),
    /// Interrupted by SIGINT/SIGTERM (everything was cleaned up).
    Interrupted,
}

impl core::fmt::Display for LiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LiveError::Unavailable(m) | LiveError::Failed(m) => f.write_str(m),
            LiveError::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl From<SetupError> for LiveError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Unavailable(m) => LiveError::Unavailable(m),
            SetupError::Failed(m) => LiveError::Failed(m),
        }
    }
}

/// Command-line names of [`Algorithms`], in [`Algorithms::ALL`] order.
pub const ALGORITHM_NAMES: [&str; 12] = [
    "aes-gcm-128",
    "aes-gcm-192",
    "aes-gcm-256",
    "aes-gmac-128",
    "aes-cbc-128-hmac-sha256",
    "aes-cbc-256-hmac-sha256",
    "aes-cbc-128-hmac-sha1",
    "null-hmac-sha256",
    "null-hmac-sha1",
    "ah-hmac-sha1",
    "ah-hmac-sha256",
    "aes-gcm-128+ah-hmac-sha1",
];

/// Parse a command-line algorithm name (see [`ALGORITHM_NAMES`]).
///
/// # Errors
/// A message listing the known names.
pub fn parse_algorithm(s: &str) -> Result<Algorithms, String> {
    ALGORITHM_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s.trim()))
        .and_then(|i| Algorithms::ALL.get(i).copied())
        .ok_or_else(|| {
            format!(
                "unknown algorithm {s:?} (known: {})",
                ALGORITHM_NAMES.join(", ")
            )
        })
}

/// `ESP`, `AH` or `ESP+AH`: what protects the demo's traffic.
pub fn protection(a: Algorithms) -> &'static str {
    match (a.has_esp(), a.has_ah()) {
        (true, true) => "ESP+AH",
        (false, true) => "AH",
        _ => "ESP",
    }
}

/// Which demo to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Real Linux traffic through namespaces and TAP devices.
    Namespaces,
    /// The in-memory scenario (forced with `--in-memory`).
    InMemoryRequested,
    /// The in-memory scenario because the namespace scenario cannot run here.
    InMemoryFallback,
    /// Stop with an error.
    Fail,
}

/// What to do after an attempt of the namespace demo (`None`: not tried yet).
pub fn decide(in_memory: bool, attempt: Option<&LiveError>) -> Decision {
    match (in_memory, attempt) {
        (true, _) => Decision::InMemoryRequested,
        (false, None) => Decision::Namespaces,
        (false, Some(LiveError::Unavailable(_))) => Decision::InMemoryFallback,
        (false, Some(_)) => Decision::Fail,
    }
}

/// The message printed before the in-memory fallback.
pub fn fallback_message(why: &str) -> String {
    format!(
        "not root / no CAP_NET_ADMIN: running the same scenario over the in-memory wire ({why})"
    )
}

fn setup_tap(
    ns: &Netns,
    tap: &str,
    mac: [u8; 6],
    v4: &str,
    peer4: &str,
    peer_mac: [u8; 6],
    ipv6: Option<(&str, &str)>,
) -> Result<(), SetupError> {
    netns::ip(&["link", "set", "dev", tap, "netns", ns.name()])?;
    let mac_s = netns::mac_string(mac);
    let peer_s = netns::mac_string(peer_mac);
    ns.ip(&["link", "set", "dev", "lo", "up"])?;
    ns.ip(&["link", "set", "dev", tap, "address", &mac_s])?;
    if ipv6.is_none() {
        netns::disable_ipv6(ns.name(), tap);
    }
    ns.ip(&["addr", "add", v4, "dev", tap])?;
    if let Some((own6, peer6)) = ipv6 {
        ns.ip(&["addr", "add", own6, "dev", tap, "nodad"])?;
        ns.ip(&[
            "neigh",
            "replace",
            peer6,
            "lladdr",
            &peer_s,
            "dev",
            tap,
            "nud",
            "permanent",
        ])?;
    }
    ns.ip(&["link", "set", "dev", tap, "up"])?;
    ns.ip(&[
        "neigh",
        "replace",
        peer4,
        "lladdr",
        &peer_s,
        "dev",
        tap,
        "nud",
        "permanent",
    ])?;
    Ok(())
}

fn open_tap(name: &str) -> Result<TapWire, SetupError> {
    TapWire::open(name).map_err(|e| {
        let m = format!("TAP {name}: {e}");
        if netns::is_permission_error(&m) || !Path::new("/dev/net/tun").exists() {
            SetupError::Unavailable(m)
        } else {
            SetupError::Failed(m)
        }
    })
}

/// Key seeds that differ per run (the demo's keys are not constants), never 0 and the two
/// directions different.
fn key_seeds() -> (u8, u8) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(0x5a5a);
    let a = (t & 0xff) as u8 | 1;
    let mut b = ((t >> 8) & 0xff) as u8 | 1;
    if b == a {
        b = a.wrapping_add(2) | 1;
    }
    (a, b)
}

/// The SA config text (crate::cli::config format) of host A's view of the Manual SA: the
/// outbound SA (A -> B, B's SPI) and the inbound SA (B -> A, A's SPI), with the keys
/// [`crate::manual_sa`] installs (each key is the direction's key seed repeated at the
/// transform's key length). Of an ESP+AH bundle only the ESP SA is written (the config
/// format holds one SA per direction and selectors).
pub fn sa_config_text(opts: &ManualSaOptions, sa: &ManualSa) -> String {
    let (a, b): (IpAddr, IpAddr) = if opts.ipv6 {
        (A_V6.into(), B_V6.into())
    } else {
        (A_V4.into(), B_V4.into())
    };
    // (protocol, encryption, encryption key length, integrity, integrity key length)
    let shapes: &[(&str, &str, usize, &str, usize)] = match opts.algorithms {
        Algorithms::AesGcm128 => &[("esp", "aes-gcm-128", 20, "none", 0)],
        Algorithms::AesGcm192 => &[("esp", "aes-gcm-192", 28, "none", 0)],
        Algorithms::AesGcm256 => &[("esp", "aes-gcm-256", 36, "none", 0)],
        Algorithms::AesGmac128 => &[("esp", "none", 0, "aes-gmac-128", 20)],
        Algorithms::AesCbc128HmacSha256 => &[("esp", "aes-cbc-128", 16, "hmac-sha256-128", 32)],
        Algorithms::AesCbc256HmacSha256 => &[("esp", "aes-cbc-256", 32, "hmac-sha256-128", 32)],
        Algorithms::AesCbc128HmacSha1 => &[("esp", "aes-cbc-128", 16, "hmac-sha1-96", 20)],
        Algorithms::NullHmacSha256 => &[("esp", "null", 0, "hmac-sha256-128", 32)],
        Algorithms::NullHmacSha1 => &[("esp", "null", 0, "hmac-sha1-96", 20)],
        Algorithms::AhHmacSha1 => &[("ah", "none", 0, "hmac-sha1-96", 20)],
        Algorithms::AhHmacSha256 => &[("ah", "none", 0, "hmac-sha256-128", 32)],
        // The config holds one SA per direction and selectors: the ESP half of the bundle
        // (enough for Wireshark to decrypt; the AH keys are not written).
        Algorithms::AesGcm128ThenAhSha1 => &[("esp", "aes-gcm-128", 20, "none", 0)],
    };
    let key = |seed: u8, len: usize| format!("{seed:02x}").repeat(len);
    let mut t = String::from(
        "# Written by `ipsec-nic demo`: host A's SAs (the capture is taken at A's port).\n\
         # CONTAINS KEYS. Use: ipsec-nic sa export --wireshark --config THIS_FILE\n",
    );
    for (dir, spi, seed) in [
        ("outbound", sa.b.spi, opts.key_a_out),
        ("inbound", sa.a.spi, opts.key_a_in),
    ] {
        for &(proto, enc, elen, int, ilen) in shapes {
            let _ = writeln!(t, "\n[[sa]]");
            let _ = writeln!(t, "spi = {spi:#x}");
            let _ = writeln!(t, "direction = \"{dir}\"");
            let _ = writeln!(t, "protocol = \"{proto}\"");
            let _ = writeln!(t, "local = \"{a}\"");
            let _ = writeln!(t, "remote = \"{b}\"");
            if opts.mode == SaMode::Tunnel {
                let _ = writeln!(t, "mode = \"tunnel\"");
                let _ = writeln!(t, "tunnel_local = \"{a}\"");
                let _ = writeln!(t, "tunnel_remote = \"{b}\"");
            }
            let _ = writeln!(t, "encryption = \"{enc}\"");
            let _ = writeln!(t, "integrity = \"{int}\"");
            let _ = writeln!(t, "encryption_key = \"{}\"", key(seed, elen));
            let _ = writeln!(t, "integrity_key = \"{}\"", key(seed, ilen));
        }
    }
    t
}

/// A child process's outcome.
struct ChildOut {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn reader(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// A spawned child whose output is collected in the background.
struct Running {
    child: Child,
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Result<Running, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        Ok(Running { child, out, err })
    }

    /// Wait until it exits, `timeout` passes or `stop` is raised (then kill it).
    fn wait(mut self, timeout: Duration, stop: &AtomicBool) -> Result<ChildOut, String> {
        let t0 = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            if stop.load(Ordering::Relaxed) || t0.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .out
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = self
            .err
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        match status {
            Some(s) => Ok(ChildOut {
                ok: s.success(),
                stdout,
                stderr,
            }),
            None if stop.load(Ordering::Relaxed) => Err("interrupted".into()),
            None => Err(format!(
                "timed out after {} s: {}",
                timeout.as_secs(),
                stderr.trim()
            )),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn exec(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// `N received` of ping's summary line.
pub fn parse_ping_received(out: &str) -> Option<u32> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    line.split(',')
        .find(|p| p.contains("received"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Throughput from iperf3's `-J` output (receiver side: `sum_received` for TCP, `sum` /
/// `sum_received` for UDP).
///
/// # Errors
/// iperf3's own error, or a message when the JSON is not what iperf3 writes.
pub fn parse_iperf3(json: &str, test: &str) -> Result<Throughput, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("iperf3 output is not JSON: {e}"))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3: {e}"));
    }
    let end = v.get("end").ok_or("iperf3 JSON without \"end\"")?;
    let sum = if test == "tcp" {
        end.get("sum_received")
    } else {
        end.get("sum_received").or_else(|| end.get("sum"))
    }
    .ok_or("iperf3 JSON without a receiver sum")?;
    let f = |k: &str| sum.get(k).and_then(serde_json::Value::as_f64);
    let lost = if test == "udp" {
        end.get("sum")
            .and_then(|s| s.get("lost_percent"))
            .and_then(serde_json::Value::as_f64)
    } else {
        None
    };
    Ok(Throughput {
        test: test.into(),
        tool: "iperf3".into(),
        mbit_s: f("bits_per_second").unwrap_or(0.0) / 1e6,
        seconds: f("seconds").unwrap_or(0.0),
        bytes: sum
            .get("bytes")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        lost_percent: lost,
    })
}

/// Status line sink: a spinner on a terminal, plain lines otherwise.
#[derive(Clone)]
struct Progress(Option<indicatif::ProgressBar>, bool);

impl Progress {
    fn new(enabled: bool) -> Progress {
        if enabled && std::io::stderr().is_terminal() {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(Duration::from_millis(120));
            Progress(Some(pb), true)
        } else {
            Progress(None, enabled)
        }
    }

    fn say(&self, m: &str) {
        match &self.0 {
            Some(pb) => pb.set_message(m.to_owned()),
            None if self.1 => eprintln!("demo: {m}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

struct Scenario {
    ns_a: String,
    ns_b: String,
    dst: IpAddr,
    seconds: u64,
    udp_rate: String,
    builtin: bool,
    exe: PathBuf,
    stop: Arc<AtomicBool>,
    progress: Progress,
}

#[derive(Default)]
struct ScenarioResult {
    ping: PingResult,
    runs: Vec<Throughput>,
    notes: Vec<String>,
    error: Option<String>,
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rate_mbit(rate: &str) -> f64 {
    let r = rate.trim();
    let (num, mul) = match r.chars().last() {
        Some('K' | 'k') => (&r[..r.len() - 1], 1e-3),
        Some('M' | 'm') => (&r[..r.len() - 1], 1.0),
        Some('G' | 'g') => (&r[..r.len() - 1], 1e3),
        _ => (r, 1e-6),
    };
    num.parse::<f64>().map_or(100.0, |n| n * mul)
}

impl Scenario {
    fn run(&self) -> ScenarioResult {
        let mut r = ScenarioResult::default();
        if let Err(e) = self.steps(&mut r) {
            r.error = Some(e);
        }
        r
    }

    fn steps(&self, r: &mut ScenarioResult) -> Result<(), String> {
        let dst = self.dst.to_string();
        let secs = self.seconds.max(1);
        self.progress
            .say(&format!("ping -c 3 {dst} (clear: the policy exempts ICMP)"));
        let out = Running::spawn(
            exec(&self.ns_a, "ping").args(["-c", "3", "-i", "0.2", "-W", "2", &dst]),
        )?
        .wait(Duration::from_secs(15), &self.stop)?;
        r.ping = PingResult {
            sent: 3,
            received: parse_ping_received(&out.stdout).unwrap_or(0),
        };
        if !out.ok {
            r.notes.push(format!("ping failed: {}", out.stderr.trim()));
        }
        let iperf = !self.builtin && have("iperf3");
        if iperf {
            for (test, extra) in [
                ("tcp", vec![]),
                ("udp", vec!["-u", "-b", self.udp_rate.as_str()]),
            ] {
                self.progress.say(&format!(
                    "iperf3 {test} {secs} s to {dst} (IPsec-protected)"
                ));
                let t = self.iperf3(&dst, secs, &extra, test)?;
                r.runs.push(t);
            }
        } else {
            let why = if self.builtin {
                "--builtin-load"
            } else {
                "iperf3 is not installed"
            };
            r.notes.push(format!(
                "{why}: UDP load from the built-in generator, no TCP run"
            ));
            self.progress.say(&format!(
                "built-in UDP load {secs} s to {dst} (IPsec-protected)"
            ));
            r.runs.push(self.builtin_udp(&dst, secs)?);
        }
        Ok(())
    }

    fn iperf3(
        &self,
        dst: &str,
        secs: u64,
        extra: &[&str],
        test: &str,
    ) -> Result<Throughput, String> {
        let server =
            Running::spawn(exec(&self.ns_b, "iperf3").args(["-s", "-1", "-B", dst, "-p", "5201"]))?;
        let t_arg = secs.to_string();
        let mut last = String::new();
        // The server needs a moment to listen: retry the client briefly.
        for _ in 0..20 {
            if self.stop.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            let mut c = exec(&self.ns_a, "iperf3");
            c.args(["-c", dst, "-p", "5201", "-t", &t_arg, "-J"])
                .args(extra);
            let out = Running::spawn(&mut c)?.wait(Duration::from_secs(secs + 20), &self.stop)?;
            match parse_iperf3(&out.stdout, test) {
                Ok(t) => {
                    let _ = server.wait(Duration::from_secs(5), &self.stop);
                    return Ok(t);
                }
                Err(e) if e.contains("unable to connect") || e.contains("Connection refused") => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(150));
                }
                Err(e) => return Err(format!("{e} {}", out.stderr.trim())),
            }
        }
        Err(format!("iperf3 {test}: {last}"))
    }

    fn builtin_udp(&self, dst: &str, secs: u64) -> Result<Throughput, String> {
        let exe = self.exe.to_string_lossy().into_owned();
        let bind = format!("{}:5201", super::sock_host(dst));
        let recv = Running::spawn(exec(&self.ns_b, &exe).args([
            "__udp-recv",
            "--bind",
            &bind,
            "--seconds",
            &(secs + 5).to_string(),
            "--idle",
            "1",
        ]))?;
        std::thread::sleep(Duration::from_millis(200));
        let send = Running::spawn(exec(&self.ns_a, &exe).args([
            "__udp-send",
            "--to",
            &bind,
            "--seconds",
            &secs.to_string(),
            "--size",
            "1200",
            "--rate-mbit",
            &rate_mbit(&self.udp_rate).to_string(),
        ]))?
        .wait(Duration::from_secs(secs + 10), &self.stop)?;
        let got = recv.wait(Duration::from_secs(secs + 10), &self.stop)?;
        let rx: super::load::UdpLoad = serde_json::from_str(got.stdout.trim())
            .map_err(|e| format!("udp receiver: {e}: {}", got.stderr.trim()))?;
        let tx: super::load::UdpLoad = serde_json::from_str(send.stdout.trim())
            .map_err(|e| format!("udp sender: {e}: {}", send.stderr.trim()))?;
        let lost = if tx.packets > 0 {
            Some(tx.packets.saturating_sub(rx.packets) as f64 * 100.0 / tx.packets as f64)
        } else {
            None
        };
        Ok(Throughput {
            test: "udp".into(),
            tool: "builtin".into(),
            mbit_s: rx.mbit_s,
            seconds: rx.seconds,
            bytes: rx.bytes,
            lost_percent: lost,
        })
    }
}

/// Run the namespace demo. `stop` is raised by the caller's signal handler.
///
/// # Errors
/// [`LiveError::Unavailable`] when the environment cannot run it (nothing was left behind),
/// [`LiveError::Failed`] when a step failed, [`LiveError::Interrupted`] on `stop`.
pub fn run(o: &LiveOptions, stop: &Arc<AtomicBool>) -> Result<LiveSummary, LiveError> {
    for gone in netns::cleanup_stale() {
        tracing::info!("removed stale namespace {gone}");
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(LiveError::Unavailable("/dev/net/tun is missing".into()));
    }
    let progress = Progress::new(o.progress);
    let ns_a = Netns::create(&netns::name("a"))?;
    let ns_b = Netns::create(&netns::name("b"))?;
    let pid = std::process::id();
    let (tap_a_name, tap_b_name) = (format!("insA{pid}"), format!("insB{pid}"));
    let tap_a = open_tap(&tap_a_name)?;
    let tap_b = open_tap(&tap_b_name)?;
    let v6 = |own: &'static str, peer: &'static str| o.ipv6.then_some((own, peer));
    setup_tap(
        &ns_a,
        &tap_a_name,
        LINUX_MAC_A,
        "192.0.2.1/24",
        "192.0.2.2",
        LINUX_MAC_B,
        v6("2001:db8::1/64", "2001:db8::2"),
    )?;
    setup_tap(
        &ns_b,
        &tap_b_name,
        LINUX_MAC_B,
        "192.0.2.2/24",
        "192.0.2.1",
        LINUX_MAC_A,
        v6("2001:db8::2/64", "2001:db8::1"),
    )?;
    if stop.load(Ordering::Relaxed) {
        return Err(LiveError::Interrupted);
    }

    // The emulated hosts: in-memory wire between the NICs, A's port counted and captured.
    let file = std::fs::File::create(&o.pcap)
        .map_err(|e| LiveError::Failed(format!("{}: {e}", o.pcap.display())))?;
    let sink = Arc::new(Mutex::new(LimitWriter::new(
        BufWriter::new(file),
        o.pcap_limit,
    )));
    let mut cfg = TopologyConfig::standard();
    cfg.tick = Duration::ZERO;
    cfg.capture = Capture::Writer(Box::new(SharedSink(Arc::clone(&sink))));
    for h in [&mut cfg.a, &mut cfg.b] {
        h.offload = !o.software;
        h.buffers = 1024;
    }
    let counters = Arc::new(WireCounters::default());
    let (wa, wb) = MemWire::pair();
    let mut net = TwoHosts::with_wires(cfg, Counting::new(wa, Arc::clone(&counters)), wb)
        .map_err(|e| LiveError::Failed(format!("hosts: {e}")))?;
    let (ka, kb) = key_seeds();
    let sa_opts = ManualSaOptions {
        ipv6: o.ipv6,
        algorithms: o.algorithms,
        mode: o.mode,
        key_a_in: ka,
        key_b_in: kb,
        key_a_out: kb,
        ..ManualSaOptions::default()
    };
    let sa =
        manual_sa(&mut net, &sa_opts).map_err(|e| LiveError::Failed(format!("manual SA: {e}")))?;
    net.a.stack_mut().set_external(true);
    net.b.stack_mut().set_external(true);
    write_sa_config(&o.sa_config, &sa_config_text(&sa_opts, &sa))?;
    let mut side_a = HostSide::new(tap_a, LINUX_MAC_A, LINUX_MAC_B);
    let mut side_b = HostSide::new(tap_b, LINUX_MAC_B, LINUX_MAC_A);

    let scenario = Scenario {
        ns_a: ns_a.name().to_owned(),
        ns_b: ns_b.name().to_owned(),
        dst: if o.ipv6 { B_V6.into() } else { B_V4.into() },
        seconds: o.seconds,
        udp_rate: o.udp_rate.clone(),
        builtin: o.builtin_load,
        exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ipsec-nic")),
        stop: Arc::clone(stop),
        progress: progress.clone(),
    };
    let start = Instant::now();
    let mut pump = |net: &mut TwoHosts| -> usize {
        let elapsed = start.elapsed();
        if elapsed > net.now() {
            net.advance(elapsed - net.now());
        }
        let now = net.now();
        let mut moved = side_a.ingress(now, net.a.stack_mut()).unwrap_or(0);
        moved += side_b.ingress(now, net.b.stack_mut()).unwrap_or(0);
        moved += net.step();
        moved += side_a.egress(now, net.a.stack_mut()).unwrap_or(0);
        moved += side_b.egress(now, net.b.stack_mut()).unwrap_or(0);
        moved
    };
    // Offload happens in the polls: a few rounds before traffic.
    for _ in 0..10 {
        pump(&mut net);
    }
    let worker = std::thread::spawn(move || scenario.run());
    let mut idle = 0u32;
    while !worker.is_finished() {
        if pump(&mut net) == 0 {
            idle = idle.saturating_add(1);
            std::thread::sleep(Duration::from_micros(if idle > 200 { 1000 } else { 50 }));
        } else {
            idle = 0;
        }
    }
    // Let the last frames settle.
    for _ in 0..20 {
        pump(&mut net);
    }
    progress.finish();
    let res = worker
        .join()
        .map_err(|_| LiveError::Failed("traffic thread panicked".into()))?;
    if stop.load(Ordering::Relaxed) {
        return Err(LiveError::Interrupted);
    }
    let uptime = start.elapsed().as_secs_f64();
    let mut hosts = vec![host_counters(&net.a, uptime), host_counters(&net.b, uptime)];
    for (h, side) in hosts.iter_mut().zip([side_a.stats(), side_b.stats()]) {
        h.extra = [
            ("linux_to_stack", side.to_stack),
            ("stack_refused", side.stack_refused),
            ("ignored_from_linux", side.ignored),
            ("arp_replies", side.arp_replies),
            ("stack_to_linux", side.to_linux),
            ("tap_errors", side.tap_errors),
            ("port_errors", side.port_errors),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
    }
    drop(net); // flushes the capture
    let truncated = {
        let mut g = sink.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = std::io::Write::flush(&mut *g);
        g.truncated()
    };
    let wire: std::collections::BTreeMap<String, u64> = counters
        .snapshot()
        .iter()
        .map(|(n, v)| ((*n).to_owned(), *v))
        .collect();
    let mut notes = res.notes;
    if let Some(e) = &res.error {
        notes.push(format!("traffic: {e}"));
    }
    let esp_ok = res.runs.iter().any(|t| t.bytes > 0)
        && wire.get("esp").copied().unwrap_or(0) + wire.get("ah").copied().unwrap_or(0) > 0;
    // Transport mode exempts ICMP from the policy (it must cross in clear); tunnel mode's
    // policy covers every protocol between the hosts (it must cross protected).
    let icmp_clear = wire.get("icmp_clear").copied().unwrap_or(0);
    let ping_clear = icmp_clear >= u64::from(res.ping.received) * 2 && icmp_clear > 0;
    let ping_ok = res.ping.received == res.ping.sent
        && res.ping.sent > 0
        && (ping_clear == (o.mode == SaMode::Transport));
    Ok(LiveSummary {
        mode: "namespaces".into(),
        protection: protection(o.algorithms).into(),
        ping_clear,
        algorithm: format!("{:?}", o.algorithms),
        ipsec_mode: format!("{:?}", o.mode).to_ascii_lowercase(),
        offload: !o.software,
        namespaces: vec![ns_a.name().to_owned(), ns_b.name().to_owned()],
        spis: vec![
            ("A".into(), format!("{:#010x}", sa.a.spi)),
            ("B".into(), format!("{:#010x}", sa.b.spi)),
        ],
        ping: res.ping,
        throughput: res.runs,
        hosts,
        wire,
        pcap: o.pcap.display().to_string(),
        pcap_truncated: truncated,
        sa_config: o.sa_config.display().to_string(),
        notes,
        ok: esp_ok && ping_ok && res.error.is_none(),
    })
}

fn write_sa_config(path: &Path, text: &str) -> Result<(), LiveError> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| LiveError::Failed(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| LiveError::Failed(format!("{}: {e}", path.display())))
}

/// A capture sink shared with the code that reports on it.
struct SharedSink(Arc<Mutex<LimitWriter<BufWriter<std::fs::File>>>>);

impl std::io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

/// The human-readable summary (no key bytes).
pub fn render(s: &LiveSummary) -> String {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "ipsec-nic demo: real Linux traffic through two emulated hosts (namespaces {})",
        s.namespaces.join(", ")
    );
    let _ = writeln!(
        r,
        "manual SA {} {} mode, {}; inbound SPIs: {}",
        s.algorithm,
        s.ipsec_mode,
        if s.offload {
            "offloaded to the NICs"
        } else {
            "software IPsec (--software)"
        },
        s.spis
            .iter()
            .map(|(h, spi)| format!("{h} {spi}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        r,
        "ping A -> B: {}/{} replies, {}: {}",
        s.ping.received,
        s.ping.sent,
        if s.ping_clear {
            "in clear (ICMP is exempt from the policy)"
        } else {
            "protected (the tunnel policy covers ICMP)"
        },
        if s.ping.received == s.ping.sent {
            "ok"
        } else {
            "FAILED"
        }
    );
    for t in &s.throughput {
        let lost = t
            .lost_percent
            .map(|l| format!(", {l:.2} % lost"))
            .unwrap_or_default();
        let _ = writeln!(
            r,
            "{} {} through {}: {:.1} Mbit/s ({} bytes in {:.1} s{lost})",
            t.tool, t.test, s.protection, t.mbit_s, t.bytes, t.seconds
        );
    }
    for h in &s.hosts {
        r.push_str(&super::stats::render(h));
    }
    let _ = writeln!(
        r,
        "wire (A's port): {}",
        s.wire
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for n in &s.notes {
        let _ = writeln!(r, "note: {n}");
    }
    let _ = writeln!(
        r,
        "capture: {}{}",
        s.pcap,
        if s.pcap_truncated {
            " (stopped at its size limit)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        r,
        "SA config (keys, file only): {}  ->  ipsec-nic sa export --wireshark --config {}",
        s.sa_config, s.sa_config
    );
    let _ = writeln!(r, "result: {}", if s.ok { "OK" } else { "FAILED" });
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decision_falls_back_only_when_unavailable() {
        assert_eq!(decide(false, None), Decision::Namespaces);
        assert_eq!(decide(true, None), Decision::InMemoryRequested);
        let un = LiveError::Unavailable("no CAP_NET_ADMIN".into());
        assert_eq!(decide(false, Some(&un)), Decision::InMemoryFallback);
        assert_eq!(
            decide(false, Some(&LiveError::Failed("x".into()))),
            Decision::Fail
        );
        assert_eq!(decide(false, Some(&LiveError::Interrupted)), Decision::Fail);
        assert!(fallback_message("x").starts_with("not root / no CAP_NET_ADMIN"));
        let e: LiveError = netns::classify("ip netns add", "Operation not permitted").into();
        assert_eq!(decide(false, Some(&e)), Decision::InMemoryFallback);
    }

    #[test]
    fn sa_config_matches_the_installed_sas_and_decrypts_the_in_memory_capture() {
        // Run the Manual SA over the in-memory wire, write A's view as a config, and decap
        // the capture with it: every ESP frame B -> A verifies (right SPIs, right keys).
        for alg in [
            Algorithms::AesGcm128,
            Algorithms::AesCbc128HmacSha256,
            Algorithms::AesGcm128ThenAhSha1,
        ] {
            let opts = ManualSaOptions {
                algorithms: alg,
                key_a_in: 0x3b,
                key_b_in: 0x7d,
                key_a_out: 0x7d,
                ..ManualSaOptions::default()
            };
            let mut net = TwoHosts::standard().unwrap();
            let sa = manual_sa(&mut net, &opts).unwrap();
            net.drive().unwrap();
            let (a, b) = (A_V4.into(), B_V4.into());
            for i in 0..3u8 {
                let now = net.now();
                net.a
                    .stack_mut()
                    .send_udp(
                        now,
                        core::net::SocketAddr::new(a, 7),
                        core::net::SocketAddr::new(b, 9),
                        &[i; 40],
                    )
                    .unwrap();
                net.b
                    .stack_mut()
                    .send_udp(
                        now,
                        core::net::SocketAddr::new(b, 9),
                        core::net::SocketAddr::new(a, 7),
                        &[i; 40],
                    )
                    .unwrap();
            }
            net.drive().unwrap();
            let text = sa_config_text(&opts, &sa);
            let file = crate::cli::config::parse("demo.toml", &text).unwrap();
            assert_eq!(file.sas.len(), 2);
            if alg.has_ah() {
                continue;
            }
            let cap = crate::cli::pcap::parse(&net.capture().unwrap().bytes()).unwrap();
            let (_, rep) =
                crate::cli::process::process(&file, &cap, crate::cli::process::Op::Decap, true)
                    .unwrap();
            assert_eq!(rep.processed, 3, "{alg:?}: {:?}", rep.dropped);
            assert!(rep.dropped.is_empty(), "{alg:?}: {:?}", rep.dropped);
        }
    }

    #[test]
    fn tool_outputs_parse() {
        let ping = "PING 192.0.2.2 (192.0.2.2) 56(84) bytes of data.\n\n--- 192.0.2.2 ping statistics ---\n3 packets transmitted, 2 received, 33.3333% packet loss, time 402ms\n";
        assert_eq!(parse_ping_received(ping), Some(2));
        assert_eq!(parse_ping_received("nothing"), None);
        let tcp = r#"{"end":{"sum_sent":{"bytes":1000,"bits_per_second":9e6,"seconds":1.0},"sum_received":{"bytes":900,"bits_per_second":8e6,"seconds":1.0}}}"#;
        let t = parse_iperf3(tcp, "tcp").unwrap();
        assert_eq!((t.bytes, t.mbit_s, t.lost_percent), (900, 8.0, None));
        let udp = r#"{"end":{"sum":{"bytes":500,"bits_per_second":4e6,"seconds":1.0,"lost_percent":1.5}}}"#;
        let t = parse_iperf3(udp, "udp").unwrap();
        assert_eq!((t.bytes, t.mbit_s, t.lost_percent), (500, 4.0, Some(1.5)));
        let err = r#"{"start":{},"error":"unable to connect to server: Connection refused"}"#;
        assert!(
            parse_iperf3(err, "tcp")
                .unwrap_err()
                .contains("unable to connect")
        );
        assert!(parse_iperf3("garbage", "tcp").is_err());
        assert_eq!(rate_mbit("200M"), 200.0);
        assert_eq!(rate_mbit("1G"), 1000.0);
        assert_eq!(rate_mbit("500K"), 0.5);
    }

    #[test]
    fn algorithm_names_parse_to_every_variant() {
        for (n, a) in ALGORITHM_NAMES.iter().zip(Algorithms::ALL) {
            assert_eq!(parse_algorithm(n), Ok(a));
        }
        assert_eq!(parse_algorithm(" AES-GCM-128 "), Ok(Algorithms::AesGcm128));
        assert!(parse_algorithm("des").unwrap_err().contains("aes-gcm-128"));
    }

    #[test]
    fn key_seeds_differ_and_are_nonzero() {
        let (a, b) = key_seeds();
        assert!(a != 0 && b != 0 && a != b);
    }
}
