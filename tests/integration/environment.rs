//! The environment as read on this machine, checked against what the
//! standard library and the kernel's own files say.

use std::time::Duration;

use corelanes::environment::Environment;
use corelanes::run::Placement;
use corelanes::workload::WorkloadKind;

use super::{config, exclusive, run};

fn file(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_owned())
}

#[test]
fn this_machine_is_read_as_its_own_files_say() {
    let env = Environment::sample(std::path::Path::new("/"), Duration::from_millis(50));
    let logical = env.logical_cpus.expect("Linux lists its online CPUs");
    let usable = std::thread::available_parallelism().unwrap().get();
    assert!(logical >= usable, "{logical} online, {usable} usable");
    let physical = env.physical_cores.expect("sysfs has the topology");
    assert!((1..=logical).contains(&physical), "{env:?}");
    if env.smt == Some(false) {
        assert_eq!(physical, logical, "without SMT each core is one CPU");
    }
    assert_eq!(env.kernel, file("/proc/sys/kernel/osrelease"));
    assert_eq!(
        env.perf_event_paranoid,
        file("/proc/sys/kernel/perf_event_paranoid").map(|t| t.parse().unwrap())
    );
    let cpuinfo = file("/proc/cpuinfo").unwrap();
    if cpuinfo.contains(" hypervisor") {
        assert!(env.vm.is_some(), "the cpuinfo flag says VM: {env:?}");
    }
    if cpuinfo.contains("model name") {
        assert!(env.cpu_model.is_some(), "{env:?}");
    }
    if std::path::Path::new("/.dockerenv").exists() {
        assert!(env.container.is_some(), "{env:?}");
    }
    let load = env.load_avg.expect("/proc/loadavg is always there");
    assert!(load.iter().all(|&l| l >= 0.0), "{load:?}");
    let others = env.others_busy.expect("/proc/stat over 50 ms");
    assert!((0.0..=1.0).contains(&others), "{others}");
}

#[test]
fn a_run_records_the_machine_at_its_start() {
    let _machine = exclusive();
    let now = Environment::read(std::path::Path::new("/"));
    let rec = run(config(WorkloadKind::Cpu, 1, 2, 1.0, Placement::Spread));
    let env = rec.environment.expect("the run says what it ran on");
    assert_eq!(env.cpu_model, now.cpu_model);
    assert_eq!(env.logical_cpus, now.logical_cpus);
    assert_eq!(env.kernel, now.kernel);
    assert!(
        env.others_busy.is_some(),
        "read over a window before the start"
    );
}
