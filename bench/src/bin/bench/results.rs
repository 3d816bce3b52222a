//! What the runs measured, and the summary the table and chart show: the
//! median over rounds per server and mix, and the ratio against the baseline
//! measured in the same rounds.

use crate::load::{Mix, Sample};
use crate::lost::Lost;

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub server: &'static str,
    pub mix: Mix,
    pub round: usize,
    pub sample: Sample,
}

/// One line of the throughput table.
#[derive(Clone, Debug)]
pub struct Row {
    pub server: &'static str,
    pub mix: Mix,
    /// Median requests per second over the rounds.
    pub per_second: f64,
    /// The lowest and highest round.
    pub range: (f64, f64),
    /// Median over rounds of this server's req/s over the baseline's in the
    /// same round and mix; `None` without a baseline.
    pub ratio: Option<f64>,
    /// Median server CPU per request, µs.
    pub server_us: f64,
    /// Median over rounds of this server's CPU per request over that of its
    /// raw baseline on the same framework, in the same round and mix; `None`
    /// when that baseline did not run.
    pub cpu_vs_raw: Option<f64>,
    /// The lowest and highest round of those ratios.
    pub cpu_vs_raw_range: Option<(f64, f64)>,
    /// The same with Redis's CPU added to the server's, here and in the
    /// baseline: a store on Redis does part of the session work in its
    /// scripts.
    pub all_vs_raw: Option<f64>,
    /// The lowest and highest round of those ratios.
    pub all_vs_raw_range: Option<(f64, f64)>,
    /// Median Redis CPU per request, µs, for servers on Redis.
    pub redis_us: Option<f64>,
    /// Median Redis commands per request (those inside scripts included),
    /// for servers on Redis.
    pub redis_commands: Option<f64>,
    /// Errors over all rounds.
    pub errors: u64,
}

/// The lost-update check of one server.
#[derive(Clone, Copy, Debug)]
pub struct LostRow {
    pub server: &'static str,
    pub lost: Lost,
}

/// Rows for `servers` × `mixes`, in that order, from `runs`; `baseline`
/// names the server the req/s ratios are against, `raw_of` each server's
/// raw baseline on its own framework, for the CPU ratio.
pub fn summarize(
    runs: &[Run],
    servers: &[&'static str],
    mixes: &[Mix],
    baseline: &str,
    raw_of: impl Fn(&str) -> &'static str,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &mix in mixes {
        for &server in servers {
            let mine: Vec<&Run> = runs
                .iter()
                .filter(|run| run.server == server && run.mix == mix)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let per_second: Vec<f64> = mine.iter().map(|run| run.sample.per_second()).collect();
            // Per round, `metric` of this server over that of `other` in
            // the same round and mix.
            let ratios_to = |other: &str, metric: fn(&Sample) -> f64| -> Vec<f64> {
                mine.iter()
                    .filter_map(|run| {
                        let base = runs
                            .iter()
                            .find(|r| r.server == other && r.mix == mix && r.round == run.round)
                            .map(|r| metric(&r.sample))?;
                        (base > 0.0).then(|| metric(&run.sample) / base)
                    })
                    .collect()
            };
            let ratios = ratios_to(baseline, Sample::per_second);
            let cpu_ratios = ratios_to(raw_of(server), Sample::server_us_per_request);
            let all_ratios = ratios_to(raw_of(server), Sample::all_us_per_request);
            let redis: Vec<f64> = mine
                .iter()
                .filter_map(|run| run.sample.redis_us_per_request())
                .collect();
            let commands: Vec<f64> = mine
                .iter()
                .filter_map(|run| run.sample.redis_commands_per_request())
                .collect();
            rows.push(Row {
                server,
                mix,
                per_second: median(&per_second),
                range: range(&per_second),
                ratio: (!ratios.is_empty()).then(|| median(&ratios)),
                server_us: median(
                    &mine
                        .iter()
                        .map(|run| run.sample.server_us_per_request())
                        .collect::<Vec<_>>(),
                ),
                cpu_vs_raw: (!cpu_ratios.is_empty()).then(|| median(&cpu_ratios)),
                cpu_vs_raw_range: (!cpu_ratios.is_empty()).then(|| range(&cpu_ratios)),
                all_vs_raw: (!all_ratios.is_empty()).then(|| median(&all_ratios)),
                all_vs_raw_range: (!all_ratios.is_empty()).then(|| range(&all_ratios)),
                redis_us: (!redis.is_empty()).then(|| median(&redis)),
                redis_commands: (!commands.is_empty()).then(|| median(&commands)),
                errors: mine.iter().map(|run| run.sample.errors).sum(),
            });
        }
    }
    rows
}

