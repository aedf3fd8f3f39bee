//! Zero heap allocations per packet in steady state: the full two-host pipeline (A's stack
//! frames a UDP datagram, A's miniport and NIC encrypt it, the in-memory wire carries it, B's
//! NIC decrypts it, B's miniport indicates it, B's stack checks replay and strips ESP, the
//! application reads it), with the SAs offloaded and on the software path.
//!
//! A counting global allocator (`stats_alloc`, no `unsafe` here) wraps the system allocator;
//! after a warm-up that lets every pool, queue and vector reach its working size, further
//! batches must not allocate, reallocate or free at all.
//!
//! The allocator counts every thread of this test binary, so this file holds one `#[test]`
//! (the harness runs tests of one binary in parallel threads).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::net::SocketAddr;

use ipsec_nic::{A_V4, B_V4, Capture, ManualSaOptions, TopologyConfig, TwoHosts, manual_sa};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const BATCH: usize = 32;

/// The standard pair without a capture (a pcap in memory grows by design), offload on or off.
fn pair(offload: bool) -> TwoHosts {
    let mut cfg = TopologyConfig::standard();
    cfg.capture = Capture::None;
    cfg.a.offload = offload;
    cfg.b.offload = offload;
    let mut net = TwoHosts::new(cfg).unwrap();
    manual_sa(&mut net, &ManualSaOptions::default()).unwrap();
    net.drive().unwrap();
    net
}

/// One batch: A sends `BATCH` datagrams of `size` bytes, both hosts are driven to idle, B
/// reads them all. Returns how many B received protected.
fn batch(net: &mut TwoHosts, payload: &[u8], buf: &mut [u8]) -> usize {
    let src = SocketAddr::new(A_V4.into(), 5000);
    let dst = SocketAddr::new(B_V4.into(), 6000);
    for _ in 0..BATCH {
        let now = net.now();
        net.a.stack_mut().send_udp(now, src, dst, payload).unwrap();
    }
    net.drive().unwrap();
    let mut secure = 0;
    while let Some(d) = net.b.stack_mut().recv_udp(buf) {
        assert_eq!(&buf[..d.len], payload);
        secure += usize::from(d.secure);
    }
    secure
}

/// Run `batches` batches after `warmup` batches; returns the allocator activity of the
/// measured part and the number of protected datagrams delivered in it.
fn measure(offload: bool, size: usize, warmup: usize, batches: usize) -> (Stats, usize) {
    let mut net = pair(offload);
    let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    let mut buf = vec![0u8; 2048];
    for _ in 0..warmup {
        assert_eq!(batch(&mut net, &payload, &mut buf), BATCH);
    }
    let region = Region::new(GLOBAL);
    let mut delivered = 0;
    for _ in 0..batches {
        delivered += batch(&mut net, &payload, &mut buf);
    }
    let stats = region.change();
    // The path really was the one under test.
    let nic = net.a.nic_stats();
    if offload {
        assert!(
            nic.tx_protected >= ((warmup + batches) * BATCH) as u64,
            "{nic:?}"
        );
    } else {
        assert_eq!(nic.tx_protected, 0, "{nic:?}");
    }
    (stats, delivered)
}

#[test]
fn steady_state_pipeline_allocates_nothing_per_packet() {
    // More than the receiving miniport's buffer pool (256 frames) must pass before its returned
    // buffers start flowing back to the sender through the wire.
    const WARMUP: usize = 12;
    const BATCHES: usize = 16;
    for offload in [true, false] {
        for size in [64usize, 1420] {
            let (s, delivered) = measure(offload, size, WARMUP, BATCHES);
            assert_eq!(delivered, BATCHES * BATCH, "offload {offload}, {size} B");
            assert_eq!(
                (s.allocations, s.reallocations, s.deallocations),
                (0, 0, 0),
                "offload {offload}, {size} B: {} packets allocated {s:?}",
                BATCHES * BATCH
            );
        }
    }
}
