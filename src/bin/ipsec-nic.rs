//! `ipsec-nic`: command-line front end of the IPsec offload NIC emulator.
//!
//! Subcommands: `sa export --wireshark` (Wireshark `esp_sa` lines from an SA config file),
//! `pcap encap` / `pcap decap` (offline ESP/AH processing of an Ethernet capture). The SA
//! config format is documented in `ipsec_nic::cli::config`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipsec_nic::cli::{config, export, pcap, process};

/// IPsec crypto-offload NIC emulator: SA configs, Wireshark export, offline pcap processing.
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

#[derive(Subcommand)]
enum Cmd {
    /// SA configuration files.
    #[command(after_long_help = CONFIG_HELP)]
    Sa {
        #[command(subcommand)]
        cmd: SaCmd,
    },
    /// Offline processing of classic Ethernet pcap files.
    ///
    /// Layers exercised (default): host framing (ipsec::Bundle encapsulate/decapsulate, the
    /// calls the host stack makes), anti-replay on receive, and the crypto in the emulated
    /// NIC (nicsim SA table programmed with ADD_SA, lookup by handle / SPI + destination).
    /// Not exercised: the NDIS miniport OIDs and the host stack's WFP layer. With --software
    /// the host does the crypto; the output is byte-identical.
    #[command(after_long_help = CONFIG_HELP)]
    Pcap {
        #[command(subcommand)]
        cmd: PcapCmd,
    },
    /// In-memory end-to-end run: two hosts, Manual SA (AES-GCM-128 transport mode), UDP and
    /// ping A -> B; prints the offloaded SAs, packets/bytes per SA, drops by reason.
    Demo {
        /// UDP datagrams to send A -> B.
        #[arg(long, default_value_t = 10)]
        udp: usize,
        /// Echo requests to send A -> B.
        #[arg(long, default_value_t = 3)]
        pings: usize,
        /// Use IPv6 (2001:db8::1 <-> 2001:db8::2) instead of IPv4.
        #[arg(long)]
        ipv6: bool,
        /// Tunnel mode instead of transport mode.
        #[arg(long)]
        tunnel: bool,
        /// Write the capture at host A's port here (classic pcap).
        #[arg(long)]
        pcap: Option<PathBuf>,
    },
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
    /// Output capture; frame i is input frame i processed (dropped frames are left out).
    #[arg(long)]
    out: PathBuf,
    /// Software crypto on the host instead of the emulated NIC (output is byte-identical).
    #[arg(long)]
    software: bool,
}

#[derive(Subcommand)]
enum PcapCmd {
    /// Protect frames matching an outbound SA (source in `local`, destination in `remote`);
    /// sequence numbers start at the SA's `sequence`. Other frames pass through unchanged.
    Encap(PcapArgs),
    /// Verify, decrypt and strip frames matching an inbound SA (SPI + destination), with
    /// anti-replay. Other frames pass through unchanged; failures are dropped and listed.
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
        Cmd::Demo {
            udp,
            pings,
            ipv6,
            tunnel,
            pcap,
        } => {
            let opts = ipsec_nic::ManualSaOptions {
                ipv6,
                mode: if tunnel {
                    ipsec_nic::SaMode::Tunnel
                } else {
                    ipsec_nic::SaMode::Transport
                },
                ..ipsec_nic::ManualSaOptions::default()
            };
            let r = ipsec_nic::cli::demo::run(&opts, udp, pings)?;
            print!("{}", r.report);
            if let Some(p) = pcap {
                std::fs::write(&p, &r.pcap).map_err(|e| format!("{}: {e}", p.display()))?;
                println!("capture at A's port written to {}", p.display());
            }
            if r.udp_received != udp || r.echo_replies != pings {
                return Err("not everything arrived (see the counters above)".into());
            }
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
            let (out, rep) =
                process::process(&file, &cap, op, a.software).map_err(|e| e.to_string())?;
            std::fs::write(&a.out, pcap::write(&out))
                .map_err(|e| format!("{}: {e}", a.out.display()))?;
            eprintln!(
                "{} frames: {} processed, {} passed through (no SA), {} dropped ({})",
                cap.records.len(),
                rep.processed,
                rep.passed,
                rep.dropped.len(),
                if a.software {
                    "software"
                } else {
                    "NIC offload"
                }
            );
            for (spi, (p, b)) in &rep.per_sa {
                eprintln!("  spi {spi:#010x}: {p} packets, {b} bytes");
            }
            for (reason, n) in &rep.drops {
                eprintln!("  dropped {n}: {reason}");
            }
            for (i, reason) in &rep.dropped {
                eprintln!("  frame {i}: {reason}");
            }
            Ok(())
        }
    }
}
