//! A small classic-pcap reader and writer (LINKTYPE_ETHERNET only).
//!
//! The input is untrusted: every length is checked, allocations are bounded by
//! [`MAX_RECORD`] and by the bytes actually present, and errors name the frame (1-based, as
//! Wireshark numbers frames) and the byte offset.

use core::fmt;

/// Largest record accepted (bytes of captured data).
pub const MAX_RECORD: u32 = 262_144;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Timestamp seconds.
    pub ts_sec: u32,
    /// Timestamp sub-second part (micro- or nanoseconds, as in the file).
    pub ts_frac: u32,
    /// Original length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// A parsed capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Nanosecond timestamps (magic 0xa1b23c4d).
    pub nanos: bool,
    /// Snapshot length of the header.
    pub snaplen: u32,
    /// The frames in file order.
    pub records: Vec<Record>,
}

/// Why a pcap could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapError(pub String);

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PcapError {}

fn u32_at(b: &[u8], off: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    })
}

/// Parse a classic pcap file held in `bytes`.
///
/// # Errors
/// [`PcapError`]: bad magic, not Ethernet, truncated header or record, oversized record.
pub fn parse(bytes: &[u8]) -> Result<Capture, PcapError> {
    let magic = bytes
        .get(..4)
        .ok_or_else(|| PcapError("truncated file header (need 24 bytes)".into()))?;
    let (le, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            return Err(PcapError(
                "pcapng is not supported; convert with `editcap -F pcap`".into(),
            ));
        }
        _ => return Err(PcapError("not a pcap file (bad magic)".into())),
    };
    if bytes.len() < 24 {
        return Err(PcapError("truncated file header (need 24 bytes)".into()));
    }
    let snaplen = u32_at(bytes, 16, le).unwrap_or(0);
    let linktype = u32_at(bytes, 20, le).unwrap_or(0) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError(format!(
            "link type {linktype} is not supported (only LINKTYPE_ETHERNET = 1)"
        )));
    }
    let mut records = Vec::new();
    let mut off = 24usize;
    while off < bytes.len() {
        let n = records.len().saturating_add(1);
        let hdr = |i: usize| {
            off.checked_add(i)
                .and_then(|at| u32_at(bytes, at, le))
                .ok_or_else(|| {
                    PcapError(format!(
                        "frame {n}: truncated record header at offset {off}"
                    ))
                })
        };
        let ts_sec = hdr(0)?;
        let ts_frac = hdr(4)?;
        let incl = hdr(8)?;
        let orig_len = hdr(12)?;
        if incl > MAX_RECORD {
            return Err(PcapError(format!(
                "frame {n}: record length {incl} at offset {off} exceeds {MAX_RECORD}"
            )));
        }
        let start = off.saturating_add(16);
        let end = start.saturating_add(usize::try_from(incl).unwrap_or(usize::MAX));
        let data = bytes.get(start..end).ok_or_else(|| {
            PcapError(format!(
                "frame {n}: truncated record at offset {off} ({incl} bytes announced, {} present)",
                bytes.len().saturating_sub(start)
            ))
        })?;
        records.push(Record {
            ts_sec,
            ts_frac,
            orig_len,
            data: data.to_vec(),
        });
        off = end;
    }
    Ok(Capture {
        nanos,
        snaplen,
        records,
    })
}

/// Serialize `cap` as a little-endian classic pcap (LINKTYPE_ETHERNET). `orig_len` of each
/// record is raised to at least its data length.
pub fn write(cap: &Capture) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(24 + cap.records.iter().map(|r| 16 + r.data.len()).sum::<usize>());
    let magic: u32 = if cap.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    out.extend_from_slice(&magic.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&cap.snaplen.max(MAX_RECORD).to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for r in &cap.records {
        let len = u32::try_from(r.data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&r.ts_sec.to_le_bytes());
        out.extend_from_slice(&r.ts_frac.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&r.orig_len.max(len).to_le_bytes());
        out.extend_from_slice(&r.data);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cap(nanos: bool) -> Capture {
        Capture {
            nanos,
            snaplen: MAX_RECORD,
            records: vec![
                Record {
                    ts_sec: 1,
                    ts_frac: 999_999,
                    orig_len: 60,
                    data: vec![0xab; 42],
                },
                Record {
                    ts_sec: 2,
                    ts_frac: 5,
                    orig_len: 3,
                    data: vec![1, 2, 3],
                },
            ],
        }
    }

    #[test]
    fn write_then_parse_round_trips_both_timestamp_kinds() {
        for nanos in [false, true] {
            let c = cap(nanos);
            let b = write(&c);
            assert_eq!(b.len(), 24 + 16 + 42 + 16 + 3);
            assert_eq!(parse(&b).unwrap(), c);
        }
    }

    #[test]
    fn big_endian_files_parse() {
        // A big-endian microsecond file with one 2-byte record (values by hand).
        let mut b = vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4];
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&1500u32.to_be_bytes());
        b.extend_from_slice(&LINKTYPE_ETHERNET.to_be_bytes());
        for v in [7u32, 8, 2, 64] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0xee, 0xff]);
        let c = parse(&b).unwrap();
        assert_eq!((c.nanos, c.snaplen), (false, 1500));
        assert_eq!(
            c.records,
            vec![Record {
                ts_sec: 7,
                ts_frac: 8,
                orig_len: 64,
                data: vec![0xee, 0xff],
            }]
        );
    }

    #[test]
    fn errors_name_the_frame_one_based_and_the_offset() {
        let b = write(&cap(false));
        let e = parse(&b[..b.len() - 1]).unwrap_err().0;
        assert_eq!(
            e,
            format!(
                "frame 2: truncated record at offset {} (3 bytes announced, 2 present)",
                24 + 16 + 42
            )
        );
        let e = parse(&b[..24 + 5]).unwrap_err().0;
        assert_eq!(e, "frame 1: truncated record header at offset 24");
        let mut big = b.clone();
        big[24 + 8..24 + 12].copy_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        assert!(
            parse(&big)
                .unwrap_err()
                .0
                .starts_with("frame 1: record length 262145")
        );
        let mut linux_sll = b.clone();
        linux_sll[20..24].copy_from_slice(&113u32.to_le_bytes());
        assert!(parse(&linux_sll).unwrap_err().0.contains("link type 113"));
        assert!(
            parse(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0])
                .unwrap_err()
                .0
                .contains("pcapng")
        );
        assert!(
            parse(&b[..10])
                .unwrap_err()
                .0
                .contains("truncated file header")
        );
        // Every prefix of a valid file parses or fails cleanly.
        for n in 0..b.len() {
            let _ = parse(&b[..n]);
        }
    }
}
