//! cargo-fuzz target `oid_parsers`: see [`ipsec_nic_fuzz::oid_parsers`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::oid_parsers(data);
});
