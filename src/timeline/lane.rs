//! One lane of spans that never overlap (a core runs one thread at a time; a
//! thread is in one state at a time, and runs one task at a time), kept in
//! start order as a structure of arrays, with a multi-resolution summary
//! ([`super::summary`]) that answers "how much time did each class have in
//! this pixel column" in O(log n), however many spans the column holds.

use super::HeapBytes;
use super::summary::{KEEP, LEAF, Mix, Node, Summary};

/// Spans a kept summary node sums: a lane forgets its spans in such steps.
const STEP: usize = LEAF << KEEP;

/// What a lane's spans are told apart by when drawn: the thread (core lanes),
/// the scheduler state (thread strips), or nothing (one thread's tasks).
pub type Class = u16;

/// One stored span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Index into the run's tasks or scheduler slices.
    pub item: u32,
    pub class: Class,
}

/// Spans in start order, none overlapping (18 B a span plus the summary).
#[derive(Clone, Debug, Default)]
pub struct Lane {
    start: Vec<u64>,
    /// Lengths fit in 32 bits: a longer span is stored as several pieces.
    len: Vec<u32>,
    item: Vec<u32>,
    class: Vec<Class>,
    summary: Summary,
    /// Nanoseconds cut from spans that began before the previous one ended
    /// (sampled sources place edges to about a millisecond).
    pub clipped_ns: u64,
    /// Spans forgotten from the front (a multiple of [`STEP`]): the arrays
    /// start at this index of the lane's spans…
    base: usize,
    /// …and each forgotten [`STEP`] is known only by its kept summary node,
    /// which began here.
    kept_start: Vec<u64>,
}

impl Lane {
    /// Bytes per stored span, the summary included, when the arrays are full.
    pub const BYTES_PER_SPAN: f64 = (8 + 4 + 4 + 2) as f64 + Summary::BYTES_PER_SPAN;

    /// Bytes this lane holds on the heap (spare capacity included).
    pub fn heap(&self) -> HeapBytes {
        HeapBytes::of(&self.start, false)
            + HeapBytes::of(&self.len, false)
            + HeapBytes::of(&self.item, false)
            + HeapBytes::of(&self.class, false)
            + self.summary.heap()
            + HeapBytes::of(&self.kept_start, true)
    }

    /// Lets go of capacity not in use (a drained front's, a reserve's).
    pub fn shrink_to_fit(&mut self) {
        self.start.shrink_to_fit();
        self.len.shrink_to_fit();
        self.item.shrink_to_fit();
        self.class.shrink_to_fit();
        self.kept_start.shrink_to_fit();
        self.summary.shrink_to_fit();
    }

    /// Where the forgotten spans end: only their summary is kept before it (0: none forgotten).
    pub fn summarised_before_ns(&self) -> u64 {
        self.kept_start
            .len()
            .checked_sub(1)
            .map_or(0, |j| self.summary.kept()[j].end_ns())
    }

    /// Spans that end by `t` and could be forgotten now (whole steps only).
    pub fn forgettable(&self, t: u64) -> usize {
        let ended = self.start.partition_point(|&s| s < t);
        let ended = if ended > 0 && self.end(ended - 1) > t {
            ended - 1
        } else {
            ended
        };
        (self.base + ended) / STEP * STEP - self.base
    }

    /// Forgets the first `n` spans (a multiple of [`STEP`], at most
    /// [`Lane::forgettable`]): their summary nodes stay, drawn as an even
    /// spread of their classes' time over their stretch.
    pub fn forget(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(n.is_multiple_of(STEP) && n <= self.len());
        for k in (0..n).step_by(STEP) {
            self.kept_start.push(self.start[k]);
        }
        self.start.drain(..n);
        self.len.drain(..n);
        self.item.drain(..n);
        self.class.drain(..n);
        self.base += n;
        self.summary.forget(self.base);
    }

    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// Where the last span ends (0 for an empty lane).
    pub fn end_ns(&self) -> u64 {
        self.len()
            .checked_sub(1)
            .map_or_else(|| self.summarised_before_ns(), |i| self.end(i))
    }

