//! Lesson: SMT siblings are not full cores. Two threads on the two
//! hardware threads of one core against two threads on separate cores.
//! Only where the topology (`/sys`) shows siblings among the allowed cores.

use serde_json::json;

use super::evidence::ms;
use super::{Chart, Interrupted, Judged, Lab, Series, SeriesStyle, figures};
use crate::run::Placement;
use crate::topology::Topology;
use crate::workload::WorkloadKind;

const TASKS: usize = 8;
const TASK_MS: f64 = 100.0;
/// Siblings must take at least this many times as long as separate cores.
const MIN_RATIO: f64 = 1.2;

pub(super) const CLAIM: &str = "Two hardware threads (SMT siblings, hyper-threads) of one core share its \
                     execution units: two threads on them get less done than on two separate cores.";

/// Cores to compare: `siblings` are two SMT threads of one core, `separate`
/// the first of them and a core of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cores {
    pub siblings: [usize; 2],
    pub separate: [usize; 2],
}

/// The cores to compare on `topo`, or why there are none.
pub(super) fn cores(topo: &Topology) -> Result<Cores, String> {
    if topo.smt_siblings.is_empty() {
        return Err(
            "this machine has no SMT siblings: each core has one hardware thread \
             (/sys/devices/system/cpu/cpu*/topology/thread_siblings_list)"
                .into(),
        );
    }
    let pair = topo.smt_siblings.iter().find_map(|group| {
        let mut allowed = group.iter().copied().filter(|&c| topo.is_allowed(c));
        Some([allowed.next()?, allowed.next()?])
    });
    let Some(siblings) = pair else {
        return Err(format!(
            "no two SMT siblings are both among this process's allowed cores ({})",
            topo.allowed_text()
        ));
    };
    let own = topo.siblings_of(siblings[0]);
    let Some(&other) = topo
        .allowed
        .iter()
        .find(|&&c| c != siblings[0] && !own.contains(&c))
    else {
        return Err(format!(
            "the allowed cores ({}) are all hardware threads of one core: there is no separate \
             core to compare with",
            topo.allowed_text()
        ));
    };
    Ok(Cores {
        siblings,
        separate: [siblings[0], other],
    })
}

pub(super) fn run(lab: &mut Lab) -> Judged {
    let criterion = format!(
        "The same {TASKS} CPU-bound tasks of {TASK_MS} ms on 2 threads take at least {MIN_RATIO} \
         times as long on two SMT siblings of one core as on two separate cores."
    );
    let cores = match cores(lab.topo) {
        Ok(cores) => cores,
        Err(why) => return Judged::cannot_run(CLAIM, criterion, why),
    };
    let mut walls: Vec<(&'static str, [usize; 2], u64)> = Vec::new();
    if let Err(why) = measure(lab, cores, &mut walls) {
        let charts = vec![chart(&walls)];
        return Judged::interrupted(CLAIM, criterion, why, Default::default(), charts);
    }
    let (separate, siblings) = (walls[0].2, walls[1].2);
    let ratio = siblings as f64 / separate.max(1) as f64;
    let holds = ratio >= MIN_RATIO;
    let outcome = if holds {
        "the siblings shared one core's units, not two cores' worth".to_owned()
    } else {
        format!("under {MIN_RATIO}×: this work kept both siblings nearly as busy as two cores")
    };
    let verdict = format!(
        "2 threads took {} on SMT siblings {} and {} and {} on separate cores {} and {}: \
         {ratio:.2}× as long; {outcome}.",
        crate::metrics::human_ns(siblings),
        cores.siblings[0],
        cores.siblings[1],
        crate::metrics::human_ns(separate),
        cores.separate[0],
        cores.separate[1],
    );
    let figures = figures(json!({
        "siblings": cores.siblings,
        "separate": cores.separate,
        "wall_siblings_ms": ms(siblings),
        "wall_separate_ms": ms(separate),
        "wall_ratio": ratio,
        "wall_ratio_min": MIN_RATIO,
    }));
    Judged::measured(
        CLAIM,
        criterion,
        holds,
        verdict,
        figures,
        vec![chart(&walls)],
    )
}

/// The runs on separate cores, then on siblings, each wall added to `walls`
/// (and charted) as it ends.
fn measure(
    lab: &mut Lab,
    cores: Cores,
    walls: &mut Vec<(&'static str, [usize; 2], u64)>,
) -> Result<(), Interrupted> {
    for (what, pair) in [
        ("separate cores", cores.separate),
        ("SMT siblings", cores.siblings),
    ] {
        lab.step(format!("2 threads on {what} {} and {}…", pair[0], pair[1]));
        let placement = Placement::List(pair.to_vec());
        let rec = lab.run(lab.config(WorkloadKind::Cpu, 2, TASKS, TASK_MS, placement))?;
        walls.push((what, pair, rec.wall_ns));
        lab.charts(&[chart(walls)]);
    }
    Ok(())
}

fn chart(walls: &[(&str, [usize; 2], u64)]) -> Chart {
    let series = walls
        .iter()
        .enumerate()
        .map(|(i, (what, pair, ns))| {
            Series::new(
                format!("{what} {} and {}", pair[0], pair[1]),
                SeriesStyle::Bars,
                vec![[i as f64 + 1.0, ms(*ns)]],
            )
        })
        .collect();
    Chart::new(
        "Wall time of the same work on 2 threads",
        "",
        "wall (ms)",
        series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Layout;

    /// A fixture machine, its CPUs all allowed unless `allowed` says.
    fn machine(name: &str, allowed: Option<Vec<usize>>) -> Topology {
        let root: std::path::PathBuf =
            [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/topology", name]
                .iter()
                .collect();
        let layout = Layout::read(&root, 0);
        let all = layout.cpus.iter().map(|p| p.cpu).collect();
        Topology::with_layout(allowed.unwrap_or(all), layout.cpus.len(), layout)
    }

    #[test]
    fn compares_siblings_with_a_separate_core_where_the_topology_has_them() {
        let xeon = machine("xeon-2s", None);
        let chosen = cores(&xeon).expect("the Xeon fixture has SMT");
        assert!(
            xeon.siblings_of(chosen.siblings[0])
                .contains(&chosen.siblings[1])
        );
        assert_eq!(chosen.separate[0], chosen.siblings[0]);
        assert_ne!(chosen.separate[0], chosen.separate[1]);
        assert!(
            !xeon
                .siblings_of(chosen.separate[0])
                .contains(&chosen.separate[1])
        );

        let why = cores(&machine("vm2", None)).unwrap_err();
        assert!(why.contains("no SMT siblings"), "{why}");
        // Only one hardware thread of each core allowed, or only one core's.
        let group = xeon.smt_siblings[0].clone();
        let firsts: Vec<usize> = xeon.smt_siblings.iter().map(|g| g[0]).collect();
        let why = cores(&machine("xeon-2s", Some(firsts))).unwrap_err();
        assert!(why.contains("no two SMT siblings"), "{why}");
        let why = cores(&machine("xeon-2s", Some(group))).unwrap_err();
        assert!(why.contains("no separate core"), "{why}");
    }
}
