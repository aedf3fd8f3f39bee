//! The Manual SA scenario (ndis-wfp-abi.md §8.1): what an application does on each host to
//! protect traffic between two addresses with keys it negotiated itself, with no IKE.
//!
//! On each host, through its own WFP engine session:
//! 1. `FwpmFilterAdd0`: inbound and outbound transport-layer filters for local<->remote with
//!    the IPsec callouts (`FWPM_CALLOUT_IPSEC_{IN,OUT}BOUND_TRANSPORT_V4/V6`, or the tunnel
//!    callouts in the `FWPM_SUBLAYER_IPSEC_TUNNEL` sublayer for tunnel mode), and per layer an
//!    ICMP/ICMPv6 exemption (`FWP_ACTION_PERMIT` at weight `FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS`).
//! 2. `IPsecSaContextCreate0` with the **outbound** filter id.
//! 3. `IPsecSaContextGetSpi0` with the **inbound** filter id (and, for UDP-encapsulated ESP,
//!    the inbound encapsulation ports).
//!
//! The SPIs (and keys) are exchanged out of band; then on each host
//! 4. `IPsecSaContextAddInbound0` with its own SPI and the key the peer sends with,
//! 5. `IPsecSaContextAddOutbound0` with the peer's SPI and the key the peer receives with,
//! 6. for UDP-encapsulated ESP: `IPsecSaContextUpdate0` (`IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION`)
//!    of the outbound bundle.

use core::net::IpAddr;

use transport::wfp::*;

use crate::topology::TwoHosts;

/// The SA transforms of the scenario (one bundle shape per variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithms {
    /// ESP AES-GCM-128 (`GCM_AES_128` cipher and integrity).
    AesGcm128,
    /// ESP AES-GCM-192.
    AesGcm192,
    /// ESP AES-GCM-256.
    AesGcm256,
    /// ESP AES-GMAC-128 (integrity only, `IPSEC_TRANSFORM_ESP_AUTH` with `GCM_AES_128`).
    AesGmac128,
    /// ESP AES-CBC-128 + HMAC-SHA-256-128.
    AesCbc128HmacSha256,
    /// ESP AES-CBC-256 + HMAC-SHA-256-128.
    AesCbc256HmacSha256,
    /// ESP AES-CBC-128 + HMAC-SHA-1-96.
    AesCbc128HmacSha1,
    /// ESP NULL encryption + HMAC-SHA-256-128 (`IPSEC_TRANSFORM_ESP_AUTH`).
    NullHmacSha256,
    /// ESP NULL encryption + HMAC-SHA-1-96.
    NullHmacSha1,
    /// AH HMAC-SHA-1-96.
    AhHmacSha1,
    /// AH HMAC-SHA-256-128.
    AhHmacSha256,
    /// ESP AES-GCM-128 then AH HMAC-SHA-1-96 (one bundle, ESP inside AH).
    AesGcm128ThenAhSha1,
}

impl Algorithms {
    /// Every variant.
    pub const ALL: [Algorithms; 12] = [
        Algorithms::AesGcm128,
        Algorithms::AesGcm192,
        Algorithms::AesGcm256,
        Algorithms::AesGmac128,
        Algorithms::AesCbc128HmacSha256,
        Algorithms::AesCbc256HmacSha256,
        Algorithms::AesCbc128HmacSha1,
        Algorithms::NullHmacSha256,
        Algorithms::NullHmacSha1,
        Algorithms::AhHmacSha1,
        Algorithms::AhHmacSha256,
        Algorithms::AesGcm128ThenAhSha1,
    ];

    /// Whether the bundle contains ESP.
    pub fn has_esp(self) -> bool {
        !matches!(self, Algorithms::AhHmacSha1 | Algorithms::AhHmacSha256)
    }

    /// Whether the bundle contains AH.
    pub fn has_ah(self) -> bool {
        matches!(
            self,
            Algorithms::AhHmacSha1 | Algorithms::AhHmacSha256 | Algorithms::AesGcm128ThenAhSha1
        )
    }

    /// Whether ESP encrypts (a cipher other than NULL/GMAC).
    pub fn encrypts(self) -> bool {
        matches!(
            self,
            Algorithms::AesGcm128
                | Algorithms::AesGcm192
                | Algorithms::AesGcm256
                | Algorithms::AesCbc128HmacSha256
                | Algorithms::AesCbc256HmacSha256
                | Algorithms::AesCbc128HmacSha1
                | Algorithms::AesGcm128ThenAhSha1
        )
    }