    pub fn reserve(&mut self, spans: usize) {
        super::reserve_resident(&mut self.start, spans);
        super::reserve_resident(&mut self.len, spans);
        super::reserve_resident(&mut self.item, spans);
        super::reserve_resident(&mut self.class, spans);
    }

    /// Appends a span. One that begins before the previous one ended is cut
    /// to begin there (and dropped if nothing is left), so that spans never
    /// overlap: the summary's shares would otherwise exceed the time.
    #[inline]
    pub fn push(&mut self, start_ns: u64, end_ns: u64, item: u32, class: Class) {
        let mut start = start_ns.max(self.end_ns());
        self.clipped_ns += start.min(end_ns).saturating_sub(start_ns);
        while end_ns > start {
            let len = (end_ns - start).min(u64::from(u32::MAX));
            self.start.push(start);
            self.len.push(len as u32);
            self.item.push(item);
            self.class.push(class);
            start += len;
            if (self.base + self.len()).is_multiple_of(LEAF) {
                let from = self.len() - LEAF;
                let spans = (from..self.len()).map(|i| (self.class[i], self.len[i]));
                let node = Node::of_spans(spans, start);
                self.summary.push_leaf(node);
            }
        }
    }

    #[inline]
    fn end(&self, i: usize) -> u64 {
        self.start[i] + u64::from(self.len[i])
    }

    /// Renames every item kept, as `rename` maps them.
    pub fn rename_items(&mut self, rename: impl Fn(u32) -> u32) {
        self.item.iter_mut().for_each(|item| *item = rename(*item));
    }

    pub fn get(&self, i: usize) -> Span {
        Span {
            start_ns: self.start[i],
            end_ns: self.end(i),
            item: self.item[i],
            class: self.class[i],
        }
    }

    /// Index of the first span that ends after `t`.
    fn first_ending_after(&self, t: u64) -> usize {
        let i = self.start.partition_point(|&s| s <= t);
        if i > 0 && self.end(i - 1) > t {
            i - 1
        } else {
            i
        }
    }

    /// The span under time `t`, if any.
    pub fn hit(&self, t: u64) -> Option<Span> {
        let i = self.first_ending_after(t);
        (i < self.len() && self.start[i] <= t).then(|| self.get(i))
    }

    /// Each class's time within `[a, b)`.
    pub fn mix(&self, a: u64, b: u64) -> Mix {
        let mut out = [Mix::default()];
        self.columns(&[a, b], &mut out, &mut Vec::new(), u64::MAX);
        let [mix] = out;
        mix
    }

    /// Fills `out[k]` with each class's time in the column `[bounds[k],
    /// bounds[k + 1])` (bounds ascending, `out.len() == bounds.len() - 1`),
    /// and appends to `wide` the index of every span at least `wide_ns`
    /// long that touches a column (each once), so that they can be outlined
    /// and named. Whole summary nodes are taken where they fit inside a
    /// column, so the cost depends on the columns, not on the spans stored.
    pub fn columns(&self, bounds: &[u64], out: &mut [Mix], wide: &mut Vec<usize>, wide_ns: u64) {
        debug_assert_eq!(out.len() + 1, bounds.len());
        let Some(&first) = bounds.first() else {
            return;
        };
        let n = self.len();
        let mut i = self.first_ending_after(first);
        let mut last_wide = usize::MAX;
        for (k, mix) in out.iter_mut().enumerate() {
            let (a, b) = (bounds[k], bounds[k + 1]);
            mix.reset(b - a);
            while i < n && self.start[i] < b {
                if (self.base + i).is_multiple_of(LEAF)
                    && self.start[i] >= a
                    && let Some((node, count)) = self.summary.largest_at(self.base + i, b)
                {
                    mix.add_node(node, count as u64);
                    i += count;
                    continue;
                }
                let (s, e) = (self.start[i], self.end(i));
                mix.add(self.class[i], e.min(b) - s.max(a), 1);
                if e - s >= wide_ns && last_wide != i {
                    wide.push(i);
                    last_wide = i;
                }
                if e > b {
                    break; // it goes on in the next column
                }
                i += 1;
            }
        }
        self.forgotten_columns(bounds, out);
    }

