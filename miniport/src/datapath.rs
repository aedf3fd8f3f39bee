//! Send/receive glue: `Nbl` <-> `nicsim::Frame` by moving the buffer, never copying it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nicsim::{Frame, RxMeta, SaHandle, TxMeta, TxStatus};
use oid::{CryptoStatus, IpsecReceiveInfo, IpsecSendInfo, Nbl, NdisStatus, OffloadHandle};

use crate::adapter::VirtualMiniport;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Miniport-level data-path counters (the NIC keeps its own, see `nic_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataPathStats {
    /// Nbls taken by `send_net_buffer_lists`.
    pub sent: u64,
    /// Nbls completed to the protocol.
    pub completed: u64,
    /// Frames indicated to the protocol.
    pub indicated: u64,
    /// Frames received while no protocol was bound (buffers recycled).
    pub dropped_unbound: u64,
    /// Nbls returned by the protocol.
    pub returned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    completed: AtomicU64,
    indicated: AtomicU64,
    dropped_unbound: AtomicU64,
    returned: AtomicU64,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Batch vectors and the buffer pool.
#[derive(Debug)]
pub(crate) struct DataPath {
    tx: Mutex<Vec<Frame>>,
    scratch: Mutex<Option<(Vec<Frame>, Vec<Nbl>)>>,
    pool: Mutex<Vec<Vec<u8>>>,
    pool_max: usize,
    counters: Counters,
}

/// The completion status of a transmitted frame.
///
/// `Sent` -> `NDIS_STATUS_SUCCESS`; unknown/stale handle or a handle naming an inbound SA ->
/// `NDIS_STATUS_FAILURE` (v2 send docs); a frame that cannot be parsed or does not match its
/// SA's framing -> `NDIS_STATUS_INVALID_PACKET`; crypto or wire failure ->
/// `NDIS_STATUS_FAILURE`.
pub fn completion_status(s: TxStatus) -> NdisStatus {
    match s {
        TxStatus::Sent | TxStatus::Pending => NdisStatus::SUCCESS,
        TxStatus::Malformed => NdisStatus::INVALID_PACKET,
        _ => NdisStatus::FAILURE,
    }
}

/// The per-packet receive info for a frame's NIC metadata (`CryptoStatus` mapped 1:1).
pub fn receive_info(rx: &RxMeta) -> IpsecReceiveInfo {
    IpsecReceiveInfo {
        sa_delete_req: rx.sa_delete_req,
        crypto_done: rx.crypto_done,
        next_crypto_done: rx.next_crypto_done,
        crypto_status: CryptoStatus(rx.status.code()),
    }
}

impl DataPath {
    pub(crate) fn new(pool_max: usize) -> Self {
        DataPath {
            tx: Mutex::new(Vec::new()),
            scratch: Mutex::new(Some((Vec::new(), Vec::new()))),
            pool: Mutex::new(Vec::new()),
            pool_max,
            counters: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> DataPathStats {
        let c = &self.counters;
        DataPathStats {
            sent: c.sent.load(Ordering::Relaxed),
            completed: c.completed.load(Ordering::Relaxed),
            indicated: c.indicated.load(Ordering::Relaxed),
            dropped_unbound: c.dropped_unbound.load(Ordering::Relaxed),
            returned: c.returned.load(Ordering::Relaxed),
        }
    }

    /// `MiniportSendNetBufferLists`.
    pub(crate) fn send(&self, mp: &VirtualMiniport, nbls: &mut Vec<Nbl>) {
        if nbls.is_empty() {
            return;
        }
        add(&self.counters.sent, nbls.len());
        if mp.is_halted() {
            for n in nbls.iter_mut() {
                n.status = NdisStatus::ADAPTER_NOT_READY;
            }
            add(&self.counters.completed, nbls.len());
            match mp.protocol() {
                Some(p) => p.send_net_buffer_lists_complete(nbls),
                None => nbls.clear(),
            }
            return;
        }
        let mut frames = lock(&self.tx);
        for n in nbls.drain(..) {
            let mut f = Frame::new(n.buffer, n.data);
            f.tx = TxMeta {
                handle: SaHandle(n.send_info.offload_handle.0),
                next_handle: SaHandle(n.send_info.next_offload_handle.0),
                status: TxStatus::Pending,
            };
            f.cookie = n.cookie;
            frames.push(f);
        }
        mp.nic().send(&mut frames);
    }

    /// `MiniportReturnNetBufferLists`: keep buffers for reuse, the rest go to the NIC's port.
    pub(crate) fn give_back(&self, mp: &VirtualMiniport, nbls: &mut Vec<Nbl>) {
        add(&self.counters.returned, nbls.len());
        let mut pool = lock(&self.pool);
        for n in nbls.drain(..) {
            if n.buffer.is_empty() {
                continue;
            }
            if pool.len() < self.pool_max {
                pool.push(n.buffer);
            } else {
                mp.nic().recycle(n.buffer);
            }
        }
    }

    /// Complete finished sends and indicate received frames. Returns how many frames moved.
    pub(crate) fn deliver(&self, mp: &VirtualMiniport) -> usize {
        // Take the scratch vectors out so no lock is held while calling up into the protocol
        // (which may call back into the miniport). A concurrent caller gets fresh vectors.
        let (mut frames, mut nbls) = lock(&self.scratch).take().unwrap_or_default();
        let protocol = mp.protocol();
        let mut moved = 0;

        mp.nic().take_completions(&mut frames);
        if !frames.is_empty() {
            moved += frames.len();
            let mut pool = lock(&self.pool);
            for f in frames.drain(..) {
                let mut buffer = f.buf;
                let mut data = f.data;
                if buffer.is_empty() {
                    // The buffer moved on to the peer (in-memory wire): hand the protocol a
                    // recycled one instead, when there is one.
                    if let Some(b) = pool.pop() {
                        buffer = b;
                    }
                    data = 0..0;
                }
                nbls.push(Nbl {
                    buffer,
                    data,
                    send_info: IpsecSendInfo {
                        offload_handle: OffloadHandle(f.tx.handle.raw()),
                        next_offload_handle: OffloadHandle(f.tx.next_handle.raw()),
                    },
                    receive_info: IpsecReceiveInfo::default(),
                    status: completion_status(f.tx.status),
                    cookie: f.cookie,
                });
            }
            drop(pool);
            add(&self.counters.completed, nbls.len());
            if let Some(p) = &protocol {
                p.send_net_buffer_lists_complete(&mut nbls);
            }
            nbls.clear();
        }

        mp.nic().take_indications(&mut frames);
        if !frames.is_empty() {
            moved += frames.len();
            match &protocol {
                Some(p) => {
                    for f in frames.drain(..) {
                        nbls.push(Nbl {
                            buffer: f.buf,
                            data: f.data,
                            send_info: IpsecSendInfo::default(),
                            receive_info: receive_info(&f.rx),
                            status: NdisStatus::SUCCESS,
                            cookie: 0,
                        });
                    }
                    add(&self.counters.indicated, nbls.len());
                    p.receive_net_buffer_lists(&mut nbls);
                    nbls.clear();
                }
                None => {
                    add(&self.counters.dropped_unbound, frames.len());
                    let mut pool = lock(&self.pool);
                    for f in frames.drain(..) {
                        if pool.len() < self.pool_max {
                            pool.push(f.buf);
                        } else {
                            mp.nic().recycle(f.buf);
                        }
                    }
                }
            }
        }
        *lock(&self.scratch) = Some((frames, nbls));
        moved
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(completion_status(TxStatus::Sent), NdisStatus::SUCCESS);
        assert_eq!(
            completion_status(TxStatus::UnknownHandle),
            NdisStatus::FAILURE
        );
        assert_eq!(
            completion_status(TxStatus::WrongDirection),
            NdisStatus::FAILURE
        );
        assert_eq!(
            completion_status(TxStatus::Malformed),
            NdisStatus::INVALID_PACKET
        );
    }

    #[test]
    fn receive_info_maps_every_status() {
        use nicsim::CryptoStatus as S;
        for (s, code) in [
            (S::Success, 0),
            (S::GenericError, 1),
            (S::TransportAhAuthFailed, 2),
            (S::TransportEspAuthFailed, 3),
            (S::TunnelAhAuthFailed, 4),
            (S::TunnelEspAuthFailed, 5),
            (S::InvalidPacketSyntax, 6),
            (S::InvalidProtocol, 7),
        ] {
            let rx = RxMeta {
                crypto_done: true,
                next_crypto_done: false,
                status: s,
                sa_delete_req: code % 2 == 1,
                sa: None,
                next_sa: None,
            };
            let i = receive_info(&rx);
            assert_eq!(i.crypto_status, CryptoStatus(code));
            assert!(i.crypto_done && !i.next_crypto_done);
            assert_eq!(i.sa_delete_req, code % 2 == 1);
        }
    }
}
