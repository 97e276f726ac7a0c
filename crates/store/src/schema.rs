//! The tables, written by hand to match `migrations/*/up.sql` (keep both in
//! sync; `test_schema_rs_matches_the_migrated_tables` in `tests/database.rs`
//! checks the columns, their order and their nullability).
//!
//! Money columns are `BigInt` cents, price columns `BigInt` ten-thousandths
//! of a dollar, `Timestamp` columns UTC, JSON columns `Text`.

diesel::table! {
    experiments (id) {
        id -> BigInt,
        experiment_id -> Text,
        name -> Text,
        hypothesis -> Text,
        parameter_name -> Text,
        control_value -> Text,
        test_value -> Text,
        allocation -> Double,
        min_samples -> BigInt,
        status -> Text,
        start_date -> Date,
        end_date -> Nullable<Date>,
        control_trades -> BigInt,
        test_trades -> BigInt,
        p_value -> Nullable<Double>,
        effect_size -> Nullable<Double>,
        decision -> Nullable<Text>,
    }
}

diesel::table! {
    trades (id) {
        id -> BigInt,
        trade_id -> Text,
        symbol -> Text,
        sector -> Nullable<Text>,
        strike -> BigInt,
        expiration -> Date,
        entry_date -> Date,
        entry_time -> Timestamp,
        entry_premium -> BigInt,
        contracts -> BigInt,
        entry_underlying_price -> BigInt,
        margin_at_entry -> BigInt,
        exit_date -> Nullable<Date>,
        exit_time -> Nullable<Timestamp>,
        exit_premium -> Nullable<BigInt>,
        exit_reason -> Nullable<Text>,
        profit_loss -> Nullable<BigInt>,
        profit_pct -> Nullable<Double>,
        roi -> Nullable<Double>,
        days_held -> Nullable<BigInt>,
        otm_pct -> Double,
        dte -> BigInt,
        vix_at_entry -> Nullable<Double>,
        market_regime -> Text,
        is_experiment -> Bool,
        experiment_id -> Nullable<Text>,
        experiment_arm -> Nullable<Text>,
        commissions -> BigInt,
        status -> Text,
    }
}

diesel::table! {
    learning_history (id) {
        id -> BigInt,
        event_type -> Text,
        event_date -> Timestamp,
        pattern_name -> Nullable<Text>,
        confidence -> Nullable<Double>,
        sample_size -> Nullable<BigInt>,
        parameter_changed -> Nullable<Text>,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
        reasoning -> Text,
    }
}

diesel::table! {
    patterns (id) {
        id -> BigInt,
        pattern_type -> Text,
        pattern_name -> Text,
        sample_size -> BigInt,
        win_rate -> Double,
        avg_roi -> Double,
        confidence -> Double,
        p_value -> Double,
        status -> Text,
        date_detected -> Date,
        context -> Text,
    }
}

diesel::table! {
    orders (id) {
        id -> BigInt,
        order_ref -> Text,
        broker_order_id -> Nullable<BigInt>,
        contract_key -> Text,
        contract -> Text,
        side -> Text,
        quantity -> BigInt,
        limit_price -> BigInt,
        time_in_force -> Text,
        purpose -> Text,
        trade_id -> Nullable<Text>,
        status -> Text,
        filled_quantity -> BigInt,
        avg_fill_price -> Nullable<BigInt>,
        commission -> BigInt,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        context -> Text,
    }
}

diesel::table! {
    order_events (id) {
        id -> BigInt,
        order_ref -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        time -> Timestamp,
    }
}

diesel::table! {
    fills (id) {
        id -> BigInt,
        exec_id -> Text,
        order_ref -> Text,
        contract -> Text,
        side -> Text,
        quantity -> BigInt,
        price -> BigInt,
        commission -> BigInt,
        time -> Timestamp,
    }
}

