//! Two hosts over an in-memory wire (quinn's `Pair`, smoltcp's netsim style): a
//! [`nicsim::MemWire`] pair, each direction through a seeded [`FaultInjector`], optionally
//! captured with a [`PcapWriter`] at host A's port, driven on a virtual clock.

use core::time::Duration;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use nicsim::{FaultConfig, FaultInjector, FaultStats, Frame, MemWire, PcapWriter, Wire, WireError};

use crate::host::{Host, HostConfig, HostError};

/// A port shared between the NIC that owns it and the test that inspects it (for example a
/// [`FaultInjector`]'s statistics). Implements [`Wire`] by locking.
pub struct SharedWire<W>(Arc<Mutex<W>>);

impl<W> SharedWire<W> {
    /// Share `inner`.
    pub fn new(inner: W) -> Self {
        SharedWire(Arc::new(Mutex::new(inner)))
    }

    /// Run `f` on the port.
    pub fn with<R>(&self, f: impl FnOnce(&mut W) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }
}

impl<W> Clone for SharedWire<W> {
    fn clone(&self) -> Self {
        SharedWire(Arc::clone(&self.0))
    }
}

impl<W: Wire> Wire for SharedWire<W> {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        self.with(|w| w.transmit(now, frames, done))
    }

    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        self.with(|w| w.receive(now, out, max))
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.with(|w| w.recycle(buf));
    }

    fn next_event(&self) -> Option<Duration> {
        self.with(|w| w.next_event())
    }
}

/// An in-memory capture target shared with the [`PcapWriter`] writing into it.
#[derive(Clone, Default, Debug)]
pub struct CaptureBuffer(Arc<Mutex<Vec<u8>>>);

impl CaptureBuffer {
    /// The pcap bytes written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The captured Ethernet frames, in capture order (see [`pcap_frames`]).
    pub fn frames(&self) -> Vec<Vec<u8>> {
        pcap_frames(&self.bytes())
    }
}

impl Write for CaptureBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The frames of a classic little-endian pcap file (as [`PcapWriter`] writes it); parsing
/// stops at the first truncated record. Not a pcap file: empty.
pub fn pcap_frames(pcap: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if pcap.get(0..4) != Some(&0xa1b2_c3d4u32.to_le_bytes()[..]) {
        return out;
    }
    let mut at = 24;
    while let Some(h) = pcap.get(at..at + 16) {
        let mut l = [0u8; 4];
        l.copy_from_slice(&h[8..12]);
        let len = u32::from_le_bytes(l) as usize;
        let end = at.saturating_add(16).saturating_add(len);
        let Some(data) = pcap.get(at + 16..end) else {
            break;
        };
        out.push(data.to_vec());
        at = end;
    }
    out
}

/// Where host A's port capture goes.
pub enum Capture {
    /// No capture.
    None,
    /// Into memory ([`TwoHosts::capture`] returns the buffer).
    Memory,
    /// Into a writer (a `BufWriter<File>`, ...), flushed when the topology is dropped.
    Writer(Box<dyn Write + Send>),
}

impl core::fmt::Debug for Capture {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Capture::None => "None",
            Capture::Memory => "Memory",
            Capture::Writer(_) => "Writer",
        })
    }
}

/// Configuration of a [`TwoHosts`] topology.
#[derive(Debug)]
pub struct TopologyConfig {
    /// Host A.
    pub a: HostConfig,
    /// Host B.
    pub b: HostConfig,
    /// Faults injected on frames A transmits (A -> B).
    pub faults_a_to_b: FaultConfig,
    /// Faults injected on frames B transmits (B -> A).
    pub faults_b_to_a: FaultConfig,
    /// Capture at A's port: every frame A sends (before faults) and receives (after faults).
    pub capture: Capture,
    /// Virtual time per [`TwoHosts::step`].
    pub tick: Duration,
    /// Bound of [`TwoHosts::drive`] (steps).
    pub max_steps: usize,
}

