//! The numpy and torch (CPU) primitives diffusers builds its schedules from, reproduced with
//! their precision: numpy works in f64, torch tensors in f32.

use super::config::{BetaSchedule, SchedulerConfig, TimestepSpacing};

/// `torch.linspace(start, end, n, dtype=torch.float32)` as torch's CPU kernel computes it: the
/// ends cast to f32, an f32 step, the first half counted up from `start` and the second half
/// down from `end`, each value one fused multiply-add (bit-identical to torch 2.15 on x86-64).
pub(crate) fn torch_linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let halfway = n / 2;
    (0..n)
        .map(|i| {
            if i < halfway {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((n - 1 - i) as f32, end)
            }
        })
        .collect()
}

/// `alphas_cumprod` of the DDPM-family schedulers: f32 betas, f32 `1 - beta`, and torch's CPU
/// `cumprod`, which accumulates f32 in f64 and rounds each partial product.
pub(crate) fn alphas_cumprod(config: &SchedulerConfig) -> Vec<f32> {
    let n = config.num_train_timesteps;
    let betas: Vec<f32> = match config.beta_schedule {
        BetaSchedule::Linear => torch_linspace_f32(config.beta_start, config.beta_end, n),
        BetaSchedule::ScaledLinear => {
            torch_linspace_f32(config.beta_start.sqrt(), config.beta_end.sqrt(), n)
                .into_iter()
                .map(|b| b * b)
                .collect()
        }
    };
    let mut acc = 1.0f64;
    betas
        .into_iter()
        .map(|beta| {
            acc *= f64::from(1.0f32 - beta);
            acc as f32
        })
        .collect()
}

/// `np.linspace(start, stop, num)` in f64: `i * step + start`, the last value exactly `stop`.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize, endpoint: bool) -> Vec<f64> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    let delta = stop - start;
    let mut y: Vec<f64> = if div > 0 {
        let step = delta / div as f64;
        if step == 0.0 {
            (0..num)
                .map(|i| i as f64 / div as f64 * delta + start)
                .collect()
        } else {
            (0..num).map(|i| i as f64 * step + start).collect()
        }
    } else {
        (0..num).map(|i| i as f64 * delta + start).collect()
    };
    if endpoint
        && num > 1
        && let Some(last) = y.last_mut()
    {
        *last = stop;
    }
    y
}

/// `np.arange(start, stop, step)` for floats: `ceil((stop - start) / step)` values, filled as
/// numpy does from the first two (`start + i * ((start + step) - start)`).
pub(crate) fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let span = (stop - start) / step;
    let len = if span.is_nan() || span <= 0.0 {
        0
    } else {
        span.ceil() as usize
    };
    let delta = (start + step) - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// `np.interp(x, arange(len(fp)), fp)` in f64, with numpy's edge rules (clamped outside,
/// exact at the sample points).
pub(crate) fn np_interp_index(x: f64, fp: &[f32]) -> f64 {
    let (Some(&first), Some(&last)) = (fp.first(), fp.last()) else {
        return f64::NAN;
    };
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return f64::from(first);
    }
    let top = (fp.len() - 1) as f64;
    if x >= top {
        return f64::from(last);
    }
    let j = x.floor() as usize;
    let (Some(&y0), Some(&y1)) = (fp.get(j), fp.get(j + 1)) else {
        return f64::from(last);
    };
    let (y0, y1) = (f64::from(y0), f64::from(y1));
    if x == j as f64 {
        return y0;
    }
    // numpy divides by xp[j + 1] - xp[j], which is 1 on this grid.
    let slope = y1 - y0;
    slope * (x - j as f64) + y0
}

/// The timesteps `timestep_spacing` picks, in f64 and in order (largest first), as
/// `EulerDiscreteScheduler` and `DDIMScheduler` compute them before their final casts:
/// `linspace` values are not rounded yet (DDIM rounds them, Euler keeps the fraction).
/// `steps` is at least 1.
pub(crate) fn spaced_timesteps(
    spacing: TimestepSpacing,
    num_train_timesteps: usize,
    steps: usize,
    steps_offset: usize,
) -> Vec<f64> {
    let train = num_train_timesteps;
    match spacing {
        TimestepSpacing::Linspace => {
            let mut t = np_linspace(0.0, (train - 1) as f64, steps, true);
            t.reverse();
            t
        }
        TimestepSpacing::Leading => {
            let ratio = train / steps;
            (0..steps)
                .rev()
                .map(|i| (i * ratio + steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = train as f64 / steps as f64;
            np_arange(train as f64, 0.0, -ratio)
                .into_iter()
                .map(|t| t.round_ties_even() - 1.0)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_ends_and_middle() {
        let v = np_linspace(0.0, 999.0, 4, true);
        assert_eq!(v, vec![0.0, 333.0, 666.0, 999.0]);
        assert_eq!(np_linspace(3.0, 7.0, 1, true), vec![3.0]);
        assert_eq!(
            np_linspace(0.0, 50.0, 4, false),
            vec![0.0, 12.5, 25.0, 37.5]
        );
    }

    #[test]
    fn arange_counts_like_numpy() {
        assert_eq!(
            np_arange(1000.0, 0.0, -250.0),
            vec![1000.0, 750.0, 500.0, 250.0]
        );
        // 1000 / 61 leaves a sliver past zero, so numpy (and diffusers) get 62 values.
        assert_eq!(np_arange(1000.0, 0.0, -1000.0 / 61.0).len(), 62);
        assert!(np_arange(0.0, 1.0, -1.0).is_empty());
    }

    #[test]
    fn interp_clamps_and_hits_points() {
        let fp = [1.0f32, 2.0, 4.0];
        assert_eq!(np_interp_index(-1.0, &fp), 1.0);
        assert_eq!(np_interp_index(0.5, &fp), 1.5);
        assert_eq!(np_interp_index(1.0, &fp), 2.0);
        assert_eq!(np_interp_index(1.25, &fp), 2.5);
        assert_eq!(np_interp_index(7.0, &fp), 4.0);
    }

    #[test]
    fn torch_linspace_single_and_ends() {
        assert_eq!(torch_linspace_f32(0.5, 2.0, 1), vec![0.5]);
        let v = torch_linspace_f32(0.00085, 0.012, 1000);
        assert_eq!(v[0], 0.00085f32);
        assert_eq!(v[999], 0.012f32);
    }
}