/// The median; the mean of the middle two for an even count; 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(server: &'static str, round: usize, requests: u64) -> Run {
        Run {
            server,
            mix: Mix::Get,
            round,
            sample: Sample {
                requests,
                errors: 1,
                elapsed: Duration::from_secs(1),
                server_cpu: Duration::from_millis(requests),
                redis_cpu: None,
                redis_commands: None,
            },
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn ratios_pair_rounds_and_errors_add_up() {
        let runs = [
            run("a", 0, 100),
            run("base", 0, 200),
            run("a", 1, 300),
            run("base", 1, 300),
            run("a", 2, 50),
            run("base", 2, 100),
        ];
        let rows = summarize(&runs, &["a", "base"], &[Mix::Get], "base", |_| "base");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].per_second, 100.0);
        assert_eq!(rows[0].range, (50.0, 300.0));
        assert_eq!(rows[0].ratio, Some(0.5));
        assert_eq!(rows[0].errors, 3);
        assert_eq!(rows[0].server_us, 1000.0);
        assert_eq!(rows[1].ratio, Some(1.0));
        // CPU per request is the same everywhere here: 1 ms.
        assert_eq!(rows[0].cpu_vs_raw, Some(1.0));
    }

    #[test]
    fn cpu_ratios_pair_each_server_with_its_own_raw_baseline() {
        let mut slow = run("b", 0, 100);
        slow.sample.server_cpu = Duration::from_millis(300);
        let mut raw_b = run("raw-b", 0, 100);
        raw_b.sample.server_cpu = Duration::from_millis(200);
        let runs = [run("a", 0, 100), run("base", 0, 100), slow, raw_b];
        let raw_of = |server: &str| if server == "b" { "raw-b" } else { "base" };
        let rows = summarize(&runs, &["a", "b"], &[Mix::Get], "base", raw_of);
        assert_eq!(rows[0].cpu_vs_raw, Some(1.0));
        assert_eq!(rows[1].cpu_vs_raw, Some(1.5));
        assert_eq!(rows[1].cpu_vs_raw_range, Some((1.5, 1.5)));
        // No baseline in the runs: no ratio.
        let rows = summarize(&runs, &["a"], &[Mix::Get], "base", |_| "gone");
        assert_eq!(rows[0].cpu_vs_raw, None);
        assert_eq!(rows[0].cpu_vs_raw_range, None);
    }

    #[test]
    fn cpu_ratios_keep_the_rounds_range() {
        let mut runs = Vec::new();
        for (round, cpu_ms) in [(0, 110), (1, 90), (2, 130)] {
            let mut mine = run("a", round, 100);
            mine.sample.server_cpu = Duration::from_millis(cpu_ms);
            runs.extend([mine, run("base", round, 100)]);
        }
        let rows = summarize(&runs, &["a"], &[Mix::Get], "base", |_| "base");
        assert_eq!(rows[0].cpu_vs_raw, Some(1.1));
        assert_eq!(rows[0].cpu_vs_raw_range, Some((0.9, 1.3)));
    }

    #[test]
    fn redis_cpu_counts_in_the_ratio_of_all_cpu() {
        // Same server CPU; the store's Redis does 300 ms of work to the
        // baseline's 100, and a store without Redis does none.
        let mut mine = run("a", 0, 100);
        mine.sample.redis_cpu = Some(Duration::from_millis(300));
        let mut base = run("base", 0, 100);
        base.sample.redis_cpu = Some(Duration::from_millis(100));
        let runs = [mine, base, run("memory", 0, 100)];
        let rows = summarize(&runs, &["a", "memory"], &[Mix::Get], "base", |_| "base");
        assert_eq!(rows[0].cpu_vs_raw, Some(1.0));
        assert_eq!(rows[0].all_vs_raw, Some(2.0));
        assert_eq!(rows[1].cpu_vs_raw, Some(1.0));
        assert_eq!(rows[1].all_vs_raw, Some(0.5));
    }
}
