//! The external-stack adapter: a Linux TAP device whose Linux side is a real IP stack (in a
//! network namespace) sitting on top of an emulated [`HostStack`].
//!
//! Frames Linux writes into the TAP are stripped of their Ethernet header and handed to
//! [`HostStack::send_ip`] (the emulated host then applies its IPsec policy and its NIC does
//! the crypto); packets the stack delivers ([`HostStack::take_delivered_ip`], with
//! [`HostStack::set_external`] on) are wrapped in Ethernet and written into the TAP. ARP
//! requests from Linux are answered with the adapter's own MAC, so static neighbor entries
//! are optional. Buffers circulate between the TAP port and the adapter (bounded pool), so
//! the steady state allocates nothing.

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use nicsim::{Frame, TxStatus, Wire, WireError};
use transport::HostStack;

const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const POOL_MAX: usize = 512;
/// Frames read from the TAP per [`HostSide::ingress`] call.
pub const BATCH: usize = 64;

/// Counters of one adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// IP packets from Linux handed to the stack.
    pub to_stack: u64,
    /// Packets from Linux the stack refused (no buffer, too large, malformed).
    pub stack_refused: u64,
    /// Frames from Linux ignored (multicast/broadcast, not IP, IPv6 multicast destination).
    pub ignored: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// Packets the stack delivered, written into the TAP.
    pub to_linux: u64,
    /// Frames the TAP refused.
    pub tap_errors: u64,
    /// Receive or transmit calls on the port that failed (e.g. the link went away).
    pub port_errors: u64,
}

/// One TAP device (or any frame port) joined to a host stack as its external stack.
pub struct HostSide<W: Wire> {
    port: W,
    /// The MAC Linux's interface has (destination of frames written into the TAP).
    linux_mac: [u8; 6],
    /// The MAC the adapter answers with (source of frames written into the TAP).
    own_mac: [u8; 6],
    pool: Vec<Vec<u8>>,
    rx: Vec<Frame>,
    tx: Vec<Frame>,
    done: Vec<Frame>,
    ip: Vec<u8>,
    stats: BridgeStats,
}