    /// The SA list of one direction's bundle; `key_seed` makes the keys (each key is
    /// `key_seed` repeated at the transform's length).
    fn sa_list(self, spi: u32, key_seed: u8) -> Vec<IpsecSa0> {
        let key = |len: usize| ipsec::Key::new(&vec![key_seed; len]);
        let auth = |id: IpsecAuthTransformId0, len: usize| IpsecSaAuthInformation0 {
            auth_transform: IpsecAuthTransform0 {
                auth_transform_id: id,
                crypto_module_id: None,
            },
            auth_key: key(len),
        };
        let cipher = |id: IpsecCipherTransformId0, len: usize| IpsecSaCipherInformation0 {
            cipher_transform: IpsecCipherTransform0 {
                cipher_transform_id: id,
                crypto_module_id: None,
            },
            cipher_key: key(len),
        };
        let both = |c, clen, a, alen| {
            IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
                sa_cipher_information: cipher(c, clen),
                sa_auth_information: auth(a, alen),
            })
        };
        let sa = |t| IpsecSa0 {
            spi,
            sa_transform: t,
        };
        let gcm = |c, a, len| sa(both(c, len, a, len));
        let sha1 = IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96;
        let sha256 = IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128;
        match self {
            Algorithms::AesGcm128 => vec![gcm(
                IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
                20,
            )],
            Algorithms::AesGcm192 => vec![gcm(
                IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_192,
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192,
                28,
            )],
            Algorithms::AesGcm256 => vec![gcm(
                IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256,
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256,
                36,
            )],
            Algorithms::AesGmac128 => vec![sa(IpsecSaTransform::EspAuth(auth(
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
                20,
            )))],
            Algorithms::AesCbc128HmacSha256 => {
                vec![sa(both(IPSEC_CIPHER_TRANSFORM_ID_AES_128, 16, sha256, 32))]
            }
            Algorithms::AesCbc256HmacSha256 => {
                vec![sa(both(IPSEC_CIPHER_TRANSFORM_ID_AES_256, 32, sha256, 32))]
            }
            Algorithms::AesCbc128HmacSha1 => {
                vec![sa(both(IPSEC_CIPHER_TRANSFORM_ID_AES_128, 16, sha1, 20))]
            }
            Algorithms::NullHmacSha256 => vec![sa(IpsecSaTransform::EspAuth(auth(sha256, 32)))],
            Algorithms::NullHmacSha1 => vec![sa(IpsecSaTransform::EspAuth(auth(sha1, 20)))],
            Algorithms::AhHmacSha1 => vec![sa(IpsecSaTransform::Ah(auth(sha1, 20)))],
            Algorithms::AhHmacSha256 => vec![sa(IpsecSaTransform::Ah(auth(sha256, 32)))],
            Algorithms::AesGcm128ThenAhSha1 => {
                let mut v = Algorithms::AesGcm128.sa_list(spi, key_seed);
                v.push(sa(IpsecSaTransform::Ah(auth(sha1, 20))));
                v
            }
        }
    }
}

/// IPsec mode of the scenario.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaMode {
    /// Transport mode (`IPSEC_TRAFFIC_TYPE_TRANSPORT`, transport callouts).
    #[default]
    Transport,
    /// Tunnel mode between the two hosts' addresses (`IPSEC_TRAFFIC_TYPE_TUNNEL`, tunnel
    /// callouts in `FWPM_SUBLAYER_IPSEC_TUNNEL`).
    Tunnel,
}

/// Options of [`manual_sa`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManualSaOptions {
    /// Protect 2001:db8::1 <-> 2001:db8::2 instead of 192.0.2.1 <-> 192.0.2.2.
    pub ipv6: bool,
    /// The transforms.
    pub algorithms: Algorithms,
    /// Transport or tunnel mode.
    pub mode: SaMode,
    /// UDP-encapsulated ESP with these ports (IPv4 only): `(local, remote)` of each host,
    /// the same on both.
    pub udp_encap: Option<(u16, u16)>,
    /// Lifetime of every bundle (zeros: none).
    pub lifetime: IpsecSaLifetime0,
    /// Key seed of A's inbound (= B's outbound) bundle.
    pub key_a_in: u8,
    /// Key seed of B's inbound (= A's outbound) bundle as B installs it.
    pub key_b_in: u8,
    /// Key seed A's outbound bundle uses (normally `key_b_in`; differ for a wrong-key test).
    pub key_a_out: u8,
}

