"""Producers: sources (simulator, replay, Open311 intake) → serde (validate, encode) → sink (Kafka).

Split like bytewax's Kafka connector: a source yields (Topic, model) pairs, serde turns raw input into
models and models into bytes, the sink only sends bytes, errors say which field is wrong and why.
"""
