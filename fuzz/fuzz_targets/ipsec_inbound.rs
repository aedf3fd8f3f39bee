//! cargo-fuzz target `ipsec_inbound`: see [`ipsec_nic_fuzz::ipsec_inbound`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::ipsec_inbound(data);
});
