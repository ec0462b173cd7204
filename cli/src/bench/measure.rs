//! What a benchmark reads about its own process, from Linux's `/proc`: CPU
//! time (user + system, all threads) and peak resident memory. Figures per
//! CPU-second do not move with the machine's load the way wall time does.

/// The kernel reports CPU time in clock ticks of `USER_HZ`, which is 100 on
/// every mainstream Linux build.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds this process has used so far (10 ms resolution), or `None`
/// off Linux.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ")".
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
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
        let Some(before) = cpu_seconds() else {
            println!("skipped: no /proc/self/stat on this machine");
            return;
        };
        let mut sum = 0_u64;
        for i in 0..50_000_000_u64 {
            sum = std::hint::black_box(sum.wrapping_add(i * i));
        }
        let after = cpu_seconds().expect("read once, read again");
        assert!(after > before, "{before} -> {after} after {sum}");
        assert!(peak_rss_kib().expect("VmHWM") > 0);
    }
}
