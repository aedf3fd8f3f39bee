//! Integration tests of the `ipsec-nic` command-line tool: config errors, the Wireshark
//! export, pcap encap/decap (round trip, software == offload, pass-through, corrupt input).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use ipsec_nic::cli::{config, export, pcap, process};

const GCM_KEY: &str = "000102030405060708090a0b0c0d0e0f10111213";

fn sa_a() -> String {
    format!(
        r#"
[[sa]]
spi = 0x1001
direction = "outbound"
protocol = "esp"
local = "192.0.2.1"
remote = "192.0.2.2"
encryption = "aes-gcm-128"
encryption_key = "{GCM_KEY}"
sequence = 5

[[sa]]
spi = 0x2001
direction = "outbound"
protocol = "esp"
local = "2001:db8::1"
remote = "2001:db8::2"
encryption = "aes-cbc-128"
integrity = "hmac-sha256-128"
encryption_key = "000102030405060708090a0b0c0d0e0f"
integrity_key = "{k32}"

[[sa]]
spi = 0x3001
direction = "outbound"
protocol = "ah"
local = "198.51.100.1"
remote = "198.51.100.2"
integrity = "hmac-sha1-96"
integrity_key = "{k20}"
"#,
        k32 = "11".repeat(32),
        k20 = "22".repeat(20)
    )
}

/// B's view: the same SAs inbound.
fn sa_b() -> String {
    sa_a()
        .replace("\"outbound\"", "\"inbound\"")
        .replace(
            "local = \"192.0.2.1\"\nremote = \"192.0.2.2\"",
            "local = \"192.0.2.2\"\nremote = \"192.0.2.1\"",
        )
        .replace(
            "local = \"2001:db8::1\"\nremote = \"2001:db8::2\"",
            "local = \"2001:db8::2\"\nremote = \"2001:db8::1\"",
        )
        .replace(
            "local = \"198.51.100.1\"\nremote = \"198.51.100.2\"",
            "local = \"198.51.100.2\"\nremote = \"198.51.100.1\"",
        )
}

