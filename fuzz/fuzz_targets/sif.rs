#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| petrel_fuzz::sif(data));
