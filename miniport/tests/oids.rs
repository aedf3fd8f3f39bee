//! OID, capability, data-path and concurrency tests of the virtual miniport, with byte buffers
//! built by the `oid` crate's emitters (or by hand from the ABI offsets) and frames framed by
//! the host side of the `ipsec` API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use std::sync::{Arc, Mutex};

use ipsec::{Bundle, BundleSeq, Encryption, Integrity, Key, Mode, ProviderKind, SaParams};
use miniport::{MiniportConfig, NicConfig, UDPESP_PARSER_HANDLE_OFFSET, VirtualMiniport};
use nicsim::{MemWire, TableConfig};
use oid::v2::{
    AddSaExV2Request, AddSaV2Request, DeleteSaV2Request, UpdateSaV2Request, V2AddSa,
    V2UdpEspEncapsulation,
};
use oid::{
    AddSaRequest, AhSa, ConfAlgorithm, CryptoStatus, DeleteSaRequest, DeleteUdpEspSaRequest,
    Direction, EspSa, IntegrityAlgorithm, IpsecOffloadSetting, IpsecV2Settings, KeyOrder, Miniport,
    Nbl, NdisStatus, OffloadCapabilities, OffloadHandle, OffloadParameters, Oid, OidRequest,
    Protocol, SaBundle, SaOptions, SaProtocol, SecretKey, Selector, StatusIndication,
    TaskOffloadList, TunnelEndpoints, UdpEncapType, UdpEspEncap,
};

// ---- harness ----

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Nbl>>,
    completed: Mutex<Vec<Nbl>>,
    indications: Mutex<Vec<(NdisStatus, Vec<u8>)>>,
}

impl Protocol for Recorder {
    fn receive_net_buffer_lists(&self, nbls: &mut Vec<Nbl>) {
        self.received.lock().unwrap().append(nbls);
    }
    fn send_net_buffer_lists_complete(&self, nbls: &mut Vec<Nbl>) {
        self.completed.lock().unwrap().append(nbls);
    }
    fn status_indication(&self, i: &StatusIndication<'_>) {
        self.indications
            .lock()
            .unwrap()
            .push((i.status, i.buffer.to_vec()));
    }
}

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn config(capacity: usize) -> MiniportConfig {
    MiniportConfig {
        nic: NicConfig {
            table: TableConfig {
                inbound_capacity: capacity,
                outbound_capacity: capacity,
                ..TableConfig::default()
            },
            provider: ProviderKind::RustCrypto,
            ..NicConfig::default()
        },
        ..MiniportConfig::default()
    }
}

/// A miniport on one end of a wire (the other end is returned so it stays connected).
fn single(capacity: usize) -> (VirtualMiniport, Arc<Recorder>, MemWire) {
    let (w, peer) = MemWire::pair();
    let m = VirtualMiniport::initialize(config(capacity), w);
    let r = Arc::new(Recorder::default());
    m.bind(r.clone());
    (m, r, peer)
}

struct Pair {
    a: Arc<VirtualMiniport>,
    ra: Arc<Recorder>,
    b: Arc<VirtualMiniport>,
    rb: Arc<Recorder>,
}

fn pair() -> Pair {
    let (wa, wb) = MemWire::pair();
    let a = Arc::new(VirtualMiniport::initialize(config(16), wa));
    let b = Arc::new(VirtualMiniport::initialize(config(16), wb));
    let (ra, rb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    a.bind(ra.clone());
    b.bind(rb.clone());
    Pair { a, ra, b, rb }
}

struct Outcome {
    status: NdisStatus,
    read: u32,
    written: u32,
    needed: u32,
}

fn set(m: &dyn Miniport, oid: Oid, buf: &mut [u8]) -> Outcome {
    let mut r = OidRequest::set(oid, buf);
    let status = m.oid_request(&mut r);
    Outcome {
        status,
        read: r.bytes_read,
        written: r.bytes_written,
        needed: r.bytes_needed,
    }
}

fn query(m: &dyn Miniport, oid: Oid, len: usize) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0u8; len];
    let mut r = OidRequest::query(oid, &mut buf);
    let status = m.oid_request(&mut r);
    let o = Outcome {
        status,
        read: r.bytes_read,
        written: r.bytes_written,
        needed: r.bytes_needed,
    };
    let n = o.written as usize;
    buf.truncate(n);
    (o, buf)
}

