//! IPsec SA contexts: the Manual SA calls (`IPsecSaContext*`), SPI allocation, bundle
//! validation, lifetimes, the `Expire0` grace period, enumeration and change notifications.
//!
//! # State machine
//! `Created` --GetSpi0/1 or SetSpi0--> `SpiAssigned` --AddInbound0/1--> `InboundAdded`
//! --AddOutbound0/1--> `Complete`; `Expire0` (from `InboundAdded` or `Complete`) -->
//! `Expiring` (outbound SA removed at once, inbound kept for [`EXPIRE_GRACE_PERIOD`], then the
//! context is deleted). Any call out of this order gives `FWP_E_INCOMPATIBLE_SA_STATE`, with
//! one exception: GetSpi0/1 repeated with identical inbound traffic succeeds in `SpiAssigned`,
//! `InboundAdded` and `Complete` and returns the same SPI (see Decisions).
//!
//! # Decisions (documented emulator choices)
//! - `ipsecFilterId` must name a filter at the matching transport layer (Create: the
//!   **outbound** layer; GetSpi/SetSpi: the **inbound** layer, of the traffic's IP version)
//!   whose action is a built-in IPsec callout (transport callout for transport traffic,
//!   tunnel callout for tunnel traffic, where the id stands in for `tunnelPolicyId` because
//!   `FwpmIPsecTunnelAdd` is not emulated); otherwise `FWP_E_FILTER_NOT_FOUND`.
//! - GetSpi may be repeated with identical inbound traffic (same SPI returned, state unchanged,
//!   also in `InboundAdded` and `Complete`); different
//!   traffic, or inbound addresses that differ from the context's, give
//!   `FWP_E_TRAFFIC_MISMATCH`.
//! - SPIs come from a deterministic generator seeded per [`Bfe`] ([`Bfe::with_seed`]); they
//!   are unique among this host's inbound SPIs and never 0-255. SetSpi0 with an SPI below 256
//!   gives `FWP_E_INVALID_PARAMETER`, with one already used on this host `FWP_E_ALREADY_EXISTS`.
//! - Every SA of an inbound bundle must carry the SPI from GetSpi/SetSpi (ESP and AH of a
//!   bundle share it; SPIs are per protocol), else `FWP_E_INVALID_PARAMETER`.
//! - Bundles: `numSAs` 0 gives `FWP_E_ZERO_LENGTH_ARRAY`; more than 2, or 2 that are not ESP
//!   then AH, `FWP_E_INVALID_TRANSFORM_COMBINATION`. AES-GCM ESP is
//!   `ESP_AUTH_AND_CIPHER` with cipher `GCM_AES_x` and auth `GCM_AES_x` carrying the same key
//!   blob (AES key + 4-byte salt: 20/28/36 bytes); AES-GMAC is `ESP_AUTH` or `AH` with auth
//!   `GCM_AES_x`; `ESP_AUTH` with an HMAC is ESP with NULL encryption (RFC 2410).
//!   `ESP_CIPHER` alone (no integrity) and `ESP_AUTH_FW` give
//!   `FWP_E_INVALID_TRANSFORM_COMBINATION`; DES/3DES `FWP_E_INVALID_CIPHER_TRANSFORM` and MD5
//!   `FWP_E_INVALID_AUTH_TRANSFORM` (parsed, not supported by this emulator). A key of the
//!   wrong length gives `FWP_E_INVALID_PARAMETER`.
//! - Lifetimes (per direction, from the time the bundle was added): soft expiry at
//!   [`SOFT_LIFETIME_PERCENT`] % of each non-zero limit (Windows documents no soft fraction),
//!   hard expiry at 100 %; hard expiry of either direction deletes the whole context.
//!   `lifetimeKilobytes` counts KiB of protected payload fed through [`Bfe::account_traffic`].
//!   Soft expiry is reported as [`SaEvent::SoftExpired`] and, to subscriptions that set
//!   [`IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT`], as a change of the extension type
//!   [`IPSEC_SA_CONTEXT_EVENT_SOFT_EXPIRED_EXT`].
//! - Change notifications: `IPSEC_SA_CONTEXT_EVENT_ADD` at Create, `_DELETE` when the context
//!   goes (DeleteById0, hard expiry, end of the Expire0 grace period), delivered synchronously,
//!   filtered by the subscription's enum template on the outbound traffic's addresses.
//! - GetById/Enum return bundles with empty key blobs: keys never leave the engine.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque, btree_map};

use ipsec::{
    Encryption, Integrity, Key, Mode, ParamError, Protocol, SaParams, TunnelEndpoints, UdpEncap,
};

use super::cache::{GenerationCache, next_generation};
use super::consts::*;
use super::engine::{
    Access, Bfe, Deferred, EngineHandle, EnumHandle, EnumKind, EnumState, SaContextCallback, State,
    Subscription, SubscriptionHandle,
};
use super::error::*;
use super::filter::{ClassifyAction, ClassifyValues, Decision, callout_info, transport_layer};
use super::types::*;

/// How long `IPsecSaContextExpire0` keeps the inbound SA for packets in flight (the
/// documentation says about one minute).
pub const EXPIRE_GRACE_PERIOD: Duration = Duration::from_secs(60);

/// Soft lifetime, in percent of each hard limit (an emulator choice).
pub const SOFT_LIFETIME_PERCENT: u64 = 90;

/// Where an SA context is in the Manual SA sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaContextState {
    /// Created by `IPsecSaContextCreate0/1`; no inbound SPI yet.
    Created,
    /// Inbound SPI assigned by `IPsecSaContextGetSpi0/1` or `IPsecSaContextSetSpi0`.
    SpiAssigned,
    /// Inbound bundle added.
    InboundAdded,
    /// Both bundles added.
    Complete,
    /// `IPsecSaContextExpire0` called: outbound removed, inbound in its grace period.
    Expiring,
}

/// An event for the data path (which turns them into ADD_SA / DELETE_SA OIDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaEvent {
    /// The inbound bundle was added.
    InboundAdded {
        /// SA-context id.
        id: u64,
    },
    /// The outbound bundle was added.
    OutboundAdded {
        /// SA-context id.
        id: u64,
    },
    /// `IPsecSaContextUpdate0` changed the context (flags, UDP encapsulation...).
    Updated {
        /// SA-context id.
        id: u64,
    },
    /// `IPsecSaContextExpire0` removed the outbound SA (the inbound one stays for the grace
    /// period).
    OutboundRemoved {
        /// SA-context id.
        id: u64,
    },
    /// A bundle reached its soft lifetime: time to rekey (make before break).
    SoftExpired {
        /// SA-context id.
        id: u64,
        /// Which bundle.
        direction: FwpDirection,
    },
    /// A bundle reached its hard lifetime; a [`SaEvent::Deleted`] follows.
    HardExpired {
        /// SA-context id.
        id: u64,
        /// Which bundle.
        direction: FwpDirection,
    },
    /// The context and all its SAs are gone.
    Deleted {
        /// SA-context id.
        id: u64,
    },
}

/// Lifetime consumption of one bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SaLifetimeUsage {
    /// Virtual time the bundle was added.
    pub added_at: Duration,
    /// Protected payload bytes so far.
    pub bytes: u64,
    /// Packets so far.
    pub packets: u64,
    /// Whether the soft expiry was reported.
    pub soft_expired: bool,
}

#[derive(Clone, Debug)]
struct InstalledBundle {
    bundle: IpsecSaBundle1,
    params: Vec<SaParams>,
    usage: SaLifetimeUsage,
    udp: Option<IpsecV4UdpEncapsulation0>,
}

/// The SA contexts of one [`State`](super::engine::State), by id, stamped with a generation
/// (see [`super::cache`]) that changes on every change a data-path query can see: every
/// mutable access except [`SaContexts::add_usage`] (lifetime counters, which the SA selection
/// does not read) takes a fresh generation.
#[derive(Clone, Debug, Default)]
pub(crate) struct SaContexts {
    map: BTreeMap<u64, SaContext>,
    generation: u64,
}

impl SaContexts {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
    pub(crate) fn get(&self, id: &u64) -> Option<&SaContext> {
        self.map.get(id)
    }
    pub(crate) fn contains_key(&self, id: &u64) -> bool {
        self.map.contains_key(id)
    }
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    pub(crate) fn values(&self) -> btree_map::Values<'_, u64, SaContext> {
        self.map.values()
    }
    pub(crate) fn insert(&mut self, id: u64, sa: SaContext) -> Option<SaContext> {
        self.generation = next_generation();
        self.map.insert(id, sa)
    }
    pub(crate) fn remove(&mut self, id: &u64) -> Option<SaContext> {
        self.generation = next_generation();
        self.map.remove(id)
    }
    pub(crate) fn get_mut(&mut self, id: &u64) -> Option<&mut SaContext> {
        self.generation = next_generation();
        self.map.get_mut(id)
    }
    /// Count `bytes` and `packets` against context `id`'s bundle of `direction` (no new
    /// generation: usage is not part of what the data path selects by).
    pub(crate) fn add_usage(&mut self, id: u64, direction: FwpDirection, bytes: u64, packets: u64) {
        if let Some(sa) = self.map.get_mut(&id) {
            let b = if direction == FWP_DIRECTION_INBOUND {
                &mut sa.inbound
            } else {
                &mut sa.outbound
            };
            if let Some(b) = b {
                b.usage.bytes = b.usage.bytes.saturating_add(bytes);
                b.usage.packets = b.usage.packets.saturating_add(packets);
            }
        }
    }
}

