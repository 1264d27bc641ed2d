"""Alerts: rules that turn presence changes and read results into alerts (``rules``), their
storage (``store``, tenant-scoped ``alerts`` table) and the engine side that raises them and
puts ``serverflow/alert/<id>/triggered|resolved`` on the bus (``service``)."""
