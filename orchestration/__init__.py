"""The top layer: the ways to run the stages. ``cli/`` is the ``lakehouse`` command (the demo
included), ``dags/`` the Airflow DAGs and ``tasks.py`` their task bodies, ``api.py`` the client that
triggers and follows DAG runs. Nothing below this folder imports from it."""
