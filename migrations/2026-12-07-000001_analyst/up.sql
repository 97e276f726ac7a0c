-- The Claude analyst (issue #16): its reports, and every call to the
-- Messages API with its tokens and estimated cost (the monthly spend cap
-- is computed from these). No API key, account number or prompt text is
-- stored: a report holds the statistics it was built from and its answer.
CREATE TABLE analyst_reports (
    id INTEGER PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    source TEXT NOT NULL,                       -- claude | statistics
    trigger TEXT NOT NULL,                      -- cli | weekly
    model TEXT,
    summary TEXT NOT NULL,
    accepted BIGINT NOT NULL,                   -- recommendations accepted
    rejected BIGINT NOT NULL,                   -- recommendations rejected
    cost_micros BIGINT NOT NULL,                -- estimated, millionths of a US dollar
    fallback_reason TEXT,
    report TEXT NOT NULL                        -- the whole report, JSON
);
CREATE INDEX analyst_reports_created_idx ON analyst_reports (created_at);

CREATE TABLE agent_calls (
    id INTEGER PRIMARY KEY,
    time TIMESTAMP NOT NULL,
    purpose TEXT NOT NULL,                      -- analysis | reasoner
    model TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_creation_input_tokens BIGINT NOT NULL,
    cache_read_input_tokens BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,                -- estimated, millionths of a US dollar
    stop_reason TEXT
);
CREATE INDEX agent_calls_time_idx ON agent_calls (time);
