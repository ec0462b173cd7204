//! What a benchmark reads about its own process: CPU time (user + system, all
//! threads, from the process CPU clock) and, from Linux's `/proc`, peak
//! resident memory. Figures per CPU-second do not move with the machine's
//! load the way wall time does.

use nix::time::{clock_gettime, ClockId};

/// CPU seconds this process has used so far, at the clock's nanosecond
/// resolution (`/proc/self/stat` counts 10 ms ticks, too coarse for a
/// workload the simulator finishes in 20 ms), or `None` without the clock.
pub fn cpu_seconds() -> Option<f64> {
    let spent = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).ok()?;
    Some(spent.tv_sec() as f64 + spent.tv_nsec() as f64 / 1e9)
}

/// This process's peak resident set size in KiB (`VmHWM`), or `None`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine, for the table's header: cores and memory.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info
                .lines()
                .find(|line| line.starts_with("MemTotal:"))?
                .to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or("unknown".to_string(), |kib| {
            format!("{:.1} GiB", kib / 1_048_576.0)
        });
    format!("{cores} cores, {memory_gib} memory")
}

/// The 1, 5 and 15 minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_memory_is_read() {
        let before = cpu_seconds().expect("Linux has a process CPU clock");
        let mut sum = 0_u64;
        for i in 0..50_000_000_u64 {
            sum = std::hint::black_box(sum.wrapping_add(i * i));
        }
        let after = cpu_seconds().expect("read once, read again");
        assert!(after > before, "{before} -> {after} after {sum}");
        assert!(peak_rss_kib().expect("VmHWM") > 0);
    }
}
