//! `ipsec-nic`: command-line front end of the IPsec offload NIC emulator.
//!
//! Subcommands: `demo` (real Linux traffic through two emulated hosts in network namespaces,
//! or the in-memory scenario without the privilege), `run` (one emulated host on a TAP wire
//! port until stopped) and `stats` (its live counters), `sa export --wireshark` (Wireshark
//! `esp_sa` lines from an SA config file), `pcap encap` / `pcap decap` (offline ESP/AH
//! processing of an Ethernet capture). The SA and host config formats are documented in
//! `ipsec_nic::cli::config`; the real-traffic parts live in `ipsec_nic::cli::live`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipsec_nic::cli::live::demo::{Decision, LiveError, LiveOptions};
use ipsec_nic::cli::{config, export, live, pcap, process};

/// IPsec crypto-offload NIC emulator: real-traffic demo, emulated hosts on TAP devices, SA
/// configs, Wireshark export, offline pcap processing.
#[derive(Parser)]
#[command(name = "ipsec-nic", version, about, long_about = None)]
struct Cli {
    /// Log verbosity (-v info, -vv debug). Logs never contain key bytes.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Largest input capture read (bytes): the whole file is held in memory.
const MAX_PCAP_BYTES: u64 = 1 << 30;

const CONFIG_HELP: &str = "\
SA config file format (TOML), one [[sa]] table per SA:

  [[sa]]
  spi = 0x1001              # integer, 256..=0xffffffff
  direction = \"outbound\"    # \"outbound\" | \"inbound\"
  protocol = \"esp\"          # \"esp\" | \"ah\"
  mode = \"transport\"        # \"transport\" (default) | \"tunnel\"
  local = \"192.0.2.1\"       # selector: this host's address or prefix (IPv4 or IPv6)
  remote = \"192.0.2.2\"      # selector: the peer's address or prefix
  tunnel_local = \"203.0.113.1\"   # tunnel mode only: outer addresses
  tunnel_remote = \"203.0.113.2\"
  encryption = \"aes-gcm-128\"     # aes-gcm-128|192|256, aes-cbc-128|192|256, null, none
  integrity = \"none\"             # hmac-sha256-128, hmac-sha1-96, aes-gmac-128|192|256, none
  encryption_key = \"00112233...\" # hex; for GCM/GMAC the AES key followed by the 4-byte salt
  integrity_key = \"\"             # hex
  esn = false
  sequence = 1                   # next sequence number to send (64-bit with ESN)
  replay_window = 64             # 32..=65536
  udp_encap = { local_port = 4500, remote_port = 4500 }   # optional, NAT-T, ESP only

Errors name the file, the SA (index and SPI) and the field; nothing runs then.
Key bytes are printed only by `sa export`.";

const HOST_HELP: &str = "\
Host config = the SA config format (see `ipsec-nic sa --help`) plus one [host] section:

  [host]
  name = \"A\"                          # stats file name; [A-Za-z0-9_-], 1..=32
  mac = \"02:00:00:00:00:01\"           # the NIC's MAC on the wire
  addresses = [\"192.0.2.1/24\"]        # the host's addresses (prefix: for the host side)
  neighbors = { \"192.0.2.2\" = \"02:00:00:00:00:02\" }   # peer IP -> MAC on the wire
  wire_tap = \"ipsnA0\"                 # TAP of the NIC's port (created or attached)
  host_tap = \"ipshA0\"                 # optional: Linux traffic enters through this TAP
  namespace = \"blue\"                  # optional, instead of host_tap: a TAP is created
                                      # in this existing netns and addressed
  offload = true                      # default true
  provider = \"fastest\"                # fastest | rustcrypto | aws-lc
  nic_capacity = 16                   # SAs per direction in the NIC
  replay_window = 64                  # default: what the inbound SAs say

SAs are installed through the host's WFP engine (filters + SA contexts; every protocol
between the selectors is protected). Counters go to the stats file every second
(`ipsec-nic stats --name A`). Stops on SIGINT/SIGTERM or after --seconds.";

#[derive(Subcommand)]
enum Cmd {
    /// SA configuration files.
    #[command(after_long_help = CONFIG_HELP)]
    Sa {
        #[command(subcommand)]
        cmd: SaCmd,
    },
    /// Offline processing of classic Ethernet pcap files through one emulated host.
    ///
    /// Layers exercised: the SAs are installed with the WFP Manual SA calls (filters,
    /// IPsecSaContextCreate0/SetSpi0/AddInbound0/AddOutbound0, Update0 for NAT-T); the host
    /// stack classifies every packet with those filters, frames ESP/AH and offloads each SA
    /// to the miniport with OID_TCP_TASK_IPSEC_ADD_SA (IPv6/ESN: OFFLOAD_V2_ADD_SA_EX); the
    /// emulated NIC encrypts, decrypts and checks ICVs; on receive the stack checks replay
    /// and policy and delivers the inner packet. Processing starts only once every SA is
    /// offloaded. With --software offload is off and the stack does the crypto; the output
    /// is byte-identical.
    ///
    /// Correspondence: output frames follow input order and keep the input timestamps and
    /// Ethernet addresses (the EtherType follows the outer IP version); there is one output
    /// frame per input frame except dropped ones. Every dropped input frame is listed by its
    /// 1-based number (as Wireshark numbers frames), so output frame i is input frame i minus
    /// the drops before it. The summary counts processed, passed (by reason) and dropped
    /// (by reason) frames and packets/bytes per SA.
    ///
    /// Host-model rules for the config: transport-mode selectors are host addresses (an SA
    /// context names one address pair; prefixes are for tunnel mode), all inbound SAs share
    /// one replay_window, NAT-T is IPv4 only, and IPv6/ESN tunnel SAs and IPv6 NAT-T cannot be
    /// offloaded (use --software for them).
    #[command(after_long_help = CONFIG_HELP)]
    Pcap {
        #[command(subcommand)]
        cmd: PcapCmd,
    },
    /// The end-to-end demo: real Linux traffic through two emulated hosts.
    ///
    /// As root (CAP_NET_ADMIN): two network namespaces whose Linux stacks sit on top of two
    /// emulated hosts (a TAP device each, joined to the host's stack); the hosts run the
    /// Manual SA scenario (AES-GCM-128 transport mode by default) with their NICs on an
    /// in-memory wire. `ping` A -> B passes in clear (ICMP is exempt), iperf3 TCP and UDP
    /// (or a built-in UDP generator without iperf3) pass as ESP through the NICs. Prints the
    /// offloaded SAs, packets and bytes per SA, drops by reason, throughput; writes the
    /// capture of the wire and the SA config (keys, for `sa export --wireshark`).
    /// Namespaces are removed on exit, also on Ctrl-C. Without the privilege: the same
    /// scenario over the in-memory wire only (exit 0).
    Demo(DemoArgs),
    /// Run one emulated host on a TAP wire port until stopped.
    ///
    /// SAs from a host config; stops on SIGINT/SIGTERM or after --seconds; writes live
    /// counters to a stats file every second.
    #[command(after_long_help = HOST_HELP)]
    Run(RunArgs),
    /// Print the live counters of a running host (`ipsec-nic run`) as a table or JSON.
    Stats(StatsArgs),
    /// Built-in UDP load sender (used by the demo without iperf3; prints JSON).
    #[command(name = "__udp-send", hide = true)]
    UdpSend {
        /// Destination `addr:port`.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// Seconds to send.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Payload bytes per datagram.
        #[arg(long, default_value_t = 1200)]
        size: usize,
        /// Payload rate in Mbit/s (0: unpaced).
        #[arg(long, default_value_t = 0.0)]
        rate_mbit: f64,
    },
    /// Built-in UDP load receiver (prints JSON).
    #[command(name = "__udp-recv", hide = true)]
    UdpRecv {
        /// Local `addr:port`.
        #[arg(long)]
        bind: std::net::SocketAddr,
        /// Longest wait, seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop after this long without a datagram once one arrived.
        #[arg(long, default_value_t = 1.0)]
        idle: f64,
        /// Stop after this many datagrams (0: no limit).
        #[arg(long, default_value_t = 0)]
        expect: u64,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Seconds of each throughput run (iperf3 TCP, iperf3 UDP).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// SA transforms: aes-gcm-128 (default), aes-gcm-192, aes-gcm-256, aes-gmac-128,
    /// aes-cbc-128-hmac-sha256, aes-cbc-256-hmac-sha256, aes-cbc-128-hmac-sha1,
    /// null-hmac-sha256, null-hmac-sha1, ah-hmac-sha1, ah-hmac-sha256, aes-gcm-128+ah-hmac-sha1.
    #[arg(long, default_value = "aes-gcm-128")]
    algorithm: String,
    /// Offload off: the hosts do IPsec in software (for comparison).
    #[arg(long)]
    software: bool,
    /// Tunnel mode instead of transport mode.
    #[arg(long)]
    tunnel: bool,
    /// Protect IPv6 (2001:db8::1 <-> 2001:db8::2) instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// UDP run's target rate (iperf3 -b syntax).
    #[arg(long, default_value = "200M")]
    udp_rate: String,
    /// Capture of the wire at host A's port (classic pcap).
    #[arg(long, default_value = "ipsec-nic-demo.pcap")]
    pcap: PathBuf,
    /// Largest capture, MiB (the capture stops there; traffic goes on).
    #[arg(long, default_value_t = 64)]
    pcap_limit_mib: u64,
    /// SA config file written for `sa export --wireshark` (contains KEYS; default: next to
    /// the capture, `<pcap stem>.sas.toml`).
    #[arg(long)]
    sa_config: Option<PathBuf>,
    /// Run the in-memory scenario (no namespaces, no Linux traffic).
    #[arg(long)]
    in_memory: bool,
    /// Use the built-in UDP generator even if iperf3 is installed.
    #[arg(long)]
    builtin_load: bool,
    /// Machine-readable summary on stdout (JSON), incl. throughput.
    #[arg(long)]
    json: bool,
    /// In-memory scenario: UDP datagrams to send A -> B (implies --in-memory; default 10).
    #[arg(long)]
    udp: Option<usize>,
    /// In-memory scenario: echo requests to send A -> B (implies --in-memory; default 3).
    #[arg(long)]
    pings: Option<usize>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Host config: the SA config format plus a [host] section (see the help below).
    #[arg(long)]
    config: PathBuf,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    seconds: Option<f64>,
    /// Stats file (JSON, rewritten every second; default $XDG_RUNTIME_DIR or /tmp
    /// `ipsec-nic-<name>.json`).
    #[arg(long)]
    stats_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct StatsArgs {
    /// Stats file to read.
    #[arg(long, conflicts_with = "name")]
    file: Option<PathBuf>,
    /// Host name (reads the default stats file of that host).
    #[arg(long)]
    name: Option<String>,
    /// Print the JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Re-print every SECS seconds until interrupted.
    #[arg(long)]
    watch: Option<f64>,
}

#[derive(Subcommand)]
enum SaCmd {
    /// Print the SAs of a config file for another tool (prints KEYS on stdout).
    Export {
        /// Wireshark `esp_sa` UAT lines (one per ESP SA; AH and GMAC SAs are skipped with a
        /// note on stderr). Use each line with `tshark -o "uat:esp_sa:<line>"`.
        #[arg(long, required = true)]
        wireshark: bool,
        /// SA config file (TOML, `[[sa]]` tables).
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a config file and list its SAs (no keys).
    Check {
        /// SA config file (TOML, `[[sa]]` tables).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(clap::Args)]
struct PcapArgs {
    /// SA config file (TOML, `[[sa]]` tables).
    #[arg(long)]
    config: PathBuf,
    /// Input capture (classic pcap, LINKTYPE_ETHERNET).
    #[arg(long = "in")]
    input: PathBuf,
    /// Output capture: input order and timestamps; dropped frames are left out and listed.
    #[arg(long)]
    out: PathBuf,
    /// Offload off: the host stack's software crypto instead of the emulated NIC (no
    /// ADD_SA OIDs; the output is byte-identical).
    #[arg(long)]
    software: bool,
}

#[derive(Subcommand)]
enum PcapCmd {
    /// Send each input IP packet through the host: packets an outbound SA's filter selects
    /// (source in `local`, destination in `remote`) leave protected, numbered from the SA's
    /// `sequence`; others pass through unchanged. An outbound SA needs no inbound partner
    /// here (it gets a receive-only one; see `ipsec_nic::cli::install`).
    Encap(PcapArgs),
    /// Receive each input frame on the host's NIC: ESP/AH frames for an inbound SA of the file
    /// (SPI and protocol) are verified, decrypted, replay-checked and stripped; failures are
    /// dropped and listed with their frame number. Other frames pass through unchanged.
    Decap(PcapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipsec-nic: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Sa {
            cmd:
                SaCmd::Export {
                    wireshark: _,
                    config: path,
                },
        } => {
            let file = config::load(&path).map_err(|e| e.to_string())?;
            let ex = export::wireshark(&file);
            for n in &ex.notes {
                eprintln!("note: {n}");
            }
            for l in &ex.lines {
                println!("{l}");
            }
            Ok(())
        }
        Cmd::Sa {
            cmd: SaCmd::Check { config: path },
        } => {
            let file = config::load(&path).map_err(|e| e.to_string())?;
            for sa in &file.sas {
                println!(
                    "sa[{}] spi {:#x} {:?} {:?} {:?} {} -> {} enc {:?} int {:?}",
                    sa.index,
                    sa.params.spi,
                    sa.direction,
                    sa.params.protocol,
                    sa.params.mode,
                    sa.local,
                    sa.remote,
                    sa.params.encryption,
                    sa.params.integrity
                );
            }
            Ok(())
        }
        Cmd::Demo(a) => demo(a),
        Cmd::Run(a) => run_host(a),
        Cmd::Stats(a) => stats(a),
        Cmd::UdpSend {
            to,
            seconds,
            size,
            rate_mbit,
        } => {
            let r =
                live::load::udp_send(to, seconds, size, rate_mbit).map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            Ok(())
        }
        Cmd::UdpRecv {
            bind,
            seconds,
            idle,
            expect,
        } => {
            let r = live::load::udp_recv(bind, seconds, idle, expect).map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            Ok(())
        }
        Cmd::Pcap { cmd } => {
            let (op, a) = match cmd {
                PcapCmd::Encap(a) => (process::Op::Encap, a),
                PcapCmd::Decap(a) => (process::Op::Decap, a),
            };
            let file = config::load(&a.config).map_err(|e| e.to_string())?;
            let size = std::fs::metadata(&a.input)
                .map_err(|e| format!("{}: {e}", a.input.display()))?
                .len();
            if size > MAX_PCAP_BYTES {
                return Err(format!(
                    "{}: {size} bytes, larger than the {MAX_PCAP_BYTES}-byte limit",
                    a.input.display()
                ));
            }
            let bytes =
                std::fs::read(&a.input).map_err(|e| format!("{}: {e}", a.input.display()))?;
            let cap = pcap::parse(&bytes).map_err(|e| format!("{}: {e}", a.input.display()))?;
            let (out, rep) = process::process(&file, &cap, op, a.software)
                .map_err(|e| format!("{}: {e}", a.config.display()))?;
            std::fs::write(&a.out, pcap::write(&out))
                .map_err(|e| format!("{}: {e}", a.out.display()))?;
            eprintln!(
                "{} frames: {} processed, {} passed through (no SA), {} dropped ({}; {} by \
                 the NIC, {} ADD_SA OIDs)",
                cap.records.len(),
                rep.processed,
                rep.passed,
                rep.dropped.len(),
                if a.software {
                    "software"
                } else {
                    "NIC offload"
                },
                rep.nic_crypto,
                rep.stack.offload.add_sa_ok
            );
            for (spi, (p, b)) in &rep.per_sa {
                eprintln!("  spi {spi:#010x}: {p} packets, {b} bytes");
            }
            for (reason, n) in &rep.passed_by_reason {
                eprintln!("  passed {n}: {reason}");
            }
            for (reason, n) in &rep.drops {
                eprintln!("  dropped {n}: {reason}");
            }
            for (i, reason) in &rep.dropped {
                eprintln!("  dropped frame {i}: {reason}");
            }
            Ok(())
        }
    }
}

/// The stop flag raised by SIGINT/SIGTERM (installed once, by the commands that loop).
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    if let Err(e) = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)) {
        tracing::warn!("no signal handler: {e}");
    }
    stop
}

fn demo(a: DemoArgs) -> Result<(), String> {
    let algorithms = live::demo::parse_algorithm(&a.algorithm)?;
    let mode = if a.tunnel {
        ipsec_nic::SaMode::Tunnel
    } else {
        ipsec_nic::SaMode::Transport
    };
    let in_memory = a.in_memory || a.udp.is_some() || a.pings.is_some();
    let mut attempt = None;
    if live::demo::decide(in_memory, None) == Decision::Namespaces {
        let stop = stop_flag();
        let sa_config = a
            .sa_config
            .clone()
            .unwrap_or_else(|| a.pcap.with_extension("sas.toml"));
        let opts = LiveOptions {
            algorithms,
            mode,
            ipv6: a.ipv6,
            software: a.software,
            seconds: a.seconds,
            udp_rate: a.udp_rate.clone(),
            pcap: a.pcap.clone(),
            pcap_limit: a.pcap_limit_mib.saturating_mul(1 << 20),
            sa_config,
            builtin_load: a.builtin_load,
            progress: !a.json,
        };
        match live::demo::run(&opts, &stop) {
            Ok(s) => {
                if a.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
                    );
                } else {
                    print!("{}", live::demo::render(&s));
                }
                return if s.ok {
                    Ok(())
                } else {
                    Err("the demo did not reach its goals (see the counters above)".into())
                };
            }
            Err(e) => attempt = Some(e),
        }
    }
    match live::demo::decide(in_memory, attempt.as_ref()) {
        Decision::Namespaces => Err("internal: namespace demo not attempted".into()),
        Decision::Fail => match attempt {
            Some(LiveError::Interrupted) => Err("interrupted (namespaces removed)".into()),
            Some(e) => Err(format!("demo: {e}")),
            None => Err("demo failed".into()),
        },
        d @ (Decision::InMemoryRequested | Decision::InMemoryFallback) => {
            if let (Decision::InMemoryFallback, Some(e)) = (d, &attempt) {
                eprintln!("{}", live::demo::fallback_message(&e.to_string()));
                if !a.json {
                    println!("{}", live::demo::fallback_message(&e.to_string()));
                }
            }
            in_memory_demo(&a, algorithms, mode)
        }
    }
}

fn in_memory_demo(
    a: &DemoArgs,
    algorithms: ipsec_nic::Algorithms,
    mode: ipsec_nic::SaMode,
) -> Result<(), String> {
    let opts = ipsec_nic::ManualSaOptions {
        ipv6: a.ipv6,
        mode,
        algorithms,
        ..ipsec_nic::ManualSaOptions::default()
    };
    let (udp, pings) = (a.udp.unwrap_or(10), a.pings.unwrap_or(3));
    let r = ipsec_nic::cli::demo::run(&opts, udp, pings)?;
    std::fs::write(&a.pcap, &r.pcap).map_err(|e| format!("{}: {e}", a.pcap.display()))?;
    let ok = r.udp_received == udp && r.echo_replies == pings;
    if a.json {
        let v = serde_json::json!({
            "mode": "in-memory",
            "algorithm": format!("{algorithms:?}"),
            "offload": true,
            "udp_sent": udp,
            "udp_received": r.udp_received,
            "ping": { "sent": pings, "received": r.echo_replies },
            "pcap": a.pcap.display().to_string(),
            "report": r.report,
            "ok": ok,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", r.report);
        println!("capture at A's port written to {}", a.pcap.display());
    }
    if ok {
        Ok(())
    } else {
        Err("not everything arrived (see the counters above)".into())
    }
}

fn run_host(a: RunArgs) -> Result<(), String> {
    let stop = stop_flag();
    let opts = live::run::RunOptions {
        config: a.config,
        seconds: a.seconds,
        stats_file: a.stats_file,
    };
    let last = live::run::run(&opts, &stop, |m| {
        use std::io::Write as _;
        println!("{m}");
        let _ = std::io::stdout().flush();
    })?;
    print!("{}", live::stats::render(&last));
    Ok(())
}

fn stats(a: StatsArgs) -> Result<(), String> {
    let path = match (a.file, a.name) {
        (Some(f), _) => f,
        (None, Some(n)) => live::stats::default_path(&n),
        (None, None) => return Err("stats: give --file FILE or --name HOST".into()),
    };
    let stop = a.watch.map(|_| stop_flag());
    loop {
        let h = live::stats::read(&path)?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&h).map_err(|e| e.to_string())?
            );
        } else {
            print!("{}", live::stats::render(&h));
        }
        let (Some(secs), Some(stop)) = (a.watch, stop.as_ref()) else {
            return Ok(());
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs.max(0.1));
        while std::time::Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        println!();
    }
}
