-- Shadow trades (issue #7): every opportunity the strategy evaluated,
-- followed to its outcome as if sold at the bid (one contract) and closed
-- by the exit rules at the touch. Evidence for learning; never P&L.
CREATE TABLE shadow_trades (
    id INTEGER PRIMARY KEY,
    shadow_id TEXT NOT NULL UNIQUE,             -- S-<contract key>
    created_at TIMESTAMP NOT NULL,
    symbol TEXT NOT NULL,
    sector TEXT,
    strike BIGINT NOT NULL,                     -- PRICE
    expiration DATE NOT NULL,
    entry_premium BIGINT NOT NULL,              -- PRICE, the bid
    entry_underlying_price BIGINT NOT NULL,     -- PRICE
    otm_pct DOUBLE NOT NULL,
    dte BIGINT NOT NULL,
    margin_at_entry BIGINT NOT NULL,            -- MONEY, one contract
    origin TEXT NOT NULL,                       -- taken | skipped | refused | arm
    reason TEXT NOT NULL,
    experiment_id TEXT,
    experiment_arm TEXT,
    vix_at_entry DOUBLE,
    status TEXT NOT NULL,                       -- open | closed
    exit_time TIMESTAMP,
    exit_premium BIGINT,                        -- PRICE
    exit_reason TEXT,
    profit_loss BIGINT,                         -- MONEY, one contract
    roi DOUBLE
);
CREATE INDEX shadow_trades_status_idx ON shadow_trades (status);
CREATE INDEX shadow_trades_created_idx ON shadow_trades (created_at);
