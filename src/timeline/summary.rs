//! The multi-resolution summary of one lane, in the manner of Perfetto's
//! quantized CPU view: a segment tree over the lane's spans in start order.
//! A leaf node sums [`LEAF`] spans; each level above sums pairs of the one
//! below. A node holds the nanoseconds of the [`K`] classes with the most
//! time under it, and the rest as "others", so any pixel column's shares
//! come from O(log n) nodes plus the loose spans at its two ends.
//!
//! Spans arrive in start order, so the tree only grows at its right edge:
//! a live run costs the same per span as a finished one.

use super::HeapBytes;
use super::lane::Class;

/// Spans summed by one leaf node.
pub const LEAF: usize = 64;
/// Classes a node names; more than this (over 12 threads sharing a core in
/// one node's stretch of time) and the least of them become "others".
const K: usize = 12;
/// Classes a column's tally names: two nodes' worth, so merging keeps the top ones.
const M: usize = 2 * K;

/// The time of each class under one node.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    class: [Class; K],
    ns: [u64; K],
    others: u64,
    /// Where its last span ends: whether it fits in a column is read here,
    /// not from the far end of the span arrays (a cache miss per level).
    end_ns: u64,
}

impl Node {
    /// Sums a leaf's spans, given as (class, length); the last ends at `end_ns`.
    pub fn of_spans(spans: impl Iterator<Item = (Class, u32)>, end_ns: u64) -> Node {
        let mut mix = Mix::default();
        for (class, len) in spans {
            mix.add(class, u64::from(len), 0);
        }
        Node::top_of(&mix, end_ns)
    }

    fn merge(a: &Node, b: &Node) -> Node {
        let mut mix = Mix::default();
        mix.add_node(a, 0);
        mix.add_node(b, 0);
        Node::top_of(&mix, b.end_ns)
    }

    /// The `K` classes of `mix` with the most time; the rest as others.
    fn top_of(mix: &Mix, end_ns: u64) -> Node {
        let mut order: [usize; M] = std::array::from_fn(|i| i);
        let order = &mut order[..mix.len];
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(mix.ns[i]));
        let mut node = Node {
            class: [0; K],
            ns: [0; K],
            others: mix.others_ns,
            end_ns,
        };
        for (slot, &i) in order.iter().enumerate() {
            if slot < K {
                (node.class[slot], node.ns[slot]) = (mix.class[i], mix.ns[i]);
            } else {
                node.others += mix.ns[i];
            }
        }
        node
    }
}

/// The level whose nodes outlive the spans they sum (each sums `LEAF <<
/// KEEP` = 4096 spans): the summary of a long run's older part.
pub const KEEP: usize = 6;

/// Nodes level by level: `levels[l][j]` sums spans `(first[l] + j)·LEAF·2^l ..`
/// of the lane (the nodes below [`KEEP`] of forgotten spans are dropped).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    levels: Vec<Vec<Node>>,
    first: Vec<usize>,
}

impl Summary {
    /// About two nodes per leaf's worth of spans (the levels above add up to one more).
    pub const BYTES_PER_SPAN: f64 = 2.0 * std::mem::size_of::<Node>() as f64 / LEAF as f64;

    pub fn heap(&self) -> HeapBytes {
        self.levels.iter().map(|l| HeapBytes::of(l, true)).sum()
    }

    pub fn shrink_to_fit(&mut self) {
        self.levels.iter_mut().for_each(Vec::shrink_to_fit);
    }

    /// Adds the node of the next `LEAF` spans, and every node above it that is now complete.
    pub fn push_leaf(&mut self, mut node: Node) {
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
                self.first.push(0);
            }
            let nodes = &mut self.levels[level];
            nodes.push(node);
            let n = nodes.len();
            // Forgetting keeps whole pairs, so a left sibling is still here.
            if !(self.first[level] + n).is_multiple_of(2) {
                return;
            }
            node = Node::merge(&nodes[n - 2], &nodes[n - 1]);
        }
    }

    /// The largest node that begins at span `i` and ends by `end_ns`, with
    /// the number of spans it covers.
    pub fn largest_at(&self, i: usize, end_ns: u64) -> Option<(&Node, usize)> {
        let mut best = None;
        for (level, nodes) in self.levels.iter().enumerate() {
            let size = LEAF << level;
            if !i.is_multiple_of(size) {
                break;
            }
            match (i / size)
                .checked_sub(self.first[level])
                .and_then(|j| nodes.get(j))
            {
                Some(node) if node.end_ns <= end_ns => best = Some((node, size)),
                _ => break,
            }
        }
        best
    }
}

