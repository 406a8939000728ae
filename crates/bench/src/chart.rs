//! The rows as an SVG chart: one panel per row, a bar per handler at its median with a
//! whisker from min to max, and the median written above the bar.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::report::Row;

const UNDERTAKER_COLOR: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
const RUNC_COLOR: RGBColor = RGBColor(0xa0, 0xa0, 0xa0);

/// Panels per line of the chart.
const COLUMNS: usize = 4;
const PANEL_SIZE: (u32, u32) = (360, 300);
const TITLE_HEIGHT: u32 = 50;

/// Draws `rows` into an SVG at `path`, `title` on top.
pub fn write_svg(rows: &[Row], title: &str, path: &Path) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let lines = rows.len().div_ceil(COLUMNS);
    let size = (
        PANEL_SIZE.0 * COLUMNS as u32,
        PANEL_SIZE.1 * lines as u32 + TITLE_HEIGHT,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (header, body) = root.split_vertically(TITLE_HEIGHT);
    header
        .draw_text(
            title,
            &("sans-serif", 18).into_font().color(&BLACK),
            (12, 16),
        )
        .map_err(plot_error)?;
    for (panel, row) in body.split_evenly((lines, COLUMNS)).iter().zip(rows) {
        draw_panel(panel, row)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    row: &Row,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let sides = [
        ("undertaker", &row.undertaker.summary, UNDERTAKER_COLOR),
        ("runc", &row.runc.summary, RUNC_COLOR),
    ];
    let highest = sides
        .iter()
        .map(|(_, summary, _)| summary.max)
        .fold(0.0, f64::max);
    // `a..b` segmented has a segment for each of a..=b.
    // Room above the tallest whisker for the value labels; a flat 1 when everything is 0.
    let top = if highest > 0.0 { highest * 1.25 } else { 1.0 };
    // Growth rows (churn) can shrink: room below 0 for a negative bar.
    let lowest = sides
        .iter()
        .map(|(_, summary, _)| summary.min)
        .fold(0.0, f64::min);
    let bottom = lowest * 1.25;
    let caption = format!("{} (ratio {})", row.title, row.format_ratio());
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d((0..sides.len() as i32 - 1).into_segmented(), bottom..top)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(row.unit.symbol())
        .y_labels(6)
        .y_label_formatter(&|value| row.unit.format(*value))
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(index) => sides
                .get(*index as usize)
                .map_or(String::new(), |(name, _, _)| name.to_string()),
            _ => String::new(),
        })
        .draw()
        .map_err(plot_error)?;
    for (index, (_, summary, color)) in sides.iter().enumerate() {
        let index = index as i32;
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(index), 0.0),
                (SegmentValue::Exact(index + 1), summary.median),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 24, 24);
        chart.draw_series([bar]).map_err(plot_error)?;
        chart
            .draw_series([ErrorBar::new_vertical(
                SegmentValue::CenterOf(index),
                summary.min,
                summary.median,
                summary.max,
                BLACK.stroke_width(1),
                10,
            )])
            .map_err(plot_error)?;
        let label = row.format_value(summary.median);
        chart
            .draw_series([
                EmptyElement::at((SegmentValue::CenterOf(index), summary.max))
                    + Text::new(
                        label.clone(),
                        (-(label.len() as i32) * 3, -16),
                        ("sans-serif", 12).into_font(),
                    ),
            ])
            .map_err(plot_error)?;
    }
    Ok(())
}

fn plot_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow!("drawing the chart: {error}")
}
