//! PNG plots of one test run, like Jepsen's `rate.png` and `latency-raw.png`: a checker's
//! verdict says *whether* the history is valid, these show *how the cluster behaved*
//! around each fault — throughput dropping to zero during a kill, latencies climbing
//! during a partition, `info` outcomes bunching at a leader change.
//!
//! Both plots share the time axis (seconds since the test started) and shade each nemesis
//! fault from its `start-<fault>` to its `stop-<fault>` (or to the end of the history when
//! it was never stopped), one colour per fault family. Series are keyed by client `f` and
//! outcome: the outcome picks the colour family (ok green, info orange, fail red), the `f`
//! a shade within it and, on the latency plot, the marker shape. The legend sits in a
//! panel to the right so that it never hides data.
//!
//! [`summary`] reads the history once into what the plots show; this module draws it.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use self::summary::{Outcome, SeriesKey, Summary};
use crate::history::History;

mod summary;

/// Width of each PNG, in pixels.
pub const WIDTH: u32 = 1200;
/// Height of each PNG, in pixels.
pub const HEIGHT: u32 = 500;
/// The legend panel on the right of each plot.
const LEGEND_WIDTH: u32 = 230;
const LEGEND_ROW: i32 = 18;
const FONT: &str = "sans-serif";

const fn rgb(hex: u32) -> RGBColor {
    RGBColor((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
}

/// A series' colour: its outcome's colour family, one shade per `f`, most distinct first.
fn series_colour((f, outcome): SeriesKey) -> RGBColor {
    const OK: [u32; 5] = [0x2ca02c, 0x1f77b4, 0x17becf, 0x8c9a1f, 0x6a5acd];
    const INFO: [u32; 4] = [0xff8c00, 0xd4a000, 0xa05a00, 0xffb850];
    const FAIL: [u32; 4] = [0xd62728, 0xc71585, 0x8b0000, 0xff6060];
    let shades: &[u32] = match outcome {
        Outcome::Ok => &OK,
        Outcome::Info => &INFO,
        Outcome::Fail => &FAIL,
    };
    rgb(shades[f % shades.len()])
}

/// Marker shape of a latency point, one per `f`.
#[derive(Debug, Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

impl Marker {
    fn of(f: usize) -> Marker {
        [
            Marker::Circle,
            Marker::Triangle,
            Marker::Square,
            Marker::Cross,
        ][f % 4]
    }
}

/// Colour of a fault family's shading: each of the nemesis's families has its own.
fn fault_colour(name: &str, family: usize) -> RGBColor {
    const OTHERS: [u32; 3] = [0xa0a0a0, 0xa0e9d0, 0xe9c0a0];
    rgb(match name {
        "kill" => 0xe980e0,
        "partition" => 0x80b0f0,
        "pause" => 0xe9d060,
        "clients" => 0xa0a0a0,
        "delay" => 0xa0e9d0,
        "reset" => 0xe9c0a0,
        "membership" => 0x90d070,
        _ => OTHERS[family % OTHERS.len()],
    })
}

const FAULT_ALPHA: f64 = 0.3;

/// Writes `rate.png` and `latency-raw.png` for `history` into `dir`, and returns their
/// paths. Fails (rather than panicking) when no font can be loaded or a file cannot be
/// written; the run's verdict does not depend on the plots.
pub fn write_plots(history: &History, title: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let summary = Summary::of(history);
    let rate = dir.join("rate.png");
    draw_rate(&summary, title, &rate)?;
    let latency = dir.join("latency-raw.png");
    draw_latency(&summary, title, &latency)?;
    Ok(vec![rate, latency])
}

/// Plotters' errors are generic over the backend; the caller only logs the message.
fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

/// A tick label without float noise or a trailing `.0`: `10`, `0.25`, `0.001`.
fn tick(v: &f64) -> String {
    format!("{}", (v * 1e3).round() / 1e3)
}

fn caption(title: &str, what: &str) -> String {
    if title.is_empty() {
        what.to_owned()
    } else {
        format!("{title}: {what}")
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Plane<'a, Y> = DrawingArea<BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>;

/// What both plots share: the canvas, the caption, the axes over the run's time, the fault
/// windows behind the data, and the legend panel; `series` draws the data itself. `y` is
/// the y axis with its bottom and top, which the fault windows span.
fn draw<Y, S>(
    path: &Path,
    summary: &Summary,
    y: (Y, f64, f64),
    legend: Legend,
    series: S,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    S: FnOnce(&Plane<'_, Y::CoordDescType>) -> anyhow::Result<()>,
{
    let (y, y_lo, y_hi) = y;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (plot, panel) = root.split_horizontally((WIDTH - LEGEND_WIDTH) as i32);
    let mut chart = ChartBuilder::on(&plot)
        .caption(&legend.caption, (FONT, 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(summary.x_range(), y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(legend.y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 14))
        .draw()
        .map_err(plot_error)?;
    let area = chart.plotting_area();
    for window in &summary.faults {
        let colour = fault_colour(&summary.families[window.family], window.family);
        let corners = [(window.start, y_lo), (window.stop, y_hi)];
        area.draw(&Rectangle::new(corners, colour.mix(FAULT_ALPHA).filled()))
            .map_err(plot_error)?;
    }
    series(area)?;
    let faults = summary.families.iter().enumerate().map(|(i, name)| {
        (
            format!("fault: {name}"),
            Swatch::Band(fault_colour(name, i)),
        )
    });
    let entries: Vec<_> = legend.entries.into_iter().chain(faults).collect();
    draw_legend(&panel, &entries)?;
    root.present().map_err(plot_error)
}

/// The words around a plot.
struct Legend {
    caption: String,
    y_desc: &'static str,
    entries: Vec<(String, Swatch)>,
}

fn draw_rate(summary: &Summary, title: &str, path: &Path) -> anyhow::Result<()> {
    // One-second buckets, each plotted at its middle.
    let buckets = summary.end.floor() as usize + 1;
    let mut rates: Vec<(SeriesKey, Vec<u32>)> = Vec::new();
    for (&key, times) in &summary.completions {
        let mut counts = vec![0u32; buckets];
        for &t in times {
            counts[(t.floor() as usize).min(buckets - 1)] += 1;
        }
        rates.push((key, counts));
    }
    let peak = rates
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(0);
    let y_top = f64::from(peak.max(1)) * 1.1;
    let legend = Legend {
        caption: caption(title, "rate"),
        y_desc: "completions / s",
        entries: rates
            .iter()
            .map(|&((f, outcome), _)| {
                (
                    summary.label((f, outcome)),
                    Swatch::Line(series_colour((f, outcome))),
                )
            })
            .collect(),
    };
    draw(path, summary, (0.0..y_top, 0.0, y_top), legend, |area| {
        for ((f, outcome), counts) in &rates {
            let points = counts
                .iter()
                .enumerate()
                .map(|(i, &n)| (i as f64 + 0.5, f64::from(n)));
            let line = PathElement::new(
                points.collect::<Vec<_>>(),
                series_colour((*f, *outcome)).stroke_width(2),
            );
            area.draw(&line).map_err(plot_error)?;
        }
        Ok(())
    })
}

fn draw_latency(summary: &Summary, title: &str, path: &Path) -> anyhow::Result<()> {
    let all = summary.latencies.values().flatten().map(|&(_, ms)| ms);
    let lowest = all
        .clone()
        .filter(|&ms| ms > 0.0)
        .fold(f64::INFINITY, f64::min);
    let highest = all.fold(0.0, f64::max);
    // Whole decades, at least one, and never below a microsecond.
    let (lo, hi) = if lowest.is_finite() {
        let lo = 10f64.powf(lowest.max(1e-3).log10().floor());
        (lo, 10f64.powf(highest.log10().ceil()).max(lo * 10.0))
    } else {
        (1.0, 1000.0)
    };
    let legend = Legend {
        caption: caption(title, "latency"),
        y_desc: "latency (ms)",
        entries: summary
            .latencies
            .keys()
            .map(|&(f, outcome)| {
                (
                    summary.label((f, outcome)),
                    Swatch::Marker(Marker::of(f), series_colour((f, outcome))),
                )
            })
            .collect(),
    };
    draw(
        path,
        summary,
        ((lo..hi).log_scale(), lo, hi),
        legend,
        |area| {
            for (&(f, outcome), points) in &summary.latencies {
                let colour = series_colour((f, outcome)).mix(0.7);
                for &(t, ms) in points {
                    draw_marker(area, Marker::of(f), (t, ms.max(lo)), colour, 3)?;
                }
            }
            Ok(())
        },
    )
}

fn draw_marker<CT, C>(
    area: &DrawingArea<BitMapBackend<'_>, CT>,
    marker: Marker,
    at: CT::From,
    colour: C,
    size: i32,
) -> anyhow::Result<()>
where
    CT: CoordTranslate,
    C: Color,
{
    let fill = colour.filled();
    match marker {
        Marker::Circle => area.draw(&Circle::new(at, size, fill)),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, size + 1, fill)),
        Marker::Square => area
            .draw(&(EmptyElement::at(at) + Rectangle::new([(-size, -size), (size, size)], fill))),
        Marker::Cross => area.draw(&Cross::new(at, size, colour.stroke_width(2))),
    }
    .map_err(plot_error)
}

/// What the legend shows beside a label.
enum Swatch {
    Line(RGBColor),
    Marker(Marker, RGBColor),
    Band(RGBColor),
}

fn draw_legend(area: &Area<'_>, entries: &[(String, Swatch)]) -> anyhow::Result<()> {
    let rows = ((HEIGHT as i32 - 60) / LEGEND_ROW).max(1) as usize;
    let shown = if entries.len() > rows {
        rows - 1
    } else {
        entries.len()
    };
    let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 50;
    for (label, swatch) in &entries[..shown] {
        match *swatch {
            Swatch::Line(colour) => area.draw(&PathElement::new(
                vec![(10, y), (34, y)],
                colour.stroke_width(2),
            )),
            Swatch::Band(colour) => area.draw(&Rectangle::new(
                [(10, y - 6), (34, y + 6)],
                colour.mix(FAULT_ALPHA * 2.0).filled(),
            )),
            Swatch::Marker(marker, colour) => {
                draw_marker(area, marker, (22, y), colour, 4)?;
                Ok(())
            }
        }
        .map_err(plot_error)?;
        area.draw(&Text::new(label.clone(), (42, y), style.clone()))
            .map_err(plot_error)?;
        y += LEGEND_ROW;
    }
    if shown < entries.len() {
        let more = format!("… {} more", entries.len() - shown);
        area.draw(&Text::new(more, (42, y), style))
            .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
