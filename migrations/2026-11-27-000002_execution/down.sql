-- Reverts 2026-11-27-000002_execution.
DROP TABLE control_requests;
DROP TABLE slippage;
ALTER TABLE orders DROP COLUMN context;
