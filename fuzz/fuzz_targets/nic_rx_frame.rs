//! cargo-fuzz target `nic_rx_frame`: see [`ipsec_nic_fuzz::nic_rx_frame`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::nic_rx_frame(data);
});
