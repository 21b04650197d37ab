//! The SVG chart: load, outcomes and p99 latency over time, protected (blue) against
//! unprotected (red), with the phases shaded behind. Offered load is plotted by send time,
//! every outcome and the latency by completion time (each panel's title says which), so
//! the unprotected backlog shows when its answers arrive, after the scenario if need be.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Report;
use crate::scenario::{ClientKind, Scenario};
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
            "keel overload demo: {:.0} req/s base, seed {}; client deadlines: {}",
            scenario.rate,
            scenario.seed,
            ClientKind::ALL
                .map(|k| format!(
                    "{} {} ms",
                    k.label(),
                    scenario.model.client_deadline(k).as_millis()
                ))
                .join(", ")
        ),
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((3, 1));
    let (p, u) = (&report.protected.bins, &report.unprotected.bins);
    // The unprotected backlog is answered after the scenario ends: show until the last bin.
    let end = p.len().max(u.len()) as f64 * BIN.as_secs_f64();
    let rate =
        |bins: &[Totals], f: fn(&Totals) -> u64| series(bins, |t| f(t) as f64 / BIN.as_secs_f64());
    let sent = series(&report.protected.sent, |&n| n as f64 / BIN.as_secs_f64());

    let load = [
        ("offered (by send time)", BLACK, Dash::Solid, sent),
        (
            "good, protected",
            PROTECTED,
            Dash::Solid,
            rate(p, |t| t.good),
        ),
        (
            "good, unprotected",
            UNPROTECTED,
            Dash::Solid,
            rate(u, |t| t.good),
        ),
    ];
    let top = Layout {
        end,
        log: false,
        phase_names: true,
        legend: SeriesLabelPosition::MiddleRight,
    };
    panel(
        &panels[0],
        scenario,
        "Requests/s: offered by send time; good (200/404 within the client's deadline) by completion time",
        &load,
        top.clone(),
    )?;

    let outcomes = [
        (
            "429 to the scraper (intended)",
            LIMITED,
            Dash::Solid,
            rate(p, |t| t.intended),
        ),
        ("503 shed", SHED, Dash::Solid, rate(p, |t| t.shed)),
        (
            "503 breaker-rejected",
            REJECTED,
            Dash::Solid,
            rate(p, |t| t.rejected),
        ),
        (
            "errors (500/504), protected",
            PROTECTED,
            Dash::Dashed,
            rate(p, |t| t.errors),
        ),
        (
            "errors (500), unprotected",
            UNPROTECTED,
            Dash::Solid,
            rate(u, |t| t.errors),
        ),
        (
            "late 200/404, protected",
            PROTECTED,
            Dash::Dotted,
            rate(p, |t| t.late),
        ),
        (
            "late 200/404, unprotected",
            UNPROTECTED,
            Dash::Dashed,
            rate(u, |t| t.late),
        ),
    ];
    let below = Layout {
        phase_names: false,
        legend: SeriesLabelPosition::UpperRight,
        ..top
    };
    panel(
        &panels[1],
        scenario,
        "Other outcomes, requests/s by completion time",
        &outcomes,
        below.clone(),
    )?;

    let ms = |bins: &[Totals]| series(bins, |t| (t.p99.as_secs_f64() * 1000.0).max(1.0));
    let latency = [
        ("p99, protected", PROTECTED, Dash::Solid, ms(p)),
        ("p99, unprotected", UNPROTECTED, Dash::Solid, ms(u)),
    ];
    let log = Layout { log: true, ..below };
    panel(
        &panels[2],
        scenario,
        "p99 latency of every answer (ms, log scale), by completion time",
        &latency,
        log,
    )?;
    root.present()?;
    Ok(())
}

/// (time of the bin's middle, value) for every bin.
fn series<T>(bins: &[T], value: impl Fn(&T) -> f64) -> Vec<(f64, f64)> {
    let bin = BIN.as_secs_f64();
    bins.iter()
        .enumerate()
        .map(|(i, t)| ((i as f64 + 0.5) * bin, value(t)))
        .collect()
}

/// How a line is drawn.
#[derive(Clone, Copy)]
enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// Name, colour, dash, points.
type Line = (&'static str, RGBColor, Dash, Vec<(f64, f64)>);

/// Where a panel's legend goes (each where its data leaves room) and what it shows.
#[derive(Clone)]
struct Layout {
    /// The x axis' end, seconds.
    end: f64,
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
    let end = layout.end;
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
    for (name, color, dash, points) in lines {
        let style = color.stroke_width(2);
        let points = points.iter().copied();
        let drawn = match dash {
            Dash::Solid => chart.draw_series(LineSeries::new(points, style))?,
            Dash::Dashed => chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?,
            Dash::Dotted => chart.draw_series(DashedLineSeries::new(points, 2, 3, style))?,
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
