//! Colours and their meanings, shared by every view and legend, so that a
//! thread has the same colour in the timeline, the legend and a compare view.

use eframe::egui;
use egui::Color32;

use crate::telemetry::sched::SliceState;

/// Okabe–Ito's colour-blind-safe set first, without the colours the state
/// strips use (green: running, vermilion: waiting, grey: blocked) and
/// without black and yellow, which vanish on a white slide; then a few more
/// hues far from the states'.
const THREADS: [Color32; THREAD_COLOURS] = [
    Color32::from_rgb(0, 114, 178),   // blue
    Color32::from_rgb(230, 159, 0),   // orange
    Color32::from_rgb(204, 121, 167), // reddish purple
    Color32::from_rgb(86, 180, 233),  // sky blue
    Color32::from_rgb(120, 94, 240),  // violet
    Color32::from_rgb(100, 30, 130),  // deep purple
    Color32::from_rgb(23, 190, 207),  // cyan
    Color32::from_rgb(150, 150, 0),   // olive
    Color32::from_rgb(190, 30, 170),  // magenta
    Color32::from_rgb(40, 40, 120),   // navy
];

/// How many threads have a colour of their own.
pub const THREAD_COLOURS: usize = 10;

/// Threads a lane's summary could not name (over a dozen sharing a core),
/// and the first grey of threads without a colour of their own.
pub const OTHERS: Color32 = Color32::from_rgb(90, 90, 90);
/// The second grey of threads without a colour of their own (see
/// `gui::timeline::colours`): apart from [`OTHERS`], the blocked state's
/// grey and other programs' light grey.
pub const OTHERS_ALT: Color32 = Color32::from_rgb(140, 140, 140);

/// Grey `shade` (0 or 1) of a thread without a colour of its own.
pub fn other_thread(shade: u8) -> Color32 {
    if shade == 0 { OTHERS } else { OTHERS_ALT }
}

/// Other programs on a core (system-wide capture): a neutral grey, hatched
/// with [`OTHER_PROGRAMS_HATCH`], unlike any thread of the run.
pub const OTHER_PROGRAMS: Color32 = Color32::from_rgb(200, 200, 200);
pub const OTHER_PROGRAMS_HATCH: Color32 = Color32::from_rgb(140, 140, 140);

/// The colour of worker thread `index` (repeats after [`THREAD_COLOURS`] threads).
pub fn thread(index: usize) -> Color32 {
    THREADS[index % THREADS.len()]
}

/// Core colours for the utilisation plot: hues unlike the threads', so that
/// "core 1" is never mistaken for "worker-1".
const CORES: [Color32; 6] = [
    Color32::from_rgb(40, 40, 40),
    Color32::from_rgb(150, 50, 150),
    Color32::from_rgb(110, 120, 0),
    Color32::from_rgb(0, 120, 120),
    Color32::from_rgb(170, 90, 40),
    Color32::from_rgb(90, 90, 200),
];

/// The colour of core `index` in the utilisation plot (repeats after six).
pub fn core(index: usize) -> Color32 {
    CORES[index % CORES.len()]
}

/// The colour of a scheduler state in the thin strip under a thread lane.
pub fn state(state: SliceState) -> Color32 {
    match state {
        SliceState::Running => Color32::from_rgb(40, 160, 70),
        SliceState::Runnable => Color32::from_rgb(225, 60, 50),
        SliceState::Blocked => Color32::from_rgb(175, 175, 185),
    }
}

/// What a scheduler state means, in the words of the legend.
pub fn state_label(state: SliceState) -> &'static str {
    match state {
        SliceState::Running => "running on a core",
        SliceState::Runnable => "waiting for a CPU (runnable)",
        SliceState::Blocked => "blocked (sleep, I/O, lock)",
    }
}

pub const STATES: [SliceState; 3] = [
    SliceState::Running,
    SliceState::Runnable,
    SliceState::Blocked,
];

/// Outline of a task that failed or was cut short.
pub const FAILED: Color32 = Color32::from_rgb(200, 0, 0);
/// Outline of the selected task.
pub const SELECTED: Color32 = Color32::BLACK;
/// A lock hand-off's arrow, from a release to the acquire it unblocked.
pub const HANDOFF: Color32 = Color32::from_rgb(20, 20, 20);
/// Text of warnings and failures.
pub const WARNING: Color32 = Color32::from_rgb(180, 40, 20);
/// Text that confirms something was done.
pub const SUCCESS: Color32 = Color32::from_rgb(20, 120, 50);

/// Black or white, whichever reads better on `background`.
pub fn text_on(background: Color32) -> Color32 {
    let [r, g, b, _] = background.to_array().map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 150.0 {
        Color32::BLACK
    } else {
        Color32::WHITE
    }
}

/// A colour at `alpha` (0–1) opacity, for backgrounds and weak text.
pub fn faded(color: Color32, alpha: f32) -> Color32 {
    color.gamma_multiply(alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hue in degrees and saturation-ish spread of an opaque colour.
    fn hue(c: Color32) -> (f32, u8) {
        let [r, g, b, _] = c.to_array();
        let hsv = egui::ecolor::Hsva::from(c);
        (hsv.h * 360.0, r.max(g).max(b) - r.min(g).min(b))
    }

    #[test]
    fn no_thread_colour_can_be_read_as_a_state() {
        for i in 0..THREAD_COLOURS {
            let (h, spread) = hue(thread(i));
            assert!(spread >= 60, "worker-{i} is greyish, like 'blocked'");
            for s in STATES.into_iter().filter(|&s| s != SliceState::Blocked) {
                let (hs, _) = hue(state(s));
                let d = (h - hs).abs().min(360.0 - (h - hs).abs());
                assert!(d >= 12.0, "worker-{i} is {d:.0}° from {s:?}");
            }
        }
    }
}
