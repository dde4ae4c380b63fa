//! Where each CPU sits: package, core, SMT thread, last-level cache group and
//! hybrid core type, read from `sys/devices/system/cpu` under a root path
//! (`/` for this machine, a fixture tree in tests).
//!
//! Containers and odd kernels hide parts of `/sys`, so every file is optional:
//! a missing one gives a default (package 0, a core of its own, one cache
//! group per package, no core type), never an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::parse_cpu_list;

const CPU_DIR: &str = "sys/devices/system/cpu";

/// The kind of core a CPU belongs to on a hybrid part (Intel P/E, Arm big.LITTLE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CoreKind {
    Performance,
    Efficiency,
}

impl CoreKind {
    /// "P" or "E", as vendors and `lscpu` mark them.
    pub fn mark(self) -> &'static str {
        match self {
            CoreKind::Performance => "P",
            CoreKind::Efficiency => "E",
        }
    }
}

/// One online CPU's place in the machine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuPlace {
    /// The logical CPU number (what `sched_getcpu` returns).
    pub cpu: usize,
    /// Package (socket) index, 0.. in the order of the kernel's package ids.
    pub package: usize,
    /// Core index within its package, 0.. in the order of the kernel's
    /// `core_id`s, which may have gaps (Xeons) or step by 4 (hybrid P-cores).
    pub core: usize,
    /// The kernel's own `core_id`, when it gives one.
    pub core_id: Option<usize>,
    /// Which SMT thread of its core this CPU is: its rank among the siblings.
    pub thread: usize,
    /// Last-level cache group, 0.. in the order of each group's first CPU.
    pub llc: usize,
    /// Cache level of that group (3 for an L3), 0 when the kernel says nothing.
    pub llc_level: u32,
    /// P or E on hybrid parts, `None` where all cores are alike.
    pub kind: Option<CoreKind>,
}

/// Every online CPU's place, in CPU order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    pub cpus: Vec<CpuPlace>,
}

/// What the topology files say about one CPU, before CPUs are grouped.
struct Raw {
    cpu: usize,
    package_id: i64,
    core_id: Option<usize>,
    siblings: Option<Vec<usize>>,
    llc: Option<(u32, Vec<usize>)>,
    capacity: Option<u64>,
}

/// A run pinned to more cores than this is not shown as one group of its own.
pub const OWN_GROUP_UP_TO: usize = 16;

impl Layout {
    /// A machine of `packages` × `cores` × `threads` CPUs, numbered as Linux
    /// numbers them (SMT siblings `packages × cores` apart), each package's
    /// cores sharing a last-level cache `llc_cores` at a time. Synthetic: for
    /// scale tests and the labelled many-core demonstration only.
    pub fn synthetic(packages: usize, cores: usize, threads: usize, llc_cores: usize) -> Layout {
        let per_thread = packages * cores;
        let llc_cores = llc_cores.clamp(1, cores.max(1));
        let llcs_per_package = cores.div_ceil(llc_cores);
        let mut cpus: Vec<CpuPlace> = (0..per_thread * threads)
            .map(|cpu| {
                let (thread, rest) = (cpu / per_thread, cpu % per_thread);
                let (package, core) = (rest / cores, rest % cores);
                CpuPlace {
                    cpu,
                    package,
                    core,
                    core_id: Some(core),
                    thread,
                    llc: package * llcs_per_package + core / llc_cores,
                    llc_level: 3,
                    kind: None,
                }
            })
            .collect();
        cpus.sort_by_key(|p| p.cpu);
        Layout { cpus }
    }

    /// The machine under `root`. `fallback_cpus` is used when the kernel
    /// lists no CPU at all (no `/sys`): each then is a core of its own.
    pub fn read(root: &Path, fallback_cpus: usize) -> Layout {
        let mut online = online_cpus(root);
        if online.is_empty() {
            online = (0..fallback_cpus).collect();
        }
        let raws: Vec<Raw> = online.iter().map(|&cpu| Raw::read(root, cpu)).collect();
        Layout::from_raw(&raws, &online, hybrid_kinds(root, &raws))
    }

