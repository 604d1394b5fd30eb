//! A config file's contents (and environment variables) through the config loader.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = loopsmith_config::fuzzing::config_file(data);
});
