//! The protobuf messages the gateway reads and writes: only the fields it
//! uses, with the tags of IB's TWS API schema (server versions 213+).
//!
//! Written for this crate (derive `prost::Message`, no code generation);
//! a field the gateway does not need is simply absent, which protobuf
//! decoding skips and encoding never sends.

use prost::Message;

// ---- shared sub-messages ----

/// A contract (stock or option) as the wire carries it.
#[derive(Clone, PartialEq, Message)]
pub struct WireContract {
    #[prost(int32, optional, tag = "1")]
    pub con_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub symbol: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub sec_type: Option<String>,
    /// `YYYYMMDD` for an option.
    #[prost(string, optional, tag = "4")]
    pub expiry: Option<String>,
    #[prost(double, optional, tag = "5")]
    pub strike: Option<f64>,
    /// `P` or `C`.
    #[prost(string, optional, tag = "6")]
    pub right: Option<String>,
    #[prost(double, optional, tag = "7")]
    pub multiplier: Option<f64>,
    #[prost(string, optional, tag = "8")]
    pub exchange: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub primary_exchange: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub currency: Option<String>,
    #[prost(string, optional, tag = "11")]
    pub local_symbol: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub trading_class: Option<String>,
}

/// The order fields the gateway reads from a placeOrder and echoes in an
/// OpenOrder.
#[derive(Clone, PartialEq, Message)]
pub struct WireOrder {
    #[prost(int32, optional, tag = "1")]
    pub client_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub order_id: Option<i32>,
    #[prost(int64, optional, tag = "3")]
    pub perm_id: Option<i64>,
    /// `BUY` or `SELL`.
    #[prost(string, optional, tag = "5")]
    pub action: Option<String>,
    /// A decimal string.
    #[prost(string, optional, tag = "6")]
    pub total_quantity: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub order_type: Option<String>,
    #[prost(double, optional, tag = "9")]
    pub limit_price: Option<f64>,
    #[prost(string, optional, tag = "11")]
    pub tif: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub account: Option<String>,
    #[prost(string, optional, tag = "28")]
    pub order_ref: Option<String>,
    #[prost(bool, optional, tag = "65")]
    pub what_if: Option<bool>,
    #[prost(bool, optional, tag = "66")]
    pub transmit: Option<bool>,
    #[prost(string, optional, tag = "115")]
    pub filled_quantity: Option<String>,
}

/// An order's state in an OpenOrder; the margin fields answer a what-if.
#[derive(Clone, PartialEq, Message)]
pub struct WireOrderState {
    #[prost(string, optional, tag = "1")]
    pub status: Option<String>,
    #[prost(double, optional, tag = "2")]
    pub init_margin_before: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub maint_margin_before: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub equity_with_loan_before: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub init_margin_change: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub maint_margin_change: Option<f64>,
    #[prost(double, optional, tag = "7")]
    pub equity_with_loan_change: Option<f64>,
    #[prost(double, optional, tag = "8")]
    pub init_margin_after: Option<f64>,
    #[prost(double, optional, tag = "9")]
    pub maint_margin_after: Option<f64>,
    #[prost(double, optional, tag = "10")]
    pub equity_with_loan_after: Option<f64>,
    #[prost(double, optional, tag = "11")]
    pub commission: Option<f64>,
    #[prost(string, optional, tag = "14")]
    pub commission_currency: Option<String>,
    #[prost(string, optional, tag = "15")]
    pub margin_currency: Option<String>,
    #[prost(string, optional, tag = "26")]
    pub reject_reason: Option<String>,
}

