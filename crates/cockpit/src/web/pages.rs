//! Server-rendered HTML pages. Each page is an entry of [`PAGES`] and a
//! render function over the same JSON its `/api/...` route serves, so a
//! new page (e.g. the analyst's reports, once they are stored) is an
//! entry, a view function and a renderer. The overview updates itself by
//! server-sent events (`assets/app.js`); the others render on load.

use std::sync::Arc;

use axum::extract::{ConnectInfo, OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, Need, Shared, authorize, blocking, health_json, status_with_extras};
use crate::views;

/// A page of the dashboard.
pub struct Page {
    pub path: &'static str,
    pub title: &'static str,
}

/// Every page, in the navigation's order.
pub const PAGES: &[Page] = &[
    Page {
        path: "/",
        title: "Overview",
    },
    Page {
        path: "/positions",
        title: "Positions",
    },
    Page {
        path: "/orders",
        title: "Orders",
    },
    Page {
        path: "/fills",
        title: "Fills",
    },
    Page {
        path: "/trades",
        title: "Trades",
    },
    Page {
        path: "/equity",
        title: "Equity",
    },
    Page {
        path: "/decisions",
        title: "Decisions",
    },
    Page {
        path: "/experiments",
        title: "Experiments",
    },
    Page {
        path: "/patterns",
        title: "Patterns",
    },
    Page {
        path: "/learning",
        title: "Learning",
    },
    Page {
        path: "/analyst",
        title: "Analyst",
    },
    Page {
        path: "/audit",
        title: "Audit",
    },
    Page {
        path: "/notifications",
        title: "Notifications",
    },
    Page {
        path: "/health",
        title: "Health",
    },
];

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
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

