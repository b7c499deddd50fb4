"""Data rules (NAN4xx): records and sources that poison training, from a data scan (``Facts.data``)."""