fn key(len: usize, seed: u8) -> SecretKey {
    SecretKey::new((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
}

fn esp(spi: u32, cipher: ConfAlgorithm, integrity: IntegrityAlgorithm, seed: u8) -> EspSa {
    EspSa {
        spi,
        cipher,
        cipher_key: key(cipher.key_len(), seed),
        integrity,
        integrity_key: key(integrity.key_len(), seed.wrapping_add(100)),
        options: SaOptions::default(),
    }
}

fn gcm(spi: u32, seed: u8) -> SaBundle {
    SaBundle::Esp(esp(
        spi,
        ConfAlgorithm::AesGcm128,
        IntegrityAlgorithm::None,
        seed,
    ))
}

fn ah(spi: u32, integrity: IntegrityAlgorithm) -> AhSa {
    AhSa {
        spi,
        integrity,
        integrity_key: key(integrity.key_len(), 9),
        options: SaOptions::default(),
    }
}

/// A transport SA from A to B (outbound on A, inbound on B).
fn add_req(direction: Direction, sas: SaBundle) -> AddSaRequest {
    AddSaRequest {
        selector: Selector {
            src_addr: A,
            src_mask: Ipv4Addr::BROADCAST,
            dest_addr: B,
            dest_mask: Ipv4Addr::BROADCAST,
            ..Selector::ANY
        },
        tunnel: None,
        direction,
        sas,
        udp_esp: None,
    }
}

fn add(m: &dyn Miniport, r: &AddSaRequest) -> (Outcome, Vec<u8>) {
    let mut buf = r.to_bytes(KeyOrder::ConfidentialityFirst).unwrap();
    let o = set(m, r.oid(), &mut buf);
    (o, buf)
}

fn add_ok(m: &dyn Miniport, r: &AddSaRequest) -> OffloadHandle {
    let (o, buf) = add(m, r);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    let h = AddSaRequest::read_offload_handle(&buf).unwrap();
    assert!(!h.is_null());
    h
}

/// The SA table part of the dump (the NIC counters after it count refusals too).
fn table(m: &VirtualMiniport) -> String {
    m.dump()
        .lines()
        .filter(|l| !l.starts_with("nic "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn delete(m: &dyn Miniport, h: OffloadHandle) -> NdisStatus {
    let mut b = DeleteSaRequest { offload_handle: h }.to_bytes();
    set(m, Oid::TCP_TASK_IPSEC_DELETE_SA, &mut b).status
}

// ---- capabilities ----

#[test]
fn hardware_capabilities_advertise_exactly_the_nic() {
    let (m, _, _w) = single(8);
    let (o, bytes) = query(&m, Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, 512);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    assert_eq!(o.written, 156);
    let caps = OffloadCapabilities::parse(&bytes).unwrap();
    let v1 = caps.ipsec_v1;
    assert_eq!(v1.encapsulation, oid::abi::NDIS_ENCAPSULATION_IEEE_802_3);
    assert!(v1.ah.sha1 && !v1.ah.md5);
    assert!(v1.ah.transport && v1.ah.tunnel && v1.ah.send && v1.ah.receive);
    assert!(v1.esp.null_esp && !v1.esp.des && !v1.esp.triple_des);
    assert!(v1.esp.transport && v1.esp.tunnel && v1.esp.send && v1.esp.receive);
    assert!(v1.ah_esp_combined && v1.transport_tunnel_combined && !v1.ipv4_options);
    assert_eq!(
        v1.udp_esp_flags,
        0x10 | 0x20,
        "OTHER bits only, never the IKE ones"
    );
    let v2 = caps.ipsec_v2.unwrap();
    assert_eq!(v2.sa_offload_capacity, 8);
    assert!(v2.esp && v2.ah && v2.tunnel && v2.transport && v2.extended_sequence_numbers);
    assert_eq!(
        v2.encryption_algorithms,
        0x1 | 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100
    );
    assert_eq!(v2.authentication_algorithms, 0x2 | 0x4 | 0x8 | 0x10 | 0x20);
    // Current config equals the hardware while everything is enabled.
    let (_, cur) = query(&m, Oid::TCP_OFFLOAD_CURRENT_CONFIG, 512);
    assert_eq!(cur, bytes);
    // NDIS 5 query.
    let (o, t) = query(&m, Oid::TCP_TASK_OFFLOAD, 512);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    let list = TaskOffloadList::parse(&t).unwrap();
    let v1_task = list.ipsec().unwrap().unwrap();
    assert_eq!(v1_task.ah, v1.ah);
    assert_eq!(v1_task.esp, v1.esp);
}

#[test]
fn short_query_buffer_is_buffer_too_short() {
    let (m, _, _w) = single(4);
    let (o, _) = query(&m, Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, 100);
    assert_eq!(o.status, NdisStatus::BUFFER_TOO_SHORT);
    assert_eq!(o.needed, 156);
    assert_eq!(o.written, 0);
    let (o, _) = query(&m, Oid::TCP_TASK_OFFLOAD, 8);
    assert_eq!(o.status, NdisStatus::BUFFER_TOO_SHORT);
    assert!(o.needed > 28);
}

/// Every advertised algorithm is accepted by ADD_SA and every refused one is not advertised.
#[test]
fn capability_round_trip_against_add_sa() {
    let (m, _, _w) = single(64);
    let (_, bytes) = query(&m, Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, 512);
    let v2 = OffloadCapabilities::parse(&bytes)
        .unwrap()
        .ipsec_v2
        .unwrap();
    let mut spi = 0x1000;
    let mut tried = 0;
    for c in ConfAlgorithm::ALL {
        for i in IntegrityAlgorithm::ALL {
            let sas = SaBundle::Esp(esp(spi, c, i, 1));
            if sas.validate().is_err() {
                continue;
            }
            spi += 1;
            tried += 1;
            let (o, _) = add(&m, &add_req(Direction::Outbound, sas));
            // GMAC authenticates ESP without encryption (RFC 4543): with a cipher it is a
            // combination the NIC refuses although both algorithms are advertised.
            let combination = !(i.is_gmac() && c != ConfAlgorithm::None);
            let advertised = v2.supports_cipher(c) && v2.supports_integrity(i) && combination;
            let expect = if advertised {
                NdisStatus::SUCCESS
            } else {
                NdisStatus::NOT_SUPPORTED
            };
            assert_eq!(o.status, expect, "{c:?}/{i:?}");
        }
    }
    for i in IntegrityAlgorithm::ALL {
        if i == IntegrityAlgorithm::None {
            continue;
        }
        spi += 1;
        let (o, _) = add(&m, &add_req(Direction::Outbound, SaBundle::Ah(ah(spi, i))));
        let expect = if v2.supports_integrity(i) {
            NdisStatus::SUCCESS
        } else {
            NdisStatus::NOT_SUPPORTED
        };
        assert_eq!(o.status, expect, "AH {i:?}");
    }
    assert!(tried >= 15);
}

// ---- v1 ADD_SA / DELETE_SA ----

#[test]
fn add_sa_writes_handle_and_programs_the_nic() {
    let (m, _, _w) = single(4);
    let r = add_req(Direction::Inbound, gcm(0x2000, 1));
    let (o, buf) = add(&m, &r);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    assert_eq!(o.read as usize, buf.len());
    let h = AddSaRequest::read_offload_handle(&buf).unwrap();
    assert!(!h.is_null());
    let info = m.sa_info(h).unwrap();
    assert_eq!(info.dst, Some(IpAddr::V4(B)));
    assert_eq!(info.sas[0].spi, 0x2000);
    assert_eq!(info.sas[0].encryption, Encryption::AesGcm128);
    assert_eq!(m.sa_count(), (1, 0));
    assert!(!m.dump().contains("0101010101"), "no key bytes in the dump");
    assert_eq!(delete(&m, h), NdisStatus::SUCCESS);
    assert_eq!(m.sa_count(), (0, 0));
    // Stale, NULL, never issued.
    assert_eq!(delete(&m, h), NdisStatus::INVALID_DATA);
    assert_eq!(delete(&m, OffloadHandle::NULL), NdisStatus::INVALID_DATA);
    assert_eq!(delete(&m, OffloadHandle(0x1234)), NdisStatus::INVALID_DATA);
}

#[test]
fn add_sa_tunnel_and_esp_then_ah() {
    let (m, _, _w) = single(4);
    let mut r = add_req(
        Direction::Inbound,
        SaBundle::EspThenAh(
            esp(
                0x3000,
                ConfAlgorithm::AesCbc128,
                IntegrityAlgorithm::Sha256,
                3,
            ),
            ah(0x3001, IntegrityAlgorithm::Sha1),
        ),
    );
    r.tunnel = Some(TunnelEndpoints {
        src: Ipv4Addr::new(198, 51, 100, 1),
        dest: Ipv4Addr::new(198, 51, 100, 2),
    });
    let h = add_ok(&m, &r);
    let info = m.sa_info(h).unwrap();
    assert_eq!(info.mode(), Mode::Tunnel);
    assert_eq!(info.dst, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2))));
    assert!(info.has_esp() && info.has_ah());
}

#[test]
fn add_sa_errors_leave_the_nic_unchanged() {
    let (m, _, _w) = single(4);
    let good = add_req(Direction::Inbound, gcm(0x4000, 1));
    add_ok(&m, &good);
    let before = table(&m);
    // Buffer shorter than the struct.
    let mut short = vec![0u8; 100];
    let o = set(&m, Oid::TCP_TASK_IPSEC_ADD_SA, &mut short);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 184));
    // KeyLen beyond the buffer.
    let buf = good.to_bytes(KeyOrder::ConfidentialityFirst).unwrap();
    let mut cut = buf[..190].to_vec();
    let o = set(&m, Oid::TCP_TASK_IPSEC_ADD_SA, &mut cut);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 200));
    // Flags neither inbound nor outbound (offset 32).
    let mut bad = buf.clone();
    bad[32..34].copy_from_slice(&3u16.to_ne_bytes());
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_ADD_SA, &mut bad).status,
        NdisStatus::INVALID_DATA
    );
    // Reserved SPI.
    let (o, _) = add(&m, &add_req(Direction::Inbound, gcm(255, 1)));
    assert_eq!(o.status, NdisStatus::INVALID_DATA);
    // Duplicate inbound SA (same SPI, dst, protocol), even with other keys.
    let (o, _) = add(&m, &add_req(Direction::Inbound, gcm(0x4000, 7)));
    assert_eq!(o.status, NdisStatus::INVALID_DATA);
    // DES / 3DES / MD5: parsed, not advertised.
    for sas in [
        SaBundle::Esp(esp(0x4100, ConfAlgorithm::Des, IntegrityAlgorithm::Sha1, 1)),
        SaBundle::Esp(esp(
            0x4101,
            ConfAlgorithm::TripleDes,
            IntegrityAlgorithm::Sha1,
            1,
        )),
        SaBundle::Esp(esp(
            0x4102,
            ConfAlgorithm::AesCbc128,
            IntegrityAlgorithm::Md5,
            1,
        )),
        SaBundle::Ah(ah(0x4103, IntegrityAlgorithm::Md5)),
    ] {
        let (o, _) = add(&m, &add_req(Direction::Inbound, sas));
        assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    }
    // Failed requests wrote no handle and changed nothing.
    assert_eq!(table(&m), before);
    assert_eq!(m.sa_count(), (1, 0));
}