impl Default for ManualSaOptions {
    fn default() -> Self {
        ManualSaOptions {
            ipv6: false,
            algorithms: Algorithms::AesGcm128,
            mode: SaMode::Transport,
            udp_encap: None,
            lifetime: IpsecSaLifetime0::default(),
            key_a_in: 0xA1,
            key_b_in: 0xB2,
            key_a_out: 0xB2,
        }
    }
}

/// One host's side of an installed Manual SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManualSaSide {
    /// The WFP engine session the application opened.
    pub engine: EngineHandle,
    /// The SA context id (`IPsecSaContextCreate0`).
    pub context: u64,
    /// The inbound SPI (`IPsecSaContextGetSpi0`).
    pub spi: u32,
    /// The inbound IPsec filter id.
    pub inbound_filter: u64,
    /// The outbound IPsec filter id.
    pub outbound_filter: u64,
}

/// The result of [`manual_sa`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManualSa {
    /// Host A's side.
    pub a: ManualSaSide,
    /// Host B's side.
    pub b: ManualSaSide,
}

/// Which step failed, with the WFP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManualSaError {
    /// The failing call (`"FwpmFilterAdd0"`, ...) and host (`'A'` / `'B'`).
    pub step: (&'static str, char),
    /// The error it returned.
    pub error: WfpError,
}

impl core::fmt::Display for ManualSaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} on host {}: {:?}",
            self.step.0, self.step.1, self.error
        )
    }
}

impl std::error::Error for ManualSaError {}

/// A PERMIT filter for ICMP (ICMPv6 when `v6`) at `layer` with `conditions`, weighted in the
/// IKE-exemption range so it decides before the IPsec filters of the same sublayer: echo
/// requests and replies then pass in clear beside protected traffic.
pub(crate) fn icmp_exemption(
    name: &str,
    layer: Guid,
    v6: bool,
    mut conditions: Vec<FwpmFilterCondition0>,
) -> FwpmFilter0 {
    let icmp = if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
    conditions.push(FwpmFilterCondition0::new(
        FWPM_CONDITION_IP_PROTOCOL,
        FWP_MATCH_EQUAL,
        FwpConditionValue0::Uint8(icmp),
    ));
    FwpmFilter0 {
        display_data: FwpmDisplayData0::named(name),
        layer_key: layer,
        weight: FwpValue0::Uint8(FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS),
        filter_condition: conditions,
        action: FwpmAction0 {
            action_type: FWP_ACTION_PERMIT,
            callout_key: Guid::NULL,
        },
        ..Default::default()
    }
}

fn version(a: IpAddr) -> FwpIpVersion {
    if a.is_ipv6() {
        FWP_IP_VERSION_V6
    } else {
        FWP_IP_VERSION_V4
    }
}

struct Side<'a> {
    bfe: &'a mut Bfe,
    who: char,
    local: IpAddr,
    remote: IpAddr,
}

