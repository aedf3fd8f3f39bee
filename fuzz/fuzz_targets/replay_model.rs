//! cargo-fuzz target `replay_model`: see [`ipsec_nic_fuzz::replay_model`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::replay_model(data);
});
