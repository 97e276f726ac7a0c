-- The trader's database, first version (SQLite).
--
-- Conventions, shared with crates/store/src/schema.rs (keep both in sync):
--   * MONEY columns are BIGINT whole cents (core_domain::Money);
--   * PRICE columns are BIGINT ten-thousandths of a dollar (core_domain::Price),
--     so $0.35 is 3500 and a $150 strike is 1500000;
--   * TIMESTAMP columns hold UTC date-times, DATE columns calendar dates;
--   * JSON columns are TEXT holding the serde_json form of the named type;
--   * enums are TEXT holding their serde names (snake_case; side and
--     time_in_force upper case: 'SELL', 'DAY').
--
-- Only SQL that PostgreSQL also accepts is used, with one exception:
-- `id INTEGER PRIMARY KEY` is SQLite's auto-assigned rowid; a PostgreSQL
-- migration set would write `id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`.

-- A/B tests of one strategy parameter.
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    experiment_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    parameter_name TEXT NOT NULL,
    control_value TEXT NOT NULL,
    test_value TEXT NOT NULL,
    allocation DOUBLE PRECISION NOT NULL,       -- share of opportunities sent to the test arm
    min_samples BIGINT NOT NULL,                -- closed trades per arm before any decision
    status TEXT NOT NULL DEFAULT 'active',      -- ExperimentStatus
    start_date DATE NOT NULL,
    end_date DATE,
    control_trades BIGINT NOT NULL DEFAULT 0,
    test_trades BIGINT NOT NULL DEFAULT 0,
    p_value DOUBLE PRECISION,
    effect_size DOUBLE PRECISION,
    decision TEXT
);

-- One short put from entry to exit (core_domain::Trade).
CREATE TABLE trades (
    id INTEGER PRIMARY KEY,
    trade_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    sector TEXT,
    strike BIGINT NOT NULL,                     -- PRICE
    expiration DATE NOT NULL,
    entry_date DATE NOT NULL,
    entry_time TIMESTAMP NOT NULL,
    entry_premium BIGINT NOT NULL,              -- PRICE, per share
    contracts BIGINT NOT NULL,
    entry_underlying_price BIGINT NOT NULL,     -- PRICE
    margin_at_entry BIGINT NOT NULL,            -- MONEY
    exit_date DATE,
    exit_time TIMESTAMP,
    exit_premium BIGINT,                        -- PRICE, per share
    exit_reason TEXT,                           -- ExitReason
    profit_loss BIGINT,                         -- MONEY, net of commissions
    profit_pct DOUBLE PRECISION,                -- fraction of the premium received
    roi DOUBLE PRECISION,                       -- fraction of margin_at_entry
    days_held BIGINT,
    otm_pct DOUBLE PRECISION NOT NULL,          -- fraction: 0.17 = 17% out of the money
    dte BIGINT NOT NULL,
    vix_at_entry DOUBLE PRECISION,
    market_regime TEXT NOT NULL,                -- MarketRegime
    is_experiment BOOLEAN NOT NULL DEFAULT FALSE,
    experiment_id TEXT REFERENCES experiments (experiment_id),
    experiment_arm TEXT,                        -- 'control' or 'test'
    commissions BIGINT NOT NULL DEFAULT 0,      -- MONEY
    status TEXT NOT NULL                        -- 'open' or 'closed'
);
CREATE INDEX trades_status_idx ON trades (status);
CREATE INDEX trades_symbol_idx ON trades (symbol);
CREATE INDEX trades_experiment_id_idx ON trades (experiment_id);
CREATE INDEX trades_entry_time_idx ON trades (entry_time);

-- What the learning engine did, with its reasoning.
CREATE TABLE learning_history (
    id INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL,                   -- LearningEventType
    event_date TIMESTAMP NOT NULL,
    pattern_name TEXT,
    confidence DOUBLE PRECISION,
    sample_size BIGINT,
    parameter_changed TEXT,
    old_value TEXT,
    new_value TEXT,
    reasoning TEXT NOT NULL
);
CREATE INDEX learning_history_event_date_idx ON learning_history (event_date);

-- Regularities found in closed (or shadow) trades.
CREATE TABLE patterns (
    id INTEGER PRIMARY KEY,
    pattern_type TEXT NOT NULL,
    pattern_name TEXT NOT NULL,
    sample_size BIGINT NOT NULL,
    win_rate DOUBLE PRECISION NOT NULL,
    avg_roi DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    p_value DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',      -- PatternStatus
    date_detected DATE NOT NULL,
    context TEXT NOT NULL                       -- JSON
);
CREATE INDEX patterns_status_idx ON patterns (status);

