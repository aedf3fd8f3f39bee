//! An in-memory wire between two NICs: batches of frames move through bounded crossbeam
//! channels (ownership moves, bytes are not copied), and emptied batch vectors flow back to be
//! reused, so steady-state traffic allocates nothing.
//!
//! Frame buffers move with the frames, so one-way traffic would drain the sender of buffers
//! and pile them up at the receiver. Buffers the receiving side gives back with
//! [`Wire::recycle`] therefore travel back to the sending end, which hands them out in the
//! husks it completes (data range empty) instead of empty husks: the sender's driver gets a
//! buffer back for every frame it sent, as long as the peer recycles.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::{Wire, WireError, husk, mark_sent};
use crate::frame::Frame;

/// Batches in flight per direction before the wire tail-drops.
const DEPTH: usize = 1024;
/// Recycled frame buffers held for the peer (beyond that, recycled buffers are freed).
const SPARE_BUFFERS: usize = 4096;

/// Counters of one direction of a [`MemWire`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemWireStats {
    /// Frames handed to the peer.
    pub sent: u64,
    /// Frames dropped because the peer was not draining (queue full) or was gone.
    pub dropped: u64,
    /// Frames received from the peer.
    pub received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
}

/// One end of an in-memory link. Create both ends with [`MemWire::pair`].
#[derive(Debug)]
pub struct MemWire {
    tx: Sender<Vec<Frame>>,
    rx: Receiver<Vec<Frame>>,
    /// Emptied batches we give back to the peer.
    give_back: Sender<Vec<Frame>>,
    /// Emptied batches the peer gave back to us.
    reuse: Receiver<Vec<Frame>>,
    /// Frame buffers recycled here, travelling back to the peer (who sent them).
    buf_back: Sender<Vec<u8>>,
    /// Frame buffers the peer recycled, for our husks.
    bufs: Receiver<Vec<u8>>,
    /// A batch being drained by `receive` (when `max` was smaller than the batch).
    pending: Vec<Frame>,
    counters: Arc<Counters>,
}

impl MemWire {
    /// Two connected ends: what one transmits, the other receives.
    pub fn pair() -> (MemWire, MemWire) {
        let (a_tx, b_rx) = bounded(DEPTH);
        let (b_tx, a_rx) = bounded(DEPTH);
        let (a_give, b_reuse) = bounded(DEPTH);
        let (b_give, a_reuse) = bounded(DEPTH);
        let (a_buf_back, b_bufs) = bounded(SPARE_BUFFERS);
        let (b_buf_back, a_bufs) = bounded(SPARE_BUFFERS);
        let a = MemWire {
            tx: a_tx,
            rx: a_rx,
            give_back: a_give,
            reuse: a_reuse,
            buf_back: a_buf_back,
            bufs: a_bufs,
            pending: Vec::new(),
            counters: Arc::default(),
        };
        let b = MemWire {
            tx: b_tx,
            rx: b_rx,
            give_back: b_give,
            reuse: b_reuse,
            buf_back: b_buf_back,
            bufs: b_bufs,
            pending: Vec::new(),
            counters: Arc::default(),
        };
        (a, b)
    }

    /// Counters of this end.
    pub fn stats(&self) -> MemWireStats {
        MemWireStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
        }
    }
}