impl<W: Wire> core::fmt::Debug for HostSide<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostSide")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<W: Wire> HostSide<W> {
    /// Join `port` (Linux's interface has `linux_mac`); the adapter poses as `own_mac`.
    pub fn new(port: W, linux_mac: [u8; 6], own_mac: [u8; 6]) -> Self {
        HostSide {
            port,
            linux_mac,
            own_mac,
            pool: Vec::new(),
            rx: Vec::with_capacity(BATCH),
            tx: Vec::with_capacity(BATCH),
            done: Vec::with_capacity(BATCH),
            ip: Vec::with_capacity(2048),
            stats: BridgeStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> BridgeStats {
        self.stats
    }

    /// The port.
    pub fn port(&self) -> &W {
        &self.port
    }

    /// Read up to [`BATCH`] frames from the port and hand their IP packets to `stack`.
    /// Returns the frames read.
    ///
    /// # Errors
    /// The port's receive error.
    pub fn ingress(&mut self, now: Duration, stack: &mut HostStack) -> Result<usize, WireError> {
        let n = match self.port.receive(now, &mut self.rx, BATCH) {
            Ok(n) => n,
            Err(e) => {
                self.stats.port_errors += 1;
                return Err(e);
            }
        };
        let mut frames = core::mem::take(&mut self.rx);
        for f in frames.drain(..) {
            match classify(f.bytes()) {
                Ingress::Ip(range) => {
                    let pkt = f.bytes().get(range).unwrap_or_default();
                    match stack.send_ip(now, pkt) {
                        Ok(_) => self.stats.to_stack += 1,
                        Err(_) => self.stats.stack_refused += 1,
                    }
                }
                Ingress::ArpRequest {
                    sender_mac,
                    sender_ip,
                    target_ip,
                } => {
                    self.reply_arp(sender_mac, sender_ip, target_ip);
                }
                Ingress::Ignore => self.stats.ignored += 1,
            }
            self.give_back(f.buf);
        }
        self.rx = frames;
        self.flush(now)?;
        Ok(n)
    }

    /// Write every packet `stack` delivered into the port. Returns the packets written.
    ///
    /// # Errors
    /// The port's transmit error.
    pub fn egress(&mut self, now: Duration, stack: &mut HostStack) -> Result<usize, WireError> {
        let mut n = 0;
        while stack.take_delivered_ip(&mut self.ip) {
            let ethertype = match self.ip.first().map(|b| b >> 4) {
                Some(4) => ETHERTYPE_IPV4,
                Some(6) => ETHERTYPE_IPV6,
                _ => continue,
            };
            let mut buf = self.take_buf();
            buf.extend_from_slice(&self.linux_mac);
            buf.extend_from_slice(&self.own_mac);
            buf.extend_from_slice(&ethertype.to_be_bytes());
            buf.extend_from_slice(&self.ip);
            let len = buf.len();
            self.tx.push(Frame::new(buf, 0..len));
            n += 1;
            if self.tx.len() >= BATCH {
                self.flush(now)?;
            }
        }
        self.flush(now)?;
        Ok(n)
    }

    fn reply_arp(&mut self, sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) {
        if sender_ip == target_ip {
            // Gratuitous ARP: nothing to answer.
            self.stats.ignored += 1;
            return;
        }
        let mut buf = self.take_buf();
        buf.extend_from_slice(&sender_mac);
        buf.extend_from_slice(&self.own_mac);
        buf.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 2 (reply): RFC 826.
        buf.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        buf.extend_from_slice(&self.own_mac);
        buf.extend_from_slice(&target_ip.octets());
        buf.extend_from_slice(&sender_mac);
        buf.extend_from_slice(&sender_ip.octets());
        let len = buf.len();
        self.tx.push(Frame::new(buf, 0..len));
        self.stats.arp_replies += 1;
    }

    fn flush(&mut self, now: Duration) -> Result<(), WireError> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let sent = self.tx.len() as u64;
        if let Err(e) = self.port.transmit(now, &mut self.tx, &mut self.done) {
            self.stats.port_errors += 1;
            self.stats.tap_errors += sent;
            self.tx.clear();
            return Err(e);
        }
        let mut errors = 0;
        let mut done = core::mem::take(&mut self.done);
        for f in done.drain(..) {
            if f.tx.status != TxStatus::Sent {
                errors += 1;
            }
            self.give_back(f.buf);
        }
        self.done = done;
        self.stats.tap_errors += errors;
        self.stats.to_linux += sent.saturating_sub(errors);
        Ok(())
    }

    fn take_buf(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        b.clear();
        b
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        if buf.capacity() > 0 && self.pool.len() < POOL_MAX {
            self.pool.push(buf);
        }
    }
}

/// What a frame from Linux is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ingress {
    /// A unicast IP packet at this byte range of the frame.
    Ip(core::ops::Range<usize>),
    /// An ARP request.
    ArpRequest {
        sender_mac: [u8; 6],
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// Anything else.
    Ignore,
}