impl<'a> IntoIterator for &'a SaContexts {
    type Item = (&'a u64, &'a SaContext);
    type IntoIter = btree_map::Iter<'a, u64, SaContext>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

/// A data path's cache of outbound SA selections: per (filter, tunnel or not, local, remote),
/// the context [`Bfe::outbound_sa_context`] / [`Bfe::outbound_tunnel_sa_context`] picks,
/// valid while [`Bfe::sa_generation`] is unchanged (any SA-context change is seen by the next
/// packet), so it always answers what the scan would (checked after every call of the
/// SA-context state-machine proptest). Turns the per-packet scan over every SA context into a
/// hash probe. Direct-mapped, 64 slots, allocated once.
#[derive(Clone, Debug)]
pub struct OutboundSaCache(GenerationCache<(u64, bool, IpAddr, IpAddr), Option<u64>>);

impl Default for OutboundSaCache {
    fn default() -> Self {
        OutboundSaCache(GenerationCache::new(64))
    }
}

impl OutboundSaCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the context to protect a packet from `local` to `remote` with, after
    /// classification returned the IPsec callout of `filter_id` (`tunnel`: a tunnel-mode
    /// callout, where the inner addresses do not take part).
    pub fn select(
        &mut self,
        bfe: &Bfe,
        filter_id: u64,
        tunnel: bool,
        local: IpAddr,
        remote: IpAddr,
    ) -> Option<u64> {
        let key = if tunnel {
            let unspecified = IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED);
            (filter_id, true, unspecified, unspecified)
        } else {
            (filter_id, false, local, remote)
        };
        self.0.get_or_compute(bfe.sa_generation(), &key, || {
            if tunnel {
                bfe.outbound_tunnel_sa_context(filter_id)
            } else {
                bfe.outbound_sa_context(filter_id, local, remote)
            }
            .map(SaContext::id)
        })
    }

    /// (hits, misses) so far.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.0.hits_and_misses()
    }
}

/// One SA context as the data path sees it.
#[derive(Clone, Debug)]
pub struct SaContext {
    id: u64,
    outbound_traffic: IpsecTraffic1,
    inbound_traffic: Option<IpsecTraffic1>,
    state: SaContextState,
    inbound_spi: Option<u32>,
    inbound_udp: Option<IpsecV4UdpEncapsulation0>,
    inbound: Option<InstalledBundle>,
    outbound: Option<InstalledBundle>,
    grace_deadline: Option<Duration>,
}

impl SaContext {
    /// The SA-context id (`saContextId`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The state in the Manual SA sequence.
    pub fn state(&self) -> SaContextState {
        self.state
    }

    /// The outbound traffic given to Create (`ipsec_filter_id` = the outbound filter).
    pub fn traffic(&self) -> &IpsecTraffic1 {
        &self.outbound_traffic
    }

    /// The inbound traffic given to GetSpi/SetSpi (`ipsec_filter_id` = the inbound filter).
    pub fn inbound_traffic(&self) -> Option<&IpsecTraffic1> {
        self.inbound_traffic.as_ref()
    }

    /// The local inbound SPI.
    pub fn inbound_spi(&self) -> Option<u32> {
        self.inbound_spi
    }

    /// The inbound SAs (ESP, or ESP then AH), once added and until removed.
    pub fn inbound(&self) -> Option<&[SaParams]> {
        self.inbound.as_ref().map(|b| b.params.as_slice())
    }

    /// The outbound SAs, once added and until removed.
    pub fn outbound(&self) -> Option<&[SaParams]> {
        self.outbound.as_ref().map(|b| b.params.as_slice())
    }

    fn bundle(&self, direction: FwpDirection) -> Option<&InstalledBundle> {
        if direction == FWP_DIRECTION_INBOUND {
            self.inbound.as_ref()
        } else {
            self.outbound.as_ref()
        }
    }

    /// The lifetime of one direction's bundle.
    pub fn lifetime(&self, direction: FwpDirection) -> Option<IpsecSaLifetime0> {
        self.bundle(direction).map(|b| b.bundle.lifetime)
    }

    /// The lifetime consumption of one direction's bundle.
    pub fn usage(&self, direction: FwpDirection) -> Option<SaLifetimeUsage> {
        self.bundle(direction).map(|b| b.usage)
    }

    /// When the `Expire0` grace period ends.
    pub fn grace_deadline(&self) -> Option<Duration> {
        self.grace_deadline
    }

    fn addrs(&self) -> (IpAddr, IpAddr) {
        (
            self.outbound_traffic.local_address.to_ip(),
            self.outbound_traffic.remote_address.to_ip(),
        )
    }
}

fn param_error(e: ParamError) -> WfpError {
    match e {
        ParamError::NoIntegrity | ParamError::InvalidCombination | ParamError::InvalidBundle => {
            FWP_E_INVALID_TRANSFORM_COMBINATION
        }
        _ => FWP_E_INVALID_PARAMETER,
    }
}

fn integrity_of(id: IpsecAuthTransformId0) -> Result<Integrity, WfpError> {
    match (id.auth_type, id.auth_config) {
        (IPSEC_AUTH_SHA_1, IPSEC_AUTH_CONFIG_HMAC_SHA_1_96) => Ok(Integrity::HmacSha1_96),
        (IPSEC_AUTH_SHA_256, IPSEC_AUTH_CONFIG_HMAC_SHA_256_128) => Ok(Integrity::HmacSha256_128),
        (IPSEC_AUTH_AES_128, IPSEC_AUTH_CONFIG_GCM_AES_128) => Ok(Integrity::AesGmac128),
        (IPSEC_AUTH_AES_192, IPSEC_AUTH_CONFIG_GCM_AES_192) => Ok(Integrity::AesGmac192),
        (IPSEC_AUTH_AES_256, IPSEC_AUTH_CONFIG_GCM_AES_256) => Ok(Integrity::AesGmac256),
        // HMAC-MD5-96 exists in WFP but is not supported here; anything else is not valid.
        _ => Err(FWP_E_INVALID_AUTH_TRANSFORM),
    }
}

fn encryption_of(id: IpsecCipherTransformId0) -> Result<Encryption, WfpError> {
    match (id.cipher_type, id.cipher_config) {
        (IPSEC_CIPHER_TYPE_AES_128, IPSEC_CIPHER_CONFIG_CBC_AES_128) => Ok(Encryption::AesCbc128),
        (IPSEC_CIPHER_TYPE_AES_192, IPSEC_CIPHER_CONFIG_CBC_AES_192) => Ok(Encryption::AesCbc192),
        (IPSEC_CIPHER_TYPE_AES_256, IPSEC_CIPHER_CONFIG_CBC_AES_256) => Ok(Encryption::AesCbc256),
        (IPSEC_CIPHER_TYPE_AES_128, IPSEC_CIPHER_CONFIG_GCM_AES_128) => Ok(Encryption::AesGcm128),
        (IPSEC_CIPHER_TYPE_AES_192, IPSEC_CIPHER_CONFIG_GCM_AES_192) => Ok(Encryption::AesGcm192),
        (IPSEC_CIPHER_TYPE_AES_256, IPSEC_CIPHER_CONFIG_GCM_AES_256) => Ok(Encryption::AesGcm256),
        // DES / 3DES exist in WFP but are not supported here.
        _ => Err(FWP_E_INVALID_CIPHER_TRANSFORM),
    }
}

fn gmac_matches_gcm(e: Encryption, i: Integrity) -> bool {
    matches!(
        (e, i),
        (Encryption::AesGcm128, Integrity::AesGmac128)
            | (Encryption::AesGcm192, Integrity::AesGmac192)
            | (Encryption::AesGcm256, Integrity::AesGmac256)
    )
}

