"""What the Airflow DAG runs, importable from Airflow's own venv.

Modules here import only the settings and boto3 at module level (the lock of the Airflow
venv holds both), so the DAG file stays cheap to parse; Airflow is never imported here.
"""