#[test]
fn key_order_is_configurable() {
    let (w, _peer) = MemWire::pair();
    let m = VirtualMiniport::initialize(
        MiniportConfig {
            key_order: KeyOrder::IntegrityFirst,
            ..config(4)
        },
        w,
    );
    let r = add_req(
        Direction::Outbound,
        SaBundle::Esp(esp(
            0x4200,
            ConfAlgorithm::AesCbc256,
            IntegrityAlgorithm::Sha1,
            5,
        )),
    );
    let mut buf = r.to_bytes(KeyOrder::IntegrityFirst).unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_ADD_SA, &mut buf).status,
        NdisStatus::SUCCESS
    );
    assert_eq!(m.config().key_order, KeyOrder::IntegrityFirst);
}

#[test]
fn full_table_gives_resources_and_recovers_after_delete() {
    let (m, _, _w) = single(2);
    let h1 = add_ok(&m, &add_req(Direction::Outbound, gcm(0x5000, 1)));
    add_ok(&m, &add_req(Direction::Outbound, gcm(0x5001, 1)));
    let before = table(&m);
    let (o, buf) = add(&m, &add_req(Direction::Outbound, gcm(0x5002, 1)));
    assert_eq!(o.status, NdisStatus::RESOURCES);
    assert_eq!(
        AddSaRequest::read_offload_handle(&buf),
        Some(OffloadHandle::NULL)
    );
    assert_eq!(table(&m), before, "table unchanged");
    assert_eq!(delete(&m, h1), NdisStatus::SUCCESS);
    add_ok(&m, &add_req(Direction::Outbound, gcm(0x5002, 1)));
    assert_eq!(m.sa_count(), (0, 2));
}

#[test]
fn request_type_and_unknown_oids() {
    let (m, _, _w) = single(2);
    let (o, _) = query(&m, Oid::TCP_TASK_IPSEC_ADD_SA, 256);
    assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    let (o, _) = query(&m, Oid::TCP_OFFLOAD_PARAMETERS, 64);
    assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    let mut b = vec![0u8; 200];
    assert_eq!(
        set(&m, Oid::TCP_OFFLOAD_HARDWARE_CAPABILITIES, &mut b).status,
        NdisStatus::NOT_SUPPORTED
    );
    assert_eq!(
        set(&m, Oid::TCP_OFFLOAD_CURRENT_CONFIG, &mut b).status,
        NdisStatus::NOT_SUPPORTED
    );
    assert_eq!(
        set(&m, Oid(0x1234_5678), &mut b).status,
        NdisStatus::INVALID_OID
    );
    let (o, _) = query(&m, Oid::TCP4_OFFLOAD_STATS, 64);
    assert_eq!(o.status, NdisStatus::INVALID_OID);
    // DELETE with a short buffer.
    let mut short = [0u8; 4];
    let o = set(&m, Oid::TCP_TASK_IPSEC_DELETE_SA, &mut short);
    assert_eq!(
        (o.status, o.needed, o.read),
        (NdisStatus::INVALID_LENGTH, 8, 0)
    );
    let o = set(&m, Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA, &mut [0u8; 8]);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 16));
}

// ---- offload enable / disable ----

fn params(v1: IpsecOffloadSetting, v2: Option<IpsecOffloadSetting>) -> [u8; 28] {
    OffloadParameters {
        ipsec_v1: v1,
        flags: 0,
        ipsec_v2: v2.map(|all| IpsecV2Settings {
            all,
            ipv4: IpsecOffloadSetting::NoChange,
        }),
    }
    .to_bytes()
}

