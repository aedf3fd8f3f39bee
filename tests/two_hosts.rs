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

/// (inbound, outbound) offloaded, per host (A, B).
type Offloaded = ((bool, bool), (bool, bool));

/// Manual SA with `o`, A sends 4 UDP datagrams to B and B 2 to A; checks delivery, the wire
/// protocol and exact counters; returns whether each host's SA context is offloaded.
fn exchange(o: &ManualSaOptions) -> (TwoHosts, ManualSa, (bool, bool)) {
    let (net, sa, off) = exchange_with(TopologyConfig::standard(), o);
    assert_eq!((off.0.0, off.1.0), (off.0.1, off.1.1), "{o:?}");
    (net, sa, (off.0.0, off.1.0))
}

/// As [`exchange`] on a topology built from `cfg`; returns (inbound, outbound) offloaded per
/// host.
fn exchange_with(cfg: TopologyConfig, o: &ManualSaOptions) -> (TwoHosts, ManualSa, Offloaded) {
    let mut net = TwoHosts::new(cfg).unwrap();
    let sa = manual_sa(&mut net, o).unwrap();
    net.drive().unwrap();
    let state = |h: &Host, ctx| {
        let s = h.stack().sa_offload_state(ctx).unwrap();
        let is = |x| x == Some(transport::stack::SaOffloadState::Offloaded);
        (is(s.inbound), is(s.outbound))
    };
    let off = (state(&net.a, sa.a.context), state(&net.b, sa.b.context));
    let (a, b) = addrs(o.ipv6);
    let now = net.now();
    for i in 0..4 {
        net.a
            .stack_mut()
            .send_udp(now, sock(a, 5000), sock(b, 6000), &payload(i, 200))
            .unwrap();
    }
    for i in 0..2 {
        net.b
            .stack_mut()
            .send_udp(now, sock(b, 6000), sock(a, 5000), &payload(20 + i, 64))
            .unwrap();
    }
    net.drive().unwrap();
    assert_eq!(
        recv_all(&mut net.b),
        (0..4).map(|i| (payload(i, 200), true)).collect::<Vec<_>>(),
        "{o:?}"
    );
    assert_eq!(
        recv_all(&mut net.a),
        (0..2)
            .map(|i| (payload(20 + i, 64), true))
            .collect::<Vec<_>>(),
        "{o:?}"
    );
    // The wire: every frame is the outermost IPsec protocol (AH if present, else ESP; UDP
    // for UDP-encapsulated ESP).
    let want = if o.udp_encap.is_some() {
        17
    } else if o.algorithms.has_ah() {
        51
    } else {
        50
    };
    let frames = net.capture().unwrap().frames();
    assert_eq!(frames.len(), 6, "{o:?}");
    for f in &frames {
        assert_eq!(ip_proto(f), Some(want), "{o:?}");
        if o.algorithms.encrypts() {
            assert!(!f.windows(16).any(|w| w == &payload(0, 200)[..16]));
        }
    }
    let ip_hdr = if o.ipv6 { 40 } else { 20 };
    let tunnel = o.mode == SaMode::Tunnel;
    for (h, off, rx_n, rx_len, tx_n, tx_len) in [
        (&net.a, off.0, 2u64, 64u64, 4u64, 200u64),
        (&net.b, off.1, 4, 200, 2, 64),
    ] {
        let (ki, ko) = (u64::from(off.0), u64::from(off.1));
        let n = h.nic_stats();
        assert_eq!(
            (n.tx_protected, n.rx_ok, n.tx_frames, n.rx_frames),
            (tx_n * ko, rx_n * ki, tx_n, rx_n),
            "{} {o:?}",
            h.name()
        );
        let s = h.stack().ipsec_get_statistics1();
        assert_eq!(
            s.aggregate_drop_packet_statistics
                .total_drop_packets_inbound,
            0
        );
        assert_eq!(s.aggregate_sa_statistics.offloaded_sas, (ki + ko) as u32);
        assert_eq!(s.aggregate_sa_statistics.active_sas, 2);
        assert_eq!(
            s.aggregate_sa_statistics.active_tunnels,
            if tunnel { 2 } else { 0 }
        );
        let (rx_bytes, tx_bytes) = (rx_n * (ip_hdr + 8 + rx_len), tx_n * (ip_hdr + 8 + tx_len));
        for (t, bytes, k) in [
            (s.inbound_traffic_statistics, rx_bytes, ki),
            (s.outbound_traffic_statistics, tx_bytes, ko),
        ] {
            assert_eq!(t.offload_byte_count, bytes * k, "{o:?}");
            let esp_auth = o.algorithms.has_esp();
            assert_eq!(t.authenticated_esp_byte_count, bytes * u64::from(esp_auth));
            assert_eq!(
                t.authenticated_ah_byte_count,
                bytes * u64::from(o.algorithms.has_ah())
            );
            assert_eq!(
                t.encrypted_byte_count,
                bytes * u64::from(o.algorithms.encrypts())
            );
            assert_eq!(t.tunnel_byte_count, bytes * u64::from(tunnel));
            assert_eq!(t.transport_byte_count, bytes * u64::from(!tunnel));
        }
    }
    (net, sa, off)
}

