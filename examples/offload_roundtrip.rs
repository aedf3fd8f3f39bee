//! End-to-end IPsec crypto offload between two emulated NICs, at the NDIS layer.
//!
//! Two virtual miniports are joined by an in-memory wire, captured to a pcap file. Host A's
//! outbound SA and host B's inbound SA are programmed with real `OID_TCP_TASK_IPSEC_ADD_SA`
//! information buffers (byte-exact `OFFLOAD_IPSEC_ADD_SA`). Host A then does what the Windows
//! transport does: it frames UDP packets as ESP (headers, sequence numbers, padding, trailer,
//! room for the ICV) and sends them with the SA's `OffloadHandle`; NIC A encrypts in place. NIC B
//! decrypts and verifies, and indicates each frame with `CryptoDone` / `CryptoStatus`; host B
//! checks anti-replay and strips the ESP framing. A tampered frame and a replayed frame show
//! the failure paths.
//!
//! Run: `cargo run --release --example offload_roundtrip [-- <pcap path>]`
//! (default capture: `target/offload_roundtrip.pcap`, readable by Wireshark).

use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipsec::{
    Bundle, BundleSeq, BundleSeqHi, Classified, Encryption, Integrity, Key, Mode, ProviderKind,
    ReplayWindow,
};
use miniport::{MiniportConfig, NicConfig, VirtualMiniport};
use nicsim::{MemWire, PcapWriter};
use oid::{
    AddSaRequest, ConfAlgorithm, CryptoStatus, Direction, EspSa, IntegrityAlgorithm, KeyOrder,
    Miniport, Nbl, NdisStatus, OffloadHandle, Oid, OidRequest, Protocol, SaBundle, SaOptions,
    SecretKey, Selector, StatusIndication,
};

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const SPI: u32 = 0x0000_1001;
const PACKETS: u64 = 1000;
const HEADROOM: usize = 128;

/// The bound protocol: collects what the miniport indicates.
#[derive(Default)]
struct Collector {
    received: Mutex<Vec<Nbl>>,
    completed: Mutex<Vec<Nbl>>,
}