#[test]
fn offload_parameters_disable_enable_with_indication() {
    let (m, rec, _w) = single(4);
    let mut p = params(IpsecOffloadSetting::Disabled, None);
    let o = set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut p);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    assert_eq!(o.read, 28);
    {
        let ind = rec.indications.lock().unwrap();
        assert_eq!(ind.len(), 1);
        assert_eq!(ind[0].0, NdisStatus::TASK_OFFLOAD_CURRENT_CONFIG);
        let cur = OffloadCapabilities::parse(&ind[0].1).unwrap();
        assert_eq!(cur.ipsec_v1, oid::IpsecV1Capabilities::default());
        assert!(cur.ipsec_v2.unwrap().esp, "v2 untouched");
    }
    let (o, _) = add(&m, &add_req(Direction::Outbound, gcm(0x6000, 1)));
    assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    assert_eq!(m.sa_count(), (0, 0));
    // ESP only: AH refused, ESP accepted.
    let mut p = params(IpsecOffloadSetting::EspEnabled, None);
    set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut p);
    let (o, _) = add(
        &m,
        &add_req(
            Direction::Outbound,
            SaBundle::Ah(ah(0x6001, IntegrityAlgorithm::Sha1)),
        ),
    );
    assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    add_ok(&m, &add_req(Direction::Outbound, gcm(0x6002, 1)));
    let (_, cur) = query(&m, Oid::TCP_OFFLOAD_CURRENT_CONFIG, 512);
    let cur = OffloadCapabilities::parse(&cur).unwrap();
    assert!(cur.ipsec_v1.esp.send && !cur.ipsec_v1.ah.sha1);
    assert_eq!(rec.indications.lock().unwrap().len(), 2);
    // NO_CHANGE: no indication.
    let mut p = params(IpsecOffloadSetting::NoChange, None);
    set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut p);
    assert_eq!(rec.indications.lock().unwrap().len(), 2);
    // v2 disabled: v2 ADD_SA refused.
    let mut p = params(
        IpsecOffloadSetting::NoChange,
        Some(IpsecOffloadSetting::Disabled),
    );
    set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut p);
    let mut b = AddSaExV2Request {
        sa: v2_entry(Direction::Outbound, gcm(0x6003, 1)),
        source_switch_port_id: 0,
        vlan_id: 0,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut b).status,
        NdisStatus::NOT_SUPPORTED
    );
    // Malformed parameters.
    let o = set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut [0u8; 10]);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 20));
    let mut p = params(IpsecOffloadSetting::NoChange, None);
    p[10] = 9;
    assert_eq!(
        set(&m, Oid::TCP_OFFLOAD_PARAMETERS, &mut p).status,
        NdisStatus::INVALID_DATA
    );
}

#[test]
fn task_offload_set_enables_and_disables_v1() {
    let (m, rec, _w) = single(4);
    let (_, hw) = query(&m, Oid::TCP_TASK_OFFLOAD, 512);
    let list = TaskOffloadList::parse(&hw).unwrap();
    // No IPsec task: v1 disabled.
    let mut none = TaskOffloadList {
        encapsulation: list.encapsulation,
        tasks: Vec::new(),
    }
    .to_bytes();
    assert_eq!(
        set(&m, Oid::TCP_TASK_OFFLOAD, &mut none).status,
        NdisStatus::SUCCESS
    );
    assert_eq!(rec.indications.lock().unwrap().len(), 1);
    let (o, _) = add(&m, &add_req(Direction::Outbound, gcm(0x6100, 1)));
    assert_eq!(o.status, NdisStatus::NOT_SUPPORTED);
    // Asking for MD5: not supported, nothing changes.
    let mut caps = list.ipsec().unwrap().unwrap();
    caps.ah.md5 = true;
    let mut md5 = TaskOffloadList::with_ipsec(list.encapsulation, &caps).to_bytes();
    assert_eq!(
        set(&m, Oid::TCP_TASK_OFFLOAD, &mut md5).status,
        NdisStatus::NOT_SUPPORTED
    );
    assert_eq!(rec.indications.lock().unwrap().len(), 1);
    // The hardware list back: enabled again.
    let mut back = hw.clone();
    assert_eq!(
        set(&m, Oid::TCP_TASK_OFFLOAD, &mut back).status,
        NdisStatus::SUCCESS
    );
    assert_eq!(rec.indications.lock().unwrap().len(), 2);
    add_ok(&m, &add_req(Direction::Outbound, gcm(0x6101, 1)));
    // Garbage.
    let mut junk = vec![0xFFu8; 40];
    assert_eq!(
        set(&m, Oid::TCP_TASK_OFFLOAD, &mut junk).status,
        NdisStatus::INVALID_DATA
    );
}

// ---- UDP-ESP ----

fn udpesp_req(spi: u32, port: u16, parser: OffloadHandle) -> AddSaRequest {
    let mut r = add_req(Direction::Inbound, gcm(spi, 2));
    r.udp_esp = Some(UdpEspEncap {
        encap_type: UdpEncapType::Other,
        dst_port: port,
        parser_entry: parser,
    });
    r
}

fn parser_of(buf: &[u8]) -> OffloadHandle {
    let b: [u8; 8] = buf[UDPESP_PARSER_HANDLE_OFFSET..UDPESP_PARSER_HANDLE_OFFSET + 8]
        .try_into()
        .unwrap();
    OffloadHandle(u64::from_ne_bytes(b))
}

fn delete_udpesp(m: &dyn Miniport, sa: OffloadHandle, parser: OffloadHandle) -> NdisStatus {
    let mut b = DeleteUdpEspSaRequest {
        offload_handle: sa,
        parser_entry: parser,
    }
    .to_bytes();
    set(m, Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA, &mut b).status
}

