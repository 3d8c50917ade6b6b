"""Orchestration: the Airflow DAGs (``dags/``) and the task bodies they call (``tasks.py``)."""