impl Summary {
    /// Drops the nodes below [`KEEP`] of the spans before `base` (a multiple of `LEAF << KEEP`).
    pub fn forget(&mut self, base: usize) {
        for (level, nodes) in self.levels.iter_mut().enumerate().take(KEEP) {
            let gone = (base / (LEAF << level)).saturating_sub(self.first[level]);
            nodes.drain(..gone.min(nodes.len()));
            self.first[level] += gone;
        }
    }

    /// The nodes of level [`KEEP`] (none dropped), for the forgotten spans' summary.
    pub fn kept(&self) -> &[Node] {
        self.levels.get(KEEP).map_or(&[], Vec::as_slice)
    }
}

impl Node {
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }
}

/// Each class's time in one pixel column (or a group of them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mix {
    class: [Class; M],
    ns: [u64; M],
    len: usize,
    /// Time of classes not named (more classes than a node or a column names).
    pub others_ns: u64,
    /// Spans that touch the column.
    pub slices: u64,
    /// The column's own length.
    pub width_ns: u64,
}

impl Mix {
    /// An empty tally of a column `width_ns` long.
    pub fn of_width(width_ns: u64) -> Mix {
        Mix {
            width_ns,
            ..Mix::default()
        }
    }

    #[inline]
    pub fn add(&mut self, class: Class, ns: u64, slices: u64) {
        self.slices += slices;
        if ns == 0 {
            return;
        }
        match self.class[..self.len].iter().position(|&c| c == class) {
            Some(i) => self.ns[i] += ns,
            None if self.len < M => {
                (self.class[self.len], self.ns[self.len]) = (class, ns);
                self.len += 1;
            }
            None => self.others_ns += ns,
        }
    }

    pub fn add_node(&mut self, node: &Node, slices: u64) {
        for (&class, &ns) in node.class.iter().zip(&node.ns) {
            self.add(class, ns, 0);
        }
        self.others_ns += node.others;
        self.slices += slices;
    }

    /// Adds the share `part / whole` of a node, as if its time were spread
    /// evenly (a forgotten stretch's summary is all that is left of it).
    pub fn add_part(&mut self, node: &Node, part: u64, whole: u64, spans: u64) {
        let share = |ns: u64| (u128::from(ns) * u128::from(part) / u128::from(whole.max(1))) as u64;
        for (&class, &ns) in node.class.iter().zip(&node.ns) {
            self.add(class, share(ns), 0);
        }
        self.others_ns += share(node.others);
        self.slices += share(spans);
    }

    /// Adds another column's tally (to draw a group of columns as one).
    pub fn merge(&mut self, other: &Mix) {
        for (class, ns) in other.shares() {
            self.add(class, ns, 0);
        }
        self.others_ns += other.others_ns;
        self.slices += other.slices;
        self.width_ns += other.width_ns;
    }

    /// Empties the tally for a column `width_ns` long. The arrays past `len`
    /// are never read, so they are left as they are: writing the whole
    /// 272-byte tally for every column of every lane was a third of a
    /// 256-core frame.
    #[inline]
    pub fn reset(&mut self, width_ns: u64) {
        (self.len, self.others_ns, self.slices, self.width_ns) = (0, 0, 0, width_ns);
    }

