//! The Markdown report: the machine and settings, the throughput table and
//! the lost-update table.

use std::fmt::Write;
use std::process::Command;

use crate::results::{LostRow, Row};

/// The machine a run was on, for the report's header.
pub struct Machine {
    /// `date -u`.
    pub date: String,
    /// `uname -m`.
    pub arch: String,
    /// The first `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// Cores available to the bench.
    pub cores: usize,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        Machine {
            date: command_line("date", &["-u"]),
            arch: command_line("uname", &["-m"]),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The first line a command prints, or `unknown`.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The knobs of a run, as the report states them.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub rounds: usize,
    pub secs: u64,
    pub users: usize,
    pub lost_users: usize,
    /// Requests a second offered in all, if paced (`--rate`).
    pub rate: Option<u64>,
}

/// Everything the report shows.
pub struct Report<'a> {
    pub machine: &'a Machine,
    pub settings: Settings,
    pub baseline: &'a str,
    pub rows: &'a [Row],
    pub lost: &'a [LostRow],
}

impl Report<'_> {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let (m, s) = (self.machine, self.settings);
        let mut out = String::new();
        out.push_str(
            "# HTTP bench: generic-session beside tower-sessions, actix-session and raw Redis\n\n",
        );
        // `write!` into a String cannot fail.
        let _ = writeln!(
            out,
            "{} · {} · {} · {} cores · rounds: {} × {} s per server and mix · {} users · lost-update check: {} users × 8\n",
            m.date, m.arch, m.cpu, m.cores, s.rounds, s.secs, s.users, s.lost_users
        );
        if let Some(rate) = s.rate {
            let _ = writeln!(
                out,
                "Paced: {} requests a second offered in all (`--rate`), so req/s shows which \
                 servers kept up, and server CPU per request compares the same work at the \
                 same load.\n",
                thousands(rate as f64)
            );
        }
        out.push_str(&self.throughput_table());
        out.push('\n');
        out.push_str(&self.lost_table());
        out
    }

    fn throughput_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| server | mix | req/s (median) | rounds' range | vs {} | server CPU µs/req | server CPU vs raw¹ | Redis CPU µs/req | server + Redis CPU vs raw² | Redis commands/req | errors |",
            self.baseline
        );
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {}–{} | {} | {:.1} | {} | {} | {} | {} | {} |",
                row.server,
                row.mix.name(),
                thousands(row.per_second),
                thousands(row.range.0),
                thousands(row.range.1),
                row.ratio.map_or("—".into(), |r| format!("{r:.2}")),
                row.server_us,
                ratio_cell(row.cpu_vs_raw, row.cpu_vs_raw_range),
                row.redis_us.map_or("—".into(), |us| format!("{us:.1}")),
                ratio_cell(row.all_vs_raw, row.all_vs_raw_range),
                row.redis_commands
                    .map_or("—".into(), |commands| format!("{commands:.1}")),
                row.errors
            );
        }
        out.push_str(
            "\n¹ Median over rounds of the server's CPU per request over that of the raw \
             baseline on its own framework (`raw-redis` on axum and hyper, `raw-redis-actix` \
             on actix-web), in the same round and mix: what the session work costs, apart \
             from what one framework costs beside the other. In brackets, with more than one \
             round: the lowest and highest round's.\n\
             \n² The same, with the CPU of the `redis-server` each uses added to the \
             server's and the baseline's: a store on Redis does part of the session work \
             in its scripts, inside Redis. A server without Redis adds none.\n",
        );
        out
    }

    fn lost_table(&self) -> String {
        let mut out = String::from("## Lost updates\n\n");
        let sent = self.lost.first().map_or(0, |row| row.lost.sent());
        let _ = writeln!(
            out,
            "{} users, each on its own session: 8 concurrent `/set` to 8 different keys, then \
             8 concurrent `/incr` of one key; lost = updates not read back with `/get`, of {}.\n",
            self.settings.lost_users,
            thousands(sent as f64)
        );
        out.push_str("| server | `/set` 8 keys: lost | `/incr` 1 key: lost | errors |\n");
        out.push_str("|---|---:|---:|---:|\n");
        for row in self.lost {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                row.server,
                thousands(row.lost.sets as f64),
                thousands(row.lost.incrs as f64),
                row.lost.errors
            );
        }
        out
    }
}

/// The table's cell for a ratio of CPU to the raw baseline's: the median,
/// and the rounds' range when they differ.
fn ratio_cell(median: Option<f64>, range: Option<(f64, f64)>) -> String {
    match (median, range) {
        (Some(median), Some((low, high))) if low < high => {
            format!("{median:.2} ({low:.2}–{high:.2})")
        }
        (Some(median), _) => format!("{median:.2}"),
        (None, _) => "—".into(),
    }
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1600.0), "1,600");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }

    #[test]
    fn cpu_cells_show_the_rounds_range_when_they_differ() {
        assert_eq!(
            ratio_cell(Some(1.08), Some((1.02, 1.154))),
            "1.08 (1.02–1.15)"
        );
        assert_eq!(ratio_cell(Some(1.08), Some((1.08, 1.08))), "1.08");
        assert_eq!(ratio_cell(None, None), "—");
    }
}
