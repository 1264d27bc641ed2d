{#- Install ServerFlow into the Salt master's Python and enable its engine, returners and API.
    Apply on the master's own minion: salt <master-minion> state.apply serverflow.master
    The PostgreSQL job cache and event store are on by default; pillar
    serverflow:master:job_cache: False leaves Salt's own job cache in place. #}
{%- set sf = salt['pillar.get']('serverflow:master', {}) %}

serverflow package:
  pip.installed:
    - name: {{ sf.get('package', 'serverflow') }}
    - bin_env: {{ salt['grains.get']('pythonexecutable', '/usr/bin/python3') }}
    - upgrade: {{ sf.get('upgrade', False) }}

serverflow master config:
  file.serialize:
    - name: {{ sf.get('config_file', '/etc/salt/master.d/serverflow.conf') }}
    - mode: '0600'
    - serializer: yaml
    - dataset:
        engines:
          - serverflow: {}
        presence_events: True
        minion_data_cache_events: True
{%- if sf.get('job_cache', True) %}
        master_job_cache: serverflow
        event_return: serverflow
        event_return_queue: {{ sf.get('event_return_queue', 100) }}
        event_return_queue_max_seconds: {{ sf.get('event_return_queue_max_seconds', 2) }}
{%- endif %}
        serverflow:
          tenant_id: {{ sf.get('tenant_id', '00000000-0000-4000-8000-000000000001') }}
          database:
            url: {{ sf.get('database_url', '') }}
            admin_url: {{ sf.get('database_admin_url', sf.get('database_url', '')) }}
          redis:
            url: {{ sf.get('redis_url', 'redis://127.0.0.1:6379/0') }}
    - require:
      - pip: serverflow package

{%- if sf.get('manage_service', True) %}
serverflow master restart:
  service.running:
    - name: salt-master
    - watch:
      - file: serverflow master config
{%- endif %}
