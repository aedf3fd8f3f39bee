//! Sublayers, filters, weights, arbitration and indexed classification.
//!
//! # Layers and callouts
//! The emulator knows the four IPsec transport layers (`FWPM_LAYER_{INBOUND,OUTBOUND}_TRANSPORT_V{4,6}`);
//! any other layer GUID gives `FWP_E_LAYER_NOT_FOUND`. Tunnel-mode policy uses the same layers
//! with the `FWPM_CALLOUT_IPSEC_{INBOUND,OUTBOUND}_TUNNEL_V{4,6}` callouts. The built-in IPsec
//! callouts are the only callouts; one used at a layer it does not apply to gives
//! `FWP_E_INCOMPATIBLE_LAYER`, an unknown callout key `FWP_E_CALLOUT_NOT_FOUND`. The IPsec
//! callouts always decide, so only `FWP_ACTION_CALLOUT_TERMINATING` may name them
//! (`FWP_ACTION_CALLOUT_INSPECTION` / `_UNKNOWN` give `FWP_E_INVALID_ACTION_TYPE`).
//!
//! # Conditions
//! `FWPM_CONDITION_IP_{LOCAL,REMOTE}_ADDRESS` (`FWP_UINT32` host order or `FWP_V4_ADDR_MASK` at
//! the V4 layers, `FWP_BYTE_ARRAY16_TYPE` or `FWP_V6_ADDR_MASK` at the V6 layers, or an
//! `FWP_RANGE0` of the scalar type), `IP_LOCAL_ADDRESS_TYPE` and `IP_PROTOCOL` (`FWP_UINT8`),
//! `IP_{LOCAL,REMOTE}_PORT` (`FWP_UINT16`). Match types EQUAL, NOT_EQUAL, GREATER, LESS,
//! GREATER_OR_EQUAL, LESS_OR_EQUAL (scalars), EQUAL / NOT_EQUAL (masks: inside / outside the
//! prefix) and RANGE (inclusive). Conditions on the same field are ORed, different fields
//! ANDed (WFP rule). Other fields give `FWP_E_CONDITION_NOT_FOUND`.
//!
//! # Weights
//! `FWP_UINT64`: used verbatim. `FWP_EMPTY`: automatic, in `[0, 2^60)`. `FWP_UINT8` `r` (0-15):
//! `r << 60` plus the automatic low 60 bits. The automatic part (an emulator choice; Windows
//! documents only the range) grows with specificity: `distinct condition fields << 56 |
//! min(sum of address prefix bits, 255) << 48`. Equal effective weights: the older filter (lower
//! filter id) wins.
//!
//! # Arbitration (`[FWPDOC]` filter-arbitration, derived as in `ndis-wfp-abi.md` §6)
//! Every sublayer of the layer is evaluated, highest sublayer weight first. Inside a sublayer
//! the matching terminating filters are visited by descending weight and the first one
//! decides for that sublayer (`FWP_ACTION_CONTINUE` filters never decide). Across sublayers:
//! a Block (a plain filter block is a hard block) overrides everything; otherwise an IPsec
//! callout verdict (from the highest-weight sublayer that returned one) overrides a plain
//! Permit, because the IPsec callout's own permit/block is decided later by the data path
//! (whether the packet is/was protected) and a soft plain permit cannot veto it; otherwise
//! Permit. Nothing matching: Permit (no filter).
//!
//! # Index
//! Per layer and sublayer, terminating filters sit in three weight-ordered lists: by exact
//! remote address (filters whose every remote-address condition is one address), else by
//! exact protocol, else a wildcard list. A lookup scans the packet's remote-address bucket,
//! its protocol bucket and the wildcard list, each only until its entries can no longer beat
//! the best match found, so the Manual SA shape (one filter per peer) costs O(1) buckets
//! instead of a scan over every filter. A proptest checks it against a linear evaluator.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ipsec::hash::KeyHashMap;

use super::cache::{GenerationCache, next_generation};
use super::consts::*;
use super::engine::{Access, Bfe, EngineHandle, EnumHandle, EnumKind, EnumState, State};
use super::error::*;
use super::types::*;

/// Layer facts: IP version and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LayerInfo {
    pub(crate) v6: bool,
    pub(crate) inbound: bool,
}

pub(crate) fn layer_info(layer: Guid) -> Option<LayerInfo> {
    match layer {
        FWPM_LAYER_INBOUND_TRANSPORT_V4 => Some(LayerInfo {
            v6: false,
            inbound: true,
        }),
        FWPM_LAYER_INBOUND_TRANSPORT_V6 => Some(LayerInfo {
            v6: true,
            inbound: true,
        }),
        FWPM_LAYER_OUTBOUND_TRANSPORT_V4 => Some(LayerInfo {
            v6: false,
            inbound: false,
        }),
        FWPM_LAYER_OUTBOUND_TRANSPORT_V6 => Some(LayerInfo {
            v6: true,
            inbound: false,
        }),
        _ => None,
    }
}

/// The transport layer for an IP version and direction.
pub(crate) fn transport_layer(v6: bool, inbound: bool) -> Guid {
    match (v6, inbound) {
        (false, true) => FWPM_LAYER_INBOUND_TRANSPORT_V4,
        (true, true) => FWPM_LAYER_INBOUND_TRANSPORT_V6,
        (false, false) => FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
        (true, false) => FWPM_LAYER_OUTBOUND_TRANSPORT_V6,
    }
}

/// A built-in IPsec callout: the layer it applies to, and whether it is a tunnel callout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CalloutInfo {
    pub(crate) layer: Guid,
    pub(crate) tunnel: bool,
}

pub(crate) fn callout_info(key: Guid) -> Option<CalloutInfo> {
    let (layer, tunnel) = match key {
        FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4 => (FWPM_LAYER_INBOUND_TRANSPORT_V4, false),
        FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6 => (FWPM_LAYER_INBOUND_TRANSPORT_V6, false),
        FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4 => (FWPM_LAYER_OUTBOUND_TRANSPORT_V4, false),
        FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6 => (FWPM_LAYER_OUTBOUND_TRANSPORT_V6, false),
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4 => (FWPM_LAYER_INBOUND_TRANSPORT_V4, true),
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6 => (FWPM_LAYER_INBOUND_TRANSPORT_V6, true),
        FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4 => (FWPM_LAYER_OUTBOUND_TRANSPORT_V4, true),
        FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6 => (FWPM_LAYER_OUTBOUND_TRANSPORT_V6, true),
        FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4
        | FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4 => (FWPM_LAYER_IPFORWARD_V4, true),
        FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6
        | FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6 => (FWPM_LAYER_IPFORWARD_V6, true),
        _ => return None,
    };
    Some(CalloutInfo { layer, tunnel })
}

/// A condition field the emulator classifies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Field {
    LocalAddr = 0,
    RemoteAddr = 1,
    LocalAddrType = 2,
    Protocol = 3,
    LocalPort = 4,
    RemotePort = 5,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Matcher {
    Cmp(Op, u128),
    Prefix {
        addr: u128,
        mask: u128,
        negate: bool,
    },
    Range(u128, u128),
}

impl Matcher {
    fn matches(self, v: u128) -> bool {
        match self {
            Matcher::Cmp(op, x) => match op {
                Op::Eq => v == x,
                Op::Ne => v != x,
                Op::Gt => v > x,
                Op::Lt => v < x,
                Op::Ge => v >= x,
                Op::Le => v <= x,
            },
            Matcher::Prefix { addr, mask, negate } => ((v & mask) == addr) != negate,
            Matcher::Range(lo, hi) => lo <= v && v <= hi,
        }
    }
}

/// What a filter decides when it is the first match of its sublayer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Permit,
    Block,
    Callout(Guid),
    Continue,
}

/// Condition groups: per field, the ORed matchers.
type Groups = Vec<(Field, Vec<Matcher>)>;

/// Per sublayer (ordered), its best candidate: (weight order, filter id, decision).
type SublayerBest = BTreeMap<(Reverse<u16>, Guid), (Reverse<u64>, u64, Decision)>;

/// A filter's conditions in evaluable form.
#[derive(Clone, Debug)]
pub(crate) struct CompiledFilter {
    groups: Groups,
    pub(crate) decision: Decision,
}

/// The values of one packet, by [`Field`] (`None`: an address of the other family).
type FieldValues = [Option<u128>; 6];

impl CompiledFilter {
    fn matches(&self, vals: &FieldValues) -> bool {
        self.groups.iter().all(|(f, ms)| match vals[*f as usize] {
            Some(v) => ms.iter().any(|m| m.matches(v)),
            None => false,
        })
    }

    /// The exact values of `field` if every condition on it is an equality (index keys).
    fn exact_values(&self, field: Field, full_mask: u128) -> Option<Vec<u128>> {
        let (_, ms) = self.groups.iter().find(|(f, _)| *f == field)?;
        ms.iter()
            .map(|m| match *m {
                Matcher::Cmp(Op::Eq, x) => Some(x),
                Matcher::Prefix {
                    addr,
                    mask,
                    negate: false,
                } if mask == full_mask => Some(addr),
                _ => None,
            })
            .collect()
    }
}

/// A stored sublayer.
#[derive(Clone, Debug)]
pub(crate) struct SublayerRecord {
    pub(crate) sublayer: FwpmSubLayer0,
    /// The dynamic session that owns it.
    pub(crate) owner: Option<u64>,
    pub(crate) builtin: bool,
}