fn layout(title: &str, active: &str, body: &str) -> Html<String> {
    let nav: String = PAGES
        .iter()
        .map(|p| {
            format!(
                "<a href=\"{}\"{}>{}</a>",
                p.path,
                if p.path == active {
                    " class=\"active\""
                } else {
                    ""
                },
                esc(p.title)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · trader</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
<body><header><strong>trader</strong><nav>{nav}</nav></header><main><h1>{t}</h1>{body}</main>\
<script src=\"/assets/app.js\"></script></body></html>",
        t = esc(title)
    ))
}

/// A cell's text from a JSON value.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.2}"),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

/// A table of `rows` (JSON objects) with `(key, header)` columns; a key
/// may be a path (`pattern.win_rate`).
fn table(id: &str, rows: &[Value], cols: &[(&str, &str)]) -> String {
    let head: String = cols
        .iter()
        .map(|(_, h)| format!("<th>{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|r| {
            let tds: String = cols
                .iter()
                .map(|(k, _)| {
                    let v = k.split('.').fold(r, |v, part| &v[part]);
                    format!("<td>{}</td>", esc(&cell(v)))
                })
                .collect();
            format!("<tr>{tds}</tr>")
        })
        .collect();
    let empty = if rows.is_empty() {
        "<p class=\"empty\">none</p>".to_string()
    } else {
        String::new()
    };
    format!("<table id=\"{id}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{empty}")
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// Query parameters any page may take.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub status: Option<String>,
    pub symbol: Option<String>,
    pub experiment: Option<String>,
    pub limit: Option<i64>,
    pub kind: Option<String>,
    pub all: Option<bool>,
}

/// Every page: authorizes, reads its JSON and renders it.
pub async fn page(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    if let Err(e) = authorize(&s, &headers, peer, Need::Read) {
        if e.0 == StatusCode::UNAUTHORIZED {
            return Redirect::to("/login").into_response();
        }
        return e.into_response();
    }
    let path = uri.path().to_string();
    let title = PAGES
        .iter()
        .find(|p| p.path == path)
        .map_or("trader", |p| p.title);
    match render(&s, &path, q).await {
        Ok(body) => layout(title, &path, &body).into_response(),
        Err(e) => layout(
            title,
            &path,
            &format!("<p class=\"error\">{}</p>", esc(&e.1)),
        )
        .into_response(),
    }
}

async fn render(s: &Shared, path: &str, q: PageQuery) -> Result<String, ApiError> {
    let st = Arc::clone(s);
    Ok(match path {
        "/" => overview(&blocking(s, move |store| status_with_extras(store, &st)).await?),
        "/positions" => {
            let v = blocking(s, views::positions).await?;
            format!(
                "<p>as the engine last saw them: {}</p>{}<h2>At the broker</h2>{}",
                esc(&cell(&v["positions_as_of"])),
                positions_table(&v),
                table(
                    "broker-positions",
                    arr(&v, "broker_positions"),
                    &[
                        ("contract", "contract"),
                        ("quantity", "qty"),
                        ("avg_cost_usd", "avg cost $"),
                        ("mark_usd", "mark $"),
                        ("market_value_usd", "value $"),
                        ("updated_at", "updated")
                    ]
                )
            )
        }
        "/orders" => {
            let v = blocking(s, views::orders).await?;
            table(
                "orders",
                arr(&v, "orders"),
                &[
                    ("order_ref", "order"),
                    ("contract", "contract"),
                    ("side", "side"),
                    ("quantity", "qty"),
                    ("limit_usd", "limit $"),
                    ("purpose", "purpose"),
                    ("status", "status"),
                    ("filled", "filled"),
                    ("created_at", "created"),
                ],
            )
        }
        "/fills" => {
            let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
            let v = blocking(s, move |store| views::fills(store, limit)).await?;
            table(
                "fills",
                arr(&v, "fills"),
                &[
                    ("time", "time"),
                    ("contract", "contract"),
                    ("side", "side"),
                    ("quantity", "qty"),
                    ("price_usd", "price $"),
                    ("commission_usd", "commission $"),
                    ("order_ref", "order"),
                    ("exec_id", "execution"),
                ],
            )
        }
        "/trades" => {
            let tq = views::TradeQuery {
                status: q.status.clone(),
                symbol: q.symbol.clone(),
                experiment: q.experiment.clone(),
                limit: q.limit,
            };
            let v = blocking(s, move |store| views::trades(store, &tq)).await?;
            let sel = |x: &str| {
                if q.status.as_deref() == Some(x) {
                    " selected"
                } else {
                    ""
                }
            };
            format!(
                "<form method=\"get\" action=\"/trades\" class=\"filters\">\
<label>status <select name=\"status\"><option value=\"\">all</option><option value=\"open\"{}>open</option><option value=\"closed\"{}>closed</option></select></label>\
<label>symbol <input name=\"symbol\" value=\"{}\" size=\"6\"></label>\
<label>experiment <input name=\"experiment\" value=\"{}\" size=\"14\"></label>\
<label>limit <input name=\"limit\" value=\"{}\" size=\"5\"></label><button type=\"submit\">filter</button></form>{}",
                sel("open"),
                sel("closed"),
                esc(q.symbol.as_deref().unwrap_or("")),
                esc(q.experiment.as_deref().unwrap_or("")),
                q.limit.unwrap_or(200),
                table(
                    "trades",
                    arr(&v, "trades"),
                    &[
                        ("trade_id", "trade"),
                        ("symbol", "symbol"),
                        ("strike_usd", "strike $"),
                        ("expiration", "expiry"),
                        ("contracts", "qty"),
                        ("entry_time", "entry"),
                        ("entry_premium_usd", "premium $"),
                        ("exit_time", "exit"),
                        ("exit_premium_usd", "paid $"),
                        ("exit_reason", "reason"),
                        ("profit_loss_usd", "P&L $"),
                        ("roi_pct", "ROI %"),
                        ("experiment_arm", "arm")
                    ]
                )
            )
        }
        "/equity" => {
            let v = blocking(s, views::equity).await?;
            format!(
                "<p>One point per session close; starting equity ${}.</p>\
<figure><img src=\"/charts/equity.svg\" alt=\"equity curve\"></figure>\
<figure><img src=\"/charts/drawdown.svg\" alt=\"drawdown curve\"></figure>\
<h2>Maximum drawdown</h2><pre>{}</pre>",
                esc(&cell(&v["starting_equity_usd"])),
                esc(&serde_json::to_string_pretty(&v["max_drawdown"]).unwrap_or_default())
            )
        }
        "/decisions" => {
            let limit = q.limit.unwrap_or(100).clamp(1, 2_000);
            let kind = q.kind.clone();
            let v = blocking(s, move |store| {
                views::decisions(store, limit, kind.as_deref())
            })
            .await?;
            let mut out = format!(
                "<form method=\"get\" action=\"/decisions\" class=\"filters\"><label>kind <input name=\"kind\" value=\"{}\" size=\"14\" placeholder=\"entry, skip, exit, risk_refusal, ...\"></label><label>limit <input name=\"limit\" value=\"{limit}\" size=\"5\"></label><button type=\"submit\">filter</button></form>",
                esc(q.kind.as_deref().unwrap_or(""))
            );
            out.push_str("<div id=\"decisions\">");
            for d in arr(&v, "decisions") {
                out.push_str(&format!(
                    "<details><summary>{} <b>{}</b> {} → {}: {}</summary><ul>",
                    esc(&cell(&d["time"])),
                    esc(&cell(&d["kind"])),
                    esc(&cell(&d["subject"])),
                    esc(&cell(&d["decision"])),
                    esc(&cell(&d["reason"]))
                ));
                for c in d["criteria"].as_array().map_or(&[][..], Vec::as_slice) {
                    let passed = c["passed"].as_bool().unwrap_or(false);
                    out.push_str(&format!(
                        "<li class=\"{}\">[{}] {} = {} (threshold {})</li>",
                        if passed { "pass" } else { "fail" },
                        if passed { "pass" } else { "FAIL" },
                        esc(&cell(&c["name"])),
                        esc(&cell(&c["value"])),
                        esc(&cell(&c["threshold"]))
                    ));
                }
                out.push_str("</ul></details>");
            }
            out.push_str("</div>");
            out
        }
        "/experiments" => {
            let v = blocking(s, views::experiments).await?;
            table(
                "experiments",
                arr(&v, "experiments"),
                &[
                    ("experiment_id", "experiment"),
                    ("parameter_name", "parameter"),
                    ("control_value", "control"),
                    ("test_value", "test"),
                    ("status", "status"),
                    ("control_trades", "control trades"),
                    ("test_trades", "test trades"),
                    ("p_value", "p"),
                    ("decision", "decision"),
                    ("hypothesis", "hypothesis"),
                ],
            )
        }
        "/patterns" => {
            let all = q.all.unwrap_or(false);
            let v = blocking(s, move |store| views::patterns(store, all)).await?;
            format!(
                "<p><a href=\"/patterns?all=true\">all, retired included</a> · <a href=\"/patterns\">active</a></p>{}",
                table(
                    "patterns",
                    arr(&v, "patterns"),
                    &[
                        ("id", "id"),
                        ("pattern.pattern_type", "type"),
                        ("pattern.pattern_name", "pattern"),
                        ("pattern.sample_size", "n"),
                        ("pattern.win_rate", "win rate"),
                        ("pattern.avg_roi", "avg ROI"),
                        ("pattern.p_value", "p"),
                        ("pattern.status", "status")
                    ]
                )
            )
        }
        "/learning" => {
            let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
            let v = blocking(s, move |store| views::learning_history(store, limit)).await?;
            table(
                "learning",
                arr(&v, "learning_history"),
                &[
                    ("event_date", "time"),
                    ("event_type", "event"),
                    ("parameter_changed", "parameter"),
                    ("old_value", "old"),
                    ("new_value", "new"),
                    ("reasoning", "reasoning"),
                ],
            )
        }
        "/analyst" => {
            let limit = q.limit.unwrap_or(50).clamp(1, 1_000);
            let v = blocking(s, move |store| views::analyst_reports(store, limit)).await?;
            let v = serde_json::to_value(v).unwrap_or_default();
            let reports = v.as_array().map_or(&[][..], Vec::as_slice);
            // The newest report in full: its insights and recommendations
            // with the grounding's verdict on each.
            let latest = reports.first().map_or_else(
                || "<p>No report yet: <code>trader-cli analyze --ai</code> writes one, and traderd every week (docs/ANALYST.md).</p>".to_string(),
                |r| {
                    let report = &r["report"];
                    let empty = Vec::new();
                    let insights = report["insights"].as_array().unwrap_or(&empty);
                    let recs = report["recommendations"].as_array().unwrap_or(&empty);
                    format!(
                        "<h2>Latest report</h2><p>{}</p><h3>Insights</h3>{}<h3>Recommendations</h3>{}",
                        esc(report["summary"].as_str().unwrap_or_default()),
                        table(
                            "insights",
                            insights,
                            &[("text", "insight"), ("evidence", "evidence")]
                        ),
                        table(
                            "recommendations",
                            recs,
                            &[
                                ("parameter", "parameter"),
                                ("from", "from"),
                                ("to", "to"),
                                ("status", "status"),
                                ("reason", "reason"),
                                ("rationale", "rationale")
                            ]
                        )
                    )
                },
            );
            format!(
                "{latest}<h2>Reports</h2>{}",
                table(
                    "reports",
                    reports,
                    &[
                        ("id", "id"),
                        ("created_at", "time"),
                        ("trigger", "trigger"),
                        ("source", "source"),
                        ("model", "model"),
                        ("summary", "summary"),
                        ("accepted", "accepted"),
                        ("rejected", "rejected"),
                        ("fallback_reason", "fallback reason")
                    ]
                )
            )
        }
        "/audit" => {
            let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
            let v = blocking(s, move |store| views::audit(store, limit)).await?;
            table(
                "audit",
                arr(&v, "audit"),
                &[
                    ("time", "time"),
                    ("actor", "actor"),
                    ("action", "action"),
                    ("decision", "decision"),
                    ("outcome", "outcome"),
                    ("context", "context"),
                ],
            )
        }
        "/notifications" => {
            let st = Arc::clone(s);
            let attempts = blocking(s, |store| views::notifications(store, 200)).await?;
            let channels =
                serde_json::to_value(st.notifier.as_ref().map(|n| n.status()).unwrap_or_default())
                    .unwrap_or_default();
            let attempts = serde_json::to_value(attempts).unwrap_or_default();
            format!(
                "<h2>Channels</h2>{}<h2>Delivery attempts</h2>{}",
                table(
                    "channels",
                    channels.as_array().map_or(&[][..], Vec::as_slice),
                    &[
                        ("channel", "channel"),
                        ("min_severity", "threshold"),
                        ("delivered", "delivered"),
                        ("failed_attempts", "failed attempts"),
                        ("dead", "dead"),
                        ("last_ok", "last delivered"),
                        ("last_error", "last error")
                    ]
                ),
                table(
                    "attempts",
                    attempts.as_array().map_or(&[][..], Vec::as_slice),
                    &[
                        ("time", "time"),
                        ("channel", "channel"),
                        ("event", "event"),
                        ("severity", "severity"),
                        ("attempt", "attempt"),
                        ("ok", "ok"),
                        ("is_final", "final"),
                        ("detail", "detail")
                    ]
                )
            )
        }
        "/health" => {
            let st = Arc::clone(s);
            let v = blocking(s, move |store| Ok(health_json(store, &st))).await?;
            format!(
                "<p class=\"{}\">{}</p>{}<p>started {}; last cycle {}; broker reconnects {}.</p><p>Also: <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a> · <a href=\"/metrics\">/metrics</a></p>",
                if v["ready"].as_bool() == Some(true) {
                    "ok"
                } else {
                    "bad"
                },
                if v["ready"].as_bool() == Some(true) {
                    "ready"
                } else {
                    "NOT READY"
                },
                table(
                    "checks",
                    arr(&v, "checks"),
                    &[("name", "check"), ("ok", "ok"), ("detail", "detail")]
                ),
                esc(&cell(&v["started"])),
                esc(&cell(&v["last_cycle_wall"])),
                esc(&cell(&v["broker_reconnects"]))
            )
        }
        _ => return Err(ApiError(StatusCode::NOT_FOUND, "no such page".into())),
    })
}

fn positions_table(v: &Value) -> String {
    table(
        "positions",
        arr(v, "positions"),
        &[
            ("trade_id", "trade"),
            ("contract", "contract"),
            ("contracts", "qty"),
            ("dte", "DTE"),
            ("days_held", "held"),
            ("entry_premium_usd", "entry $"),
            ("mark_usd", "mark $"),
            ("unrealized_pnl_usd", "P&L $"),
            ("profit_pct", "of max %"),
            ("delta", "delta"),
            ("theta_per_day_usd", "theta $/day"),
            ("alerts", "alerts"),
        ],
    )
}

fn money(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "–".into(), |x| format!("${x:.2}"))
}

