//! Two simulated hosts (stack + miniport + NIC each) over an in-memory wire, running the
//! Manual SA scenario end to end, with exact counters on both hosts.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};

use ipsec_nic::*;

fn addrs(ipv6: bool) -> (IpAddr, IpAddr) {
    if ipv6 {
        (A_V6.into(), B_V6.into())
    } else {
        (A_V4.into(), B_V4.into())
    }
}

fn sock(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// Every UDP datagram host `h` received: (payload, secure).
fn recv_all(h: &mut Host) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(d) = h.stack_mut().recv_udp(&mut buf) {
        out.push((buf[..d.len].to_vec(), d.secure));
    }
    out
}

/// The IP protocol (IPv4) / next header (IPv6) of an Ethernet frame.
fn ip_proto(f: &[u8]) -> Option<u8> {
    match (f.get(12), f.get(13)) {
        (Some(0x08), Some(0x00)) => f.get(14 + 9).copied(),
        (Some(0x86), Some(0xdd)) => f.get(14 + 6).copied(),
        _ => None,
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

#[test]
fn manual_sa_udp_as_esp_icmp_in_clear_nics_do_the_crypto() {
    // The stack offloads through NDIS IPsec offload v1 only, which cannot express IPv6: the
    // IPv6 SAs stay in software (both NICs pass ESP through untouched) and that is asserted.
    for ipv6 in [false, true] {
        let off = !ipv6;
        let o = u64::from(off);
        let mut net = TwoHosts::standard().unwrap();
        let sa = manual_sa(
            &mut net,
            &ManualSaOptions {
                ipv6,
                ..Default::default()
            },
        )
        .unwrap();
        net.drive().unwrap();
        let (a, b) = addrs(ipv6);
        let now = net.now();
        for i in 0..3 {
            let d = net
                .a
                .stack_mut()
                .send_udp(now, sock(a, 5000), sock(b, 6000), &payload(i, 100))
                .unwrap();
            assert!(matches!(
                d,
                transport::stack::SendDisposition::Protected { offloaded, .. } if offloaded == off
            ));
        }
        for i in 0..2 {
            net.b
                .stack_mut()
                .send_udp(now, sock(b, 6000), sock(a, 5000), &payload(10 + i, 50))
                .unwrap();
        }
        net.drive().unwrap();
        assert_eq!(
            recv_all(&mut net.b),
            (0..3).map(|i| (payload(i, 100), true)).collect::<Vec<_>>()
        );
        assert_eq!(
            recv_all(&mut net.a),
            (0..2)
                .map(|i| (payload(10 + i, 50), true))
                .collect::<Vec<_>>()
        );
        // ICMP echo is exempt: crosses in clear and is answered.
        let now = net.now();
        let d = net.a.stack_mut().ping(now, b, 7, 1, b"ping").unwrap();
        assert_eq!(d, transport::stack::SendDisposition::Clear);
        net.drive().unwrap();
        let r = net.a.stack_mut().recv_echo_reply().unwrap();
        assert_eq!((r.src, r.id, r.seq, r.secure), (b, 7, 1, false));

        // The wire (capture at A's port): 3 + 2 ESP frames, 2 ICMP frames, nothing else.
        let frames = net.capture().unwrap().frames();
        let protos: Vec<u8> = frames.iter().map(|f| ip_proto(f).unwrap()).collect();
        let icmp = if ipv6 { 58 } else { 1 };
        assert_eq!(protos.iter().filter(|&&p| p == 50).count(), 5, "{protos:?}");
        assert_eq!(
            protos.iter().filter(|&&p| p == icmp).count(),
            2,
            "{protos:?}"
        );
        assert_eq!(protos.len(), 7, "{protos:?}");
        for f in frames.iter().filter(|f| ip_proto(f) == Some(50)) {
            assert!(!f.windows(16).any(|w| w == &payload(0, 100)[..16]));
        }

        // NICs did the crypto.
        let (na, nb) = (net.a.nic_stats(), net.b.nic_stats());
        let nic =
            |n: nicsim::NicStats| (n.tx_protected, n.tx_clear, n.rx_ok, n.rx_no_sa, n.rx_clear);
        assert_eq!(nic(na), (3 * o, 1 + 3 * (1 - o), 2 * o, 2 * (1 - o), 1));
        assert_eq!(nic(nb), (2 * o, 1 + 2 * (1 - o), 3 * o, 3 * (1 - o), 1));
        assert_eq!((na.sa_added, nb.sa_added), (2 * o, 2 * o));
        assert_eq!(
            (na.rx_frames, na.tx_frames, nb.rx_frames, nb.tx_frames),
            (3, 4, 4, 3)
        );
        let ip_hdr = if ipv6 { 40 } else { 20 };
        for (h, ctx, rx_pkts, rx_len) in [
            (&net.a, sa.a.context, 2u64, 50u64),
            (&net.b, sa.b.context, 3, 100),
        ] {
            let s = h.stack().ipsec_get_statistics1();
            assert_eq!(
                s.aggregate_sa_statistics.offloaded_sas,
                2 * o as u32,
                "{}",
                h.name()
            );
            assert_eq!(s.aggregate_sa_statistics.active_sas, 2);
            let bytes = rx_pkts * (ip_hdr + 8 + rx_len);
            assert_eq!(s.inbound_traffic_statistics.offload_byte_count, bytes * o);
            assert_eq!(s.inbound_traffic_statistics.encrypted_byte_count, bytes);
            assert_eq!(
                s.aggregate_drop_packet_statistics
                    .total_drop_packets_inbound,
                0
            );
            let st = h.stack().sa_offload_state(ctx).unwrap();
            let want = if off {
                transport::stack::SaOffloadState::Offloaded
            } else {
                transport::stack::SaOffloadState::Software
            };
            assert_eq!((st.inbound, st.outbound), (Some(want), Some(want)));
            let c = h.stack().statistics();
            assert_eq!(
                (
                    c.inbound.nic_processed,
                    c.inbound.software_processed,
                    c.inbound.delivered
                ),
                (rx_pkts * o, rx_pkts * (1 - o), rx_pkts + 1)
            );
        }
        let s = net.a.stack().ipsec_get_statistics1();
        assert_eq!(
            s.outbound_traffic_statistics.offload_byte_count,
            3 * (ip_hdr + 8 + 100) * o
        );
    }
}

/// BUG (transport): `HostStack::poll` pools send completions whose buffer moved to the peer
/// (the miniport completes them with an empty buffer until it has recycled receive buffers,
/// as miniport's docs say), so the next delivery finds an empty pool buffer: the datagram is
/// lost and counted as `no_buffer`. Host B sends before it has received anything, then
/// receives. Passes with the `RefillCompletions` shim (`refill_completions: true`).
#[test]
#[ignore = "transport bug: HostStack pools send completions with an empty buffer (no_buffer drops)"]
fn bug_stack_pools_empty_send_completion_buffers() {
    let mut cfg = TopologyConfig::standard();
    cfg.a.refill_completions = false;
    cfg.b.refill_completions = false;
    let mut net = TwoHosts::new(cfg).unwrap();
    manual_sa(&mut net, &ManualSaOptions::default()).unwrap();
    net.drive().unwrap();
    let (a, b) = addrs(false);
    let now = net.now();
    net.b
        .stack_mut()
        .send_udp(now, sock(b, 6000), sock(a, 5000), b"first")
        .unwrap();
    net.a
        .stack_mut()
        .send_udp(now, sock(a, 5000), sock(b, 6000), b"second")
        .unwrap();
    net.drive().unwrap();
    assert_eq!(net.b.stack().statistics().inbound.no_buffer, 0);
    assert_eq!(recv_all(&mut net.b), vec![(b"second".to_vec(), true)]);
}
