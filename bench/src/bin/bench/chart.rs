//! The SVG chart: requests per second per server, one bar per mix, above
//! the lost updates per server. SVG only, with text as `<text>` elements, so
//! it needs no fonts on the machine that makes it.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::load::MIXES;
use crate::report::thousands;
use crate::results::{LostRow, Row};

const WIDTH: u32 = 1000;
/// Height per server in a panel, and the panel's own (caption, axis).
const PER_GROUP: u32 = 52;
const PANEL: u32 = 110;
const FONT: &str = "sans-serif";
const MIX_COLORS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
];
const LOST_COLORS: [RGBColor; 2] = [RGBColor(0xd6, 0x27, 0x28), RGBColor(0x94, 0x67, 0xbd)];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Servers (a bar group each) and their values, one per series.
type Groups<'a> = [(&'a str, Vec<f64>)];

/// Writes the chart for `servers` (in this order) to `path`.
pub fn write(path: &Path, servers: &[&str], rows: &[Row], lost: &[LostRow]) -> anyhow::Result<()> {
    let top = PANEL + PER_GROUP * servers.len() as u32;
    let bottom = PANEL + PER_GROUP * lost.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, top + bottom)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(top);

    let throughput: Vec<(&str, Vec<f64>)> = servers
        .iter()
        .map(|&server| {
            let per_mix = MIXES
                .iter()
                .map(|&mix| {
                    rows.iter()
                        .find(|row| row.server == server && row.mix == mix)
                        .map_or(0.0, |row| row.per_second)
                })
                .collect();
            (server, per_mix)
        })
        .collect();
    let mix_names: Vec<&str> = MIXES.iter().map(|mix| mix.name()).collect();
    let largest = throughput
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(0.0, f64::max);
    grouped_bars(
        &upper,
        "Requests per second (median over rounds; higher is better)",
        Bars {
            series: &mix_names,
            colors: &MIX_COLORS,
            // Room at the right for the value labels and the legend.
            x_max: largest.max(1.0) * 1.35,
            legend: SeriesLabelPosition::LowerRight,
        },
        &throughput,
    )?;

    let sent = lost.first().map_or(0, |row| row.lost.sent());
    let lost_groups: Vec<(&str, Vec<f64>)> = lost
        .iter()
        .map(|row| {
            (
                row.server,
                vec![row.lost.sets as f64, row.lost.incrs as f64],
            )
        })
        .collect();
    grouped_bars(
        &lower,
        &format!(
            "Lost updates of {} concurrent writes (lower is better)",
            thousands(sent as f64)
        ),
        Bars {
            series: &["/set, 8 keys", "/incr, 1 key"],
            colors: &LOST_COLORS,
            // The whole scale is every write sent, with room for the labels.
            x_max: (sent as f64).max(1.0) * 1.12,
            // This project's servers, listed first, lose nothing: room there.
            legend: SeriesLabelPosition::UpperRight,
        },
        &lost_groups,
    )?;
    root.present()?;
    Ok(())
}

/// How one panel's bars look.
struct Bars<'a> {
    /// The bars of each group, by name.
    series: &'a [&'a str],
    colors: &'a [RGBColor],
    /// The end of the value axis.
    x_max: f64,
    legend: SeriesLabelPosition,
}

/// Horizontal bars, one group per server (the first at the top), one bar
/// per series in each, the value written at each bar's end.
fn grouped_bars(area: &Area, title: &str, bars: Bars, groups: &Groups) -> anyhow::Result<()> {
    let Bars {
        series,
        colors,
        x_max,
        legend,
    } = bars;
    let n = groups.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(30)
        .y_label_area_size(180)
        .build_cartesian_2d(0.0..x_max, 0.0..n)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .x_label_formatter(&|x| thousands(*x))
        .label_style((FONT, 13))
        .draw()?;

    let slot = 0.8 / series.len() as f64;
    let bar = |group: usize, index: usize| {
        let top = n - group as f64 - 0.1 - index as f64 * slot;
        (top - slot, top)
    };
    let value_style =
        TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (index, (&name, &color)) in series.iter().zip(colors.iter().cycle()).enumerate() {
        chart
            .draw_series(groups.iter().enumerate().map(|(group, (_, values))| {
                let (low, high) = bar(group, index);
                let value = values.get(index).copied().unwrap_or(0.0);
                Rectangle::new([(0.0, low), (value, high)], color.filled())
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart.draw_series(groups.iter().enumerate().map(|(group, (_, values))| {
            let (low, high) = bar(group, index);
            let value = values.get(index).copied().unwrap_or(0.0);
            Text::new(
                format!(" {}", thousands(value)),
                (value, (low + high) / 2.0),
                value_style.clone(),
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;

    // The server names, right-aligned left of the axis, in the label area
    // (outside the plot, so drawn on the panel in its own pixels).
    let base = area.get_base_pixel();
    let name_style =
        TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (group, (name, _)) in groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, n - group as f64 - 0.5));
        area.draw(&Text::new(
            name.to_string(),
            (x - base.0 - 8, y - base.1),
            name_style.clone(),
        ))?;
    }
    Ok(())
}
