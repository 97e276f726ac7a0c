-- Reverts 2026-11-27-000003_shadow.
DROP TABLE shadow_trades;
