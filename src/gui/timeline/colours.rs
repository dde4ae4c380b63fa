//! Which threads keep a colour of their own. Up to the palette's size every
//! thread does (thread i, colour i). Beyond it, cycling colours would say
//! nothing, so the threads that ran longest keep theirs and the rest share
//! a neutral colour, named "other threads" in the legend.
//!
//! One grey would hide a core time-sliced between two of those threads: it
//! would read as one thread running alone. So they share two greys, handed
//! out alternately down the threads taken core by core, so that switches
//! between them show as alternating stripes.

use eframe::egui::Color32;

use crate::gui::palette;
use crate::run::Recording;

#[derive(Clone, Debug, Default)]
pub struct Colours {
    /// Each thread's colour slot; `None`: it shares a grey.
    slot: Vec<Option<usize>>,
    /// Of the threads without a colour, the first with each grey: what the
    /// others with that grey are drawn as (see [`Colours::grey_as`]).
    greys: [Option<usize>; 2],
    /// Each thread's grey (1: [`palette::OTHERS_ALT`]), where it has one.
    grey: Vec<u8>,
}

impl Colours {
    pub fn of(rec: &Recording) -> Colours {
        let n = rec.threads.len();
        if n <= palette::THREAD_COLOURS {
            return Colours {
                slot: (0..n).map(Some).collect(),
                ..Colours::default()
            };
        }
        let per_thread = rec
            .sched
            .as_ref()
            .map_or(&rec.live_sched.per_thread, |s| &s.per_thread);
        // The kernel's running time; without it, the thread's CPU time.
        let ran = |i: usize| {
            per_thread
                .get(i)
                .map(|t| t.running_ns)
                .filter(|&ns| ns > 0)
                .unwrap_or(rec.threads[i].cpu_ns)
        };
        let mut by_time: Vec<usize> = (0..n).collect();
        by_time.sort_by_key(|&i| (std::cmp::Reverse(ran(i)), i));
        let mut top = by_time[..palette::THREAD_COLOURS].to_vec();
        // In thread order, so that colours follow the threads' order in the legend.
        top.sort_unstable();
        let mut slot = vec![None; n];
        for (k, &i) in top.iter().enumerate() {
            slot[i] = Some(k);
        }
        // The greys alternate down the threads taken core by core (the
        // unpinned first): so they alternate among each core's threads, and
        // threads alone on their cores differ too.
        let mut uncoloured: Vec<usize> = (0..n).filter(|&i| slot[i].is_none()).collect();
        uncoloured.sort_by_key(|&i| (rec.threads[i].pinned_core, i));
        let mut grey = vec![0; n];
        let mut greys = [None; 2];
        for (k, &i) in uncoloured.iter().enumerate() {
            grey[i] = (k % 2) as u8;
            greys[k % 2].get_or_insert(i);
        }
        Colours { slot, greys, grey }
    }

    pub fn thread(&self, index: usize) -> Color32 {
        match self.slot.get(index) {
            Some(Some(k)) => palette::thread(*k),
            Some(None) => palette::other_thread(self.grey[index]),
            // A thread not known yet (a live run's newcomer): its own index.
            None => palette::thread(index),
        }
    }

    /// The threads with a colour of their own, in colour order.
    pub fn named(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.slot.len()).filter(|&i| self.slot[i].is_some())
    }

    /// Whether thread `index` has a colour of its own.
    pub fn is_named(&self, index: usize) -> bool {
        !matches!(self.slot.get(index), Some(None))
    }

    /// For a thread without a colour of its own, the thread a lane draws
    /// it as: the first thread with its grey (so that a column's tally holds
    /// one share per grey, and its stripes alternate greys where those
    /// threads alternate).
    pub fn grey_as(&self, index: usize) -> Option<usize> {
        match self.slot.get(index) {
            Some(None) => self.greys[usize::from(self.grey[index])],
            _ => None,
        }
    }

    /// How many threads share the neutral colour.
    pub fn shared(&self) -> usize {
        self.slot.iter().filter(|s| s.is_none()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunConfig;
    use crate::telemetry::events::ThreadRecord;
    use crate::topology::Topology;

    fn run_with_cpu(cpu_ms: &[u64]) -> Recording {
        let mut rec = Recording::new(RunConfig::defaults(Topology::get()));
        rec.threads = cpu_ms
            .iter()
            .enumerate()
            .map(|(index, &ms)| ThreadRecord {
                index,
                cpu_ns: ms * 1_000_000,
                ..ThreadRecord::default()
            })
            .collect();
        rec
    }

    #[test]
    fn beyond_the_palette_the_longest_running_threads_keep_colours() {
        let few = Colours::of(&run_with_cpu(&[1, 2, 3]));
        assert_eq!(few.thread(2), palette::thread(2));
        assert_eq!(few.shared(), 0);
        // Thread i ran i ms, so the last ten ran longest.
        let times: Vec<u64> = (0..25).collect();
        let many = Colours::of(&run_with_cpu(&times));
        assert_eq!(
            many.named().collect::<Vec<_>>(),
            (15..25).collect::<Vec<_>>()
        );
        assert_eq!(many.shared(), 15);
        assert_eq!(many.thread(2), palette::OTHERS);
        assert_eq!(many.thread(3), palette::OTHERS_ALT);
        assert_eq!(many.thread(15), palette::thread(0));
        assert_eq!(many.thread(24), palette::thread(9));
    }

    #[test]
    fn threads_without_a_colour_alternate_greys_on_each_core() {
        // Threads 4-13 ran longest; 0-3 share the greys, 0 and 2 pinned to
        // core 0, 1 and 3 to core 1.
        let times: Vec<u64> = (0..14).collect();
        let mut rec = run_with_cpu(&times);
        for t in &mut rec.threads {
            t.pinned_core = Some(t.index % 2);
        }
        let c = Colours::of(&rec);
        let greys: Vec<_> = (0..4).map(|i| c.thread(i)).collect();
        let (a, b) = (palette::OTHERS, palette::OTHERS_ALT);
        assert_eq!(greys, [a, a, b, b], "each core's two get both greys");
        // Drawn as one share per grey: the first thread with it.
        let drawn: Vec<_> = (0..5).map(|i| c.grey_as(i)).collect();
        assert_eq!(drawn, [Some(0), Some(0), Some(2), Some(2), None]);
    }
}
