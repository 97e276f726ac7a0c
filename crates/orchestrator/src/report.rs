//! The backtest report: [`write_report`] writes, into one directory,
//!
//! * `report.md` — the summary, the breakdowns and the trade list as
//!   Markdown tables, linking the two charts;
//! * `report.html` — the same tables with both charts inlined as SVG, one
//!   self-contained file (no script, stylesheet or image fetched from
//!   anywhere);
//! * `equity.svg` — net liquidation at each session close, with the
//!   starting equity as a grey line;
//! * `drawdown.svg` — the drawdown from the running peak, in percent.
//!
//! Every number comes from the [`Summary`] passed in (computed by
//! [`summarize`](crate::metrics::summarize)), never recomputed here: money
//! is shown to the cent (`-$1,234.56`), fractions as percentages with two
//! decimals (`58.33%`), ratios with two decimals, undefined values as
//! `n/a`. Nothing is read from the clock or the environment: the period,
//! seed, configuration and generation time come in [`ReportMeta`], so the
//! same inputs give byte-identical files.
//!
//! Charts are drawn with `plotters`' SVG backend without a font library:
//! labels are SVG `<text>` in the viewer's sans-serif font.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, NaiveDate, Utc};
use core_domain::{Money, Trade, TradeStatus};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::metrics::{Bucket, EquityPoint, Summary, drawdown_curve};

/// File name of the Markdown report.
pub const MARKDOWN_FILE: &str = "report.md";
/// File name of the self-contained HTML report.
pub const HTML_FILE: &str = "report.html";
/// File name of the equity chart.
pub const EQUITY_SVG_FILE: &str = "equity.svg";
/// File name of the drawdown chart.
pub const DRAWDOWN_SVG_FILE: &str = "drawdown.svg";

/// Chart size in pixels.
const CHART_SIZE: (u32, u32) = (900, 320);

/// What the report says about how it was made; passed in, never read from
/// the clock or the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    /// First session of the period.
    pub period_from: NaiveDate,
    /// Last session of the period.
    pub period_to: NaiveDate,
    /// Seed of the simulated market, if any.
    pub seed: Option<u64>,
    /// The configuration file used, if any.
    pub config_path: Option<PathBuf>,
    /// A hash of the effective configuration (e.g. `sha256:…`), if any.
    pub config_hash: Option<String>,
    /// When the report was generated.
    pub generated_at: DateTime<Utc>,
    /// What the reader must know about the data (e.g. survivorship bias),
    /// one line each, shown under the period.
    pub caveats: Vec<String>,
}

/// Where [`write_report`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `equity.svg`.
    pub equity_svg: PathBuf,
    /// `drawdown.svg`.
    pub drawdown_svg: PathBuf,
}

impl ReportPaths {
    /// The report's file paths inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        ReportPaths {
            markdown: dir.join(MARKDOWN_FILE),
            html: dir.join(HTML_FILE),
            equity_svg: dir.join(EQUITY_SVG_FILE),
            drawdown_svg: dir.join(DRAWDOWN_SVG_FILE),
        }
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report directory could not be created.
    #[error(
        "cannot create the report directory {}: {source}; check the path and that this user may write there, or choose another directory",
        dir.display()
    )]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A report file could not be written.
    #[error(
        "cannot write the report file {}: {source}; check free disk space and the permissions of the report directory",
        path.display()
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A chart could not be drawn.
    #[error(
        "cannot draw the chart {}: {reason}; this is a bug in the report writer, please report it with the backtest's configuration and seed",
        path.display()
    )]
    Chart {
        /// The chart's file.
        path: PathBuf,
        /// What plotters said.
        reason: String,
    },
}

/// Writes `report.md`, `report.html`, `equity.svg` and `drawdown.svg` into
/// `dir` (created if missing; existing files are replaced) and returns
/// their paths. `summary` must be the summary of `trades` and `equity`;
/// the trade list is shown in the order given.
pub fn write_report(
    dir: &Path,
    title: &str,
    summary: &Summary,
    equity: &[EquityPoint],
    trades: &[Trade],
    meta: &ReportMeta,
) -> Result<ReportPaths, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let paths = ReportPaths::in_dir(dir);
    let equity_svg =
        equity_chart(equity, summary.starting_equity).map_err(|reason| ReportError::Chart {
            path: paths.equity_svg.clone(),
            reason,
        })?;
    let drawdown_svg =
        drawdown_chart(&drawdown_curve(summary.starting_equity, equity)).map_err(|reason| {
            ReportError::Chart {
                path: paths.drawdown_svg.clone(),
                reason,
            }
        })?;
    let tables = tables(summary, trades);
    let markdown = render_markdown(title, meta, &tables);
    let html = render_html(title, meta, &tables, &equity_svg, &drawdown_svg);
    write_file(&paths.equity_svg, &equity_svg)?;
    write_file(&paths.drawdown_svg, &drawdown_svg)?;
    write_file(&paths.markdown, &markdown)?;
    write_file(&paths.html, &html)?;
    Ok(paths)
}

