"""The native S3 sink: the Confluent S3 sink connector's behaviour, keys and object layout.

Reading order: ``config`` (the connector properties), ``converter`` (record bytes to JSON
lines), ``writer`` (lines to objects), ``sink`` (the consumer loop, S3 and offsets),
``status`` (health and counts), ``bench`` (throughput for ``make bench``).
"""
