//! The sixel encoder checked by an independent decoder: libsixel's `sixel2png` (Debian's
//! `libsixel-bin`, installed by `cargo xtask setup --test`) turns our output back into a PNG,
//! ffmpeg reads that as raw RGB, and every pixel must match the source within the rounding
//! of sixel's percent colours. The encoder's own tests decode with our reader; this one does
//! not trust it.

use std::process::Command;

use loopsmith_console::graphics::sixel::encode_rgb;

/// 61×47: neither side a multiple of six, so the last band is partial. 120 colours at most
/// (a 10×12 grid of blocks), so the quantiser keeps every one exactly.
fn picture() -> (Vec<u8>, usize, usize) {
    let (w, h) = (61usize, 47usize);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (bx, by) = (x * 10 / w, y * 12 / h);
            rgb.extend_from_slice(&[
                (bx * 25) as u8,
                (by * 21) as u8,
                (255 - (bx + by) * 10) as u8,
            ]);
        }
    }
    (rgb, w, h)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?} could not start ({e}); `cargo xtask setup --test` installs it")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn libsixel_decodes_our_sixel_to_the_same_picture() {
    let (rgb, w, h) = picture();
    let sixel = encode_rgb(&rgb, w, h);
    let dir = std::env::temp_dir().join(format!("loopsmith-sixel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let six = dir.join("picture.six");
    let png = dir.join("picture.png");
    std::fs::write(&six, &sixel).expect("write sixel");
    run(Command::new("sixel2png")
        .arg("-i")
        .arg(&six)
        .arg("-o")
        .arg(&png));
    let decoded = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&png)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]));
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(
        decoded.len(),
        w * h * 3,
        "libsixel read a picture of another size"
    );
    let worst = rgb
        .iter()
        .zip(&decoded)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    // Percent colours: 100 steps for 255 values, so at most 1.3 off before rounding, 2 after.
    assert!(worst <= 2, "a channel is {worst} off");
}

#[test]
fn the_test_picture_stays_inside_the_palette() {
    // Guards the premise above: fewer than 256 colours, so quantising is exact.
    let (rgb, _, _) = picture();
    let colours: std::collections::BTreeSet<&[u8]> = rgb.chunks(3).collect();
    assert!(colours.len() <= 256, "{}", colours.len());
}
