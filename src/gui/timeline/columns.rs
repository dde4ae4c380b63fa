//! From each pixel column's exact time shares to one colour per column.
//!
//! Columns inside a span wide enough to draw on its own are painted with it.
//! Between them, columns are painted in groups of up to [`GROUP`]: each
//! class gets a number of the group's columns proportional to its time
//! (largest remainder), classes always in the same order, so neighbouring
//! groups line up into stripes and a time-sliced core reads as alternation,
//! in the legend's own colours: no blended colour, and no horizontal bands
//! that would look like two threads running at once. What a group could not
//! show (a class with a third of a column, say) is carried to the next group,
//! so a thread that runs 10 % of the time in slivers still gets 10 % of the
//! columns, never none.

use crate::timeline::{Class, Mix};

/// Columns painted as one group of proportional stripes.
pub const GROUP: usize = 8;

/// What one pixel column is painted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Paint {
    Class(Class),
    /// Classes a summary node could not name (over a dozen threads sharing it).
    Others,
    /// Nothing of the lane's spans: the lane's background.
    Empty,
}

/// One paint per column of `mixes`, into `out`. `exact[k]`: column `k` lies
/// inside one span drawn on its own, so it shows that span as it is.
/// Columns of no time (before the run's origin) are empty and end a group.
pub fn assign(mixes: &[Mix], exact: &[bool], out: &mut Vec<Paint>) {
    out.clear();
    let exact = |k: usize| exact[k] || mixes[k].width_ns == 0;
    // Columns owed to each paint from earlier groups (each within ±1).
    let mut carry: Vec<(Paint, f64)> = Vec::new();
    let mut k = 0;
    while k < mixes.len() {
        if exact(k) {
            out.push(mixes[k].solid().map_or(Paint::Empty, Paint::Class));
            k += 1;
            continue;
        }
        let mut end = k + 1;
        while end < mixes.len() && end - k < GROUP && !exact(end) {
            end += 1;
        }
        let mut group = Mix::default();
        for m in &mixes[k..end] {
            group.merge(m);
        }
        allocate(&group, end - k, &mut carry, out);
        k = end;
    }
}

/// Appends `n` paints, each one's count proportional to its time in `group`
/// plus what it is owed (largest remainder), in a fixed order: classes
/// ascending, then others, then the empty part. Leaves what each is still
/// owed in `carry`.
fn allocate(group: &Mix, n: usize, carry: &mut Vec<(Paint, f64)>, out: &mut Vec<Paint>) {
    let total = group.width_ns.max(group.covered_ns()).max(1) as f64;
    let columns = |ns: u64| ns as f64 / total * n as f64;
    let mut due: Vec<(Paint, f64)> = std::mem::take(carry);
    let mut owe = |paint: Paint, v: f64| match due.iter_mut().find(|(p, _)| *p == paint) {
        Some((_, d)) => *d += v,
        None => due.push((paint, v)),
    };
    for (class, ns) in group.shares() {
        owe(Paint::Class(class), columns(ns));
    }
    owe(Paint::Others, columns(group.others_ns));
    owe(
        Paint::Empty,
        columns(group.width_ns.saturating_sub(group.covered_ns())),
    );
    due.sort_unstable_by_key(|&(paint, _)| paint);
    let mut counts: Vec<usize> = due
        .iter()
        .map(|&(_, v)| v.max(0.0).floor() as usize)
        .collect();
    let left = n.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..due.len()).collect();
    order.sort_by(|&a, &b| {
        let rem = |i: usize| due[i].1 - counts[i] as f64;
        rem(b).total_cmp(&rem(a))
    });
    for &i in order
        .iter()
        .cycle()
        .take(if due.is_empty() { 0 } else { left })
    {
        counts[i] += 1;
    }
    // Rounding can overshoot by a column: take it from the largest.
    while counts.iter().sum::<usize>() > n {
        let most = (0..counts.len())
            .max_by_key(|&i| counts[i])
            .expect("some counts");
        counts[most] -= 1;
    }
    for (&(paint, v), &count) in due.iter().zip(&counts) {
        out.extend(std::iter::repeat_n(paint, count));
        let owed = v - count as f64;
        if owed.abs() > 1e-9 {
            carry.push((paint, owed.clamp(-1.0, 1.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(width: u64, shares: &[(Class, u64)]) -> Mix {
        let mut m = Mix::of_width(width);
        for &(class, ns) in shares {
            m.add(class, ns, 1);
        }
        m
    }

    #[test]
    fn mixed_columns_become_proportional_stripes_in_a_fixed_order() {
        // 16 columns, each 3:1 between class 1 and class 0.
        let mixes = vec![mix(100, &[(1, 75), (0, 25)]); 16];
        let mut out = Vec::new();
        assign(&mixes, &[false; 16], &mut out);
        let a = Paint::Class(0);
        let b = Paint::Class(1);
        let group = [a, a, b, b, b, b, b, b];
        assert_eq!(out[..8], group);
        assert_eq!(out[8..], group, "every group alike: stripes, not bands");
    }

    #[test]
    fn columns_inside_wide_spans_stay_as_they_are() {
        let mixes = vec![
            mix(100, &[(2, 100)]),
            mix(100, &[]),
            mix(100, &[(2, 40)]), // the end of a span: mostly empty
            mix(100, &[(2, 70)]),
        ];
        let mut out = Vec::new();
        assign(&mixes, &[true, true, false, false], &mut out);
        // The two partly covered columns form one group: 110 of 200 ns is class 2.
        assert_eq!(
            out,
            vec![Paint::Class(2), Paint::Empty, Paint::Class(2), Paint::Empty]
        );
    }

    #[test]
    fn slivers_between_wide_spans_keep_their_share() {
        // Wide 4-column spans of class 0, and between them one column where
        // class 1 ran 40 %: class 1 must show in 40 % of those columns, not never.
        let mut mixes = Vec::new();
        let mut exact = Vec::new();
        for _ in 0..50 {
            mixes.extend([mix(100, &[(0, 100)]); 4]);
            exact.extend([true; 4]);
            mixes.push(mix(100, &[(0, 60), (1, 40)]));
            exact.push(false);
        }
        let mut out = Vec::new();
        assign(&mixes, &exact, &mut out);
        let shown = out.iter().filter(|&&p| p == Paint::Class(1)).count();
        assert_eq!(shown, 20, "40 % of 50 columns");
    }

    #[test]
    fn columns_before_the_origin_stay_empty() {
        // Columns left of time 0 have no width; the spans start just after.
        let mixes = [
            mix(0, &[]),
            mix(0, &[]),
            mix(100, &[(0, 100)]),
            mix(100, &[(0, 90)]),
        ];
        let mut out = Vec::new();
        assign(&mixes, &[false; 4], &mut out);
        assert_eq!(out[..2], [Paint::Empty, Paint::Empty]);
        assert_eq!(out[2..], [Paint::Class(0), Paint::Class(0)]);
    }

    #[test]
    fn every_share_gets_its_columns_and_nothing_is_lost() {
        let mixes = vec![mix(90, &[(0, 30), (1, 30), (2, 30)]); 3];
        let mut out = Vec::new();
        assign(&mixes, &[false; 3], &mut out);
        assert_eq!(out, vec![Paint::Class(0), Paint::Class(1), Paint::Class(2)]);
    }
}
