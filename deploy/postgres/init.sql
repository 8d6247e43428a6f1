-- The compose stack's PostgreSQL: `tether` (the prediction store, created by the image's
-- POSTGRES_DB) and `tether_mlflow` (MLflow's backend store), both owned by `tether`.
CREATE DATABASE tether_mlflow OWNER tether;
