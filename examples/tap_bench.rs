//! A host on TAP devices vs the raw TAP frame rate, measured in the same run on the same
//! machine (performance.md: host >= 80 % of raw).
//!
//! ```text
//! cargo run --release --example tap_bench            # as root (CAP_NET_ADMIN); else it skips
//! cargo run --release --example tap_bench -- 20000   # frames per measurement (default 20000)
//! ```
//!
//! Set-up (all torn down at the end, also on error or panic), twice (one for the raw loop,
//! one owned by the hosts): a network namespace `ipsecnic-bench-<pid>-<k>` with IPv6 off (no router solicitations or MLD reports on the
//! ports), two TAP devices created by this process and moved into it, joined by a bridge
//! (STP off, no forwarding delay). No addresses are configured on the Linux side; frames only
//! cross the bridge. Documentation addresses only (192.0.2.1 / 192.0.2.2).
//!
//! * **raw**: one thread writes a batch of 32 frames into TAP A (`TapWire::transmit`, one
//!   `write` each) and reads them back from TAP B (`TapWire::receive`) before the next batch;
//!   frames have the length of the ESP frames the hosts exchange at that payload size.
//! * **host**: `TwoHosts::with_wires` over the same two ports, `manual_sa` AES-GCM-128, both
//!   NICs in stepping mode in this thread: A's stack sends 32 UDP datagrams, the clock is
//!   stepped until B's application has read all 32 (A's NIC encrypts and writes, the bridge
//!   forwards, B's NIC reads and decrypts, B's stack delivers).
//! * **one host sending, NIC on its own thread** (a third set-up): host A alone on TAP A with
//!   its miniport started (`VirtualMiniport::start`: a NIC worker encrypts and writes to the
//!   TAP); this thread sends through A's stack and reads the ESP frames from TAP B raw, as the
//!   raw loop reads its frames, with two batches in flight. Its raw rounds run with A's NIC
//!   threads stopped. B's host, needed to key the Manual SA, sits idle on an in-memory wire.
//!
//! Five interleaved rounds of each at 64 and 1420 B of UDP payload; medians of frames/s and
//! Gbit/s (of Ethernet frame bytes) and the ratio host/raw are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipsec_nic::{A_V4, B_V4, Capture, MAC_A, MAC_B, ManualSaOptions, TopologyConfig, TwoHosts};
use nicsim::wire::tap::TapWire;
use nicsim::{Frame, MemWire, Wire};

const BATCH: usize = 32;
const ROUNDS: usize = 5;
/// Give up on a batch when nothing arrives for this long (the kernel lost frames).
const STALL: Duration = Duration::from_secs(2);

fn run(args: &[&str]) -> Result<(), String> {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {st}", args.join(" ")))
    }
}

/// The namespace and bridge; deleting the namespace deletes the bridge, and the TAP devices
/// (not persistent) disappear when their `TapWire`s are dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

/// Two TAP ports joined by a bridge inside a fresh namespace.
fn setup() -> Result<(Netns, TapWire, TapWire), String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let pid = std::process::id();
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let ns = Netns {
        name: format!("ipsecnic-bench-{pid}-{k}"),
    };
    run(&["ip", "netns", "add", &ns.name])?;
    ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])?;
    ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])?;
    let a = TapWire::open(&format!("inb{pid}{k}a")).map_err(|e| format!("TAP A: {e}"))?;
    let b = TapWire::open(&format!("inb{pid}{k}b")).map_err(|e| format!("TAP B: {e}"))?;
    for t in [&a, &b] {
        run(&["ip", "link", "set", "dev", t.name(), "netns", &ns.name])?;
    }
    ns.exec(&[
        "ip",
        "link",
        "add",
        "name",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
    ])?;
    for t in [&a, &b] {
        ns.exec(&["ip", "link", "set", "dev", t.name(), "master", "br0"])?;
        ns.exec(&["ip", "link", "set", "dev", t.name(), "up"])?;
    }
    ns.exec(&["ip", "link", "set", "dev", "br0", "up"])?;
    // If br_netfilter is loaded, keep iptables out of the bridge (absent otherwise: ignored).
    for k in ["iptables", "ip6tables", "arptables"] {
        let _ = ns.exec(&[
            "sysctl",
            "-q",
            "-w",
            &format!("net.bridge.bridge-nf-call-{k}=0"),
        ]);
    }
    if std::env::var_os("TAP_BENCH_DEBUG").is_some() {
        let _ = ns.exec(&["ip", "-d", "link"]);
        let _ = ns.exec(&["bridge", "link"]);
    }
    Ok((ns, a, b))
}

