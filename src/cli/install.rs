//! Install the SAs of a config file ([`SaFile`]) into a [`Host`] through its WFP engine, the
//! way an application keys a Windows host without IKE (the Manual SA sequence,
//! ndis-wfp-abi.md §8.1, and `src/manual_sa.rs`).
//!
//! # What is created
//! For every distinct selector set (local and remote selector, mode, tunnel endpoints) one
//! pair of `FwpmFilterAdd0` filters at `FWPM_LAYER_INBOUND_TRANSPORT_V4/V6` and
//! `FWPM_LAYER_OUTBOUND_TRANSPORT_V4/V6` whose action is the IPsec callout
//! (`FWPM_CALLOUT_IPSEC_{IN,OUT}BOUND_TRANSPORT_V4/V6`; tunnel mode: the tunnel callouts in
//! `FWPM_SUBLAYER_IPSEC_TUNNEL`), conditioned on `FWPM_CONDITION_IP_LOCAL_ADDRESS` /
//! `FWPM_CONDITION_IP_REMOTE_ADDRESS` (an address, or `FWP_V4_ADDR_MASK` / `FWP_V6_ADDR_MASK`
//! for a prefix). Every protocol between the selectors is protected (no ICMP exemption: the
//! config says "protect this traffic"). SA contexts that share selectors share the filters
//! (as a rekeyed context does), so the inbound policy check names the right filter.
//!
//! Then per SA context: `IPsecSaContextCreate0` (outbound traffic, outbound filter),
//! `IPsecSaContextSetSpi0` (inbound filter, the configured inbound SPI and, for NAT-T, the
//! inbound UDP encapsulation ports), `IPsecSaContextAddInbound0`, `IPsecSaContextAddOutbound0`,
//! `IPsecSaContextUpdate0` (`IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION`) for an outbound NAT-T
//! SA, one [`Host::poll`] so the stack installs its bundles (and, with offload on, issues
//! `OID_TCP_TASK_IPSEC_ADD_SA` / `ADD_UDPESP_SA` / `OFFLOAD_V2_ADD_SA_EX`), and
//! `HostStack::set_outbound_next_seq` with the configured `sequence`.
//!
//! # Pairing and one-direction contexts
//! A config SA is one direction. An outbound SA is paired with the first not yet paired
//! inbound SA of the same selectors (same `local`, `remote`, `mode`, tunnel endpoints: both
//! are written from this host's point of view, so the inbound partner carries the mirrored
//! traffic remote -> local) into one context. An inbound SA left alone gets a context of its
//! own (WFP allows an `InboundAdded` context). An outbound SA left alone cannot: WFP adds an
//! outbound bundle only to a context that already has its inbound bundle
//! (`IPsecSaContextAddOutbound0` before `AddInbound0` is `FWP_E_INCOMPATIBLE_SA_STATE`), so
//! [`install`] refuses it. [`install_with`] with [`InstallOptions::receive_only_partner`]
//! instead gives it an inbound bundle of its own: the outbound SA's transforms and keys under
//! an SPI chosen by `IPsecSaContextGetSpi0` (used by offline `pcap encap`, where only the
//! outbound direction matters; `InstalledContext::inbound` is `None` for it).
//!
//! # Refused before any WFP call
//! Transport mode with a prefix selector (the SA context's `IPSEC_TRAFFIC0` names one local
//! and one remote address); tunnel endpoints of another IP family than the selectors (the
//! emulated engine wants the IPsec filter at the layer of the context's IP version); NAT-T on
//! IPv6 (`IPSEC_V4_UDP_ENCAPSULATION0` is IPv4 only); two outbound SAs for the same selectors
//! (only the newest context would ever be used; an ESP+AH bundle is not expressible in the
//! config). Several inbound SAs of the same selectors are accepted (e.g. the SPIs before and
//! after a rekey): each gets its own context on the shared filters.
//!
//! # Replay window
//! The host stack has one anti-replay window size per host (`HostConfig::replay_window`).
//! [`host_replay_window`] returns the value all inbound SAs of a file agree on (an error
//! otherwise); callers build the [`Host`] with it. [`install`] cannot check it (the stack does
//! not expose its configuration).
//!
//! # All or nothing
//! On any error, every filter and SA context created so far is deleted again
//! (`IPsecSaContextDeleteById0`, `FwpmFilterDeleteById0`) before returning, and the engine
//! session is closed.

use core::fmt;
use core::net::IpAddr;
use std::collections::HashMap;

use ipsec::{Encryption, Integrity, Mode, Protocol, SaParams};
use transport::wfp::*;

use super::config::{Direction, Prefix, SaConfig, SaFile};
use crate::Host;