    fn from_raw(raws: &[Raw], online: &[usize], kinds: BTreeMap<usize, CoreKind>) -> Layout {
        let packages: BTreeSet<i64> = raws.iter().map(|r| r.package_id).collect();
        let package_of = |raw: &Raw| packages.range(..raw.package_id).count();
        let siblings = core_groups(raws, online);

        // Cores of each package in core_id order (first CPU where no id).
        let mut cores: BTreeMap<usize, BTreeSet<(usize, usize)>> = BTreeMap::new();
        for (raw, group) in raws.iter().zip(&siblings) {
            cores
                .entry(package_of(raw))
                .or_default()
                .insert((raw.core_id.unwrap_or(group[0]), group[0]));
        }

        // A CPU with no cache files shares its package's group.
        let llc_keys: Vec<Vec<usize>> = raws
            .iter()
            .map(|raw| match &raw.llc {
                Some((_, shared)) => shared.clone(),
                None => raws
                    .iter()
                    .filter(|r| r.package_id == raw.package_id)
                    .map(|r| r.cpu)
                    .collect(),
            })
            .collect();
        let mut firsts: Vec<usize> = llc_keys.iter().map(|k| k[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();

        let cpus = raws
            .iter()
            .zip(&siblings)
            .zip(&llc_keys)
            .map(|((raw, group), llc_key)| {
                let package = package_of(raw);
                let key = (raw.core_id.unwrap_or(group[0]), group[0]);
                CpuPlace {
                    cpu: raw.cpu,
                    package,
                    core: cores[&package].range(..key).count(),
                    core_id: raw.core_id,
                    thread: group.iter().position(|&c| c == raw.cpu).unwrap_or(0),
                    llc: firsts.partition_point(|&f| f < llc_key[0]),
                    llc_level: raw.llc.as_ref().map_or(0, |(level, _)| *level),
                    kind: kinds.get(&raw.cpu).copied(),
                }
            })
            .collect();
        Layout { cpus }
    }

    /// The place of `cpu`, if it is online and known.
    pub fn place(&self, cpu: usize) -> Option<&CpuPlace> {
        let i = self.cpus.binary_search_by_key(&cpu, |p| p.cpu).ok()?;
        Some(&self.cpus[i])
    }

    pub fn packages(&self) -> usize {
        self.cpus.iter().map(|p| p.package + 1).max().unwrap_or(0)
    }

    /// Physical cores in all packages.
    pub fn cores(&self) -> usize {
        self.cpus.iter().filter(|p| p.thread == 0).count()
    }

    /// The most SMT threads any one core has (1 without SMT).
    pub fn threads_per_core(&self) -> usize {
        self.cpus.iter().map(|p| p.thread + 1).max().unwrap_or(0)
    }

    pub fn is_hybrid(&self) -> bool {
        self.cpus.iter().any(|p| p.kind.is_some())
    }

    /// CPUs grouped by `key`, each group ascending, groups by their first CPU.
    fn groups_by<K: Ord>(&self, key: impl Fn(&CpuPlace) -> K) -> Vec<Vec<usize>> {
        let mut groups: BTreeMap<K, Vec<usize>> = BTreeMap::new();
        for place in &self.cpus {
            groups.entry(key(place)).or_default().push(place.cpu);
        }
        let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
        groups.sort_unstable();
        groups
    }

    /// CPUs that are SMT siblings of one another, groups of two or more.
    pub fn smt_groups(&self) -> Vec<Vec<usize>> {
        let mut groups = self.groups_by(|p| (p.package, p.core));
        groups.retain(|g| g.len() > 1);
        groups
    }

    /// CPUs sharing one last-level cache.
    pub fn llc_groups(&self) -> Vec<Vec<usize>> {
        self.groups_by(|p| p.llc)
    }

    /// Whether lanes need more than a CPU number to be told apart: more than
    /// one package, SMT, or cores of two kinds.
    pub fn is_detailed(&self) -> bool {
        self.packages() > 1 || self.threads_per_core() > 1 || self.is_hybrid()
    }

    /// A core lane's label: "core 3" where cores are all alike and alone in
    /// one package; else the CPU number and `package:core:thread`, with P or
    /// E on hybrid parts ("cpu 11 · 1:3:1", "cpu 14 · 0:8:0 E").
    pub fn label(&self, cpu: usize) -> String {
        if !self.is_detailed() {
            return format!("core {cpu}");
        }
        let Some(p) = self.place(cpu) else {
            return format!("cpu {cpu}");
        };
        let mark = p.kind.map(|k| format!(" {}", k.mark())).unwrap_or_default();
        format!("cpu {cpu} · {}:{}:{}{mark}", p.package, p.core, p.thread)
    }
}

/// Core lanes that are shown together, under a caption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneGroup {
    /// `None` where the machine has one group and lanes need no heading.
    pub caption: Option<String>,
    pub cpus: Vec<usize>,
}

impl Layout {
    /// Whether the machine has more than one package or last-level cache
    /// group, so that lanes are worth grouping.
    pub fn is_grouped(&self) -> bool {
        self.packages() > 1 || self.llc_groups().len() > 1
    }

