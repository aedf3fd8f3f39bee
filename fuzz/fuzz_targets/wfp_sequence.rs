//! cargo-fuzz target `wfp_sequence`: see [`ipsec_nic_fuzz::wfp_sequence`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::wfp_sequence(data);
});