impl Wire for MemWire {
    fn transmit(
        &mut self,
        _now: Duration,
        frames: &mut Vec<Frame>,
        done: &mut Vec<Frame>,
    ) -> Result<(), WireError> {
        if frames.is_empty() {
            return Ok(());
        }
        let mut batch = self.reuse.try_recv().unwrap_or_default();
        batch.clear();
        for mut f in frames.drain(..) {
            mark_sent(&mut f);
            let mut h = husk(&f);
            if let Ok(b) = self.bufs.try_recv() {
                h.buf = b;
            }
            done.push(h);
            batch.push(f);
        }
        let n = batch.len() as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.counters.sent.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(lost)) => {
                // Tail drop: the frames are lost on the wire (their buffers are freed).
                self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                drop(lost);
                Ok(())
            }
            Err(TrySendError::Disconnected(lost)) => {
                self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                drop(lost);
                Err(WireError::Disconnected)
            }
        }
    }

    fn receive(
        &mut self,
        _now: Duration,
        out: &mut Vec<Frame>,
        max: usize,
    ) -> Result<usize, WireError> {
        let mut n = 0;
        while n < max {
            if self.pending.is_empty() {
                let empty = core::mem::take(&mut self.pending);
                if empty.capacity() > 0 {
                    // Give the emptied vector back; if the peer's queue is full, free it.
                    let _ = self.give_back.try_send(empty);
                }
                match self.rx.try_recv() {
                    Ok(batch) => self.pending = batch,
                    Err(_) => break,
                }
            }
            let take = (max - n).min(self.pending.len());
            out.extend(self.pending.drain(..take));
            n += take;
        }
        self.counters
            .received
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Send `buf` back to the peer end, whose next husks carry it (freed when the peer
    /// already holds `SPARE_BUFFERS` of them or is gone).
    fn recycle(&mut self, buf: Vec<u8>) {
        let _ = self.buf_back.try_send(buf);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frames(n: u64) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                let mut f = Frame::from_bytes(&i.to_be_bytes(), 2, 2);
                f.cookie = i;
                f
            })
            .collect()
    }

    #[test]
    fn moves_frames_in_order_and_completes_with_husks() {
        let (mut a, mut b) = MemWire::pair();
        let mut batch = frames(5);
        let ptr = batch[0].buf.as_ptr();
        let mut done = Vec::new();
        a.transmit(Duration::ZERO, &mut batch, &mut done).unwrap();
        assert!(batch.is_empty());
        assert_eq!(done.len(), 5);
        assert!(
            done.iter()
                .all(|f| f.buf.is_empty() && f.tx.status == crate::TxStatus::Sent)
        );
        assert_eq!(
            done.iter().map(|f| f.cookie).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let mut out = Vec::new();
        assert_eq!(b.receive(Duration::ZERO, &mut out, 3).unwrap(), 3);
        assert_eq!(out[0].buf.as_ptr(), ptr, "the buffer moved, not copied");
        assert_eq!(b.receive(Duration::ZERO, &mut out, 10).unwrap(), 2);
        let got: Vec<u64> = out.iter().map(|f| f.cookie).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(out[4].bytes(), &4u64.to_be_bytes());
        assert_eq!(b.receive(Duration::ZERO, &mut out, 10).unwrap(), 0);
        assert_eq!(a.stats().sent, 5);
        assert_eq!(b.stats().received, 5);
        // Nothing flows backwards.
        assert_eq!(a.receive(Duration::ZERO, &mut out, 10).unwrap(), 0);
    }

    #[test]
    fn recycled_buffers_return_to_the_sender_in_its_husks() {
        let (mut a, mut b) = MemWire::pair();
        let mut batch = frames(3);
        let mut done = Vec::new();
        a.transmit(Duration::ZERO, &mut batch, &mut done).unwrap();
        let mut out = Vec::new();
        assert_eq!(b.receive(Duration::ZERO, &mut out, 10).unwrap(), 3);
        let ptrs: Vec<*const u8> = out.iter().map(|f| f.buf.as_ptr()).collect();
        // B gives two of the three buffers back; A's next three husks carry them, then empty.
        for f in out.drain(..2) {
            b.recycle(f.buf);
        }
        done.clear();
        let mut batch = frames(3);
        a.transmit(Duration::ZERO, &mut batch, &mut done).unwrap();
        assert_eq!(done[0].buf.as_ptr(), ptrs[0]);
        assert_eq!(done[1].buf.as_ptr(), ptrs[1]);
        assert!(done[2].buf.is_empty());
        assert!(done.iter().all(|f| f.data.is_empty()));
        assert_eq!(
            done.iter().map(|f| f.cookie).collect::<Vec<_>>(),
            [0, 1, 2],
            "husks keep their frame's metadata"
        );
        // Nothing comes back the other way: B's husks stay empty.
        let mut back = frames(1);
        let mut b_done = Vec::new();
        b.transmit(Duration::ZERO, &mut back, &mut b_done).unwrap();
        assert!(b_done[0].buf.is_empty());
    }

    #[test]
    fn full_queue_tail_drops_and_counts() {
        let (mut a, mut b) = MemWire::pair();
        let mut done = Vec::new();
        for _ in 0..DEPTH + 3 {
            let mut batch = frames(1);
            a.transmit(Duration::ZERO, &mut batch, &mut done).unwrap();
        }
        assert_eq!(a.stats().dropped, 3);
        let mut out = Vec::new();
        assert_eq!(
            b.receive(Duration::ZERO, &mut out, usize::MAX).unwrap(),
            DEPTH
        );
    }

    #[test]
    fn disconnected_peer() {
        let (mut a, b) = MemWire::pair();
        drop(b);
        let mut batch = frames(2);
        let mut done = Vec::new();
        assert!(matches!(
            a.transmit(Duration::ZERO, &mut batch, &mut done),
            Err(WireError::Disconnected)
        ));
        assert_eq!(done.len(), 2, "frames are still completed");
    }
}
