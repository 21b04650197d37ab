//! The SVG chart: load, outcomes and p99 latency over time, protected (blue) against
//! unprotected (red), with the phases shaded behind.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Report;
use crate::scenario::Scenario;
use crate::stats::{BIN, Totals};

const PROTECTED: RGBColor = RGBColor(31, 119, 180);
const UNPROTECTED: RGBColor = RGBColor(214, 39, 40);
const LIMITED: RGBColor = RGBColor(255, 127, 14);
const SHED: RGBColor = RGBColor(148, 103, 189);
const REJECTED: RGBColor = RGBColor(23, 190, 207);
const SHADE: RGBColor = RGBColor(242, 242, 242);

type Panel<'a> = DrawingArea<SVGBackend<'a>, Shift>;

pub(crate) fn write(
    path: &Path,
    scenario: &Scenario,
    report: &Report,
) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1100, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "keel overload demo: {:.0} req/s base, seed {}",
            scenario.rate, scenario.seed
        ),
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((3, 1));
    let (p, u) = (&report.protected.bins, &report.unprotected.bins);
    let rate =
        |bins: &[Totals], f: fn(&Totals) -> u64| series(bins, |t| f(t) as f64 / BIN.as_secs_f64());

    let load = [
        ("offered", BLACK, false, rate(p, |t| t.offered)),
        (
            "served, protected",
            PROTECTED,
            false,
            rate(p, Totals::served),
        ),
        (
            "served, unprotected",
            UNPROTECTED,
            false,
            rate(u, Totals::served),
        ),
    ];
    let top = Layout {
        log: false,
        phase_names: true,
        legend: SeriesLabelPosition::MiddleLeft,
    };
    panel(&panels[0], scenario, "Load (requests/s)", &load, top)?;

    let outcomes = [
        ("limited (429)", LIMITED, false, rate(p, |t| t.limited)),
        ("shed (503)", SHED, false, rate(p, |t| t.shed)),
        (
            "breaker-rejected (503)",
            REJECTED,
            false,
            rate(p, |t| t.rejected),
        ),
        (
            "errors, protected",
            PROTECTED,
            true,
            rate(p, Totals::errors),
        ),
        (
            "errors, unprotected",
            UNPROTECTED,
            false,
            rate(u, Totals::errors),
        ),
    ];
    let below = Layout {
        log: false,
        phase_names: false,
        legend: SeriesLabelPosition::UpperLeft,
    };
    panel(
        &panels[1],
        scenario,
        "Outcomes (requests/s)",
        &outcomes,
        below.clone(),
    )?;

    let ms = |bins: &[Totals]| series(bins, |t| (t.p99.as_secs_f64() * 1000.0).max(1.0));
    let latency = [
        ("p99, protected", PROTECTED, false, ms(p)),
        ("p99, unprotected", UNPROTECTED, false, ms(u)),
    ];
    let log = Layout { log: true, ..below };
    panel(
        &panels[2],
        scenario,
        "p99 latency (ms, log scale)",
        &latency,
        log,
    )?;
    root.present()?;
    Ok(())
}

/// (time of the bin's middle, value) for every bin.
fn series(bins: &[Totals], value: impl Fn(&Totals) -> f64) -> Vec<(f64, f64)> {
    let bin = BIN.as_secs_f64();
    bins.iter()
        .enumerate()
        .map(|(i, t)| ((i as f64 + 0.5) * bin, value(t)))
        .collect()
}

/// Name, colour, dashed, points.
type Line = (&'static str, RGBColor, bool, Vec<(f64, f64)>);

/// Where a panel's legend goes (each where its data leaves room) and what it shows.
#[derive(Clone)]
struct Layout {
    log: bool,
    /// Name the phases (top panel only: the names would collide with the legends).
    phase_names: bool,
    legend: SeriesLabelPosition,
}

fn panel(
    area: &Panel<'_>,
    scenario: &Scenario,
    title: &str,
    lines: &[Line],
    layout: Layout,
) -> Result<(), Box<dyn Error>> {
    let end = scenario.duration().as_secs_f64();
    let top = lines
        .iter()
        .flat_map(|l| l.3.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56);
    // The same steps on two coordinate types: phases behind the grid, then the lines.
    if layout.log {
        let top = top.max(10.0);
        let mut chart = builder.build_cartesian_2d(0.0..end, (1.0..top).log_scale())?;
        shade_phases(&mut chart, scenario, 1.0, top, layout.phase_names)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        draw_lines(&mut chart, lines, layout.legend.clone())?;
    } else {
        let mut chart = builder.build_cartesian_2d(0.0..end, 0.0..top)?;
        shade_phases(&mut chart, scenario, 0.0, top, layout.phase_names)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        draw_lines(&mut chart, lines, layout.legend)?;
    }
    Ok(())
}

/// Every other phase shaded, each named at the top.
fn shade_phases<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    scenario: &Scenario,
    bottom: f64,
    top: f64,
    names: bool,
) -> Result<(), Box<dyn Error>>
where
    Y: Ranged<ValueType = f64>,
{
    for (i, phase) in scenario.phases.iter().enumerate() {
        let (x0, x1) = (phase.start.as_secs_f64(), phase.end.as_secs_f64());
        if i % 2 == 1 {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, bottom), (x1, top)],
                SHADE.filled(),
            )))?;
        }
        if !names {
            continue;
        }
        chart.draw_series(std::iter::once(Text::new(
            phase.name.to_string(),
            (x0 + (x1 - x0) * 0.04, top / 1.02),
            ("sans-serif", 13).into_font().color(&RGBColor(90, 90, 90)),
        )))?;
    }
    Ok(())
}

fn draw_lines<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> Result<(), Box<dyn Error>>
where
    Y: Ranged<ValueType = f64>,
{
    for (name, color, dashed, points) in lines {
        let style = color.stroke_width(2);
        let drawn = if *dashed {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(points.iter().copied(), style))?
        };
        let color = *color;
        drawn.label(*name).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}