/// Convert one `IPSEC_SA0` to SA parameters (mode, tunnel and UDP filled in by the caller).
fn sa_params(sa: &IpsecSa0) -> Result<SaParams, WfpError> {
    let (protocol, encryption, encryption_key, integrity, integrity_key) = match &sa.sa_transform {
        IpsecSaTransform::Ah(a) => {
            let i = integrity_of(a.auth_transform.auth_transform_id)?;
            (
                Protocol::Ah,
                Encryption::None,
                Key::empty(),
                i,
                a.auth_key.clone(),
            )
        }
        IpsecSaTransform::EspAuth(a) => {
            let i = integrity_of(a.auth_transform.auth_transform_id)?;
            let e = if i.is_gmac() {
                Encryption::None
            } else {
                Encryption::Null
            };
            (Protocol::Esp, e, Key::empty(), i, a.auth_key.clone())
        }
        IpsecSaTransform::EspCipher(c) => {
            encryption_of(c.cipher_transform.cipher_transform_id)?;
            return Err(FWP_E_INVALID_TRANSFORM_COMBINATION);
        }
        IpsecSaTransform::EspAuthAndCipher(ac) => {
            let e = encryption_of(
                ac.sa_cipher_information
                    .cipher_transform
                    .cipher_transform_id,
            )?;
            let i = integrity_of(ac.sa_auth_information.auth_transform.auth_transform_id)?;
            if e.is_aead() {
                if !gmac_matches_gcm(e, i) {
                    return Err(FWP_E_INVALID_TRANSFORM_COMBINATION);
                }
                if ac.sa_cipher_information.cipher_key != ac.sa_auth_information.auth_key {
                    return Err(FWP_E_INVALID_PARAMETER);
                }
                (
                    Protocol::Esp,
                    e,
                    ac.sa_cipher_information.cipher_key.clone(),
                    Integrity::None,
                    Key::empty(),
                )
            } else {
                if i.is_gmac() {
                    return Err(FWP_E_INVALID_TRANSFORM_COMBINATION);
                }
                (
                    Protocol::Esp,
                    e,
                    ac.sa_cipher_information.cipher_key.clone(),
                    i,
                    ac.sa_auth_information.auth_key.clone(),
                )
            }
        }
        IpsecSaTransform::EspAuthFw(_) => return Err(FWP_E_INVALID_TRANSFORM_COMBINATION),
    };
    Ok(SaParams {
        spi: sa.spi,
        protocol,
        mode: Mode::Transport,
        encryption,
        encryption_key,
        integrity,
        integrity_key,
        esn: false,
        tunnel: None,
        udp_encap: None,
    })
}

fn is_esp(t: &IpsecSaTransform) -> bool {
    matches!(
        t,
        IpsecSaTransform::EspAuth(_)
            | IpsecSaTransform::EspCipher(_)
            | IpsecSaTransform::EspAuthAndCipher(_)
    )
}

/// Validate a bundle and convert it to SA parameters for `traffic`.
fn bundle_params(
    bundle: &IpsecSaBundle1,
    traffic: &IpsecTraffic1,
    udp: Option<IpsecV4UdpEncapsulation0>,
) -> Result<Vec<SaParams>, WfpError> {
    match bundle.sa_list.as_slice() {
        [] => return Err(FWP_E_ZERO_LENGTH_ARRAY),
        [_] => {}
        [esp, ah]
            if is_esp(&esp.sa_transform) && matches!(ah.sa_transform, IpsecSaTransform::Ah(_)) => {}
        _ => return Err(FWP_E_INVALID_TRANSFORM_COMBINATION),
    }
    if bundle.ip_version != traffic.ip_version {
        return Err(FWP_E_INVALID_PARAMETER);
    }
    let tunnel = (traffic.traffic_type == IPSEC_TRAFFIC_TYPE_TUNNEL).then(|| TunnelEndpoints {
        local: traffic.local_address.to_ip(),
        remote: traffic.remote_address.to_ip(),
    });
    let mut out = Vec::with_capacity(bundle.sa_list.len());
    for sa in &bundle.sa_list {
        let mut p = sa_params(sa)?;
        p.esn = bundle.flags & IPSEC_SA_BUNDLE_FLAG_ESN_EXT != 0;
        if let Some(t) = tunnel {
            p.mode = Mode::Tunnel;
            p.tunnel = Some(t);
        }
        if p.protocol == Protocol::Esp {
            p.udp_encap = udp.map(|u| UdpEncap {
                local_port: u.local_udp_encap_port,
                remote_port: u.remote_udp_encap_port,
            });
        }
        p.validate().map_err(param_error)?;
        out.push(p);
    }
    Ok(out)
}

/// Check an `IPSEC_TRAFFIC`: returns whether it is IPv6.
fn validate_traffic(t: &IpsecTraffic1) -> Result<bool, WfpError> {
    let v6 = match t.ip_version {
        FWP_IP_VERSION_V4 => false,
        FWP_IP_VERSION_V6 => true,
        FWP_IP_VERSION_NONE => return Err(FWP_E_INVALID_PARAMETER),
        _ => return Err(FWP_E_INVALID_ENUMERATOR),
    };
    if t.local_address.ip_version() != t.ip_version || t.remote_address.ip_version() != t.ip_version
    {
        return Err(FWP_E_INVALID_PARAMETER);
    }
    if t.local_address.to_ip().is_unspecified() || t.remote_address.to_ip().is_unspecified() {
        return Err(FWP_E_INVALID_PARAMETER);
    }
    if t.traffic_type != IPSEC_TRAFFIC_TYPE_TRANSPORT && t.traffic_type != IPSEC_TRAFFIC_TYPE_TUNNEL
    {
        return Err(FWP_E_INVALID_ENUMERATOR);
    }
    Ok(v6)
}

/// `ipsecFilterId` must name an IPsec callout filter at the matching transport layer.
fn check_ipsec_filter(
    state: &State,
    t: &IpsecTraffic1,
    v6: bool,
    inbound: bool,
) -> Result<(), WfpError> {
    let rec = state
        .filters
        .get(&t.ipsec_filter_id)
        .ok_or(FWP_E_FILTER_NOT_FOUND)?;
    if rec.filter.layer_key != transport_layer(v6, inbound) {
        return Err(FWP_E_FILTER_NOT_FOUND);
    }
    let tunnel = t.traffic_type == IPSEC_TRAFFIC_TYPE_TUNNEL;
    match rec.compiled.decision {
        Decision::Callout(k) if callout_info(k).is_some_and(|c| c.tunnel == tunnel) => Ok(()),
        _ => Err(FWP_E_FILTER_NOT_FOUND),
    }
}