fn udp4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&ip);
    let ul = 8 + payload.len();
    f.extend_from_slice(&[0x13, 0x88, 0x17, 0x70, (ul >> 8) as u8, ul as u8, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    let ul = 8 + payload.len();
    f.extend_from_slice(&[0x60, 0, 0, 0, (ul >> 8) as u8, ul as u8, 17, 64]);
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = 1;
    f.extend_from_slice(&a);
    a[15] = 2;
    f.extend_from_slice(&a);
    f.extend_from_slice(&[0x13, 0x88, 0x17, 0x70, (ul >> 8) as u8, ul as u8, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn plain() -> pcap::Capture {
    let mut records = Vec::new();
    let mut push = |data: Vec<u8>| {
        let n = records.len() as u32;
        records.push(pcap::Record {
            ts_sec: 1000 + n,
            ts_frac: 0,
            orig_len: data.len() as u32,
            data,
        })
    };
    for i in 0..6u8 {
        push(udp4(
            [192, 0, 2, 1],
            [192, 0, 2, 2],
            &vec![i; 10 + usize::from(i) * 7],
        ));
    }
    push(udp6(b"hello over v6"));
    push(udp4([198, 51, 100, 1], [198, 51, 100, 2], b"ah protected"));
    // No SA: other addresses, and an ARP-like frame.
    push(udp4([203, 0, 113, 1], [203, 0, 113, 2], b"not protected"));
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    push(arp);
    pcap::Capture {
        nanos: false,
        snaplen: 65535,
        records,
    }
}

/// The parts of a report that must not depend on the crypto path.
#[allow(clippy::type_complexity)]
fn summary(
    r: &process::Report,
) -> (
    u64,
    u64,
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
    Vec<(usize, String)>,
    BTreeMap<u32, (u64, u64)>,
) {
    (
        r.processed,
        r.passed,
        r.passed_by_reason.clone(),
        r.drops.clone(),
        r.dropped.clone(),
        r.per_sa.clone(),
    )
}

fn parse(text: &str) -> config::SaFile {
    config::parse("sas.toml", text).expect("valid config")
}

#[test]
fn round_trip_software_equals_offload_and_pass_through() {
    let a = parse(&sa_a());
    let b = parse(&sa_b());
    let input = plain();
    let (hw, rep) = process::process(&a, &input, process::Op::Encap, false).expect("encap");
    let (sw, rep_sw) = process::process(&a, &input, process::Op::Encap, true).expect("encap sw");
    assert_eq!(
        pcap::write(&hw),
        pcap::write(&sw),
        "software and offload bytes differ"
    );
    assert_eq!(summary(&rep), summary(&rep_sw));
    assert_eq!((rep.processed, rep.passed, rep.dropped.len()), (8, 2, 0));
    assert_eq!(rep.per_sa.get(&0x1001).map(|x| x.0), Some(6));
    // Frame i stays frame i; unmatched frames pass unchanged; MACs kept; protocols right.
    assert_eq!(hw.records.len(), input.records.len());
    for (i, (o, p)) in hw.records.iter().zip(&input.records).enumerate() {
        assert_eq!(o.data[..12], p.data[..12], "frame {i} MACs");
        assert_eq!(o.ts_sec, p.ts_sec);
    }
    assert_eq!(hw.records[8], input.records[8]);
    assert_eq!(hw.records[9], input.records[9]);
    assert_eq!(hw.records[0].data[14 + 9], 50);
    assert_eq!(hw.records[6].data[12..14], [0x86, 0xdd]);
    assert_eq!(hw.records[6].data[14 + 6], 50);
    assert_eq!(hw.records[7].data[14 + 9], 51);
    // The sequence starts at the config's `sequence` (5).
    assert_eq!(hw.records[0].data[14 + 20 + 4..14 + 20 + 8], [0, 0, 0, 5]);
    assert_eq!(hw.records[1].data[14 + 20 + 4..14 + 20 + 8], [0, 0, 0, 6]);

    for software in [false, true] {
        let (back, rep) = process::process(&b, &hw, process::Op::Decap, software).expect("decap");
        assert_eq!(
            (rep.processed, rep.passed, rep.dropped.len()),
            (8, 2, 0),
            "{software}"
        );
        assert_eq!(back, input, "decap(encap(x)) != x (software {software})");
    }
}

#[test]
fn decap_drops_tampered_and_replayed_frames() {
    let a = parse(&sa_a());
    let b = parse(&sa_b());
    let mut input = plain();
    input.records.truncate(2);
    let (mut esp, _) = process::process(&a, &input, process::Op::Encap, false).expect("encap");
    let replay = esp.records[0].clone();
    esp.records.push(replay);
    let last = esp.records[1].data.len() - 1;
    esp.records[1].data[last] ^= 1;
    for software in [false, true] {
        let (out, rep) = process::process(&b, &esp, process::Op::Decap, software).expect("decap");
        assert_eq!(out.records.len(), 1);
        assert_eq!(rep.dropped.len(), 2, "{software}: {:?}", rep.dropped);
        // Frame numbers are 1-based (Wireshark's): frame 2 tampered, frame 3 a replay of 1.
        assert_eq!(rep.dropped[0].0, 2);
        assert!(rep.dropped[0].1.contains("ICV"), "{:?}", rep.dropped);
        assert_eq!(rep.dropped[1].0, 3);
        assert!(rep.dropped[1].1.contains("replay"), "{:?}", rep.dropped);
    }
}

fn err_of(text: &str) -> String {
    config::parse("sas.toml", text)
        .expect_err("must be refused")
        .to_string()
}

const BASE: &str = "spi = 0x1003\ndirection = \"outbound\"\nprotocol = \"esp\"\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\n";

fn sa_with(extra: &str) -> String {
    let ok =
        format!("[[sa]]\n{BASE}encryption = \"aes-gcm-128\"\nencryption_key = \"{GCM_KEY}\"\n");
    format!("{ok}\n{ok}\n[[sa]]\n{BASE}{extra}\n")
}

#[test]
fn config_errors_name_file_sa_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "encryption = \"aes-gcm-128\"\nencryption_key = \"00112233445566778899aabbccddeeff\"",
            "sas.toml: sa[2] (spi 0x1003): encryption_key: expected 20 bytes for aes-gcm-128 (16-byte key + 4-byte salt), got 16",
        ),
        (
            "encryption = \"aes-gcm-512\"",
            "sas.toml: sa[2] (spi 0x1003): encryption: unknown algorithm \"aes-gcm-512\"",
        ),
        (
            "encryption = \"aes-cbc-128\"\nencryption_key = \"000102030405060708090a0b0c0d0e0f\"",
            "sas.toml: sa[2] (spi 0x1003): encryption/integrity: ESP without integrity protection is refused",
        ),
        (
            "encryption = \"aes-gcm-128\"\nencryption_key = \"zz\"",
            "sas.toml: sa[2] (spi 0x1003): encryption_key: not a hex string",
        ),
        (
            "integrity = \"hmac-sha1-96\"\nintegrity_key = \"0011\"\nencryption = \"null\"",
            "sas.toml: sa[2] (spi 0x1003): integrity_key: expected 20 bytes for hmac-sha1-96, got 2",
        ),
        (
            "mode = \"tunnel\"\nencryption = \"aes-gcm-128\"\nencryption_key = \"000102030405060708090a0b0c0d0e0f10111213\"",
            "sas.toml: sa[2] (spi 0x1003): tunnel_local: required in tunnel mode",
        ),
        (
            "tunnel_local = \"203.0.113.1\"\nencryption = \"aes-gcm-128\"",
            "sas.toml: sa[2] (spi 0x1003): tunnel_local: only allowed in tunnel mode",
        ),
        (
            "replay_window = 8\nencryption = \"aes-gcm-128\"\nencryption_key = \"000102030405060708090a0b0c0d0e0f10111213\"",
            "sas.toml: sa[2] (spi 0x1003): replay_window: must be 32..=65536, got 8",
        ),
        (
            "sequence = 0x100000000\nencryption = \"aes-gcm-128\"\nencryption_key = \"000102030405060708090a0b0c0d0e0f10111213\"",
            "sas.toml: sa[2] (spi 0x1003): sequence: must be 1..=4294967295 without esn",
        ),
        (
            "colour = \"red\"",
            "sas.toml: sa[2] (spi 0x1003): colour: unknown field",
        ),
    ];
    for (extra, want) in cases {
        let got = err_of(&sa_with(extra));
        assert!(got.starts_with(want), "got {got:?}\nwant {want:?}");
        assert!(!got.contains("0001020304"), "key bytes in message: {got}");
    }
    assert!(
        err_of("[[sa]]\nspi = 5\n")
            .starts_with("sas.toml: sa[0] (spi 0x5): spi: SPI 0-255 is reserved")
    );
    assert!(
        err_of("[[sa]]\ndirection = \"inbound\"\n").starts_with("sas.toml: sa[0]: spi: missing")
    );
    assert!(err_of("[[sa]\n").starts_with("sas.toml: "));
    let local = format!("[[sa]]\n{}", BASE.replace("192.0.2.1", "192.0.2.1/33"));
    assert!(err_of(&local).starts_with("sas.toml: sa[0] (spi 0x1003): local: prefix length"));
}

#[test]
fn wireshark_export_format() {
    let ex = export::wireshark(&parse(&sa_a()));
    assert_eq!(
        ex.lines,
        vec![
            format!(
                "\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x00001001\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{GCM_KEY}\",\"NULL\",\"\""
            ),
            format!(
                "\"IPv6\",\"2001:db8::1\",\"2001:db8::2\",\"0x00002001\",\"AES-CBC [RFC3602]\",\"0x000102030405060708090a0b0c0d0e0f\",\"HMAC-SHA-256-128 [RFC4868]\",\"0x{}\"",
                "11".repeat(32)
            ),
        ]
    );
    assert_eq!(ex.notes.len(), 1);
    assert!(ex.notes[0].contains("sa[2] (spi 0x3001): AH skipped"));
}

#[test]
fn corrupt_pcaps_are_errors_not_panics() {
    let good = pcap::write(&plain());
    assert_eq!(pcap::parse(&good).expect("parse"), {
        let mut p = plain();
        p.snaplen = pcap::MAX_RECORD;
        p
    });
    for n in 0..good.len() {
        let _ = pcap::parse(&good[..n]);
    }
    assert!(
        pcap::parse(&good[..good.len() - 3])
            .expect_err("must fail")
            .to_string()
            .contains("truncated record")
    );
    assert!(
        pcap::parse(b"garbage garbage garbage garbage")
            .expect_err("must fail")
            .to_string()
            .contains("bad magic")
    );
    let mut big = good.clone();
    big[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        pcap::parse(&big)
            .expect_err("must fail")
            .to_string()
            .contains("exceeds")
    );
    // Garbage frames inside a valid pcap: processed without panic.
    let mut cap = plain();
    let mut x: u32 = 12345;
    for len in 0..200usize {
        let mut d = Vec::with_capacity(len);
        for _ in 0..len {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            d.push((x >> 16) as u8);
        }
        if len > 14 {
            d[12] = 0x08;
            d[13] = 0x00;
            d[14] = 0x45;
            if len > 24 {
                d[23] = 50;
            }
        }
        cap.records.push(pcap::Record {
            ts_sec: 0,
            ts_frac: 0,
            orig_len: len as u32,
            data: d,
        });
    }
    for sw in [false, true] {
        process::process(&parse(&sa_a()), &cap, process::Op::Encap, sw).expect("encap");
        process::process(&parse(&sa_b()), &cap, process::Op::Decap, sw).expect("decap");
    }
}

// ---- the binary ----

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipsec-nic"))
}