impl Protocol for Collector {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        lock(&self.received).append(nbls);
    }
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        lock(&self.completed).append(nbls);
    }
    fn status_indication(&self, indication: &StatusIndication<'_>) {
        println!("status indication: {}", indication.status);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Demonstration keys (fixed so the capture can be decrypted with the printed Wireshark entry).
fn key_bytes() -> Vec<u8> {
    (0u8..20)
        .map(|i| i.wrapping_mul(7).wrapping_add(0x11))
        .collect()
}

fn add_sa(m: &dyn Miniport, direction: Direction) -> Result<OffloadHandle, String> {
    let request = AddSaRequest {
        selector: Selector {
            src_addr: A,
            src_mask: Ipv4Addr::BROADCAST,
            dest_addr: B,
            dest_mask: Ipv4Addr::BROADCAST,
            ..Selector::ANY
        },
        tunnel: None,
        direction,
        sas: SaBundle::Esp(EspSa {
            spi: SPI,
            cipher: ConfAlgorithm::AesGcm128,
            cipher_key: SecretKey::new(key_bytes()),
            integrity: IntegrityAlgorithm::None,
            integrity_key: SecretKey::new(Vec::new()),
            options: SaOptions::default(),
        }),
        udp_esp: None,
    };
    let mut buf = request
        .to_bytes(KeyOrder::ConfidentialityFirst)
        .map_err(|e| format!("emit OFFLOAD_IPSEC_ADD_SA: {e}"))?;
    let mut req = OidRequest::set(Oid::TCP_TASK_IPSEC_ADD_SA, &mut buf);
    let status = m.oid_request(&mut req);
    if status != NdisStatus::SUCCESS {
        return Err(format!("OID_TCP_TASK_IPSEC_ADD_SA failed: {status}"));
    }
    AddSaRequest::read_offload_handle(&buf).ok_or_else(|| "no OffloadHandle written".into())
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP/IPv4 packet A:5000 -> B:5001 (UDP checksum 0, which IPv4 allows).
fn udp_packet(payload: &[u8], out: &mut [u8]) -> usize {
    let total = 28 + payload.len();
    let p = &mut out[..total];
    p.fill(0);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&A.octets());
    p[16..20].copy_from_slice(&B.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    total
}

/// Host A's transport: frame one packet as ESP into a send Nbl (Ethernet + ESP, ICV room).
fn frame(host: &Bundle, seq: u64, handle: OffloadHandle, payload: &[u8]) -> Result<Nbl, String> {
    let mut nbl = Nbl::with_capacity(2048, 0);
    let start = HEADROOM;
    let len = udp_packet(payload, &mut nbl.buffer[start..]);
    let esp = host
        .encapsulate(
            BundleSeq { esp: seq, ah: 0 },
            &mut nbl.buffer,
            start..start + len,
        )
        .map_err(|e| format!("encapsulate: {e:?}"))?;
    let eth = esp.start - 14;
    nbl.buffer[eth..eth + 6].copy_from_slice(&MAC_B);
    nbl.buffer[eth + 6..eth + 12].copy_from_slice(&MAC_A);
    nbl.buffer[eth + 12..eth + 14].copy_from_slice(&0x0800u16.to_be_bytes());
    nbl.data = eth..esp.end;
    nbl.send_info.offload_handle = handle;
    nbl.cookie = seq;
    Ok(nbl)
}

fn run() -> Result<(), String> {
    let pcap_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/offload_roundtrip.pcap".into());
    if let Some(dir) = std::path::Path::new(&pcap_path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let capture = File::create(&pcap_path).map_err(|e| format!("{pcap_path}: {e}"))?;

    let provider = ProviderKind::fastest();
    let config = MiniportConfig {
        nic: NicConfig {
            provider,
            ..NicConfig::default()
        },
        ..MiniportConfig::default()
    };
    let (wire_a, wire_b) = MemWire::pair();
    let nic_a =
        VirtualMiniport::initialize(config, PcapWriter::new(wire_a, BufWriter::new(capture)));
    let nic_b = VirtualMiniport::initialize(config, wire_b);
    let (proto_a, proto_b) = (
        Arc::new(Collector::default()),
        Arc::new(Collector::default()),
    );
    nic_a.bind(proto_a.clone());
    nic_b.bind(proto_b.clone());

    // Manual keying, offloaded with OID_TCP_TASK_IPSEC_ADD_SA on both NICs.
    let out_handle = add_sa(&nic_a, Direction::Outbound)?;
    let in_handle = add_sa(&nic_b, Direction::Inbound)?;
    println!(
        "offloaded: outbound SA {SPI:#010x} on A = {out_handle:?}, inbound on B = {in_handle:?}"
    );

    // The hosts' own view of the SA (the transport frames and strips; the NIC does the crypto).
    let params = ipsec::SaParams {
        spi: SPI,
        protocol: ipsec::Protocol::Esp,
        mode: Mode::Transport,
        encryption: Encryption::AesGcm128,
        encryption_key: Key::new(&key_bytes()),
        integrity: Integrity::None,
        integrity_key: Key::empty(),
        esn: false,
        tunnel: None,
        udp_encap: None,
    };
    let host = Bundle::new(&[params], provider).map_err(|e| format!("SA: {e}"))?;
    let mut replay = ReplayWindow::new(64).map_err(|e| format!("replay window: {e}"))?;

    let mut delivered = 0u64;
    let mut delivered_bytes = 0u64;
    let mut replay_drops = 0u64;
    let mut auth_failures = 0u64;
    let mut now = Duration::ZERO;
    let started = std::time::Instant::now();

    // 1..=PACKETS: normal traffic, encrypted by NIC A. Then an attacker on the wire sends a
    // tampered copy of a fresh packet and an exact replay of packet 3. The attacker's frames are
    // built with the software crypto path (`Bundle::protect`), which yields the very bytes NIC A
    // produces, and are sent with a NULL OffloadHandle (NIC A passes them through untouched).
    for step in 1..=PACKETS + 2 {
        let (seq, attack) = match step {
            s if s <= PACKETS => (s, None),
            s if s == PACKETS + 1 => (PACKETS + 1, Some("tamper")),
            _ => (3, Some("replay")),
        };
        let payload = format!("datagram {seq:05} through the emulated offload NIC");
        let mut nbl = match attack {
            None => frame(&host, seq, out_handle, payload.as_bytes())?,
            Some(kind) => {
                let mut nbl = frame(&host, seq, OffloadHandle::NULL, payload.as_bytes())?;
                let ip = nbl.data.start + 14..nbl.data.end;
                host.protect(&mut nbl.buffer[ip], BundleSeqHi::default())
                    .map_err(|e| format!("software protect: {e:?}"))?;
                if kind == "tamper" {
                    let at = nbl.data.end - 20;
                    nbl.buffer[at] ^= 0x01;
                }
                nbl
            }
        };
        nbl.cookie = step;
        nic_a.send_net_buffer_lists(&mut vec![nbl]);
        now += Duration::from_micros(10);
        nic_a.poll(now);
        nic_b.poll(now);

        for done in lock(&proto_a.completed).drain(..) {
            if done.status != NdisStatus::SUCCESS {
                return Err(format!(
                    "send {} completed with {}",
                    done.cookie, done.status
                ));
            }
        }
        let mut returned = Vec::new();
        for mut nbl in lock(&proto_b.received).drain(..) {
            // Host B's transport: the NIC already decrypted and verified; check its verdict,
            // then anti-replay, then strip the ESP framing.
            let info = nbl.receive_info;
            if !info.crypto_done || info.crypto_status != CryptoStatus::SUCCESS {
                auth_failures += 1;
                println!(
                    "dropped: crypto_done={} status={:?}",
                    info.crypto_done, info.crypto_status
                );
                returned.push(nbl);
                continue;
            }
            let ip = nbl.data.start + 14..nbl.data.end;
            let seq_lo = match nbl.buffer.get(ip.clone()).map(|p| ipsec::classify(p, &[])) {
                Some(Ok(Classified::Esp(key))) => key.seq_lo,
                _ => {
                    returned.push(nbl);
                    continue;
                }
            };
            if replay.check(u64::from(seq_lo)).is_err() {
                replay_drops += 1;
                println!("dropped: replayed sequence number {seq_lo}");
                returned.push(nbl);
                continue;
            }
            let plain = host
                .decapsulate(
                    &mut nbl.buffer,
                    ip,
                    BundleSeq {
                        esp: replay.highest(),
                        ah: 0,
                    },
                )
                .map_err(|e| format!("decapsulate: {e:?}"))?;
            replay.update(plain.seq.esp);
            let pkt = &nbl.buffer[plain.packet.clone()];
            let expected = format!(
                "datagram {:05} through the emulated offload NIC",
                plain.seq.esp
            );
            if pkt.get(28..) != Some(expected.as_bytes()) {
                return Err(format!("payload of seq {} corrupted", plain.seq.esp));
            }
            delivered += 1;
            delivered_bytes += pkt.len() as u64;
            returned.push(nbl);
        }
        if !returned.is_empty() {
            nic_b.return_net_buffer_lists(&mut returned);
        }
    }
    let elapsed = started.elapsed();

    let a = nic_a.nic_stats();
    let b = nic_b.nic_stats();
    println!();
    println!("provider                  {}", provider.name());
    println!("frames encrypted by NIC A {}", a.tx_protected);
    println!(
        "frames verified by NIC B  {} (auth failures {})",
        b.rx_ok, b.rx_transport_esp_auth_failed
    );
    println!("delivered to host B       {delivered} packets, {delivered_bytes} bytes, intact");
    println!("dropped by host B         {replay_drops} replayed, {auth_failures} failed crypto");
    println!(
        "wall time                 {:.1} ms ({:.0} packets/s through both NICs)",
        elapsed.as_secs_f64() * 1e3,
        delivered as f64 / elapsed.as_secs_f64()
    );
    println!("capture                   {pcap_path}");
    println!(
        "wireshark esp_sa entry    \"IPv4\",\"{A}\",\"{B}\",\"{SPI:#010x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
        key_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!();
    println!("NIC B SA table:\n{}", nic_b.dump());

    if delivered != PACKETS || replay_drops != 1 || auth_failures != 1 {
        return Err("unexpected outcome (see counters above)".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("offload_roundtrip: {e}");
            ExitCode::FAILURE
        }
    }
}