#[test]
fn udpesp_parser_entries_are_reference_counted() {
    let (m, _, _w) = single(8);
    let (o, b1) = add(&m, &udpesp_req(0x7000, 4500, OffloadHandle::NULL));
    assert_eq!(o.status, NdisStatus::SUCCESS);
    let sa1 = AddSaRequest::read_offload_handle(&b1).unwrap();
    let p = parser_of(&b1);
    assert!(!p.is_null() && p != sa1);
    let info = m.sa_info(sa1).unwrap();
    assert_eq!(info.udp_encap.unwrap().port, 4500);
    assert_eq!(info.sas[0].udp_encap.unwrap().local_port, 4500);
    // Same type + port with NULL: reused.
    let (_, b2) = add(&m, &udpesp_req(0x7001, 4500, OffloadHandle::NULL));
    assert_eq!(parser_of(&b2), p);
    // Named explicitly.
    let (o, b3) = add(&m, &udpesp_req(0x7002, 4500, p));
    assert_eq!(o.status, NdisStatus::SUCCESS);
    assert_eq!(parser_of(&b3), p);
    assert_eq!(m.parser_entries()[0].refs, 3);
    // Another port: another entry.
    let (_, b4) = add(&m, &udpesp_req(0x7003, 4501, OffloadHandle::NULL));
    assert_ne!(parser_of(&b4), p);
    assert_eq!(m.parser_entries().len(), 2);
    let before = table(&m);
    // Unknown handle / mismatched port: INVALID_DATA, nothing changes.
    let (o, _) = add(
        &m,
        &udpesp_req(0x7004, 4500, OffloadHandle(0x4000_0000_0000_0999)),
    );
    assert_eq!(o.status, NdisStatus::INVALID_DATA);
    let (o, _) = add(&m, &udpesp_req(0x7005, 4501, p));
    assert_eq!(o.status, NdisStatus::INVALID_DATA);
    assert_eq!(table(&m), before);
    assert_eq!(m.parser_entries()[0].refs, 3);
    // Delete with an unknown parser handle: nothing deleted.
    assert_eq!(
        delete_udpesp(&m, sa1, OffloadHandle(0x4000_0000_0000_0999)),
        NdisStatus::INVALID_DATA
    );
    assert!(m.sa_info(sa1).is_some());
    // Delete with the parser handle: one reference released.
    assert_eq!(delete_udpesp(&m, sa1, p), NdisStatus::SUCCESS);
    assert_eq!(m.parser_entries()[0].refs, 2);
    // Delete with NULL parser handle: only the SA.
    let sa2 = AddSaRequest::read_offload_handle(&b2).unwrap();
    assert_eq!(
        delete_udpesp(&m, sa2, OffloadHandle::NULL),
        NdisStatus::SUCCESS
    );
    assert_eq!(m.parser_entries()[0].refs, 2);
    // Unknown SA handle.
    assert_eq!(delete_udpesp(&m, sa2, p), NdisStatus::INVALID_DATA);
    assert_eq!(m.parser_entries()[0].refs, 2);
    let sa3 = AddSaRequest::read_offload_handle(&b3).unwrap();
    assert_eq!(delete_udpesp(&m, sa3, p), NdisStatus::SUCCESS);
    assert_eq!(
        delete(&m, AddSaRequest::read_offload_handle(&b4).unwrap()),
        NdisStatus::SUCCESS
    );
    // Release the last references: the entries go.
    let (_, b5) = add(&m, &udpesp_req(0x7006, 4500, p));
    let sa5 = AddSaRequest::read_offload_handle(&b5).unwrap();
    assert_eq!(delete_udpesp(&m, sa5, p), NdisStatus::SUCCESS);
    assert_eq!(m.parser_entries()[0].refs, 1);
    let (_, b6) = add(&m, &udpesp_req(0x7007, 4501, parser_of(&b4)));
    let sa6 = AddSaRequest::read_offload_handle(&b6).unwrap();
    assert_eq!(delete_udpesp(&m, sa6, parser_of(&b4)), NdisStatus::SUCCESS);
    assert_eq!(
        delete_udpesp(&m, OffloadHandle::NULL, p),
        NdisStatus::INVALID_DATA
    );
    assert_eq!(m.sa_count(), (0, 0));
}

// ---- v2 ----

fn v2_entry(direction: Direction, sas: SaBundle) -> V2AddSa {
    V2AddSa {
        direction,
        src: IpAddr::V4(A),
        dest: IpAddr::V4(B),
        udp_esp: V2UdpEspEncapsulation::None,
        sas,
    }
}

#[test]
fn v2_add_sa_list_partial_success_and_delete() {
    let (m, _, _w) = single(8);
    let req = AddSaV2Request {
        entries: vec![
            v2_entry(Direction::Inbound, gcm(0x8000, 1)),
            v2_entry(
                Direction::Inbound,
                SaBundle::Esp(esp(0x8001, ConfAlgorithm::Des, IntegrityAlgorithm::Sha1, 1)),
            ),
            v2_entry(Direction::Outbound, gcm(0x8002, 1)),
        ],
    };
    let mut buf = req.to_bytes().unwrap();
    let o = set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA, &mut buf);
    assert_eq!(o.status, NdisStatus::SUCCESS);
    let hs = AddSaV2Request::read_offload_handles(&buf).unwrap();
    assert_eq!(hs.len(), 3);
    assert!(!hs[0].is_null() && hs[1].is_null() && !hs[2].is_null());
    assert_eq!(m.sa_count(), (1, 1));
    // None offloaded: the failure status.
    let mut bad = AddSaV2Request {
        entries: vec![v2_entry(
            Direction::Inbound,
            SaBundle::Ah(ah(0x8003, IntegrityAlgorithm::Md5)),
        )],
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA, &mut bad).status,
        NdisStatus::NOT_SUPPORTED
    );
    // DELETE: all or nothing.
    let mut d = DeleteSaV2Request {
        offload_handles: vec![hs[0], OffloadHandle(0x99)],
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA, &mut d).status,
        NdisStatus::INVALID_DATA
    );
    assert_eq!(m.sa_count(), (1, 1));
    let mut d = DeleteSaV2Request {
        offload_handles: vec![hs[0], hs[2]],
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA, &mut d).status,
        NdisStatus::SUCCESS
    );
    assert_eq!(m.sa_count(), (0, 0));
    let o = set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA, &mut [0u8; 40]);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 176));
}

#[test]
fn v2_add_sa_ex_and_update_sa() {
    let (m, _, _w) = single(8);
    let mut e = esp(
        0x9000,
        ConfAlgorithm::AesGcm256,
        IntegrityAlgorithm::None,
        4,
    );
    e.options.esn = true;
    let mut b = AddSaExV2Request {
        sa: v2_entry(Direction::Outbound, SaBundle::Esp(e)),
        source_switch_port_id: 0,
        vlan_id: 0,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut b).status,
        NdisStatus::SUCCESS
    );
    let h = AddSaExV2Request::read_offload_handle(&b).unwrap();
    assert!(m.sa_info(h).unwrap().esn());
    let update = |h: OffloadHandle, spi: u32, protocol: SaProtocol| {
        let mut u = UpdateSaV2Request {
            offload_handle: h,
            protocol,
            spi,
            sequence_number_high_order: 7,
        }
        .to_bytes();
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA, &mut u).status
    };
    assert_eq!(update(h, 0x9000, SaProtocol::Esp), NdisStatus::SUCCESS);
    assert_eq!(
        update(h, 0x9001, SaProtocol::Esp),
        NdisStatus::INVALID_PARAMETER
    );
    assert_eq!(
        update(h, 0x9000, SaProtocol::Ah),
        NdisStatus::INVALID_PARAMETER
    );
    assert_eq!(
        update(
            OffloadHandle(0x8000_0000_0000_0077),
            0x9000,
            SaProtocol::Esp
        ),
        NdisStatus::INVALID_PARAMETER
    );
    // An SA without ESN.
    let mut b = AddSaExV2Request {
        sa: v2_entry(Direction::Outbound, gcm(0x9002, 1)),
        source_switch_port_id: 0,
        vlan_id: 0,
    }
    .to_bytes()
    .unwrap();
    set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut b);
    let h2 = AddSaExV2Request::read_offload_handle(&b).unwrap();
    assert_eq!(
        update(h2, 0x9002, SaProtocol::Esp),
        NdisStatus::INVALID_PARAMETER
    );
    let o = set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA, &mut [0u8; 16]);
    assert_eq!((o.status, o.needed), (NdisStatus::INVALID_LENGTH, 32));
}

