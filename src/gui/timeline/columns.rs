//! From each pixel column's exact time shares to one colour per column.
//!
//! A column that one class fills is painted with it. Runs of mixed columns
//! (spans narrower than a pixel, or the edge where one span ends and the
//! next begins) are painted in groups of up to [`GROUP`] columns: each class
//! gets a number of the group's columns proportional to its time (largest
//! remainder), classes always in the same order. Neighbouring groups thus
//! line up into stripes, so a time-sliced core reads as alternation in the
//! legend's own colours: no blended colour, and no horizontal bands that
//! would look like two threads running at once.

use crate::timeline::{Class, Mix};

/// Mixed columns painted as one group of proportional stripes.
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

/// One paint per column of `mixes`, into `out`.
pub fn assign(mixes: &[Mix], out: &mut Vec<Paint>) {
    out.clear();
    let mut k = 0;
    while k < mixes.len() {
        let mix = &mixes[k];
        if mix.covered_ns() == 0 {
            out.push(Paint::Empty);
            k += 1;
        } else if let Some(class) = mix.solid() {
            out.push(Paint::Class(class));
            k += 1;
        } else {
            let mut end = k + 1;
            while end < mixes.len() && end - k < GROUP && is_mixed(&mixes[end]) {
                end += 1;
            }
            let mut group = Mix::default();
            for m in &mixes[k..end] {
                group.merge(m);
            }
            allocate(&group, end - k, out);
            k = end;
        }
    }
}

fn is_mixed(mix: &Mix) -> bool {
    mix.covered_ns() > 0 && mix.solid().is_none()
}

/// Appends `n` paints, each class's count proportional to its time in
/// `group` (largest remainder), in a fixed order: classes ascending, then
/// others, then the empty part.
fn allocate(group: &Mix, n: usize, out: &mut Vec<Paint>) {
    let mut parts: Vec<(Paint, u64)> = group
        .shares()
        .map(|(class, ns)| (Paint::Class(class), ns))
        .collect();
    parts.sort_unstable_by_key(|&(paint, _)| paint);
    parts.push((Paint::Others, group.others_ns));
    let total = group.width_ns.max(group.covered_ns()).max(1);
    parts.push((Paint::Empty, total - group.covered_ns()));
    let n64 = n as u64;
    let mut counts: Vec<u64> = parts
        .iter()
        .map(|&(_, ns)| (u128::from(ns) * u128::from(n64) / u128::from(total)) as u64)
        .collect();
    let mut left = n64 - counts.iter().sum::<u64>();
    let remainder = |i: usize| u128::from(parts[i].1) * u128::from(n64) % u128::from(total);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(remainder(i)));
    for i in order {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    for (&(paint, _), &count) in parts.iter().zip(&counts) {
        out.extend(std::iter::repeat_n(paint, count as usize));
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
        assign(&mixes, &mut out);
        let a = Paint::Class(0);
        let b = Paint::Class(1);
        let group = [a, a, b, b, b, b, b, b];
        assert_eq!(out[..8], group);
        assert_eq!(out[8..], group, "every group alike: stripes, not bands");
    }

    #[test]
    fn solid_and_empty_columns_stay_as_they_are() {
        let mixes = vec![
            mix(100, &[(2, 100)]),
            mix(100, &[]),
            mix(100, &[(2, 40)]), // the end of a span: mostly empty
            mix(100, &[(2, 70)]),
        ];
        let mut out = Vec::new();
        assign(&mixes, &mut out);
        // The two partly covered columns form one group: 110 of 200 ns is class 2.
        assert_eq!(
            out,
            vec![Paint::Class(2), Paint::Empty, Paint::Class(2), Paint::Empty]
        );
    }

    #[test]
    fn every_share_gets_its_columns_and_nothing_is_lost() {
        let mixes = vec![mix(90, &[(0, 30), (1, 30), (2, 30)]); 3];
        let mut out = Vec::new();
        assign(&mixes, &mut out);
        assert_eq!(out, vec![Paint::Class(0), Paint::Class(1), Paint::Class(2)]);
    }
}
