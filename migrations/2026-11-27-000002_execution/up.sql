-- Execution quality and order context (issue #5).

-- Everything known when an order was made (quote and mid at sending, the
-- decision behind it, the order it replaces, the trade it opens). JSON,
-- written once with the intent.
ALTER TABLE orders ADD COLUMN context TEXT NOT NULL DEFAULT '{}';

-- How each fill compared with the mid when its order was sent and with its
-- limit. Per-share amounts in PRICE units (1/10000 $): vs_mid > 0 is a
-- cost, vs_limit > 0 an improvement.
CREATE TABLE slippage (
    id INTEGER PRIMARY KEY,
    exec_id TEXT NOT NULL UNIQUE REFERENCES fills (exec_id),
    order_ref TEXT NOT NULL REFERENCES orders (order_ref),
    time TIMESTAMP NOT NULL,
    side TEXT NOT NULL,                         -- 'BUY' or 'SELL'
    quantity BIGINT NOT NULL,
    fill_price BIGINT NOT NULL,                 -- PRICE
    limit_price BIGINT NOT NULL,                -- PRICE
    mid_at_send BIGINT,                         -- PRICE
    vs_mid BIGINT,                              -- PRICE
    vs_limit BIGINT NOT NULL                    -- PRICE
);
CREATE INDEX slippage_order_ref_idx ON slippage (order_ref);

-- Operators' requests to the engine (emergency stop, resume), queued by
-- trader-cli or the dashboard and handled by the engine before it acts.
CREATE TABLE control_requests (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,                       -- 'emergency_stop' or 'resume'
    flatten BOOLEAN NOT NULL DEFAULT 0,
    reason TEXT NOT NULL,
    handled_at TIMESTAMP,
    outcome TEXT
);
CREATE INDEX control_requests_pending_idx ON control_requests (handled_at);