fn addr_in_value(v: &FwpConditionValue0, a: IpAddr) -> bool {
    let as_u128 = |a: IpAddr| match a {
        IpAddr::V4(x) => (false, u128::from(u32::from(x))),
        IpAddr::V6(x) => (true, u128::from(x)),
    };
    let (v6, x) = as_u128(a);
    match v {
        FwpConditionValue0::Empty => true,
        FwpConditionValue0::Uint32(y) => !v6 && x == u128::from(*y),
        FwpConditionValue0::ByteArray16(y) => v6 && x == u128::from_be_bytes(*y),
        FwpConditionValue0::V4AddrMask(m) => !v6 && (x as u32 & m.mask) == (m.addr & m.mask),
        FwpConditionValue0::V6AddrMask(m) => {
            let p = u32::from(m.prefix_length.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            v6 && (x & mask) == (u128::from_be_bytes(m.addr) & mask)
        }
        FwpConditionValue0::Range(r) => match (&r.value_low, &r.value_high) {
            (FwpValue0::Uint32(lo), FwpValue0::Uint32(hi)) => {
                !v6 && u128::from(*lo) <= x && x <= u128::from(*hi)
            }
            (FwpValue0::ByteArray16(lo), FwpValue0::ByteArray16(hi)) => {
                v6 && u128::from_be_bytes(*lo) <= x && x <= u128::from_be_bytes(*hi)
            }
            _ => false,
        },
        _ => false,
    }
}

fn template_value_ok(v: &FwpConditionValue0) -> Result<(), WfpError> {
    match v {
        FwpConditionValue0::Empty
        | FwpConditionValue0::Uint32(_)
        | FwpConditionValue0::ByteArray16(_)
        | FwpConditionValue0::V4AddrMask(_)
        | FwpConditionValue0::V6AddrMask(_) => Ok(()),
        FwpConditionValue0::Range(r) => match (&r.value_low, &r.value_high) {
            (FwpValue0::Uint32(_), FwpValue0::Uint32(_))
            | (FwpValue0::ByteArray16(_), FwpValue0::ByteArray16(_)) => Ok(()),
            _ => Err(FWP_E_TYPE_MISMATCH),
        },
        _ => Err(FWP_E_TYPE_MISMATCH),
    }
}

fn validate_template(t: &IpsecSaContextEnumTemplate0) -> Result<(), WfpError> {
    template_value_ok(&t.local_sub_net)?;
    template_value_ok(&t.remote_sub_net)
}

/// Whether an SA context with these outbound addresses matches an enum template.
pub(crate) fn template_matches(
    t: &IpsecSaContextEnumTemplate0,
    local: IpAddr,
    remote: IpAddr,
) -> bool {
    addr_in_value(&t.local_sub_net, local) && addr_in_value(&t.remote_sub_net, remote)
}

fn redacted_bundle(b: &IpsecSaBundle1) -> IpsecSaBundle1 {
    let mut out = b.clone();
    for sa in &mut out.sa_list {
        sa.sa_transform = sa.sa_transform.redacted();
    }
    out
}

/// Hard and soft thresholds of one limit (soft = ceil(limit * 90 %)).
fn crossed(limit: u64, used: u64) -> (bool, bool) {
    if limit == 0 {
        return (false, false);
    }
    let soft = (limit.saturating_mul(SOFT_LIFETIME_PERCENT)).div_ceil(100);
    (used >= limit, used >= soft)
}

fn lifetime_status(b: &InstalledBundle, now: Duration) -> (bool, bool) {
    let l = b.bundle.lifetime;
    let age_ms =
        u64::try_from(now.saturating_sub(b.usage.added_at).as_millis()).unwrap_or(u64::MAX);
    let checks = [
        crossed(u64::from(l.lifetime_seconds).saturating_mul(1000), age_ms),
        crossed(
            u64::from(l.lifetime_kilobytes).saturating_mul(1024),
            b.usage.bytes,
        ),
        crossed(u64::from(l.lifetime_packets), b.usage.packets),
    ];
    (checks.iter().any(|c| c.0), checks.iter().any(|c| c.1))
}

impl Bfe {
    fn sa_change(
        &mut self,
        session: Option<u64>,
        change_type: IpsecSaContextEventType0,
        id: u64,
        addrs: (IpAddr, IpAddr),
    ) {
        let change = IpsecSaContextChange0 {
            change_type,
            sa_context_id: id,
        };
        self.emit(
            session,
            Deferred::Change {
                change,
                local: addrs.0,
                remote: addrs.1,
            },
        );
    }

    fn delete_sa_context(&mut self, session: Option<u64>, id: u64) {
        if let Some(sa) = self.state.sa_contexts.remove(&id) {
            if let Some(spi) = sa.inbound_spi {
                self.state.inbound_spis.remove(&spi);
            }
            self.emit(session, Deferred::Event(SaEvent::Deleted { id }));
            self.sa_change(session, IPSEC_SA_CONTEXT_EVENT_DELETE, id, sa.addrs());
        }
    }

    /// Process lifetimes and grace periods at the current virtual time (no write transaction
    /// may be open: then live state == committed state).
    pub(crate) fn process_lifetimes(&mut self) {
        let now = self.now;
        let mut soft = Vec::new();
        let mut hard = Vec::new();
        let mut grace_over = Vec::new();
        for (id, sa) in &self.state.sa_contexts {
            if sa.grace_deadline.is_some_and(|d| d <= now) {
                grace_over.push(*id);
                continue;
            }
            for (dir, b) in [
                (FWP_DIRECTION_INBOUND, &sa.inbound),
                (FWP_DIRECTION_OUTBOUND, &sa.outbound),
            ] {
                let Some(b) = b else { continue };
                let (h, s) = lifetime_status(b, now);
                if h {
                    hard.push((*id, dir));
                    break;
                }
                if s && !b.usage.soft_expired {
                    soft.push((*id, dir));
                }
            }
        }
        for (id, dir) in soft {
            let Some(sa) = self.state.sa_contexts.get_mut(&id) else {
                continue;
            };
            let b = if dir == FWP_DIRECTION_INBOUND {
                &mut sa.inbound
            } else {
                &mut sa.outbound
            };
            if let Some(b) = b {
                b.usage.soft_expired = true;
            }
            let addrs = sa.addrs();
            self.emit(
                None,
                Deferred::Event(SaEvent::SoftExpired { id, direction: dir }),
            );
            self.sa_change(None, IPSEC_SA_CONTEXT_EVENT_SOFT_EXPIRED_EXT, id, addrs);
        }
        for (id, dir) in hard {
            self.emit(
                None,
                Deferred::Event(SaEvent::HardExpired { id, direction: dir }),
            );
            self.delete_sa_context(None, id);
        }
        for id in grace_over {
            self.delete_sa_context(None, id);
        }
    }

    /// The committed SA context `id` (the data path's view).
    pub fn sa_context(&self, id: u64) -> Option<&SaContext> {
        self.committed().sa_contexts.get(&id)
    }

    /// Every committed SA context, by id.
    pub fn sa_contexts(&self) -> impl Iterator<Item = &SaContext> + '_ {
        self.committed().sa_contexts.values()
    }

    /// Identifies the committed SA contexts as the data path selects them: equal values mean
    /// [`Bfe::outbound_sa_context`] and [`Bfe::outbound_tunnel_sa_context`] answer the same.
    /// It changes on every SA-context call that changes a context (create, SPI, add, update,
    /// expire, delete, lifetime expiry, commit or abort); not on traffic accounting. Unique
    /// across every `Bfe` in the process. [`OutboundSaCache`] caches under it.
    pub fn sa_generation(&self) -> u64 {
        self.committed().sa_contexts.generation()
    }

    /// The SA context to protect an outbound packet with, after classification returned
    /// [`ClassifyAction::Callout`] for `filter_id`: the newest complete context of that filter
    /// and address pair (the newest wins so a rekeyed context takes over at once).
    pub fn outbound_sa_context(
        &self,
        filter_id: u64,
        local: IpAddr,
        remote: IpAddr,
    ) -> Option<&SaContext> {
        self.sa_contexts()
            .filter(|sa| {
                sa.state == SaContextState::Complete
                    && sa.outbound_traffic.ipsec_filter_id == filter_id
                    && sa.addrs() == (local, remote)
            })
            .max_by_key(|sa| sa.id)
    }

    /// The SA context to protect an outbound packet with after classification returned a
    /// tunnel-mode [`ClassifyAction::Callout`] (`FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4/V6`)
    /// for `filter_id`: the newest complete context of that filter, whatever the inner
    /// addresses (the context's addresses are the tunnel endpoints; the filter id stands in
    /// for the tunnel policy).
    pub fn outbound_tunnel_sa_context(&self, filter_id: u64) -> Option<&SaContext> {
        self.sa_contexts()
            .filter(|sa| {
                sa.state == SaContextState::Complete
                    && sa.outbound_traffic.ipsec_filter_id == filter_id
                    && sa.outbound_traffic.traffic_type == IPSEC_TRAFFIC_TYPE_TUNNEL
            })
            .max_by_key(|sa| sa.id)
    }

    /// The SA context whose inbound SPI is `spi`.
    pub fn inbound_sa_context(&self, spi: u32) -> Option<&SaContext> {
        self.sa_contexts()
            .find(|sa| sa.inbound_spi == Some(spi) && sa.inbound.is_some())
    }

    /// Data-path accounting for lifetimes: `bytes` of protected payload and `packets` sent
    /// (outbound) or received (inbound) on SA context `id`. Expiry is processed at once
    /// (unless a write transaction is open, see [`Bfe::tick`]).
    ///
    /// # Errors
    /// `FWP_E_NOT_FOUND` when the context or that direction's bundle does not exist.
    pub fn account_traffic(
        &mut self,
        id: u64,
        direction: FwpDirection,
        bytes: u64,
        packets: u64,
    ) -> Result<(), WfpError> {
        let exists = self
            .committed()
            .sa_contexts
            .get(&id)
            .is_some_and(|sa| sa.bundle(direction).is_some());
        if !exists {
            return Err(FWP_E_NOT_FOUND);
        }
        self.for_each_state(|st| st.sa_contexts.add_usage(id, direction, bytes, packets));
        // Only this bundle's usage changed and the clock did not move (every `tick`, session
        // close and commit processes all lifetimes), so only this bundle can have crossed a
        // threshold: check it alone instead of walking every SA context per packet.
        let now = self.now;
        let due = self
            .committed()
            .sa_contexts
            .get(&id)
            .and_then(|sa| sa.bundle(direction))
            .is_some_and(|b| {
                let (hard, soft) = lifetime_status(b, now);
                hard || (soft && !b.usage.soft_expired)
            });
        if due {
            self.tick(now);
        }
        Ok(())
    }

    /// `IPsecSaContextCreate0`: returns the SA-context id; `inbound_filter_id`, when given,
    /// receives the inbound IPsec filter BFE would use for this traffic (0 if none).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ADD`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_TXN_IN_PROGRESS` (explicit transaction),
    /// `FWP_E_DYNAMIC_SESSION_IN_PROGRESS`, `FWP_E_INVALID_PARAMETER` / `FWP_E_INVALID_ENUMERATOR`
    /// (traffic), `FWP_E_FILTER_NOT_FOUND` (`ipsecFilterId` is not an outbound IPsec filter).
    #[doc(alias = "IPsecSaContextCreate0")]
    pub fn ipsec_sa_context_create0(
        &mut self,
        engine: EngineHandle,
        outbound_traffic: &IpsecTraffic0,
        inbound_filter_id: Option<&mut u64>,
    ) -> Result<u64, WfpError> {
        self.create_impl(engine, (*outbound_traffic).into(), inbound_filter_id)
    }

    /// `IPsecSaContextCreate1` (virtual-interface tunnelling is accepted and ignored).
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_create0`].
    #[doc(alias = "IPsecSaContextCreate1")]
    pub fn ipsec_sa_context_create1(
        &mut self,
        engine: EngineHandle,
        outbound_traffic: &IpsecTraffic1,
        _virtual_if_tunnel_info: Option<&IpsecVirtualIfTunnelInfo0>,
        inbound_filter_id: Option<&mut u64>,
    ) -> Result<u64, WfpError> {
        self.create_impl(engine, *outbound_traffic, inbound_filter_id)
    }

    fn create_impl(
        &mut self,
        engine: EngineHandle,
        t: IpsecTraffic1,
        inbound_filter_id: Option<&mut u64>,
    ) -> Result<u64, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ADD, Access::Write)?;
        if ctx.explicit_txn {
            return Err(FWP_E_TXN_IN_PROGRESS);
        }
        if ctx.dynamic {
            return Err(FWP_E_DYNAMIC_SESSION_IN_PROGRESS);
        }
        let v6 = validate_traffic(&t)?;
        check_ipsec_filter(&self.state, &t, v6, false)?;
        let id = self.next_sa_context_id;
        self.next_sa_context_id += 1;
        let sa = SaContext {
            id,
            outbound_traffic: t,
            inbound_traffic: None,
            state: SaContextState::Created,
            inbound_spi: None,
            inbound_udp: None,
            inbound: None,
            outbound: None,
            grace_deadline: None,
        };
        let addrs = sa.addrs();
        self.state.sa_contexts.insert(id, sa);
        if let Some(out) = inbound_filter_id {
            let probe = ClassifyValues {
                layer: transport_layer(v6, true),
                local_addr: addrs.0,
                remote_addr: addrs.1,
                protocol: t.ip_protocol,
                local_port: t.local_port,
                remote_port: t.remote_port,
                local_address_type: NlAddressType::Unicast,
            };
            *out = match self.state.classify(&probe).action {
                ClassifyAction::Callout { filter_id, .. } => filter_id,
                _ => 0,
            };
        }
        self.sa_change(Some(ctx.session), IPSEC_SA_CONTEXT_EVENT_ADD, id, addrs);
        Ok(id)
    }

    /// `IPsecSaContextGetSpi0`: allocates (or, for identical traffic, repeats) the inbound SPI.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ADD`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_NOT_FOUND`, `FWP_E_INVALID_PARAMETER` /
    /// `FWP_E_INVALID_ENUMERATOR`, `FWP_E_INCOMPATIBLE_SA_STATE`, `FWP_E_TRAFFIC_MISMATCH`,
    /// `FWP_E_FILTER_NOT_FOUND` (`ipsecFilterId` is not an inbound IPsec filter).
    #[doc(alias = "IPsecSaContextGetSpi0")]
    pub fn ipsec_sa_context_get_spi0(
        &mut self,
        engine: EngineHandle,
        id: u64,
        get_spi: &IpsecGetSpi0,
    ) -> Result<u32, WfpError> {
        self.spi_impl(engine, id, &(*get_spi).into(), None)
    }

    /// `IPsecSaContextGetSpi1`.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_get_spi0`].
    #[doc(alias = "IPsecSaContextGetSpi1")]
    pub fn ipsec_sa_context_get_spi1(
        &mut self,
        engine: EngineHandle,
        id: u64,
        get_spi: &IpsecGetSpi1,
    ) -> Result<u32, WfpError> {
        self.spi_impl(engine, id, get_spi, None)
    }

    /// `IPsecSaContextSetSpi0`: the caller chooses the inbound SPI.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_get_spi0`], plus `FWP_E_INVALID_PARAMETER` for an SPI below
    /// 256 and `FWP_E_ALREADY_EXISTS` for one already used on this host;
    /// `FWP_E_INCOMPATIBLE_SA_STATE` once an SPI is assigned.
    #[doc(alias = "IPsecSaContextSetSpi0")]
    pub fn ipsec_sa_context_set_spi0(
        &mut self,
        engine: EngineHandle,
        id: u64,
        get_spi: &IpsecGetSpi1,
        inbound_spi: u32,
    ) -> Result<(), WfpError> {
        self.spi_impl(engine, id, get_spi, Some(inbound_spi))
            .map(|_| ())
    }

    fn spi_impl(
        &mut self,
        engine: EngineHandle,
        id: u64,
        g: &IpsecGetSpi1,
        requested: Option<u32>,
    ) -> Result<u32, WfpError> {
        self.call(engine, FWPM_ACTRL_ADD, Access::Write)?;
        let sa = self.state.sa_contexts.get(&id).ok_or(FWP_E_NOT_FOUND)?;
        let t = &g.inbound_ipsec_traffic;
        let v6 = validate_traffic(t)?;
        if g.ip_version != t.ip_version || (v6 && g.inbound_udp_encapsulation.is_some()) {
            return Err(FWP_E_INVALID_PARAMETER);
        }
        if sa.state == SaContextState::Expiring {
            return Err(FWP_E_INCOMPATIBLE_SA_STATE);
        }
        if let Some(spi) = sa.inbound_spi {
            if requested.is_some() {
                return Err(FWP_E_INCOMPATIBLE_SA_STATE);
            }
            let same_udp = sa.inbound_udp == g.inbound_udp_encapsulation;
            return if sa.inbound_traffic.as_ref() == Some(t) && same_udp {
                Ok(spi)
            } else {
                Err(FWP_E_TRAFFIC_MISMATCH)
            };
        }
        let o = &sa.outbound_traffic;
        if (t.local_address, t.remote_address, t.traffic_type)
            != (o.local_address, o.remote_address, o.traffic_type)
        {
            return Err(FWP_E_TRAFFIC_MISMATCH);
        }
        check_ipsec_filter(&self.state, t, v6, true)?;
        let spi = match requested {
            Some(s) if s < 256 => return Err(FWP_E_INVALID_PARAMETER),
            Some(s) if self.state.inbound_spis.contains(&s) => return Err(FWP_E_ALREADY_EXISTS),
            Some(s) => s,
            None => self.allocate_spi()?,
        };
        self.state.inbound_spis.insert(spi);
        if let Some(sa) = self.state.sa_contexts.get_mut(&id) {
            sa.inbound_spi = Some(spi);
            sa.inbound_traffic = Some(*t);
            sa.inbound_udp = g.inbound_udp_encapsulation;
            sa.state = SaContextState::SpiAssigned;
        }
        Ok(spi)
    }

    fn allocate_spi(&mut self) -> Result<u32, WfpError> {
        for _ in 0..1024 {
            let spi = (self.rng.next_u64() >> 32) as u32;
            if spi >= 256 && !self.state.inbound_spis.contains(&spi) {
                return Ok(spi);
            }
        }
        (256..=u32::MAX)
            .find(|s| !self.state.inbound_spis.contains(s))
            .ok_or(FWP_E_OUT_OF_BOUNDS)
    }
}

