-- One period of customer rows for data/raw/<period>.parquet (params ingest.query).
-- retrain ingest binds :start (the period's first instant, inclusive) and :end (the next
-- period's, exclusive) through the database driver; the text is never formatted.
-- The columns are the schema's of params.yaml; any other column is kept and reported by evaluate.
SELECT customer_id, snapshot_date, tenure, monthly_charges, total_charges, senior_citizen,
       female, partner, dependents, phone_service, paperless_billing, multiple_lines,
       internet_service, online_security, online_backup, device_protection, tech_support,
       streaming_tv, streaming_movies, contract, payment_method, churn
FROM customers
WHERE snapshot_date >= :start AND snapshot_date < :end
ORDER BY snapshot_date, customer_id
