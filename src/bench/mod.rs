//! Benchmarks run by `ccdir bench …`: whole-system measurements that need
//! real servers and real databases, with CPU time reported beside wall
//! time (the machine may be shared).

pub mod federation;

/// User + system CPU seconds of this process so far (Linux `/proc`).
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
