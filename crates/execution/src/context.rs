//! What the executor keeps with each order: [`OrderContext`], written into
//! the order's `context` column with the intent.

use core_domain::{ExitReason, Order, Price, Quote, Trade};
use serde::{Deserialize, Serialize};

/// Everything known when an order was made. Stored as JSON in
/// `orders.context`; read back for slippage, the trade log and repricing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderContext {
    /// The contract's quote when the order was made.
    #[serde(default)]
    pub bid: Option<Price>,
    #[serde(default)]
    pub ask: Option<Price>,
    /// The mid of that quote: the reference for slippage. A replacement
    /// keeps the mid of the first order of its chain.
    #[serde(default)]
    pub mid: Option<Price>,
    #[serde(default)]
    pub underlying_price: Option<Price>,
    /// For an opening order: the trade it opens, as the strategy saw it
    /// (sector, OTM %, DTE, VIX, regime, experiment arm, margin). The
    /// trade logger writes it on the first fill with the fill's premium,
    /// time and contracts.
    #[serde(default)]
    pub entry: Option<Trade>,
    /// For a closing order: why it closes.
    #[serde(default)]
    pub exit_reason: Option<ExitReason>,
    /// The order this one replaces (cancel/replace), if any.
    #[serde(default)]
    pub replaces: Option<String>,
    /// 0 for the first order, k for the k-th replacement.
    #[serde(default)]
    pub attempt: u32,
    /// Set when the executor cancelled the order to replace it.
    #[serde(default)]
    pub replace_requested: bool,
    /// Free-form: the decision id, the strategy's numbers, ...
    #[serde(default)]
    pub note: serde_json::Value,
}

impl OrderContext {
    /// A context holding a quote (bid, ask and their mid).
    pub fn with_quote(quote: &Quote) -> Self {
        OrderContext {
            bid: quote.bid,
            ask: quote.ask,
            mid: quote.mid(),
            ..OrderContext::default()
        }
    }

    /// The context stored with `order`; `{}` or an unreadable context is
    /// the default (the order's other columns still stand).
    pub fn of(order: &Order) -> Self {
        serde_json::from_value(order.context.clone()).unwrap_or_default()
    }

    /// As stored in `orders.context`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }
}