fn write_file(path: &Path, contents: &str) -> Result<(), ReportError> {
    fs::write(path, contents).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------- formatting

/// Money to the cent with thousands separators: `-$1,234.56`.
pub fn fmt_money(m: Money) -> String {
    let sign = if m.is_negative() { "-" } else { "" };
    let abs = m.cents().unsigned_abs();
    format!("{sign}${}.{:02}", group_thousands(abs / 100), abs % 100)
}

/// A fraction as a percentage with two decimals (`0.58333` → `58.33%`);
/// `n/a` when undefined.
pub fn fmt_pct(x: Option<f64>) -> String {
    match x {
        Some(x) => format!("{}%", fixed2(x * 100.0)),
        None => NA.to_string(),
    }
}

/// A ratio with two decimals; `n/a` when undefined.
pub fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or_else(|| NA.to_string(), fixed2)
}

const NA: &str = "n/a";
const DASH: &str = "—";

/// Two decimals, without a `-0.00`.
fn fixed2(x: f64) -> String {
    let s = format!("{x:.2}");
    if s == "-0.00" { "0.00".to_string() } else { s }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt_date(d: Option<NaiveDate>, none: &str) -> String {
    d.map_or_else(|| none.to_string(), |d| d.to_string())
}

// -------------------------------------------------------------------- tables

/// A titled table, rendered both as Markdown and as HTML.
struct Table {
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

fn tables(s: &Summary, trades: &[Trade]) -> Vec<Table> {
    let dd = &s.max_drawdown;
    let rf = s
        .risk_free_rate
        .map_or_else(|| NA.to_string(), |r| fmt_pct(Some(r)));
    let summary_rows: Vec<(&str, String)> = vec![
        ("Closed trades", s.closed_trades.to_string()),
        ("Open trades", s.open_trades.to_string()),
        ("Wins", s.wins.to_string()),
        ("Losses", s.losses.to_string()),
        ("Win rate", fmt_pct(s.win_rate)),
        ("Average ROI per trade", fmt_pct(s.avg_roi)),
        ("Average profit (of premium)", fmt_pct(s.avg_profit_pct)),
        ("Average days held", fmt_ratio(s.avg_days_held)),
        ("Total P&L", fmt_money(s.total_pnl)),
        ("Gross profit", fmt_money(s.gross_profit)),
        ("Gross loss", fmt_money(s.gross_loss)),
        ("Profit factor", fmt_ratio(s.profit_factor)),
        ("Commissions", fmt_money(s.total_commissions)),
        ("Starting equity", fmt_money(s.starting_equity)),
        (
            "Final equity",
            s.final_equity.map_or_else(|| NA.to_string(), fmt_money),
        ),
        ("Total return", fmt_pct(s.total_return)),
        ("CAGR", fmt_pct(s.cagr)),
        ("Sessions", s.sessions.to_string()),
        ("First session", opt_date(s.first_date, NA)),
        ("Last session", opt_date(s.last_date, NA)),
        ("Risk-free rate", rf),
        ("Annualized volatility", fmt_pct(s.annualized_volatility)),
        ("Sharpe ratio", fmt_ratio(s.sharpe)),
        ("Sortino ratio", fmt_ratio(s.sortino)),
        ("Max drawdown", fmt_pct(Some(dd.fraction))),
        ("Max drawdown amount", fmt_money(dd.amount)),
        (
            "Drawdown peak",
            match (dd.trough_date, dd.peak_date) {
                (None, _) => DASH.to_string(),
                (Some(_), None) => "start".to_string(),
                (Some(_), Some(d)) => d.to_string(),
            },
        ),
        ("Drawdown trough", opt_date(dd.trough_date, DASH)),
        (
            "Recovered",
            match dd.trough_date {
                None => DASH.to_string(),
                Some(_) => opt_date(dd.recovery_date, "not recovered"),
            },
        ),
        ("Exposure (sessions with a position)", fmt_pct(s.exposure)),
        (
            "Average margin utilization",
            fmt_pct(s.avg_margin_utilization),
        ),
    ];
    let mut out = vec![Table {
        title: "Summary",
        headers: vec!["Metric", "Value"],
        rows: summary_rows
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v])
            .collect(),
    }];
    for (title, first, buckets) in [
        ("By exit reason", "Exit reason", &s.by_exit_reason),
        ("By sector", "Sector", &s.by_sector),
        ("By OTM % at entry", "OTM", &s.by_otm),
        ("By days to expiry at entry", "DTE", &s.by_dte),
    ] {
        out.push(bucket_table(title, first, buckets));
    }
    out.push(Table {
        title: "Trades",
        headers: vec![
            "Trade",
            "Symbol",
            "Sector",
            "Entry",
            "Expiry",
            "Strike",
            "Contracts",
            "Premium",
            "OTM",
            "DTE",
            "Exit",
            "Reason",
            "Exit premium",
            "Days",
            "P&L",
            "ROI",
            "Status",
        ],
        rows: trades.iter().map(trade_row).collect(),
    });
    out
}