// ---- data path ----

fn host_params(spi: u32, key_seed: u8) -> SaParams {
    SaParams {
        spi,
        protocol: ipsec::Protocol::Esp,
        mode: Mode::Transport,
        encryption: Encryption::AesGcm128,
        encryption_key: Key::new(key(20, key_seed).expose()),
        integrity: Integrity::None,
        integrity_key: Key::empty(),
        esn: false,
        tunnel: None,
        udp_encap: None,
    }
}

fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in h.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// A UDP/IPv4 packet from A to B.
fn ip_packet(payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&A.octets());
    p[16..20].copy_from_slice(&B.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

/// An Ethernet frame in an Nbl: the packet framed by the host side (`encapsulate`), or clear.
fn frame_nbl(bundle: Option<&Bundle>, seq: u64, handle: OffloadHandle) -> Nbl {
    let pkt = ip_packet(b"offloaded payload for the golden model");
    let mut scratch = vec![0u8; 128 + pkt.len() + 128];
    scratch[128..128 + pkt.len()].copy_from_slice(&pkt);
    let r = match bundle {
        Some(b) => b
            .encapsulate(
                BundleSeq { esp: seq, ah: seq },
                &mut scratch,
                128..128 + pkt.len(),
            )
            .unwrap(),
        None => 128..128 + pkt.len(),
    };
    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend_from_slice(&scratch[r]);
    let mut nbl = Nbl::with_capacity(2048, 64);
    assert!(nbl.fill(64, &frame));
    nbl.send_info.offload_handle = handle;
    nbl
}

/// Outbound SA on `a`, inbound SA (with `in_seed` keys) on `b`; returns A's handle.
fn program(p: &Pair, spi: u32, in_seed: Option<u8>) -> OffloadHandle {
    let out = add_ok(p.a.as_ref(), &add_req(Direction::Outbound, gcm(spi, 1)));
    if let Some(seed) = in_seed {
        add_ok(p.b.as_ref(), &add_req(Direction::Inbound, gcm(spi, seed)));
    }
    out
}

fn drive(p: &Pair, t: u64) {
    p.a.poll(Duration::from_millis(t));
    p.b.poll(Duration::from_millis(t));
}

fn send_one(p: &Pair, nbl: Nbl) -> (Nbl, Nbl) {
    p.a.send_net_buffer_lists(&mut vec![nbl]);
    drive(p, 1);
    let done = p.ra.completed.lock().unwrap().pop().expect("a completion");
    let got = p.rb.received.lock().unwrap().pop().expect("an indication");
    (done, got)
}

#[test]
fn send_receive_crypto_success() {
    let p = pair();
    let h = program(&p, 0xA000, Some(1));
    let host = Bundle::new(&[host_params(0xA000, 1)], ProviderKind::RustCrypto).unwrap();
    let mut nbl = frame_nbl(Some(&host), 1, h);
    nbl.cookie = 42;
    let (done, got) = send_one(&p, nbl);
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert_eq!(done.cookie, 42);
    assert_eq!(done.send_info.offload_handle, h);
    assert!(got.receive_info.crypto_done);
    assert!(!got.receive_info.next_crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
    assert_eq!(p.a.sa_stats(h).unwrap().packets, 1);
    assert_eq!(p.a.nic_stats().tx_protected, 1);
    // The returned buffer is recycled into the next husk completion.
    p.b.return_net_buffer_lists(&mut vec![got]);
    assert_eq!(p.b.data_path_stats().returned, 1);
}

#[test]
fn wrong_key_is_auth_failed() {
    let p = pair();
    let h = program(&p, 0xA100, Some(77));
    let host = Bundle::new(&[host_params(0xA100, 1)], ProviderKind::RustCrypto).unwrap();
    let (done, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert!(got.receive_info.crypto_done);
    assert_eq!(
        got.receive_info.crypto_status,
        CryptoStatus::TRANSPORT_ESP_AUTH_FAILED
    );
}

#[test]
fn unknown_spi_is_not_processed() {
    let p = pair();
    let h = program(&p, 0xA200, None);
    let host = Bundle::new(&[host_params(0xA200, 1)], ProviderKind::RustCrypto).unwrap();
    let (_, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert!(!got.receive_info.crypto_done && !got.receive_info.next_crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
    assert_eq!(p.b.nic_stats().rx_no_sa, 1);
}

#[test]
fn unknown_handle_fails_the_send_and_null_handle_sends_clear() {
    let p = pair();
    let h = program(&p, 0xA300, None);
    assert_eq!(delete(p.a.as_ref(), h), NdisStatus::SUCCESS);
    let host = Bundle::new(&[host_params(0xA300, 1)], ProviderKind::RustCrypto).unwrap();
    p.a.send_net_buffer_lists(&mut vec![frame_nbl(Some(&host), 1, h)]);
    drive(&p, 1);
    let done = p.ra.completed.lock().unwrap().pop().unwrap();
    assert_eq!(done.status, NdisStatus::FAILURE, "stale handle");
    assert!(p.rb.received.lock().unwrap().is_empty());
    let (done, got) = send_one(&p, frame_nbl(None, 0, OffloadHandle::NULL));
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert!(!got.receive_info.crypto_done);
    assert_eq!(p.a.nic_stats().tx_clear, 1);
}

#[test]
fn threaded_mode_delivers() {
    let p = pair();
    let h = program(&p, 0xA400, Some(1));
    let host = Bundle::new(&[host_params(0xA400, 1)], ProviderKind::RustCrypto).unwrap();
    p.a.start().unwrap();
    p.b.start().unwrap();
    p.a.start().unwrap(); // idempotent
    let batch: Vec<Nbl> = (1..=8).map(|s| frame_nbl(Some(&host), s, h)).collect();
    p.a.send_net_buffer_lists(&mut batch.into_iter().collect());
    let mut waited = 0;
    while p.rb.received.lock().unwrap().len() < 8 && waited < 5000 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        waited += 2;
    }
    p.a.stop();
    p.b.stop();
    let got = p.rb.received.lock().unwrap();
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(
        |n| n.receive_info.crypto_done && n.receive_info.crypto_status == CryptoStatus::SUCCESS
    ));
    assert_eq!(p.ra.completed.lock().unwrap().len(), 8);
}

/// Tunnel mode: A's outbound SA is programmed with its tunnel endpoints, B's inbound SA is
/// found by `DestTunnelAddr`.
#[test]
fn tunnel_sa_end_to_end() {
    let p = pair();
    let (ta, tb) = (
        Ipv4Addr::new(198, 51, 100, 1),
        Ipv4Addr::new(198, 51, 100, 2),
    );
    let mut out = add_req(Direction::Outbound, gcm(0xA500, 1));
    out.tunnel = Some(TunnelEndpoints { src: ta, dest: tb });
    let h = add_ok(p.a.as_ref(), &out);
    let mut inb = add_req(Direction::Inbound, gcm(0xA500, 1));
    inb.tunnel = Some(TunnelEndpoints { src: ta, dest: tb });
    add_ok(p.b.as_ref(), &inb);
    let mut hp = host_params(0xA500, 1);
    hp.mode = Mode::Tunnel;
    hp.tunnel = Some(ipsec::TunnelEndpoints {
        local: IpAddr::V4(ta),
        remote: IpAddr::V4(tb),
    });
    let host = Bundle::new(&[hp], ProviderKind::RustCrypto).unwrap();
    let (done, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert!(got.receive_info.crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
}

/// UDP-encapsulated ESP: the NIC finds ESP after the UDP header through the parser entry.
#[test]
fn udpesp_sa_end_to_end() {
    let p = pair();
    let mut out = udpesp_req(0xA600, 4500, OffloadHandle::NULL);
    out.direction = Direction::Outbound;
    let h = add_ok(p.a.as_ref(), &out);
    add_ok(p.b.as_ref(), &udpesp_req(0xA600, 4500, OffloadHandle::NULL));
    let mut hp = host_params(0xA600, 2);
    hp.udp_encap = Some(ipsec::UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    });
    let host = Bundle::new(&[hp], ProviderKind::RustCrypto).unwrap();
    let (done, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert!(got.receive_info.crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
}

/// ESP then AH: a bundle on both sides; a tampered AH ICV gives the AH auth status.
#[test]
fn esp_then_ah_end_to_end_and_ah_auth_failure() {
    let p = pair();
    let bundle = |seed: u8| {
        SaBundle::EspThenAh(
            esp(
                0xA700,
                ConfAlgorithm::AesCbc128,
                IntegrityAlgorithm::Sha256,
                seed,
            ),
            ah(0xA701, IntegrityAlgorithm::Sha1),
        )
    };
    let h = add_ok(p.a.as_ref(), &add_req(Direction::Outbound, bundle(3)));
    add_ok(p.b.as_ref(), &add_req(Direction::Inbound, bundle(3)));
    let e = esp(
        0xA700,
        ConfAlgorithm::AesCbc128,
        IntegrityAlgorithm::Sha256,
        3,
    );
    let a = ah(0xA701, IntegrityAlgorithm::Sha1);
    let esp_p = SaParams {
        spi: 0xA700,
        protocol: ipsec::Protocol::Esp,
        mode: Mode::Transport,
        encryption: Encryption::AesCbc128,
        encryption_key: Key::new(e.cipher_key.expose()),
        integrity: Integrity::HmacSha256_128,
        integrity_key: Key::new(e.integrity_key.expose()),
        esn: false,
        tunnel: None,
        udp_encap: None,
    };
    let ah_p = SaParams {
        spi: 0xA701,
        protocol: ipsec::Protocol::Ah,
        encryption: Encryption::None,
        encryption_key: Key::empty(),
        integrity: Integrity::HmacSha1_96,
        integrity_key: Key::new(a.integrity_key.expose()),
        ..esp_p.clone()
    };
    let host = Bundle::new(&[esp_p, ah_p], ProviderKind::RustCrypto).unwrap();
    let (done, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert_eq!(done.status, NdisStatus::SUCCESS);
    assert!(got.receive_info.crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
    // B's AH key differs from A's: the outer AH ICV fails first.
    let q = pair();
    let h = add_ok(q.a.as_ref(), &add_req(Direction::Outbound, bundle(3)));
    let mut wrong_ah = ah(0xA701, IntegrityAlgorithm::Sha1);
    wrong_ah.integrity_key = key(20, 55);
    let wrong = SaBundle::EspThenAh(
        esp(
            0xA700,
            ConfAlgorithm::AesCbc128,
            IntegrityAlgorithm::Sha256,
            3,
        ),
        wrong_ah,
    );
    add_ok(q.b.as_ref(), &add_req(Direction::Inbound, wrong));
    let (_, got) = send_one(&q, frame_nbl(Some(&host), 2, h));
    assert!(got.receive_info.crypto_done);
    assert_eq!(
        got.receive_info.crypto_status,
        CryptoStatus::TRANSPORT_AH_AUTH_FAILED
    );
}

/// The NIC's delete request (table under pressure) reaches the protocol as `sa_delete_req`.
#[test]
fn sa_delete_req_is_passed_through() {
    let (wa, wb) = MemWire::pair();
    let a = Arc::new(VirtualMiniport::initialize(config(16), wa));
    let mut cb = config(16);
    cb.nic.table.delete_request_threshold = Some(1);
    let b = Arc::new(VirtualMiniport::initialize(cb, wb));
    let (ra, rb) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    a.bind(ra.clone());
    b.bind(rb.clone());
    let p = Pair { a, ra, b, rb };
    let h = program(&p, 0xA800, Some(1));
    let host = Bundle::new(&[host_params(0xA800, 1)], ProviderKind::RustCrypto).unwrap();
    let (_, got) = send_one(&p, frame_nbl(Some(&host), 1, h));
    assert!(got.receive_info.sa_delete_req);
    assert!(got.receive_info.crypto_done);
    assert_eq!(got.receive_info.crypto_status, CryptoStatus::SUCCESS);
}

#[test]
fn v2_ipv6_and_nested_udp_esp() {
    let (m, _, _w) = single(4);
    let v6 = |s: u16| IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, s));
    let mut e = v2_entry(Direction::Inbound, gcm(0xA900, 1));
    e.src = v6(1);
    e.dest = v6(2);
    let mut b = AddSaExV2Request {
        sa: e.clone(),
        source_switch_port_id: 0,
        vlan_id: 0,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut b).status,
        NdisStatus::SUCCESS
    );
    let h = AddSaExV2Request::read_offload_handle(&b).unwrap();
    assert_eq!(m.sa_info(h).unwrap().dst, Some(v6(2)));
    e.udp_esp = V2UdpEspEncapsulation::TransportOverUdpEspTunnel;
    let mut b = AddSaExV2Request {
        sa: e,
        source_switch_port_id: 0,
        vlan_id: 0,
    }
    .to_bytes()
    .unwrap();
    assert_eq!(
        set(&m, Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX, &mut b).status,
        NdisStatus::NOT_SUPPORTED
    );
}

// ---- concurrency, halt ----

#[test]
fn concurrent_oids_under_traffic() {
    let p = pair();
    let h = program(&p, 0xB000, Some(1));
    let host = Bundle::new(&[host_params(0xB000, 1)], ProviderKind::RustCrypto).unwrap();
    const ROUNDS: u32 = 40;
    const FRAMES: u64 = 60;
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let a = Arc::clone(&p.a);
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let spi = 0x10_0000 + t * 0x1000 + i;
                    let dir = if i % 2 == 0 {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    };
                    let r = udpesp_req(spi, 4500, OffloadHandle::NULL);
                    let r = AddSaRequest {
                        direction: dir,
                        ..r
                    };
                    let (o, buf) = add(a.as_ref(), &r);
                    if o.status == NdisStatus::SUCCESS {
                        let sa = AddSaRequest::read_offload_handle(&buf).unwrap();
                        let ph = parser_of(&buf);
                        assert_eq!(delete_udpesp(a.as_ref(), sa, ph), NdisStatus::SUCCESS);
                    } else {
                        assert_eq!(o.status, NdisStatus::RESOURCES);
                    }
                }
            });
        }
        let (a, b) = (Arc::clone(&p.a), Arc::clone(&p.b));
        let host = &host;
        s.spawn(move || {
            for seq in 1..=FRAMES {
                a.send_net_buffer_lists(&mut vec![frame_nbl(Some(host), seq, h)]);
                a.poll(Duration::from_millis(seq));
                b.poll(Duration::from_millis(seq));
            }
        });
    });
    drive(&p, 1000);
    let completed = p.ra.completed.lock().unwrap();
    assert_eq!(completed.len() as u64, FRAMES);
    assert!(completed.iter().all(|n| n.status == NdisStatus::SUCCESS));
    let received = p.rb.received.lock().unwrap();
    assert_eq!(received.len() as u64, FRAMES);
    assert!(
        received
            .iter()
            .all(|n| n.receive_info.crypto_status == CryptoStatus::SUCCESS)
    );
    assert_eq!(p.a.nic_stats().tx_frames, FRAMES);
    assert_eq!(p.a.sa_stats(h).unwrap().packets, FRAMES);
    assert_eq!(p.a.sa_count(), (0, 1), "only the traffic SA is left");
    assert!(p.a.parser_entries().is_empty());
}