/// A stored filter.
#[derive(Clone, Debug)]
pub(crate) struct FilterRecord {
    /// As returned by `FwpmFilterGetById0` (`filter_id`, `effective_weight`, `sub_layer_key`
    /// filled in).
    pub(crate) filter: FwpmFilter0,
    pub(crate) owner: Option<u64>,
    pub(crate) weight: u64,
    pub(crate) compiled: Arc<CompiledFilter>,
}

#[derive(Clone, Debug)]
struct Entry {
    weight: u64,
    id: u64,
    filter: Arc<CompiledFilter>,
}

impl Entry {
    fn order(&self) -> (Reverse<u64>, u64) {
        (Reverse(self.weight), self.id)
    }
}

fn insert_sorted(list: &mut Vec<Entry>, e: Entry) {
    let pos = list.partition_point(|x| x.order() < e.order());
    list.insert(pos, e);
}

fn remove_id(list: &mut Vec<Entry>, id: u64) {
    list.retain(|e| e.id != id);
}

#[derive(Clone, Debug)]
struct SublayerIndex {
    key: Guid,
    weight: u16,
    by_remote: KeyHashMap<u128, Vec<Entry>>,
    by_protocol: KeyHashMap<u128, Vec<Entry>>,
    wildcard: Vec<Entry>,
    count: usize,
}

enum Placement {
    Remote(Vec<u128>),
    Protocol(Vec<u128>),
    Wildcard,
}

fn placement(f: &CompiledFilter, v6: bool) -> Placement {
    let full = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    if let Some(addrs) = f.exact_values(Field::RemoteAddr, full) {
        return Placement::Remote(addrs);
    }
    if let Some(protos) = f.exact_values(Field::Protocol, u128::MAX) {
        return Placement::Protocol(protos);
    }
    Placement::Wildcard
}

impl SublayerIndex {
    fn best(&self, vals: &FieldValues) -> Option<&Entry> {
        let empty: &[Entry] = &[];
        let remote = vals[Field::RemoteAddr as usize]
            .and_then(|r| self.by_remote.get(&r))
            .map_or(empty, Vec::as_slice);
        let proto = vals[Field::Protocol as usize]
            .and_then(|p| self.by_protocol.get(&p))
            .map_or(empty, Vec::as_slice);
        let mut best: Option<&Entry> = None;
        for list in [remote, proto, self.wildcard.as_slice()] {
            for e in list {
                if best.is_some_and(|b| e.order() >= b.order()) {
                    break;
                }
                if e.filter.matches(vals) {
                    best = Some(e);
                    break;
                }
            }
        }
        best
    }
}

/// Per layer, its sublayers (highest weight first) with their filter lists.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClassifyIndex {
    layers: KeyHashMap<Guid, Vec<SublayerIndex>>,
    /// Identifies the index's content (see [`super::cache`]): a fresh value on every change.
    generation: u64,
}

impl ClassifyIndex {
    fn insert(
        &mut self,
        layer: Guid,
        v6: bool,
        sublayer: Guid,
        sublayer_weight: u16,
        rec: &FilterRecord,
    ) {
        if rec.compiled.decision == Decision::Continue {
            return;
        }
        self.generation = next_generation();
        let subs = self.layers.entry(layer).or_default();
        let pos = match subs.iter().position(|s| s.key == sublayer) {
            Some(p) => p,
            None => {
                let ord = (Reverse(sublayer_weight), sublayer);
                let p = subs.partition_point(|s| (Reverse(s.weight), s.key) < ord);
                subs.insert(
                    p,
                    SublayerIndex {
                        key: sublayer,
                        weight: sublayer_weight,
                        by_remote: KeyHashMap::default(),
                        by_protocol: KeyHashMap::default(),
                        wildcard: Vec::new(),
                        count: 0,
                    },
                );
                p
            }
        };
        let Some(sl) = subs.get_mut(pos) else { return };
        let entry = Entry {
            weight: rec.weight,
            id: rec.filter.filter_id,
            filter: rec.compiled.clone(),
        };
        match placement(&rec.compiled, v6) {
            Placement::Remote(keys) => {
                for k in keys {
                    insert_sorted(sl.by_remote.entry(k).or_default(), entry.clone());
                }
            }
            Placement::Protocol(keys) => {
                for k in keys {
                    insert_sorted(sl.by_protocol.entry(k).or_default(), entry.clone());
                }
            }
            Placement::Wildcard => insert_sorted(&mut sl.wildcard, entry),
        }
        sl.count += 1;
    }

    fn remove(&mut self, layer: Guid, v6: bool, sublayer: Guid, rec: &FilterRecord) {
        if rec.compiled.decision == Decision::Continue {
            return;
        }
        self.generation = next_generation();
        let Some(subs) = self.layers.get_mut(&layer) else {
            return;
        };
        let Some(pos) = subs.iter().position(|s| s.key == sublayer) else {
            return;
        };
        let Some(sl) = subs.get_mut(pos) else { return };
        let id = rec.filter.filter_id;
        match placement(&rec.compiled, v6) {
            Placement::Remote(keys) => {
                for k in keys {
                    if let Some(l) = sl.by_remote.get_mut(&k) {
                        remove_id(l, id);
                        if l.is_empty() {
                            sl.by_remote.remove(&k);
                        }
                    }
                }
            }
            Placement::Protocol(keys) => {
                for k in keys {
                    if let Some(l) = sl.by_protocol.get_mut(&k) {
                        remove_id(l, id);
                        if l.is_empty() {
                            sl.by_protocol.remove(&k);
                        }
                    }
                }
            }
            Placement::Wildcard => remove_id(&mut sl.wildcard, id),
        }
        sl.count = sl.count.saturating_sub(1);
        if sl.count == 0 {
            subs.remove(pos);
        }
    }
}

/// A data path's cache of classifications: per flow (the [`ClassifyValues`]), the result of
/// [`Bfe::classify`] under the [`Bfe::classify_generation`] it was computed at. A lookup hits
/// only when both the values and the generation are equal, so any filter change (add, delete,
/// commit, abort, dynamic session close) is seen by the next packet: the cache never answers
/// differently from [`Bfe::classify`] (a proptest checks it). Direct-mapped, 64 slots,
/// allocated once; no allocation per lookup.
#[derive(Clone, Debug)]
pub struct ClassifyCache(GenerationCache<ClassifyValues, ClassifyResult>);

impl Default for ClassifyCache {
    fn default() -> Self {
        ClassifyCache(GenerationCache::new(64))
    }
}

impl ClassifyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`Bfe::classify`] of `values`, from the cache when `bfe`'s filters are unchanged since
    /// the flow was last classified.
    pub fn classify(&mut self, bfe: &Bfe, values: &ClassifyValues) -> ClassifyResult {
        self.0
            .get_or_compute(bfe.classify_generation(), values, || bfe.classify(values))
    }

    /// Lookups answered from the cache and lookups that classified (hits, misses).
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.0.hits_and_misses()
    }
}

/// The packet values a classification looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassifyValues {
    /// The layer (`FWPM_LAYER_*`).
    pub layer: Guid,
    /// `FWPM_CONDITION_IP_LOCAL_ADDRESS`.
    pub local_addr: IpAddr,
    /// `FWPM_CONDITION_IP_REMOTE_ADDRESS`.
    pub remote_addr: IpAddr,
    /// `FWPM_CONDITION_IP_PROTOCOL`.
    pub protocol: u8,
    /// `FWPM_CONDITION_IP_LOCAL_PORT` (0 for protocols without ports).
    pub local_port: u16,
    /// `FWPM_CONDITION_IP_REMOTE_PORT`.
    pub remote_port: u16,
    /// `FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE`.
    pub local_address_type: NlAddressType,
}

/// The winning action of a classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClassifyAction {
    /// Let the packet through in clear.
    Permit,
    /// Drop the packet.
    Block,
    /// A built-in IPsec callout decides: the data path protects (outbound) or requires
    /// protection (inbound) according to the callout and the SA contexts of `filter_id`.
    Callout {
        /// The callout (`FWPM_CALLOUT_IPSEC_*`).
        callout_key: Guid,
        /// The filter that selected it (the `ipsecFilterId` of matching SA contexts).
        filter_id: u64,
    },
}

/// The outcome of [`Bfe::classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassifyResult {
    /// The winning action.
    pub action: ClassifyAction,
    /// The filter that decided (`None`: nothing matched, default Permit).
    pub filter_id: Option<u64>,
}

fn addr_value(a: IpAddr, v6: bool) -> Option<u128> {
    match (a, v6) {
        (IpAddr::V4(a), false) => Some(u128::from(u32::from(a))),
        (IpAddr::V6(a), true) => Some(u128::from(a)),
        _ => None,
    }
}

fn field_values(v: &ClassifyValues, v6: bool) -> FieldValues {
    [
        addr_value(v.local_addr, v6),
        addr_value(v.remote_addr, v6),
        Some(u128::from(v.local_address_type as u8)),
        Some(u128::from(v.protocol)),
        Some(u128::from(v.local_port)),
        Some(u128::from(v.remote_port)),
    ]
}

