-- Reverts 2026-12-07-000001_analyst.
DROP TABLE agent_calls;
DROP TABLE analyst_reports;
