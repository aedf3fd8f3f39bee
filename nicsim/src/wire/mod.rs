//! Ports: the NIC's wire.
//!
//! A [`Wire`] moves Ethernet frames in batches. Implementations: [`MemWire`] (an in-memory link
//! between two NICs; the default, needs no privileges), [`tap::TapWire`] (a Linux TAP device,
//! feature `tap`), and middleware that wraps any port: [`PcapWriter`] (a Wireshark-readable
//! capture) and [`FaultInjector`] (seeded loss, duplication, reordering, corruption, delay).
//!
//! # Buffer ownership
//! [`Wire::transmit`] drains the batch and pushes one frame per transmitted frame onto `done`,
//! in order, carrying the frame's metadata and cookie: either the frame itself (the port copied
//! the bytes out, e.g. TAP, so its buffer can be recycled) or a *husk* with an empty data
//! range because the buffer moved on to the peer (MemWire: no copy; its `buf` is empty, or a
//! buffer the peer recycled back). The NIC turns `done` into send
//! completions. Ports never allocate per frame in steady state: batches and buffers are
//! recycled.

use core::time::Duration;

use crate::frame::{Frame, TxStatus};

mod fault;
mod mem;
mod pcap;
#[cfg(feature = "tap")]
pub mod tap;

pub use fault::{FaultConfig, FaultInjector, FaultStats};
pub use mem::{MemWire, MemWireStats};
pub use pcap::{LINKTYPE_ETHERNET, PcapWriter};

/// A port failure that is not about one frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// An operating-system error (TAP device).
    #[error("wire I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer of an in-memory wire is gone.
    #[error("wire peer disconnected")]
    Disconnected,
}

/// A port that moves Ethernet frames. Time is virtual and passed in.
pub trait Wire: Send {
    /// Transmit every frame of `frames` (left empty), pushing one completion per frame onto
    /// `done` (the frame, or a husk with an empty data range when the buffer moved to the
    /// peer).
    /// A frame the port could not send is completed with [`TxStatus::WireError`].
    /// Called with an empty batch too, so middleware can release delayed frames.
    ///
    /// # Errors
    /// A port-level failure; frames are still completed.
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError>;

    /// Append up to `max` received frames to `out`; returns how many.
    ///
    /// # Errors
    /// A port-level failure.
    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError>;

    /// Give the port a buffer it may reuse for received frames (ports that copy frames in,
    /// like TAP, keep a pool; others drop it).
    fn recycle(&mut self, buf: Vec<u8>) {
        drop(buf);
    }

    /// The earliest virtual time at which something held back (a delayed frame) becomes due.
    fn next_event(&self) -> Option<Duration> {
        None
    }
}

impl<W: Wire + ?Sized> Wire for Box<W> {
    fn transmit(
        &mut self,
        now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        (**self).transmit(now, frames, done)
    }
    fn receive(
        &mut self,
        now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        (**self).receive(now, out, max)
    }
    fn recycle(&mut self, buf: Vec<u8>) {
        (**self).recycle(buf);
    }
    fn next_event(&self) -> Option<Duration> {
        (**self).next_event()
    }
}

/// A frame whose buffer moved elsewhere: same metadata and cookie, empty `buf`.
pub(crate) fn husk(f: &Frame) -> Frame {
    Frame {
        buf: Vec::new(),
        data: 0..0,
        tx: f.tx,
        rx: f.rx,
        cookie: f.cookie,
    }
}

/// Mark a frame as sent unless the NIC already gave it another status.
pub(crate) fn mark_sent(f: &mut Frame) {
    if f.tx.status == TxStatus::Pending {
        f.tx.status = TxStatus::Sent;
    }
}

/// Nanoseconds of a virtual timestamp, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
