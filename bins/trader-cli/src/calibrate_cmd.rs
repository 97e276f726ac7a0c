//! `trader-cli calibrate [--json]`: the modelled surface against the real
//! option data shipped with the project, computed from the data at run
//! time (`market_sim::calibrate`): the 91-day ATM level against the 20
//! stocks' real 3-month IV (anchored surface, calibrated model in-sample
//! and on a held-out half of the stocks, the configured coefficients, the
//! legacy formula) and the index skew against real SPY puts by 5%-OTM
//! bucket on held-out months.

use std::process::ExitCode;

use anyhow::{Context, Result};
use market_sim::calibrate::{
    BucketError, ErrorStats, IV_INPUT_NAMES, fit_index_skew, fit_iv_model,
};
use serde_json::json;

use crate::output::{self, table};

/// Arguments of `trader-cli calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {}

pub fn run(_args: &CalibrateArgs, json: bool, settings: &settings::Settings) -> Result<ExitCode> {
    let params = &settings.broker.sim.chain;
    let history = market_sim::data::real_history().context("loading the shipped history")?;
    let iv = fit_iv_model(history, params).context("calibrating the ATM level")?;
    let skew = fit_index_skew(history, params.max_sd).context("calibrating the index skew")?;
    let stats = |s: &ErrorStats| json!({"n": s.n, "bias_points": s.bias, "rmse_points": s.rmse, "mae_points": s.mae});
    let buckets = |b: &[BucketError]| {
        b.iter()
            .map(|b| json!({"otm_from_pct": b.from_pct, "otm_to_pct": b.from_pct + 5, "error": stats(&b.stats)}))
            .collect::<Vec<_>>()
    };
    if json {
        let names: Vec<&str> = std::iter::once("intercept").chain(IV_INPUT_NAMES).collect();
        output::json(&json!({
            "atm_91d": {
                "target": "real 3-month ATM IV of the 20 stocks, 2010-2022, same session",
                "anchored": stats(&iv.anchored),
                "model_in_sample": stats(&iv.in_sample),
                "model_held_out": stats(&iv.held_out),
                "held_out_symbols": iv.held_out_symbols,
                "configured": stats(&iv.configured),
                "legacy": stats(&iv.legacy),
                "coefficient_names": names,
                "coefficients_fitted": iv.coefficients,
                "coefficients_half_fit": iv.half_coefficients,
                "coefficients_configured": params.iv_coefficients(),
                "by_symbol": iv.by_symbol.iter().map(|(s, m, a)| json!({
                    "symbol": s, "model": stats(m), "anchored": stats(a)
                })).collect::<Vec<_>>(),
            },
            "index_skew": {
                "target": "real SPY put IVs 0-25% OTM, 2010-2016, first trading day of each month",
                "fit_months": skew.fit_months,
                "held_out_months": skew.held_out_months,
                "atm": skew.model.atm,
                "skew": skew.model.skew,
                "smile": skew.model.smile,
                "max_sd": skew.model.max_sd,
                "held_out_45_dte": buckets(&skew.held_out_45),
                "held_out_21_dte": buckets(&skew.held_out_21),
                "in_sample_45_dte": buckets(&skew.in_sample_45),
            }
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let row = |name: &str, s: &ErrorStats| {
        vec![
            name.to_string(),
            s.n.to_string(),
            format!("{:+.2}", s.bias),
            format!("{:.2}", s.rmse),
            format!("{:.2}", s.mae),
        ]
    };
    println!("91-day ATM IV against the real 3-month IV of the 20 stocks (2010-2022), vol points");
    table(
        &["surface", "n", "bias", "rmse", "mae"],
        &[
            row("anchored (previous close's real IV)", &iv.anchored),
            row("calibrated model, in-sample (20 stocks)", &iv.in_sample),
            row(
                &format!(
                    "calibrated model, held out ({})",
                    iv.held_out_symbols.join(" ")
                ),
                &iv.held_out,
            ),
            row("configured coefficients", &iv.configured),
            row("legacy (realized + VIX premium)", &iv.legacy),
        ],
    );
    let coef = |c: &[f64; 5]| {
        c.iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "coefficients (intercept {}): fitted {} | half fit {} | configured {}",
        IV_INPUT_NAMES.join(" "),
        coef(&iv.coefficients),
        coef(&iv.half_coefficients),
        coef(&params.iv_coefficients())
    );
    println!();
    println!("by stock (configured model | anchored), mae in vol points");
    let rows: Vec<Vec<String>> = iv
        .by_symbol
        .iter()
        .map(|(s, m, a)| {
            vec![
                s.clone(),
                format!("{:+.2}", m.bias),
                format!("{:.2}", m.mae),
                format!("{:.2}", a.mae),
            ]
        })
        .collect();
    table(
        &["symbol", "model bias", "model mae", "anchored mae"],
        &rows,
    );
    println!();
    println!(
        "S&P 500 put IV by OTM % (real SPY quotes 2010-2016): fitted on {} months, held out {}",
        skew.fit_months, skew.held_out_months
    );
    let m = &skew.model;
    println!(
        "atm = VIX/100 x ({:.4} {:+.4} ln(T/30d)); skew = {:.4} {:+.4} v {:+.4} k; smile = {:.4} {:+.4} v \
         (v = VIX/20 - 1, k = (SKEW - 130)/10, x saturated at {} sd)",
        m.atm[0], m.atm[1], m.skew[0], m.skew[1], m.skew[2], m.smile[0], m.smile[1], m.max_sd
    );
    let bucket_rows = |label: &str, b: &[BucketError]| -> Vec<Vec<String>> {
        b.iter()
            .map(|b| {
                vec![
                    label.to_string(),
                    format!("{}-{}%", b.from_pct, b.from_pct + 5),
                    b.stats.n.to_string(),
                    format!("{:+.2}", b.stats.bias),
                    format!("{:.2}", b.stats.rmse),
                    format!("{:.2}", b.stats.mae),
                ]
            })
            .collect()
    };
    let mut rows = bucket_rows("held out, ~45 DTE", &skew.held_out_45);
    rows.extend(bucket_rows("held out, ~21 DTE", &skew.held_out_21));
    rows.extend(bucket_rows("in-sample, ~45 DTE", &skew.in_sample_45));
    table(&["months", "otm", "n", "bias", "rmse", "mae"], &rows);
    Ok(ExitCode::SUCCESS)
}