/// One SA context created for the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledContext {
    /// The SA context id (`IPsecSaContextCreate0`).
    pub context: u64,
    /// Index into [`SaFile::sas`] of the inbound SA (`None`: a receive-only partner, see
    /// [`InstallOptions::receive_only_partner`]).
    pub inbound: Option<usize>,
    /// Index into [`SaFile::sas`] of the outbound SA (`None`: an inbound-only context).
    pub outbound: Option<usize>,
    /// The ids of the filters the context uses: inbound, then outbound (shared with other
    /// contexts of the same selectors).
    pub filters: Vec<u64>,
}

/// What [`install`] created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    /// The SA contexts, in the file order of their first SA.
    pub contexts: Vec<InstalledContext>,
}

impl Installed {
    /// The context that holds SA `index` of the file (either direction).
    pub fn context_of(&self, index: usize) -> Option<&InstalledContext> {
        self.contexts
            .iter()
            .find(|c| c.inbound == Some(index) || c.outbound == Some(index))
    }
}

/// Why installation failed; the message names the file's SA: `sa[3] (spi 0x1001): ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallError(pub String);

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InstallError {}

/// Options of [`install_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Give an outbound SA without an inbound partner in the file an inbound bundle of its
    /// own (its transforms and keys, SPI from `IPsecSaContextGetSpi0`) instead of failing.
    pub receive_only_partner: bool,
    /// Exempt ICMP (ICMPv6) from every IPsec filter's layer: one `FWP_ACTION_PERMIT` filter per
    /// layer at weight `FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS` matching the protocol, as the Manual
    /// SA scenario does, so echo requests and replies cross in clear.
    pub clear_icmp: bool,
}

/// Install every SA of `file` into `host` through its WFP engine (see the
/// [module docs](self)); unpaired outbound SAs are refused.
///
/// # Errors
/// [`InstallError`] naming the SA and the failing rule or WFP call; nothing stays installed.
pub fn install(host: &mut Host, file: &SaFile) -> Result<Installed, InstallError> {
    install_with(host, file, &InstallOptions::default())
}