#[test]
fn algorithm_mode_family_matrix() {
    let mut seen = Vec::new();
    for ipv6 in [false, true] {
        for mode in [SaMode::Transport, SaMode::Tunnel] {
            for algorithms in Algorithms::ALL {
                let o = ManualSaOptions {
                    ipv6,
                    mode,
                    algorithms,
                    ..Default::default()
                };
                let (_, _, off) = exchange(&o);
                // Offload v1 cannot express IPv6: those SAs stay in software (asserted).
                assert_eq!(off, (!ipv6, !ipv6), "{o:?}");
                seen.push(o);
            }
        }
    }
    assert_eq!(seen.len(), 48);
}

#[test]
fn udp_encapsulated_esp() {
    for mode in [SaMode::Transport, SaMode::Tunnel] {
        let o = ManualSaOptions {
            udp_encap: Some((4500, 4500)),
            mode,
            ..Default::default()
        };
        let (net, _, off) = exchange(&o);
        assert_eq!(off, (true, true));
        for f in net.capture().unwrap().frames() {
            // UDP 4500 -> 4500, then the SPI (non-zero: not a keepalive / IKE marker).
            assert_eq!(&f[34..38], &[0x11, 0x94, 0x11, 0x94]);
            assert_ne!(&f[42..46], &[0, 0, 0, 0]);
        }
    }
}

#[test]
fn nic_table_full_falls_back_to_software_without_loss_and_same_wire_bytes() {
    let o = ManualSaOptions::default();
    let (full, _, off) = exchange_with(TopologyConfig::standard(), &o);
    assert_eq!(off, ((true, true), (true, true)));
    let mut cfg = TopologyConfig::standard();
    // SaOffloadCapacity 1: B's NIC takes one of its two bundles, the other stays in software.
    cfg.b.nic_capacity = 1;
    let (part, _, off) = exchange_with(cfg, &o);
    assert_eq!(off.0, (true, true));
    assert_eq!(u8::from(off.1.0) + u8::from(off.1.1), 1, "{off:?}");
    let s = part.b.stack().statistics();
    assert_eq!(s.offload.add_sa_ok, 1);
    assert_eq!(part.b.nic_stats().sa_added, 1);
    assert_eq!(
        full.capture().unwrap().frames(),
        part.capture().unwrap().frames()
    );
    // Offload disabled entirely on both hosts: all software, still the same bytes.
    let mut cfg = TopologyConfig::standard();
    cfg.a.offload = false;
    cfg.b.offload = false;
    let (soft, _, off) = exchange_with(cfg, &o);
    assert_eq!(off, ((false, false), (false, false)));
    for h in [&soft.a, &soft.b] {
        let n = h.nic_stats();
        assert_eq!((n.sa_added, n.tx_protected, n.rx_ok), (0, 0, 0));
        assert_eq!(h.stack().statistics().offload.add_sa_ok, 0);
    }
    assert_eq!(
        full.capture().unwrap().frames(),
        soft.capture().unwrap().frames()
    );
}