    /// Adds the forgotten stretch's share of each column, from the kept summary nodes.
    fn forgotten_columns(&self, bounds: &[u64], out: &mut [Mix]) {
        let kept = &self.summary.kept()[..self.kept_start.len()];
        let mut j = kept.partition_point(|n| n.end_ns() <= bounds[0]);
        for (k, mix) in out.iter_mut().enumerate() {
            let (a, b) = (bounds[k], bounds[k + 1]);
            while j < kept.len() && self.kept_start[j] < b {
                let (s, e) = (self.kept_start[j], kept[j].end_ns());
                let part = e.min(b).saturating_sub(s.max(a));
                if part > 0 {
                    mix.add_part(&kept[j], part, e - s, STEP as u64);
                }
                if e > b {
                    break; // it goes on in the next column
                }
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns of equal width over `[t0, t1)`.
    fn even(t0: u64, t1: u64, n: u64) -> Vec<u64> {
        (0..=n).map(|k| t0 + (t1 - t0) * k / n).collect()
    }

    fn columns(lane: &Lane, bounds: &[u64]) -> Vec<Mix> {
        let mut out = vec![Mix::default(); bounds.len() - 1];
        lane.columns(bounds, &mut out, &mut Vec::new(), u64::MAX);
        out
    }

    /// Each class's time in `[a, b)`, by walking every span: the reference.
    fn brute(lane: &Lane, a: u64, b: u64) -> std::collections::BTreeMap<Class, u64> {
        let mut m = std::collections::BTreeMap::new();
        for i in 0..lane.len() {
            let s = lane.get(i);
            let ns = s.end_ns.min(b).saturating_sub(s.start_ns.max(a));
            if ns > 0 {
                *m.entry(s.class).or_default() += ns;
            }
        }
        m
    }

    #[test]
    fn a_million_alternating_slices_at_fit_read_three_to_one_in_every_column() {
        let mut lane = Lane::default();
        let mut t = 0;
        for i in 0..1_000_000u32 {
            let (class, len) = if i % 2 == 0 { (0, 3_000) } else { (1, 1_000) };
            lane.push(t, t + len, i, class);
            t += len;
        }
        let cols = columns(&lane, &even(0, t, 800));
        for (k, mix) in cols.iter().enumerate() {
            let share = mix.ns_of(0) as f64 / mix.covered_ns() as f64;
            assert!((share - 0.75).abs() <= 0.02, "column {k}: {share:.4}");
            assert_eq!(
                mix.covered_ns(),
                mix.width_ns,
                "column {k} is fully covered"
            );
            assert!(mix.slices >= 1_000, "column {k}: {} slices", mix.slices);
        }
    }

    #[test]
    fn three_threads_get_a_third_each() {
        let mut lane = Lane::default();
        for i in 0..300_000u64 {
            lane.push(i * 1_000, i * 1_000 + 1_000, i as u32, (i % 3) as Class);
        }
        for mix in columns(&lane, &even(0, 300_000_000, 777)) {
            for class in 0..3 {
                let share = mix.ns_of(class) as f64 / mix.covered_ns() as f64;
                assert!((share - 1.0 / 3.0).abs() <= 0.02, "{share:.4}");
            }
        }
    }

    #[test]
    fn a_thread_running_alone_at_the_end_reads_alone() {
        let mut lane = Lane::default();
        // 0..60 ms: two threads alternate every 2 ms; 60..100 ms: thread 1 alone.
        for i in 0..30u64 {
            lane.push(
                i * 2_000_000,
                i * 2_000_000 + 2_000_000,
                i as u32,
                (i % 2) as Class,
            );
        }
        lane.push(60_000_000, 100_000_000, 30, 1);
        let cols = columns(&lane, &even(0, 100_000_000, 100));
        for mix in &cols[60..] {
            assert_eq!(mix.ns_of(1), mix.width_ns);
            assert_eq!(mix.ns_of(0), 0);
        }
        let mixed: u64 = cols[..60].iter().map(|m| m.ns_of(0)).sum();
        assert_eq!(mixed, 30_000_000, "thread 0 ran 15 × 2 ms");
    }

    #[test]
    fn summary_agrees_with_a_walk_over_every_span() {
        // Irregular spans, gaps, and more classes than a node names.
        let mut lane = Lane::default();
        let mut t = 0u64;
        let mut x = 12345u64;
        for i in 0..50_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (x >> 33) % 5_000;
            let gap = (x >> 20) % 3_000;
            let class = ((x >> 45) % 20) as Class;
            lane.push(t + gap, t + gap + len, i, class);
            t += gap + len;
        }
        let bounds = even(0, t + 10_000, 313);
        for (k, mix) in columns(&lane, &bounds).iter().enumerate() {
            let truth = brute(&lane, bounds[k], bounds[k + 1]);
            let total: u64 = truth.values().sum();
            assert_eq!(mix.covered_ns(), total, "column {k}: total time is exact");
            for (class, ns) in mix.shares() {
                assert!(ns <= truth[&class], "named time never exceeds the truth");
            }
            // Named classes plus "others" account for every class.
            let named: u64 = mix.shares().map(|(_, ns)| ns).sum();
            assert_eq!(named + mix.others_ns, total);
        }
    }

    #[test]
    fn with_few_classes_every_column_is_exact() {
        let mut lane = Lane::default();
        let mut t = 0u64;
        for i in 0..20_000u32 {
            let len = 100 + u64::from(i % 7) * 37;
            lane.push(t, t + len, i, (i % 5) as Class);
            t += len + u64::from(i % 3) * 11;
        }
        let bounds = even(0, t, 97);
        for (k, mix) in columns(&lane, &bounds).iter().enumerate() {
            let truth = brute(&lane, bounds[k], bounds[k + 1]);
            let got: std::collections::BTreeMap<Class, u64> = mix.shares().collect();
            assert_eq!(got, truth, "column {k}");
            assert_eq!(mix.others_ns, 0);
        }
    }

    #[test]
    fn overlaps_are_cut_and_long_spans_split() {
        let mut lane = Lane::default();
        lane.push(0, 100, 0, 0);
        lane.push(50, 150, 1, 1); // starts inside the first: cut to 100..150
        lane.push(120, 140, 2, 0); // wholly inside: dropped
        assert_eq!(lane.len(), 2);
        assert_eq!(lane.get(1).start_ns, 100);
        assert_eq!(lane.clipped_ns, 50 + 20);
        let long = 3 * u64::from(u32::MAX);
        lane.push(1_000, 1_000 + long, 3, 2);
        assert_eq!(lane.len(), 5, "a 12.9 s span is stored as three pieces");
        assert_eq!(lane.end_ns(), 1_000 + long);
        assert_eq!(lane.hit(1_000 + long / 2).map(|s| s.item), Some(3));
        assert_eq!(lane.hit(500), None);
        assert_eq!(lane.mix(0, 2_000 + long).ns_of(2), long);
    }

    #[test]
    fn wide_spans_are_reported_once_each() {
        let mut lane = Lane::default();
        lane.push(0, 10, 0, 0);
        lane.push(10, 1_000, 1, 1); // spans many columns
        lane.push(1_000, 1_005, 2, 0);
        let bounds = even(0, 1_100, 11);
        let mut out = vec![Mix::default(); 11];
        let mut wide = Vec::new();
        lane.columns(&bounds, &mut out, &mut wide, 200);
        assert_eq!(wide, vec![1]);
    }
}