/// Length of the Ethernet frame carrying a UDP datagram of `payload` bytes in transport-mode
/// ESP AES-GCM-128 over IPv4 (8-byte ESP header, 8-byte IV, pad to 4, 2-byte trailer,
/// 16-byte ICV).
fn esp_frame_len(payload: usize) -> usize {
    let inner = (8 + payload + 2).div_ceil(4) * 4;
    14 + 20 + 8 + 8 + inner + 16
}

/// Read what TAP `b` has (at most a batch): (frames read, frames of `frame_len` bytes).
fn read_frames(
    b: &mut TapWire,
    got: &mut Vec<Frame>,
    frame_len: usize,
) -> Result<(usize, usize), String> {
    let k = b
        .receive(Duration::ZERO, got, BATCH)
        .map_err(|e| e.to_string())?;
    let mut ours = 0;
    for f in got.drain(..) {
        if f.len() == frame_len {
            ours += 1;
        }
        b.recycle(f.buf);
    }
    Ok((k, ours))
}

/// Raw: frames/s of write-to-A, read-from-B in one thread, over `n` frames.
fn raw(a: &mut TapWire, b: &mut TapWire, frame_len: usize, n: usize) -> Result<f64, String> {
    let now = Duration::ZERO;
    let mut bytes = vec![0u8; frame_len];
    bytes[..6].copy_from_slice(&MAC_B);
    bytes[6..12].copy_from_slice(&MAC_A);
    bytes[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    // A valid IPv4 header (protocol 50, like the hosts' frames): a bridge with br_netfilter
    // loaded drops frames whose IPv4 header does not validate.
    {
        let ip = &mut bytes[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((frame_len - 14) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 50;
        ip[12..16].copy_from_slice(&A_V4.octets());
        ip[16..20].copy_from_slice(&B_V4.octets());
        let mut sum = 0u32;
        for c in ip.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    let mut frames: Vec<Frame> = (0..BATCH)
        .map(|_| Frame::from_bytes(&bytes, 0, 0))
        .collect();
    let mut done = Vec::with_capacity(BATCH);
    let mut got = Vec::with_capacity(BATCH);
    let batches = n / BATCH;
    let t = Instant::now();
    for _ in 0..batches {
        a.transmit(now, &mut frames, &mut done)
            .map_err(|e| e.to_string())?;
        let mut want = done.len();
        for mut f in done.drain(..) {
            if f.tx.status != nicsim::TxStatus::Sent {
                want -= 1;
            }
            f.tx.status = nicsim::TxStatus::Pending;
            frames.push(f);
        }
        let mut have = 0;
        let since = Instant::now();
        while have < want {
            let (k, ours) = read_frames(b, &mut got, frame_len)?;
            have += ours;
            if k == 0 && since.elapsed() > STALL {
                return Err(format!("raw: only {have}/{want} frames crossed the bridge"));
            }
        }
    }
    Ok((batches * BATCH) as f64 / t.elapsed().as_secs_f64())
}

/// Host: frames/s of the two-host pipeline over the TAP ports, over `n` frames.
fn host(net: &mut TwoHosts, payload: &[u8], n: usize) -> Result<f64, String> {
    let src = SocketAddr::new(A_V4.into(), 5000);
    let dst = SocketAddr::new(B_V4.into(), 6000);
    let mut buf = vec![0u8; 2048];
    let batches = n / BATCH;
    let t = Instant::now();
    for _ in 0..batches {
        for _ in 0..BATCH {
            let now = net.now();
            net.a
                .stack_mut()
                .send_udp(now, src, dst, payload)
                .map_err(|e| format!("send: {e:?}"))?;
        }
        let mut have = 0;
        let since = Instant::now();
        while have < BATCH {
            let moved = net.step();
            while let Some(d) = net.b.stack_mut().recv_udp(&mut buf) {
                if d.secure {
                    have += 1;
                }
            }
            if moved == 0 && since.elapsed() > STALL {
                return Err(format!("host: only {have}/{BATCH} datagrams arrived"));
            }
        }
    }
    Ok((batches * BATCH) as f64 / t.elapsed().as_secs_f64())
}

/// Host, transmit direction with its NIC on threads: frames/s of host A's stack sending
/// through its offloading NIC (`VirtualMiniport::start`: a NIC worker encrypts and writes to
/// TAP A) while this thread reads the ESP frames from TAP B raw, as the raw loop does. Two
/// batches are in flight (the next batch is handed to the NIC before the current one is
/// read), as in a steady stream, so the NIC's encryption overlaps this thread's reads.
fn host_tx(
    net: &mut TwoHosts,
    b: &mut TapWire,
    payload: &[u8],
    frame_len: usize,
    n: usize,
) -> Result<f64, String> {
    let src = SocketAddr::new(A_V4.into(), 5000);
    let dst = SocketAddr::new(B_V4.into(), 6000);
    let now = net.now();
    let mut got = Vec::with_capacity(BATCH);
    let batches = n / BATCH;
    let send_batch = |net: &mut TwoHosts| -> Result<(), String> {
        let mut sent = 0;
        let since = Instant::now();
        while sent < BATCH {
            match net.a.stack_mut().send_udp(now, src, dst, payload) {
                Ok(_) => sent += 1,
                // Every buffer is in flight: take the completions back.
                Err(_) => {
                    net.a.stack_mut().poll(now);
                    if since.elapsed() > STALL {
                        return Err("host_tx: no send buffer came back".into());
                    }
                }
            }
        }
        Ok(())
    };
    let t = Instant::now();
    send_batch(net)?;
    // Frames read so far (a read may already return frames of the next batch).
    let mut have = 0;
    for i in 0..batches {
        if i + 1 < batches {
            send_batch(net)?;
        }
        let since = Instant::now();
        while have < (i + 1) * BATCH {
            let (k, ours) = read_frames(b, &mut got, frame_len)?;
            have += ours;
            if k == 0 && since.elapsed() > STALL {
                return Err(format!(
                    "host_tx: only {have}/{} frames crossed the bridge (NIC {:?}, stack {:?})",
                    (i + 1) * BATCH,
                    net.a.nic_stats(),
                    net.a.stack().statistics().outbound
                ));
            }
        }
        net.a.stack_mut().poll(now);
    }
    Ok((batches * BATCH) as f64 / t.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
        .max(BATCH);
    if !std::path::Path::new("/dev/net/tun").exists() || !is_root() {
        println!("tap_bench: skipped (needs root / CAP_NET_ADMIN and /dev/net/tun)");
        return;
    }
    if let Err(e) = bench(n) {
        eprintln!("tap_bench: {e}");
        std::process::exit(1);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| o.stdout.starts_with(b"0\n"))
}

fn bench(n: usize) -> Result<(), String> {
    println!("load before: {}", load());
    for size in [64usize, 1420] {
        // Two identical set-ups side by side: one for the raw loop, one owned by the hosts.
        let frame_len = esp_frame_len(size);
        let (mut raws, mut hosts) = (Vec::new(), Vec::new());
        let (mut raws_tx, mut txs) = (Vec::new(), Vec::new());
        {
            let (ns_raw, mut a, mut b) = setup()?;
            let (ns, ta, tb) = setup()?;
            let mut cfg = TopologyConfig::standard();
            cfg.capture = Capture::None;
            let mut net = TwoHosts::with_wires(cfg, ta, tb).map_err(|e| e.to_string())?;
            ipsec_nic::manual_sa(&mut net, &ManualSaOptions::default())
                .map_err(|e| e.to_string())?;
            for _ in 0..50 {
                net.step();
            }
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            // Warm-up both (buffer pools, bridge learning).
            if let Err(e) = raw(&mut a, &mut b, frame_len, 2_000.min(n)) {
                if std::env::var_os("TAP_BENCH_DEBUG").is_some() {
                    let _ = ns_raw.exec(&["ip", "-s", "link"]);
                }
                return Err(e);
            }
            host(&mut net, &payload, 2_000.min(n))?;
            if net.a.nic_stats().tx_protected == 0 {
                return Err("host: the SA was not offloaded".into());
            }
            for _ in 0..ROUNDS {
                raws.push(raw(&mut a, &mut b, frame_len, n)?);
                hosts.push(host(&mut net, &payload, n)?);
            }
            drop(net);
            drop(ns);
            // One host on TAP A, its NIC threaded; TAP B read raw by this thread. B's host
            // (needed to key the Manual SA) sits on an in-memory wire and stays idle.
            let (ns_tx, ta, mut tb) = setup()?;
            let (wb, _peer) = MemWire::pair();
            let mut cfg = TopologyConfig::standard();
            cfg.capture = Capture::None;
            let mut net = TwoHosts::with_wires(cfg, ta, wb).map_err(|e| e.to_string())?;
            ipsec_nic::manual_sa(&mut net, &ManualSaOptions::default())
                .map_err(|e| e.to_string())?;
            for _ in 0..50 {
                net.step();
            }
            let start = |net: &TwoHosts| {
                net.a
                    .miniport()
                    .start()
                    .map_err(|e| format!("NIC threads: {e}"))
            };
            start(&net)?;
            host_tx(&mut net, &mut tb, &payload, frame_len, 2_000.min(n))?;
            if net.a.nic_stats().tx_protected == 0 {
                return Err("host_tx: the SA was not offloaded".into());
            }
            // The raw loop runs with the host's NIC threads stopped, so they take no CPU
            // from it.
            for _ in 0..ROUNDS {
                net.a.miniport().stop();
                raws_tx.push(raw(&mut a, &mut b, frame_len, n)?);
                start(&net)?;
                txs.push(host_tx(&mut net, &mut tb, &payload, frame_len, n)?);
            }
            net.a.miniport().stop();
            drop(net);
            drop(ns_tx);
        }
        let (r, h) = (median(&mut raws), median(&mut hosts));
        let gbit = |fps: f64| fps * (frame_len * 8) as f64 / 1e9;
        println!(
            "{size:>5} B UDP payload ({frame_len} B frames): raw TAP {:.3} Mframes/s \
             ({:.2} Gbit/s), host {:.3} Mframes/s ({:.2} Gbit/s): host/raw = {:.0} % \
             (target >= 80 %)",
            r / 1e6,
            gbit(r),
            h / 1e6,
            gbit(h),
            100.0 * h / r
        );
        let (r, h) = (median(&mut raws_tx), median(&mut txs));
        println!(
            "{size:>5} B UDP payload ({frame_len} B frames), one host sending, NIC on its own \
             thread: raw TAP {:.3} Mframes/s ({:.2} Gbit/s), host {:.3} Mframes/s \
             ({:.2} Gbit/s): host/raw = {:.0} % (target >= 80 %)",
            r / 1e6,
            gbit(r),
            h / 1e6,
            gbit(h),
            100.0 * h / r
        );
    }
    println!("load after: {}", load());
    Ok(())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
