//! A port on a Linux TAP device (feature `tap`): the only module of the crate that touches
//! the operating system.
//!
//! [`TapWire::open`] creates the named TAP interface, or attaches to an existing one (e.g. made
//! by `ip tuntap add dev NAME mode tap`), without packet-info headers, in non-blocking mode. An
//! interface created here disappears when the port is dropped; an attached persistent one
//! stays. Bringing the link up and addressing it is the caller's business (`ip link set dev NAME
//! up`, or [`TapWire::set_link_up`]). Reads and writes never block: an empty device returns no
//! frames, a full one fails the frame with [`TxStatus::WireError`].
//!
//! Buffers: the bytes of transmitted frames are copied into the kernel, so their buffers are
//! kept in a pool (bounded) for received frames; received frames are read into pooled buffers
//! at `headroom`, so the host can prepend headers in place.

use core::time::Duration;
use std::io::ErrorKind;
use std::process::Command;

use tun_tap::{Iface, Mode};

use super::{Wire, WireError, husk, mark_sent};
use crate::frame::{Frame, TxStatus};

/// Default headroom of received frames (room for tunnel headers).
pub const DEFAULT_HEADROOM: usize = 128;
/// Default buffer length: headroom + a VLAN-tagged 1500-byte frame + tailroom.
pub const DEFAULT_BUF_LEN: usize = DEFAULT_HEADROOM + 1522 + 128;
const POOL_MAX: usize = 512;

/// Counters of a TAP port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames written to the device.
    pub sent: u64,
    /// Frames the device refused (queue full or error).
    pub send_errors: u64,
    /// Frames read from the device.
    pub received: u64,
    /// Buffers allocated because the pool was empty.
    pub allocations: u64,
}

/// A port on a Linux TAP interface.
#[derive(Debug)]
pub struct TapWire {
    iface: Iface,
    pool: Vec<Vec<u8>>,
    headroom: usize,
    buf_len: usize,
    stats: TapStats,
}

impl TapWire {
    /// Create (or attach to) the TAP interface `name`, non-blocking, with default buffers.
    ///
    /// # Errors
    /// [`WireError::Io`]: no `/dev/net/tun`, no `CAP_NET_ADMIN`, or the name is in use by a
    /// device that is not a TAP.
    pub fn open(name: &str) -> Result<Self, WireError> {
        Self::with_buffers(name, DEFAULT_HEADROOM, DEFAULT_BUF_LEN)
    }

    /// As [`TapWire::open`], with received frames placed at `headroom` in `buf_len`-byte
    /// buffers (`buf_len` is raised to at least `headroom + 1522`).
    ///
    /// # Errors
    /// As [`TapWire::open`].
    pub fn with_buffers(name: &str, headroom: usize, buf_len: usize) -> Result<Self, WireError> {
        let iface = Iface::without_packet_info(name, Mode::Tap)?;
        iface.set_non_blocking()?;
        Ok(TapWire {
            iface,
            pool: Vec::new(),
            headroom,
            buf_len: buf_len.max(headroom.saturating_add(1522)),
            stats: TapStats::default(),
        })
    }

    /// The interface's real name (the kernel may have changed the requested one).
    pub fn name(&self) -> &str {
        self.iface.name()
    }

    /// Counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// Bring the link up with `ip link set dev NAME up` (set-up helper; not the data path).
    ///
    /// # Errors
    /// [`WireError::Io`] if `ip` cannot run or fails.
    pub fn set_link_up(&self) -> Result<(), WireError> {
        let st = Command::new("ip")
            .args(["link", "set", "dev", self.name(), "up"])
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(WireError::Io(std::io::Error::other(format!(
                "ip link set up failed: {st}"
            ))))
        }
    }

    fn take_buf(&mut self) -> Vec<u8> {
        let mut buf = match self.pool.pop() {
            Some(b) => b,
            None => {
                self.stats.allocations += 1;
                Vec::with_capacity(self.buf_len)
            }
        };
        buf.resize(self.buf_len, 0);
        buf
    }
}

impl Wire for TapWire {
    fn transmit(
        &mut self,
        _now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        for mut f in frames.drain(..) {
            match self.iface.send(f.bytes()) {
                Ok(_) => {
                    mark_sent(&mut f);
                    self.stats.sent += 1;
                }
                Err(_) => {
                    f.tx.status = TxStatus::WireError;
                    self.stats.send_errors += 1;
                }
            }
            if self.pool.len() < POOL_MAX && f.buf.capacity() >= self.buf_len {
                done.push(husk(&f));
                self.pool.push(core::mem::take(&mut f.buf));
            } else {
                done.push(f);
            }
        }
        Ok(())
    }

    fn receive(
        &mut self,
        _now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        let mut n = 0;
        while n < max {
            let mut buf = self.take_buf();
            let head = self.headroom;
            let r = match buf.get_mut(head..) {
                Some(space) => self.iface.recv(space),
                None => Ok(0),
            };
            match r {
                Ok(len) => {
                    self.stats.received += 1;
                    out.push(Frame::new(buf, head..head.saturating_add(len)));
                    n += 1;
                }
                Err(e) => {
                    self.pool.push(buf);
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted {
                        break;
                    }
                    return Err(WireError::Io(e));
                }
            }
        }
        Ok(n)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL_MAX && buf.capacity() >= self.buf_len {
            self.pool.push(buf);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Real frames through the kernel: two TAP ports, moved into a namespace this test creates,
    //! bridged by a Linux bridge there. Needs CAP_NET_ADMIN, `/dev/net/tun` and `ip`: without
    //! them the test prints a loud SKIPPED line and returns, except under `CI=true`, where it
    //! fails.
    use super::*;
    use std::process::Stdio;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    fn has_cap_net_admin() -> bool {
        let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << 12) != 0)
    }

