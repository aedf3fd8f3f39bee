//! The Base Filtering Engine of one host: sessions, transactions, access checks, the virtual
//! clock and event delivery.

use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::consts::*;
use super::error::*;
use super::filter::{ClassifyIndex, FilterRecord, SublayerRecord};
use super::sa::{SaContexts, SaEvent};
use super::types::*;

/// An open session (`HANDLE engineHandle` returned by `FwpmEngineOpen0`).
#[doc(alias = "HANDLE")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EngineHandle(pub(crate) u64);

/// An enumeration handle (`HANDLE enumHandle` of the `*CreateEnumHandle0` calls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnumHandle(pub(crate) u64);

/// A subscription handle (`HANDLE eventsHandle` of `IPsecSaContextSubscribe0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionHandle(pub(crate) u64);

/// The identity a session is opened with (emulation of a Windows access token checked against
/// BFE's security descriptors): the mask of `FWPM_ACTRL_*` rights (plus [`DELETE`]) granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallerToken {
    /// Granted rights: `FWPM_ACTRL_*` bits and the standard [`DELETE`] right.
    pub granted: u32,
}

impl CallerToken {
    /// An administrator: every right ([`FWPM_GENERIC_ALL`]). Used by
    /// [`Bfe::fwpm_engine_open0`].
    pub const ADMINISTRATOR: CallerToken = CallerToken {
        granted: FWPM_GENERIC_ALL,
    };

    /// A token with exactly the given rights.
    pub const fn new(granted: u32) -> Self {
        CallerToken { granted }
    }
}

/// The change-notification callback of `IPsecSaContextSubscribe0`
/// (`IPSEC_SA_CONTEXT_CALLBACK0`; the C `context` pointer is whatever the closure captures).
#[doc(alias = "IPSEC_SA_CONTEXT_CALLBACK0")]
pub type SaContextCallback = Box<dyn FnMut(&IpsecSaContextChange0) + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxnKind {
    ReadOnly,
    ReadWrite,
}

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) key: Guid,
    pub(crate) dynamic: bool,
    pub(crate) token: CallerToken,
    pub(crate) txn: Option<TxnKind>,
}

/// Everything a write transaction can change; cloned at `FwpmTransactionBegin0` and restored
/// by `FwpmTransactionAbort0`.
#[derive(Clone, Debug, Default)]
pub(crate) struct State {
    pub(crate) filters: BTreeMap<u64, FilterRecord>,
    pub(crate) filter_keys: HashMap<Guid, u64>,
    pub(crate) sublayers: BTreeMap<Guid, SublayerRecord>,
    pub(crate) index: ClassifyIndex,
    pub(crate) sa_contexts: SaContexts,
    pub(crate) inbound_spis: BTreeSet<u32>,
}

/// Something produced by a call that must only become visible when its transaction commits.
#[derive(Clone, Debug)]
pub(crate) enum Deferred {
    Event(SaEvent),
    Change {
        change: IpsecSaContextChange0,
        local: IpAddr,
        remote: IpAddr,
    },
}

#[derive(Debug)]
struct WriteTxn {
    session: u64,
    snapshot: State,
    deferred: Vec<Deferred>,
}

pub(crate) struct Subscription {
    pub(crate) session: u64,
    pub(crate) template: Option<IpsecSaContextEnumTemplate0>,
    pub(crate) flags: u32,
    pub(crate) callback: SaContextCallback,
}

#[derive(Debug)]
pub(crate) enum EnumKind {
    Filters,
    SaContexts,
}

#[derive(Debug)]
pub(crate) struct EnumState {
    pub(crate) session: u64,
    pub(crate) kind: EnumKind,
    pub(crate) remaining: VecDeque<u64>,
}

/// The facts a call needs about its session once the common checks passed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallCtx {
    pub(crate) session: u64,
    pub(crate) dynamic: bool,
    pub(crate) explicit_txn: bool,
}

/// Whether a call reads or writes BFE state (for the transaction lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// SplitMix64: a tiny deterministic generator (SPIs, generated GUIDs). Not for secrets.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The default PRNG seed of [`Bfe::new`].
pub const DEFAULT_SEED: u64 = 0x5EED_0FB0_F000_0001;