fn overview(v: &Value) -> String {
    let state = v["trading_state"]["state"].as_str().unwrap_or("active");
    let breakers: String = arr(v, "breakers")
        .iter()
        .map(|b| {
            let head = b["headroom"].as_f64().unwrap_or(0.0);
            format!(
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td><meter min=\"0\" max=\"1\" low=\"0.25\" optimum=\"1\" value=\"{head:.3}\"></meter> {:.0}%</td><td>{}</td></tr>",
                if b["tripped"].as_bool() == Some(true) { "tripped" } else { "armed" },
                esc(&cell(&b["name"])),
                if b["tripped"].as_bool() == Some(true) { "TRIPPED" } else { "armed" },
                head * 100.0,
                esc(&cell(&b["explanation"]))
            )
        })
        .collect();
    format!(
        r#"<section id="overview" data-time="{time}">
<div id="state" class="state state-{state}">{state_up}</div>
<p id="state-cause">{cause}</p>
<div class="cards">
<div class="card"><span>net liquidation</span><b id="net-liq">{net}</b></div>
<div class="card"><span>today's P&amp;L</span><b id="today-pnl">{today}</b></div>
<div class="card"><span>margin use</span><b id="margin-use">{margin}</b></div>
<div class="card"><span>open trades</span><b id="open-trades">{open}</b></div>
<div class="card"><span>working orders</span><b id="working-orders">{working}</b></div>
<div class="card"><span>last cycle</span><b id="last-cycle">{last}</b></div>
<div class="card"><span>broker</span><b id="broker">{broker}</b></div>
</div>
<h2>Circuit breakers</h2>
<table id="breakers"><thead><tr><th>breaker</th><th>state</th><th>headroom</th><th>now</th></tr></thead><tbody>{breakers}</tbody></table>
<h2>Open positions <small id="positions-as-of">{as_of}</small></h2>
{positions}
<h2>Pending operator requests</h2><ul id="pending">{pending}</ul>
<section class="controls">
<button id="stop-button" class="red" type="button">EMERGENCY STOP</button>
<button id="resume-button" class="resume" type="button">Resume trading</button>
<p id="control-result" role="status"></p>
</section>
<dialog id="control-dialog">
<form id="control-form" method="dialog">
<h2 id="control-title">Emergency stop</h2>
<p id="control-explain">Halts trading now; the engine cancels every working order at its next cycle. With flatten it also closes every position.</p>
<label>reason <input id="control-reason" name="reason" required size="40"></label>
<label id="flatten-label"><input id="control-flatten" type="checkbox" name="flatten"> flatten: close every position</label>
<label>dashboard token <input id="control-token" type="password" autocomplete="off" required size="30"></label>
<menu><button id="control-cancel" value="cancel" type="button">Cancel</button> <button id="control-confirm" class="red" type="button">Confirm</button></menu>
</form>
</dialog>
</section>"#,
        time = esc(&cell(&v["time"])),
        state = esc(state),
        state_up = esc(&state.to_ascii_uppercase()),
        cause = esc(&cell(&v["trading_state"]["cause"])),
        net = money(&v["account"]["net_liq_usd"]),
        today = money(&v["today_pnl_usd"]),
        margin = v["account"]["margin_utilization_pct"]
            .as_f64()
            .map_or_else(|| "–".into(), |x| format!("{x:.2}%")),
        open = esc(&cell(&v["trades"]["open"])),
        working = esc(&cell(&v["orders_working"])),
        last = esc(&cell(&v["engine"]["last_cycle"])),
        broker = if v["broker_connected"].as_bool() == Some(true) {
            "connected"
        } else {
            "disconnected"
        },
        as_of = esc(&cell(&v["positions_as_of"])),
        positions = positions_table(v),
        pending = arr(v, "pending_requests")
            .iter()
            .map(|p| format!("<li>{}</li>", esc(&cell(p))))
            .collect::<String>(),
    )
}