/// The HostConfig addresses needed for `file`: every selector `local` that is a host address
/// (for a prefix the caller decides) and every `tunnel_local`, without duplicates, in file
/// order.
pub fn local_addresses(file: &SaFile) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for sa in &file.sas {
        for a in [sa.local.host(), sa.params.tunnel.map(|t| t.local)]
            .into_iter()
            .flatten()
        {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The anti-replay window to build the host with: the `replay_window` every inbound SA of
/// `file` agrees on (64, the config default, when there is none).
///
/// # Errors
/// Two inbound SAs with different windows (the host stack has one window size per host).
pub fn host_replay_window(file: &SaFile) -> Result<u32, InstallError> {
    let mut first: Option<&SaConfig> = None;
    for sa in file
        .sas
        .iter()
        .filter(|s| s.direction == Direction::Inbound)
    {
        match first {
            None => first = Some(sa),
            Some(f) if f.replay_window != sa.replay_window => {
                return Err(InstallError(format!(
                    "{}: replay_window: {} differs from {}'s {} (the host stack has one \
                     anti-replay window size for all inbound SAs)",
                    who(sa),
                    sa.replay_window,
                    who(f),
                    f.replay_window
                )));
            }
            Some(_) => {}
        }
    }
    Ok(first.map_or(64, |f| f.replay_window))
}

fn who(sa: &SaConfig) -> String {
    format!("sa[{}] (spi {:#x})", sa.index, sa.params.spi)
}

/// The selectors that decide filters and pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Selectors {
    local: Prefix,
    remote: Prefix,
    tunnel: Option<(IpAddr, IpAddr)>,
}

impl Selectors {
    fn of(sa: &SaConfig) -> Self {
        Selectors {
            local: sa.local,
            remote: sa.remote,
            tunnel: sa.params.tunnel.map(|t| (t.local, t.remote)),
        }
    }

    /// The SA context's traffic addresses: the hosts (transport) or the tunnel endpoints.
    fn traffic_addrs(&self) -> Option<(IpAddr, IpAddr)> {
        match self.tunnel {
            Some(t) => Some(t),
            None => Some((self.local.host()?, self.remote.host()?)),
        }
    }
}

fn version(a: IpAddr) -> FwpIpVersion {
    if a.is_ipv6() {
        FWP_IP_VERSION_V6
    } else {
        FWP_IP_VERSION_V4
    }
}

/// Checks that need no engine (module docs, "Refused before any WFP call").
fn precheck(file: &SaFile) -> Result<(), InstallError> {
    let mut seen: HashMap<(Selectors, Direction), &SaConfig> = HashMap::new();
    for sa in &file.sas {
        let e = |m: String| InstallError(format!("{}: {m}", who(sa)));
        let p = &sa.params;
        match p.tunnel {
            None => {
                if sa.local.host().is_none() {
                    return Err(e(format!(
                        "local: transport mode needs a host address, not the prefix {} (the SA \
                         context's IPSEC_TRAFFIC0 names one local and one remote address)",
                        sa.local
                    )));
                }
                if sa.remote.host().is_none() {
                    return Err(e(format!(
                        "remote: transport mode needs a host address, not the prefix {} (the SA \
                         context's IPSEC_TRAFFIC0 names one local and one remote address)",
                        sa.remote
                    )));
                }
            }
            Some(t) => {
                if t.local.is_ipv6() != sa.local.addr.is_ipv6() {
                    return Err(e(
                        "tunnel_local: tunnel endpoints of another IP family than the \
                         selectors are not supported (the IPsec filter must sit at the \
                         transport layer of the tunnel's IP version)"
                            .into(),
                    ));
                }
            }
        }
        if p.udp_encap.is_some() && sa.traffic_v6() {
            return Err(e("udp_encap: UDP encapsulation is IPv4 only \
                 (IPSEC_V4_UDP_ENCAPSULATION0)"
                .into()));
        }
        // Several inbound SAs of the same selectors are fine (e.g. the SPIs before and after
        // a rekey: each gets a context on the shared filters); a second outbound one would
        // never be used (the newest complete context wins).
        if sa.direction != Direction::Outbound {
            continue;
        }
        let key = (Selectors::of(sa), sa.direction);
        if let Some(prev) = seen.get(&key) {
            return Err(e(format!(
                "same direction and selectors as {} ({} -> {}): one outbound SA per selectors \
                 (only the newest SA context would ever be used; ESP+AH bundles are not \
                 expressible in the config)",
                who(prev),
                sa.local,
                sa.remote
            )));
        }
        seen.insert(key, sa);
    }
    Ok(())
}

trait TrafficFamily {
    fn traffic_v6(&self) -> bool;
}

impl TrafficFamily for SaConfig {
    fn traffic_v6(&self) -> bool {
        self.params
            .tunnel
            .map_or(self.local.addr.is_ipv6(), |t| t.local.is_ipv6())
    }
}

/// One planned SA context: file indexes of its SAs.
struct Plan {
    outbound: Option<usize>,
    inbound: Option<usize>,
}

fn plan(file: &SaFile, opts: &InstallOptions) -> Result<Vec<Plan>, InstallError> {
    let mut paired = vec![false; file.sas.len()];
    let mut plans: Vec<(usize, Plan)> = Vec::with_capacity(file.sas.len());
    for (i, o) in file.sas.iter().enumerate() {
        if o.direction != Direction::Outbound {
            continue;
        }
        let key = Selectors::of(o);
        let partner = file.sas.iter().enumerate().position(|(j, s)| {
            s.direction == Direction::Inbound
                && !paired.get(j).copied().unwrap_or(true)
                && Selectors::of(s) == key
        });
        if let Some(j) = partner
            && let Some(p) = paired.get_mut(j)
        {
            *p = true;
        } else if !opts.receive_only_partner {
            return Err(InstallError(format!(
                "{}: outbound SA without an inbound partner (an inbound SA with the same \
                 local ({}), remote ({}), mode and tunnel endpoints): WFP adds an SA context's \
                 outbound bundle only after its inbound bundle (IPsecSaContextAddOutbound0 \
                 first is FWP_E_INCOMPATIBLE_SA_STATE), so a send-only context cannot exist",
                who(o),
                o.local,
                o.remote
            )));
        }
        let first = partner.map_or(i, |j| j.min(i));
        plans.push((
            first,
            Plan {
                outbound: Some(i),
                inbound: partner,
            },
        ));
    }
    for (j, s) in file.sas.iter().enumerate() {
        if s.direction == Direction::Inbound && !paired.get(j).copied().unwrap_or(true) {
            plans.push((
                j,
                Plan {
                    outbound: None,
                    inbound: Some(j),
                },
            ));
        }
    }
    plans.sort_by_key(|(first, _)| *first);
    Ok(plans.into_iter().map(|(_, p)| p).collect())
}

/// The `IPSEC_SA0` of one config SA (transform ids per ndis-wfp-abi.md / ipsectypes.h).
fn sa0(p: &SaParams, spi: u32) -> Option<IpsecSa0> {
    let auth = |id: IpsecAuthTransformId0, key: &ipsec::Key| IpsecSaAuthInformation0 {
        auth_transform: IpsecAuthTransform0 {
            auth_transform_id: id,
            crypto_module_id: None,
        },
        auth_key: key.clone(),
    };
    let cipher = |id: IpsecCipherTransformId0, key: &ipsec::Key| IpsecSaCipherInformation0 {
        cipher_transform: IpsecCipherTransform0 {
            cipher_transform_id: id,
            crypto_module_id: None,
        },
        cipher_key: key.clone(),
    };
    let auth_id = match p.integrity {
        Integrity::HmacSha1_96 => Some(IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96),
        Integrity::HmacSha256_128 => Some(IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128),
        Integrity::AesGmac128 => Some(IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128),
        Integrity::AesGmac192 => Some(IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192),
        Integrity::AesGmac256 => Some(IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256),
        Integrity::None => None,
    };
    let gcm = match p.encryption {
        Encryption::AesGcm128 => Some((
            IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
        )),
        Encryption::AesGcm192 => Some((
            IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_192,
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_192,
        )),
        Encryption::AesGcm256 => Some((
            IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256,
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256,
        )),
        _ => None,
    };
    let cbc = match p.encryption {
        Encryption::AesCbc128 => Some(IPSEC_CIPHER_TRANSFORM_ID_AES_128),
        Encryption::AesCbc192 => Some(IPSEC_CIPHER_TRANSFORM_ID_AES_192),
        Encryption::AesCbc256 => Some(IPSEC_CIPHER_TRANSFORM_ID_AES_256),
        _ => None,
    };
    let sa_transform = match (p.protocol, gcm, cbc, auth_id) {
        (Protocol::Ah, _, _, Some(a)) => IpsecSaTransform::Ah(auth(a, &p.integrity_key)),
        // AES-GCM: cipher and auth GCM_AES_x carrying the same key blob (key + salt).
        (Protocol::Esp, Some((c, a)), _, _) => {
            IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
                sa_cipher_information: cipher(c, &p.encryption_key),
                sa_auth_information: auth(a, &p.encryption_key),
            })
        }
        (Protocol::Esp, None, Some(c), Some(a)) => {
            IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
                sa_cipher_information: cipher(c, &p.encryption_key),
                sa_auth_information: auth(a, &p.integrity_key),
            })
        }
        // NULL encryption + HMAC, or AES-GMAC: IPSEC_TRANSFORM_ESP_AUTH.
        (Protocol::Esp, None, None, Some(a)) => {
            IpsecSaTransform::EspAuth(auth(a, &p.integrity_key))
        }
        // ESP/AH without integrity: refused by `SaParams::validate` (config) and by WFP.
        _ => return None,
    };
    Some(IpsecSa0 { spi, sa_transform })
}

