# Example ServerFlow pillar. Minion-side settings only: secrets for the master
# (database and API keys) belong in the master config, not in pillar.
serverflow:
  # Tags and services are read from the grain first, then from here.
  # tags: [prod, web]
  # services: [nginx]
  master:
    # Used by formulas/serverflow/master.sls to write /etc/salt/master.d/serverflow.conf
    package: serverflow
    tenant_id: 00000000-0000-4000-8000-000000000001
    database_url: postgresql://serverflow_app:CHANGE_ME@127.0.0.1:5432/serverflow
    database_admin_url: postgresql://serverflow:CHANGE_ME@127.0.0.1:5432/serverflow
    redis_url: redis://127.0.0.1:6379/0
    job_cache: True          # False: keep Salt's own job cache (no master_job_cache/event_return)