-- Orders, written (status 'created') before they are sent.
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    order_ref TEXT NOT NULL UNIQUE,             -- idempotency key, IBKR orderRef
    broker_order_id BIGINT,
    contract_key TEXT NOT NULL,                 -- Contract::key(), e.g. 'AAPL 2024-01-19 150.00 P'
    contract TEXT NOT NULL,                     -- JSON of core_domain::Contract
    side TEXT NOT NULL,                         -- 'BUY' or 'SELL'
    quantity BIGINT NOT NULL,
    limit_price BIGINT NOT NULL,                -- PRICE
    time_in_force TEXT NOT NULL,                -- 'DAY', 'GTC' or 'IOC'
    purpose TEXT NOT NULL,                      -- OrderPurpose
    trade_id TEXT,                              -- no foreign key: the trade may be written after its opening order
    status TEXT NOT NULL,                       -- OrderStatus
    filled_quantity BIGINT NOT NULL DEFAULT 0,
    avg_fill_price BIGINT,                      -- PRICE
    commission BIGINT NOT NULL DEFAULT 0,       -- MONEY
    reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_trade_id_idx ON orders (trade_id);

-- The status history of each order, appended in the transaction that
-- changes the order.
CREATE TABLE order_events (
    id INTEGER PRIMARY KEY,
    order_ref TEXT NOT NULL REFERENCES orders (order_ref),
    status TEXT NOT NULL,                       -- OrderStatus
    reason TEXT,
    time TIMESTAMP NOT NULL
);
CREATE INDEX order_events_order_ref_idx ON order_events (order_ref);

-- Executions, deduplicated by the broker's execution id.
CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    exec_id TEXT NOT NULL UNIQUE,
    order_ref TEXT NOT NULL REFERENCES orders (order_ref),
    contract TEXT NOT NULL,                     -- JSON of core_domain::Contract
    side TEXT NOT NULL,                         -- 'BUY' or 'SELL'
    quantity BIGINT NOT NULL,
    price BIGINT NOT NULL,                      -- PRICE
    commission BIGINT NOT NULL,                 -- MONEY
    time TIMESTAMP NOT NULL
);
CREATE INDEX fills_order_ref_idx ON fills (order_ref);
CREATE INDEX fills_time_idx ON fills (time);

-- Positions as last reconciled with the broker.
CREATE TABLE positions (
    id INTEGER PRIMARY KEY,
    contract_key TEXT NOT NULL UNIQUE,          -- Contract::key()
    contract TEXT NOT NULL,                     -- JSON of core_domain::Contract
    quantity BIGINT NOT NULL,                   -- negative for short
    avg_cost BIGINT NOT NULL,                   -- PRICE, per share
    market_price BIGINT,                        -- PRICE, per share
    updated_at TIMESTAMP NOT NULL
);

-- The account as the broker reported it at one moment.
CREATE TABLE account_snapshots (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    account TEXT NOT NULL,
    net_liquidation BIGINT NOT NULL,            -- MONEY
    cash BIGINT NOT NULL,                       -- MONEY
    excess_liquidity BIGINT NOT NULL,           -- MONEY
    initial_margin BIGINT NOT NULL,             -- MONEY
    maintenance_margin BIGINT NOT NULL,         -- MONEY
    realized_pnl BIGINT NOT NULL,               -- MONEY
    unrealized_pnl BIGINT NOT NULL              -- MONEY
);
CREATE INDEX account_snapshots_time_idx ON account_snapshots (time);

-- The cash ledger: signed movements, positive adds cash.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,                         -- LedgerEntryKind
    amount BIGINT NOT NULL,                     -- MONEY, signed
    reference TEXT NOT NULL                     -- execution id, trade id, ...
);
CREATE INDEX ledger_entries_reference_idx ON ledger_entries (reference);

-- Who did what, in what context, what was decided and how it turned out.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    context TEXT NOT NULL,                      -- JSON
    decision TEXT,
    outcome TEXT
);
CREATE INDEX audit_log_time_idx ON audit_log (time);

-- Every decision with its reason and the numbers compared.
CREATE TABLE decision_records (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,                         -- DecisionKind
    subject TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    criteria TEXT NOT NULL,                     -- JSON array of core_domain::Criterion
    context TEXT NOT NULL                       -- JSON
);
CREATE INDEX decision_records_time_idx ON decision_records (time);

-- The engine's working memory: small JSON values by key.
CREATE TABLE working_memory (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,                        -- JSON
    updated_at TIMESTAMP NOT NULL
);

-- Trading state changes, one row each; the row with the highest id is the
-- current state. No row: the state was never set.
CREATE TABLE trading_state (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'reduce_only', 'halted')),
    cause TEXT NOT NULL,
    actor TEXT NOT NULL
);
