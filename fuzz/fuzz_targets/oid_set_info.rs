//! cargo-fuzz target `oid_set_info`: see [`ipsec_nic_fuzz::oid_set_info`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::oid_set_info(data);
});
