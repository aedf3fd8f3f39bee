//! cargo-fuzz target `transport_inbound`: see [`ipsec_nic_fuzz::transport_inbound`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::transport_inbound(data);
});