/// Combine per-sublayer winners (in sublayer order) into the final verdict.
fn arbitrate<'a>(winners: impl Iterator<Item = (u64, Decision)> + 'a) -> ClassifyResult {
    let mut permit = None;
    let mut callout = None;
    for (id, d) in winners {
        match d {
            Decision::Block => {
                return ClassifyResult {
                    action: ClassifyAction::Block,
                    filter_id: Some(id),
                };
            }
            Decision::Permit => {
                permit.get_or_insert(id);
            }
            Decision::Callout(k) => {
                callout.get_or_insert((k, id));
            }
            Decision::Continue => {}
        }
    }
    if let Some((callout_key, filter_id)) = callout {
        return ClassifyResult {
            action: ClassifyAction::Callout {
                callout_key,
                filter_id,
            },
            filter_id: Some(filter_id),
        };
    }
    ClassifyResult {
        action: ClassifyAction::Permit,
        filter_id: permit,
    }
}

impl State {
    /// Indexed classification.
    pub(crate) fn classify(&self, v: &ClassifyValues) -> ClassifyResult {
        let Some(info) = layer_info(v.layer) else {
            return ClassifyResult {
                action: ClassifyAction::Permit,
                filter_id: None,
            };
        };
        let vals = field_values(v, info.v6);
        let subs = self
            .index
            .layers
            .get(&v.layer)
            .map_or(&[][..], Vec::as_slice);
        arbitrate(
            subs.iter()
                .filter_map(|s| s.best(&vals))
                .map(|e| (e.id, e.filter.decision)),
        )
    }

    /// Reference classification: a linear scan over every filter (tests compare it with the
    /// index).
    pub(crate) fn classify_linear(&self, v: &ClassifyValues) -> ClassifyResult {
        let Some(info) = layer_info(v.layer) else {
            return ClassifyResult {
                action: ClassifyAction::Permit,
                filter_id: None,
            };
        };
        let vals = field_values(v, info.v6);
        let mut best: SublayerBest = BTreeMap::new();
        for rec in self.filters.values() {
            let f = &rec.filter;
            if f.layer_key != v.layer
                || rec.compiled.decision == Decision::Continue
                || !rec.compiled.matches(&vals)
            {
                continue;
            }
            let w = self
                .sublayers
                .get(&f.sub_layer_key)
                .map_or(0, |s| s.sublayer.weight);
            let cand = (Reverse(rec.weight), f.filter_id, rec.compiled.decision);
            let slot = best.entry((Reverse(w), f.sub_layer_key)).or_insert(cand);
            if (cand.0, cand.1) < (slot.0, slot.1) {
                *slot = cand;
            }
        }
        arbitrate(best.into_values().map(|(_, id, d)| (id, d)))
    }

    pub(crate) fn insert_filter(&mut self, rec: FilterRecord) {
        let f = &rec.filter;
        let v6 = layer_info(f.layer_key).is_some_and(|i| i.v6);
        let sw = self
            .sublayers
            .get(&f.sub_layer_key)
            .map_or(0, |s| s.sublayer.weight);
        self.index
            .insert(f.layer_key, v6, f.sub_layer_key, sw, &rec);
        self.filter_keys.insert(f.filter_key, f.filter_id);
        self.filters.insert(f.filter_id, rec);
    }

    pub(crate) fn remove_filter(&mut self, id: u64) -> Option<FilterRecord> {
        let rec = self.filters.remove(&id)?;
        let f = &rec.filter;
        let v6 = layer_info(f.layer_key).is_some_and(|i| i.v6);
        self.index.remove(f.layer_key, v6, f.sub_layer_key, &rec);
        self.filter_keys.remove(&f.filter_key);
        Some(rec)
    }

    /// Delete the filters and sublayers a dynamic session owns.
    pub(crate) fn remove_session_objects(&mut self, session: u64) {
        let ids: Vec<u64> = self
            .filters
            .iter()
            .filter(|(_, r)| r.owner == Some(session))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove_filter(id);
        }
        self.sublayers.retain(|_, s| s.owner != Some(session));
    }
}

fn scalar(field: Field, v: &FwpConditionValue0, v6: bool) -> Result<u128, WfpError> {
    match (field, v) {
        (Field::LocalAddr | Field::RemoteAddr, FwpConditionValue0::Uint32(a)) if !v6 => {
            Ok(u128::from(*a))
        }
        (Field::LocalAddr | Field::RemoteAddr, FwpConditionValue0::ByteArray16(a)) if v6 => {
            Ok(u128::from_be_bytes(*a))
        }
        (Field::LocalAddrType | Field::Protocol, FwpConditionValue0::Uint8(x)) => {
            Ok(u128::from(*x))
        }
        (Field::LocalPort | Field::RemotePort, FwpConditionValue0::Uint16(x)) => Ok(u128::from(*x)),
        _ => Err(FWP_E_TYPE_MISMATCH),
    }
}

fn to_condition_value(v: &FwpValue0) -> FwpConditionValue0 {
    match v {
        FwpValue0::Empty => FwpConditionValue0::Empty,
        FwpValue0::Uint8(x) => FwpConditionValue0::Uint8(*x),
        FwpValue0::Uint16(x) => FwpConditionValue0::Uint16(*x),
        FwpValue0::Uint32(x) => FwpConditionValue0::Uint32(*x),
        FwpValue0::Uint64(x) => FwpConditionValue0::Uint64(*x),
        FwpValue0::Int32(x) => FwpConditionValue0::Int32(*x),
        FwpValue0::ByteArray16(x) => FwpConditionValue0::ByteArray16(*x),
        FwpValue0::ByteBlob(x) => FwpConditionValue0::ByteBlob(x.clone()),
        FwpValue0::UnicodeString(x) => FwpConditionValue0::UnicodeString(x.clone()),
    }
}

/// Compile one condition: its field, matcher and address prefix bits (for the auto weight).
fn compile_condition(
    c: &FwpmFilterCondition0,
    v6: bool,
) -> Result<(Field, Matcher, u32), WfpError> {
    let field = match c.field_key {
        FWPM_CONDITION_IP_LOCAL_ADDRESS => Field::LocalAddr,
        FWPM_CONDITION_IP_REMOTE_ADDRESS => Field::RemoteAddr,
        FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE => Field::LocalAddrType,
        FWPM_CONDITION_IP_PROTOCOL => Field::Protocol,
        FWPM_CONDITION_IP_LOCAL_PORT => Field::LocalPort,
        FWPM_CONDITION_IP_REMOTE_PORT => Field::RemotePort,
        _ => return Err(FWP_E_CONDITION_NOT_FOUND),
    };
    let mt = c.match_type;
    if mt.0 >= FWP_MATCH_TYPE_MAX.0 {
        return Err(FWP_E_INVALID_ENUMERATOR);
    }
    let is_addr = matches!(field, Field::LocalAddr | Field::RemoteAddr);
    let full_bits = if v6 { 128 } else { 32 };
    match &c.condition_value {
        FwpConditionValue0::Range(r) => {
            if mt != FWP_MATCH_RANGE {
                return Err(FWP_E_MATCH_TYPE_MISMATCH);
            }
            let lo = scalar(field, &to_condition_value(&r.value_low), v6)?;
            let hi = scalar(field, &to_condition_value(&r.value_high), v6)?;
            if lo > hi {
                return Err(FWP_E_INVALID_RANGE);
            }
            Ok((field, Matcher::Range(lo, hi), 0))
        }
        _ if mt == FWP_MATCH_RANGE => Err(FWP_E_MATCH_TYPE_MISMATCH),
        FwpConditionValue0::V4AddrMask(m) => {
            if !is_addr || v6 {
                return Err(FWP_E_TYPE_MISMATCH);
            }
            let negate = mask_match(mt)?;
            if m.mask.leading_ones() + m.mask.trailing_zeros() != 32 {
                return Err(FWP_E_INVALID_NET_MASK);
            }
            let mask = u128::from(m.mask);
            Ok((
                field,
                Matcher::Prefix {
                    addr: u128::from(m.addr) & mask,
                    mask,
                    negate,
                },
                m.mask.leading_ones(),
            ))
        }
        FwpConditionValue0::V6AddrMask(m) => {
            if !is_addr || !v6 {
                return Err(FWP_E_TYPE_MISMATCH);
            }
            let negate = mask_match(mt)?;
            if m.prefix_length > 128 {
                return Err(FWP_E_INVALID_NET_MASK);
            }
            let mask = if m.prefix_length == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(m.prefix_length))
            };
            let addr = u128::from_be_bytes(m.addr) & mask;
            Ok((
                field,
                Matcher::Prefix { addr, mask, negate },
                u32::from(m.prefix_length),
            ))
        }
        v => {
            let x = scalar(field, v, v6)?;
            let op = match mt {
                FWP_MATCH_EQUAL => Op::Eq,
                FWP_MATCH_NOT_EQUAL => Op::Ne,
                FWP_MATCH_GREATER => Op::Gt,
                FWP_MATCH_LESS => Op::Lt,
                FWP_MATCH_GREATER_OR_EQUAL => Op::Ge,
                FWP_MATCH_LESS_OR_EQUAL => Op::Le,
                _ => return Err(FWP_E_MATCH_TYPE_MISMATCH),
            };
            let bits = if is_addr && op == Op::Eq {
                full_bits
            } else {
                0
            };
            Ok((field, Matcher::Cmp(op, x), bits))
        }
    }
}

fn mask_match(mt: FwpMatchType) -> Result<bool, WfpError> {
    match mt {
        FWP_MATCH_EQUAL => Ok(false),
        FWP_MATCH_NOT_EQUAL => Ok(true),
        _ => Err(FWP_E_MATCH_TYPE_MISMATCH),
    }
}