impl Bfe {
    /// `IPsecSaContextAddInbound0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ADD`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_NOT_FOUND`, `FWP_E_INCOMPATIBLE_SA_STATE` (no SPI yet, or
    /// already added), the bundle errors of the [module docs](self), and
    /// `FWP_E_INVALID_PARAMETER` when an SA's SPI is not the context's inbound SPI.
    #[doc(alias = "IPsecSaContextAddInbound0")]
    pub fn ipsec_sa_context_add_inbound0(
        &mut self,
        engine: EngineHandle,
        id: u64,
        inbound_bundle: &IpsecSaBundle0,
    ) -> Result<(), WfpError> {
        self.add_impl(
            engine,
            id,
            IpsecSaBundle1::from(inbound_bundle.clone()),
            true,
        )
    }

    /// `IPsecSaContextAddInbound1`.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_add_inbound0`].
    #[doc(alias = "IPsecSaContextAddInbound1")]
    pub fn ipsec_sa_context_add_inbound1(
        &mut self,
        engine: EngineHandle,
        id: u64,
        inbound_bundle: &IpsecSaBundle1,
    ) -> Result<(), WfpError> {
        self.add_impl(engine, id, inbound_bundle.clone(), true)
    }

    /// `IPsecSaContextAddOutbound0`: the bundle carries the peer's SPI and keys.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_add_inbound0`]; `FWP_E_INCOMPATIBLE_SA_STATE` before
    /// AddInbound or when already added.
    #[doc(alias = "IPsecSaContextAddOutbound0")]
    pub fn ipsec_sa_context_add_outbound0(
        &mut self,
        engine: EngineHandle,
        id: u64,
        outbound_bundle: &IpsecSaBundle0,
    ) -> Result<(), WfpError> {
        self.add_impl(
            engine,
            id,
            IpsecSaBundle1::from(outbound_bundle.clone()),
            false,
        )
    }

