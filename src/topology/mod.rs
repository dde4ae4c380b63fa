//! Which cores exist, where each sits, and which ones this process may use.
//!
//! The allowed set comes from `sched_getaffinity`, taken once, the first time
//! it is asked for — `main` asks before any thread is pinned, because once a
//! thread is pinned its own mask no longer tells what the process may use.
//! Packages, cores, SMT threads, cache groups and core types come from
//! `/sys` ([`sysfs`]), read once with it.

pub mod sysfs;

use std::path::Path;
use std::sync::OnceLock;

pub use sysfs::{CoreKind, CpuPlace, LaneGroup, Layout};

/// The machine's cores as this process sees them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Topology {
    /// Cores this process may run on, ascending (`sched_getaffinity` at start-up).
    pub allowed: Vec<usize>,
    /// Number of CPUs the system reports (sysinfo), which may exceed `allowed`
    /// in containers or under `taskset`.
    pub system_cpus: usize,
    /// Groups of SMT siblings (hyper-threads sharing one physical core), from
    /// `layout`.
    pub smt_siblings: Vec<Vec<usize>>,
    /// Where each online CPU sits (package, core, thread, cache group, kind).
    pub layout: Layout,
}

static STARTUP: OnceLock<Topology> = OnceLock::new();

impl Topology {
    /// The topology read at the first call in this process.
    pub fn get() -> &'static Topology {
        STARTUP.get_or_init(Topology::detect)
    }

    fn detect() -> Topology {
        let allowed = crate::sys::affinity_of_current_thread().unwrap_or_else(|_| {
            (0..std::thread::available_parallelism().map_or(1, usize::from)).collect()
        });
        let system_cpus = sysinfo::System::new()
            .map(|mut system| {
                system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
                system.cpus().len()
            })
            .unwrap_or(0)
            .max(allowed.len());
        Topology::with_layout(
            allowed,
            system_cpus,
            Layout::read(Path::new("/"), system_cpus),
        )
    }

    /// A topology with `layout` as where its CPUs sit; the SMT groups come from it.
    pub fn with_layout(allowed: Vec<usize>, system_cpus: usize, layout: Layout) -> Topology {
        Topology {
            smt_siblings: layout.smt_groups(),
            allowed,
            system_cpus,
            layout,
        }
    }

    /// How a core lane is named: see [`Layout::label`].
    pub fn core_label(&self, cpu: usize) -> String {
        self.layout.label(cpu)
    }

    pub fn is_allowed(&self, core: usize) -> bool {
        self.allowed.binary_search(&core).is_ok()
    }

    /// Why a core cannot be used, or `None` when it can.
    pub fn why_not_allowed(&self, core: usize) -> Option<String> {
        if self.is_allowed(core) {
            None
        } else if core >= self.system_cpus {
            Some(format!(
                "core {core} does not exist: this machine has cores 0..{}",
                self.system_cpus - 1
            ))
        } else {
            Some(format!(
                "core {core} is not in this process's CPU affinity (allowed: {})",
                self.allowed_text()
            ))
        }
    }

    /// The allowed cores as a compact list, e.g. "0-3,6".
    pub fn allowed_text(&self) -> String {
        compact_ranges(&self.allowed)
    }

    /// The SMT siblings of `core` other than itself.
    pub fn siblings_of(&self, core: usize) -> Vec<usize> {
        self.smt_siblings
            .iter()
            .find(|group| group.contains(&core))
            .map(|group| group.iter().copied().filter(|&c| c != core).collect())
            .unwrap_or_default()
    }
}

/// No kernel numbers CPUs past this (`NR_CPUS` is at most 8192): a range
/// beyond it is a damaged file, and would fill memory.
const MAX_CPUS: usize = 1 << 16;

/// Parses the kernel's CPU list format ("0-3,8,10-11"), sorted and without
/// repeats. Parts that do not parse are skipped.
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>())
                    && b < MAX_CPUS
                {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<usize>().ok().filter(|&c| c < MAX_CPUS)),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// The inverse of [`parse_cpu_list`] for a sorted list.
pub fn compact_ranges(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(parse_cpu_list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(compact_ranges(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
    }

    #[test]
    fn cpu_lists_survive_what_files_may_hold() {
        assert_eq!(
            parse_cpu_list(" 3 , 0-1 ,\n"),
            vec![0, 1, 3],
            "spaces, order"
        );
        assert_eq!(parse_cpu_list("0-2,1-3"), vec![0, 1, 2, 3], "overlaps once");
        assert_eq!(
            parse_cpu_list("5-3,x,-,7-"),
            Vec::<usize>::new(),
            "junk is skipped"
        );
        assert_eq!(
            parse_cpu_list("0-18446744073709551615,2"),
            vec![2],
            "no huge ranges"
        );
    }

    #[test]
    fn startup_mask_is_not_empty_and_explains_refusals() {
        let topo = Topology::get();
        assert!(!topo.allowed.is_empty());
        assert!(topo.system_cpus >= topo.allowed.len());
        let missing = topo.system_cpus + 5;
        let why = topo
            .why_not_allowed(missing)
            .expect("a core past the end is refused");
        assert!(why.contains("does not exist"), "{why}");
        assert_eq!(topo.why_not_allowed(topo.allowed[0]), None);
    }
}