    /// Keeps only the classes `keep` names; the others' time is counted as
    /// others (they share one colour where they are drawn). In place, for
    /// the same reason as [`Mix::reset`].
    pub fn keep_only(&mut self, keep: impl Fn(Class) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            if keep(self.class[i]) {
                (self.class[kept], self.ns[kept]) = (self.class[i], self.ns[i]);
                kept += 1;
            } else {
                self.others_ns += self.ns[i];
            }
        }
        self.len = kept;
    }

    /// Counts each class that `folded` maps to another as that one, merged
    /// (threads without a colour of their own share one of two greys where
    /// they are drawn). In place, for the same reason as [`Mix::reset`];
    /// the classes kept as they are keep their order, the merged follow.
    /// It merges into two classes at most (the greys): time `folded` maps
    /// to a third is counted as others.
    pub fn fold(&mut self, folded: impl Fn(Class) -> Option<Class>) {
        let mut merged: [(Class, u64); 2] = [(0, 0); 2];
        let (mut kept, mut n) = (0, 0);
        for i in 0..self.len {
            let (class, ns) = (self.class[i], self.ns[i]);
            let Some(into) = folded(class) else {
                (self.class[kept], self.ns[kept]) = (class, ns);
                kept += 1;
                continue;
            };
            match merged[..n].iter_mut().find(|(c, _)| *c == into) {
                Some((_, sum)) => *sum += ns,
                None if n < 2 => {
                    merged[n] = (into, ns);
                    n += 1;
                }
                None => self.others_ns += ns,
            }
        }
        for &(class, ns) in &merged[..n] {
            (self.class[kept], self.ns[kept]) = (class, ns);
            kept += 1;
        }
        self.len = kept;
    }

    /// The named classes and their time, in the order first seen.
    pub fn shares(&self) -> impl Iterator<Item = (Class, u64)> + '_ {
        self.class[..self.len]
            .iter()
            .copied()
            .zip(self.ns[..self.len].iter().copied())
    }

    pub fn ns_of(&self, class: Class) -> u64 {
        self.shares()
            .find(|&(c, _)| c == class)
            .map_or(0, |(_, ns)| ns)
    }

    /// Time covered by any span.
    pub fn covered_ns(&self) -> u64 {
        self.shares().map(|(_, ns)| ns).sum::<u64>() + self.others_ns
    }

    /// The only class in the column when one class covers all of it.
    pub fn solid(&self) -> Option<Class> {
        (self.len == 1 && self.others_ns == 0 && self.ns[0] >= self.width_ns)
            .then_some(self.class[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_narrowed_in_place_counts_the_rest_as_others() {
        let mut mix = Mix::of_width(100);
        for (class, ns) in [(3, 10), (5, 20), (7, 30), (9, 40)] {
            mix.add(class, ns, 1);
        }
        mix.keep_only(|class| class == 5 || class == 9);
        let shares: Vec<(Class, u64)> = mix.shares().collect();
        assert_eq!(shares, vec![(5, 20), (9, 40)], "in the order first seen");
        assert_eq!((mix.others_ns, mix.slices, mix.width_ns), (40, 4, 100));
    }

    #[test]
    fn a_tally_reset_or_folded_in_place_holds_only_what_it_should() {
        let mut mix = Mix::of_width(100);
        for (class, ns) in [(3, 10), (5, 20), (7, 30), (9, 40), (11, 1)] {
            mix.add(class, ns, 1);
        }
        // 3 and 7 drawn as 3, 9 as 4; 5 as it is; 11 as a third, so as others.
        mix.fold(|class| match class {
            3 | 7 => Some(3),
            9 => Some(4),
            11 => Some(6),
            _ => None,
        });
        let shares: Vec<(Class, u64)> = mix.shares().collect();
        assert_eq!(shares, vec![(5, 20), (3, 40), (4, 40)], "kept, then merged");
        assert_eq!((mix.others_ns, mix.slices, mix.width_ns), (1, 5, 100));
        // Reused for the next column: nothing of the last one shows.
        mix.reset(50);
        assert_eq!(mix.shares().count(), 0);
        assert_eq!((mix.covered_ns(), mix.slices, mix.width_ns), (0, 0, 50));
        mix.add(9, 50, 1);
        assert_eq!(mix.solid(), Some(9));
        assert_eq!(mix.ns_of(5), 0, "a stale entry past len is not read");
    }

    #[test]
    fn nodes_keep_the_classes_with_most_time() {
        // 20 classes, class c has c + 1 ns: the top 12 are named, the rest are others.
        let node = Node::of_spans((0..20u16).map(|c| (c, u32::from(c) + 1)), 210);
        let mut mix = Mix::default();
        mix.add_node(&node, 0);
        assert_eq!(mix.covered_ns(), (1..=20).sum::<u64>());
        assert_eq!(mix.ns_of(19), 20);
        assert_eq!(mix.ns_of(7), 0, "among the least: counted as others");
        assert_eq!(mix.others_ns, (1..=8).sum::<u64>());
    }

    #[test]
    fn the_tree_grows_at_its_right_edge() {
        let mut s = Summary::default();
        for _ in 0..5 {
            s.push_leaf(Node::of_spans([(0, 10)].into_iter(), 10));
        }
        let sizes: Vec<usize> = s.levels.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![5, 2, 1]);
        let (_, spans) = s.largest_at(0, u64::MAX).unwrap();
        assert_eq!(spans, 4 * LEAF);
        assert_eq!(s.largest_at(4 * LEAF, u64::MAX).unwrap().1, LEAF);
        assert!(
            s.largest_at(5 * LEAF, u64::MAX).is_none(),
            "not complete yet"
        );
        assert!(s.largest_at(LEAF / 2, u64::MAX).is_none(), "not aligned");
        assert!(s.largest_at(0, 9).is_none(), "ends after the column");
    }
}
