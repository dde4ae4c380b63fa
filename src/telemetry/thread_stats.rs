//! The kernel's per-thread scheduler counters, read by a thread about itself
//! from `/proc/thread-self` when it ends.

/// (on-CPU ns, run-queue wait ns, timeslices) from `/proc/thread-self/schedstat`.
pub fn own_schedstat() -> Option<(u64, u64, u64)> {
    parse_schedstat(&std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)
}

/// How often the kernel moved this thread between cores (`se.nr_migrations`
/// in `/proc/thread-self/sched`, present on kernels built with scheduler debug info).
pub fn own_migrations() -> Option<u64> {
    parse_migrations(&std::fs::read_to_string("/proc/thread-self/sched").ok()?)
}

/// The nice value of thread `tid` of this process, as the kernel reports it
/// (`/proc/self/task/<tid>/stat` field 19).
pub fn nice_of(tid: i32) -> Option<i32> {
    parse_stat_nice(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)
}

/// Field 19 (nice) of a `stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after the last ')'.
pub fn parse_stat_nice(text: &str) -> Option<i32> {
    let (_, rest) = text.rsplit_once(')')?;
    // Field 3 (state) is the first after ')', so field 19 is the 17th.
    rest.split_ascii_whitespace().nth(16)?.parse().ok()
}

pub fn parse_schedstat(text: &str) -> Option<(u64, u64, u64)> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??, fields.next()??))
}

pub fn parse_migrations(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("se.nr_migrations"))
        .and_then(|rest| rest.trim_start_matches([' ', ':']).trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_lines() {
        assert_eq!(
            parse_schedstat("1765561 2000 13\n"),
            Some((1765561, 2000, 13))
        );
        assert_eq!(parse_schedstat("12"), None);
        let sched = "corelanes (42, #threads: 3)\n---\nse.exec_start   :   1.0\nse.nr_migrations                             :                    7\n";
        assert_eq!(parse_migrations(sched), Some(7));
        let stat = "42 (a) b) R 1 42 42 0 -1 4194304 100 0 0 0 5 1 0 0 20 -3 1 0 9 1 2";
        assert_eq!(parse_stat_nice(stat), Some(-3));
        assert!(own_schedstat().is_some());
    }
}
