//! A remote renderer's MP4 through the demuxer and Annex B conversion that feed the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = loopsmith_engine::fuzzing::mp4_demux(data);
});