    /// `cpus` in the order their lanes are shown. On a machine of one cache
    /// group: ascending, one group without caption (a small machine's view
    /// stays as it was). Else the run's `own` cores first, then the others
    /// by package and cache group, each group with a caption. A run that
    /// owns more than [`OWN_GROUP_UP_TO`] cores keeps the cache groups (its
    /// cores would make one unreadable group): those it uses come first.
    pub fn lane_groups(&self, cpus: &[usize], own: &[usize]) -> Vec<LaneGroup> {
        let mut cpus = cpus.to_vec();
        cpus.sort_unstable();
        cpus.dedup();
        if !self.is_grouped() {
            return vec![LaneGroup {
                caption: None,
                cpus,
            }];
        }
        let own: BTreeSet<usize> = own.iter().copied().collect();
        if own.len() > OWN_GROUP_UP_TO {
            let mut groups = self.cache_groups(cpus);
            // Stable: among used and unused groups, machine order stays.
            groups.sort_by_key(|g| !g.cpus.iter().any(|c| own.contains(c)));
            return groups;
        }
        let (mine, others): (Vec<usize>, Vec<usize>) =
            cpus.into_iter().partition(|c| own.contains(c));
        let mut groups = Vec::new();
        if !mine.is_empty() {
            groups.push(LaneGroup {
                caption: Some("this run's cores".into()),
                cpus: mine,
            });
        }
        groups.extend(self.cache_groups(others));
        groups
    }

    /// `cpus` by package and cache group, each group with a caption; unknown
    /// CPUs (offline when read) last, in a group of their own.
    fn cache_groups(&self, cpus: Vec<usize>) -> Vec<LaneGroup> {
        let mut groups = Vec::new();
        let mut by_group: BTreeMap<Option<(usize, usize)>, Vec<usize>> = BTreeMap::new();
        for cpu in cpus {
            let key = self.place(cpu).map(|p| (p.package, p.llc));
            by_group.entry(key).or_default().push(cpu);
        }
        let (some, none): (Vec<_>, Vec<_>) = by_group.into_iter().partition(|(k, _)| k.is_some());
        for (key, cpus) in some.into_iter().chain(none) {
            groups.push(LaneGroup {
                caption: Some(self.group_caption(key)),
                cpus,
            });
        }
        groups
    }

    /// "package 1 · L3 of cpus 4-7,12-15", the package left out on one-package machines.
    fn group_caption(&self, key: Option<(usize, usize)>) -> String {
        let Some((package, llc)) = key else {
            return "cpus of unknown place".into();
        };
        let members: Vec<usize> = self
            .cpus
            .iter()
            .filter(|p| p.llc == llc)
            .map(|p| p.cpu)
            .collect();
        let level = self.place(members[0]).map_or(0, |p| p.llc_level);
        let cache = if level > 0 {
            format!("L{level}")
        } else {
            "cache".into()
        };
        let shared = format!("{cache} of cpus {}", super::compact_ranges(&members));
        if self.packages() > 1 {
            format!("package {package} · {shared}")
        } else {
            shared
        }
    }
}

impl Raw {
    fn read(root: &Path, cpu: usize) -> Raw {
        let dir = format!("{CPU_DIR}/cpu{cpu}");
        let topo = format!("{dir}/topology");
        let list = |name: &str| {
            text(root, &format!("{topo}/{name}"))
                .map(|t| parse_cpu_list(&t))
                .filter(|l| !l.is_empty())
        };
        Raw {
            cpu,
            package_id: number(root, &format!("{topo}/physical_package_id")).unwrap_or(0),
            core_id: number(root, &format!("{topo}/core_id")),
            // core_cpus_list is the newer name of the same set.
            siblings: list("core_cpus_list").or_else(|| list("thread_siblings_list")),
            llc: last_level_cache(root, &dir),
            capacity: number(root, &format!("{dir}/cpu_capacity")),
        }
    }
}

/// Each CPU's core as the sorted set of its online SMT siblings, itself
/// included. Without sibling lists, CPUs with the same package and `core_id`
/// are one core; without those either, each CPU is a core of its own.
fn core_groups(raws: &[Raw], online: &[usize]) -> Vec<Vec<usize>> {
    raws.iter()
        .map(|raw| {
            let mut group: Vec<usize> = match (&raw.siblings, raw.core_id) {
                (Some(list), _) => list
                    .iter()
                    .copied()
                    .filter(|c| online.binary_search(c).is_ok())
                    .collect(),
                (None, Some(id)) => raws
                    .iter()
                    .filter(|r| {
                        r.siblings.is_none()
                            && r.core_id == Some(id)
                            && r.package_id == raw.package_id
                    })
                    .map(|r| r.cpu)
                    .collect(),
                (None, None) => Vec::new(),
            };
            group.push(raw.cpu);
            group.sort_unstable();
            group.dedup();
            group
        })
        .collect()
}

/// The highest-level data or unified cache of a CPU and the CPUs sharing it.
fn last_level_cache(root: &Path, cpu_dir: &str) -> Option<(u32, Vec<usize>)> {
    let entries = std::fs::read_dir(root.join(cpu_dir).join("cache")).ok()?;
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|e| {
            let index = format!("{cpu_dir}/cache/{}", e.file_name().to_string_lossy());
            if text(root, &format!("{index}/type")).as_deref() == Some("Instruction") {
                return None;
            }
            let level = number(root, &format!("{index}/level"))?;
            let shared = parse_cpu_list(&text(root, &format!("{index}/shared_cpu_list"))?);
            (!shared.is_empty()).then_some((level, shared))
        })
        .max_by_key(|(level, _)| *level)
}

