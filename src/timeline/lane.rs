//! One lane of spans as a structure of arrays (20 B a span).

/// Spans on one lane, sorted by start once settled. Spans of one lane may
/// overlap (task lifetimes of several threads on one core); the longest span
/// bounds how far back a range query must look.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    start: Vec<u64>,
    end: Vec<u64>,
    item: Vec<u32>,
    max_len: u64,
    max_end: u64,
    sorted: bool,
}

/// What to draw for a visible range: one span, or several too narrow to see
/// folded into one marked block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drawn {
    pub start_ns: u64,
    pub end_ns: u64,
    /// The span's item; for a folded block, the first span's item.
    pub item: u32,
    /// How many spans this covers (1: a single span).
    pub count: u32,
}

impl Lane {
    pub fn len(&self) -> usize {
        self.start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    pub fn max_end(&self) -> u64 {
        self.max_end
    }

    /// Bytes held per stored span (for the memory figure).
    pub const BYTES_PER_SPAN: usize = 2 * std::mem::size_of::<u64>() + std::mem::size_of::<u32>();

    pub fn reserve(&mut self, spans: usize) {
        super::reserve_resident(&mut self.start, spans);
        super::reserve_resident(&mut self.end, spans);
        super::reserve_resident(&mut self.item, spans);
    }

    #[inline]
    pub fn push(&mut self, start_ns: u64, end_ns: u64, item: u32) {
        let end_ns = end_ns.max(start_ns);
        if self.start.last().is_some_and(|&last| start_ns < last) {
            self.sorted = false;
        } else if self.start.is_empty() {
            self.sorted = true;
        }
        self.start.push(start_ns);
        self.end.push(end_ns);
        self.item.push(item);
        self.max_len = self.max_len.max(end_ns - start_ns);
        self.max_end = self.max_end.max(end_ns);
    }

    /// Restores start order after out-of-order pushes.
    pub fn settle(&mut self) {
        if self.sorted || self.is_empty() {
            self.sorted = true;
            return;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.start[i]);
        self.start = order.iter().map(|&i| self.start[i]).collect();
        self.end = order.iter().map(|&i| self.end[i]).collect();
        self.item = order.iter().map(|&i| self.item[i]).collect();
        self.sorted = true;
    }

    pub fn get(&self, i: usize) -> (u64, u64, u32) {
        (self.start[i], self.end[i], self.item[i])
    }

    /// Indices of spans that may intersect `[t0, t1]` (binary search on start,
    /// reaching back by the longest span). Unsettled lanes answer everything.
    pub fn visible(&self, t0: u64, t1: u64) -> std::ops::Range<usize> {
        if !self.sorted {
            return 0..self.len();
        }
        let from = self
            .start
            .partition_point(|&s| s < t0.saturating_sub(self.max_len));
        let to = self.start.partition_point(|&s| s <= t1);
        from..to.max(from)
    }

    /// The span under time `t`, if any (the latest-starting one).
    pub fn hit(&self, t: u64) -> Option<(u64, u64, u32)> {
        self.visible(t, t)
            .rev()
            .map(|i| self.get(i))
            .find(|&(s, e, _)| s <= t && t <= e)
    }

    /// Appends to `out` what to draw of `[t0, t1]` at `ns_per_px`: spans at
    /// least `min_px` wide as they are; runs of narrower spans whose gaps are
    /// also narrower than `min_px` as one folded block.
    pub fn fold(&self, t0: u64, t1: u64, ns_per_px: f64, min_px: f64, out: &mut Vec<Drawn>) {
        let min_ns = (ns_per_px * min_px).max(1.0) as u64;
        let range = self.visible(t0, t1);
        let mut i = range.start;
        while i < range.end {
            let (start, end, item) = self.get(i);
            i += 1;
            if end < t0 || start > t1 {
                continue;
            }
            let mut block = Drawn {
                start_ns: start,
                end_ns: end,
                item,
                count: 1,
            };
            if end - start < min_ns {
                while i < range.end {
                    let (s, e, _) = self.get(i);
                    if e - s >= min_ns || s > block.end_ns + min_ns {
                        break;
                    }
                    block.end_ns = block.end_ns.max(e);
                    block.count += 1;
                    i += 1;
                }
            }
            out.push(block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_query_and_folding() {
        let mut lane = Lane::default();
        // 1000 spans of 10 ns every 20 ns, then one long span.
        for i in 0..1000u64 {
            lane.push(i * 20, i * 20 + 10, i as u32);
        }
        lane.push(30_000, 40_000, 1000);
        lane.settle();
        let r = lane.visible(100, 200);
        assert!(r.start <= 5 && r.end >= 11, "{r:?}");
        // At 1 ns/px every span is wide enough: drawn one by one.
        let mut out = Vec::new();
        lane.fold(100, 199, 1.0, 3.0, &mut out);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|d| d.count == 1));
        // At 100 ns/px the 1000 short spans fold into one block; the long one stays.
        out.clear();
        lane.fold(0, 50_000, 100.0, 3.0, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].count, 1000);
        assert_eq!(
            out[1],
            Drawn {
                start_ns: 30_000,
                end_ns: 40_000,
                item: 1000,
                count: 1
            }
        );
        assert_eq!(lane.hit(35_000).map(|h| h.2), Some(1000));
        assert_eq!(lane.hit(15), None);
    }

    #[test]
    fn out_of_order_pushes_are_sorted_by_settle() {
        let mut lane = Lane::default();
        lane.push(50, 60, 0);
        lane.push(10, 100, 1);
        lane.settle();
        assert_eq!(lane.get(0), (10, 100, 1));
        // The long span starting early is still found from a late time.
        assert_eq!(lane.hit(90).map(|h| h.2), Some(1));
    }
}