impl Side<'_> {
    fn err(&self, step: &'static str) -> impl FnOnce(WfpError) -> ManualSaError + use<> {
        let who = self.who;
        move |error| ManualSaError {
            step: (step, who),
            error,
        }
    }

    fn traffic(&self, o: &ManualSaOptions, filter: u64) -> IpsecTraffic0 {
        IpsecTraffic0 {
            ip_version: version(self.local),
            local_address: self.local.into(),
            remote_address: self.remote.into(),
            traffic_type: match o.mode {
                SaMode::Transport => IPSEC_TRAFFIC_TYPE_TRANSPORT,
                SaMode::Tunnel => IPSEC_TRAFFIC_TYPE_TUNNEL,
            },
            ipsec_filter_id: filter,
            remote_port: 0,
        }
    }

    /// Steps 1-3; returns the side without its SPI exchanged yet.
    fn prepare(&mut self, o: &ManualSaOptions) -> Result<ManualSaSide, ManualSaError> {
        let session = FwpmSession0 {
            display_data: FwpmDisplayData0::named("Manual SA"),
            ..Default::default()
        };
        let engine = self
            .bfe
            .fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&session))
            .map_err(self.err("FwpmEngineOpen0"))?;
        let v6 = self.local.is_ipv6();
        let (in_layer, out_layer) = if v6 {
            (
                FWPM_LAYER_INBOUND_TRANSPORT_V6,
                FWPM_LAYER_OUTBOUND_TRANSPORT_V6,
            )
        } else {
            (
                FWPM_LAYER_INBOUND_TRANSPORT_V4,
                FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
            )
        };
        let (in_callout, out_callout, sub_layer) = match (o.mode, v6) {
            (SaMode::Transport, false) => (
                FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
                FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
                Guid::NULL,
            ),
            (SaMode::Transport, true) => (
                FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
                FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
                Guid::NULL,
            ),
            (SaMode::Tunnel, false) => (
                FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4,
                FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
                FWPM_SUBLAYER_IPSEC_TUNNEL,
            ),
            (SaMode::Tunnel, true) => (
                FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6,
                FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6,
                FWPM_SUBLAYER_IPSEC_TUNNEL,
            ),
        };
        let unicast = FwpmFilterCondition0::new(
            FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
            FWP_MATCH_EQUAL,
            FwpConditionValue0::Uint8(NlAddressType::Unicast as u8),
        );
        let mut ids = [0u64; 2];
        for (i, (layer, callout)) in [(in_layer, in_callout), (out_layer, out_callout)]
            .into_iter()
            .enumerate()
        {
            let filter = FwpmFilter0 {
                display_data: FwpmDisplayData0::named("Manual SA IPsec filter"),
                layer_key: layer,
                sub_layer_key: sub_layer,
                filter_condition: vec![
                    unicast.clone(),
                    FwpmFilterCondition0::new(
                        FWPM_CONDITION_IP_LOCAL_ADDRESS,
                        FWP_MATCH_EQUAL,
                        FwpConditionValue0::ip(self.local),
                    ),
                    FwpmFilterCondition0::new(
                        FWPM_CONDITION_IP_REMOTE_ADDRESS,
                        FWP_MATCH_EQUAL,
                        FwpConditionValue0::ip(self.remote),
                    ),
                ],
                action: FwpmAction0 {
                    action_type: FWP_ACTION_CALLOUT_TERMINATING,
                    callout_key: callout,
                },
                ..Default::default()
            };
            let id = self
                .bfe
                .fwpm_filter_add0(engine, &filter, None)
                .map_err(self.err("FwpmFilterAdd0"))?;
            if let Some(slot) = ids.get_mut(i) {
                *slot = id;
            }
            let exemption =
                icmp_exemption("Manual SA ICMP exemption", layer, v6, vec![unicast.clone()]);
            self.bfe
                .fwpm_filter_add0(engine, &exemption, None)
                .map_err(self.err("FwpmFilterAdd0"))?;
        }
        let [inbound_filter, outbound_filter] = ids;
        self.new_context(o, engine, inbound_filter, outbound_filter)
    }

    /// Steps 4-5 on existing filters: IPsecSaContextCreate0 with the outbound filter id,
    /// IPsecSaContextGetSpi0 with the inbound filter id.
    fn new_context(
        &mut self,
        o: &ManualSaOptions,
        engine: EngineHandle,
        inbound_filter: u64,
        outbound_filter: u64,
    ) -> Result<ManualSaSide, ManualSaError> {
        let context = self
            .bfe
            .ipsec_sa_context_create0(engine, &self.traffic(o, outbound_filter), None)
            .map_err(self.err("IPsecSaContextCreate0"))?;
        let get_spi = IpsecGetSpi0 {
            inbound_ipsec_traffic: self.traffic(o, inbound_filter),
            ip_version: version(self.local),
            inbound_udp_encapsulation: o.udp_encap.map(|(l, r)| IpsecV4UdpEncapsulation0 {
                local_udp_encap_port: l,
                remote_udp_encap_port: r,
            }),
            rng_crypto_module_id: None,
        };
        let spi = self
            .bfe
            .ipsec_sa_context_get_spi0(engine, context, &get_spi)
            .map_err(self.err("IPsecSaContextGetSpi0"))?;
        Ok(ManualSaSide {
            engine,
            context,
            spi,
            inbound_filter,
            outbound_filter,
        })
    }

    /// Steps 4-6.
    fn install(
        &mut self,
        o: &ManualSaOptions,
        me: &ManualSaSide,
        peer_spi: u32,
        key_in: u8,
        key_out: u8,
    ) -> Result<(), ManualSaError> {
        let bundle = |spi, key| IpsecSaBundle0 {
            lifetime: o.lifetime,
            sa_list: o.algorithms.sa_list(spi, key),
            ip_version: version(self.local),
            ..Default::default()
        };
        self.bfe
            .ipsec_sa_context_add_inbound0(me.engine, me.context, &bundle(me.spi, key_in))
            .map_err(self.err("IPsecSaContextAddInbound0"))?;
        self.bfe
            .ipsec_sa_context_add_outbound0(me.engine, me.context, &bundle(peer_spi, key_out))
            .map_err(self.err("IPsecSaContextAddOutbound0"))?;
        if let Some((l, r)) = o.udp_encap {
            let mut ctx = self
                .bfe
                .ipsec_sa_context_get_by_id1(me.engine, me.context)
                .map_err(self.err("IPsecSaContextGetById1"))?;
            if let Some(out) = &mut ctx.outbound_sa {
                out.udp_encapsulation = Some(IpsecV4UdpEncapsulation0 {
                    local_udp_encap_port: l,
                    remote_udp_encap_port: r,
                });
            }
            ctx.inbound_sa = None;
            self.bfe
                .ipsec_sa_context_update0(
                    me.engine,
                    IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION,
                    &ctx,
                )
                .map_err(self.err("IPsecSaContextUpdate0"))?;
        }
        Ok(())
    }
}