    /// `IPsecSaContextAddOutbound1`.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_add_outbound0`].
    #[doc(alias = "IPsecSaContextAddOutbound1")]
    pub fn ipsec_sa_context_add_outbound1(
        &mut self,
        engine: EngineHandle,
        id: u64,
        outbound_bundle: &IpsecSaBundle1,
    ) -> Result<(), WfpError> {
        self.add_impl(engine, id, outbound_bundle.clone(), false)
    }

    fn add_impl(
        &mut self,
        engine: EngineHandle,
        id: u64,
        bundle: IpsecSaBundle1,
        inbound: bool,
    ) -> Result<(), WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ADD, Access::Write)?;
        let sa = self.state.sa_contexts.get(&id).ok_or(FWP_E_NOT_FOUND)?;
        let wanted = if inbound {
            SaContextState::SpiAssigned
        } else {
            SaContextState::InboundAdded
        };
        if sa.state != wanted {
            return Err(FWP_E_INCOMPATIBLE_SA_STATE);
        }
        let (traffic, udp) = if inbound {
            (
                sa.inbound_traffic.unwrap_or(sa.outbound_traffic),
                sa.inbound_udp,
            )
        } else {
            (sa.outbound_traffic, None)
        };
        let params = bundle_params(&bundle, &traffic, udp)?;
        if inbound && params.iter().any(|p| Some(p.spi) != sa.inbound_spi) {
            return Err(FWP_E_INVALID_PARAMETER);
        }
        let installed = InstalledBundle {
            bundle,
            params,
            usage: SaLifetimeUsage {
                added_at: self.now,
                ..Default::default()
            },
            udp,
        };
        if let Some(sa) = self.state.sa_contexts.get_mut(&id) {
            if inbound {
                sa.inbound = Some(installed);
                sa.state = SaContextState::InboundAdded;
            } else {
                sa.outbound = Some(installed);
                sa.state = SaContextState::Complete;
            }
        }
        let ev = if inbound {
            SaEvent::InboundAdded { id }
        } else {
            SaEvent::OutboundAdded { id }
        };
        self.emit(Some(ctx.session), Deferred::Event(ev));
        Ok(())
    }

    /// `IPsecSaContextUpdate0`: `flags` is a mask of `IPSEC_SA_DETAILS_UPDATE_*` /
    /// `IPSEC_SA_BUNDLE_UPDATE_*`; the values come from the directions present in `new_values`
    /// (typically a modified `IPsecSaContextGetById1` result). Supported: bundle flags, UDP
    /// encapsulation (IPv4), NAP context, peer private address, main-mode SA id; the keying
    /// module state is accepted and ignored; traffic cannot be changed
    /// (`FWP_E_INVALID_PARAMETER`, an emulator choice).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_WRITE`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_INVALID_FLAGS`, `FWP_E_NOT_FOUND`,
    /// `FWP_E_INVALID_PARAMETER`, `FWP_E_INCOMPATIBLE_SA_STATE` (a direction given that has no
    /// bundle).
    #[doc(alias = "IPsecSaContextUpdate0")]
    pub fn ipsec_sa_context_update0(
        &mut self,
        engine: EngineHandle,
        flags: u64,
        new_values: &IpsecSaContext1,
    ) -> Result<(), WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_WRITE, Access::Write)?;
        if flags & !0x7F != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        let id = new_values.sa_context_id;
        let sa = self.state.sa_contexts.get(&id).ok_or(FWP_E_NOT_FOUND)?;
        if flags == 0 || flags & IPSEC_SA_DETAILS_UPDATE_TRAFFIC != 0 {
            return Err(FWP_E_INVALID_PARAMETER);
        }
        let dirs = [
            (true, &new_values.inbound_sa),
            (false, &new_values.outbound_sa),
        ];
        if dirs.iter().all(|(_, d)| d.is_none()) {
            return Err(FWP_E_INVALID_PARAMETER);
        }
        let v6 = sa.outbound_traffic.ip_version == FWP_IP_VERSION_V6;
        for (inbound, d) in dirs {
            let Some(d) = d else { continue };
            let present = if inbound {
                sa.inbound.is_some()
            } else {
                sa.outbound.is_some()
            };
            if !present {
                return Err(FWP_E_INCOMPATIBLE_SA_STATE);
            }
            if flags & IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION != 0
                && v6
                && d.udp_encapsulation.is_some()
            {
                return Err(FWP_E_INVALID_PARAMETER);
            }
        }
        let Some(sa) = self.state.sa_contexts.get_mut(&id) else {
            return Err(FWP_E_NOT_FOUND);
        };
        for (inbound, d) in [
            (true, &new_values.inbound_sa),
            (false, &new_values.outbound_sa),
        ] {
            let Some(d) = d else { continue };
            let b = if inbound {
                &mut sa.inbound
            } else {
                &mut sa.outbound
            };
            let Some(b) = b else { continue };
            if flags & IPSEC_SA_DETAILS_UPDATE_UDP_ENCAPSULATION != 0 {
                b.udp = d.udp_encapsulation;
                let encap = d.udp_encapsulation.map(|u| UdpEncap {
                    local_port: u.local_udp_encap_port,
                    remote_port: u.remote_udp_encap_port,
                });
                for p in b.params.iter_mut().filter(|p| p.protocol == Protocol::Esp) {
                    p.udp_encap = encap;
                }
            }
            if flags & IPSEC_SA_BUNDLE_UPDATE_FLAGS != 0 {
                b.bundle.flags = d.sa_bundle.flags;
            }
            if flags & IPSEC_SA_BUNDLE_UPDATE_NAP_CONTEXT != 0 {
                b.bundle.nap_context = d.sa_bundle.nap_context;
            }
            if flags & IPSEC_SA_BUNDLE_UPDATE_PEER_V4_PRIVATE_ADDRESS != 0 {
                b.bundle.peer_v4_private_address = d.sa_bundle.peer_v4_private_address;
            }
            if flags & IPSEC_SA_BUNDLE_UPDATE_MM_SA_ID != 0 {
                b.bundle.mm_sa_id = d.sa_bundle.mm_sa_id;
            }
        }
        self.emit(Some(ctx.session), Deferred::Event(SaEvent::Updated { id }));
        Ok(())
    }

    /// `IPsecSaContextExpire0`: removes the outbound SA at once and keeps the inbound one for
    /// [`EXPIRE_GRACE_PERIOD`] of virtual time, after which the context is deleted.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `DELETE`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_NOT_FOUND`, `FWP_E_INCOMPATIBLE_SA_STATE` (no bundle
    /// added yet, or already expiring).
    #[doc(alias = "IPsecSaContextExpire0")]
    pub fn ipsec_sa_context_expire0(
        &mut self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<(), WfpError> {
        let ctx = self.call(engine, DELETE, Access::Write)?;
        let sa = self.state.sa_contexts.get_mut(&id).ok_or(FWP_E_NOT_FOUND)?;
        if !matches!(
            sa.state,
            SaContextState::InboundAdded | SaContextState::Complete
        ) {
            return Err(FWP_E_INCOMPATIBLE_SA_STATE);
        }
        let had_outbound = sa.outbound.take().is_some();
        sa.state = SaContextState::Expiring;
        sa.grace_deadline = Some(self.now.saturating_add(EXPIRE_GRACE_PERIOD));
        if had_outbound {
            self.emit(
                Some(ctx.session),
                Deferred::Event(SaEvent::OutboundRemoved { id }),
            );
        }
        Ok(())
    }

    /// `IPsecSaContextDeleteById0`: deletes the context and both its SAs at once.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `DELETE`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_TXN_IN_PROGRESS`, `FWP_E_DYNAMIC_SESSION_IN_PROGRESS`,
    /// `FWP_E_NOT_FOUND`.
    #[doc(alias = "IPsecSaContextDeleteById0")]
    pub fn ipsec_sa_context_delete_by_id0(
        &mut self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<(), WfpError> {
        let ctx = self.call(engine, DELETE, Access::Write)?;
        if ctx.explicit_txn {
            return Err(FWP_E_TXN_IN_PROGRESS);
        }
        if ctx.dynamic {
            return Err(FWP_E_DYNAMIC_SESSION_IN_PROGRESS);
        }
        if !self.state.sa_contexts.contains_key(&id) {
            return Err(FWP_E_NOT_FOUND);
        }
        self.delete_sa_context(Some(ctx.session), id);
        Ok(())
    }

    fn details1(&self, sa: &SaContext, inbound: bool) -> Option<IpsecSaDetails1> {
        let b = if inbound {
            sa.inbound.as_ref()?
        } else {
            sa.outbound.as_ref()?
        };
        let traffic = if inbound {
            sa.inbound_traffic.unwrap_or(sa.outbound_traffic)
        } else {
            sa.outbound_traffic
        };
        Some(IpsecSaDetails1 {
            ip_version: traffic.ip_version,
            sa_direction: if inbound {
                FWP_DIRECTION_INBOUND
            } else {
                FWP_DIRECTION_OUTBOUND
            },
            traffic,
            sa_bundle: redacted_bundle(&b.bundle),
            udp_encapsulation: b.udp,
            transport_filter: self
                .state
                .filters
                .get(&traffic.ipsec_filter_id)
                .map(|r| r.filter.clone()),
            virtual_if_tunnel_info: IpsecVirtualIfTunnelInfo0::default(),
        })
    }

    fn context1(&self, sa: &SaContext) -> IpsecSaContext1 {
        IpsecSaContext1 {
            sa_context_id: sa.id,
            inbound_sa: self.details1(sa, true),
            outbound_sa: self.details1(sa, false),
        }
    }

    /// `IPsecSaContextGetById1` (key blobs are returned empty).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_READ`), `FWP_E_TIMEOUT`,
    /// `FWP_E_NOT_FOUND`.
    #[doc(alias = "IPsecSaContextGetById1")]
    pub fn ipsec_sa_context_get_by_id1(
        &self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<IpsecSaContext1, WfpError> {
        self.call(engine, FWPM_ACTRL_READ, Access::Read)?;
        let sa = self.state.sa_contexts.get(&id).ok_or(FWP_E_NOT_FOUND)?;
        Ok(self.context1(sa))
    }

    /// `IPsecSaContextGetById0` (key blobs are returned empty).
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_get_by_id1`].
    #[doc(alias = "IPsecSaContextGetById0")]
    pub fn ipsec_sa_context_get_by_id0(
        &self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<IpsecSaContext0, WfpError> {
        self.ipsec_sa_context_get_by_id1(engine, id).map(Into::into)
    }

    /// `IPsecSaContextCreateEnumHandle0`: a snapshot of the contexts matching the template
    /// (by the outbound traffic's local and remote address), in id order.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ENUM`), `FWP_E_TIMEOUT`,
    /// `FWP_E_TYPE_MISMATCH` (a template value that is not an address, mask or range).
    #[doc(alias = "IPsecSaContextCreateEnumHandle0")]
    pub fn ipsec_sa_context_create_enum_handle0(
        &mut self,
        engine: EngineHandle,
        enum_template: Option<&IpsecSaContextEnumTemplate0>,
    ) -> Result<EnumHandle, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ENUM, Access::Read)?;
        if let Some(t) = enum_template {
            validate_template(t)?;
        }
        let remaining: VecDeque<u64> = self
            .state
            .sa_contexts
            .values()
            .filter(|sa| {
                let (l, r) = sa.addrs();
                enum_template.is_none_or(|t| template_matches(t, l, r))
            })
            .map(|sa| sa.id)
            .collect();
        let h = self.fresh_handle();
        self.enum_handles.insert(
            h,
            EnumState {
                session: ctx.session,
                kind: EnumKind::SaContexts,
                remaining,
            },
        );
        Ok(EnumHandle(h))
    }

    /// `IPsecSaContextEnum1`: up to `num_entries_requested` further contexts.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE` (engine or enumeration handle), `ERROR_ACCESS_DENIED`,
    /// `FWP_E_TIMEOUT`.
    #[doc(alias = "IPsecSaContextEnum1")]
    pub fn ipsec_sa_context_enum1(
        &mut self,
        engine: EngineHandle,
        enum_handle: EnumHandle,
        num_entries_requested: u32,
    ) -> Result<Vec<IpsecSaContext1>, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ENUM, Access::Read)?;
        let e = self
            .enum_handles
            .get_mut(&enum_handle.0)
            .ok_or(ERROR_INVALID_HANDLE)?;
        if e.session != ctx.session || !matches!(e.kind, EnumKind::SaContexts) {
            return Err(ERROR_INVALID_HANDLE);
        }
        let mut ids = Vec::new();
        while ids.len() < num_entries_requested as usize {
            let Some(id) = e.remaining.pop_front() else {
                break;
            };
            ids.push(id);
        }
        Ok(ids
            .into_iter()
            .filter_map(|id| self.state.sa_contexts.get(&id))
            .map(|sa| self.context1(sa))
            .collect())
    }

    /// `IPsecSaContextEnum0`.
    ///
    /// # Errors
    /// As [`Bfe::ipsec_sa_context_enum1`].
    #[doc(alias = "IPsecSaContextEnum0")]
    pub fn ipsec_sa_context_enum0(
        &mut self,
        engine: EngineHandle,
        enum_handle: EnumHandle,
        num_entries_requested: u32,
    ) -> Result<Vec<IpsecSaContext0>, WfpError> {
        self.ipsec_sa_context_enum1(engine, enum_handle, num_entries_requested)
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// `IPsecSaContextDestroyEnumHandle0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`.
    #[doc(alias = "IPsecSaContextDestroyEnumHandle0")]
    pub fn ipsec_sa_context_destroy_enum_handle0(
        &mut self,
        engine: EngineHandle,
        enum_handle: EnumHandle,
    ) -> Result<(), WfpError> {
        self.destroy_enum_handle(engine, enum_handle, false)
    }

    /// `IPsecSaContextSubscribe0`: `callback` is called synchronously for every matching
    /// change (after the commit of the transaction that made it). The C `context` argument is
    /// whatever the closure captures.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_SUBSCRIBE`),
    /// `FWP_E_TIMEOUT`, `FWP_E_TXN_IN_PROGRESS`, `FWP_E_INVALID_FLAGS`, `FWP_E_TYPE_MISMATCH`.
    #[doc(alias = "IPsecSaContextSubscribe0")]
    pub fn ipsec_sa_context_subscribe0(
        &mut self,
        engine: EngineHandle,
        subscription: &IpsecSaContextSubscription0,
        callback: SaContextCallback,
    ) -> Result<SubscriptionHandle, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_SUBSCRIBE, Access::Read)?;
        if ctx.explicit_txn {
            return Err(FWP_E_TXN_IN_PROGRESS);
        }
        if subscription.flags & !IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        if let Some(t) = &subscription.enum_template {
            validate_template(t)?;
        }
        let h = self.fresh_handle();
        self.subscriptions.insert(
            h,
            Subscription {
                session: ctx.session,
                template: subscription.enum_template.clone(),
                flags: subscription.flags,
                callback,
            },
        );
        Ok(SubscriptionHandle(h))
    }

    /// `IPsecSaContextUnsubscribe0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE` (engine handle, or a subscription of another session).
    #[doc(alias = "IPsecSaContextUnsubscribe0")]
    pub fn ipsec_sa_context_unsubscribe0(
        &mut self,
        engine: EngineHandle,
        events_handle: SubscriptionHandle,
    ) -> Result<(), WfpError> {
        if !self.sessions.contains_key(&engine.0) {
            return Err(ERROR_INVALID_HANDLE);
        }
        match self.subscriptions.get(&events_handle.0) {
            Some(s) if s.session == engine.0 => {
                self.subscriptions.remove(&events_handle.0);
                Ok(())
            }
            _ => Err(ERROR_INVALID_HANDLE),
        }
    }

    /// `IPsecSaContextSubscriptionsGet0`: every subscription of every session.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_READ`), `FWP_E_TIMEOUT`.
    #[doc(alias = "IPsecSaContextSubscriptionsGet0")]
    pub fn ipsec_sa_context_subscriptions_get0(
        &self,
        engine: EngineHandle,
    ) -> Result<Vec<IpsecSaContextSubscription0>, WfpError> {
        self.call(engine, FWPM_ACTRL_READ, Access::Read)?;
        Ok(self
            .subscriptions
            .values()
            .map(|s| IpsecSaContextSubscription0 {
                enum_template: s.template.clone(),
                flags: s.flags,
                session_key: self.sessions.get(&s.session).map_or(Guid::NULL, |x| x.key),
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn soft_threshold_is_ninety_percent_rounded_up() {
        assert_eq!(crossed(0, 5), (false, false));
        assert_eq!(crossed(10, 8), (false, false));
        assert_eq!(crossed(10, 9), (false, true));
        assert_eq!(crossed(10, 10), (true, true));
        assert_eq!(crossed(1, 0), (false, false));
        assert_eq!(crossed(1, 1), (true, true));
        assert_eq!(crossed(u64::MAX, u64::MAX), (true, true));
    }

    fn auth(id: IpsecAuthTransformId0, len: usize) -> IpsecSaAuthInformation0 {
        IpsecSaAuthInformation0 {
            auth_transform: IpsecAuthTransform0 {
                auth_transform_id: id,
                crypto_module_id: None,
            },
            auth_key: Key::new(&vec![1; len]),
        }
    }

    fn cipher(id: IpsecCipherTransformId0, len: usize) -> IpsecSaCipherInformation0 {
        IpsecSaCipherInformation0 {
            cipher_transform: IpsecCipherTransform0 {
                cipher_transform_id: id,
                crypto_module_id: None,
            },
            cipher_key: Key::new(&vec![1; len]),
        }
    }

    fn sa(t: IpsecSaTransform) -> IpsecSa0 {
        IpsecSa0 {
            spi: 0x1000,
            sa_transform: t,
        }
    }

    #[test]
    fn transform_mapping() {
        let gcm = |c, a, l| {
            IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
                sa_cipher_information: cipher(c, l),
                sa_auth_information: auth(a, l),
            })
        };
        let p = sa_params(&sa(gcm(
            IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_256,
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256,
            36,
        )))
        .unwrap();
        assert_eq!(
            (p.encryption, p.integrity, p.encryption_key.len()),
            (Encryption::AesGcm256, Integrity::None, 36)
        );
        assert_eq!(
            sa_params(&sa(gcm(
                IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_256,
                20
            ))),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            sa_params(&sa(gcm(
                IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128,
                IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
                20
            ))),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            sa_params(&sa(gcm(
                IPSEC_CIPHER_TRANSFORM_ID_AES_128,
                IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
                20
            ))),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            sa_params(&sa(gcm(
                IPSEC_CIPHER_TRANSFORM_ID_CBC_3DES,
                IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
                24
            ))),
            Err(FWP_E_INVALID_CIPHER_TRANSFORM)
        );
        assert_eq!(
            sa_params(&sa(gcm(
                IPSEC_CIPHER_TRANSFORM_ID_AES_128,
                IPSEC_AUTH_TRANSFORM_ID_HMAC_MD5_96,
                16
            ))),
            Err(FWP_E_INVALID_AUTH_TRANSFORM)
        );
        let cbc = IpsecSaTransform::EspAuthAndCipher(IpsecSaAuthAndCipherInformation0 {
            sa_cipher_information: cipher(IPSEC_CIPHER_TRANSFORM_ID_AES_256, 32),
            sa_auth_information: auth(IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_256_128, 32),
        });
        let p = sa_params(&sa(cbc)).unwrap();
        assert_eq!(
            (p.encryption, p.integrity),
            (Encryption::AesCbc256, Integrity::HmacSha256_128)
        );
        let p = sa_params(&sa(IpsecSaTransform::EspAuth(auth(
            IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
            20,
        ))))
        .unwrap();
        assert_eq!(
            (p.protocol, p.encryption),
            (Protocol::Esp, Encryption::Null)
        );
        let p = sa_params(&sa(IpsecSaTransform::EspAuth(auth(
            IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128,
            20,
        ))))
        .unwrap();
        assert_eq!(
            (p.encryption, p.integrity),
            (Encryption::None, Integrity::AesGmac128)
        );
        let p = sa_params(&sa(IpsecSaTransform::Ah(auth(
            IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
            20,
        ))))
        .unwrap();
        assert_eq!(
            (p.protocol, p.integrity),
            (Protocol::Ah, Integrity::HmacSha1_96)
        );
        assert_eq!(
            sa_params(&sa(IpsecSaTransform::EspCipher(cipher(
                IPSEC_CIPHER_TRANSFORM_ID_AES_128,
                16
            )))),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            sa_params(&sa(IpsecSaTransform::EspCipher(cipher(
                IPSEC_CIPHER_TRANSFORM_ID_CBC_DES,
                8
            )))),
            Err(FWP_E_INVALID_CIPHER_TRANSFORM)
        );
        assert_eq!(
            sa_params(&sa(IpsecSaTransform::EspAuthFw(auth(
                IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
                20
            )))),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        // GCM with different cipher and auth key blobs.
        let mut ac = IpsecSaAuthAndCipherInformation0 {
            sa_cipher_information: cipher(IPSEC_CIPHER_TRANSFORM_ID_GCM_AES_128, 20),
            sa_auth_information: auth(IPSEC_AUTH_TRANSFORM_ID_GCM_AES_128, 20),
        };
        ac.sa_auth_information.auth_key = Key::new(&[2; 20]);
        assert_eq!(
            sa_params(&sa(IpsecSaTransform::EspAuthAndCipher(ac))),
            Err(FWP_E_INVALID_PARAMETER)
        );
    }

    #[test]
    fn bundle_shape_and_key_lengths() {
        let t = IpsecTraffic1 {
            ip_version: FWP_IP_VERSION_V4,
            local_address: IpsecAddress::V4(0xC000_0201),
            remote_address: IpsecAddress::V4(0xC000_0202),
            ..Default::default()
        };
        let esp = || {
            sa(IpsecSaTransform::EspAuth(auth(
                IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
                20,
            )))
        };
        let ah = || {
            sa(IpsecSaTransform::Ah(auth(
                IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
                20,
            )))
        };
        let b = |l: Vec<IpsecSa0>| IpsecSaBundle1 {
            sa_list: l,
            ip_version: FWP_IP_VERSION_V4,
            ..Default::default()
        };
        assert_eq!(
            bundle_params(&b(vec![]), &t, None),
            Err(FWP_E_ZERO_LENGTH_ARRAY)
        );
        assert_eq!(
            bundle_params(&b(vec![esp(), ah(), ah()]), &t, None),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            bundle_params(&b(vec![ah(), esp()]), &t, None),
            Err(FWP_E_INVALID_TRANSFORM_COMBINATION)
        );
        assert_eq!(
            bundle_params(&b(vec![esp(), ah()]), &t, None).map(|v| v.len()),
            Ok(2)
        );
        let short = sa(IpsecSaTransform::Ah(auth(
            IPSEC_AUTH_TRANSFORM_ID_HMAC_SHA_1_96,
            19,
        )));
        assert_eq!(
            bundle_params(&b(vec![short]), &t, None),
            Err(FWP_E_INVALID_PARAMETER)
        );
        let mut v6 = b(vec![esp()]);
        v6.ip_version = FWP_IP_VERSION_V6;
        assert_eq!(bundle_params(&v6, &t, None), Err(FWP_E_INVALID_PARAMETER));
        let low = IpsecSa0 { spi: 255, ..esp() };
        assert_eq!(
            bundle_params(&b(vec![low]), &t, None),
            Err(FWP_E_INVALID_PARAMETER)
        );
        let tun = IpsecTraffic1 {
            traffic_type: IPSEC_TRAFFIC_TYPE_TUNNEL,
            ..t
        };
        let p = bundle_params(&b(vec![esp()]), &tun, None).unwrap();
        assert_eq!(p[0].mode, Mode::Tunnel);
        assert_eq!(
            p[0].tunnel.map(|e| e.remote),
            Some(IpsecAddress::V4(0xC000_0202).to_ip())
        );
        let udp = IpsecV4UdpEncapsulation0 {
            local_udp_encap_port: 4500,
            remote_udp_encap_port: 4501,
        };
        let p = bundle_params(&b(vec![esp(), ah()]), &t, Some(udp)).unwrap();
        assert_eq!(p[0].udp_encap.map(|u| u.remote_port), Some(4501));
        assert_eq!(p[1].udp_encap, None);
    }

    #[test]
    fn templates() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let t = IpsecSaContextEnumTemplate0 {
            local_sub_net: FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask::new(
                "192.0.2.0".parse().unwrap(),
                24,
            )),
            remote_sub_net: FwpConditionValue0::Empty,
        };
        assert!(template_matches(&t, a, a));
        assert!(!template_matches(&t, b, a));
        let t6 = IpsecSaContextEnumTemplate0 {
            local_sub_net: FwpConditionValue0::Empty,
            remote_sub_net: FwpConditionValue0::V6AddrMask(FwpV6AddrAndMask::new(
                "2001:db8::".parse().unwrap(),
                32,
            )),
        };
        assert!(template_matches(&t6, a, b));
        assert!(!template_matches(&t6, a, a));
        assert_eq!(
            validate_template(&IpsecSaContextEnumTemplate0 {
                local_sub_net: FwpConditionValue0::Uint8(1),
                ..Default::default()
            }),
            Err(FWP_E_TYPE_MISMATCH)
        );
    }
}