/// Validate and compile a filter's conditions; returns the automatic low weight too.
fn compile_conditions(conds: &[FwpmFilterCondition0], v6: bool) -> Result<(Groups, u64), WfpError> {
    let mut groups: BTreeMap<Field, Vec<Matcher>> = BTreeMap::new();
    let mut prefix_bits: u64 = 0;
    for c in conds {
        let (f, m, bits) = compile_condition(c, v6)?;
        groups.entry(f).or_default().push(m);
        prefix_bits += u64::from(bits);
    }
    let auto = (groups.len() as u64) << 56 | prefix_bits.min(255) << 48;
    Ok((groups.into_iter().collect(), auto))
}

fn effective_weight(w: &FwpValue0, auto: u64) -> Result<u64, WfpError> {
    match w {
        FwpValue0::Empty => Ok(auto & FWPM_AUTO_WEIGHT_MAX),
        FwpValue0::Uint8(r) if *r <= FWPM_WEIGHT_RANGE_MAX => {
            Ok(u64::from(*r) << FWPM_AUTO_WEIGHT_BITS | (auto & FWPM_AUTO_WEIGHT_MAX))
        }
        FwpValue0::Uint64(x) => Ok(*x),
        _ => Err(FWP_E_INVALID_WEIGHT),
    }
}

/// Emulator weights of the built-in sublayers (Windows does not document them).
const BUILTIN_SUBLAYERS: [(Guid, &str, u16); 5] = [
    (
        FWPM_SUBLAYER_UNIVERSAL,
        "Universal sublayer (default)",
        0x8000,
    ),
    (FWPM_SUBLAYER_IPSEC_TUNNEL, "IPsec tunnel sublayer", 0x1000),
    (
        FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL,
        "IPsec forward outbound tunnel sublayer",
        0x1000,
    ),
    (
        FWPM_SUBLAYER_IPSEC_SECURITY_REALM,
        "IPsec security realm sublayer",
        0x2000,
    ),
    (
        FWPM_SUBLAYER_IPSEC_DOSP,
        "IPsec DoS protection sublayer",
        0x3000,
    ),
];

const ALLOWED_FILTER_FLAGS: u32 = FWPM_FILTER_FLAG_PERSISTENT
    | FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT
    | FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    | FWPM_FILTER_FLAG_INDEXED;

impl Bfe {
    pub(crate) fn install_builtin_sublayers(&mut self) {
        for (key, name, weight) in BUILTIN_SUBLAYERS {
            let sublayer = FwpmSubLayer0 {
                sub_layer_key: key,
                display_data: FwpmDisplayData0::named(name),
                weight,
                ..Default::default()
            };
            self.state.sublayers.insert(
                key,
                SublayerRecord {
                    sublayer,
                    owner: None,
                    builtin: true,
                },
            );
        }
    }

    /// Reference classifier: the same arbitration as [`Bfe::classify`] by a linear scan over
    /// every committed filter (slow; for tests and cross-checks of the index).
    pub fn classify_reference(&self, values: &ClassifyValues) -> ClassifyResult {
        self.committed().classify_linear(values)
    }

    /// Classify a packet against the committed filters (the data path's view): the winning
    /// action per the arbitration rules in the [module docs](self).
    pub fn classify(&self, values: &ClassifyValues) -> ClassifyResult {
        self.committed().classify(values)
    }

    /// Identifies what [`Bfe::classify`] answers: equal values mean every classification
    /// gives the same result. It changes whenever a committed filter that can decide is added
    /// or removed (and on commit or abort when that changes the committed set); values are
    /// unique across every `Bfe` in the process. Data paths cache classifications under it.
    pub fn classify_generation(&self) -> u64 {
        self.committed().index.generation
    }

