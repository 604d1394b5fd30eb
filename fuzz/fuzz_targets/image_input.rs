//! A picture a user sent to animate, through the header checks of PNG, JPEG and WebP.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = loopsmith_engine::fuzzing::image_input(data);
});
