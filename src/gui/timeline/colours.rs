//! Which threads keep a colour of their own. Up to the palette's size every
//! thread does (thread i, colour i). Beyond it, cycling colours would say
//! nothing, so the threads that ran longest keep theirs and the rest share
//! one neutral colour, named "other threads" in the legend.

use eframe::egui::Color32;

use crate::gui::palette;
use crate::run::Recording;

#[derive(Clone, Debug, Default)]
pub struct Colours {
    /// Each thread's colour slot; `None`: it shares [`palette::OTHERS`].
    slot: Vec<Option<usize>>,
}

impl Colours {
    pub fn of(rec: &Recording) -> Colours {
        let n = rec.threads.len();
        if n <= palette::THREAD_COLOURS {
            return Colours {
                slot: (0..n).map(Some).collect(),
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
        Colours { slot }
    }

    pub fn thread(&self, index: usize) -> Color32 {
        match self.slot.get(index) {
            Some(Some(k)) => palette::thread(*k),
            Some(None) => palette::OTHERS,
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
        assert_eq!(many.thread(3), palette::OTHERS);
        assert_eq!(many.thread(15), palette::thread(0));
        assert_eq!(many.thread(24), palette::thread(9));
    }
}
