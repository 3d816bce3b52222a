//! CPU time of a process, from `/proc`: what a server spent to answer a round
//! of requests, its threads and any child processes included.

use std::path::Path;
use std::time::Duration;

/// Reads CPU time from `/proc`, in the kernel's clock ticks.
#[derive(Clone, Copy, Debug)]
pub struct CpuClock {
    ticks_per_second: u64,
}

impl CpuClock {
    /// The clock, with `getconf CLK_TCK` for the tick length (100 on every
    /// Linux this runs on; asked rather than assumed).
    pub fn new() -> CpuClock {
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks: &u64| ticks > 0)
            .unwrap_or(100);
        CpuClock { ticks_per_second }
    }

    /// User plus system time of `pid`, all its threads, its reaped children
    /// (`cutime`, `cstime`) and its live descendants. `None` if the process
    /// is gone, or has exited and waits to be reaped (a zombie: its figures
    /// stay readable, but it serves nothing).
    pub fn process_tree(&self, pid: u32) -> Option<Duration> {
        if matches!(state(pid)?, 'Z' | 'X') {
            return None;
        }
        let ticks = tree_ticks(pid)?;
        Some(Duration::from_secs_f64(
            ticks as f64 / self.ticks_per_second as f64,
        ))
    }
}

/// Ticks of `pid` and, recursively, of the children it has now.
fn tree_ticks(pid: u32) -> Option<u64> {
    let mut ticks = own_ticks(pid)?;
    for child in children(pid) {
        // A child that exited meanwhile is in `cutime` / `cstime` once reaped.
        ticks += tree_ticks(child).unwrap_or(0);
    }
    Some(ticks)
}

/// utime + stime + cutime + cstime from `/proc/PID/stat` (fields 14 to 17).
fn own_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)? + field(16)? + field(17)?)
}

/// The process's state (field 3 of `/proc/PID/stat`: `R`, `S`, `Z`, ...).
fn state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The fields of `/proc/PID/stat` from field 3 on.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the fields
    // that follow start after its last `)`, with field 3 (state) first.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The pids of `pid`'s live children, from every thread's `children` list
/// (empty where the kernel does not offer it).
fn children(pid: u32) -> Vec<u32> {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_time() {
        let clock = CpuClock::new();
        assert!(clock.process_tree(std::process::id()).is_some());
        assert!(clock.process_tree(u32::MAX).is_none());
    }

    #[test]
    fn an_exited_child_not_yet_reaped_is_gone() {
        let clock = CpuClock::new();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        // Not waited for: once it exits it is a zombie, its stat readable.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while state(child.id()) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "`true` never exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(clock.process_tree(child.id()).is_none());
        child.wait().unwrap();
    }
}