fn bundle(p: &SaParams, spi: u32, ip: IpAddr) -> IpsecSaBundle0 {
    IpsecSaBundle0 {
        flags: if p.esn {
            IPSEC_SA_BUNDLE_FLAG_ESN_EXT
        } else {
            0
        },
        // An empty list is refused by WFP (FWP_E_ZERO_LENGTH_ARRAY) and named in the error.
        sa_list: sa0(p, spi).into_iter().collect(),
        ip_version: version(ip),
        ..Default::default()
    }
}

fn addr_condition(field: Guid, p: Prefix) -> FwpmFilterCondition0 {
    let value = match (p.host(), p.addr) {
        (Some(a), _) => FwpConditionValue0::ip(a),
        (None, IpAddr::V4(a)) => FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask::new(a, p.len)),
        (None, IpAddr::V6(a)) => FwpConditionValue0::V6AddrMask(FwpV6AddrAndMask::new(a, p.len)),
    };
    FwpmFilterCondition0::new(field, FWP_MATCH_EQUAL, value)
}

/// Undo log of what was created.
struct Created {
    engine: EngineHandle,
    filters: Vec<u64>,
    contexts: Vec<u64>,
}

impl Created {
    fn rollback(&self, bfe: &mut Bfe) {
        for &c in self.contexts.iter().rev() {
            let _ = bfe.ipsec_sa_context_delete_by_id0(self.engine, c);
        }
        for &f in self.filters.iter().rev() {
            let _ = bfe.fwpm_filter_delete_by_id0(self.engine, f);
        }
        let _ = bfe.fwpm_engine_close0(self.engine);
    }
}

fn wfp_err(sa: &SaConfig, call: &str, e: WfpError) -> InstallError {
    InstallError(format!("{}: {call}: {e}", who(sa)))
}

