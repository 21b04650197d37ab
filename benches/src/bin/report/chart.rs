//! The report's one chart: keel against the best peer per row, as horizontal bars on a log
//! scale from 1× (right and green: keel is better; left and red: keel is behind).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const CLIP: (f64, f64) = (0.05, 50.0);
const AHEAD: RGBColor = RGBColor(44, 160, 44);
const BEHIND: RGBColor = RGBColor(214, 39, 40);

pub(crate) fn write(path: &Path, bars: &[(String, f64)]) -> Result<(), Box<dyn Error>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let n = bars.len().max(1);
    let height = 90 + 20 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "keel / best peer (peer time / keel time; log scale)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(430)
        .build_cartesian_2d((CLIP.0..CLIP.1).log_scale(), 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|x| format!("{x}×"))
        .draw()?;
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let end = ratio.clamp(CLIP.0, CLIP.1);
        let color = if *ratio >= 1.0 { AHEAD } else { BEHIND };
        chart.draw_series([Rectangle::new(
            [(1.0, y + 0.15), (end, y + 0.85)],
            color.filled(),
        )])?;
        let at = chart.backend_coord(&(CLIP.0, y + 0.5));
        let style = ("sans-serif", 12).into_font().into_text_style(&root);
        let anchor = style.pos(Pos::new(HPos::Right, VPos::Center));
        root.draw_text(&format!("{label}  {ratio:.2}×"), &anchor, (at.0 - 8, at.1))?;
    }
    chart.draw_series(LineSeries::new(
        [(1.0, 0.0), (1.0, n as f64)],
        BLACK.stroke_width(1),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_an_svg_with_one_bar_per_row() {
        let path = std::env::temp_dir().join(format!("keel-ratios-{}.svg", std::process::id()));
        let bars = [
            ("cache: get-hit".to_owned(), 0.5),
            ("breaker: allow".to_owned(), 200.0),
        ];
        super::write(&path, &bars).expect("chart");
        let svg = std::fs::read_to_string(&path).expect("svg");
        std::fs::remove_file(&path).expect("cleanup");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("cache: get-hit  0.50×"));
        assert!(svg.contains("breaker: allow  200.00×"));
    }
}