fn classify(f: &[u8]) -> Ingress {
    let Some(ethertype) = f.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return Ingress::Ignore;
    };
    let dst_multicast = f.first().is_some_and(|b| b & 1 == 1);
    match ethertype {
        ETHERTYPE_ARP => {
            let Some(a) = f.get(ETH_LEN..ETH_LEN + 28) else {
                return Ingress::Ignore;
            };
            if a.get(0..8) != Some(&[0, 1, 0x08, 0x00, 6, 4, 0, 1][..]) {
                return Ingress::Ignore;
            }
            let mut sender_mac = [0u8; 6];
            sender_mac.copy_from_slice(a.get(8..14).unwrap_or(&[0; 6]));
            let ip4 = |r: core::ops::Range<usize>| {
                let mut o = [0u8; 4];
                o.copy_from_slice(a.get(r).unwrap_or(&[0; 4]));
                Ipv4Addr::from(o)
            };
            Ingress::ArpRequest {
                sender_mac,
                sender_ip: ip4(14..18),
                target_ip: ip4(24..28),
            }
        }
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 if !dst_multicast => {
            let ip = f.get(ETH_LEN..).unwrap_or_default();
            let Some(dst) = ip_dst(ip) else {
                return Ingress::Ignore;
            };
            if dst.is_multicast() || dst == IpAddr::V4(Ipv4Addr::BROADCAST) {
                return Ingress::Ignore;
            }
            Ingress::Ip(ETH_LEN..f.len())
        }
        _ => Ingress::Ignore,
    }
}

fn ip_dst(ip: &[u8]) -> Option<IpAddr> {
    match ip.first()? >> 4 {
        4 => {
            let b: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 => {
            let b: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nicsim::MemWire;

    fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1];
        p.extend_from_slice(&dst);
        p
    }

    #[test]
    fn classifies_unicast_ip_arp_and_noise() {
        let me = [2, 0, 0, 0, 0, 1];
        assert_eq!(
            classify(&eth(me, ETHERTYPE_IPV4, &ipv4([192, 0, 2, 2]))),
            Ingress::Ip(14..34)
        );
        // Multicast MAC, multicast and broadcast IP, unknown EtherType, truncated: ignored.
        let bcast = [0xff; 6];
        assert_eq!(
            classify(&eth(bcast, ETHERTYPE_IPV4, &ipv4([192, 0, 2, 2]))),
            Ingress::Ignore
        );
        assert_eq!(
            classify(&eth(me, ETHERTYPE_IPV4, &ipv4([224, 0, 0, 1]))),
            Ingress::Ignore
        );
        assert_eq!(
            classify(&eth(me, ETHERTYPE_IPV4, &ipv4([255; 4]))),
            Ingress::Ignore
        );
        assert_eq!(classify(&eth(me, 0x88cc, &[0; 40])), Ingress::Ignore);
        assert_eq!(
            classify(&eth(me, ETHERTYPE_IPV4, &[0x45, 0])),
            Ingress::Ignore
        );
        assert_eq!(classify(&[0; 5]), Ingress::Ignore);
        let mut arp = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 192, 0, 2, 1];
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[192, 0, 2, 2]);
        assert_eq!(
            classify(&eth(bcast, ETHERTYPE_ARP, &arp)),
            Ingress::ArpRequest {
                sender_mac: [2, 0, 0, 0, 0, 9],
                sender_ip: Ipv4Addr::new(192, 0, 2, 1),
                target_ip: Ipv4Addr::new(192, 0, 2, 2),
            }
        );
        arp[7] = 2; // a reply, not a request
        assert_eq!(classify(&eth(bcast, ETHERTYPE_ARP, &arp)), Ingress::Ignore);
    }

    #[test]
    fn arp_requests_are_answered_with_the_adapter_mac() {
        let (port, mut linux) = MemWire::pair();
        let own = [2, 0, 0, 0, 0xbb, 2];
        let mut side = HostSide::new(port, [2, 0, 0, 0, 0, 9], own);
        side.reply_arp(
            [2, 0, 0, 0, 0, 9],
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        );
        side.flush(Duration::ZERO).unwrap();
        let mut got = Vec::new();
        linux.receive(Duration::ZERO, &mut got, 8).unwrap();
        assert_eq!(got.len(), 1);
        let f = got[0].bytes();
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(&f[6..12], &own);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[22..28], &own);
        assert_eq!(&f[28..32], &[192, 0, 2, 2]);
        assert_eq!(&f[38..42], &[192, 0, 2, 1]);
        assert_eq!(side.stats().arp_replies, 1);
        assert_eq!(side.stats().to_linux, 1);
    }
}