fn bucket_table(title: &'static str, first: &'static str, buckets: &[Bucket]) -> Table {
    Table {
        title,
        headers: vec![first, "Trades", "Wins", "Win rate", "Mean ROI", "Total P&L"],
        rows: buckets
            .iter()
            .map(|b| {
                vec![
                    b.label.clone(),
                    b.count.to_string(),
                    b.wins.to_string(),
                    fmt_pct(b.win_rate),
                    fmt_pct(b.mean_roi),
                    fmt_money(b.total_pnl),
                ]
            })
            .collect(),
    }
}

fn trade_row(t: &Trade) -> Vec<String> {
    let dash = || DASH.to_string();
    vec![
        t.trade_id.clone(),
        t.symbol.to_string(),
        t.sector.clone().unwrap_or_else(dash),
        t.entry_date.to_string(),
        t.expiration.to_string(),
        t.strike.to_string(),
        t.contracts.to_string(),
        t.entry_premium.to_string(),
        fmt_pct(Some(t.otm_pct).filter(|x| x.is_finite())),
        t.dte.to_string(),
        t.exit_date.map_or_else(dash, |d| d.to_string()),
        t.exit_reason.map_or_else(dash, |r| r.as_str().to_string()),
        t.exit_premium.map_or_else(dash, |p| p.to_string()),
        t.days_held.map_or_else(dash, |d| d.to_string()),
        t.profit_loss.map_or_else(dash, fmt_money),
        t.roi
            .filter(|x| x.is_finite())
            .map_or_else(dash, |r| fmt_pct(Some(r))),
        match t.status {
            TradeStatus::Open => "open",
            TradeStatus::Closed => "closed",
        }
        .to_string(),
    ]
}

/// How each metric is defined (shown under the tables; the module
/// documentation of [`metrics`](crate::metrics) has the full text).
const DEFINITIONS: &[(&str, &str)] = &[
    (
        "Win rate",
        "closed trades with P&L > 0 ÷ closed trades (break-even is not a win).",
    ),
    (
        "ROI, profit",
        "mean of each closed trade's P&L ÷ margin at entry, and P&L ÷ premium received.",
    ),
    (
        "Total P&L",
        "exact sum of every closed trade's P&L, net of commissions.",
    ),
    (
        "Total return, CAGR",
        "final ÷ starting equity − 1; compounded over the calendar days between the first and last session ÷ 365.25.",
    ),
    (
        "Sharpe, Sortino, volatility",
        "from the return of each session close over the previous one (the first over the starting equity), excess over the risk-free rate ÷ 252; mean ÷ sample standard deviation, and mean ÷ downside deviation √(Σ min(e, 0)² ÷ n), annualised × √252.",
    ),
    (
        "Max drawdown",
        "largest (running peak − equity) ÷ running peak, the starting equity included, capped at 100%; its amount in money at that point.",
    ),
    (
        "Exposure",
        "share of sessions closing with at least one open position; average margin utilization: initial margin ÷ net liquidation averaged over the sessions.",
    ),
    (
        "Breakdowns",
        "closed trades only; OTM % and days to expiry at entry, lower bounds inclusive.",
    ),
];