/// The login form (reads off loopback): the token becomes a session cookie.
pub async fn login_page() -> Html<String> {
    layout(
        "Sign in",
        "",
        "<form method=\"post\" action=\"/login\"><label>dashboard token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label> <button type=\"submit\">sign in</button></form>",
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub token: String,
}

pub async fn login(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = format!("Bearer {}", form.token).parse() {
        headers.insert(header::AUTHORIZATION, v);
    }
    match authorize(&s, &headers, peer, Need::Write) {
        Ok(()) => {
            let value = super::auth::session_value(s.token.as_deref().unwrap_or_default());
            let cookie = format!(
                "{}={value}; HttpOnly; SameSite=Strict; Path=/",
                super::auth::COOKIE
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn chart(
    s: Shared,
    headers: HeaderMap,
    peer: std::net::SocketAddr,
    drawdown: bool,
) -> Response {
    if let Err(e) = authorize(&s, &headers, peer, Need::Read) {
        return e.into_response();
    }
    let svg = blocking(&s, move |store| {
        let (points, start) = views::equity_points(store)?;
        let svg = if drawdown {
            orchestrator::report::drawdown_chart(&orchestrator::metrics::drawdown_curve(
                start, &points,
            ))
        } else {
            orchestrator::report::equity_chart(&points, start)
        };
        svg.map_err(|e| crate::ops::OpsError::Invalid(format!("drawing the chart: {e}")))
    })
    .await;
    match svg {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn equity_svg(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    chart(s, headers, peer, false).await
}

pub async fn drawdown_svg(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    chart(s, headers, peer, true).await
}
