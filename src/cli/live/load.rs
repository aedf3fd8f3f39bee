//! A built-in UDP load generator (hidden subcommands `__udp-send` / `__udp-recv`), used when
//! iperf3 is not installed and by the `run` tests: run inside a namespace with
//! `ip netns exec NS ipsec-nic __udp-recv ...`. Real sockets and the wall clock: CLI only.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What one side of a UDP load run saw (printed as one JSON line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UdpLoad {
    /// Datagrams sent or received.
    pub packets: u64,
    /// Payload bytes sent or received.
    pub bytes: u64,
    /// Seconds from the first to the last datagram (receiver) or of the run (sender).
    pub seconds: f64,
    /// Payload throughput in Mbit/s.
    pub mbit_s: f64,
    /// Receiver: datagrams whose sequence number was not the next expected one.
    pub out_of_order: u64,
    /// Sender: sends the kernel refused (buffer full).
    pub send_errors: u64,
}

fn mbit(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs / 1e6
    } else {
        0.0
    }
}

/// Send `size`-byte datagrams to `to` for `seconds`, paced to about `rate_mbit` Mbit/s of
/// payload (0: as fast as possible). Each payload starts with a 64-bit sequence number.
///
/// # Errors
/// Socket errors (bind, connect).
pub fn udp_send(
    to: SocketAddr,
    seconds: f64,
    size: usize,
    rate_mbit: f64,
) -> std::io::Result<UdpLoad> {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(to)?;
    let size = size.clamp(8, 1400);
    let mut payload = vec![0x5au8; size];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds.max(0.0));
    let mut r = UdpLoad::default();
    let per_packet = if rate_mbit > 0.0 {
        Duration::from_secs_f64(size as f64 * 8.0 / (rate_mbit * 1e6))
    } else {
        Duration::ZERO
    };
    let mut next = start;
    while Instant::now() < end {
        if let Some(b) = payload.get_mut(..8) {
            b.copy_from_slice(&r.packets.to_be_bytes());
        }
        match sock.send(&payload) {
            Ok(n) => {
                r.packets += 1;
                r.bytes += n as u64;
            }
            Err(_) => {
                r.send_errors += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        if !per_packet.is_zero() {
            next += per_packet;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    r.mbit_s = mbit(r.bytes, r.seconds);
    Ok(r)
}

/// Receive datagrams on `bind` until `seconds` pass, or `idle` passes without one after the
/// first arrived, or `expect` datagrams arrived (0: no count limit).
///
/// # Errors
/// Socket errors (bind).
pub fn udp_recv(
    bind: SocketAddr,
    seconds: f64,
    idle: f64,
    expect: u64,
) -> std::io::Result<UdpLoad> {
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
    let idle = Duration::from_secs_f64(idle.max(0.01));
    let mut buf = vec![0u8; 65536];
    let mut r = UdpLoad::default();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let mut next_seq = 0u64;
    while Instant::now() < deadline {
        if first.is_some() && last.elapsed() > idle {
            break;
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                r.packets += 1;
                r.bytes += n as u64;
                let seq = buf
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes);
                if seq != Some(next_seq) {
                    r.out_of_order += 1;
                }
                next_seq = seq.map_or(next_seq, |s| s.saturating_add(1));
                if expect > 0 && r.packets >= expect {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    r.seconds = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    r.mbit_s = mbit(r.bytes, r.seconds);
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_send_and_receive_count_the_same_datagrams() {
        // Port 0 is not usable for the receiver's address to be known: bind, read the port,
        // hand the socket's port to the sender.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let rx = std::thread::spawn(move || udp_recv(addr, 5.0, 1.0, 50).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        let mut sent = UdpLoad::default();
        // Loopback may drop nothing; send until the receiver has its 50 or 3 s pass.
        let t0 = Instant::now();
        while !rx.is_finished() && t0.elapsed() < Duration::from_secs(3) {
            let s = udp_send(addr, 0.05, 200, 5.0).unwrap();
            sent.packets += s.packets;
        }
        let got = rx.join().unwrap();
        assert_eq!(got.packets, 50);
        assert_eq!(got.bytes, 50 * 200);
        assert!(sent.packets >= 50);
    }
}
