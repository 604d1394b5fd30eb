//! A user's chat message through the command reader and the option parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = loopsmith_bot::fuzzing::chat_message(data);
});