    fn ip_available() -> bool {
        Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `Some(reason)` when the test cannot run here.
    fn missing_privileges() -> Option<&'static str> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            Some("/dev/net/tun is missing")
        } else if !has_cap_net_admin() {
            Some("no CAP_NET_ADMIN")
        } else if !ip_available() {
            Some("iproute2 `ip` is missing")
        } else {
            None
        }
    }

    /// Skip loudly, or fail under CI.
    fn skip_or_fail(test: &str, why: &str) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: CI=true but the test cannot run: {why}");
        }
        eprintln!("\n*** SKIPPED (needs CAP_NET_ADMIN): {test}: {why} ***\n");
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A network namespace removed on drop (also when the test panics).
    struct Netns(String);

    impl Netns {
        fn new(name: String) -> Self {
            ip(&["netns", "add", &name]);
            Netns(name)
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.0])
                .stderr(Stdio::null())
                .status();
        }
    }

    static SEQ: AtomicU32 = AtomicU32::new(0);

    fn unique(prefix: &str) -> String {
        format!(
            "{prefix}{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A broadcast frame with a local-experimental EtherType and a recognisable payload.
    fn test_frame(tag: &[u8]) -> Frame {
        let mut b = vec![0xff; 6];
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        b.extend_from_slice(&[0x88, 0xb5]);
        b.extend_from_slice(tag);
        b.resize(60, 0);
        Frame::from_bytes(&b, 0, 0)
    }

    /// Send `frame` on `from` until it comes out of `to` (bridge ports may take a moment).
    fn cross(from: &mut TapWire, to: &mut TapWire, tag: &[u8]) -> bool {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut done = Vec::new();
        let mut got = Vec::new();
        while Instant::now() < deadline {
            from.transmit(Duration::ZERO, &mut vec![test_frame(tag)], &mut done)
                .unwrap();
            for _ in 0..20 {
                got.clear();
                to.receive(Duration::ZERO, &mut got, 64).unwrap();
                if got
                    .iter()
                    .any(|f| f.bytes().get(14..14 + tag.len()) == Some(tag))
                {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        false
    }

    #[test]
    fn frames_cross_a_linux_bridge_between_two_taps() {
        if let Some(why) = missing_privileges() {
            skip_or_fail("frames_cross_a_linux_bridge_between_two_taps", why);
            return;
        }
        let ns = Netns::new(unique("nicsim-tap-"));
        let mut a = TapWire::open(&unique("nta")).unwrap();
        let mut b = TapWire::open(&unique("ntb")).unwrap();
        let (na, nb) = (a.name().to_owned(), b.name().to_owned());
        ip(&["link", "set", "dev", &na, "netns", &ns.0]);
        ip(&["link", "set", "dev", &nb, "netns", &ns.0]);
        ip(&["-n", &ns.0, "link", "add", "br0", "type", "bridge"]);
        for dev in [na.as_str(), nb.as_str()] {
            ip(&["-n", &ns.0, "link", "set", "dev", dev, "master", "br0"]);
            ip(&["-n", &ns.0, "link", "set", "dev", dev, "up"]);
        }
        ip(&["-n", &ns.0, "link", "set", "dev", "br0", "up"]);

        let tag_ab = format!("nicsim a->b {}", std::process::id());
        assert!(
            cross(&mut a, &mut b, tag_ab.as_bytes()),
            "frame did not cross a -> b"
        );
        let tag_ba = format!("nicsim b->a {}", std::process::id());
        assert!(
            cross(&mut b, &mut a, tag_ba.as_bytes()),
            "frame did not cross b -> a"
        );
        assert!(a.stats().sent >= 1 && b.stats().received >= 1);
        // Received frames sit at the headroom.
        let mut got = Vec::new();
        b.transmit(
            Duration::ZERO,
            &mut vec![test_frame(b"again")],
            &mut Vec::new(),
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        a.receive(Duration::ZERO, &mut got, 64).unwrap();
        assert!(got.iter().all(|f| f.data.start == DEFAULT_HEADROOM));
        drop((a, b));
        drop(ns);
    }

    #[test]
    fn open_fails_cleanly_without_privileges_or_reports_name() {
        if let Some(why) = missing_privileges() {
            // Without privileges opening must fail with an error, not panic.
            assert!(TapWire::open("ntnopriv").is_err(), "{why}");
            return;
        }
        let name = unique("ntn");
        let t = TapWire::open(&name).unwrap();
        assert_eq!(t.name(), name);
        // Nothing queued: non-blocking receive returns no frame.
        let mut t = t;
        let mut got = Vec::new();
        assert_eq!(t.receive(Duration::ZERO, &mut got, 8).unwrap(), 0);
    }
}