/// As [`install`], with [`InstallOptions`].
///
/// # Errors
/// As [`install`].
pub fn install_with(
    host: &mut Host,
    file: &SaFile,
    opts: &InstallOptions,
) -> Result<Installed, InstallError> {
    precheck(file)?;
    let plans = plan(file, opts)?;
    let bfe = host.stack_mut().bfe_mut();
    let session = FwpmSession0 {
        display_data: FwpmDisplayData0::named("ipsec-nic SA config"),
        ..Default::default()
    };
    let engine = bfe
        .fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&session))
        .map_err(|e| InstallError(format!("FwpmEngineOpen0: {e}")))?;
    let mut created = Created {
        engine,
        filters: Vec::new(),
        contexts: Vec::new(),
    };
    let mut out = Installed::default();
    let mut filters: HashMap<Selectors, [u64; 2]> = HashMap::new();
    for plan in &plans {
        match install_one(bfe, file, opts.clear_icmp, plan, &mut created, &mut filters) {
            Ok(c) => out.contexts.push(c),
            Err(e) => {
                created.rollback(bfe);
                return Err(e);
            }
        }
    }
    // The stack installs its bundles (and offers them to the NIC) from the SA events.
    let now = host.now();
    host.poll(now);
    for c in &out.contexts {
        let Some(sa) = c.outbound.and_then(|i| file.sas.get(i)) else {
            continue;
        };
        if !host
            .stack_mut()
            .set_outbound_next_seq(c.context, sa.sequence)
        {
            let bfe = host.stack_mut().bfe_mut();
            created.rollback(bfe);
            host.poll(now);
            return Err(InstallError(format!(
                "{}: sequence: the host stack has no outbound bundle for SA context {}",
                who(sa),
                c.context
            )));
        }
    }
    let _ = host.stack_mut().bfe_mut().fwpm_engine_close0(engine);
    Ok(out)
}

fn install_one(
    bfe: &mut Bfe,
    file: &SaFile,
    clear_icmp: bool,
    plan: &Plan,
    created: &mut Created,
    filters: &mut HashMap<Selectors, [u64; 2]>,
) -> Result<InstalledContext, InstallError> {
    let out_sa = plan.outbound.and_then(|i| file.sas.get(i));
    let in_sa = plan.inbound.and_then(|i| file.sas.get(i));
    let Some(first) = out_sa.or(in_sa) else {
        return Err(InstallError("internal: empty SA context plan".into()));
    };
    let sel = Selectors::of(first);
    let Some((local, remote)) = sel.traffic_addrs() else {
        return Err(InstallError(format!(
            "{}: local/remote: not host addresses",
            who(first)
        )));
    };
    let engine = created.engine;
    let ids = match filters.get(&sel) {
        Some(ids) => *ids,
        None => {
            let ids = add_filters(bfe, engine, first, &sel, created, clear_icmp)?;
            filters.insert(sel, ids);
            ids
        }
    };
    let [in_filter, out_filter] = ids;
    let traffic = |filter: u64| IpsecTraffic0 {
        ip_version: version(local),
        local_address: local.into(),
        remote_address: remote.into(),
        traffic_type: if sel.tunnel.is_some() {
            IPSEC_TRAFFIC_TYPE_TUNNEL
        } else {
            IPSEC_TRAFFIC_TYPE_TRANSPORT
        },
        ipsec_filter_id: filter,
        remote_port: 0,
    };
    let context = bfe
        .ipsec_sa_context_create0(engine, &traffic(out_filter), None)
        .map_err(|e| wfp_err(first, "IPsecSaContextCreate0", e))?;
    created.contexts.push(context);
    // Inbound SPI: the configured one (SetSpi0) or, for a receive-only partner, GetSpi0's.
    let udp_of = |sa: &SaConfig| {
        sa.params.udp_encap.map(|u| IpsecV4UdpEncapsulation0 {
            local_udp_encap_port: u.local_port,
            remote_udp_encap_port: u.remote_port,
        })
    };
    let (in_params, in_who, spi) = match in_sa {
        Some(sa) => {
            let get = IpsecGetSpi1 {
                inbound_ipsec_traffic: traffic(in_filter).into(),
                ip_version: version(local),
                inbound_udp_encapsulation: udp_of(sa),
                rng_crypto_module_id: None,
            };
            bfe.ipsec_sa_context_set_spi0(engine, context, &get, sa.params.spi)
                .map_err(|e| wfp_err(sa, "IPsecSaContextSetSpi0", e))?;
            (&sa.params, sa, sa.params.spi)
        }
        None => {
            let get = IpsecGetSpi0 {
                inbound_ipsec_traffic: traffic(in_filter),
                ip_version: version(local),
                inbound_udp_encapsulation: udp_of(first),
                rng_crypto_module_id: None,
            };
            let spi = bfe
                .ipsec_sa_context_get_spi0(engine, context, &get)
                .map_err(|e| wfp_err(first, "IPsecSaContextGetSpi0 (receive-only partner)", e))?;
            (&first.params, first, spi)
        }
    };
    bfe.ipsec_sa_context_add_inbound0(engine, context, &bundle(in_params, spi, local))
        .map_err(|e| wfp_err(in_who, "IPsecSaContextAddInbound0", e))?;
    if let Some(sa) = out_sa {
        bfe.ipsec_sa_context_add_outbound0(
            engine,
            context,
            &bundle(&sa.params, sa.params.spi, local),
        )
        .map_err(|e| wfp_err(sa, "IPsecSaContextAddOutbound0", e))?;
        if let Some(u) = udp_of(sa) {
            let mut ctx = bfe
                .ipsec_sa_context_get_by_id1(engine, context)
                .map_err(|e| wfp_err(sa, "IPsecSaContextGetById1", e))?;
            if let Some(o) = &mut ctx.outbound_sa {
                o.udp_encapsulation = Some(u);
            }
            ctx.inbound_sa = None;
            bfe.ipsec_sa_context_update0(engine, IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION, &ctx)
                .map_err(|e| wfp_err(sa, "IPsecSaContextUpdate0", e))?;
        }
    }
    Ok(InstalledContext {
        context,
        inbound: plan.inbound,
        outbound: plan.outbound,
        filters: vec![in_filter, out_filter],
    })
}

