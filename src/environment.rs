//! The machine a run ran on: a run can only be judged against it. 2.6× on a
//! 4-core laptop is not a bug if two of the cores are SMT siblings, and a
//! VM's vCPUs may be time-shared by the host.
//!
//! Everything is read from files under a root path (`/` for this machine),
//! so tests can point the readers at small trees of their own. A file that
//! is missing or unreadable leaves its field `None`; nothing here panics.
//! Nothing private is read: no hostname, command lines or environment
//! variables, so a saved session can be shared.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::topology::parse_cpu_list;

/// How long other programs' CPU use is watched before a run starts. The
/// kernel counts CPU time in ticks of 10 ms, so 100 ms on 2 CPUs resolves
/// 5 % steps: coarse, but enough to tell a quiet machine from a busy one,
/// and short beside a run (a sweep pays it once per point).
pub const BUSY_WINDOW: Duration = Duration::from_millis(100);

/// What the machine was and how busy it was when a run started.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Environment {
    /// `/proc/cpuinfo`'s "model name" (or its equivalent on other architectures).
    pub cpu_model: Option<String>,
    /// CPUs online (`/sys/devices/system/cpu/online`): hardware threads.
    pub logical_cpus: Option<usize>,
    /// Distinct (package, core) pairs among the online CPUs.
    pub physical_cores: Option<usize>,
    /// Whether SMT (hyper-threading) is active.
    pub smt: Option<bool>,
    /// cpufreq's driver and governor (absent in most VMs).
    pub freq_driver: Option<String>,
    pub governor: Option<String>,
    /// A VM, with what told so: the hypervisor's name where one was found.
    pub vm: Option<String>,
    /// A container, with what told so.
    pub container: Option<String>,
    /// The kernel release (`uname -r`).
    pub kernel: Option<String>,
    pub clocksource: Option<String>,
    pub perf_event_paranoid: Option<i32>,
    /// Load average over 1, 5 and 15 minutes, at the start.
    pub load_avg: Option<[f64; 3]>,
    /// Other programs' share of all CPUs' time (0–1) over [`BUSY_WINDOW`]
    /// just before the run (this process's own CPU time taken out).
    pub others_busy: Option<f64>,
}

/// One fact for display, and why it matters to the figures.
pub struct Item {
    pub text: String,
    pub why: &'static str,
}

impl Environment {
    /// This machine now, including other programs' CPU use over
    /// [`BUSY_WINDOW`]: call it before a run's threads start.
    pub fn at_run_start() -> Environment {
        Environment::sample(Path::new("/"), BUSY_WINDOW)
    }

    /// The machine under `root`, watching CPU use for `window`; the files
    /// are read during the window, so it costs only the window.
    pub fn sample(root: &Path, window: Duration) -> Environment {
        let began = Instant::now();
        let before = Ticks::read(root);
        let mut env = Environment::read(root);
        std::thread::sleep(window.saturating_sub(began.elapsed()));
        env.others_busy = others_busy(before, Ticks::read(root));
        env
    }

    /// The machine under `root`, without watching its CPU use.
    pub fn read(root: &Path) -> Environment {
        let cpuinfo = text(root, "proc/cpuinfo").unwrap_or_default();
        let online = text(root, "sys/devices/system/cpu/online")
            .map(|list| parse_cpu_list(&list))
            .filter(|cpus| !cpus.is_empty());
        let logical_cpus = online
            .as_ref()
            .map(Vec::len)
            .or_else(|| Some(count_processors(&cpuinfo)).filter(|&n| n > 0));
        let physical_cores = online
            .as_deref()
            .and_then(|cpus| physical_cores(root, cpus));
        let smt = match text(root, "sys/devices/system/cpu/smt/active").as_deref() {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => logical_cpus.zip(physical_cores).map(|(l, p)| l > p),
        };
        let clocksource = text(
            root,
            "sys/devices/system/clocksource/clocksource0/current_clocksource",
        );
        let cpufreq = "sys/devices/system/cpu/cpufreq/policy0";
        Environment {
            cpu_model: cpu_model(&cpuinfo),
            logical_cpus,
            physical_cores,
            smt,
            freq_driver: text(root, &format!("{cpufreq}/scaling_driver")),
            governor: text(root, &format!("{cpufreq}/scaling_governor")),
            vm: vm(root, &cpuinfo, clocksource.as_deref()),
            container: container(root),
            kernel: text(root, "proc/sys/kernel/osrelease"),
            clocksource,
            perf_event_paranoid: text(root, "proc/sys/kernel/perf_event_paranoid")
                .and_then(|t| t.parse().ok()),
            load_avg: text(root, "proc/loadavg").and_then(|t| load_avg(&t)),
            others_busy: None,
        }
    }