#[test]
fn halt_deletes_everything_and_refuses_requests() {
    let (m, rec, _w) = single(4);
    add_ok(&m, &add_req(Direction::Outbound, gcm(0xC000, 1)));
    add_ok(&m, &udpesp_req(0xC001, 4500, OffloadHandle::NULL));
    m.halt();
    assert!(m.is_halted());
    assert_eq!(m.sa_count(), (0, 0));
    assert!(m.sa_handles().is_empty() && m.parser_entries().is_empty());
    let (o, _) = add(&m, &add_req(Direction::Outbound, gcm(0xC002, 1)));
    assert_eq!(o.status, NdisStatus::ADAPTER_NOT_READY);
    m.send_net_buffer_lists(&mut vec![frame_nbl(None, 0, OffloadHandle::NULL)]);
    let done = rec.completed.lock().unwrap().pop().unwrap();
    assert_eq!(done.status, NdisStatus::ADAPTER_NOT_READY);
}

// ---- untrusted buffers ----

const SET_OIDS: [Oid; 10] = [
    Oid::TCP_TASK_OFFLOAD,
    Oid::TCP_TASK_IPSEC_ADD_SA,
    Oid::TCP_TASK_IPSEC_DELETE_SA,
    Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA,
    Oid::TCP_TASK_IPSEC_DELETE_UDPESP_SA,
    Oid::TCP_OFFLOAD_PARAMETERS,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_ADD_SA_EX,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_DELETE_SA,
    Oid::TCP_TASK_IPSEC_OFFLOAD_V2_UPDATE_SA,
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Arbitrary bytes into every set OID: never a panic; a failure changes no SA.
    #[test]
    fn arbitrary_set_buffers(which in 0usize..10, bytes in proptest::collection::vec(0u8..=255, 0..420)) {
        let (m, _, _w) = single(4);
        add_ok(&m, &add_req(Direction::Inbound, gcm(0xD000, 1)));
        let before = table(&m);
        let mut b = bytes;
        let o = set(&m, SET_OIDS[which], &mut b);
        if o.status != NdisStatus::SUCCESS {
            proptest::prop_assert_eq!(table(&m), before);
            proptest::prop_assert_eq!(o.read, 0);
        }
    }

    /// A valid UDP-ESP ADD_SA with one byte changed: success, or a status and no change.
    #[test]
    fn mutated_add_udpesp_sa(at in 0usize..236, xor in 1u8..=255) {
        let (m, _, _w) = single(4);
        let mut r = udpesp_req(0xD100, 4500, OffloadHandle::NULL);
        r.sas = SaBundle::Esp(esp(0xD100, ConfAlgorithm::AesCbc128, IntegrityAlgorithm::Sha1, 1));
        let mut buf = r.to_bytes(KeyOrder::ConfidentialityFirst).unwrap();
        let at = at % buf.len();
        buf[at] ^= xor;
        let before = table(&m);
        let o = set(&m, Oid::TCP_TASK_IPSEC_ADD_UDPESP_SA, &mut buf);
        if o.status == NdisStatus::SUCCESS {
            proptest::prop_assert_eq!(m.sa_count().0 + m.sa_count().1, 1);
        } else {
            proptest::prop_assert_eq!(table(&m), before);
            proptest::prop_assert!(m.parser_entries().is_empty());
        }
    }
}
