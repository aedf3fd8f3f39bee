//! Real-traffic tests of the `ipsec-nic` binary: `demo` through two network namespaces, the
//! Wireshark interop of its capture, clean-up after an interrupt, the non-root fallback, and
//! two `run` processes whose wire TAPs are joined by a Linux bridge.
//!
//! They need root (CAP_NET_ADMIN), `/dev/net/tun` and iproute2: without them each test prints
//! a loud SKIPPED line and passes, except with `CI=true`, where a missing capability fails.
//! The tests run one at a time (a lock): each spawns real traffic on a small machine.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ipsec_nic::cli::{config, pcap};

const BIN: &str = env!("CARGO_BIN_EXE_ipsec-nic");

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn has_cap_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the test may run; otherwise prints SKIPPED (or panics under CI=true).
fn privileged(test: &str) -> bool {
    let why = if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun is missing")
    } else if !has_cap_net_admin() {
        Some("no CAP_NET_ADMIN")
    } else if !have("ip", "-V") {
        Some("iproute2 `ip` is missing")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "{test}: CI=true but the test cannot run: {why}"
            );
            eprintln!("\n*** SKIPPED (needs CAP_NET_ADMIN): {test}: {why} ***\n");
            false
        }
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ipsec-nic-live-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network namespace deleted on drop.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        ip(&["netns", "add", &name]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The hex key strings of an SA config file.
fn keys_of(sa_config: &Path) -> Vec<String> {
    let t = std::fs::read_to_string(sa_config).expect("SA config written");
    t.lines()
        .filter_map(|l| l.split_once("_key = \""))
        .map(|(_, v)| v.trim_end_matches('"').to_owned())
        .filter(|k| !k.is_empty())
        .collect()
}

fn ip_protocols(pcap_path: &Path) -> Vec<u8> {
    let cap = pcap::parse(&std::fs::read(pcap_path).expect("pcap")).expect("pcap parses");
    cap.records
        .iter()
        .filter_map(|r| match r.data.get(12..14) {
            Some([0x08, 0x00]) => r.data.get(23).copied(),
            Some([0x86, 0xdd]) => r.data.get(20).copied(),
            _ => None,
        })
        .collect()
}

fn run_demo(dir: &TempDir, extra: &[&str]) -> (Output, PathBuf, PathBuf) {
    let pcap_p = dir.path("demo.pcap");
    let sas = dir.path("demo.sas.toml");
    let mut c = Command::new(BIN);
    c.current_dir(&dir.0)
        .args([
            "demo",
            "--seconds",
            "1",
            "--udp-rate",
            "20M",
            "--pcap-limit-mib",
            "4",
        ])
        .arg("--pcap")
        .arg(&pcap_p)
        .arg("--sa-config")
        .arg(&sas)
        .args(extra);
    (c.output().expect("run demo"), pcap_p, sas)
}

#[test]
fn demo_passes_real_traffic_ping_clear_and_iperf_as_esp() {
    let test = "demo_passes_real_traffic_ping_clear_and_iperf_as_esp";
    if !privileged(test) {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("demo");
    let (o, pcap_p, sas) = run_demo(&dir, &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("real Linux traffic"), "{out}");
    assert!(out.contains("ping A -> B: 3/3 replies, in clear"), "{out}");
    assert!(out.contains("through ESP: "), "{out}");
    assert!(out.contains("Mbit/s"), "{out}");
    assert!(out.contains("SAs offloaded to the NIC:\n"), "{out}");
    assert!(out.contains("outbound  0x"), "{out}");
    assert!(out.contains("result: OK"), "{out}");
    // The wire: ESP frames, and the echo requests/replies in clear (IP protocol 1).
    let protos = ip_protocols(&pcap_p);
    assert!(
        protos.iter().filter(|&&p| p == 50).count() > 100,
        "{protos:?}"
    );
    let icmp = protos.iter().filter(|&&p| p == 1).count();
    assert!(icmp >= 6, "3 requests + 3 replies in clear: {icmp}");
    // The keys went to the SA config file only.
    let keys = keys_of(&sas);
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert!(
            !out.contains(k.as_str()) && !err.contains(k.as_str()),
            "key printed"
        );
        assert!(
            !out.contains(&k[..16]) && !err.contains(&k[..16]),
            "key bytes printed"
        );
    }
    let file = config::load(&sas).expect("the written SA config parses");
    assert_eq!(file.sas.len(), 2);
    // No namespace of the run is left.
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| n.starts_with("ipsecnic-"))
        .filter(|n| {
            n.strip_prefix("ipsecnic-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists())
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // --json, software IPsec: the benchmark's view.
    let (o, _, _) = run_demo(
        &dir,
        &["--json", "--software", "--algorithm", "null-hmac-sha256"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["mode"], "namespaces");
    assert_eq!(v["offload"], false);
    assert_eq!(v["algorithm"], "NullHmacSha256");
    assert_eq!(v["ok"], true);
    let tput = v["throughput"].as_array().expect("throughput array");
    assert!(!tput.is_empty());
    assert!(
        tput.iter()
            .all(|t| t["mbit_s"].as_f64().is_some_and(|m| m > 0.0)),
        "{tput:?}"
    );
    // Software path: the NICs hold no SA, the stacks protected the traffic.
    for h in v["hosts"].as_array().expect("hosts") {
        assert!(h["sas"].as_array().is_some_and(Vec::is_empty), "{h}");
        assert!(
            h["stack"]["protected_sent"].as_u64().is_some_and(|n| n > 0),
            "{h}"
        );
        assert_eq!(h["nic"]["tx_protected"], 0);
    }
}

fn tshark_args(uat_lines: &str) -> Vec<String> {
    let mut a = vec![
        "-o".to_owned(),
        "esp.enable_encryption_decode:TRUE".to_owned(),
        "-o".to_owned(),
        "esp.enable_authentication_check:TRUE".to_owned(),
    ];
    for l in uat_lines.lines().filter(|l| !l.trim().is_empty()) {
        a.push("-o".to_owned());
        a.push(format!("uat:esp_sa:{l}"));
    }
    a
}

#[test]
fn tshark_decrypts_the_demo_capture_with_the_exported_sas() {
    let test = "tshark_decrypts_the_demo_capture_with_the_exported_sas";
    if !privileged(test) {
        return;
    }
    if !have("tshark", "-v") {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "{test}: CI=true but tshark is missing (scripts/install-deps.sh)"
        );
        eprintln!("\n*** SKIPPED (needs tshark): {test} ***\n");
        return;
    }
    let _g = serial();
    let dir = TempDir::new("tshark");
    // AES-CBC + HMAC-SHA-256: tshark verifies the ICVs (it gives no verdict for GCM ICVs).
    let (o, pcap_p, sas) = run_demo(&dir, &["--algorithm", "aes-cbc-128-hmac-sha256"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let ex = Command::new(BIN)
        .args(["sa", "export", "--wireshark", "--config"])
        .arg(&sas)
        .output()
        .expect("sa export");
    assert!(ex.status.success());
    let lines = String::from_utf8_lossy(&ex.stdout).into_owned();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let v = Command::new("tshark")
        .arg("-r")
        .arg(&pcap_p)
        .args(["-c", "3000", "-V"])
        .args(tshark_args(&lines))
        .stderr(Stdio::null())
        .output()
        .expect("tshark");
    let t = String::from_utf8_lossy(&v.stdout);
    let correct = t.matches("[correct").count();
    let incorrect = t.matches("[incorrect").count();
    eprintln!("tshark: {correct} ICVs correct, {incorrect} incorrect");
    assert!(correct > 100, "{correct}");
    assert_eq!(incorrect, 0);

    // AES-GCM (the default): tshark decrypts the payload to TCP/UDP.
    let (o, pcap_p, sas) = run_demo(&dir, &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    let ex = Command::new(BIN)
        .args(["sa", "export", "--wireshark", "--config"])
        .arg(&sas)
        .output()
        .expect("sa export");
    let lines = String::from_utf8_lossy(&ex.stdout).into_owned();
    let f = Command::new("tshark")
        .arg("-r")
        .arg(&pcap_p)
        .args(["-c", "3000", "-T", "fields", "-e", "frame.protocols"])
        .args(tshark_args(&lines))
        .stderr(Stdio::null())
        .output()
        .expect("tshark");
    let t = String::from_utf8_lossy(&f.stdout);
    let esp = t.lines().filter(|l| l.contains(":esp")).count();
    let inner = t
        .lines()
        .filter(|l| l.contains(":esp:tcp") || l.contains(":esp:udp"))
        .count();
    assert!(esp > 100, "{esp}");
    assert_eq!(inner, esp, "every ESP frame decrypts to TCP/UDP");
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

#[test]
fn interrupted_demo_removes_its_namespaces() {
    let test = "interrupted_demo_removes_its_namespaces";
    if !privileged(test) {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("interrupt");
    let mut child = Command::new(BIN)
        .current_dir(&dir.0)
        .args([
            "demo",
            "--seconds",
            "30",
            "--udp-rate",
            "5M",
            "--pcap-limit-mib",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let pid = child.id();
    let mine = |n: &String| n.starts_with(&format!("ipsecnic-{pid}-"));
    let t0 = Instant::now();
    while namespaces().iter().filter(|n| mine(n)).count() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "namespaces never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Into the traffic phase, then Ctrl-C.
    std::thread::sleep(Duration::from_millis(1500));
    signal(pid, "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("demo exits after SIGINT");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(!status.success(), "an interrupted demo reports failure");
    assert!(err.contains("interrupted"), "{err}");
    let left: Vec<_> = namespaces().into_iter().filter(|n| mine(n)).collect();
    assert!(left.is_empty(), "{left:?}");
    // The TAPs lived in the namespaces: gone too.
    for tap in [format!("insA{pid}"), format!("insB{pid}")] {
        let st = Command::new("ip")
            .args(["link", "show", &tap])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ip");
        assert!(!st.success(), "{tap} still exists");
    }
    // No iperf3 / ping of the run survives (they ran in the deleted namespaces).
    std::thread::sleep(Duration::from_millis(200));
    for pattern in [
        "iperf3 -s -1 -B 192.0.2.2",
        "iperf3 -c 192.0.2.2",
        "ping -c 3 -i 0.2",
    ] {
        let st = Command::new("pgrep")
            .args(["-f", pattern])
            .stdout(Stdio::null())
            .status()
            .expect("pgrep");
        assert!(!st.success(), "{pattern:?} survives the demo");
    }
}

#[test]
fn without_net_admin_the_demo_falls_back_to_the_in_memory_wire() {
    let test = "without_net_admin_the_demo_falls_back_to_the_in_memory_wire";
    if !privileged(test) {
        return;
    }
    if !have("setpriv", "--version") {
        eprintln!("\n*** SKIPPED (needs setpriv): {test} ***\n");
        return;
    }
    let _g = serial();
    let dir = TempDir::new("fallback");
    // Root without CAP_NET_ADMIN / CAP_SYS_ADMIN (dropped from the bounding set).
    let o = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-net_admin,-sys_admin",
            "--inh-caps",
            "-all",
        ])
        .arg(BIN)
        .args(["demo", "--pcap"])
        .arg(dir.path("fallback.pcap"))
        .current_dir(&dir.0)
        .output()
        .expect("setpriv");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        err.contains(
            "not root / no CAP_NET_ADMIN: running the same scenario over the in-memory wire"
        ),
        "{err}"
    );
    assert!(
        out.contains("UDP: 10/10 delivered; ping: 3/3 replies"),
        "{out}"
    );
    let protos = ip_protocols(&dir.path("fallback.pcap"));
    assert!(protos.contains(&50), "{protos:?}");
}

fn host_toml(me: char, ns: &str, wire_tap: &str, k_out: &str, k_in: &str) -> String {
    let (own, peer, own_mac, peer_mac, spi_out, spi_in) = if me == 'a' {
        (
            "192.0.2.1",
            "192.0.2.2",
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            0x2001,
            0x2002,
        )
    } else {
        (
            "192.0.2.2",
            "192.0.2.1",
            "02:00:00:00:00:02",
            "02:00:00:00:00:01",
            0x2002,
            0x2001,
        )
    };
    format!(
        r#"[host]
name = "live-{me}-{pid}"
mac = "{own_mac}"
addresses = ["{own}/24"]
neighbors = {{ "{peer}" = "{peer_mac}" }}
wire_tap = "{wire_tap}"
namespace = "{ns}"

[[sa]]
spi = {spi_out:#x}
direction = "outbound"
protocol = "esp"
local = "{own}"
remote = "{peer}"
encryption = "aes-gcm-128"
encryption_key = "{k_out}"

[[sa]]
spi = {spi_in:#x}
direction = "inbound"
protocol = "esp"
local = "{own}"
remote = "{peer}"
encryption = "aes-gcm-128"
encryption_key = "{k_in}"
"#,
        pid = std::process::id()
    )
}

fn read_stats(file: &Path) -> serde_json::Value {
    let o = Command::new(BIN)
        .args(["stats", "--json", "--file"])
        .arg(file)
        .output()
        .expect("stats");
    assert!(o.status.success(), "{:?}", text(&o));
    serde_json::from_slice(&o.stdout).expect("stats --json prints JSON")
}

fn sa_packets(stats: &serde_json::Value, direction: &str) -> u64 {
    stats["sas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["direction"] == direction)
        .filter_map(|s| s["packets"].as_u64())
        .sum()
}

#[test]
fn two_run_processes_over_a_bridge_protect_real_traffic() {
    let test = "two_run_processes_over_a_bridge_protect_real_traffic";
    if !privileged(test) {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("run");
    let pid = std::process::id();
    let wire = Netns::new(format!("ipsnt-{pid}-w"));
    let ns_a = Netns::new(format!("ipsnt-{pid}-a"));
    let ns_b = Netns::new(format!("ipsnt-{pid}-b"));
    // The wire: a bridge (STP off, IPv6 off) with two persistent TAPs the hosts attach to.
    let (tap_a, tap_b) = (format!("rwa{pid}"), format!("rwb{pid}"));
    let sysctl = |dev: &str| {
        let _ = Command::new("ip")
            .args(["netns", "exec", &wire.0, "sysctl", "-q", "-w"])
            .arg(format!("net.ipv6.conf.{dev}.disable_ipv6=1"))
            .status();
    };
    ip(&[
        "-n",
        &wire.0,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
    ]);
    sysctl("br0");
    ip(&["-n", &wire.0, "link", "set", "br0", "up"]);
    for t in [&tap_a, &tap_b] {
        ip(&["-n", &wire.0, "tuntap", "add", "dev", t, "mode", "tap"]);
        sysctl(t);
        ip(&["-n", &wire.0, "link", "set", t, "master", "br0"]);
        ip(&["-n", &wire.0, "link", "set", t, "up"]);
    }
    let (k1, k2) = ("4a".repeat(20), "b5".repeat(20));
    let cfg_a = dir.path("a.toml");
    let cfg_b = dir.path("b.toml");
    std::fs::write(&cfg_a, host_toml('a', &ns_a.0, &tap_a, &k1, &k2)).expect("write");
    std::fs::write(&cfg_b, host_toml('b', &ns_b.0, &tap_b, &k2, &k1)).expect("write");
    let (st_a, st_b) = (dir.path("a.json"), dir.path("b.json"));
    let spawn = |cfg: &Path, st: &Path| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &wire.0,
                BIN,
                "run",
                "--seconds",
                "60",
                "--config",
            ])
            .arg(cfg)
            .arg("--stats-file")
            .arg(st)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn run")
    };
    let mut run_a = spawn(&cfg_a, &st_a);
    let mut run_b = spawn(&cfg_b, &st_b);
    let t0 = Instant::now();
    while !(st_a.exists() && st_b.exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the hosts never started: {:?} {:?}",
            run_a.try_wait(),
            run_b.try_wait()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ping A -> B (the installed policy protects every protocol between the hosts); the
    // bridge ports may need a moment: retry.
    let mut ping_ok = false;
    for _ in 0..10 {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns_a.0,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                "192.0.2.2",
            ])
            .output()
            .expect("ping");
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains(" 3 received") {
            ping_ok = true;
            break;
        }
    }
    assert!(ping_ok, "ping A -> B through the two run processes failed");
    // UDP A -> B with the built-in generator.
    let recv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_b.0,
            BIN,
            "__udp-recv",
            "--bind",
            "192.0.2.2:7000",
        ])
        .args(["--seconds", "10", "--expect", "50", "--idle", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("udp recv");
    std::thread::sleep(Duration::from_millis(300));
    let send = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_a.0,
            BIN,
            "__udp-send",
            "--to",
            "192.0.2.2:7000",
        ])
        .args(["--seconds", "1", "--size", "300", "--rate-mbit", "0.5"])
        .output()
        .expect("udp send");
    assert!(send.status.success(), "{:?}", text(&send));
    let got = recv.wait_with_output().expect("udp recv");
    let rx: serde_json::Value = serde_json::from_slice(&got.stdout).expect("receiver JSON");
    assert_eq!(rx["packets"], 50, "{rx}");
    // The counters (the stats file is rewritten every second).
    std::thread::sleep(Duration::from_millis(1300));
    let (sa, sb) = (read_stats(&st_a), read_stats(&st_b));
    assert!(sa_packets(&sa, "outbound") >= 53, "{sa}");
    assert!(sa_packets(&sb, "inbound") >= 53, "{sb}");
    assert!(
        sa_packets(&sb, "outbound") >= 3,
        "echo replies protected: {sb}"
    );
    assert!(
        sa["nic"]["tx_protected"].as_u64().is_some_and(|n| n >= 53),
        "{sa}"
    );
    assert!(sb["nic"]["rx_ok"].as_u64().is_some_and(|n| n >= 53), "{sb}");
    assert_eq!(sb["drops"]["ipsec.authentication_failures_on_inbound"], 0);
    assert_eq!(sa["extra"]["running"], 1);
    let table = Command::new(BIN)
        .args(["stats", "--file"])
        .arg(&st_a)
        .output()
        .expect("stats");
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("SAs offloaded to the NIC:") && t.contains("0x00002001"),
        "{t}"
    );

    // SIGTERM stops both; the host-side TAPs disappear from the namespaces.
    for c in [&run_a, &run_b] {
        signal(c.id(), "-TERM");
    }
    for c in [&mut run_a, &mut run_b] {
        let st = wait_exit(c, Duration::from_secs(10)).expect("run exits on SIGTERM");
        assert!(st.success(), "{st:?}");
    }
    for ns in [&ns_a, &ns_b] {
        let o = Command::new("ip")
            .args(["-n", &ns.0, "-o", "link"])
            .output()
            .expect("ip link");
        let links = String::from_utf8_lossy(&o.stdout);
        assert!(!links.contains("ipsh"), "{links}");
    }
    assert_eq!(read_stats(&st_a)["extra"]["running"], 0);
}

#[test]
fn run_refuses_a_bad_host_config_before_touching_anything() {
    // No privilege needed: the config is checked before any TAP or namespace exists.
    let dir = TempDir::new("badcfg");
    let good = host_toml(
        'a',
        "unused-ns",
        "rwbad0",
        &"11".repeat(20),
        &"22".repeat(20),
    );
    let cases = [
        (good.replace("[host]\n", "[nothost]\n"), "bad.toml: "),
        (
            good.replace("mac = \"02:00:00:00:00:01\"", "mac = \"zz\""),
            "bad.toml: [host]: mac: expected aa:bb:cc:dd:ee:ff",
        ),
        (
            good.replace(
                "wire_tap = \"rwbad0\"",
                "wire_tap = \"rwbad0\"\nhost_tap = \"rwbad0\"",
            ),
            "bad.toml: [host]: namespace: give either host_tap or namespace",
        ),
    ];
    for (body, want) in cases {
        std::fs::write(dir.path("bad.toml"), &body).expect("write");
        let o = Command::new(BIN)
            .current_dir(&dir.0)
            .args(["run", "--seconds", "1", "--config", "bad.toml"])
            .output()
            .expect("run");
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{out}");
        assert!(err.contains(want), "want {want:?}: {err}");
    }
    // Nothing was created.
    let st = Command::new("ip")
        .args(["link", "show", "rwbad0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(!st.is_ok_and(|s| s.success()), "rwbad0 was created");
    std::fs::write(
        dir.path("nohost.toml"),
        &good[good.find("[[sa]]").expect("sa")..],
    )
    .expect("write");
    let o = Command::new(BIN)
        .current_dir(&dir.0)
        .args(["run", "--config", "nohost.toml"])
        .output()
        .expect("run");
    assert!(
        text(&o).1.contains("nohost.toml: no [host] section"),
        "{:?}",
        text(&o)
    );
}
