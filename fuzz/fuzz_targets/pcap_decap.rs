//! cargo-fuzz target `pcap_decap`: see [`ipsec_nic_fuzz::pcap_decap`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ipsec_nic_fuzz::pcap_decap(data);
});
