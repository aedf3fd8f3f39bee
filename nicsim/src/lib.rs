//! The NIC hardware model: SA table, crypto engine, queues and ports.
//!
//! Knows nothing of NDIS structures: it has its own SA parameters, handles and status values,
//! which the `miniport` crate maps. Only the `wire::tap` module touches the operating system;
//! the engine takes time as a parameter.
#![forbid(unsafe_code)]
