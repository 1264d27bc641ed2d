{#- Tag a minion for ServerFlow targeting ("the web tier") from pillar serverflow:tags/services. #}
{%- set tags = salt['pillar.get']('serverflow:tags', []) %}
{%- set services = salt['pillar.get']('serverflow:services', []) %}

serverflow tags:
  serverflow.tagged:
    - tags: {{ tags | json }}
    - services: {{ services | json }}