/// A private directory in the system temp dir (unique per test and process), removed when
/// the test ends.
struct TmpDir(PathBuf);

impl TmpDir {
    fn new(test: &str) -> Self {
        let d = std::env::temp_dir().join(format!("ipsec-nic-cli-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&d).expect("tmp dir");
        TmpDir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run ipsec-nic")
}

#[test]
fn binary_encap_decap_software_and_errors() {
    let dir = TmpDir::new("binary");
    let a = dir.path("a.toml");
    let b = dir.path("b.toml");
    std::fs::write(&a, sa_a()).expect("write");
    std::fs::write(&b, sa_b()).expect("write");
    let plain_p = dir.path("plain.pcap");
    std::fs::write(&plain_p, pcap::write(&plain())).expect("write");
    let (esp, esp_sw, back) = (
        dir.path("esp.pcap"),
        dir.path("esp-sw.pcap"),
        dir.path("back.pcap"),
    );
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_owned();
    let o = run(&[
        "pcap",
        "encap",
        "--config",
        &s(&a),
        "--in",
        &s(&plain_p),
        "--out",
        &s(&esp),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("8 processed, 2 passed through"), "{err}");
    let o = run(&[
        "pcap",
        "encap",
        "--software",
        "--config",
        &s(&a),
        "--in",
        &s(&plain_p),
        "--out",
        &s(&esp_sw),
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(&esp).expect("read"),
        std::fs::read(&esp_sw).expect("read")
    );
    let o = run(&[
        "pcap",
        "decap",
        "--config",
        &s(&b),
        "--in",
        &s(&esp),
        "--out",
        &s(&back),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&back).expect("read"),
        std::fs::read(&plain_p).expect("read")
    );

    // A corrupt pcap: an error, exit code 1, no panic.
    let bad = dir.path("bad.pcap");
    let mut bytes = std::fs::read(&plain_p).expect("read");
    bytes.truncate(50);
    std::fs::write(&bad, bytes).expect("write");
    let o = run(&[
        "pcap",
        "decap",
        "--config",
        &s(&b),
        "--in",
        &s(&bad),
        "--out",
        &s(&back),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.pcap: frame 1: truncated record"), "{err}");
    assert!(!err.contains("panicked"));

    // A bad config: the message names the file; nothing runs.
    let badc = dir.path("sas.toml");
    std::fs::write(
        &badc,
        sa_with(
            "encryption = \"aes-gcm-128\"\nencryption_key = \"00112233445566778899aabbccddeeff\"",
        ),
    )
    .expect("write");
    let o = run(&["sa", "export", "--wireshark", "--config", &s(&badc)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sas.toml: sa[2] (spi 0x1003): encryption_key: expected 20 bytes"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

/// `sa_a` plus two IPv4 ESP SAs with HMAC integrity (tshark gives HMAC ICV verdicts).
fn sa_tshark() -> String {
    format!(
        r#"{}
[[sa]]
spi = 0x6001
direction = "outbound"
protocol = "esp"
local = "203.0.113.10"
remote = "203.0.113.20"
encryption = "null"
integrity = "hmac-sha1-96"
integrity_key = "{k20}"

[[sa]]
spi = 0x7001
direction = "outbound"
protocol = "esp"
local = "198.51.100.10"
remote = "198.51.100.20"
encryption = "aes-cbc-256"
integrity = "hmac-sha256-128"
encryption_key = "{k32}"
integrity_key = "{k32b}"
"#,
        sa_a(),
        k20 = "55".repeat(20),
        k32 = "66".repeat(32),
        k32b = "77".repeat(32)
    )
}

#[test]
fn tshark_decrypts_encap_output_with_exported_sas() {
    let dir = TmpDir::new("tshark");
    let have = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tshark missing under CI=true");
        }
        eprintln!("tshark_decrypts_encap_output_with_exported_sas: SKIPPED (tshark not installed)");
        return;
    }
    let a = dir.path("ts-a.toml");
    std::fs::write(&a, sa_tshark()).expect("write");
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_owned();
    let o = run(&["sa", "export", "--wireshark", "--config", &s(&a)]);
    assert!(o.status.success());
    // The esp_sa UAT file in a private Wireshark config dir.
    let conf = dir.path("wireshark-conf");
    std::fs::create_dir_all(&conf).expect("config dir");
    std::fs::write(conf.join("esp_sa"), &o.stdout).expect("write esp_sa");
    let mut input = plain();
    for i in 0..3u8 {
        for (src, dst) in [
            ([203, 0, 113, 10], [203, 0, 113, 20]),
            ([198, 51, 100, 10], [198, 51, 100, 20]),
        ] {
            let data = udp4(src, dst, &[i; 40]);
            input.records.push(pcap::Record {
                ts_sec: 2000,
                ts_frac: u32::from(i),
                orig_len: data.len() as u32,
                data,
            });
        }
    }
    let (plain_p, esp) = (dir.path("ts-plain.pcap"), dir.path("ts-esp.pcap"));
    std::fs::write(&plain_p, pcap::write(&input)).expect("write");
    let o = run(&[
        "pcap",
        "encap",
        "--config",
        &s(&a),
        "--in",
        &s(&plain_p),
        "--out",
        &s(&esp),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("tshark")
        .env("WIRESHARK_CONFIG_DIR", &conf)
        .args([
            "-r",
            &s(&esp),
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-V",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&o.stdout);
    let correct = text.matches("[correct").count();
    let incorrect = text.matches("[incorrect").count();
    let decrypted = text.matches("ESP Decrypted Data").count();
    let udp = text.matches("Src Port: 5000, Dst Port: 6000").count();
    eprintln!(
        "tshark: {decrypted} ESP frames decrypted, {udp} UDP datagrams dissected, \
         {correct} ICVs correct, {incorrect} incorrect"
    );
    // ESP frames: 6 AES-GCM + 1 AES-CBC/HMAC-SHA-256 (IPv6) + 3 NULL/HMAC-SHA-1 + 3
    // AES-CBC-256/HMAC-SHA-256 decrypt to the original UDP datagrams (plus the AH frame and
    // the unprotected one: 15 UDP). No ICV may be [incorrect]. tshark 4.0 gives no verdict
    // for GCM ICVs, and for the HMAC SAs here only on the first frame of each SA (the later
    // ones verify with Python's hmac too; checked when this test was written), so at least
    // the three HMAC SAs' first frames must be [correct].
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!((decrypted, udp, incorrect), (13, 15, 0), "{err}");
    assert!(correct >= 3, "{correct} ICVs correct: {err}");
}

#[test]
fn demo_runs_end_to_end() {
    let dir = TmpDir::new("demo");
    let pcap_p = dir.path("demo.pcap");
    let s = pcap_p.to_str().expect("utf-8 path");
    let o = run(&["demo", "--udp", "4", "--pings", "2", "--pcap", s]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("UDP: 4/4 delivered; ping: 2/2 replies"),
        "{out}"
    );
    assert!(out.contains("Outbound spi"), "{out}");
    let cap = pcap::parse(&std::fs::read(&pcap_p).expect("read")).expect("demo pcap parses");
    assert!(
        cap.records
            .iter()
            .any(|r| r.data.len() > 23 && r.data[23] == 50)
    );
}

#[test]
fn tunnel_udp_encap_and_esn_round_trip() {
    let k = "33".repeat(36);
    let out = format!(
        r#"
[[sa]]
spi = 0x4001
direction = "outbound"
protocol = "esp"
mode = "tunnel"
local = "192.0.2.0/24"
remote = "198.51.100.0/24"
tunnel_local = "203.0.113.1"
tunnel_remote = "203.0.113.2"
encryption = "aes-gcm-256"
encryption_key = "{k}"
udp_encap = {{ local_port = 4500, remote_port = 4500 }}

[[sa]]
spi = 0x5001
direction = "outbound"
protocol = "esp"
local = "192.0.2.1"
remote = "192.0.2.2"
encryption = "null"
integrity = "hmac-sha1-96"
integrity_key = "{k20}"
esn = true
sequence = 0xfffffffe
"#,
        k20 = "44".repeat(20)
    );
    let inb = out
        .replace("\"outbound\"", "\"inbound\"")
        .replace(
            "local = \"192.0.2.0/24\"\nremote = \"198.51.100.0/24\"",
            "local = \"198.51.100.0/24\"\nremote = \"192.0.2.0/24\"",
        )
        .replace(
            "tunnel_local = \"203.0.113.1\"\ntunnel_remote = \"203.0.113.2\"",
            "tunnel_local = \"203.0.113.2\"\ntunnel_remote = \"203.0.113.1\"",
        )
        .replace(
            "local = \"192.0.2.1\"\nremote = \"192.0.2.2\"",
            "local = \"192.0.2.2\"\nremote = \"192.0.2.1\"",
        );
    let (a, b) = (parse(&out), parse(&inb));
    let mut records = Vec::new();
    for i in 0..4u8 {
        for dst in [[198, 51, 100, 7], [192, 0, 2, 2]] {
            let data = udp4([192, 0, 2, 1], dst, &[i; 30]);
            records.push(pcap::Record {
                ts_sec: 0,
                ts_frac: 0,
                orig_len: data.len() as u32,
                data,
            });
        }
    }
    let input = pcap::Capture {
        nanos: true,
        snaplen: 65535,
        records,
    };
    let (hw, rep) = process::process(&a, &input, process::Op::Encap, false).expect("encap");
    let (sw, _) = process::process(&a, &input, process::Op::Encap, true).expect("encap sw");
    assert_eq!(pcap::write(&hw), pcap::write(&sw));
    assert_eq!((rep.processed, rep.passed), (8, 0), "{:?}", rep.dropped);
    // Tunnel + NAT-T: outer 203.0.113.1 -> .2, UDP 4500, ESP inside.
    let f = &hw.records[0].data;
    assert_eq!(
        (f[14 + 9], &f[14 + 12..14 + 20]),
        (17, &[203, 0, 113, 1, 203, 0, 113, 2][..])
    );
    assert_eq!(f[14 + 22..14 + 24], [0x11, 0x94]);
    // ESN: the low 32 bits wrap from 0xffffffff to 0 and 1.
    let seq_lo = |r: &pcap::Record| r.data[14 + 24..14 + 28].to_vec();
    assert_eq!(seq_lo(&hw.records[3]), [0xff, 0xff, 0xff, 0xff]);
    assert_eq!(seq_lo(&hw.records[5]), [0, 0, 0, 0]);
    for software in [false, true] {
        let (back, rep) = process::process(&b, &hw, process::Op::Decap, software).expect("decap");
        assert_eq!(rep.dropped, vec![], "{software}");
        assert_eq!(back, input, "{software}");
    }
}

// ---- the algorithm x mode matrix through the full host model ----

/// Host B's view of A's config: directions flipped, local/remote and tunnel endpoints and
/// UDP ports swapped.
fn mirror(text: &str) -> String {
    let swaps = [
        ("direction = \"outbound\"", "direction = \"inbound\""),
        ("local = ", "remote = "),
        ("remote = ", "local = "),
        ("tunnel_local = ", "tunnel_remote = "),
        ("tunnel_remote = ", "tunnel_local = "),
    ];
    let mut out = String::new();
    for l in text.lines() {
        let mut line = l.to_owned();
        for (from, to) in swaps {
            if let Some(rest) = l.strip_prefix(from) {
                line = format!("{to}{rest}");
                break;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn capture(frames: Vec<Vec<u8>>) -> pcap::Capture {
    pcap::Capture {
        nanos: false,
        snaplen: 65535,
        records: frames
            .into_iter()
            .enumerate()
            .map(|(i, data)| pcap::Record {
                ts_sec: 7000 + i as u32,
                ts_frac: 17 * i as u32,
                orig_len: data.len() as u32,
                data,
            })
            .collect(),
    }
}

/// Encap with A's config and decap with its mirror, offload and software: byte-identical,
/// the round trip restores the input, and the counters show which path did the crypto.
fn matrix_case(name: &str, a_text: &str, input: &pcap::Capture, outer_proto: u8) {
    let a = parse(a_text);
    let b = parse(&mirror(a_text));
    let n = input.records.len() as u64;
    let (hw, rep_hw) = process::process(&a, input, process::Op::Encap, false)
        .unwrap_or_else(|e| panic!("{name}: encap: {e}"));
    let (sw, rep_sw) = process::process(&a, input, process::Op::Encap, true)
        .unwrap_or_else(|e| panic!("{name}: encap sw: {e}"));
    assert_eq!(
        pcap::write(&hw),
        pcap::write(&sw),
        "{name}: offload != software"
    );
    assert_eq!(summary(&rep_hw), summary(&rep_sw), "{name}");
    assert_eq!(
        (rep_hw.processed, rep_hw.passed),
        (n, 0),
        "{name}: {:?}",
        rep_hw.dropped
    );
    // Offload: ADD_SA OIDs were issued and the NIC did every encryption; software: neither.
    assert!(rep_hw.stack.offload.add_sa_ok >= 1, "{name}");
    assert_eq!(rep_hw.nic.tx_protected, n, "{name}");
    assert_eq!(rep_hw.nic_crypto, n, "{name}");
    assert_eq!(rep_sw.stack.offload.add_sa_ok, 0, "{name}");
    assert_eq!(
        (rep_sw.nic.sa_added, rep_sw.nic.tx_protected),
        (0, 0),
        "{name}"
    );
    assert_eq!(rep_sw.nic_crypto, 0, "{name}");
    for (i, (o, p)) in hw.records.iter().zip(&input.records).enumerate() {
        assert_eq!(o.data[..12], p.data[..12], "{name}: frame {i} MACs");
        assert_eq!(
            (o.ts_sec, o.ts_frac),
            (p.ts_sec, p.ts_frac),
            "{name}: frame {i} time"
        );
        let v6 = o.data[12..14] == [0x86, 0xdd];
        let proto = if v6 { o.data[14 + 6] } else { o.data[14 + 9] };
        assert_eq!(proto, outer_proto, "{name}: frame {i} outer protocol");
        assert_ne!(o.data, p.data, "{name}: frame {i} unchanged");
    }
    for software in [false, true] {
        let (back, rep) = process::process(&b, &hw, process::Op::Decap, software)
            .unwrap_or_else(|e| panic!("{name}: decap: {e}"));
        assert_eq!(rep.dropped, vec![], "{name} (software {software})");
        assert_eq!(
            &back, input,
            "{name}: decap(encap(x)) != x (software {software})"
        );
        if software {
            assert_eq!((rep.nic.rx_ok, rep.nic_crypto), (0, 0), "{name}");
            assert_eq!(rep.stack.inbound.software_processed, n, "{name}");
        } else {
            assert_eq!((rep.nic.rx_ok, rep.nic_crypto), (n, n), "{name}");
            assert_eq!(rep.stack.inbound.nic_processed, n, "{name}");
        }
    }
}

fn one_sa(spi: u32, fields: &str) -> String {
    format!(
        "[[sa]]\nspi = {spi:#x}\ndirection = \"outbound\"\nlocal = \"192.0.2.1\"\nremote = \
         \"192.0.2.2\"\n{fields}\n"
    )
}

fn v4_frames(n: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            udp4(
                [192, 0, 2, 1],
                [192, 0, 2, 2],
                &vec![i; 1 + 13 * usize::from(i)],
            )
        })
        .collect()
}

#[test]
fn matrix_round_trips_offload_equals_software() {
    let k = |b: &str, n: usize| b.repeat(n);
    let cases: Vec<(&str, String, u8)> = vec![
        (
            "AES-GCM-128",
            one_sa(
                0x1101,
                &format!(
                    "protocol = \"esp\"\nencryption = \"aes-gcm-128\"\nencryption_key = \"{}\"",
                    k("a1", 20)
                ),
            ),
            50,
        ),
        (
            "AES-GCM-256",
            one_sa(
                0x1102,
                &format!(
                    "protocol = \"esp\"\nencryption = \"aes-gcm-256\"\nencryption_key = \"{}\"",
                    k("a2", 36)
                ),
            ),
            50,
        ),
        (
            "AES-GMAC-128",
            one_sa(
                0x1103,
                &format!(
                    "protocol = \"esp\"\nintegrity = \"aes-gmac-128\"\nintegrity_key = \"{}\"",
                    k("a3", 20)
                ),
            ),
            50,
        ),
        (
            "AES-CBC-128 + HMAC-SHA-256-128",
            one_sa(
                0x1104,
                &format!(
                    "protocol = \"esp\"\nencryption = \"aes-cbc-128\"\nencryption_key = \
                     \"{}\"\nintegrity = \"hmac-sha256-128\"\nintegrity_key = \"{}\"",
                    k("a4", 16),
                    k("b4", 32)
                ),
            ),
            50,
        ),
        (
            "NULL + HMAC-SHA-1-96",
            one_sa(
                0x1105,
                &format!(
                    "protocol = \"esp\"\nencryption = \"null\"\nintegrity = \
                     \"hmac-sha1-96\"\nintegrity_key = \"{}\"",
                    k("a5", 20)
                ),
            ),
            50,
        ),
        (
            "AH HMAC-SHA-256-128",
            one_sa(
                0x1106,
                &format!(
                    "protocol = \"ah\"\nintegrity = \"hmac-sha256-128\"\nintegrity_key = \"{}\"",
                    k("a6", 32)
                ),
            ),
            51,
        ),
        (
            "NAT-T AES-GCM-128",
            one_sa(
                0x1107,
                &format!(
                    "protocol = \"esp\"\nencryption = \"aes-gcm-128\"\nencryption_key = \
                     \"{}\"\nudp_encap = {{ local_port = 4500, remote_port = 4500 }}",
                    k("a7", 20)
                ),
            ),
            17,
        ),
        (
            "ESN NULL + HMAC-SHA-256 across 2^32",
            one_sa(
                0x1108,
                &format!(
                    "protocol = \"esp\"\nencryption = \"null\"\nintegrity = \
                     \"hmac-sha256-128\"\nintegrity_key = \"{}\"\nesn = true\nsequence = \
                     0xfffffffd",
                    k("a8", 32)
                ),
            ),
            50,
        ),
    ];
    let input = capture(v4_frames(6));
    for (name, text, proto) in &cases {
        matrix_case(name, text, &input, *proto);
    }
    // Every family in tunnel mode too (ESN tunnel SAs cannot be offloaded: not expressible
    // in the v1/v2 OIDs, so `process` refuses them without --software; see
    // `esn_tunnel_needs_software`).
    let frames: Vec<_> = (0..4u8)
        .map(|i| udp4([192, 0, 2, 10 + i], [198, 51, 100, 20 + i], &[i; 33]))
        .collect();
    for (name, text, proto) in cases.iter().filter(|c| !c.0.starts_with("ESN")) {
        let t = text.replace(
            "local = \"192.0.2.1\"\nremote = \"192.0.2.2\"",
            "mode = \"tunnel\"\nlocal = \"192.0.2.0/24\"\nremote = \"198.51.100.0/24\"\n\
             tunnel_local = \"203.0.113.1\"\ntunnel_remote = \"203.0.113.2\"",
        );
        assert_ne!(&t, text);
        matrix_case(
            &format!("tunnel {name}"),
            &t,
            &capture(frames.clone()),
            *proto,
        );
    }
    // Tunnel mode: prefix selectors, outer 203.0.113.1 -> .2 (IPv4 in IPv4).
    let tunnel = format!(
        "[[sa]]\nspi = 0x1109\ndirection = \"outbound\"\nprotocol = \"esp\"\nmode = \
         \"tunnel\"\nlocal = \"192.0.2.0/24\"\nremote = \"198.51.100.0/24\"\ntunnel_local = \
         \"203.0.113.1\"\ntunnel_remote = \"203.0.113.2\"\nencryption = \"aes-gcm-128\"\n\
         encryption_key = \"{}\"\n",
        k("a9", 20)
    );
    let frames = (0..5u8)
        .map(|i| udp4([192, 0, 2, 10 + i], [198, 51, 100, 20 + i], &[i; 25]))
        .collect();
    matrix_case("tunnel AES-GCM-128", &tunnel, &capture(frames), 50);
    // IPv6 transport mode (offloaded with IPsec v2 ADD_SA_EX).
    let v6 = format!(
        "[[sa]]\nspi = 0x110a\ndirection = \"outbound\"\nprotocol = \"esp\"\nlocal = \
         \"2001:db8::1\"\nremote = \"2001:db8::2\"\nencryption = \"aes-cbc-256\"\nencryption_key \
         = \"{}\"\nintegrity = \"hmac-sha1-96\"\nintegrity_key = \"{}\"\n",
        k("aa", 32),
        k("ba", 20)
    );
    let frames = (0..4u8)
        .map(|i| udp6(&vec![i; 3 + usize::from(i) * 11]))
        .collect();
    matrix_case("IPv6 AES-CBC-256 + HMAC-SHA-1", &v6, &capture(frames), 50);
}

#[test]
fn esn_sequence_numbers_cross_the_32_bit_boundary() {
    let text = one_sa(
        0x1201,
        &format!(
            "protocol = \"esp\"\nencryption = \"aes-gcm-128\"\nencryption_key = \"{}\"\nesn = \
             true\nsequence = 0xfffffffe",
            "c1".repeat(20)
        ),
    );
    let (hw, _) = process::process(
        &parse(&text),
        &capture(v4_frames(4)),
        process::Op::Encap,
        false,
    )
    .expect("encap");
    let seq_lo = |r: &pcap::Record| r.data[14 + 24..14 + 28].to_vec();
    let got: Vec<_> = hw.records.iter().map(seq_lo).collect();
    assert_eq!(
        got,
        [
            vec![0xff, 0xff, 0xff, 0xfe],
            vec![0xff; 4],
            vec![0; 4],
            vec![0, 0, 0, 1]
        ]
    );
}

#[test]
fn install_errors_reach_the_caller_and_nothing_is_processed() {
    let dir = TmpDir::new("install");
    // Transport mode with a prefix selector: the SA context's traffic is one address pair.
    let text = one_sa(
        0x1301,
        &format!(
            "protocol = \"esp\"\nencryption = \"aes-gcm-128\"\nencryption_key = \"{}\"",
            "d1".repeat(20)
        ),
    )
    .replace("remote = \"192.0.2.2\"", "remote = \"192.0.2.0/24\"");
    let e = process::process(
        &parse(&text),
        &capture(v4_frames(1)),
        process::Op::Encap,
        false,
    )
    .expect_err("refused");
    assert!(
        e.0.starts_with("sa[0] (spi 0x1301): remote: transport mode needs a host address"),
        "{e}"
    );
    // Through the binary the message also names the file.
    let p = dir.path("prefix.toml");
    std::fs::write(&p, &text).expect("write");
    let plain_p = dir.path("prefix-in.pcap");
    std::fs::write(&plain_p, pcap::write(&capture(v4_frames(1)))).expect("write");
    let out = dir.path("prefix-out.pcap");
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_owned();
    let o = run(&[
        "pcap",
        "encap",
        "--config",
        &s(&p),
        "--in",
        &s(&plain_p),
        "--out",
        &s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("prefix.toml: sa[0] (spi 0x1301): remote: transport mode needs a host"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn pass_through_reasons_and_foreign_destination() {
    let a = parse(&sa_a());
    let b = parse(&sa_b());
    let mut vlan = udp4([192, 0, 2, 1], [192, 0, 2, 2], b"tagged");
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    let input = capture(vec![
        udp4([192, 0, 2, 1], [192, 0, 2, 2], b"protected"),
        vlan.clone(),
        udp4([203, 0, 113, 1], [203, 0, 113, 2], b"clear"),
    ]);
    let (esp, rep) = process::process(&a, &input, process::Op::Encap, false).expect("encap");
    assert_eq!((rep.processed, rep.passed), (1, 2));
    assert_eq!(
        rep.passed_by_reason
            .get("VLAN-tagged frame (not supported)"),
        Some(&1)
    );
    assert_eq!(
        rep.passed_by_reason
            .get("no IPsec filter selects it (sent in clear)"),
        Some(&1)
    );
    assert_eq!(esp.records[1], input.records[1]);
    assert_eq!(esp.records[2], input.records[2]);
    // Decap: the ESP frame for a configured SPI but another destination is dropped (frame 2);
    // an ESP frame whose SPI the file does not configure passes (frame 3).
    let mut foreign_dst = esp.records[0].clone();
    foreign_dst.data[14 + 19] = 99; // 192.0.2.99
    let mut unknown_spi = esp.records[0].clone();
    unknown_spi.data[14 + 20..14 + 24].copy_from_slice(&0x0bad_0001u32.to_be_bytes());
    let mut cap = esp.clone();
    cap.records = vec![
        esp.records[0].clone(),
        foreign_dst,
        unknown_spi.clone(),
        vlan_rec(&vlan),
    ];
    for software in [false, true] {
        let (out, rep) = process::process(&b, &cap, process::Op::Decap, software).expect("decap");
        assert_eq!((rep.processed, rep.passed), (1, 2), "{software}");
        assert_eq!(rep.dropped.len(), 1, "{software}");
        assert_eq!(rep.dropped[0].0, 2, "{software}");
        assert!(
            rep.dropped[0].1.contains("unknown SPI for the selectors"),
            "{:?}",
            rep.dropped
        );
        assert_eq!(
            rep.passed_by_reason
                .get("ESP/AH for an SPI the file does not configure"),
            Some(&1)
        );
        assert_eq!(out.records.len(), 3);
        assert_eq!(out.records[0], input.records[0]);
        assert_eq!(out.records[1], unknown_spi);
    }
}

fn vlan_rec(data: &[u8]) -> pcap::Record {
    pcap::Record {
        ts_sec: 1,
        ts_frac: 2,
        orig_len: data.len() as u32,
        data: data.to_vec(),
    }
}

#[test]
fn esn_tunnel_needs_software() {
    let text = format!(
        "[[sa]]\nspi = 0x1401\ndirection = \"outbound\"\nprotocol = \"esp\"\nmode = \
         \"tunnel\"\nlocal = \"192.0.2.0/24\"\nremote = \"198.51.100.0/24\"\ntunnel_local = \
         \"203.0.113.1\"\ntunnel_remote = \"203.0.113.2\"\nencryption = \"aes-gcm-128\"\n\
         encryption_key = \"{}\"\nesn = true\n",
        "e1".repeat(20)
    );
    let input = capture(vec![udp4(
        [192, 0, 2, 10],
        [198, 51, 100, 20],
        b"esn tunnel",
    )]);
    let e = process::process(&parse(&text), &input, process::Op::Encap, false)
        .expect_err("not offloadable");
    assert!(
        e.0.starts_with("sa[0] (spi 0x1401): the inbound bundle was not offloaded"),
        "{e}"
    );
    assert!(e.0.contains("use --software"), "{e}");
    let (sw, rep) =
        process::process(&parse(&text), &input, process::Op::Encap, true).expect("software");
    assert_eq!((rep.processed, sw.records.len()), (1, 1));
    let (back, _) =
        process::process(&parse(&mirror(&text)), &sw, process::Op::Decap, true).expect("decap");
    assert_eq!(back, input);
}

#[test]
fn encap_drops_are_counted_by_reason_with_frame_numbers() {
    // The last 32-bit sequence number: frame 1 is sent with 0xffffffff, frame 2 finds the
    // counter exhausted (the stack expires the SA context), frame 3 finds no SA any more;
    // frame 4 (no filter) still passes.
    let text = one_sa(
        0x1501,
        &format!(
            "protocol = \"esp\"\nencryption = \"aes-gcm-128\"\nencryption_key = \"{}\"\n\
             sequence = 0xffffffff",
            "f1".repeat(20)
        ),
    );
    let mut frames = v4_frames(3);
    frames.push(udp4([198, 51, 100, 1], [198, 51, 100, 2], b"clear"));
    let input = capture(frames);
    for software in [false, true] {
        let (out, rep) =
            process::process(&parse(&text), &input, process::Op::Encap, software).expect("encap");
        assert_eq!((rep.processed, rep.passed), (1, 1), "{software}");
        let numbers: Vec<usize> = rep.dropped.iter().map(|d| d.0).collect();
        assert_eq!(numbers, [2, 3], "{software}");
        assert!(
            rep.dropped[0].1.contains("sequence number space exhausted"),
            "{:?}",
            rep.dropped
        );
        assert!(
            rep.dropped[1].1.contains("no complete SA context"),
            "{:?}",
            rep.dropped
        );
        assert_eq!(rep.drops.values().sum::<u64>(), 2);
        assert_eq!(out.records.len(), 2);
        assert_eq!(out.records[0].data[14 + 24..14 + 28], [0xff; 4]);
        assert_eq!(out.records[1], input.records[3]);
    }
}

#[test]
fn covered_packets_never_leave_in_clear() {
    // IPv6 with a hop-by-hop options header (next header 0) between 2001:db8::1 and ::2, which
    // sa[1] of `sa_a` covers: IPsec on packets with extension headers is not supported, so
    // the frame is dropped with a reason, never passed through in clear.
    let mut f = udp6(b"with hop-by-hop");
    let ul = u16::from_be_bytes([f[14 + 4], f[14 + 5]]) + 8;
    f[14 + 4..14 + 6].copy_from_slice(&ul.to_be_bytes());
    f[14 + 6] = 0;
    f.splice(14 + 40..14 + 40, [17, 0, 1, 4, 0, 0, 0, 0]);
    let input = capture(vec![f]);
    for software in [false, true] {
        let (out, rep) =
            process::process(&parse(&sa_a()), &input, process::Op::Encap, software).expect("encap");
        assert_eq!(
            (rep.passed, rep.dropped.len()),
            (0, 1),
            "{software}: {rep:?}"
        );
        assert_eq!(rep.dropped[0].0, 1);
        assert!(
            rep.dropped[0].1.contains("frame_errors"),
            "{:?}",
            rep.dropped
        );
        assert!(out.records.is_empty());
    }
}
