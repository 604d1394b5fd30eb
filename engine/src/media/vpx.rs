//! A small safe wrapper over libvpx's VP9 encoder (system libvpx through
//! `libvpx-native-sys`): one-pass constant quality, GOOD deadline, row-based multithreading,
//! and a single keyframe, which is all a looping sticker needs.
#![allow(unsafe_code)] // FFI to libvpx; every unsafe block says what it relies on.

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys::{
    vp8e_enc_control_id, vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_enc_cfg_t,
    vpx_codec_err_t, vpx_image_t, vpx_img_fmt, vpx_kf_mode, vpx_rc_mode,
};

use crate::media::MediaError;
use crate::media::yuv::I420;

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Settings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Constant-quality level, 0 (best) to 63 (smallest).
    pub cq_level: u32,
    /// libvpx speed, 0 (slowest) to 8; in GOOD mode 5 is the fastest setting that differs.
    pub cpu_used: i32,
    pub threads: u32,
}

/// One compressed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub data: Vec<u8>,
    /// Presentation time in frames.
    pub pts: i64,
    pub keyframe: bool,
}

struct Context {
    ctx: vpx_codec_ctx_t,
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was initialised by vpx_codec_enc_init_ver (a Context only exists
        // after it succeeded) and is destroyed exactly once, here.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut self.ctx);
        }
    }
}

fn fail(ctx: Option<&mut vpx_codec_ctx_t>, what: &str, code: vpx_codec_err_t) -> MediaError {
    let detail = ctx
        .map(|c| {
            // SAFETY: libvpx returns a pointer to a NUL-terminated string it owns (or null);
            // it stays valid until the next call on this context, and we copy it at once.
            let text = unsafe { vpx_sys::vpx_codec_error_detail(c) };
            if text.is_null() {
                String::new()
            } else {
                // SAFETY: non-null and NUL-terminated, as above.
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned()
            }
        })
        .unwrap_or_default();
    MediaError::Encoder {
        codec: "VP9",
        message: format!(
            "{what} failed ({code:?}){}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ),
    }
}

/// The version of the libvpx this process linked, e.g. `v1.12.0`.
pub fn libvpx_version() -> String {
    // SAFETY: libvpx returns a pointer to a static NUL-terminated string (never null).
    let text = unsafe { vpx_sys::vpx_codec_version_str() };
    if text.is_null() {
        return "unknown".to_string();
    }
    // SAFETY: non-null, NUL-terminated and static, as above.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// Encodes the pictures in order, returning one packet per picture.
pub fn encode(pictures: &[I420], settings: &Vp9Settings) -> Result<Vec<Packet>, MediaError> {
    if pictures.is_empty() {
        return Err(MediaError::InvalidFrames(
            "there are no frames to encode".into(),
        ));
    }
    if let Some(p) = pictures
        .iter()
        .find(|p| (p.width, p.height) != (settings.width, settings.height))
    {
        return Err(MediaError::InvalidFrames(format!(
            "a {}x{} picture in a {}x{} stream",
            p.width, p.height, settings.width, settings.height
        )));
    }
    let mut context = open(settings)?;
    let mut packets = Vec::with_capacity(pictures.len());
    for (pts, picture) in pictures.iter().enumerate() {
        let mut data = picture.data.clone();
        let mut image = vpx_image_t::default();
        // SAFETY: `data` holds a whole I420 picture of the stated size (checked above via
        // I420's construction), stays alive and unmoved until vpx_codec_encode returns, and
        // libvpx only reads it.
        let wrapped = unsafe {
            vpx_sys::vpx_img_wrap(
                &mut image,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                settings.width as c_uint,
                settings.height as c_uint,
                1,
                data.as_mut_ptr(),
            )
        };
        if wrapped.is_null() {
            return Err(fail(
                None,
                "wrapping a picture",
                vpx_codec_err_t::VPX_CODEC_INVALID_PARAM,
            ));
        }
        // SAFETY: the context is initialised; `image` describes `data` (see above).
        let code = unsafe {
            vpx_sys::vpx_codec_encode(
                &mut context.ctx,
                &image,
                pts as i64,
                1,
                0,
                vpx_sys::VPX_DL_GOOD_QUALITY as c_ulong,
            )
        };
        if code != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(fail(Some(&mut context.ctx), "encoding a frame", code));
        }
        drain(&mut context, &mut packets);
    }
    // Flush: lookahead frames come out when libvpx is told the input has ended.
    loop {
        let before = packets.len();
        // SAFETY: a null image is libvpx's documented end-of-stream signal.
        let code = unsafe {
            vpx_sys::vpx_codec_encode(
                &mut context.ctx,
                ptr::null(),
                -1,
                1,
                0,
                vpx_sys::VPX_DL_GOOD_QUALITY as c_ulong,
            )
        };
        if code != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(fail(Some(&mut context.ctx), "flushing", code));
        }
        drain(&mut context, &mut packets);
        if packets.len() == before {
            break;
        }
    }
    if packets.len() != pictures.len() {
        return Err(MediaError::Encoder {
            codec: "VP9",
            message: format!(
                "{} frames in, {} packets out",
                pictures.len(),
                packets.len()
            ),
        });
    }
    Ok(packets)
}