/// One execution.
#[derive(Clone, PartialEq, Message)]
pub struct WireExecution {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub exec_id: Option<String>,
    /// `YYYYMMDD HH:MM:SS <zone>`.
    #[prost(string, optional, tag = "3")]
    pub time: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub account: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub exchange: Option<String>,
    /// `BOT` or `SLD`.
    #[prost(string, optional, tag = "6")]
    pub side: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub shares: Option<String>,
    #[prost(double, optional, tag = "8")]
    pub price: Option<f64>,
    #[prost(int64, optional, tag = "9")]
    pub perm_id: Option<i64>,
    #[prost(int32, optional, tag = "10")]
    pub client_id: Option<i32>,
    #[prost(string, optional, tag = "12")]
    pub cum_qty: Option<String>,
    #[prost(double, optional, tag = "13")]
    pub avg_price: Option<f64>,
    #[prost(string, optional, tag = "14")]
    pub order_ref: Option<String>,
}

/// The filter of a reqExecutions.
#[derive(Clone, PartialEq, Message)]
pub struct WireExecutionFilter {
    #[prost(int32, optional, tag = "1")]
    pub client_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub account: Option<String>,
    /// `YYYYMMDD HH:MM:SS [zone]` or `YYYYMMDD-HH:MM:SS`: executions at or after.
    #[prost(string, optional, tag = "3")]
    pub time: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub symbol: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub sec_type: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub exchange: Option<String>,
    /// `BUY` or `SELL`.
    #[prost(string, optional, tag = "7")]
    pub side: Option<String>,
}

/// The details of a contract (a few fields).
#[derive(Clone, PartialEq, Message)]
pub struct WireContractDetails {
    #[prost(string, optional, tag = "1")]
    pub market_name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub min_tick: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub order_types: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub valid_exchanges: Option<String>,
    #[prost(int32, optional, tag = "6")]
    pub under_con_id: Option<i32>,
    #[prost(string, optional, tag = "7")]
    pub long_name: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub contract_month: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub industry: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub time_zone_id: Option<String>,
    #[prost(string, optional, tag = "19")]
    pub under_symbol: Option<String>,
    #[prost(string, optional, tag = "20")]
    pub under_sec_type: Option<String>,
    #[prost(string, optional, tag = "22")]
    pub real_expiration_date: Option<String>,
}

/// One daily bar.
#[derive(Clone, PartialEq, Message)]
pub struct WireBar {
    /// `YYYYMMDD` for a daily bar.
    #[prost(string, optional, tag = "1")]
    pub date: Option<String>,
    #[prost(double, optional, tag = "2")]
    pub open: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub high: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub low: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub close: Option<f64>,
    #[prost(string, optional, tag = "6")]
    pub volume: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub wap: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub bar_count: Option<i32>,
}

// ---- client → gateway ----

