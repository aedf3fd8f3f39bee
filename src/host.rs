//! One emulated host: a [`HostStack`] bound to a [`VirtualMiniport`] driving one NIC on a
//! wire port, on a virtual clock.

use core::net::IpAddr;
use core::time::Duration;
use std::sync::Arc;

use ipsec::ProviderKind;
use miniport::{MiniportConfig, NicConfig, VirtualMiniport};
use nicsim::{NicStats, TableConfig, Wire};
use transport::{Bfe, HostStack, StackConfig, StackError};

/// Configuration of one [`Host`].
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// A name for messages and dumps.
    pub name: String,
    /// The NIC's and the stack's MAC address.
    pub mac: [u8; 6],
    /// This host's addresses (IPv4 and/or IPv6).
    pub addresses: Vec<IpAddr>,
    /// Static neighbor table: IP address -> MAC.
    pub neighbors: Vec<(IpAddr, [u8; 6])>,
    /// Crypto provider of the stack's software path and of the NIC's engine.
    pub provider: ProviderKind,
    /// Whether the stack offloads SAs to the NIC (and the NIC starts with offload enabled).
    pub offload: bool,
    /// SAs the NIC's table holds per direction (`SaOffloadCapacity`).
    pub nic_capacity: usize,
    /// NIC policy: once this many inbound SAs are offloaded, received frames of the least
    /// recently used one carry `SaDeleteReq` (`None`: never).
    pub delete_request_threshold: Option<usize>,
    /// Anti-replay window of inbound SAs (32..=65536).
    pub replay_window: u32,
    /// Frame buffers of the stack's pool.
    pub buffers: usize,
    /// Seed of the host's WFP engine (SPIs and GUIDs are reproducible).
    pub seed: u64,
}

impl HostConfig {
    /// A host named `name` with `mac` and `addresses`, offload on, NIC capacity 16, no
    /// delete requests, replay window 64, 64 buffers, seed 1, the fastest provider, no neighbors.
    pub fn new(name: &str, mac: [u8; 6], addresses: Vec<IpAddr>) -> Self {
        HostConfig {
            name: name.to_owned(),
            mac,
            addresses,
            neighbors: Vec::new(),
            provider: ProviderKind::fastest(),
            offload: true,
            nic_capacity: 16,
            delete_request_threshold: None,
            replay_window: 64,
            buffers: 64,
            seed: 1,
        }
    }
}

/// Why a [`Host`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// The host stack refused its configuration.
    Stack(StackError),
    /// A configuration value is out of range (`nic_capacity` 0).
    InvalidConfig,
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostError::Stack(e) => write!(f, "host stack: {e:?}"),
            HostError::InvalidConfig => f.write_str("invalid host configuration"),
        }
    }
}

impl std::error::Error for HostError {}

/// One host: a transport ([`HostStack`]) bound to a [`VirtualMiniport`] whose NIC sits on a
/// wire port. The miniport runs in stepping mode: nothing moves until [`Host::poll`].
pub struct Host {
    name: String,
    stack: HostStack,
    miniport: Arc<VirtualMiniport>,
    now: Duration,
}

impl Host {
    /// Build a host whose NIC sits on `wire`: `MiniportInitializeEx`, the stack opened over
    /// the miniport (capabilities queried), the stack bound as the miniport's protocol.
    ///
    /// # Errors
    /// [`HostError`] when the stack refuses the configuration or `nic_capacity` is 0.
    pub fn new(config: &HostConfig, wire: impl Wire + 'static) -> Result<Self, HostError> {
        if config.nic_capacity == 0 {
            return Err(HostError::InvalidConfig);
        }
        let nic = NicConfig {
            table: TableConfig {
                inbound_capacity: config.nic_capacity,
                outbound_capacity: config.nic_capacity,
                delete_request_threshold: config.delete_request_threshold,
                ..TableConfig::default()
            },
            provider: config.provider,
            ..NicConfig::default()
        };
        let mp_cfg = MiniportConfig {
            nic,
            offload_enabled: config.offload,
            ..MiniportConfig::default()
        };
        let miniport = Arc::new(VirtualMiniport::initialize(mp_cfg, wire));
        let stack_cfg = StackConfig {
            mac: config.mac,
            addresses: config.addresses.clone(),
            neighbors: config.neighbors.clone(),
            provider: config.provider,
            offload: config.offload,
            buffers: config.buffers,
            replay_window: config.replay_window,
        };
        let as_miniport: Arc<dyn oid::Miniport> = miniport.clone();
        let stack = HostStack::with_bfe(stack_cfg, as_miniport, Bfe::with_seed(config.seed))
            .map_err(HostError::Stack)?;
        let protocol = stack.protocol_handle();
        miniport.bind(protocol);
        Ok(Host {
            name: config.name.clone(),
            stack,
            miniport,
            now: Duration::ZERO,
        })
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtual time of the last [`Host::poll`].
    pub fn now(&self) -> Duration {
        self.now
    }

    /// One step at virtual time `now`: the miniport drives the NIC (transmits what the stack
    /// queued, receives one batch, completes sends, indicates received frames), then the stack
    /// processes completions, received frames, SA events and lifetimes. Frames the stack sends
    /// while processing (echo replies, offload OIDs) leave on the next poll. Returns the
    /// number of frames the NIC processed (0: nothing moved at the NIC).
    pub fn poll(&mut self, now: Duration) -> usize {
        self.now = now;
        let n = self.miniport.poll(now);
        self.stack.poll(now);
        n
    }

    /// The host stack.
    pub fn stack(&self) -> &HostStack {
        &self.stack
    }

    /// The host stack, mutable (send, receive, WFP calls through `bfe_mut`).
    pub fn stack_mut(&mut self) -> &mut HostStack {
        &mut self.stack
    }

    /// The miniport.
    pub fn miniport(&self) -> &Arc<VirtualMiniport> {
        &self.miniport
    }

    /// The NIC's counters.
    pub fn nic_stats(&self) -> NicStats {
        self.miniport.nic_stats()
    }
}

impl core::fmt::Debug for Host {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}