/// The Base Filtering Engine of one emulated host: all WFP and IPsec SA-context state.
///
/// Every Windows call is one method taking the session's [`EngineHandle`] first, in the
/// Windows argument order; out-parameters become return values and `DWORD` results become
/// `Result<_, WfpError>`.
pub struct Bfe {
    pub(crate) state: State,
    txn: Option<WriteTxn>,
    read_txns: BTreeSet<u64>,
    pub(crate) sessions: BTreeMap<u64, Session>,
    next_handle: u64,
    pub(crate) next_filter_id: u64,
    pub(crate) next_sa_context_id: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) now: Duration,
    events: VecDeque<SaEvent>,
    pub(crate) subscriptions: BTreeMap<u64, Subscription>,
    pub(crate) enum_handles: BTreeMap<u64, EnumState>,
}

impl fmt::Debug for Bfe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bfe")
            .field("now", &self.now)
            .field("sessions", &self.sessions.len())
            .field("filters", &self.state.filters.len())
            .field("sa_contexts", &self.state.sa_contexts.len())
            .field("write_txn", &self.txn.as_ref().map(|t| t.session))
            .finish_non_exhaustive()
    }
}

impl Default for Bfe {
    fn default() -> Self {
        Self::new()
    }
}

impl Bfe {
    /// A fresh engine with the built-in sublayers, seeded with [`DEFAULT_SEED`].
    pub fn new() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }

    /// A fresh engine whose SPI and GUID generator is seeded with `seed` (reproducible).
    pub fn with_seed(seed: u64) -> Self {
        let mut bfe = Bfe {
            state: State::default(),
            txn: None,
            read_txns: BTreeSet::new(),
            sessions: BTreeMap::new(),
            next_handle: 1,
            next_filter_id: 1,
            next_sa_context_id: 1,
            rng: SplitMix64(seed),
            now: Duration::ZERO,
            events: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            enum_handles: BTreeMap::new(),
        };
        bfe.install_builtin_sublayers();
        bfe
    }

    /// The current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Advance the virtual clock to `now` (never backwards) and process SA lifetimes and the
    /// `IPsecSaContextExpire0` grace period. While a write transaction is open the processing
    /// waits until it commits or aborts (BFE holds the lock the same way).
    pub fn tick(&mut self, now: Duration) {
        if now > self.now {
            self.now = now;
        }
        if self.txn.is_none() {
            self.process_lifetimes();
        }
    }

    /// Alias of [`Bfe::tick`].
    pub fn set_time(&mut self, now: Duration) {
        self.tick(now);
    }

    /// Take the queued data-path events (SA added, expired, deleted...), oldest first.
    ///
    /// Non-lossy: each event leaves the queue only when the iterator yields it; events not
    /// consumed before the iterator is dropped stay queued for the next call (so
    /// `let _ = bfe.drain_events();` discards nothing: use `.for_each(drop)` to discard).
    /// Prefer [`Bfe::take_events`], which moves all of them into a reusable buffer.
    pub fn drain_events(&mut self) -> impl Iterator<Item = SaEvent> + '_ {
        core::iter::from_fn(move || self.events.pop_front())
    }

    /// Append every queued data-path event to `out`, oldest first, and empty the queue.
    /// Nothing is lost whatever the caller does next; `out` keeps its allocation across
    /// calls (no allocation once it is large enough).
    pub fn take_events(&mut self, out: &mut Vec<SaEvent>) {
        out.extend(self.events.drain(..));
    }

    /// The number of queued data-path events.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn fresh_handle(&mut self) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    pub(crate) fn random_guid(&mut self) -> Guid {
        let hi = u128::from(self.rng.next_u64());
        let lo = u128::from(self.rng.next_u64());
        // RFC 4122 version 4 / variant bits, so generated keys look like GUIDs.
        let v = (hi << 64 | lo) & !(0xF << 76) | (0x4 << 76);
        Guid(v & !(0x3 << 62) | (0x2 << 62))
    }

    /// The state the data path sees: the committed one (the snapshot while a write
    /// transaction is open).
    pub(crate) fn committed(&self) -> &State {
        match &self.txn {
            Some(t) => &t.snapshot,
            None => &self.state,
        }
    }

    /// Mutable access to every copy of the state (live and, while a write transaction is
    /// open, its snapshot), for changes that are not part of any transaction.
    pub(crate) fn for_each_state(&mut self, mut f: impl FnMut(&mut State)) {
        f(&mut self.state);
        if let Some(t) = &mut self.txn {
            f(&mut t.snapshot);
        }
    }

    /// Common checks of every call: valid handle, access right, transaction lock, read-only
    /// transaction. Order: `ERROR_INVALID_HANDLE`, `ERROR_ACCESS_DENIED`, `FWP_E_TIMEOUT`,
    /// `FWP_E_INCOMPATIBLE_TXN`.
    pub(crate) fn call(
        &self,
        engine: EngineHandle,
        right: u32,
        access: Access,
    ) -> Result<CallCtx, WfpError> {
        let s = self.sessions.get(&engine.0).ok_or(ERROR_INVALID_HANDLE)?;
        if s.token.granted & right != right {
            return Err(ERROR_ACCESS_DENIED);
        }
        if self.txn.as_ref().is_some_and(|t| t.session != engine.0) {
            return Err(FWP_E_TIMEOUT);
        }
        if access == Access::Write {
            if self.read_txns.iter().any(|&r| r != engine.0) {
                return Err(FWP_E_TIMEOUT);
            }
            if s.txn == Some(TxnKind::ReadOnly) {
                return Err(FWP_E_INCOMPATIBLE_TXN);
            }
        }
        Ok(CallCtx {
            session: engine.0,
            dynamic: s.dynamic,
            explicit_txn: s.txn.is_some(),
        })
    }

    /// Queue an event or notification: held back until commit when the calling session has
    /// an open write transaction, delivered at once otherwise.
    pub(crate) fn emit(&mut self, session: Option<u64>, item: Deferred) {
        if let (Some(t), Some(s)) = (&mut self.txn, session)
            && t.session == s
        {
            t.deferred.push(item);
            return;
        }
        self.deliver(item);
    }

    fn deliver(&mut self, item: Deferred) {
        match item {
            Deferred::Event(e) => self.events.push_back(e),
            Deferred::Change {
                change,
                local,
                remote,
            } => {
                for sub in self.subscriptions.values_mut() {
                    if change.change_type == IPSEC_SA_CONTEXT_EVENT_SOFT_EXPIRED_EXT
                        && sub.flags & IPSEC_SA_CONTEXT_SUBSCRIPTION_FLAG_SOFT_EXPIRED_EXT == 0
                    {
                        continue;
                    }
                    let wanted = sub
                        .template
                        .as_ref()
                        .is_none_or(|t| super::sa::template_matches(t, local, remote));
                    if wanted {
                        (sub.callback)(&change);
                    }
                }
            }
        }
    }

    /// `FwpmEngineOpen0` as an administrator (every right).
    ///
    /// # Errors
    /// `ERROR_INVALID_PARAMETER` for a `server_name` (only the local engine exists) or an
    /// `authn_service` other than `RPC_C_AUTHN_WINNT` / `RPC_C_AUTHN_DEFAULT`;
    /// `FWP_E_ALREADY_EXISTS` for a `session_key` that is already open; `FWP_E_INVALID_FLAGS`
    /// for unknown session flags.
    #[doc(alias = "FwpmEngineOpen0")]
    pub fn fwpm_engine_open0(
        &mut self,
        server_name: Option<&str>,
        authn_service: u32,
        auth_identity: Option<&SecWinntAuthIdentityW>,
        session: Option<&FwpmSession0>,
    ) -> Result<EngineHandle, WfpError> {
        self.fwpm_engine_open0_as(
            CallerToken::ADMINISTRATOR,
            server_name,
            authn_service,
            auth_identity,
            session,
        )
    }

    /// Emulator extension: `FwpmEngineOpen0` for a caller with the rights of `token`.
    ///
    /// # Errors
    /// As [`Bfe::fwpm_engine_open0`], plus `ERROR_ACCESS_DENIED` without `FWPM_ACTRL_OPEN`.
    #[doc(alias = "FwpmEngineOpen0")]
    pub fn fwpm_engine_open0_as(
        &mut self,
        token: CallerToken,
        server_name: Option<&str>,
        authn_service: u32,
        _auth_identity: Option<&SecWinntAuthIdentityW>,
        session: Option<&FwpmSession0>,
    ) -> Result<EngineHandle, WfpError> {
        if server_name.is_some() {
            return Err(ERROR_INVALID_PARAMETER);
        }
        if authn_service != RPC_C_AUTHN_WINNT && authn_service != RPC_C_AUTHN_DEFAULT {
            return Err(ERROR_INVALID_PARAMETER);
        }
        if token.granted & FWPM_ACTRL_OPEN == 0 {
            return Err(ERROR_ACCESS_DENIED);
        }
        let default_session = FwpmSession0::default();
        let s = session.unwrap_or(&default_session);
        if s.flags & !(FWPM_SESSION_FLAG_DYNAMIC | FWPM_SESSION_FLAG_RESERVED) != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        if !s.session_key.is_null() && self.sessions.values().any(|o| o.key == s.session_key) {
            return Err(FWP_E_ALREADY_EXISTS);
        }
        let key = if s.session_key.is_null() {
            self.random_guid()
        } else {
            s.session_key
        };
        let h = self.fresh_handle();
        self.sessions.insert(
            h,
            Session {
                key,
                dynamic: s.flags & FWPM_SESSION_FLAG_DYNAMIC != 0,
                token,
                txn: None,
            },
        );
        Ok(EngineHandle(h))
    }

    /// `FwpmEngineClose0`: aborts the session's open transaction, deletes the objects of a
    /// dynamic session, and drops its enumeration handles and subscriptions.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE` for a handle that is not open.
    #[doc(alias = "FwpmEngineClose0")]
    pub fn fwpm_engine_close0(&mut self, engine: EngineHandle) -> Result<(), WfpError> {
        let s = self.sessions.get(&engine.0).ok_or(ERROR_INVALID_HANDLE)?;
        let dynamic = s.dynamic;
        if self.txn.as_ref().is_some_and(|t| t.session == engine.0) {
            self.abort_write_txn();
        }
        self.read_txns.remove(&engine.0);
        if dynamic {
            self.for_each_state(|st| st.remove_session_objects(engine.0));
        }
        self.subscriptions.retain(|_, sub| sub.session != engine.0);
        self.enum_handles.retain(|_, e| e.session != engine.0);
        self.sessions.remove(&engine.0);
        if self.txn.is_none() {
            self.process_lifetimes();
        }
        Ok(())
    }

    /// The session key of an open session (`FWPM_SESSION0.sessionKey`, generated if the caller
    /// passed none).
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE` for a handle that is not open.
    pub fn session_key(&self, engine: EngineHandle) -> Result<Guid, WfpError> {
        self.sessions
            .get(&engine.0)
            .map(|s| s.key)
            .ok_or(ERROR_INVALID_HANDLE)
    }

    /// `FwpmTransactionBegin0`: `flags` 0 (read/write) or `FWPM_TXN_READ_ONLY`.
    ///
    /// Emulation of the lock wait: the emulator never blocks, so a Begin (or any call) that
    /// would wait for another session's transaction fails at once with `FWP_E_TIMEOUT`.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `FWP_E_INVALID_FLAGS`, `ERROR_ACCESS_DENIED` (needs
    /// `FWPM_ACTRL_BEGIN_READ_TXN` / `FWPM_ACTRL_BEGIN_WRITE_TXN`), `FWP_E_TXN_IN_PROGRESS`
    /// (this session already has one), `FWP_E_TIMEOUT` (another session holds the lock).
    #[doc(alias = "FwpmTransactionBegin0")]
    pub fn fwpm_transaction_begin0(
        &mut self,
        engine: EngineHandle,
        flags: u32,
    ) -> Result<(), WfpError> {
        let s = self.sessions.get(&engine.0).ok_or(ERROR_INVALID_HANDLE)?;
        if flags & !FWPM_TXN_READ_ONLY != 0 {
            return Err(FWP_E_INVALID_FLAGS);
        }
        let read_only = flags & FWPM_TXN_READ_ONLY != 0;
        let right = if read_only {
            FWPM_ACTRL_BEGIN_READ_TXN
        } else {
            FWPM_ACTRL_BEGIN_WRITE_TXN
        };
        if s.token.granted & right != right {
            return Err(ERROR_ACCESS_DENIED);
        }
        if s.txn.is_some() {
            return Err(FWP_E_TXN_IN_PROGRESS);
        }
        if self.txn.is_some() {
            return Err(FWP_E_TIMEOUT);
        }
        if !read_only && !self.read_txns.is_empty() {
            return Err(FWP_E_TIMEOUT);
        }
        if read_only {
            self.read_txns.insert(engine.0);
        } else {
            self.txn = Some(WriteTxn {
                session: engine.0,
                snapshot: self.state.clone(),
                deferred: Vec::new(),
            });
        }
        if let Some(s) = self.sessions.get_mut(&engine.0) {
            s.txn = Some(if read_only {
                TxnKind::ReadOnly
            } else {
                TxnKind::ReadWrite
            });
        }
        Ok(())
    }

    /// `FwpmTransactionCommit0`: keeps every change made in the transaction and delivers the
    /// events and notifications it produced.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `FWP_E_NO_TXN_IN_PROGRESS`.
    #[doc(alias = "FwpmTransactionCommit0")]
    pub fn fwpm_transaction_commit0(&mut self, engine: EngineHandle) -> Result<(), WfpError> {
        self.end_txn(engine, true)
    }

    /// `FwpmTransactionAbort0`: restores the state as it was at Begin, exactly.
    ///
    /// # Errors
    /// `ERROR_INVALID_HANDLE`, `FWP_E_NO_TXN_IN_PROGRESS`.
    #[doc(alias = "FwpmTransactionAbort0")]
    pub fn fwpm_transaction_abort0(&mut self, engine: EngineHandle) -> Result<(), WfpError> {
        self.end_txn(engine, false)
    }

    fn end_txn(&mut self, engine: EngineHandle, commit: bool) -> Result<(), WfpError> {
        let s = self
            .sessions
            .get_mut(&engine.0)
            .ok_or(ERROR_INVALID_HANDLE)?;
        match s.txn.take() {
            None => return Err(FWP_E_NO_TXN_IN_PROGRESS),
            Some(TxnKind::ReadOnly) => {
                self.read_txns.remove(&engine.0);
            }
            Some(TxnKind::ReadWrite) => {
                if commit {
                    if let Some(t) = self.txn.take() {
                        for item in t.deferred {
                            self.deliver(item);
                        }
                    }
                } else {
                    self.abort_write_txn();
                }
            }
        }
        if self.txn.is_none() {
            self.process_lifetimes();
        }
        Ok(())
    }

    fn abort_write_txn(&mut self) {
        if let Some(t) = self.txn.take() {
            self.state = t.snapshot;
            if let Some(s) = self.sessions.get_mut(&t.session) {
                s.txn = None;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn open(bfe: &mut Bfe) -> EngineHandle {
        bfe.fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, None)
            .unwrap()
    }

    #[test]
    fn open_arguments_are_checked() {
        let mut bfe = Bfe::new();
        assert_eq!(
            bfe.fwpm_engine_open0(Some("host"), RPC_C_AUTHN_WINNT, None, None),
            Err(ERROR_INVALID_PARAMETER)
        );
        assert_eq!(
            bfe.fwpm_engine_open0(None, RPC_C_AUTHN_NONE, None, None),
            Err(ERROR_INVALID_PARAMETER)
        );
        assert!(
            bfe.fwpm_engine_open0(None, RPC_C_AUTHN_DEFAULT, None, None)
                .is_ok()
        );
        let session = FwpmSession0 {
            session_key: Guid(0x1234),
            ..Default::default()
        };
        let h = bfe
            .fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&session))
            .unwrap();
        assert_eq!(bfe.session_key(h), Ok(Guid(0x1234)));
        assert_eq!(
            bfe.fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&session)),
            Err(FWP_E_ALREADY_EXISTS)
        );
        bfe.fwpm_engine_close0(h).unwrap();
        assert!(
            bfe.fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&session))
                .is_ok()
        );
        assert_eq!(bfe.fwpm_engine_close0(h), Err(ERROR_INVALID_HANDLE));
        let bad = FwpmSession0 {
            flags: 0x4,
            ..Default::default()
        };
        assert_eq!(
            bfe.fwpm_engine_open0(None, RPC_C_AUTHN_WINNT, None, Some(&bad)),
            Err(FWP_E_INVALID_FLAGS)
        );
        let no_open = CallerToken::new(FWPM_GENERIC_ALL & !FWPM_ACTRL_OPEN);
        assert_eq!(
            bfe.fwpm_engine_open0_as(no_open, None, RPC_C_AUTHN_WINNT, None, None),
            Err(ERROR_ACCESS_DENIED)
        );
    }

    #[test]
    fn transaction_rules() {
        let mut bfe = Bfe::new();
        let a = open(&mut bfe);
        let b = open(&mut bfe);
        assert_eq!(
            bfe.fwpm_transaction_commit0(a),
            Err(FWP_E_NO_TXN_IN_PROGRESS)
        );
        assert_eq!(
            bfe.fwpm_transaction_abort0(a),
            Err(FWP_E_NO_TXN_IN_PROGRESS)
        );
        assert_eq!(
            bfe.fwpm_transaction_begin0(a, 0x2),
            Err(FWP_E_INVALID_FLAGS)
        );
        bfe.fwpm_transaction_begin0(a, 0).unwrap();
        assert_eq!(
            bfe.fwpm_transaction_begin0(a, 0),
            Err(FWP_E_TXN_IN_PROGRESS)
        );
        assert_eq!(bfe.fwpm_transaction_begin0(b, 0), Err(FWP_E_TIMEOUT));
        assert_eq!(
            bfe.fwpm_transaction_begin0(b, FWPM_TXN_READ_ONLY),
            Err(FWP_E_TIMEOUT)
        );
        bfe.fwpm_transaction_commit0(a).unwrap();
        bfe.fwpm_transaction_begin0(b, FWPM_TXN_READ_ONLY).unwrap();
        assert_eq!(bfe.fwpm_transaction_begin0(a, 0), Err(FWP_E_TIMEOUT));
        bfe.fwpm_transaction_begin0(a, FWPM_TXN_READ_ONLY).unwrap();
        bfe.fwpm_transaction_abort0(b).unwrap();
        bfe.fwpm_transaction_commit0(a).unwrap();
        // Closing a session with an open transaction releases the lock.
        bfe.fwpm_transaction_begin0(a, 0).unwrap();
        bfe.fwpm_engine_close0(a).unwrap();
        bfe.fwpm_transaction_begin0(b, 0).unwrap();
    }

    #[test]
    fn transaction_rights() {
        let mut bfe = Bfe::new();
        let t = CallerToken::new(FWPM_ACTRL_OPEN | FWPM_ACTRL_BEGIN_READ_TXN);
        let h = bfe
            .fwpm_engine_open0_as(t, None, RPC_C_AUTHN_WINNT, None, None)
            .unwrap();
        assert_eq!(bfe.fwpm_transaction_begin0(h, 0), Err(ERROR_ACCESS_DENIED));
        bfe.fwpm_transaction_begin0(h, FWPM_TXN_READ_ONLY).unwrap();
        bfe.fwpm_transaction_commit0(h).unwrap();
    }

    #[test]
    fn generated_guids_are_distinct_and_reproducible() {
        let mut a = Bfe::with_seed(7);
        let mut b = Bfe::with_seed(7);
        let g1 = a.random_guid();
        assert_eq!(g1, b.random_guid());
        assert_ne!(g1, a.random_guid());
        assert!(!g1.is_null());
    }
}