// ------------------------------------------------------------------ markdown

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn meta_lines(meta: &ReportMeta) -> Vec<(&'static str, String)> {
    vec![
        (
            "Period",
            format!("{} to {}", meta.period_from, meta.period_to),
        ),
        (
            "Seed",
            meta.seed
                .map_or_else(|| DASH.to_string(), |s| s.to_string()),
        ),
        (
            "Configuration",
            match (&meta.config_path, &meta.config_hash) {
                (Some(p), Some(h)) => format!("{} ({h})", p.display()),
                (Some(p), None) => p.display().to_string(),
                (None, Some(h)) => format!("defaults ({h})"),
                (None, None) => DASH.to_string(),
            },
        ),
        (
            "Generated",
            meta.generated_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
    ]
    .into_iter()
    .chain(meta.caveats.iter().map(|c| ("Caveat", c.clone())))
    .collect()
}

fn render_markdown(title: &str, meta: &ReportMeta, tables: &[Table]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", title.replace(['\r', '\n'], " "));
    for (k, v) in meta_lines(meta) {
        let _ = writeln!(md, "- **{k}:** {}", md_cell(&v));
    }
    md.push('\n');
    for (i, table) in tables.iter().enumerate() {
        let _ = writeln!(md, "## {}\n", table.title);
        md_table(&mut md, table);
        if i == 0 {
            let _ = writeln!(md, "## Charts\n");
            let _ = writeln!(md, "![Equity]({EQUITY_SVG_FILE})\n");
            let _ = writeln!(md, "![Drawdown]({DRAWDOWN_SVG_FILE})\n");
        }
    }
    let _ = writeln!(md, "## Definitions\n");
    for (k, v) in DEFINITIONS {
        let _ = writeln!(md, "- **{k}:** {v}");
    }
    md
}

fn md_table(md: &mut String, table: &Table) {
    let _ = writeln!(md, "| {} |", table.headers.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(table.headers.len()));
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if table.rows.is_empty() {
        let _ = writeln!(md, "\n_none_");
    }
    md.push('\n');
}

// ---------------------------------------------------------------------- html

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `<svg>` element of an SVG document (without an XML declaration).
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

const CSS: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:2px 8px}\
th{background:#f0f0f0}td{text-align:right}td:first-child{text-align:left}\
figure{margin:0 0 1em 0}.meta{color:#555}";

fn render_html(
    title: &str,
    meta: &ReportMeta,
    tables: &[Table],
    equity_svg: &str,
    drawdown_svg: &str,
) -> String {
    let t = html_escape(title);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n<ul class=\"meta\">\n"
    );
    for (k, v) in meta_lines(meta) {
        let _ = writeln!(h, "<li><b>{k}:</b> {}</li>", html_escape(&v));
    }
    h.push_str("</ul>\n");
    for (i, table) in tables.iter().enumerate() {
        let _ = writeln!(h, "<h2>{}</h2>", html_escape(table.title));
        html_table(&mut h, table);
        if i == 0 {
            let _ = writeln!(
                h,
                "<h2>Charts</h2>\n<figure>{}</figure>\n<figure>{}</figure>",
                inline_svg(equity_svg),
                inline_svg(drawdown_svg)
            );
        }
    }
    h.push_str("<h2>Definitions</h2>\n<ul>\n");
    for (k, v) in DEFINITIONS {
        let _ = writeln!(h, "<li><b>{}:</b> {}</li>", html_escape(k), html_escape(v));
    }
    h.push_str("</ul>\n</body>\n</html>\n");
    h
}

fn html_table(h: &mut String, table: &Table) {
    if table.rows.is_empty() {
        h.push_str("<p><i>none</i></p>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr>");
    for head in &table.headers {
        let _ = write!(h, "<th>{}</th>", html_escape(head));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{}</td>", html_escape(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

// -------------------------------------------------------------------- charts

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws into an SVG string with `draw`, which gets the whole canvas.
fn svg_chart(draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A caption saying there is nothing to draw.
fn no_data(root: &Area<'_>, what: &str) -> Result<(), String> {
    root.draw(&Text::new(
        format!("{what}: no session recorded"),
        (20, 30),
        ("sans-serif", 18).into_font(),
    ))
    .map_err(|e| e.to_string())
}

/// A date range at least two days wide (plotters needs a non-empty one).
fn date_range(first: NaiveDate, last: NaiveDate) -> std::ops::Range<NaiveDate> {
    if last > first {
        first..last
    } else {
        first.checked_sub_days(Days::new(1)).unwrap_or(first)
            ..last.checked_add_days(Days::new(1)).unwrap_or(last)
    }
}

/// `lo..hi` padded by 5% (at least 1) on each side.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let pad = ((hi - lo) * 0.05)
        .max(hi.abs().max(lo.abs()) * 0.01)
        .max(1.0);
    (lo - pad)..(hi + pad)
}

fn axis_dollars(v: &f64) -> String {
    let sign = if *v < 0.0 { "-" } else { "" };
    format!("{sign}${}", group_thousands(v.abs().round() as u64))
}

fn axis_date(d: &NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn equity_chart(equity: &[EquityPoint], starting_equity: Money) -> Result<String, String> {
    svg_chart(|root| {
        let (Some(first), Some(last)) = (equity.first(), equity.last()) else {
            return no_data(root, "Equity");
        };
        let start = starting_equity.to_f64();
        let values = || {
            equity
                .iter()
                .map(|p| p.net_liquidation.to_f64())
                .chain(std::iter::once(start))
        };
        let lo = values().fold(f64::INFINITY, f64::min);
        let hi = values().fold(f64::NEG_INFINITY, f64::max);
        let x = date_range(first.date, last.date);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Equity: net liquidation at each session close",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(90)
            .build_cartesian_2d(x.clone(), padded(lo, hi))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&axis_date)
            .y_label_formatter(&axis_dollars)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(x.start, start), (x.end, start)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                equity.iter().map(|p| (p.date, p.net_liquidation.to_f64())),
                RGBColor(31, 94, 170).stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

pub fn drawdown_chart(curve: &[(NaiveDate, f64)]) -> Result<String, String> {
    svg_chart(|root| {
        let (Some(first), Some(last)) = (curve.first(), curve.last()) else {
            return no_data(root, "Drawdown");
        };
        let worst = curve.iter().map(|(_, dd)| *dd).fold(0.0, f64::max) * 100.0;
        let y = -(worst * 1.1).max(1.0)..0.5;
        let mut chart = ChartBuilder::on(root)
            .caption("Drawdown from the running peak, %", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(90)
            .build_cartesian_2d(date_range(first.0, last.0), y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&axis_date)
            .y_label_formatter(&|v: &f64| format!("{}%", fixed2(*v)))
            .draw()
            .map_err(|e| e.to_string())?;
        let red = RGBColor(190, 40, 40);
        chart
            .draw_series(
                AreaSeries::new(
                    curve.iter().map(|(d, dd)| (*d, -dd * 100.0)),
                    0.0,
                    red.mix(0.3),
                )
                .border_style(red.stroke_width(1)),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The summary of a run as text lines (trades, returns, risk, exits, the
/// rule checks against `limits`, the first ten violations): what
/// `trader-cli backtest`, `trader-cli report` and `traderd` print.
pub fn summary_lines(
    s: &Summary,
    rules: &crate::backtest::RuleReport,
    limits: &crate::backtest::RuleLimits,
) -> Vec<String> {
    let reasons: Vec<String> = rules
        .exits_by_reason
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    let mut lines = vec![
        format!(
            "  trades            {} closed, {} open",
            s.closed_trades, s.open_trades
        ),
        format!("  win rate          {}", fmt_pct(s.win_rate)),
        format!("  avg ROI / trade   {}", fmt_pct(s.avg_roi)),
        format!("  total P&L         {}", fmt_money(s.total_pnl)),
        format!("  total return      {}", fmt_pct(s.total_return)),
        format!("  CAGR              {}", fmt_pct(s.cagr)),
        format!(
            "  Sharpe / Sortino  {} / {}",
            fmt_ratio(s.sharpe),
            fmt_ratio(s.sortino)
        ),
        format!(
            "  max drawdown      {}",
            fmt_pct(Some(s.max_drawdown.fraction))
        ),
        format!("  exposure          {}", fmt_pct(s.exposure)),
        format!(
            "  exits             {}",
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            }
        ),
        format!(
            "  risk rules        max open {} (≤ {}), max new/day {} (≤ {}), {} violations",
            rules.max_open_seen,
            limits.max_open,
            rules.max_new_in_a_day,
            limits.max_new_per_day,
            rules.violations.len()
        ),
    ];
    for v in rules.violations.iter().take(10) {
        lines.push(format!("    ! {}: {}", v.rule, v.detail));
    }
    if rules.violations.len() > 10 {
        lines.push(format!("    ... and {} more", rules.violations.len() - 10));
    }
    lines
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::metrics::{MetricsParams, summarize};
    use core_domain::stubs::{date, open_trade};
    use core_domain::{ExitReason, Price, TradeExit};

    fn closed(id: &str, exit_cents: i64, reason: ExitReason, sector: &str) -> Trade {
        let mut t = open_trade();
        t.trade_id = id.into();
        t.sector = Some(sector.into());
        t.close(TradeExit {
            time: DateTime::<Utc>::UNIX_EPOCH,
            date: date(2024, 1, 12),
            exit_premium: Price::from_cents(exit_cents),
            reason,
            commission: Money::from_cents(325),
        })
        .unwrap();
        t
    }

    fn fixture() -> (Vec<Trade>, Vec<EquityPoint>, Summary, ReportMeta) {
        let trades = vec![
            closed(
                "T-1",
                20,
                ExitReason::ProfitTarget,
                "Information Technology",
            ),
            closed("T-2", 120, ExitReason::StopLoss, "Energy | Oil"),
            closed("T-3", 0, ExitReason::ExpiredWorthless, "Energy | Oil"),
            open_trade(),
        ];
        let equity: Vec<EquityPoint> = [100_050i64, 99_700, 98_900, 99_650, 101_234]
            .iter()
            .enumerate()
            .map(|(i, &d)| EquityPoint {
                date: date(2024, 1, 9 + i as u32),
                net_liquidation: Money::from_cents(d * 100 + 56),
                open_positions: i % 2,
                margin_used: Money::from_dollars(7_500),
            })
            .collect();
        let summary = summarize(
            &trades,
            &equity,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        let meta = ReportMeta {
            period_from: date(2024, 1, 9),
            period_to: date(2024, 1, 13),
            seed: Some(42),
            config_path: Some(PathBuf::from("config/trader.toml")),
            config_hash: Some("sha256:0123abcd".into()),
            generated_at: DateTime::<Utc>::UNIX_EPOCH,
            caveats: Vec::new(),
        };
        (trades, equity, summary, meta)
    }

    /// The value column of the summary row `metric` in report.md.
    fn md_value<'a>(md: &'a str, metric: &str) -> &'a str {
        let prefix = format!("| {metric} |");
        let line = md
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row {metric:?} in report.md"));
        line[prefix.len()..].trim_end_matches('|').trim()
    }

    fn parse_money(s: &str) -> Money {
        s.replace(['$', ','], "").parse().unwrap()
    }

    fn parse_pct(s: &str) -> f64 {
        s.strip_suffix('%').unwrap().parse::<f64>().unwrap() / 100.0
    }

    #[test]
    fn test_report_md_numbers_parse_back_to_the_summary() {
        let (trades, equity, summary, meta) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let paths =
            write_report(dir.path(), "Backtest", &summary, &equity, &trades, &meta).unwrap();
        let md = fs::read_to_string(&paths.markdown).unwrap();

        assert_eq!(
            md_value(&md, "Closed trades").parse::<usize>().unwrap(),
            summary.closed_trades
        );
        assert_eq!(md_value(&md, "Open trades"), "1");
        assert_eq!(parse_money(md_value(&md, "Total P&L")), summary.total_pnl);
        // 93.50 − 406.50 + 193.50
        assert_eq!(summary.total_pnl, Money::from_cents(-11_950));
        assert_eq!(md_value(&md, "Total P&L"), "-$119.50");
        assert_eq!(
            parse_money(md_value(&md, "Final equity")),
            summary.final_equity.unwrap()
        );
        assert_eq!(md_value(&md, "Final equity"), "$101,234.56");
        let win_rate = parse_pct(md_value(&md, "Win rate"));
        assert!((win_rate - summary.win_rate.unwrap()).abs() <= 0.00005);
        assert_eq!(md_value(&md, "Win rate"), "66.67%");
        let dd = parse_pct(md_value(&md, "Max drawdown"));
        assert!((dd - summary.max_drawdown.fraction).abs() <= 0.00005);
        assert_eq!(
            parse_money(md_value(&md, "Max drawdown amount")),
            summary.max_drawdown.amount
        );
        assert_eq!(
            md_value(&md, "Sharpe ratio"),
            format!("{:.2}", summary.sharpe.unwrap())
        );
        assert_eq!(md_value(&md, "Drawdown peak"), "2024-01-09");
        // meta is shown as given, the pipe in a sector escaped
        assert!(md.contains("2024-01-09 to 2024-01-13"));
        assert!(md.contains("config/trader.toml (sha256:0123abcd)"));
        assert!(md.contains("1970-01-01 00:00:00 UTC"));
        assert!(md.contains("| Energy \\| Oil | 2 |"));
        assert!(md.contains("![Equity](equity.svg)"));
    }

    #[test]
    fn test_html_is_self_contained_with_inline_charts() {
        let (trades, equity, summary, meta) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let paths = write_report(
            &dir.path().join("nested/run"),
            "A <b>&</b> title",
            &summary,
            &equity,
            &trades,
            &meta,
        )
        .unwrap();
        let html = fs::read_to_string(&paths.html).unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(!html.contains("<?xml"));
        assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<link"));
        assert!(html.contains("<title>A &lt;b&gt;&amp;&lt;/b&gt; title</title>"));
        assert!(html.contains("<td>Total P&amp;L</td><td>-$119.50</td>"));
        assert!(html.contains("Energy | Oil"));
        for svg in [&paths.equity_svg, &paths.drawdown_svg] {
            let text = fs::read_to_string(svg).unwrap();
            assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"));
            assert!(text.contains("<text"), "labels are SVG text");
        }
    }

    #[test]
    fn test_same_inputs_give_identical_files() {
        let (trades, equity, summary, meta) = fixture();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let pa = write_report(a.path(), "X", &summary, &equity, &trades, &meta).unwrap();
        let pb = write_report(b.path(), "X", &summary, &equity, &trades, &meta).unwrap();
        for (x, y) in [
            (pa.markdown, pb.markdown),
            (pa.html, pb.html),
            (pa.equity_svg, pb.equity_svg),
            (pa.drawdown_svg, pb.drawdown_svg),
        ] {
            assert_eq!(fs::read(x).unwrap(), fs::read(y).unwrap());
        }
    }

    #[test]
    fn test_empty_and_single_point_inputs_still_give_a_report() {
        let (_, _, _, meta) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let empty = summarize(
            &[],
            &[],
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        let paths = write_report(dir.path(), "Empty", &empty, &[], &[], &meta).unwrap();
        let md = fs::read_to_string(&paths.markdown).unwrap();
        assert_eq!(md_value(&md, "Closed trades"), "0");
        assert_eq!(md_value(&md, "Win rate"), "n/a");
        assert_eq!(md_value(&md, "Total P&L"), "$0.00");
        assert_eq!(md_value(&md, "Max drawdown"), "0.00%");
        assert_eq!(md_value(&md, "Drawdown peak"), "—");
        assert!(!md.contains("NaN") && !md.contains("inf"));
        let svg = fs::read_to_string(&paths.equity_svg).unwrap();
        assert!(svg.contains("no session recorded"));

        let one = [EquityPoint {
            date: date(2024, 1, 9),
            net_liquidation: Money::from_dollars(100_000),
            open_positions: 0,
            margin_used: Money::ZERO,
        }];
        let s = summarize(
            &[],
            &one,
            Money::from_dollars(100_000),
            &MetricsParams::default(),
        );
        write_report(dir.path(), "One", &s, &one, &[], &meta).unwrap();
    }

    #[test]
    fn test_unwritable_directory_error_names_the_path_and_what_to_do() {
        let (trades, equity, summary, meta) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, "x").unwrap();
        let err = write_report(&file, "X", &summary, &equity, &trades, &meta).unwrap_err();
        assert!(matches!(err, ReportError::CreateDir { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("not-a-dir") && msg.contains("choose another directory"),
            "{msg}"
        );
    }

    #[test]
    fn test_formatting_of_money_and_percentages() {
        assert_eq!(fmt_money(Money::from_cents(-123_456)), "-$1,234.56");
        assert_eq!(fmt_money(Money::from_cents(5)), "$0.05");
        assert_eq!(fmt_money(Money::from_cents(100_000_000)), "$1,000,000.00");
        assert_eq!(fmt_pct(Some(7.0 / 12.0)), "58.33%");
        assert_eq!(fmt_pct(Some(-0.000_000_1)), "0.00%");
        assert_eq!(fmt_pct(None), "n/a");
        assert_eq!(fmt_ratio(Some(1.005_1)), "1.01");
    }
}