impl TopologyConfig {
    /// The standard pair: A = 192.0.2.1 / 2001:db8::1 (MAC 02:00:00:00:00:01), B = 192.0.2.2 /
    /// 2001:db8::2 (MAC 02:00:00:00:00:02), each the other's neighbor, offload on, no faults,
    /// capture in memory, tick 1 ms, drive bound 10 000 steps.
    pub fn standard() -> Self {
        let (a4, b4) = (crate::A_V4.into(), crate::B_V4.into());
        let (a6, b6) = (crate::A_V6.into(), crate::B_V6.into());
        let mut a = HostConfig::new("A", crate::MAC_A, vec![a4, a6]);
        let mut b = HostConfig::new("B", crate::MAC_B, vec![b4, b6]);
        a.neighbors = vec![(b4, crate::MAC_B), (b6, crate::MAC_B)];
        b.neighbors = vec![(a4, crate::MAC_A), (a6, crate::MAC_A)];
        b.seed = 2;
        TopologyConfig {
            a,
            b,
            faults_a_to_b: FaultConfig::default(),
            faults_b_to_a: FaultConfig::default(),
            capture: Capture::Memory,
            tick: Duration::from_millis(1),
            max_steps: 10_000,
        }
    }
}

/// Any port, boxed (so the topology's types do not depend on the wire).
struct DynWire(Box<dyn Wire>);

impl Wire for DynWire {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        self.0.transmit(now, frames, done)
    }

    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        self.0.receive(now, out, max)
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.0.recycle(buf);
    }

    fn next_event(&self) -> Option<Duration> {
        self.0.next_event()
    }
}

type Faulty = SharedWire<FaultInjector<DynWire>>;

/// Two [`Host`]s over a [`MemWire`] pair (each direction through a [`FaultInjector`]; a zero
/// [`FaultConfig`] passes frames unchanged), on one virtual clock. Also known as the topology.
#[doc(alias = "Topology")]
pub struct TwoHosts {
    /// Host A.
    pub a: Host,
    /// Host B.
    pub b: Host,
    now: Duration,
    tick: Duration,
    max_steps: usize,
    faults_a: Faulty,
    faults_b: Faulty,
    capture: Option<CaptureBuffer>,
}

/// Alias of [`TwoHosts`].
pub type Topology = TwoHosts;

impl TwoHosts {
    /// Build both hosts and the wire between them (virtual time 0).
    ///
    /// # Errors
    /// [`HostError`] from either host.
    pub fn new(config: TopologyConfig) -> Result<Self, HostError> {
        let (wa, wb) = MemWire::pair();
        Self::with_wires(config, wa, wb)
    }

    /// Build both hosts on the given ports instead of a [`MemWire`] pair (for example two
    /// TAP devices on one bridge); faults and capture apply as in [`TwoHosts::new`].
    ///
    /// # Errors
    /// [`HostError`] from either host.
    pub fn with_wires(
        config: TopologyConfig,
        wire_a: impl Wire + 'static,
        wire_b: impl Wire + 'static,
    ) -> Result<Self, HostError> {
        let faults_a = SharedWire::new(FaultInjector::new(
            DynWire(Box::new(wire_a)),
            config.faults_a_to_b,
        ));
        let faults_b = SharedWire::new(FaultInjector::new(
            DynWire(Box::new(wire_b)),
            config.faults_b_to_a,
        ));
        let (a, capture) = match config.capture {
            Capture::None => (Host::new(&config.a, faults_a.clone())?, None),
            Capture::Memory => {
                let buf = CaptureBuffer::default();
                let w = PcapWriter::new(faults_a.clone(), buf.clone());
                (Host::new(&config.a, w)?, Some(buf))
            }
            Capture::Writer(out) => {
                let w = PcapWriter::new(faults_a.clone(), out);
                (Host::new(&config.a, w)?, None)
            }
        };
        let b = Host::new(&config.b, faults_b.clone())?;
        Ok(TwoHosts {
            a,
            b,
            now: Duration::ZERO,
            tick: config.tick,
            max_steps: config.max_steps,
            faults_a,
            faults_b,
            capture,
        })
    }

    /// The standard pair of [`TopologyConfig::standard`].
    ///
    /// # Errors
    /// As [`TwoHosts::new`].
    pub fn standard() -> Result<Self, HostError> {
        Self::new(TopologyConfig::standard())
    }