/// Run the Manual SA scenario (module docs) on both hosts of `hosts`: A = 192.0.2.1 (or
/// 2001:db8::1), B = 192.0.2.2 (or 2001:db8::2). Does not poll: the stacks pick the new SAs
/// up (and offload them) on their next poll.
///
/// # Errors
/// The first WFP call that failed.
pub fn manual_sa(hosts: &mut TwoHosts, o: &ManualSaOptions) -> Result<ManualSa, ManualSaError> {
    let (a_ip, b_ip): (IpAddr, IpAddr) = if o.ipv6 {
        (crate::A_V6.into(), crate::B_V6.into())
    } else {
        (crate::A_V4.into(), crate::B_V4.into())
    };
    let mut sa = Side {
        bfe: hosts.a.stack_mut().bfe_mut(),
        who: 'A',
        local: a_ip,
        remote: b_ip,
    };
    let a = sa.prepare(o)?;
    let mut sb = Side {
        bfe: hosts.b.stack_mut().bfe_mut(),
        who: 'B',
        local: b_ip,
        remote: a_ip,
    };
    let b = sb.prepare(o)?;
    // SPIs exchanged out of band.
    sb.install(o, &b, a.spi, o.key_b_in, o.key_a_in)?;
    let mut sa = Side {
        bfe: hosts.a.stack_mut().bfe_mut(),
        who: 'A',
        local: a_ip,
        remote: b_ip,
    };
    sa.install(o, &a, b.spi, o.key_a_in, o.key_a_out)?;
    Ok(ManualSa { a, b })
}

/// Rekey make-before-break: on the filters of `previous`, create a new SA context on both
/// hosts (IPsecSaContextCreate0, GetSpi0), exchange the new SPIs and add the new bundles with
/// keys derived from `o`'s key seeds (AddInbound0, AddOutbound0). The old contexts stay until
/// the caller expires or deletes them (`IPsecSaContextExpire0` keeps the old inbound SA for a
/// grace period, so packets in flight are still accepted). Outbound traffic switches to the
/// newest complete context on each host's next poll.
///
/// # Errors
/// The first WFP call that failed.
pub fn rekey(
    hosts: &mut TwoHosts,
    previous: &ManualSa,
    o: &ManualSaOptions,
) -> Result<ManualSa, ManualSaError> {
    let (a_ip, b_ip): (IpAddr, IpAddr) = if o.ipv6 {
        (crate::A_V6.into(), crate::B_V6.into())
    } else {
        (crate::A_V4.into(), crate::B_V4.into())
    };
    let (pa, pb) = (&previous.a, &previous.b);
    let mut sa = Side {
        bfe: hosts.a.stack_mut().bfe_mut(),
        who: 'A',
        local: a_ip,
        remote: b_ip,
    };
    let a_new = sa.new_context(o, pa.engine, pa.inbound_filter, pa.outbound_filter)?;
    let mut sb = Side {
        bfe: hosts.b.stack_mut().bfe_mut(),
        who: 'B',
        local: b_ip,
        remote: a_ip,
    };
    let b_new = sb.new_context(o, pb.engine, pb.inbound_filter, pb.outbound_filter)?;
    // New SPIs exchanged out of band; keys paired exactly as `manual_sa` pairs them.
    sb.install(o, &b_new, a_new.spi, o.key_b_in, o.key_a_in)?;
    let mut sa = Side {
        bfe: hosts.a.stack_mut().bfe_mut(),
        who: 'A',
        local: a_ip,
        remote: b_ip,
    };
    sa.install(o, &a_new, b_new.spi, o.key_a_in, o.key_a_out)?;
    Ok(ManualSa { a: a_new, b: b_new })
}