    /// The facts for display, each with why it matters; unknown ones are left out.
    pub fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut add = |text: String, why: &'static str| items.push(Item { text, why });
        if let Some(model) = &self.cpu_model {
            add(
                model.clone(),
                "The processor the run measured: the same work takes a different time on another CPU.",
            );
        }
        if let Some(logical) = self.logical_cpus {
            let physical = self
                .physical_cores
                .map_or(String::new(), |p| format!(" / {p} physical"));
            let smt = match self.smt {
                Some(true) => " (SMT on)",
                Some(false) => " (SMT off)",
                None => "",
            };
            add(
                format!("{logical} logical{physical} cores{smt}"),
                "Logical CPUs are hardware threads. With SMT (hyper-threading) two of them are \
                 siblings sharing one physical core's execution units, so two busy threads on \
                 siblings do not run 2× as fast as one: expect less speedup than the logical count.",
            );
        }
        if let Some(vm) = &self.vm {
            add(
                format!("VM ({vm})"),
                "A virtual machine's CPUs are threads on the host, which may time-share them with \
                 other guests: a worker can lose its CPU without the guest kernel seeing why, and \
                 pinning in the guest does not pin to a physical core.",
            );
        }
        if let Some(container) = &self.container {
            add(
                format!("container ({container})"),
                "A container may be given fewer CPUs (cpuset, CPU quota) than the machine shows, \
                 and may refuse perf_event_open, leaving only the coarse procfs capture.",
            );
        }
        if let Some(kernel) = &self.kernel {
            add(
                format!("kernel {kernel}"),
                "The scheduler that placed the threads, and the perf records of its context \
                 switches, come from this kernel; both change between versions.",
            );
        }
        if let Some(clock) = &self.clocksource {
            add(
                format!("clocksource {clock}"),
                "Every timestamp is read from this clock. tsc is read in nanoseconds without \
                 entering the kernel; hpet or acpi_pm make each read (so each task record) far slower.",
            );
        }
        if let Some(paranoid) = self.perf_event_paranoid {
            add(
                format!("perf_event_paranoid {paranoid}"),
                "At 2 or less an unprivileged user may record the exact context switches with \
                 perf; above 2 (some distributions) only the coarser procfs sampling is left.",
            );
        }
        let governor = match (&self.governor, &self.freq_driver) {
            (Some(g), Some(d)) => format!("governor {g} ({d})"),
            (Some(g), None) => format!("governor {g}"),
            (None, Some(d)) => format!("frequency driver {d}, no governor"),
            (None, None) => "governor: none reported".into(),
        };
        add(
            governor,
            "The cpufreq governor sets the clock speed: powersave, or one that ramps up under \
             load, makes early or light work slower; turbo makes one busy core faster than \
             many. None reported: the clock is the host's or firmware's business (usual in VMs).",
        );
        if let Some(load) = self.load_text() {
            add(
                load,
                "Before the run: the load average (threads running or waiting for a CPU, over \
                 the last minute) and the share of all CPUs other programs used in the last \
                 100 ms. Other programs compete with the workers for the cores.",
            );
        }
        items
    }

    /// "load 0.52 at start, other programs used 3 % of the CPUs", or what of it is known.
    fn load_text(&self) -> Option<String> {
        let load = self
            .load_avg
            .map(|[one, ..]| format!("load {one:.2} at start"));
        let others = self
            .others_busy
            .map(|f| format!("other programs used {:.0} % of the CPUs", f * 100.0));
        match (load, others) {
            (Some(l), Some(o)) => Some(format!("{l}, {o}")),
            (l, o) => l.or(o),
        }
    }

    /// One line for the command line's summary.
    pub fn line(&self) -> String {
        let items: Vec<String> = self.items().into_iter().map(|i| i.text).collect();
        format!("machine: {}", items.join(", "))
    }
}