    /// The current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Advance the virtual clock by one tick and poll A then B. Returns the frames both NICs
    /// processed.
    pub fn step(&mut self) -> usize {
        self.now += self.tick;
        self.a.poll(self.now) + self.b.poll(self.now)
    }

    /// Advance the virtual clock by `d` without polling (lifetimes, retry timers).
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Frames held back in the injectors (delay, reordering).
    pub fn held(&self) -> usize {
        self.faults_a.with(|f| f.held()) + self.faults_b.with(|f| f.held())
    }

    /// Step until both hosts are idle (three consecutive steps in which neither NIC processed
    /// a frame and no frame is held in the wire) or the step bound is hit. Returns the number
    /// of steps taken; `None` if the bound was hit first.
    pub fn drive(&mut self) -> Option<usize> {
        let mut quiet = 0;
        for i in 1..=self.max_steps {
            let n = self.step();
            if n == 0 && self.held() == 0 {
                quiet += 1;
                if quiet >= 3 {
                    return Some(i);
                }
            } else {
                quiet = 0;
            }
        }
        None
    }

    /// What the injector of direction A -> B did.
    pub fn faults_a_to_b(&self) -> FaultStats {
        self.faults_a.with(|f| f.stats())
    }

    /// What the injector of direction B -> A did.
    pub fn faults_b_to_a(&self) -> FaultStats {
        self.faults_b.with(|f| f.stats())
    }

    /// The in-memory capture at A's port ([`Capture::Memory`]).
    pub fn capture(&self) -> Option<&CaptureBuffer> {
        self.capture.as_ref()
    }
}

impl core::fmt::Debug for TwoHosts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TwoHosts")
            .field("a", &self.a)
            .field("b", &self.b)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pcap_frames_parses_records_and_stops_at_truncation() {
        let (wa, _peer) = MemWire::pair();
        let mut w = PcapWriter::new(wa, CaptureBuffer::default());
        let mut frames = vec![
            Frame::from_bytes(&[1u8; 60], 0, 0),
            Frame::from_bytes(&[2u8; 70], 0, 0),
        ];
        w.transmit(Duration::from_millis(1), &mut frames, &mut Vec::new())
            .unwrap();
        let bytes = w.output().bytes();
        let got = pcap_frames(&bytes);
        assert_eq!(got, vec![vec![1u8; 60], vec![2u8; 70]]);
        assert_eq!(pcap_frames(&bytes[..bytes.len() - 1]), vec![vec![1u8; 60]]);
        assert!(pcap_frames(b"not a pcap").is_empty());
    }

    #[test]
    fn drive_reports_the_bound_and_waits_for_delayed_frames() {
        let send = |net: &mut TwoHosts| {
            let now = net.now();
            let (a, b) = (crate::A_V4.into(), crate::B_V4.into());
            net.a
                .stack_mut()
                .send_udp(
                    now,
                    core::net::SocketAddr::new(a, 1),
                    core::net::SocketAddr::new(b, 2),
                    b"x",
                )
                .unwrap();
        };
        // 50 ms of wire delay at 1 ms per step: a bound of 10 steps is hit with the frame
        // still held; an unbounded drive delivers it after the delay.
        let mut cfg = TopologyConfig::standard();
        cfg.faults_a_to_b.delay = Duration::from_millis(50);
        cfg.max_steps = 10;
        let mut net = TwoHosts::new(cfg).unwrap();
        send(&mut net);
        assert_eq!(net.drive(), None);
        assert_eq!(net.held(), 1);
        assert_eq!(net.now(), Duration::from_millis(10));
        let mut cfg = TopologyConfig::standard();
        cfg.faults_a_to_b.delay = Duration::from_millis(50);
        let mut net = TwoHosts::new(cfg).unwrap();
        send(&mut net);
        let steps = net.drive().unwrap();
        assert!(steps > 50, "{steps}");
        assert_eq!((net.held(), net.b.nic_stats().rx_frames), (0, 1));
        assert_eq!(net.faults_a_to_b().delayed, 1);
    }
}
