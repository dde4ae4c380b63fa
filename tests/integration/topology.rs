//! Topology read from fixture trees shaped like real machines' `/sys`
//! (`tests/fixtures/topology`, made by `make.py` there), and from this one's.

use std::path::{Path, PathBuf};

use corelanes::topology::{CoreKind, Layout, Topology, compact_ranges, parse_cpu_list};

/// A fixture tree's layout, e.g. "xeon-2s".
pub fn fixture(name: &str) -> Layout {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/topology", name]
        .iter()
        .collect();
    assert!(root.is_dir(), "fixture {} is missing", root.display());
    Layout::read(&root, 0)
}

/// Groups written in the kernel's list format, e.g. ["0,8", "1,9"].
fn lists(groups: &[&str]) -> Vec<Vec<usize>> {
    groups.iter().map(|g| parse_cpu_list(g)).collect()
}

#[test]
fn two_socket_xeon_with_smt() {
    let layout = fixture("xeon-2s");
    assert_eq!(layout.cpus.len(), 16);
    assert_eq!(layout.packages(), 2);
    assert_eq!(layout.cores(), 8);
    assert_eq!(layout.threads_per_core(), 2);
    // Linux numbers the first thread of every core first: 0-7, then 8-15.
    assert_eq!(
        layout.smt_groups(),
        lists(&["0,8", "1,9", "2,10", "3,11", "4,12", "5,13", "6,14", "7,15"])
    );
    assert_eq!(layout.llc_groups(), lists(&["0-3,8-11", "4-7,12-15"]));
    assert!(layout.cpus.iter().all(|p| p.llc_level == 3));
    assert!(!layout.is_hybrid());
    // Core ids 0, 1, 8, 9 in each socket become cores 0-3.
    let cpu11 = layout.place(11).expect("cpu 11 is online");
    assert_eq!((cpu11.core_id, cpu11.core), (Some(9), 3));
    assert_eq!(layout.label(11), "cpu 11 · 0:3:1");
    assert_eq!(layout.label(4), "cpu 4 · 1:0:0");
    assert_eq!(layout.label(15), "cpu 15 · 1:3:1");
}

#[test]
fn one_socket_64_cores_with_smt() {
    let layout = fixture("epyc-64");
    assert_eq!(layout.cpus.len(), 128);
    assert_eq!((layout.packages(), layout.cores()), (1, 64));
    assert_eq!(layout.threads_per_core(), 2);
    let smt = layout.smt_groups();
    assert_eq!(smt.len(), 64);
    assert!(smt.iter().enumerate().all(|(i, g)| *g == [i, i + 64]));
    // An L3 per CCX of 4 cores: 16 groups, their CPUs in both halves.
    let llc = layout.llc_groups();
    assert_eq!(llc.len(), 16);
    assert_eq!(llc[0], parse_cpu_list("0-3,64-67"));
    assert_eq!(llc[15], parse_cpu_list("60-63,124-127"));
    assert_eq!(layout.place(127).map(|p| p.llc), Some(15));
    assert_eq!(layout.label(127), "cpu 127 · 0:63:1");
    assert_eq!(layout.label(5), "cpu 5 · 0:5:0");
}

#[test]
fn hybrid_laptop_with_p_and_e_cores() {
    let layout = fixture("alder-lake");
    assert_eq!(layout.cpus.len(), 20);
    assert_eq!((layout.packages(), layout.cores()), (1, 14));
    assert_eq!(
        layout.smt_groups(),
        lists(&["0-1", "2-3", "4-5", "6-7", "8-9", "10-11"])
    );
    // The E-cores' L2 per cluster is not the last level: the L3 is, shared by all.
    assert_eq!(layout.llc_groups(), lists(&["0-19"]));
    let kind = |cpu| layout.place(cpu).and_then(|p| p.kind);
    assert!((0..12).all(|c| kind(c) == Some(CoreKind::Performance)));
    assert!((12..20).all(|c| kind(c) == Some(CoreKind::Efficiency)));
    assert_eq!(layout.label(1), "cpu 1 · 0:0:1 P");
    assert_eq!(layout.label(12), "cpu 12 · 0:6:0 E");
    assert_eq!(layout.label(19), "cpu 19 · 0:13:0 E");
}

#[test]
fn this_two_core_vm_copied() {
    let layout = fixture("vm2");
    assert_eq!(layout.cpus.len(), 2);
    assert_eq!((layout.packages(), layout.cores()), (1, 2));
    assert!(layout.smt_groups().is_empty());
    assert_eq!(layout.llc_groups(), lists(&["0-1"]));
    assert!(!layout.is_detailed(), "plain lanes, as before topology");
    assert_eq!(layout.label(0), "core 0");
    assert_eq!(layout.label(1), "core 1");
}