/// A file under `root`, trimmed; `None` when missing, unreadable or empty.
fn text(root: &Path, relative: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join(relative)).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The value of the first `key : value` line of `/proc/cpuinfo` with this key.
fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

/// The CPU's name: x86 says "model name"; ARM boards "Model" or "Hardware",
/// MIPS "cpu model", POWER "cpu", RISC-V "uarch".
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    [
        "model name",
        "Model",
        "Hardware",
        "cpu model",
        "cpu",
        "uarch",
    ]
    .iter()
    .find_map(|key| cpuinfo_field(cpuinfo, key))
    .map(|model| model.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|line| {
            line.split(':')
                .next()
                .is_some_and(|k| k.trim() == "processor")
        })
        .count()
}

/// Distinct (package, core) pairs of `cpus`, from sysfs topology; `None` if none is readable.
fn physical_cores(root: &Path, cpus: &[usize]) -> Option<usize> {
    let cores: std::collections::BTreeSet<(String, String)> = cpus
        .iter()
        .filter_map(|cpu| {
            let dir = format!("sys/devices/system/cpu/cpu{cpu}/topology");
            Some((
                text(root, &format!("{dir}/physical_package_id"))?,
                text(root, &format!("{dir}/core_id"))?,
            ))
        })
        .collect();
    Some(cores.len()).filter(|&n| n > 0)
}

/// A VM, named where something names the hypervisor, else by what told so.
fn vm(root: &Path, cpuinfo: &str, clocksource: Option<&str>) -> Option<String> {
    let flagged = cpuinfo_field(cpuinfo, "flags")
        .is_some_and(|flags| flags.split_whitespace().any(|f| f == "hypervisor"));
    let named = text(root, "sys/hypervisor/type")
        .or_else(|| dmi_hypervisor(root))
        .or_else(|| {
            clocksource
                .and_then(hypervisor_of_clocksource)
                .map(str::to_owned)
        });
    match named {
        Some(name) => Some(name),
        None => flagged.then(|| "hypervisor flag in cpuinfo".to_owned()),
    }
}

/// The hypervisor a firmware's product or vendor name reveals (DMI is often
/// readable unprivileged; real machines name their maker, so only known
/// hypervisors count).
fn dmi_hypervisor(root: &Path) -> Option<String> {
    const KNOWN: [&str; 9] = [
        "KVM",
        "QEMU",
        "VMware",
        "VirtualBox",
        "Virtual Machine",
        "Xen",
        "Google Compute Engine",
        "Amazon EC2",
        "BHYVE",
    ];
    [
        "sys/class/dmi/id/product_name",
        "sys/class/dmi/id/sys_vendor",
    ]
    .iter()
    .filter_map(|file| text(root, file))
    .find(|name| KNOWN.iter().any(|k| name.contains(k)))
}

/// Paravirtual clocks exist only under their hypervisor.
fn hypervisor_of_clocksource(clock: &str) -> Option<&'static str> {
    match clock {
        "kvm-clock" => Some("KVM"),
        "xen" => Some("Xen"),
        c if c.starts_with("hyperv") => Some("Hyper-V"),
        _ => None,
    }
}

/// A container runtime's marker file, or a hint in pid 1's cgroup path.
fn container(root: &Path) -> Option<String> {
    if root.join(".dockerenv").exists() {
        return Some("Docker: /.dockerenv".into());
    }
    if root.join("run/.containerenv").exists() {
        return Some("Podman: /run/.containerenv".into());
    }
    let cgroup = text(root, "proc/1/cgroup")?;
    cgroup_hint(&cgroup).map(|hint| format!("{hint} in pid 1's cgroup"))
}

/// The runtime a cgroup path names (inside a cgroup namespace it is just "/").
pub fn cgroup_hint(cgroup: &str) -> Option<&'static str> {
    ["docker", "kubepods", "libpod", "containerd", "lxc"]
        .into_iter()
        .find(|hint| cgroup.contains(hint))
}