diesel::table! {
    positions (id) {
        id -> BigInt,
        contract_key -> Text,
        contract -> Text,
        quantity -> BigInt,
        avg_cost -> BigInt,
        market_price -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    account_snapshots (id) {
        id -> BigInt,
        time -> Timestamp,
        account -> Text,
        net_liquidation -> BigInt,
        cash -> BigInt,
        excess_liquidity -> BigInt,
        initial_margin -> BigInt,
        maintenance_margin -> BigInt,
        realized_pnl -> BigInt,
        unrealized_pnl -> BigInt,
    }
}

diesel::table! {
    ledger_entries (id) {
        id -> BigInt,
        time -> Timestamp,
        kind -> Text,
        amount -> BigInt,
        reference -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        time -> Timestamp,
        actor -> Text,
        action -> Text,
        context -> Text,
        decision -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    decision_records (id) {
        id -> BigInt,
        time -> Timestamp,
        kind -> Text,
        subject -> Text,
        decision -> Text,
        reason -> Text,
        criteria -> Text,
        context -> Text,
    }
}

diesel::table! {
    working_memory (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    trading_state (id) {
        id -> BigInt,
        time -> Timestamp,
        state -> Text,
        cause -> Text,
        actor -> Text,
    }
}

diesel::table! {
    slippage (id) {
        id -> BigInt,
        exec_id -> Text,
        order_ref -> Text,
        time -> Timestamp,
        side -> Text,
        quantity -> BigInt,
        fill_price -> BigInt,
        limit_price -> BigInt,
        mid_at_send -> Nullable<BigInt>,
        vs_mid -> Nullable<BigInt>,
        vs_limit -> BigInt,
    }
}

diesel::table! {
    control_requests (id) {
        id -> BigInt,
        time -> Timestamp,
        actor -> Text,
        action -> Text,
        flatten -> Bool,
        reason -> Text,
        handled_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    shadow_trades (id) {
        id -> BigInt,
        shadow_id -> Text,
        created_at -> Timestamp,
        symbol -> Text,
        sector -> Nullable<Text>,
        strike -> BigInt,
        expiration -> Date,
        entry_premium -> BigInt,
        entry_underlying_price -> BigInt,
        otm_pct -> Double,
        dte -> BigInt,
        margin_at_entry -> BigInt,
        origin -> Text,
        reason -> Text,
        experiment_id -> Nullable<Text>,
        experiment_arm -> Nullable<Text>,
        vix_at_entry -> Nullable<Double>,
        status -> Text,
        exit_time -> Nullable<Timestamp>,
        exit_premium -> Nullable<BigInt>,
        exit_reason -> Nullable<Text>,
        profit_loss -> Nullable<BigInt>,
        roi -> Nullable<Double>,
    }
}

diesel::table! {
    analyst_reports (id) {
        id -> BigInt,
        created_at -> Timestamp,
        source -> Text,
        trigger -> Text,
        model -> Nullable<Text>,
        summary -> Text,
        accepted -> BigInt,
        rejected -> BigInt,
        cost_micros -> BigInt,
        fallback_reason -> Nullable<Text>,
        report -> Text,
    }
}

diesel::table! {
    agent_calls (id) {
        id -> BigInt,
        time -> Timestamp,
        purpose -> Text,
        model -> Text,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cache_creation_input_tokens -> BigInt,
        cache_read_input_tokens -> BigInt,
        cost_micros -> BigInt,
        stop_reason -> Nullable<Text>,
    }
}

diesel::table! {
    notification_attempts (id) {
        id -> BigInt,
        time -> Timestamp,
        channel -> Text,
        event -> Text,
        severity -> Text,
        event_key -> Text,
        attempt -> BigInt,
        ok -> Bool,
        #[sql_name = "final"]
        is_final -> Bool,
        detail -> Text,
        payload -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    experiments,
    trades,
    learning_history,
    patterns,
    orders,
    order_events,
    fills,
    positions,
    account_snapshots,
    ledger_entries,
    audit_log,
    decision_records,
    working_memory,
    trading_state,
    slippage,
    control_requests,
    shadow_trades,
    analyst_reports,
    agent_calls,
    notification_attempts,
);

/// Every table of the schema, in creation order.
pub const TABLES: [&str; 20] = [
    "experiments",
    "trades",
    "learning_history",
    "patterns",
    "orders",
    "order_events",
    "fills",
    "positions",
    "account_snapshots",
    "ledger_entries",
    "audit_log",
    "decision_records",
    "working_memory",
    "trading_state",
    "slippage",
    "control_requests",
    "shadow_trades",
    "analyst_reports",
    "agent_calls",
    "notification_attempts",
];