    /// `FwpmSubLayerAdd0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ADD`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_INVALID_FLAGS`,
    /// `FWP_E_PROVIDER_NOT_FOUND`, `FWP_E_ALREADY_EXISTS`.
    #[doc(alias = "FwpmSubLayerAdd0")]
    pub fn fwpm_sub_layer_add0(
        &mut self,
        engine: EngineHandle,
        sub_layer: &FwpmSubLayer0,
        _sd: Option<&SecurityDescriptor>,
    ) -> Result<Guid, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ADD, Access::Write)?;
        if sub_layer.display_data.name.is_none() {
            return Err(FWP_E_NULL_DISPLAY_NAME);
        }
        if sub_layer.flags & !FWPM_SUBLAYER_FLAG_PERSISTENT != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        if ctx.dynamic && sub_layer.flags & FWPM_SUBLAYER_FLAG_PERSISTENT != 0 {
            return Err(FWP_E_LIFETIME_MISMATCH);
        }
        if sub_layer.provider_key.is_some() {
            return Err(FWP_E_PROVIDER_NOT_FOUND);
        }
        if self.state.sublayers.contains_key(&sub_layer.sub_layer_key) {
            return Err(FWP_E_ALREADY_EXISTS);
        }
        let key = if sub_layer.sub_layer_key.is_null() {
            self.random_guid()
        } else {
            sub_layer.sub_layer_key
        };
        let mut stored = sub_layer.clone();
        stored.sub_layer_key = key;
        let owner = ctx.dynamic.then_some(ctx.session);
        self.state.sublayers.insert(
            key,
            SublayerRecord {
                sublayer: stored,
                owner,
                builtin: false,
            },
        );
        Ok(key)
    }

    /// `FwpmSubLayerDeleteByKey0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `DELETE`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_SUBLAYER_NOT_FOUND`, `FWP_E_BUILTIN_OBJECT`,
    /// `FWP_E_IN_USE` (filters still use it).
    #[doc(alias = "FwpmSubLayerDeleteByKey0")]
    pub fn fwpm_sub_layer_delete_by_key0(
        &mut self,
        engine: EngineHandle,
        key: &Guid,
    ) -> Result<(), WfpError> {
        self.call(engine, DELETE, Access::Write)?;
        let rec = self
            .state
            .sublayers
            .get(key)
            .ok_or(FWP_E_SUBLAYER_NOT_FOUND)?;
        if rec.builtin {
            return Err(FWP_E_BUILTIN_OBJECT);
        }
        if self
            .state
            .filters
            .values()
            .any(|f| f.filter.sub_layer_key == *key)
        {
            return Err(FWP_E_IN_USE);
        }
        self.state.sublayers.remove(key);
        Ok(())
    }

    /// `FwpmSubLayerGetByKey0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_READ`), `FWP_E_TIMEOUT`,
    /// `FWP_E_SUBLAYER_NOT_FOUND`.
    #[doc(alias = "FwpmSubLayerGetByKey0")]
    pub fn fwpm_sub_layer_get_by_key0(
        &self,
        engine: EngineHandle,
        key: &Guid,
    ) -> Result<FwpmSubLayer0, WfpError> {
        self.call(engine, FWPM_ACTRL_READ, Access::Read)?;
        self.state
            .sublayers
            .get(key)
            .map(|s| s.sublayer.clone())
            .ok_or(FWP_E_SUBLAYER_NOT_FOUND)
    }

    /// `FwpmFilterAdd0`: returns the filter's LUID (`UINT64 *id`), assigned by the engine
    /// (monotonic, never reused).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ADD`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_NULL_DISPLAY_NAME`, `FWP_E_INVALID_FLAGS`,
    /// `FWP_E_LIFETIME_MISMATCH` (persistent filter in a dynamic session, or a sublayer owned by
    /// another dynamic session), `FWP_E_PROVIDER_NOT_FOUND`, `FWP_E_LAYER_NOT_FOUND`,
    /// `FWP_E_SUBLAYER_NOT_FOUND`, `FWP_E_ALREADY_EXISTS` (same `filterKey`),
    /// `FWP_E_CONDITION_NOT_FOUND`, `FWP_E_INVALID_ENUMERATOR`, `FWP_E_MATCH_TYPE_MISMATCH`,
    /// `FWP_E_TYPE_MISMATCH`, `FWP_E_INVALID_NET_MASK`, `FWP_E_INVALID_RANGE`,
    /// `FWP_E_INVALID_ACTION_TYPE`, `FWP_E_CALLOUT_NOT_FOUND`, `FWP_E_INCOMPATIBLE_LAYER`,
    /// `FWP_E_INVALID_WEIGHT`. Nothing is changed on error.
    #[doc(alias = "FwpmFilterAdd0")]
    pub fn fwpm_filter_add0(
        &mut self,
        engine: EngineHandle,
        filter: &FwpmFilter0,
        _sd: Option<&SecurityDescriptor>,
    ) -> Result<u64, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ADD, Access::Write)?;
        if filter.display_data.name.is_none() {
            return Err(FWP_E_NULL_DISPLAY_NAME);
        }
        if filter.flags & !ALLOWED_FILTER_FLAGS != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        if ctx.dynamic && filter.flags & FWPM_FILTER_FLAG_PERSISTENT != 0 {
            return Err(FWP_E_LIFETIME_MISMATCH);
        }
        if filter.provider_key.is_some() {
            return Err(FWP_E_PROVIDER_NOT_FOUND);
        }
        let info = layer_info(filter.layer_key).ok_or(FWP_E_LAYER_NOT_FOUND)?;
        let sub_key = if filter.sub_layer_key.is_null() {
            FWPM_SUBLAYER_UNIVERSAL
        } else {
            filter.sub_layer_key
        };
        let sub = self
            .state
            .sublayers
            .get(&sub_key)
            .ok_or(FWP_E_SUBLAYER_NOT_FOUND)?;
        if sub
            .owner
            .is_some_and(|o| Some(o) != ctx.dynamic.then_some(ctx.session))
        {
            return Err(FWP_E_LIFETIME_MISMATCH);
        }
        if !filter.filter_key.is_null() && self.state.filter_keys.contains_key(&filter.filter_key) {
            return Err(FWP_E_ALREADY_EXISTS);
        }
        let (groups, auto) = compile_conditions(&filter.filter_condition, info.v6)?;
        let decision = match filter.action.action_type {
            FWP_ACTION_PERMIT => Decision::Permit,
            FWP_ACTION_BLOCK => Decision::Block,
            FWP_ACTION_CONTINUE => Decision::Continue,
            FWP_ACTION_CALLOUT_TERMINATING
            | FWP_ACTION_CALLOUT_INSPECTION
            | FWP_ACTION_CALLOUT_UNKNOWN => {
                let c = callout_info(filter.action.callout_key).ok_or(FWP_E_CALLOUT_NOT_FOUND)?;
                if c.layer != filter.layer_key {
                    return Err(FWP_E_INCOMPATIBLE_LAYER);
                }
                if filter.action.action_type != FWP_ACTION_CALLOUT_TERMINATING {
                    return Err(FWP_E_INVALID_ACTION_TYPE);
                }
                Decision::Callout(filter.action.callout_key)
            }
            _ => return Err(FWP_E_INVALID_ACTION_TYPE),
        };
        if filter.flags & FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED != 0
            && !matches!(decision, Decision::Callout(_))
        {
            return Err(FWP_E_INVALID_FLAGS);
        }
        let weight = effective_weight(&filter.weight, auto)?;
        // Validation done: apply (nothing below can fail).
        let id = self.next_filter_id;
        self.next_filter_id += 1;
        let key = if filter.filter_key.is_null() {
            self.random_guid()
        } else {
            filter.filter_key
        };
        let mut stored = filter.clone();
        stored.filter_key = key;
        stored.sub_layer_key = sub_key;
        stored.filter_id = id;
        stored.effective_weight = FwpValue0::Uint64(weight);
        let rec = FilterRecord {
            filter: stored,
            owner: ctx.dynamic.then_some(ctx.session),
            weight,
            compiled: Arc::new(CompiledFilter { groups, decision }),
        };
        self.state.insert_filter(rec);
        Ok(id)
    }

    /// `FwpmFilterDeleteById0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `DELETE`), `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`, `FWP_E_FILTER_NOT_FOUND`.
    #[doc(alias = "FwpmFilterDeleteById0")]
    pub fn fwpm_filter_delete_by_id0(
        &mut self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<(), WfpError> {
        self.call(engine, DELETE, Access::Write)?;
        self.state
            .remove_filter(id)
            .map(|_| ())
            .ok_or(FWP_E_FILTER_NOT_FOUND)
    }

    /// `FwpmFilterDeleteByKey0`.
    ///
    /// # Errors
    /// As [`Bfe::fwpm_filter_delete_by_id0`].
    #[doc(alias = "FwpmFilterDeleteByKey0")]
    pub fn fwpm_filter_delete_by_key0(
        &mut self,
        engine: EngineHandle,
        key: &Guid,
    ) -> Result<(), WfpError> {
        self.call(engine, DELETE, Access::Write)?;
        let id = *self
            .state
            .filter_keys
            .get(key)
            .ok_or(FWP_E_FILTER_NOT_FOUND)?;
        self.state
            .remove_filter(id)
            .map(|_| ())
            .ok_or(FWP_E_FILTER_NOT_FOUND)
    }

    /// `FwpmFilterGetById0`: the stored filter with `filterId`, `effectiveWeight` and the
    /// resolved `subLayerKey` filled in.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_READ`), `FWP_E_TIMEOUT`,
    /// `FWP_E_FILTER_NOT_FOUND`.
    #[doc(alias = "FwpmFilterGetById0")]
    pub fn fwpm_filter_get_by_id0(
        &self,
        engine: EngineHandle,
        id: u64,
    ) -> Result<FwpmFilter0, WfpError> {
        self.call(engine, FWPM_ACTRL_READ, Access::Read)?;
        self.state
            .filters
            .get(&id)
            .map(|r| r.filter.clone())
            .ok_or(FWP_E_FILTER_NOT_FOUND)
    }

    /// `FwpmFilterGetByKey0`.
    ///
    /// # Errors
    /// As [`Bfe::fwpm_filter_get_by_id0`].
    #[doc(alias = "FwpmFilterGetByKey0")]
    pub fn fwpm_filter_get_by_key0(
        &self,
        engine: EngineHandle,
        key: &Guid,
    ) -> Result<FwpmFilter0, WfpError> {
        self.call(engine, FWPM_ACTRL_READ, Access::Read)?;
        let id = self
            .state
            .filter_keys
            .get(key)
            .ok_or(FWP_E_FILTER_NOT_FOUND)?;
        self.state
            .filters
            .get(id)
            .map(|r| r.filter.clone())
            .ok_or(FWP_E_FILTER_NOT_FOUND)
    }

    /// `FwpmFilterCreateEnumHandle0`: a snapshot of the filters matching the template (by
    /// layer), in filter-id order.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED` (needs `FWPM_ACTRL_ENUM`), `FWP_E_TIMEOUT`.
    #[doc(alias = "FwpmFilterCreateEnumHandle0")]
    pub fn fwpm_filter_create_enum_handle0(
        &mut self,
        engine: EngineHandle,
        enum_template: Option<&FwpmFilterEnumTemplate0>,
    ) -> Result<EnumHandle, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ENUM, Access::Read)?;
        let layer = enum_template.map_or(Guid::NULL, |t| t.layer_key);
        let remaining: VecDeque<u64> = self
            .state
            .filters
            .values()
            .filter(|r| layer.is_null() || r.filter.layer_key == layer)
            .map(|r| r.filter.filter_id)
            .collect();
        let h = self.fresh_handle();
        self.enum_handles.insert(
            h,
            EnumState {
                session: ctx.session,
                kind: EnumKind::Filters,
                remaining,
            },
        );
        Ok(EnumHandle(h))
    }

    /// `FwpmFilterEnum0`: up to `num_entries_requested` further filters (fewer at the end;
    /// filters deleted since the handle was created are skipped).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE` (engine or enumeration handle), `ERROR_ACCESS_DENIED`,
    /// `FWP_E_TIMEOUT`.
    #[doc(alias = "FwpmFilterEnum0")]
    pub fn fwpm_filter_enum0(
        &mut self,
        engine: EngineHandle,
        enum_handle: EnumHandle,
        num_entries_requested: u32,
    ) -> Result<Vec<FwpmFilter0>, WfpError> {
        let ctx = self.call(engine, FWPM_ACTRL_ENUM, Access::Read)?;
        let e = self
            .enum_handles
            .get_mut(&enum_handle.0)
            .ok_or(ERROR_INVALID_HANDLE)?;
        if e.session != ctx.session || !matches!(e.kind, EnumKind::Filters) {
            return Err(ERROR_INVALID_HANDLE);
        }
        let mut out = Vec::new();
        while out.len() < num_entries_requested as usize {
            let Some(id) = e.remaining.pop_front() else {
                break;
            };
            if let Some(r) = self.state.filters.get(&id) {
                out.push(r.filter.clone());
            }
        }
        Ok(out)
    }

    /// `FwpmFilterDestroyEnumHandle0`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`.
    #[doc(alias = "FwpmFilterDestroyEnumHandle0")]
    pub fn fwpm_filter_destroy_enum_handle0(
        &mut self,
        engine: EngineHandle,
        enum_handle: EnumHandle,
    ) -> Result<(), WfpError> {
        self.destroy_enum_handle(engine, enum_handle, true)
    }

    pub(crate) fn destroy_enum_handle(
        &mut self,
        engine: EngineHandle,
        h: EnumHandle,
        filters: bool,
    ) -> Result<(), WfpError> {
        if !self.sessions.contains_key(&engine.0) {
            return Err(ERROR_INVALID_HANDLE);
        }
        match self.enum_handles.get(&h.0) {
            Some(e) if e.session == engine.0 && matches!(e.kind, EnumKind::Filters) == filters => {
                self.enum_handles.remove(&h.0);
                Ok(())
            }
            _ => Err(ERROR_INVALID_HANDLE),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    use crate::wfp::CallerToken;

    fn open(bfe: &mut Bfe) -> EngineHandle {
        bfe.fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, None)
            .unwrap()
    }

    fn filter(
        layer: Guid,
        conds: Vec<FwpmFilterCondition0>,
        action: FwpActionType,
        callout: Guid,
    ) -> FwpmFilter0 {
        FwpmFilter0 {
            display_data: FwpmDisplayData0::named("test filter"),
            layer_key: layer,
            filter_condition: conds,
            action: FwpmAction0 {
                action_type: action,
                callout_key: callout,
            },
            ..Default::default()
        }
    }

    fn v4(a: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, a)
    }

    fn pkt(layer: Guid, local: IpAddr, remote: IpAddr, protocol: u8) -> ClassifyValues {
        ClassifyValues {
            layer,
            local_addr: local,
            remote_addr: remote,
            protocol,
            local_port: 0,
            remote_port: 0,
            local_address_type: NlAddressType::Unicast,
        }
    }

    fn cond(field: Guid, v: FwpConditionValue0) -> FwpmFilterCondition0 {
        FwpmFilterCondition0::new(field, FWP_MATCH_EQUAL, v)
    }

    #[test]
    fn add_validation_errors() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let l = FWPM_LAYER_OUTBOUND_TRANSPORT_V4;
        let ok = filter(l, vec![], FWP_ACTION_PERMIT, Guid::NULL);
        let mut f = ok.clone();
        f.display_data.name = None;
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_NULL_DISPLAY_NAME)
        );
        let mut f = ok.clone();
        f.layer_key = FWPM_LAYER_ALE_AUTH_CONNECT_V4;
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_LAYER_NOT_FOUND)
        );
        let mut f = ok.clone();
        f.sub_layer_key = Guid(99);
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_SUBLAYER_NOT_FOUND)
        );
        let mut f = ok.clone();
        f.weight = FwpValue0::Uint8(16);
        assert_eq!(bfe.fwpm_filter_add0(h, &f, None), Err(FWP_E_INVALID_WEIGHT));
        f.weight = FwpValue0::Uint32(1);
        assert_eq!(bfe.fwpm_filter_add0(h, &f, None), Err(FWP_E_INVALID_WEIGHT));
        let mut f = ok.clone();
        f.flags = FWPM_FILTER_FLAG_BOOTTIME;
        assert_eq!(bfe.fwpm_filter_add0(h, &f, None), Err(FWP_E_INVALID_FLAGS));
        f.flags = FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED;
        assert_eq!(bfe.fwpm_filter_add0(h, &f, None), Err(FWP_E_INVALID_FLAGS));
        let mut f = ok.clone();
        f.provider_key = Some(FWPM_PROVIDER_IKEEXT);
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_PROVIDER_NOT_FOUND)
        );
        let mut f = ok.clone();
        f.action.action_type = FWP_ACTION_NONE;
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_INVALID_ACTION_TYPE)
        );
        let f = filter(l, vec![], FWP_ACTION_CALLOUT_TERMINATING, Guid(5));
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_CALLOUT_NOT_FOUND)
        );
        let f = filter(
            l,
            vec![],
            FWP_ACTION_CALLOUT_TERMINATING,
            FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
        );
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_INCOMPATIBLE_LAYER)
        );
        let f = filter(
            l,
            vec![],
            FWP_ACTION_CALLOUT_TERMINATING,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
        );
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_INCOMPATIBLE_LAYER)
        );
        let f = filter(
            l,
            vec![],
            FWP_ACTION_CALLOUT_INSPECTION,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
        );
        assert_eq!(
            bfe.fwpm_filter_add0(h, &f, None),
            Err(FWP_E_INVALID_ACTION_TYPE)
        );
        // Conditions.
        let bad = |c: FwpmFilterCondition0| filter(l, vec![c], FWP_ACTION_PERMIT, Guid::NULL);
        let cases = [
            (
                cond(
                    FWPM_CONDITION_IP_LOCAL_INTERFACE,
                    FwpConditionValue0::Uint64(1),
                ),
                FWP_E_CONDITION_NOT_FOUND,
            ),
            (
                cond(FWPM_CONDITION_IP_PROTOCOL, FwpConditionValue0::Uint16(1)),
                FWP_E_TYPE_MISMATCH,
            ),
            (
                cond(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FwpConditionValue0::v6(Ipv6Addr::LOCALHOST),
                ),
                FWP_E_TYPE_MISMATCH,
            ),
            (
                cond(FWPM_CONDITION_IP_LOCAL_PORT, FwpConditionValue0::Uint8(1)),
                FWP_E_TYPE_MISMATCH,
            ),
            (
                cond(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask {
                        addr: 0,
                        mask: 0xFF00_FF00,
                    }),
                ),
                FWP_E_INVALID_NET_MASK,
            ),
            (
                cond(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FwpConditionValue0::Range(FwpRange0 {
                        value_low: FwpValue0::Uint8(9),
                        value_high: FwpValue0::Uint8(1),
                    }),
                ),
                FWP_E_MATCH_TYPE_MISMATCH,
            ),
            (
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FWP_MATCH_RANGE,
                    FwpConditionValue0::Range(FwpRange0 {
                        value_low: FwpValue0::Uint8(9),
                        value_high: FwpValue0::Uint8(1),
                    }),
                ),
                FWP_E_INVALID_RANGE,
            ),
            (
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FWP_MATCH_RANGE,
                    FwpConditionValue0::Uint8(1),
                ),
                FWP_E_MATCH_TYPE_MISMATCH,
            ),
            (
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FWP_MATCH_FLAGS_ALL_SET,
                    FwpConditionValue0::Uint8(1),
                ),
                FWP_E_MATCH_TYPE_MISMATCH,
            ),
            (
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FwpMatchType(40),
                    FwpConditionValue0::Uint8(1),
                ),
                FWP_E_INVALID_ENUMERATOR,
            ),
            (
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FWP_MATCH_GREATER,
                    FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask::new(v4(0), 24)),
                ),
                FWP_E_MATCH_TYPE_MISMATCH,
            ),
        ];
        for (c, e) in cases {
            assert_eq!(
                bfe.fwpm_filter_add0(h, &bad(c.clone()), None),
                Err(e),
                "{c:?}"
            );
        }
        assert!(bfe.state.filters.is_empty(), "no half-applied change");
        // Same key twice.
        let mut f = ok.clone();
        f.filter_key = Guid(0xF00D);
        bfe.fwpm_filter_add0(h, &f, None).unwrap();
        assert_eq!(bfe.fwpm_filter_add0(h, &f, None), Err(FWP_E_ALREADY_EXISTS));
        assert_eq!(bfe.fwpm_filter_delete_by_key0(h, &Guid(0xF00D)), Ok(()));
        assert_eq!(
            bfe.fwpm_filter_delete_by_key0(h, &Guid(0xF00D)),
            Err(FWP_E_FILTER_NOT_FOUND)
        );
    }

    #[test]
    fn ids_weights_get_and_delete() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let l = FWPM_LAYER_INBOUND_TRANSPORT_V4;
        let mut f = filter(l, vec![], FWP_ACTION_PERMIT, Guid::NULL);
        let a = bfe.fwpm_filter_add0(h, &f, None).unwrap();
        f.weight = FwpValue0::Uint8(FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS);
        let b = bfe.fwpm_filter_add0(h, &f, None).unwrap();
        f.weight = FwpValue0::Uint64(0xff00);
        let c = bfe.fwpm_filter_add0(h, &f, None).unwrap();
        assert!(a < b && b < c);
        let got = bfe.fwpm_filter_get_by_id0(h, b).unwrap();
        assert_eq!(got.filter_id, b);
        assert_eq!(got.sub_layer_key, FWPM_SUBLAYER_UNIVERSAL);
        let FwpValue0::Uint64(w) = got.effective_weight else {
            panic!("weight type")
        };
        assert!(w >= 0xC000_0000_0000_0000);
        let FwpValue0::Uint64(wa) = bfe.fwpm_filter_get_by_id0(h, a).unwrap().effective_weight
        else {
            panic!()
        };
        assert!(wa < 1 << 60);
        assert_eq!(
            bfe.fwpm_filter_get_by_id0(h, c).unwrap().effective_weight,
            FwpValue0::Uint64(0xff00)
        );
        bfe.fwpm_filter_delete_by_id0(h, b).unwrap();
        assert_eq!(
            bfe.fwpm_filter_get_by_id0(h, b),
            Err(FWP_E_FILTER_NOT_FOUND)
        );
        assert_eq!(
            bfe.fwpm_filter_delete_by_id0(h, b),
            Err(FWP_E_FILTER_NOT_FOUND)
        );
        let d = bfe.fwpm_filter_add0(h, &f, None).unwrap();
        assert!(d > c, "LUIDs are never reused");
    }

    #[test]
    fn exemption_beats_callout_and_block_beats_permit_across_sublayers() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let l = FWPM_LAYER_OUTBOUND_TRANSPORT_V4;
        let callout = filter(
            l,
            vec![
                cond(
                    FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
                    FwpConditionValue0::Uint8(NlAddressType::Unicast as u8),
                ),
                cond(
                    FWPM_CONDITION_IP_LOCAL_ADDRESS,
                    FwpConditionValue0::v4(v4(1)),
                ),
                cond(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FwpConditionValue0::v4(v4(2)),
                ),
            ],
            FWP_ACTION_CALLOUT_TERMINATING,
            FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
        );
        let cid = bfe.fwpm_filter_add0(h, &callout, None).unwrap();
        let mut icmp = filter(
            l,
            vec![
                cond(
                    FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
                    FwpConditionValue0::Uint8(NlAddressType::Unicast as u8),
                ),
                cond(
                    FWPM_CONDITION_IP_PROTOCOL,
                    FwpConditionValue0::Uint8(IPPROTO_ICMP),
                ),
            ],
            FWP_ACTION_PERMIT,
            Guid::NULL,
        );
        icmp.weight = FwpValue0::Uint8(FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS);
        let pid = bfe.fwpm_filter_add0(h, &icmp, None).unwrap();
        let local = IpAddr::V4(v4(1));
        let remote = IpAddr::V4(v4(2));
        assert_eq!(
            bfe.classify(&pkt(l, local, remote, IPPROTO_ICMP)),
            ClassifyResult {
                action: ClassifyAction::Permit,
                filter_id: Some(pid)
            }
        );
        assert_eq!(
            bfe.classify(&pkt(l, local, remote, IPPROTO_TCP)).action,
            ClassifyAction::Callout {
                callout_key: FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
                filter_id: cid
            }
        );
        // Another host: nothing matches but the ICMP exemption.
        assert_eq!(
            bfe.classify(&pkt(l, local, IpAddr::V4(v4(3)), IPPROTO_TCP))
                .filter_id,
            None
        );
        // A BLOCK in another (lower) sublayer overrides the PERMIT of the default sublayer.
        let sl = FwpmSubLayer0 {
            display_data: FwpmDisplayData0::named("low"),
            weight: 1,
            ..Default::default()
        };
        let sk = bfe.fwpm_sub_layer_add0(h, &sl, None).unwrap();
        let mut block = filter(
            l,
            vec![cond(
                FWPM_CONDITION_IP_PROTOCOL,
                FwpConditionValue0::Uint8(IPPROTO_ICMP),
            )],
            FWP_ACTION_BLOCK,
            Guid::NULL,
        );
        block.sub_layer_key = sk;
        let bid = bfe.fwpm_filter_add0(h, &block, None).unwrap();
        assert_eq!(
            bfe.classify(&pkt(l, local, remote, IPPROTO_ICMP)),
            ClassifyResult {
                action: ClassifyAction::Block,
                filter_id: Some(bid)
            }
        );
        assert_eq!(bfe.fwpm_sub_layer_delete_by_key0(h, &sk), Err(FWP_E_IN_USE));
        assert_eq!(
            bfe.fwpm_sub_layer_delete_by_key0(h, &FWPM_SUBLAYER_UNIVERSAL),
            Err(FWP_E_BUILTIN_OBJECT)
        );
        bfe.fwpm_filter_delete_by_id0(h, bid).unwrap();
        bfe.fwpm_sub_layer_delete_by_key0(h, &sk).unwrap();
        assert_eq!(
            bfe.fwpm_sub_layer_get_by_key0(h, &sk),
            Err(FWP_E_SUBLAYER_NOT_FOUND)
        );
        // A permit in another sublayer does not override the IPsec callout.
        let sk2 = bfe
            .fwpm_sub_layer_add0(
                h,
                &FwpmSubLayer0 {
                    display_data: FwpmDisplayData0::named("hi"),
                    weight: 0xFFFF,
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        let mut permit_all = filter(l, vec![], FWP_ACTION_PERMIT, Guid::NULL);
        permit_all.sub_layer_key = sk2;
        bfe.fwpm_filter_add0(h, &permit_all, None).unwrap();
        assert!(matches!(
            bfe.classify(&pkt(l, local, remote, IPPROTO_TCP)).action,
            ClassifyAction::Callout { .. }
        ));
    }

    #[test]
    fn weight_forms_order_filters_in_a_sublayer() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let l = FWPM_LAYER_INBOUND_TRANSPORT_V6;
        let mut explicit = filter(l, vec![], FWP_ACTION_BLOCK, Guid::NULL);
        explicit.weight = FwpValue0::Uint64(0xB000_0000_0000_0000);
        let e = bfe.fwpm_filter_add0(h, &explicit, None).unwrap();
        let mut range = filter(l, vec![], FWP_ACTION_PERMIT, Guid::NULL);
        range.weight = FwpValue0::Uint8(0xC);
        let r = bfe.fwpm_filter_add0(h, &range, None).unwrap();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(bfe.classify(&pkt(l, a, b, IPPROTO_TCP)).filter_id, Some(r));
        bfe.fwpm_filter_delete_by_id0(h, r).unwrap();
        assert_eq!(bfe.classify(&pkt(l, a, b, IPPROTO_TCP)).filter_id, Some(e));
        // Auto weight: more specific beats less specific.
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let general = filter(l, vec![], FWP_ACTION_BLOCK, Guid::NULL);
        bfe.fwpm_filter_add0(h, &general, None).unwrap();
        let specific = filter(
            l,
            vec![cond(
                FWPM_CONDITION_IP_REMOTE_ADDRESS,
                FwpConditionValue0::ip(b),
            )],
            FWP_ACTION_PERMIT,
            Guid::NULL,
        );
        let s = bfe.fwpm_filter_add0(h, &specific, None).unwrap();
        assert_eq!(bfe.classify(&pkt(l, a, b, IPPROTO_TCP)).filter_id, Some(s));
        assert_eq!(
            bfe.classify(&pkt(l, a, a, IPPROTO_TCP)).action,
            ClassifyAction::Block
        );
        // A v4 packet at a v6 layer never matches an address condition.
        assert_eq!(
            bfe.classify(&pkt(l, a, IpAddr::V4(v4(2)), IPPROTO_TCP))
                .action,
            ClassifyAction::Block
        );
    }

    #[test]
    fn masks_ranges_ports_and_or_semantics() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let l = FWPM_LAYER_OUTBOUND_TRANSPORT_V4;
        let f = filter(
            l,
            vec![
                cond(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask::new(
                        Ipv4Addr::new(198, 51, 100, 0),
                        24,
                    )),
                ),
                cond(
                    FWPM_CONDITION_IP_REMOTE_ADDRESS,
                    FwpConditionValue0::v4(Ipv4Addr::new(203, 0, 113, 9)),
                ),
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_REMOTE_PORT,
                    FWP_MATCH_RANGE,
                    FwpConditionValue0::Range(FwpRange0 {
                        value_low: FwpValue0::Uint16(1000),
                        value_high: FwpValue0::Uint16(2000),
                    }),
                ),
                FwpmFilterCondition0::new(
                    FWPM_CONDITION_IP_LOCAL_PORT,
                    FWP_MATCH_NOT_EQUAL,
                    FwpConditionValue0::Uint16(22),
                ),
            ],
            FWP_ACTION_BLOCK,
            Guid::NULL,
        );
        let id = bfe.fwpm_filter_add0(h, &f, None).unwrap();
        let mut p = pkt(
            l,
            IpAddr::V4(v4(1)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77)),
            IPPROTO_TCP,
        );
        p.remote_port = 1500;
        p.local_port = 40000;
        assert_eq!(bfe.classify(&p).filter_id, Some(id));
        p.remote_addr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        assert_eq!(bfe.classify(&p).filter_id, Some(id));
        p.remote_addr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
        assert_eq!(bfe.classify(&p).filter_id, None);
        p.remote_addr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        p.remote_port = 2001;
        assert_eq!(bfe.classify(&p).filter_id, None);
        p.remote_port = 2000;
        p.local_port = 22;
        assert_eq!(bfe.classify(&p).filter_id, None);
    }

    #[test]
    fn enumeration() {
        let mut bfe = Bfe::new();
        let h = open(&mut bfe);
        let f4 = filter(
            FWPM_LAYER_INBOUND_TRANSPORT_V4,
            vec![],
            FWP_ACTION_PERMIT,
            Guid::NULL,
        );
        let f6 = filter(
            FWPM_LAYER_INBOUND_TRANSPORT_V6,
            vec![],
            FWP_ACTION_PERMIT,
            Guid::NULL,
        );
        let ids: Vec<u64> = (0..5)
            .map(|i| {
                bfe.fwpm_filter_add0(h, if i % 2 == 0 { &f4 } else { &f6 }, None)
                    .unwrap()
            })
            .collect();
        let e = bfe
            .fwpm_filter_create_enum_handle0(
                h,
                Some(&FwpmFilterEnumTemplate0 {
                    layer_key: FWPM_LAYER_INBOUND_TRANSPORT_V4,
                }),
            )
            .unwrap();
        bfe.fwpm_filter_delete_by_id0(h, ids[2]).unwrap();
        let first = bfe.fwpm_filter_enum0(h, e, 1).unwrap();
        assert_eq!(
            first.iter().map(|f| f.filter_id).collect::<Vec<_>>(),
            vec![ids[0]]
        );
        let rest = bfe.fwpm_filter_enum0(h, e, 10).unwrap();
        assert_eq!(
            rest.iter().map(|f| f.filter_id).collect::<Vec<_>>(),
            vec![ids[4]]
        );
        assert!(bfe.fwpm_filter_enum0(h, e, 10).unwrap().is_empty());
        let other = open(&mut bfe);
        assert_eq!(
            bfe.fwpm_filter_enum0(other, e, 1),
            Err(ERROR_INVALID_HANDLE)
        );
        bfe.fwpm_filter_destroy_enum_handle0(h, e).unwrap();
        assert_eq!(
            bfe.fwpm_filter_destroy_enum_handle0(h, e),
            Err(ERROR_INVALID_HANDLE)
        );
        let all = bfe.fwpm_filter_create_enum_handle0(h, None).unwrap();
        assert_eq!(bfe.fwpm_filter_enum0(h, all, 100).unwrap().len(), 4);
    }

    #[test]
    fn access_rights_on_filter_calls() {
        let mut bfe = Bfe::new();
        let admin = open(&mut bfe);
        let reader = bfe
            .fwpm_engine_open0_as(
                CallerToken::new(FWPM_ACTRL_OPEN | FWPM_ACTRL_READ),
                None,
                RPC_C_AUTHN_WINNT,
                None,
                None,
            )
            .unwrap();
        let f = filter(
            FWPM_LAYER_INBOUND_TRANSPORT_V4,
            vec![],
            FWP_ACTION_PERMIT,
            Guid::NULL,
        );
        assert_eq!(
            bfe.fwpm_filter_add0(reader, &f, None),
            Err(ERROR_ACCESS_DENIED)
        );
        let id = bfe.fwpm_filter_add0(admin, &f, None).unwrap();
        assert!(bfe.fwpm_filter_get_by_id0(reader, id).is_ok());
        assert_eq!(
            bfe.fwpm_filter_delete_by_id0(reader, id),
            Err(ERROR_ACCESS_DENIED)
        );
        assert_eq!(
            bfe.fwpm_filter_create_enum_handle0(reader, None),
            Err(ERROR_ACCESS_DENIED)
        );
    }

    // ---- index vs linear evaluator ----

    fn arb_v4() -> impl Strategy<Value = u32> {
        // Few distinct addresses so that filters and packets collide often.
        (0u32..6).prop_map(|i| u32::from(Ipv4Addr::new(192, 0, 2, 1 + i as u8)))
    }

    fn arb_condition() -> impl Strategy<Value = FwpmFilterCondition0> {
        prop_oneof![
            arb_v4().prop_map(|a| cond(
                FWPM_CONDITION_IP_REMOTE_ADDRESS,
                FwpConditionValue0::Uint32(a)
            )),
            arb_v4().prop_map(|a| cond(
                FWPM_CONDITION_IP_LOCAL_ADDRESS,
                FwpConditionValue0::Uint32(a)
            )),
            (arb_v4(), 29u8..=32).prop_map(|(a, p)| cond(
                FWPM_CONDITION_IP_REMOTE_ADDRESS,
                FwpConditionValue0::V4AddrMask(FwpV4AddrAndMask::new(Ipv4Addr::from(a), p))
            )),
            arb_v4().prop_map(|a| FwpmFilterCondition0::new(
                FWPM_CONDITION_IP_REMOTE_ADDRESS,
                FWP_MATCH_NOT_EQUAL,
                FwpConditionValue0::Uint32(a)
            )),
            prop::sample::select(vec![1u8, 6, 17, 50])
                .prop_map(|p| cond(FWPM_CONDITION_IP_PROTOCOL, FwpConditionValue0::Uint8(p))),
            (0u16..4, 0u16..4).prop_map(|(a, b)| FwpmFilterCondition0::new(
                FWPM_CONDITION_IP_REMOTE_PORT,
                FWP_MATCH_RANGE,
                FwpConditionValue0::Range(FwpRange0 {
                    value_low: FwpValue0::Uint16(a.min(b)),
                    value_high: FwpValue0::Uint16(a.max(b))
                })
            )),
            Just(cond(
                FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
                FwpConditionValue0::Uint8(1)
            )),
        ]
    }

    #[derive(Clone, Debug)]
    struct ArbFilter {
        conds: Vec<FwpmFilterCondition0>,
        action: u8,
        weight: u8,
        sublayer: u8,
    }

    fn arb_filter() -> impl Strategy<Value = ArbFilter> {
        (
            prop::collection::vec(arb_condition(), 0..4),
            0u8..4,
            0u8..4,
            0u8..3,
        )
            .prop_map(|(conds, action, weight, sublayer)| ArbFilter {
                conds,
                action,
                weight,
                sublayer,
            })
    }

    #[derive(Clone, Debug)]
    enum CacheOp {
        Add(ArbFilter),
        Delete(prop::sample::Index),
        /// Begin a write transaction, add the filter, then commit (true) or abort (false).
        Txn(ArbFilter, bool),
        Classify(u8, u8, u8, u16),
    }

    fn arb_cache_op() -> impl Strategy<Value = CacheOp> {
        prop_oneof![
            arb_filter().prop_map(CacheOp::Add),
            any::<prop::sample::Index>().prop_map(CacheOp::Delete),
            (arb_filter(), any::<bool>()).prop_map(|(f, c)| CacheOp::Txn(f, c)),
            (
                0u8..4,
                0u8..4,
                prop::sample::select(vec![1u8, 6, 17, 50]),
                0u16..5
            )
                .prop_map(|(a, b, p, q)| CacheOp::Classify(a, b, p, q)),
        ]
    }

    fn add_arb(bfe: &mut Bfe, h: EngineHandle, subs: &[Guid], af: &ArbFilter) -> u64 {
        let l = FWPM_LAYER_OUTBOUND_TRANSPORT_V4;
        let (action, callout) = match af.action {
            0 => (FWP_ACTION_PERMIT, Guid::NULL),
            1 => (FWP_ACTION_BLOCK, Guid::NULL),
            2 => (
                FWP_ACTION_CALLOUT_TERMINATING,
                FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
            ),
            _ => (FWP_ACTION_CONTINUE, Guid::NULL),
        };
        let mut f = filter(l, af.conds.clone(), action, callout);
        f.sub_layer_key = subs[af.sublayer as usize % subs.len()];
        f.weight = FwpValue0::Uint8(af.weight);
        bfe.fwpm_filter_add0(h, &f, None).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// The classification cache answers exactly what `Bfe::classify` answers, whatever
        /// filter changes (adds, deletes, committed and aborted transactions) come between
        /// packets of the same flows.
        #[test]
        fn classify_cache_agrees_with_bfe(ops in prop::collection::vec(arb_cache_op(), 1..60)) {
            let mut bfe = Bfe::new();
            let h = open(&mut bfe);
            let mut subs = vec![Guid::NULL];
            for w in [0x9000u16, 0x10] {
                let s = FwpmSubLayer0 { display_data: FwpmDisplayData0::named("s"), weight: w, ..Default::default() };
                subs.push(bfe.fwpm_sub_layer_add0(h, &s, None).unwrap());
            }
            let mut cache = ClassifyCache::new();
            let mut ids = Vec::new();
            for op in ops {
                match op {
                    CacheOp::Add(f) => ids.push(add_arb(&mut bfe, h, &subs, &f)),
                    CacheOp::Delete(d) => {
                        if !ids.is_empty() {
                            let id = ids.remove(d.index(ids.len()));
                            bfe.fwpm_filter_delete_by_id0(h, id).unwrap();
                        }
                    }
                    CacheOp::Txn(f, commit) => {
                        bfe.fwpm_transaction_begin0(h, 0).unwrap();
                        let id = add_arb(&mut bfe, h, &subs, &f);
                        // Inside the transaction the data path still sees the committed set.
                        let p = pkt(FWPM_LAYER_OUTBOUND_TRANSPORT_V4, IpAddr::V4(v4(1)), IpAddr::V4(v4(2)), 17);
                        prop_assert_eq!(cache.classify(&bfe, &p), bfe.classify(&p));
                        if commit {
                            bfe.fwpm_transaction_commit0(h).unwrap();
                            ids.push(id);
                        } else {
                            bfe.fwpm_transaction_abort0(h).unwrap();
                        }
                    }
                    CacheOp::Classify(a, b, proto, port) => {
                        let mut p = pkt(FWPM_LAYER_OUTBOUND_TRANSPORT_V4, IpAddr::V4(v4(a)), IpAddr::V4(v4(b)), proto);
                        p.remote_port = port;
                        let want = bfe.classify(&p);
                        prop_assert_eq!(cache.classify(&bfe, &p), want);
                        // Asked again at once: a hit, same answer.
                        let (hits, _) = cache.hits_and_misses();
                        prop_assert_eq!(cache.classify(&bfe, &p), want);
                        prop_assert_eq!(cache.hits_and_misses().0, hits + 1);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn index_agrees_with_linear_scan(
            filters in prop::collection::vec(arb_filter(), 0..40),
            deletes in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            packets in prop::collection::vec((arb_v4(), arb_v4(), prop::sample::select(vec![1u8, 6, 17, 50]), 0u16..5), 1..20),
        ) {
            let mut bfe = Bfe::new();
            let h = open(&mut bfe);
            let l = FWPM_LAYER_OUTBOUND_TRANSPORT_V4;
            let mut subs = vec![Guid::NULL];
            for w in [0x9000u16, 0x10] {
                let s = FwpmSubLayer0 { display_data: FwpmDisplayData0::named("s"), weight: w, ..Default::default() };
                subs.push(bfe.fwpm_sub_layer_add0(h, &s, None).unwrap());
            }
            let mut ids = Vec::new();
            for af in &filters {
                let (action, callout) = match af.action {
                    0 => (FWP_ACTION_PERMIT, Guid::NULL),
                    1 => (FWP_ACTION_BLOCK, Guid::NULL),
                    2 => (FWP_ACTION_CALLOUT_TERMINATING, FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4),
                    _ => (FWP_ACTION_CONTINUE, Guid::NULL),
                };
                let mut f = filter(l, af.conds.clone(), action, callout);
                f.sub_layer_key = subs[af.sublayer as usize];
                f.weight = match af.weight {
                    0 => FwpValue0::Empty,
                    1 => FwpValue0::Uint8(0xC),
                    2 => FwpValue0::Uint64(1 << 62),
                    _ => FwpValue0::Uint64(5),
                };
                ids.push(bfe.fwpm_filter_add0(h, &f, None).unwrap());
            }
            for d in deletes {
                if !ids.is_empty() {
                    let id = ids.remove(d.index(ids.len()));
                    bfe.fwpm_filter_delete_by_id0(h, id).unwrap();
                }
            }
            for (local, remote, proto, port) in packets {
                let mut p = pkt(l, IpAddr::V4(Ipv4Addr::from(local)), IpAddr::V4(Ipv4Addr::from(remote)), proto);
                p.remote_port = port;
                prop_assert_eq!(bfe.state.classify(&p), bfe.state.classify_linear(&p));
            }
        }
    }
}
