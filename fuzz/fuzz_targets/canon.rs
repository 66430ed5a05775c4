#![no_main]
//! `cargo fuzz run canon`: see `../targets.rs`.

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::on_thread(data, targets::canon));
