//! Capture helpers of the live demo: a size-bounded pcap sink and a port wrapper that counts
//! the frames crossing it by IP protocol (what the summary says about the wire).

use core::time::Duration;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nicsim::{Frame, Wire, WireError};

/// Room kept for one record: a 16-byte record header plus the largest frame the emulated
/// hosts put on the wire (their buffers are 2048 bytes).
const RECORD_MAX: u64 = 16 + 4096;

/// A writer that accepts at most `limit` bytes, refusing at a record boundary.
///
/// [`nicsim::PcapWriter`] writes each record as a 16-byte header then the frame bytes, and
/// stops capturing at the first failed write; this sink refuses a record header when the
/// header plus the largest possible frame would pass the limit, so the file always ends on a
/// whole record.
#[derive(Debug)]
pub struct LimitWriter<W: Write> {
    inner: W,
    written: u64,
    limit: u64,
    refused: bool,
}

impl<W: Write> LimitWriter<W> {
    /// Wrap `inner`, accepting about `limit` bytes.
    pub fn new(inner: W, limit: u64) -> Self {
        LimitWriter {
            inner,
            written: 0,
            limit,
            refused: false,
        }
    }

    /// Whether the limit was hit (the capture stopped early).
    pub fn truncated(&self) -> bool {
        self.refused
    }
}

impl<W: Write> Write for LimitWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len() as u64;
        let record_header = len == 16;
        if self.refused || (record_header && self.written.saturating_add(RECORD_MAX) > self.limit) {
            self.refused = true;
            return Err(std::io::Error::other("capture size limit reached"));
        }
        let n = self.inner.write(buf)?;
        self.written = self.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Frames seen at a port, by kind (shared with whoever reports them).
#[derive(Debug, Default)]
pub struct WireCounters {
    /// All frames.
    pub frames: AtomicU64,
    /// ESP (IP protocol 50, or UDP-encapsulated on port 4500).
    pub esp: AtomicU64,
    /// AH (IP protocol 51).
    pub ah: AtomicU64,
    /// ICMP / ICMPv6 (protocols 1 and 58).
    pub icmp: AtomicU64,
    /// Other clear IP traffic (TCP, UDP, ...).
    pub clear_other: AtomicU64,
    /// Not IP.
    pub not_ip: AtomicU64,
}

impl WireCounters {
    /// A snapshot `(name, value)`.
    pub fn snapshot(&self) -> [(&'static str, u64); 6] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("frames", g(&self.frames)),
            ("esp", g(&self.esp)),
            ("ah", g(&self.ah)),
            ("icmp_clear", g(&self.icmp)),
            ("other_clear", g(&self.clear_other)),
            ("not_ip", g(&self.not_ip)),
        ]
    }

    /// Count one Ethernet frame.
    pub fn count(&self, f: &[u8]) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let c = match frame_protocol(f) {
            None => &self.not_ip,
            Some(50) => &self.esp,
            Some(51) => &self.ah,
            Some(1 | 58) => &self.icmp,
            Some(17) if udp_port_4500(f) => &self.esp,
            Some(_) => &self.clear_other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The IP protocol (IPv4) / next header (IPv6) of an Ethernet frame.
pub fn frame_protocol(f: &[u8]) -> Option<u8> {
    match f.get(12..14)? {
        [0x08, 0x00] => f.get(14 + 9).copied(),
        [0x86, 0xdd] => f.get(14 + 6).copied(),
        _ => None,
    }
}

fn udp_port_4500(f: &[u8]) -> bool {
    let l4 = match f.get(12..14) {
        Some([0x08, 0x00]) => f.get(14).map(|b| 14 + usize::from(b & 0x0f) * 4),
        Some([0x86, 0xdd]) => Some(14 + 40),
        _ => None,
    };
    l4.and_then(|o| f.get(o..o + 4))
        .is_some_and(|p| p.get(0..2) == Some(&[0x11, 0x94]) || p.get(2..4) == Some(&[0x11, 0x94]))
}

/// A port wrapper counting every frame transmitted and received into [`WireCounters`].
pub struct Counting<W> {
    inner: W,
    counters: Arc<WireCounters>,
}

impl<W> Counting<W> {
    /// Wrap `inner`.
    pub fn new(inner: W, counters: Arc<WireCounters>) -> Self {
        Counting { inner, counters }
    }
}

impl<W: Wire> Wire for Counting<W> {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        for f in frames.iter() {
            self.counters.count(f.bytes());
        }
        self.inner.transmit(now, frames, done)
    }

    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        let start = out.len();
        let n = self.inner.receive(now, out, max)?;
        for f in out.iter().skip(start) {
            self.counters.count(f.bytes());
        }
        Ok(n)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.inner.recycle(buf);
    }

    fn next_event(&self) -> Option<Duration> {
        self.inner.next_event()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nicsim::{MemWire, PcapWriter};

    fn frame(ethertype: [u8; 2], proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12..14].copy_from_slice(&ethertype);
        if ethertype == [0x86, 0xdd] {
            f[14] = 0x60;
            f[14 + 6] = proto;
        } else {
            f[14] = 0x45;
            f[14 + 9] = proto;
        }
        f
    }

    #[test]
    fn limit_writer_ends_on_a_whole_record() {
        let (wa, _peer) = MemWire::pair();
        // Room for the file header and a few records only.
        let limit = 24 + 3 * RECORD_MAX;
        let mut w = PcapWriter::new(wa, LimitWriter::new(Vec::new(), limit));
        for _ in 0..10 {
            let mut fs = vec![Frame::from_bytes(&[7u8; 1500], 0, 0)];
            w.transmit(Duration::ZERO, &mut fs, &mut Vec::new())
                .unwrap();
        }
        let (_, out) = w.into_parts();
        assert!(out.truncated());
        let frames = crate::pcap_frames(&out.inner);
        assert!((1..10).contains(&frames.len()), "{}", frames.len());
        assert_eq!((out.inner.len() - 24) % (16 + 1500), 0);
        assert!(out.inner.len() as u64 <= limit);
    }

    #[test]
    fn counters_sort_frames_by_protocol() {
        let c = WireCounters::default();
        c.count(&frame([0x08, 0x00], 50));
        c.count(&frame([0x08, 0x00], 1));
        c.count(&frame([0x86, 0xdd], 58));
        c.count(&frame([0x08, 0x00], 6));
        c.count(&frame([0x08, 0x06], 0));
        let mut nat = frame([0x08, 0x00], 17);
        nat[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&[0x11, 0x94]);
        c.count(&nat);
        c.count(&frame([0x08, 0x00], 17));
        let s: Vec<u64> = c.snapshot().iter().map(|x| x.1).collect();
        assert_eq!(s, vec![7, 2, 0, 2, 2, 1]);
    }
}