#[derive(Clone, PartialEq, Message)]
pub struct StartApi {
    #[prost(int32, optional, tag = "1")]
    pub client_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqIds {
    #[prost(int32, optional, tag = "1")]
    pub num_ids: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqContractData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqSecDefOptParams {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub underlying_symbol: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub fut_fop_exchange: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub underlying_sec_type: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub underlying_con_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqMarketDataType {
    #[prost(int32, optional, tag = "1")]
    pub market_data_type: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqMktData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(string, optional, tag = "3")]
    pub generic_tick_list: Option<String>,
    #[prost(bool, optional, tag = "4")]
    pub snapshot: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub regulatory_snapshot: Option<bool>,
}

/// Any request that carries only its request id at tag 1 (cancels, …).
#[derive(Clone, PartialEq, Message)]
pub struct ReqIdOnly {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqHistoricalData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(string, optional, tag = "3")]
    pub end_date_time: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub bar_size: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub duration: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub use_rth: Option<bool>,
    #[prost(string, optional, tag = "7")]
    pub what_to_show: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub format_date: Option<i32>,
    #[prost(bool, optional, tag = "9")]
    pub keep_up_to_date: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PlaceOrder {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(message, optional, tag = "3")]
    pub order: Option<WireOrder>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CancelOrder {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqExecutions {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub filter: Option<WireExecutionFilter>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReqAccountSummary {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub group: Option<String>,
    /// Comma-separated tags.
    #[prost(string, optional, tag = "3")]
    pub tags: Option<String>,
}

/// A request with no fields (reqOpenOrders, reqPositions, reqCurrentTime,
/// …): the payload must still decode.
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

// ---- gateway → client ----

#[derive(Clone, PartialEq, Message)]
pub struct ErrorMsg {
    #[prost(int32, optional, tag = "1")]
    pub id: Option<i32>,
    #[prost(int64, optional, tag = "2")]
    pub error_time: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    pub code: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub message: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub advanced_order_reject_json: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NextValidId {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ManagedAccounts {
    #[prost(string, optional, tag = "1")]
    pub accounts: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CurrentTime {
    /// Unix seconds.
    #[prost(int64, optional, tag = "1")]
    pub time: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ContractData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(message, optional, tag = "3")]
    pub details: Option<WireContractDetails>,
}

/// Any reply that carries only a request id at tag 1 (ContractDataEnd,
/// TickSnapshotEnd, ExecDetailsEnd, AccountSummaryEnd, SecDefOptParamEnd).
#[derive(Clone, PartialEq, Message)]
pub struct IdEnd {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SecDefOptParameter {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub exchange: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub underlying_con_id: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub trading_class: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub multiplier: Option<String>,
    #[prost(string, repeated, tag = "6")]
    pub expirations: Vec<String>,
    #[prost(double, repeated, tag = "7")]
    pub strikes: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MarketDataType {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub market_data_type: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TickPrice {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(double, optional, tag = "3")]
    pub price: Option<f64>,
    #[prost(string, optional, tag = "4")]
    pub size: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub attr_mask: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TickSize {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub size: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TickOptionComputation {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub tick_attrib: Option<i32>,
    #[prost(double, optional, tag = "4")]
    pub implied_vol: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub delta: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub option_price: Option<f64>,
    #[prost(double, optional, tag = "7")]
    pub pv_dividend: Option<f64>,
    #[prost(double, optional, tag = "8")]
    pub gamma: Option<f64>,
    #[prost(double, optional, tag = "9")]
    pub vega: Option<f64>,
    #[prost(double, optional, tag = "10")]
    pub theta: Option<f64>,
    #[prost(double, optional, tag = "11")]
    pub underlying_price: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HistoricalData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, repeated, tag = "2")]
    pub bars: Vec<WireBar>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HistoricalDataEnd {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    /// `YYYYMMDD-HH:MM:SS` (UTC).
    #[prost(string, optional, tag = "2")]
    pub start: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub end: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OpenOrder {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(message, optional, tag = "3")]
    pub order: Option<WireOrder>,
    #[prost(message, optional, tag = "4")]
    pub state: Option<WireOrderState>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OrderStatusMsg {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub status: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub filled: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub remaining: Option<String>,
    #[prost(double, optional, tag = "5")]
    pub avg_fill_price: Option<f64>,
    #[prost(int64, optional, tag = "6")]
    pub perm_id: Option<i64>,
    #[prost(int32, optional, tag = "7")]
    pub parent_id: Option<i32>,
    #[prost(double, optional, tag = "8")]
    pub last_fill_price: Option<f64>,
    #[prost(int32, optional, tag = "9")]
    pub client_id: Option<i32>,
    #[prost(string, optional, tag = "10")]
    pub why_held: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExecutionDetails {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    #[prost(message, optional, tag = "3")]
    pub execution: Option<WireExecution>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommissionReport {
    #[prost(string, optional, tag = "1")]
    pub exec_id: Option<String>,
    #[prost(double, optional, tag = "2")]
    pub commission: Option<f64>,
    #[prost(string, optional, tag = "3")]
    pub currency: Option<String>,
    #[prost(double, optional, tag = "4")]
    pub realized_pnl: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PositionMsg {
    #[prost(string, optional, tag = "1")]
    pub account: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<WireContract>,
    /// A decimal string, negative when short.
    #[prost(string, optional, tag = "3")]
    pub position: Option<String>,
    #[prost(double, optional, tag = "4")]
    pub avg_cost: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AccountSummaryMsg {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub account: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub tag: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub value: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub currency: Option<String>,
}

/// Encodes any message to its protobuf bytes.
pub fn bytes<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}