fn add_filters(
    bfe: &mut Bfe,
    engine: EngineHandle,
    sa: &SaConfig,
    sel: &Selectors,
    created: &mut Created,
    clear_icmp: bool,
) -> Result<[u64; 2], InstallError> {
    let v6 = sel.local.addr.is_ipv6();
    let tunnel = sel.tunnel.is_some() || sa.params.mode == Mode::Tunnel;
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
    let (in_callout, out_callout, sub_layer) = match (tunnel, v6) {
        (false, false) => (
            FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
            Guid::NULL,
        ),
        (false, true) => (
            FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
            Guid::NULL,
        ),
        (true, false) => (
            FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
            FWPM_SUBLAYER_IPSEC_TUNNEL,
        ),
        (true, true) => (
            FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6,
            FWPM_SUBLAYER_IPSEC_TUNNEL,
        ),
    };
    let mut ids = [0u64; 2];
    for (slot, (layer, callout)) in ids
        .iter_mut()
        .zip([(in_layer, in_callout), (out_layer, out_callout)])
    {
        let filter = FwpmFilter0 {
            display_data: FwpmDisplayData0::named("ipsec-nic SA config IPsec filter"),
            layer_key: layer,
            sub_layer_key: sub_layer,
            filter_condition: vec![
                addr_condition(FWPM_CONDITION_IP_LOCAL_ADDRESS, sel.local),
                addr_condition(FWPM_CONDITION_IP_REMOTE_ADDRESS, sel.remote),
            ],
            action: FwpmAction0 {
                action_type: FWP_ACTION_CALLOUT_TERMINATING,
                callout_key: callout,
            },
            ..Default::default()
        };
        let id = bfe
            .fwpm_filter_add0(engine, &filter, None)
            .map_err(|e| wfp_err(sa, "FwpmFilterAdd0", e))?;
        created.filters.push(id);
        *slot = id;
        if clear_icmp {
            let exemption = crate::manual_sa::icmp_exemption(
                "ipsec-nic SA config ICMP exemption",
                layer,
                v6,
                vec![
                    addr_condition(FWPM_CONDITION_IP_LOCAL_ADDRESS, sel.local),
                    addr_condition(FWPM_CONDITION_IP_REMOTE_ADDRESS, sel.remote),
                ],
            );
            let id = bfe
                .fwpm_filter_add0(engine, &exemption, None)
                .map_err(|e| wfp_err(sa, "FwpmFilterAdd0", e))?;
            created.filters.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::HostConfig;
    use crate::cli::config;
    use transport::stack::SaOffloadState;

    const GCM: &str = "000102030405060708090a0b0c0d0e0f10111213";

    fn sa(spi: u32, dir: &str, local: &str, remote: &str, extra: &str) -> String {
        format!(
            "[[sa]]\nspi = {spi:#x}\ndirection = \"{dir}\"\nprotocol = \"esp\"\nlocal = \
             \"{local}\"\nremote = \"{remote}\"\nencryption = \"aes-gcm-128\"\nencryption_key \
             = \"{GCM}\"\n{extra}\n"
        )
    }

    fn file(text: &str) -> SaFile {
        config::parse("t.toml", text).expect("valid config")
    }

    fn host(offload: bool) -> Host {
        let mut cfg = HostConfig::new("t", [2, 0, 0, 0, 0, 1], vec!["192.0.2.1".parse().unwrap()]);
        cfg.offload = offload;
        Host::new(&cfg, nicsim::MemWire::pair().0).unwrap()
    }

    fn classify_out(h: &Host, src: &str, dst: &str) -> ClassifyAction {
        classify_proto(h, src, dst, 17)
    }

    fn classify_proto(h: &Host, src: &str, dst: &str, protocol: u8) -> ClassifyAction {
        h.stack()
            .bfe()
            .classify(&ClassifyValues {
                layer: FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
                local_addr: src.parse().unwrap(),
                remote_addr: dst.parse().unwrap(),
                protocol,
                local_port: 1,
                remote_port: 2,
                local_address_type: NlAddressType::Unicast,
            })
            .action
    }

    #[test]
    fn clear_icmp_exempts_icmp_only_and_rolls_back_with_the_rest() {
        let f = file(&format!(
            "{}{}",
            sa(0x1001, "outbound", "192.0.2.1", "192.0.2.2", ""),
            sa(0x2002, "inbound", "192.0.2.1", "192.0.2.2", "")
        ));
        // Without the option ICMP is protected like everything else between the selectors.
        let mut h = host(true);
        install(&mut h, &f).expect("install");
        assert!(matches!(
            classify_proto(&h, "192.0.2.1", "192.0.2.2", 1),
            ClassifyAction::Callout { .. }
        ));
        let opts = InstallOptions {
            clear_icmp: true,
            ..Default::default()
        };
        let mut h = host(true);
        let got = install_with(&mut h, &f, &opts).expect("install");
        assert_eq!(
            classify_proto(&h, "192.0.2.1", "192.0.2.2", 1),
            ClassifyAction::Permit
        );
        assert!(matches!(
            classify_proto(&h, "192.0.2.1", "192.0.2.2", 17),
            ClassifyAction::Callout { filter_id, .. } if filter_id == got.contexts[0].filters[1]
        ));
        // A failing install removes the exemptions too.
        let bad = file(&format!(
            "{}{}{}",
            sa(0x1001, "outbound", "192.0.2.1", "192.0.2.2", ""),
            sa(0x2002, "inbound", "192.0.2.1", "192.0.2.2", ""),
            sa(0x2002, "inbound", "192.0.2.1", "192.0.2.3", "")
        ));
        let mut h = host(false);
        assert!(install_with(&mut h, &bad, &opts).is_err());
        assert_eq!(h.stack().bfe().sa_contexts().count(), 0);
        assert_eq!(
            classify_out(&h, "192.0.2.1", "192.0.2.2"),
            ClassifyAction::Permit
        );
    }

    #[test]
    fn pairs_directions_sets_spi_and_sequence_and_offloads() {
        let f = file(&format!(
            "{}{}",
            sa(
                0x1001,
                "outbound",
                "192.0.2.1",
                "192.0.2.2",
                "sequence = 77"
            ),
            sa(0x2002, "inbound", "192.0.2.1", "192.0.2.2", "")
        ));
        let mut h = host(true);
        let got = install(&mut h, &f).expect("install");
        assert_eq!(got.contexts.len(), 1);
        let c = &got.contexts[0];
        assert_eq!((c.outbound, c.inbound), (Some(0), Some(1)));
        assert_eq!(c.filters.len(), 2);
        let ctx = h.stack().bfe().sa_context(c.context).expect("context");
        assert_eq!(ctx.inbound_spi(), Some(0x2002));
        assert_eq!(ctx.outbound().map(|o| o[0].spi), Some(0x1001));
        assert_eq!(h.stack().outbound_next_seq(c.context), Some(77));
        // The install poll offered both bundles to the NIC (ADD_SA OIDs).
        let st = h.stack().sa_offload_state(c.context).expect("state");
        assert_eq!(st.inbound, Some(SaOffloadState::Offloaded));
        assert_eq!(st.outbound, Some(SaOffloadState::Offloaded));
        assert_eq!(h.nic_stats().sa_added, 2);
        assert!(matches!(
            classify_out(&h, "192.0.2.1", "192.0.2.2"),
            ClassifyAction::Callout { filter_id, .. } if filter_id == c.filters[1]
        ));
        assert_eq!(got.context_of(1).map(|x| x.context), Some(c.context));
    }

    #[test]
    fn unpaired_outbound_is_refused_or_gets_a_receive_only_partner() {
        let f = file(&sa(0x1001, "outbound", "192.0.2.1", "192.0.2.2", ""));
        let mut h = host(false);
        let e = install(&mut h, &f).expect_err("send-only context");
        assert!(
            e.0.starts_with("sa[0] (spi 0x1001): outbound SA without an inbound partner"),
            "{e}"
        );
        assert!(e.0.contains("FWP_E_INCOMPATIBLE_SA_STATE"), "{e}");
        assert_eq!(h.stack().bfe().sa_contexts().count(), 0);
        let opts = InstallOptions {
            receive_only_partner: true,
            ..Default::default()
        };
        let got = install_with(&mut h, &f, &opts).expect("with partner");
        let c = &got.contexts[0];
        assert_eq!((c.outbound, c.inbound), (Some(0), None));
        let spi = h
            .stack()
            .bfe()
            .sa_context(c.context)
            .and_then(|x| x.inbound_spi());
        assert!(spi.is_some_and(|s| s >= 256 && s != 0x1001), "{spi:?}");
    }

    #[test]
    fn inbound_only_contexts_and_shared_filters() {
        // Two inbound SAs of the same selectors (e.g. before and after a rekey): two
        // contexts on one filter pair.
        let f = file(&format!(
            "{}{}",
            sa(0x3001, "inbound", "192.0.2.1", "192.0.2.2", ""),
            sa(0x3002, "inbound", "192.0.2.1", "192.0.2.2", "")
        ));
        let mut h = host(false);
        let got = install(&mut h, &f).expect("install");
        assert_eq!(got.contexts.len(), 2);
        assert_eq!(got.contexts[0].filters, got.contexts[1].filters);
        assert!(got.contexts.iter().all(|c| c.outbound.is_none()));
        let spis: Vec<_> = got
            .contexts
            .iter()
            .map(|c| {
                h.stack()
                    .bfe()
                    .sa_context(c.context)
                    .and_then(|x| x.inbound_spi())
            })
            .collect();
        assert_eq!(spis, [Some(0x3001), Some(0x3002)]);
    }

    #[test]
    fn failure_rolls_everything_back() {
        // The second context's SetSpi0 fails (SPI already used on this host): the first
        // context and every filter are deleted again.
        let f = file(&format!(
            "{}{}",
            sa(0x4001, "inbound", "192.0.2.1", "192.0.2.2", ""),
            sa(0x4001, "inbound", "192.0.2.1", "192.0.2.3", "")
        ));
        let mut h = host(false);
        let e = install(&mut h, &f).expect_err("duplicate SPI");
        assert!(
            e.0.starts_with("sa[1] (spi 0x4001): IPsecSaContextSetSpi0: FWP_E_ALREADY_EXISTS"),
            "{e}"
        );
        assert_eq!(h.stack().bfe().sa_contexts().count(), 0);
        assert_eq!(
            classify_out(&h, "192.0.2.1", "192.0.2.2"),
            ClassifyAction::Permit
        );
    }

    #[test]
    fn refused_shapes_name_sa_and_field() {
        let cases = [
            (
                sa(0x1001, "inbound", "192.0.2.0/24", "192.0.2.2", ""),
                "sa[0] (spi 0x1001): local: transport mode needs a host address",
            ),
            (
                sa(0x1001, "inbound", "192.0.2.1", "192.0.2.0/24", ""),
                "sa[0] (spi 0x1001): remote: transport mode needs a host address",
            ),
            (
                sa(
                    0x1001,
                    "inbound",
                    "2001:db8::1",
                    "2001:db8::2",
                    "udp_encap = { local_port = 4500, remote_port = 4500 }",
                ),
                "sa[0] (spi 0x1001): udp_encap: UDP encapsulation is IPv4 only",
            ),
            (
                format!(
                    "{}{}",
                    sa(0x1001, "outbound", "192.0.2.1", "192.0.2.2", ""),
                    sa(0x1002, "outbound", "192.0.2.1", "192.0.2.2", "")
                ),
                "sa[1] (spi 0x1002): same direction and selectors as sa[0] (spi 0x1001)",
            ),
            (
                sa(
                    0x1001,
                    "inbound",
                    "192.0.2.0/24",
                    "198.51.100.0/24",
                    "mode = \"tunnel\"\ntunnel_local = \"2001:db8::1\"\ntunnel_remote = \
                     \"2001:db8::2\"",
                ),
                "sa[0] (spi 0x1001): tunnel_local: tunnel endpoints of another IP family",
            ),
        ];
        for (text, want) in cases {
            let mut h = host(false);
            let e = install(&mut h, &file(&text)).expect_err("refused");
            assert!(e.0.starts_with(want), "got {e}\nwant {want}");
            assert_eq!(h.stack().bfe().sa_contexts().count(), 0);
        }
    }

    #[test]
    fn replay_window_and_local_addresses() {
        let f = file(&format!(
            "{}{}{}",
            sa(
                0x1001,
                "inbound",
                "192.0.2.1",
                "192.0.2.2",
                "replay_window = 128"
            ),
            sa(
                0x1002,
                "outbound",
                "192.0.2.1",
                "192.0.2.2",
                "replay_window = 32"
            ),
            sa(
                0x1003,
                "inbound",
                "198.51.100.0/24",
                "192.0.2.0/24",
                "replay_window = 128\nmode = \"tunnel\"\ntunnel_local = \"203.0.113.1\"\n\
                 tunnel_remote = \"203.0.113.2\"",
            ),
        ));
        assert_eq!(host_replay_window(&f), Ok(128));
        assert_eq!(
            local_addresses(&f),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "203.0.113.1".parse().unwrap()
            ]
        );
        let g = file(&format!(
            "{}{}",
            sa(
                0x1001,
                "inbound",
                "192.0.2.1",
                "192.0.2.2",
                "replay_window = 128"
            ),
            sa(0x1002, "inbound", "192.0.2.1", "192.0.2.3", "")
        ));
        let e = host_replay_window(&g).expect_err("windows differ");
        assert!(
            e.0.starts_with("sa[1] (spi 0x1002): replay_window: 64 differs from sa[0]"),
            "{e}"
        );
        assert_eq!(host_replay_window(&file("")), Ok(64));
    }
}
