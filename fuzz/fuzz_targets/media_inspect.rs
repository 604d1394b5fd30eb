//! A media file through the independent reader of WebM, MP4, PNG/APNG and GIF.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = loopsmith_engine::fuzzing::media_inspect(data);
});
