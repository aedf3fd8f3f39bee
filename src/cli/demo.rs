//! `ipsec-nic demo`: the in-memory end-to-end run.
//!
//! Two hosts ([`crate::TwoHosts::standard`]) on an in-memory wire, the Manual SA scenario
//! ([`crate::manual_sa`], AES-GCM-128 transport mode by default), `udp` UDP datagrams A -> B
//! and `pings` echo requests A -> B (answered by B), then a report: the SAs offloaded to each
//! NIC with their packet/byte counters, the NIC and stack drop counters by reason, and the
//! capture at A's port (a classic pcap).

use core::fmt::Write as _;
use core::net::SocketAddr;

use crate::{A_V4, A_V6, B_V4, B_V6, ManualSaOptions, TwoHosts, manual_sa};

/// What [`run`] produced.
#[derive(Clone, Debug)]
pub struct DemoResult {
    /// The human-readable report (no key bytes).
    pub report: String,
    /// The capture at host A's wire port (classic pcap).
    pub pcap: Vec<u8>,
    /// UDP datagrams B received, and whether all arrived protected.
    pub udp_received: usize,
    /// Echo replies A received.
    pub echo_replies: usize,
}

/// Run the demo.
///
/// # Errors
/// A message when the topology, the SAs or a send fails.
pub fn run(opts: &ManualSaOptions, udp: usize, pings: usize) -> Result<DemoResult, String> {
    let mut net = TwoHosts::standard().map_err(|e| format!("topology: {e}"))?;
    let sa = manual_sa(&mut net, opts).map_err(|e| format!("manual SA: {e:?}"))?;
    net.drive()
        .ok_or("the network did not settle (step bound hit)")?;
    let (a, b) = if opts.ipv6 {
        (A_V6.into(), B_V6.into())
    } else {
        (A_V4.into(), B_V4.into())
    };
    let (src, dst) = (SocketAddr::new(a, 5000), SocketAddr::new(b, 6000));
    let mut udp_received = 0;
    let mut buf = vec![0u8; 2048];
    for i in 0..udp {
        let now = net.now();
        let payload = format!("datagram {i}");
        net.a
            .stack_mut()
            .send_udp(now, src, dst, payload.as_bytes())
            .map_err(|e| format!("send_udp: {e:?}"))?;
        net.drive()
            .ok_or("the network did not settle (step bound hit)")?;
        while net.b.stack_mut().recv_udp(&mut buf).is_some() {
            udp_received += 1;
        }
    }
    let mut echo_replies = 0;
    for i in 0..pings {
        let now = net.now();
        let seq = u16::try_from(i).unwrap_or(u16::MAX);
        net.a
            .stack_mut()
            .ping(now, b, 0x1d, seq, b"ipsec-nic demo")
            .map_err(|e| format!("ping: {e:?}"))?;
        net.drive()
            .ok_or("the network did not settle (step bound hit)")?;
        while net.a.stack_mut().recv_echo_reply().is_some() {
            echo_replies += 1;
        }
    }
    let mut r = String::new();
    let _ = writeln!(
        r,
        "manual SA {:?} {:?}: A context {} (inbound SPI {:#010x}), B context {} (inbound SPI {:#010x})",
        opts.algorithms, opts.mode, sa.a.context, sa.a.spi, sa.b.context, sa.b.spi
    );
    let _ = writeln!(
        r,
        "UDP: {udp_received}/{udp} delivered; ping: {echo_replies}/{pings} replies"
    );
    for host in [&net.a, &net.b] {
        let mp = host.miniport();
        let _ = writeln!(r, "host {}: offloaded SAs", host.name());
        for h in mp.sa_handles() {
            let (Some(info), Some(st)) = (mp.sa_info(h), mp.sa_stats(h)) else {
                continue;
            };
            for s in &info.sas {
                let _ = writeln!(
                    r,
                    "  {:?} spi {:#010x} {:?} {:?} {:?}/{:?}: {} packets, {} bytes",
                    info.direction,
                    s.spi,
                    s.protocol,
                    s.mode,
                    s.encryption,
                    s.integrity,
                    st.packets,
                    st.bytes
                );
            }
            for (name, v) in st
                .fields()
                .filter(|&(n, v)| v > 0 && n != "packets" && n != "bytes")
            {
                let _ = writeln!(r, "    {name}: {v}");
            }
        }
        let nic = host.nic_stats();
        let _ = write!(r, "  NIC counters:");
        for (name, v) in nic.fields().filter(|&(_, v)| v > 0) {
            let _ = write!(r, " {name}={v}");
        }
        let _ = writeln!(r);
        let s = host.stack().statistics();
        let _ = writeln!(r, "  stack drops: outbound {:?}", s.outbound);
        let _ = writeln!(r, "  stack inbound: {:?}", s.inbound);
    }
    let pcap = net.capture().map(|c| c.bytes()).unwrap_or_default();
    Ok(DemoResult {
        report: r,
        pcap,
        udp_received,
        echo_replies,
    })
}
