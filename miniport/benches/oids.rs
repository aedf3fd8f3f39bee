//! Control-plane rate of the virtual miniport: `OID_TCP_TASK_IPSEC_ADD_SA` followed by
//! `OID_TCP_TASK_IPSEC_DELETE_SA` through [`VirtualMiniport::oid_request`], with real
//! `OFFLOAD_IPSEC_ADD_SA` / `OFFLOAD_IPSEC_DELETE_SA` byte buffers.
//!
//! # How the measurement is made
//! The ADD_SA buffer (an inbound ESP transport SA, 192.0.2.1 -> 192.0.2.2) is emitted once
//! with `oid::AddSaRequest::to_bytes`, outside the timed loop, and reused: the miniport
//! writes the `OffloadHandle` back into it, the benchmark reads it and builds the 8-byte
//! DELETE_SA buffer on the stack. One element = one ADD_SA + DELETE_SA pair. The miniport
//! itself allocates while programming an SA (parsed request, key schedule, table entry): that
//! is part of what is measured.
#![allow(missing_docs)]

use core::hint::black_box;
use core::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ipsec::ProviderKind;
use miniport::{MiniportConfig, NicConfig, VirtualMiniport};
use nicsim::{MemWire, TableConfig};
use oid::{
    AddSaRequest, ConfAlgorithm, DeleteSaRequest, Direction, EspSa, IntegrityAlgorithm, KeyOrder,
    Miniport, NdisStatus, Oid, OidRequest, SaBundle, SaOptions, SecretKey, Selector,
};

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn key(len: usize, seed: u8) -> SecretKey {
    SecretKey::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
}

fn add_request(cipher: ConfAlgorithm, integrity: IntegrityAlgorithm) -> AddSaRequest {
    AddSaRequest {
        selector: Selector {
            src_addr: A,
            src_mask: Ipv4Addr::BROADCAST,
            dest_addr: B,
            dest_mask: Ipv4Addr::BROADCAST,
            ..Selector::ANY
        },
        tunnel: None,
        direction: Direction::Inbound,
        sas: SaBundle::Esp(EspSa {
            spi: 0x1000_0001,
            cipher,
            cipher_key: key(cipher.key_len(), 1),
            integrity,
            integrity_key: key(integrity.key_len(), 101),
            options: SaOptions::default(),
        }),
        udp_esp: None,
    }
}

fn add_delete(c: &mut Criterion) {
    let mut g = c.benchmark_group("oid_add_delete_sa");
    g.throughput(Throughput::Elements(1));
    let algs = [
        (
            "aes-gcm-128",
            ConfAlgorithm::AesGcm128,
            IntegrityAlgorithm::None,
        ),
        (
            "aes-cbc-128-hmac-sha256",
            ConfAlgorithm::AesCbc128,
            IntegrityAlgorithm::Sha256,
        ),
    ];
    for &kind in ProviderKind::available() {
        for (name, cipher, integrity) in algs {
            let (w, _peer) = MemWire::pair();
            let cfg = MiniportConfig {
                nic: NicConfig {
                    table: TableConfig {
                        inbound_capacity: 1024,
                        outbound_capacity: 1024,
                        ..TableConfig::default()
                    },
                    provider: kind,
                    ..NicConfig::default()
                },
                ..MiniportConfig::default()
            };
            let m = VirtualMiniport::initialize(cfg, w);
            let req = add_request(cipher, integrity);
            let oid = req.oid();
            let mut add_buf = req
                .to_bytes(KeyOrder::ConfidentialityFirst)
                .expect("emit ADD_SA");
            g.bench_function(BenchmarkId::new(name, kind), |b| {
                b.iter(|| {
                    let mut r = OidRequest::set(oid, &mut add_buf);
                    let s = m.oid_request(&mut r);
                    assert_eq!(s, NdisStatus::SUCCESS, "ADD_SA");
                    let h = AddSaRequest::read_offload_handle(&add_buf).expect("handle");
                    let mut del = DeleteSaRequest { offload_handle: h }.to_bytes();
                    let mut r = OidRequest::set(Oid::TCP_TASK_IPSEC_DELETE_SA, &mut del);
                    let s = m.oid_request(&mut r);
                    assert_eq!(s, NdisStatus::SUCCESS, "DELETE_SA");
                    black_box(h)
                });
            });
            assert_eq!(m.sa_count(), (0, 0));
        }
    }
    g.finish();
}

criterion_group!(benches, add_delete);
criterion_main!(benches);
