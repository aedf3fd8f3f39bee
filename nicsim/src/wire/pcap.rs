//! A capture writer that wraps any port and records both directions in classic pcap format
//! (microsecond timestamps from the virtual clock, `LINKTYPE_ETHERNET`), readable by Wireshark
//! and tshark. It writes to any caller-given `std::io::Write` (use a `BufWriter` for files).
//!
//! A write error never disturbs the traffic: it is counted and capturing stops.

use core::time::Duration;
use std::io::Write;

use super::{Wire, WireError};
use crate::frame::Frame;

/// Link type of the capture: Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const SNAPLEN: u32 = 65_535;

/// Wraps a port and writes every transmitted and received frame to `out`.
#[derive(Debug)]
pub struct PcapWriter<W, O: Write> {
    inner: W,
    out: O,
    header_written: bool,
    records: u64,
    failed: bool,
}

impl<W: Wire, O: Write + Send> PcapWriter<W, O> {
    /// Wrap `inner`, capturing into `out` (the file header is written with the first record,
    /// or by [`PcapWriter::flush`]).
    pub fn new(inner: W, out: O) -> Self {
        PcapWriter {
            inner,
            out,
            header_written: false,
            records: 0,
            failed: false,
        }
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// True if a write failed (capture stopped; traffic unaffected).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The wrapped port.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// The wrapped port, mutable.
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The capture sink.
    pub fn output(&self) -> &O {
        &self.out
    }

    /// Write the header if needed and flush the sink.
    ///
    /// # Errors
    /// The sink's error.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.write_header()?;
        self.out.flush()
    }

    /// Flush and return the port and the sink.
    pub fn into_parts(mut self) -> (W, O) {
        if self.flush().is_err() {
            self.failed = true;
        }
        (self.inner, self.out)
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        if self.header_written {
            return Ok(());
        }
        let mut h = [0u8; 24];
        let fields: [(usize, u32); 5] = [
            (0, MAGIC_MICROS),
            (4, 2 | (4 << 16)),
            (16, SNAPLEN),
            (20, LINKTYPE_ETHERNET),
            (8, 0),
        ];
        for (off, v) in fields {
            if let Some(d) = h.get_mut(off..off + 4) {
                d.copy_from_slice(&v.to_le_bytes());
            }
        }
        self.out.write_all(&h)?;
        self.header_written = true;
        Ok(())
    }

    fn record(&mut self, now: Duration, bytes: &[u8]) {
        if self.failed {
            return;
        }
        let r = (|| -> std::io::Result<()> {
            self.write_header()?;
            let secs = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            let incl = len.min(SNAPLEN);
            let mut h = [0u8; 16];
            for (i, v) in [secs, now.subsec_micros(), incl, len]
                .into_iter()
                .enumerate()
            {
                if let Some(d) = h.get_mut(i * 4..i * 4 + 4) {
                    d.copy_from_slice(&v.to_le_bytes());
                }
            }
            self.out.write_all(&h)?;
            self.out
                .write_all(bytes.get(..incl as usize).unwrap_or(bytes))
        })();
        match r {
            Ok(()) => self.records += 1,
            Err(_) => self.failed = true,
        }
    }
}

impl<W: Wire, O: Write + Send> Wire for PcapWriter<W, O> {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        for f in frames.iter() {
            self.record(now, f.bytes());
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
            self.record(now, f.bytes());
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
    use crate::wire::MemWire;

    /// A minimal classic-pcap reader: (linktype, records of (ts_sec, ts_usec, orig_len, data)).
    type Record = (u32, u32, u32, Vec<u8>);

    fn read_pcap(b: &[u8]) -> (u32, Vec<Record>) {
        let u32le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(u32le(0), 0xa1b2_c3d4, "magic (little-endian, microseconds)");
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 4);
        assert_eq!(u32le(16), 65_535);
        let link = u32le(20);
        let mut recs = Vec::new();
        let mut o = 24;
        while o < b.len() {
            let (sec, usec, incl, orig) = (u32le(o), u32le(o + 4), u32le(o + 8), u32le(o + 12));
            o += 16;
            recs.push((sec, usec, orig, b[o..o + incl as usize].to_vec()));
            o += incl as usize;
        }
        assert_eq!(o, b.len());
        (link, recs)
    }

    #[test]
    fn capture_parses_with_both_directions() {
        let (a, mut b) = MemWire::pair();
        let mut cap = PcapWriter::new(a, Vec::new());
        let mut done = Vec::new();
        let t1 = Duration::new(5, 123_456_789);
        cap.transmit(
            t1,
            &mut vec![Frame::from_bytes(&[0xaa; 60], 8, 8)],
            &mut done,
        )
        .unwrap();
        let mut back = vec![Frame::from_bytes(&[0xbb; 64], 0, 0)];
        b.transmit(t1, &mut back, &mut done).unwrap();
        let mut got = Vec::new();
        let t2 = Duration::new(6, 1_000);
        assert_eq!(cap.receive(t2, &mut got, 10).unwrap(), 1);
        assert_eq!(cap.records(), 2);
        let (_, bytes) = cap.into_parts();
        let (link, recs) = read_pcap(&bytes);
        assert_eq!(link, LINKTYPE_ETHERNET);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], (5, 123_456, 60, vec![0xaa; 60]));
        assert_eq!(recs[1], (6, 1, 64, vec![0xbb; 64]));
    }

    #[test]
    fn empty_capture_has_a_header() {
        let (a, _b) = MemWire::pair();
        let cap = PcapWriter::new(a, Vec::new());
        let (_, bytes) = cap.into_parts();
        assert_eq!(bytes.len(), 24);
        assert_eq!(read_pcap(&bytes).1.len(), 0);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_do_not_disturb_traffic() {
        let (a, mut b) = MemWire::pair();
        let mut cap = PcapWriter::new(a, Broken);
        let mut done = Vec::new();
        cap.transmit(
            Duration::ZERO,
            &mut vec![Frame::from_bytes(&[1; 20], 0, 0)],
            &mut done,
        )
        .unwrap();
        assert!(cap.failed());
        let mut got = Vec::new();
        assert_eq!(b.receive(Duration::ZERO, &mut got, 10).unwrap(), 1);
    }
}
