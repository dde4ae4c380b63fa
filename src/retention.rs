//! How long runs stay bounded: raw records (task lifetimes, scheduler
//! slices, perf records) are kept for the last [`WINDOW_NS`] or up to a
//! share of [`BUDGET_BYTES`], whichever is smaller; older ones are dropped
//! from the front. What was dropped lives on as running totals (the run's
//! figures: [`crate::metrics::TaskTotals`], the kernel's per-thread totals)
//! and, in the drawing store, as the per-pixel summary
//! ([`crate::timeline`]). No GUI type here: the CLI's runs are bounded too.

/// Raw records are kept for this long (10 minutes)…
pub const WINDOW_NS: u64 = 600_000_000_000;

/// …or up to this many bytes of raw records across the engine's copies
/// (the recording's tasks and slices, the capture's records, the drawing
/// store's spans), whichever is smaller. Summaries, running totals and
/// spare capacity come on top; the whole stays under [`CAP_BYTES`].
pub const BUDGET_BYTES: usize = 512 << 20;

/// The stated ceiling on resident memory for a one-hour run at 80 000
/// context switches a second, everything included (`corelanes bench --long`
/// shows it).
pub const CAP_BYTES: usize = 1 << 30;

/// Each copy's share of [`BUDGET_BYTES`]: the recording's tasks, its slices,
/// the capture's records, and the drawing store each take an eighth… the
/// drawing store a quarter (it keeps two spans per running slice).
pub const TASKS_SHARE: usize = BUDGET_BYTES / 8;
pub const SLICES_SHARE: usize = BUDGET_BYTES / 8;
pub const CAPTURE_SHARE: usize = BUDGET_BYTES / 16;
pub const TIMELINE_SHARE: usize = BUDGET_BYTES / 4;

/// What a copy dropped from its front: how many items, and the latest end
/// among them (raw records before it are not all kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dropped {
    pub items: u64,
    pub before_ns: u64,
}

impl Dropped {
    pub fn any(&self) -> bool {
        self.items > 0
    }
}

/// Drops from the front of `items` (kept in arrival order, which is about
/// time order) what the window and the budget no longer allow, before
/// `incoming` more are appended at `now_ns`:
/// - once the item an eighth of the way in ended over [`WINDOW_NS`] ago,
///   the prefix that did (checked there, so that it costs nothing per call
///   and the copy it takes is amortised over an eighth of the items);
/// - where `incoming` would take the items over `budget` bytes, the oldest
///   half (each drop moves the kept items to the front: dropping half moves
///   one item per item taken in, a quarter would move three).
pub fn trim<T>(
    items: &mut Vec<T>,
    incoming: usize,
    now_ns: u64,
    budget: usize,
    end_ns: impl Fn(&T) -> u64,
    dropped: &mut Dropped,
) {
    let most = most_items::<T>(budget);
    let horizon = now_ns.saturating_sub(WINDOW_NS);
    let probe = items.len() / 8;
    let mut n = 0;
    if probe > 0 && end_ns(&items[probe]) < horizon {
        n = items.iter().take_while(|t| end_ns(t) < horizon).count();
    }
    if items.len() + incoming > most {
        n = n.max(items.len() / 2);
    }
    if n == 0 {
        return;
    }
    let latest = items[..n].iter().map(&end_ns).max().unwrap_or(0);
    items.drain(..n);
    dropped.items += n as u64;
    dropped.before_ns = dropped.before_ns.max(latest);
}

/// How many `T` [`trim`] keeps within `budget` bytes (so a copy need
/// never reserve more).
pub fn most_items<T>(budget: usize) -> usize {
    (budget / std::mem::size_of::<T>().max(1)).max(1024)
}

/// Resident memory of this process now, in bytes (`/proc/self/statm`), if readable.
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_drops_old_items_and_the_budget_the_oldest_half() {
        let mut items: Vec<u64> = (0..1000).map(|i| i * 1_000_000_000).collect();
        let mut dropped = Dropped::default();
        // At 1000 s, items that ended before 400 s are out of the window.
        trim(
            &mut items,
            0,
            1_000_000_000_000,
            usize::MAX,
            |&t| t,
            &mut dropped,
        );
        assert_eq!(items.first(), Some(&400_000_000_000));
        assert_eq!(
            dropped,
            Dropped {
                items: 400,
                before_ns: 399_000_000_000
            }
        );
        // A budget of 1024 items: 600 + 500 incoming do not fit, the oldest half goes.
        trim(
            &mut items,
            500,
            1_000_000_000_000,
            1024 * 8,
            |&t| t,
            &mut dropped,
        );
        assert_eq!((items.len(), dropped.items), (300, 700));
        // Within both: nothing moves.
        trim(
            &mut items,
            10,
            1_000_000_000_000,
            1024 * 8,
            |&t| t,
            &mut dropped,
        );
        assert_eq!(items.len(), 300);
    }
}
