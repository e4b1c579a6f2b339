"""The local stack: a real single-node Kafka broker (KRaft) run from jars fetched from Maven Central."""
