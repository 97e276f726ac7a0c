-- Reverts 2026-11-27-000001_initial: drops every table, children first.
DROP TABLE trading_state;
DROP TABLE working_memory;
DROP TABLE decision_records;
DROP TABLE audit_log;
DROP TABLE ledger_entries;
DROP TABLE account_snapshots;
DROP TABLE positions;
DROP TABLE fills;
DROP TABLE order_events;
DROP TABLE orders;
DROP TABLE patterns;
DROP TABLE learning_history;
DROP TABLE trades;
DROP TABLE experiments;
