"""pinpipe's own Kafka REST proxy: the Confluent REST Proxy API v2, as far as the pipeline uses it.

``app`` serves the HTTP side, ``producer`` the Kafka side, ``config`` reads the same
``config/kafka-rest.properties`` the real Confluent proxy reads.
"""
