//! The exports, streamed into files, parse back and agree with each other
//! and with the run.

use corelanes::export;
use corelanes::run::Placement;
use corelanes::workload::WorkloadKind;
use serde_json::Value;

use super::{config, exclusive, run};

#[test]
fn summary_csv_and_trace_agree() {
    let _machine = exclusive();
    // CPU this process spent before the run must not count as the run's:
    // 300 ms of it here, and the loop's calibration done before too.
    let spun = corelanes::sys::thread_cpu_ns();
    while corelanes::sys::thread_cpu_ns() - spun < 300_000_000 {}
    corelanes::workload::Calibration::get();
    let (t0, cpu0) = (std::time::Instant::now(), corelanes::sys::process_cpu_ns());
    let rec = run(config(WorkloadKind::Mixed, 2, 6, 10.0, Placement::Spread));
    let (elapsed, process_cpu) = (
        t0.elapsed().as_nanos() as u64,
        corelanes::sys::process_cpu_ns() - cpu0,
    );
    let dir = tempfile::tempdir().unwrap();
    let written = |name: &str, render: export::Render| {
        let path = dir.path().join(name);
        export::write_run(&path, &rec, render).unwrap();
        std::fs::read_to_string(path).unwrap()
    };

    let summary: Value =
        serde_json::from_str(&written("run.json", export::write_summary_json)).unwrap();
    let tasks = summary["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 6);
    assert_eq!(summary["wall_ns"].as_u64().unwrap(), rec.wall_ns);
    assert!(summary["metrics"]["parallelism"].as_f64().unwrap() > 0.0);
    // The process's CPU over the run holds every worker's own CPU time, and
    // no more than every CPU could give while the run took place.
    let run_cpu = summary["run_cpu_ns"].as_u64().expect("run_cpu_ns");
    let workers: u64 = rec.threads.iter().map(|t| t.cpu_ns).sum();
    assert!(
        run_cpu >= workers && workers > 0,
        "run_cpu_ns {run_cpu} < the workers' {workers}"
    );
    // The threads may run only on the allowed CPUs.
    let cpus = corelanes::topology::Topology::get().allowed.len() as u64;
    assert!(
        run_cpu <= elapsed * cpus,
        "run_cpu_ns {run_cpu} over {cpus} CPUs × the {elapsed} ns the run took"
    );
    // On any machine: no more than the whole process spent around the run.
    assert!(
        run_cpu <= process_cpu,
        "run_cpu_ns {run_cpu} over the process's {process_cpu} ns around the run"
    );
    for key in [
        "index",
        "name",
        "tid",
        "pinned_core",
        "cpu_ns",
        "voluntary_switches",
        "involuntary_switches",
    ] {
        assert!(
            summary["threads"][0].get(key).is_some(),
            "threads[0].{key} missing"
        );
    }

    let csv = written("run.csv", export::write_tasks_csv);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);

    let trace: Value =
        serde_json::from_str(&written("run.trace.json", export::write_chrome_trace)).unwrap();
    let spans: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "task")
        .collect();
    assert_eq!(spans.len(), 6);
    let names = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .count();
    assert!(names >= 2, "thread_name metadata for each worker");

    for task in tasks {
        let id = task["id"].as_u64().unwrap();
        let row = rows
            .iter()
            .find(|r| r[col("id")] == id.to_string())
            .expect("task in the CSV");
        assert_eq!(row[col("start_ns")], task["start_ns"].to_string());
        assert_eq!(row[col("end_ns")], task["end_ns"].to_string());
        let span = spans
            .iter()
            .find(|s| s["name"] == format!("task {id}"))
            .expect("task in the trace");
        let ts_ns = span["ts"].as_f64().unwrap() * 1000.0;
        let dur_ns = span["dur"].as_f64().unwrap() * 1000.0;
        assert!((ts_ns - task["start_ns"].as_f64().unwrap()).abs() < 1.0);
        let duration = task["end_ns"].as_f64().unwrap() - task["start_ns"].as_f64().unwrap();
        assert!((dur_ns - duration).abs() < 1.0);
    }
}