/// P and E cores: from the kernel's hybrid PMU devices (Intel), else from
/// differing `cpu_capacity` (Arm: the biggest cores are P). Empty where all
/// cores are alike.
fn hybrid_kinds(root: &Path, raws: &[Raw]) -> BTreeMap<usize, CoreKind> {
    let pmu =
        |name: &str| text(root, &format!("sys/devices/{name}/cpus")).map(|t| parse_cpu_list(&t));
    if let (Some(p), Some(e)) = (pmu("cpu_core"), pmu("cpu_atom")) {
        let kinds = p.into_iter().map(|c| (c, CoreKind::Performance));
        return kinds
            .chain(e.into_iter().map(|c| (c, CoreKind::Efficiency)))
            .collect();
    }
    let capacities: BTreeSet<u64> = raws.iter().filter_map(|r| r.capacity).collect();
    let (Some(&low), Some(&high)) = (capacities.first(), capacities.last()) else {
        return BTreeMap::new();
    };
    if low == high {
        return BTreeMap::new();
    }
    raws.iter()
        .filter_map(|r| {
            let kind = if r.capacity? == high {
                CoreKind::Performance
            } else {
                CoreKind::Efficiency
            };
            Some((r.cpu, kind))
        })
        .collect()
}

/// Online CPUs from `online`, else the `cpuN` directories there are.
fn online_cpus(root: &Path) -> Vec<usize> {
    let mut cpus = text(root, &format!("{CPU_DIR}/online"))
        .map(|t| parse_cpu_list(&t))
        .unwrap_or_default();
    if cpus.is_empty() {
        cpus = std::fs::read_dir(root.join(CPU_DIR))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
            .collect();
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// A file under `root`, trimmed; `None` when missing, unreadable or empty.
fn text(root: &Path, relative: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join(relative)).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn number<T: std::str::FromStr>(root: &Path, relative: &str) -> Option<T> {
    text(root, relative)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of files under a temporary root.
    fn tree(files: &[(String, String)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("a temporary directory");
        for (relative, text) in files {
            let path = root.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
            std::fs::write(path, text).expect("a file");
        }
        root
    }

    fn file(relative: &str, text: impl Into<String>) -> (String, String) {
        (format!("{CPU_DIR}/{relative}"), text.into())
    }

    #[test]
    fn no_sys_at_all_gives_one_plain_core_per_cpu() {
        let root = tree(&[]);
        let layout = Layout::read(root.path(), 3);
        assert_eq!(layout.cpus.len(), 3);
        assert_eq!((layout.packages(), layout.cores()), (1, 3));
        assert_eq!(layout.threads_per_core(), 1);
        assert_eq!(
            layout.llc_groups(),
            vec![vec![0, 1, 2]],
            "one package, one group"
        );
        assert!(!layout.is_detailed());
        assert_eq!(layout.label(2), "core 2");
    }

    #[test]
    fn cpus_come_from_directories_when_online_is_hidden() {
        // Sibling lists gone, core ids left: CPUs with one id share a core.
        let root = tree(&[
            file("cpu0/topology/core_id", "0\n"),
            file("cpu1/topology/core_id", "0\n"),
            file("cpu2/topology/core_id", "1\n"),
            file("cpu3/topology/core_id", "1\n"),
            file("cpufreq/policy0/scaling_driver", "acpi-cpufreq\n"),
        ]);
        let layout = Layout::read(root.path(), 1);
        assert_eq!(layout.cpus.len(), 4);
        assert_eq!(layout.smt_groups(), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(layout.label(3), "cpu 3 · 0:1:1");
    }

    #[test]
    fn damaged_files_are_defaults_not_panics() {
        let root = tree(&[
            file("online", "0-1\n"),
            file("cpu0/topology/physical_package_id", "-1\n"),
            file("cpu0/topology/thread_siblings_list", "garbage\n"),
            file("cpu0/cache/index3/level", "three\n"),
            file("cpu0/cache/index3/shared_cpu_list", "0-1\n"),
            file("cpu1/topology/core_id", "\n"),
            file("cpu1/topology/thread_siblings_list", "0-99999999999\n"),
            file("cpu1/cache/index2/level", "2\n"),
            file("cpu1/cache/index2/shared_cpu_list", "\n"),
        ]);
        let layout = Layout::read(root.path(), 2);
        assert_eq!(layout.cpus.len(), 2);
        assert_eq!(layout.threads_per_core(), 1, "{layout:?}");
        // Package ids -1 and 0 (the default): two packages, as the files say.
        assert_eq!(layout.packages(), 2);
        assert_eq!(layout.place(1).map(|p| p.llc_level), Some(0));
    }

    #[test]
    fn differing_capacities_mark_big_and_little_cores() {
        // An Arm big.LITTLE phone: 4 little cores, 3 mid, 1 big (capacities 1024 at the top).
        let mut files = vec![file("online", "0-7\n")];
        for (cpu, capacity) in [160, 160, 160, 160, 480, 480, 480, 1024].iter().enumerate() {
            files.push(file(
                &format!("cpu{cpu}/cpu_capacity"),
                format!("{capacity}\n"),
            ));
        }
        let layout = Layout::read(tree(&files).path(), 8);
        let kinds: Vec<_> = layout.cpus.iter().map(|p| p.kind).collect();
        assert_eq!(kinds[7], Some(CoreKind::Performance));
        assert!(kinds[..7].iter().all(|&k| k == Some(CoreKind::Efficiency)));
        assert_eq!(layout.label(0), "cpu 0 · 0:0:0 E");
    }

    #[test]
    fn equal_capacities_are_not_hybrid() {
        let root = tree(&[
            file("online", "0-1\n"),
            file("cpu0/cpu_capacity", "1024\n"),
            file("cpu1/cpu_capacity", "1024\n"),
        ]);
        assert!(!Layout::read(root.path(), 2).is_hybrid());
    }

    /// Two packages of two cores, each package one L3 (no cache files: the
    /// package is the group).
    fn two_packages() -> Layout {
        let root = tree(&[
            file("online", "0-3\n"),
            file("cpu2/topology/physical_package_id", "1\n"),
            file("cpu3/topology/physical_package_id", "1\n"),
        ]);
        Layout::read(root.path(), 4)
    }

    #[test]
    fn lanes_of_one_cache_group_keep_their_order() {
        let root = tree(&[]);
        let groups = Layout::read(root.path(), 2).lane_groups(&[1, 0], &[1]);
        assert_eq!(
            groups,
            vec![LaneGroup {
                caption: None,
                cpus: vec![0, 1]
            }],
            "the run's core does not move on a one-group machine"
        );
    }

    #[test]
    fn lanes_put_the_runs_cores_first_then_group_by_package() {
        let groups = two_packages().lane_groups(&[0, 1, 2, 3, 7], &[3]);
        let shown: Vec<(Option<&str>, &[usize])> = groups
            .iter()
            .map(|g| (g.caption.as_deref(), &g.cpus[..]))
            .collect();
        assert_eq!(
            shown,
            vec![
                (Some("this run's cores"), &[3][..]),
                (Some("package 0 · cache of cpus 0-1"), &[0, 1][..]),
                (Some("package 1 · cache of cpus 2-3"), &[2][..]),
                (Some("cpus of unknown place"), &[7][..]),
            ]
        );
    }
}