fn open(s: &Vp9Settings) -> Result<Context, MediaError> {
    let mut cfg = vpx_codec_enc_cfg_t::default();
    // SAFETY: vpx_codec_vp9_cx returns a static interface; cfg is a plain struct it fills.
    let code =
        unsafe { vpx_sys::vpx_codec_enc_config_default(vpx_sys::vpx_codec_vp9_cx(), &mut cfg, 0) };
    if code != vpx_codec_err_t::VPX_CODEC_OK {
        return Err(fail(None, "reading the default configuration", code));
    }
    cfg.g_w = s.width;
    cfg.g_h = s.height;
    cfg.g_timebase.num = 1;
    cfg.g_timebase.den = s.fps as c_int;
    cfg.g_threads = s.threads.max(1);
    cfg.g_profile = 0;
    cfg.rc_end_usage = vpx_rc_mode::VPX_Q;
    cfg.rc_min_quantizer = 0;
    cfg.rc_max_quantizer = 63;
    // Only the first frame is a keyframe: a sticker is short and loops from the start.
    cfg.kf_mode = vpx_kf_mode::VPX_KF_DISABLED;
    cfg.kf_max_dist = 9999;
    let mut ctx = vpx_codec_ctx_t::default();
    // SAFETY: ctx is zeroed storage for libvpx to initialise; cfg is fully set up above.
    let code = unsafe {
        vpx_sys::vpx_codec_enc_init_ver(
            &mut ctx,
            vpx_sys::vpx_codec_vp9_cx(),
            &cfg,
            0,
            vpx_sys::VPX_ENCODER_ABI_VERSION as c_int,
        )
    };
    if code != vpx_codec_err_t::VPX_CODEC_OK {
        return Err(fail(Some(&mut ctx), "opening the encoder", code));
    }
    let mut context = Context { ctx };
    let tile_columns = if s.width >= 512 { 1 } else { 0 };
    for (control, value) in [
        (vp8e_enc_control_id::VP8E_SET_CPUUSED, s.cpu_used),
        (
            vp8e_enc_control_id::VP8E_SET_CQ_LEVEL,
            s.cq_level.min(63) as c_int,
        ),
        (vp8e_enc_control_id::VP9E_SET_ROW_MT, 1),
        // log2 of the tile columns; 512 px allows two, which row-mt then splits further.
        (vp8e_enc_control_id::VP9E_SET_TILE_COLUMNS, tile_columns),
    ] {
        // SAFETY: every control here takes one int argument, as libvpx's vp8cx.h documents.
        let code =
            unsafe { vpx_sys::vpx_codec_control_(&mut context.ctx, control as c_int, value) };
        if code != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(fail(
                Some(&mut context.ctx),
                &format!("setting {control:?}"),
                code,
            ));
        }
    }
    Ok(context)
}

fn drain(context: &mut Context, packets: &mut Vec<Packet>) {
    let mut iter: vpx_sys::vpx_codec_iter_t = ptr::null();
    loop {
        // SAFETY: the iterator starts null and is advanced only by libvpx; the returned packet
        // stays valid until the next encode call, and we copy what we need now.
        let packet = unsafe { vpx_sys::vpx_codec_get_cx_data(&mut context.ctx, &mut iter) };
        if packet.is_null() {
            return;
        }
        // SAFETY: non-null packets point to a valid vpx_codec_cx_pkt.
        let packet = unsafe { &*packet };
        if packet.kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
            continue;
        }
        // SAFETY: for frame packets the `frame` union member is the active one, and buf/sz
        // describe a buffer libvpx owns until the next call.
        let (data, pts, flags) = unsafe {
            let frame = packet.data.frame;
            (
                std::slice::from_raw_parts(frame.buf as *const u8, frame.sz as usize).to_vec(),
                frame.pts,
                frame.flags,
            )
        };
        packets.push(Packet {
            data,
            pts,
            keyframe: flags & vpx_sys::VPX_FRAME_IS_KEY != 0,
        });
    }
}