/// The 16-CPU KVM guest (Sapphire Rapids, Firecracker) lent through
/// `device`: its files copied there, keeping those corelanes reads.
#[test]
fn a_lent_16_cpu_server_guest_copied() {
    let layout = fixture("kvm16");
    assert_eq!(layout.cpus.len(), 16);
    assert_eq!((layout.packages(), layout.cores()), (1, 16));
    assert!(layout.smt_groups().is_empty(), "SMT off");
    assert_eq!(layout.llc_groups(), lists(&["0-15"]), "one L3 for all");
    assert!(layout.cpus.iter().all(|p| p.llc_level == 3));
    assert!(!layout.is_grouped() && !layout.is_detailed());
    assert_eq!(layout.label(15), "core 15");
    let all: Vec<usize> = (0..16).collect();
    assert_eq!(
        shown_groups(&layout, &all, &[9, 3]),
        vec![(None, "0-15".to_string())],
        "one cache group: plain ascending lanes"
    );
}

#[test]
fn this_machine_agrees_with_the_affinity_mask() {
    let topo = Topology::get();
    let fresh = Layout::read(Path::new("/"), topo.system_cpus);
    assert_eq!(topo.layout, fresh, "read once at start-up, same as now");
    assert_eq!(topo.smt_siblings, fresh.smt_groups());
    for &cpu in &topo.allowed {
        assert!(
            fresh.place(cpu).is_some(),
            "allowed cpu {cpu} is not online"
        );
    }
    // available_parallelism is the affinity mask, less where a cgroup quota caps it.
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(
        parallelism <= topo.allowed.len(),
        "{parallelism} > {:?}",
        topo.allowed
    );
    assert!(fresh.cpus.len() <= topo.system_cpus);
    assert!(fresh.cores() * fresh.threads_per_core() >= fresh.cpus.len());
}

/// Each lane group as (caption, CPUs in the kernel's list format).
fn shown_groups(layout: &Layout, cpus: &[usize], own: &[usize]) -> Vec<(Option<String>, String)> {
    layout
        .lane_groups(cpus, own)
        .into_iter()
        .map(|g| (g.caption, compact_ranges(&g.cpus)))
        .collect()
}

#[test]
fn lanes_group_by_cache_with_the_runs_cores_first() {
    let all: Vec<usize> = (0..16).collect();
    let xeon = shown_groups(&fixture("xeon-2s"), &all, &[9, 1]);
    let expect = |c: &str, cpus: &str| (Some(c.to_string()), cpus.to_string());
    assert_eq!(
        xeon,
        vec![
            expect("this run's cores", "1,9"),
            expect("package 0 · L3 of cpus 0-3,8-11", "0,2-3,8,10-11"),
            expect("package 1 · L3 of cpus 4-7,12-15", "4-7,12-15"),
        ]
    );
    let all: Vec<usize> = (0..128).collect();
    let epyc = shown_groups(&fixture("epyc-64"), &all, &[]);
    assert_eq!(epyc.len(), 16, "no run's group when nothing was pinned");
    assert_eq!(epyc[1], expect("L3 of cpus 4-7,68-71", "4-7,68-71"));
    // One cache group: the order stays ascending, the pinned core does not move.
    let vm = shown_groups(&fixture("vm2"), &[1, 0], &[1]);
    assert_eq!(vm, vec![(None, "0-1".to_string())]);
    let laptop = shown_groups(&fixture("alder-lake"), &[3, 12], &[12]);
    assert_eq!(
        laptop,
        vec![(None, "3,12".to_string())],
        "one L3 for P and E"
    );
}

#[test]
fn a_run_on_many_cores_keeps_the_cache_groups_its_own_first() {
    let all: Vec<usize> = (0..128).collect();
    // Pinned to the second half of the epyc's cores: more than one group's worth.
    let own: Vec<usize> = (32..64).chain(96..128).collect();
    let epyc = shown_groups(&fixture("epyc-64"), &all, &own);
    assert_eq!(epyc.len(), 16, "{epyc:?}");
    assert!(
        epyc.iter()
            .all(|(c, _)| c.as_deref() != Some("this run's cores"))
    );
    assert_eq!(epyc[0].1, "32-35,96-99", "the first group the run used");
    assert_eq!(
        epyc[8].1, "0-3,64-67",
        "then the unused ones, in machine order"
    );
}

#[test]
fn a_synthetic_layout_is_numbered_and_grouped_as_linux_does() {
    // 2 packages × 64 cores × 2 threads, an L3 per 8 cores: 256 CPUs in 16 groups.
    let layout = Layout::synthetic(2, 64, 2, 8);
    assert_eq!(layout.cpus.len(), 256);
    assert_eq!((layout.packages(), layout.threads_per_core()), (2, 2));
    assert_eq!(layout.smt_groups()[0], vec![0, 128], "siblings 128 apart");
    let all: Vec<usize> = (0..256).collect();
    let groups = shown_groups(&layout, &all, &[]);
    assert_eq!(groups.len(), 16);
    assert_eq!(
        groups[8],
        (
            Some("package 1 · L3 of cpus 64-71,192-199".into()),
            "64-71,192-199".into()
        )
    );
    assert_eq!(layout.label(200), "cpu 200 · 1:8:1");
}