/// `/proc/loadavg`'s first three fields.
pub fn load_avg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// CPU time counters, in the kernel's clock ticks (`USER_HZ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticks {
    /// All CPUs: busy and total time (`/proc/stat`'s "cpu" line).
    pub busy: u64,
    pub total: u64,
    /// This process's user + system time (`/proc/self/stat`).
    pub own: u64,
}

impl Ticks {
    fn read(root: &Path) -> Option<Ticks> {
        let (busy, total) = cpu_line(&text(root, "proc/stat")?)?;
        let own = own_ticks(&text(root, "proc/self/stat")?)?;
        Some(Ticks { busy, total, own })
    }
}

/// (busy, total) ticks of all CPUs from `/proc/stat`. Idle and I/O wait are
/// not busy; steal is, as a host's other guests took that time from us.
/// Guest time is already inside user time, so it is not added again.
pub fn cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the name in
/// parentheses may hold spaces, so fields are counted after its last ')'.
pub fn own_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Other programs' share of all CPUs' time between two readings.
pub fn others_busy(before: Option<Ticks>, after: Option<Ticks>) -> Option<f64> {
    let (a, b) = (before?, after?);
    let total = b.total.checked_sub(a.total).filter(|&t| t > 0)?;
    let busy = b.busy.saturating_sub(a.busy);
    let others = busy.saturating_sub(b.own.saturating_sub(a.own));
    Some((others as f64 / total as f64).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of files under a temporary root.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    const CPUINFO: &str = "processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\
        flags\t\t: fpu vme hypervisor lahf_lm\n\nprocessor\t: 1\n\
        model name\t: AMD EPYC 7B13 64-Core Processor\n";

    /// Two logical CPUs that are SMT siblings of one core, in a KVM guest.
    fn kvm_smt_machine() -> tempfile::TempDir {
        let topo = "sys/devices/system/cpu";
        tree(&[
            ("proc/cpuinfo", CPUINFO),
            (&format!("{topo}/online"), "0-1\n"),
            (&format!("{topo}/cpu0/topology/physical_package_id"), "0\n"),
            (&format!("{topo}/cpu0/topology/core_id"), "0\n"),
            (&format!("{topo}/cpu1/topology/physical_package_id"), "0\n"),
            (&format!("{topo}/cpu1/topology/core_id"), "0\n"),
            (
                "sys/devices/system/clocksource/clocksource0/current_clocksource",
                "kvm-clock\n",
            ),
            ("proc/sys/kernel/osrelease", "6.1.0-18-cloud-amd64\n"),
            ("proc/sys/kernel/perf_event_paranoid", "2\n"),
            ("proc/loadavg", "0.52 0.40 0.31 1/123 4567\n"),
            ("proc/1/cgroup", "0::/kubepods/besteffort/pod1234\n"),
        ])
    }

    #[test]
    fn reads_a_kvm_guest_with_smt_siblings() {
        let root = kvm_smt_machine();
        let env = Environment::read(root.path());
        assert_eq!(
            env,
            Environment {
                cpu_model: Some("AMD EPYC 7B13 64-Core Processor".into()),
                logical_cpus: Some(2),
                physical_cores: Some(1),
                smt: Some(true),
                freq_driver: None,
                governor: None,
                vm: Some("KVM".into()),
                container: Some("kubepods in pid 1's cgroup".into()),
                kernel: Some("6.1.0-18-cloud-amd64".into()),
                clocksource: Some("kvm-clock".into()),
                perf_event_paranoid: Some(2),
                load_avg: Some([0.52, 0.40, 0.31]),
                others_busy: None,
            }
        );
        assert_eq!(
            env.line(),
            "machine: AMD EPYC 7B13 64-Core Processor, 2 logical / 1 physical cores (SMT on), \
             VM (KVM), container (kubepods in pid 1's cgroup), kernel 6.1.0-18-cloud-amd64, \
             clocksource kvm-clock, perf_event_paranoid 2, governor: none reported, load 0.52 at start"
        );
    }

    #[test]
    fn an_empty_root_gives_nothing_and_no_panic() {
        let root = tree(&[]);
        let env = Environment::sample(root.path(), Duration::ZERO);
        assert_eq!(env, Environment::default());
        assert_eq!(env.line(), "machine: governor: none reported");
    }

    #[test]
    fn smt_and_governor_from_their_own_files() {
        let cpu = "sys/devices/system/cpu";
        let root = tree(&[
            (&format!("{cpu}/online"), "0-3"),
            (&format!("{cpu}/smt/active"), "0"),
            (
                &format!("{cpu}/cpufreq/policy0/scaling_driver"),
                "intel_pstate\n",
            ),
            (
                &format!("{cpu}/cpufreq/policy0/scaling_governor"),
                "powersave\n",
            ),
            (
                "sys/class/dmi/id/product_name",
                "Standard PC (Q35 + ICH9, 2009)\n",
            ),
            ("sys/class/dmi/id/sys_vendor", "QEMU\n"),
            (".dockerenv", ""),
        ]);
        let env = Environment::read(root.path());
        assert_eq!(env.logical_cpus, Some(4));
        assert_eq!(env.physical_cores, None, "no topology files");
        assert_eq!(env.smt, Some(false));
        assert_eq!(env.freq_driver.as_deref(), Some("intel_pstate"));
        assert_eq!(env.governor.as_deref(), Some("powersave"));
        assert_eq!(env.vm.as_deref(), Some("QEMU"), "the vendor names it");
        assert_eq!(env.container.as_deref(), Some("Docker: /.dockerenv"));
        let texts: Vec<String> = env.items().into_iter().map(|i| i.text).collect();
        assert!(
            texts.contains(&"4 logical cores (SMT off)".to_owned()),
            "{texts:?}"
        );
        assert!(texts.contains(&"governor powersave (intel_pstate)".to_owned()));
    }

    #[test]
    fn cpu_models_of_other_architectures() {
        assert_eq!(
            cpu_model(
                "processor : 0\nBogoMIPS : 108.00\n\nHardware : BCM2835\nModel : Raspberry Pi 4 Model B Rev 1.4\n"
            ),
            Some("Raspberry Pi 4 Model B Rev 1.4".into())
        );
        assert_eq!(
            cpu_model("processor : 0\ncpu : POWER9 (architected)\n"),
            Some("POWER9 (architected)".into())
        );
        assert_eq!(
            cpu_model("processor\t: 0\ncpu family\t: 6\ncpu MHz\t: 2000\n"),
            None
        );
        assert_eq!(cpu_model(""), None);
    }

    #[test]
    fn load_average_parses_and_refuses_junk() {
        assert_eq!(
            load_avg("1.19 1.80 1.83 1/85 14231\n"),
            Some([1.19, 1.80, 1.83])
        );
        assert_eq!(load_avg("1.19 1.80"), None);
        assert_eq!(load_avg("a b c"), None);
    }

    #[test]
    fn other_programs_busy_share_leaves_out_our_own_time() {
        let stat = |user: u64, idle: u64| {
            format!("cpu  {user} 0 10 {idle} 5 0 1 4 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
        };
        let (busy0, total0) = cpu_line(&stat(100, 1000)).unwrap();
        assert_eq!((busy0, total0), (115, 1120));
        let (busy1, total1) = cpu_line(&stat(140, 1060)).unwrap();
        let own = |ticks: u64| {
            own_ticks(&format!(
                "42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 {ticks} 2 0 0 20 0 1 0 5 0 0"
            ))
            .unwrap()
        };
        assert_eq!(own(8), 10);
        let before = Ticks {
            busy: busy0,
            total: total0,
            own: own(8),
        };
        let after = Ticks {
            busy: busy1,
            total: total1,
            own: own(18),
        };
        // 40 busy ticks of 100, 10 of them ours: others used 30 %.
        assert_eq!(others_busy(Some(before), Some(after)), Some(0.3));
        assert_eq!(
            others_busy(Some(before), Some(before)),
            None,
            "no time passed"
        );
        assert_eq!(others_busy(None, Some(after)), None);
        assert_eq!(cpu_line("cpu  1 2 3\n"), None, "too few fields");
        assert_eq!(own_ticks("42 (no fields)"), None);
    }

    #[test]
    fn container_hints_in_cgroup_paths() {
        assert_eq!(
            cgroup_hint("0::/system.slice/docker-abc.scope"),
            Some("docker")
        );
        assert_eq!(cgroup_hint("0::/\n1:cpu:/\n"), None);
    }
}
